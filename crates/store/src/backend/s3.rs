//! The object-store backend: a repository under a prefix of an S3 bucket
//! (`s3://BUCKET/PREFIX`), through the `object_store` crate (Apache Arrow's, kept by the
//! arrow-rs project; chosen over `opendal` because it does S3 alone well, signs requests
//! itself, retries with backoff on 5xx and timeouts, and its blocking use needs nothing
//! but a runtime: `docs/repository.md`, "Object storage").
//!
//! What an object store offers is atomic whole-object PUTs, reads, listings and deletes;
//! no rename, no flush, no lock. So (`docs/repository.md` states the rules):
//!
//! - a chunk is PUT under its final name (its name is its content's digest, so a chunk
//!   of a backup that fails is only garbage, which gc removes); uploads run in parallel,
//!   at most [`MAX_UPLOADS_IN_FLIGHT`] at once;
//! - an image's index and kept ranges are PUT first and its manifest last, once every
//!   chunk it names is stored: the manifest is what makes an image exist;
//! - the lock is a set of lock objects (`locks/ID`), one per process, refreshed while
//!   held, stale when not refreshed for [`STALE_AFTER`] or when its process is gone from
//!   this host, as restic's;
//! - gc keeps every chunk younger than [`GC_GRACE`] even when no image names it.

use super::{image_key, Backend, Listed, LockGuard, Mode, Staged};
use crate::host::{hostname, random_bytes, unix_now};
use diskray_core::{Error, Result};
use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Chunk uploads in flight at once: enough to hide a LAN round trip behind the pipeline's
/// compression; each holds one encoded chunk (at most 16 MiB), so memory stays bounded.
pub const MAX_UPLOADS_IN_FLIGHT: usize = 16;
/// Small objects (manifests) read at once when many are needed: a repository of hundreds
/// of images is listed in a few round trips' time; each holds at most one manifest.
const MAX_READS_IN_FLIGHT: usize = 32;
/// A lock object not refreshed for this long belongs to a process that is gone (restic's
/// rule: 30 minutes).
pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);
/// How often a held lock object is written again: well inside [`STALE_AFTER`].
pub const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);
/// gc deletes no chunk younger than this: a writer that stalled past [`STALE_AFTER`]
/// (its lock taken for stale) may still be uploading and linking; it finds its lock gone
/// before it publishes (`docs/repository.md`, "gc").
pub const GC_GRACE: Duration = Duration::from_secs(2 * 60 * 60);
/// Retries of one request on 5xx answers, timeouts and refused connections.
const MAX_RETRIES: usize = 4;
/// No request is retried after this long plus the request timeout from its first try:
/// a server that is gone fails the command within about this time, with the server's last
/// answer, and a request that timed out is tried once more at least.
const RETRY_WINDOW: Duration = Duration::from_secs(30);
/// One request's own limit by default (a 16 MiB chunk over a slow LAN fits;
/// `--s3-timeout` sets another).
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait between two tries at a busy lock.
const LOCK_RETRY_MAX: Duration = Duration::from_secs(10);
/// Largest lock object read: a few fields of JSON.
const MAX_LOCK_LEN: u64 = 4096;
/// Chunk existence questions answered by a HEAD each before one listing of `chunks/`
/// answers the rest: an incremental asks about its few hundred new chunks and patches,
/// for which a listing of every chunk (a page per 1,000) costs more; a full backup asks
/// about thousands.
const HEADS_BEFORE_LISTING: u64 = 1024;
/// Prefixes whose objects all sit directly under them (no deeper keys), listed with a
/// delimiter.
const FLAT_PREFIXES: [&str; 2] = ["locks/", "keys/"];
/// Where chunk objects are (`docs/repository.md`, "Chunks").
const CHUNKS_PREFIX: &str = "chunks/";

/// A repository in an S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<AmazonS3>,
    /// The same bucket through a client that keeps no connection open (plain-http
    /// endpoints only), for reads of the repository's small objects (config, keys, locks,
    /// manifests, indexes, kept ranges). On a connection already used, Linux delays its
    /// acknowledgements (up to 40 ms); a server that leaves Nagle's algorithm on (s3s-fs,
    /// hyper's default) holds the last small segment of each answer until that
    /// acknowledgement comes: 40 ms for each such read, one after the other at the start of
    /// every command. A new connection is acknowledged at once, and on a LAN costs one
    /// round trip. Chunk reads stay on pooled connections: they are many, in parallel.
    fresh: Option<Arc<AmazonS3>>,
    runtime: tokio::runtime::Runtime,
    /// `s3://BUCKET/PREFIX` (no trailing slash).
    url: String,
    /// The key prefix, empty or ending in `/`.
    prefix: String,
    /// Bounds uploads in flight.
    uploads: Arc<tokio::sync::Semaphore>,
    /// The chunk keys known to exist: listed once, then kept up to date by this process.
    chunks: Mutex<Option<HashSet<String>>>,
    /// Chunk existence questions answered by a HEAD so far (before the listing).
    heads: AtomicU64,
    /// Set when a lock this process holds was found removed by another (as stale).
    lock_lost: AtomicBool,
    /// The keys of the lock objects this process holds.
    held: Mutex<Vec<String>>,
}

/// The content of a lock object.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LockRecord {
    /// The host the process runs on.
    host: String,
    /// Its process id.
    pid: u32,
    /// Held exclusive (gc) rather than shared.
    exclusive: bool,
    /// When it was taken, seconds since the epoch.
    time: i64,
    /// When it was last written, seconds since the epoch.
    refreshed: i64,
}

/// Whether process `pid` of this host is alive.
fn alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

impl S3Store {
    /// The repository at `BUCKET[/PREFIX]` (what follows `s3://`). Credentials and region
    /// come from the `AWS_*` environment variables; the endpoint from `settings`, else
    /// `AWS_ENDPOINT_URL`. With an endpoint, requests are path-style and may be plain
    /// `http://`, as S3-compatible servers on a LAN or loopback need.
    pub fn open(rest: &str, settings: &super::S3Settings) -> Result<S3Store> {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_matches('/');
        let url = if prefix.is_empty() {
            format!("s3://{bucket}")
        } else {
            format!("s3://{bucket}/{prefix}")
        };
        if bucket.is_empty() {
            return Err(Error::invalid(
                "repository",
                url,
                "an object store repository is s3://BUCKET or s3://BUCKET/PREFIX",
            ));
        }
        let builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(5),
                    base: 2.0,
                },
                max_retries: MAX_RETRIES,
                retry_timeout: RETRY_WINDOW + settings.timeout,
            });
        let endpoint = settings
            .endpoint
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .filter(|e| !e.is_empty());
        // A plain-http endpoint never uses TLS: not loading the system's trust store saves
        // reading /etc/ssl/certs at every start (50–60 ms here with a cold cache).
        let plain_http = endpoint
            .as_deref()
            .is_some_and(|e| e.to_ascii_lowercase().starts_with("http://"));
        let options = ClientOptions::new()
            .with_timeout(settings.timeout)
            .with_connect_timeout(Duration::from_secs(5))
            .with_no_system_certificates(plain_http);
        // The client's options first: `with_allow_http` sets one of them.
        let build = |options: ClientOptions| {
            let mut b = builder.clone().with_client_options(options);
            if let Some(e) = &endpoint {
                b = b
                    .with_endpoint(e)
                    .with_allow_http(true)
                    .with_virtual_hosted_style_request(false);
            }
            b.build()
                .map_err(|e| Error::refused(&PathBuf::from(&url), format!("S3 settings: {e}")))
        };
        let store = build(options.clone())?;
        // Metadata reads on a plain-http endpoint go each on a new connection (see
        // `Inner::fresh`); a TLS endpoint keeps every read on its pooled connections, as a
        // handshake costs more than the delay it would avoid.
        let fresh = if plain_http {
            Some(Arc::new(build(options.with_pool_max_idle_per_host(0))?))
        } else {
            None
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("diskray-s3")
            .enable_all()
            .build()
            .map_err(|e| Error::Threads {
                count: 2,
                purpose: "S3 client",
                reason: e.to_string(),
            })?;
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        Ok(S3Store {
            inner: Arc::new(Inner {
                store: Arc::new(store),
                fresh,
                runtime,
                url,
                prefix,
                uploads: Arc::new(tokio::sync::Semaphore::new(MAX_UPLOADS_IN_FLIGHT)),
                chunks: Mutex::new(None),
                heads: AtomicU64::new(0),
                lock_lost: AtomicBool::new(false),
                held: Mutex::new(Vec::new()),
            }),
        })
    }
}

impl Inner {
    fn path(&self, key: &str) -> ObjectPath {
        ObjectPath::from(format!("{}{key}", self.prefix))
    }

    fn name_of(&self, key: &str) -> PathBuf {
        PathBuf::from(format!("{}/{key}", self.url))
    }

    /// An object store error as ours: a missing object is `NotFound` (callers tell it
    /// apart), anything else an I/O error naming the object.
    fn error(&self, key: &str, e: object_store::Error) -> Error {
        let path = self.name_of(key);
        match e {
            object_store::Error::NotFound { .. } => Error::Open {
                path,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such object"),
            },
            // A request, not a position, failed: no byte offset to give.
            e => Error::Open {
                path,
                source: std::io::Error::other(e.to_string()),
            },
        }
    }

    /// Reads a whole object of at most `max` bytes; a larger one is refused from its
    /// size before its body is read.
    async fn fetch(&self, key: &str, max: u64) -> Result<Vec<u8>> {
        let store = match &self.fresh {
            Some(fresh) if !key.starts_with(CHUNKS_PREFIX) => fresh,
            _ => &self.store,
        };
        let got = store
            .get(&self.path(key))
            .await
            .map_err(|e| self.error(key, e))?;
        let too_long = |size: u64| {
            Error::corrupt(
                &self.name_of(key),
                max,
                format!("{size} bytes, longer than the {max} bytes such an object can hold"),
            )
        };
        if got.meta.size > max {
            return Err(too_long(got.meta.size));
        }
        let bytes = got.bytes().await.map_err(|e| self.error(key, e))?;
        if bytes.len() as u64 > max {
            return Err(too_long(bytes.len() as u64));
        }
        Ok(bytes.to_vec())
    }

    fn get_into(&self, key: &str, max: u64, buf: &mut Vec<u8>) -> Result<()> {
        *buf = self.runtime.block_on(self.fetch(key, max))?;
        Ok(())
    }

    fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        let path = self.path(key);
        self.runtime
            .block_on(self.store.put(&path, PutPayload::from(bytes)))
            .map(|_| ())
            .map_err(|e| self.error(key, e))
    }

    fn list(&self, prefix: &str) -> Result<Vec<Listed>> {
        let path = self.path(prefix.trim_end_matches('/'));
        let found: Vec<object_store::ObjectMeta> = self
            .runtime
            .block_on(self.store.list(Some(&path)).try_collect())
            .map_err(|e| self.error(prefix, e))?;
        Ok(self.listed(prefix, found))
    }

    /// The listed objects under `prefix`, by key.
    fn listed(&self, prefix: &str, found: Vec<object_store::ObjectMeta>) -> Vec<Listed> {
        found
            .into_iter()
            .filter_map(|m| {
                let key = m.location.as_ref().strip_prefix(&self.prefix)?.to_string();
                key.starts_with(prefix).then(|| Listed {
                    key,
                    size: m.size,
                    modified: m.last_modified.timestamp(),
                })
            })
            .collect()
    }

    /// The objects directly under `prefix` (a listing with a delimiter: a server need not
    /// walk the rest of the bucket, which s3s-fs does for every page of a plain listing).
    fn list_flat(&self, prefix: &str) -> Result<Vec<Listed>> {
        let path = self.path(prefix.trim_end_matches('/'));
        let found = self
            .runtime
            .block_on(self.store.list_with_delimiter(Some(&path)))
            .map_err(|e| self.error(prefix, e))?;
        Ok(self.listed(prefix, found.objects))
    }

    fn delete(&self, key: &str) -> Result<()> {
        match self.runtime.block_on(self.store.delete(&self.path(key))) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error(key, e)),
        }
    }

    fn exists(&self, key: &str) -> Result<bool> {
        match self.runtime.block_on(self.store.head(&self.path(key))) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.error(key, e)),
        }
    }

    /// Reads a lock object; `None` when it is gone or not a lock.
    fn read_lock(&self, key: &str) -> Option<LockRecord> {
        let mut buf = Vec::new();
        self.get_into(key, MAX_LOCK_LEN, &mut buf).ok()?;
        serde_json::from_slice(&buf).ok()
    }

    fn is_stale(&self, lock: &LockRecord, me: &str) -> bool {
        let old = unix_now().saturating_sub(lock.refreshed) > STALE_AFTER.as_secs() as i64;
        old || (lock.host == me && !alive(lock.pid))
    }
}

impl Backend for S3Store {
    fn location(&self) -> PathBuf {
        PathBuf::from(&self.inner.url)
    }

    fn name_of(&self, key: &str) -> PathBuf {
        self.inner.name_of(key)
    }

    fn is_vacant(&self) -> Result<bool> {
        let inner = &self.inner;
        let path = ObjectPath::from(inner.prefix.trim_end_matches('/'));
        let first = inner
            .runtime
            .block_on(async { inner.store.list(Some(&path)).try_next().await })
            .map_err(|e| inner.error("", e))?;
        Ok(first.is_none())
    }

    fn create(&self) -> Result<()> {
        Ok(())
    }

    fn get_into(&self, key: &str, max: u64, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.get_into(key, max, buf)
    }

    fn get_many(&self, keys: &[String], max: u64) -> Vec<Result<Vec<u8>>> {
        use futures_util::StreamExt;
        let inner = &self.inner;
        inner.runtime.block_on(
            futures_util::stream::iter(keys)
                .map(|key| inner.fetch(key, max))
                .buffered(MAX_READS_IN_FLIGHT)
                .collect(),
        )
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<()> {
        self.inner.put(key, bytes.to_vec())
    }

    fn put_new(&self, key: &str, bytes: &[u8]) -> Result<bool> {
        // A conditional PUT (If-None-Match: *), which AWS S3 and most S3-compatible
        // servers honour: two writers at once, one wins.
        let inner = &self.inner;
        let opts = object_store::PutOptions {
            mode: object_store::PutMode::Create,
            ..Default::default()
        };
        let path = inner.path(key);
        let put = inner
            .store
            .put_opts(&path, PutPayload::from(bytes.to_vec()), opts);
        match inner.runtime.block_on(put) {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(false),
            Err(e) => Err(inner.error(key, e)),
        }
    }

    fn exists(&self, key: &str) -> Result<bool> {
        if !key.starts_with(CHUNKS_PREFIX) {
            return self.inner.exists(key);
        }
        // A HEAD per chunk while few are asked about (an incremental stores a few hundred
        // patches); past that, one listing answers for every chunk: a HEAD per chunk of a
        // 4 GiB disk would cost thousands of round trips.
        let mut known = self.inner.chunks.lock().unwrap_or_else(|p| p.into_inner());
        if known.is_none() {
            if self.inner.heads.fetch_add(1, Ordering::Relaxed) < HEADS_BEFORE_LISTING {
                drop(known);
                return self.inner.exists(key);
            }
            let listed = self.inner.list(CHUNKS_PREFIX)?;
            *known = Some(listed.into_iter().map(|l| l.key).collect());
        }
        Ok(known.as_ref().is_some_and(|k| k.contains(key)))
    }

    fn exists_is_cheap(&self) -> bool {
        false
    }

    fn list(&self, prefix: &str) -> Result<Vec<Listed>> {
        if FLAT_PREFIXES.contains(&prefix) {
            return self.inner.list_flat(prefix);
        }
        self.inner.list(prefix)
    }

    fn list_children(&self, prefix: &str) -> Result<Vec<String>> {
        let inner = &self.inner;
        let path = inner.path(prefix.trim_end_matches('/'));
        let found = inner
            .runtime
            .block_on(inner.store.list_with_delimiter(Some(&path)))
            .map_err(|e| inner.error(prefix, e))?;
        Ok(found
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect())
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(key)?;
        if let Some(k) = self
            .inner
            .chunks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            k.remove(key);
        }
        Ok(())
    }

    fn rename(&self, from: &str, to: &str) -> Result<()> {
        let inner = &self.inner;
        let copied = inner
            .runtime
            .block_on(inner.store.copy(&inner.path(from), &inner.path(to)));
        match copied {
            Ok(()) => self.delete(from),
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(inner.error(from, e)),
        }
    }

    fn stage(&self, key: &str, bytes: &[u8]) -> Result<Staged> {
        let inner = self.inner.clone();
        let permit = inner
            .runtime
            .block_on(inner.uploads.clone().acquire_owned())
            .map_err(|e| Error::io(&inner.name_of(key), 0, std::io::Error::other(e)))?;
        let path = inner.path(key);
        let store = inner.store.clone();
        let payload = PutPayload::from(bytes.to_vec());
        let upload = inner.runtime.spawn(async move {
            let r = store.put(&path, payload).await.map(|_| ());
            drop(permit);
            r
        });
        Ok(Staged {
            key: key.to_string(),
            tmp: None,
            upload: Some(upload),
            write: None,
        })
    }

    fn publish(&self, staged: Vec<Staged>) -> Result<()> {
        let inner = &self.inner;
        let mut first_error = None;
        let mut stored = Vec::new();
        for s in staged {
            let Some(upload) = s.upload else { continue };
            let r = match inner.runtime.block_on(upload) {
                Ok(r) => r.map_err(|e| inner.error(&s.key, e)),
                Err(e) => Err(Error::io(
                    &inner.name_of(&s.key),
                    0,
                    std::io::Error::other(e.to_string()),
                )),
            };
            match r {
                Ok(()) => stored.push(s.key),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(k) = inner
            .chunks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            k.extend(stored);
        }
        first_error.map_or(Ok(()), Err)
    }

    fn discard(&self, staged: Staged) {
        // The same content is published under the same name: let the upload end.
        if let Some(upload) = staged.upload {
            let _ = self.inner.runtime.block_on(upload);
        }
    }

    fn publish_image(&self, id: &str, files: &[(&str, &[u8])]) -> Result<()> {
        // Checked now, not only at the last refresh: this process may have been held up
        // since then.
        let held = self
            .inner
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for key in held {
            if !self.inner.exists(&key)? {
                self.inner.lock_lost.store(true, Ordering::SeqCst);
            }
        }
        if self.inner.lock_lost.load(Ordering::SeqCst) {
            return Err(Error::refused(
                &self.location(),
                "this process's repository lock was removed as stale while it ran (it was held up for longer than the lock's refresh allows); the image is not published, and gc may have removed chunks it needs: run the backup again",
            ));
        }
        // The manifest last: an image exists once its manifest does.
        let (manifests, others): (Vec<_>, Vec<_>) =
            files.iter().partition(|(name, _)| *name == "manifest.json");
        for (name, bytes) in others.into_iter().chain(manifests) {
            self.inner.put(&image_key(id, name), bytes.to_vec())?;
        }
        Ok(())
    }

    fn remove_image(&self, id: &str) -> Result<()> {
        // The manifest first: the image is gone at once; the rest is only garbage.
        self.inner.delete(&image_key(id, "manifest.json"))?;
        for o in self.inner.list_flat(&format!("images/{id}/"))? {
            self.inner.delete(&o.key)?;
        }
        Ok(())
    }

    fn remove_leftovers(&self) -> Result<u64> {
        // Images whose manifest never came (a backup that failed before publishing).
        let mut by_image: BTreeMap<String, (bool, i64, Vec<String>)> = BTreeMap::new();
        for o in self.inner.list("images/")? {
            let Some((id, file)) = o.key["images/".len()..].split_once('/') else {
                continue;
            };
            let e = by_image.entry(id.to_string()).or_default();
            e.0 |= file == "manifest.json";
            e.1 = e.1.max(o.modified);
            e.2.push(o.key.clone());
        }
        let mut removed = 0;
        for (_, (has_manifest, newest, keys)) in by_image {
            if has_manifest || !self.gc_may_delete(newest) {
                continue;
            }
            for k in keys {
                self.inner.delete(&k)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn lock(&self, mode: Mode, on_wait: Option<&dyn Fn()>) -> Result<Box<dyn LockGuard>> {
        let inner = &self.inner;
        let me = hostname();
        let mut id = [0u8; 8];
        random_bytes(&mut id)?;
        let key = format!("locks/{}-{}", unix_now(), crate::crypto::hex(&id));
        let mut record = LockRecord {
            host: me.clone(),
            pid: std::process::id(),
            exclusive: mode == Mode::Exclusive,
            time: unix_now(),
            refreshed: unix_now(),
        };
        let mut waited = false;
        let mut pause = Duration::from_millis(200);
        loop {
            record.refreshed = unix_now();
            inner.put(&key, serde_json::to_vec(&record).unwrap_or_default())?;
            let mut stale = Vec::new();
            let mut holder = None;
            for o in inner.list_flat("locks/")? {
                if o.key == key {
                    continue;
                }
                let Some(other) = inner.read_lock(&o.key) else {
                    continue;
                };
                if inner.is_stale(&other, &me) {
                    stale.push(o.key);
                } else if mode == Mode::Exclusive || other.exclusive {
                    holder = Some(other);
                }
            }
            let Some(other) = holder else {
                if mode == Mode::Exclusive {
                    // A writer whose lock went stale must find it gone before it
                    // publishes (`docs/repository.md`, "gc").
                    for k in stale {
                        inner.delete(&k)?;
                    }
                }
                return Ok(Box::new(ObjectLock::start(self.inner.clone(), key, record)));
            };
            inner.delete(&key)?;
            let Some(f) = on_wait else {
                let kind = if other.exclusive {
                    "gc"
                } else {
                    "a backup, restore or verify"
                };
                return Err(Error::refused(
                    &inner.name_of("locks/"),
                    format!(
                        "the repository is locked by {kind} (process {} on {}, since {}); {}",
                        other.pid,
                        other.host,
                        diskray_core::time::iso8601(other.time),
                        "gc needs it alone"
                    ),
                ));
            };
            if !waited {
                f();
                waited = true;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(LOCK_RETRY_MAX);
        }
    }

    fn gc_may_delete(&self, modified: i64) -> bool {
        unix_now().saturating_sub(modified) > GC_GRACE.as_secs() as i64
    }
}

/// A held lock object, refreshed by a thread of its own until dropped.
#[derive(Debug)]
struct ObjectLock {
    stop: Option<std::sync::mpsc::Sender<()>>,
    refresher: Option<std::thread::JoinHandle<()>>,
    inner: Arc<Inner>,
    key: String,
}

impl LockGuard for ObjectLock {}

impl ObjectLock {
    fn start(inner: Arc<Inner>, key: String, mut record: LockRecord) -> ObjectLock {
        inner
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(key.clone());
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let refresh = {
            let inner = inner.clone();
            let key = key.clone();
            move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(REFRESH_EVERY)
                {
                    // Gone means another process took it for stale: this one must not
                    // publish what it writes.
                    if !inner.exists(&key).unwrap_or(true) {
                        inner.lock_lost.store(true, Ordering::SeqCst);
                        return;
                    }
                    record.refreshed = unix_now();
                    let _ = inner.put(&key, serde_json::to_vec(&record).unwrap_or_default());
                }
            }
        };
        let refresher = std::thread::Builder::new()
            .name("diskray-lock".into())
            .spawn(refresh)
            .ok();
        ObjectLock {
            stop: Some(stop),
            refresher,
            inner,
            key,
        }
    }
}

impl Drop for ObjectLock {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        let _ = self.inner.delete(&self.key);
        self.inner
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k| *k != self.key);
    }
}
