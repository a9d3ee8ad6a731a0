//! Partition tables and image files that other systems made (issue 9, items 13–16),
//! against the answers of independent tools recorded beside each fixture by
//! `fixtures/interop/parts/make.sh`: sfdisk and partx through a 4Kn loop device, blkid,
//! debugfs and mtools for the partitions' content, sgdisk and fdisk for tables cut short,
//! qemu-img, file(1) and ewfinfo for other image formats. See
//! `fixtures/interop/parts/README.md`.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Output;

/// A private copy of the fixture images with every `X.gz` expanded to `X`.
fn images() -> PathBuf {
    expanded("interop/parts/images")
}

fn image(name: &str) -> String {
    images().join(name).to_string_lossy().into_owned()
}

fn truth_text(name: &str) -> String {
    std::fs::read_to_string(root().join("fixtures/interop/parts/truth").join(name)).unwrap()
}

fn truth_json(name: &str) -> Value {
    serde_json::from_str(&truth_text(name)).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `diskray partitions --json` with `extra` options.
fn partitions(img: &str, extra: &[&str]) -> Value {
    let mut args = vec!["partitions", "--json"];
    args.extend_from_slice(extra);
    args.push(img);
    serde_json::from_str(&diskray_ok(&args)).unwrap()
}

/// sfdisk's partitions as (index, start byte, length in bytes, type byte or GUID).
fn sfdisk_rows(t: &Value) -> Vec<(u64, u64, u64, String)> {
    let t = &t["partitiontable"];
    let ss = t["sectorsize"].as_u64().unwrap();
    t["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let node = p["node"].as_str().unwrap();
            let digits: String = node
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            let index: u64 = digits.chars().rev().collect::<String>().parse().unwrap();
            let ty = p["type"].as_str().unwrap();
            let ty = if t["label"] == "dos" {
                format!("{:#04x}", u8::from_str_radix(ty, 16).unwrap())
            } else {
                ty.to_string()
            };
            (
                index,
                p["start"].as_u64().unwrap() * ss,
                p["size"].as_u64().unwrap() * ss,
                kind(&ty),
            )
        })
        .collect()
}

/// A type as compared: an MBR byte in lower case (`0x0c`), a GUID in upper case.
fn kind(t: &str) -> String {
    if t.starts_with("0x") {
        t.to_lowercase()
    } else {
        t.to_uppercase()
    }
}

fn our_rows(v: &Value) -> Vec<(u64, u64, u64, String)> {
    v["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["index"].as_u64().unwrap(),
                p["start"].as_u64().unwrap(),
                p["length"].as_u64().unwrap(),
                kind(p["type"].as_str().unwrap()),
            )
        })
        .collect()
}

fn warnings(v: &Value) -> Vec<String> {
    v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect()
}

/// blkid's TYPE (and FAT VERSION) per partition, as diskray names the content.
fn blkid_contents() -> BTreeMap<u64, String> {
    let mut out = BTreeMap::new();
    let mut current = None;
    let mut kind = String::new();
    let mut version = String::new();
    let mut flush = |n: Option<u64>, kind: &str, version: &str| {
        if let Some(n) = n {
            let name = if kind == "vfat" {
                version.to_lowercase()
            } else {
                kind.to_string()
            };
            out.insert(n, name);
        }
    };
    for line in truth_text("mbr4k.blkid.txt").lines() {
        if let Some(rest) = line.strip_prefix("# partition ") {
            flush(current, &kind, &version);
            current = Some(rest.split(':').next().unwrap().parse().unwrap());
            kind.clear();
            version.clear();
        } else if let Some(t) = line.strip_prefix("TYPE=") {
            kind = t.to_string();
        } else if let Some(v) = line.strip_prefix("VERSION=") {
            version = v.to_string();
        }
    }
    flush(current, &kind, &version);
    out
}

// ------------------------------------------------------------------ item 13

#[test]
fn mbr_with_4096_byte_sectors_is_read_like_the_kernel_reads_it() {
    let truth = truth_json("mbr4k.sfdisk.json");
    assert_eq!(truth["partitiontable"]["sectorsize"], 4096);
    let ours = partitions(&image("mbr4k.img"), &[]);
    assert_eq!(ours["sector_size"], 4096, "{ours:#}");
    assert_eq!(our_rows(&ours), sfdisk_rows(&truth), "{ours:#}");
    assert!(
        warnings(&ours).is_empty(),
        "no warning on a sound 4Kn table: {:?}",
        warnings(&ours)
    );
    let contents = blkid_contents();
    for p in ours["partitions"].as_array().unwrap() {
        let index = p["index"].as_u64().unwrap();
        let want = contents.get(&index).map_or("extended", |s| s.as_str());
        assert_eq!(p["content"], want, "partition {index}");
    }
    // Every file debugfs and mtools found, with the content they extracted.
    let sums = truth_text("mbr4k.sha256.txt");
    let mut checked = 0;
    for line in sums.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let (sha, n, path) = (f[0], f[2], f[3]);
        let ls: Value = serde_json::from_str(&diskray_ok(&[
            "ls",
            "--json",
            &image("mbr4k.img"),
            "-p",
            n,
            "/",
        ]))
        .unwrap();
        let listed = ls["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["path"].as_str().unwrap().eq_ignore_ascii_case(path));
        assert!(listed, "partition {n}: {path} not listed: {ls:#}");
        let out = diskray(&["cat", &image("mbr4k.img"), "-p", n, path]);
        assert!(out.status.success(), "cat -p {n} {path}: {}", stderr(&out));
        assert_eq!(sha256(&out.stdout), sha, "partition {n} {path}");
        checked += 1;
    }
    assert_eq!(checked, 4);
}

#[test]
fn sector_size_option_is_honoured() {
    let img = image("mbr4k.img");
    // Forced to 512: what sfdisk reads from the plain file (the primaries; no logicals).
    let at512 = partitions(&img, &["--sector-size", "512"]);
    assert_eq!(at512["sector_size"], 512);
    assert_eq!(
        our_rows(&at512),
        sfdisk_rows(&truth_json("mbr4k.as512.sfdisk.json"))
    );
    assert!(
        warnings(&at512).iter().any(|w| w.contains("EBR")),
        "{at512:#}"
    );
    // Forced to 4096: the kernel's reading.
    let at4k = partitions(&img, &["--sector-size", "4096"]);
    assert_eq!(
        our_rows(&at4k),
        sfdisk_rows(&truth_json("mbr4k.sfdisk.json"))
    );
    // The commands that read files take it too.
    let out = diskray(&[
        "cat",
        "--sector-size",
        "4096",
        &img,
        "-p",
        "7",
        "/logical7.txt",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = diskray(&["report", "--sector-size", "4096", &img]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Sizes a disk cannot have are usage errors.
    for bad in ["1000", "256", "8192", "0"] {
        let out = diskray(&["partitions", "--sector-size", bad, &img]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "--sector-size {bad}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn ambiguous_sector_size_is_said_and_can_be_chosen() {
    let img = image("mbr4k-blank.img");
    // Nothing in the table or the partition tells 512 from 4096: read as 512 (what sfdisk
    // reads from the file), with a warning that names the way out.
    let ours = partitions(&img, &[]);
    assert_eq!(
        our_rows(&ours),
        sfdisk_rows(&truth_json("mbr4k-blank.as512.sfdisk.json"))
    );
    assert!(
        warnings(&ours)
            .iter()
            .any(|w| w.contains("ambiguous") && w.contains("--sector-size")),
        "{ours:#}"
    );
    let at4k = partitions(&img, &["--sector-size", "4096"]);
    assert_eq!(at4k["sector_size"], 4096);
    assert_eq!(
        our_rows(&at4k),
        sfdisk_rows(&truth_json("mbr4k-blank.sfdisk.json"))
    );
    assert!(warnings(&at4k).is_empty(), "{at4k:#}");
}

// ------------------------------------------------------------------ item 14

#[test]
fn mbr_cut_short_lists_its_entries_with_a_warning() {
    let truth = truth_json("mbr-short.sfdisk.json");
    for cmd in [&["partitions", "--json"][..], &["report", "--json"][..]] {
        let mut args = cmd.to_vec();
        let img = image("mbr-short.img");
        args.push(&img);
        let out = diskray(&args);
        assert!(out.status.success(), "{cmd:?}: {}", stderr(&out));
    }
    let ours = partitions(&image("mbr-short.img"), &[]);
    assert_eq!(ours["scheme"], "mbr");
    assert_eq!(our_rows(&ours), sfdisk_rows(&truth), "{ours:#}");
    let w = warnings(&ours);
    for n in 1..=4 {
        assert!(
            w.iter()
                .any(|w| w.contains(&format!("entry {n}")) && w.contains("past the end")),
            "entry {n}: {w:?}"
        );
    }
}

#[test]
fn gpt_cut_after_its_entry_array_lists_its_entries_with_a_warning() {
    // sgdisk finds the main header and the main entry array sound.
    let sg = truth_text("gpt-short-array.sgdisk-v.txt");
    assert!(sg.contains("Main header: OK") && sg.contains("Main partition table: OK"));
    let before = truth_json("gpt-short.before-cut.sfdisk.json");
    let ours = partitions(&image("gpt-short-array.img"), &[]);
    assert_eq!(ours["scheme"], "gpt", "{ours:#}");
    assert_eq!(our_rows(&ours), sfdisk_rows(&before));
    let names: Vec<&str> = ours["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = before["partitiontable"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, want);
    assert_eq!(
        ours["disk_id"].as_str().unwrap(),
        before["partitiontable"]["id"].as_str().unwrap()
    );
    assert!(
        warnings(&ours).iter().any(|w| w.contains("shorter")),
        "{ours:#}"
    );
    let out = diskray(&["report", &image("gpt-short-array.img")]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn gpt_cut_after_its_header_says_the_entries_are_missing() {
    let sg = truth_text("gpt-short-header.sgdisk-v.txt");
    assert!(sg.contains("Main header: OK") && sg.contains("Main partition table: ERROR"));
    let ours = partitions(&image("gpt-short-header.img"), &[]);
    assert_eq!(ours["scheme"], "gpt", "{ours:#}");
    assert_eq!(ours["partitions"].as_array().unwrap().len(), 0);
    assert!(
        warnings(&ours)
            .iter()
            .any(|w| w.contains("entry array") && w.contains("past the end")),
        "{ours:#}"
    );
}

// ------------------------------------------------------------------ item 15

/// (fixture, the format as diskray names it, the tool it advises).
fn foreign() -> Vec<(&'static str, &'static str, &'static str)> {
    let qemu = |f: &str| {
        truth_json(&format!("{f}.qemu-img.json"))["format"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let file = truth_text("formats.file.txt");
    let file_says = |f: &str| {
        file.lines()
            .find(|l| l.starts_with(&format!("{f}:")))
            .unwrap()
            .to_string()
    };
    // The names qemu-img gives, and file(1) and ewfinfo for the E01 it cannot read.
    assert_eq!(qemu("qcow.qcow"), "qcow");
    assert!(file_says("qcow.qcow").contains("QCOW Image (v1)"));
    assert_eq!(qemu("qcow2.qcow2"), "qcow2");
    assert_eq!(qemu("vhd-dynamic.vhd"), "vpc");
    assert_eq!(qemu("vhd-fixed.vhd"), "vpc");
    assert_eq!(qemu("vhdx.vhdx"), "vhdx");
    assert_eq!(qemu("vdi.vdi"), "vdi");
    assert_eq!(qemu("dmg.dmg"), "dmg");
    assert!(file_says("e01.E01").contains("EWF/Expert Witness/EnCase"));
    assert!(truth_text("e01.E01.ewfinfo.txt").contains("EnCase 6"));
    vec![
        ("qcow.qcow", "a qcow", "qemu-img convert"),
        ("qcow2.qcow2", "a qcow2", "qemu-img convert"),
        ("vhd-dynamic.vhd", "a VHD", "qemu-img convert -f vpc"),
        ("vhd-fixed.vhd", "a VHD", "qemu-img convert -f vpc"),
        ("vhdx.vhdx", "a VHDX", "qemu-img convert"),
        ("vdi.vdi", "a VDI", "qemu-img convert"),
        ("e01.E01", "an E01", "ewfexport"),
        ("dmg.dmg", "a DMG", "qemu-img convert -f dmg"),
    ]
}

#[test]
fn other_image_formats_are_refused_by_name() {
    for (file, name, tool) in foreign() {
        let img = image(file);
        for cmd in ["info", "report", "partitions", "ls"] {
            let out = diskray(&[cmd, &img]);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{cmd} {file}: {err}");
            let want = format!("{img}: {name} image: not supported yet; convert it with {tool}");
            assert!(err.contains(&want), "{cmd} {file}: {err}\nwant: {want}");
        }
        // Named as raw, the file is read as it is.
        let out = diskray(&["info", "--format", "raw", &img]);
        assert!(out.status.success(), "{file}: {}", stderr(&out));
    }
}

// ------------------------------------------------------------------ item 16

#[test]
fn whole_disk_exfat_and_btrfs_say_what_they_hold() {
    for f in ["exfat", "btrfs"] {
        let blkid = truth_text(&format!("{f}.blkid.txt"));
        let kind = blkid.lines().find_map(|l| l.strip_prefix("TYPE=")).unwrap();
        let img = image(&format!("{f}.img"));
        for cmd in ["ls", "cat"] {
            let mut args = vec![cmd, img.as_str()];
            if cmd == "cat" {
                args.push("/x");
            }
            let out = diskray(&args);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{cmd} {f}: {err}");
            assert!(
                err.contains(&format!(
                    "{img} holds {kind}, which diskray cannot list yet"
                )),
                "{cmd} {f}: {err}"
            );
        }
    }
}
