//! Formatting for people: sizes in binary units and grouped counts.

/// `bytes` in the largest binary unit that keeps at least one whole unit (`1.5 GiB`).
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else if value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A count with spaces between thousands (`81 410`), as NetBackup's logs print them.
pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        for (n, want) in [(512, "512 B"), (65536, "64 KiB"), (1536 << 20, "1.5 GiB")] {
            assert_eq!(super::size(n), want);
        }
        for (n, want) in [(81410, "81 410"), (310, "310"), (1234567, "1 234 567")] {
            assert_eq!(super::group(n), want);
        }
    }
}
