//! The chunk store: `chunks/XXXX/<sha256 hex>`, where XXXX is the first four hex digits
//! (PBS pre-creates all 65 536 prefix directories, `shared/FORMATS.md` §5.1; we create
//! them on first use). A chunk found damaged is renamed `<hex>.bad`, so it is no longer
//! linked to and the next backup that meets its content stores it again.

use crate::chunk::{self, Digest};
use crate::durable;
use crate::repo::Repo;
use diskray_core::{Error, Result};
use std::path::PathBuf;

/// What [`Repo::put_chunk`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// The chunk was already stored.
    Existed,
    /// The chunk was written; its encoded size in bytes.
    Written(u64),
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

    /// Stores a chunk unless a file of that name exists. The file appears under its name
    /// only once complete and flushed.
    pub fn put_chunk(&self, d: &Digest, plain: &[u8]) -> Result<Put> {
        let path = self.chunk_path(d);
        if path.is_file() {
            return Ok(Put::Existed);
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::Open {
                path: dir.to_path_buf(),
                source: e,
            })?;
        }
        let encoded = chunk::encode(plain);
        let tmp = durable::temp_path(&self.tmp_dir(), &d.hex());
        durable::write_atomic(&tmp, &path, &encoded, false)?;
        Ok(Put::Written(encoded.len() as u64))
    }

    /// Reads a chunk and checks it against its digest; at most `max_len` plaintext bytes.
    pub fn get_chunk(&self, d: &Digest, max_len: u64) -> Result<Vec<u8>> {
        let path = self.chunk_path(d);
        let bytes = crate::repo::read_bounded(&path, max_len + chunk::HEADER_LEN as u64 + 1024)
            .map_err(|e| match e {
                Error::Open { path, source } if source.kind() == std::io::ErrorKind::NotFound => {
                    Error::refused(
                        &path,
                        "chunk is missing (damaged and set aside by verify, or deleted); the next backup of this disk stores it again",
                    )
                }
                other => other,
            })?;
        chunk::decode(&bytes, max_len, Some(d)).map_err(|reason| Error::corrupt(&path, 0, reason))
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
