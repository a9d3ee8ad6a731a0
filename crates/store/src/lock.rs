//! The repository lock: `flock(2)` on `REPO/lock`. Backups, restores and verify hold it
//! shared, so any number run at once; gc holds it exclusive, so it never runs beside a
//! writer that may still link to an old chunk (the PBS cutoff rule of `shared/FORMATS.md`
//! §5.6, made exact by the lock). The kernel drops the lock when the process dies, so a
//! killed backup never leaves the repository locked.

use diskray_core::{Error, Result};
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::Path;

/// A held repository lock; released when dropped.
#[derive(Debug)]
pub struct RepoLock {
    _file: File,
}

/// How the lock is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Backups, restores, verify.
    Shared,
    /// Garbage collection.
    Exclusive,
}

impl RepoLock {
    /// Takes the lock on `path`. When it is busy and `on_wait` is given, calls it once and
    /// then waits; without it, returns an error at once.
    pub fn acquire(path: &Path, mode: Mode, on_wait: Option<&dyn Fn()>) -> Result<RepoLock> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::Open {
                path: path.to_path_buf(),
                source: e,
            })?;
        let op = match mode {
            Mode::Shared => libc::LOCK_SH,
            Mode::Exclusive => libc::LOCK_EX,
        };
        if flock(&file, op | libc::LOCK_NB).is_err() {
            match on_wait {
                Some(f) => {
                    f();
                    flock(&file, op).map_err(|e| Error::io(path, 0, e))?;
                }
                None => {
                    return Err(Error::refused(
                        path,
                        "the repository is locked by another diskray process (gc needs it alone)",
                    ))
                }
            }
        }
        Ok(RepoLock { _file: file })
    }
}

fn flock(file: &File, op: i32) -> std::io::Result<()> {
    loop {
        // SAFETY: flock takes a valid open descriptor, which `file` holds for the call.
        let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
        if rc == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
