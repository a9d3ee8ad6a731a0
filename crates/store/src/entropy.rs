//! A cheap test for chunks not worth compressing: random or already-compressed bytes
//! (encrypted files, archives, media, database pages of such), which zstd scans and then
//! stores raw anyway.
//!
//! The test reads [`SAMPLES`] samples of [`SAMPLE_LEN`] bytes spread over the chunk and
//! computes each one's byte entropy (Shannon, bits per byte, from its histogram): the chunk
//! is left uncompressed only when every sample is above [`RANDOM_BITS`]. Text (4–5 bits)
//! and executables (about 5.3) fail at the first sample, so a compressible chunk pays for
//! one 4 KiB histogram (well under 1 % of compressing it); an incompressible one pays for
//! eight instead of zstd's pass over the whole megabyte (about a sixth of that pass, zstd
//! running at 5 GB/s on such data: `docs/benchmarks.md`, "sixth session"). What the test
//! can miss is only storage: a compressible run that falls between two samples (128 KiB
//! apart in a 1 MiB chunk) of an otherwise random chunk is stored raw with the rest.
//! btrfs's compression heuristic samples the same way.

/// Samples per chunk.
pub const SAMPLES: usize = 8;
/// Bytes per sample: a page, enough for a histogram of 256 values to tell random bytes
/// (7.955 bits on average, the estimator's bias being 255 / (2 × 4096 × ln 2) = 0.045) from
/// anything zstd compresses.
pub const SAMPLE_LEN: usize = 4096;
/// Entropy above which a sample counts as random: 0.09 bit below the lowest of 2,000
/// random pages (7.939; median 7.955), well above compressible data (pages of diskray's
/// own binary: median 5.3; English text: 4.8). gzip output measures 7.58–7.97 (median
/// 7.94), so a few already-compressed chunks are still handed to zstd, which is only time.
pub const RANDOM_BITS: f64 = 7.85;

/// True when every sample of `plain` looks random; false for chunks shorter than
/// [`SAMPLES`] × [`SAMPLE_LEN`] × 2 (those are simply compressed).
pub fn looks_incompressible(plain: &[u8]) -> bool {
    if plain.len() < SAMPLES * SAMPLE_LEN * 2 {
        return false;
    }
    let step = plain.len() / SAMPLES;
    (0..SAMPLES).all(|i| {
        let at = i * step + (step - SAMPLE_LEN) / 2;
        entropy_bits(&plain[at..at + SAMPLE_LEN]) > RANDOM_BITS
    })
}

/// The byte entropy of `sample` in bits per byte (0 for an empty sample).
fn entropy_bits(sample: &[u8]) -> f64 {
    let mut hist = [0u32; 256];
    for &b in sample {
        hist[b as usize] += 1;
    }
    let n = sample.len() as f64;
    hist.iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xorshift(len: usize, seed: u32) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 7) as u8
            })
            .collect()
    }

    /// Random megabytes are recognised; this file (text) and the test
    /// binary (x86-64 code and data), read from disk, are not, nor is random data with
    /// one compressible page among the samples, nor a short chunk.
    #[test]
    fn random_is_told_from_text_and_code() {
        assert!(looks_incompressible(&xorshift(1 << 20, 7)));
        assert!(looks_incompressible(&xorshift((1 << 20) + 12345, 9)));
        let text = include_bytes!("entropy.rs").repeat(1000);
        assert!(!looks_incompressible(&text[..1 << 20]));
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        for c in exe.chunks_exact(1 << 20) {
            assert!(!looks_incompressible(c));
        }
        let mut mixed = xorshift(1 << 20, 11);
        let at = 5 * (mixed.len() / SAMPLES);
        mixed[at..at + (1 << 17)].copy_from_slice(&text[..1 << 17]);
        assert!(!looks_incompressible(&mixed));
        assert!(!looks_incompressible(&xorshift(SAMPLES * SAMPLE_LEN, 3)));
        assert_eq!(entropy_bits(&[]), 0.0);
        assert_eq!(entropy_bits(&[5; 100]), 0.0);
        assert!((entropy_bits(&(0..=255).collect::<Vec<u8>>()) - 8.0).abs() < 1e-9);
    }
}
