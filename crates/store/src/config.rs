//! The repository's `config` file: a format name and version. Readers refuse versions
//! they do not know (`docs/design.md` §4, "Repository format").

use serde::{Deserialize, Serialize};

/// The format name written in every repository's config.
pub const FORMAT_NAME: &str = "diskray-repository";
/// The first format version: a clear repository whose chunks are named by SHA-256. This
/// build reads and writes such repositories but no longer creates them.
pub const FORMAT_VERSION: u32 = 1;
/// The format version of the clear repositories this build creates: chunks named by
/// BLAKE3 (`docs/repository.md`, "Chunks": 2.7 times SHA-256's speed on the test machine,
/// where hashing was a fifth of a full backup's CPU time). A reader of version 1 refuses
/// it by its number rather than misnaming every chunk.
pub const BLAKE3_FORMAT_VERSION: u32 = 3;
/// The chunk digest of a version 1 repository.
pub const SHA256_DIGEST: &str = "sha256";
/// The chunk digest of a version 3 repository.
pub const BLAKE3_DIGEST: &str = "blake3";
/// The format version of an encrypted repository (`docs/repository.md`, "Encryption"):
/// a reader of version 1 refuses it by its number rather than misreading sealed objects.
pub const ENCRYPTED_FORMAT_VERSION: u32 = 2;
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
    /// How the repository is encrypted; absent in a clear repository (whose config stays
    /// byte for byte what versions 1 and 3 write).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
    /// HMAC-SHA-256 (hex, under the master MAC key) of the config with this field absent;
    /// present exactly when `encryption` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

/// The `encryption` object of an encrypted repository's config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Encryption {
    /// The AEAD that seals objects, `aes256gcm-blake3-subkeys` (`xchacha20poly1305` in
    /// repositories made before it).
    pub aead: String,
    /// The KDF of the key objects, `argon2id`.
    pub kdf: String,
    /// The chunk digest, `blake3-keyed` (`hmac-sha256` in repositories made before it).
    pub digest: String,
    /// A random id; key objects name it, so a key of another repository is not tried.
    pub repository: String,
}

impl Config {
    /// The config of a new repository.
    pub fn new(chunk_size: u64) -> Config {
        Config {
            format: FORMAT_NAME.into(),
            version: BLAKE3_FORMAT_VERSION,
            digest: BLAKE3_DIGEST.into(),
            chunk_size,
            encryption: None,
            mac: None,
        }
    }
}
