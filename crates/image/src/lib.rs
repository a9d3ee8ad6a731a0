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
