//! Reply chunks (`docs/nbd.md` §6), each checked against the request in flight it names
//! by cookie: data and holes inside the request and never overlapping, block status for
//! a negotiated context only, error chunks whose lengths add up; every length bounded
//! before it is read.

use crate::error::{NbdError, Result};
use crate::handshake::ExportInfo;
use crate::limits::{MAX_BLOCK_STATUS_PAYLOAD, MAX_CHUNKS_PER_REPLY, MAX_OPTION_REPLY};
use crate::proto::*;
use crate::wire::{self, Transport};
use std::collections::BTreeMap;

/// What a request in flight is for.
pub(crate) enum Want {
    /// Data into the caller's buffer at this index.
    Read { at: usize },
    /// Extents of the context with this id.
    Status { context: u32 },
}

/// The (length, flags) pairs of one block status chunk, as sent.
pub(crate) type RawExtents = Vec<(u32, u32)>;

/// A request waiting for its reply.
pub(crate) struct Pending {
    pub(crate) cookie: u64,
    pub(crate) command: &'static str,
    pub(crate) offset: u64,
    pub(crate) length: u32,
    pub(crate) want: Want,
    /// The parts of a read answered so far: start → end, never overlapping.
    pub(crate) covered: BTreeMap<u64, u64>,
    pub(crate) chunks: usize,
    pub(crate) error: Option<NbdError>,
    pub(crate) extents: Option<RawExtents>,
}

/// The outcome of an answered request: `Err(outer)` is a protocol violation (the reply
/// did not answer the request whole), `Ok(Err(inner))` an error the server reported,
/// `Ok(Ok(extents))` success (extents for block status).
pub(crate) fn finish(p: Pending) -> Result<Result<Option<RawExtents>>> {
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
pub(crate) fn read_chunk(
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
