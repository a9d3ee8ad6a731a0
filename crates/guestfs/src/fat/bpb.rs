//! The FAT BIOS parameter block (boot sector bytes 11–89).
//!
//! Sources: Microsoft fatgen103 §3 (field offsets; FAT type from the cluster count); Linux
//! `fs/fat/inode.c` `fat_fill_super` (a BPB whose 16-bit FAT size is 0 is FAT32 whatever
//! the cluster count); `docs/formats.md` §3.2.

use crate::probe::Content;
use diskray_core::Fields;
use diskray_core::Warning;

/// Highest cluster count a FAT32 volume may have (entries are 28 bits; the top values are
/// reserved).
pub const MAX_CLUSTERS: u64 = 0x0FFF_FFF5;

/// Byte offsets of the boot sector's BPB fields (fatgen103 §3, little-endian).
pub mod off {
    /// `BS_jmpBoot[0]` (`EB` or `E9`).
    pub const JMP_BOOT: usize = 0;
    /// `BPB_BytsPerSec` (u16).
    pub const BYTS_PER_SEC: usize = 11;
    /// `BPB_SecPerClus` (u8).
    pub const SEC_PER_CLUS: usize = 13;
    /// `BPB_RsvdSecCnt` (u16).
    pub const RSVD_SEC_CNT: usize = 14;
    /// `BPB_NumFATs` (u8).
    pub const NUM_FATS: usize = 16;
    /// `BPB_RootEntCnt` (u16).
    pub const ROOT_ENT_CNT: usize = 17;
    /// `BPB_TotSec16` (u16).
    pub const TOT_SEC16: usize = 19;
    /// `BPB_FATSz16` (u16; 0 on FAT32).
    pub const FAT_SZ16: usize = 22;
    /// `BPB_TotSec32` (u32).
    pub const TOT_SEC32: usize = 32;
    /// `BPB_FATSz32` (u32).
    pub const FAT_SZ32: usize = 36;
    /// `BPB_ExtFlags` (u16, FAT32).
    pub const EXT_FLAGS: usize = 40;
    /// `BPB_RootClus` (u32, FAT32).
    pub const ROOT_CLUS: usize = 44;
    /// `BPB_FSInfo` (u16, FAT32).
    pub const FS_INFO: usize = 48;
    /// `BS_BootSig` of FAT12/16 (0x29: the label and serial follow).
    pub const BOOT_SIG16: usize = 38;
    /// `BS_VolLab` of FAT12/16, 11 bytes.
    pub const VOL_LAB16: usize = 43;
    /// `BS_BootSig` of FAT32.
    pub const BOOT_SIG32: usize = 66;
    /// `BS_VolLab` of FAT32, 11 bytes.
    pub const VOL_LAB32: usize = 71;
    /// Bytes of a volume label.
    pub const VOL_LAB_BYTES: usize = 11;
    /// The `55 AA` signature.
    pub const SIGNATURE: usize = 510;
}

/// `BS_BootSig` value saying the volume label and serial are present.
const EXTENDED_BOOT_SIG: u8 = 0x29;

/// The BPB fields the map needs.
#[derive(Debug, Clone)]
pub struct Bpb {
    /// Bytes per sector.
    pub bytes_per_sector: u64,
    /// Sectors per cluster.
    pub sectors_per_cluster: u64,
    /// Reserved sectors before the first FAT.
    pub reserved: u64,
    /// Number of FAT copies.
    pub num_fats: u64,
    /// Root directory entries (FAT12/16).
    pub root_entries: u64,
    /// Total sectors.
    pub total_sectors: u64,
    /// Sectors per FAT.
    pub fat_size: u64,
    /// FAT32 ExtFlags.
    pub ext_flags: u16,
    /// FAT32 FSInfo sector.
    pub fsinfo_sector: u64,
    /// FAT32 first cluster of the root directory.
    pub root_cluster: u32,
    /// Volume label from the extended BPB.
    pub label: Option<String>,
    /// FAT12, FAT16 or FAT32, as read (see [`Bpb::content`]).
    fat_type: Content,
}

/// The boot sector's fields as stored, before any check.
struct Raw {
    jmp_boot: u8,
    bytes_per_sector: u16,
    sectors_per_cluster: u8,
    reserved: u16,
    num_fats: u8,
    root_entries: u16,
    total16: u16,
    fat_size16: u16,
    total32: u32,
    fat_size32: u32,
    ext_flags: u16,
    root_cluster: u32,
    fsinfo: u16,
    boot_sig16: u8,
    label16: [u8; off::VOL_LAB_BYTES],
    boot_sig32: u8,
    label32: [u8; off::VOL_LAB_BYTES],
    signature: [u8; 2],
}

impl Raw {
    fn read(f: &Fields) -> diskray_core::Result<Raw> {
        Ok(Raw {
            jmp_boot: f.u8(off::JMP_BOOT)?,
            bytes_per_sector: f.le16(off::BYTS_PER_SEC)?,
            sectors_per_cluster: f.u8(off::SEC_PER_CLUS)?,
            reserved: f.le16(off::RSVD_SEC_CNT)?,
            num_fats: f.u8(off::NUM_FATS)?,
            root_entries: f.le16(off::ROOT_ENT_CNT)?,
            total16: f.le16(off::TOT_SEC16)?,
            fat_size16: f.le16(off::FAT_SZ16)?,
            total32: f.le32(off::TOT_SEC32)?,
            fat_size32: f.le32(off::FAT_SZ32)?,
            ext_flags: f.le16(off::EXT_FLAGS)?,
            root_cluster: f.le32(off::ROOT_CLUS)?,
            fsinfo: f.le16(off::FS_INFO)?,
            boot_sig16: f.u8(off::BOOT_SIG16)?,
            label16: f.array(off::VOL_LAB16)?,
            boot_sig32: f.u8(off::BOOT_SIG32)?,
            label32: f.array(off::VOL_LAB32)?,
            signature: f.array(off::SIGNATURE)?,
        })
    }
}

/// Why a boot sector is not a FAT boot sector diskray can read.
#[derive(Debug, thiserror::Error)]
pub enum BpbError {
    /// A field could not be read.
    #[error("{0}")]
    Read(#[from] diskray_core::Error),
    /// No jump instruction or no 0x55AA.
    #[error("no jump instruction or boot signature")]
    NoSignature,
    /// Bytes per sector not 512, 1024, 2048 or 4096.
    #[error("{0} bytes per sector")]
    SectorSize(u64),
    /// Sectors per cluster not a power of two.
    #[error("{0} sectors per cluster")]
    ClusterSize(u64),
    /// No reserved sector, or not 1 to 4 FATs.
    #[error("{reserved} reserved sectors, {num_fats} FATs")]
    Areas {
        /// Reserved sectors.
        reserved: u64,
        /// FAT copies.
        num_fats: u64,
    },
    /// No sectors, or an empty FAT.
    #[error("{total} total sectors, {fat_size} sectors per FAT")]
    Empty {
        /// Total sectors.
        total: u64,
        /// Sectors per FAT.
        fat_size: u64,
    },
    /// Larger than the volume.
    #[error("{total} sectors of {bps} bytes do not fit the volume ({volume_len} bytes)")]
    TooLarge {
        /// Total sectors.
        total: u64,
        /// Bytes per sector.
        bps: u64,
        /// The volume's length.
        volume_len: u64,
    },
    /// The data area starts past the end.
    #[error("data area starts at sector {fds}, past the last sector {total}")]
    DataPastEnd {
        /// First data sector.
        fds: u64,
        /// Total sectors.
        total: u64,
    },
    /// No cluster, or more than the bound.
    #[error("{0} clusters")]
    ClusterCount(u64),
    /// The FAT cannot hold an entry per cluster.
    #[error("a FAT of {fat_size} sectors cannot hold {clusters} clusters")]
    FatTooSmall {
        /// Sectors per FAT.
        fat_size: u64,
        /// Clusters.
        clusters: u64,
    },
    /// FAT32 has no fixed root directory.
    #[error("FAT32 with a fixed root directory")]
    Fat32FixedRoot,
}

impl Bpb {
    /// Parses and checks the BPB of `boot` (512 bytes) for a volume of `volume_len` bytes.
    pub fn parse(boot: &Fields, volume_len: u64) -> Result<Bpb, BpbError> {
        let r = Raw::read(boot)?;
        if !matches!(r.jmp_boot, 0xEB | 0xE9) || r.signature != [0x55, 0xAA] {
            return Err(BpbError::NoSignature);
        }
        let bps = r.bytes_per_sector as u64;
        if !matches!(bps, 512 | 1024 | 2048 | 4096) {
            return Err(BpbError::SectorSize(bps));
        }
        let spc = r.sectors_per_cluster as u64;
        if spc == 0 || !spc.is_power_of_two() {
            return Err(BpbError::ClusterSize(spc));
        }
        let reserved = r.reserved as u64;
        let num_fats = r.num_fats as u64;
        if reserved == 0 || !(1..=4).contains(&num_fats) {
            return Err(BpbError::Areas { reserved, num_fats });
        }
        let total = if r.total16 != 0 {
            r.total16 as u64
        } else {
            r.total32 as u64
        };
        let is32 = r.fat_size16 == 0;
        let fat_size = if is32 {
            r.fat_size32 as u64
        } else {
            r.fat_size16 as u64
        };
        let (boot_sig, label) = if is32 {
            (r.boot_sig32, r.label32)
        } else {
            (r.boot_sig16, r.label16)
        };
        let label = (boot_sig == EXTENDED_BOOT_SIG)
            .then(|| String::from_utf8_lossy(&label).trim_end().to_string())
            .filter(|l| !l.is_empty() && l != "NO NAME");
        let mut bpb = Bpb {
            bytes_per_sector: bps,
            sectors_per_cluster: spc,
            reserved,
            num_fats,
            root_entries: r.root_entries as u64,
            total_sectors: total,
            fat_size,
            ext_flags: if is32 { r.ext_flags } else { 0 },
            fsinfo_sector: if is32 { r.fsinfo as u64 } else { 0 },
            root_cluster: if is32 { r.root_cluster } else { 0 },
            label,
            fat_type: Content::Fat32,
        };
        if fat_size == 0 || total == 0 {
            return Err(BpbError::Empty { total, fat_size });
        }
        if total * bps > volume_len {
            return Err(BpbError::TooLarge {
                total,
                bps,
                volume_len,
            });
        }
        let fds = bpb.first_data_sector();
        if fds >= total {
            return Err(BpbError::DataPastEnd { fds, total });
        }
        let clusters = bpb.clusters();
        if clusters == 0 || clusters > MAX_CLUSTERS {
            return Err(BpbError::ClusterCount(clusters));
        }
        // A FAT32 BPB (no 16-bit FAT size; the 32-bit one and the root cluster instead)
        // is FAT32 whatever the cluster count, as Linux and fsck.fat read it; otherwise the
        // count decides (fatgen103).
        bpb.fat_type = if is32 {
            Content::Fat32
        } else {
            bpb.count_type()
        };
        let bits = match bpb.content() {
            Content::Fat12 => 12,
            Content::Fat16 => 16,
            _ => 32,
        };
        if fat_size * bps * 8 / bits < clusters + 2 {
            return Err(BpbError::FatTooSmall { fat_size, clusters });
        }
        if bpb.content() == Content::Fat32 && bpb.root_entries != 0 {
            return Err(BpbError::Fat32FixedRoot);
        }
        Ok(bpb)
    }

    /// Sectors of the fixed root directory (FAT12/16).
    pub fn root_dir_sectors(&self) -> u64 {
        (self.root_entries * 32).div_ceil(self.bytes_per_sector)
    }

    /// First sector of the data area (cluster 2).
    pub fn first_data_sector(&self) -> u64 {
        self.reserved + self.num_fats * self.fat_size + self.root_dir_sectors()
    }

    /// Number of data clusters.
    pub fn clusters(&self) -> u64 {
        (self.total_sectors.saturating_sub(self.first_data_sector())) / self.sectors_per_cluster
    }

    /// Bytes per cluster.
    pub fn cluster_bytes(&self) -> u64 {
        self.bytes_per_sector * self.sectors_per_cluster
    }

    /// FAT12, FAT16 or FAT32: FAT32 for a FAT32 BPB (16-bit FAT size 0), otherwise from
    /// the cluster count.
    pub fn content(&self) -> Content {
        self.fat_type
    }

    /// The type fatgen103 gives from the cluster count alone.
    pub fn count_type(&self) -> Content {
        match self.clusters() {
            c if c < 4085 => Content::Fat12,
            c if c < 65525 => Content::Fat16,
            _ => Content::Fat32,
        }
    }

    /// Why the type read differs from the one the cluster count gives, if it does.
    pub fn type_note(&self) -> Option<Warning> {
        (self.fat_type != self.count_type()).then(|| {
            Warning::new(format!(
                "a FAT32 boot sector (16-bit FAT size 0, {} sectors per FAT, root directory at \
                 cluster {}) with only {} clusters, fewer than the 65525 of a FAT32 by count \
                 (which would make it {}): read as FAT32, as Linux and fsck.fat read it",
                self.fat_size,
                self.root_cluster,
                self.clusters(),
                self.count_type().name()
            ))
        })
    }

    /// FAT32 with mirroring disabled (ExtFlags bit 7): only the active FAT is current.
    pub fn mirroring_off(&self) -> bool {
        self.content() == Content::Fat32 && self.ext_flags & 0x80 != 0
    }

    /// The active FAT when mirroring is off.
    pub fn active_fat(&self) -> u64 {
        ((self.ext_flags & 0xF) as u64).min(self.num_fats - 1)
    }
}
