//! Helpers of the LVM tests: the fixtures of `fixtures/lvm` expanded, their PVs read, the
//! tools' recorded truth loaded.

#![allow(dead_code)]

use diskray_core::MemDisk;
use diskray_lvm::{read_pv, Pv};
use std::io::Read;
use std::path::{Path, PathBuf};

/// `fixtures/lvm`.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/lvm")
}

/// The bytes of `images/NAME.gz`, expanded.
pub fn image(name: &str) -> Vec<u8> {
    let f = std::fs::File::open(dir().join("images").join(format!("{name}.gz"))).unwrap();
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(f)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// A fixture disk held in memory.
pub fn disk(name: &str) -> MemDisk {
    MemDisk::new(image(name))
}

/// Where the PV lies on each fixture disk: (start, length). `linear.img` holds it in GPT
/// partition 2 (sectors 18432..=79871, as make.sh's sgdisk made it); the others are
/// whole-disk PVs.
pub fn pv_range(name: &str, disk_len: u64) -> (u64, u64) {
    if name == "linear.img" {
        (18432 * 512, (79871 - 18432 + 1) * 512)
    } else {
        (0, disk_len)
    }
}

/// Reads the PV of fixture `name` (the disk is kept alive by the caller).
pub fn pv_of(name: &str, d: &MemDisk) -> Pv {
    use diskray_core::VirtualDisk;
    let (start, len) = pv_range(name, d.capacity());
    read_pv(d, Path::new(name), start, len).unwrap()
}

/// A truth file of `fixtures/lvm/truth`.
pub fn truth(name: &str) -> String {
    std::fs::read_to_string(dir().join("truth").join(name)).unwrap()
}

/// The rows of a `--reportformat json` report (`pv` or `seg`).
pub fn report(name: &str, kind: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let v: serde_json::Value = serde_json::from_str(&truth(name)).unwrap();
    v["report"][0][kind]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_object().unwrap().clone())
        .collect()
}

/// A field of a report row as text.
pub fn field<'a>(row: &'a serde_json::Map<String, serde_json::Value>, key: &str) -> &'a str {
    row[key].as_str().unwrap()
}

/// The `seqno` a vgcfgbackup file records (read with a plain line scan, not our parser).
pub fn backup_seqno(name: &str) -> u64 {
    truth(name)
        .lines()
        .find_map(|l| l.trim().strip_prefix("seqno = "))
        .unwrap()
        .parse()
        .unwrap()
}
