//! `diskray changes diff` and `diskray changes show`: make and check change maps.

use crate::out::{out, outln};
use diskray_changes::{diff, load, to_vsphere_json};
use diskray_core::{atomic::write_atomic, Durability, Result};
use diskray_vmdk::OpenOptions;
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

fn run_diff(a: DiffArgs) -> Result<ExitCode> {
    let open = |p| diskray_image::open(p, None, &OpenOptions::default());
    let map = diff(open(&a.old)?.disk(), open(&a.new)?.disk(), a.block_size)?;
    let doc = to_vsphere_json(&map);
    let text = serde_json::to_string_pretty(&doc).map_err(|e| crate::out::error(e.into()))?;
    match &a.output {
        Some(path) => write_atomic(path, format!("{text}\n").as_bytes(), Durability::Rename)?,
        None => outln!("{text}")?,
    }
    let size = diskray_core::human::size;
    let (areas, cap) = (map.changed.ranges().count(), size(map.capacity));
    eprintln!(
        "{} changed in {areas} areas of {cap}",
        size(map.changed_bytes())
    );
    Ok(ExitCode::SUCCESS)
}

fn run_show(a: ShowArgs) -> Result<ExitCode> {
    let map = load(&a.file, a.capacity, a.partial)?;
    crate::out::warn(&map.warnings_of(&a.file));
    if a.json {
        let doc = to_vsphere_json(&map);
        let text = serde_json::to_string_pretty(&doc).map_err(|e| crate::out::error(e.into()))?;
        outln!("{text}")?;
    } else {
        out!("{}: {map}", a.file.display())?;
    }
    Ok(ExitCode::SUCCESS)
}
