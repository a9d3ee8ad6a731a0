//! Every VMDK fixture against the ground truth recorded beside it by independent tools
//! (qemu-img, libvmdk, or content constructed by the fixture script): `convert` content,
//! `info` fields, and `map` allocation. See `fixtures/vmdk/README.md`.

mod common;

use common::*;
use diskray_core::ByteRange;
use serde_json::Value;
use std::path::Path;

/// Every truth file, parsed, with its name.
fn truths() -> Vec<(String, Value)> {
    let dir = root().join("fixtures/vmdk/truth");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            (p.file_stem().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        out.len() >= 15,
        "expected the full fixture set, found {} truth files",
        out.len()
    );
    out
}

fn disk_path(t: &Value) -> String {
    vmdk_fixtures()
        .join(t["disk"].as_str().unwrap())
        .to_string_lossy()
        .into_owned()
}

/// Collects failures so one run reports every case that disagrees.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn check(&mut self, ok: bool, msg: impl FnOnce() -> String) {
        if !ok {
            self.0.push(msg());
        }
    }
    fn finish(self) {
        assert!(
            self.0.is_empty(),
            "{} failures:\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

#[test]
fn convert_matches_ground_truth_sha256() {
    let mut f = Failures::default();
    let out_dir = scratch("convert_truth");
    for (name, t) in truths() {
        let disk = disk_path(&t);
        let out = out_dir.join(format!("{name}.raw"));
        let run = diskray(&["convert", &disk, out.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        f.check(!stderr.contains("panicked"), || {
            format!("{name}: panicked: {stderr}")
        });
        match t["sha256"].as_str() {
            Some(want) => {
                f.check(run.status.success(), || {
                    format!("{name}: convert failed: {stderr}")
                });
                if run.status.success() {
                    let got = sha256_file(&out);
                    f.check(got == want, || {
                        format!("{name}: sha256 {got}, truth ({}) {want}", t["sha256_by"])
                    });
                    let len = std::fs::metadata(&out).unwrap().len();
                    f.check(Some(len) == t["capacity"].as_u64(), || {
                        format!("{name}: {len} bytes, capacity {}", t["capacity"])
                    });
                }
            }
            None => {
                f.check(run.status.code() == Some(1), || {
                    format!(
                        "{name}: expected refusal ({}), got {:?}: {stderr}",
                        t["expect_error"],
                        run.status.code()
                    )
                });
                f.check(
                    stderr
                        .lines()
                        .last()
                        .unwrap_or("")
                        .starts_with("diskray: error: "),
                    || format!("{name}: error message shape: {stderr}"),
                );
                f.check(!out.exists(), || {
                    format!("{name}: a refused convert left {} behind", out.display())
                });
            }
        }
    }
    f.finish();
}

#[test]
fn readable_ranges_of_partly_unreadable_disks() {
    let mut f = Failures::default();
    for (name, t) in truths() {
        let Some(ranges) = t["ranges"].as_array() else {
            continue;
        };
        let image =
            diskray_image::open(Path::new(&disk_path(&t)), None, &Default::default()).unwrap();
        let disk = image.disk();
        for r in ranges {
            let (off, len) = (r["offset"].as_u64().unwrap(), r["length"].as_u64().unwrap());
            let mut buf = vec![0u8; len as usize];
            let res = disk.read_at(&mut buf, off);
            match r["sha256"].as_str() {
                Some(want) => f.check(res.is_ok() && sha256(&buf) == want, || {
                    format!("{name}: range {off}+{len}: {res:?}")
                }),
                None => f.check(
                    res.as_ref()
                        .is_err_and(|e| e.to_string().contains("NOACCESS")),
                    || format!("{name}: range {off}+{len} should be refused: {res:?}"),
                ),
            }
        }
    }
    f.finish();
}

fn cid_value(v: &Value) -> Option<u32> {
    v.as_str().and_then(|s| u32::from_str_radix(s, 16).ok())
}

#[test]
fn info_matches_descriptor_truth() {
    let mut f = Failures::default();
    for (name, t) in truths() {
        if t["sha256"].is_null() {
            continue;
        }
        let info: Value =
            serde_json::from_str(&diskray_ok(&["info", "--json", &disk_path(&t)])).unwrap();
        f.check(info["capacity"] == t["capacity"], || {
            format!("{name}: capacity {} vs {}", info["capacity"], t["capacity"])
        });
        f.check(info["create_type"] == t["create_type"], || {
            format!(
                "{name}: createType {} vs {}",
                info["create_type"], t["create_type"]
            )
        });
        f.check(cid_value(&info["cid"]) == cid_value(&t["cid"]), || {
            format!("{name}: CID {} vs {}", info["cid"], t["cid"])
        });
        f.check(
            cid_value(&info["parent_cid"]) == cid_value(&t["parent_cid"]),
            || {
                format!(
                    "{name}: parentCID {} vs {}",
                    info["parent_cid"], t["parent_cid"]
                )
            },
        );
        let ours = info["extents"].as_array().unwrap();
        let theirs = t["extents"].as_array().unwrap();
        f.check(ours.len() == theirs.len(), || {
            format!("{name}: {} extents vs {}", ours.len(), theirs.len())
        });
        for (a, b) in ours.iter().zip(theirs) {
            for key in ["access", "type", "sectors", "file", "offset"] {
                f.check(a[key] == b[key], || {
                    format!("{name}: extent {key} {} vs {}", a[key], b[key])
                });
            }
        }
    }
    f.finish();
}

/// qemu's map as (start, length, class) with class data / zero / unallocated.
fn qemu_classes(map: &Value) -> Vec<(u64, u64, &'static str, u64)> {
    let mut out: Vec<(u64, u64, &'static str, u64)> = Vec::new();
    for r in map.as_array().unwrap() {
        // qemu reports flat-file holes as `data: true, zero: true`: they read as zeros.
        let class = if r["data"] == true && r["zero"] == false {
            "data"
        } else if r["present"] == true && r["zero"] == true {
            "zero"
        } else {
            "unallocated"
        };
        let (start, len, depth) = (
            r["start"].as_u64().unwrap(),
            r["length"].as_u64().unwrap(),
            r["depth"].as_u64().unwrap(),
        );
        match out.last_mut() {
            Some(last) if last.2 == class && last.3 == depth && last.0 + last.1 == start => {
                last.1 += len
            }
            _ => out.push((start, len, class, depth)),
        }
    }
    out
}

fn ranges_of(
    v: &[(u64, u64, &'static str, u64)],
    class: &str,
    with_depth: bool,
) -> Vec<(u64, u64, u64)> {
    let mut out: Vec<(u64, u64, u64)> = Vec::new();
    for &(s, l, _, d) in v.iter().filter(|r| r.2 == class) {
        let d = if with_depth { d } else { 0 };
        match out.last_mut() {
            Some(last) if last.0 + last.1 == s && last.2 == d => last.1 += l,
            _ => out.push((s, l, d)),
        }
    }
    out
}

fn our_classes(json: &str) -> Vec<(u64, u64, &'static str, u64)> {
    let v: Value = serde_json::from_str(json).unwrap();
    v["ranges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let class = match r["state"].as_str().unwrap() {
                "data" => "data",
                "zero" => "zero",
                "unallocated" => "unallocated",
                _ => "unreadable",
            };
            (
                r["start"].as_u64().unwrap(),
                r["length"].as_u64().unwrap(),
                class,
                r["depth"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn map_agrees_with_qemu_where_qemu_is_right() {
    let mut f = Failures::default();
    let mut compared = 0;
    for (name, t) in truths() {
        let qemu_right =
            t["qemu_error"].is_null() && !t["sha256"].is_null() && t["qemu_sha256"] == t["sha256"];
        let Some(qmap) = t.get("qemu_map").filter(|m| m.is_array() && qemu_right) else {
            continue;
        };
        compared += 1;
        let ours = our_classes(&diskray_ok(&["map", "--json", &disk_path(&t)]));
        let theirs = qemu_classes(qmap);
        let chain = t["extents"]
            .as_array()
            .is_some_and(|e| e.iter().any(|x| x["type"] == "SPARSE"))
            && t.get("parent_file_name_hint").is_some();
        let (a, b) = (
            ranges_of(&ours, "data", chain),
            ranges_of(&theirs, "data", chain),
        );
        f.check(a == b, || {
            format!("{name}: data ranges differ\n  ours: {a:?}\n  qemu: {b:?}")
        });
        // Flat holes are `unallocated` for us and `zero` for qemu; compare declared zeros
        // only where every extent is sparse.
        let info = diskray_ok(&["info", "--json", &disk_path(&t)]);
        let all_sparse = !info.contains("\"format\": \"flat\"");
        if all_sparse {
            let (a, b) = (
                ranges_of(&ours, "zero", false),
                ranges_of(&theirs, "zero", false),
            );
            f.check(a == b, || {
                format!("{name}: zero ranges differ\n  ours: {a:?}\n  qemu: {b:?}")
            });
        }
        let cap = t["capacity"].as_u64().unwrap();
        let covered: u64 = ours.iter().map(|r| r.1).sum();
        f.check(
            covered == cap && ours.windows(2).all(|w| w[0].0 + w[0].1 == w[1].0),
            || format!("{name}: map does not tile [0, {cap})"),
        );
    }
    assert!(
        compared >= 8,
        "only {compared} cases had a trustworthy qemu map"
    );
    f.finish();
}

#[test]
fn top_only_map_is_the_snapshot_delta() {
    let mut f = Failures::default();
    let mut compared = 0;
    for (name, t) in truths() {
        let Some(delta) = t.get("delta_map").filter(|m| m.is_array()) else {
            continue;
        };
        compared += 1;
        let ours = our_classes(&diskray_ok(&[
            "map",
            "--json",
            "--top-only",
            &disk_path(&t),
        ]));
        let (a, b) = (
            ranges_of(&ours, "data", false),
            ranges_of(&qemu_classes(delta), "data", false),
        );
        f.check(a == b, || {
            format!("{name}: delta data ranges differ\n  ours: {a:?}\n  qemu: {b:?}")
        });
    }
    assert!(compared >= 1, "no delta map in the truth files");
    f.finish();
}

#[test]
fn library_reads_match_convert_at_odd_offsets() {
    // Unaligned reads crossing grain, table and extent boundaries must agree with the
    // whole-disk content (checked above against the truth).
    let mut f = Failures::default();
    let out_dir = scratch("odd_reads");
    for (name, t) in truths() {
        if t["sha256"].is_null() {
            continue;
        }
        let disk = disk_path(&t);
        let raw = out_dir.join(format!("{name}.raw"));
        diskray_ok(&["convert", &disk, raw.to_str().unwrap()]);
        let whole = std::fs::read(&raw).unwrap();
        let image = diskray_image::open(Path::new(&disk), None, &Default::default()).unwrap();
        let d = image.disk();
        let cap = d.capacity();
        let probes = [
            (0u64, 1u64),
            (511, 2),
            (65535, 3),
            (33554432 - 700, 1400),
            (cap - 1, 1),
            (cap - 70000, 70000),
            (1234567, 3_000_001),
        ];
        for (off, len) in probes.into_iter().filter(|&(o, l)| o + l <= cap) {
            let mut buf = vec![0u8; len as usize];
            let res = d.read_at(&mut buf, off);
            f.check(
                res.is_ok() && buf == whole[off as usize..(off + len) as usize],
                || format!("{name}: read {off}+{len} differs: {res:?}"),
            );
        }
        f.check(d.read_at(&mut [0u8; 2], cap - 1).is_err(), || {
            format!("{name}: read past capacity accepted")
        });
        let map = d.map(ByteRange::new(0, cap)).unwrap();
        f.check(map.first().map(|r| r.start) == Some(0), || {
            format!("{name}: map does not start at 0")
        });
    }
    f.finish();
}
