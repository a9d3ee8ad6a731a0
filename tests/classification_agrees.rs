//! `report`'s classes, `blocks`' guest states and the bytes `backup` reads come from one
//! classification: on a disk whose container declares part of a filesystem zero (a ZERO
//! extent over used data) and part of it unreadable (a NOACCESS extent over free space),
//! the three must agree byte for byte, and the container facts must be the ones the
//! descriptor states.

mod common;

use common::{diskray_ok, guest_fixtures, scratch};
use serde_json::Value;

const MIB: u64 = 1 << 20;
/// Where the descriptor puts its ZERO extent (over data the filesystem uses).
const ZERO_AT: u64 = 4 * MIB;
/// Where it puts its NOACCESS extent (over free space).
const NOACCESS_AT: u64 = 48 * MIB;
/// Length of each.
const HOLE_LEN: u64 = MIB;

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&diskray_ok(args)).expect("one JSON document")
}

/// Byte ranges as (start, end) pairs, sorted and merged.
fn merged(mut v: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    v.sort();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (s, e) in v {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// Bytes of `a` that lie outside every range of `b` (both merged).
fn bytes_outside(a: &[(u64, u64)], b: &[(u64, u64)]) -> u64 {
    let mut total = 0;
    for &(s, e) in a {
        let mut covered = 0;
        for &(bs, be) in b {
            let (lo, hi) = (s.max(bs), e.min(be));
            if lo < hi {
                covered += hi - lo;
            }
        }
        total += (e - s) - covered;
    }
    total
}

fn ranges(doc: &Value, key: &str, state: Option<&[&str]>) -> Vec<(u64, u64)> {
    merged(
        doc[key]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| state.is_none_or(|s| s.contains(&r["state"].as_str().unwrap())))
            .map(|r| {
                let s = r["start"].as_u64().unwrap();
                (s, s + r["length"].as_u64().unwrap())
            })
            .collect(),
    )
}

#[test]
fn report_blocks_and_backup_agree_on_zero_and_noaccess_extents() {
    let dir = scratch("classification-agrees");
    let fs = guest_fixtures().join("images/ext4-4k.img");
    std::fs::copy(&fs, dir.join("fs.img")).unwrap();
    let size = std::fs::metadata(&fs).unwrap().len();
    assert_eq!(size, 64 * MIB, "the fixture is the 64 MiB ext4 image");
    let s = |b: u64| b / 512;
    let descriptor = format!(
        "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n\
         RW {} FLAT \"fs.img\" 0\n\
         RW {} ZERO\n\
         RW {} FLAT \"fs.img\" {}\n\
         NOACCESS {}\n\
         RW {} FLAT \"fs.img\" {}\n",
        s(ZERO_AT),
        s(HOLE_LEN),
        s(NOACCESS_AT - ZERO_AT - HOLE_LEN),
        s(ZERO_AT + HOLE_LEN),
        s(HOLE_LEN),
        s(size - NOACCESS_AT - HOLE_LEN),
        s(NOACCESS_AT + HOLE_LEN),
    );
    let disk = dir.join("disk.vmdk");
    std::fs::write(&disk, descriptor).unwrap();
    let disk = disk.to_str().unwrap();

    // The container facts, as the descriptor states them.
    let map = json(&["map", "--json", disk]);
    assert_eq!(
        ranges(&map, "ranges", Some(&["unreadable"])),
        vec![(NOACCESS_AT, NOACCESS_AT + HOLE_LEN)]
    );
    assert!(ranges(&map, "ranges", Some(&["zero"])).contains(&(ZERO_AT, ZERO_AT + HOLE_LEN)));
    let no_data = ranges(&map, "ranges", Some(&["zero", "unallocated", "unreadable"]));
    let count = |states: &[&str]| -> u64 {
        ranges(&map, "ranges", Some(states))
            .iter()
            .map(|(s, e)| e - s)
            .sum()
    };

    let report = json(&["report", "--json", disk]);
    let class = |k: &str| report["classes"][k].as_u64().unwrap();
    let total: u64 = [
        "unallocated",
        "zero",
        "used",
        "metadata",
        "free_zero",
        "free_residue",
        "excluded",
        "unknown",
    ]
    .iter()
    .map(|k| class(k))
    .sum();
    assert_eq!(total, size, "the classes tile the disk");
    assert_eq!(
        class("unallocated"),
        count(&["unallocated", "unreadable"]),
        "NOACCESS bytes are unallocated to every consumer"
    );
    assert_eq!(class("zero"), count(&["zero"]));
    let kept = class("used") + class("metadata") + class("unknown");
    assert_eq!(report["backup_read_bytes"].as_u64().unwrap(), kept);

    // blocks lists the guest's view; less the container's no-data ranges, it is the kept set.
    let blocks = json(&["blocks", "--json", "--state", "used", disk]);
    let used = ranges(&blocks, "ranges", None);
    assert_eq!(bytes_outside(&used, &no_data), kept);

    let repo = dir.join("repo");
    let backup = json(&[
        "backup",
        "--json",
        disk,
        "--repo",
        repo.to_str().unwrap(),
        "--name",
        "agree",
    ]);
    let stat = |k: &str| backup["stats"][k].as_u64().unwrap();
    assert_eq!(stat("kept"), kept);
    assert_eq!(stat("read_from_source"), kept);
    assert_eq!(stat("skipped_unallocated"), class("unallocated"));
    assert_eq!(stat("skipped_zero"), class("zero"));
    assert_eq!(
        stat("skipped_free"),
        class("free_zero") + class("free_residue")
    );
    assert_eq!(stat("skipped_excluded"), class("excluded"));
    let warned = backup["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("unreadable"));
    assert!(warned, "the backup says NOACCESS bytes are not backed up");
}
