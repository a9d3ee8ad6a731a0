//! The one way diskray writes an output file that others may read: under a unique
//! temporary name in the destination's directory, renamed into place only when complete
//! (invariant 3 of `docs/design.md`: nothing half-written is ever visible), flushed to
//! stable storage where the caller asks. Dropped without [`AtomicFile::commit`], the
//! temporary file is removed.

use crate::{Error, Result};
use std::fs::File;
use std::path::{Path, PathBuf};

/// How much durability a commit buys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Rename only: the data reaches the disk when the kernel writes it back (as `cp` and
    /// `qemu-img` do).
    Rename,
    /// fsync the data before the rename.
    SyncData,
    /// fsync the data, rename, then fsync the directory so the new name survives a crash.
    SyncAll,
}

/// An output file being written.
#[derive(Debug)]
pub struct AtomicFile {
    tmp: tempfile::NamedTempFile,
    dest: PathBuf,
}

impl AtomicFile {
    /// Starts writing `dest` (which is replaced on commit if it exists).
    pub fn create(dest: &Path) -> Result<AtomicFile> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut prefix = std::ffi::OsString::from(".");
        prefix.push(dest.file_name().unwrap_or_default());
        prefix.push(".");
        let tmp = tempfile::Builder::new()
            .prefix(&prefix)
            .suffix(".diskray-tmp")
            .tempfile_in(dir)
            .map_err(|e| Error::Open {
                path: dest.to_path_buf(),
                source: e,
            })?;
        Ok(AtomicFile {
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    /// The open temporary file.
    pub fn file(&self) -> &File {
        self.tmp.as_file()
    }

    /// The open temporary file, for buffered writers.
    pub fn file_mut(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    /// The temporary file's path (for messages about writes into it).
    pub fn temp_path(&self) -> &Path {
        self.tmp.path()
    }

    /// Where the file goes on commit.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Renames the file into place, flushing first as `durability` asks.
    pub fn commit(self, durability: Durability) -> Result<()> {
        if durability != Durability::Rename {
            self.tmp
                .as_file()
                .sync_data()
                .map_err(|e| Error::io(self.tmp.path(), 0, e))?;
        }
        let dest = self.dest;
        self.tmp.persist(&dest).map_err(|e| Error::Open {
            path: dest.clone(),
            source: e.error,
        })?;
        if durability == Durability::SyncAll {
            if let Some(dir) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(dir)?;
            }
        }
        Ok(())
    }
}

/// Writes `bytes` as `dest` atomically.
pub fn write_atomic(dest: &Path, bytes: &[u8], durability: Durability) -> Result<()> {
    use std::io::Write;
    let mut f = AtomicFile::create(dest)?;
    let tmp = f.temp_path().to_path_buf();
    f.file_mut()
        .write_all(bytes)
        .map_err(|e| Error::io(&tmp, 0, e))?;
    f.commit(durability)
}

/// fsyncs a directory, making the renames and creations inside it durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let f = File::open(dir).map_err(|e| Error::Open {
        path: dir.to_path_buf(),
        source: e,
    })?;
    f.sync_all().map_err(|e| Error::io(dir, 0, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_visible_until_commit_and_nothing_left_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a.txt");
        {
            let f = AtomicFile::create(&dest).unwrap();
            assert!(f.temp_path().exists());
            assert!(!dest.exists());
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        write_atomic(&dest, b"hello", Durability::SyncAll).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn outputs_sharing_a_stem_get_distinct_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = AtomicFile::create(&dir.path().join("a.txt")).unwrap();
        let b = AtomicFile::create(&dir.path().join("a.log")).unwrap();
        let c = AtomicFile::create(&dir.path().join("a.txt")).unwrap();
        assert_ne!(a.temp_path(), b.temp_path());
        assert_ne!(a.temp_path(), c.temp_path());
    }
}
