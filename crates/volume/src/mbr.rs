//! The master boot record and the EBR chain of logical partitions.
//!
//! Sources: `shared/FORMATS.md` §2.1–2.2 (entry layout, extended types 0x05/0x0F/0x85,
//! EBR entry 1 relative to its EBR, entry 2 relative to the extended base, guards);
//! util-linux `libfdisk/src/dos.c` for the numbering of logicals from 5.

use crate::{Partition, PartitionType, Scheme, Table};
use diskray_core::{Result, VirtualDisk};
use std::collections::HashSet;
use std::path::Path;

/// Most EBRs followed: real chains hold a few dozen logicals; this stops runaway chains.
pub const MAX_EBR_HOPS: usize = 128;
/// Byte offset of the first partition entry.
const ENTRIES_AT: usize = 446;

/// One 16-byte MBR partition entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Status byte (0x80 bootable, 0x00 otherwise; others exist).
    pub status: u8,
    /// Partition type byte.
    pub kind: u8,
    /// First sector (relative to the table's base).
    pub start: u32,
    /// Number of sectors.
    pub sectors: u32,
}

impl Entry {
    fn parse(b: &[u8]) -> Entry {
        Entry {
            status: b[0],
            kind: b[4],
            start: u32::from_le_bytes(b[8..12].try_into().unwrap()),
            sectors: u32::from_le_bytes(b[12..16].try_into().unwrap()),
        }
    }

    /// Type 0 or a zero count marks an unused entry.
    pub fn is_empty(&self) -> bool {
        self.kind == 0 || self.sectors == 0
    }

    /// True for an extended-partition container.
    pub fn is_extended(&self) -> bool {
        PartitionType::Mbr(self.kind).is_extended()
    }
}

/// A parsed MBR (or EBR) sector.
#[derive(Debug, Clone)]
pub struct Mbr {
    /// The four entries.
    pub entries: [Entry; 4],
    /// Disk signature (bytes 440–443).
    pub signature: u32,
}

impl Mbr {
    /// Parses a sector; `None` when it lacks the `55 AA` boot signature.
    pub fn parse(sector: &[u8; 512]) -> Option<Mbr> {
        if sector[510..512] != [0x55, 0xAA] {
            return None;
        }
        let e = |i: usize| Entry::parse(&sector[ENTRIES_AT + 16 * i..ENTRIES_AT + 16 * (i + 1)]);
        Some(Mbr {
            entries: [e(0), e(1), e(2), e(3)],
            signature: u32::from_le_bytes(sector[440..444].try_into().unwrap()),
        })
    }

    /// True when an entry has type 0xEE (protective or hybrid MBR of a GPT disk).
    pub fn is_protective(&self) -> bool {
        self.entries.iter().any(|e| e.kind == 0xEE)
    }

    /// True when the sector is a filesystem boot record (a partitionless FAT or NTFS
    /// volume), whose bytes 446–509 are boot code, not partition entries.
    pub fn looks_like_boot_record(&self, sector: &[u8; 512]) -> bool {
        let oem = &sector[3..11];
        if oem == b"NTFS    " || oem == b"EXFAT   " {
            return true;
        }
        let bps = u16::from_le_bytes([sector[11], sector[12]]);
        let spc = sector[13];
        let reserved = u16::from_le_bytes([sector[14], sector[15]]);
        let fats = sector[16];
        let bpb = matches!(sector[0], 0xEB | 0xE9)
            && matches!(bps, 512 | 1024 | 2048 | 4096)
            && spc.is_power_of_two()
            && reserved >= 1
            && matches!(fats, 1 | 2);
        bpb && (sector[0x36..0x39] == *b"FAT" || sector[0x52..0x55] == *b"FAT")
    }
}

/// Builds the table of an MBR disk, following the EBR chain of an extended partition.
pub fn table(
    disk: &dyn VirtualDisk,
    label: &Path,
    mbr: &Mbr,
    mut warnings: Vec<String>,
) -> Result<Table> {
    const SECTOR: u64 = 512;
    let disk_sectors = disk.capacity() / SECTOR;
    let mut partitions = Vec::new();
    let mut extended = None;
    for (i, e) in mbr.entries.iter().enumerate() {
        if e.is_empty() {
            continue;
        }
        let index = i as u32 + 1;
        let end = e.start as u64 + e.sectors as u64;
        if end > disk_sectors {
            warnings.push(format!(
                "MBR entry {index} (byte {}) runs to sector {end}, past the end of the disk ({disk_sectors} sectors)",
                ENTRIES_AT + 16 * i));
        }
        if e.is_extended() {
            if extended.is_some() {
                warnings.push(format!(
                    "MBR entry {index}: a second extended partition; its logicals are not read"
                ));
            } else {
                extended = Some(*e);
            }
        }
        partitions.push(partition(
            index,
            e.start as u64,
            e.sectors as u64,
            e,
            SECTOR,
            disk_sectors,
        ));
    }
    if let Some(ext) = extended {
        logicals(
            disk,
            label,
            &ext,
            disk_sectors,
            &mut partitions,
            &mut warnings,
        )?;
    }
    Ok(Table {
        scheme: Scheme::Mbr,
        sector_size: SECTOR,
        partitions,
        disk_id: Some(format!("{:#010x}", mbr.signature)),
        warnings,
    })
}

fn partition(
    index: u32,
    start: u64,
    sectors: u64,
    e: &Entry,
    sector: u64,
    disk_sectors: u64,
) -> Partition {
    // A partition that runs past the disk is clamped to it (and reported by the caller).
    let sectors = sectors.min(disk_sectors.saturating_sub(start));
    Partition {
        index,
        start: start * sector,
        length: sectors * sector,
        kind: PartitionType::Mbr(e.kind),
        name: String::new(),
        guid: None,
        attributes: e.status as u64,
        container: e.is_extended(),
    }
}

/// Walks the EBR chain of `ext`, appending logical partitions numbered from 5.
fn logicals(
    disk: &dyn VirtualDisk,
    _label: &Path,
    ext: &Entry,
    disk_sectors: u64,
    out: &mut Vec<Partition>,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let base = ext.start as u64;
    let end = (base + ext.sectors as u64).min(disk_sectors);
    let mut next = base;
    let mut seen = HashSet::new();
    let mut index = 5;
    for hop in 0.. {
        if hop == MAX_EBR_HOPS {
            warnings.push(format!(
                "EBR chain longer than {MAX_EBR_HOPS} links; stopped"
            ));
            break;
        }
        if next < base || next >= end {
            warnings.push(format!("EBR at sector {next} lies outside the extended partition (sectors {base}..{end}); chain stopped"));
            break;
        }
        if !seen.insert(next) {
            warnings.push(format!("EBR chain loops back to sector {next}; stopped"));
            break;
        }
        let mut sector = [0u8; 512];
        disk.read_at(&mut sector, next * 512)?;
        let Some(ebr) = Mbr::parse(&sector) else {
            warnings.push(format!(
                "EBR at sector {next} (byte {}) has no 55 AA signature; chain stopped",
                next * 512
            ));
            break;
        };
        let [first, link, ..] = ebr.entries;
        if !first.is_empty() {
            let start = next + first.start as u64;
            let stop = start + first.sectors as u64;
            if start <= next || stop > end {
                warnings.push(format!(
                    "logical partition {index} (EBR at sector {next}) spans sectors {start}..{stop}, outside the extended partition; skipped"));
            } else {
                out.push(partition(
                    index,
                    start,
                    first.sectors as u64,
                    &first,
                    512,
                    disk_sectors,
                ));
            }
            index += 1;
        }
        if link.is_empty() {
            break;
        }
        if !link.is_extended() {
            warnings.push(format!("EBR at sector {next}: second entry has type {:#04x}, not an extended link; chain stopped", link.kind));
            break;
        }
        next = base + link.start as u64;
    }
    Ok(())
}
