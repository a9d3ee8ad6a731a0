//! The fixed index of an image: one digest per chunk, after the Proxmox Backup Server
//! `.fidx` (`docs/formats.md` §5.2), with our own magic and a trailing checksum.
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 8 | magic `DRIDX001`, or `DRIDX002` when m > 0 |
//! | 8 | 8 | capacity (image bytes), little-endian |
//! | 16 | 8 | chunk size (power of two), little-endian |
//! | 24 | 8 | n = ceil(capacity / chunk size) |
//! | 32 | 8 | m = number of patched entries (0 in a `DRIDX001` index) |
//! | 40 | 24 | reserved, zero |
//! | 64 | 32·n | digests; chunk i covers `[i·cs, min((i+1)·cs, capacity))` |
//! | 64+32n | 40·m | patched entries, by increasing entry number: entry (u64), digest of its base (32) |
//! | 64+32n+40m | 32 | SHA-256 of every byte before it |
//!
//! The file size must be exactly `96 + 32n + 40m`. A patched entry's digest names a
//! patch ([`crate::patch`]) over the chunk its base digest names; an index without patches
//! is written as `DRIDX001`, so that older diskray reads it, and one with patches as
//! `DRIDX002`, which older diskray refuses by its magic.

use crate::chunk::{Digest, ZERO_DIGEST};
use crate::{MAX_CHUNK_SIZE, MIN_CHUNK_SIZE};
use diskray_core::{Error, Fields, Result};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// Magic of an index file without patched entries.
pub const MAGIC: [u8; 8] = *b"DRIDX001";
/// Magic of an index file with patched entries.
pub const MAGIC_PATCHED: [u8; 8] = *b"DRIDX002";
/// Bytes of one digest entry.
const DIGEST_LEN: usize = 32;
/// Bytes of one patched-entry record: entry number and base digest.
const PATCH_LEN: usize = 40;
/// Bytes before the first digest.
pub const HEADER_LEN: u64 = 64;
/// Most chunks one image may have: 32 Mi entries is 1 GiB of digests in memory, 32 TiB
/// at 1 MiB chunks (VMDK's own limit is 62 TiB; larger chunks cover it).
pub const MAX_ENTRIES: u64 = 1 << 25;

/// Byte offsets of the index header's fields.
mod off {
    /// The magic, 8 bytes.
    pub const MAGIC: usize = 0;
    /// Capacity (u64).
    pub const CAPACITY: usize = 8;
    /// Chunk size (u64).
    pub const CHUNK_SIZE: usize = 16;
    /// Number of entries (u64).
    pub const ENTRIES: usize = 24;
    /// Number of patched entries (u64).
    pub const PATCHES: usize = 32;
    /// Reserved bytes, zero, up to the first digest.
    pub const RESERVED: usize = 40;
}

/// An image's chunk list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedIndex {
    /// Image size in bytes.
    pub capacity: u64,
    /// Bytes per chunk (the last may be shorter).
    pub chunk_size: u64,
    /// One digest per chunk.
    pub digests: Vec<Digest>,
    /// The entries whose digest names a patch, with the digest of the patch's base.
    pub patches: BTreeMap<usize, Digest>,
}

/// Why an image geometry (capacity, chunk size) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GeometryError {
    /// The chunk size is not a power of two within the bounds.
    #[error("chunk size {0} is not a power of two between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE}")]
    ChunkSize(u64),
    /// Too many chunks for one index.
    #[error("{capacity} bytes in {chunk_size}-byte chunks is {chunks} chunks, over the bound of {MAX_ENTRIES}; use larger chunks")]
    TooManyChunks {
        /// Image size.
        capacity: u64,
        /// Chunk size.
        chunk_size: u64,
        /// Chunks that would need.
        chunks: u64,
    },
}

/// A refused geometry is a chunk size the user (or the repository's configuration) chose.
impl From<GeometryError> for Error {
    fn from(e: GeometryError) -> Error {
        match e {
            GeometryError::ChunkSize(size) => Error::invalid(
                "chunk size",
                size,
                format!("not a power of two between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE}"),
            ),
            GeometryError::TooManyChunks { chunk_size, .. } => {
                Error::invalid("chunk size", chunk_size, e.to_string())
            }
        }
    }
}

/// The byte range chunk `i` of a disk of `capacity` bytes in chunks of `chunk_size` covers,
/// as (start, length); `i` is below [`chunk_count`].
pub fn chunk_range(capacity: u64, chunk_size: u64, i: usize) -> (u64, u64) {
    let start = i as u64 * chunk_size;
    (start, chunk_size.min(capacity - start))
}

/// Number of chunks of an image, or why the geometry is refused.
pub fn chunk_count(capacity: u64, chunk_size: u64) -> std::result::Result<u64, GeometryError> {
    if !chunk_size.is_power_of_two() || !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
        return Err(GeometryError::ChunkSize(chunk_size));
    }
    let chunks = capacity.div_ceil(chunk_size);
    if chunks > MAX_ENTRIES {
        return Err(GeometryError::TooManyChunks {
            capacity,
            chunk_size,
            chunks,
        });
    }
    Ok(chunks)
}

impl FixedIndex {
    /// An index of zero chunks.
    pub fn zeros(capacity: u64, chunk_size: u64) -> Result<FixedIndex> {
        let n = chunk_count(capacity, chunk_size)?;
        Ok(FixedIndex {
            capacity,
            chunk_size,
            digests: vec![ZERO_DIGEST; n as usize],
            patches: BTreeMap::new(),
        })
    }

    /// The base of entry `i` when it is a patch.
    pub fn base_of(&self, i: usize) -> Option<Digest> {
        self.patches.get(&i).copied()
    }

    /// Every stored chunk the image needs: its non-zero digests and its patches' bases
    /// (with repeats).
    pub fn needed(&self) -> impl Iterator<Item = Digest> + '_ {
        self.digests
            .iter()
            .chain(self.patches.values())
            .copied()
            .filter(|d| !d.is_zero())
    }

    /// The byte range chunk `i` covers, as (start, length).
    pub fn chunk_range(&self, i: usize) -> (u64, u64) {
        chunk_range(self.capacity, self.chunk_size, i)
    }

    /// The serialised index.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            HEADER_LEN as usize
                + DIGEST_LEN * self.digests.len()
                + PATCH_LEN * self.patches.len()
                + 32,
        );
        out.extend_from_slice(if self.patches.is_empty() {
            &MAGIC
        } else {
            &MAGIC_PATCHED
        });
        out.extend_from_slice(&self.capacity.to_le_bytes());
        out.extend_from_slice(&self.chunk_size.to_le_bytes());
        out.extend_from_slice(&(self.digests.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.patches.len() as u64).to_le_bytes());
        out.extend_from_slice(&[0; 24]);
        for d in &self.digests {
            out.extend_from_slice(&d.0);
        }
        for (i, base) in &self.patches {
            out.extend_from_slice(&(*i as u64).to_le_bytes());
            out.extend_from_slice(&base.0);
        }
        let sum: [u8; 32] = Sha256::digest(&out).into();
        out.extend_from_slice(&sum);
        out
    }

    /// Parses an index file's bytes; `path` names it in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<FixedIndex> {
        if bytes.len() < HEADER_LEN as usize + 32 {
            return Err(Error::corrupt(
                path,
                0,
                format!("index of {} bytes is shorter than its header", bytes.len()),
            ));
        }
        let f = Fields::new(bytes, "index header", path, 0);
        let magic = f.array::<8>(off::MAGIC)?;
        if magic != MAGIC && magic != MAGIC_PATCHED {
            return Err(Error::corrupt(path, 0, "not a diskray index (bad magic)"));
        }
        let capacity = f.le64(off::CAPACITY)?;
        let chunk_size = f.le64(off::CHUNK_SIZE)?;
        let n = f.le64(off::ENTRIES)?;
        let m = f.le64(off::PATCHES)?;
        // Zero in every index written; anything else is another format or damage.
        if f.bytes(off::RESERVED, HEADER_LEN as usize - off::RESERVED)?
            .iter()
            .any(|b| *b != 0)
        {
            return Err(Error::corrupt(
                path,
                off::RESERVED as u64,
                "the index header's reserved bytes are not zero",
            ));
        }
        if (m > 0) != (magic == MAGIC_PATCHED) || m > n {
            return Err(Error::corrupt(
                path,
                off::PATCHES as u64,
                format!(
                    "{m} patched entries in a {} index of {n} entries",
                    String::from_utf8_lossy(&magic)
                ),
            ));
        }
        let want = chunk_count(capacity, chunk_size)
            .map_err(|e| Error::corrupt(path, off::CAPACITY as u64, e.to_string()))?;
        if n != want {
            return Err(Error::corrupt(
                path,
                off::ENTRIES as u64,
                format!(
                    "{n} entries, but {capacity} bytes in {chunk_size}-byte chunks need {want}"
                ),
            ));
        }
        let expect_len = HEADER_LEN + 32 * n + PATCH_LEN as u64 * m + 32;
        if bytes.len() as u64 != expect_len {
            return Err(Error::corrupt(
                path,
                0,
                format!("index is {} bytes, {expect_len} expected", bytes.len()),
            ));
        }
        let body = &bytes[..bytes.len() - 32];
        let sum: [u8; 32] = Sha256::digest(body).into();
        if sum[..] != bytes[bytes.len() - 32..] {
            return Err(Error::corrupt(
                path,
                body.len() as u64,
                "index checksum mismatch: the index is damaged",
            ));
        }
        let entries = f.sub(
            HEADER_LEN as usize,
            body.len() - HEADER_LEN as usize,
            "index entries",
        )?;
        let digests: Vec<Digest> = (0..n as usize)
            .map(|i| entries.array(i * DIGEST_LEN).map(Digest))
            .collect::<Result<_>>()?;
        let mut patches = BTreeMap::new();
        let table = DIGEST_LEN * n as usize;
        for j in 0..m as usize {
            let at = table + j * PATCH_LEN;
            let i = entries.le64(at)?;
            let after_previous = patches.last_key_value().is_none_or(|(p, _)| i > *p as u64);
            if i >= n || !after_previous || digests[i as usize].is_zero() {
                return Err(Error::corrupt(
                    path,
                    HEADER_LEN + at as u64,
                    format!(
                        "patched entry {i} is out of order, past the {n} entries or a zero chunk"
                    ),
                ));
            }
            patches.insert(i as usize, Digest(entries.array(at + 8)?));
        }
        Ok(FixedIndex {
            capacity,
            chunk_size,
            digests,
            patches,
        })
    }

    /// SHA-256 (hex) of the serialised index, recorded in the manifest.
    pub fn checksum_hex(bytes: &[u8]) -> String {
        Digest::of(bytes).hex()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let mut idx = FixedIndex::zeros(3 * (1 << 20) + 5, 1 << 20).unwrap();
        assert_eq!(idx.digests.len(), 4);
        idx.digests[1] = Digest::of(b"a");
        assert_eq!(idx.chunk_range(3), (3 << 20, 5));
        let b = idx.to_bytes();
        let p = Path::new("idx");
        assert_eq!(FixedIndex::from_bytes(&b, p).unwrap(), idx);
        for i in [0, 9, 17, 25, 70, b.len() - 1] {
            let mut bad = b.clone();
            bad[i] ^= 1;
            assert!(FixedIndex::from_bytes(&bad, p).is_err(), "flip at {i}");
        }
        assert!(FixedIndex::from_bytes(&b[..b.len() - 1], p).is_err());
        assert_eq!(&b[..8], &MAGIC);
    }

    #[test]
    fn patched_entries_round_trip_and_are_checked() {
        let mut idx = FixedIndex::zeros(4 << 20, 1 << 20).unwrap();
        idx.digests[1] = Digest::of(b"a");
        idx.digests[3] = Digest::of(b"b");
        idx.patches.insert(1, Digest::of(b"base"));
        idx.patches.insert(3, ZERO_DIGEST);
        let b = idx.to_bytes();
        let p = Path::new("idx");
        assert_eq!(&b[..8], &MAGIC_PATCHED);
        assert_eq!(FixedIndex::from_bytes(&b, p).unwrap(), idx);
        assert_eq!(idx.needed().count(), 3);
        // A record edited to name another entry: the checksum is fixed up so that only
        // the bounds can refuse it.
        let resum = |mut b: Vec<u8>| {
            let n = b.len() - 32;
            let sum: [u8; 32] = Sha256::digest(&b[..n]).into();
            b[n..].copy_from_slice(&sum);
            b
        };
        let records = 64 + 32 * 4;
        for (at, v) in [
            (records, 9u64),
            (records, 0),
            (records + 40, 1),
            (32, 0),
            (32, 5),
        ] {
            let mut bad = b.clone();
            bad[at..at + 8].copy_from_slice(&v.to_le_bytes());
            assert!(FixedIndex::from_bytes(&resum(bad), p).is_err(), "{at}={v}");
        }
        let mut reserved = b.clone();
        reserved[63] = 1;
        assert!(FixedIndex::from_bytes(&resum(reserved), p).is_err());
        let mut old_magic = b.clone();
        old_magic[..8].copy_from_slice(&MAGIC);
        assert!(FixedIndex::from_bytes(&resum(old_magic), p).is_err());
    }

    #[test]
    fn geometry_bounds() {
        assert!(chunk_count(1 << 40, 3 << 20).is_err());
        assert!(chunk_count(1 << 40, 1 << 10).is_err());
        assert!(chunk_count(u64::MAX, 1 << 20).is_err());
        assert_eq!(chunk_count(0, 1 << 20), Ok(0));
    }
}
