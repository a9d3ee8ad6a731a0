//! The client against `qemu-nbd`: block status of a named metadata context
//! (`qemu:dirty-bitmap:NAME`, the seam for backups from dirty bitmaps) equals what qemu's
//! own NBD client reads from the same server (`qemu-img map` with `x-dirty-bitmap`).
//! Needs qemu-utils (`.ci/run` installs it).

use diskray_core::ByteRange;
use diskray_nbd::NbdDisk;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().expect(cmd);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd} {args:?}: {err}");
    String::from_utf8(out.stdout).unwrap()
}

/// Waits (bounded) until `socket` accepts connections.
fn wait_for(socket: &Path) {
    let start = Instant::now();
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "qemu-nbd did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn dirty_bitmap_extents_equal_qemus_own_client() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("b.qcow2");
    let img_s = img.to_str().unwrap();
    run("qemu-img", &["create", "-q", "-f", "qcow2", img_s, "64M"]);
    run("qemu-img", &["bitmap", "--add", img_s, "b0"]);
    for cmd in ["write 4M 128k", "write 40M 4k", "write 63M 1M"] {
        run("qemu-io", &["-f", "qcow2", "-c", cmd, img_s]);
    }
    let socket = dir.path().join("s");
    let server = Command::new("qemu-nbd")
        .args([
            "--persistent",
            "--read-only",
            "--shared=2",
            "-x",
            "disk",
            "-f",
            "qcow2",
        ])
        .args(["-B", "b0", &format!("--socket={}", socket.display()), img_s])
        .stdin(Stdio::null())
        .spawn()
        .map(Server)
        .expect("qemu-nbd (apt-get install qemu-utils)");
    wait_for(&socket);

    let context = "qemu:dirty-bitmap:b0";
    let uri = format!("nbd+unix:///disk?socket={}", socket.display());
    let disk = NbdDisk::open(&uri, &[context]).unwrap();
    assert_eq!(disk.contexts(), ["base:allocation", context]);
    let ours: Vec<(u64, u64)> = disk
        .extents(context, ByteRange::new(0, 64 << 20))
        .unwrap()
        .into_iter()
        .filter(|e| e.flags & 1 != 0)
        .map(|e| (e.start, e.length))
        .collect();
    drop(disk);

    // qemu's client prints a dirty bitmap as a map whose dirty entries have no data.
    let opts = format!(
        "driver=nbd,server.type=unix,server.path={},export=disk,x-dirty-bitmap={context}",
        socket.display()
    );
    let out = run("qemu-img", &["map", "--output=json", "--image-opts", &opts]);
    let entries: Vec<Value> = serde_json::from_str(&out).unwrap();
    let mut theirs: Vec<(u64, u64)> = Vec::new();
    for e in entries.iter().filter(|e| e["data"] == false) {
        let (s, l) = (e["start"].as_u64().unwrap(), e["length"].as_u64().unwrap());
        match theirs.last_mut() {
            Some(last) if last.0 + last.1 == s => last.1 += l,
            _ => theirs.push((s, l)),
        }
    }
    assert_eq!(ours, theirs);
    // And the writes are where they were made (64 KiB granularity).
    assert_eq!(
        ours,
        [
            (4 << 20, 128 << 10),
            (40 << 20, 64 << 10),
            (63 << 20, 1 << 20)
        ]
    );
    drop(server);
}
