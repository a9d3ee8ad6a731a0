//! Durable, atomic file creation: write under a temporary name, fsync, rename, fsync the
//! directory (invariant 3 of `shared/DESIGN.md`: nothing half-written is ever visible).

use diskray_core::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::Write;
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

/// Writes `bytes` to `tmp`, flushes it to stable storage, and renames it to `dest`.
/// The directory entry of `dest` is made durable only when `sync_dir` is set (callers
/// that rename many files sync the file system once instead).
pub fn write_atomic(tmp: &Path, dest: &Path, bytes: &[u8], sync_dir: bool) -> Result<()> {
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(tmp)
            .map_err(|e| Error::Open {
                path: tmp.to_path_buf(),
                source: e,
            })?;
        f.write_all(bytes).map_err(|e| Error::io(tmp, 0, e))?;
        f.sync_data().map_err(|e| Error::io(tmp, 0, e))?;
        std::fs::rename(tmp, dest).map_err(|e| Error::Open {
            path: dest.to_path_buf(),
            source: e,
        })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    result?;
    if sync_dir {
        if let Some(parent) = dest.parent() {
            sync_dir_of(parent)?;
        }
    }
    Ok(())
}

/// fsyncs a directory, making the renames and creations inside it durable.
pub fn sync_dir_of(dir: &Path) -> Result<()> {
    let f = File::open(dir).map_err(|e| Error::Open {
        path: dir.to_path_buf(),
        source: e,
    })?;
    f.sync_all().map_err(|e| Error::io(dir, 0, e))
}

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
