//! Linux swap: the header page is metadata, the rest is excluded (it holds nothing worth
//! keeping once the guest is off), unless a hibernation image is stored there.
//!
//! Sources: Linux `include/linux/swap.h` (`union swap_header`); `docs/formats.md` §3.5.

use crate::probe::Content;
use crate::slice::Slice;
use crate::{Allocation, FileAccess, Filesystem};
use diskray_core::{ByteRange, Result, Warning};

/// Page size assumed for the header (x86-64 and most guests).
pub const PAGE: u64 = 4096;

/// Byte offsets in the header page (`union swap_header`; `info` starts at 1024).
mod off {
    /// `info.last_page` (u32).
    pub const LAST_PAGE: usize = 1028;
    /// `info.volume_name`, 16 bytes, NUL-padded.
    pub const VOLUME_NAME: usize = 1052;
    /// Bytes of the volume name.
    pub const VOLUME_NAME_BYTES: usize = 16;
    /// Bytes of the signature at the end of the page (`magic.magic`).
    pub const MAGIC_BYTES: usize = 10;
}

/// An opened swap area.
pub struct Swap<'a> {
    slice: Slice<'a>,
    pages: u64,
    label: Option<String>,
    hibernated: bool,
}

impl<'a> Swap<'a> {
    /// Opens the swap area at the start of `slice`.
    pub fn open(slice: Slice<'a>) -> Result<Swap<'a>> {
        let page = slice.read_vec(0, PAGE)?;
        let f = slice.fields(&page, "swap header", 0);
        let magic_at = PAGE as usize - off::MAGIC_BYTES;
        let magic = f.bytes(magic_at, off::MAGIC_BYTES)?;
        let hibernated =
            magic.starts_with(b"S1SUSPEND") || magic == b"ULSUSPEND\0" || magic == b"LINHIB0001";
        if magic != b"SWAPSPACE2" && magic != b"SWAP-SPACE" && !hibernated {
            return Err(slice.corrupt(magic_at as u64, "no swap signature"));
        }
        let last_page = f.le32(off::LAST_PAGE)? as u64;
        let pages = (last_page + 1).min(slice.len() / PAGE).max(1);
        let label = String::from_utf8_lossy(f.bytes(off::VOLUME_NAME, off::VOLUME_NAME_BYTES)?)
            .trim_end_matches('\0')
            .to_string();
        Ok(Swap {
            slice,
            pages,
            label: Some(label).filter(|l| !l.is_empty()),
            hibernated,
        })
    }
}

/// Swap holds no files.
impl FileAccess for Swap<'_> {
    fn files(&self) -> Option<&dyn crate::files::Files> {
        None
    }
}

impl Filesystem for Swap<'_> {
    fn content(&self) -> Content {
        Content::Swap
    }

    fn block_size(&self) -> u64 {
        PAGE
    }

    fn size(&self) -> u64 {
        self.pages * PAGE
    }

    fn label(&self) -> Option<String> {
        self.label.clone()
    }

    fn allocation(&self) -> Result<Allocation> {
        let mut a = Allocation::default();
        a.metadata.insert(ByteRange::new(0, PAGE));
        a.used.insert(ByteRange::new(0, PAGE));
        if self.hibernated {
            a.used.insert(ByteRange::new(0, self.size()));
            a.warnings.push(Warning::new("swap holds a hibernation image: kept whole (skipping it would destroy the resume image)"));
        } else {
            a.excluded.insert(ByteRange::from_bounds(PAGE, self.size()));
        }
        let _ = &self.slice;
        Ok(a)
    }
}
