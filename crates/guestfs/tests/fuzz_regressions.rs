//! Inputs that once crashed the `guestfs` fuzz target (`fuzz/fuzz_targets/guestfs.rs`),
//! replayed through the same file-reader steps: each must now be handled without a panic. The
//! layout and classes steps are replayed in `crates/layout/tests/hostile.rs`.

use diskray_core::{MemDisk, VirtualDisk};
use diskray_guestfs::files::{base64, escape, lookup_follow, resolve, walk_bytes, FileType};
use diskray_guestfs::{open, Slice};
use std::path::Path;

#[path = "support/disks.rs"]
mod disks;
use disks::volume;

/// Largest file read per input, as in the fuzz target.
const MAX_READ: u64 = 1 << 20;
/// Entries whose paths are resolved and whose files are read, as in the fuzz target.
const MAX_ENTRIES: usize = 64;
/// Entries whose paths are resolved (with `/../.` too), per input.
const MAX_RESOLVED: usize = 8;
/// Symlinks followed, per input (each may go through 40 links).
const MAX_FOLLOWED: usize = 16;
#[test]
fn every_recorded_crash_is_handled() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions/guestfs");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        let disk = MemDisk::new(volume(&data).unwrap());
        let slice = Slice::new(&disk, Path::new("r"), 0, disk.capacity());
        if let Ok(Some(fs)) = open(slice) {
            if let Some(files) = fs.files() {
                if let Ok(root) = files.root() {
                    let mut entries = Vec::new();
                    let _ = walk_bytes(files, b"/", &root, true, &mut entries);
                    for (i, (p, e)) in entries.iter().take(MAX_ENTRIES).enumerate() {
                        let _ = (escape(p), base64(e.name_bytes()));
                        // Resolving reads every directory on the way: a few paths per input.
                        if i < MAX_RESOLVED {
                            let _ = resolve(files, p, false);
                            let mut up = p.clone();
                            up.extend_from_slice(b"/../.");
                            let _ = resolve(files, &up, true);
                        }
                        if e.kind == FileType::Symlink && i < MAX_FOLLOWED {
                            let _ = files.link_path(e);
                            let _ = lookup_follow(files, p);
                        }
                        if e.size <= MAX_READ {
                            let _ = files.read_file(e, &mut std::io::sink());
                        }
                        let _ = files.extents(e);
                    }
                }
                let _ = files.deleted();
                let _ = files.warnings();
            }
        };
        count += 1;
    }
    assert!(count >= 1);
}
