//! Behaviours beyond plain content: warnings that say what was worked around, zero
//! detection checked against the real content, the demo fixture of the README.

mod common;

use common::*;
use serde_json::Value;

#[test]
fn demo_fixture_matches_qemu() {
    let dir = root().join("fixtures/demo");
    let truth: Value =
        serde_json::from_slice(&std::fs::read(dir.join("truth.json")).unwrap()).unwrap();
    let disk = dir.join("snap-000001.vmdk");
    let out = scratch("demo").join("demo.raw");
    diskray_ok(&["convert", disk.to_str().unwrap(), out.to_str().unwrap()]);
    assert_eq!(sha256_file(&out), truth["sha256"].as_str().unwrap());
    let ours: Value =
        serde_json::from_str(&diskray_ok(&["map", "--json", disk.to_str().unwrap()])).unwrap();
    let data = |v: &Value, data_key: &str| -> Vec<(u64, u64, u64)> {
        let mut out: Vec<(u64, u64, u64)> = Vec::new();
        for r in v.as_array().unwrap() {
            let is_data = if data_key == "state" {
                r["state"] == "data"
            } else {
                r["data"] == true && r["zero"] == false
            };
            if !is_data {
                continue;
            }
            let (s, l, d) = (
                r["start"].as_u64().unwrap(),
                r["length"].as_u64().unwrap(),
                r["depth"].as_u64().unwrap(),
            );
            match out.last_mut() {
                Some(last) if last.0 + last.1 == s && last.2 == d => last.1 += l,
                _ => out.push((s, l, d)),
            }
        }
        out
    };
    assert_eq!(
        data(&ours["ranges"], "state"),
        data(&truth["qemu_map"], "data"),
        "data ranges and depths vs qemu-img map"
    );
}

#[test]
fn redundant_directory_fallback_is_reported() {
    let disk = vmdk_fixtures().join("rgd-fallback/disk.vmdk");
    let info: Value =
        serde_json::from_str(&diskray_ok(&["info", "--json", disk.to_str().unwrap()])).unwrap();
    assert_eq!(info["extents"][0]["directory_used"], "redundant", "{info}");
    let warnings = info["warnings"].to_string();
    assert!(
        warnings.contains("primary grain directory is damaged") && warnings.contains("redundant"),
        "{warnings}"
    );
    // People see it on stderr.
    let out = diskray(&["map", disk.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("diskray: warning: "));
}

#[test]
fn detect_zeroes_matches_the_content() {
    // The allocated-zero fixture has a grain written with zeros: qemu-img map calls it data.
    // With --detect-zeroes, the data ranges must be exactly the non-zero 4 KiB blocks of the
    // content (whose sha256 the truth tests check against qemu-img).
    let disk = vmdk_fixtures().join("allocated-zero/disk.vmdk");
    let raw = scratch("detect_zeroes").join("az.raw");
    diskray_ok(&["convert", disk.to_str().unwrap(), raw.to_str().unwrap()]);
    let content = std::fs::read(&raw).unwrap();
    let mut want: Vec<(u64, u64)> = Vec::new();
    for (i, block) in content.chunks(4096).enumerate() {
        if block.iter().any(|&b| b != 0) {
            let s = i as u64 * 4096;
            match want.last_mut() {
                Some(last) if last.0 + last.1 == s => last.1 += block.len() as u64,
                _ => want.push((s, block.len() as u64)),
            }
        }
    }
    let plain: Value =
        serde_json::from_str(&diskray_ok(&["map", "--json", disk.to_str().unwrap()])).unwrap();
    let detected: Value = serde_json::from_str(&diskray_ok(&[
        "map",
        "--json",
        "--detect-zeroes",
        disk.to_str().unwrap(),
    ]))
    .unwrap();
    let data_of = |v: &Value| -> Vec<(u64, u64)> {
        v["ranges"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["state"] == "data")
            .map(|r| (r["start"].as_u64().unwrap(), r["length"].as_u64().unwrap()))
            .collect()
    };
    assert_eq!(data_of(&detected), want);
    let plain_bytes: u64 = data_of(&plain).iter().map(|r| r.1).sum();
    let detected_bytes: u64 = want.iter().map(|r| r.1).sum();
    assert!(
        plain_bytes >= detected_bytes + 65536,
        "the zero grain at 12 MiB is data without detection"
    );
}

#[test]
fn raw_images_map_by_host_holes() {
    let dir = scratch("raw_map");
    let p = dir.join("disk.img");
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(16 << 20).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(&[0xaa; 8192], 4 << 20).unwrap();
    f.sync_all().unwrap();
    let v: Value =
        serde_json::from_str(&diskray_ok(&["map", "--json", p.to_str().unwrap()])).unwrap();
    let ranges = v["ranges"].as_array().unwrap();
    let data: Vec<_> = ranges.iter().filter(|r| r["state"] == "data").collect();
    assert_eq!(data.len(), 1, "{v}");
    let (s, l) = (
        data[0]["start"].as_u64().unwrap(),
        data[0]["length"].as_u64().unwrap(),
    );
    assert!(
        s <= 4 << 20 && s + l >= (4 << 20) + 8192 && l < 1 << 20,
        "{v}"
    );
    let info: Value =
        serde_json::from_str(&diskray_ok(&["info", "--json", p.to_str().unwrap()])).unwrap();
    assert_eq!(info["format"], "raw");
    assert_eq!(info["capacity"], 16 << 20);
}
