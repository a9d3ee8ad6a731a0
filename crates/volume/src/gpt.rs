//! The GUID partition table: header, entry array, CRCs, and the backup copy.
//!
//! Sources: UEFI Specification 2.10 §5.3 (header fields, CRC32 over HeaderSize bytes with
//! the CRC field zeroed, entry array CRC, backup at AlternateLBA); `docs/formats.md`
//! §2.3 and §2.5 (bounds before allocating; 4Kn disks; inputs that broke other parsers).

use crate::{Guid, Partition, PartitionType, Scheme, Table};
use diskray_core::fields::le_words;
use diskray_core::{Fields, Result, VirtualDisk, Warning};
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

/// Byte offsets of the GPT header's fields (UEFI 2.10 Table 5.21, little-endian).
pub mod header_off {
    /// `Signature`, 8 bytes.
    pub const SIGNATURE: usize = 0;
    /// `HeaderSize` (u32).
    pub const HEADER_SIZE: usize = 12;
    /// `HeaderCRC32` (u32).
    pub const HEADER_CRC32: usize = 16;
    /// `MyLBA` (u64).
    pub const MY_LBA: usize = 24;
    /// `AlternateLBA` (u64).
    pub const ALTERNATE_LBA: usize = 32;
    /// `FirstUsableLBA` (u64).
    pub const FIRST_USABLE_LBA: usize = 40;
    /// `LastUsableLBA` (u64).
    pub const LAST_USABLE_LBA: usize = 48;
    /// `DiskGUID`, 16 bytes.
    pub const DISK_GUID: usize = 56;
    /// `PartitionEntryLBA` (u64).
    pub const PARTITION_ENTRY_LBA: usize = 72;
    /// `NumberOfPartitionEntries` (u32).
    pub const NUMBER_OF_ENTRIES: usize = 80;
    /// `SizeOfPartitionEntry` (u32).
    pub const SIZE_OF_ENTRY: usize = 84;
    /// `PartitionEntryArrayCRC32` (u32).
    pub const ENTRY_ARRAY_CRC32: usize = 88;
}

/// Byte offsets of a GPT partition entry's fields (UEFI 2.10 Table 5.22).
pub mod entry_off {
    /// `PartitionTypeGUID`, 16 bytes.
    pub const TYPE_GUID: usize = 0;
    /// `UniquePartitionGUID`, 16 bytes.
    pub const UNIQUE_GUID: usize = 16;
    /// `StartingLBA` (u64).
    pub const STARTING_LBA: usize = 32;
    /// `EndingLBA` (u64, inclusive).
    pub const ENDING_LBA: usize = 40;
    /// `Attributes` (u64).
    pub const ATTRIBUTES: usize = 48;
    /// `PartitionName`: 36 UTF-16LE code units.
    pub const NAME: usize = 56;
    /// Bytes of the name.
    pub const NAME_BYTES: usize = 72;
}

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

/// Why a GPT header copy (or the whole table at one sector size) is not used. The table
/// reader tries the backup header and the other sector size before giving up, so these are
/// reasons to report, not errors to stop at.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// No `EFI PART` signature.
    #[error("no \"EFI PART\" signature")]
    NoSignature,
    /// The header size is out of range.
    #[error("header size {size} is outside {MIN_HEADER_SIZE}..={max}")]
    HeaderSize {
        /// The header's value.
        size: u32,
        /// The sector size.
        max: usize,
    },
    /// The header CRC does not match.
    #[error("header CRC32 is {stored:#010x}, computed {computed:#010x}")]
    HeaderCrc {
        /// The header's CRC.
        stored: u32,
        /// The CRC of its bytes.
        computed: u32,
    },
    /// The header is not where it says it is.
    #[error("header says it is at LBA {says}, found at LBA {found}")]
    MisplacedHeader {
        /// `MyLBA`.
        says: u64,
        /// Where it was read.
        found: u64,
    },
    /// The usable range does not fit the disk.
    #[error("usable range {first}..={last} does not fit a disk of {sectors} sectors")]
    UsableRange {
        /// First usable LBA.
        first: u64,
        /// Last usable LBA.
        last: u64,
        /// Sectors of the disk.
        sectors: u64,
    },
    /// The entry size is not 128·2ⁿ within the bound.
    #[error("entry size {0} is not 128·2ⁿ up to {MAX_ENTRY_SIZE}")]
    EntrySize(u32),
    /// Too many entries.
    #[error("{0} entries (at most {MAX_ENTRIES} accepted)")]
    EntryCount(u32),
    /// The entry array does not fit the disk.
    #[error("entry array at LBA {lba} ({bytes} bytes) does not fit the disk")]
    ArrayOutside {
        /// Its first LBA.
        lba: u64,
        /// Its length.
        bytes: u64,
    },
    /// The entry array CRC does not match.
    #[error("entry array CRC32 is {stored:#010x}, computed {computed:#010x}")]
    ArrayCrc {
        /// The header's CRC of the array.
        stored: u32,
        /// The CRC of the array's bytes.
        computed: u32,
    },
    /// The disk is too small for a GPT at this sector size.
    #[error("disk too small")]
    DiskTooSmall,
    /// Neither header copy is usable.
    #[error("primary: {primary}; backup at LBA {backup_lba}: {backup}")]
    BothCopies {
        /// Why the primary is not used.
        primary: Box<Rejection>,
        /// Where the backup was looked for.
        backup_lba: u64,
        /// Why the backup is not used.
        backup: Box<Rejection>,
    },
    /// A field could not be read (the header is shorter than its fields).
    #[error("{0}")]
    Read(#[from] diskray_core::Error),
}

/// Parses and checks the header in `sector` (whose reader knows the disk and position),
/// expected at `lba` of a disk of `sectors`.
pub fn parse_header(
    sector: &Fields,
    lba: u64,
    sectors: u64,
) -> std::result::Result<Header, Rejection> {
    use header_off as o;
    if sector.bytes(o::SIGNATURE, SIGNATURE.len())? != SIGNATURE {
        return Err(Rejection::NoSignature);
    }
    let size = sector.le32(o::HEADER_SIZE)?;
    if size < MIN_HEADER_SIZE || size as usize > sector.len() {
        return Err(Rejection::HeaderSize {
            size,
            max: sector.len(),
        });
    }
    let mut copy = sector.bytes(0, size as usize)?.to_vec();
    copy[o::HEADER_CRC32..o::HEADER_CRC32 + 4].fill(0);
    let (want, got) = (sector.le32(o::HEADER_CRC32)?, crc32fast::hash(&copy));
    if want != got {
        return Err(Rejection::HeaderCrc {
            stored: want,
            computed: got,
        });
    }
    let fields = || -> Result<Header> {
        Ok(Header {
            my_lba: sector.le64(o::MY_LBA)?,
            alternate_lba: sector.le64(o::ALTERNATE_LBA)?,
            first_usable: sector.le64(o::FIRST_USABLE_LBA)?,
            last_usable: sector.le64(o::LAST_USABLE_LBA)?,
            disk_guid: Guid(sector.array(o::DISK_GUID)?),
            entries_lba: sector.le64(o::PARTITION_ENTRY_LBA)?,
            entry_count: sector.le32(o::NUMBER_OF_ENTRIES)?,
            entry_size: sector.le32(o::SIZE_OF_ENTRY)?,
            entries_crc: sector.le32(o::ENTRY_ARRAY_CRC32)?,
        })
    };
    let h = fields()?;
    if h.my_lba != lba {
        return Err(Rejection::MisplacedHeader {
            says: h.my_lba,
            found: lba,
        });
    }
    if h.first_usable > h.last_usable || h.last_usable >= sectors {
        return Err(Rejection::UsableRange {
            first: h.first_usable,
            last: h.last_usable,
            sectors,
        });
    }
    if h.entry_size < 128 || !h.entry_size.is_power_of_two() || h.entry_size > MAX_ENTRY_SIZE {
        return Err(Rejection::EntrySize(h.entry_size));
    }
    if h.entry_count > MAX_ENTRIES {
        return Err(Rejection::EntryCount(h.entry_count));
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
    warnings: &mut Vec<Warning>,
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
    warnings.push(Warning::new(format!(
        "no valid GPT: {}",
        problems.join("; ")
    )));
    Ok(None)
}

fn read_with_sector_size(
    disk: &dyn VirtualDisk,
    label: &Path,
    ss: u64,
    warnings: &mut Vec<Warning>,
) -> Result<std::result::Result<Table, Rejection>> {
    let sectors = disk.capacity() / ss;
    if sectors < 3 {
        return Ok(Err(Rejection::DiskTooSmall));
    }
    let primary = load(disk, label, ss, 1, sectors)?;
    let (header, entries) = match primary {
        Ok(found) => found,
        Err(primary_why) => {
            // The primary may still name its backup; otherwise the backup is at the last LBA.
            let mut sector = vec![0u8; ss as usize];
            disk.read_at(&mut sector, ss)?;
            let f = Fields::new(&sector, "GPT header", label, ss);
            let named = (f.bytes(header_off::SIGNATURE, SIGNATURE.len())? == SIGNATURE)
                .then(|| f.le64(header_off::ALTERNATE_LBA))
                .transpose()?
                .filter(|&l| l > 1 && l < sectors);
            let backup_lba = named.unwrap_or(sectors - 1);
            match load(disk, label, ss, backup_lba, sectors)? {
                Ok(found) => {
                    warnings.push(Warning::about(
                        label,
                        format!("primary GPT header (LBA 1) is damaged ({primary_why}); using the backup header at LBA {backup_lba}"),
                    ));
                    found
                }
                Err(backup_why) => {
                    return Ok(Err(Rejection::BothCopies {
                        primary: Box::new(primary_why),
                        backup_lba,
                        backup: Box::new(backup_why),
                    }))
                }
            }
        }
    };
    table(&header, &entries, label, ss, sectors, warnings).map(Ok)
}

/// Reads the GPT of an image cut short: a sound primary header (its CRC matches, it is
/// at LBA 1) whose usable range or backup lies past the end of the image. The entries the
/// image still holds are listed; `None` when the header is not of that kind.
fn read_cut_short(
    disk: &dyn VirtualDisk,
    label: &Path,
    ss: u64,
    warnings: &mut Vec<Warning>,
) -> Result<Option<Table>> {
    let cap = disk.capacity();
    let sectors = cap / ss;
    if sectors < 2 {
        return Ok(None);
    }
    let mut sector = vec![0u8; ss as usize];
    disk.read_at(&mut sector, ss)?;
    // Checked as if the disk were as large as the header says (the largest LBA there is).
    let f = Fields::new(&sector, "GPT header", label, ss);
    let Ok(header) = parse_header(&f, 1, u64::MAX) else {
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
    let mut w = vec![Warning::about(
        label,
        format!(
            "the image ({cap} bytes, {sectors} sectors of {ss} bytes) is shorter than its GPT says (last usable LBA {}, backup header at LBA {}): cut short? Reading the primary header alone",
            header.last_usable, header.alternate_lba
        ),
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
        w.push(Warning::new(format!(
            "GPT entry array (LBA {}, {want} bytes) lies past the end of the image: no entries can be read",
            header.entries_lba
        )));
    } else {
        w.push(Warning::new(format!(
            "GPT entry array (LBA {}) runs past the end of the image: only {} of its {} entries are there, and its CRC32 cannot be checked",
            header.entries_lba,
            present / size,
            header.entry_count
        )));
    }
    warnings.append(&mut w);
    table(&header, &entries, label, ss, sectors, warnings).map(Some)
}

/// The table of a checked `header` and the `entries` read of its array (all of it, or
/// what an image cut short holds); `warnings` gathered so far go into the table.
fn table(
    header: &Header,
    entries: &[u8],
    label: &Path,
    ss: u64,
    sectors: u64,
    warnings: &mut Vec<Warning>,
) -> Result<Table> {
    let array = Fields::new(
        entries,
        "GPT entry array",
        label,
        header.entries_lba.saturating_mul(ss),
    );
    let partitions = partitions(header, &array, ss, sectors, warnings)?;
    Ok(Table {
        scheme: Scheme::Gpt,
        sector_size: ss,
        partitions,
        disk_id: Some(header.disk_guid.to_string()),
        warnings: std::mem::take(warnings),
    })
}

/// The partitions of an entry array; `sectors` is the disk's size (entries running past
/// it are listed with a warning).
fn partitions(
    header: &Header,
    entries: &Fields,
    ss: u64,
    sectors: u64,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<Partition>> {
    use entry_off as o;
    let mut partitions = Vec::new();
    let size = header.entry_size as usize;
    for i in 0..entries.len() / size {
        let e = entries.sub(i * size, size, "GPT partition entry")?;
        let kind = Guid(e.array(o::TYPE_GUID)?);
        if kind.is_zero() {
            continue;
        }
        let index = i as u32 + 1;
        let first = e.le64(o::STARTING_LBA)?;
        let last = e.le64(o::ENDING_LBA)?;
        if first > last || first < header.first_usable || last > header.last_usable {
            warnings.push(Warning::new(format!(
                "GPT entry {index}: sectors {first}..={last} are outside the usable range {}..={}; skipped",
                header.first_usable, header.last_usable)));
            continue;
        }
        if last >= sectors {
            warnings.push(Warning::new(format!(
                "GPT entry {index}: sectors {first}..={last} run past the end of the disk ({sectors} sectors)"
            )));
        }
        let name: Vec<u16> = le_words(e.bytes(o::NAME, o::NAME_BYTES)?, 2)
            .map(|c| c as u16)
            .take_while(|&c| c != 0)
            .collect();
        partitions.push(Partition {
            index,
            start: first * ss,
            length: (last - first + 1) * ss,
            kind: PartitionType::Gpt(kind),
            name: String::from_utf16_lossy(&name),
            guid: Some(Guid(e.array(o::UNIQUE_GUID)?)),
            attributes: e.le64(o::ATTRIBUTES)?,
            container: false,
        });
    }
    let mut sorted: Vec<&Partition> = partitions.iter().collect();
    sorted.sort_by_key(|p| p.start);
    for w in sorted.windows(2) {
        if w[0].start + w[0].length > w[1].start {
            warnings.push(Warning::new(format!(
                "GPT entries {} and {} overlap",
                w[0].index, w[1].index
            )));
        }
    }
    Ok(partitions)
}

/// Reads and checks the header at `lba` and its entry array.
fn load(
    disk: &dyn VirtualDisk,
    label: &Path,
    ss: u64,
    lba: u64,
    sectors: u64,
) -> Result<std::result::Result<(Header, Vec<u8>), Rejection>> {
    let mut sector = vec![0u8; ss as usize];
    disk.read_at(&mut sector, lba * ss)?;
    let f = Fields::new(&sector, "GPT header", label, lba * ss);
    let header = match parse_header(&f, lba, sectors) {
        Ok(h) => h,
        Err(why) => return Ok(Err(why)),
    };
    let bytes = header.entry_count as u64 * header.entry_size as u64;
    let array_end = header
        .entries_lba
        .checked_mul(ss)
        .and_then(|a| a.checked_add(bytes));
    if header.entries_lba < 1 || array_end.is_none_or(|e| e > sectors * ss) {
        return Ok(Err(Rejection::ArrayOutside {
            lba: header.entries_lba,
            bytes,
        }));
    }
    let mut entries = vec![0u8; bytes as usize];
    disk.read_at(&mut entries, header.entries_lba * ss)?;
    let got = crc32fast::hash(&entries);
    if got != header.entries_crc {
        return Ok(Err(Rejection::ArrayCrc {
            stored: header.entries_crc,
            computed: got,
        }));
    }
    Ok(Ok((header, entries)))
}
