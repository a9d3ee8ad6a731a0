//! The 32-byte FAT directory entry, short (8.3) and long-name (LFN) forms.
//!
//! Sources: Microsoft fatgen103 §6 (`DIR_*` fields) and §7 (`LDIR_*` fields).

use diskray_core::{Fields, Result};

/// Bytes of a directory entry.
pub const BYTES: usize = 32;

/// Byte offsets of a short entry's fields (little-endian).
mod off {
    /// `DIR_Name`: 8 + 3 bytes, space-padded.
    pub const NAME: usize = 0;
    /// `DIR_Attr`.
    pub const ATTR: usize = 11;
    /// `DIR_NTRes`: Windows NT's lower-case flags.
    pub const NT_RES: usize = 12;
    /// `DIR_CrtTimeTenth`; in a long-name entry `LDIR_Chksum`.
    pub const CHECKSUM: usize = 13;
    /// `DIR_CrtTime` (u16).
    pub const CRT_TIME: usize = 14;
    /// `DIR_CrtDate` (u16).
    pub const CRT_DATE: usize = 16;
    /// `DIR_LstAccDate` (u16).
    pub const LST_ACC_DATE: usize = 18;
    /// `DIR_FstClusHI` (u16, FAT32 only).
    pub const FST_CLUS_HI: usize = 20;
    /// `DIR_WrtTime` (u16).
    pub const WRT_TIME: usize = 22;
    /// `DIR_WrtDate` (u16).
    pub const WRT_DATE: usize = 24;
    /// `DIR_FstClusLO` (u16); `LDIR_FstClusLO` (0) in a long-name entry.
    pub const FST_CLUS_LO: usize = 26;
    /// `DIR_FileSize` (u32).
    pub const FILE_SIZE: usize = 28;
    /// Where a long-name entry's 13 UTF-16 units lie: `LDIR_Name1` (5 units),
    /// `LDIR_Name2` (6), `LDIR_Name3` (2).
    pub const LFN_UNITS: [usize; 13] = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
}

/// One directory entry, with the fields of both forms (which one applies depends on
/// [`DirEntry::attr`]).
#[derive(Debug, Clone)]
pub struct DirEntry {
    /// `DIR_Name` (a long-name entry's first byte is `LDIR_Ord`).
    pub name: [u8; 11],
    /// `DIR_Attr` (`0x0F`: a long-name entry).
    pub attr: u8,
    /// `DIR_NTRes`.
    pub nt_res: u8,
    /// `LDIR_Chksum` of a long-name entry.
    pub checksum: u8,
    /// `DIR_CrtTime`.
    pub crt_time: u16,
    /// `DIR_CrtDate`.
    pub crt_date: u16,
    /// `DIR_LstAccDate`.
    pub acc_date: u16,
    /// `DIR_FstClusHI`.
    pub cluster_hi: u16,
    /// `DIR_WrtTime`.
    pub wrt_time: u16,
    /// `DIR_WrtDate`.
    pub wrt_date: u16,
    /// `DIR_FstClusLO`.
    pub cluster_lo: u16,
    /// `DIR_FileSize`.
    pub size: u32,
    /// A long-name entry's 13 UTF-16 units.
    pub lfn_units: [u16; 13],
}

impl DirEntry {
    /// Parses the entry held by `f` (at least [`BYTES`] long).
    pub fn parse(f: &Fields) -> Result<DirEntry> {
        let mut lfn_units = [0u16; 13];
        for (u, &at) in lfn_units.iter_mut().zip(off::LFN_UNITS.iter()) {
            *u = f.le16(at)?;
        }
        Ok(DirEntry {
            name: f.array(off::NAME)?,
            attr: f.u8(off::ATTR)?,
            nt_res: f.u8(off::NT_RES)?,
            checksum: f.u8(off::CHECKSUM)?,
            crt_time: f.le16(off::CRT_TIME)?,
            crt_date: f.le16(off::CRT_DATE)?,
            acc_date: f.le16(off::LST_ACC_DATE)?,
            cluster_hi: f.le16(off::FST_CLUS_HI)?,
            wrt_time: f.le16(off::WRT_TIME)?,
            wrt_date: f.le16(off::WRT_DATE)?,
            cluster_lo: f.le16(off::FST_CLUS_LO)?,
            size: f.le32(off::FILE_SIZE)?,
            lfn_units,
        })
    }

    /// Parses the entry of 32 bytes `e` from a directory's content (gathered from its
    /// clusters, so without one place on disk).
    pub fn from_bytes(e: &[u8]) -> Result<DirEntry> {
        DirEntry::parse(&Fields::in_memory(e, "FAT directory entry"))
    }

    /// The first byte: `DIR_Name[0]` (0: end of directory, 0xE5: deleted) or `LDIR_Ord`.
    pub fn first(&self) -> u8 {
        self.name[0]
    }

    /// The first cluster (the high word counts only on FAT32).
    pub fn cluster(&self, fat32: bool) -> u32 {
        let c = (self.cluster_hi as u32) << 16 | self.cluster_lo as u32;
        if fat32 {
            c
        } else {
            c & 0xFFFF
        }
    }
}
