//! [`read_pv`]: one physical volume read whole: its label, its metadata areas and the
//! newest valid copy of the VG metadata they hold (docs/formats.md §9.6).

use crate::label::{find_label, Label};
use crate::mda::{read_header, read_text, scan_older, MdaHeader, RAW_LOCN_IGNORED};
use crate::metadata::VgMetadata;
use crate::region::Region;
use crate::uuid::bare;
use diskray_core::{Error, Result, VirtualDisk, Warning};
use std::path::{Path, PathBuf};

/// One PV as read from its disk.
#[derive(Debug, Clone)]
pub struct Pv {
    /// The disk holding it (for messages and for [`Region::new`]).
    pub path: PathBuf,
    /// Disk byte offset of the PV's first byte.
    pub start: u64,
    /// Length of the PV's byte range on the disk.
    pub length: u64,
    /// Label and PV header.
    pub label: Label,
    /// The headers of its metadata areas, `None` where the header is damaged.
    pub mdas: Vec<Option<MdaHeader>>,
    /// The newest valid metadata copy found, if any (a PV may carry no metadata area).
    pub metadata: Option<VgMetadata>,
    /// Where the metadata came from: (area index, area offset of the text).
    pub metadata_at: Option<(usize, u64)>,
    /// What was damaged, ignored or fallen back from, in words.
    pub warnings: Vec<Warning>,
}

impl Pv {
    /// The PV's byte range of `disk` as a [`Region`].
    pub fn region<'a>(&self, disk: &'a dyn VirtualDisk) -> Region<'a> {
        Region::new(disk, &self.path, self.start, self.length)
    }
}

/// Reads the PV occupying `[start, start + length)` of `disk` (named `path` in
/// messages). No label in its first four sectors is an [`Error::Refused`]; a damaged
/// label is an [`Error::Corrupt`]; damaged metadata areas and copies are warnings as long
/// as one valid copy remains (or the PV has no metadata area at all).
pub fn read_pv(disk: &dyn VirtualDisk, path: &Path, start: u64, length: u64) -> Result<Pv> {
    let region = Region::new(disk, path, start, length);
    let label = find_label(&region)?.ok_or_else(|| {
        Error::refused(
            path,
            format!(
                "no LVM2 label (LABELONE) in the first four sectors of the range at byte {start}"
            ),
        )
    })?;
    let mut warnings = Vec::new();
    let mut mdas = Vec::new();
    // (seqno, area index, area offset, metadata)
    let mut best: Option<(usize, u64, VgMetadata)> = None;
    let mut seen: Vec<(usize, u64)> = Vec::new();
    let mut damaged: Vec<(usize, u64, String)> = Vec::new();
    for (i, area) in label.metadata_areas.iter().enumerate() {
        let hdr = match read_header(&region, *area) {
            Ok(h) => h,
            Err(e) => {
                warnings.push(Warning::new(format!(
                    "metadata area {i} (PV byte {}) is unusable: {e}",
                    area.offset
                )));
                mdas.push(None);
                continue;
            }
        };
        if let Some(locn) = hdr.locations.first() {
            if locn.flags & RAW_LOCN_IGNORED != 0 {
                warnings.push(Warning::new(format!(
                    "metadata area {i} (PV byte {}) is marked ignored (vgchange --metadataignore); not read",
                    area.offset
                )));
            } else {
                match read_text(&region, &hdr, locn).and_then(|c| VgMetadata::from_copy(&c)) {
                    Ok(m) => {
                        seen.push((i, m.seqno));
                        if best.as_ref().is_none_or(|b| m.seqno > b.2.seqno) {
                            best = Some((i, locn.offset, m));
                        }
                    }
                    Err(e) => damaged.push((i, locn.offset, e.to_string())),
                }
            }
        }
        mdas.push(Some(hdr));
    }
    for (i, off, why) in &damaged {
        warnings.push(Warning::new(format!(
            "metadata area {i}: the current copy at area offset {off} is damaged: {why}"
        )));
    }
    if best.is_none() && !damaged.is_empty() {
        // No valid current copy anywhere: the newest older copy that parses whole.
        for (i, off, _) in &damaged {
            let Some(hdr) = &mdas[*i] else { continue };
            for copy in scan_older(&region, hdr, *off)? {
                if let Ok(m) = VgMetadata::from_copy(&copy) {
                    if best.as_ref().is_none_or(|b| m.seqno > b.2.seqno) {
                        best = Some((*i, copy.offset, m));
                    }
                }
            }
        }
        if let Some((i, off, m)) = &best {
            warnings.push(Warning::new(format!(
                "fell back to an older copy of the metadata (seqno {}) at area offset {off} of metadata area {i}; \
                 older copies carry no checksum, and changes made after it are not seen",
                m.seqno
            )));
        }
    }
    if let Some((_, _, m)) = &best {
        for (i, seqno) in &seen {
            if *seqno < m.seqno {
                warnings.push(Warning::new(format!(
                    "metadata area {i} holds seqno {seqno}, older than seqno {} used",
                    m.seqno
                )));
            }
        }
        if !m.pvs.iter().any(|p| bare(&p.id) == bare(&label.pv_uuid)) {
            warnings.push(Warning::new(format!(
                "the metadata of VG {} does not list this PV ({}) among its PVs",
                m.name, label.pv_uuid
            )));
        }
    } else if !damaged.is_empty() || mdas.iter().any(Option::is_none) {
        warnings.push(Warning::new(
            "no valid copy of the metadata in any metadata area",
        ));
    }
    let metadata_at = best.as_ref().map(|(i, off, _)| (*i, *off));
    Ok(Pv {
        path: path.to_path_buf(),
        start,
        length: region.len(),
        label,
        mdas,
        metadata: best.map(|b| b.2),
        metadata_at,
        warnings,
    })
}
