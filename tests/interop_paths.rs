//! Paths (issue 9, items 2 and 17) against what the kernel says: ext4, XFS and NTFS
//! filesystems written through kernel loop mounts and ntfs-3g, with names that are not
//! UTF-8 or hold control characters, nested directories for `.` and `..`, and symlinks
//! of every kind. The truth (fixtures/interop/paths/truth/*.json) is what lstat, readlink,
//! listdir and `cat` gave through the mount (from a chroot into it for ext4 and XFS),
//! plus debugfs `ls -p` and TSK `fls -r -p` for ext4. See
//! `fixtures/interop/paths/README.md`.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

const FILESYSTEMS: [&str; 3] = ["ext4", "xfs", "ntfs"];

fn fixture_dir() -> PathBuf {
    expanded("interop/paths/images")
}

fn image(fs: &str) -> OsString {
    fixture_dir()
        .join(format!("{fs}-paths.img"))
        .into_os_string()
}

fn truth(fs: &str) -> Value {
    let p = root().join(format!("fixtures/interop/paths/truth/{fs}-paths.json"));
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The bytes of a truth record's `key`: `key_hex` when recorded (names that are not UTF-8
/// or hold control characters), else the text.
fn truth_bytes(v: &Value, key: &str) -> Vec<u8> {
    match v.get(format!("{key}_hex")) {
        Some(h) => unhex(h.as_str().unwrap()),
        None => v[key].as_str().unwrap().as_bytes().to_vec(),
    }
}

fn show(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

/// Runs diskray with byte arguments (names that are not UTF-8 go through as they are).
fn run(args: &[&OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_diskray"))
        .args(args)
        .output()
        .expect("run diskray")
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

fn run_ok(args: &[&OsStr]) -> Vec<u8> {
    let out = run(args);
    assert!(
        out.status.success(),
        "diskray {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Standard base64 (RFC 4648, with padding), the encoding of `name_bytes`/`path_bytes`.
fn base64_decode(s: &str) -> Vec<u8> {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = ABC.iter().position(|&a| a == c).expect("base64 character") as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// The bytes of a JSON entry's `field` (`path` or `name`): `field_bytes` (base64) when
/// present, else the text. `field_bytes` must be present exactly when the bytes are not
/// UTF-8, and `field` must then be their lossy rendering.
fn json_bytes(e: &Value, field: &str) -> Vec<u8> {
    let text = e[field].as_str().unwrap();
    match e.get(format!("{field}_bytes")) {
        Some(b) => {
            let bytes = base64_decode(b.as_str().unwrap());
            assert!(
                std::str::from_utf8(&bytes).is_err(),
                "{field}_bytes on a UTF-8 {field}: {e}"
            );
            assert_eq!(String::from_utf8_lossy(&bytes), text, "{e}");
            bytes
        }
        None => text.as_bytes().to_vec(),
    }
}

fn ls_json(fs: &str, path: &[u8], recursive: bool) -> Vec<Value> {
    let img = image(fs);
    let mut args = vec![
        os("ls"),
        os("--json"),
        img.as_os_str(),
        OsStr::from_bytes(path),
    ];
    if recursive {
        args.push(os("-r"));
    }
    let v: Value = serde_json::from_slice(&run_ok(&args)).unwrap();
    v["entries"].as_array().unwrap().clone()
}

/// (path bytes, inode, type) of every entry the kernel's walk saw.
fn truth_entries(t: &Value, list: &str) -> BTreeSet<(Vec<u8>, u64, String)> {
    t[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                truth_bytes(e, "path"),
                e["inode"].as_u64().unwrap(),
                e["type"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn our_entries(fs: &str) -> BTreeSet<(Vec<u8>, u64, String)> {
    ls_json(fs, b"/", true)
        .iter()
        .map(|e| {
            let path = json_bytes(e, "path");
            let name = json_bytes(e, "name");
            assert!(path.ends_with(&name), "{e}");
            (
                path,
                e["inode"].as_u64().unwrap(),
                e["type"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn assert_same(
    what: &str,
    ours: &BTreeSet<(Vec<u8>, u64, String)>,
    want: &BTreeSet<(Vec<u8>, u64, String)>,
) {
    let missing: Vec<_> = want
        .difference(ours)
        .map(|(p, i, k)| format!("{} {i} {k}", show(p)))
        .collect();
    let extra: Vec<_> = ours
        .difference(want)
        .map(|(p, i, k)| format!("{} {i} {k}", show(p)))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: missing {missing:?}, unexpected {extra:?}"
    );
}

#[test]
fn ls_lists_every_name_as_the_kernel_wrote_it() {
    for fs in FILESYSTEMS {
        let t = truth(fs);
        assert_same(
            &format!("{fs}: ls -r --json vs the kernel"),
            &our_entries(fs),
            &truth_entries(&t, "entries"),
        );
    }
    // Symlink targets as readlink gives them (ntfs-3g rewrites NTFS ones: not compared).
    for fs in ["ext4", "xfs"] {
        let ours: BTreeSet<(Vec<u8>, Vec<u8>)> = ls_json(fs, b"/", true)
            .iter()
            .filter(|e| e["type"] == "symlink")
            .map(|e| {
                let target = e["target"].as_str().unwrap_or("").as_bytes().to_vec();
                (json_bytes(e, "path"), target)
            })
            .collect();
        let want: BTreeSet<(Vec<u8>, Vec<u8>)> = truth(fs)["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "symlink")
            .map(|e| (truth_bytes(e, "path"), truth_bytes(e, "target")))
            .collect();
        let wrong: Vec<_> = want
            .difference(&ours)
            .map(|(p, t)| format!("{} -> {}", show(p), show(t)))
            .collect();
        assert!(
            wrong.is_empty(),
            "{fs}: symlink targets differ from readlink: {wrong:?}"
        );
    }
}

#[test]
fn ext4_names_match_debugfs_and_fls() {
    let t = truth("ext4");
    let ours = our_entries("ext4");
    assert_same(
        "ext4: ls -r --json vs debugfs ls -p",
        &ours,
        &truth_entries(&t, "debugfs"),
    );
    // fls prints each control character as '^'.
    let ours: BTreeSet<(Vec<u8>, u64)> = ours
        .into_iter()
        .map(|(p, i, _)| {
            let p = p
                .iter()
                .map(|&b| if b < 0x20 || b == 0x7f { b'^' } else { b })
                .collect();
            (p, i)
        })
        .collect();
    for f in t["fls"].as_array().unwrap() {
        let path = truth_bytes(f, "path");
        if f["deleted"].as_bool().unwrap() || path.starts_with(b"/$OrphanFiles") {
            continue;
        }
        let key = (path, f["inode"].as_u64().unwrap());
        assert!(
            ours.contains(&key),
            "ext4: fls has {} {}",
            show(&key.0),
            key.1
        );
    }
}

/// Reverses the escaping of the human output (docs/guide.md): `\\`, `\n`, `\t`, `\r`,
/// `\xHH` (a byte), `\u{H…}` (a character).
fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            let mut b = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            continue;
        }
        match it.next() {
            Some('\\') => out.push(b'\\'),
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('r') => out.push(b'\r'),
            Some('x') => {
                let h: String = [it.next().unwrap(), it.next().unwrap()].iter().collect();
                out.push(u8::from_str_radix(&h, 16).unwrap());
            }
            Some('u') => {
                assert_eq!(it.next(), Some('{'));
                let h: String = it.by_ref().take_while(|&c| c != '}').collect();
                let c = char::from_u32(u32::from_str_radix(&h, 16).unwrap()).unwrap();
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
            other => panic!("unknown escape \\{other:?} in {s:?}"),
        }
    }
    out
}

#[test]
fn human_output_escapes_names() {
    for fs in ["ext4", "xfs"] {
        let t = truth(fs);
        let img = image(fs);
        let out = run_ok(&[os("ls"), os("-r"), img.as_os_str()]);
        let text = String::from_utf8(out).expect("the human output is UTF-8");
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{fs}: control characters in the human output"
        );
        let mut ours = BTreeSet::new();
        for line in text.lines() {
            // type, size, inode, time, then the path (and ` -> target` for symlinks).
            let mut rest = line[1..].trim_start();
            let mut field = || {
                let (f, r) = rest.split_once(' ').unwrap();
                rest = r.trim_start();
                f.to_string()
            };
            let (_size, inode, _time) = (field(), field(), field());
            let path = rest.split(" -> ").next().unwrap();
            ours.insert((unescape(path), inode.parse::<u64>().unwrap()));
        }
        let want: BTreeSet<(Vec<u8>, u64)> = truth_entries(&t, "entries")
            .into_iter()
            .map(|(p, i, _)| (p, i))
            .collect();
        let missing: Vec<_> = want
            .difference(&ours)
            .map(|(p, i)| format!("{} {i}", show(p)))
            .collect();
        assert!(missing.is_empty(), "{fs}: human ls -r lacks {missing:?}");
        assert_eq!(ours.len(), want.len(), "{fs}: human ls -r line count");
    }
}

/// What diskray's error must say for an errno the kernel gave.
fn expected_error(c: &Value) -> Option<&'static str> {
    Some(match c["errno"].as_str()? {
        "ELOOP" => "too many levels of symbolic links",
        "ENOENT" if c["final_is_link"].as_bool().unwrap() => "dangling symlink",
        "ENOENT" => "no such file or directory",
        "EISDIR" => "is a directory",
        "ENOTDIR" => "not a directory",
        other => panic!("no expectation for {other}"),
    })
}

#[test]
fn cat_follows_symlinks_like_the_kernel() {
    let mut failures = Vec::new();
    for fs in FILESYSTEMS {
        let t = truth(fs);
        let img = image(fs);
        for c in t["cat"].as_array().unwrap() {
            if c["escapes"].as_bool().unwrap() {
                continue;
            }
            let path = truth_bytes(c, "path");
            let out = run(&[os("cat"), img.as_os_str(), OsStr::from_bytes(&path)]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            if let Some(want) = c["sha256"].as_str() {
                let got = sha256(&out.stdout);
                if !out.status.success() || got != want {
                    failures.push(format!(
                        "{fs}: cat {}: {got} vs {want}: {stderr}",
                        show(&path)
                    ));
                }
            } else {
                let want = expected_error(c).unwrap();
                if out.status.code() != Some(1) || !stderr.to_lowercase().contains(want) {
                    failures.push(format!(
                        "{fs}: cat {}: the kernel says {}, want an error with {want:?}, got {:?}: {stderr}",
                        show(&path),
                        c["errno"],
                        out.status.code()
                    ));
                }
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

#[test]
fn ls_of_a_symlink_lists_the_link_itself() {
    let mut failures = Vec::new();
    for fs in FILESYSTEMS {
        let t = truth(fs);
        for e in t["entries"].as_array().unwrap() {
            if e["type"] != "symlink" {
                continue;
            }
            let path = truth_bytes(e, "path");
            // The same link reached through `..` and a symlinked directory on the way.
            let mut roundabout = b"/link-dir/..".to_vec();
            roundabout.extend_from_slice(&path);
            for asked in [&path, &roundabout] {
                let ours = ls_json(fs, asked, false);
                let ok = ours.len() == 1
                    && ours[0]["type"] == "symlink"
                    && ours[0]["inode"] == e["inode"]
                    && json_bytes(&ours[0], "path") == path;
                if !ok {
                    failures.push(format!("{fs}: ls {}: {ours:?}", show(asked)));
                }
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

#[test]
fn ls_resolves_dots_and_symlinked_directories() {
    let mut failures = Vec::new();
    for fs in FILESYSTEMS {
        let t = truth(fs);
        let img = image(fs);
        for l in t["listings"].as_array().unwrap() {
            let path = truth_bytes(l, "path");
            let Some(want) = l["entries"].as_array() else {
                let out = run(&[os("ls"), img.as_os_str(), OsStr::from_bytes(&path)]);
                if out.status.code() != Some(1) {
                    failures.push(format!(
                        "{fs}: ls {} should fail ({})",
                        show(&path),
                        l["errno"]
                    ));
                }
                continue;
            };
            let want: BTreeSet<(Vec<u8>, u64)> = want
                .iter()
                .map(|e| (truth_bytes(e, "name"), e["inode"].as_u64().unwrap()))
                .collect();
            let ours: BTreeSet<(Vec<u8>, u64)> = ls_json(fs, &path, false)
                .iter()
                .map(|e| (json_bytes(e, "name"), e["inode"].as_u64().unwrap()))
                .collect();
            if ours != want {
                failures.push(format!(
                    "{fs}: ls {}: {} entries vs the kernel's {}; first differences: {:?} / {:?}",
                    show(&path),
                    ours.len(),
                    want.len(),
                    ours.difference(&want).next().map(|(n, i)| (show(n), i)),
                    want.difference(&ours).next().map(|(n, i)| (show(n), i)),
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

/// Starts diskray with stdout piped, reads a little, closes the pipe while diskray still
/// has more to write (more than a pipe holds), and expects a quiet exit 0.
fn closed_stdout_ends_quietly(args: &[&OsStr]) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_diskray"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 100];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "diskray {args:?} | head: {:?}, stderr {:?}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let img = image("ext4");
    let img = img.as_os_str();
    // ls -r writes about 110 KB, ls --json about 400 KB, cat /big.bin 8 MiB: all more
    // than a pipe holds (64 KiB), so diskray writes after the reader is gone.
    closed_stdout_ends_quietly(&[os("ls"), os("-r"), img]);
    closed_stdout_ends_quietly(&[os("ls"), os("-r"), os("--json"), img]);
    closed_stdout_ends_quietly(&[os("cat"), img, os("/big.bin")]);
}

#[test]
fn every_command_ends_quietly_on_a_closed_stdout() {
    let img = image("ext4");
    let img = img.as_os_str();
    let cases: Vec<Vec<&OsStr>> = vec![
        vec![os("info"), img],
        vec![os("info"), os("--json"), img],
        vec![os("map"), img],
        vec![os("map"), os("--json"), img],
        vec![os("partitions"), img],
        vec![os("partitions"), os("--json"), img],
        vec![os("report"), img],
        vec![os("report"), os("--json"), img],
        vec![os("blocks"), os("--state"), os("used"), img],
        vec![os("blocks"), os("--json"), os("--state"), os("free"), img],
        vec![os("ls"), img],
        vec![os("ls"), os("--json"), img],
        vec![os("cat"), img, os("/dir1/file1.txt")],
        vec![os("changes"), os("diff"), img, img],
    ];
    let mut failures = Vec::new();
    for args in cases {
        // The reading end is closed before diskray starts: its first write fails.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_diskray"))
            .args(&args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        if !out.status.success() || !out.stderr.is_empty() {
            failures.push(format!(
                "diskray {args:?} >closed pipe: {:?}, stderr {:?}",
                out.status,
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

#[test]
fn a_damaged_remote_xfs_symlink_is_refused_cleanly() {
    // Where /link-slow's block lies (diskray's own extents: only to find what to damage).
    let entries = ls_json("xfs", b"/link-slow", false);
    let at = entries[0]["extents"][0]["start"].as_u64().unwrap();
    let dir = scratch("interop_paths_xfs_symlink");
    for (what, offset, bytes) in [
        ("a length past the block", 8u64, &[0xff_u8; 4][..]),
        ("no XSLM header", 0, b"JUNK"),
    ] {
        let img = dir.join("xfs.img");
        std::fs::copy(fixture_dir().join("xfs-paths.img"), &img).unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, bytes, at + offset).unwrap();
        drop(f);
        let out = run(&[os("cat"), img.as_os_str(), os("/link-slow")]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked"),
            "{what}: diskray panicked: {stderr}"
        );
        match what {
            "no XSLM header" => assert!(
                out.status.code() == Some(1) && stderr.contains("XSLM"),
                "{what}: {:?} {stderr}",
                out.status
            ),
            // The length is bounded by the block: the target is read as far as it goes.
            _ => assert_eq!(out.status.code(), Some(0), "{what}: {stderr}"),
        }
    }
}
