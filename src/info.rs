//! `diskray info`: what a disk is made of.

use crate::open::DiskArgs;
use diskray_core::Result;
use diskray_image::info::Info;
use std::process::ExitCode;

/// Arguments of `diskray info`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    disk: DiskArgs,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs `diskray info`.
pub fn run(args: Args) -> Result<ExitCode> {
    let info = Info::of(&args.disk.open(true)?);
    crate::out::print(args.json, &info, &info.warnings)?;
    Ok(ExitCode::SUCCESS)
}
