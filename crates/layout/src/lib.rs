//! A machine's disk seen whole: the tree of partition table → partitions → filesystems
//! ([`tree`]), what the container says of every byte ([`container`]), and the one
//! classification of every byte ([`classes`]) that `report`, `blocks` and `backup` share.
//!
//! It sits between `volume` (partition tables) and `guestfs` (filesystems) below, and the
//! accelerator and the command above; it reads nothing but through
//! [`diskray_core::VirtualDisk`].

#![warn(missing_docs)]

pub mod blocks;
pub mod classes;
pub mod container;
pub mod lvm;
pub mod machine;
pub mod partitions;
pub mod report;
pub mod select;
pub mod svg;
pub mod tree;

pub use blocks::{blocks_machine, Blocks};
pub use classes::{
    classes, guest_sets, guest_state, residue, Classes, Classification, GuestSets, GuestState,
    KeepOptions, UnitGrid,
};
pub use container::ContainerMap;
pub use machine::Machine;
pub use partitions::{partitions, MachinePartitions, PartitionListing, PartitionRow};
pub use report::{report, report_machine, Analysis, ClassBytes, DiskSummary, Report, VolumeReport};
pub use select::{choose_volume, with_files, with_machine_files};
pub use tree::{analyze, analyze_machine, read_table, Layout, Volume};
