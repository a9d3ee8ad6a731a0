//! `diskray blocks`' record: the disk-absolute byte ranges in one guest state, on the whole
//! disk or within one volume.

use crate::classes::{guest_state, GuestState};
use crate::machine::Machine;
use crate::select::choose_volume;
use crate::tree::analyze_machine;
use diskray_core::{DiskRange, Result};
use serde::Serialize;

/// The ranges of a disk in one guest state.
#[derive(Debug, Clone, Serialize)]
pub struct Blocks {
    /// The state listed.
    pub state: GuestState,
    /// The partition the list is restricted to (for a logical volume, the partition it
    /// starts in, and `lv` names it).
    pub partition: Option<u32>,
    /// The logical volume (`VG/LV`) the list is restricted to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lv: Option<String>,
    /// Sorted, disjoint, disk-absolute ranges (naming their disk when there are several).
    pub ranges: Vec<DiskRange>,
    /// Their total length.
    pub bytes: u64,
    /// Table damage and filesystem problems.
    pub warnings: Vec<diskray_core::Warning>,
}

/// The disk-absolute bytes of the disks of a machine in guest state `state`, within the
/// volume `volume` names (a partition number, a name, a label or `VG/LV`) when given.
pub fn blocks_machine(m: &Machine, state: GuestState, volume: Option<&str>) -> Result<Blocks> {
    let layout = analyze_machine(m)?;
    let mut set = guest_state(m, &layout, state)?;
    let (mut partition, mut lv) = (None, None);
    if let Some(name) = volume {
        let v = choose_volume(&layout, &m.disks()[0].label, Some(name))?;
        set = set.intersection(&v.disk_span());
        (partition, lv) = (Some(v.index), v.lv.clone());
    }
    Ok(Blocks {
        state,
        partition,
        lv,
        ranges: m.locate_set(&set),
        bytes: set.bytes(),
        warnings: layout.warnings,
    })
}

/// For people: one `start length` row per range.
impl std::fmt::Display for Blocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for r in &self.ranges {
            match r.disk {
                Some(d) => writeln!(f, "{d:>4} {:>16} {:>16}", r.start, r.length)?,
                None => writeln!(f, "{:>16} {:>16}", r.start, r.length)?,
            }
        }
        Ok(())
    }
}
