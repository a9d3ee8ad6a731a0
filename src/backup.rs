//! `diskray backup` and `diskray images`.

use crate::open::DiskArgs;
use crate::repo_args::RepoArgs;
use diskray_accel::{backup, BackupRequest, Source};
use diskray_core::Result;
use diskray_store::manifest::ImageList;
use diskray_store::Repo;
use std::path::PathBuf;
use std::process::ExitCode;

/// What `diskray backup --help` says after the options.
const BACKUP_HELP: &str = "\
Kept: allocated ∩ (used ∪ filesystem metadata ∪ everything outside a recognised
filesystem). Free space (deleted data) and swap/pagefile/hiberfil are stored as zeros
unless --keep-deleted / --keep-swap. With a previous image of the same --name and
--changes, only changed or newly used chunks are read; without --changes (or with
--rescan) every kept chunk is read and hashed, and unchanged ones are linked.

Examples:
  diskray backup disk.vmdk --repo /backups --name web01
  diskray backup disk.vmdk --repo /backups --name web01 --changes qcda.json \\
      --change-id '52 90 37 ee 50 dc cb 6b-b3 12 7c 48 06 19 7f d4/2'
  diskray backup disk.vmdk --repo /backups --name web01 --rescan --changes qcda.json --json";

/// Arguments of `diskray backup`.
#[derive(clap::Args, Debug)]
#[command(after_help = BACKUP_HELP)]
pub struct BackupArgs {
    #[command(flatten)]
    disk: DiskArgs,
    #[command(flatten)]
    repo: RepoArgs,
    /// The backup name: images of one disk form a series under one name; the newest image
    /// of the name is the parent of the next.
    #[arg(long)]
    name: String,
    /// A change map since the previous image: VMware QueryChangedDiskAreas JSON (vSphere,
    /// pyVmomi, govmomi), `offset,length` CSV, or a `qemu-img map` dirty-bitmap JSON.
    #[arg(long, value_name = "FILE")]
    changes: Option<PathBuf>,
    /// The change map covers only part of the disk: treat the rest as changed.
    #[arg(long, requires = "changes")]
    partial_changes: bool,
    /// The disk's change id now (VMware `<epoch>/<sequence>`), stored with the image; a new
    /// epoch or a lower sequence than the previous image's makes the backup rescan.
    #[arg(long, value_name = "ID")]
    change_id: Option<String>,
    /// Read and hash every kept byte even with a change map, and count the chunks the map
    /// missed (a periodic check of CBT).
    #[arg(long)]
    rescan: bool,
    /// Keep free space (deleted data) instead of storing zeros there.
    #[arg(long)]
    keep_deleted: bool,
    /// Keep swap, pagefile.sys, swapfile.sys and hiberfil.sys instead of storing zeros.
    #[arg(long)]
    keep_swap: bool,
    /// Chunk size in bytes for a new repository or a new series (power of two, 64 KiB to
    /// 16 MiB; default: the repository's, 1 MiB for a new one).
    #[arg(long, value_name = "BYTES")]
    chunk_size: Option<u64>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `diskray backup`.
pub fn run(args: BackupArgs) -> Result<ExitCode> {
    let image = args.disk.open(true)?;
    let disk = image.disk();
    let chunk_size = args.chunk_size.unwrap_or(diskray_store::DEFAULT_CHUNK_SIZE);
    let repo = Repo::open_or_create(&args.repo.repo, chunk_size)?;
    let changed = match &args.changes {
        Some(path) => {
            let map = diskray_changes::load(path, Some(disk.capacity()), args.partial_changes)?;
            let shown: Vec<String> = map
                .warnings
                .iter()
                .map(|w| format!("{}: {w}", path.display()))
                .collect();
            crate::out::warn(&shown);
            Some(map.must_read())
        }
        None => None,
    };
    let pb = crate::progress::bytes(disk.capacity(), "backing up");
    let outcome = backup(BackupRequest {
        disk,
        label: &args.disk.disk,
        repo: &repo,
        name: &args.name,
        changed,
        change_id: args.change_id.as_deref(),
        rescan: args.rescan,
        keep_deleted: args.keep_deleted,
        keep_swap: args.keep_swap,
        chunk_size: args.chunk_size,
        source: Source::of(&args.disk.disk, image.format().name()),
        progress: &|done, _| pb.set_position(done),
        on_lock_wait: Some(&|| eprintln!("diskray: waiting for gc to finish with the repository")),
    });
    pb.finish_and_clear();
    let mut outcome = outcome?;
    outcome
        .warnings
        .splice(0..0, image.warnings().iter().cloned());
    let report = outcome.report();
    crate::out::print(args.json, &report, report.warnings)?;
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `diskray images`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  diskray images --repo /backups\n  diskray images --repo /backups --json web01"
)]
pub struct ImagesArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Only the images of this backup name.
    name: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `diskray images`.
pub fn images(args: ImagesArgs) -> Result<ExitCode> {
    let (images, warnings) = args.repo.open()?.images()?;
    let chosen = |m: &&diskray_store::Manifest| args.name.as_ref().is_none_or(|n| *n == m.name);
    let list = ImageList {
        images: images
            .iter()
            .map(|e| &e.manifest)
            .filter(chosen)
            .map(|m| m.listing())
            .collect(),
        warnings: &warnings,
    };
    crate::out::print(args.json, &list, &warnings)?;
    Ok(ExitCode::SUCCESS)
}
