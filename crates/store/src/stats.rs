//! The backup statistics, with the field names of `docs/design.md` ("Backup
//! statistics") and a one-line summary in the manner of NetBackup's accelerator log
//! ("accelerator sent … bytes out of … bytes, optimization 98.7%", `docs/formats.md` §5.8).

use diskray_core::human::{group, size};
use serde::{Deserialize, Serialize};

/// Where the knowledge of what changed came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeSource {
    /// No previous image: everything kept was read.
    Full,
    /// A change map (CBT or dirty bitmap) chose what to read.
    Cbt,
    /// Every kept byte was read and hashed; unchanged chunks were linked.
    Rescan,
}

/// The statistics of one backup. Bytes unless the name says otherwise.
///
/// `read_from_source + skipped_unallocated + skipped_zero + skipped_free +
/// skipped_vg_free + skipped_excluded + skipped_unchanged = capacity`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BackupStats {
    /// Size of the disk.
    pub capacity: u64,
    /// Data bytes read from the disk by the pipeline.
    pub read_from_source: u64,
    /// Never written in the container: not read, restored as zeros.
    pub skipped_unallocated: u64,
    /// Declared zero by the container (zeroed grains, ZERO extents): not read.
    pub skipped_zero: u64,
    /// Free in the guest filesystem (deleted data included, unless kept): not read,
    /// restored as zeros.
    pub skipped_free: u64,
    /// Extents of LVM2 physical volumes that no logical volume owns (unless kept with
    /// the free space): not read, restored as zeros. Absent from manifests written before
    /// it existed (read as 0).
    #[serde(default)]
    pub skipped_vg_free: u64,
    /// Swap, pagefile, hiberfil (unless kept): not read, restored as zeros.
    pub skipped_excluded: u64,
    /// Kept bytes not read because they did not change: linked to the previous image.
    pub skipped_unchanged: u64,
    /// Bytes written to the repository for new chunks (after compression).
    pub stored_new: u64,
    /// Non-zero chunks linked to a chunk already in the repository.
    pub reused_chunks: u64,
    /// Chunks written.
    pub new_chunks: u64,
    /// Chunks that are all zeros (never stored).
    pub zero_chunks: u64,
    /// Chunks whose content differs from the previous image.
    pub changed_chunks: u64,
    /// Rescan with a change map: chunks that changed although the map said they did not.
    /// `None` when there is nothing to compare.
    pub cbt_missed_chunks: Option<u64>,
    /// Chunks made from the previous image's chunk with bytes that are no longer kept
    /// (newly freed) set to zero, without reading the disk.
    pub rebuilt_chunks: u64,
    /// Kept bytes of changed chunks taken from the previous image's chunk instead of the
    /// disk: with a change map, a changed chunk is the parent's chunk patched with the
    /// changed bytes. Absent from manifests written before it existed (read as 0).
    #[serde(default)]
    pub from_parent: u64,
    /// Changed chunks stored as a patch over the previous image's chunk (only the changed
    /// bytes, `docs/repository.md`, "Patched chunks"), new or linked. Absent from
    /// manifests written before it existed (read as 0).
    #[serde(default)]
    pub patched_chunks: u64,
    /// Chunks read again because the previous image's copy was missing or damaged.
    pub healed_chunks: u64,
    /// Bytes the guest analysis read (partition tables, superblocks, bitmaps).
    pub read_metadata: u64,
    /// Bytes taken from the disk into the image (used ∪ metadata ∪ unknown, plus what
    /// `--keep-deleted` / `--keep-swap` add).
    pub kept: u64,
    /// Bytes per chunk.
    pub chunk_size: u64,
    /// Wall-clock seconds.
    pub duration_seconds: f64,
    /// 100 × (1 − read_from_source / kept).
    pub optimization_percent: f64,
    /// What chose the chunks to read.
    pub change_source: Option<ChangeSource>,
}

impl ChangeSource {
    /// The name used in JSON and tables.
    pub fn name(self) -> &'static str {
        match self {
            ChangeSource::Full => "full",
            ChangeSource::Cbt => "cbt",
            ChangeSource::Rescan => "rescan",
        }
    }
}

impl BackupStats {
    /// The one-line summary for people.
    pub fn summary(&self) -> String {
        let mode = match self.change_source {
            Some(ChangeSource::Full) => "full",
            Some(ChangeSource::Cbt) => "incremental (change map)",
            Some(ChangeSource::Rescan) => "rescan",
            None => "backup",
        };
        let mut s = format!(
            "{mode}: read {} of {} used, optimization {:.1}%, {} new chunks ({} stored), {} reused, {} zero, {:.1} s",
            size(self.read_from_source),
            size(self.kept),
            self.optimization_percent,
            group(self.new_chunks),
            size(self.stored_new),
            group(self.reused_chunks),
            group(self.zero_chunks),
            self.duration_seconds
        );
        if let Some(m) = self.cbt_missed_chunks {
            s.push_str(&format!(", {m} chunks changed that the change map missed"));
        }
        if self.healed_chunks > 0 {
            s.push_str(&format!(
                ", {} damaged or missing chunks stored again",
                self.healed_chunks
            ));
        }
        s
    }
}
