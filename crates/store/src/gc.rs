//! `gc`: delete chunks no image references, and the leftovers of interrupted backups.
//! It runs under the exclusive repository lock, so no backup can be linking to an
//! unreferenced chunk meanwhile (the exact form of PBS's cutoff rule, `docs/formats.md`
//! §5.6). If any image's index cannot be read, nothing is deleted.

use crate::chunk::Digest;
use crate::repo::Repo;
use diskray_core::{Error, Result};
use std::collections::HashSet;

/// What gc did (`gc --json` prints it).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GcReport {
    /// Images whose indexes were walked.
    pub images: usize,
    /// Chunk files kept.
    pub chunks_kept: u64,
    /// Bytes of chunk files kept.
    pub bytes_kept: u64,
    /// Chunk files deleted.
    pub chunks_removed: u64,
    /// Bytes freed by deleted chunks.
    pub bytes_removed: u64,
    /// Damaged chunks set aside by verify (`.bad`), left in place for inspection.
    pub bad_chunks: u64,
    /// Temporary files and unfinished images of interrupted backups removed.
    pub leftovers_removed: u64,
}

/// Runs gc. The caller holds the exclusive lock.
pub fn gc(repo: &Repo) -> Result<GcReport> {
    let (images, warnings) = repo.images()?;
    if let Some(w) = warnings.first() {
        return Err(Error::refused(
            repo.root(),
            format!("an image could not be read, so gc deletes nothing: {w}"),
        ));
    }
    let mut report = GcReport {
        images: images.len(),
        ..Default::default()
    };
    let mut live: HashSet<Digest> = HashSet::new();
    for image in &images {
        let index = repo.read_index(image).map_err(|e| {
            Error::refused(
                repo.root(),
                format!("gc deletes nothing while an index is unreadable: {e}"),
            )
        })?;
        live.extend(index.needed());
    }
    let backend = repo.backend();
    for object in backend.list("chunks/")? {
        let name = object.key.rsplit('/').next().unwrap_or_default();
        if name.ends_with(".bad") {
            report.bad_chunks += 1;
            continue;
        }
        match Digest::from_hex(name) {
            Some(d) if live.contains(&d) || !backend.gc_may_delete(object.modified) => {
                report.chunks_kept += 1;
                report.bytes_kept += object.size;
            }
            Some(_) => {
                backend.delete(&object.key)?;
                report.chunks_removed += 1;
                report.bytes_removed += object.size;
            }
            None => {}
        }
    }
    report.leftovers_removed = backend.remove_leftovers()?;
    Ok(report)
}

/// For people: one line of what was kept, removed and set aside.
impl std::fmt::Display for GcReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let size = diskray_core::human::size;
        writeln!(
            f,
            "{} images; kept {} chunks ({}); removed {} chunks ({}) and {} leftovers of interrupted backups; {} damaged chunks set aside",
            self.images,
            self.chunks_kept,
            size(self.bytes_kept),
            self.chunks_removed,
            size(self.bytes_removed),
            self.leftovers_removed,
            self.bad_chunks
        )
    }
}
