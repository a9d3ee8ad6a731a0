//! Disks the hostile-input tests of `guestfs` and `layout` share: minimal valid ext2 and
//! FAT volumes to damage, and the `guestfs` fuzz target's input layout, so the recorded
//! crashes replay the same way everywhere: the fuzz target (`fuzz/fuzz_targets/guestfs.rs`)
//! builds its volumes with [`volume`] too. Included with `#[path]` (each user takes part).

#![allow(dead_code)]

/// Size of the ext2 and FAT test volumes.
pub const SIZE: usize = 8 << 20;

/// A minimal, valid ext2 superblock: 1 KiB blocks, one group of 8192 blocks.
pub fn ext_disk() -> Vec<u8> {
    let mut d = vec![0u8; SIZE];
    let sb = 1024;
    let put32 = |d: &mut Vec<u8>, off: usize, v: u32| {
        d[sb + off..sb + off + 4].copy_from_slice(&v.to_le_bytes())
    };
    put32(&mut d, 0x00, 128); // inodes
    put32(&mut d, 0x04, 8192); // blocks
    put32(&mut d, 0x14, 1); // first data block
    put32(&mut d, 0x18, 0); // 1 KiB blocks
    put32(&mut d, 0x20, 8192);
    put32(&mut d, 0x24, 8192);
    put32(&mut d, 0x28, 128);
    d[sb + 0x38..sb + 0x3A].copy_from_slice(&0xEF53u16.to_le_bytes());
    put32(&mut d, 0x4C, 1); // dynamic revision
    d[sb + 0x58..sb + 0x5A].copy_from_slice(&128u16.to_le_bytes());
    // Group descriptor at block 2: bitmap at block 3, inode bitmap 4, table 5.
    let gd = 2048;
    d[gd..gd + 4].copy_from_slice(&3u32.to_le_bytes());
    d[gd + 4..gd + 8].copy_from_slice(&4u32.to_le_bytes());
    d[gd + 8..gd + 12].copy_from_slice(&5u32.to_le_bytes());
    d[3072] = 0xFF; // blocks 1..8 used
    d
}

/// A FAT16 boot sector over 8 MiB: 512-byte sectors, 4 per cluster.
pub fn fat_disk() -> Vec<u8> {
    let mut d = vec![0u8; SIZE];
    d[0] = 0xEB;
    d[11..13].copy_from_slice(&512u16.to_le_bytes());
    d[13] = 4;
    d[14..16].copy_from_slice(&1u16.to_le_bytes());
    d[16] = 2;
    d[17..19].copy_from_slice(&512u16.to_le_bytes());
    d[19..21].copy_from_slice(&16384u16.to_le_bytes());
    d[22..24].copy_from_slice(&16u16.to_le_bytes());
    d[510] = 0x55;
    d[511] = 0xAA;
    d
}

const VOLUME: usize = 4 << 20;
/// The volume of sector-record inputs (first byte with its top bit set).
const SPARSE_VOLUME: usize = 8 << 20;
/// Sector records (`fuzz/common/sparse.rs`): a `u16` LE sector number, then the sector.
const SECTOR: usize = 512;

/// The fuzz target's input layout: the first byte picks where the rest lands.
pub fn volume(data: &[u8]) -> Option<Vec<u8>> {
    let (&kind, rest) = data.split_first()?;
    if kind & 0x80 != 0 {
        let mut bytes = vec![0u8; SPARSE_VOLUME];
        for r in rest.chunks(2 + SECTOR).filter(|r| r.len() >= 2) {
            let sector = u16::from_le_bytes([r[0], r[1]]) as usize % (SPARSE_VOLUME / SECTOR);
            bytes[sector * SECTOR..sector * SECTOR + r.len() - 2].copy_from_slice(&r[2..]);
        }
        return Some(bytes);
    }
    let mut bytes = vec![0u8; VOLUME];
    let at = match kind % 3 {
        0 => 1024,
        1 => 0,
        _ => {
            bytes[4086..4096].copy_from_slice(b"SWAPSPACE2");
            0
        }
    };
    let n = rest.len().min(VOLUME - at);
    bytes[at..at + n].copy_from_slice(&rest[..n]);
    if kind % 3 == 0 {
        bytes[1024 + 0x38] = 0x53;
        bytes[1024 + 0x39] = 0xEF;
    }
    Some(bytes)
}
