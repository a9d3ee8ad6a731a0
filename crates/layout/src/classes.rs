//! The one classification of every byte of a disk. `report`'s classes, `blocks`' guest
//! states and the set a backup keeps are all derived here, from the container map and the
//! guest filesystems' allocation maps, so they cannot disagree.
//!
//! Classes (disk-absolute, summing to the capacity), in order of precedence:
//! `unallocated` (never written, or unreadable) and `zero` come from the container, then
//! inside a recognised filesystem `metadata`, `used`, `excluded`, `free_residue` (free but
//! not zero: deleted data) and `free_zero`; everything else is `unknown` (outside any
//! recognised filesystem, which every consumer treats as used).

use crate::container::ContainerMap;
use crate::tree::Layout;
use diskray_core::{zero_runs, ByteRange, RangeSet, Result, VirtualDisk};
use rayon::prelude::*;

/// Bytes read per task when looking for residue in free space.
const RESIDUE_CHUNK: u64 = 4 << 20;

/// Every byte of a disk in one class.
#[derive(Debug, Clone, Default)]
pub struct Classes {
    /// Never written, or unreadable, in the container.
    pub unallocated: RangeSet,
    /// Declared zero by the container.
    pub zero: RangeSet,
    /// Filesystem data.
    pub used: RangeSet,
    /// Filesystem metadata.
    pub metadata: RangeSet,
    /// Free and zero.
    pub free_zero: RangeSet,
    /// Free but not zero: deleted data.
    pub free_residue: RangeSet,
    /// Swap and the like.
    pub excluded: RangeSet,
    /// Outside any recognised filesystem.
    pub unknown: RangeSet,
}

impl Classes {
    /// The classes with their names, in report order.
    pub fn named(&self) -> [(&'static str, &RangeSet); 8] {
        [
            ("unallocated", &self.unallocated),
            ("zero", &self.zero),
            ("used", &self.used),
            ("metadata", &self.metadata),
            ("free_zero", &self.free_zero),
            ("free_residue", &self.free_residue),
            ("excluded", &self.excluded),
            ("unknown", &self.unknown),
        ]
    }

    /// Bytes a backup reads by default: used, metadata and unknown.
    pub fn backup_read_bytes(&self) -> u64 {
        self.used.bytes() + self.metadata.bytes() + self.unknown.bytes()
    }
}

/// Where a filesystem's allocation units lie on the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitGrid {
    /// The bytes the filesystem spans (disk-absolute).
    pub span: ByteRange,
    /// Its allocation unit in bytes.
    pub unit: u64,
    /// The disk offset where its grid of units starts (FAT's data area).
    pub origin: u64,
}

/// Guest-level sets, disk-absolute, ignoring the container: what each filesystem says.
#[derive(Debug, Clone, Default)]
pub struct GuestSets {
    /// Filesystem data and metadata.
    pub used: RangeSet,
    /// Filesystem metadata.
    pub metadata: RangeSet,
    /// Excluded space.
    pub excluded: RangeSet,
    /// Free space of recognised filesystems.
    pub free: RangeSet,
    /// Bytes inside mapped filesystems (used ∪ free ∪ excluded).
    pub mapped: RangeSet,
    /// Each mapped filesystem's unit grid.
    pub units: Vec<UnitGrid>,
}

/// The guest-level sets of `layout`.
pub fn guest_sets(layout: &Layout) -> GuestSets {
    let mut g = GuestSets::default();
    for v in &layout.volumes {
        let (Some(a), Some(size), Some(bs)) = (&v.allocation, v.fs_size, v.block_size) else {
            continue;
        };
        let place = |s: &RangeSet| v.placement.set_to_disk(s);
        let inside = RangeSet::from_iter([ByteRange::new(0, size.min(v.length))]);
        // Bytes given to volumes inside this one (a PV's LVs) are theirs to classify.
        let span = place(&inside.difference(&v.children));
        // Metadata is always used, even where a damaged bitmap says otherwise.
        let metadata = place(&a.metadata).intersection(&span);
        let used = place(&a.used).intersection(&span).union(&metadata);
        let excluded = place(&a.excluded).intersection(&span).difference(&used);
        g.free = g.free.union(&span.difference(&used).difference(&excluded));
        g.used = g.used.union(&used);
        g.metadata = g.metadata.union(&metadata);
        g.excluded = g.excluded.union(&excluded);
        g.mapped = g.mapped.union(&span);
        // Each grid covers this volume's own bytes only: a PV's LVs are read for residue
        // at their blocks, not also at the VG's extent size (docs/formats.md §9).
        for grid in unit_grids(v, size.min(v.length), bs) {
            let own = span.intersection(&RangeSet::from_iter([grid.span]));
            g.units
                .extend(own.ranges().map(|span| UnitGrid { span, ..grid }));
        }
    }
    g
}

/// The unit grid of each piece of `v`'s first `size` bytes on the disk: a piece's grid
/// starts at its first unit boundary (units counted from the volume's `unit_origin`).
fn unit_grids(v: &crate::tree::Volume, size: u64, unit: u64) -> Vec<UnitGrid> {
    let mut grids = Vec::new();
    for p in v.placement.pieces() {
        let Some(inside) = ByteRange::new(p.volume, p.length).intersect(&ByteRange::new(0, size))
        else {
            continue;
        };
        let o = v.unit_origin;
        let first = if inside.start <= o {
            o
        } else {
            o + (inside.start - o).div_ceil(unit) * unit
        };
        if first >= inside.end() {
            continue;
        }
        let to_disk = |vol: u64| p.disk + (vol - p.volume);
        grids.push(UnitGrid {
            span: ByteRange::from_bounds(to_disk(inside.start), to_disk(inside.end())),
            unit,
            origin: to_disk(first),
        });
    }
    grids
}

impl GuestSets {
    /// Used by the guest, or outside any recognised filesystem: what `blocks --state
    /// used` lists (guest-level: the container is not consulted).
    pub fn used_or_unknown(&self, capacity: u64) -> RangeSet {
        let all = RangeSet::from_iter([ByteRange::new(0, capacity)]);
        self.used.union(&all.difference(&self.mapped))
    }
}

/// Splits `free` into (zero, residue) by reading it, at each filesystem's allocation unit;
/// `skip` (bytes without data in the container) is not read and counts as zero.
pub fn residue(disk: &dyn VirtualDisk, sets: &GuestSets, skip: &RangeSet) -> Result<RangeSet> {
    let to_read = sets.free.difference(skip);
    let mut tasks = Vec::new();
    for grid in &sets.units {
        let UnitGrid { span, unit, origin } = *grid;
        let inside = to_read.intersection(&RangeSet::from_iter([span]));
        for r in inside.ranges() {
            // Align to the filesystem's unit grid (FAT clusters start after the root
            // directory, not at the volume start).
            let start = r.start.max(origin);
            if start >= r.end() {
                continue;
            }
            let rel = ByteRange::from_bounds(start - origin, r.end() - origin)
                .align_out(unit, span.end() - origin);
            let mut pos = rel.start;
            while pos < rel.end() {
                let len = (rel.end() - pos).min(RESIDUE_CHUNK.max(unit));
                tasks.push((origin + pos, len, unit));
                pos += len;
            }
        }
    }
    let parts: Vec<Vec<ByteRange>> = tasks
        .par_iter()
        .map_init(
            Vec::new,
            |buf, &(at, len, unit)| -> Result<Vec<ByteRange>> {
                buf.resize(len as usize, 0);
                disk.read_at(buf, at)?;
                Ok(zero_runs(buf, unit as usize)
                    .filter(|&(_, _, zero)| !zero)
                    .map(|(o, n, _)| ByteRange::new(at + o as u64, n as u64))
                    .collect())
            },
        )
        .collect::<Result<_>>()?;
    Ok(parts
        .into_iter()
        .flatten()
        .collect::<RangeSet>()
        // A unit holding deleted data is residue as a whole, even where part of it is a hole.
        .intersection(&sets.free))
}

/// A guest-level state `diskray blocks` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GuestState {
    /// Filesystem data and metadata, plus bytes outside any recognised filesystem.
    Used,
    /// Free space of recognised filesystems.
    Free,
    /// Free space that is not zero (deleted data), at the filesystem's unit.
    Residue,
    /// Excluded space (swap).
    Excluded,
}

impl GuestState {
    /// Every state, by the name the command line and JSON give it.
    pub const NAMES: [&'static str; 4] = ["used", "free", "residue", "excluded"];
    const ALL: [GuestState; 4] = [Self::Used, Self::Free, Self::Residue, Self::Excluded];
}

/// A name that is not one of [`GuestState::NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not one of {names:?}", names = GuestState::NAMES)]
pub struct UnknownState(pub String);

impl std::str::FromStr for GuestState {
    type Err = UnknownState;

    fn from_str(s: &str) -> std::result::Result<Self, UnknownState> {
        let i = Self::NAMES.iter().position(|n| *n == s);
        i.map(|i| Self::ALL[i])
            .ok_or_else(|| UnknownState(s.to_string()))
    }
}

/// The disk-absolute bytes of `disk` in `state`, as the guest filesystems of `layout` see
/// them (the container is consulted only to skip reading bytes without data for residue).
pub fn guest_state(disk: &dyn VirtualDisk, layout: &Layout, state: GuestState) -> Result<RangeSet> {
    let g = guest_sets(layout);
    Ok(match state {
        GuestState::Used => g.used_or_unknown(disk.capacity()),
        GuestState::Free => g.free,
        GuestState::Excluded => g.excluded,
        GuestState::Residue => residue(disk, &g, &ContainerMap::of(disk)?.no_data())?,
    })
}

/// What a backup keeps beyond the default (used, metadata, unknown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeepOptions {
    /// Keep free space (deleted data) instead of restoring it as zeros.
    pub keep_deleted: bool,
    /// Keep swap, pagefile and hiberfil.
    pub keep_swap: bool,
}

/// The container map and the guest sets of one disk: everything needed to classify its
/// bytes.
#[derive(Debug, Clone)]
pub struct Classification {
    /// The container's view.
    pub container: ContainerMap,
    /// The guest filesystems' view.
    pub guest: GuestSets,
}

impl Classification {
    /// Classifies `disk`, whose tree is `layout` (reads only the container map).
    pub fn of(disk: &dyn VirtualDisk, layout: &Layout) -> Result<Classification> {
        Ok(Classification {
            container: ContainerMap::of(disk)?,
            guest: guest_sets(layout),
        })
    }

    /// The bytes a backup takes from the disk: allocated ∩ (used ∪ metadata ∪ unknown,
    /// plus free space and excluded space when asked).
    pub fn kept(&self, keep: KeepOptions) -> RangeSet {
        let g = &self.guest;
        let mut kept = g.used_or_unknown(self.container.capacity);
        if keep.keep_deleted {
            kept = kept.union(&g.free);
        }
        if keep.keep_swap {
            kept = kept.union(&g.excluded);
        }
        kept.difference(&self.container.no_data())
    }

    /// Free space with data in the container (what a backup skips as free).
    pub fn free(&self) -> RangeSet {
        self.guest.free.difference(&self.container.no_data())
    }

    /// Excluded space with data in the container.
    pub fn excluded(&self) -> RangeSet {
        self.guest.excluded.difference(&self.container.no_data())
    }

    /// Every byte in one class; reads free space to tell residue from zeros.
    pub fn classes(&self, disk: &dyn VirtualDisk) -> Result<Classes> {
        let c = &self.container;
        let g = &self.guest;
        let no_data = c.no_data();
        let res = residue(disk, g, &no_data)?;
        Ok(Classes {
            unallocated: c.unallocated.union(&c.unreadable),
            zero: c.zero.clone(),
            metadata: g.metadata.difference(&no_data),
            used: g.used.difference(&g.metadata).difference(&no_data),
            excluded: g.excluded.difference(&no_data),
            free_residue: res.difference(&no_data),
            free_zero: g.free.difference(&res).difference(&no_data),
            unknown: c.all().difference(&g.mapped).difference(&no_data),
        })
    }
}

/// Every byte of `disk` in one class (see the module documentation).
pub fn classes(disk: &dyn VirtualDisk, layout: &Layout) -> Result<Classes> {
    Classification::of(disk, layout)?.classes(disk)
}
