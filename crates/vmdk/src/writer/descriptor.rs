//! The embedded text descriptor written at sector 1 of a single-file sparse VMDK.
//!
//! Sources: qemu `block/vmdk.c` (`vmdk_co_do_create`: the `desc_template` lines, CID and
//! parentCID in hex, virtualHWVersion "4", toolsVersion "2147483647", IDE geometry with 16
//! heads and 63 sectors); `docs/formats.md` §1.2 (keys, the extent line, NUL padding to
//! descriptorSize; embedded file names are informational).

use diskray_core::{Error, Result, SECTOR};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Sectors reserved for the embedded descriptor: qemu reserves 20 (10 KiB), far more than
/// the few hundred bytes written, so tools can grow it in place.
pub const DESCRIPTOR_SECTORS: u64 = 20;
/// Heads of the IDE geometry, as qemu writes for adapterType "ide".
pub const GEOMETRY_HEADS: u64 = 16;
/// Sectors per track of the geometry (qemu, every adapter type).
pub const GEOMETRY_SECTORS: u64 = 63;
/// Largest IDE cylinder count (the CHS limit of ATA).
pub const MAX_CYLINDERS: u64 = 16_383;
/// Longest file name put in the extent line: names are informational, and this keeps the
/// descriptor well inside its reserved sectors.
const MAX_NAME_BYTES: usize = 255;

/// The fields of an embedded descriptor for one SPARSE extent.
#[derive(Debug, Clone)]
pub struct EmbeddedDescriptor {
    /// Content ID (8 hex digits).
    pub cid: u32,
    /// `createType` (`monolithicSparse` or `streamOptimized`).
    pub create_type: &'static str,
    /// Capacity in sectors.
    pub sectors: u64,
    /// The file name of the extent line (informational for embedded descriptors).
    pub file_name: String,
}

impl EmbeddedDescriptor {
    /// A descriptor with a fresh CID and `file_name` made safe for the quoted field.
    pub fn new(create_type: &'static str, sectors: u64, file_name: &str) -> Self {
        let mut name: String = file_name
            .chars()
            .map(|c| if c == '"' || c.is_control() { '_' } else { c })
            .collect();
        while name.len() > MAX_NAME_BYTES {
            name.pop();
        }
        if name.is_empty() {
            name = "disk.vmdk".into();
        }
        Self {
            cid: new_cid(),
            create_type,
            sectors,
            file_name: name,
        }
    }

    /// The descriptor text.
    pub fn text(&self) -> String {
        let cylinders = (self.sectors / (GEOMETRY_HEADS * GEOMETRY_SECTORS)).min(MAX_CYLINDERS);
        format!(
            "# Disk DescriptorFile\n\
             version=1\n\
             CID={cid:08x}\n\
             parentCID=ffffffff\n\
             createType=\"{create}\"\n\
             \n\
             # Extent description\n\
             RW {sectors} SPARSE \"{name}\"\n\
             \n\
             # The Disk Data Base\n\
             #DDB\n\
             \n\
             ddb.virtualHWVersion = \"4\"\n\
             ddb.geometry.cylinders = \"{cylinders}\"\n\
             ddb.geometry.heads = \"{GEOMETRY_HEADS}\"\n\
             ddb.geometry.sectors = \"{GEOMETRY_SECTORS}\"\n\
             ddb.adapterType = \"ide\"\n\
             ddb.toolsVersion = \"2147483647\"\n",
            cid = self.cid,
            create = self.create_type,
            sectors = self.sectors,
            name = self.file_name,
        )
    }

    /// The text NUL-padded to [`DESCRIPTOR_SECTORS`] sectors, for the file `out` (named
    /// in errors).
    pub fn encode(&self, out: &Path) -> Result<Vec<u8>> {
        let mut b = self.text().into_bytes();
        let room = (DESCRIPTOR_SECTORS * SECTOR) as usize;
        if b.len() > room {
            return Err(Error::refused(
                out,
                format!(
                    "VMDK descriptor of {} bytes does not fit its {room}-byte area",
                    b.len()
                ),
            ));
        }
        b.resize(room, 0);
        Ok(b)
    }
}

/// A content ID from the clock and the process's random hash keys, avoiding `ffffffff`
/// (no parent) and `fffffffe` (use ddb.longContentID).
fn new_cid() -> u32 {
    let mut h = RandomState::new().build_hasher();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.write_u128(now);
    h.write_u32(std::process::id());
    let cid = h.finish() as u32;
    if cid >= 0xFFFF_FFFE {
        cid & 0x7FFF_FFFF
    } else {
        cid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptor::{self, ExtentType};
    use std::path::Path;

    #[test]
    fn the_reader_parses_it() {
        let d = EmbeddedDescriptor::new("monolithicSparse", 131_072, "a\"b\nc.vmdk");
        let bytes = d.encode(Path::new("t.vmdk")).unwrap();
        assert_eq!(bytes.len(), 10_240);
        let p = descriptor::parse(&bytes, Path::new("x.vmdk"), 512).unwrap();
        assert_eq!(p.create_type, "monolithicSparse");
        assert_eq!(p.cid, Some(format!("{:08x}", d.cid)));
        assert_eq!(p.extents.len(), 1);
        assert_eq!(p.extents[0].kind, ExtentType::Sparse);
        assert_eq!(p.extents[0].sectors, 131_072);
        assert_eq!(p.extents[0].file.as_deref(), Some("a_b_c.vmdk"));
        assert!(d.text().contains("ddb.geometry.cylinders = \"130\"\n"));
        let big = EmbeddedDescriptor::new("streamOptimized", 1 << 40, "");
        assert!(big.text().contains("cylinders = \"16383\""));
        assert!(big.text().contains("\"disk.vmdk\""));
    }
}
