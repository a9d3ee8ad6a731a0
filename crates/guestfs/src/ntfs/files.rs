//! The file view of NTFS, through the `ntfs` crate: the `$I30` index of each directory
//! (DOS 8.3 aliases skipped, so a file is listed once per real name), resident and
//! non-resident `$DATA`, sparse runs as zeros, alternate data streams listed as
//! `name:stream`, LZNT1-compressed streams (decompressed here: the crate does not),
//! reparse-point symlinks, and deleted MFT records (in-use flag clear) with their name,
//! size, runs and whether their clusters were reused. Encrypted streams are refused with a
//! clear message.
//!
//! Records in use that no directory index names (orphans) are listed as TSK lists them:
//! a directory also lists the records whose `$FILE_NAME` names it as parent (record and
//! sequence number) that its index lacks; records whose every name points to a parent that
//! is not a directory in use at that sequence number are listed under a virtual root
//! directory `$OrphanFiles` (numbered one past the last record, as TSK numbers it). Both
//! come from one scan of `$MFT` ([`super::mft`]), made when a directory is first
//! listed. Records are read through [`crate::ntfs::Reader`], which reads a record that
//! straddles two `$MFT` runs across them (the crate reads records contiguously).
//!
//! Sources: the `ntfs` crate 0.4; `docs/formats.md` §3.3 (FILE records, attributes,
//! runs); TSK `ntfs.c` for how deleted records are found (scan of every MFT record), TSK
//! `ntfs_dent.cpp` (parent map: a directory lists the records naming it that its index
//! lacks) and `fs_dir.c` (`$OrphanFiles`).

use super::{Ntfs, Reader};
use crate::files::{copy_pieces, FileHandle, FileType, FileView, Piece};
use crate::Filesystem;
use diskray_core::{ByteRange, Error, RangeSet, Result};
use ntfs::attribute_value::NtfsAttributeValue;
use ntfs::structured_values::{NtfsFileName, NtfsFileNamespace};
use ntfs::{NtfsAttribute, NtfsAttributeFlags, NtfsAttributeType, NtfsFile, NtfsFileFlags};
use std::collections::HashSet;
use std::io::{Read, Write};

/// The root directory's record.
const ROOT: u64 = 5;
/// Records below this are the filesystem's own metafiles; they are not listed.
const FIRST_USER_RECORD: u64 = 16;
/// The virtual root directory that holds records in use that no directory can list
/// (TSK's name for it).
const ORPHAN_DIR: &str = "$OrphanFiles";
/// How NTFS finds an entry again: its file record and data stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct NtfsHandle {
    /// MFT record number.
    pub(crate) record: u64,
    /// Stream name (empty = the unnamed stream).
    pub(crate) stream: String,
}

impl FileHandle for NtfsHandle {}

/// The entries of this file view.
type Entry = crate::files::Entry<NtfsHandle>;

/// Bytes copied per read when extracting.
const STREAM_CHUNK: usize = 1 << 20;

/// 100-ns intervals between 1601-01-01 and 1970-01-01.
const NT_EPOCH_OFFSET: u64 = 116_444_736_000_000_000;

/// File attribute: the file has a reparse point.
const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x400;
/// Reparse tag of a symbolic link.
const TAG_SYMLINK: u32 = 0xA000_000C;
/// Reparse tag of a mount point (junction).
const TAG_MOUNT_POINT: u32 = 0xA000_0003;
/// Largest reparse point accepted (Windows limits them to 16 KiB).
const REPARSE_MAX: u64 = 16 * 1024;

/// The print name (else the substitute name) of a symlink or mount-point reparse buffer,
/// with backslashes turned into `/`.
fn parse_reparse(d: &[u8]) -> Option<String> {
    let u16_at = |o: usize| {
        d.get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let tag = u32::from_le_bytes(d.get(0..4)?.try_into().ok()?);
    let buffer = match tag {
        TAG_SYMLINK => 20,
        TAG_MOUNT_POINT => 16,
        _ => return None,
    };
    let name = |off: usize, len: usize| -> Option<String> {
        let b = d.get(buffer + off..buffer + off + len)?;
        let units: Vec<u16> = b
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        Some(String::from_utf16_lossy(&units).replace('\\', "/"))
    };
    let print = name(u16_at(12)?, u16_at(14)?).filter(|n| !n.is_empty());
    print.or_else(|| name(u16_at(8)?, u16_at(10)?))
}

fn unix_time(nt: u64) -> i64 {
    (nt as i64)
        .saturating_sub(NT_EPOCH_OFFSET as i64)
        .div_euclid(10_000_000)
}

impl Ntfs<'_> {
    fn nerr(&self, what: &str, e: ntfs::NtfsError) -> Error {
        self.slice().corrupt(0, format!("NTFS {what}: {e}"))
    }

    fn record(&self, r: &mut Reader, n: u64) -> Result<NtfsFile<'_>> {
        self.volume()
            .file(r, n)
            .map_err(|e| super::mft::record_error(&self.slice(), self.mft().ok(), n, e))
    }

    /// The non-DOS `$FILE_NAME`s of `file` that name directory `parent` (at sequence
    /// number `seq`) as their parent.
    fn names_in(
        &self,
        r: &mut Reader,
        file: &NtfsFile,
        parent: u64,
        seq: u16,
    ) -> Vec<NtfsFileName> {
        let mut out = self.file_names(r, file);
        out.retain(|name| {
            let p = name.parent_directory_reference();
            name.namespace() != NtfsFileNamespace::Dos
                && p.file_record_number() == parent
                && p.sequence_number() == seq
        });
        out
    }

    /// The `$FILE_NAME`s of `file` that can be read, in attribute order (up to the first
    /// attribute that cannot be).
    fn file_names(&self, r: &mut Reader, file: &NtfsFile) -> Vec<NtfsFileName> {
        let mut out = Vec::new();
        each_attribute(r, file, NtfsAttributeType::FileName, |r, attr| {
            if let Ok(name) = attr.structured_value::<_, NtfsFileName>(r) {
                out.push(name);
            }
        });
        out
    }

    /// The record number of the virtual `$OrphanFiles` directory: one past the last MFT
    /// record, as TSK numbers it.
    fn orphan_dir(&self) -> Option<u64> {
        self.mft().ok().map(|m| m.end_record())
    }

    /// Records in use that name `dir` (at sequence number `seq`) as their parent but that
    /// `dir`'s index does not list, with those names.
    fn unindexed(
        &self,
        r: &mut Reader,
        dir: u64,
        seq: u16,
        indexed: &HashSet<u64>,
    ) -> Vec<(u64, String, NtfsFileName)> {
        // Without a readable $MFT, only the index speaks.
        let Ok(scan) = self.scan() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for child in scan.children(dir, seq) {
            if child < FIRST_USER_RECORD || child == dir || indexed.contains(&child) {
                continue;
            }
            // A record that cannot be read is left out, as the index walk leaves out
            // what it cannot reach.
            let Ok(f) = self.record(r, child) else {
                continue;
            };
            for name in self.names_in(r, &f, dir, seq) {
                out.push((child, name.name().to_string_lossy(), name));
            }
        }
        out
    }

    /// The virtual root directory entry `$OrphanFiles`.
    fn orphan_dir_entry(&self, record: u64) -> Entry {
        Entry {
            name: ORPHAN_DIR.into(),
            kind: FileType::Dir,
            inode: record,
            handle: NtfsHandle {
                record,
                stream: String::new(),
            },
            ..Default::default()
        }
    }

    /// The content of `$OrphanFiles`: the records in use whose every name points to a
    /// parent that is not a directory in use at the sequence number the name gives (it was
    /// deleted, or its record reused), each under its own name.
    fn read_orphans(&self, r: &mut Reader) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        for &n in &self.scan()?.orphans {
            if n < FIRST_USER_RECORD {
                continue;
            }
            let Ok(f) = self.record(r, n) else { continue };
            let Some(name) = self.file_name(r, &f) else {
                continue;
            };
            let leaf = name.name().to_string_lossy();
            out.push(self.entry_from(r, n, leaf, &name)?);
        }
        Ok(out)
    }

    /// The best `$FILE_NAME` of a record (Win32 or POSIX over DOS), if any.
    fn file_name(&self, r: &mut Reader, file: &NtfsFile) -> Option<NtfsFileName> {
        let mut best: Option<NtfsFileName> = None;
        for name in self.file_names(r, file) {
            let dos = name.namespace() == NtfsFileNamespace::Dos;
            if best.is_none() || !dos {
                best = Some(name);
            }
        }
        best
    }

    /// Size, data runs (volume bytes) and refusal reason of a record's stream.
    fn stream_info(
        &self,
        r: &mut Reader,
        file: &NtfsFile,
        stream: &str,
    ) -> Result<(u64, Vec<ByteRange>, Option<&'static str>)> {
        let mut attrs = file.attributes();
        while let Some(item) = attrs.next(r) {
            let item = item.map_err(|e| self.nerr("attribute", e))?;
            let attr = item.to_attribute().map_err(|e| self.nerr("attribute", e))?;
            if attr.ty().ok() != Some(NtfsAttributeType::Data) {
                continue;
            }
            let name = attr.name().map(|n| n.to_string_lossy()).unwrap_or_default();
            if name != stream {
                continue;
            }
            let flags = attr.flags();
            let refuse = if flags.contains(NtfsAttributeFlags::COMPRESSED) {
                Some("compressed")
            } else if flags.contains(NtfsAttributeFlags::ENCRYPTED) {
                Some("encrypted")
            } else {
                None
            };
            let size = attr.value_length();
            let mut runs = Vec::new();
            if let Ok(NtfsAttributeValue::NonResident(v)) = attr.value(r) {
                for run in v.data_runs() {
                    let run = run.map_err(|e| self.nerr("data run", e))?;
                    if let Some(p) = run.data_position().value() {
                        runs.push(ByteRange::new(p.get(), run.allocated_size()));
                    }
                }
            }
            return Ok((size, runs, refuse));
        }
        Ok((0, Vec::new(), None))
    }

    /// The target of a reparse-point symlink or mount point, if `file` is one.
    fn reparse_target(&self, r: &mut Reader, file: &NtfsFile) -> Option<String> {
        let mut attrs = file.attributes();
        while let Some(Ok(item)) = attrs.next(r) {
            let Ok(attr) = item.to_attribute() else {
                continue;
            };
            if attr.ty().ok() != Some(NtfsAttributeType::ReparsePoint)
                || attr.value_length() > REPARSE_MAX
            {
                continue;
            }
            let mut data = vec![0u8; attr.value_length() as usize];
            attr.value(r).ok()?.attach(r).read_exact(&mut data).ok()?;
            return parse_reparse(&data);
        }
        None
    }

    fn entry_from(
        &self,
        r: &mut Reader,
        record: u64,
        name: String,
        fname: &NtfsFileName,
    ) -> Result<Entry> {
        let dir = fname.is_directory();
        if fname.file_attributes().bits() & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
            let f = self.record(r, record)?;
            if let Some(target) = self.reparse_target(r, &f) {
                let size = self.stream_info(r, &f, "")?.0;
                return Ok(Entry {
                    name,
                    kind: FileType::Symlink,
                    size,
                    inode: record,
                    mtime: Some(unix_time(fname.modification_time().nt_timestamp())),
                    target: Some(target),
                    handle: NtfsHandle {
                        record,
                        stream: String::new(),
                    },
                    ..Default::default()
                });
            }
        }
        let size = if dir {
            0
        } else {
            let f = self.record(r, record)?;
            self.stream_info(r, &f, "")?.0
        };
        Ok(Entry {
            name,
            kind: if dir { FileType::Dir } else { FileType::File },
            size,
            inode: record,
            mtime: Some(unix_time(fname.modification_time().nt_timestamp())),
            handle: NtfsHandle {
                record,
                stream: String::new(),
            },
            ..Default::default()
        })
    }

    /// Named `$DATA` streams of a record.
    fn stream_names(&self, r: &mut Reader, file: &NtfsFile) -> Vec<String> {
        let mut out = Vec::new();
        each_attribute(r, file, NtfsAttributeType::Data, |_, attr| {
            let n = attr.name().map(|n| n.to_string_lossy()).unwrap_or_default();
            if !n.is_empty() {
                out.push(n);
            }
        });
        out
    }

    /// The path of record `n` from its `$FILE_NAME` parents (deleted or not).
    fn path_of(&self, r: &mut Reader, mut n: u64, leaf: &str) -> String {
        let mut parts = vec![leaf.to_string()];
        for _ in 0..crate::files::MAX_DEPTH {
            if n == ROOT {
                break;
            }
            let Ok(f) = self.record(r, n) else { break };
            let Some(name) = self.file_name(r, &f) else {
                break;
            };
            parts.push(name.name().to_string_lossy());
            n = name.parent_directory_reference().file_record_number();
        }
        parts.pop_if(|p| p.is_empty());
        parts.reverse();
        format!("/{}", parts.join("/"))
    }
}

/// Largest compression unit accepted (NTFS compresses only with clusters of 4 KiB or less:
/// 16 of them make 64 KiB; this leaves room while bounding the buffer).
const MAX_COMPRESSION_UNIT: u64 = 1 << 20;

impl Ntfs<'_> {
    /// Streams a compressed `$DATA` stream: each compression unit is zeros (no cluster
    /// allocated), raw (all allocated) or LZNT1 (fewer clusters than the unit holds).
    fn read_compressed(
        &self,
        r: &mut Reader,
        f: &NtfsFile,
        stream: &str,
        size: u64,
        out: &mut dyn Write,
    ) -> Result<u64> {
        let slice = self.slice();
        let cs = self.volume().cluster_size() as u64;
        let mut attrs = f.attributes();
        while let Some(item) = attrs.next(r) {
            let item = item.map_err(|e| self.nerr("attribute", e))?;
            let attr = item.to_attribute().map_err(|e| self.nerr("attribute", e))?;
            if attr.ty().ok() != Some(NtfsAttributeType::Data)
                || attr.name().map(|n| n.to_string_lossy()).unwrap_or_default() != stream
            {
                continue;
            }
            let at = attr.position().value().map(|p| p.get()).ok_or_else(|| {
                self.slice()
                    .corrupt(0, "NTFS compressed attribute without a position")
            })?;
            // The crate gives positions as "record start + offset" (not a volume byte when
            // the record straddles two $MFT runs): read the header from the record.
            let record = self.mft()?.record(&slice, f.file_record_number())?;
            let rel = f
                .position()
                .value()
                .and_then(|p| at.checked_sub(p.get()))
                .unwrap_or(u64::MAX);
            let exp = [usize::try_from(rel)
                .ok()
                .and_then(|rel| record.get(rel.checked_add(0x22)?))
                .copied()
                .ok_or_else(|| {
                    slice.corrupt(at, "NTFS compressed attribute outside its record")
                })?];
            let unit = cs << exp[0].min(31);
            if exp[0] == 0 || unit > MAX_COMPRESSION_UNIT {
                return Err(
                    slice.corrupt(at + 0x22, format!("NTFS compression unit of {unit} bytes"))
                );
            }
            let NtfsAttributeValue::NonResident(v) =
                attr.value(r).map_err(|e| self.nerr("$DATA", e))?
            else {
                return Err(slice.corrupt(at, "NTFS compressed attribute is resident"));
            };
            // (stream offset, length, disk offset or None for sparse), in stream order.
            let mut runs = Vec::new();
            let mut vcn = 0u64;
            for run in v.data_runs() {
                let run = run.map_err(|e| self.nerr("data run", e))?;
                runs.push((
                    vcn,
                    run.allocated_size(),
                    run.data_position().value().map(|p| p.get()),
                ));
                vcn += run.allocated_size();
            }
            let werr = |e: std::io::Error| Error::output("file data", e);
            let mut done = 0u64;
            let mut packed = Vec::new();
            let mut plain = Vec::new();
            while done < size {
                let (lo, hi) = (done, done + unit);
                packed.clear();
                let mut allocated = 0;
                for &(start, len, disk) in &runs {
                    let (s, e) = (start.max(lo), (start + len).min(hi));
                    if s >= e {
                        continue;
                    }
                    if let Some(d) = disk {
                        let from = packed.len();
                        packed.resize(from + (e - s) as usize, 0);
                        slice.read_at(&mut packed[from..], d + (s - start))?;
                        allocated += e - s;
                    }
                }
                plain.clear();
                if allocated >= unit {
                    plain.extend_from_slice(&packed);
                } else if allocated > 0 {
                    super::lznt1::decompress(&packed, &mut plain, unit as usize)
                        .ok_or_else(|| slice.corrupt(at, format!("NTFS compressed stream: malformed LZNT1 data in the unit at byte {lo}")))?;
                }
                plain.resize(unit as usize, 0);
                let n = (size - done).min(unit);
                out.write_all(&plain[..n as usize]).map_err(werr)?;
                done += n;
            }
            return Ok(done);
        }
        Ok(0)
    }
}

/// Calls `f` on each attribute of `file` of type `ty` that can be read, in order, up to
/// the first attribute that cannot be listed: the lenient walk of listings, which show
/// what a damaged record still holds.
fn each_attribute(
    r: &mut Reader,
    file: &NtfsFile,
    ty: NtfsAttributeType,
    mut f: impl FnMut(&mut Reader, &NtfsAttribute),
) {
    let mut attrs = file.attributes();
    while let Some(Ok(item)) = attrs.next(r) {
        let Ok(attr) = item.to_attribute() else {
            continue;
        };
        if attr.ty().ok() == Some(ty) {
            f(r, &attr);
        }
    }
}

impl FileView for Ntfs<'_> {
    type Handle = NtfsHandle;

    fn root(&self) -> Result<Entry> {
        Ok(Entry {
            name: String::new(),
            kind: FileType::Dir,
            inode: ROOT,
            handle: NtfsHandle {
                record: ROOT,
                stream: String::new(),
            },
            ..Default::default()
        })
    }

    fn read_dir(&self, dir: &Entry) -> Result<Vec<Entry>> {
        let record = dir.handle.record;
        let slice = self.slice();
        let mut r = self.reader(&slice);
        if Some(record) == self.orphan_dir() {
            return self.read_orphans(&mut r);
        }
        let file = self.record(&mut r, record)?;
        let index = file
            .directory_index(&mut r)
            .map_err(|e| self.nerr("directory index", e))?;
        let mut entries = index.entries();
        let mut found = Vec::new();
        while let Some(e) = entries.next(&mut r) {
            let e = e.map_err(|e| self.nerr("index entry", e))?;
            let Some(Ok(key)) = e.key() else { continue };
            let child = e.file_reference().file_record_number();
            if key.namespace() == NtfsFileNamespace::Dos
                || child == record
                || child < FIRST_USER_RECORD
            {
                continue;
            }
            found.push((child, key.name().to_string_lossy(), key));
        }
        // Records in use that name this directory but are missing from its index (TSK
        // lists them here too), and, in the root, the records no directory can list.
        let indexed: HashSet<u64> = found.iter().map(|f| f.0).collect();
        let unindexed = self.unindexed(&mut r, record, file.sequence_number(), &indexed);
        found.extend(unindexed);
        let mut out = Vec::new();
        if record == ROOT && self.scan().is_ok_and(|s| !s.orphans.is_empty()) {
            out.extend(self.orphan_dir().map(|n| self.orphan_dir_entry(n)));
        }
        for (child, name, key) in found {
            let e = self.entry_from(&mut r, child, name.clone(), &key)?;
            let is_file = e.kind == FileType::File;
            out.push(e);
            if is_file {
                let f = self.record(&mut r, child)?;
                for s in self.stream_names(&mut r, &f) {
                    let (size, _, _) = self.stream_info(&mut r, &f, &s)?;
                    out.push(Entry {
                        name: format!("{name}:{s}"),
                        kind: FileType::File,
                        size,
                        inode: child,
                        handle: NtfsHandle {
                            record: child,
                            stream: s,
                        },
                        ..Default::default()
                    });
                }
            }
        }
        Ok(out)
    }

    fn read_file(&self, file: &Entry, out: &mut dyn Write) -> Result<u64> {
        let NtfsHandle { record, stream } = &file.handle;
        let slice = self.slice();
        let mut r = self.reader(&slice);
        let f = self.record(&mut r, *record)?;
        let (size, _, refuse) = self.stream_info(&mut r, &f, stream)?;
        if refuse == Some("compressed") {
            return self.read_compressed(&mut r, &f, stream, size, out);
        }
        if let Some(why) = refuse {
            return Err(Error::refused(
                std::path::Path::new(&self.label_text()),
                format!(
                    "{:?} is {why}; diskray does not read {why} NTFS streams yet",
                    file.name
                ),
            ));
        }
        let mut attrs = f.attributes();
        while let Some(item) = attrs.next(&mut r) {
            let item = item.map_err(|e| self.nerr("attribute", e))?;
            let attr = item.to_attribute().map_err(|e| self.nerr("attribute", e))?;
            if attr.ty().ok() != Some(NtfsAttributeType::Data)
                || attr.name().map(|n| n.to_string_lossy()).unwrap_or_default() != *stream
            {
                continue;
            }
            let value = attr.value(&mut r).map_err(|e| self.nerr("$DATA", e))?;
            if let NtfsAttributeValue::NonResident(v) = &value {
                // Uncompressed runs: read them in parallel, sparse runs as zeros.
                let mut pieces = Vec::new();
                let mut left = size;
                for run in v.data_runs() {
                    let run = run.map_err(|e| self.nerr("data run", e))?;
                    let len = run.allocated_size().min(left);
                    if len == 0 {
                        break;
                    }
                    pieces.push(Piece {
                        at: run.data_position().value().map(|p| p.get()),
                        len,
                    });
                    left -= len;
                }
                if left > 0 {
                    pieces.push(Piece {
                        at: None,
                        len: left,
                    });
                }
                return copy_pieces(&slice, &pieces, out);
            }
            let mut reader = value.attach(&mut r);
            let mut buf = vec![0u8; STREAM_CHUNK];
            let mut done = 0u64;
            while done < size {
                let k = (size - done).min(STREAM_CHUNK as u64) as usize;
                reader.read_exact(&mut buf[..k]).map_err(|e| {
                    Error::refused(
                        std::path::Path::new(&self.label_text()),
                        format!("reading {:?}: {e}", file.name),
                    )
                })?;
                out.write_all(&buf[..k])
                    .map_err(|e| Error::output("file data", e))?;
                done += k as u64;
            }
            return Ok(done);
        }
        Ok(0)
    }

    fn extents(&self, entry: &Entry) -> Result<Vec<ByteRange>> {
        let NtfsHandle { record, stream } = &entry.handle;
        let slice = self.slice();
        let mut r = self.reader(&slice);
        let f = self.record(&mut r, *record)?;
        Ok(self.stream_info(&mut r, &f, stream)?.1)
    }

    fn deleted(&self) -> Result<Vec<(String, Entry)>> {
        let used = self.allocation()?.used;
        let slice = self.slice();
        let mut r = self.reader(&slice);
        let scan = self.scan()?;
        let mut out = Vec::new();
        // Records with a valid header whose in-use flag is clear (the scan read them all).
        for (n, state) in scan
            .records
            .iter()
            .enumerate()
            .skip(FIRST_USER_RECORD as usize)
        {
            if !state.valid || state.in_use {
                continue;
            }
            let n = n as u64;
            let Ok(f) = self.record(&mut r, n) else {
                continue;
            };
            if f.flags().contains(NtfsFileFlags::IN_USE) {
                continue;
            }
            let Some(name) = self.file_name(&mut r, &f) else {
                continue;
            };
            let leaf = name.name().to_string_lossy();
            let parent = name.parent_directory_reference().file_record_number();
            let dir = f.flags().contains(NtfsFileFlags::IS_DIRECTORY);
            let (size, runs, _) = if dir {
                (0, Vec::new(), None)
            } else {
                self.stream_info(&mut r, &f, "")?
            };
            let reused = runs
                .iter()
                .any(|x| !used.intersection(&RangeSet::from_iter([*x])).is_empty());
            let path = self.path_of(&mut r, parent, &leaf);
            out.push((
                path,
                Entry {
                    name: leaf,
                    kind: if dir { FileType::Dir } else { FileType::File },
                    size,
                    inode: n,
                    mtime: Some(unix_time(name.modification_time().nt_timestamp())),
                    deleted: true,
                    recoverable: Some(!reused),
                    handle: NtfsHandle {
                        record: n,
                        stream: String::new(),
                    },
                    ..Default::default()
                },
            ));
        }
        Ok(out)
    }

    fn case_insensitive(&self) -> bool {
        true
    }

    fn link_path(&self, target: &str) -> Option<Vec<u8>> {
        link_path(target).map(String::into_bytes)
    }

    fn label(&self) -> String {
        self.label_text()
    }
}

/// A reparse target (backslashes already turned into `/`) as a path in this volume: a
/// relative one as it is; a drive-letter one (`C:/dir`, or `/??/C:/dir` in the NT
/// namespace) from this volume's root, as ntfs-3g resolves them (the drive letter the
/// volume had is not recorded on it); a rooted one (`/dir`) from the root too; `None` for
/// the ones naming another volume or machine (`//server/share`, `/??/UNC/...`,
/// `/??/Volume{GUID}/...`).
fn link_path(target: &str) -> Option<String> {
    let t = match target.strip_prefix("/??/") {
        Some(nt) if nt.starts_with("UNC/") || nt.starts_with("Volume{") => return None,
        Some(nt) => nt,
        None if target.starts_with("//") => return None,
        None => target,
    };
    let b = t.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        return Some(format!("/{}", t[2..].trim_start_matches('/')));
    }
    Some(t.to_string())
}

#[cfg(test)]
mod tests {
    use super::link_path;

    #[test]
    fn reparse_targets_map_into_the_volume() {
        assert_eq!(link_path("dir/file").as_deref(), Some("dir/file"));
        assert_eq!(link_path("../x").as_deref(), Some("../x"));
        assert_eq!(link_path("C:/dir/file").as_deref(), Some("/dir/file"));
        assert_eq!(link_path("/??/D:/dir").as_deref(), Some("/dir"));
        assert_eq!(link_path("c:").as_deref(), Some("/"));
        assert_eq!(link_path("/dir").as_deref(), Some("/dir"));
        assert_eq!(link_path("//server/share/x"), None);
        assert_eq!(link_path("/??/UNC/server/share"), None);
        assert_eq!(
            link_path("/??/Volume{0b1f7e6e-0000-0000-0000-000000000000}/x"),
            None
        );
    }
}
