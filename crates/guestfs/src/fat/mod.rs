//! FAT12/16/32: the used map from the file allocation table. The type comes from the
//! cluster count, except that a FAT32 boot sector (16-bit FAT size 0) is FAT32 whatever the
//! count, as Linux reads it (with a warning when the count disagrees); with FAT32
//! mirroring off only the active FAT is read, otherwise every copy is read and their union
//! taken; clusters marked bad are metadata; FSInfo's free count is checked, never used.
//!
//! Sources: Microsoft "FAT: General Overview of On-Disk Format" (fatgen103: BPB, cluster
//! count thresholds 4085 / 65525, entry packing, the BAD CLUSTER marks 0xFF7 / 0xFFF7 /
//! 0x0FFFFFF7); Linux `fs/fat/inode.c`; `shared/FORMATS.md` §3.2.

mod bpb;
mod files;

pub use bpb::Bpb;
pub use files::FatHandle;

use crate::probe::Content;
use crate::slice::Slice;
use crate::{Allocation, Filesystem};
use diskray_core::{ByteRange, RangeSet, Result};

/// FAT bytes processed per read: bounds memory whatever the FAT size.
const FAT_CHUNK: u64 = 1 << 20;

/// An opened FAT filesystem.
pub struct Fat<'a> {
    slice: Slice<'a>,
    bpb: Bpb,
    /// Warnings of the file view (a bound reached while listing deleted entries).
    notes: std::sync::Mutex<Vec<String>>,
}

impl<'a> Fat<'a> {
    /// Opens the FAT filesystem at the start of `slice`.
    pub fn open(slice: Slice<'a>) -> Result<Fat<'a>> {
        let boot = slice.read_vec(0, 512)?;
        let bpb = Bpb::parse(&boot, slice.len())
            .map_err(|why| slice.corrupt(0, format!("FAT boot sector: {why}")))?;
        Ok(Fat {
            slice,
            bpb,
            notes: Default::default(),
        })
    }

    /// The parsed BPB.
    pub fn bpb(&self) -> &Bpb {
        &self.bpb
    }

    /// The value marking a bad cluster in this FAT's entries.
    fn bad_mark(&self) -> u32 {
        match self.bpb.content() {
            Content::Fat12 => 0xFF7,
            Content::Fat16 => 0xFFF7,
            _ => 0x0FFF_FFF7,
        }
    }

    /// Adds the clusters marked in use by FAT copy `copy` to `used`, and those marked bad
    /// to `bad` (cluster numbers; a bad cluster is in both).
    fn read_fat(&self, copy: u64, used: &mut RangeSet, bad: &mut RangeSet) -> Result<()> {
        let b = &self.bpb;
        let fat_at = (b.reserved + copy * b.fat_size) * b.bytes_per_sector;
        let last = b.clusters() + 1; // highest valid cluster number
        let bad_mark = self.bad_mark();
        let mut run: Option<u64> = None;
        let mut bad_run: Option<u64> = None;
        let mut mark = |n: u64, v: u32, used: &mut RangeSet| {
            for (on, run, set) in [
                (v != 0, &mut run, &mut *used),
                (v == bad_mark, &mut bad_run, &mut *bad),
            ] {
                match (on, *run) {
                    (true, None) => *run = Some(n),
                    (false, Some(s)) => {
                        set.insert(ByteRange::from_bounds(s, n));
                        *run = None;
                    }
                    _ => {}
                }
            }
        };
        match b.content() {
            Content::Fat12 => {
                let bytes = self.slice.read_vec(fat_at, ((last + 1) * 3).div_ceil(2))?;
                for n in 2..=last {
                    let at = (n * 3 / 2) as usize;
                    let pair = u16::from_le_bytes([bytes[at], bytes[at + 1]]);
                    let v = if n % 2 == 0 { pair & 0x0FFF } else { pair >> 4 };
                    mark(n, v as u32, used);
                }
            }
            kind => {
                let width = if kind == Content::Fat16 { 2 } else { 4 };
                let mut n = 0u64;
                while n <= last {
                    let count = (FAT_CHUNK / width).min(last + 1 - n);
                    let bytes = self.slice.read_vec(fat_at + n * width, count * width)?;
                    for (i, e) in bytes.chunks_exact(width as usize).enumerate() {
                        let cluster = n + i as u64;
                        let v = if width == 2 {
                            u16::from_le_bytes([e[0], e[1]]) as u32
                        } else {
                            u32::from_le_bytes(e.try_into().unwrap()) & 0x0FFF_FFFF
                        };
                        if cluster >= 2 {
                            mark(cluster, v, used);
                        }
                    }
                    n += count;
                }
            }
        }
        mark(last + 1, 0, used);
        Ok(())
    }

    fn fsinfo_free(&self) -> Result<Option<u32>> {
        let b = &self.bpb;
        if b.content() != Content::Fat32 || b.fsinfo_sector == 0 || b.fsinfo_sector >= b.reserved {
            return Ok(None);
        }
        let s = self
            .slice
            .read_vec(b.fsinfo_sector * b.bytes_per_sector, 512)?;
        let sig = |o: usize| u32::from_le_bytes(s[o..o + 4].try_into().unwrap());
        if sig(0) != 0x4161_5252 || sig(0x1E4) != 0x6141_7272 {
            return Ok(None);
        }
        Ok(Some(sig(0x1E8)).filter(|&f| f != u32::MAX))
    }
}

impl Filesystem for Fat<'_> {
    fn content(&self) -> Content {
        self.bpb.content()
    }

    fn block_size(&self) -> u64 {
        self.bpb.cluster_bytes()
    }

    fn size(&self) -> u64 {
        self.bpb.total_sectors * self.bpb.bytes_per_sector
    }

    fn unit_origin(&self) -> u64 {
        self.bpb.first_data_sector() * self.bpb.bytes_per_sector
    }

    fn label(&self) -> Option<String> {
        self.bpb.label.clone()
    }

    fn files(&self) -> Option<&dyn crate::files::Files> {
        Some(self)
    }

    fn allocation(&self) -> Result<Allocation> {
        let b = &self.bpb;
        let mut alloc = Allocation::default();
        let data_start = b.first_data_sector() * b.bytes_per_sector;
        alloc.metadata.insert(ByteRange::new(0, data_start));
        if let Some(note) = b.type_note() {
            alloc.warnings.push(note);
        }
        let mut clusters = RangeSet::new();
        let mut bad = RangeSet::new();
        if b.mirroring_off() {
            self.read_fat(b.active_fat(), &mut clusters, &mut bad)?;
        } else {
            let mut first = RangeSet::new();
            self.read_fat(0, &mut first, &mut bad)?;
            for copy in 1..b.num_fats {
                let mut other = RangeSet::new();
                self.read_fat(copy, &mut other, &mut bad)?;
                if other != first {
                    alloc.warnings.push(format!(
                        "FAT copy {} differs from FAT copy 0; using the union of both",
                        copy
                    ));
                }
                clusters = clusters.union(&other);
            }
            clusters = clusters.union(&first);
        }
        let cb = b.cluster_bytes();
        let in_use: u64 = clusters.bytes();
        for r in clusters.ranges() {
            alloc.used.insert(ByteRange::new(
                data_start + (r.start - 2) * cb,
                r.length * cb,
            ));
        }
        // Clusters marked bad are filesystem bookkeeping, not file data: metadata (kept by
        // a backup, so a restored volume has the same marks; fsck.fat counts them as not
        // free).
        if bad.bytes() > 0 {
            for r in bad.ranges() {
                alloc.metadata.insert(ByteRange::new(
                    data_start + (r.start - 2) * cb,
                    r.length * cb,
                ));
            }
            let digits = match b.content() {
                Content::Fat12 => 3,
                Content::Fat16 => 4,
                _ => 8,
            };
            alloc.warnings.push(format!(
                "{} bad clusters (marked {:#0w$X} in the FAT): counted as metadata",
                bad.bytes(),
                self.bad_mark(),
                w = digits + 2
            ));
        }
        if let Some(free) = self.fsinfo_free()? {
            let counted = b.clusters() - in_use;
            if free as u64 != counted {
                alloc.warnings.push(format!(
                    "FSInfo says {free} free clusters, the FAT says {counted}; the FAT wins"
                ));
            }
        }
        // Sectors after the last whole cluster belong to no cluster: count them as used
        // (as partclone does), since nothing says what they hold.
        let clustered_end = data_start + b.clusters() * cb;
        alloc
            .metadata
            .insert(ByteRange::from_bounds(clustered_end, self.size()));
        alloc.used = alloc.used.union(&alloc.metadata);
        Ok(alloc)
    }
}
