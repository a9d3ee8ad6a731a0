//! `diskray partitions`: the partition table and what each partition holds.

use crate::open::{print_warnings, DiskArgs};
use crate::out::outln;
use diskray_core::Result;
use diskray_guestfs::{probe, Slice};
use serde_json::json;
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
    let disk = image.disk();
    let table = diskray_layout::read_table(disk, &args.disk.disk)?;
    let mut rows = Vec::new();
    for p in &table.partitions {
        let content = if p.container {
            "extended".to_string()
        } else {
            probe(&Slice::new(disk, &args.disk.disk, p.start, p.length))?
                .name()
                .to_string()
        };
        rows.push(json!({
            "index": p.index, "start": p.start, "length": p.length, "type": p.kind.display(),
            "name": p.name, "content": content, "guid": p.guid, "attributes": p.attributes,
        }));
    }
    let whole = if table.partitions.is_empty() {
        Some(probe(&Slice::new(disk, &args.disk.disk, 0, disk.capacity()))?.name())
    } else {
        None
    };
    let mut warnings: Vec<String> = image.warnings().to_vec();
    warnings.extend(table.warnings.iter().cloned());
    if args.json {
        let doc = json!({
            "scheme": table.scheme, "sector_size": table.sector_size, "disk_id": table.disk_id,
            "capacity": disk.capacity(), "partitions": rows, "whole_disk_content": whole, "warnings": warnings,
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("JSON of plain values")
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    print_warnings(&image);
    for w in &table.warnings {
        eprintln!("diskray: warning: {w}");
    }
    outln!(
        "scheme: {:?}  sector size: {}  disk id: {}",
        table.scheme,
        table.sector_size,
        table.disk_id.as_deref().unwrap_or("-")
    )?;
    if let Some(content) = whole {
        let what = match table.scheme {
            diskray_volume::Scheme::None => "no partition table",
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
    for r in rows {
        outln!(
            "{:>5} {:>14} {:>14} {:>10}  {:<38} {:<9} {}",
            r["index"].as_u64().unwrap_or(0),
            r["start"].as_u64().unwrap_or(0),
            r["length"].as_u64().unwrap_or(0),
            crate::human::size(r["length"].as_u64().unwrap_or(0)),
            r["type"].as_str().unwrap_or(""),
            r["content"].as_str().unwrap_or(""),
            r["name"].as_str().unwrap_or("")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
