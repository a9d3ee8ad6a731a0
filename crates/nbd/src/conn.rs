//! One connection in the transmission phase (`docs/nbd.md` §5): reads split at the
//! server's maximum block size and pipelined ([`MAX_IN_FLIGHT`] requests at once), block
//! status of any negotiated metadata context, every reply checked against the request it
//! answers (`reply`). After a protocol violation or a transport error the connection is not used
//! again; an error the server reports cleanly leaves it usable.

use crate::error::{NbdError, Result};
use crate::handshake::{negotiate, ExportInfo};
use crate::limits::{MAX_IN_FLIGHT, PREFERRED_READ_REQUEST};
use crate::proto::*;
use crate::reply::{finish, read_chunk, Pending, RawExtents, Want};
use crate::tls::Tls;
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

impl Connection {
    /// Runs the handshake on `io` for `export`, asking for the metadata `contexts`.
    pub fn handshake(io: Box<dyn Transport>, export: &str, contexts: &[&str]) -> Result<Self> {
        Self::handshake_tls(io, export, contexts, None)
    }

    /// [`Connection::handshake`], over TLS with `tls`.
    pub fn handshake_tls(
        io: Box<dyn Transport>,
        export: &str,
        contexts: &[&str],
        tls: Option<&Tls>,
    ) -> Result<Self> {
        let (io, info) = negotiate(io, export, contexts, tls)?;
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
        // The unaligned edges are read as whole minimum blocks (the export's end may cut
        // the last) through a one-block buffer; the aligned middle straight into `buf`.
        let head_end = if offset.is_multiple_of(min) {
            offset
        } else {
            offset.next_multiple_of(min).min(end)
        };
        let mid_end = if end == self.info.size {
            end
        } else {
            (end / min * min).max(head_end)
        };
        let (h, m) = ((head_end - offset) as usize, (mid_end - offset) as usize);
        if h > 0 {
            self.read_partial_block(&mut buf[..h], offset)?;
        }
        if m > h {
            self.read_aligned(&mut buf[h..m], head_end)?;
        }
        if buf.len() > m {
            self.read_partial_block(&mut buf[m..], mid_end)?;
        }
        Ok(())
    }

    /// Fills `buf` (inside one minimum block) by reading that whole block.
    fn read_partial_block(&mut self, buf: &mut [u8], offset: u64) -> Result<()> {
        let min = u64::from(self.info.min_block);
        let start = offset / min * min;
        let stop = (start + min).min(self.info.size);
        let mut block = vec![0; (stop - start) as usize];
        self.read_aligned(&mut block, start)?;
        let from = (offset - start) as usize;
        buf.copy_from_slice(&block[from..from + buf.len()]);
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
