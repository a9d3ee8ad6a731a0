//! Warnings: damage worked around, odd input, overrides. A warning is a value like an
//! error (what, and where when known), printed to stderr as `diskray: warning: …` and
//! serialised in a JSON document's `warnings` array as its text (`docs/design.md` §3.2).

use serde::{Serialize, Serializer};
use std::fmt;
use std::path::{Path, PathBuf};

/// Something a reader should know that did not stop the work.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Warning {
    /// The file it is about, when the message does not already name it.
    pub path: Option<PathBuf>,
    /// The byte offset in that file, when known.
    pub offset: Option<u64>,
    /// What was found and what diskray did about it.
    pub message: String,
}

impl Warning {
    /// A warning whose message says all (it may name the file and offset itself).
    pub fn new(message: impl Into<String>) -> Self {
        Warning {
            path: None,
            offset: None,
            message: message.into(),
        }
    }

    /// A warning about the file `path` as a whole, shown as `PATH: MESSAGE`.
    pub fn about(path: &Path, message: impl Into<String>) -> Self {
        Warning {
            path: Some(path.to_path_buf()),
            offset: None,
            message: message.into(),
        }
    }

    /// A warning about `path` at byte `offset`, shown as `PATH: at byte N: MESSAGE`.
    pub fn at(path: &Path, offset: u64, message: impl Into<String>) -> Self {
        Warning {
            path: Some(path.to_path_buf()),
            offset: Some(offset),
            message: message.into(),
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.path {
            write!(f, "{}: ", p.display())?;
        }
        if let Some(o) = self.offset {
            write!(f, "at byte {o}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl From<String> for Warning {
    fn from(message: String) -> Self {
        Warning::new(message)
    }
}

impl From<&str> for Warning {
    fn from(message: &str) -> Self {
        Warning::new(message)
    }
}

/// Serialised as its text, so a JSON `warnings` array stays an array of strings.
impl Serialize for Warning {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_the_place_like_an_error() {
        let w = Warning::at(Path::new("d.vmdk"), 512, "grain table mismatch");
        let e = crate::Error::corrupt(Path::new("d.vmdk"), 512, "grain table mismatch");
        assert_eq!(w.to_string(), e.to_string());
        assert_eq!(Warning::new("plain").to_string(), "plain");
    }

    #[test]
    fn serialises_as_its_text() {
        let w = vec![Warning::at(Path::new("a"), 7, "b"), Warning::new("c")];
        assert_eq!(
            serde_json::to_string(&w).unwrap(),
            r#"["a: at byte 7: b","c"]"#
        );
    }
}
