//! `diskray restore` (a whole disk back, raw or VMDK) and `diskray restore-file` (one file,
//! read through the guest filesystem straight out of the image).

use crate::convert::OutputArgs;
use crate::repo_args::RepoArgs;
use diskray_accel::restore::{machine_of, open_machine};
use diskray_accel::{restore as run_restore, RestoreRequest};
use diskray_core::Result;
use diskray_guestfs::listing::{copy_out, find_file, path_arg_bytes, save, COPY_BUFFER};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `diskray restore`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Free space, swap and never-written areas restore as zeros.\n\nExamples:\n  diskray restore --repo /backups web01 web01.raw\n  diskray restore --repo /backups 20261122T101530Z-1a2b3c4d disk.vmdk -O vmdk"
)]
pub struct RestoreArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// The image: its id, a unique prefix of it, or a backup name (its newest image).
    image: String,
    /// The file to write (replaced if it exists).
    out: PathBuf,
    #[command(flatten)]
    output: OutputArgs,
    /// Check chunks by their CRC32, encoding and length only, without recomputing their
    /// digest (faster on slow CPUs; `diskray verify` recomputes every digest).
    #[arg(long)]
    crc_only: bool,
}

/// Said when gc holds the repository.
fn waiting() {
    eprintln!("diskray: waiting for gc to finish");
}

/// Runs `diskray restore`.
pub fn restore(args: RestoreArgs) -> Result<ExitCode> {
    let repo = args.repo.open()?;
    let (bar, progress) = crate::convert::progress();
    let result = run_restore(RestoreRequest {
        repo: &repo,
        image: &args.image,
        out: &args.out,
        format: args.output.format(),
        sync: args.output.sync,
        check_digests: !args.crc_only,
        progress: &progress,
        on_lock_wait: Some(&waiting),
    });
    bar.finish_and_clear();
    result?;
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `diskray restore-file`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  diskray restore-file --repo /backups web01 -p 1 /etc/fstab -o fstab\n  diskray restore-file --repo /backups vm1.disk0 --disk vm1.disk1 -p vg/data /etc/motd"
)]
pub struct RestoreFileArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// The image: its id, a unique prefix of it, or a backup name (its newest image).
    image: String,
    /// The partition: its number, GPT name or filesystem label (optional when the image
    /// holds one filesystem).
    #[arg(short, long)]
    partition: Option<String>,
    /// The file's path inside the filesystem (symlinks followed, as `cat` does).
    path: std::ffi::OsString,
    /// The image of a further disk of the same machine backup (`NAME.disk1`, …), for a
    /// volume group that spans disks; repeatable, in the order of the disks.
    #[arg(long = "disk", value_name = "IMAGE")]
    more: Vec<String>,
    /// Where to write it (default: standard output).
    #[arg(short, long)]
    output: Option<PathBuf>,
}

/// Runs `diskray restore-file`.
pub fn restore_file(args: RestoreFileArgs) -> Result<ExitCode> {
    let images = open_machine(&args.repo.open()?, &args.image, &args.more, Some(&waiting))?;
    let m = machine_of(&images)?;
    let path = path_arg_bytes(&args.path);
    let part = args.partition.as_deref();
    crate::files::with_fs(&m, part, |fs, _| {
        let found = find_file(fs, &path, false)?;
        if let Some(out) = &args.output {
            return save(fs, &found, out);
        }
        let mut w = BufWriter::with_capacity(COPY_BUFFER, crate::out::stdout());
        copy_out(fs, &found, &mut w)?;
        w.flush().map_err(crate::out::error)
    })?;
    Ok(ExitCode::SUCCESS)
}
