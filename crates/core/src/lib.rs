//! The shared vocabulary of diskray: byte ranges and range sets, random-access reads over
//! files and virtual disks, the allocation-map states, zero detection, the one error
//! type every crate returns and the one warning type every crate reports.
//!
//! Every other crate depends on this one and on nothing above it (see `docs/design.md` §1).

#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod atomic;
pub mod disk;
pub mod error;
pub mod fields;
pub mod file;
pub mod heap;
pub mod human;
pub mod mem;
pub mod placement;
pub mod range;
pub mod rangeset;
pub mod time;
pub mod warning;
pub mod zero;

pub use atomic::{AtomicFile, Durability};
pub use disk::{BlockState, MapRange, VirtualDisk};
pub use error::{Error, Lookup, Result};
pub use fields::Fields;
pub use file::FileSource;
pub use mem::MemDisk;
pub use placement::{DiskRange, Piece, Placement};
pub use range::ByteRange;
pub use rangeset::RangeSet;
pub use warning::Warning;
pub use zero::{detect_zeroes, is_zero, zero_runs};

/// The sector size of VMDK metadata and of MBR/GPT on 512-byte disks.
pub const SECTOR: u64 = 512;
