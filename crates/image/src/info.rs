//! `diskray info`'s record: what an opened image is made of.

use crate::Image;
use diskray_core::Warning;
use diskray_vmdk::info::VmdkInfo;
use serde::Serialize;
use std::path::PathBuf;

/// What a disk image is made of.
#[derive(Debug, Clone, Serialize)]
pub struct Info {
    /// The file named.
    pub file: PathBuf,
    /// `vmdk` or `raw`.
    pub format: &'static str,
    /// Guest-visible size in bytes.
    pub capacity: u64,
    /// The chain, layers and extents of a VMDK.
    #[serde(flatten)]
    pub vmdk: Option<VmdkInfo>,
    /// Things the user should know.
    pub warnings: Vec<Warning>,
}

impl Info {
    /// Describes `image`.
    pub fn of(image: &Image) -> Info {
        let (file, vmdk) = match image {
            Image::Raw(raw) => (raw.file().path().to_path_buf(), None),
            Image::Vmdk(disk) => (disk.layers()[0].path.clone(), Some(VmdkInfo::of(disk))),
        };
        Info {
            file,
            format: image.format().name(),
            capacity: image.disk().capacity(),
            vmdk,
            warnings: image.warnings().to_vec(),
        }
    }
}
