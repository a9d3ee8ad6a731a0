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
