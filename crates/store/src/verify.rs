//! `verify`: recompute every chunk an image needs (CRC, decode, SHA-256 against its name,
//! length), after PBS verify (`shared/FORMATS.md` §5.7). Each chunk is checked once per
//! run; damaged chunks are set aside as `.bad` so the next backup stores them again
//! (self-healing), and every image that needs one is named.

use crate::chunk::Digest;
use crate::index::FixedIndex;
use crate::repo::{ImageEntry, Repo};
use diskray_core::Result;
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// One damaged chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedChunk {
    /// Its digest.
    pub digest: Digest,
    /// What is wrong.
    pub reason: String,
}

/// The result of a verify run.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Images whose chunks were checked.
    pub images_checked: usize,
    /// Distinct chunks checked.
    pub chunks_checked: usize,
    /// Plaintext bytes checked.
    pub bytes_checked: u64,
    /// Damaged or missing chunks.
    pub damaged_chunks: Vec<DamagedChunk>,
    /// Every image (checked or not) that needs a damaged chunk or whose own files are
    /// damaged, with the reason.
    pub damaged_images: BTreeMap<String, String>,
}

/// Verifies `images` (all when empty), calling `progress(done, total)` as chunks finish.
pub fn verify(
    repo: &Repo,
    images: &[ImageEntry],
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<VerifyReport> {
    let (all, _) = repo.images()?;
    // Every index is read once: the targets' give the chunks to check, all of them name
    // the images a damaged chunk hurts.
    let indexes: Vec<(&ImageEntry, Result<FixedIndex>)> =
        all.iter().map(|e| (e, repo.read_index(e))).collect();
    let is_target = |e: &ImageEntry| {
        images.is_empty() || images.iter().any(|t| t.manifest.image == e.manifest.image)
    };
    let mut report = VerifyReport::default();
    let mut needed: BTreeMap<Digest, u64> = BTreeMap::new();
    for (image, index) in indexes.iter().filter(|(e, _)| is_target(e)) {
        report.images_checked += 1;
        match index {
            Ok(index) => {
                for d in index.digests.iter().filter(|d| !d.is_zero()) {
                    needed.insert(*d, index.chunk_size);
                }
            }
            Err(e) => {
                report
                    .damaged_images
                    .insert(image.manifest.image.clone(), e.to_string());
            }
        }
        if let Err(e) = repo.read_kept(image) {
            report
                .damaged_images
                .entry(image.manifest.image.clone())
                .or_insert(e.to_string());
        }
    }
    report.chunks_checked = needed.len();
    let total = needed.len() as u64;
    let done = std::sync::atomic::AtomicU64::new(0);
    let results: Vec<(Digest, Result<u64>)> = needed
        .par_iter()
        .map(|(d, max)| {
            let r = repo.get_chunk(d, *max).map(|p| p.len() as u64);
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress(n, total);
            (*d, r)
        })
        .collect();
    let mut bad: BTreeSet<Digest> = BTreeSet::new();
    for (d, r) in results {
        match r {
            Ok(n) => report.bytes_checked += n,
            Err(e) => {
                let reason = e.to_string();
                repo.quarantine_chunk(&d)?;
                bad.insert(d);
                report
                    .damaged_chunks
                    .push(DamagedChunk { digest: d, reason });
            }
        }
    }
    if !bad.is_empty() {
        for (image, index) in &indexes {
            if let Ok(index) = index {
                let n = index.digests.iter().filter(|d| bad.contains(d)).count();
                if n > 0 {
                    report
                        .damaged_images
                        .entry(image.manifest.image.clone())
                        .or_insert(format!("needs {n} damaged chunk(s)"));
                }
            }
        }
    }
    Ok(report)
}
