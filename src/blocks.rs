//! `diskray blocks`: disk-absolute byte ranges in one guest state.

use crate::open::Inspect;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use diskray_core::Result;
use diskray_layout::{blocks, GuestState};
use std::process::ExitCode;

/// Arguments of `diskray blocks`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  diskray blocks --state residue --partition 2 disk.vmdk\n  diskray blocks --json --state used disk.raw"
)]
pub struct Args {
    #[command(flatten)]
    on: Inspect,
    /// Which state to list: used (filesystem data and metadata, plus bytes outside any
    /// recognised filesystem), free (free space of recognised filesystems), residue (free
    /// space that is not zero: deleted data, at the filesystem's block size) or excluded
    /// (swap).
    #[arg(long, value_parser = PossibleValuesParser::new(GuestState::NAMES)
        .try_map(|s| s.parse::<GuestState>()))]
    state: GuestState,
    /// Restrict to one partition (its index as `diskray partitions` shows it).
    #[arg(long)]
    partition: Option<u32>,
}

/// Runs `diskray blocks`.
pub fn run(args: Args) -> Result<ExitCode> {
    let image = args.on.disk.open(true)?;
    let b = blocks(image.disk(), &args.on.disk.disk, args.state, args.partition)?;
    if !args.on.json {
        crate::out::warn(image.warnings());
    }
    crate::out::print_compact(args.on.json, &b, &b.warnings)?;
    if !args.on.json {
        let (n, bytes) = (b.ranges.len(), b.bytes);
        eprintln!("{n} ranges, {} ({bytes} bytes)", crate::human::size(bytes));
    }
    Ok(ExitCode::SUCCESS)
}
