//! The FAT BIOS parameter block (boot sector bytes 11–89).
//!
//! Sources: Microsoft fatgen103 §3 (field offsets; FAT type from the cluster count); Linux
//! `fs/fat/inode.c` `fat_fill_super` (a BPB whose 16-bit FAT size is 0 is FAT32 whatever
//! the cluster count); `shared/FORMATS.md` §3.2.

use crate::probe::Content;

/// Highest cluster count a FAT32 volume may have (entries are 28 bits; the top values are
/// reserved).
pub const MAX_CLUSTERS: u64 = 0x0FFF_FFF5;

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

impl Bpb {
    /// Parses and checks the BPB of `boot` (512 bytes) for a volume of `volume_len` bytes.
    pub fn parse(boot: &[u8], volume_len: u64) -> Result<Bpb, String> {
        let u16_at = |o: usize| u16::from_le_bytes([boot[o], boot[o + 1]]) as u64;
        let u32_at = |o: usize| u32::from_le_bytes(boot[o..o + 4].try_into().unwrap()) as u64;
        if !matches!(boot[0], 0xEB | 0xE9) || boot[510..512] != [0x55, 0xAA] {
            return Err("no jump instruction or boot signature".into());
        }
        let bps = u16_at(11);
        if !matches!(bps, 512 | 1024 | 2048 | 4096) {
            return Err(format!("{bps} bytes per sector"));
        }
        let spc = boot[13] as u64;
        if spc == 0 || !spc.is_power_of_two() {
            return Err(format!("{spc} sectors per cluster"));
        }
        let reserved = u16_at(14);
        let num_fats = boot[16] as u64;
        if reserved == 0 || !(1..=4).contains(&num_fats) {
            return Err(format!("{reserved} reserved sectors, {num_fats} FATs"));
        }
        let total = if u16_at(19) != 0 {
            u16_at(19)
        } else {
            u32_at(32)
        };
        let fat_size = if u16_at(22) != 0 {
            u16_at(22)
        } else {
            u32_at(36)
        };
        let is32 = u16_at(22) == 0;
        let label_at = if is32 { 71 } else { 43 };
        let label = (boot[label_at - 5] == 0x29)
            .then(|| {
                String::from_utf8_lossy(&boot[label_at..label_at + 11])
                    .trim_end()
                    .to_string()
            })
            .filter(|l| !l.is_empty() && l != "NO NAME");
        let mut bpb = Bpb {
            bytes_per_sector: bps,
            sectors_per_cluster: spc,
            reserved,
            num_fats,
            root_entries: u16_at(17),
            total_sectors: total,
            fat_size,
            ext_flags: if is32 { u16_at(40) as u16 } else { 0 },
            fsinfo_sector: if is32 { u16_at(48) } else { 0 },
            root_cluster: if is32 { u32_at(44) as u32 } else { 0 },
            label,
            fat_type: Content::Fat32,
        };
        if fat_size == 0 || total == 0 {
            return Err(format!("{total} total sectors, {fat_size} sectors per FAT"));
        }
        if total * bps > volume_len {
            return Err(format!(
                "{total} sectors of {bps} bytes do not fit the volume ({volume_len} bytes)"
            ));
        }
        let fds = bpb.first_data_sector();
        if fds >= total {
            return Err(format!(
                "data area starts at sector {fds}, past the last sector {total}"
            ));
        }
        let clusters = bpb.clusters();
        if clusters == 0 || clusters > MAX_CLUSTERS {
            return Err(format!("{clusters} clusters"));
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
            return Err(format!(
                "a FAT of {fat_size} sectors cannot hold {clusters} clusters"
            ));
        }
        if bpb.content() == Content::Fat32 && bpb.root_entries != 0 {
            return Err("FAT32 with a fixed root directory".into());
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
    pub fn type_note(&self) -> Option<String> {
        (self.fat_type != self.count_type()).then(|| {
            format!(
                "a FAT32 boot sector (16-bit FAT size 0, {} sectors per FAT, root directory at \
                 cluster {}) with only {} clusters, fewer than the 65525 of a FAT32 by count \
                 (which would make it {}): read as FAT32, as Linux and fsck.fat read it",
                self.fat_size,
                self.root_cluster,
                self.clusters(),
                self.count_type().name()
            )
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
