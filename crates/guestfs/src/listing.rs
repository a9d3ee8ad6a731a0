//! What `ls`, `cat` and `restore-file` ask of a filesystem's files: a listing below a path
//! (live or deleted entries, with disk-absolute extents) and one file's content, found by
//! its path the way the kernel finds it.

use crate::deleted::{deleted_below, find_deleted};
use crate::files::{base64, escape, lookup_follow, resolve, walk_bytes, Entry, FileType, Files};
use diskray_core::time::iso8601;
use diskray_core::{AtomicFile, ByteRange, DiskRange, Durability, Error, Result};
use serde::Serialize;
use std::fmt;
use std::io::{BufWriter, Write};
use std::path::Path;

/// What to list below a path.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListOptions {
    /// Everything below it, not only its children.
    pub recursive: bool,
    /// The deleted entries that can still be found, instead of the live ones.
    pub deleted: bool,
    /// Each entry's extents (they cost a read of its block map).
    pub extents: bool,
}

/// One listed entry with its path.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    /// The path, lossy when its bytes are not UTF-8.
    pub path: String,
    /// The path's bytes (base64) when they are not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_bytes: Option<String>,
    /// The entry.
    #[serde(flatten)]
    pub entry: Entry,
    /// Modification time, ISO 8601.
    #[serde(rename = "mtime")]
    pub mtime_iso: Option<String>,
    /// Nanoseconds within `mtime`'s second (0 where the filesystem records none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtime_nsec: Option<u32>,
    /// Disk-absolute extents, naming their disk when the machine has several (empty
    /// unless asked for).
    pub extents: Vec<DiskRange>,
    /// The path's bytes.
    #[serde(skip)]
    pub raw_path: Vec<u8>,
}

/// `diskray ls`'s record.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    /// The entries, in walk order.
    pub entries: Vec<Listed>,
    /// How the files were read (a journal replayed, a bound reached).
    pub warnings: Vec<diskray_core::Warning>,
}

/// Lists `path` of `fs` (whose volume bytes `place` turns into disk ranges): a directory's entries
/// (everything below it with `recursive`), or the entry itself. Symlinks on the way are
/// followed; a last one is listed itself unless the path ends with `/`; rows show
/// canonical paths. With `deleted`, the deleted entries below `path` instead.
pub fn list(
    fs: &dyn Files,
    place: &dyn Fn(ByteRange) -> Vec<DiskRange>,
    path: &[u8],
    opts: ListOptions,
) -> Result<Listing> {
    let mut rows: Vec<(Vec<u8>, Entry)> = Vec::new();
    if opts.deleted {
        let found = deleted_below(fs, path, opts.recursive)?;
        rows = found
            .into_iter()
            .map(|(p, e)| (p.into_bytes(), e))
            .collect();
    } else {
        let target = resolve(fs, path, false)?;
        if target.entry.kind == FileType::Dir {
            walk_bytes(fs, &target.path, &target.entry, opts.recursive, &mut rows)?;
        } else {
            rows.push((target.path, target.entry));
        }
    }
    let entries = rows
        .into_iter()
        .map(|(p, e)| {
            let extents = match opts.extents {
                true => fs.extents(&e).unwrap_or_default(),
                false => Vec::new(),
            };
            Listed {
                path: String::from_utf8_lossy(&p).into_owned(),
                path_bytes: std::str::from_utf8(&p).is_err().then(|| base64(&p)),
                mtime_iso: e.mtime.map(iso8601),
                mtime_nsec: e.mtime.map(|_| e.mtime_nsec),
                extents: extents.into_iter().flat_map(place).collect(),
                entry: e,
                raw_path: p,
            }
        })
        .collect();
    Ok(Listing {
        entries,
        warnings: fs.warnings(),
    })
}

/// For people: one `ls -l`-like row per entry, deleted state and read errors flagged.
impl fmt::Display for Listing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for Listed {
            entry: e,
            raw_path,
            mtime_iso,
            ..
        } in &self.entries
        {
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
                .map(|t| format!(" -> {}", escape(t.as_bytes())));
            let error = e.error.as_ref().map(|err| format!(" [error: {err}]"));
            writeln!(
                f,
                "{kind} {:>12} {:>10} {:20} {}{}{flag}{}",
                e.size,
                e.inode,
                mtime_iso.as_deref().unwrap_or_default(),
                escape(raw_path),
                target.unwrap_or_default(),
                error.unwrap_or_default(),
            )?;
        }
        Ok(())
    }
}

/// A file found for `cat` or `restore-file`.
#[derive(Debug, Clone)]
pub struct Found {
    /// The entry.
    pub entry: Entry,
    /// Its path as given (deleted: as `ls --deleted` shows it), escaped for messages.
    pub shown: String,
    /// Said when a deleted file's blocks were reused: its content is not the original.
    pub warning: Option<String>,
}

/// A guest path given on the command line, as its bytes (guest names need not be UTF-8).
pub fn path_arg_bytes(p: &std::ffi::OsStr) -> Vec<u8> {
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

/// Finds the file at `path` of `fs`: symlinks followed like the kernel, the last one too;
/// with `deleted`, the deleted entry `ls --deleted` lists at that path.
pub fn find_file(fs: &dyn Files, path: &[u8], deleted: bool) -> Result<Found> {
    if !deleted {
        let entry = lookup_follow(fs, path)?;
        return Ok(Found {
            entry,
            shown: escape(path),
            warning: None,
        });
    }
    let (p, entry) = find_deleted(fs, path)?;
    let shown = escape(p.as_bytes());
    let warning = (entry.recoverable == Some(false)).then(|| {
        format!(
            "{shown}: its blocks were reused since the deletion; the content is not the original"
        )
    });
    Ok(Found {
        entry,
        shown,
        warning,
    })
}

/// Writes the content of the file `found` to `w` and returns its length (directories and
/// deleted symlinks are refused).
pub fn copy_out(fs: &dyn Files, found: &Found, w: &mut dyn Write) -> Result<u64> {
    let e = &found.entry;
    let path = &found.shown;
    if e.kind == FileType::Dir {
        let why = format!("{path} is a directory");
        return Err(Error::refused(Path::new(&fs.label()), why));
    }
    if e.kind == FileType::Symlink {
        // Only a deleted one gets here (live ones are followed): its target may be gone.
        let target = escape(e.target.as_deref().unwrap_or("?").as_bytes());
        let why = format!("{path} is a symbolic link to {target} (deleted links are not followed)");
        return Err(Error::refused(Path::new(&fs.label()), why));
    }
    fs.read_file(e, w)
}

/// Writes the content of the file `found` to `out`, under a temporary name renamed when
/// complete.
pub fn save(fs: &dyn Files, found: &Found, out: &Path) -> Result<()> {
    let mut file = AtomicFile::create(out)?;
    let tmp = file.temp_path().to_path_buf();
    let mut w = BufWriter::with_capacity(COPY_BUFFER, file.file_mut());
    copy_out(fs, found, &mut w)?;
    w.flush().map_err(|e| Error::io(&tmp, 0, e))?;
    drop(w);
    file.commit(Durability::Rename)
}

/// Buffer between a filesystem's reads and the output: large writes, few system calls.
pub const COPY_BUFFER: usize = 1 << 20;
