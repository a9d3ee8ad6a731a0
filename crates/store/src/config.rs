//! The repository's `config` file: a format name and version. Readers refuse versions
//! they do not know (`docs/design.md` §4, "Repository format").

use serde::{Deserialize, Serialize};

/// The format name written in every repository's config.
pub const FORMAT_NAME: &str = "diskray-repository";
/// The repository format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Largest config file read: it is a few dozen bytes of JSON.
pub const MAX_CONFIG_LEN: u64 = 64 << 10;

/// The content of `REPO/config`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Config {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// The format version.
    pub version: u32,
    /// The digest of chunk names.
    pub digest: String,
    /// The chunk size new images use unless told otherwise.
    pub chunk_size: u64,
}

impl Config {
    /// The config of a new repository.
    pub fn new(chunk_size: u64) -> Config {
        Config {
            format: FORMAT_NAME.into(),
            version: FORMAT_VERSION,
            digest: "sha256".into(),
            chunk_size,
        }
    }
}
