//! Entries of the file allocation table: 12, 16 or 32 bits (28 used) per cluster.
//!
//! Sources: Microsoft fatgen103 §4 (FAT12 packs two entries in three bytes; FAT32's top
//! four bits are reserved).

use crate::probe::Content;
use diskray_core::{Fields, Result};

/// The 28 bits of a FAT32 entry that hold the cluster number.
pub const FAT32_MASK: u32 = 0x0FFF_FFFF;

/// Byte offset of cluster `n`'s entry inside a FAT of type `kind`.
pub fn entry_offset(kind: Content, n: u64) -> u64 {
    match kind {
        Content::Fat12 => n * 3 / 2,
        Content::Fat16 => n * 2,
        _ => n * 4,
    }
}

/// Bytes read to decode one entry at [`entry_offset`].
pub fn entry_bytes(kind: Content) -> u64 {
    match kind {
        Content::Fat12 | Content::Fat16 => 2,
        _ => 4,
    }
}

/// Cluster `n`'s entry, read from `f`, which holds the FAT's bytes from FAT byte `base`.
pub fn entry(f: &Fields, kind: Content, n: u64, base: u64) -> Result<u32> {
    let at = entry_offset(kind, n)
        .checked_sub(base)
        .and_then(|a| usize::try_from(a).ok())
        .unwrap_or(usize::MAX);
    Ok(match kind {
        Content::Fat12 => {
            let pair = f.le16(at)?;
            (if n.is_multiple_of(2) {
                pair & 0x0FFF
            } else {
                pair >> 4
            }) as u32
        }
        Content::Fat16 => f.le16(at)? as u32,
        _ => f.le32(at)? & FAT32_MASK,
    })
}
