//! streamOptimized records: grain markers with their zlib data, and the one-sector
//! metadata markers (grain table, grain directory, footer, end of stream).
//!
//! Sources: VMware "Virtual Disk Format 1.1" §"Stream-Optimized Compressed Sparse Extents"
//! (marker layout, types 0 EOS, 1 GT, 2 GD, 3 FOOTER); qemu `block/vmdk.c`
//! (`VmdkGrainMarker`, `vmdk_write_extent` compressing with zlib `compress()` at the default
//! level); `docs/formats.md` §1.5 (records padded to 512; the reader's size bound).

use crate::stream::{
    marker_off, GRAIN_MARKER_BYTES, MARKER_EOS, MARKER_FOOTER, MAX_COMPRESSED_FACTOR,
};
use diskray_core::{Error, Result, SECTOR};
use flate2::write::ZlibEncoder;
use flate2::Compression;
use std::io::Write;
use std::path::Path;

/// The type field of a metadata marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerType {
    /// End of stream (the whole sector is zero).
    EndOfStream,
    /// A grain table follows.
    GrainTable,
    /// The grain directory follows.
    GrainDirectory,
    /// The footer (a copy of the header with the real gdOffset) follows.
    Footer,
}

impl MarkerType {
    fn code(self) -> u32 {
        match self {
            MarkerType::EndOfStream => MARKER_EOS,
            MarkerType::GrainTable => 1,
            MarkerType::GrainDirectory => 2,
            MarkerType::Footer => MARKER_FOOTER,
        }
    }
}

/// A metadata marker: one sector saying how many sectors of which metadata follow.
#[derive(Debug, Clone, Copy)]
pub struct MetadataMarker {
    /// Sectors of metadata after the marker (0 for end of stream).
    pub sectors: u64,
    /// What follows.
    pub kind: MarkerType,
}

impl MetadataMarker {
    /// The marker sector: `numSectors` u64, `size` u32 = 0, `type` u32, zero padding.
    pub fn encode(&self) -> [u8; SECTOR as usize] {
        let mut b = [0u8; SECTOR as usize];
        b[marker_off::VALUE..marker_off::SIZE].copy_from_slice(&self.sectors.to_le_bytes());
        b[marker_off::TYPE..marker_off::METADATA_BYTES]
            .copy_from_slice(&self.kind.code().to_le_bytes());
        b
    }
}

/// A compressed grain record: marker (LBA u64, compressed size u32) and zlib data, padded
/// to whole sectors.
#[derive(Debug)]
pub struct GrainRecord {
    /// The record bytes, a multiple of 512 long.
    pub bytes: Vec<u8>,
}

impl GrainRecord {
    /// Compresses `grain` (one whole grain, zero-padded past the capacity) whose first
    /// sector is virtual sector `lba`, for the file `out` (named in errors).
    pub fn compress(out: &Path, lba: u64, grain: &[u8]) -> Result<GrainRecord> {
        let fail = |e: std::io::Error| {
            Error::refused(
                out,
                format!("compressing the grain at sector {lba} failed: {e}"),
            )
        };
        let mut bytes = Vec::with_capacity(grain.len() + SECTOR as usize);
        bytes.extend_from_slice(&lba.to_le_bytes());
        bytes.extend_from_slice(&[0; 4]);
        let mut z = ZlibEncoder::new(bytes, Compression::default());
        z.write_all(grain).map_err(fail)?;
        let mut bytes = z.finish().map_err(fail)?;
        let size = bytes.len() as u64 - GRAIN_MARKER_BYTES;
        // The reader refuses anything above this; zlib's worst case is a few bytes per
        // 16 KiB block over the input, so this never triggers on a 64 KiB grain.
        let max = grain.len() as u64 * MAX_COMPRESSED_FACTOR;
        let size32 = u32::try_from(size).ok().filter(|&s| u64::from(s) <= max);
        let Some(size32) = size32 else {
            return Err(Error::refused(
                out,
                format!("grain at sector {lba} compressed to {size} bytes, more than the {max} readers accept"),
            ));
        };
        bytes[marker_off::SIZE..marker_off::TYPE].copy_from_slice(&size32.to_le_bytes());
        let padded = bytes.len().div_ceil(SECTOR as usize) * SECTOR as usize;
        bytes.resize(padded, 0);
        Ok(GrainRecord { bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::ZlibDecoder;
    use std::io::Read;

    #[test]
    fn grain_record_layout() {
        let grain: Vec<u8> = (0..65_536u32).map(|i| (i * 7 % 251) as u8).collect();
        let r = GrainRecord::compress(Path::new("t.vmdk"), 256, &grain).unwrap();
        assert_eq!(r.bytes.len() % 512, 0);
        assert_eq!(u64::from_le_bytes(r.bytes[0..8].try_into().unwrap()), 256);
        let size = u32::from_le_bytes(r.bytes[8..12].try_into().unwrap()) as usize;
        assert_eq!(&r.bytes[12..14], &[0x78, 0x9C]);
        let mut out = Vec::new();
        ZlibDecoder::new(&r.bytes[12..12 + size])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, grain);
    }

    #[test]
    fn metadata_markers() {
        let m = MetadataMarker {
            sectors: 4,
            kind: MarkerType::GrainTable,
        }
        .encode();
        assert_eq!(&m[0..16], &[4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
        let eos = MetadataMarker {
            sectors: 0,
            kind: MarkerType::EndOfStream,
        };
        assert!(eos.encode().iter().all(|&b| b == 0));
    }
}
