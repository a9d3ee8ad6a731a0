//! Deleted names on ext4 directories written by the kernel and by libext2fs, against what
//! TSK's `fls` recorded beside each image (issue 9, items 4 and 5). See
//! `fixtures/interop/ext-deleted/README.md`.
//!
//! Compared: the deleted names of the directories (path and inode number). fls's
//! `$OrphanFiles` are left out: diskray lists an orphan inode only when it still has data
//! (a documented choice that this issue does not touch).

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const AREA: &str = "fixtures/interop/ext-deleted";

/// `NAME.img.gz` expanded once into the test's temporary directory.
fn image(name: &str) -> String {
    expanded("interop/ext-deleted")
        .join(format!("{name}.img"))
        .to_string_lossy()
        .into_owned()
}

/// One line of fls output: `r/r * 123:\tdir/name` (`*`: deleted).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Fls {
    path: String,
    inode: u64,
    name_type: char,
    deleted: bool,
}

fn fls(file: &str) -> Vec<Fls> {
    let text = std::fs::read_to_string(root().join(AREA).join(file)).unwrap();
    text.lines()
        .map(|l| {
            let (head, path) = l.split_once(":\t").unwrap();
            let mut words = head.split_whitespace();
            let types = words.next().unwrap();
            let rest: Vec<&str> = words.collect();
            let deleted = rest.first() == Some(&"*");
            let inode = rest.last().unwrap().trim_end_matches("(realloc)");
            Fls {
                path: format!("/{path}"),
                inode: inode.parse().unwrap(),
                name_type: types.chars().next().unwrap(),
                deleted,
            }
        })
        .filter(|f| !f.path.starts_with("/$OrphanFiles"))
        .collect()
}

fn listing(img: &str, deleted: bool) -> Vec<Value> {
    let mut args = vec!["ls", "-r", "--json", img];
    if deleted {
        args.push("--deleted");
    }
    let v: Value = serde_json::from_str(&diskray_ok(&args)).unwrap();
    v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| !e["path"].as_str().unwrap().starts_with("/$OrphanFiles"))
        .cloned()
        .collect()
}

fn pairs(entries: &[Value]) -> BTreeSet<(String, u64)> {
    entries
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap().to_string(),
                e["inode"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn fls_pairs(v: &[Fls]) -> BTreeSet<(String, u64)> {
    v.iter().map(|f| (f.path.clone(), f.inode)).collect()
}

/// Item 4: in a two-level htree directory the stale copies that leaf splits leave in the
/// old leaf's slack (same name, same inode as a live entry) are not deleted files, and
/// the index blocks (dx_root, dx_node) hold no names; the deleted names are exactly fls's.
#[test]
fn htree_deleted_names_are_fls_deleted_names() {
    let img = image("htree");
    let live_truth: BTreeSet<(String, u64)> = fls_pairs(
        &fls("htree.fls-p.txt")
            .into_iter()
            .filter(|f| !f.deleted)
            .collect::<Vec<_>>(),
    );
    assert!(
        live_truth.len() > 1000,
        "fixture: {} live",
        live_truth.len()
    );
    assert_eq!(
        pairs(&listing(&img, false)),
        live_truth,
        "live entries differ from fls -p"
    );

    let truth = fls_pairs(&fls("htree.fls-d.txt"));
    assert!(!truth.is_empty(), "fixture: fls -d found no deleted names");
    let ours = pairs(&listing(&img, true));
    let dup_of_live: Vec<_> = ours.intersection(&live_truth).take(5).collect();
    assert!(
        dup_of_live.is_empty(),
        "{} deleted entries are live entries (name and inode), e.g. {dup_of_live:?}",
        ours.intersection(&live_truth).count()
    );
    assert_eq!(
        ours.difference(&truth).collect::<Vec<_>>(),
        Vec::<&(String, u64)>::new(),
        "listed as deleted, fls -d does not"
    );
    assert_eq!(
        truth.difference(&ours).collect::<Vec<_>>(),
        Vec::<&(String, u64)>::new(),
        "fls -d lists, diskray does not"
    );
}

/// Item 5: names whose inode number is 0 (first entry of a block unlinked, entries cleared
/// by e2fsck, such an entry absorbed into the slack of the one before it) and the names in
/// the slack of an inode-0 record are listed as fls lists them; an inode-0 name is not
/// recoverable and has the type its directory entry records.
#[test]
fn zero_inode_names_are_listed_like_fls() {
    let img = image("zero-inode");
    let truth = fls("zero-inode.fls-d.txt");
    assert!(
        truth.iter().filter(|f| f.inode == 0).count() >= 4,
        "fixture: too few inode-0 names in fls -d"
    );
    let ours = listing(&img, true);
    let got = pairs(&ours);
    let want = fls_pairs(&truth);
    assert_eq!(
        got.difference(&want).collect::<Vec<_>>(),
        Vec::<&(String, u64)>::new(),
        "listed as deleted, fls -d does not"
    );
    assert_eq!(
        want.difference(&got).collect::<Vec<_>>(),
        Vec::<&(String, u64)>::new(),
        "fls -d lists, diskray does not"
    );
    let by_path: BTreeMap<&str, &Value> = ours
        .iter()
        .map(|e| (e["path"].as_str().unwrap(), e))
        .collect();
    for f in truth.iter().filter(|f| f.inode == 0) {
        let e = by_path[f.path.as_str()];
        assert_eq!(
            e["recoverable"],
            Value::Bool(false),
            "{}: an inode-0 name cannot be recovered",
            f.path
        );
        let want = match f.name_type {
            'r' => "file",
            'd' => "dir",
            'l' => "symlink",
            _ => "other",
        };
        assert_eq!(e["type"], want, "{}: type (fls: {})", f.path, f.name_type);
    }
    // no content to pull out of a name alone: cat says so
    let f = truth
        .iter()
        .find(|f| f.inode == 0 && f.name_type == 'r')
        .unwrap();
    let out = diskray(&["cat", "--deleted", &img, &f.path]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        out.stdout.is_empty() && err.contains("only the name"),
        "{err}"
    );
}
