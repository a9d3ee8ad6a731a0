//! `diskray backup` and `diskray images`.

use crate::open::DiskArgs;
use crate::out::outln;
use crate::repo_args::RepoArgs;
use diskray_accel::{backup, BackupRequest};
use diskray_core::{RangeSet, Result};
use diskray_store::manifest::{BackupStats, ChangeSource, ImageListing, Source};
use diskray_store::Repo;
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `diskray backup`.
#[derive(clap::Args, Debug)]
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
    let repo = Repo::open_or_create(
        &args.repo.repo,
        args.chunk_size.unwrap_or(diskray_store::DEFAULT_CHUNK_SIZE),
    )?;
    let changed = match &args.changes {
        Some(path) => Some(load_changes(path, disk.capacity(), args.partial_changes)?),
        None => None,
    };
    let source = Source {
        path: std::fs::canonicalize(&args.disk.disk)
            .unwrap_or(args.disk.disk.clone())
            .to_string_lossy()
            .into_owned(),
        format: match &image {
            diskray_image::Image::Vmdk(_) => "vmdk",
            diskray_image::Image::Raw(_) => "raw",
        }
        .to_string(),
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
        source,
        progress: &|done, _| pb.set_position(done),
        on_lock_wait: Some(&|| eprintln!("diskray: waiting for gc to finish with the repository")),
    });
    pb.finish_and_clear();
    let outcome = outcome?;
    let mut warnings: Vec<diskray_core::Warning> = image.warnings().to_vec();
    warnings.extend(outcome.warnings.iter().cloned());
    let m = &outcome.manifest;
    if args.json {
        let doc = BackupDoc {
            image: &m.image,
            name: &m.name,
            parent: m.parent.as_deref(),
            change_id: m.change_id.as_deref(),
            time: &m.time,
            stats: &outcome.stats,
            warnings: &warnings,
        };
        outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default())?;
    } else {
        for w in &warnings {
            eprintln!("diskray: warning: {w}");
        }
        outln!(
            "image {} of {}{}",
            m.image,
            m.name,
            m.parent
                .as_ref()
                .map(|p| format!(", synthetic full over {p}"))
                .unwrap_or_default()
        )?;
        outln!("{}", outcome.stats.summary())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads a change map and returns the bytes to treat as changed.
fn load_changes(path: &std::path::Path, capacity: u64, partial: bool) -> Result<RangeSet> {
    let map = diskray_changes::load(path, Some(capacity), partial)?;
    for w in &map.warnings {
        eprintln!("diskray: warning: {}: {w}", path.display());
    }
    Ok(map.must_read())
}

/// Arguments of `diskray images`.
#[derive(clap::Args, Debug)]
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
    let repo = args.repo.open()?;
    let (images, warnings) = repo.images()?;
    let images: Vec<_> = images
        .into_iter()
        .filter(|e| args.name.as_ref().is_none_or(|n| *n == e.manifest.name))
        .collect();
    if args.json {
        let list: Vec<_> = images.iter().map(|e| e.manifest.listing()).collect();
        let doc = ImagesDoc {
            images: list,
            warnings: &warnings,
        };
        outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default())?;
        return Ok(ExitCode::SUCCESS);
    }
    for w in &warnings {
        eprintln!("diskray: warning: {w}");
    }
    if images.is_empty() {
        outln!("no images")?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{:<34} {:<16} {:<20} {:>10} {:>10} {:>8}  parent",
        "IMAGE",
        "NAME",
        "TIME",
        "SIZE",
        "READ",
        "SOURCE"
    )?;
    for e in &images {
        let m = &e.manifest;
        let s = &m.stats;
        outln!(
            "{:<34} {:<16} {:<20} {:>10} {:>10} {:>8}  {}",
            m.image,
            m.name,
            m.time,
            crate::human::size(m.capacity),
            crate::human::size(s.read_from_source),
            s.change_source.map(ChangeSource::name).unwrap_or("-"),
            m.parent.as_deref().unwrap_or("-")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `backup --json`.
#[derive(Serialize)]
struct BackupDoc<'a> {
    image: &'a str,
    name: &'a str,
    parent: Option<&'a str>,
    change_id: Option<&'a str>,
    time: &'a str,
    stats: &'a BackupStats,
    warnings: &'a [diskray_core::Warning],
}

/// `images --json`.
#[derive(Serialize)]
struct ImagesDoc<'a> {
    images: Vec<ImageListing<'a>>,
    warnings: &'a [diskray_core::Warning],
}
