//! Hostile superblocks, boot sectors and swap headers: refused with a message that names
//! the disk and the byte offset, or mapped conservatively; never a panic or a huge
//! allocation.

use diskray_core::{MemDisk, VirtualDisk};
use diskray_guestfs::{open, probe, Content, Slice};
use std::path::Path;

#[path = "support/disks.rs"]
mod disks;
use disks::{ext_disk, fat_disk, SIZE};

fn open_err(d: Vec<u8>) -> String {
    let disk = MemDisk::new(d);
    let slice = Slice::new(&disk, Path::new("vol.img"), 0, disk.capacity());
    let result = match open(slice) {
        Ok(Some(fs)) => match fs.allocation() {
            Ok(a) => panic!(
                "accepted: used {} bytes, warnings {:?}",
                a.used.bytes(),
                a.warnings
            ),
            Err(e) => e.to_string(),
        },
        Ok(None) => "not mapped".into(),
        Err(e) => e.to_string(),
    };
    result
}

#[test]
fn valid_minimal_ext2_maps() {
    let disk = MemDisk::new(ext_disk());
    let slice = Slice::new(&disk, Path::new("vol.img"), 0, disk.capacity());
    assert_eq!(probe(&slice).unwrap(), Content::Ext2);
    let a = open(slice).unwrap().unwrap().allocation().unwrap();
    // Block 0 (boot) plus blocks 1..=8 from the bitmap.
    assert_eq!(
        a.used.ranges().collect::<Vec<_>>(),
        vec![diskray_core::ByteRange::new(0, 9 * 1024)]
    );
}

#[test]
fn ext_absurd_fields_are_refused_with_offsets() {
    let cases: &[(usize, &[u8], &str)] = &[
        (0x18, &20u32.to_le_bytes(), "at byte 1048"), // log block size
        (0x20, &0u32.to_le_bytes(), "at byte 1060"),  // blocks per group 0
        (0x20, &100_000u32.to_le_bytes(), "at byte 1060"), // more than a bitmap block holds
        (0x04, &u32::MAX.to_le_bytes(), "do not fit the volume"), // blocks count past the volume
        (0x04, &1u32.to_le_bytes(), "at byte 1028"),  // no blocks after the first
        (0x58, &3u16.to_le_bytes(), "at byte 1112"),  // inode size
    ];
    for (off, bytes, want) in cases {
        let mut d = ext_disk();
        d[1024 + off..1024 + off + bytes.len()].copy_from_slice(bytes);
        let e = open_err(d);
        assert!(
            e.contains("vol.img") && e.contains(want),
            "field {off:#x}: {e}"
        );
    }
}

#[test]
fn ext_descriptor_pointing_outside_is_conservative() {
    let mut d = ext_disk();
    d[2048..2052].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    let disk = MemDisk::new(d);
    let slice = Slice::new(&disk, Path::new("vol.img"), 0, disk.capacity());
    let a = open(slice).unwrap().unwrap().allocation().unwrap();
    assert_eq!(
        a.used.bytes(),
        8192 * 1024,
        "a group whose bitmap is lost is all used"
    );
    assert!(a
        .warnings
        .iter()
        .map(ToString::to_string)
        .any(|w| w.contains("outside")));
}

#[test]
fn ext_unknown_incompat_and_dirty_journal_are_all_used() {
    for (bit, want) in [
        (0x8000_0000u32, "unknown incompatible"),
        (0x4, "journal needs recovery"),
    ] {
        let mut d = ext_disk();
        d[1024 + 0x60..1024 + 0x64].copy_from_slice(&bit.to_le_bytes());
        let disk = MemDisk::new(d);
        let slice = Slice::new(&disk, Path::new("vol.img"), 0, disk.capacity());
        let a = open(slice).unwrap().unwrap().allocation().unwrap();
        assert_eq!(a.used.bytes(), 8192 * 1024);
        assert!(
            a.warnings
                .iter()
                .map(ToString::to_string)
                .any(|w| w.contains(want)),
            "{:?}",
            a.warnings
        );
    }
}

#[test]
fn fat_boot_sector_fields_out_of_range() {
    let disk = MemDisk::new(fat_disk());
    let slice = Slice::new(&disk, Path::new("vol.img"), 0, disk.capacity());
    assert_eq!(probe(&slice).unwrap(), Content::Fat12);
    let cases: &[(usize, &[u8])] = &[
        (11, &3u16.to_le_bytes()), // bytes per sector
        (13, &[3]),                // sectors per cluster
        (14, &0u16.to_le_bytes()), // reserved
        (16, &[9]),                // FATs
        (22, &1u16.to_le_bytes()), // FAT too small for the clusters
        (19, &0u16.to_le_bytes()), // total sectors 0 (and TotSec32 0)
    ];
    for (off, bytes) in cases {
        let mut d = fat_disk();
        d[*off..*off + bytes.len()].copy_from_slice(bytes);
        let disk = MemDisk::new(d);
        let slice = Slice::new(&disk, Path::new("vol.img"), 0, disk.capacity());
        assert_eq!(probe(&slice).unwrap(), Content::Unknown, "field {off}");
    }
    let mut d = fat_disk();
    d[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
    d[19..21].copy_from_slice(&0u16.to_le_bytes());
    let disk = MemDisk::new(d);
    let slice = Slice::new(&disk, Path::new("vol.img"), 0, disk.capacity());
    assert_eq!(
        probe(&slice).unwrap(),
        Content::Unknown,
        "total sectors past the volume"
    );
}

#[test]
fn swap_with_absurd_last_page_is_clamped() {
    let mut d = vec![0u8; SIZE];
    d[4086..4096].copy_from_slice(b"SWAPSPACE2");
    d[1028..1032].copy_from_slice(&u32::MAX.to_le_bytes());
    let disk = MemDisk::new(d);
    let slice = Slice::new(&disk, Path::new("vol.img"), 0, disk.capacity());
    let fs = open(slice).unwrap().unwrap();
    assert_eq!(fs.size(), SIZE as u64);
    let a = fs.allocation().unwrap();
    assert_eq!(
        (a.used.bytes(), a.excluded.bytes()),
        (4096, SIZE as u64 - 4096)
    );
}
