//! Disks laid out as Linux installers leave them (`fixtures/lvm/README.md`, "Installed
//! systems"): Rocky (XFS /boot, VG `rl` extended onto a second, whole-disk PV), Ubuntu
//! (bios_grub, ext4 /boot, `ubuntu-vg` half used) and an MBR disk with three PVs of one VG
//! (one in a logical partition). Against what LVM's tools, xfs_db, e2fsprogs, TSK and the
//! kernel's own mounts recorded: every filesystem's used map, its files, the report's
//! classes tiling every disk, the same through VMDK copies, and a backup of the two-disk
//! Rocky machine.

mod common;
use common::lvm::{
    installed_disk, installed_truth, lv_pieces, sfdisk_partitions, used_of, xfs_used,
};
use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where a filesystem lies: an LV (by name in the VG's truth) or a partition (number).
#[derive(Clone, Copy)]
enum Place {
    Lv(&'static str),
    Partition(usize, u32),
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Xfs,
    Ext4,
}

/// One filesystem of a machine and its truth.
struct Fs {
    /// What `-p` names it by.
    volume: &'static str,
    place: Place,
    kind: Kind,
    /// The truth files' prefix (`rocky.root` for `rocky.root.xfs_db.txt`).
    truth: &'static str,
    /// Files the kernel wrote and `make-installed.sh` then deleted.
    deleted: &'static [&'static str],
}

/// A machine: its disks (files of `fixtures/lvm/installed/images`), the truth prefix of its
/// VG, and its filesystems.
struct Machine {
    disks: &'static [&'static str],
    vg: &'static str,
    fss: &'static [Fs],
}

const ROCKY: Machine = Machine {
    disks: &["rocky-a.img", "rocky-b.img"],
    vg: "rocky",
    fss: &[
        Fs {
            volume: "1",
            place: Place::Partition(0, 1),
            kind: Kind::Xfs,
            truth: "rocky.boot",
            deleted: &["/initramfs-5.14.0-284.el9.x86_64.img"],
        },
        Fs {
            volume: "rl/root",
            place: Place::Lv("root"),
            kind: Kind::Xfs,
            truth: "rocky.root",
            deleted: &[
                "/var/tmp/dnf-cache.tmp",
                "/srv/d0/scratch.tmp",
                "/srv/d7/scratch.tmp",
            ],
        },
    ],
};

const UBUNTU: Machine = Machine {
    disks: &["ubuntu.img"],
    vg: "ubuntu",
    fss: &[
        Fs {
            volume: "2",
            place: Place::Partition(0, 2),
            kind: Kind::Ext4,
            truth: "ubuntu.boot",
            deleted: &["/initrd.img-6.8.0-31-generic"],
        },
        Fs {
            volume: "ubuntu-vg/ubuntu-lv",
            place: Place::Lv("ubuntu-lv"),
            kind: Kind::Ext4,
            truth: "ubuntu.ubuntu-lv",
            deleted: &["/tmp/apt-download.deb", "/home/ubuntu/.lesshst"],
        },
    ],
};

const MBR: Machine = Machine {
    disks: &["mbr.img"],
    vg: "mbr",
    fss: &[
        Fs {
            volume: "vgmbr/data",
            place: Place::Lv("data"),
            kind: Kind::Ext4,
            truth: "mbr.data",
            deleted: &["/db/old-dump.sql"],
        },
        Fs {
            volume: "vgmbr/logs",
            place: Place::Lv("logs"),
            kind: Kind::Ext4,
            truth: "mbr.logs",
            deleted: &["/app.log.1"],
        },
    ],
};

const MACHINES: [&Machine; 3] = [&ROCKY, &UBUNTU, &MBR];

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Where each byte of `fs` lies on the machine's disks: (fs byte, disk, disk byte, length).
fn pieces(m: &Machine, fs: &Fs) -> Vec<(u64, usize, u64, u64)> {
    match fs.place {
        Place::Lv(lv) => lv_pieces(m.vg, m.disks, lv),
        Place::Partition(disk, n) => {
            let p = sfdisk_partitions(m.disks[disk])
                .into_iter()
                .find(|p| p.0 == n)
                .unwrap();
            vec![(0, disk, p.1, p.2)]
        }
    }
}

/// The used map of `fs` by its own tool, in bytes of the filesystem.
fn truth_used(fs: &Fs) -> Vec<(u64, u64)> {
    match fs.kind {
        Kind::Xfs => xfs_used(&installed_truth(&format!("{}.xfs_db.txt", fs.truth))),
        Kind::Ext4 => used_of(&installed_truth(&format!("{}.dumpe2fs.txt", fs.truth))),
    }
}

/// `set` (filesystem bytes) carried onto the disks through `pieces`, merged.
fn on_disks(set: &[(u64, u64)], pieces: &[(u64, usize, u64, u64)]) -> Vec<(usize, u64, u64)> {
    let mut out = Vec::new();
    for &(s, l) in set {
        for &(at, disk, start, len) in pieces {
            let (lo, hi) = (s.max(at), (s + l).min(at + len));
            if lo < hi {
                out.push((disk, start + (lo - at), hi - lo));
            }
        }
    }
    merged(out)
}

/// `runs` (disk, start, length) sorted, adjacent ones merged.
fn merged(mut runs: Vec<(usize, u64, u64)>) -> Vec<(usize, u64, u64)> {
    runs.sort();
    let mut out: Vec<(usize, u64, u64)> = Vec::new();
    for (d, s, l) in runs {
        match out.last_mut() {
            Some(m) if m.0 == d && m.1 + m.2 == s => m.2 += l,
            _ => out.push((d, s, l)),
        }
    }
    out
}

/// The ranges of a `blocks --json` answer (a one-disk machine's carry no disk).
fn disk_ranges(v: &Value) -> Vec<(usize, u64, u64)> {
    merged(
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["disk"].as_u64().unwrap_or(0) as usize,
                    r["start"].as_u64().unwrap(),
                    r["length"].as_u64().unwrap(),
                )
            })
            .collect(),
    )
}

/// The disk arguments of a command: the first disk, then `--disk` for each other one
/// (`ls`, `cat`), or all of them in a row (`report`, `blocks`).
fn disk_args(disks: &[PathBuf], flagged: bool) -> Vec<String> {
    let mut out = Vec::new();
    for (i, d) in disks.iter().enumerate() {
        if flagged && i > 0 {
            out.push("--disk".to_string());
        }
        out.push(s(d).to_string());
    }
    out
}

fn run_ok(args: &[String]) -> String {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    diskray_ok(&args)
}

/// The files the kernel left (`FS-files.txt`): path and SHA-256.
fn kernel_files(fs: &Fs) -> Vec<(String, String)> {
    let t = installed_truth(&format!("{}-files.txt", fs.truth));
    let out: Vec<(String, String)> = t
        .lines()
        .map(|l| {
            let (sum, path) = l.split_once("  ").unwrap();
            (path.trim_start_matches('.').to_string(), sum.to_string())
        })
        .collect();
    assert!(!out.is_empty(), "{}: files", fs.truth);
    out
}

/// Each filesystem's used map, as `blocks --state used -p` gives it on `disks`, against
/// its own tool's map carried through the partition table and lvs's segments.
fn check_used_maps(m: &Machine, disks: &[PathBuf]) {
    for fs in m.fss {
        let mut args = vec!["blocks", "--json", "--state", "used", "-p", fs.volume]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        args.extend(disk_args(disks, false));
        let b: Value = serde_json::from_str(&run_ok(&args)).unwrap();
        let want = on_disks(&truth_used(fs), &pieces(m, fs));
        assert!(!want.is_empty());
        assert_eq!(
            disk_ranges(&b["ranges"]),
            want,
            "{} on {disks:?}",
            fs.volume
        );
    }
}

/// Each filesystem's files through `ls -r` and `cat` on `disks`: the kernel's files with
/// their contents, the deleted ones not among the live entries.
fn check_files(m: &Machine, disks: &[PathBuf]) {
    for fs in m.fss {
        let mut args: Vec<String> = ["ls", "-r", "--json", "-p", fs.volume]
            .map(String::from)
            .to_vec();
        args.extend(disk_args(disks, true));
        let l: Value = serde_json::from_str(&run_ok(&args)).unwrap();
        let live: BTreeSet<String> = l["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "file")
            .map(|e| e["path"].as_str().unwrap().to_string())
            .collect();
        let files = kernel_files(fs);
        let want: BTreeSet<String> = files.iter().map(|f| f.0.clone()).collect();
        assert_eq!(live, want, "{}: the files ls lists", fs.volume);
        for d in fs.deleted {
            assert!(!live.contains(*d), "{}: deleted {d} listed", fs.volume);
        }
        for (path, sum) in files {
            let mut args: Vec<String> = ["cat", "-p", fs.volume].map(String::from).to_vec();
            args.extend(disk_args(disks, true));
            args.push(path.clone());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = diskray(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{}:{path}: {err}", fs.volume);
            assert_eq!(sha256(&out.stdout), sum, "{}:{path}", fs.volume);
        }
    }
}

/// The machine's disks, expanded.
fn disks_of(m: &Machine) -> Vec<PathBuf> {
    m.disks.iter().map(|d| installed_disk(d)).collect()
}

#[test]
fn every_filesystems_used_map_is_its_own_tools() {
    for m in MACHINES {
        check_used_maps(m, &disks_of(m));
    }
}

#[test]
fn files_are_the_ones_the_kernel_left() {
    for m in MACHINES {
        check_files(m, &disks_of(m));
    }
}

/// The block size of `fs` by its own tool.
fn block_size(fs: &Fs) -> u64 {
    let (file, key) = match fs.kind {
        Kind::Xfs => (format!("{}.xfs_db.txt", fs.truth), "blocksize = "),
        Kind::Ext4 => (format!("{}.dumpe2fs.txt", fs.truth), "Block size:"),
    };
    let t = installed_truth(&file);
    t.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The free blocks of `fs` (by its own tool's map) that hold a non-zero byte, read from
/// the source disks through the partition table and lvs's segments: where deleted data
/// lies.
fn truth_residue(m: &Machine, fs: &Fs, disks: &[PathBuf]) -> Vec<(u64, u64)> {
    let pieces = pieces(m, fs);
    let files: Vec<File> = disks.iter().map(|d| File::open(d).unwrap()).collect();
    let len: u64 = pieces.iter().map(|p| p.3).sum();
    let bs = block_size(fs);
    let mut free = Vec::new();
    let mut at = 0;
    for (s, l) in truth_used(fs).into_iter().chain([(len, 0)]) {
        if s > at {
            free.push((at, s - at));
        }
        at = s + l;
    }
    // Read a MiB at a time (whole blocks), compared 16 bytes at a time: a debug build's
    // byte loop is slow.
    let mut out = Vec::new();
    let mut buf = vec![0u128; (1 << 20) / 16];
    for (s, l) in free {
        for &(p_at, disk, start, p_len) in &pieces {
            let (lo, hi) = (s.max(p_at), (s + l).min(p_at + p_len));
            let mut b = lo;
            while b < hi {
                let n = (hi - b).min(1 << 20);
                let words = &mut buf[..n as usize / 16];
                files[disk]
                    .read_exact_at(bytemuck_bytes(words), start + (b - p_at))
                    .unwrap();
                for (k, blk) in words.chunks(bs as usize / 16).enumerate() {
                    if blk.iter().any(|&w| w != 0) {
                        out.push((b + k as u64 * bs, bs));
                    }
                }
                b += n;
            }
        }
    }
    out
}

/// `words` as bytes.
fn bytemuck_bytes(words: &mut [u128]) -> &mut [u8] {
    let n = std::mem::size_of_val(words);
    // SAFETY: u128 has no padding and every byte pattern is a valid u8; the slice covers
    // exactly the words' memory and borrows them mutably for its lifetime.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), n) }
}

/// `set` clipped to the disk runs of `pieces`.
fn clipped(set: &[(usize, u64, u64)], pieces: &[(u64, usize, u64, u64)]) -> Vec<(usize, u64, u64)> {
    let mut out = Vec::new();
    for &(d, s, l) in set {
        for &(_, disk, start, len) in pieces {
            let (lo, hi) = (s.max(start), (s + l).min(start + len));
            if disk == d && lo < hi {
                out.push((d, lo, hi - lo));
            }
        }
    }
    merged(out)
}

#[test]
fn residue_is_the_free_blocks_that_hold_data() {
    for m in MACHINES {
        let disks = disks_of(m);
        // Once per machine (a debug build reads its free space slowly), then each
        // filesystem's part.
        let mut args: Vec<String> = ["blocks", "--json", "--state", "residue"]
            .map(String::from)
            .to_vec();
        args.extend(disk_args(&disks, false));
        let b: Value = serde_json::from_str(&run_ok(&args)).unwrap();
        let all = disk_ranges(&b["ranges"]);
        for fs in m.fss {
            let pieces = pieces(m, fs);
            let want = on_disks(&truth_residue(m, fs, &disks), &pieces);
            assert!(!want.is_empty(), "{}: a deleted file's blocks", fs.volume);
            let got = clipped(&all, &pieces);
            let bytes = |r: &[(usize, u64, u64)]| r.iter().map(|r| r.2).sum::<u64>();
            assert_eq!(
                got,
                want,
                "{}: residue ({} bytes, truth {})",
                fs.volume,
                bytes(&got),
                bytes(&want)
            );
        }
    }
}

/// TSK's deleted names (`fls -r -d -p`), without its `$OrphanFiles` (diskray lists an
/// orphan inode only while it still has data: docs/formats.md §3.1.10; the kernel's
/// unlink leaves these none).
fn fls_deleted(fs: &Fs) -> BTreeSet<String> {
    installed_truth(&format!("{}.fls-d.txt", fs.truth))
        .lines()
        .filter_map(|l| l.split_once(":\t").map(|(_, p)| format!("/{p}")))
        .filter(|p| !p.starts_with("/$OrphanFiles"))
        .collect()
}

#[test]
fn deleted_names_on_ext4_are_tsks() {
    for m in MACHINES {
        let disks = disks_of(m);
        for fs in m.fss.iter().filter(|f| f.kind == Kind::Ext4) {
            let mut args: Vec<String> = ["ls", "-r", "--deleted", "--json", "-p", fs.volume]
                .map(String::from)
                .to_vec();
            args.extend(disk_args(&disks, true));
            let l: Value = serde_json::from_str(&run_ok(&args)).unwrap();
            let got: BTreeSet<String> = l["entries"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| {
                    e["deleted"] == true
                        && !e["path"].as_str().unwrap().starts_with("/$OrphanFiles")
                })
                .map(|e| e["path"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(got, fls_deleted(fs), "{}: deleted names", fs.volume);
        }
    }
}

/// The partitions of `file` that hold a volume (not an extended partition's container).
fn data_partitions(file: &str) -> Vec<(u32, u64, u64, String)> {
    sfdisk_partitions(file)
        .into_iter()
        .filter(|p| !matches!(p.3.trim_matches('"'), "5" | "f" | "85"))
        .collect()
}

#[test]
fn the_report_classes_tile_every_disk() {
    for m in MACHINES {
        check_tiling(m, &disks_of(m));
    }
}

/// The report of the machine `m` read from `disks` (raw or converted): every byte in one
/// class, every volume where the partition table and lvs put it and covered once by its
/// classes, and no byte in two of `blocks`' states.
fn check_tiling(m: &Machine, disks: &[PathBuf]) {
    let mut args = vec!["report".to_string(), "--json".to_string()];
    args.extend(disk_args(disks, false));
    let r: Value = serde_json::from_str(&run_ok(&args)).unwrap();
    // The raw disks' sizes (a converted disk's file is not its capacity).
    let sizes: Vec<u64> = disks_of(m)
        .iter()
        .map(|d| std::fs::metadata(d).unwrap().len())
        .collect();
    let capacity: u64 = sizes.iter().sum();
    // Whatever the classes are called, each byte of the machine is in one.
    let sum = |c: &Value| -> u64 {
        c.as_object()
            .unwrap()
            .values()
            .map(|b| b.as_u64().unwrap())
            .sum()
    };
    assert_eq!(sum(&r["classes"]), capacity, "{:?}", m.disks);
    assert_eq!(r["capacity"], capacity, "{:?}", m.disks);
    // Every LV is where lvs puts it, its classes cover it once; the LVs of a PV do not
    // overlap and lie inside it.
    let vols = r["volumes"].as_array().unwrap();
    let lvs: Value = serde_json::from_str(&installed_truth(&format!("{}.lvs.json", m.vg))).unwrap();
    let names: BTreeSet<&str> = lvs["report"][0]["seg"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["lv_name"].as_str().unwrap())
        .collect();
    let mut lv_runs = Vec::new();
    let mut in_volumes = 0;
    for lv in names {
        let want = merged(
            lv_pieces(m.vg, m.disks, lv)
                .into_iter()
                .map(|(_, d, s, l)| (d, s, l))
                .collect(),
        );
        let v = vols
            .iter()
            .find(|v| {
                v["lv"]
                    .as_str()
                    .is_some_and(|n| n.ends_with(&format!("/{lv}")))
            })
            .unwrap_or_else(|| panic!("no LV {lv} in {vols:#?}"));
        assert_eq!(disk_ranges(&v["extents"]), want, "{lv}: extents");
        let len: u64 = want.iter().map(|r| r.2).sum();
        assert_eq!(sum(&v["classes"]), len, "{lv}: classes");
        in_volumes += len;
        lv_runs.extend(want);
    }
    lv_runs.sort();
    for w in lv_runs.windows(2) {
        assert!(
            w[0].0 != w[1].0 || w[0].1 + w[0].2 <= w[1].1,
            "LVs overlap: {w:?}"
        );
    }
    // Every partition (or whole-disk PV) is one volume whose classes cover what its
    // LVs do not; the bytes outside every partition are the rest.
    let mut outside = 0;
    for (i, file) in m.disks.iter().enumerate() {
        let parts = data_partitions(file);
        let size = sizes[i];
        let spans: Vec<(u64, u64)> = if parts.is_empty() {
            vec![(0, size)]
        } else {
            parts.iter().map(|p| (p.1, p.2)).collect()
        };
        outside += size - spans.iter().map(|p| p.1).sum::<u64>();
        for (start, len) in spans {
            let v = vols
                .iter()
                .find(|v| {
                    v["lv"].is_null()
                        && v["disk"].as_u64().unwrap_or(0) == i as u64
                        && v["start"] == start
                })
                .unwrap_or_else(|| panic!("{file}: no volume at {start} in {vols:#?}"));
            assert_eq!(v["length"], len, "{file}: volume at {start}");
            let lvs_inside: u64 = lv_runs
                .iter()
                .filter(|r| r.0 == i && r.1 >= start && r.1 + r.2 <= start + len)
                .map(|r| r.2)
                .sum();
            assert_eq!(
                sum(&v["classes"]),
                len - lvs_inside,
                "{file}: volume at {start}"
            );
            in_volumes += len - lvs_inside;
        }
    }
    assert_eq!(in_volumes + outside, capacity, "{:?}", m.disks);
    // No byte is in two states.
    let mut all = Vec::new();
    for state in ["used", "free", "excluded"] {
        let mut args: Vec<String> = ["blocks", "--json", "--state", state]
            .map(String::from)
            .to_vec();
        args.extend(disk_args(disks, false));
        let b: Value = serde_json::from_str(&run_ok(&args)).unwrap();
        all.extend(disk_ranges(&b["ranges"]));
    }
    all.sort();
    for w in all.windows(2) {
        assert!(
            w[0].0 != w[1].0 || w[0].1 + w[0].2 <= w[1].1,
            "states overlap: {w:?}"
        );
    }
}

/// The machine's disks converted by qemu-img to VMDK of `subformat`, into `dir`.
fn as_vmdk(m: &Machine, dir: &Path, subformat: &str) -> Vec<PathBuf> {
    disks_of(m)
        .iter()
        .map(|d| {
            let out = dir.join(format!(
                "{}-{subformat}.vmdk",
                d.file_stem().unwrap().to_string_lossy()
            ));
            let st = Command::new("qemu-img")
                .args(["convert", "-f", "raw", "-O", "vmdk", "-o"])
                .arg(format!("subformat={subformat}"))
                .arg(d)
                .arg(&out)
                .status()
                .expect("qemu-img (qemu-utils) is installed");
            assert!(st.success(), "qemu-img convert {}", d.display());
            out
        })
        .collect()
}

#[test]
fn vmdk_copies_give_the_same_answers() {
    let tmp = scratch("lvm-installed-vmdk");
    for subformat in ["monolithicSparse", "streamOptimized"] {
        for m in MACHINES {
            let disks = as_vmdk(m, &tmp, subformat);
            check_used_maps(m, &disks);
            check_files(m, &disks);
            check_tiling(m, &disks);
            for d in &disks {
                std::fs::remove_file(d).unwrap();
            }
        }
    }
}

/// Copies the bytes of a filesystem out of `disks` through `pieces` into `out`.
fn cut(disks: &[PathBuf], pieces: &[(u64, usize, u64, u64)], out: &Path) {
    let files: Vec<File> = disks.iter().map(|d| File::open(d).unwrap()).collect();
    let dst = File::create(out).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    for &(at, disk, start, len) in pieces {
        let mut done = 0;
        while done < len {
            let n = (len - done).min(buf.len() as u64) as usize;
            files[disk]
                .read_exact_at(&mut buf[..n], start + done)
                .unwrap();
            dst.write_all_at(&buf[..n], at + done).unwrap();
            done += n as u64;
        }
    }
}

/// Whether `needle` occurs in the file at `path` (by grep: a byte-wise scan of a few
/// hundred MiB is slow in a test's debug build).
fn contains(path: &Path, needle: &[u8]) -> bool {
    let st = Command::new("grep")
        .args(["-q", "-a", "-F", "-e"])
        .arg(std::str::from_utf8(needle).unwrap())
        .arg(path)
        .status()
        .unwrap();
    assert!(
        st.code() == Some(0) || st.code() == Some(1),
        "grep {}",
        path.display()
    );
    st.success()
}

/// The marker `make-installed.sh` wrote into every file it deleted.
const DELETED: &[u8] = b"DISKRAY-DELETED-";

/// The filesystems of Rocky restored into `restored`, against the same cut out of
/// `source`: every used byte (by xfs_db's map) equal, every free byte zero, `xfs_repair -n`
/// clean; and no deleted file's bytes anywhere on the restored disks.
fn check_restored(tmp: &Path, source: &[PathBuf], restored: &[PathBuf], tag: &str) {
    for fs in ROCKY.fss {
        let pieces = pieces(&ROCKY, fs);
        let name = fs.truth.replace('.', "-");
        let (want, got) = (
            tmp.join(format!("{tag}-{name}-source.xfs")),
            tmp.join(format!("{tag}-{name}-restored.xfs")),
        );
        cut(source, &pieces, &want);
        cut(restored, &pieces, &got);
        let (w, g) = (File::open(&want).unwrap(), File::open(&got).unwrap());
        let len = std::fs::metadata(&want).unwrap().len();
        let bytes = |f: &File, at: u64, n: u64| -> Vec<u8> {
            let mut b = vec![0u8; n as usize];
            f.read_exact_at(&mut b, at).unwrap();
            b
        };
        let mut at = 0;
        let chunks = |from: u64, to: u64, each: &mut dyn FnMut(u64, u64)| {
            let mut p = from;
            while p < to {
                let n = (to - p).min(1 << 20);
                each(p, n);
                p += n;
            }
        };
        for (s, l) in truth_used(fs) {
            chunks(at, s, &mut |p, n| {
                let free = bytes(&g, p, n);
                assert!(
                    free.iter().all(|&b| b == 0),
                    "{tag} {}: free {p}+{n} not zero",
                    fs.volume
                );
            });
            chunks(s, s + l, &mut |p, n| {
                assert!(
                    bytes(&g, p, n) == bytes(&w, p, n),
                    "{tag} {}: used {p}+{n} differ",
                    fs.volume
                );
            });
            at = s + l;
        }
        chunks(at, len, &mut |p, n| {
            assert!(
                bytes(&g, p, n).iter().all(|&b| b == 0),
                "{tag} {}: free tail",
                fs.volume
            );
        });
        let repair = Command::new("xfs_repair")
            .args(["-n", "-f"])
            .arg(&got)
            .output()
            .expect("xfs_repair (xfsprogs) is installed");
        assert!(
            repair.status.success(),
            "{tag}: xfs_repair -n on restored {}: {}{}",
            fs.volume,
            String::from_utf8_lossy(&repair.stdout),
            String::from_utf8_lossy(&repair.stderr)
        );
        std::fs::remove_file(&want).unwrap();
        std::fs::remove_file(&got).unwrap();
    }
    for d in restored {
        assert!(
            !contains(d, DELETED),
            "{tag}: deleted data on {}",
            d.display()
        );
    }
}

/// Restores each image of `ids` into `tmp`.
fn restore(r: &str, tmp: &Path, ids: &[String], tag: &str) -> Vec<PathBuf> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| {
            let out = tmp.join(format!("{tag}-disk{i}.raw"));
            diskray_ok(&["restore", "--repo", r, id, s(&out)]);
            out
        })
        .collect()
}

fn image_ids(doc: &Value) -> Vec<String> {
    let images = doc["images"]
        .as_array()
        .expect("two disks: an images array");
    assert_eq!(images.len(), 2, "{doc:#}");
    images
        .iter()
        .map(|i| i["image"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_full_and_an_incremental_backup_of_rocky_restore_both_disks() {
    let source = disks_of(&ROCKY);
    let tmp = scratch("lvm-installed-backup");
    let repo = tmp.join("repo");
    let r = s(&repo);
    // The deleted files' bytes are on the source disks (so their absence below means
    // something): both filesystems', and root's on each of its disks.
    assert!(contains(&source[0], b"DISKRAY-DELETED-rocky-boot"));
    assert!(contains(&source[0], b"DISKRAY-DELETED-rocky-root"));
    assert!(
        contains(&source[1], DELETED),
        "root's free blocks on disk b"
    );

    let mut args = vec!["backup".to_string()];
    args.extend(disk_args(&source, false));
    args.extend(["--repo", r, "--name", "rocky", "--json"].map(String::from));
    let full: Value = serde_json::from_str(&run_ok(&args)).unwrap();
    let full_ids = image_ids(&full);
    let restored = restore(r, &tmp, &full_ids, "full");
    check_restored(&tmp, &source, &restored, "full");

    // The machine changes: on disk b, noise in a free extent of the VG (extent 12 of 15;
    // lvs: 0-9 are root's) and the marker in a free block of root (by xfs_db) that lies
    // there; on disk a, the swap LV.
    let mut changed = Vec::new();
    let root = &ROCKY.fss[1];
    let free_on_b = {
        let pieces = pieces(&ROCKY, root);
        let used = truth_used(root);
        let (at, _, start, len) = *pieces.iter().find(|p| p.1 == 1).unwrap();
        // The last 4 KiB of the LV, free in xfs_db's map.
        let last = at + len - 4096;
        assert!(
            used.iter().all(|&(s, l)| s + l <= last),
            "root's last block is free"
        );
        start + len - 4096
    };
    let swap = lv_pieces("rocky", ROCKY.disks, "swap")[0];
    let pvs: Value = serde_json::from_str(&installed_truth("rocky.pvs.json")).unwrap();
    let pe_start_b: u64 = pvs["report"][0]["pv"][1]["pe_start"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    for (i, d) in source.iter().enumerate() {
        let path = tmp.join(format!("changed-{i}.img"));
        std::fs::copy(d, &path).unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        if i == 1 {
            f.write_all_at(&[0x5a; 65536], pe_start_b + 12 * (4 << 20))
                .unwrap();
            f.write_all_at(b"DISKRAY-DELETED-incremental", free_on_b)
                .unwrap();
        } else {
            f.write_all_at(&[0xa5; 65536], swap.2 + (1 << 20)).unwrap();
        }
        changed.push(path);
    }
    let mut args = vec!["backup".to_string()];
    args.extend(disk_args(&changed, false));
    args.extend(["--repo", r, "--name", "rocky", "--json"].map(String::from));
    for (i, (old, new)) in source.iter().zip(&changed).enumerate() {
        let map = tmp.join(format!("disk{i}.changes.json"));
        diskray_ok(&["changes", "diff", s(old), s(new), "-o", s(&map)]);
        args.extend(["--changes".to_string(), s(&map).to_string()]);
    }
    let inc: Value = serde_json::from_str(&run_ok(&args)).unwrap();
    let inc_ids = image_ids(&inc);
    for i in 0..2 {
        assert_eq!(inc["images"][i]["parent"], full_ids[i].as_str(), "disk {i}");
        assert_eq!(
            inc["images"][i]["stats"]["change_source"], "cbt",
            "disk {i}"
        );
    }
    for d in &restored {
        std::fs::remove_file(d).unwrap();
    }
    let restored = restore(r, &tmp, &inc_ids, "inc");
    check_restored(&tmp, &changed, &restored, "incremental");
    // Files of root, out of both images without restoring them.
    for (path, sum) in kernel_files(root) {
        let out = diskray(&[
            "restore-file",
            "--repo",
            r,
            &inc_ids[0],
            "--disk",
            &inc_ids[1],
            "-p",
            "rl/root",
            &path,
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "rl/root:{path}: {err}");
        assert_eq!(sha256(&out.stdout), sum, "rl/root:{path}");
    }
}

#[test]
fn an_lv_on_a_missing_disk_is_not_read_and_the_missing_pv_is_named() {
    // Rocky without disk b: root's second segment is missing. So is vgspan/data's (of
    // fixtures/lvm) without span-b.img. Reading such an LV's bytes straight on from its
    // first extent would read other LVs' bytes as its own.
    let pv_uuid = |truth: &str, i: usize| -> String {
        let pvs: Value = serde_json::from_str(truth).unwrap();
        pvs["report"][0]["pv"][i]["pv_uuid"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let a = installed_disk("rocky-a.img");
    let (span_a, _) = common::lvm::span();
    for (lv, disk, missing) in [
        (
            "rl/root",
            &a,
            pv_uuid(&installed_truth("rocky.pvs.json"), 1),
        ),
        (
            "vgspan/data",
            &span_a,
            pv_uuid(&common::lvm::truth("span.pvs.json"), 1),
        ),
    ] {
        for args in [
            vec!["ls", "-r", "-p", lv, s(disk)],
            vec!["cat", "-p", lv, s(disk), "/etc/hostname"],
        ] {
            let out = diskray(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
            assert!(err.contains(&missing), "{args:?}: {err}");
        }
    }
}
