//! `diskray convert`: the whole guest-visible content of a disk, as a sparse raw file.

use crate::open::DiskArgs;
use diskray_core::{is_zero, BlockState, ByteRange, Error, Result, VirtualDisk};
use diskray_vmdk::writer::{write_vmdk_as, Subformat};
use rayon::prelude::*;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Bytes per parallel task: large enough to amortise a task, small enough that memory stays
/// at (threads × this) whatever the disk size.
const CHUNK: u64 = 1 << 20;
/// Granularity of holes in the output: the usual filesystem block.
const HOLE_BLOCK: usize = 4096;

/// Output formats.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum OutFormat {
    /// A raw image (sparse: zero blocks stay holes).
    Raw,
    /// A single-file VMDK (see --subformat); zero grains stay unallocated.
    Vmdk,
}

/// VMDK layouts `-O vmdk` writes.
#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub enum SubformatArg {
    /// Compressed grains in one stream (OVF/OVA exports, uploads).
    #[default]
    #[value(name = "streamOptimized")]
    StreamOptimized,
    /// Hosted sparse, uncompressed, writable by VMware Workstation and qemu.
    #[value(name = "monolithicSparse")]
    MonolithicSparse,
}

/// Arguments of `diskray convert`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    disk: DiskArgs,
    /// The file to write (replaced if it exists; never one of the input files).
    out: PathBuf,
    /// Output format.
    #[arg(short = 'O', long = "output-format", value_enum, default_value = "raw")]
    output_format: OutFormat,
    /// The VMDK layout with `-O vmdk`.
    #[arg(long, value_enum, default_value = "streamOptimized")]
    subformat: SubformatArg,
    /// Flush the output to stable storage before renaming it into place (slower; without
    /// it, like qemu-img and cp, the data reaches the disk when the kernel writes it back).
    #[arg(long)]
    sync: bool,
}

/// Runs `diskray convert`.
pub fn run(args: Args) -> Result<ExitCode> {
    let image = args.disk.open(true)?;
    crate::open::print_warnings(&image);
    let disk = image.disk();
    refuse_input_as_output(&args.disk.disk, &args.out, &image)?;
    export(
        disk,
        &args.out,
        args.output_format,
        args.subformat,
        args.sync,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Writes `disk` to `out` in `format`: under a temporary name first, renamed into place
/// only when complete (removed on error).
pub fn export(
    disk: &dyn VirtualDisk,
    out: &Path,
    format: OutFormat,
    subformat: SubformatArg,
    sync: bool,
) -> Result<()> {
    let tmp = temp_name(out);
    let result = match format {
        OutFormat::Raw => write_raw(disk, &tmp, sync),
        OutFormat::Vmdk => {
            let name = out
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let sub = match subformat {
                SubformatArg::StreamOptimized => Subformat::StreamOptimized,
                SubformatArg::MonolithicSparse => Subformat::MonolithicSparse,
            };
            let bar = crate::progress::bytes(disk.capacity(), "writing");
            let r = write_vmdk_as(disk, &tmp, &name, sub, &|done| bar.set_position(done));
            bar.finish_and_clear();
            r
        }
    };
    match result {
        Ok(()) => std::fs::rename(&tmp, out).map_err(|e| Error::Open {
            path: out.to_path_buf(),
            source: e,
        }),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn temp_name(out: &Path) -> PathBuf {
    let mut name = out
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".diskray-tmp-{}", std::process::id()));
    out.with_file_name(name)
}

/// Refuses to write over any file the disk is read from.
fn refuse_input_as_output(input: &Path, out: &Path, image: &diskray_image::Image) -> Result<()> {
    let Ok(out_c) = std::fs::canonicalize(out) else {
        return Ok(());
    };
    let mut inputs = vec![input.to_path_buf()];
    if let diskray_image::Image::Vmdk(v) = image {
        for layer in v.layers() {
            inputs.push(layer.path.clone());
            inputs.extend(
                layer
                    .extents
                    .iter()
                    .filter_map(|e| e.file())
                    .map(|f| f.path().to_path_buf()),
            );
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

/// Chunks in flight between the readers and the writer: bounds memory to
/// (threads + this) × CHUNK whatever the disk size.
const IN_FLIGHT: usize = 16;

fn write_raw(disk: &dyn VirtualDisk, out: &Path, sync: bool) -> Result<()> {
    let cap = disk.capacity();
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(out)
        .map_err(|e| Error::Open {
            path: out.to_path_buf(),
            source: e,
        })?;
    file.set_len(cap).map_err(|e| Error::io(out, cap, e))?;
    let chunks = chunks_to_read(disk)?;
    let bar = crate::progress::bytes(chunks.iter().map(|c| c.length).sum(), "writing");
    // Readers (rayon) fill chunks in parallel; one writer thread writes them, because
    // several threads writing one file contend on its inode lock.
    let (tx, rx) = std::sync::mpsc::sync_channel::<(u64, Vec<u8>)>(IN_FLIGHT);
    let (spare_tx, spare_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let spare_rx = std::sync::Mutex::new(spare_rx);
    std::thread::scope(|scope| -> Result<()> {
        let writer = scope.spawn(|| -> Result<()> {
            for (at, buf) in rx {
                write_nonzero(&file, out, &buf, at)?;
                bar.inc(buf.len() as u64);
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
    })?;
    bar.finish_and_clear();
    if sync {
        file.sync_all().map_err(|e| Error::io(out, 0, e))?;
    }
    Ok(())
}

/// Writes the non-zero blocks of `buf` (which belongs at `at`), leaving zero blocks as holes.
fn write_nonzero(file: &File, path: &Path, buf: &[u8], at: u64) -> Result<()> {
    let mut run_start: Option<usize> = None;
    let blocks = buf.len().div_ceil(HOLE_BLOCK);
    for i in 0..=blocks {
        let block =
            (i < blocks).then(|| &buf[i * HOLE_BLOCK..((i + 1) * HOLE_BLOCK).min(buf.len())]);
        match (block.map(is_zero), run_start) {
            (Some(false), None) => run_start = Some(i * HOLE_BLOCK),
            (Some(true) | None, Some(s)) => {
                let end = (i * HOLE_BLOCK).min(buf.len());
                file.write_all_at(&buf[s..end], at + s as u64)
                    .map_err(|e| Error::io(path, at + s as u64, e))?;
                run_start = None;
            }
            _ => {}
        }
    }
    Ok(())
}
