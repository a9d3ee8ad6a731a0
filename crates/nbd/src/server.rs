//! An NBD server for any [`VirtualDisk`] (`diskray serve`), read-only or with writes going
//! to an [`Overlay`]: the fixed newstyle
//! handshake, `NBD_OPT_GO`/`NBD_OPT_INFO` (with block sizes), `NBD_OPT_LIST`, structured
//! replies, `base:allocation` block status, `NBD_CMD_READ`, `NBD_CMD_DISC`, one thread per
//! client, `NBD_CMD_WRITE`/`NBD_CMD_FLUSH` (and FUA) with an overlay. A client's requests
//! are served in parallel by a pool of workers ([`crate::requests`]). Every request is
//! checked before it is served: a read past the end or longer than [`MAX_READ`] gets
//! `EINVAL` and the client goes on; anything that breaks the protocol (a bad magic, an
//! option longer than [`MAX_OPTION`]) ends that client only.
//! The numbers are in `docs/nbd.md`; the server side is §11.

use crate::overlay::Overlay;
use crate::proto::*;
use crate::requests::{Session, ALLOCATION_ID};
pub use crate::requests::{MAX_EXTENTS, MAX_READ};
use diskray_core::VirtualDisk;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Largest option payload read from a client: an export name (4096 bytes at most by the
/// protocol) and a few queries.
pub const MAX_OPTION: u32 = 16 << 10;
/// Most clients served at once; more are refused at once (their connection closed).
pub const MAX_CLIENTS: usize = 64;
/// Most options one client may send before `NBD_OPT_GO`.
const MAX_OPTIONS: usize = 256;

const OPT_EXPORT_NAME: u32 = 1;
const OPT_LIST: u32 = 3;
const OPT_INFO: u32 = 6;
const OPT_LIST_META_CONTEXT: u32 = 9;
const REP_SERVER: u32 = 2;
const REP_ERR_UNSUP: u32 = REP_FLAG_ERROR | 1;
const REP_ERR_INVALID: u32 = REP_FLAG_ERROR | 3;
const REP_ERR_UNKNOWN: u32 = REP_FLAG_ERROR | 6;
const REP_ERR_TLS_REQD: u32 = REP_FLAG_ERROR | 5;
const TFLAG_SEND_FLUSH: u16 = 1 << 2;
const TFLAG_SEND_FUA: u16 = 1 << 3;

/// A client's connection as the server uses it.
pub trait ServerStream: Read + Write + Send {
    /// A second handle on the same connection, through which worker threads write replies
    /// while this one reads requests; `None` when the connection cannot be shared between
    /// threads (a TLS session), and its requests are then served one after the other.
    fn reply_writer(&self) -> Option<Box<dyn Write + Send>>;
}

impl ServerStream for std::os::unix::net::UnixStream {
    fn reply_writer(&self) -> Option<Box<dyn Write + Send>> {
        Some(Box::new(self.try_clone().ok()?))
    }
}

impl ServerStream for std::net::TcpStream {
    fn reply_writer(&self) -> Option<Box<dyn Write + Send>> {
        Some(Box::new(self.try_clone().ok()?))
    }
}

impl<S: Read + Write + Send> ServerStream for rustls::StreamOwned<rustls::ServerConnection, S> {
    fn reply_writer(&self) -> Option<Box<dyn Write + Send>> {
        None
    }
}

/// The export: a disk and the names it answers to (`""` is always one of them).
pub struct Export<'a> {
    /// What is served (the overlay, when there is one).
    pub disk: &'a dyn VirtualDisk,
    /// Its name (an image id).
    pub name: String,
    /// Where writes go; `None`: the export is read-only.
    pub overlay: Option<&'a Overlay<'a>>,
    /// TLS, required of every client when given (`NBD_OPT_STARTTLS` first).
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
}

/// Serves `export` to every client `accept` hands over, until `accept` returns `None`.
/// Each client runs on its own thread; one client's failure never stops the others.
pub fn serve<S, F>(export: &Export<'_>, mut accept: F) -> io::Result<()>
where
    S: ServerStream,
    F: FnMut() -> Option<io::Result<S>>,
{
    let clients = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        while let Some(stream) = accept() {
            let Ok(stream) = stream else { continue };
            if clients.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
                clients.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            let clients = &clients;
            scope.spawn(move || {
                let _ = Client::new(export, stream).run();
                clients.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    Ok(())
}

/// Serves `export` on `listen`: `unix:PATH` (a Unix socket) or `HOST:PORT` (TCP), until
/// the process ends; `ready` is called once the socket is bound.
pub fn listen_and_serve(export: &Export<'_>, listen: &str, ready: &dyn Fn()) -> io::Result<()> {
    if let Some(path) = listen.strip_prefix("unix:") {
        let listener = std::os::unix::net::UnixListener::bind(path)?;
        ready();
        serve(export, || Some(listener.accept().map(|(s, _)| s)))
    } else {
        let listener = std::net::TcpListener::bind(listen)?;
        ready();
        // Every reply is one write: sending it at once costs nothing and a small reply
        // (a write's acknowledgement) is not held back waiting for the client's ACK.
        serve(export, || {
            Some(
                listener
                    .accept()
                    .and_then(|(s, _)| s.set_nodelay(true).map(|()| s)),
            )
        })
    }
}

struct Client<'a, S> {
    export: &'a Export<'a>,
    s: S,
    structured: bool,
    allocation: bool,
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().unwrap_or_default())
}

impl<'a, S: ServerStream> Client<'a, S> {
    fn new(export: &'a Export<'a>, s: S) -> Self {
        Client {
            export,
            s,
            structured: false,
            allocation: false,
        }
    }

    fn read_n<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        let mut b = [0u8; N];
        self.s.read_exact(&mut b)?;
        Ok(b)
    }

    fn bad(what: &str) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, what.to_string())
    }

    fn run(mut self) -> io::Result<()> {
        let mut hello = Vec::with_capacity(18);
        hello.extend_from_slice(&NBDMAGIC.to_be_bytes());
        hello.extend_from_slice(&IHAVEOPT.to_be_bytes());
        hello.extend_from_slice(&(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES).to_be_bytes());
        self.s.write_all(&hello)?;
        let client_flags = u32::from_be_bytes(self.read_n()?);
        if client_flags & !(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES) != 0 {
            return Err(Self::bad("unknown client flags"));
        }
        let no_zeroes = client_flags & FLAG_C_NO_ZEROES != 0;
        let Some(tls) = self.export.tls.clone() else {
            return self.options(no_zeroes);
        };
        // TLS first: every option but STARTTLS and ABORT is answered TLS_REQD.
        for _ in 0..MAX_OPTIONS {
            let (option, _) = self.option()?;
            match option {
                OPT_STARTTLS => {
                    self.reply(option, REP_ACK, &[])?;
                    let conn = rustls::ServerConnection::new(tls)
                        .map_err(|e| io::Error::other(e.to_string()))?;
                    let stream = rustls::StreamOwned::new(conn, self.s);
                    return Client::new(self.export, stream).options(no_zeroes);
                }
                OPT_ABORT => return self.reply(option, REP_ACK, &[]),
                _ => self.reply(option, REP_ERR_TLS_REQD, b"TLS is required")?,
            }
        }
        Err(Self::bad("too many options"))
    }

    /// Reads one option: its number and payload.
    fn option(&mut self) -> io::Result<(u32, Vec<u8>)> {
        if u64::from_be_bytes(self.read_n()?) != IHAVEOPT {
            return Err(Self::bad("option without IHAVEOPT"));
        }
        let option = u32::from_be_bytes(self.read_n()?);
        let len = u32::from_be_bytes(self.read_n()?);
        if len > MAX_OPTION {
            return Err(Self::bad("option too long"));
        }
        let mut data = vec![0u8; len as usize];
        self.s.read_exact(&mut data)?;
        Ok((option, data))
    }

    /// The option haggling, then the transmission phase.
    fn options(mut self, no_zeroes: bool) -> io::Result<()> {
        for _ in 0..MAX_OPTIONS {
            let (option, data) = self.option()?;
            match option {
                OPT_EXPORT_NAME => {
                    if !self.known(&data) {
                        return Err(Self::bad("no such export"));
                    }
                    let mut r = self.export.disk.capacity().to_be_bytes().to_vec();
                    r.extend_from_slice(&self.tflags().to_be_bytes());
                    if !no_zeroes {
                        r.extend_from_slice(&[0u8; 124]);
                    }
                    self.s.write_all(&r)?;
                    return self.transmission();
                }
                OPT_ABORT => return self.reply(option, REP_ACK, &[]),
                OPT_STRUCTURED_REPLY => {
                    self.structured = true;
                    self.reply(option, REP_ACK, &[])?;
                }
                OPT_LIST => {
                    for name in ["", self.export.name.as_str()] {
                        let mut d = (name.len() as u32).to_be_bytes().to_vec();
                        d.extend_from_slice(name.as_bytes());
                        self.reply(option, REP_SERVER, &d)?;
                    }
                    self.reply(option, REP_ACK, &[])?;
                }
                OPT_GO | OPT_INFO => {
                    if data.len() < 6 || (be32(&data) as usize) > data.len() - 6 {
                        self.reply(option, REP_ERR_INVALID, &[])?;
                        continue;
                    }
                    let n = be32(&data) as usize;
                    if !self.known(&data[4..4 + n]) {
                        self.reply(option, REP_ERR_UNKNOWN, b"no such export")?;
                        continue;
                    }
                    let mut info = INFO_EXPORT.to_be_bytes().to_vec();
                    info.extend_from_slice(&self.export.disk.capacity().to_be_bytes());
                    info.extend_from_slice(&self.tflags().to_be_bytes());
                    self.reply(option, REP_INFO, &info)?;
                    let mut sizes = INFO_BLOCK_SIZE.to_be_bytes().to_vec();
                    for v in [1u32, 4096, MAX_READ] {
                        sizes.extend_from_slice(&v.to_be_bytes());
                    }
                    self.reply(option, REP_INFO, &sizes)?;
                    self.reply(option, REP_ACK, &[])?;
                    if option == OPT_GO {
                        return self.transmission();
                    }
                }
                OPT_SET_META_CONTEXT | OPT_LIST_META_CONTEXT => {
                    let set = option == OPT_SET_META_CONTEXT;
                    if set && !self.structured {
                        self.reply(option, REP_ERR_INVALID, b"structured replies first")?;
                        continue;
                    }
                    let Some(queries) = Self::queries(&data) else {
                        self.reply(option, REP_ERR_INVALID, &[])?;
                        continue;
                    };
                    let wanted = queries.iter().any(|q| {
                        q == BASE_ALLOCATION.as_bytes() || (!set && q.as_slice() == b"base:")
                    }) || (!set && queries.is_empty());
                    if wanted {
                        let mut d = ALLOCATION_ID.to_be_bytes().to_vec();
                        d.extend_from_slice(BASE_ALLOCATION.as_bytes());
                        self.reply(option, REP_META_CONTEXT, &d)?;
                    }
                    if set {
                        self.allocation = wanted;
                    }
                    self.reply(option, REP_ACK, &[])?;
                }
                _ => self.reply(option, REP_ERR_UNSUP, &[])?,
            }
        }
        Err(Self::bad("too many options"))
    }

    /// The export name and the queries of a meta context option, when well formed.
    fn queries(data: &[u8]) -> Option<Vec<Vec<u8>>> {
        let n = be32(data.get(..4)?) as usize;
        let mut at = 4 + n;
        let count = be32(data.get(at..at + 4)?) as usize;
        at += 4;
        let mut out = Vec::new();
        for _ in 0..count.min(MAX_OPTIONS) {
            let len = be32(data.get(at..at + 4)?) as usize;
            at += 4;
            out.push(data.get(at..at + len)?.to_vec());
            at += len;
        }
        Some(out)
    }

    fn known(&self, name: &[u8]) -> bool {
        name.is_empty() || name == self.export.name.as_bytes()
    }

    fn tflags(&self) -> u16 {
        // Every connection shares the one overlay, so writes and flushes are seen by all:
        // multi-conn holds for a writable export too.
        let access = match self.export.overlay {
            Some(_) => TFLAG_SEND_FLUSH | TFLAG_SEND_FUA,
            None => TFLAG_READ_ONLY,
        };
        TFLAG_HAS_FLAGS | access | TFLAG_SEND_DF | TFLAG_CAN_MULTI_CONN
    }

    fn reply(&mut self, option: u32, kind: u32, data: &[u8]) -> io::Result<()> {
        let mut r = OPTION_REPLY_MAGIC.to_be_bytes().to_vec();
        r.extend_from_slice(&option.to_be_bytes());
        r.extend_from_slice(&kind.to_be_bytes());
        r.extend_from_slice(&(data.len() as u32).to_be_bytes());
        r.extend_from_slice(data);
        self.s.write_all(&r)
    }

    /// The transmission phase: requests served by a pool of workers when the connection
    /// can be shared between threads, one after the other otherwise (TLS).
    fn transmission(mut self) -> io::Result<()> {
        let session = Session {
            export: self.export,
            structured: self.structured,
            allocation: self.allocation,
        };
        match self.s.reply_writer() {
            Some(out) => session.parallel(&mut self.s, out),
            None => session.serial(&mut self.s),
        }
    }
}
