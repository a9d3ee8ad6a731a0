//! `diskray backup` and `diskray images`.

use crate::open::OpenArgs;
use crate::repo_args::RepoArgs;
use diskray_accel::{backup_machine, per_disk_mismatch, BackupRequest, Source};
use diskray_core::Result;
use diskray_image::NBD_BITMAP_PREFIX;
use diskray_store::manifest::ImageList;
use std::path::PathBuf;
use std::process::ExitCode;

/// What `diskray backup --help` says after the options.
const BACKUP_HELP: &str = "\
Kept: allocated ∩ (used ∪ filesystem metadata ∪ everything outside a recognised
filesystem). Free space (deleted data) and swap/pagefile/hiberfil are stored as zeros
unless --keep-deleted / --keep-swap. With a previous image of the same --name and
--changes, only the changed or newly used bytes are read and stored as patches over the
previous image's chunks (--no-patch: changed chunks read and stored whole); without --changes (or with --rescan) every
kept chunk is read and hashed, and unchanged ones are linked.

Examples:
  diskray backup disk.vmdk --repo /backups --name web01
  diskray backup disk.vmdk --repo /backups --name web01 --changes qcda.json \\
      --change-id '52 90 37 ee 50 dc cb 6b-b3 12 7c 48 06 19 7f d4/2'
  diskray backup disk.vmdk --repo /backups --name web01 --rescan --changes qcda.json --json
  diskray backup a.vmdk b.vmdk --repo /backups --name vm1 --changes a.json --changes b.json";

/// Arguments of `diskray backup`.
#[derive(clap::Args, Debug)]
#[command(after_help = BACKUP_HELP)]
pub struct BackupArgs {
    /// The disks (files or NBD URIs), in order; with several, disk I's series is NAME.diskI.
    #[arg(required = true, num_args = 1.., value_name = "DISK")]
    disks: Vec<PathBuf>,
    #[command(flatten)]
    how: OpenArgs,
    #[command(flatten)]
    repo: RepoArgs,
    /// The backup name: images of one disk form a series under one name; the newest image
    /// of the name is the parent of the next.
    #[arg(long)]
    name: String,
    /// A change map since the previous image: VMware QueryChangedDiskAreas JSON (vSphere,
    /// pyVmomi, govmomi), `offset,length` CSV, a `qemu-img map` dirty-bitmap JSON, or
    /// `nbd-bitmap:NAME`: QEMU's dirty bitmap NAME of the NBD disk, read over NBD. With
    /// several disks: once per disk, in their order.
    #[arg(long, value_name = "FILE")]
    changes: Vec<PathBuf>,
    /// The change map covers only part of the disk: treat the rest as changed.
    #[arg(long, requires = "changes")]
    partial_changes: bool,
    /// The disk's change id now (VMware `<epoch>/<sequence>`), stored with the image; a new
    /// epoch or a lower sequence than the previous image's makes the backup rescan. With
    /// several disks: once per disk, in their order.
    #[arg(long, value_name = "ID")]
    change_id: Vec<String>,
    /// Read and hash every kept byte even with a change map, and count the chunks the map
    /// missed (a periodic check of CBT).
    #[arg(long)]
    rescan: bool,
    /// With a change map, read changed chunks whole from the disk and store them whole,
    /// instead of storing only the changed bytes as patches over the previous image's
    /// chunks (see docs/guide.md).
    #[arg(long)]
    no_patch: bool,
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
    /// The image's time, "YYYY-MM-DD HH:MM:SS" in UTC, instead of now (for imports, and
    /// to try a retention policy).
    #[arg(long, value_parser = utc_time)]
    time: Option<u64>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// `--time`: microseconds since 1970.
fn utc_time(s: &str) -> std::result::Result<u64, String> {
    let secs = diskray_core::time::parse_utc(s).filter(|&t| t >= 0);
    secs.map(|t| t as u64 * 1_000_000)
        .ok_or_else(|| format!("{s:?}: expected YYYY-MM-DD HH:MM:SS (UTC, from 1970)"))
}

/// Runs `diskray backup`.
pub fn run(args: BackupArgs) -> Result<ExitCode> {
    let (n, changes, ids) = (args.disks.len(), args.changes.len(), args.change_id.len());
    if let Some(msg) = per_disk_mismatch(n, &[("--changes", changes), ("--change-id", ids)]) {
        clap::Error::raw(clap::error::ErrorKind::WrongNumberOfValues, msg).exit();
    }
    // Dirty bitmaps first, each over a connection closed before the disk's own opens (a
    // server may take one client at a time, as qemu-nbd does by default).
    let bitmaps: Vec<_> = (args.changes.iter().zip(&args.disks))
        .map(|(p, d)| {
            (
                p.to_str().and_then(|s| s.strip_prefix(NBD_BITMAP_PREFIX)),
                d,
            )
        })
        .map(|(b, d)| b.map(|name| diskray_image::nbd_dirty_bitmap(d, name)))
        .map(Option::transpose)
        .collect::<Result<_>>()?;
    let images: Vec<_> = args
        .disks
        .iter()
        .map(|d| args.how.open(d, true))
        .collect::<Result<_>>()?;
    let chunk_size = args.chunk_size.unwrap_or(diskray_store::DEFAULT_CHUNK_SIZE);
    let repo = args.repo.open_or_create(chunk_size)?;
    // A dirty bitmap coarser than a chunk, or marking everything, is said (never a
    // silent over-read; docs/formats.md §4.7).
    let chunk = args.chunk_size.unwrap_or(repo.config().chunk_size);
    let bitmap_warnings: Vec<_> = (bitmaps.iter().zip(&args.changes).zip(&images))
        .filter_map(|((b, p), image)| Some((b.as_ref()?, p, image.disk().capacity())))
        .flat_map(|(dirty, p, cap)| {
            let name = p.to_str().and_then(|s| s.strip_prefix(NBD_BITMAP_PREFIX));
            diskray_image::dirty_bitmap_warnings(name.unwrap_or_default(), dirty, cap, chunk)
        })
        .collect();
    let total = images.iter().map(|i| i.disk().capacity()).sum();
    let pb = crate::progress::bytes(total, "backing up");
    let progress = |done: u64, _: u64| pb.set_position(done);
    let wait = || eprintln!("diskray: waiting for gc to finish with the repository");
    let mut reqs = Vec::new();
    for (i, (image, path)) in images.iter().zip(&args.disks).enumerate() {
        let disk = image.disk();
        let load = |p: &PathBuf| -> Result<_> {
            if let Some(Some(dirty)) = bitmaps.get(i) {
                return Ok(dirty.clone());
            }
            let m = diskray_changes::load(p, Some(disk.capacity()), args.partial_changes)?;
            crate::out::warn(&m.warnings_of(p));
            Ok(m.must_read())
        };
        let map = args.changes.get(i).map(load).transpose()?;
        reqs.push(BackupRequest {
            disk,
            label: path,
            repo: &repo,
            name: &args.name,
            changed: map,
            change_id: args.change_id.get(i).map(String::as_str),
            rescan: args.rescan,
            whole_chunks: args.no_patch,
            at: args.time,
            keep_deleted: args.keep_deleted,
            keep_swap: args.keep_swap,
            chunk_size: args.chunk_size,
            source: Source::of(path, image.format().name()),
            progress: &progress,
            on_lock_wait: Some(&wait),
        });
    }
    let outcome = backup_machine(reqs);
    pb.finish_and_clear();
    let mut outcome = outcome?;
    let opened = images.iter().flat_map(|i| i.warnings().iter().cloned());
    outcome.opened(opened.chain(bitmap_warnings));
    let doc = outcome.document();
    crate::out::print(args.json, &doc, &doc.warnings())?;
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
    /// Only the images of this backup name (with several disks: of each disk's series).
    name: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `diskray images`.
pub fn images(args: ImagesArgs) -> Result<ExitCode> {
    let (images, warnings) = args.repo.open()?.images()?;
    let list = ImageList::of(&images, args.name.as_deref(), &warnings);
    crate::out::print(args.json, &list, &warnings)?;
    Ok(ExitCode::SUCCESS)
}
