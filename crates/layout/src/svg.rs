//! `report --svg`: the disk as a strip coloured by class, with partition labels and a
//! legend.

use crate::classes::Classes;
use crate::tree::Layout;
use diskray_core::human;
use diskray_core::{ByteRange, RangeSet};
use std::fmt::Write;

/// Columns of the strip.
const COLUMNS: usize = 1000;
const LEFT: f64 = 20.0;
const STRIP_Y: f64 = 60.0;
const STRIP_H: f64 = 80.0;

/// The colour a class is drawn in.
fn colour(class: &str) -> &'static str {
    match class {
        "unallocated" => "#f2f2f2",
        "zero" => "#d9d9d9",
        "used" => "#2b7bba",
        "metadata" => "#173f5f",
        "free_zero" => "#a8d5a2",
        "free_residue" => "#e4572e",
        "vg_free" => "#cfe8f3",
        "excluded" => "#f3a712",
        _ => "#8e6c8a", // unknown
    }
}

/// Draws the SVG document.
pub fn draw(title: &str, cap: u64, layout: &Layout, c: &Classes) -> String {
    let named = c.named();
    let width = LEFT * 2.0 + COLUMNS as f64;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="230" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{LEFT}" y="20" font-size="14" font-weight="bold">{} — {}</text>"#,
        escape(title),
        human::size(cap)
    );
    let col_bytes = cap.div_ceil(COLUMNS as u64).max(1);
    for col in 0..COLUMNS {
        let span = RangeSet::from_iter([ByteRange::new(col as u64 * col_bytes, col_bytes)]);
        let mut y = STRIP_Y;
        for (name, set) in &named {
            let b = set.intersection(&span).bytes();
            if b == 0 {
                continue;
            }
            let h = STRIP_H * b as f64 / col_bytes as f64;
            let _ = writeln!(
                s,
                r#"<rect x="{}" y="{y:.2}" width="1" height="{h:.2}" fill="{}"><title>{name}</title></rect>"#,
                LEFT + col as f64,
                colour(name)
            );
            y += h;
        }
    }
    // Partitions only: a logical volume is drawn by the classes of its extents.
    for v in layout.volumes.iter().filter(|v| v.lv.is_none()) {
        let x0 = LEFT + COLUMNS as f64 * v.start as f64 / cap as f64;
        let x1 = LEFT + COLUMNS as f64 * (v.start + v.length) as f64 / cap as f64;
        let _ = writeln!(
            s,
            r#"<path d="M{x0:.1} 52 V46 H{x1:.1} V52" stroke="black" fill="none"/>"#
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="42" text-anchor="middle">{} {}</text>"#,
            (x0 + x1) / 2.0,
            v.index,
            v.content.name()
        );
    }
    for (i, (name, set)) in named.iter().enumerate() {
        let x = LEFT + (i % 4) as f64 * 250.0;
        let y = 175.0 + (i / 4) as f64 * 24.0;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="{}" width="14" height="14" fill="{}" stroke="gray"/><text x="{}" y="{}">{name}: {}</text>"#,
            y - 11.0,
            colour(name),
            x + 20.0,
            y,
            human::size(set.bytes())
        );
    }
    s.push_str("</svg>\n");
    s
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
