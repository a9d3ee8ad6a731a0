//! The local backend's background writer: staged files (chunks, patches) are written with
//! `O_DIRECT` by [`WRITER_THREADS`] threads of their own while the backup's workers go on
//! compressing the next chunks.
//!
//! Why: written through the page cache, each chunk cost the kernel a copy into new
//! page-cache pages, their delayed allocation, and, after the window's flush, dropping them
//! again (a backup never reads its chunks back): 12 % of a full backup's CPU on the
//! benchmark disk (`docs/benchmarks.md`, "sixth session"). Written with `O_DIRECT` by the
//! workers themselves, each worker waited for the device instead. Here a worker hands over
//! the aligned buffer it encoded (or sealed) the chunk in and takes a spare one from the
//! pool ([`crate::durable::Filled::exchange`]), so the chunk is copied by nobody: the
//! device's DMA reads the buffer, which then goes back to the pool. Bytes staged from an
//! ordinary slice are copied into a pooled buffer first. A file system that refuses
//! `O_DIRECT` (tmpfs) gets an ordinary write, and its pages are dropped after the flush.
//!
//! Bounds: at most [`IN_FLIGHT_BYTES`] are queued or being written (and at most [`QUEUE`]
//! jobs wait), so a worker that stages faster than the device writes waits for room (the
//! backup runs at the device's pace, its memory bounded); buffers go back to a pool
//! ([`POOL`]).

use crate::durable::{AlignedBuf, Filled, DIRECT_ALIGN};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex};

/// Threads writing: two requests in flight keep a virtual disk busy (one 1 MiB `O_DIRECT`
/// write at a time reaches 1.2 GB/s here, about three times what a full backup stages).
const WRITER_THREADS: usize = 2;
/// Jobs waiting for a writer thread. Each job holds a chunk-sized buffer; 2 and 6 gave the
/// same full backup (3 pairs alternating) and 2 the smaller memory, and buffers touched for
/// the first time cost an incremental more than it gains from a longer queue.
const QUEUE: usize = 2;
/// Bytes of staged files queued or being written at most (one file at least, whatever its
/// size): about four 1 MiB chunks, as many as the queue and the threads hold; a single
/// 16 MiB chunk, so that large chunks do not hold eight buffers of 16–32 MiB (the
/// benchmark's full backup with 16 MiB chunks peaked at 141 MiB before the writer, at
/// 273 MiB with only jobs counted, at 175 MiB with this budget).
const IN_FLIGHT_BYTES: usize = 4 << 20;
/// Buffers kept for reuse (each a chunk's size). No more are ever alive than the jobs
/// queued and being written plus one or two per thread that stages, so the cap is only a
/// guard: a buffer dropped while the backup goes on is allocated and faulted in again.
const POOL: usize = 64;

/// How a file was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// With `O_DIRECT` (its last partial block, if any, through the page cache).
    Direct,
    /// Through the page cache (the file system refused `O_DIRECT`).
    Cached,
}

/// The outcome of one job, filled in by the writer thread.
#[derive(Debug, Default)]
struct Slot {
    state: Mutex<State>,
    ready: Condvar,
}

/// Where a job is.
#[derive(Debug, Default)]
enum State {
    /// Queued or being written.
    #[default]
    Running,
    /// Written, or failed.
    Done(std::io::Result<Written>),
    /// Its outcome was taken by [`Pending::wait`].
    Taken,
}

/// A file being written: [`Pending::wait`] returns once it is whole on its (temporary) path.
#[derive(Debug)]
pub(crate) struct Pending(Arc<Slot>);

impl Pending {
    /// Waits for the write; its error, if it failed.
    pub(crate) fn wait(self) -> std::io::Result<Written> {
        let mut r = self.done();
        match std::mem::replace(&mut *r, State::Taken) {
            State::Done(out) => out,
            // `done` returns once the outcome is in, and only this handle takes it.
            State::Running | State::Taken => {
                Err(std::io::Error::other("a staged write's outcome was lost"))
            }
        }
    }

    /// Waits for the outcome; the slot's state, locked.
    fn done(&self) -> std::sync::MutexGuard<'_, State> {
        let mut r = lock(&self.0.state);
        while matches!(*r, State::Running) {
            r = self.0.ready.wait(r).unwrap_or_else(|p| p.into_inner());
        }
        r
    }

    fn finish(slot: &Slot, out: std::io::Result<Written>) {
        *lock(&slot.state) = State::Done(out);
        slot.ready.notify_all();
    }
}

/// A staged file dropped unpublished (a backup that failed) is still written whole
/// before the drop returns, as it was when the caller wrote it: what is left in `tmp/` is
/// whole, and gc removes it as a leftover.
impl Drop for Pending {
    fn drop(&mut self) {
        drop(self.done());
    }
}

struct Job {
    path: PathBuf,
    buf: AlignedBuf,
    len: usize,
    slot: Arc<Slot>,
}

/// What the writer threads and the threads that stage share.
#[derive(Default)]
struct Shared {
    /// Buffers back from their jobs.
    pool: Mutex<Vec<AlignedBuf>>,
    /// Bytes of the jobs submitted and not yet written.
    flight: Mutex<usize>,
    /// Signalled when a job is written.
    landed: Condvar,
}

/// The writer threads, their queue and the buffer pool.
pub(crate) struct Writer {
    jobs: Option<SyncSender<Job>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("threads", &self.threads.len())
            .finish()
    }
}

impl Writer {
    /// Starts the threads; `None` if none could be started (files are then written by the
    /// caller).
    pub(crate) fn start() -> Option<Writer> {
        let (tx, rx) = sync_channel::<Job>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let shared = Arc::new(Shared::default());
        let mut threads = Vec::new();
        for n in 0..WRITER_THREADS {
            let rx = Arc::clone(&rx);
            let shared = Arc::clone(&shared);
            let t = std::thread::Builder::new()
                .name(format!("diskray-writer-{n}"))
                .spawn(move || serve(&rx, &shared));
            if let Ok(t) = t {
                threads.push(t);
            }
        }
        if threads.is_empty() {
            return None;
        }
        Some(Writer {
            jobs: Some(tx),
            threads,
            shared,
        })
    }

    /// Queues `bytes` to be written to the new file `path` (which must not exist), taking
    /// their buffer and leaving a spare in its place; waits first for room in the flight
    /// ([`IN_FLIGHT_BYTES`]) and then in the queue.
    pub(crate) fn submit_filled(&self, path: PathBuf, bytes: Filled<'_>) -> Pending {
        self.reserve(bytes.bytes().len());
        let (buf, len) = bytes.exchange(self.spare());
        self.send(path, buf, len)
    }

    /// [`Writer::submit_filled`] of a copy of `bytes`.
    pub(crate) fn submit_copy(&self, path: &Path, bytes: &[u8]) -> Pending {
        self.reserve(bytes.len());
        let mut buf = self.spare();
        buf.area(bytes.len()).copy_from_slice(bytes);
        self.send(path.to_path_buf(), buf, bytes.len())
    }

    /// A buffer from the pool, or a new one.
    fn spare(&self) -> AlignedBuf {
        lock(&self.shared.pool).pop().unwrap_or_default()
    }

    /// Waits until `len` more bytes fit in the flight (or nothing is in flight), and counts
    /// them in.
    fn reserve(&self, len: usize) {
        let mut flight = lock(&self.shared.flight);
        while *flight > 0 && *flight + len > IN_FLIGHT_BYTES {
            flight = self
                .shared
                .landed
                .wait(flight)
                .unwrap_or_else(|p| p.into_inner());
        }
        *flight += len;
    }

    /// Queues a job whose bytes are reserved; if the threads are gone, writes it here.
    fn send(&self, path: PathBuf, buf: AlignedBuf, len: usize) -> Pending {
        let slot = Arc::new(Slot::default());
        let job = Job {
            path,
            buf,
            len,
            slot: Arc::clone(&slot),
        };
        let sent = match &self.jobs {
            Some(jobs) => jobs.send(job).map_err(|e| e.0),
            None => Err(job),
        };
        if let Err(job) = sent {
            run(job, &self.shared);
        }
        Pending(slot)
    }
}

/// Locks `m`, whatever a thread that panicked while holding it left (plain data).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for Writer {
    /// Lets the threads finish the jobs queued, then joins them.
    fn drop(&mut self) {
        self.jobs.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A writer thread: takes jobs until the queue closes.
fn serve(rx: &Mutex<Receiver<Job>>, shared: &Shared) {
    loop {
        let job = match lock(rx).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        run(job, shared);
    }
}

/// Writes one job's file, reports the outcome, counts its bytes out of the flight and
/// gives its buffer back to the pool.
fn run(job: Job, shared: &Shared) {
    let out = write_new_direct(&job.path, job.buf.filled(job.len));
    Pending::finish(&job.slot, out);
    {
        let mut flight = lock(&shared.flight);
        *flight = flight.saturating_sub(job.len);
    }
    shared.landed.notify_all();
    let mut pool = lock(&shared.pool);
    if pool.len() < POOL {
        pool.push(job.buf);
    }
}

/// Creates the new file `path` holding `bytes` (which start at a page boundary): its
/// whole blocks written with `O_DIRECT`, the last partial block (if any) through the page
/// cache, which leaves at most one page of it cached and costs less than writing the block
/// padded and cutting the file to its length (`ftruncate` zeroes and frees the block's
/// tail: 1.7 % of a full backup's CPU). Where the file system refuses `O_DIRECT`, the whole
/// file goes through the page cache.
pub(crate) fn write_new_direct(path: &Path, bytes: &[u8]) -> std::io::Result<Written> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let cached = || crate::durable::write_new(path, bytes).map(|()| Written::Cached);
    let direct = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_DIRECT)
        .open(path);
    let file = match direct {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return cached(),
        Err(e) => return Err(e),
    };
    let len = bytes.len();
    let head = len / DIRECT_ALIGN * DIRECT_ALIGN;
    match file.write_all_at(&bytes[..head], 0) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            drop(file);
            std::fs::remove_file(path)?;
            return cached();
        }
        Err(e) => return Err(e),
    }
    if head < len {
        let fd = file.as_raw_fd();
        // SAFETY: fcntl on a descriptor `file` holds open; F_GETFL/F_SETFL read and set
        // its status flags and touch no memory of ours.
        let rc = unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags < 0 {
                flags
            } else {
                libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_DIRECT)
            }
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        file.write_all_at(&bytes[head..], head as u64)?;
    }
    Ok(Written::Direct)
}

#[cfg(test)]
mod tests {
    use super::{Writer, Written};

    /// Files of every length around the block size, and larger than the flight's budget,
    /// read back exactly; a second file on an existing path is refused.
    #[test]
    fn staged_files_read_back_exactly() {
        let here = std::env::current_dir().unwrap();
        let dir = tempfile::tempdir_in(here).unwrap();
        let w = Writer::start().unwrap();
        let mut pending = Vec::new();
        // The largest, over the flight's budget, is written alone; the others wait for it.
        let big = super::IN_FLIGHT_BYTES + 17;
        for (i, len) in [
            0usize,
            1,
            4095,
            4096,
            4097,
            3 * 4096,
            (1 << 20) + 17,
            big,
            5,
            big,
        ]
        .into_iter()
        .enumerate()
        {
            let bytes: Vec<u8> = (0..len).map(|j| (j * 31 + i) as u8).collect();
            let path = dir.path().join(format!("f{i}"));
            pending.push((path.clone(), bytes.clone(), w.submit_copy(&path, &bytes)));
        }
        for (path, bytes, p) in pending {
            let how = p.wait().unwrap();
            assert!(matches!(how, Written::Direct | Written::Cached));
            assert_eq!(std::fs::read(&path).unwrap(), bytes, "{}", path.display());
        }
        let again = dir.path().join("f1");
        let e = w.submit_copy(&again, b"x").wait().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&again).unwrap().len(), 1);
    }

    /// Bytes `O_DIRECT` refuses (here a buffer not aligned to a page, which the kernel
    /// refuses with EINVAL, as a file system without direct I/O refuses the open) are
    /// written through the page cache, exactly.
    #[test]
    fn refused_direct_io_falls_back_to_a_cached_write() {
        let here = std::env::current_dir().unwrap();
        let dir = tempfile::tempdir_in(here).unwrap();
        let path = dir.path().join("f");
        let mut buf = crate::durable::AlignedBuf::new();
        let area = buf.area(8192 + 4096);
        for (i, b) in area.iter_mut().enumerate() {
            *b = i as u8;
        }
        let misaligned = &area[1..8192 + 1];
        let how = super::write_new_direct(&path, misaligned).unwrap();
        assert_eq!(how, Written::Cached);
        assert_eq!(std::fs::read(&path).unwrap(), misaligned);
    }
}
