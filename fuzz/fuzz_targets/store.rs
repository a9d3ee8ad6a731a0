//! Fuzzes the repository's on-disk parsers: chunk decoding, the fixed index, the kept
//! ranges and patches. A selector byte picks the parser; the rest is the file.
#![no_main]
use diskray_store::{chunk, index::FixedIndex, kept, patch::Patch};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

/// Largest plaintext accepted from a fuzzed chunk (bounds memory per run).
const MAX_PLAIN: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    match sel % 4 {
        0 => {
            if let Ok(plain) = chunk::decode(rest, MAX_PLAIN, None) {
                assert!(plain.len() as u64 <= MAX_PLAIN);
            }
        }
        1 => {
            if let Ok(idx) = FixedIndex::from_bytes(rest, Path::new("index")) {
                assert_eq!(
                    idx.to_bytes(),
                    rest,
                    "a parsed index re-serialises to itself"
                );
            }
        }
        3 => {
            if let Ok(p) = Patch::parse(rest) {
                assert_eq!(p.to_bytes(), rest, "a parsed patch re-serialises to itself");
                if u64::from(p.length) <= MAX_PLAIN {
                    let mut chunk = vec![0u8; p.length as usize];
                    p.apply(&mut chunk);
                }
            }
        }
        _ => {
            if let Ok(set) = kept::from_bytes(rest, Path::new("kept"), 1 << 40) {
                assert!(set.ranges().all(|r| r.end() <= 1 << 40));
            }
        }
    }
});
