//! LVM2's metadata text as a generic tree (LVM2 `libdm/libdm-config.c` grammar, as written
//! by `lib/format_text/export.c`): sections `name { ... }`, assignments `key = value`
//! where a value is a string (`"..."` with `\"` and `\\` escapes), an integer, a float or
//! a flat array `[v, v, ...]`, and `#` comments to the end of the line
//! (docs/formats.md §9.5). Parsed with nom; every size is bounded.

use nom::branch::alt;
use nom::bytes::complete::{tag, take_while, take_while1};
use nom::character::complete::{char, digit1, multispace1, not_line_ending};
use nom::combinator::{opt, recognize};
use nom::multi::many0_count;
use nom::sequence::pair;
use nom::{IResult, Parser};

/// Deepest nesting of sections accepted: real metadata nests five deep (VG,
/// `logical_volumes`, LV, segment); this refuses recursion bombs long before the stack.
pub const MAX_DEPTH: usize = 16;
/// Most sections, assignments and array items in one text: a VG of 10 000 LVs holds about
/// 300 000; this bounds the tree's memory on hostile text.
pub const MAX_NODES: usize = 4_000_000;
/// Longest identifier or string: LVM names are at most 127 bytes, descriptions a few KiB.
pub const MAX_TOKEN: usize = 64 * 1024;

/// A value on the right of `=`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// An integer.
    Int(i64),
    /// A float (LVM's config grammar allows them; metadata does not use them).
    Float(f64),
    /// A string, escapes resolved.
    Str(String),
    /// A flat array.
    Array(Vec<Value>),
}

/// `key = value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// The key.
    pub key: String,
    /// Byte position of the key in the text.
    pub pos: usize,
    /// The value.
    pub value: Value,
}

/// One item of a section.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// `key = value`.
    Assignment(Assignment),
    /// `name { ... }`.
    Section(Section),
}

/// `name { entries }`; the whole text is an unnamed section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Section {
    /// The name (empty for the whole text).
    pub name: String,
    /// Byte position of the name in the text.
    pub pos: usize,
    /// The items, in text order.
    pub entries: Vec<Entry>,
}

impl Section {
    /// The value of the first assignment to `key`.
    pub fn get(&self, key: &str) -> Option<&Assignment> {
        self.entries.iter().find_map(|e| match e {
            Entry::Assignment(a) if a.key == key => Some(a),
            _ => None,
        })
    }

    /// The first subsection named `name`.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections().find(|s| s.name == name)
    }

    /// The subsections, in text order.
    pub fn sections(&self) -> impl Iterator<Item = &Section> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Section(s) => Some(s),
            _ => None,
        })
    }
}

/// Why the text does not parse, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Byte position in the text.
    pub pos: usize,
    /// What was expected there (and what was found).
    pub reason: String,
}

type PResult<'a, T> = IResult<&'a str, T>;

/// Parses a whole metadata text (or a vgcfgbackup file).
pub fn parse(text: &[u8]) -> Result<Section, ParseError> {
    let s = std::str::from_utf8(text).map_err(|e| ParseError {
        pos: e.valid_up_to(),
        reason: "expected UTF-8 text, found an invalid byte".into(),
    })?;
    let mut p = TextParser { all: s, nodes: 0 };
    let (rest, entries) = p.entries(s, 0)?;
    let rest = skip(rest);
    if !rest.is_empty() {
        return Err(p.error(
            rest,
            "expected an assignment, a section or the end of the text",
        ));
    }
    Ok(Section {
        name: String::new(),
        pos: 0,
        entries,
    })
}

struct TextParser<'a> {
    all: &'a str,
    nodes: usize,
}

impl<'a> TextParser<'a> {
    fn pos(&self, at: &str) -> usize {
        self.all.len() - at.len()
    }

    fn error(&self, at: &str, expected: &str) -> ParseError {
        let found: String = at.chars().take(16).collect();
        ParseError {
            pos: self.pos(at),
            reason: if at.is_empty() {
                format!("{expected}, found the end of the text")
            } else {
                format!("{expected}, found {found:?}")
            },
        }
    }

    fn count(&mut self, at: &str) -> Result<(), ParseError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(self.error(at, &format!("expected at most {MAX_NODES} items")));
        }
        Ok(())
    }

    /// Items until `}` or the end of the text (the caller checks which).
    fn entries(
        &mut self,
        mut i: &'a str,
        depth: usize,
    ) -> Result<(&'a str, Vec<Entry>), ParseError> {
        let mut out = Vec::new();
        loop {
            i = skip(i);
            if i.is_empty() || i.starts_with('}') {
                return Ok((i, out));
            }
            let at = i;
            let (r, name) = identifier(i).map_err(|_| self.error(i, "expected an identifier"))?;
            if name.len() > MAX_TOKEN {
                return Err(self.error(
                    at,
                    &format!("expected an identifier of at most {MAX_TOKEN} bytes"),
                ));
            }
            self.count(at)?;
            let r = skip(r);
            if let Some(r) = r.strip_prefix('{') {
                if depth + 1 > MAX_DEPTH {
                    return Err(self.error(
                        at,
                        &format!("expected sections nested at most {MAX_DEPTH} deep"),
                    ));
                }
                let (r, entries) = self.entries(r, depth + 1)?;
                let Some(r) = r.strip_prefix('}') else {
                    return Err(self.error(r, &format!("expected '}}' closing section {name:?}")));
                };
                out.push(Entry::Section(Section {
                    name: name.to_string(),
                    pos: self.pos(at),
                    entries,
                }));
                i = r;
            } else if let Some(r) = r.strip_prefix('=') {
                let (r, value) = self.value(skip(r), true)?;
                out.push(Entry::Assignment(Assignment {
                    key: name.to_string(),
                    pos: self.pos(at),
                    value,
                }));
                i = r;
            } else {
                return Err(self.error(r, &format!("expected '=' or '{{' after {name:?}")));
            }
        }
    }

    fn value(&mut self, i: &'a str, array_allowed: bool) -> Result<(&'a str, Value), ParseError> {
        self.count(i)?;
        if i.starts_with('"') {
            return self.string(i);
        }
        if let Some(mut r) = i.strip_prefix('[') {
            if !array_allowed {
                return Err(self.error(i, "expected a string or a number (arrays do not nest)"));
            }
            let mut items = Vec::new();
            loop {
                r = skip(r);
                if let Some(rest) = r.strip_prefix(']') {
                    return Ok((rest, Value::Array(items)));
                }
                let (rest, v) = self.value(r, false)?;
                items.push(v);
                r = skip(rest);
                if let Some(rest) = r.strip_prefix(',') {
                    r = rest;
                } else if !r.starts_with(']') {
                    return Err(self.error(r, "expected ',' or ']' in an array"));
                }
            }
        }
        match number(i) {
            Ok((r, text)) => {
                let v = if text.contains('.') {
                    text.parse().map(Value::Float).ok()
                } else {
                    text.parse().map(Value::Int).ok()
                };
                v.map(|v| (r, v))
                    .ok_or_else(|| self.error(i, "expected a number that fits in 64 bits"))
            }
            Err(_) => Err(self.error(i, "expected a string, a number or an array")),
        }
    }

    fn string(&mut self, i: &'a str) -> Result<(&'a str, Value), ParseError> {
        let mut out = String::new();
        let mut chars = i[1..].char_indices();
        while let Some((k, c)) = chars.next() {
            match c {
                '"' => return Ok((&i[1 + k + 1..], Value::Str(out))),
                '\\' => match chars.next() {
                    Some((_, e)) => out.push(e),
                    None => break,
                },
                c => out.push(c),
            }
            if out.len() > MAX_TOKEN {
                return Err(self.error(
                    i,
                    &format!("expected a string of at most {MAX_TOKEN} bytes"),
                ));
            }
        }
        Err(self.error(i, "expected a closing '\"' (unterminated string)"))
    }
}

/// Whitespace, NUL padding and `#` comments.
fn skip(i: &str) -> &str {
    let r: PResult<'_, usize> = many0_count(alt((
        multispace1,
        take_while1(|c| c == '\0'),
        recognize(pair(char('#'), not_line_ending)),
    )))
    .parse(i);
    match r {
        Ok((rest, _)) => rest,
        Err(_) => i,
    }
}

/// A key or section name: LVM's name characters.
fn identifier(i: &str) -> PResult<'_, &str> {
    take_while1(|c: char| c.is_ascii_alphanumeric() || "_.+-".contains(c)).parse(i)
}

/// An integer or a float, with an optional sign.
fn number(i: &str) -> PResult<'_, &str> {
    recognize((
        opt(alt((tag("-"), tag("+")))),
        digit1,
        opt(pair(char('.'), take_while(|c: char| c.is_ascii_digit()))),
    ))
    .parse(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_shapes_lvm_writes() {
        let t = br#"vg0 {
    id = "abc"  # comment
    seqno = 7
    status = ["READ", "WRITE"]
    flags = []
    lv { stripes = [
        "pv0", 0,
        "pv1", -3
    ] }
}
contents = "Text \"Format\" \\ x"
ratio = 1.5
"#;
        let t = parse(t).unwrap();
        let vg = t.section("vg0").unwrap();
        assert_eq!(vg.get("seqno").unwrap().value, Value::Int(7));
        assert_eq!(vg.get("id").unwrap().value, Value::Str("abc".into()));
        assert_eq!(vg.get("flags").unwrap().value, Value::Array(vec![]));
        let lv = vg.section("lv").unwrap();
        assert_eq!(
            lv.get("stripes").unwrap().value,
            Value::Array(vec![
                Value::Str("pv0".into()),
                Value::Int(0),
                Value::Str("pv1".into()),
                Value::Int(-3)
            ])
        );
        assert_eq!(
            t.get("contents").unwrap().value,
            Value::Str("Text \"Format\" \\ x".into())
        );
        assert_eq!(t.get("ratio").unwrap().value, Value::Float(1.5));
    }

    #[test]
    fn errors_say_where() {
        let e = parse(b"vg {\n a = \"x\n}").unwrap_err();
        assert_eq!(e.pos, 10, "{e:?}");
        assert!(e.reason.contains("unterminated"), "{e:?}");
        let e = parse(b"vg { a = 1 ").unwrap_err();
        assert!(e.reason.contains("closing section"), "{e:?}");
        let e = parse(b"vg { a = [[1]] }").unwrap_err();
        assert!(e.reason.contains("do not nest"), "{e:?}");
        assert!(parse(b"a = 99999999999999999999").is_err());
        assert!(parse(b"}").is_err());
        assert!(parse(b"a = ").is_err());
        assert!(parse(&[0xff]).is_err());
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion_trouble() {
        let mut t = String::new();
        for _ in 0..100_000 {
            t.push_str("a {");
        }
        let e = parse(t.as_bytes()).unwrap_err();
        assert!(e.reason.contains("nested"), "{e:?}");
    }
}
