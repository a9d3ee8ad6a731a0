//! Fuzzes what an encrypted repository reads before it trusts anything: key objects
//! (JSON, bounds, SHA-256, Argon2 parameters) and sealed objects. A selector byte picks
//! the parser; the rest is the object.
#![no_main]
use diskray_store::crypto::keyfile::{KeyObject, MIN_KDF_MEMORY_MIB};
use diskray_store::crypto::{Keys, MasterKey};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let keys = Keys::new(MasterKey::from_bytes(&[7; 64]), "fuzz");
    if sel % 2 == 0 {
        let path = Path::new("keys/fuzz");
        if let Ok(k) = KeyObject::parse(rest, path) {
            assert!(k.kdf.check().is_ok(), "a parsed key object is within every bound");
            // Deriving costs the parameters' memory and time: only the smallest run here.
            if k.kdf.memory_kib == MIN_KDF_MEMORY_MIB * 1024 && k.kdf.iterations == 1 {
                let _ = k.unwrap_with(b"password", path);
            }
        }
    } else if let Ok(plain) = keys.open(rest) {
        // Only a forgery of the tag could get here; it must at least be consistent.
        assert_eq!(plain.len() + diskray_store::crypto::SEAL_OVERHEAD, rest.len());
    }
});
