//! Partition tables read from a [`VirtualDisk`]: MBR (with EBR chains of logical
//! partitions), the GPT protective MBR, and GPT (header and entry-array CRCs, fallback to
//! the backup header). A disk with neither is reported as scheme `none`.
//!
//! Sources: UEFI Specification 2.10 §5 (GPT, protective MBR); `docs/formats.md` §2
//! (EBR relative addressing, guards, inputs that broke other parsers).

#![warn(missing_docs)]

pub mod gpt;
pub mod guid;
pub mod mbr;

use diskray_core::{Error, Fields, Result, VirtualDisk, Warning};
use serde::Serialize;
use std::path::Path;

pub use guid::Guid;

/// The partitioning scheme of a disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// GUID partition table.
    Gpt,
    /// Master boot record (with optional EBR chain).
    Mbr,
    /// No partition table.
    None,
}

impl Scheme {
    /// The name JSON and tables use.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Gpt => "gpt",
            Scheme::Mbr => "mbr",
            Scheme::None => "none",
        }
    }
}

/// The type of a partition as its table records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionType {
    /// A GPT partition type GUID.
    Gpt(Guid),
    /// An MBR partition type byte.
    Mbr(u8),
}

impl PartitionType {
    /// The type as tools print it: an uppercase GUID, or `0x83`.
    pub fn display(&self) -> String {
        match self {
            PartitionType::Gpt(g) => g.to_string(),
            PartitionType::Mbr(t) => format!("{t:#04x}"),
        }
    }

    /// True for an MBR extended-partition container (0x05, 0x0F, 0x85).
    pub fn is_extended(&self) -> bool {
        matches!(self, PartitionType::Mbr(0x05 | 0x0F | 0x85))
    }
}

impl Serialize for PartitionType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.display())
    }
}

/// One partition.
#[derive(Debug, Clone, Serialize)]
pub struct Partition {
    /// The number tools give it: GPT entry number; MBR 1–4 primary, 5… logical.
    pub index: u32,
    /// First byte on the disk.
    pub start: u64,
    /// Length in bytes.
    pub length: u64,
    /// Type GUID or MBR type byte.
    #[serde(rename = "type")]
    pub kind: PartitionType,
    /// GPT partition name (empty for MBR).
    pub name: String,
    /// GPT unique partition GUID.
    pub guid: Option<Guid>,
    /// GPT attribute bits, or the MBR status byte.
    pub attributes: u64,
    /// True for an MBR extended container (its content is the EBR chain).
    pub container: bool,
}

/// A disk's partition table.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    /// The scheme.
    pub scheme: Scheme,
    /// Logical sector size in bytes.
    pub sector_size: u64,
    /// Partitions in table order (logical partitions after the primaries).
    pub partitions: Vec<Partition>,
    /// GPT disk GUID, or the MBR disk signature as `0x12345678`.
    pub disk_id: Option<String>,
    /// Damage found and worked around (backup GPT header used, broken EBR chain, …).
    pub warnings: Vec<Warning>,
}

/// Logical sector sizes a disk can have: what `--sector-size` accepts and the MBR probe
/// tries (GPT is looked for at 512 and 4096, the sizes drives are made with).
pub const SECTOR_SIZES: [u64; 4] = [512, 1024, 2048, 4096];

/// Says whether `length` bytes at byte `start` of the disk hold something recognisable
/// (a filesystem): evidence for one MBR sector size over another.
pub type Recognise<'a> = &'a dyn Fn(u64, u64) -> bool;

/// How [`read_with`] reads a table.
#[derive(Clone, Copy, Default)]
pub struct ReadOptions<'a> {
    /// The logical sector size; `None` takes the disk's
    /// ([`VirtualDisk::logical_sector_size`]) or, when it has none, probes it.
    pub sector_size: Option<u64>,
    /// Recognises a partition's content when the MBR sector size is probed.
    pub recognise: Option<Recognise<'a>>,
}

/// Reads the partition table of `disk`; `label` names the disk in messages.
pub fn read(disk: &dyn VirtualDisk, label: &Path) -> Result<Table> {
    read_with(disk, label, &ReadOptions::default())
}

/// Reads the partition table of `disk` as `opts` says. An MBR's sector size, unless
/// named, is probed: see [`mbr::probe_sector_size`].
pub fn read_with(disk: &dyn VirtualDisk, label: &Path, opts: &ReadOptions) -> Result<Table> {
    let forced = opts.sector_size.or_else(|| disk.logical_sector_size());
    if let Some(ss) = forced.filter(|ss| !SECTOR_SIZES.contains(ss)) {
        // Named or the disk's own, the sector size is refused for this disk.
        return Err(Error::refused(
            label,
            format!("{ss} is not a logical sector size (one of {SECTOR_SIZES:?})"),
        ));
    }
    let cap = disk.capacity();
    if cap < 512 {
        return Ok(none(forced));
    }
    let mut lba0 = [0u8; 512];
    disk.read_at(&mut lba0, 0)?;
    let lba0 = Fields::new(&lba0, "MBR", label, 0);
    let Some(mbr) = mbr::Mbr::parse(&lba0)? else {
        // No boot signature: look for a GPT anyway (a damaged protective MBR).
        return Ok(gpt::read(disk, label, forced, &mut Vec::new())?.unwrap_or_else(|| none(forced)));
    };
    let mut warnings = Vec::new();
    if mbr.is_protective() {
        return match gpt::read(disk, label, forced, &mut warnings)? {
            Some(table) => Ok(table),
            None => Err(Error::corrupt(label, mbr::off::ENTRIES as u64, "protective MBR (type 0xEE) but no valid GPT header at LBA 1 or the backup location")),
        };
    }
    if mbr.looks_like_boot_record(&lba0)? {
        return Ok(none(forced));
    }
    let ss = match forced {
        Some(ss) => ss,
        None => {
            let (ss, ambiguous) = mbr::probe_sector_size(disk, label, &mbr, opts.recognise)?;
            warnings.extend(ambiguous);
            ss
        }
    };
    mbr::table(disk, label, &mbr, warnings, ss)
}

fn none(sector_size: Option<u64>) -> Table {
    Table {
        scheme: Scheme::None,
        sector_size: sector_size.unwrap_or(512),
        partitions: Vec::new(),
        disk_id: None,
        warnings: Vec::new(),
    }
}
