//! The repository's three encryption hooks: every place that names a chunk, writes an
//! object or reads one calls these, and in a clear repository they are the identity (and
//! SHA-256), so a clear repository stays byte for byte what it was.

use super::{Keys, SEAL_OVERHEAD};
use crate::chunk::Digest;
use crate::durable::Filled;
use crate::repo::Repo;
use diskray_core::{Error, Result};
use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

thread_local! {
    /// Each thread's buffer for sealed chunks, reused across chunks; aligned, so that a
    /// sealed chunk is written with `O_DIRECT` without a copy.
    static SEALED: std::cell::RefCell<crate::durable::AlignedBuf> = const { std::cell::RefCell::new(crate::durable::AlignedBuf::new()) };
}

impl Repo {
    /// True when the repository is encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.keys().is_some()
    }

    /// A chunk's name: SHA-256 of its plaintext in a clear repository, HMAC-SHA-256 under
    /// the master MAC key in an encrypted one.
    pub fn chunk_digest(&self, plain: &[u8]) -> Digest {
        match self.keys() {
            None if self.config().version == crate::config::BLAKE3_FORMAT_VERSION => {
                Digest::blake3(plain)
            }
            None => Digest::of(plain),
            Some(k) => k.chunk_digest(plain),
        }
    }

    /// An object's bytes as stored: sealed in an encrypted repository, as they are in a
    /// clear one.
    pub fn seal_object<'a>(&self, bytes: &'a [u8]) -> Result<Cow<'a, [u8]>> {
        match self.keys() {
            None => Ok(Cow::Borrowed(bytes)),
            Some(k) => k.seal(bytes).map(Cow::Owned),
        }
    }

    /// An object's bytes from what is stored at `what`: opened and authenticated in an
    /// encrypted repository (any change is a `Corrupt` error naming `what`).
    pub fn open_object<'a>(&self, what: &Path, stored: &'a [u8]) -> Result<Cow<'a, [u8]>> {
        match self.keys() {
            None => Ok(Cow::Borrowed(stored)),
            Some(k) => k
                .open(stored)
                .map(Cow::Owned)
                .map_err(|e| Error::corrupt(what, 0, e.to_string())),
        }
    }

    /// Hands `f` an object's bytes as stored (sealed into a per-thread buffer in an
    /// encrypted repository): the chunk path, which seals one chunk after another. `f` may
    /// take the buffer ([`Filled::exchange`]).
    pub fn with_sealed<R>(
        &self,
        bytes: Filled<'_>,
        f: impl FnOnce(Filled<'_>) -> Result<R>,
    ) -> Result<R> {
        let Some(k) = self.keys() else {
            return f(bytes);
        };
        SEALED.with(|cell| {
            let mut buf = cell.borrow_mut();
            let len = bytes.bytes().len() + SEAL_OVERHEAD;
            k.seal_to(bytes.bytes(), buf.area(len))?;
            f(Filled::new(&mut buf, len))
        })
    }

    /// Opens the stored object in `buf` in place: `buf[range]` is its content (all of it
    /// in a clear repository). Any change is a `Corrupt` error naming `what`.
    pub fn open_object_in_place(
        &self,
        what: &Path,
        buf: &mut [u8],
    ) -> Result<std::ops::Range<usize>> {
        match self.keys() {
            None => Ok(0..buf.len()),
            Some(k) => k
                .open_in_place(buf)
                .map_err(|e| Error::corrupt(what, 0, e.to_string())),
        }
    }

    /// The most bytes an object of at most `max` plaintext bytes is stored in.
    pub fn stored_len(&self, max: u64) -> u64 {
        if self.is_encrypted() {
            max + SEAL_OVERHEAD as u64
        } else {
            max
        }
    }

    /// The keys of an encrypted repository.
    pub(crate) fn keys(&self) -> Option<&Arc<Keys>> {
        self.keys.as_ref()
    }
}
