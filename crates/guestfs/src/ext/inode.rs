//! Just enough of an ext inode to find where a file's blocks are: extent trees and classic
//! block maps (direct, single, double and triple indirect), as runs of physical blocks.
//!
//! Sources: Linux `fs/ext4/ext4.h` (`struct ext4_inode`), `fs/ext4/ext4_extents.h`
//! (`ext4_extent_header`, `ext4_extent`, `ext4_extent_idx`); the ext4 wiki "Extent Tree".

use super::superblock::Superblock;
use crate::slice::Slice;
use diskray_core::Result;
use std::collections::HashSet;

/// Extent tree header magic.
pub const EXTENT_MAGIC: u16 = 0xF30A;
/// Inode flag: the inode uses extents.
pub const EXTENTS_FL: u32 = 0x80000;
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
    let flags = u32::from_le_bytes(raw[0x20..0x24].try_into().unwrap());
    let i_block = &raw[0x28..0x28 + 60];
    let mut out = Vec::new();
    if flags & EXTENTS_FL != 0 {
        let mut seen = HashSet::new();
        extent_node(
            slice,
            sb,
            i_block,
            at + 0x28,
            MAX_EXTENT_DEPTH + 1,
            &mut seen,
            &mut out,
        )?;
    } else {
        let bs = sb.block_size;
        let per = bs / 4;
        let mut logical = 0u64;
        for i in 0..12 {
            let b = u32::from_le_bytes(i_block[i * 4..i * 4 + 4].try_into().unwrap()) as u64;
            push(&mut out, logical, b, 1);
            logical += 1;
        }
        for (i, level) in [(12, 1u32), (13, 2), (14, 3)] {
            let b = u32::from_le_bytes(i_block[i * 4..i * 4 + 4].try_into().unwrap()) as u64;
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
    for e in raw.chunks_exact(4) {
        if *logical >= max {
            return Ok(());
        }
        let b = u32::from_le_bytes(e.try_into().unwrap()) as u64;
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
    let u16_at = |o: usize| u16::from_le_bytes([node[o], node[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes(node[o..o + 4].try_into().unwrap()) as u64;
    if u16_at(0) != EXTENT_MAGIC {
        return Err(slice.corrupt(at, "ext extent header: bad magic"));
    }
    let (entries, depth) = (u16_at(2) as usize, u16_at(6));
    if depth >= depth_left || 12 + entries * 12 > node.len() {
        return Err(slice.corrupt(
            at,
            format!("ext extent node: depth {depth}, {entries} entries"),
        ));
    }
    for i in 0..entries {
        let e = 12 + i * 12;
        if depth == 0 {
            let raw_len = u16_at(e + 4) as u64;
            let (len, zeroed) = if raw_len > 32768 {
                (raw_len - 32768, true)
            } else {
                (raw_len, false)
            };
            let physical = (u16_at(e + 6) as u64) << 32 | u32_at(e + 8);
            push_run(
                out,
                Run {
                    logical: u32_at(e),
                    physical,
                    len,
                    zeroed,
                },
            );
        } else {
            let child = (u16_at(e + 8) as u64) << 32 | u32_at(e + 4);
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
