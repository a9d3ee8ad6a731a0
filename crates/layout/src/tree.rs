//! The tree of a disk: its partition table, the volumes in it, and what each holds (a
//! filesystem with its allocation, or content diskray recognises but does not map).

use crate::lvm::{lv_label, LvSource};
use crate::machine::Machine;
use diskray_core::{Placement, RangeSet, Result, VirtualDisk, Warning};
use diskray_guestfs::{open, probe, Allocation, Content, Slice};
use diskray_volume::{Partition, ReadOptions, Table};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;

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
    /// `VG/LV` for a logical volume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lv: Option<String>,
    /// The disk of the machine it is on (the disk it starts on, for an LV).
    #[serde(skip)]
    pub disk: usize,
    /// Where its bytes lie on the disk (one piece for a partition).
    #[serde(skip)]
    pub placement: Placement,
    /// Volume-relative bytes that belong to volumes inside it (a PV's logical volumes):
    /// classified by those, not by this volume.
    #[serde(skip)]
    pub children: RangeSet,
    /// How to read it when it is not a run of the disk (a logical volume).
    #[serde(skip)]
    pub source: Option<Arc<LvSource>>,
}

impl Volume {
    /// A volume of `length` bytes placed on the disk by `placement`, holding `content`,
    /// not mapped yet.
    pub fn new(
        index: u32,
        name: String,
        content: Content,
        length: u64,
        placement: Placement,
    ) -> Volume {
        Volume {
            index,
            start: placement.first_disk_byte(),
            length,
            name,
            content,
            block_size: None,
            unit_origin: 0,
            fs_size: None,
            label: None,
            allocation: None,
            error: None,
            lv: None,
            disk: 0,
            placement,
            children: RangeSet::new(),
            source: None,
        }
    }

    /// Runs `f` on the volume's bytes as a [`Slice`] (through its volume manager for a
    /// logical volume); `label` names the disk. A logical volume without a mapping (left
    /// unknown: docs/formats.md §9.8) is refused with the reason.
    pub fn with_slice<T>(
        &self,
        disk: &dyn VirtualDisk,
        label: &Path,
        f: impl FnOnce(Slice<'_>) -> Result<T>,
    ) -> Result<T> {
        match &self.source {
            // An LV diskray could not place (a missing PV, thin, a pool part): its bytes
            // do not run on from its first extent, so they are not read at all.
            None if self.lv.is_some() => Err(diskray_core::Error::refused(
                label,
                format!(
                    "LV {} cannot be read: {}",
                    self.name,
                    self.error.as_deref().unwrap_or("its extents are not known")
                ),
            )),
            None => f(Slice::new(disk, label, self.start, self.length)),
            Some(src) => {
                let lv = src.open(disk, label)?;
                let name = lv_label(label, &src.name());
                f(Slice::new(&lv, &name, 0, self.length))
            }
        }
    }

    /// The disk bytes of the volume.
    pub fn disk_span(&self) -> RangeSet {
        self.placement.span(self.length)
    }

    /// The disk bytes of the volume that no volume inside it claims (a PV without its LVs).
    pub fn own_span(&self) -> RangeSet {
        let all = RangeSet::from_iter([diskray_core::ByteRange::new(0, self.length)]);
        self.placement.set_to_disk(&all.difference(&self.children))
    }
}

/// The machine's tables and volumes (in machine bytes: see [`Machine`]).
#[derive(Debug, Clone)]
pub struct Layout {
    /// The partition table of the first disk.
    pub table: Table,
    /// The partition table of each disk, in order.
    pub tables: Vec<Table>,
    /// The volumes (partitions that are not extended containers, or the whole disk).
    pub volumes: Vec<Volume>,
    /// Warnings (table damage, filesystem problems).
    pub warnings: Vec<Warning>,
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
    analyze_machine(&Machine::single(disk, label))
}

/// [`analyze`] for every disk of a machine, with the volume groups that span them.
pub fn analyze_machine(m: &Machine) -> Result<Layout> {
    let mut warnings = Vec::new();
    let mut tables = Vec::new();
    let mut volumes = Vec::new();
    for (i, d) in m.disks().iter().enumerate() {
        let table = read_table(d.disk, &d.label)?;
        warnings.extend(table.warnings.iter().cloned());
        for mut v in disk_volumes(m, i, &table, &mut warnings)? {
            v.disk = i;
            volumes.push(v);
        }
        tables.push(table);
    }
    crate::lvm::expand(m, &mut volumes, &mut warnings);
    let table = tables
        .first()
        .cloned()
        .ok_or_else(|| diskray_core::Error::refused(Path::new("-"), "a machine without disks"))?;
    Ok(Layout {
        table,
        tables,
        volumes,
        warnings,
    })
}

/// The volumes of disk `i` of `m` (partitions of `table`, or the whole disk), probed and
/// mapped, in machine bytes.
fn disk_volumes(
    m: &Machine,
    i: usize,
    table: &Table,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<Volume>> {
    let d = &m.disks()[i];
    let (disk, label, offset) = (m as &dyn VirtualDisk, &d.label, d.offset);
    let cap = d.disk.capacity();
    let mut spans: Vec<Span> = table
        .partitions
        .iter()
        .filter(|p| !p.container)
        .map(|p: &Partition| Span {
            index: p.index,
            start: offset + p.start,
            // A partition running past the end of the disk (the table says so in a
            // warning) is read as far as the disk goes.
            length: p.length.min(cap.saturating_sub(p.start)),
            name: if p.name.is_empty() {
                p.kind.display()
            } else {
                p.name.clone()
            },
        })
        .collect();
    if table.partitions.is_empty() {
        spans.push(Span {
            index: 0,
            start: offset,
            length: cap,
            name: "whole disk".into(),
        });
    }
    let mut volumes = Vec::new();
    for Span {
        index,
        start,
        length,
        name,
    } in spans
    {
        let slice = Slice::new(disk, label, start, length);
        let content = probe(&slice)?;
        if index == 0 && content == Content::Unknown {
            continue;
        }
        let mut v = Volume::new(
            index,
            name,
            content,
            length,
            Placement::linear(start, length),
        );
        if content != Content::Lvm2 {
            map_filesystem(slice, &mut v, &format!("partition {index}"), warnings);
        }
        volumes.push(v);
    }
    Ok(volumes)
}

/// Opens the filesystem on `slice`, if diskray maps its content, and records its summary
/// and allocation in `v`; `what` names the volume in warnings (`partition 2`, `LV vg/root`).
pub(crate) fn map_filesystem(
    slice: Slice<'_>,
    v: &mut Volume,
    what: &str,
    warnings: &mut Vec<Warning>,
) {
    let content = v.content;
    match open(slice).and_then(|fs| {
        fs.map(|fs| Ok::<_, diskray_core::Error>((fs.summary(), fs.allocation()?)))
            .transpose()
    }) {
        Ok(Some((summary, alloc))) => {
            v.unit_origin = summary.unit_origin;
            let note = |w: &Warning| Warning::new(format!("{what} ({}): {w}", content.name()));
            warnings.extend(alloc.warnings.iter().map(note));
            v.block_size = Some(summary.block_size);
            v.fs_size = Some(summary.size);
            v.label = summary.label;
            v.allocation = Some(alloc);
        }
        Ok(None) => {}
        Err(e) => {
            warnings.push(Warning::new(format!(
                "{what}: {} could not be mapped ({e}); treated as unknown",
                content.name()
            )));
            v.error = Some(e.to_string());
        }
    }
}

/// A region of the disk that may hold a filesystem: a partition, or the whole disk.
struct Span {
    index: u32,
    start: u64,
    length: u64,
    name: String,
}
