//! Guest filesystems and partitioned disks against the ground truth recorded beside them by
//! independent tools (dumpe2fs, blkls, partclone, xfs_db, sfdisk, sgdisk): used maps, the
//! deleted data left in free space, partition tables, and the report's classes. See
//! `fixtures/guests/README.md`.

mod common;

use common::*;
use serde_json::Value;

fn truth(name: &str) -> Value {
    serde_json::from_slice(
        &std::fs::read(
            root()
                .join("fixtures/guests/truth")
                .join(format!("{name}.json")),
        )
        .unwrap(),
    )
    .unwrap()
}

/// Every filesystem truth file (those without a partition scheme).
fn filesystems() -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(root().join("fixtures/guests/truth"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .map(|n| {
            let t = truth(&n);
            (n, t)
        })
        .filter(|(_, t)| t.get("scheme").is_none() && t.get("used").is_some())
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        out.len() >= 12,
        "expected the full guest fixture set, found {}",
        out.len()
    );
    out
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

fn blocks(image: &str, state: &str) -> Value {
    let path = guest_fixtures().join("images").join(image);
    serde_json::from_str(&diskray_ok(&[
        "blocks",
        "--json",
        "--state",
        state,
        path.to_str().unwrap(),
    ]))
    .unwrap()
}

fn bytes(r: &[(u64, u64)]) -> u64 {
    r.iter().map(|x| x.1).sum()
}

fn subtract(a: &[(u64, u64)], b: &[(u64, u64)]) -> u64 {
    // Bytes of a not covered by b (both sorted, disjoint).
    let mut missing = 0;
    for &(s, l) in a {
        let mut covered = 0;
        for &(t, m) in b {
            let lo = s.max(t);
            let hi = (s + l).min(t + m);
            if lo < hi {
                covered += hi - lo;
            }
        }
        missing += l - covered;
    }
    missing
}

/// Where diskray deliberately differs from the recorded truth, and why.
fn expected_difference(
    name: &str,
    t: &Value,
    ours: &[(u64, u64)],
    want: &[(u64, u64)],
) -> Option<String> {
    let fs = t["filesystem"].as_str().unwrap();
    if fs.starts_with("fat") {
        // Sectors after the last whole cluster belong to no cluster: used for us (as
        // partclone says), non-clustered for TSK. Nothing else may differ.
        let extra = subtract(ours, want);
        let missing = subtract(want, ours);
        let size = t["size"].as_u64().unwrap();
        let tail_ok = ours.last().is_some_and(|l| l.0 + l.1 == size);
        return (missing == 0 && extra < 64 * 1024 && tail_ok)
            .then(|| format!("{name}: {extra} bytes after the last cluster"));
    }
    None
}

#[test]
fn used_maps_equal_ground_truth() {
    let mut failures = Vec::new();
    for (name, t) in filesystems() {
        let image = t["image"].as_str().unwrap();
        let ours_doc = blocks(image, "used");
        let ours = ranges(&ours_doc["ranges"]);
        let want = ranges(&t["used"]);
        if name == "ext4-dirty" {
            // A journal that needs recovery: the replayed map, exactly (dumpe2fs, blkls and
            // partclone all read the stale on-disk bitmap), and a warning that says so.
            let warned = ours_doc["warnings"].to_string().contains("replayed");
            if ours != want || !warned {
                failures.push(format!(
                    "{name}: missing {}, extra {}, warned {warned}: {}",
                    subtract(&want, &ours),
                    subtract(&ours, &want),
                    ours_doc["warnings"]
                ));
            }
            continue;
        }
        if ours == want {
            continue;
        }
        match expected_difference(&name, &t, &ours, &want) {
            Some(_) => {}
            None => failures.push(format!(
                "{name}: used {} bytes vs truth {} ({}); missing {}, extra {}",
                bytes(&ours),
                bytes(&want),
                t["used_by"],
                subtract(&want, &ours),
                subtract(&ours, &want)
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn residue_equals_the_deleted_data_left_in_free_space() {
    let mut failures = Vec::new();
    for (name, t) in filesystems() {
        let Some(want) = t["free_nonzero_bytes"].as_u64() else {
            continue;
        };
        let got = blocks(t["image"].as_str().unwrap(), "residue")["bytes"]
            .as_u64()
            .unwrap();
        if got != want {
            failures.push(format!("{name}: residue {got} bytes, truth {want}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn swap_is_excluded_beyond_its_header() {
    let t = truth("swap");
    let ex = blocks(t["image"].as_str().unwrap(), "excluded");
    assert_eq!(ranges(&ex["ranges"]), ranges(&t["excluded"]));
}

fn disks() -> Vec<(String, Value)> {
    ["disk-gpt", "disk-mbr"]
        .iter()
        .map(|n| (n.to_string(), truth(n)))
        .collect()
}

#[test]
fn partition_tables_equal_sfdisk_and_sgdisk() {
    for (name, t) in disks() {
        let path = guest_fixtures()
            .join("images")
            .join(t["image"].as_str().unwrap());
        let ours: Value = serde_json::from_str(&diskray_ok(&[
            "partitions",
            "--json",
            path.to_str().unwrap(),
        ]))
        .unwrap();
        assert_eq!(ours["scheme"], t["scheme"], "{name}");
        let mine = ours["partitions"].as_array().unwrap();
        let theirs = t["partitions"].as_array().unwrap();
        assert_eq!(mine.len(), theirs.len(), "{name}: {ours}");
        for (a, b) in mine.iter().zip(theirs) {
            for key in ["index", "start", "length", "type", "content"] {
                if b.get(key).is_some() {
                    assert_eq!(
                        a[key].to_string().to_lowercase(),
                        b[key].to_string().to_lowercase(),
                        "{name}: partition {} {key}",
                        b["index"]
                    );
                }
            }
        }
    }
}

#[test]
fn partitioned_disks_map_every_volume_like_its_filesystem() {
    for (name, t) in disks() {
        let path = guest_fixtures()
            .join("images")
            .join(t["image"].as_str().unwrap());
        let used: Value = serde_json::from_str(&diskray_ok(&[
            "blocks",
            "--json",
            "--state",
            "used",
            path.to_str().unwrap(),
        ]))
        .unwrap();
        let ours = ranges(&used["ranges"]);
        for v in t["volumes"].as_array().unwrap() {
            let fs = truth(v["truth"].as_str().unwrap());
            let part = t["partitions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["index"] == v["index"])
                .unwrap();
            let start = part["start"].as_u64().unwrap();
            let len = part["length"].as_u64().unwrap();
            let want: Vec<(u64, u64)> = ranges(&fs["used"])
                .into_iter()
                .map(|(s, l)| (s + start, l))
                .collect();
            let inside: Vec<(u64, u64)> = ours
                .iter()
                .filter_map(|&(s, l)| {
                    let lo = s.max(start);
                    let hi = (s + l).min(start + len);
                    (lo < hi).then(|| (lo, hi - lo))
                })
                .collect();
            let missing = subtract(&want, &inside);
            let extra = subtract(&inside, &want);
            // Swap: only its header is used. FAT: the sectors after the last cluster. A
            // partition larger than its filesystem: the slack is unknown (used).
            let slack = len - fs["size"].as_u64().unwrap().min(len);
            assert!(
                missing == 0 && extra <= slack + 64 * 1024,
                "{name}: volume {} ({}): missing {missing}, extra {extra}",
                v["index"],
                v["truth"]
            );
        }
        // Report classes tile the disk.
        let report: Value =
            serde_json::from_str(&diskray_ok(&["report", "--json", path.to_str().unwrap()]))
                .unwrap();
        let total: u64 = report["classes"]
            .as_object()
            .unwrap()
            .values()
            .map(|b| b.as_u64().unwrap())
            .sum();
        assert_eq!(
            total,
            report["capacity"].as_u64().unwrap(),
            "{name}: classes sum"
        );
        // Unpartitioned data is outside any filesystem: unknown, hence used.
        for (s, l) in ranges(&t["unpartitioned_data"]) {
            assert_eq!(
                subtract(&[(s, l)], &ours),
                0,
                "{name}: unpartitioned data at {s} not used"
            );
        }
    }
}

#[test]
fn the_vmdk_of_a_disk_reports_like_the_raw_disk() {
    let t = truth("disk-gpt");
    let Some(vmdk) = t["vmdk"].as_str() else {
        return;
    };
    let raw = guest_fixtures()
        .join("images")
        .join(t["image"].as_str().unwrap());
    let vmdk = guest_fixtures().join("images").join(vmdk);
    let r: Value =
        serde_json::from_str(&diskray_ok(&["report", "--json", raw.to_str().unwrap()])).unwrap();
    let v: Value =
        serde_json::from_str(&diskray_ok(&["report", "--json", vmdk.to_str().unwrap()])).unwrap();
    assert_eq!(
        r["volumes"].as_array().unwrap().len(),
        v["volumes"].as_array().unwrap().len()
    );
    for (a, b) in r["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .zip(v["volumes"].as_array().unwrap())
    {
        assert_eq!(
            (&a["filesystem"], &a["used"], &a["free"]),
            (&b["filesystem"], &b["used"], &b["free"])
        );
        assert_eq!(a["classes"]["free_residue"], b["classes"]["free_residue"]);
    }
}
