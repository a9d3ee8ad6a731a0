//! Fuzzes the change-map parser (every shape, detection, tiling and capacity checks).
//! Byte 0: bit 0 = partial, bit 1 = capacity given; bytes 1..9: the capacity (LE); the
//! rest is the file. Accepted maps must lie inside their capacity and survive a round trip
//! through the vSphere JSON writer.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let partial = data[0] & 1 != 0;
    let capacity = (data[0] & 2 != 0).then(|| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&data[1..9]);
        u64::from_le_bytes(b)
    });
    let body = &data[9..];
    let Ok(map) = diskray_changes::parse(body, Path::new("fuzz.json"), capacity, partial) else {
        return;
    };
    if let Some(c) = capacity {
        assert_eq!(map.capacity, c);
    }
    for r in map.changed.ranges().chain(map.uncovered.ranges()) {
        assert!(r.end() <= map.capacity, "{r:?} past {}", map.capacity);
    }
    assert!(map.uncovered.is_empty() || partial);
    assert!(map.changed.intersection(&map.uncovered).is_empty());
    for r in map.round_out(4096).ranges() {
        assert!(r.end() <= map.capacity);
    }
    let out = serde_json::to_vec(&diskray_changes::to_vsphere_json(&map)).unwrap();
    let back = diskray_changes::parse(&out, Path::new("back.json"), Some(map.capacity), false)
        .expect("the vSphere writer's output parses");
    assert_eq!(back.changed, map.must_read());
});
