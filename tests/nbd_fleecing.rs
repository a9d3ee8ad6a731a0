//! A running guest backed up the way libvirt's pull-mode backup does it, against the real
//! thing: `qemu-storage-daemon` serves a qcow2 disk with an ext4 filesystem; a test drives
//! it over QMP (a fleecing overlay, `blockdev-backup sync=none` into it, the fleecing node
//! exported over NBD with the checkpoint's dirty bitmap, a new bitmap started for the next
//! backup) while a "guest" keeps writing into a file through a second, writable export
//! with `qemu-io`. A full backup, guest writes, an incremental from the bitmap: the
//! restored disks equal the point-in-time content (as qemu-img reads the fleecing
//! exports) on every used block, free blocks are zero, and `e2fsck -fn` is clean.

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// qemu-storage-daemon, killed when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A QMP connection.
struct Qmp {
    out: UnixStream,
    input: BufReader<UnixStream>,
}

impl Qmp {
    fn connect(path: &Path) -> Qmp {
        let start = Instant::now();
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(_) if start.elapsed() < Duration::from_secs(20) => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => panic!("QMP socket: {e}"),
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut q = Qmp {
            out: stream.try_clone().unwrap(),
            input: BufReader::new(stream),
        };
        q.read(); // the greeting
        q.cmd("qmp_capabilities", json!({}));
        q
    }

    /// The next message that is not an event.
    fn read(&mut self) -> Value {
        loop {
            let mut line = String::new();
            self.input.read_line(&mut line).unwrap();
            let v: Value = serde_json::from_str(&line).unwrap();
            if v.get("event").is_none() {
                return v;
            }
        }
    }

    fn cmd(&mut self, name: &str, args: Value) -> Value {
        let msg = json!({"execute": name, "arguments": args});
        writeln!(self.out, "{msg}").unwrap();
        let r = self.read();
        assert!(r.get("error").is_none(), "{name}: {r}");
        r
    }

    /// libvirt's pull-mode backup start: a fleecing node over `disk0`, in one transaction
    /// with the bitmap changes, exported read-only as `export` with `bitmap` (if any).
    fn begin(&mut self, dir: &Path, n: u32, bitmap: Option<&str>) -> String {
        let file = dir.join(format!("fleece{n}.qcow2"));
        run(
            "qemu-img",
            &["create", "-q", "-f", "qcow2", s(&file), "64M"],
        );
        let node = format!("fleece{n}");
        self.cmd(
            "blockdev-add",
            json!({"driver": "qcow2", "node-name": node, "backing": "disk0",
                   "file": {"driver": "file", "filename": s(&file)}}),
        );
        let mut actions = Vec::new();
        if let Some(b) = bitmap {
            actions.push(
                json!({"type": "block-dirty-bitmap-disable", "data": {"node": "disk0", "name": b}}),
            );
        }
        let next = format!("cp{}", n + 1);
        actions.push(json!({"type": "block-dirty-bitmap-add", "data": {"node": "disk0", "name": next, "persistent": true}}));
        actions.push(json!({"type": "blockdev-backup", "data": {"device": "disk0", "target": node, "sync": "none", "job-id": format!("job{n}")}}));
        self.cmd("transaction", json!({"actions": actions}));
        let export = format!("fleece{n}");
        let bitmaps: Vec<Value> = bitmap
            .iter()
            .map(|b| json!({"node": "disk0", "name": b}))
            .collect();
        self.cmd(
            "block-export-add",
            json!({"type": "nbd", "id": format!("exp{n}"), "node-name": node, "name": export, "bitmaps": bitmaps}),
        );
        export
    }
}

/// The guest writes `pattern` over the first `len` bytes of the file's data (`blocks`:
/// its physical 4 KiB blocks, from debugfs) through the writable export.
fn guest_writes(uri: &str, blocks: &[u64], pattern: u8, count: usize) {
    let mut args = vec!["-f".to_string(), "raw".to_string()];
    for b in blocks.iter().take(count) {
        args.push("-c".into());
        args.push(format!("write -P {pattern} {} 4k", b * 4096));
    }
    args.push(uri.to_string());
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    run("qemu-io", &a);
}

/// Used 4 KiB blocks of an ext4 image, by dumpe2fs.
fn used_blocks(img: &Path) -> Vec<bool> {
    let out = run("dumpe2fs", &[s(img)]);
    let count: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("Block count:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut used = vec![true; count];
    for l in out
        .lines()
        .filter_map(|l| l.strip_prefix("  Free blocks: "))
    {
        for r in l.split(", ").filter(|r| !r.is_empty()) {
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
            used[a..=b].iter_mut().for_each(|u| *u = false);
        }
    }
    used
}

/// `restored` equals `truth` on every used block of `truth` and is zero elsewhere.
fn check(restored: &Path, truth: &Path, what: &str) {
    let (r, t) = (
        std::fs::read(restored).unwrap(),
        std::fs::read(truth).unwrap(),
    );
    assert_eq!(r.len(), t.len(), "{what}");
    for (i, used) in used_blocks(truth).into_iter().enumerate() {
        let (a, b) = (&r[i * 4096..(i + 1) * 4096], &t[i * 4096..(i + 1) * 4096]);
        if used {
            assert!(a == b, "{what}: used block {i} differs");
        } else {
            assert!(
                a.iter().all(|&x| x == 0),
                "{what}: free block {i} is not zero"
            );
        }
    }
    let fsck = Command::new("e2fsck")
        .args(["-fn", s(restored)])
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&fsck.stdout)
    );
}

#[test]
fn pull_mode_backup_of_a_running_guest_from_qemu_storage_daemon() {
    let dir = scratch("nbd-fleecing");
    // The guest's disk: ext4 with a file the guest rewrites, and one it leaves alone.
    let tree = dir.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let noise: Vec<u8> = (0..4u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(tree.join("db.bin"), &noise).unwrap();
    std::fs::write(tree.join("static.bin"), &noise[..1 << 20]).unwrap();
    let raw = dir.join("base.raw");
    let _ = std::fs::remove_file(&raw);
    run(
        "mkfs.ext4",
        &["-q", "-F", "-b", "4096", "-d", s(&tree), s(&raw), "64M"],
    );
    let blocks: Vec<u64> = run("debugfs", &["-R", "blocks /db.bin", s(&raw)])
        .split_whitespace()
        .map(|b| b.parse().unwrap())
        .collect();
    assert!(blocks.len() >= 1024, "db.bin's blocks");
    let disk = dir.join("disk.qcow2");
    run(
        "qemu-img",
        &["convert", "-f", "raw", "-O", "qcow2", s(&raw), s(&disk)],
    );

    let (qmp_sock, nbd_sock) = (dir.join("qmp.sock"), dir.join("nbd.sock"));
    let _ = std::fs::remove_file(&qmp_sock);
    let _ = std::fs::remove_file(&nbd_sock);
    let _daemon = Daemon(
        Command::new("qemu-storage-daemon")
            .args([
                "--blockdev",
                &format!("driver=file,node-name=file0,filename={}", s(&disk)),
            ])
            .args(["--blockdev", "driver=qcow2,node-name=disk0,file=file0"])
            .args([
                "--chardev",
                &format!("socket,path={},server=on,wait=off,id=qmp0", s(&qmp_sock)),
            ])
            .args(["--monitor", "chardev=qmp0"])
            .args([
                "--nbd-server",
                &format!("addr.type=unix,addr.path={}", s(&nbd_sock)),
            ])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("qemu-storage-daemon (apt-get install qemu-utils)"),
    );
    let mut qmp = Qmp::connect(&qmp_sock);
    qmp.cmd("block-export-add", json!({"type": "nbd", "id": "guest", "node-name": "disk0", "name": "guest", "writable": true}));
    let uri = |export: &str| format!("nbd+unix:///{export}?socket={}", s(&nbd_sock));
    let repo = dir.join("repo");
    let r = s(&repo);

    // Full backup at checkpoint 0; the guest writes while it runs.
    let full = qmp.begin(&dir, 0, None);
    guest_writes(&uri("guest"), &blocks, 0x11, 64);
    let pit0 = dir.join("pit0.raw");
    run(
        "qemu-img",
        &["convert", "-f", "raw", "-O", "raw", &uri(&full), s(&pit0)],
    );
    diskray_ok(&["backup", &uri(&full), "--repo", r, "--name", "vm"]);

    // The guest writes between backups (these must be in the incremental), then the
    // incremental from checkpoint 1's bitmap, the guest writing again meanwhile.
    guest_writes(&uri("guest"), &blocks[256..], 0x22, 128);
    let inc = qmp.begin(&dir, 1, Some("cp1"));
    guest_writes(&uri("guest"), &blocks[512..], 0x33, 64);
    let pit1 = dir.join("pit1.raw");
    run(
        "qemu-img",
        &["convert", "-f", "raw", "-O", "raw", &uri(&inc), s(&pit1)],
    );
    let doc: Value = serde_json::from_str(&diskray_ok(&[
        "backup",
        &uri(&inc),
        "--repo",
        r,
        "--name",
        "vm",
        "--changes",
        "nbd-bitmap:cp1",
        "--json",
    ]))
    .unwrap();
    let st = &doc["stats"];
    assert_eq!(st["change_source"], "cbt", "{st}");
    // The bitmap holds the guest's writes since checkpoint 1: the 64 blocks during the
    // full backup and the 128 after it, at the bitmap's 64 KiB granularity at most.
    let read = st["read_from_source"].as_u64().unwrap();
    assert!((128 * 4096..=(64 + 128) * 65536).contains(&read), "{st}");

    // Both images restore to their points in time.
    let images =
        serde_json::from_str::<Value>(&diskray_ok(&["images", "--repo", r, "--json"])).unwrap();
    let ids: Vec<String> = images["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["image"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2);
    for (id, truth) in ids.iter().zip([&pit0, &pit1]) {
        let out: PathBuf = dir.join(format!("{id}.raw"));
        diskray_ok(&["restore", "--repo", r, id, s(&out)]);
        check(&out, truth, id);
    }
    // The points in time are the transactions': a write during a backup is not in it, a
    // write between backups is in the next.
    let block =
        |img: &Path, b: u64| std::fs::read(img).unwrap()[(b * 4096) as usize..][..4096].to_vec();
    assert!(
        block(&pit0, blocks[0]) != vec![0x11; 4096],
        "pit0 holds a later write"
    );
    assert_eq!(block(&pit1, blocks[0]), vec![0x11; 4096]);
    assert_eq!(block(&pit1, blocks[256]), vec![0x22; 4096]);
    assert!(
        block(&pit1, blocks[512]) != vec![0x33; 4096],
        "pit1 holds a later write"
    );
}
