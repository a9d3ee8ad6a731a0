//! Instant access from an S3 repository: `diskray serve` exports an image stored on an
//! object store (s3s-fs on loopback, `tests/common/s3.rs`) to qemu-img, and `diskray
//! mount` shows it as `disk.raw`; both equal `restore` of the same image, and the disk
//! restored equals the source on every byte the source's filesystems use (checked by
//! `qemu-img compare` against the restore, which `backup_e2e` checks against the truth).

mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Kills the child when dropped (a failed test leaves no server or mount behind).
struct Running(std::process::Child, Option<std::path::PathBuf>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(dir) = &self.1 {
            let _ = Command::new("fusermount3").arg("-u").arg(dir).status();
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn waited(what: &str, ready: impl Fn() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < Duration::from_secs(30), "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn s3_serve_and_mount_equal_restore() {
    let Some(srv) = s3::shared() else { return };
    let dir = scratch("s3-access");
    let repo = srv.repo("access");
    let disk = guest_fixtures().join("images/gpt-disk.raw");
    let doc: serde_json::Value = serde_json::from_str(&diskray_ok(&[
        "backup",
        s(&disk),
        "--repo",
        s(&repo),
        "--name",
        "gpt",
        "--json",
    ]))
    .unwrap();
    let id = doc["image"].as_str().unwrap();
    let restored = dir.join("restored.raw");
    diskray_ok(&["restore", "--repo", s(&repo), id, s(&restored)]);
    let want = sha256_file(&restored);

    if Command::new("qemu-img").arg("--version").output().is_ok() {
        let sock = dir.join("serve.sock");
        let _ = std::fs::remove_file(&sock);
        let _server = Running(
            Command::new(env!("CARGO_BIN_EXE_diskray"))
                .args(["serve", "--repo", s(&repo), id, "--listen"])
                .arg(format!("unix:{}", sock.display()))
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
            None,
        );
        waited("diskray serve did not listen", || {
            std::os::unix::net::UnixStream::connect(&sock).is_ok()
        });
        let uri = format!("nbd+unix:///?socket={}", sock.display());
        let out = Command::new("qemu-img")
            .args(["compare", "-f", "raw", s(&restored), &uri])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "qemu-img compare of the S3 export and the restore: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!("SKIPPED serve: qemu-img is not installed");
    }

    let fuse_ok =
        Path::new("/dev/fuse").exists() && Command::new("fusermount3").arg("-V").output().is_ok();
    if !fuse_ok {
        eprintln!("SKIPPED mount: no /dev/fuse or fusermount3");
        return;
    }
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let _mounted = Running(
        Command::new(env!("CARGO_BIN_EXE_diskray"))
            .args(["mount", "--repo", s(&repo), id])
            .arg(&mnt)
            .spawn()
            .unwrap(),
        Some(mnt.clone()),
    );
    waited("diskray mount did not mount", || {
        mnt.join("disk.raw").exists()
    });
    assert_eq!(
        sha256_file(&mnt.join("disk.raw")),
        want,
        "disk.raw of a mounted S3 image differs from its restore"
    );
}
