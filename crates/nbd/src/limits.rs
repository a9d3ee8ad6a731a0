//! Every bound this client puts on what a server sends or on what it asks for, each with
//! its reason. A server that goes past one gets a typed error, never a large allocation.

use std::time::Duration;

/// The longest option reply payload read: the longest thing we ask for is an export's
/// information (a few bytes) or a context name (at most [`MAX_STRING`]), and the protocol
/// caps names and descriptions at 4 KiB.
pub const MAX_OPTION_REPLY: u32 = 16 * 1024;
/// The longest string (export name, context name, error message) sent or accepted: the
/// protocol's own limit on names and messages.
pub const MAX_STRING: u32 = 4096;
/// The most option replies one option may take (information and context replies before
/// the final ACK): a server that sends more is looping.
pub const MAX_OPTION_REPLIES: usize = 256;
/// The most metadata contexts asked for on one connection: `base:allocation` and a few
/// dirty bitmaps.
pub const MAX_CONTEXTS: usize = 16;
/// The largest read request: the protocol's advice for clients (32 MiB), used when the
/// server does not advertise a maximum block size, and the cap when it advertises more.
pub const MAX_READ_REQUEST: u32 = 32 * 1024 * 1024;
/// The read request size used when the server's maximum allows it: large enough to stream,
/// small enough that several are in flight within one guest read.
pub const PREFERRED_READ_REQUEST: u32 = 2 * 1024 * 1024;
/// The largest minimum block size accepted (the protocol allows at most 64 KiB).
pub const MAX_MIN_BLOCK: u32 = 64 * 1024;
/// The most requests in flight on one connection at once (pipelined reads of one
/// guest read): enough to keep the server busy, few enough for any server's queue.
pub const MAX_IN_FLIGHT: usize = 16;
/// The most chunks one reply may take: a read of [`MAX_READ_REQUEST`] bytes in 512-byte
/// pieces would need 65,536; a server that sends more is looping.
pub const MAX_CHUNKS_PER_REPLY: usize = 65_536;
/// The longest block status chunk accepted: a 4-byte context id and 8 bytes per extent,
/// so 131,071 extents (a [`BLOCK_STATUS_SPAN`] in 8 KiB extents; a server with finer
/// extents answers for a prefix, and the rest is asked for next).
pub const MAX_BLOCK_STATUS_PAYLOAD: u32 = 1024 * 1024;
/// The span one block status request asks about: a u32 length, kept to 1 GiB so that
/// a server answering with 512-byte extents stays within [`MAX_BLOCK_STATUS_PAYLOAD`]
/// on most disks, and a fragmented map is walked in steps.
pub const BLOCK_STATUS_SPAN: u64 = 1 << 30;
/// The most connections to one export when the server allows several
/// (`NBD_FLAG_CAN_MULTI_CONN`): the parallelism of the machine's readers.
pub const MAX_CONNECTIONS: usize = 4;
/// How long a connection waits for the server before giving up (connect, handshake, a
/// reply): a live server answers a read of a few MiB well within it.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// How long an extra connection of the pool may take to connect and negotiate: a server
/// that accepts only one client (`qemu-nbd` without `--shared`) leaves it waiting, and the
/// disk is then read through the connections it has.
pub const EXTRA_CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);
