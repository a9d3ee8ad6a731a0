//! The JSON change-map shapes: which one a file holds, and its pages or areas with every
//! number checked.
//!
//! Sources: `docs/formats.md` §4.3 (vSphere JSON API with `_typeName` and
//! `ArrayOfDiskChangeInfo` / `_value`; pyVmomi `VmomiJSONEncoder` with `_vimtype` and,
//! unless `strip_dynamic`, `dynamicType` / `dynamicProperty`; govmomi/govc, which omits
//! an empty `changedArea`; ad hoc `[[start,len],…]` and snake_case keys), §4.4 (the
//! VDDK-sample bug of `changedArea[i].startOffset`) and §4.7 (`qemu-img map
//! --output=json` of an NBD export with `x-dirty-bitmap`: `data: false` is dirty). The
//! layouts are one object, a JSON array of pages, or several values (JSON lines).

use crate::gathered::{Area, AreaKind, Gathered, Page, PageKind, Warnings};
use crate::limits::MAX_ITEMS;
use crate::raw_json::{
    AreaList, Budget, Flag, Kind, Num, RawElement, RawObject, RawTop, TopSeed, TypeTag,
};
use crate::shape::{Format, Layout, Shape};
use diskray_core::{Error, Result};
use serde::de::{DeserializeSeed, IgnoredAny};
use serde_json::error::Category;
use std::ops::Range;
use std::path::Path;

/// What a file's JSON held, ready for normalisation.
pub(crate) struct JsonMap {
    pub gathered: Gathered,
    pub shape: Shape,
    pub warnings: Warnings,
}

/// Reads a JSON change map (the first non-blank byte is `{` or `[`).
pub(crate) fn gather(bytes: &[u8], path: &Path) -> Result<JsonMap> {
    let spans = value_spans(bytes, path)?;
    let budget = Budget::default();
    let mut tops = Vec::with_capacity(spans.len());
    for span in &spans {
        let mut de = serde_json::Deserializer::from_slice(&bytes[span.clone()]);
        let top = TopSeed(&budget)
            .deserialize(&mut de)
            .map_err(|e| json_error(path, bytes, span.start, &e, budget.exceeded()))?;
        tops.push((span.start, top));
    }
    let mut cx = Cx {
        path,
        bytes,
        warnings: Warnings::default(),
    };
    let (gathered, shape) = if tops.len() == 1 {
        let (offset, top) = tops.pop().unwrap_or((0, RawTop::Scalar(Kind::Missing)));
        cx.single(offset, top)?
    } else {
        cx.lines(tops)?
    };
    Ok(JsonMap {
        gathered,
        shape,
        warnings: cx.warnings,
    })
}

/// The byte ranges of the top-level JSON values (one for a document, one per line for
/// JSON lines), found without storing anything.
fn value_spans(bytes: &[u8], path: &Path) -> Result<Vec<Range<usize>>> {
    let mut stream = serde_json::Deserializer::from_slice(bytes).into_iter::<IgnoredAny>();
    let mut spans = Vec::new();
    loop {
        let start = skip_ws(bytes, stream.byte_offset());
        match stream.next() {
            None => break,
            Some(Ok(_)) => {
                if spans.len() >= MAX_ITEMS {
                    return Err(Error::refused(
                        path,
                        format!("more than {MAX_ITEMS} JSON values (the limit of one change map)"),
                    ));
                }
                spans.push(start..stream.byte_offset());
            }
            Some(Err(e)) => return Err(json_error(path, bytes, 0, &e, false)),
        }
    }
    if spans.is_empty() {
        return Err(Error::refused(path, "empty file: no change map in it"));
    }
    Ok(spans)
}

fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

/// 1-based line and column of byte `offset`.
pub(crate) fn line_col(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = before.len()
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    (line, col)
}

/// Byte offset of serde_json's 1-based `line` and `column` within `bytes`.
fn offset_of(bytes: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0usize;
    if line > 1 {
        start = bytes.len(); // past the last line unless found below
        let mut seen = 0usize;
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'\n' {
                seen += 1;
                if seen == line - 1 {
                    start = i + 1;
                    break;
                }
            }
        }
    }
    start
        .saturating_add(column.saturating_sub(1))
        .min(bytes.len())
}

/// A serde_json error as a diskray error with the absolute byte offset, line and column.
fn json_error(
    path: &Path,
    bytes: &[u8],
    span_start: usize,
    e: &serde_json::Error,
    over_budget: bool,
) -> Error {
    let text = e.to_string();
    let bare = text
        .rfind(" at line ")
        .map_or(text.as_str(), |i| &text[..i]);
    if over_budget {
        return Error::refused(path, bare.to_string());
    }
    let rel = offset_of(&bytes[span_start.min(bytes.len())..], e.line(), e.column());
    let offset = span_start.saturating_add(rel);
    let (line, col) = line_col(bytes, offset);
    let what = match e.classify() {
        Category::Eof => "truncated JSON (the file ends inside a value)",
        Category::Syntax => "invalid JSON",
        Category::Data => "unexpected JSON",
        Category::Io => "JSON read error",
    };
    Error::corrupt(
        path,
        offset as u64,
        format!("{what} at line {line}, column {col}: {bare}"),
    )
}

/// What an object at page level is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ObjectKind {
    Page,
    Wrapper,
    MapEntry,
    Area,
}

impl ObjectKind {
    fn name(self) -> &'static str {
        match self {
            ObjectKind::Page => "a DiskChangeInfo page",
            ObjectKind::Wrapper => "an ArrayOfDiskChangeInfo",
            ObjectKind::MapEntry => "a qemu-img map entry",
            ObjectKind::Area => "an area {start, length}",
        }
    }
}

fn classify(o: &RawObject) -> ObjectKind {
    if o.value.is_some() || o.type_name.as_deref() == Some(&TypeTag::ArrayOfInfo) {
        ObjectKind::Wrapper
    } else if o.has_page_keys() || o.type_name.is_some() || o.vim_type.is_some() {
        ObjectKind::Page
    } else if o.qemu {
        ObjectKind::MapEntry
    } else if o.start.is_some() {
        ObjectKind::Area
    } else {
        // `{"length": N}` and `{}`: a page with missing fields says the most useful thing.
        ObjectKind::Page
    }
}

fn element_kind(e: &RawElement) -> &'static str {
    match e {
        RawElement::Object(o) => classify(o).name(),
        RawElement::Pair(..) | RawElement::BadArray(_) => "a [start, length] pair",
        RawElement::Scalar(k) => k.name(),
    }
}

/// The dialect of pages, from the first page (and the `ArrayOfDiskChangeInfo` around it).
fn page_format(first: Option<&RawObject>, wrapper: bool) -> Format {
    match first {
        _ if wrapper => Format::VsphereJson,
        Some(o) if o.type_name.is_some() => Format::VsphereJson,
        Some(o) if o.vim_type.is_some() && o.dynamic => Format::Pyvmomi,
        Some(o) if o.vim_type.is_some() => Format::PyvmomiStripped,
        Some(o) if o.snake => Format::SnakeCase,
        _ => Format::Govmomi,
    }
}

/// Context for turning raw values into checked pages and areas.
struct Cx<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    warnings: Warnings,
}

impl Cx<'_> {
    fn refuse(&self, offset: usize, reason: String) -> Error {
        Error::corrupt(self.path, offset as u64, reason)
    }

    /// One JSON document: one page, an `ArrayOfDiskChangeInfo`, or an array.
    fn single(&mut self, offset: usize, top: RawTop) -> Result<(Gathered, Shape)> {
        match top {
            RawTop::Scalar(kind) => Err(self.refuse(
                offset,
                format!("the JSON document is {kind}, not a change map (an object or an array)"),
            )),
            RawTop::Object(o) => match classify(&o) {
                ObjectKind::Wrapper => {
                    let format = page_format(None, true);
                    let mut pages = Vec::new();
                    self.unwrap(o, offset, None, &mut pages)?;
                    Ok((
                        Gathered::Pages(pages),
                        shape(format, Layout::ArrayOfDiskChangeInfo),
                    ))
                }
                ObjectKind::Page => {
                    let format = page_format(Some(&o), false);
                    let page = self.page(o, 0, offset, None)?;
                    Ok((Gathered::Pages(vec![page]), shape(format, Layout::Object)))
                }
                kind => Err(self.refuse(
                    offset,
                    format!(
                        "the JSON document is a single object that looks like {}; a change map \
                         is a DiskChangeInfo page, an array of pages, entries or areas, or \
                         one page per line",
                        kind.name()
                    ),
                )),
            },
            RawTop::Array(elements) => self.array(offset, elements),
        }
    }

    /// A top-level array: pages, `qemu-img map` entries, areas, or pairs; all of one kind.
    fn array(&mut self, offset: usize, elements: Vec<RawElement>) -> Result<(Gathered, Shape)> {
        let Some(first) = elements.first() else {
            self.warnings
                .push("the file is an empty JSON array: read as a list of no changed areas");
            return Ok((
                Gathered::Areas(Vec::new()),
                shape(Format::Pairs, Layout::Array),
            ));
        };
        let first_kind = element_kind(first);
        for (i, e) in elements.iter().enumerate() {
            let kind = element_kind(e);
            if kind != first_kind {
                return Err(self.refuse(
                    offset,
                    format!("array element {i} is {kind} but element 0 is {first_kind}: one change map holds one kind"),
                ));
            }
        }
        match first {
            RawElement::Pair(..) | RawElement::BadArray(_) => {
                let mut areas = Vec::with_capacity(elements.len());
                for (i, e) in elements.into_iter().enumerate() {
                    let (s, l) = match e {
                        RawElement::Pair(s, l) => (s, l),
                        RawElement::BadArray(n) => {
                            return Err(self.refuse(
                                offset,
                                format!("element {i}: an array of {n} values; a pair is [start, length]"),
                            ))
                        }
                        _ => (Num::NotNumber(Kind::Missing), Num::NotNumber(Kind::Missing)),
                    };
                    let here = format!("element {i}");
                    areas.push(self.area(Some(s), Some(l), &here, i, AreaKind::Element, offset)?);
                }
                Ok((Gathered::Areas(areas), shape(Format::Pairs, Layout::Array)))
            }
            RawElement::Scalar(kind) => Err(self.refuse(
                offset,
                format!("array element 0 is {kind}; expected pages, qemu-img map entries, [start, length] pairs or {{start, length}} areas"),
            )),
            RawElement::Object(o) => match classify(o) {
                ObjectKind::Page => {
                    let format = page_format(Some(o), false);
                    let mut pages = Vec::with_capacity(elements.len());
                    for (i, e) in elements.into_iter().enumerate() {
                        if let RawElement::Object(o) = e {
                            pages.push(self.page(o, i, offset, None)?);
                        }
                    }
                    Ok((Gathered::Pages(pages), shape(format, Layout::Array)))
                }
                ObjectKind::MapEntry => {
                    let mut pages = Vec::with_capacity(elements.len());
                    for (i, e) in elements.into_iter().enumerate() {
                        if let RawElement::Object(o) = e {
                            pages.push(self.map_entry(o, i, offset)?);
                        }
                    }
                    Ok((Gathered::Pages(pages), shape(Format::QemuDirtyBitmap, Layout::Array)))
                }
                ObjectKind::Area => {
                    let mut areas = Vec::with_capacity(elements.len());
                    for (i, e) in elements.into_iter().enumerate() {
                        if let RawElement::Object(o) = e {
                            let here = format!("element {i}");
                            let kind = AreaKind::Element;
                            areas.push(self.area(o.start, o.length, &here, i, kind, offset)?);
                        }
                    }
                    Ok((Gathered::Areas(areas), shape(Format::Areas, Layout::Array)))
                }
                ObjectKind::Wrapper => Err(self.refuse(
                    offset,
                    "an ArrayOfDiskChangeInfo inside a JSON array: give the pages themselves, or one ArrayOfDiskChangeInfo per line".into(),
                )),
            },
        }
    }

    /// Several top-level values: one page (or one `ArrayOfDiskChangeInfo`) per line.
    fn lines(&mut self, tops: Vec<(usize, RawTop)>) -> Result<(Gathered, Shape)> {
        let mut pages = Vec::new();
        let mut format = None;
        for (offset, top) in tops {
            let (line, _) = line_col(self.bytes, offset);
            let o = match top {
                RawTop::Object(o) => o,
                RawTop::Array(_) => {
                    return Err(self.refuse(
                        offset,
                        format!(
                        "line {line}: an array; JSON lines hold one DiskChangeInfo page per line"
                    ),
                    ))
                }
                RawTop::Scalar(kind) => {
                    return Err(self.refuse(
                        offset,
                        format!(
                            "line {line}: {kind}; JSON lines hold one DiskChangeInfo page per line"
                        ),
                    ))
                }
            };
            match classify(&o) {
                ObjectKind::Page => {
                    format.get_or_insert(page_format(Some(&o), false));
                    let index = pages.len();
                    pages.push(self.page(o, index, offset, Some(line))?);
                }
                ObjectKind::Wrapper => {
                    format.get_or_insert(page_format(None, true));
                    self.unwrap(o, offset, Some(line), &mut pages)?;
                }
                kind => {
                    return Err(self.refuse(
                        offset,
                        format!(
                            "line {line}: {}; JSON lines hold one DiskChangeInfo page per line",
                            kind.name()
                        ),
                    ))
                }
            }
        }
        let format = format.unwrap_or(Format::Govmomi);
        Ok((Gathered::Pages(pages), shape(format, Layout::JsonLines)))
    }

    /// The pages of an `ArrayOfDiskChangeInfo`, appended to `pages`.
    fn unwrap(
        &mut self,
        o: RawObject,
        offset: usize,
        line: Option<usize>,
        pages: &mut Vec<Page>,
    ) -> Result<()> {
        let at = line.map_or(String::new(), |l| format!("line {l}: "));
        if let Some(t) = o
            .type_name
            .as_deref()
            .filter(|t| **t != TypeTag::ArrayOfInfo)
        {
            return Err(self.refuse(offset, format!("{at}`_typeName` is {t} but the object holds `_value`; expected ArrayOfDiskChangeInfo")));
        }
        let Some(value) = o.value else {
            return Err(self.refuse(
                offset,
                format!("{at}an ArrayOfDiskChangeInfo without `_value`"),
            ));
        };
        for (i, e) in value.into_vec().into_iter().enumerate() {
            let index = pages.len();
            match e {
                RawElement::Object(p) if classify(&p) == ObjectKind::Page => {
                    pages.push(self.page(p, index, offset, line)?);
                }
                other => {
                    return Err(self.refuse(
                        offset,
                        format!(
                            "{at}`_value[{i}]` is {}, not a DiskChangeInfo page",
                            element_kind(&other)
                        ),
                    ))
                }
            }
        }
        Ok(())
    }

    /// One `DiskChangeInfo` page with its extents.
    fn page(
        &mut self,
        o: RawObject,
        index: usize,
        offset: usize,
        line: Option<usize>,
    ) -> Result<Page> {
        let mut here = format!("page {index}");
        if let Some(l) = line {
            here.push_str(&format!(" (line {l})"));
        }
        for t in [&o.type_name, &o.vim_type].into_iter().flatten() {
            if **t != TypeTag::Info {
                return Err(
                    self.refuse(offset, format!("{here}: type {t}, expected DiskChangeInfo"))
                );
            }
        }
        if o.request && o.length.is_none() {
            return Err(self.refuse(
                offset,
                format!("{here}: this is a QueryChangedDiskAreas request (deviceKey, changeId, snapshot), not the DiskChangeInfo it returns"),
            ));
        }
        if o.start_offset.is_none() && o.start.is_some() {
            return Err(self.refuse(
                offset,
                format!("{here}: has `start` but no `startOffset`; a DiskChangeInfo page starts at `startOffset`"),
            ));
        }
        let start = self.num(o.start_offset, "startOffset", &here, offset)?;
        let length = self.num(o.length, "length", &here, offset)?;
        let extents = match o.areas {
            None | Some(AreaList::Null) => Vec::new(),
            Some(AreaList::NotArray(kind)) => {
                return Err(self.refuse(
                    offset,
                    format!("{here}: `changedArea` is {kind}, not an array"),
                ))
            }
            Some(AreaList::List(list)) => list,
        };
        let mut areas = Vec::with_capacity(extents.len());
        for (j, e) in extents.into_iter().enumerate() {
            let at = format!("{here}, extent {j}");
            if let Some(kind) = e.not_object {
                return Err(self.refuse(
                    offset,
                    format!("{at}: {kind}, not a DiskChangeExtent object {{start, length}}"),
                ));
            }
            if e.start_offset {
                return Err(self.refuse(
                    offset,
                    format!(
                        "{at}: has `startOffset`, but a DiskChangeExtent's field is `start` \
                         (reading changedArea[i].startOffset is the known bug of the VDDK guide's sample)"
                    ),
                ));
            }
            if let Some(t) = e.type_tag.as_ref().filter(|t| **t != TypeTag::Extent) {
                return Err(
                    self.refuse(offset, format!("{at}: type {t}, expected DiskChangeExtent"))
                );
            }
            areas.push(self.area(e.start, e.length, &at, j, AreaKind::Extent, offset)?);
        }
        Ok(Page {
            kind: PageKind::Page,
            index,
            line,
            offset: offset as u64,
            start,
            length,
            areas,
        })
    }

    /// One `qemu-img map` entry of a dirty-bitmap export, as a page whose whole range is
    /// changed when `data` is false (docs/formats.md §4.7: the meaning is inverted).
    fn map_entry(&mut self, o: RawObject, index: usize, offset: usize) -> Result<Page> {
        let here = format!("map entry {index}");
        let start = self.num(o.start, "start", &here, offset)?;
        let length = self.num(o.length, "length", &here, offset)?;
        let dirty = match o.data {
            Some(Flag::Bool(data)) => !data,
            Some(Flag::NotBool(kind)) => {
                return Err(self.refuse(
                    offset,
                    format!("{here}: `data` is {kind}, not true or false"),
                ))
            }
            None => {
                return Err(self.refuse(
                    offset,
                    format!("{here}: missing `data` (false = dirty, true = clean)"),
                ))
            }
        };
        if o.zero == Some(Flag::Bool(true)) {
            self.warnings.push(format!(
                "{here} has `zero: true`, which a dirty-bitmap map never shows: this may be a plain \
                 allocation map (qemu-img map without x-dirty-bitmap), where `data: false` means \
                 unallocated, not dirty; treated as dirty"
            ));
        }
        let areas = if dirty {
            vec![Area {
                start,
                length,
                at: index,
                kind: AreaKind::Element,
                offset: offset as u64,
            }]
        } else {
            Vec::new()
        };
        Ok(Page {
            kind: PageKind::MapEntry,
            index,
            line: None,
            offset: offset as u64,
            start,
            length,
            areas,
        })
    }

    /// The area of element `at` (`here` in errors) of the document at `offset`, from its
    /// `start` and `length` fields.
    fn area(
        &self,
        start: Option<Num>,
        length: Option<Num>,
        here: &str,
        at: usize,
        kind: AreaKind,
        offset: usize,
    ) -> Result<Area> {
        Ok(Area {
            start: self.num(start, "start", here, offset)?,
            length: self.num(length, "length", here, offset)?,
            at,
            kind,
            offset: offset as u64,
        })
    }

    /// A field that must be an unsigned 64-bit integer.
    fn num(&self, n: Option<Num>, field: &str, here: &str, offset: usize) -> Result<u64> {
        let why = match n {
            Some(Num::U64(v)) => return Ok(v),
            None => format!("missing `{field}`"),
            Some(Num::Negative(v)) => format!("`{field}` is negative ({v})"),
            Some(Num::Float(v)) => format!(
                "`{field}` is {v:?}, not an unsigned 64-bit integer (fractions, exponents and values above 2^64-1 are refused)"
            ),
            Some(Num::NotNumber(kind)) => format!("`{field}` is {kind}, not a number"),
        };
        Err(self.refuse(offset, format!("{here}: {why}")))
    }
}

fn shape(format: Format, layout: Layout) -> Shape {
    Shape { format, layout }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip() {
        let text = b"ab\ncde\n\nf";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 4), (2, 2));
        assert_eq!(line_col(text, 7), (3, 1));
        assert_eq!(line_col(text, 8), (4, 1));
        assert_eq!(line_col(text, 99), (4, 2));
        for off in 0..text.len() {
            let (l, c) = line_col(text, off);
            assert_eq!(offset_of(text, l, c), off);
        }
        assert_eq!(offset_of(text, 9, 9), text.len());
    }
}
