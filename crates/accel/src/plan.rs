//! The plan of a backup: which bytes are kept (taken from the disk) and how the chunks
//! to read are chosen (full, change map, rescan).
//!
//! Kept = allocated ∩ (used ∪ metadata ∪ unknown), where unknown is everything outside a
//! recognised filesystem (`docs/design.md` invariant 1); `--keep-deleted` adds the free
//! space (and the extents of LVM2 PVs no LV owns), `--keep-swap` the excluded space. The sets come from the one classification of
//! `diskray_layout`, which `report` and `blocks` share. The change-id rules are those of
//! `docs/formats.md` §4.2 and §4.6: a new epoch, a decreasing sequence or a changed
//! capacity make the change map untrustworthy, so the backup rescans.

use diskray_changes::ChangeId;
use diskray_core::{RangeSet, Result, VirtualDisk, Warning};
use diskray_layout::{Classification, KeepOptions, Layout};
use diskray_store::{FixedIndex, Manifest};

/// What the backup takes from the disk, and what it skips by class.
#[derive(Debug, Clone, Default)]
pub struct KeepPlan {
    /// Bytes taken from the disk; everything else is restored as zeros.
    pub kept: RangeSet,
    /// Never written (or unreadable) in the container.
    pub unallocated: u64,
    /// Declared zero by the container.
    pub zero: u64,
    /// Free in a guest filesystem and not kept.
    pub free: u64,
    /// Extents of LVM2 PVs that no LV owns, not kept.
    pub vg_free: u64,
    /// Swap / pagefile / hiberfil and not kept.
    pub excluded: u64,
    /// Things the user should know.
    pub warnings: Vec<Warning>,
}

/// Computes the kept set of `disk` from its container map and guest layout.
pub fn keep_set(
    disk: &dyn VirtualDisk,
    layout: &Layout,
    keep_deleted: bool,
    keep_swap: bool,
) -> Result<KeepPlan> {
    let c = Classification::of(disk, layout)?;
    let mut plan = KeepPlan {
        kept: c.kept(KeepOptions {
            keep_deleted,
            keep_swap,
        }),
        unallocated: c.container.unallocated.bytes() + c.container.unreadable.bytes(),
        zero: c.container.zero.bytes(),
        free: if keep_deleted { 0 } else { c.free().bytes() },
        vg_free: if keep_deleted { 0 } else { c.vg_free().bytes() },
        excluded: if keep_swap { 0 } else { c.excluded().bytes() },
        warnings: Vec::new(),
    };
    plan.warnings.extend(c.container.warning());
    for v in &layout.volumes {
        if let Some(e) = &v.error {
            plan.warnings.push(Warning::new(format!(
                "partition {}: {e}; the whole partition is kept",
                v.index
            )));
        }
    }
    plan.warnings.extend(layout.warnings.iter().cloned());
    Ok(plan)
}

/// The previous image of the same name, as the planner needs it.
#[derive(Debug, Clone)]
pub struct Parent {
    /// Its manifest.
    pub manifest: Manifest,
    /// Its index.
    pub index: FixedIndex,
    /// The bytes it took from its disk.
    pub kept: RangeSet,
}

/// How chunks are chosen.
#[derive(Debug, Clone)]
pub enum Mode {
    /// No usable previous image: read everything kept.
    Full,
    /// Read the chunks the change map marks (plus newly used bytes); link the rest.
    Cbt {
        /// Changed bytes since the parent.
        changed: RangeSet,
    },
    /// Read everything kept, hash, link what did not change. With a change map, count the
    /// chunks it missed.
    Rescan {
        /// The change map, when one was given.
        changed: Option<RangeSet>,
    },
}

/// The inputs of [`decide`].
#[derive(Debug, Clone, Default)]
pub struct ModeRequest<'a> {
    /// Capacity of the disk now.
    pub capacity: u64,
    /// Chunk size of the new image.
    pub chunk_size: u64,
    /// The change map, if given.
    pub changed: Option<RangeSet>,
    /// The change id the disk has now, if given.
    pub change_id: Option<&'a str>,
    /// `--rescan`.
    pub rescan: bool,
}

/// Chooses the mode, explaining every fallback in `warnings`.
pub fn decide(parent: Option<&Parent>, req: ModeRequest<'_>, warnings: &mut Vec<Warning>) -> Mode {
    let Some(p) = parent else {
        if req.changed.is_some() {
            warnings.push(Warning::new(
                "no previous image of this name: full backup, the change map is not needed",
            ));
        }
        return Mode::Full;
    };
    if p.index.chunk_size != req.chunk_size {
        warnings.push(Warning::new(format!(
            "the previous image uses {}-byte chunks, this backup {}: no chunk can be linked by position, so every kept byte is read",
            p.index.chunk_size, req.chunk_size
        )));
        return Mode::Rescan { changed: None };
    }
    if req.rescan {
        return Mode::Rescan {
            changed: req.changed,
        };
    }
    let Some(changed) = req.changed else {
        return Mode::Rescan { changed: None };
    };
    if p.index.capacity != req.capacity {
        warnings.push(Warning::new(format!(
            "capacity changed from {} to {} bytes since the previous image: change maps across a resize are unreliable (VMware KB 2090639), so every kept byte is read",
            p.index.capacity, req.capacity
        )));
        return Mode::Rescan {
            changed: Some(changed),
        };
    }
    if let (Some(new), Some(old)) = (req.change_id, p.manifest.change_id.as_deref()) {
        if let Some(why) = discontinuity(new, old) {
            warnings.push(Warning::new(format!(
                "change id {new:?} does not continue the previous image's {old:?}: {why}; every kept byte is read"
            )));
            return Mode::Rescan {
                changed: Some(changed),
            };
        }
    }
    Mode::Cbt { changed }
}

/// Why change id `new` does not continue `old`, or `None` when it does (`docs/formats.md`
/// §4.2, §4.6). An id that does not parse does not continue either.
fn discontinuity(new: &str, old: &str) -> Option<String> {
    match (ChangeId::parse(new), ChangeId::parse(old)) {
        (Ok(new), Ok(old)) => new.continues(&old).err().map(|d| d.to_string()),
        (Err(e), _) | (_, Err(e)) => Some(e.to_string()),
    }
}
