//! `diff` of two disks: the blocks that differ, past the shorter disk compared with zeros,
//! without reading ranges both maps declare zero; and its block-size bounds.

use diskray_changes::limits::{MAX_DIFF_BLOCK, MIN_DIFF_BLOCK};
use diskray_changes::{diff, parse, to_vsphere_json, Format};
use diskray_core::{BlockState, ByteRange, Error, MapRange, MemDisk, Result, VirtualDisk};
use std::path::Path;

fn list(s: &diskray_core::RangeSet) -> Vec<(u64, u64)> {
    s.ranges().map(|r| (r.start, r.length)).collect()
}

/// The expected answer, block by block, with `old` zero-extended.
fn brute(old: &[u8], new: &[u8], block: usize) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (i, nb) in new.chunks(block).enumerate() {
        let s = i * block;
        let differs = nb
            .iter()
            .enumerate()
            .any(|(j, &b)| old.get(s + j).copied().unwrap_or(0) != b);
        if differs {
            match out.last_mut() {
                Some(l) if l.0 + l.1 == s as u64 => l.1 += nb.len() as u64,
                _ => out.push((s as u64, nb.len() as u64)),
            }
        }
    }
    out
}

#[test]
fn finds_the_changed_blocks_of_two_mem_disks() {
    let mut old = vec![0u8; 3 << 20];
    for (i, b) in old.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    let mut new = old.clone();
    new[0] ^= 1; // first block
    new[4096 * 7 + 100] ^= 0x80; // one byte deep in block 7
    new[(1 << 20)..(1 << 20) + 10000].fill(0xEE); // spans blocks 256..258
    new.extend(vec![0u8; 5000]); // grown with zeros: unchanged
    new.extend([0u8, 0, 9]); // ... then a non-zero byte in the last, short block
    let m = diff(&MemDisk::new(old.clone()), &MemDisk::new(new.clone()), 4096).unwrap();
    assert_eq!(m.capacity, new.len() as u64);
    assert_eq!(list(&m.changed), brute(&old, &new, 4096));
    assert_eq!(m.source.format, Format::Diff);
    assert!(m
        .warnings
        .iter()
        .map(ToString::to_string)
        .any(|w| w.contains("capacities differ")));
    // The last, short block is changed and ends at the capacity.
    let last = m.changed.ranges().last().unwrap();
    assert_eq!(last.end(), m.capacity);

    // Identical disks: nothing changed; the vSphere output parses back.
    let same = diff(&MemDisk::new(old.clone()), &MemDisk::new(old.clone()), 512).unwrap();
    assert!(same.changed.is_empty());
    let v = serde_json::to_vec(&to_vsphere_json(&m)).unwrap();
    let back = parse(&v, Path::new("diff.json"), Some(m.capacity), false).unwrap();
    assert_eq!(back.changed, m.changed);
}

#[test]
fn a_shrunk_disk_is_compared_over_the_new_capacity() {
    let old = vec![7u8; 10000];
    let mut new = vec![7u8; 6000];
    new[5999] = 8;
    let m = diff(&MemDisk::new(old.clone()), &MemDisk::new(new.clone()), 1024).unwrap();
    assert_eq!(m.capacity, 6000);
    assert_eq!(list(&m.changed), vec![(5120, 880)]);
    assert_eq!(list(&m.changed), brute(&old, &new, 1024));
}

#[test]
fn batches_larger_than_one_cover_every_block() {
    // 300 MiB of zeros except two bytes, at 64 MiB blocks: more than one batch.
    let len = 300usize << 20;
    let old = vec![0u8; len];
    let mut new = vec![0u8; len];
    new[5] = 1;
    new[len - 1] = 1;
    let m = diff(&MemDisk::new(old), &MemDisk::new(new), MAX_DIFF_BLOCK).unwrap();
    assert_eq!(list(&m.changed), vec![(0, 64 << 20), (256 << 20, 44 << 20)]);
}

/// A disk whose map declares `[hole_start, hole_end)` Unallocated and whose reads there
/// fail, to prove `diff` does not read what both maps say is zero.
struct Holey {
    bytes: Vec<u8>,
    hole: ByteRange,
}

impl VirtualDisk for Holey {
    fn capacity(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let r = ByteRange::new(offset, buf.len() as u64);
        if r.intersect(&self.hole).is_some() {
            return Err(Error::io(
                std::path::Path::new("holed disk"),
                offset,
                std::io::Error::other("read of the hole"),
            ));
        }
        MemDisk::new(self.bytes.clone()).read_at(buf, offset)
    }
    fn map(&self, range: ByteRange) -> Result<Vec<MapRange>> {
        let mut out = Vec::new();
        let cap = ByteRange::new(0, self.capacity());
        for (r, state) in [
            (ByteRange::from_bounds(0, self.hole.start), BlockState::Data),
            (self.hole, BlockState::Unallocated),
            (
                ByteRange::from_bounds(self.hole.end(), self.capacity()),
                BlockState::Data,
            ),
        ] {
            if let Some(x) = r.intersect(&range).and_then(|x| x.intersect(&cap)) {
                out.push(MapRange {
                    start: x.start,
                    length: x.length,
                    state,
                    depth: 0,
                });
            }
        }
        Ok(out)
    }
}

#[test]
fn ranges_both_maps_call_zero_are_not_read() {
    let hole = ByteRange::new(8192, 16384);
    let mut a = vec![1u8; 65536];
    a[8192..24576].fill(0);
    let mut b = a.clone();
    b[40000] = 2;
    let old = Holey {
        bytes: a.clone(),
        hole,
    };
    let new = Holey { bytes: b, hole };
    let m = diff(&old, &new, 4096).unwrap();
    assert_eq!(list(&m.changed), vec![(36864, 4096)]);
    // When only one side declares the hole, the other side is read (and must be zero).
    let mut c = a.clone();
    c[9000] = 5;
    let m = diff(&old, &MemDisk::new(c), 4096).unwrap();
    assert_eq!(list(&m.changed), vec![(8192, 4096)]);
}

#[test]
fn block_size_must_be_a_power_of_two_in_bounds() {
    let d = MemDisk::new(vec![0u8; 4096]);
    for bad in [
        0,
        1,
        256,
        MIN_DIFF_BLOCK - 1,
        1000,
        4097,
        MAX_DIFF_BLOCK * 2,
    ] {
        match diff(&d, &d, bad) {
            Err(Error::InvalidArgument { reason: m, .. }) => {
                assert!(m.contains("power of two"), "{m}")
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    assert!(diff(&d, &d, MIN_DIFF_BLOCK).is_ok());
}

/// A disk whose map says Data everywhere and whose every read fails.
struct Failing(u64);

impl VirtualDisk for Failing {
    fn capacity(&self) -> u64 {
        self.0
    }
    fn read_at(&self, _: &mut [u8], offset: u64) -> Result<()> {
        Err(Error::io(
            std::path::Path::new("failing disk"),
            offset,
            std::io::Error::other("broken read"),
        ))
    }
    fn map(&self, range: ByteRange) -> Result<Vec<MapRange>> {
        Ok(vec![MapRange {
            start: range.start,
            length: range.length,
            state: BlockState::Data,
            depth: 0,
        }])
    }
}

#[test]
fn read_errors_are_returned_not_hidden() {
    let good = MemDisk::new(vec![0u8; 8192]);
    match diff(&Failing(8192), &good, 4096) {
        Err(e @ Error::Io { .. }) => assert!(e.to_string().contains("broken read"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(diff(&good, &Failing(8192), 4096).is_err());
}
