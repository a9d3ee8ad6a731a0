//! The metadata area (LVM2 `lib/format_text/layout.h` `mda_header`, `raw_locn`;
//! `lib/format_text/format-text.c`): a 512-byte header followed by a circular buffer of
//! metadata text copies (docs/formats.md §9.3).

use crate::crc::lvm_crc;
use crate::label::{Area, SECTOR};
use crate::region::Region;
use diskray_core::Result;
use serde::Serialize;
use std::path::PathBuf;

/// Size of the metadata area header; the circular buffer starts after it.
pub const MDA_HEADER_SIZE: u64 = 512;
/// `mda_header.magic` (`FMTT_MAGIC`).
pub const MDA_MAGIC: &[u8; 16] = b" LVM2 x[5A%r0N*>";
/// `mda_header.version` (`FMTT_VERSION`).
pub const MDA_VERSION: u32 = 1;
/// Largest metadata text accepted (one copy): a VG of 10 000 LVs writes about 4 MiB of
/// text; this leaves room for bigger ones while bounding memory on hostile sizes.
pub const MAX_TEXT: u64 = 64 << 20;
/// `raw_locn.flags` bit: the area is ignored (`vgchange --metadataignore`), its text may
/// be stale.
pub const RAW_LOCN_IGNORED: u32 = 1;
/// Most older copies [`scan_older`] parses: each 512-byte boundary of the buffer may hold
/// one; a 1 MiB area holds at most 2047.
pub const MAX_OLDER_CANDIDATES: usize = 4096;

const OFF_MAGIC: usize = 4;
const OFF_VERSION: usize = 20;
const OFF_START: usize = 24;
const OFF_SIZE: usize = 32;
const OFF_LOCNS: usize = 40;
const LOCN_SIZE: usize = 24;

/// One `raw_locn`: where a copy of the text lies in the area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RawLocn {
    /// Byte offset of the text from the start of the area (header included).
    pub offset: u64,
    /// Length of the text in bytes.
    pub size: u64,
    /// LVM2 checksum of the text.
    pub checksum: u32,
    /// Flags ([`RAW_LOCN_IGNORED`]).
    pub flags: u32,
}

/// A metadata area's header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MdaHeader {
    /// PV byte offset of the area (the header's `start`).
    pub start: u64,
    /// Size of the whole area, header included.
    pub size: u64,
    /// The text locations: `[0]` is the committed copy, `[1]` (rare) a precommitted one.
    pub locations: Vec<RawLocn>,
}

/// Where a text copy's bytes lie on disk, to place parse errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextOrigin {
    /// The disk holding the text.
    pub path: PathBuf,
    /// Disk byte offset of the text's first byte.
    pub first_at: u64,
    /// Bytes before the wrap (the whole text when it does not wrap).
    pub first_len: u64,
    /// Disk byte offset of the bytes after the wrap (the area's start + 512).
    pub second_at: u64,
}

impl TextOrigin {
    /// Disk byte offset of text byte `pos`.
    pub fn disk_offset(&self, pos: u64) -> u64 {
        if pos < self.first_len {
            self.first_at.saturating_add(pos)
        } else {
            self.second_at.saturating_add(pos - self.first_len)
        }
    }
}

/// One copy of the metadata text, as read from an area.
#[derive(Debug, Clone)]
pub struct TextCopy {
    /// The text.
    pub bytes: Vec<u8>,
    /// Where it lies.
    pub origin: TextOrigin,
    /// Area offset of its first byte.
    pub offset: u64,
}

/// Reads and checks the header of the metadata area `area` of `pv`.
pub fn read_header(pv: &Region<'_>, area: Area) -> Result<MdaHeader> {
    let bytes = pv.read_vec(area.offset, MDA_HEADER_SIZE, "LVM2 metadata area header")?;
    let f = pv.fields(&bytes, "LVM2 metadata area header", area.offset);
    let crc = f.le32(0)?;
    let computed = lvm_crc(&[f.bytes(OFF_MAGIC, MDA_HEADER_SIZE as usize - OFF_MAGIC)?]);
    if crc != computed {
        return Err(f.corrupt(
            0,
            format!("checksum: expected {computed:#010x} (computed), found {crc:#010x}"),
        ));
    }
    let magic = f.bytes(OFF_MAGIC, 16)?;
    if magic != MDA_MAGIC {
        return Err(f.corrupt(
            OFF_MAGIC,
            format!(
                "magic: expected {:?}, found {:?}",
                String::from_utf8_lossy(MDA_MAGIC),
                String::from_utf8_lossy(magic)
            ),
        ));
    }
    let version = f.le32(OFF_VERSION)?;
    if version != MDA_VERSION {
        return Err(f.corrupt(
            OFF_VERSION,
            format!("expected version {MDA_VERSION}, found {version}"),
        ));
    }
    let start = f.le64(OFF_START)?;
    if start != area.offset {
        return Err(f.corrupt(
            OFF_START,
            format!(
                "expected start {} (where the PV header puts the area), found {start}",
                area.offset
            ),
        ));
    }
    let size = f.le64(OFF_SIZE)?;
    let room = pv.len().saturating_sub(start);
    if size <= MDA_HEADER_SIZE || size > room || (area.size != 0 && size > area.size) {
        return Err(f.corrupt(
            OFF_SIZE,
            format!(
                "expected an area size in {}..={} (the PV header says {}), found {size}",
                MDA_HEADER_SIZE + 1,
                room.min(if area.size == 0 { u64::MAX } else { area.size }),
                area.size
            ),
        ));
    }
    let mut locations = Vec::new();
    let mut pos = OFF_LOCNS;
    while pos + LOCN_SIZE <= MDA_HEADER_SIZE as usize {
        let l = RawLocn {
            offset: f.le64(pos)?,
            size: f.le64(pos + 8)?,
            checksum: f.le32(pos + 16)?,
            flags: f.le32(pos + 20)?,
        };
        if l.offset == 0 {
            break;
        }
        locations.push(l);
        pos += LOCN_SIZE;
    }
    Ok(MdaHeader {
        start,
        size,
        locations,
    })
}

/// Reads the text `locn` points to in the area `hdr`, following the wrap, and checks its
/// checksum. Every size is checked against the area before anything is allocated.
pub fn read_text(pv: &Region<'_>, hdr: &MdaHeader, locn: &RawLocn) -> Result<TextCopy> {
    let at = hdr.start.saturating_add(OFF_LOCNS as u64);
    let buffer = hdr.size - MDA_HEADER_SIZE;
    if locn.offset < MDA_HEADER_SIZE || locn.offset >= hdr.size {
        return Err(pv.corrupt(
            at,
            format!(
                "metadata location: expected an offset in {MDA_HEADER_SIZE}..{}, found {}",
                hdr.size, locn.offset
            ),
        ));
    }
    if locn.size == 0 || locn.size > buffer || locn.size > MAX_TEXT {
        return Err(pv.corrupt(
            at + 8,
            format!(
                "metadata location: expected a text size in 1..={} (the circular buffer), found {}",
                buffer.min(MAX_TEXT),
                locn.size
            ),
        ));
    }
    let first_len = locn.size.min(hdr.size - locn.offset);
    let wrap = locn.size - first_len;
    // The wrapped part restarts after the header and may not run into the text's own
    // beginning (LVM2 refuses the same: "metadata too large for circular buffer").
    if wrap > locn.offset - MDA_HEADER_SIZE {
        return Err(pv.corrupt(
            at + 8,
            format!(
                "metadata location: text of {} bytes at area offset {} wraps {wrap} bytes, \
                 expected at most {} (it would overwrite its own start)",
                locn.size,
                locn.offset,
                locn.offset - MDA_HEADER_SIZE
            ),
        ));
    }
    let mut bytes = pv.read_vec(hdr.start + locn.offset, first_len, "LVM2 metadata text")?;
    if wrap > 0 {
        bytes.extend(pv.read_vec(
            hdr.start + MDA_HEADER_SIZE,
            wrap,
            "LVM2 metadata text (wrapped part)",
        )?);
    }
    let computed = lvm_crc(&[&bytes]);
    if computed != locn.checksum {
        return Err(pv.corrupt(
            hdr.start + locn.offset,
            format!(
                "metadata text checksum: expected {:#010x} (the location's), computed {computed:#010x}",
                locn.checksum
            ),
        ));
    }
    Ok(TextCopy {
        bytes,
        origin: TextOrigin {
            path: pv.path().to_path_buf(),
            first_at: pv.start() + hdr.start + locn.offset,
            first_len,
            second_at: pv.start() + hdr.start + MDA_HEADER_SIZE,
        },
        offset: locn.offset,
    })
}

/// Copies of the text that the area still holds at 512-byte boundaries (LVM2 writes each
/// new copy at the next boundary after the previous one), except the one at `skip`:
/// candidates for falling back when the current copy is damaged. They carry no checksum;
/// each ends at its first NUL byte. The caller parses them and keeps the newest.
pub fn scan_older(pv: &Region<'_>, hdr: &MdaHeader, skip: u64) -> Result<Vec<TextCopy>> {
    let buffer = hdr.size - MDA_HEADER_SIZE;
    if buffer > MAX_TEXT {
        return Ok(Vec::new());
    }
    let ring = pv.read_vec(hdr.start + MDA_HEADER_SIZE, buffer, "LVM2 metadata area")?;
    let mut out = Vec::new();
    let mut off = 0usize;
    while off < ring.len() && out.len() < MAX_OLDER_CANDIDATES {
        let area_off = off as u64 + MDA_HEADER_SIZE;
        if area_off != skip && starts_like_metadata(&ring[off..]) {
            // Read to the first NUL, going round the ring once at most.
            let mut text = Vec::new();
            let mut first_len = None;
            let mut i = off;
            loop {
                if i == ring.len() {
                    i = 0;
                    first_len = Some(text.len() as u64);
                }
                if ring[i] == 0 || text.len() == ring.len() {
                    break;
                }
                text.push(ring[i]);
                i += 1;
            }
            let first_len = first_len.unwrap_or(text.len() as u64);
            out.push(TextCopy {
                bytes: text,
                origin: TextOrigin {
                    path: pv.path().to_path_buf(),
                    first_at: pv.start() + hdr.start + area_off,
                    first_len,
                    second_at: pv.start() + hdr.start + MDA_HEADER_SIZE,
                },
                offset: area_off,
            });
        }
        off += SECTOR as usize;
    }
    Ok(out)
}

/// True when `b` begins like a VG's metadata: a name of LVM's characters, then ` {`.
fn starts_like_metadata(b: &[u8]) -> bool {
    let name = b
        .iter()
        .take(128)
        .take_while(|c| c.is_ascii_alphanumeric() || b"._-+".contains(c))
        .count();
    name > 0 && b[name..].starts_with(b" {")
}
