//! The file-level view every filesystem offers: directory listings, streaming file reads,
//! a file's extents, and deleted entries that can still be found, all without mounting.
//!
//! Two traits, so that each filesystem owns its handle type and callers need not know
//! which filesystem they hold. A filesystem implements [`FileView`], whose `Handle` is its
//! own [`FileHandle`] (`ext::ExtHandle`, `fat::FatHandle`, `ntfs::NtfsHandle`,
//! `xfs::XfsHandle`): its code takes and makes `Entry<ItsHandle>` and cannot be handed
//! another filesystem's. Callers hold `&dyn Files`, implemented for every `FileView` by an
//! adapter that boxes the handle of each entry it gives out ([`AnyHandle`]) and unboxes it
//! when the entry comes back. No code outside this crate can make an `AnyHandle`, so every
//! entry comes from some filesystem's listing; one handed to a filesystem of another kind
//! is refused by the adapter with an error, in that one place (one from another volume of
//! the same kind is not told apart: its handle names a record of this one). Callers cannot
//! be given the typed entries themselves without knowing at compile time which filesystem
//! a volume holds, which they learn only by probing it.

mod handle;
mod notes;

pub use handle::{AnyHandle, FileHandle};
pub(crate) use notes::Notes;

use diskray_core::{ByteRange, Error, Lookup, Result, Warning};
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

impl FileType {
    /// The type the `S_IFMT` bits of a Unix mode say, as ext and XFS inodes store it.
    pub(crate) fn from_mode(mode: u16) -> FileType {
        match mode & 0xF000 {
            0x4000 => FileType::Dir,
            0x8000 => FileType::File,
            0xA000 => FileType::Symlink,
            _ => FileType::Other,
        }
    }
}

/// One directory entry or deleted entry. `H` is its filesystem's handle type inside that
/// filesystem ([`FileView`]), and [`AnyHandle`] everywhere else ([`Files`]).
#[derive(Debug, Clone, Serialize)]
pub struct Entry<H = AnyHandle> {
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
    /// rendering); in JSON `name_bytes`, base64, only when present.
    #[serde(
        rename = "name_bytes",
        serialize_with = "serialize_base64",
        skip_serializing_if = "Option::is_none"
    )]
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
    /// How its filesystem finds it again.
    #[serde(skip)]
    pub handle: H,
}

/// An entry of nothing yet: what a filesystem's entry literals leave unsaid (no size, no
/// time, live, nothing known of recovery, no alias, raw name, error or target).
impl<H: Default> Default for Entry<H> {
    fn default() -> Self {
        Entry {
            name: String::new(),
            kind: FileType::Other,
            size: 0,
            inode: 0,
            mtime: None,
            deleted: false,
            recoverable: None,
            short_name: None,
            raw_name: None,
            error: None,
            mtime_nsec: 0,
            target: None,
            handle: H::default(),
        }
    }
}

impl<H: FileHandle> Entry<H> {
    /// A deleted entry of which only the name survived: its inode number is 0 (ext), so
    /// there is no content, size or time to find.
    pub fn name_only(&self) -> bool {
        self.deleted && !self.handle.has_content()
    }
}

impl<H> Entry<H> {
    /// The same entry with another handle.
    fn map_handle<K>(self, f: impl FnOnce(H) -> K) -> Entry<K> {
        Entry {
            name: self.name,
            kind: self.kind,
            size: self.size,
            inode: self.inode,
            mtime: self.mtime,
            deleted: self.deleted,
            recoverable: self.recoverable,
            short_name: self.short_name,
            raw_name: self.raw_name,
            error: self.error,
            mtime_nsec: self.mtime_nsec,
            target: self.target,
            handle: f(self.handle),
        }
    }
}

/// The file view a filesystem implements, with its own handle type: its code is only ever
/// handed entries carrying that type. Callers use it through [`Files`], which every
/// `FileView` is.
pub trait FileView {
    /// How this filesystem finds its entries again.
    type Handle: FileHandle;
    /// The root directory.
    fn root(&self) -> Result<Entry<Self::Handle>>;
    /// The live entries of `dir` (without `.` and `..`).
    fn read_dir(&self, dir: &Entry<Self::Handle>) -> Result<Vec<Entry<Self::Handle>>>;
    /// Streams the content of `file` to `out` (holes as zeros); returns the bytes written.
    fn read_file(&self, file: &Entry<Self::Handle>, out: &mut dyn Write) -> Result<u64>;
    /// The volume-relative byte ranges holding `entry`'s data, in file order.
    fn extents(&self, entry: &Entry<Self::Handle>) -> Result<Vec<ByteRange>>;
    /// Deleted entries that can still be found, with their full paths.
    fn deleted(&self) -> Result<Vec<(String, Entry<Self::Handle>)>>;
    /// Names compare case-insensitively (FAT, NTFS).
    fn case_insensitive(&self) -> bool {
        false
    }
    /// Where a symlink whose target reads `target` points, as a path in this filesystem
    /// (absolute from its root, or relative to the link's directory), or `None` when it
    /// points outside it.
    fn link_path(&self, target: &str) -> Option<Vec<u8>> {
        Some(target.as_bytes().to_vec())
    }
    /// How the files are read when it is not the plain on-disk state (a journal replayed
    /// in memory, a FAT32 boot sector with a FAT16 cluster count, a bound reached while
    /// listing deleted entries), for people: front ends print these.
    fn warnings(&self) -> Vec<Warning> {
        Vec::new()
    }
    /// A name for errors.
    fn label(&self) -> String;
}

/// File-level access to a filesystem, whichever it is: what callers hold (`&dyn Files`,
/// from [`crate::Filesystem::files`]). Every [`FileView`] is one; its entries carry an
/// [`AnyHandle`], turned back into the filesystem's own handle type when they are handed
/// back. An entry listed by another filesystem is refused there, in one place.
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
    fn case_insensitive(&self) -> bool;
    /// Where symlink `link` points, as a path in this filesystem (absolute from its root,
    /// or relative to the link's directory), or `None` when it points outside it.
    fn link_path(&self, link: &Entry) -> Option<Vec<u8>>;
    /// How the files are read when it is not the plain on-disk state, for people.
    fn warnings(&self) -> Vec<Warning>;
    /// A name for errors.
    fn label(&self) -> String;
}

/// `entry` with `fs`'s own handle, or an error when another filesystem listed it.
fn own<T: FileView>(fs: &T, entry: &Entry) -> Result<Entry<T::Handle>> {
    let handle = entry.handle.downcast_ref::<T::Handle>().ok_or_else(|| {
        Error::refused(
            std::path::Path::new(&fs.label()),
            format!(
                "entry \"{}\" was listed by another filesystem",
                escape(entry.name_bytes())
            ),
        )
    })?;
    let handle = handle.clone();
    Ok(entry.clone().map_handle(|_| handle))
}

fn erase<H: FileHandle>(entry: Entry<H>) -> Entry {
    entry.map_handle(AnyHandle::new)
}

impl<T: FileView> Files for T {
    fn root(&self) -> Result<Entry> {
        FileView::root(self).map(erase)
    }
    fn read_dir(&self, dir: &Entry) -> Result<Vec<Entry>> {
        let dir = own(self, dir)?;
        Ok(FileView::read_dir(self, &dir)?
            .into_iter()
            .map(erase)
            .collect())
    }
    fn read_file(&self, file: &Entry, out: &mut dyn Write) -> Result<u64> {
        FileView::read_file(self, &own(self, file)?, out)
    }
    fn extents(&self, entry: &Entry) -> Result<Vec<ByteRange>> {
        FileView::extents(self, &own(self, entry)?)
    }
    fn deleted(&self) -> Result<Vec<(String, Entry)>> {
        Ok(FileView::deleted(self)?
            .into_iter()
            .map(|(path, e)| (path, erase(e)))
            .collect())
    }
    fn case_insensitive(&self) -> bool {
        FileView::case_insensitive(self)
    }
    fn link_path(&self, link: &Entry) -> Option<Vec<u8>> {
        FileView::link_path(self, link.target.as_deref()?)
    }
    fn warnings(&self) -> Vec<Warning> {
        FileView::warnings(self)
    }
    fn label(&self) -> String {
        FileView::label(self)
    }
}

/// Most path components followed: deeper paths are refused (bounds hostile loops).
pub const MAX_DEPTH: usize = 256;

/// Most symbolic links followed while resolving one path; one more is "too many levels of
/// symbolic links", as Linux's `MAXSYMLINKS` (40) makes it ELOOP. Bounds loops, and with
/// each target's length (at most a block) the components a path can grow to.
pub const MAX_SYMLINKS: usize = 40;

impl<H> Entry<H> {
    /// The name as stored: its on-disk bytes when they are not UTF-8, else the text.
    pub fn name_bytes(&self) -> &[u8] {
        self.raw_name.as_deref().unwrap_or(self.name.as_bytes())
    }
}

/// `name` and `raw_name` of an entry from its on-disk name bytes: the text (a lossy
/// rendering when the bytes are not UTF-8) and the bytes themselves in that case only.
pub fn decode_name(bytes: &[u8]) -> (String, Option<Vec<u8>>) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), None),
        Err(_) => (
            String::from_utf8_lossy(bytes).into_owned(),
            Some(bytes.to_vec()),
        ),
    }
}

/// Whether directory entry `e` answers to path component `part`: the one name comparison
/// of path resolution (bytes as stored; case-insensitive where the filesystem is, and by
/// its 8.3 alias too on FAT).
fn name_matches(fs: &dyn Files, e: &Entry, part: &[u8]) -> bool {
    if fs.case_insensitive() {
        // FAT also accepts a long name's 8.3 alias, as mtools and Windows do.
        std::str::from_utf8(part).is_ok_and(|p| {
            let p = p.to_lowercase();
            e.name.to_lowercase() == p
                || e.short_name
                    .as_deref()
                    .is_some_and(|s| s.to_lowercase() == p)
        })
    } else {
        e.name_bytes() == part
    }
}

/// A path resolved in a filesystem.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// What the path names.
    pub entry: Entry,
    /// Its canonical path: `.`, `..` and symlinked directories resolved, each name as
    /// stored (bytes, since names need not be UTF-8).
    pub path: Vec<u8>,
}

/// One path component still to resolve, and the symlink whose target it came from.
struct Step {
    name: Vec<u8>,
    link: Option<usize>,
}

fn steps(path: &[u8], link: Option<usize>) -> impl Iterator<Item = Step> + '_ {
    path.split(|&b| b == b'/')
        .filter(|p| !p.is_empty())
        .map(move |p| Step {
            name: p.to_vec(),
            link,
        })
}

fn join(names: &[Vec<u8>]) -> Vec<u8> {
    if names.is_empty() {
        return b"/".to_vec();
    }
    let mut out = Vec::new();
    for n in names {
        out.push(b'/');
        out.extend_from_slice(n);
    }
    out
}

/// Resolves guest path `path` (bytes) as the kernel would with the filesystem mounted
/// at `/`: `.` stays, `..` goes to the parent (and stays at the root), symlinks met
/// before the last component are followed (relative targets from the link's directory,
/// absolute ones from the filesystem's root), the last one too when `follow` is set or
/// the path ends with `/`; at most [`MAX_SYMLINKS`] links in all. A path ending with `/`
/// must name a directory.
pub fn resolve(fs: &dyn Files, path: &[u8], follow: bool) -> Result<Resolved> {
    let shown = escape(path);
    let label = fs.label();
    let err = |what: String| Error::refused(std::path::Path::new(&label), what);
    let mut todo: std::collections::VecDeque<Step> = steps(path, None).collect();
    if todo.len() > MAX_DEPTH {
        return Err(err(format!(
            "path {shown} is deeper than {MAX_DEPTH} components"
        )));
    }
    let must_be_dir = path.ends_with(b"/");
    // The directories from the root down to the current one, with their names.
    let mut stack = vec![fs.root()?];
    let mut names: Vec<Vec<u8>> = Vec::new();
    // The symlinks followed: (canonical path, target as shown).
    let mut links: Vec<(Vec<u8>, String)> = Vec::new();
    while let Some(step) = todo.pop_front() {
        let cur = stack.last().expect("the root stays on the stack");
        if cur.kind != FileType::Dir {
            return Err(err(format!(
                "{}: {} is not a directory",
                shown,
                escape(&join(&names))
            )));
        }
        match step.name.as_slice() {
            b"." => continue,
            b".." => {
                if stack.len() > 1 {
                    stack.pop();
                    names.pop();
                }
                continue;
            }
            _ => {}
        }
        let found = fs
            .read_dir(cur)?
            .into_iter()
            .find(|e| name_matches(fs, e, &step.name));
        let Some(e) = found else {
            let mut missing = names.clone();
            missing.push(step.name.clone());
            return Err(match step.link {
                Some(i) => err(format!(
                    "dangling symlink {} -> {}: {} does not exist",
                    escape(&links[i].0),
                    escape(links[i].1.as_bytes()),
                    escape(&join(&missing))
                )),
                None => Error::not_found(Lookup::Path, shown, label, ""),
            });
        };
        let last = todo.is_empty();
        if e.kind == FileType::Symlink && (!last || follow || must_be_dir) {
            let mut at = names.clone();
            at.push(e.name_bytes().to_vec());
            let at = join(&at);
            if links.len() == MAX_SYMLINKS {
                return Err(err(format!(
                    "{shown}: too many levels of symbolic links (more than {MAX_SYMLINKS} followed, the last {})",
                    escape(&at)
                )));
            }
            let shown_target = e.target.clone().unwrap_or_default();
            let Some(target) = fs.link_path(&e).filter(|t| !t.is_empty()) else {
                return Err(err(format!(
                    "dangling symlink {} -> {}: the target is outside this filesystem",
                    escape(&at),
                    escape(shown_target.as_bytes())
                )));
            };
            if target.starts_with(b"/") {
                stack.truncate(1);
                names.clear();
            }
            links.push((at, shown_target));
            let expanded: Vec<Step> = steps(&target, Some(links.len() - 1)).collect();
            if todo.len() + expanded.len() > MAX_DEPTH * (MAX_SYMLINKS + 1) {
                return Err(err(format!(
                    "path {shown} grows deeper than {} components through its symlinks",
                    MAX_DEPTH * (MAX_SYMLINKS + 1)
                )));
            }
            for s in expanded.into_iter().rev() {
                todo.push_front(s);
            }
            continue;
        }
        if stack.len() > MAX_DEPTH {
            return Err(err(format!(
                "path {shown} is deeper than {MAX_DEPTH} directories"
            )));
        }
        names.push(e.name_bytes().to_vec());
        stack.push(e);
    }
    let entry = stack.pop().expect("the root stays on the stack");
    if must_be_dir && entry.kind != FileType::Dir {
        return Err(err(format!(
            "{shown}: {} is not a directory",
            escape(&join(&names))
        )));
    }
    Ok(Resolved {
        entry,
        path: join(&names),
    })
}

/// Finds the entry at guest path `path` (`/dir/file`, bytes or text) without following a
/// symlink in the last component (as `lstat` does; see [`resolve`]).
pub fn lookup(fs: &dyn Files, path: impl AsRef<[u8]>) -> Result<Entry> {
    Ok(resolve(fs, path.as_ref(), false)?.entry)
}

/// Finds what guest path `path` leads to, following a symlink in the last component too
/// (as `stat` and `open` do; see [`resolve`]).
pub fn lookup_follow(fs: &dyn Files, path: impl AsRef<[u8]>) -> Result<Entry> {
    Ok(resolve(fs, path.as_ref(), true)?.entry)
}

/// A name or path (bytes) made safe to print: `\` as `\\`, newline, tab and carriage
/// return as `\n`, `\t`, `\r`, other control bytes and bytes that are not UTF-8 as
/// `\xHH`, C1 control and bidirectional-formatting characters as `\u{HHHH}`; everything
/// else (printable UTF-8, spaces included) as it is. Unambiguous: it can be reversed.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if (c as u32) < 0x20 || c == '\x7f' => {
                    out.push_str(&format!("\\x{:02x}", c as u32))
                }
                c if c.is_control() || is_bidi_control(c) => {
                    out.push_str(&format!("\\u{{{:04x}}}", c as u32))
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Characters that reorder the text around them when printed (Unicode bidirectional
/// formatting): a name holding them could display as another name.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Standard base64 (RFC 4648, with padding): how JSON carries names that are not UTF-8.
pub fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (c.get(1).copied().unwrap_or(0) as u32) << 8
            | c.get(2).copied().unwrap_or(0) as u32;
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            out.push(if i <= c.len() {
                ABC[(n >> shift & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

fn serialize_base64<S: serde::Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(b) => s.serialize_str(&base64(b)),
        None => s.serialize_none(),
    }
}

/// Lists `dir` and, with `recursive`, everything below it, as (path, entry) pairs, with
/// directory loops refused. A subdirectory that cannot be read is listed with its `error`
/// and the walk goes on. Paths are text (names that are not UTF-8 rendered lossily): see
/// [`walk_bytes`] for the exact bytes.
pub fn walk(
    fs: &dyn Files,
    dir_path: &str,
    dir: &Entry,
    recursive: bool,
    out: &mut Vec<(String, Entry)>,
) -> Result<()> {
    let mut raw = Vec::new();
    walk_bytes(fs, dir_path.as_bytes(), dir, recursive, &mut raw)?;
    out.extend(
        raw.into_iter()
            .map(|(p, e)| (String::from_utf8_lossy(&p).into_owned(), e)),
    );
    Ok(())
}

/// [`walk`] with paths as the names' bytes.
pub fn walk_bytes(
    fs: &dyn Files,
    dir_path: &[u8],
    dir: &Entry,
    recursive: bool,
    out: &mut Vec<(Vec<u8>, Entry)>,
) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    let mut base = dir_path;
    while let Some(b) = base.strip_suffix(b"/") {
        base = b;
    }
    let entries = fs.read_dir(dir)?;
    walk_inner(fs, base, dir, entries, recursive, 0, &mut seen, out)
}

#[allow(clippy::too_many_arguments)]
fn walk_inner(
    fs: &dyn Files,
    dir_path: &[u8],
    dir: &Entry,
    entries: Vec<Entry>,
    recursive: bool,
    depth: usize,
    seen: &mut std::collections::HashSet<AnyHandle>,
    out: &mut Vec<(Vec<u8>, Entry)>,
) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(Error::refused(
            std::path::Path::new(&fs.label()),
            format!(
                "directories nest deeper than {MAX_DEPTH} below {} (a loop?)",
                escape(dir_path)
            ),
        ));
    }
    if !seen.insert(dir.handle.clone()) {
        return Err(Error::refused(
            std::path::Path::new(&fs.label()),
            format!(
                "directory {} appears twice in the tree: the directory structure loops",
                escape(dir_path)
            ),
        ));
    }
    for e in entries {
        let mut path = dir_path.to_vec();
        path.push(b'/');
        path.extend_from_slice(e.name_bytes());
        let sub = recursive && e.kind == FileType::Dir && e.error.is_none();
        let at = out.len();
        out.push((path.clone(), e.clone()));
        if sub {
            match fs.read_dir(&e) {
                Ok(children) => walk_inner(fs, &path, &e, children, true, depth + 1, seen, out)?,
                Err(err) => out[at].1.error = Some(err.to_string()),
            }
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
    let werr = |e: std::io::Error| Error::output("file data", e);
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
    // Buffers as large as the largest piece, not PIECE: a directory of one block is read
    // through here too, once per directory, and zeroing megabytes for it cost more than
    // the listing (`docs/benchmarks.md`, files).
    let largest = split.iter().map(|p| p.len).max().unwrap_or(0) as usize;
    let holes = split.iter().any(|p| p.at.is_none());
    let zeros = vec![0u8; if holes { largest } else { 0 }];
    // One buffer per batch slot, reused: fresh megabyte buffers would be fresh mappings,
    // and page faults would cost more than the copy.
    let mut bufs: Vec<Vec<u8>> = (0..BATCH.min(split.len()))
        .map(|_| vec![0u8; largest])
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A filesystem held in memory: directories by inode, symlinks with their targets.
    struct Mock {
        dirs: HashMap<u64, Vec<Entry<MockHandle>>>,
        ci: bool,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    struct MockHandle(u64);

    impl FileHandle for MockHandle {}

    fn entry(name: &[u8], inode: u64, kind: FileType, target: Option<&str>) -> Entry<MockHandle> {
        let (name, raw_name) = decode_name(name);
        Entry {
            name,
            kind,
            size: 0,
            inode,
            mtime: None,
            deleted: false,
            recoverable: None,
            short_name: None,
            raw_name,
            error: None,
            mtime_nsec: 0,
            target: target.map(str::to_string),
            handle: MockHandle(inode),
        }
    }

    impl FileView for Mock {
        type Handle = MockHandle;
        fn root(&self) -> Result<Entry<MockHandle>> {
            Ok(entry(b"", 1, FileType::Dir, None))
        }
        fn read_dir(&self, dir: &Entry<MockHandle>) -> Result<Vec<Entry<MockHandle>>> {
            Ok(self.dirs.get(&dir.handle.0).cloned().unwrap_or_default())
        }
        fn read_file(&self, _: &Entry<MockHandle>, _: &mut dyn Write) -> Result<u64> {
            Ok(0)
        }
        fn extents(&self, _: &Entry<MockHandle>) -> Result<Vec<ByteRange>> {
            Ok(Vec::new())
        }
        fn deleted(&self) -> Result<Vec<(String, Entry<MockHandle>)>> {
            Ok(Vec::new())
        }
        fn case_insensitive(&self) -> bool {
            self.ci
        }
        fn label(&self) -> String {
            "mock".into()
        }
    }

    /// / holds dir (2) with file (3), a file `caf\xe9` (4), and the given symlinks.
    fn mock(links: &[(&str, &str)]) -> Mock {
        let mut root = vec![
            entry(b"dir", 2, FileType::Dir, None),
            entry(b"caf\xe9", 4, FileType::File, None),
        ];
        for (i, (name, target)) in links.iter().enumerate() {
            root.push(entry(
                name.as_bytes(),
                100 + i as u64,
                FileType::Symlink,
                Some(target),
            ));
        }
        let dirs = HashMap::from([
            (1, root),
            (2, vec![entry(b"file", 3, FileType::File, None)]),
        ]);
        Mock { dirs, ci: false }
    }

    fn err(fs: &Mock, path: &[u8], follow: bool) -> String {
        resolve(fs, path, follow).unwrap_err().to_string()
    }

    /// A second filesystem type: its entries carry another handle type.
    struct Other;

    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    struct OtherHandle(u64);

    impl FileHandle for OtherHandle {
        fn has_content(&self) -> bool {
            self.0 != 0
        }
    }

    impl FileView for Other {
        type Handle = OtherHandle;
        fn root(&self) -> Result<Entry<OtherHandle>> {
            Ok(entry(b"", 1, FileType::Dir, None).map_handle(|h| OtherHandle(h.0)))
        }
        fn read_dir(&self, _: &Entry<OtherHandle>) -> Result<Vec<Entry<OtherHandle>>> {
            Ok(Vec::new())
        }
        fn read_file(&self, _: &Entry<OtherHandle>, _: &mut dyn Write) -> Result<u64> {
            Ok(0)
        }
        fn extents(&self, _: &Entry<OtherHandle>) -> Result<Vec<ByteRange>> {
            Ok(Vec::new())
        }
        fn deleted(&self) -> Result<Vec<(String, Entry<OtherHandle>)>> {
            Ok(vec![(
                "/gone".into(),
                Entry {
                    deleted: true,
                    ..entry(b"gone", 0, FileType::File, None).map_handle(|h| OtherHandle(h.0))
                },
            )])
        }
        fn label(&self) -> String {
            "other".into()
        }
    }

    #[test]
    fn entries_go_back_only_to_the_filesystem_that_listed_them() {
        let (mock, other): (&dyn Files, &dyn Files) = (&mock(&[]), &Other);
        let root = mock.root().unwrap();
        assert_eq!(mock.read_dir(&root).unwrap().len(), 2);
        let foreign = other.root().unwrap();
        // Same inode number, another filesystem's handle type: equal neither as handles
        // nor as entries a filesystem accepts.
        assert_eq!(foreign.inode, root.inode);
        assert_ne!(foreign.handle, root.handle);
        let refused = |r: Result<()>, by: &str| {
            let e = r.unwrap_err().to_string();
            let want = format!("{by}: entry \"\" was listed by another filesystem");
            assert_eq!(e, want);
        };
        refused(mock.read_dir(&foreign).map(drop), "mock");
        refused(mock.read_file(&foreign, &mut Vec::new()).map(drop), "mock");
        refused(mock.extents(&foreign).map(drop), "mock");
        refused(other.read_dir(&root).map(drop), "other");
        // The handle's own answers survive the erasure.
        let (_, gone) = other.deleted().unwrap().remove(0);
        assert!(gone.name_only());
        assert!(!root.name_only());
    }

    #[test]
    fn dots_resolve_and_dotdot_stays_at_the_root() {
        let fs = mock(&[]);
        for p in [
            &b"/dir/file"[..],
            b"/dir/./file",
            b"/../../dir/file",
            b"/dir/../dir/file",
            b"dir//file",
        ] {
            let r = resolve(&fs, p, false).unwrap();
            assert_eq!((r.entry.inode, r.path.as_slice()), (3, &b"/dir/file"[..]));
        }
        assert_eq!(resolve(&fs, b"/dir/..", false).unwrap().path, b"/");
        assert!(err(&fs, b"/dir/file/..", false).contains("is not a directory"));
        assert!(err(&fs, b"/dir/file/", false).contains("is not a directory"));
        assert!(err(&fs, b"/dir/nope", false).contains("no such file or directory"));
    }

    #[test]
    fn names_compare_as_bytes() {
        let fs = mock(&[]);
        assert_eq!(resolve(&fs, b"/caf\xe9", false).unwrap().entry.inode, 4);
        // The lossy rendering is not the name.
        assert!(resolve(&fs, "/caf\u{fffd}".as_bytes(), false).is_err());
        let ci = Mock {
            ci: true,
            ..mock(&[])
        };
        assert_eq!(
            resolve(&ci, b"/DIR/File", false).unwrap().path,
            b"/dir/file"
        );
    }

    #[test]
    fn symlinks_are_followed_like_the_kernel() {
        let fs = mock(&[
            ("rel", "dir/file"),
            ("abs", "/dir/../dir/file"),
            ("d", "dir"),
            ("up", "d/.."),
            ("gone", "nowhere/x"),
            ("empty", ""),
        ]);
        // The last component: not followed (lstat), followed (stat).
        assert_eq!(resolve(&fs, b"/rel", false).unwrap().entry.inode, 100);
        assert_eq!(resolve(&fs, b"/rel", true).unwrap().entry.inode, 3);
        assert_eq!(resolve(&fs, b"/abs", true).unwrap().path, b"/dir/file");
        // On the way: always; `..` after a link is the target's parent.
        assert_eq!(resolve(&fs, b"/d/file", false).unwrap().path, b"/dir/file");
        assert_eq!(resolve(&fs, b"/d/../dir", false).unwrap().path, b"/dir");
        assert_eq!(resolve(&fs, b"/up/dir", false).unwrap().path, b"/dir");
        // A trailing slash follows the last link.
        assert_eq!(resolve(&fs, b"/d/", false).unwrap().path, b"/dir");
        assert!(err(&fs, b"/rel/", false).contains("is not a directory"));
        let e = err(&fs, b"/gone", true);
        assert!(e.contains("dangling symlink /gone -> nowhere/x"), "{e}");
        assert!(err(&fs, b"/empty", true).contains("dangling symlink"));
    }

    #[test]
    fn symlink_loops_and_chains_are_bounded() {
        let chain: Vec<(String, String)> = (0..=MAX_SYMLINKS)
            .map(|i| {
                let next = if i == MAX_SYMLINKS {
                    "dir/file".to_string()
                } else {
                    format!("c{}", i + 1)
                };
                (format!("c{i}"), next)
            })
            .collect();
        let mut links: Vec<(&str, &str)> = chain
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        links.extend([("a", "b"), ("b", "a"), ("self", "self"), ("grow", "")]);
        // A target that doubles the path at each step: refused before it grows far.
        let growing = "grow/".repeat(2000);
        links.last_mut().unwrap().1 = &growing;
        let fs = mock(&links);
        // c1 takes exactly MAX_SYMLINKS links; c0 one more.
        assert_eq!(resolve(&fs, b"/c1", true).unwrap().entry.inode, 3);
        for p in [&b"/c0"[..], b"/a", b"/self", b"/self/x"] {
            let e = err(&fs, p, true);
            assert!(e.contains("too many levels of symbolic links"), "{e}");
        }
        let e = err(&fs, b"/grow", true);
        assert!(e.contains("grows deeper"), "{e}");
        let deep = b"/dir".repeat(MAX_DEPTH + 1);
        assert!(err(&fs, &deep, false).contains("deeper than"));
    }

    #[test]
    fn escape_makes_names_printable_and_unambiguous() {
        assert_eq!(escape(b"plain name.txt"), "plain name.txt");
        assert_eq!(escape("café".as_bytes()), "café");
        assert_eq!(escape(b"caf\xe9.txt"), "caf\\xe9.txt");
        assert_eq!(escape(b"a\\b\nc\td\re"), "a\\\\b\\nc\\td\\re");
        assert_eq!(escape(b"\x00\x1b[31m\x7f"), "\\x00\\x1b[31m\\x7f");
        assert_eq!(escape("\u{85}\u{202e}x".as_bytes()), "\\u{0085}\\u{202e}x");
    }

    #[test]
    fn base64_matches_rfc_4648() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), coded);
        }
        assert_eq!(base64(b"\xff\xfe\x80"), "//6A");
    }

    #[test]
    fn raw_names_only_when_not_utf8() {
        assert_eq!(decode_name(b"ok"), ("ok".to_string(), None));
        let (name, raw) = decode_name(b"caf\xe9");
        assert_eq!(name, "caf\u{fffd}");
        assert_eq!(raw.as_deref(), Some(&b"caf\xe9"[..]));
    }
}
