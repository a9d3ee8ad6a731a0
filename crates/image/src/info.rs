//! `diskray info`'s record: what an opened image is made of.

use crate::Image;
use diskray_core::human::size;
use diskray_core::Warning;
use diskray_vmdk::info::{HeaderInfo, LayerInfo, VmdkInfo};
use diskray_vmdk::sparse::DirectoryUsed;
use serde::Serialize;
use std::path::PathBuf;

/// What a disk image is made of.
#[derive(Debug, Clone, Serialize)]
pub struct Info {
    /// The file named.
    pub file: PathBuf,
    /// `vmdk`, `raw` or `nbd`.
    pub format: &'static str,
    /// Guest-visible size in bytes.
    pub capacity: u64,
    /// The chain, layers and extents of a VMDK.
    #[serde(flatten)]
    pub vmdk: Option<VmdkInfo>,
    /// What an NBD server said about its export (only for NBD exports).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbd: Option<NbdInfo>,
    /// Things the user should know.
    pub warnings: Vec<Warning>,
}

/// What an NBD server said about its export and what it agreed to.
#[derive(Debug, Clone, Serialize)]
pub struct NbdInfo {
    /// The export's transmission flags by name (`read-only`, `multi-conn`, …).
    pub flags: Vec<&'static str>,
    /// Minimum block size in bytes: reads are aligned to it.
    pub min_block: u32,
    /// Preferred block size in bytes.
    pub preferred_block: u32,
    /// Largest request in bytes (the server's, capped at 32 MiB).
    pub max_block: u32,
    /// Whether the server sends structured replies.
    pub structured_replies: bool,
    /// The metadata contexts the server agreed to (`base:allocation`, …).
    pub contexts: Vec<String>,
    /// How many connections reads are spread over.
    pub connections: usize,
}

impl NbdInfo {
    /// Describes the export of `disk`.
    pub fn of(disk: &diskray_nbd::NbdDisk) -> NbdInfo {
        let info = disk.info();
        NbdInfo {
            flags: diskray_nbd::proto::flag_names(info.flags),
            min_block: info.min_block,
            preferred_block: info.preferred_block,
            max_block: info.max_block,
            structured_replies: info.structured,
            contexts: disk.contexts().into_iter().map(String::from).collect(),
            connections: disk.connections(),
        }
    }
}

impl Info {
    /// Describes `image`.
    pub fn of(image: &Image) -> Info {
        let (file, vmdk, nbd) = match image {
            Image::Raw(raw) => (raw.file().path().to_path_buf(), None, None),
            Image::Vmdk(disk) => (
                disk.layers()[0].path.clone(),
                Some(VmdkInfo::of(disk)),
                None,
            ),
            Image::Nbd(disk) => (disk.uri().into(), None, Some(NbdInfo::of(disk))),
        };
        Info {
            file,
            format: image.format().name(),
            capacity: image.disk().capacity(),
            vmdk,
            nbd,
            warnings: image.warnings().to_vec(),
        }
    }
}

/// For people: the file, format and capacity, then a VMDK's layers and extents.
impl std::fmt::Display for Info {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cap = self.capacity;
        writeln!(f, "file:       {}", self.file.display())?;
        writeln!(f, "format:     {}", self.format)?;
        writeln!(f, "capacity:   {} ({cap} bytes)", size(cap))?;
        if let Some(nbd) = &self.nbd {
            writeln!(f, "flags:      {}", nbd.flags.join(", "))?;
            let (min, pref, max) = (nbd.min_block, nbd.preferred_block, nbd.max_block);
            writeln!(f, "block size: min {min}, preferred {pref}, max {max}")?;
            let contexts = nbd.contexts.join(", ");
            let contexts = if contexts.is_empty() {
                "none"
            } else {
                &contexts
            };
            writeln!(f, "contexts:   {contexts}")?;
            writeln!(f, "structured replies: {}", nbd.structured_replies)?;
            writeln!(f, "connections: {}", nbd.connections)?;
        }
        let Some(vmdk) = &self.vmdk else {
            return Ok(());
        };
        writeln!(f, "createType: {}", vmdk.create_type)?;
        if let Some(g) = vmdk.grain_size {
            writeln!(f, "grain size: {}", size(g))?;
        }
        for (depth, layer) in vmdk.layers.iter().enumerate() {
            write_layer(f, depth, layer)?;
        }
        Ok(())
    }
}

/// One layer of a chain and its extents, as `diskray info` prints them.
fn write_layer(
    f: &mut std::fmt::Formatter<'_>,
    depth: usize,
    layer: &LayerInfo,
) -> std::fmt::Result {
    writeln!(f)?;
    writeln!(
        f,
        "layer {depth}: {}  (createType {}, CID {}, parentCID {}, descriptor {})",
        layer.file.display(),
        layer.create_type,
        layer.cid.as_deref().unwrap_or("-"),
        layer.parent_cid.as_deref().unwrap_or("-"),
        layer.descriptor.name(),
    )?;
    let row = |f: &mut std::fmt::Formatter<'_>, cols: [&dyn std::fmt::Display; 6]| {
        let [access, sectors, kind, format, offset, file] = cols;
        writeln!(
            f,
            "  {access:<8} {sectors:>12} {kind:<11} {format:<17} {offset:>10}  {file}"
        )
    };
    row(
        f,
        [
            &"access", &"sectors", &"type", &"format", &"offset", &"file",
        ],
    )?;
    for e in &layer.extents {
        row(
            f,
            [
                &e.access.name(),
                &e.sectors,
                &e.kind,
                &e.format,
                &e.offset,
                &e.file.as_deref().unwrap_or("-"),
            ],
        )?;
        if let Some(HeaderInfo::Hosted(h)) = &e.header {
            let redundant = e.directory_used == Some(DirectoryUsed::Redundant);
            writeln!(
                f,
                "           header v{} flags {:#x} [{}], gd sector {}, rgd sector {}{}",
                h.version,
                h.flags,
                h.flag_names.join(", "),
                h.gd_offset,
                h.rgd_offset,
                if redundant {
                    " (using the redundant directory)"
                } else {
                    ""
                },
            )?;
        }
    }
    Ok(())
}
