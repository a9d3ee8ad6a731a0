//! A VMDK writer: any [`VirtualDisk`] to a single-file monolithicSparse or streamOptimized
//! VMDK that qemu-img and this crate's reader accept.
//!
//! Only what the source's map calls data is read; grains that are unallocated, declared
//! zero, or read as all zeros are left unallocated. Grains are 64 KiB with 512 entries per
//! grain table, as qemu-img writes them.
//!
//! Sources: qemu `block/vmdk.c` (`vmdk_co_do_create`, `vmdk_init_extent`,
//! `vmdk_write_extent`); VMware "Virtual Disk Format 1.1"; `docs/formats.md` §1.2–1.5.
//! Each submodule names its own.

mod descriptor;
mod grains;
mod header;
mod marker;
mod out;
mod sparse;
mod stream;

use crate::sparse_header::SparseHeader;
use descriptor::{EmbeddedDescriptor, DESCRIPTOR_SECTORS};
use diskray_core::{Error, Result, VirtualDisk, SECTOR};
use grains::GrainSink;
use out::OutFile;
use std::path::Path;

/// Grain size in sectors: 64 KiB, the qemu-img and VMware default.
pub const GRAIN_SECTORS: u64 = 128;
/// Grain size in bytes.
pub const GRAIN_BYTES: u64 = GRAIN_SECTORS * SECTOR;
/// Entries per grain table: 512, the value every writer uses (qemu refuses more).
pub const GTES_PER_GT: u64 = 512;
/// Sectors of one grain table (512 u32 entries).
pub const GT_SECTORS: u64 = GTES_PER_GT * 4 / SECTOR;
/// Bytes of the virtual disk one grain table covers (32 MiB).
pub const GT_COVERAGE: u64 = GRAIN_BYTES * GTES_PER_GT;
/// Grains read and prepared in parallel at a time: bounds memory to about 64 grain
/// buffers plus their compressed copies (~8 MiB) whatever the capacity.
pub const BATCH_GRAINS: u64 = 64;
/// Largest capacity written: 64 TiB covers VMware's 62 TB virtual disk limit and keeps
/// the in-memory grain directory of a stream at 8 MiB.
pub const MAX_CAPACITY: u64 = 64 << 40;

const _: () = assert!(
    GTES_PER_GT.is_multiple_of(BATCH_GRAINS),
    "batches never straddle a grain table"
);

/// Which VMDK layout to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subformat {
    /// `createType="streamOptimized"`: deflate-compressed grains with markers, written
    /// front to back, grain directory at the end (header gdOffset = GD_AT_END, footer).
    StreamOptimized,
    /// `createType="monolithicSparse"`: uncompressed grains, redundant and primary grain
    /// directories with preallocated grain tables at the front.
    MonolithicSparse,
}

/// Writes the whole content of `disk` as a single-file VMDK at `out` (created/truncated).
///
/// Reads only what `disk.map()` reports as Data (Zero/Unallocated ranges are not read and
/// become unallocated grains); data grains that are all zeros are also left unallocated.
/// Ranges the map reports Unreadable, or leaves out, are read too, so a disk that cannot
/// read them fails the write instead of losing data.
/// `progress` is called with the number of bytes of virtual disk processed so far (may be
/// called from one thread only).
///
/// The capacity must be a whole number of 512-byte sectors, above zero and at most
/// [`MAX_CAPACITY`]. A file that would need sector numbers above `u32::MAX` (2 TiB) is
/// refused when that point is reached. On error the partly written file is left in place.
pub fn write_vmdk(
    disk: &dyn VirtualDisk,
    out: &Path,
    subformat: Subformat,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<()> {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    write_vmdk_as(disk, out, &name, subformat, progress)
}

/// [`write_vmdk`] for a file that will be renamed: `final_name` goes into the extent line
/// of the embedded descriptor (VMware and libvmdk open the extent by that name).
pub fn write_vmdk_as(
    disk: &dyn VirtualDisk,
    out: &Path,
    final_name: &str,
    subformat: Subformat,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<()> {
    let capacity = disk.capacity();
    if !capacity.is_multiple_of(SECTOR) {
        return Err(Error::refused(
            out,
            format!(
                "not written: VMDK capacities are whole 512-byte sectors, and the disk has {capacity} bytes ({} bytes past the last whole sector)",
                capacity % SECTOR
            ),
        ));
    }
    if capacity == 0 {
        return Err(Error::refused(
            out,
            "not written: the disk is empty, and readers refuse a sparse extent of 0 sectors",
        ));
    }
    if capacity > MAX_CAPACITY {
        return Err(Error::refused(
            out,
            format!(
                "not written: capacity {capacity} bytes is above the {MAX_CAPACITY}-byte limit of this writer"
            ),
        ));
    }
    let job = Job {
        disk,
        sectors: capacity / SECTOR,
        file_name: final_name,
        progress,
    };
    let file = OutFile::create(out)?;
    match subformat {
        Subformat::StreamOptimized => stream::write(&job, file),
        Subformat::MonolithicSparse => sparse::write(&job, file),
    }
}

/// What every layout is given to write.
struct Job<'a> {
    /// The disk written.
    disk: &'a dyn VirtualDisk,
    /// Its capacity in sectors.
    sectors: u64,
    /// The extent file name the embedded descriptor gives.
    file_name: &'a str,
    /// Told the bytes of `disk` processed so far.
    progress: &'a (dyn Fn(u64) + Sync),
}

impl Job<'_> {
    /// The header fields every layout writes alike: the capacity, the grain and table
    /// sizes, the embedded descriptor at sector 1, a clean shutdown. The layout fills in
    /// the rest (left 0 here).
    fn header(&self) -> SparseHeader {
        SparseHeader {
            version: 0,
            flags: 0,
            capacity: self.sectors,
            grain_size: GRAIN_SECTORS,
            descriptor_offset: 1,
            descriptor_size: DESCRIPTOR_SECTORS,
            num_gtes_per_gt: GTES_PER_GT as u32,
            rgd_offset: 0,
            gd_offset: 0,
            overhead: 0,
            unclean_shutdown: false,
            compress_algorithm: 0,
        }
    }

    /// Writes the header `h` at sector 0 of `out` and the embedded descriptor of a
    /// `create_type` VMDK after it.
    fn write_head(&self, out: &OutFile, h: &SparseHeader, create_type: &'static str) -> Result<()> {
        out.write_at(&header::encode(h), 0)?;
        let desc = EmbeddedDescriptor::new(create_type, self.sectors, self.file_name);
        out.write_at(&desc.encode(out.path())?, SECTOR)
    }

    /// Feeds every grain of the disk to `sink`.
    fn pump(&self, sink: &mut dyn GrainSink) -> Result<()> {
        grains::pump(self.disk, self.sectors * SECTOR, self.progress, sink)
    }
}

/// `sector` as the u32 sector number grain tables and directories store.
fn file_sector(out: &OutFile, sector: u64) -> Result<u32> {
    u32::try_from(sector).map_err(|_| {
        Error::io(
            out.path(),
            sector.saturating_mul(SECTOR),
            std::io::Error::other(
                "the VMDK would grow past 2 TiB, beyond the reach of its 32-bit sector numbers",
            ),
        )
    })
}
