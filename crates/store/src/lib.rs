//! The diskray repository: content-addressed chunks and image indexes, built so that
//! every backup is a *synthetic full* image, in a local directory or an S3 bucket (the
//! [`backend`] seam; `docs/repository.md`).
//!
//! Layout of a directory (facts after the Proxmox Backup Server datastore,
//! `docs/formats.md` §5, and `docs/design.md` §4 "Repository format"; an object store
//! holds the same objects under the same keys, with `locks/` instead of `lock` and
//! `tmp/`):
//!
//! ```text
//! REPO/config                       format name and version (readers refuse others)
//! REPO/lock                         flock: shared by backups/restores/verify, exclusive by gc
//! REPO/chunks/XXXX/<sha256 hex>     one chunk: header (magic, CRC32, length) + raw or zstd data
//! REPO/images/<id>/manifest.json    name, time, capacity, chunk size, parent, change id, stats
//! REPO/images/<id>/index            fixed index: one digest per chunk (zero chunk reserved)
//! REPO/images/<id>/kept             the byte ranges taken from the source disk
//! REPO/tmp/                         temporary files and images being written
//! ```
//!
//! The store knows nothing of CBT or filesystems: it keeps bytes, digests and JSON that
//! the accelerator hands it.

#![warn(missing_docs)]

pub mod backend;
pub mod chunk;
pub mod chunks;
pub mod config;
pub mod crypto;
pub mod durable;
pub mod entropy;
pub mod gc;
pub mod host;
pub mod image;
pub mod index;
pub mod kept;
pub mod lock;
pub mod manifest;
pub mod patch;
pub mod reader;
pub mod repo;
pub mod retention;
pub mod stats;
pub mod verify;

pub use chunk::{Digest, ZERO_DIGEST};
pub use image::ImageWriter;
pub use index::FixedIndex;
pub use manifest::{ImageDescription, Manifest};
pub use reader::{ImageDisk, OpenImage};
pub use repo::Repo;

/// Smallest chunk size accepted: below it the index and the per-chunk costs dominate.
pub const MIN_CHUNK_SIZE: u64 = 64 << 10;
/// Largest chunk size accepted: bounds the memory each worker holds (plaintext + encoded).
pub const MAX_CHUNK_SIZE: u64 = 16 << 20;
/// The default chunk size, chosen by measurement (`bench/backup.sh`, `docs/benchmarks.md`):
/// small enough that a 1 % change re-stores little, large enough that hashing and file
/// creation run at disk speed.
pub const DEFAULT_CHUNK_SIZE: u64 = 1 << 20;
