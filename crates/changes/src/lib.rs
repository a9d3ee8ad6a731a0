//! Change maps for diskray: which bytes of a disk changed since the previous backup, read
//! from VMware CBT (QueryChangedDiskAreas results in every JSON dialect seen in the wild),
//! QEMU dirty bitmaps (`qemu-img map` over NBD) or ad hoc lists, and validated against
//! the disk's capacity; or computed by comparing two disk images.
//!
//! Facts come from `docs/formats.md` §4 (change maps: §4.1 QueryChangedDiskAreas, §4.2
//! change ids, §4.3 JSON shapes and normalisation order, §4.4 paging rule and buggy
//! loops, §4.5 granularity, §4.6 validity rules, §4.7 QEMU dirty bitmaps) and
//! `docs/design.md` (invariant 4: bad input is refused, never obeyed); each module
//! names its own sources.
//!
//! ```no_run
//! # use std::path::Path;
//! let map = diskray_changes::load(Path::new("cbt.json"), Some(10 << 30), false)?;
//! let to_read = map.round_out(1 << 20);
//! # Ok::<(), diskray_core::Error>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod change_id;
pub mod change_map;
mod csv;
pub mod diff;
mod gathered;
mod json;
pub mod limits;
mod normalise;
mod raw_json;
pub mod shape;
pub mod vsphere_json;

pub use change_id::ChangeId;
pub use change_map::{load, parse, ChangeMap};
pub use diff::diff;
pub use shape::{Format, Layout, Shape};
pub use vsphere_json::{to_vsphere_json, DiskChangeExtent, DiskChangeInfo};
