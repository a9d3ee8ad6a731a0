//! `diskray convert`: the whole guest-visible content of a disk, as a sparse raw file.

use crate::open::DiskArgs;
use diskray_core::{Error, Result, VirtualDisk};
use diskray_image::export::{self, ExportFormat};
use diskray_vmdk::writer::Subformat;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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

/// Writes `disk` to `out` in `format`, with a progress bar.
pub fn export(
    disk: &dyn VirtualDisk,
    out: &Path,
    format: OutFormat,
    subformat: SubformatArg,
    sync: bool,
) -> Result<()> {
    let format = match format {
        OutFormat::Raw => ExportFormat::Raw,
        OutFormat::Vmdk => ExportFormat::Vmdk(match subformat {
            SubformatArg::StreamOptimized => Subformat::StreamOptimized,
            SubformatArg::MonolithicSparse => Subformat::MonolithicSparse,
        }),
    };
    let bar = crate::progress::bytes(0, "writing");
    let result = export::export(disk, out, format, sync, &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    result
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
