//! streamOptimized pieces: grain and metadata markers, the GD_AT_END footer, and the
//! bounded inflate of one grain.
//!
//! Sources: VMware "Virtual Disk Format 1.1" §"Stream-Optimized Compressed Sparse Extents";
//! qemu `block/vmdk.c` (`vmdk_open_vmdk4` footer check, `vmdk_read_cluster`);
//! `docs/formats.md` §1.5 (compressed length may exceed the grain; only the last grain
//! may decompress short; footer validation).

use crate::sparse_header::{SparseHeader, GD_AT_END, HEADER_BYTES};
use diskray_core::{Error, Fields, FileSource, Result};
use flate2::{Decompress, FlushDecompress, Status};

/// Metadata marker type: end of stream.
pub const MARKER_EOS: u32 = 0;
/// Metadata marker type: footer.
pub const MARKER_FOOTER: u32 = 3;
/// Bytes of a grain marker before its zlib data (LBA u64 + size u32).
pub const GRAIN_MARKER_BYTES: u64 = 12;
/// Byte offsets inside a marker (`VmdkGrainMarker` / metadata marker, little-endian).
pub mod marker_off {
    /// `lba` of a grain marker, `numSectors` of a metadata marker (u64).
    pub const VALUE: usize = 0;
    /// `size`: compressed bytes of a grain marker, 0 for a metadata marker (u32).
    pub const SIZE: usize = 8;
    /// `type` of a metadata marker (u32).
    pub const TYPE: usize = 12;
    /// Bytes of a metadata marker's fields (the rest of its sector is padding).
    pub const METADATA_BYTES: usize = 16;
}

/// The fields of one stream marker, as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// `lba` (grain marker) or `numSectors` (metadata marker).
    pub value: u64,
    /// Compressed bytes (grain marker); 0 for a metadata marker.
    pub size: u32,
    /// Metadata marker type; absent for a grain marker, which is 12 bytes long.
    pub kind: Option<u32>,
}

impl Marker {
    /// Reads the marker held by `f` (12 bytes: a grain marker; 16 or more: a metadata
    /// marker).
    pub fn parse(f: &Fields) -> Result<Marker> {
        Ok(Marker {
            value: f.le64(marker_off::VALUE)?,
            size: f.le32(marker_off::SIZE)?,
            kind: if f.len() >= marker_off::METADATA_BYTES {
                Some(f.le32(marker_off::TYPE)?)
            } else {
                None
            },
        })
    }
}

/// Compressed data may exceed the grain (random data deflates to slightly more); qemu
/// reads up to two grains. Anything larger is refused as corruption.
pub const MAX_COMPRESSED_FACTOR: u64 = 2;

/// Reads the footer of a stream whose header says GD_AT_END and returns the footer's copy
/// of the header (with the real grain directory offset).
pub fn read_footer(file: &FileSource) -> Result<SparseHeader> {
    let len = file.len();
    let path = file.path();
    if len < 3 * 512 + HEADER_BYTES as u64 {
        return Err(Error::corrupt(
            path,
            0,
            "invalid footer: file too short for a GD_AT_END stream",
        ));
    }
    let mut tail = vec![0u8; 1536];
    let tail_at = len - 1536;
    file.read_exact_at(&mut tail, tail_at)?;
    let tail_fields = Fields::new(&tail, "stream tail", path, tail_at);
    let footer_marker = Marker::parse(&tail_fields.sub(0, 512, "footer marker")?)?;
    let (marker_size, marker_len) = (footer_marker.value, footer_marker.size);
    let marker_type = footer_marker.kind.unwrap_or(u32::MAX);
    if marker_size != 1 || marker_len != 0 || marker_type != MARKER_FOOTER {
        return Err(Error::corrupt(path, tail_at, format!(
            "invalid footer: expected a footer marker (1 sector, type {MARKER_FOOTER}) here, found size {marker_size}, type {marker_type} (truncated file?)")));
    }
    let eos = Marker::parse(&tail_fields.sub(1024, 512, "end-of-stream marker")?)?;
    let eos_ok = eos.value == 0 && eos.size == 0 && eos.kind == Some(MARKER_EOS);
    if !eos_ok {
        return Err(Error::corrupt(
            path,
            len - 512,
            "invalid footer: no end-of-stream marker in the last sector",
        ));
    }
    let footer_bytes = tail_fields.sub(512, HEADER_BYTES, "footer")?.as_bytes();
    let footer = SparseHeader::parse(footer_bytes, path, len - 1024)?;
    if footer.gd_offset == GD_AT_END || footer.gd_offset == 0 {
        return Err(Error::corrupt(
            path,
            len - 1024 + crate::sparse_header::off::GD_OFFSET as u64,
            "invalid footer: it does not give the grain directory offset",
        ));
    }
    Ok(footer)
}

/// Reads and inflates grain number `grain` whose record starts at `sector`, into `out`
/// (exactly one grain long). `expect_full` is false for the last grain of the extent,
/// which may decompress short (the rest reads as zeros).
pub fn read_grain(
    file: &FileSource,
    header: &SparseHeader,
    grain: u64,
    sector: u64,
    expect_full: bool,
    out: &mut [u8],
) -> Result<()> {
    let path = file.path();
    let at = sector * 512;
    let grain_bytes = out.len() as u64;
    let max_compressed = grain_bytes * MAX_COMPRESSED_FACTOR + 512;
    let (data_at, data_len) = if header.embedded_lba() {
        let mut marker = [0u8; GRAIN_MARKER_BYTES as usize];
        file.read_exact_at(&mut marker, at)?;
        let m = Marker::parse(&Fields::new(&marker, "grain marker", path, at))?;
        let (lba, size) = (m.value, m.size as u64);
        let want = grain * header.grain_size;
        if lba != want {
            return Err(Error::corrupt(path, at, format!(
                "grain marker says LBA {lba}, but the grain table puts grain {grain} (LBA {want}) here")));
        }
        if size == 0 || size > max_compressed {
            return Err(Error::corrupt(
                path,
                at + marker_off::SIZE as u64,
                format!("compressed grain size {size} bytes is outside 1..={max_compressed}"),
            ));
        }
        (at + GRAIN_MARKER_BYTES, size)
    } else {
        // No marker: the zlib stream starts at the grain sector and ends where it ends.
        (at, max_compressed.min(file.len().saturating_sub(at)))
    };
    let input = file.read_up_to(data_at, data_len as usize)?;
    if (input.len() as u64) < data_len && header.embedded_lba() {
        return Err(Error::corrupt(
            path,
            data_at,
            format!("compressed grain of {data_len} bytes runs past the end of the file"),
        ));
    }
    let mut z = Decompress::new(true);
    let mut overflow = [0u8; 1];
    let status = z
        .decompress(&input, out, FlushDecompress::Finish)
        .map_err(|e| {
            Error::corrupt(
                path,
                data_at,
                format!("grain {grain} does not inflate: {e}"),
            )
        })?;
    let produced = z.total_out();
    if status != Status::StreamEnd {
        // Either the output is full and more would follow (a grain bomb), or the input
        // ended early (truncated stream).
        let more = z
            .decompress(
                &input[z.total_in() as usize..],
                &mut overflow,
                FlushDecompress::Finish,
            )
            .map(|_| z.total_out() > produced)
            .unwrap_or(false);
        let why = if more {
            format!("grain {grain} inflates to more than {grain_bytes} bytes")
        } else {
            format!("grain {grain}: compressed data ends before the zlib stream does")
        };
        return Err(Error::corrupt(path, data_at, why));
    }
    if produced < grain_bytes {
        if expect_full {
            return Err(Error::corrupt(
                path,
                data_at,
                format!(
                "grain {grain} inflates to {produced} bytes, not a whole grain of {grain_bytes}"),
            ));
        }
        out[produced as usize..].fill(0);
    }
    Ok(())
}
