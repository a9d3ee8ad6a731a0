//! `diskray mount` of a machine backup, read by ordinary tools: the Rocky-style machine of
//! `fixtures/lvm/installed` (GPT, /boot XFS, root XFS on LVM across two disks) backed up,
//! mounted with FUSE, and every file's SHA-256 under the mount compared with what the
//! kernel wrote (`*-files.txt`); `disk.raw` equals the restored disks, and the kernel
//! mounts /boot from it through a loop device.

mod common;
use common::lvm::installed_disk;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The mount process, unmounted and ended when dropped (a failed test leaves no mount).
struct Mounted {
    child: Child,
    dir: PathBuf,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("fusermount3")
            .arg("-u")
            .arg(&self.dir)
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_mounted(dir: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let canon = std::fs::canonicalize(dir).unwrap_or(dir.to_path_buf());
    mounts
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(s(&canon)) && l.contains("fuse"))
}

/// Starts `diskray mount` and waits (at most 30 s) for the mount to appear.
fn mount(args: &[&str], dir: &Path) -> Mounted {
    let child = Command::new(env!("CARGO_BIN_EXE_diskray"))
        .arg("mount")
        .args(args)
        .arg(dir)
        .spawn()
        .unwrap();
    let m = Mounted {
        child,
        dir: dir.to_path_buf(),
    };
    let start = Instant::now();
    while !is_mounted(dir) {
        assert!(start.elapsed() < Duration::from_secs(30), "not mounted");
        std::thread::sleep(Duration::from_millis(50));
    }
    m
}

/// `sha256  ./path` of every regular file below `dir`, sorted, as `sha256sum` prints them.
fn sums(dir: &Path) -> Vec<String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg("find . -type f -print0 | sort -z | xargs -0 -r sha256sum")
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    lines.sort();
    lines
}

fn truth_sums(name: &str) -> Vec<String> {
    let t = common::lvm::installed_truth(name);
    let mut lines: Vec<String> = t.lines().map(String::from).collect();
    lines.sort();
    lines
}

#[test]
fn a_mounted_machine_backup_reads_like_the_kernel_wrote_it() {
    let tmp = scratch("mount");
    let repo = tmp.join("repo");
    let r = s(&repo);
    let (a, b) = (installed_disk("rocky-a.img"), installed_disk("rocky-b.img"));
    diskray_ok(&["backup", s(&a), s(&b), "--repo", r, "--name", "vm"]);
    let dir = tmp.join("mnt");
    std::fs::create_dir_all(&dir).unwrap();
    let m = mount(&["--repo", r, "vm.disk0", "--disk", "vm.disk1"], &dir);

    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["disk.raw", "p1", "rl-root"]);
    assert_eq!(sums(&dir.join("p1")), truth_sums("rocky.boot-files.txt"));
    assert_eq!(
        sums(&dir.join("rl-root")),
        truth_sums("rocky.root-files.txt")
    );
    // Deleted files are not there; writes are refused.
    assert!(std::fs::write(dir.join("p1/new"), b"x").is_err());

    // disk.raw is both disks, as restore writes them.
    let (ra, rb) = (tmp.join("a.raw"), tmp.join("b.raw"));
    diskray_ok(&["restore", "--repo", r, "vm.disk0", s(&ra)]);
    diskray_ok(&["restore", "--repo", r, "vm.disk1", s(&rb)]);
    let raw = std::fs::read(dir.join("disk.raw")).unwrap();
    let (wa, wb) = (std::fs::read(&ra).unwrap(), std::fs::read(&rb).unwrap());
    assert_eq!(raw.len(), wa.len() + wb.len());
    assert!(
        raw[..wa.len()] == wa[..] && raw[wa.len()..] == wb[..],
        "disk.raw differs"
    );

    // The kernel mounts /boot (partition 1, at sector 2048 per sfdisk) from disk.raw.
    let boot = tmp.join("boot");
    std::fs::create_dir_all(&boot).unwrap();
    let opts = format!(
        "loop,ro,norecovery,offset={},sizelimit={}",
        2048 * 512,
        614_400 * 512
    );
    let st = Command::new("mount")
        .args(["-t", "xfs", "-o", &opts])
        .arg(dir.join("disk.raw"))
        .arg(&boot)
        .status()
        .unwrap();
    assert!(st.success(), "mount -o loop of disk.raw");
    let kernel = sums(&boot);
    let _ = Command::new("umount").arg(&boot).status();
    assert_eq!(kernel, truth_sums("rocky.boot-files.txt"));

    // Ctrl-C ends it cleanly: the mount goes away and the process exits 0.
    let pid = m.child.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let mut m = m;
    let start = Instant::now();
    let status = loop {
        if let Some(st) = m.child.try_wait().unwrap() {
            break st;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "still running");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert!(!is_mounted(&dir));
}
