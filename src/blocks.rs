//! `diskray blocks`: disk-absolute byte ranges in one guest state.

use crate::open::{print_warnings, DiskArgs};
use crate::out::outln;
use diskray_core::{ByteRange, RangeSet, Result};
use diskray_layout::{analyze, choose_volume, guest_state, GuestState};
use serde::Serialize;
use std::process::ExitCode;

/// The guest states `blocks` can list.
#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq)]
pub enum State {
    /// Filesystem data and metadata, plus bytes outside any recognised filesystem.
    Used,
    /// Free space of recognised filesystems.
    Free,
    /// Free space that is not zero (deleted data), at the filesystem's block size.
    Residue,
    /// Excluded space (swap).
    Excluded,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Used => "used",
            State::Free => "free",
            State::Residue => "residue",
            State::Excluded => "excluded",
        }
    }
}

impl From<State> for GuestState {
    fn from(s: State) -> GuestState {
        match s {
            State::Used => GuestState::Used,
            State::Free => GuestState::Free,
            State::Residue => GuestState::Residue,
            State::Excluded => GuestState::Excluded,
        }
    }
}

/// `blocks --json`.
#[derive(Serialize)]
struct BlocksDoc<'a> {
    state: &'static str,
    partition: Option<u32>,
    ranges: &'a [ByteRange],
    bytes: u64,
    warnings: &'a [diskray_core::Warning],
}

/// Arguments of `diskray blocks`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    disk: DiskArgs,
    /// Which state to list.
    #[arg(long, value_enum)]
    state: State,
    /// Restrict to one partition (its index as `diskray partitions` shows it).
    #[arg(long)]
    partition: Option<u32>,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs `diskray blocks`.
pub fn run(args: Args) -> Result<ExitCode> {
    let image = args.disk.open(true)?;
    let disk = image.disk();
    let layout = analyze(disk, &args.disk.disk)?;
    let set = guest_state(disk, &layout, args.state.into())?;
    let set = match args.partition {
        None => set,
        Some(n) => {
            let v = choose_volume(&layout, &args.disk.disk, Some(&n.to_string()))?;
            set.intersection(&RangeSet::from_iter([ByteRange::new(v.start, v.length)]))
        }
    };
    let ranges: Vec<ByteRange> = set.ranges().collect();
    if args.json {
        let doc = BlocksDoc {
            state: args.state.name(),
            partition: args.partition,
            ranges: &ranges,
            bytes: set.bytes(),
            warnings: &layout.warnings,
        };
        outln!(
            "{}",
            serde_json::to_string(&doc).expect("JSON of plain values")
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    print_warnings(&image);
    for w in &layout.warnings {
        eprintln!("diskray: warning: {w}");
    }
    for r in &ranges {
        outln!("{:>16} {:>16}", r.start, r.length)?;
    }
    eprintln!(
        "{} ranges, {} ({} bytes)",
        ranges.len(),
        crate::human::size(set.bytes()),
        set.bytes()
    );
    Ok(ExitCode::SUCCESS)
}
