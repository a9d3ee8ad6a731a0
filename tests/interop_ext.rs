//! ext images written by the Linux kernel (issue 9, items 1, 3 and 6) against the kernel's
//! own view of them, recorded by `fixtures/interop/ext/make.sh` (a read-only mount of each
//! image, or of its e2fsck-replayed copy, cross-checked with debugfs): every entry listed
//! with its type, size, inode, modification time (seconds and nanoseconds) and symlink
//! target, every regular file's content, and the entries the kernel cannot stat listed with
//! an error while the rest of the listing goes on. See `fixtures/interop/ext/README.md`.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Output;

fn dir() -> PathBuf {
    root().join("fixtures/interop/ext")
}

/// The images, gunzipped once per test binary.
fn images() -> PathBuf {
    expanded("interop/ext/images")
}

fn truth(name: &str) -> Value {
    let p = dir().join("truth").join(format!("{name}.json"));
    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
}

fn image(t: &Value) -> String {
    images()
        .join(t["image"].as_str().unwrap())
        .to_string_lossy()
        .into_owned()
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

/// `ls -r --json` of the image: the run, the document, and its entries by path.
fn listing(img: &str) -> (Output, Value, BTreeMap<String, Value>) {
    let out = diskray(&["ls", "-r", "--json", img]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "ls -r --json {img}: {e}; stdout {:?}, stderr {}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    let entries = doc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["path"].as_str().unwrap().to_string(), e.clone()))
        .collect();
    (out, doc, entries)
}

/// Every difference between our listing and the kernel's: paths, and for entries the
/// kernel could stat, type, size, inode, time (seconds and nanoseconds) and target; for
/// entries it could not, an `error` on ours.
fn differences(name: &str, t: &Value, ours: &BTreeMap<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    let files = t["files"].as_array().unwrap();
    for f in files {
        let path = f["path"].as_str().unwrap();
        let Some(e) = ours.get(path) else {
            out.push(format!("{name}: {path} not listed"));
            continue;
        };
        let kernel_error = f.get("error").and_then(|v| v.as_str());
        let our_error = e.get("error").and_then(|v| v.as_str());
        match (kernel_error, our_error) {
            (Some(_), None) => out.push(format!(
                "{name}: {path}: the kernel cannot read it ({}), we list no error",
                f["error"]
            )),
            (None, Some(err)) => out.push(format!("{name}: {path}: error {err:?}")),
            _ => {}
        }
        if let Some(bad) = f.get("bad_inode") {
            // A name e2fsck reports with an invalid inode number.
            if &e["inode"] != bad {
                out.push(format!("{name}: {path}: inode {} vs {bad}", e["inode"]));
            }
        }
        if f.get("inode").is_none() {
            continue; // the kernel could not stat it: nothing more to compare
        }
        for field in ["type", "size", "inode", "mtime", "mtime_nsec"] {
            if e[field] != f[field] {
                out.push(format!(
                    "{name}: {path}: {field} {} vs {}",
                    e[field], f[field]
                ));
            }
        }
        if let Some(target) = f.get("target") {
            if &e["target"] != target {
                out.push(format!(
                    "{name}: {path}: target {} vs {target}",
                    e["target"]
                ));
            }
        }
    }
    for path in ours.keys() {
        if !files.iter().any(|f| f["path"] == path.as_str()) {
            out.push(format!(
                "{name}: {path} listed, the kernel has no such entry"
            ));
        }
    }
    out
}

/// Every regular file the kernel could read, read by `cat`: the same SHA-256.
fn content_differences(name: &str, t: &Value) -> Vec<String> {
    let img = image(t);
    let mut out = Vec::new();
    for f in t["files"].as_array().unwrap() {
        let Some(want) = f.get("sha256").and_then(|v| v.as_str()) else {
            continue;
        };
        let path = f["path"].as_str().unwrap();
        let run = diskray(&["cat", &img, path]);
        if !run.status.success() {
            out.push(format!("{name}: cat {path}: {}", text(&run.stderr)));
        } else if sha256(&run.stdout) != want {
            out.push(format!("{name}: cat {path}: content differs"));
        }
    }
    out
}

#[test]
fn symlinks_with_an_xattr_block_are_listed_like_the_kernel_lists_them() {
    // Item 1: fast symlinks whose i_blocks counts an xattr block are still fast.
    let mut failures = Vec::new();
    for name in ["symlinks-128", "symlinks-256"] {
        let t = truth(name);
        let (run, _, ours) = listing(&image(&t));
        if !run.status.success() {
            failures.push(format!(
                "{name}: ls -r exit {:?}: {}",
                run.status.code(),
                text(&run.stderr)
            ));
        }
        failures.extend(differences(name, &t, &ours));
        failures.extend(content_differences(name, &t));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_bad_inode_is_listed_with_its_error_and_the_walk_goes_on() {
    // Item 1: /dir-bad, /slow-bad and /ghost cannot be read; everything else is listed,
    // the three with their error, and the exit status says something was wrong.
    let name = "symlinks-damaged";
    let t = truth(name);
    let img = image(&t);
    let (run, _, ours) = listing(&img);
    let mut failures = differences(name, &t, &ours);
    failures.extend(content_differences(name, &t));
    let stderr = text(&run.stderr);
    if run.status.code() != Some(1) {
        failures.push(format!("ls -r --json: exit {:?}", run.status.code()));
    }
    let human = diskray(&["ls", "-r", &img]);
    let stdout = text(&human.stdout);
    if human.status.code() != Some(1) {
        failures.push(format!("ls -r: exit {:?}", human.status.code()));
    }
    for f in t["files"].as_array().unwrap() {
        let path = f["path"].as_str().unwrap();
        let Some(line) = stdout
            .lines()
            .find(|l| l.split_whitespace().any(|w| w == path))
        else {
            failures.push(format!("ls -r: {path} not shown"));
            continue;
        };
        if f.get("error").is_some() {
            if !line.contains("error") {
                failures.push(format!("ls -r: {path}: no error shown in {line:?}"));
            }
            if !stderr.contains(path) || !text(&human.stderr).contains(path) {
                failures.push(format!("{path} not named on stderr: {stderr}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn times_past_2038_before_1970_and_nanoseconds_are_the_kernels() {
    // Item 3: the epoch bits and nanoseconds of i_mtime_extra.
    let mut failures = Vec::new();
    for name in ["times-256", "times-128"] {
        let t = truth(name);
        let img = image(&t);
        let (run, _, ours) = listing(&img);
        if !run.status.success() {
            failures.push(format!("{name}: ls -r: {}", text(&run.stderr)));
        }
        failures.extend(differences(name, &t, &ours));
        let human = diskray_ok(&["ls", "-r", &img]);
        for f in t["files"].as_array().unwrap() {
            let (path, mtime) = (f["path"].as_str().unwrap(), f["mtime"].as_str().unwrap());
            if !human
                .lines()
                .any(|l| l.split_whitespace().any(|w| w == path) && l.contains(mtime))
            {
                failures.push(format!("{name}: ls -r shows {path} without {mtime}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_dirty_journal_is_replayed_for_ls_and_cat() {
    // Item 6: the tree and contents after replay (e2fsck's and the kernel's), with a
    // warning, including a journal found only through s_jnl_blocks.
    let mut failures = Vec::new();
    for name in [
        "journal-dirty",
        "journal-backup-ext3",
        "journal-backup-ext4",
    ] {
        let t = truth(name);
        let img = image(&t);
        let (run, doc, ours) = listing(&img);
        if !run.status.success() {
            failures.push(format!("{name}: ls -r --json: {}", text(&run.stderr)));
        }
        let said = |w: &str| w.contains("journal") && w.contains("replayed");
        if !said(&doc["warnings"].to_string()) {
            failures.push(format!(
                "{name}: ls --json says nothing of the journal: {}",
                doc["warnings"]
            ));
        }
        let human = diskray(&["ls", "-r", &img]);
        if !said(&text(&human.stderr)) {
            failures.push(format!(
                "{name}: ls says nothing of the journal: {:?}",
                text(&human.stderr)
            ));
        }
        failures.extend(differences(name, &t, &ours));
        failures.extend(content_differences(name, &t));
        let cat = diskray(&["cat", &img, "/new/f2.txt"]);
        if !text(&cat.stderr).contains("replayed") {
            failures.push(format!(
                "{name}: cat says nothing of the journal: {}",
                text(&cat.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn u32_at(b: &[u8], o: usize) -> usize {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as usize
}

/// Byte offset of inode `ino` in an ext image (group descriptors after the superblock).
fn inode_at(b: &[u8], ino: usize) -> usize {
    let sb = 1024;
    let bs = 1024usize << u32_at(b, sb + 0x18);
    let ipg = u32_at(b, sb + 0x28);
    let isz = u16::from_le_bytes([b[sb + 0x58], b[sb + 0x59]]) as usize;
    let desc = if u32_at(b, sb + 0x60) & 0x80 != 0 {
        u16::from_le_bytes([b[sb + 0xFE], b[sb + 0xFF]]) as usize
    } else {
        32
    };
    let gdt = (u32_at(b, sb + 0x14) + 1) * bs;
    let g = (ino - 1) / ipg;
    u32_at(b, gdt + g * desc + 8) * bs + ((ino - 1) % ipg) * isz
}

#[test]
fn a_fast_symlink_longer_than_i_block_is_an_error_on_its_entry() {
    // The kernel refuses a fast symlink (no blocks) of 60 bytes or more; so do we, on that
    // entry only.
    let t = truth("symlinks-128");
    let ino = t["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/fast")
        .unwrap()["inode"]
        .as_u64()
        .unwrap() as usize;
    let d = scratch("interop_ext_fast_symlink");
    let img = d.join("symlinks-128.img");
    let mut b = std::fs::read(image(&t)).unwrap();
    let at = inode_at(&b, ino);
    assert_eq!(u32_at(&b, at + 4), 4, "/fast is 4 bytes long");
    b[at + 4..at + 8].copy_from_slice(&70u32.to_le_bytes());
    std::fs::write(&img, &b).unwrap();
    let (run, _, ours) = listing(img.to_str().unwrap());
    assert_eq!(run.status.code(), Some(1), "{}", text(&run.stderr));
    let err = ours["/fast"]["error"].as_str().unwrap_or_default();
    assert!(err.contains("fast symlink of 70 bytes"), "{err:?}");
    for f in t["files"].as_array().unwrap() {
        let path = f["path"].as_str().unwrap();
        assert!(ours.contains_key(path), "{path} not listed");
        if path != "/fast" {
            assert!(ours[path].get("error").is_none(), "{path}: {}", ours[path]);
        }
    }
}

#[test]
fn a_journal_that_cannot_be_found_leaves_the_stale_tree_with_a_warning() {
    // journal-backup-ext4 with s_jnl_blocks zeroed too: no way to the journal. ls lists
    // what the disk holds (debugfs's stale listing of journal-dirty, the same image before
    // the damage) and says the journal could not be replayed; report treats every block
    // as used.
    let t = truth("journal-backup-ext4");
    let d = scratch("interop_ext_no_journal");
    let img = d.join("no-journal.img");
    let mut b = std::fs::read(image(&t)).unwrap();
    b[1024 + 0x10C..1024 + 0x10C + 68].fill(0);
    std::fs::write(&img, &b).unwrap();
    let img = img.to_str().unwrap();
    let human = diskray(&["ls", img]);
    let stderr = text(&human.stderr);
    assert!(human.status.success(), "{stderr}");
    assert!(stderr.contains("could not be replayed"), "{stderr}");
    let stale = std::fs::read_to_string(dir().join("truth/journal-dirty.stale.txt")).unwrap();
    // debugfs `ls -l` lines: inode, mode, (type), uid, gid, size, date, time, name.
    let names: Vec<&str> = stale
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .filter_map(|l| l.split_whitespace().last())
        .filter(|n| ![".", ".."].contains(n))
        .collect();
    let (_, _, ours) = listing(img);
    let mut listed: Vec<&str> = ours
        .keys()
        .filter(|p| p.matches('/').count() == 1)
        .map(|p| &p[1..])
        .collect();
    listed.sort();
    let mut want = names.clone();
    want.sort();
    assert_eq!(listed, want);
    let report = diskray(&["report", "--json", img]);
    assert!(
        text(&report.stdout).contains("every block is treated as used"),
        "{}",
        text(&report.stdout)
    );
}
