//! Invariant 1 on every guest filesystem fixture: back each image up, restore it, and
//! compare with the independent tools' used maps (`fixtures/guests/truth`): every used
//! byte equals the source, every other byte is zero — so the deleted data each fixture
//! holds in its free space (hundreds of KiB, recorded by the truth) is gone, and swap is
//! dropped beyond its header unless `--keep-swap`.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn truth(name: &str) -> Value {
    let p = root()
        .join("fixtures/guests/truth")
        .join(format!("{name}.json"));
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn ranges(v: &Value) -> Vec<(u64, u64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| match r {
            Value::Array(a) => (a[0].as_u64().unwrap(), a[1].as_u64().unwrap()),
            o => (o["start"].as_u64().unwrap(), o["length"].as_u64().unwrap()),
        })
        .collect()
}

/// Backs `image` up into `repo` under `name` and restores it; returns (source, restored,
/// backup JSON).
fn round_trip(image: &Path, repo: &Path, name: &str, extra: &[&str]) -> (Vec<u8>, Vec<u8>, Value) {
    let mut args = vec![
        "backup",
        s(image),
        "--repo",
        s(repo),
        "--name",
        name,
        "--json",
    ];
    args.extend_from_slice(extra);
    let b: Value = serde_json::from_str(&diskray_ok(&args)).unwrap();
    let out = repo.parent().unwrap().join(format!("{name}.restored"));
    diskray_ok(&[
        "restore",
        "--repo",
        s(repo),
        b["image"].as_str().unwrap(),
        s(&out),
    ]);
    let restored = std::fs::read(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    (std::fs::read(image).unwrap(), restored, b)
}

/// Bytes outside the truth's used map that diskray keeps on purpose, by fixture (see
/// `fixtures/guests/README.md`): FAT's non-clustered tail (less than one cluster) and
/// NTFS's last 4 KiB (non-clustered sectors and the backup boot sector), which the
/// reference tools leave out.
fn allowance(name: &str, t: &Value) -> u64 {
    if name.starts_with("fat") {
        t["block_size"].as_u64().unwrap()
    } else if name == "ntfs" {
        4096
    } else {
        0
    }
}

#[test]
fn every_guest_filesystem_restores_used_bytes_and_zeros_elsewhere() {
    let dir = scratch("backup_guests");
    let repo = dir.join("repo");
    let names = [
        "ext2",
        "ext3",
        "ext4-1k",
        "ext4-4k",
        "ext4-bigalloc",
        "ext4-dirty",
        "ext4-metabg",
        "ext4-nocsum-uninit",
        "ext4-resized",
        "ext4-sparse2",
        "fat12",
        "fat16",
        "fat32",
        "fat32-nomirror",
        "ntfs",
        "xfs",
    ];
    let mut failures = Vec::new();
    for name in names {
        let t = truth(name);
        let image = guest_fixtures()
            .join("images")
            .join(t["image"].as_str().unwrap());
        let (src, got, b) = round_trip(&image, &repo, name, &[]);
        assert_eq!(src.len(), got.len(), "{name}: size");
        let mut used = vec![false; src.len()];
        for (start, len) in ranges(&t["used"]) {
            used[start as usize..(start + len) as usize].fill(true);
        }
        let mut used_wrong = 0u64;
        let mut free_kept = 0u64;
        for i in 0..src.len() {
            if used[i] {
                used_wrong += (got[i] != src[i]) as u64;
            } else if got[i] != 0 {
                free_kept += 1;
            }
        }
        let residue = t["free_nonzero_bytes"].as_u64().unwrap();
        let free_nonzero_src = (0..src.len()).filter(|&i| !used[i] && src[i] != 0).count() as u64;
        if used_wrong > 0 {
            failures.push(format!(
                "{name}: {used_wrong} used bytes differ from the source"
            ));
        }
        if free_kept > allowance(name, &t) {
            failures.push(format!(
                "{name}: {free_kept} free bytes restored non-zero (the source holds {free_nonzero_src} non-zero free bytes, {residue} in whole deleted units)"
            ));
        }
        if residue > 0 && free_nonzero_src == 0 {
            failures.push(format!("{name}: the fixture holds no deleted data to drop"));
        }
        if b["stats"]["skipped_free"].as_u64().unwrap() == 0 {
            failures.push(format!("{name}: skipped_free is 0: {}", b["stats"]));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn swap_is_dropped_beyond_its_header_unless_kept() {
    let dir = scratch("backup_guests_swap");
    let repo = dir.join("repo");
    let t = truth("swap");
    // A dense copy with swapped-out pages (a pattern) in the excluded area, so that the
    // exclusion shows in the bytes and the container has nothing unallocated.
    let mut bytes = std::fs::read(
        guest_fixtures()
            .join("images")
            .join(t["image"].as_str().unwrap()),
    )
    .unwrap();
    for (start, len) in ranges(&t["excluded"]) {
        for (i, b) in bytes[start as usize..(start + len) as usize]
            .iter_mut()
            .enumerate()
        {
            *b = (i % 251) as u8 | 1;
        }
    }
    let image = dir.join("swap-in-use.img");
    std::fs::write(&image, &bytes).unwrap();
    let (src, got, b) = round_trip(&image, &repo, "swap", &[]);
    let excluded: u64 = ranges(&t["excluded"]).iter().map(|r| r.1).sum();
    assert_eq!(
        b["stats"]["skipped_excluded"].as_u64().unwrap(),
        excluded,
        "{}",
        b["stats"]
    );
    for (start, len) in ranges(&t["used"]) {
        let r = start as usize..(start + len) as usize;
        assert_eq!(got[r.clone()], src[r], "swap header");
    }
    for (start, len) in ranges(&t["excluded"]) {
        let r = start as usize..(start + len) as usize;
        assert!(
            got[r].iter().all(|&x| x == 0),
            "excluded swap restored non-zero"
        );
    }
    let (src, got, b) = round_trip(&image, &repo, "swap-kept", &["--keep-swap"]);
    assert_eq!(b["stats"]["skipped_excluded"], 0);
    assert!(got == src, "--keep-swap restores the whole swap area");
}

#[test]
fn keep_deleted_keeps_the_deleted_data() {
    let dir = scratch("backup_guests_keep_deleted");
    let repo = dir.join("repo");
    let t = truth("ext4-1k");
    let image = guest_fixtures()
        .join("images")
        .join(t["image"].as_str().unwrap());
    let (src, got, b) = round_trip(&image, &repo, "kd", &["--keep-deleted"]);
    assert_eq!(b["stats"]["skipped_free"], 0, "{}", b["stats"]);
    assert!(got == src, "--keep-deleted restores free space as it was");
}
