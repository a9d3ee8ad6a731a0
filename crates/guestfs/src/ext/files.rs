//! The file view of ext2/3/4: directories (linear and htree, read linearly: htree interior
//! blocks look like one empty entry), extents and block maps, inline data, fast and slow
//! symlinks, holes and uninitialised extents as zeros; deleted entries from directory slack
//! and from deleted inodes (dtime set) that still carry their block map.
//!
//! Sources: Linux `fs/ext4/ext4.h` (`struct ext4_inode`, `ext4_dir_entry_2`, inode flags),
//! `fs/ext4/inline.c` (`system.data`), `fs/ext4/xattr.h` (in-inode xattr header); TSK
//! `ext2fs_dent.c` (deleted names in the slack after an entry's real length).

use super::inode::{self, Run};
use super::Ext;
use crate::files::{copy_pieces, decode_name, pieces_of, Entry, FileType, Files, Handle};
use crate::Filesystem;
use diskray_core::{ByteRange, Error, RangeSet, Result};
use std::collections::{HashMap, HashSet};
use std::io::Write;

/// Inode flag: data is inline in the inode.
const INLINE_DATA_FL: u32 = 0x1000_0000;
/// The first ordinary inode (inodes below are reserved).
const FIRST_ORDINARY_INODE: u64 = 11;
/// Bytes of inode table read at a time when scanning for deleted inodes.
const INODE_SCAN_BYTES: u64 = 1 << 20;
/// Inode number of the root directory.
const ROOT_INO: u64 = 2;
/// Largest directory read into memory (bounds hostile sizes; real ones are far smaller).
const MAX_DIR_BYTES: u64 = 256 << 20;
/// In-inode extended attribute magic.
const XATTR_MAGIC: u32 = 0xEA02_0000;

/// A directory entry's name (its bytes as stored) and inode.
type NameIno = (Vec<u8>, u64);

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
    /// Modification time.
    pub mtime: i64,
    /// Deletion time (0 = live).
    pub dtime: u32,
    /// Hard links.
    pub links: u16,
    /// Flags.
    pub flags: u32,
    /// 512-byte sectors held (low 32 bits).
    pub blocks: u32,
}

impl Inode {
    fn kind(&self) -> FileType {
        match self.mode & 0xF000 {
            0x4000 => FileType::Dir,
            0x8000 => FileType::File,
            0xA000 => FileType::Symlink,
            _ => FileType::Other,
        }
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
        let u16_at = |o: usize| u16::from_le_bytes([raw[o], raw[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes(raw[o..o + 4].try_into().unwrap());
        Ok(Inode {
            ino,
            at,
            mode: u16_at(0),
            size: u32_at(4) as u64 | (u32_at(0x6C) as u64) << 32,
            mtime: u32_at(0x10) as i32 as i64,
            dtime: u32_at(0x14),
            links: u16_at(0x1A),
            flags: u32_at(0x20),
            blocks: u32_at(0x1C),
            raw,
        })
    }

    /// Inline data: the 60 bytes of `i_block`, then the `system.data` xattr.
    fn inline_data(&self, ino: &Inode) -> Vec<u8> {
        let mut data = ino.raw[0x28..0x28 + 60].to_vec();
        let r = &ino.raw;
        if r.len() > 160 {
            let extra = u16::from_le_bytes([r[0x80], r[0x81]]) as usize;
            let base = 128 + extra;
            if base + 4 <= r.len()
                && u32::from_le_bytes(r[base..base + 4].try_into().unwrap()) == XATTR_MAGIC
            {
                let first = base + 4;
                let mut o = first;
                while o + 16 <= r.len() && r[o..o + 4] != [0; 4] {
                    let (name_len, index) = (r[o] as usize, r[o + 1]);
                    let value_offs = u16::from_le_bytes([r[o + 2], r[o + 3]]) as usize;
                    let value_size =
                        u32::from_le_bytes(r[o + 8..o + 12].try_into().unwrap()) as usize;
                    let name = r.get(o + 16..o + 16 + name_len).unwrap_or(&[]);
                    if index == 7 && name == b"data" {
                        if let Some(v) = r.get(first + value_offs..first + value_offs + value_size)
                        {
                            data.extend_from_slice(v);
                        }
                        break;
                    }
                    o += (16 + name_len).div_ceil(4) * 4;
                }
            }
        }
        data.truncate(ino.size as usize);
        data
    }

    fn runs_of(&self, ino: &Inode) -> Result<Vec<Run>> {
        let nblocks = ino.size.div_ceil(self.sb.block_size);
        let mut runs = inode::runs_of(&self.slice, &self.sb, &ino.raw[..128], ino.at, nblocks)?;
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
        let werr = |e: std::io::Error| Error::Request(format!("writing file data: {e}"));
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

    /// The entries of a directory: live (name, inode, type byte) and deleted names found in
    /// the slack after live entries.
    fn dir_records(&self, dir: &Inode) -> Result<(Vec<NameIno>, Vec<NameIno>)> {
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
        let (mut live, mut dead) = (Vec::new(), Vec::new());
        if dir.flags & INLINE_DATA_FL != 0 {
            // Inline directory: the parent inode, then entries.
            parse_block(&data[4.min(data.len())..], &mut live, &mut dead);
        } else {
            for block in data.chunks(self.sb.block_size as usize) {
                parse_block(block, &mut live, &mut dead);
            }
        }
        live.retain(|(n, _)| n != b"." && n != b"..");
        Ok((live, dead))
    }

    fn entry(&self, name: &[u8], ino: u64) -> Result<Entry> {
        let (name, raw_name) = decode_name(name);
        let i = self.inode(ino)?;
        let kind = i.kind();
        let target = (kind == FileType::Symlink)
            .then(|| self.symlink_target(&i))
            .transpose()?;
        Ok(Entry {
            name,
            kind,
            size: i.size,
            inode: ino,
            mtime: Some(i.mtime),
            deleted: false,
            recoverable: None,
            short_name: None,
            raw_name,
            error: None,
            mtime_nsec: 0,
            target,
            handle: Handle::Inode(ino),
        })
    }

    fn symlink_target(&self, i: &Inode) -> Result<String> {
        let bytes = if i.size < 60 && i.blocks == 0 && i.flags & INLINE_DATA_FL == 0 {
            i.raw[0x28..0x28 + i.size as usize].to_vec()
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
            slot.insert(
                self.slice
                    .read_vec(d.inode_bitmap * sb.block_size, sb.block_size)?,
            );
        }
        let bit = (ino - 1) % sb.inodes_per_group;
        Ok(bitmaps[&g][(bit / 8) as usize] & (1 << (bit % 8)) == 0)
    }

    fn deleted_entry(
        &self,
        name: &[u8],
        ino: u64,
        used: &RangeSet,
        bitmaps: &mut HashMap<u64, Vec<u8>>,
    ) -> Result<Entry> {
        let (name, raw_name) = decode_name(name);
        if ino == 0 {
            // The name survived, its inode number did not (TSK shows it as inode 0).
            return Ok(Entry {
                name,
                kind: FileType::Other,
                size: 0,
                inode: 0,
                mtime: None,
                deleted: true,
                recoverable: None,
                short_name: None,
                raw_name,
                error: None,
                mtime_nsec: 0,
                target: None,
                handle: Handle::Inode(0),
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
            short_name: None,
            raw_name,
            error: None,
            mtime_nsec: 0,
            target: None,
            handle: Handle::Inode(ino),
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

/// Parses one directory block into live entries and deleted names in the slack.
fn parse_block(block: &[u8], live: &mut Vec<NameIno>, dead: &mut Vec<NameIno>) {
    let mut o = 0usize;
    while o + 8 <= block.len() {
        let ino = u32::from_le_bytes(block[o..o + 4].try_into().unwrap()) as u64;
        let rec_len = u16::from_le_bytes([block[o + 4], block[o + 5]]) as usize;
        let name_len = block[o + 6] as usize;
        if rec_len < 8 || o + rec_len > block.len() || 8 + name_len > rec_len {
            break; // damaged block: stop here (TSK does the same)
        }
        let name = &block[o + 8..o + 8 + name_len];
        if ino != 0 {
            live.push((name.to_vec(), ino));
        } else if name_len > 0 && name.iter().all(|&c| c != 0 && c != b'/') {
            // Unlinking the first entry of a block zeroes its inode and keeps its name.
            dead.push((name.to_vec(), 0));
        }
        // Slack after the real length of this entry may hold deleted entries.
        let real = if ino != 0 {
            (8 + name_len).div_ceil(4) * 4
        } else {
            0
        };
        let mut s = o + real.max(if ino == 0 { 0 } else { 8 });
        while ino != 0 && s + 8 <= o + rec_len {
            let dino = u32::from_le_bytes(block[s..s + 4].try_into().unwrap()) as u64;
            let dlen = block[s + 6] as usize;
            let drec = u16::from_le_bytes([block[s + 4], block[s + 5]]) as usize;
            let plausible = dino != 0
                && dlen > 0
                && s + 8 + dlen <= o + rec_len
                && drec >= 8 + dlen
                && block[s + 8..s + 8 + dlen]
                    .iter()
                    .all(|&c| c != 0 && c != b'/');
            if plausible {
                dead.push((block[s + 8..s + 8 + dlen].to_vec(), dino));
                s += (8 + dlen).div_ceil(4) * 4;
            } else {
                s += 4;
            }
        }
        o += rec_len;
    }
}

impl Files for Ext<'_> {
    fn root(&self) -> Result<Entry> {
        self.entry(b"", ROOT_INO)
    }

    fn read_dir(&self, dir: &Entry) -> Result<Vec<Entry>> {
        let Handle::Inode(ino) = dir.handle else {
            return Err(Error::Request("not an ext entry".into()));
        };
        let (live, _) = self.dir_records(&self.inode(ino)?)?;
        live.into_iter()
            .map(|(name, ino)| self.entry(&name, ino))
            .collect()
    }

    fn read_file(&self, file: &Entry, out: &mut dyn Write) -> Result<u64> {
        let Handle::Inode(ino) = file.handle else {
            return Err(Error::Request("not an ext entry".into()));
        };
        let i = self.inode(ino)?;
        self.stream(&i, i.size, out)
    }

    fn extents(&self, entry: &Entry) -> Result<Vec<ByteRange>> {
        let Handle::Inode(ino) = entry.handle else {
            return Ok(Vec::new());
        };
        let i = self.inode(ino)?;
        if i.flags & INLINE_DATA_FL != 0 {
            return Ok(vec![ByteRange::new(i.at + 0x28, i.size.min(60))]);
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
        // Deleted names, directory by directory.
        let mut stack = vec![(String::new(), ROOT_INO, 0usize)];
        let mut seen = HashSet::new();
        while let Some((path, ino, depth)) = stack.pop() {
            if depth > crate::files::MAX_DEPTH || !seen.insert(ino) {
                continue;
            }
            let Ok(dir) = self.inode(ino) else { continue };
            let Ok((live, dead)) = self.dir_records(&dir) else {
                continue;
            };
            for (name, dino) in dead {
                if let Ok(e) = self.deleted_entry(&name, dino, &used, &mut bitmaps) {
                    named.insert(dino);
                    out.push((format!("{path}/{}", e.name), e));
                }
            }
            for (name, cino) in live {
                if let Ok(c) = self.inode(cino) {
                    if c.kind() == FileType::Dir {
                        let name = String::from_utf8_lossy(&name);
                        stack.push((format!("{path}/{name}"), cino, depth + 1));
                    }
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
            let mut first = 0;
            while first < sb.inodes_per_group {
                let count = per_piece.min(sb.inodes_per_group - first);
                let table = self.slice.read_vec(
                    (d.inode_table * sb.block_size) + first * sb.inode_size,
                    count * sb.inode_size,
                )?;
                for (k, raw) in table.chunks(sb.inode_size as usize).enumerate() {
                    let ino = g * sb.inodes_per_group + first + k as u64 + 1;
                    let dtime = u32::from_le_bytes(raw[0x14..0x18].try_into().unwrap());
                    let mode = u16::from_le_bytes([raw[0], raw[1]]);
                    if dtime == 0 || mode == 0 || named.contains(&ino) || ino < FIRST_ORDINARY_INODE
                    {
                        continue;
                    }
                    let name = format!("OrphanFile-{ino}");
                    if let Ok(e) = self.deleted_entry(name.as_bytes(), ino, &used, &mut bitmaps) {
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
}
