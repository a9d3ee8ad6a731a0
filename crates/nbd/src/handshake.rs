//! The fixed newstyle handshake (`docs/nbd.md` §2–§3): structured replies, the metadata
//! contexts, then `NBD_OPT_GO` asking for the block sizes. What the server agreed to is
//! an [`ExportInfo`].

use crate::error::{NbdError, Result};
use crate::limits::{
    MAX_CONTEXTS, MAX_MIN_BLOCK, MAX_OPTION_REPLIES, MAX_OPTION_REPLY, MAX_STRING,
};
use crate::proto::*;
use crate::tls::Tls;
use crate::wire::{self, Transport};

/// What the server said about the export and what it agreed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportInfo {
    /// The export's size in bytes.
    pub size: u64,
    /// The transmission flags (`NBD_FLAG_*`).
    pub flags: u16,
    /// The minimum block size: every request is aligned to it (1 when not advertised).
    pub min_block: u32,
    /// The preferred block size.
    pub preferred_block: u32,
    /// The largest request the server takes (capped by `limits::MAX_READ_REQUEST`).
    pub max_block: u32,
    /// Whether the server sends structured replies (needed for block status).
    pub structured: bool,
    /// The metadata contexts the server chose: (id, name).
    pub contexts: Vec<(u32, String)>,
}

impl ExportInfo {
    /// True when the server allows several connections to the export.
    pub fn can_multi_conn(&self) -> bool {
        self.flags & TFLAG_CAN_MULTI_CONN != 0
    }

    /// The id of the context `name`, when the server agreed to it.
    pub fn context_id(&self, name: &str) -> Option<u32> {
        self.contexts
            .iter()
            .find(|(_, n)| n == name)
            .map(|(id, _)| *id)
    }
}

/// An option's reply, its payload already read (bounded).
struct OptionReply {
    kind: u32,
    payload: Vec<u8>,
}

/// Runs the handshake for `export` (over TLS from `NBD_OPT_STARTTLS` on, with `tls`),
/// asking for the metadata `contexts` (those the server does not know are left out of
/// [`ExportInfo::contexts`]); returns the stream to go on with (the TLS one, with `tls`).
pub fn negotiate(
    mut io: Box<dyn Transport>,
    export: &str,
    contexts: &[&str],
    tls: Option<&Tls>,
) -> Result<(Box<dyn Transport>, ExportInfo)> {
    match negotiate_on(&mut io, export, contexts, tls) {
        Ok(info) => Ok((io, info)),
        Err(e) => {
            if let NbdError::OptionRefused { .. } = e {
                // The server is still in option haggling: say goodbye properly (best
                // effort; its reply is not waited for).
                let _ = send_option(io.as_mut(), OPT_ABORT, &[]);
            }
            Err(e)
        }
    }
}

/// [`negotiate`], replacing `io` by the TLS stream when there is one.
fn negotiate_on(
    io: &mut Box<dyn Transport>,
    export: &str,
    contexts: &[&str],
    tls: Option<&Tls>,
) -> Result<ExportInfo> {
    let during = || "handshake".to_string();
    let magic = wire::be64(io.as_mut(), &during)?;
    if magic != NBDMAGIC {
        return Err(NbdError::BadMagic {
            what: "server greeting (NBDMAGIC)",
            expected: NBDMAGIC,
            found: magic,
        });
    }
    let style = wire::be64(io.as_mut(), &during)?;
    if style == OLDSTYLE_MAGIC {
        return Err(NbdError::NotFixedNewstyle {
            reason: "it speaks the oldstyle handshake",
        });
    }
    if style != IHAVEOPT {
        return Err(NbdError::BadMagic {
            what: "newstyle greeting (IHAVEOPT)",
            expected: IHAVEOPT,
            found: style,
        });
    }
    let flags = wire::be16(io.as_mut(), &during)?;
    if flags & FLAG_FIXED_NEWSTYLE == 0 {
        return Err(NbdError::NotFixedNewstyle {
            reason: "newstyle without NBD_FLAG_FIXED_NEWSTYLE",
        });
    }
    let mut client = FLAG_C_FIXED_NEWSTYLE;
    if flags & FLAG_NO_ZEROES != 0 {
        client |= FLAG_C_NO_ZEROES;
    }
    wire::write_all(io.as_mut(), &client.to_be_bytes(), &during)?;
    check_string("export name", export)?;
    if let Some(tls) = tls {
        send_option(io.as_mut(), OPT_STARTTLS, &[])?;
        match read_reply(io.as_mut(), OPT_STARTTLS, false)? {
            Some(r) if r.kind == REP_ACK && r.payload.is_empty() => {}
            _ => {
                let why = "a reply other than NBD_REP_ACK";
                return Err(NbdError::protocol("reply to NBD_OPT_STARTTLS", why));
            }
        }
        let plain = std::mem::replace(io, Box::new(std::io::empty()));
        *io = tls.wrap(plain)?;
    }
    let io = io.as_mut();

    let structured = structured_replies(io)?;
    let contexts = if structured && !contexts.is_empty() {
        meta_contexts(io, export, contexts)?
    } else {
        Vec::new()
    };
    let mut info = go(io, export)?;
    info.structured = structured;
    info.contexts = contexts;
    Ok(info)
}

/// Refuses a string the protocol cannot carry.
fn check_string(what: &'static str, s: &str) -> Result<()> {
    if s.len() > MAX_STRING as usize {
        return Err(NbdError::TooLong {
            during: "handshake".into(),
            what,
            length: s.len() as u64,
            limit: MAX_STRING.into(),
        });
    }
    Ok(())
}

/// Sends option `option` with `data`.
fn send_option(io: &mut dyn Transport, option: u32, data: &[u8]) -> Result<()> {
    let mut msg = Vec::with_capacity(16 + data.len());
    msg.extend_from_slice(&IHAVEOPT.to_be_bytes());
    msg.extend_from_slice(&option.to_be_bytes());
    msg.extend_from_slice(&(data.len() as u32).to_be_bytes());
    msg.extend_from_slice(data);
    wire::write_all(io, &msg, &|| format!("sending {}", option_name(option)))
}

/// Reads one reply to `option`; an error reply becomes [`NbdError::OptionRefused`] unless
/// it is `NBD_REP_ERR_UNSUP` and `unsup_ok`, which returns `None`.
fn read_reply(io: &mut dyn Transport, option: u32, unsup_ok: bool) -> Result<Option<OptionReply>> {
    let during = || format!("reply to {}", option_name(option));
    let magic = wire::be64(io, &during)?;
    if magic != OPTION_REPLY_MAGIC {
        return Err(NbdError::BadMagic {
            what: "option reply",
            expected: OPTION_REPLY_MAGIC,
            found: magic,
        });
    }
    let echoed = wire::be32(io, &during)?;
    if echoed != option {
        return Err(NbdError::protocol(
            during(),
            format!("the reply names option {echoed}, not {option}"),
        ));
    }
    let kind = wire::be32(io, &during)?;
    let length = wire::be32(io, &during)?;
    let payload = wire::bytes(io, length.into(), MAX_OPTION_REPLY, "option reply", &during)?;
    if kind & REP_FLAG_ERROR != 0 {
        if unsup_ok && kind == REP_FLAG_ERROR | 1 {
            return Ok(None);
        }
        return Err(NbdError::OptionRefused {
            option: option_name(option),
            reply: kind,
            message: wire::text(&payload),
        });
    }
    Ok(Some(OptionReply { kind, payload }))
}

/// `NBD_OPT_STRUCTURED_REPLY`: true when the server agrees.
fn structured_replies(io: &mut dyn Transport) -> Result<bool> {
    send_option(io, OPT_STRUCTURED_REPLY, &[])?;
    match read_reply(io, OPT_STRUCTURED_REPLY, true)? {
        None => Ok(false),
        Some(r) if r.kind == REP_ACK && r.payload.is_empty() => Ok(true),
        Some(r) => Err(NbdError::protocol(
            "reply to NBD_OPT_STRUCTURED_REPLY",
            format!(
                "reply type {} with {} bytes, expected NBD_REP_ACK",
                r.kind,
                r.payload.len()
            ),
        )),
    }
}

/// `NBD_OPT_SET_META_CONTEXT` for `export`: the contexts the server chose, with their ids.
fn meta_contexts(
    io: &mut dyn Transport,
    export: &str,
    wanted: &[&str],
) -> Result<Vec<(u32, String)>> {
    let during = || "reply to NBD_OPT_SET_META_CONTEXT".to_string();
    if wanted.len() > MAX_CONTEXTS {
        return Err(NbdError::TooLong {
            during: during(),
            what: "list of metadata contexts",
            length: wanted.len() as u64,
            limit: MAX_CONTEXTS as u64,
        });
    }
    let mut data = Vec::new();
    data.extend_from_slice(&(export.len() as u32).to_be_bytes());
    data.extend_from_slice(export.as_bytes());
    data.extend_from_slice(&(wanted.len() as u32).to_be_bytes());
    for name in wanted {
        check_string("metadata context name", name)?;
        data.extend_from_slice(&(name.len() as u32).to_be_bytes());
        data.extend_from_slice(name.as_bytes());
    }
    send_option(io, OPT_SET_META_CONTEXT, &data)?;
    let mut chosen: Vec<(u32, String)> = Vec::new();
    for _ in 0..MAX_OPTION_REPLIES {
        let Some(reply) = read_reply(io, OPT_SET_META_CONTEXT, true)? else {
            return Ok(Vec::new());
        };
        match reply.kind {
            REP_ACK => return Ok(chosen),
            REP_META_CONTEXT if reply.payload.len() >= 4 => {
                let id = u32::from_be_bytes(reply.payload[..4].try_into().unwrap_or_default());
                let name = wire::text(&reply.payload[4..]);
                if !wanted.contains(&name.as_str()) {
                    return Err(NbdError::protocol(
                        during(),
                        format!("the server chose context {name:?}, which was not asked for"),
                    ));
                }
                if chosen.iter().any(|(i, n)| *i == id || *n == name) {
                    return Err(NbdError::protocol(
                        during(),
                        format!("context {name:?} (id {id}) given twice"),
                    ));
                }
                chosen.push((id, name));
            }
            kind => {
                return Err(NbdError::protocol(
                    during(),
                    format!("reply type {kind} with {} bytes", reply.payload.len()),
                ))
            }
        }
    }
    Err(too_many_replies(during()))
}

/// The error for an option that never ends.
fn too_many_replies(during: String) -> NbdError {
    NbdError::TooLong {
        during,
        what: "list of option replies",
        length: MAX_OPTION_REPLIES as u64 + 1,
        limit: MAX_OPTION_REPLIES as u64,
    }
}

/// `NBD_OPT_GO` for `export`, asking for `NBD_INFO_BLOCK_SIZE`.
fn go(io: &mut dyn Transport, export: &str) -> Result<ExportInfo> {
    let during = || "reply to NBD_OPT_GO".to_string();
    let mut data = Vec::new();
    data.extend_from_slice(&(export.len() as u32).to_be_bytes());
    data.extend_from_slice(export.as_bytes());
    data.extend_from_slice(&1u16.to_be_bytes());
    data.extend_from_slice(&INFO_BLOCK_SIZE.to_be_bytes());
    send_option(io, OPT_GO, &data)?;
    let mut export_info = None;
    let mut sizes = None;
    for _ in 0..MAX_OPTION_REPLIES {
        let Some(reply) = read_reply(io, OPT_GO, false)? else {
            continue; // Not reached: an error reply to NBD_OPT_GO is always an error.
        };
        let p = &reply.payload;
        match reply.kind {
            REP_ACK => {
                let (size, flags) = export_info.ok_or_else(|| {
                    NbdError::protocol(during(), "NBD_REP_ACK before NBD_INFO_EXPORT")
                })?;
                return export_info_of(size, flags, sizes);
            }
            REP_INFO if p.len() >= 2 => match u16::from_be_bytes([p[0], p[1]]) {
                INFO_EXPORT if p.len() == 12 => {
                    let size = u64::from_be_bytes(p[2..10].try_into().unwrap_or_default());
                    export_info = Some((size, u16::from_be_bytes([p[10], p[11]])));
                }
                INFO_BLOCK_SIZE if p.len() == 14 => {
                    let at =
                        |i: usize| u32::from_be_bytes(p[i..i + 4].try_into().unwrap_or_default());
                    sizes = Some((at(2), at(6), at(10)));
                }
                INFO_EXPORT | INFO_BLOCK_SIZE => {
                    return Err(NbdError::protocol(
                        during(),
                        format!("information of the wrong length ({} bytes)", p.len()),
                    ))
                }
                // Names and descriptions: not needed.
                _ => {}
            },
            kind => {
                return Err(NbdError::protocol(
                    during(),
                    format!("reply type {kind} with {} bytes", p.len()),
                ))
            }
        }
    }
    Err(too_many_replies(during()))
}

/// The export's information, its block sizes checked as the protocol constrains them.
fn export_info_of(size: u64, flags: u16, sizes: Option<(u32, u32, u32)>) -> Result<ExportInfo> {
    let bad = |why: String| NbdError::protocol("NBD_INFO_BLOCK_SIZE", why);
    let (min, preferred, max) = sizes.unwrap_or((1, 4096, u32::MAX));
    if !min.is_power_of_two() || min > MAX_MIN_BLOCK {
        return Err(bad(format!(
            "minimum block size {min} is not a power of two up to 64 KiB"
        )));
    }
    if !preferred.is_power_of_two() || preferred < min {
        return Err(bad(format!(
            "preferred block size {preferred} is not a power of two ≥ {min}"
        )));
    }
    if max < min || (max != u32::MAX && max % min != 0) {
        return Err(bad(format!(
            "maximum block size {max} is not a multiple of {min}"
        )));
    }
    if size > i64::MAX as u64 {
        return Err(NbdError::protocol(
            "NBD_INFO_EXPORT",
            format!("export size {size} exceeds 2^63-1"),
        ));
    }
    if flags & TFLAG_HAS_FLAGS == 0 {
        return Err(NbdError::protocol(
            "NBD_INFO_EXPORT",
            "transmission flags without NBD_FLAG_HAS_FLAGS",
        ));
    }
    Ok(ExportInfo {
        size,
        flags,
        min_block: min,
        preferred_block: preferred,
        max_block: max.min(crate::limits::MAX_READ_REQUEST).max(min),
        structured: false,
        contexts: Vec::new(),
    })
}
