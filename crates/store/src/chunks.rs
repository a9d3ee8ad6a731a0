//! The chunk store: `chunks/XXXX/<sha256 hex>`, where XXXX is the first four hex digits
//! (PBS pre-creates all 65 536 prefix directories, `docs/formats.md` §5.1; we create
//! them on first use). A chunk found damaged is renamed `<hex>.bad`, so it is no longer
//! linked to and the next backup that meets its content stores it again.

use crate::chunk::{self, Digest};
use crate::durable;
use crate::repo::Repo;
use diskray_core::{Error, Result};
use std::path::PathBuf;

/// A chunk written under a temporary name, not yet durable nor visible: a batch of them
/// is made durable with one file-system flush and then published (see
/// [`Repo::publish_staged`]), which costs far less than one `fdatasync` per chunk.
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    dest: PathBuf,
}

impl Staged {
    /// Drops a staged chunk that is not needed (another copy of it is published).
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

impl Repo {
    /// The file of a chunk.
    pub fn chunk_path(&self, d: &Digest) -> PathBuf {
        let hex = d.hex();
        self.root().join("chunks").join(&hex[..4]).join(hex)
    }

    /// True when the chunk's file exists (its content is checked by `verify`).
    pub fn has_chunk(&self, d: &Digest) -> bool {
        self.chunk_path(d).is_file()
    }

    /// Writes a chunk under a temporary name unless a file of its name exists; returns the
    /// staged file and its encoded size. Nothing is visible until [`Repo::publish_staged`].
    pub fn stage_chunk(&self, d: &Digest, plain: &[u8]) -> Result<Option<(Staged, u64)>> {
        let dest = self.chunk_path(d);
        if dest.is_file() {
            return Ok(None);
        }
        let tmp = durable::temp_path(&self.tmp_dir(), &d.hex());
        let len = chunk::with_encoded(plain, |encoded| {
            self.with_sealed(encoded, |stored| {
                durable::write_new(&tmp, stored)
                    .map(|()| stored.len() as u64)
                    .map_err(|e| Error::io(&tmp, 0, e))
            })
        })?;
        Ok(Some((Staged { tmp, dest }, len)))
    }

    /// Flushes the file system once, then renames every staged chunk to its name. After
    /// it returns the chunks are complete and flushed under their names (the renames
    /// themselves become durable at the next flush, which publishing an image does).
    pub fn publish_staged(&self, staged: Vec<Staged>) -> Result<()> {
        if staged.is_empty() {
            return Ok(());
        }
        durable::sync_filesystem(self.root())?;
        for s in staged {
            let renamed = std::fs::rename(&s.tmp, &s.dest).or_else(|e| {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(e);
                }
                // First chunk of its prefix directory.
                if let Some(dir) = s.dest.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::rename(&s.tmp, &s.dest)
            });
            renamed.map_err(|e| Error::Open {
                path: s.dest.clone(),
                source: e,
            })?;
        }
        Ok(())
    }

    /// Reads a chunk and checks it against its digest; at most `max_len` plaintext bytes.
    pub fn get_chunk(&self, d: &Digest, max_len: u64) -> Result<Vec<u8>> {
        self.read_chunk(d, max_len, true)
    }

    /// Reads a chunk, checking its CRC, encoding and length, and its digest
    /// ([`Repo::chunk_digest`]) against its name when `check_digest` is set.
    pub fn read_chunk(&self, d: &Digest, max_len: u64, check_digest: bool) -> Result<Vec<u8>> {
        let path = self.chunk_path(d);
        with_chunk_file(self, &path, max_len, |bytes| {
            let plain = chunk::decode(bytes, max_len, None)?;
            self.check_chunk_digest(d, &plain, check_digest)?;
            Ok(plain)
        })
    }

    /// Reads a chunk straight into `out`, which must be exactly its plaintext length.
    pub fn read_chunk_into(&self, d: &Digest, out: &mut [u8], check_digest: bool) -> Result<()> {
        let path = self.chunk_path(d);
        with_chunk_file(self, &path, out.len() as u64, |bytes| {
            chunk::decode_into(bytes, out, None)?;
            self.check_chunk_digest(d, out, check_digest)
        })
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
        let path = self.chunk_path(d);
        let mut bad = path.clone().into_os_string();
        bad.push(".bad");
        match std::fs::rename(&path, &bad) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Open { path, source: e }),
        }
    }
}

thread_local! {
    /// Each thread's buffer for chunk files, reused across reads.
    static FILE_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Reads a chunk file (at most `max_len` plaintext bytes' worth) into a per-thread buffer
/// and decodes it with `decode`; errors name the file.
fn with_chunk_file<R>(
    repo: &Repo,
    path: &std::path::Path,
    max_len: u64,
    decode: impl FnOnce(&[u8]) -> std::result::Result<R, chunk::ChunkError>,
) -> Result<R> {
    use std::io::Read;
    // zstd never expands incompressible data past the raw encoding, which is stored instead.
    let limit = repo.stored_len(max_len + chunk::HEADER_LEN as u64);
    let file = std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::refused(
                path,
                "chunk is missing (damaged and set aside by verify, or deleted); the next backup of this disk stores it again",
            )
        } else {
            Error::Open {
                path: path.to_path_buf(),
                source: e,
            }
        }
    })?;
    FILE_BUF.with(|cell| {
        let mut buf = cell.borrow_mut();
        buf.clear();
        file.take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(|e| Error::io(path, 0, e))?;
        if buf.len() as u64 > limit {
            return Err(Error::corrupt(
                path,
                limit,
                format!("chunk file is longer than a {max_len}-byte chunk can encode to"),
            ));
        }
        let plain = repo.open_object_in_place(path, &mut buf)?;
        decode(&buf[plain]).map_err(|e| Error::corrupt(path, e.offset(), e.to_string()))
    })
}
