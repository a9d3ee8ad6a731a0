//! A disk wrapper that counts the bytes read through it, so the statistics can say how
//! much metadata the guest analysis read besides the data the pipeline read.

use diskray_core::{ByteRange, MapRange, Result, VirtualDisk};
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts reads of an inner disk.
pub struct CountingDisk<'a> {
    inner: &'a dyn VirtualDisk,
    read: AtomicU64,
}

impl<'a> CountingDisk<'a> {
    /// Wraps `inner`.
    pub fn new(inner: &'a dyn VirtualDisk) -> Self {
        CountingDisk {
            inner,
            read: AtomicU64::new(0),
        }
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }
}

impl VirtualDisk for CountingDisk<'_> {
    fn capacity(&self) -> u64 {
        self.inner.capacity()
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.read.fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.inner.read_at(buf, offset)
    }

    fn map(&self, range: ByteRange) -> Result<Vec<MapRange>> {
        self.inner.map(range)
    }

    fn logical_sector_size(&self) -> Option<u64> {
        self.inner.logical_sector_size()
    }
}
