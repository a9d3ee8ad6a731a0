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
    /// A read past the end of something of fixed size: a disk's capacity, an image's.
    #[error(
        "{what}: read of {length} bytes at byte {offset} runs past the capacity ({limit} bytes)"
    )]
    OutOfRange {
        /// What was read: the disk's file, or a name such as `memory disk`.
        what: String,
        /// Where the read started.
        offset: u64,
        /// How many bytes it asked for.
        length: u64,
        /// The size it ran past.
        limit: u64,
    },
    /// A lookup by name found nothing: a path in a filesystem, a partition, a deleted entry.
    #[error("{within}: {}{}", kind.phrase(.name), note_suffix(.note))]
    NotFound {
        /// What was looked for.
        kind: Lookup,
        /// The name looked up, as shown to people (escaped or quoted).
        name: String,
        /// Where it was looked up: the filesystem's or the disk's label.
        within: String,
        /// What exists instead, or where to look (empty when there is nothing to add).
        note: String,
    },
    /// A volume holds nothing diskray can list files of: no filesystem it recognises, or
    /// one whose files it does not read.
    #[error("{}{} holds {content}", path.display(), partition_suffix(.partition))]
    UnsupportedContent {
        /// The disk.
        path: PathBuf,
        /// The partition's index, or `None` for a filesystem on the whole disk.
        partition: Option<u32>,
        /// What it holds, as people say it (`btrfs, which diskray cannot list yet`).
        content: String,
    },
    /// A value the user gave that cannot be honoured (a change id, a chunk size, a name).
    #[error("{argument} {value}: {reason}")]
    InvalidArgument {
        /// The argument or kind of value: `--chunk-size`, `change id`, `backup name`.
        argument: &'static str,
        /// The value as shown to people (text quoted, numbers bare).
        value: String,
        /// Why it is refused, and what is accepted instead.
        reason: String,
    },
    /// Writing output (file data, a listing, the map) failed.
    #[error("writing {what}{}: {source}", target_suffix(.target))]
    Output {
        /// What was being written: `file data`, `the map`.
        what: &'static str,
        /// Where it went (`standard output`, a file), when the writer knows it; a
        /// filesystem copying a file's data into a caller's writer does not.
        target: Option<PathBuf>,
        /// The operating system's (or the serialiser's) answer.
        source: io::Error,
    },
    /// A pool of threads could not be started.
    #[error("cannot start {count} {purpose} threads: {reason}")]
    Threads {
        /// How many threads were asked for.
        count: usize,
        /// What they were for: `worker`, `reader`.
        purpose: &'static str,
        /// The thread library's answer.
        reason: String,
    },
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

    /// An [`Error::OutOfRange`]: a read of `length` bytes at `offset` past `limit`.
    pub fn out_of_range(what: impl Into<String>, offset: u64, length: u64, limit: u64) -> Self {
        Error::OutOfRange {
            what: what.into(),
            offset,
            length,
            limit,
        }
    }

    /// An [`Error::NotFound`]; `note` (may be empty) says what exists or where to look.
    pub fn not_found(
        kind: Lookup,
        name: impl Into<String>,
        within: impl Into<String>,
        note: impl Into<String>,
    ) -> Self {
        Error::NotFound {
            kind,
            name: name.into(),
            within: within.into(),
            note: note.into(),
        }
    }

    /// An [`Error::InvalidArgument`].
    pub fn invalid(
        argument: &'static str,
        value: impl ToString,
        reason: impl Into<String>,
    ) -> Self {
        Error::InvalidArgument {
            argument,
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// An [`Error::Output`] for a writer whose target the caller does not know.
    pub fn output(what: &'static str, source: io::Error) -> Self {
        Error::Output {
            what,
            target: None,
            source,
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

/// What an [`Error::NotFound`] lookup was for; each says it the way people expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// A path in a filesystem (`no such file or directory: PATH`, as the C library says).
    Path,
    /// A partition, by index, name or label (`no partition "9"`).
    Partition,
    /// A deleted directory entry (`no deleted entry PATH`).
    DeletedEntry,
}

impl Lookup {
    /// `no … NAME`, the phrase for this kind of lookup.
    fn phrase(self, name: &str) -> String {
        match self {
            Lookup::Path => format!("no such file or directory: {name}"),
            Lookup::Partition => format!("no partition {name}"),
            Lookup::DeletedEntry => format!("no deleted entry {name}"),
        }
    }
}

/// `"; note"`, or nothing for an empty note.
fn note_suffix(note: &str) -> String {
    if note.is_empty() {
        String::new()
    } else {
        format!("; {note}")
    }
}

/// `": partition N"`, or nothing for the whole disk.
fn partition_suffix(partition: &Option<u32>) -> String {
    partition
        .map(|n| format!(": partition {n}"))
        .unwrap_or_default()
}

/// `" to TARGET"`, or nothing when the target is unknown.
fn target_suffix(target: &Option<PathBuf>) -> String {
    target
        .as_ref()
        .map(|t| format!(" to {}", t.display()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages people read (and the CLI tests match parts of) keep their shape.
    #[test]
    fn messages_say_what_and_where() {
        let cases = [
            (
                Error::out_of_range("d.img", 4096, 512, 4000),
                "d.img: read of 512 bytes at byte 4096 runs past the capacity (4000 bytes)",
            ),
            (
                Error::not_found(Lookup::Path, "/etc/x", "d.img (ext4)", ""),
                "d.img (ext4): no such file or directory: /etc/x",
            ),
            (
                Error::not_found(Lookup::Partition, "\"9\"", "d.img", "volumes: 1 (ext4)"),
                "d.img: no partition \"9\"; volumes: 1 (ext4)",
            ),
            (
                Error::UnsupportedContent {
                    path: "d.img".into(),
                    partition: None,
                    content: "btrfs, which diskray cannot list yet".into(),
                },
                "d.img holds btrfs, which diskray cannot list yet",
            ),
            (
                Error::UnsupportedContent {
                    path: "d.img".into(),
                    partition: Some(2),
                    content: "swap".into(),
                },
                "d.img: partition 2 holds swap",
            ),
            (
                Error::invalid("block size", 1000, "must be a power of two"),
                "block size 1000: must be a power of two",
            ),
            (
                Error::output("file data", io::Error::other("disk full")),
                "writing file data: disk full",
            ),
            (
                Error::Output {
                    what: "the map",
                    target: Some("standard output".into()),
                    source: io::Error::other("disk full"),
                },
                "writing the map to standard output: disk full",
            ),
            (
                Error::Threads {
                    count: 4,
                    purpose: "worker",
                    reason: "no memory".into(),
                },
                "cannot start 4 worker threads: no memory",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.to_string(), want);
        }
    }
}
