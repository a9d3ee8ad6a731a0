//! Steps 2–4 of `docs/formats.md` §4.3 and the paging rule of §4.4: the pages must tile
//! `[0, capacity)` contiguously (a zero-length last page at the capacity is what govmomi
//! returns), every area must lie inside its page and below the capacity, then the areas
//! are sorted and merged. Gaps and overlaps between pages are refused, naming the known
//! buggy query loops of §4.4 when the numbers match one; a short cover is refused unless
//! the caller accepts a partial map, whose uncovered tail is then reported.

use crate::change_map::ChangeMap;
use crate::gathered::{Area, Gathered, Page, Warnings};
use crate::shape::Shape;
use diskray_core::{ByteRange, Error, RangeSet, Result};
use std::path::Path;

/// Checks and merges gathered pages or areas into a [`ChangeMap`].
pub(crate) fn normalise(
    gathered: Gathered,
    shape: Shape,
    path: &Path,
    capacity: Option<u64>,
    partial: bool,
    mut warnings: Warnings,
) -> Result<ChangeMap> {
    let (capacity, changed, uncovered) = match gathered {
        Gathered::Pages(pages) => pages_map(pages, path, capacity, partial, &mut warnings)?,
        Gathered::Areas(areas) => {
            let Some(capacity) = capacity else {
                return Err(Error::refused(
                    path,
                    format!(
                        "a {} list has no pages, so it does not say the disk's capacity: give the capacity",
                        shape.format.name()
                    ),
                ));
            };
            warnings.push(format!(
                "a {} list has no pages: it cannot show that the whole disk was queried",
                shape.format.name()
            ));
            let mut changed = RangeSet::new();
            add_areas(
                &mut changed,
                &areas,
                None,
                capacity,
                path,
                &mut warnings,
                "the list",
            )?;
            (capacity, changed, RangeSet::new())
        }
    };
    Ok(ChangeMap {
        capacity,
        changed,
        uncovered,
        source: shape,
        warnings: warnings.finish(),
    })
}

/// The tiling checks of §4.4 and the areas of every page.
fn pages_map(
    mut pages: Vec<Page>,
    path: &Path,
    capacity: Option<u64>,
    partial: bool,
    warnings: &mut Warnings,
) -> Result<(u64, RangeSet, RangeSet)> {
    for p in &pages {
        if p.start.checked_add(p.length).is_none() {
            return Err(Error::corrupt(
                path,
                p.offset,
                format!(
                    "{p}: startOffset {} + length {} overflows 64 bits",
                    p.start, p.length
                ),
            ));
        }
    }
    if pages.windows(2).any(|w| w[1].start < w[0].start) {
        warnings
            .push("pages are not in offset order: sorted before checking that they tile the disk");
        pages.sort_by_key(|p| p.start);
    }
    let covered_end = match pages.first() {
        None => 0,
        Some(first) if first.start != 0 => {
            return Err(Error::corrupt(
                path,
                first.offset,
                format!(
                    "{first} starts at {}: the first page must start at offset 0 (the query loop starts at 0)",
                    first.start
                ),
            ))
        }
        Some(_) => tile(&pages, path, warnings)?,
    };
    let capacity = capacity.unwrap_or(covered_end);
    if pages.is_empty() && !partial {
        return Err(Error::refused(
            path,
            format!("no pages: nothing of the capacity {capacity} was queried"),
        ));
    }
    if covered_end > capacity {
        return Err(Error::refused(
            path,
            format!(
                "pages cover [0, {covered_end}), past the capacity {capacity}: the disk was resized \
                 or the wrong capacity was given (a capacity change needs a rescan)"
            ),
        ));
    }
    let mut uncovered = RangeSet::new();
    if covered_end < capacity {
        if !partial {
            return Err(Error::refused(
                path,
                short_cover_message(&pages, covered_end, capacity),
            ));
        }
        uncovered.insert(ByteRange::from_bounds(covered_end, capacity));
        warnings.push(format!(
            "pages cover [0, {covered_end}) of capacity {capacity}: [{covered_end}, {capacity}) was not queried and must be treated as changed"
        ));
    }
    let mut changed = RangeSet::new();
    for p in &pages {
        let page = ByteRange::new(p.start, p.length);
        add_areas(
            &mut changed,
            &p.areas,
            Some(page),
            capacity,
            path,
            warnings,
            &p.to_string(),
        )?;
    }
    Ok((capacity, changed, uncovered))
}

/// Checks that sorted pages follow each other without gap or overlap; returns the end.
fn tile(pages: &[Page], path: &Path, warnings: &mut Warnings) -> Result<u64> {
    let mut end = 0u64;
    for (i, p) in pages.iter().enumerate() {
        if i > 0 {
            let prev = &pages[i - 1];
            if p.start > end {
                return Err(Error::corrupt(path, p.offset, gap_message(prev, p, end)));
            }
            if p.start < end {
                return Err(Error::corrupt(
                    path,
                    p.offset,
                    overlap_message(prev, p, end),
                ));
            }
        }
        end = p.start + p.length; // no overflow: checked by the caller
        if p.length == 0 && i + 1 < pages.len() {
            warnings.push(format!(
                "{p} is empty at offset {} before the last page: a loop that gets it does not advance",
                p.start
            ));
        }
    }
    Ok(end)
}

fn gap_message(prev: &Page, p: &Page, end: u64) -> String {
    let mut m = format!(
        "pages leave a gap: {prev} ends at {end} but {p} starts at {}; the next query must start at startOffset + length",
        p.start
    );
    if prev.start > 0 && p.start.checked_sub(end) == Some(prev.start) {
        m.push_str(&format!(
            " (the gap is {prev}'s startOffset {}: the known bug `offset += startOffset + length`, which double counts)",
            prev.start
        ));
    }
    m
}

fn overlap_message(prev: &Page, p: &Page, end: u64) -> String {
    let mut m = format!(
        "pages overlap: {prev} ends at {end} but {p} starts at {}",
        p.start
    );
    let last_area_end = prev
        .areas
        .iter()
        .map(|a| a.start.saturating_add(a.length))
        .max();
    if p.start == prev.start {
        m.push_str(
            ": the same offset was queried twice (a loop that does not advance re-queries forever)",
        );
    } else if last_area_end == Some(p.start) {
        m.push_str(
            ": it starts where the previous page's last area ends (the known bug of taking the \
             next offset from the end of the last extent, which re-queries)",
        );
    } else {
        m.push_str("; the next query must start at startOffset + length");
    }
    m
}

fn short_cover_message(pages: &[Page], covered_end: u64, capacity: u64) -> String {
    let mut m = format!(
        "pages cover [0, {covered_end}) of capacity {capacity}: the query loop stopped early \
         (stopping at the first empty page is a known bug)"
    );
    if let Some(last) = pages.last() {
        if last.areas.is_empty() && last.length > 0 {
            m.push_str(&format!("; the last page, {last}, has no changed area"));
        }
        if pages.len() == 1 && last.length > 0 {
            m.push_str(
                "; with a single page, comparing the next offset with the page length instead \
                 of the capacity is another known bug",
            );
        }
    }
    m.push_str("; pass `partial` to treat the rest as changed");
    m
}

/// Adds the areas of one page (or of a page-less list) to `set`, after the §4.3 step-3
/// checks.
fn add_areas(
    set: &mut RangeSet,
    areas: &[Area],
    page: Option<ByteRange>,
    capacity: u64,
    path: &Path,
    warnings: &mut Warnings,
    owner: &str,
) -> Result<()> {
    let (mut unsorted, mut overlapping) = (false, false);
    let (mut prev_start, mut prev_end) = (0u64, 0u64);
    for (i, a) in areas.iter().enumerate() {
        let here = |why: String| {
            let at = if page.is_some() {
                format!("{owner}, {a}")
            } else {
                a.to_string()
            };
            Error::corrupt(path, a.offset, format!("{at}: {why}"))
        };
        let Some(end) = a.start.checked_add(a.length) else {
            return Err(here(format!(
                "start {} + length {} overflows 64 bits",
                a.start, a.length
            )));
        };
        if end > capacity {
            return Err(here(format!(
                "area [{}, {end}) runs past the capacity {capacity}",
                a.start
            )));
        }
        if let Some(pg) = page {
            if a.start < pg.start || end > pg.end() {
                return Err(here(format!(
                    "area [{}, {end}) lies outside its page [{}, {})",
                    a.start,
                    pg.start,
                    pg.end()
                )));
            }
        }
        if i > 0 {
            unsorted |= a.start < prev_start;
            overlapping |= a.start >= prev_start && a.start < prev_end;
        }
        prev_start = a.start;
        prev_end = prev_end.max(end);
        set.insert(ByteRange::new(a.start, a.length));
    }
    if unsorted || overlapping {
        let what = match (unsorted, overlapping) {
            (true, true) => "unsorted and overlapping",
            (true, false) => "unsorted",
            _ => "overlapping",
        };
        warnings.push(format!("{owner}: areas are {what}; sorted and merged"));
    }
    Ok(())
}
