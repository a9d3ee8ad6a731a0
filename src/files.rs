//! `diskray ls` and `diskray cat`: files without mounting.

use crate::open::{machine, DiskArgs};
use diskray_core::{ByteRange, DiskRange, Result};
use diskray_guestfs::files::{escape, Files};
use diskray_guestfs::listing::{
    copy_out, find_file, list, path_arg_bytes, ListOptions, COPY_BUFFER,
};
use diskray_layout::{with_machine_files, Machine};
use std::ffi::OsString;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `diskray ls`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  diskray ls disk.vmdk --partition 1 /etc\n  diskray ls -r --json disk.vmdk -p linux /home\n  diskray ls --deleted -r disk.vmdk -p 2"
)]
pub struct LsArgs {
    #[command(flatten)]
    on: VolumeArgs,
    /// The guest path to list (a directory or a file; a symlink is listed itself, unless
    /// PATH ends with `/`). Bytes: names need not be UTF-8.
    #[arg(default_value = "/")]
    path: OsString,
    /// List everything below PATH.
    #[arg(short = 'r', long)]
    recursive: bool,
    /// List deleted entries that can still be found (below PATH), with their extents and
    /// whether their blocks were reused.
    #[arg(long)]
    deleted: bool,
    /// Print one JSON document on stdout (with each entry's extents).
    #[arg(long)]
    json: bool,
}

/// Arguments of `diskray cat`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Example:\n  diskray cat disk.vmdk --partition 1 /etc/hostname")]
pub struct CatArgs {
    #[command(flatten)]
    on: VolumeArgs,
    /// The guest path of the file, symlinks followed (with --deleted: the path
    /// `ls --deleted` shows).
    path: OsString,
    /// Extract a deleted file (as listed by `ls --deleted`) from the blocks it had.
    #[arg(long)]
    deleted: bool,
}

/// Opens the filesystem of one volume of the machine `m`; without `partition`, the only
/// filesystem there is. `fs_fn` is given its files and a function that turns the
/// volume's bytes into disk ranges. How the files were read (a journal replayed, a bound
/// reached) is said on stderr.
pub fn with_fs<T>(
    m: &Machine,
    partition: Option<&str>,
    fs_fn: impl FnOnce(&dyn Files, &dyn Fn(ByteRange) -> Vec<DiskRange>) -> Result<T>,
) -> Result<T> {
    with_machine_files(m, partition, |files, v, m| {
        let place = |r: ByteRange| v.placement.to_disk(r).flat_map(|r| m.locate(r)).collect();
        let result = fs_fn(files, &place);
        let label = files.label();
        let prefixed: Vec<String> = files
            .warnings()
            .iter()
            .map(|w| format!("{label}: {w}"))
            .collect();
        crate::out::warn(&prefixed);
        result
    })?
}

/// The disks of the machine and the volume that `ls` and `cat` look in.
#[derive(clap::Args, Debug)]
pub struct VolumeArgs {
    #[command(flatten)]
    disk: DiskArgs,
    /// A further disk of the same machine (a volume group may span disks); repeatable.
    #[arg(long = "disk", value_name = "PATH")]
    more: Vec<PathBuf>,
    /// The partition: its index (as `diskray partitions` numbers it), its GPT name or
    /// filesystem label, or an LVM2 logical volume as VG/LV. Optional when the disks hold
    /// one filesystem.
    #[arg(long, short = 'p')]
    partition: Option<String>,
}

impl VolumeArgs {
    /// Opens the disks and runs [`with_fs`] on the chosen volume.
    fn with_fs<T>(
        &self,
        fs_fn: impl FnOnce(&dyn Files, &dyn Fn(ByteRange) -> Vec<DiskRange>) -> Result<T>,
    ) -> Result<T> {
        let named: Vec<PathBuf> = std::iter::once(&self.disk.disk)
            .chain(&self.more)
            .cloned()
            .collect();
        let (images, paths) = self.disk.how.open_all(&named)?;
        with_fs(&machine(&images, &paths)?, self.partition.as_deref(), fs_fn)
    }
}

/// Runs `diskray ls`. Entries that could not be read are listed with their error, and the
/// exit status is then 1, after the whole listing.
pub fn ls(args: LsArgs) -> Result<ExitCode> {
    let raw = path_arg_bytes(&args.path);
    let opts = ListOptions {
        recursive: args.recursive,
        deleted: args.deleted,
        extents: args.json,
    };
    let listing = args.on.with_fs(|fs, place| list(fs, place, &raw, opts))?;
    // The warnings were said on stderr when the filesystem was read.
    crate::out::print(args.json, &listing, &[] as &[String])?;
    // Like ls(1) on an entry it cannot read: everything else is listed, then exit 1.
    let mut damaged = false;
    for l in listing.entries.iter().filter(|l| l.entry.error.is_some()) {
        let err = l.entry.error.as_deref().unwrap_or_default();
        eprintln!("diskray: error: {}: {err}", escape(&l.raw_path));
        damaged = true;
    }
    Ok(ExitCode::from(u8::from(damaged)))
}

/// Runs `diskray cat`.
pub fn cat(args: CatArgs) -> Result<ExitCode> {
    let raw = path_arg_bytes(&args.path);
    args.on.with_fs(|fs, _| {
        let found = find_file(fs, &raw, args.deleted)?;
        crate::out::warn(found.warning.as_slice());
        let mut w = BufWriter::with_capacity(COPY_BUFFER, crate::out::stdout());
        copy_out(fs, &found, &mut w)?;
        w.flush().map_err(crate::out::error)
    })?;
    Ok(ExitCode::SUCCESS)
}
