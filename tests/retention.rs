//! Retention policies against restic's own `forget`: the times restic 0.14 keeps for each
//! policy of `fixtures/retention/policies.txt`, over the 149 backup times of `times.txt`
//! (recorded by `fixtures/retention/make.sh`), are the times diskray keeps, through the
//! library and through `diskray backup --time` and `diskray forget --keep-*`.

mod common;
use common::*;
use diskray_core::time::parse_utc;
use diskray_store::retention::{apply, Policy};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(root().join("fixtures/retention").join(name)).unwrap()
}

/// A policy's command-line words, and the times restic keeps with it.
type Case = (Vec<String>, BTreeSet<String>);

/// The times, and per policy the times restic keeps.
fn truth() -> (Vec<String>, Vec<Case>) {
    let times: Vec<String> = fixture("times.txt").lines().map(String::from).collect();
    let kept = fixture("kept.txt");
    let policies = fixture("policies.txt");
    let cases = policies
        .lines()
        .filter(|l| !l.is_empty())
        .zip(kept.lines())
        .map(|(p, k)| {
            let words = p.split_whitespace().map(String::from).collect();
            (words, k.split(',').map(String::from).collect())
        })
        .collect();
    (times, cases)
}

/// A policy from its command-line words.
fn policy(words: &[String]) -> Policy {
    let mut p = Policy::default();
    for w in words.chunks(2) {
        let v = &w[1];
        let n = || v.parse::<u32>().unwrap();
        match w[0].as_str() {
            "--keep-last" => p.last = n(),
            "--keep-hourly" => p.hourly = n(),
            "--keep-daily" => p.daily = n(),
            "--keep-weekly" => p.weekly = n(),
            "--keep-monthly" => p.monthly = n(),
            "--keep-yearly" => p.yearly = n(),
            "--keep-within" => p.within = Some(v.parse().unwrap()),
            other => panic!("{other}"),
        }
    }
    p
}

#[test]
fn policies_keep_what_restic_keeps() {
    let (times, cases) = truth();
    let micros: Vec<i64> = times
        .iter()
        .map(|t| parse_utc(t).unwrap() * 1_000_000)
        .collect();
    assert!(cases.len() >= 10, "the fixture's policies");
    for (words, want) in cases {
        let decided = apply(&policy(&words), &micros);
        let kept: BTreeSet<String> = times
            .iter()
            .zip(&decided)
            .filter(|(_, r)| !r.is_empty())
            .map(|(t, _)| t.clone())
            .collect();
        assert!(
            kept.contains(times.last().unwrap()),
            "{words:?}: the newest"
        );
        assert_eq!(kept, want, "{}", words.join(" "));
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `forget --json`'s backups of `name` under `key` (`keep` or `remove`), as
/// `YYYY-MM-DD HH:MM:SS` times.
fn times_of(doc: &Value, name: &str, key: &str) -> BTreeSet<String> {
    let n = doc["names"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {doc:#}"));
    n[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["time"].as_str().unwrap()[..19].replace('T', " "))
        .collect()
}

#[test]
fn forget_with_a_policy_keeps_what_restic_keeps_and_machines_together() {
    let dir = scratch("retention");
    forget_by_policy_in(&dir.join("repo"), &dir);
}

/// The same on an S3 repository (s3s-fs on loopback).
#[test]
fn s3_forget_with_a_policy_keeps_what_restic_keeps_and_machines_together() {
    let Some(srv) = common::s3::shared() else {
        return;
    };
    forget_by_policy_in(&srv.repo("retention"), &scratch("retention-s3"));
}

/// Backs up `times` into `repo` (disks made in `dir`), then checks every policy's
/// decisions against restic's and a real forget with --prune.
fn forget_by_policy_in(repo: &Path, dir: &Path) {
    let (times, cases) = truth();
    let r = s(repo);
    let disk = dir.join("disk.raw");
    let bytes: Vec<u8> = (0..65536u32)
        .map(|i| i.wrapping_mul(2_654_435_761) as u8)
        .collect();
    std::fs::write(&disk, &bytes).unwrap();
    for t in &times {
        diskray_ok(&[
            "backup",
            s(&disk),
            "--repo",
            r,
            "--name",
            "web",
            "--time",
            t,
        ]);
    }
    // A machine of two disks, backed up at three of the same times.
    let disk2 = dir.join("disk2.raw");
    std::fs::write(&disk2, &bytes[..32768]).unwrap();
    let machine_times = &times[times.len() - 3..];
    for t in machine_times {
        let args = ["backup", s(&disk), s(&disk2), "--repo", r, "--name", "vm"];
        diskray_ok(&[&args[..], &["--time", t]].concat());
    }
    // Dry runs: every policy, the times restic keeps; nothing is removed.
    for (words, want) in &cases {
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        let args = [&["forget", "--repo", r, "--dry-run", "--json"][..], &w].concat();
        let doc: Value = serde_json::from_str(&diskray_ok(&args)).unwrap();
        assert_eq!(doc["dry_run"], true);
        assert_eq!(&times_of(&doc, "web", "keep"), want, "{}", words.join(" "));
        let removed = times_of(&doc, "web", "remove");
        assert_eq!(
            removed.len() + want.len(),
            times.len(),
            "{}",
            words.join(" ")
        );
    }
    let listed = |name: &str| -> usize {
        let doc: Value =
            serde_json::from_str(&diskray_ok(&["images", "--repo", r, "--json"])).unwrap();
        let all = doc["images"].as_array().unwrap();
        all.iter()
            .filter(|i| i["name"].as_str().unwrap().starts_with(name))
            .count()
    };
    assert_eq!(listed("web"), times.len(), "a dry run forgets nothing");
    // For real, with --prune: `web` keeps restic's choice; `vm`'s disks go together.
    let (words, want) = &cases[0];
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let doc: Value = serde_json::from_str(&diskray_ok(
        &[&[
            "forget",
            "--repo",
            r,
            "--name",
            "vm",
            "--prune",
            "--json",
            "--keep-last",
            "2",
        ][..]]
        .concat(),
    ))
    .unwrap();
    assert!(doc["gc"].is_object(), "{doc:#}");
    let vm_kept = times_of(&doc, "vm", "keep");
    assert_eq!(vm_kept.len(), 2);
    assert_eq!(listed("vm"), 4, "two machine backups of two disks each");
    let vm = doc["names"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "vm");
    for b in vm.unwrap()["keep"].as_array().unwrap() {
        assert_eq!(b["images"].as_array().unwrap().len(), 2, "{b}");
    }
    diskray_ok(&[&["forget", "--repo", r, "--name", "web"][..], &w].concat());
    assert_eq!(listed("web"), want.len());
    // What is left restores.
    diskray_ok(&["verify", "--repo", r]);
}

#[test]
fn bad_policies_are_refused() {
    let dir = scratch("retention-bad");
    let r = s(&dir);
    for (args, needle) in [
        (
            &["forget", "--repo", r, "--keep-last", "0"][..],
            "would forget everything",
        ),
        (
            &["forget", "--repo", r, "--keep-within", "3w"],
            "not one of y, m, d, h",
        ),
        (&["forget", "--repo", r], "required"),
        (
            &["forget", "--repo", r, "--keep-last", "1", "abc"],
            "cannot be used with",
        ),
        (
            &[
                "backup",
                "x",
                "--repo",
                r,
                "--name",
                "n",
                "--time",
                "2024-02-30 00:00:00",
            ],
            "YYYY-MM-DD",
        ),
    ] {
        let out = diskray(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
