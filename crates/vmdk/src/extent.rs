//! One extent of a layer, whatever its kind, behind one interface: resolve a range into
//! runs, read a data run.
//!
//! Sources: VMware "Virtual Disk Format 1.1" (extent kinds); `docs/formats.md` §1.6
//! (FLAT/ZERO/NOACCESS/RDONLY/device semantics and the recommended handling).

use crate::cowd::CowdExtent;
use crate::descriptor::{Access, ExtentLine};
use crate::run::{self, Run, RunKind};
use crate::sesparse::SeSparseExtent;
use crate::sparse::SparseExtent;
use diskray_core::{ByteRange, Error, FileSource, Result};

/// The engine behind an extent.
#[derive(Debug)]
pub enum ExtentData {
    /// Hosted sparse or streamOptimized.
    Sparse(Box<SparseExtent>),
    /// ESXi redo log.
    Cowd(Box<CowdExtent>),
    /// ESXi seSparse.
    SeSparse(Box<SeSparseExtent>),
    /// Raw bytes of `file` from byte `start`.
    Flat {
        /// The file.
        file: FileSource,
        /// Byte offset of the extent inside the file.
        start: u64,
    },
    /// Zeros, no file.
    Zero,
    /// NOACCESS: a read is an error.
    NoAccess,
    /// A raw device or LUN that is not part of the files at hand.
    Device,
}

/// An extent placed in its layer.
#[derive(Debug)]
pub struct Extent {
    /// The descriptor line that declared it.
    pub line: ExtentLine,
    /// Byte offset of the extent inside the layer.
    pub start: u64,
    /// Length in bytes (from the descriptor).
    pub len: u64,
    /// The engine.
    pub data: ExtentData,
}

impl Extent {
    /// Resolves `[off, off + len)` (extent-relative) into runs. With `for_map`, flat extents
    /// are split at host holes (for reading they are one data run).
    pub fn runs(&self, off: u64, len: u64, for_map: bool, out: &mut Vec<Run>) -> Result<()> {
        match &self.data {
            ExtentData::Sparse(s) => s.runs(off, len, out),
            ExtentData::Cowd(c) => c.runs(off, len, out),
            ExtentData::SeSparse(s) => s.runs(off, len, out),
            ExtentData::Flat { file, start } => {
                let whole = ByteRange::new(start + off, len);
                if !for_map {
                    run::push(
                        out,
                        Run {
                            len,
                            kind: RunKind::Data {
                                file_offset: whole.start,
                            },
                        },
                    );
                    return Ok(());
                }
                let mut pos = whole.start;
                for data in file.data_ranges(whole)? {
                    run::push(
                        out,
                        Run {
                            len: data.start - pos,
                            kind: RunKind::Hole,
                        },
                    );
                    run::push(
                        out,
                        Run {
                            len: data.length,
                            kind: RunKind::Data {
                                file_offset: data.start,
                            },
                        },
                    );
                    pos = data.end();
                }
                run::push(
                    out,
                    Run {
                        len: whole.end() - pos,
                        kind: RunKind::Hole,
                    },
                );
                Ok(())
            }
            ExtentData::Zero => {
                run::push(
                    out,
                    Run {
                        len,
                        kind: RunKind::Zero,
                    },
                );
                Ok(())
            }
            ExtentData::NoAccess | ExtentData::Device => {
                run::push(
                    out,
                    Run {
                        len,
                        kind: RunKind::Unreadable,
                    },
                );
                Ok(())
            }
        }
    }

    /// Reads a data or compressed run of this extent into `buf` (exactly the run's length).
    pub fn read(&self, kind: RunKind, buf: &mut [u8]) -> Result<()> {
        match (kind, &self.data) {
            (RunKind::Data { file_offset }, data) => {
                let file = match data {
                    ExtentData::Sparse(s) => s.file(),
                    ExtentData::Cowd(c) => c.file(),
                    ExtentData::SeSparse(s) => s.file(),
                    ExtentData::Flat { file, .. } => file,
                    _ => unreachable!("only file-backed extents produce data runs"),
                };
                file.read_exact_at(buf, file_offset)
            }
            (
                RunKind::Compressed {
                    grain,
                    sector,
                    skip,
                },
                ExtentData::Sparse(s),
            ) => s.read_compressed(grain, sector, skip, buf),
            _ => unreachable!("read is only called for data runs"),
        }
    }

    /// The error for a read of an unreadable run of this extent, named by `descriptor`.
    pub fn unreadable(&self, descriptor: &std::path::Path, at: u64) -> Error {
        let why = match (&self.data, self.line.access) {
            (ExtentData::NoAccess, _) | (_, Access::NoAccess) => {
                "a NOACCESS extent: VMware refuses reads there".to_string()
            }
            _ => format!(
                "a {} device extent, which is not part of these files",
                self.line.kind.name()
            ),
        };
        Error::refused(
            descriptor,
            format!(
                "disk byte {at} is in {why} (descriptor line {})",
                self.line.line
            ),
        )
    }

    /// The file behind the extent, if any.
    pub fn file(&self) -> Option<&FileSource> {
        match &self.data {
            ExtentData::Sparse(s) => Some(s.file()),
            ExtentData::Cowd(c) => Some(c.file()),
            ExtentData::SeSparse(s) => Some(s.file()),
            ExtentData::Flat { file, .. } => Some(file),
            _ => None,
        }
    }
}
