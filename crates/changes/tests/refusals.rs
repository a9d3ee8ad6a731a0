//! Negative tests: the buggy paging loops of docs/formats.md §4.4, areas past the capacity or
//! outside their page, bad numbers, broken JSON and CSV, and oversized input. Each is
//! refused with a message that names the file and where the fault is.

use diskray_changes::limits::{MAX_FILE_BYTES, MAX_ITEMS};
use diskray_changes::parse;
use diskray_core::Error;
use std::path::Path;

const GIB: u64 = 1 << 30;

fn refuse(text: &str, capacity: Option<u64>) -> String {
    refuse_bytes(text.as_bytes(), capacity, false)
}

fn refuse_bytes(bytes: &[u8], capacity: Option<u64>, partial: bool) -> String {
    match parse(bytes, Path::new("cbt.json"), capacity, partial) {
        Ok(m) => panic!(
            "accepted: {:?}\n{}",
            m,
            String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
        ),
        Err(e) => {
            let s = e.to_string();
            eprintln!("{s}");
            assert!(s.starts_with("cbt.json"), "the message names the file: {s}");
            s
        }
    }
}

fn has(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "{p:?} not in: {msg}");
    }
}

fn page(start: u64, length: u64, areas: &[(u64, u64)]) -> String {
    let a: Vec<String> = areas
        .iter()
        .map(|(s, l)| format!(r#"{{"start":{s},"length":{l}}}"#))
        .collect();
    format!(
        r#"{{"startOffset":{start},"length":{length},"changedArea":[{}]}}"#,
        a.join(",")
    )
}

fn pages(p: &[String]) -> String {
    format!("[{}]", p.join(","))
}

// --- The buggy loops of docs/formats.md §4.4 -------------------------------------------------

#[test]
fn vddk_sample_bug_start_offset_inside_an_extent() {
    let m = refuse(
        r#"{"startOffset":0,"length":1073741824,"changedArea":[{"start":0,"length":512},{"startOffset":65536,"length":65536}]}"#,
        Some(GIB),
    );
    has(
        &m,
        &["page 0, extent 1", "`startOffset`", "`start`", "VDDK"],
    );
}

#[test]
fn stopping_at_the_first_empty_page() {
    let text = pages(&[page(0, GIB, &[(0, 65536)]), page(GIB, GIB, &[])]);
    let m = refuse(&text, Some(3 * GIB));
    has(
        &m,
        &[
            "pages cover [0, 2147483648) of capacity 3221225472: the query loop stopped early (stopping at the first empty page is a known bug)",
            "page 1, has no changed area",
        ],
    );
    // The caller may accept the partial map: the rest is reported as uncovered.
    let ok = parse(text.as_bytes(), Path::new("cbt.json"), Some(3 * GIB), true).unwrap();
    let unc: Vec<_> = ok.uncovered.ranges().map(|r| (r.start, r.length)).collect();
    assert_eq!(unc, vec![(2 * GIB, GIB)]);
}

#[test]
fn next_offset_from_the_end_of_the_last_extent_re_queries() {
    // Page 0 ends at 1 GiB, but the loop continued at its last area's end (64 KiB).
    let text = pages(&[page(0, GIB, &[(0, 65536)]), page(65536, GIB, &[(GIB, 512)])]);
    let m = refuse(&text, Some(GIB + 65536));
    has(
        &m,
        &[
            "pages overlap",
            "page 1 starts at 65536",
            "end of the last extent",
        ],
    );
    // The loop that never advances asks for the same page again.
    let text = pages(&[page(0, GIB, &[]), page(0, GIB, &[])]);
    has(&refuse(&text, Some(GIB)), &["queried twice"]);
}

#[test]
fn double_counting_offset_plus_start_offset_plus_length() {
    // offset += startOffset + length: 0 -> 1G -> 1G + (1G + 1G) = 3G: a 1 GiB gap.
    let text = pages(&[
        page(0, GIB, &[]),
        page(GIB, GIB, &[(GIB, 512)]),
        page(3 * GIB, GIB, &[]),
    ]);
    let m = refuse(&text, Some(4 * GIB));
    has(
        &m,
        &[
            "gap",
            "page 1 ends at 2147483648 but page 2 starts at 3221225472",
            "offset += startOffset + length",
            "double counts",
        ],
    );
}

#[test]
fn comparing_with_the_page_length_instead_of_the_capacity() {
    let text = pages(&[page(0, GIB, &[(0, 512)])]);
    let m = refuse(&text, Some(4 * GIB));
    has(
        &m,
        &["stopped early", "page length instead of the capacity"],
    );
}

#[test]
fn pages_that_do_not_start_at_zero_or_run_past_the_capacity() {
    has(
        &refuse(&page(512, 512, &[]), Some(1024)),
        &["page 0 starts at 512", "must start at offset 0"],
    );
    has(
        &refuse(&page(0, 2048, &[]), Some(1024)),
        &["pages cover [0, 2048), past the capacity 1024"],
    );
    let m = refuse(&pages(&[page(0, 1, &[]), page(1, u64::MAX, &[])]), None);
    has(&m, &["page 1", "overflows"]);
}

#[test]
fn no_pages_at_all() {
    let m = refuse(
        r#"{"_typeName":"ArrayOfDiskChangeInfo","_value":[]}"#,
        Some(4096),
    );
    has(&m, &["no pages"]);
    let ok = parse(
        br#"{"_typeName":"ArrayOfDiskChangeInfo","_value":[]}"#,
        Path::new("cbt.json"),
        Some(4096),
        true,
    )
    .unwrap();
    assert_eq!(ok.uncovered.bytes(), 4096);
}

// --- Areas -----------------------------------------------------------------------------

#[test]
fn area_past_the_capacity_or_outside_its_page() {
    has(
        &refuse(&page(0, 4096, &[(4000, 512)]), Some(4096)),
        &[
            "page 0, extent 0",
            "area [4000, 4512) runs past the capacity 4096",
        ],
    );
    let text = pages(&[page(0, 2048, &[(1024, 2048)]), page(2048, 2048, &[])]);
    has(
        &refuse(&text, Some(4096)),
        &[
            "page 0, extent 0",
            "area [1024, 3072) lies outside its page [0, 2048)",
        ],
    );
    has(
        &refuse("[[0,512],[4000,512]]", Some(4096)),
        &["element 1", "past the capacity"],
    );
    has(
        &refuse("0,512\n4000,512\n", Some(4096)),
        &["line 2", "past the capacity"],
    );
    has(
        &refuse("[[18446744073709551615,1]]", Some(u64::MAX)),
        &["element 0", "overflows"],
    );
}

#[test]
fn bad_numbers() {
    for (text, why) in [
        (
            r#"{"startOffset":0,"length":4096,"changedArea":[{"start":-512,"length":512}]}"#,
            "`start` is negative (-512)",
        ),
        (
            r#"{"startOffset":0,"length":4096,"changedArea":[{"start":0,"length":1.5}]}"#,
            "`length` is 1.5, not an unsigned 64-bit integer",
        ),
        (
            r#"{"startOffset":0,"length":4096,"changedArea":[{"start":0,"length":512.0}]}"#,
            "not an unsigned 64-bit integer",
        ),
        (
            r#"{"startOffset":0,"length":4096,"changedArea":[{"start":1e3,"length":512}]}"#,
            "`start` is 1000.0, not an unsigned 64-bit integer",
        ),
        (
            r#"{"startOffset":0,"length":4096,"changedArea":[{"start":18446744073709551616,"length":1}]}"#,
            "above 2^64-1",
        ),
        (
            r#"{"startOffset":0,"length":4096,"changedArea":[{"start":"0","length":512}]}"#,
            "`start` is a string, not a number",
        ),
        (
            r#"{"startOffset":0,"length":4096,"changedArea":[{"start":null,"length":512}]}"#,
            "`start` is null",
        ),
        (
            r#"{"startOffset":-1,"length":4096}"#,
            "page 0: `startOffset` is negative",
        ),
        (r#"{"startOffset":0}"#, "page 0: missing `length`"),
        (r#"{"length":4096}"#, "page 0: missing `startOffset`"),
        (
            r#"{"startOffset":0,"length":4096,"changedArea":[{"start":0}]}"#,
            "page 0, extent 0: missing `length`",
        ),
        (
            r#"{"startOffset":0,"length":4096,"changedArea":[{"length":5}]}"#,
            "page 0, extent 0: missing `start`",
        ),
        ("[[0,-1]]", "element 0: `length` is negative"),
        ("[[0,1,2]]", "element 0: an array of 3 values"),
    ] {
        has(&refuse(text, Some(4096)), &[why]);
    }
}

#[test]
fn bad_csv() {
    for (text, why) in [
        ("0,512\n-5,512\n", "line 2: `offset` is negative"),
        (
            "0,512\n1.5,512\n",
            "line 2: `offset` is 1.5, not an unsigned integer",
        ),
        ("0,512,7\n", "line 1: 3 fields"),
        (
            "0x10,0x20\n",
            "line 1: `offset` is \"0x10\", not a decimal number",
        ),
        ("offset,length\n0,512\nstart,length\n", "line 3"),
        ("0,99999999999999999999\n", "larger than 2^64-1"),
        ("0;512\n", "line 1: no comma"),
    ] {
        has(&refuse(text, Some(1 << 40)), &[why]);
    }
    // The byte offset of the offending line is in the error.
    match parse(b"0,512\n-5,512\n", Path::new("c.csv"), Some(4096), false) {
        Err(Error::Corrupt { offset, .. }) => assert_eq!(offset, 6),
        other => panic!("{other:?}"),
    }
    has(
        &refuse("0,512\n", None),
        &["does not say the disk's capacity"],
    );
}

// --- Broken documents --------------------------------------------------------------------

#[test]
fn empty_and_truncated_files() {
    has(&refuse("", Some(4096)), &["empty file"]);
    has(&refuse(" \n\t\r\n", Some(4096)), &["empty file"]);
    let text = r#"{"startOffset":0,"length":4096,"changedArea":[{"start":0,"len"#;
    let m = refuse(text, Some(4096));
    has(&m, &["truncated JSON", "line 1"]);
    match parse(text.as_bytes(), Path::new("t"), Some(4096), false) {
        // serde_json points at the last byte it read.
        Err(Error::Corrupt { offset, .. }) => assert!(offset + 1 >= text.len() as u64, "{offset}"),
        other => panic!("{other:?}"),
    }
    has(
        &refuse("{\"startOffset\":0,\n\"length\":4096,}", Some(4096)),
        &["invalid JSON at line 2"],
    );
    has(&refuse("[[0,512]] [", Some(4096)), &["truncated JSON"]);
}

#[test]
fn json_lines_errors_name_the_line() {
    let text = format!(
        "{}\n{}\n{}\n",
        page(0, 1024, &[]),
        page(1024, 1024, &[]),
        r#"{"startOffset":2048,"length":2048,"changedArea":[{"start":2048,"length":-1}]}"#
    );
    has(
        &refuse(&text, Some(4096)),
        &["page 2 (line 3), extent 0: `length` is negative"],
    );
    let text = format!("{}\n[[0,1]]\n", page(0, 1024, &[]));
    has(&refuse(&text, Some(1024)), &["line 2: an array"]);
    let text = format!("{}\n{{\"startOffset\":1024,\n", page(0, 1024, &[]));
    has(&refuse(&text, Some(2048)), &["truncated JSON", "line 3"]);
}

#[test]
fn wrong_documents() {
    has(&refuse("42", Some(4096)), &["line 1: no comma"]); // not JSON: read as CSV
    let text = format!("{}\n42\n", page(0, 4096, &[]));
    has(&refuse(&text, Some(4096)), &["line 2: a number"]);
    has(
        &refuse(
            r#"{"snapshot":{"_typeName":"ManagedObjectReference","type":"VirtualMachineSnapshot","value":"snapshot-42"},"deviceKey":2000,"startOffset":0,"changeId":"*"}"#,
            Some(4096),
        ),
        &["QueryChangedDiskAreas request"],
    );
    has(
        &refuse(r#"[[0,512],{"start":0,"length":512}]"#, Some(4096)),
        &["element 1 is an area {start, length} but element 0 is a [start, length] pair"],
    );
    has(
        &refuse(
            r#"{"startOffset":0,"length":4096,"length":8192}"#,
            Some(8192),
        ),
        &["`length` appears twice"],
    );
    has(
        &refuse(
            r#"{"startOffset":0,"start_offset":0,"length":4096}"#,
            Some(8192),
        ),
        &["appears twice"],
    );
    has(
        &refuse(
            r#"{"_typeName":"DiskChangeExtent","startOffset":0,"length":4096}"#,
            Some(4096),
        ),
        &["type DiskChangeExtent, expected DiskChangeInfo"],
    );
    has(
        &refuse(
            r#"{"startOffset":0,"length":4096,"changedArea":[[0,512]]}"#,
            Some(4096),
        ),
        &["page 0, extent 0: an array, not a DiskChangeExtent object"],
    );
    has(
        &refuse(
            r#"{"startOffset":0,"length":4096,"changedArea":{"start":0}}"#,
            Some(4096),
        ),
        &["`changedArea` is an object, not an array"],
    );
    has(
        &refuse(
            r#"{"_typeName":"ArrayOfDiskChangeInfo","_value":[[0,1]]}"#,
            Some(4096),
        ),
        &["`_value[0]` is a [start, length] pair"],
    );
    has(
        &refuse(
            r#"[{"start":0,"length":512,"present":true,"zero":false}]"#,
            Some(512),
        ),
        &["map entry 0: missing `data`"],
    );
    has(
        &refuse(r#"{"start":0,"length":512}"#, Some(512)),
        &["single object"],
    );
    has(&refuse("\u{0}\u{1}garbage", Some(512)), &["line 1"]);
}

#[test]
fn qemu_map_that_does_not_tile() {
    let text = r#"[{ "start": 0, "length": 4096, "depth": 0, "present": true, "zero": false, "data": true, "offset": 0},
{ "start": 8192, "length": 4096, "depth": 0, "present": false, "zero": false, "data": false}]"#;
    has(
        &refuse(text, Some(12288)),
        &[
            "gap",
            "map entry 0 ends at 4096 but map entry 1 starts at 8192",
        ],
    );
}

// --- Size bounds --------------------------------------------------------------------------

#[test]
fn oversized_input_is_refused_before_parsing() {
    let big = vec![b' '; MAX_FILE_BYTES as usize + 1];
    has(&refuse_bytes(&big, Some(4096), false), &["larger than"]);
}

#[test]
fn too_many_areas_are_refused_while_parsing() {
    let mut text = String::with_capacity(MAX_ITEMS * 8 + 16);
    text.push('[');
    for i in 0..=MAX_ITEMS {
        if i > 0 {
            text.push(',');
        }
        text.push_str("[0,1]");
    }
    text.push(']');
    let m = refuse_bytes(text.as_bytes(), Some(4096), false);
    has(&m, &["more than", "pages and areas"]);
    assert!(matches!(
        parse(text.as_bytes(), Path::new("t"), Some(4096), false),
        Err(Error::Refused { .. })
    ));
}
