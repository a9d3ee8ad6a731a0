//! The space report of a disk as one typed record: every byte's class, disk-wide and per
//! volume, and what a backup would read. `diskray report` prints it as a table or as JSON
//! (its field names are a public contract: `docs/design.md` §3.3).

use crate::classes::{Classes, Classification};
use crate::machine::Machine;
use crate::tree::{analyze_machine, Layout};
use diskray_core::human::size;
use diskray_core::{ByteRange, DiskRange, RangeSet, Result, VirtualDisk, Warning};
use diskray_volume::Scheme;
use serde::Serialize;
use std::path::Path;

/// Bytes per class (they sum to the span they describe).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ClassBytes {
    /// Never written, or unreadable, in the container.
    pub unallocated: u64,
    /// Declared zero by the container.
    pub zero: u64,
    /// Filesystem data.
    pub used: u64,
    /// Filesystem metadata.
    pub metadata: u64,
    /// Free and zero.
    pub free_zero: u64,
    /// Free but holding deleted data.
    pub free_residue: u64,
    /// Extents of LVM2 PVs that no logical volume owns.
    pub vg_free: u64,
    /// Swap and the like.
    pub excluded: u64,
    /// Outside any recognised filesystem.
    pub unknown: u64,
}

impl ClassBytes {
    /// The bytes of each class of `c`, within `clip` when given.
    pub fn of(c: &Classes, clip: Option<&RangeSet>) -> ClassBytes {
        let n = |set: &RangeSet| match clip {
            Some(w) => set.intersection(w).bytes(),
            None => set.bytes(),
        };
        ClassBytes {
            unallocated: n(&c.unallocated),
            zero: n(&c.zero),
            used: n(&c.used),
            metadata: n(&c.metadata),
            free_zero: n(&c.free_zero),
            free_residue: n(&c.free_residue),
            vg_free: n(&c.vg_free),
            excluded: n(&c.excluded),
            unknown: n(&c.unknown),
        }
    }

    /// The classes with their names, in report order.
    pub fn named(&self) -> [(&'static str, u64); 9] {
        [
            ("unallocated", self.unallocated),
            ("zero", self.zero),
            ("used", self.used),
            ("metadata", self.metadata),
            ("free_zero", self.free_zero),
            ("free_residue", self.free_residue),
            ("vg_free", self.vg_free),
            ("excluded", self.excluded),
            ("unknown", self.unknown),
        ]
    }
}

/// One disk of a machine's report.
#[derive(Debug, Clone, Serialize)]
pub struct DiskSummary {
    /// The file named.
    pub path: String,
    /// Its size.
    pub capacity: u64,
    /// Its partitioning scheme.
    pub scheme: Scheme,
}

/// One volume of the report.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeReport {
    /// Partition index (0 for a whole-disk volume).
    pub index: u32,
    /// The disk it is on, counting from 0 in the order given (only with several disks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk: Option<usize>,
    /// Disk offset.
    pub start: u64,
    /// Length in bytes.
    pub length: u64,
    /// GPT name or MBR type.
    pub name: String,
    /// What it holds (`ext4`, `ntfs`, `unknown`, …).
    pub filesystem: &'static str,
    /// `VG/LV` for a logical volume (whose bytes are `extents`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lv: Option<String>,
    /// A logical volume's bytes on the disk(s), in the order of the volume's bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extents: Option<Vec<DiskRange>>,
    /// Filesystem label.
    pub label: Option<String>,
    /// Allocation unit, when mapped.
    pub block_size: Option<u64>,
    /// Bytes the filesystem spans, when mapped.
    pub total: Option<u64>,
    /// Bytes it uses (data and metadata), when mapped.
    pub used: Option<u64>,
    /// Bytes it has free, when mapped.
    pub free: Option<u64>,
    /// Why the filesystem could not be mapped.
    pub error: Option<String>,
    /// Its bytes per class.
    pub classes: ClassBytes,
}

/// The space report of one disk.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The disk's name in messages and in the text for people.
    #[serde(skip)]
    pub disk: String,
    /// The disks, when there are several (`capacity` and the classes are then their sums,
    /// and `scheme` is the first disk's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disks: Option<Vec<DiskSummary>>,
    /// Size of the disk.
    pub capacity: u64,
    /// Its partitioning scheme.
    pub scheme: Scheme,
    /// Bytes per class, disk-wide (they sum to the capacity).
    pub classes: ClassBytes,
    /// Bytes a backup reads by default: used, metadata and unknown.
    pub backup_read_bytes: u64,
    /// The volumes.
    pub volumes: Vec<VolumeReport>,
    /// Things the user should know (table damage, filesystem problems, unreadable bytes).
    pub warnings: Vec<Warning>,
}

/// A report with the tree and classes it was made from (for pictures of the disk).
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The report.
    pub report: Report,
    /// The disk's tree.
    pub layout: Layout,
    /// Every byte in one class.
    pub classes: Classes,
}

/// Analyses `disk` (named `label` in messages) and reports its space.
pub fn report(disk: &dyn VirtualDisk, label: &Path) -> Result<Analysis> {
    report_machine(&Machine::single(disk, label))
}

/// [`report`] of the disks of a machine, as one: classes are summed over the disks, and
/// every volume names its disk.
pub fn report_machine(m: &Machine) -> Result<Analysis> {
    let disk: &dyn VirtualDisk = m;
    let several = m.disks().len() > 1;
    let layout = analyze_machine(m)?;
    let classification = Classification::of(disk, &layout)?;
    let classes = classification.classes(disk)?;
    let volumes = layout
        .volumes
        .iter()
        .map(|v| {
            let (total, used, free) = match (&v.allocation, v.fs_size) {
                (Some(a), Some(size)) => {
                    let used = a.used.bytes();
                    // A PV's logical volumes are neither its used nor its free bytes.
                    let others = a.excluded.bytes() + v.children.bytes();
                    (
                        Some(size),
                        Some(used),
                        Some(size.saturating_sub(used + others)),
                    )
                }
                _ => (None, None, None),
            };
            let offset = m.disks()[v.disk].offset;
            VolumeReport {
                index: v.index,
                disk: several.then_some(v.disk),
                start: v.start - offset,
                length: v.length,
                name: v.name.clone(),
                filesystem: v.content.name(),
                lv: v.lv.clone(),
                extents: v.lv.as_ref().map(|_| {
                    let all = ByteRange::new(0, v.length);
                    v.placement.to_disk(all).flat_map(|r| m.locate(r)).collect()
                }),
                label: v.label.clone(),
                block_size: v.block_size,
                total,
                used,
                free,
                error: v.error.clone(),
                classes: ClassBytes::of(&classes, Some(&v.own_span())),
            }
        })
        .collect();
    let mut warnings = layout.warnings.clone();
    warnings.extend(classification.container.warning());
    let names: Vec<String> = m
        .disks()
        .iter()
        .map(|d| d.label.display().to_string())
        .collect();
    let disks = several.then(|| {
        let each = m.disks().iter().zip(&layout.tables);
        each.map(|(d, t)| DiskSummary {
            path: d.label.display().to_string(),
            capacity: d.disk.capacity(),
            scheme: t.scheme,
        })
        .collect()
    });
    let report = Report {
        disk: names.join(", "),
        disks,
        capacity: disk.capacity(),
        scheme: layout.table.scheme,
        classes: ClassBytes::of(&classes, None),
        backup_read_bytes: classes.backup_read_bytes(),
        volumes,
        warnings,
    };
    Ok(Analysis {
        report,
        layout,
        classes,
    })
}

/// For people: the volumes as a table, the classes with their share of the disk, and what
/// a backup reads.
impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cap = self.capacity;
        let pct = |b: u64| {
            if cap == 0 {
                0.0
            } else {
                100.0 * b as f64 / cap as f64
            }
        };
        let scheme = self.scheme.name();
        writeln!(
            f,
            "{}: {} ({cap} bytes), partition table: {scheme}\n",
            self.disk,
            size(cap)
        )?;
        let (i, fs, sz, used, free, res, block) = (
            "index",
            "filesystem",
            "size",
            "used",
            "free",
            "residue",
            "block",
        );
        writeln!(
            f,
            "{i:>5}  {fs:<10} {sz:>10} {used:>10} {free:>10} {res:>10}  {block:>9}  label"
        )?;
        let n = |v: Option<u64>| v.map(size).unwrap_or_else(|| "-".into());
        for v in &self.volumes {
            // With several disks, a volume is `DISK:INDEX`; an LV is named by `VG/LV` at
            // the end of its line, not by an index (it may span partitions and disks).
            let index = match (v.disk, &v.lv) {
                (_, Some(_)) => "-".to_string(),
                (Some(d), None) => format!("{d}:{}", v.index),
                (None, None) => v.index.to_string(),
            };
            writeln!(
                f,
                "{:>5}  {:<10} {:>10} {:>10} {:>10} {:>10}  {:>9}  {}",
                index,
                v.filesystem,
                size(v.length),
                n(v.used),
                n(v.free),
                size(v.classes.free_residue),
                n(v.block_size),
                match (&v.lv, &v.label) {
                    (Some(lv), Some(l)) => format!("{lv} ({l})"),
                    (Some(lv), None) => lv.clone(),
                    (None, l) => l.clone().unwrap_or_default(),
                },
            )?;
        }
        writeln!(f)?;
        for (k, b) in self.classes.named() {
            writeln!(f, "  {k:<13} {:>10}  {:>5.1}%", size(b), pct(b))?;
        }
        let backup = self.backup_read_bytes;
        writeln!(
            f,
            "\na backup needs to read {} of {} ({:.1}%): used, metadata and unknown space",
            size(backup),
            size(cap),
            pct(backup)
        )
    }
}
