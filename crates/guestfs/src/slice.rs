//! [`Slice`]: a volume inside a disk. Reads are volume-relative and bounded by the volume;
//! errors carry the disk's name and the disk-absolute byte offset. A slice may carry an
//! [`Overlay`]: newer copies of some of its bytes (a replayed journal) that every read sees
//! in place of what the disk holds.

use diskray_core::{Error, Fields, Result, VirtualDisk};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Newer copies of some of a volume's bytes, laid over what the disk holds.
pub trait Overlay: Send + Sync {
    /// Overwrites, in `buf` (the volume's bytes from volume offset `off`, as the disk holds
    /// them), every byte this overlay has a newer copy of.
    fn patch(&self, buf: &mut [u8], off: u64) -> Result<()>;
}

/// A byte range of a disk seen as a volume.
#[derive(Clone)]
pub struct Slice<'a> {
    disk: &'a dyn VirtualDisk,
    label: PathBuf,
    start: u64,
    len: u64,
    overlay: Option<Arc<dyn Overlay + 'a>>,
}

impl<'a> Slice<'a> {
    /// The volume `[start, start + len)` of `disk` (clamped to the disk).
    pub fn new(disk: &'a dyn VirtualDisk, label: &Path, start: u64, len: u64) -> Self {
        let len = len.min(disk.capacity().saturating_sub(start));
        Slice {
            disk,
            label: label.to_path_buf(),
            start,
            len,
            overlay: None,
        }
    }

    /// The same volume with `overlay` laid over it (replacing any overlay it had).
    pub fn with_overlay(&self, overlay: Arc<dyn Overlay + 'a>) -> Slice<'a> {
        Slice {
            overlay: Some(overlay),
            ..self.clone()
        }
    }

    /// The name of the disk, for messages.
    pub fn label(&self) -> &Path {
        &self.label
    }

    /// Length of the volume in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty volume.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Disk byte offset of the volume's first byte.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Reads `buf.len()` bytes at volume offset `off`; reading past the volume is an error.
    pub fn read_at(&self, buf: &mut [u8], off: u64) -> Result<()> {
        if off
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > self.len)
        {
            return Err(self.corrupt(off, format!(
                "structure of {} bytes at volume byte {off} runs past the end of the volume ({} bytes)",
                buf.len(), self.len)));
        }
        self.disk.read_at(buf, self.start + off)?;
        match &self.overlay {
            Some(o) => o.patch(buf, off),
            None => Ok(()),
        }
    }

    /// Reads `len` bytes at volume offset `off` into a new buffer.
    pub fn read_vec(&self, off: u64, len: u64) -> Result<Vec<u8>> {
        if off.checked_add(len).is_none_or(|e| e > self.len) {
            return Err(self.corrupt(off, format!(
                "structure of {len} bytes at volume byte {off} runs past the end of the volume ({} bytes)", self.len)));
        }
        let mut buf = vec![0u8; len as usize];
        self.read_at(&mut buf, off)?;
        Ok(buf)
    }

    /// A field reader over `bytes`, the structure `what` read from volume offset `off`
    /// (its errors name the disk and the disk-absolute offset).
    pub fn fields<'b>(&'b self, bytes: &'b [u8], what: &'static str, off: u64) -> Fields<'b> {
        Fields::new(bytes, what, &self.label, self.start.saturating_add(off))
    }

    /// An error about the structure at volume offset `off`.
    pub fn corrupt(&self, off: u64, reason: impl Into<String>) -> Error {
        Error::corrupt(&self.label, self.start.saturating_add(off), reason)
    }
}
