//! What a VMDK is made of, as one typed record for `diskray info`: the chain's layers,
//! their descriptors and extents, and each sparse extent's header.

use crate::cowd::CowdHeader;
use crate::descriptor::Access;
use crate::extent::{Extent, ExtentData};
use crate::layer::{DescriptorSource, Layer};
use crate::sesparse::SeSparseHeader;
use crate::sparse::DirectoryUsed;
use crate::VmdkDisk;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The chain as a whole (the top layer's descriptor and extents, and every layer).
#[derive(Debug, Clone, Serialize)]
pub struct VmdkInfo {
    /// The top layer's createType.
    pub create_type: String,
    /// The top layer's CID.
    pub cid: Option<String>,
    /// The top layer's parentCID.
    pub parent_cid: Option<String>,
    /// Bytes per grain of the top layer's first sparse extent.
    pub grain_size: Option<u64>,
    /// The top layer's extents.
    pub extents: Vec<ExtentInfo>,
    /// Every layer, top (0) first.
    pub layers: Vec<LayerInfo>,
}

/// One layer of the chain.
#[derive(Debug, Clone, Serialize)]
pub struct LayerInfo {
    /// The file the layer was opened by.
    pub file: PathBuf,
    /// Where its descriptor came from.
    pub descriptor: DescriptorSource,
    /// Descriptor `version`.
    pub version: Option<u32>,
    /// Descriptor `createType`.
    pub create_type: String,
    /// Descriptor `CID`.
    pub cid: Option<String>,
    /// Descriptor `parentCID`.
    pub parent_cid: Option<String>,
    /// Descriptor `parentFileNameHint`.
    pub parent_hint: Option<String>,
    /// Descriptor `changeTrackPath`.
    pub change_track_path: Option<String>,
    /// Sum of its extents in bytes.
    pub capacity: u64,
    /// Its extents in order.
    pub extents: Vec<ExtentInfo>,
    /// The disk database (`ddb.*` keys without the prefix).
    pub ddb: BTreeMap<String, String>,
}

/// One extent: its descriptor line and what its file holds.
#[derive(Debug, Clone, Serialize)]
pub struct ExtentInfo {
    /// Access mode.
    pub access: Access,
    /// Extent type as the descriptor spells it.
    #[serde(rename = "type")]
    pub kind: String,
    /// Size in sectors.
    pub sectors: u64,
    /// File name as the descriptor gives it.
    pub file: Option<String>,
    /// Start sector in the file (flat extents).
    pub offset: u64,
    /// The file as opened.
    pub path: Option<PathBuf>,
    /// Bytes per grain (sparse kinds).
    pub grain_size: Option<u64>,
    /// `hosted_sparse`, `stream_optimized`, `cowd`, `sesparse`, `flat`, `zero`,
    /// `noaccess` or `device`.
    pub format: &'static str,
    /// The sparse header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<HeaderInfo>,
    /// Which grain directory a hosted sparse extent uses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory_used: Option<DirectoryUsed>,
}

/// A sparse extent's header.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum HeaderInfo {
    /// Hosted sparse or streamOptimized (`KDMV`).
    Hosted(HostedHeaderInfo),
    /// COWD / vmfsSparse.
    Cowd(CowdHeader),
    /// seSparse.
    SeSparse(SeSparseHeader),
}

/// The fields of a hosted sparse header, named for people (sectors unless named).
#[derive(Debug, Clone, Serialize)]
pub struct HostedHeaderInfo {
    /// Header version.
    pub version: u32,
    /// Flag bits.
    pub flags: u32,
    /// The flags' names.
    pub flag_names: Vec<&'static str>,
    /// Capacity in sectors.
    pub capacity_sectors: u64,
    /// Grain size in sectors.
    pub grain_sectors: u64,
    /// Grain table entries per table.
    pub gtes_per_gt: u32,
    /// Embedded descriptor offset.
    pub descriptor_offset: u64,
    /// Embedded descriptor size.
    pub descriptor_size: u64,
    /// Grain directory offset.
    pub gd_offset: u64,
    /// Redundant grain directory offset.
    pub rgd_offset: u64,
    /// Metadata overhead in sectors.
    pub overhead: u64,
    /// The unclean-shutdown byte.
    pub unclean_shutdown: bool,
    /// Compression algorithm (1 = deflate).
    pub compress_algorithm: u16,
}

impl VmdkInfo {
    /// Describes `disk`.
    pub fn of(disk: &VmdkDisk) -> VmdkInfo {
        let layers: Vec<LayerInfo> = disk.layers().iter().map(LayerInfo::of).collect();
        let top = &disk.layers()[0];
        VmdkInfo {
            create_type: top.descriptor.create_type.clone(),
            cid: top.descriptor.cid.clone(),
            parent_cid: top.descriptor.parent_cid.clone(),
            grain_size: top.extents.iter().find_map(grain_bytes),
            extents: layers[0].extents.clone(),
            layers,
        }
    }
}

impl LayerInfo {
    fn of(layer: &Layer) -> LayerInfo {
        let d = &layer.descriptor;
        LayerInfo {
            file: layer.path.clone(),
            descriptor: layer.descriptor_source,
            version: d.version,
            create_type: d.create_type.clone(),
            cid: d.cid.clone(),
            parent_cid: d.parent_cid.clone(),
            parent_hint: d.parent_hint.clone(),
            change_track_path: d.change_track_path.clone(),
            capacity: layer.capacity,
            extents: layer.extents.iter().map(ExtentInfo::of).collect(),
            ddb: d.ddb.iter().cloned().collect(),
        }
    }
}

impl ExtentInfo {
    fn of(e: &Extent) -> ExtentInfo {
        let (format, header, directory_used) = match &e.data {
            ExtentData::Sparse(s) => {
                let h = s.header();
                let info = HostedHeaderInfo {
                    version: h.version,
                    flags: h.flags,
                    flag_names: h.flag_names(),
                    capacity_sectors: h.capacity,
                    grain_sectors: h.grain_size,
                    gtes_per_gt: h.num_gtes_per_gt,
                    descriptor_offset: h.descriptor_offset,
                    descriptor_size: h.descriptor_size,
                    gd_offset: h.gd_offset,
                    rgd_offset: h.rgd_offset,
                    overhead: h.overhead,
                    unclean_shutdown: h.unclean_shutdown,
                    compress_algorithm: h.compress_algorithm,
                };
                let format = if h.compressed() {
                    "stream_optimized"
                } else {
                    "hosted_sparse"
                };
                (
                    format,
                    Some(HeaderInfo::Hosted(info)),
                    Some(s.directory_used),
                )
            }
            ExtentData::Cowd(c) => ("cowd", Some(HeaderInfo::Cowd(c.header.clone())), None),
            ExtentData::SeSparse(s) => (
                "sesparse",
                Some(HeaderInfo::SeSparse(s.header.clone())),
                None,
            ),
            ExtentData::Flat { .. } => ("flat", None, None),
            ExtentData::Zero => ("zero", None, None),
            ExtentData::NoAccess => ("noaccess", None, None),
            ExtentData::Device => ("device", None, None),
        };
        ExtentInfo {
            access: e.line.access,
            kind: e.line.kind.name().to_string(),
            sectors: e.line.sectors,
            file: e.line.file.clone(),
            offset: e.line.offset,
            path: e.file().map(|f| f.path().to_path_buf()),
            grain_size: grain_bytes(e),
            format,
            header,
            directory_used,
        }
    }
}

fn grain_bytes(e: &Extent) -> Option<u64> {
    match &e.data {
        ExtentData::Sparse(s) => Some(s.header().grain_size * 512),
        ExtentData::Cowd(c) => Some(c.header.grain_size * 512),
        ExtentData::SeSparse(_) => Some(crate::sesparse::GRAIN_SECTORS * 512),
        _ => None,
    }
}
