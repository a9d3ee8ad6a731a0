//! One stored chunk: its digest and its encoding on disk.
//!
//! Encoding after the Proxmox Backup Server blob (`docs/formats.md` §5.3) with our own
//! magics and an explicit plaintext length, so that a chunk file alone tells whether it is
//! damaged:
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 8 | magic: `DRCHRAW1` (stored as is) or `DRCHZST1` (zstd frame) |
//! | 8 | 4 | CRC32 (IEEE, little-endian) of every byte after offset 12 |
//! | 12 | 4 | plaintext length, little-endian |
//! | 16 | … | payload |
//!
//! The digest names the plaintext: BLAKE3 of it in a repository of version 3, SHA-256 in
//! one of version 1, HMAC-SHA-256 in an encrypted one ([`crate::Repo::chunk_digest`]).
//! All-zero chunks are never stored: the index
//! holds [`ZERO_DIGEST`] (32 zero bytes, which no SHA-256 output is known to equal) for
//! them.

use crate::durable::{AlignedBuf, Filled};
use diskray_core::Fields;
use sha2::{Digest as _, Sha256};

/// Byte offset of the magic in a chunk file.
const MAGIC_AT: usize = 0;
/// Byte offset of the CRC32 field in a chunk file.
const CRC_AT: u64 = 8;
/// Byte offset of the plaintext length field.
const LEN_AT: u64 = 12;

/// A chunk file's header fields, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkHeader {
    /// [`MAGIC_RAW`] or [`MAGIC_ZSTD`] (not checked here).
    pub magic: [u8; 8],
    /// CRC32 of every byte after the CRC field.
    pub crc: u32,
    /// Plaintext length.
    pub plain_len: u32,
}

impl ChunkHeader {
    /// Reads the header of a chunk file's bytes.
    pub fn parse(file: &[u8]) -> Result<ChunkHeader, ChunkError> {
        let truncated = |_| ChunkError::Truncated { len: file.len() };
        // A chunk file is read whole from its own file; errors name it by ChunkError.
        let f = Fields::in_memory(file, "chunk header");
        f.need(HEADER_LEN).map_err(truncated)?;
        Ok(ChunkHeader {
            magic: f.array(MAGIC_AT).map_err(truncated)?,
            crc: f.le32(CRC_AT as usize).map_err(truncated)?,
            plain_len: f.le32(LEN_AT as usize).map_err(truncated)?,
        })
    }
}

/// What is wrong with a chunk file's bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// Shorter than the header.
    #[error("{len} bytes, shorter than the {HEADER_LEN}-byte chunk header")]
    Truncated {
        /// The file's length.
        len: usize,
    },
    /// The header's plaintext length exceeds what the caller allows.
    #[error("plaintext length {stated} exceeds the chunk size {max}")]
    TooLong {
        /// The header's length.
        stated: u64,
        /// The largest allowed.
        max: u64,
    },
    /// The CRC32 over the bytes after the CRC field does not match.
    #[error("CRC32 is {stored:#010x}, computed {computed:#010x}: the chunk file is damaged")]
    Crc {
        /// The header's CRC.
        stored: u32,
        /// The CRC of the bytes.
        computed: u32,
    },
    /// The header's plaintext length is not the length the index expects.
    #[error("holds {stated} bytes where {expected} are expected")]
    Length {
        /// The header's length.
        stated: u64,
        /// The length the caller expects.
        expected: u64,
    },
    /// Neither of the two magics.
    #[error("unknown chunk magic {0:02x?}")]
    Magic([u8; 8]),
    /// The zstd payload does not decode.
    #[error("zstd payload does not decode: {0}")]
    Zstd(String),
    /// The payload decodes to another length than the header states.
    #[error("payload gives {got} bytes, the header says {stated}")]
    Payload {
        /// Bytes the payload gave.
        got: u64,
        /// The header's length.
        stated: u64,
    },
    /// The plaintext does not hash to the chunk's name.
    #[error("content hashes to {got}, not to its name")]
    Digest {
        /// What it hashes to.
        got: Digest,
    },
}

impl ChunkError {
    /// Byte offset in the chunk file of the field or data the error is about.
    pub fn offset(&self) -> u64 {
        match self {
            ChunkError::Truncated { .. } | ChunkError::Magic(_) => 0,
            ChunkError::Crc { .. } => CRC_AT,
            ChunkError::TooLong { .. } | ChunkError::Length { .. } => LEN_AT,
            ChunkError::Zstd(_) | ChunkError::Payload { .. } | ChunkError::Digest { .. } => {
                HEADER_LEN as u64
            }
        }
    }
}

/// A chunk's name: a 32-byte digest of its plaintext ([`crate::Repo::chunk_digest`]).
/// The default is [`ZERO_DIGEST`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Digest(pub [u8; 32]);

/// The reserved digest of an all-zero chunk (of any length); never stored as a file.
pub const ZERO_DIGEST: Digest = Digest([0; 32]);

/// Magic of a chunk stored uncompressed.
pub const MAGIC_RAW: [u8; 8] = *b"DRCHRAW1";
/// Magic of a zstd-compressed chunk.
pub const MAGIC_ZSTD: [u8; 8] = *b"DRCHZST1";
/// Bytes before the payload.
pub const HEADER_LEN: usize = 16;
/// zstd level: level 1 is the fastest that still compresses binaries ~3× (docs/formats.md §8.1).
pub const ZSTD_LEVEL: i32 = 1;

impl Digest {
    /// SHA-256 of `data`.
    pub fn of(data: &[u8]) -> Digest {
        Digest(Sha256::digest(data).into())
    }

    /// BLAKE3 of `data` (the chunk names of a version 3 repository).
    pub fn blake3(data: &[u8]) -> Digest {
        Digest(*blake3::hash(data).as_bytes())
    }

    /// Lowercase hex.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Option<Digest> {
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut d = [0u8; 32];
        for (i, slot) in d.iter_mut().enumerate() {
            *slot = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Digest(d))
    }

    /// True for the reserved all-zero digest.
    pub fn is_zero(&self) -> bool {
        *self == ZERO_DIGEST
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.hex())
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.hex())
    }
}

thread_local! {
    /// Per-thread zstd contexts and output buffer: creating a context and faulting in a
    /// fresh megabyte for every chunk costs more than compressing it.
    static CODEC: std::cell::RefCell<Option<Codec>> = const { std::cell::RefCell::new(None) };
}

struct Codec {
    compressor: zstd::bulk::Compressor<'static>,
    decompressor: zstd::bulk::Decompressor<'static>,
    /// The encoded chunk, compressed in place after its header, in a buffer reused from
    /// chunk to chunk.
    out: AlignedBuf,
}

/// This thread's codec, made on first use; `None` only if zstd cannot make a context.
fn codec(slot: &mut Option<Codec>) -> Option<&mut Codec> {
    if slot.is_none() {
        *slot = Some(Codec {
            compressor: zstd::bulk::Compressor::new(ZSTD_LEVEL).ok()?,
            decompressor: zstd::bulk::Decompressor::new().ok()?,
            out: AlignedBuf::new(),
        });
    }
    slot.as_mut()
}

/// Fills in the header of `chunk`, whose payload follows it, CRC included.
fn frame(chunk: &mut [u8], magic: [u8; 8], plain_len: usize) {
    chunk[..8].copy_from_slice(&magic);
    chunk[LEN_AT as usize..HEADER_LEN].copy_from_slice(&(plain_len as u32).to_le_bytes());
    let crc = crc32fast::hash(&chunk[LEN_AT as usize..]);
    chunk[CRC_AT as usize..LEN_AT as usize].copy_from_slice(&crc.to_le_bytes());
}

/// Encodes a chunk (zstd when that is smaller, else raw; raw without trying when it looks
/// random, [`crate::entropy`]) and hands the encoded bytes to `f`, in a per-thread buffer
/// (which `f` may take, [`Filled::exchange`]).
pub fn with_encoded<R>(plain: &[u8], f: impl FnOnce(Filled<'_>) -> R) -> R {
    CODEC.with(|cell| {
        let mut slot = cell.borrow_mut();
        let raw = |out: &mut [u8]| {
            out[HEADER_LEN..].copy_from_slice(plain);
            frame(out, MAGIC_RAW, plain.len());
        };
        let Some(c) = codec(&mut slot) else {
            let mut out = AlignedBuf::new();
            raw(out.area(HEADER_LEN + plain.len()));
            return f(Filled::new(&mut out, HEADER_LEN + plain.len()));
        };
        let bound = zstd::zstd_safe::compress_bound(plain.len()).max(plain.len());
        let area = c.out.area(HEADER_LEN + bound);
        // Random-looking data is stored raw without asking zstd, which would store it raw.
        let compressed = if crate::entropy::looks_incompressible(plain) {
            Err(())
        } else {
            c.compressor
                .compress_to_buffer(plain, &mut area[HEADER_LEN..])
                .map_err(|_| ())
        };
        let len = match compressed {
            Ok(n) if n < plain.len() => {
                frame(&mut area[..HEADER_LEN + n], MAGIC_ZSTD, plain.len());
                HEADER_LEN + n
            }
            _ => {
                raw(&mut area[..HEADER_LEN + plain.len()]);
                HEADER_LEN + plain.len()
            }
        };
        f(Filled::new(&mut c.out, len))
    })
}

/// Encodes a chunk: zstd when that is smaller, else raw.
pub fn encode(plain: &[u8]) -> Vec<u8> {
    with_encoded(plain, |b| b.bytes().to_vec())
}

fn decompress_into(payload: &[u8], out: &mut [u8]) -> Result<usize, ChunkError> {
    CODEC
        .with(|cell| match codec(&mut cell.borrow_mut()) {
            Some(c) => c.decompressor.decompress_to_buffer(payload, &mut *out),
            None => zstd::bulk::decompress_to_buffer(payload, &mut *out),
        })
        .map_err(|e| ChunkError::Zstd(e.to_string()))
}

/// Decodes a chunk file's bytes, checking magic, CRC, length (≤ `max_len`) and, when
/// given, the digest. The error says what is wrong.
pub fn decode(file: &[u8], max_len: u64, expect: Option<&Digest>) -> Result<Vec<u8>, ChunkError> {
    let len = plain_len(file)?;
    if len > max_len {
        return Err(ChunkError::TooLong {
            stated: len,
            max: max_len,
        });
    }
    let mut plain = vec![0u8; len as usize];
    decode_into(file, &mut plain, expect)?;
    Ok(plain)
}

/// The plaintext length a chunk file's header states.
pub fn plain_len(file: &[u8]) -> Result<u64, ChunkError> {
    Ok(ChunkHeader::parse(file)?.plain_len as u64)
}

/// Decodes a chunk file's bytes into `out`, which must be exactly the plaintext length;
/// checks magic, CRC, length and, when given, the digest.
pub fn decode_into(file: &[u8], out: &mut [u8], expect: Option<&Digest>) -> Result<(), ChunkError> {
    let header = ChunkHeader::parse(file)?;
    let (len, magic, crc) = (header.plain_len as u64, header.magic, header.crc);
    let computed = crc32fast::hash(&file[LEN_AT as usize..]);
    if computed != crc {
        return Err(ChunkError::Crc {
            stored: crc,
            computed,
        });
    }
    if len != out.len() as u64 {
        return Err(ChunkError::Length {
            stated: len,
            expected: out.len() as u64,
        });
    }
    let payload = &file[HEADER_LEN..];
    let got = match magic {
        MAGIC_RAW => {
            if payload.len() == out.len() {
                out.copy_from_slice(payload);
            }
            payload.len()
        }
        MAGIC_ZSTD => decompress_into(payload, out)?,
        _ => return Err(ChunkError::Magic(magic)),
    };
    if got as u64 != len {
        return Err(ChunkError::Payload {
            got: got as u64,
            stated: len,
        });
    }
    if let Some(want) = expect {
        let got = Digest::of(out);
        if got != *want {
            return Err(ChunkError::Digest { got });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_raw_and_zstd() {
        let text = b"abcabcabc".repeat(1000);
        let mut random = vec![0u8; 4096];
        let mut x = 0x1234_5678u32;
        for b in &mut random {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        for plain in [&text[..], &random[..], &[][..]] {
            let enc = encode(plain);
            let d = Digest::of(plain);
            assert_eq!(decode(&enc, 1 << 20, Some(&d)).unwrap(), plain);
        }
        assert_eq!(&encode(&text)[..8], &MAGIC_ZSTD);
        assert_eq!(&encode(&random)[..8], &MAGIC_RAW);
    }

    #[test]
    fn every_single_byte_flip_is_caught() {
        let plain = b"hello chunk".repeat(50);
        let enc = encode(&plain);
        let d = Digest::of(&plain);
        for i in 0..enc.len() {
            let mut bad = enc.clone();
            bad[i] ^= 0x40;
            assert!(decode(&bad, 1 << 20, Some(&d)).is_err(), "flip at {i}");
        }
        assert!(decode(&enc[..10], 1 << 20, None).is_err());
        assert!(decode(&enc, 10, None).is_err());
    }

    #[test]
    fn hex_round_trip() {
        let d = Digest::of(b"x");
        assert_eq!(Digest::from_hex(&d.hex()), Some(d));
        assert_eq!(Digest::from_hex("zz"), None);
        assert!(ZERO_DIGEST.is_zero());
    }
}
