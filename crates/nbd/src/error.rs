//! [`NbdError`]: every way talking to an NBD server can fail, each saying what was being
//! done and what the server sent instead. Callers outside this crate see it inside a
//! `diskray_core::Error` (see [`NbdError::into_core`]).

use crate::proto;
use std::io;

/// What went wrong with an NBD server.
#[derive(Debug, thiserror::Error)]
pub enum NbdError {
    /// The URI is not an NBD URI this client can use.
    #[error("{uri}: {reason}")]
    Uri {
        /// The URI as given.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// TLS could not be set up: certificates that cannot be read, or a TLS handshake
    /// that failed (a certificate the client does not trust, a name that does not match).
    #[error("{during}: {reason}")]
    Tls {
        /// What was being done.
        during: String,
        /// Why it failed.
        reason: String,
    },
    /// Connecting, reading or writing failed (the operating system's answer), or the
    /// server did not answer within the timeout.
    #[error("{during}: {source}")]
    Io {
        /// What was being done.
        during: String,
        /// The operating system's answer.
        source: io::Error,
    },
    /// The server closed the connection.
    #[error("{during}: the server closed the connection")]
    Closed {
        /// What was being done.
        during: String,
    },
    /// The server did not answer within the timeout.
    #[error("{during}: no answer from the server within {seconds} s")]
    Timeout {
        /// What was being done.
        during: String,
        /// The timeout.
        seconds: u64,
    },
    /// A magic number is not the protocol's.
    #[error("{what}: expected magic {expected:#x}, found {found:#x}")]
    BadMagic {
        /// Which magic.
        what: &'static str,
        /// The protocol's.
        expected: u64,
        /// The server's.
        found: u64,
    },
    /// The server does not speak the fixed newstyle handshake.
    #[error("the server does not speak the fixed newstyle handshake ({reason})")]
    NotFixedNewstyle {
        /// What it speaks instead.
        reason: &'static str,
    },
    /// The server answered an option with an error reply.
    #[error("the server refused {option}: {}{}", proto::option_error_name(*.reply), message_suffix(.message))]
    OptionRefused {
        /// The option's name.
        option: &'static str,
        /// The error reply type.
        reply: u32,
        /// The server's message, if any.
        message: String,
    },
    /// The server did something the protocol does not allow, or that this client did not
    /// negotiate.
    #[error("{during}: protocol violation: {reason}")]
    Protocol {
        /// What was being done.
        during: String,
        /// What the server did.
        reason: String,
    },
    /// A length in a server reply is longer than this client accepts (a named bound of
    /// `limits`) or than the protocol allows.
    #[error("{during}: {what} of {length} bytes is longer than the {limit} bytes accepted")]
    TooLong {
        /// What was being done.
        during: String,
        /// Which length.
        what: &'static str,
        /// The server's.
        length: u64,
        /// The bound.
        limit: u64,
    },
    /// A reply names a request (by its cookie) that is not waiting for one.
    #[error("{during}: reply for cookie {cookie}, which names no request in flight")]
    UnknownCookie {
        /// What was being done.
        during: String,
        /// The cookie the server sent.
        cookie: u64,
    },
    /// The server answered a request with an error.
    #[error("the server failed {command} of {length} bytes at byte {offset}: {}{}", proto::error_name(*.error), message_suffix(.message))]
    Server {
        /// `NBD_CMD_READ` or `NBD_CMD_BLOCK_STATUS`.
        command: &'static str,
        /// The request's offset (or the offset the server named).
        offset: u64,
        /// The request's length.
        length: u32,
        /// The NBD error value.
        error: u32,
        /// The server's message, if any.
        message: String,
    },
    /// Block status of a metadata context the server did not agree to.
    #[error("the server offers no metadata context {name:?} (negotiated: {negotiated})")]
    NoContext {
        /// The context asked for.
        name: String,
        /// The contexts the server agreed to.
        negotiated: String,
    },
    /// An earlier error left the connection in an unknown state; it is not used again.
    #[error("the connection is unusable after an earlier error: {first}")]
    Broken {
        /// The first error.
        first: String,
    },
}

impl NbdError {
    /// An [`NbdError::Io`], or [`NbdError::Closed`] when the server closed the connection.
    pub fn io(during: impl Into<String>, source: io::Error) -> NbdError {
        let during = during.into();
        match source.kind() {
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted => NbdError::Closed { during },
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => NbdError::Timeout {
                during,
                seconds: crate::limits::TIMEOUT.as_secs(),
            },
            _ => NbdError::Io { during, source },
        }
    }

    /// An [`NbdError::Protocol`].
    pub fn protocol(during: impl Into<String>, reason: impl Into<String>) -> NbdError {
        NbdError::Protocol {
            during: during.into(),
            reason: reason.into(),
        }
    }

    /// The error as a `diskray_core::Error` naming the export `uri` and, for a transfer,
    /// the guest `offset`; the typed error stays inside (`downcast_ref::<NbdError>()` on
    /// the `io::Error`'s inner error).
    pub fn into_core(self, uri: &str, offset: Option<u64>) -> diskray_core::Error {
        let path = std::path::PathBuf::from(uri);
        let source = io::Error::other(self);
        match offset {
            Some(offset) => diskray_core::Error::Io {
                path,
                offset,
                source,
            },
            None => diskray_core::Error::Open { path, source },
        }
    }
}

/// `": MESSAGE"`, or nothing for an empty message.
fn message_suffix(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

/// Shorthand for results carrying an [`NbdError`].
pub type Result<T, E = NbdError> = std::result::Result<T, E>;
