//! Encoding of the 512-byte hosted sparse header (`KDMV`), the same
//! [`SparseHeader`] the reader parses.
//!
//! Sources: VMware "Virtual Disk Format 1.1" §"Hosted Sparse Extent Header"; qemu
//! `block/vmdk.c` (`VMDK4Header`, `vmdk_init_extent`: check bytes `\n \r\n`,
//! uncleanShutdown 0); `docs/formats.md` §1.3 (field offsets).

use crate::sparse_header::{off, SparseHeader, HEADER_BYTES, MAGIC};

/// The newline detector bytes (offset 73): a text-mode transfer would damage them.
const NEWLINE_DETECTOR: [u8; 4] = *b"\n \r\n";

/// Copies `bytes` into `b` at `at`.
fn put(b: &mut [u8], at: usize, bytes: &[u8]) {
    b[at..at + bytes.len()].copy_from_slice(bytes);
}

/// Encodes `h` as the 512 bytes of a hosted sparse header (little-endian, zero padding).
pub fn encode(h: &SparseHeader) -> [u8; HEADER_BYTES] {
    let mut b = [0u8; HEADER_BYTES];
    put(&mut b, off::MAGIC, &MAGIC.to_le_bytes());
    put(&mut b, off::VERSION, &h.version.to_le_bytes());
    put(&mut b, off::FLAGS, &h.flags.to_le_bytes());
    put(&mut b, off::CAPACITY, &h.capacity.to_le_bytes());
    put(&mut b, off::GRAIN_SIZE, &h.grain_size.to_le_bytes());
    put(
        &mut b,
        off::DESCRIPTOR_OFFSET,
        &h.descriptor_offset.to_le_bytes(),
    );
    put(
        &mut b,
        off::DESCRIPTOR_SIZE,
        &h.descriptor_size.to_le_bytes(),
    );
    put(
        &mut b,
        off::NUM_GTES_PER_GT,
        &h.num_gtes_per_gt.to_le_bytes(),
    );
    put(&mut b, off::RGD_OFFSET, &h.rgd_offset.to_le_bytes());
    put(&mut b, off::GD_OFFSET, &h.gd_offset.to_le_bytes());
    put(&mut b, off::OVERHEAD, &h.overhead.to_le_bytes());
    b[off::UNCLEAN_SHUTDOWN] = u8::from(h.unclean_shutdown);
    put(&mut b, off::NEWLINE_DETECTOR, &NEWLINE_DETECTOR);
    put(
        &mut b,
        off::COMPRESS_ALGORITHM,
        &h.compress_algorithm.to_le_bytes(),
    );
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse_header::GD_AT_END;
    use std::path::Path;

    #[test]
    fn round_trips_through_the_reader() {
        let h = SparseHeader {
            version: 3,
            flags: 0x3_0003,
            capacity: 131_073,
            grain_size: 128,
            descriptor_offset: 1,
            descriptor_size: 20,
            num_gtes_per_gt: 512,
            rgd_offset: 0,
            gd_offset: GD_AT_END,
            overhead: 128,
            unclean_shutdown: false,
            compress_algorithm: 1,
        };
        let b = encode(&h);
        let p = SparseHeader::parse(&b, Path::new("x.vmdk"), 0).unwrap();
        assert_eq!(format!("{p:?}"), format!("{h:?}"));
        assert_eq!(&b[73..79], b"\n \r\n\x01\x00");
        assert!(b[79..].iter().all(|&x| x == 0));
    }
}
