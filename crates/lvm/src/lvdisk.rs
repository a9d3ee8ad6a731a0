//! [`LvDisk`]: a mapped LV read as a [`VirtualDisk`], so partition and filesystem readers
//! work on it as on any volume.

use crate::map::{LvState, Mapping, VolumeGroup};
use crate::region::Region;
use diskray_core::disk::push_run;
use diskray_core::{BlockState, ByteRange, Error, Lookup, MapRange, Result, VirtualDisk};
use std::path::Path;

/// The bytes of one mapped LV, read from its PVs.
pub struct LvDisk<'a> {
    name: String,
    size: u64,
    mappings: Vec<Mapping>,
    /// The PV regions, indexed like [`VolumeGroup::pvs`] (`None` for missing PVs).
    pvs: Vec<Option<Region<'a>>>,
}

impl<'a> LvDisk<'a> {
    /// The LV `lv` of `vg`, whose PVs are `regions` (in the order the PVs were given to
    /// [`VolumeGroup::assemble`]). An unknown LV is refused.
    pub fn new(vg: &VolumeGroup, lv: usize, regions: &[Region<'a>]) -> Result<LvDisk<'a>> {
        let l = vg.lvs.get(lv).ok_or_else(|| {
            Error::not_found(Lookup::Partition, format!("LV number {lv}"), &vg.name, "")
        })?;
        if let LvState::Unknown { reason } = &l.state {
            let name = format!("{}/{}", vg.name, l.name);
            return Err(Error::refused(
                Path::new(&name),
                format!("not mapped: {reason}"),
            ));
        }
        let pvs = vg
            .pvs
            .iter()
            .map(|s| s.source.and_then(|i| regions.get(i).cloned()))
            .collect();
        Ok(LvDisk {
            name: format!("{}/{}", vg.name, l.name),
            size: l.size,
            mappings: l.mappings.clone(),
            pvs,
        })
    }
}

impl VirtualDisk for LvDisk<'_> {
    fn capacity(&self) -> u64 {
        self.size
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > self.size)
        {
            let what = format!("LV {}", self.name);
            return Err(Error::out_of_range(
                what,
                offset,
                buf.len() as u64,
                self.size,
            ));
        }
        let mut done = 0usize;
        while done < buf.len() {
            let off = offset + done as u64;
            let idx = self
                .mappings
                .partition_point(|m| m.lv_start + m.length <= off);
            let m = self.mappings.get(idx).ok_or_else(|| {
                Error::refused(Path::new(&self.name), format!("byte {off} is not mapped"))
            })?;
            let (pv, pv_off, avail) = m.locate(off);
            let n = (avail.min((buf.len() - done) as u64)) as usize;
            let region = self.pvs[pv].as_ref().ok_or_else(|| {
                Error::refused(
                    Path::new(&self.name),
                    format!("byte {off} lies on a missing PV"),
                )
            })?;
            let bytes = region.read_vec(pv_off, n as u64, "LV extent")?;
            buf[done..done + n].copy_from_slice(&bytes);
            done += n;
        }
        Ok(())
    }

    fn map(&self, range: ByteRange) -> Result<Vec<MapRange>> {
        // The allocation of the disks under the LV, piece by contiguous piece (a striped
        // LV asks once per chunk), moved to LV offsets.
        let mut out = Vec::new();
        let Some(r) = range.intersect(&ByteRange::new(0, self.size)) else {
            return Ok(out);
        };
        let mut off = r.start;
        while off < r.start + r.length {
            let idx = self
                .mappings
                .partition_point(|m| m.lv_start + m.length <= off);
            let Some(m) = self.mappings.get(idx) else {
                break;
            };
            let (pv, pv_off, avail) = m.locate(off);
            let n = avail.min(r.start + r.length - off);
            match self.pvs[pv].as_ref() {
                Some(region) => {
                    for run in region.map(pv_off, n)? {
                        push_run(
                            &mut out,
                            MapRange {
                                start: off + run.start.saturating_sub(pv_off),
                                ..run
                            },
                        );
                    }
                }
                None => push_run(
                    &mut out,
                    MapRange {
                        start: off,
                        length: n,
                        state: BlockState::Unreadable,
                        depth: 0,
                    },
                ),
            }
            off += n;
        }
        Ok(out)
    }
}
