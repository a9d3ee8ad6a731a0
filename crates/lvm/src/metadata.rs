//! The typed VG model read from the metadata text's tree ([`crate::text`]): the VG, its
//! PVs, its LVs and their segments, as LVM2 `lib/format_text/import_vsn1.c` reads them
//! (docs/formats.md §9.5). Checks here are those the text alone can answer (counts
//! agree with arrays, segments follow each other); the assembly ([`crate::map`]) checks
//! the extents against the PVs.

use crate::mda::{TextCopy, TextOrigin};
use crate::text::{self, Section, Value};
use diskray_core::{Error, Result};
use serde::Serialize;

/// Most PVs in one VG: LVM2 has no hard limit; VMs have a handful, big SANs a few
/// hundred.
pub const MAX_PVS: usize = 4096;
/// Most LVs in one VG (hidden sub-LVs included): LVM2 has no hard limit; this bounds the
/// model while admitting VGs of tens of thousands of thin snapshots.
pub const MAX_LVS: usize = 100_000;
/// Most segments of one LV: each `lvextend` onto other extents adds one.
pub const MAX_SEGMENTS: usize = 10_000;
/// Most stripes (or mirror/RAID legs) of one segment: LVM2's `MAX_STRIPES` is 128 and its
/// RAID image limit 64.
pub const MAX_STRIPES: usize = 128;

/// An area a segment uses: `extent` extents into the PV (`pv0`…) or the sub-LV `name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AreaRef {
    /// A PV key of the VG's `physical_volumes` or an LV name.
    pub name: String,
    /// First extent used in it.
    pub extent: u64,
}

/// What a segment is made of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SegmentKind {
    /// `striped` (linear when there is one stripe): the segment's extents interleave over
    /// the areas in chunks of `stripe_size` sectors.
    Striped {
        /// Chunk size in sectors (0 for linear).
        stripe_size: u64,
        /// One area per stripe.
        areas: Vec<AreaRef>,
    },
    /// `mirror`: every area holds the whole segment; `log` is the mirror log sub-LV.
    Mirror {
        /// The legs.
        areas: Vec<AreaRef>,
        /// The log sub-LV (`_mlog`), if any.
        log: Option<String>,
    },
    /// `raid*`: the data images and their metadata sub-LVs.
    Raid {
        /// Chunk size in sectors (RAID0 interleave; 0 for raid1).
        stripe_size: u64,
        /// The image sub-LVs (`_rimage_N`), in order.
        images: Vec<String>,
        /// The metadata sub-LVs (`_rmeta_N`).
        metas: Vec<String>,
    },
    /// Anything else (thin, thin-pool, cache, vdo, snapshot, writecache, integrity, error,
    /// zero…): the sub-LVs it names are listed, nothing is mapped.
    Other {
        /// The LVs the segment names, with the key naming each (`pool`, `metadata`,
        /// `origin`, `cow_store`…).
        references: Vec<(String, String)>,
    },
}

/// One segment of an LV.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SegmentMeta {
    /// First logical extent of the LV the segment covers.
    pub start_extent: u64,
    /// Number of logical extents.
    pub extent_count: u64,
    /// The `type` string as written.
    pub type_name: String,
    /// What it is made of.
    pub kind: SegmentKind,
    /// Byte position of the segment in the text.
    #[serde(skip)]
    pub pos: usize,
}

impl SegmentMeta {
    /// The legs of a `mirror` or `raid1` segment, each a whole copy of its data, in order
    /// (a raid1 image's `extent` is 0 here: where the segment lies in it follows from the
    /// segment's own start); empty for every other kind.
    pub fn copies(&self) -> Vec<AreaRef> {
        match &self.kind {
            SegmentKind::Mirror { areas, .. } => areas.clone(),
            SegmentKind::Raid { images, .. } if self.type_name == "raid1" => images
                .iter()
                .map(|name| AreaRef {
                    name: name.clone(),
                    extent: 0,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// One PV of the VG's `physical_volumes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PvMeta {
    /// Its key in the text (`pv0`, `pv1`…), which segments name.
    pub key: String,
    /// Its UUID as printed (dashes).
    pub id: String,
    /// The device path LVM last saw it at (a hint only).
    pub device: Option<String>,
    /// Device size in sectors.
    pub dev_size: u64,
    /// First sector of the first physical extent.
    pub pe_start: u64,
    /// Number of physical extents.
    pub pe_count: u64,
    /// Byte position in the text.
    #[serde(skip)]
    pub pos: usize,
}

/// One LV as the text describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LvMeta {
    /// Its name.
    pub name: String,
    /// Its UUID as printed.
    pub id: String,
    /// The `status` flags (`READ`, `WRITE`, `VISIBLE`…).
    pub status: Vec<String>,
    /// Its segments, in extent order.
    pub segments: Vec<SegmentMeta>,
    /// Byte position in the text.
    #[serde(skip)]
    pub pos: usize,
}

impl LvMeta {
    /// Whether LVM lists it without `-a` (hidden sub-LVs lack `VISIBLE`).
    pub fn visible(&self) -> bool {
        self.status.iter().any(|s| s == "VISIBLE")
    }

    /// Its size in extents.
    pub fn extent_count(&self) -> u64 {
        self.segments
            .last()
            .map_or(0, |s| s.start_extent + s.extent_count)
    }
}

/// A VG's metadata: one parsed copy of the text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VgMetadata {
    /// The VG name.
    pub name: String,
    /// The VG UUID.
    pub id: String,
    /// Sequence number: incremented by every change; the highest copy is the newest.
    pub seqno: u64,
    /// Extent size in sectors.
    pub extent_size: u64,
    /// The PVs.
    pub pvs: Vec<PvMeta>,
    /// The LVs, hidden sub-LVs included.
    pub lvs: Vec<LvMeta>,
    /// Where the text came from, to place errors.
    #[serde(skip)]
    pub origin: Option<TextOrigin>,
}

impl VgMetadata {
    /// The VG in a copy of the metadata text read from a metadata area.
    pub fn from_copy(copy: &TextCopy) -> Result<VgMetadata> {
        parse_vg(&copy.bytes, Some(copy.origin.clone()))
    }

    /// The VG in a `vgcfgbackup` file (or any metadata text) held in memory; errors name
    /// `path` and the byte position in the file.
    pub fn from_text(bytes: &[u8], path: &std::path::Path) -> Result<VgMetadata> {
        parse_vg(
            bytes,
            Some(TextOrigin {
                path: path.to_path_buf(),
                first_at: 0,
                first_len: bytes.len() as u64,
                second_at: 0,
            }),
        )
    }

    /// An error about the text at byte position `pos`.
    pub fn error(&self, pos: usize, reason: impl Into<String>) -> Error {
        error_at(&self.origin, pos, reason)
    }

    /// The index of the LV named `name`.
    pub fn lv_index(&self, name: &str) -> Option<usize> {
        self.lvs.iter().position(|l| l.name == name)
    }

    /// The extent size in bytes.
    pub fn extent_bytes(&self) -> u64 {
        self.extent_size * 512
    }
}

fn error_at(origin: &Option<TextOrigin>, pos: usize, reason: impl Into<String>) -> Error {
    match origin {
        Some(o) => Error::corrupt(&o.path, o.disk_offset(pos as u64), reason),
        None => Error::corrupt(std::path::Path::new(""), pos as u64, reason),
    }
}

struct Ctx<'a> {
    origin: &'a Option<TextOrigin>,
}

impl Ctx<'_> {
    fn err(&self, pos: usize, reason: impl Into<String>) -> Error {
        error_at(
            self.origin,
            pos,
            format!("LVM2 metadata: {}", reason.into()),
        )
    }

    fn value<'s>(&self, s: &'s Section, key: &str) -> Result<(&'s Value, usize)> {
        s.get(key)
            .map(|a| (&a.value, a.pos))
            .ok_or_else(|| self.err(s.pos, format!("section {:?}: expected {key:?}", s.name)))
    }

    fn uint(&self, s: &Section, key: &str) -> Result<u64> {
        match self.value(s, key)? {
            (Value::Int(v), _) if *v >= 0 => Ok(*v as u64),
            (v, pos) => Err(self.err(
                pos,
                format!(
                    "section {:?}: expected {key} to be a non-negative integer, found {v:?}",
                    s.name
                ),
            )),
        }
    }

    fn string(&self, s: &Section, key: &str) -> Result<String> {
        match self.value(s, key)? {
            (Value::Str(v), _) => Ok(v.clone()),
            (v, pos) => Err(self.err(
                pos,
                format!(
                    "section {:?}: expected {key} to be a string, found {v:?}",
                    s.name
                ),
            )),
        }
    }

    fn array<'s>(&self, s: &'s Section, key: &str) -> Result<(&'s [Value], usize)> {
        match self.value(s, key)? {
            (Value::Array(v), pos) => Ok((v, pos)),
            (v, pos) => Err(self.err(
                pos,
                format!(
                    "section {:?}: expected {key} to be an array, found {v:?}",
                    s.name
                ),
            )),
        }
    }

    fn strings(&self, s: &Section, key: &str) -> Result<Vec<String>> {
        let (items, pos) = self.array(s, key)?;
        items
            .iter()
            .map(|v| match v {
                Value::Str(x) => Ok(x.clone()),
                v => Err(self.err(pos, format!("{key}: expected strings, found {v:?}"))),
            })
            .collect()
    }

    /// `[name, extent, name, extent, ...]`.
    fn areas(&self, s: &Section, key: &str, count: u64) -> Result<Vec<AreaRef>> {
        let (items, pos) = self.array(s, key)?;
        if items.len() % 2 != 0 || items.len() as u64 != count.saturating_mul(2) {
            return Err(self.err(
                pos,
                format!(
                    "segment {:?}: expected {key} to hold {count} (name, extent) pairs as the count says, found {} items",
                    s.name,
                    items.len()
                ),
            ));
        }
        items
            .chunks_exact(2)
            .map(|p| match p {
                [Value::Str(name), Value::Int(e)] if *e >= 0 => Ok(AreaRef {
                    name: name.clone(),
                    extent: *e as u64,
                }),
                other => Err(self.err(
                    pos,
                    format!("{key}: expected a (name, extent) pair, found {other:?}"),
                )),
            })
            .collect()
    }
}

fn parse_vg(bytes: &[u8], origin: Option<TextOrigin>) -> Result<VgMetadata> {
    let tree = text::parse(bytes)
        .map_err(|e| error_at(&origin, e.pos, format!("LVM2 metadata text: {}", e.reason)))?;
    let c = Ctx { origin: &origin };
    let mut vgs = tree.sections();
    let vg = vgs
        .next()
        .ok_or_else(|| c.err(0, "expected a volume group section"))?;
    if let Some(other) = vgs.next() {
        return Err(c.err(
            other.pos,
            format!(
                "expected one volume group section, found a second ({:?})",
                other.name
            ),
        ));
    }
    let extent_size = c.uint(vg, "extent_size")?;
    if extent_size == 0 || extent_size > (1 << 40) {
        return Err(c.err(
            vg.get("extent_size").map_or(vg.pos, |a| a.pos),
            format!("expected an extent size in 1..=2^40 sectors, found {extent_size}"),
        ));
    }
    let mut pvs = Vec::new();
    if let Some(list) = vg.section("physical_volumes") {
        for p in list.sections() {
            if pvs.len() == MAX_PVS {
                return Err(c.err(p.pos, format!("expected at most {MAX_PVS} PVs")));
            }
            pvs.push(PvMeta {
                key: p.name.clone(),
                id: c.string(p, "id")?,
                device: c.string(p, "device").ok(),
                dev_size: c.uint(p, "dev_size").unwrap_or(0),
                pe_start: c.uint(p, "pe_start")?,
                pe_count: c.uint(p, "pe_count")?,
                pos: p.pos,
            });
        }
    }
    let mut lvs = Vec::new();
    if let Some(list) = vg.section("logical_volumes") {
        for l in list.sections() {
            if lvs.len() == MAX_LVS {
                return Err(c.err(l.pos, format!("expected at most {MAX_LVS} LVs")));
            }
            lvs.push(parse_lv(&c, l)?);
        }
    }
    Ok(VgMetadata {
        name: vg.name.clone(),
        id: c.string(vg, "id")?,
        seqno: c.uint(vg, "seqno")?,
        extent_size,
        pvs,
        lvs,
        origin,
    })
}

fn parse_lv(c: &Ctx<'_>, l: &Section) -> Result<LvMeta> {
    let declared = c.uint(l, "segment_count")?;
    let mut segments = Vec::new();
    for n in 1..=declared.min(MAX_SEGMENTS as u64 + 1) {
        if segments.len() == MAX_SEGMENTS {
            return Err(c.err(
                l.pos,
                format!("LV {:?}: expected at most {MAX_SEGMENTS} segments", l.name),
            ));
        }
        let name = format!("segment{n}");
        let s = l.section(&name).ok_or_else(|| {
            c.err(
                l.pos,
                format!(
                    "LV {:?}: segment_count is {declared}, expected a section {name:?}",
                    l.name
                ),
            )
        })?;
        let seg = parse_segment(c, s)?;
        let expected = segments
            .last()
            .map_or(0, |p: &SegmentMeta| p.start_extent + p.extent_count);
        if seg.start_extent != expected {
            return Err(c.err(
                s.pos,
                format!(
                    "LV {:?} {name}: expected start_extent {expected} (the end of the previous segment), found {}",
                    l.name, seg.start_extent
                ),
            ));
        }
        segments.push(seg);
    }
    Ok(LvMeta {
        name: l.name.clone(),
        id: c.string(l, "id")?,
        status: c.strings(l, "status")?,
        segments,
        pos: l.pos,
    })
}

/// Keys of segment types that name other LVs (`lib/*/*.c` `_text_import` of each type).
const REFERENCE_KEYS: [&str; 10] = [
    "pool",
    "metadata",
    "origin",
    "cow_store",
    "thin_pool",
    "cache_pool",
    "merging_store",
    "writecache",
    "integrity_meta",
    "vdo_pool",
];

fn parse_segment(c: &Ctx<'_>, s: &Section) -> Result<SegmentMeta> {
    let start_extent = c.uint(s, "start_extent")?;
    let extent_count = c.uint(s, "extent_count")?;
    if extent_count == 0 || start_extent.checked_add(extent_count).is_none() {
        return Err(c.err(s.pos, format!("segment {:?}: expected a positive extent_count that fits, found start {start_extent} count {extent_count}", s.name)));
    }
    let type_name = c.string(s, "type")?;
    let count_of = |key: &str| -> Result<u64> {
        let n = c.uint(s, key)?;
        if n == 0 || n > MAX_STRIPES as u64 {
            return Err(c.err(
                s.get(key).map_or(s.pos, |a| a.pos),
                format!(
                    "segment {:?}: expected {key} in 1..={MAX_STRIPES}, found {n}",
                    s.name
                ),
            ));
        }
        Ok(n)
    };
    let kind = match type_name.as_str() {
        "striped" => {
            let n = count_of("stripe_count")?;
            let stripe_size = if n > 1 { c.uint(s, "stripe_size")? } else { 0 };
            if n > 1 && stripe_size == 0 {
                return Err(c.err(
                    s.pos,
                    format!(
                        "segment {:?}: expected a stripe_size for {n} stripes",
                        s.name
                    ),
                ));
            }
            if extent_count % n != 0 {
                return Err(c.err(s.pos, format!("segment {:?}: expected extent_count ({extent_count}) to be a multiple of stripe_count ({n})", s.name)));
            }
            SegmentKind::Striped {
                stripe_size,
                areas: c.areas(s, "stripes", n)?,
            }
        }
        "mirror" => {
            let n = count_of("mirror_count")?;
            SegmentKind::Mirror {
                areas: c.areas(s, "mirrors", n)?,
                log: c.string(s, "mirror_log").ok(),
            }
        }
        t if t.starts_with("raid") => {
            let names = c.strings(s, "raids")?;
            if names.is_empty() || names.len() > 2 * MAX_STRIPES {
                return Err(c.err(
                    s.pos,
                    format!(
                        "segment {:?}: expected 1..={} raids entries, found {}",
                        s.name,
                        2 * MAX_STRIPES,
                        names.len()
                    ),
                ));
            }
            let (metas, images): (Vec<String>, Vec<String>) =
                names.into_iter().partition(|n| n.contains("_rmeta_"));
            SegmentKind::Raid {
                stripe_size: c.uint(s, "stripe_size").unwrap_or(0),
                images,
                metas,
            }
        }
        _ => SegmentKind::Other {
            references: REFERENCE_KEYS
                .iter()
                .filter_map(|k| c.string(s, k).ok().map(|v| (k.to_string(), v)))
                .collect(),
        },
    };
    Ok(SegmentMeta {
        start_extent,
        extent_count,
        type_name,
        kind,
        pos: s.pos,
    })
}
