//! `diskray blocks`: disk-absolute byte ranges in one guest state.

use crate::open::{print_warnings, DiskArgs};
use crate::out::outln;
use diskray_core::{ByteRange, Error, RangeSet, Result};
use diskray_layout::{analyze, guest_sets, residue, ContainerMap};
use serde_json::json;
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
    let g = guest_sets(&layout);
    let set = match args.state {
        State::Used => g.used_or_unknown(disk.capacity()),
        State::Free => g.free.clone(),
        State::Excluded => g.excluded.clone(),
        State::Residue => residue(disk, &g, &ContainerMap::of(disk)?.no_data())?,
    };
    let set = match args.partition {
        None => set,
        Some(n) => {
            let v = layout
                .volumes
                .iter()
                .find(|v| v.index == n)
                .ok_or_else(|| {
                    let known: Vec<String> =
                        layout.volumes.iter().map(|v| v.index.to_string()).collect();
                    Error::Request(format!(
                        "{}: no partition {n} (volumes: {})",
                        args.disk.disk.display(),
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    ))
                })?;
            set.intersection(&RangeSet::from_iter([ByteRange::new(v.start, v.length)]))
        }
    };
    let ranges: Vec<ByteRange> = set.ranges().collect();
    if args.json {
        let state = format!("{:?}", args.state).to_lowercase();
        let doc = json!({"state": state, "partition": args.partition, "ranges": ranges, "bytes": set.bytes(), "warnings": layout.warnings});
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
