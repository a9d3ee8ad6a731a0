//! One image of a snapshot chain: its descriptor (standalone or embedded) and its extents.
//!
//! Sources: VMware "Virtual Disk Format 1.1" (embedded descriptors, extent order);
//! `docs/formats.md` §1.2 (embedded file names are informational: the first SPARSE
//! extent of an embedded descriptor is the file itself; descriptorSize bounds the text).

use crate::cowd::{self, CowdExtent};
use crate::descriptor::{self, Access, Descriptor, ExtentLine, ExtentType, MAX_DESCRIPTOR_BYTES};
use crate::extent::{Extent, ExtentData};
use crate::paths;
use crate::run::Run;
use crate::sesparse::{self, SeSparseExtent};
use crate::sparse::SparseExtent;
use crate::sparse_header::{self, SparseHeader};
use diskray_core::{Error, Fields, FileSource, Result, Warning};
use std::path::{Path, PathBuf};

/// How a layer's descriptor was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DescriptorSource {
    /// A separate text file.
    Standalone,
    /// Embedded in the first sparse extent.
    Embedded,
    /// None: an extent file opened alone; diskray made up a one-extent descriptor.
    Synthesised,
}

impl DescriptorSource {
    /// The name JSON uses.
    pub fn name(self) -> &'static str {
        match self {
            DescriptorSource::Standalone => "standalone",
            DescriptorSource::Embedded => "embedded",
            DescriptorSource::Synthesised => "synthesised",
        }
    }
}

/// One opened image.
#[derive(Debug)]
pub struct Layer {
    /// The file the layer was opened by.
    pub path: PathBuf,
    /// Its descriptor.
    pub descriptor: Descriptor,
    /// Where the descriptor came from.
    pub descriptor_source: DescriptorSource,
    /// The extents in order.
    pub extents: Vec<Extent>,
    /// Sum of the extent sizes in bytes.
    pub capacity: u64,
    /// Warnings found while opening.
    pub warnings: Vec<Warning>,
}

/// A run of a layer, tagged with the extent it belongs to.
#[derive(Debug, Clone, Copy)]
pub struct LayerRun {
    /// Index into [`Layer::extents`].
    pub extent: usize,
    /// The run.
    pub run: Run,
}

impl Layer {
    /// Opens the image at `path` (a descriptor, or a sparse file with an embedded one).
    pub fn open(path: &Path, allow_outside: bool) -> Result<Layer> {
        let file = FileSource::open(path)?;
        let head = file.read_up_to(0, 4096)?;
        let head_fields = Fields::new(&head, "extent header", path, 0);
        let magic32 = head_fields.le32(0).ok();
        let magic64 = head_fields.le64(0).ok();
        if magic32 == Some(sparse_header::MAGIC) {
            return Self::open_sparse_file(file, &head, allow_outside);
        }
        if magic32 == Some(cowd::MAGIC) || magic64 == Some(sesparse::MAGIC) {
            let cowd = magic32 == Some(cowd::MAGIC);
            let data = if cowd {
                ExtentData::Cowd(Box::new(CowdExtent::open(file)?))
            } else {
                ExtentData::SeSparse(Box::new(SeSparseExtent::open(file)?))
            };
            let (sectors, kind, create) = match &data {
                ExtentData::Cowd(c) => (c.header.capacity, ExtentType::VmfsSparse, "vmfsSparse"),
                ExtentData::SeSparse(s) => (s.header.capacity, ExtentType::SeSparse, "seSparse"),
                _ => unreachable!(),
            };
            let warning = format!(
                "{} is a {create} delta extent without its descriptor: its parent is unknown, so unallocated grains read as zeros; open the descriptor instead",
                path.display());
            return Ok(Self::synthesised(
                path,
                data,
                sectors,
                kind,
                create,
                vec![Warning::new(warning)],
            ));
        }
        if !descriptor::looks_like_descriptor(&head) {
            return Err(Error::refused(
                path,
                "not a VMDK: no sparse header magic (KDMV, COWD, seSparse) and no text descriptor",
            ));
        }
        if file.len() > MAX_DESCRIPTOR_BYTES as u64 {
            return Err(Error::corrupt(
                path,
                0,
                format!(
                    "text descriptor is {} bytes, more than the {MAX_DESCRIPTOR_BYTES} accepted",
                    file.len()
                ),
            ));
        }
        let text = file.read_up_to(0, MAX_DESCRIPTOR_BYTES)?;
        let desc = descriptor::parse(&text, path, 0)?;
        let mut layer = Layer {
            path: path.to_path_buf(),
            descriptor: desc,
            descriptor_source: DescriptorSource::Standalone,
            extents: Vec::new(),
            capacity: 0,
            warnings: Vec::new(),
        };
        layer.open_extents(None, allow_outside)?;
        Ok(layer)
    }

    fn open_sparse_file(file: FileSource, head: &[u8], allow_outside: bool) -> Result<Layer> {
        let path = file.path().to_path_buf();
        let header = SparseHeader::parse(head, &path, 0)?;
        if header.descriptor_offset == 0 {
            let sectors = header.capacity;
            let extent = ExtentData::Sparse(Box::new(SparseExtent::open(file)?));
            let warning = format!(
                "{} has no embedded descriptor; read as a single sparse extent",
                path.display()
            );
            return Ok(Self::synthesised(
                &path,
                extent,
                sectors,
                ExtentType::Sparse,
                "monolithicSparse",
                vec![Warning::new(warning)],
            ));
        }
        let at = header
            .descriptor_offset
            .checked_mul(512)
            .filter(|&a| a < file.len());
        let Some(at) = at else {
            return Err(Error::corrupt(
                &path,
                28,
                format!(
                    "embedded descriptor at sector {} lies outside the file",
                    header.descriptor_offset
                ),
            ));
        };
        let size = header
            .descriptor_size
            .saturating_mul(512)
            .min(MAX_DESCRIPTOR_BYTES as u64);
        let text = file.read_up_to(at, size as usize)?;
        let desc = descriptor::parse(&text, &path, at)?;
        let mut layer = Layer {
            path,
            descriptor: desc,
            descriptor_source: DescriptorSource::Embedded,
            extents: Vec::new(),
            capacity: 0,
            warnings: Vec::new(),
        };
        layer.open_extents(Some(file), allow_outside)?;
        Ok(layer)
    }

    fn synthesised(
        path: &Path,
        data: ExtentData,
        sectors: u64,
        kind: ExtentType,
        create: &str,
        warnings: Vec<Warning>,
    ) -> Layer {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let line = ExtentLine {
            access: Access::ReadWrite,
            sectors,
            kind,
            file: name,
            offset: 0,
            line: 0,
        };
        let descriptor = Descriptor {
            create_type: create.to_string(),
            extents: vec![line.clone()],
            ..Descriptor::default()
        };
        Layer {
            path: path.to_path_buf(),
            descriptor,
            descriptor_source: DescriptorSource::Synthesised,
            extents: vec![Extent {
                line,
                start: 0,
                len: sectors * 512,
                data,
            }],
            capacity: sectors * 512,
            warnings,
        }
    }

    /// Opens every extent line; `embedded` is the sparse file holding the descriptor.
    fn open_extents(
        &mut self,
        mut embedded: Option<FileSource>,
        allow_outside: bool,
    ) -> Result<()> {
        let mut start = 0u64;
        for line in self.descriptor.extents.clone() {
            let len = line.sectors * 512;
            let data = self.open_extent(&line, &mut embedded, allow_outside)?;
            self.extents.push(Extent {
                line,
                start,
                len,
                data,
            });
            start += len;
        }
        self.capacity = start;
        if self.capacity == 0 {
            return Err(Error::corrupt(
                &self.path,
                0,
                "descriptor extents add up to 0 bytes",
            ));
        }
        Ok(())
    }

    fn open_extent(
        &mut self,
        line: &ExtentLine,
        embedded: &mut Option<FileSource>,
        allow_outside: bool,
    ) -> Result<ExtentData> {
        let desc_path = self.path.clone();
        if line.access == Access::NoAccess {
            self.warnings.push(Warning::new(format!(
                "descriptor line {}: NOACCESS extent of {} sectors; reads there are refused",
                line.line, line.sectors
            )));
            return Ok(ExtentData::NoAccess);
        }
        let needs_file = !matches!(line.kind, ExtentType::Zero | ExtentType::Device(_));
        let file = match (&line.kind, line.file.as_deref()) {
            (ExtentType::Sparse, _) if embedded.is_some() => embedded.take(),
            (_, Some(name)) if needs_file => {
                let p = paths::resolve_extent(&desc_path, name, line.line, allow_outside)?;
                Some(FileSource::open(&p)?)
            }
            (_, None) if needs_file => {
                return Err(Error::corrupt(
                    &desc_path,
                    0,
                    format!(
                        "descriptor line {}: {} extent without a file name",
                        line.line,
                        line.kind.name()
                    ),
                ));
            }
            _ => None,
        };
        Ok(match (&line.kind, file) {
            (ExtentType::Sparse, Some(f)) => {
                let s = SparseExtent::open(f)?;
                if s.header().capacity != line.sectors {
                    self.warnings.push(Warning::new(format!(
                        "descriptor line {}: extent is {} sectors but {} says {}; the descriptor wins",
                        line.line, line.sectors, s.file().path().display(), s.header().capacity)));
                }
                self.warnings.extend(s.warnings.iter().cloned());
                ExtentData::Sparse(Box::new(s))
            }
            (ExtentType::VmfsSparse, Some(f)) => ExtentData::Cowd(Box::new(CowdExtent::open(f)?)),
            (ExtentType::SeSparse, Some(f)) => {
                ExtentData::SeSparse(Box::new(SeSparseExtent::open(f)?))
            }
            (ExtentType::Flat | ExtentType::Vmfs, Some(f)) => {
                let start = line.offset.checked_mul(512);
                let end = start.and_then(|s| s.checked_add(line.sectors * 512));
                match (start, end) {
                    (Some(start), Some(end)) if end <= f.len() => ExtentData::Flat { file: f, start },
                    _ => return Err(Error::corrupt(&desc_path, 0, format!(
                        "descriptor line {}: flat extent needs sectors {}..{} of {}, but the file has {} bytes",
                        line.line, line.offset, line.offset.saturating_add(line.sectors), f.path().display(), f.len()))),
                }
            }
            (ExtentType::Zero, _) => ExtentData::Zero,
            (ExtentType::Device(kind), _) => {
                self.warnings.push(Warning::new(format!(
                    "descriptor line {}: {kind} device extent is not part of these files; reads there are refused", line.line)));
                ExtentData::Device
            }
            (_, None) => unreachable!("file-backed kinds have a file here"),
        })
    }

    /// Resolves `[off, off + len)` of the layer into runs tagged with their extent.
    pub fn runs(&self, off: u64, len: u64, for_map: bool, out: &mut Vec<LayerRun>) -> Result<()> {
        let end = off + len;
        let mut i = self.extents.partition_point(|e| e.start + e.len <= off);
        let mut pos = off;
        let mut scratch = Vec::new();
        while pos < end && i < self.extents.len() {
            let e = &self.extents[i];
            let local = pos - e.start;
            let take = (e.len - local).min(end - pos);
            scratch.clear();
            e.runs(local, take, for_map, &mut scratch)?;
            out.extend(scratch.iter().map(|&run| LayerRun { extent: i, run }));
            pos += take;
            i += 1;
        }
        Ok(())
    }
}
