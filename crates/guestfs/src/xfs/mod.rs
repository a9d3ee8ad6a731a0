//! XFS (big-endian): free space from each allocation group's by-block-number B+tree
//! (`ABTB` v4 / `AB3B` v5) plus the AGFL blocks; used space is the complement. The internal
//! log and the AG headers are metadata.
//!
//! Sources: "XFS Algorithms & Data Structures" (3rd ed.): superblock, AGF, AGFL, short-form
//! B+tree blocks; `docs/formats.md` §3.4 (addressing when agblocks is not a power of two;
//! Σ(freeblks + flcount) = fdblocks).

mod files;

pub use files::XfsHandle;

use crate::probe::Content;
use crate::slice::Slice;
use crate::{Allocation, Filesystem};
use diskray_core::{ByteRange, RangeSet, Result, Warning};
use std::collections::HashSet;

/// Deepest free-space B+tree accepted: XFS allows at most 5 levels per AG btree with
/// 512-byte blocks; 8 bounds hostile trees.
pub const MAX_BTREE_LEVELS: u32 = 8;
/// Most allocation groups accepted (bounds the per-AG work on hostile superblocks).
pub const MAX_AGS: u64 = 1 << 20;

pub(crate) fn be16(b: &[u8], o: usize) -> u64 {
    u16::from_be_bytes([b[o], b[o + 1]]) as u64
}
pub(crate) fn be32(b: &[u8], o: usize) -> u64 {
    u32::from_be_bytes(b[o..o + 4].try_into().unwrap()) as u64
}
pub(crate) fn be64(b: &[u8], o: usize) -> u64 {
    u64::from_be_bytes(b[o..o + 8].try_into().unwrap())
}

/// The superblock fields the map needs.
#[derive(Debug, Clone)]
pub struct Superblock {
    /// Block size in bytes.
    pub block_size: u64,
    /// Blocks in the data device.
    pub dblocks: u64,
    /// First block of an internal log (0 = external).
    pub logstart: u64,
    /// Blocks per AG.
    pub agblocks: u64,
    /// Number of AGs.
    pub agcount: u64,
    /// Log length in blocks.
    pub logblocks: u64,
    /// Sector size in bytes.
    pub sectsize: u64,
    /// log2 of agblocks, rounded up (for fsblock numbers).
    pub agblklog: u32,
    /// Free data blocks (counter: checked, never used).
    pub fdblocks: u64,
    /// Version 5 (CRC) filesystem.
    pub v5: bool,
    /// Root directory inode.
    pub rootino: u64,
    /// Inode size in bytes.
    pub inode_size: u64,
    /// log2 of inodes per block.
    pub inopblog: u32,
    /// log2 of directory block size in filesystem blocks.
    pub dirblklog: u32,
    /// Directory entries carry a file-type byte.
    pub ftype: bool,
    /// Label.
    pub label: String,
}

/// An opened XFS filesystem.
pub struct Xfs<'a> {
    slice: Slice<'a>,
    sb: Superblock,
}

impl<'a> Xfs<'a> {
    /// Opens the XFS filesystem at the start of `slice`.
    pub fn open(slice: Slice<'a>) -> Result<Xfs<'a>> {
        let b = slice.read_vec(0, 512)?;
        let bad = |o: u64, why: String| slice.corrupt(o, format!("XFS superblock: {why}"));
        if &b[0..4] != b"XFSB" {
            return Err(bad(0, "bad magic".into()));
        }
        let sb = Superblock {
            block_size: be32(&b, 4),
            dblocks: be64(&b, 8),
            logstart: be64(&b, 0x30),
            agblocks: be32(&b, 0x54),
            agcount: be32(&b, 0x58),
            logblocks: be32(&b, 0x60),
            sectsize: be16(&b, 0x66),
            agblklog: b[0x7C] as u32,
            fdblocks: be64(&b, 0x90),
            v5: be16(&b, 0x64) & 0xF == 5,
            rootino: be64(&b, 0x38),
            inode_size: be16(&b, 0x68),
            inopblog: b[0x7B] as u32,
            dirblklog: b[0xC0] as u32,
            // v5: incompat FTYPE (0xD8 bit 0); v4: features2 FTYPE (0xC8 bit 0x200).
            ftype: if be16(&b, 0x64) & 0xF == 5 {
                be32(&b, 0xD8) & 1 != 0
            } else {
                be32(&b, 0xC8) & 0x200 != 0
            },
            label: String::from_utf8_lossy(&b[0x6C..0x78])
                .trim_end_matches('\0')
                .to_string(),
        };
        if !(512..=65536).contains(&sb.block_size) || !sb.block_size.is_power_of_two() {
            return Err(bad(4, format!("block size {}", sb.block_size)));
        }
        if !(512..=32768).contains(&sb.sectsize)
            || !sb.sectsize.is_power_of_two()
            || sb.sectsize > sb.block_size
        {
            return Err(bad(0x66, format!("sector size {}", sb.sectsize)));
        }
        if sb.agblocks < 5 || sb.agcount == 0 || sb.agcount > MAX_AGS {
            return Err(bad(
                0x54,
                format!("{} AGs of {} blocks", sb.agcount, sb.agblocks),
            ));
        }
        let size = sb.dblocks.checked_mul(sb.block_size);
        if size.is_none_or(|s| s > slice.len()) || sb.dblocks > sb.agcount * sb.agblocks {
            return Err(bad(
                8,
                format!(
                    "{} blocks of {} bytes in {} AGs do not fit the volume ({} bytes)",
                    sb.dblocks,
                    sb.block_size,
                    sb.agcount,
                    slice.len()
                ),
            ));
        }
        if !(256..=2048).contains(&sb.inode_size)
            || sb.inopblog > 16
            || sb.dirblklog > 16
            || sb.agblklog > 32
        {
            return Err(bad(
                0x68,
                format!(
                    "inode size {}, inodes-per-block log {}, directory block log {}",
                    sb.inode_size, sb.inopblog, sb.dirblklog
                ),
            ));
        }
        Ok(Xfs { slice, sb })
    }

    /// The superblock.
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    pub(crate) fn slice(&self) -> &Slice<'a> {
        &self.slice
    }

    pub(crate) fn ag_byte(&self, agno: u64, agbno: u64) -> u64 {
        (agno * self.sb.agblocks + agbno) * self.sb.block_size
    }

    /// Free extents of AG `agno` (AG-relative block ranges), and its counters.
    fn ag_free(
        &self,
        agno: u64,
        free: &mut Vec<(u64, u64)>,
        warnings: &mut Vec<Warning>,
    ) -> Result<(u64, u64)> {
        let sb = &self.sb;
        let agf_at = self.ag_byte(agno, 0) + sb.sectsize;
        let agf = self.slice.read_vec(agf_at, sb.sectsize.max(64))?;
        if &agf[0..4] != b"XAGF" {
            return Err(self
                .slice
                .corrupt(agf_at, format!("XFS AG {agno}: bad AGF magic")));
        }
        let length = be32(&agf, 0xC).min(sb.agblocks);
        let (root, levels) = (be32(&agf, 0x10), be32(&agf, 0x1C) as u32);
        let (flfirst, fllast, flcount, freeblks) = (
            be32(&agf, 0x28),
            be32(&agf, 0x2C),
            be32(&agf, 0x30),
            be32(&agf, 0x34),
        );
        if levels == 0 || levels > MAX_BTREE_LEVELS || root >= length {
            return Err(self.slice.corrupt(
                agf_at + 0x10,
                format!("XFS AG {agno}: free-space tree root {root} with {levels} levels"),
            ));
        }
        let mut seen = HashSet::new();
        let mut counted = 0;
        self.walk(
            agno,
            root,
            levels - 1,
            length,
            &mut seen,
            free,
            &mut counted,
        )?;
        if counted != freeblks {
            warnings.push(Warning::new(format!("AG {agno}: the free-space tree holds {counted} blocks, the AGF says {freeblks}; the tree wins")));
        }
        // The AGFL: a circular array of free blocks reserved for tree growth.
        let agfl_at = self.ag_byte(agno, 0) + 3 * sb.sectsize;
        let agfl = self.slice.read_vec(agfl_at, sb.sectsize)?;
        let hdr = if sb.v5 { 36 } else { 0 };
        if sb.v5 && &agfl[0..4] != b"XAFL" {
            return Err(self
                .slice
                .corrupt(agfl_at, format!("XFS AG {agno}: bad AGFL magic")));
        }
        let slots = (sb.sectsize - hdr) / 4;
        if flcount > slots || flfirst >= slots || fllast >= slots {
            return Err(self.slice.corrupt(agf_at + 0x28, format!("XFS AG {agno}: free list {flfirst}..{fllast} ({flcount}) does not fit {slots} slots")));
        }
        for i in 0..flcount {
            let slot = (flfirst + i) % slots;
            let bno = be32(&agfl, (hdr + slot * 4) as usize);
            if bno < length {
                free.push((bno, 1));
            }
        }
        Ok((freeblks, flcount))
    }

    #[allow(clippy::too_many_arguments)]
    fn walk(
        &self,
        agno: u64,
        bno: u64,
        level: u32,
        length: u64,
        seen: &mut HashSet<u64>,
        free: &mut Vec<(u64, u64)>,
        counted: &mut u64,
    ) -> Result<()> {
        let sb = &self.sb;
        let at = self.ag_byte(agno, bno);
        if bno >= length || !seen.insert(bno) {
            return Err(self.slice.corrupt(
                at,
                format!(
                    "XFS AG {agno}: free-space tree block {bno} is outside the AG or visited twice"
                ),
            ));
        }
        let b = self.slice.read_vec(at, sb.block_size)?;
        let (magic, hdr): (&[u8], usize) = if sb.v5 { (b"AB3B", 56) } else { (b"ABTB", 16) };
        if &b[0..4] != magic || be16(&b, 4) as u32 != level {
            return Err(self.slice.corrupt(at, format!("XFS AG {agno}: block {bno} is not a level-{level} by-block free-space tree block")));
        }
        let numrecs = be16(&b, 6) as usize;
        let max = if level == 0 {
            (b.len() - hdr) / 8
        } else {
            (b.len() - hdr) / 12
        };
        if numrecs > max {
            return Err(self.slice.corrupt(
                at + 6,
                format!("XFS AG {agno}: {numrecs} records in a block that holds {max}"),
            ));
        }
        if level == 0 {
            for i in 0..numrecs {
                let (start, count) = (be32(&b, hdr + 8 * i), be32(&b, hdr + 8 * i + 4));
                if start.checked_add(count).is_none_or(|e| e > length) {
                    return Err(self.slice.corrupt(
                        at + (hdr + 8 * i) as u64,
                        format!(
                            "XFS AG {agno}: free extent {start}+{count} past the AG end {length}"
                        ),
                    ));
                }
                free.push((start, count));
                *counted += count;
            }
            return Ok(());
        }
        let ptrs = hdr + max * 8;
        for i in 0..numrecs {
            let child = be32(&b, ptrs + 4 * i);
            self.walk(agno, child, level - 1, length, seen, free, counted)?;
        }
        Ok(())
    }
}

impl Filesystem for Xfs<'_> {
    fn content(&self) -> Content {
        Content::Xfs
    }

    fn block_size(&self) -> u64 {
        self.sb.block_size
    }

    fn size(&self) -> u64 {
        self.sb.dblocks * self.sb.block_size
    }

    fn label(&self) -> Option<String> {
        Some(self.sb.label.clone()).filter(|l| !l.is_empty())
    }

    fn allocation(&self) -> Result<Allocation> {
        let sb = &self.sb;
        let mut a = Allocation::default();
        let mut free = RangeSet::new();
        let mut total = 0;
        for agno in 0..sb.agcount {
            let mut extents = Vec::new();
            let (freeblks, flcount) = self.ag_free(agno, &mut extents, &mut a.warnings)?;
            total += freeblks + flcount;
            for (start, count) in extents {
                free.insert(ByteRange::new(
                    self.ag_byte(agno, start),
                    count * sb.block_size,
                ));
            }
            // AG headers: superblock, AGF, AGI, AGFL sectors.
            a.metadata
                .insert(ByteRange::new(self.ag_byte(agno, 0), 4 * sb.sectsize));
        }
        if total != sb.fdblocks {
            a.warnings.push(Warning::new(format!(
                "the AGs hold {total} free blocks, the superblock counter says {}; the trees win",
                sb.fdblocks
            )));
        }
        if sb.logstart != 0 {
            // An internal log's fsblock number: AG in the high bits, AG block in the low.
            let agno = sb.logstart >> sb.agblklog;
            let agbno = sb.logstart & ((1 << sb.agblklog) - 1);
            a.metadata.insert(ByteRange::new(
                self.ag_byte(agno, agbno),
                sb.logblocks * sb.block_size,
            ));
        }
        let whole = RangeSet::from_iter([ByteRange::new(0, self.size())]);
        a.used = whole
            .difference(&free)
            .union(&a.metadata.intersection(&whole));
        Ok(a)
    }
}
