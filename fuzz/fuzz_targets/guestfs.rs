//! Fuzzes filesystem probing and allocation maps (ext, FAT, NTFS, XFS, swap), the byte
//! classes and the file readers on an in-memory volume. The first byte picks where the
//! input lands: with its top bit set, the rest is sector records (`common/sparse.rs`)
//! over an 8 MiB volume (whole fixture images: fragmented `$MFT`s, ext journals, htree
//! directories, deleted FAT trees); otherwise, in a 4 MiB volume, over the ext superblock
//! and descriptors (byte 1024), over a FAT/XFS/NTFS boot sector (byte 0), or over a swap
//! header (byte 0).
#![no_main]
use diskray_core::{MemDisk, VirtualDisk};
use diskray_guestfs::files::{base64, escape, lookup_follow, resolve, walk_bytes, FileType};
use diskray_guestfs::{open, Slice};
use diskray_layout::{analyze, classes};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

#[path = "../../crates/guestfs/tests/support/disks.rs"]
mod disks;
use disks::volume;

/// Largest file read per input (keeps runs fast; sizes come from the input).
const MAX_READ: u64 = 1 << 20;
/// Entries whose paths are resolved and whose files are read, per input.
const MAX_ENTRIES: usize = 64;
/// Entries whose paths are resolved (with `/../.` too), per input.
const MAX_RESOLVED: usize = 8;
/// Symlinks followed, per input (each may go through 40 links).
const MAX_FOLLOWED: usize = 16;

fuzz_target!(|data: &[u8]| {
    let Some(bytes) = volume(data) else { return };
    let disk = MemDisk::new(bytes);
    if let Ok(layout) = analyze(&disk, Path::new("fuzz.img")) {
        if let Ok(c) = classes(&disk, &layout) {
            let total: u64 = c.named().iter().map(|(_, s)| s.bytes()).sum();
            assert_eq!(total, disk.capacity(), "classes must tile the disk");
        }
    }
    // The file readers: walk the tree, resolve paths (with `..`, `.` and symlinks as the
    // kernel does), read the small files, list deleted entries.
    let slice = Slice::new(&disk, Path::new("fuzz.img"), 0, disk.capacity());
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
});
