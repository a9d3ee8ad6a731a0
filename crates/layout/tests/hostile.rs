//! The classification on hostile disks: random damage to small ext2 and FAT volumes, and
//! the inputs that once crashed the `guestfs` fuzz target (whose layout and classes steps
//! live here). Whatever the damage, the classes tile the disk and nothing panics.

use diskray_core::{MemDisk, VirtualDisk};
use diskray_layout::{analyze, classes};
use std::path::Path;

#[path = "../../guestfs/tests/support/disks.rs"]
mod disks;
use disks::{ext_disk, fat_disk, volume};

fn classes_tile(disk: &MemDisk) {
    let Ok(layout) = analyze(disk, Path::new("r")) else {
        return;
    };
    if let Ok(c) = classes(disk, &layout) {
        let total: u64 = c.named().iter().map(|(_, s)| s.bytes()).sum();
        assert_eq!(total, disk.capacity());
    }
}

#[test]
fn classes_always_sum_to_capacity_on_random_disks() {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for round in 0..40 {
        let mut d = if round % 2 == 0 {
            ext_disk()
        } else {
            fat_disk()
        };
        for _ in 0..64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let at = (x % 8192) as usize;
            d[at] = (x >> 32) as u8;
        }
        let disk = MemDisk::new(d);
        let Ok(layout) = analyze(&disk, Path::new("r")) else {
            continue;
        };
        let c = classes(&disk, &layout).unwrap();
        let total: u64 = c.named().iter().map(|(_, s)| s.bytes()).sum();
        assert_eq!(total, disk.capacity(), "round {round}");
        classes_tile(&disk);
    }
}

#[test]
fn every_recorded_fuzz_crash_classifies() {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../guestfs/tests/fuzz-regressions/guestfs");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        classes_tile(&MemDisk::new(volume(&data).unwrap()));
        count += 1;
    }
    assert!(count >= 1);
}
