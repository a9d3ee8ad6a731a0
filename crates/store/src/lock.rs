//! The repository lock: `flock(2)` on `REPO/lock` (through std's `File::lock`). Backups, restores and verify hold it
//! shared, so any number run at once; gc holds it exclusive, so it never runs beside a
//! writer that may still link to an old chunk (the PBS cutoff rule of `docs/formats.md`
//! §5.6, made exact by the lock). The kernel drops the lock when the process dies, so a
//! killed backup never leaves the repository locked.

use diskray_core::{Error, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

/// A held repository lock; released when dropped.
#[derive(Debug)]
pub struct RepoLock {
    _file: File,
}

/// How the lock is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Backups, restores, verify.
    Shared,
    /// Garbage collection.
    Exclusive,
}

impl RepoLock {
    /// Takes the lock on `path`. When it is busy and `on_wait` is given, calls it once and
    /// then waits; without it, returns an error at once.
    pub fn acquire(path: &Path, mode: Mode, on_wait: Option<&dyn Fn()>) -> Result<RepoLock> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::Open {
                path: path.to_path_buf(),
                source: e,
            })?;
        let try_lock = match mode {
            Mode::Shared => file.try_lock_shared(),
            Mode::Exclusive => file.try_lock(),
        };
        match try_lock {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                match on_wait {
                    Some(f) => {
                        f();
                        let held = match mode {
                            Mode::Shared => file.lock_shared(),
                            Mode::Exclusive => file.lock(),
                        };
                        held.map_err(|e| Error::io(path, 0, e))?;
                    }
                    None => return Err(Error::refused(
                        path,
                        "the repository is locked by another diskray process (gc needs it alone)",
                    )),
                }
            }
            Err(TryLockError::Error(e)) => return Err(Error::io(path, 0, e)),
        }
        Ok(RepoLock { _file: file })
    }
}
