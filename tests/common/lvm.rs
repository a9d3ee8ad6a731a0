//! What LVM's and e2fsprogs' own tools say of the `fixtures/lvm` disks
//! (`fixtures/lvm/README.md`), in the shapes the LVM tests compare against.

use super::{expanded, root};
use serde_json::Value;
use std::path::PathBuf;

/// A file of `fixtures/lvm/truth`.
pub fn truth(name: &str) -> String {
    std::fs::read_to_string(root().join("fixtures/lvm/truth").join(name)).unwrap()
}

/// The two disks of `vgspan`: `data` (linear on a, extended onto b), `st` (striped over
/// both), `spare` (on a).
pub fn span() -> (PathBuf, PathBuf) {
    let d = expanded("lvm/images");
    (d.join("span-a.img"), d.join("span-b.img"))
}

/// `pe_start` of each PV of `vgspan` (by the name `pvs` gives it) and the extent size
/// `vgcfgbackup` records, in bytes.
pub fn span_geometry() -> (impl Fn(&str) -> u64, u64) {
    let pvs: Value = serde_json::from_str(&truth("span.pvs.json")).unwrap();
    let pe_start = move |name: &str| -> u64 {
        let pv = pvs["report"][0]["pv"].as_array().unwrap();
        let p = pv.iter().find(|p| p["pv_name"] == name).unwrap();
        p["pe_start"].as_str().unwrap().parse().unwrap()
    };
    let cfg = truth("span.vgcfg.txt");
    let sectors: u64 = cfg
        .lines()
        .find_map(|l| l.trim().strip_prefix("extent_size = "))
        .and_then(|v| v.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    (pe_start, sectors * 512)
}

/// One segment `lvs --segments` reports: LV byte it starts at, its length, stripe size (0
/// for linear) and each area's (disk index, disk byte, length).
type Segment = (u64, u64, u64, Vec<(usize, u64, u64)>);

/// The segments of `lv` of `vgspan`.
fn span_segments(lv: &str) -> Vec<Segment> {
    let (pe_start, extent) = span_geometry();
    let lvs: Value = serde_json::from_str(&truth("span.lvs.json")).unwrap();
    let num = |v: &Value| -> u64 { v.as_str().unwrap().parse().unwrap() };
    let mut out = Vec::new();
    for s in lvs["report"][0]["seg"].as_array().unwrap() {
        if s["lv_name"] != lv {
            continue;
        }
        let mut areas = Vec::new();
        for run in s["seg_pe_ranges"].as_str().unwrap().split(' ') {
            // "span-b.img:2-7"
            let (name, pes) = run.split_once(':').unwrap();
            let (a, b) = pes.split_once('-').unwrap();
            let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
            let disk = if name == "span-a.img" { 0 } else { 1 };
            areas.push((disk, pe_start(name) + a * extent, (b - a + 1) * extent));
        }
        let (start, len) = (
            num(&s["seg_start_pe"]) * extent,
            num(&s["seg_size_pe"]) * extent,
        );
        out.push((start, len, num(&s["stripe_size"]), areas));
    }
    out
}

/// Disk index, disk byte and length of each run `lvs` reports for `lv` of `vgspan`, in
/// the LV's order (stripes: each stripe's run whole), with the LV byte each run starts at.
pub fn span_runs(lv: &str) -> Vec<(u64, usize, u64, u64)> {
    span_segments(lv)
        .into_iter()
        .flat_map(|(start, _, _, areas)| {
            areas
                .into_iter()
                .map(move |(disk, at, len)| (start, disk, at, len))
        })
        .collect()
}

/// Where each byte of `lv` of `vgspan` lies: (LV byte, disk index, disk byte, length)
/// pieces in LV order, a striped segment's chunk `k` on stripe `k mod n` at row `k div n`
/// of that stripe's area, as dm-stripe places it.
pub fn span_pieces(lv: &str) -> Vec<(u64, usize, u64, u64)> {
    let mut out = Vec::new();
    for (start, len, stripe, areas) in span_segments(lv) {
        let n = areas.len() as u64;
        let chunk = if n > 1 { stripe } else { len };
        for k in 0..len / chunk {
            let (disk, base, _) = areas[(k % n) as usize];
            out.push((start + k * chunk, disk, base + (k / n) * chunk, chunk));
        }
    }
    out
}

/// Used blocks of a `dumpe2fs` output, in bytes.
pub fn used_of(d: &str) -> Vec<(u64, u64)> {
    let field = |name: &str| -> u64 {
        d.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let (bs, count) = (field("Block size:"), field("Block count:"));
    let mut free = Vec::new();
    for l in d.lines() {
        let Some(list) = l.strip_prefix("  Free blocks: ") else {
            continue;
        };
        for r in list.split(", ").filter(|r| !r.is_empty()) {
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
            free.push((a, b + 1));
        }
    }
    free.sort();
    let mut used = Vec::new();
    let mut at = 0;
    for (a, b) in free {
        if a > at {
            used.push((at * bs, (a - at) * bs));
        }
        at = b;
    }
    if at < count {
        used.push((at * bs, (count - at) * bs));
    }
    used
}

/// The bytes of VG `name`'s PVs that no LV owns, by `pvs` (free extents, and the slack
/// after the last extent) and `vgcfgbackup` (the extent size): `vg_free`'s truth.
pub fn vg_free_bytes(name: &str) -> u64 {
    let pvs: Value = serde_json::from_str(&truth(&format!("{name}.pvs.json"))).unwrap();
    let cfg = truth(&format!("{name}.vgcfg.txt"));
    let sectors: u64 = cfg
        .lines()
        .find_map(|l| l.trim().strip_prefix("extent_size = "))
        .and_then(|v| v.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    let extent = sectors * 512;
    pvs["report"][0]["pv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let n = |k: &str| -> u64 { p[k].as_str().unwrap().parse().unwrap() };
            let slack = n("dev_size") - n("pe_start") - n("pv_pe_count") * extent;
            (n("pv_pe_count") - n("pv_pe_alloc_count")) * extent + slack
        })
        .sum()
}
