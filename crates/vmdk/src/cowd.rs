//! A COWD (vmfsSparse) extent: the ESXi redo-log format of snapshots on VMFS5.
//!
//! Sources: VMware "Virtual Disk Format 1.1" §"ESX Server Sparse Extent Header"; qemu
//! `block/vmdk.c` (`VMDK3Header`, `vmdk_open_vmfs_sparse`: grain tables of a fixed 4096
//! entries); `docs/formats.md` §1.8.

use crate::grain_table::{Geometry, GrainMap, SectorDirectory};
use crate::run::{Run, RunKind};
use diskray_core::{Error, Fields, FileSource, Result};

/// `COWD` read as a little-endian u32.
pub const MAGIC: u32 = 0x4457_4F43;
/// Entries in every COWD grain table (fixed by the format).
pub const GT_ENTRIES: u64 = 4096;
/// Bytes of the COWD header.
pub const HEADER_BYTES: usize = 2048;
/// Largest grain accepted, in sectors (same bound and reason as hosted sparse).
pub const MAX_GRAIN_SECTORS: u64 = crate::sparse_header::MAX_GRAIN_SECTORS;

/// Byte offsets of the COWD header's fields (`COWDisk_Header`, little-endian u32s).
pub mod off {
    /// `magicNumber`.
    pub const MAGIC: usize = 0;
    /// `version`.
    pub const VERSION: usize = 4;
    /// `flags`.
    pub const FLAGS: usize = 8;
    /// `numSectors`: capacity.
    pub const CAPACITY: usize = 12;
    /// `grainSize` in sectors.
    pub const GRAIN_SIZE: usize = 16;
    /// `gdOffset` in sectors.
    pub const GD_OFFSET: usize = 20;
    /// `numGDEntries`.
    pub const GD_ENTRIES: usize = 24;
    /// `freeSector`.
    pub const FREE_SECTOR: usize = 28;
}

/// The fields of a COWD header that reading needs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CowdHeader {
    /// Format version (1; 3 for Workstation 3 "VMDK3").
    pub version: u32,
    /// Flag bits.
    pub flags: u32,
    /// Capacity in sectors.
    pub capacity: u64,
    /// Grain size in sectors.
    pub grain_size: u64,
    /// Sector of the grain directory.
    pub gd_offset: u64,
    /// Entries in the grain directory.
    pub gd_entries: u64,
    /// Next free sector.
    pub free_sector: u32,
}

/// An open COWD extent.
#[derive(Debug)]
pub struct CowdExtent {
    /// The parsed header.
    pub header: CowdHeader,
    map: GrainMap<SectorDirectory>,
}

impl CowdExtent {
    /// Opens `file`, whose first bytes are a `COWD` header.
    pub fn open(file: FileSource) -> Result<CowdExtent> {
        let path = file.path();
        let mut b = vec![0u8; HEADER_BYTES];
        file.read_exact_at(&mut b, 0)?;
        let f = Fields::new(&b, "COWD header", path, 0);
        if f.le32(off::MAGIC)? != MAGIC {
            return Err(Error::corrupt(
                path,
                off::MAGIC as u64,
                "not a COWD extent (magic is not COWD)",
            ));
        }
        let header = CowdHeader {
            version: f.le32(off::VERSION)?,
            flags: f.le32(off::FLAGS)?,
            capacity: f.le32(off::CAPACITY)? as u64,
            grain_size: f.le32(off::GRAIN_SIZE)? as u64,
            gd_offset: f.le32(off::GD_OFFSET)? as u64,
            gd_entries: f.le32(off::GD_ENTRIES)? as u64,
            free_sector: f.le32(off::FREE_SECTOR)?,
        };
        if header.version != 1 && header.version != 3 {
            return Err(Error::corrupt(
                path,
                off::VERSION as u64,
                format!("COWD version {} is not 1 or 3", header.version),
            ));
        }
        if header.capacity == 0 {
            return Err(Error::corrupt(
                path,
                off::CAPACITY as u64,
                "COWD capacity is 0 sectors",
            ));
        }
        let g = header.grain_size;
        if g == 0 || !g.is_power_of_two() || g > MAX_GRAIN_SECTORS {
            return Err(Error::corrupt(
                path,
                off::GRAIN_SIZE as u64,
                format!(
                    "COWD grain size {g} sectors is not a power of two up to {MAX_GRAIN_SECTORS}"
                ),
            ));
        }
        let needed = header.capacity.div_ceil(GT_ENTRIES * g);
        if header.gd_entries < needed {
            return Err(Error::corrupt(
                path,
                off::GD_ENTRIES as u64,
                format!(
                    "COWD grain directory has {} entries but {} sectors need {needed}",
                    header.gd_entries, header.capacity
                ),
            ));
        }
        let geometry = Geometry {
            grain_bytes: g * 512,
            gt_entries: GT_ENTRIES,
            entry_bytes: 4,
            limit: header.capacity * 512,
        };
        let directory = SectorDirectory::load(
            &file,
            header.gd_offset,
            off::GD_OFFSET as u64,
            needed,
            &geometry,
            HEADER_BYTES as u64,
            "COWD grain directory",
        )?;
        let map = GrainMap {
            file,
            directory,
            geometry,
        };
        Ok(CowdExtent { header, map })
    }

    /// The file behind the extent.
    pub fn file(&self) -> &FileSource {
        &self.map.file
    }

    /// Resolves `[off, off + len)` of the extent into runs.
    pub fn runs(&self, off: u64, len: u64, out: &mut Vec<Run>) -> Result<()> {
        let path = self.map.file.path();
        let file_len = self.map.file.len();
        let grain_bytes = self.map.geometry.grain_bytes;
        let decode = |entry: u64, grain: u64, entry_at: u64| {
            let at = entry * 512;
            if at < HEADER_BYTES as u64 || at + grain_bytes > file_len {
                return Err(Error::corrupt(path, entry_at, format!(
                    "COWD grain table entry for grain {grain} points to sector {entry}, outside the file")));
            }
            Ok(RunKind::Data { file_offset: at })
        };
        self.map.runs(off, len, decode, out)
    }
}
