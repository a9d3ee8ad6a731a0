//! LVM2 read from its on-disk structures: the PV label and header, the metadata areas
//! with their circular buffer of text copies, the metadata text (parsed with nom into a
//! generic tree, then a typed VG model), and the assembly of a volume group from its PVs
//! into a map of every logical volume's extents on every PV (docs/formats.md §9).
//!
//! The entry points: [`read_pv`] reads one PV from a byte range of a disk;
//! [`VolumeGroup::assemble`] puts the PVs of one VG together; [`LvDisk`] reads a mapped
//! LV as a [`diskray_core::VirtualDisk`].

#![warn(missing_docs)]

pub mod crc;
pub mod label;
pub mod lvdisk;
pub mod map;
pub mod mda;
pub mod metadata;
pub mod pv;
pub mod region;
pub mod text;
pub mod uuid;

pub use label::{Area, Label};
pub use lvdisk::LvDisk;
pub use map::{
    group_pvs, LogicalVolume, LvRole, LvState, Mapping, PvClass, PvRange, PvSlot, Run, VolumeGroup,
};
pub use metadata::{LvMeta, PvMeta, SegmentKind, SegmentMeta, VgMetadata};
pub use pv::{read_pv, Pv};
pub use region::Region;
