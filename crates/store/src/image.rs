//! Writing an image: its index, kept ranges and manifest are published together, after
//! its chunks, by the backend (`Backend::publish_image`), so that an image appears only
//! complete and flushed (invariant 3).

use crate::index::FixedIndex;
use crate::kept;
use crate::manifest::{ImageDescription, Manifest};
use crate::repo::Repo;
use diskray_core::{Error, RangeSet, Result};

/// Longest backup name accepted.
pub const MAX_NAME_LEN: usize = 128;

/// An image being written.
#[derive(Debug)]
pub struct ImageWriter {
    id: String,
}

/// Checks a backup name: letters, digits, `.`, `_`, `-`; not starting with `.`.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "backup name",
            format!("{name:?}"),
            format!(
                "must be 1-{MAX_NAME_LEN} letters, digits, '.', '_' or '-', not starting with '.'"
            ),
        ))
    }
}

impl ImageWriter {
    /// Starts an image; its id is the start time in microseconds (ids sort by time) and
    /// random bits (two backups started at once differ).
    pub fn create(_repo: &Repo, unix_micros: u64) -> Result<ImageWriter> {
        let secs = (unix_micros / 1_000_000) as i64;
        let stamp: String = diskray_core::time::iso8601(secs)
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() && *c != 'Z')
            .collect();
        let mut random = [0u8; 4];
        crate::host::random_bytes(&mut random)?;
        let id = format!(
            "{stamp}.{:06}Z-{:08x}",
            unix_micros % 1_000_000,
            u32::from_le_bytes(random)
        );
        Ok(ImageWriter { id })
    }

    /// The image id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Publishes the image: its index, kept ranges and manifest, once every chunk the index
    /// names is durable; returns its manifest.
    pub fn commit(
        self,
        repo: &Repo,
        index: &FixedIndex,
        kept_set: &RangeSet,
        description: ImageDescription,
    ) -> Result<Manifest> {
        let index_bytes = index.to_bytes();
        let kept_bytes = kept::to_bytes(kept_set);
        let unix_time = (description.unix_micros / 1_000_000) as i64;
        let manifest = Manifest {
            format_version: repo.config().version,
            image: self.id.clone(),
            time: diskray_core::time::iso8601(unix_time),
            unix_time,
            description,
            index_sha256: FixedIndex::checksum_hex(&index_bytes),
            kept_sha256: FixedIndex::checksum_hex(&kept_bytes),
        };
        let manifest_bytes = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
        let (index_stored, kept_stored, manifest_stored) = (
            repo.seal_object(&index_bytes)?,
            repo.seal_object(&kept_bytes)?,
            repo.seal_object(&manifest_bytes)?,
        );
        repo.backend().publish_image(
            &self.id,
            &[
                ("index", &index_stored),
                ("kept", &kept_stored),
                ("manifest.json", &manifest_stored),
            ],
        )?;
        Ok(manifest)
    }

    /// Drops an unfinished image (nothing of it is visible before [`ImageWriter::commit`]).
    pub fn abandon(self) {}
}
