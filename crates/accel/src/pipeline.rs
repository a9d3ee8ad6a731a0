//! The backup pipeline: plan, then read, detect zeros, hash, compress and store chunks in
//! parallel (rayon), in windows of chunks so that memory stays bounded whatever the disk
//! size, and publish the image atomically.

use crate::counting::CountingDisk;
use crate::machine::DiskPlan;
use crate::plan::{decide, keep_set, KeepPlan, Mode, ModeRequest, Parent};
use diskray_core::{is_zero, ByteRange, Error, RangeSet, Result, VirtualDisk, Warning};
use diskray_layout::analyze;
use diskray_store::chunks::Staged;
use diskray_store::image::check_name;
use diskray_store::lock::Mode as LockMode;
use diskray_store::manifest::{BackupStats, ChangeSource, ImageDescription, Source, VolumeSummary};
use diskray_store::patch::{overlay, Fill, Patch, Run};
use diskray_store::{Digest, FixedIndex, ImageWriter, Manifest, Repo, ZERO_DIGEST};
use rayon::prelude::*;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Bytes of chunks made (read, patched or rebuilt) per parallel window, besides any number
/// linked or skipped: their files are flushed together with one
/// `syncfs` and published by a background thread while the workers go on with the next
/// window; the data buffers are bounded by the worker count (one chunk per worker at a
/// time), the staged files by two windows.
const WINDOW_BYTES: u64 = 256 << 20;

/// Workers per core: one computing while another waits for its read.
const IO_OVERLAP: usize = 2;
/// Most workers: each holds a chunk (and its encoding) in memory.
const MAX_WORKERS: usize = 64;
/// Most chunks in one window, made or linked: its plan and results are held in memory
/// (about 200 bytes each).
const MAX_WINDOW_CHUNKS: usize = 1 << 16;

/// What to back up and how.
pub struct BackupRequest<'a> {
    /// The disk.
    pub disk: &'a dyn VirtualDisk,
    /// How errors name the disk.
    pub label: &'a Path,
    /// The repository (opened or created by the caller).
    pub repo: &'a Repo,
    /// The backup name (the series this image belongs to).
    pub name: &'a str,
    /// The change map since the previous image, if any.
    pub changed: Option<RangeSet>,
    /// The change id the disk has now.
    pub change_id: Option<&'a str>,
    /// Read and hash every kept byte even with a change map.
    pub rescan: bool,
    /// The image's time (microseconds since 1970) instead of now (`--time`: imports,
    /// tests of retention).
    pub at: Option<u64>,
    /// With a change map, read a changed chunk's kept bytes whole from the disk, instead
    /// of patching the previous image's chunk with only the changed bytes (`--no-patch`).
    pub whole_chunks: bool,
    /// Keep free space (deleted data) instead of storing zeros.
    pub keep_deleted: bool,
    /// Keep swap, pagefile and hiberfil.
    pub keep_swap: bool,
    /// Chunk size of the new image (the repository's default when `None`).
    pub chunk_size: Option<u64>,
    /// A description of the source for the manifest.
    pub source: Source,
    /// Called with (bytes done, capacity) as chunks finish.
    pub progress: &'a (dyn Fn(u64, u64) + Sync),
    /// Called once if the repository lock is busy (gc running), before waiting.
    pub on_lock_wait: Option<&'a (dyn Fn() + Sync)>,
}

/// A finished backup.
#[derive(Debug, Clone)]
pub struct BackupOutcome {
    /// The published image's manifest.
    pub manifest: Manifest,
    /// Its statistics.
    pub stats: BackupStats,
    /// Things the user should know.
    pub warnings: Vec<Warning>,
}

/// How one chunk is produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    /// Nothing kept in it: the zero chunk.
    Skip,
    /// Read its kept bytes from the disk.
    Read,
    /// The parent's chunk with the changed (and newly kept) bytes read from the disk, and
    /// bytes no longer kept set to zero.
    Patch,
    /// Link the parent's chunk.
    Link,
    /// The parent's chunk with bytes that are no longer kept set to zero (no disk read).
    Rebuild,
}

/// What happened to one chunk.
#[derive(Debug, Default)]
struct Done {
    digest: Digest,
    read: u64,
    written: Option<u64>,
    healed: bool,
    rebuilt: bool,
    /// Read although the change map did not mark it (rescan).
    unmarked: bool,
    /// Kept bytes taken from the parent's chunk instead of the disk.
    from_parent: u64,
    /// The chunk is a patch over this base.
    base: Option<Digest>,
    /// The new chunk's file, written but not yet published.
    staged: Option<Staged>,
}

/// Sorted disjoint ranges with per-chunk slicing by binary search.
struct Ranges(Vec<ByteRange>);

impl Ranges {
    fn of(set: &RangeSet) -> Ranges {
        Ranges(set.ranges().collect())
    }

    /// The parts inside `c`, clipped.
    fn slice(&self, c: ByteRange) -> Vec<ByteRange> {
        let first = self.0.partition_point(|r| r.end() <= c.start);
        self.0[first..]
            .iter()
            .take_while(|r| r.start < c.end())
            .filter_map(|r| r.intersect(&c))
            .collect()
    }

    fn touches(&self, c: ByteRange) -> bool {
        let first = self.0.partition_point(|r| r.end() <= c.start);
        self.0.get(first).is_some_and(|r| r.start < c.end())
    }
}

/// Runs one backup and publishes its image.
pub fn backup(req: BackupRequest<'_>) -> Result<BackupOutcome> {
    let at = req.at.unwrap_or_else(now_micros);
    run_backup(req, None, at)
}

/// Runs one backup of a disk of a machine with the plan worked out for the whole machine
/// (instead of analysing the disk alone), its image stamped `unix_micros`.
pub(crate) fn backup_planned(
    req: BackupRequest<'_>,
    plan: DiskPlan,
    unix_micros: u64,
) -> Result<BackupOutcome> {
    run_backup(req, Some(plan), unix_micros)
}

/// Microseconds since 1970 now (0 when the clock is before 1970).
pub(crate) fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn run_backup(
    req: BackupRequest<'_>,
    given: Option<DiskPlan>,
    unix_micros: u64,
) -> Result<BackupOutcome> {
    let started = Instant::now();
    check_name(req.name)?;
    let chunk_size = req.chunk_size.unwrap_or(req.repo.config().chunk_size);
    let capacity = req.disk.capacity();
    diskray_store::index::chunk_count(capacity, chunk_size)?;

    // The repository's round trips (the lock, the parent's manifest, index and kept
    // ranges: several on object storage) overlap the guest's analysis, which reads only
    // the disk.
    let on_wait = req.on_lock_wait;
    let repo = req.repo;
    let name = req.name;
    let from_repo = move || -> Result<_> {
        let lock = repo.lock(LockMode::Shared, on_wait.map(|f| f as &dyn Fn()))?;
        let mut warnings = Vec::new();
        let parent = load_parent(repo, name, &mut warnings);
        Ok((lock, parent, warnings))
    };
    let plan_disk = || -> Result<DiskPlan> {
        match given {
            Some(p) => Ok(p),
            None => {
                let counting = CountingDisk::new(req.disk);
                let layout = analyze(&counting, req.label)?;
                Ok(DiskPlan {
                    keep: keep_set(&counting, &layout, req.keep_deleted, req.keep_swap)?,
                    volumes: volumes_summary(layout.volumes.iter()),
                    read_metadata: counting.bytes_read(),
                })
            }
        }
    };
    let (planned, fetched) = std::thread::scope(|s| {
        // Without a second thread (none to be had), one after the other.
        match std::thread::Builder::new().spawn_scoped(s, from_repo) {
            Ok(h) => {
                let planned = plan_disk();
                let fetched = h.join().unwrap_or_else(|_| {
                    Err(Error::refused(
                        repo.root(),
                        "reading the previous image failed",
                    ))
                });
                (planned, fetched)
            }
            Err(_) => {
                let fetched = from_repo();
                (plan_disk(), fetched)
            }
        }
    });
    // A busy or unreadable repository is reported before a disk that cannot be analysed
    // (the order of the checks before the two ran at once).
    let (_lock, parent, parent_warnings) = fetched?;
    let DiskPlan {
        keep: plan,
        volumes,
        read_metadata,
    } = planned?;
    let mut warnings = plan.warnings.clone();
    warnings.extend(parent_warnings);
    let mode = decide(
        parent.as_ref(),
        ModeRequest {
            capacity,
            chunk_size,
            changed: req.changed.clone(),
            change_id: req.change_id,
            rescan: req.rescan,
        },
        &mut warnings,
    );
    // Link by position only when the geometry is the same.
    let linkable = parent
        .as_ref()
        .filter(|p| p.index.capacity == capacity && p.index.chunk_size == chunk_size);

    let writer = ImageWriter::create(req.repo, unix_micros)?;
    // Each worker alternates waiting for the disk and hashing/compressing: twice as many
    // workers as cores keep the cores busy while reads are in flight.
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .saturating_mul(IO_OVERLAP)
        .min(MAX_WORKERS);
    let mut stats = BackupStats {
        capacity,
        skipped_unallocated: plan.unallocated,
        skipped_zero: plan.zero,
        skipped_free: plan.free,
        skipped_vg_free: plan.vg_free,
        skipped_excluded: plan.excluded,
        kept: plan.kept.bytes(),
        chunk_size,
        read_metadata,
        change_source: Some(match mode {
            Mode::Full => ChangeSource::Full,
            Mode::Cbt { .. } => ChangeSource::Cbt,
            Mode::Rescan { .. } => ChangeSource::Rescan,
        }),
        ..Default::default()
    };
    let result = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()
        .map_err(|e| Error::Threads {
            count: workers,
            purpose: "worker",
            reason: e.to_string(),
        })
        .and_then(|pool| {
            pool.install(|| run_chunks(&req, &plan, &mode, linkable, chunk_size, &mut stats))
        });
    let (index, missed) = match result {
        Ok(r) => r,
        Err(e) => {
            writer.abandon();
            return Err(e);
        }
    };
    if let (Mode::Rescan { changed: Some(_) }, Some(_)) = (&mode, linkable) {
        stats.cbt_missed_chunks = Some(missed);
        if missed > 0 {
            warnings.push(Warning::new(format!(
                "{missed} chunks changed although the change map said they did not: the change map (CBT) missed changes; re-baseline change tracking"
            )));
        }
    }
    stats.skipped_unchanged = stats.kept.saturating_sub(stats.read_from_source);
    stats.optimization_percent = if stats.kept == 0 {
        100.0
    } else {
        100.0 * (1.0 - stats.read_from_source as f64 / stats.kept as f64)
    };
    stats.duration_seconds = started.elapsed().as_secs_f64();

    let description = ImageDescription {
        name: req.name.to_string(),
        unix_micros,
        capacity,
        chunk_size,
        parent: parent.as_ref().map(|p| p.manifest.image.clone()),
        change_id: req.change_id.map(str::to_string),
        source: req.source.clone(),
        stats: stats.clone(),
        volumes,
    };
    let manifest = writer.commit(req.repo, &index, &plan.kept, description)?;
    stats.duration_seconds = started.elapsed().as_secs_f64();
    Ok(BackupOutcome {
        manifest,
        stats,
        warnings,
    })
}

/// The newest readable image of `name`, or `None` (with a warning when one exists but
/// cannot be used).
fn load_parent(repo: &Repo, name: &str, warnings: &mut Vec<Warning>) -> Option<Parent> {
    let (images, _) = repo.images().ok()?;
    let entry = images.into_iter().rev().find(|e| e.manifest.name == name)?;
    let loaded = repo.read_index_and_kept(&entry);
    match loaded {
        Ok((index, kept)) => Some(Parent {
            manifest: entry.manifest,
            index,
            kept,
        }),
        Err(e) => {
            warnings.push(Warning::new(format!(
                "previous image {} cannot be used ({e}): this backup is a full one",
                entry.manifest.image
            )));
            None
        }
    }
}

fn run_chunks(
    req: &BackupRequest<'_>,
    plan: &KeepPlan,
    mode: &Mode,
    parent: Option<&Parent>,
    chunk_size: u64,
    stats: &mut BackupStats,
) -> Result<(FixedIndex, u64)> {
    let capacity = req.disk.capacity();
    // Every entry is decided below: linked entries take the parent's digest.
    let mut index = FixedIndex::zeros(capacity, chunk_size)?;
    let kept = Ranges::of(&plan.kept);
    let parent_kept = parent.map(|p| Ranges::of(&p.kept));
    // Bytes that must be read although the parent had them: changed, or newly kept.
    let newly = parent.map(|p| plan.kept.difference(&p.kept));
    let marked = |changed: &RangeSet| -> Ranges {
        let mut s = changed.clone();
        if let Some(n) = &newly {
            s = s.union(n);
        }
        Ranges::of(&s.intersection(&plan.kept))
    };
    let dirty = match (mode, parent) {
        (Mode::Cbt { changed }, Some(_)) => Some(marked(changed)),
        (Mode::Rescan { changed: Some(c) }, Some(_)) => Some(marked(c)),
        _ => None,
    };
    let use_cbt = matches!(mode, Mode::Cbt { .. }) && parent.is_some();

    // Chunk `i`'s bytes (the index itself is filled in window by window).
    let range_of = |i: usize| {
        let (start, len) = diskray_store::index::chunk_range(capacity, chunk_size, i);
        ByteRange::new(start, len)
    };
    // How chunk `i` is made, and its kept bytes.
    let how_of = |i: usize| -> (How, Vec<ByteRange>) {
        let c = range_of(i);
        let k = kept.slice(c);
        let how = if k.is_empty() {
            How::Skip
        } else if !use_cbt {
            How::Read
        } else if dirty.as_ref().is_some_and(|d| d.touches(c)) {
            // Every kept byte the parent did not keep is in `dirty` (newly kept), so the
            // parent's chunk holds every other kept byte as it is now.
            if req.whole_chunks {
                How::Read
            } else {
                How::Patch
            }
        } else if parent_kept.as_ref().is_some_and(|pk| pk.slice(c) == k) {
            How::Link
        } else {
            How::Rebuild
        };
        (how, k)
    };
    let n = index.digests.len();
    let progress_done = AtomicU64::new(0);
    let mut missed = 0u64;
    let window_chunks = (WINDOW_BYTES / chunk_size).max(1) as usize;
    std::thread::scope(|scope| -> Result<()> {
        // The previous window's publication (flush and renames), running while this
        // window's chunks are made, and the digests it stages.
        let mut publishing: Option<std::thread::ScopedJoinHandle<'_, Result<()>>> = None;
        let mut in_flight = std::collections::HashSet::new();
        let mut first = 0;
        while first < n {
            // A window holds `window_chunks` chunks to make (read, patched or rebuilt)
            // and any number of chunks linked or skipped, which cost nothing: each window
            // waits for the previous one's publication (on object storage, its slowest
            // upload), and an incremental's few changed chunks are spread over the whole
            // disk. At most `MAX_WINDOW_CHUNKS` chunks in all.
            let mut planned = Vec::new();
            let mut to_make = 0;
            while first + planned.len() < n
                && to_make < window_chunks
                && planned.len() < MAX_WINDOW_CHUNKS
            {
                let p = how_of(first + planned.len());
                to_make += !matches!(p.0, How::Skip | How::Link) as usize;
                planned.push(p);
            }
            let last = first + planned.len();
            let mut window: Vec<Done> = planned
                .into_par_iter()
                .enumerate()
                .map(|(j, (how, k))| {
                    let i = first + j;
                    let c = range_of(i);
                    let len = c.length;
                    let from = parent.map(|p| ParentEntry {
                        digest: p.index.digests[i],
                        base: p.index.base_of(i),
                    });
                    let fresh = match (how, &dirty) {
                        (How::Patch, Some(d)) => d.slice(c),
                        _ => Vec::new(),
                    };
                    // Bytes the parent kept that are no longer kept: zero now.
                    let gone = match (how, &parent_kept) {
                        (How::Patch | How::Rebuild, Some(pk)) => {
                            let now: RangeSet = k.iter().copied().collect();
                            let then: RangeSet = pk.slice(c).into_iter().collect();
                            then.difference(&now).ranges().collect()
                        }
                        _ => Vec::new(),
                    };
                    let mut r = chunk(req, c, &k, how, from, &fresh, &gone)?;
                    if how == How::Read && dirty.as_ref().is_some_and(|d| !d.touches(c)) {
                        r.unmarked = parent_kept.as_ref().is_some_and(|pk| pk.slice(c) == k);
                    }
                    let p = progress_done.fetch_add(len, Ordering::Relaxed) + len;
                    (req.progress)(p, capacity);
                    Ok(r)
                })
                .collect::<Result<_>>()?;
            // The previous window is published before this one (and its digests are no
            // longer in flight: a later stage finds their files).
            if let Some(h) = publishing.take() {
                join(h)?;
            }
            // A chunk staged twice (two equal chunks in this window, or one already
            // staged by the previous window): publish one, count the others as reused.
            let previous = std::mem::take(&mut in_flight);
            let mut staged = Vec::new();
            for d in window.iter_mut() {
                if let Some(s) = d.staged.take() {
                    if !previous.contains(&d.digest) && in_flight.insert(d.digest) {
                        staged.push(s);
                    } else {
                        req.repo.discard_staged(s);
                        d.written = None;
                    }
                }
            }
            let repo = req.repo;
            publishing = Some(scope.spawn(move || repo.publish_staged(staged)));
            for (j, d) in window.iter().enumerate() {
                let i = first + j;
                index.digests[i] = d.digest;
                if let Some(base) = d.base {
                    index.patches.insert(i, base);
                }
                let changed = parent.is_some_and(|p| p.index.digests[i] != d.digest);
                missed += (changed && d.unmarked) as u64;
                tally(stats, d, changed);
            }
            first = last;
        }
        publishing.map_or(Ok(()), join)
    })?;
    Ok((index, missed))
}

/// Waits for a publication thread; a panic in it (a bug) is an error, not a crash.
fn join(h: std::thread::ScopedJoinHandle<'_, Result<()>>) -> Result<()> {
    h.join().unwrap_or_else(|_| {
        Err(Error::Threads {
            count: 1,
            purpose: "chunk publication",
            reason: "the thread panicked".into(),
        })
    })
}

/// Adds one chunk to the statistics.
fn tally(stats: &mut BackupStats, d: &Done, changed: bool) {
    stats.read_from_source += d.read;
    stats.healed_chunks += d.healed as u64;
    stats.rebuilt_chunks += d.rebuilt as u64;
    stats.from_parent += d.from_parent;
    stats.patched_chunks += d.base.is_some() as u64;
    stats.changed_chunks += changed as u64;
    if d.digest.is_zero() {
        stats.zero_chunks += 1;
    } else if let Some(n) = d.written {
        stats.new_chunks += 1;
        stats.stored_new += n;
    } else {
        stats.reused_chunks += 1;
    }
}

/// The parent image's entry for a chunk: its digest and, when it is a patch, its base.
#[derive(Debug, Clone, Copy)]
struct ParentEntry {
    digest: Digest,
    base: Option<Digest>,
}

/// Produces one chunk (`fresh`: for a patch, the kept bytes to read from the disk;
/// `gone`: bytes the parent kept that are no longer kept).
fn chunk(
    req: &BackupRequest<'_>,
    c: ByteRange,
    k: &[ByteRange],
    how: How,
    parent: Option<ParentEntry>,
    fresh: &[ByteRange],
    gone: &[ByteRange],
) -> Result<Done> {
    let repo = req.repo;
    let parent = parent.unwrap_or(ParentEntry {
        digest: ZERO_DIGEST,
        base: None,
    });
    match how {
        How::Skip => Ok(Done {
            digest: ZERO_DIGEST,
            ..Default::default()
        }),
        How::Link => {
            let stored = |d: &Digest| repo.may_link(d);
            if stored(&parent.digest) && parent.base.is_none_or(|b| stored(&b)) {
                Ok(Done {
                    digest: parent.digest,
                    base: parent.base,
                    ..Default::default()
                })
            } else {
                heal(req, c, k)
            }
        }
        // The parent's entry is a patch: a chunk read whole that equals it links it (the
        // digests of a chunk and of a patch that makes it differ).
        How::Read if parent.base.is_some() => {
            let mut done = read_and_store_unless(req, c, k, Some(parent))?;
            if done.digest == parent.digest {
                done.base = parent.base;
            }
            Ok(done)
        }
        How::Read => read_and_store(req, c, k),
        // The parent's chunk, with the bytes no longer kept set to zero and (patch) the
        // changed ones read from the disk: stored as a patch over the parent's chunk (or
        // its base) while that is small, else whole.
        How::Rebuild | How::Patch => {
            let Some((patch, read)) = patch_over(req, c, parent, fresh, gone)? else {
                return heal(req, c, k);
            };
            let mut done = if patch.makes_zeros() {
                Done {
                    digest: ZERO_DIGEST,
                    read,
                    ..Default::default()
                }
            } else if patch.worth_storing() {
                let bytes = patch.to_bytes();
                let digest = repo.chunk_digest(&bytes);
                let (staged, written) = repo.stage_new_chunk(&digest, &bytes)?;
                Done {
                    digest,
                    read,
                    written: Some(written),
                    staged: Some(staged),
                    base: Some(patch.base),
                    ..Default::default()
                }
            } else if repo.is_remote() {
                // Too much changed for a patch, and the parent's chunk is a round trip
                // away on object storage while the disk is not: the chunk whole from the
                // disk (docs/guide.md, "Patch or read whole").
                let mut d = read_and_store(req, c, k)?;
                d.read += read;
                return Ok(d);
            } else {
                // Too much changed for a patch: the chunk whole.
                match store_patched(repo, c, &patch, read)? {
                    Some(done) => done,
                    None => return heal(req, c, k),
                }
            };
            if how == How::Patch {
                done.from_parent = k.iter().map(|r| r.length).sum::<u64>() - read;
            } else {
                done.rebuilt = true;
            }
            Ok(done)
        }
    }
}

/// The patch that makes this chunk from the parent's entry: the parent's own patch (if
/// it is one) with `fresh` read from the disk and `gone` set to zero written over it,
/// and the bytes read; `None` when the parent's entry is missing or damaged.
fn patch_over(
    req: &BackupRequest<'_>,
    c: ByteRange,
    parent: ParentEntry,
    fresh: &[ByteRange],
    gone: &[ByteRange],
) -> Result<Option<(Patch, u64)>> {
    let repo = req.repo;
    let (base, old) = match parent.base {
        None => (parent.digest, Vec::new()),
        Some(base) => match repo.read_patch_over(&parent.digest, &base, c.length, true) {
            Ok(p) => (base, p.runs),
            Err(_) => return Ok(None),
        },
    };
    if !repo.may_link(&base) {
        return Ok(None);
    }
    let mut new = Vec::with_capacity(fresh.len() + gone.len());
    let at = |r: &ByteRange| (r.start - c.start) as u32;
    for r in fresh {
        let mut data = vec![0u8; r.length as usize];
        req.disk.read_at(&mut data, r.start)?;
        new.push(Run {
            at: at(r),
            length: r.length as u32,
            fill: Fill::Data(data),
        });
    }
    new.extend(gone.iter().map(|r| Run {
        at: at(r),
        length: r.length as u32,
        fill: Fill::Zero,
    }));
    new.sort_by_key(|r| r.at);
    let read = fresh.iter().map(|r| r.length).sum();
    Ok(Some((
        Patch {
            base,
            length: c.length as u32,
            runs: overlay(&old, new),
        },
        read,
    )))
}

/// Makes the chunk `patch` makes (over its base read from the repository, unless the
/// patch writes every byte) and stores it whole; `None` when the base is missing or
/// damaged.
fn store_patched(repo: &Repo, c: ByteRange, patch: &Patch, read: u64) -> Result<Option<Done>> {
    READ_BUF.with(|cell| {
        let mut buf = cell.borrow_mut();
        buf.resize(c.length as usize, 0);
        if patch.covers_chunk() {
            // Every byte is written below: neither the base nor zeros are needed.
        } else if patch.base.is_zero() {
            buf.fill(0);
        } else if repo.read_chunk_into(&patch.base, &mut buf, true).is_err() {
            return Ok(None);
        }
        patch.apply(&mut buf);
        store(repo, &buf, read).map(Some)
    })
}

/// Reads a chunk whose previous copy is missing or damaged.
fn heal(req: &BackupRequest<'_>, c: ByteRange, k: &[ByteRange]) -> Result<Done> {
    let mut d = read_and_store(req, c, k)?;
    d.healed = true;
    Ok(d)
}

thread_local! {
    /// Each worker's chunk buffer, reused: a fresh megabyte per chunk costs page faults.
    /// Borrowed while one chunk is made and stored (nothing in between runs another
    /// chunk's job on this thread).
    static READ_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Reads the chunk's plaintext (kept bytes from the disk, zeros elsewhere) and stores it.
fn read_and_store(req: &BackupRequest<'_>, c: ByteRange, k: &[ByteRange]) -> Result<Done> {
    read_and_store_unless(req, c, k, None)
}

/// [`read_and_store`], except that a chunk equal to what the parent's patched entry
/// `same` makes is not stored: the result names the parent's patch.
fn read_and_store_unless(
    req: &BackupRequest<'_>,
    c: ByteRange,
    k: &[ByteRange],
    same: Option<ParentEntry>,
) -> Result<Done> {
    READ_BUF.with(|cell| {
        let mut buf = cell.borrow_mut();
        buf.resize(c.length as usize, 0);
        zero_outside(&mut buf, c, k);
        for r in k {
            let at = (r.start - c.start) as usize;
            req.disk
                .read_at(&mut buf[at..at + r.length as usize], r.start)?;
        }
        let read = k.iter().map(|r| r.length).sum();
        if let Some(p) = same.filter(|_| !is_zero(&buf)) {
            if parent_makes(req.repo, p, &buf) {
                return Ok(Done {
                    digest: p.digest,
                    read,
                    ..Default::default()
                });
            }
        }
        store(req.repo, &buf, read)
    })
}

/// True when the parent's patched entry `p` (readable and undamaged) makes `chunk`.
fn parent_makes(repo: &Repo, p: ParentEntry, chunk: &[u8]) -> bool {
    let Some(base) = p.base else { return false };
    let mut made = vec![0u8; chunk.len()];
    repo.read_patched_into(&p.digest, &base, &mut made, true)
        .is_ok()
        && made == chunk
}

fn zero_outside(buf: &mut [u8], c: ByteRange, k: &[ByteRange]) {
    let mut pos = 0usize;
    for r in k {
        let at = (r.start - c.start) as usize;
        buf[pos..at].fill(0);
        pos = at + r.length as usize;
    }
    buf[pos..].fill(0);
}

fn store(repo: &Repo, buf: &[u8], read: u64) -> Result<Done> {
    if is_zero(buf) {
        return Ok(Done {
            digest: ZERO_DIGEST,
            read,
            ..Default::default()
        });
    }
    let digest = repo.chunk_digest(buf);
    let (staged, written) = match repo.stage_chunk(&digest, buf)? {
        None => (None, None),
        Some((s, n)) => (Some(s), Some(n)),
    };
    Ok(Done {
        digest,
        read,
        written,
        staged,
        ..Default::default()
    })
}

/// The listing summary of `volumes`.
pub(crate) fn volumes_summary<'a>(
    volumes: impl Iterator<Item = &'a diskray_layout::Volume>,
) -> Vec<VolumeSummary> {
    volumes
        .map(|v| VolumeSummary {
            index: v.index,
            start: v.start,
            length: v.length,
            content: v.content.name().to_string(),
            label: v.label.clone(),
        })
        .collect()
}

/// `diskray backup`'s record of a finished backup.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackupReport<'a> {
    /// The new image's id.
    pub image: &'a str,
    /// The backup name.
    pub name: &'a str,
    /// The image it started from.
    pub parent: Option<&'a str>,
    /// The change id stored with it.
    pub change_id: Option<&'a str>,
    /// When the backup started.
    pub time: &'a str,
    /// Its statistics.
    pub stats: &'a BackupStats,
    /// Things the user should know.
    pub warnings: &'a [diskray_core::Warning],
}

impl BackupOutcome {
    /// The record `diskray backup` prints.
    pub fn report(&self) -> BackupReport<'_> {
        let m = &self.manifest;
        BackupReport {
            image: &m.image,
            name: &m.name,
            parent: m.parent.as_deref(),
            change_id: m.change_id.as_deref(),
            time: &m.time,
            stats: &self.stats,
            warnings: &self.warnings,
        }
    }
}

/// For people: the image made, and its statistics in one line.
impl std::fmt::Display for BackupReport<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let over = self.parent.map(|p| format!(", synthetic full over {p}"));
        writeln!(
            f,
            "image {} of {}{}",
            self.image,
            self.name,
            over.unwrap_or_default()
        )?;
        writeln!(f, "{}", self.stats.summary())
    }
}
