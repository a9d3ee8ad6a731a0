//! `diskray partitions`: the partition table and what each partition holds.

use crate::open::{print_warnings, DiskArgs};
use crate::out::outln;
use diskray_core::Result;
use diskray_layout::partitions;
use diskray_volume::Scheme;
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
    if args.json {
        let mut warnings = image.warnings().to_vec();
        warnings.append(&mut t.warnings);
        t.warnings = warnings;
        let text = serde_json::to_string_pretty(&t).expect("JSON of plain values");
        outln!("{text}")?;
        return Ok(ExitCode::SUCCESS);
    }
    print_warnings(&image);
    for w in &t.warnings {
        eprintln!("diskray: warning: {w}");
    }
    outln!(
        "scheme: {:?}  sector size: {}  disk id: {}",
        t.scheme,
        t.sector_size,
        t.disk_id.as_deref().unwrap_or("-")
    )?;
    if let Some(content) = t.whole_disk_content {
        let what = match t.scheme {
            Scheme::None => "no partition table",
            _ => "the table lists no partitions",
        };
        outln!("{what}; the whole disk holds: {content}")?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{:>5} {:>14} {:>14} {:>10}  {:<38} {:<9} name",
        "index",
        "start",
        "length",
        "",
        "type",
        "content"
    )?;
    for r in &t.partitions {
        outln!(
            "{:>5} {:>14} {:>14} {:>10}  {:<38} {:<9} {}",
            r.index,
            r.start,
            r.length,
            crate::human::size(r.length),
            r.kind,
            r.content,
            r.name
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
