//! `diskray partitions`: the partition table and what each partition holds.

use crate::open::machine;
use crate::open::MachineArgs;
use diskray_core::Result;
use diskray_layout::partitions::logical_volumes;
use diskray_layout::{partitions, MachinePartitions};
use std::process::ExitCode;

/// Arguments of `diskray partitions`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "With several disks, each disk's table in turn (JSON: {\"disks\": [...]}).\n\n\
Examples:\n  diskray partitions --json disk.vmdk\n  diskray partitions vm-disk0.vmdk vm-disk1.vmdk"
)]
pub struct Args {
    #[command(flatten)]
    on: MachineArgs,
}

/// Runs `diskray partitions`.
pub fn run(args: Args) -> Result<ExitCode> {
    let mut listings = Vec::new();
    let (images, paths) = args.on.open()?;
    for (path, image) in paths.iter().zip(&images) {
        let mut t = partitions(image.disk(), path)?;
        t.warnings.splice(0..0, image.warnings().iter().cloned());
        listings.push(t);
    }
    if let [t] = &listings[..] {
        crate::out::print(args.on.json, t, &t.warnings)?;
    } else {
        let warnings: Vec<_> = listings.iter().flat_map(|t| t.warnings.clone()).collect();
        listings.iter_mut().for_each(|t| t.logical_volumes.clear());
        let all = MachinePartitions {
            logical_volumes: logical_volumes(&machine(&images, &paths)?)?,
            disks: listings,
            paths: paths.iter().map(|p| p.display().to_string()).collect(),
        };
        crate::out::print(args.on.json, &all, &warnings)?;
    }
    Ok(ExitCode::SUCCESS)
}
