//! Hostile and odd FAT volumes built in memory: deleted directories that loop, that fill
//! the volume with directory-like blocks, that lost their `.` entry or their cluster;
//! deleted and live names with NUL and control bytes; bad clusters; a FAT32 boot sector
//! with a FAT12 cluster count. Each is listed within bounds, never a panic or a hang.

use diskray_core::{ByteRange, MemDisk, RangeSet};
use diskray_guestfs::files::{lookup, Entry, Files};
use diskray_guestfs::{open, probe, Content, Filesystem, Slice};
use std::path::Path;

const SIZE: usize = 8 << 20;
const SECTOR: usize = 512;
const SPC: usize = 4; // sectors per cluster: 2 KiB clusters
const FAT_SECTORS: usize = 16;
const ROOT_AT: usize = (1 + 2 * FAT_SECTORS) * SECTOR;
const DATA_SECTOR: usize = 1 + 2 * FAT_SECTORS + 32;
/// 2023-11-14, a valid FAT date.
const DATE: u16 = (43 << 9) | (11 << 5) | 14;

/// A FAT12 volume over 8 MiB: 1 reserved sector, two FATs of 16 sectors, 512 root
/// entries, 2 KiB clusters (4079 of them), every cluster free.
fn fat12() -> Vec<u8> {
    let mut d = vec![0u8; SIZE];
    d[0] = 0xEB;
    d[11..13].copy_from_slice(&(SECTOR as u16).to_le_bytes());
    d[13] = SPC as u8;
    d[14..16].copy_from_slice(&1u16.to_le_bytes());
    d[16] = 2;
    d[17..19].copy_from_slice(&512u16.to_le_bytes());
    d[19..21].copy_from_slice(&((SIZE / SECTOR) as u16).to_le_bytes());
    d[22..24].copy_from_slice(&(FAT_SECTORS as u16).to_le_bytes());
    d[510] = 0x55;
    d[511] = 0xAA;
    for copy in 0..2 {
        let at = (1 + copy * FAT_SECTORS) * SECTOR;
        d[at..at + 3].copy_from_slice(&[0xF8, 0xFF, 0xFF]);
    }
    d
}

fn cluster_at(c: usize) -> usize {
    (DATA_SECTOR + (c - 2) * SPC) * SECTOR
}

fn set_fat12(d: &mut [u8], n: usize, v: u16) {
    for copy in 0..2 {
        let at = (1 + copy * FAT_SECTORS) * SECTOR + n * 3 / 2;
        let mut pair = u16::from_le_bytes([d[at], d[at + 1]]);
        pair = if n.is_multiple_of(2) {
            (pair & 0xF000) | v
        } else {
            (pair & 0x000F) | (v << 4)
        };
        d[at..at + 2].copy_from_slice(&pair.to_le_bytes());
    }
}

/// A short directory entry.
fn entry(name: &[u8; 11], attr: u8, cluster: u16, size: u32) -> [u8; 32] {
    let mut e = [0u8; 32];
    e[..11].copy_from_slice(name);
    e[11] = attr;
    e[24..26].copy_from_slice(&DATE.to_le_bytes());
    e[26..28].copy_from_slice(&cluster.to_le_bytes());
    e[28..32].copy_from_slice(&size.to_le_bytes());
    e
}

fn put(d: &mut [u8], at: usize, slot: usize, e: [u8; 32]) {
    d[at + slot * 32..at + slot * 32 + 32].copy_from_slice(&e);
}

/// A directory block starting with `.` (naming `c`) and `..`.
fn dir_head(d: &mut [u8], c: usize) {
    put(
        d,
        cluster_at(c),
        0,
        entry(b".          ", 0x10, c as u16, 0),
    );
    put(d, cluster_at(c), 1, entry(b"..         ", 0x10, 0, 0));
}

fn with_files<T>(d: Vec<u8>, f: impl FnOnce(&dyn Filesystem, &dyn Files) -> T) -> T {
    let disk = MemDisk::new(d);
    let slice = Slice::new(&disk, Path::new("vol.img"), 0, SIZE as u64);
    let fs = open(slice).unwrap().unwrap();
    let files = fs.files().unwrap();
    f(fs.as_ref(), files)
}

fn deleted(d: Vec<u8>) -> Vec<(String, Entry)> {
    with_files(d, |_, f| f.deleted().unwrap())
}

#[test]
fn deleted_directory_loops_and_long_runs_stay_bounded() {
    let mut d = fat12();
    // Two deleted directories in the root both naming cluster 2 (with different sizes):
    // it is read once. Its block holds a deleted subdirectory naming cluster 2 again (a
    // loop) and a deleted file; clusters 3.. are all directory-like blocks of deleted
    // entries, far more than a directory may hold.
    put(&mut d, ROOT_AT, 0, entry(b"\xE5OOP       ", 0x10, 2, 0));
    put(&mut d, ROOT_AT, 1, entry(b"\xE5GAIN      ", 0x10, 2, 77));
    dir_head(&mut d, 2);
    put(
        &mut d,
        cluster_at(2),
        2,
        entry(b"\xE5UB        ", 0x10, 2, 0),
    );
    put(
        &mut d,
        cluster_at(2),
        3,
        entry(b"\xE5ILE    TXT", 0x20, 0, 0),
    );
    for c in 3..4000 {
        for slot in 0..64 {
            put(
                &mut d,
                cluster_at(c),
                slot,
                entry(b"\xE5ANY    BIN", 0x20, 0, 0),
            );
        }
    }
    let list = deleted(d);
    let paths: Vec<&str> = list.iter().map(|(p, _)| p.as_str()).collect();
    assert!(paths.contains(&"/_OOP/_ILE.TXT"), "{:?}", &paths[..5]);
    // One directory holds at most 65 536 entries; the same cluster is read once.
    assert!(list.len() < 65_536 + 16, "{} entries", list.len());
    assert!(!paths.iter().any(|p| p.starts_with("/_GAIN/")));
    assert!(!paths.iter().any(|p| p.starts_with("/_OOP/_UB/")));
}

#[test]
fn deleted_directory_without_its_dot_entry_or_cluster_is_not_read() {
    let mut d = fat12();
    // /_ODOT: its cluster holds entries but no `.` naming it (another directory's block).
    put(&mut d, ROOT_AT, 0, entry(b"\xE5ODOT      ", 0x10, 10, 0));
    dir_head(&mut d, 11);
    let at = cluster_at(10);
    d[at..at + 2048].copy_from_slice(&{
        let mut b = [0u8; 2048];
        b[..32].copy_from_slice(&entry(b".          ", 0x10, 11, 0));
        b[64..96].copy_from_slice(&entry(b"\xE5TRAY   TXT", 0x20, 0, 0));
        b
    });
    // /_SED: its cluster is in use again (end of chain in the FAT).
    put(&mut d, ROOT_AT, 1, entry(b"\xE5SED       ", 0x10, 20, 0));
    dir_head(&mut d, 20);
    put(
        &mut d,
        cluster_at(20),
        2,
        entry(b"\xE5LD     TXT", 0x20, 0, 0),
    );
    set_fat12(&mut d, 20, 0xFFF);
    // /_OOD: readable; its second cluster is file data (stops the walk), its third again
    // looks like a directory block (not reached).
    put(&mut d, ROOT_AT, 2, entry(b"\xE5OOD       ", 0x10, 30, 0));
    dir_head(&mut d, 30);
    for slot in 2..64 {
        put(
            &mut d,
            cluster_at(30),
            slot,
            entry(b"\xE5IRST   TXT", 0x20, 0, 0),
        );
    }
    d[cluster_at(31)..cluster_at(31) + 11].copy_from_slice(b"plain text\n");
    put(
        &mut d,
        cluster_at(32),
        0,
        entry(b"\xE5HIRD   TXT", 0x20, 0, 0),
    );
    let list = deleted(d);
    let by_path = |p: &str| list.iter().find(|(q, _)| q == p).map(|(_, e)| e.clone());
    assert_eq!(by_path("/_ODOT").unwrap().recoverable, Some(false));
    assert_eq!(by_path("/_SED").unwrap().recoverable, Some(false));
    assert_eq!(by_path("/_OOD").unwrap().recoverable, Some(true));
    let below = |dir: &str| list.iter().filter(|(p, _)| p.starts_with(dir)).count();
    assert_eq!(below("/_ODOT/"), 0);
    assert_eq!(below("/_SED/"), 0);
    assert_eq!(below("/_OOD/"), 62);
}

#[test]
fn names_with_nul_and_control_bytes() {
    let mut d = fat12();
    put(
        &mut d,
        ROOT_AT,
        0,
        entry(b"\xE5A\0\0\0\0\0\0TXT", 0x20, 0, 5),
    );
    put(
        &mut d,
        ROOT_AT,
        1,
        entry(b"\xE5\x01\x1fB    TXT", 0x20, 0, 5),
    );
    put(&mut d, ROOT_AT, 2, entry(b"\xE5GOOD   TXT", 0x20, 0, 5));
    // A live entry with NUL bytes in its name (a damaged disk): cut at the NUL.
    put(&mut d, ROOT_AT, 3, entry(b"LIVE\0\0\0\0TXT", 0x20, 0, 0));
    // A live entry with an OEM (code page 437) letter.
    put(&mut d, ROOT_AT, 4, entry(b"CAF\x90    TXT", 0x20, 0, 0));
    with_files(d, |_, f| {
        let del = f.deleted().unwrap();
        let names: Vec<&str> = del.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, ["/_GOOD.TXT"]);
        let live: Vec<String> = f
            .read_dir(&f.root().unwrap())
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(live, ["LIVE.TXT", "CAFÉ.TXT"]);
        assert!(lookup(f, "/café.txt").is_ok());
    });
}

#[test]
fn bad_clusters_are_metadata() {
    let mut d = fat12();
    for c in [100, 101, 102, 500] {
        set_fat12(&mut d, c, 0xFF7);
    }
    with_files(d, |fs, _| {
        let a = fs.allocation().unwrap();
        for c in [100, 101, 102, 500] {
            let mut one = RangeSet::new();
            one.insert(ByteRange::new(cluster_at(c) as u64, 2048));
            assert_eq!(a.metadata.intersection(&one).bytes(), 2048, "cluster {c}");
        }
        assert_eq!(
            a.metadata.bytes(),
            DATA_SECTOR as u64 * 512 + 4 * 2048 + (SIZE as u64 - cluster_at(4081) as u64),
        );
        assert!(
            a.warnings
                .iter()
                .map(ToString::to_string)
                .any(|w| w.starts_with("4 bad clusters")),
            "{:?}",
            a.warnings
        );
    });
}

#[test]
fn fat32_boot_sector_with_few_clusters_is_fat32() {
    // A FAT32 BPB: 16-bit FAT size 0, 32-bit FAT size, root cluster 2, no fixed root
    // directory; 8 MiB of 2 KiB clusters is ~4000 clusters (FAT12 by count).
    let mut d = vec![0u8; SIZE];
    d[0] = 0xEB;
    d[11..13].copy_from_slice(&512u16.to_le_bytes());
    d[13] = 4;
    d[14..16].copy_from_slice(&32u16.to_le_bytes());
    d[16] = 2;
    d[32..36].copy_from_slice(&((SIZE / 512) as u32).to_le_bytes());
    d[36..40].copy_from_slice(&32u32.to_le_bytes());
    d[44..48].copy_from_slice(&2u32.to_le_bytes());
    d[510] = 0x55;
    d[511] = 0xAA;
    for copy in 0..2 {
        let at = (32 + copy * 32) * 512;
        for (n, v) in [0x0FFF_FFF8u32, 0x0FFF_FFFF, 0x0FFF_FFFF]
            .iter()
            .enumerate()
        {
            d[at + n * 4..at + n * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
    }
    let data = (32 + 64) * 512;
    d[data..data + 32].copy_from_slice(&entry(b"HELLO   TXT", 0x20, 0, 0));
    {
        let disk = MemDisk::new(d.clone());
        let slice = Slice::new(&disk, Path::new("vol.img"), 0, SIZE as u64);
        assert_eq!(probe(&slice).unwrap(), Content::Fat32);
    }
    with_files(d.clone(), |fs, f| {
        let a = fs.allocation().unwrap();
        assert!(
            a.warnings
                .iter()
                .map(ToString::to_string)
                .any(|w| w.contains("read as FAT32")),
            "{:?}",
            a.warnings
        );
        assert_eq!(f.warnings().len(), 1);
        assert!(lookup(f, "/hello.txt").is_ok());
    });
    // A FAT32 boot sector with a fixed root directory stays refused.
    d[17..19].copy_from_slice(&512u16.to_le_bytes());
    let disk = MemDisk::new(d);
    let slice = Slice::new(&disk, Path::new("vol.img"), 0, SIZE as u64);
    assert_eq!(probe(&slice).unwrap(), Content::Unknown);
}
