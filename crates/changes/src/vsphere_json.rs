//! [`to_vsphere_json`]: a change map written as one vSphere `DiskChangeInfo`, the shape
//! every consumer of QueryChangedDiskAreas already reads.
//!
//! Source: `docs/formats.md` §4.3, vSphere JSON API row (`_typeName` `DiskChangeInfo`
//! with `startOffset`, `length`, `changedArea` of `DiskChangeExtent {start, length}`).

use crate::change_map::ChangeMap;
use serde_json::{json, Value};

/// One vSphere-shaped `DiskChangeInfo` page covering `[0, capacity)` whose `changedArea`
/// lists the merged changed areas plus any uncovered bytes (which a reader must treat as
/// changed, so they are written as changed). `changedArea` is always present.
pub fn to_vsphere_json(map: &ChangeMap) -> Value {
    let areas: Vec<Value> = map
        .must_read()
        .ranges()
        .map(|r| {
            json!({
                "_typeName": "DiskChangeExtent",
                "start": r.start,
                "length": r.length,
            })
        })
        .collect();
    json!({
        "_typeName": "DiskChangeInfo",
        "startOffset": 0,
        "length": map.capacity,
        "changedArea": areas,
    })
}
