//! A patched chunk: an incremental's changed chunk stored as its parent's chunk (the
//! *base*) plus the byte runs that differ, instead of as a whole new chunk
//! (`docs/repository.md`, "Patched chunks").
//!
//! Storing a whole chunk for a small change costs a decode of the parent's chunk and a
//! hash and compression of a whole chunk per changed block; a patch costs the changed
//! bytes only. A patch is stored as a chunk (same encoding, sealing and naming: its name
//! is the digest of the bytes below), and the image's index records which entries are
//! patches and their bases ([`crate::FixedIndex::patches`]), so gc and verify know every
//! chunk an image needs without reading its patches.
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 8 | magic `DRPATCH1` |
//! | 8 | 32 | digest of the base chunk ([`crate::ZERO_DIGEST`]: a base of zeros) |
//! | 40 | 4 | length of the chunk it makes, little-endian |
//! | 44 | 4 | n = number of runs, little-endian |
//! | 48 | 12·n | runs, sorted, disjoint, non-empty: offset in the chunk (u32), length (u32), kind (u32: 0 = the bytes follow in the data area, 1 = zeros) |
//! | 48+12n | … | data of the kind-0 runs, in run order; exactly their lengths' sum |
//!
//! A patch never has a patch as its base: a later change to the same chunk merges its runs
//! into a new patch over the same base ([`overlay`]), and when a patch would hold more
//! than [`MAX_PATCH_FRACTION`] of its chunk the chunk is stored whole instead.

use crate::chunk::Digest;
use diskray_core::Fields;

/// Magic of a patch.
pub const MAGIC: [u8; 8] = *b"DRPATCH1";
/// Bytes before the run table.
const HEADER_LEN: usize = 48;
/// Bytes of one run in the table.
const RUN_LEN: usize = 12;
/// Kind of a run whose bytes follow in the data area.
const KIND_DATA: u32 = 0;
/// Kind of a run of zeros.
const KIND_ZERO: u32 = 1;
/// A patch larger than 1/MAX_PATCH_FRACTION of its chunk is not written: the chunk is
/// stored whole. Restoring a patched chunk costs its base and its patch, so a patch
/// pays only while it is small against the chunk; half a chunk also bounds a patch's
/// encoded size by the chunk size, the bound every chunk read is checked against.
pub const MAX_PATCH_FRACTION: usize = 2;

/// Byte offsets of the header's fields.
mod off {
    /// The magic.
    pub const MAGIC: usize = 0;
    /// The base digest.
    pub const BASE: usize = 8;
    /// The chunk length.
    pub const LENGTH: usize = 40;
    /// The run count.
    pub const RUNS: usize = 44;
}

/// What fills a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fill {
    /// These bytes (as many as the run is long).
    Data(Vec<u8>),
    /// Zeros.
    Zero,
}

/// One run of a patch: `length` bytes at `at` in the chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// Offset in the chunk.
    pub at: u32,
    /// Bytes.
    pub length: u32,
    /// Its content.
    pub fill: Fill,
}

impl Run {
    /// One past its last byte.
    fn end(&self) -> u32 {
        self.at + self.length
    }

    /// The part `[from, to)` of it (chunk offsets, inside the run).
    fn part(&self, from: u32, to: u32) -> Run {
        let fill = match &self.fill {
            Fill::Zero => Fill::Zero,
            Fill::Data(d) => {
                Fill::Data(d[(from - self.at) as usize..(to - self.at) as usize].to_vec())
            }
        };
        Run {
            at: from,
            length: to - from,
            fill,
        }
    }
}

/// A parsed patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    /// The chunk it applies to.
    pub base: Digest,
    /// Length of the chunk it makes.
    pub length: u32,
    /// Its runs, sorted and disjoint.
    pub runs: Vec<Run>,
}

/// What is wrong with a patch's bytes; `offset` is where, in the patch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("patch at byte {offset}: {reason}")]
pub struct PatchError {
    /// Byte offset in the patch.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

fn bad(offset: usize, reason: impl Into<String>) -> PatchError {
    PatchError {
        offset: offset as u64,
        reason: reason.into(),
    }
}

impl Patch {
    /// Parses a patch, checking every bound: runs sorted, disjoint, non-empty and inside
    /// the chunk, and the data area exactly as long as its runs.
    pub fn parse(bytes: &[u8]) -> Result<Patch, PatchError> {
        let f = Fields::in_memory(bytes, "patch");
        let short = |_| {
            bad(
                bytes.len(),
                format!("{} bytes, shorter than the header", bytes.len()),
            )
        };
        f.need(HEADER_LEN).map_err(short)?;
        if f.array::<8>(off::MAGIC).map_err(short)? != MAGIC {
            return Err(bad(off::MAGIC, "not a patch (bad magic)"));
        }
        let base = Digest(f.array(off::BASE).map_err(short)?);
        let length = f.le32(off::LENGTH).map_err(short)?;
        let n = f.le32(off::RUNS).map_err(short)? as usize;
        // The table must fit in the bytes given before anything is allocated for it.
        let table_end = n
            .checked_mul(RUN_LEN)
            .and_then(|t| t.checked_add(HEADER_LEN))
            .filter(|e| *e <= bytes.len())
            .ok_or_else(|| {
                bad(
                    off::RUNS,
                    format!("{n} runs do not fit in {} bytes", bytes.len()),
                )
            })?;
        let mut runs = Vec::with_capacity(n);
        let mut data_at = table_end;
        let mut prev_end = 0u32;
        for i in 0..n {
            let at_field = HEADER_LEN + i * RUN_LEN;
            let (at, len, kind) = (
                f.le32(at_field).map_err(short)?,
                f.le32(at_field + 4).map_err(short)?,
                f.le32(at_field + 8).map_err(short)?,
            );
            let end = at
                .checked_add(len)
                .filter(|e| len > 0 && *e <= length && (i == 0 || at >= prev_end))
                .ok_or_else(|| {
                    bad(
                        at_field,
                        format!("run {i} [{at}, +{len}) is empty, overlaps the one before or leaves the {length}-byte chunk"),
                    )
                })?;
            prev_end = end;
            let fill = match kind {
                KIND_ZERO => Fill::Zero,
                KIND_DATA => {
                    let data = bytes.get(data_at..data_at + len as usize).ok_or_else(|| {
                        bad(
                            data_at,
                            format!("run {i}'s {len} bytes run past the patch's end"),
                        )
                    })?;
                    data_at += len as usize;
                    Fill::Data(data.to_vec())
                }
                k => return Err(bad(at_field + 8, format!("run {i} has unknown kind {k}"))),
            };
            runs.push(Run {
                at,
                length: len,
                fill,
            });
        }
        if data_at != bytes.len() {
            return Err(bad(
                data_at,
                format!("{} bytes after the last run's data", bytes.len() - data_at),
            ));
        }
        Ok(Patch { base, length, runs })
    }

    /// The patch's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.base.0);
        out.extend_from_slice(&self.length.to_le_bytes());
        out.extend_from_slice(&(self.runs.len() as u32).to_le_bytes());
        for r in &self.runs {
            let kind = match r.fill {
                Fill::Data(_) => KIND_DATA,
                Fill::Zero => KIND_ZERO,
            };
            for v in [r.at, r.length, kind] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        for r in &self.runs {
            if let Fill::Data(d) = &r.fill {
                out.extend_from_slice(d);
            }
        }
        out
    }

    /// Length of [`Patch::to_bytes`].
    pub fn encoded_len(&self) -> usize {
        let data: usize = self
            .runs
            .iter()
            .map(|r| match r.fill {
                Fill::Data(_) => r.length as usize,
                Fill::Zero => 0,
            })
            .sum();
        HEADER_LEN + RUN_LEN * self.runs.len() + data
    }

    /// True when it is small enough to be stored instead of its chunk.
    pub fn worth_storing(&self) -> bool {
        self.encoded_len() * MAX_PATCH_FRACTION <= self.length as usize
    }

    /// Writes the runs over `chunk` (the base's content, or zeros), which must be the
    /// patch's length (checked by the caller; runs outside `chunk` are skipped).
    pub fn apply(&self, chunk: &mut [u8]) {
        for r in &self.runs {
            let Some(out) = chunk.get_mut(r.at as usize..r.end() as usize) else {
                continue;
            };
            match &r.fill {
                Fill::Data(d) => out.copy_from_slice(d),
                Fill::Zero => out.fill(0),
            }
        }
    }

    /// True when its runs write every byte of the chunk, so that the chunk it makes does
    /// not depend on its base (runs are disjoint, as [`Patch::parse`] checks and
    /// [`overlay`] keeps them).
    pub fn covers_chunk(&self) -> bool {
        let mut end = 0u64;
        for r in &self.runs {
            if u64::from(r.at) != end {
                return false;
            }
            end += u64::from(r.length);
        }
        end == u64::from(self.length)
    }

    /// True when the chunk it makes is all zeros (a zero base and only zeros written).
    pub fn makes_zeros(&self) -> bool {
        self.base.is_zero()
            && self.runs.iter().all(|r| match &r.fill {
                Fill::Zero => true,
                Fill::Data(d) => diskray_core::is_zero(d),
            })
    }
}

/// `old` with `new` written over it: both sorted and disjoint; the result is too, with
/// adjacent runs of zeros joined.
pub fn overlay(old: &[Run], new: Vec<Run>) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::with_capacity(old.len() + new.len());
    let mut j = 0;
    for r in old {
        // The parts of `r` no new run covers.
        let mut pos = r.at;
        while j < new.len() && new[j].end() <= r.at {
            j += 1;
        }
        let mut k = j;
        while k < new.len() && new[k].at < r.end() {
            if new[k].at > pos {
                out.push(r.part(pos, new[k].at));
            }
            pos = pos.max(new[k].end());
            k += 1;
        }
        if pos < r.end() {
            out.push(r.part(pos, r.end()));
        }
    }
    out.extend(new);
    out.sort_by_key(|r| r.at);
    let mut joined: Vec<Run> = Vec::with_capacity(out.len());
    for r in out {
        match joined.last_mut() {
            Some(last) if last.end() == r.at && last.fill == Fill::Zero && r.fill == Fill::Zero => {
                last.length += r.length;
            }
            _ => joined.push(r),
        }
    }
    joined
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(at: u32, bytes: &[u8]) -> Run {
        Run {
            at,
            length: bytes.len() as u32,
            fill: Fill::Data(bytes.to_vec()),
        }
    }

    fn zero(at: u32, length: u32) -> Run {
        Run {
            at,
            length,
            fill: Fill::Zero,
        }
    }

    /// Applying an overlay equals applying the old runs, then the new ones.
    #[test]
    fn overlay_equals_applying_in_order() {
        let old = vec![data(2, b"abcdef"), zero(10, 6), data(20, b"xyz")];
        let new = vec![zero(0, 3), data(5, b"QRSTUVW"), data(15, b"!"), zero(21, 1)];
        let base: Vec<u8> = (1..=32).collect();
        let mut want = base.clone();
        Patch {
            base: Digest([1; 32]),
            length: 32,
            runs: old.clone(),
        }
        .apply(&mut want);
        Patch {
            base: Digest([1; 32]),
            length: 32,
            runs: new.clone(),
        }
        .apply(&mut want);
        let merged = Patch {
            base: Digest([1; 32]),
            length: 32,
            runs: overlay(&old, new),
        };
        let mut got = base.clone();
        merged.apply(&mut got);
        assert_eq!(got, want);
        let again = Patch::parse(&merged.to_bytes()).unwrap();
        assert_eq!(again, merged);
        assert!(again.runs.windows(2).all(|w| w[0].end() <= w[1].at));
    }

    #[test]
    fn hostile_patches_are_refused() {
        let p = Patch {
            base: Digest([7; 32]),
            length: 100,
            runs: vec![data(0, b"ab"), zero(50, 10), data(90, b"0123456789")],
        };
        let good = p.to_bytes();
        assert_eq!(Patch::parse(&good).unwrap(), p);
        // Every truncation is refused.
        for n in 0..good.len() {
            assert!(Patch::parse(&good[..n]).is_err(), "truncated to {n}");
        }
        let set = |at: usize, v: u32| {
            let mut b = good.clone();
            b[at..at + 4].copy_from_slice(&v.to_le_bytes());
            Patch::parse(&b)
        };
        assert!(set(44, u32::MAX).is_err(), "huge run count");
        assert!(set(44, 2).is_err(), "fewer runs than the data");
        assert!(set(48 + 12 + 12, 40).is_err(), "overlapping runs");
        assert!(set(48 + 4, 0).is_err(), "empty run");
        assert!(set(48 + 24 + 4, 11).is_err(), "run past the chunk");
        assert!(set(48 + 8, 7).is_err(), "unknown kind");
        assert!(set(40, 95).is_err(), "chunk shorter than a run");
        let mut longer = good.clone();
        longer.push(0);
        assert!(Patch::parse(&longer).is_err(), "trailing bytes");
        let mut magic = good;
        magic[0] ^= 1;
        assert!(Patch::parse(&magic).is_err());
    }

    #[test]
    fn size_bound_and_zero_detection() {
        let small = Patch {
            base: crate::ZERO_DIGEST,
            length: 1 << 20,
            runs: vec![zero(0, 4096), data(8192, &[0; 100])],
        };
        assert!(small.worth_storing());
        assert!(small.makes_zeros());
        let big = Patch {
            base: crate::ZERO_DIGEST,
            length: 1 << 20,
            runs: vec![data(0, &vec![1; 600 << 10])],
        };
        assert!(!big.worth_storing());
        assert!(!big.makes_zeros());
    }

    /// A patch covers its chunk only when its runs write every byte; then the chunk it
    /// makes is the same over any base.
    #[test]
    fn covers_chunk_only_when_every_byte_is_written() {
        let runs = vec![data(0, b"ab"), zero(2, 3), data(5, b"c")];
        let whole = Patch {
            base: Digest([7; 32]),
            length: 6,
            runs: runs.clone(),
        };
        assert!(whole.covers_chunk());
        let (mut over_a, mut over_b) = (vec![0xAA; 6], vec![0x55; 6]);
        whole.apply(&mut over_a);
        whole.apply(&mut over_b);
        assert_eq!(over_a, b"ab\0\0\0c");
        assert_eq!(over_a, over_b);
        let longer = Patch {
            length: 7,
            ..whole.clone()
        };
        assert!(!longer.covers_chunk(), "the last byte is the base's");
        let gap = Patch {
            runs: vec![data(0, b"ab"), data(3, b"xyz")],
            ..whole.clone()
        };
        assert!(!gap.covers_chunk(), "byte 2 is the base's");
        let late = Patch {
            runs: vec![data(1, b"abcde")],
            ..whole
        };
        assert!(!late.covers_chunk(), "byte 0 is the base's");
    }
}
