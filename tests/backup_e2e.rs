//! End-to-end tests of the backup commands (`backup`, `images`, `restore`, `restore-file`,
//! `verify`, `gc`, `changes diff`) of the real `diskray` binary, against `fixtures/backup`:
//! t0 = `fixtures/guests/images/gpt-disk.raw`, t1 = t0 changed offline by debugfs, mtools,
//! ntfscp/libntfs-3g and dd, and the truth recorded beside them by independent tools
//! (dumpe2fs, blkls, partclone, debugfs, mtools, ntfs-3g, TSK; see
//! `fixtures/backup/README.md`).
//!
//! A restore is right (DESIGN invariant 1) when every byte the truth calls used (which
//! includes everything outside the partitions) equals the source disk and every other byte
//! is zero. That fixes the restored disk completely, so its SHA-256 is computed here from
//! the source and the truth alone (`Disk::expected_sha`), and every restore is compared
//! with it; on a mismatch the byte-level check says where.
//!
//! Tests that run a live tool say so in their name (`fsck`, `qemu`) and skip that part with
//! a printed reason when the tool is missing.

mod common;

use common::*;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

type Ranges = Vec<(u64, u64)>;

// ------------------------------------------------------------------ byte ranges

fn merge(mut r: Ranges) -> Ranges {
    r.retain(|x| x.1 > 0);
    r.sort_unstable();
    let mut out: Ranges = Vec::new();
    for (s, l) in r {
        if let Some(last) = out.last_mut() {
            if s <= last.0 + last.1 {
                let end = (last.0 + last.1).max(s + l);
                last.1 = end - last.0;
                continue;
            }
        }
        out.push((s, l));
    }
    out
}

fn intersect(a: &[(u64, u64)], b: &[(u64, u64)]) -> Ranges {
    let (a, b) = (merge(a.to_vec()), merge(b.to_vec()));
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        let s = a[i].0.max(b[j].0);
        let e = (a[i].0 + a[i].1).min(b[j].0 + b[j].1);
        if s < e {
            out.push((s, e - s));
        }
        if a[i].0 + a[i].1 < b[j].0 + b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

fn complement(a: &[(u64, u64)], size: u64) -> Ranges {
    let mut out = Vec::new();
    let mut pos = 0;
    for (s, l) in merge(a.to_vec()) {
        if s > pos {
            out.push((pos, s - pos));
        }
        pos = pos.max(s + l);
    }
    if pos < size {
        out.push((pos, size - pos));
    }
    out
}

fn subtract(a: &[(u64, u64)], b: &[(u64, u64)], size: u64) -> Ranges {
    intersect(a, &complement(b, size))
}

fn total(a: &[(u64, u64)]) -> u64 {
    a.iter().map(|r| r.1).sum()
}

/// Every range widened to whole chunks of `cs` bytes (the last one clipped at `size`).
fn round_out(a: &[(u64, u64)], cs: u64, size: u64) -> Ranges {
    merge(
        a.iter()
            .filter(|r| r.1 > 0)
            .map(|&(s, l)| {
                let lo = s / cs * cs;
                let hi = ((s + l).div_ceil(cs) * cs).min(size);
                (lo, hi - lo)
            })
            .collect(),
    )
}

fn chunks_of(a: &[(u64, u64)], cs: u64) -> BTreeSet<u64> {
    a.iter()
        .filter(|r| r.1 > 0)
        .flat_map(|&(s, l)| s / cs..=(s + l - 1) / cs)
        .collect()
}

fn ranges(v: &Value) -> Ranges {
    v.as_array()
        .unwrap_or_else(|| panic!("not a range list: {v}"))
        .iter()
        .map(|r| (r[0].as_u64().unwrap(), r[1].as_u64().unwrap()))
        .collect()
}

/// The areas of a vSphere `DiskChangeInfo` document.
fn change_areas(doc: &Value) -> Ranges {
    merge(
        doc["changedArea"]
            .as_array()
            .map(|a| a.as_slice())
            .unwrap_or(&[])
            .iter()
            .map(|x| (x["start"].as_u64().unwrap(), x["length"].as_u64().unwrap()))
            .collect(),
    )
}

// ------------------------------------------------------------------ fixtures

struct Disk {
    name: &'static str,
    path: PathBuf,
    used: Ranges,
    files: Value,
    expected: OnceLock<String>,
}

impl Disk {
    fn p(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// SHA-256 of the only right restore: the source where the truth says used, zeros
    /// elsewhere. Computed from the source and the truth, never from diskray.
    fn expected_sha(&self) -> &str {
        self.expected.get_or_init(|| {
            let mut bytes = std::fs::read(&self.path).unwrap();
            for (s, l) in complement(&self.used, bytes.len() as u64) {
                bytes[s as usize..(s + l) as usize].fill(0);
            }
            hex(&Sha256::digest(&bytes))
        })
    }
}

struct Volume {
    index: u64,
    filesystem: String,
    start: u64,
    length: u64,
}

struct Fx {
    t0: Disk,
    t1: Disk,
    size: u64,
    volumes: Vec<Volume>,
    changes: Value,
    missed: Value,
    cbt: PathBuf,
    missed_map: PathBuf,
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn parse(stdout: &str, what: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {stdout}"))
}

/// gunzip `src` into `dst`, every block written: a dense file, so that a backup of it has
/// no holes to skip and reads exactly what the truth predicts (holes are tested through
/// the VMDK sources, whose unallocated grains qemu-img chose).
fn gunzip(src: &Path, dst: &Path) {
    let mut z = flate2::read::GzDecoder::new(File::open(src).unwrap());
    let mut out = File::create(dst).unwrap();
    std::io::copy(&mut z, &mut out).unwrap();
}

fn fx() -> &'static Fx {
    static FX: OnceLock<Fx> = OnceLock::new();
    FX.get_or_init(|| {
        let src = root().join("fixtures/backup");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fixtures-backup-e2e");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let t0 = dir.join("t0.raw");
        let t1 = dir.join("t1.raw");
        gunzip(&root().join("fixtures/guests/images/gpt-disk.raw.gz"), &t0);
        gunzip(&src.join("t1.raw.gz"), &t1);
        let truth = |f: &str| read_json(&src.join("truth").join(f));
        let (u0, u1) = (truth("t0.used.json"), truth("t1.used.json"));
        for (path, t) in [(&t0, &u0), (&t1, &u1)] {
            assert_eq!(
                sha256_file(path),
                t["sha256"].as_str().unwrap(),
                "{} is not the disk its truth describes",
                path.display()
            );
        }
        let size = u1["size"].as_u64().unwrap();
        let volumes = u1["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| Volume {
                index: v["index"].as_u64().unwrap(),
                filesystem: v["filesystem"].as_str().unwrap().to_string(),
                start: v["start"].as_u64().unwrap(),
                length: v["length"].as_u64().unwrap(),
            })
            .collect();
        Fx {
            t0: Disk {
                name: "t0",
                path: t0,
                used: merge(ranges(&u0["used"])),
                files: truth("t0.files.json"),
                expected: OnceLock::new(),
            },
            t1: Disk {
                name: "t1",
                path: t1,
                used: merge(ranges(&u1["used"])),
                files: truth("t1.files.json"),
                expected: OnceLock::new(),
            },
            size,
            volumes,
            changes: truth("changes.json"),
            missed: truth("missed.json"),
            cbt: src.join("t0-t1.cbt.json"),
            missed_map: src.join("t0-t1.missed.json"),
        }
    })
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_diskray")
}

/// `cp -a FROM TO` (a repository copy; TO must not exist).
fn copy_dir(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .args(["-a", s(from), s(to)])
        .status()
        .unwrap();
    assert!(st.success(), "cp -a {} {}", from.display(), to.display());
}

// ------------------------------------------------------------------ diskray commands

const NAME: &str = "gpt";
const EPOCH: &str = "52 90 37 ee 50 dc cb 6b-b3 12 7c 48 06 19 7f d4";

fn change_id(seq: u32) -> String {
    format!("{EPOCH}/{seq}")
}

fn backup(disk: &Path, repo: &Path, name: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "backup",
        s(disk),
        "--repo",
        s(repo),
        "--name",
        name,
        "--json",
    ];
    args.extend_from_slice(extra);
    let v = parse(&diskray_ok(&args), "backup --json");
    for k in ["image", "name", "parent", "change_id", "stats"] {
        assert!(v.get(k).is_some(), "backup --json lacks {k}: {v}");
    }
    assert_eq!(v["name"], name, "backup name");
    v
}

fn stat(b: &Value, k: &str) -> u64 {
    b["stats"][k]
        .as_u64()
        .unwrap_or_else(|| panic!("stats.{k} missing or not a count: {}", b["stats"]))
}

fn id(b: &Value) -> &str {
    b["image"].as_str().expect("image id")
}

fn restore(repo: &Path, image: &str, out: &Path) {
    diskray_ok(&["restore", "--repo", s(repo), image, s(out)]);
}

fn verify(repo: &Path, image: Option<&str>) -> (Option<i32>, Value) {
    let mut args = vec!["verify", "--repo", s(repo), "--json"];
    args.extend(image);
    let out = diskray(&args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let v = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "verify --json: not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), v)
}

fn assert_verify_clean(repo: &Path, image: Option<&str>, what: &str) -> Value {
    let (code, v) = verify(repo, image);
    assert_eq!(code, Some(0), "{what}: verify exit status: {v}");
    assert_eq!(v["damaged_chunks"], serde_json::json!([]), "{what}: {v}");
    assert_eq!(v["damaged_images"], serde_json::json!([]), "{what}: {v}");
    v
}

// ------------------------------------------------------------------ checks of a restore

/// Invariant 1, byte by byte: used bytes equal the source, every other byte is zero.
fn invariant1_errors(restored: &Path, disk: &Disk) -> Vec<String> {
    let got = std::fs::read(restored).unwrap();
    let src = std::fs::read(&disk.path).unwrap();
    if got.len() != src.len() {
        return vec![format!("size {} vs {}", got.len(), src.len())];
    }
    let mut errs = Vec::new();
    for &(s, l) in &disk.used {
        let (a, b) = (
            &got[s as usize..(s + l) as usize],
            &src[s as usize..(s + l) as usize],
        );
        if a != b {
            let n = a.iter().zip(b).filter(|(x, y)| x != y).count();
            let first = s + a.iter().zip(b).position(|(x, y)| x != y).unwrap() as u64;
            errs.push(format!(
                "used [{s}, +{l}): {n} bytes differ from {}, first at {first}",
                disk.name
            ));
        }
    }
    for (s, l) in complement(&disk.used, src.len() as u64) {
        let a = &got[s as usize..(s + l) as usize];
        if let Some(p) = a.iter().position(|&x| x != 0) {
            let n = a.iter().filter(|&&x| x != 0).count();
            errs.push(format!(
                "free [{s}, +{l}): {n} non-zero bytes, first at {}",
                s + p as u64
            ));
        }
    }
    errs.truncate(12);
    errs
}

/// The restore is the only right one (see the module comment); on a mismatch, says where.
fn assert_restored(restored: &Path, disk: &Disk, what: &str) {
    if sha256_file(restored) == disk.expected_sha() {
        return;
    }
    let errs = invariant1_errors(restored, disk);
    panic!(
        "{what}: restore of {} breaks invariant 1:\n  {}",
        disk.name,
        if errs.is_empty() {
            "(SHA-256 differs but no byte does?)".to_string()
        } else {
            errs.join("\n  ")
        }
    );
}

/// Runs `tool args... file`; None when the tool is not installed.
fn live(tool: &str, args: &[&str], file: &Path) -> Option<Output> {
    match Command::new(tool).args(args).arg(file).output() {
        Ok(o) => Some(o),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("{tool}: {e}"),
    }
}

/// e2fsck -fn, fsck.fat -n, ntfsfix -n on each partition of a restored disk.
fn fsck_errors(restored: &Path, tmp: &Path, what: &str) -> Vec<String> {
    let f = File::open(restored).unwrap();
    let mut errs = Vec::new();
    for v in &fx().volumes {
        let (tool, args): (&str, &[&str]) = match v.filesystem.as_str() {
            x if x.starts_with("ext") => ("e2fsck", &["-fn"]),
            x if x.starts_with("fat") => ("fsck.fat", &["-n"]),
            "ntfs" => ("ntfsfix", &["-n"]),
            other => panic!("no checker for {other}"),
        };
        let mut buf = vec![0u8; v.length as usize];
        f.read_exact_at(&mut buf, v.start).unwrap();
        let part = tmp.join(format!("part{}.img", v.index));
        std::fs::write(&part, &buf).unwrap();
        match live(tool, args, &part) {
            None => eprintln!(
                "{what}: skipped {tool} on partition {}: not installed",
                v.index
            ),
            Some(o) if !o.status.success() => errs.push(format!(
                "{what}: {tool} {args:?} on partition {} ({}): {}\n{}{}",
                v.index,
                v.filesystem,
                o.status,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )),
            Some(_) => {}
        }
        let _ = std::fs::remove_file(&part);
    }
    errs
}

/// Every file of the truth, read back with `restore-file` from the image and with `cat`
/// from the restored disk.
fn file_errors(repo: &Path, image: &str, restored: &Path, disk: &Disk, tmp: &Path) -> Vec<String> {
    let mut errs = Vec::new();
    let out = tmp.join("file.out");
    let mut n = 0;
    for p in disk.files["partitions"].as_array().unwrap() {
        let part = p["index"].as_u64().unwrap().to_string();
        for f in p["files"].as_array().unwrap() {
            n += 1;
            let path = f["path"].as_str().unwrap();
            let want = f["sha256"].as_str().unwrap();
            let _ = std::fs::remove_file(&out);
            let r = diskray(&[
                "restore-file",
                "--repo",
                s(repo),
                image,
                "--partition",
                &part,
                path,
                "-o",
                s(&out),
            ]);
            if !r.status.success() {
                errs.push(format!(
                    "{}: restore-file p{part} {path}: {}",
                    disk.name,
                    String::from_utf8_lossy(&r.stderr).trim()
                ));
            } else if sha256_file(&out) != want {
                errs.push(format!(
                    "{}: restore-file p{part} {path}: wrong content",
                    disk.name
                ));
            }
            let c = diskray(&["cat", s(restored), "--partition", &part, path]);
            if !c.status.success() {
                errs.push(format!(
                    "{}: cat p{part} {path} on the restored disk: {}",
                    disk.name,
                    String::from_utf8_lossy(&c.stderr).trim()
                ));
            } else if sha256(&c.stdout) != want {
                errs.push(format!(
                    "{}: cat p{part} {path} on the restored disk: wrong content ({} bytes, want {})",
                    disk.name,
                    c.stdout.len(),
                    f["size"]
                ));
            }
        }
    }
    assert!(n >= 9, "{}: only {n} files in the truth", disk.name);
    errs
}

// ------------------------------------------------------------------ shared repositories

/// A repository holding one full backup of t0 (name `gpt`), and its raw restore. Never
/// modified: tests copy it.
struct Base {
    repo: PathBuf,
    full: Value,
    t0_restore: PathBuf,
}

fn base() -> &'static Base {
    static B: OnceLock<Base> = OnceLock::new();
    B.get_or_init(|| {
        let f = fx();
        let dir = scratch("backup_e2e_base");
        let repo = dir.join("repo");
        let full = backup(&f.t0.path, &repo, NAME, &["--change-id", &change_id(1)]);
        let t0_restore = dir.join("t0.restored.raw");
        restore(&repo, id(&full), &t0_restore);
        Base {
            repo,
            full,
            t0_restore,
        }
    })
}

/// A copy of the base with an incremental of t1 made with `t0-t1.cbt.json`.
struct Incr {
    repo: PathBuf,
    incr: Value,
    t1_restore: PathBuf,
}

fn incr() -> &'static Incr {
    static I: OnceLock<Incr> = OnceLock::new();
    I.get_or_init(|| {
        let (f, b) = (fx(), base());
        let dir = scratch("backup_e2e_incr");
        let repo = dir.join("repo");
        copy_dir(&b.repo, &repo);
        let incr = backup(
            &f.t1.path,
            &repo,
            NAME,
            &["--changes", s(&f.cbt), "--change-id", &change_id(2)],
        );
        let t1_restore = dir.join("t1.restored.raw");
        restore(&repo, id(&incr), &t1_restore);
        Incr {
            repo,
            incr,
            t1_restore,
        }
    })
}

// ------------------------------------------------------------------ 1: invariant 1

#[test]
fn full_and_incremental_restore_byte_for_byte_with_files_and_fsck() {
    let (f, b, i) = (fx(), base(), incr());
    let dir = scratch("backup_e2e_invariant1");
    let mut errs = Vec::new();

    // the incremental made with diskray's own diff must give the same disk as the one made
    // with the independent change map; the diff itself must cover every changed sector
    let diff_out = diskray_ok(&[
        "changes",
        "diff",
        f.t0.p(),
        f.t1.p(),
        "--block-size",
        "65536",
    ]);
    let diff = parse(&diff_out, "changes diff");
    assert_eq!(
        diff["length"].as_u64(),
        Some(f.size),
        "changes diff: length is not the capacity"
    );
    let changed = ranges(&f.changes["differing_sectors"]);
    let uncovered = subtract(&changed, &change_areas(&diff), f.size);
    assert!(
        uncovered.is_empty(),
        "changes diff misses changed sectors: {uncovered:?}"
    );
    // at the same block size it must list exactly the blocks tools/change_map.py listed
    assert_eq!(
        change_areas(&diff),
        change_areas(&read_json(&f.cbt)),
        "changes diff and tools/change_map.py list different 64 KiB blocks"
    );
    let diff_file = dir.join("diff.json");
    std::fs::write(&diff_file, &diff_out).unwrap();
    let repo_d = dir.join("repo-diff");
    copy_dir(&b.repo, &repo_d);
    let via_diff = backup(
        &f.t1.path,
        &repo_d,
        NAME,
        &["--changes", s(&diff_file), "--change-id", &change_id(2)],
    );
    assert_eq!(via_diff["stats"]["change_source"], "cbt");
    assert_eq!(
        via_diff["parent"], b.full["image"],
        "parent of the incremental"
    );
    let t1_diff = dir.join("t1.diff.restored.raw");
    restore(&repo_d, id(&via_diff), &t1_diff);
    assert_eq!(
        sha256_file(&t1_diff),
        sha256_file(&i.t1_restore),
        "incrementals from `changes diff` and from t0-t1.cbt.json restore differently"
    );
    let _ = std::fs::remove_file(&t1_diff);

    // invariant 1 on both images
    assert_restored(&b.t0_restore, &f.t0, "full backup of t0");
    assert_restored(&i.t1_restore, &f.t1, "incremental of t1");

    // the filesystems of both restores check clean, and every file reads back
    errs.extend(fsck_errors(&b.t0_restore, &dir, "t0 restore"));
    errs.extend(fsck_errors(&i.t1_restore, &dir, "t1 restore"));
    errs.extend(file_errors(
        &i.repo,
        id(&b.full),
        &b.t0_restore,
        &f.t0,
        &dir,
    ));
    errs.extend(file_errors(
        &i.repo,
        id(&i.incr),
        &i.t1_restore,
        &f.t1,
        &dir,
    ));

    // images lists both, with the parent link, the change ids and the capacity
    let list = parse(
        &diskray_ok(&["images", "--repo", s(&i.repo), "--json"]),
        "images --json",
    );
    let imgs = list["images"].as_array().expect("images array");
    assert_eq!(imgs.len(), 2, "{list}");
    let by_id: BTreeMap<&str, &Value> = imgs
        .iter()
        .map(|e| (e["image"].as_str().unwrap(), e))
        .collect();
    let full_e = by_id.get(id(&b.full)).expect("full image listed");
    let incr_e = by_id.get(id(&i.incr)).expect("incremental listed");
    assert_eq!(full_e["parent"], Value::Null);
    assert_eq!(incr_e["parent"], b.full["image"]);
    assert_eq!(full_e["change_id"], change_id(1).as_str());
    assert_eq!(incr_e["change_id"], change_id(2).as_str());
    for e in [full_e, incr_e] {
        assert_eq!(e["name"], NAME);
        assert_eq!(e["capacity"].as_u64(), Some(f.size));
        assert!(e["time"].is_string(), "{e}");
        assert!(e["stats"].is_object(), "{e}");
    }
    let named = parse(
        &diskray_ok(&["images", "--repo", s(&i.repo), NAME, "--json"]),
        "images NAME --json",
    );
    assert_eq!(named["images"].as_array().unwrap().len(), 2);
    let none = parse(
        &diskray_ok(&["images", "--repo", s(&i.repo), "no-such-name", "--json"]),
        "images NAME --json",
    );
    assert_eq!(none["images"].as_array().unwrap().len(), 0);

    assert!(errs.is_empty(), "{}", errs.join("\n"));
}

// ------------------------------------------------------------------ 2: invariant 2

/// Filesystem metadata a backup may need to read (and may count in read_from_source) to
/// know what is used, measured on this disk: primary and backup GPT (2 x 34 sectors =
/// 34 KiB), ext4 superblock, descriptors and the two groups' bitmaps (< 16 KiB), both
/// FAT32 FATs (2 x 630 sectors = 630 KiB), the NTFS boot sector, $MFT (70 KiB) and $Bitmap
/// (< 8 KiB): about 760 KiB (diskray reports 733 104 B of it as read_metadata,
/// apart from read_from_source), rounded up to 1 MiB.
const METADATA_ALLOWANCE: u64 = 1 << 20;

#[test]
fn incremental_reads_only_changed_and_newly_used_chunks() {
    let (f, b, i) = (fx(), base(), incr());
    let (full, inc) = (&b.full, &i.incr);
    for (what, v, source) in [("full", full, "full"), ("incremental", inc, "cbt")] {
        assert_eq!(
            v["stats"]["change_source"], source,
            "{what}: {}",
            v["stats"]
        );
        assert_eq!(stat(v, "capacity"), f.size, "{what}: capacity");
        assert!(stat(v, "chunk_size") > 0, "{what}: chunk_size");
    }

    // full: at most the used bytes rounded out to whole chunks
    let cs = stat(full, "chunk_size");
    let full_read = stat(full, "read_from_source");
    let full_bound = total(&round_out(&f.t0.used, cs, f.size)) + METADATA_ALLOWANCE;
    assert!(
        full_read <= full_bound,
        "full backup read {full_read} B; used rounded to {cs} B chunks is {} B (+ allowance)",
        full_bound - METADATA_ALLOWANCE
    );

    // incremental: (changed ∪ newly used) ∩ used, at the change map's granularity: a
    // changed chunk is the previous image's chunk patched with the bytes read
    let cs = stat(inc, "chunk_size");
    let changed = change_areas(&read_json(&f.cbt));
    let newly_used = subtract(&f.t1.used, &f.t0.used, f.size);
    assert_eq!(
        newly_used,
        merge(ranges(&f.changes["newly_used"])),
        "truth files disagree"
    );
    let need = intersect(&merge([changed.clone(), newly_used].concat()), &f.t1.used);
    let bound = total(&need) + METADATA_ALLOWANCE;
    let read = stat(inc, "read_from_source");
    assert!(
        read <= bound,
        "incremental read {read} B; (changed ∪ newly used) ∩ used, in {} chunks of {cs} B, \
         is {} B (+ {METADATA_ALLOWANCE} allowance)",
        chunks_of(&need, cs).len(),
        bound - METADATA_ALLOWANCE
    );
    // the rest of those chunks came from the previous image
    let in_chunks = total(&intersect(&round_out(&need, cs, f.size), &f.t1.used));
    assert!(
        stat(inc, "from_parent") > 0 && read + stat(inc, "from_parent") <= in_chunks,
        "from_parent {} B, read {read} B, the chunks touched hold {in_chunks} used B",
        stat(inc, "from_parent")
    );
    // and it must have read at least the changed bytes that are used now
    let must = total(&intersect(
        &ranges(&f.changes["differing_sectors"]),
        &f.t1.used,
    ));
    assert!(
        read >= must,
        "incremental read {read} B but {must} used bytes changed"
    );
    assert!(
        read < full_read,
        "incremental read {read} B, not less than the full's {full_read} B"
    );
    assert!(
        stat(inc, "skipped_unchanged") > 0,
        "incremental skipped nothing as unchanged: {}",
        inc["stats"]
    );
}

// ------------------------------------------------------------------ 3: missed CBT

#[test]
fn missed_cbt_keeps_stale_bytes_until_a_rescan() {
    let (f, b) = (fx(), base());
    let dir = scratch("backup_e2e_missed");
    let repo = dir.join("repo");
    copy_dir(&b.repo, &repo);
    let change = ranges(&serde_json::json!([f.missed["change"].clone()]));
    let (cs_, cl) = change[0];

    let wrong = backup(
        &f.t1.path,
        &repo,
        NAME,
        &["--changes", s(&f.missed_map), "--change-id", &change_id(2)],
    );
    assert_eq!(wrong["stats"]["change_source"], "cbt");
    assert_eq!(wrong["parent"], b.full["image"]);
    let cs = stat(&wrong, "chunk_size");
    // the fixture simulates a miss only if nothing the backup must read shares a chunk
    // with the missed change
    let listed = change_areas(&read_json(&f.missed_map));
    let newly_used = subtract(&f.t1.used, &f.t0.used, f.size);
    let must_read = intersect(&merge([listed, newly_used].concat()), &f.t1.used);
    let shared: Vec<u64> = chunks_of(&change, cs)
        .intersection(&chunks_of(&must_read, cs))
        .copied()
        .collect();
    assert!(
        shared.is_empty(),
        "fixture problem: at chunk size {cs} the missed change shares chunks {shared:?} with \
         changes the backup must read, so no miss can show"
    );

    let out = dir.join("t1.wrong.raw");
    restore(&repo, id(&wrong), &out);
    let mut buf = vec![0u8; cl as usize];
    File::open(&out)
        .unwrap()
        .read_exact_at(&mut buf, cs_)
        .unwrap();
    let got = hex(&Sha256::digest(&buf));
    assert_ne!(
        got,
        f.missed["t1_sha256"].as_str().unwrap(),
        "the missed change was restored right: the test simulates no miss"
    );
    assert_eq!(
        got,
        f.missed["t0_sha256"].as_str().unwrap(),
        "the missed range holds neither t0's nor t1's bytes"
    );
    // everything else is right: with t1's bytes put back into the missed range, the
    // restore is the right restore of t1
    let mut patched = std::fs::read(&out).unwrap();
    File::open(&f.t1.path)
        .unwrap()
        .read_exact_at(&mut patched[cs_ as usize..(cs_ + cl) as usize], cs_)
        .unwrap();
    if hex(&Sha256::digest(&patched)) != f.t1.expected_sha() {
        let p = dir.join("t1.wrong.patched.raw");
        std::fs::write(&p, &patched).unwrap();
        panic!(
            "besides the missed change:\n{}",
            invariant1_errors(&p, &f.t1).join("\n")
        );
    }
    drop(patched);

    // a rescan with the same (bad) map finds it and restores right
    let fixed = backup(
        &f.t1.path,
        &repo,
        NAME,
        &[
            "--changes",
            s(&f.missed_map),
            "--change-id",
            &change_id(3),
            "--rescan",
        ],
    );
    assert_eq!(
        fixed["stats"]["change_source"], "rescan",
        "{}",
        fixed["stats"]
    );
    assert_eq!(fixed["parent"], wrong["image"], "rescan's parent");
    let missed_chunks = fixed["stats"]["cbt_missed_chunks"].as_u64().unwrap_or(0);
    assert_eq!(
        missed_chunks,
        chunks_of(&change, cs).len() as u64,
        "cbt_missed_chunks: the parent differs from t1 only in the chunk(s) of the missed \
         change: {}",
        fixed["stats"]
    );
    restore(&repo, id(&fixed), &out);
    assert_restored(&out, &f.t1, "rescan after a missed change");
}

// ------------------------------------------------------------------ 4: VMDK (qemu)

fn have_qemu_img() -> bool {
    match Command::new("qemu-img").arg("--version").output() {
        Ok(o) if o.status.success() => true,
        _ => {
            eprintln!("skipped: qemu-img is not installed");
            false
        }
    }
}

fn qemu(args: &[&str]) -> Output {
    let o = Command::new("qemu-img").args(args).output().unwrap();
    assert!(
        o.status.success(),
        "qemu-img {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

#[test]
fn qemu_restore_as_vmdk_both_subformats() {
    if !have_qemu_img() {
        return;
    }
    let (f, i) = (fx(), incr());
    let dir = scratch("backup_e2e_qemu_vmdk");
    let want = sha256_file(&i.t1_restore);
    for sub in ["streamOptimized", "monolithicSparse"] {
        let vmdk = dir.join(format!("{sub}.vmdk"));
        diskray_ok(&[
            "restore",
            "--repo",
            s(&i.repo),
            id(&i.incr),
            s(&vmdk),
            "-O",
            "vmdk",
            "--subformat",
            sub,
        ]);
        qemu(&["check", "-f", "vmdk", s(&vmdk)]);
        let info = parse(
            &String::from_utf8_lossy(
                &qemu(&["info", "--output=json", "-f", "vmdk", s(&vmdk)]).stdout,
            ),
            "qemu-img info",
        );
        assert_eq!(info["virtual-size"].as_u64(), Some(f.size), "{sub}: {info}");
        assert_eq!(
            info["format-specific"]["data"]["create-type"], sub,
            "{sub}: {info}"
        );
        let raw = dir.join(format!("{sub}.raw"));
        qemu(&["convert", "-f", "vmdk", "-O", "raw", s(&vmdk), s(&raw)]);
        assert_eq!(
            sha256_file(&raw),
            want,
            "{sub}: qemu-img's reading differs from the raw restore"
        );
        let _ = std::fs::remove_file(&raw);
    }
}

#[test]
fn qemu_vmdk_sources_back_up_like_the_raw_disks() {
    if !have_qemu_img() {
        return;
    }
    let f = fx();
    let dir = scratch("backup_e2e_qemu_source");
    let repo = dir.join("repo");
    let mut made = Vec::new();
    for d in [&f.t0, &f.t1] {
        let vmdk = dir.join(format!("{}.vmdk", d.name));
        qemu(&[
            "convert",
            "-f",
            "raw",
            "-O",
            "vmdk",
            "-o",
            "subformat=monolithicSparse",
            d.p(),
            s(&vmdk),
        ]);
        made.push(vmdk);
    }
    let full = backup(&made[0], &repo, NAME, &["--change-id", &change_id(1)]);
    let inc = backup(
        &made[1],
        &repo,
        NAME,
        &["--changes", s(&f.cbt), "--change-id", &change_id(2)],
    );
    assert_eq!(full["stats"]["change_source"], "full");
    assert_eq!(inc["stats"]["change_source"], "cbt");
    assert_eq!(inc["parent"], full["image"]);
    assert!(
        stat(&full, "skipped_unallocated") > 0,
        "qemu-img leaves zero grains unallocated; the full backup skipped none: {}",
        full["stats"]
    );
    // no more read than from the raw disk (whose zeros outside the partitions are data)
    assert!(
        stat(&full, "read_from_source") <= stat(&base().full, "read_from_source"),
        "the VMDK full read more than the raw full"
    );
    let out = dir.join("restored.raw");
    restore(&repo, id(&full), &out);
    assert_restored(&out, &f.t0, "full backup of t0.vmdk");
    restore(&repo, id(&inc), &out);
    assert_restored(&out, &f.t1, "incremental of t1.vmdk");
}

// ------------------------------------------------------------------ 5: verify

fn chunk_file(repo: &Path, digest: &str) -> PathBuf {
    repo.join("chunks").join(&digest[..4]).join(digest)
}

/// The SHA-256 of every chunk-sized piece of a restored disk: the digests of the chunks
/// its image references (all-zero pieces left out: the reserved zero digest).
fn chunk_digests(restored: &Path, cs: u64) -> Vec<String> {
    let bytes = std::fs::read(restored).unwrap();
    bytes
        .chunks(cs as usize)
        .filter(|c| c.iter().any(|&b| b != 0))
        .map(|c| blake3::hash(c).to_hex().to_string())
        .collect()
}

#[test]
fn verify_names_a_damaged_chunk_and_its_images_and_a_new_backup_is_clean() {
    let (f, b, i) = (fx(), base(), incr());
    let dir = scratch("backup_e2e_verify");
    let repo = dir.join("repo");
    copy_dir(&i.repo, &repo);

    let clean = assert_verify_clean(&repo, None, "clean repository");
    assert_eq!(clean["images_checked"].as_u64(), Some(2), "{clean}");
    assert!(clean["chunks_checked"].as_u64().unwrap_or(0) > 0, "{clean}");

    // a chunk the latest image uses, preferably one t0's image uses too
    let cs = stat(&i.incr, "chunk_size");
    let latest = chunk_digests(&i.t1_restore, cs);
    let older: BTreeSet<String> = chunk_digests(&b.t0_restore, cs).into_iter().collect();
    let present: Vec<&String> = latest
        .iter()
        .filter(|d| chunk_file(&repo, d).is_file())
        .collect();
    assert!(
        !present.is_empty(),
        "no chunk of the latest image found under chunks/XXXX/<sha256 of its plaintext>"
    );
    let victim = present
        .iter()
        .find(|d| older.contains(**d))
        .unwrap_or(&present[0])
        .to_string();
    let path = chunk_file(&repo, &victim);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();

    let mut want_images = vec![id(&i.incr).to_string()];
    if older.contains(&victim) {
        want_images.push(id(&b.full).to_string());
    }
    want_images.sort();
    let (code, v) = verify(&repo, None);
    assert_eq!(code, Some(3), "verify after a flipped byte: {v}");
    assert_eq!(
        v["damaged_chunks"],
        serde_json::json!([victim]),
        "damaged_chunks"
    );
    let mut got: Vec<String> = v["damaged_images"]
        .as_array()
        .expect("damaged_images")
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    got.sort();
    assert_eq!(got, want_images, "damaged_images: {v}");

    // verifying just the latest image finds it too
    let (code, v) = verify(&repo, Some(id(&i.incr)));
    assert_eq!(code, Some(3), "verify IMAGE after a flipped byte: {v}");

    // a new backup (rescan) gives an image that verifies clean and restores right
    let again = backup(&f.t1.path, &repo, NAME, &["--rescan"]);
    assert_eq!(again["stats"]["change_source"], "rescan");
    assert_verify_clean(&repo, Some(id(&again)), "the image after the damage");
    let out = dir.join("t1.after-damage.raw");
    restore(&repo, id(&again), &out);
    assert_restored(&out, &f.t1, "backup after a damaged chunk");
}

// ------------------------------------------------------------------ 6: kill -9

/// A small seeded generator (xorshift64*), so the kill delays repeat run to run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn spawn_backup(disk: &Path, repo: &Path, name: &str, extra: &[&str]) -> Child {
    Command::new(bin())
        .args([
            "backup",
            s(disk),
            "--repo",
            s(repo),
            "--name",
            name,
            "--json",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn diskray backup")
}

const KILL_RUNS: u64 = 20;

#[test]
fn kill_9_during_backup_leaves_a_valid_repository() {
    let (f, b) = (fx(), base());
    let dir = scratch("backup_e2e_kill");
    let t0_sha = sha256_file(&b.t0_restore);
    assert_eq!(t0_sha, f.t0.expected_sha(), "t0's restore before any kill");
    let cbt = s(&f.cbt).to_string();
    let cid = change_id(2);

    // How long an uninterrupted backup of each kind takes here: the kills land within it.
    let span = |extra: &[&str]| -> u64 {
        let probe = dir.join("probe");
        copy_dir(&b.repo, &probe);
        let t = Instant::now();
        backup(&f.t1.path, &probe, NAME, extra);
        let _ = std::fs::remove_dir_all(&probe);
        (t.elapsed().as_millis() as u64).clamp(2, 2000)
    };
    let cbt_args = vec!["--changes", cbt.as_str(), "--change-id", cid.as_str()];
    let spans = [span(&[]), span(&cbt_args)];

    let mut rng = Rng(0x05ee_d000_0d15_c0a7);
    let mut killed = 0;
    let mut attempts = 0;
    // Keep going until KILL_RUNS backups were really killed before they finished.
    while killed < KILL_RUNS {
        attempts += 1;
        assert!(
            attempts <= KILL_RUNS * 5,
            "only {killed} of {attempts} backups were killed before finishing (spans {spans:?} ms)"
        );
        let run = attempts;
        let repo = dir.join(format!("repo{run}"));
        copy_dir(&b.repo, &repo);
        let mode = (run % 2) as usize;
        let extra: Vec<&str> = if mode == 1 {
            cbt_args.clone()
        } else {
            Vec::new()
        };
        // Uniform over the first half of the measured run: process start-up and a warm cache
        // make real runs shorter than the first probe.
        let delay_us = rng.next() % (spans[mode] * 500 + 1);
        let mut child = spawn_backup(&f.t1.path, &repo, NAME, &extra);
        std::thread::sleep(Duration::from_micros(delay_us));
        let _ = child.kill(); // SIGKILL
        let st = child.wait().unwrap();
        let what = format!("run {run} (killed after {delay_us} µs, {st})");
        if st.success() {
            let _ = std::fs::remove_dir_all(&repo);
            continue;
        }
        killed += 1;

        let (code, v) = verify(&repo, None);
        assert_eq!(code, Some(0), "{what}: verify: {v}");
        let out = dir.join("restored.raw");
        restore(&repo, id(&b.full), &out);
        assert_eq!(
            sha256_file(&out),
            t0_sha,
            "{what}: t0's image restores differently"
        );
        let next = backup(&f.t1.path, &repo, NAME, &extra);
        restore(&repo, id(&next), &out);
        assert_restored(&out, &f.t1, &format!("{what}: the backup after it"));
        let _ = std::fs::remove_file(&out);
        let _ = std::fs::remove_dir_all(&repo);
    }
    eprintln!("{killed} backups killed in {attempts} attempts (spans {spans:?} ms)");
}

// ------------------------------------------------------------------ 7: concurrency, gc

#[test]
fn concurrent_backups_of_two_disks_with_gc_running() {
    let f = fx();
    let dir = scratch("backup_e2e_concurrent");
    let repo = dir.join("repo");
    // an existing repository (creating one is not what this tests)
    backup(&f.t0.path, &repo, "seed", &[]);

    let mut a = spawn_backup(&f.t0.path, &repo, "disk-a", &[]);
    let mut b = spawn_backup(&f.t1.path, &repo, "disk-b", &[]);
    let mut gcs = 0;
    let mut gc_errors = Vec::new();
    let (mut a_done, mut b_done) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(60);
    while a_done.is_none() || b_done.is_none() {
        assert!(Instant::now() < deadline, "backups did not finish in 60 s");
        let g = diskray(&["gc", "--repo", s(&repo), "--json"]);
        gcs += 1;
        if !g.status.success() {
            gc_errors.push(String::from_utf8_lossy(&g.stderr).into_owned());
        } else {
            parse(&String::from_utf8_lossy(&g.stdout), "gc --json");
        }
        if a_done.is_none() {
            a_done = a.try_wait().unwrap();
        }
        if b_done.is_none() {
            b_done = b.try_wait().unwrap();
        }
    }
    let outs: Vec<Value> = [a, b]
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "concurrent backup failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            parse(&String::from_utf8_lossy(&o.stdout), "backup --json")
        })
        .collect();
    assert!(gc_errors.is_empty(), "gc failed: {gc_errors:?}");
    eprintln!("{gcs} gc runs while the two backups ran");
    for o in &outs {
        assert_eq!(o["parent"], Value::Null, "a new name has no parent: {o}");
    }
    after_concurrent_backups(&repo, &dir, &outs, "");
}

/// After the seed and two concurrent backups (of t0, then t1) with gc beside them: a last
/// gc, a clean verify of the three images, and both new images restore right.
fn after_concurrent_backups(repo: &Path, dir: &Path, outs: &[Value], on: &str) {
    let f = fx();
    diskray_ok(&["gc", "--repo", s(repo), "--json"]);
    let v = assert_verify_clean(repo, None, &format!("after concurrent backups and gc{on}"));
    assert_eq!(v["images_checked"].as_u64(), Some(3), "{v}");
    let out = dir.join("restored.raw");
    restore(repo, id(&outs[0]), &out);
    assert_restored(
        &out,
        &f.t0,
        &format!("disk-a (t0), backed up beside disk-b and gc{on}"),
    );
    restore(repo, id(&outs[1]), &out);
    assert_restored(
        &out,
        &f.t1,
        &format!("disk-b (t1), backed up beside disk-a and gc{on}"),
    );
}

/// gc started while a backup is writing its image waits for it (the backup holds the
/// repository lock shared, gc needs it exclusive), then deletes nothing either image needs.
#[test]
fn gc_started_mid_backup_waits_and_keeps_the_new_chunks() {
    let f = fx();
    let dir = scratch("backup_e2e_gc_wait");
    let mut caught = false;
    for attempt in 0..20 {
        let repo = dir.join(format!("repo{attempt}"));
        backup(&f.t0.path, &repo, NAME, &[]);
        let mut child = spawn_backup(&f.t1.path, &repo, NAME, &[]);
        // Wait until the backup is writing its image (its directory under tmp/ exists).
        let tmp = repo.join("tmp");
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut writing = false;
        while Instant::now() < deadline {
            let busy = std::fs::read_dir(&tmp)
                .map(|d| {
                    d.flatten()
                        .any(|e| e.file_name().to_string_lossy().starts_with("image-"))
                })
                .unwrap_or(false);
            if busy {
                writing = true;
                break;
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let gc = diskray(&["gc", "--repo", s(&repo), "--json"]);
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "backup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            gc.status.success(),
            "gc failed: {}",
            String::from_utf8_lossy(&gc.stderr)
        );
        let (code, v) = verify(&repo, None);
        assert_eq!(code, Some(0), "verify after gc: {v}");
        let images: Value = parse(&String::from_utf8_lossy(&out.stdout), "backup --json");
        let restored = dir.join("r.raw");
        restore(&repo, id(&images), &restored);
        assert_restored(&restored, &f.t1, "the backup gc ran beside");
        let _ = std::fs::remove_file(&restored);
        // gc says it waits when it found the lock taken; the backup may also have finished
        // between our look at tmp/ and gc's start, in which case try again.
        if writing && String::from_utf8_lossy(&gc.stderr).contains("waiting") {
            caught = true;
            break;
        }
    }
    assert!(
        caught,
        "gc never met a backup holding the repository lock in 20 tries"
    );
}

/// With 64 KiB chunks, blocks freed by the deletions sit in chunks nothing else changed:
/// those chunks are rebuilt from the previous image (freed bytes zeroed) without reading
/// the disk, and the restore still meets invariant 1; the reads stay within invariant 2.
#[test]
fn small_chunks_rebuild_newly_freed_chunks_from_the_parent() {
    let f = fx();
    let dir = scratch("backup_e2e_small_chunks");
    let repo = dir.join("repo");
    let cs = "65536";
    let full = backup(&f.t0.path, &repo, NAME, &["--chunk-size", cs]);
    assert_eq!(stat(&full, "chunk_size"), 65536);
    let inc = backup(
        &f.t1.path,
        &repo,
        NAME,
        &["--chunk-size", cs, "--changes", s(&f.cbt)],
    );
    assert_eq!(inc["stats"]["change_source"], "cbt", "{}", inc["stats"]);
    assert!(
        stat(&inc, "rebuilt_chunks") > 0,
        "no chunk was rebuilt from the parent: {}",
        inc["stats"]
    );
    let changed = change_areas(&read_json(&f.cbt));
    let newly_used = subtract(&f.t1.used, &f.t0.used, f.size);
    let need = intersect(&merge([changed, newly_used].concat()), &f.t1.used);
    let bound = total(&intersect(&round_out(&need, 65536, f.size), &f.t1.used));
    let read = stat(&inc, "read_from_source");
    assert!(
        read <= bound,
        "read {read} B, bound {bound} B at 64 KiB chunks"
    );
    let out = dir.join("t1.raw");
    restore(&repo, id(&inc), &out);
    assert_restored(&out, &f.t1, "64 KiB-chunk incremental");
    restore(&repo, id(&full), &out);
    assert_restored(&out, &f.t0, "64 KiB-chunk full");
}

/// A full backup of t0 and an incremental of t1 stored as whole chunks (`--no-patch`, so
/// that each image's chunks are the BLAKE3 of its restored chunks) into `repo`; returns
/// both and how many chunks only t0's image uses, counted from the restored images
/// (restored through `out`).
fn full_and_whole_incremental(f: &Fx, repo: &Path, out: &Path) -> (Value, Value, u64) {
    let full = backup(&f.t0.path, repo, NAME, &[]);
    let inc = backup(
        &f.t1.path,
        repo,
        NAME,
        &["--changes", s(&f.cbt), "--no-patch"],
    );
    let cs = stat(&full, "chunk_size");
    restore(repo, id(&full), out);
    let t0_chunks: BTreeSet<String> = chunk_digests(out, cs).into_iter().collect();
    restore(repo, id(&inc), out);
    let t1_chunks: BTreeSet<String> = chunk_digests(out, cs).into_iter().collect();
    let only_t0 = t0_chunks.difference(&t1_chunks).count() as u64;
    assert!(only_t0 > 0, "the fixture changes some chunks");
    (full, inc, only_t0)
}

/// Forgetting the parent image never breaks its child (every image is a full image); gc
/// then frees exactly the chunks only the parent used. The incremental stores whole
/// chunks (`--no-patch`), so that the chunks each image uses are the BLAKE3 of its
/// restored chunks; with patches (the default) the parent's changed chunks stay as the
/// bases of the child's patches, and the last part checks that gc keeps them.
#[test]
fn forget_then_gc_frees_only_the_forgotten_images_chunks() {
    let f = fx();
    let dir = scratch("backup_e2e_forget");
    let repo = dir.join("repo");
    let out = dir.join("r.raw");
    let (full, inc, only_t0) = full_and_whole_incremental(f, &repo, &out);

    let by_name = diskray(&["forget", "--repo", s(&repo), NAME]);
    assert_eq!(
        by_name.status.code(),
        Some(1),
        "forget refuses a backup name"
    );
    diskray_ok(&["forget", "--repo", s(&repo), id(&full)]);
    let gc: Value = parse(
        &diskray_ok(&["gc", "--repo", s(&repo), "--json"]),
        "gc --json",
    );
    assert_eq!(gc["chunks_removed"].as_u64().unwrap(), only_t0, "{gc}");
    assert_verify_clean(&repo, None, "after forget and gc");
    restore(&repo, id(&inc), &out);
    assert_restored(&out, &f.t1, "the child of a forgotten image");
    // The next backup of the series has the remaining image as its parent.
    let next = backup(&f.t1.path, &repo, NAME, &["--changes", s(&f.cbt)]);
    assert_eq!(next["parent"], inc["image"]);
    // Patched over the whole chunks of `inc`: forgetting `inc` leaves them as bases.
    assert!(stat(&next, "patched_chunks") > 0, "{next}");
    diskray_ok(&["forget", "--repo", s(&repo), id(&inc)]);
    diskray_ok(&["gc", "--repo", s(&repo), "--json"]);
    assert_verify_clean(&repo, None, "after gc under patches");
    restore(&repo, id(&next), &out);
    assert_restored(&out, &f.t1, "patches over a forgotten image's chunks");
}

// ------------------------------------------------------------------ 9: object storage

/// The shared S3 server, or `None` (said why) when s3s-fs is not installed.
fn s3() -> Option<&'static s3::S3Server> {
    s3::shared()
}

/// Full and incremental into an S3 repository: both restores keep invariant 1, every
/// file reads back with `restore-file`, `images` lists both with their parent link, and
/// the backups read exactly what the same backups into a directory read.
#[test]
fn s3_full_and_incremental_restore_byte_for_byte_with_files() {
    let Some(srv) = s3() else { return };
    let (f, b, i) = (fx(), base(), incr());
    let dir = scratch("backup_e2e_s3_main");
    let repo = srv.repo("main");
    let full = backup(&f.t0.path, &repo, NAME, &["--change-id", &change_id(1)]);
    let inc = backup(
        &f.t1.path,
        &repo,
        NAME,
        &["--changes", s(&f.cbt), "--change-id", &change_id(2)],
    );
    assert_eq!(inc["parent"], full["image"], "parent of the incremental");
    // On object storage a chunk whose patch outgrows half a chunk is read whole from the
    // disk instead of patching its base read back (docs/guide.md): the incremental reads
    // at least what it reads into a directory, and at most one chunk more per chunk
    // stored whole.
    let (ours_read, local_read) = (
        stat(&inc, "read_from_source"),
        i.incr["stats"]["read_from_source"].as_u64().unwrap(),
    );
    let whole = stat(&inc, "new_chunks") - stat(&inc, "patched_chunks");
    assert!(
        ours_read >= local_read && ours_read <= local_read + whole * stat(&inc, "chunk_size"),
        "incremental on S3 read {ours_read}, into a directory {local_read}, {whole} chunks whole"
    );
    assert_eq!(
        full["stats"]["read_from_source"], b.full["stats"]["read_from_source"],
        "full: stats.read_from_source differs between S3 and a directory"
    );
    for (what, ours, local) in [("full", &full, &b.full), ("incremental", &inc, &i.incr)] {
        for k in [
            "skipped_free",
            "new_chunks",
            "reused_chunks",
            "changed_chunks",
        ] {
            assert_eq!(
                ours["stats"].get(k),
                local["stats"].get(k),
                "{what}: stats.{k} differs between S3 and a directory"
            );
        }
    }
    let (t0, t1) = (dir.join("t0.raw"), dir.join("t1.raw"));
    restore(&repo, id(&full), &t0);
    restore(&repo, id(&inc), &t1);
    assert_restored(&t0, &f.t0, "full backup of t0 on S3");
    assert_restored(&t1, &f.t1, "incremental of t1 on S3");
    let mut errs = file_errors(&repo, id(&inc), &t1, &f.t1, &dir);
    errs.extend(file_errors(&repo, id(&full), &t0, &f.t0, &dir));
    assert!(errs.is_empty(), "{}", errs.join("\n"));
    let list = parse(
        &diskray_ok(&["images", "--repo", s(&repo), "--json"]),
        "images --json",
    );
    let ids: Vec<&str> = list["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["image"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id(&full), id(&inc)], "{list}");
    let v = assert_verify_clean(&repo, None, "S3 repository");
    assert_eq!(v["images_checked"].as_u64(), Some(2), "{v}");
    // The objects are where docs/repository.md says, named by their content's SHA-256
    // (the full image's chunks; the incremental's changed chunks are patches over them).
    assert!(stat(&inc, "patched_chunks") > 0, "{inc}");
    let cs = stat(&inc, "chunk_size");
    for d in chunk_digests(&t0, cs) {
        let key = format!("chunks/{}/{d}", &d[..4]);
        assert!(srv.object(&repo, &key).is_file(), "no object {key}");
    }
    for file in ["index", "kept", "manifest.json"] {
        let key = format!("images/{}/{file}", id(&inc));
        assert!(srv.object(&repo, &key).is_file(), "no object {key}");
    }
    let locks = srv.object(&repo, "locks");
    let left = std::fs::read_dir(&locks).map_or(0, |d| d.count());
    assert_eq!(left, 0, "lock objects left behind in {}", locks.display());
}

/// forget and gc on S3: gc keeps chunks younger than its grace period (a stalled writer
/// may still link them), then frees exactly the forgotten image's own chunks once they are
/// old, and removes an image upload that never got its manifest.
#[test]
fn s3_forget_then_gc_frees_only_old_chunks_of_the_forgotten_image() {
    let Some(srv) = s3() else { return };
    let f = fx();
    let dir = scratch("backup_e2e_s3_forget");
    let repo = srv.repo("forget");
    let out = dir.join("r.raw");
    let (full, inc, only_t0) = full_and_whole_incremental(f, &repo, &out);
    // An upload that failed before its manifest: an index with no manifest.
    let orphan = srv.object(&repo, "images/20200101T000000.000000Z-00000000/index");
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::copy(
        srv.object(&repo, &format!("images/{}/index", id(&full))),
        &orphan,
    )
    .unwrap();

    diskray_ok(&["forget", "--repo", s(&repo), id(&full)]);
    let gc =
        |what: &str| -> Value { parse(&diskray_ok(&["gc", "--repo", s(&repo), "--json"]), what) };
    let young = gc("gc --json (young chunks)");
    assert_eq!(young["chunks_removed"].as_u64(), Some(0), "{young}");
    assert_eq!(young["leftovers_removed"].as_u64(), Some(0), "{young}");
    assert!(orphan.is_file(), "a young unfinished upload was removed");
    srv.age(&repo, 3 * 3600);
    let old = gc("gc --json (old chunks)");
    assert_eq!(old["chunks_removed"].as_u64(), Some(only_t0), "{old}");
    assert_eq!(old["leftovers_removed"].as_u64(), Some(1), "{old}");
    assert!(!orphan.exists(), "the unfinished upload is still there");
    assert_verify_clean(&repo, None, "after forget and gc on S3");
    restore(&repo, id(&inc), &out);
    assert_restored(&out, &f.t1, "the child of a forgotten image, on S3");
}

/// A chunk object altered and another deleted behind the repository's back: verify exits
/// 3 naming both, and the next backup (a rescan) stores them again.
#[test]
fn s3_verify_names_an_altered_and_a_deleted_chunk_object() {
    let Some(srv) = s3() else { return };
    let f = fx();
    let dir = scratch("backup_e2e_s3_verify");
    let repo = srv.repo("verify");
    let full = backup(&f.t0.path, &repo, NAME, &[]);
    let out = dir.join("t0.raw");
    restore(&repo, id(&full), &out);
    let digests: BTreeSet<String> = chunk_digests(&out, stat(&full, "chunk_size"))
        .into_iter()
        .collect();
    let mut it = digests.iter();
    let (altered, deleted) = (it.next().unwrap().clone(), it.next().unwrap().clone());
    let key = |d: &str| format!("chunks/{}/{d}", &d[..4]);
    let path = srv.object(&repo, &key(&altered));
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    std::fs::remove_file(srv.object(&repo, &key(&deleted))).unwrap();

    let (code, v) = verify(&repo, None);
    assert_eq!(code, Some(3), "verify after damage on S3: {v}");
    let mut want = vec![altered.clone(), deleted.clone()];
    want.sort();
    assert_eq!(v["damaged_chunks"], serde_json::json!(want), "{v}");
    assert_eq!(v["damaged_images"], serde_json::json!([id(&full)]), "{v}");
    assert!(
        srv.object(&repo, &format!("{}.bad", key(&altered)))
            .is_file(),
        "the altered chunk was not set aside as .bad"
    );
    let refused = diskray(&["restore", "--repo", s(&repo), id(&full), s(&out)]);
    assert!(
        !refused.status.success(),
        "restore of a damaged image succeeded"
    );
    let again = backup(&f.t0.path, &repo, NAME, &["--rescan"]);
    assert_verify_clean(&repo, Some(id(&again)), "the image after the damage, on S3");
    restore(&repo, id(&again), &out);
    assert_restored(&out, &f.t0, "backup after damaged chunks, on S3");
}

/// Two backups and gc at once against one bucket lose nothing: gc waits for the writers'
/// lock objects, and every image restores right afterwards.
#[test]
fn s3_two_backups_and_gc_at_once_lose_nothing() {
    let Some(srv) = s3() else { return };
    let f = fx();
    let dir = scratch("backup_e2e_s3_concurrent");
    let repo = srv.repo("concurrent");
    backup(&f.t0.path, &repo, "seed", &[]);
    let a = spawn_backup(&f.t0.path, &repo, "disk-a", &[]);
    let b = spawn_backup(&f.t1.path, &repo, "disk-b", &[]);
    let mut gcs = Vec::new();
    for _ in 0..3 {
        gcs.push(
            Command::new(bin())
                .args(["gc", "--repo", s(&repo), "--json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        std::thread::sleep(Duration::from_millis(150));
    }
    let outs: Vec<Value> = [a, b]
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "concurrent backup on S3 failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            parse(&String::from_utf8_lossy(&o.stdout), "backup --json")
        })
        .collect();
    for g in gcs {
        let o = g.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "gc beside backups on S3 failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // Old enough for gc to delete anything unreferenced.
    srv.age(&repo, 3 * 3600);
    after_concurrent_backups(&repo, &dir, &outs, " on S3");
}

/// `verify` of `repo` with the extra arguments `extra` exits 0; `what` says when.
fn assert_verify_exits_0(repo: &Path, extra: &[&str], what: &str) {
    let mut args = vec!["verify", "--repo", s(repo), "--json"];
    args.extend(extra);
    let v = diskray(&args);
    assert_eq!(
        v.status.code(),
        Some(0),
        "verify {what}: {}",
        String::from_utf8_lossy(&v.stdout)
    );
}

/// The S3 server killed in the middle of a backup: the backup fails with an error naming
/// the object store (or had finished), the repository verifies, and once the server is
/// back the next backup is right.
#[test]
fn s3_server_killed_mid_backup_then_the_repository_verifies_and_the_next_backup_is_right() {
    let Some(_) = s3() else { return };
    let Some(srv) = s3::S3Server::start("killed") else {
        return;
    };
    let f = fx();
    let dir = scratch("backup_e2e_s3_killed");
    let repo = srv.repo("killed");
    let endpoint = ["--s3-endpoint", srv.endpoint.as_str()];
    backup(&f.t0.path, &repo, "seed", &endpoint);
    let mut failures = 0;
    for delay_ms in [30u64, 80, 150, 300] {
        let child = spawn_backup(&f.t1.path, &repo, NAME, &endpoint);
        std::thread::sleep(Duration::from_millis(delay_ms));
        srv.kill();
        let o = child.wait_with_output().unwrap();
        if !o.status.success() {
            failures += 1;
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{err}");
            assert!(
                err.contains("s3://"),
                "the error does not name the store: {err}"
            );
            assert!(!err.contains("panicked"), "{err}");
        }
        srv.restart();
        assert_verify_exits_0(
            &repo,
            &endpoint,
            &format!("after the server was killed {delay_ms} ms into a backup"),
        );
    }
    eprintln!("{failures} of 4 backups failed when the server was killed");
    let next = backup(&f.t1.path, &repo, NAME, &endpoint);
    let out = dir.join("t1.raw");
    let mut args = vec!["restore", "--repo", s(&repo), id(&next), s(&out)];
    args.extend(endpoint);
    diskray_ok(&args);
    assert_restored(&out, &f.t1, "the backup after the server came back");
}

/// 5xx answers are retried with backoff: behind a proxy that answers the first attempt of
/// every third distinct request `503 Slow Down`, a full and an incremental backup, their
/// restores and verify all succeed, and the restores equal the sources.
#[test]
fn s3_503_answers_are_retried_and_every_command_succeeds() {
    let Some(srv) = s3() else { return };
    let proxy = s3::FlakyProxy::start(&srv.endpoint, 3);
    let f = fx();
    let dir = scratch("backup_e2e_s3_flaky");
    let repo = srv.repo("flaky");
    let endpoint = ["--s3-endpoint", proxy.endpoint.as_str()];
    let full = backup(&f.t0.path, &repo, NAME, &endpoint);
    let mut args = vec!["--changes", s(&f.cbt)];
    args.extend(endpoint);
    let inc = backup(&f.t1.path, &repo, NAME, &args);
    assert_eq!(inc["parent"], full["image"], "parent of the incremental");
    for (image, source, file) in [(&full, &f.t0, "t0.raw"), (&inc, &f.t1, "t1.raw")] {
        let out = dir.join(file);
        let mut args = vec!["restore", "--repo", s(&repo), id(image), s(&out)];
        args.extend(endpoint);
        diskray_ok(&args);
        assert_restored(&out, source, "a restore through the flaky proxy");
    }
    assert_verify_exits_0(&repo, &endpoint, "through the flaky proxy");
    assert!(
        proxy.injected() >= 10,
        "only {} answers were 503: the test did not test retries",
        proxy.injected()
    );
    eprintln!("{} requests answered 503 and retried", proxy.injected());
}

/// Timeouts are retried: behind a proxy that leaves the first attempt of every fourth
/// distinct request unanswered for longer than `--s3-timeout`, an incremental backup and
/// verify succeed, and the image restores (straight from the server) equal to the source.
#[test]
fn s3_requests_that_time_out_are_retried() {
    let Some(srv) = s3() else { return };
    // Far longer than the timeout: a client that waited for the answer would take this
    // long for each stalled request.
    let stall = Duration::from_secs(20);
    let proxy = s3::FlakyProxy::failing(&srv.endpoint, 4, s3::Fault::Stall(stall));
    let f = fx();
    let dir = scratch("backup_e2e_s3_stalls");
    let repo = srv.repo("stalls");
    backup(&f.t0.path, &repo, NAME, &[]);
    let through = [
        "--s3-endpoint",
        proxy.endpoint.as_str(),
        "--s3-timeout",
        "1",
    ];
    let mut args = vec!["--changes", s(&f.cbt)];
    args.extend(through);
    let started = std::time::Instant::now();
    let inc = backup(&f.t1.path, &repo, NAME, &args);
    let took = started.elapsed();
    assert!(
        proxy.injected() >= 2,
        "only {} requests stalled: the test did not test timeouts",
        proxy.injected()
    );
    // Each stalled request was given up after the 1 s timeout, not after the stall.
    assert!(
        took < stall,
        "the backup took {took:?} with {} requests stalled for {stall:?}: the timeout did not apply",
        proxy.injected()
    );
    assert_verify_exits_0(&repo, &through, "through the stalling proxy");
    let out = dir.join("t1.raw");
    restore(&repo, id(&inc), &out);
    assert_restored(
        &out,
        &f.t1,
        "an incremental written through the stalling proxy",
    );
    eprintln!(
        "{} requests stalled and were retried ({took:?} for the backup)",
        proxy.injected()
    );
}

/// The lock objects' rules: a live lock of another host makes gc wait until it goes; a
/// lock not refreshed for longer than the stale limit, or of a dead process of this host,
/// does not, and gc removes it.
#[test]
fn s3_gc_waits_for_a_live_lock_and_removes_stale_ones() {
    let Some(srv) = s3() else { return };
    let f = fx();
    let repo = srv.repo("locks");
    backup(&f.t0.path, &repo, NAME, &[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    let write_lock = |name: &str, host: &str, pid: u32, refreshed: i64| -> PathBuf {
        let p = srv.object(&repo, &format!("locks/{name}"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let rec = serde_json::json!({"host": host, "pid": pid, "exclusive": false,
            "time": refreshed, "refreshed": refreshed});
        std::fs::write(&p, rec.to_string()).unwrap();
        p
    };
    // A dead pid of this host: above pid_max.
    let dead = write_lock("dead", &host, 4_999_999, now);
    let old = write_lock("old", "elsewhere", 1, now - 3 * 3600);
    let live = write_lock("live", "elsewhere", 1, now);
    let mut gc = Command::new(bin())
        .args(["gc", "--repo", s(&repo), "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        gc.try_wait().unwrap().is_none(),
        "gc did not wait for a live lock of another host"
    );
    std::fs::remove_file(&live).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while gc.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "gc still waits after the lock went"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let o = gc.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("waiting"), "gc did not say it waits: {err}");
    assert!(!dead.exists(), "the lock of a dead process was not removed");
    assert!(!old.exists(), "a stale lock was not removed");
}

/// A writer whose lock object was removed (as gc removes a stale one) while it ran does
/// not publish its image: gc may have deleted chunks it was about to name.
#[test]
fn s3_a_backup_whose_lock_was_removed_does_not_publish() {
    let Some(srv) = s3() else { return };
    let f = fx();
    let repo = srv.repo("lost-lock");
    backup(&f.t0.path, &repo, "seed", &[]);
    let locks = srv.object(&repo, "locks");
    let mut caught = 0;
    for _ in 0..3 {
        let child = spawn_backup(&f.t1.path, &repo, NAME, &["--rescan"]);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut removed = false;
        while !removed && Instant::now() < deadline {
            for e in std::fs::read_dir(&locks).into_iter().flatten().flatten() {
                removed |= std::fs::remove_file(e.path()).is_ok();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        if removed && !o.status.success() {
            assert_eq!(o.status.code(), Some(1), "{err}");
            assert!(err.contains("lock was removed"), "{err}");
            caught += 1;
        }
    }
    assert!(caught > 0, "no backup ran long enough to lose its lock");
    let list = parse(
        &diskray_ok(&["images", "--repo", s(&repo), NAME, "--json"]),
        "images --json",
    );
    let published = list["images"].as_array().unwrap().len();
    assert_eq!(published, 3 - caught, "{list}");
}
