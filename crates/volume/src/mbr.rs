//! The master boot record and the EBR chain of logical partitions.
//!
//! Sources: `docs/formats.md` §2.1–2.2 (entry layout, extended types 0x05/0x0F/0x85,
//! EBR entry 1 relative to its EBR, entry 2 relative to the extended base, guards);
//! util-linux `libfdisk/src/dos.c` for the numbering of logicals from 5.

use crate::{Partition, PartitionType, Scheme, Table};
use diskray_core::{Fields, Result, VirtualDisk, Warning};
use std::collections::HashSet;
use std::path::Path;

/// Most EBRs followed: real chains hold a few dozen logicals; this stops runaway chains.
pub const MAX_EBR_HOPS: usize = 128;
/// Byte offsets in an MBR or EBR sector.
pub mod off {
    /// Disk signature (u32).
    pub const DISK_SIGNATURE: usize = 440;
    /// The first of four 16-byte partition entries.
    pub const ENTRIES: usize = 446;
    /// Bytes of one partition entry.
    pub const ENTRY_BYTES: usize = 16;
    /// The boot signature `55 AA`.
    pub const BOOT_SIGNATURE: usize = 510;
    /// Entry: status byte.
    pub const ENTRY_STATUS: usize = 0;
    /// Entry: partition type byte.
    pub const ENTRY_TYPE: usize = 4;
    /// Entry: first sector (u32).
    pub const ENTRY_START: usize = 8;
    /// Entry: number of sectors (u32).
    pub const ENTRY_SECTORS: usize = 12;
}

/// Byte offsets of the boot-sector fields that tell a filesystem boot record (FAT BPB,
/// NTFS, exFAT) from an MBR (see `docs/formats.md` on FAT's BPB).
mod boot {
    /// The jump instruction (`EB` or `E9`).
    pub const JUMP: usize = 0;
    /// OEM name, 8 bytes (`"NTFS    "`, `"EXFAT   "`).
    pub const OEM: usize = 3;
    /// `BPB_BytsPerSec` (u16).
    pub const BYTES_PER_SECTOR: usize = 11;
    /// `BPB_SecPerClus` (u8).
    pub const SECTORS_PER_CLUSTER: usize = 13;
    /// `BPB_RsvdSecCnt` (u16).
    pub const RESERVED_SECTORS: usize = 14;
    /// `BPB_NumFATs` (u8).
    pub const FATS: usize = 16;
    /// `BS_FilSysType` of FAT12/16: `"FAT"` then the variant.
    pub const FAT16_TYPE: usize = 0x36;
    /// `BS_FilSysType` of FAT32.
    pub const FAT32_TYPE: usize = 0x52;
}

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
    fn parse(b: &Fields) -> Result<Entry> {
        Ok(Entry {
            status: b.u8(off::ENTRY_STATUS)?,
            kind: b.u8(off::ENTRY_TYPE)?,
            start: b.le32(off::ENTRY_START)?,
            sectors: b.le32(off::ENTRY_SECTORS)?,
        })
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
    pub fn parse(sector: &Fields) -> Result<Option<Mbr>> {
        if sector.bytes(off::BOOT_SIGNATURE, 2)? != [0x55, 0xAA] {
            return Ok(None);
        }
        let e = |i: usize| {
            let at = off::ENTRIES + off::ENTRY_BYTES * i;
            Entry::parse(&sector.sub(at, off::ENTRY_BYTES, "MBR partition entry")?)
        };
        Ok(Some(Mbr {
            entries: [e(0)?, e(1)?, e(2)?, e(3)?],
            signature: sector.le32(off::DISK_SIGNATURE)?,
        }))
    }

    /// True when an entry has type 0xEE (protective or hybrid MBR of a GPT disk).
    pub fn is_protective(&self) -> bool {
        self.entries.iter().any(|e| e.kind == 0xEE)
    }

    /// True when the sector is a filesystem boot record (a partitionless FAT or NTFS
    /// volume), whose bytes 446–509 are boot code, not partition entries.
    pub fn looks_like_boot_record(&self, sector: &Fields) -> Result<bool> {
        let oem = sector.bytes(boot::OEM, 8)?;
        if oem == b"NTFS    " || oem == b"EXFAT   " {
            return Ok(true);
        }
        let bps = sector.le16(boot::BYTES_PER_SECTOR)?;
        let spc = sector.u8(boot::SECTORS_PER_CLUSTER)?;
        let reserved = sector.le16(boot::RESERVED_SECTORS)?;
        let fats = sector.u8(boot::FATS)?;
        let bpb = matches!(sector.u8(boot::JUMP)?, 0xEB | 0xE9)
            && matches!(bps, 512 | 1024 | 2048 | 4096)
            && spc.is_power_of_two()
            && reserved >= 1
            && matches!(fats, 1 | 2);
        Ok(bpb
            && (sector.bytes(boot::FAT16_TYPE, 3)? == b"FAT"
                || sector.bytes(boot::FAT32_TYPE, 3)? == b"FAT"))
    }
}

/// Sector sizes the MBR probe tries, in the order preferred when the evidence ties: 512
/// (nearly every MBR disk), 4096 (4Kn drives), then the rare optical/magneto-optical ones.
pub const PROBE_ORDER: [u64; 4] = [512, 4096, 2048, 1024];

/// Chooses the sector size of an MBR disk, as the kernel would know it from the drive:
/// the one under which the most EBRs of the extended partition carry their `55 AA`
/// signature and the most partitions hold something `recognise` knows, then under which
/// the most primary entries fit the disk; ties go to the earlier size of
/// [`PROBE_ORDER`]. Returns the size and, when sizes under which every entry fits tie
/// with no evidence between them, a warning.
pub fn probe_sector_size(
    disk: &dyn VirtualDisk,
    label: &Path,
    mbr: &Mbr,
    recognise: Option<crate::Recognise>,
) -> Result<(u64, Option<Warning>)> {
    let used = mbr.entries.iter().filter(|e| !e.is_empty()).count();
    if used == 0 {
        return Ok((512, None));
    }
    let cap = disk.capacity();
    let mut scores = Vec::with_capacity(PROBE_ORDER.len());
    for ss in PROBE_ORDER {
        let sectors = cap / ss;
        let fit = mbr
            .entries
            .iter()
            .filter(|e| !e.is_empty() && e.start as u64 + e.sectors as u64 <= sectors)
            .count();
        let (table, ebrs) = build(disk, label, mbr, Vec::new(), ss)?;
        let known = recognise.map_or(0, |rec| {
            table
                .partitions
                .iter()
                .filter(|p| !p.container && p.start < cap && rec(p.start, p.length))
                .count()
        });
        scores.push((ss, (ebrs + known, fit)));
    }
    let mut best = scores[0];
    for &s in &scores[1..] {
        if s.1 > best.1 {
            best = s;
        }
    }
    let mut tied: Vec<u64> = scores
        .iter()
        .filter(|s| s.1 == best.1 && s.1 .1 == used)
        .map(|s| s.0)
        .collect();
    tied.sort_unstable();
    let warning = (tied.len() > 1).then(|| {
        let sizes: String = tied
            .iter()
            .enumerate()
            .map(|(i, s)| match i {
                0 => format!("{s}-"),
                _ if i + 1 == tied.len() => format!(" and {s}-"),
                _ => format!(", {s}-"),
            })
            .collect();
        Warning::new(format!(
            "MBR sector size is ambiguous: the table fits {sizes}byte sectors alike and neither an EBR nor a partition's content tells them apart; read with {}-byte sectors (choose with --sector-size)",
            best.0
        ))
    });
    Ok((best.0, warning))
}

/// Builds the table of an MBR disk of `ss`-byte sectors, following the EBR chain of an
/// extended partition. Partitions keep the lengths their entries declare, also where they
/// run past the end of the disk (a warning says so; readers clamp to the disk).
pub fn table(
    disk: &dyn VirtualDisk,
    label: &Path,
    mbr: &Mbr,
    warnings: Vec<Warning>,
    ss: u64,
) -> Result<Table> {
    Ok(build(disk, label, mbr, warnings, ss)?.0)
}

/// [`table`], and the number of EBRs found with their signature.
fn build(
    disk: &dyn VirtualDisk,
    label: &Path,
    mbr: &Mbr,
    mut warnings: Vec<Warning>,
    ss: u64,
) -> Result<(Table, usize)> {
    let disk_sectors = disk.capacity() / ss;
    let mut partitions = Vec::new();
    let mut extended = None;
    for (i, e) in mbr.entries.iter().enumerate() {
        if e.is_empty() {
            continue;
        }
        let index = i as u32 + 1;
        let end = e.start as u64 + e.sectors as u64;
        if end > disk_sectors {
            warnings.push(Warning::new(format!(
                "MBR entry {index} (byte {}) runs to sector {end}, past the end of the disk ({disk_sectors} sectors of {ss} bytes)",
                off::ENTRIES + off::ENTRY_BYTES * i)));
        }
        if e.is_extended() {
            if extended.is_some() {
                warnings.push(Warning::new(format!(
                    "MBR entry {index}: a second extended partition; its logicals are not read"
                )));
            } else {
                extended = Some(*e);
            }
        }
        partitions.push(partition(index, e.start as u64, e.sectors as u64, e, ss));
    }
    let mut ebrs = 0;
    if let Some(ext) = extended {
        ebrs = logicals(
            disk,
            label,
            &ext,
            ss,
            disk_sectors,
            &mut partitions,
            &mut warnings,
        )?;
    }
    let table = Table {
        scheme: Scheme::Mbr,
        sector_size: ss,
        partitions,
        disk_id: Some(format!("{:#010x}", mbr.signature)),
        warnings,
    };
    Ok((table, ebrs))
}

fn partition(index: u32, start: u64, sectors: u64, e: &Entry, ss: u64) -> Partition {
    Partition {
        index,
        start: start * ss,
        length: sectors * ss,
        kind: PartitionType::Mbr(e.kind),
        name: String::new(),
        guid: None,
        attributes: e.status as u64,
        container: e.is_extended(),
    }
}

/// Walks the EBR chain of `ext`, appending logical partitions numbered from 5; returns
/// the number of EBRs found with their signature.
fn logicals(
    disk: &dyn VirtualDisk,
    label: &Path,
    ext: &Entry,
    ss: u64,
    disk_sectors: u64,
    out: &mut Vec<Partition>,
    warnings: &mut Vec<Warning>,
) -> Result<usize> {
    let base = ext.start as u64;
    let end = base + ext.sectors as u64;
    let mut next = base;
    let mut seen = HashSet::new();
    let mut index = 5;
    let mut found = 0;
    for hop in 0.. {
        if hop == MAX_EBR_HOPS {
            warnings.push(Warning::new(format!(
                "EBR chain longer than {MAX_EBR_HOPS} links; stopped"
            )));
            break;
        }
        if next < base || next >= end {
            warnings.push(Warning::new(format!("EBR at sector {next} lies outside the extended partition (sectors {base}..{end}); chain stopped")));
            break;
        }
        if next >= disk_sectors {
            warnings.push(Warning::new(format!("EBR at sector {next} lies past the end of the disk ({disk_sectors} sectors of {ss} bytes); chain stopped")));
            break;
        }
        if !seen.insert(next) {
            warnings.push(Warning::new(format!(
                "EBR chain loops back to sector {next}; stopped"
            )));
            break;
        }
        let mut sector = [0u8; 512];
        disk.read_at(&mut sector, next * ss)?;
        let Some(ebr) = Mbr::parse(&Fields::new(&sector, "EBR", label, next * ss))? else {
            warnings.push(Warning::new(format!(
                "EBR at sector {next} (byte {}) has no 55 AA signature; chain stopped",
                next * ss
            )));
            break;
        };
        found += 1;
        let [first, link, ..] = ebr.entries;
        if !first.is_empty() {
            let start = next + first.start as u64;
            let stop = start + first.sectors as u64;
            if start <= next || stop > end {
                warnings.push(Warning::new(format!(
                    "logical partition {index} (EBR at sector {next}) spans sectors {start}..{stop}, outside the extended partition; skipped")));
            } else {
                if stop > disk_sectors {
                    warnings.push(Warning::new(format!(
                        "logical partition {index} (EBR at sector {next}) runs to sector {stop}, past the end of the disk ({disk_sectors} sectors of {ss} bytes)")));
                }
                out.push(partition(index, start, first.sectors as u64, &first, ss));
            }
            index += 1;
        }
        if link.is_empty() {
            break;
        }
        if !link.is_extended() {
            warnings.push(Warning::new(format!("EBR at sector {next}: second entry has type {:#04x}, not an extended link; chain stopped", link.kind)));
            break;
        }
        next = base + link.start as u64;
    }
    Ok(found)
}
