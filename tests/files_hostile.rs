//! Hostile directory structures for the file readers: loops, names and runs past their
//! records or the volume. Each is refused with exit 1 and a clear message, never a panic
//! or a hang (`common::diskray` caps memory and time).

mod common;

use common::*;
use std::path::{Path, PathBuf};

fn copy(name: &str, dir: &Path) -> PathBuf {
    let to = dir.join(name);
    std::fs::copy(guest_fixtures().join("images").join(name), &to).unwrap();
    to
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{:?} not in image", String::from_utf8_lossy(needle)))
}

fn refused(args: &[&str], want: &str) {
    let out = diskray(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains(want),
        "{args:?}: wanted {want:?} in {stderr}"
    );
}

#[test]
fn fat_chain_that_loops() {
    let d = scratch("fat_loop");
    let img = copy("fat16.img", &d);
    let mut b = std::fs::read(&img).unwrap();
    // keep1.bin's directory entry gives its first cluster; make that cluster point to itself
    // in both FATs.
    let e = find(&b, b"KEEP1   BIN");
    let first = u16::from_le_bytes([b[e + 26], b[e + 27]]) as usize;
    let (rsvd, fat_sz) = (
        u16::from_le_bytes([b[14], b[15]]) as usize,
        u16::from_le_bytes([b[22], b[23]]) as usize,
    );
    for copy in 0..2 {
        let at = (rsvd + copy * fat_sz) * 512 + first * 2;
        b[at..at + 2].copy_from_slice(&(first as u16).to_le_bytes());
    }
    std::fs::write(&img, &b).unwrap();
    refused(&["cat", img.to_str().unwrap(), "/keep1.bin"], "loops");
}

#[test]
fn fat_first_cluster_out_of_range() {
    let d = scratch("fat_range");
    let img = copy("fat16.img", &d);
    let mut b = std::fs::read(&img).unwrap();
    let e = find(&b, b"KEEP1   BIN");
    b[e + 26..e + 28].copy_from_slice(&0xFFF0u16.to_le_bytes());
    std::fs::write(&img, &b).unwrap();
    refused(&["cat", img.to_str().unwrap(), "/keep1.bin"], "outside");
}

#[test]
fn ext_directory_loop() {
    let d = scratch("ext_loop");
    let img = copy("ext4-1k.img", &d);
    let mut b = std::fs::read(&img).unwrap();
    // The entry of keep2.txt in /sub now names the root directory (inode 2) as a directory.
    let name = find(&b, b"keep2.txt");
    b[name - 8..name - 4].copy_from_slice(&2u32.to_le_bytes());
    b[name - 1] = 2; // file type: directory
    std::fs::write(&img, &b).unwrap();
    refused(&["ls", "-r", img.to_str().unwrap()], "loops");
}

#[test]
fn ext_extent_past_the_end() {
    let d = scratch("ext_extent");
    let img = copy("ext2.img", &d);
    let mut b = std::fs::read(&img).unwrap();
    // ext2 keep1.bin: block map. Find its inode through the directory entry, then patch its
    // first direct block pointer to a block past the end of the filesystem.
    let name = find(&b, b"keep1.bin");
    let ino = u32::from_le_bytes(b[name - 8..name - 4].try_into().unwrap()) as usize;
    let sb = 1024;
    let bs = 1024usize << u32::from_le_bytes(b[sb + 0x18..sb + 0x1C].try_into().unwrap());
    let ipg = u32::from_le_bytes(b[sb + 0x28..sb + 0x2C].try_into().unwrap()) as usize;
    let isz = u16::from_le_bytes([b[sb + 0x58], b[sb + 0x59]]) as usize;
    let gd = if bs == 1024 { 2048 } else { bs };
    let group = (ino - 1) / ipg;
    let table = u32::from_le_bytes(
        b[gd + group * 32 + 8..gd + group * 32 + 12]
            .try_into()
            .unwrap(),
    ) as usize;
    let at = table * bs + ((ino - 1) % ipg) * isz + 0x28;
    b[at..at + 4].copy_from_slice(&0x7FFF_FFF0u32.to_le_bytes());
    std::fs::write(&img, &b).unwrap();
    refused(
        &["cat", img.to_str().unwrap(), "/keep1.bin"],
        "past the end",
    );
}

#[test]
fn ext_garbage_directory_records_do_not_panic() {
    let d = scratch("ext_garbage");
    let img = copy("ext4-1k.img", &d);
    let mut b = std::fs::read(&img).unwrap();
    let name = find(&b, b"keep2.txt");
    // rec_len 3 and a name length past the block.
    b[name - 4..name - 2].copy_from_slice(&3u16.to_le_bytes());
    b[name - 2] = 255;
    std::fs::write(&img, &b).unwrap();
    let out = diskray(&["ls", "-r", img.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    // The damaged block is cut at the damage: keep2.txt is no longer listed.
    assert!(!String::from_utf8_lossy(&out.stdout).contains("keep2.txt"));
}

#[test]
fn missing_paths_and_wrong_partitions() {
    let img = guest_fixtures().join("images/gpt-disk.raw");
    let img = img.to_str().unwrap();
    refused(&["cat", img, "-p", "1", "/no/such/file"], "no such file");
    refused(&["ls", img, "/"], "choose one with --partition");
    refused(&["ls", img, "-p", "9", "/"], "no partition \"9\"");
    refused(&["cat", img, "-p", "1", "/sub"], "is a directory");
    refused(&["ls", img, "-p", "1", "/keep1.bin/x"], "not a directory");
}

#[test]
fn ntfs_corrupt_compressed_stream() {
    // Overwrite the compressed file's clusters (from the truth's extents) with 0xFF: every
    // chunk then starts with back-references before any data.
    let d = scratch("ntfs_lznt1");
    let to = d.join("ntfs.img");
    std::fs::copy(file_fixtures().join("images/ntfs.img"), &to).unwrap();
    let truth: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root().join("fixtures/files/truth/ntfs.json")).unwrap(),
    )
    .unwrap();
    let comp = truth["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/compressed/comp.txt")
        .unwrap();
    let (at, len) = (
        comp["extents"][0][0].as_u64().unwrap() as usize,
        comp["extents"][0][1].as_u64().unwrap() as usize,
    );
    let mut b = std::fs::read(&to).unwrap();
    b[at..at + len].fill(0xFF);
    std::fs::write(&to, &b).unwrap();
    refused(
        &["cat", to.to_str().unwrap(), "/compressed/comp.txt"],
        "LZNT1",
    );
}

#[test]
fn ext_extent_tree_with_a_shared_child() {
    // /frag.bin has a depth-1 extent tree: its root (in the inode) holds one index entry.
    // Make it two entries naming the same tree block: refused, not walked twice.
    let d = scratch("ext_shared_child");
    let img = d.join("ext4.img");
    std::fs::copy(file_fixtures().join("images/ext4.img"), &img).unwrap();
    let truth: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root().join("fixtures/files/truth/ext4.json")).unwrap(),
    )
    .unwrap();
    let ino = truth["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/frag.bin")
        .unwrap()["inode"]
        .as_u64()
        .unwrap() as usize;
    let mut b = std::fs::read(&img).unwrap();
    let sb = 1024;
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as usize;
    let bs = 1024usize << u32_at(&b, sb + 0x18);
    let ipg = u32_at(&b, sb + 0x28);
    let isz = u16::from_le_bytes([b[sb + 0x58], b[sb + 0x59]]) as usize;
    let desc = if u32_at(&b, sb + 0x60) & 0x80 != 0 {
        u16::from_le_bytes([b[sb + 0xFE], b[sb + 0xFF]]) as usize
    } else {
        32
    };
    let gdt = (u32_at(&b, sb + 0x14) + 1) * bs;
    let g = (ino - 1) / ipg;
    let table = u32_at(&b, gdt + g * desc + 8);
    let root_at = table * bs + ((ino - 1) % ipg) * isz + 0x28;
    assert_eq!(
        &b[root_at..root_at + 2],
        &[0x0A, 0xF3],
        "extent header magic"
    );
    assert_eq!(
        u16::from_le_bytes([b[root_at + 6], b[root_at + 7]]),
        1,
        "the fixture's tree has depth 1"
    );
    b[root_at + 2..root_at + 4].copy_from_slice(&2u16.to_le_bytes());
    let (first, second) = (root_at + 12, root_at + 24);
    let entry = b[first..first + 12].to_vec();
    b[second..second + 12].copy_from_slice(&entry);
    std::fs::write(&img, &b).unwrap();
    refused(
        &["cat", img.to_str().unwrap(), "/frag.bin"],
        "a second time",
    );
}
