//! A whole disk seen through its partition table and filesystems: every volume with what
//! it holds and its allocation, and every byte of the disk in exactly one class.
//!
//! Classes (disk-absolute, summing to the capacity), in order of precedence:
//! `unallocated` and `zero` come from the container (never written, or declared zero),
//! then inside a recognised filesystem `metadata`, `used`, `excluded`, `free_residue`
//! (free but not zero: deleted data) and `free_zero`; everything else is `unknown` (outside
//! any recognised filesystem, which every consumer treats as used).

use crate::{open, probe, Allocation, Content, Filesystem, Slice};
use diskray_core::{is_zero, BlockState, ByteRange, RangeSet, Result, VirtualDisk};
use diskray_volume::{Partition, ReadOptions, Table};
use rayon::prelude::*;
use serde::Serialize;
use std::path::Path;

/// Bytes read per task when looking for residue in free space.
const RESIDUE_CHUNK: u64 = 4 << 20;

/// One volume: a partition (or the whole disk when there is no table).
#[derive(Debug, Clone, Serialize)]
pub struct Volume {
    /// The partition number (0 for a whole-disk volume).
    pub index: u32,
    /// First byte on the disk.
    pub start: u64,
    /// Length in bytes.
    pub length: u64,
    /// GPT name or MBR type, for people.
    pub name: String,
    /// What it holds.
    pub content: Content,
    /// Filesystem allocation unit (when mapped).
    pub block_size: Option<u64>,
    /// Volume offset where the allocation-unit grid starts (when mapped).
    #[serde(skip)]
    pub unit_origin: u64,
    /// Bytes the filesystem spans (when mapped).
    pub fs_size: Option<u64>,
    /// Filesystem label.
    pub label: Option<String>,
    /// Allocation, volume-relative (when mapped).
    #[serde(skip)]
    pub allocation: Option<Allocation>,
    /// Why the filesystem could not be mapped, when it could not.
    pub error: Option<String>,
}

/// The disk's table and volumes.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The partition table.
    pub table: Table,
    /// The volumes (partitions that are not extended containers, or the whole disk).
    pub volumes: Vec<Volume>,
    /// Warnings (table damage, filesystem problems).
    pub warnings: Vec<String>,
}

/// Reads the partition table of `disk`, probing an MBR's sector size (unless the disk
/// names it) with what its partitions hold as evidence: the partitions line up with
/// filesystems under the right size.
pub fn read_table(disk: &dyn VirtualDisk, label: &Path) -> Result<Table> {
    let recognise = |start: u64, length: u64| {
        probe(&Slice::new(disk, label, start, length)).is_ok_and(|c| c != Content::Unknown)
    };
    diskray_volume::read_with(
        disk,
        label,
        &ReadOptions {
            sector_size: None,
            recognise: Some(&recognise),
        },
    )
}

/// Reads the table, probes every partition, and maps every filesystem diskray knows.
pub fn analyze(disk: &dyn VirtualDisk, label: &Path) -> Result<Layout> {
    let table = read_table(disk, label)?;
    let mut warnings = table.warnings.clone();
    let cap = disk.capacity();
    let mut spans: Vec<(u32, u64, u64, String)> = table
        .partitions
        .iter()
        .filter(|p| !p.container)
        .map(|p: &Partition| {
            (
                p.index,
                p.start,
                // A partition running past the end of the disk (the table says so in a
                // warning) is read as far as the disk goes.
                p.length.min(cap.saturating_sub(p.start)),
                if p.name.is_empty() {
                    p.kind.display()
                } else {
                    p.name.clone()
                },
            )
        })
        .collect();
    if table.partitions.is_empty() {
        spans.push((0, 0, disk.capacity(), "whole disk".into()));
    }
    let mut volumes = Vec::new();
    for (index, start, length, name) in spans {
        let slice = Slice::new(disk, label, start, length);
        let content = probe(&slice)?;
        if index == 0 && content == Content::Unknown {
            continue;
        }
        let mut v = Volume {
            index,
            start,
            length,
            name,
            content,
            block_size: None,
            unit_origin: 0,
            fs_size: None,
            label: None,
            allocation: None,
            error: None,
        };
        match open(slice).and_then(|fs| {
            fs.map(|fs| Ok::<_, diskray_core::Error>((summary(fs.as_ref()), fs.allocation()?)))
                .transpose()
        }) {
            Ok(Some(((bs, origin, size, lab), alloc))) => {
                v.unit_origin = origin;
                warnings.extend(
                    alloc
                        .warnings
                        .iter()
                        .map(|w| format!("partition {index} ({}): {w}", content.name())),
                );
                v.block_size = Some(bs);
                v.fs_size = Some(size);
                v.label = lab;
                v.allocation = Some(alloc);
            }
            Ok(None) => {}
            Err(e) => {
                warnings.push(format!(
                    "partition {index}: {} could not be mapped ({e}); treated as unknown",
                    content.name()
                ));
                v.error = Some(e.to_string());
            }
        }
        volumes.push(v);
    }
    Ok(Layout {
        table,
        volumes,
        warnings,
    })
}

fn summary(fs: &dyn Filesystem) -> (u64, u64, u64, Option<String>) {
    (fs.block_size(), fs.unit_origin(), fs.size(), fs.label())
}

/// Every byte of a disk in one class.
#[derive(Debug, Clone, Default)]
pub struct Classes {
    /// Never written in the container.
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
    /// For each mapped volume: (disk range of the filesystem, its allocation unit, the
    /// disk offset where its unit grid starts).
    pub units: Vec<(ByteRange, u64, u64)>,
}

/// The guest-level sets of `layout`.
pub fn guest_sets(layout: &Layout) -> GuestSets {
    let mut g = GuestSets::default();
    for v in &layout.volumes {
        let (Some(a), Some(size), Some(bs)) = (&v.allocation, v.fs_size, v.block_size) else {
            continue;
        };
        let shift = |s: &RangeSet| -> RangeSet {
            s.ranges()
                .map(|r| ByteRange::new(r.start + v.start, r.length))
                .collect()
        };
        let span = RangeSet::from_iter([ByteRange::new(v.start, size.min(v.length))]);
        // Metadata is always used, even where a damaged bitmap says otherwise.
        let metadata = shift(&a.metadata).intersection(&span);
        let used = shift(&a.used).intersection(&span).union(&metadata);
        let excluded = shift(&a.excluded).intersection(&span).difference(&used);
        g.free = g.free.union(&span.difference(&used).difference(&excluded));
        g.used = g.used.union(&used);
        g.metadata = g.metadata.union(&metadata);
        g.excluded = g.excluded.union(&excluded);
        g.mapped = g.mapped.union(&span);
        let span = ByteRange::new(v.start, size.min(v.length));
        g.units.push((span, bs, v.start + v.unit_origin));
    }
    g
}

/// Splits `free` into (zero, residue) by reading it, at each filesystem's allocation unit;
/// `skip` (container-unallocated or declared-zero bytes) is not read and counts as zero.
pub fn residue(disk: &dyn VirtualDisk, sets: &GuestSets, skip: &RangeSet) -> Result<RangeSet> {
    let to_read = sets.free.difference(skip);
    let mut tasks = Vec::new();
    for &(span, unit, origin) in &sets.units {
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
                Ok(buf
                    .chunks(unit as usize)
                    .enumerate()
                    .filter(|(_, c)| !is_zero(c))
                    .map(|(i, c)| ByteRange::new(at + i as u64 * unit, c.len() as u64))
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

/// Every byte of the disk in one class (see the module documentation).
pub fn classes(disk: &dyn VirtualDisk, layout: &Layout) -> Result<Classes> {
    let cap = disk.capacity();
    let all = RangeSet::from_iter([ByteRange::new(0, cap)]);
    let mut c = Classes::default();
    for r in disk.map(ByteRange::new(0, cap))? {
        match r.state {
            BlockState::Unallocated => c.unallocated.insert(r.range()),
            BlockState::Zero => c.zero.insert(r.range()),
            BlockState::Data | BlockState::Unreadable => {}
        }
    }
    let container = c.unallocated.union(&c.zero);
    let g = guest_sets(layout);
    let res = residue(disk, &g, &container)?;
    c.metadata = g.metadata.difference(&container);
    c.used = g.used.difference(&g.metadata).difference(&container);
    c.excluded = g.excluded.difference(&container);
    c.free_residue = res.difference(&container);
    c.free_zero = g.free.difference(&res).difference(&container);
    c.unknown = all.difference(&g.mapped).difference(&container);
    Ok(c)
}
