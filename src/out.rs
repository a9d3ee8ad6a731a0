//! Standard output of every command. A reader that goes away (`diskray ls … | head`)
//! ends the command quietly with exit status 0, as other command-line tools do: the
//! Rust runtime ignores SIGPIPE, so the write fails with `BrokenPipe` instead, and
//! `main` turns that failure into a quiet success.
//!
//! Everything written to standard output goes through [`stdout`] (or the [`outln!`]
//! macro), never `println!`, which would panic on a closed pipe.

use diskray_core::{Error, Result};
use serde::Serialize;
use std::fmt::Display;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The name standard output has in error messages.
const NAME: &str = "standard output";

/// Bytes written to standard output so far (for the offset in error messages).
static WRITTEN: AtomicU64 = AtomicU64::new(0);
/// A write to standard output found its reader gone.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Standard output, locked, counting what it writes and noting a closed pipe.
pub struct Stdout(io::StdoutLock<'static>);

/// Standard output (buffer it for many small writes: it is line-buffered).
pub fn stdout() -> Stdout {
    Stdout(io::stdout().lock())
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = self.0.write(buf);
        note(&r);
        if let Ok(n) = r {
            WRITTEN.fetch_add(n as u64, Ordering::Relaxed);
        }
        r
    }

    fn flush(&mut self) -> io::Result<()> {
        let r = self.0.flush();
        note(&r);
        r
    }
}

fn note<T>(r: &io::Result<T>) {
    if r.as_ref()
        .is_err_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    {
        CLOSED.store(true, Ordering::Relaxed);
    }
}

/// The error of a failed write to standard output.
pub fn error(e: io::Error) -> Error {
    Error::io(Path::new(NAME), WRITTEN.load(Ordering::Relaxed), e)
}

/// Whether `e` comes from standard output's reader going away: directly, or through a
/// layer that kept only the message (a filesystem's file copy, a JSON serialiser), which
/// the closed-pipe note tells.
pub fn closed(e: &Error) -> bool {
    CLOSED.load(Ordering::Relaxed)
        || matches!(e, Error::Io { path, source, .. }
            if path == Path::new(NAME) && source.kind() == io::ErrorKind::BrokenPipe)
}

/// A command's result: JSON for scripts (its `Serialize`), text for people (its `Display`).
pub trait Doc: Serialize + Display {}
impl<T: Serialize + Display> Doc for T {}

/// Prints a command's result on standard output: one pretty JSON document, or its text
/// for people with `warnings` on standard error first.
pub fn print(json: bool, doc: &impl Doc, warnings: &[impl Display]) -> Result<()> {
    emit(json, true, doc, warnings)
}

/// [`print`], with the JSON on one line (for documents of millions of rows).
pub fn print_compact(json: bool, doc: &impl Doc, warnings: &[impl Display]) -> Result<()> {
    emit(json, false, doc, warnings)
}

fn emit(json: bool, pretty: bool, doc: &impl Doc, warnings: &[impl Display]) -> Result<()> {
    let mut w = io::BufWriter::new(stdout());
    if json {
        let r = if pretty {
            serde_json::to_writer_pretty(&mut w, doc)
        } else {
            serde_json::to_writer(&mut w, doc)
        };
        r.map_err(|e| error(e.into()))?;
        writeln!(w).map_err(error)?;
    } else {
        warn(warnings);
        write!(w, "{doc}").map_err(error)?;
    }
    w.flush().map_err(error)
}

/// Says each warning on standard error, for people.
pub fn warn(warnings: &[impl Display]) {
    for x in warnings {
        eprintln!("diskray: warning: {x}");
    }
}

/// `println!` to standard output, returning `diskray_core::Result<()>` instead of
/// panicking when the write fails.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!($crate::out::stdout(), $($arg)*).map_err($crate::out::error)
    }};
}

/// `print!` to standard output, returning `diskray_core::Result<()>`.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!($crate::out::stdout(), $($arg)*).map_err($crate::out::error)
    }};
}

pub(crate) use {out, outln};
