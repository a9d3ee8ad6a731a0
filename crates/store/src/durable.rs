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

/// Alignment of an [`AlignedBuf`]'s areas: a page, which also suits `O_DIRECT` on 4Kn
/// and 512-byte devices.
pub const DIRECT_ALIGN: usize = 4096;

/// A reusable buffer whose areas start at a multiple of [`DIRECT_ALIGN`] (a page): each
/// thread encodes or seals its chunks in one, without a new allocation (and its page
/// faults) per chunk.
#[derive(Debug, Default)]
pub struct AlignedBuf(Vec<u8>);

impl AlignedBuf {
    /// An empty buffer.
    pub const fn new() -> AlignedBuf {
        AlignedBuf(Vec::new())
    }

    /// An aligned area of `len` bytes, its content left from earlier use. A buffer that
    /// must grow at least doubles (up to twice what is asked), so buffers passed around
    /// for objects of varied sizes (patches) settle at the largest instead of being made
    /// anew, and faulted in again, whenever a larger one comes.
    pub fn area(&mut self, len: usize) -> &mut [u8] {
        let need = len + DIRECT_ALIGN;
        if self.0.len() < need {
            self.0 = vec![0; (self.0.len() * 2).clamp(need, need * 2)];
        }
        let start = self.0.as_ptr().align_offset(DIRECT_ALIGN);
        &mut self.0[start..start + len]
    }

    /// The first `len` bytes of the area (as [`AlignedBuf::area`] left them); empty if the
    /// buffer never held that many.
    pub fn filled(&self, len: usize) -> &[u8] {
        let start = self.0.as_ptr().align_offset(DIRECT_ALIGN);
        self.0.get(start..start + len).unwrap_or(&[])
    }
}

/// Bytes made in an [`AlignedBuf`] (the first `len` bytes of its area): an encoded or
/// sealed chunk on its way to a backend, which either copies them ([`Filled::bytes`]) or,
/// writing in the background, takes the buffer itself and leaves another in its place
/// ([`Filled::exchange`]).
#[derive(Debug)]
pub struct Filled<'a> {
    buf: &'a mut AlignedBuf,
    len: usize,
}

impl<'a> Filled<'a> {
    /// The first `len` bytes of `buf`'s area, which must have been made at least that long.
    pub fn new(buf: &'a mut AlignedBuf, len: usize) -> Filled<'a> {
        debug_assert_eq!(buf.filled(len).len(), len);
        Filled { buf, len }
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        self.buf.filled(self.len)
    }

    /// Puts `spare` where the buffer was and returns the buffer with the bytes' length.
    pub fn exchange(self, spare: AlignedBuf) -> (AlignedBuf, usize) {
        (std::mem::replace(self.buf, spare), self.len)
    }
}

/// Creates the new file `path` holding `bytes`, through the page cache: the kernel writes
/// it back while the backup goes on, and the window's one `syncfs` waits for it in the
/// background (`docs/repository.md`, "Writing and locking"); [`drop_cached`] then frees its
/// pages. (Written with `O_DIRECT` until 2026-12-04, each worker waited for the device:
/// 17 % slower on the benchmark's full backup, `docs/benchmarks.md`.)
pub fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(bytes)
}

/// Asks the kernel to drop the cached pages of `path`, a file already flushed: a backup
/// writes each chunk once and does not read it back, so its pages would only push other
/// data out of the page cache. Advice only: failures are ignored.
pub fn drop_cached(path: &Path) {
    use std::os::fd::AsRawFd;
    if let Ok(f) = std::fs::File::open(path) {
        // SAFETY: posix_fadvise takes a valid open descriptor, which `f` holds for the
        // call; it reads no memory of ours.
        unsafe {
            libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{write_new, AlignedBuf, DIRECT_ALIGN};

    /// Areas start at a page boundary whatever their length, and a file written from one
    /// reads back exactly, also after its cached pages were dropped.
    #[test]
    fn aligned_areas_write_and_read_back_after_drop_cached() {
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
            super::sync_filesystem(dir.path()).unwrap();
            super::drop_cached(&path);
            assert_eq!(std::fs::read(&path).unwrap(), want, "{len} bytes");
        }
        // Advice about a file that is not there is ignored.
        super::drop_cached(&dir.path().join("missing"));
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
