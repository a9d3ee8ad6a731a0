//! ext4 block group descriptors (32 bytes, or 64 with the 64BIT feature).
//!
//! Sources: Linux `fs/ext4/ext4.h` (`struct ext4_group_desc`); `shared/FORMATS.md` §3.1.

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

impl GroupDesc {
    /// Parses one descriptor of `desc_size` bytes.
    pub fn parse(b: &[u8], desc_size: u64) -> GroupDesc {
        let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as u64;
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as u64;
        let wide = desc_size >= 64;
        let hi = |o: usize| if wide { u32_at(o) << 32 } else { 0 };
        GroupDesc {
            block_bitmap: u32_at(0x00) | hi(0x20),
            inode_bitmap: u32_at(0x04) | hi(0x24),
            inode_table: u32_at(0x08) | hi(0x28),
            flags: u16_at(0x12) as u16,
            block_bitmap_csum: (u16_at(0x18) | if wide { u16_at(0x38) << 16 } else { 0 }) as u32,
        }
    }
}
