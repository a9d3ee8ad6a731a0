//! The read side of the writer: walks the source disk one grain table span at a time,
//! reads only what its map calls data, drops grains that are all zeros, prepares the rest
//! (compression for streams) on rayon workers in bounded batches, and hands them to a
//! layout in grain order.
//!
//! Sources: `docs/formats.md` §1.4 (grain and grain-table coverage); the global rule
//! of `docs/formats.md` (anything unknown is treated as used: ranges the map does not
//! cover are read).

use super::{BATCH_GRAINS, GRAIN_BYTES, GTES_PER_GT, GT_COVERAGE};
use diskray_core::{is_zero, BlockState, ByteRange, Result, VirtualDisk};
use rayon::prelude::*;

/// Where grains go, in order. `prepare` runs on rayon workers; the rest on the caller's
/// thread.
pub trait GrainSink: Sync {
    /// Turns one grain of data (exactly [`GRAIN_BYTES`], zero-padded past the capacity,
    /// not all zeros) into the bytes `grain` will store.
    fn prepare(&self, grain: u64, data: Vec<u8>) -> Result<Vec<u8>>;
    /// Stores grain number `grain`. Called in increasing grain order.
    fn grain(&mut self, grain: u64, prepared: Vec<u8>) -> Result<()>;
    /// Every grain of grain table `table` has been handed over.
    fn end_table(&mut self, table: u64) -> Result<()>;
}

/// Feeds every grain of `disk` (capacity `capacity` bytes, > 0) to `sink`, reporting the
/// bytes processed to `progress` after each batch.
pub fn pump(
    disk: &dyn VirtualDisk,
    capacity: u64,
    progress: &(dyn Fn(u64) + Sync),
    sink: &mut dyn GrainSink,
) -> Result<()> {
    let grains = capacity.div_ceil(GRAIN_BYTES);
    let tables = grains.div_ceil(GTES_PER_GT);
    for table in 0..tables {
        let span = ByteRange::from_bounds(
            table * GT_COVERAGE,
            ((table + 1) * GT_COVERAGE).min(capacity),
        );
        let data = data_intervals(disk, span)?;
        let mut cursor = 0usize;
        let mut grain = table * GTES_PER_GT;
        let table_end = ((table + 1) * GTES_PER_GT).min(grains);
        while grain < table_end {
            let batch_end = (grain + BATCH_GRAINS).min(table_end);
            let mut jobs = Vec::new();
            for g in grain..batch_end {
                let gr =
                    ByteRange::from_bounds(g * GRAIN_BYTES, ((g + 1) * GRAIN_BYTES).min(capacity));
                while cursor < data.len() && data[cursor].end() <= gr.start {
                    cursor += 1;
                }
                let pieces: Vec<ByteRange> = data[cursor..]
                    .iter()
                    .take_while(|d| d.start < gr.end())
                    .filter_map(|d| d.intersect(&gr))
                    .collect();
                if !pieces.is_empty() {
                    jobs.push((g, pieces));
                }
            }
            if !jobs.is_empty() {
                let shared: &dyn GrainSink = &*sink;
                let prepared = jobs
                    .into_par_iter()
                    .map(|(g, pieces)| read_grain(disk, shared, g, &pieces))
                    .collect::<Result<Vec<_>>>()?;
                for (g, bytes) in prepared.into_iter().flatten() {
                    sink.grain(g, bytes)?;
                }
            }
            progress((batch_end * GRAIN_BYTES).min(capacity));
            grain = batch_end;
        }
        sink.end_table(table)?;
    }
    Ok(())
}

/// Reads the data `pieces` of grain `g` into a zeroed grain buffer; `None` when the grain
/// is all zeros, else the sink's prepared bytes.
fn read_grain(
    disk: &dyn VirtualDisk,
    sink: &dyn GrainSink,
    g: u64,
    pieces: &[ByteRange],
) -> Result<Option<(u64, Vec<u8>)>> {
    let base = g * GRAIN_BYTES;
    let mut buf = vec![0u8; GRAIN_BYTES as usize];
    for p in pieces {
        let from = (p.start - base) as usize;
        let to = (p.end() - base) as usize;
        disk.read_at(&mut buf[from..to], p.start)?;
    }
    if is_zero(&buf) {
        return Ok(None);
    }
    Ok(Some((g, sink.prepare(g, buf)?)))
}

/// The parts of `span` that must be read, sorted and disjoint: what the map calls Data or
/// Unreadable (reading it lets the disk report why it cannot), and anything the map leaves
/// out. Zero and Unallocated ranges are skipped.
fn data_intervals(disk: &dyn VirtualDisk, span: ByteRange) -> Result<Vec<ByteRange>> {
    let mut map = disk.map(span)?;
    map.sort_by_key(|m| m.start);
    let mut wanted = Vec::new();
    let mut covered = span.start;
    for m in &map {
        let Some(r) = m.range().intersect(&span) else {
            continue;
        };
        if r.start > covered {
            wanted.push(ByteRange::from_bounds(covered, r.start));
        }
        if matches!(m.state, BlockState::Data | BlockState::Unreadable) {
            wanted.push(r);
        }
        covered = covered.max(r.end());
    }
    if covered < span.end() {
        wanted.push(ByteRange::from_bounds(covered, span.end()));
    }
    wanted.sort_by_key(|r| r.start);
    let mut merged: Vec<ByteRange> = Vec::with_capacity(wanted.len());
    for r in wanted {
        match merged.last_mut() {
            Some(last) if r.start <= last.end() => {
                *last = ByteRange::from_bounds(last.start, last.end().max(r.end()));
            }
            _ => merged.push(r),
        }
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use diskray_core::{Error, MapRange};

    struct Mapped(Vec<MapRange>);

    impl VirtualDisk for Mapped {
        fn capacity(&self) -> u64 {
            1 << 20
        }
        fn read_at(&self, _: &mut [u8], _: u64) -> Result<()> {
            Err(Error::io(
                std::path::Path::new("mapped disk"),
                0,
                std::io::Error::other("no reads here"),
            ))
        }
        fn map(&self, _: ByteRange) -> Result<Vec<MapRange>> {
            Ok(self.0.clone())
        }
    }

    fn run(start: u64, length: u64, state: BlockState) -> MapRange {
        MapRange {
            start,
            length,
            state,
            depth: 0,
        }
    }

    #[test]
    fn gaps_and_data_are_read_holes_are_not() {
        let d = Mapped(vec![
            run(300, 100, BlockState::Zero),
            run(0, 100, BlockState::Unallocated),
            run(100, 50, BlockState::Data),
            run(400, 100, BlockState::Unreadable),
            run(500, 5000, BlockState::Unallocated),
        ]);
        let got = data_intervals(&d, ByteRange::new(50, 1000)).unwrap();
        assert_eq!(
            got,
            vec![
                ByteRange::from_bounds(100, 300),
                ByteRange::from_bounds(400, 500)
            ]
        );
    }
}
