//! `diskray`: see inside virtual disks without mounting them.
//!
//! A thin front end: argument parsing and output formatting live here; the work lives in
//! the `diskray-*` crates.

mod convert;
mod human;
mod info;
mod map;
mod open;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  diskray info disk.vmdk                    what the disk is made of
  diskray info --json child-000002.vmdk     the whole snapshot chain, as JSON
  diskray map disk.vmdk                     allocated, zero and unallocated ranges
  diskray map --top-only child.vmdk         what this snapshot alone holds (delta map)
  diskray convert disk.vmdk disk.raw        the guest bytes as a sparse raw file

Exit status: 0 success, 1 error, 2 usage error.";

/// See inside virtual disks (VMDK, raw) without mounting them.
#[derive(Parser)]
#[command(name = "diskray", version, about, after_help = EXAMPLES, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show what a disk is made of: format, capacity, extents, snapshot chain, headers.
    #[command(after_help = "Example:\n  diskray info --json disk.vmdk")]
    Info(info::Args),
    /// Show the allocation map from container metadata, without reading guest data.
    #[command(
        after_help = "States: data (allocated), zero (declared zero: zeroed grain, ZERO extent, or\n\
found zero with --detect-zeroes), unallocated (never written; in a chain, no layer\n\
has it), unreadable (NOACCESS or device extents).\n\n\
Examples:\n  diskray map disk.vmdk\n  diskray map --json --top-only snapshot-000001.vmdk"
    )]
    Map(map::Args),
    /// Write the whole guest-visible content of a disk to a new image file.
    #[command(
        after_help = "The raw output is sparse: zero and unallocated ranges stay holes. Grains are read\n\
and inflated in parallel. The output is written to a temporary name and renamed\n\
into place when complete.\n\nExample:\n  diskray convert -O raw disk.vmdk disk.raw"
    )]
    Convert(convert::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info(a) => info::run(a),
        Command::Map(a) => map::run(a),
        Command::Convert(a) => convert::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("diskray: error: {e}");
            ExitCode::from(1)
        }
    }
}
