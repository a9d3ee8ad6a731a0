//! [`to_vsphere_json`]: a change map written as one vSphere `DiskChangeInfo`, the shape
//! every consumer of QueryChangedDiskAreas already reads.
//!
//! Source: `docs/formats.md` §4.3, vSphere JSON API row (`_typeName` `DiskChangeInfo`
//! with `startOffset`, `length`, `changedArea` of `DiskChangeExtent {start, length}`).

use crate::change_map::ChangeMap;
use serde::Serialize;

/// A vSphere `DiskChangeInfo` page, as the vSphere JSON API spells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiskChangeInfo {
    /// Always `DiskChangeInfo`.
    #[serde(rename = "_typeName")]
    pub type_name: &'static str,
    /// First byte the page covers.
    #[serde(rename = "startOffset")]
    pub start_offset: u64,
    /// Bytes the page covers.
    pub length: u64,
    /// The changed areas, sorted and merged.
    #[serde(rename = "changedArea")]
    pub changed_area: Vec<DiskChangeExtent>,
}

/// One changed area of a [`DiskChangeInfo`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DiskChangeExtent {
    /// Always `DiskChangeExtent`.
    #[serde(rename = "_typeName")]
    pub type_name: &'static str,
    /// First changed byte.
    pub start: u64,
    /// Changed bytes.
    pub length: u64,
}

/// One vSphere-shaped `DiskChangeInfo` page covering `[0, capacity)` whose `changedArea`
/// lists the merged changed areas plus any uncovered bytes (which a reader must treat as
/// changed, so they are written as changed). `changedArea` is always present.
pub fn to_vsphere_json(map: &ChangeMap) -> DiskChangeInfo {
    let changed = map.must_read();
    let changed_area = changed.ranges().map(|r| DiskChangeExtent {
        type_name: "DiskChangeExtent",
        start: r.start,
        length: r.length,
    });
    DiskChangeInfo {
        type_name: "DiskChangeInfo",
        start_offset: 0,
        length: map.capacity,
        changed_area: changed_area.collect(),
    }
}
