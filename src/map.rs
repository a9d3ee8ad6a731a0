//! `diskray map`: the allocation map, from metadata.

use crate::open::Inspect;
use diskray_core::Result;
use diskray_image::map::allocation_map;
use std::process::ExitCode;

/// Arguments of `diskray map`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "States: data (allocated), zero (declared zero: zeroed grain, ZERO extent, or\n\
found zero with --detect-zeroes), unallocated (never written; in a chain, no layer\n\
has it), unreadable (NOACCESS or device extents).\n\n\
Examples:\n  diskray map disk.vmdk\n  diskray map --json --top-only snapshot-000001.vmdk"
)]
pub struct Args {
    #[command(flatten)]
    on: Inspect,
    /// Map the top layer of a snapshot chain alone (the delta of one snapshot).
    #[arg(long)]
    top_only: bool,
    /// Read allocated data and report all-zero 4 KiB blocks as `zero` (reads guest data).
    #[arg(long)]
    detect_zeroes: bool,
}

/// Runs `diskray map`.
pub fn run(args: Args) -> Result<ExitCode> {
    let map = allocation_map(&args.on.disk.open(!args.top_only)?, args.detect_zeroes)?;
    // On one line: a map of millions of runs stays small.
    crate::out::print_compact(args.on.json, &map, &map.warnings)?;
    Ok(ExitCode::SUCCESS)
}
