//! The GUID partition table: header, entry array, CRCs, and the backup copy.
//!
//! Sources: UEFI Specification 2.10 §5.3 (header fields, CRC32 over HeaderSize bytes with
//! the CRC field zeroed, entry array CRC, backup at AlternateLBA); `shared/FORMATS.md`
//! §2.3 and §2.5 (bounds before allocating; 4Kn disks; inputs that broke other parsers).

use crate::{Guid, Partition, PartitionType, Scheme, Table};
use diskray_core::{Result, VirtualDisk};
use std::path::Path;

/// The header signature.
pub const SIGNATURE: &[u8; 8] = b"EFI PART";
/// Most entries accepted: the default is 128; 16 384 leaves room for any real table
/// while bounding the allocation (one array of at most 64 MiB).
pub const MAX_ENTRIES: u32 = 16_384;
/// Largest entry size accepted (128 · 2ⁿ).
pub const MAX_ENTRY_SIZE: u32 = 4096;
/// Smallest header size the specification allows.
pub const MIN_HEADER_SIZE: u32 = 92;

/// A validated GPT header.
#[derive(Debug, Clone)]
pub struct Header {
    /// LBA of this header.
    pub my_lba: u64,
    /// LBA of the other copy.
    pub alternate_lba: u64,
    /// First usable LBA.
    pub first_usable: u64,
    /// Last usable LBA (inclusive).
    pub last_usable: u64,
    /// Disk GUID.
    pub disk_guid: Guid,
    /// LBA of the entry array.
    pub entries_lba: u64,
    /// Number of entries.
    pub entry_count: u32,
    /// Size of one entry.
    pub entry_size: u32,
    /// CRC32 of the entry array.
    pub entries_crc: u32,
}

/// Parses and checks the header in `sector`, expected at `lba` of a disk of `sectors`.
pub fn parse_header(sector: &[u8], lba: u64, sectors: u64) -> std::result::Result<Header, String> {
    if &sector[0..8] != SIGNATURE {
        return Err("no \"EFI PART\" signature".into());
    }
    let u32_at = |o: usize| u32::from_le_bytes(sector[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(sector[o..o + 8].try_into().unwrap());
    let size = u32_at(12);
    if size < MIN_HEADER_SIZE || size as usize > sector.len() {
        return Err(format!(
            "header size {size} is outside {MIN_HEADER_SIZE}..={}",
            sector.len()
        ));
    }
    let mut copy = sector[..size as usize].to_vec();
    copy[16..20].fill(0);
    let (want, got) = (u32_at(16), crc32fast::hash(&copy));
    if want != got {
        return Err(format!(
            "header CRC32 is {want:#010x}, computed {got:#010x}"
        ));
    }
    let h = Header {
        my_lba: u64_at(24),
        alternate_lba: u64_at(32),
        first_usable: u64_at(40),
        last_usable: u64_at(48),
        disk_guid: Guid(sector[56..72].try_into().unwrap()),
        entries_lba: u64_at(72),
        entry_count: u32_at(80),
        entry_size: u32_at(84),
        entries_crc: u32_at(88),
    };
    if h.my_lba != lba {
        return Err(format!(
            "header says it is at LBA {}, found at LBA {lba}",
            h.my_lba
        ));
    }
    if h.first_usable > h.last_usable || h.last_usable >= sectors {
        return Err(format!(
            "usable range {}..={} does not fit a disk of {sectors} sectors",
            h.first_usable, h.last_usable
        ));
    }
    if h.entry_size < 128 || !h.entry_size.is_power_of_two() || h.entry_size > MAX_ENTRY_SIZE {
        return Err(format!(
            "entry size {} is not 128·2ⁿ up to {MAX_ENTRY_SIZE}",
            h.entry_size
        ));
    }
    if h.entry_count > MAX_ENTRIES {
        return Err(format!(
            "{} entries (at most {MAX_ENTRIES} accepted)",
            h.entry_count
        ));
    }
    Ok(h)
}

/// Looks for a GPT at 512- and 4096-byte sector sizes, or only at `forced`; `None` when
/// there is none. A GPT whose image was cut short (its header sound, its usable range or
/// backup past the end of the image) is read as far as the image goes, with a warning.
pub fn read(
    disk: &dyn VirtualDisk,
    label: &Path,
    forced: Option<u64>,
    warnings: &mut Vec<String>,
) -> Result<Option<Table>> {
    let sizes = forced.map_or(vec![512u64, 4096], |s| vec![s]);
    let mut problems = Vec::new();
    for &ss in &sizes {
        match read_with_sector_size(disk, label, ss, warnings)? {
            Ok(t) => return Ok(Some(t)),
            Err(why) => problems.push(format!("{ss}-byte sectors: {why}")),
        }
    }
    for &ss in &sizes {
        if let Some(t) = read_cut_short(disk, label, ss, warnings)? {
            return Ok(Some(t));
        }
    }
    warnings.push(format!("no valid GPT: {}", problems.join("; ")));
    Ok(None)
}

fn read_with_sector_size(
    disk: &dyn VirtualDisk,
    label: &Path,
    ss: u64,
    warnings: &mut Vec<String>,
) -> Result<std::result::Result<Table, String>> {
    let sectors = disk.capacity() / ss;
    if sectors < 3 {
        return Ok(Err("disk too small".into()));
    }
    let primary = load(disk, ss, 1, sectors)?;
    let (header, entries) = match primary {
        Ok(found) => found,
        Err(primary_why) => {
            // The primary may still name its backup; otherwise the backup is at the last LBA.
            let mut sector = vec![0u8; ss as usize];
            disk.read_at(&mut sector, ss)?;
            let named = (&sector[0..8] == SIGNATURE)
                .then(|| u64::from_le_bytes(sector[32..40].try_into().unwrap()))
                .filter(|&l| l > 1 && l < sectors);
            let backup_lba = named.unwrap_or(sectors - 1);
            match load(disk, ss, backup_lba, sectors)? {
                Ok(found) => {
                    warnings.push(format!(
                        "{}: primary GPT header (LBA 1) is damaged ({primary_why}); using the backup header at LBA {backup_lba}",
                        label.display()));
                    found
                }
                Err(backup_why) => {
                    return Ok(Err(format!(
                        "primary: {primary_why}; backup at LBA {backup_lba}: {backup_why}"
                    )))
                }
            }
        }
    };
    let partitions = partitions(&header, &entries, ss, sectors, warnings);
    Ok(Ok(Table {
        scheme: Scheme::Gpt,
        sector_size: ss,
        partitions,
        disk_id: Some(header.disk_guid.to_string()),
        warnings: std::mem::take(warnings),
    }))
}

/// Reads the GPT of an image cut short: a sound primary header (its CRC matches, it is
/// at LBA 1) whose usable range or backup lies past the end of the image. The entries the
/// image still holds are listed; `None` when the header is not of that kind.
fn read_cut_short(
    disk: &dyn VirtualDisk,
    label: &Path,
    ss: u64,
    warnings: &mut Vec<String>,
) -> Result<Option<Table>> {
    let cap = disk.capacity();
    let sectors = cap / ss;
    if sectors < 2 {
        return Ok(None);
    }
    let mut sector = vec![0u8; ss as usize];
    disk.read_at(&mut sector, ss)?;
    // Checked as if the disk were as large as the header says (the largest LBA there is).
    let Ok(header) = parse_header(&sector, 1, u64::MAX) else {
        return Ok(None);
    };
    if header.last_usable < sectors && header.alternate_lba < sectors {
        return Ok(None); // the image is long enough: damaged, not cut short
    }
    if header
        .last_usable
        .checked_add(1)
        .and_then(|n| n.checked_mul(ss))
        .is_none()
    {
        return Ok(None); // no disk is that large
    }
    let mut w = vec![format!(
        "{}: the image ({cap} bytes, {sectors} sectors of {ss} bytes) is shorter than its GPT says (last usable LBA {}, backup header at LBA {}): cut short? Reading the primary header alone",
        label.display(),
        header.last_usable,
        header.alternate_lba
    )];
    let size = header.entry_size as u64;
    let want = header.entry_count as u64 * size;
    let at = header.entries_lba.saturating_mul(ss);
    let present = if header.entries_lba < 1 || at >= cap {
        0
    } else {
        // Whole entries only; at most the array the header declares (bounded by
        // MAX_ENTRIES · MAX_ENTRY_SIZE in parse_header).
        want.min(cap - at) / size * size
    };
    let mut entries = vec![0u8; present as usize];
    if present > 0 {
        disk.read_at(&mut entries, at)?;
    }
    if present == want {
        let got = crc32fast::hash(&entries);
        if got != header.entries_crc {
            return Ok(None);
        }
    } else if present == 0 {
        w.push(format!(
            "GPT entry array (LBA {}, {want} bytes) lies past the end of the image: no entries can be read",
            header.entries_lba
        ));
    } else {
        w.push(format!(
            "GPT entry array (LBA {}) runs past the end of the image: only {} of its {} entries are there, and its CRC32 cannot be checked",
            header.entries_lba,
            present / size,
            header.entry_count
        ));
    }
    warnings.append(&mut w);
    let partitions = partitions(&header, &entries, ss, sectors, warnings);
    Ok(Some(Table {
        scheme: Scheme::Gpt,
        sector_size: ss,
        partitions,
        disk_id: Some(header.disk_guid.to_string()),
        warnings: std::mem::take(warnings),
    }))
}

/// The partitions of an entry array; `sectors` is the disk's size (entries running past
/// it are listed with a warning).
fn partitions(
    header: &Header,
    entries: &[u8],
    ss: u64,
    sectors: u64,
    warnings: &mut Vec<String>,
) -> Vec<Partition> {
    let mut partitions = Vec::new();
    for (i, e) in entries.chunks_exact(header.entry_size as usize).enumerate() {
        let kind = Guid(e[0..16].try_into().unwrap());
        if kind.is_zero() {
            continue;
        }
        let index = i as u32 + 1;
        let first = u64::from_le_bytes(e[32..40].try_into().unwrap());
        let last = u64::from_le_bytes(e[40..48].try_into().unwrap());
        if first > last || first < header.first_usable || last > header.last_usable {
            warnings.push(format!(
                "GPT entry {index}: sectors {first}..={last} are outside the usable range {}..={}; skipped",
                header.first_usable, header.last_usable));
            continue;
        }
        if last >= sectors {
            warnings.push(format!(
                "GPT entry {index}: sectors {first}..={last} run past the end of the disk ({sectors} sectors)"
            ));
        }
        let name: Vec<u16> = e[56..128]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&c| c != 0)
            .collect();
        partitions.push(Partition {
            index,
            start: first * ss,
            length: (last - first + 1) * ss,
            kind: PartitionType::Gpt(kind),
            name: String::from_utf16_lossy(&name),
            guid: Some(Guid(e[16..32].try_into().unwrap())),
            attributes: u64::from_le_bytes(e[48..56].try_into().unwrap()),
            container: false,
        });
    }
    let mut sorted: Vec<&Partition> = partitions.iter().collect();
    sorted.sort_by_key(|p| p.start);
    for w in sorted.windows(2) {
        if w[0].start + w[0].length > w[1].start {
            warnings.push(format!(
                "GPT entries {} and {} overlap",
                w[0].index, w[1].index
            ));
        }
    }
    partitions
}

/// Reads and checks the header at `lba` and its entry array.
fn load(
    disk: &dyn VirtualDisk,
    ss: u64,
    lba: u64,
    sectors: u64,
) -> Result<std::result::Result<(Header, Vec<u8>), String>> {
    let mut sector = vec![0u8; ss as usize];
    disk.read_at(&mut sector, lba * ss)?;
    let header = match parse_header(&sector, lba, sectors) {
        Ok(h) => h,
        Err(why) => return Ok(Err(why)),
    };
    let bytes = header.entry_count as u64 * header.entry_size as u64;
    let array_end = header
        .entries_lba
        .checked_mul(ss)
        .and_then(|a| a.checked_add(bytes));
    if header.entries_lba < 1 || array_end.is_none_or(|e| e > sectors * ss) {
        return Ok(Err(format!(
            "entry array at LBA {} ({bytes} bytes) does not fit the disk",
            header.entries_lba
        )));
    }
    let mut entries = vec![0u8; bytes as usize];
    disk.read_at(&mut entries, header.entries_lba * ss)?;
    let got = crc32fast::hash(&entries);
    if got != header.entries_crc {
        return Ok(Err(format!(
            "entry array CRC32 is {:#010x}, computed {got:#010x}",
            header.entries_crc
        )));
    }
    Ok(Ok((header, entries)))
}
