//! FAT12/16/32: the used map from the file allocation table. The type comes from the
//! cluster count, except that a FAT32 boot sector (16-bit FAT size 0) is FAT32 whatever the
//! count, as Linux reads it (with a warning when the count disagrees); with FAT32
//! mirroring off only the active FAT is read, otherwise every copy is read and their union
//! taken; clusters marked bad are metadata; FSInfo's free count is checked, never used.
//!
//! Sources: Microsoft "FAT: General Overview of On-Disk Format" (fatgen103: BPB, cluster
//! count thresholds 4085 / 65525, entry packing, the BAD CLUSTER marks 0xFF7 / 0xFFF7 /
//! 0x0FFFFFF7); Linux `fs/fat/inode.c`; `docs/formats.md` §3.2.

mod bpb;
mod dirent;
mod files;
mod table;

pub use bpb::Bpb;
pub use files::FatHandle;

use crate::probe::Content;
use crate::slice::Slice;
use crate::{Allocation, Filesystem};
use diskray_core::{ByteRange, RangeSet, Result, Warning};

/// The FAT32 FSInfo sector (fatgen103 §5): byte offsets and signatures.
mod fsinfo {
    /// `FSI_LeadSig` (u32).
    pub const LEAD_SIG: usize = 0;
    /// Its value, "RRaA".
    pub const LEAD_SIG_VALUE: u32 = 0x4161_5252;
    /// `FSI_StrucSig` (u32).
    pub const STRUC_SIG: usize = 0x1E4;
    /// Its value, "rrAa".
    pub const STRUC_SIG_VALUE: u32 = 0x6141_7272;
    /// `FSI_Free_Count` (u32): free clusters, a hint.
    pub const FREE_COUNT: usize = 0x1E8;
    /// `FSI_Free_Count` when the count is unknown.
    pub const UNKNOWN: u32 = u32::MAX;
}

/// FAT bytes processed per read: bounds memory whatever the FAT size.
const FAT_CHUNK: u64 = 1 << 20;

/// An opened FAT filesystem.
pub struct Fat<'a> {
    slice: Slice<'a>,
    bpb: Bpb,
    /// Warnings of the file view (a bound reached while listing deleted entries).
    notes: crate::files::Notes,
}

impl<'a> Fat<'a> {
    /// Opens the FAT filesystem at the start of `slice`.
    pub fn open(slice: Slice<'a>) -> Result<Fat<'a>> {
        let boot = slice.read_vec(0, 512)?;
        let bpb = Bpb::parse(&slice.fields(&boot, "FAT boot sector", 0), slice.len())
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
        let kind = b.content();
        if kind == Content::Fat12 {
            let bytes = self.slice.read_vec(fat_at, ((last + 1) * 3).div_ceil(2))?;
            let f = self.slice.fields(&bytes, "FAT", fat_at);
            for n in 2..=last {
                mark(n, table::entry(&f, kind, n, 0)?, used);
            }
        } else {
            let width = table::entry_bytes(kind);
            let mut n = 0u64;
            while n <= last {
                let count = (FAT_CHUNK / width).min(last + 1 - n);
                let base = table::entry_offset(kind, n);
                let bytes = self.slice.read_vec(fat_at + base, count * width)?;
                let f = self.slice.fields(&bytes, "FAT", fat_at + base);
                for cluster in n.max(2)..n + count {
                    mark(cluster, table::entry(&f, kind, cluster, base)?, used);
                }
                n += count;
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
        let f = self
            .slice
            .fields(&s, "FAT32 FSInfo", b.fsinfo_sector * b.bytes_per_sector);
        if f.le32(fsinfo::LEAD_SIG)? != fsinfo::LEAD_SIG_VALUE
            || f.le32(fsinfo::STRUC_SIG)? != fsinfo::STRUC_SIG_VALUE
        {
            return Ok(None);
        }
        Ok(Some(f.le32(fsinfo::FREE_COUNT)?).filter(|&n| n != fsinfo::UNKNOWN))
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
                    alloc.warnings.push(Warning::new(format!(
                        "FAT copy {} differs from FAT copy 0; using the union of both",
                        copy
                    )));
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
            alloc.warnings.push(Warning::new(format!(
                "{} bad clusters (marked {:#0w$X} in the FAT): counted as metadata",
                bad.bytes(),
                self.bad_mark(),
                w = digits + 2
            )));
        }
        if let Some(free) = self.fsinfo_free()? {
            let counted = b.clusters() - in_use;
            if free as u64 != counted {
                alloc.warnings.push(Warning::new(format!(
                    "FSInfo says {free} free clusters, the FAT says {counted}; the FAT wins"
                )));
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
