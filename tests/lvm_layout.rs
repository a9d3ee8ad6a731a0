//! LVM2 in the disk's tree, against what LVM's and e2fsprogs' own tools say of the same
//! disks (`fixtures/lvm/README.md`): the logical volumes are found where `lvs` puts them,
//! the root LV's used map is `dumpe2fs`'s, its files are the ones the kernel wrote, every
//! byte of the disk is in one class, and a backup of the disk restores an LV `e2fsck`
//! finds clean, with its files, and its free space zero.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The linear fixture: GPT, partition 2 a PV of `vg0` holding `root` (ext4) and `swap`.
fn linear() -> PathBuf {
    expanded("lvm/images").join("linear.img")
}

fn truth(name: &str) -> String {
    std::fs::read_to_string(root().join("fixtures/lvm/truth").join(name)).unwrap()
}

/// Partition 2's first byte: the `-n 2:18432:…` of `fixtures/lvm/make.sh`'s sgdisk call.
const PARTITION_2: u64 = 18432 * 512;

/// `pe_start` and the extent runs `pvs` and `lvs --segments` report for `lv` (bytes,
/// disk-absolute), and the extent size `vgcfgbackup` records.
fn lvs_extents(lv: &str) -> Vec<(u64, u64)> {
    let pvs: Value = serde_json::from_str(&truth("linear.pvs.json")).unwrap();
    let pe_start: u64 = pvs["report"][0]["pv"][0]["pe_start"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let cfg = truth("linear.vgcfg.txt");
    let sectors: u64 = cfg
        .lines()
        .find_map(|l| l.trim().strip_prefix("extent_size = "))
        .and_then(|v| v.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    let extent = sectors * 512;
    let lvs: Value = serde_json::from_str(&truth("linear.lvs.json")).unwrap();
    lvs["report"][0]["seg"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["lv_name"] == lv)
        .map(|s| {
            // "linear.img:p2:0-11": first and last extent on the PV.
            let ranges = s["seg_pe_ranges"].as_str().unwrap();
            let (a, b) = ranges.rsplit(':').next().unwrap().split_once('-').unwrap();
            let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
            (PARTITION_2 + pe_start + a * extent, (b - a + 1) * extent)
        })
        .collect()
}

/// The used blocks of the root LV as `dumpe2fs` reads them (everything but its free
/// blocks), in bytes relative to the LV.
fn dumpe2fs_used() -> Vec<(u64, u64)> {
    let d = truth("linear.root.dumpe2fs.txt");
    let field = |name: &str| -> u64 {
        d.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let (bs, count) = (field("Block size:"), field("Block count:"));
    let mut free = Vec::new();
    for l in d.lines() {
        // The per-group lines (indented), not the superblock's count.
        let Some(list) = l.strip_prefix("  Free blocks: ") else {
            continue;
        };
        for r in list.split(", ").filter(|r| !r.is_empty()) {
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
            free.push((a, b + 1));
        }
    }
    free.sort();
    let mut used = Vec::new();
    let mut at = 0;
    for (a, b) in free {
        if a > at {
            used.push((at * bs, (a - at) * bs));
        }
        at = b;
    }
    if at < count {
        used.push((at * bs, (count - at) * bs));
    }
    used
}

fn ranges(v: &Value) -> Vec<(u64, u64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| (r["start"].as_u64().unwrap(), r["length"].as_u64().unwrap()))
        .collect()
}

/// `set` clipped to `[start, start + len)` and shifted to start at 0.
fn within(set: &[(u64, u64)], start: u64, len: u64) -> Vec<(u64, u64)> {
    set.iter()
        .filter_map(|&(s, l)| {
            let lo = s.max(start);
            let hi = (s + l).min(start + len);
            (lo < hi).then(|| (lo - start, hi - lo))
        })
        .collect()
}

fn report(disk: &Path) -> Value {
    serde_json::from_str(&diskray_ok(&["report", "--json", disk.to_str().unwrap()])).unwrap()
}

#[test]
fn logical_volumes_are_found_where_lvs_puts_them() {
    let r = report(&linear());
    let vols = r["volumes"].as_array().unwrap();
    for (lv, fs) in [("root", "ext4"), ("swap", "swap")] {
        let v = vols
            .iter()
            .find(|v| v["lv"] == format!("vg0/{lv}"))
            .unwrap_or_else(|| panic!("no volume vg0/{lv} in {vols:#?}"));
        assert_eq!(v["filesystem"], fs, "vg0/{lv}");
        assert_eq!(ranges(&v["extents"]), lvs_extents(lv), "vg0/{lv} extents");
    }
    let pv = vols
        .iter()
        .find(|v| v["index"] == 2 && v["lv"].is_null())
        .unwrap();
    assert_eq!(pv["filesystem"], "lvm2");
    assert_eq!(pv["label"], "vg0");
    // Every byte in one class.
    let sum: u64 = r["classes"]
        .as_object()
        .unwrap()
        .values()
        .map(|b| b.as_u64().unwrap())
        .sum();
    assert_eq!(sum, r["capacity"].as_u64().unwrap());
    // Swap is excluded, whole (but its header page).
    let swap = vols.iter().find(|v| v["lv"] == "vg0/swap").unwrap();
    assert_eq!(swap["classes"]["excluded"], (3u64 << 20) - 4096);
}

#[test]
fn the_root_lvs_used_map_is_dumpe2fs() {
    let disk = linear();
    let b: Value = serde_json::from_str(&diskray_ok(&[
        "blocks",
        "--json",
        "--state",
        "used",
        disk.to_str().unwrap(),
    ]))
    .unwrap();
    let [(start, len)] = lvs_extents("root")[..] else {
        panic!("root is one run in this fixture")
    };
    assert_eq!(within(&ranges(&b["ranges"]), start, len), dumpe2fs_used());
}

#[test]
fn files_of_an_lv_are_the_files_the_kernel_wrote() {
    let disk = linear();
    let d = disk.to_str().unwrap();
    let listed = diskray_ok(&["ls", "-r", "-p", "vg0/root", d]);
    let want = truth("linear.root-files.txt");
    assert!(!want.is_empty());
    for line in want.lines() {
        let (sum, path) = line.split_once("  ").unwrap();
        let path = path.trim_start_matches('.');
        assert!(listed.contains(path), "ls does not list {path}:\n{listed}");
        let out = diskray(&["cat", "-p", "vg0/root", d, path]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(sha256(&out.stdout), sum, "{path}");
    }
    // An LV is chosen by VG/LV; the PV's partition number is not a filesystem.
    let out = diskray(&["ls", "-p", "2", d]);
    assert!(!out.status.success());
}

#[test]
fn a_backup_restores_the_lv_clean_with_its_files_and_no_deleted_data() {
    let disk = linear();
    let d = disk.to_str().unwrap();
    let tmp = scratch("lvm-backup");
    let repo = tmp.join("repo");
    let r = repo.to_str().unwrap();
    diskray_ok(&["backup", d, "--repo", r, "--name", "vm"]);
    let restored = tmp.join("restored.img");
    diskray_ok(&["restore", "--repo", r, "vm", restored.to_str().unwrap()]);
    let [(start, len)] = lvs_extents("root")[..] else {
        panic!("root is one run in this fixture")
    };
    let cut = |img: &Path, name: &str| -> Vec<u8> {
        let bytes = std::fs::read(img).unwrap();
        let lv = bytes[start as usize..(start + len) as usize].to_vec();
        std::fs::write(tmp.join(name), &lv).unwrap();
        lv
    };
    let before = cut(&disk, "before.ext4");
    let after = cut(&restored, "after.ext4");
    // Used blocks equal, free blocks zero (dumpe2fs's map of the original).
    let used = dumpe2fs_used();
    let mut at = 0usize;
    for (s, l) in used {
        let (s, e) = (s as usize, (s + l) as usize);
        assert!(
            after[at..s].iter().all(|&b| b == 0),
            "free bytes {at}..{s} not zero"
        );
        assert_eq!(before[s..e], after[s..e], "used bytes {s}..{e} differ");
        at = e;
    }
    assert!(after[at..].iter().all(|&b| b == 0));
    let fsck = Command::new("e2fsck")
        .args(["-fn", tmp.join("after.ext4").to_str().unwrap()])
        .output()
        .expect("e2fsck (e2fsprogs) is installed");
    assert!(
        fsck.status.success(),
        "e2fsck on the restored LV: {}",
        String::from_utf8_lossy(&fsck.stdout)
    );
    // Its files, read back from the image without restoring.
    for line in truth("linear.root-files.txt").lines() {
        let (sum, path) = line.split_once("  ").unwrap();
        let path = path.trim_start_matches('.');
        let out = diskray(&["restore-file", "--repo", r, "vm", "-p", "vg0/root", path]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(sha256(&out.stdout), sum, "{path}");
    }
}
