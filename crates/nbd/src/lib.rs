//! A Network Block Device client, and an NBD export as a `diskray_core::VirtualDisk`.
//!
//! It speaks what diskray needs of the protocol (`docs/nbd.md` has every number and reply
//! shape the code relies on): NBD URIs (`nbd://HOST[:PORT]/EXPORT`,
//! `nbd+unix:///EXPORT?socket=PATH`, and `nbds://`, `nbds+unix://` with
//! `?tls-certificates=DIR`), the fixed newstyle handshake, TLS (`NBD_OPT_STARTTLS`, then
//! rustls with X.509 certificates laid out as QEMU's `tls-creds-x509`: [`tls`]),
//! structured replies, `NBD_OPT_GO` with
//! `NBD_INFO_BLOCK_SIZE` honoured (reads aligned to the minimum and split at the maximum),
//! `NBD_CMD_READ` pipelined ([`limits::MAX_IN_FLIGHT`] requests in flight), block status
//! of `base:allocation` and of any other negotiated context such as
//! `qemu:dirty-bitmap:NAME` ([`NbdDisk::extents`]), several connections when the server
//! advertises `NBD_FLAG_CAN_MULTI_CONN`, a timeout on every wait, `NBD_CMD_DISC` on drop.
//! Every length a server sends is checked against a named bound in [`limits`] before it
//! is used; every failure is a typed [`NbdError`].
//!
//! ## Why not a crate
//!
//! Written here because no crate reachable from this project's registry does the job
//! (evaluated 2026-12):
//! - libnbd's Rust bindings (`libnbd`, `libnbd-sys`) are not published on crates.io;
//!   they build only from libnbd's source tree, need the C library (Debian 12 ships
//!   libnbd 1.14, older than the bindings), and are LGPL.
//! - `nbd` 0.3 (the one pure-Rust client on crates.io) negotiates neither structured
//!   replies nor metadata contexts, has no block status, no block size negotiation, one
//!   request at a time through `Read + Seek`, and allocates from server lengths.
//! - `tokio-nbd` and `nbdkit` are servers (and the first is GPL, and async).
//!
//! Blocking `std::net` / `UnixStream` I/O is enough: diskray's readers are threads. TLS
//! is rustls with the ring provider (aws-lc-rs, rustls's default, needs cmake and NASM).

#![warn(missing_docs)]

pub mod conn;
pub mod disk;
pub mod error;
pub mod handshake;
pub mod limits;
pub mod overlay;
pub mod proto;
pub mod reply;
pub mod requests;
pub mod server;
pub mod tls;
pub mod uri;
pub mod wire;

pub use conn::{Connection, Extent};
pub use disk::NbdDisk;
pub use error::NbdError;
pub use handshake::ExportInfo;
pub use uri::{is_nbd_uri, Uri};
