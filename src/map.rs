//! `diskray map`: the allocation map, from metadata.

use crate::open::DiskArgs;
use diskray_core::Result;
use diskray_image::map::allocation_map;
use std::process::ExitCode;

/// Arguments of `diskray map`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    disk: DiskArgs,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
    /// Map the top layer of a snapshot chain alone (the delta of one snapshot).
    #[arg(long)]
    top_only: bool,
    /// Read allocated data and report all-zero 4 KiB blocks as `zero` (reads guest data).
    #[arg(long)]
    detect_zeroes: bool,
}

/// Runs `diskray map`.
pub fn run(args: Args) -> Result<ExitCode> {
    let map = allocation_map(&args.disk.open(!args.top_only)?, args.detect_zeroes)?;
    // On one line: a map of millions of runs stays small.
    crate::out::print_compact(args.json, &map, &map.warnings)?;
    Ok(ExitCode::SUCCESS)
}
