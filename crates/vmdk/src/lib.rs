//! A VMDK reader that is right on every variant: descriptors (standalone and embedded),
//! hosted sparse and streamOptimized extents, FLAT/VMFS, ZERO, NOACCESS, COWD (vmfsSparse)
//! and seSparse deltas, and snapshot chains with CID checks. It serves guest reads and an
//! allocation map straight from the grain tables. [`writer`] writes any disk back out as a
//! monolithicSparse or streamOptimized VMDK.
//!
//! Facts come from VMware's "Virtual Disk Format 1.1", qemu `block/vmdk.c`, and
//! `docs/formats.md` §1; each module names its own sources.

#![warn(missing_docs)]

pub mod cowd;
pub mod descriptor;
pub mod disk;
pub mod extent;
pub mod grain_table;
pub mod info;
pub mod layer;
pub mod paths;
pub mod run;
pub mod sesparse;
pub mod sparse;
pub mod sparse_header;
pub mod stream;
pub mod writer;

pub use disk::{OpenOptions, VmdkDisk};
pub use layer::Layer;
pub use writer::{write_vmdk, Subformat};
