//! The ext2/3/4 superblock (1024 bytes at volume byte 1024).
//!
//! Sources: Linux `fs/ext4/ext4.h` (`struct ext4_super_block`, feature bits); the ext4
//! wiki "Disk Layout"; `docs/formats.md` §3.1.

use crate::slice::Slice;
use diskray_core::Result;

/// Byte offset of the superblock inside the volume.
pub const OFFSET: u64 = 1024;
/// The magic number.
pub const MAGIC: u16 = 0xEF53;
/// Largest block size ext4 allows (log_block_size 6 = 64 KiB).
pub const MAX_LOG_BLOCK: u32 = 6;
/// Largest cluster ratio exponent accepted with bigalloc (2^16 blocks per cluster is
/// far beyond what mke2fs allows; it bounds the per-group arithmetic).
pub const MAX_LOG_CLUSTER_RATIO: u32 = 16;

/// compat: has a journal.
pub const COMPAT_HAS_JOURNAL: u32 = 0x4;
/// compat: sparse_super2 (backups only in backup_bgs).
pub const COMPAT_SPARSE_SUPER2: u32 = 0x200;
/// incompat: filetype in directory entries.
pub const INCOMPAT_FILETYPE: u32 = 0x2;
/// incompat: the journal needs recovery.
pub const INCOMPAT_RECOVER: u32 = 0x4;
/// incompat: external journal device.
pub const INCOMPAT_JOURNAL_DEV: u32 = 0x8;
/// incompat: meta block groups.
pub const INCOMPAT_META_BG: u32 = 0x10;
/// incompat: extents.
pub const INCOMPAT_EXTENTS: u32 = 0x40;
/// incompat: 64-bit block numbers.
pub const INCOMPAT_64BIT: u32 = 0x80;
/// incompat: multiple mount protection.
pub const INCOMPAT_MMP: u32 = 0x100;
/// incompat: flexible block groups.
pub const INCOMPAT_FLEX_BG: u32 = 0x200;
/// incompat: extended attributes in inodes.
pub const INCOMPAT_EA_INODE: u32 = 0x400;
/// incompat: data in directory entries.
pub const INCOMPAT_DIRDATA: u32 = 0x1000;
/// incompat: checksum seed in the superblock.
pub const INCOMPAT_CSUM_SEED: u32 = 0x2000;
/// incompat: large directories.
pub const INCOMPAT_LARGEDIR: u32 = 0x4000;
/// incompat: inline data.
pub const INCOMPAT_INLINE_DATA: u32 = 0x8000;
/// incompat: encryption.
pub const INCOMPAT_ENCRYPT: u32 = 0x10000;
/// incompat: case folding.
pub const INCOMPAT_CASEFOLD: u32 = 0x20000;
/// Every incompat bit whose effect on block allocation we know (none of them changes what
/// a block bitmap means); any other bit makes the filesystem opaque.
pub const INCOMPAT_KNOWN: u32 = INCOMPAT_FILETYPE
    | INCOMPAT_RECOVER
    | INCOMPAT_JOURNAL_DEV
    | INCOMPAT_META_BG
    | INCOMPAT_EXTENTS
    | INCOMPAT_64BIT
    | INCOMPAT_MMP
    | INCOMPAT_FLEX_BG
    | INCOMPAT_EA_INODE
    | INCOMPAT_DIRDATA
    | INCOMPAT_CSUM_SEED
    | INCOMPAT_LARGEDIR
    | INCOMPAT_INLINE_DATA
    | INCOMPAT_ENCRYPT
    | INCOMPAT_CASEFOLD;
/// `s_jnl_backup_type`: `s_jnl_blocks` holds a copy of the journal inode's blocks.
pub const JNL_BACKUP_BLOCKS: u8 = 1;
/// ro_compat: sparse superblocks.
pub const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
/// ro_compat: group descriptor checksums (uninit_bg).
pub const RO_COMPAT_GDT_CSUM: u32 = 0x10;
/// ro_compat: bigalloc (bitmaps count clusters).
pub const RO_COMPAT_BIGALLOC: u32 = 0x200;
/// ro_compat: metadata checksums.
pub const RO_COMPAT_METADATA_CSUM: u32 = 0x400;

/// Byte offsets of `struct ext4_super_block`'s fields (little-endian).
pub mod off {
    /// `s_blocks_count_lo` (u32).
    pub const BLOCKS_COUNT_LO: usize = 0x04;
    /// `s_first_data_block` (u32).
    pub const FIRST_DATA_BLOCK: usize = 0x14;
    /// `s_log_block_size` (u32).
    pub const LOG_BLOCK_SIZE: usize = 0x18;
    /// `s_log_cluster_size` (u32).
    pub const LOG_CLUSTER_SIZE: usize = 0x1C;
    /// `s_blocks_per_group` (u32).
    pub const BLOCKS_PER_GROUP: usize = 0x20;
    /// `s_clusters_per_group` (u32).
    pub const CLUSTERS_PER_GROUP: usize = 0x24;
    /// `s_inodes_per_group` (u32).
    pub const INODES_PER_GROUP: usize = 0x28;
    /// `s_magic` (u16).
    pub const MAGIC: usize = 0x38;
    /// `s_state` (u16).
    pub const STATE: usize = 0x3A;
    /// `s_rev_level` (u32): 0 is the original format with 128-byte inodes.
    pub const REV_LEVEL: usize = 0x4C;
    /// `s_inode_size` (u16).
    pub const INODE_SIZE: usize = 0x58;
    /// `s_feature_compat` (u32).
    pub const FEATURE_COMPAT: usize = 0x5C;
    /// `s_feature_incompat` (u32).
    pub const FEATURE_INCOMPAT: usize = 0x60;
    /// `s_feature_ro_compat` (u32).
    pub const FEATURE_RO_COMPAT: usize = 0x64;
    /// `s_uuid`, 16 bytes.
    pub const UUID: usize = 0x68;
    /// `s_volume_name`, 16 bytes, NUL-padded.
    pub const VOLUME_NAME: usize = 0x78;
    /// `s_reserved_gdt_blocks` (u16).
    pub const RESERVED_GDT_BLOCKS: usize = 0xCE;
    /// `s_journal_inum` (u32).
    pub const JOURNAL_INUM: usize = 0xE0;
    /// `s_journal_dev` (u32).
    pub const JOURNAL_DEV: usize = 0xE4;
    /// `s_jnl_backup_type` (u8).
    pub const JNL_BACKUP_TYPE: usize = 0xFD;
    /// `s_desc_size` (u16).
    pub const DESC_SIZE: usize = 0xFE;
    /// `s_first_meta_bg` (u32).
    pub const FIRST_META_BG: usize = 0x104;
    /// `s_jnl_blocks`: 17 u32 words.
    pub const JNL_BLOCKS: usize = 0x10C;
    /// `s_blocks_count_hi` (u32).
    pub const BLOCKS_COUNT_HI: usize = 0x150;
    /// `s_backup_bgs`: 2 u32 words.
    pub const BACKUP_BGS: usize = 0x24C;
    /// `s_checksum_seed` (u32).
    pub const CHECKSUM_SEED: usize = 0x270;
    /// Bytes of the superblock.
    pub const BYTES: usize = 1024;
}

/// The superblock fields allocation needs.
#[derive(Debug, Clone)]
pub struct Superblock {
    /// Blocks in the filesystem.
    pub blocks_count: u64,
    /// First data block (1 with 1 KiB blocks, else 0).
    pub first_data_block: u64,
    /// Block size in bytes.
    pub block_size: u64,
    /// log2(blocks per cluster).
    pub log_cluster_ratio: u32,
    /// Blocks per group.
    pub blocks_per_group: u64,
    /// Clusters per group.
    pub clusters_per_group: u64,
    /// Inodes per group.
    pub inodes_per_group: u64,
    /// Inode size in bytes.
    pub inode_size: u64,
    /// Clean/error state bits.
    pub state: u16,
    /// Feature words.
    pub compat: u32,
    /// Incompatible features.
    pub incompat: u32,
    /// Read-only compatible features.
    pub ro_compat: u32,
    /// Reserved GDT blocks (for online growth).
    pub reserved_gdt_blocks: u64,
    /// Group descriptor size in bytes.
    pub desc_size: u64,
    /// First meta block group.
    pub first_meta_bg: u64,
    /// sparse_super2 backup groups.
    pub backup_bgs: [u32; 2],
    /// Filesystem UUID.
    pub uuid: [u8; 16],
    /// Checksum seed (when CSUM_SEED is set).
    pub checksum_seed: u32,
    /// Volume label.
    pub label: String,
    /// Inode of the internal journal (0 = none).
    pub journal_inum: u64,
    /// Device of an external journal (0 = internal).
    pub journal_dev: u32,
    /// What `jnl_blocks` holds: [`JNL_BACKUP_BLOCKS`] when it is a backup of the journal
    /// inode's `i_block`.
    pub jnl_backup_type: u8,
    /// `s_jnl_blocks`: the journal inode's 15 `i_block` words, then its `i_size_high` and
    /// `i_size` (e2fsck falls back on them when the journal inode is damaged).
    pub jnl_blocks: [u32; 17],
}

impl Superblock {
    /// Reads and checks the superblock of `slice`.
    pub fn read(slice: &Slice) -> Result<Superblock> {
        let b = slice.read_vec(OFFSET, off::BYTES as u64)?;
        let f = slice.fields(&b, "ext superblock", OFFSET);
        let bad = |at: usize, why: String| {
            slice.corrupt(OFFSET + at as u64, format!("ext superblock: {why}"))
        };
        if f.le16(off::MAGIC)? != MAGIC {
            return Err(bad(off::MAGIC, "bad magic".into()));
        }
        let incompat = f.le32(off::FEATURE_INCOMPAT)?;
        let log_block = f.le32(off::LOG_BLOCK_SIZE)?;
        if log_block > MAX_LOG_BLOCK {
            return Err(bad(
                off::LOG_BLOCK_SIZE,
                format!("log_block_size {log_block} is more than {MAX_LOG_BLOCK}"),
            ));
        }
        let block_size = 1024u64 << log_block;
        let ro_compat = f.le32(off::FEATURE_RO_COMPAT)?;
        let log_cluster = f.le32(off::LOG_CLUSTER_SIZE)?;
        let log_cluster_ratio = if ro_compat & RO_COMPAT_BIGALLOC != 0 {
            match log_cluster.checked_sub(log_block) {
                Some(r) if r <= MAX_LOG_CLUSTER_RATIO => r,
                _ => {
                    return Err(bad(
                        off::LOG_CLUSTER_SIZE,
                        format!(
                            "cluster size exponent {log_cluster} with block exponent {log_block}"
                        ),
                    ))
                }
            }
        } else {
            0
        };
        let is64 = incompat & INCOMPAT_64BIT != 0;
        let blocks_count = f.le32(off::BLOCKS_COUNT_LO)? as u64
            | if is64 {
                (f.le32(off::BLOCKS_COUNT_HI)? as u64) << 32
            } else {
                0
            };
        let first_data_block = f.le32(off::FIRST_DATA_BLOCK)? as u64;
        let blocks_per_group = f.le32(off::BLOCKS_PER_GROUP)? as u64;
        let clusters_per_group = if log_cluster_ratio > 0 {
            f.le32(off::CLUSTERS_PER_GROUP)? as u64
        } else {
            blocks_per_group
        };
        if clusters_per_group == 0 || clusters_per_group > 8 * block_size {
            return Err(bad(
                off::CLUSTERS_PER_GROUP,
                format!(
                    "{clusters_per_group} clusters per group (1..={} fit a bitmap block)",
                    8 * block_size
                ),
            ));
        }
        let expected_bpg = clusters_per_group << log_cluster_ratio;
        if blocks_per_group != expected_bpg {
            return Err(bad(off::BLOCKS_PER_GROUP, format!("{blocks_per_group} blocks per group, but clusters per group give {expected_bpg}")));
        }
        let inodes_per_group = f.le32(off::INODES_PER_GROUP)? as u64;
        if inodes_per_group == 0 || inodes_per_group > 8 * block_size {
            return Err(bad(
                off::INODES_PER_GROUP,
                format!(
                    "{inodes_per_group} inodes per group (1..={} fit an inode bitmap block)",
                    8 * block_size
                ),
            ));
        }
        if blocks_count <= first_data_block || first_data_block > 1 {
            return Err(bad(
                off::BLOCKS_COUNT_LO,
                format!("{blocks_count} blocks with first data block {first_data_block}"),
            ));
        }
        let desc_size = if is64 {
            (f.le16(off::DESC_SIZE)? as u64).max(32)
        } else {
            32
        };
        if !desc_size.is_power_of_two() || desc_size > block_size.min(1024) {
            return Err(bad(
                off::DESC_SIZE,
                format!("group descriptor size {desc_size}"),
            ));
        }
        let inode_size = if f.le32(off::REV_LEVEL)? == 0 {
            128
        } else {
            f.le16(off::INODE_SIZE)? as u64
        };
        if inode_size < 128 || !inode_size.is_power_of_two() || inode_size > block_size {
            return Err(bad(off::INODE_SIZE, format!("inode size {inode_size}")));
        }
        let label_bytes = f.bytes(off::VOLUME_NAME, 16)?;
        let mut jnl_blocks = [0u32; 17];
        for (i, w) in jnl_blocks.iter_mut().enumerate() {
            *w = f.le32(off::JNL_BLOCKS + 4 * i)?;
        }
        let label = String::from_utf8_lossy(
            &label_bytes[..label_bytes.iter().position(|&c| c == 0).unwrap_or(16)],
        )
        .into_owned();
        Ok(Superblock {
            blocks_count,
            first_data_block,
            block_size,
            log_cluster_ratio,
            blocks_per_group,
            clusters_per_group,
            inodes_per_group,
            inode_size,
            state: f.le16(off::STATE)?,
            compat: f.le32(off::FEATURE_COMPAT)?,
            incompat,
            ro_compat,
            reserved_gdt_blocks: f.le16(off::RESERVED_GDT_BLOCKS)? as u64,
            desc_size,
            first_meta_bg: f.le32(off::FIRST_META_BG)? as u64,
            backup_bgs: [f.le32(off::BACKUP_BGS)?, f.le32(off::BACKUP_BGS + 4)?],
            uuid: f.array(off::UUID)?,
            checksum_seed: f.le32(off::CHECKSUM_SEED)?,
            label,
            journal_inum: f.le32(off::JOURNAL_INUM)? as u64,
            journal_dev: f.le32(off::JOURNAL_DEV)?,
            jnl_backup_type: f.u8(off::JNL_BACKUP_TYPE)?,
            jnl_blocks,
        })
    }

    /// Number of block groups.
    pub fn groups(&self) -> u64 {
        (self.blocks_count - self.first_data_block).div_ceil(self.blocks_per_group)
    }

    /// Group descriptors per block.
    pub fn descs_per_block(&self) -> u64 {
        self.block_size / self.desc_size
    }

    /// Cluster size in bytes.
    pub fn cluster_size(&self) -> u64 {
        self.block_size << self.log_cluster_ratio
    }

    /// Group descriptors carry checksums, so BLOCK_UNINIT may be trusted (kernel rule).
    pub fn has_group_csum(&self) -> bool {
        self.ro_compat & (RO_COMPAT_GDT_CSUM | RO_COMPAT_METADATA_CSUM) != 0
    }

    /// True when group `g` holds a superblock backup (and GDT copies in the classic layout).
    pub fn has_super(&self, g: u64) -> bool {
        if g == 0 {
            return true;
        }
        if self.compat & COMPAT_SPARSE_SUPER2 != 0 {
            return self.backup_bgs.iter().any(|&b| b != 0 && b as u64 == g);
        }
        if self.ro_compat & RO_COMPAT_SPARSE_SUPER == 0 {
            return true;
        }
        g == 1 || [3u64, 5, 7].iter().any(|&base| is_power_of(g, base))
    }

    /// The block holding the primary superblock (byte 1024).
    pub fn superblock_block(&self) -> u64 {
        OFFSET / self.block_size
    }

    /// The first block of group `g`.
    pub fn group_first_block(&self, g: u64) -> u64 {
        self.first_data_block + g * self.blocks_per_group
    }
}

fn is_power_of(mut n: u64, base: u64) -> bool {
    while n > 1 && n.is_multiple_of(base) {
        n /= base;
    }
    n == 1
}
