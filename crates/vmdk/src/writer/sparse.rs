//! monolithicSparse: header, embedded descriptor, redundant and primary grain directories
//! with all their grain tables preallocated (as holes), then grains appended, each written
//! at its offset.
//!
//! Sources: qemu `block/vmdk.c` `vmdk_init_extent` (version 1, flags RGD|NL_DETECT,
//! descriptor at sector 1 for 20 sectors, RGD right after it followed by its tables, GD
//! after those followed by its tables, grains from the next multiple of the grain size);
//! `docs/formats.md` §1.4 (the 64 MiB layout: RGD 21, RGTs 22/26, GD 30, GTs 31/35,
//! grains from 128).

use super::descriptor::{EmbeddedDescriptor, DESCRIPTOR_SECTORS};
use super::grains::{self, GrainSink};
use super::out::OutFile;
use super::{file_sector, header, GRAIN_SECTORS, GTES_PER_GT, GT_SECTORS};
use crate::sparse_header::{SparseHeader, FLAG_NEWLINE_VALID, FLAG_RGD};
use diskray_core::{Result, VirtualDisk, SECTOR};

/// Grain-directory entries written per positioned write (bounds the buffer to 256 KiB
/// whatever the capacity).
const GD_CHUNK_ENTRIES: u64 = 65_536;

/// Where everything goes, in sectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SparseLayout {
    /// Number of grain tables (and directory entries).
    pub gt_count: u64,
    /// Sectors of one grain directory.
    pub gd_sectors: u64,
    /// Redundant grain directory; its tables follow it.
    pub rgd_offset: u64,
    /// Primary grain directory; its tables follow it.
    pub gd_offset: u64,
    /// First grain (the header's overHead).
    pub grain_offset: u64,
}

impl SparseLayout {
    /// The layout qemu uses for `sectors` sectors of capacity.
    pub fn new(sectors: u64) -> SparseLayout {
        let grains = sectors.div_ceil(GRAIN_SECTORS);
        let gt_count = grains.div_ceil(GTES_PER_GT);
        let gd_sectors = (gt_count * 4).div_ceil(SECTOR);
        let rgd_offset = 1 + DESCRIPTOR_SECTORS;
        let gd_offset = rgd_offset + gd_sectors + gt_count * GT_SECTORS;
        let grain_offset = (gd_offset + gd_sectors + gt_count * GT_SECTORS).div_ceil(GRAIN_SECTORS)
            * GRAIN_SECTORS;
        SparseLayout {
            gt_count,
            gd_sectors,
            rgd_offset,
            gd_offset,
            grain_offset,
        }
    }
}

/// Writes `disk` as monolithicSparse into `out`.
pub fn write(
    disk: &dyn VirtualDisk,
    out: OutFile,
    sectors: u64,
    file_name: &str,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<()> {
    let layout = SparseLayout::new(sectors);
    let h = SparseHeader {
        version: 1,
        flags: FLAG_NEWLINE_VALID | FLAG_RGD,
        capacity: sectors,
        grain_size: GRAIN_SECTORS,
        descriptor_offset: 1,
        descriptor_size: DESCRIPTOR_SECTORS,
        num_gtes_per_gt: GTES_PER_GT as u32,
        rgd_offset: layout.rgd_offset,
        gd_offset: layout.gd_offset,
        overhead: layout.grain_offset,
        unclean_shutdown: false,
        compress_algorithm: 0,
    };
    out.write_at(&header::encode(&h), 0)?;
    let desc = EmbeddedDescriptor::new("monolithicSparse", sectors, file_name);
    out.write_at(&desc.encode(out.path())?, SECTOR)?;
    out.set_len(layout.grain_offset * SECTOR)?;
    for gd in [layout.rgd_offset, layout.gd_offset] {
        let mut first = 0;
        while first < layout.gt_count {
            let end = (first + GD_CHUNK_ENTRIES).min(layout.gt_count);
            let mut buf = Vec::with_capacity(((end - first) * 4) as usize);
            for i in first..end {
                let gt = file_sector(&out, gd + layout.gd_sectors + i * GT_SECTORS)?;
                buf.extend_from_slice(&gt.to_le_bytes());
            }
            out.write_at(&buf, (gd * SECTOR) + first * 4)?;
            first = end;
        }
    }
    let mut sink = SparseSink {
        out,
        layout,
        gt: vec![0; GTES_PER_GT as usize],
        dirty: false,
        next_sector: layout.grain_offset,
    };
    grains::pump(disk, sectors * SECTOR, progress, &mut sink)?;
    let len = sink.next_sector * SECTOR;
    sink.out.sync(len)
}

/// Appends grains and writes each finished grain table to both copies.
struct SparseSink {
    out: OutFile,
    layout: SparseLayout,
    /// The grain table being filled.
    gt: Vec<u32>,
    /// `gt` has a non-zero entry.
    dirty: bool,
    /// Where the next grain goes.
    next_sector: u64,
}

impl GrainSink for SparseSink {
    fn prepare(&self, _grain: u64, data: Vec<u8>) -> Result<Vec<u8>> {
        Ok(data)
    }

    fn grain(&mut self, grain: u64, data: Vec<u8>) -> Result<()> {
        let sector = file_sector(&self.out, self.next_sector)?;
        self.out.write_at(&data, self.next_sector * SECTOR)?;
        self.gt[(grain % GTES_PER_GT) as usize] = sector;
        self.dirty = true;
        self.next_sector += GRAIN_SECTORS;
        Ok(())
    }

    fn end_table(&mut self, table: u64) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let bytes: Vec<u8> = self.gt.iter().flat_map(|e| e.to_le_bytes()).collect();
        let l = &self.layout;
        for gd in [l.rgd_offset, l.gd_offset] {
            let at = (gd + l.gd_sectors + table * GT_SECTORS) * SECTOR;
            self.out.write_at(&bytes, at)?;
        }
        self.gt.fill(0);
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_qemu_64_mib_layout() {
        let l = SparseLayout::new(131_072);
        assert_eq!(
            (
                l.gt_count,
                l.gd_sectors,
                l.rgd_offset,
                l.gd_offset,
                l.grain_offset
            ),
            (2, 1, 21, 30, 128)
        );
        // docs/formats.md §6.3: an empty 5 GiB qemu monolithicSparse is 720 896 bytes.
        assert_eq!(SparseLayout::new(10 << 20).grain_offset * SECTOR, 720_896);
    }
}
