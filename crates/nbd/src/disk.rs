//! [`NbdDisk`]: an NBD export as a `VirtualDisk`. Reads go through a small pool of
//! connections (several only when the server advertises `NBD_FLAG_CAN_MULTI_CONN`); the
//! allocation map is the server's `base:allocation` block status, so `diskray map` shows
//! holes and zeros without reading data (`docs/nbd.md` §7).

use crate::conn::{Connection, Extent};
use crate::error::{NbdError, Result};
use crate::limits::{BLOCK_STATUS_SPAN, EXTRA_CONNECTION_TIMEOUT, MAX_CONNECTIONS, TIMEOUT};
use crate::proto::{BASE_ALLOCATION, STATE_HOLE, STATE_ZERO};
use crate::tls::Tls;
use crate::uri::{Address, Uri};
use crate::wire::{Socket, Transport};
use crate::ExportInfo;
use diskray_core::disk::push_run;
use diskray_core::{BlockState, ByteRange, MapRange, VirtualDisk};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The most runs a map of one context may have: a server that reports a disk in tiny
/// alternating extents would otherwise make the map as large as it likes (4 Mi runs is
/// ~100 MiB of map; a real disk's map has far fewer).
pub const MAX_MAP_RUNS: usize = 4 * 1024 * 1024;

/// An NBD export read as a disk.
#[derive(Debug)]
pub struct NbdDisk {
    uri: Uri,
    info: ExportInfo,
    conns: Vec<Mutex<Connection>>,
    next: AtomicUsize,
    sector_size: Option<u64>,
}

impl NbdDisk {
    /// Connects to the export `uri` asking for `base:allocation` and the metadata
    /// `contexts` (such as `qemu:dirty-bitmap:NAME`; those the server lacks are left out:
    /// see [`NbdDisk::contexts`]).
    pub fn open(uri: &str, contexts: &[&str]) -> diskray_core::Result<NbdDisk> {
        Self::open_typed(uri, contexts).map_err(|e| e.into_core(uri, None))
    }

    /// [`NbdDisk::open`] with the typed error.
    pub fn open_typed(uri: &str, contexts: &[&str]) -> Result<NbdDisk> {
        let parsed = Uri::parse(uri)?;
        let mut wanted = vec![BASE_ALLOCATION];
        wanted.extend(contexts.iter().filter(|c| **c != BASE_ALLOCATION));
        let tls = match &parsed.tls_certificates {
            Some(dir) => Some(Tls::new(dir, parsed.tls_hostname())?),
            None => None,
        };
        let tls = tls.as_ref();
        let first = connect(&parsed, &wanted, TIMEOUT, tls)?;
        let info = first.info().clone();
        if info.size == 0 {
            return Err(NbdError::protocol(
                "NBD_OPT_GO",
                "the export is empty (0 bytes)",
            ));
        }
        let mut conns = vec![Mutex::new(first)];
        if info.can_multi_conn() {
            // A server may advertise multi-conn yet take one client at a time: keep the
            // connections that come within the short timeout, and read through those.
            while conns.len() < MAX_CONNECTIONS {
                match connect(&parsed, &wanted, EXTRA_CONNECTION_TIMEOUT, tls) {
                    Ok(c) if *c.info() == info => conns.push(Mutex::new(c)),
                    _ => break,
                }
            }
        }
        Ok(NbdDisk {
            uri: parsed,
            info,
            conns,
            next: AtomicUsize::new(0),
            sector_size: None,
        })
    }

    /// The URI as given.
    pub fn uri(&self) -> &str {
        &self.uri.text
    }

    /// What the server said about the export.
    pub fn info(&self) -> &ExportInfo {
        &self.info
    }

    /// How many connections reads are spread over.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// The metadata contexts the server agreed to.
    pub fn contexts(&self) -> Vec<&str> {
        self.info.contexts.iter().map(|(_, n)| n.as_str()).collect()
    }

    /// Sets the disk's logical sector size (the user's `--sector-size`).
    pub fn set_logical_sector_size(&mut self, size: Option<u64>) {
        self.sector_size = size;
    }

    /// The extents of the metadata context `name` over `range` (clamped to the export),
    /// sorted, without gaps, adjacent extents of equal flags merged. For
    /// `qemu:dirty-bitmap:NAME`, flags bit 0 marks dirty extents.
    pub fn extents(&self, name: &str, range: ByteRange) -> diskray_core::Result<Vec<Extent>> {
        self.extents_typed(name, range)
            .map_err(|(e, at)| e.into_core(&self.uri.text, Some(at)))
    }

    /// [`NbdDisk::extents`] with the typed error and where it happened.
    fn extents_typed(&self, name: &str, range: ByteRange) -> Result<Vec<Extent>, (NbdError, u64)> {
        let end = range.end().min(self.info.size);
        let min = u64::from(self.info.min_block);
        // Requests cover whole minimum blocks (the export's end may cut the last one);
        // what lies outside `range` is cut from the answer.
        let ask_end = end.div_ceil(min).saturating_mul(min).min(self.info.size);
        let mut pos = range.start.min(end) / min * min;
        let mut out: Vec<Extent> = Vec::new();
        while pos < end {
            let mut span = (ask_end - pos).min(BLOCK_STATUS_SPAN);
            if pos + span < ask_end {
                span = span / min * min;
            }
            let got = self
                .with_conn(|c| c.block_status(name, pos, span as u32))
                .map_err(|e| (e, pos))?;
            let before = pos;
            for e in got {
                pos = e.start + e.length;
                let (start, stop) = (e.start.max(range.start), pos.min(end));
                if stop <= start {
                    continue;
                }
                let e = Extent {
                    start,
                    length: stop - start,
                    flags: e.flags,
                };
                let full = out.len() >= MAX_MAP_RUNS;
                match out.last_mut() {
                    Some(last) if last.flags == e.flags => last.length += e.length,
                    _ if full => {
                        let e = NbdError::TooLong {
                            during: format!("block status of {name}"),
                            what: "map (in runs)",
                            length: out.len() as u64 + 1,
                            limit: MAX_MAP_RUNS as u64,
                        };
                        return Err((e, pos));
                    }
                    _ => out.push(e),
                }
            }
            if pos == before {
                let e = NbdError::protocol(format!("block status of {name}"), "no extents");
                return Err((e, pos));
            }
        }
        Ok(out)
    }

    /// Runs `f` on a free connection, or waits for one.
    fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let n = self.conns.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        for i in 0..n {
            if let Ok(mut c) = self.conns[(start + i) % n].try_lock() {
                return f(&mut c);
            }
        }
        // A poisoned lock means a reader panicked mid-request: the connection's state is
        // unknown, and its `broken` mark may not be set.
        let mut c = self.conns[start].lock().map_err(|_| NbdError::Broken {
            first: "a reader panicked while using the connection".into(),
        })?;
        f(&mut c)
    }
}

/// Connects to `uri` and runs the handshake (with TLS when `tls` is given), every wait
/// bounded by `timeout`.
fn connect(
    uri: &Uri,
    contexts: &[&str],
    timeout: Duration,
    tls: Option<&Tls>,
) -> Result<Connection> {
    let during = || format!("connecting to {}", uri.text);
    let io: Box<dyn Transport> = match &uri.address {
        Address::Tcp { host, port } => {
            let addrs = (host.as_str(), *port)
                .to_socket_addrs()
                .map_err(|e| NbdError::io(during(), e))?;
            let mut last = None;
            let mut stream = None;
            for a in addrs {
                match TcpStream::connect_timeout(&a, timeout) {
                    Ok(s) => {
                        stream = Some(s);
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            let s = stream.ok_or_else(|| {
                let e = last.unwrap_or_else(|| std::io::Error::other("the host has no address"));
                NbdError::io(during(), e)
            })?;
            let setup = s
                .set_read_timeout(Some(timeout))
                .and_then(|()| s.set_write_timeout(Some(timeout)))
                .and_then(|()| s.set_nodelay(true))
                .and_then(|()| Socket::tcp(s));
            Box::new(setup.map_err(|e| NbdError::io(during(), e))?)
        }
        Address::Unix(path) => {
            let s = UnixStream::connect(path).map_err(|e| NbdError::io(during(), e))?;
            let setup = s
                .set_read_timeout(Some(timeout))
                .and_then(|()| s.set_write_timeout(Some(timeout)))
                .and_then(|()| Socket::unix(s));
            Box::new(setup.map_err(|e| NbdError::io(during(), e))?)
        }
    };
    Connection::handshake_tls(io, &uri.export, contexts, tls)
}

/// What a `base:allocation` extent is: a hole reads as zeros and is unallocated, zeros
/// that are allocated are `zero`, the rest is data (`docs/nbd.md` §7).
pub fn allocation_state(flags: u32) -> BlockState {
    if flags & STATE_HOLE != 0 {
        BlockState::Unallocated
    } else if flags & STATE_ZERO != 0 {
        BlockState::Zero
    } else {
        BlockState::Data
    }
}

impl VirtualDisk for NbdDisk {
    fn capacity(&self) -> u64 {
        self.info.size
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> diskray_core::Result<()> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.info.size) {
            return Err(diskray_core::Error::out_of_range(
                self.uri.text.clone(),
                offset,
                buf.len() as u64,
                self.info.size,
            ));
        }
        self.with_conn(|c| c.read(buf, offset))
            .map_err(|e| e.into_core(&self.uri.text, Some(offset)))
    }

    fn map(&self, range: ByteRange) -> diskray_core::Result<Vec<MapRange>> {
        let range = range
            .intersect(&ByteRange::new(0, self.info.size))
            .unwrap_or(ByteRange::new(0, 0));
        let mut out = Vec::new();
        let run = |start, length, state| MapRange {
            start,
            length,
            state,
            depth: 0,
        };
        if self.info.context_id(BASE_ALLOCATION).is_none() {
            // Without block status the server says nothing about holes: all of it is data.
            push_run(&mut out, run(range.start, range.length, BlockState::Data));
            return Ok(out);
        }
        for e in self.extents(BASE_ALLOCATION, range)? {
            push_run(&mut out, run(e.start, e.length, allocation_state(e.flags)));
        }
        Ok(out)
    }

    fn logical_sector_size(&self) -> Option<u64> {
        self.sector_size
    }
}
