//! Opening and creating a repository, and finding its images.

use crate::backend::{self, image_key, Backend, Mode};
use crate::config::{
    Config, BLAKE3_DIGEST, BLAKE3_FORMAT_VERSION, ENCRYPTED_FORMAT_VERSION, FORMAT_NAME,
    FORMAT_VERSION, MAX_CONFIG_LEN, SHA256_DIGEST,
};
use crate::crypto::{Keys, Unlock};
use crate::index::FixedIndex;
use crate::kept;
use crate::lock::RepoLock;
use crate::manifest::{Manifest, MAX_MANIFEST_LEN};
use diskray_core::{Error, RangeSet, Result, Warning};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Largest index file read: the header, [`crate::index::MAX_ENTRIES`] digests, the sum.
const MAX_INDEX_LEN: u64 = crate::index::HEADER_LEN + 32 * crate::index::MAX_ENTRIES + 32;
/// Largest kept-ranges file read.
const MAX_KEPT_LEN: u64 = 16 + 16 * kept::MAX_RANGES + 32;

/// An open repository.
#[derive(Debug, Clone)]
pub struct Repo {
    backend: Arc<dyn Backend>,
    location: PathBuf,
    config: Config,
    /// The unwrapped keys of an encrypted repository; `None` for a clear one.
    pub(crate) keys: Option<Arc<Keys>>,
}

/// One image found in the repository.
#[derive(Debug, Clone)]
pub struct ImageEntry {
    /// Its manifest.
    pub manifest: Manifest,
    /// Its directory (for an object store, the `s3://` URL of its prefix): its name in
    /// messages.
    pub dir: PathBuf,
}

impl Repo {
    /// Opens an existing clear repository (a directory, or `s3://BUCKET/PREFIX` with the
    /// endpoint from `AWS_ENDPOINT_URL`), refusing unknown formats and versions (and an
    /// encrypted repository: [`Repo::open_backend_with`] takes its password).
    pub fn open(root: &Path) -> Result<Repo> {
        Repo::open_backend(backend::at(root, &Default::default())?)
    }

    /// Opens an existing repository in a directory or bucket; when its config says it is
    /// encrypted, the password from `unlock` unwraps its master key.
    pub fn open_with(root: &Path, unlock: Unlock) -> Result<Repo> {
        Repo::open_backend_with(backend::at(root, &Default::default())?, unlock)
    }

    /// Opens the existing clear repository of `backend`.
    pub fn open_backend(backend: Arc<dyn Backend>) -> Result<Repo> {
        Repo::open_backend_with(backend, &crate::crypto::unlock::no_password)
    }

    /// Opens the existing repository of `backend`; when its config says it is encrypted,
    /// the password from `unlock` unwraps its master key.
    pub fn open_backend_with(backend: Arc<dyn Backend>, unlock: Unlock) -> Result<Repo> {
        match Repo::read_config(&*backend)? {
            Some(bytes) => Repo::open_config(backend, &bytes, unlock),
            None => Err(Error::refused(
                &backend.location(),
                "not a diskray repository (no config file); `diskray backup --repo DIR` creates one",
            )),
        }
    }

    /// The config's bytes, or `None` when there is no config.
    fn read_config(backend: &dyn Backend) -> Result<Option<Vec<u8>>> {
        match backend.get("config", MAX_CONFIG_LEN) {
            Ok(b) => Ok(Some(b)),
            Err(Error::Open { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Opens the repository of `backend` whose config is `bytes`.
    fn open_config(backend: Arc<dyn Backend>, bytes: &[u8], unlock: Unlock) -> Result<Repo> {
        let location = backend.location();
        let path = backend.name_of("config");
        let config: Config = serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt(&path, 0, format!("config is not valid: {e}")))?;
        if config.format != FORMAT_NAME {
            return Err(Error::refused(
                &path,
                format!("format {:?} is not {FORMAT_NAME:?}", config.format),
            ));
        }
        let known = [
            FORMAT_VERSION,
            ENCRYPTED_FORMAT_VERSION,
            BLAKE3_FORMAT_VERSION,
        ];
        if !known.contains(&config.version) {
            return Err(Error::refused(
                &path,
                format!(
                    "repository format version {} is not a version this diskray knows ({FORMAT_VERSION} clear with SHA-256 chunk names, {ENCRYPTED_FORMAT_VERSION} encrypted, {BLAKE3_FORMAT_VERSION} clear with BLAKE3 chunk names)",
                    config.version
                ),
            ));
        }
        let digest = match config.version {
            FORMAT_VERSION => Some(SHA256_DIGEST),
            BLAKE3_FORMAT_VERSION => Some(BLAKE3_DIGEST),
            _ => None,
        };
        if let Some(want) = digest.filter(|d| *d != config.digest) {
            return Err(Error::corrupt(
                &path,
                0,
                format!(
                    "a version {} repository names chunks by {want}, not by {:?}",
                    config.version, config.digest
                ),
            ));
        }
        crate::index::chunk_count(0, config.chunk_size)
            .map_err(|e| Error::corrupt(&path, 0, e.to_string()))?;
        let keys = crate::crypto::unlock::keys_for(&*backend, &config, &path, unlock)?;
        Ok(Repo {
            backend,
            location,
            config,
            keys,
        })
    }

    /// Opens the repository at `root`, creating it (with `chunk_size`) if the directory is
    /// missing or empty.
    pub fn open_or_create(root: &Path, chunk_size: u64) -> Result<Repo> {
        let unlock = &crate::crypto::unlock::no_password;
        Repo::open_or_create_backend(backend::at(root, &Default::default())?, chunk_size, unlock)
    }

    /// Opens the repository of `backend`, creating it (with `chunk_size`) when it holds
    /// nothing yet; the password of an existing encrypted repository comes from
    /// `unlock`, and a repository it creates is clear.
    pub fn open_or_create_backend(
        backend: Arc<dyn Backend>,
        chunk_size: u64,
        unlock: Unlock,
    ) -> Result<Repo> {
        // The config first: one small read, where finding the location empty is a listing
        // (on an object store, a request whose cost grows with the bucket).
        if let Some(bytes) = Repo::read_config(&*backend)? {
            return Repo::open_config(backend, &bytes, unlock);
        }
        if !backend.is_vacant()? {
            return Repo::open_backend_with(backend, unlock);
        }
        crate::index::chunk_count(0, chunk_size)?;
        backend.create()?;
        let config = Config::new(chunk_size);
        let bytes = serde_json::to_vec_pretty(&config).unwrap_or_default();
        // Two backups creating one repository at once: the second write wins with the
        // same content.
        backend.put("config", &bytes)?;
        Repo::open_backend(backend)
    }

    /// The repository's location (a directory or an `s3://` URL), for messages.
    pub fn root(&self) -> &Path {
        &self.location
    }

    /// Where the repository's objects are kept.
    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    /// The repository's config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Takes the repository lock.
    pub fn lock(&self, mode: Mode, on_wait: Option<&dyn Fn()>) -> Result<RepoLock> {
        self.backend.lock(mode, on_wait)
    }

    /// Reads object `name` of `image` (at most `max` bytes), checked against the SHA-256
    /// (hex) its manifest gives; `mismatch` is the error's reason when they differ.
    fn read_checked(
        &self,
        image: &ImageEntry,
        name: &str,
        max: u64,
        sha256: &str,
        mismatch: &str,
    ) -> Result<(PathBuf, Vec<u8>)> {
        let key = image_key(&image.manifest.image, name);
        let path = self.backend.name_of(&key);
        let stored = self.backend.get(&key, self.stored_len(max))?;
        let bytes = self.open_object(&path, &stored)?.into_owned();
        if FixedIndex::checksum_hex(&bytes) != sha256 {
            return Err(Error::corrupt(&path, 0, mismatch));
        }
        Ok((path, bytes))
    }

    /// Every complete image, oldest first. Unreadable manifests are returned as warnings.
    /// An image whose manifest is not there is not an image (an upload that did not
    /// finish, which gc removes).
    pub fn images(&self) -> Result<(Vec<ImageEntry>, Vec<Warning>)> {
        let ids: BTreeSet<String> = self
            .backend
            .list_children("images/")?
            .into_iter()
            .filter(|id| !id.starts_with('.'))
            .collect();
        let keys: Vec<String> = ids
            .iter()
            .map(|id| image_key(id, "manifest.json"))
            .collect();
        let manifests = self
            .backend
            .get_many(&keys, self.stored_len(MAX_MANIFEST_LEN));
        let mut out = Vec::new();
        let mut warnings = Vec::new();
        for ((name, key), bytes) in ids.into_iter().zip(&keys).zip(manifests) {
            let path = self.backend.name_of(key);
            match bytes.and_then(|b| self.parse_manifest(key, &b)) {
                Err(Error::Open { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound => {}
                Ok(m) if m.image == name => out.push(ImageEntry {
                    manifest: m,
                    dir: self.backend.name_of(&format!("images/{name}")),
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

    /// Reads and parses the manifest object `key`.
    pub fn read_manifest(&self, key: &str) -> Result<Manifest> {
        let stored = self.backend.get(key, self.stored_len(MAX_MANIFEST_LEN))?;
        self.parse_manifest(key, &stored)
    }

    fn parse_manifest(&self, key: &str, stored: &[u8]) -> Result<Manifest> {
        let bytes = self.open_object(&self.backend.name_of(key), stored)?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::corrupt(
                &self.backend.name_of(key),
                0,
                format!("manifest is not valid: {e}"),
            )
        })
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
                &self.location,
                format!("no image with id or name {what:?} (`diskray images` lists them)"),
            )),
            n => Err(Error::refused(
                &self.location,
                format!("{what:?} is a prefix of {n} image ids; give more of it"),
            )),
        }
    }

    /// Reads and checks an image's index against its manifest.
    pub fn read_index(&self, image: &ImageEntry) -> Result<FixedIndex> {
        let (path, bytes) = self.read_checked(
            image,
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

    /// Reads an image's index and kept ranges at once: on object storage two requests in
    /// flight instead of one after the other (a round trip saved, and each small object's
    /// response may wait for a delayed TCP acknowledgement).
    pub fn read_index_and_kept(&self, image: &ImageEntry) -> Result<(FixedIndex, RangeSet)> {
        let (index, kept) = std::thread::scope(|s| {
            // Without a second thread (none to be had), one after the other.
            let Ok(kept) = std::thread::Builder::new().spawn_scoped(s, || self.read_kept(image))
            else {
                return (self.read_index(image), self.read_kept(image));
            };
            let index = self.read_index(image);
            let kept = kept.join().unwrap_or_else(|_| {
                Err(Error::refused(
                    &self
                        .backend
                        .name_of(&image_key(&image.manifest.image, "kept")),
                    "reading the kept ranges failed",
                ))
            });
            (index, kept)
        });
        Ok((index?, kept?))
    }

    /// Reads an image's kept ranges.
    pub fn read_kept(&self, image: &ImageEntry) -> Result<RangeSet> {
        let (path, bytes) = self.read_checked(
            image,
            "kept",
            MAX_KEPT_LEN,
            &image.manifest.kept_sha256,
            "kept ranges do not match the checksum in the manifest",
        )?;
        kept::from_bytes(&bytes, &path, image.manifest.capacity)
    }
}

/// Reads a whole local file of at most `max` bytes (a password or key file the user
/// names).
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
                let hint = format!(
                    "see `diskray images --repo {} {what}`",
                    self.location.display()
                );
                let why = format!("is a backup name; forget takes image ids ({hint})");
                return Err(Error::invalid("image id", format!("{what:?}"), why));
            }
            chosen.push(self.find_image(what)?);
        }
        Ok(chosen)
    }

    /// Removes an image from the repository (its chunks stay until gc): it disappears at
    /// once and whole; the caller holds the lock shared, which keeps gc away meanwhile.
    pub fn forget(&self, image: &ImageEntry) -> Result<()> {
        self.backend.remove_image(&image.manifest.image)
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
