//! Where the files a descriptor names may be: inside the directory of the file that names
//! them, unless the user explicitly allows otherwise (`docs/design.md` invariant 4;
//! cloud-hypervisor #8713). Parent hints written on other hosts (Windows paths,
//! `/vmfs/volumes/...`) fall back to their base name beside the child.

use diskray_core::{Error, Result};
use std::path::{Path, PathBuf};

/// True when `name` is absolute on any host VMware runs on (`/x`, `C:\x`, `\\server\x`).
fn is_absolute(name: &str) -> bool {
    let b = name.as_bytes();
    name.starts_with('/')
        || name.starts_with('\\')
        || (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':')
}

/// The components of `name`, splitting on both `/` and `\`.
fn components(name: &str) -> impl Iterator<Item = &str> {
    name.split(['/', '\\'])
        .filter(|c| !c.is_empty() && *c != ".")
}

/// True when `name` stays inside the directory it is relative to.
pub fn is_contained(name: &str) -> bool {
    !name.is_empty() && !is_absolute(name) && components(name).all(|c| c != "..")
}

/// The last component of `name` (splitting on `/` and `\`).
pub fn base_name(name: &str) -> Option<&str> {
    components(name).last().filter(|c| *c != "..")
}

/// Resolves an extent file name written in `descriptor` (on line `line`).
pub fn resolve_extent(
    descriptor: &Path,
    name: &str,
    line: usize,
    allow_outside: bool,
) -> Result<PathBuf> {
    let dir = descriptor.parent().unwrap_or(Path::new("."));
    if is_contained(name) {
        return Ok(dir.join(components(name).collect::<Vec<_>>().join("/")));
    }
    if allow_outside && !name.contains('\\') {
        return Ok(if name.starts_with('/') {
            PathBuf::from(name)
        } else {
            dir.join(name)
        });
    }
    Err(Error::refused(
        descriptor,
        format!(
        "descriptor line {line}: extent file {name:?} lies outside the descriptor's directory; \
         refusing it (pass --allow-outside-paths to permit)"),
    ))
}

/// Finds the parent of `child` from its `parentFileNameHint`: the hint itself when it is
/// contained (or allowed), else the hint's base name beside the child.
pub fn resolve_parent(child: &Path, hint: &str, allow_outside: bool) -> Result<PathBuf> {
    let dir = child.parent().unwrap_or(Path::new("."));
    let mut tried = Vec::new();
    if is_contained(hint) {
        tried.push(dir.join(components(hint).collect::<Vec<_>>().join("/")));
    } else if allow_outside && hint.starts_with('/') {
        tried.push(PathBuf::from(hint));
    }
    if let Some(base) = base_name(hint) {
        let beside = dir.join(base);
        if !tried.contains(&beside) {
            tried.push(beside);
        }
    }
    if let Some(found) = tried.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let looked: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    Err(Error::refused(
        child,
        format!(
            "parent disk {hint:?} not found (looked at: {}){}",
            if looked.is_empty() {
                "nothing usable".to_string()
            } else {
                looked.join(", ")
            },
            if !is_contained(hint) && !allow_outside {
                "; the hint lies outside the child's directory (--allow-outside-paths permits it)"
            } else {
                ""
            }
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containment() {
        for ok in ["a.vmdk", "sub/a.vmdk", "./a", "sub\\a.vmdk"] {
            assert!(is_contained(ok), "{ok}");
        }
        for bad in [
            "",
            "../a",
            "/etc/passwd",
            "C:\\x.vmdk",
            "\\\\srv\\x",
            "sub/../../a",
            "..\\a",
        ] {
            assert!(!is_contained(bad), "{bad}");
        }
        assert_eq!(base_name("C:\\VMs\\base.vmdk"), Some("base.vmdk"));
        assert_eq!(
            base_name("/vmfs/volumes/ds1/vm/base.vmdk"),
            Some("base.vmdk")
        );
        assert_eq!(base_name(".."), None);
    }

    #[test]
    fn extent_refusal_names_descriptor_and_line() {
        let e = resolve_extent(Path::new("/d/x.vmdk"), "../o.raw", 7, false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x.vmdk") && e.contains("line 7") && e.contains("outside"),
            "{e}"
        );
        assert_eq!(
            resolve_extent(Path::new("/d/x.vmdk"), "sub\\y", 1, false).unwrap(),
            PathBuf::from("/d/sub/y")
        );
        assert_eq!(
            resolve_extent(Path::new("/d/x.vmdk"), "/abs", 1, true).unwrap(),
            PathBuf::from("/abs")
        );
    }
}
