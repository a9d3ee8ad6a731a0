//! `diskray report`: the space report, per volume and disk-wide, optionally as an SVG strip.

use crate::human;
use crate::open::{print_warnings, DiskArgs};
use crate::out::outln;
use diskray_core::{ByteRange, RangeSet, Result};
use diskray_layout::{analyze, Classes, Classification, Layout};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `diskray report`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    disk: DiskArgs,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
    /// Also draw the disk as a strip coloured by class into this SVG file.
    #[arg(long, value_name = "MAP.svg")]
    svg: Option<PathBuf>,
}

/// Runs `diskray report`.
pub fn run(args: Args) -> Result<ExitCode> {
    let image = args.disk.open(true)?;
    let disk = image.disk();
    let layout = analyze(disk, &args.disk.disk)?;
    let classification = Classification::of(disk, &layout)?;
    let c = classification.classes(disk)?;
    let cap = disk.capacity();
    let mut warnings: Vec<String> = image.warnings().to_vec();
    warnings.extend(layout.warnings.iter().cloned());
    warnings.extend(classification.container.warning());
    let doc = document(cap, &layout, &c, &warnings);
    if let Some(svg) = &args.svg {
        let text = crate::svg::draw(&args.disk.disk.display().to_string(), cap, &layout, &c);
        std::fs::write(svg, text).map_err(|e| diskray_core::Error::Open {
            path: svg.clone(),
            source: e,
        })?;
    }
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("JSON of plain values")
        )?;
    } else {
        print_warnings(&image);
        for w in layout
            .warnings
            .iter()
            .chain(&classification.container.warning())
        {
            eprintln!("diskray: warning: {w}");
        }
        print_human(&args.disk.disk.display().to_string(), &doc)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn class_map(c: &Classes, within: Option<ByteRange>) -> Map<String, Value> {
    let clip = within.map(|r| RangeSet::from_iter([r]));
    c.named()
        .iter()
        .map(|(name, set)| {
            let bytes = match &clip {
                Some(w) => set.intersection(w).bytes(),
                None => set.bytes(),
            };
            (name.to_string(), json!(bytes))
        })
        .collect()
}

fn document(cap: u64, layout: &Layout, c: &Classes, warnings: &[String]) -> Value {
    let volumes: Vec<Value> = layout
        .volumes
        .iter()
        .map(|v| {
            let (total, used, free) = match (&v.allocation, v.fs_size) {
                (Some(a), Some(size)) => {
                    let used = a.used.bytes();
                    (
                        Some(size),
                        Some(used),
                        Some(size - used - a.excluded.bytes()),
                    )
                }
                _ => (None, None, None),
            };
            json!({
                "index": v.index, "start": v.start, "length": v.length, "name": v.name,
                "filesystem": v.content.name(), "label": v.label, "block_size": v.block_size,
                "total": total, "used": used, "free": free, "error": v.error,
                "classes": class_map(c, Some(ByteRange::new(v.start, v.length))),
            })
        })
        .collect();
    let backup = c.backup_read_bytes();
    json!({
        "capacity": cap,
        "scheme": layout.table.scheme,
        "classes": class_map(c, None),
        "backup_read_bytes": backup,
        "volumes": volumes,
        "warnings": warnings,
    })
}

fn print_human(name: &str, doc: &Value) -> Result<()> {
    let cap = doc["capacity"].as_u64().unwrap_or(0);
    let pct = |b: u64| {
        if cap == 0 {
            0.0
        } else {
            100.0 * b as f64 / cap as f64
        }
    };
    outln!(
        "{name}: {} ({cap} bytes), partition table: {}",
        human::size(cap),
        doc["scheme"].as_str().unwrap_or("?")
    )?;
    outln!()?;
    outln!(
        "{:>5}  {:<10} {:>10} {:>10} {:>10} {:>10}  {:>9}  label",
        "index",
        "filesystem",
        "size",
        "used",
        "free",
        "residue",
        "block"
    )?;
    for v in doc["volumes"].as_array().into_iter().flatten() {
        let n = |k: &str| v[k].as_u64().map(human::size).unwrap_or_else(|| "-".into());
        outln!(
            "{:>5}  {:<10} {:>10} {:>10} {:>10} {:>10}  {:>9}  {}",
            v["index"].as_u64().unwrap_or(0),
            v["filesystem"].as_str().unwrap_or(""),
            human::size(v["length"].as_u64().unwrap_or(0)),
            n("used"),
            n("free"),
            human::size(v["classes"]["free_residue"].as_u64().unwrap_or(0)),
            n("block_size"),
            v["label"].as_str().unwrap_or(""),
        )?;
    }
    outln!()?;
    for (k, b) in doc["classes"].as_object().into_iter().flatten() {
        let b = b.as_u64().unwrap_or(0);
        outln!("  {k:<13} {:>10}  {:>5.1}%", human::size(b), pct(b))?;
    }
    let backup = doc["backup_read_bytes"].as_u64().unwrap_or(0);
    outln!()?;
    outln!(
        "a backup needs to read {} of {} ({:.1}%): used, metadata and unknown space",
        human::size(backup),
        human::size(cap),
        pct(backup)
    )?;
    Ok(())
}
