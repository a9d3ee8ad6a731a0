//! ext directory blocks: the live entries of a block, the deleted names left in the slack
//! of its records, and which blocks of an htree (indexed) directory are index blocks.
//!
//! A record's slack is the space between the end of its name (rounded up to 4 bytes) and
//! the end of its `rec_len`. Deleting an entry that is not the first of its block merges
//! it into the record before it, so its bytes stay in that record's slack; deleting the
//! first entry of a block zeroes its inode number (libext2fs, and Linux before 2021, keep
//! the name; Linux since wipes it). An htree leaf split copies entries to a new block and
//! packs the rest to the front of the old one, which leaves stale copies of entries that
//! are still live in the old block's slack. Index blocks (dx_root: `.`, `..` whose
//! `rec_len` runs to the end of the block, then `dx_root_info` and the `dx_entry` array;
//! dx_node: a record with inode 0 and `rec_len` = block size, then `dx_entry`s) hold no
//! names at all.
//!
//! Sources: Linux `fs/ext4/namei.c` (`dx_root`, `dx_node`, `dx_move_dirents`,
//! `dx_pack_dirents`, `ext4_generic_delete_entry`, `ext4_rec_len_from_disk`), e2fsprogs
//! `lib/ext2fs/unlink.c` and `link.c`; TSK `ext2fs_dent.c` (slack scan) and
//! `fs_dir.c` (`tsk_fs_dir_add`: a name and inode already in the directory is not added
//! again).

use diskray_core::Fields;
use std::collections::{BTreeSet, HashSet};

/// Inode flag: the directory is an htree.
pub const INDEX_FL: u32 = 0x1000;
/// Size of a directory entry's header (inode, rec_len, name_len, file_type).
const HEADER: usize = 8;
/// Byte offsets of `ext4_dir_entry_2`'s header fields (little-endian).
mod de {
    /// `inode` (u32).
    pub const INODE: usize = 0;
    /// `rec_len` (u16, encoded: see `rec_len`).
    pub const REC_LEN: usize = 4;
    /// `name_len` (u8).
    pub const NAME_LEN: usize = 6;
    /// `file_type` (u8).
    pub const FILE_TYPE: usize = 7;
}
/// Byte offsets in an htree's block 0 (`dx_root`): the `.` and `..` records, then
/// `dx_root_info`.
mod dx_root {
    /// Bytes of the `.` record.
    pub const DOT_BYTES: usize = 12;
    /// Offset of the `..` record.
    pub const DOTDOT: usize = 12;
    /// `dx_root_info.reserved_zero` (u32).
    pub const RESERVED_ZERO: usize = 0;
    /// `dx_root_info.info_length` (u8).
    pub const INFO_LENGTH: usize = 5;
    /// `dx_root_info.indirect_levels` (u8).
    pub const INDIRECT_LEVELS: usize = 6;
    /// Bytes of `dx_root_info`: the `dx_entry` array follows.
    pub const INFO_BYTES: usize = 8;
}
/// Byte offsets of a `dx_countlimit` (first of a `dx_entry` array) and of a `dx_entry`.
mod dx {
    /// `limit` (u16).
    pub const LIMIT: usize = 0;
    /// `count` (u16).
    pub const COUNT: usize = 2;
    /// `dx_entry.block` (u32; the hash is at 0).
    pub const BLOCK: usize = 4;
}
/// Offset of `dx_root_info` in block 0 (after the 12-byte `.` and `..` records).
const DX_ROOT_INFO: usize = 24;
/// Offset of the count/limit header of a dx_node (after its 8-byte empty record).
const DX_NODE_ENTRIES: usize = 8;
/// `dx_root_info.info_length`.
const DX_INFO_LENGTH: u8 = 8;
/// Size of one `dx_entry` (hash, block).
const DX_ENTRY: usize = 8;
/// The low 28 bits of a `dx_entry` block are the logical block (Linux `dx_get_block`).
const DX_BLOCK_MASK: u32 = 0x0FFF_FFFF;
/// Deepest `indirect_levels` without `largedir` (Linux `ext4_dir_htree_level` - 1).
pub const MAX_LEVELS: u8 = 1;
/// Deepest `indirect_levels` with `largedir`.
pub const MAX_LEVELS_LARGEDIR: u8 = 2;
/// Directory entry file types (with the `filetype` feature).
pub const FT_REG: u8 = 1;
/// A directory.
pub const FT_DIR: u8 = 2;
/// A symbolic link.
pub const FT_SYMLINK: u8 = 7;

/// One name found in a directory block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    /// The name's bytes as stored.
    pub name: Vec<u8>,
    /// Its inode number (0: only the name survived).
    pub ino: u64,
    /// The directory entry's file type byte (0 when the filesystem has no `filetype`).
    pub file_type: u8,
}

/// How to read the blocks of one directory.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// The filesystem records a file type in each entry (`filetype` feature).
    pub filetype: bool,
    /// The largest inode number (candidates in slack above it are not entries).
    pub max_ino: u64,
}

/// `rec_len` as stored, decoded as Linux `ext4_rec_len_from_disk` does (64 KiB blocks
/// store 65536 as 0 or 65535, and the low two bits carry bits 16-17).
fn rec_len(raw: u16, block_len: usize) -> usize {
    let raw = raw as usize;
    if block_len >= 65536 && (raw == 0 || raw == 65535) {
        return 65536;
    }
    (raw & 0xFFFC) | ((raw & 3) << 16)
}

/// The space an entry with an `n`-byte name needs (`EXT4_DIR_REC_LEN`).
fn needed(n: usize) -> usize {
    (HEADER + n).div_ceil(4) * 4
}

/// The header of the directory entry at `o` of `block`, with its `rec_len` decoded;
/// `None` past the end of the block.
#[derive(Debug, Clone, Copy)]
struct DirentHeader {
    ino: u64,
    rec_len: usize,
    name_len: usize,
    file_type: u8,
}

impl DirentHeader {
    fn read(block: &[u8], o: usize) -> Option<DirentHeader> {
        let f = Fields::in_memory(block, "ext directory entry")
            .sub(o, HEADER, "ext directory entry")
            .ok()?;
        Some(DirentHeader {
            ino: f.le32(de::INODE).ok()? as u64,
            rec_len: rec_len(f.le16(de::REC_LEN).ok()?, block.len()),
            name_len: f.u8(de::NAME_LEN).ok()? as usize,
            file_type: f.u8(de::FILE_TYPE).ok()?,
        })
    }
}

fn clean(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&c| c != 0 && c != b'/')
}

/// Parses one directory block into live entries and, when `scan_slack`, deleted names:
/// records with inode 0 that kept a name, and entries found in the slack of any record.
/// A damaged record ends the block (as the kernel and TSK do).
pub fn parse_block(
    block: &[u8],
    layout: Layout,
    scan_slack: bool,
    live: &mut Vec<Name>,
    dead: &mut Vec<Name>,
) {
    let ft = |t: u8| if layout.filetype { t } else { 0 };
    let mut o = 0usize;
    while let Some(h) = DirentHeader::read(block, o) {
        let (ino, len, name_len) = (h.ino, h.rec_len, h.name_len);
        let used = if name_len > 0 {
            needed(name_len)
        } else {
            HEADER
        };
        if len < HEADER || o + len > block.len() || used > len {
            break;
        }
        let name = &block[o + HEADER..o + HEADER + name_len];
        let this = Name {
            name: name.to_vec(),
            ino,
            file_type: ft(h.file_type),
        };
        if ino != 0 {
            live.push(this);
        } else if scan_slack && clean(name) {
            dead.push(this);
        }
        if scan_slack {
            scan(block, o + used, o + len, layout, dead);
        }
        o += len;
    }
}

/// Deleted entries in `block[from..to]`, the slack of one record: 4-byte aligned, each
/// whole inside the slack, with a plausible `rec_len`, inode number and name.
fn scan(block: &[u8], from: usize, to: usize, layout: Layout, dead: &mut Vec<Name>) {
    let mut s = from;
    while s + HEADER < to {
        let Some(h) = DirentHeader::read(block, s) else {
            break;
        };
        let (ino, len, n) = (h.ino, h.rec_len, h.name_len);
        let need = needed(n);
        let plausible = n > 0
            && s + need <= to
            && len >= need
            && s + len <= block.len()
            && ino <= layout.max_ino
            && clean(&block[s + HEADER..s + HEADER + n]);
        if plausible {
            dead.push(Name {
                name: block[s + HEADER..s + HEADER + n].to_vec(),
                ino,
                file_type: if layout.filetype { h.file_type } else { 0 },
            });
            s += need;
        } else {
            s += 4;
        }
    }
}

/// The logical blocks of an htree directory that are index blocks (block 0, the dx_root,
/// and every dx_node it leads to), read from `data` (the directory's content, `bs`-byte
/// blocks). `None` when block 0 is not a valid dx_root: the directory is then read as a
/// linear one, block by block, as the kernel's fallback and TSK do.
pub fn htree_index_blocks(data: &[u8], bs: usize, largedir: bool) -> Option<BTreeSet<u64>> {
    let nblocks = (data.len() / bs) as u64;
    let root = data.get(..bs)?;
    if bs < DX_ROOT_INFO + dx_root::INFO_BYTES + DX_ENTRY {
        return None;
    }
    let dot = DirentHeader::read(root, 0)?;
    let dotdot = DirentHeader::read(root, dx_root::DOTDOT)?;
    let info = Fields::in_memory(root, "ext dx_root")
        .sub(DX_ROOT_INFO, dx_root::INFO_BYTES, "ext dx_root_info")
        .ok()?;
    if dot.rec_len != dx_root::DOT_BYTES
        || dot.name_len != 1
        || root[HEADER] != b'.'
        || dotdot.rec_len != bs - dx_root::DOT_BYTES
        || dotdot.name_len != 2
        || info.le32(dx_root::RESERVED_ZERO).ok()? != 0
        || info.u8(dx_root::INFO_LENGTH).ok()? != DX_INFO_LENGTH
    {
        return None;
    }
    let levels = info.u8(dx_root::INDIRECT_LEVELS).ok()?;
    let max = if largedir {
        MAX_LEVELS_LARGEDIR
    } else {
        MAX_LEVELS
    };
    if levels > max {
        return None;
    }
    let mut index = BTreeSet::from([0u64]);
    let mut frontier = entries(root, DX_ROOT_INFO + dx_root::INFO_BYTES, nblocks);
    for _ in 0..levels {
        let mut next = Vec::new();
        for b in frontier {
            if b == 0 || !index.insert(b) {
                continue; // a loop or a shared block: visit each once
            }
            let node = &data[b as usize * bs..(b as usize + 1) * bs];
            next.extend(entries(node, DX_NODE_ENTRIES, nblocks));
        }
        frontier = next;
    }
    Some(index)
}

/// The blocks the `dx_entry` array at `at` (count/limit header first) points to, below
/// `nblocks`. A count over its limit or past the block is cut to what fits.
fn entries(block: &[u8], at: usize, nblocks: u64) -> Vec<u64> {
    if at + DX_ENTRY > block.len() {
        return Vec::new();
    }
    let f = Fields::in_memory(block, "ext dx_entry array");
    let (Ok(limit), Ok(count)) = (f.le16(at + dx::LIMIT), f.le16(at + dx::COUNT)) else {
        return Vec::new();
    };
    let fits = (block.len() - at) / DX_ENTRY;
    let mut seen = HashSet::new();
    (0..(count as usize).min(limit as usize).min(fits))
        .filter_map(|i| f.le32(at + i * DX_ENTRY + dx::BLOCK).ok())
        .map(|b| (b & DX_BLOCK_MASK) as u64)
        .filter(|&b| b < nblocks && seen.insert(b))
        .collect()
}

/// The live entries (without `.` and `..`) and the deleted files of a directory whose
/// content is `data` (`bs`-byte blocks; an inline directory is one block). `htree`:
/// the directory is indexed (`Some(largedir)`): its index blocks are not scanned for
/// deleted names.
pub fn parse_dir(
    data: &[u8],
    bs: usize,
    layout: Layout,
    htree: Option<bool>,
) -> (Vec<Name>, Vec<Name>) {
    let bs = bs.max(1);
    let index = htree
        .and_then(|largedir| htree_index_blocks(data, bs, largedir))
        .unwrap_or_default();
    let (mut live, mut dead) = (Vec::new(), Vec::new());
    for (i, block) in data.chunks(bs).enumerate() {
        let leaf = !index.contains(&(i as u64));
        parse_block(block, layout, leaf, &mut live, &mut dead);
    }
    live.retain(|n| n.name != b"." && n.name != b"..");
    let dead = deleted_names(&live, dead);
    (live, dead)
}

/// The deleted names of one directory that are deleted files: not a stale copy of a live
/// entry (same name and inode), each (name, inode) once, in the order found.
fn deleted_names(live: &[Name], dead: Vec<Name>) -> Vec<Name> {
    let mut seen: HashSet<(Vec<u8>, u64)> = live.iter().map(|n| (n.name.clone(), n.ino)).collect();
    dead.into_iter()
        .filter(|n| seen.insert((n.name.clone(), n.ino)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BS: usize = 1024;
    const LAYOUT: Layout = Layout {
        filetype: true,
        max_ino: 1 << 20,
    };

    fn put(b: &mut [u8], o: usize, ino: u32, rec: u16, name: &[u8], ft: u8) {
        b[o..o + 4].copy_from_slice(&ino.to_le_bytes());
        b[o + 4..o + 6].copy_from_slice(&rec.to_le_bytes());
        b[o + 6] = name.len() as u8;
        b[o + 7] = ft;
        b[o + 8..o + 8 + name.len()].copy_from_slice(name);
    }

    fn parse(b: &[u8], slack: bool) -> (Vec<Name>, Vec<Name>) {
        let (mut live, mut dead) = (Vec::new(), Vec::new());
        parse_block(b, LAYOUT, slack, &mut live, &mut dead);
        (live, dead)
    }

    fn names(v: &[Name]) -> Vec<(&str, u64)> {
        v.iter()
            .map(|n| (std::str::from_utf8(&n.name).unwrap(), n.ino))
            .collect()
    }

    #[test]
    fn slack_of_live_and_of_inode_zero_records() {
        let mut b = vec![0u8; BS];
        // first entry unlinked by libext2fs (inode 0, name kept), the next merged into it
        put(&mut b, 0, 0, 40, b"first.swp", FT_REG);
        put(&mut b, 20, 31, 20, b"second", FT_REG);
        put(&mut b, 40, 32, 40, b"live", FT_REG);
        // an entry with inode 0 absorbed into the slack of "live"
        put(&mut b, 52, 0, 20, b"gone~", FT_REG);
        put(&mut b, 80, 33, (BS - 80) as u16, b"last", FT_DIR);
        let (live, dead) = parse(&b, true);
        assert_eq!(names(&live), [("live", 32), ("last", 33)]);
        assert_eq!(
            names(&dead),
            [("first.swp", 0), ("second", 31), ("gone~", 0)]
        );
        assert_eq!(dead[0].file_type, FT_REG);
        // interior blocks: live entries only
        let (live, dead) = parse(&b, false);
        assert_eq!(live.len(), 2);
        assert!(dead.is_empty());
    }

    #[test]
    fn implausible_slack_is_skipped() {
        let mut b = vec![0u8; BS];
        put(&mut b, 0, 12, BS as u16, b"only", FT_REG);
        // not whole inside the slack, inode past the last, name with a NUL or a slash
        put(&mut b, 12, 40, 1000, b"too-long-rec", FT_REG);
        put(&mut b, 40, u32::MAX, 16, b"big", FT_REG);
        put(&mut b, 60, 41, 16, b"a/b", FT_REG);
        put(&mut b, 80, 42, 16, b"a\0b", FT_REG);
        put(&mut b, BS - 12, 43, 16, b"edge", FT_REG);
        let (_, dead) = parse(&b, true);
        assert_eq!(names(&dead), [("too-long-rec", 40)]);
        // the same record with a rec_len running past the block is refused
        b[16..18].copy_from_slice(&2000u16.to_le_bytes());
        assert!(parse(&b, true).1.is_empty());
    }

    #[test]
    fn damaged_records_end_the_block() {
        for rec in [0u16, 4, 13, 2048] {
            let mut b = vec![0u8; BS];
            put(&mut b, 0, 12, rec, b"x", FT_REG);
            let (live, dead) = parse(&b, true);
            assert!(live.is_empty() && dead.is_empty(), "rec_len {rec}");
        }
        let mut b = vec![0xFFu8; BS];
        parse(&b, true);
        b.truncate(7);
        parse(&b, true);
    }

    #[test]
    fn rec_len_of_64k_blocks() {
        assert_eq!(rec_len(0, 65536), 65536);
        assert_eq!(rec_len(65535, 65536), 65536);
        assert_eq!(rec_len(12, 4096), 12);
        assert_eq!(rec_len(1, 4096), 65536);
    }

    /// A dx_root with one level: entries 1 (a dx_node) and 2 (a dx_node); the nodes point
    /// at leaves 3 and 4.
    fn htree(levels: u8) -> Vec<u8> {
        let mut d = vec![0u8; 5 * BS];
        put(&mut d, 0, 2, 12, b".", FT_DIR);
        put(&mut d, 12, 2, (BS - 12) as u16, b"..", FT_DIR);
        d[DX_ROOT_INFO + 4] = 1; // hash version
        d[DX_ROOT_INFO + 5] = DX_INFO_LENGTH;
        d[DX_ROOT_INFO + 6] = levels;
        let dx = |d: &mut Vec<u8>, at: usize, blocks: &[u32]| {
            let limit = (BS - at % BS) / DX_ENTRY;
            d[at..at + 2].copy_from_slice(&(limit as u16).to_le_bytes());
            d[at + 2..at + 4].copy_from_slice(&(blocks.len() as u16).to_le_bytes());
            for (i, b) in blocks.iter().enumerate() {
                let e = at + i * DX_ENTRY;
                if i > 0 {
                    // a hash that looks like the start of a record
                    d[e..e + 4].copy_from_slice(&0x0114_0000u32.to_le_bytes());
                }
                d[e + 4..e + 8].copy_from_slice(&b.to_le_bytes());
            }
        };
        dx(&mut d, 32, &[1, 2]);
        for (node, leaf) in [(1usize, 3u32), (2, 4)] {
            put(&mut d, node * BS, 0, BS as u16, b"", 0);
            dx(&mut d, node * BS + DX_NODE_ENTRIES, &[leaf, 0x7000_0001]);
        }
        d
    }

    #[test]
    fn htree_index_blocks_follow_the_levels() {
        assert_eq!(
            htree_index_blocks(&htree(1), BS, false),
            Some(BTreeSet::from([0, 1, 2]))
        );
        // no levels: the root's entries are leaves
        assert_eq!(
            htree_index_blocks(&htree(0), BS, false),
            Some(BTreeSet::from([0]))
        );
        // two levels need largedir
        assert_eq!(htree_index_blocks(&htree(2), BS, false), None);
        let both = htree_index_blocks(&htree(2), BS, true).unwrap();
        assert!(both.contains(&1) && both.contains(&2) && both.contains(&3));
    }

    #[test]
    fn not_a_dx_root_is_read_linearly() {
        let mut d = htree(1);
        d[DX_ROOT_INFO + 5] = 9;
        assert_eq!(htree_index_blocks(&d, BS, false), None);
        let mut d = htree(1);
        d[16..18].copy_from_slice(&12u16.to_le_bytes());
        assert_eq!(htree_index_blocks(&d, BS, false), None);
        assert_eq!(htree_index_blocks(&[0u8; 100], BS, false), None);
        assert_eq!(htree_index_blocks(&[], BS, false), None);
    }

    #[test]
    fn hostile_index_stays_bounded() {
        let mut d = htree(1);
        // count far over the limit, nodes pointing at themselves and at the root
        d[34..36].copy_from_slice(&u16::MAX.to_le_bytes());
        d[BS + 8..BS + 10].copy_from_slice(&u16::MAX.to_le_bytes());
        d[BS + 10..BS + 12].copy_from_slice(&u16::MAX.to_le_bytes());
        d[BS + 12..BS + 16].copy_from_slice(&1u32.to_le_bytes());
        let got = htree_index_blocks(&d, BS, true).unwrap();
        assert!(got.iter().all(|&b| b < 5));
    }

    /// What a dx_node can look like to a slack scan: after a block number, a hash whose
    /// bytes read as rec_len 12, name_len 1, then the next block number as a one-byte
    /// name. TSK's scan (ext2fs_dent.c) would take it for a live entry; it is not one.
    #[test]
    fn index_blocks_are_not_scanned() {
        let mut d = htree(1);
        let node = BS;
        d[node + DX_NODE_ENTRIES + 4..node + DX_NODE_ENTRIES + 8]
            .copy_from_slice(&3u32.to_le_bytes());
        d[node + 16..node + 20].copy_from_slice(&0x0701_000Cu32.to_le_bytes());
        d[node + 20..node + 24].copy_from_slice(&0x41u32.to_le_bytes());
        let (mut live, mut dead) = (Vec::new(), Vec::new());
        parse_block(&d[node..node + BS], LAYOUT, true, &mut live, &mut dead);
        assert_eq!(names(&dead), [("A", 3)], "the hazard");
        // leaves 3 and 4: one live entry each, a deleted one in the slack of leaf 4
        put(&mut d, 3 * BS, 20, BS as u16, b"kept", FT_REG);
        put(&mut d, 4 * BS, 21, BS as u16, b"also", FT_REG);
        put(&mut d, 4 * BS + 12, 22, 12, b"gone", FT_REG);
        let (live, dead) = parse_dir(&d, BS, LAYOUT, Some(false));
        assert_eq!(names(&live), [("kept", 20), ("also", 21)]);
        assert_eq!(names(&dead), [("gone", 22)]);
        // the same bytes without the index flag are read block by block
        let (_, dead) = parse_dir(&d, BS, LAYOUT, None);
        assert!(dead.iter().any(|n| n.name == b"A"));
    }

    #[test]
    fn stale_copies_of_live_entries_are_not_deleted() {
        let n = |s: &str, ino| Name {
            name: s.into(),
            ino,
            file_type: FT_REG,
        };
        let live = [n("a", 12), n("b", 13)];
        let dead = vec![n("a", 12), n("b", 99), n("c", 0), n("c", 0), n("a", 0)];
        assert_eq!(
            names(&deleted_names(&live, dead)),
            [("b", 99), ("c", 0), ("a", 0)]
        );
    }
}
