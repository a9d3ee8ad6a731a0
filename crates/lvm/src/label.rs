//! The PV label (`LABELONE`, LVM2 `lib/label/label.h` `label_header`) and the PV header
//! after it (`lib/format_text/layout.h` `pv_header`): the PV's UUID, its device size and
//! its data and metadata areas (docs/formats.md §9.1–§9.2).

use crate::crc::lvm_crc;
use crate::region::Region;
use crate::uuid::format_uuid;
use diskray_core::Result;
use serde::Serialize;

/// Sector size of the label and of every LVM2 header.
pub const SECTOR: u64 = 512;
/// The label lies in one of the first four sectors (`LABEL_SCAN_SECTORS`).
pub const LABEL_SCAN_SECTORS: u64 = 4;
/// `label_header.id`.
pub const LABEL_ID: &[u8; 8] = b"LABELONE";
/// `label_header.type` of an LVM2 PV.
pub const LABEL_TYPE: &[u8; 8] = b"LVM2 001";
/// Length of the PV UUID (`ID_LEN`): 32 characters, printed with dashes 6-4-4-4-4-4-6.
pub const UUID_LEN: usize = 32;

const OFF_SECTOR: usize = 8;
const OFF_CRC: usize = 16;
const OFF_OFFSET: usize = 20;
const OFF_TYPE: usize = 24;
/// The label's checksum covers the sector from its `offset_xl` field to its end.
const CRC_FROM: usize = OFF_OFFSET;
/// Size of `label_header`: the PV header cannot start inside it.
const LABEL_HEADER_SIZE: u32 = 32;
/// `pv_header`: uuid, then `device_size_xl`, then the area lists.
const PV_OFF_DEVICE_SIZE: usize = UUID_LEN;
const PV_OFF_AREAS: usize = UUID_LEN + 8;
/// One `disk_locn`: offset u64, size u64.
const LOCN_SIZE: usize = 16;

/// One area a PV header lists (`disk_locn`): PV-relative byte offset and size (a size of
/// 0 for a data area means "to the end of the device").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Area {
    /// Byte offset from the start of the PV.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
}

/// The label and PV header of one physical volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Label {
    /// The sector (0–3) that holds the label.
    pub sector: u64,
    /// The PV UUID as LVM prints it (dashes 6-4-4-4-4-4-6).
    pub pv_uuid: String,
    /// The device size recorded at `pvcreate` time, in bytes.
    pub device_size: u64,
    /// The data areas (normally one, starting at `pe_start`).
    pub data_areas: Vec<Area>,
    /// The metadata areas (zero, one or two).
    pub metadata_areas: Vec<Area>,
}

/// Finds the label in the first four sectors of `pv`; `Ok(None)` when there is none.
/// A label whose checksum or fields are wrong is an error, not "no label": the bytes
/// say they are an LVM2 PV.
pub fn find_label(pv: &Region<'_>) -> Result<Option<Label>> {
    let scan = (LABEL_SCAN_SECTORS * SECTOR).min(pv.len() / SECTOR * SECTOR);
    if scan == 0 {
        return Ok(None);
    }
    let bytes = pv.read_vec(0, scan, "LVM2 label scan")?;
    for (i, sector) in bytes.chunks_exact(SECTOR as usize).enumerate() {
        if &sector[..8] == LABEL_ID {
            return parse_label(pv, sector, i as u64).map(Some);
        }
    }
    Ok(None)
}

/// Parses the label sector `bytes` found at sector `sector` of `pv`.
pub fn parse_label(pv: &Region<'_>, bytes: &[u8], sector: u64) -> Result<Label> {
    let at = sector * SECTOR;
    let f = pv.fields(bytes, "LVM2 label", at);
    f.need(SECTOR as usize)?;
    if f.bytes(0, 8)? != LABEL_ID {
        return Err(f.corrupt(0, "expected LABELONE"));
    }
    let recorded = f.le64(OFF_SECTOR)?;
    if recorded != sector {
        return Err(f.corrupt(
            OFF_SECTOR,
            format!("expected sector_xl {sector} (where the label lies), found {recorded}"),
        ));
    }
    let crc = f.le32(OFF_CRC)?;
    let computed = lvm_crc(&[f.bytes(CRC_FROM, SECTOR as usize - CRC_FROM)?]);
    if crc != computed {
        return Err(f.corrupt(
            OFF_CRC,
            format!("checksum: expected {computed:#010x} (computed), found {crc:#010x}"),
        ));
    }
    let typ = f.bytes(OFF_TYPE, 8)?;
    if typ != LABEL_TYPE {
        return Err(f.corrupt(
            OFF_TYPE,
            format!(
                "expected type \"LVM2 001\", found {:?}",
                String::from_utf8_lossy(typ)
            ),
        ));
    }
    let offset = f.le32(OFF_OFFSET)?;
    if !(LABEL_HEADER_SIZE..SECTOR as u32).contains(&offset) {
        return Err(f.corrupt(
            OFF_OFFSET,
            format!("expected a PV header offset in 32..512, found {offset}"),
        ));
    }
    let h = f.sub(
        offset as usize,
        SECTOR as usize - offset as usize,
        "LVM2 PV header",
    )?;
    let raw_uuid = h.bytes(0, UUID_LEN)?;
    let pv_uuid = format_uuid(raw_uuid).ok_or_else(|| {
        h.corrupt(
            0,
            format!(
                "expected a 32-character PV UUID, found {:?}",
                String::from_utf8_lossy(raw_uuid)
            ),
        )
    })?;
    let device_size = h.le64(PV_OFF_DEVICE_SIZE)?;
    let mut pos = PV_OFF_AREAS;
    let data_areas = area_list(&h, &mut pos, "data area list")?;
    let metadata_areas = area_list(&h, &mut pos, "metadata area list")?;
    for a in data_areas.iter().chain(&metadata_areas) {
        if a.offset >= pv.len() || (a.size != 0 && a.offset.saturating_add(a.size) > pv.len()) {
            return Err(h.corrupt(
                PV_OFF_AREAS,
                format!(
                    "area at PV byte {} of {} bytes: expected it inside the PV ({} bytes)",
                    a.offset,
                    a.size,
                    pv.len()
                ),
            ));
        }
    }
    Ok(Label {
        sector,
        pv_uuid,
        device_size,
        data_areas,
        metadata_areas,
    })
}

/// A zero-terminated list of `disk_locn` at `*pos`; the terminator must lie inside the
/// label sector (LVM2 reads the PV header from that sector only).
fn area_list(h: &diskray_core::Fields<'_>, pos: &mut usize, what: &str) -> Result<Vec<Area>> {
    let mut out = Vec::new();
    loop {
        if *pos + LOCN_SIZE > h.len() {
            return Err(h.corrupt(
                *pos,
                format!("{what}: expected a zero terminator inside the label sector"),
            ));
        }
        let offset = h.le64(*pos)?;
        let size = h.le64(*pos + 8)?;
        *pos += LOCN_SIZE;
        if offset == 0 && size == 0 {
            return Ok(out);
        }
        out.push(Area { offset, size });
    }
}
