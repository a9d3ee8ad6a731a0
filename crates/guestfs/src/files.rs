//! The file-level view every filesystem offers: directory listings, streaming file reads,
//! a file's extents, and deleted entries that can still be found, all without mounting.

use diskray_core::{ByteRange, Error, Result};
use serde::Serialize;
use std::io::Write;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileType {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// Anything else (device, FIFO, socket).
    Other,
}

/// How a filesystem finds an entry again (its own identity for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handle {
    /// An inode number (ext, XFS).
    Inode(u64),
    /// A FAT directory entry: first cluster, size, directory or not.
    Fat {
        /// First cluster (0 for an empty file or the FAT12/16 root).
        cluster: u32,
        /// Size in bytes from the directory entry.
        size: u32,
        /// A directory.
        dir: bool,
        /// Deleted: the chain is gone; the clusters are assumed contiguous.
        deleted: bool,
    },
    /// An NTFS file record and data stream (empty = the unnamed stream).
    Ntfs {
        /// MFT record number.
        record: u64,
        /// Stream name.
        stream: String,
    },
}

/// One directory entry or deleted entry.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Its name in its directory.
    pub name: String,
    /// What it is.
    #[serde(rename = "type")]
    pub kind: FileType,
    /// Size in bytes.
    pub size: u64,
    /// Inode, MFT record, or (FAT) first cluster: the number forensic tools show.
    pub inode: u64,
    /// Modification time, seconds since 1970 UTC (front ends print it as ISO 8601).
    #[serde(skip)]
    pub mtime: Option<i64>,
    /// The entry was deleted.
    pub deleted: bool,
    /// For deleted entries: all of its data blocks are still free (not reused).
    pub recoverable: Option<bool>,
    /// FAT: the 8.3 short name, when the entry also has a long name; paths may use either.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub short_name: Option<String>,
    /// The name's on-disk bytes when they are not valid UTF-8 (`name` then holds a lossy
    /// rendering).
    #[serde(skip)]
    pub raw_name: Option<Vec<u8>>,
    /// A problem found reading this entry (a damaged inode, say): the entry is still
    /// listed, and the rest of the listing goes on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Nanoseconds within `mtime`'s second, where the filesystem records them.
    #[serde(skip)]
    pub mtime_nsec: u32,
    /// Symlink target.
    pub target: Option<String>,
    /// How to find it again.
    #[serde(skip)]
    pub handle: Handle,
}

/// File-level access to a filesystem.
pub trait Files {
    /// The root directory.
    fn root(&self) -> Result<Entry>;
    /// The live entries of `dir` (without `.` and `..`).
    fn read_dir(&self, dir: &Entry) -> Result<Vec<Entry>>;
    /// Streams the content of `file` to `out` (holes as zeros); returns the bytes written.
    fn read_file(&self, file: &Entry, out: &mut dyn Write) -> Result<u64>;
    /// The volume-relative byte ranges holding `entry`'s data, in file order.
    fn extents(&self, entry: &Entry) -> Result<Vec<ByteRange>>;
    /// Deleted entries that can still be found, with their full paths.
    fn deleted(&self) -> Result<Vec<(String, Entry)>>;
    /// Names compare case-insensitively (FAT, NTFS).
    fn case_insensitive(&self) -> bool {
        false
    }
    /// How the filesystem is being read when that is not the plain reading (a FAT32 boot
    /// sector with a FAT16 cluster count, a bound reached while listing deleted entries):
    /// front ends print these.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
    /// A name for errors.
    fn label(&self) -> String;
}

/// Most path components followed: deeper paths are refused (bounds hostile loops).
pub const MAX_DEPTH: usize = 256;

/// Finds the entry at guest path `path` (`/dir/file`).
pub fn lookup(fs: &dyn Files, path: &str) -> Result<Entry> {
    let mut cur = fs.root()?;
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.len() > MAX_DEPTH {
        return Err(Error::Request(format!(
            "{}: path {path:?} is deeper than {MAX_DEPTH} components",
            fs.label()
        )));
    }
    for (i, part) in parts.iter().enumerate() {
        if cur.kind != FileType::Dir {
            return Err(Error::Request(format!(
                "{}: {:?} is not a directory",
                fs.label(),
                parts[..i].join("/")
            )));
        }
        let entries = fs.read_dir(&cur)?;
        let found = entries.into_iter().find(|e| name_matches(fs, e, part));
        cur = found.ok_or_else(|| {
            Error::Request(format!("{}: no such file or directory: {path}", fs.label()))
        })?;
    }
    Ok(cur)
}

/// Whether `e` is named `part` in a path: by its name or (FAT) its 8.3 alias, compared
/// case-insensitively where the filesystem does.
fn name_matches(fs: &dyn Files, e: &Entry, part: &str) -> bool {
    let same = |name: &str| {
        if fs.case_insensitive() {
            name.to_lowercase() == part.to_lowercase()
        } else {
            name == part
        }
    };
    same(&e.name) || e.short_name.as_deref().is_some_and(same)
}

/// Lists `dir` and, with `recursive`, everything below it, as (path, entry) pairs, with
/// directory loops refused.
pub fn walk(
    fs: &dyn Files,
    dir_path: &str,
    dir: &Entry,
    recursive: bool,
    out: &mut Vec<(String, Entry)>,
) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    walk_inner(
        fs,
        dir_path.trim_end_matches('/'),
        dir,
        recursive,
        0,
        &mut seen,
        out,
    )
}

fn walk_inner(
    fs: &dyn Files,
    dir_path: &str,
    dir: &Entry,
    recursive: bool,
    depth: usize,
    seen: &mut std::collections::HashSet<(u64, String)>,
    out: &mut Vec<(String, Entry)>,
) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(Error::Request(format!(
            "{}: directories nest deeper than {MAX_DEPTH} below {dir_path:?} (a loop?)",
            fs.label()
        )));
    }
    let key = (dir.inode, format!("{:?}", dir.handle));
    if !seen.insert(key) {
        return Err(Error::Request(format!(
            "{}: directory {dir_path:?} appears twice in the tree: the directory structure loops",
            fs.label()
        )));
    }
    for e in fs.read_dir(dir)? {
        let path = format!("{dir_path}/{}", e.name);
        let sub = recursive && e.kind == FileType::Dir;
        out.push((path.clone(), e.clone()));
        if sub {
            walk_inner(fs, &path, &e, true, depth + 1, seen, out)?;
        }
    }
    Ok(())
}

/// A piece of a file's content: `len` bytes at volume offset `at`, or zeros when `at` is
/// `None` (holes, unwritten extents).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Piece {
    pub at: Option<u64>,
    pub len: u64,
}

/// Bytes read per piece when copying.
const PIECE: u64 = 1 << 20;
/// Pieces read in parallel before they are written in order: memory stays at this many
/// pieces whatever the file size.
const BATCH: usize = 16;

/// Copies `pieces` of `slice` to `out` in order, reading each batch in parallel.
pub(crate) fn copy_pieces(
    slice: &crate::Slice,
    pieces: &[Piece],
    out: &mut dyn Write,
) -> Result<u64> {
    use rayon::prelude::*;
    let werr = |e: std::io::Error| Error::Request(format!("writing file data: {e}"));
    // Split into pieces of at most PIECE bytes.
    let mut split = Vec::new();
    for p in pieces {
        let mut done = 0;
        while done < p.len {
            let len = (p.len - done).min(PIECE);
            split.push(Piece {
                at: p.at.map(|a| a + done),
                len,
            });
            done += len;
        }
    }
    let zeros = vec![0u8; PIECE as usize];
    // One buffer per batch slot, reused: fresh megabyte buffers would be fresh mappings,
    // and page faults would cost more than the copy.
    let mut bufs: Vec<Vec<u8>> = (0..BATCH.min(split.len()))
        .map(|_| vec![0u8; PIECE as usize])
        .collect();
    let mut total = 0;
    for batch in split.chunks(BATCH) {
        bufs.par_iter_mut()
            .zip(batch.par_iter())
            .try_for_each(|(buf, p)| match p.at {
                Some(at) => slice.read_at(&mut buf[..p.len as usize], at),
                None => Ok(()),
            })?;
        for (p, buf) in batch.iter().zip(&bufs) {
            let data = if p.at.is_some() {
                &buf[..p.len as usize]
            } else {
                &zeros[..p.len as usize]
            };
            out.write_all(data).map_err(werr)?;
            total += p.len;
        }
    }
    Ok(total)
}

/// The pieces of a file of `size` bytes from its extents, given as (file offset, length,
/// disk offset or `None` for zeros) sorted by file offset; gaps between them are holes.
pub(crate) fn pieces_of(
    extents: impl IntoIterator<Item = (u64, u64, Option<u64>)>,
    size: u64,
) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut pos = 0u64;
    for (start, len, at) in extents {
        if start >= size {
            break;
        }
        if start > pos {
            pieces.push(Piece {
                at: None,
                len: start - pos,
            });
            pos = start;
        }
        let end = start.saturating_add(len).min(size);
        if end > pos {
            pieces.push(Piece {
                at: at.map(|a| a + (pos - start)),
                len: end - pos,
            });
            pos = end;
        }
    }
    if pos < size {
        pieces.push(Piece {
            at: None,
            len: size - pos,
        });
    }
    pieces
}
