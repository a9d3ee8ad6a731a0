//! Writing a disk's whole guest-visible content to a new image file: a sparse raw file
//! (zero blocks stay holes) or a single-file VMDK (through `diskray_vmdk::writer`). The
//! file appears under its name only when complete ([`diskray_core::AtomicFile`]).

use diskray_core::VirtualDisk;
use diskray_core::{zero_runs, AtomicFile, BlockState, ByteRange, Durability, Error, Result};
use diskray_vmdk::writer::{write_vmdk_as, Subformat};
use rayon::prelude::*;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Bytes per parallel task: large enough to amortise a task, small enough that memory stays
/// at (threads × this) whatever the disk size.
const CHUNK: u64 = 1 << 20;
/// Granularity of holes in the output: the usual filesystem block.
const HOLE_BLOCK: usize = 4096;
/// Chunks in flight between the readers and the writer: bounds memory to
/// (threads + this) × CHUNK whatever the disk size.
const IN_FLIGHT: usize = 16;

/// What to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// A sparse raw image.
    Raw,
    /// A single-file VMDK of the given layout; zero grains stay unallocated.
    Vmdk(Subformat),
}

/// Progress of an export: (bytes done, bytes to do). Called from one thread at a time.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

/// Writes `disk` to `out` in `format`; `out` appears only when complete. With `sync`, the
/// data is flushed to stable storage before the rename.
pub fn export(
    disk: &dyn VirtualDisk,
    out: &Path,
    format: ExportFormat,
    sync: bool,
    progress: Progress,
) -> Result<()> {
    let file = AtomicFile::create(out)?;
    match format {
        ExportFormat::Raw => write_raw(disk, &file, progress)?,
        ExportFormat::Vmdk(sub) => {
            let name = out
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let cap = disk.capacity();
            write_vmdk_as(disk, file.temp_path(), &name, sub, &|done| {
                progress(done, cap)
            })?;
        }
    }
    file.commit(if sync {
        Durability::SyncData
    } else {
        Durability::Rename
    })
}

/// The chunks that hold anything to read (data, or unreadable ranges that must fail).
fn chunks_to_read(disk: &dyn VirtualDisk) -> Result<Vec<ByteRange>> {
    let cap = disk.capacity();
    let mut chunks: Vec<ByteRange> = Vec::new();
    for r in disk.map(ByteRange::new(0, cap))? {
        if matches!(r.state, BlockState::Zero | BlockState::Unallocated) {
            continue;
        }
        let aligned = r.range().align_out(CHUNK, cap);
        let mut pos = aligned.start;
        if let Some(last) = chunks.last() {
            pos = pos.max(last.end());
        }
        while pos < aligned.end() {
            let end = (pos + CHUNK).min(cap);
            chunks.push(ByteRange::from_bounds(pos, end));
            pos = end;
        }
    }
    Ok(chunks)
}

fn write_raw(disk: &dyn VirtualDisk, out: &AtomicFile, progress: Progress) -> Result<()> {
    let cap = disk.capacity();
    let path = out.temp_path();
    let file = out.file();
    file.set_len(cap).map_err(|e| Error::io(path, cap, e))?;
    let chunks = chunks_to_read(disk)?;
    let total: u64 = chunks.iter().map(|c| c.length).sum();
    // Readers (rayon) fill chunks in parallel; one writer thread writes them, because
    // several threads writing one file contend on its inode lock.
    let (tx, rx) = std::sync::mpsc::sync_channel::<(u64, Vec<u8>)>(IN_FLIGHT);
    let (spare_tx, spare_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let spare_rx = std::sync::Mutex::new(spare_rx);
    std::thread::scope(|scope| -> Result<()> {
        let writer = scope.spawn(|| -> Result<()> {
            let mut done = 0;
            for (at, buf) in rx {
                write_nonzero(file, path, &buf, at)?;
                done += buf.len() as u64;
                progress(done, total);
                let _ = spare_tx.send(buf);
            }
            Ok(())
        });
        let read = chunks
            .par_iter()
            .try_for_each_with(tx, |tx, chunk| -> Result<()> {
                let mut buf = spare_rx
                    .lock()
                    .ok()
                    .and_then(|r| r.try_recv().ok())
                    .unwrap_or_default();
                buf.resize(chunk.length as usize, 0);
                disk.read_at(&mut buf, chunk.start)?;
                // A closed channel means the writer failed; its error is reported below.
                let _ = tx.send((chunk.start, buf));
                Ok(())
            });
        let written = writer.join().expect("writer thread does not panic");
        read.and(written)
    })
}

/// Writes the non-zero blocks of `buf` (which belongs at `at`), leaving zero blocks as holes.
fn write_nonzero(file: &File, path: &Path, buf: &[u8], at: u64) -> Result<()> {
    for (o, n, zero) in zero_runs(buf, HOLE_BLOCK) {
        if !zero {
            let pos = at + o as u64;
            file.write_all_at(&buf[o..o + n], pos)
                .map_err(|e| Error::io(path, pos, e))?;
        }
    }
    Ok(())
}

/// Refuses `out` when it is one of the files `image` (opened from `named`) is read from:
/// the file named, every layer of a chain and every extent file.
pub fn refuse_input_as_output(image: &crate::Image, named: &Path, out: &Path) -> Result<()> {
    let Ok(out_c) = std::fs::canonicalize(out) else {
        return Ok(());
    };
    let mut inputs = vec![named.to_path_buf()];
    if let crate::Image::Vmdk(v) = image {
        for layer in v.layers() {
            inputs.push(layer.path.clone());
            let files = layer.extents.iter().filter_map(|e| e.file());
            inputs.extend(files.map(|f| f.path().to_path_buf()));
        }
    }
    if inputs
        .iter()
        .any(|p| std::fs::canonicalize(p).is_ok_and(|c| c == out_c))
    {
        return Err(Error::refused(
            out,
            "is one of the input files; refusing to overwrite it",
        ));
    }
    Ok(())
}
