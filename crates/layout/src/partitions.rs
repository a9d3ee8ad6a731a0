//! `diskray partitions`' record: the partition table and what each partition holds,
//! probed through the same table reader as the disk tree.

use crate::machine::Machine;
use crate::tree::{analyze_machine, read_table};
use diskray_core::{DiskRange, Result, VirtualDisk, Warning};
use diskray_guestfs::{probe, Slice};
use diskray_volume::{Guid, Scheme};
use serde::Serialize;
use std::path::Path;

/// One partition as the table records it, with what it holds.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionRow {
    /// Its number as the tools number it (GPT entry, MBR 1–4, logical 5…).
    pub index: u32,
    /// Disk offset.
    pub start: u64,
    /// Length in bytes, as the entry declares it.
    #[serde(rename = "length")]
    pub length: u64,
    /// The type (GUID or MBR id), for people.
    #[serde(rename = "type")]
    pub kind: String,
    /// GPT partition name.
    pub name: String,
    /// What it holds (`extended` for an MBR extended container).
    pub content: String,
    /// GPT unique partition GUID.
    pub guid: Option<Guid>,
    /// GPT attribute bits.
    pub attributes: u64,
}

/// The partition table of a disk.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionListing {
    /// `gpt`, `mbr` or `none`.
    pub scheme: Scheme,
    /// Bytes per logical sector the table was read with.
    pub sector_size: u64,
    /// The disk GUID (GPT) or signature (MBR).
    pub disk_id: Option<String>,
    /// Size of the disk.
    pub capacity: u64,
    /// The partitions.
    pub partitions: Vec<PartitionRow>,
    /// What the whole disk holds when the table lists no partitions.
    pub whole_disk_content: Option<&'static str>,
    /// The LVM2 logical volumes of the volume groups whose PVs the disk holds.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logical_volumes: Vec<LvRow>,
    /// Table damage and oddities.
    pub warnings: Vec<Warning>,
}

/// One LVM2 logical volume, under the partitions that hold its volume group.
#[derive(Debug, Clone, Serialize)]
pub struct LvRow {
    /// `VG/LV`.
    pub lv: String,
    /// Its size in bytes.
    pub length: u64,
    /// What it holds (`ext4`, `swap`, `unknown`, …).
    pub content: &'static str,
    /// Where its bytes lie, in the LV's order (naming the disk when there are several).
    pub extents: Vec<DiskRange>,
    /// Why it is not mapped, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The logical volumes of the machine `m`, as rows.
pub fn logical_volumes(m: &Machine) -> Result<Vec<LvRow>> {
    let layout = analyze_machine(m)?;
    let lvs = layout.volumes.iter().filter_map(|v| {
        let lv = v.lv.clone()?;
        let all = diskray_core::ByteRange::new(0, v.length);
        Some(LvRow {
            lv,
            length: v.length,
            content: v.content.name(),
            extents: v.placement.to_disk(all).flat_map(|r| m.locate(r)).collect(),
            error: v.error.clone(),
        })
    });
    Ok(lvs.collect())
}

/// The rows of `lvs`, for people.
fn write_lvs(f: &mut std::fmt::Formatter<'_>, lvs: &[LvRow]) -> std::fmt::Result {
    if lvs.is_empty() {
        return Ok(());
    }
    writeln!(
        f,
        "\n{:<24} {:>10}  {:<9} extents",
        "logical volume", "size", "content"
    )?;
    for l in lvs {
        // For people, the runs merged by disk position (a striped LV alternates in
        // chunks); JSON keeps them in the LV's order.
        let mut sorted = l.extents.clone();
        sorted.sort();
        let mut merged: Vec<DiskRange> = Vec::new();
        for r in sorted {
            match merged.last_mut() {
                Some(m) if m.disk == r.disk && m.start + m.length == r.start => {
                    m.length += r.length
                }
                _ => merged.push(r),
            }
        }
        let mut runs: Vec<String> = merged
            .iter()
            .map(|r| match r.disk {
                Some(d) => format!("{d}:{}+{}", r.start, r.length),
                None => format!("{}+{}", r.start, r.length),
            })
            .collect();
        if l.extents.len() > merged.len() {
            runs.push(format!("(in {} pieces)", l.extents.len()));
        }
        let size = diskray_core::human::size(l.length);
        writeln!(
            f,
            "{:<24} {size:>10}  {:<9} {}",
            l.lv,
            l.content,
            runs.join(" ")
        )?;
    }
    Ok(())
}

/// Reads the partition table of `disk` (named `label` in messages) and probes each
/// partition.
pub fn partitions(disk: &dyn VirtualDisk, label: &Path) -> Result<PartitionListing> {
    let table = read_table(disk, label)?;
    let mut rows = Vec::new();
    for p in &table.partitions {
        let content = if p.container {
            "extended".to_string()
        } else {
            probe(&Slice::new(disk, label, p.start, p.length))?
                .name()
                .to_string()
        };
        rows.push(PartitionRow {
            index: p.index,
            start: p.start,
            length: p.length,
            kind: p.kind.display(),
            name: p.name.clone(),
            content,
            guid: p.guid,
            attributes: p.attributes,
        });
    }
    let whole_disk_content = if table.partitions.is_empty() {
        Some(probe(&Slice::new(disk, label, 0, disk.capacity()))?.name())
    } else {
        None
    };
    Ok(PartitionListing {
        scheme: table.scheme,
        sector_size: table.sector_size,
        disk_id: table.disk_id,
        capacity: disk.capacity(),
        partitions: rows,
        whole_disk_content,
        logical_volumes: logical_volumes(&Machine::single(disk, label))?,
        warnings: table.warnings,
    })
}

/// For people: the scheme, then a row per partition (or what the whole disk holds).
impl std::fmt::Display for PartitionListing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let id = self.disk_id.as_deref().unwrap_or("-");
        let (scheme, sector) = (self.scheme, self.sector_size);
        writeln!(
            f,
            "scheme: {scheme:?}  sector size: {sector}  disk id: {id}"
        )?;
        if let Some(content) = self.whole_disk_content {
            let what = match self.scheme {
                Scheme::None => "no partition table",
                _ => "the table lists no partitions",
            };
            writeln!(f, "{what}; the whole disk holds: {content}")?;
            return write_lvs(f, &self.logical_volumes);
        }
        let (i, start, len, kind, content) = ("index", "start", "length", "type", "content");
        writeln!(
            f,
            "{i:>5} {start:>14} {len:>14} {:>10}  {kind:<38} {content:<9} name",
            ""
        )?;
        for r in &self.partitions {
            writeln!(
                f,
                "{:>5} {:>14} {:>14} {:>10}  {:<38} {:<9} {}",
                r.index,
                r.start,
                r.length,
                diskray_core::human::size(r.length),
                r.kind,
                r.content,
                r.name
            )?;
        }
        write_lvs(f, &self.logical_volumes)
    }
}

/// `diskray partitions` of several disks: each disk's listing, in order.
#[derive(Debug, Clone, Serialize)]
pub struct MachinePartitions {
    /// One listing per disk (each without logical volumes: they are the machine's).
    pub disks: Vec<PartitionListing>,
    /// The LVM2 logical volumes of the machine, whose volume groups may span its disks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logical_volumes: Vec<LvRow>,
    /// The disks' names, for people.
    #[serde(skip)]
    pub paths: Vec<String>,
}

/// For people: each disk's listing under its name.
impl std::fmt::Display for MachinePartitions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (t, path)) in self.disks.iter().zip(&self.paths).enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "disk {i}: {path}")?;
            write!(f, "{t}")?;
        }
        write_lvs(f, &self.logical_volumes)
    }
}
