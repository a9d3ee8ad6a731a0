//! The file view of ext2/3/4: directories (linear and htree, read block by block; see
//! `dirent`), extents and block maps, inline data, fast and slow symlinks, holes and
//! uninitialised extents as zeros; deleted entries from directory slack (htree index
//! blocks left out), from deleted directories whose inode and blocks nothing reused, and
//! from deleted inodes (dtime set) that still carry their block map.
//!
//! Sources: Linux `fs/ext4/ext4.h` (`struct ext4_inode`, `ext4_dir_entry_2`, inode flags),
//! `fs/ext4/inline.c` (`system.data`), `fs/ext4/xattr.h` (in-inode xattr header); TSK
//! `ext2fs_dent.c` (deleted names in the slack after an entry's real length).

use super::dirent::{self, Layout, Name};
use super::inode::{self, off, Run};
use super::superblock::{INCOMPAT_FILETYPE, INCOMPAT_LARGEDIR};
use super::Ext;
use crate::files::{copy_pieces, decode_name, pieces_of, FileHandle, FileType, FileView};
use crate::Filesystem;
use diskray_core::{ByteRange, Error, RangeSet, Result, Warning};
use std::collections::{HashMap, HashSet};
use std::io::Write;

/// How ext finds an entry again: its inode number (0 for a deleted name whose inode number
/// is gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ExtHandle(pub(crate) u64);

impl FileHandle for ExtHandle {
    fn has_content(&self) -> bool {
        self.0 != 0
    }
}

/// The entries of this file view.
type Entry = crate::files::Entry<ExtHandle>;

/// Inode flag: data is inline in the inode.
const INLINE_DATA_FL: u32 = 0x1000_0000;
/// Inode flag: the inode holds a large extended attribute value (ea_inode).
const EA_INODE_FL: u32 = 0x20_0000;
/// Inode flag: `i_blocks` counts filesystem blocks, not 512-byte sectors (huge_file).
const HUGE_FILE_FL: u32 = 0x4_0000;
/// ro_compat huge_file: `i_blocks` has 48 bits (and may count blocks, with HUGE_FILE_FL).
const RO_COMPAT_HUGE_FILE: u32 = 0x8;
/// Bytes of `i_block`: a fast symlink's target is shorter.
const I_BLOCK_BYTES: u64 = off::BLOCK_BYTES as u64;
/// `i_*time_extra`: the low 2 bits extend the seconds past 32 bits (epoch), the upper 30
/// bits are nanoseconds.
const EPOCH_MASK: u32 = 0x3;
/// The first ordinary inode (inodes below are reserved).
const FIRST_ORDINARY_INODE: u64 = 11;
/// Bytes of inode table read at a time when scanning for deleted inodes.
const INODE_SCAN_BYTES: u64 = 1 << 20;
/// Inode number of the root directory.
const ROOT_INO: u64 = 2;
/// Largest directory read into memory (bounds hostile sizes; real ones are far smaller).
const MAX_DIR_BYTES: u64 = 256 << 20;
/// Byte offsets and values of the in-inode extended attributes (`fs/ext4/xattr.h`): the
/// magic right after the large inode's fields, then `ext4_xattr_entry`s (values counted from the
/// first entry).
mod xattr {
    /// The value of `h_magic` (u32), which starts the area.
    pub const MAGIC: u32 = 0xEA02_0000;
    /// Inodes this size or smaller are not searched: the 32 bytes of large-inode fields
    /// fill them.
    pub const MIN_INODE_BYTES: usize = 160;
    /// Bytes of the `h_magic` header before the first entry.
    pub const HEADER_BYTES: usize = 4;
    /// Entry: `e_name_len` (u8).
    pub const NAME_LEN: usize = 0;
    /// Entry: `e_name_index` (u8).
    pub const NAME_INDEX: usize = 1;
    /// Entry: `e_value_offs` (u16).
    pub const VALUE_OFFS: usize = 2;
    /// Entry: `e_value_size` (u32).
    pub const VALUE_SIZE: usize = 8;
    /// Bytes of an entry before its name.
    pub const ENTRY_BYTES: usize = 16;
    /// `e_name_index` of the `system.` namespace.
    pub const INDEX_SYSTEM: u8 = 7;
    /// Entries (name included) are padded to this.
    pub const PAD: usize = 4;
}

/// The value of the in-inode `system.data` xattr (inline data past `i_block`), if the
/// inode holds one whole; a damaged xattr area reads as none, as before.
fn inline_xattr<'a>(f: &diskray_core::Fields<'a>) -> Option<&'a [u8]> {
    if f.len() <= xattr::MIN_INODE_BYTES {
        return None;
    }
    let base = off::GOOD_OLD_SIZE + f.le16(off::EXTRA_ISIZE).ok()? as usize;
    if f.le32(base).ok()? != xattr::MAGIC {
        return None;
    }
    let first = base + xattr::HEADER_BYTES;
    let mut o = first;
    while let Ok(e) = f.sub(o, xattr::ENTRY_BYTES, "ext xattr entry") {
        if e.le32(0).ok()? == 0 {
            break;
        }
        let name_len = e.u8(xattr::NAME_LEN).ok()? as usize;
        let index = e.u8(xattr::NAME_INDEX).ok()?;
        let value_offs = e.le16(xattr::VALUE_OFFS).ok()? as usize;
        let value_size = e.le32(xattr::VALUE_SIZE).ok()? as usize;
        let name = f.bytes(o + xattr::ENTRY_BYTES, name_len).unwrap_or(&[]);
        if index == xattr::INDEX_SYSTEM && name == b"data" {
            return f.bytes(first + value_offs, value_size).ok();
        }
        o += (xattr::ENTRY_BYTES + name_len).div_ceil(xattr::PAD) * xattr::PAD;
    }
    None
}

/// A parsed inode.
#[derive(Debug, Clone)]
pub struct Inode {
    /// Inode number.
    pub ino: u64,
    /// Byte offset in the volume.
    pub at: u64,
    /// The raw inode.
    pub raw: Vec<u8>,
    /// Mode bits.
    pub mode: u16,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, seconds since 1970 (with ext4's extra epoch bits).
    pub mtime: i64,
    /// Nanoseconds of the modification time (0 without `i_mtime_extra`).
    pub mtime_nsec: u32,
    /// Deletion time (0 = live).
    pub dtime: u32,
    /// Hard links.
    pub links: u16,
    /// Flags.
    pub flags: u32,
    /// 512-byte sectors held (the kernel's `ext4_inode_blocks`: 48 bits with huge_file).
    pub blocks: u64,
    /// Block of the extended attributes (`i_file_acl`, 0 = none).
    pub file_acl: u64,
}

/// A time from its 32-bit field and, when the inode has it, its `_extra` field: the kernel's
/// `ext4_decode_extra_time` (seconds = the signed 32-bit base + epoch × 2^32).
pub fn decode_time(base: u32, extra: Option<u32>) -> (i64, u32) {
    let sec = base as i32 as i64;
    match extra {
        Some(x) => (sec + ((x & EPOCH_MASK) as i64) * (1 << 32), x >> 2),
        None => (sec, 0),
    }
}

impl Inode {
    fn kind(&self) -> FileType {
        FileType::from_mode(self.mode)
    }
}

impl Ext<'_> {
    fn inode_table(&self, group: u64) -> Option<u64> {
        self.descriptors()
            .ok()?
            .get(group as usize)
            .map(|d| d.inode_table)
    }

    /// Reads inode `ino`.
    pub fn inode(&self, ino: u64) -> Result<Inode> {
        let sb = &self.sb;
        let at = inode::inode_offset(&self.slice, sb, |g| self.inode_table(g), ino)?;
        let raw = self.slice.read_vec(at, sb.inode_size)?;
        let f = self.slice.fields(&raw, "ext inode", at);
        let flags = f.le32(off::FLAGS)?;
        // The large inode's fields count up to 128 + i_extra_isize (kernel
        // `EXT4_FITS_IN_INODE`).
        let extra_end = if raw.len() > off::GOOD_OLD_SIZE {
            off::GOOD_OLD_SIZE + f.le16(off::EXTRA_ISIZE)? as usize
        } else {
            off::GOOD_OLD_SIZE
        };
        let mtime_extra = if off::MTIME_EXTRA + 4 <= extra_end.min(raw.len()) {
            Some(f.le32(off::MTIME_EXTRA)?)
        } else {
            None
        };
        let (mtime, mtime_nsec) = decode_time(f.le32(off::MTIME)?, mtime_extra);
        let blocks_lo = f.le32(off::BLOCKS_LO)? as u64;
        let blocks = if sb.ro_compat & RO_COMPAT_HUGE_FILE != 0 {
            let b = blocks_lo | (f.le16(off::BLOCKS_HIGH)? as u64) << 32;
            if flags & HUGE_FILE_FL != 0 {
                b << (sb.block_size.trailing_zeros() - 9)
            } else {
                b
            }
        } else {
            blocks_lo
        };
        Ok(Inode {
            ino,
            at,
            mode: f.le16(off::MODE)?,
            size: f.le32(off::SIZE_LO)? as u64 | (f.le32(off::SIZE_HIGH)? as u64) << 32,
            mtime,
            mtime_nsec,
            dtime: f.le32(off::DTIME)?,
            links: f.le16(off::LINKS_COUNT)?,
            flags,
            blocks,
            file_acl: f.le32(off::FILE_ACL_LO)? as u64 | (f.le16(off::FILE_ACL_HIGH)? as u64) << 32,
            raw,
        })
    }

    /// Inline data: the 60 bytes of `i_block`, then the `system.data` xattr.
    fn inline_data(&self, ino: &Inode) -> Vec<u8> {
        let r = &ino.raw;
        let mut data = r[off::BLOCK..off::BLOCK + off::BLOCK_BYTES].to_vec();
        if let Some(v) = inline_xattr(&self.slice.fields(r, "ext inode", ino.at)) {
            data.extend_from_slice(v);
        }
        data.truncate(ino.size as usize);
        data
    }

    fn runs_of(&self, ino: &Inode) -> Result<Vec<Run>> {
        let nblocks = ino.size.div_ceil(self.sb.block_size);
        let mut runs = inode::runs_of(
            &self.slice,
            &self.sb,
            &ino.raw[..off::GOOD_OLD_SIZE],
            ino.at,
            nblocks,
        )?;
        runs.sort_by_key(|r| r.logical);
        for r in &runs {
            if r.physical
                .checked_add(r.len)
                .is_none_or(|e| e > self.sb.blocks_count)
            {
                return Err(self.slice.corrupt(
                    ino.at,
                    format!(
                        "ext inode {}: blocks {}+{} lie past the end of the filesystem",
                        ino.ino, r.physical, r.len
                    ),
                ));
            }
        }
        Ok(runs)
    }

    /// Streams `ino`'s content (`limit` bytes at most) to `out`.
    fn stream(&self, ino: &Inode, limit: u64, out: &mut dyn Write) -> Result<u64> {
        let size = ino.size.min(limit);
        let werr = |e: std::io::Error| Error::output("file data", e);
        if ino.flags & INLINE_DATA_FL != 0 {
            let data = self.inline_data(ino);
            let n = (data.len() as u64).min(size) as usize;
            out.write_all(&data[..n]).map_err(werr)?;
            return Ok(n as u64);
        }
        let bs = self.sb.block_size;
        let extents = self.runs_of(ino)?.into_iter().map(|r| {
            (
                r.logical * bs,
                r.len * bs,
                (!r.zeroed).then_some(r.physical * bs),
            )
        });
        copy_pieces(&self.slice, &pieces_of(extents, size), out)
    }

    /// The entries of a directory: live entries (without `.` and `..`) and the deleted
    /// names found in it that are deleted files (see [`dirent`]): htree index blocks are
    /// not scanned, and stale copies of live entries are dropped.
    fn dir_records(&self, dir: &Inode) -> Result<(Vec<Name>, Vec<Name>)> {
        if dir.size > MAX_DIR_BYTES {
            return Err(self.slice.corrupt(
                dir.at,
                format!(
                    "ext directory inode {} is {} bytes (more than {MAX_DIR_BYTES} accepted)",
                    dir.ino, dir.size
                ),
            ));
        }
        let mut data = Vec::new();
        self.stream(dir, dir.size, &mut data)?;
        let sb = &self.sb;
        let layout = Layout {
            filetype: sb.incompat & INCOMPAT_FILETYPE != 0,
            max_ino: sb.inodes_per_group * sb.groups(),
        };
        let inline = dir.flags & INLINE_DATA_FL != 0;
        let (live, dead) = if inline {
            // Inline directory: the parent inode, then entries.
            dirent::parse_dir(&data[4.min(data.len())..], data.len(), layout, None)
        } else {
            let htree =
                (dir.flags & dirent::INDEX_FL != 0).then_some(sb.incompat & INCOMPAT_LARGEDIR != 0);
            dirent::parse_dir(&data, sb.block_size as usize, layout, htree)
        };
        Ok((live, dead))
    }

    /// The entry for `name` → `ino`. A problem reading the inode or a symlink's target
    /// does not fail: it is reported in the entry's `error`, so that a listing goes on.
    fn entry(&self, name: &[u8], ino: u64) -> Entry {
        let (name, raw_name) = decode_name(name);
        let mut e = Entry {
            name,
            kind: FileType::Other,
            inode: ino,
            raw_name,
            handle: ExtHandle(ino),
            ..Default::default()
        };
        let i = match self.inode(ino) {
            Ok(i) => i,
            Err(err) => {
                e.error = Some(err.to_string());
                return e;
            }
        };
        e.kind = i.kind();
        e.size = i.size;
        e.mtime = Some(i.mtime);
        e.mtime_nsec = i.mtime_nsec;
        if e.kind == FileType::Symlink {
            match self.symlink_target(&i) {
                Ok(t) => e.target = Some(t),
                Err(err) => e.error = Some(err.to_string()),
            }
        }
        e
    }

    /// A fast symlink keeps its target in `i_block`: the kernel's
    /// `ext4_inode_is_fast_symlink`. Without EA_INODE_FL, a symlink is fast when it holds
    /// no block but its extended-attribute block (one cluster, counted in `i_blocks`) and is
    /// not inline data; with it, when its size is below 60.
    fn is_fast_symlink(&self, i: &Inode) -> bool {
        if i.kind() != FileType::Symlink {
            return false;
        }
        if i.flags & EA_INODE_FL != 0 {
            return i.size != 0 && i.size < I_BLOCK_BYTES;
        }
        let ea_sectors = if i.file_acl != 0 {
            self.sb.cluster_size() >> 9
        } else {
            0
        };
        i.flags & INLINE_DATA_FL == 0 && i.blocks.checked_sub(ea_sectors) == Some(0)
    }

    fn symlink_target(&self, i: &Inode) -> Result<String> {
        let bytes = if self.is_fast_symlink(i) {
            // The kernel refuses a fast symlink whose length does not fit i_block.
            if i.size == 0 || i.size >= I_BLOCK_BYTES {
                return Err(self.slice.corrupt(
                    i.at,
                    format!(
                        "ext inode {}: fast symlink of {} bytes (1 to {} fit i_block)",
                        i.ino,
                        i.size,
                        I_BLOCK_BYTES - 1
                    ),
                ));
            }
            i.raw[off::BLOCK..off::BLOCK + i.size as usize].to_vec()
        } else {
            let mut v = Vec::new();
            self.stream(i, 4096, &mut v)?;
            v
        };
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn inode_free(&self, ino: u64, bitmaps: &mut HashMap<u64, Vec<u8>>) -> Result<bool> {
        let sb = &self.sb;
        let g = (ino - 1) / sb.inodes_per_group;
        let d = self
            .descriptors()?
            .get(g as usize)
            .copied()
            .ok_or_else(|| {
                self.slice
                    .corrupt(0, format!("ext inode {ino}: no group {g}"))
            })?;
        if d.flags & super::group::INODE_UNINIT != 0 && sb.has_group_csum() {
            return Ok(true);
        }
        if let std::collections::hash_map::Entry::Vacant(slot) = bitmaps.entry(g) {
            let at = d.inode_bitmap.checked_mul(sb.block_size).ok_or_else(|| {
                self.slice.corrupt(
                    0,
                    format!(
                        "ext group {g}: inode bitmap at block {}, past any volume",
                        d.inode_bitmap
                    ),
                )
            })?;
            slot.insert(self.slice.read_vec(at, sb.block_size)?);
        }
        let bit = (ino - 1) % sb.inodes_per_group;
        Ok(bitmaps[&g][(bit / 8) as usize] & (1 << (bit % 8)) == 0)
    }

    /// A deleted entry for `name` and inode `ino`; `file_type` is the directory entry's
    /// type byte, the only type known when the inode number is gone.
    fn deleted_entry(
        &self,
        name: &[u8],
        ino: u64,
        file_type: u8,
        used: &RangeSet,
        bitmaps: &mut HashMap<u64, Vec<u8>>,
    ) -> Result<Entry> {
        let (name, raw_name) = decode_name(name);
        if ino == 0 {
            // The name survived, its inode number did not (TSK shows it as inode 0): there
            // is nothing to recover.
            return Ok(Entry {
                name,
                kind: match file_type {
                    dirent::FT_REG => FileType::File,
                    dirent::FT_DIR => FileType::Dir,
                    dirent::FT_SYMLINK => FileType::Symlink,
                    _ => FileType::Other,
                },
                inode: 0,
                deleted: true,
                recoverable: Some(false),
                raw_name,
                handle: ExtHandle(0),
                ..Default::default()
            });
        }
        let i = self.inode(ino)?;
        let free = self.inode_free(ino, bitmaps)?;
        let mut e = Entry {
            name,
            kind: i.kind(),
            size: i.size,
            inode: ino,
            mtime: Some(i.mtime),
            deleted: true,
            recoverable: Some(false),
            raw_name,
            mtime_nsec: i.mtime_nsec,
            handle: ExtHandle(ino),
            ..Default::default()
        };
        if !free {
            return Ok(e); // the inode was reused by a live file
        }
        let runs = if i.flags & INLINE_DATA_FL != 0 {
            Ok(Vec::new())
        } else {
            self.runs_of(&i)
        };
        if let Ok(runs) = runs {
            let bs = self.sb.block_size;
            let has_blocks = !runs.is_empty() || i.size == 0 || i.flags & INLINE_DATA_FL != 0;
            let reused = runs.iter().any(|r| {
                !used
                    .intersection(&RangeSet::from_iter([ByteRange::new(
                        r.physical * bs,
                        r.len * bs,
                    )]))
                    .is_empty()
            });
            e.recoverable = Some(has_blocks && !reused);
        }
        Ok(e)
    }
}

impl FileView for Ext<'_> {
    type Handle = ExtHandle;

    fn root(&self) -> Result<Entry> {
        self.inode(ROOT_INO)?;
        Ok(self.entry(b"", ROOT_INO))
    }

    fn read_dir(&self, dir: &Entry) -> Result<Vec<Entry>> {
        let ExtHandle(ino) = dir.handle;
        let (live, _) = self.dir_records(&self.inode(ino)?)?;
        Ok(live
            .into_iter()
            .map(|n| self.entry(&n.name, n.ino))
            .collect())
    }

    fn read_file(&self, file: &Entry, out: &mut dyn Write) -> Result<u64> {
        let ExtHandle(ino) = file.handle;
        let i = self.inode(ino)?;
        self.stream(&i, i.size, out)
    }

    fn extents(&self, entry: &Entry) -> Result<Vec<ByteRange>> {
        let ExtHandle(ino) = entry.handle;
        let i = self.inode(ino)?;
        if i.flags & INLINE_DATA_FL != 0 {
            return Ok(vec![ByteRange::new(
                i.at + off::BLOCK as u64,
                i.size.min(I_BLOCK_BYTES),
            )]);
        }
        let bs = self.sb.block_size;
        let mut out: Vec<ByteRange> = Vec::new();
        for r in self.runs_of(&i)? {
            let range = ByteRange::new(r.physical * bs, r.len * bs);
            match out.last_mut() {
                Some(last) if last.end() == range.start => last.length += range.length,
                _ => out.push(range),
            }
        }
        Ok(out)
    }

    fn deleted(&self) -> Result<Vec<(String, Entry)>> {
        let used = self.allocation()?.used;
        let mut bitmaps = HashMap::new();
        let mut out = Vec::new();
        let mut named = HashSet::new();
        // Deleted names, directory by directory: live directories, and deleted ones whose
        // inode and blocks nothing reused (as TSK's fls walks them). Every name in a deleted
        // directory is deleted, live-looking or not.
        let mut stack = vec![(String::new(), ROOT_INO, false, 0usize)];
        let mut seen = HashSet::new();
        let mut from_deleted_dirs = 0usize;
        while let Some((path, ino, dir_deleted, depth)) = stack.pop() {
            if depth > crate::files::MAX_DEPTH || !seen.insert(ino) {
                continue;
            }
            let Ok(dir) = self.inode(ino) else { continue };
            let Ok((live, dead)) = self.dir_records(&dir) else {
                continue;
            };
            let names = if dir_deleted {
                let n = live.len() + dead.len();
                if !self
                    .notes
                    .count_deleted_dir_entries(&mut from_deleted_dirs, n)
                {
                    break;
                }
                live.into_iter().chain(dead).collect()
            } else {
                for n in live {
                    if let Ok(c) = self.inode(n.ino) {
                        if c.kind() == FileType::Dir {
                            let name = String::from_utf8_lossy(&n.name);
                            stack.push((format!("{path}/{name}"), n.ino, false, depth + 1));
                        }
                    }
                }
                dead
            };
            for n in names {
                if let Ok(e) = self.deleted_entry(&n.name, n.ino, n.file_type, &used, &mut bitmaps)
                {
                    named.insert(n.ino);
                    let p = format!("{path}/{}", e.name);
                    // A deleted directory is read when its inode is free and its blocks
                    // (or inline data) are all still free: `recoverable`.
                    if e.kind == FileType::Dir && e.inode != 0 && e.recoverable == Some(true) {
                        stack.push((p.clone(), e.inode, true, depth + 1));
                    }
                    out.push((p, e));
                }
            }
        }
        // Deleted inodes no name points to any more.
        let sb = &self.sb;
        for g in 0..sb.groups() {
            let Some(d) = self.descriptors()?.get(g as usize).copied() else {
                break;
            };
            if d.flags & super::group::INODE_UNINIT != 0 && sb.has_group_csum() {
                continue;
            }
            // Read the table a piece at a time: its size comes from the superblock.
            let per_piece = (INODE_SCAN_BYTES / sb.inode_size).max(1);
            let table_at = d.inode_table.checked_mul(sb.block_size).ok_or_else(|| {
                self.slice.corrupt(
                    0,
                    format!(
                        "ext group {g}: inode table at block {}, past any volume",
                        d.inode_table
                    ),
                )
            })?;
            let mut first = 0;
            while first < sb.inodes_per_group {
                let count = per_piece.min(sb.inodes_per_group - first);
                let table = self.slice.read_vec(
                    table_at.saturating_add(first * sb.inode_size),
                    count * sb.inode_size,
                )?;
                for (k, raw) in table.chunks(sb.inode_size as usize).enumerate() {
                    let ino = g * sb.inodes_per_group + first + k as u64 + 1;
                    let raw_at = d.inode_table * sb.block_size + (first + k as u64) * sb.inode_size;
                    let f = self.slice.fields(raw, "ext inode", raw_at);
                    let (dtime, mode) = (f.le32(off::DTIME)?, f.le16(off::MODE)?);
                    if dtime == 0 || mode == 0 || named.contains(&ino) || ino < FIRST_ORDINARY_INODE
                    {
                        continue;
                    }
                    let name = format!("OrphanFile-{ino}");
                    if let Ok(e) = self.deleted_entry(name.as_bytes(), ino, 0, &used, &mut bitmaps)
                    {
                        if e.size > 0 {
                            out.push((format!("/$OrphanFiles/OrphanFile-{ino}"), e));
                        }
                    }
                }
                first += count;
            }
        }
        Ok(out)
    }

    fn label(&self) -> String {
        format!("{} ({})", self.slice_label(), self.content.name())
    }

    fn warnings(&self) -> Vec<Warning> {
        self.notes.after(self.journal_note())
    }
}

#[cfg(test)]
mod tests {
    use super::decode_time;

    #[test]
    fn extra_time_bits_as_the_kernel_decodes_them() {
        // 2345-06-07T12:34:56.123456789Z as the kernel stored it (debugfs: 0xc22a1570:1d6f3457).
        assert_eq!(
            decode_time(0xc22a_1570, Some(0x1d6f_3457)),
            (11_847_472_496, 123_456_789)
        );
        // 2039-12-31T23:59:59.5Z: epoch 1, a negative base.
        assert_eq!(
            decode_time(0x83aa_7e7f, Some(0x7735_9401)),
            (2_208_988_799, 500_000_000)
        );
        // 1969-12-31T23:59:59.999999999Z: epoch 0, base -1.
        assert_eq!(
            decode_time(0xffff_ffff, Some(0xee6b_27fc)),
            (-1, 999_999_999)
        );
        // The last second ext4 stores (2446-05-10T22:38:55Z), and no extra field.
        assert_eq!(decode_time(0x7fff_ffff, Some(3)), (15_032_385_535, 0));
        assert_eq!(decode_time(0x8000_0000, None), (-2_147_483_648, 0));
    }
}
