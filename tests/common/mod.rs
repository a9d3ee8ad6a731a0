//! Helpers shared by the integration tests: materialised fixtures, running the real
//! binary, hashing.

#![allow(dead_code)]

pub mod lvm;
pub mod s3;

use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A private copy of `fixtures/vmdk` with every `X.gz` expanded to `X` (zero 4 KiB blocks
/// left as holes, as the originals had them), made once per test binary.
pub fn vmdk_fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| materialised("vmdk"))
}

/// The same for `fixtures/files`.
pub fn file_fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| materialised("files"))
}

/// The same for `fixtures/guests`.
pub fn guest_fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| materialised("guests"))
}

/// A private copy of `fixtures/REL` (made once per test binary, whatever the number of
/// tests asking) with every `X.gz` expanded whole to `X`: no holes, so the space classes
/// of a filesystem image are the filesystem's and not the host file's.
pub fn expanded(rel: &str) -> PathBuf {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static DIRS: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut dirs = DIRS.get_or_init(Default::default).lock().unwrap();
    dirs.entry(rel.to_string())
        .or_insert_with(|| {
            let exe = std::env::current_exe().unwrap();
            let name = exe.file_stem().unwrap().to_string_lossy().into_owned();
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("expanded-{}-{name}", rel.replace('/', "-")));
            let _ = std::fs::remove_dir_all(&dir);
            copy_tree(&root().join("fixtures").join(rel), &dir, false);
            dir
        })
        .clone()
}

fn materialised(set: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let name = exe.file_stem().unwrap().to_string_lossy().into_owned();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("fixtures-{set}-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    copy_tree(&root().join("fixtures").join(set), &dir, true);
    dir
}

/// Copies `from` to `to`, expanding `X.gz` to `X` (with holes for zero blocks if `sparse`).
fn copy_tree(from: &Path, to: &Path, sparse: bool) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let src = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&src, &to.join(&name), sparse);
        } else if let Some(base) = name.strip_suffix(".gz") {
            if sparse {
                gunzip_sparse(&src, &to.join(base));
            } else {
                let mut z = flate2::read::GzDecoder::new(File::open(&src).unwrap());
                let mut out = File::create(to.join(base)).unwrap();
                std::io::copy(&mut z, &mut out).unwrap();
            }
        } else {
            std::fs::copy(&src, to.join(&name)).unwrap();
        }
    }
}

fn gunzip_sparse(src: &Path, dst: &Path) {
    let mut z = flate2::read::GzDecoder::new(File::open(src).unwrap());
    let out = File::create(dst).unwrap();
    let mut buf = vec![0u8; 4096];
    let mut pos = 0u64;
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            let n = z.read(&mut buf[filled..]).unwrap();
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            break;
        }
        // A partial last block stays data (as `fallocate --dig-holes` leaves it).
        if filled < buf.len() || buf[..filled].iter().any(|&b| b != 0) {
            out.write_all_at(&buf[..filled], pos).unwrap();
        }
        pos += filled as u64;
        if filled < buf.len() {
            break;
        }
    }
    out.set_len(pos).unwrap();
}

/// Runs the real `diskray` binary with `args`, with its address space capped (so an
/// unbounded allocation on hostile input fails the test instead of the machine).
pub fn diskray(args: &[&str]) -> Output {
    let bin = env!("CARGO_BIN_EXE_diskray");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -v 4194304; exec timeout 60 \"$0\" \"$@\"")
        .arg(bin)
        .args(args);
    cmd.output().expect("run diskray")
}

/// Runs `diskray` and returns stdout, panicking with stderr when it fails.
pub fn diskray_ok(args: &[&str]) -> String {
    let out = diskray(args);
    assert!(
        out.status.success(),
        "diskray {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> String {
    let mut f = File::open(path).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex(&h.finalize())
}

/// SHA-256 of bytes, hex.
pub fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh, empty scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("scratch")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
