//! Every fixture of `fixtures/lvm` read and assembled, compared with what LVM's own tools
//! (pvs, lvs --segments, vgcfgbackup) recorded when make.sh built it.

mod support;

use diskray_core::VirtualDisk;
use diskray_lvm::map::{LvRole, LvState, PvClass};
use diskray_lvm::metadata::SegmentKind;
use diskray_lvm::{read_pv, LvDisk, Pv, VolumeGroup};
use std::path::Path;
use support::*;

/// The fixture's disks, read.
fn load(names: &[&str]) -> (Vec<diskray_core::MemDisk>, Vec<Pv>) {
    let disks: Vec<_> = names.iter().map(|n| disk(n)).collect();
    let pvs = names.iter().zip(&disks).map(|(n, d)| pv_of(n, d)).collect();
    (disks, pvs)
}

/// The PV names the truth uses for each PV (the same order as `names`).
fn pv_name(vg: &VolumeGroup, pvs: &[Pv], key: &str) -> String {
    let slot = vg.pvs.iter().find(|s| s.key == key).unwrap();
    let p = &pvs[slot.source.unwrap()];
    let name = p.path.to_string_lossy().into_owned();
    if name == "linear.img" {
        "linear.img:p2".into()
    } else {
        name
    }
}

/// `pvs` truth: UUID, pe_start, size, device size, extent counts.
fn check_pvs(truth_file: &str, vg: &VolumeGroup, pvs: &[Pv]) {
    let rows = report(truth_file, "pv");
    assert_eq!(rows.len(), vg.pvs.len(), "{truth_file}");
    for row in rows {
        let slot = vg
            .pvs
            .iter()
            .find(|s| s.uuid == field(&row, "pv_uuid"))
            .unwrap_or_else(|| panic!("{}", field(&row, "pv_uuid")));
        let p = &pvs[slot.source.unwrap()];
        assert_eq!(p.label.pv_uuid, field(&row, "pv_uuid"));
        assert_eq!(pv_name(vg, pvs, &slot.key), field(&row, "pv_name"));
        assert_eq!(
            slot.pe_start.to_string(),
            field(&row, "pe_start"),
            "{truth_file}"
        );
        assert_eq!(
            slot.pe_count.to_string(),
            field(&row, "pv_pe_count"),
            "{truth_file}"
        );
        assert_eq!(
            (slot.pe_count * vg.extent_size).to_string(),
            field(&row, "pv_size")
        );
        assert_eq!(
            p.length.to_string(),
            field(&row, "dev_size"),
            "{truth_file}"
        );
        let alloc: u64 = slot
            .ranges
            .iter()
            .filter(|r| matches!(r.class, PvClass::Lv { .. }))
            .map(|r| r.length)
            .sum();
        assert_eq!(
            (alloc / vg.extent_size).to_string(),
            field(&row, "pv_pe_alloc_count"),
            "{truth_file}"
        );
        // The classes tile the PV.
        let mut at = 0;
        for r in &slot.ranges {
            assert_eq!(r.start, at, "{truth_file}: {:?}", slot.ranges);
            at += r.length;
        }
        assert_eq!(at, p.length);
    }
}

/// `lvs -a --segments` truth: every segment's type, stripes, stripe size, extents, PE
/// ranges and devices; and every mapped LV's runs on its PVs.
fn check_lvs(truth_file: &str, vg: &VolumeGroup, pvs: &[Pv], meta: &diskray_lvm::VgMetadata) {
    let rows = report(truth_file, "seg");
    let mut ours = Vec::new();
    for lv in &meta.lvs {
        for seg in &lv.segments {
            let end = |start: u64, n: u64| format!("{}-{}", start, start + n - 1);
            let (stripes, size, ranges, devices) = match &seg.kind {
                SegmentKind::Striped { stripe_size, areas } => {
                    let per = seg.extent_count / areas.len() as u64;
                    (
                        areas.len(),
                        stripe_size * 512,
                        areas
                            .iter()
                            .map(|a| {
                                format!("{}:{}", pv_name(vg, pvs, &a.name), end(a.extent, per))
                            })
                            .collect::<Vec<_>>()
                            .join(" "),
                        areas
                            .iter()
                            .map(|a| format!("{}({})", pv_name(vg, pvs, &a.name), a.extent))
                            .collect::<Vec<_>>()
                            .join(","),
                    )
                }
                SegmentKind::Mirror { areas, .. } => (
                    areas.len(),
                    0,
                    areas
                        .iter()
                        .map(|a| format!("{}:{}", a.name, end(a.extent, seg.extent_count)))
                        .collect::<Vec<_>>()
                        .join(" "),
                    areas
                        .iter()
                        .map(|a| format!("{}({})", a.name, a.extent))
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                SegmentKind::Raid { images, .. } => (
                    images.len(),
                    0,
                    images
                        .iter()
                        .map(|i| format!("{i}:{}", end(seg.start_extent, seg.extent_count)))
                        .collect::<Vec<_>>()
                        .join(" "),
                    images
                        .iter()
                        .map(|i| format!("{i}({})", seg.start_extent))
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                SegmentKind::Other { .. } => (usize::MAX, 0, String::new(), String::new()),
            };
            let segtype = if seg.type_name == "striped" && stripes == 1 {
                "linear".to_string()
            } else {
                seg.type_name.clone()
            };
            ours.push((
                lv.name.clone(),
                segtype,
                stripes,
                size,
                seg.start_extent,
                seg.extent_count,
                ranges,
                devices,
            ));
        }
    }
    // lvs never lists the internal `snapshotN` LV that joins an origin to its COW store.
    ours.retain(|o| o.1 != "snapshot");
    assert_eq!(ours.len(), rows.len(), "{truth_file}: segment count");
    for row in &rows {
        let name = field(row, "lv_name").trim_matches(|c| c == '[' || c == ']');
        let start: u64 = field(row, "seg_start_pe").parse().unwrap();
        let o = ours
            .iter()
            .find(|o| o.0 == name && o.4 == start)
            .unwrap_or_else(|| panic!("{truth_file}: no segment {name}@{start}"));
        assert_eq!(o.1, field(row, "segtype"), "{truth_file} {name}");
        assert_eq!(
            o.5.to_string(),
            field(row, "seg_size_pe"),
            "{truth_file} {name}"
        );
        if o.2 != usize::MAX {
            assert_eq!(
                o.2.to_string(),
                field(row, "stripes"),
                "{truth_file} {name}"
            );
            assert_eq!(
                o.3.to_string(),
                field(row, "stripe_size"),
                "{truth_file} {name}"
            );
            assert_eq!(o.6, field(row, "seg_pe_ranges"), "{truth_file} {name}");
            assert_eq!(o.7, field(row, "devices"), "{truth_file} {name}");
        }
        // The byte runs of a mapped LV follow the PE ranges the tools print.
        let lv = vg.lv(name).unwrap();
        if lv.state == LvState::Mapped && matches!(o.1.as_str(), "linear" | "striped") {
            let m = lv
                .mappings
                .iter()
                .find(|m| m.lv_start == start * vg.extent_size)
                .unwrap();
            for (area, text) in m.areas.iter().zip(field(row, "seg_pe_ranges").split(' ')) {
                let (pvn, r) = text.rsplit_once(':').unwrap();
                let (a, b) = r.split_once('-').unwrap();
                let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
                assert_eq!(pv_name(vg, pvs, &vg.pvs[area.pv].key), pvn);
                assert_eq!(
                    area.start,
                    vg.pvs[area.pv].pe_start + a * vg.extent_size,
                    "{name}"
                );
                assert_eq!(area.length, (b - a + 1) * vg.extent_size, "{name}");
            }
        }
    }
}

fn assemble(names: &[&str]) -> (Vec<diskray_core::MemDisk>, Vec<Pv>, VolumeGroup) {
    let (d, p) = load(names);
    let vg = VolumeGroup::assemble(&p).unwrap();
    (d, p, vg)
}

#[test]
fn linear_pv_in_a_gpt_partition() {
    let (disks, pvs, vg) = assemble(&["linear.img"]);
    assert!(vg.warnings.is_empty(), "{:?}", vg.warnings);
    assert_eq!(vg.name, "vg0");
    assert_eq!(vg.seqno, backup_seqno("linear.vgcfg.txt"));
    let meta = pvs[0].metadata.clone().unwrap();
    check_pvs("linear.pvs.json", &vg, &pvs);
    check_lvs("linear.lvs.json", &vg, &pvs, &meta);
    // The root LV, read through the mapping, is the ext4 make.sh wrote (label and UUID
    // given to mkfs.ext4 there); swap carries mkswap's signature and label.
    let regions = [pvs[0].region(&disks[0])];
    let root = LvDisk::new(
        &vg,
        vg.lvs.iter().position(|l| l.name == "root").unwrap(),
        &regions,
    )
    .unwrap();
    assert_eq!(root.capacity(), 12 << 20);
    let mut sb = [0u8; 1024];
    root.read_at(&mut sb, 1024).unwrap();
    assert_eq!(&sb[56..58], &[0x53, 0xEF]);
    assert_eq!(&sb[120..125], b"root\0");
    assert_eq!(&sb[104..108], &[0x0b, 0x5e, 0x1f, 0x2a]);
    // Every byte of root read through the mapping equals the LV cut out of the PV with dd
    // at the pe_start pvs reports (make.sh recorded its SHA-256).
    use sha2::{Digest, Sha256};
    let mut all = vec![0u8; root.capacity() as usize];
    root.read_at(&mut all, 0).unwrap();
    let hex: String = Sha256::digest(&all)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(hex, truth("linear.root.sha256").trim());
    let swap = LvDisk::new(
        &vg,
        vg.lvs.iter().position(|l| l.name == "swap").unwrap(),
        &regions,
    )
    .unwrap();
    let mut page = vec![0u8; 4096];
    swap.read_at(&mut page, 0).unwrap();
    assert_eq!(&page[4086..], b"SWAPSPACE2");
    assert_eq!(&page[1052..1056], b"swap");
}

#[test]
fn vg_across_two_disks_with_a_striped_lv() {
    let (disks, pvs, vg) = assemble(&["span-a.img", "span-b.img"]);
    assert!(vg.warnings.is_empty(), "{:?}", vg.warnings);
    let meta = pvs[0].metadata.clone().unwrap();
    check_pvs("span.pvs.json", &vg, &pvs);
    check_lvs("span.lvs.json", &vg, &pvs, &meta);
    let data = vg.lv("data").unwrap();
    assert_eq!(data.mappings.len(), 2);
    assert_ne!(data.mappings[0].areas[0].pv, data.mappings[1].areas[0].pv);
    // Striped: chunk k of 64 KiB lies on stripe k % 2 at row k / 2 (the truth's devices and
    // stripe_size); the LV read through the mapping equals those bytes of the disks.
    let st = vg.lv("st").unwrap();
    let m = &st.mappings[0];
    assert_eq!(m.stripe_size, 65536);
    let regions: Vec<_> = pvs.iter().zip(&disks).map(|(p, d)| p.region(d)).collect();
    let lvd = LvDisk::new(
        &vg,
        vg.lvs.iter().position(|l| l.name == "st").unwrap(),
        &regions,
    )
    .unwrap();
    for k in [0u64, 1, 2, 3, 17, 63] {
        let (pv, off, avail) = m.locate(k * 65536 + 100);
        let a = m.areas[(k % 2) as usize];
        assert_eq!(pv, a.pv);
        assert_eq!(off, a.start + (k / 2) * 65536 + 100);
        assert_eq!(avail, 65536 - 100);
    }
    // Stamp distinct bytes where stripes 0 and 1 lie and read them back through the LV.
    let mut a = disks[0].clone();
    let mut b = disks[1].clone();
    let (sa, sb) = (m.areas[0].start as usize, m.areas[1].start as usize);
    let (ia, ib) = (
        vg.pvs[m.areas[0].pv].source.unwrap(),
        vg.pvs[m.areas[1].pv].source.unwrap(),
    );
    assert_eq!((ia, ib), (0, 1));
    a.bytes_mut()[sa..sa + 4].copy_from_slice(b"AAAA");
    b.bytes_mut()[sb..sb + 4].copy_from_slice(b"BBBB");
    let regions = [pvs[0].region(&a), pvs[1].region(&b)];
    let lvd2 = LvDisk::new(
        &vg,
        vg.lvs.iter().position(|l| l.name == "st").unwrap(),
        &regions,
    )
    .unwrap();
    let mut buf = [0u8; 4];
    lvd2.read_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"AAAA");
    lvd2.read_at(&mut buf, 65536).unwrap();
    assert_eq!(&buf, b"BBBB");
    drop(lvd);
}

#[test]
fn second_disk_missing_makes_its_lvs_unknown() {
    let (_d, pvs, vg) = assemble(&["span-a.img"]);
    let b_uuid = report("span.pvs.json", "pv")
        .iter()
        .find(|r| field(r, "pv_name") == "span-b.img")
        .map(|r| field(r, "pv_uuid").to_string())
        .unwrap();
    assert!(
        vg.warnings.iter().any(|w| w.to_string().contains(&b_uuid)
            && w.to_string().contains("missing")
            && w.to_string().contains("span-a.img")),
        "{:?}",
        vg.warnings
    );
    for name in ["data", "st"] {
        assert!(
            matches!(vg.lv(name).unwrap().state, LvState::Unknown { .. }),
            "{name}"
        );
        assert!(
            vg.warnings
                .iter()
                .any(|w| w.to_string().contains(&format!("vgspan/{name} is unknown"))),
            "{:?}",
            vg.warnings
        );
    }
    assert_eq!(vg.lv("spare").unwrap().state, LvState::Mapped);
    assert!(vg
        .pvs
        .iter()
        .any(|s| s.source.is_none() && s.ranges.is_empty()));
    check_tiles(&vg, &pvs);
}

fn check_tiles(vg: &VolumeGroup, pvs: &[Pv]) {
    for s in vg.pvs.iter().filter(|s| s.source.is_some()) {
        let mut at = 0;
        for r in &s.ranges {
            assert_eq!(r.start, at);
            at += r.length;
        }
        assert_eq!(at, pvs[s.source.unwrap()].length);
    }
}

#[test]
fn raid1_mirror_thin_and_snapshot() {
    let (_d, pvs, vg) = assemble(&["special-a.img", "special-b.img"]);
    let meta = pvs[0].metadata.clone().unwrap();
    check_pvs("special.pvs.json", &vg, &pvs);
    check_lvs("special.lvs.json", &vg, &pvs, &meta);
    // raid1 and mirror read from their first leg.
    for (lv, leg0) in [("r1", "r1_rimage_0"), ("m1", "m1_mimage_0")] {
        let l = vg.lv(lv).unwrap();
        assert_eq!(l.state, LvState::Mapped, "{lv}");
        assert_eq!(l.mappings[0].areas, vg.lv(leg0).unwrap().owned, "{lv}");
        assert_eq!(
            vg.lv(leg0).unwrap().role,
            LvRole::Image {
                parent: lv.into(),
                leg: 0
            }
        );
    }
    assert_eq!(
        vg.lv("r1_rmeta_1").unwrap().role,
        LvRole::RaidMetadata {
            parent: "r1".into()
        }
    );
    assert_eq!(
        vg.lv("m1_mlog").unwrap().role,
        LvRole::MirrorLog {
            parent: "m1".into()
        }
    );
    // Thin, its pool and the pool's parts, the snapshot and its COW store: unknown, named.
    for name in [
        "pool",
        "pool_tdata",
        "pool_tmeta",
        "thin1",
        "snapshot0",
        "snap",
    ] {
        assert!(
            matches!(vg.lv(name).unwrap().state, LvState::Unknown { .. }),
            "{name}"
        );
    }
    for name in ["pool", "pool_tdata", "pool_tmeta", "thin1", "snap"] {
        assert!(
            vg.warnings
                .iter()
                .any(|w| w.to_string().contains(&format!("vgsp/{name} is unknown"))),
            "{name}: {:?}",
            vg.warnings
        );
    }
    // The origin of the snapshot stays readable.
    assert_eq!(vg.lv("root").unwrap().state, LvState::Mapped);
    check_tiles(&vg, &pvs);
}

#[test]
fn wrapped_circular_buffer() {
    // The fixture really wraps: make.sh recorded the current copy's location.
    let info: serde_json::Value =
        serde_json::from_str(truth("wrapped.mda.jsonl").lines().next().unwrap()).unwrap();
    let (off, size, area) = (
        info["offset"].as_u64().unwrap(),
        info["text_size"].as_u64().unwrap(),
        info["hdr_size"].as_u64().unwrap(),
    );
    assert!(off + size > area);
    let (_d, pvs, vg) = assemble(&["wrapped.img"]);
    assert!(vg.warnings.is_empty(), "{:?}", vg.warnings);
    assert_eq!(pvs[0].metadata_at, Some((0, off)));
    assert_eq!(vg.seqno, backup_seqno("wrapped.vgcfg.txt"));
    let meta = pvs[0].metadata.clone().unwrap();
    check_pvs("wrapped.pvs.json", &vg, &pvs);
    check_lvs("wrapped.lvs.json", &vg, &pvs, &meta);
}

#[test]
fn damaged_newest_copy_falls_back_to_the_one_before() {
    let d = disk("damaged.img");
    let pv = read_pv(&d, Path::new("damaged.img"), 0, d.capacity()).unwrap();
    let w = pv
        .warnings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(w.contains("checksum"), "{w}");
    assert!(
        w.contains("fell back") && w.to_string().contains("seqno"),
        "{w}"
    );
    let meta = pv.metadata.clone().unwrap();
    assert_eq!(meta.seqno, backup_seqno("damaged-before.vgcfg.txt"));
    assert!(meta.seqno < backup_seqno("damaged-newest.vgcfg.txt"));
    let pvs = vec![pv];
    let vg = VolumeGroup::assemble(&pvs).unwrap();
    check_pvs("damaged-before.pvs.json", &vg, &pvs);
    check_lvs("damaged-before.lvs.json", &vg, &pvs, &meta);
    assert!(vg.lv("newest").is_none());
    // The copy used is the one `pvck --dump metadata_all` lists with that seqno: same
    // place (PV byte) and length.
    let all = truth("damaged-after.metadata_all.txt");
    let line = all
        .lines()
        .find(|l| l.contains(&format!(" seqno {} ", meta.seqno)))
        .unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    let (at, len): (u64, usize) = (words[2].parse().unwrap(), words[4].parse().unwrap());
    let (area, off) = pvs[0].metadata_at.unwrap();
    assert_eq!(pvs[0].label.metadata_areas[area].offset + off, at, "{line}");
    let hdr = pvs[0].mdas[area].clone().unwrap();
    let region = pvs[0].region(&d);
    let copies = diskray_lvm::mda::scan_older(&region, &hdr, 0).unwrap();
    // pvck's length counts the NUL that ends every copy (raw_locn.size counts it too);
    // the scan stops before it.
    assert_eq!(
        copies.iter().find(|c| c.offset == off).unwrap().bytes.len() + 1,
        len
    );
    // And the scan finds exactly the copies pvck finds.
    let mut found: Vec<u64> = copies.iter().map(|c| hdr.start + c.offset).collect();
    found.sort();
    let listed: Vec<u64> = all
        .lines()
        .map(|l| l.split_whitespace().nth(2).unwrap().parse().unwrap())
        .collect();
    assert_eq!(found, listed);
}

#[test]
fn one_of_two_metadata_areas_damaged() {
    let (_d, pvs, vg) = assemble(&["twomdas.img"]);
    assert_eq!(pvs[0].label.metadata_areas.len(), 2);
    assert!(pvs[0].mdas[0].is_none());
    assert_eq!(pvs[0].metadata_at.unwrap().0, 1);
    assert!(
        pvs[0].warnings.iter().any(
            |w| w.to_string().contains("metadata area 0") && w.to_string().contains("checksum")
        ),
        "{:?}",
        pvs[0].warnings
    );
    assert_eq!(vg.seqno, backup_seqno("twomdas.vgcfg.txt"));
    let meta = pvs[0].metadata.clone().unwrap();
    check_pvs("twomdas.pvs.json", &vg, &pvs);
    check_lvs("twomdas.lvs.json", &vg, &pvs, &meta);
    // The second area, at the end of the PV, is metadata, not slack.
    let slot = &vg.pvs[0];
    let mda1 = pvs[0].label.metadata_areas[1];
    assert!(
        slot.ranges.iter().any(|r| r.class == PvClass::Metadata
            && r.start == mda1.offset
            && r.length == mda1.size),
        "{:?}",
        slot.ranges
    );
}

#[test]
fn backup_files_parse_to_the_same_model_as_the_disks() {
    for (file, img) in [
        ("linear.vgcfg.txt", "linear.img"),
        ("span.vgcfg.txt", "span-a.img"),
        ("special.vgcfg.txt", "special-a.img"),
        ("wrapped.vgcfg.txt", "wrapped.img"),
    ] {
        let text = truth(file);
        let from_file =
            diskray_lvm::VgMetadata::from_text(text.as_bytes(), Path::new(file)).unwrap();
        let d = disk(img);
        let pv = pv_of(img, &d);
        let ours = pv.metadata.unwrap();
        assert_eq!(from_file.seqno, ours.seqno, "{file}");
        assert_eq!(
            from_file.lvs,
            ours.lvs
                .iter()
                .map(|l| {
                    let mut l = l.clone();
                    l.pos = from_file.lvs.iter().find(|f| f.name == l.name).unwrap().pos;
                    for (s, f) in l.segments.iter_mut().zip(
                        &from_file
                            .lvs
                            .iter()
                            .find(|f| f.name == l.name)
                            .unwrap()
                            .segments,
                    ) {
                        s.pos = f.pos;
                    }
                    l
                })
                .collect::<Vec<_>>(),
            "{file}"
        );
    }
}

#[test]
fn filesystems_across_disks_and_stripes_read_back_whole() {
    // make.sh built each filesystem as a file and placed it on the extents `lvs` reports
    // (tools/place.py); read through diskray's mapping, each LV is that file again.
    let (disks, pvs, vg) = assemble(&["span-a.img", "span-b.img"]);
    let regions: Vec<_> = pvs.iter().zip(&disks).map(|(p, d)| p.region(d)).collect();
    for lv in ["data", "st"] {
        let want = image(&format!("span-{lv}.ext4"));
        let idx = vg.lvs.iter().position(|l| l.name == lv).unwrap();
        let d = LvDisk::new(&vg, idx, &regions).unwrap();
        assert_eq!(d.capacity(), want.len() as u64, "{lv}");
        let mut got = vec![0u8; want.len()];
        d.read_at(&mut got, 0).unwrap();
        assert!(
            got == want,
            "{lv}: the LV's bytes differ from the filesystem placed on it"
        );
        // Reads that start mid-chunk and cross stripe and segment boundaries.
        for (off, len) in [
            (65536 - 7, 20usize),
            (4 * 1048576 - 3, 9),
            (123_457, 300_000),
        ] {
            if off + len as u64 <= want.len() as u64 {
                let mut b = vec![0u8; len];
                d.read_at(&mut b, off).unwrap();
                assert_eq!(b, want[off as usize..off as usize + len], "{lv} at {off}");
            }
        }
        assert!(d.read_at(&mut [0u8; 2], want.len() as u64 - 1).is_err());
    }
}

#[test]
fn lv_allocation_map_comes_from_the_disks_under_it() {
    // A disk that calls every all-zero 64 KiB block unallocated, like a sparse container.
    struct Sparse(diskray_core::MemDisk);
    impl VirtualDisk for Sparse {
        fn capacity(&self) -> u64 {
            self.0.capacity()
        }
        fn read_at(&self, buf: &mut [u8], offset: u64) -> diskray_core::Result<()> {
            self.0.read_at(buf, offset)
        }
        fn map(
            &self,
            range: diskray_core::ByteRange,
        ) -> diskray_core::Result<Vec<diskray_core::MapRange>> {
            let mut out = Vec::new();
            let mut at = range.start;
            while at < range.start + range.length {
                let block = at / 65536 * 65536;
                let n = (block + 65536).min(range.start + range.length) - at;
                let mut b = vec![0u8; 65536.min((self.capacity() - block) as usize)];
                self.0.read_at(&mut b, block).unwrap();
                let state = if b.iter().all(|&x| x == 0) {
                    diskray_core::BlockState::Unallocated
                } else {
                    diskray_core::BlockState::Data
                };
                diskray_core::disk::push_run(
                    &mut out,
                    diskray_core::MapRange {
                        start: at,
                        length: n,
                        state,
                        depth: 0,
                    },
                );
                at += n;
            }
            Ok(out)
        }
    }
    let names = ["span-a.img", "span-b.img"];
    let disks: Vec<Sparse> = names.iter().map(|n| Sparse(disk(n))).collect();
    let pvs: Vec<Pv> = names
        .iter()
        .zip(&disks)
        .map(|(n, d)| read_pv(d, Path::new(n), 0, d.capacity()).unwrap())
        .collect();
    let vg = VolumeGroup::assemble(&pvs).unwrap();
    let regions: Vec<_> = pvs.iter().zip(&disks).map(|(p, d)| p.region(d)).collect();
    for lv in ["data", "st"] {
        let want = image(&format!("span-{lv}.ext4"));
        let d = LvDisk::new(
            &vg,
            vg.lvs.iter().position(|l| l.name == lv).unwrap(),
            &regions,
        )
        .unwrap();
        let map = d
            .map(diskray_core::ByteRange::new(0, d.capacity()))
            .unwrap();
        let mut at = 0;
        for r in &map {
            assert_eq!(r.start, at, "{lv}");
            at += r.length;
            // Unallocated exactly where the filesystem image holds zeros.
            for blk in (r.start..r.start + r.length).step_by(65536) {
                let zero = want[blk as usize..(blk as usize + 65536).min(want.len())]
                    .iter()
                    .all(|&x| x == 0);
                assert_eq!(
                    zero,
                    r.state == diskray_core::BlockState::Unallocated,
                    "{lv} at {blk}"
                );
            }
        }
        assert_eq!(at, d.capacity());
        assert!(map
            .iter()
            .any(|r| r.state == diskray_core::BlockState::Unallocated));
    }
}

#[test]
fn pvs_of_several_vgs_are_grouped_by_vg() {
    let names = [
        "span-b.img",
        "linear.img",
        "special-a.img",
        "span-a.img",
        "special-b.img",
    ];
    let (_d, pvs) = load(&names);
    let groups = diskray_lvm::group_pvs(&pvs);
    assert_eq!(groups.len(), 3);
    let by_name = |g: &[usize]| g.iter().map(|&i| names[i]).collect::<Vec<_>>();
    let mut got: Vec<Vec<&str>> = groups.iter().map(|(_, g)| by_name(g)).collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            vec!["linear.img"],
            vec!["span-b.img", "span-a.img"],
            vec!["special-a.img", "special-b.img"]
        ]
    );
    for (_, g) in &groups {
        let members: Vec<Pv> = g.iter().map(|&i| pvs[i].clone()).collect();
        let vg = VolumeGroup::assemble(&members).unwrap();
        assert!(vg.pvs.iter().all(|s| s.source.is_some()), "{}", vg.name);
    }
}

/// The PV byte run `lvs --segments` gives `lv` of `vgsp` on `disk`, by its one
/// `seg_pe_ranges` ("special-b.img:1-2"), `pvs`'s `pe_start` and the extent size.
fn special_run(lv: &str) -> (String, u64, u64) {
    let seg = report("special.lvs.json", "seg");
    let row = seg
        .iter()
        .find(|r| field(r, "lv_name").trim_matches(|c| c == '[' || c == ']') == lv)
        .unwrap();
    let (disk, pes) = field(row, "seg_pe_ranges").split_once(':').unwrap();
    let (a, b) = pes.split_once('-').unwrap();
    let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
    let pv = report("special.pvs.json", "pv");
    let pe_start: u64 = field(
        pv.iter().find(|r| field(r, "pv_name") == disk).unwrap(),
        "pe_start",
    )
    .parse()
    .unwrap();
    let extent: u64 = truth("special.vgcfg.txt")
        .lines()
        .find_map(|l| l.trim().strip_prefix("extent_size = "))
        .and_then(|v| v.split_whitespace().next())
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 512;
    (
        disk.to_string(),
        pe_start + a * extent,
        (b - a + 1) * extent,
    )
}

/// Where `vg` reads LV `lv`: (the PV's file, PV byte, length) of its one mapping.
fn read_from(vg: &VolumeGroup, pvs: &[Pv], lv: &str) -> (String, u64, u64) {
    let l = vg.lv(lv).unwrap();
    assert_eq!(l.state, LvState::Mapped, "{lv}: {:?}", vg.warnings);
    let [m] = &l.mappings[..] else {
        panic!("{lv}: one mapping expected: {:?}", l.mappings)
    };
    let run = m.areas[0];
    let source = vg.pvs[run.pv].source.unwrap();
    let file = pvs[source].path.to_string_lossy().into_owned();
    (file, run.start, m.length)
}

#[test]
fn a_mirror_or_raid1_whose_first_leg_is_missing_is_read_from_the_next() {
    // Both disks: leg 0 of each, where `lvs` puts `_rimage_0` / `_mimage_0`.
    let (_d, pvs, vg) = assemble(&["special-a.img", "special-b.img"]);
    assert_eq!(read_from(&vg, &pvs, "r1"), special_run("r1_rimage_0"));
    assert_eq!(read_from(&vg, &pvs, "m1"), special_run("m1_mimage_0"));
    // Without special-a.img, which holds leg 0 of both: leg 1, on special-b.img, with a
    // warning naming the leg read and why.
    let (_d, pvs, vg) = assemble(&["special-b.img"]);
    assert_eq!(read_from(&vg, &pvs, "r1"), special_run("r1_rimage_1"));
    assert_eq!(read_from(&vg, &pvs, "m1"), special_run("m1_mimage_1"));
    for (lv, leg) in [("r1", "r1_rimage_1"), ("m1", "m1_mimage_1")] {
        assert!(
            vg.warnings.iter().any(|w| {
                let w = w.to_string();
                w.contains(&format!("vgsp/{lv} is read from leg 1 ({leg})"))
                    && w.contains("missing")
            }),
            "{lv}: {:?}",
            vg.warnings
        );
    }
    // `root` lies on special-a.img only: unknown, as before.
    assert!(matches!(
        vg.lv("root").unwrap().state,
        LvState::Unknown { .. }
    ));
}

#[test]
fn a_raid1_leg_marked_for_rebuild_is_not_read() {
    let (_d, mut pvs) = load(&["special-a.img", "special-b.img"]);
    // `lvconvert --replace` marks the leg being rebuilt REBUILD in its status.
    let plain: String = truth("special.vgcfg.txt")
        .lines()
        .map(|l| format!("{}\n", l.split("\t#").next().unwrap()))
        .collect();
    let marked = plain.replacen(
        "r1_rimage_0 {\n\t\t\tid = \"CCCCCC-0000-0000-0000-0000-0000-000000\"\n\t\t\tstatus = [\"READ\", \"WRITE\"]",
        "r1_rimage_0 {\n\t\t\tid = \"CCCCCC-0000-0000-0000-0000-0000-000000\"\n\t\t\tstatus = [\"READ\", \"WRITE\", \"REBUILD\"]",
        1,
    );
    assert_ne!(marked, plain, "the edit applies");
    for pv in &mut pvs {
        pv.metadata = Some(
            diskray_lvm::VgMetadata::from_text(marked.as_bytes(), Path::new("marked.txt")).unwrap(),
        );
    }
    let vg = VolumeGroup::assemble(&pvs).unwrap();
    assert_eq!(read_from(&vg, &pvs, "r1"), special_run("r1_rimage_1"));
    assert!(
        vg.warnings
            .iter()
            .any(|w| w.to_string().contains("marked for rebuild")),
        "{:?}",
        vg.warnings
    );
    // Every leg marked: the LV is unknown, never read from a leg out of sync.
    let both = marked.replacen(
        "r1_rimage_1 {\n\t\t\tid = \"EEEEEE-0000-0000-0000-0000-0000-000000\"\n\t\t\tstatus = [\"READ\", \"WRITE\"]",
        "r1_rimage_1 {\n\t\t\tid = \"EEEEEE-0000-0000-0000-0000-0000-000000\"\n\t\t\tstatus = [\"READ\", \"WRITE\", \"REBUILD\"]",
        1,
    );
    assert_ne!(both, marked, "the second edit applies");
    for pv in &mut pvs {
        pv.metadata = Some(
            diskray_lvm::VgMetadata::from_text(both.as_bytes(), Path::new("both.txt")).unwrap(),
        );
    }
    let vg = VolumeGroup::assemble(&pvs).unwrap();
    assert!(
        matches!(vg.lv("r1").unwrap().state, LvState::Unknown { .. }),
        "{:?}",
        vg.lv("r1").unwrap().state
    );
}

#[test]
fn a_pv_found_on_two_disks_is_used_once_with_a_warning() {
    // A cloned disk: span-a.img given twice.
    let (_d, pvs, vg) = assemble(&["span-a.img", "span-b.img", "span-a.img"]);
    let a_uuid = report("span.pvs.json", "pv")
        .iter()
        .find(|r| field(r, "pv_name") == "span-a.img")
        .map(|r| field(r, "pv_uuid").to_string())
        .unwrap();
    assert!(
        vg.warnings.iter().any(|w| {
            let w = w.to_string();
            w.contains(&a_uuid) && w.contains("several disks")
        }),
        "{:?}",
        vg.warnings
    );
    assert_eq!(vg.lv("data").unwrap().state, LvState::Mapped);
    // The first copy holds the PV's extents; the clone (the third disk) none of them.
    let used: Vec<usize> = vg.pvs.iter().filter_map(|s| s.source).collect();
    assert!(used.contains(&0) && !used.contains(&2), "{used:?}");
    assert_eq!(pvs.len(), 3);
}
