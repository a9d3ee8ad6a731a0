//! The options every command that opens a disk shares, and the one place that opens it.

use diskray_core::Result;
use diskray_image::{Format, Image};
use diskray_layout::Machine;
use diskray_vmdk::OpenOptions;
use std::path::{Path, PathBuf};

/// Image format names accepted by `--format`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum FormatArg {
    /// VMware VMDK: a descriptor or any extent file.
    Vmdk,
    /// Raw image: the file is the disk.
    Raw,
}

/// How to open the disk.
#[derive(clap::Args, Debug)]
pub struct DiskArgs {
    /// The disk: a VMDK descriptor, a sparse VMDK, a raw image, or an NBD URI.
    pub disk: PathBuf,
    #[command(flatten)]
    pub how: OpenArgs,
}

/// How to open any disk (the options every command that opens one shares).
#[derive(clap::Args, Debug)]
pub struct OpenArgs {
    /// The image format (default: probe the file).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Read a snapshot even when its parentCID does not match its parent's CID.
    #[arg(long)]
    pub ignore_cid: bool,
    /// Allow extent and parent files outside the directory of the file that names them.
    #[arg(long)]
    pub allow_outside_paths: bool,
    /// The disk's logical sector size for reading its partition table: 512, 1024, 2048
    /// or 4096 (default: probe it; an MBR disk of a 4Kn drive uses 4096).
    #[arg(long, value_name = "BYTES", value_parser = sector_size)]
    pub sector_size: Option<u64>,
}

/// The disks of one machine and `--json`: what the commands that look inside a guest
/// take. A volume group may span the disks; they are analysed as one machine.
#[derive(clap::Args, Debug)]
pub struct MachineArgs {
    /// The disks of the machine, in order (a volume group may span them): VMDK
    /// descriptors, sparse VMDKs, raw images, NBD URIs; a .vmx stands for its disks.
    #[arg(required = true, num_args = 1.., value_name = "DISK")]
    pub disks: Vec<PathBuf>,
    #[command(flatten)]
    pub how: OpenArgs,
    /// Print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

impl MachineArgs {
    /// Opens every disk (a `.vmx` stands for its disks), with the paths they were opened by.
    pub fn open(&self) -> Result<(Vec<Image>, Vec<PathBuf>)> {
        self.how.open_all(&self.disks)
    }
}

/// The machine of the opened `images`, named by `paths`.
pub fn machine<'a>(images: &'a [Image], paths: &[PathBuf]) -> Result<Machine<'a>> {
    Machine::new(images.iter().map(|i| i.disk()).zip(paths.iter().cloned()))
}

/// A disk and `--json`: what the commands that look at a disk take.
#[derive(clap::Args, Debug)]
pub struct Inspect {
    #[command(flatten)]
    pub disk: DiskArgs,
    /// Print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Parses `--sector-size`.
fn sector_size(s: &str) -> std::result::Result<u64, String> {
    let n: u64 = s.parse().map_err(|e| format!("{e}"))?;
    if diskray_volume::SECTOR_SIZES.contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "{n} is not a logical sector size a disk has (one of {:?})",
            diskray_volume::SECTOR_SIZES
        ))
    }
}

impl DiskArgs {
    /// Opens the disk; `follow_parents` false opens the top layer of a chain alone.
    pub fn open(&self, follow_parents: bool) -> Result<Image> {
        self.how.open(&self.disk, follow_parents)
    }
}

impl OpenArgs {
    /// Opens the disks at `paths`, each `.vmx` replaced by its disks in controller order.
    pub fn open_all(&self, paths: &[PathBuf]) -> Result<(Vec<Image>, Vec<PathBuf>)> {
        let paths = diskray_image::vmx::expand(paths, self.allow_outside_paths)?;
        let images = paths
            .iter()
            .map(|p| self.open(p, true))
            .collect::<Result<_>>()?;
        Ok((images, paths))
    }

    /// Opens the disk at `path`; `follow_parents` false opens the top layer of a chain
    /// alone.
    pub fn open(&self, path: &Path, follow_parents: bool) -> Result<Image> {
        let opts = OpenOptions {
            ignore_cid: self.ignore_cid,
            allow_outside_paths: self.allow_outside_paths,
            follow_parents,
        };
        let format = self.format.map(|f| match f {
            FormatArg::Vmdk => Format::Vmdk,
            FormatArg::Raw => Format::Raw,
        });
        let vmx = diskray_image::vmx::is_vmx(path)
            .then(|| diskray_image::vmx::single(path, self.allow_outside_paths));
        let path = &vmx.transpose()?.unwrap_or(path.to_path_buf());
        let mut image = diskray_image::open(path, format, &opts)?;
        image.set_logical_sector_size(self.sector_size);
        Ok(image)
    }
}
