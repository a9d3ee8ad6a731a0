//! The VMDK writer against qemu-img (`check`, `convert`, `compare`) and against this
//! crate's reader: content read back byte for byte, and zero grains mapped unallocated.

use diskray_core::disk::push_run;
use diskray_core::{BlockState, ByteRange, Error, MapRange, MemDisk, Result, VirtualDisk};
use diskray_vmdk::sparse_header::{SparseHeader, GD_AT_END};
use diskray_vmdk::writer::GRAIN_BYTES;
use diskray_vmdk::{write_vmdk, OpenOptions, Subformat, VmdkDisk};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

const BOTH: [Subformat; 2] = [Subformat::StreamOptimized, Subformat::MonolithicSparse];
const MIB: u64 = 1 << 20;

/// A deterministic pseudo-random byte stream (xorshift64*).
fn random_bytes(seed: u64, buf: &mut [u8]) {
    let mut x = seed | 1;
    for chunk in buf.chunks_mut(8) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

/// 40 MiB + 1536 bytes (two grain tables, a partial last grain of 3 sectors): random,
/// compressible, zero, half-filled and single-byte grains, data across the 32 MiB table
/// boundary, and random bytes in the partial last grain.
fn mixed_content() -> Vec<u8> {
    let cap = 40 * MIB + 1536;
    let mut b = vec![0u8; cap as usize];
    let g = GRAIN_BYTES as usize;
    random_bytes(1, &mut b[0..g]); // grain 0 random; grain 1 zero
    random_bytes(2, &mut b[2 * g..2 * g + g / 2]); // grain 2 half random
    b[4 * g - 1] = 0x5A; // grain 3: one byte at its end
    for (i, x) in b[5 * g..9 * g + 123].iter_mut().enumerate() {
        *x = (i % 251) as u8; // compressible, ends mid-grain
    }
    let boundary = 32 * MIB as usize;
    random_bytes(3, &mut b[boundary - 10_000..boundary + 10_000]);
    let last = cap as usize - 1536;
    random_bytes(4, &mut b[last..]);
    b
}

/// The map the reader should show for `bytes`: data where a grain holds a non-zero byte,
/// unallocated elsewhere.
fn expected_map(bytes: &[u8]) -> Vec<MapRange> {
    let mut out = Vec::new();
    for (i, grain) in bytes.chunks(GRAIN_BYTES as usize).enumerate() {
        let state = if grain.iter().any(|&x| x != 0) {
            BlockState::Data
        } else {
            BlockState::Unallocated
        };
        push_run(
            &mut out,
            MapRange {
                start: i as u64 * GRAIN_BYTES,
                length: grain.len() as u64,
                state,
                depth: 0,
            },
        );
    }
    out
}

fn name(sf: Subformat) -> &'static str {
    match sf {
        Subformat::StreamOptimized => "stream",
        Subformat::MonolithicSparse => "sparse",
    }
}

/// Writes `disk` as `sf` into `dir`, checking that progress ends at the capacity.
fn write(disk: &dyn VirtualDisk, dir: &Path, sf: Subformat) -> PathBuf {
    let out = dir.join(format!("{}.vmdk", name(sf)));
    let seen = Mutex::new(Vec::new());
    write_vmdk(disk, &out, sf, &|n| seen.lock().unwrap().push(n)).unwrap();
    let seen = seen.into_inner().unwrap();
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "progress went back");
    assert_eq!(seen.last(), Some(&disk.capacity()));
    out
}

fn open(path: &Path) -> VmdkDisk {
    VmdkDisk::open(path, &OpenOptions::default()).unwrap()
}

fn read_header(path: &Path, at: u64) -> SparseHeader {
    let b = std::fs::read(path).unwrap();
    SparseHeader::parse(&b[at as usize..at as usize + 512], path, at).unwrap()
}

/// qemu-img, or `None` after saying why the test is skipped.
fn qemu_img() -> Option<&'static str> {
    match Command::new("qemu-img").arg("--version").output() {
        Ok(o) if o.status.success() => Some("qemu-img"),
        _ => {
            println!("SKIPPED: qemu-img is not installed (apt-get install qemu-utils)");
            None
        }
    }
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new("qemu-img").args(args).output().unwrap()
}

fn qemu_check(img: &Path) {
    let o = run(&["check", "-f", "vmdk", img.to_str().unwrap()]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success(),
        "qemu-img check {}: {text}",
        img.display()
    );
    assert!(text.contains("No errors were found"), "{text}");
}

fn qemu_convert(img: &Path) -> Vec<u8> {
    let raw = img.with_extension("raw");
    let o = run(&[
        "convert",
        "-f",
        "vmdk",
        "-O",
        "raw",
        img.to_str().unwrap(),
        raw.to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "qemu-img convert: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::read(raw).unwrap()
}

#[test]
fn qemu_img_checks_and_converts_mixed_content() {
    if qemu_img().is_none() {
        return;
    }
    let bytes = mixed_content();
    let disk = MemDisk::new(bytes.clone());
    let dir = tempfile::tempdir().unwrap();
    for sf in BOTH {
        let out = write(&disk, dir.path(), sf);
        qemu_check(&out);
        assert!(qemu_convert(&out) == bytes, "{}: content differs", name(sf));
    }
}

#[test]
fn reader_reads_back_mixed_content_and_maps_zero_grains_unallocated() {
    let bytes = mixed_content();
    let disk = MemDisk::new(bytes.clone());
    let dir = tempfile::tempdir().unwrap();
    for sf in BOTH {
        let out = write(&disk, dir.path(), sf);
        let v = open(&out);
        assert_eq!(v.capacity(), bytes.len() as u64);
        let mut back = vec![0u8; bytes.len()];
        v.read_at(&mut back, 0).unwrap();
        assert!(back == bytes, "{}: content differs", name(sf));
        let map = v.map(ByteRange::new(0, v.capacity())).unwrap();
        assert_eq!(map, expected_map(&bytes), "{}", name(sf));
    }
}

#[test]
fn headers_are_laid_out_as_specified() {
    let disk = MemDisk::new(mixed_content());
    let dir = tempfile::tempdir().unwrap();
    let stream = write(&disk, dir.path(), Subformat::StreamOptimized);
    let h = read_header(&stream, 0);
    assert_eq!((h.version, h.flags, h.compress_algorithm), (3, 0x3_0003, 1));
    assert_eq!(
        (h.gd_offset, h.grain_size, h.num_gtes_per_gt),
        (GD_AT_END, 128, 512)
    );
    assert_eq!(h.capacity, 40 * 2048 + 3);
    let len = std::fs::metadata(&stream).unwrap().len();
    let footer = read_header(&stream, len - 1024);
    assert!(footer.gd_offset < len / 512 && footer.gd_offset > h.overhead);
    let b = std::fs::read(&stream).unwrap();
    let text = String::from_utf8_lossy(&b[512..1024]);
    assert!(text.contains("createType=\"streamOptimized\""), "{text}");

    let sparse = write(&disk, dir.path(), Subformat::MonolithicSparse);
    let h = read_header(&sparse, 0);
    assert_eq!((h.version, h.flags, h.compress_algorithm), (1, 0x3, 0));
    // qemu's layout for 2 grain tables: RGD 21, RGTs 22 and 26, GD 30, grains from 128.
    assert_eq!((h.rgd_offset, h.gd_offset, h.overhead), (21, 30, 128));
    let b = std::fs::read(&sparse).unwrap();
    let text = String::from_utf8_lossy(&b[512..2048]);
    for want in [
        "createType=\"monolithicSparse\"",
        "parentCID=ffffffff",
        "RW 81923 SPARSE \"sparse.vmdk\"",
        "ddb.geometry.cylinders = \"81\"",
        "ddb.geometry.heads = \"16\"",
        "ddb.geometry.sectors = \"63\"",
        "ddb.adapterType = \"ide\"",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
    let gd: Vec<u32> = b[30 * 512..30 * 512 + 8]
        .chunks(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(gd, vec![31, 35]);
}

/// A disk described by its map: `data` ranges hold a byte pattern derived from the
/// offset, `zero` ranges are declared zero, all else is unallocated. Any read outside
/// the data ranges fails the read (and so the test), and reads are counted.
struct MappedDisk {
    capacity: u64,
    data: Vec<ByteRange>,
    zero: Vec<ByteRange>,
    /// A data range whose bytes are all zeros (allocated zeros).
    zero_data: Option<ByteRange>,
    bytes_read: AtomicU64,
}

impl MappedDisk {
    fn byte_at(&self, off: u64) -> u8 {
        if self
            .zero_data
            .is_some_and(|r| r.start <= off && off < r.end())
        {
            return 0;
        }
        let x = off.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (x >> 56) as u8 | 1
    }

    fn all_data(&self) -> Vec<ByteRange> {
        let mut v = self.data.clone();
        v.extend(self.zero_data);
        v.sort();
        v
    }
}

impl VirtualDisk for MappedDisk {
    fn capacity(&self) -> u64 {
        self.capacity
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let want = ByteRange::new(offset, buf.len() as u64);
        let inside = self
            .all_data()
            .iter()
            .any(|r| r.start <= want.start && want.end() <= r.end());
        if !inside {
            return Err(Error::io(
                std::path::Path::new("test disk"),
                offset,
                std::io::Error::other(format!("read of {want:?} outside the data ranges")),
            ));
        }
        for (i, b) in buf.iter_mut().enumerate() {
            *b = self.byte_at(offset + i as u64);
        }
        self.bytes_read
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn map(&self, range: ByteRange) -> Result<Vec<MapRange>> {
        let mut marked: Vec<(ByteRange, BlockState)> = self
            .all_data()
            .into_iter()
            .map(|r| (r, BlockState::Data))
            .chain(self.zero.iter().map(|&r| (r, BlockState::Zero)))
            .collect();
        marked.sort_by_key(|m| m.0.start);
        let mut out = Vec::new();
        let mut pos = range.start;
        for (r, state) in marked {
            let Some(r) = r.intersect(&range) else {
                continue;
            };
            let gap = ByteRange::from_bounds(pos, r.start);
            let run = |r: ByteRange, state| MapRange {
                start: r.start,
                length: r.length,
                state,
                depth: 0,
            };
            push_run(&mut out, run(gap, BlockState::Unallocated));
            push_run(&mut out, run(r, state));
            pos = r.end();
        }
        let rest = ByteRange::from_bounds(pos, range.end());
        push_run(
            &mut out,
            MapRange {
                start: rest.start,
                length: rest.length,
                state: BlockState::Unallocated,
                depth: 0,
            },
        );
        Ok(out)
    }
}

/// 3 GiB, mostly unallocated: data in a few unaligned places (one spanning a grain-table
/// boundary, one at the very end), a declared-zero range, and allocated zeros.
fn big_sparse_disk() -> MappedDisk {
    let gib = 1u64 << 30;
    MappedDisk {
        capacity: 3 * gib,
        data: vec![
            ByteRange::new(4096, 8192),
            ByteRange::new(gib - 100_000, 300_000),
            ByteRange::new(2 * gib + 12_345, 70_000),
            ByteRange::new(3 * gib - 1024, 1024),
        ],
        zero: vec![ByteRange::new(10 * MIB, 50 * MIB)],
        zero_data: Some(ByteRange::new(100 * MIB, 2 * MIB)),
        bytes_read: AtomicU64::new(0),
    }
}

/// The grains of `disk` holding non-zero data, as the reader's map should show them.
fn data_grains(disk: &MappedDisk) -> Vec<MapRange> {
    let mut out = Vec::new();
    let mut pos = 0;
    for r in &disk.data {
        let aligned = r.align_out(GRAIN_BYTES, disk.capacity);
        let run = |start, end, state| MapRange {
            start,
            length: end - start,
            state,
            depth: 0,
        };
        if aligned.start > pos {
            push_run(&mut out, run(pos, aligned.start, BlockState::Unallocated));
        }
        push_run(
            &mut out,
            run(aligned.start, aligned.end(), BlockState::Data),
        );
        pos = aligned.end();
    }
    if pos < disk.capacity {
        push_run(&mut out, run_unalloc(pos, disk.capacity));
    }
    out
}

fn run_unalloc(start: u64, end: u64) -> MapRange {
    MapRange {
        start,
        length: end - start,
        state: BlockState::Unallocated,
        depth: 0,
    }
}

#[test]
fn reader_reads_back_big_sparse_disk_reading_only_data() {
    let disk = big_sparse_disk();
    let dir = tempfile::tempdir().unwrap();
    for sf in BOTH {
        disk.bytes_read.store(0, Ordering::Relaxed);
        let out = write(&disk, dir.path(), sf);
        let expected_read: u64 = disk.all_data().iter().map(|r| r.length).sum();
        assert_eq!(disk.bytes_read.load(Ordering::Relaxed), expected_read);
        let file_len = std::fs::metadata(&out).unwrap().len();
        assert!(file_len < 4 * MIB, "{}: {file_len} bytes", name(sf));
        let v = open(&out);
        assert_eq!(v.capacity(), disk.capacity);
        let map = v.map(ByteRange::new(0, v.capacity())).unwrap();
        assert_eq!(map, data_grains(&disk), "{}", name(sf));
        for r in &disk.data {
            let around = r.align_out(GRAIN_BYTES, disk.capacity);
            let mut got = vec![0u8; around.length as usize];
            v.read_at(&mut got, around.start).unwrap();
            for (i, &b) in got.iter().enumerate() {
                let off = around.start + i as u64;
                let want = if r.start <= off && off < r.end() {
                    disk.byte_at(off)
                } else {
                    0
                };
                assert_eq!(b, want, "{}: byte {off}", name(sf));
            }
        }
    }
}

#[test]
fn qemu_img_compares_big_sparse_disk() {
    if qemu_img().is_none() {
        return;
    }
    let disk = big_sparse_disk();
    let dir = tempfile::tempdir().unwrap();
    // The reference as a sparse raw file: qemu-img compare skips its holes.
    let reference = dir.path().join("reference.raw");
    let f = std::fs::File::create(&reference).unwrap();
    f.set_len(disk.capacity).unwrap();
    for r in &disk.data {
        let bytes: Vec<u8> = (r.start..r.end()).map(|o| disk.byte_at(o)).collect();
        std::os::unix::fs::FileExt::write_all_at(&f, &bytes, r.start).unwrap();
    }
    drop(f);
    for sf in BOTH {
        let out = write(&disk, dir.path(), sf);
        qemu_check(&out);
        // compare without -s (strict mode also compares allocation, which differs by
        // design); the size is checked here instead.
        let info = run(&["info", "--output=json", "-f", "vmdk", out.to_str().unwrap()]);
        let info = String::from_utf8_lossy(&info.stdout);
        let want = format!("\"virtual-size\": {}", disk.capacity);
        assert!(info.contains(&want), "{}: {info}", name(sf));
        let o = run(&[
            "compare",
            "-f",
            "vmdk",
            "-F",
            "raw",
            out.to_str().unwrap(),
            reference.to_str().unwrap(),
        ]);
        assert!(
            o.status.success(),
            "{}: qemu-img compare: {}{}",
            name(sf),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// 1 MiB + 512 bytes: the last grain holds one sector.
fn odd_content() -> Vec<u8> {
    let mut b = vec![0u8; (MIB + 512) as usize];
    random_bytes(9, &mut b[..1000]);
    random_bytes(10, &mut b[MIB as usize..]);
    b
}

#[test]
fn odd_capacity_reads_back() {
    let bytes = odd_content();
    let disk = MemDisk::new(bytes.clone());
    let dir = tempfile::tempdir().unwrap();
    for sf in BOTH {
        let out = write(&disk, dir.path(), sf);
        let v = open(&out);
        assert_eq!(v.capacity(), MIB + 512);
        let mut back = vec![0u8; bytes.len()];
        v.read_at(&mut back, 0).unwrap();
        assert!(back == bytes, "{}: content differs", name(sf));
        let map = v.map(ByteRange::new(0, v.capacity())).unwrap();
        assert_eq!(map, expected_map(&bytes), "{}", name(sf));
    }
}

#[test]
fn qemu_img_checks_and_converts_odd_capacity() {
    if qemu_img().is_none() {
        return;
    }
    let bytes = odd_content();
    let disk = MemDisk::new(bytes.clone());
    let dir = tempfile::tempdir().unwrap();
    for sf in BOTH {
        let out = write(&disk, dir.path(), sf);
        qemu_check(&out);
        assert!(qemu_convert(&out) == bytes, "{}: content differs", name(sf));
    }
}

#[test]
fn all_zero_disk_has_no_grains() {
    let disk = MemDisk::new(vec![0u8; 3 * MIB as usize]);
    let dir = tempfile::tempdir().unwrap();
    for sf in BOTH {
        let out = write(&disk, dir.path(), sf);
        let v = open(&out);
        let map = v.map(ByteRange::new(0, v.capacity())).unwrap();
        assert_eq!(map, vec![run_unalloc(0, 3 * MIB)], "{}", name(sf));
    }
}

#[test]
fn capacity_that_is_not_whole_sectors_is_refused() {
    let disk = MemDisk::new(vec![1u8; 1000]);
    let dir = tempfile::tempdir().unwrap();
    for sf in BOTH {
        let e = write_vmdk(&disk, &dir.path().join("x.vmdk"), sf, &|_| {}).unwrap_err();
        assert!(matches!(e, Error::Refused { .. }), "{e}");
        assert!(e.to_string().contains("whole 512-byte sectors"), "{e}");
    }
    let empty = MemDisk::new(Vec::new());
    let e = write_vmdk(&empty, &dir.path().join("e.vmdk"), BOTH[0], &|_| {}).unwrap_err();
    assert!(matches!(e, Error::Refused { .. }), "{e}");
}

/// A disk whose reads or map fail.
struct Failing {
    fail_map: bool,
}

impl VirtualDisk for Failing {
    fn capacity(&self) -> u64 {
        4 * MIB
    }
    fn read_at(&self, _: &mut [u8], offset: u64) -> Result<()> {
        Err(Error::corrupt(Path::new("src.img"), offset, "bad block"))
    }
    fn map(&self, range: ByteRange) -> Result<Vec<MapRange>> {
        if self.fail_map {
            return Err(Error::corrupt(Path::new("src.img"), range.start, "bad map"));
        }
        Ok(vec![MapRange {
            start: range.start,
            length: range.length,
            state: BlockState::Data,
            depth: 0,
        }])
    }
}

#[test]
fn source_errors_propagate() {
    let dir = tempfile::tempdir().unwrap();
    for sf in BOTH {
        for fail_map in [false, true] {
            let e = write_vmdk(
                &Failing { fail_map },
                &dir.path().join("f.vmdk"),
                sf,
                &|_| {},
            )
            .unwrap_err();
            let want = if fail_map { "bad map" } else { "bad block" };
            assert!(e.to_string().contains(want), "{e}");
        }
    }
}

#[test]
fn output_errors_name_the_file() {
    let disk = MemDisk::new(vec![0u8; 1024]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("missing-dir").join("x.vmdk");
    let e = write_vmdk(&disk, &out, Subformat::MonolithicSparse, &|_| {}).unwrap_err();
    assert!(e.to_string().contains("missing-dir"), "{e}");
}
