//! Opening a volume's filesystem, whatever it is: probes the content and hands the slice
//! to the module that reads it. The one place that knows every filesystem module (they do
//! not know it), in the manner of gimli-rs/object's `read/any.rs`.

use crate::probe::{probe, Content};
use crate::slice::Slice;
use crate::{ext, fat, ntfs, swap, xfs, Filesystem};
use diskray_core::Result;

/// Opens the filesystem of `slice` when its content is one diskray can map; `Ok(None)`
/// when the content is known but not mappable (or unknown).
pub fn open<'a>(slice: Slice<'a>) -> Result<Option<Box<dyn Filesystem + 'a>>> {
    Ok(match probe(&slice)? {
        Content::Ext2 | Content::Ext3 | Content::Ext4 => Some(Box::new(ext::Ext::open(slice)?)),
        Content::Fat12 | Content::Fat16 | Content::Fat32 => Some(Box::new(fat::Fat::open(slice)?)),
        Content::Swap => Some(Box::new(swap::Swap::open(slice)?)),
        Content::Ntfs => Some(Box::new(ntfs::Ntfs::open(slice)?)),
        Content::Xfs => Some(Box::new(xfs::Xfs::open(slice)?)),
        _ => None,
    })
}
