//! FAT images made by other tools (mtools, mkfs.fat with bad blocks, a FAT32 BPB with few
//! clusters, hand-damaged deleted names) against the answers of independent readers
//! recorded beside them (TSK fls/icat/fsstat, mdir/mtype/mshowfat, fsck.fat, fusefat).
//! Items 9–12 of issue 9; see `fixtures/interop/fat/README.md`.

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

fn dir() -> PathBuf {
    root().join("fixtures/interop/fat")
}

fn truth(name: &str) -> String {
    std::fs::read_to_string(dir().join("truth").join(name)).unwrap()
}

/// The image `name` (from `images/NAME.img.gz`), written out whole (no holes, so the
/// space classes are the filesystem's and not the host's).
fn image(name: &str) -> String {
    expanded("interop/fat/images")
        .join(format!("{name}.img"))
        .to_string_lossy()
        .into_owned()
}

/// One line of `fls -l`: type field, path, size.
struct Fls {
    kind: String,
    path: String,
    size: u64,
    orphan: bool,
}

fn fls(text: &str) -> Vec<Fls> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            if f.len() < 7 {
                return None;
            }
            let path = f[1].to_string();
            if path.starts_with('$') && !path.starts_with("$OrphanFiles/") {
                return None; // $MBR, $FAT1, $FAT2, $OrphanFiles: TSK's virtual files
            }
            if path.ends_with("(Volume Label Entry)") {
                return None;
            }
            Some(Fls {
                kind: f[0].split_whitespace().next().unwrap().to_string(),
                orphan: path.starts_with("$OrphanFiles/"),
                path: format!("/{path}"),
                size: f[6].parse().unwrap(),
            })
        })
        .collect()
}

/// One entry of `mdir -/ -a`: its 8.3 name as mdir shows it, its long name, size.
#[derive(Debug, Clone)]
struct Mdir {
    short: String,
    long: Option<String>,
    size: Option<u64>,
}

/// `mdir -/ -a` output: directory path (long names) → its entries, `.` and `..` left out.
fn mdir(text: &str) -> BTreeMap<String, Vec<Mdir>> {
    let mut out: BTreeMap<String, Vec<Mdir>> = BTreeMap::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        if let Some(d) = line.strip_prefix("Directory for ::") {
            cur = Some(d.to_string());
            out.entry(d.to_string()).or_default();
            continue;
        }
        let chars: Vec<char> = line.chars().collect();
        if chars.len() < 13 || chars[8] != ' ' {
            continue;
        }
        let base: String = chars[..8].iter().collect::<String>().trim_end().to_string();
        let ext: String = chars[9..12]
            .iter()
            .collect::<String>()
            .trim_end()
            .to_string();
        let rest: String = chars[12..].iter().collect();
        let mut tokens = rest.split_whitespace();
        let (Some(size), Some(date), Some(time)) = (tokens.next(), tokens.next(), tokens.next())
        else {
            continue;
        };
        if date.len() != 10 || date.as_bytes()[4] != b'-' {
            continue;
        }
        if size != "<DIR>" && size.parse::<u64>().is_err() {
            continue;
        }
        if base == "." || base == ".." || base.is_empty() {
            continue;
        }
        let after = &rest[rest.find(date).unwrap() + date.len()..];
        let after = after.trim_start();
        let after = &after[time.len()..];
        let long = after.strip_prefix("  ").map(str::to_string);
        let short = if ext.is_empty() {
            base
        } else {
            format!("{base}.{ext}")
        };
        out.get_mut(cur.as_ref().unwrap()).unwrap().push(Mdir {
            short,
            long,
            size: size.parse().ok(),
        });
    }
    out
}

fn join(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

fn ls_json(args: &[&str]) -> Vec<Value> {
    let v: Value = serde_json::from_str(&diskray_ok(args)).unwrap();
    v["entries"].as_array().unwrap().clone()
}

// ------------------------------------------------------------------------- item 9

/// `deltree.img`: /gone (a tree) removed with mdeltree. Every deleted entry TSK places in
/// the tree is found at the same path; every entry of a deleted directory whose clusters
/// were contiguous (mshowfat before the deletion) is found at its path with its mdir size
/// and short name, including the ones TSK only finds as orphans (it reads one cluster of
/// a deleted directory); nothing is found below the directory whose cluster was reused
/// (/reused, whose cluster /keep/new.bin took), and nothing past the first run of a
/// directory whose clusters were not contiguous (/gone/frag), as TSK.
#[test]
fn files_inside_deleted_directories_are_found() {
    let img = image("deltree");
    let fls_d = fls(&truth("deltree.fls-d.txt"));
    let before = mdir(&truth("deltree.before.mdir.txt"));
    let runs = |text: &str| -> BTreeMap<String, Vec<(u64, u64)>> {
        text.lines()
            .filter_map(|l| {
                let (path, rest) = l.split_once(" <")?;
                let runs = format!("<{rest}")
                    .split_whitespace()
                    .map(|r| {
                        let r = r.trim_matches(|c| c == '<' || c == '>');
                        let (a, b) = r.split_once('-').unwrap_or((r, r));
                        (a.parse().unwrap(), b.parse().unwrap())
                    })
                    .collect();
                Some((path.trim_start_matches("::").to_string(), runs))
            })
            .collect()
    };
    let dirs = runs(&truth("deltree.before.mshowfat.txt"));
    let reused: BTreeSet<u64> = runs(&truth("deltree.after.mshowfat.txt"))
        .values()
        .flatten()
        .flat_map(|&(a, b)| a..=b)
        .collect();
    // The name a deleted entry shows: its long name, or its 8.3 name with the first
    // letter lost (TSK's `_`).
    let deleted_name = |e: &Mdir| match &e.long {
        Some(l) => l.clone(),
        None => format!("_{}", e.short.chars().skip(1).collect::<String>()),
    };
    // Directories whose entries are all expected: one contiguous run, first cluster not
    // reused, parent expected too (or live).
    let mut expected: BTreeMap<String, (Option<u64>, Option<String>)> = BTreeMap::new();
    let mut walkable: BTreeMap<String, String> = BTreeMap::new(); // live path → deleted path
    for (path, r) in &dirs {
        let (parent, name) = path.rsplit_once('/').unwrap();
        let parent = if parent.is_empty() { "/" } else { parent };
        let parent_deleted = if parent == "/" {
            Some(String::new())
        } else {
            walkable.get(parent).cloned()
        };
        let entry = before[parent]
            .iter()
            .find(|e| {
                e.long
                    .as_deref()
                    .unwrap_or(&e.short)
                    .eq_ignore_ascii_case(name)
            })
            .unwrap();
        let Some(pd) = parent_deleted else { continue };
        let deleted_path = join(&pd, &deleted_name(entry));
        if r.len() == 1 && !reused.contains(&r[0].0) {
            walkable.insert(path.clone(), deleted_path.clone());
            for e in &before[path.as_str()] {
                let short = e.long.as_ref().map(|_| e.short.clone());
                expected.insert(join(&deleted_path, &deleted_name(e)), (e.size, short));
            }
        }
    }
    assert!(expected.len() > 120, "mdir truth not parsed: {expected:?}");
    let ours: HashMap<String, Value> = ls_json(&["ls", "--deleted", "-r", "--json", &img])
        .into_iter()
        .map(|e| (e["path"].as_str().unwrap().to_string(), e))
        .collect();
    let mut failures = Vec::new();
    let mut want: BTreeSet<String> = expected.keys().cloned().collect();
    for f in fls_d.iter().filter(|f| !f.orphan) {
        want.insert(f.path.clone());
        match ours.get(&f.path) {
            None => failures.push(format!("{}: listed by fls -d, not by us", f.path)),
            Some(e) => {
                if f.kind.starts_with('r') && e["size"] != f.size {
                    failures.push(format!("{}: size {} vs fls {}", f.path, e["size"], f.size));
                }
            }
        }
    }
    for (p, (size, short)) in &expected {
        let Some(e) = ours.get(p) else {
            failures.push(format!(
                "{p}: in a deleted directory (mdir before), not listed"
            ));
            continue;
        };
        if let Some(s) = size {
            if e["size"] != *s {
                failures.push(format!("{p}: size {} vs mdir {s}", e["size"]));
            }
        }
        if let Some(s) = short {
            if e["short_name"].as_str() != Some(s) {
                failures.push(format!("{p}: short name {} vs mdir {s}", e["short_name"]));
            }
        }
    }
    for p in ours.keys() {
        if !want.contains(p) {
            failures.push(format!(
                "{p}: listed by us, neither fls nor mdir has it there"
            ));
        }
    }
    // TSK's orphans of /gone/many (its later clusters) are ours by their short names.
    let shorts: BTreeSet<String> = ours
        .values()
        .filter_map(|e| e["short_name"].as_str())
        .map(|s| s[1..].to_string())
        .collect();
    let many_shorts: BTreeSet<String> = before["/gone/many"]
        .iter()
        .map(|e| e.short[1..].to_string())
        .collect();
    for f in fls_d.iter().filter(|f| f.orphan) {
        let s = f.path.rsplit('/').next().unwrap()[1..].to_string();
        if many_shorts.contains(&s) && !shorts.contains(&s) {
            failures.push(format!("{}: TSK's orphan, not found by us", f.path));
        }
    }
    // The content of deleted files, as icat gives it.
    for line in truth("deltree.icat.sha256").lines() {
        let (path, want) = line.split_once('\t').unwrap();
        let out = diskray(&["cat", "--deleted", &img, path]);
        let got = sha256(&out.stdout);
        if !out.status.success() || got != want {
            failures.push(format!(
                "cat --deleted {path}: {got} vs icat {want}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ------------------------------------------------------------------------ item 10

/// `fat32-4k.img` and `fat32-30k.img`: a FAT32 BPB with 4 000 and 30 000 clusters is read
/// as FAT32 (as fsck.fat, `fls -f fat32` and fusefat read it): every file and directory
/// fls lists is listed with its size, every file reads back as fusefat reads it, and a
/// warning names the cluster count fsck.fat warns about.
#[test]
fn fat32_bpb_with_few_clusters_is_read_as_fat32() {
    let mut failures = Vec::new();
    for name in ["fat32-4k", "fat32-30k"] {
        let img = image(name);
        let fsck = truth(&format!("{name}.fsck.txt"));
        let clusters = fsck
            .split("but has only ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .expect("fsck.fat warns about the cluster count")
            .to_string();
        let out = diskray(&["ls", "-r", "--json", &img]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() {
            failures.push(format!("{name}: ls failed: {stderr}"));
            continue;
        }
        if !(stderr.contains("FAT32") && stderr.contains(&clusters)) {
            failures.push(format!(
                "{name}: ls gives no warning naming FAT32 and {clusters} clusters: {stderr:?}"
            ));
        }
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let ours: HashMap<String, Value> = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["path"].as_str().unwrap().to_lowercase(), e.clone()))
            .collect();
        let want = fls(&truth(&format!("{name}.fls.txt")));
        if ours.len() != want.len() {
            failures.push(format!(
                "{name}: we list {} entries, fls {}",
                ours.len(),
                want.len()
            ));
        }
        for f in &want {
            match ours.get(&f.path.to_lowercase()) {
                None => failures.push(format!("{name}: {} not listed", f.path)),
                Some(e) => {
                    let dir = f.kind.starts_with('d');
                    if (e["type"] == "dir") != dir || (!dir && e["size"] != f.size) {
                        failures.push(format!(
                            "{name}: {}: {} {} vs fls {} {}",
                            f.path, e["type"], e["size"], f.kind, f.size
                        ));
                    }
                }
            }
        }
        for line in truth(&format!("{name}.fusefat.sha256")).lines() {
            let (want, path) = line.split_once("  ").unwrap();
            let path = path.trim_start_matches('.');
            if !ours.contains_key(&path.to_lowercase()) {
                continue; // the volume label, which fusefat shows as an empty file
            }
            let out = diskray(&["cat", &img, path]);
            if !out.status.success() || sha256(&out.stdout) != want {
                failures.push(format!(
                    "{name}: cat {path}: not fusefat's content: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        let report: Value = serde_json::from_str(&diskray_ok(&["report", "--json", &img])).unwrap();
        if report["volumes"][0]["filesystem"] != "fat32" {
            failures.push(format!(
                "{name}: report says {}",
                report["volumes"][0]["filesystem"]
            ));
        }
        let warned = report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains(&clusters));
        if !warned {
            failures.push(format!(
                "{name}: report warnings do not name {clusters} clusters: {}",
                report["warnings"]
            ));
        }
        // fsck.fat's "N/M clusters": the clusters not free.
        let not_free: u64 = fsck
            .lines()
            .last()
            .and_then(|l| l.rsplit_once(", ").map(|(_, c)| c.to_string()))
            .and_then(|c| c.split('/').next().and_then(|n| n.parse().ok()))
            .unwrap();
        let total: u64 = clusters.parse().unwrap();
        let free = report["volumes"][0]["free"].as_u64().unwrap();
        if free != (total - not_free) * 512 {
            failures.push(format!(
                "{name}: free {free} bytes vs fsck.fat {} clusters of 512",
                total - not_free
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ------------------------------------------------------------------------ item 11

/// `longnames.img`: every file reads back through its 8.3 path (the short name of every
/// component, as mdir shows them: `/VERYLO~1/VERY-L~1.TXT`) with the content mtype gives
/// for it, and through its long path; listings carry the short alias mdir shows for every
/// entry with a long name.
#[test]
fn short_names_are_accepted_in_paths() {
    let img = image("longnames");
    let mut failures = Vec::new();
    for line in truth("longnames.mtype.tsv").lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let (long, short, want) = (f[0], f[1], f[2]);
        for path in [long, short] {
            let out = diskray(&["cat", &img, path]);
            if !out.status.success() || sha256(&out.stdout) != want {
                failures.push(format!(
                    "cat {path}: not mtype's content: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    for (dir, entries) in mdir(&truth("longnames.mdir.txt")) {
        let listed = ls_json(&["ls", "--json", &img, &dir]);
        for e in entries {
            let name = e.long.clone().unwrap_or(e.short.clone());
            let Some(ours) = listed.iter().find(|x| x["name"] == name.as_str()) else {
                failures.push(format!("{dir}: {name} not listed"));
                continue;
            };
            // An alias that differs only in case adds nothing on a case-insensitive
            // filesystem; one that differs otherwise is shown.
            let want = e
                .long
                .as_ref()
                .filter(|l| l.to_lowercase() != e.short.to_lowercase())
                .map(|_| e.short.as_str());
            if ours["short_name"].as_str() != want {
                failures.push(format!(
                    "{dir}/{name}: short name {} vs mdir {want:?}",
                    ours["short_name"]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ------------------------------------------------------------------------ item 12

/// Sector ranges of `fsstat`'s layout and FAT contents: (reserved, FATs, FAT12/16 root
/// directory, non-clustered tail) and the BAD runs; plus sector and cluster size.
struct Fsstat {
    metadata: Vec<(u64, u64)>,
    bad: Vec<(u64, u64)>,
    sector: u64,
    cluster: u64,
}

fn fsstat(text: &str) -> Fsstat {
    let range = |s: &str| -> (u64, u64) {
        let (a, b) = s.trim().split_once(" - ").unwrap();
        (a.trim().parse().unwrap(), b.trim().parse().unwrap())
    };
    let mut f = Fsstat {
        metadata: Vec::new(),
        bad: Vec::new(),
        sector: 0,
        cluster: 0,
    };
    for l in text.lines() {
        for key in [
            "* Reserved:",
            "* FAT 0:",
            "* FAT 1:",
            "** Root Directory:",
            "** Non-clustered:",
        ] {
            // (FAT32's root directory is "*** Root Directory": in the cluster area.)
            if let Some(r) = l.strip_prefix(key) {
                f.metadata.push(range(r));
            }
        }
        if let Some(r) = l.strip_suffix(" -> BAD") {
            let r = r.split_whitespace().next().unwrap();
            let (a, b) = r.split_once('-').unwrap();
            f.bad.push((a.parse().unwrap(), b.parse().unwrap()));
        }
        if let Some(v) = l.strip_prefix("Sector Size: ") {
            f.sector = v.trim().parse().unwrap();
        }
        if let Some(v) = l.strip_prefix("Cluster Size: ") {
            f.cluster = v.trim().parse().unwrap();
        }
    }
    f
}

/// `bad12.img` and `bad32.img` (mkfs.fat -l): the clusters fsstat shows as BAD are
/// metadata (with the reserved sectors, the FATs and the FAT12/16 root directory), not file
/// data: the `used` class is the clusters fsck.fat counts as not free minus the bad ones,
/// and a warning names how many are bad.
#[test]
fn bad_clusters_are_metadata_with_a_warning() {
    let mut failures = Vec::new();
    for name in ["bad12", "bad32"] {
        let img = image(name);
        let st = fsstat(&truth(&format!("{name}.fsstat.txt")));
        let sectors = |v: &[(u64, u64)]| v.iter().map(|(a, b)| b - a + 1).sum::<u64>();
        let bad_bytes = sectors(&st.bad) * st.sector;
        let bad_clusters = bad_bytes / st.cluster;
        let fsck = truth(&format!("{name}.fsck.txt"));
        let not_free: u64 = fsck
            .lines()
            .rev()
            .find_map(|l| l.split(", ").nth(1))
            .and_then(|c| c.split('/').next()?.parse().ok())
            .unwrap();
        let report: Value = serde_json::from_str(&diskray_ok(&["report", "--json", &img])).unwrap();
        let classes = &report["volumes"][0]["classes"];
        let want_meta = sectors(&st.metadata) * st.sector + bad_bytes;
        if classes["metadata"] != want_meta {
            failures.push(format!(
                "{name}: metadata {} bytes vs fsstat's layout and BAD clusters {want_meta}",
                classes["metadata"]
            ));
        }
        let want_used = (not_free - bad_clusters) * st.cluster;
        if classes["used"] != want_used {
            failures.push(format!(
                "{name}: used {} bytes vs fsck.fat's {not_free} clusters not free less {bad_clusters} bad",
                classes["used"]
            ));
        }
        let warned = report["warnings"].as_array().unwrap().iter().any(|w| {
            let w = w.as_str().unwrap();
            w.contains("bad") && w.contains(&format!("{bad_clusters} "))
        });
        if !warned {
            failures.push(format!(
                "{name}: no warning naming {bad_clusters} bad clusters: {}",
                report["warnings"]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// `nulnames.img`: deleted entries whose name bytes hold NULs or control bytes (written
/// into them after mdel) are not directory entries for TSK, which lists only the intact
/// one; we list what fls lists, and no name with a NUL or control character.
#[test]
fn deleted_names_with_nul_bytes_are_not_printed_raw() {
    let img = image("nulnames");
    let want: BTreeSet<String> = fls(&truth("nulnames.fls-d.txt"))
        .into_iter()
        .map(|f| f.path)
        .collect();
    let human = diskray_ok(&["ls", "--deleted", "-r", &img]);
    let ours: BTreeSet<String> = ls_json(&["ls", "--deleted", "-r", "--json", &img])
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ours, want, "deleted entries vs fls -d");
    assert!(
        !human.chars().any(|c| c.is_control() && c != '\n'),
        "control characters printed: {human:?}"
    );
}
