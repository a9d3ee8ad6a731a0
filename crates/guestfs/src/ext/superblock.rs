//! The ext2/3/4 superblock (1024 bytes at volume byte 1024).
//!
//! Sources: Linux `fs/ext4/ext4.h` (`struct ext4_super_block`, feature bits); the ext4
//! wiki "Disk Layout"; `shared/FORMATS.md` §3.1.

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
        let b = slice.read_vec(OFFSET, 1024)?;
        let bad =
            |off: u64, why: String| slice.corrupt(OFFSET + off, format!("ext superblock: {why}"));
        let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        if u16_at(0x38) != MAGIC {
            return Err(bad(0x38, "bad magic".into()));
        }
        let incompat = u32_at(0x60);
        let log_block = u32_at(0x18);
        if log_block > MAX_LOG_BLOCK {
            return Err(bad(
                0x18,
                format!("log_block_size {log_block} is more than {MAX_LOG_BLOCK}"),
            ));
        }
        let block_size = 1024u64 << log_block;
        let ro_compat = u32_at(0x64);
        let log_cluster = u32_at(0x1C);
        let log_cluster_ratio = if ro_compat & RO_COMPAT_BIGALLOC != 0 {
            match log_cluster.checked_sub(log_block) {
                Some(r) if r <= MAX_LOG_CLUSTER_RATIO => r,
                _ => {
                    return Err(bad(
                        0x1C,
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
        let blocks_count = u32_at(0x04) as u64
            | if is64 {
                (u32_at(0x150) as u64) << 32
            } else {
                0
            };
        let first_data_block = u32_at(0x14) as u64;
        let blocks_per_group = u32_at(0x20) as u64;
        let clusters_per_group = if log_cluster_ratio > 0 {
            u32_at(0x24) as u64
        } else {
            blocks_per_group
        };
        if clusters_per_group == 0 || clusters_per_group > 8 * block_size {
            return Err(bad(
                0x24,
                format!(
                    "{clusters_per_group} clusters per group (1..={} fit a bitmap block)",
                    8 * block_size
                ),
            ));
        }
        let expected_bpg = clusters_per_group << log_cluster_ratio;
        if blocks_per_group != expected_bpg {
            return Err(bad(0x20, format!("{blocks_per_group} blocks per group, but clusters per group give {expected_bpg}")));
        }
        let inodes_per_group = u32_at(0x28) as u64;
        if inodes_per_group == 0 || inodes_per_group > 8 * block_size {
            return Err(bad(
                0x28,
                format!(
                    "{inodes_per_group} inodes per group (1..={} fit an inode bitmap block)",
                    8 * block_size
                ),
            ));
        }
        if blocks_count <= first_data_block || first_data_block > 1 {
            return Err(bad(
                0x04,
                format!("{blocks_count} blocks with first data block {first_data_block}"),
            ));
        }
        let desc_size = if is64 {
            (u16_at(0xFE) as u64).max(32)
        } else {
            32
        };
        if !desc_size.is_power_of_two() || desc_size > block_size.min(1024) {
            return Err(bad(0xFE, format!("group descriptor size {desc_size}")));
        }
        let inode_size = if u32_at(0x4C) == 0 {
            128
        } else {
            u16_at(0x58) as u64
        };
        if inode_size < 128 || !inode_size.is_power_of_two() || inode_size > block_size {
            return Err(bad(0x58, format!("inode size {inode_size}")));
        }
        let label_bytes = &b[0x78..0x88];
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
            state: u16_at(0x3A),
            compat: u32_at(0x5C),
            incompat,
            ro_compat,
            reserved_gdt_blocks: u16_at(0xCE) as u64,
            desc_size,
            first_meta_bg: u32_at(0x104) as u64,
            backup_bgs: [u32_at(0x24C), u32_at(0x250)],
            uuid: b[0x68..0x78].try_into().unwrap(),
            checksum_seed: u32_at(0x270),
            label,
            journal_inum: u32_at(0xE0) as u64,
            journal_dev: u32_at(0xE4),
            jnl_backup_type: b[0xFD],
            jnl_blocks: std::array::from_fn(|i| u32_at(0x10C + 4 * i)),
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
