//! Files and deleted files of every guest filesystem fixture against the ground truth
//! recorded beside it by independent tools (debugfs, mtools, ntfs-3g, TSK fls/icat,
//! xfs_db): every path listed with its type, size, inode, time and extents, every file's
//! SHA-256 equal to the source file that went in, every deleted file the tools found
//! found by us with the same recoverability and, when recoverable, the original content.
//! See `fixtures/files/README.md`.

mod common;

use common::*;
use serde_json::Value;
use std::collections::HashMap;

fn truths() -> Vec<(String, Value)> {
    let dir = root().join("fixtures/files/truth");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            (
                p.file_stem().unwrap().to_string_lossy().into_owned(),
                serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap(),
            )
        })
        .filter(|(_, t): &(String, Value)| t.get("files").is_some())
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no file truth");
    out
}

fn image(t: &Value) -> String {
    file_fixtures()
        .join("images")
        .join(t["image"].as_str().unwrap())
        .to_string_lossy()
        .into_owned()
}

fn listing(img: &str, deleted: bool) -> HashMap<String, Value> {
    let mut args = vec!["ls", "-r", "--json", img];
    if deleted {
        args.push("--deleted");
    }
    let v: Value = serde_json::from_str(&diskray_ok(&args)).unwrap();
    v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["path"].as_str().unwrap().to_string(), e.clone()))
        .collect()
}

fn key(t: &Value, path: &str) -> String {
    let ci = matches!(t["filesystem"].as_str(), Some(f) if f.starts_with("fat") || f == "ntfs");
    if ci {
        path.to_lowercase()
    } else {
        path.to_string()
    }
}

#[test]
fn every_file_is_listed_like_the_tools_list_it() {
    let mut failures = Vec::new();
    for (name, t) in truths() {
        let ours: HashMap<String, Value> = listing(&image(&t), false)
            .into_iter()
            .map(|(p, e)| (key(&t, &p), e))
            .collect();
        let mut expected = 0;
        for f in t["files"].as_array().unwrap() {
            let path = f["path"].as_str().unwrap();
            if path == "/" {
                continue;
            }
            expected += 1;
            let Some(e) = ours.get(&key(&t, path)) else {
                failures.push(format!("{name}: {path} not listed"));
                continue;
            };
            let kind = f["type"].as_str().unwrap();
            if e["type"] != kind {
                failures.push(format!("{name}: {path}: type {} vs {kind}", e["type"]));
            }
            if kind != "dir" && f.get("size").is_some() && e["size"] != f["size"] {
                failures.push(format!(
                    "{name}: {path}: size {} vs {}",
                    e["size"], f["size"]
                ));
            }
            if let Some(target) = f.get("target").filter(|v| v.is_string()) {
                if &e["target"] != target {
                    failures.push(format!(
                        "{name}: {path}: target {} vs {target}",
                        e["target"]
                    ));
                }
            }
            if let Some(mtime) = f.get("mtime").filter(|v| v.is_string()) {
                if &e["mtime"] != mtime {
                    failures.push(format!("{name}: {path}: mtime {} vs {mtime}", e["mtime"]));
                }
            }
            if let (
                Some(ino),
                Some("ext inode numbers" | "XFS inode numbers" | "MFT record numbers"),
            ) = (f["inode"].as_u64(), t["inode_numbering"].as_str())
            {
                if e["inode"].as_u64() != Some(ino) {
                    failures.push(format!("{name}: {path}: inode {} vs {ino}", e["inode"]));
                }
            }
            if let (Some(want), "file") = (f.get("extents").and_then(|x| x.as_array()), kind) {
                let got: Vec<(u64, u64)> = e["extents"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| (r["start"].as_u64().unwrap(), r["length"].as_u64().unwrap()))
                    .collect();
                let want: Vec<(u64, u64)> = want
                    .iter()
                    .map(|r| (r[0].as_u64().unwrap(), r[1].as_u64().unwrap()))
                    .collect();
                if !want.is_empty() && got != want {
                    failures.push(format!("{name}: {path}: extents {got:?} vs {want:?}"));
                }
            }
        }
        // Alternate data streams are listed as `path:stream`; the truth records them in the
        // file's entry.
        let mut streams = 0;
        for f in t["files"].as_array().unwrap() {
            for st in f["streams"].as_array().into_iter().flatten() {
                streams += 1;
                let p = format!(
                    "{}:{}",
                    f["path"].as_str().unwrap(),
                    st["name"].as_str().unwrap()
                );
                match ours.get(&key(&t, &p)) {
                    Some(e) if e["size"] == st["size"] => {}
                    other => failures.push(format!(
                        "{name}: stream {p}: {other:?} vs size {}",
                        st["size"]
                    )),
                }
            }
        }
        let listed = ours.len() - streams;
        if listed != expected {
            let truth_paths: std::collections::HashSet<String> = t["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| key(&t, f["path"].as_str().unwrap()))
                .collect();
            let extra: Vec<&String> = ours
                .keys()
                .filter(|p| !truth_paths.contains(*p))
                .take(5)
                .collect();
            failures.push(format!(
                "{name}: we list {listed} paths, the truth has {expected}; extra: {extra:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_file_reads_back_identical() {
    let mut failures = Vec::new();
    let out_dir = scratch("files_cat");
    for (name, t) in truths() {
        let img = image(&t);
        for f in t["files"].as_array().unwrap() {
            let (Some(path), Some(want)) = (f["path"].as_str(), f["sha256"].as_str()) else {
                continue;
            };
            if f["type"] != "file" {
                continue;
            }
            let out = diskray(&["cat", &img, path]);
            let got = sha256(&out.stdout);
            if !out.status.success() || got != want {
                failures.push(format!(
                    "{name}: {path}: sha256 {got} vs {want}: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        let _ = &out_dir;
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn deleted_files_are_found_with_their_recoverability() {
    let mut failures = Vec::new();
    for (name, t) in truths() {
        let Some(deleted) = t["deleted"].as_array().filter(|d| !d.is_empty()) else {
            continue;
        };
        let img = image(&t);
        let ours = listing(&img, true);
        for d in deleted {
            let path = d["path"].as_str().unwrap();
            let tsk_name = d["fls_d_name"].as_str().unwrap_or(path);
            let by_path =
                |p: &String| key(&t, p) == key(&t, path) || key(&t, p) == key(&t, tsk_name);
            let mut found = ours.iter().find(|(p, _)| by_path(p));
            // A name whose inode number was zeroed (inode 0, as TSK shows it): its data is
            // reached through the deleted inode itself.
            if found.is_none_or(|(_, e)| e["inode"] == 0) {
                if let Some(ino) = d["inode"].as_u64().filter(|&i| i != 0) {
                    let ext = t["filesystem"]
                        .as_str()
                        .is_some_and(|f| f.starts_with("ext"));
                    if let Some(by_inode) = ours.iter().find(|(_, e)| ext && e["inode"] == ino) {
                        found = Some(by_inode);
                    }
                }
            }
            let Some((our_path, e)) = found else {
                failures.push(format!(
                    "{name}: deleted {path} not found (we list {:?})",
                    ours.keys().collect::<Vec<_>>()
                ));
                continue;
            };
            if e["size"] != d["size"] {
                failures.push(format!(
                    "{name}: deleted {path}: size {} vs {}",
                    e["size"], d["size"]
                ));
            }
            if e["recoverable"] != d["recoverable"] {
                failures.push(format!(
                    "{name}: deleted {path}: recoverable {} vs {}",
                    e["recoverable"], d["recoverable"]
                ));
            }
            if d["recoverable"] == true {
                if let Some(want) = d["sha256_original"].as_str() {
                    let out = diskray(&["cat", "--deleted", &img, our_path]);
                    let got = sha256(&out.stdout);
                    if got != want {
                        failures.push(format!(
                            "{name}: deleted {path}: recovered sha256 {got} vs {want}: {}",
                            String::from_utf8_lossy(&out.stderr)
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
