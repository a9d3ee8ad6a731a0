//! Fuzzes every binary extent parser (hosted sparse header and grain tables, stream markers
//! and footers, COWD, seSparse) through a whole open + map + bounded read, from a file.
//!
//! The first input byte picks a valid header template that the rest of the input is laid
//! over (from byte 16 of the header on), so the fuzzer spends its time past the magic.
#![no_main]
use diskray_core::{ByteRange, VirtualDisk};
use diskray_vmdk::{OpenOptions, VmdkDisk};
use libfuzzer_sys::fuzz_target;
use std::io::Write;

/// Most bytes of guest data one input may make us read: keeps each run fast.
const READ_BUDGET: u64 = 4 << 20;

fn template(kind: u8) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    let put = |h: &mut Vec<u8>, at: usize, v: &[u8]| h[at..at + v.len()].copy_from_slice(v);
    match kind % 4 {
        0 | 1 => {
            put(&mut h, 0, b"KDMV");
            put(
                &mut h,
                4,
                &(if kind % 4 == 1 { 3u32 } else { 1 }).to_le_bytes(),
            );
            let flags: u32 = if kind % 4 == 1 { 0x30003 } else { 0x7 };
            put(&mut h, 8, &flags.to_le_bytes());
            put(&mut h, 12, &2048u64.to_le_bytes());
            put(&mut h, 20, &8u64.to_le_bytes());
            put(&mut h, 44, &512u32.to_le_bytes());
            put(
                &mut h,
                56,
                &(if kind % 4 == 1 { u64::MAX } else { 2 }).to_le_bytes(),
            );
            put(&mut h, 64, &3u64.to_le_bytes());
            put(&mut h, 73, b"\n \r\n");
            put(&mut h, 77, &1u16.to_le_bytes());
        }
        2 => {
            put(&mut h, 0, b"COWD");
            put(&mut h, 4, &1u32.to_le_bytes());
            put(&mut h, 12, &4096u32.to_le_bytes());
            put(&mut h, 16, &1u32.to_le_bytes());
            put(&mut h, 20, &4u32.to_le_bytes());
            put(&mut h, 24, &1u32.to_le_bytes());
            h.resize(2048, 0);
        }
        _ => {
            for (at, v) in [
                (0, 0xCAFE_BABEu64),
                (8, 0x2_0000_0001),
                (16, 4096),
                (24, 8),
                (32, 64),
                (80, 1),
                (128, 2),
                (136, 1),
                (144, 3),
                (152, 64),
                (192, 67),
            ] {
                put(&mut h, at, &v.to_le_bytes());
            }
        }
    }
    h
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let mut image = template(kind);
    // The input overwrites the template from byte 16 on and may extend it.
    let end = 16 + rest.len();
    if image.len() < end {
        image.resize(end, 0);
    }
    image[16..end].copy_from_slice(rest);
    let path = std::env::temp_dir().join(format!("diskray-fuzz-{}.vmdk", std::process::id()));
    std::fs::File::create(&path)
        .unwrap()
        .write_all(&image)
        .unwrap();
    if let Ok(disk) = VmdkDisk::open(&path, &OpenOptions::default()) {
        let cap = disk.capacity();
        if let Ok(map) = disk.map(ByteRange::new(0, cap)) {
            let mut budget = READ_BUDGET;
            let mut buf = Vec::new();
            for r in map {
                let len = r.length.min(budget).min(1 << 20);
                if len == 0 {
                    break;
                }
                budget -= len;
                buf.resize(len as usize, 0);
                let _ = disk.read_at(&mut buf, r.start);
            }
        }
    }
});
