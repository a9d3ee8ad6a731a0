//! ext2/3/4: the used map from block bitmaps, honouring flex_bg, meta_bg, sparse_super2,
//! bigalloc, BLOCK_UNINIT (only with group checksums, as the kernel does) and resized
//! filesystems; bitmap checksums verified under metadata_csum.
//!
//! Sources: Linux `fs/ext4/balloc.c` (`ext4_init_block_bitmap`, `ext4_num_base_meta_blocks`,
//! `ext4_block_bitmap_csum_verify`), `fs/ext4/super.c` (`ext4_bg_has_super`,
//! `descriptor_loc`); `docs/formats.md` §3.1 (rules that match dumpe2fs byte for byte).

pub mod dirent;
pub mod files;
pub mod group;
pub mod inode;
pub mod journal;
pub mod superblock;

pub use files::ExtHandle;

use crate::probe::Content;
use crate::slice::Slice;
use crate::{Allocation, Filesystem};
use diskray_core::{ByteRange, Fields, RangeSet, Result, Warning};
use group::{GroupDesc, BLOCK_UNINIT};
use inode::Run;
use std::sync::Arc;
use superblock::*;

/// JBD2_MIN_JOURNAL_BLOCKS: e2fsck takes a shorter journal file for a damaged journal inode
/// (and tries the superblock's backup of it).
const MIN_JOURNAL_BLOCKS: u64 = 1024;

/// Tells ext2, ext3 and ext4 apart from a raw superblock, as libblkid does: ext4 when any
/// feature beyond ext3's is set, ext3 with a journal, ext2 otherwise.
pub fn classify(sb: &Fields) -> Result<Content> {
    let compat = sb.le32(off::FEATURE_COMPAT)?;
    let incompat = sb.le32(off::FEATURE_INCOMPAT)?;
    let ro_compat = sb.le32(off::FEATURE_RO_COMPAT)?;
    const EXT3_INCOMPAT: u32 = INCOMPAT_FILETYPE | INCOMPAT_RECOVER | INCOMPAT_META_BG;
    const EXT3_RO_COMPAT: u32 = RO_COMPAT_SPARSE_SUPER | 0x2 | 0x4;
    Ok(
        if incompat & !EXT3_INCOMPAT != 0 || ro_compat & !EXT3_RO_COMPAT != 0 {
            Content::Ext4
        } else if compat & COMPAT_HAS_JOURNAL != 0 {
            Content::Ext3
        } else {
            Content::Ext2
        },
    )
}

/// Word of `s_jnl_blocks` holding the journal inode's `i_size_high` (after its 15
/// `i_block` words).
const JNL_SIZE_HIGH: usize = 15;
/// Word of `s_jnl_blocks` holding the journal inode's `i_size`.
const JNL_SIZE: usize = 16;

/// `count` blocks from block `first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BlockRun {
    first: u64,
    count: u64,
}

/// What became of a journal that needs recovery (the superblock's needs_recovery flag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalState {
    /// Nothing to recover.
    Clean,
    /// Replayed in memory: every read sees the filesystem as it is after recovery.
    Replayed {
        /// Committed transactions replayed.
        transactions: u64,
        /// Filesystem blocks whose newest copy comes from the journal.
        blocks: usize,
        /// The journal was found through the superblock's backup of the journal inode's
        /// blocks (`s_jnl_blocks`), the journal inode being unusable.
        from_backup: bool,
    },
    /// It could not be replayed (why): reads see the disk as it is, without the newest
    /// changes.
    Failed(String),
}

/// An opened ext2/3/4 filesystem.
pub struct Ext<'a> {
    /// The volume as every read of the filesystem sees it: with the replayed journal laid
    /// over it when the journal needed recovery.
    slice: Slice<'a>,
    /// The volume as the disk holds it.
    raw: Slice<'a>,
    sb: Superblock,
    content: Content,
    descs: std::sync::OnceLock<Vec<GroupDesc>>,
    journal: JournalState,
    /// Notes from listings (entries left out past a bound), shown by `warnings`.
    notes: crate::files::Notes,
}

/// Refuses a superblock whose blocks do not fit the volume.
fn check_fits(slice: &Slice, sb: &Superblock) -> Result<()> {
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
    Ok(())
}

impl<'a> Ext<'a> {
    /// Opens the filesystem at the start of `slice`. When the journal needs recovery it is
    /// replayed in memory, and every read sees the filesystem as after recovery (see
    /// [`Ext::journal`]).
    pub fn open(slice: Slice<'a>) -> Result<Ext<'a>> {
        let sb = Superblock::read(&slice)?;
        check_fits(&slice, &sb)?;
        let head = slice.read_vec(OFFSET, off::BYTES as u64)?;
        let content = classify(&slice.fields(&head, "ext superblock", OFFSET))?;
        let mut fs = Ext {
            raw: slice.clone(),
            slice,
            sb,
            content,
            descs: std::sync::OnceLock::new(),
            journal: JournalState::Clean,
            notes: Default::default(),
        };
        if fs.sb.incompat & INCOMPAT_RECOVER != 0 && fs.sb.incompat & !INCOMPAT_KNOWN == 0 {
            fs.journal = fs.recover();
        }
        Ok(fs)
    }

    /// The superblock.
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// What became of a journal that needed recovery.
    pub fn journal(&self) -> &JournalState {
        &self.journal
    }

    /// A sentence for people about the journal, when it needed recovery.
    pub fn journal_note(&self) -> Option<Warning> {
        match &self.journal {
            JournalState::Clean => None,
            JournalState::Replayed {
                transactions,
                blocks,
                from_backup,
            } => Some(Warning::new(format!(
                "the journal needs recovery (unclean shutdown): replayed {transactions} committed transactions in memory ({blocks} blocks taken from the journal{}); everything is read as after recovery",
                if *from_backup {
                    ", found through the superblock's backup of the journal inode's blocks"
                } else {
                    ""
                }
            ))),
            JournalState::Failed(why) => Some(Warning::new(format!(
                "the journal needs recovery and could not be replayed ({why})"
            ))),
        }
    }

    /// The group descriptors (read once, through the replayed journal if any).
    pub fn descriptors(&self) -> Result<&[GroupDesc]> {
        if let Some(d) = self.descs.get() {
            return Ok(d);
        }
        let d = self.read_descriptors()?;
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

    fn read_descriptors(&self) -> Result<Vec<GroupDesc>> {
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
            let raw = self.slice.read_vec(block * sb.block_size, sb.block_size)?;
            let at = block * sb.block_size;
            let size = sb.desc_size as usize;
            for k in 0..raw.len() / size {
                if out.len() as u64 == groups {
                    break;
                }
                let d = self.slice.fields(&raw, "ext group descriptor", at);
                out.push(GroupDesc::parse(&d.sub(
                    k * size,
                    size,
                    "ext group descriptor",
                )?)?);
            }
        }
        Ok(out)
    }

    /// Blocks that hold filesystem metadata: boot block, superblocks and their backups,
    /// descriptor tables (classic and meta_bg copies), reserved GDT blocks, bitmaps and
    /// inode tables.
    fn metadata_blocks(&self, descs: &[GroupDesc]) -> Vec<BlockRun> {
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
            out.push(BlockRun {
                first: 0,
                count: sb.first_data_block,
            });
        }
        for g in 0..sb.groups() {
            let first = sb.group_first_block(g);
            let sbs = self.super_blocks(g);
            if sbs > 0 {
                out.push(BlockRun {
                    first,
                    count: sbs + classic_gdt + sb.reserved_gdt_blocks,
                });
            }
        }
        if meta_bg {
            let dpb = sb.descs_per_block();
            for i in sb.first_meta_bg..self.gdt_blocks() {
                let g0 = i * dpb;
                for g in [g0, g0 + 1, g0 + dpb - 1] {
                    if g < sb.groups() {
                        out.push(BlockRun {
                            first: sb.group_first_block(g) + self.super_blocks(g),
                            count: 1,
                        });
                    }
                }
            }
        }
        let itb = (sb.inodes_per_group * sb.inode_size).div_ceil(sb.block_size);
        for d in descs {
            out.push(BlockRun {
                first: d.block_bitmap,
                count: 1,
            });
            out.push(BlockRun {
                first: d.inode_bitmap,
                count: 1,
            });
            out.push(BlockRun {
                first: d.inode_table,
                count: itb,
            });
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

    /// The bytes of `count` blocks from block `first`. Block numbers come from group
    /// descriptors (48 bits with 64-bit descriptors) and are not checked against the
    /// filesystem's size here: a range past what a `u64` holds saturates, and every caller
    /// intersects it with the filesystem or a group, where it then counts for nothing.
    fn block_bytes(&self, first: u64, count: u64) -> ByteRange {
        let bs = self.sb.block_size;
        ByteRange::new(first.saturating_mul(bs), count.saturating_mul(bs))
    }

    /// The bytes of `count` clusters from cluster `first` (saturating as [`Self::block_bytes`]).
    fn cluster_bytes(&self, first: u64, count: u64) -> ByteRange {
        let cs = self.sb.cluster_size();
        ByteRange::new(first.saturating_mul(cs), count.saturating_mul(cs))
    }
}

impl<'a> Ext<'a> {
    /// Replays the journal in memory and lays it over the volume; called by `open` while
    /// `slice` is still the raw volume.
    fn recover(&mut self) -> JournalState {
        let (replay, from_backup) = match self.replay_journal() {
            Ok(r) => r,
            Err(e) => return JournalState::Failed(e.to_string()),
        };
        let transactions = replay.transactions;
        let overlay = journal::JournalOverlay::new(self.raw.clone(), self.sb.block_size, replay);
        let blocks = overlay.blocks();
        let view = self.raw.with_overlay(Arc::new(overlay));
        // The journal may hold a newer superblock.
        match Superblock::read(&view).and_then(|sb| check_fits(&view, &sb).map(|_| sb)) {
            Ok(sb) => {
                self.sb = sb;
                self.slice = view;
                JournalState::Replayed {
                    transactions,
                    blocks,
                    from_backup,
                }
            }
            Err(e) => JournalState::Failed(format!("the replayed superblock is unusable: {e}")),
        }
    }

    /// Finds the internal journal (through its inode, or, when that is unusable, through
    /// the superblock's backup of its blocks, as e2fsck does) and replays it.
    fn replay_journal(&self) -> Result<(journal::Replay, bool)> {
        let sb = &self.sb;
        if sb.journal_inum == 0 || sb.journal_dev != 0 || sb.incompat & INCOMPAT_JOURNAL_DEV != 0 {
            return Err(self
                .raw
                .corrupt(OFFSET + 0xE0, "the journal is on another device"));
        }
        let descs = self.read_descriptors()?;
        let from_inode = inode::inode_offset(
            &self.raw,
            sb,
            |g| descs.get(g as usize).map(|d| d.inode_table),
            sb.journal_inum,
        )
        .and_then(|at| Ok((self.raw.read_vec(at, 128)?, at)))
        .and_then(|(raw, at)| self.journal_runs(&raw, at));
        let (runs, mapped, from_backup) = match from_inode {
            Ok((runs, mapped)) => (runs, mapped, false),
            Err(e) if sb.jnl_backup_type == JNL_BACKUP_BLOCKS => {
                let at = OFFSET + 0x10C;
                let (runs, mapped) = self
                    .journal_runs(&self.backup_journal_inode(), at - 0x28)
                    .map_err(|b| {
                        self.raw.corrupt(at, format!(
                            "the journal inode is unusable ({e}), and so is the superblock's backup of its blocks ({b})"
                        ))
                    })?;
                (runs, mapped, true)
            }
            Err(e) => return Err(e),
        };
        let replay = journal::replay(&self.raw, sb.block_size, &runs, mapped)?;
        Ok((replay, from_backup))
    }

    /// The journal inode as e2fsck rebuilds it from `s_jnl_blocks`: a regular file with
    /// that `i_block` and size. e2fsck (1.47.0) reads it as a block map only; an `i_block`
    /// that starts with an extent header on a filesystem with extents is read here as the
    /// extent tree it is (the kernel copies the journal inode's `i_block` as it stands).
    fn backup_journal_inode(&self) -> Vec<u8> {
        let sb = &self.sb;
        use inode::off as i;
        let mut raw = vec![0u8; i::GOOD_OLD_SIZE];
        let mut put = |at: usize, bytes: &[u8]| raw[at..at + bytes.len()].copy_from_slice(bytes);
        put(i::MODE, &(0x8000u16 | 0o600).to_le_bytes());
        put(i::LINKS_COUNT, &1u16.to_le_bytes());
        put(i::SIZE_LO, &sb.jnl_blocks[JNL_SIZE].to_le_bytes());
        put(i::SIZE_HIGH, &sb.jnl_blocks[JNL_SIZE_HIGH].to_le_bytes());
        for (k, w) in sb.jnl_blocks[..JNL_SIZE_HIGH].iter().enumerate() {
            put(i::BLOCK + 4 * k, &w.to_le_bytes());
        }
        let extent_root = sb.jnl_blocks[0] as u16 == inode::EXTENT_MAGIC;
        if extent_root && sb.incompat & INCOMPAT_EXTENTS != 0 {
            put(i::FLAGS, &inode::EXTENTS_FL.to_le_bytes());
        }
        raw
    }

    /// The runs of the journal file whose inode's first 128 bytes are `raw` (read from
    /// volume byte `at`), checked as e2fsck checks a journal inode: a regular file in use, at
    /// least [`MIN_JOURNAL_BLOCKS`] blocks, every block mapped inside the filesystem.
    /// Returns the runs and the number of blocks.
    fn journal_runs(&self, raw: &[u8], at: u64) -> Result<(Vec<Run>, u64)> {
        let sb = &self.sb;
        use inode::off as i;
        let f = self.raw.fields(raw, "ext journal inode", at);
        let mode = f.le16(i::MODE)?;
        let links = f.le16(i::LINKS_COUNT)?;
        if links == 0 || mode & 0xF000 != 0x8000 {
            return Err(self.raw.corrupt(
                at,
                format!("journal inode: mode {mode:#o}, {links} links: not a regular file in use"),
            ));
        }
        let blocks =
            (f.le32(i::SIZE_LO)? as u64 | (f.le32(i::SIZE_HIGH)? as u64) << 32) / sb.block_size;
        if blocks < MIN_JOURNAL_BLOCKS {
            return Err(self.raw.corrupt(
                at,
                format!("journal inode: {blocks} blocks, fewer than {MIN_JOURNAL_BLOCKS}"),
            ));
        }
        let mut runs = inode::runs_of(&self.raw, sb, raw, at, blocks)?;
        runs.sort_by_key(|r| r.logical);
        let mut next = 0;
        for r in &runs {
            let inside = r.physical >= sb.first_data_block
                && r.physical
                    .checked_add(r.len)
                    .is_some_and(|e| e <= sb.blocks_count);
            if r.logical > next || !inside {
                break;
            }
            next = next.max(r.logical + r.len);
        }
        if next < blocks {
            return Err(self.raw.corrupt(
                at,
                format!(
                    "journal inode: block {next} of {blocks} is not mapped inside the filesystem"
                ),
            ));
        }
        Ok((runs, blocks))
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

    fn allocation(&self) -> Result<Allocation> {
        let sb = &self.sb;
        let size = self.size();
        let whole = || RangeSet::from_iter([ByteRange::new(0, size)]);
        let mut alloc = Allocation::default();
        let unknown = sb.incompat & !INCOMPAT_KNOWN;
        if unknown != 0 {
            alloc.used = whole();
            alloc.warnings.push(Warning::new(format!(
                "unknown incompatible ext features {unknown:#x}: every block is treated as used"
            )));
            return Ok(alloc);
        }
        // A journal that needs recovery was replayed when the filesystem was opened: the
        // descriptors and bitmaps read below are the replayed ones.
        match &self.journal {
            JournalState::Clean => {}
            JournalState::Replayed { .. } => alloc.warnings.extend(self.journal_note()),
            JournalState::Failed(e) => {
                alloc.used = whole();
                alloc.warnings.push(Warning::new(format!("the journal needs recovery and could not be replayed ({e}): every block is treated as used")));
                return Ok(alloc);
            }
        }
        let descs = self.descriptors()?;
        let meta_blocks = self.metadata_blocks(descs);
        let fs_blocks = ByteRange::new(0, size);
        for &BlockRun { first, count } in &meta_blocks {
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
                for &BlockRun { first, count } in &meta_blocks {
                    if let Some(r) = self.block_bytes(first, count).intersect(&span) {
                        let c = r.align_out(sb.cluster_size(), size);
                        alloc.used.insert(c);
                    }
                }
                continue;
            }
            if d.block_bitmap < sb.first_data_block || d.block_bitmap >= sb.blocks_count {
                alloc.used.insert(span);
                alloc.warnings.push(Warning::new(format!("group {g}: block bitmap at block {} is outside the filesystem; group treated as used", d.block_bitmap)));
                continue;
            }
            let bitmap = self
                .slice
                .read_vec(d.block_bitmap * sb.block_size, bitmap_bytes as u64)?;
            if csum {
                let got = raw_crc32c(seed, &bitmap[..csum_bytes]);
                let mask = if sb.desc_size >= 64 { u32::MAX } else { 0xFFFF };
                if got & mask != d.block_bitmap_csum & mask {
                    alloc.used.insert(span);
                    alloc.warnings.push(Warning::new(format!(
                        "group {g}: block bitmap checksum mismatch (stored {:#x}, computed {:#x}); group treated as used",
                        d.block_bitmap_csum & mask, got & mask)));
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
