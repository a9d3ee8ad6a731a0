//! Damaged XFS and NTFS volumes (absurd counts, trees and records out of range, loops):
//! the map falls back to "unknown, hence all used" with a warning that says what is wrong,
//! and nothing panics. Made by patching the guest fixtures.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn patched(name: &str, test: &str, patch: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let d = scratch(test);
    let to = d.join(name);
    let mut b = std::fs::read(guest_fixtures().join("images").join(name)).unwrap();
    patch(&mut b);
    std::fs::write(&to, &b).unwrap();
    to
}

/// The volume is mapped as wholly used, with a warning containing `want`.
fn all_used_with_warning(img: &Path, want: &str) {
    let out = diskray(&["blocks", "--json", "--state", "used", img.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("panicked"),
        "{stderr}"
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let size = std::fs::metadata(img).unwrap().len();
    assert_eq!(v["bytes"].as_u64(), Some(size), "{v}");
    assert!(
        v["warnings"].to_string().contains(want),
        "wanted {want:?} in {}",
        v["warnings"]
    );
}

fn be32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

#[test]
fn xfs_absurd_ag_count() {
    let img = patched("xfs.img", "xfs_agcount", |b| be32(b, 0x58, 0x7FFF_FFFF));
    all_used_with_warning(&img, "AGs");
}

#[test]
fn xfs_free_space_root_outside_the_ag() {
    // AG 0's AGF sits in the second sector.
    let img = patched("xfs.img", "xfs_root", |b| {
        let sect = u16::from_be_bytes([b[0x66], b[0x67]]) as usize;
        be32(b, sect + 0x10, 0x00FF_FFFF);
    });
    all_used_with_warning(&img, "free-space tree root");
}

#[test]
fn xfs_free_space_tree_too_deep() {
    let img = patched("xfs.img", "xfs_levels", |b| {
        let sect = u16::from_be_bytes([b[0x66], b[0x67]]) as usize;
        be32(b, sect + 0x1C, 40);
    });
    all_used_with_warning(&img, "levels");
}

#[test]
fn xfs_free_list_out_of_range() {
    let img = patched("xfs.img", "xfs_agfl", |b| {
        let sect = u16::from_be_bytes([b[0x66], b[0x67]]) as usize;
        be32(b, sect + 0x30, 100_000);
    });
    all_used_with_warning(&img, "free list");
}

#[test]
fn ntfs_mft_outside_the_volume() {
    let img = patched("ntfs.img", "ntfs_mft", |b| {
        b[0x30..0x38].copy_from_slice(&u64::MAX.to_le_bytes())
    });
    all_used_with_warning(&img, "ntfs");
}

#[test]
fn ntfs_zero_sectors_per_cluster() {
    let img = patched("ntfs.img", "ntfs_spc", |b| b[0x0D] = 0);
    let out = diskray(&["blocks", "--json", "--state", "used", img.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["bytes"].as_u64(),
        Some(std::fs::metadata(&img).unwrap().len()),
        "{v}"
    );
}

#[test]
fn ntfs_torn_bitmap_record() {
    // Break the update-sequence fixup of MFT record 6 ($Bitmap): the record is torn.
    let img = patched("ntfs.img", "ntfs_torn", |b| {
        let bps = u16::from_le_bytes([b[0x0B], b[0x0C]]) as usize;
        let mft =
            u64::from_le_bytes(b[0x30..0x38].try_into().unwrap()) as usize * bps * b[0x0D] as usize;
        let rec = 1024;
        let at = mft + 6 * rec + 510;
        b[at] ^= 0xFF;
    });
    all_used_with_warning(&img, "ntfs");
}
