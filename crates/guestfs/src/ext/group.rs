//! ext4 block group descriptors (32 bytes, or 64 with the 64BIT feature).
//!
//! Sources: Linux `fs/ext4/ext4.h` (`struct ext4_group_desc`); `docs/formats.md` §3.1.

use diskray_core::{Fields, Result};

/// Flag: the inode table and bitmap are not initialised.
pub const INODE_UNINIT: u16 = 0x1;
/// Flag: the block bitmap is not initialised (compute it from the layout).
pub const BLOCK_UNINIT: u16 = 0x2;

/// The descriptor fields allocation needs.
#[derive(Debug, Clone, Copy)]
pub struct GroupDesc {
    /// Block of the block bitmap.
    pub block_bitmap: u64,
    /// Block of the inode bitmap.
    pub inode_bitmap: u64,
    /// First block of the inode table.
    pub inode_table: u64,
    /// Flags (`BLOCK_UNINIT`, …).
    pub flags: u16,
    /// Block-bitmap checksum (low 16 bits, plus high 16 with 64-byte descriptors).
    pub block_bitmap_csum: u32,
}

/// Byte offsets of `struct ext4_group_desc`'s fields (little-endian); the `_HI` halves
/// exist only in 64-byte descriptors.
pub mod off {
    /// `bg_block_bitmap_lo` (u32).
    pub const BLOCK_BITMAP_LO: usize = 0x00;
    /// `bg_inode_bitmap_lo` (u32).
    pub const INODE_BITMAP_LO: usize = 0x04;
    /// `bg_inode_table_lo` (u32).
    pub const INODE_TABLE_LO: usize = 0x08;
    /// `bg_flags` (u16).
    pub const FLAGS: usize = 0x12;
    /// `bg_block_bitmap_csum_lo` (u16).
    pub const BLOCK_BITMAP_CSUM_LO: usize = 0x18;
    /// `bg_block_bitmap_hi` (u32).
    pub const BLOCK_BITMAP_HI: usize = 0x20;
    /// `bg_inode_bitmap_hi` (u32).
    pub const INODE_BITMAP_HI: usize = 0x24;
    /// `bg_inode_table_hi` (u32).
    pub const INODE_TABLE_HI: usize = 0x28;
    /// `bg_block_bitmap_csum_hi` (u16).
    pub const BLOCK_BITMAP_CSUM_HI: usize = 0x38;
    /// Descriptors this size or larger carry the `_hi` halves.
    pub const WIDE_BYTES: usize = 64;
}

impl GroupDesc {
    /// Parses one descriptor (32 bytes, or 64 and more with the `_hi` halves).
    pub fn parse(d: &Fields) -> Result<GroupDesc> {
        let wide = d.len() >= off::WIDE_BYTES;
        let lo_hi = |lo: usize, hi: usize| -> Result<u64> {
            let high = if wide { d.le32(hi)? as u64 } else { 0 };
            Ok(d.le32(lo)? as u64 | high << 32)
        };
        let csum_hi = if wide {
            d.le16(off::BLOCK_BITMAP_CSUM_HI)? as u32
        } else {
            0
        };
        Ok(GroupDesc {
            block_bitmap: lo_hi(off::BLOCK_BITMAP_LO, off::BLOCK_BITMAP_HI)?,
            inode_bitmap: lo_hi(off::INODE_BITMAP_LO, off::INODE_BITMAP_HI)?,
            inode_table: lo_hi(off::INODE_TABLE_LO, off::INODE_TABLE_HI)?,
            flags: d.le16(off::FLAGS)?,
            block_bitmap_csum: d.le16(off::BLOCK_BITMAP_CSUM_LO)? as u32 | csum_hi << 16,
        })
    }
}
