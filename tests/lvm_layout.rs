//! LVM2 in the disk's tree, against what LVM's and e2fsprogs' own tools say of the same
//! disks (`fixtures/lvm/README.md`): the logical volumes are found where `lvs` puts them,
//! the root LV's used map is `dumpe2fs`'s, its files are the ones the kernel wrote, every
//! byte of the disk is in one class, and a backup of the disk restores an LV `e2fsck`
//! finds clean, with its files, and its free space zero.

mod common;
use common::lvm::{extent_bytes, span, span_runs, truth, used_of, vg_free_bytes};
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The linear fixture: GPT, partition 2 a PV of `vg0` holding `root` (ext4) and `swap`.
fn linear() -> PathBuf {
    expanded("lvm/images").join("linear.img")
}

/// Partition 2's first byte: the `-n 2:18432:…` of `fixtures/lvm/make.sh`'s sgdisk call.
const PARTITION_2: u64 = 18432 * 512;

/// `pe_start` and the extent runs `pvs` and `lvs --segments` report for `lv` (bytes,
/// disk-absolute), and the extent size `vgcfgbackup` records.
fn lvs_extents(lv: &str) -> Vec<(u64, u64)> {
    let pvs: Value = serde_json::from_str(&truth("linear.pvs.json")).unwrap();
    let pe_start: u64 = pvs["report"][0]["pv"][0]["pe_start"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let extent = extent_bytes(&truth("linear.vgcfg.txt"));
    let lvs: Value = serde_json::from_str(&truth("linear.lvs.json")).unwrap();
    lvs["report"][0]["seg"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["lv_name"] == lv)
        .map(|s| {
            // "linear.img:p2:0-11": first and last extent on the PV.
            let ranges = s["seg_pe_ranges"].as_str().unwrap();
            let (a, b) = ranges.rsplit(':').next().unwrap().split_once('-').unwrap();
            let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
            (PARTITION_2 + pe_start + a * extent, (b - a + 1) * extent)
        })
        .collect()
}

/// The root LV's one run on the disk, where `lvs` puts it.
fn root_run() -> (u64, u64) {
    let [run] = lvs_extents("root")[..] else {
        panic!("root is one run in this fixture")
    };
    run
}

/// `blocks --state STATE` of `disk`, within the LV at `[start, start + len)`, relative
/// to the LV.
fn root_blocks(disk: &Path, state: &str, start: u64, len: u64) -> Vec<(u64, u64)> {
    let args = ["blocks", "--json", "--state", state, disk.to_str().unwrap()];
    let b: Value = serde_json::from_str(&diskray_ok(&args)).unwrap();
    within(&ranges(&b["ranges"]), start, len)
}

/// The used blocks of the root LV as `dumpe2fs` reads them (everything but its free
/// blocks), in bytes relative to the LV.
fn dumpe2fs_used() -> Vec<(u64, u64)> {
    used_of(&truth("linear.root.dumpe2fs.txt"))
}

fn ranges(v: &Value) -> Vec<(u64, u64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| (r["start"].as_u64().unwrap(), r["length"].as_u64().unwrap()))
        .collect()
}

/// `set` clipped to `[start, start + len)` and shifted to start at 0.
fn within(set: &[(u64, u64)], start: u64, len: u64) -> Vec<(u64, u64)> {
    set.iter()
        .filter_map(|&(s, l)| {
            let lo = s.max(start);
            let hi = (s + l).min(start + len);
            (lo < hi).then(|| (lo - start, hi - lo))
        })
        .collect()
}

fn report(disk: &Path) -> Value {
    serde_json::from_str(&diskray_ok(&["report", "--json", disk.to_str().unwrap()])).unwrap()
}

#[test]
fn logical_volumes_are_found_where_lvs_puts_them() {
    let r = report(&linear());
    let vols = r["volumes"].as_array().unwrap();
    for (lv, fs) in [("root", "ext4"), ("swap", "swap")] {
        let v = vols
            .iter()
            .find(|v| v["lv"] == format!("vg0/{lv}"))
            .unwrap_or_else(|| panic!("no volume vg0/{lv} in {vols:#?}"));
        assert_eq!(v["filesystem"], fs, "vg0/{lv}");
        assert_eq!(ranges(&v["extents"]), lvs_extents(lv), "vg0/{lv} extents");
    }
    let pv = vols
        .iter()
        .find(|v| v["index"] == 2 && v["lv"].is_null())
        .unwrap();
    assert_eq!(pv["filesystem"], "lvm2");
    assert_eq!(pv["label"], "vg0");
    // The extents no LV owns are a class of their own, as `pvs` counts them.
    assert_eq!(pv["classes"]["vg_free"], vg_free_bytes("linear"));
    assert_eq!(r["classes"]["vg_free"], vg_free_bytes("linear"));
    let listed: Value = serde_json::from_str(&diskray_ok(&[
        "blocks",
        "--json",
        "--state",
        "vg_free",
        linear().to_str().unwrap(),
    ]))
    .unwrap();
    let listed: u64 = ranges(&listed["ranges"]).iter().map(|r| r.1).sum();
    assert_eq!(listed, vg_free_bytes("linear"), "blocks --state vg_free");
    // Every byte in one class.
    let sum: u64 = r["classes"]
        .as_object()
        .unwrap()
        .values()
        .map(|b| b.as_u64().unwrap())
        .sum();
    assert_eq!(sum, r["capacity"].as_u64().unwrap());
    // Swap is excluded, whole (but its header page).
    let swap = vols.iter().find(|v| v["lv"] == "vg0/swap").unwrap();
    assert_eq!(swap["classes"]["excluded"], (3u64 << 20) - 4096);
}

#[test]
fn the_root_lvs_used_map_is_dumpe2fs() {
    let (start, len) = root_run();
    let used = root_blocks(&linear(), "used", start, len);
    assert_eq!(used, dumpe2fs_used());
}

/// The root LV's deleted data: its free blocks (by `dumpe2fs`) that are not all zeros in
/// the LV's bytes, cut out of the disk at the extents `lvs` reports; relative to the LV.
fn dumpe2fs_residue(disk: &Path, start: u64, len: u64) -> Vec<(u64, u64)> {
    let bytes = std::fs::read(disk).unwrap();
    let lv = &bytes[start as usize..(start + len) as usize];
    let d = truth("linear.root.dumpe2fs.txt");
    let bs: u64 = d
        .lines()
        .find_map(|l| l.strip_prefix("Block size:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut runs: Vec<(u64, u64)> = Vec::new();
    let used = dumpe2fs_used();
    for block in 0..len / bs {
        let at = block * bs;
        let in_use = used.iter().any(|&(s, l)| (s..s + l).contains(&at));
        let zero = lv[at as usize..(at + bs) as usize].iter().all(|&b| b == 0);
        if in_use || zero {
            continue;
        }
        match runs.last_mut() {
            Some((s, l)) if *s + *l == at => *l += bs,
            _ => runs.push((at, bs)),
        }
    }
    runs
}

#[test]
fn the_root_lvs_deleted_data_is_its_nonzero_free_blocks() {
    let (disk, (start, len)) = (linear(), root_run());
    let want = dumpe2fs_residue(&disk, start, len);
    assert!(!want.is_empty(), "the fixture deleted a file in root");
    assert_eq!(root_blocks(&disk, "residue", start, len), want);
}

#[test]
fn files_of_an_lv_are_the_files_the_kernel_wrote() {
    let disk = linear();
    let d = disk.to_str().unwrap();
    let listed = diskray_ok(&["ls", "-r", "-p", "vg0/root", d]);
    let want = truth("linear.root-files.txt");
    assert!(!want.is_empty());
    for line in want.lines() {
        let (sum, path) = line.split_once("  ").unwrap();
        let path = path.trim_start_matches('.');
        assert!(listed.contains(path), "ls does not list {path}:\n{listed}");
        let out = diskray(&["cat", "-p", "vg0/root", d, path]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(sha256(&out.stdout), sum, "{path}");
    }
    // An LV is chosen by VG/LV; the PV's partition number is not a filesystem.
    let out = diskray(&["ls", "-p", "2", d]);
    assert!(!out.status.success());
}

#[test]
fn a_backup_restores_the_lv_clean_with_its_files_and_no_deleted_data() {
    let disk = linear();
    let d = disk.to_str().unwrap();
    let tmp = scratch("lvm-backup");
    let repo = tmp.join("repo");
    let r = repo.to_str().unwrap();
    diskray_ok(&["backup", d, "--repo", r, "--name", "vm"]);
    let restored = tmp.join("restored.img");
    diskray_ok(&["restore", "--repo", r, "vm", restored.to_str().unwrap()]);
    let [(start, len)] = lvs_extents("root")[..] else {
        panic!("root is one run in this fixture")
    };
    let cut = |img: &Path, name: &str| -> Vec<u8> {
        let bytes = std::fs::read(img).unwrap();
        let lv = bytes[start as usize..(start + len) as usize].to_vec();
        std::fs::write(tmp.join(name), &lv).unwrap();
        lv
    };
    let before = cut(&disk, "before.ext4");
    let after = cut(&restored, "after.ext4");
    // Used blocks equal, free blocks zero (dumpe2fs's map of the original).
    let used = dumpe2fs_used();
    let mut at = 0usize;
    for (s, l) in used {
        let (s, e) = (s as usize, (s + l) as usize);
        assert!(
            after[at..s].iter().all(|&b| b == 0),
            "free bytes {at}..{s} not zero"
        );
        assert_eq!(before[s..e], after[s..e], "used bytes {s}..{e} differ");
        at = e;
    }
    assert!(after[at..].iter().all(|&b| b == 0));
    let fsck = Command::new("e2fsck")
        .args(["-fn", tmp.join("after.ext4").to_str().unwrap()])
        .output()
        .expect("e2fsck (e2fsprogs) is installed");
    assert!(
        fsck.status.success(),
        "e2fsck on the restored LV: {}",
        String::from_utf8_lossy(&fsck.stdout)
    );
    // Its files, read back from the image without restoring.
    for line in truth("linear.root-files.txt").lines() {
        let (sum, path) = line.split_once("  ").unwrap();
        let path = path.trim_start_matches('.');
        let out = diskray(&["restore-file", "--repo", r, "vm", "-p", "vg0/root", path]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(sha256(&out.stdout), sum, "{path}");
    }
}

fn disk_ranges(v: &Value) -> Vec<(usize, u64, u64)> {
    let out: Vec<(usize, u64, u64)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let d = r["disk"]
                .as_u64()
                .expect("several disks: every range names its disk");
            (
                d as usize,
                r["start"].as_u64().unwrap(),
                r["length"].as_u64().unwrap(),
            )
        })
        .collect();
    merged(out)
}

/// `runs` (disk, start, length) sorted, adjacent ones merged (a striped LV comes in stripe
/// chunks, a used map in blocks).
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

#[test]
fn a_volume_group_across_two_disks_is_one_machine() {
    let (a, b) = span();
    let r: Value = serde_json::from_str(&diskray_ok(&[
        "report",
        "--json",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(r["disks"].as_array().unwrap().len(), 2);
    let vols = r["volumes"].as_array().unwrap();
    for lv in ["data", "st"] {
        let v = vols
            .iter()
            .find(|v| v["lv"] == format!("vgspan/{lv}"))
            .unwrap();
        assert_eq!(v["filesystem"], "ext4", "vgspan/{lv}");
        let want = merged(
            span_runs(lv)
                .into_iter()
                .map(|(_, d, s, l)| (d, s, l))
                .collect(),
        );
        assert_eq!(disk_ranges(&v["extents"]), want, "vgspan/{lv} extents");
    }
    assert_eq!(r["classes"]["vg_free"], vg_free_bytes("span"));
    let sum: u64 = r["classes"]
        .as_object()
        .unwrap()
        .values()
        .map(|b| b.as_u64().unwrap())
        .sum();
    assert_eq!(sum, r["capacity"].as_u64().unwrap());
}

#[test]
fn an_lv_on_two_disks_has_dumpe2fs_used_map_and_debugfs_files() {
    let (a, b) = span();
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let standalone = expanded("lvm/images").join("span-data.ext4");
    // The used map, from dumpe2fs of the same filesystem made standalone, placed on the
    // disks through lvs's segments.
    let d = Command::new("dumpe2fs")
        .arg(&standalone)
        .output()
        .expect("dumpe2fs (e2fsprogs) is installed");
    let used = used_of(&String::from_utf8_lossy(&d.stdout));
    let runs = span_runs("data");
    let mut want = Vec::new();
    for (s, l) in used {
        for &(lv_at, disk, at, len) in &runs {
            let lo = s.max(lv_at);
            let hi = (s + l).min(lv_at + len);
            if lo < hi {
                want.push((disk, at + (lo - lv_at), hi - lo));
            }
        }
    }
    let bl: Value = serde_json::from_str(&diskray_ok(&[
        "blocks",
        "--json",
        "--state",
        "used",
        "-p",
        "vgspan/data",
        a,
        b,
    ]))
    .unwrap();
    assert_eq!(disk_ranges(&bl["ranges"]), merged(want));
    // Files, through the LV on both disks and through the striped one, as debugfs reads
    // them from the standalone filesystems.
    for (lv, fs) in [("data", "span-data.ext4"), ("st", "span-st.ext4")] {
        let fs = expanded("lvm/images").join(fs);
        for path in ["/random.bin", "/dir/hello.txt"] {
            let want = Command::new("debugfs")
                .args(["-R", &format!("cat {path}")])
                .arg(&fs)
                .output()
                .unwrap()
                .stdout;
            assert!(!want.is_empty(), "debugfs cat {path}");
            let lvname = format!("vgspan/{lv}");
            let out = diskray(&["cat", "-p", &lvname, a, "--disk", b, path]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(out.stdout, want, "{lvname}:{path}");
        }
    }
}

#[test]
fn a_missing_disk_makes_its_lvs_unknown_and_is_named() {
    let (a, _) = span();
    let out = diskray(&["report", "--json", a.to_str().unwrap()]);
    assert!(out.status.success());
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let pvs: Value = serde_json::from_str(&truth("span.pvs.json")).unwrap();
    let b_uuid = pvs["report"][0]["pv"][1]["pv_uuid"].as_str().unwrap();
    let warnings = r["warnings"].to_string();
    assert!(warnings.contains(b_uuid), "{warnings}");
    for lv in ["data", "st"] {
        let v = r["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["lv"] == format!("vgspan/{lv}"))
            .unwrap();
        assert_eq!(v["filesystem"], "unknown", "vgspan/{lv} on a missing disk");
        // Its extents on the disk at hand are kept whole.
        let on_a: u64 = span_runs(lv).iter().filter(|r| r.1 == 0).map(|r| r.3).sum();
        assert_eq!(v["classes"]["unknown"].as_u64(), Some(on_a), "vgspan/{lv}");
    }
}

#[test]
fn an_lvm_disk_converted_to_vmdk_reads_like_the_raw_one() {
    // qemu-img writes the VMDK (streamOptimized: zero grains left out), as a VMware
    // export of the VM would hold it.
    let tmp = scratch("lvm-vmdk");
    let vmdk = tmp.join("linear.vmdk");
    let st = Command::new("qemu-img")
        .args([
            "convert",
            "-f",
            "raw",
            "-O",
            "vmdk",
            "-o",
            "subformat=streamOptimized",
        ])
        .arg(linear())
        .arg(&vmdk)
        .status()
        .expect("qemu-img (qemu-utils) is installed");
    assert!(st.success());
    let (raw, v) = (report(&linear()), report(&vmdk));
    let lvs = |r: &Value| -> Vec<(String, String, Value)> {
        r["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["lv"].is_string())
            .map(|v| {
                (
                    v["lv"].to_string(),
                    v["filesystem"].to_string(),
                    v["extents"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(lvs(&v), lvs(&raw));
    // The guests' used maps are the same (the report's classes are not: used blocks that
    // are all zeros are grains qemu-img never wrote, and the container's view comes first).
    let d = vmdk.to_str().unwrap();
    let used = |disk: &str| diskray_ok(&["blocks", "--json", "--state", "used", disk]);
    assert_eq!(used(d), used(linear().to_str().unwrap()));
    for line in truth("linear.root-files.txt").lines() {
        let (sum, path) = line.split_once("  ").unwrap();
        let out = diskray(&["cat", "-p", "vg0/root", d, path.trim_start_matches('.')]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(sha256(&out.stdout), sum, "{path}");
    }
}

#[test]
fn a_pv_inside_an_lv_is_not_followed_and_says_so() {
    // The root LV's first MiB replaced by the PV's own first MiB (label, header, metadata
    // area): the LV now holds an LVM2 PV of the same VG, a loop LVM itself would refuse.
    let tmp = scratch("lvm-nested");
    let img = tmp.join("nested.img");
    let mut bytes = std::fs::read(linear()).unwrap();
    let [(root, _)] = lvs_extents("root")[..] else {
        panic!("root is one run in this fixture")
    };
    let pv = PARTITION_2 as usize;
    let head = bytes[pv..pv + (1 << 20)].to_vec();
    bytes[root as usize..root as usize + (1 << 20)].copy_from_slice(&head);
    std::fs::write(&img, &bytes).unwrap();
    let out = diskray(&["report", "--json", img.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let v = r["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["lv"] == "vg0/root")
        .unwrap();
    assert_eq!(v["filesystem"], "lvm2");
    assert_eq!(
        v["classes"]["unknown"].as_u64(),
        Some(12 << 20),
        "kept whole"
    );
    let warnings = r["warnings"].to_string();
    assert!(
        warnings.contains("vg0/root holds an LVM2 physical volume"),
        "{warnings}"
    );
}

#[test]
fn a_vmx_stands_for_its_disks_in_controller_order() {
    let (a, b) = span();
    let tmp = scratch("lvm-vmx");
    // As VMware Workstation writes it: disk b on scsi0:0, disk a on scsi0:1 (so the
    // order is the controller's, not the lines'), a CD-ROM on sata0:1.
    let vmx = tmp.join("vm.vmx");
    let text = format!(
        ".encoding = \"UTF-8\"\nscsi0.present = \"TRUE\"\nscsi0:1.fileName = \"{}\"\n\
         scsi0:1.present = \"TRUE\"\nscsi0:0.fileName = \"{}\"\nscsi0:0.present = \"TRUE\"\n\
         sata0.present = \"TRUE\"\nsata0:1.deviceType = \"cdrom-image\"\n\
         sata0:1.fileName = \"x.iso\"\nsata0:1.present = \"TRUE\"\n",
        a.display(),
        b.display()
    );
    std::fs::write(&vmx, text).unwrap();
    let v = vmx.to_str().unwrap();
    // Its disks lie outside its folder: refused unless the user allows it, as for the
    // files a VMDK descriptor names.
    let out = diskray(&["report", v]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("outside the .vmx's folder"), "{err}");
    let by_vmx = diskray_ok(&["report", "--json", "--allow-outside-paths", v]);
    let by_disks = diskray_ok(&["report", "--json", b.to_str().unwrap(), a.to_str().unwrap()]);
    assert_eq!(by_vmx, by_disks);
    let r: Value = serde_json::from_str(&by_vmx).unwrap();
    assert_eq!(r["disks"][0]["path"], b.to_str().unwrap());
    // A command that reads one disk refuses a machine of two, naming them.
    let out = diskray(&["info", "--allow-outside-paths", v]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("names 2 disks") && err.contains("scsi0:1"),
        "{err}"
    );
}

#[test]
fn partitions_show_the_logical_volumes_where_lvs_puts_them() {
    // One disk: under its table.
    let t: Value = serde_json::from_str(&diskray_ok(&[
        "partitions",
        "--json",
        linear().to_str().unwrap(),
    ]))
    .unwrap();
    for (lv, content) in [("root", "ext4"), ("swap", "swap")] {
        let row = t["logical_volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["lv"] == format!("vg0/{lv}"))
            .unwrap_or_else(|| panic!("no vg0/{lv} in {t:#}"));
        assert_eq!(row["content"], content);
        assert_eq!(ranges(&row["extents"]), lvs_extents(lv));
    }
    // Two disks: the machine's volume group, once, with each run on its disk.
    let (a, b) = span();
    let t: Value = serde_json::from_str(&diskray_ok(&[
        "partitions",
        "--json",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(t["disks"].as_array().unwrap().len(), 2);
    assert!(t["disks"][0].get("logical_volumes").is_none());
    for lv in ["data", "st"] {
        let row = t["logical_volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["lv"] == format!("vgspan/{lv}"))
            .unwrap();
        let want = merged(
            span_runs(lv)
                .into_iter()
                .map(|(_, d, s, l)| (d, s, l))
                .collect(),
        );
        assert_eq!(disk_ranges(&row["extents"]), want, "vgspan/{lv}");
    }
}
