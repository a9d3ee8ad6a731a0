//! In-memory replay of an ext3/4 journal (jbd2) that needs recovery, limited to the blocks
//! the allocation map depends on: the newest committed copy of each block wins, exactly
//! as the kernel's replay would write it. Revocations are ignored (they can only make a
//! replayed copy older; the blocks that matter here, bitmaps and descriptors, are not
//! revoked), and an uncommitted tail is not replayed (as in the kernel).
//!
//! Sources: Linux `include/linux/jbd2.h` (`journal_superblock_t`, `journal_header_t`,
//! block tags v2/v3, feature bits), `fs/jbd2/recovery.c` (`do_one_pass`: sequence,
//! wrap-around, escaped blocks); `shared/FORMATS.md` §3.1 ("Dirty journal").

use super::inode::Run;
use crate::slice::Slice;
use diskray_core::Result;
use std::collections::{HashMap, HashSet};

/// jbd2 magic (big-endian).
const MAGIC: u32 = 0xC03B_3998;
const DESCRIPTOR: u32 = 1;
const COMMIT: u32 = 2;
const SUPERBLOCK_V1: u32 = 3;
const SUPERBLOCK_V2: u32 = 4;
const REVOKE: u32 = 5;
const INCOMPAT_64BIT: u32 = 0x2;
const INCOMPAT_CSUM_V2: u32 = 0x8;
const INCOMPAT_CSUM_V3: u32 = 0x10;
const INCOMPAT_FAST_COMMIT: u32 = 0x20;
const INCOMPAT_KNOWN: u32 = 0x1 | INCOMPAT_64BIT | 0x4 | INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3;
const FLAG_ESCAPE: u32 = 0x1;
const FLAG_SAME_UUID: u32 = 0x2;
const FLAG_LAST_TAG: u32 = 0x8;
/// Most journal blocks walked in one replay: a full journal is walked once at most.
const MAX_WALK: u64 = 1 << 24;

fn be32(b: &[u8], o: usize) -> u32 {
    u32::from_be_bytes(b[o..o + 4].try_into().unwrap())
}

/// What replay found.
#[derive(Debug, Default)]
pub struct Replay {
    /// Newest committed copy of each wanted filesystem block.
    pub blocks: HashMap<u64, Vec<u8>>,
    /// Complete transactions replayed.
    pub transactions: u64,
}

/// Replays the journal whose blocks are `runs` (logical journal block → physical block),
/// keeping the copies of the filesystem blocks in `wanted`.
pub fn replay(
    slice: &Slice,
    block_size: u64,
    runs: &[Run],
    wanted: &HashSet<u64>,
) -> Result<Replay> {
    let map = |logical: u64| -> Option<u64> {
        let i = runs.partition_point(|r| r.logical + r.len <= logical);
        runs.get(i)
            .filter(|r| r.logical <= logical)
            .map(|r| r.physical + (logical - r.logical))
    };
    let read = |logical: u64| -> Result<Vec<u8>> {
        let p = map(logical).ok_or_else(|| {
            slice.corrupt(
                0,
                format!("journal block {logical} is not mapped by the journal inode"),
            )
        })?;
        slice.read_vec(p * block_size, block_size)
    };
    let sb = read(0)?;
    let bad = |why: String| {
        slice.corrupt(
            map(0).unwrap_or(0) * block_size,
            format!("jbd2 superblock: {why}"),
        )
    };
    if be32(&sb, 0) != MAGIC || !matches!(be32(&sb, 4), SUPERBLOCK_V1 | SUPERBLOCK_V2) {
        return Err(bad("bad magic or block type".into()));
    }
    let (jbs, maxlen, first, mut seq, start) = (
        be32(&sb, 0xC) as u64,
        be32(&sb, 0x10) as u64,
        be32(&sb, 0x14) as u64,
        be32(&sb, 0x18),
        be32(&sb, 0x1C) as u64,
    );
    let incompat = if be32(&sb, 4) == SUPERBLOCK_V2 {
        be32(&sb, 0x28)
    } else {
        0
    };
    if jbs != block_size || first == 0 || first >= maxlen {
        return Err(bad(format!(
            "block size {jbs}, first {first}, length {maxlen}"
        )));
    }
    if incompat & !INCOMPAT_KNOWN != 0 || incompat & INCOMPAT_FAST_COMMIT != 0 {
        return Err(bad(format!("unsupported journal features {incompat:#x}")));
    }
    let mut out = Replay::default();
    if start == 0 {
        return Ok(out); // nothing to replay
    }
    let tag_bytes: usize = if incompat & INCOMPAT_CSUM_V3 != 0 {
        16
    } else {
        let base = if incompat & INCOMPAT_64BIT != 0 {
            12
        } else {
            8
        };
        base + if incompat & INCOMPAT_CSUM_V2 != 0 {
            2
        } else {
            0
        }
    };
    let tail = if incompat & (INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3) != 0 {
        4
    } else {
        0
    };
    let wrap = |b: u64| if b >= maxlen { first + (b - maxlen) } else { b };
    let mut next = start;
    let mut pending: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut walked = 0u64;
    loop {
        walked += 1;
        if walked > MAX_WALK.min(maxlen + 1) {
            break;
        }
        let block = read(next)?;
        if be32(&block, 0) != MAGIC || be32(&block, 8) != seq {
            break; // end of the log
        }
        next = wrap(next + 1);
        match be32(&block, 4) {
            DESCRIPTOR => {
                let mut o = 12;
                let end = block.len() - tail;
                while o + tag_bytes <= end {
                    let lo = be32(&block, o) as u64;
                    let (flags, hi) = if tag_bytes == 16 {
                        (be32(&block, o + 4), be32(&block, o + 8) as u64)
                    } else {
                        let f = u16::from_be_bytes([block[o + 6], block[o + 7]]) as u32;
                        (
                            f,
                            if tag_bytes >= 12 {
                                be32(&block, o + 8) as u64
                            } else {
                                0
                            },
                        )
                    };
                    let fs_block = lo
                        | if incompat & INCOMPAT_64BIT != 0 {
                            hi << 32
                        } else {
                            0
                        };
                    let data_at = next;
                    next = wrap(next + 1);
                    if wanted.contains(&fs_block) {
                        let mut data = read(data_at)?;
                        if flags & FLAG_ESCAPE != 0 {
                            data[0..4].copy_from_slice(&MAGIC.to_be_bytes());
                        }
                        pending.insert(fs_block, data);
                    }
                    o += tag_bytes + if flags & FLAG_SAME_UUID == 0 { 16 } else { 0 };
                    if flags & FLAG_LAST_TAG != 0 {
                        break;
                    }
                }
            }
            COMMIT => {
                out.blocks.extend(pending.drain());
                out.transactions += 1;
                seq = seq.wrapping_add(1);
            }
            REVOKE => {}
            _ => break,
        }
    }
    Ok(out)
}
