//! An image's manifest (`images/<id>/manifest.json`): what the image is, where it came
//! from, and the checksums of its index and kept-ranges files. Field names after the PBS
//! manifest (`docs/formats.md` §5.1) and the backup statistics of `docs/design.md` §3.4.

pub use crate::stats::{BackupStats, ChangeSource};
use serde::{Deserialize, Serialize};

/// Largest manifest read: statistics and a volume summary fit in a few KiB.
pub const MAX_MANIFEST_LEN: u64 = 4 << 20;

/// The manifest of one image, as published: what its writer described, with the
/// bookkeeping the repository adds. Its description's fields read as the manifest's own
/// (`manifest.name`), in Rust through `Deref` and in the JSON file, where they stand
/// among the others.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// Repository format version it was written under.
    pub format_version: u32,
    /// The image id (also its directory name).
    pub image: String,
    /// When the backup started, `YYYY-MM-DDTHH:MM:SSZ`.
    pub time: String,
    /// Seconds since 1970 when the backup started.
    pub unix_time: i64,
    /// What the writer said about the image.
    #[serde(flatten)]
    pub description: ImageDescription,
    /// SHA-256 (hex) of the `index` file.
    pub index_sha256: String,
    /// SHA-256 (hex) of the `kept` file.
    pub kept_sha256: String,
}

impl std::ops::Deref for Manifest {
    type Target = ImageDescription;

    fn deref(&self) -> &ImageDescription {
        &self.description
    }
}

/// What the writer of an image says about it; [`crate::ImageWriter::commit`] adds the
/// image id, the format version, the time in the other forms and the checksums, and
/// returns the [`Manifest`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageDescription {
    /// The backup name (one disk's series of images).
    pub name: String,
    /// Microseconds since 1970 when the backup started (the image time): orders images of
    /// one second.
    pub unix_micros: u64,
    /// Image size in bytes.
    pub capacity: u64,
    /// Bytes per chunk.
    pub chunk_size: u64,
    /// The image whose index this one started from, if any.
    pub parent: Option<String>,
    /// The change id (CBT) the source had when the image was taken, if given.
    pub change_id: Option<String>,
    /// What was backed up.
    pub source: Source,
    /// The backup statistics.
    pub stats: BackupStats,
    /// A summary of the partitions and filesystems seen.
    pub volumes: Vec<VolumeSummary>,
}

/// The disk an image was taken from.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Source {
    /// Its path (canonical when it could be resolved).
    pub path: String,
    /// Its container format (`vmdk`, `raw`).
    pub format: String,
}

impl Source {
    /// The disk at `path` (made canonical when it can be), in container `format`.
    pub fn of(path: &std::path::Path, format: &str) -> Source {
        let canonical = std::fs::canonicalize(path).unwrap_or(path.to_path_buf());
        Source {
            path: canonical.to_string_lossy().into_owned(),
            format: format.to_string(),
        }
    }
}

/// One volume the backup saw, for listings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VolumeSummary {
    /// Partition index (0 for a whole-disk filesystem).
    pub index: u32,
    /// Disk offset in bytes.
    pub start: u64,
    /// Length in bytes.
    pub length: u64,
    /// What it holds (`ext4`, `ntfs`, `unknown`, …).
    pub content: String,
    /// The filesystem label, if any.
    pub label: Option<String>,
}

/// One image as `diskray images --json` lists it: the manifest less its bookkeeping
/// (format version, seconds, checksums).
#[derive(Debug, Clone, Serialize)]
pub struct ImageListing<'a> {
    /// The image id.
    pub image: &'a str,
    /// The backup name.
    pub name: &'a str,
    /// When the backup started.
    pub time: &'a str,
    /// Image size in bytes.
    pub capacity: u64,
    /// Bytes per chunk.
    pub chunk_size: u64,
    /// The image whose index this one started from.
    pub parent: Option<&'a str>,
    /// The change id the source had.
    pub change_id: Option<&'a str>,
    /// What was backed up.
    pub source: &'a Source,
    /// The partitions and filesystems seen.
    pub volumes: &'a [VolumeSummary],
    /// The backup statistics.
    pub stats: &'a BackupStats,
}

/// `diskray images`' record: the images of a repository, oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct ImageList<'a> {
    /// The images.
    pub images: Vec<ImageListing<'a>>,
    /// Manifests that could not be read.
    pub warnings: &'a [diskray_core::Warning],
}

impl<'a> ImageList<'a> {
    /// The images of `entries`: all of them, or those of backup name `name` (its series,
    /// and for a machine of several disks the series `NAME.diskI` of each disk).
    pub fn of(
        entries: &'a [crate::repo::ImageEntry],
        name: Option<&str>,
        warnings: &'a [diskray_core::Warning],
    ) -> Self {
        let chosen = |m: &Manifest| {
            name.is_none_or(|n| {
                let disk = m.name.strip_prefix(n).and_then(|r| r.strip_prefix(".disk"));
                m.name == n || disk.is_some_and(|i| i.parse::<u32>().is_ok())
            })
        };
        ImageList {
            images: entries
                .iter()
                .map(|e| &e.manifest)
                .filter(|m| chosen(m))
                .map(Manifest::listing)
                .collect(),
            warnings,
        }
    }
}

/// For people: a row per image, or `no images`.
impl std::fmt::Display for ImageList<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.images.is_empty() {
            return writeln!(f, "no images");
        }
        let row = |f: &mut std::fmt::Formatter<'_>, c: [&dyn std::fmt::Display; 7]| {
            let [image, name, time, size, read, source, parent] = c;
            writeln!(
                f,
                "{image:<34} {name:<16} {time:<20} {size:>10} {read:>10} {source:>8}  {parent}"
            )
        };
        row(
            f,
            [
                &"IMAGE", &"NAME", &"TIME", &"SIZE", &"READ", &"SOURCE", &"parent",
            ],
        )?;
        for m in &self.images {
            let size = diskray_core::human::size;
            let source = m.stats.change_source.map(ChangeSource::name).unwrap_or("-");
            let parent = m.parent.unwrap_or("-");
            let (cap, read) = (size(m.capacity), size(m.stats.read_from_source));
            row(
                f,
                [&m.image, &m.name, &m.time, &cap, &read, &source, &parent],
            )?;
        }
        Ok(())
    }
}

impl Manifest {
    /// The image as listings show it.
    pub fn listing(&self) -> ImageListing<'_> {
        ImageListing {
            image: &self.image,
            name: &self.name,
            time: &self.time,
            capacity: self.capacity,
            chunk_size: self.chunk_size,
            parent: self.parent.as_deref(),
            change_id: self.change_id.as_deref(),
            source: &self.source,
            volumes: &self.volumes,
            stats: &self.stats,
        }
    }
}
