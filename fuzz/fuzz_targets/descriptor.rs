//! Fuzzes the VMDK text descriptor grammar.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = diskray_vmdk::descriptor::parse(data, Path::new("fuzz.vmdk"), 0) {
        let _ = d.capacity();
        let _ = d.has_parent();
    }
});
