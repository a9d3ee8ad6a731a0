//! Fuzzes MBR, EBR-chain and GPT parsing, the MBR sector-size probe and tables cut short
//! by the end of the disk. The first byte says how the rest becomes a disk (bits 0–1) and
//! how the table is read (bits 2–3):
//! - disk: 0 the rest as it is (a table may be cut short), 1 the rest padded to
//!   [`MIN_DISK`], 2 sector records (`common/sparse.rs`) over a [`SPARSE_DISK`] disk
//!   (tables of 4096-byte-sector disks with their partitions' content), 3 as 1;
//! - read: 0 as `diskray` does (the sector size probed with what the partitions hold as
//!   evidence, `diskray_layout::read_table`), 1 probed without that evidence, 2 and 3 with
//!   `--sector-size` 512 and 4096.
#![no_main]
use diskray_core::MemDisk;
use diskray_volume::{read_with, ReadOptions};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

#[path = "../common/sparse.rs"]
mod sparse;

/// The disk is at least this big so GPT backup headers and EBR chains have room, and
/// small enough to keep each run fast.
const MIN_DISK: usize = 256 << 10;
/// Sector-record disks: big enough for the partitions of the 4096-byte-sector fixtures.
const SPARSE_DISK: usize = 32 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let bytes = match flags & 3 {
        0 => rest.to_vec(),
        2 => sparse::disk(rest, SPARSE_DISK),
        _ => {
            let mut b = rest.to_vec();
            b.resize(b.len().max(MIN_DISK), 0);
            b
        }
    };
    let disk = MemDisk::new(bytes);
    let label = Path::new("fuzz.img");
    let sector_size = match (flags >> 2) & 3 {
        0 => {
            let _ = diskray_layout::read_table(&disk, label);
            return;
        }
        1 => None,
        2 => Some(512),
        _ => Some(4096),
    };
    let opts = ReadOptions {
        sector_size,
        recognise: None,
    };
    let _ = read_with(&disk, label, &opts);
});
