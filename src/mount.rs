//! `diskray mount`: an image's guest filesystems as a read-only FUSE mount.

use crate::repo_args::RepoArgs;
use diskray_accel::restore::{machine_of, open_machine};
use diskray_core::Result;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `diskray mount`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "The mount point holds disk.raw (the whole disk) and a directory per volume\nwhose files diskray reads: p1, p2… by partition (p0: a filesystem on the whole disk;\nthe second disk's are d1-p1…), VG-LV for a logical volume. Read-only. It runs until\n`umount DIR` or Ctrl-C.\n\nExamples:\n  diskray mount --repo /backups web01 /mnt/web01\n  diskray mount --repo /backups vm1.disk0 --disk vm1.disk1 /mnt/vm1"
)]
pub struct MountArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// The image: its id, a unique prefix of it, or a backup name (its newest image).
    image: String,
    /// An empty directory to mount on.
    dir: PathBuf,
    /// Another disk's image of the same machine, in order (a volume group may span them).
    #[arg(long = "disk", value_name = "IMAGE")]
    more: Vec<String>,
}

/// Runs `diskray mount` in the foreground until it is unmounted.
pub fn run(args: MountArgs) -> Result<ExitCode> {
    let wait = || eprintln!("diskray: waiting for gc to finish");
    let images = open_machine(&args.repo.open()?, &args.image, &args.more, Some(&wait))?;
    let m = machine_of(&images)?;
    let dir = args.dir.display();
    diskray_mount::mount(&m, &args.dir, &|names| {
        eprintln!("diskray: mounted on {dir}: disk.raw {}", names.join(" "));
        eprintln!("diskray: `umount {dir}` or Ctrl-C ends it");
    })?;
    Ok(ExitCode::SUCCESS)
}
