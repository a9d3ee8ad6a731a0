//! [`Fields`]: the one way diskray reads fixed-offset fields of on-disk structures.
//!
//! A `Fields` is a byte slice that knows which structure it holds (its name) and where that
//! structure lies on disk (file and absolute byte offset). Every read is bounds-checked and
//! names its offset; a read past the end is an [`Error::Corrupt`] at the absolute offset of
//! the field, saying how many bytes were expected and how many the structure holds. Field
//! offsets live as named constants beside each parser (see `docs/formats.md`).
//!
//! Why not `zerocopy` or `binrw`: our structures are read from buffers whose length is only
//! known at run time (a superblock cut short by the end of a volume, a directory block, a
//! grain table of a header-given size), fields are often conditional (64-bit halves present
//! only with a feature flag, FAT32-only fields) and errors must carry the file and absolute
//! offset. `zerocopy` wants `#[repr(C)]` structs of the full size with endian wrapper types
//! and still leaves the error position to the caller; `binrw` brings a derive macro, a
//! `Read + Seek` model and its own error type for what here is a dozen lines of checked
//! slicing. Neither would make a parser shorter or its errors more precise.

use crate::error::{Error, Result};
use std::path::Path;

/// The methods reading one integer of each width and byte order at an offset: each is
/// [`Fields::array`] of the integer's size, converted.
macro_rules! int_readers {
    ($($(#[$doc:meta])* $name:ident: $int:ident::$from:ident;)*) => {$(
        $(#[$doc])*
        pub fn $name(&self, off: usize) -> Result<$int> {
            self.array(off).map($int::$from)
        }
    )*};
}

/// A bounds-checked view of one on-disk structure's bytes.
#[derive(Clone, Copy, Debug)]
pub struct Fields<'a> {
    bytes: &'a [u8],
    what: &'static str,
    path: &'a Path,
    at: u64,
}

impl<'a> Fields<'a> {
    /// The structure `what` (a name for messages, e.g. `"GPT header"`), whose bytes are
    /// `bytes`, read from `path` at absolute byte offset `at`.
    pub fn new(bytes: &'a [u8], what: &'static str, path: &'a Path, at: u64) -> Self {
        Fields {
            bytes,
            what,
            path,
            at,
        }
    }

    /// The structure `what` held in memory with no single place on disk (a directory's
    /// content gathered from its blocks). Its readers treat a failed read as the end of
    /// the structure, never as an error to report: the error would name no file.
    pub fn in_memory(bytes: &'a [u8], what: &'static str) -> Self {
        Fields::new(bytes, what, Path::new(""), 0)
    }

    /// The structure's name.
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// The file the structure was read from.
    pub fn path(&self) -> &'a Path {
        self.path
    }

    /// Absolute byte offset of the structure's first byte.
    pub fn at(&self) -> u64 {
        self.at
    }

    /// Number of bytes the structure holds.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True when the structure holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// All the structure's bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Absolute byte offset of the structure's byte `off` (saturating: an offset that
    /// cannot exist still yields a position for a message).
    pub fn offset(&self, off: usize) -> u64 {
        self.at.saturating_add(off as u64)
    }

    /// An [`Error::Corrupt`] about the field at `off`: `"<what>: <reason>"` at its absolute
    /// offset.
    pub fn corrupt(&self, off: usize, reason: impl std::fmt::Display) -> Error {
        Error::corrupt(
            self.path,
            self.offset(off),
            format!("{}: {reason}", self.what),
        )
    }

    /// Fails unless the structure holds at least `len` bytes.
    pub fn need(&self, len: usize) -> Result<()> {
        self.bytes(0, len).map(|_| ())
    }

    /// The `len` bytes at `off`.
    pub fn bytes(&self, off: usize, len: usize) -> Result<&'a [u8]> {
        off.checked_add(len)
            .and_then(|end| self.bytes.get(off..end))
            .ok_or_else(|| {
                self.corrupt(
                    off,
                    format!(
                        "expected {len} bytes at +{off}, but the structure holds {} bytes",
                        self.bytes.len()
                    ),
                )
            })
    }

    /// The `N` bytes at `off`, copied.
    pub fn array<const N: usize>(&self, off: usize) -> Result<[u8; N]> {
        let b = self.bytes(off, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    /// The `len` bytes at `off` as a structure of their own, named `what`, positioned at
    /// their absolute offset.
    pub fn sub(&self, off: usize, len: usize, what: &'static str) -> Result<Fields<'a>> {
        let bytes = self.bytes(off, len)?;
        Ok(Fields::new(bytes, what, self.path, self.offset(off)))
    }

    /// The byte at `off`.
    pub fn u8(&self, off: usize) -> Result<u8> {
        Ok(self.array::<1>(off)?[0])
    }

    int_readers! {
        /// The little-endian `u16` at `off`.
        le16: u16::from_le_bytes;
        /// The little-endian `u32` at `off`.
        le32: u32::from_le_bytes;
        /// The little-endian `u64` at `off`.
        le64: u64::from_le_bytes;
        /// The big-endian `u16` at `off`.
        be16: u16::from_be_bytes;
        /// The big-endian `u32` at `off`.
        be32: u32::from_be_bytes;
        /// The big-endian `u64` at `off`.
        be64: u64::from_be_bytes;
    }
}

/// Little-endian `u32` words of `bytes` (a table of 32-bit entries); a trailing partial
/// word is ignored, as the tables' readers size their buffers in whole entries.
pub fn le32_words(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
}

/// Little-endian `u64` words of `bytes` (a table of 64-bit entries); a trailing partial
/// word is ignored.
pub fn le64_words(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    bytes.chunks_exact(8).map(|w| {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        u64::from_le_bytes(a)
    })
}

/// Little-endian unsigned words of `width` bytes (1 to 8; other widths are clamped into
/// that range) of `bytes`, for tables whose entry width a header decides; a trailing
/// partial word is ignored.
pub fn le_words(bytes: &[u8], width: usize) -> impl Iterator<Item = u64> + '_ {
    bytes
        .chunks_exact(width.clamp(1, 8))
        .map(|w| w.iter().rev().fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(bytes: &[u8]) -> Fields<'_> {
        Fields::new(bytes, "test header", Path::new("disk.img"), 1000)
    }

    #[test]
    fn reads_both_endians() {
        let b = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09];
        let r = f(&b);
        assert_eq!(r.u8(8).unwrap(), 9);
        assert_eq!(r.le16(0).unwrap(), 0x0201);
        assert_eq!(r.be16(0).unwrap(), 0x0102);
        assert_eq!(r.le32(1).unwrap(), 0x0504_0302);
        assert_eq!(r.be32(1).unwrap(), 0x0203_0405);
        assert_eq!(r.le64(1).unwrap(), 0x0908_0706_0504_0302);
        assert_eq!(r.be64(0).unwrap(), 0x0102_0304_0506_0708);
        assert_eq!(r.array::<3>(6).unwrap(), [7, 8, 9]);
        assert_eq!(r.bytes(9, 0).unwrap(), &[] as &[u8]);
    }

    #[test]
    fn short_buffer_is_corrupt_at_the_field() {
        let b = [0u8; 6];
        let e = f(&b).le32(4).unwrap_err();
        match &e {
            Error::Corrupt { path, offset, .. } => {
                assert_eq!(path, Path::new("disk.img"));
                assert_eq!(*offset, 1004);
            }
            other => panic!("not Corrupt: {other:?}"),
        }
        let msg = e.to_string();
        assert!(msg.contains("test header"), "{msg}");
        assert!(msg.contains("expected 4 bytes at +4"), "{msg}");
        assert!(msg.contains("holds 6 bytes"), "{msg}");
        assert!(f(&[]).u8(0).is_err());
        assert!(f(&b).need(7).is_err());
        f(&b).need(6).unwrap();
    }

    #[test]
    fn offsets_near_usize_max_do_not_wrap() {
        let b = [0u8; 16];
        let r = f(&b);
        for off in [usize::MAX, usize::MAX - 1, usize::MAX - 7, usize::MAX / 2] {
            assert!(r.u8(off).is_err());
            assert!(r.le16(off).is_err());
            assert!(r.be32(off).is_err());
            assert!(r.le64(off).is_err());
            assert!(r.bytes(off, 2).is_err());
            assert!(r.sub(off, 1, "x").is_err());
        }
        assert!(r.bytes(1, usize::MAX).is_err());
        // The position saturates rather than wrapping.
        let far = Fields::new(&b, "x", Path::new("d"), u64::MAX - 1);
        match far.le64(12).unwrap_err() {
            Error::Corrupt { offset, .. } => assert_eq!(offset, u64::MAX),
            other => panic!("not Corrupt: {other:?}"),
        }
    }

    #[test]
    fn sub_structures_know_their_position() {
        let b: Vec<u8> = (0..32).collect();
        let s = f(&b).sub(16, 8, "entry").unwrap();
        assert_eq!(s.at(), 1016);
        assert_eq!(s.what(), "entry");
        assert_eq!(s.u8(0).unwrap(), 16);
        match s.le32(6).unwrap_err() {
            Error::Corrupt { offset, reason, .. } => {
                assert_eq!(offset, 1022);
                assert!(reason.starts_with("entry: "), "{reason}");
            }
            other => panic!("not Corrupt: {other:?}"),
        }
        assert!(f(&b).sub(30, 4, "entry").is_err());
    }

    #[test]
    fn word_tables() {
        let b = [1, 0, 0, 0, 2, 0, 0, 0, 3];
        assert_eq!(le32_words(&b).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(le64_words(&b).collect::<Vec<_>>(), [0x0000_0002_0000_0001]);
        assert_eq!(le64_words(&[]).count(), 0);
        assert_eq!(le_words(&b, 4).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(le_words(&b, 8).collect::<Vec<_>>(), [0x0000_0002_0000_0001]);
        assert_eq!(le_words(&b, 0).count(), 9);
        assert_eq!(le_words(&[0xFF; 9], 99).collect::<Vec<_>>(), [u64::MAX]);
    }
}
