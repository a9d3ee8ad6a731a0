//! Disk image formats diskray recognises by their magic but does not read yet: they are
//! refused by name with the command that converts them, instead of being read as raw disks.
//!
//! Sources (each magic checked against a file the format's own tool wrote, see
//! `fixtures/interop/parts/`):
//! - qcow and qcow2: QEMU `docs/interop/qcow2.txt` and `block/qcow.c`: `QFI\xfb` at byte
//!   0, then the big-endian version (1 for qcow, 2 or 3 for qcow2).
//! - VHD: Microsoft "Virtual Hard Disk Image Format Specification" 1.0: a 512-byte footer
//!   with the cookie `conectix` at the end of the file (its checksum, the one's complement
//!   of the byte sum with the checksum field zero, at footer byte 64); dynamic and
//!   differencing disks also keep a copy of it at byte 0.
//! - VHDX: [MS-VHDX] §2.2.1: the file type identifier `vhdxfile` at byte 0.
//! - VDI: VirtualBox `VDICore.h`: a text banner in bytes 0–63 (`<<< … >>>`), then the
//!   little-endian signature 0xBEDA107F at byte 64.
//! - E01: libewf "Expert Witness Compression Format" §2.1: `EVF\x09\x0d\x0a\xff\x00` at
//!   byte 0 (`EVF2\x0d\x0a\x81\x00` for the version 2 format, Ex01).
//! - DMG: Apple UDIF: the 512-byte `koly` trailer at the end of the file, big-endian
//!   version 4 and header size 512.

use diskray_core::Fields;

/// Bytes at the end of a file a trailer can lie in (the VHD footer, the UDIF trailer).
pub const TRAILER: usize = 512;

/// An image format diskray recognises but cannot read yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Foreign {
    /// QEMU copy-on-write version 1.
    Qcow,
    /// QEMU copy-on-write versions 2 and 3.
    Qcow2,
    /// Microsoft Virtual PC / Hyper-V VHD (fixed, dynamic or differencing).
    Vhd,
    /// Microsoft Hyper-V VHDX.
    Vhdx,
    /// VirtualBox VDI.
    Vdi,
    /// Expert Witness (EnCase) E01 or Ex01.
    E01,
    /// Apple UDIF (a .dmg file).
    Dmg,
}

impl Foreign {
    /// The format as people name it, with its article (`a qcow2`, `an E01`).
    pub fn name(&self) -> &'static str {
        match self {
            Foreign::Qcow => "a qcow",
            Foreign::Qcow2 => "a qcow2",
            Foreign::Vhd => "a VHD",
            Foreign::Vhdx => "a VHDX",
            Foreign::Vdi => "a VDI",
            Foreign::E01 => "an E01",
            Foreign::Dmg => "a DMG",
        }
    }

    /// The command that converts it to a raw image.
    pub fn advice(&self) -> &'static str {
        match self {
            Foreign::Qcow => "qemu-img convert -f qcow -O raw",
            Foreign::Qcow2 => "qemu-img convert -f qcow2 -O raw",
            Foreign::Vhd => "qemu-img convert -f vpc -O raw",
            Foreign::Vhdx => "qemu-img convert -f vhdx -O raw",
            Foreign::Vdi => "qemu-img convert -f vdi -O raw",
            Foreign::E01 => "ewfexport -f raw (from libewf's ewf-tools)",
            Foreign::Dmg => "qemu-img convert -f dmg -O raw",
        }
    }

    /// The format whose magic begins `head` (the file's first bytes).
    pub fn from_head(head: &[u8]) -> Option<Foreign> {
        let at = |off: usize, magic: &[u8]| head.get(off..off + magic.len()) == Some(magic);
        if at(0, b"QFI\xfb") {
            let version = Fields::in_memory(head, "qcow header")
                .be32(QCOW_VERSION)
                .ok();
            return match version {
                Some(1) => Some(Foreign::Qcow),
                Some(2 | 3) => Some(Foreign::Qcow2),
                _ => None,
            };
        }
        if at(0, b"vhdxfile") {
            return Some(Foreign::Vhdx);
        }
        if at(0, b"<<< ") && at(VDI_SIGNATURE, &VDI_SIGNATURE_VALUE.to_le_bytes()) {
            return Some(Foreign::Vdi);
        }
        if at(0, b"EVF\x09\x0d\x0a\xff\x00") || at(0, b"EVF2\x0d\x0a\x81\x00") {
            return Some(Foreign::E01);
        }
        if head.len() >= TRAILER && vhd_footer(&head[..TRAILER]) {
            return Some(Foreign::Vhd);
        }
        None
    }

    /// The format whose trailer is `tail` (the file's last [`TRAILER`] bytes).
    pub fn from_tail(tail: &[u8]) -> Option<Foreign> {
        if tail.len() != TRAILER {
            return None;
        }
        if vhd_footer(tail) {
            return Some(Foreign::Vhd);
        }
        let f = Fields::in_memory(tail, "dmg trailer");
        let koly = f.bytes(0, 4).ok() == Some(b"koly");
        if koly && f.be32(DMG_VERSION).ok() == Some(4) && f.be32(DMG_HEADER_SIZE).ok() == Some(512)
        {
            return Some(Foreign::Dmg);
        }
        None
    }
}

/// qcow/qcow2 header: `version` (u32, big-endian).
const QCOW_VERSION: usize = 4;
/// VDI pre-header: the signature (u32, little-endian) after the 64-byte text.
const VDI_SIGNATURE: usize = 0x40;
/// The VDI signature.
const VDI_SIGNATURE_VALUE: u32 = 0xBEDA_107F;
/// VHD footer: `Checksum` (u32, big-endian), the one's complement of the other bytes' sum.
const VHD_CHECKSUM: usize = 64;
/// DMG `koly` trailer: `Version` (u32, big-endian; 4).
const DMG_VERSION: usize = 4;
/// DMG `koly` trailer: `HeaderSize` (u32, big-endian; 512).
const DMG_HEADER_SIZE: usize = 8;

/// True for a VHD footer: the cookie and a matching checksum.
fn vhd_footer(f: &[u8]) -> bool {
    if f.len() < TRAILER || &f[0..8] != b"conectix" {
        return false;
    }
    let Ok(want) = Fields::in_memory(f, "VHD footer").be32(VHD_CHECKSUM) else {
        return false;
    };
    let sum = f[..TRAILER]
        .iter()
        .enumerate()
        .filter(|(i, _)| !(VHD_CHECKSUM..VHD_CHECKSUM + 4).contains(i))
        .fold(0u32, |s, (_, &b)| s.wrapping_add(b as u32));
    !sum == want
}

#[cfg(test)]
mod tests {
    use super::*;

    fn footer() -> Vec<u8> {
        let mut f = vec![0u8; TRAILER];
        f[0..8].copy_from_slice(b"conectix");
        f[60..64].copy_from_slice(&2u32.to_be_bytes());
        let sum = f.iter().fold(0u32, |s, &b| s.wrapping_add(b as u32));
        f[64..68].copy_from_slice(&(!sum).to_be_bytes());
        f
    }

    #[test]
    fn vhd_footer_needs_its_checksum() {
        let mut f = footer();
        assert_eq!(Foreign::from_tail(&f), Some(Foreign::Vhd));
        f[100] ^= 1;
        assert_eq!(Foreign::from_tail(&f), None);
    }

    #[test]
    fn qcow_versions() {
        let mut h = b"QFI\xfb\0\0\0\x01".to_vec();
        assert_eq!(Foreign::from_head(&h), Some(Foreign::Qcow));
        h[7] = 3;
        assert_eq!(Foreign::from_head(&h), Some(Foreign::Qcow2));
        h[7] = 9;
        assert_eq!(Foreign::from_head(&h), None);
        assert_eq!(Foreign::from_head(&h[..5]), None);
    }

    #[test]
    fn short_and_unlike_inputs_are_not_foreign() {
        assert_eq!(Foreign::from_head(b""), None);
        assert_eq!(Foreign::from_head(b"<<< no signature"), None);
        assert_eq!(Foreign::from_tail(b"koly"), None);
        let mut k = vec![0u8; TRAILER];
        k[0..4].copy_from_slice(b"koly");
        assert_eq!(Foreign::from_tail(&k), None);
        k[4..8].copy_from_slice(&4u32.to_be_bytes());
        k[8..12].copy_from_slice(&512u32.to_be_bytes());
        assert_eq!(Foreign::from_tail(&k), Some(Foreign::Dmg));
    }
}
