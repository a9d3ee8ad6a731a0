//! Fuzzes MBR, EBR-chain and GPT parsing on an in-memory disk.
#![no_main]
use diskray_core::MemDisk;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

/// The disk is at least this big so GPT backup headers and EBR chains have room, and
/// small enough to keep each run fast.
const MIN_DISK: usize = 256 << 10;

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    if bytes.len() < MIN_DISK {
        bytes.resize(MIN_DISK, 0);
    }
    let _ = diskray_volume::read(&MemDisk::new(bytes), Path::new("fuzz.img"));
});
