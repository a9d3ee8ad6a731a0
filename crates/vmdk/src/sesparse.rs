//! An seSparse extent: the space-efficient sparse format of ESXi 6.5+ snapshots on VMFS6.
//!
//! The format is undocumented; qemu's strict reader is the reference. Sources: qemu
//! `block/vmdk.c` (`VMDKSESparseConstHeader`, `VMDKSESparseVolatileHeader`,
//! `vmdk_open_se_sparse`, `get_cluster_offset`); `docs/formats.md` §1.9.

use crate::grain_table::{Geometry, GrainMap};
use crate::run::{Run, RunKind};
use diskray_core::fields::le64_words;
use diskray_core::{Error, Fields, FileSource, Result};

/// Magic of the constant header (u64).
pub const MAGIC: u64 = 0xCAFE_BABE;
/// The only version qemu (and ESXi) writes.
pub const VERSION: u64 = 0x0000_0002_0000_0001;
/// Magic of the volatile header (u64).
pub const VOLATILE_MAGIC: u64 = 0xCAFE_CAFE;
/// Grain size in sectors (4 KiB), fixed.
pub const GRAIN_SECTORS: u64 = 8;
/// Grain table size in sectors (4096 u64 entries = 16 MiB coverage), fixed.
pub const GT_SECTORS: u64 = 64;
/// Entries per grain table.
pub const GT_ENTRIES: u64 = GT_SECTORS * 512 / 8;
/// Required top half of an allocated grain-directory entry.
const GD_ENTRY_TAG: u64 = 0x1000_0000;

/// Byte offsets of the constant header's fields (`VMDKSESparseConstHeader`, u64s).
pub mod off {
    /// `magic`.
    pub const MAGIC: usize = 0;
    /// `version`.
    pub const VERSION: usize = 8;
    /// `capacity` in sectors.
    pub const CAPACITY: usize = 16;
    /// `grain_size` in sectors.
    pub const GRAIN_SIZE: usize = 24;
    /// `grain_table_size` in sectors.
    pub const GRAIN_TABLE_SIZE: usize = 32;
    /// `flags`.
    pub const FLAGS: usize = 40;
    /// `volatile_header_offset` in sectors.
    pub const VOLATILE_HEADER_OFFSET: usize = 80;
    /// `grain_dir_offset` in sectors.
    pub const GRAIN_DIR_OFFSET: usize = 128;
    /// `grain_dir_size` in sectors.
    pub const GRAIN_DIR_SIZE: usize = 136;
    /// `grain_tables_offset` in sectors.
    pub const GRAIN_TABLES_OFFSET: usize = 144;
    /// `grain_tables_size` in sectors.
    pub const GRAIN_TABLES_SIZE: usize = 152;
    /// `grains_offset` in sectors.
    pub const GRAINS_OFFSET: usize = 192;
    /// `grains_size` in sectors.
    pub const GRAINS_SIZE: usize = 200;
    /// Volatile header: `magic`.
    pub const VOLATILE_MAGIC: usize = 0;
    /// Volatile header: `replay_journal` (non-zero: the journal needs replay).
    pub const VOLATILE_REPLAY_JOURNAL: usize = 24;
    /// Bytes of the volatile header that reading needs.
    pub const VOLATILE_BYTES: usize = 32;
}

/// The fields of the constant header that reading needs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SeSparseHeader {
    /// Capacity in sectors.
    pub capacity: u64,
    /// Sector of the volatile header.
    pub volatile_header_offset: u64,
    /// Sector and size (sectors) of the grain directory.
    pub grain_dir_offset: u64,
    /// Size of the grain directory in sectors.
    pub grain_dir_size: u64,
    /// Sector of the first grain table.
    pub grain_tables_offset: u64,
    /// Size of the grain-table area in sectors.
    pub grain_tables_size: u64,
    /// Sector of the first grain.
    pub grains_offset: u64,
    /// Size of the grain area in sectors.
    pub grains_size: u64,
}

/// An open seSparse extent.
#[derive(Debug)]
pub struct SeSparseExtent {
    /// The parsed header.
    pub header: SeSparseHeader,
    map: GrainMap<Vec<u64>>,
}

impl SeSparseExtent {
    /// Opens `file`, whose first bytes are an seSparse constant header.
    pub fn open(file: FileSource) -> Result<SeSparseExtent> {
        let path = file.path();
        let mut b = vec![0u8; 512];
        file.read_exact_at(&mut b, 0)?;
        let f = Fields::new(&b, "seSparse header", path, 0);
        let check = |o: usize, want: u64, what: &str| -> Result<()> {
            let found = f.le64(o)?;
            if found != want {
                return Err(Error::corrupt(
                    path,
                    o as u64,
                    format!("seSparse {what} is {found:#x}, expected {want:#x}"),
                ));
            }
            Ok(())
        };
        check(off::MAGIC, MAGIC, "magic")?;
        check(off::VERSION, VERSION, "version")?;
        check(off::GRAIN_SIZE, GRAIN_SECTORS, "grain size")?;
        check(off::GRAIN_TABLE_SIZE, GT_SECTORS, "grain table size")?;
        check(off::FLAGS, 0, "flags")?;
        let header = SeSparseHeader {
            capacity: f.le64(off::CAPACITY)?,
            volatile_header_offset: f.le64(off::VOLATILE_HEADER_OFFSET)?,
            grain_dir_offset: f.le64(off::GRAIN_DIR_OFFSET)?,
            grain_dir_size: f.le64(off::GRAIN_DIR_SIZE)?,
            grain_tables_offset: f.le64(off::GRAIN_TABLES_OFFSET)?,
            grain_tables_size: f.le64(off::GRAIN_TABLES_SIZE)?,
            grains_offset: f.le64(off::GRAINS_OFFSET)?,
            grains_size: f.le64(off::GRAINS_SIZE)?,
        };
        if header.capacity == 0 {
            return Err(Error::corrupt(
                path,
                off::CAPACITY as u64,
                "seSparse capacity is 0 sectors",
            ));
        }
        let in_file = |sector: u64, sectors: u64| {
            sector
                .checked_add(sectors)
                .and_then(|e| e.checked_mul(512))
                .is_some_and(|end| end <= file.len())
        };
        let mut v = [0u8; off::VOLATILE_BYTES];
        if !in_file(header.volatile_header_offset, 1) {
            return Err(Error::corrupt(
                path,
                off::VOLATILE_HEADER_OFFSET as u64,
                "seSparse volatile header lies outside the file",
            ));
        }
        let vat = header.volatile_header_offset * 512;
        file.read_exact_at(&mut v, vat)?;
        let vf = Fields::new(&v, "seSparse volatile header", path, vat);
        let vmagic = vf.le64(off::VOLATILE_MAGIC)?;
        if vmagic != VOLATILE_MAGIC {
            return Err(Error::corrupt(
                path,
                vat,
                format!(
                    "seSparse volatile header magic is {vmagic:#x}, expected {VOLATILE_MAGIC:#x}"
                ),
            ));
        }
        if vf.le64(off::VOLATILE_REPLAY_JOURNAL)? != 0 {
            return Err(Error::corrupt(path, vf.offset(off::VOLATILE_REPLAY_JOURNAL), "seSparse journal needs replay (the snapshot is dirty); refusing to read stale tables"));
        }
        let needed = header.capacity.div_ceil(GT_ENTRIES * GRAIN_SECTORS);
        if header.grain_dir_size.saturating_mul(512 / 8) < needed
            || !in_file(header.grain_dir_offset, header.grain_dir_size)
        {
            return Err(Error::corrupt(path, off::GRAIN_DIR_OFFSET as u64, format!(
                "seSparse grain directory ({} sectors at sector {}) does not cover {} sectors inside the file",
                header.grain_dir_size, header.grain_dir_offset, header.capacity)));
        }
        let gd_at = header.grain_dir_offset * 512;
        let mut raw = vec![0u8; (needed * 8) as usize];
        file.read_exact_at(&mut raw, gd_at)?;
        let mut directory = Vec::with_capacity(needed as usize);
        for (i, entry) in le64_words(&raw).enumerate() {
            let at = gd_at + i as u64 * 8;
            if entry == 0 {
                directory.push(0);
                continue;
            }
            if entry >> 32 != GD_ENTRY_TAG {
                return Err(Error::corrupt(
                    path,
                    at,
                    format!("seSparse grain directory entry {i} is {entry:#x}: bad tag"),
                ));
            }
            let index = entry & 0xFFFF_FFFF;
            let sector = header.grain_tables_offset + index * GT_SECTORS;
            if index >= header.grain_tables_size / GT_SECTORS || !in_file(sector, GT_SECTORS) {
                return Err(Error::corrupt(path, at, format!("seSparse grain directory entry {i} names grain table {index}, outside the table area")));
            }
            directory.push(sector * 512);
        }
        let geometry = Geometry {
            grain_bytes: GRAIN_SECTORS * 512,
            gt_entries: GT_ENTRIES,
            entry_bytes: 8,
            limit: header.capacity * 512,
        };
        let map = GrainMap {
            file,
            directory,
            geometry,
        };
        Ok(SeSparseExtent { header, map })
    }

    /// The file behind the extent.
    pub fn file(&self) -> &FileSource {
        &self.map.file
    }

    /// Resolves `[off, off + len)` of the extent into runs.
    pub fn runs(&self, off: u64, len: u64, out: &mut Vec<Run>) -> Result<()> {
        let path = self.map.file.path();
        let h = &self.header;
        let file_len = self.map.file.len();
        let decode = |entry: u64, grain: u64, entry_at: u64| match entry >> 60 {
            1 | 2 => Ok(RunKind::Zero),
            3 => {
                let cluster = ((entry & 0x0FFF_0000_0000_0000) >> 48)
                    | ((entry & 0x0000_FFFF_FFFF_FFFF) << 12);
                let at = cluster
                    .checked_mul(GRAIN_SECTORS)
                    .and_then(|s| s.checked_add(h.grains_offset))
                    .and_then(|s| s.checked_mul(512));
                match at {
                    Some(at) if at + GRAIN_SECTORS * 512 <= file_len => Ok(RunKind::Data { file_offset: at }),
                    _ => Err(Error::corrupt(path, entry_at, format!(
                        "seSparse grain table entry for grain {grain} names cluster {cluster}, outside the file"))),
                }
            }
            _ => Err(Error::corrupt(
                path,
                entry_at,
                format!(
                    "seSparse grain table entry {entry:#018x} for grain {grain} has an unknown type"
                ),
            )),
        };
        self.map.runs(off, len, decode, out)
    }
}
