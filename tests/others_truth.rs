//! Filesystems formatted and written by other implementations (mtools' mformat, mkfs.fat
//! with camera/SD-card options, mke2fs with its feature flags on and off, the ntfs-3g FUSE
//! driver), against what independent readers recorded beside them in
//! `fixtures/others/truth/` (TSK fls/icat/blkls, the kernel's ext4 driver, debugfs, e2fsck,
//! mtype, fsck.fat, ntfs-3g, ntfsinfo). See `fixtures/others/README.md` for the images and
//! for each documented difference.
//!
//! Per image: `ls -r --json` (paths, types, sizes, mtimes, inode numbers, symlink
//! targets), `cat` of every file and named stream, `ls --deleted` and `cat --deleted`,
//! and `blocks --state free` / `--state used`.

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

const AREA: &str = "fixtures/others";

fn truth_path(file: &str) -> PathBuf {
    root().join(AREA).join("truth").join(file)
}

fn truth(file: &str) -> Option<String> {
    std::fs::read_to_string(truth_path(file)).ok()
}

/// `images/NAME.img.gz` written out whole (no holes: the space classes must be the
/// filesystem's, not the host file's), once per test.
fn image(name: &str) -> String {
    expanded("others/images")
        .join(format!("{name}.img"))
        .to_string_lossy()
        .into_owned()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ext,
    Fat,
    Ntfs,
}

fn kind(name: &str) -> Kind {
    match name.split('-').next().unwrap() {
        "fat12" | "fat16" | "fat32" => Kind::Fat,
        "ntfs" => Kind::Ntfs,
        _ => Kind::Ext,
    }
}

/// One entry as an independent reader lists it.
#[derive(Debug, Clone)]
struct Want {
    kind: &'static str,
    size: u64,
    /// fls's mtime, `YYYY-MM-DD HH:MM:SS`
    mtime: Option<String>,
    inode: Option<u64>,
    deleted: bool,
}

fn type_name(c: char) -> &'static str {
    match c {
        'r' => "file",
        'd' => "dir",
        'l' => "symlink",
        _ => "other",
    }
}

/// `fls -r -p -l` (or with `-d`): path → entry. TSK's virtual files (`$MBR`, `$FAT1`,
/// `$OrphanFiles`, ...), NTFS metadata files (`$MFT`, ...: diskray does not list them) and
/// FAT volume labels are left out.
fn fls(text: &str) -> BTreeMap<String, Want> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        assert!(f.len() >= 9, "fls line: {line}");
        let (head, path) = (f[0], f[1]);
        if path.starts_with('$') || path.ends_with("(Volume Label Entry)") {
            continue;
        }
        let mut words = head.split_whitespace();
        let types: Vec<char> = words.next().unwrap().chars().collect();
        let rest: Vec<&str> = words.collect();
        let deleted = rest.first() == Some(&"*");
        // the name's type, or the inode's when the name has none (`-/r`)
        let t = if types[0] == '-' { types[2] } else { types[0] };
        let inode = rest
            .last()
            .unwrap()
            .trim_end_matches(':')
            .split('-')
            .next()
            .unwrap()
            .parse()
            .ok();
        out.insert(
            format!("/{path}"),
            Want {
                kind: type_name(t),
                size: f[6].parse().unwrap(),
                mtime: Some(f[2].trim_end_matches(" (UTC)").to_string()),
                inode,
                deleted,
            },
        );
    }
    out
}

/// `NAME.mount.tsv`: what the mounted driver shows (type, size, path, symlink target).
fn mount(name: &str) -> Option<BTreeMap<String, (&'static str, u64, String)>> {
    let text = truth(&format!("{name}.mount.tsv"))?;
    Some(
        text.lines()
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                let t = match f[0] {
                    "f" => "file",
                    "d" => "dir",
                    "l" => "symlink",
                    _ => "other",
                };
                (
                    f[2].to_string(),
                    (t, f[1].parse().unwrap(), f[3].to_string()),
                )
            })
            .collect(),
    )
}

fn ls(img: &str, deleted: bool) -> BTreeMap<String, Value> {
    let mut args = vec!["ls", "-r", "--json", img];
    if deleted {
        args.push("--deleted");
    }
    let v: Value = serde_json::from_str(&diskray_ok(&args)).unwrap();
    let mut out = BTreeMap::new();
    for e in v["entries"].as_array().unwrap() {
        let p = e["path"].as_str().unwrap().to_string();
        assert!(
            out.insert(p.clone(), e.clone()).is_none(),
            "{p} listed twice"
        );
    }
    out
}

fn space(name: &str) -> BTreeMap<String, u64> {
    truth(&format!("{name}.space.tsv"))
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('\t').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

fn blocks(img: &str, state: &str) -> u64 {
    let v: Value =
        serde_json::from_str(&diskray_ok(&["blocks", "--json", "--state", state, img])).unwrap();
    v["bytes"].as_u64().unwrap()
}

/// Everything one image is checked for; `problems` collects every difference so that one
/// run names them all.
fn check(name: &str) {
    let img = image(name);
    let k = kind(name);
    let mut problems: Vec<String> = Vec::new();
    let ours = ls(&img, false);

    // ---- the listing, against fls (or the kernel where TSK cannot read: bigalloc)
    let fls_live = truth(&format!("{name}.fls.txt")).map(|t| {
        fls(&t)
            .into_iter()
            .filter(|(_, w)| !w.deleted)
            .collect::<BTreeMap<_, _>>()
    });
    let mounted = mount(name);
    let want: BTreeMap<String, Want> = match &fls_live {
        Some(w) => w.clone(),
        None => mounted
            .as_ref()
            .expect("neither fls nor a mount listing")
            .iter()
            .map(|(p, (t, s, _))| {
                let w = Want {
                    kind: t,
                    size: *s,
                    mtime: None,
                    inode: None,
                    deleted: false,
                };
                (p.clone(), w)
            })
            .collect(),
    };
    assert!(
        want.len() >= 12,
        "{name}: fixture lists {} entries",
        want.len()
    );
    let got: BTreeSet<&String> = ours.keys().collect();
    let exp: BTreeSet<&String> = want.keys().collect();
    for p in got.difference(&exp) {
        problems.push(format!("{p}: listed, the truth does not list it"));
    }
    for p in exp.difference(&got) {
        problems.push(format!("{p}: in the truth, not listed"));
    }
    for (p, w) in &want {
        let Some(e) = ours.get(p) else { continue };
        if e["type"] != w.kind {
            problems.push(format!("{p}: type {} (truth {})", e["type"], w.kind));
        }
        // Directory sizes on FAT and NTFS: diskray gives the stored size (DIR_FileSize is
        // 0 for a FAT directory; an NTFS directory has no $DATA), TSK the length of the
        // cluster chain or the $I30 index (README.md, "Documented differences").
        let dir_size_defined = !(w.kind == "dir" && k != Kind::Ext);
        if dir_size_defined && e["size"].as_u64() != Some(w.size) {
            problems.push(format!("{p}: size {} (truth {})", e["size"], w.size));
        }
        if let Some(m) = &w.mtime {
            let ours_m = e["mtime"]
                .as_str()
                .map(|s| s.replace('T', " ").trim_end_matches('Z').to_string());
            // NTFS named streams: diskray gives no time (null), fls the file's
            // (README.md, "Documented differences")
            let stream = k == Kind::Ntfs && p.contains(':') && ours_m.is_none();
            if !stream && ours_m.as_deref() != Some(m.as_str()) {
                problems.push(format!("{p}: mtime {:?} (fls {m})", ours_m));
            }
        }
        // TSK numbers FAT entries by directory-entry slot, not as diskray does
        if let (Some(i), false) = (w.inode, k == Kind::Fat) {
            if e["inode"].as_u64() != Some(i) {
                problems.push(format!("{p}: inode {} (fls {i})", e["inode"]));
            }
        }
    }

    // ---- the mounted driver's view (ext: the kernel; NTFS: ntfs-3g, no named streams)
    if let Some(m) = &mounted {
        let ours_plain: BTreeSet<&String> = ours
            .keys()
            .filter(|p| !(k == Kind::Ntfs && p.contains(':')))
            .collect();
        let theirs: BTreeSet<&String> = m.keys().collect();
        if ours_plain != theirs {
            problems.push(format!(
                "mounted driver lists {:?}, diskray {:?}",
                theirs.difference(&ours_plain).collect::<Vec<_>>(),
                ours_plain.difference(&theirs).collect::<Vec<_>>()
            ));
        }
        for (p, (t, size, target)) in m {
            let Some(e) = ours.get(p) else { continue };
            if e["type"] != *t {
                problems.push(format!("{p}: type {} (mounted {t})", e["type"]));
            }
            if (k == Kind::Ext || *t != "dir") && e["size"].as_u64() != Some(*size) {
                problems.push(format!("{p}: size {} (mounted {size})", e["size"]));
            }
            if *t == "symlink" && e["target"].as_str() != Some(target.as_str()) {
                problems.push(format!("{p}: target {} (readlink {target})", e["target"]));
            }
        }
    }

    // ---- content: every file and named stream, as both readers read it
    let sha = truth(&format!("{name}.sha256.tsv")).unwrap();
    let mut files = 0;
    for line in sha.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f[1], f[2], "{name}: the two readers disagree on {}", f[0]);
        let out = diskray(&["cat", &img, f[0]]);
        if !out.status.success() {
            problems.push(format!(
                "cat {}: {}",
                f[0],
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        } else if sha256(&out.stdout) != f[1] {
            problems.push(format!("cat {}: content differs from {}", f[0], f[1]));
        }
        files += 1;
    }
    assert!(files >= 8, "{name}: fixture has {files} files");

    // ---- deleted entries, against fls -d
    if let Some(t) = truth(&format!("{name}.fls-d.txt")) {
        let want = fls(&t);
        assert!(want.len() >= 4, "{name}: fls -d found {} names", want.len());
        let ours_d = ls(&img, true);
        let named: BTreeMap<&String, &Value> = ours_d
            .iter()
            .filter(|(p, _)| !p.starts_with("/$OrphanFiles/"))
            .collect();
        // Every one of fls's deleted names is listed at fls's path, the entries of a
        // deleted ext directory included (its inode and blocks are free and unreused: fls
        // walks it, and so does diskray).
        let mut at: BTreeMap<&String, String> = BTreeMap::new();
        for p in want.keys() {
            if named.contains_key(p) {
                at.insert(p, p.clone());
            } else {
                problems.push(format!(
                    "{p}: deleted in fls -d, not listed by ls --deleted"
                ));
            }
        }
        if k == Kind::Ext {
            // ext orphans: TSK lists every deleted inode no name points to as
            // `$OrphanFiles/OrphanFile-N` (diskray those with data), so each of ours is one
            // of fls's, and none is an inode already listed by its name.
            let fls_orphans: BTreeSet<String> = t
                .lines()
                .filter_map(|l| l.split('\t').nth(1))
                .filter(|p| p.starts_with("$OrphanFiles/") && p.matches('/').count() == 1)
                .map(|p| format!("/{p}"))
                .collect();
            let named_inodes: BTreeSet<u64> =
                named.values().filter_map(|e| e["inode"].as_u64()).collect();
            for (p, e) in ours_d
                .iter()
                .filter(|(p, _)| p.starts_with("/$OrphanFiles/"))
            {
                if !fls_orphans.contains(p) {
                    problems.push(format!("{p}: listed as an orphan, fls -d does not list it"));
                }
                if e["inode"]
                    .as_u64()
                    .is_some_and(|i| named_inodes.contains(&i))
                {
                    problems.push(format!("{p}: listed by its name too"));
                }
            }
        }
        for p in named.keys() {
            if !want.contains_key(*p) {
                problems.push(format!("{p}: listed as deleted, fls -d does not list it"));
            }
        }
        for (p, ours_p) in &at {
            let e = &ours_d[ours_p];
            if e["type"] != want[*p].kind && want[*p].kind != "other" {
                problems.push(format!(
                    "{p}: deleted type {} (fls {})",
                    e["type"], want[*p].kind
                ));
            }
            if want[*p].kind == "file" && e["size"].as_u64() != Some(want[*p].size) {
                problems.push(format!(
                    "{p}: deleted size {} (fls {})",
                    e["size"], want[*p].size
                ));
            }
        }
        // what icat recovers, cat --deleted recovers
        let rec = truth(&format!("{name}.deleted.icat.tsv")).unwrap();
        let mut n = 0;
        for line in rec.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            let Some(ours_p) = at.get(&f[0].to_string()) else {
                continue;
            };
            let out = diskray(&["cat", "--deleted", &img, ours_p]);
            if !out.status.success() || sha256(&out.stdout) != f[2] {
                problems.push(format!(
                    "cat --deleted {ours_p} (fls {}): not icat's content; {}",
                    f[0],
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            n += 1;
        }
        assert!(n >= 2, "{name}: {n} deleted files with content");
    }

    // ---- the space map: free as the filesystem's checker counts it, used the rest
    let s = space(name);
    let free = blocks(&img, "free");
    if free != s["checker_free"] {
        problems.push(format!(
            "blocks --state free: {free} bytes, the checker {} (blkls -A {:?})",
            s["checker_free"],
            s.get("blkls_free")
        ));
    }
    let used = blocks(&img, "used");
    if used != s["image"] - s["checker_free"] {
        problems.push(format!(
            "blocks --state used: {used} bytes, image less the checker's free {}",
            s["image"] - s["checker_free"]
        ));
    }

    assert!(
        problems.is_empty(),
        "{name}: {} differences:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

macro_rules! images {
    ($($test:ident => $name:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                check($name);
            }
        )*

        /// Every committed image has its test above.
        #[test]
        fn every_image_is_checked() {
            let listed: BTreeSet<&str> = [$($name),*].into_iter().collect();
            let committed: BTreeSet<String> = std::fs::read_dir(root().join(AREA).join("images"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter_map(|n| n.strip_suffix(".img.gz").map(str::to_string))
                .collect();
            assert_eq!(
                committed.iter().map(String::as_str).collect::<BTreeSet<_>>(),
                listed
            );
        }
    };
}

images! {
    fat12_mformat_floppy => "fat12-mformat-floppy",
    fat16_mformat => "fat16-mformat",
    fat32_mformat => "fat32-mformat",
    fat16_camera => "fat16-camera",
    fat32_camera => "fat32-camera",
    fat16_unaligned_1fat => "fat16-unaligned-1fat",
    fat16_4k_sectors => "fat16-4k-sectors",
    ext2 => "ext2",
    ext3 => "ext3",
    ext4_default => "ext4-default",
    ext4_no_journal_extent_flexbg => "ext4-no-journal-extent-flexbg",
    ext4_no_sparse_super_uninit_bg => "ext4-no-sparse-super-uninit-bg",
    ext4_sparse_super2 => "ext4-sparse-super2",
    ext4_inline_data => "ext4-inline-data",
    ext4_bigalloc => "ext4-bigalloc",
    ext4_meta_bg => "ext4-meta-bg",
    ext4_quota_project => "ext4-quota-project",
    ext4_casefold_encrypt => "ext4-casefold-encrypt",
    ext4_largedir_eainode_orphanfile => "ext4-largedir-eainode-orphanfile",
    ext4_64bit_4k_huge => "ext4-64bit-4k-huge",
    ntfs_512 => "ntfs-512",
    ntfs_4k => "ntfs-4k",
    ntfs_64k => "ntfs-64k",
}
