//! One connection in the transmission phase (`docs/nbd.md` §5–§6): reads split at the
//! server's maximum block size and pipelined ([`MAX_IN_FLIGHT`] requests at once), block
//! status of any negotiated metadata context, every reply checked against the request it
//! answers. After a protocol violation or a transport error the connection is not used
//! again; an error the server reports cleanly leaves it usable.

use crate::error::{NbdError, Result};
use crate::handshake::{negotiate, ExportInfo};
use crate::limits::{
    MAX_BLOCK_STATUS_PAYLOAD, MAX_CHUNKS_PER_REPLY, MAX_IN_FLIGHT, MAX_OPTION_REPLY,
    PREFERRED_READ_REQUEST,
};
use crate::proto::*;
use crate::wire::{self, Transport};
use std::collections::BTreeMap;

/// One extent of a metadata context: `flags` holds the context's state bits
/// (`base:allocation`: [`STATE_HOLE`], [`STATE_ZERO`]; `qemu:dirty-bitmap:NAME`: bit 0 set
/// for dirty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// First byte.
    pub start: u64,
    /// Length in bytes (never 0).
    pub length: u64,
    /// The context's state bits.
    pub flags: u32,
}

/// A connection to an export, past the handshake.
pub struct Connection {
    io: Box<dyn Transport>,
    info: ExportInfo,
    next_cookie: u64,
    broken: Option<String>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("info", &self.info)
            .field("broken", &self.broken)
            .finish()
    }
}

/// What a request in flight is for.
enum Want {
    /// Data into the caller's buffer at this index.
    Read { at: usize },
    /// Extents of the context with this id.
    Status { context: u32 },
}

/// The (length, flags) pairs of one block status chunk, as sent.
type RawExtents = Vec<(u32, u32)>;

/// A request waiting for its reply.
struct Pending {
    cookie: u64,
    command: &'static str,
    offset: u64,
    length: u32,
    want: Want,
    /// The parts of a read answered so far: start → end, never overlapping.
    covered: BTreeMap<u64, u64>,
    chunks: usize,
    error: Option<NbdError>,
    extents: Option<RawExtents>,
}

impl Connection {
    /// Runs the handshake on `io` for `export`, asking for the metadata `contexts`.
    pub fn handshake(mut io: Box<dyn Transport>, export: &str, contexts: &[&str]) -> Result<Self> {
        let info = negotiate(io.as_mut(), export, contexts)?;
        Ok(Connection {
            io,
            info,
            next_cookie: 1,
            broken: None,
        })
    }

    /// What the server said about the export.
    pub fn info(&self) -> &ExportInfo {
        &self.info
    }

    /// Fills `buf` with the export's bytes at `offset`: unaligned edges are read as whole
    /// minimum blocks, the rest split into requests of at most the maximum block size.
    pub fn read(&mut self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.usable()?;
        let len = buf.len() as u64;
        let end = offset.checked_add(len).filter(|&e| e <= self.info.size);
        let Some(end) = end else {
            return Err(NbdError::protocol(
                format!("read of {len} bytes at byte {offset}"),
                format!("past the end of the export ({} bytes)", self.info.size),
            ));
        };
        if len == 0 {
            return Ok(());
        }
        let min = u64::from(self.info.min_block);
        if offset.is_multiple_of(min) && (len.is_multiple_of(min) || end == self.info.size) {
            return self.read_aligned(buf, offset);
        }
        // The whole minimum blocks around the range (the export's end may cut the last).
        let start = offset / min * min;
        let stop = end.div_ceil(min).saturating_mul(min).min(self.info.size);
        let mut tmp = vec![0; (stop - start) as usize];
        self.read_aligned(&mut tmp, start)?;
        let from = (offset - start) as usize;
        buf.copy_from_slice(&tmp[from..from + buf.len()]);
        Ok(())
    }

    /// Block status of the context `name` for `length` bytes at `offset`: the extents the
    /// server returns, the last cut at the end of the request.
    pub fn block_status(&mut self, name: &str, offset: u64, length: u32) -> Result<Vec<Extent>> {
        self.usable()?;
        let context = self
            .info
            .context_id(name)
            .ok_or_else(|| NbdError::NoContext {
                name: name.to_string(),
                negotiated: self.negotiated(),
            })?;
        let end = offset + u64::from(length);
        if length == 0 || end > self.info.size {
            return Err(NbdError::protocol(
                format!("block status of {length} bytes at byte {offset}"),
                format!("outside the export ({} bytes)", self.info.size),
            ));
        }
        let mut pieces = std::iter::once((offset, length, Want::Status { context }));
        let mut done = self.exchange(&mut [], &mut pieces)?;
        let raw = done.pop().unwrap_or_default();
        let mut out = Vec::with_capacity(raw.len());
        let mut pos = offset;
        for (len, flags) in raw {
            if pos >= end {
                break; // The protocol lets the last extent run past the request.
            }
            let len = u64::from(len).min(end - pos);
            out.push(Extent {
                start: pos,
                length: len,
                flags,
            });
            pos += len;
        }
        Ok(out)
    }

    /// The contexts the server agreed to, for messages.
    fn negotiated(&self) -> String {
        let names: Vec<&str> = self.info.contexts.iter().map(|(_, n)| n.as_str()).collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    }

    /// An error when an earlier one left the connection unusable.
    fn usable(&self) -> Result<()> {
        match &self.broken {
            Some(first) => Err(NbdError::Broken {
                first: first.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Reads an aligned range in requests of the chosen size.
    fn read_aligned(&mut self, buf: &mut [u8], offset: u64) -> Result<()> {
        let step = self.request_size() as usize;
        let len = buf.len();
        let mut pieces = (0..len).step_by(step).map(|at| {
            let n = step.min(len - at) as u32;
            (offset + at as u64, n, Want::Read { at })
        });
        self.exchange(buf, &mut pieces).map(drop)
    }

    /// The size of one read request: the preferred request size within the server's
    /// maximum, a multiple of its minimum.
    fn request_size(&self) -> u32 {
        let min = self.info.min_block;
        let n = PREFERRED_READ_REQUEST.min(self.info.max_block);
        (n / min * min).max(min)
    }

    /// Sends `pieces` with at most [`MAX_IN_FLIGHT`] in flight and reads every reply;
    /// returns the extents of each block status request in completion order. The first
    /// error the server reports is returned once every request in flight is answered.
    fn exchange(
        &mut self,
        buf: &mut [u8],
        pieces: &mut dyn Iterator<Item = (u64, u32, Want)>,
    ) -> Result<Vec<RawExtents>> {
        let mut inflight: Vec<Pending> = Vec::new();
        let mut first_error = None;
        let mut statuses = Vec::new();
        loop {
            if first_error.is_none() {
                let mut batch = Vec::new();
                while inflight.len() < MAX_IN_FLIGHT {
                    let Some((offset, length, want)) = pieces.next() else {
                        break;
                    };
                    let cookie = self.next_cookie;
                    self.next_cookie = self.next_cookie.wrapping_add(1);
                    let (command, kind, flags) = match want {
                        Want::Read { .. } => ("NBD_CMD_READ", CMD_READ, self.read_flags()),
                        Want::Status { .. } => ("NBD_CMD_BLOCK_STATUS", CMD_BLOCK_STATUS, 0),
                    };
                    batch.extend_from_slice(&request(kind, flags, cookie, offset, length));
                    inflight.push(Pending {
                        cookie,
                        command,
                        offset,
                        length,
                        want,
                        covered: BTreeMap::new(),
                        chunks: 0,
                        error: None,
                        extents: None,
                    });
                }
                if !batch.is_empty() {
                    let sent =
                        wire::write_all(self.io.as_mut(), &batch, &|| "sending requests".into());
                    self.check(sent)?;
                }
            }
            if inflight.is_empty() {
                break;
            }
            let chunk = read_chunk(self.io.as_mut(), &self.info, &mut inflight, buf);
            let Some(i) = self.check(chunk)? else {
                continue;
            };
            let p = inflight.swap_remove(i);
            match self.check(finish(p))? {
                Ok(Some(extents)) => statuses.push(extents),
                Ok(None) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(statuses),
        }
    }

    /// `NBD_CMD_FLAG_DF` when the server honours it: one chunk per read.
    fn read_flags(&self) -> u16 {
        if self.info.structured && self.info.flags & TFLAG_SEND_DF != 0 {
            CMD_FLAG_DF
        } else {
            0
        }
    }

    /// Marks the connection unusable when `r` is an error.
    fn check<T>(&mut self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            self.broken.get_or_insert_with(|| e.to_string());
        }
        r
    }
}

impl Drop for Connection {
    /// Says goodbye (`NBD_CMD_DISC`) when the connection is in a known state.
    fn drop(&mut self) {
        if self.broken.is_none() {
            let disc = request(CMD_DISC, 0, self.next_cookie, 0, 0);
            // Best effort: the server may be gone already, and there is no reply.
            let _ = wire::write_all(self.io.as_mut(), &disc, &String::new);
        }
    }
}

/// A request's 28 bytes.
fn request(kind: u16, flags: u16, cookie: u64, offset: u64, length: u32) -> [u8; 28] {
    let mut r = [0; 28];
    r[0..4].copy_from_slice(&REQUEST_MAGIC.to_be_bytes());
    r[4..6].copy_from_slice(&flags.to_be_bytes());
    r[6..8].copy_from_slice(&kind.to_be_bytes());
    r[8..16].copy_from_slice(&cookie.to_be_bytes());
    r[16..24].copy_from_slice(&offset.to_be_bytes());
    r[24..28].copy_from_slice(&length.to_be_bytes());
    r
}

/// The outcome of an answered request: `Err(outer)` is a protocol violation (the reply
/// did not answer the request whole), `Ok(Err(inner))` an error the server reported,
/// `Ok(Ok(extents))` success (extents for block status).
fn finish(p: Pending) -> Result<Result<Option<RawExtents>>> {
    if let Some(e) = p.error {
        return Ok(Err(e));
    }
    let during = || {
        format!(
            "reply to {} of {} bytes at byte {}",
            p.command, p.length, p.offset
        )
    };
    match p.want {
        Want::Read { .. } => {
            let covered: u64 = p.covered.iter().map(|(s, e)| e - s).sum();
            if covered != u64::from(p.length) {
                return Err(NbdError::protocol(
                    during(),
                    format!("the reply ended after {covered} of {} bytes", p.length),
                ));
            }
            Ok(Ok(None))
        }
        Want::Status { .. } => match p.extents {
            Some(e) => Ok(Ok(Some(e))),
            None => Err(NbdError::protocol(
                during(),
                "the reply ended without extents for the context asked for",
            )),
        },
    }
}

/// Reads one reply chunk (or simple reply) and applies it to its request; returns the
/// request's index when the reply is complete.
fn read_chunk(
    io: &mut dyn Transport,
    info: &ExportInfo,
    inflight: &mut [Pending],
    buf: &mut [u8],
) -> Result<Option<usize>> {
    let during = || "reading a reply".to_string();
    let magic = wire::be32(io, &during)?;
    match magic {
        SIMPLE_REPLY_MAGIC => {
            let error = wire::be32(io, &during)?;
            let cookie = wire::be64(io, &during)?;
            let i = find(inflight, cookie)?;
            let p = &mut inflight[i];
            let during = || format!("simple reply to {} at byte {}", p.command, p.offset);
            if error != 0 {
                p.error = Some(server_error(p, p.offset, error, String::new()));
                return Ok(Some(i));
            }
            match p.want {
                Want::Read { at } if !info.structured => {
                    let dst = &mut buf[at..at + p.length as usize];
                    wire::read_exact(io, dst, &during)?;
                    p.covered.insert(p.offset, p.offset + u64::from(p.length));
                    Ok(Some(i))
                }
                _ => Err(NbdError::protocol(
                    during(),
                    "a simple reply with data where structured replies were negotiated",
                )),
            }
        }
        STRUCTURED_REPLY_MAGIC if info.structured => {
            let flags = wire::be16(io, &during)?;
            let kind = wire::be16(io, &during)?;
            let cookie = wire::be64(io, &during)?;
            let length = wire::be32(io, &during)?;
            let i = find(inflight, cookie)?;
            chunk(io, info, &mut inflight[i], kind, length, buf)?;
            Ok((flags & REPLY_FLAG_DONE != 0).then_some(i))
        }
        STRUCTURED_REPLY_MAGIC => Err(NbdError::protocol(
            during(),
            "a structured reply, which was not negotiated",
        )),
        EXTENDED_REPLY_MAGIC => Err(NbdError::protocol(
            during(),
            "an extended-header reply, which was not negotiated",
        )),
        found => Err(NbdError::BadMagic {
            what: "reply",
            expected: STRUCTURED_REPLY_MAGIC.into(),
            found: found.into(),
        }),
    }
}

/// The index of the request in flight with `cookie`.
fn find(inflight: &[Pending], cookie: u64) -> Result<usize> {
    inflight
        .iter()
        .position(|p| p.cookie == cookie)
        .ok_or_else(|| NbdError::UnknownCookie {
            during: "reading a reply".into(),
            cookie,
        })
}

/// An [`NbdError::Server`] for request `p`.
fn server_error(p: &Pending, offset: u64, error: u32, message: String) -> NbdError {
    NbdError::Server {
        command: p.command,
        offset,
        length: p.length,
        error,
        message,
    }
}

/// Applies one structured reply chunk of type `kind` and payload `length` to `p`.
fn chunk(
    io: &mut dyn Transport,
    info: &ExportInfo,
    p: &mut Pending,
    kind: u16,
    length: u32,
    buf: &mut [u8],
) -> Result<()> {
    let (command, request_at) = (p.command, p.offset);
    let during = || format!("reply chunk of type {kind} to {command} at byte {request_at}");
    p.chunks += 1;
    if p.chunks > MAX_CHUNKS_PER_REPLY {
        return Err(NbdError::TooLong {
            during: during(),
            what: "list of reply chunks",
            length: p.chunks as u64,
            limit: MAX_CHUNKS_PER_REPLY as u64,
        });
    }
    let bad = |why: &str| Err(NbdError::protocol(during(), why));
    match (kind, &p.want) {
        (REPLY_TYPE_NONE, _) if length == 0 => Ok(()),
        (REPLY_TYPE_OFFSET_DATA, &Want::Read { at }) if length > 8 => {
            let offset = wire::be64(io, &during)?;
            let n = u64::from(length - 8);
            let from = cover(p, offset, n, &during)?;
            wire::read_exact(io, &mut buf[at + from..at + from + n as usize], &during)
        }
        (REPLY_TYPE_OFFSET_HOLE, &Want::Read { at }) if length == 12 => {
            let offset = wire::be64(io, &during)?;
            let n = u64::from(wire::be32(io, &during)?);
            if n == 0 {
                return bad("a hole of 0 bytes");
            }
            let from = cover(p, offset, n, &during)?;
            buf[at + from..at + from + n as usize].fill(0);
            Ok(())
        }
        (REPLY_TYPE_BLOCK_STATUS, &Want::Status { context }) => {
            if length > MAX_BLOCK_STATUS_PAYLOAD {
                return Err(NbdError::TooLong {
                    during: during(),
                    what: "block status chunk",
                    length: length.into(),
                    limit: MAX_BLOCK_STATUS_PAYLOAD.into(),
                });
            }
            if length < 12 || !(length - 4).is_multiple_of(8) {
                return bad("a block status chunk that is not a context id and whole extents");
            }
            let id = wire::be32(io, &during)?;
            let body = wire::bytes(
                io,
                (length - 4).into(),
                MAX_BLOCK_STATUS_PAYLOAD,
                "block status chunk",
                &during,
            )?;
            if !info.contexts.iter().any(|(i, _)| *i == id) {
                return bad(&format!(
                    "block status for context id {id}, which was not negotiated"
                ));
            }
            if id != context {
                return Ok(()); // Another negotiated context: every request reports them all.
            }
            if p.extents.is_some() {
                return bad("two block status chunks for one context");
            }
            let mut extents = Vec::with_capacity(body.len() / 8);
            for pair in body.chunks_exact(8) {
                let len = u32::from_be_bytes([pair[0], pair[1], pair[2], pair[3]]);
                let flags = u32::from_be_bytes([pair[4], pair[5], pair[6], pair[7]]);
                if len == 0 {
                    return bad("an extent of 0 bytes");
                }
                extents.push((len, flags));
            }
            p.extents = Some(extents);
            Ok(())
        }
        (k, _) if k & REPLY_TYPE_ERROR_BIT != 0 => {
            let body = wire::bytes(io, length.into(), MAX_OPTION_REPLY, "error chunk", &during)?;
            let error =
                error_chunk(p, k, &body).map_err(|why| NbdError::protocol(during(), why))?;
            p.error.get_or_insert(error);
            Ok(())
        }
        _ => bad(&format!(
            "a chunk of type {kind} with {length} bytes is not an answer to this request"
        )),
    }
}

/// Records that a read chunk covers `n` bytes at `offset`; returns the position in the
/// request. Chunks must lie inside the request and not overlap.
fn cover(p: &mut Pending, offset: u64, n: u64, during: &dyn Fn() -> String) -> Result<usize> {
    let end = offset.checked_add(n);
    let inside = offset >= p.offset && end.is_some_and(|e| e <= p.offset + u64::from(p.length));
    let end = end.unwrap_or(u64::MAX);
    if !inside {
        return Err(NbdError::protocol(
            during(),
            format!("{n} bytes at byte {offset}: outside the request"),
        ));
    }
    let before = p.covered.range(..end).next_back();
    if before.is_some_and(|(_, &e)| e > offset) {
        return Err(NbdError::protocol(
            during(),
            format!("{n} bytes at byte {offset} overlap an earlier chunk"),
        ));
    }
    p.covered.insert(offset, end);
    Ok((offset - p.offset) as usize)
}

/// The error an error chunk reports: `u32 error, u16 message length, message`, then for
/// `NBD_REPLY_TYPE_ERROR_OFFSET` a u64 offset inside the request.
fn error_chunk(p: &Pending, kind: u16, body: &[u8]) -> std::result::Result<NbdError, String> {
    if body.len() < 6 {
        return Err(format!("an error chunk of {} bytes", body.len()));
    }
    let error = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    let mlen = usize::from(u16::from_be_bytes([body[4], body[5]]));
    let rest = &body[6..];
    if mlen > rest.len() {
        return Err(format!(
            "an error message of {mlen} bytes in {} bytes",
            rest.len()
        ));
    }
    if error == 0 {
        return Err("an error chunk with error value 0".into());
    }
    let message = wire::text(&rest[..mlen]);
    let mut offset = p.offset;
    match kind {
        REPLY_TYPE_ERROR if rest.len() == mlen => {}
        REPLY_TYPE_ERROR_OFFSET if rest.len() == mlen + 8 => {
            let o = &rest[mlen..];
            offset = u64::from_be_bytes([o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]]);
            if offset < p.offset || offset >= p.offset + u64::from(p.length) {
                return Err(format!("an error at byte {offset}, outside the request"));
            }
        }
        REPLY_TYPE_ERROR | REPLY_TYPE_ERROR_OFFSET => {
            return Err("an error chunk whose length does not match its message".into())
        }
        // An error type this client does not know: its payload starts the same way.
        _ => {}
    }
    Ok(server_error(p, offset, error, message))
}

/// Opens a connection through `io` and reads all of `buf` at `offset`; for the fuzz
/// target and tests that speak for a server from a byte string.
pub fn exercise(io: Box<dyn Transport>, contexts: &[&str], buf: &mut [u8]) -> Result<Vec<Extent>> {
    let mut c = Connection::handshake(io, "", contexts)?;
    let n = (buf.len() as u64).min(c.info.size) as usize;
    c.read(&mut buf[..n], 0)?;
    let mut out = Vec::new();
    for name in contexts {
        let len = c.info.size.min(u32::MAX.into()) as u32;
        if len > 0 {
            out.extend(c.block_status(name, 0, len)?);
        }
    }
    Ok(out)
}
