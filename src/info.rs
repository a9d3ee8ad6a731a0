//! `diskray info`: what a disk is made of.

use crate::open::Inspect;
use diskray_core::Result;
use diskray_image::info::Info;
use std::process::ExitCode;

/// Arguments of `diskray info`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Example:\n  diskray info --json disk.vmdk")]
pub struct Args {
    #[command(flatten)]
    on: Inspect,
}

/// Runs `diskray info`.
pub fn run(args: Args) -> Result<ExitCode> {
    let info = Info::of(&args.on.disk.open(true)?);
    crate::out::print(args.on.json, &info, &info.warnings)?;
    Ok(ExitCode::SUCCESS)
}
