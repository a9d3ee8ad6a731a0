//! `diskray report`: the space report, per volume and disk-wide, optionally as an SVG strip.

use crate::human;
use crate::open::{print_warnings, DiskArgs};
use crate::out::outln;
use diskray_core::Result;
use diskray_layout::{report, Report};
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
    let name = args.disk.disk.display().to_string();
    let mut a = report(disk, &args.disk.disk)?;
    if let Some(svg) = &args.svg {
        let text = diskray_layout::svg::draw(&name, a.report.capacity, &a.layout, &a.classes);
        diskray_core::atomic::write_atomic(svg, text.as_bytes(), diskray_core::Durability::Rename)?;
    }
    if args.json {
        let mut warnings = image.warnings().to_vec();
        warnings.append(&mut a.report.warnings);
        a.report.warnings = warnings;
        let text = serde_json::to_string_pretty(&a.report).expect("JSON of plain values");
        outln!("{text}")?;
    } else {
        print_warnings(&image);
        for w in &a.report.warnings {
            eprintln!("diskray: warning: {w}");
        }
        print_human(&name, &a.report)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_human(name: &str, r: &Report) -> Result<()> {
    let cap = r.capacity;
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
        r.scheme.name()
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
    let n = |v: Option<u64>| v.map(human::size).unwrap_or_else(|| "-".into());
    for v in &r.volumes {
        outln!(
            "{:>5}  {:<10} {:>10} {:>10} {:>10} {:>10}  {:>9}  {}",
            v.index,
            v.filesystem,
            human::size(v.length),
            n(v.used),
            n(v.free),
            human::size(v.classes.free_residue),
            n(v.block_size),
            v.label.as_deref().unwrap_or(""),
        )?;
    }
    outln!()?;
    for (k, b) in r.classes.named() {
        outln!("  {k:<13} {:>10}  {:>5.1}%", human::size(b), pct(b))?;
    }
    let backup = r.backup_read_bytes;
    outln!()?;
    outln!(
        "a backup needs to read {} of {} ({:.1}%): used, metadata and unknown space",
        human::size(backup),
        human::size(cap),
        pct(backup)
    )?;
    Ok(())
}
