//! Which of the accepted change-map shapes a file had: the dialect of its objects and the
//! way its pages or areas are laid out in the file.
//!
//! Source: `docs/formats.md` §4.3 (vSphere JSON API, pyVmomi `VmomiJSONEncoder`,
//! govmomi/govc, ad hoc shapes) and §4.7 (`qemu-img map` of a dirty bitmap over NBD).

use serde::Serialize;
use std::fmt;

/// The shape a change map was read from (or how it was computed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Shape {
    /// The dialect of the objects.
    pub format: Format,
    /// How the pages or areas are laid out in the file.
    pub layout: Layout,
}

/// The dialect of a change map's objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// vSphere JSON API: `_typeName` `DiskChangeInfo` / `DiskChangeExtent`.
    VsphereJson,
    /// pyVmomi `VmomiJSONEncoder`: `_vimtype`, with `dynamicType` / `dynamicProperty`.
    Pyvmomi,
    /// pyVmomi `VmomiJSONEncoder(strip_dynamic=True)`: `_vimtype` without `dynamic*` keys.
    PyvmomiStripped,
    /// The bare data object in camelCase (govmomi / govc; `changedArea` omitted when empty).
    Govmomi,
    /// The data object with snake_case keys (`start_offset`, `changed_area`).
    SnakeCase,
    /// Ad hoc `[[start, length], …]`: areas without pages.
    Pairs,
    /// Ad hoc `[{"start": …, "length": …}, …]`: areas without pages.
    Areas,
    /// Ad hoc CSV lines `offset,length`: areas without pages.
    Csv,
    /// `qemu-img map --output=json` of an NBD export with `x-dirty-bitmap`
    /// (`data: false` = dirty).
    QemuDirtyBitmap,
    /// Computed by [`crate::diff()`] from two disks.
    Diff,
}

/// How the pages or areas sit in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// One JSON object (one page).
    Object,
    /// A JSON array (of pages, map entries, pairs or areas).
    Array,
    /// vSphere's `{"_typeName":"ArrayOfDiskChangeInfo","_value":[…]}`.
    ArrayOfDiskChangeInfo,
    /// Several JSON values, one page per line.
    JsonLines,
    /// Text lines (CSV).
    Lines,
    /// Not read from a file.
    Computed,
}

impl Format {
    /// True for the shapes that carry pages, so coverage of the disk can be checked.
    pub fn has_pages(self) -> bool {
        !matches!(self, Format::Pairs | Format::Areas | Format::Csv)
    }

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Format::VsphereJson => "vSphere JSON API",
            Format::Pyvmomi => "pyVmomi VmomiJSONEncoder",
            Format::PyvmomiStripped => "pyVmomi VmomiJSONEncoder (strip_dynamic)",
            Format::Govmomi => "govmomi/govc",
            Format::SnakeCase => "snake_case DiskChangeInfo",
            Format::Pairs => "[[start, length], …] pairs",
            Format::Areas => "[{start, length}, …] areas",
            Format::Csv => "CSV offset,length",
            Format::QemuDirtyBitmap => "qemu-img map of a dirty bitmap",
            Format::Diff => "diff of two disks",
        }
    }
}

impl Layout {
    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Object => "one object",
            Layout::Array => "JSON array",
            Layout::ArrayOfDiskChangeInfo => "ArrayOfDiskChangeInfo",
            Layout::JsonLines => "JSON lines",
            Layout::Lines => "text lines",
            Layout::Computed => "computed",
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, {}", self.format.name(), self.layout.name())
    }
}
