//! ext2/3/4: the used map from block bitmaps, honouring flex_bg, meta_bg, sparse_super2,
//! bigalloc, BLOCK_UNINIT (only with group checksums, as the kernel does) and resized
//! filesystems; bitmap checksums verified under metadata_csum.
//!
//! Sources: Linux `fs/ext4/balloc.c` (`ext4_init_block_bitmap`, `ext4_num_base_meta_blocks`,
//! `ext4_block_bitmap_csum_verify`), `fs/ext4/super.c` (`ext4_bg_has_super`,
//! `descriptor_loc`); `shared/FORMATS.md` §3.1 (rules that match dumpe2fs byte for byte).

pub mod dirent;
pub mod files;
pub mod group;
pub mod inode;
pub mod journal;
pub mod superblock;

use crate::probe::Content;
use crate::slice::Slice;
use crate::{Allocation, Filesystem};
use diskray_core::{ByteRange, RangeSet, Result};
use group::{GroupDesc, BLOCK_UNINIT};
use std::collections::{HashMap, HashSet};
use superblock::*;

/// Tells ext2, ext3 and ext4 apart from a raw superblock, as libblkid does: ext4 when any
/// feature beyond ext3's is set, ext3 with a journal, ext2 otherwise.
pub fn classify(sb: &[u8]) -> Content {
    let u32_at = |o: usize| u32::from_le_bytes(sb[o..o + 4].try_into().unwrap());
    let (compat, incompat, ro_compat) = (u32_at(0x5C), u32_at(0x60), u32_at(0x64));
    const EXT3_INCOMPAT: u32 = INCOMPAT_FILETYPE | INCOMPAT_RECOVER | INCOMPAT_META_BG;
    const EXT3_RO_COMPAT: u32 = RO_COMPAT_SPARSE_SUPER | 0x2 | 0x4;
    if incompat & !EXT3_INCOMPAT != 0 || ro_compat & !EXT3_RO_COMPAT != 0 {
        Content::Ext4
    } else if compat & COMPAT_HAS_JOURNAL != 0 {
        Content::Ext3
    } else {
        Content::Ext2
    }
}

/// An opened ext2/3/4 filesystem.
pub struct Ext<'a> {
    slice: Slice<'a>,
    sb: Superblock,
    content: Content,
    descs: std::sync::OnceLock<Vec<GroupDesc>>,
}

impl<'a> Ext<'a> {
    /// Opens the filesystem at the start of `slice`.
    pub fn open(slice: Slice<'a>) -> Result<Ext<'a>> {
        let sb = Superblock::read(&slice)?;
        let size = sb.blocks_count.checked_mul(sb.block_size);
        if size.is_none_or(|s| s > slice.len()) {
            return Err(slice.corrupt(
                OFFSET + 4,
                format!(
                    "ext superblock: {} blocks of {} bytes do not fit the volume ({} bytes)",
                    sb.blocks_count,
                    sb.block_size,
                    slice.len()
                ),
            ));
        }
        let head = slice.read_vec(OFFSET, 1024)?;
        let content = classify(&head);
        Ok(Ext {
            slice,
            sb,
            content,
            descs: std::sync::OnceLock::new(),
        })
    }

    /// The superblock.
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// The group descriptors as they are on disk (read once).
    pub fn descriptors(&self) -> Result<&[GroupDesc]> {
        if let Some(d) = self.descs.get() {
            return Ok(d);
        }
        let d = self.read_descriptors(&HashMap::new())?;
        Ok(self.descs.get_or_init(|| d))
    }

    fn slice_label(&self) -> String {
        self.slice.label().display().to_string()
    }

    fn gdt_blocks(&self) -> u64 {
        self.sb.groups().div_ceil(self.sb.descs_per_block())
    }

    /// Block holding descriptor block `i` (`descriptor_loc` in the kernel): after the
    /// superblock's own block in the classic layout.
    fn descriptor_block(&self, i: u64) -> u64 {
        let sb = &self.sb;
        if sb.incompat & INCOMPAT_META_BG == 0 || i < sb.first_meta_bg {
            return sb.superblock_block() + 1 + i;
        }
        let g = i * sb.descs_per_block();
        sb.group_first_block(g) + self.super_blocks(g)
    }

    /// Blocks at the start of group `g` taken by the superblock copy: 0 or 1, and 2 for
    /// group 0 of a 1 KiB-block filesystem whose first data block is 0 (bigalloc), where
    /// the superblock sits in block 1.
    fn super_blocks(&self, g: u64) -> u64 {
        let sb = &self.sb;
        if !sb.has_super(g) {
            return 0;
        }
        if g == 0 {
            sb.superblock_block() + 1 - sb.first_data_block
        } else {
            1
        }
    }

    fn read_descriptors(&self, newer: &HashMap<u64, Vec<u8>>) -> Result<Vec<GroupDesc>> {
        let sb = &self.sb;
        let groups = sb.groups();
        let mut out = Vec::with_capacity(groups as usize);
        for i in 0..self.gdt_blocks() {
            let block = self.descriptor_block(i);
            if block >= sb.blocks_count {
                return Err(self.slice.corrupt(
                    OFFSET,
                    format!(
                        "ext group descriptor block {i} would be at block {block}, past the end"
                    ),
                ));
            }
            let raw = match newer.get(&block) {
                Some(copy) => copy.clone(),
                None => self.slice.read_vec(block * sb.block_size, sb.block_size)?,
            };
            for d in raw.chunks_exact(sb.desc_size as usize) {
                if out.len() as u64 == groups {
                    break;
                }
                out.push(GroupDesc::parse(d, sb.desc_size));
            }
        }
        Ok(out)
    }

    /// Blocks that hold filesystem metadata: boot block, superblocks and their backups,
    /// descriptor tables (classic and meta_bg copies), reserved GDT blocks, bitmaps and
    /// inode tables.
    fn metadata_blocks(&self, descs: &[GroupDesc]) -> Vec<(u64, u64)> {
        let sb = &self.sb;
        let mut out = Vec::new();
        let meta_bg = sb.incompat & INCOMPAT_META_BG != 0;
        let classic_gdt = if meta_bg {
            sb.first_meta_bg.min(self.gdt_blocks())
        } else {
            self.gdt_blocks()
        };
        // Everything before the first data block (the 1 KiB boot block of 1 KiB filesystems).
        if sb.first_data_block > 0 {
            out.push((0, sb.first_data_block));
        }
        for g in 0..sb.groups() {
            let first = sb.group_first_block(g);
            let sbs = self.super_blocks(g);
            if sbs > 0 {
                out.push((first, sbs + classic_gdt + sb.reserved_gdt_blocks));
            }
        }
        if meta_bg {
            let dpb = sb.descs_per_block();
            for i in sb.first_meta_bg..self.gdt_blocks() {
                let g0 = i * dpb;
                for g in [g0, g0 + 1, g0 + dpb - 1] {
                    if g < sb.groups() {
                        out.push((sb.group_first_block(g) + self.super_blocks(g), 1));
                    }
                }
            }
        }
        let itb = (sb.inodes_per_group * sb.inode_size).div_ceil(sb.block_size);
        for d in descs {
            out.push((d.block_bitmap, 1));
            out.push((d.inode_bitmap, 1));
            out.push((d.inode_table, itb));
        }
        out
    }

    fn csum_seed(&self) -> u32 {
        if self.sb.incompat & INCOMPAT_CSUM_SEED != 0 {
            self.sb.checksum_seed
        } else {
            raw_crc32c(!0, &self.sb.uuid)
        }
    }

    fn block_bytes(&self, first: u64, count: u64) -> ByteRange {
        ByteRange::new(first * self.sb.block_size, count * self.sb.block_size)
    }

    fn cluster_bytes(&self, first: u64, count: u64) -> ByteRange {
        let cs = self.sb.cluster_size();
        ByteRange::new(first * cs, count * cs)
    }
}

impl Ext<'_> {
    /// Replays the internal journal, returning the newest committed copies of the
    /// descriptor and bitmap blocks, and the number of transactions replayed.
    fn replay_journal(&self) -> Result<(HashMap<u64, Vec<u8>>, u64)> {
        let sb = &self.sb;
        if sb.journal_inum == 0 || sb.journal_dev != 0 || sb.incompat & INCOMPAT_JOURNAL_DEV != 0 {
            return Err(self
                .slice
                .corrupt(OFFSET + 0xE0, "the journal is on another device"));
        }
        let on_disk = self.read_descriptors(&HashMap::new())?;
        let mut wanted: HashSet<u64> = (0..self.gdt_blocks())
            .map(|i| self.descriptor_block(i))
            .collect();
        wanted.extend(on_disk.iter().map(|d| d.block_bitmap));
        let runs = inode::runs(
            &self.slice,
            sb,
            |g| on_disk.get(g as usize).map(|d| d.inode_table),
            sb.journal_inum,
            sb.blocks_count,
        )?;
        let mut replay = journal::replay(&self.slice, sb.block_size, &runs, &wanted)?;
        // A replayed descriptor may point a group at a bitmap the first pass did not want.
        let replayed_descs = self.read_descriptors(&replay.blocks)?;
        let more: HashSet<u64> = replayed_descs
            .iter()
            .map(|d| d.block_bitmap)
            .filter(|b| !wanted.contains(b))
            .collect();
        if !more.is_empty() {
            let again = journal::replay(&self.slice, sb.block_size, &runs, &more)?;
            replay.blocks.extend(again.blocks);
        }
        Ok((replay.blocks, replay.transactions))
    }
}

/// crc32c without the final inversion, chained from `seed` (the kernel's `ext4_chksum`).
fn raw_crc32c(seed: u32, data: &[u8]) -> u32 {
    !crc32c::crc32c_append(!seed, data)
}

impl Filesystem for Ext<'_> {
    fn content(&self) -> Content {
        self.content
    }

    fn block_size(&self) -> u64 {
        self.sb.cluster_size()
    }

    fn size(&self) -> u64 {
        self.sb.blocks_count * self.sb.block_size
    }

    fn label(&self) -> Option<String> {
        Some(self.sb.label.clone()).filter(|l| !l.is_empty())
    }

    fn files(&self) -> Option<&dyn crate::files::Files> {
        Some(self)
    }

    fn allocation(&self) -> Result<Allocation> {
        let sb = &self.sb;
        let size = self.size();
        let whole = || RangeSet::from_iter([ByteRange::new(0, size)]);
        let mut alloc = Allocation::default();
        let unknown = sb.incompat & !INCOMPAT_KNOWN;
        if unknown != 0 {
            alloc.used = whole();
            alloc.warnings.push(format!(
                "unknown incompatible ext features {unknown:#x}: every block is treated as used"
            ));
            return Ok(alloc);
        }
        let mut newer = HashMap::new();
        if sb.incompat & INCOMPAT_RECOVER != 0 {
            // The journal may hold newer bitmaps and descriptors: replay them in memory.
            match self.replay_journal() {
                Ok((copies, transactions)) => {
                    alloc.warnings.push(format!(
                        "the journal needs recovery (unclean shutdown): replayed {transactions} committed transactions in memory ({} bitmap or descriptor blocks taken from the journal)",
                        copies.len()));
                    newer = copies;
                }
                Err(e) => {
                    alloc.used = whole();
                    alloc.warnings.push(format!("the journal needs recovery and could not be replayed ({e}): every block is treated as used"));
                    return Ok(alloc);
                }
            }
        }
        let descs = self.read_descriptors(&newer)?;
        let meta_blocks = self.metadata_blocks(&descs);
        let fs_blocks = ByteRange::new(0, size);
        for &(first, count) in &meta_blocks {
            if let Some(r) = self.block_bytes(first, count).intersect(&fs_blocks) {
                alloc.metadata.insert(r);
            }
        }
        let ratio_bits = sb.log_cluster_ratio;
        let total_clusters = sb.blocks_count.div_ceil(1 << ratio_bits);
        let csum = sb.ro_compat & RO_COMPAT_METADATA_CSUM != 0;
        let seed = if csum { self.csum_seed() } else { 0 };
        // The bitmap holds one bit per cluster of the group; the kernel checksums
        // clusters_per_group / 8 bytes of it.
        let bitmap_bytes = sb.clusters_per_group.div_ceil(8) as usize;
        let csum_bytes = (sb.clusters_per_group / 8) as usize;
        for (g, d) in descs.iter().enumerate() {
            let g = g as u64;
            let first_block = sb.group_first_block(g);
            let first_cluster = (first_block - sb.first_data_block) >> ratio_bits;
            let clusters = sb
                .clusters_per_group
                .min(total_clusters - first_cluster.min(total_clusters));
            // Bytes of this group (cluster-addressed; with 1 KiB blocks shifted by block 0).
            let group_bytes = |c0: u64, n: u64| {
                let r = self.cluster_bytes(first_cluster + c0, n);
                ByteRange::new(r.start + sb.first_data_block * sb.block_size, r.length)
            };
            let span = group_bytes(0, clusters);
            if d.flags & BLOCK_UNINIT != 0 && sb.has_group_csum() {
                // Not initialised: only the metadata that lives in this group is in use.
                for &(first, count) in &meta_blocks {
                    if let Some(r) = self.block_bytes(first, count).intersect(&span) {
                        let c = r.align_out(sb.cluster_size(), size);
                        alloc.used.insert(c);
                    }
                }
                continue;
            }
            if d.block_bitmap < sb.first_data_block || d.block_bitmap >= sb.blocks_count {
                alloc.used.insert(span);
                alloc.warnings.push(format!("group {g}: block bitmap at block {} is outside the filesystem; group treated as used", d.block_bitmap));
                continue;
            }
            let bitmap = match newer.get(&d.block_bitmap) {
                Some(copy) => copy[..bitmap_bytes].to_vec(),
                None => self
                    .slice
                    .read_vec(d.block_bitmap * sb.block_size, bitmap_bytes as u64)?,
            };
            if csum {
                let got = raw_crc32c(seed, &bitmap[..csum_bytes]);
                let mask = if sb.desc_size >= 64 { u32::MAX } else { 0xFFFF };
                if got & mask != d.block_bitmap_csum & mask {
                    alloc.used.insert(span);
                    alloc.warnings.push(format!(
                        "group {g}: block bitmap checksum mismatch (stored {:#x}, computed {:#x}); group treated as used",
                        d.block_bitmap_csum & mask, got & mask));
                    continue;
                }
            }
            for (first, len) in crate::bitmap::set_runs(&bitmap, clusters) {
                alloc.used.insert(group_bytes(first, len));
            }
        }
        if sb.first_data_block > 0 {
            alloc.used.insert(self.block_bytes(0, sb.first_data_block));
        }
        alloc.used = alloc.used.intersection(&RangeSet::from_iter([fs_blocks]));
        Ok(alloc)
    }
}
