//! The VMDK text descriptor: header keys, extent lines and the disk database (`ddb.*`).
//!
//! Sources: VMware "Virtual Disk Format 1.1" (the descriptor grammar and extent line
//! `ACCESS SECTORS TYPE "FILE" [OFFSET]`), qemu `block/vmdk.c` (`vmdk_parse_extents`),
//! and the field notes in `docs/formats.md` §1.2 (signature with and without the space,
//! NUL padding, CRLF, Windows device fields 5–7).

use diskray_core::{Error, Result};
use nom::branch::alt;
use nom::bytes::complete::{is_not, tag, take_while1};
use nom::character::complete::{char, digit1, space0, space1};
use nom::combinator::{all_consuming, map_res, opt, rest};
use nom::sequence::{delimited, preceded};
use nom::{IResult, Parser};
use serde::Serialize;
use std::path::Path;

/// Largest descriptor accepted: real ones are a few KiB; this bounds memory and time on
/// hostile input while leaving room for descriptors with thousands of extents.
pub const MAX_DESCRIPTOR_BYTES: usize = 1 << 20;
/// Most extent lines accepted: a 62 TiB disk split into 2 GiB extents needs ~32 000.
pub const MAX_EXTENTS: usize = 65_536;
/// Longest accepted line: file names and ddb values are short; this refuses garbage early.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// The access mode of an extent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Access {
    /// Read-write.
    #[serde(rename = "RW")]
    ReadWrite,
    /// Read-only (a write-protect marker; reads are normal).
    #[serde(rename = "RDONLY")]
    ReadOnly,
    /// No access: VMware refuses reads of this extent.
    #[serde(rename = "NOACCESS")]
    NoAccess,
}

impl Access {
    /// The descriptor's spelling (`RW`, `RDONLY`, `NOACCESS`), as JSON has it.
    pub fn name(self) -> &'static str {
        match self {
            Access::ReadWrite => "RW",
            Access::ReadOnly => "RDONLY",
            Access::NoAccess => "NOACCESS",
        }
    }
}

/// The type field of an extent line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ExtentType {
    /// Hosted sparse (`KDMV` header), including streamOptimized.
    #[serde(rename = "SPARSE")]
    Sparse,
    /// Raw bytes from a start sector of a file.
    #[serde(rename = "FLAT")]
    Flat,
    /// Raw bytes (ESXi spelling of FLAT).
    #[serde(rename = "VMFS")]
    Vmfs,
    /// Reads as zeros; no file.
    #[serde(rename = "ZERO")]
    Zero,
    /// ESXi redo log (`COWD` header).
    #[serde(rename = "VMFSSPARSE")]
    VmfsSparse,
    /// ESXi space-efficient sparse (`0xCAFEBABE` header).
    #[serde(rename = "SESPARSE")]
    SeSparse,
    /// A raw device or LUN (VMFSRAW, VMFSRDM, …): not in the bundle, unreadable here.
    #[serde(rename = "DEVICE")]
    Device(String),
}

impl ExtentType {
    fn parse_word(word: &str) -> ExtentType {
        match word {
            "SPARSE" => ExtentType::Sparse,
            "FLAT" => ExtentType::Flat,
            "VMFS" => ExtentType::Vmfs,
            "ZERO" => ExtentType::Zero,
            "VMFSSPARSE" => ExtentType::VmfsSparse,
            "SESPARSE" => ExtentType::SeSparse,
            other => ExtentType::Device(other.to_string()),
        }
    }

    /// The type as written in descriptors.
    pub fn name(&self) -> &str {
        match self {
            ExtentType::Sparse => "SPARSE",
            ExtentType::Flat => "FLAT",
            ExtentType::Vmfs => "VMFS",
            ExtentType::Zero => "ZERO",
            ExtentType::VmfsSparse => "VMFSSPARSE",
            ExtentType::SeSparse => "SESPARSE",
            ExtentType::Device(s) => s,
        }
    }
}

/// One extent line of a descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtentLine {
    /// Access mode.
    pub access: Access,
    /// Size in 512-byte sectors.
    pub sectors: u64,
    /// Extent type.
    #[serde(rename = "type")]
    pub kind: ExtentType,
    /// The file name as written (absent for ZERO and NOACCESS-only lines).
    pub file: Option<String>,
    /// Start sector inside the file (FLAT, VMFS and device extents).
    pub offset: u64,
    /// 1-based line number in the descriptor.
    #[serde(skip)]
    pub line: usize,
}

/// A parsed descriptor.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Descriptor {
    /// True when the `# Disk DescriptorFile` (or `# Disk Descriptor File`) line was seen.
    pub has_signature: bool,
    /// `version` (1, 2 or 3).
    pub version: Option<u32>,
    /// `encoding`, when given.
    pub encoding: Option<String>,
    /// `CID` as 8 hex digits, lowercase.
    pub cid: Option<String>,
    /// `parentCID` as 8 hex digits, lowercase (`ffffffff` = no parent).
    pub parent_cid: Option<String>,
    /// `createType`.
    pub create_type: String,
    /// `parentFileNameHint`, for deltas.
    pub parent_hint: Option<String>,
    /// `changeTrackPath` (CBT side file), when present.
    pub change_track_path: Option<String>,
    /// Extents in order.
    pub extents: Vec<ExtentLine>,
    /// `ddb.*` keys in file order (key without the `ddb.` prefix).
    pub ddb: Vec<(String, String)>,
    /// Any other header keys, in file order.
    pub other: Vec<(String, String)>,
}

impl Descriptor {
    /// True when this descriptor names a parent (`parentCID` other than `ffffffff`, or a
    /// parent file hint).
    pub fn has_parent(&self) -> bool {
        self.parent_hint.is_some() || self.parent_cid.as_deref().is_some_and(|c| c != "ffffffff")
    }

    /// The total size of all extents in bytes, or `None` on overflow.
    pub fn capacity(&self) -> Option<u64> {
        self.extents
            .iter()
            .try_fold(0u64, |acc, e| acc.checked_add(e.sectors.checked_mul(512)?))
    }
}

/// What one line of a descriptor is.
#[derive(Debug, PartialEq)]
enum Line<'a> {
    Blank,
    Comment(&'a str),
    Extent(ExtentLine),
    KeyValue(&'a str, String),
}

/// Parses descriptor text. `path` and `base` (the byte offset of the text inside that file)
/// locate errors. Text stops at the first NUL (padding).
pub fn parse(text: &[u8], path: &Path, base: u64) -> Result<Descriptor> {
    let text = match text.iter().position(|&b| b == 0) {
        Some(nul) => &text[..nul],
        None => text,
    };
    if text.len() > MAX_DESCRIPTOR_BYTES {
        return Err(Error::corrupt(
            path,
            base,
            format!(
                "descriptor is {} bytes, more than the {MAX_DESCRIPTOR_BYTES} accepted",
                text.len()
            ),
        ));
    }
    let mut desc = Descriptor::default();
    let mut line_start = 0usize;
    for (index, raw) in text.split(|&b| b == b'\n').enumerate() {
        let offset = base + line_start as u64;
        line_start += raw.len() + 1;
        let number = index + 1;
        if raw.len() > MAX_LINE_BYTES {
            return Err(Error::corrupt(
                path,
                offset,
                format!("descriptor line {number} is longer than {MAX_LINE_BYTES} bytes"),
            ));
        }
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = std::str::from_utf8(raw).map_err(|_| {
            Error::corrupt(
                path,
                offset,
                format!("descriptor line {number} is not valid UTF-8"),
            )
        })?;
        let parsed = parse_line(line.trim()).map_err(|why| {
            Error::corrupt(
                path,
                offset,
                format!("descriptor line {number}: {why}: {:?}", shorten(line)),
            )
        })?;
        match parsed {
            Line::Blank => {}
            Line::Comment(c) => {
                let c = c.trim();
                if c == "Disk DescriptorFile" || c == "Disk Descriptor File" {
                    desc.has_signature = true;
                }
            }
            Line::Extent(mut e) => {
                if desc.extents.len() == MAX_EXTENTS {
                    return Err(Error::corrupt(
                        path,
                        offset,
                        format!("more than {MAX_EXTENTS} extent lines"),
                    ));
                }
                e.line = number;
                desc.extents.push(e);
            }
            Line::KeyValue(key, value) => {
                apply_key(&mut desc, key, value).map_err(|why| {
                    Error::corrupt(path, offset, format!("descriptor line {number}: {why}"))
                })?;
            }
        }
    }
    if desc.extents.is_empty() {
        return Err(Error::corrupt(path, base, "descriptor has no extent lines"));
    }
    if desc.create_type.is_empty() {
        return Err(Error::corrupt(path, base, "descriptor has no createType"));
    }
    if desc.capacity().is_none() {
        return Err(Error::corrupt(
            path,
            base,
            "extent sizes add up to more than 2^64 bytes",
        ));
    }
    Ok(desc)
}

/// True when `head` (the first bytes of a file) looks like a text descriptor.
pub fn looks_like_descriptor(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&head[..head.len().min(4096)]);
    let trimmed = text.trim_start();
    trimmed.starts_with("# Disk DescriptorFile")
        || trimmed.starts_with("# Disk Descriptor File")
        || (text.contains("createType") && text.contains("version"))
}

fn shorten(line: &str) -> String {
    line.chars().take(80).collect()
}

/// Why a descriptor key's value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum BadValue {
    /// A CID that is not hexadecimal.
    #[error("{key} {value:?} is not 8 hex digits")]
    Hex { key: String, value: String },
    /// A version that is not a number.
    #[error("version {0:?} is not a number")]
    Version(String),
}

fn apply_key(desc: &mut Descriptor, key: &str, value: String) -> Result<(), BadValue> {
    let hex = |v: &str| -> Result<String, BadValue> {
        u32::from_str_radix(v, 16)
            .map(|n| format!("{n:08x}"))
            .map_err(|_| BadValue::Hex {
                key: key.to_string(),
                value: v.to_string(),
            })
    };
    match key {
        "version" => {
            let v = value
                .parse()
                .map_err(|_| BadValue::Version(value.clone()))?;
            desc.version = Some(v);
        }
        "encoding" => desc.encoding = Some(value),
        "CID" => desc.cid = Some(hex(&value)?),
        "parentCID" => desc.parent_cid = Some(hex(&value)?),
        "createType" => desc.create_type = value,
        "parentFileNameHint" => desc.parent_hint = Some(value),
        "changeTrackPath" => desc.change_track_path = Some(value),
        _ => match key.strip_prefix("ddb.") {
            Some(k) => desc.ddb.push((k.to_string(), value)),
            None => desc.other.push((key.to_string(), value)),
        },
    }
    Ok(())
}

fn parse_line(line: &str) -> Result<Line<'_>, &'static str> {
    if line.is_empty() {
        return Ok(Line::Blank);
    }
    if let Some(c) = line.strip_prefix('#') {
        return Ok(Line::Comment(c));
    }
    if let Ok((_, extent)) = all_consuming(extent_line).parse(line) {
        return Ok(Line::Extent(extent));
    }
    if line.starts_with("RW ") || line.starts_with("RDONLY ") || line.starts_with("NOACCESS ") {
        return Err("malformed extent line");
    }
    match all_consuming(key_value).parse(line) {
        Ok((_, (k, v))) => Ok(Line::KeyValue(k, v)),
        Err(_) => Err("neither a key = value line nor an extent line"),
    }
}

fn access(i: &str) -> IResult<&str, Access> {
    alt((
        tag("RW").map(|_| Access::ReadWrite),
        tag("RDONLY").map(|_| Access::ReadOnly),
        tag("NOACCESS").map(|_| Access::NoAccess),
    ))
    .parse(i)
}

fn number(i: &str) -> IResult<&str, u64> {
    map_res(digit1, str::parse::<u64>).parse(i)
}

fn quoted(i: &str) -> IResult<&str, &str> {
    alt((delimited(char('"'), is_not("\""), char('"')), tag("\"\""))).parse(i)
}

fn file_name(i: &str) -> IResult<&str, String> {
    alt((
        quoted.map(|s: &str| s.trim_matches('"').to_string()),
        is_not(" \t").map(str::to_string),
    ))
    .parse(i)
}

fn extent_line(i: &str) -> IResult<&str, ExtentLine> {
    let (i, access) = access(i)?;
    let (i, sectors) = preceded(space1, number).parse(i)?;
    // `NOACCESS N` alone (no type, no file) is seen in hand-edited descriptors.
    let (i, kind) = opt(preceded(
        space1,
        take_while1(|c: char| c.is_ascii_alphanumeric()),
    ))
    .parse(i)?;
    let kind = match (kind, access) {
        (Some(word), _) => ExtentType::parse_word(word),
        (None, Access::NoAccess) => ExtentType::Zero,
        (None, _) => {
            return Err(nom::Err::Error(nom::error::Error::new(
                i,
                nom::error::ErrorKind::Tag,
            )))
        }
    };
    let (i, file) = opt(preceded(space1, file_name)).parse(i)?;
    let (i, offset) = opt(preceded(space1, number)).parse(i)?;
    // Windows device extents carry a partition UUID and a device id: kept out of the model.
    let (i, _extra) = opt(preceded(space1, rest)).parse(i)?;
    let (i, _) = space0(i)?;
    Ok((
        i,
        ExtentLine {
            access,
            sectors,
            kind,
            file: file.filter(|f| !f.is_empty()),
            offset: offset.unwrap_or(0),
            line: 0,
        },
    ))
}

fn key_value(i: &str) -> IResult<&str, (&str, String)> {
    let (i, key) =
        take_while1(|c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))(i)?;
    let (i, _) = (space0, char('='), space0).parse(i)?;
    let (i, value) = alt((
        all_consuming(delimited(char('"'), opt(is_not("\"")), char('"')))
            .map(|v: Option<&str>| v.unwrap_or("").to_string()),
        rest.map(|v: &str| v.trim().trim_matches('"').to_string()),
    ))
    .parse(i)?;
    Ok((i, (key, value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const QEMU: &str = "# Disk DescriptorFile\nversion=1\nCID=e56dac6d\nparentCID=ffffffff\ncreateType=\"monolithicSparse\"\n\n# Extent description\nRW 131072 SPARSE \"conv-monolithicSparse.vmdk\"\n# The Disk Data Base\n#DDB\nddb.virtualHWVersion = \"4\"\nddb.geometry.cylinders = \"130\"\nddb.adapterType = \"ide\"\n";

    fn p(text: &str) -> Result<Descriptor> {
        parse(text.as_bytes(), Path::new("d.vmdk"), 0)
    }

    #[test]
    fn qemu_descriptor() {
        let d = p(QEMU).unwrap();
        assert!(d.has_signature);
        assert_eq!(d.version, Some(1));
        assert_eq!(d.cid.as_deref(), Some("e56dac6d"));
        assert_eq!(d.parent_cid.as_deref(), Some("ffffffff"));
        assert!(!d.has_parent());
        assert_eq!(d.create_type, "monolithicSparse");
        assert_eq!(d.extents.len(), 1);
        assert_eq!(d.extents[0].sectors, 131072);
        assert_eq!(d.extents[0].kind, ExtentType::Sparse);
        assert_eq!(
            d.extents[0].file.as_deref(),
            Some("conv-monolithicSparse.vmdk")
        );
        assert_eq!(d.ddb[2], ("adapterType".into(), "ide".into()));
        assert_eq!(d.capacity(), Some(64 << 20));
    }

    #[test]
    fn crlf_nul_unquoted_and_spaced_signature() {
        let mut text = QEMU
            .replace("DescriptorFile", "Descriptor File")
            .replace("\"monolithicSparse\"", "monolithicSparse")
            .replace('\n', "\r\n")
            .into_bytes();
        text.extend_from_slice(&[0u8; 300]);
        text.extend_from_slice(b"garbage after the padding");
        let d = parse(&text, Path::new("d"), 512).unwrap();
        assert!(d.has_signature);
        assert_eq!(d.create_type, "monolithicSparse");
        assert_eq!(d.extents.len(), 1);
    }

    #[test]
    fn extent_variants() {
        let d = p("createType=\"custom\"\nRW 100 FLAT \"a b.raw\" 7\nRDONLY 5 ZERO\nNOACCESS 9\nRW 8 VMFSRDM \"dev\" 0 {uuid} 12\nRW 3 VMFS \"x.vmdk\"\n").unwrap();
        let e = &d.extents;
        assert_eq!(e[0].file.as_deref(), Some("a b.raw"));
        assert_eq!(e[0].offset, 7);
        assert_eq!(
            (e[1].access, &e[1].kind, &e[1].file),
            (Access::ReadOnly, &ExtentType::Zero, &None)
        );
        assert_eq!(e[3].kind, ExtentType::Device("VMFSRDM".into()));
        assert_eq!(e[4].kind, ExtentType::Vmfs);
        assert_eq!(d.capacity(), Some((100 + 5 + 9 + 8 + 3) * 512));
    }

    #[test]
    fn refusals_name_the_line_and_offset() {
        let e = p("createType=\"x\"\nRW abc SPARSE \"f\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("at byte 15"), "{e}");
        assert!(p("createType=\"x\"\n")
            .unwrap_err()
            .to_string()
            .contains("no extent"));
        assert!(p("RW 1 FLAT \"f\" 0\n")
            .unwrap_err()
            .to_string()
            .contains("createType"));
        assert!(p("createType=x\nCID=zz\nRW 1 ZERO\n").is_err());
        assert!(p("createType=x\nRW 18446744073709551615 ZERO\n").is_err());
        let long = format!(
            "createType=x\nddb.x = \"{}\"\nRW 1 ZERO\n",
            "a".repeat(MAX_LINE_BYTES)
        );
        assert!(p(&long).unwrap_err().to_string().contains("longer than"));
        assert!(parse(b"createType=x\n\xff\xfe\nRW 1 ZERO\n", Path::new("d"), 0).is_err());
    }
}
