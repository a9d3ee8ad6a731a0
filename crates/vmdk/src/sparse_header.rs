//! The 512-byte hosted sparse extent header (`KDMV`).
//!
//! Sources: VMware "Virtual Disk Format 1.1" §"Hosted Sparse Extent Header"; qemu
//! `block/vmdk.c` (`VMDK4Header`, `vmdk_open_vmdk4`); `docs/formats.md` §1.3.

use diskray_core::{Error, Fields, Result};
use serde::Serialize;
use std::path::Path;

/// `KDMV` read as a little-endian u32.
pub const MAGIC: u32 = 0x564D_444B;
/// Size of the header on disk.
pub const HEADER_BYTES: usize = 512;
/// `gdOffset` value meaning "the real grain directory offset is in the footer".
pub const GD_AT_END: u64 = u64::MAX;

/// Flag: the newline detector bytes are valid.
pub const FLAG_NEWLINE_VALID: u32 = 0x1;
/// Flag: a redundant grain directory is present.
pub const FLAG_RGD: u32 = 0x2;
/// Flag: a grain table entry of 1 means a zeroed grain.
pub const FLAG_ZEROED_GRAIN: u32 = 0x4;
/// Incompatible flag: grains are compressed.
pub const FLAG_COMPRESSED: u32 = 0x1_0000;
/// Incompatible flag: grains carry markers with their LBA (streamOptimized).
pub const FLAG_EMBEDDED_LBA: u32 = 0x2_0000;
/// The incompatible-flag mask: any bit here that we do not know means "refuse".
pub const INCOMPAT_MASK: u32 = 0xFFFF_0000;

/// Largest grain accepted, in sectors: writers use 128 (64 KiB); a grain is decompressed
/// into one buffer, so this bounds memory per read (32 MiB).
pub const MAX_GRAIN_SECTORS: u64 = 65_536;
/// Grain tables hold 512 entries in every known writer; qemu refuses more.
pub const MAX_GTES_PER_GT: u32 = 512;

/// Byte offsets of the header's fields (`SparseExtentHeader`, packed, little-endian).
pub mod off {
    /// `magicNumber` (u32).
    pub const MAGIC: usize = 0;
    /// `version` (u32).
    pub const VERSION: usize = 4;
    /// `flags` (u32).
    pub const FLAGS: usize = 8;
    /// `capacity` in sectors (u64).
    pub const CAPACITY: usize = 12;
    /// `grainSize` in sectors (u64).
    pub const GRAIN_SIZE: usize = 20;
    /// `descriptorOffset` in sectors (u64).
    pub const DESCRIPTOR_OFFSET: usize = 28;
    /// `descriptorSize` in sectors (u64).
    pub const DESCRIPTOR_SIZE: usize = 36;
    /// `numGTEsPerGT` (u32).
    pub const NUM_GTES_PER_GT: usize = 44;
    /// `rgdOffset` in sectors (u64).
    pub const RGD_OFFSET: usize = 48;
    /// `gdOffset` in sectors (u64).
    pub const GD_OFFSET: usize = 56;
    /// `overHead` in sectors (u64).
    pub const OVERHEAD: usize = 64;
    /// `uncleanShutdown` (u8).
    pub const UNCLEAN_SHUTDOWN: usize = 72;
    /// The four newline-detector bytes `"\n \r\n"`.
    pub const NEWLINE_DETECTOR: usize = 73;
    /// `compressAlgorithm` (u16).
    pub const COMPRESS_ALGORITHM: usize = 77;
}

/// A parsed, validated hosted sparse header.
#[derive(Debug, Clone, Serialize)]
pub struct SparseHeader {
    /// Format version (1, 2 or 3).
    pub version: u32,
    /// Flag bits.
    pub flags: u32,
    /// Capacity of this extent in sectors.
    pub capacity: u64,
    /// Grain size in sectors.
    pub grain_size: u64,
    /// Sector of the embedded descriptor (0 = none).
    pub descriptor_offset: u64,
    /// Sectors reserved for the embedded descriptor.
    pub descriptor_size: u64,
    /// Entries per grain table.
    pub num_gtes_per_gt: u32,
    /// Sector of the redundant grain directory.
    pub rgd_offset: u64,
    /// Sector of the grain directory ([`GD_AT_END`] for streams with a footer).
    pub gd_offset: u64,
    /// Sectors of metadata before the first grain.
    pub overhead: u64,
    /// The unclean-shutdown byte.
    pub unclean_shutdown: bool,
    /// Compression algorithm (0 none, 1 DEFLATE).
    pub compress_algorithm: u16,
}

impl SparseHeader {
    /// Parses and validates a header found at byte `at` of `path`.
    pub fn parse(b: &[u8], path: &Path, at: u64) -> Result<SparseHeader> {
        let bad = |field: usize, why: String| Error::corrupt(path, at + field as u64, why);
        if b.len() < HEADER_BYTES {
            return Err(bad(
                off::MAGIC,
                format!(
                    "sparse header needs {HEADER_BYTES} bytes, file has {}",
                    b.len()
                ),
            ));
        }
        let f = Fields::new(b, "sparse header", path, at);
        let magic = f.le32(off::MAGIC)?;
        if magic != MAGIC {
            return Err(bad(
                off::MAGIC,
                format!("not a hosted sparse extent (magic {magic:#010x}, expected KDMV)"),
            ));
        }
        let h = SparseHeader {
            version: f.le32(off::VERSION)?,
            flags: f.le32(off::FLAGS)?,
            capacity: f.le64(off::CAPACITY)?,
            grain_size: f.le64(off::GRAIN_SIZE)?,
            descriptor_offset: f.le64(off::DESCRIPTOR_OFFSET)?,
            descriptor_size: f.le64(off::DESCRIPTOR_SIZE)?,
            num_gtes_per_gt: f.le32(off::NUM_GTES_PER_GT)?,
            rgd_offset: f.le64(off::RGD_OFFSET)?,
            gd_offset: f.le64(off::GD_OFFSET)?,
            overhead: f.le64(off::OVERHEAD)?,
            unclean_shutdown: f.u8(off::UNCLEAN_SHUTDOWN)? != 0,
            compress_algorithm: f.le16(off::COMPRESS_ALGORITHM)?,
        };
        if !(1..=3).contains(&h.version) {
            return Err(bad(
                off::VERSION,
                format!("sparse header version {} is not 1, 2 or 3", h.version),
            ));
        }
        let unknown = h.flags & INCOMPAT_MASK & !(FLAG_COMPRESSED | FLAG_EMBEDDED_LBA);
        if unknown != 0 {
            return Err(bad(
                off::FLAGS,
                format!(
                    "unknown incompatible flags {unknown:#x} (flags {:#x}): refusing to guess",
                    h.flags
                ),
            ));
        }
        if h.flags & FLAG_EMBEDDED_LBA != 0 && h.flags & FLAG_COMPRESSED == 0 {
            return Err(bad(
                off::FLAGS,
                format!(
                    "flags {:#x}: embedded LBA markers without compression",
                    h.flags
                ),
            ));
        }
        if h.flags & FLAG_NEWLINE_VALID != 0 && f.bytes(off::NEWLINE_DETECTOR, 4)? != b"\n \r\n" {
            return Err(bad(
                off::NEWLINE_DETECTOR,
                "newline detector damaged (file transferred in text mode?)".into(),
            ));
        }
        if h.capacity == 0 {
            return Err(bad(off::CAPACITY, "capacity is 0 sectors".into()));
        }
        if h.grain_size == 0 || !h.grain_size.is_power_of_two() || h.grain_size > MAX_GRAIN_SECTORS
        {
            return Err(bad(
                off::GRAIN_SIZE,
                format!(
                    "grain size {} sectors is not a power of two up to {MAX_GRAIN_SECTORS}",
                    h.grain_size
                ),
            ));
        }
        if h.num_gtes_per_gt == 0 || h.num_gtes_per_gt > MAX_GTES_PER_GT {
            return Err(bad(
                off::NUM_GTES_PER_GT,
                format!(
                    "{} entries per grain table (1 to {MAX_GTES_PER_GT} accepted)",
                    h.num_gtes_per_gt
                ),
            ));
        }
        if h.compressed() && h.compress_algorithm != 1 {
            return Err(bad(
                off::COMPRESS_ALGORITHM,
                format!(
                    "compression algorithm {} is not DEFLATE (1)",
                    h.compress_algorithm
                ),
            ));
        }
        Ok(h)
    }

    /// Grains are compressed (streamOptimized).
    pub fn compressed(&self) -> bool {
        self.flags & FLAG_COMPRESSED != 0
    }

    /// Grains are preceded by a marker carrying their LBA and compressed size.
    pub fn embedded_lba(&self) -> bool {
        self.flags & FLAG_EMBEDDED_LBA != 0
    }

    /// A grain table entry of 1 means "zeroed grain".
    pub fn zeroed_grain(&self) -> bool {
        self.flags & FLAG_ZEROED_GRAIN != 0
    }

    /// Names of the flags that are set, for people.
    pub fn flag_names(&self) -> Vec<&'static str> {
        [
            (FLAG_NEWLINE_VALID, "valid_newline_detector"),
            (FLAG_RGD, "redundant_grain_directory"),
            (FLAG_ZEROED_GRAIN, "zeroed_grain"),
            (FLAG_COMPRESSED, "compressed"),
            (FLAG_EMBEDDED_LBA, "embedded_lba"),
        ]
        .into_iter()
        .filter(|(bit, _)| self.flags & bit != 0)
        .map(|(_, name)| name)
        .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A valid qemu-style monolithicSparse header for `capacity` sectors.
    pub fn header(capacity: u64) -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&1u32.to_le_bytes());
        b[8..12].copy_from_slice(&3u32.to_le_bytes());
        b[12..20].copy_from_slice(&capacity.to_le_bytes());
        b[20..28].copy_from_slice(&128u64.to_le_bytes());
        b[28..36].copy_from_slice(&1u64.to_le_bytes());
        b[36..44].copy_from_slice(&20u64.to_le_bytes());
        b[44..48].copy_from_slice(&512u32.to_le_bytes());
        b[48..56].copy_from_slice(&21u64.to_le_bytes());
        b[56..64].copy_from_slice(&30u64.to_le_bytes());
        b[64..72].copy_from_slice(&128u64.to_le_bytes());
        b[73..77].copy_from_slice(b"\n \r\n");
        b
    }

    fn parse(b: &[u8]) -> Result<SparseHeader> {
        SparseHeader::parse(b, Path::new("x.vmdk"), 0)
    }

    #[test]
    fn valid_and_each_refusal() {
        let h = parse(&header(131072)).unwrap();
        assert_eq!(
            (h.grain_size, h.gd_offset, h.num_gtes_per_gt),
            (128, 30, 512)
        );
        assert_eq!(
            h.flag_names(),
            vec!["valid_newline_detector", "redundant_grain_directory"]
        );
        let cases: &[(usize, &[u8], &str)] = &[
            (0, b"KDMW", "magic"),
            (4, &9u32.to_le_bytes(), "version"),
            (8, &0x4_0003u32.to_le_bytes(), "incompatible"),
            (8, &0x2_0003u32.to_le_bytes(), "without compression"),
            (12, &0u64.to_le_bytes(), "capacity"),
            (20, &3u64.to_le_bytes(), "grain size"),
            (20, &(1u64 << 40).to_le_bytes(), "grain size"),
            (44, &4096u32.to_le_bytes(), "entries per grain table"),
            (73, b"\n \n\n", "newline"),
        ];
        for (off, bytes, want) in cases {
            let mut b = header(131072);
            b[*off..*off + bytes.len()].copy_from_slice(bytes);
            let e = parse(&b).unwrap_err().to_string();
            assert!(
                e.contains(want) && e.contains(&format!("at byte {off}")),
                "{e}"
            );
        }
        assert!(parse(&header(1)[..100]).is_err());
    }
}
