//! A machine: the disks of one VM, seen as one address space so that a volume group that
//! spans them is one tree. Disk `i` occupies machine bytes `[offset_i, offset_i +
//! capacity_i)`, the disks in the order given; the classification works in machine bytes,
//! and every range shown to people or scripts is turned back into `(disk, start)` by
//! [`Machine::locate`]. With one disk, machine bytes are that disk's bytes.

use diskray_core::{ByteRange, DiskRange, Error, MapRange, RangeSet, Result, VirtualDisk};
use std::path::{Path, PathBuf};

/// One disk of a machine.
pub struct MachineDisk<'a> {
    /// The disk.
    pub disk: &'a dyn VirtualDisk,
    /// Its name in messages.
    pub label: PathBuf,
    /// Its first byte in machine bytes.
    pub offset: u64,
}

/// The disks of one machine as one [`VirtualDisk`].
pub struct Machine<'a> {
    disks: Vec<MachineDisk<'a>>,
    capacity: u64,
}

impl<'a> Machine<'a> {
    /// The machine made of `disks` (each with its name), in that order.
    pub fn new(disks: impl IntoIterator<Item = (&'a dyn VirtualDisk, PathBuf)>) -> Result<Self> {
        let mut out = Vec::new();
        let mut offset = 0u64;
        for (disk, label) in disks {
            out.push(MachineDisk {
                disk,
                label,
                offset,
            });
            offset = offset.checked_add(disk.capacity()).ok_or_else(|| {
                Error::out_of_range("the disks together", offset, disk.capacity(), u64::MAX)
            })?;
        }
        if out.is_empty() {
            return Err(Error::refused(
                Path::new("-"),
                "a machine needs at least one disk",
            ));
        }
        Ok(Machine {
            disks: out,
            capacity: offset,
        })
    }

    /// A machine of one disk (machine bytes are the disk's bytes).
    pub fn single(disk: &'a dyn VirtualDisk, label: &Path) -> Self {
        Machine {
            capacity: disk.capacity(),
            disks: vec![MachineDisk {
                disk,
                label: label.to_path_buf(),
                offset: 0,
            }],
        }
    }

    /// The disks, in order.
    pub fn disks(&self) -> &[MachineDisk<'a>] {
        &self.disks
    }

    /// The index of the disk holding machine byte `at` (the last disk past the end).
    pub fn disk_at(&self, at: u64) -> usize {
        self.disks
            .partition_point(|d| d.offset <= at)
            .saturating_sub(1)
    }

    /// `r` (machine bytes) as ranges of the disks, naming the disk when there are several.
    pub fn locate(&self, r: ByteRange) -> Vec<DiskRange> {
        let several = self.disks.len() > 1;
        let mut out = Vec::new();
        let mut at = r.start;
        while at < r.end() {
            let i = self.disk_at(at);
            let d = &self.disks[i];
            let end = (d.offset + d.disk.capacity()).min(r.end());
            if end <= at {
                break;
            }
            out.push(DiskRange {
                disk: several.then_some(i),
                start: at - d.offset,
                length: end - at,
            });
            at = end;
        }
        out
    }

    /// Every range of `set` (machine bytes) as ranges of the disks.
    pub fn locate_set(&self, set: &RangeSet) -> Vec<DiskRange> {
        set.ranges().flat_map(|r| self.locate(r)).collect()
    }

    /// The machine bytes of disk `i`.
    pub fn span_of(&self, i: usize) -> ByteRange {
        let d = &self.disks[i];
        ByteRange::new(d.offset, d.disk.capacity())
    }
}

impl VirtualDisk for Machine<'_> {
    fn capacity(&self) -> u64 {
        self.capacity
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.capacity)
            .ok_or_else(|| {
                Error::out_of_range(
                    "the machine's disks",
                    offset,
                    buf.len() as u64,
                    self.capacity,
                )
            })?;
        let mut at = offset;
        while at < end {
            let d = &self.disks[self.disk_at(at)];
            let stop = (d.offset + d.disk.capacity()).min(end);
            let part = &mut buf[(at - offset) as usize..(stop - offset) as usize];
            d.disk.read_at(part, at - d.offset)?;
            at = stop;
        }
        Ok(())
    }

    fn map(&self, range: ByteRange) -> Result<Vec<MapRange>> {
        let mut out: Vec<MapRange> = Vec::new();
        for d in &self.disks {
            let own = ByteRange::new(d.offset, d.disk.capacity());
            let Some(r) = own.intersect(&range) else {
                continue;
            };
            for m in d.disk.map(ByteRange::new(r.start - d.offset, r.length))? {
                let shifted = MapRange {
                    start: d.offset + m.start,
                    ..m
                };
                diskray_core::disk::push_run(&mut out, shifted);
            }
        }
        Ok(out)
    }

    fn logical_sector_size(&self) -> Option<u64> {
        // Per disk: the tables are read from each disk itself, never from the machine.
        None
    }
}
