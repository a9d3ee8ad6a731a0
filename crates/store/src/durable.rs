//! Durable, atomic file creation: write under a temporary name, fsync, rename, fsync the
//! directory (invariant 3 of `docs/design.md`: nothing half-written is ever visible).

use diskray_core::{Error, Result};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary name in `dir`, unique within this machine for the life of this process.
pub fn temp_path(dir: &Path, hint: &str) -> PathBuf {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let pid = *PID.get_or_init(std::process::id);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{hint}.{pid}.{n}.tmp"))
}

/// fsyncs a directory, making the renames and creations inside it durable.
pub use diskray_core::atomic::sync_dir as sync_dir_of;

/// Flushes the whole file system holding `path` (`syncfs(2)`): one call that makes every
/// chunk rename of a backup durable before its image is published.
pub fn sync_filesystem(path: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let f = File::open(path).map_err(|e| Error::Open {
        path: path.to_path_buf(),
        source: e,
    })?;
    // SAFETY: syncfs takes a valid open descriptor, which `f` holds for the call.
    let rc = unsafe { libc::syncfs(f.as_raw_fd()) };
    if rc != 0 {
        return Err(Error::io(path, 0, std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Alignment of memory, offsets and lengths for `O_DIRECT` (4Kn devices need 4 KiB; it
/// serves 512-byte devices too).
pub const DIRECT_ALIGN: usize = 4096;

/// A reusable buffer whose areas start at a multiple of [`DIRECT_ALIGN`], so that bytes
/// made in it (an encoded chunk) are written with `O_DIRECT` without a copy.
#[derive(Debug, Default)]
pub struct AlignedBuf(Vec<u8>);

impl AlignedBuf {
    /// An empty buffer.
    pub const fn new() -> AlignedBuf {
        AlignedBuf(Vec::new())
    }

    /// An aligned area of `len` bytes, its content left from earlier use.
    pub fn area(&mut self, len: usize) -> &mut [u8] {
        if self.0.len() < len + DIRECT_ALIGN {
            self.0 = vec![0; len + DIRECT_ALIGN];
        }
        let start = self.0.as_ptr().align_offset(DIRECT_ALIGN);
        &mut self.0[start..start + len]
    }
}

thread_local! {
    /// Each thread's aligned staging buffer for [`write_new`].
    static ALIGNED: std::cell::RefCell<AlignedBuf> = const { std::cell::RefCell::new(AlignedBuf::new()) };
}

/// Creates the new file `path` holding `bytes`. The data bypasses the page cache
/// (`O_DIRECT`, padded to 4 KiB, then cut to its length) where the filesystem allows it:
/// a backup writes every chunk once and does not read it back, and on virtual machines
/// copying into the page cache costs more CPU than compressing. Elsewhere (tmpfs, or a
/// refusal) it is an ordinary write.
pub fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let plain = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?;
        f.write_all(bytes)
    };
    let direct = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_DIRECT)
        .open(path);
    let file = match direct {
        Ok(f) => f,
        // The filesystem refuses O_DIRECT.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return plain(),
        Err(e) => return Err(e),
    };
    // Bytes that start aligned (an encoded chunk, [`AlignedBuf`]) are written in place
    // up to their last whole block; the rest goes through the staging buffer, padded.
    let head = if bytes.as_ptr().align_offset(DIRECT_ALIGN) == 0 {
        bytes.len() / DIRECT_ALIGN * DIRECT_ALIGN
    } else {
        0
    };
    let tail = &bytes[head..];
    let padded = tail.len().div_ceil(DIRECT_ALIGN) * DIRECT_ALIGN;
    let written = file.write_all_at(&bytes[..head], 0).and_then(|()| {
        ALIGNED.with(|cell| {
            let mut buf = cell.borrow_mut();
            let area = buf.area(padded);
            area[..tail.len()].copy_from_slice(tail);
            area[tail.len()..].fill(0);
            file.write_all_at(area, head as u64)
        })
    });
    match written {
        Ok(()) => file.set_len(bytes.len() as u64),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            drop(file);
            std::fs::remove_file(path)?;
            plain()
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::{write_new, AlignedBuf, DIRECT_ALIGN};

    /// Bytes that start aligned are written in place up to their last whole block and
    /// the tail through the staging buffer: every length reads back exactly.
    #[test]
    fn aligned_bytes_are_written_exactly() {
        let here = std::env::current_dir().unwrap();
        let dir = tempfile::tempdir_in(here).unwrap();
        let mut buf = AlignedBuf::new();
        for len in [0usize, 1, 4095, 4096, 4097, 3 * 4096, (1 << 20) + 17] {
            let area = buf.area(len);
            assert_eq!(area.as_ptr().align_offset(DIRECT_ALIGN), 0);
            for (i, b) in area.iter_mut().enumerate() {
                *b = (i * 13 + len) as u8;
            }
            let want = area.to_vec();
            let path = dir.path().join(format!("a{len}"));
            write_new(&path, buf.area(len)).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), want, "{len} bytes");
        }
    }

    #[test]
    fn write_new_writes_exactly_the_bytes_on_any_filesystem() {
        let here = std::env::current_dir().unwrap();
        for dir in [
            tempfile::tempdir_in(here).unwrap(),
            tempfile::tempdir().unwrap(),
        ] {
            for len in [0usize, 1, 4095, 4096, 4097, 1 << 20, (1 << 20) + 17] {
                let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                let path = dir.path().join(format!("f{len}"));
                write_new(&path, &bytes).unwrap();
                assert_eq!(std::fs::read(&path).unwrap(), bytes, "{len} bytes");
                // A second creation of the same name is refused, never a truncation.
                assert!(write_new(&path, b"x").is_err());
                assert_eq!(std::fs::read(&path).unwrap(), bytes, "{len} bytes");
            }
        }
    }
}
