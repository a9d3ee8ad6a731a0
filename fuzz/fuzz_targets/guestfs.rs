//! Fuzzes filesystem probing and allocation maps (ext, FAT, swap) and the byte classes,
//! on an in-memory volume. The first byte picks where the input lands: over the ext
//! superblock and descriptors (byte 1024), over a FAT boot sector (byte 0), or over a swap
//! header (byte 0), in a 4 MiB volume.
#![no_main]
use diskray_core::{MemDisk, VirtualDisk};
use diskray_guestfs::files::{lookup_follow, walk, FileType};
use diskray_layout::{analyze, classes};
use diskray_guestfs::{open, Slice};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

const VOLUME: usize = 4 << 20;
/// Largest file read per input (keeps runs fast; sizes come from the input).
const MAX_READ: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else { return };
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
    let disk = MemDisk::new(bytes);
    if let Ok(layout) = analyze(&disk, Path::new("fuzz.img")) {
        if let Ok(c) = classes(&disk, &layout) {
            let total: u64 = c.named().iter().map(|(_, s)| s.bytes()).sum();
            assert_eq!(total, disk.capacity(), "classes must tile the disk");
        }
    }
    // The file readers: walk the tree, follow symlinks, read the small files, list
    // deleted entries.
    let slice = Slice::new(&disk, Path::new("fuzz.img"), 0, disk.capacity());
    if let Ok(Some(fs)) = open(slice) {
        if let Some(files) = fs.files() {
            if let Ok(root) = files.root() {
                let mut entries = Vec::new();
                let _ = walk(files, "/", &root, true, &mut entries);
                for (p, e) in entries.iter().take(64) {
                    if e.kind == FileType::Symlink {
                        let _ = lookup_follow(files, p);
                    }
                    if e.size <= MAX_READ {
                        let _ = files.read_file(e, &mut std::io::sink());
                    }
                    let _ = files.extents(e);
                }
            }
            let _ = files.deleted();
        }
    };
});
