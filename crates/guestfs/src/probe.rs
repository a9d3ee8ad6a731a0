//! What a volume holds, from magic numbers and sanity checks on the first structures.
//!
//! Sources: `docs/formats.md` §3.0 (magics and their offsets), util-linux libblkid
//! (`superblocks/ext.c`: how ext2/3/4 are told apart; `vfat.c`: FAT type from the cluster
//! count).

use crate::ext::superblock as ext_sb;
use crate::fat::Bpb;
use crate::slice::Slice;
use diskray_core::Result;
use serde::Serialize;

/// The content of a volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Content {
    /// ext2.
    Ext2,
    /// ext3.
    Ext3,
    /// ext4.
    Ext4,
    /// FAT12.
    Fat12,
    /// FAT16.
    Fat16,
    /// FAT32.
    Fat32,
    /// exFAT (recognised, not mapped).
    Exfat,
    /// NTFS.
    Ntfs,
    /// XFS.
    Xfs,
    /// btrfs (recognised, not mapped).
    Btrfs,
    /// Linux swap.
    Swap,
    /// LVM2 physical volume (its logical volumes are mapped by the layout, `crates/layout/src/lvm.rs`).
    Lvm2,
    /// LUKS (opaque).
    Luks,
    /// BitLocker (opaque).
    Bitlocker,
    /// Nothing recognised.
    Unknown,
}

impl Content {
    /// The name used in JSON and tables.
    pub fn name(&self) -> &'static str {
        match self {
            Content::Ext2 => "ext2",
            Content::Ext3 => "ext3",
            Content::Ext4 => "ext4",
            Content::Fat12 => "fat12",
            Content::Fat16 => "fat16",
            Content::Fat32 => "fat32",
            Content::Exfat => "exfat",
            Content::Ntfs => "ntfs",
            Content::Xfs => "xfs",
            Content::Btrfs => "btrfs",
            Content::Swap => "swap",
            Content::Lvm2 => "lvm2",
            Content::Luks => "luks",
            Content::Bitlocker => "bitlocker",
            Content::Unknown => "unknown",
        }
    }
}

/// Bytes of a boot sector (where a FAT BPB lies).
const BOOT_SECTOR: usize = 512;
/// Bytes read to probe: enough for every magic below except btrfs's (read separately).
const HEAD: u64 = 8192;

/// Where each signature lies in a volume (byte offset, bytes), from each format's
/// specification (see `docs/formats.md`); libblkid probes the same places.
mod magic {
    /// ext2/3/4: `s_magic` (0xEF53, little-endian) of the superblock at byte 1024.
    pub const EXT: (usize, &[u8]) = (
        super::ext_sb::OFFSET as usize + super::ext_sb::off::MAGIC,
        &[0x53, 0xEF],
    );
    /// NTFS: the OEM name of the boot sector.
    pub const NTFS: (usize, &[u8]) = (3, b"NTFS    ");
    /// exFAT: the OEM name of the boot sector.
    pub const EXFAT: (usize, &[u8]) = (3, b"EXFAT   ");
    /// BitLocker: the OEM name of the boot sector.
    pub const BITLOCKER: (usize, &[u8]) = (3, b"-FVE-FS-");
    /// XFS: `sb_magicnum` of the primary superblock.
    pub const XFS: (usize, &[u8]) = (0, b"XFSB");
    /// LUKS: the header magic.
    pub const LUKS: (usize, &[u8]) = (0, b"LUKS\xBA\xBE");
    /// Linux swap (v1): the last 10 bytes of the first 4 KiB page.
    pub const SWAP_V1: (usize, &[u8]) = (4086, b"SWAPSPACE2");
    /// Linux swap (v0): same place.
    pub const SWAP_V0: (usize, &[u8]) = (4086, b"SWAP-SPACE");
    /// LVM2 physical volume label: `LABELONE` in one of the first four sectors, ...
    pub const LVM_LABEL: (usize, &[u8]) = (0, b"LABELONE");
    /// ... with the label type 24 bytes into that sector.
    pub const LVM_TYPE: (usize, &[u8]) = (24, b"LVM2 001");
    /// Sectors searched for the LVM2 label, and their size.
    pub const LVM_SECTORS: usize = 4;
    /// Size of the sectors searched for the LVM2 label.
    pub const LVM_SECTOR: usize = 512;
    /// btrfs: the superblock at 64 KiB holds its magic 0x40 bytes in.
    pub const BTRFS: (u64, &[u8; 8]) = (65536 + 0x40, b"_BHRfS_M");
}

/// Says what `slice` holds.
pub fn probe(slice: &Slice) -> Result<Content> {
    if slice.is_empty() {
        return Ok(Content::Unknown); // a partition past the end of a disk cut short
    }
    let head = slice.read_vec(0, HEAD.min(slice.len()))?;
    let at = |(off, magic): (usize, &[u8])| head.get(off..off + magic.len()) == Some(magic);
    let shifted = |(off, magic): (usize, &[u8]), by: usize| at((off + by, magic));
    if at(magic::EXT) {
        let sb_at = ext_sb::OFFSET as usize;
        let sb = head.get(sb_at..).unwrap_or(&[]);
        let sb = &sb[..sb.len().min(ext_sb::off::BYTES)];
        return crate::ext::classify(&slice.fields(sb, "ext superblock", ext_sb::OFFSET));
    }
    if at(magic::NTFS) {
        return Ok(Content::Ntfs);
    }
    if at(magic::EXFAT) {
        return Ok(Content::Exfat);
    }
    if at(magic::BITLOCKER) {
        return Ok(Content::Bitlocker);
    }
    if at(magic::XFS) {
        return Ok(Content::Xfs);
    }
    if at(magic::LUKS) {
        return Ok(Content::Luks);
    }
    if at(magic::SWAP_V1) || at(magic::SWAP_V0) {
        return Ok(Content::Swap);
    }
    if (0..magic::LVM_SECTORS).any(|s| {
        let by = s * magic::LVM_SECTOR;
        shifted(magic::LVM_LABEL, by) && shifted(magic::LVM_TYPE, by)
    }) {
        return Ok(Content::Lvm2);
    }
    if let Some(boot) = head.get(..BOOT_SECTOR) {
        if let Ok(bpb) = Bpb::parse(&slice.fields(boot, "FAT boot sector", 0), slice.len()) {
            return Ok(bpb.content());
        }
    }
    let (btrfs_at, btrfs_magic) = magic::BTRFS;
    if slice.len() >= btrfs_at + btrfs_magic.len() as u64 {
        let mut found = [0u8; 8];
        slice.read_at(&mut found, btrfs_at)?;
        if &found == btrfs_magic {
            return Ok(Content::Btrfs);
        }
    }
    Ok(Content::Unknown)
}
