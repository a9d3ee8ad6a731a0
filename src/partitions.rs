//! `diskray partitions`: the partition table and what each partition holds.

use crate::open::Inspect;
use diskray_core::Result;
use diskray_layout::partitions;
use std::process::ExitCode;

/// Arguments of `diskray partitions`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Example:\n  diskray partitions --json disk.vmdk")]
pub struct Args {
    #[command(flatten)]
    on: Inspect,
}

/// Runs `diskray partitions`.
pub fn run(args: Args) -> Result<ExitCode> {
    let image = args.on.disk.open(true)?;
    let mut t = partitions(image.disk(), &args.on.disk.disk)?;
    t.warnings.splice(0..0, image.warnings().iter().cloned());
    crate::out::print(args.on.json, &t, &t.warnings)?;
    Ok(ExitCode::SUCCESS)
}
