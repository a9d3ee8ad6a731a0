//! `diskray partitions`: the partition table and what each partition holds.

use crate::open::DiskArgs;
use diskray_core::Result;
use diskray_layout::partitions;
use std::process::ExitCode;

/// Arguments of `diskray partitions`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    disk: DiskArgs,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs `diskray partitions`.
pub fn run(args: Args) -> Result<ExitCode> {
    let image = args.disk.open(true)?;
    let mut t = partitions(image.disk(), &args.disk.disk)?;
    t.warnings.splice(0..0, image.warnings().iter().cloned());
    crate::out::print(args.json, &t, &t.warnings)?;
    Ok(ExitCode::SUCCESS)
}
