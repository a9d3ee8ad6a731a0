//! A whole VMDK disk: the top layer and its parents, resolved grain by grain, top first.
//!
//! Sources: `docs/formats.md` §1.7 (per-grain resolution: allocated → data, zeroed →
//! zeros and stop, unallocated → next layer, below the bottom → zeros; CID checks; a
//! top-layer map is the delta map of one snapshot).

use crate::layer::Layer;
use crate::paths;
use crate::run::RunKind;
use diskray_core::disk::push_run;
use diskray_core::{BlockState, ByteRange, Error, MapRange, Result, VirtualDisk, Warning};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Deepest chain accepted: VMware allows 32 snapshots per disk; twice that leaves room for
/// linked clones while stopping runaway or hostile chains.
pub const MAX_CHAIN_DEPTH: usize = 64;

/// How to open a disk.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Read a child even when its `parentCID` does not match the parent's `CID` (a warning
    /// is recorded instead of an error).
    pub ignore_cid: bool,
    /// Allow extent and parent paths outside the directory of the file that names them.
    pub allow_outside_paths: bool,
    /// Open parents (false: the top layer alone; unallocated grains read as zeros and map
    /// as unallocated, which is the delta map of one snapshot).
    pub follow_parents: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            ignore_cid: false,
            allow_outside_paths: false,
            follow_parents: true,
        }
    }
}

/// An open VMDK disk (one layer, or a snapshot chain).
#[derive(Debug)]
pub struct VmdkDisk {
    layers: Vec<Layer>,
    warnings: Vec<Warning>,
    sector_size: Option<u64>,
}

impl VmdkDisk {
    /// Opens the disk whose top layer is `path`.
    pub fn open(path: &Path, opts: &OpenOptions) -> Result<VmdkDisk> {
        let top = Layer::open(path, opts.allow_outside_paths)?;
        let mut warnings = top.warnings.clone();
        let mut seen: HashSet<PathBuf> = HashSet::new();
        seen.insert(canonical(path));
        let mut layers = vec![top];
        loop {
            let child = layers.last().unwrap();
            if !opts.follow_parents || !child.descriptor.has_parent() {
                break;
            }
            let Some(hint) = child.descriptor.parent_hint.clone() else {
                return Err(Error::refused(
                    &child.path,
                    "descriptor has a parentCID but no parentFileNameHint: cannot find the parent",
                ));
            };
            if layers.len() == MAX_CHAIN_DEPTH {
                return Err(Error::refused(
                    path,
                    format!("snapshot chain is deeper than {MAX_CHAIN_DEPTH} layers"),
                ));
            }
            let parent_path = paths::resolve_parent(&child.path, &hint, opts.allow_outside_paths)?;
            if !seen.insert(canonical(&parent_path)) {
                return Err(Error::refused(
                    &child.path,
                    format!(
                        "parent {} is already in the chain: the chain loops",
                        parent_path.display()
                    ),
                ));
            }
            let parent = Layer::open(&parent_path, opts.allow_outside_paths)?;
            let want = child.descriptor.parent_cid.clone().unwrap_or_default();
            let have = parent.descriptor.cid.clone().unwrap_or_default();
            if want != have {
                let msg = format!(
                    "parentCID {want} does not match the CID {have} of parent {}: the parent was modified after this snapshot was taken",
                    parent_path.display());
                if !opts.ignore_cid {
                    return Err(Error::refused(
                        &child.path,
                        format!("{msg} (pass --ignore-cid to read anyway)"),
                    ));
                }
                warnings.push(Warning::about(
                    &child.path,
                    format!("{msg}; reading anyway (--ignore-cid)"),
                ));
            }
            warnings.extend(parent.warnings.iter().cloned());
            layers.push(parent);
        }
        Ok(VmdkDisk {
            layers,
            warnings,
            sector_size: None,
        })
    }

    /// Sets the guest's logical sector size (the user's `--sector-size`): VMDK itself
    /// counts in 512-byte sectors and does not record the one the guest sees.
    pub fn set_logical_sector_size(&mut self, size: Option<u64>) {
        self.sector_size = size;
    }

    /// The layers, top (the file opened) first.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Warnings collected while opening (worked-around damage, odd descriptors, overrides).
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    fn read_layer(&self, depth: usize, buf: &mut [u8], off: u64) -> Result<()> {
        let layer = &self.layers[depth];
        let len = buf.len() as u64;
        // A parent smaller than its child (the child was grown) reads as zeros past its end.
        let inside = layer.capacity.saturating_sub(off).min(len);
        buf[inside as usize..].fill(0);
        let mut runs = Vec::new();
        layer.runs(off, inside, false, &mut runs)?;
        let mut pos = 0usize;
        for r in runs {
            let sub = &mut buf[pos..pos + r.run.len as usize];
            let at = off + pos as u64;
            match r.run.kind {
                RunKind::Data { .. } | RunKind::Compressed { .. } => {
                    layer.extents[r.extent].read(r.run.kind, sub)?
                }
                RunKind::Zero | RunKind::Hole => sub.fill(0),
                RunKind::Unallocated if depth + 1 < self.layers.len() => {
                    self.read_layer(depth + 1, sub, at)?
                }
                RunKind::Unallocated => sub.fill(0),
                RunKind::Unreadable => {
                    return Err(layer.extents[r.extent].unreadable(&layer.path, at))
                }
            }
            pos += r.run.len as usize;
        }
        Ok(())
    }

    fn map_layer(&self, depth: usize, range: ByteRange, out: &mut Vec<MapRange>) -> Result<()> {
        let layer = &self.layers[depth];
        let bottom = |out: &mut Vec<MapRange>, start, length| {
            push_run(
                out,
                MapRange {
                    start,
                    length,
                    state: BlockState::Unallocated,
                    depth: depth as u32,
                },
            );
        };
        let inside = layer.capacity.saturating_sub(range.start).min(range.length);
        let mut runs = Vec::new();
        layer.runs(range.start, inside, true, &mut runs)?;
        let mut pos = range.start;
        for r in runs {
            let len = r.run.len;
            let state = match r.run.kind {
                RunKind::Data { .. } | RunKind::Compressed { .. } => BlockState::Data,
                RunKind::Zero => BlockState::Zero,
                RunKind::Hole => BlockState::Unallocated,
                RunKind::Unreadable => BlockState::Unreadable,
                RunKind::Unallocated if depth + 1 < self.layers.len() => {
                    self.map_layer(depth + 1, ByteRange::new(pos, len), out)?;
                    pos += len;
                    continue;
                }
                RunKind::Unallocated => {
                    bottom(out, pos, len);
                    pos += len;
                    continue;
                }
            };
            push_run(
                out,
                MapRange {
                    start: pos,
                    length: len,
                    state,
                    depth: depth as u32,
                },
            );
            pos += len;
        }
        bottom(out, pos, range.end() - pos);
        Ok(())
    }
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

impl VirtualDisk for VmdkDisk {
    fn capacity(&self) -> u64 {
        self.layers[0].capacity
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.capacity()) {
            return Err(Error::out_of_range(
                self.layers[0].path.display().to_string(),
                offset,
                buf.len() as u64,
                self.capacity(),
            ));
        }
        self.read_layer(0, buf, offset)
    }

    fn map(&self, range: ByteRange) -> Result<Vec<MapRange>> {
        let range = range
            .intersect(&ByteRange::new(0, self.capacity()))
            .unwrap_or(ByteRange::new(0, 0));
        let mut out = Vec::new();
        self.map_layer(0, range, &mut out)?;
        Ok(out)
    }

    fn logical_sector_size(&self) -> Option<u64> {
        self.sector_size
    }
}
