//! Change maps (placeholder until the parser lands).
use diskray_core::{RangeSet, Result};
use std::path::Path;
/// A change map.
pub struct ChangeMap {
    /// Changed bytes.
    pub changed: RangeSet,
    /// Bytes not covered.
    pub uncovered: RangeSet,
    /// Warnings.
    pub warnings: Vec<String>,
}
/// Loads a change map.
pub fn load(path: &Path, _capacity: Option<u64>, _partial: bool) -> Result<ChangeMap> {
    Err(diskray_core::Error::refused(path, "not yet"))
}
