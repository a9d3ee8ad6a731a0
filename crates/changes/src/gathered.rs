//! Step 1 of `docs/formats.md` §4.3 ("gather the pages"): the pages and areas of a file
//! with every number checked to be a `u64`, before the tiling and capacity checks of
//! [`crate::normalise`]. Each item remembers where it came from for error messages.

use crate::limits::MAX_WARNINGS;
use diskray_core::Warning;
use std::fmt;

/// What a page is called in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PageKind {
    /// A `DiskChangeInfo` page.
    Page,
    /// A `qemu-img map` entry.
    MapEntry,
}

/// One page (a `DiskChangeInfo`, or a `qemu-img map` entry) with its areas.
#[derive(Debug)]
pub(crate) struct Page {
    /// Page or map entry.
    pub kind: PageKind,
    /// Index among the file's pages (0-based, file order).
    pub index: usize,
    /// 1-based line of the file where the page starts, for JSON lines.
    pub line: Option<usize>,
    /// Byte offset of the JSON value holding the page.
    pub offset: u64,
    /// `startOffset`.
    pub start: u64,
    /// `length`.
    pub length: u64,
    /// The page's `changedArea` (for a map entry: the entry itself when dirty).
    pub areas: Vec<Area>,
}

impl fmt::Display for Page {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            PageKind::Page => write!(f, "page {}", self.index)?,
            PageKind::MapEntry => write!(f, "map entry {}", self.index)?,
        }
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        Ok(())
    }
}

/// What an area is called in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AreaKind {
    /// `changedArea[i]` of a page.
    Extent,
    /// Element `i` of a top-level JSON array.
    Element,
    /// A CSV line (`at` is the 1-based line number).
    Line,
}

/// One changed area as given, with where it was found.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Area {
    /// First changed byte.
    pub start: u64,
    /// Number of changed bytes.
    pub length: u64,
    /// Extent index, element index or line number (see `kind`).
    pub at: usize,
    /// What `at` counts.
    pub kind: AreaKind,
    /// Byte offset of the line or JSON value holding it.
    pub offset: u64,
}

impl fmt::Display for Area {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            AreaKind::Extent => write!(f, "extent {}", self.at),
            AreaKind::Element => write!(f, "element {}", self.at),
            AreaKind::Line => write!(f, "line {}", self.at),
        }
    }
}

/// Everything gathered from one file.
#[derive(Debug)]
pub(crate) enum Gathered {
    /// Pages that claim to tile `[0, capacity)`.
    Pages(Vec<Page>),
    /// Areas without pages (ad hoc shapes): they cannot show that the whole disk was
    /// queried.
    Areas(Vec<Area>),
}

/// Warnings, bounded to [`MAX_WARNINGS`] (the rest are counted).
#[derive(Debug, Default)]
pub(crate) struct Warnings {
    kept: Vec<Warning>,
    dropped: usize,
}

impl Warnings {
    /// Adds a warning (counted only, once the limit is reached).
    pub fn push(&mut self, w: impl Into<Warning>) {
        if self.kept.len() < MAX_WARNINGS {
            self.kept.push(w.into());
        } else {
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    /// The warnings, with a last line counting those left out.
    pub fn finish(mut self) -> Vec<Warning> {
        if self.dropped > 0 {
            self.kept.push(Warning::new(format!(
                "… and {} more warnings",
                self.dropped
            )));
        }
        self.kept
    }
}
