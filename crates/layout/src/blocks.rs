//! `diskray blocks`' record: the disk-absolute byte ranges in one guest state, on the whole
//! disk or within one volume.

use crate::classes::{guest_state, GuestState};
use crate::select::choose_volume;
use crate::tree::analyze;
use diskray_core::{ByteRange, Result, VirtualDisk};
use serde::Serialize;
use std::path::Path;

/// The ranges of a disk in one guest state.
#[derive(Debug, Clone, Serialize)]
pub struct Blocks {
    /// The state listed.
    pub state: GuestState,
    /// The partition the list is restricted to.
    pub partition: Option<u32>,
    /// Sorted, disjoint, disk-absolute ranges.
    pub ranges: Vec<ByteRange>,
    /// Their total length.
    pub bytes: u64,
    /// Table damage and filesystem problems.
    pub warnings: Vec<diskray_core::Warning>,
}

/// The bytes of `disk` (named `label` in messages) in `state`, within partition
/// `partition` when given.
pub fn blocks(
    disk: &dyn VirtualDisk,
    label: &Path,
    state: GuestState,
    partition: Option<u32>,
) -> Result<Blocks> {
    let layout = analyze(disk, label)?;
    let mut set = guest_state(disk, &layout, state)?;
    if let Some(n) = partition {
        let v = choose_volume(&layout, label, Some(&n.to_string()))?;
        set = set.intersection(&v.disk_span());
    }
    Ok(Blocks {
        state,
        partition,
        ranges: set.ranges().collect(),
        bytes: set.bytes(),
        warnings: layout.warnings,
    })
}

/// For people: one `start length` row per range.
impl std::fmt::Display for Blocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for r in &self.ranges {
            writeln!(f, "{:>16} {:>16}", r.start, r.length)?;
        }
        Ok(())
    }
}
