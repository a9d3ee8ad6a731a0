//! Encryption at rest: the master key, sealed objects and keyed chunk names
//! (`docs/repository.md`, "Encryption").
//!
//! An encrypted repository has one random [`MasterKey`]: a 256-bit AEAD key that seals
//! every object (chunk files, indexes, kept ranges, manifests) and a separate 256-bit MAC
//! key that names chunks (HMAC-SHA-256 of the plaintext) and authenticates the config.
//! The master key is stored only wrapped, in key objects (`keys/<id>`, [`keyfile`]), each
//! under a key derived from one password with Argon2id.
//!
//! ## Why XChaCha20-Poly1305
//!
//! Many backup processes, on many hosts, seal objects with the same key at once, with no
//! counter they could share: nonces must be random. XChaCha20-Poly1305's nonce is 192 bits,
//! so random nonces never collide in practice (2⁹⁶ messages before a 2⁻³² chance), where
//! AES-256-GCM's 96-bit random nonce reaches that chance after 2³² objects (4 PiB of
//! 1 MiB chunks, within reach of a long-lived shared repository) and a collision there
//! reveals the authentication key. AES-256-GCM-SIV removes that risk but reads each
//! object twice. XChaCha20-Poly1305 is also constant-time without AES instructions and
//! runs at several GB/s with AVX2 (the RustCrypto `chacha20` and `poly1305` crates detect
//! it at run time). Sealed object layout:
//!
//! | offset | size | field |
//! |--:|--:|---|
//! | 0 | 8 | magic `DRSEAL01` (also the associated data) |
//! | 8 | 24 | random nonce |
//! | 32 | n | ciphertext of the n-byte object |
//! | 32 + n | 16 | Poly1305 tag |

pub mod keyfile;
mod objects;
pub mod unlock;

pub use unlock::{Credential, KdfChoice, Password, Unlock};

use crate::chunk::Digest;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

/// Magic at the start of every sealed object.
pub const SEAL_MAGIC: [u8; 8] = *b"DRSEAL01";
/// Nonce length of XChaCha20-Poly1305.
pub const NONCE_LEN: usize = 24;
/// Tag length of Poly1305.
pub const TAG_LEN: usize = 16;
/// Bytes a sealed object has beyond its plaintext: magic, nonce, tag.
pub const SEAL_OVERHEAD: usize = SEAL_MAGIC.len() + NONCE_LEN + TAG_LEN;
/// Length of each half of the master key.
pub const KEY_LEN: usize = 32;
/// The AEAD's name in the config and key objects.
pub const AEAD_NAME: &str = "xchacha20poly1305";
/// The chunk digest's name in the config of an encrypted repository made before keyed
/// BLAKE3 names (still read and written).
pub const DIGEST_NAME: &str = "hmac-sha256";
/// The chunk digest's name in the config of the encrypted repositories this build
/// creates: BLAKE3 in keyed mode under a key derived from the MAC key, 2.5 times as fast
/// as HMAC-SHA-256 here (`docs/repository.md`, "Encryption").
pub const KEYED_BLAKE3_NAME: &str = "blake3-keyed";
/// BLAKE3's key-derivation context for the chunk-name key (never used for anything else).
const CHUNK_NAME_CONTEXT: &str = "diskray 2026-12-03 chunk names";

/// How an encrypted repository names chunks.
enum ChunkNames {
    /// HMAC-SHA-256 under the MAC key.
    HmacSha256,
    /// Keyed BLAKE3 under this key, derived from the MAC key.
    KeyedBlake3(Zeroizing<[u8; 32]>),
}

/// Why a sealed object does not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Shorter than magic, nonce and tag.
    #[error(
        "{len} bytes, shorter than the {SEAL_OVERHEAD} bytes of a sealed object's header and tag"
    )]
    Truncated {
        /// Its length.
        len: usize,
    },
    /// Not the sealed object magic.
    #[error("not a sealed object (magic {0:02x?}, expected DRSEAL01)")]
    Magic([u8; 8]),
    /// The tag does not verify.
    #[error(
        "does not authenticate: the object is damaged, or was sealed by another repository's key"
    )]
    Auth,
}

pub use crate::host::random_bytes;

/// A repository's master key: one key seals, the other names and authenticates. Wiped
/// from memory when dropped.
#[derive(Clone)]
pub struct MasterKey {
    aead: Zeroizing<[u8; KEY_LEN]>,
    mac: Zeroizing<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// A new random master key.
    pub fn random() -> diskray_core::Result<MasterKey> {
        let mut both = Zeroizing::new([0u8; 2 * KEY_LEN]);
        random_bytes(&mut both[..])?;
        Ok(MasterKey::from_bytes(&both))
    }

    /// The key from its 64 stored bytes (AEAD key, then MAC key).
    pub fn from_bytes(both: &[u8; 2 * KEY_LEN]) -> MasterKey {
        let mut aead = Zeroizing::new([0u8; KEY_LEN]);
        let mut mac = Zeroizing::new([0u8; KEY_LEN]);
        aead.copy_from_slice(&both[..KEY_LEN]);
        mac.copy_from_slice(&both[KEY_LEN..]);
        MasterKey { aead, mac }
    }

    /// Its 64 bytes, for wrapping.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 2 * KEY_LEN]> {
        let mut both = Zeroizing::new([0u8; 2 * KEY_LEN]);
        both[..KEY_LEN].copy_from_slice(&self.aead[..]);
        both[KEY_LEN..].copy_from_slice(&self.mac[..]);
        both
    }
}

/// The unwrapped keys of an open encrypted repository.
pub struct Keys {
    master: MasterKey,
    cipher: XChaCha20Poly1305,
    /// The key object that unwrapped the master key.
    key_id: String,
    /// How chunks are named.
    names: ChunkNames,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keys {{ key_id: {:?}, .. }}", self.key_id)
    }
}

impl Keys {
    /// The keys of `master`, unwrapped by key object `key_id`.
    /// Chunks are named by [`DIGEST_NAME`] until [`Keys::naming`] says otherwise.
    pub fn new(master: MasterKey, key_id: &str) -> Keys {
        let cipher = XChaCha20Poly1305::new((&*master.aead).into());
        Keys {
            master,
            cipher,
            key_id: key_id.to_string(),
            names: ChunkNames::HmacSha256,
        }
    }

    /// Names chunks by the digest the config names ([`DIGEST_NAME`] or
    /// [`KEYED_BLAKE3_NAME`]); `None` for another.
    pub fn naming(mut self, digest: &str) -> Option<Keys> {
        self.names = match digest {
            DIGEST_NAME => ChunkNames::HmacSha256,
            KEYED_BLAKE3_NAME => ChunkNames::KeyedBlake3(Zeroizing::new(blake3::derive_key(
                CHUNK_NAME_CONTEXT,
                &self.master.mac[..],
            ))),
            _ => return None,
        };
        Some(self)
    }

    /// The master key.
    pub fn master(&self) -> &MasterKey {
        &self.master
    }

    /// The id of the key object this process unwrapped the master key with.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// HMAC-SHA-256 of `data` under the MAC key.
    pub fn mac(&self, data: &[u8]) -> [u8; 32] {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.master.mac[..])
            .expect("HMAC takes keys of any length");
        m.update(data);
        m.finalize().into_bytes().into()
    }

    /// A chunk's name: a keyed digest of its plaintext (keyed BLAKE3, or HMAC-SHA-256 in
    /// older repositories), so that names reveal nothing of the content to whoever holds
    /// the store, while equal chunks still share a name.
    pub fn chunk_digest(&self, plain: &[u8]) -> Digest {
        match &self.names {
            ChunkNames::HmacSha256 => Digest(self.mac(plain)),
            ChunkNames::KeyedBlake3(key) => Digest(*blake3::keyed_hash(key, plain).as_bytes()),
        }
    }

    /// Seals `plain` with a fresh random nonce.
    pub fn seal(&self, plain: &[u8]) -> diskray_core::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.seal_into(plain, &mut out)?;
        Ok(out)
    }

    /// Seals `plain` into `out` (replacing its content): a caller sealing many objects
    /// reuses one buffer instead of faulting in a fresh one per chunk.
    pub fn seal_into(&self, plain: &[u8], out: &mut Vec<u8>) -> diskray_core::Result<()> {
        out.resize(plain.len() + SEAL_OVERHEAD, 0);
        self.seal_to(plain, out)
    }

    /// Seals `plain` into `out`, which must be exactly `plain.len() + SEAL_OVERHEAD` bytes
    /// (an aligned area, so that a sealed chunk is written with `O_DIRECT` as it is).
    pub fn seal_to(&self, plain: &[u8], out: &mut [u8]) -> diskray_core::Result<()> {
        let too_long = || {
            diskray_core::Error::refused(
                std::path::Path::new("seal"),
                "object too long for XChaCha20-Poly1305",
            )
        };
        if out.len() != plain.len() + SEAL_OVERHEAD {
            return Err(too_long());
        }
        let mut nonce = [0u8; NONCE_LEN];
        random_bytes(&mut nonce)?;
        let (head, rest) = out.split_at_mut(SEAL_MAGIC.len() + NONCE_LEN);
        head[..SEAL_MAGIC.len()].copy_from_slice(&SEAL_MAGIC);
        head[SEAL_MAGIC.len()..].copy_from_slice(&nonce);
        let (body, tag_out) = rest.split_at_mut(plain.len());
        body.copy_from_slice(plain);
        let tag = self
            .cipher
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), &SEAL_MAGIC, body)
            .map_err(|_| too_long())?;
        tag_out.copy_from_slice(&tag);
        Ok(())
    }

    /// Opens a sealed object in place: on success `sealed[range]` is the plaintext. The
    /// tag is checked before the range is returned; on failure the buffer holds garbage.
    pub fn open_in_place(&self, sealed: &mut [u8]) -> Result<std::ops::Range<usize>, SealError> {
        if sealed.len() < SEAL_OVERHEAD {
            return Err(SealError::Truncated { len: sealed.len() });
        }
        let (magic, rest) = sealed.split_at_mut(SEAL_MAGIC.len());
        if magic != SEAL_MAGIC {
            let mut m = [0u8; 8];
            m.copy_from_slice(magic);
            return Err(SealError::Magic(m));
        }
        let (nonce, rest) = rest.split_at_mut(NONCE_LEN);
        let tag_at = rest.len() - TAG_LEN;
        let (body, tag) = rest.split_at_mut(tag_at);
        self.cipher
            .decrypt_in_place_detached(
                XNonce::from_slice(nonce),
                &SEAL_MAGIC,
                body,
                Tag::from_slice(tag),
            )
            .map_err(|_| SealError::Auth)?;
        let start = SEAL_MAGIC.len() + NONCE_LEN;
        Ok(start..start + body.len())
    }

    /// Opens a sealed object, checking its tag; the plaintext is never returned unless the
    /// whole object authenticates.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < SEAL_OVERHEAD {
            return Err(SealError::Truncated { len: sealed.len() });
        }
        let (magic, rest) = sealed.split_at(SEAL_MAGIC.len());
        if magic != SEAL_MAGIC {
            let mut m = [0u8; 8];
            m.copy_from_slice(magic);
            return Err(SealError::Magic(m));
        }
        let (nonce, rest) = rest.split_at(NONCE_LEN);
        let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
        let mut plain = body.to_vec();
        let opened = self.cipher.decrypt_in_place_detached(
            XNonce::from_slice(nonce),
            &SEAL_MAGIC,
            &mut plain,
            Tag::from_slice(tag),
        );
        if opened.is_err() {
            plain.zeroize();
            return Err(SealError::Auth);
        }
        Ok(plain)
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes of exactly `N` from `2N` hex digits.
pub(crate) fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::new(MasterKey::random().unwrap(), "k")
    }

    #[test]
    fn seal_opens_and_every_bit_flip_is_refused() {
        let k = keys();
        let plain = b"an index, a manifest, a chunk".repeat(3);
        let sealed = k.seal(&plain).unwrap();
        assert_eq!(sealed.len(), plain.len() + SEAL_OVERHEAD);
        assert_eq!(k.open(&sealed).unwrap(), plain);
        let mut in_place = sealed.clone();
        let r = k.open_in_place(&mut in_place).unwrap();
        assert_eq!(&in_place[r], &plain[..]);
        // The plaintext does not appear in the sealed bytes.
        assert!(!sealed.windows(8).any(|w| w == &plain[..8]));
        for bit in 0..sealed.len() * 8 {
            let mut bad = sealed.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(k.open(&bad).is_err(), "bit {bit}");
            assert!(k.open_in_place(&mut bad).is_err(), "bit {bit}");
        }
        for len in 0..SEAL_OVERHEAD {
            assert!(k.open(&sealed[..len]).is_err());
        }
        assert_eq!(k.open(&sealed[..sealed.len() - 1]), Err(SealError::Auth));
        // Another key refuses it; two seals of one plaintext differ (random nonces).
        assert_eq!(keys().open(&sealed), Err(SealError::Auth));
        assert_ne!(k.seal(&plain).unwrap(), sealed);
    }

    #[test]
    fn chunk_digest_is_keyed_hmac_sha256() {
        // RFC 4231 test case 2 checks the construction: key "Jefe".
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
        m.update(b"what do ya want for nothing?");
        assert_eq!(
            hex(&m.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let (a, b) = (keys(), keys());
        let data = vec![7u8; 4096];
        assert_eq!(a.chunk_digest(&data), a.chunk_digest(&data));
        assert_ne!(a.chunk_digest(&data), b.chunk_digest(&data));
        assert_ne!(a.chunk_digest(&data), Digest::of(&data));
    }

    #[test]
    fn keyed_blake3_names_are_keyed_and_differ_from_hmac_and_plain_blake3() {
        // The BLAKE3 reference test vector of keyed_hash for an empty input, key
        // "whats the Elvish word for friend".
        assert_eq!(
            blake3::keyed_hash(b"whats the Elvish word for friend", b"")
                .to_hex()
                .as_str(),
            "92b2b75604ed3c761f9d6f62392c8a9227ad0ea3f09573e783f1498a4ed60d26"
        );
        let master = MasterKey::random().unwrap();
        let both = master.to_bytes();
        let hmac = Keys::new(MasterKey::from_bytes(&both), "k");
        let b3 = Keys::new(master, "k").naming(KEYED_BLAKE3_NAME).unwrap();
        let data = vec![7u8; 4096];
        assert_eq!(b3.chunk_digest(&data), b3.chunk_digest(&data));
        assert_ne!(b3.chunk_digest(&data), hmac.chunk_digest(&data));
        assert_ne!(b3.chunk_digest(&data), Digest::blake3(&data));
        let other = keys().naming(KEYED_BLAKE3_NAME).unwrap();
        assert_ne!(b3.chunk_digest(&data), other.chunk_digest(&data));
        assert!(keys().naming("sha1").is_none());
    }
}
