//! `diskray map`: the allocation map, from metadata.

use crate::human;
use crate::open::{print_warnings, DiskArgs};
use diskray_core::{detect_zeroes, BlockState, ByteRange, Error, MapRange, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::process::ExitCode;

/// Granularity of `--detect-zeroes`: the usual filesystem block.
const ZERO_SCAN_BLOCK: u64 = 4096;

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
    let image = args.disk.open(!args.top_only)?;
    let disk = image.disk();
    let mut ranges = disk.map(ByteRange::new(0, disk.capacity()))?;
    if args.detect_zeroes {
        ranges = detect_zeroes(disk, &ranges, ZERO_SCAN_BLOCK)?;
    }
    let mut out = BufWriter::new(crate::out::stdout());
    if args.json {
        // Serialised straight from the slice: a map of millions of runs stays small.
        let doc = MapDoc {
            capacity: disk.capacity(),
            ranges: &ranges,
            warnings: image.warnings(),
        };
        serde_json::to_writer(&mut out, &doc).map_err(|e| Error::Output {
            what: "the map",
            target: Some("standard output".into()),
            source: e.into(),
        })?;
        writeln!(out)
            .and_then(|_| out.flush())
            .map_err(crate::out::error)?;
        return Ok(ExitCode::SUCCESS);
    }
    print_warnings(&image);
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    let mut text = || -> std::io::Result<()> {
        writeln!(
            out,
            "{:>16} {:>16} {:>12}  {:<12} depth",
            "start", "length", "", "state"
        )?;
        for r in &ranges {
            let state = state_name(r.state);
            *totals.entry(state).or_default() += r.length;
            writeln!(
                out,
                "{:>16} {:>16} {:>12}  {:<12} {}",
                r.start,
                r.length,
                human::size(r.length),
                state,
                r.depth
            )?;
        }
        writeln!(out)?;
        for (state, bytes) in &totals {
            writeln!(
                out,
                "{state:<12} {:>12}  ({bytes} bytes)",
                human::size(*bytes)
            )?;
        }
        out.flush()
    };
    text().map_err(crate::out::error)?;
    Ok(ExitCode::SUCCESS)
}

/// The `--json` document.
#[derive(Serialize)]
struct MapDoc<'a> {
    capacity: u64,
    ranges: &'a [MapRange],
    warnings: &'a [diskray_core::Warning],
}

fn state_name(s: BlockState) -> &'static str {
    match s {
        BlockState::Data => "data",
        BlockState::Zero => "zero",
        BlockState::Unallocated => "unallocated",
        BlockState::Unreadable => "unreadable",
    }
}
