//! Partition tables that broke other parsers (docs/formats.md §2.5) and other hostile tables:
//! each is refused or worked around with a warning, never a panic or a huge allocation.

use diskray_core::MemDisk;
use diskray_volume::{read, read_with, ReadOptions, Scheme};
use std::path::Path;

const SECTORS: u64 = 2048;

fn disk() -> Vec<u8> {
    vec![0u8; (SECTORS * 512) as usize]
}

fn mbr_entry(d: &mut [u8], base: usize, slot: usize, kind: u8, start: u32, count: u32) {
    let e = base + 446 + 16 * slot;
    d[e + 4] = kind;
    d[e + 8..e + 12].copy_from_slice(&start.to_le_bytes());
    d[e + 12..e + 16].copy_from_slice(&count.to_le_bytes());
    d[base + 510] = 0x55;
    d[base + 511] = 0xAA;
}

/// A GPT with `entries` (type byte, first, last) written at `lba` (header) and the array
/// at `array_lba`, with `count` entries of `size` bytes; CRCs correct.
fn gpt(
    d: &mut [u8],
    lba: u64,
    alt: u64,
    array_lba: u64,
    count: u32,
    size: u32,
    entries: &[(u8, u64, u64)],
) {
    // The builder itself never allocates an absurd array: it writes at most 128 entries.
    let mut array = vec![0u8; (count.min(128) as usize) * size as usize];
    for (i, &(t, first, last)) in entries.iter().enumerate() {
        let e = i * size as usize;
        array[e] = t; // non-zero type GUID
        array[e + 16] = i as u8 + 1;
        array[e + 32..e + 40].copy_from_slice(&first.to_le_bytes());
        array[e + 40..e + 48].copy_from_slice(&last.to_le_bytes());
    }
    let at = (array_lba * 512) as usize;
    if at + array.len() <= d.len() {
        d[at..at + array.len()].copy_from_slice(&array);
    }
    let h = (lba * 512) as usize;
    let mut hdr = vec![0u8; 92];
    hdr[0..8].copy_from_slice(b"EFI PART");
    hdr[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
    hdr[12..16].copy_from_slice(&92u32.to_le_bytes());
    hdr[24..32].copy_from_slice(&lba.to_le_bytes());
    hdr[32..40].copy_from_slice(&alt.to_le_bytes());
    hdr[40..48].copy_from_slice(&34u64.to_le_bytes());
    hdr[48..56].copy_from_slice(&(SECTORS - 34).to_le_bytes());
    hdr[72..80].copy_from_slice(&array_lba.to_le_bytes());
    hdr[80..84].copy_from_slice(&count.to_le_bytes());
    hdr[84..88].copy_from_slice(&size.to_le_bytes());
    let array_crc = if count <= 128 {
        crc32fast::hash(&array)
    } else {
        0x1234_5678
    };
    hdr[88..92].copy_from_slice(&array_crc.to_le_bytes());
    let crc = crc32fast::hash(&hdr);
    hdr[16..20].copy_from_slice(&crc.to_le_bytes());
    d[h..h + 92].copy_from_slice(&hdr);
}

fn protective(d: &mut [u8]) {
    mbr_entry(d, 0, 0, 0xEE, 1, (SECTORS - 1) as u32);
}

#[test]
fn gpt_with_256_byte_entries() {
    let mut d = disk();
    protective(&mut d);
    gpt(
        &mut d,
        1,
        SECTORS - 1,
        2,
        64,
        256,
        &[(1, 40, 99), (2, 100, 199)],
    );
    let t = read(&MemDisk::new(d), Path::new("d")).unwrap();
    assert_eq!(t.scheme, Scheme::Gpt);
    assert_eq!(t.partitions.len(), 2);
    assert_eq!(
        (
            t.partitions[1].index,
            t.partitions[1].start,
            t.partitions[1].length
        ),
        (2, 100 * 512, 100 * 512)
    );
}

#[test]
fn gpt_absurd_entry_count_is_refused_without_allocating() {
    let mut d = disk();
    protective(&mut d);
    gpt(&mut d, 1, SECTORS - 1, 2, u32::MAX, 128, &[]);
    let e = read(&MemDisk::new(d), Path::new("absurd.img"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("absurd.img") && e.contains("no valid GPT"),
        "{e}"
    );
}

#[test]
fn gpt_entries_past_the_disk_and_zero_count() {
    let mut d = disk();
    protective(&mut d);
    gpt(&mut d, 1, SECTORS - 1, SECTORS - 2, 128, 128, &[]);
    assert!(read(&MemDisk::new(d), Path::new("d")).is_err());
    let mut d = disk();
    protective(&mut d);
    gpt(&mut d, 1, SECTORS - 1, 2, 0, 128, &[]);
    let t = read(&MemDisk::new(d), Path::new("d")).unwrap();
    assert_eq!(
        (t.scheme, t.partitions.len()),
        (Scheme::Gpt, 0),
        "a CRC of 0 over no entries is a valid empty table"
    );
}

#[test]
fn damaged_primary_gpt_uses_the_backup_and_says_so() {
    let mut d = disk();
    protective(&mut d);
    gpt(&mut d, 1, SECTORS - 1, 2, 128, 128, &[(1, 40, 99)]);
    gpt(
        &mut d,
        SECTORS - 1,
        1,
        SECTORS - 33,
        128,
        128,
        &[(1, 40, 99)],
    );
    d[512 + 20] ^= 0xFF; // reserved byte: breaks the primary header CRC
    let t = read(&MemDisk::new(d), Path::new("d")).unwrap();
    assert_eq!(t.partitions.len(), 1);
    assert!(
        t.warnings
            .iter()
            .map(ToString::to_string)
            .any(|w| w.contains("primary GPT header") && w.contains("backup")),
        "{:?}",
        t.warnings
    );
}

#[test]
fn gpt_entry_outside_usable_range_is_skipped() {
    let mut d = disk();
    protective(&mut d);
    gpt(
        &mut d,
        1,
        SECTORS - 1,
        2,
        128,
        128,
        &[(1, 40, 99), (2, 5, 10), (3, 300, 200)],
    );
    let t = read(&MemDisk::new(d), Path::new("d")).unwrap();
    assert_eq!(t.partitions.len(), 1);
    assert_eq!(t.warnings.len(), 2, "{:?}", t.warnings);
}

#[test]
fn ebr_chain_loops_and_runaway_chains_stop() {
    // Extended partition at 100..2000; EBR at 100 links to itself.
    let mut d = disk();
    mbr_entry(&mut d, 0, 0, 0x83, 10, 80);
    mbr_entry(&mut d, 0, 1, 0x05, 100, 1900);
    mbr_entry(&mut d, 100 * 512, 0, 0x83, 10, 20);
    mbr_entry(&mut d, 100 * 512, 1, 0x05, 0, 50);
    let t = read(&MemDisk::new(d), Path::new("d")).unwrap();
    assert_eq!(
        t.partitions.iter().map(|p| p.index).collect::<Vec<_>>(),
        vec![1, 2, 5]
    );
    assert!(
        t.warnings
            .iter()
            .map(ToString::to_string)
            .any(|w| w.contains("loops")),
        "{:?}",
        t.warnings
    );

    // A chain of 200 EBRs, one per sector: stops at the hop bound.
    let mut d = disk();
    mbr_entry(&mut d, 0, 0, 0x05, 100, 1900);
    for i in 0..200u32 {
        let at = (100 + i as usize * 8) * 512;
        if at + 512 > d.len() {
            break;
        }
        mbr_entry(&mut d, at, 0, 0x83, 1, 1);
        mbr_entry(&mut d, at, 1, 0x05, (i + 1) * 8, 8);
    }
    let t = read(&MemDisk::new(d), Path::new("d")).unwrap();
    assert!(t.partitions.len() <= 1 + 128);
    assert!(
        t.warnings
            .iter()
            .map(ToString::to_string)
            .any(|w| w.contains("links") || w.contains("outside")),
        "{:?}",
        t.warnings
    );
}

#[test]
fn logical_outside_the_extended_partition_is_skipped() {
    let mut d = disk();
    mbr_entry(&mut d, 0, 0, 0x0F, 100, 100);
    mbr_entry(&mut d, 100 * 512, 0, 0x83, 50, 500);
    let t = read(&MemDisk::new(d), Path::new("d")).unwrap();
    assert_eq!(t.partitions.len(), 1, "{:?}", t.partitions);
    assert!(
        t.warnings
            .iter()
            .map(ToString::to_string)
            .any(|w| w.contains("outside the extended")),
        "{:?}",
        t.warnings
    );
}

#[test]
fn mbr_partition_past_the_disk_keeps_its_declared_length() {
    let mut d = disk();
    mbr_entry(&mut d, 0, 0, 0x83, 1000, 5000);
    let t = read(&MemDisk::new(d), Path::new("d")).unwrap();
    // As sfdisk lists it; readers of the content clamp to the disk.
    assert_eq!(t.partitions[0].length, 5000 * 512);
    assert!(t
        .warnings
        .iter()
        .map(ToString::to_string)
        .any(|w| w.contains("past the end")));
}

#[test]
fn mbr_of_an_image_cut_to_1_kib_lists_its_entries() {
    let mut d = vec![0u8; 1024];
    for slot in 0..4 {
        mbr_entry(&mut d, 0, slot, 0x83, 2048 + 16384 * slot as u32, 16384);
    }
    mbr_entry(&mut d, 0, 3, 0x05, 2048 + 16384 * 3, 16384); // an extended one, its EBR gone
    let t = read(&MemDisk::new(d), Path::new("short.img")).unwrap();
    assert_eq!((t.scheme, t.sector_size), (Scheme::Mbr, 512));
    assert_eq!(t.partitions.len(), 4);
    assert_eq!(t.partitions[3].start, (2048 + 16384 * 3) * 512);
    assert_eq!(
        t.warnings
            .iter()
            .map(ToString::to_string)
            .filter(|w| w.contains("past the end"))
            .count(),
        5,
        "four entries and the EBR: {:?}",
        t.warnings
    );
}

/// An 8 MiB disk of 4096-byte sectors: primary 256..512 (type 0x83), extended 600..1600
/// whose EBR (at sector 600) holds a logical at 616..716.
fn mbr_4k() -> Vec<u8> {
    let mut d = vec![0u8; 2048 * 4096];
    mbr_entry(&mut d, 0, 0, 0x83, 256, 256);
    mbr_entry(&mut d, 0, 1, 0x05, 600, 1000);
    mbr_entry(&mut d, 600 * 4096, 0, 0x83, 16, 100);
    d
}

#[test]
fn mbr_sector_size_follows_the_ebr_signatures() {
    let t = read(&MemDisk::new(mbr_4k()), Path::new("4k.img")).unwrap();
    assert_eq!(t.sector_size, 4096);
    let rows: Vec<(u32, u64, u64)> = t
        .partitions
        .iter()
        .map(|p| (p.index, p.start, p.length))
        .collect();
    assert_eq!(
        rows,
        [
            (1, 256 * 4096, 256 * 4096),
            (2, 600 * 4096, 1000 * 4096),
            (5, 616 * 4096, 100 * 4096)
        ]
    );
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
}

#[test]
fn named_sector_size_is_used_and_checked() {
    let d = MemDisk::new(mbr_4k());
    let opts = |ss| ReadOptions {
        sector_size: Some(ss),
        recognise: None,
    };
    let t = read_with(&d, Path::new("4k.img"), &opts(512)).unwrap();
    assert_eq!((t.sector_size, t.partitions.len()), (512, 2));
    assert!(
        t.warnings
            .iter()
            .map(ToString::to_string)
            .any(|w| w.contains("no 55 AA")),
        "{:?}",
        t.warnings
    );
    for bad in [0, 1000, 8192, u64::MAX] {
        let e = read_with(&d, Path::new("4k.img"), &opts(bad))
            .unwrap_err()
            .to_string();
        assert!(e.contains("4k.img") && e.contains("sector size"), "{e}");
    }
}

#[test]
fn mbr_sector_size_without_evidence_is_ambiguous_until_content_tells() {
    let mut d = vec![0u8; 2048 * 4096];
    mbr_entry(&mut d, 0, 0, 0x83, 256, 256);
    let d = MemDisk::new(d);
    let t = read(&d, Path::new("blank.img")).unwrap();
    assert_eq!(t.sector_size, 512);
    assert!(
        t.warnings
            .iter()
            .map(ToString::to_string)
            .any(|w| w.contains("ambiguous") && w.contains("--sector-size")),
        "{:?}",
        t.warnings
    );
    let at_4k = |start: u64, _len: u64| start == 256 * 4096;
    let opts = ReadOptions {
        sector_size: None,
        recognise: Some(&at_4k),
    };
    let t = read_with(&d, Path::new("fs.img"), &opts).unwrap();
    assert_eq!(t.sector_size, 4096);
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
}

/// A protective MBR and a primary GPT header at LBA 1 claiming a disk of `last + 34`
/// sectors, its 128-entry array at LBA 2 holding `entries`; the image is then cut to
/// `keep` sectors.
fn cut_gpt(last: u64, entries: &[(u8, u64, u64)], keep: usize) -> Vec<u8> {
    let mut d = vec![0u8; 34 * 512];
    mbr_entry(&mut d, 0, 0, 0xEE, 1, u32::MAX);
    let mut array = vec![0u8; 128 * 128];
    for (i, &(t, first, end)) in entries.iter().enumerate() {
        let e = i * 128;
        array[e] = t;
        array[e + 16] = i as u8 + 1;
        array[e + 32..e + 40].copy_from_slice(&first.to_le_bytes());
        array[e + 40..e + 48].copy_from_slice(&end.to_le_bytes());
    }
    d[1024..1024 + array.len()].copy_from_slice(&array);
    let mut hdr = vec![0u8; 92];
    hdr[0..8].copy_from_slice(b"EFI PART");
    hdr[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
    hdr[12..16].copy_from_slice(&92u32.to_le_bytes());
    hdr[24..32].copy_from_slice(&1u64.to_le_bytes());
    hdr[32..40].copy_from_slice(&last.saturating_add(33).to_le_bytes());
    hdr[40..48].copy_from_slice(&34u64.to_le_bytes());
    hdr[48..56].copy_from_slice(&last.to_le_bytes());
    hdr[72..80].copy_from_slice(&2u64.to_le_bytes());
    hdr[80..84].copy_from_slice(&128u32.to_le_bytes());
    hdr[84..88].copy_from_slice(&128u32.to_le_bytes());
    hdr[88..92].copy_from_slice(&crc32fast::hash(&array).to_le_bytes());
    let crc = crc32fast::hash(&hdr);
    hdr[16..20].copy_from_slice(&crc.to_le_bytes());
    d[512..604].copy_from_slice(&hdr);
    d.truncate(keep * 512);
    d
}

#[test]
fn gpt_cut_short_lists_what_the_image_still_holds() {
    let entries: Vec<(u8, u64, u64)> = (0..40)
        .map(|i| (1, 2048 + i * 100, 2147 + i * 100))
        .collect();
    // The whole array is there: every entry, CRC checked.
    let t = read(
        &MemDisk::new(cut_gpt(1 << 20, &entries, 34)),
        Path::new("a.img"),
    )
    .unwrap();
    assert_eq!((t.scheme, t.partitions.len()), (Scheme::Gpt, 40));
    assert_eq!(t.partitions[39].start, (2048 + 3900) * 512);
    assert!(
        t.warnings
            .iter()
            .map(ToString::to_string)
            .any(|w| w.contains("shorter")),
        "{:?}",
        t.warnings
    );
    // Part of it: the entries there, unchecked.
    let t = read(
        &MemDisk::new(cut_gpt(1 << 20, &entries, 10)),
        Path::new("p.img"),
    )
    .unwrap();
    assert_eq!(t.partitions.len(), 32);
    assert!(
        t.warnings
            .iter()
            .map(ToString::to_string)
            .any(|w| w.contains("only 32 of its 128")),
        "{:?}",
        t.warnings
    );
    // None of it.
    let t = read(
        &MemDisk::new(cut_gpt(1 << 20, &entries, 2)),
        Path::new("h.img"),
    )
    .unwrap();
    assert_eq!((t.scheme, t.partitions.len()), (Scheme::Gpt, 0));
    assert!(
        t.warnings
            .iter()
            .map(ToString::to_string)
            .any(|w| w.contains("entry array") && w.contains("past the end")),
        "{:?}",
        t.warnings
    );
}

#[test]
fn gpt_cut_short_with_a_bad_array_or_an_absurd_size_is_refused() {
    let mut d = cut_gpt(1 << 20, &[(1, 2048, 4095)], 34);
    d[1024 + 32] ^= 1; // the array no longer matches its CRC
    assert!(read(&MemDisk::new(d), Path::new("bad.img")).is_err());
    for last in [u64::MAX - 1, u64::MAX / 512, u64::MAX / 4096 + 1] {
        let d = cut_gpt(last, &[(1, last - 10, last - 1)], 34);
        let _ = read(&MemDisk::new(d), Path::new("huge.img"));
    }
}

#[test]
fn protective_mbr_without_gpt_is_an_error() {
    let mut d = disk();
    protective(&mut d);
    let e = read(&MemDisk::new(d), Path::new("p.img"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("p.img") && e.contains("protective"), "{e}");
}

#[test]
fn random_sectors_never_panic() {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..300 {
        let mut d = disk();
        for b in d.iter_mut().take(64 * 512) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        if x.is_multiple_of(2) {
            protective(&mut d);
        }
        let _ = read(&MemDisk::new(d), Path::new("r"));
    }
}
