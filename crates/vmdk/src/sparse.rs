//! A hosted sparse extent (`KDMV`): monolithicSparse, twoGbMaxExtentSparse pieces,
//! streamOptimized, and hosted sparse snapshot deltas.
//!
//! Sources: VMware "Virtual Disk Format 1.1"; qemu `block/vmdk.c`; `docs/formats.md`
//! §1.3–1.5 (zeroed grains, the redundant directory, GD_AT_END streams, dangling entries).

use crate::grain_table::{Geometry, GrainMap, SectorDirectory};
use crate::run::{Run, RunKind};
use crate::sparse_header::{SparseHeader, FLAG_RGD, GD_AT_END, HEADER_BYTES};
use crate::stream;
use diskray_core::{Error, FileSource, Result, Warning};

/// Which grain directory the extent uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectoryUsed {
    /// The primary grain directory.
    Primary,
    /// The redundant copy, because the primary one is damaged.
    Redundant,
}

/// An open hosted sparse extent.
#[derive(Debug)]
pub struct SparseExtent {
    header: SparseHeader,
    map: GrainMap<SectorDirectory>,
    /// Which grain directory `map` reads through.
    pub directory_used: DirectoryUsed,
    /// Things a careful user should know (damage worked around, oddities).
    pub warnings: Vec<Warning>,
}

impl SparseExtent {
    /// Opens `file`, whose first 512 bytes are a `KDMV` header.
    pub fn open(file: FileSource) -> Result<SparseExtent> {
        let mut head = vec![0u8; HEADER_BYTES];
        file.read_exact_at(&mut head, 0)?;
        let mut header = SparseHeader::parse(&head, file.path(), 0)?;
        if header.gd_offset == GD_AT_END {
            if !header.compressed() {
                return Err(Error::corrupt(
                    file.path(),
                    56,
                    "grain directory at the end (GD_AT_END) in an extent that is not compressed",
                ));
            }
            let footer = stream::read_footer(&file)?;
            header.gd_offset = footer.gd_offset;
            if footer.rgd_offset != 0 {
                header.rgd_offset = footer.rgd_offset;
            }
        }
        let geometry = Geometry {
            grain_bytes: header.grain_size * 512,
            gt_entries: header.num_gtes_per_gt as u64,
            entry_bytes: 4,
            limit: header.capacity.saturating_mul(512),
        };
        let entries = header
            .capacity
            .div_ceil(header.grain_size * header.num_gtes_per_gt as u64);
        let mut warnings = Vec::new();
        let primary = SectorDirectory::load(
            &file,
            header.gd_offset,
            56,
            entries,
            &geometry,
            512,
            "grain directory",
        );
        let (directory, directory_used) = match primary {
            Ok(d) => (d, DirectoryUsed::Primary),
            Err(primary_err) => {
                let has_rgd = header.flags & FLAG_RGD != 0 && header.rgd_offset != 0;
                match has_rgd.then(|| {
                    SectorDirectory::load(
                        &file,
                        header.rgd_offset,
                        48,
                        entries,
                        &geometry,
                        512,
                        "redundant grain directory",
                    )
                }) {
                    Some(Ok(d)) => {
                        warnings.push(Warning::new(format!(
                            "primary grain directory is damaged ({primary_err}); using the redundant grain directory at sector {}",
                            header.rgd_offset
                        )));
                        (d, DirectoryUsed::Redundant)
                    }
                    _ => return Err(primary_err),
                }
            }
        };
        if header.unclean_shutdown {
            warnings.push(Warning::about(file.path(), "unclean shutdown flag is set"));
        }
        let map = GrainMap {
            file,
            directory,
            geometry,
        };
        Ok(SparseExtent {
            header,
            map,
            directory_used,
            warnings,
        })
    }

    /// The header (for streams with a footer, with the footer's grain directory offset).
    pub fn header(&self) -> &SparseHeader {
        &self.header
    }

    /// The file behind the extent.
    pub fn file(&self) -> &FileSource {
        &self.map.file
    }

    /// Resolves `[off, off + len)` of the extent into runs.
    pub fn runs(&self, off: u64, len: u64, out: &mut Vec<Run>) -> Result<()> {
        let file_len = self.map.file.len();
        let path = self.map.file.path();
        let h = &self.header;
        let grain_bytes = self.map.geometry.grain_bytes;
        let capacity = self.map.geometry.limit;
        let decode = |entry: u64, grain: u64, entry_at: u64| {
            if entry == 1 && h.zeroed_grain() {
                return Ok(RunKind::Zero);
            }
            let at = entry * 512;
            if h.compressed() {
                if at + stream::GRAIN_MARKER_BYTES > file_len || entry < 1 {
                    return Err(Error::corrupt(path, entry_at, format!(
                        "grain table entry for grain {grain} points to sector {entry}, past the end of the file")));
                }
                return Ok(RunKind::Compressed {
                    grain,
                    sector: entry,
                    skip: 0,
                });
            }
            if entry < h.overhead.max(1) {
                return Err(Error::corrupt(path, entry_at, format!(
                    "grain table entry for grain {grain} points to sector {entry}, inside the metadata area (first grain sector is {})", h.overhead)));
            }
            let needed = grain_bytes.min(capacity - grain * grain_bytes);
            if at.checked_add(needed).is_none_or(|end| end > file_len) {
                return Err(Error::corrupt(path, entry_at, format!(
                    "grain table entry for grain {grain} points to sector {entry}, past the end of the file ({file_len} bytes)")));
            }
            Ok(RunKind::Data { file_offset: at })
        };
        self.map.runs(off, len, decode, out)
    }

    /// Reads a compressed run into `buf`.
    pub fn read_compressed(
        &self,
        grain: u64,
        sector: u64,
        skip: u64,
        buf: &mut [u8],
    ) -> Result<()> {
        let grain_bytes = self.map.geometry.grain_bytes;
        let last = (grain + 1) * grain_bytes >= self.map.geometry.limit;
        let mut whole = vec![0u8; grain_bytes as usize];
        stream::read_grain(
            &self.map.file,
            &self.header,
            grain,
            sector,
            !last,
            &mut whole,
        )?;
        buf.copy_from_slice(&whole[skip as usize..skip as usize + buf.len()]);
        Ok(())
    }
}
