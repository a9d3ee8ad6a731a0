//! Fuzzes image probing (`diskray_image::probe`): VMDK magics and descriptors, the magics
//! and trailers of the formats refused by name (`crates/image/src/foreign.rs`), and, for
//! what is taken as raw, the open and the partition table read as `diskray` does. The
//! input is the whole file, written to a temporary file since probing reads a path. The
//! same bytes are parsed as a `.vmx` too (`diskray_image::vmx::parse`).
#![no_main]
use diskray_image::{foreign, open, probe, Foreign, Format};
use diskray_vmdk::OpenOptions;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The temporary file of this fuzzing process, rewritten for every input.
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("diskray-fuzz-probe-{}.img", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    // A .vmx: the disks it names, each under the folder given, never a panic.
    let dir = std::path::Path::new("/vms");
    if let Ok(disks) = diskray_image::vmx::parse(data, std::path::Path::new("f.vmx"), dir, false) {
        assert!(!disks.is_empty());
    }
    // The pure parts, on the input as head and as tail.
    let head = Foreign::from_head(data);
    if data.len() >= foreign::TRAILER {
        let _ = Foreign::from_tail(&data[data.len() - foreign::TRAILER..]);
    }
    let path = scratch();
    std::fs::write(path, data).unwrap();
    match probe(path) {
        // A magic seen at the start is refused whatever else the file holds.
        Ok(_) if head.is_some() => panic!("{head:?} magic at byte 0 but the probe took it"),
        Ok(Format::Raw) => {
            if let Ok(image) = open(path, Some(Format::Raw), &OpenOptions::default()) {
                let info = diskray_image::info::Info::of(&image);
                assert_eq!(info.capacity, data.len() as u64);
                let _ = diskray_layout::read_table(image.disk(), path);
            }
        }
        // VMDK files are fuzzed by the `descriptor` and `extent` targets.
        Ok(Format::Vmdk) | Err(_) => {}
        Ok(Format::Nbd) => panic!("a file probed as an NBD export"),
    }
});
