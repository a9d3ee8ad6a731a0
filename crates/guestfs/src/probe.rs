//! What a volume holds, from magic numbers and sanity checks on the first structures.
//!
//! Sources: `shared/FORMATS.md` §3.0 (magics and their offsets), util-linux libblkid
//! (`superblocks/ext.c`: how ext2/3/4 are told apart; `vfat.c`: FAT type from the cluster
//! count).

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
    /// LVM2 physical volume (recognised, not mapped).
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

/// Bytes read to probe: enough for every magic below except btrfs's (read separately).
const HEAD: u64 = 8192;

/// Says what `slice` holds.
pub fn probe(slice: &Slice) -> Result<Content> {
    if slice.is_empty() {
        return Ok(Content::Unknown); // a partition past the end of a disk cut short
    }
    let head = slice.read_vec(0, HEAD.min(slice.len()))?;
    let at = |off: usize, magic: &[u8]| head.get(off..off + magic.len()) == Some(magic);
    if at(1024 + 0x38, &[0x53, 0xEF]) {
        return Ok(crate::ext::classify(&head[1024..2048]));
    }
    if at(3, b"NTFS    ") {
        return Ok(Content::Ntfs);
    }
    if at(3, b"EXFAT   ") {
        return Ok(Content::Exfat);
    }
    if at(3, b"-FVE-FS-") {
        return Ok(Content::Bitlocker);
    }
    if at(0, b"XFSB") {
        return Ok(Content::Xfs);
    }
    if at(0, b"LUKS\xBA\xBE") {
        return Ok(Content::Luks);
    }
    if at(4086, b"SWAPSPACE2") || at(4086, b"SWAP-SPACE") {
        return Ok(Content::Swap);
    }
    if (0..4).any(|s| at(s * 512, b"LABELONE") && at(s * 512 + 24, b"LVM2 001")) {
        return Ok(Content::Lvm2);
    }
    if head.len() >= 512 {
        if let Ok(bpb) = Bpb::parse(&head[..512], slice.len()) {
            return Ok(bpb.content());
        }
    }
    if slice.len() >= 65536 + 0x48 {
        let mut magic = [0u8; 8];
        slice.read_at(&mut magic, 65536 + 0x40)?;
        if &magic == b"_BHRfS_M" {
            return Ok(Content::Btrfs);
        }
    }
    Ok(Content::Unknown)
}
