//! Opens any disk image diskray understands behind one [`VirtualDisk`]: VMDK (every
//! variant, with its snapshot chain), a raw image, or an NBD export named by its URI
//! (`nbd://HOST[:PORT]/EXPORT`, `nbd+unix:///EXPORT?socket=PATH`: see `diskray_nbd`). The
//! format of a file is probed from its first bytes unless the caller names it. Formats it recognises but cannot read yet
//! (qcow, qcow2, VHD, VHDX, VDI, E01, DMG: see [`foreign`]) are refused by name.

#![warn(missing_docs)]

pub mod export;
pub mod info;
pub mod map;
pub mod vmx;

pub mod foreign;
pub mod raw;

use diskray_core::{ByteRange, Error, Fields, FileSource, RangeSet, Result, VirtualDisk, Warning};
use diskray_nbd::NbdDisk;
use diskray_vmdk::{OpenOptions, VmdkDisk};
use std::path::Path;

pub use foreign::Foreign;
pub use raw::RawDisk;

/// Image formats diskray reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// VMware VMDK (descriptor or any extent kind).
    Vmdk,
    /// A raw image: the file is the disk.
    Raw,
    /// An NBD export: the export is the disk (opened from a URI, never probed).
    Nbd,
}

impl Format {
    /// The format's name as the command line and JSON spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Format::Vmdk => "vmdk",
            Format::Raw => "raw",
            Format::Nbd => "nbd",
        }
    }
}

/// An opened image.
#[derive(Debug)]
pub enum Image {
    /// A VMDK disk.
    Vmdk(VmdkDisk),
    /// A raw image.
    Raw(RawDisk),
    /// An NBD export.
    Nbd(NbdDisk),
}

impl Image {
    /// The image as a [`VirtualDisk`].
    pub fn disk(&self) -> &dyn VirtualDisk {
        match self {
            Image::Vmdk(d) => d,
            Image::Raw(d) => d,
            Image::Nbd(d) => d,
        }
    }

    /// The format.
    pub fn format(&self) -> Format {
        match self {
            Image::Vmdk(_) => Format::Vmdk,
            Image::Raw(_) => Format::Raw,
            Image::Nbd(_) => Format::Nbd,
        }
    }

    /// Sets the disk's logical sector size (the user's `--sector-size`), which the
    /// partition reader then uses instead of probing it.
    pub fn set_logical_sector_size(&mut self, size: Option<u64>) {
        match self {
            Image::Vmdk(d) => d.set_logical_sector_size(size),
            Image::Raw(d) => d.set_logical_sector_size(size),
            Image::Nbd(d) => d.set_logical_sector_size(size),
        }
    }

    /// Warnings collected while opening.
    pub fn warnings(&self) -> &[Warning] {
        match self {
            Image::Vmdk(d) => d.warnings(),
            Image::Raw(_) | Image::Nbd(_) => &[],
        }
    }
}

/// Guesses the format of `path` from its first bytes: VMDK magics (`KDMV`, `COWD`,
/// seSparse) or a text descriptor mean VMDK; the magic of a format diskray cannot read
/// yet (at the start, or a trailer at the end: see [`foreign`]) is refused with
/// [`Error::UnsupportedFormat`]; anything else is raw.
pub fn probe(path: &Path) -> Result<Format> {
    let file = FileSource::open(path)?;
    let head = file.read_up_to(0, 4096)?;
    let refuse = |f: Foreign| Error::UnsupportedFormat {
        path: path.to_path_buf(),
        format: f.name(),
        advice: f.advice(),
    };
    if let Some(f) = Foreign::from_head(&head) {
        return Err(refuse(f));
    }
    let magic = Fields::new(&head, "image header", path, 0);
    let (m32, m64) = (magic.le32(0).ok(), magic.le64(0).ok());
    let vmdk = m32 == Some(diskray_vmdk::sparse_header::MAGIC)
        || m32 == Some(diskray_vmdk::cowd::MAGIC)
        || m64 == Some(diskray_vmdk::sesparse::MAGIC)
        || diskray_vmdk::descriptor::looks_like_descriptor(&head);
    if vmdk {
        return Ok(Format::Vmdk);
    }
    if file.len() >= foreign::TRAILER as u64 {
        let tail = file.read_up_to(file.len() - foreign::TRAILER as u64, foreign::TRAILER)?;
        if let Some(f) = Foreign::from_tail(&tail) {
            return Err(refuse(f));
        }
    }
    Ok(Format::Raw)
}

/// The prefix of a `--changes` argument that names a QEMU dirty bitmap of the NBD disk
/// being backed up (`nbd-bitmap:NAME`).
pub const NBD_BITMAP_PREFIX: &str = "nbd-bitmap:";

/// The bytes QEMU's dirty bitmap `name` marks dirty in the NBD export at `uri`: the
/// metadata context `qemu:dirty-bitmap:NAME`, read over a connection of its own (flag bit
/// 0: dirty; `docs/nbd.md`), as a change map for a backup. A disk that is not an NBD URI,
/// or an export that does not offer the bitmap, is an error that says so: never a silent
/// full read or a silent skip.
pub fn nbd_dirty_bitmap(uri: &Path, name: &str) -> Result<RangeSet> {
    let text = uri.to_str().filter(|u| diskray_nbd::is_nbd_uri(u));
    let Some(text) = text else {
        let why = format!("{NBD_BITMAP_PREFIX}{name}: a dirty bitmap is read from an NBD disk (nbd://… or nbd+unix://…)");
        return Err(Error::refused(uri, why));
    };
    let context = format!("qemu:dirty-bitmap:{name}");
    let disk = NbdDisk::open(text, &[&context])?;
    if !disk.contexts().contains(&context.as_str()) {
        let why = format!("the export offers no {context} (qemu-nbd -B {name}, or an NBD export with that bitmap)");
        return Err(Error::refused(uri, why));
    }
    let extents = disk.extents(&context, ByteRange::new(0, disk.capacity()))?;
    Ok(extents
        .into_iter()
        .filter(|e| e.flags & 1 != 0)
        .map(|e| ByteRange::new(e.start, e.length))
        .collect())
}

/// The largest power of two that every boundary between dirty and clean bytes of a dirty
/// bitmap is a multiple of (the disk's start and end are no boundaries); `None` when there
/// is no boundary (nothing dirty, or everything). A bitmap's granularity divides it
/// (`docs/formats.md` §4.7): it is an upper bound of the granularity, equal to it as soon
/// as one boundary falls on an odd multiple of the granularity.
pub fn dirty_alignment(dirty: &RangeSet, capacity: u64) -> Option<u64> {
    let bounds = dirty
        .ranges()
        .flat_map(|r| [r.start, r.end()])
        .filter(|&b| b != 0 && b < capacity)
        .fold(0u64, |acc, b| acc | b);
    (bounds != 0).then(|| 1 << bounds.trailing_zeros())
}

/// What a backup should say about QEMU's dirty bitmap `name` before trusting it as its
/// change map (`docs/formats.md` §4.7): nothing when its dirty extents are as fine as the
/// repository's `chunk_size` chunks; a warning when they show a coarser granularity (the
/// incremental reads every dirty granule whole: more than was written, never less), or
/// when it marks the whole disk dirty (the incremental reads every used byte).
pub fn dirty_bitmap_warnings(
    name: &str,
    dirty: &RangeSet,
    capacity: u64,
    chunk_size: u64,
) -> Vec<Warning> {
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    let dirty_bytes = dirty.bytes();
    if capacity > 0 && dirty_bytes >= capacity {
        return vec![Warning::new(format!(
            "dirty bitmap {name} marks the whole disk dirty: the incremental reads every used \
             byte, as a full backup does (a bitmap added before the previous backup, or \
             cleared with everything in it?)"
        ))];
    }
    match dirty_alignment(dirty, capacity) {
        Some(a) if a > chunk_size => {
            let n = dirty.ranges().count();
            vec![Warning::new(format!(
                "dirty bitmap {name}: all {n} dirty extents ({:.1} MiB) start and end on \
                 multiples of {:.1} MiB, coarser than the repository's {:.1} MiB chunks: its \
                 granularity is probably that, and a write of a few bytes makes the \
                 incremental read that much; nothing is missed, but a bitmap of 64 KiB \
                 granularity (qemu-img bitmap --add --granularity 64K, QMP \
                 block-dirty-bitmap-add granularity) reads only what was written",
                mib(dirty_bytes),
                mib(a),
                mib(chunk_size),
            ))]
        }
        _ => Vec::new(),
    }
}

/// True when `path` is an NBD URI rather than a file (`nbd://`, `nbd+unix://`, `nbds://`…).
pub fn is_nbd(path: &Path) -> bool {
    path.to_str().is_some_and(diskray_nbd::is_nbd_uri)
}

/// Opens `path` as `format`, or as whatever [`probe`] finds when `format` is `None`; an NBD
/// URI opens the export (a raw disk; `--format vmdk` is refused for it).
pub fn open(path: &Path, format: Option<Format>, opts: &OpenOptions) -> Result<Image> {
    if let Some(uri) = path.to_str().filter(|p| diskray_nbd::is_nbd_uri(p)) {
        if format == Some(Format::Vmdk) {
            let why = "an NBD export is read as the disk's bytes; --format vmdk does not apply";
            return Err(Error::refused(path, why));
        }
        return Ok(Image::Nbd(NbdDisk::open(uri, &[])?));
    }
    let format = match format {
        Some(f) => f,
        None => probe(path)?,
    };
    match format {
        Format::Nbd => Err(Error::refused(
            path,
            "not an NBD URI (nbd://HOST[:PORT]/EXPORT or nbd+unix:///EXPORT?socket=PATH)",
        )),
        Format::Vmdk => Ok(Image::Vmdk(VmdkDisk::open(path, opts)?)),
        Format::Raw => {
            let raw = RawDisk::open(path)?;
            if raw.capacity() == 0 {
                return Err(Error::refused(
                    path,
                    "empty file: a disk image has at least one sector",
                ));
            }
            Ok(Image::Raw(raw))
        }
    }
}

#[cfg(test)]
mod bitmap_tests {
    use super::*;

    fn set(ranges: &[(u64, u64)]) -> RangeSet {
        ranges.iter().map(|&(s, l)| ByteRange::new(s, l)).collect()
    }

    #[test]
    fn the_alignment_of_dirty_extents_ignores_the_disk_edges() {
        const M: u64 = 1 << 20;
        // Extents at the disk's start and up to its unaligned end: only inner bounds count.
        assert_eq!(
            dirty_alignment(&set(&[(0, 4 * M), (8 * M, 3 * M + 7)]), 11 * M + 7),
            Some(4 * M)
        );
        assert_eq!(
            dirty_alignment(&set(&[(64 << 10, 64 << 10)]), 8 * M),
            Some(64 << 10)
        );
        assert_eq!(dirty_alignment(&set(&[]), 8 * M), None);
        assert_eq!(dirty_alignment(&set(&[(0, 8 * M)]), 8 * M), None);
        let w = dirty_bitmap_warnings("b", &set(&[(4 * M, 4 * M)]), 16 * M, M);
        assert!(
            w[0].message.contains("multiples of 4.0 MiB"),
            "{}",
            w[0].message
        );
        assert!(dirty_bitmap_warnings("b", &set(&[(4 * M, 64 << 10)]), 16 * M, M).is_empty());
        let all = dirty_bitmap_warnings("b", &set(&[(0, 16 * M)]), 16 * M, M);
        assert!(all[0].message.contains("whole disk"));
    }
}
