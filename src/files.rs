//! `diskray ls` and `diskray cat`: files without mounting.

use crate::open::DiskArgs;
use diskray_core::time::iso8601;
use diskray_core::{AtomicFile, ByteRange, Durability, Error, Result, VirtualDisk};
use diskray_guestfs::deleted::{deleted_below, find_deleted};
use diskray_guestfs::files::{
    base64, escape, lookup_follow, resolve, walk_bytes, Entry, FileType, Files,
};
use diskray_layout::with_files;
use serde::Serialize;
use std::ffi::OsString;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

/// Arguments of `diskray ls`.
#[derive(clap::Args, Debug)]
pub struct LsArgs {
    #[command(flatten)]
    disk: DiskArgs,
    /// The partition: its index (as `diskray partitions` numbers it), or its GPT name or
    /// filesystem label. Optional when the disk holds one filesystem.
    #[arg(long, short = 'p')]
    partition: Option<String>,
    /// The guest path to list (a directory or a file; a symlink is listed itself, unless
    /// PATH ends with `/`). Bytes: names need not be UTF-8.
    #[arg(default_value = "/")]
    path: OsString,
    /// List everything below PATH.
    #[arg(short = 'r', long)]
    recursive: bool,
    /// List deleted entries that can still be found (below PATH), with their extents and
    /// whether their blocks were reused.
    #[arg(long)]
    deleted: bool,
    /// Print one JSON document on stdout (with each entry's extents).
    #[arg(long)]
    json: bool,
}

/// Arguments of `diskray cat`.
#[derive(clap::Args, Debug)]
pub struct CatArgs {
    #[command(flatten)]
    disk: DiskArgs,
    /// The partition: index, GPT name or filesystem label.
    #[arg(long, short = 'p')]
    partition: Option<String>,
    /// The guest path of the file, symlinks followed (with --deleted: the path
    /// `ls --deleted` shows).
    path: OsString,
    /// Extract a deleted file (as listed by `ls --deleted`) from the blocks it had.
    #[arg(long)]
    deleted: bool,
}

/// `ls --json`.
#[derive(Serialize)]
struct LsDoc<'a> {
    entries: Vec<Row<'a>>,
    warnings: Vec<diskray_core::Warning>,
}

#[derive(Serialize)]
struct Row<'a> {
    path: String,
    /// The path's bytes (base64) when they are not UTF-8 (`path` is then lossy).
    #[serde(skip_serializing_if = "Option::is_none")]
    path_bytes: Option<String>,
    #[serde(flatten)]
    entry: &'a Entry,
    #[serde(rename = "mtime")]
    mtime_iso: Option<String>,
    /// Nanoseconds within `mtime`'s second (0 where the filesystem records none).
    #[serde(skip_serializing_if = "Option::is_none")]
    mtime_nsec: Option<u32>,
    extents: Vec<ByteRange>,
}

/// Runs `fs_fn` on the filesystem of the chosen partition.
fn with_fs<T>(
    disk: &DiskArgs,
    partition: Option<&str>,
    fs_fn: impl FnOnce(&dyn Files, u64) -> Result<T>,
) -> Result<T> {
    let image = disk.open(true)?;
    with_fs_on(image.disk(), &disk.disk, partition, fs_fn)
}

/// Opens the filesystem of one partition of `d` (named `label` in messages) and runs
/// `fs_fn` on its files; without `partition`, the only filesystem there is. How the files
/// were read (a journal replayed, a bound reached) is said on stderr.
pub fn with_fs_on<T>(
    d: &dyn VirtualDisk,
    label: &Path,
    partition: Option<&str>,
    fs_fn: impl FnOnce(&dyn Files, u64) -> Result<T>,
) -> Result<T> {
    with_files(d, label, partition, |files, v| {
        let result = fs_fn(files, v.start);
        for w in files.warnings() {
            eprintln!("diskray: warning: {}: {w}", files.label());
        }
        result
    })?
}

/// Runs `diskray ls`. Entries that could not be read are listed with their error, and the
/// exit status is then 1, after the whole listing.
pub fn ls(args: LsArgs) -> Result<ExitCode> {
    let raw = arg_bytes(&args.path);
    let (rows, warnings) = with_fs(&args.disk, args.partition.as_deref(), |fs, start| {
        let mut rows: Vec<(Vec<u8>, Entry)> = Vec::new();
        if args.deleted {
            rows = deleted_below(fs, &raw, args.recursive)?
                .into_iter()
                .map(|(p, e)| (p.into_bytes(), e))
                .collect();
        } else {
            // Symlinks on the way are followed, a last one is listed itself (unless the
            // path ends with `/`); rows show canonical paths.
            let target = resolve(fs, &raw, false)?;
            if target.entry.kind == FileType::Dir {
                walk_bytes(fs, &target.path, &target.entry, args.recursive, &mut rows)?;
            } else {
                rows.push((target.path, target.entry));
            }
        }
        let mut out = Vec::new();
        for (p, e) in rows {
            let ext = if args.json {
                fs.extents(&e).unwrap_or_default()
            } else {
                Vec::new()
            };
            let ext: Vec<ByteRange> = ext
                .into_iter()
                .map(|r| ByteRange::new(r.start + start, r.length))
                .collect();
            out.push((p, e, ext));
        }
        Ok((out, fs.warnings()))
    })?;
    let mut w = BufWriter::new(crate::out::stdout());
    let werr = crate::out::error;
    if args.json {
        let entries: Vec<Row> = rows
            .iter()
            .map(|(p, e, x)| Row {
                path: String::from_utf8_lossy(p).into_owned(),
                path_bytes: std::str::from_utf8(p).is_err().then(|| base64(p)),
                entry: e,
                mtime_iso: e.mtime.map(iso8601),
                mtime_nsec: e.mtime.map(|_| e.mtime_nsec),
                extents: x.clone(),
            })
            .collect();
        let doc = LsDoc { entries, warnings };
        serde_json::to_writer_pretty(&mut w, &doc).map_err(|e| Error::Output {
            what: "the listing",
            target: Some("standard output".into()),
            source: e.into(),
        })?;
        writeln!(w).map_err(werr)?;
    } else {
        for (p, e, _) in &rows {
            let kind = match e.kind {
                FileType::Dir => 'd',
                FileType::File => '-',
                FileType::Symlink => 'l',
                FileType::Other => '?',
            };
            let flag = match (e.deleted, e.recoverable) {
                _ if e.name_only() => " [deleted, name only]",
                (true, Some(true)) => " [deleted, recoverable]",
                (true, Some(false)) => " [deleted, overwritten]",
                (true, None) => " [deleted, inode unknown]",
                _ => "",
            };
            let target = e
                .target
                .as_ref()
                .map(|t| format!(" -> {}", escape(t.as_bytes())))
                .unwrap_or_default();
            let error = e
                .error
                .as_ref()
                .map(|err| format!(" [error: {err}]"))
                .unwrap_or_default();
            writeln!(
                w,
                "{kind} {:>12} {:>10} {:20} {}{target}{flag}{error}",
                e.size,
                e.inode,
                e.mtime.map(iso8601).unwrap_or_default(),
                escape(p)
            )
            .map_err(werr)?;
        }
    }
    w.flush().map_err(werr)?;
    // Like ls(1) on an entry it cannot read: everything else is listed, then exit 1.
    let mut damaged = false;
    for (p, e, _) in &rows {
        if let Some(err) = &e.error {
            eprintln!("diskray: error: {}: {err}", escape(p));
            damaged = true;
        }
    }
    Ok(if damaged {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs `diskray cat`.
pub fn cat(args: CatArgs) -> Result<ExitCode> {
    let raw = arg_bytes(&args.path);
    with_fs(&args.disk, args.partition.as_deref(), |fs, _| {
        if !args.deleted {
            // Symlinks are followed, the last one too, as `cat` on a mounted filesystem.
            let e = lookup_follow(fs, &raw)?;
            return write_file(fs, &e, &escape(&raw), None);
        }
        let (path, e) = find_deleted(fs, &raw)?;
        if e.recoverable == Some(false) {
            eprintln!("diskray: warning: {}: its blocks were reused since the deletion; the content is not the original", escape(path.as_bytes()));
        }
        write_file(fs, &e, &escape(path.as_bytes()), None)
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Writes the content of `e` (found at `path`) to `output`, or to standard output. A file
/// is written under a temporary name and renamed when complete.
pub fn write_file(fs: &dyn Files, e: &Entry, path: &str, output: Option<&Path>) -> Result<()> {
    if e.kind == FileType::Dir {
        return Err(Error::refused(
            Path::new(&fs.label()),
            format!("{path} is a directory"),
        ));
    }
    if e.kind == FileType::Symlink {
        // Only a deleted one gets here (live ones are followed): its target may be gone.
        return Err(Error::refused(
            Path::new(&fs.label()),
            format!(
                "{path} is a symbolic link to {} (deleted links are not followed)",
                escape(e.target.as_deref().unwrap_or("?").as_bytes())
            ),
        ));
    }
    let Some(out) = output else {
        let mut w = BufWriter::with_capacity(1 << 20, crate::out::stdout());
        fs.read_file(e, &mut w)?;
        return w.flush().map_err(crate::out::error);
    };
    let mut file = AtomicFile::create(out)?;
    let tmp = file.temp_path().to_path_buf();
    let mut w = BufWriter::with_capacity(1 << 20, file.file_mut());
    fs.read_file(e, &mut w)?;
    w.flush().map_err(|e| Error::io(&tmp, 0, e))?;
    drop(w);
    file.commit(Durability::Rename)
}

/// A path argument's bytes as given on the command line (guest names need not be UTF-8).
pub fn arg_bytes(p: &OsString) -> Vec<u8> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        p.as_bytes().to_vec()
    }
    #[cfg(not(unix))]
    {
        p.to_string_lossy().into_owned().into_bytes()
    }
}
