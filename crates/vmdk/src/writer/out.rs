//! The output file: positioned writes whose errors name the file and the byte offset.

use diskray_core::{Error, Result};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// An output file opened for positioned writes.
#[derive(Debug)]
pub struct OutFile {
    file: File,
    path: PathBuf,
}

impl OutFile {
    /// Creates `path`, or truncates it when it exists.
    pub fn create(path: &Path) -> Result<OutFile> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|source| Error::Open {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(OutFile {
            file,
            path: path.to_path_buf(),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes all of `buf` at byte `offset`.
    pub fn write_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        self.file
            .write_all_at(buf, offset)
            .map_err(|e| Error::io(&self.path, offset, e))
    }

    /// Sets the file length to `len` bytes (a sparse extension when it grows).
    pub fn set_len(&self, len: u64) -> Result<()> {
        self.file
            .set_len(len)
            .map_err(|e| Error::io(&self.path, len, e))
    }

    /// Flushes data and metadata to the device; `len` (the file length) locates errors.
    pub fn sync(&self, len: u64) -> Result<()> {
        self.file
            .sync_all()
            .map_err(|e| Error::io(&self.path, len, e))
    }
}
