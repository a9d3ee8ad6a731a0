//! `diskray`: see inside virtual disks without mounting them.
//!
//! A thin front end: argument parsing and output formatting live here; the work lives in
//! the `diskray-*` crates.

mod blocks;
mod convert;
mod files;
mod human;
mod info;
mod map;
mod open;
mod partitions;
mod report;
mod svg;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  diskray info disk.vmdk                    what the disk is made of
  diskray info --json child-000002.vmdk     the whole snapshot chain, as JSON
  diskray map disk.vmdk                     allocated, zero and unallocated ranges
  diskray map --top-only child.vmdk         what this snapshot alone holds (delta map)
  diskray convert disk.vmdk disk.raw        the guest bytes as a sparse raw file
  diskray partitions disk.vmdk              partition table and what each partition holds
  diskray report --svg map.svg disk.vmdk    space report: used, free, deleted data, swap
  diskray blocks --state residue disk.vmdk  where deleted data still lies
  diskray ls -r disk.vmdk -p 1 /etc         files, without mounting
  diskray ls --deleted -r disk.vmdk -p 2    deleted files that can still be found
  diskray cat disk.vmdk -p 1 /etc/hostname  one file's content to stdout

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
    /// Show the partition table (MBR, EBR chain, GPT) and what each partition holds.
    #[command(after_help = "Example:\n  diskray partitions --json disk.vmdk")]
    Partitions(partitions::Args),
    /// The space report: per volume and disk-wide, every byte in one class.
    #[command(
        after_help = "Classes: unallocated, zero (from the container), then inside recognised\n\
filesystems used, metadata, free_zero, free_residue (deleted data), excluded (swap);\n\
unknown is everything outside a recognised filesystem. They sum to the capacity.\n\n\
Examples:\n  diskray report disk.vmdk\n  diskray report --json --svg map.svg disk.vmdk"
    )]
    Report(report::Args),
    /// List disk-absolute byte ranges in one guest state (used, free, residue, excluded).
    #[command(
        after_help = "Examples:\n  diskray blocks --state residue --partition 2 disk.vmdk\n  diskray blocks --json --state used disk.raw"
    )]
    Blocks(blocks::Args),
    /// List files and directories of a guest filesystem, or its deleted entries.
    #[command(
        after_help = "Examples:\n  diskray ls disk.vmdk --partition 1 /etc\n  diskray ls -r --json disk.vmdk -p linux /home\n  diskray ls --deleted -r disk.vmdk -p 2"
    )]
    Ls(files::LsArgs),
    /// Write a file of a guest filesystem to standard output.
    #[command(after_help = "Example:\n  diskray cat disk.vmdk --partition 1 /etc/hostname")]
    Cat(files::CatArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info(a) => info::run(a),
        Command::Map(a) => map::run(a),
        Command::Convert(a) => convert::run(a),
        Command::Partitions(a) => partitions::run(a),
        Command::Report(a) => report::run(a),
        Command::Blocks(a) => blocks::run(a),
        Command::Ls(a) => files::ls(a),
        Command::Cat(a) => files::cat(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("diskray: error: {e}");
            ExitCode::from(1)
        }
    }
}
