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

/// An encrypted repository on S3: init, backup, restore equal to a clear repository's
/// restore of the same disk; chunk objects are not named by the SHA-256 of the disk's
/// chunks; a wrong password is refused; key add then works with the new password.
#[test]
fn s3_encrypted_repository_round_trip() {
    let Some(srv) = s3::shared() else { return };
    let dir = scratch("s3-encrypted");
    let repo = srv.repo("encrypted");
    let disk = guest_fixtures().join("images/gpt-disk.raw");
    let pw = dir.join("pw");
    std::fs::write(&pw, "correct horse\n").unwrap();
    let (r, p) = (s(&repo), s(&pw));
    let kdf = ["--kdf-memory-mib", "1", "--kdf-iterations", "1"];
    diskray_ok(
        &[
            &["init", "--repo", r, "--encrypt", "--password-file", p][..],
            &kdf,
        ]
        .concat(),
    );
    let doc: serde_json::Value = serde_json::from_str(&diskray_ok(&[
        "backup",
        s(&disk),
        "--repo",
        r,
        "--name",
        "gpt",
        "--json",
        "--password-file",
        p,
    ]))
    .unwrap();
    let id = doc["image"].as_str().unwrap();
    let out = dir.join("restored.raw");
    diskray_ok(&["restore", "--repo", r, "--password-file", p, id, s(&out)]);
    let clear = dir.join("clear");
    diskray_ok(&["backup", s(&disk), "--repo", s(&clear), "--name", "gpt"]);
    let want = dir.join("clear.raw");
    diskray_ok(&["restore", "--repo", s(&clear), "gpt", s(&want)]);
    assert_eq!(
        sha256_file(&out),
        sha256_file(&want),
        "encrypted S3 restore"
    );
    // No chunk object is named by the SHA-256 of a 1 MiB piece of the disk.
    let bytes = std::fs::read(&want).unwrap();
    for piece in bytes.chunks(1 << 20).filter(|c| c.iter().any(|&b| b != 0)) {
        let h = sha256(piece);
        let key = format!("chunks/{}/{h}", &h[..4]);
        assert!(!srv.object(&repo, &key).exists(), "{key} names plaintext");
    }
    let wrong = dir.join("wrong");
    std::fs::write(&wrong, "battery staple\n").unwrap();
    let o = diskray(&["images", "--repo", r, "--password-file", s(&wrong)]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("wrong password"));
    let second = dir.join("second");
    std::fs::write(&second, "second password\n").unwrap();
    let add = [
        &[
            "key",
            "add",
            "--repo",
            r,
            "--password-file",
            p,
            "--new-password-file",
        ][..],
        &[s(&second)],
        &kdf,
    ]
    .concat();
    diskray_ok(&add);
    diskray_ok(&["verify", "--repo", r, "--password-file", s(&second)]);
}
