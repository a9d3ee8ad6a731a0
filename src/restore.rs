//! `diskray restore` (a whole disk back, raw or VMDK) and `diskray restore-file` (one file,
//! read through the guest filesystem straight out of the image).

use crate::convert::{export, OutFormat, SubformatArg};
use crate::repo_args::RepoArgs;
use diskray_core::{Error, Result};
use diskray_guestfs::files::{escape, lookup_follow};
use diskray_store::lock::Mode;
use diskray_store::ImageDisk;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `diskray restore`.
#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// The image: its id, a unique prefix of it, or a backup name (its newest image).
    image: String,
    /// The file to write (replaced if it exists).
    out: PathBuf,
    /// Output format.
    #[arg(short = 'O', long = "output-format", value_enum, default_value = "raw")]
    output_format: OutFormat,
    /// The VMDK layout with `-O vmdk`.
    #[arg(long, value_enum, default_value = "streamOptimized")]
    subformat: SubformatArg,
    /// Flush the output to stable storage before renaming it into place.
    #[arg(long)]
    sync: bool,
    /// Check chunks by their CRC32, encoding and length only, without recomputing their
    /// SHA-256 (faster on slow CPUs; `diskray verify` recomputes every digest).
    #[arg(long)]
    crc_only: bool,
}

/// Readers per core: chunk files are small scattered reads, so keeping more in flight than
/// there are cores hides their latency.
const READERS_PER_CORE: usize = 2;

/// Opens an image of the repository as a disk, holding the shared lock (so gc waits).
fn open_image(
    repo: &RepoArgs,
    what: &str,
) -> Result<(diskray_store::lock::RepoLock, ImageDisk, PathBuf)> {
    let r = repo.open()?;
    let lock = r.lock(
        Mode::Shared,
        Some(&|| eprintln!("diskray: waiting for gc to finish")),
    )?;
    let entry = r.find_image(what)?;
    let index = r.read_index(&entry)?;
    let label = entry.dir.clone();
    Ok((lock, ImageDisk::new(r, index), label))
}

/// Runs `diskray restore`.
pub fn restore(args: RestoreArgs) -> Result<ExitCode> {
    let (_lock, disk, _) = open_image(&args.repo, &args.image)?;
    let disk = disk.check_digests(!args.crc_only);
    let canon = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let out_dir = args
        .out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    if canon(out_dir).starts_with(canon(&args.repo.repo)) {
        return Err(Error::refused(
            &args.out,
            "refusing to write inside the repository",
        ));
    }
    let readers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        * READERS_PER_CORE;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(readers)
        .build()
        .map_err(|e| Error::Threads {
            count: readers,
            purpose: "reader",
            reason: e.to_string(),
        })?;
    pool.install(|| {
        export(
            &disk,
            &args.out,
            args.output_format,
            args.subformat,
            args.sync,
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `diskray restore-file`.
#[derive(clap::Args, Debug)]
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
    /// Where to write it (default: standard output).
    #[arg(short, long)]
    output: Option<PathBuf>,
}

/// Runs `diskray restore-file`.
pub fn restore_file(args: RestoreFileArgs) -> Result<ExitCode> {
    let (_lock, disk, label) = open_image(&args.repo, &args.image)?;
    let path = crate::files::arg_bytes(&args.path);
    crate::files::with_fs_on(&disk, &label, args.partition.as_deref(), |fs, _| {
        let e = lookup_follow(fs, &path)?;
        crate::files::write_file(fs, &e, &escape(&path), args.output.as_deref())
    })?;
    Ok(ExitCode::SUCCESS)
}
