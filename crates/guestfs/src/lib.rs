//! Guest filesystems read from their on-disk structures, through a [`diskray_core::VirtualDisk`], without
//! mounting: what a volume holds ([`probe()`]), and for the filesystems diskray understands,
//! which bytes are used, which of those are metadata, and which are excluded (swap).
//!
//! One trait ([`Filesystem`], in `filesystem.rs`), one folder per filesystem holding its
//! allocation map and its file view (`ext/`, `fat/`, `ntfs/`, `xfs/`; `swap.rs` has no
//! file view), and [`any`], which opens whichever a volume holds, in the manner of
//! gimli-rs/object's `read/any.rs`. The file view every filesystem offers, and the path
//! resolution over it, is [`files`].

#![warn(missing_docs)]

pub mod any;
pub mod bitmap;
pub mod deleted;
pub mod ext;
pub mod fat;
pub mod files;
mod filesystem;
pub mod listing;
pub mod ntfs;
pub mod probe;
pub mod slice;
pub mod swap;
pub mod xfs;

pub use any::open;
pub use filesystem::{Allocation, FileAccess, Filesystem, Summary};
pub use probe::{probe, Content};
pub use slice::Slice;
