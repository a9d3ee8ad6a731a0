//! What every filesystem module offers: the [`Filesystem`] trait (geometry, label,
//! allocation map, and through [`FileAccess`] the file view where there is one), the
//! [`Allocation`] map it computes, and the [`Summary`] reports print. Filesystem modules
//! implement it; the [`crate::any`] module picks one by content.

use crate::files;
use crate::probe::Content;
use diskray_core::{RangeSet, Result, Warning};
use serde::Serialize;

/// Where each byte of a volume stands, relative to the volume's start.
#[derive(Debug, Clone, Default)]
pub struct Allocation {
    /// Bytes the filesystem uses (data and metadata).
    pub used: RangeSet,
    /// The subset of `used` that is filesystem metadata.
    pub metadata: RangeSet,
    /// Bytes that hold nothing worth keeping (swap space): not in `used`.
    pub excluded: RangeSet,
    /// How the map was obtained when it is not exact (a dirty journal treated
    /// conservatively, a checksum mismatch, FSInfo disagreeing with the FAT, …).
    pub warnings: Vec<Warning>,
}

/// File-level access, for filesystems that offer it: every [`files::FileView`] offers
/// itself; a filesystem without one (swap) says `None`.
pub trait FileAccess {
    /// The file view, if the filesystem has one.
    fn files(&self) -> Option<&dyn files::Files>;
}

impl<T: files::FileView> FileAccess for T {
    fn files(&self) -> Option<&dyn files::Files> {
        Some(self)
    }
}

/// A filesystem diskray can map.
pub trait Filesystem: FileAccess + Send + Sync {
    /// What it is.
    fn content(&self) -> Content;
    /// The allocation unit in bytes (block or cluster).
    fn block_size(&self) -> u64;
    /// Bytes the filesystem spans from the volume start (may be less than the partition).
    fn size(&self) -> u64;
    /// Volume offset where the grid of allocation units starts (FAT's data area; 0 for
    /// filesystems whose blocks are counted from the volume start).
    fn unit_origin(&self) -> u64 {
        0
    }
    /// The volume label, if any.
    fn label(&self) -> Option<String>;
    /// The allocation map, from the allocation structures themselves (never from free
    /// counters).
    fn allocation(&self) -> Result<Allocation>;
    /// Geometry and label, for reports.
    fn summary(&self) -> Summary {
        Summary {
            filesystem: self.content(),
            block_size: self.block_size(),
            size: self.size(),
            unit_origin: self.unit_origin(),
            label: self.label(),
        }
    }
}

/// Geometry and counters of an opened filesystem, for reports.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// What it is.
    pub filesystem: Content,
    /// Allocation unit in bytes.
    pub block_size: u64,
    /// Bytes spanned.
    pub size: u64,
    /// Volume offset where the grid of allocation units starts.
    pub unit_origin: u64,
    /// Label.
    pub label: Option<String>,
}
