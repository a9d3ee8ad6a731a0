//! The `kept` file of an image: the byte ranges that were taken from the source disk
//! (used, metadata, unknown; everything else was stored as zeros). The next incremental
//! needs it to find blocks that became used since (invariant 2 of `docs/design.md`).
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 8 | magic `DRKEPT01` |
//! | 8 | 8 | n, little-endian |
//! | 16 | 16·n | (start, length) pairs, sorted, disjoint |
//! | 16+16n | 32 | SHA-256 of every byte before it |

use diskray_core::{ByteRange, Error, Fields, RangeSet, Result};
use sha2::{Digest as _, Sha256};
use std::path::Path;

/// Magic of a kept-ranges file.
pub const MAGIC: [u8; 8] = *b"DRKEPT01";
/// Most ranges read back: 64 Mi ranges is 1 GiB; a real used map has far fewer.
pub const MAX_RANGES: u64 = 1 << 26;

/// Byte offset of the range count (u64).
const COUNT_AT: usize = 8;
/// Byte offset of the first (start, length) pair.
const PAIRS_AT: usize = 16;
/// Bytes of one pair.
const PAIR_LEN: usize = 16;
/// Bytes of the trailing SHA-256.
const SUM_LEN: usize = 32;

/// Serialises a range set.
pub fn to_bytes(set: &RangeSet) -> Vec<u8> {
    let ranges: Vec<ByteRange> = set.ranges().collect();
    let mut out = Vec::with_capacity(16 + 16 * ranges.len() + 32);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&(ranges.len() as u64).to_le_bytes());
    for r in ranges {
        out.extend_from_slice(&r.start.to_le_bytes());
        out.extend_from_slice(&r.length.to_le_bytes());
    }
    let sum: [u8; 32] = Sha256::digest(&out).into();
    out.extend_from_slice(&sum);
    out
}

/// Parses a kept-ranges file, refusing any damage; every range must end by `capacity`.
pub fn from_bytes(bytes: &[u8], path: &Path, capacity: u64) -> Result<RangeSet> {
    if bytes.len() < PAIRS_AT + SUM_LEN || bytes[..MAGIC.len()] != MAGIC {
        return Err(Error::corrupt(path, 0, "not a diskray kept-ranges file"));
    }
    let f = Fields::new(bytes, "kept-ranges file", path, 0);
    let n = f.le64(COUNT_AT)?;
    if n > MAX_RANGES || bytes.len() as u64 != (PAIRS_AT + SUM_LEN) as u64 + PAIR_LEN as u64 * n {
        return Err(Error::corrupt(
            path,
            COUNT_AT as u64,
            format!("{n} ranges do not fit a {}-byte file", bytes.len()),
        ));
    }
    let body = &bytes[..bytes.len() - SUM_LEN];
    let sum: [u8; 32] = Sha256::digest(body).into();
    if sum[..] != bytes[bytes.len() - SUM_LEN..] {
        return Err(Error::corrupt(path, body.len() as u64, "checksum mismatch"));
    }
    let mut set = RangeSet::new();
    for i in 0..n as usize {
        let pair = f.sub(PAIRS_AT + PAIR_LEN * i, PAIR_LEN, "kept range")?;
        let (start, length) = (pair.le64(0)?, pair.le64(8)?);
        if start.checked_add(length).is_none_or(|end| end > capacity) {
            return Err(Error::corrupt(
                path,
                pair.at(),
                format!("range {start}+{length} ends past the capacity {capacity}"),
            ));
        }
        set.insert(ByteRange::new(start, length));
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut s = RangeSet::new();
        s.insert(ByteRange::new(10, 5));
        s.insert(ByteRange::new(100, 1));
        let b = to_bytes(&s);
        let back = from_bytes(&b, Path::new("k"), 200).unwrap();
        assert_eq!(
            back.ranges().collect::<Vec<_>>(),
            s.ranges().collect::<Vec<_>>()
        );
        assert!(from_bytes(&b, Path::new("k"), 50).is_err());
        let mut bad = b.clone();
        bad[20] ^= 1;
        assert!(from_bytes(&bad, Path::new("k"), 200).is_err());
    }
}
