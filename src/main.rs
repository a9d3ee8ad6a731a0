//! `diskray`: see inside virtual disks without mounting them.
//!
//! A thin front end: argument parsing and output formatting live here; the work lives in
//! the `diskray-*` crates.

mod backup;
mod blocks;
mod changes;
mod convert;
mod files;
mod info;
mod keys;
mod maintain;
mod map;
mod mount;
mod open;
mod out;
mod partitions;
mod progress;
mod repo_args;
mod report;
mod restore;
mod serve;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  diskray info disk.vmdk                    what the disk is made of
  diskray info --json child-000002.vmdk     the whole snapshot chain, as JSON
  diskray map disk.vmdk                     allocated, zero and unallocated ranges
  diskray map --top-only child.vmdk         what this snapshot alone holds (delta map)
  diskray convert disk.vmdk disk.raw        the guest bytes as a sparse raw file
  diskray partitions disk.vmdk              partition table and what each partition holds
  diskray report --svg map.svg disk.vmdk    space report: used, free, deleted data, swap
  diskray blocks --state residue disk.vmdk  where deleted data still lies
  diskray ls -r disk.vmdk -p 1 /etc         files, without mounting
  diskray ls --deleted -r disk.vmdk -p 2    deleted files that can still be found
  diskray cat disk.vmdk -p 1 /etc/hostname  one file's content to stdout
  diskray init --repo R --encrypt           an encrypted repository (asks a password)
  diskray backup disk.vmdk --repo R --name web01              first (full) backup
  diskray backup disk.vmdk --repo R --name web01 --changes cbt.json
                                            incremental: a synthetic full image
  diskray images --repo R                   the images, with their statistics
  diskray restore --repo R web01 disk.raw   the newest image of web01, whole
  diskray restore-file --repo R web01 -p 1 /etc/hostname -o hostname
  diskray verify --repo R                   recompute every chunk digest
  diskray changes diff old.vmdk new.vmdk    a CBT-shaped map of the blocks that differ

Exit status: 0 success, 1 error, 2 usage error, 3 verify found damage.";

/// See inside virtual disks (VMDK, raw) without mounting them.
#[derive(Parser)]
#[command(name = "diskray", version, about, after_help = EXAMPLES, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show what a disk is made of: format, capacity, extents, snapshot chain, headers.
    Info(info::Args),
    /// Show the allocation map from container metadata, without reading guest data.
    Map(map::Args),
    /// Write the whole guest-visible content of a disk to a new image file.
    Convert(convert::Args),
    /// Show the partition table (MBR, EBR chain, GPT) and what each partition holds.
    Partitions(partitions::Args),
    /// The space report: per volume and disk-wide, every byte in one class.
    Report(report::Args),
    /// List disk-absolute byte ranges in one guest state (used, free, residue, excluded).
    Blocks(blocks::Args),
    /// List files and directories of a guest filesystem, or its deleted entries.
    Ls(files::LsArgs),
    /// Write a file of a guest filesystem to standard output.
    Cat(files::CatArgs),
    /// Create a repository, clear or encrypted (--encrypt).
    Init(keys::InitArgs),
    /// Add, list or remove the keys (passwords) of an encrypted repository.
    #[command(subcommand)]
    Key(keys::KeyCommand),
    /// Back up a disk into a repository: the first backup reads what is allocated and
    /// used; later ones read only what changed and link the rest (a synthetic full image).
    Backup(backup::BackupArgs),
    /// List the images of a repository with their statistics.
    Images(backup::ImagesArgs),
    /// Restore a whole disk from an image, as a sparse raw file or a VMDK.
    Restore(restore::RestoreArgs),
    /// Restore one file from an image, without restoring the disk.
    RestoreFile(restore::RestoreFileArgs),
    /// Mount an image's filesystems read-only (FUSE), without restoring it.
    Mount(mount::MountArgs),
    /// Export an image read-only over NBD, without restoring it.
    Serve(serve::ServeArgs),
    /// Recompute every chunk an image needs; exit 3 naming damaged chunks and images.
    Verify(maintain::VerifyArgs),
    /// Delete chunks no image references (waits for running backups).
    Gc(maintain::GcArgs),
    /// Remove images from a repository (gc then frees the chunks only they used).
    Forget(maintain::ForgetArgs),
    /// Make (diff) or check (show) a change map.
    #[command(subcommand)]
    Changes(changes::ChangesCommand),
}

fn main() -> ExitCode {
    diskray_core::heap::keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info(a) => info::run(a),
        Command::Map(a) => map::run(a),
        Command::Convert(a) => convert::run(a),
        Command::Partitions(a) => partitions::run(a),
        Command::Report(a) => report::run(a),
        Command::Blocks(a) => blocks::run(a),
        Command::Ls(a) => files::ls(a),
        Command::Cat(a) => files::cat(a),
        Command::Init(a) => keys::init(a),
        Command::Key(c) => keys::run(c),
        Command::Backup(a) => backup::run(a),
        Command::Images(a) => backup::images(a),
        Command::Restore(a) => restore::restore(a),
        Command::RestoreFile(a) => restore::restore_file(a),
        Command::Mount(a) => mount::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Verify(a) => maintain::verify(a),
        Command::Gc(a) => maintain::gc(a),
        Command::Forget(a) => maintain::forget(a),
        Command::Changes(c) => changes::run(c),
    };
    match result {
        Ok(code) => code,
        // The reader of standard output went away (`diskray ls … | head`): not an error.
        Err(e) if out::closed(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("diskray: error: {e}");
            ExitCode::from(1)
        }
    }
}
