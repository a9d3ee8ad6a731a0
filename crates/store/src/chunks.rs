//! The chunk store: `chunks/XXXX/<sha256 hex>`, where XXXX is the first four hex digits
//! (PBS pre-creates all 65 536 prefix directories, `docs/formats.md` §5.1; we create
//! them on first use). A chunk found damaged is renamed `<hex>.bad`, so it is no longer
//! linked to and the next backup that meets its content stores it again.

use crate::backend::chunk_key;
use crate::chunk::{self, Digest};
use crate::index::FixedIndex;
use crate::patch::Patch;
use crate::repo::Repo;
use diskray_core::{Error, Result};
use std::path::PathBuf;

/// A chunk written but not yet visible: a batch of them is made durable and visible at
/// once (see [`Repo::publish_staged`]), which on a directory costs far less than one
/// `fdatasync` per chunk.
pub use crate::backend::Staged;

impl Repo {
    /// The file (or object URL) of a chunk, for messages.
    pub fn chunk_path(&self, d: &Digest) -> PathBuf {
        self.backend().name_of(&chunk_key(&d.hex()))
    }

    /// True when the chunk is stored (its content is checked by `verify`).
    pub fn has_chunk(&self, d: &Digest) -> bool {
        self.backend().exists(&chunk_key(&d.hex())).unwrap_or(false)
    }

    /// True where every object read or existence question is a network round trip (object
    /// storage), false for a local directory.
    pub fn is_remote(&self) -> bool {
        !self.backend().exists_is_cheap()
    }

    /// True when a chunk that a published image names may be linked into a new image:
    /// it is stored (where asking costs a `stat`), or it is trusted to be (where asking
    /// costs a round trip: an object store; a chunk lost there is found by `verify`, and
    /// `backup --rescan` stores it again).
    pub fn may_link(&self, d: &Digest) -> bool {
        d.is_zero() || self.is_remote() || self.has_chunk(d)
    }

    /// Writes a chunk so that [`Repo::publish_staged`] makes it visible, unless one of
    /// its name is stored; returns the staged chunk and its encoded size.
    pub fn stage_chunk(&self, d: &Digest, plain: &[u8]) -> Result<Option<(Staged, u64)>> {
        // Asked before encoding: a rescan meets mostly chunks that are stored.
        if self.backend().exists(&chunk_key(&d.hex()))? {
            return Ok(None);
        }
        self.stage_new_chunk(d, plain).map(Some)
    }

    /// Writes a chunk that is almost surely not stored (a patch: it names the parent's
    /// chunk and the new bytes) without asking first, which on an object store saves a
    /// round trip; writing one that is stored replaces it with the same bytes.
    pub fn stage_new_chunk(&self, d: &Digest, plain: &[u8]) -> Result<(Staged, u64)> {
        let key = chunk_key(&d.hex());
        chunk::with_encoded(plain, |encoded| {
            self.with_sealed(encoded, |stored| {
                let len = stored.bytes().len() as u64;
                let staged = self.backend().stage_filled(&key, stored)?;
                Ok((staged, len))
            })
        })
    }

    /// Makes staged chunks durable and visible under their names. After it returns the
    /// chunks are complete and stored (on a directory, the renames themselves become
    /// durable at the next flush, which publishing an image does).
    pub fn publish_staged(&self, staged: Vec<Staged>) -> Result<()> {
        self.backend().publish(staged)
    }

    /// Drops a staged chunk that is not needed (another copy of it is published).
    pub fn discard_staged(&self, staged: Staged) {
        self.backend().discard(staged)
    }

    /// Reads a chunk and checks it against its digest; at most `max_len` plaintext bytes.
    pub fn get_chunk(&self, d: &Digest, max_len: u64) -> Result<Vec<u8>> {
        self.read_chunk(d, max_len, true)
    }

    /// Reads a chunk, checking its CRC, encoding and length, and its digest
    /// ([`Repo::chunk_digest`]) against its name when `check_digest` is set.
    pub fn read_chunk(&self, d: &Digest, max_len: u64, check_digest: bool) -> Result<Vec<u8>> {
        self.with_chunk_file(d, max_len, |bytes| {
            let plain = chunk::decode(bytes, max_len, None)?;
            self.check_chunk_digest(d, &plain, check_digest)?;
            Ok(plain)
        })
    }

    /// Reads a chunk straight into `out`, which must be exactly its plaintext length.
    pub fn read_chunk_into(&self, d: &Digest, out: &mut [u8], check_digest: bool) -> Result<()> {
        self.with_chunk_file(d, out.len() as u64, |bytes| {
            chunk::decode_into(bytes, out, None)?;
            self.check_chunk_digest(d, out, check_digest)
        })
    }

    /// Reads the patch named `d` (checked like any chunk; at most `max_len` bytes) and
    /// parses it.
    pub fn read_patch(&self, d: &Digest, max_len: u64, check_digest: bool) -> Result<Patch> {
        let bytes = self.read_chunk(d, max_len, check_digest)?;
        Patch::parse(&bytes).map_err(|e| {
            Error::corrupt(
                &self.chunk_path(d),
                chunk::HEADER_LEN as u64 + e.offset,
                format!("{} (offset in the decoded patch)", e.reason),
            )
        })
    }

    /// Reads the patch named `d` and checks that it applies to `base` and makes a chunk of
    /// `len` bytes, as the index that names it says.
    pub fn read_patch_over(
        &self,
        d: &Digest,
        base: &Digest,
        len: u64,
        check_digest: bool,
    ) -> Result<Patch> {
        let patch = self.read_patch(d, len, check_digest)?;
        if patch.base != *base || u64::from(patch.length) != len {
            return Err(Error::corrupt(
                &self.chunk_path(d),
                chunk::HEADER_LEN as u64,
                format!(
                    "patch over {} making {} bytes, where its index has {len} bytes over {base}",
                    patch.base, patch.length
                ),
            ));
        }
        Ok(patch)
    }

    /// Reads the chunk the patch `d` makes over `base` into `out` (exactly its length).
    pub fn read_patched_into(
        &self,
        d: &Digest,
        base: &Digest,
        out: &mut [u8],
        check_digest: bool,
    ) -> Result<()> {
        let patch = self.read_patch_over(d, base, out.len() as u64, check_digest)?;
        if base.is_zero() {
            out.fill(0);
        } else {
            self.read_chunk_into(base, out, check_digest)?;
        }
        patch.apply(out);
        Ok(())
    }

    /// Reads entry `i` of `index` into `out` (exactly its length): its chunk, or its patch
    /// applied over its base.
    pub fn read_entry_into(
        &self,
        index: &FixedIndex,
        i: usize,
        out: &mut [u8],
        check_digest: bool,
    ) -> Result<()> {
        let d = index.digests[i];
        match index.base_of(i) {
            None => self.read_chunk_into(&d, out, check_digest),
            Some(base) => self.read_patched_into(&d, &base, out, check_digest),
        }
    }

    /// Checks (when `check` is set) that `plain` has the name `d`.
    fn check_chunk_digest(
        &self,
        d: &Digest,
        plain: &[u8],
        check: bool,
    ) -> std::result::Result<(), chunk::ChunkError> {
        if !check {
            return Ok(());
        }
        let got = self.chunk_digest(plain);
        if got != *d {
            return Err(chunk::ChunkError::Digest { got });
        }
        Ok(())
    }

    /// Sets a damaged chunk aside as `<hex>.bad` (kept for inspection, never linked).
    pub fn quarantine_chunk(&self, d: &Digest) -> Result<()> {
        let key = chunk_key(&d.hex());
        self.backend().rename(&key, &format!("{key}.bad"))
    }

    /// Reads a chunk's stored bytes (at most `max_len` plaintext bytes' worth) into a
    /// per-thread buffer and decodes them with `decode`; errors name the chunk.
    fn with_chunk_file<R>(
        &self,
        d: &Digest,
        max_len: u64,
        decode: impl FnOnce(&[u8]) -> std::result::Result<R, chunk::ChunkError>,
    ) -> Result<R> {
        let key = chunk_key(&d.hex());
        // zstd never expands incompressible data past the raw encoding, which is stored
        // instead.
        let limit = self.stored_len(max_len + chunk::HEADER_LEN as u64);
        FILE_BUF.with(|cell| {
            let mut buf = cell.borrow_mut();
            match self.backend().get_into(&key, limit, &mut buf) {
                Err(Error::Open { path, source }) if source.kind() == std::io::ErrorKind::NotFound => {
                    return Err(Error::refused(
                        &path,
                        "chunk is missing (damaged and set aside by verify, or deleted); the next backup of this disk stores it again",
                    ))
                }
                r => r?,
            }
            let path = self.chunk_path(d);
            let plain = self.open_object_in_place(&path, &mut buf)?;
            decode(&buf[plain]).map_err(|e| Error::corrupt(&path, e.offset(), e.to_string()))
        })
    }
}

thread_local! {
    /// Each thread's buffer for chunk files, reused across reads.
    static FILE_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}
