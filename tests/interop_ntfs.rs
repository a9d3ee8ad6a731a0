//! NTFS volumes of issue 9 against the ground truth recorded beside them by The Sleuth Kit
//! (fls, ils, istat, icat) and ntfs-3g (ntfsls, ntfscat, ntfsinfo): item 7, a fragmented
//! `$MFT` with a record that straddles two of its runs; item 8, records in use that no
//! directory index names. See `fixtures/interop/ntfs/README.md`.

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

fn truth(name: &str) -> String {
    std::fs::read_to_string(root().join("fixtures/interop/ntfs/truth").join(name)).unwrap()
}

/// `fixtures/interop/ntfs/NAME.img.gz` expanded into a file of the test's own.
fn image(name: &str, _test: &str) -> String {
    expanded("interop/ntfs")
        .join(format!("{name}.img"))
        .to_string_lossy()
        .into_owned()
}

/// A copy of image `name` that test `test` alone may damage.
fn private_copy(name: &str, test: &str) -> String {
    let dst = scratch(&format!("interop-ntfs-{name}-{test}")).join(format!("{name}.img"));
    std::fs::copy(image(name, test), &dst).unwrap();
    dst.to_string_lossy().into_owned()
}

/// One line of `fls -r -p`: `r/r 511-128-2:<TAB>f00447`, `-/d * 74-144-2:<TAB>gone`.
#[derive(Debug, Clone)]
struct Fls {
    /// The metadata type (`r`, `d`, `V`, `-`).
    meta: char,
    /// Not marked `*` (deleted).
    alloc: bool,
    record: u64,
    path: String,
}

fn fls(text: &str) -> Vec<Fls> {
    text.lines()
        .map(|l| {
            let (head, path) = l.split_once(":\t").expect("fls line");
            let words: Vec<&str> = head.split_whitespace().collect();
            let addr = words.last().unwrap();
            Fls {
                meta: words[0].chars().nth(2).unwrap(),
                alloc: !words.contains(&"*"),
                record: addr.split('-').next().unwrap().parse().unwrap(),
                path: path.to_string(),
            }
        })
        .collect()
}

/// `(path, inode)` of every entry `diskray ls -r` lists (with `--deleted`: every deleted one).
fn listing(img: &str, deleted: bool) -> BTreeSet<(String, u64)> {
    let mut args = vec!["ls", "-r", "--json", img];
    if deleted {
        args.insert(1, "--deleted");
    }
    let v: Value = serde_json::from_str(&diskray_ok(&args)).unwrap();
    v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap().to_string(),
                e["inode"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The records `make.sh` found straddling two `$MFT` runs (from ntfsinfo's runlist).
fn straddling() -> Vec<u64> {
    truth("mftfrag.straddling.txt")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

/// Item 7: every live file of a volume whose `$MFT` is in eleven runs, record 511 half in
/// the first and half in the second, is listed as fls lists it.
#[test]
fn fragmented_mft_is_listed_like_fls_lists_it() {
    let img = image("mftfrag", "list");
    let truth = fls(&truth("mftfrag.fls.txt"));
    let want: BTreeSet<(String, u64)> = truth
        .iter()
        .filter(|e| e.alloc && !e.path.starts_with('$'))
        .map(|e| (format!("/{}", e.path), e.record))
        .collect();
    let straddling = straddling();
    assert!(!straddling.is_empty());
    for r in &straddling {
        assert!(
            want.iter().any(|(_, n)| n == r),
            "the fixture should have a live file in straddling record {r}"
        );
    }
    let got = listing(&img, false);
    assert_eq!(
        got.difference(&want).collect::<Vec<_>>(),
        Vec::<&(String, u64)>::new(),
        "listed by diskray, not by fls"
    );
    assert_eq!(
        want.difference(&got).collect::<Vec<_>>(),
        Vec::<&(String, u64)>::new(),
        "listed by fls, not by diskray"
    );
}

/// Item 7: the files in the straddling records, and a sample of the others (one in 24,
/// through every run of `$MFT`), read back as ntfscat reads them.
#[test]
fn fragmented_mft_files_read_back_as_ntfscat_reads_them() {
    let img = image("mftfrag", "cat");
    let by_record: HashMap<u64, String> = fls(&truth("mftfrag.fls.txt"))
        .into_iter()
        .filter(|e| e.alloc)
        .map(|e| (e.record, format!("/{}", e.path)))
        .collect();
    let sums: Vec<(String, String)> = truth("mftfrag.sha256")
        .lines()
        .map(|l| {
            let (sum, path) = l.split_once("  ").unwrap();
            (path.to_string(), sum.to_string())
        })
        .collect();
    let mut paths: Vec<String> = straddling().iter().map(|r| by_record[r].clone()).collect();
    paths.extend(sums.iter().step_by(24).map(|(p, _)| p.clone()));
    for path in paths {
        let want = &sums.iter().find(|(p, _)| *p == path).unwrap().1;
        let out = diskray(&["cat", &img, &path]);
        assert!(
            out.status.success(),
            "cat {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(&sha256(&out.stdout), want, "content of {path}");
    }
}

/// The deleted files of the fragmented volume (records in several `$MFT` runs) are found
/// as fls finds them.
#[test]
fn fragmented_mft_deleted_files_are_found_like_fls_finds_them() {
    let img = image("mftfrag", "deleted");
    let want: BTreeSet<(String, u64)> = fls(&truth("mftfrag.fls.txt"))
        .into_iter()
        .filter(|e| !e.alloc && !e.path.starts_with('$'))
        .map(|e| (format!("/{}", e.path), e.record))
        .collect();
    assert!(!want.is_empty());
    assert_eq!(listing(&img, true), want);
}

/// The `Name:` of an `istat` output's `$FILE_NAME`.
fn istat_name(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("Name: "))
        .expect("istat Name")
        .to_string()
}

/// What `ls -r` should list on the orphans volume, from the truth: every name fls lists
/// as allocated, where fls puts it; below a deleted directory (which a live listing does
/// not show) under `/$OrphanFiles` instead; plus, under `/$OrphanFiles` by their istat
/// name, the records ils says are in use that fls names nowhere (their parent reference
/// no longer matches any directory); and the `$OrphanFiles` directory itself, numbered
/// as fls numbers it.
fn orphans_expected() -> BTreeSet<(String, u64)> {
    let entries = fls(&truth("orphans.fls.txt"));
    let deleted_dirs: Vec<&str> = entries
        .iter()
        .filter(|e| !e.alloc && e.meta == 'd')
        .map(|e| e.path.as_str())
        .collect();
    let mut want = BTreeSet::new();
    let mut orphan_dir = None;
    for e in &entries {
        if e.meta == 'V' && e.path == "$OrphanFiles" {
            orphan_dir = Some(e.record);
        }
        if !e.alloc || e.path.starts_with('$') {
            continue;
        }
        let below_deleted = deleted_dirs
            .iter()
            .filter_map(|d| e.path.strip_prefix(&format!("{d}/")))
            .min_by_key(|rest| rest.len());
        let path = match below_deleted {
            Some(rest) => format!("/$OrphanFiles/{rest}"),
            None => format!("/{}", e.path),
        };
        want.insert((path, e.record));
    }
    let named: BTreeSet<u64> = entries.iter().map(|e| e.record).collect();
    for line in truth("orphans.ils.txt").lines().skip(1) {
        let f: Vec<&str> = line.split('|').collect();
        let Ok(n) = f[0].parse::<u64>() else { continue };
        let istat = root().join(format!("fixtures/interop/ntfs/truth/orphans.istat-{n}.txt"));
        if f[1] != "a" || named.contains(&n) || !istat.exists() {
            continue;
        }
        let name = istat_name(&std::fs::read_to_string(istat).unwrap());
        want.insert((format!("/$OrphanFiles/{name}"), n));
    }
    if want.iter().any(|(p, _)| p.starts_with("/$OrphanFiles/")) {
        want.insert((
            "/$OrphanFiles".into(),
            orphan_dir.expect("fls $OrphanFiles"),
        ));
    }
    want
}

/// The records ntfsls (which walks the directory indexes only) lists.
fn ntfsls_records() -> BTreeSet<u64> {
    truth("orphans.ntfsls.txt")
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

/// Item 8: records in use that no directory index names are listed: in their directory
/// when it is live (as fls lists them), under `/$OrphanFiles` when it is not.
#[test]
fn records_missing_from_every_index_are_listed() {
    let img = image("orphans", "list");
    let want = orphans_expected();
    let indexed = ntfsls_records();
    let orphans: Vec<_> = want
        .iter()
        .filter(|(p, n)| !indexed.contains(n) && p != "/$OrphanFiles")
        .collect();
    assert!(
        orphans.len() >= 4,
        "the fixture should hold records no index names: {orphans:?}"
    );
    let got: BTreeSet<(String, u64)> = listing(&img, false)
        .into_iter()
        .filter(|(p, _)| !p.starts_with("/$") || p.starts_with("/$OrphanFiles"))
        .collect();
    assert_eq!(
        got.difference(&want).collect::<Vec<_>>(),
        Vec::<&(String, u64)>::new(),
        "listed by diskray, not by the tools"
    );
    assert_eq!(
        want.difference(&got).collect::<Vec<_>>(),
        Vec::<&(String, u64)>::new(),
        "listed by the tools, not by diskray"
    );
}

/// Item 8: each orphan reads back as icat reads its record.
#[test]
fn orphans_read_back_as_icat_reads_them() {
    let img = image("orphans", "cat");
    let sums: HashMap<u64, String> = truth("orphans.sha256")
        .lines()
        .map(|l| {
            let (sum, n) = l.split_once("  ").unwrap();
            (n.parse().unwrap(), sum.to_string())
        })
        .collect();
    let indexed = ntfsls_records();
    let entries = fls(&truth("orphans.fls.txt"));
    let mut checked = 0;
    for (path, n) in orphans_expected() {
        let is_dir = entries.iter().any(|e| e.record == n && e.meta == 'd');
        if indexed.contains(&n) || path == "/$OrphanFiles" || is_dir {
            continue;
        }
        let out = diskray(&["cat", &img, &path]);
        assert!(
            out.status.success(),
            "cat {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            sha256(&out.stdout),
            sums[&n],
            "content of {path} (record {n})"
        );
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} orphans read");
}

/// `$MFT`'s runs from the truth's comment lines: (lcn, length) in clusters of 512 bytes.
fn mft_runs() -> Vec<(u64, u64)> {
    truth("mftfrag.straddling.txt")
        .lines()
        .filter_map(|l| l.strip_prefix("# run "))
        .map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .map(|kv| kv.split_once('=').unwrap().1.parse().unwrap())
                .collect();
            (v[1], v[2])
        })
        .collect()
}

/// Hostile: the second `$MFT` run zeroed (the second half of record 511 and the records
/// after it). The listing fails with the record's number and its volume byte, without a
/// panic.
#[test]
fn a_zeroed_mft_run_is_reported_at_its_record() {
    let img = private_copy("mftfrag", "zeroed");
    let runs = mft_runs();
    let (lcn, len) = runs[1];
    let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &vec![0u8; (len * 512) as usize], lcn * 512)
        .unwrap();
    drop(f);
    let r = straddling()[0];
    let at = runs[0].0 * 512 + r * 1024;
    let out = diskray(&["ls", "-r", &img]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("at byte {at}: NTFS file record {r}")),
        "{err}"
    );
}
