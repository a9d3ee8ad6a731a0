//! Finding deleted entries by path. Deleted entries are not reached through live
//! directories (their directory may be gone too): [`Files::deleted`] lists them with the
//! paths they had, and these functions match those paths as text, with `.` and `..` taken
//! lexically.

use crate::files::{escape, Entry, Files};
use diskray_core::{Error, Lookup, Result};

/// `p` as an absolute path with `.`, `..` and repeated `/` resolved lexically.
pub fn normalise(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for s in p.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The deleted entries below `path` (its direct children, or everything below it when
/// `recursive`), with their paths.
pub fn deleted_below(fs: &dyn Files, path: &[u8], recursive: bool) -> Result<Vec<(String, Entry)>> {
    let path = normalise(&String::from_utf8_lossy(path));
    let prefix = if path == "/" {
        String::from("/")
    } else {
        format!("{path}/")
    };
    let mut found: Vec<(String, Entry)> = fs
        .deleted()?
        .into_iter()
        .filter(|(p, _)| path == "/" || p.starts_with(&prefix))
        .collect();
    if !recursive {
        found.retain(|(p, _)| {
            p.rsplit_once('/')
                .map(|(dir, _)| if dir.is_empty() { "/" } else { dir })
                == Some(path.as_str())
                || path != "/" && p.starts_with(&prefix) && !p[prefix.len()..].contains('/')
        });
    }
    Ok(found)
}

/// The deleted entry `ls --deleted` shows at `path` (case-insensitively where the
/// filesystem is), with its normalised path; refused when only its name survived.
pub fn find_deleted(fs: &dyn Files, path: &[u8]) -> Result<(String, Entry)> {
    let path = normalise(&String::from_utf8_lossy(path));
    let found = fs.deleted()?.into_iter().find(|(p, _)| {
        if fs.case_insensitive() {
            p.to_lowercase() == path.to_lowercase()
        } else {
            *p == path
        }
    });
    let (p, e) = found.ok_or_else(|| {
        Error::not_found(
            Lookup::DeletedEntry,
            escape(path.as_bytes()),
            fs.label(),
            "see ls --deleted -r",
        )
    })?;
    if e.name_only() {
        return Err(Error::refused(
            std::path::Path::new(&fs.label()),
            format!(
                "{}: only the name of this deleted file survived (inode 0): \
                 there is no content to recover",
                escape(path.as_bytes())
            ),
        ));
    }
    Ok((p, e))
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn dots_and_slashes_resolve_lexically() {
        assert_eq!(normalise(""), "/");
        assert_eq!(normalise("//a/./b/../c/"), "/a/c");
        assert_eq!(normalise("/../.."), "/");
    }
}
