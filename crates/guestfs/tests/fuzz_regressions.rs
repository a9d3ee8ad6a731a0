//! Inputs that once crashed the `guestfs` fuzz target (`fuzz/fuzz_targets/guestfs.rs`),
//! replayed through the same steps: each must now be handled without a panic. The
//! layout and classes steps are replayed in `crates/layout/tests/hostile.rs`.

use diskray_core::{MemDisk, VirtualDisk};
use diskray_guestfs::files::walk;
use diskray_guestfs::{open, Slice};
use std::path::Path;

const VOLUME: usize = 4 << 20;

/// The fuzz target's input layout: the first byte picks where the rest lands.
fn volume(data: &[u8]) -> Vec<u8> {
    let (&kind, rest) = data.split_first().unwrap();
    let mut bytes = vec![0u8; VOLUME];
    let at = match kind % 3 {
        0 => 1024,
        1 => 0,
        _ => {
            bytes[4086..4096].copy_from_slice(b"SWAPSPACE2");
            0
        }
    };
    let n = rest.len().min(VOLUME - at);
    bytes[at..at + n].copy_from_slice(&rest[..n]);
    if kind % 3 == 0 {
        bytes[1024 + 0x38] = 0x53;
        bytes[1024 + 0x39] = 0xEF;
    }
    bytes
}

#[test]
fn every_recorded_crash_is_handled() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions/guestfs");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        let disk = MemDisk::new(volume(&data));
        let slice = Slice::new(&disk, Path::new("r"), 0, disk.capacity());
        if let Ok(Some(fs)) = open(slice) {
            if let Some(files) = fs.files() {
                if let Ok(root) = files.root() {
                    let mut entries = Vec::new();
                    let _ = walk(files, "/", &root, true, &mut entries);
                }
                let _ = files.deleted();
            }
        };
        count += 1;
    }
    assert!(count >= 1);
}
