//! The ad hoc CSV change list of `docs/formats.md` §4.3: one `offset,length` per line,
//! in bytes, decimal. Blank lines and `#` comments (whole line or trailing) are skipped;
//! the first data line may be a header (it holds a letter, e.g. `offset,length`).

use crate::gathered::{Area, AreaKind, Warnings};
use crate::limits::MAX_ITEMS;
use diskray_core::{Error, Result};
use std::path::Path;

/// Reads every `offset,length` line as an area.
pub(crate) fn gather(bytes: &[u8], path: &Path, warnings: &mut Warnings) -> Result<Vec<Area>> {
    let mut areas = Vec::new();
    let mut offset = 0usize;
    let mut seen_data = false;
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line_no = i + 1;
        let line_offset = offset;
        offset = offset.saturating_add(raw.len() + 1);
        let content = raw.split(|&b| b == b'#').next().unwrap_or_default();
        let content = content.trim_ascii();
        if content.is_empty() {
            continue;
        }
        let refuse = |why: String| {
            Error::corrupt(path, line_offset as u64, format!("line {line_no}: {why}"))
        };
        let first_data = !seen_data;
        seen_data = true;
        let fields: Vec<&[u8]> = content.split(|&b| b == b',').collect();
        // A header names its columns: every field starts with a letter or a quote (so a
        // data line such as `0x10,0x20` is refused below, never skipped as a header).
        if first_data
            && fields.len() >= 2
            && fields.iter().all(|f| {
                f.trim_ascii()
                    .first()
                    .is_some_and(|b| b.is_ascii_alphabetic() || b"\"'_".contains(b))
            })
        {
            continue;
        }
        if fields.len() != 2 {
            let found = match fields.len() {
                1 => "no comma".to_string(),
                n => format!("{n} fields"),
            };
            return Err(refuse(format!("{found}; a change line is `offset,length`")));
        }
        let start = number(fields[0], "offset").map_err(|e| refuse(e.to_string()))?;
        let length = number(fields[1], "length").map_err(|e| refuse(e.to_string()))?;
        if areas.len() >= MAX_ITEMS {
            return Err(Error::refused(
                path,
                format!("more than {MAX_ITEMS} lines (the limit of one change map)"),
            ));
        }
        areas.push(Area {
            start,
            length,
            at: line_no,
            kind: AreaKind::Line,
            offset: line_offset as u64,
        });
    }
    if areas.is_empty() {
        warnings.push("the CSV holds no `offset,length` line: read as no changed areas");
    }
    Ok(areas)
}

/// Why a CSV field is not an unsigned decimal number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// Nothing there.
    #[error("empty `{0}`")]
    Empty(&'static str),
    /// A minus sign.
    #[error("`{0}` is negative ({1})")]
    Negative(&'static str, String),
    /// A fraction or an exponent.
    #[error("`{0}` is {1}, not an unsigned integer (fractions and exponents are refused)")]
    Fraction(&'static str, String),
    /// Not digits.
    #[error("`{0}` is {1:?}, not a decimal number")]
    NotDecimal(&'static str, String),
    /// Above `u64::MAX`.
    #[error("`{0}` {1} is larger than 2^64-1")]
    TooLarge(&'static str, String),
}

/// A decimal `u64` field; negative numbers, fractions and anything else are refused.
fn number(field: &[u8], name: &'static str) -> std::result::Result<u64, NumberError> {
    let f = field.trim_ascii();
    let shown = || String::from_utf8_lossy(&f[..f.len().min(40)]).into_owned();
    if f.is_empty() {
        return Err(NumberError::Empty(name));
    }
    if f.first() == Some(&b'-') {
        return Err(NumberError::Negative(name, shown()));
    }
    if !f.iter().all(u8::is_ascii_digit) {
        if f.iter().all(|b| b.is_ascii_digit() || b".eE+".contains(b)) {
            return Err(NumberError::Fraction(name, shown()));
        }
        return Err(NumberError::NotDecimal(name, shown()));
    }
    // Digits only: the one failure left is overflow.
    std::str::from_utf8(f)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| NumberError::TooLarge(name, shown()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(number(b" 18446744073709551615 ", "x"), Ok(u64::MAX));
        assert!(number(b"18446744073709551616", "x")
            .unwrap_err()
            .to_string()
            .contains("larger"));
        assert!(number(b"-0", "x")
            .unwrap_err()
            .to_string()
            .contains("negative"));
        assert!(number(b"1e3", "x")
            .unwrap_err()
            .to_string()
            .contains("fractions"));
        assert!(number(b"", "x").unwrap_err().to_string().contains("empty"));
        assert!(number(b"\xff", "x")
            .unwrap_err()
            .to_string()
            .contains("not a decimal"));
    }
}
