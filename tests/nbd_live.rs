//! diskray over NBD against the real thing: `qemu-nbd` serving fixtures (raw and qcow2).
//! `map` equals `qemu-img map --output=json` of the same file; `convert` equals the file
//! (or `qemu-img convert` of the qcow2); `partitions`, `report`, `ls`, `cat` and `backup`
//! over NBD equal the same commands on the file; `diskray serve` read by qemu-img and
//! libnbd's nbdcopy and nbdinfo. Needs qemu-utils and libnbd-bin (`.ci/run` installs them).

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to start listening.
const START_WAIT: Duration = Duration::from_secs(20);

/// A `qemu-nbd` serving one file, killed when dropped.
struct QemuNbd {
    child: Child,
    socket: PathBuf,
}

impl QemuNbd {
    /// Serves `file` (format `fmt`) read-only on a Unix socket in `dir`, as export `disk`,
    /// to up to `shared` clients at once.
    fn serve(dir: &Path, file: &Path, fmt: &str, shared: u32) -> QemuNbd {
        Self::serve_with(dir, file, fmt, shared, &[])
    }

    /// [`QemuNbd::serve`] with more `qemu-nbd` options (`-B BITMAP`).
    fn serve_with(dir: &Path, file: &Path, fmt: &str, shared: u32, more: &[&str]) -> QemuNbd {
        let socket = dir.join(format!("nbd-{shared}.sock"));
        let _ = std::fs::remove_file(&socket);
        let child = Command::new("qemu-nbd")
            .args(["--persistent", "--read-only", "-x", "disk", "-f", fmt])
            .args(more)
            .arg(format!("--shared={shared}"))
            .arg(format!("--socket={}", socket.display()))
            .arg(file)
            .stdin(Stdio::null())
            .spawn()
            .expect("qemu-nbd (apt-get install qemu-utils)");
        let server = QemuNbd { child, socket };
        let start = Instant::now();
        while std::os::unix::net::UnixStream::connect(&server.socket).is_err() {
            assert!(
                start.elapsed() < START_WAIT,
                "qemu-nbd did not start listening"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// Serves `file` read-only over TCP on 127.0.0.1 at a port that was free a moment ago.
    fn serve_tcp(file: &Path, fmt: &str) -> (QemuNbd, String) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let child = Command::new("qemu-nbd")
            .args(["--persistent", "--read-only", "-x", "disk", "-f", fmt])
            .args(["-b", "127.0.0.1", "-p", &port.to_string()])
            .arg(file)
            .stdin(Stdio::null())
            .spawn()
            .expect("qemu-nbd (apt-get install qemu-utils)");
        let server = QemuNbd {
            child,
            socket: PathBuf::new(),
        };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < START_WAIT,
                "qemu-nbd did not start listening"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        (server, format!("nbd://127.0.0.1:{port}/disk"))
    }

    fn uri(&self) -> String {
        format!("nbd+unix:///disk?socket={}", self.socket.display())
    }
}

impl Drop for QemuNbd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `(start, length, state)` runs, adjacent equal states merged.
fn merged(runs: impl IntoIterator<Item = (u64, u64, String)>) -> Vec<(u64, u64, String)> {
    let mut out: Vec<(u64, u64, String)> = Vec::new();
    for (start, length, state) in runs {
        match out.last_mut() {
            Some(last) if last.2 == state && last.0 + last.1 == start => last.1 += length,
            _ => out.push((start, length, state)),
        }
    }
    out
}

/// `qemu-img map --output=json` of `file` as diskray's states: what qemu calls no data
/// is a hole (`unallocated`), data reading as zeros `zero`, the rest `data`; this is what
/// qemu's NBD server turns into `NBD_STATE_HOLE` and `NBD_STATE_ZERO`.
fn qemu_map(file: &Path, fmt: &str) -> Vec<(u64, u64, String)> {
    let out = run(
        "qemu-img",
        &["map", "--output=json", "-f", fmt, file.to_str().unwrap()],
    );
    let entries: Vec<Value> = serde_json::from_str(&out).unwrap();
    merged(entries.iter().map(|e| {
        let state = match (e["data"].as_bool().unwrap(), e["zero"].as_bool().unwrap()) {
            (false, _) => "unallocated",
            (true, true) => "zero",
            (true, false) => "data",
        };
        let n = |k: &str| e[k].as_u64().unwrap();
        (n("start"), n("length"), state.to_string())
    }))
}

/// `diskray map --json` of `disk` as runs.
fn our_map(disk: &str) -> Vec<(u64, u64, String)> {
    let doc: Value = serde_json::from_str(&diskray_ok(&["map", "--json", disk])).unwrap();
    merged(doc["ranges"].as_array().unwrap().iter().map(|r| {
        let n = |k: &str| r[k].as_u64().unwrap();
        let state = r["state"].as_str().unwrap().to_string();
        (n("start"), n("length"), state)
    }))
}

/// The GPT fixture (ext4, FAT32, NTFS) as a sparse raw file.
fn gpt_raw() -> PathBuf {
    guest_fixtures().join("images/gpt-disk.raw")
}

/// `raw` converted to the qcow2 `out` by qemu-img.
fn qcow2_of(raw: &Path, out: &Path) {
    let (r, o) = (raw.to_str().unwrap(), out.to_str().unwrap());
    run("qemu-img", &["convert", "-f", "raw", "-O", "qcow2", r, o]);
}

/// A qcow2 made from the GPT fixture, with zeroed clusters (allocated zeros), a cluster
/// written with zeros as data, and unallocated space.
fn gpt_qcow2(dir: &Path) -> PathBuf {
    let q = dir.join("gpt.qcow2");
    let q_s = q.to_str().unwrap().to_string();
    qcow2_of(&gpt_raw(), &q);
    // Past the filesystems (the last partition ends at 76.5 MiB; the disk is 82 MiB).
    for cmd in [
        "write -z 79M 192k",
        "write -P 0 80M 64k",
        "write -P 7 81M 4k",
    ] {
        run("qemu-io", &["-f", "qcow2", "-c", cmd, &q_s]);
    }
    q
}

#[test]
fn map_over_nbd_equals_qemu_img_map() {
    let dir = scratch("nbd_map");
    let raw = gpt_raw();
    let server = QemuNbd::serve(&dir, &raw, "raw", 1);
    let want = qemu_map(&raw, "raw");
    assert!(want.iter().any(|r| r.2 == "unallocated"), "{want:?}");
    assert_eq!(our_map(&server.uri()), want);
    drop(server);
    // The same over TCP (qemu-nbd took a connection to see it listening: with one client
    // at a time it serves ours after that one is closed).
    let (server, uri) = QemuNbd::serve_tcp(&raw, "raw");
    assert_eq!(our_map(&uri), want);
    drop(server);

    let q = gpt_qcow2(&dir);
    let server = QemuNbd::serve(&dir, &q, "qcow2", 1);
    let want = qemu_map(&q, "qcow2");
    // qemu reports a zeroed qcow2 cluster as no data (a hole reading as zeros).
    let zeroed = want
        .iter()
        .find(|r| r.0 <= 79 << 20 && r.0 + r.1 >= (79 << 20) + (192 << 10));
    assert_eq!(
        zeroed.map(|r| r.2.as_str()),
        Some("unallocated"),
        "{want:?}"
    );
    assert!(
        want.iter().any(|r| r.0 <= 81 << 20 && r.2 == "data"),
        "{want:?}"
    );
    assert_eq!(our_map(&server.uri()), want);
}

#[test]
fn content_over_nbd_equals_the_file() {
    let dir = scratch("nbd_content");
    let raw = gpt_raw();
    // Several connections: qemu-nbd advertises NBD_FLAG_CAN_MULTI_CONN with --shared > 1.
    let server = QemuNbd::serve(&dir, &raw, "raw", 4);
    let uri = server.uri();
    let info: Value = serde_json::from_str(&diskray_ok(&["info", "--json", &uri])).unwrap();
    assert_eq!(info["format"], "nbd");
    assert_eq!(info["capacity"], std::fs::metadata(&raw).unwrap().len());
    assert_eq!(info["nbd"]["connections"], 4, "{info}");
    assert_eq!(info["nbd"]["contexts"][0], "base:allocation");
    // The JSON contract of the `nbd` object: every key, with what qemu-nbd says.
    let nbd = info["nbd"].as_object().unwrap();
    let keys: Vec<&str> = nbd.keys().map(String::as_str).collect();
    let want = ["flags", "min_block", "preferred_block", "max_block"];
    let rest = ["structured_replies", "contexts", "connections"];
    assert_eq!(keys, [&want[..], &rest[..]].concat());
    let flags = nbd["flags"].as_array().unwrap();
    assert!(
        flags.contains(&"read-only".into()) && flags.contains(&"multi-conn".into()),
        "{info}"
    );
    assert_eq!(nbd["structured_replies"], true);
    let out = dir.join("over-nbd.raw");
    diskray_ok(&["convert", &uri, out.to_str().unwrap()]);
    assert_eq!(sha256_file(&out), sha256_file(&raw));
    drop(server);

    // A qcow2 served by qemu-nbd reads as qemu-img converts it.
    let q = gpt_qcow2(&dir);
    let server = QemuNbd::serve(&dir, &q, "qcow2", 1);
    let truth = dir.join("qemu.raw");
    run(
        "qemu-img",
        &[
            "convert",
            "-f",
            "qcow2",
            "-O",
            "raw",
            q.to_str().unwrap(),
            truth.to_str().unwrap(),
        ],
    );
    diskray_ok(&["convert", &server.uri(), out.to_str().unwrap()]);
    assert_eq!(sha256_file(&out), sha256_file(&truth));
}

#[test]
fn commands_over_nbd_equal_the_same_on_the_file() {
    let dir = scratch("nbd_commands");
    let raw = gpt_raw();
    let file = raw.to_str().unwrap();
    let server = QemuNbd::serve(&dir, &raw, "raw", 1);
    let uri = server.uri();
    let same = |args: &[&str]| {
        let on = |disk: &str| {
            let args: Vec<&str> = args
                .iter()
                .map(|a| if *a == "DISK" { disk } else { a })
                .collect();
            let out = diskray(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "diskray {args:?}: {err}");
            // Text names the disk: make it the same word for both; file data stays bytes.
            match String::from_utf8(out.stdout) {
                Ok(text) => text.replace(disk, "DISK").into_bytes(),
                Err(bytes) => bytes.into_bytes(),
            }
        };
        let (a, b) = (on(file), on(&uri));
        assert!(b == a, "diskray {args:?} over NBD differs from the file");
        String::from_utf8_lossy(&a).into_owned()
    };
    same(&["partitions", "--json", "DISK"]);
    let report = same(&["report", "--json", "DISK"]);
    assert!(report.contains("\"ntfs\""), "{report}");
    same(&["blocks", "--state", "residue", "DISK"]);
    for p in ["1", "2", "3"] {
        let listing = same(&["ls", "-r", "--json", "DISK", "-p", p, "/"]);
        let doc: Value = serde_json::from_str(&listing).unwrap();
        let files: Vec<&str> = doc["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "file")
            .filter_map(|e| e["path"].as_str())
            .take(3)
            .collect();
        assert!(!files.is_empty(), "partition {p}: {listing}");
        for f in files {
            same(&["cat", "DISK", "-p", p, f]);
        }
    }

    // A backup from the export restores to the same disk as one from the file.
    let repo = dir.join("repo");
    let (r, nbd_out, file_out) = (
        repo.to_str().unwrap(),
        dir.join("nbd.raw"),
        dir.join("file.raw"),
    );
    diskray_ok(&["backup", &uri, "--repo", r, "--name", "over-nbd"]);
    diskray_ok(&["backup", file, "--repo", r, "--name", "from-file"]);
    diskray_ok(&[
        "restore",
        "--repo",
        r,
        "over-nbd",
        nbd_out.to_str().unwrap(),
    ]);
    diskray_ok(&[
        "restore",
        "--repo",
        r,
        "from-file",
        file_out.to_str().unwrap(),
    ]);
    assert_eq!(sha256_file(&nbd_out), sha256_file(&file_out));
}

#[test]
fn nbd_errors_are_clear() {
    let dir = scratch("nbd_errors");
    let raw = gpt_raw();
    let server = QemuNbd::serve(&dir, &raw, "raw", 1);
    let wrong = server.uri().replace("///disk", "///nosuch");
    let out = diskray(&["info", &wrong]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no such export") && err.contains(&wrong),
        "{err}"
    );
    drop(server);
    let out = diskray(&["map", "nbds://localhost/disk"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TLS needs ?tls-certificates=DIR"), "{err}");
    let gone = dir.join("gone.sock");
    let out = diskray(&["info", &format!("nbd+unix:///?socket={}", gone.display())]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("connecting to") && err.contains("gone.sock"),
        "{err}"
    );
}

/// The noise of `len` bytes from `seed`.
fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// A disk of `size` bytes of noise (`seed`) in `dir` as raw and as qcow2, with a full
/// backup (series `vm`) of the qcow2 served by qemu-nbd: (raw, qcow2, repository).
fn qcow2_backed_up(dir: &Path, size: usize, seed: u32) -> (PathBuf, PathBuf, PathBuf) {
    let raw = dir.join("d.raw");
    std::fs::write(&raw, noise(size, seed)).unwrap();
    let q = dir.join("d.qcow2");
    qcow2_of(&raw, &q);
    let repo = dir.join("repo");
    let server = QemuNbd::serve(dir, &q, "qcow2", 1);
    diskray_ok(&[
        "backup",
        &server.uri(),
        "--repo",
        repo.to_str().unwrap(),
        "--name",
        "vm",
    ]);
    (raw, q, repo)
}

#[test]
fn an_incremental_from_a_qemu_dirty_bitmap_reads_what_it_marks() {
    let dir = scratch("nbd-bitmap");
    let (raw, q, repo) = qcow2_backed_up(&dir, 8 << 20, 5);
    let (qs, r) = (q.to_str().unwrap(), repo.to_str().unwrap());
    // The guest writes 64 KiB at 1 MiB and 4 KiB at 5 MiB, tracked by a persistent bitmap
    // of QEMU's default 64 KiB granularity.
    run("qemu-img", &["bitmap", "--add", "-f", "qcow2", qs, "b0"]);
    let w = [
        "-f",
        "qcow2",
        "-c",
        "write -P 0x55 1M 64k",
        "-c",
        "write -P 0x66 5M 4k",
        qs,
    ];
    run("qemu-io", &w);
    let server = QemuNbd::serve_with(&dir, &q, "qcow2", 1, &["-B", "b0"]);
    let uri = server.uri();
    let doc: Value = serde_json::from_str(&diskray_ok(&[
        "backup",
        &uri,
        "--repo",
        r,
        "--name",
        "vm",
        "--changes",
        "nbd-bitmap:b0",
        "--json",
    ]))
    .unwrap();
    let st = &doc["stats"];
    assert_eq!(st["change_source"], "cbt", "{st}");
    let read = st["read_from_source"].as_u64().unwrap();
    assert!(
        ((64 << 10) + (4 << 10)..=128 << 10).contains(&read),
        "read {read} B for two dirty 64 KiB blocks: {st}"
    );
    assert!(st["from_parent"].as_u64().unwrap() > 0, "{st}");
    // The incremental is the disk as it is now.
    let now = dir.join("now.raw");
    run(
        "qemu-img",
        &[
            "convert",
            "-f",
            "qcow2",
            "-O",
            "raw",
            qs,
            now.to_str().unwrap(),
        ],
    );
    let out = dir.join("restored.raw");
    diskray_ok(&["restore", "--repo", r, "vm", out.to_str().unwrap()]);
    assert!(
        std::fs::read(&out).unwrap() == std::fs::read(&now).unwrap(),
        "restore differs"
    );
    // A bitmap the export does not offer, or a disk that is not NBD: clear errors.
    for (disk, bitmap, needle) in [
        (uri.as_str(), "nbd-bitmap:nope", "qemu:dirty-bitmap:nope"),
        (raw.to_str().unwrap(), "nbd-bitmap:b0", "NBD disk"),
    ] {
        let out = diskray(&[
            "backup",
            disk,
            "--repo",
            r,
            "--name",
            "vm",
            "--changes",
            bitmap,
        ]);
        assert_eq!(out.status.code(), Some(1), "{bitmap}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{err}");
    }
}

/// Two real QEMU bitmaps tracking the same writes, one of 64 KiB granularity and one of
/// 4 MiB (coarser than the repository's 1 MiB chunks): both incrementals equal the disk;
/// the coarse one reads its 4 MiB granules and says so, naming the bitmap and the
/// alignment its extents show; the fine one reads what was written and says nothing.
#[test]
fn a_dirty_bitmap_coarser_than_a_chunk_is_said_never_silent() {
    let dir = scratch("nbd-bitmap-granularity");
    let (_, q, repo) = qcow2_backed_up(&dir, 32 << 20, 11);
    let (qs, r) = (q.to_str().unwrap(), repo.to_str().unwrap());
    for (name, granularity) in [("fine", "64K"), ("coarse", "4M")] {
        let g = [
            "bitmap",
            "--add",
            "-f",
            "qcow2",
            "-g",
            granularity,
            qs,
            name,
        ];
        run("qemu-img", &g);
    }
    // 4 KiB inside the granule at 9 MiB + 64 KiB and 4 KiB at 21 MiB + 192 KiB: odd
    // multiples of 64 KiB, inside 4 MiB granules 8-12 MiB and 20-24 MiB.
    let w = [
        "-f",
        "qcow2",
        "-c",
        "write -P 0x5a 9280k 4k",
        "-c",
        "write -P 0x6b 21696k 4k",
        qs,
    ];
    run("qemu-io", &w);
    let now = dir.join("now.raw");
    let convert = [
        "convert",
        "-f",
        "qcow2",
        "-O",
        "raw",
        qs,
        now.to_str().unwrap(),
    ];
    run("qemu-img", &convert);
    let want = std::fs::read(&now).unwrap();
    let server = QemuNbd::serve_with(&dir, &q, "qcow2", 1, &["-B", "fine", "-B", "coarse"]);
    for (name, lo, hi) in [
        ("coarse", 8 << 20, 8 << 20),
        ("fine", 2 * (4 << 10), 2 * (64 << 10)),
    ] {
        let out = diskray(&[
            "backup",
            &server.uri(),
            "--repo",
            r,
            "--name",
            "vm",
            "--changes",
            &format!("nbd-bitmap:{name}"),
            "--json",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        let st = &doc["stats"];
        let read = st["read_from_source"].as_u64().unwrap();
        assert!((lo..=hi).contains(&read), "{name}: read {read} B: {st}");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stderr),
            doc["warnings"]
        );
        let warned = said.contains("dirty bitmap coarse") && said.contains("multiples of 4.0 MiB");
        assert_eq!(warned, name == "coarse", "{name}: {said}");
        assert!(!said.contains("dirty bitmap fine"), "{said}");
        let restored = dir.join(format!("{name}.raw"));
        diskray_ok(&["restore", "--repo", r, "vm", restored.to_str().unwrap()]);
        assert!(
            std::fs::read(&restored).unwrap() == want,
            "{name}: restore differs"
        );
    }
}

/// `diskray serve` of `image` in `repo` on the Unix socket `dir/SOCK`, with `more`
/// options, killed when dropped.
fn diskray_serve_with(dir: &Path, sock: &str, repo: &str, image: &str, more: &[&str]) -> QemuNbd {
    let socket = dir.join(sock);
    let _ = std::fs::remove_file(&socket);
    let child = Command::new(env!("CARGO_BIN_EXE_diskray"))
        .args(["serve", "--repo", repo, image, "--listen"])
        .arg(format!("unix:{}", socket.display()))
        .args(more)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = QemuNbd { child, socket };
    let start = Instant::now();
    while std::os::unix::net::UnixStream::connect(&server.socket).is_err() {
        assert!(start.elapsed() < START_WAIT, "diskray serve did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

/// `diskray serve` of `image`, read-only, on `dir/serve.sock`.
fn diskray_serve(dir: &Path, repo: &str, image: &str) -> QemuNbd {
    diskray_serve_with(dir, "serve.sock", repo, image, &[])
}

#[test]
fn serve_exports_an_image_to_qemu_and_survives_hostile_clients() {
    use std::io::{Read, Write};
    let dir = scratch("nbd-serve");
    let repo = dir.join("repo");
    let r = repo.to_str().unwrap();
    let disk = gpt_raw();
    let doc: Value = serde_json::from_str(&diskray_ok(&[
        "backup",
        disk.to_str().unwrap(),
        "--repo",
        r,
        "--name",
        "g",
        "--json",
    ]))
    .unwrap();
    let id = doc["image"].as_str().unwrap().to_string();
    let restored = dir.join("restored.raw");
    diskray_ok(&["restore", "--repo", r, "g", restored.to_str().unwrap()]);
    let want = std::fs::read(&restored).unwrap();
    let server = diskray_serve(&dir, r, "g");
    let sock = server.socket.display().to_string();

    // 100 connections at once, one sending garbage after the greeting: the server answers
    // what it can and keeps serving.
    let mut held = Vec::new();
    for _ in 0..100 {
        if let Ok(s) = std::os::unix::net::UnixStream::connect(&server.socket) {
            held.push(s);
        }
    }
    let mut rude = std::os::unix::net::UnixStream::connect(&server.socket).unwrap();
    rude.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut greeting = [0u8; 18];
    let _ = rude.read_exact(&mut greeting);
    let _ = rude.write_all(&[0xff; 64]);
    drop(held);
    // A client that asks for the whole disk and goes away before the reply is read.
    {
        let mut gone = std::os::unix::net::UnixStream::connect(&server.socket).unwrap();
        gone.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = gone.read_exact(&mut greeting);
        let mut hello = 3u32.to_be_bytes().to_vec(); // fixed newstyle, no zeroes
        let opt = |o: u32, d: &[u8]| {
            let mut v = 0x4948_4156_454f_5054u64.to_be_bytes().to_vec();
            v.extend_from_slice(&o.to_be_bytes());
            v.extend_from_slice(&(d.len() as u32).to_be_bytes());
            v.extend_from_slice(d);
            v
        };
        hello.extend(opt(1, b"")); // NBD_OPT_EXPORT_NAME ""
        let mut read = 0x2560_9513u32.to_be_bytes().to_vec();
        read.extend_from_slice(&[0, 0, 0, 0]);
        read.extend_from_slice(&7u64.to_be_bytes());
        read.extend_from_slice(&0u64.to_be_bytes());
        read.extend_from_slice(&(want.len() as u32).min(32 << 20).to_be_bytes());
        hello.extend(read);
        let _ = gone.write_all(&hello);
    }
    // The server refuses clients beyond its limit (64) while the threads of the 100 end,
    // which on a loaded machine takes a moment: wait, at most 10 s, until a new client is
    // greeted again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut probe = std::os::unix::net::UnixStream::connect(&server.socket).unwrap();
        probe
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        if probe.read_exact(&mut greeting).is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server greeted no client for 10 s after the hostile ones"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // qemu-img reads the export by its id and as the default export.
    for export in [id.as_str(), ""] {
        let uri = format!("nbd+unix:///{export}?socket={sock}");
        let out = dir.join(format!("q{}.raw", export.len()));
        run(
            "qemu-img",
            &[
                "convert",
                "-f",
                "raw",
                "-O",
                "raw",
                &uri,
                out.to_str().unwrap(),
            ],
        );
        assert!(
            std::fs::read(&out).unwrap() == want,
            "{export:?}: differs from restore"
        );
    }
    // Its map: every range without data reads as zeros in the restored disk.
    let uri = format!("nbd+unix:///?socket={sock}");
    let map: Value =
        serde_json::from_str(&run("qemu-img", &["map", "--output=json", &uri])).unwrap();
    let mut holes = 0;
    for e in map.as_array().unwrap() {
        let (s, l) = (
            e["start"].as_u64().unwrap() as usize,
            e["length"].as_u64().unwrap() as usize,
        );
        if e["data"] == false {
            holes += l;
            assert!(
                want[s..s + l].iter().all(|&b| b == 0),
                "hole at {s} holds data"
            );
        }
    }
    assert!(holes > 0, "the export shows its zero chunks as holes");
    // libnbd's tools as second clients: nbdcopy (several connections: the export says
    // CAN_MULTI_CONN) equals restore, and nbdinfo --map's holes read as zeros.
    let copied = dir.join("nbdcopy.raw");
    run("nbdcopy", &[&uri, copied.to_str().unwrap()]);
    assert!(
        std::fs::read(&copied).unwrap() == want,
        "nbdcopy differs from restore"
    );
    let listed = run("nbdinfo", &["--map", &uri]);
    for line in listed.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (s, l): (usize, usize) = (f[0].parse().unwrap(), f[1].parse().unwrap());
        if line.contains("hole") {
            assert!(
                want[s..s + l].iter().all(|&b| b == 0),
                "nbdinfo hole at {s}"
            );
        }
    }
    assert!(listed.contains("hole,zero"), "{listed}");
    // A read past the end is an error for that request only (our own client).
    let cap = want.len() as u64;
    let d = diskray_nbd::NbdDisk::open(&uri, &[]).unwrap();
    let mut buf = vec![0u8; 4096];
    assert!(diskray_core::VirtualDisk::read_at(&d, &mut buf, cap - 100).is_err());
    diskray_core::VirtualDisk::read_at(&d, &mut buf, 0).unwrap();
    assert_eq!(buf, want[..4096]);
    // An export of another name is refused by name.
    let out = Command::new("qemu-img")
        .args(["info", &format!("nbd+unix:///nosuch?socket={sock}")])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// Several requests in flight on one connection, answered by the server's workers in any
/// order: our client (16 requests of 2 MiB in flight for one large read, and four threads
/// reading at once) and nbdcopy (one connection, 16 requests) get the source disk's bytes.
#[test]
fn serve_answers_requests_in_flight_with_the_right_bytes() {
    let dir = scratch("nbd-serve-inflight");
    // 40 MiB of noise with zero runs (stored as zero chunks, read as holes) between.
    let mut source = noise(40 << 20, 9);
    for (at, len) in [(3 << 20, 2 << 20), (17 << 20, 5 << 20), (39 << 20, 1 << 20)] {
        source[at..at + len].fill(0);
    }
    let raw = dir.join("src.raw");
    std::fs::write(&raw, &source).unwrap();
    let repo = dir.join("repo");
    let r = repo.to_str().unwrap();
    diskray_ok(&["backup", raw.to_str().unwrap(), "--repo", r, "--name", "n"]);
    let server = diskray_serve(&dir, r, "n");
    let uri = format!("nbd+unix:///?socket={}", server.socket.display());
    let d = diskray_nbd::NbdDisk::open(&uri, &[]).unwrap();
    let mut got = vec![0u8; source.len()];
    diskray_core::VirtualDisk::read_at(&d, &mut got, 0).unwrap();
    assert!(got == source, "one large read differs from the source");
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            let (d, source) = (&d, &source);
            scope.spawn(move || {
                let mut buf = vec![0u8; (3 << 20) + 4097];
                for i in 0..8u64 {
                    let at = ((t * 8 + i) * 1_234_567) % (source.len() - buf.len()) as u64;
                    diskray_core::VirtualDisk::read_at(d, &mut buf, at).unwrap();
                    let at = at as usize;
                    assert!(buf == source[at..at + buf.len()], "read at {at} differs");
                }
            });
        }
    });
    drop(d);
    let copied = dir.join("nbdcopy.raw");
    let c = copied.to_str().unwrap();
    run(
        "nbdcopy",
        &[
            "--connections=1",
            "--requests=16",
            "--request-size=1048576",
            &uri,
            c,
        ],
    );
    assert!(
        std::fs::read(&copied).unwrap() == source,
        "nbdcopy differs from the source"
    );
}

/// `diskray serve --overlay FILE` of `image`, on `dir/overlay.sock`.
fn diskray_serve_overlay(dir: &Path, repo: &str, image: &str, overlay: &Path) -> QemuNbd {
    let more = ["--overlay", overlay.to_str().unwrap()];
    diskray_serve_with(dir, "overlay.sock", repo, image, &more)
}

#[test]
fn serve_overlay_takes_writes_aside_and_keeps_them() {
    let dir = scratch("nbd-overlay");
    let repo = dir.join("repo");
    let r = repo.to_str().unwrap();
    let disk = gpt_raw();
    diskray_ok(&["backup", disk.to_str().unwrap(), "--repo", r, "--name", "g"]);
    let base = dir.join("base.raw");
    diskray_ok(&["restore", "--repo", r, "g", base.to_str().unwrap()]);
    let mut want = std::fs::read(&base).unwrap();
    let overlay = dir.join("overlay.img");
    // qemu-io writes through the export: a whole 64 KiB, and 100 bytes inside a block.
    {
        let server = diskray_serve_overlay(&dir, r, "g", &overlay);
        let uri = format!("nbd+unix:///?socket={}", server.socket.display());
        let w = [
            "-f",
            "raw",
            "-c",
            "write -P 0x77 1M 64k",
            "-c",
            "write -P 0x33 5000 100",
        ];
        run("qemu-io", &[&w[..], &["-c", "flush", &uri]].concat());
        want[1 << 20..(1 << 20) + (64 << 10)].fill(0x77);
        want[5000..5100].fill(0x33);
    }
    // A new server on the same overlay serves the writes over the image.
    let server = diskray_serve_overlay(&dir, r, "g", &overlay);
    let uri = format!("nbd+unix:///?socket={}", server.socket.display());
    let out = dir.join("now.raw");
    run(
        "qemu-img",
        &[
            "convert",
            "-f",
            "raw",
            "-O",
            "raw",
            &uri,
            out.to_str().unwrap(),
        ],
    );
    assert!(
        std::fs::read(&out).unwrap() == want,
        "the export is the image plus the writes"
    );
    drop(server);
    // The repository is untouched: verify is clean and the image restores as before.
    diskray_ok(&["verify", "--repo", r]);
    let again = dir.join("again.raw");
    diskray_ok(&["restore", "--repo", r, "g", again.to_str().unwrap()]);
    assert!(std::fs::read(&again).unwrap() == std::fs::read(&base).unwrap());
    // Without --overlay, writes are refused.
    let server = diskray_serve(&dir, r, "g");
    let uri = format!("nbd+unix:///?socket={}", server.socket.display());
    let w = Command::new("qemu-io")
        .args(["-f", "raw", "-c", "write -P 1 0 4k", &uri])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&w.stdout).to_string() + &String::from_utf8_lossy(&w.stderr);
    assert!(
        !w.status.success() || said.contains("ermission") || said.contains("read-only"),
        "{said}"
    );
}

/// `openssl`, quietly, asserting success.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A key and a certificate `NAME-cert.pem`/`NAME-key.pem` in `dir`, signed by `ca-*.pem`.
fn signed(dir: &Path, name: &str, cn: &str, ext: &str) {
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    let (key, csr, cert) = (
        format!("{name}-key.pem"),
        format!("{name}.csr"),
        format!("{name}-cert.pem"),
    );
    let subj = format!("/CN={cn}");
    openssl(
        dir,
        &[
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", &subj, "-keyout", &key, "-out", &csr,
        ],
    );
    let ext = format!("{name}.ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca-cert.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &cert,
        ],
    );
}

#[test]
fn serve_over_tls_to_our_client_and_qemu_with_client_certificates() {
    let dir = scratch("nbd-serve-tls");
    let repo = dir.join("repo");
    let r = repo.to_str().unwrap();
    diskray_ok(&[
        "backup",
        gpt_raw().to_str().unwrap(),
        "--repo",
        r,
        "--name",
        "g",
    ]);
    let restored = dir.join("restored.raw");
    diskray_ok(&["restore", "--repo", r, "g", restored.to_str().unwrap()]);
    let want = std::fs::read(&restored).unwrap();
    let subj = "/CN=diskray test CA";
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            subj,
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca-cert.pem",
        ],
    );
    signed(
        &dir,
        "server",
        "localhost",
        "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n",
    );
    signed(&dir, "client", "diskray", "extendedKeyUsage=clientAuth\n");
    // The client's directory, laid out as tls-creds-x509 and libnbd expect.
    let (cli, bare) = (dir.join("cli"), dir.join("bare"));
    for d in [&cli, &bare] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::copy(dir.join("ca-cert.pem"), d.join("ca-cert.pem")).unwrap();
    }
    std::fs::copy(dir.join("client-cert.pem"), cli.join("client-cert.pem")).unwrap();
    std::fs::copy(dir.join("client-key.pem"), cli.join("client-key.pem")).unwrap();

    let pem = |n: &str| dir.join(n).display().to_string();
    let (cert, key, ca) = (
        pem("server-cert.pem"),
        pem("server-key.pem"),
        pem("ca-cert.pem"),
    );
    let tls = [
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--tls-client-ca",
        &ca,
    ];
    let server = diskray_serve_with(&dir, "tls.sock", r, "g", &tls);
    let sock = server.socket.display().to_string();
    // Our client, with a client certificate.
    let ours = dir.join("ours.raw");
    let uri = |certs: &Path| {
        format!(
            "nbds+unix:///?socket={sock}&tls-certificates={}",
            certs.display()
        )
    };
    diskray_ok(&["convert", &uri(&cli), ours.to_str().unwrap()]);
    assert!(
        std::fs::read(&ours).unwrap() == want,
        "over TLS, our client"
    );
    // qemu-img as the client (tls-creds-x509, endpoint=client).
    let theirs = dir.join("theirs.raw");
    let object = format!(
        "tls-creds-x509,id=tls0,dir={},endpoint=client",
        cli.display()
    );
    let image = format!(
        "driver=nbd,server.type=unix,server.path={sock},tls-creds=tls0,tls-hostname=localhost"
    );
    run(
        "qemu-img",
        &[
            "convert",
            "--object",
            &object,
            "--image-opts",
            &image,
            "-O",
            "raw",
            theirs.to_str().unwrap(),
        ],
    );
    assert!(
        std::fs::read(&theirs).unwrap() == want,
        "over TLS, qemu-img"
    );
    // Refused: a plain client (told TLS is required), a client without a certificate.
    let plain = diskray(&["info", &format!("nbd+unix:///?socket={sock}")]);
    assert!(String::from_utf8_lossy(&plain.stderr).contains("TLS_REQD"));
    let nocert = diskray(&["info", &uri(&bare)]);
    assert_eq!(nocert.status.code(), Some(1));
}
