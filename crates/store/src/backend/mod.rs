//! Where a repository's objects live: the seam between the repository's logic (chunks,
//! indexes, manifests, gc, verify) and its storage.
//!
//! A repository is a set of *objects* named by keys (`docs/repository.md`, "Objects"):
//!
//! ```text
//! config                          format name and version
//! chunks/XXXX/<digest hex>        one chunk (XXXX: the first four hex digits)
//! chunks/XXXX/<digest hex>.bad    a chunk verify found damaged, set aside
//! images/<id>/index               an image's fixed index
//! images/<id>/kept                its kept byte ranges
//! images/<id>/manifest.json       its manifest: an image exists once this exists
//! keys/<id>                       (encrypted repositories) one wrapped master key
//! locks/<id>                      (object stores) one lock of a running process
//! ```
//!
//! Two backends: [`local::LocalDir`], a directory (the default, the layout every
//! repository had before this seam, unchanged), and [`s3::S3Store`], a bucket and prefix
//! of an S3-compatible object store. Each publishes an image and takes the repository
//! lock its own way, because the guarantees differ: a directory has atomic renames and
//! `flock`, an object store has atomic whole-object PUTs and nothing else.

use diskray_core::Result;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub mod local;
pub mod s3;
mod writer;

/// How the repository lock is held (`docs/repository.md`, "Locking").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Backups, restores, verify, forget: any number at once.
    Shared,
    /// Garbage collection: alone.
    Exclusive,
}

/// A held repository lock; released when dropped.
pub trait LockGuard: Send + Sync + std::fmt::Debug {}

/// An object written but not yet published: a batch of them is made durable and visible
/// at once by [`Backend::publish`].
#[derive(Debug)]
pub struct Staged {
    /// The object's key.
    pub key: String,
    /// Where the local backend wrote it (None: already stored under its key).
    pub(crate) tmp: Option<PathBuf>,
    /// The object store backend's upload in flight.
    pub(crate) upload: Option<tokio::task::JoinHandle<object_store::Result<()>>>,
    /// The local backend's write of `tmp` in flight.
    pub(crate) write: Option<writer::Pending>,
}

/// One object found by [`Backend::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written, in seconds since the Unix epoch (0 when unknown).
    pub modified: i64,
}

/// A store of objects.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// The repository's location, for messages: a directory or `s3://BUCKET/PREFIX`.
    fn location(&self) -> PathBuf;

    /// An object's name in messages: its path, or its `s3://` URL.
    fn name_of(&self, key: &str) -> PathBuf;

    /// Whether nothing is stored there yet (a repository may be created there).
    fn is_vacant(&self) -> Result<bool>;

    /// Prepares an empty location to hold a repository.
    fn create(&self) -> Result<()>;

    /// Reads a whole object of at most `max` bytes into `buf` (cleared first). A missing
    /// object is an [`diskray_core::Error::Open`] of kind `NotFound`; a larger one is
    /// refused before it is read.
    fn get_into(&self, key: &str, max: u64, buf: &mut Vec<u8>) -> Result<()>;

    /// Reads a whole object of at most `max` bytes.
    fn get(&self, key: &str, max: u64) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.get_into(key, max, &mut buf)?;
        Ok(buf)
    }

    /// Reads several whole objects of at most `max` bytes each, in the order of `keys`
    /// (an object store asks for them concurrently).
    fn get_many(&self, keys: &[String], max: u64) -> Vec<Result<Vec<u8>>> {
        keys.iter().map(|k| self.get(k, max)).collect()
    }

    /// Stores an object, replacing any of the same key, atomically (never seen half
    /// written) and durably (on the medium when this returns).
    fn put(&self, key: &str, bytes: &[u8]) -> Result<()>;

    /// Stores a new object unless one of that key exists; returns whether it stored it.
    fn put_new(&self, key: &str, bytes: &[u8]) -> Result<bool>;

    /// Whether the object exists.
    fn exists(&self, key: &str) -> Result<bool>;

    /// Every object whose key starts with `prefix` (which ends with `/`), in no order.
    fn list(&self, prefix: &str) -> Result<Vec<Listed>>;

    /// The names of the "directories" directly under `prefix` (which ends with `/`): the
    /// next key segments of the objects below it (image ids under `images/`), in no order.
    fn list_children(&self, prefix: &str) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .list(prefix)?
            .into_iter()
            .filter_map(|o| Some(o.key.strip_prefix(prefix)?.split_once('/')?.0.to_string()))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Whether [`Backend::exists`] costs little (a `stat` on a directory). Where it does
    /// not (an object store), a backup trusts that the chunks its parent image names are
    /// stored, as restic trusts its index, instead of asking for each.
    fn exists_is_cheap(&self) -> bool {
        true
    }

    /// Deletes an object; a missing one is not an error.
    fn delete(&self, key: &str) -> Result<()>;

    /// Gives an object another key (replacing any there); a missing one is not an error.
    fn rename(&self, from: &str, to: &str) -> Result<()>;

    /// Writes a new content-named object (a chunk) so that [`Backend::publish`] makes it
    /// visible under `key` (replacing an equal one: the caller asks [`Backend::exists`]
    /// first, before it spends the work of encoding).
    fn stage(&self, key: &str, bytes: &[u8]) -> Result<Staged>;

    /// [`Backend::stage`] of bytes in an aligned buffer, which the backend may take
    /// instead of copying them (the local backend's writer does).
    fn stage_filled(&self, key: &str, bytes: crate::durable::Filled<'_>) -> Result<Staged> {
        self.stage(key, bytes.bytes())
    }

    /// Makes staged objects durable and visible under their keys.
    fn publish(&self, staged: Vec<Staged>) -> Result<()>;

    /// Drops a staged object that is not needed (an equal one is published).
    fn discard(&self, staged: Staged);

    /// Publishes image `id` made of `files` (name, bytes), the manifest last: the image
    /// appears whole or not at all, and only after every object written before this call
    /// (its chunks) is durable.
    fn publish_image(&self, id: &str, files: &[(&str, &[u8])]) -> Result<()>;

    /// Removes image `id`: it disappears at once and whole (its manifest first).
    fn remove_image(&self, id: &str) -> Result<()>;

    /// Removes what interrupted backups left (gc, under the exclusive lock); returns how
    /// many things it removed.
    fn remove_leftovers(&self) -> Result<u64>;

    /// Takes the repository lock. When it is busy and `on_wait` is given, calls it once
    /// and waits; without it, fails at once.
    fn lock(&self, mode: Mode, on_wait: Option<&dyn Fn()>) -> Result<Box<dyn LockGuard>>;

    /// Whether a chunk object may be deleted by gc even though it was written at
    /// `modified` (seconds since the epoch): an object store keeps young chunks a
    /// stalled writer may still link (`docs/repository.md`, "gc").
    fn gc_may_delete(&self, modified: i64) -> bool {
        let _ = modified;
        true
    }
}

/// How an object store repository is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// The server (else `$AWS_ENDPOINT_URL`, else AWS).
    pub endpoint: Option<String>,
    /// One request's own limit; a request that takes longer is tried again.
    pub timeout: std::time::Duration,
}

impl Default for S3Settings {
    fn default() -> Self {
        S3Settings {
            endpoint: None,
            timeout: s3::REQUEST_TIMEOUT,
        }
    }
}

/// The backend of a repository location: `s3://BUCKET[/PREFIX]` is an object store
/// (reached as `s3` says), anything else a directory.
pub fn at(location: &Path, s3: &S3Settings) -> Result<Arc<dyn Backend>> {
    match location.to_str().and_then(|s| s.strip_prefix("s3://")) {
        Some(rest) => Ok(Arc::new(s3::S3Store::open(rest, s3)?)),
        None => Ok(Arc::new(local::LocalDir::new(location))),
    }
}

/// The key of a chunk.
pub fn chunk_key(hex: &str) -> String {
    format!("chunks/{}/{hex}", &hex[..4.min(hex.len())])
}

/// The key of file `name` of image `id`.
pub fn image_key(id: &str, name: &str) -> String {
    format!("images/{id}/{name}")
}
