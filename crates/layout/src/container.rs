//! What the container (the image format) says about every byte before any guest structure
//! is read: never written, declared zero, unreadable, or data.

use diskray_core::{BlockState, ByteRange, RangeSet, Result, VirtualDisk, Warning};

/// The container's view of a disk, from its allocation map (no data read).
#[derive(Debug, Clone, Default)]
pub struct ContainerMap {
    /// Size of the disk.
    pub capacity: u64,
    /// Never written (holes, unallocated grains).
    pub unallocated: RangeSet,
    /// Declared zero (zeroed grains, ZERO extents).
    pub zero: RangeSet,
    /// Unreadable (NOACCESS and device extents): reads fail, so nothing there can be
    /// backed up; every consumer counts it with `unallocated` (restored as zeros).
    pub unreadable: RangeSet,
}

impl ContainerMap {
    /// Reads `disk`'s allocation map.
    pub fn of(disk: &dyn VirtualDisk) -> Result<ContainerMap> {
        let capacity = disk.capacity();
        let mut c = ContainerMap {
            capacity,
            ..Default::default()
        };
        for r in disk.map(ByteRange::new(0, capacity))? {
            match r.state {
                BlockState::Unallocated => c.unallocated.insert(r.range()),
                BlockState::Zero => c.zero.insert(r.range()),
                BlockState::Unreadable => c.unreadable.insert(r.range()),
                BlockState::Data => {}
            }
        }
        Ok(c)
    }

    /// Bytes that hold no data to read: unallocated, unreadable or declared zero.
    pub fn no_data(&self) -> RangeSet {
        self.unallocated.union(&self.unreadable).union(&self.zero)
    }

    /// The whole disk as a set.
    pub fn all(&self) -> RangeSet {
        RangeSet::from_iter([ByteRange::new(0, self.capacity)])
    }

    /// A warning about unreadable bytes, when there are any.
    pub fn warning(&self) -> Option<Warning> {
        let n = self.unreadable.bytes();
        (n > 0).then(|| {
            Warning::new(format!(
                "{n} bytes are unreadable in the container (NOACCESS or device extents): they count as unallocated, are not backed up and restore as zeros"
            ))
        })
    }
}
