//! Just enough of an ext inode to find where a file's blocks are: extent trees and classic
//! block maps (direct, single, double and triple indirect), as runs of physical blocks.
//!
//! Sources: Linux `fs/ext4/ext4.h` (`struct ext4_inode`), `fs/ext4/ext4_extents.h`
//! (`ext4_extent_header`, `ext4_extent`, `ext4_extent_idx`); the ext4 wiki "Extent Tree".

use super::superblock::Superblock;
use crate::slice::Slice;
use diskray_core::fields::le32_words;
use diskray_core::Result;
use std::collections::HashSet;

/// Byte offsets of `struct ext4_inode`'s fields (little-endian).
pub mod off {
    /// `i_mode` (u16).
    pub const MODE: usize = 0x00;
    /// `i_size_lo` (u32).
    pub const SIZE_LO: usize = 0x04;
    /// `i_mtime` (u32).
    pub const MTIME: usize = 0x10;
    /// `i_dtime` (u32).
    pub const DTIME: usize = 0x14;
    /// `i_links_count` (u16).
    pub const LINKS_COUNT: usize = 0x1A;
    /// `i_blocks_lo` (u32).
    pub const BLOCKS_LO: usize = 0x1C;
    /// `i_flags` (u32).
    pub const FLAGS: usize = 0x20;
    /// `i_block`: 15 u32 words (block map, extent tree root, inline data or symlink).
    pub const BLOCK: usize = 0x28;
    /// Bytes of `i_block`.
    pub const BLOCK_BYTES: usize = 60;
    /// `i_file_acl_lo` (u32).
    pub const FILE_ACL_LO: usize = 0x68;
    /// `i_size_high` (u32).
    pub const SIZE_HIGH: usize = 0x6C;
    /// `l_i_blocks_high` (u16).
    pub const BLOCKS_HIGH: usize = 0x74;
    /// `l_i_file_acl_high` (u16).
    pub const FILE_ACL_HIGH: usize = 0x76;
    /// Bytes of the original (good old) inode; the large inode's fields follow.
    pub const GOOD_OLD_SIZE: usize = 128;
    /// `i_extra_isize` (u16): bytes of large-inode fields past [`GOOD_OLD_SIZE`].
    pub const EXTRA_ISIZE: usize = 0x80;
    /// `i_mtime_extra` (u32).
    pub const MTIME_EXTRA: usize = 0x88;
}

/// Byte offsets in extent tree nodes (`ext4_extent_header`, `ext4_extent`,
/// `ext4_extent_idx`: all 12 bytes, little-endian).
pub mod extent_off {
    /// Header: `eh_magic` (u16).
    pub const MAGIC: usize = 0;
    /// Header: `eh_entries` (u16).
    pub const ENTRIES: usize = 2;
    /// Header: `eh_depth` (u16).
    pub const DEPTH: usize = 6;
    /// Bytes of the header, and of each entry after it.
    pub const ENTRY_BYTES: usize = 12;
    /// Leaf: `ee_block`, first logical block (u32).
    pub const LEAF_BLOCK: usize = 0;
    /// Leaf: `ee_len` (u16; above 32768 an uninitialised extent).
    pub const LEAF_LEN: usize = 4;
    /// Leaf: `ee_start_hi` (u16).
    pub const LEAF_START_HI: usize = 6;
    /// Leaf: `ee_start_lo` (u32).
    pub const LEAF_START_LO: usize = 8;
    /// Index: `ei_leaf_lo` (u32).
    pub const INDEX_LEAF_LO: usize = 4;
    /// Index: `ei_leaf_hi` (u16).
    pub const INDEX_LEAF_HI: usize = 8;
}

/// `ee_len` above this marks an uninitialised extent of `ee_len - 32768` blocks.
const EXT_INIT_MAX_LEN: u64 = 32768;

/// Extent tree header magic.
pub const EXTENT_MAGIC: u16 = 0xF30A;
/// Inode flag: the inode uses extents.
pub const EXTENTS_FL: u32 = 0x80000;
/// `i_block` words that map data blocks directly; the next three are the single, double
/// and triple indirect blocks.
const DIRECT_BLOCKS: usize = 12;
/// Deepest extent tree accepted (the kernel allows 5 levels).
const MAX_EXTENT_DEPTH: u16 = 5;
/// Most runs collected for one file: bounds memory on hostile trees.
pub const MAX_RUNS: usize = 1 << 20;

/// A run of a file: `len` blocks from logical block `logical` at physical block `physical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// First logical block.
    pub logical: u64,
    /// First physical block.
    pub physical: u64,
    /// Number of blocks.
    pub len: u64,
    /// An uninitialised extent: allocated, reads as zeros.
    pub zeroed: bool,
}

/// Byte offset of inode `ino` (1-based) in the volume.
pub fn inode_offset(
    slice: &Slice,
    sb: &Superblock,
    inode_table_of: impl Fn(u64) -> Option<u64>,
    ino: u64,
) -> Result<u64> {
    if ino == 0 || ino > sb.inodes_per_group * sb.groups() {
        return Err(slice.corrupt(
            0,
            format!(
                "ext inode {ino} does not exist (the filesystem has {} inodes)",
                sb.inodes_per_group * sb.groups()
            ),
        ));
    }
    let index = ino - 1;
    let group = index / sb.inodes_per_group;
    let table = inode_table_of(group).ok_or_else(|| {
        slice.corrupt(0, format!("ext inode {ino}: group {group} does not exist"))
    })?;
    // The table's block comes from a group descriptor unchecked (48 bits with 64-bit
    // descriptors): its byte offset may not fit a u64.
    table
        .checked_mul(sb.block_size)
        .and_then(|t| t.checked_add((index % sb.inodes_per_group) * sb.inode_size))
        .ok_or_else(|| {
            slice.corrupt(
                0,
                format!("ext inode {ino}: the inode table of group {group} is at block {table}, past any volume"),
            )
        })
}

/// Reads inode `ino` (1-based) and returns the runs of its first `max_blocks` blocks.
pub fn runs(
    slice: &Slice,
    sb: &Superblock,
    inode_table_of: impl Fn(u64) -> Option<u64>,
    ino: u64,
    max_blocks: u64,
) -> Result<Vec<Run>> {
    let at = inode_offset(slice, sb, inode_table_of, ino)?;
    let raw = slice.read_vec(at, 128)?;
    runs_of(slice, sb, &raw, at, max_blocks)
}

/// The runs of the inode whose first 128 bytes are `raw` (read from volume byte `at`).
pub fn runs_of(
    slice: &Slice,
    sb: &Superblock,
    raw: &[u8],
    at: u64,
    max_blocks: u64,
) -> Result<Vec<Run>> {
    let f = slice.fields(raw, "ext inode", at);
    let flags = f.le32(off::FLAGS)?;
    let i_block = f.bytes(off::BLOCK, off::BLOCK_BYTES)?;
    let mut out = Vec::new();
    if flags & EXTENTS_FL != 0 {
        let mut seen = HashSet::new();
        extent_node(
            slice,
            sb,
            i_block,
            at + off::BLOCK as u64,
            MAX_EXTENT_DEPTH + 1,
            &mut seen,
            &mut out,
        )?;
    } else {
        let bs = sb.block_size;
        let per = bs / 4;
        let mut logical = 0u64;
        let words: Vec<u64> = le32_words(i_block).map(u64::from).collect();
        for &b in &words[..DIRECT_BLOCKS] {
            push(&mut out, logical, b, 1);
            logical += 1;
        }
        for (i, level) in [
            (DIRECT_BLOCKS, 1u32),
            (DIRECT_BLOCKS + 1, 2),
            (DIRECT_BLOCKS + 2, 3),
        ] {
            let b = words[i];
            if logical >= max_blocks {
                break;
            }
            indirect(slice, sb, b, level, &mut logical, max_blocks, &mut out)?;
            let _ = per;
        }
    }
    out.retain(|r| r.physical != 0);
    Ok(out)
}

fn push(out: &mut Vec<Run>, logical: u64, physical: u64, len: u64) {
    push_run(
        out,
        Run {
            logical,
            physical,
            len,
            zeroed: false,
        },
    );
}

fn push_run(out: &mut Vec<Run>, run: Run) {
    if let Some(last) = out.last_mut() {
        let contiguous =
            last.logical + last.len == run.logical && last.physical + last.len == run.physical;
        if contiguous && run.physical != 0 && last.zeroed == run.zeroed {
            last.len += run.len;
            return;
        }
    }
    if out.len() < MAX_RUNS {
        out.push(run);
    }
}

fn indirect(
    slice: &Slice,
    sb: &Superblock,
    block: u64,
    level: u32,
    logical: &mut u64,
    max: u64,
    out: &mut Vec<Run>,
) -> Result<()> {
    let per = sb.block_size / 4;
    let span = per.pow(level - 1);
    if block == 0 || block >= sb.blocks_count {
        *logical += span * per;
        return Ok(());
    }
    let raw = slice.read_vec(block * sb.block_size, sb.block_size)?;
    for b in le32_words(&raw).map(u64::from) {
        if *logical >= max {
            return Ok(());
        }
        if level == 1 {
            push(out, *logical, b, 1);
            *logical += 1;
        } else {
            indirect(slice, sb, b, level - 1, logical, max, out)?;
        }
    }
    Ok(())
}

fn extent_node(
    slice: &Slice,
    sb: &Superblock,
    node: &[u8],
    at: u64,
    depth_left: u16,
    seen: &mut HashSet<u64>,
    out: &mut Vec<Run>,
) -> Result<()> {
    use extent_off as x;
    let f = slice.fields(node, "ext extent node", at);
    if f.le16(x::MAGIC)? != EXTENT_MAGIC {
        return Err(slice.corrupt(at, "ext extent header: bad magic"));
    }
    let (entries, depth) = (f.le16(x::ENTRIES)? as usize, f.le16(x::DEPTH)?);
    if depth >= depth_left || x::ENTRY_BYTES + entries * x::ENTRY_BYTES > node.len() {
        return Err(slice.corrupt(
            at,
            format!("ext extent node: depth {depth}, {entries} entries"),
        ));
    }
    for i in 0..entries {
        let e = x::ENTRY_BYTES + i * x::ENTRY_BYTES;
        let entry = f.sub(e, x::ENTRY_BYTES, "ext extent entry")?;
        if depth == 0 {
            let raw_len = entry.le16(x::LEAF_LEN)? as u64;
            let (len, zeroed) = if raw_len > EXT_INIT_MAX_LEN {
                (raw_len - EXT_INIT_MAX_LEN, true)
            } else {
                (raw_len, false)
            };
            let physical =
                (entry.le16(x::LEAF_START_HI)? as u64) << 32 | entry.le32(x::LEAF_START_LO)? as u64;
            push_run(
                out,
                Run {
                    logical: entry.le32(x::LEAF_BLOCK)? as u64,
                    physical,
                    len,
                    zeroed,
                },
            );
        } else {
            let child =
                (entry.le16(x::INDEX_LEAF_HI)? as u64) << 32 | entry.le32(x::INDEX_LEAF_LO)? as u64;
            if child >= sb.blocks_count {
                return Err(slice.corrupt(
                    at + e as u64,
                    format!("ext extent index points to block {child}, past the end"),
                ));
            }
            // Each tree block is read once: entries that share a child would otherwise
            // make the walk exponential.
            if !seen.insert(child) {
                return Err(slice.corrupt(
                    at + e as u64,
                    format!("ext extent index points to block {child} a second time"),
                ));
            }
            let raw = slice.read_vec(child * sb.block_size, sb.block_size)?;
            extent_node(slice, sb, &raw, child * sb.block_size, depth, seen, out)?;
        }
    }
    Ok(())
}
