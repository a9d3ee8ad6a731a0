//! The walk shared by every grain-directory format (hosted sparse, COWD, seSparse): a
//! directory of grain-table locations held in memory, grain tables read on demand (only
//! the entries a request covers, in one positioned read per table), and entries decoded by
//! the format into runs.
//!
//! Sources: VMware "Virtual Disk Format 1.1" §"Grain Directory and Grain Table" and qemu
//! `block/vmdk.c` `get_cluster_offset`, which all three formats share in shape.

use crate::run::{self, Run, RunKind};
use diskray_core::fields::{le32_words, le_words};
use diskray_core::{Error, FileSource, Result};

/// The shape of a two-level grain map.
#[derive(Debug, Clone, Copy)]
pub struct Geometry {
    /// Bytes per grain.
    pub grain_bytes: u64,
    /// Entries per grain table.
    pub gt_entries: u64,
    /// Bytes per grain-table entry (4 or 8).
    pub entry_bytes: u64,
    /// Bytes covered by the tables; beyond it everything is unallocated.
    pub limit: u64,
}

impl Geometry {
    /// Bytes covered by one grain table.
    pub fn gt_coverage(&self) -> u64 {
        self.grain_bytes * self.gt_entries
    }
}

/// Where a grain table lives, as the directory says.
pub enum TableAt {
    /// The whole span of this table is unallocated.
    Unallocated,
    /// The table starts at this byte offset of the file.
    Offset(u64),
}

/// Where each grain table of a directory lives.
pub trait Directory {
    /// Where the table of directory entry `index` is.
    fn table(&self, index: u64) -> TableAt;
}

/// A directory of tables' byte offsets, 0 for a table not allocated (seSparse, whose
/// entries are checked and turned into offsets when the extent is opened).
impl Directory for Vec<u64> {
    fn table(&self, index: u64) -> TableAt {
        match self[index as usize] {
            0 => TableAt::Unallocated,
            at => TableAt::Offset(at),
        }
    }
}

/// What every grain-directory extent holds to read its data: the file, its grain
/// directory and the shape of its map.
#[derive(Debug)]
pub struct GrainMap<D> {
    /// The extent's file.
    pub file: FileSource,
    /// The grain directory in use.
    pub directory: D,
    /// The shape of the map.
    pub geometry: Geometry,
}

impl<D: Directory> GrainMap<D> {
    /// Resolves `[off, off + len)` of the extent into runs appended to `out`.
    ///
    /// A zero entry is an unallocated grain in every format; `decode` turns any other raw
    /// entry of grain number `grain` (read from byte `at` of the file) into the run kind
    /// of the whole grain: `Data` at the grain's first byte, `Compressed` with `skip` 0,
    /// or a state.
    pub fn runs(
        &self,
        mut off: u64,
        len: u64,
        decode: impl Fn(u64, u64, u64) -> Result<RunKind>,
        out: &mut Vec<Run>,
    ) -> Result<()> {
        let (file, geo) = (&self.file, &self.geometry);
        let end = off + len;
        let mut entries = Vec::new();
        while off < end {
            if off >= geo.limit {
                run::push(
                    out,
                    Run {
                        len: end - off,
                        kind: RunKind::Unallocated,
                    },
                );
                break;
            }
            let gd_index = off / geo.gt_coverage();
            let table_end = ((gd_index + 1) * geo.gt_coverage()).min(end).min(geo.limit);
            let at = match self.directory.table(gd_index) {
                TableAt::Unallocated => {
                    run::push(
                        out,
                        Run {
                            len: table_end - off,
                            kind: RunKind::Unallocated,
                        },
                    );
                    off = table_end;
                    continue;
                }
                TableAt::Offset(at) => at,
            };
            let first = (off / geo.grain_bytes) % geo.gt_entries;
            let last = ((table_end - 1) / geo.grain_bytes) % geo.gt_entries;
            let count = (last - first + 1) as usize;
            entries.resize(count * geo.entry_bytes as usize, 0);
            let entries_at = at + first * geo.entry_bytes;
            file.read_exact_at(&mut entries, entries_at)?;
            for (i, value) in le_words(&entries, geo.entry_bytes as usize).enumerate() {
                let grain = off / geo.grain_bytes;
                let within = off % geo.grain_bytes;
                let piece_end = ((grain + 1) * geo.grain_bytes).min(table_end);
                let entry_at = entries_at + i as u64 * geo.entry_bytes;
                let decoded = match value {
                    0 => RunKind::Unallocated,
                    _ => decode(value, grain, entry_at)?,
                };
                let kind = match decoded {
                    RunKind::Data { file_offset } => RunKind::Data {
                        file_offset: file_offset + within,
                    },
                    RunKind::Compressed { grain, sector, .. } => RunKind::Compressed {
                        grain,
                        sector,
                        skip: within,
                    },
                    other => other,
                };
                run::push(
                    out,
                    Run {
                        len: piece_end - off,
                        kind,
                    },
                );
                off = piece_end;
            }
        }
        Ok(())
    }
}

/// A grain directory of u32 sector numbers (hosted sparse, COWD), loaded whole: it lies
/// inside the file, so its size is bounded by the file's.
#[derive(Debug)]
pub struct SectorDirectory {
    sectors: Vec<u32>,
}

impl Directory for SectorDirectory {
    fn table(&self, index: u64) -> TableAt {
        match self.sectors[index as usize] {
            0 => TableAt::Unallocated,
            s => TableAt::Offset(s as u64 * 512),
        }
    }
}

impl SectorDirectory {
    /// Loads `entries` entries from `sector` (named by the header field at byte
    /// `field_at`), checking that the directory and every grain table it names lie inside
    /// the file and after its `header_bytes`-byte header.
    pub fn load(
        file: &FileSource,
        sector: u64,
        field_at: u64,
        entries: u64,
        geo: &Geometry,
        header_bytes: u64,
        what: &str,
    ) -> Result<SectorDirectory> {
        let path = file.path();
        let bytes = entries.saturating_mul(4);
        let at = sector.checked_mul(512).filter(|&a| a >= header_bytes);
        let Some(at) = at.filter(|a| a.checked_add(bytes).is_some_and(|end| end <= file.len()))
        else {
            return Err(Error::corrupt(path, field_at, format!(
                "{what} at sector {sector} with {entries} entries does not fit in the file ({} bytes)", file.len())));
        };
        let mut raw = vec![0u8; bytes as usize];
        file.read_exact_at(&mut raw, at)?;
        let gt_bytes = geo.gt_entries * geo.entry_bytes;
        let mut sectors = Vec::with_capacity(entries as usize);
        for (i, gt) in le32_words(&raw).enumerate() {
            let gt_at = gt as u64 * 512;
            if gt != 0 && (gt_at < header_bytes || gt_at + gt_bytes > file.len()) {
                return Err(Error::corrupt(
                    path,
                    at + i as u64 * 4,
                    format!(
                        "{what} entry {i} points to a grain table at sector {gt}, outside the file"
                    ),
                ));
            }
            sectors.push(gt);
        }
        Ok(SectorDirectory { sectors })
    }
}
