//! streamOptimized, written front to back: header with gdOffset = GD_AT_END, embedded
//! descriptor, then from the overhead on: compressed grain records, a GT marker and grain
//! table after each grain table span that holds a grain, the GD marker and grain
//! directory, the footer marker and footer (the header again, with the real gdOffset), and
//! the end-of-stream marker.
//!
//! Sources: VMware "Virtual Disk Format 1.1" §"Stream-Optimized Compressed Sparse Extents"
//! (record order, GD_AT_END, footer, EOS); qemu `block/vmdk.c` (`vmdk_init_extent`:
//! version 3, flags 0x30003, compressAlgorithm 1, overhead rounded to a grain;
//! `vmdk_open_vmdk4`: footer at size − 1536 with marker size 1 and type 3, EOS last);
//! `docs/formats.md` §1.5.

use super::descriptor::DESCRIPTOR_SECTORS;
use super::grains::GrainSink;
use super::marker::{GrainRecord, MarkerType, MetadataMarker};
use super::out::OutFile;
use super::{file_sector, header, Job, GRAIN_SECTORS, GTES_PER_GT, GT_SECTORS};
use crate::sparse_header::{
    SparseHeader, FLAG_COMPRESSED, FLAG_EMBEDDED_LBA, FLAG_NEWLINE_VALID, FLAG_RGD, GD_AT_END,
};
use diskray_core::{Result, SECTOR};

/// Writes the job's disk as streamOptimized into `out`.
pub(super) fn write(job: &Job, out: OutFile) -> Result<()> {
    let gt_count = job.sectors.div_ceil(GRAIN_SECTORS).div_ceil(GTES_PER_GT);
    // Grains start at the first grain boundary after header and descriptor, like qemu.
    let overhead = (1 + DESCRIPTOR_SECTORS).div_ceil(GRAIN_SECTORS) * GRAIN_SECTORS;
    let mut h = SparseHeader {
        version: 3,
        flags: FLAG_NEWLINE_VALID | FLAG_RGD | FLAG_COMPRESSED | FLAG_EMBEDDED_LBA,
        rgd_offset: 0,
        gd_offset: GD_AT_END,
        overhead,
        compress_algorithm: 1,
        ..job.header()
    };
    job.write_head(&out, &h, "streamOptimized")?;
    let mut sink = StreamSink {
        out,
        cursor: overhead,
        gt: vec![0; GTES_PER_GT as usize],
        dirty: false,
        gd: Vec::with_capacity(gt_count as usize),
    };
    job.pump(&mut sink)?;
    let StreamSink {
        out,
        mut cursor,
        gd,
        ..
    } = sink;

    let gd_sectors = (gd.len() as u64 * 4).div_ceil(SECTOR);
    let mut gd_bytes: Vec<u8> = gd.iter().flat_map(|e| e.to_le_bytes()).collect();
    gd_bytes.resize((gd_sectors * SECTOR) as usize, 0);
    let gd_marker = MetadataMarker {
        sectors: gd_sectors,
        kind: MarkerType::GrainDirectory,
    };
    out.write_at(&gd_marker.encode(), cursor * SECTOR)?;
    h.gd_offset = cursor + 1;
    out.write_at(&gd_bytes, h.gd_offset * SECTOR)?;
    cursor = h.gd_offset + gd_sectors;

    let footer_marker = MetadataMarker {
        sectors: 1,
        kind: MarkerType::Footer,
    };
    let eos = MetadataMarker {
        sectors: 0,
        kind: MarkerType::EndOfStream,
    };
    let mut tail = Vec::with_capacity(3 * SECTOR as usize);
    tail.extend_from_slice(&footer_marker.encode());
    tail.extend_from_slice(&header::encode(&h));
    tail.extend_from_slice(&eos.encode());
    out.write_at(&tail, cursor * SECTOR)?;
    let len = (cursor + 3) * SECTOR;
    out.sync(len)
}

/// Appends grain records, and a marked grain table after each span that has grains.
struct StreamSink {
    out: OutFile,
    /// Sector where the next record goes.
    cursor: u64,
    /// The grain table being filled.
    gt: Vec<u32>,
    /// `gt` has a non-zero entry.
    dirty: bool,
    /// The grain directory so far (one entry per finished table; 0 = no table).
    gd: Vec<u32>,
}

impl GrainSink for StreamSink {
    fn prepare(&self, grain: u64, data: Vec<u8>) -> Result<Vec<u8>> {
        Ok(GrainRecord::compress(self.out.path(), grain * GRAIN_SECTORS, &data)?.bytes)
    }

    fn grain(&mut self, grain: u64, record: Vec<u8>) -> Result<()> {
        let sector = file_sector(&self.out, self.cursor)?;
        self.out.write_at(&record, self.cursor * SECTOR)?;
        self.gt[(grain % GTES_PER_GT) as usize] = sector;
        self.dirty = true;
        self.cursor += record.len() as u64 / SECTOR;
        Ok(())
    }

    fn end_table(&mut self, _table: u64) -> Result<()> {
        if !self.dirty {
            self.gd.push(0);
            return Ok(());
        }
        let marker = MetadataMarker {
            sectors: GT_SECTORS,
            kind: MarkerType::GrainTable,
        };
        let mut bytes = Vec::with_capacity(((1 + GT_SECTORS) * SECTOR) as usize);
        bytes.extend_from_slice(&marker.encode());
        bytes.extend(self.gt.iter().flat_map(|e| e.to_le_bytes()));
        let gt_sector = file_sector(&self.out, self.cursor + 1)?;
        self.out.write_at(&bytes, self.cursor * SECTOR)?;
        self.gd.push(gt_sector);
        self.cursor += 1 + GT_SECTORS;
        self.gt.fill(0);
        self.dirty = false;
        Ok(())
    }
}
