//! Key objects (`keys/<id>`): the master key wrapped under a key derived from one
//! password with Argon2id, after restic's key files (`docs/repository.md`, "Encryption").
//!
//! Every field is authenticated twice over: the wrapped master key is sealed with the
//! object's other fields as associated data (a changed salt, parameter, host or time fails
//! the tag), and a plain SHA-256 of the object tells a damaged object (the sum differs)
//! from a wrong password (the sum matches, the tag does not). Every number is checked
//! against a bound before anything is derived or allocated.

use super::{hex, unhex, MasterKey, AEAD_NAME, KEY_LEN, NONCE_LEN, TAG_LEN};
use crate::host::unix_now;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use diskray_core::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::path::Path;
use zeroize::Zeroizing;

/// The format name of a key object.
pub const KEY_FORMAT: &str = "diskray-key";
/// The key object version this build writes and reads.
pub const KEY_VERSION: u32 = 1;
/// The KDF's name.
pub const KDF_NAME: &str = "argon2id";
/// Argon2 version 1.3 (0x13), the only one RFC 9106 describes.
pub const ARGON2_VERSION: u32 = 0x13;
/// Largest key object read: a few hundred bytes of JSON.
pub const MAX_KEY_OBJECT_LEN: u64 = 64 << 10;
/// Salt length: 256 bits, more than RFC 9106's 128-bit recommendation.
pub const SALT_LEN: usize = 32;
/// Default Argon2 memory: 64 MiB (RFC 9106's second recommended option, and restic's).
pub const DEFAULT_KDF_MEMORY_MIB: u32 = 64;
/// Default Argon2 passes: 3 (RFC 9106's second recommended option).
pub const DEFAULT_KDF_ITERATIONS: u32 = 3;
/// Smallest Argon2 memory accepted (tests use it; a real key should keep the default).
pub const MIN_KDF_MEMORY_MIB: u32 = 1;
/// Largest Argon2 memory accepted, checked before anything is allocated: a key object
/// naming more (a hostile one may say 4 TiB) is refused. 1 GiB is 16× the default and
/// still fits the smallest machine that restores.
pub const MAX_KDF_MEMORY_MIB: u32 = 1024;
/// Largest number of Argon2 passes accepted: bounds the time a hostile key object costs.
pub const MAX_KDF_ITERATIONS: u32 = 64;
/// Largest Argon2 parallelism (lanes) accepted.
pub const MAX_KDF_PARALLELISM: u32 = 16;
/// Length of a key id: 8 random bytes in hex.
pub const KEY_ID_LEN: usize = 16;

/// The KDF and its parameters, stored in each key object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KdfParams {
    /// Always [`KDF_NAME`].
    pub name: String,
    /// Argon2 version, [`ARGON2_VERSION`].
    pub version: u32,
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
    /// Random salt, hex.
    pub salt: String,
}

impl KdfParams {
    /// New parameters with a random salt; `memory_mib` and `iterations` within bounds.
    pub fn new(memory_mib: u32, iterations: u32) -> Result<KdfParams> {
        let mut salt = [0u8; SALT_LEN];
        super::random_bytes(&mut salt)?;
        let p = KdfParams {
            name: KDF_NAME.into(),
            version: ARGON2_VERSION,
            memory_kib: memory_mib.saturating_mul(1024),
            iterations,
            parallelism: 1,
            salt: hex(&salt),
        };
        p.check()
            .map_err(|why| Error::invalid("KDF parameters", format!("{p:?}"), why))?;
        Ok(p)
    }

    /// Checks every parameter against its bound; the error says which and why.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.name != KDF_NAME || self.version != ARGON2_VERSION {
            return Err(format!(
                "KDF {:?} version {:#x} is not {KDF_NAME} version 0x13",
                self.name, self.version
            ));
        }
        let (lo, hi) = (MIN_KDF_MEMORY_MIB * 1024, MAX_KDF_MEMORY_MIB * 1024);
        if !(lo..=hi).contains(&self.memory_kib) {
            return Err(format!(
                "Argon2 memory {} KiB is outside {lo}..={hi} KiB",
                self.memory_kib
            ));
        }
        if !(1..=MAX_KDF_ITERATIONS).contains(&self.iterations) {
            return Err(format!(
                "Argon2 iterations {} outside 1..={MAX_KDF_ITERATIONS}",
                self.iterations
            ));
        }
        if !(1..=MAX_KDF_PARALLELISM).contains(&self.parallelism) {
            return Err(format!(
                "Argon2 parallelism {} outside 1..={MAX_KDF_PARALLELISM}",
                self.parallelism
            ));
        }
        if unhex::<SALT_LEN>(&self.salt).is_none() {
            return Err(format!("salt is not {} hex digits", 2 * SALT_LEN));
        }
        Ok(())
    }

    /// The key-encryption key `password` gives under these (checked) parameters.
    fn derive(&self, password: &[u8]) -> std::result::Result<Zeroizing<[u8; KEY_LEN]>, String> {
        self.check()?;
        let salt = unhex::<SALT_LEN>(&self.salt).ok_or("salt is not hex")?;
        let params = argon2::Params::new(
            self.memory_kib,
            self.iterations,
            self.parallelism,
            Some(KEY_LEN),
        )
        .map_err(|e| format!("Argon2 parameters refused: {e}"))?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        argon
            .hash_password_into(password, &salt, &mut out[..])
            .map_err(|e| format!("Argon2 failed: {e}"))?;
        Ok(out)
    }
}

/// One key object: the master key wrapped under a password.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KeyObject {
    /// Always [`KEY_FORMAT`].
    pub format: String,
    /// [`KEY_VERSION`].
    pub version: u32,
    /// The key id, also its object name (`keys/<id>`).
    pub id: String,
    /// The id of the repository it opens (its config's `encryption.repository`).
    pub repository: String,
    /// When it was made, `YYYY-MM-DDTHH:MM:SSZ`.
    pub created: String,
    /// The host it was made on.
    pub host: String,
    /// The user who made it.
    pub username: String,
    /// How the wrapping key is derived from the password.
    pub kdf: KdfParams,
    /// The AEAD that wraps, [`AEAD_NAME`].
    pub aead: String,
    /// The wrapping nonce, hex.
    pub nonce: String,
    /// The wrapped master key and tag, hex.
    pub wrapped: String,
    /// SHA-256 (hex) of the object with this field empty: tells damage from a wrong
    /// password.
    pub sha256: String,
}

/// Length of the wrapped master key with its tag.
const WRAPPED_LEN: usize = 2 * KEY_LEN + TAG_LEN;

impl KeyObject {
    /// Wraps `master` under `password` with `kdf` for repository `repository`.
    pub fn create(
        master: &MasterKey,
        password: &[u8],
        kdf: KdfParams,
        repository: &str,
    ) -> Result<KeyObject> {
        let mut id = [0u8; KEY_ID_LEN / 2];
        super::random_bytes(&mut id)?;
        let mut nonce = [0u8; NONCE_LEN];
        super::random_bytes(&mut nonce)?;
        let mut k = KeyObject {
            format: KEY_FORMAT.into(),
            version: KEY_VERSION,
            id: hex(&id),
            repository: repository.into(),
            created: diskray_core::time::iso8601(unix_now()),
            host: crate::host::hostname(),
            username: username(),
            kdf,
            aead: AEAD_NAME.into(),
            nonce: hex(&nonce),
            wrapped: String::new(),
            sha256: String::new(),
        };
        let kek = k
            .kdf
            .derive(password)
            .map_err(|why| Error::invalid("KDF parameters", format!("{:?}", k.kdf), why))?;
        let mut body = master.to_bytes();
        let tag = XChaCha20Poly1305::new((&*kek).into())
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), &k.associated(), &mut body[..])
            .map_err(|_| Error::refused(Path::new("keys"), "wrapping the master key failed"))?;
        let mut wrapped = body.to_vec();
        wrapped.extend_from_slice(&tag);
        k.wrapped = hex(&wrapped);
        k.sha256 = k.checksum();
        Ok(k)
    }

    /// The associated data of the wrapping: every field but the nonce, the wrapped key
    /// and the sum, as compact JSON.
    fn associated(&self) -> Vec<u8> {
        let mut k = self.clone();
        k.nonce.clear();
        k.wrapped.clear();
        k.sha256.clear();
        serde_json::to_vec(&k).unwrap_or_default()
    }

    /// SHA-256 (hex) of the compact JSON of the object with an empty `sha256`.
    fn checksum(&self) -> String {
        let mut k = self.clone();
        k.sha256.clear();
        hex(&Sha256::digest(serde_json::to_vec(&k).unwrap_or_default()))
    }

    /// The object's bytes as stored.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Parses and checks a key object read from `path` (at most [`MAX_KEY_OBJECT_LEN`]
    /// bytes, which the caller bounds): its format, sum, every bound. Any damage is a
    /// `Corrupt` error naming `path`.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<KeyObject> {
        if bytes.len() as u64 > MAX_KEY_OBJECT_LEN {
            return Err(Error::corrupt(
                path,
                0,
                format!(
                    "key object of {} bytes, more than {MAX_KEY_OBJECT_LEN}",
                    bytes.len()
                ),
            ));
        }
        let k: KeyObject = serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt(path, 0, format!("key object is not valid: {e}")))?;
        if k.format != KEY_FORMAT {
            return Err(Error::corrupt(
                path,
                0,
                format!("format {:?} is not {KEY_FORMAT:?}", k.format),
            ));
        }
        if k.version != KEY_VERSION {
            return Err(Error::refused(
                path,
                format!(
                    "key object version {} is not the version {KEY_VERSION} this diskray knows",
                    k.version
                ),
            ));
        }
        if k.checksum() != k.sha256 {
            return Err(Error::corrupt(
                path,
                0,
                "key object does not match its SHA-256: it is damaged",
            ));
        }
        let shape = if k.id.len() != KEY_ID_LEN || unhex::<{ KEY_ID_LEN / 2 }>(&k.id).is_none() {
            Err(format!("key id {:?} is not {KEY_ID_LEN} hex digits", k.id))
        } else if k.aead != AEAD_NAME {
            Err(format!("AEAD {:?} is not {AEAD_NAME}", k.aead))
        } else if unhex::<NONCE_LEN>(&k.nonce).is_none()
            || unhex::<WRAPPED_LEN>(&k.wrapped).is_none()
        {
            Err("nonce or wrapped key of the wrong length".to_string())
        } else {
            k.kdf.check()
        };
        shape.map_err(|why| Error::corrupt(path, 0, why))?;
        Ok(k)
    }

    /// Unwraps the master key with `password`: `None` when the password is not this key's.
    pub fn unwrap_with(&self, password: &[u8], path: &Path) -> Result<Option<MasterKey>> {
        let kek = self
            .kdf
            .derive(password)
            .map_err(|why| Error::corrupt(path, 0, why))?;
        let (Some(nonce), Some(wrapped)) = (
            unhex::<NONCE_LEN>(&self.nonce),
            unhex::<WRAPPED_LEN>(&self.wrapped),
        ) else {
            return Err(Error::corrupt(
                path,
                0,
                "nonce or wrapped key of the wrong length",
            ));
        };
        let mut body = Zeroizing::new([0u8; 2 * KEY_LEN]);
        body.copy_from_slice(&wrapped[..2 * KEY_LEN]);
        let opened = XChaCha20Poly1305::new((&*kek).into()).decrypt_in_place_detached(
            XNonce::from_slice(&nonce),
            &self.associated(),
            &mut body[..],
            Tag::from_slice(&wrapped[2 * KEY_LEN..]),
        );
        Ok(opened.ok().map(|()| MasterKey::from_bytes(&body)))
    }
}

/// Longest user name recorded.
const MAX_NAME_LEN: usize = 255;

fn username() -> String {
    let name = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| {
            // SAFETY: getuid has no preconditions.
            format!("uid {}", unsafe { libc::getuid() })
        });
    name.chars().take(MAX_NAME_LEN).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kdf() -> KdfParams {
        KdfParams::new(MIN_KDF_MEMORY_MIB, 1).unwrap()
    }

    #[test]
    fn wraps_and_unwraps_and_refuses_other_passwords() {
        let master = MasterKey::random().unwrap();
        let k = KeyObject::create(&master, b"secret", kdf(), "repo").unwrap();
        let p = Path::new("keys/x");
        let k = KeyObject::parse(&k.to_bytes(), p).unwrap();
        let got = k.unwrap_with(b"secret", p).unwrap().unwrap();
        assert_eq!(&got.to_bytes()[..], &master.to_bytes()[..]);
        assert!(k.unwrap_with(b"Secret", p).unwrap().is_none());
    }

    #[test]
    fn every_bit_flip_is_damage_or_a_refusal() {
        let master = MasterKey::random().unwrap();
        let bytes = KeyObject::create(&master, b"pw", kdf(), "repo")
            .unwrap()
            .to_bytes();
        let p = Path::new("keys/x");
        for bit in 0..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            if let Ok(k) = KeyObject::parse(&bad, p) {
                // Only a change JSON reads the same (an escape, say) may parse; it must
                // still unwrap the same key or none.
                if let Some(m) = k.unwrap_with(b"pw", p).unwrap() {
                    assert_eq!(&m.to_bytes()[..], &master.to_bytes()[..], "bit {bit}");
                }
            }
        }
    }

    #[test]
    fn hostile_parameters_are_refused_before_deriving() {
        let master = MasterKey::random().unwrap();
        let good = KeyObject::create(&master, b"pw", kdf(), "repo").unwrap();
        let p = Path::new("keys/x");
        for (field, value) in [
            ("memory_kib", u32::MAX), // 4 TiB
            ("memory_kib", 4),        // below Argon2's and our minimum
            ("iterations", 0),
            ("iterations", 1_000_000),
            ("parallelism", 0),
            ("parallelism", 1 << 20),
        ] {
            let mut k = good.clone();
            match field {
                "memory_kib" => k.kdf.memory_kib = value,
                "iterations" => k.kdf.iterations = value,
                _ => k.kdf.parallelism = value,
            }
            k.sha256 = k.checksum();
            let e = KeyObject::parse(&k.to_bytes(), p).unwrap_err().to_string();
            assert!(e.contains("outside"), "{field}={value}: {e}");
            // Even unparsed, deriving checks the bound first.
            assert!(k.unwrap_with(b"pw", p).is_err(), "{field}={value}");
        }
        let mut k = good.clone();
        k.kdf.salt = "00".into();
        k.sha256 = k.checksum();
        assert!(KeyObject::parse(&k.to_bytes(), p).is_err());
        for len in [0, 1, 10, good.to_bytes().len() - 1] {
            assert!(KeyObject::parse(&good.to_bytes()[..len], p).is_err());
        }
    }
}
