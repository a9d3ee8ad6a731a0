//! Fuzzes `diskray serve`'s side of the protocol: the input is everything one client says
//! (handshake options, then requests) to a server exporting a 1 MiB disk. Every outcome
//! must be a reply or the end of that client, never a panic, a hang or a large allocation.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;

#[path = "../common/script.rs"]
mod script;
use script::Script;

/// Replies are discarded, so the workers may write them anywhere: the fuzzed client's
/// requests go through the server's pool of workers as a socket's do.
impl diskray_nbd::server::ServerStream for Script {
    fn reply_writer(&self) -> Option<Box<dyn std::io::Write + Send>> {
        Some(Box::new(std::io::sink()))
    }
}

fuzz_target!(|data: &[u8]| {
    let disk = diskray_core::MemDisk::new(vec![7u8; 1 << 20]);
    let export = diskray_nbd::server::Export {
        disk: &disk,
        name: "disk".into(),
        overlay: None,
        tls: None,
    };
    let mut once = Some(Script(Cursor::new(data.to_vec())));
    let _ = diskray_nbd::server::serve(&export, || once.take().map(Ok));
});
