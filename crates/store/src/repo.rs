//! Opening and creating a repository, and finding its images.

use crate::config::{
    Config, ENCRYPTED_FORMAT_VERSION, FORMAT_NAME, FORMAT_VERSION, MAX_CONFIG_LEN,
};
use crate::crypto::{Keys, Unlock};
use crate::durable;
use crate::index::FixedIndex;
use crate::kept;
use crate::lock::{Mode, RepoLock};
use crate::manifest::{Manifest, MAX_MANIFEST_LEN};
use diskray_core::{Durability, Error, RangeSet, Result, Warning};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Largest index file read: the header, [`crate::index::MAX_ENTRIES`] digests, the sum.
const MAX_INDEX_LEN: u64 = crate::index::HEADER_LEN + 32 * crate::index::MAX_ENTRIES + 32;
/// Largest kept-ranges file read.
const MAX_KEPT_LEN: u64 = 16 + 16 * kept::MAX_RANGES + 32;

/// An open repository.
#[derive(Debug, Clone)]
pub struct Repo {
    root: PathBuf,
    config: Config,
    /// The unwrapped keys of an encrypted repository; `None` for a clear one.
    pub(crate) keys: Option<Arc<Keys>>,
}

/// One image found in the repository.
#[derive(Debug, Clone)]
pub struct ImageEntry {
    /// Its manifest.
    pub manifest: Manifest,
    /// Its directory.
    pub dir: PathBuf,
}

impl ImageEntry {
    /// The path and bytes of file `name` of the image (at most `max` bytes), checked
    /// against the SHA-256 (hex) its manifest gives; `mismatch` is the error's reason
    /// when they differ.
    fn read_checked(
        &self,
        repo: &Repo,
        name: &str,
        max: u64,
        sha256: &str,
        mismatch: &str,
    ) -> Result<(PathBuf, Vec<u8>)> {
        let path = self.dir.join(name);
        let stored = read_bounded(&path, repo.stored_len(max))?;
        let bytes = repo.open_object(&path, &stored)?.into_owned();
        if FixedIndex::checksum_hex(&bytes) != sha256 {
            return Err(Error::corrupt(&path, 0, mismatch));
        }
        Ok((path, bytes))
    }
}

impl Repo {
    /// Opens an existing clear repository, refusing unknown formats and versions (and an
    /// encrypted repository: [`Repo::open_with`] takes its password).
    pub fn open(root: &Path) -> Result<Repo> {
        Repo::open_with(root, &crate::crypto::unlock::no_password)
    }

    /// Opens an existing repository; when its config says it is encrypted, the password
    /// from `unlock` unwraps its master key.
    pub fn open_with(root: &Path, unlock: Unlock) -> Result<Repo> {
        let path = root.join("config");
        if !path.exists() {
            return Err(Error::refused(
                root,
                "not a diskray repository (no config file); `diskray backup --repo DIR` creates one",
            ));
        }
        let bytes = read_bounded(&path, MAX_CONFIG_LEN)?;
        let config: Config = serde_json::from_slice(&bytes)
            .map_err(|e| Error::corrupt(&path, 0, format!("config is not valid: {e}")))?;
        if config.format != FORMAT_NAME {
            return Err(Error::refused(
                &path,
                format!("format {:?} is not {FORMAT_NAME:?}", config.format),
            ));
        }
        if config.version != FORMAT_VERSION && config.version != ENCRYPTED_FORMAT_VERSION {
            return Err(Error::refused(
                &path,
                format!(
                    "repository format version {} is not a version this diskray knows ({FORMAT_VERSION} clear, {ENCRYPTED_FORMAT_VERSION} encrypted)",
                    config.version
                ),
            ));
        }
        crate::index::chunk_count(0, config.chunk_size)
            .map_err(|e| Error::corrupt(&path, 0, e.to_string()))?;
        let keys = crate::crypto::unlock::keys_for(root, &config, &path, unlock)?;
        Ok(Repo {
            root: root.to_path_buf(),
            config,
            keys,
        })
    }

    /// Opens the repository at `root`, creating it (with `chunk_size`) if the directory is
    /// missing or empty.
    pub fn open_or_create(root: &Path, chunk_size: u64) -> Result<Repo> {
        Repo::open_or_create_with(root, chunk_size, &crate::crypto::unlock::no_password)
    }

    /// [`Repo::open_or_create`], with the password of an existing encrypted repository
    /// from `unlock`; a repository it creates is clear.
    pub fn open_or_create_with(root: &Path, chunk_size: u64, unlock: Unlock) -> Result<Repo> {
        let empty = match std::fs::read_dir(root) {
            Ok(mut d) => d.next().is_none(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => {
                return Err(Error::Open {
                    path: root.to_path_buf(),
                    source: e,
                })
            }
        };
        if !empty {
            return Repo::open_with(root, unlock);
        }
        crate::index::chunk_count(0, chunk_size)?;
        for dir in [
            root.to_path_buf(),
            root.join("chunks"),
            root.join("images"),
            root.join("tmp"),
        ] {
            std::fs::create_dir_all(&dir).map_err(|e| Error::Open {
                path: dir.clone(),
                source: e,
            })?;
        }
        let config = Config::new(chunk_size);
        let bytes = serde_json::to_vec_pretty(&config).unwrap_or_default();
        // Two backups creating one repository at once: the second rename wins with the
        // same content.
        diskray_core::atomic::write_atomic(&root.join("config"), &bytes, Durability::SyncAll)?;
        Repo::open(root)
    }

    /// The repository directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The repository's config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where temporary files go (same file system as the chunks, so renames are atomic).
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Takes the repository lock.
    pub fn lock(&self, mode: Mode, on_wait: Option<&dyn Fn()>) -> Result<RepoLock> {
        RepoLock::acquire(&self.root.join("lock"), mode, on_wait)
    }

    /// Every complete image, oldest first. Unreadable manifests are returned as warnings.
    pub fn images(&self) -> Result<(Vec<ImageEntry>, Vec<Warning>)> {
        let dir = self.root.join("images");
        let rd = std::fs::read_dir(&dir).map_err(|e| Error::Open {
            path: dir.clone(),
            source: e,
        })?;
        let mut out = Vec::new();
        let mut warnings = Vec::new();
        for entry in rd.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path().join("manifest.json");
            match self.read_manifest(&path) {
                Ok(m) if m.image == name => out.push(ImageEntry {
                    manifest: m,
                    dir: entry.path(),
                }),
                Ok(m) => warnings.push(Warning::about(
                    &path,
                    format!(
                        "names image {:?}, not its directory {name:?}; skipped",
                        m.image
                    ),
                )),
                Err(e) => warnings.push(Warning::new(format!("{e}; image skipped"))),
            }
        }
        // The images of one machine backup share their time: by name, numbers by value,
        // so its disks come in order (`NAME.disk2` before `NAME.disk10`).
        let key = |e: &ImageEntry| {
            (
                e.manifest.unix_micros,
                natural_key(&e.manifest.name),
                e.manifest.image.clone(),
            )
        };
        out.sort_by_key(key);
        Ok((out, warnings))
    }

    /// Finds an image by id, by name (its newest image), or by a unique id prefix.
    pub fn find_image(&self, what: &str) -> Result<ImageEntry> {
        let (images, _) = self.images()?;
        if let Some(e) = images.iter().find(|e| e.manifest.image == what) {
            return Ok(e.clone());
        }
        if let Some(e) = images.iter().rev().find(|e| e.manifest.name == what) {
            return Ok(e.clone());
        }
        let matches: Vec<&ImageEntry> = images
            .iter()
            .filter(|e| e.manifest.image.starts_with(what))
            .collect();
        match matches.len() {
            1 => Ok(matches[0].clone()),
            0 => Err(Error::refused(
                &self.root,
                format!("no image with id or name {what:?} (`diskray images` lists them)"),
            )),
            n => Err(Error::refused(
                &self.root,
                format!("{what:?} is a prefix of {n} image ids; give more of it"),
            )),
        }
    }

    /// Reads and checks an image's index against its manifest.
    pub fn read_index(&self, image: &ImageEntry) -> Result<FixedIndex> {
        let (path, bytes) = image.read_checked(
            self,
            "index",
            MAX_INDEX_LEN,
            &image.manifest.index_sha256,
            "index does not match the checksum in its manifest: the index is damaged",
        )?;
        let index = FixedIndex::from_bytes(&bytes, &path)?;
        if index.capacity != image.manifest.capacity
            || index.chunk_size != image.manifest.chunk_size
        {
            return Err(Error::corrupt(
                &path,
                8,
                "index geometry differs from its manifest",
            ));
        }
        Ok(index)
    }

    /// Reads an image's kept ranges.
    pub fn read_kept(&self, image: &ImageEntry) -> Result<RangeSet> {
        let (path, bytes) = image.read_checked(
            self,
            "kept",
            MAX_KEPT_LEN,
            &image.manifest.kept_sha256,
            "kept ranges do not match the checksum in the manifest",
        )?;
        kept::from_bytes(&bytes, &path, image.manifest.capacity)
    }
}

/// Reads a whole file of at most `max` bytes.
pub fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::Open {
        path: path.to_path_buf(),
        source: e,
    })?;
    if meta.len() > max {
        return Err(Error::corrupt(
            path,
            0,
            format!(
                "{} bytes, more than the {max} such a file can hold",
                meta.len()
            ),
        ));
    }
    std::fs::read(path).map_err(|e| Error::Open {
        path: path.to_path_buf(),
        source: e,
    })
}

impl Repo {
    /// Reads (and in an encrypted repository opens) a manifest.
    pub(crate) fn read_manifest(&self, path: &Path) -> Result<Manifest> {
        let stored = read_bounded(path, self.stored_len(MAX_MANIFEST_LEN))?;
        let bytes = self.open_object(path, &stored)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::corrupt(path, 0, format!("manifest is not valid: {e}")))
    }
}

/// A name's sort key in which runs of digits compare by value (`disk2` < `disk10`); a
/// run's leading zeros are ignored, and ties fall back to the text.
fn natural_key(name: &str) -> (Vec<NamePart>, String) {
    let mut parts = Vec::new();
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        let digits = c.is_ascii_digit();
        let end = rest
            .find(|ch: char| ch.is_ascii_digit() != digits)
            .unwrap_or(rest.len());
        let (run, tail) = rest.split_at(end);
        parts.push(if digits {
            let value = run.trim_start_matches('0');
            // By length first, then text: the value of a run of any length, no overflow.
            NamePart::Number(value.len(), value.to_string())
        } else {
            NamePart::Text(run.to_string())
        });
        rest = tail;
    }
    (parts, name.to_string())
}

/// A run of a name in [`natural_key`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum NamePart {
    /// Digits, by value: (digits without leading zeros, those digits).
    Number(usize, String),
    /// Anything else, by text.
    Text(String),
}

impl Repo {
    /// The images `ids` name (ids or unique id prefixes). A backup name is refused, so
    /// that a name never chooses more than the user meant.
    pub fn find_by_ids(&self, ids: &[String]) -> Result<Vec<ImageEntry>> {
        let (all, _) = self.images()?;
        let mut chosen = Vec::new();
        for what in ids {
            let is_name = |e: &ImageEntry| e.manifest.name == *what && e.manifest.image != *what;
            if all.iter().any(is_name) {
                let hint = format!("see `diskray images --repo {} {what}`", self.root.display());
                let why = format!("is a backup name; forget takes image ids ({hint})");
                return Err(Error::invalid("image id", format!("{what:?}"), why));
            }
            chosen.push(self.find_image(what)?);
        }
        Ok(chosen)
    }

    /// Removes an image from the repository (its chunks stay until gc). The directory is
    /// first renamed into `tmp/`, so the image disappears at once and whole; the caller
    /// holds the lock shared, which keeps gc away meanwhile.
    pub fn forget(&self, image: &ImageEntry) -> Result<()> {
        let gone = self
            .tmp_dir()
            .join(format!("forgotten-{}", image.manifest.image));
        std::fs::rename(&image.dir, &gone).map_err(|e| Error::Open {
            path: image.dir.clone(),
            source: e,
        })?;
        durable::sync_dir_of(&self.root().join("images"))?;
        std::fs::remove_dir_all(&gone).map_err(|e| Error::Open {
            path: gone.clone(),
            source: e,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::natural_key;

    #[test]
    fn names_sort_with_their_numbers_by_value() {
        let mut names = vec![
            "vm.disk10",
            "vm.disk2",
            "vm.disk1",
            "vm.disk02",
            "vm",
            "vm.disk99999999999999999999999",
            "vm.disk0",
        ];
        names.sort_by_key(|n| natural_key(n));
        assert_eq!(
            names,
            [
                "vm",
                "vm.disk0",
                "vm.disk1",
                "vm.disk02",
                "vm.disk2",
                "vm.disk10",
                "vm.disk99999999999999999999999"
            ]
        );
    }
}
