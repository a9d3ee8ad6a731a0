//! The local backend: the repository is a directory, each object a file under it (the
//! layout of `docs/repository.md`, unchanged since the first format). Chunks are written
//! under temporary names in `tmp/` (by a background writer with `O_DIRECT`,
//! [`super::writer`]), flushed with one `syncfs` per batch and renamed into place; an image
//! is written in a directory under `tmp/` and renamed into `images/` whole; the lock is
//! `flock(2)` on `lock`.

use super::writer::{Pending, Writer, Written};
use super::{Backend, Listed, LockGuard, Mode, Staged};
use crate::durable;
use diskray_core::atomic::{write_atomic, Durability};
use diskray_core::{Error, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// A repository in a directory.
#[derive(Debug)]
pub struct LocalDir {
    root: PathBuf,
    /// The writer of staged files, started by the first chunk staged.
    writer: std::sync::OnceLock<Option<Writer>>,
}

impl LocalDir {
    /// The directory `root` (which need not exist yet).
    pub fn new(root: &Path) -> LocalDir {
        LocalDir {
            root: root.to_path_buf(),
            writer: std::sync::OnceLock::new(),
        }
    }

    /// Where temporary files go (same file system as the chunks, so renames are atomic).
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The writer of staged files, started by the first stage; `None` if no thread can be
    /// started (files are then written by the caller, through the page cache).
    fn writer(&self) -> Option<&Writer> {
        self.writer.get_or_init(Writer::start).as_ref()
    }

    /// A new temporary path for the object `key`.
    fn stage_path(&self, key: &str) -> PathBuf {
        let hint = key.rsplit('/').next().unwrap_or("object");
        durable::temp_path(&self.tmp_dir(), hint)
    }

    /// Creates the repository's directories.
    fn create_dirs(&self) -> Result<()> {
        for dir in [
            self.root.clone(),
            self.root.join("chunks"),
            self.root.join("images"),
            self.tmp_dir(),
        ] {
            std::fs::create_dir_all(&dir).map_err(|e| Error::Open {
                path: dir.clone(),
                source: e,
            })?;
        }
        Ok(())
    }

    /// Whether the directory is missing or empty (a repository may be created there).
    fn vacant(&self) -> Result<bool> {
        match std::fs::read_dir(&self.root) {
            Ok(mut d) => Ok(d.next().is_none()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(Error::Open {
                path: self.root.clone(),
                source: e,
            }),
        }
    }
}

fn open_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Open {
        path: path.to_path_buf(),
        source: e,
    }
}

/// The staged object `key`, written (or being written, `write`) at `tmp`.
fn staged(key: &str, tmp: PathBuf, write: Option<Pending>) -> Staged {
    Staged {
        key: key.to_string(),
        tmp: Some(tmp),
        upload: None,
        write,
    }
}

/// Renames `from` to `to`, creating `to`'s directory when it is missing.
fn rename_creating(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::rename(from, to).or_else(|e| {
        // Most often the directory is missing (a new chunk's fan-out directory); if `from`
        // is, the second rename says so.
        if e.kind() != std::io::ErrorKind::NotFound {
            return Err(e);
        }
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::rename(from, to)
    })
}

impl Backend for LocalDir {
    fn location(&self) -> PathBuf {
        self.root.clone()
    }

    fn name_of(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn is_vacant(&self) -> Result<bool> {
        self.vacant()
    }

    fn create(&self) -> Result<()> {
        self.create_dirs()
    }

    fn get_into(&self, key: &str, max: u64, buf: &mut Vec<u8>) -> Result<()> {
        use std::io::Read;
        let path = self.name_of(key);
        let file = File::open(&path).map_err(open_err(&path))?;
        buf.clear();
        file.take(max.saturating_add(1))
            .read_to_end(buf)
            .map_err(|e| Error::io(&path, 0, e))?;
        if buf.len() as u64 > max {
            return Err(Error::corrupt(
                &path,
                max,
                format!("longer than the {max} bytes such an object can hold"),
            ));
        }
        Ok(())
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let path = self.name_of(key);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(open_err(dir))?;
        }
        write_atomic(&path, bytes, Durability::SyncAll)
    }

    fn put_new(&self, key: &str, bytes: &[u8]) -> Result<bool> {
        // Written whole under a temporary name, then linked to its name, which fails when
        // the name exists: two writers at once, one wins whole.
        let path = self.name_of(key);
        let dir = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir).map_err(open_err(dir))?;
        let tmp = durable::temp_path(dir, "new");
        write_atomic(&tmp, bytes, Durability::SyncAll)?;
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => durable::sync_dir_of(dir).map(|()| true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(Error::Open { path, source: e }),
        }
    }

    fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.name_of(key).is_file())
    }

    fn list(&self, prefix: &str) -> Result<Vec<Listed>> {
        let mut out = Vec::new();
        let mut stack = vec![(self.name_of(prefix), prefix.to_string())];
        while let Some((dir, key)) = stack.pop() {
            let rd = match std::fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(Error::Open {
                        path: dir,
                        source: e,
                    })
                }
            };
            for entry in rd.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                // Temporary files of a write in progress.
                if name.starts_with('.') {
                    continue;
                }
                let Ok(meta) = entry.metadata() else { continue };
                let child = format!("{key}{name}");
                if meta.is_dir() {
                    stack.push((entry.path(), format!("{child}/")));
                } else {
                    let modified = meta
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_secs() as i64);
                    out.push(Listed {
                        key: child,
                        size: meta.len(),
                        modified,
                    });
                }
            }
        }
        Ok(out)
    }

    fn delete(&self, key: &str) -> Result<()> {
        let path = self.name_of(key);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::Open { path, source: e })
            }
            _ => Ok(()),
        }
    }

    fn rename(&self, from: &str, to: &str) -> Result<()> {
        let path = self.name_of(from);
        match std::fs::rename(&path, self.name_of(to)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::Open { path, source: e })
            }
            _ => Ok(()),
        }
    }

    fn stage(&self, key: &str, bytes: &[u8]) -> Result<Staged> {
        let tmp = self.stage_path(key);
        let write = match self.writer() {
            Some(w) => Some(w.submit_copy(&tmp, bytes)),
            None => {
                durable::write_new(&tmp, bytes).map_err(|e| Error::io(&tmp, 0, e))?;
                None
            }
        };
        Ok(staged(key, tmp, write))
    }

    fn stage_filled(&self, key: &str, bytes: durable::Filled<'_>) -> Result<Staged> {
        let Some(w) = self.writer() else {
            return self.stage(key, bytes.bytes());
        };
        let tmp = self.stage_path(key);
        Ok(staged(key, tmp.clone(), Some(w.submit_filled(tmp, bytes))))
    }

    fn publish(&self, mut staged: Vec<Staged>) -> Result<()> {
        if staged.is_empty() {
            return Ok(());
        }
        // Every write finished (the first failure, after all are done, fails the batch and
        // removes its files).
        let mut cached = vec![true; staged.len()];
        let mut failed = None;
        for (s, cached) in staged.iter_mut().zip(&mut cached) {
            let (Some(w), Some(tmp)) = (s.write.take(), &s.tmp) else {
                continue;
            };
            match w.wait() {
                Ok(how) => *cached = how == Written::Cached,
                Err(e) => {
                    failed.get_or_insert_with(|| Error::io(tmp, 0, e));
                }
            }
        }
        if let Some(e) = failed {
            for s in staged {
                self.discard(s);
            }
            return Err(e);
        }
        // One flush makes every staged file durable; the renames become durable at the
        // next flush, which publishing an image does.
        durable::sync_filesystem(&self.root)?;
        for (s, cached) in staged.into_iter().zip(cached) {
            let Some(tmp) = s.tmp else { continue };
            if cached {
                durable::drop_cached(&tmp);
            }
            let dest = self.name_of(&s.key);
            rename_creating(&tmp, &dest).map_err(open_err(&dest))?;
        }
        Ok(())
    }

    fn discard(&self, staged: Staged) {
        if let Some(w) = staged.write {
            let _ = w.wait();
        }
        if let Some(tmp) = staged.tmp {
            let _ = std::fs::remove_file(tmp);
        }
    }

    fn publish_image(&self, id: &str, files: &[(&str, &[u8])]) -> Result<()> {
        let dir = self.tmp_dir().join(format!("image-{id}"));
        std::fs::create_dir_all(&dir).map_err(open_err(&dir))?;
        let written = (|| {
            for (name, bytes) in files {
                write_atomic(&dir.join(name), bytes, Durability::SyncData)?;
            }
            durable::sync_dir_of(&dir)?;
            // Every chunk the index names is durable before the image appears.
            durable::sync_filesystem(&self.root)?;
            let dest = self.root.join("images").join(id);
            std::fs::rename(&dir, &dest).map_err(open_err(&dest))?;
            durable::sync_dir_of(&self.root.join("images"))
        })();
        if written.is_err() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        written
    }

    fn remove_image(&self, id: &str) -> Result<()> {
        let dir = self.root.join("images").join(id);
        let gone = self.tmp_dir().join(format!("forgotten-{id}"));
        std::fs::rename(&dir, &gone).map_err(open_err(&dir))?;
        durable::sync_dir_of(&self.root.join("images"))?;
        std::fs::remove_dir_all(&gone).map_err(open_err(&gone))
    }

    fn remove_leftovers(&self) -> Result<u64> {
        let mut removed = 0;
        if let Ok(entries) = std::fs::read_dir(self.tmp_dir()) {
            for e in entries.flatten() {
                let p = e.path();
                let r = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
                removed += r.is_ok() as u64;
            }
        }
        Ok(removed)
    }

    fn lock(&self, mode: Mode, on_wait: Option<&dyn Fn()>) -> Result<Box<dyn LockGuard>> {
        Ok(Box::new(FileLock::acquire(
            &self.root.join("lock"),
            mode,
            on_wait,
        )?))
    }
}

/// The lock of a directory: `flock(2)` on `REPO/lock` (through std's `File::lock`).
/// Backups, restores and verify hold it shared, so any number run at once; gc holds it
/// exclusive, so it never runs beside a writer that may still link to an old chunk (the
/// PBS cutoff rule of `docs/formats.md` §5.6, made exact by the lock). The kernel drops
/// the lock when the process dies, so a killed backup never leaves the repository locked.
#[derive(Debug)]
struct FileLock {
    _file: File,
}

impl LockGuard for FileLock {}

impl FileLock {
    fn acquire(path: &Path, mode: Mode, on_wait: Option<&dyn Fn()>) -> Result<FileLock> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(open_err(path))?;
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
        Ok(FileLock { _file: file })
    }
}
