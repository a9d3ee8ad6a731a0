//! [`VolumeGroup::assemble`]: the PVs of one VG put together, every LV's extents placed on
//! its PVs, and every byte of every PV classified (docs/formats.md §9.7).
//!
//! What is mapped: `striped` (linear is one stripe), `mirror` and `raid1` (read from the
//! first leg that is neither on a missing PV nor marked for rebuild), `raid0`/`raid0_meta` (striped over the images). Everything else (thin,
//! thin-pool, cache, vdo, snapshot COW, writecache, integrity, raid4/5/6/10…) is
//! `unknown` with the reason, and so is every sub-LV it owns and every LV on a missing PV.

use crate::metadata::{AreaRef, SegmentKind, VgMetadata};
use crate::pv::Pv;
use crate::uuid::bare;
use diskray_core::{Error, Result, Warning};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// Deepest chain of sub-LVs followed (an LV on images on LVs…): LVM2 stacks two deep
/// (raid1 on rimage); this refuses cycles and hostile chains.
pub const MAX_LV_DEPTH: usize = 8;

/// A byte run on a PV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Run {
    /// Index into [`VolumeGroup::pvs`].
    pub pv: usize,
    /// PV-relative byte offset.
    pub start: u64,
    /// Length in bytes.
    pub length: u64,
}

/// How one stretch of an LV's bytes lies on the PVs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mapping {
    /// LV byte offset of the stretch.
    pub lv_start: u64,
    /// Its length in bytes.
    pub length: u64,
    /// Chunk size in bytes of the interleave (0: one area, contiguous).
    pub stripe_size: u64,
    /// The areas, one per stripe; each holds `length / areas.len()` bytes from its start.
    pub areas: Vec<Run>,
}

impl Mapping {
    /// The PV run holding LV byte `off` (inside this stretch) and how many bytes from
    /// there are contiguous on it.
    pub fn locate(&self, off: u64) -> (usize, u64, u64) {
        let rel = off - self.lv_start;
        if self.stripe_size == 0 || self.areas.len() == 1 {
            let a = self.areas[0];
            return (a.pv, a.start + rel, self.length - rel);
        }
        let n = self.areas.len() as u64;
        let chunk = rel / self.stripe_size;
        let within = rel % self.stripe_size;
        let a = self.areas[(chunk % n) as usize];
        let row = chunk / n;
        let avail = (self.stripe_size - within).min(self.length - rel);
        (a.pv, a.start + row * self.stripe_size + within, avail)
    }
}

/// What an LV is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum LvRole {
    /// A volume users see (`VISIBLE`): holds a filesystem, swap, another PV…
    Volume,
    /// Leg `leg` of the mirror or RAID LV `parent` (`_mimage_N`, `_rimage_N`): a copy of
    /// (part of) its data; the first leg that is not unknown is the one read.
    Image {
        /// The LV it belongs to.
        parent: String,
        /// Its position among the legs.
        leg: usize,
    },
    /// RAID metadata (`_rmeta_N`) of `parent`.
    RaidMetadata {
        /// The RAID LV.
        parent: String,
    },
    /// Mirror log (`_mlog`) of `parent`.
    MirrorLog {
        /// The mirror LV.
        parent: String,
    },
    /// Data or metadata sub-LV of a pool (thin, cache, vdo) or a snapshot's COW store, or
    /// a pool metadata spare.
    PoolPart {
        /// The pool or snapshot naming it (empty for the spare).
        parent: String,
    },
    /// Any other hidden LV.
    Internal,
}

/// Whether an LV's content is mapped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LvState {
    /// Its bytes are [`LogicalVolume::mappings`].
    Mapped,
    /// Not mapped: every extent it owns is unknown.
    Unknown {
        /// Why, in words.
        reason: String,
    },
}

/// One LV of the assembled VG.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogicalVolume {
    /// Its name.
    pub name: String,
    /// Its UUID as printed.
    pub id: String,
    /// Listed by `lvs` without `-a`.
    pub visible: bool,
    /// What it is for.
    pub role: LvRole,
    /// Size in bytes (extents × extent size).
    pub size: u64,
    /// Mapped or unknown.
    pub state: LvState,
    /// Its bytes on the PVs, in LV order, tiling `[0, size)` (empty when unknown).
    pub mappings: Vec<Mapping>,
    /// The PV extents it owns directly, as byte runs (whatever its state).
    pub owned: Vec<Run>,
}

/// The class of a stretch of a PV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "class", rename_all = "snake_case")]
pub enum PvClass {
    /// Label, PV header, metadata areas and the reserved bytes before the first extent.
    Metadata,
    /// Extents owned by LV `lv` (index into [`VolumeGroup::lvs`]).
    Lv {
        /// The owner.
        lv: usize,
    },
    /// Extents no LV owns: unallocated to the VG.
    Free,
    /// Bytes after the last extent that LVM never uses.
    Slack,
}

/// A stretch of a PV and its class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PvRange {
    /// PV-relative byte offset.
    pub start: u64,
    /// Length in bytes.
    pub length: u64,
    /// What it holds.
    pub class: PvClass,
}

/// One PV of the VG, found or missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PvSlot {
    /// Its key in the metadata (`pv0`…).
    pub key: String,
    /// Its UUID as printed.
    pub uuid: String,
    /// Index into the PVs given to [`VolumeGroup::assemble`]; `None` when missing.
    pub source: Option<usize>,
    /// Byte offset of the first extent.
    pub pe_start: u64,
    /// Number of extents.
    pub pe_count: u64,
    /// Every byte of the PV classified, sorted, tiling it (empty when missing).
    pub ranges: Vec<PvRange>,
}

/// An assembled volume group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeGroup {
    /// Its name.
    pub name: String,
    /// Its UUID.
    pub id: String,
    /// The seqno of the metadata used.
    pub seqno: u64,
    /// Extent size in bytes.
    pub extent_size: u64,
    /// Its PVs in metadata order.
    pub pvs: Vec<PvSlot>,
    /// Its LVs (hidden sub-LVs included) in metadata order.
    pub lvs: Vec<LogicalVolume>,
    /// Missing PVs, unknown LVs, stale copies…, in words.
    pub warnings: Vec<Warning>,
}

impl VolumeGroup {
    /// The LV named `name`.
    pub fn lv(&self, name: &str) -> Option<&LogicalVolume> {
        self.lvs.iter().find(|l| l.name == name)
    }

    /// Puts together the PVs of one VG (any order; PVs of other VGs or without metadata
    /// are fine as long as one carries the VG's metadata). The newest metadata among them
    /// is used. Missing PVs and unmapped LVs are warnings; metadata that contradicts
    /// itself or the PVs (extents past `pe_count`, extents owned twice, a PV larger than
    /// its device, a reference to nothing) is an error at the text's position.
    pub fn assemble(pvs: &[Pv]) -> Result<VolumeGroup> {
        let Some((src, meta)) = pvs
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.metadata.as_ref().map(|m| (i, m)))
            .max_by_key(|(_, m)| m.seqno)
        else {
            let path = pvs.first().map(|p| p.path.clone()).unwrap_or_default();
            return Err(Error::refused(
                &path,
                "no PV given carries a valid copy of the VG metadata",
            ));
        };
        let mut warnings = Vec::new();
        for (i, p) in pvs.iter().enumerate() {
            for w in &p.warnings {
                warnings.push(Warning::new(format!(
                    "{} (PV {}): {w}",
                    p.path.display(),
                    p.label.pv_uuid
                )));
            }
            if let Some(m) = &p.metadata {
                if m.id != meta.id {
                    warnings.push(Warning::new(format!(
                        "{}: PV {} belongs to VG {} ({}), not {}; left out",
                        p.path.display(),
                        p.label.pv_uuid,
                        m.name,
                        m.id,
                        meta.name
                    )));
                } else if m.seqno < meta.seqno && i != src {
                    warnings.push(Warning::new(format!(
                        "{}: PV {} holds seqno {} of VG {}, older than {} (used, from {})",
                        p.path.display(),
                        p.label.pv_uuid,
                        m.seqno,
                        meta.name,
                        meta.seqno,
                        pvs[src].path.display()
                    )));
                }
            }
        }
        Assembler {
            meta,
            pvs,
            warnings,
        }
        .run()
    }
}

/// The PVs of each VG among `pvs`: for every VG (by UUID) whose metadata some PV carries,
/// the indices of the PVs its newest metadata lists (found by PV UUID, so PVs without a
/// metadata area join their VG too), in `pvs` order. PVs no VG lists (orphans) are in no
/// group. Pass each group to [`VolumeGroup::assemble`].
pub fn group_pvs(pvs: &[Pv]) -> Vec<(String, Vec<usize>)> {
    let mut newest: Vec<&crate::metadata::VgMetadata> = Vec::new();
    for m in pvs.iter().filter_map(|p| p.metadata.as_ref()) {
        match newest.iter_mut().find(|n| n.id == m.id) {
            Some(n) if n.seqno < m.seqno => *n = m,
            Some(_) => {}
            None => newest.push(m),
        }
    }
    newest
        .iter()
        .map(|m| {
            let members = pvs
                .iter()
                .enumerate()
                .filter(|(_, p)| m.pvs.iter().any(|x| bare(&x.id) == bare(&p.label.pv_uuid)))
                .map(|(i, _)| i)
                .collect();
            (m.id.clone(), members)
        })
        .collect()
}

struct Assembler<'a> {
    meta: &'a VgMetadata,
    pvs: &'a [Pv],
    warnings: Vec<Warning>,
}

impl Assembler<'_> {
    fn run(mut self) -> Result<VolumeGroup> {
        let m = self.meta;
        let ext = m.extent_bytes();
        let looked_in: Vec<String> = self
            .pvs
            .iter()
            .map(|p| p.path.display().to_string())
            .collect();
        // PV slots.
        let mut slots = Vec::with_capacity(m.pvs.len());
        let mut pv_key = HashMap::new();
        for (k, p) in m.pvs.iter().enumerate() {
            pv_key.insert(p.key.as_str(), k);
            let same = |s: &&Pv| bare(&s.label.pv_uuid) == bare(&p.id);
            let source = self.pvs.iter().position(|s| same(&s));
            // A cloned disk holds the same PV: LVM warns and uses one; so do we, the first.
            let copies: Vec<String> = self
                .pvs
                .iter()
                .filter(same)
                .map(|s| s.path.display().to_string())
                .collect();
            if copies.len() > 1 {
                self.warnings.push(Warning::new(format!(
                    "PV {} ({}) of VG {} is found on several disks: {}; using the first, the others' copies are unknown",
                    p.id, p.key, m.name, copies.join(", ")
                )));
            }
            let pe_start = p.pe_start.checked_mul(512);
            let data_end =
                pe_start.and_then(|s| p.pe_count.checked_mul(ext).and_then(|d| d.checked_add(s)));
            let Some(data_end) = data_end else {
                return Err(m.error(
                    p.pos,
                    format!(
                        "LVM2 metadata: PV {}: pe_start {} and pe_count {} overflow",
                        p.key, p.pe_start, p.pe_count
                    ),
                ));
            };
            if let Some(s) = source {
                if data_end > self.pvs[s].length {
                    return Err(m.error(p.pos, format!(
                        "LVM2 metadata: PV {} ({}): expected its extents to end within the device ({} bytes), found they end at byte {data_end}",
                        p.key, p.id, self.pvs[s].length)));
                }
            } else {
                self.warnings.push(Warning::new(format!(
                    "PV {} ({}) of VG {} is missing: looked for in {}; the LVs on it are unknown",
                    p.id,
                    p.key,
                    m.name,
                    looked_in.join(", ")
                )));
            }
            slots.push(PvSlot {
                key: p.key.clone(),
                uuid: p.id.clone(),
                source,
                pe_start: p.pe_start * 512,
                pe_count: p.pe_count,
                ranges: Vec::new(),
            });
        }
        // Sizes in bytes must fit (a thin LV's virtual size is only bounded by the text),
        // and a stripe chunk must divide the extent, as lvcreate enforces.
        for lv in &m.lvs {
            if lv.extent_count().checked_mul(ext).is_none() {
                return Err(m.error(
                    lv.pos,
                    format!(
                        "LVM2 metadata: LV {}: {} extents of {ext} bytes overflow 64 bits",
                        lv.name,
                        lv.extent_count()
                    ),
                ));
            }
            for seg in &lv.segments {
                if let SegmentKind::Striped { stripe_size, .. }
                | SegmentKind::Raid { stripe_size, .. } = &seg.kind
                {
                    if *stripe_size != 0
                        && (*stripe_size > m.extent_size
                            || !m.extent_size.is_multiple_of(*stripe_size))
                    {
                        return Err(m.error(seg.pos, format!(
                            "LVM2 metadata: LV {}: expected a stripe_size dividing the extent size ({} sectors), found {stripe_size}",
                            lv.name, m.extent_size)));
                    }
                }
            }
        }
        let lv_index: HashMap<&str, usize> = m
            .lvs
            .iter()
            .enumerate()
            .map(|(i, l)| (l.name.as_str(), i))
            .collect();
        let n = m.lvs.len();
        let mut unknown: Vec<Option<String>> = vec![None; n];
        let mut owned: Vec<Vec<Run>> = vec![Vec::new(); n];
        let mut owners: Vec<Vec<(u64, u64, usize, usize)>> = vec![Vec::new(); slots.len()];
        let mut roles: Vec<Option<LvRole>> = vec![None; n];
        // children[i]: sub-LVs whose state follows LV i's.
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
        // (parent, leg): a mirror or raid1 leg, a copy of its parent's data. A leg that is
        // unknown leaves its parent readable from another leg.
        let mut copies: Vec<Edge> = Vec::new();
        // (parent, sub-LV): a mirror log or RAID metadata sub-LV; the data does not depend
        // on it being readable (a mirror runs without its log, a RAID without a leg).
        let mut aux: Vec<Edge> = Vec::new();
        for (li, lv) in m.lvs.iter().enumerate() {
            for seg in &lv.segments {
                let (areas, per_area): (&[AreaRef], u64) = match &seg.kind {
                    SegmentKind::Striped { areas, .. } => {
                        (areas, seg.extent_count / areas.len() as u64)
                    }
                    SegmentKind::Mirror { areas, .. } => (areas, seg.extent_count),
                    _ => (&[], 0),
                };
                for (leg, a) in areas.iter().enumerate() {
                    if let Some(&k) = pv_key.get(a.name.as_str()) {
                        let end = a
                            .extent
                            .checked_add(per_area)
                            .filter(|&e| e <= slots[k].pe_count);
                        if end.is_none() {
                            return Err(m.error(seg.pos, format!(
                                "LVM2 metadata: LV {} segment at extent {}: extents {}..{} of PV {} run past its pe_count {}",
                                lv.name, seg.start_extent, a.extent, a.extent.saturating_add(per_area), a.name, slots[k].pe_count)));
                        }
                        owners[k].push((a.extent, per_area, li, seg.pos));
                        owned[li].push(Run {
                            pv: k,
                            start: slots[k].pe_start + a.extent * ext,
                            length: per_area * ext,
                        });
                        if slots[k].source.is_none() && unknown[li].is_none() {
                            unknown[li] = Some(format!(
                                "it has extents on the missing PV {}",
                                slots[k].uuid
                            ));
                        }
                    } else if let Some(&sub) = lv_index.get(a.name.as_str()) {
                        let sub_size = m.lvs[sub].extent_count();
                        if a.extent.checked_add(per_area).is_none_or(|e| e > sub_size) || sub == li
                        {
                            return Err(m.error(seg.pos, format!(
                                "LVM2 metadata: LV {}: area {} extents {}..{} expected inside that LV ({sub_size} extents)",
                                lv.name, a.name, a.extent, a.extent.saturating_add(per_area))));
                        }
                        children[li].push(sub);
                        if matches!(seg.kind, SegmentKind::Mirror { .. }) {
                            copies.push((li, sub));
                            set_role(
                                &mut roles,
                                sub,
                                LvRole::Image {
                                    parent: lv.name.clone(),
                                    leg,
                                },
                            );
                        } else {
                            set_role(&mut roles, sub, LvRole::Internal);
                        }
                    } else {
                        return Err(m.error(
                            seg.pos,
                            format!(
                                "LVM2 metadata: LV {}: area {:?} names neither a PV nor an LV",
                                lv.name, a.name
                            ),
                        ));
                    }
                }
                let named = |name: &str| -> Result<usize> {
                    lv_index.get(name).copied().filter(|&s| s != li).ok_or_else(|| {
                        m.error(seg.pos, format!("LVM2 metadata: LV {}: segment names LV {name:?}, which the VG does not hold", lv.name))
                    })
                };
                match &seg.kind {
                    SegmentKind::Mirror { log: Some(log), .. } => {
                        let s = named(log)?;
                        children[li].push(s);
                        aux.push((li, s));
                        set_role(
                            &mut roles,
                            s,
                            LvRole::MirrorLog {
                                parent: lv.name.clone(),
                            },
                        );
                    }
                    SegmentKind::Raid { images, metas, .. } => {
                        for (leg, img) in images.iter().enumerate() {
                            let s = named(img)?;
                            children[li].push(s);
                            if seg.type_name == "raid1" {
                                copies.push((li, s));
                            }
                            set_role(
                                &mut roles,
                                s,
                                LvRole::Image {
                                    parent: lv.name.clone(),
                                    leg,
                                },
                            );
                        }
                        for meta in metas {
                            let s = named(meta)?;
                            children[li].push(s);
                            if seg.type_name == "raid1" {
                                aux.push((li, s));
                            }
                            set_role(
                                &mut roles,
                                s,
                                LvRole::RaidMetadata {
                                    parent: lv.name.clone(),
                                },
                            );
                        }
                        let t = seg.type_name.as_str();
                        if !matches!(t, "raid1" | "raid0" | "raid0_meta") && unknown[li].is_none() {
                            unknown[li] = Some(format!(
                                "segment type {t} (parity or RAID10 layout) is not mapped"
                            ));
                        }
                    }
                    SegmentKind::Other { references } => {
                        let t = seg.type_name.as_str();
                        if t == "snapshot" {
                            // The origin is an ordinary LV; only the COW store is opaque.
                            if let Some((_, cow)) =
                                references.iter().find(|(k, _)| k == "cow_store")
                            {
                                let s = named(cow)?;
                                set_role(
                                    &mut roles,
                                    s,
                                    LvRole::PoolPart {
                                        parent: lv.name.clone(),
                                    },
                                );
                                if unknown[s].is_none() {
                                    unknown[s] = Some(format!(
                                        "it is the COW store of snapshot {}",
                                        lv.name
                                    ));
                                }
                            }
                        } else {
                            for (_, r) in references {
                                let s = named(r)?;
                                children[li].push(s);
                                set_role(
                                    &mut roles,
                                    s,
                                    LvRole::PoolPart {
                                        parent: lv.name.clone(),
                                    },
                                );
                            }
                        }
                        if unknown[li].is_none() {
                            unknown[li] = Some(format!("segment type {t} is not mapped"));
                        }
                    }
                    _ => {}
                }
            }
        }
        // Every PV extent is owned at most once.
        for (k, list) in owners.iter_mut().enumerate() {
            list.sort_unstable();
            for w in list.windows(2) {
                if w[0].0 + w[0].1 > w[1].0 {
                    let (a, b) = (&m.lvs[w[0].2].name, &m.lvs[w[1].2].name);
                    return Err(m.error(
                        w[1].3,
                        format!(
                        "LVM2 metadata: extent {} of PV {} is mapped twice (by LV {a} and LV {b})",
                        w[1].0, slots[k].key),
                    ));
                }
            }
        }
        // A leg LVM marks for rebuild (`lvconvert --replace`/`--rebuild`) is not in sync.
        for &(p, c) in &copies {
            if m.lvs[c].status.iter().any(|f| f == "REBUILD") && unknown[c].is_none() {
                unknown[c] = Some(format!(
                    "it is a leg of {} marked for rebuild (not in sync)",
                    m.lvs[p].name
                ));
            }
        }
        spread_unknown(m, &children, &copies, &aux, &mut unknown);
        // Mappings, sub-LVs first (memoised; depth-bounded), then the legs each mirror
        // and raid1 LV reads when its first leg is unknown.
        let resolver = Resolver {
            m,
            slots: &slots,
            pv_key: &pv_key,
            lv_index: &lv_index,
            unknown: &unknown,
        };
        let mut memo: Vec<Option<Vec<Mapping>>> = vec![None; n];
        let mut failed = Vec::new();
        for i in (0..n).filter(|&i| unknown[i].is_none()) {
            if let Err(why) = resolver.resolve(i, 0, &mut memo) {
                failed.push((i, why.0));
            }
        }
        for (i, lv) in m.lvs.iter().enumerate() {
            if unknown[i].is_some() || failed.iter().any(|f| f.0 == i) {
                continue;
            }
            for seg in &lv.segments {
                let legs = seg.copies();
                if let Some(k) = resolver.first_usable(&legs).filter(|&k| k > 0) {
                    self.warnings.push(Warning::new(format!(
                        "LV {}/{} is read from leg {k} ({}): leg 0 ({}) is unknown: {}",
                        m.name,
                        lv.name,
                        legs[k].name,
                        legs[0].name,
                        resolver.why_unusable(&legs[0])
                    )));
                }
            }
        }
        for (i, why) in failed {
            unknown[i] = Some(why);
        }
        let mut lvs = Vec::with_capacity(n);
        for (i, lv) in m.lvs.iter().enumerate() {
            let role = roles[i].clone().unwrap_or_else(|| {
                if lv.visible() {
                    LvRole::Volume
                } else if lv.name.ends_with("_pmspare") {
                    LvRole::PoolPart {
                        parent: String::new(),
                    }
                } else {
                    LvRole::Internal
                }
            });
            let state = match &unknown[i] {
                Some(reason) => {
                    if lv.visible() || !owned[i].is_empty() {
                        self.warnings.push(Warning::new(format!(
                            "LV {}/{} is unknown (kept whole): {reason}",
                            m.name, lv.name
                        )));
                    }
                    LvState::Unknown {
                        reason: reason.clone(),
                    }
                }
                None => LvState::Mapped,
            };
            let mappings = if unknown[i].is_none() {
                memo[i].take().unwrap_or_default()
            } else {
                Vec::new()
            };
            lvs.push(LogicalVolume {
                name: lv.name.clone(),
                id: lv.id.clone(),
                visible: lv.visible(),
                role,
                size: lv.extent_count() * ext,
                state,
                mappings,
                owned: std::mem::take(&mut owned[i]),
            });
        }
        for (k, slot) in slots.iter_mut().enumerate() {
            if let Some(s) = slot.source {
                slot.ranges = tile(&self.pvs[s], slot, &owners[k], ext);
            }
        }
        Ok(VolumeGroup {
            name: m.name.clone(),
            id: m.id.clone(),
            seqno: m.seqno,
            extent_size: ext,
            pvs: slots,
            lvs,
            warnings: self.warnings,
        })
    }
}

/// A (parent LV, sub-LV) pair, by index.
type Edge = (usize, usize);

/// Spreads unknown down to sub-LVs and up to their parents, to a fixed point; except that
/// an unknown leg of a mirror or raid1 LV (`copies`: (parent, leg)) leaves its parent
/// readable from another leg, until every leg of it is unknown, and an unknown log or
/// RAID metadata sub-LV (`aux`: (parent, sub-LV)) leaves its parent as it is.
fn spread_unknown(
    m: &VgMetadata,
    children: &[Vec<usize>],
    copies: &[Edge],
    aux: &[Edge],
    unknown: &mut [Option<String>],
) {
    let n = unknown.len();
    let mut parents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (p, cs) in children.iter().enumerate() {
        for &c in cs {
            parents[c].push(p);
        }
    }
    let spared: HashSet<Edge> = copies.iter().chain(aux).copied().collect();
    let mut legs: HashMap<usize, Vec<usize>> = HashMap::new();
    for &(p, c) in copies {
        legs.entry(p).or_default().push(c);
    }
    let mut work: Vec<usize> = (0..n).filter(|&i| unknown[i].is_some()).collect();
    loop {
        while let Some(i) = work.pop() {
            for &c in &children[i] {
                if unknown[c].is_none() {
                    unknown[c] = Some(format!(
                        "it belongs to LV {}, which is unknown",
                        m.lvs[i].name
                    ));
                    work.push(c);
                }
            }
            for &p in &parents[i] {
                if unknown[p].is_none() && !spared.contains(&(p, i)) {
                    unknown[p] = Some(format!("its sub-LV {} is unknown", m.lvs[i].name));
                    work.push(p);
                }
            }
        }
        // A mirror or raid1 LV all of whose legs are unknown is unknown.
        for (&p, ls) in &legs {
            if unknown[p].is_none() && ls.iter().all(|&l| unknown[l].is_some()) {
                unknown[p] = Some("every one of its legs is unknown".to_string());
                work.push(p);
            }
        }
        if work.is_empty() {
            break;
        }
    }
}

fn set_role(roles: &mut [Option<LvRole>], lv: usize, role: LvRole) {
    if roles[lv].is_none() || matches!(roles[lv], Some(LvRole::Internal)) {
        roles[lv] = Some(role);
    }
}

/// Why an LV cannot be mapped: it is then unknown, and this is the reason its warning gives.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Unmappable(String);

impl From<String> for Unmappable {
    fn from(why: String) -> Self {
        Unmappable(why)
    }
}

impl From<&str> for Unmappable {
    fn from(why: &str) -> Self {
        Unmappable(why.to_string())
    }
}

/// What resolving mappings needs: the metadata, the PV slots, names to indexes, and which
/// LVs are unknown.
struct Resolver<'a> {
    m: &'a VgMetadata,
    slots: &'a [PvSlot],
    pv_key: &'a HashMap<&'a str, usize>,
    lv_index: &'a HashMap<&'a str, usize>,
    unknown: &'a [Option<String>],
}

impl Resolver<'_> {
    /// The first of `legs` (copies of the same data) that can be read: on a PV that is
    /// present, or a sub-LV that is not unknown.
    fn first_usable(&self, legs: &[AreaRef]) -> Option<usize> {
        legs.iter().position(|a| self.why_not(a).is_none())
    }

    /// Why leg `a` cannot be read (words for a warning), or `None` when it can.
    fn why_not(&self, a: &AreaRef) -> Option<String> {
        if let Some(&k) = self.pv_key.get(a.name.as_str()) {
            let slot = &self.slots[k];
            return slot
                .source
                .is_none()
                .then(|| format!("it is on the missing PV {}", slot.uuid));
        }
        let sub = *self.lv_index.get(a.name.as_str())?;
        self.unknown[sub].clone()
    }

    /// [`Resolver::why_not`] for a leg known to be unusable.
    fn why_unusable(&self, a: &AreaRef) -> String {
        self.why_not(a).unwrap_or_default()
    }

    /// The mappings of LV `i`, or why it cannot be mapped.
    fn resolve(
        &self,
        i: usize,
        depth: usize,
        memo: &mut Vec<Option<Vec<Mapping>>>,
    ) -> std::result::Result<Vec<Mapping>, Unmappable> {
        let (m, slots, pv_key, lv_index) = (self.m, self.slots, self.pv_key, self.lv_index);
        if let Some(done) = &memo[i] {
            return Ok(done.clone());
        }
        if depth > MAX_LV_DEPTH {
            return Err(Unmappable(format!(
                "sub-LVs nest deeper than {MAX_LV_DEPTH} (or form a cycle)"
            )));
        }
        let ext = m.extent_bytes();
        let lv = &m.lvs[i];
        let mut out = Vec::new();
        for seg in &lv.segments {
            let lv_start = seg.start_extent * ext;
            let length = seg.extent_count * ext;
            // Each area as a run on a PV: a PV area directly, an LV area through that LV's
            // own mapping, which must be one contiguous run over the range used.
            let mut area = |a: &AreaRef, count: u64| -> std::result::Result<Run, Unmappable> {
                if let Some(&k) = pv_key.get(a.name.as_str()) {
                    return Ok(Run {
                        pv: k,
                        start: slots[k].pe_start + a.extent * ext,
                        length: count * ext,
                    });
                }
                let sub = lv_index[a.name.as_str()];
                let maps = self.resolve(sub, depth + 1, memo)?;
                let (from, len) = (a.extent * ext, count * ext);
                maps.iter()
                    .find(|mp| mp.lv_start <= from && from + len <= mp.lv_start + mp.length)
                    .filter(|mp| mp.areas.len() == 1)
                    .map(|mp| Run {
                        pv: mp.areas[0].pv,
                        start: mp.areas[0].start + (from - mp.lv_start),
                        length: len,
                    })
                    .ok_or_else(|| {
                        Unmappable(format!(
                            "its area on sub-LV {} is not one contiguous run",
                            a.name
                        ))
                    })
            };
            let mapping = match &seg.kind {
                SegmentKind::Striped { stripe_size, areas } => {
                    let per = seg.extent_count / areas.len() as u64;
                    let runs = areas
                        .iter()
                        .map(|a| area(a, per))
                        .collect::<std::result::Result<Vec<_>, _>>()?;
                    Mapping {
                        lv_start,
                        length,
                        stripe_size: stripe_size * 512,
                        areas: runs,
                    }
                }
                SegmentKind::Mirror { areas, .. } => {
                    let leg = self
                        .first_usable(&seg.copies())
                        .ok_or("every leg is unknown")?;
                    Mapping {
                        lv_start,
                        length,
                        stripe_size: 0,
                        areas: vec![area(&areas[leg], seg.extent_count)?],
                    }
                }
                SegmentKind::Raid {
                    stripe_size,
                    images,
                    ..
                } => {
                    let raid0 = seg.type_name.starts_with("raid0");
                    let used: Vec<&String> = if raid0 {
                        images.iter().collect()
                    } else {
                        // raid1: the first leg that is not unknown.
                        let leg = self.first_usable(&seg.copies()).unwrap_or(0);
                        images.iter().skip(leg).take(1).collect()
                    };
                    if used.is_empty() {
                        return Err("a RAID segment without images".into());
                    }
                    // RAID images are addressed from their start (LVM2's raid segments carry
                    // no per-image extent offset); each holds its share of the segment.
                    let per = seg.extent_count / used.len() as u64;
                    let start_in_image = seg.start_extent / used.len() as u64;
                    let runs = used
                        .iter()
                        .map(|img| {
                            area(
                                &AreaRef {
                                    name: (*img).clone(),
                                    extent: start_in_image,
                                },
                                per,
                            )
                        })
                        .collect::<std::result::Result<Vec<_>, _>>()?;
                    let stripe = if raid0 { stripe_size * 512 } else { 0 };
                    if raid0 && (stripe == 0 || seg.extent_count % used.len() as u64 != 0) {
                        return Err(
                            "a raid0 segment whose extents do not divide over its images".into(),
                        );
                    }
                    Mapping {
                        lv_start,
                        length,
                        stripe_size: stripe,
                        areas: runs,
                    }
                }
                SegmentKind::Other { .. } => {
                    return Err(Unmappable(format!(
                        "segment type {} is not mapped",
                        seg.type_name
                    )))
                }
            };
            out.push(mapping);
        }
        memo[i] = Some(out.clone());
        Ok(out)
    }
}

/// Every byte of a found PV classified: metadata before the first extent and in the
/// metadata areas, each extent owned or free, slack after the last extent.
fn tile(pv: &Pv, slot: &PvSlot, owners: &[(u64, u64, usize, usize)], ext: u64) -> Vec<PvRange> {
    let mut marks: Vec<PvRange> = Vec::new();
    let data_end = slot.pe_start + slot.pe_count * ext;
    marks.push(PvRange {
        start: 0,
        length: slot.pe_start,
        class: PvClass::Metadata,
    });
    let mut next = 0u64;
    for &(e, count, lv, _) in owners {
        if e > next {
            marks.push(PvRange {
                start: slot.pe_start + next * ext,
                length: (e - next) * ext,
                class: PvClass::Free,
            });
        }
        marks.push(PvRange {
            start: slot.pe_start + e * ext,
            length: count * ext,
            class: PvClass::Lv { lv },
        });
        next = e + count;
    }
    if slot.pe_count > next {
        marks.push(PvRange {
            start: slot.pe_start + next * ext,
            length: (slot.pe_count - next) * ext,
            class: PvClass::Free,
        });
    }
    // After the data: slack, except metadata areas (the second copy lives at the end).
    let mut at = data_end;
    let mut tail: Vec<(u64, u64)> = pv
        .label
        .metadata_areas
        .iter()
        .filter(|a| a.offset >= data_end)
        .map(|a| (a.offset, a.size.min(pv.length - a.offset)))
        .collect();
    tail.sort_unstable();
    for (off, size) in tail {
        if off > at {
            marks.push(PvRange {
                start: at,
                length: off - at,
                class: PvClass::Slack,
            });
        }
        if off >= at {
            marks.push(PvRange {
                start: off,
                length: size,
                class: PvClass::Metadata,
            });
            at = off + size;
        }
    }
    if pv.length > at {
        marks.push(PvRange {
            start: at,
            length: pv.length - at,
            class: PvClass::Slack,
        });
    }
    let mut out: Vec<PvRange> = Vec::with_capacity(marks.len());
    for r in marks.into_iter().filter(|r| r.length > 0) {
        match out.last_mut() {
            Some(l) if l.class == r.class && l.start + l.length == r.start => l.length += r.length,
            _ => out.push(r),
        }
    }
    out
}
