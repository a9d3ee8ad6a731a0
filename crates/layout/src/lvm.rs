//! LVM2 in the disk's tree: every partition (or whole disk) that holds an LVM2 physical
//! volume becomes a node whose children are the logical volumes of its volume group, each
//! a volume with its own filesystem, placed on the disk extent by extent
//! (`docs/formats.md` §9).
//!
//! Classes: a PV's label, header, metadata areas, the bytes before its first extent and the
//! extents of RAID metadata and mirror logs are `metadata`; extents no LV owns (and the
//! slack after the last extent) are free space of the PV, read for residue at the VG's
//! extent size, since LVM allocates and frees whole extents; the extents of an LV are the
//! LV's: mapped by its filesystem when diskray maps it, `unknown` otherwise (thin pools,
//! snapshots, second legs of a mirror, LVs on a missing PV, LUKS…).

use crate::machine::Machine;
use crate::tree::{map_filesystem, Volume};
use diskray_core::{ByteRange, Piece, Placement, RangeSet, Result, VirtualDisk, Warning};
use diskray_guestfs::{probe, Allocation, Content, Slice};
use diskray_lvm::{group_pvs, read_pv, LvDisk, LvRole, LvState, Pv, PvClass, Region, VolumeGroup};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Most pieces one LV is placed in: a striped LV has one per stripe chunk (16 Ki per GiB
/// at 64 KiB stripes); 4 Mi pieces (96 MiB) cover a 256 GiB LV striped that finely.
pub const MAX_PIECES: usize = 1 << 22;

/// What an LV volume is read through.
#[derive(Debug)]
pub struct LvSource {
    /// Its volume group.
    pub vg: Arc<VolumeGroup>,
    /// The LV's index in [`VolumeGroup::lvs`].
    pub lv: usize,
    /// The disk byte ranges of the PVs given to the assembly, in that order.
    pub regions: Vec<ByteRange>,
}

impl LvSource {
    /// The LV as a disk, over `disk` (named `label` in messages).
    pub fn open<'a>(&self, disk: &'a dyn VirtualDisk, label: &Path) -> Result<LvDisk<'a>> {
        let regions: Vec<Region<'a>> = self
            .regions
            .iter()
            .map(|r| Region::new(disk, label, r.start, r.length))
            .collect();
        LvDisk::new(&self.vg, self.lv, &regions)
    }

    /// `VG/LV`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.vg.name, self.vg.lvs[self.lv].name)
    }
}

/// The name an LV's filesystem has in messages: the disk's, with the LV's.
pub fn lv_label(disk_label: &Path, lv: &str) -> PathBuf {
    PathBuf::from(format!("{} [{lv}]", disk_label.display()))
}

/// Reads the PVs among `volumes`, assembles their volume groups, classifies each PV and
/// appends a volume per logical volume.
pub(crate) fn expand(m: &Machine, volumes: &mut Vec<Volume>, warnings: &mut Vec<Warning>) {
    let disk: &dyn VirtualDisk = m;
    let mut pvs: Vec<Pv> = Vec::new();
    let mut owner: Vec<usize> = Vec::new();
    for (i, v) in volumes.iter_mut().enumerate() {
        if v.content != Content::Lvm2 || v.lv.is_some() {
            continue;
        }
        let label = &m.disks()[v.disk].label;
        match read_pv(disk, label, v.start, v.length) {
            Ok(pv) => {
                let at = |w: &Warning| Warning::new(format!("partition {}: {w}", v.index));
                warnings.extend(pv.warnings.iter().map(at));
                pvs.push(pv);
                owner.push(i);
            }
            Err(e) => {
                warnings.push(Warning::new(format!(
                    "partition {}: LVM2 physical volume could not be read ({e}); treated as unknown",
                    v.index
                )));
                v.error = Some(e.to_string());
            }
        }
    }
    for (_, members) in group_pvs(&pvs) {
        let group: Vec<Pv> = members.iter().map(|&k| pvs[k].clone()).collect();
        let vg = match VolumeGroup::assemble(&group) {
            Ok(vg) => Arc::new(vg),
            Err(e) => {
                warnings.push(Warning::new(format!(
                    "LVM2 volume group could not be assembled ({e}); its PVs are unknown"
                )));
                continue;
            }
        };
        warnings.extend(vg.warnings.iter().cloned());
        let holder: Vec<usize> = members.iter().map(|&k| owner[k]).collect();
        classify_pvs(&vg, &holder, volumes);
        let regions: Vec<ByteRange> = group
            .iter()
            .map(|p| ByteRange::new(p.start, p.length))
            .collect();
        for (lv, l) in vg.lvs.iter().enumerate() {
            if l.role != LvRole::Volume {
                continue;
            }
            let source = LvSource {
                vg: vg.clone(),
                lv,
                regions: regions.clone(),
            };
            match lv_volume(m, source, &holder, volumes, warnings) {
                Ok(v) => volumes.push(v),
                Err(e) => warnings.push(Warning::new(format!(
                    "LV {}/{}: {e}; its extents are unknown",
                    vg.name, l.name
                ))),
            }
        }
    }
}

/// Gives each PV volume its classes: metadata, the LVs' extents as children, the rest free.
fn classify_pvs(vg: &VolumeGroup, holder: &[usize], volumes: &mut [Volume]) {
    for slot in &vg.pvs {
        let Some(k) = slot.source else { continue };
        let v = &mut volumes[holder[k]];
        let mut metadata = RangeSet::new();
        let mut children = RangeSet::new();
        for r in &slot.ranges {
            let range = ByteRange::new(r.start, r.length);
            match r.class {
                PvClass::Metadata => metadata.insert(range),
                PvClass::Lv { lv } => match vg.lvs[lv].role {
                    LvRole::RaidMetadata { .. } | LvRole::MirrorLog { .. } => {
                        metadata.insert(range)
                    }
                    _ => children.insert(range),
                },
                PvClass::Free | PvClass::Slack => {}
            }
        }
        v.block_size = Some(vg.extent_size);
        v.unit_origin = slot.pe_start;
        v.fs_size = Some(v.length);
        v.label = Some(vg.name.clone());
        v.children = children;
        v.allocation = Some(Allocation {
            used: metadata.clone(),
            metadata,
            excluded: RangeSet::new(),
            warnings: Vec::new(),
        });
    }
}

/// The volume of one visible LV: placed on the disk, its content probed and mapped.
fn lv_volume(
    m: &Machine,
    source: LvSource,
    holder: &[usize],
    volumes: &[Volume],
    warnings: &mut Vec<Warning>,
) -> Result<Volume> {
    let vg = source.vg.clone();
    let l = &vg.lvs[source.lv];
    let name = source.name();
    let disk_of = |slot: usize| -> Option<u64> {
        let k = vg.pvs.get(slot)?.source?;
        Some(source.regions.get(k)?.start)
    };
    let mut pieces = Vec::new();
    match &l.state {
        LvState::Mapped => {
            for map in &l.mappings {
                let mut off = map.lv_start;
                while off < map.lv_start + map.length {
                    let (slot, pv_off, avail) = map.locate(off);
                    if let Some(d) = disk_of(slot) {
                        pieces.push(Piece {
                            volume: off,
                            disk: d + pv_off,
                            length: avail,
                        });
                    }
                    off += avail.max(1);
                    if pieces.len() > MAX_PIECES {
                        return Err(diskray_core::Error::refused(
                            Path::new(&name),
                            format!("placed in more than {MAX_PIECES} pieces"),
                        ));
                    }
                }
            }
        }
        LvState::Unknown { .. } => {
            let mut off = 0;
            for r in &l.owned {
                if let Some(d) = disk_of(r.pv) {
                    pieces.push(Piece {
                        volume: off,
                        disk: d + r.start,
                        length: r.length,
                    });
                }
                off += r.length;
            }
        }
    }
    let placement = Placement::from_pieces(pieces);
    let on = m.disk_at(placement.first_disk_byte());
    let (disk, label): (&dyn VirtualDisk, &Path) = (m, &m.disks()[on].label);
    // The partition the LV starts in, for people (an LV may span several).
    let first = placement.first_disk_byte();
    let index = holder
        .iter()
        .map(|&h| &volumes[h])
        .find(|v| (v.start..v.start + v.length).contains(&first))
        .map_or(0, |v| v.index);
    let mut v = Volume::new(index, name.clone(), Content::Unknown, l.size, placement);
    v.lv = Some(name.clone());
    v.disk = on;
    if let LvState::Unknown { reason } = &l.state {
        v.error = Some(reason.clone());
        return Ok(v);
    }
    let lv_disk = source.open(disk, label)?;
    let lv_label = lv_label(label, &name);
    let slice = Slice::new(&lv_disk, &lv_label, 0, l.size);
    v.content = probe(&slice)?;
    if v.content == Content::Lvm2 {
        // A PV inside an LV: its own VG would be read through this one; not followed.
        warnings.push(Warning::new(format!(
            "LV {name} holds an LVM2 physical volume (a VG inside a VG), which diskray does not follow; treated as unknown"
        )));
    } else {
        map_filesystem(slice, &mut v, &format!("LV {name}"), warnings);
    }
    v.source = Some(Arc::new(source));
    Ok(v)
}
