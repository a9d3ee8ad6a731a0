//! Encryption at rest: the master key, sealed objects and keyed chunk names
//! (`docs/repository.md`, "Encryption").
//!
//! An encrypted repository has one random [`MasterKey`]: a 256-bit AEAD key that seals
//! every object (chunk files, indexes, kept ranges, manifests) and a separate 256-bit MAC
//! key that names chunks (HMAC-SHA-256 of the plaintext) and authenticates the config.
//! The master key is stored only wrapped, in key objects (`keys/<id>`, [`keyfile`]), each
//! under a key derived from one password with Argon2id.
//!
//! ## The AEAD: AES-256-GCM under a key per object
//!
//! Many backup processes, on many hosts, seal objects with the same key at once, with no
//! counter they could share: nonces must be random. AES-256-GCM's own nonce is 96 bits,
//! and random 96-bit nonces reach a 2⁻³² chance of a repeat after 2³² objects (4 PiB of
//! 1 MiB chunks, within reach of a long-lived shared repository); a repeat reveals the
//! authentication key. So each object gets a random 192-bit nonce, and its AES-256-GCM key
//! and 96-bit GCM nonce are derived from it by keyed BLAKE3 (a PRF) under a key derived
//! from the master AEAD key: every object is sealed under its own key, which is used once,
//! and 192-bit random nonces never repeat in practice (2⁹⁶ objects before a 2⁻³² chance).
//! This is the construction of XAES-256-GCM and of libsodium's XChaCha20 (a longer nonce
//! hashed into a subkey), with BLAKE3 as the hash.
//!
//! AES-256-GCM comes from `ring` (BoringSSL's assembly, VAES and carry-less multiply where
//! the CPU has them), not from RustCrypto: here it seals 8.4 GB/s on one core, where
//! RustCrypto's `aes-gcm` seals 1.4 GB/s and `chacha20poly1305` 1.6 GB/s, and the AEAD was
//! the largest part of what encryption cost a full backup (`docs/benchmarks.md`). `ring`
//! is already in the build (rustls). Repositories made before it ([`AEAD_NAME`],
//! XChaCha20-Poly1305 from RustCrypto, the same 192-bit random nonces) open and are
//! written as before; key objects are still wrapped with XChaCha20-Poly1305.
//!
//! Sealed object layout, the same for both AEADs (the config says which):
//!
//! | offset | size | field |
//! |--:|--:|---|
//! | 0 | 8 | magic `DRSEAL01` (also the associated data) |
//! | 8 | 24 | random nonce |
//! | 32 | n | ciphertext of the n-byte object |
//! | 32 + n | 16 | GCM or Poly1305 tag |

pub mod keyfile;
mod objects;
pub mod unlock;

pub use unlock::{Credential, KdfChoice, Password, Unlock};

use crate::chunk::Digest;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use ring::aead::{Aad, LessSafeKey, UnboundKey, AES_256_GCM};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

/// Magic at the start of every sealed object.
pub const SEAL_MAGIC: [u8; 8] = *b"DRSEAL01";
/// Length of a sealed object's random nonce (XChaCha20-Poly1305's, and the input of an
/// AES-256-GCM object's key derivation).
pub const NONCE_LEN: usize = 24;
/// Tag length of Poly1305 and of GCM.
pub const TAG_LEN: usize = 16;
/// Bytes a sealed object has beyond its plaintext: magic, nonce, tag.
pub const SEAL_OVERHEAD: usize = SEAL_MAGIC.len() + NONCE_LEN + TAG_LEN;
/// Length of each half of the master key.
pub const KEY_LEN: usize = 32;
/// XChaCha20-Poly1305's name in key objects, and in the config of encrypted repositories
/// made before [`AES_GCM_NAME`] (still read and written).
pub const AEAD_NAME: &str = "xchacha20poly1305";
/// The AEAD's name in the config of the encrypted repositories this build creates:
/// AES-256-GCM under a key and GCM nonce derived per object from its 192-bit random nonce
/// by keyed BLAKE3 (see the module's documentation).
pub const AES_GCM_NAME: &str = "aes256gcm-blake3-subkeys";
/// BLAKE3's key-derivation context for the key that derives per-object AES-256-GCM keys
/// (never used for anything else).
const OBJECT_KEY_CONTEXT: &str = "diskray 2026-12-03 object keys";
/// Bytes derived per object for AES-256-GCM: a 32-byte key, then a 12-byte GCM nonce.
const OBJECT_KEY_AND_NONCE: usize = 32 + 12;
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

/// How an encrypted repository seals objects.
enum Cipher {
    /// XChaCha20-Poly1305 under the AEAD key, nonce as stored.
    XChaCha(Box<XChaCha20Poly1305>),
    /// AES-256-GCM under a key and GCM nonce derived from the stored nonce by keyed
    /// BLAKE3 under this key (itself derived from the AEAD key).
    Aes256GcmSubkeys(Zeroizing<[u8; 32]>),
}

impl Cipher {
    /// The AES-256-GCM key and GCM nonce of the object whose stored nonce is `nonce`.
    fn object_key(root: &[u8; 32], nonce: &[u8]) -> (LessSafeKey, ring::aead::Nonce) {
        let mut okm = Zeroizing::new([0u8; OBJECT_KEY_AND_NONCE]);
        blake3::Hasher::new_keyed(root)
            .update(nonce)
            .finalize_xof()
            .fill(&mut okm[..]);
        let key = UnboundKey::new(&AES_256_GCM, &okm[..32]).expect("AES-256 takes 32-byte keys");
        let mut n = [0u8; 12];
        n.copy_from_slice(&okm[32..]);
        (
            LessSafeKey::new(key),
            ring::aead::Nonce::assume_unique_for_key(n),
        )
    }

    /// Encrypts `body` in place under `nonce`; the tag. `None` if `body` is longer than
    /// the AEAD can seal.
    fn seal(&self, nonce: &[u8; NONCE_LEN], body: &mut [u8]) -> Option<[u8; TAG_LEN]> {
        let mut out = [0u8; TAG_LEN];
        match self {
            Cipher::XChaCha(c) => {
                let tag = c
                    .encrypt_in_place_detached(XNonce::from_slice(nonce), &SEAL_MAGIC, body)
                    .ok()?;
                out.copy_from_slice(&tag);
            }
            Cipher::Aes256GcmSubkeys(root) => {
                let (key, n) = Cipher::object_key(root, nonce);
                let tag = key
                    .seal_in_place_separate_tag(n, Aad::from(SEAL_MAGIC), body)
                    .ok()?;
                out.copy_from_slice(tag.as_ref());
            }
        }
        Some(out)
    }

    /// Decrypts `body_and_tag` (ciphertext, then the tag) in place under `nonce`; true
    /// when the tag verifies, and then the ciphertext's bytes are the plaintext.
    fn open(&self, nonce: &[u8], body_and_tag: &mut [u8]) -> bool {
        let tag_at = body_and_tag.len() - TAG_LEN;
        match self {
            Cipher::XChaCha(c) => {
                let (body, tag) = body_and_tag.split_at_mut(tag_at);
                c.decrypt_in_place_detached(
                    XNonce::from_slice(nonce),
                    &SEAL_MAGIC,
                    body,
                    Tag::from_slice(tag),
                )
                .is_ok()
            }
            Cipher::Aes256GcmSubkeys(root) => {
                let (key, n) = Cipher::object_key(root, nonce);
                key.open_in_place(n, Aad::from(SEAL_MAGIC), body_and_tag)
                    .is_ok()
            }
        }
    }
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
    cipher: Cipher,
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
    /// Chunks are named by [`DIGEST_NAME`] until [`Keys::naming`] says otherwise, and
    /// objects sealed with [`AEAD_NAME`] until [`Keys::sealing`] says otherwise.
    pub fn new(master: MasterKey, key_id: &str) -> Keys {
        let cipher = Cipher::XChaCha(Box::new(XChaCha20Poly1305::new((&*master.aead).into())));
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

    /// Seals objects with the AEAD the config names ([`AEAD_NAME`] or [`AES_GCM_NAME`]);
    /// `None` for another.
    pub fn sealing(mut self, aead: &str) -> Option<Keys> {
        self.cipher = match aead {
            AEAD_NAME => Cipher::XChaCha(Box::new(XChaCha20Poly1305::new(
                (&*self.master.aead).into(),
            ))),
            AES_GCM_NAME => Cipher::Aes256GcmSubkeys(Zeroizing::new(blake3::derive_key(
                OBJECT_KEY_CONTEXT,
                &self.master.aead[..],
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
                "object too long for the repository's AEAD",
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
        let tag = self.cipher.seal(&nonce, body).ok_or_else(too_long)?;
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
        if !self.cipher.open(nonce, rest) {
            return Err(SealError::Auth);
        }
        let start = SEAL_MAGIC.len() + NONCE_LEN;
        Ok(start..start + rest.len() - TAG_LEN)
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
        let mut plain = rest.to_vec();
        if !self.cipher.open(nonce, &mut plain) {
            plain.zeroize();
            return Err(SealError::Auth);
        }
        plain.truncate(plain.len() - TAG_LEN);
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
            .sealing(AES_GCM_NAME)
            .unwrap()
    }

    /// Both AEADs: the one new repositories use, and XChaCha20-Poly1305 of older ones.
    #[test]
    fn seal_opens_and_every_bit_flip_is_refused() {
        for aead in [AES_GCM_NAME, AEAD_NAME] {
            let k = Keys::new(MasterKey::random().unwrap(), "k")
                .sealing(aead)
                .unwrap();
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
                assert!(k.open(&bad).is_err(), "{aead} bit {bit}");
                assert!(k.open_in_place(&mut bad).is_err(), "{aead} bit {bit}");
            }
            for len in 0..SEAL_OVERHEAD {
                assert!(k.open(&sealed[..len]).is_err());
            }
            assert_eq!(k.open(&sealed[..sealed.len() - 1]), Err(SealError::Auth));
            // Another key refuses it; two seals of one plaintext differ (random nonces).
            assert_eq!(keys().open(&sealed), Err(SealError::Auth));
            assert_ne!(k.seal(&plain).unwrap(), sealed);
            // An empty object seals and opens.
            assert_eq!(k.open(&k.seal(b"").unwrap()).unwrap(), b"");
        }
        // The other AEAD under the same master key refuses it.
        let master = MasterKey::random().unwrap();
        let gcm = Keys::new(master.clone(), "k")
            .sealing(AES_GCM_NAME)
            .unwrap();
        let chacha = Keys::new(master, "k").sealing(AEAD_NAME).unwrap();
        assert_eq!(chacha.open(&gcm.seal(b"x").unwrap()), Err(SealError::Auth));
        assert_eq!(gcm.open(&chacha.seal(b"x").unwrap()), Err(SealError::Auth));
        assert!(gcm.sealing("aes128gcm").is_none());
    }

    /// What `ring` seals is AES-256-GCM as RustCrypto's independent `aes-gcm` computes it,
    /// under the key and nonce the documented derivation gives: keyed BLAKE3 of the stored
    /// nonce under `derive_key(OBJECT_KEY_CONTEXT, AEAD key)`, 32 bytes of key then 12 of
    /// GCM nonce, the magic as associated data.
    #[test]
    fn aes_gcm_objects_are_aes_256_gcm_under_the_documented_per_object_key() {
        use aes_gcm::aead::{Aead, KeyInit as _, Payload};
        let master = MasterKey::random().unwrap();
        let aead_key = master.to_bytes()[..KEY_LEN].to_vec();
        let k = Keys::new(master, "k").sealing(AES_GCM_NAME).unwrap();
        let plain: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let sealed = k.seal(&plain).unwrap();
        let nonce = &sealed[8..8 + NONCE_LEN];
        let root = blake3::derive_key("diskray 2026-12-03 object keys", &aead_key);
        let mut okm = [0u8; 44];
        blake3::Hasher::new_keyed(&root)
            .update(nonce)
            .finalize_xof()
            .fill(&mut okm);
        let gcm = aes_gcm::Aes256Gcm::new_from_slice(&okm[..32]).unwrap();
        let expected = gcm
            .encrypt(
                aes_gcm::Nonce::from_slice(&okm[32..]),
                Payload {
                    msg: &plain,
                    aad: b"DRSEAL01",
                },
            )
            .unwrap();
        assert_eq!(&sealed[..8], b"DRSEAL01");
        assert_eq!(&sealed[8 + NONCE_LEN..], &expected[..]);
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
