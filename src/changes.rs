//! `diskray changes diff` and `diskray changes show`: make and check change maps.

use crate::open::DiskArgs;
use crate::out::{out, outln};
use diskray_changes::{diff, load, to_vsphere_json, ChangeMap};
use diskray_core::Result;
use std::path::PathBuf;
use std::process::ExitCode;

/// Default block size of `changes diff`: 64 KiB, the smallest extent VMware CBT reports
/// (`docs/formats.md` §4.5) and qemu's default dirty-bitmap granularity.
const DEFAULT_DIFF_BLOCK: u64 = 64 << 10;

/// The `changes` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum ChangesCommand {
    /// Write a VMware DiskChangeInfo JSON of the blocks that differ between two disks
    /// (for tests, and for hypervisors without change tracking).
    #[command(
        after_help = "Example:\n  diskray changes diff yesterday.vmdk today.vmdk > changes.json\n  diskray backup today.vmdk --repo R --name web01 --changes changes.json"
    )]
    Diff(DiffArgs),
    /// Validate and normalise a change map (any accepted shape) and print it.
    #[command(
        after_help = "Accepted: vSphere JSON (_typeName), pyVmomi (_vimtype), govmomi/govc, one page,\nan array of pages or JSON lines; offset,length CSV; qemu-img map dirty-bitmap JSON.\n\nExample:\n  diskray changes show qcda.json --capacity 42949672960"
    )]
    Show(ShowArgs),
}

/// Arguments of `diskray changes diff`.
#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    /// The older disk.
    old: PathBuf,
    /// The newer disk (its capacity is the map's).
    new: PathBuf,
    /// Compare in blocks of this many bytes (a power of two, 512 to 64 MiB).
    #[arg(long, default_value_t = DEFAULT_DIFF_BLOCK)]
    block_size: u64,
    /// Write the map here instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

/// Arguments of `diskray changes show`.
#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// The change map file.
    file: PathBuf,
    /// The disk's capacity in bytes; the pages must tile it (default: what the pages
    /// cover from 0).
    #[arg(long)]
    capacity: Option<u64>,
    /// Accept pages that do not cover the whole disk (the rest counts as changed).
    #[arg(long)]
    partial: bool,
    /// Print the normalised map as one vSphere DiskChangeInfo JSON document.
    #[arg(long)]
    json: bool,
}

/// Runs a `changes` subcommand.
pub fn run(cmd: ChangesCommand) -> Result<ExitCode> {
    match cmd {
        ChangesCommand::Diff(a) => run_diff(a),
        ChangesCommand::Show(a) => run_show(a),
    }
}

fn open(path: &std::path::Path) -> Result<diskray_image::Image> {
    DiskArgs {
        disk: path.to_path_buf(),
        format: None,
        ignore_cid: false,
        allow_outside_paths: false,
        sector_size: None,
    }
    .open(true)
}

fn run_diff(a: DiffArgs) -> Result<ExitCode> {
    let old = open(&a.old)?;
    let new = open(&a.new)?;
    let map = diff(old.disk(), new.disk(), a.block_size)?;
    let text = serde_json::to_string_pretty(&to_vsphere_json(&map)).unwrap_or_default() + "\n";
    match &a.output {
        Some(out) => diskray_core::atomic::write_atomic(
            out,
            text.as_bytes(),
            diskray_core::Durability::Rename,
        )?,
        None => out!("{text}")?,
    }
    eprintln!(
        "{} changed in {} areas of {}",
        crate::human::size(map.changed_bytes()),
        map.changed.ranges().count(),
        crate::human::size(map.capacity)
    );
    Ok(ExitCode::SUCCESS)
}

fn run_show(a: ShowArgs) -> Result<ExitCode> {
    let map = load(&a.file, a.capacity, a.partial)?;
    for w in &map.warnings {
        eprintln!("diskray: warning: {}: {w}", a.file.display());
    }
    if a.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&to_vsphere_json(&map)).unwrap_or_default()
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    print_summary(&a, &map)?;
    Ok(ExitCode::SUCCESS)
}

fn print_summary(a: &ShowArgs, map: &ChangeMap) -> Result<()> {
    outln!(
        "{}: {} ({}), capacity {} bytes, {} changed in {} areas{}",
        a.file.display(),
        map.source.format.name(),
        map.source.layout.name(),
        map.capacity,
        crate::human::size(map.changed_bytes()),
        map.changed.ranges().count(),
        if map.uncovered.is_empty() {
            String::new()
        } else {
            format!(
                ", {} not covered (treated as changed)",
                crate::human::size(map.uncovered.bytes())
            )
        }
    )?;
    outln!("{:>20} {:>20}", "START", "LENGTH")?;
    for r in map.changed.ranges() {
        outln!("{:>20} {:>20}", r.start, r.length)?;
    }
    Ok(())
}
