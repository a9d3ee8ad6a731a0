//! Fuzzes the LVM2 readers: byte 0 even: the rest is a PV (label, PV header, metadata
//! areas, text copies) read with `read_pv` and assembled into a VG, whose PV classes must
//! tile each found PV; byte 0 odd: the rest is metadata text for the nom parser and the
//! typed VG model.
#![no_main]
use diskray_core::{MemDisk, VirtualDisk};
use diskray_lvm::{read_pv, VgMetadata, VolumeGroup};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    if mode & 1 == 1 {
        let _ = VgMetadata::from_text(body, Path::new("fuzz.txt"));
        return;
    }
    let disk = MemDisk::new(body.to_vec());
    let Ok(pv) = read_pv(&disk, Path::new("fuzz.img"), 0, disk.capacity()) else {
        return;
    };
    let length = pv.length;
    let Ok(vg) = VolumeGroup::assemble(&[pv]) else {
        return;
    };
    for slot in vg.pvs.iter().filter(|s| s.source.is_some()) {
        let mut at = 0;
        for r in &slot.ranges {
            assert_eq!(r.start, at, "{:?}", slot.ranges);
            at += r.length;
        }
        assert_eq!(at, length);
    }
    for lv in &vg.lvs {
        let mut at = 0;
        for m in &lv.mappings {
            assert_eq!(m.lv_start, at);
            at += m.length;
        }
        assert!(lv.mappings.is_empty() || at == lv.size);
    }
});
