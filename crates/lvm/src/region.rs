//! [`Region`]: the byte range of a disk that holds one PV (a whole disk or a partition).
//! Reads are PV-relative and bounded by the region; errors name the disk and the
//! disk-absolute byte offset.

use diskray_core::{Error, Fields, Result, VirtualDisk};
use std::path::{Path, PathBuf};

/// A byte range of a disk seen as a physical volume.
#[derive(Clone)]
pub struct Region<'a> {
    disk: &'a dyn VirtualDisk,
    path: PathBuf,
    start: u64,
    len: u64,
}

impl std::fmt::Debug for Region<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region")
            .field("path", &self.path)
            .field("start", &self.start)
            .field("len", &self.len)
            .finish()
    }
}

impl<'a> Region<'a> {
    /// The range `[start, start + len)` of `disk`, named `path` in messages (clamped to
    /// the disk).
    pub fn new(disk: &'a dyn VirtualDisk, path: &Path, start: u64, len: u64) -> Self {
        let len = len.min(disk.capacity().saturating_sub(start));
        Region {
            disk,
            path: path.to_path_buf(),
            start,
            len,
        }
    }

    /// The disk's name, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Disk byte offset of the region's first byte.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Length of the region in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty region.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads `len` bytes at region offset `off` into a new buffer; `what` names the
    /// structure for the error when it does not fit in the region. The caller bounds
    /// `len` (every caller passes a named constant or a length it has checked).
    pub fn read_vec(&self, off: u64, len: u64, what: &str) -> Result<Vec<u8>> {
        if off.checked_add(len).is_none_or(|e| e > self.len) {
            return Err(self.corrupt(
                off,
                format!(
                    "{what}: expected {len} bytes at PV byte {off}, but the PV holds {} bytes",
                    self.len
                ),
            ));
        }
        let mut buf = vec![0u8; len as usize];
        self.disk.read_at(&mut buf, self.start + off)?;
        Ok(buf)
    }

    /// The disk's allocation map of region bytes `[off, off + len)`, in region offsets.
    pub fn map(&self, off: u64, len: u64) -> Result<Vec<diskray_core::MapRange>> {
        let end = off.saturating_add(len).min(self.len);
        if off >= end {
            return Ok(Vec::new());
        }
        let mut runs = self
            .disk
            .map(diskray_core::ByteRange::new(self.start + off, end - off))?;
        for r in &mut runs {
            r.start -= self.start;
        }
        Ok(runs)
    }

    /// A field reader over `bytes`, the structure `what` read from region offset `off`.
    pub fn fields<'b>(&'b self, bytes: &'b [u8], what: &'static str, off: u64) -> Fields<'b> {
        Fields::new(bytes, what, &self.path, self.start.saturating_add(off))
    }

    /// An error about the structure at region offset `off`.
    pub fn corrupt(&self, off: u64, reason: impl Into<String>) -> Error {
        Error::corrupt(&self.path, self.start.saturating_add(off), reason)
    }
}
