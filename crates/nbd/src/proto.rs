//! The numbers of the NBD protocol that this client sends or checks: magics, options,
//! option replies, information types, transmission flags, commands, reply chunk types,
//! error values and the `base:allocation` state bits. Each group is described in
//! `docs/nbd.md` (section given on the group); all integers on the wire are big-endian.

// docs/nbd.md §2: the handshake's magics and flags.
/// `NBDMAGIC`: the first eight bytes a server sends.
pub const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
/// `IHAVEOPT`: the newstyle magic after `NBDMAGIC`, and the prefix of every option.
pub const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
/// The oldstyle magic (`0x00420281861253`), refused: it has no export names.
pub const OLDSTYLE_MAGIC: u64 = 0x0000_4202_8186_1253;
/// The magic that starts every option reply.
pub const OPTION_REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
/// Handshake flag: the server speaks fixed newstyle.
pub const FLAG_FIXED_NEWSTYLE: u16 = 1 << 0;
/// Handshake flag: the server omits the 124 zero bytes after `NBD_OPT_EXPORT_NAME`.
pub const FLAG_NO_ZEROES: u16 = 1 << 1;
/// Client flag: the client speaks fixed newstyle.
pub const FLAG_C_FIXED_NEWSTYLE: u32 = 1 << 0;
/// Client flag: the client does not want the 124 zero bytes.
pub const FLAG_C_NO_ZEROES: u32 = 1 << 1;

// docs/nbd.md §3: options and their replies.
/// `NBD_OPT_ABORT`: the client ends the handshake.
pub const OPT_ABORT: u32 = 2;
/// `NBD_OPT_STARTTLS` (not sent: TLS is not supported yet).
pub const OPT_STARTTLS: u32 = 5;
/// `NBD_OPT_GO`: choose the export and enter transmission.
pub const OPT_GO: u32 = 7;
/// `NBD_OPT_STRUCTURED_REPLY`: ask for structured replies.
pub const OPT_STRUCTURED_REPLY: u32 = 8;
/// `NBD_OPT_SET_META_CONTEXT`: choose the metadata contexts of block status.
pub const OPT_SET_META_CONTEXT: u32 = 10;

/// `NBD_REP_ACK`: the option is done.
pub const REP_ACK: u32 = 1;
/// `NBD_REP_INFO`: one piece of information about the export (`NBD_OPT_GO`).
pub const REP_INFO: u32 = 3;
/// `NBD_REP_META_CONTEXT`: one metadata context the server chose, with its id.
pub const REP_META_CONTEXT: u32 = 4;
/// The bit that marks an option reply as an error.
pub const REP_FLAG_ERROR: u32 = 1 << 31;

/// `NBD_INFO_EXPORT`: size and transmission flags.
pub const INFO_EXPORT: u16 = 0;
/// `NBD_INFO_BLOCK_SIZE`: minimum, preferred and maximum block sizes.
pub const INFO_BLOCK_SIZE: u16 = 3;

/// The name of an option, for messages.
pub fn option_name(option: u32) -> &'static str {
    match option {
        1 => "NBD_OPT_EXPORT_NAME",
        OPT_ABORT => "NBD_OPT_ABORT",
        OPT_STARTTLS => "NBD_OPT_STARTTLS",
        OPT_GO => "NBD_OPT_GO",
        OPT_STRUCTURED_REPLY => "NBD_OPT_STRUCTURED_REPLY",
        OPT_SET_META_CONTEXT => "NBD_OPT_SET_META_CONTEXT",
        _ => "an unknown option",
    }
}

/// The name of an error option reply, for messages.
pub fn option_error_name(reply: u32) -> &'static str {
    match reply & !REP_FLAG_ERROR {
        1 => "NBD_REP_ERR_UNSUP (not supported)",
        2 => "NBD_REP_ERR_POLICY (forbidden by the server's policy)",
        3 => "NBD_REP_ERR_INVALID (invalid request)",
        4 => "NBD_REP_ERR_PLATFORM (not supported on the server's platform)",
        5 => "NBD_REP_ERR_TLS_REQD (the server requires TLS)",
        6 => "NBD_REP_ERR_UNKNOWN (no such export)",
        7 => "NBD_REP_ERR_SHUTDOWN (the server is shutting down)",
        8 => "NBD_REP_ERR_BLOCK_SIZE_REQD (the server requires block size negotiation)",
        9 => "NBD_REP_ERR_TOO_BIG (request too big)",
        10 => "NBD_REP_ERR_EXT_HEADER_REQD (the server requires extended headers)",
        _ => "an unknown error reply",
    }
}

// docs/nbd.md §4: transmission flags of the export.
/// `NBD_FLAG_HAS_FLAGS`: always set by a conforming server.
pub const TFLAG_HAS_FLAGS: u16 = 1 << 0;
/// `NBD_FLAG_READ_ONLY`: the export is read-only.
pub const TFLAG_READ_ONLY: u16 = 1 << 1;
/// `NBD_FLAG_SEND_DF`: the server honours `NBD_CMD_FLAG_DF` (one chunk per read).
pub const TFLAG_SEND_DF: u16 = 1 << 7;
/// `NBD_FLAG_CAN_MULTI_CONN`: several connections see one consistent export.
pub const TFLAG_CAN_MULTI_CONN: u16 = 1 << 8;

/// The names of the transmission flags set in `flags`, as `diskray info` shows them.
pub fn flag_names(flags: u16) -> Vec<&'static str> {
    const NAMES: [&str; 13] = [
        "has-flags",
        "read-only",
        "flush",
        "fua",
        "rotational",
        "trim",
        "write-zeroes",
        "df",
        "multi-conn",
        "resize",
        "cache",
        "fast-zero",
        "block-status-payload",
    ];
    (0..16)
        .filter(|bit| flags & (1 << bit) != 0)
        .map(|bit| NAMES.get(bit).copied().unwrap_or("unknown"))
        .collect()
}

// docs/nbd.md §5: requests.
/// The magic of every request.
pub const REQUEST_MAGIC: u32 = 0x2560_9513;
/// `NBD_CMD_READ`.
pub const CMD_READ: u16 = 0;
/// `NBD_CMD_DISC`: the client disconnects (no reply).
pub const CMD_DISC: u16 = 2;
/// `NBD_CMD_BLOCK_STATUS`.
pub const CMD_BLOCK_STATUS: u16 = 7;
/// `NBD_CMD_FLAG_DF`: do not fragment a read's reply.
pub const CMD_FLAG_DF: u16 = 1 << 2;

// docs/nbd.md §6: replies.
/// The magic of a simple reply.
pub const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;
/// The magic of a structured reply chunk.
pub const STRUCTURED_REPLY_MAGIC: u32 = 0x668e_33ef;
/// The magic of an extended-header reply chunk (never negotiated, so refused).
pub const EXTENDED_REPLY_MAGIC: u32 = 0x6e8a_278c;
/// Chunk flag: the last chunk of the reply.
pub const REPLY_FLAG_DONE: u16 = 1 << 0;
/// `NBD_REPLY_TYPE_NONE`: no payload (the final chunk of a reply).
pub const REPLY_TYPE_NONE: u16 = 0;
/// `NBD_REPLY_TYPE_OFFSET_DATA`: u64 offset, then data.
pub const REPLY_TYPE_OFFSET_DATA: u16 = 1;
/// `NBD_REPLY_TYPE_OFFSET_HOLE`: u64 offset, u32 length of zeros.
pub const REPLY_TYPE_OFFSET_HOLE: u16 = 2;
/// `NBD_REPLY_TYPE_BLOCK_STATUS`: u32 context id, then (u32 length, u32 flags) extents.
pub const REPLY_TYPE_BLOCK_STATUS: u16 = 5;
/// The bit that marks a chunk type as an error.
pub const REPLY_TYPE_ERROR_BIT: u16 = 1 << 15;
/// `NBD_REPLY_TYPE_ERROR`: u32 error, u16 message length, message.
pub const REPLY_TYPE_ERROR: u16 = REPLY_TYPE_ERROR_BIT + 1;
/// `NBD_REPLY_TYPE_ERROR_OFFSET`: as `NBD_REPLY_TYPE_ERROR`, then the u64 offset.
pub const REPLY_TYPE_ERROR_OFFSET: u16 = REPLY_TYPE_ERROR_BIT + 2;

/// The name of an NBD error value (they are errno values of Linux), for messages.
pub fn error_name(error: u32) -> &'static str {
    match error {
        1 => "EPERM (operation not permitted)",
        5 => "EIO (input/output error)",
        12 => "ENOMEM (cannot allocate memory)",
        22 => "EINVAL (invalid argument)",
        28 => "ENOSPC (no space left on device)",
        75 => "EOVERFLOW (value too large)",
        95 => "ENOTSUP (operation not supported)",
        108 => "ESHUTDOWN (the server is shutting down)",
        _ => "an error value outside the protocol",
    }
}

// docs/nbd.md §7: metadata contexts.
/// The context of allocation: holes and zeros.
pub const BASE_ALLOCATION: &str = "base:allocation";
/// `base:allocation`: the extent is not allocated (a hole).
pub const STATE_HOLE: u32 = 1 << 0;
/// `base:allocation`: the extent reads as zeros.
pub const STATE_ZERO: u32 = 1 << 1;
/// The NBD port the URI standard defaults to.
pub const DEFAULT_PORT: u16 = 10809;
