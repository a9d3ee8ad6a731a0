//! The JSON documents of every command are a public contract: fields may be added, never
//! renamed or dropped. These tests pin, for each command's `--json` document, the keys it
//! has at every level (the shapes `docs/guide.md` documents), so a refactor that renames a
//! field, or a typed result that forgets one, fails here.
//!
//! A key listed here must be present; extra keys are allowed (the contract lets fields be
//! added).

mod common;

use common::{diskray, diskray_ok, root, scratch};
use serde_json::Value;

/// One level of a document: a path (`/` the root, `key` to descend into an object,
/// `[]` into the first element of an array) and the keys the object there must have.
type Level<'a> = (&'a str, &'a [&'a str]);

/// Follows `path` from `doc`; `None` when an array on the way is empty.
fn at<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = doc;
    for step in path.split('/').filter(|s| !s.is_empty()) {
        let (key, arrays) = match step.find("[]") {
            Some(i) => (&step[..i], step[i..].matches("[]").count()),
            None => (step, 0),
        };
        if !key.is_empty() {
            cur = cur
                .get(key)
                .unwrap_or_else(|| panic!("no key {key:?} on the way to {path}"));
        }
        for _ in 0..arrays {
            cur = cur.as_array().expect("an array").first()?;
        }
    }
    Some(cur)
}

fn check(what: &str, doc: &Value, levels: &[Level]) {
    for (path, keys) in levels {
        let Some(obj) = at(doc, path) else {
            panic!("{what}: {path} is an empty array; the fixture must exercise it");
        };
        let obj = obj
            .as_object()
            .unwrap_or_else(|| panic!("{what}: {path} is not an object: {obj}"));
        let missing: Vec<_> = keys.iter().filter(|k| !obj.contains_key(**k)).collect();
        assert!(
            missing.is_empty(),
            "{what}: {path} lacks {missing:?} (has {:?})",
            obj.keys().collect::<Vec<_>>()
        );
    }
}

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&diskray_ok(args)).expect("one JSON document")
}

fn demo(name: &str) -> String {
    root()
        .join("fixtures/demo")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

const CLASSES: &[&str] = &[
    "unallocated",
    "zero",
    "used",
    "metadata",
    "free_zero",
    "free_residue",
    "vg_free",
    "excluded",
    "unknown",
];

const EXTENT: &[&str] = &[
    "path", "file", "access", "type", "sectors", "offset", "format",
];

#[test]
fn info_keys() {
    let doc = json(&["info", "--json", &demo("snap-000001.vmdk")]);
    check(
        "info",
        &doc,
        &[
            (
                "/",
                &[
                    "file",
                    "format",
                    "create_type",
                    "capacity",
                    "cid",
                    "parent_cid",
                    "grain_size",
                    "extents",
                    "layers",
                    "warnings",
                ],
            ),
            ("extents[]", EXTENT),
            (
                "layers[]",
                &[
                    "file",
                    "version",
                    "cid",
                    "parent_cid",
                    "parent_hint",
                    "create_type",
                    "capacity",
                    "extents",
                    "ddb",
                    "descriptor",
                    "change_track_path",
                ],
            ),
            ("layers[]/extents[]", EXTENT),
        ],
    );
    let doc = json(&["info", "--json", &demo("disk.vmdk")]);
    check(
        "info (sparse header)",
        &doc,
        &[
            ("extents[]", &["grain_size", "directory_used", "header"]),
            (
                "extents[]/header",
                &[
                    "version",
                    "flags",
                    "flag_names",
                    "capacity_sectors",
                    "grain_sectors",
                    "descriptor_offset",
                    "descriptor_size",
                    "gtes_per_gt",
                    "rgd_offset",
                    "gd_offset",
                    "overhead",
                    "unclean_shutdown",
                    "compress_algorithm",
                ],
            ),
        ],
    );
}

#[test]
fn map_keys() {
    let doc = json(&["map", "--json", &demo("disk.vmdk")]);
    check(
        "map",
        &doc,
        &[
            ("/", &["capacity", "ranges", "warnings"]),
            ("ranges[]", &["start", "length", "state", "depth"]),
        ],
    );
}

#[test]
fn partitions_keys() {
    let doc = json(&["partitions", "--json", &demo("disk.vmdk")]);
    check(
        "partitions",
        &doc,
        &[
            (
                "/",
                &[
                    "scheme",
                    "sector_size",
                    "capacity",
                    "disk_id",
                    "partitions",
                    "whole_disk_content",
                    "warnings",
                ],
            ),
            (
                "partitions[]",
                &[
                    "index",
                    "start",
                    "length",
                    "type",
                    "name",
                    "content",
                    "guid",
                    "attributes",
                ],
            ),
        ],
    );
}

#[test]
fn report_keys() {
    let doc = json(&["report", "--json", &demo("disk.vmdk")]);
    check(
        "report",
        &doc,
        &[
            (
                "/",
                &[
                    "capacity",
                    "scheme",
                    "classes",
                    "volumes",
                    "backup_read_bytes",
                    "warnings",
                ],
            ),
            ("classes", CLASSES),
            (
                "volumes[]",
                &[
                    "index",
                    "start",
                    "length",
                    "name",
                    "label",
                    "filesystem",
                    "block_size",
                    "total",
                    "used",
                    "free",
                    "classes",
                    "error",
                ],
            ),
            ("volumes[]/classes", CLASSES),
        ],
    );
}

#[test]
fn blocks_keys() {
    for state in ["used", "free", "residue", "excluded"] {
        let doc = json(&["blocks", "--json", "--state", state, &demo("disk.vmdk")]);
        check(
            "blocks",
            &doc,
            &[("/", &["state", "partition", "ranges", "bytes", "warnings"])],
        );
    }
    let doc = json(&["blocks", "--json", "--state", "used", &demo("disk.vmdk")]);
    check("blocks", &doc, &[("ranges[]", &["start", "length"])]);
}

const LS_ENTRY: &[&str] = &[
    "path",
    "name",
    "type",
    "size",
    "inode",
    "mtime",
    "deleted",
    "recoverable",
    "target",
    "extents",
];

#[test]
fn ls_keys() {
    let disk = demo("disk.vmdk");
    for deleted in [false, true] {
        let mut args = vec!["ls", "--json", "-r", "-p", "1", disk.as_str()];
        if deleted {
            args.insert(1, "--deleted");
        }
        let doc = json(&args);
        check(
            "ls",
            &doc,
            &[
                ("/", &["entries"]),
                ("entries[]", LS_ENTRY),
                ("entries[]/extents[]", &["start", "length"]),
            ],
        );
    }
}

const STATS: &[&str] = &[
    "capacity",
    "read_from_source",
    "read_metadata",
    "skipped_unallocated",
    "skipped_zero",
    "skipped_free",
    "skipped_vg_free",
    "skipped_excluded",
    "skipped_unchanged",
    "stored_new",
    "reused_chunks",
    "new_chunks",
    "zero_chunks",
    "changed_chunks",
    "rebuilt_chunks",
    "healed_chunks",
    "cbt_missed_chunks",
    "chunk_size",
    "kept",
    "duration_seconds",
    "optimization_percent",
    "change_source",
];

#[test]
fn repository_command_keys() {
    let dir = scratch("json-contract-repo");
    let repo = dir.join("repo");
    let repo = repo.to_str().unwrap();
    let disk = demo("disk.vmdk");
    let doc = json(&["backup", "--json", &disk, "--repo", repo, "--name", "demo"]);
    check(
        "backup",
        &doc,
        &[
            (
                "/",
                &[
                    "image",
                    "name",
                    "parent",
                    "change_id",
                    "time",
                    "stats",
                    "warnings",
                ],
            ),
            ("stats", STATS),
        ],
    );
    let doc = json(&["images", "--json", "--repo", repo]);
    check(
        "images",
        &doc,
        &[
            ("/", &["images", "warnings"]),
            (
                "images[]",
                &[
                    "image",
                    "name",
                    "time",
                    "capacity",
                    "chunk_size",
                    "parent",
                    "change_id",
                    "source",
                    "stats",
                    "volumes",
                ],
            ),
            ("images[]/source", &["format", "path"]),
            ("images[]/stats", STATS),
            (
                "images[]/volumes[]",
                &["index", "start", "length", "content", "label"],
            ),
        ],
    );
    let doc = json(&["verify", "--json", "--repo", repo]);
    check(
        "verify",
        &doc,
        &[(
            "/",
            &[
                "images_checked",
                "chunks_checked",
                "bytes_checked",
                "damage",
                "damaged_chunks",
                "damaged_images",
                "damaged_image_reasons",
            ],
        )],
    );
}

#[test]
fn machine_backup_keys() {
    let dir = scratch("json-contract-machine");
    let repo = dir.join("repo");
    let repo = repo.to_str().unwrap();
    let (a, b) = (demo("base.vmdk"), demo("disk.vmdk"));
    let doc = json(&["backup", "--json", &a, &b, "--repo", repo, "--name", "vm"]);
    check(
        "backup of several disks",
        &doc,
        &[
            ("/", &["images", "warnings"]),
            (
                "images[]",
                &[
                    "image",
                    "name",
                    "parent",
                    "change_id",
                    "time",
                    "stats",
                    "warnings",
                ],
            ),
            ("images[]/stats", STATS),
        ],
    );
}

#[test]
fn changes_diff_is_a_vsphere_disk_change_info() {
    let out = diskray(&["changes", "diff", &demo("base.vmdk"), &demo("disk.vmdk")]);
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    check(
        "changes diff",
        &doc,
        &[
            ("/", &["_typeName", "startOffset", "length", "changedArea"]),
            ("changedArea[]", &["_typeName", "start", "length"]),
        ],
    );
    assert_eq!(doc["_typeName"], "DiskChangeInfo");
}
