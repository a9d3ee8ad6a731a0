//! What a byte range of one extent resolves to: runs of data (at a file offset or inside a
//! compressed grain), declared zeros, host holes, unallocated space (falls through to the
//! parent layer) or unreadable space.

/// The kind of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// Uncompressed bytes starting at this byte offset of the extent's file.
    Data {
        /// Byte offset in the extent file of the run's first byte.
        file_offset: u64,
    },
    /// Bytes inside one compressed grain (streamOptimized).
    Compressed {
        /// Index of the grain inside the extent.
        grain: u64,
        /// Sector of the grain's marker (or of its zlib data when there is no marker).
        sector: u64,
        /// Offset of the run's first byte inside the decompressed grain.
        skip: u64,
    },
    /// Reads as zeros by declaration (zeroed grain, ZERO extent); does not fall through.
    Zero,
    /// A hole in a flat file: reads as zeros, never written, does not fall through.
    Hole,
    /// Not allocated in this layer: read the parent, or zeros when there is none.
    Unallocated,
    /// Cannot be read from the files at hand.
    Unreadable,
}

/// A run of bytes of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Length in bytes.
    pub len: u64,
    /// What those bytes are.
    pub kind: RunKind,
}

/// Appends `run` to `out`, merging it with the previous run when both are the same kind
/// and, for data, contiguous in the file.
pub fn push(out: &mut Vec<Run>, run: Run) {
    if run.len == 0 {
        return;
    }
    if let Some(last) = out.last_mut() {
        let merge = match (last.kind, run.kind) {
            (RunKind::Data { file_offset: a }, RunKind::Data { file_offset: b }) => {
                a.checked_add(last.len) == Some(b)
            }
            (RunKind::Compressed { .. }, _) | (_, RunKind::Compressed { .. }) => false,
            (a, b) => a == b,
        };
        if merge {
            last.len += run.len;
            return;
        }
    }
    out.push(run);
}
