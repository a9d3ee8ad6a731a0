//! `diskray convert`: the whole guest-visible content of a disk, as a sparse raw file.

use crate::open::DiskArgs;
use diskray_core::Result;
use diskray_image::export::{self, refuse_input_as_output, ExportFormat};
use diskray_vmdk::writer::Subformat;
use indicatif::ProgressBar;
use std::path::PathBuf;
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

/// The output options `convert` and `restore` share.
#[derive(clap::Args, Debug)]
pub struct OutputArgs {
    /// Output format.
    #[arg(short = 'O', long = "output-format", value_enum, default_value = "raw")]
    output_format: OutFormat,
    /// The VMDK layout with `-O vmdk`.
    #[arg(long, value_enum, default_value = "streamOptimized")]
    subformat: SubformatArg,
    /// Flush the output to stable storage before renaming it into place (slower; without
    /// it, like qemu-img and cp, the data reaches the disk when the kernel writes it back).
    #[arg(long)]
    pub sync: bool,
}

impl OutputArgs {
    /// The format to write.
    pub fn format(&self) -> ExportFormat {
        match (self.output_format, self.subformat) {
            (OutFormat::Raw, _) => ExportFormat::Raw,
            (OutFormat::Vmdk, SubformatArg::StreamOptimized) => {
                ExportFormat::Vmdk(Subformat::StreamOptimized)
            }
            (OutFormat::Vmdk, SubformatArg::MonolithicSparse) => {
                ExportFormat::Vmdk(Subformat::MonolithicSparse)
            }
        }
    }
}

/// Arguments of `diskray convert`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "The raw output is sparse: zero and unallocated ranges stay holes. Grains are read\n\
and inflated in parallel. The output is written to a temporary name and renamed\n\
into place when complete.\n\nExample:\n  diskray convert -O raw disk.vmdk disk.raw"
)]
pub struct Args {
    #[command(flatten)]
    disk: DiskArgs,
    /// The file to write (replaced if it exists; never one of the input files).
    out: PathBuf,
    #[command(flatten)]
    output: OutputArgs,
}

/// Runs `diskray convert`.
pub fn run(args: Args) -> Result<ExitCode> {
    let image = args.disk.open(true)?;
    crate::out::warn(image.warnings());
    refuse_input_as_output(&image, &args.disk.disk, &args.out)?;
    let (bar, progress) = progress();
    let format = args.output.format();
    let result = export::export(image.disk(), &args.out, format, args.output.sync, &progress);
    bar.finish_and_clear();
    result?;
    Ok(ExitCode::SUCCESS)
}

/// A bar for writing an image, and the progress callback that moves it.
pub fn progress() -> (ProgressBar, impl Fn(u64, u64) + Sync) {
    let bar = crate::progress::bytes(0, "writing");
    let b = bar.clone();
    (bar, move |done, total| {
        b.set_length(total);
        b.set_position(done);
    })
}
