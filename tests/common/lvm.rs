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
    (pe_start, extent_bytes(&truth("span.vgcfg.txt")))
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

/// A file of `fixtures/lvm/installed/truth` (the disks `make-installed.sh` lays out as
/// installers do).
pub fn installed_truth(name: &str) -> String {
    std::fs::read_to_string(root().join("fixtures/lvm/installed/truth").join(name)).unwrap()
}

/// A disk of `fixtures/lvm/installed/images`, expanded whole.
pub fn installed_disk(file: &str) -> PathBuf {
    expanded("lvm/installed/images").join(file)
}

/// The extent size a `vgcfgbackup` file records, in bytes.
pub fn extent_bytes(vgcfg: &str) -> u64 {
    let sectors: u64 = vgcfg
        .lines()
        .find_map(|l| l.trim().strip_prefix("extent_size = "))
        .and_then(|v| v.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    sectors * 512
}

/// The partitions `sfdisk -J` recorded for the installed disk `file` ("rocky-a.img"):
/// (number, first byte, length, type); none for a disk without a partition table (no
/// such record).
pub fn sfdisk_partitions(file: &str) -> Vec<(u32, u64, u64, String)> {
    let stem = file.strip_suffix(".img").unwrap();
    let path = root().join(format!("fixtures/lvm/installed/truth/{stem}.sfdisk.json"));
    if !path.exists() {
        return Vec::new();
    }
    let t: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let t = &t["partitiontable"];
    let sector = t["sectorsize"].as_u64().unwrap();
    t["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let node = p["node"].as_str().unwrap();
            let n = node.strip_prefix(file).unwrap().parse().unwrap();
            let (start, size) = (p["start"].as_u64().unwrap(), p["size"].as_u64().unwrap());
            (n, start * sector, size * sector, p["type"].to_string())
        })
        .collect()
}

/// Where the PV the truth calls `pv` ("rocky-a.img:p2", "rocky-b.img") lies: the index of
/// its disk in `disks` and its first byte there (sfdisk's start; 0 for a whole disk).
pub fn pv_place(disks: &[&str], pv: &str) -> (usize, u64) {
    let (file, part) = match pv.split_once(":p") {
        Some((f, n)) => (f, Some(n.parse::<u32>().unwrap())),
        None => (pv, None),
    };
    let disk = disks.iter().position(|d| *d == file).unwrap();
    let start = part.map_or(0, |n| {
        sfdisk_partitions(file)
            .into_iter()
            .find(|p| p.0 == n)
            .unwrap()
            .1
    });
    (disk, start)
}

/// Where each byte of `lv` lies on `disks` (the truth `vg`'s linear segments, by `lvs`,
/// `pvs` and `vgcfgbackup`): (LV byte, disk index, disk byte, length) in LV order.
pub fn lv_pieces(vg: &str, disks: &[&str], lv: &str) -> Vec<(u64, usize, u64, u64)> {
    let extent = extent_bytes(&installed_truth(&format!("{vg}.vgcfg.txt")));
    let pvs: Value = serde_json::from_str(&installed_truth(&format!("{vg}.pvs.json"))).unwrap();
    let lvs: Value = serde_json::from_str(&installed_truth(&format!("{vg}.lvs.json"))).unwrap();
    let num = |v: &Value| -> u64 { v.as_str().unwrap().parse().unwrap() };
    let mut out = Vec::new();
    for s in lvs["report"][0]["seg"].as_array().unwrap() {
        if s["lv_name"] != lv {
            continue;
        }
        assert_eq!(
            s["segtype"], "linear",
            "{vg}/{lv}: the fixtures' LVs are linear"
        );
        // "rocky-a.img:p2:0-74"
        let (pv, pes) = s["seg_pe_ranges"]
            .as_str()
            .unwrap()
            .rsplit_once(':')
            .unwrap();
        let first: u64 = pes.split_once('-').unwrap().0.parse().unwrap();
        let p = pvs["report"][0]["pv"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["pv_name"] == pv)
            .unwrap();
        let (disk, at) = pv_place(disks, pv);
        out.push((
            num(&s["seg_start_pe"]) * extent,
            disk,
            at + num(&p["pe_start"]) + first * extent,
            num(&s["seg_size_pe"]) * extent,
        ));
    }
    assert!(!out.is_empty(), "no LV {lv} in {vg}.lvs.json");
    out.sort();
    out
}

/// Used blocks of an XFS, in bytes: the complement within `dblocks` of the free extents
/// `xfs_db -r -c 'freesp -d'` lists (AG-relative), after the superblock fields
/// `make-installed.sh` prints first.
pub fn xfs_used(t: &str) -> Vec<(u64, u64)> {
    let field = |name: &str| -> u64 {
        t.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let (bs, dblocks, agblocks) = (
        field("blocksize = "),
        field("dblocks = "),
        field("agblocks = "),
    );
    let mut free = Vec::new();
    let mut rows = false;
    for l in t.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.first() == Some(&"agno") {
            rows = true;
            continue;
        }
        if w.first() == Some(&"from") {
            // The histogram that follows the rows.
            break;
        }
        if rows {
            let n: Vec<u64> = w.iter().map(|x| x.parse().unwrap()).collect();
            free.push((n[0] * agblocks + n[1], n[0] * agblocks + n[1] + n[2]));
        }
    }
    assert!(!free.is_empty(), "no freesp rows");
    free.sort();
    let mut used = Vec::new();
    let mut at = 0;
    for (a, b) in free {
        if a > at {
            used.push((at * bs, (a - at) * bs));
        }
        at = at.max(b);
    }
    if at < dblocks {
        used.push((at * bs, (dblocks - at) * bs));
    }
    used
}

/// The bytes of VG `name`'s PVs that no LV owns, by `pvs` (free extents, and the slack
/// after the last extent) and `vgcfgbackup` (the extent size): `vg_free`'s truth.
pub fn vg_free_bytes(name: &str) -> u64 {
    let pvs: Value = serde_json::from_str(&truth(&format!("{name}.pvs.json"))).unwrap();
    let extent = extent_bytes(&truth(&format!("{name}.vgcfg.txt")));
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
