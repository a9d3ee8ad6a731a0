//! Hostile inputs: each must be refused with exit status 1 and a message that names the
//! file (and the byte offset where the damage is), without a panic, within a 4 GiB address
//! space and 60 seconds (see `common::diskray`).

mod common;

use common::*;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Runs `diskray convert` (and `map`) on `disk` and checks the refusal.
fn refused(disk: &Path, want: &[&str]) {
    for cmd in ["convert", "map"] {
        let out_file = disk.with_extension("out.raw");
        let mut args = vec![cmd, disk.to_str().unwrap()];
        if cmd == "convert" {
            args.push(out_file.to_str().unwrap());
        }
        let out = diskray(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if cmd == "map" && out.status.success() {
            // Some damage is only found when data is read; map reads metadata only.
            continue;
        }
        assert_eq!(
            out.status.code(),
            Some(1),
            "{cmd} {}: status {:?}, stderr: {stderr}",
            disk.display(),
            out.status
        );
        let last = stderr.lines().last().unwrap_or("");
        assert!(last.starts_with("diskray: error: "), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        for w in want {
            assert!(
                stderr.contains(w),
                "{cmd} {}: stderr lacks {w:?}: {stderr}",
                disk.display()
            );
        }
        assert!(!out_file.exists(), "a refused convert left output behind");
    }
}

fn copy_fixture(rel: &str, dir: &Path) -> PathBuf {
    let to = dir.join(Path::new(rel).file_name().unwrap());
    std::fs::copy(vmdk_fixtures().join(rel), &to).unwrap();
    to
}

fn patch(path: &Path, at: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .write_all_at(bytes, at)
        .unwrap();
}

fn read_u64(path: &Path, at: u64) -> u64 {
    let b = std::fs::read(path).unwrap();
    u64::from_le_bytes(b[at as usize..at as usize + 8].try_into().unwrap())
}

fn read_u32(path: &Path, at: u64) -> u32 {
    let b = std::fs::read(path).unwrap();
    u32::from_le_bytes(b[at as usize..at as usize + 4].try_into().unwrap())
}

/// Byte offset of the first non-zero grain table entry and its value.
fn first_gte(path: &Path) -> (u64, u32) {
    let gd = read_u64(path, 56) * 512;
    let gt = read_u32(path, gd) as u64 * 512;
    (0..512)
        .map(|i| (gt + i * 4, read_u32(path, gt + i * 4)))
        .find(|e| e.1 != 0)
        .unwrap()
}

fn write(path: &Path, bytes: &[u8]) -> PathBuf {
    std::fs::File::create(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
    path.to_path_buf()
}

#[test]
fn truncated_sparse_header() {
    let d = scratch("truncated_header");
    let f = copy_fixture("monolithicSparse/disk.vmdk", &d);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(100)
        .unwrap();
    refused(&f, &["disk.vmdk", "at byte 0", "512 bytes"]);
}

#[test]
fn header_fields_out_of_bounds() {
    let cases: &[(&str, u64, &[u8], &str)] = &[
        ("capacity", 12, &(1u64 << 60).to_le_bytes(), "does not fit"),
        ("grain", 20, &3u64.to_le_bytes(), "at byte 20"),
        ("grain_huge", 20, &(1u64 << 30).to_le_bytes(), "at byte 20"),
        ("gtes", 44, &4096u32.to_le_bytes(), "at byte 44"),
        ("incompat", 8, &0x0004_0003u32.to_le_bytes(), "at byte 8"),
        ("version", 4, &7u32.to_le_bytes(), "at byte 4"),
        ("newline", 73, b"\n \n\n", "at byte 73"),
        ("desc_offset", 28, &(1u64 << 50).to_le_bytes(), "at byte 28"),
    ];
    for (name, at, bytes, want) in cases {
        let d = scratch(&format!("header_{name}"));
        let f = copy_fixture("monolithicSparse/disk.vmdk", &d);
        patch(&f, *at, bytes);
        refused(&f, &["disk.vmdk", want]);
    }
}

#[test]
fn grain_directory_past_end_of_file_in_both_copies() {
    let d = scratch("gd_past_eof");
    let f = copy_fixture("monolithicSparse/disk.vmdk", &d);
    let gd = read_u64(&f, 56) * 512;
    let rgd = read_u64(&f, 48) * 512;
    patch(&f, gd, &0x00ff_ffffu32.to_le_bytes());
    patch(&f, rgd, &0x00ff_ffffu32.to_le_bytes());
    refused(
        &f,
        &["disk.vmdk", &format!("at byte {gd}"), "outside the file"],
    );
}

#[test]
fn dangling_grain_table_entry() {
    let d = scratch("dangling_gte");
    let f = copy_fixture("monolithicSparse/disk.vmdk", &d);
    let (at, _) = first_gte(&f);
    patch(&f, at, &0x0100_0000u32.to_le_bytes());
    refused(
        &f,
        &[
            "disk.vmdk",
            &format!("at byte {at}"),
            "past the end of the file",
        ],
    );
}

#[test]
fn grain_table_entry_into_metadata() {
    let d = scratch("gte_metadata");
    let f = copy_fixture("monolithicSparse/disk.vmdk", &d);
    let (at, _) = first_gte(&f);
    patch(&f, at, &1u32.to_le_bytes()); // sector 1 = the descriptor; no zeroed-grain flag
    patch(&f, 8, &3u32.to_le_bytes());
    refused(&f, &["disk.vmdk", &format!("at byte {at}"), "metadata"]);
}

/// The stream fixture with its first grain's marker located.
fn stream_with_first_grain(name: &str) -> (PathBuf, u64) {
    let d = scratch(name);
    let f = copy_fixture("streamOptimized/disk.vmdk", &d);
    let (_, sector) = first_gte(&f);
    (f, sector as u64 * 512)
}

#[test]
fn stream_corrupt_zlib() {
    let (f, marker) = stream_with_first_grain("stream_zlib");
    patch(&f, marker + 12 + 2, &[0xff; 64]);
    refused(&f, &["disk.vmdk", &format!("at byte {}", marker + 12)]);
}

#[test]
fn stream_grain_bomb() {
    let (f, marker) = stream_with_first_grain("stream_bomb");
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&vec![0u8; 16 << 20]).unwrap();
    let bomb = z.finish().unwrap();
    let old = read_u32(&f, marker + 8) as usize;
    assert!(
        bomb.len() < 64 * 1024,
        "bomb should be small: {}",
        bomb.len()
    );
    let mut b = std::fs::read(&f).unwrap();
    // Append the bomb at the end and point the grain's marker there.
    let at = (b.len() as u64).div_ceil(512) * 512;
    b.resize(at as usize, 0);
    b.extend_from_slice(&read_u64(&f, marker).to_le_bytes());
    b.extend_from_slice(&(bomb.len() as u32).to_le_bytes());
    b.extend_from_slice(&bomb);
    b.resize(b.len().div_ceil(512) * 512, 0);
    std::fs::write(&f, &b).unwrap();
    let (gte_at, _) = first_gte(&f);
    patch(&f, gte_at, &((at / 512) as u32).to_le_bytes());
    let _ = old;
    refused(&f, &["disk.vmdk", "inflates to more than 65536 bytes"]);
}

#[test]
fn stream_marker_size_absurd() {
    let (f, marker) = stream_with_first_grain("stream_size");
    patch(&f, marker + 8, &0xffff_fff0u32.to_le_bytes());
    refused(
        &f,
        &[
            "disk.vmdk",
            &format!("at byte {}", marker + 8),
            "compressed grain size",
        ],
    );
}

#[test]
fn stream_marker_wrong_lba() {
    let (f, marker) = stream_with_first_grain("stream_lba");
    patch(&f, marker, &999_999u64.to_le_bytes());
    refused(
        &f,
        &[
            "disk.vmdk",
            &format!("at byte {marker}"),
            "marker says LBA 999999",
        ],
    );
}

#[test]
fn gd_at_end_stream_truncated() {
    let d = scratch("stream_truncated");
    let f = copy_fixture("vmdkstream/disk.vmdk", &d);
    assert_eq!(
        read_u64(&f, 56),
        u64::MAX,
        "fixture must be a GD_AT_END stream"
    );
    let len = std::fs::metadata(&f).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(len - 1024)
        .unwrap();
    refused(&f, &["disk.vmdk", "invalid footer"]);
}

#[test]
fn extent_paths_that_escape() {
    let d = scratch("escape");
    std::fs::write(d.join("../escape-target.raw"), vec![1u8; 512]).unwrap();
    let cases = [
        ("dotdot.vmdk", "../escape-target.raw"),
        ("abs.vmdk", "/etc/passwd"),
        ("win.vmdk", "C:\\\\disks\\\\x.raw"),
        ("deep.vmdk", "a/../../escape-target.raw"),
    ];
    for (name, target) in cases {
        let f = write(&d.join(name), format!("# Disk DescriptorFile\nversion=1\nCID=11111111\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 1 FLAT \"{target}\" 0\n").as_bytes());
        refused(&f, &[name, "line 6", "outside the descriptor's directory"]);
    }
}

fn zero_layer(dir: &Path, name: &str, cid: &str, parent: Option<(&str, &str)>) -> PathBuf {
    let (pcid, hint) = match parent {
        Some((pcid, hint)) => (pcid.to_string(), format!("parentFileNameHint=\"{hint}\"\n")),
        None => ("ffffffff".to_string(), String::new()),
    };
    write(&dir.join(name), format!("# Disk DescriptorFile\nversion=1\nCID={cid}\nparentCID={pcid}\ncreateType=\"custom\"\n{hint}RW 2048 ZERO\n").as_bytes())
}

#[test]
fn parent_loops_are_refused() {
    let d = scratch("loops");
    let a = zero_layer(&d, "a.vmdk", "aaaaaaaa", Some(("bbbbbbbb", "b.vmdk")));
    zero_layer(&d, "b.vmdk", "bbbbbbbb", Some(("aaaaaaaa", "a.vmdk")));
    refused(&a, &["loops"]);
    let s = zero_layer(&d, "self.vmdk", "cccccccc", Some(("cccccccc", "self.vmdk")));
    refused(&s, &["self.vmdk", "loops"]);
}

#[test]
fn chains_deeper_than_the_bound_are_refused() {
    let d = scratch("deep_chain");
    for i in 0..70 {
        let parent = (i < 69).then(|| (format!("{:08x}", i + 1), format!("l{}.vmdk", i + 1)));
        zero_layer(
            &d,
            &format!("l{i}.vmdk"),
            &format!("{i:08x}"),
            parent.as_ref().map(|(c, h)| (c.as_str(), h.as_str())),
        );
    }
    refused(&d.join("l0.vmdk"), &["deeper than 64"]);
}

#[test]
fn cid_mismatch_is_refused_unless_overridden() {
    let d = scratch("cid");
    zero_layer(&d, "base.vmdk", "12345678", None);
    let child = zero_layer(
        &d,
        "child.vmdk",
        "87654321",
        Some(("deadbeef", "base.vmdk")),
    );
    refused(
        &child,
        &["child.vmdk", "parentCID deadbeef", "--ignore-cid"],
    );
    let out = diskray(&["info", "--json", "--ignore-cid", child.to_str().unwrap()]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["warnings"].to_string().contains("reading anyway"), "{v}");
}

#[test]
fn missing_parent_says_where_it_looked() {
    let d = scratch("missing_parent");
    let child = zero_layer(
        &d,
        "child.vmdk",
        "87654321",
        Some(("deadbeef", "C:\\VMs\\gone.vmdk")),
    );
    refused(&child, &["child.vmdk", "not found", "gone.vmdk"]);
}

#[test]
fn descriptor_garbage() {
    let d = scratch("desc_garbage");
    let long = format!(
        "# Disk DescriptorFile\ncreateType=\"x\"\nddb.x = \"{}\"\nRW 1 ZERO\n",
        "a".repeat(100_000)
    );
    refused(
        &write(&d.join("long.vmdk"), long.as_bytes()),
        &["long.vmdk", "longer than"],
    );
    let mut junk = b"# Disk DescriptorFile\n".to_vec();
    let mut x = 0x1234_5678u32;
    for _ in 0..4000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        junk.push((x % 90 + 32) as u8);
    }
    refused(
        &write(&d.join("junk.vmdk"), &junk),
        &["junk.vmdk", "descriptor line 2"],
    );
    let overflow = "# Disk DescriptorFile\ncreateType=\"x\"\nRW 18446744073709551615 ZERO\nRW 18446744073709551615 ZERO\n";
    refused(
        &write(&d.join("overflow.vmdk"), overflow.as_bytes()),
        &["overflow.vmdk", "2^64"],
    );
    let big = vec![b'#'; 2 << 20];
    let mut big_desc = b"# Disk DescriptorFile\ncreateType=x\n".to_vec();
    big_desc.extend_from_slice(&big);
    refused(
        &write(&d.join("big.vmdk"), &big_desc),
        &["big.vmdk", "more than"],
    );
}

#[test]
fn flat_file_shorter_than_declared() {
    let d = scratch("short_flat");
    std::fs::write(d.join("short.raw"), vec![7u8; 1000]).unwrap();
    let f = write(&d.join("short.vmdk"), b"# Disk DescriptorFile\nCID=11111111\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 4 FLAT \"short.raw\" 0\n");
    refused(&f, &["short.vmdk", "line 5", "1000 bytes"]);
}

#[test]
fn cowd_directory_out_of_bounds() {
    let d = scratch("cowd_gd");
    let mut h = vec![0u8; 4096];
    h[0..4].copy_from_slice(b"COWD");
    h[4..8].copy_from_slice(&1u32.to_le_bytes());
    h[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    h[16..20].copy_from_slice(&1u32.to_le_bytes());
    h[20..24].copy_from_slice(&4u32.to_le_bytes());
    h[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
    refused(
        &write(&d.join("delta.vmdk"), &h),
        &["delta.vmdk", "at byte 20", "does not fit"],
    );
}

#[test]
fn sesparse_dirty_journal() {
    let d = scratch("sesparse_dirty");
    for f in ["child.vmdk", "child-sesparse.vmdk", "base.vmdk"] {
        copy_fixture(&format!("sesparse/{f}"), &d);
    }
    let se = d.join("child-sesparse.vmdk");
    let vol = read_u64(&se, 80) * 512;
    patch(&se, vol + 24, &1u64.to_le_bytes());
    refused(
        &d.join("child.vmdk"),
        &[
            "child-sesparse.vmdk",
            &format!("at byte {}", vol + 24),
            "replay",
        ],
    );
}

#[test]
fn noaccess_extent_refuses_reads() {
    let d = scratch("noaccess");
    std::fs::write(d.join("a.raw"), vec![7u8; 512]).unwrap();
    let f = write(&d.join("na.vmdk"), b"# Disk DescriptorFile\nCID=11111111\nparentCID=ffffffff\ncreateType=\"custom\"\nRW 1 FLAT \"a.raw\" 0\nNOACCESS 1\n");
    refused(&f, &["na.vmdk", "disk byte 512", "NOACCESS", "line 6"]);
}

#[test]
fn not_a_disk() {
    let d = scratch("not_a_disk");
    refused(
        &write(&d.join("empty.img"), b""),
        &["empty.img", "empty file"],
    );
    let mut kdmv = b"KDMV".to_vec();
    kdmv.extend((0..1_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    refused(
        &write(&d.join("random.vmdk"), &kdmv),
        &["random.vmdk", "at byte"],
    );
    let out = diskray(&["info", d.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("directory"));
    let out = diskray(&["info", d.join("nope.vmdk").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.vmdk"));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(diskray(&["map"]).status.code(), Some(2));
    assert_eq!(diskray(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        diskray(&["convert", "-O", "qcow2", "a", "b"]).status.code(),
        Some(2)
    );
}

#[test]
fn convert_refuses_to_overwrite_its_input() {
    let d = scratch("overwrite");
    let f = copy_fixture("monolithicSparse/disk.vmdk", &d);
    let before = sha256_file(&f);
    let out = diskray(&["convert", f.to_str().unwrap(), f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("input"));
    assert_eq!(sha256_file(&f), before);
}
