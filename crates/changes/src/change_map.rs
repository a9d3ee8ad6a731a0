//! [`ChangeMap`], the validated and merged result, and [`load`] / [`parse`], which read
//! any accepted shape from a file (detected from its bytes).
//!
//! Sources: `docs/formats.md` §4.3 (shapes, normalisation order), §4.4 (paging rule),
//! §4.5 (round outward to the chunk), §4.7 (QEMU dirty-bitmap maps); `docs/design.md`
//! invariant 4 (bounded input, errors with file and offset).

use crate::gathered::Warnings;
use crate::limits::MAX_FILE_BYTES;
use crate::shape::{Format, Layout, Shape};
use crate::{csv, json, normalise};
use diskray_core::{Error, RangeSet, Result, Warning};
use std::io::Read;
use std::path::Path;

/// A change map checked against the disk's capacity: which bytes changed since the
/// previous backup, sorted and merged.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeMap {
    /// The disk's capacity in bytes (given, or the end of the pages when not given).
    pub capacity: u64,
    /// The changed bytes, inside `[0, capacity)`.
    pub changed: RangeSet,
    /// Bytes the pages did not cover; empty unless a partial map was accepted. A backup
    /// must treat them as changed.
    pub uncovered: RangeSet,
    /// The shape the map was read from.
    pub source: Shape,
    /// What was normalised or looks suspicious (at most [`crate::limits::MAX_WARNINGS`]
    /// plus one line counting the rest).
    pub warnings: Vec<Warning>,
}

impl ChangeMap {
    /// The warnings, each after the name of the map's file `path` (for people).
    pub fn warnings_of(&self, path: &Path) -> Vec<String> {
        let name = path.display();
        self.warnings
            .iter()
            .map(|w| format!("{name}: {w}"))
            .collect()
    }

    /// The bytes a backup must read: changed plus uncovered.
    pub fn must_read(&self) -> RangeSet {
        self.changed.union(&self.uncovered)
    }

    /// [`ChangeMap::must_read`] with every range rounded outward to multiples of `block`
    /// (any non-zero value; 0 is read as 1) and clamped to the capacity (docs/formats.md §4.5).
    pub fn round_out(&self, block: u64) -> RangeSet {
        let block = block.max(1);
        self.must_read()
            .ranges()
            .map(|r| r.align_out(block, self.capacity))
            .collect()
    }

    /// Total changed bytes (not counting uncovered ones).
    pub fn changed_bytes(&self) -> u64 {
        self.changed.bytes()
    }
}

/// Reads and validates the change map in `path` (see [`parse`]).
pub fn load(path: &Path, capacity: Option<u64>, partial: bool) -> Result<ChangeMap> {
    let file = std::fs::File::open(path).map_err(|e| Error::Open {
        path: path.to_path_buf(),
        source: e,
    })?;
    let len = file
        .metadata()
        .map_err(|e| Error::Open {
            path: path.to_path_buf(),
            source: e,
        })?
        .len();
    if len > MAX_FILE_BYTES {
        return Err(too_big(path, len));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, bytes.len() as u64, e))?;
    parse(&bytes, path, capacity, partial)
}

fn too_big(path: &Path, len: u64) -> Error {
    Error::refused(
        path,
        format!("{len} bytes: larger than {MAX_FILE_BYTES}, the most a change map may hold"),
    )
}

/// Parses a change map from a file's bytes, detecting its shape, and validates it.
///
/// Shapes: vSphere JSON API (also as `ArrayOfDiskChangeInfo`), pyVmomi
/// `VmomiJSONEncoder` (with or without `strip_dynamic`), govmomi/govc, snake_case keys,
/// each as one object, a JSON array of pages or one page per line; ad hoc
/// `[[start, length], …]`, `[{start, length}, …]` and CSV `offset,length` lines; and
/// `qemu-img map --output=json` of a dirty bitmap (`data: false` = dirty).
///
/// `capacity` is the disk size; when `None`, the pages' own end is taken (page-less
/// shapes then are refused). Pages must tile `[0, capacity)`; with `partial`, a short
/// cover is accepted and the rest reported in [`ChangeMap::uncovered`]. `path` names the
/// file in errors.
pub fn parse(bytes: &[u8], path: &Path, capacity: Option<u64>, partial: bool) -> Result<ChangeMap> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big(path, bytes.len() as u64));
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let bom = bytes.len() - body.len();
    let first = body.iter().position(|b| !b.is_ascii_whitespace());
    let Some(first) = first else {
        return Err(Error::refused(path, "empty file: no change map in it"));
    };
    match body[first] {
        b'{' | b'[' => {
            let map = json::gather(body, path).map_err(|e| shift(e, bom))?;
            normalise::normalise(
                map.gathered,
                map.shape,
                path,
                capacity,
                partial,
                map.warnings,
            )
            .map_err(|e| shift(e, bom))
        }
        _ => {
            let mut warnings = Warnings::default();
            let areas = csv::gather(body, path, &mut warnings).map_err(|e| shift(e, bom))?;
            let shape = Shape {
                format: Format::Csv,
                layout: Layout::Lines,
            };
            normalise::normalise(
                crate::gathered::Gathered::Areas(areas),
                shape,
                path,
                capacity,
                partial,
                warnings,
            )
            .map_err(|e| shift(e, bom))
        }
    }
}

/// Moves an error's byte offset past a stripped byte-order mark.
fn shift(e: Error, by: usize) -> Error {
    match e {
        Error::Corrupt {
            path,
            offset,
            reason,
        } => Error::Corrupt {
            path,
            offset: offset.saturating_add(by as u64),
            reason,
        },
        other => other,
    }
}

/// For people: the shape, capacity and changed bytes, then a `START LENGTH` row per
/// changed area.
impl std::fmt::Display for ChangeMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let size = diskray_core::human::size;
        let (format, layout) = (self.source.format.name(), self.source.layout.name());
        let areas = self.changed.ranges().count();
        write!(f, "{format} ({layout}), capacity {} bytes, ", self.capacity)?;
        write!(f, "{} changed in {areas} areas", size(self.changed_bytes()))?;
        if !self.uncovered.is_empty() {
            let n = size(self.uncovered.bytes());
            write!(f, ", {n} not covered (treated as changed)")?;
        }
        writeln!(f, "\n{:>20} {:>20}", "START", "LENGTH")?;
        for r in self.changed.ranges() {
            writeln!(f, "{:>20} {:>20}", r.start, r.length)?;
        }
        Ok(())
    }
}
