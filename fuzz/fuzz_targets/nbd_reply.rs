//! Fuzzes the NBD client's side of the protocol: the input is everything a server says
//! (handshake replies, then reply chunks); the client negotiates, reads, and asks for
//! block status. Every outcome must be a typed error or data, never a panic, a hang or a
//! large allocation. Byte 0: bit 0 asks for `base:allocation`; bytes 1–2: the read's
//! length (BE, at most 64 KiB); the rest is the server's byte stream (writes discarded).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;

#[path = "../common/script.rs"]
mod script;
use script::Script;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let contexts: &[&str] = if data[0] & 1 != 0 {
        &["base:allocation"]
    } else {
        &[]
    };
    let len = usize::from(u16::from_be_bytes([data[1], data[2]]));
    let mut buf = vec![0u8; len];
    let io = Box::new(Script(Cursor::new(data[3..].to_vec())));
    if let Ok(extents) = diskray_nbd::conn::exercise(io, contexts, &mut buf) {
        for e in extents {
            assert!(e.length > 0);
        }
    }
});
