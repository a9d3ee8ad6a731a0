//! `diskray blocks`: disk-absolute byte ranges in one guest state.

use crate::open::{machine, MachineArgs};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use diskray_core::Result;
use diskray_layout::{blocks_machine, GuestState};
use std::process::ExitCode;

/// Arguments of `diskray blocks`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  diskray blocks --state residue --partition 2 disk.vmdk\n  diskray blocks --json --state used disk.raw"
)]
pub struct Args {
    #[command(flatten)]
    on: MachineArgs,
    /// Which state to list: used (filesystem data and metadata, plus bytes outside any
    /// recognised filesystem), free (free space of recognised filesystems), residue (free
    /// space that is not zero: deleted data, at the filesystem's block size), excluded
    /// (swap) or vg_free (LVM2 extents no logical volume owns).
    #[arg(long, value_parser = PossibleValuesParser::new(GuestState::NAMES)
        .try_map(|s| s.parse::<GuestState>()))]
    state: GuestState,
    /// Restrict to one volume: its partition index (as `diskray partitions` shows it),
    /// GPT name, filesystem label, or an LVM2 logical volume as VG/LV.
    #[arg(long, short = 'p')]
    partition: Option<String>,
}

/// Runs `diskray blocks`.
pub fn run(args: Args) -> Result<ExitCode> {
    let (images, paths) = args.on.open()?;
    let m = machine(&images, &paths)?;
    let b = blocks_machine(&m, args.state, args.partition.as_deref())?;
    if !args.on.json {
        images.iter().for_each(|i| crate::out::warn(i.warnings()));
    }
    crate::out::print_compact(args.on.json, &b, &b.warnings)?;
    if !args.on.json {
        let (n, bytes) = (b.ranges.len(), b.bytes);
        eprintln!(
            "{n} ranges, {} ({bytes} bytes)",
            diskray_core::human::size(bytes)
        );
    }
    Ok(ExitCode::SUCCESS)
}
