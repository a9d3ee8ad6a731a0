//! The server's transmission phase (`docs/nbd.md` §11): the requests of one client, read
//! by the client's thread and served by a pool of [`WORKERS`] threads, so that a client
//! keeping several requests in flight (`qemu-img convert`, `nbdcopy`) has them decoded at
//! once. Each reply is built whole and written under one lock on the socket, so the
//! chunks of two replies never interleave; replies go out in any order, matched by cookie
//! as the protocol allows. A connection that cannot be shared between threads (TLS) is
//! served one request after the other.

use crate::proto::*;
use crate::server::Export;
use diskray_core::{BlockState, ByteRange};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Condvar, Mutex};

/// Largest read or write served in one request (qemu's own server allows 32 MiB).
pub const MAX_READ: u32 = 32 << 20;
/// Most extents in one block status reply; a client asks again for the rest.
pub const MAX_EXTENTS: usize = 4096;
/// Threads serving one client's requests. Each holds at most one reply buffer of up to
/// [`MAX_READ`] bytes, so a client costs at most this many of them; four keep both cores
/// of a small host busy decoding (a 2 MiB request already decodes its chunks in
/// parallel) while a fifth request waits in the queue, without one client taking all
/// of a large host.
pub const WORKERS: usize = 4;
/// Most requests of one client admitted at once (queued or being served): qemu's client
/// keeps at most 16 in flight, so this never slows it; a client sending more waits for
/// replies before its next request is read.
pub const MAX_IN_FLIGHT: usize = 16;
/// Most bytes of write payloads held at once for one client: two writes of the largest
/// size. The reader takes a payload off the socket only once it fits (a lone request
/// always fits), so a client cannot make the server hold more.
pub const MAX_IN_FLIGHT_BYTES: u64 = 2 * MAX_READ as u64;
/// A reply buffer larger than this is not kept for the next request (it is the size of
/// qemu-img's requests; a rare 32 MiB read should not stay allocated per worker).
const KEEP_BUFFER: usize = 4 << 20;

const CMD_WRITE: u16 = 1;
const CMD_FLUSH: u16 = 3;
const CMD_FLAG_FUA: u16 = 1 << 0;
const EPERM: u32 = 1;
const EIO: u32 = 5;
const EINVAL: u32 = 22;
/// The one metadata context served.
pub(crate) const ALLOCATION_ID: u32 = 1;
/// Size of a structured reply chunk header, plus the offset of an `OFFSET_DATA` chunk.
const DATA_HEADER: usize = 28;

/// What was negotiated for one client.
pub(crate) struct Session<'a> {
    pub(crate) export: &'a Export<'a>,
    pub(crate) structured: bool,
    pub(crate) allocation: bool,
}

/// One request, with a write's payload once read.
struct Job {
    flags: u16,
    kind: u16,
    cookie: u64,
    offset: u64,
    len: u32,
    payload: Vec<u8>,
}

/// What the reader does with a request it has parsed.
enum Step {
    /// `NBD_CMD_DISC`: no more requests; answer those in flight, then close.
    Disconnect,
    /// An answer known at once (a request refused).
    Reply(Vec<u8>),
    /// Work for [`Session::answer`]; a write's payload (`len` bytes) still on the socket.
    Serve(Job),
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().unwrap_or_default())
}

fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b[..8].try_into().unwrap_or_default())
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

impl Session<'_> {
    /// Serves requests one after the other, replying on `s` itself.
    pub(crate) fn serial<S: Read + Write>(&self, s: &mut S) -> io::Result<()> {
        let mut buf = Vec::new();
        loop {
            match self.next(s)? {
                Step::Disconnect => return Ok(()),
                Step::Reply(r) => s.write_all(&r)?,
                Step::Serve(mut job) => {
                    take_payload(s, &mut job)?;
                    let n = self.answer(&job, &mut buf);
                    s.write_all(&buf[..n])?;
                    keep_small(&mut buf);
                }
            }
        }
    }

    /// Serves requests with [`WORKERS`] threads: this thread reads them from `s`, the
    /// workers write their replies whole to `out` (a second handle on the same socket).
    /// Returns once the client disconnects or fails, after every admitted request has
    /// been answered (or the socket has failed).
    pub(crate) fn parallel<S: Read>(
        &self,
        s: &mut S,
        out: Box<dyn Write + Send>,
    ) -> io::Result<()> {
        let out = Mutex::new(out);
        let broken = AtomicBool::new(false);
        let inflight = InFlight::default();
        let send = |r: &[u8]| -> io::Result<()> {
            if broken.load(Ordering::Relaxed) {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let mut w = out.lock().unwrap_or_else(|p| p.into_inner());
            let sent = w.write_all(r).and_then(|()| w.flush());
            if sent.is_err() {
                broken.store(true, Ordering::Relaxed);
            }
            sent
        };
        let (tx, rx) = mpsc::sync_channel::<(u64, Job)>(MAX_IN_FLIGHT);
        let rx = Mutex::new(rx);
        std::thread::scope(|scope| {
            for _ in 0..WORKERS {
                scope.spawn(|| {
                    let mut buf = Vec::new();
                    loop {
                        let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok((ticket, job)) = next else { return };
                        let n = self.answer(&job, &mut buf);
                        let _ = send(&buf[..n]);
                        keep_small(&mut buf);
                        inflight.release(ticket);
                    }
                });
            }
            let mut read = || -> io::Result<()> {
                loop {
                    match self.next(s)? {
                        Step::Disconnect => return Ok(()),
                        Step::Reply(r) => send(&r)?,
                        Step::Serve(mut job) => {
                            let ticket = inflight.admit(&job);
                            take_payload(s, &mut job)?;
                            if tx.send((ticket, job)).is_err() {
                                return Err(io::ErrorKind::BrokenPipe.into());
                            }
                        }
                    }
                }
            };
            let done = read();
            // The workers end once the queue is empty and closed: every reply written.
            drop(tx);
            done
        })
    }

    /// Reads one request (not a write's payload) and decides what it needs.
    fn next<S: Read>(&self, s: &mut S) -> io::Result<Step> {
        let mut head = [0u8; 28];
        s.read_exact(&mut head)?;
        if be32(&head) != REQUEST_MAGIC {
            return Err(bad("request without its magic"));
        }
        let job = Job {
            flags: u16::from_be_bytes([head[4], head[5]]),
            kind: u16::from_be_bytes([head[6], head[7]]),
            cookie: be64(&head[8..]),
            offset: be64(&head[16..]),
            len: be32(&head[24..]),
            payload: Vec::new(),
        };
        let cap = self.export.disk.capacity();
        let inside = job
            .offset
            .checked_add(job.len as u64)
            .is_some_and(|e| e <= cap);
        let refuse = |errno| Ok(Step::Reply(self.error(job.cookie, errno)));
        match job.kind {
            CMD_DISC => Ok(Step::Disconnect),
            CMD_READ if !inside || job.len > MAX_READ => refuse(EINVAL),
            CMD_BLOCK_STATUS if !self.allocation || !inside || job.len == 0 => refuse(EINVAL),
            CMD_WRITE if self.export.overlay.is_none() || !inside || job.len > MAX_READ => {
                // The payload follows the request; read it off before refusing.
                io::copy(&mut s.take(job.len as u64), &mut io::sink())?;
                refuse(if self.export.overlay.is_none() {
                    EPERM
                } else {
                    EINVAL
                })
            }
            CMD_READ | CMD_BLOCK_STATUS | CMD_WRITE | CMD_FLUSH => Ok(Step::Serve(job)),
            _ => refuse(EINVAL),
        }
    }

    /// Serves `job`; its reply is the first returned bytes of `buf`.
    fn answer(&self, job: &Job, buf: &mut Vec<u8>) -> usize {
        let reply = match job.kind {
            CMD_READ => return self.read(job, buf),
            CMD_BLOCK_STATUS => self.status(job.cookie, job.offset, job.len),
            CMD_WRITE => {
                let overlay = self.export.overlay;
                let mut done = overlay.map_or(Ok(()), |o| o.write(&job.payload, job.offset));
                if done.is_ok() && job.flags & CMD_FLAG_FUA != 0 {
                    done = overlay.map_or(Ok(()), |o| o.flush());
                }
                match done {
                    Ok(()) => self.ok(job.cookie),
                    Err(_) => self.error(job.cookie, EIO),
                }
            }
            _ => match self.export.overlay.map(|o| o.flush()) {
                Some(Err(_)) => self.error(job.cookie, EIO),
                _ => self.ok(job.cookie),
            },
        };
        buf.clear();
        buf.extend_from_slice(&reply);
        reply.len()
    }

    /// A read's reply: its header and the data in one buffer, so it is written at once.
    fn read(&self, job: &Job, buf: &mut Vec<u8>) -> usize {
        let head = if self.structured {
            let mut h = chunk_header(REPLY_TYPE_OFFSET_DATA, job.cookie, job.len + 8);
            h.extend_from_slice(&job.offset.to_be_bytes());
            h
        } else {
            simple(0, job.cookie)
        };
        let n = head.len() + job.len as usize;
        if buf.len() < n {
            buf.resize(n, 0);
        }
        buf[..head.len()].copy_from_slice(&head);
        match self
            .export
            .disk
            .read_at(&mut buf[head.len()..n], job.offset)
        {
            Ok(()) => n,
            Err(_) => {
                let e = self.error(job.cookie, EIO);
                buf[..e.len()].copy_from_slice(&e);
                e.len()
            }
        }
    }

    /// Success without data.
    fn ok(&self, cookie: u64) -> Vec<u8> {
        if self.structured {
            chunk_header(REPLY_TYPE_NONE, cookie, 0)
        } else {
            simple(0, cookie)
        }
    }

    fn error(&self, cookie: u64, errno: u32) -> Vec<u8> {
        if self.structured {
            let mut r = chunk_header(REPLY_TYPE_ERROR, cookie, 6);
            r.extend_from_slice(&errno.to_be_bytes());
            r.extend_from_slice(&0u16.to_be_bytes());
            r
        } else {
            simple(errno, cookie)
        }
    }

    /// `base:allocation` of `[offset, offset + len)`: zero and never-written ranges are
    /// holes that read as zeros (a backup's zero chunks and dropped free space).
    fn status(&self, cookie: u64, offset: u64, len: u32) -> Vec<u8> {
        let map = match self.export.disk.map(ByteRange::new(offset, len as u64)) {
            Ok(m) => m,
            Err(_) => return self.error(cookie, EIO),
        };
        let mut payload = ALLOCATION_ID.to_be_bytes().to_vec();
        for r in map.iter().take(MAX_EXTENTS) {
            let flags = match r.state {
                BlockState::Data | BlockState::Unreadable => 0,
                BlockState::Zero | BlockState::Unallocated => STATE_HOLE | STATE_ZERO,
            };
            let length = r.range().length.min(u32::MAX as u64) as u32;
            payload.extend_from_slice(&length.to_be_bytes());
            payload.extend_from_slice(&flags.to_be_bytes());
        }
        let mut r = chunk_header(REPLY_TYPE_BLOCK_STATUS, cookie, payload.len() as u32);
        r.extend_from_slice(&payload);
        r
    }
}

/// Reads a write's payload off the socket into its job.
fn take_payload<S: Read>(s: &mut S, job: &mut Job) -> io::Result<()> {
    if job.kind == CMD_WRITE {
        job.payload = vec![0u8; job.len as usize];
        s.read_exact(&mut job.payload)?;
    }
    Ok(())
}

/// Drops a reply buffer grown past [`KEEP_BUFFER`].
fn keep_small(buf: &mut Vec<u8>) {
    if buf.capacity() > KEEP_BUFFER {
        *buf = Vec::new();
    }
}

/// The header of a structured reply's only chunk.
fn chunk_header(kind: u16, cookie: u64, len: u32) -> Vec<u8> {
    let mut r = Vec::with_capacity(DATA_HEADER);
    r.extend_from_slice(&STRUCTURED_REPLY_MAGIC.to_be_bytes());
    r.extend_from_slice(&REPLY_FLAG_DONE.to_be_bytes());
    r.extend_from_slice(&kind.to_be_bytes());
    r.extend_from_slice(&cookie.to_be_bytes());
    r.extend_from_slice(&len.to_be_bytes());
    r
}

/// A simple reply's header.
fn simple(errno: u32, cookie: u64) -> Vec<u8> {
    let mut r = SIMPLE_REPLY_MAGIC.to_be_bytes().to_vec();
    r.extend_from_slice(&errno.to_be_bytes());
    r.extend_from_slice(&cookie.to_be_bytes());
    r
}

/// One admitted request: the bytes it touches and whether it changes them.
struct Slot {
    ticket: u64,
    start: u64,
    end: u64,
    writes: bool,
    payload: u64,
}

/// The requests of one client admitted and not yet answered.
///
/// Ordering rule: a request is admitted only when it does not overlap an admitted request
/// where either of the two writes (a `FLUSH` counts as a write of the whole export). The
/// reader admits in the order requests arrive and waits until it may, so overlapping
/// requests of which one writes run in the order they were sent (a read after a write of
/// the same bytes sees it, a write after a read does not change what the read returns),
/// and a `FLUSH` is answered after every request before it has completed, and before any
/// after it starts. Serialising only conflicting requests keeps reads of other ranges
/// (all of them on a read-only export) in parallel; the price is that a conflicting
/// request holds up the reading of the requests after it, which a client that writes and
/// reads the same block at once (rare, and the protocol does not order them) pays for.
#[derive(Default)]
struct InFlight {
    state: Mutex<(u64, Vec<Slot>)>,
    changed: Condvar,
}

impl InFlight {
    /// Waits until `job` may run (see the ordering rule), then records it; returns its
    /// ticket for [`InFlight::release`].
    fn admit(&self, job: &Job) -> u64 {
        let (start, end, writes) = match job.kind {
            CMD_FLUSH => (0, u64::MAX, true),
            kind => (job.offset, job.offset + job.len as u64, kind == CMD_WRITE),
        };
        let payload = if job.kind == CMD_WRITE {
            job.len as u64
        } else {
            0
        };
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let (_, slots) = &*st;
            let held: u64 = slots.iter().map(|s| s.payload).sum();
            let fits = slots.is_empty()
                || (slots.len() < MAX_IN_FLIGHT && held + payload <= MAX_IN_FLIGHT_BYTES);
            let conflict = slots
                .iter()
                .any(|s| (s.writes || writes) && s.start < end && start < s.end);
            if fits && !conflict {
                break;
            }
            st = self.changed.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        st.0 += 1;
        let ticket = st.0;
        st.1.push(Slot {
            ticket,
            start,
            end,
            writes,
            payload,
        });
        ticket
    }

    /// The request with `ticket` has been answered.
    fn release(&self, ticket: u64) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.1.retain(|s| s.ticket != ticket);
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlay::Overlay;
    use crate::server::serve;
    use diskray_core::{MemDisk, VirtualDisk};
    use std::collections::HashMap;
    use std::os::unix::net::UnixStream;

    fn request(kind: u16, flags: u16, cookie: u64, offset: u64, len: u32) -> Vec<u8> {
        let mut r = REQUEST_MAGIC.to_be_bytes().to_vec();
        r.extend_from_slice(&flags.to_be_bytes());
        r.extend_from_slice(&kind.to_be_bytes());
        r.extend_from_slice(&cookie.to_be_bytes());
        r.extend_from_slice(&offset.to_be_bytes());
        r.extend_from_slice(&len.to_be_bytes());
        r
    }

    fn option(option: u32, data: &[u8]) -> Vec<u8> {
        let mut o = IHAVEOPT.to_be_bytes().to_vec();
        o.extend_from_slice(&option.to_be_bytes());
        o.extend_from_slice(&(data.len() as u32).to_be_bytes());
        o.extend_from_slice(data);
        o
    }

    /// Reads option replies up to the `ACK` of `NBD_OPT_GO`.
    fn until_go_acked(s: &mut UnixStream) {
        loop {
            let mut h = [0u8; 20];
            s.read_exact(&mut h).unwrap();
            let (opt, kind, len) = (be32(&h[8..]), be32(&h[12..]), be32(&h[16..]));
            io::copy(&mut s.take(len as u64), &mut io::sink()).unwrap();
            assert_eq!(kind & REP_FLAG_ERROR, 0, "option {opt} refused");
            if opt == OPT_GO && kind == REP_ACK {
                return;
            }
        }
    }

    /// Reads structured replies until `n` requests are answered: cookie → data (empty for
    /// a reply without data); an error reply is a panic.
    fn replies(s: &mut UnixStream, n: usize) -> HashMap<u64, Vec<u8>> {
        let mut out = HashMap::new();
        while out.len() < n {
            let mut h = [0u8; 20];
            s.read_exact(&mut h).unwrap();
            assert_eq!(be32(&h), STRUCTURED_REPLY_MAGIC);
            let kind = u16::from_be_bytes([h[6], h[7]]);
            let cookie = be64(&h[8..]);
            let mut body = vec![0u8; be32(&h[16..]) as usize];
            s.read_exact(&mut body).unwrap();
            assert_eq!(u16::from_be_bytes([h[4], h[5]]), REPLY_FLAG_DONE);
            let data = match kind {
                REPLY_TYPE_OFFSET_DATA => body[8..].to_vec(),
                REPLY_TYPE_NONE => Vec::new(),
                k => panic!("reply of type {k} to request {cookie}"),
            };
            assert!(
                out.insert(cookie, data).is_none(),
                "two replies to {cookie}"
            );
        }
        out
    }

    /// Writes, reads of the same bytes, a flush and a disconnect sent all at once on one
    /// connection: every read sees the writes sent before it and none sent after, the
    /// flush is answered, and the disconnect waits for every reply.
    #[test]
    fn pipelined_overlapping_writes_and_reads_stay_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let base = MemDisk::new(vec![0xaa; 8 << 20]);
        let overlay = Overlay::open(&base, &dir.path().join("ov")).unwrap();
        let export = Export {
            disk: &overlay,
            name: "x".into(),
            overlay: Some(&overlay),
            tls: None,
        };
        let (server_end, mut s) = UnixStream::pair().unwrap();
        std::thread::scope(|scope| {
            let mut once = Some(server_end);
            let export = &export;
            scope.spawn(move || serve(export, || once.take().map(Ok)));
            let mut greeting = [0u8; 18];
            s.read_exact(&mut greeting).unwrap();
            let mut hello = (FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES)
                .to_be_bytes()
                .to_vec();
            hello.extend(option(OPT_STRUCTURED_REPLY, &[]));
            hello.extend(option(OPT_GO, &[0, 0, 0, 0, 0, 0]));
            s.write_all(&hello).unwrap();
            until_go_acked(&mut s);
            // Rounds of: write the pattern r over 1 MiB at a shifting offset, read 2 MiB
            // around it; reads of other ranges in between keep the workers busy.
            let mut all = Vec::new();
            let mut want = vec![0xaau8; 8 << 20];
            let mut expect: HashMap<u64, Vec<u8>> = HashMap::new();
            let mut cookie = 0;
            for r in 1..=20u8 {
                let at = ((r as u64 * 192) << 10) % (6 << 20);
                cookie += 1;
                all.extend(request(CMD_WRITE, 0, cookie, at, 1 << 20));
                all.extend(vec![r; 1 << 20]);
                want[at as usize..(at as usize) + (1 << 20)].fill(r);
                expect.insert(cookie, Vec::new());
                for (o, l) in [(at.saturating_sub(512 << 10), 2 << 20), (7 << 20, 1 << 20)] {
                    cookie += 1;
                    all.extend(request(CMD_READ, 0, cookie, o, l as u32));
                    expect.insert(cookie, want[o as usize..o as usize + l].to_vec());
                }
            }
            cookie += 1;
            all.extend(request(CMD_FLUSH, 0, cookie, 0, 0));
            expect.insert(cookie, Vec::new());
            all.extend(request(CMD_DISC, 0, cookie + 1, 0, 0));
            // The requests go out from another thread: the server answers while they
            // arrive, and socket buffers are smaller than 20 MiB of writes.
            let mut w = s.try_clone().unwrap();
            scope.spawn(move || w.write_all(&all).unwrap());
            let got = replies(&mut s, expect.len());
            for (c, data) in &expect {
                assert!(got[c] == *data, "request {c} answered other bytes");
            }
            // After the disconnect's replies the server closes the connection.
            assert_eq!(s.read(&mut [0u8; 1]).unwrap(), 0);
        });
        let mut now = vec![0u8; 8 << 20];
        overlay.read_at(&mut now, 0).unwrap();
        assert!(now.contains(&20), "the last write landed");
    }
}
