//! Hostile inputs: each gives a typed error (or a warning and a fallback where LVM2 falls
//! back too), never a panic, within bounded memory and time.

mod support;

use diskray_core::{Error, MemDisk, VirtualDisk};
use diskray_lvm::crc::lvm_crc;
use diskray_lvm::map::LvState;
use diskray_lvm::mda::{read_header, read_text, MDA_HEADER_SIZE};
use diskray_lvm::{read_pv, text, Pv, Region, VgMetadata, VolumeGroup};
use std::path::Path;
use std::time::Instant;
use support::*;

fn corrupt_at(e: &Error) -> (u64, String) {
    match e {
        Error::Corrupt { offset, reason, .. } => (*offset, reason.clone()),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// Rewrites the label sector's checksum after an edit (so the edit, not the checksum, is
/// what the reader meets).
fn reseal_label(b: &mut [u8], sector: usize) {
    let s = &mut b[sector * 512..sector * 512 + 512];
    let crc = lvm_crc(&[&s[20..512]]);
    s[16..20].copy_from_slice(&crc.to_le_bytes());
}

fn reseal_mda(b: &mut [u8], at: usize) {
    let crc = lvm_crc(&[&b[at + 4..at + 512]]);
    b[at..at + 4].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn label_pointing_outside_the_disk() {
    let mut d = disk("damaged.img");
    let len = d.capacity();
    {
        let b = d.bytes_mut();
        // Sector 1: label header 32 bytes, pv_header at +32: uuid 32, size 8, then the
        // data area list at +72 of the sector.
        let at = 512 + 32 + 40;
        b[at..at + 8].copy_from_slice(&(len * 2).to_le_bytes());
        reseal_label(b, 1);
    }
    let e = read_pv(&d, Path::new("d.img"), 0, len).unwrap_err();
    let (off, why) = corrupt_at(&e);
    assert!(why.contains("inside the PV"), "{why}");
    assert!((512..1024).contains(&off), "{off}");
    // A PV header offset past the sector, and a sector number that lies.
    let mut d2 = disk("damaged.img");
    d2.bytes_mut()[512 + 20..512 + 24].copy_from_slice(&600u32.to_le_bytes());
    reseal_label(d2.bytes_mut(), 1);
    assert!(
        corrupt_at(&read_pv(&d2, Path::new("d.img"), 0, len).unwrap_err())
            .1
            .contains("PV header offset")
    );
    let mut d3 = disk("damaged.img");
    d3.bytes_mut()[512 + 8] = 3;
    reseal_label(d3.bytes_mut(), 1);
    assert!(
        corrupt_at(&read_pv(&d3, Path::new("d.img"), 0, len).unwrap_err())
            .1
            .contains("sector_xl")
    );
    // Unsealed edit: the checksum says so.
    let mut d4 = disk("damaged.img");
    d4.bytes_mut()[512 + 100] ^= 1;
    assert!(
        corrupt_at(&read_pv(&d4, Path::new("d.img"), 0, len).unwrap_err())
            .1
            .contains("checksum")
    );
    // The PV cut short: the metadata area no longer fits.
    let e = read_pv(&d, Path::new("d.img"), 0, 2048).unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e:?}");
    // No label at all.
    let blank = MemDisk::new(vec![0; 8192]);
    assert!(matches!(
        read_pv(&blank, Path::new("z.img"), 0, 8192).unwrap_err(),
        Error::Refused { .. }
    ));
}

/// The first metadata area's header of `d` (at PV byte 4096 in every fixture but
/// `wrapped.img`'s, which is there too).
const MDA0: usize = 4096;
const LOCN0: usize = MDA0 + 40;

#[test]
fn metadata_size_of_two_to_the_63() {
    let mut d = disk("damaged.img");
    let len = d.capacity();
    {
        let b = d.bytes_mut();
        b[LOCN0 + 8..LOCN0 + 16].copy_from_slice(&(1u64 << 63).to_le_bytes());
        reseal_mda(b, MDA0);
    }
    let r = Region::new(&d, Path::new("d.img"), 0, len);
    let area = diskray_lvm::Area {
        offset: MDA0 as u64,
        size: 0,
    };
    let hdr = read_header(&r, area).unwrap();
    let e = read_text(&r, &hdr, &hdr.locations[0]).unwrap_err();
    let (off, why) = corrupt_at(&e);
    assert_eq!(off, (LOCN0 + 8) as u64);
    assert!(why.contains("9223372036854775808"), "{why}");
    // read_pv says why and falls back to an older copy, as LVM's pvck would find one.
    let pv = read_pv(&d, Path::new("d.img"), 0, len).unwrap();
    assert!(
        pv.warnings
            .iter()
            .any(|w| w.to_string().contains("9223372036854775808")),
        "{:?}",
        pv.warnings
    );
    assert!(pv.metadata.is_some());
    // An area size of 2^63 in the header itself.
    let mut d2 = disk("damaged.img");
    d2.bytes_mut()[MDA0 + 32..MDA0 + 40].copy_from_slice(&(1u64 << 63).to_le_bytes());
    reseal_mda(d2.bytes_mut(), MDA0);
    let r2 = Region::new(&d2, Path::new("d.img"), 0, len);
    assert!(corrupt_at(&read_header(&r2, area).unwrap_err())
        .1
        .contains("area size"));
}

#[test]
fn wrapped_buffer_lying_about_its_size() {
    let mut d = disk("wrapped.img");
    let len = d.capacity();
    let r0 = Region::new(&d, Path::new("w.img"), 0, len);
    let area = diskray_lvm::Area {
        offset: MDA0 as u64,
        size: 0,
    };
    let hdr = read_header(&r0, area).unwrap();
    let l = hdr.locations[0];
    // Claim a size that would wrap past the text's own start: more than the buffer holds.
    let lie = hdr.size - MDA_HEADER_SIZE + 1;
    {
        let b = d.bytes_mut();
        b[LOCN0 + 8..LOCN0 + 16].copy_from_slice(&lie.to_le_bytes());
        reseal_mda(b, MDA0);
    }
    let r = Region::new(&d, Path::new("w.img"), 0, len);
    let hdr2 = read_header(&r, area).unwrap();
    let e = read_text(&r, &hdr2, &hdr2.locations[0]).unwrap_err();
    assert!(corrupt_at(&e).1.contains("circular buffer"), "{e}");
    // A size that fits but is not the text's: the checksum refuses it.
    let mut d2 = disk("wrapped.img");
    d2.bytes_mut()[LOCN0 + 8..LOCN0 + 16].copy_from_slice(&(l.size + 512).to_le_bytes());
    reseal_mda(d2.bytes_mut(), MDA0);
    let r2 = Region::new(&d2, Path::new("w.img"), 0, len);
    let hdr3 = read_header(&r2, area).unwrap();
    assert!(
        corrupt_at(&read_text(&r2, &hdr3, &hdr3.locations[0]).unwrap_err())
            .1
            .contains("checksum")
    );
    // An offset outside the area.
    let mut d3 = disk("wrapped.img");
    d3.bytes_mut()[LOCN0..LOCN0 + 8].copy_from_slice(&(hdr.size + 7).to_le_bytes());
    reseal_mda(d3.bytes_mut(), MDA0);
    let r3 = Region::new(&d3, Path::new("w.img"), 0, len);
    let hdr4 = read_header(&r3, area).unwrap();
    assert!(
        corrupt_at(&read_text(&r3, &hdr4, &hdr4.locations[0]).unwrap_err())
            .1
            .contains("offset")
    );
}

#[test]
fn unterminated_text() {
    for t in [
        &b"vg { id = \"abc"[..],
        b"vg { seqno = 1",
        b"vg { a = [\"x\", 1",
        b"vg { a = ",
        b"vg {\n# only a comment",
    ] {
        let e = VgMetadata::from_text(t, Path::new("t.txt")).unwrap_err();
        let (off, why) = corrupt_at(&e);
        assert!(off <= t.len() as u64, "{why}");
        assert!(why.contains("expected"), "{why}");
    }
}

#[test]
fn deeply_nested_sections() {
    let t = "a {".repeat(1_000_000);
    let start = Instant::now();
    let e = VgMetadata::from_text(t.as_bytes(), Path::new("deep.txt")).unwrap_err();
    assert!(corrupt_at(&e).1.contains("nested"), "{e}");
    assert!(start.elapsed().as_secs() < 5);
    assert!(text::parse(b"vg { logical_volumes { a { segment1 { b { c { d { e { f { g { h { i { j { k { l { m { n { o { } } } } } } } } } } } } } } } } } }").is_err());
}

/// The single-PV fixture's metadata, with `edit` applied to its text, assembled against
/// the real PV.
fn assemble_edited(edit: impl Fn(String) -> String) -> diskray_core::Result<VolumeGroup> {
    let d = disk("damaged.img");
    let mut pv: Pv = read_pv(&d, Path::new("d.img"), 0, d.capacity()).unwrap();
    // Without vgcfgbackup's trailing comments, so edits can span lines.
    let plain: String = truth("damaged-newest.vgcfg.txt")
        .lines()
        .map(|l| format!("{}\n", l.split("\t#").next().unwrap()))
        .collect();
    let text = edit(plain);
    pv.metadata = Some(VgMetadata::from_text(
        text.as_bytes(),
        Path::new("edited.txt"),
    )?);
    VolumeGroup::assemble(&[pv])
}

#[test]
fn segment_past_pe_count() {
    // `newest` starts at extent 3 of pv0 for 2 extents; pe_count is 15.
    let e = assemble_edited(|t| t.replace("\"pv0\", 3", "\"pv0\", 14")).unwrap_err();
    let (_, why) = corrupt_at(&e);
    assert!(why.contains("pe_count 15"), "{why}");
    let e = assemble_edited(|t| t.replace("pe_count = 15", "pe_count = 4")).unwrap_err();
    assert!(corrupt_at(&e).1.contains("pe_count 4"));
    // A PV whose extents run past the device.
    let e = assemble_edited(|t| t.replace("pe_count = 15", "pe_count = 9999")).unwrap_err();
    assert!(corrupt_at(&e).1.contains("within the device"));
    // Extents at 2^62: no overflow.
    let e =
        assemble_edited(|t| t.replace("\"pv0\", 3", "\"pv0\", 4611686018427387904")).unwrap_err();
    assert!(corrupt_at(&e).1.contains("pe_count"));
}

#[test]
fn lv_mapping_its_own_extents_twice() {
    // `older` (extents 0-2) gets a second segment on the same extents.
    let e = assemble_edited(|t| {
        t.replacen("segment_count = 1", "segment_count = 2", 1).replacen(
            "\t\t\t}\n\t\t}\n",
            "\t\t\t}\n\t\t\tsegment2 {\n\t\t\t\tstart_extent = 3\n\t\t\t\textent_count = 2\n\t\t\t\ttype = \"striped\"\n\t\t\t\tstripe_count = 1\n\t\t\t\tstripes = [\"pv0\", 1]\n\t\t\t}\n\t\t}\n",
            1,
        )
    })
    .unwrap_err();
    let (_, why) = corrupt_at(&e);
    assert!(
        why.contains("mapped twice") && why.contains("older"),
        "{why}"
    );
    // Two LVs on the same extents.
    let e = assemble_edited(|t| t.replace("\"pv0\", 3", "\"pv0\", 2")).unwrap_err();
    assert!(corrupt_at(&e).1.contains("mapped twice"));
}

#[test]
fn stripe_count_disagreeing_with_the_stripes_array() {
    let e = assemble_edited(|t| {
        t.replacen(
            "stripe_count = 1",
            "stripe_count = 2\n stripe_size = 128",
            1,
        )
    })
    .unwrap_err();
    assert!(corrupt_at(&e).1.contains("extent_count") || corrupt_at(&e).1.contains("pairs"));
    let e = assemble_edited(|t| t.replacen("\"pv0\", 0", "\"pv0\", 0, \"pv0\"", 1)).unwrap_err();
    assert!(corrupt_at(&e).1.contains("pairs"), "{e}");
    let e = assemble_edited(|t| t.replacen("\"pv0\", 0", "\"pvX\", 0", 1)).unwrap_err();
    assert!(corrupt_at(&e).1.contains("neither a PV nor an LV"), "{e}");
    let e =
        assemble_edited(|t| t.replacen("segment_count = 1", "segment_count = 3", 1)).unwrap_err();
    assert!(corrupt_at(&e).1.contains("segment2"), "{e}");
}

#[test]
fn sub_lv_cycles_are_unknown_not_infinite() {
    // `older` is striped over `newest` and `newest` over `older`.
    let vg = assemble_edited(|t| {
        t.replacen("extent_count = 3", "extent_count = 2", 1)
            .replacen("\"pv0\", 0", "\"newest\", 0", 1)
            .replacen("\"pv0\", 3", "\"older\", 0", 1)
    })
    .unwrap();
    for lv in ["older", "newest"] {
        assert!(
            matches!(vg.lv(lv).unwrap().state, LvState::Unknown { .. }),
            "{lv}"
        );
    }
}

#[test]
fn ten_thousand_lvs() {
    const N: u64 = 10_000;
    let mut t = String::from(
        "big {\n\tid = \"aaaaaa-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa\"\n\tseqno = 9\n\textent_size = 8\n\tphysical_volumes {\n\t\tpv0 {\n\t\t\tid = \"PVID\"\n\t\t\tdevice = \"/dev/x\"\n\t\t\tdev_size = 100000\n\t\t\tpe_start = 2048\n\t\t\tpe_count = 10000\n\t\t}\n\t}\n\tlogical_volumes {\n",
    );
    for i in 0..N {
        t.push_str(&format!(
            "\t\tlv{i} {{\n\t\t\tid = \"bbbbbb-bbbb-bbbb-bbbb-bbbb-bbbb-{i:06}\"\n\t\t\tstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\n\t\t\tflags = []\n\t\t\tsegment_count = 1\n\n\t\t\tsegment1 {{\n\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = 1\n\n\t\t\t\ttype = \"striped\"\n\t\t\t\tstripe_count = 1\n\n\t\t\t\tstripes = [\n\t\t\t\t\t\"pv0\", {i}\n\t\t\t\t]\n\t\t\t}}\n\t\t}}\n"
        ));
    }
    t.push_str("\t}\n}\ncontents = \"Text Format Volume Group\"\nversion = 1\n");
    let d = disk("damaged.img");
    let mut pv = read_pv(&d, Path::new("d.img"), 0, d.capacity()).unwrap();
    t = t.replace("PVID", &pv.label.pv_uuid);
    pv.length = 2048 * 512 + N * 4096;
    let start = Instant::now();
    let meta = VgMetadata::from_text(t.as_bytes(), Path::new("big.txt")).unwrap();
    assert_eq!(meta.lvs.len(), N as usize);
    pv.metadata = Some(meta);
    let vg = VolumeGroup::assemble(&[pv]).unwrap();
    assert_eq!(vg.lvs.len(), N as usize);
    assert!(vg.lvs.iter().all(|l| l.state == LvState::Mapped));
    assert_eq!(vg.pvs[0].ranges.len(), 1 + N as usize);
    let took = start.elapsed();
    eprintln!(
        "10 000 LVs parsed and assembled in {took:?} ({} bytes of text)",
        t.len()
    );
    assert!(
        took.as_secs() < 10,
        "{took:?} for {} bytes of text",
        t.len()
    );
}

#[test]
fn truncated_and_garbage_pvs_never_panic() {
    let img = image("twomdas.img");
    for cut in [
        0usize,
        511,
        512,
        1024,
        4096,
        4600,
        8192,
        1 << 20,
        img.len() - 1,
    ] {
        let d = MemDisk::new(img[..cut.min(img.len())].to_vec());
        let _ = read_pv(&d, Path::new("cut.img"), 0, d.capacity());
    }
    // Every byte of the label and header sectors flipped in turn.
    for i in (0..1024).step_by(7).chain((4096..4096 + 600).step_by(5)) {
        let mut b = img.clone();
        b[i] ^= 0x41;
        let d = MemDisk::new(b);
        if let Ok(pv) = read_pv(&d, Path::new("flip.img"), 0, d.capacity()) {
            let _ = VolumeGroup::assemble(&[pv]);
        }
    }
}

#[test]
fn sizes_that_overflow_and_stripes_that_do_not_divide_the_extent() {
    // A thin LV's virtual size is bounded only by the text: 2^62 extents of 1 MiB.
    let e = assemble_edited(|t| {
        t.replacen("extent_count = 2", "extent_count = 4611686018427387904", 1)
            .replacen("type = \"striped\"\n\t\t\t\tstripe_count = 1\n\n\t\t\t\tstripes = [\n\t\t\t\t\t\"pv0\", 3\n\t\t\t\t]", "type = \"thin\"\n\t\t\t\tthin_pool = \"older\"", 1)
    })
    .unwrap_err();
    assert!(corrupt_at(&e).1.contains("overflow"), "{e}");
    // Two stripes of 3 sectors in 2048-sector extents.
    let e = assemble_edited(|t| {
        t.replacen("extent_count = 2", "extent_count = 4", 1)
            .replacen("stripe_count = 1\n\n\t\t\t\tstripes = [\n\t\t\t\t\t\"pv0\", 3", "stripe_count = 2\n\t\t\t\tstripe_size = 3\n\t\t\t\tstripes = [\n\t\t\t\t\t\"pv0\", 3, \"pv0\", 5", 1)
    })
    .unwrap_err();
    assert!(corrupt_at(&e).1.contains("dividing the extent size"), "{e}");
}
