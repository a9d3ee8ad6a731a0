//! [`diff`]: the change map of two disk images, block by block, for hypervisors without
//! change tracking and for tests (`diskray changes diff`).
//!
//! Sources: `docs/design.md` §3.5 (the `changes diff` command; memory bounded whatever the
//! disk size) and `diskray_core::VirtualDisk` (`map` answers from metadata alone, so ranges
//! both disks declare Unallocated or Zero are equal without reading them).

use crate::change_map::ChangeMap;
use crate::limits::{DIFF_BATCH_BYTES, MAX_DIFF_BLOCK, MIN_DIFF_BLOCK};
use crate::shape::{Format, Layout, Shape};
use diskray_core::{is_zero, BlockState, ByteRange, Error, RangeSet, Result, VirtualDisk, Warning};
use rayon::prelude::*;

/// The blocks of `block_size` bytes where `new` differs from `old`, over `new`'s capacity.
///
/// `old` is read as if zero-extended: past its end, a block of `new` counts as changed
/// when it holds a non-zero byte. The last block may be short. Blocks both disks' maps
/// declare Unallocated or Zero are not read. Batches of [`DIFF_BATCH_BYTES`] are compared
/// in parallel, so memory stays bounded by the worker count times two blocks.
///
/// `block_size` must be a power of two in `[MIN_DIFF_BLOCK, MAX_DIFF_BLOCK]`, else
/// [`Error::InvalidArgument`].
pub fn diff(old: &dyn VirtualDisk, new: &dyn VirtualDisk, block_size: u64) -> Result<ChangeMap> {
    check_block_size(block_size)?;
    let capacity = new.capacity();
    let old_capacity = old.capacity();
    let batch = DIFF_BATCH_BYTES.max(block_size);
    let mut changed = RangeSet::new();
    let mut pos = 0u64;
    while pos < capacity {
        let end = pos.saturating_add(batch).min(capacity);
        let window = ByteRange::from_bounds(pos, end);
        let new_zero = zero_runs(new, window, capacity)?;
        let old_zero = zero_runs(old, window, old_capacity)?;
        let blocks = (end - pos).div_ceil(block_size);
        let flags: Vec<bool> = (0..blocks)
            .into_par_iter()
            .map_init(
                || (Vec::new(), Vec::new()),
                |(a, b), i| {
                    let start = pos + i * block_size;
                    let block = ByteRange::from_bounds(start, (start + block_size).min(end));
                    let cmp = Compare {
                        old,
                        new,
                        old_capacity,
                        old_zero: &old_zero,
                        new_zero: &new_zero,
                    };
                    cmp.differs(block, a, b)
                },
            )
            .collect::<Result<Vec<bool>>>()?;
        for (i, &differs) in flags.iter().enumerate() {
            if differs {
                let start = pos + i as u64 * block_size;
                changed.insert(ByteRange::from_bounds(start, (start + block_size).min(end)));
            }
        }
        pos = end;
    }
    let mut warnings = Vec::new();
    if old_capacity != capacity {
        warnings.push(Warning::new(format!(
            "capacities differ: old {old_capacity}, new {capacity}; bytes past the old disk's end compared with zeros"
        )));
    }
    Ok(ChangeMap {
        capacity,
        changed,
        uncovered: RangeSet::new(),
        source: Shape {
            format: Format::Diff,
            layout: Layout::Computed,
        },
        warnings,
    })
}

/// Refuses a block size that is not a power of two in `[MIN_DIFF_BLOCK, MAX_DIFF_BLOCK]`.
pub fn check_block_size(block_size: u64) -> Result<()> {
    if !block_size.is_power_of_two() || !(MIN_DIFF_BLOCK..=MAX_DIFF_BLOCK).contains(&block_size) {
        return Err(Error::invalid(
            "block size",
            block_size,
            format!("must be a power of two from {MIN_DIFF_BLOCK} to {MAX_DIFF_BLOCK} bytes"),
        ));
    }
    Ok(())
}

/// The parts of `window` that `disk` reads as zeros by its map (Unallocated, Zero, or past
/// its capacity), sorted and merged.
fn zero_runs(disk: &dyn VirtualDisk, window: ByteRange, capacity: u64) -> Result<Vec<ByteRange>> {
    let mut set = RangeSet::new();
    if let Some(inside) = window.intersect(&ByteRange::new(0, capacity)) {
        for run in disk.map(inside)? {
            if matches!(run.state, BlockState::Unallocated | BlockState::Zero) {
                if let Some(r) = run.range().intersect(&inside) {
                    set.insert(r);
                }
            }
        }
    }
    if window.end() > capacity {
        set.insert(ByteRange::from_bounds(
            capacity.max(window.start),
            window.end(),
        ));
    }
    Ok(set.ranges().collect())
}

/// True when `runs` (sorted, merged) hold every byte of `r`.
fn covered(runs: &[ByteRange], r: ByteRange) -> bool {
    let i = runs.partition_point(|x| x.start <= r.start);
    i > 0 && runs[i - 1].end() >= r.end()
}

/// What one block comparison needs.
struct Compare<'a> {
    old: &'a dyn VirtualDisk,
    new: &'a dyn VirtualDisk,
    old_capacity: u64,
    old_zero: &'a [ByteRange],
    new_zero: &'a [ByteRange],
}

impl Compare<'_> {
    /// True when `block` differs; `a` and `b` are reusable buffers.
    fn differs(&self, block: ByteRange, a: &mut Vec<u8>, b: &mut Vec<u8>) -> Result<bool> {
        let old_zero = covered(self.old_zero, block);
        let new_zero = covered(self.new_zero, block);
        // The part of the block that `old` holds (the rest reads as zeros).
        let old_part = block
            .intersect(&ByteRange::new(0, self.old_capacity))
            .map_or(0, |r| r.length) as usize;
        let len = block.length as usize;
        match (old_zero, new_zero) {
            (true, true) => Ok(false),
            (true, false) => {
                read(self.new, block.start, len, b)?;
                Ok(!is_zero(b))
            }
            (false, true) => {
                read(self.old, block.start, old_part, a)?;
                Ok(!is_zero(a))
            }
            (false, false) => {
                read(self.old, block.start, old_part, a)?;
                read(self.new, block.start, len, b)?;
                Ok(a[..] != b[..old_part] || !is_zero(&b[old_part..]))
            }
        }
    }
}

fn read(disk: &dyn VirtualDisk, offset: u64, len: usize, buf: &mut Vec<u8>) -> Result<()> {
    buf.resize(len, 0);
    disk.read_at(buf, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covered_needs_one_run_holding_the_whole_range() {
        let runs = [ByteRange::new(0, 10), ByteRange::new(20, 10)];
        assert!(covered(&runs, ByteRange::new(0, 10)));
        assert!(covered(&runs, ByteRange::new(22, 8)));
        assert!(!covered(&runs, ByteRange::new(5, 10)));
        assert!(!covered(&runs, ByteRange::new(10, 5)));
        assert!(!covered(&runs, ByteRange::new(25, 10)));
        assert!(!covered(&[], ByteRange::new(0, 1)));
    }
}
