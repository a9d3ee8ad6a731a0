//! The `$MFT` read as what it is, one stream of file records laid out by `$MFT`'s own
//! data runs, and a fast scan of every record's header and `$FILE_NAME`s.
//!
//! **Records that straddle two runs.** The `ntfs` crate (0.4) finds record N by seeking
//! `$MFT`'s `$DATA` to `N × record size`, takes the volume position of that first byte, and
//! reads the whole record contiguously from there (`Ntfs::file` → `NtfsFile::new`). When
//! a run of `$MFT` ends inside a record (clusters smaller than a record, and an `$MFT` that
//! grew in pieces: common on volumes Windows has used for a while), the record's second
//! half is read from whatever follows the run on disk, and the update-sequence check fails
//! ("should match the Update Sequence Number … but they are [0, 0]"). The crate offers no
//! way to build an `NtfsFile` from bytes read elsewhere, so [`crate::ntfs::Reader`] — the
//! `Read + Seek` the crate reads the volume through — recognises that one read (a record's
//! size, starting at a record boundary of an `$MFT` run, running past the run's end) and
//! serves it through the runs ([`Mft::straddling_record_at`]). Every other read the crate
//! makes stays within one data run, so nothing else is affected. Attribute positions the
//! crate reports for such a record are "record start + offset", not volume positions:
//! code that needs a header byte reads it from [`Mft::record`] instead.
//!
//! **The scan** ([`Mft::scan`]) reads `$MFT` sequentially, a chunk at a time, and keeps
//! for every record its in-use and directory flags and sequence number, and for every base
//! record in use the parents its `$FILE_NAME`s name: what listing orphans needs (records
//! in use that no directory index names, as TSK finds them).
//!
//! Limits: an `$MFT` whose `$DATA` continues in extension records (an `$ATTRIBUTE_LIST` in
//! record 0: only on extremely fragmented volumes) is read up to the end of the runs held
//! in record 0, as far as the crate reads it too.
//!
//! Sources: the `ntfs` crate 0.4 source (`ntfs.rs`, `file.rs`, `record.rs`: how it locates
//! and fixes up records); the Linux-NTFS documentation (flatcap.github.io/linux-ntfs: FILE
//! record header, attribute header, `$FILE_NAME`).

use crate::slice::Slice;
use diskray_core::{Error, Result};
use ntfs::attribute_value::NtfsAttributeValue;
use ntfs::{Ntfs as NtfsVolume, NtfsAttributeType};
use std::io::{Read, Seek};

/// Most records scanned (bounds hostile `$MFT` sizes: 16 Mi records is a 16 GiB `$MFT`).
pub(crate) const MAX_RECORDS: u64 = 1 << 24;
/// Most runs kept for `$MFT` (record 0 holds a few hundred at most; bounds hostile data).
const MAX_RUNS: usize = 1 << 16;
/// Bytes of `$MFT` read per step of the scan.
const SCAN_CHUNK: u64 = 1 << 20;
/// Largest record size accepted (NTFS uses 1 or 4 KiB; the crate accepts up to 64 KiB).
const MAX_RECORD_SIZE: u64 = 1 << 16;
/// The update-sequence stride: every 512 bytes of a record end with the sequence number.
const USA_STRIDE: usize = 512;

/// Record header flag: in use.
const FLAG_IN_USE: u16 = 0x01;
/// Record header flag: a directory.
const FLAG_DIRECTORY: u16 = 0x02;
/// Attribute type of `$FILE_NAME`.
const ATTR_FILE_NAME: u32 = 0x30;
/// Attribute list end marker.
const ATTR_END: u32 = 0xFFFF_FFFF;
/// `$FILE_NAME` namespace of a DOS 8.3 alias (the file has another, real name).
const NAMESPACE_DOS: u8 = 2;

/// One run of `$MFT`'s `$DATA`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    /// Offset of the run's first byte in `$MFT`.
    pub mft: u64,
    /// Volume byte where it lies.
    pub at: u64,
    /// Length in bytes.
    pub len: u64,
}

/// `$MFT`'s layout: where each of its bytes lies on the volume.
#[derive(Debug, Clone)]
pub(crate) struct Mft {
    /// In `$MFT` order, contiguous from offset 0.
    runs: Vec<Run>,
    /// Indices into `runs`, sorted by volume position (for [`Mft::straddling_record_at`]).
    by_disk: Vec<usize>,
    /// Bytes per record.
    record_size: u64,
    /// `$MFT`'s data size, in bytes.
    data_size: u64,
}

/// What the scan keeps of a record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RecordState {
    /// The record has a valid `FILE` header and update sequence.
    pub valid: bool,
    /// In use.
    pub in_use: bool,
    /// A directory.
    pub dir: bool,
    /// Its sequence number.
    pub seq: u16,
}

/// A `$FILE_NAME` of a base record in use: the record it names as its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ParentRef {
    /// The parent's record number.
    pub record: u64,
    /// The parent's sequence number, as the reference gives it.
    pub seq: u16,
}

/// One `$FILE_NAME` link of a base record in use: child → parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Link {
    /// The record the name points to as its parent.
    pub parent: u64,
    /// The parent's sequence number, as the reference gives it.
    pub parent_seq: u16,
    /// The record holding the name.
    pub child: u64,
}

/// The result of [`Mft::scan`].
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Per record number (index), its state.
    pub records: Vec<RecordState>,
    /// The links of every base record in use, sorted by parent (each once).
    pub links: Vec<Link>,
    /// See [`Scan::find_orphans`].
    pub orphans: Vec<u64>,
}

impl Scan {
    /// `p` is a directory in use at the sequence number `p` gives.
    pub fn live_dir(&self, p: &ParentRef) -> bool {
        self.records
            .get(p.record as usize)
            .is_some_and(|s| s.valid && s.in_use && s.dir && s.seq == p.seq)
    }

    /// The records that name `parent` (at sequence number `seq`) as their parent.
    pub fn children(&self, parent: u64, seq: u16) -> impl Iterator<Item = u64> + '_ {
        let from = self.links.partition_point(|l| l.parent < parent);
        self.links[from..]
            .iter()
            .take_while(move |l| l.parent == parent)
            .filter(move |l| l.parent_seq == seq)
            .map(|l| l.child)
    }

    /// Records in use none of whose names points to a directory in use at the sequence
    /// number it gives (the parent was deleted, reused, or is not a directory): no
    /// directory can list them. Sorted.
    fn find_orphans(&self) -> Vec<u64> {
        let mut placed = std::collections::HashSet::new();
        let mut lost = Vec::new();
        for l in self.links.iter().filter(|l| l.parent != l.child) {
            let p = ParentRef {
                record: l.parent,
                seq: l.parent_seq,
            };
            if self.live_dir(&p) {
                placed.insert(l.child);
            } else {
                lost.push(l.child);
            }
        }
        lost.retain(|c| !placed.contains(c));
        lost.sort_unstable();
        lost.dedup();
        lost
    }
}

/// Why `$MFT`'s runs could not be found (the caller names the volume and offset).
#[derive(Debug, thiserror::Error)]
pub(crate) enum MftError {
    /// A record size outside the bounds.
    #[error("NTFS file records of {0} bytes")]
    RecordSize(u64),
    /// Record 0 could not be read by the `ntfs` crate.
    #[error("NTFS $MFT record: {0}")]
    Record0(String),
    /// Record 0 has no unnamed `$DATA`.
    #[error("NTFS $MFT has no $DATA in record 0")]
    NoData,
    /// Its `$DATA` could not be read.
    #[error("NTFS $MFT $DATA: {0}")]
    Data(String),
    /// Its `$DATA` is resident (it never is on a real volume).
    #[error("NTFS $MFT $DATA is resident")]
    Resident,
}

/// Why a record's update sequence does not check out.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FixupError {
    /// No `FILE` signature.
    #[error("no FILE signature")]
    NoSignature,
    /// An update sequence array of no entries.
    #[error("an empty update sequence array")]
    EmptyArray,
    /// The array, or the strides it covers, run past the record.
    #[error(
        "update sequence array of {count} entries at {at} does not fit a record of {record} bytes"
    )]
    ArrayOutside {
        /// Entries.
        count: usize,
        /// Its offset.
        at: usize,
        /// The record's size.
        record: usize,
    },
    /// A stride does not end in the update sequence number.
    #[error(
        "the bytes at {at} should match the update sequence number {expected:?} but are {found:?}"
    )]
    Mismatch {
        /// The stride end's offset.
        at: usize,
        /// The update sequence number.
        expected: [u8; 2],
        /// What the stride ends in.
        found: [u8; 2],
    },
}

impl Mft {
    /// `$MFT`'s runs, from the unnamed `$DATA` in record 0 itself (as the crate finds
    /// records: record 0 is read at the `$MFT` position the boot sector gives, the start of
    /// the first run). The runs end at the first that is sparse, leaves the volume
    /// (`volume_len` bytes) or is past [`MAX_RUNS`]: records beyond are not read.
    pub(crate) fn load<T: Read + Seek>(
        volume: &NtfsVolume,
        volume_len: u64,
        fs: &mut T,
    ) -> Result<Mft, MftError> {
        let record_size = volume.file_record_size() as u64;
        if record_size < USA_STRIDE as u64 || record_size > MAX_RECORD_SIZE {
            return Err(MftError::RecordSize(record_size));
        }
        let mft = volume
            .file(fs, 0)
            .map_err(|e| MftError::Record0(e.to_string()))?;
        let attr = mft
            .attributes_raw()
            .filter_map(|a| a.ok())
            .find(|a| {
                a.ty().ok() == Some(NtfsAttributeType::Data) && a.name().is_ok_and(|n| n.is_empty())
            })
            .ok_or(MftError::NoData)?;
        let data_size = attr.value_length();
        let value = attr.value(fs).map_err(|e| MftError::Data(e.to_string()))?;
        let NtfsAttributeValue::NonResident(v) = value else {
            return Err(MftError::Resident);
        };
        let mut runs = Vec::new();
        let mut mft_off = 0u64;
        for run in v.data_runs() {
            let Ok(run) = run else { break };
            let len = run.allocated_size();
            let Some(at) = run.data_position().value().map(|p| p.get()) else {
                break;
            };
            if at.checked_add(len).is_none_or(|end| end > volume_len) || runs.len() >= MAX_RUNS {
                break;
            }
            runs.push(Run {
                mft: mft_off,
                at,
                len,
            });
            mft_off = mft_off.saturating_add(len);
        }
        Ok(Mft::from_runs(runs, record_size, data_size))
    }

    /// An `$MFT` of `runs` (contiguous in `$MFT` order from offset 0).
    pub(crate) fn from_runs(runs: Vec<Run>, record_size: u64, data_size: u64) -> Mft {
        let mut by_disk: Vec<usize> = (0..runs.len()).collect();
        by_disk.sort_by_key(|&i| runs[i].at);
        Mft {
            runs,
            by_disk,
            record_size,
            data_size,
        }
    }

    /// Records `$MFT` holds (from its data size, bounded by [`MAX_RECORDS`]).
    pub(crate) fn records(&self) -> u64 {
        let mapped = self.runs.last().map_or(0, |r| r.mft + r.len);
        (self.data_size.min(mapped) / self.record_size).min(MAX_RECORDS)
    }

    /// One past the last record `$MFT`'s data size holds: no record has this number (TSK
    /// gives it to its virtual `$OrphanFiles` directory).
    pub(crate) fn end_record(&self) -> u64 {
        self.data_size / self.record_size
    }

    /// The run holding `$MFT` offset `off`.
    fn run_of(&self, off: u64) -> Option<&Run> {
        let i = self.runs.partition_point(|r| r.mft + r.len <= off);
        self.runs.get(i).filter(|r| r.mft <= off)
    }

    /// Volume byte of `$MFT` offset `off`.
    pub(crate) fn position(&self, off: u64) -> Option<u64> {
        self.run_of(off).map(|r| r.at + (off - r.mft))
    }

    /// Volume byte of record `n`'s first byte.
    pub(crate) fn record_position(&self, n: u64) -> Option<u64> {
        self.position(n.checked_mul(self.record_size)?)
    }

    /// Reads `buf.len()` bytes of `$MFT` from offset `off`, across runs.
    pub(crate) fn read(&self, slice: &Slice, mut off: u64, buf: &mut [u8]) -> Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let Some(run) = self.run_of(off) else {
                return Err(slice.corrupt(
                    self.runs.first().map_or(0, |r| r.at),
                    format!("NTFS $MFT byte {off} lies past its last data run"),
                ));
            };
            let n = ((run.mft + run.len - off) as usize).min(buf.len() - done);
            slice.read_at(&mut buf[done..done + n], run.at + (off - run.mft))?;
            done += n;
            off += n as u64;
        }
        Ok(())
    }

    /// If a read of `len` bytes at volume byte `pos` is the read of a whole record that
    /// starts in an `$MFT` run and continues past that run's end, the record's `$MFT`
    /// offset (the crate reads records contiguously: see the module docs).
    pub(crate) fn straddling_record_at(&self, pos: u64, len: usize) -> Option<u64> {
        if len as u64 != self.record_size {
            return None;
        }
        let i = self.by_disk.partition_point(|&i| self.runs[i].at <= pos);
        let run = &self.runs[*self.by_disk.get(i.checked_sub(1)?)?];
        let off = run.mft + (pos - run.at);
        let inside = pos < run.at + run.len;
        let crosses = pos.saturating_add(self.record_size) > run.at + run.len;
        (inside && crosses && off.is_multiple_of(self.record_size)).then_some(off)
    }

    /// Record `n`'s bytes with the update sequence applied (the crate's checks: `FILE`
    /// signature, sequence array inside the record, every stride ending in the number).
    pub(crate) fn record(&self, slice: &Slice, n: u64) -> Result<Vec<u8>> {
        let at = self.record_position(n).unwrap_or(0);
        let off = n
            .checked_mul(self.record_size)
            .filter(|_| n < self.records())
            .ok_or_else(|| {
                slice.corrupt(at, format!("NTFS file record {n}: past the end of $MFT"))
            })?;
        let mut buf = vec![0u8; self.record_size as usize];
        self.read(slice, off, &mut buf)?;
        fixup(&mut buf).map_err(|why| slice.corrupt(at, format!("NTFS file record {n}: {why}")))?;
        Ok(buf)
    }

    /// Every record's state and the `$FILE_NAME` links of base records in use: `$MFT`
    /// read in chunks of [`SCAN_CHUNK`]; records that fail their checks, or that a chunk
    /// read could not reach, are kept as not valid.
    pub(crate) fn scan(&self, slice: &Slice) -> Scan {
        let rs = self.record_size;
        let total = self.records();
        let per_chunk = (SCAN_CHUNK / rs).max(1);
        let mut out = Scan::default();
        let mut buf = Vec::new();
        let mut first = 0u64;
        while first < total {
            let count = per_chunk.min(total - first);
            buf.resize((count * rs) as usize, 0);
            if self.read(slice, first * rs, &mut buf).is_err() {
                buf.fill(0);
            }
            for (k, rec) in buf.chunks_exact_mut(rs as usize).enumerate() {
                let n = first + k as u64;
                let Some(info) = parse_record(rec) else {
                    out.records.push(RecordState::default());
                    continue;
                };
                out.records.push(info.state);
                if info.state.in_use && info.base == 0 {
                    for p in info.parents {
                        out.links.push(Link {
                            parent: p.record,
                            parent_seq: p.seq,
                            child: n,
                        });
                    }
                }
            }
            first += count;
        }
        out.links.sort_unstable();
        out.links.dedup();
        out.orphans = out.find_orphans();
        out
    }
}

/// What [`parse_record`] reads of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordInfo {
    /// Flags and sequence number.
    pub state: RecordState,
    /// The base record's number for an extension record, else 0.
    pub base: u64,
    /// The parents named by its resident non-DOS `$FILE_NAME`s.
    pub parents: Vec<ParentRef>,
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Applies a record's update sequence in place, with the `ntfs` crate's checks (so that
/// the scan accepts what the crate reads): the `FILE` signature, the array and the strides
/// it covers inside the record, each covered stride ending in the sequence number; then
/// the saved bytes are put back.
pub(crate) fn fixup(rec: &mut [u8]) -> std::result::Result<(), FixupError> {
    if rec.get(0..4) != Some(b"FILE") {
        return Err(FixupError::NoSignature);
    }
    let usa = le16(rec, 4).unwrap_or(0) as usize;
    let count = le16(rec, 6).unwrap_or(0) as usize;
    let strides = count.checked_sub(1).ok_or(FixupError::EmptyArray)?;
    if usa + 2 * count > rec.len() || strides * USA_STRIDE > rec.len() {
        return Err(FixupError::ArrayOutside {
            count,
            at: usa,
            record: rec.len(),
        });
    }
    let number = [rec[usa], rec[usa + 1]];
    for i in 0..strides {
        let end = (i + 1) * USA_STRIDE - 2;
        if rec[end..end + 2] != number {
            return Err(FixupError::Mismatch {
                at: end,
                expected: number,
                found: [rec[end], rec[end + 1]],
            });
        }
        let saved = usa + 2 * (i + 1);
        rec[end] = rec[saved];
        rec[end + 1] = rec[saved + 1];
    }
    Ok(())
}

/// The flags, sequence number, base reference and `$FILE_NAME` parents of a raw record
/// (update sequence applied here), or `None` when it is not a valid record. Every offset
/// is checked against the record; a damaged attribute ends the walk.
pub(crate) fn parse_record(rec: &mut [u8]) -> Option<RecordInfo> {
    fixup(rec).ok()?;
    let flags = le16(rec, 0x16)?;
    let state = RecordState {
        valid: true,
        in_use: flags & FLAG_IN_USE != 0,
        dir: flags & FLAG_DIRECTORY != 0,
        seq: le16(rec, 0x10)?,
    };
    let base = le64(rec, 0x20)? & 0xFFFF_FFFF_FFFF;
    let used = (le32(rec, 0x18)? as usize).min(rec.len());
    let mut parents = Vec::new();
    let mut at = le16(rec, 0x14)? as usize;
    while at + 8 <= used {
        let ty = le32(rec, at)?;
        if ty == ATTR_END {
            break;
        }
        let len = le32(rec, at + 4)? as usize;
        if len < 0x18 || at + len > used {
            break;
        }
        let resident = rec[at + 8] == 0;
        if ty == ATTR_FILE_NAME && resident {
            let vlen = le32(rec, at + 0x10)? as usize;
            let voff = le16(rec, at + 0x14)? as usize;
            if voff + vlen <= len && vlen >= 0x42 {
                let v = &rec[at + voff..at + voff + vlen];
                let reference = le64(v, 0)?;
                if v[0x41] != NAMESPACE_DOS {
                    let p = ParentRef {
                        record: reference & 0xFFFF_FFFF_FFFF,
                        seq: (reference >> 48) as u16,
                    };
                    if !parents.contains(&p) {
                        parents.push(p);
                    }
                }
            }
        }
        at += len;
    }
    Some(RecordInfo {
        state,
        base,
        parents,
    })
}

/// A crate error about record `n` as a typed error at its volume position.
pub(crate) fn record_error(slice: &Slice, mft: Option<&Mft>, n: u64, e: ntfs::NtfsError) -> Error {
    let at = mft.and_then(|m| m.record_position(n)).unwrap_or(0);
    slice.corrupt(at, format!("NTFS file record {n}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1 KiB record in use with one `$FILE_NAME` naming `parent`, update sequence 7.
    fn record(parent: u64, pseq: u16, namespace: u8) -> Vec<u8> {
        let mut r = vec![0u8; 1024];
        r[0..4].copy_from_slice(b"FILE");
        r[4..6].copy_from_slice(&0x30u16.to_le_bytes());
        r[6..8].copy_from_slice(&3u16.to_le_bytes());
        r[0x10..0x12].copy_from_slice(&5u16.to_le_bytes());
        r[0x14..0x16].copy_from_slice(&0x38u16.to_le_bytes());
        r[0x16..0x18].copy_from_slice(&1u16.to_le_bytes());
        let a = 0x38;
        let vlen = 0x42 + 2;
        let len = (0x18 + vlen + 7) & !7;
        r[a..a + 4].copy_from_slice(&0x30u32.to_le_bytes());
        r[a + 4..a + 8].copy_from_slice(&(len as u32).to_le_bytes());
        r[a + 0x10..a + 0x14].copy_from_slice(&(vlen as u32).to_le_bytes());
        r[a + 0x14..a + 0x16].copy_from_slice(&0x18u16.to_le_bytes());
        let v = a + 0x18;
        let reference = parent | (pseq as u64) << 48;
        r[v..v + 8].copy_from_slice(&reference.to_le_bytes());
        r[v + 0x40] = 1;
        r[v + 0x41] = namespace;
        r[v + 0x42] = b'x';
        let end = a + len;
        r[end..end + 4].copy_from_slice(&ATTR_END.to_le_bytes());
        r[0x18..0x1C].copy_from_slice(&((end + 8) as u32).to_le_bytes());
        // update sequence: number 7, saved bytes = the strides' real last bytes
        r[0x30..0x32].copy_from_slice(&7u16.to_le_bytes());
        for i in 0..2 {
            let e = (i + 1) * 512 - 2;
            let (s0, s1) = (r[e], r[e + 1]);
            r[0x32 + 2 * i] = s0;
            r[0x33 + 2 * i] = s1;
            r[e..e + 2].copy_from_slice(&7u16.to_le_bytes());
        }
        r
    }

    #[test]
    fn parses_a_record() {
        let mut r = record(42, 3, 1);
        let info = parse_record(&mut r).unwrap();
        assert!(info.state.valid && info.state.in_use && !info.state.dir);
        assert_eq!(info.state.seq, 5);
        assert_eq!(info.base, 0);
        assert_eq!(info.parents, vec![ParentRef { record: 42, seq: 3 }]);
        // DOS aliases are skipped
        let mut r = record(42, 3, NAMESPACE_DOS);
        assert!(parse_record(&mut r).unwrap().parents.is_empty());
    }

    #[test]
    fn refuses_bad_update_sequences() {
        let mut r = record(1, 1, 1);
        r[510] ^= 1;
        assert!(fixup(&mut r)
            .unwrap_err()
            .to_string()
            .contains("update sequence number"));
        let mut r = record(1, 1, 1);
        r[6] = 200; // strides past the record
        assert!(fixup(&mut r).is_err());
        let mut r = record(1, 1, 1);
        r[6] = 0; // no sequence number
        assert!(fixup(&mut r).is_err());
        let mut r = record(1, 1, 1);
        r[4..6].copy_from_slice(&0x3FFu16.to_le_bytes());
        assert!(fixup(&mut r).is_err());
        let mut r = record(1, 1, 1);
        r[0] = b'B';
        assert!(parse_record(&mut r).is_none());
        assert!(fixup(&mut [0u8; 3]).is_err());
    }

    #[test]
    fn hostile_attributes_end_the_walk() {
        // every byte of the attribute area set to each value: no panic, no endless loop
        for b in [0u8, 1, 0x18, 0x30, 0x7F, 0xFF] {
            let mut r = record(1, 1, 1);
            for x in &mut r[0x38..0x100] {
                *x = b;
            }
            let _ = parse_record(&mut r);
        }
        // an attribute of length 0 would loop forever if taken at its word
        let mut r = record(1, 1, 1);
        r[0x3C..0x40].copy_from_slice(&0u32.to_le_bytes());
        assert!(parse_record(&mut r).unwrap().parents.is_empty());
        // a value that claims to run past its attribute
        let mut r = record(1, 1, 1);
        r[0x38 + 0x10..0x38 + 0x14].copy_from_slice(&5000u32.to_le_bytes());
        assert!(parse_record(&mut r).unwrap().parents.is_empty());
        // bytes-in-use past the record, first attribute past the record
        let mut r = record(1, 1, 1);
        r[0x18..0x1C].copy_from_slice(&u32::MAX.to_le_bytes());
        r[0x14..0x16].copy_from_slice(&0xFFFFu16.to_le_bytes());
        assert!(parse_record(&mut r).unwrap().parents.is_empty());
    }

    #[test]
    fn maps_offsets_across_runs() {
        // 512-byte clusters: run 0 holds 3 clusters (a record boundary falls inside run 1's
        // first cluster), run 1 lies before run 0 on disk
        let m = Mft::from_runs(
            vec![
                Run {
                    mft: 0,
                    at: 10_240,
                    len: 1536,
                },
                Run {
                    mft: 1536,
                    at: 2048,
                    len: 2560,
                },
            ],
            1024,
            4096,
        );
        assert_eq!(m.records(), 4);
        assert_eq!(m.record_position(0), Some(10_240));
        assert_eq!(m.record_position(1), Some(11_264));
        assert_eq!(m.record_position(2), Some(2048 + 512));
        assert_eq!(m.record_position(4), None);
        // record 1 straddles: a 1 KiB read at its start is served through the runs
        assert_eq!(m.straddling_record_at(11_264, 1024), Some(1024));
        // other reads are not
        assert_eq!(m.straddling_record_at(10_240, 1024), None);
        assert_eq!(m.straddling_record_at(11_264, 512), None);
        assert_eq!(m.straddling_record_at(11_776, 1024), None);
        assert_eq!(m.straddling_record_at(2560, 1024), None);
        assert_eq!(m.straddling_record_at(100, 1024), None);
        assert_eq!(m.straddling_record_at(u64::MAX - 10, 1024), None);
    }
}
