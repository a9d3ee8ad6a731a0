//! The error type of every diskray crate: each error says what, where (file and byte
//! offset) and why.

use std::io;
use std::path::{Path, PathBuf};

/// Shorthand for results carrying a diskray [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, where, and why.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be opened or inspected.
    #[error("{}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The operating system's answer.
        source: io::Error,
    },
    /// Reading or writing at a position failed.
    #[error("{}: at byte {offset}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Where the failed access started.
        offset: u64,
        /// The operating system's answer.
        source: io::Error,
    },
    /// The file's content is malformed or inconsistent at a known position.
    #[error("{}: at byte {offset}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset of the offending structure or field.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The file is refused as a whole (unsupported feature, policy refusal, bad reference).
    #[error("{}: {reason}", path.display())]
    Refused {
        /// The file.
        path: PathBuf,
        /// Why it is refused.
        reason: String,
    },
    /// A request that does not fit the disk (for example a read past its capacity).
    #[error("{0}")]
    Request(String),
    /// The file is a disk image in a format diskray recognises but cannot read yet.
    #[error("{}: {format} image: not supported yet; convert it with {advice}", path.display())]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// The format with its article, as people say it: `a qcow2`, `an E01`.
        format: &'static str,
        /// The command that turns it into a raw image diskray reads.
        advice: &'static str,
    },
}

impl Error {
    /// A [`Error::Corrupt`] for `path` at `offset`.
    pub fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.to_path_buf(),
            offset,
            reason: reason.into(),
        }
    }

    /// A [`Error::Refused`] for `path`.
    pub fn refused(path: &Path, reason: impl Into<String>) -> Self {
        Error::Refused {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    /// A [`Error::Io`] for `path` at `offset`.
    pub fn io(path: &Path, offset: u64, source: io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            offset,
            source,
        }
    }
}
