//! The file view of FAT12/16/32: 8.3 names (OEM code page 437, Linux's default) and VFAT
//! long names (with their checksum; the 8.3 alias is kept and accepted in paths), cluster
//! chains with loop and range checks, and deleted entries (first byte 0xE5) with their
//! long names when the deleted LFN entries still match; a deleted file's clusters are
//! assumed contiguous (the chain is zeroed on deletion) and it is recoverable only when
//! they are all still free. A deleted entry whose bytes cannot be a directory entry (NUL
//! or control bytes in its name, reserved attribute bits, an impossible date or cluster)
//! is not listed, as TSK does not. A deleted directory is read when its first cluster is
//! still free and still starts with its `.` entry: its clusters are taken as contiguous
//! (its chain is gone too), up to the first one that is in use or does not look like a
//! directory block; everything in it is deleted, and its deleted subdirectories are read
//! the same way.
//!
//! Sources: Microsoft fatgen103 §6–7 (directory entries, long names, checksum, dates,
//! the characters an 8.3 name may hold); `docs/formats.md` §3.2.5 ("Deleted dirents start
//! with 0xE5 … the clusters are free but keep their data"); TSK `fatxxfs_is_dentry` (what
//! a plausible entry is).

use super::dirent::{self, DirEntry};
use super::table;
use super::Fat;
use crate::files::{FileHandle, FileType, FileView};
use crate::probe::Content;
use diskray_core::{ByteRange, Error, Result, Warning};
use std::io::Write;

/// How FAT finds an entry again: what its directory entry says (FAT has no inode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FatHandle {
    /// First cluster (0 for an empty file or the FAT12/16 root).
    pub(crate) cluster: u32,
    /// Size in bytes from the directory entry.
    pub(crate) size: u32,
    /// A directory.
    pub(crate) dir: bool,
    /// Deleted: the chain is gone; the clusters are assumed contiguous.
    pub(crate) deleted: bool,
}

impl FileHandle for FatHandle {}

/// The entries of this file view.
type Entry = crate::files::Entry<FatHandle>;

const ATTR_DIR: u8 = 0x10;
const ATTR_VOLUME: u8 = 0x08;
const ATTR_LFN: u8 = 0x0F;
/// Largest directory read (65 536 entries of 32 bytes is the FAT limit).
const MAX_DIR_BYTES: u64 = 65_536 * 32;
/// The name bytes of the `.` and `..` entries.
const DOT: &[u8; 11] = b".          ";
const DOTDOT: &[u8; 11] = b"..         ";

/// `DIR_NTRes` flag: the base name is shown in lower case.
const NT_LOWER_BASE: u8 = 0x08;
/// `DIR_NTRes` flag: the extension is shown in lower case.
const NT_LOWER_EXT: u8 = 0x10;

/// One long-name entry gathered before the short entry it names.
struct LfnPart {
    /// Its 13 UTF-16 units.
    units: [u16; 13],
    /// `LDIR_Chksum`: the checksum of the short name it belongs to.
    checksum: u8,
}

/// One raw directory entry with the long name gathered before it.
struct RawEntry {
    name: String,
    /// The 8.3 alias, when there is a long name it differs from.
    short: Option<String>,
    attr: u8,
    cluster: u32,
    size: u32,
    mtime: i64,
    deleted: bool,
}

impl Fat<'_> {
    /// The next cluster after `c`, from the active (or first) FAT.
    fn next(&self, c: u32) -> Result<u32> {
        let b = &self.bpb;
        let copy = if b.mirroring_off() { b.active_fat() } else { 0 };
        let fat_at = (b.reserved + copy * b.fat_size) * b.bytes_per_sector;
        let kind = b.content();
        let at = table::entry_offset(kind, c as u64);
        let raw = self.slice.read_vec(fat_at + at, table::entry_bytes(kind))?;
        table::entry(
            &self.slice.fields(&raw, "FAT entry", fat_at + at),
            kind,
            c as u64,
            at,
        )
    }

    fn end_of_chain(&self, v: u32) -> bool {
        let eoc = match self.bpb.content() {
            Content::Fat12 => 0xFF8,
            Content::Fat16 => 0xFFF8,
            _ => 0x0FFF_FFF8,
        };
        v >= eoc
    }

    /// The clusters of the chain starting at `first`, at most `max` of them; loops, bad
    /// clusters and out-of-range links are errors.
    fn chain(&self, first: u32, max: u64) -> Result<Vec<u32>> {
        let last = self.bpb.clusters() as u32 + 1;
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut c = first;
        while (out.len() as u64) < max {
            if c < 2 || c > last {
                return Err(self.slice.corrupt(
                    0,
                    format!(
                        "FAT chain from cluster {first} reaches cluster {c}, outside 2..={last}"
                    ),
                ));
            }
            if !seen.insert(c) {
                return Err(self.slice.corrupt(
                    0,
                    format!("FAT chain from cluster {first} loops back to cluster {c}"),
                ));
            }
            out.push(c);
            let n = self.next(c)?;
            if self.end_of_chain(n) {
                break;
            }
            if n == 0 {
                return Err(self.slice.corrupt(
                    0,
                    format!("FAT chain from cluster {first} runs into a free cluster after {c}"),
                ));
            }
            c = n;
        }
        Ok(out)
    }

    fn cluster_at(&self, c: u32) -> u64 {
        (self.bpb.first_data_sector() + (c as u64 - 2) * self.bpb.sectors_per_cluster)
            * self.bpb.bytes_per_sector
    }

    /// The first cluster an entry names (the high word only on FAT32).
    fn entry_cluster(&self, e: &DirEntry) -> u32 {
        e.cluster(self.bpb.content() == Content::Fat32)
    }

    /// Whether the 32 bytes `e` can be a directory entry (TSK's test, a little looser):
    /// a long-name entry with a sane order byte and no cluster, or a short entry with no
    /// reserved attribute bit, only characters an 8.3 name may hold, a cluster inside
    /// the volume and possible dates and times (zero allowed where optional).
    fn plausible(&self, e: &DirEntry) -> bool {
        if e.attr == ATTR_LFN {
            let ord = e.first();
            return (ord == 0xE5 || ord & 0x80 == 0 && (1..=20).contains(&(ord & 0x3F)))
                && e.cluster_lo == 0;
        }
        if e.attr & 0xC0 != 0 {
            return false;
        }
        if e.attr & ATTR_DIR != 0 && (&e.name == DOT || &e.name == DOTDOT) {
            return true;
        }
        let ok = |c: u8| c >= 0x20 && !b"\"*+,./:;<=>?[\\]|".contains(&c);
        let first_ok = matches!(e.first(), 0xE5 | 0x05) || ok(e.first()) && e.first() != b' ';
        if !first_ok || !e.name[1..].iter().all(|&c| ok(c)) {
            return false;
        }
        let cluster = self.entry_cluster(e);
        if cluster == 1 || cluster as u64 > self.bpb.clusters() + 1 {
            return false;
        }
        let date_ok = |d: u16| {
            d == 0 || (1..=12).contains(&((d >> 5) & 0xF)) && (1..=31).contains(&(d & 0x1F))
        };
        let time_ok = |t: u16| (t >> 11) < 24 && ((t >> 5) & 0x3F) < 60 && (t & 0x1F) < 30;
        time_ok(e.crt_time)
            && date_ok(e.crt_date)
            && date_ok(e.acc_date)
            && time_ok(e.wrt_time)
            && date_ok(e.wrt_date)
    }

    /// What a cluster of a deleted directory holds: `first` is the directory's first
    /// cluster when `block` is that cluster (it must start with the `.` entry naming it).
    fn dir_block(&self, block: &[u8], first: Option<u32>) -> DirBlock {
        // A block too short for one entry is no directory block.
        let Ok(head) = DirEntry::from_bytes(block) else {
            return DirBlock::Not;
        };
        if let Some(f) = first {
            if &head.name != DOT || head.attr & ATTR_DIR == 0 || self.entry_cluster(&head) != f {
                return DirBlock::Not;
            }
        } else if head.first() == 0 {
            return DirBlock::Not;
        }
        for (i, raw) in block.chunks_exact(dirent::BYTES).enumerate() {
            let Ok(e) = DirEntry::from_bytes(raw) else {
                return DirBlock::Not;
            };
            if e.first() == 0 {
                return DirBlock::Ends;
            }
            // A `.` entry past the first block starts another directory.
            let dot = first.is_none() || i > 1;
            if !self.plausible(&e)
                || dot && e.attr != ATTR_LFN && (&e.name == DOT || &e.name == DOTDOT)
            {
                return DirBlock::Not;
            }
        }
        DirBlock::More
    }

    /// The clusters of the deleted directory whose first cluster is `first`: contiguous
    /// from it (its chain is gone), each free in the FAT and looking like a directory
    /// block, up to the one holding the end mark; none when the first cluster was reused.
    fn deleted_dir_clusters(&self, first: u32) -> Result<Vec<u32>> {
        let last = self.bpb.clusters() + 1;
        let cb = self.bpb.cluster_bytes();
        let max = (MAX_DIR_BYTES / cb).max(1);
        let mut out = Vec::new();
        let mut c = first as u64;
        while (out.len() as u64) < max && (2..=last).contains(&c) && self.next(c as u32)? == 0 {
            let block = self.slice.read_vec(self.cluster_at(c as u32), cb)?;
            match self.dir_block(&block, out.is_empty().then_some(first)) {
                DirBlock::Not => break,
                DirBlock::More => out.push(c as u32),
                DirBlock::Ends => {
                    out.push(c as u32);
                    break;
                }
            }
            c += 1;
        }
        Ok(out)
    }

    /// The clusters holding an entry's data (contiguous from the first for deleted ones).
    fn clusters_of(&self, h: &FatHandle) -> Result<Vec<u32>> {
        let FatHandle {
            cluster,
            size,
            dir,
            deleted,
        } = *h;
        if cluster == 0 {
            return Ok(Vec::new());
        }
        let cb = self.bpb.cluster_bytes();
        let wanted = if dir {
            MAX_DIR_BYTES / cb + 1
        } else {
            (size as u64).div_ceil(cb)
        };
        if deleted && dir {
            let found = self.deleted_dir_clusters(cluster)?;
            return Ok(if found.is_empty() {
                vec![cluster]
            } else {
                found
            });
        }
        if deleted {
            let last = self.bpb.clusters() + 1;
            return Ok((cluster as u64..(cluster as u64 + wanted).min(last + 1))
                .map(|c| c as u32)
                .collect());
        }
        self.chain(cluster, wanted.max(1))
    }

    fn dir_bytes(&self, h: &FatHandle) -> Result<Vec<u8>> {
        let b = &self.bpb;
        if let FatHandle {
            cluster: 0,
            dir: true,
            ..
        } = h
        {
            if b.content() != Content::Fat32 {
                let at = (b.reserved + b.num_fats * b.fat_size) * b.bytes_per_sector;
                return self.slice.read_vec(at, b.root_entries * 32);
            }
        }
        let clusters = match *h {
            FatHandle {
                cluster,
                dir: true,
                deleted: true,
                ..
            } => self.deleted_dir_clusters(cluster)?,
            _ => self.clusters_of(h)?,
        };
        let mut out = Vec::new();
        for c in clusters {
            out.extend(self.slice.read_vec(self.cluster_at(c), b.cluster_bytes())?);
        }
        Ok(out)
    }

    /// The entries of directory `h`; in a deleted directory every entry is deleted.
    fn raw_entries(&self, h: &FatHandle) -> Result<Vec<RawEntry>> {
        let in_deleted = matches!(
            h,
            FatHandle {
                dir: true,
                deleted: true,
                ..
            }
        );
        let data = self.dir_bytes(h)?;
        let mut out = Vec::new();
        let mut lfn: Vec<LfnPart> = Vec::new();
        for raw in data.chunks_exact(dirent::BYTES) {
            let e = DirEntry::from_bytes(raw)?;
            if e.first() == 0 {
                break;
            }
            let lost_first = e.first() == 0xE5;
            let deleted = lost_first || in_deleted;
            let attr = e.attr;
            if attr == ATTR_LFN {
                lfn.push(LfnPart {
                    units: e.lfn_units,
                    checksum: e.checksum,
                });
                continue;
            }
            let parts = std::mem::take(&mut lfn);
            if attr & ATTR_VOLUME != 0 || lost_first && !self.plausible(&e) {
                continue;
            }
            let checksum = |first: u8| {
                e.name[1..]
                    .iter()
                    .fold(first, |s, &c| s.rotate_right(1).wrapping_add(c))
            };
            // A deleted entry lost its first character: the long name's checksum tells it.
            let first = if lost_first && !parts.is_empty() {
                (0..=255u8)
                    .find(|&c| checksum(c) == parts[0].checksum)
                    .unwrap_or(e.first())
            } else {
                e.first()
            };
            let sum = checksum(first);
            let long = (!parts.is_empty() && parts.iter().all(|p| p.checksum == sum)).then(|| {
                let units: Vec<u16> = parts
                    .iter()
                    .rev()
                    .flat_map(|p| p.units)
                    .take_while(|&c| c != 0 && c != 0xFFFF)
                    .collect();
                String::from_utf16_lossy(&units)
            });
            let alias = long.as_ref().map(|_| short_alias(&e, first)).filter(|a| {
                long.as_ref()
                    .is_some_and(|l| l.to_lowercase() != a.to_lowercase())
            });
            let name = long.unwrap_or_else(|| short_name(&e, lost_first));
            if &e.name == DOT || &e.name == DOTDOT {
                continue;
            }
            let cluster = self.entry_cluster(&e);
            let size = e.size;
            let mtime = fat_time(e.wrt_date, e.wrt_time);
            out.push(RawEntry {
                name,
                short: alias,
                attr,
                cluster,
                size,
                mtime,
                deleted,
            });
        }
        Ok(out)
    }

    fn to_entry(&self, r: &RawEntry) -> Entry {
        let dir = r.attr & ATTR_DIR != 0;
        Entry {
            name: r.name.clone(),
            kind: if dir { FileType::Dir } else { FileType::File },
            size: if dir { 0 } else { r.size as u64 },
            inode: r.cluster as u64,
            mtime: Some(r.mtime),
            deleted: r.deleted,
            short_name: r.short.clone(),
            handle: FatHandle {
                cluster: r.cluster,
                size: r.size,
                dir,
                deleted: r.deleted,
            },
            ..Default::default()
        }
    }
}

/// What a cluster of a deleted directory holds.
enum DirBlock {
    /// Not directory entries (or the first cluster without its `.` entry).
    Not,
    /// Directory entries filling the cluster: the directory may go on.
    More,
    /// Directory entries up to the end mark.
    Ends,
}

/// The 8.3 name of an entry (with the NT lower-case flags); a deleted entry's lost first
/// character is shown as `_`.
fn short_name(e: &DirEntry, deleted: bool) -> String {
    let first = if deleted { b'_' } else { e.first() };
    let lower = |s: String, flag: bool| if flag { s.to_lowercase() } else { s };
    let (b, x) = short_parts(e, first);
    let b = lower(b, e.nt_res & NT_LOWER_BASE != 0);
    let x = lower(x, e.nt_res & NT_LOWER_EXT != 0);
    if x.is_empty() {
        b
    } else {
        format!("{b}.{x}")
    }
}

/// The 8.3 alias as stored (upper case, as Windows and mtools show it next to a long name),
/// with `first` as its first byte (a deleted entry's, recovered from the long name's
/// checksum).
fn short_alias(e: &DirEntry, first: u8) -> String {
    let (b, x) = short_parts(e, if first == 0xE5 { b'_' } else { first });
    if x.is_empty() {
        b
    } else {
        format!("{b}.{x}")
    }
}

/// Base and extension of an 8.3 name, decoded from code page 437 (0x05 in the first byte
/// stands for 0xE5), each cut at a NUL byte (never part of a name) and stripped of its
/// space padding.
fn short_parts(e: &DirEntry, first: u8) -> (String, String) {
    let mut base = [0u8; 8];
    base.copy_from_slice(&e.name[..8]);
    base[0] = if first == 0x05 { 0xE5 } else { first };
    let decode = |v: &[u8]| -> String {
        let end = v.iter().position(|&c| c == 0).unwrap_or(v.len());
        v[..end]
            .iter()
            .map(|&c| cp437(c))
            .collect::<String>()
            .trim_end_matches(' ')
            .to_string()
    };
    (decode(&base), decode(&e.name[8..]))
}

/// A byte of OEM code page 437 (Linux's default `codepage=437`) as a character.
fn cp437(c: u8) -> char {
    const HIGH: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐\
                        └┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u{A0}";
    if c < 0x80 {
        c as char
    } else {
        HIGH.chars().nth(c as usize - 0x80).unwrap_or('\u{FFFD}')
    }
}

/// A FAT date and time (local time with no zone: taken as UTC) as seconds since 1970.
fn fat_time(date: u16, time: u16) -> i64 {
    let (y, m, d) = (
        1980 + (date >> 9) as i64,
        ((date >> 5) & 0xF).clamp(1, 12) as i64,
        (date & 0x1F).max(1) as i64,
    );
    let (hh, mm, ss) = (
        (time >> 11) as i64,
        ((time >> 5) & 0x3F) as i64,
        ((time & 0x1F) * 2) as i64,
    );
    // days_from_civil (Howard Hinnant).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + hh * 3600 + mm * 60 + ss
}

impl FileView for Fat<'_> {
    type Handle = FatHandle;

    fn root(&self) -> Result<Entry> {
        let cluster = if self.bpb.content() == Content::Fat32 {
            self.bpb.root_cluster
        } else {
            0
        };
        Ok(Entry {
            name: String::new(),
            kind: FileType::Dir,
            inode: cluster as u64,
            handle: FatHandle {
                cluster,
                size: 0,
                dir: true,
                deleted: false,
            },
            ..Default::default()
        })
    }

    fn read_dir(&self, dir: &Entry) -> Result<Vec<Entry>> {
        Ok(self
            .raw_entries(&dir.handle)?
            .iter()
            .filter(|r| !r.deleted)
            .map(|r| self.to_entry(r))
            .collect())
    }

    fn read_file(&self, file: &Entry, out: &mut dyn Write) -> Result<u64> {
        let size = file.handle.size;
        let cb = self.bpb.cluster_bytes();
        let mut left = size as u64;
        for c in self.clusters_of(&file.handle)? {
            if left == 0 {
                break;
            }
            let n = left.min(cb);
            let buf = self.slice.read_vec(self.cluster_at(c), n)?;
            out.write_all(&buf)
                .map_err(|e| Error::output("file data", e))?;
            left -= n;
        }
        if left > 0 {
            return Err(self.slice.corrupt(
                0,
                format!(
                    "FAT file {:?}: its chain ends {left} bytes before its size",
                    file.name
                ),
            ));
        }
        Ok(size as u64)
    }

    fn extents(&self, entry: &Entry) -> Result<Vec<ByteRange>> {
        let cb = self.bpb.cluster_bytes();
        let mut out: Vec<ByteRange> = Vec::new();
        for c in self.clusters_of(&entry.handle)? {
            let at = self.cluster_at(c);
            match out.last_mut() {
                Some(last) if last.end() == at => last.length += cb,
                _ => out.push(ByteRange::new(at, cb)),
            }
        }
        Ok(out)
    }

    fn deleted(&self) -> Result<Vec<(String, Entry)>> {
        let mut out = Vec::new();
        let root = self.root()?;
        // Directories are known by first cluster (and deletion), claimed when first met:
        // a cluster named by several deleted directories (or by a deleted directory inside
        // itself) is read once.
        let key = |e: &Entry| (e.handle.cluster, e.handle.deleted);
        let mut seen = std::collections::HashSet::from([key(&root)]);
        let mut stack = vec![(String::new(), root, 0usize)];
        let mut from_deleted_dirs = 0usize;
        while let Some((path, dir, depth)) = stack.pop() {
            if depth > crate::files::MAX_DEPTH {
                continue;
            }
            let Ok(entries) = self.raw_entries(&dir.handle) else {
                continue;
            };
            if dir.deleted {
                let n = entries.len();
                if !self
                    .notes
                    .count_deleted_dir_entries(&mut from_deleted_dirs, n)
                {
                    break;
                }
            }
            for r in entries {
                let mut e = self.to_entry(&r);
                let p = format!("{path}/{}", e.name);
                if r.deleted {
                    if e.kind == FileType::Dir && r.cluster >= 2 {
                        // Readable when its first cluster is still free and still its own.
                        let found = self.deleted_dir_clusters(r.cluster).unwrap_or_default();
                        e.recoverable = Some(!found.is_empty());
                        if !found.is_empty() && seen.insert(key(&e)) {
                            stack.push((p.clone(), e.clone(), depth + 1));
                        }
                    } else {
                        let clusters = self.clusters_of(&e.handle).unwrap_or_default();
                        let free = clusters.iter().all(|&c| self.next(c).is_ok_and(|v| v == 0));
                        e.recoverable = Some(free && (r.size == 0 || !clusters.is_empty()));
                    }
                    out.push((p, e));
                } else if e.kind == FileType::Dir && seen.insert(key(&e)) {
                    stack.push((p, e, depth + 1));
                }
            }
        }
        Ok(out)
    }

    fn case_insensitive(&self) -> bool {
        true
    }

    fn warnings(&self) -> Vec<Warning> {
        self.notes.after(self.bpb.type_note())
    }

    fn label(&self) -> String {
        format!(
            "{} ({})",
            self.slice.label().display(),
            self.bpb.content().name()
        )
    }
}
