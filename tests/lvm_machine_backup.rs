//! A backup of a machine of two disks whose volume group spans them (`vgspan` of
//! `fixtures/lvm/README.md`): one image per disk, each disk's kept set taken from the whole
//! machine. Checked against e2fsprogs on standalone copies of the LVs' filesystems: every
//! block `dumpe2fs` calls used comes back as it was, every free block as zeros (on both
//! disks), `e2fsck` finds each LV clean, and a file read through the LV out of both images
//! is the one `debugfs` reads.

mod common;
use common::lvm::{span, span_geometry, span_pieces, truth, used_of};
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The LVs holding a filesystem, and the standalone copy of that filesystem.
const LVS: [(&str, &str); 2] = [("data", "span-data.ext4"), ("st", "span-st.ext4")];

fn standalone(fs: &str) -> PathBuf {
    expanded("lvm/images").join(fs)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The bytes of `lv` cut out of `disks` through lvs's segments.
fn cut(lv: &str, disks: &[Vec<u8>]) -> Vec<u8> {
    let pieces = span_pieces(lv);
    let len = pieces.iter().map(|p| p.0 + p.3).max().unwrap();
    let mut out = vec![0u8; len as usize];
    for (at, disk, start, n) in pieces {
        let (at, start, n) = (at as usize, start as usize, n as usize);
        out[at..at + n].copy_from_slice(&disks[disk][start..start + n]);
    }
    out
}

/// Writes `fs` (a whole LV's bytes) into `disks` through lvs's segments.
fn place(lv: &str, fs: &[u8], disks: &mut [Vec<u8>]) {
    for (at, disk, start, n) in span_pieces(lv) {
        let (at, start, n) = (at as usize, start as usize, n as usize);
        disks[disk][start..start + n].copy_from_slice(&fs[at..at + n]);
    }
}

fn dumpe2fs_used(fs: &Path) -> Vec<(u64, u64)> {
    let d = Command::new("dumpe2fs")
        .arg(fs)
        .output()
        .expect("dumpe2fs (e2fsprogs) is installed");
    assert!(d.status.success(), "dumpe2fs {}", fs.display());
    used_of(&String::from_utf8_lossy(&d.stdout))
}

fn debugfs(request: &str, fs: &Path) -> Vec<u8> {
    let out = Command::new("debugfs")
        .args(["-R", request])
        .arg(fs)
        .output()
        .expect("debugfs (e2fsprogs) is installed");
    out.stdout
}

/// Free bytes of `lv`'s filesystem (`fs`, by `dumpe2fs`) that lie on each disk.
fn free_per_disk(lv: &str, fs: &Path) -> [u64; 2] {
    let len = std::fs::metadata(fs).unwrap().len();
    let mut used = vec![false; len as usize];
    for (s, l) in dumpe2fs_used(fs) {
        used[s as usize..(s + l) as usize].fill(true);
    }
    let mut free = [0u64; 2];
    for (at, disk, _, n) in span_pieces(lv) {
        free[disk] += used[at as usize..(at + n) as usize]
            .iter()
            .filter(|u| !**u)
            .count() as u64;
    }
    free
}

/// The LVs of the restored disks `restored` against the standalone filesystems `truth`
/// gives: used bytes equal, free bytes zero, `e2fsck -fn` clean.
fn check_lvs(tmp: &Path, restored: &[PathBuf; 2], truth: &dyn Fn(&str) -> PathBuf) {
    let disks = [
        std::fs::read(&restored[0]).unwrap(),
        std::fs::read(&restored[1]).unwrap(),
    ];
    for (lv, _) in LVS {
        let want_fs = truth(lv);
        let want = std::fs::read(&want_fs).unwrap();
        let got = cut(lv, &disks);
        assert_eq!(
            got.len(),
            want.len(),
            "vgspan/{lv}: LV and filesystem sizes"
        );
        let mut at = 0usize;
        for (s, l) in dumpe2fs_used(&want_fs) {
            let (s, e) = (s as usize, (s + l) as usize);
            let zero = got[at..s].iter().all(|&b| b == 0);
            assert!(zero, "vgspan/{lv}: free bytes {at}..{s} not zero");
            assert!(got[s..e] == want[s..e], "vgspan/{lv}: used bytes {s}..{e}");
            at = e;
        }
        assert!(got[at..].iter().all(|&b| b == 0), "vgspan/{lv}: free tail");
        let path = tmp.join(format!("restored-{lv}.ext4"));
        std::fs::write(&path, &got).unwrap();
        let fsck = Command::new("e2fsck")
            .arg("-fn")
            .arg(&path)
            .output()
            .expect("e2fsck (e2fsprogs) is installed");
        assert!(
            fsck.status.success(),
            "e2fsck on restored vgspan/{lv}: {}",
            String::from_utf8_lossy(&fsck.stdout)
        );
    }
}

/// Restores `images` (one per disk) into `tmp`.
fn restore(r: &str, tmp: &Path, images: [&str; 2], tag: &str) -> [PathBuf; 2] {
    images.map(|image| {
        let out = tmp.join(format!("{tag}-{image}.raw"));
        diskray_ok(&["restore", "--repo", r, image, s(&out)]);
        out
    })
}

/// Checks the statistics of a machine backup's images and returns their ids.
fn images_of(doc: &Value, source: &str) -> [String; 2] {
    let images = doc["images"]
        .as_array()
        .expect("several disks: an images array");
    assert_eq!(images.len(), 2, "{doc:#}");
    assert!(doc["warnings"].is_array(), "{doc:#}");
    let ids: Vec<String> = images
        .iter()
        .enumerate()
        .map(|(i, r)| {
            assert_eq!(r["name"], format!("vm1.disk{i}"));
            let st = &r["stats"];
            let n = |k: &str| st[k].as_u64().unwrap();
            assert_eq!(st["change_source"], source, "vm1.disk{i}");
            assert_eq!(
                n("read_from_source")
                    + n("skipped_unallocated")
                    + n("skipped_zero")
                    + n("skipped_free")
                    + n("skipped_vg_free")
                    + n("skipped_excluded")
                    + n("skipped_unchanged"),
                n("capacity"),
                "vm1.disk{i}: {st:#}"
            );
            r["image"].as_str().unwrap().to_string()
        })
        .collect();
    // One machine backup: one start time, so the ids share their time prefix.
    let time = |id: &str| id.rsplit_once('-').unwrap().0.to_string();
    assert_eq!(time(&ids[0]), time(&ids[1]));
    [ids[0].clone(), ids[1].clone()]
}

/// A deterministic file of `len` bytes.
fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9u32;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[test]
fn a_machine_backup_keeps_each_lvs_used_blocks_on_both_disks() {
    let (a, b) = span();
    let tmp = scratch("lvm-machine-backup");
    let repo = tmp.join("repo");
    let r = s(&repo);

    // Full backup of the machine.
    let full: Value = serde_json::from_str(&diskray_ok(&[
        "backup",
        s(&a),
        s(&b),
        "--repo",
        r,
        "--name",
        "vm1",
        "--json",
    ]))
    .unwrap();
    let full_ids = images_of(&full, "full");
    // What each image skipped as unallocated to the VG is the PV's free extents (by
    // `pvs`), and what it skipped as free the LVs' free blocks on that disk (by `dumpe2fs`).
    let pvs: Value = serde_json::from_str(&truth("span.pvs.json")).unwrap();
    let (_, extent) = span_geometry();
    let vg_free = [0, 1].map(|i| {
        let n = |k: &str| -> u64 {
            pvs["report"][0]["pv"][i][k]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        };
        (n("pv_pe_count") - n("pv_pe_alloc_count")) * extent
    });
    let mut free = [0, 0];
    for (lv, fs) in LVS {
        let f = free_per_disk(lv, &standalone(fs));
        free[0] += f[0];
        free[1] += f[1];
    }
    for i in 0..2 {
        assert!(free[i] > 0, "the fixture has free blocks on disk {i}");
        assert!(vg_free[i] > 0, "the fixture has free extents on disk {i}");
        let st = &full["images"][i]["stats"];
        assert_eq!(st["skipped_free"], free[i], "disk {i}");
        assert_eq!(st["skipped_vg_free"], vg_free[i], "disk {i}");
    }
    let restored = restore(r, &tmp, [&full_ids[0], &full_ids[1]], "full");
    check_lvs(&tmp, &restored, &|lv| {
        standalone(LVS.iter().find(|l| l.0 == lv).unwrap().1)
    });

    // Change the machine: a new file in `data` (written by debugfs into a copy of its
    // filesystem, placed back on both disks), and bytes in a free extent of each PV.
    let new_fs = tmp.join("data-new.ext4");
    std::fs::copy(standalone("span-data.ext4"), &new_fs).unwrap();
    let new_file = tmp.join("new.bin");
    std::fs::write(&new_file, noise(200_000)).unwrap();
    let w = Command::new("debugfs")
        .args(["-w", "-R", &format!("write {} /new.bin", s(&new_file))])
        .arg(&new_fs)
        .output()
        .unwrap();
    assert!(w.status.success());
    assert_eq!(debugfs("cat /new.bin", &new_fs), noise(200_000));
    let mut disks = [std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap()];
    place("data", &std::fs::read(&new_fs).unwrap(), &mut disks);
    let (pe_start, _) = span_geometry();
    for (d, name) in disks.iter_mut().zip(["span-a.img", "span-b.img"]) {
        // Extent 20 is free on both PVs (`pvs`: 8 of 23 extents allocated, from 0).
        let at = (pe_start(name) + 20 * extent) as usize;
        d[at..at + 4096].copy_from_slice(&noise(4096));
    }
    let mut args = vec!["backup".to_string()];
    let mut changes = Vec::new();
    for (i, (old, new)) in [&a, &b].into_iter().zip(&disks).enumerate() {
        let path = tmp.join(format!("disk{i}.img"));
        std::fs::write(&path, new).unwrap();
        let map = tmp.join(format!("disk{i}.changes.json"));
        diskray_ok(&["changes", "diff", s(old), s(&path), "-o", s(&map)]);
        args.push(s(&path).to_string());
        changes.extend(["--changes".to_string(), s(&map).to_string()]);
    }
    args.extend(["--repo", r, "--name", "vm1", "--json"].map(String::from));
    args.extend(changes);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let inc: Value = serde_json::from_str(&diskray_ok(&args)).unwrap();
    images_of(&inc, "cbt");
    for i in 0..2 {
        assert_eq!(inc["images"][i]["parent"], full_ids[i].as_str(), "disk {i}");
    }
    let restored = restore(r, &tmp, ["vm1.disk0", "vm1.disk1"], "inc");
    check_lvs(&tmp, &restored, &|lv| match lv {
        "data" => new_fs.clone(),
        _ => standalone("span-st.ext4"),
    });

    // Files through the LVs, out of both images without restoring them.
    for (lv, fs, path) in [
        ("data", new_fs.clone(), "/random.bin"),
        ("data", new_fs.clone(), "/new.bin"),
        ("st", standalone("span-st.ext4"), "/random.bin"),
    ] {
        let want = debugfs(&format!("cat {path}"), &fs);
        assert!(!want.is_empty(), "debugfs cat {path}");
        let lvname = format!("vgspan/{lv}");
        let out = diskray(&[
            "restore-file",
            "--repo",
            r,
            "vm1.disk0",
            "--disk",
            "vm1.disk1",
            "-p",
            &lvname,
            path,
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(out.stdout == want, "{lvname}:{path}");
    }

    // `images NAME` lists the machine's images, every disk's series.
    let list: Value =
        serde_json::from_str(&diskray_ok(&["images", "--repo", r, "--json", "vm1"])).unwrap();
    assert_eq!(list["images"].as_array().unwrap().len(), 4, "{list:#}");
}

#[test]
fn a_change_map_per_disk_or_none() {
    let (a, b) = span();
    let tmp = scratch("lvm-machine-backup-usage");
    let r = tmp.join("repo");
    let out = diskray(&[
        "backup",
        s(&a),
        s(&b),
        "--repo",
        s(&r),
        "--name",
        "vm1",
        "--changes",
        "one.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--changes is given 1 times for 2 disks"),
        "{err}"
    );
    assert!(
        !r.join("images").exists() || std::fs::read_dir(r.join("images")).unwrap().count() == 0
    );
}
