//! `diskray map`'s record: the allocation map of an opened image, from container metadata
//! (and, when asked, from finding all-zero blocks in the data).

use crate::Image;
use diskray_core::human::size;
use diskray_core::{detect_zeroes, ByteRange, MapRange, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// Granularity of zero detection: the usual filesystem block.
pub const ZERO_SCAN_BLOCK: u64 = 4096;

/// The allocation map of a disk.
#[derive(Debug, Clone, Serialize)]
pub struct AllocationMap {
    /// Guest-visible size in bytes.
    pub capacity: u64,
    /// Sorted runs without gaps, covering the capacity.
    pub ranges: Vec<MapRange>,
    /// Things the user should know (from opening the image).
    pub warnings: Vec<diskray_core::Warning>,
}

/// The map of `image`; with `zeroes`, allocated data is read and all-zero
/// [`ZERO_SCAN_BLOCK`]s are reported as `zero`.
pub fn allocation_map(image: &Image, zeroes: bool) -> Result<AllocationMap> {
    let disk = image.disk();
    let mut ranges = disk.map(ByteRange::new(0, disk.capacity()))?;
    if zeroes {
        ranges = detect_zeroes(disk, &ranges, ZERO_SCAN_BLOCK)?;
    }
    Ok(AllocationMap {
        capacity: disk.capacity(),
        ranges,
        warnings: image.warnings().to_vec(),
    })
}

/// For people: a row per run, then the bytes in each state.
impl fmt::Display for AllocationMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (start, length, state) = ("start", "length", "state");
        writeln!(f, "{start:>16} {length:>16} {:>12}  {state:<12} depth", "")?;
        let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
        for r in &self.ranges {
            let state = r.state.name();
            *totals.entry(state).or_default() += r.length;
            let (start, length, depth) = (r.start, r.length, r.depth);
            writeln!(
                f,
                "{start:>16} {length:>16} {:>12}  {state:<12} {depth}",
                size(length)
            )?;
        }
        writeln!(f)?;
        for (state, bytes) in &totals {
            writeln!(f, "{state:<12} {:>12}  ({bytes} bytes)", size(*bytes))?;
        }
        Ok(())
    }
}
