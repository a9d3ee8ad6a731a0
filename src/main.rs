//! `diskray`: see inside virtual disks without mounting them.
//!
//! A thin front end: argument parsing and output formatting live here; the work lives in
//! the `diskray-*` crates.

mod backup;
mod blocks;
mod changes;
mod convert;
mod files;
mod human;
mod info;
mod maintain;
mod map;
mod open;
mod out;
mod partitions;
mod progress;
mod repo_args;
mod report;
mod restore;

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
    #[command(after_help = "Example:\n  diskray info --json disk.vmdk")]
    Info(info::Args),
    /// Show the allocation map from container metadata, without reading guest data.
    #[command(
        after_help = "States: data (allocated), zero (declared zero: zeroed grain, ZERO extent, or\n\
found zero with --detect-zeroes), unallocated (never written; in a chain, no layer\n\
has it), unreadable (NOACCESS or device extents).\n\n\
Examples:\n  diskray map disk.vmdk\n  diskray map --json --top-only snapshot-000001.vmdk"
    )]
    Map(map::Args),
    /// Write the whole guest-visible content of a disk to a new image file.
    #[command(
        after_help = "The raw output is sparse: zero and unallocated ranges stay holes. Grains are read\n\
and inflated in parallel. The output is written to a temporary name and renamed\n\
into place when complete.\n\nExample:\n  diskray convert -O raw disk.vmdk disk.raw"
    )]
    Convert(convert::Args),
    /// Show the partition table (MBR, EBR chain, GPT) and what each partition holds.
    #[command(after_help = "Example:\n  diskray partitions --json disk.vmdk")]
    Partitions(partitions::Args),
    /// The space report: per volume and disk-wide, every byte in one class.
    #[command(
        after_help = "Classes: unallocated, zero (from the container), then inside recognised\n\
filesystems used, metadata, free_zero, free_residue (deleted data), excluded (swap);\n\
unknown is everything outside a recognised filesystem. They sum to the capacity.\n\n\
Examples:\n  diskray report disk.vmdk\n  diskray report --json --svg map.svg disk.vmdk"
    )]
    Report(report::Args),
    /// List disk-absolute byte ranges in one guest state (used, free, residue, excluded).
    #[command(
        after_help = "Examples:\n  diskray blocks --state residue --partition 2 disk.vmdk\n  diskray blocks --json --state used disk.raw"
    )]
    Blocks(blocks::Args),
    /// List files and directories of a guest filesystem, or its deleted entries.
    #[command(
        after_help = "Examples:\n  diskray ls disk.vmdk --partition 1 /etc\n  diskray ls -r --json disk.vmdk -p linux /home\n  diskray ls --deleted -r disk.vmdk -p 2"
    )]
    Ls(files::LsArgs),
    /// Write a file of a guest filesystem to standard output.
    #[command(after_help = "Example:\n  diskray cat disk.vmdk --partition 1 /etc/hostname")]
    Cat(files::CatArgs),
    /// Back up a disk into a repository: the first backup reads what is allocated and
    /// used; later ones read only what changed and link the rest (a synthetic full image).
    #[command(after_help = BACKUP_HELP)]
    Backup(backup::BackupArgs),
    /// List the images of a repository with their statistics.
    #[command(
        after_help = "Examples:\n  diskray images --repo /backups\n  diskray images --repo /backups --json web01"
    )]
    Images(backup::ImagesArgs),
    /// Restore a whole disk from an image, as a sparse raw file or a VMDK.
    #[command(
        after_help = "Free space, swap and never-written areas restore as zeros.\n\nExamples:\n  diskray restore --repo /backups web01 web01.raw\n  diskray restore --repo /backups 20261122T101530Z-1a2b3c4d disk.vmdk -O vmdk"
    )]
    Restore(restore::RestoreArgs),
    /// Restore one file from an image, without restoring the disk.
    #[command(
        after_help = "Example:\n  diskray restore-file --repo /backups web01 -p 1 /etc/fstab -o fstab"
    )]
    RestoreFile(restore::RestoreFileArgs),
    /// Recompute every chunk an image needs; exit 3 naming damaged chunks and images.
    #[command(
        after_help = "Damaged chunks are set aside (renamed .bad); the next backup of a disk that\nstill holds the content stores them again.\n\nExample:\n  diskray verify --repo /backups"
    )]
    Verify(maintain::VerifyArgs),
    /// Delete chunks no image references (waits for running backups).
    Gc(maintain::GcArgs),
    /// Remove images from a repository (gc then frees the chunks only they used).
    #[command(
        after_help = "Images are full images: forgetting one never breaks another, even its\nchildren.\n\nExample:\n  diskray forget --repo /backups 20261122T101530.482913Z-1a2b3c4d\n  diskray gc --repo /backups"
    )]
    Forget(maintain::ForgetArgs),
    /// Make (diff) or check (show) a change map.
    #[command(subcommand)]
    Changes(changes::ChangesCommand),
}

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

fn main() -> ExitCode {
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
        Command::Backup(a) => backup::run(a),
        Command::Images(a) => backup::images(a),
        Command::Restore(a) => restore::restore(a),
        Command::RestoreFile(a) => restore::restore_file(a),
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
