//! The tree of a disk: its partition table, the volumes in it, and what each holds (a
//! filesystem with its allocation, or content diskray recognises but does not map).

use diskray_core::{Result, VirtualDisk, Warning};
use diskray_guestfs::{open, probe, Allocation, Content, Slice};
use diskray_volume::{Partition, ReadOptions, Table};
use serde::Serialize;
use std::path::Path;

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
    let table = read_table(disk, label)?;
    let mut warnings = table.warnings.clone();
    let cap = disk.capacity();
    let mut spans: Vec<Span> = table
        .partitions
        .iter()
        .filter(|p| !p.container)
        .map(|p: &Partition| Span {
            index: p.index,
            start: p.start,
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
            start: 0,
            length: disk.capacity(),
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
            fs.map(|fs| Ok::<_, diskray_core::Error>((fs.summary(), fs.allocation()?)))
                .transpose()
        }) {
            Ok(Some((summary, alloc))) => {
                v.unit_origin = summary.unit_origin;
                warnings.extend(
                    alloc.warnings.iter().map(|w| {
                        Warning::new(format!("partition {index} ({}): {w}", content.name()))
                    }),
                );
                v.block_size = Some(summary.block_size);
                v.fs_size = Some(summary.size);
                v.label = summary.label;
                v.allocation = Some(alloc);
            }
            Ok(None) => {}
            Err(e) => {
                warnings.push(Warning::new(format!(
                    "partition {index}: {} could not be mapped ({e}); treated as unknown",
                    content.name()
                )));
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

/// A region of the disk that may hold a filesystem: a partition, or the whole disk.
struct Span {
    index: u32,
    start: u64,
    length: u64,
    name: String,
}
