//! An seSparse extent: the space-efficient sparse format of ESXi 6.5+ snapshots on VMFS6.
//!
//! The format is undocumented; qemu's strict reader is the reference. Sources: qemu
//! `block/vmdk.c` (`VMDKSESparseConstHeader`, `VMDKSESparseVolatileHeader`,
//! `vmdk_open_se_sparse`, `get_cluster_offset`); `shared/FORMATS.md` §1.9.

use crate::grain_table::{self, Geometry, TableAt};
use crate::run::{Run, RunKind};
use diskray_core::{Error, FileSource, Result};

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
    file: FileSource,
    /// The parsed header.
    pub header: SeSparseHeader,
    directory: Vec<u64>,
    geometry: Geometry,
}

impl SeSparseExtent {
    /// Opens `file`, whose first bytes are an seSparse constant header.
    pub fn open(file: FileSource) -> Result<SeSparseExtent> {
        let path = file.path();
        let mut b = vec![0u8; 512];
        file.read_exact_at(&mut b, 0)?;
        let f = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        let check = |o: usize, want: u64, what: &str| -> Result<()> {
            if f(o) != want {
                return Err(Error::corrupt(
                    path,
                    o as u64,
                    format!("seSparse {what} is {:#x}, expected {want:#x}", f(o)),
                ));
            }
            Ok(())
        };
        check(0, MAGIC, "magic")?;
        check(8, VERSION, "version")?;
        check(24, GRAIN_SECTORS, "grain size")?;
        check(32, GT_SECTORS, "grain table size")?;
        check(40, 0, "flags")?;
        let header = SeSparseHeader {
            capacity: f(16),
            volatile_header_offset: f(80),
            grain_dir_offset: f(128),
            grain_dir_size: f(136),
            grain_tables_offset: f(144),
            grain_tables_size: f(152),
            grains_offset: f(192),
            grains_size: f(200),
        };
        if header.capacity == 0 {
            return Err(Error::corrupt(path, 16, "seSparse capacity is 0 sectors"));
        }
        let in_file = |sector: u64, sectors: u64| {
            sector
                .checked_add(sectors)
                .and_then(|e| e.checked_mul(512))
                .is_some_and(|end| end <= file.len())
        };
        let mut v = [0u8; 32];
        if !in_file(header.volatile_header_offset, 1) {
            return Err(Error::corrupt(
                path,
                80,
                "seSparse volatile header lies outside the file",
            ));
        }
        let vat = header.volatile_header_offset * 512;
        file.read_exact_at(&mut v, vat)?;
        let vmagic = u64::from_le_bytes(v[0..8].try_into().unwrap());
        if vmagic != VOLATILE_MAGIC {
            return Err(Error::corrupt(
                path,
                vat,
                format!(
                    "seSparse volatile header magic is {vmagic:#x}, expected {VOLATILE_MAGIC:#x}"
                ),
            ));
        }
        if u64::from_le_bytes(v[24..32].try_into().unwrap()) != 0 {
            return Err(Error::corrupt(path, vat + 24, "seSparse journal needs replay (the snapshot is dirty); refusing to read stale tables"));
        }
        let needed = header.capacity.div_ceil(GT_ENTRIES * GRAIN_SECTORS);
        if header.grain_dir_size.saturating_mul(512 / 8) < needed
            || !in_file(header.grain_dir_offset, header.grain_dir_size)
        {
            return Err(Error::corrupt(path, 128, format!(
                "seSparse grain directory ({} sectors at sector {}) does not cover {} sectors inside the file",
                header.grain_dir_size, header.grain_dir_offset, header.capacity)));
        }
        let gd_at = header.grain_dir_offset * 512;
        let mut raw = vec![0u8; (needed * 8) as usize];
        file.read_exact_at(&mut raw, gd_at)?;
        let mut directory = Vec::with_capacity(needed as usize);
        for (i, e) in raw.chunks_exact(8).enumerate() {
            let entry = u64::from_le_bytes(e.try_into().unwrap());
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
        Ok(SeSparseExtent {
            file,
            header,
            directory,
            geometry,
        })
    }

    /// The file behind the extent.
    pub fn file(&self) -> &FileSource {
        &self.file
    }

    /// Resolves `[off, off + len)` of the extent into runs.
    pub fn runs(&self, off: u64, len: u64, out: &mut Vec<Run>) -> Result<()> {
        let path = self.file.path();
        let h = &self.header;
        let file_len = self.file.len();
        grain_table::walk(
            &self.file,
            &self.geometry,
            off,
            len,
            |gd| {
                Ok(match self.directory[gd as usize] {
                    0 => TableAt::Unallocated,
                    at => TableAt::Offset(at),
                })
            },
            |entry, grain, entry_at| {
                match entry >> 60 {
                0 if entry == 0 => Ok(RunKind::Unallocated),
                1 | 2 => Ok(RunKind::Zero),
                3 => {
                    let cluster = ((entry & 0x0FFF_0000_0000_0000) >> 48) | ((entry & 0x0000_FFFF_FFFF_FFFF) << 12);
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
                _ => Err(Error::corrupt(path, entry_at, format!(
                    "seSparse grain table entry {entry:#018x} for grain {grain} has an unknown type"))),
            }
            },
            out,
        )
    }
}
