//! [`FileSource`]: positioned reads from one file the user named (or one a descriptor named,
//! after its path was checked), with errors that carry the path and offset, and the file's
//! host allocation (holes) through `SEEK_DATA` / `SEEK_HOLE`.

use crate::{ByteRange, Error, Result};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// One open file, read with `pread` so that any number of threads can share it.
#[derive(Debug)]
pub struct FileSource {
    file: File,
    path: PathBuf,
    len: u64,
}

impl FileSource {
    /// Opens `path` read-only and records its length.
    pub fn open(path: &Path) -> Result<Self> {
        let open_err = |source| Error::Open {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(open_err)?;
        let meta = file.metadata().map_err(open_err)?;
        if meta.is_dir() {
            return Err(Error::refused(path, "is a directory, not a disk image"));
        }
        let len = if meta.file_type().is_file() {
            meta.len()
        } else {
            // Block devices report length 0 in metadata; ask the device itself.
            device_len(&file).map_err(open_err)?
        };
        Ok(Self {
            file,
            path: path.to_path_buf(),
            len,
        })
    }

    /// The path this file was opened by.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's length in bytes when it was opened.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Fills `buf` from `offset`; a read that would run past the end of the file is an
    /// error naming the file and the offset (never a short read, never zeros).
    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|end| end > self.len) {
            return Err(Error::corrupt(
                &self.path,
                offset,
                format!(
                    "needs {} bytes but the file ends at byte {}",
                    buf.len(),
                    self.len
                ),
            ));
        }
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| Error::io(&self.path, offset, e))
    }

    /// Reads up to `max` bytes from `offset`, stopping at the end of the file.
    pub fn read_up_to(&self, offset: u64, max: usize) -> Result<Vec<u8>> {
        let avail = self.len.saturating_sub(offset).min(max as u64) as usize;
        let mut buf = vec![0u8; avail];
        self.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }

    /// The ranges of `[range.start, range.end())` that hold data on the host (everything
    /// that is not a hole). Filesystems without `SEEK_DATA` report the whole range as data.
    pub fn data_ranges(&self, range: ByteRange) -> Result<Vec<ByteRange>> {
        let end = range.end().min(self.len);
        let mut out = Vec::new();
        let mut pos = range.start;
        while pos < end {
            let data = match seek(&self.file, pos, libc::SEEK_DATA) {
                Ok(Some(d)) => d,
                Ok(None) => break, // only a hole remains
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    // SEEK_DATA unsupported here: everything counts as data.
                    out.push(ByteRange::from_bounds(pos, end));
                    break;
                }
                Err(e) => return Err(Error::io(&self.path, pos, e)),
            };
            if data >= end {
                break;
            }
            let hole = seek(&self.file, data, libc::SEEK_HOLE)
                .map_err(|e| Error::io(&self.path, data, e))?
                .unwrap_or(end)
                .min(end);
            out.push(ByteRange::from_bounds(data, hole));
            pos = hole;
        }
        Ok(out)
    }
}

/// `lseek` with `whence`; `Ok(None)` when the kernel answers ENXIO (no more data).
fn seek(file: &File, offset: u64, whence: libc::c_int) -> std::io::Result<Option<u64>> {
    let Ok(off) = libc::off_t::try_from(offset) else {
        return Ok(None);
    };
    // SAFETY: lseek on a valid, owned descriptor has no memory-safety preconditions. It
    // moves the shared file position, which nothing here uses (all reads are positioned).
    let r = unsafe { libc::lseek(file.as_raw_fd(), off, whence) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENXIO) {
            return Ok(None);
        }
        return Err(e);
    }
    Ok(Some(r as u64))
}

/// The length of a block device (or anything seekable) by seeking to its end.
fn device_len(file: &File) -> std::io::Result<u64> {
    Ok(seek(file, 0, libc::SEEK_END)?.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn short_reads_are_errors_with_path_and_offset() {
        let dir = std::env::temp_dir().join(format!("diskray-core-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f.bin");
        std::fs::File::create(&p)
            .unwrap()
            .write_all(&[7u8; 100])
            .unwrap();
        let f = FileSource::open(&p).unwrap();
        let mut buf = [0u8; 10];
        f.read_exact_at(&mut buf, 90).unwrap();
        assert_eq!(buf, [7u8; 10]);
        let e = f.read_exact_at(&mut buf, 95).unwrap_err().to_string();
        assert!(e.contains("f.bin") && e.contains("at byte 95"), "{e}");
        assert!(f.read_exact_at(&mut buf, u64::MAX - 3).is_err());
        assert_eq!(f.read_up_to(95, 10).unwrap().len(), 5);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn finds_holes() {
        let dir = std::env::temp_dir().join(format!("diskray-core-h-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("sparse.bin");
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(4 << 20).unwrap();
        f.write_all_at(&[1u8; 4096], 1 << 20).unwrap();
        f.sync_all().unwrap();
        let src = FileSource::open(&p).unwrap();
        let ranges = src.data_ranges(ByteRange::new(0, 4 << 20)).unwrap();
        let bytes: u64 = ranges.iter().map(|r| r.length).sum();
        assert!(ranges
            .iter()
            .any(|r| r.start <= 1 << 20 && r.end() >= (1 << 20) + 4096));
        assert!(
            bytes < 4 << 20,
            "a 4 MiB file with one 4 KiB write should have holes"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
