//! vSphere change ids (`<epoch>/<seq>`) and the rule that decides whether an incremental
//! backup may follow the previous one.
//!
//! Source: `docs/formats.md` §4.2 (form `<UUID>/<seq>`, split at the **last** `/`, the
//! left part an opaque epoch, the right part a u64 sequence; an empty value means CBT is
//! off; a new epoch means tracking was reset) and §4.6 (the stored change id must match
//! the base image's epoch and the sequence must not decrease).

use crate::limits::MAX_CHANGE_ID_BYTES;
use diskray_core::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// A parsed change id such as `52 90 37 ee 50 dc cb 6b-b3 12 7c 48 06 19 7f d4/1`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChangeId {
    epoch: String,
    seq: u64,
}

impl ChangeId {
    /// Parses `<epoch>/<seq>`, splitting at the last `/`. Surrounding whitespace is
    /// ignored; an empty id, `*`, an empty epoch, control characters, or a sequence that is
    /// not a decimal `u64` are refused with [`Error::InvalidArgument`] saying why.
    pub fn parse(text: &str) -> Result<ChangeId> {
        let t = text.trim();
        let refuse = |why: &str| {
            let shown: String = t.chars().take(80).collect();
            Error::invalid("change id", format!("{shown:?}"), why)
        };
        if t.is_empty() {
            return Err(refuse(
                "empty: an empty change id means change tracking is off, so a full backup is needed",
            ));
        }
        if t.len() > MAX_CHANGE_ID_BYTES {
            return Err(refuse(&format!(
                "longer than {MAX_CHANGE_ID_BYTES} bytes; a change id is a UUID, `/` and a number"
            )));
        }
        if t == "*" {
            return Err(refuse(
                "`*` asks QueryChangedDiskAreas for all allocated areas; it is not a change id",
            ));
        }
        if t.chars().any(char::is_control) {
            return Err(refuse("holds control characters"));
        }
        let Some((epoch, seq)) = t.rsplit_once('/') else {
            return Err(refuse(
                "no `/`: expected <epoch>/<sequence>, e.g. `52 90 … d4/1`",
            ));
        };
        if epoch.trim().is_empty() {
            return Err(refuse("the epoch before the last `/` is empty"));
        }
        if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return Err(refuse(
                "the sequence after the last `/` is not a decimal number",
            ));
        }
        let seq = seq
            .parse::<u64>()
            .map_err(|_| refuse("the sequence after the last `/` is larger than 2^64-1"))?;
        Ok(ChangeId {
            epoch: epoch.to_string(),
            seq,
        })
    }

    /// The opaque epoch (the part before the last `/`).
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// The sequence number (the part after the last `/`).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Whether this id may follow `previous` (the id stored with the base image): the
    /// epoch must be the same and the sequence must not decrease. The error says which
    /// rule failed and that a full rescan is needed.
    pub fn continues(&self, previous: &ChangeId) -> std::result::Result<(), Discontinuity> {
        if self.epoch != previous.epoch {
            return Err(Discontinuity::NewEpoch {
                previous: previous.epoch.clone(),
                now: self.epoch.clone(),
            });
        }
        if self.seq < previous.seq {
            return Err(Discontinuity::Backwards {
                previous: previous.seq,
                now: self.seq,
            });
        }
        Ok(())
    }
}

/// Why a change id does not continue the base image's (a full rescan is then needed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Discontinuity {
    /// Change tracking was reset: another epoch.
    #[error("new epoch: tracking was reset, a full rescan is needed (previous epoch {previous:?}, now {now:?})")]
    NewEpoch {
        /// The base image's epoch.
        previous: String,
        /// The epoch now.
        now: String,
    },
    /// The sequence number decreased.
    #[error("sequence went backwards ({now} after {previous}): the change id does not follow the base image's, a full rescan is needed")]
    Backwards {
        /// The base image's sequence number.
        previous: u64,
        /// The sequence number now.
        now: u64,
    },
}

impl FromStr for ChangeId {
    type Err = Error;
    fn from_str(s: &str) -> Result<ChangeId> {
        ChangeId::parse(s)
    }
}

impl fmt::Display for ChangeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.epoch, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VSPHERE: &str = "52 90 37 ee 50 dc cb 6b-b3 12 7c 48 06 19 7f d4/1";

    #[test]
    fn parses_the_vsphere_form_at_the_last_slash() {
        let id = ChangeId::parse(VSPHERE).unwrap();
        assert_eq!(
            id.epoch(),
            "52 90 37 ee 50 dc cb 6b-b3 12 7c 48 06 19 7f d4"
        );
        assert_eq!(id.seq(), 1);
        assert_eq!(id.to_string(), VSPHERE);
        let id = ChangeId::parse(" a/b/18446744073709551615\n").unwrap();
        assert_eq!((id.epoch(), id.seq()), ("a/b", u64::MAX));
    }

    #[test]
    fn refuses_garbage_with_a_reason() {
        for (bad, why) in [
            ("", "change tracking is off"),
            ("   ", "change tracking is off"),
            ("*", "not a change id"),
            ("abc", "no `/`"),
            ("/5", "epoch"),
            ("abc/", "not a decimal"),
            ("abc/-1", "not a decimal"),
            ("abc/1.5", "not a decimal"),
            ("abc/+1", "not a decimal"),
            ("abc/18446744073709551616", "larger than"),
            ("a\u{0}b/1", "control"),
        ] {
            let e = ChangeId::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        let long = format!("{}/1", "x".repeat(MAX_CHANGE_ID_BYTES));
        assert!(ChangeId::parse(&long).is_err());
    }

    #[test]
    fn continues_only_in_the_same_epoch_without_going_back() {
        let p = ChangeId::parse("e1/5").unwrap();
        assert!(ChangeId::parse("e1/5").unwrap().continues(&p).is_ok());
        assert!(ChangeId::parse("e1/9").unwrap().continues(&p).is_ok());
        let e = ChangeId::parse("e1/4")
            .unwrap()
            .continues(&p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("backwards"), "{e}");
        let e = ChangeId::parse("e2/6")
            .unwrap()
            .continues(&p)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("new epoch: tracking was reset, a full rescan is needed"),
            "{e}"
        );
    }
}
