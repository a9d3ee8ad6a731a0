//! An image read back as a [`VirtualDisk`]: restore, file restore and export read the
//! repository through the same trait as any disk image.

use crate::index::FixedIndex;
use crate::repo::Repo;
use diskray_core::disk::push_run;
use diskray_core::{BlockState, ByteRange, Error, MapRange, Result, VirtualDisk};
use std::sync::{Arc, Mutex};

/// Decoded chunks kept for small reads (a file restore reads a chunk many times).
const CACHE_CHUNKS: usize = 8;

/// A stored image, readable like a disk. Zero chunks map as unallocated.
pub struct ImageDisk {
    repo: Repo,
    index: FixedIndex,
    cache: Mutex<Vec<(usize, Arc<Vec<u8>>)>>,
    check_digests: bool,
}

impl ImageDisk {
    /// An image's content.
    pub fn new(repo: Repo, index: FixedIndex) -> ImageDisk {
        ImageDisk {
            repo,
            index,
            cache: Mutex::new(Vec::new()),
            check_digests: true,
        }
    }

    /// Whether each chunk's digest is recomputed as it is read (the default). Without it
    /// a chunk is still checked by its CRC32, its encoding and its length.
    pub fn check_digests(mut self, on: bool) -> ImageDisk {
        self.check_digests = on;
        self
    }

    /// The index behind it.
    pub fn index(&self) -> &FixedIndex {
        &self.index
    }

    fn chunk(&self, i: usize) -> Result<Arc<Vec<u8>>> {
        if let Ok(cache) = self.cache.lock() {
            if let Some((_, c)) = cache.iter().find(|(j, _)| *j == i) {
                return Ok(c.clone());
            }
        }
        let (_, len) = self.index.chunk_range(i);
        let mut plain = vec![0u8; len as usize];
        self.repo
            .read_entry_into(&self.index, i, &mut plain, self.check_digests)?;
        let plain = Arc::new(plain);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_CHUNKS {
                cache.remove(0);
            }
            cache.push((i, plain.clone()));
        }
        Ok(plain)
    }
}

impl VirtualDisk for ImageDisk {
    fn capacity(&self) -> u64 {
        self.index.capacity
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|e| *e <= self.index.capacity)
            .ok_or_else(|| {
                Error::out_of_range(
                    "stored image",
                    offset,
                    buf.len() as u64,
                    self.index.capacity,
                )
            })?;
        let cs = self.index.chunk_size;
        // The pieces of the read, one per chunk; a read of several chunks (an NBD client's
        // 2 MiB request) decodes them in parallel.
        let mut pieces = Vec::new();
        let mut rest = buf;
        let mut pos = offset;
        while pos < end {
            let i = (pos / cs) as usize;
            let (cstart, clen) = self.index.chunk_range(i);
            let take = (cstart + clen).min(end) - pos;
            let (out, tail) = std::mem::take(&mut rest).split_at_mut(take as usize);
            rest = tail;
            pieces.push((i, pos, out));
            pos += take;
        }
        let piece = |(i, pos, out): (usize, u64, &mut [u8])| -> Result<()> {
            let (cstart, clen) = self.index.chunk_range(i);
            let d = self.index.digests[i];
            if d.is_zero() {
                out.fill(0);
            } else if pos == cstart && out.len() as u64 == clen {
                // A whole chunk: decode straight into the caller's buffer.
                self.repo
                    .read_entry_into(&self.index, i, out, self.check_digests)?;
            } else {
                let c = self.chunk(i)?;
                let from = (pos - cstart) as usize;
                out.copy_from_slice(&c[from..from + out.len()]);
            }
            Ok(())
        };
        if pieces.len() > 1 {
            use rayon::prelude::*;
            pieces.into_par_iter().try_for_each(piece)
        } else {
            pieces.into_iter().try_for_each(piece)
        }
    }

    fn map(&self, range: ByteRange) -> Result<Vec<MapRange>> {
        let end = range.end().min(self.index.capacity);
        let cs = self.index.chunk_size;
        let mut out = Vec::new();
        let mut pos = range.start;
        while pos < end {
            let i = (pos / cs) as usize;
            let (cstart, clen) = self.index.chunk_range(i);
            let take = (cstart + clen).min(end) - pos;
            let state = if self.index.digests[i].is_zero() {
                BlockState::Unallocated
            } else {
                BlockState::Data
            };
            push_run(
                &mut out,
                MapRange {
                    start: pos,
                    length: take,
                    state,
                    depth: 0,
                },
            );
            pos += take;
        }
        Ok(out)
    }
}

/// An image opened for reading, with the repository's shared lock held for as long as it
/// lives (so gc waits).
pub struct OpenImage {
    /// The image's content.
    pub disk: ImageDisk,
    /// The image's directory (its name in messages).
    pub dir: std::path::PathBuf,
    _lock: crate::lock::RepoLock,
}

impl OpenImage {
    /// Opens the image `what` (id, unique id prefix, or backup name for its newest image)
    /// of `repo`; `on_wait` is called if gc holds the repository.
    pub fn open(repo: &Repo, what: &str, on_wait: Option<&dyn Fn()>) -> Result<Self> {
        let repo = repo.clone();
        let lock = repo.lock(crate::lock::Mode::Shared, on_wait)?;
        let entry = repo.find_image(what)?;
        let index = repo.read_index(&entry)?;
        Ok(OpenImage {
            disk: ImageDisk::new(repo, index),
            dir: entry.dir,
            _lock: lock,
        })
    }
}
