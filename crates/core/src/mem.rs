//! [`MemDisk`]: a disk held in memory, for tests and fuzz targets of the layers above.

use crate::disk::push_run;
use crate::{BlockState, ByteRange, Error, MapRange, Result, VirtualDisk};

/// A disk whose bytes are a vector; every byte is `data` in its map.
#[derive(Debug, Clone)]
pub struct MemDisk {
    bytes: Vec<u8>,
}

impl MemDisk {
    /// A disk holding `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self { bytes }
    }

    /// The bytes, for patching in tests.
    pub fn bytes_mut(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }
}

impl VirtualDisk for MemDisk {
    fn capacity(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.capacity());
        let Some(end) = end else {
            return Err(Error::out_of_range(
                "memory disk",
                offset,
                buf.len() as u64,
                self.capacity(),
            ));
        };
        buf.copy_from_slice(&self.bytes[offset as usize..end as usize]);
        Ok(())
    }

    fn map(&self, range: ByteRange) -> Result<Vec<MapRange>> {
        let mut out = Vec::new();
        if let Some(r) = range.intersect(&ByteRange::new(0, self.capacity())) {
            push_run(
                &mut out,
                MapRange {
                    start: r.start,
                    length: r.length,
                    state: BlockState::Data,
                    depth: 0,
                },
            );
        }
        Ok(out)
    }
}
