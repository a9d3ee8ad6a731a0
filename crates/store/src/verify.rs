//! `verify`: recompute every chunk an image needs (CRC, decode, digest against its name,
//! length), after PBS verify (`docs/formats.md` §5.7). Each chunk is checked once per
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
    /// Other damaged objects (a manifest that does not read, a key object), by path
    /// within the repository, with the reason.
    pub damaged_objects: BTreeMap<String, String>,
}

/// `verify --json`: the report with digests as hex.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifyDocument<'a> {
    /// Images whose chunks were checked.
    pub images_checked: usize,
    /// Distinct chunks checked.
    pub chunks_checked: usize,
    /// Plaintext bytes checked.
    pub bytes_checked: u64,
    /// The damaged chunks' digests.
    pub damaged_chunks: Vec<String>,
    /// Each damaged chunk with what is wrong.
    pub damage: Vec<ChunkDamage<'a>>,
    /// The damaged images' ids.
    pub damaged_images: Vec<&'a str>,
    /// Each damaged image with the reason.
    pub damaged_image_reasons: &'a BTreeMap<String, String>,
    /// Other damaged objects (unreadable manifests, key objects) with the reason.
    pub damaged_objects: &'a BTreeMap<String, String>,
}

/// One damaged chunk in [`VerifyDocument`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChunkDamage<'a> {
    /// Its digest, hex.
    pub chunk: String,
    /// What is wrong.
    pub reason: &'a str,
}

impl VerifyReport {
    /// The JSON document of this report.
    pub fn document(&self) -> VerifyDocument<'_> {
        VerifyDocument {
            images_checked: self.images_checked,
            chunks_checked: self.chunks_checked,
            bytes_checked: self.bytes_checked,
            damaged_chunks: self.damaged_chunks.iter().map(|c| c.digest.hex()).collect(),
            damage: self
                .damaged_chunks
                .iter()
                .map(|c| ChunkDamage {
                    chunk: c.digest.hex(),
                    reason: &c.reason,
                })
                .collect(),
            damaged_images: self.damaged_images.keys().map(String::as_str).collect(),
            damaged_image_reasons: &self.damaged_images,
            damaged_objects: &self.damaged_objects,
        }
    }
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
    let mut report = VerifyReport {
        damaged_objects: damaged_objects(repo, &all)?,
        ..Default::default()
    };
    // Each needed chunk, with the largest plaintext it may have and, for a patch, the
    // base its index records (its length is then the length of the chunk it makes).
    let mut needed: BTreeMap<Digest, (u64, Option<Digest>)> = BTreeMap::new();
    for (image, index) in indexes.iter().filter(|(e, _)| is_target(e)) {
        report.images_checked += 1;
        match index {
            Ok(index) => {
                for d in index.needed() {
                    needed.entry(d).or_insert((index.chunk_size, None));
                }
                for (i, base) in &index.patches {
                    let (_, len) = index.chunk_range(*i);
                    needed.insert(index.digests[*i], (len, Some(*base)));
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
        .map(|(d, (max, base))| {
            let r = match base {
                None => repo.get_chunk(d, *max).map(|p| p.len() as u64),
                Some(base) => repo
                    .read_patch_over(d, base, *max, true)
                    .map(|p| p.encoded_len() as u64),
            };
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
                let n = index.needed().filter(|d| bad.contains(d)).count();
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

/// Objects outside the images' indexes and chunks that are damaged: manifests that do not
/// read (so their image is not listed at all) and key objects.
fn damaged_objects(repo: &Repo, listed: &[ImageEntry]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let inside = |p: &std::path::Path| {
        p.strip_prefix(repo.root())
            .unwrap_or(p)
            .display()
            .to_string()
    };
    for object in repo.backend().list("images/")? {
        let Some((id, "manifest.json")) = object.key["images/".len()..].split_once('/') else {
            continue;
        };
        if id.starts_with('.') || listed.iter().any(|e| e.manifest.image == id) {
            continue;
        }
        let why = match repo.read_manifest(&object.key) {
            Err(e) => e.to_string(),
            Ok(m) => format!("names image {:?}, not its directory", m.image),
        };
        out.insert(object.key, why);
    }
    for (path, why) in repo.damaged_keys()? {
        out.insert(inside(&path), why);
    }
    Ok(out)
}

/// For people: what was checked, each damage, and what happens next.
impl std::fmt::Display for VerifyDocument<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.images_checked;
        let s = if n == 1 { "" } else { "s" };
        let bytes = diskray_core::human::size(self.bytes_checked);
        writeln!(
            f,
            "verified {n} image{s}: {} chunks, {bytes}",
            self.chunks_checked
        )?;
        for c in &self.damage {
            writeln!(f, "damaged chunk {}: {}", c.chunk, c.reason)?;
        }
        for (image, why) in self.damaged_image_reasons {
            writeln!(f, "damaged image {image}: {why}")?;
        }
        for (object, why) in self.damaged_objects {
            writeln!(f, "damaged object {object}: {why}")?;
        }
        if self.damage.is_empty()
            && self.damaged_images.is_empty()
            && self.damaged_objects.is_empty()
        {
            writeln!(f, "no damage found")
        } else {
            let next = "the next backup of each affected disk stores them again";
            writeln!(f, "damaged chunks were set aside (.bad); {next}")
        }
    }
}
