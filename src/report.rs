//! `diskray report`: the space report, per volume and disk-wide, optionally as an SVG strip.

use crate::open::{machine, MachineArgs};
use diskray_core::{atomic::write_atomic, Durability, Result};
use diskray_layout::{report_machine, svg};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `diskray report`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Classes: unallocated, zero (from the container), then inside recognised\n\
filesystems used, metadata, free_zero, free_residue (deleted data), excluded (swap);\n\
vg_free: LVM2 extents no logical volume owns; unknown: outside any recognised filesystem. They sum to the capacity.\n\n\
Several disks are one machine: a volume group may span them.\n\n\
Examples:\n  diskray report disk.vmdk\n  diskray report --json --svg map.svg disk.vmdk\n  diskray report vm-disk0.vmdk vm-disk1.vmdk"
)]
pub struct Args {
    #[command(flatten)]
    on: MachineArgs,
    /// Also draw the disk as a strip coloured by class into this SVG file.
    #[arg(long, value_name = "MAP.svg")]
    svg: Option<PathBuf>,
}

/// Runs `diskray report`.
pub fn run(args: Args) -> Result<ExitCode> {
    let (images, paths) = args.on.open()?;
    let mut a = report_machine(&machine(&images, &paths)?)?;
    if let Some(path) = &args.svg {
        let text = svg::draw(&a.report.disk, a.report.capacity, &a.layout, &a.classes);
        write_atomic(path, text.as_bytes(), Durability::Rename)?;
    }
    let r = &mut a.report;
    let opened = images.iter().flat_map(|i| i.warnings().iter().cloned());
    r.warnings.splice(0..0, opened.collect::<Vec<_>>());
    crate::out::print(args.on.json, r, &r.warnings)?;
    Ok(ExitCode::SUCCESS)
}
