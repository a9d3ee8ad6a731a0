//! The [`VirtualDisk`] trait: what every disk image format offers the layers above it
//! (partition tables, guest filesystems, the backup pipeline): random-access reads of the
//! guest-visible bytes and an allocation map that is built from metadata alone.

use crate::{ByteRange, Result};
use serde::Serialize;

/// The state of a range of a virtual disk, as its container metadata tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockState {
    /// Allocated and holding data (which may still happen to be zeros).
    Data,
    /// Reads as zeros by declaration: a zeroed grain, a ZERO extent, or data found to be
    /// all zeros when zero detection was asked for.
    Zero,
    /// Never written: reads as zeros (or from a parent layer that is absent).
    Unallocated,
    /// Cannot be read from the files at hand (NOACCESS or device extents).
    Unreadable,
}

impl BlockState {
    /// The state's name, as JSON and the tables spell it.
    pub fn name(self) -> &'static str {
        match self {
            BlockState::Data => "data",
            BlockState::Zero => "zero",
            BlockState::Unallocated => "unallocated",
            BlockState::Unreadable => "unreadable",
        }
    }
}

/// One run of the allocation map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MapRange {
    /// First byte of the run.
    pub start: u64,
    /// Length of the run in bytes.
    pub length: u64,
    /// What the container says about these bytes.
    pub state: BlockState,
    /// Which layer of a snapshot chain supplies them (0 = the top).
    pub depth: u32,
}

impl MapRange {
    /// The bytes this run covers.
    pub fn range(&self) -> ByteRange {
        ByteRange::new(self.start, self.length)
    }
}

/// A disk as the guest sees it. Implementations are shareable between threads: every
/// read is positioned, so rayon workers can read different parts at once.
pub trait VirtualDisk: Send + Sync {
    /// The guest-visible size in bytes.
    fn capacity(&self) -> u64;

    /// Fills `buf` with the guest bytes at `offset`. Reads past the capacity, of
    /// unreadable ranges, or of corrupt metadata are errors, never zeros.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()>;

    /// The allocation map of `range` from container metadata only (no data is read),
    /// sorted, without gaps, adjacent runs of equal state and depth merged.
    fn map(&self, range: ByteRange) -> Result<Vec<MapRange>>;

    /// The logical sector size in bytes when the container declares it or the user named
    /// it (`--sector-size`); `None` (the default) lets the partition reader probe it.
    fn logical_sector_size(&self) -> Option<u64> {
        None
    }
}

/// Appends a run to a map, merging it into the previous run when they touch and agree.
pub fn push_run(map: &mut Vec<MapRange>, run: MapRange) {
    if run.length == 0 {
        return;
    }
    if let Some(last) = map.last_mut() {
        if last.state == run.state
            && last.depth == run.depth
            && last.start + last.length == run.start
        {
            last.length += run.length;
            return;
        }
    }
    map.push(run);
}
