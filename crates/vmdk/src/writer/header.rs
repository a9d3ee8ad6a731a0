//! Encoding of the 512-byte hosted sparse header (`KDMV`), the same
//! [`SparseHeader`] the reader parses.
//!
//! Sources: VMware "Virtual Disk Format 1.1" §"Hosted Sparse Extent Header"; qemu
//! `block/vmdk.c` (`VMDK4Header`, `vmdk_init_extent`: check bytes `\n \r\n`,
//! uncleanShutdown 0); `shared/FORMATS.md` §1.3 (field offsets).

use crate::sparse_header::{SparseHeader, HEADER_BYTES, MAGIC};

/// The newline detector bytes (offset 73): a text-mode transfer would damage them.
const NEWLINE_DETECTOR: [u8; 4] = *b"\n \r\n";

/// Encodes `h` as the 512 bytes of a hosted sparse header (little-endian, zero padding).
pub fn encode(h: &SparseHeader) -> [u8; HEADER_BYTES] {
    let mut b = [0u8; HEADER_BYTES];
    b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    b[4..8].copy_from_slice(&h.version.to_le_bytes());
    b[8..12].copy_from_slice(&h.flags.to_le_bytes());
    b[12..20].copy_from_slice(&h.capacity.to_le_bytes());
    b[20..28].copy_from_slice(&h.grain_size.to_le_bytes());
    b[28..36].copy_from_slice(&h.descriptor_offset.to_le_bytes());
    b[36..44].copy_from_slice(&h.descriptor_size.to_le_bytes());
    b[44..48].copy_from_slice(&h.num_gtes_per_gt.to_le_bytes());
    b[48..56].copy_from_slice(&h.rgd_offset.to_le_bytes());
    b[56..64].copy_from_slice(&h.gd_offset.to_le_bytes());
    b[64..72].copy_from_slice(&h.overhead.to_le_bytes());
    b[72] = u8::from(h.unclean_shutdown);
    b[73..77].copy_from_slice(&NEWLINE_DETECTOR);
    b[77..79].copy_from_slice(&h.compress_algorithm.to_le_bytes());
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
