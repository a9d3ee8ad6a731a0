//! This machine's single-core limits for the work a backup and a restore do per chunk, with
//! the same libraries and settings diskray uses: SHA-256 (`sha2`) and BLAKE3 (`blake3`), zstd at the repository's
//! level (compress and decompress, reused contexts as in `chunk.rs`), CRC32 (`crc32fast`),
//! and the store's own `chunk::encode` / `chunk::decode` (zstd + CRC + framing, digest check).
//!
//!   cargo run --release -p diskray-store --example limits [-- MIB_PER_KIND]
//!
//! The data is the backup benchmark's kind (`bench/backup.sh`), in 1 MiB chunks: binaries
//! and libraries read from /usr/bin and /usr/lib, text from /usr/share/doc and
//! /usr/include, and incompressible bytes (a xorshift stream), MIB_PER_KIND MiB of each
//! (default 64), measured per kind and over the three interleaved ("mixed"). MB/s are
//! 10^6 bytes of plain data per second on one thread; see docs/benchmarks.md.

use std::fs;
use std::path::Path;
use std::time::Instant;

use diskray_store::chunk::{self, ZSTD_LEVEL};
use diskray_store::Digest;
use sha2::{Digest as _, Sha256};

/// The repository's default chunk size (docs/design.md): every measurement works on chunks
/// of this size, as backup and restore do.
const CHUNK: usize = 1 << 20;
/// Each measurement repeats until it has taken at least this long, so that short ones are
/// not timer noise.
const MIN_SECONDS: f64 = 1.0;
/// Files larger than this are skipped when gathering sample data (one file must not make a
/// kind).
const MAX_FILE: u64 = 64 << 20;

/// Fills `want` bytes from the regular files under `roots` whose names pass `keep`, in a
/// stable (sorted) order.
fn gather(roots: &[&str], want: usize, keep: &dyn Fn(&Path) -> bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(want);
    let mut stack: Vec<std::path::PathBuf> = roots.iter().map(|r| r.into()).collect();
    stack.reverse();
    while let Some(p) = stack.pop() {
        if out.len() >= want {
            break;
        }
        let Ok(meta) = fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            let Ok(rd) = fs::read_dir(&p) else { continue };
            let mut entries: Vec<_> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            entries.sort();
            entries.reverse();
            stack.extend(entries);
        } else if meta.is_file() && meta.len() <= MAX_FILE && keep(&p) {
            if let Ok(data) = fs::read(&p) {
                let take = data.len().min(want - out.len());
                out.extend_from_slice(&data[..take]);
            }
        }
    }
    out
}

/// Incompressible bytes from a xorshift64* stream (the benchmark uses an AES-CTR keystream;
/// both are incompressible, which is all zstd sees).
fn random(len: usize) -> Vec<u8> {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        out.extend_from_slice(&s.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Runs `f` over every chunk until `MIN_SECONDS` have passed; returns MB/s of plain data.
fn rate(chunks: &[&[u8]], mut f: impl FnMut(usize, &[u8])) -> f64 {
    let bytes: usize = chunks.iter().map(|c| c.len()).sum();
    let start = Instant::now();
    let mut rounds = 0u32;
    loop {
        for (i, c) in chunks.iter().enumerate() {
            f(i, c);
        }
        rounds += 1;
        let t = start.elapsed().as_secs_f64();
        if t >= MIN_SECONDS {
            return bytes as f64 * f64::from(rounds) / 1e6 / t;
        }
    }
}

fn measure(label: &str, chunks: &[&[u8]]) {
    let plain: usize = chunks.iter().map(|c| c.len()).sum();
    let mut comp = zstd::bulk::Compressor::new(ZSTD_LEVEL).expect("zstd context");
    let mut decomp = zstd::bulk::Decompressor::new().expect("zstd context");
    let compressed: Vec<Vec<u8>> = chunks
        .iter()
        .map(|c| comp.compress(c).expect("zstd compress"))
        .collect();
    let zsize: usize = compressed.iter().map(|c| c.len()).sum();
    let encoded: Vec<Vec<u8>> = chunks.iter().map(|c| chunk::encode(c)).collect();
    let digests: Vec<Digest> = chunks.iter().map(|c| Digest::of(c)).collect();

    let sha = rate(chunks, |_, c| {
        std::hint::black_box(Sha256::digest(c));
    });
    let b3 = rate(chunks, |_, c| {
        std::hint::black_box(blake3::hash(c));
    });
    let crc = rate(chunks, |_, c| {
        std::hint::black_box(crc32fast::hash(c));
    });
    let mut zbuf = Vec::with_capacity(zstd::zstd_safe::compress_bound(CHUNK));
    let zc = rate(chunks, |_, c| {
        zbuf.clear();
        std::hint::black_box(comp.compress_to_buffer(c, &mut zbuf).expect("compress"));
    });
    let mut out = vec![0u8; CHUNK];
    let zd = rate(chunks, |i, _| {
        let n = decomp
            .decompress_to_buffer(&compressed[i], &mut out[..])
            .expect("decompress");
        std::hint::black_box(n);
    });
    let enc = rate(chunks, |_, c| {
        chunk::with_encoded(c, |e| {
            std::hint::black_box(e.bytes().len());
        });
    });
    // Restore decodes into its output buffer (`decode_into`), reused chunk after chunk.
    let dec = rate(chunks, |i, c| {
        chunk::decode_into(&encoded[i], &mut out[..c.len()], Some(&digests[i])).expect("decode");
    });
    let dec_crc = rate(chunks, |i, c| {
        chunk::decode_into(&encoded[i], &mut out[..c.len()], None).expect("decode");
    });
    // What a full backup does per chunk on one core (hash + encode, the encode including
    // its CRC) and a restore (decode + digest check).
    // Version 1 repositories name chunks by SHA-256, version 3 (the default) by BLAKE3.
    let backup = 1.0 / (1.0 / sha + 1.0 / enc);
    let backup_b3 = 1.0 / (1.0 / b3 + 1.0 / enc);
    let dec_b3 = 1.0 / (1.0 / dec_crc + 1.0 / b3);
    let per_gib = |rate: f64| (1u64 << 30) as f64 / 1e6 / rate;
    println!(
        "| {label} | {:.0} MiB | {:.1} % | {sha:.0} | {b3:.0} | {crc:.0} | {zc:.0} | {zd:.0} | {enc:.0} | {dec_crc:.0} | {dec:.0} | {dec_b3:.0} | {backup:.0} | {backup_b3:.0} | {:.2} | {:.2} |",
        plain as f64 / (1u64 << 20) as f64,
        100.0 * zsize as f64 / plain as f64,
        per_gib(backup),
        per_gib(backup_b3),
    );
}

fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(64);
    let want = mib << 20;
    let is_text = |p: &Path| {
        !matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("gz" | "xz" | "bz2" | "zst" | "png" | "jpg" | "gif" | "zip" | "pdf")
        )
    };
    let text = gather(&["/usr/share/doc", "/usr/include"], want, &is_text);
    let bin = gather(&["/usr/bin", "/usr/lib"], want, &is_text);
    let rnd = random(want);
    let split = |v: &[u8]| -> Vec<Vec<u8>> { v.chunks(CHUNK).map(<[u8]>::to_vec).collect() };
    let (t, b, r) = (split(&text), split(&bin), split(&rnd));
    let mut mixed = Vec::new();
    for i in 0..t.len().max(b.len()).max(r.len()) {
        for k in [&t, &b, &r] {
            if let Some(c) = k.get(i) {
                mixed.push(c.clone());
            }
        }
    }
    println!(
        "One thread, 1 MiB chunks, zstd level {ZSTD_LEVEL}; MB/s of plain data (10^6 bytes/s)."
    );
    println!();
    println!("| data | size | zstd size | SHA-256 | BLAKE3 | CRC32 | zstd -1 compress | zstd decompress | store encode (zstd+CRC) | store decode, --crc-only | store decode + SHA-256 | store decode + BLAKE3 | backup per chunk (SHA-256 + encode) | backup per chunk (BLAKE3 + encode) | CPU-s per GiB of backup, SHA-256 (version 1) | CPU-s per GiB of backup, BLAKE3 (version 3) |");
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for (label, set) in [
        ("text (/usr/share/doc, /usr/include)", &t),
        ("binaries (/usr/bin, /usr/lib)", &b),
        ("incompressible", &r),
        ("mixed (interleaved)", &mixed),
    ] {
        let slices: Vec<&[u8]> = set.iter().map(Vec::as_slice).collect();
        if !slices.is_empty() {
            measure(label, &slices);
        }
    }
}
