//! A raw image: the file is the disk. Its allocation map comes from the host's holes
//! (`SEEK_DATA` / `SEEK_HOLE`): a hole was never written.

use diskray_core::disk::push_run;
use diskray_core::{BlockState, ByteRange, Error, FileSource, MapRange, Result, VirtualDisk};
use std::path::Path;

/// A raw disk image.
#[derive(Debug)]
pub struct RawDisk {
    file: FileSource,
    sector_size: Option<u64>,
}

impl RawDisk {
    /// Opens `path` as a raw image.
    pub fn open(path: &Path) -> Result<RawDisk> {
        Ok(RawDisk {
            file: FileSource::open(path)?,
            sector_size: None,
        })
    }

    /// Sets the disk's logical sector size (the user's `--sector-size`): a raw file does
    /// not record it.
    pub fn set_logical_sector_size(&mut self, size: Option<u64>) {
        self.sector_size = size;
    }

    /// The file behind the disk.
    pub fn file(&self) -> &FileSource {
        &self.file
    }
}

impl VirtualDisk for RawDisk {
    fn capacity(&self) -> u64 {
        self.file.len()
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > self.capacity())
        {
            return Err(Error::out_of_range(
                self.file.path().display().to_string(),
                offset,
                buf.len() as u64,
                self.capacity(),
            ));
        }
        self.file.read_exact_at(buf, offset)
    }

    fn map(&self, range: ByteRange) -> Result<Vec<MapRange>> {
        let range = range
            .intersect(&ByteRange::new(0, self.capacity()))
            .unwrap_or(ByteRange::new(0, 0));
        let mut out = Vec::new();
        let mut pos = range.start;
        let run = |start, length, state| MapRange {
            start,
            length,
            state,
            depth: 0,
        };
        for data in self.file.data_ranges(range)? {
            push_run(
                &mut out,
                run(pos, data.start - pos, BlockState::Unallocated),
            );
            push_run(&mut out, run(data.start, data.length, BlockState::Data));
            pos = data.end();
        }
        push_run(
            &mut out,
            run(pos, range.end() - pos, BlockState::Unallocated),
        );
        Ok(out)
    }

    fn logical_sector_size(&self) -> Option<u64> {
        self.sector_size
    }
}
