//! Every accepted shape of docs/formats.md §4.3 and §4.7, written exactly as the reference shows
//! it, plus the committed fixtures made by real tools (pyVmomi's VmomiJSONEncoder and
//! qemu-img map over qemu-nbd with x-dirty-bitmap) checked against their truth file.

use diskray_changes::{parse, to_vsphere_json, ChangeMap, Format, Layout};
use std::path::{Path, PathBuf};

const GIB: u64 = 1 << 30;
const TEN_GIB: u64 = 10737418240;

fn read(text: &str, capacity: Option<u64>) -> ChangeMap {
    parse(text.as_bytes(), Path::new("t.json"), capacity, false)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn list(map: &ChangeMap) -> Vec<(u64, u64)> {
    map.changed.ranges().map(|r| (r.start, r.length)).collect()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/changes")
}

#[test]
fn vsphere_json_api_page_exactly_as_formats_shows() {
    let m = read(
        r#"{"_typeName":"DiskChangeInfo","startOffset":0,"length":10737418240,"changedArea":[{"_typeName":"DiskChangeExtent","start":0,"length":65536}]}"#,
        Some(TEN_GIB),
    );
    assert_eq!(list(&m), vec![(0, 65536)]);
    assert_eq!(
        (m.source.format, m.source.layout),
        (Format::VsphereJson, Layout::Object)
    );
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    assert!(m.uncovered.is_empty());
}

#[test]
fn vsphere_array_of_disk_change_info() {
    let text = r#"{"_typeName":"ArrayOfDiskChangeInfo","_value":[
        {"_typeName":"DiskChangeInfo","startOffset":0,"length":1073741824,"changedArea":[{"_typeName":"DiskChangeExtent","start":0,"length":65536},{"_typeName":"DiskChangeExtent","start":65536,"length":65536}]},
        {"_typeName":"DiskChangeInfo","startOffset":1073741824,"length":1073741824,"changedArea":[]},
        {"_typeName":"DiskChangeInfo","startOffset":2147483648,"length":0}]}"#;
    let m = read(text, Some(2 * GIB));
    assert_eq!(list(&m), vec![(0, 131072)]);
    assert_eq!(m.source.format, Format::VsphereJson);
    assert_eq!(m.source.layout, Layout::ArrayOfDiskChangeInfo);
    // Without a capacity the pages' own end is taken.
    let m = read(text, None);
    assert_eq!(m.capacity, 2 * GIB);
}

#[test]
fn pyvmomi_exactly_as_formats_shows_with_and_without_strip_dynamic() {
    let m = read(
        r#"{"dynamicType":null,"dynamicProperty":[],"startOffset":0,"length":10737418240,"changedArea":[{"dynamicType":null,"dynamicProperty":[],"start":0,"length":65536,"_vimtype":"vim.VirtualMachine.DiskChangeInfo.DiskChangeExtent"}],"_vimtype":"vim.VirtualMachine.DiskChangeInfo"}"#,
        Some(TEN_GIB),
    );
    assert_eq!(list(&m), vec![(0, 65536)]);
    assert_eq!(m.source.format, Format::Pyvmomi);
    let m = read(
        r#"{"startOffset":0,"length":10737418240,"changedArea":[{"start":0,"length":65536,"_vimtype":"vim.VirtualMachine.DiskChangeInfo.DiskChangeExtent"}],"_vimtype":"vim.VirtualMachine.DiskChangeInfo"}"#,
        Some(TEN_GIB),
    );
    assert_eq!(m.source.format, Format::PyvmomiStripped);
    // An empty page gives "changedArea": [].
    let m = read(
        r#"{"dynamicType":null,"dynamicProperty":[],"startOffset":0,"length":10737418240,"changedArea":[],"_vimtype":"vim.VirtualMachine.DiskChangeInfo"}"#,
        Some(TEN_GIB),
    );
    assert!(m.changed.is_empty());
}

#[test]
fn govmomi_with_and_without_changed_area() {
    let m = read(
        r#"{"startOffset":0,"length":10737418240,"changedArea":[{"start":0,"length":65536}]}"#,
        Some(TEN_GIB),
    );
    assert_eq!(list(&m), vec![(0, 65536)]);
    assert_eq!(m.source.format, Format::Govmomi);
    // govc omits changedArea when a page is empty: a change list with no areas is valid.
    let m = read(r#"{"startOffset":0,"length":10737418240}"#, Some(TEN_GIB));
    assert!(m.changed.is_empty());
    assert!(m.warnings.is_empty());
    // govmomi's last call returns {StartOffset: capacity, Length: 0}.
    let m = read(
        r#"[{"startOffset":0,"length":10737418240,"changedArea":[{"start":1048576,"length":65536}]},{"startOffset":10737418240,"length":0}]"#,
        Some(TEN_GIB),
    );
    assert_eq!(list(&m), vec![(1048576, 65536)]);
    assert_eq!(m.source.layout, Layout::Array);
}

#[test]
fn json_lines_one_page_per_line() {
    let text = "{\"startOffset\":0,\"length\":1024,\"changedArea\":[{\"start\":512,\"length\":512}]}\n\
                {\"startOffset\":1024,\"length\":1024}\n\
                \n\
                {\"startOffset\":2048,\"length\":2048,\"changedArea\":[{\"start\":2048,\"length\":512}]}\n";
    let m = read(text, Some(4096));
    assert_eq!(list(&m), vec![(512, 512), (2048, 512)]);
    assert_eq!(m.source.layout, Layout::JsonLines);
}

#[test]
fn snake_case_keys() {
    let m = read(
        r#"{"start_offset":0,"length":4096,"changed_area":[{"start":0,"length":512},{"start":1024,"length":512}]}"#,
        Some(4096),
    );
    assert_eq!(list(&m), vec![(0, 512), (1024, 512)]);
    assert_eq!(m.source.format, Format::SnakeCase);
}

#[test]
fn ad_hoc_pairs_areas_and_csv() {
    let m = read("[[0,512],[1024,512],[1536,512]]", Some(4096));
    assert_eq!(list(&m), vec![(0, 512), (1024, 1024)]);
    assert_eq!(m.source.format, Format::Pairs);
    assert!(m
        .warnings
        .iter()
        .map(ToString::to_string)
        .any(|w| w.contains("no pages")));
    let m = read(
        r#"[{"start":0,"length":512},{"start":2048,"length":1}]"#,
        Some(4096),
    );
    assert_eq!(list(&m), vec![(0, 512), (2048, 1)]);
    assert_eq!(m.source.format, Format::Areas);
    let csv =
        "# written by a script\r\noffset,length\r\n0,512\r\n\r\n 1024 , 512 # trailing comment\r\n";
    let m = read(csv, Some(4096));
    assert_eq!(list(&m), vec![(0, 512), (1024, 512)]);
    assert_eq!(
        (m.source.format, m.source.layout),
        (Format::Csv, Layout::Lines)
    );
    // Header-only CSV and an empty array: no changes, said in a warning.
    let m = read("offset,length\n", Some(4096));
    assert!(m.changed.is_empty() && !m.warnings.is_empty());
    let m = read("[]", Some(4096));
    assert!(m.changed.is_empty() && !m.warnings.is_empty());
}

#[test]
fn unsorted_and_overlapping_areas_in_a_page_are_merged_with_a_warning() {
    let m = read(
        r#"{"startOffset":0,"length":8192,"changedArea":[{"start":4096,"length":1024},{"start":0,"length":512},{"start":256,"length":512},{"start":768,"length":0}]}"#,
        Some(8192),
    );
    assert_eq!(list(&m), vec![(0, 768), (4096, 1024)]);
    assert!(
        m.warnings
            .iter()
            .map(ToString::to_string)
            .any(|w| w.contains("page 0") && w.contains("sorted and merged")),
        "{:?}",
        m.warnings
    );
}

#[test]
fn numbers_above_2_pow_53_are_exact() {
    let cap = u64::MAX;
    let text = format!(
        r#"{{"startOffset":0,"length":{cap},"changedArea":[{{"start":9007199254740993,"length":1}},{{"start":18446744073709551613,"length":2}}]}}"#
    );
    let m = read(&text, Some(cap));
    assert_eq!(
        list(&m),
        vec![(9007199254740993, 1), (18446744073709551613, 2)]
    );
}

#[test]
fn partial_pages_report_the_uncovered_tail() {
    let text = r#"[{"startOffset":0,"length":1024,"changedArea":[{"start":0,"length":512}]},{"startOffset":1024,"length":1024}]"#;
    let m = parse(text.as_bytes(), Path::new("t.json"), Some(4096), true).unwrap();
    assert_eq!(list(&m), vec![(0, 512)]);
    let unc: Vec<_> = m.uncovered.ranges().map(|r| (r.start, r.length)).collect();
    assert_eq!(unc, vec![(2048, 2048)]);
    assert!(m
        .warnings
        .iter()
        .map(ToString::to_string)
        .any(|w| w.contains("treated as changed")));
    let must: Vec<_> = m
        .must_read()
        .ranges()
        .map(|r| (r.start, r.length))
        .collect();
    assert_eq!(must, vec![(0, 512), (2048, 2048)]);
}

#[test]
fn round_out_rounds_outward_and_clamps_to_the_capacity() {
    let m = read("[[1,1],[5000,10],[10200,40]]", Some(10240));
    let r: Vec<_> = m
        .round_out(4096)
        .ranges()
        .map(|r| (r.start, r.length))
        .collect();
    assert_eq!(r, vec![(0, 10240)]); // [0,4096) + [4096,8192) + [8192,10240), merged
    let m = read("[[1,1],[9000,1]]", Some(20000));
    let r: Vec<_> = m
        .round_out(4096)
        .ranges()
        .map(|r| (r.start, r.length))
        .collect();
    assert_eq!(r, vec![(0, 4096), (8192, 4096)]);
    assert_eq!(m.round_out(0), m.changed);
}

#[test]
fn vsphere_output_parses_back_to_the_same_map() {
    let m = read(
        "[[0,512],[1024,512],[9007199254740993,7]]",
        Some(9007199254741000),
    );
    let v = serde_json::to_value(to_vsphere_json(&m)).unwrap();
    assert_eq!(v["_typeName"], "DiskChangeInfo");
    assert_eq!(v["changedArea"][0]["_typeName"], "DiskChangeExtent");
    assert_eq!(v["length"], 9007199254741000u64);
    let back = read(&serde_json::to_string(&v).unwrap(), Some(m.capacity));
    assert_eq!(back.changed, m.changed);
    assert_eq!(back.source.format, Format::VsphereJson);
    // An empty map still writes changedArea: [].
    let e = read("[]", Some(4096));
    assert_eq!(
        serde_json::to_value(to_vsphere_json(&e)).unwrap()["changedArea"],
        serde_json::json!([])
    );
}

#[test]
fn byte_order_mark_is_skipped() {
    let m = read("\u{feff}[[0,512]]", Some(4096));
    assert_eq!(list(&m), vec![(0, 512)]);
}

/// The committed fixtures made by pyVmomi and qemu-img/qemu-nbd (make-changes.sh) parse to
/// exactly the areas recorded in truth.json when they were made.
#[test]
fn real_tool_fixtures_match_their_truth() {
    let dir = fixtures();
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("truth.json")).unwrap()).unwrap();
    let cases = truth["cases"].as_object().unwrap();
    assert!(cases.len() >= 8, "{}", cases.len());
    for (name, case) in cases {
        let cap = case["capacity"].as_u64().unwrap();
        let m = diskray_changes::load(&dir.join(name), Some(cap), false)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let want: Vec<(u64, u64)> = case["changed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_u64().unwrap(), p[1].as_u64().unwrap()))
            .collect();
        assert_eq!(list(&m), want, "{name}");
        let shape = serde_json::to_value(m.source).unwrap();
        assert_eq!(shape["format"], case["format"], "{name}");
        assert_eq!(shape["layout"], case["layout"], "{name}");
        // Without a capacity, the pages' end is the capacity.
        let m2 = diskray_changes::load(&dir.join(name), None, false).unwrap();
        assert_eq!(m2.capacity, cap, "{name}");
    }
}

#[test]
fn qemu_dirty_bitmap_gives_exactly_the_written_range() {
    let m = diskray_changes::load(
        &fixtures().join("qemu-dirty-bitmap.json"),
        Some(64 << 20),
        false,
    )
    .unwrap();
    assert_eq!(list(&m), vec![(4194304, 131072)]);
    assert_eq!(m.source.format, Format::QemuDirtyBitmap);
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
}

#[test]
fn plain_allocation_map_is_read_conservatively_with_a_warning() {
    let m =
        diskray_changes::load(&fixtures().join("qemu-allocation-map.json"), None, false).unwrap();
    assert!(
        m.warnings
            .iter()
            .map(ToString::to_string)
            .any(|w| w.contains("zero: true")),
        "{:?}",
        m.warnings
    );
    assert_eq!(m.changed.bytes(), (64 << 20) - 131072);
}
