//! Calendar formatting of Unix times, shared by the file listings and the repository.

/// Seconds since 1970 as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, UTC).
pub fn iso8601(t: i64) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(86_400));
    let secs = t.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// The date (year, month 1–12, day 1–31) of `days` since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + if m <= 2 { 1 } else { 0 }, m, d)
}

/// Days since 1970-01-01 of a date. Months and days out of range carry over as Go's
/// `time.Date` does (month 13 is January of the next year, day 0 the last of the month
/// before), which is what calendar arithmetic such as "a month before March 31" needs.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = y + (m - 1).div_euclid(12);
    let m = (m - 1).rem_euclid(12) + 1;
    // Hinnant's days_from_civil for the 1st of the month, then the days.
    let y1 = if m <= 2 { y - 1 } else { y };
    let era = y1.div_euclid(400);
    let yoe = y1.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468 + (d - 1)
}

/// The ISO 8601 week (week-numbering year, week 1–53) of `days` since 1970-01-01.
pub fn iso_week(days: i64) -> (i64, i64) {
    // ISO weekday, Monday 1 to Sunday 7 (1970-01-01 was a Thursday).
    let weekday = (days + 3).rem_euclid(7) + 1;
    let thursday = days - weekday + 4;
    let (year, _, _) = civil_from_days(thursday);
    (year, (thursday - days_from_civil(year, 1, 1)) / 7 + 1)
}

/// Parses `YYYY-MM-DD HH:MM:SS` (UTC) to seconds since 1970; `None` unless every field
/// is in range.
pub fn parse_utc(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b' '
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let days = days_from_civil(y, mo, d);
    let valid = (1..=12).contains(&mo) && civil_from_days(days) == (y, mo, d);
    (valid && h < 24 && mi < 60 && se < 60).then_some(days * 86_400 + h * 3600 + mi * 60 + se)
}

#[cfg(test)]
mod tests {
    #[test]
    fn iso_dates() {
        for (secs, want) in [
            (0, "1970-01-01T00:00:00Z"),
            (1_700_000_000, "2023-11-14T22:13:20Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (-1, "1969-12-31T23:59:59Z"),
        ] {
            assert_eq!(super::iso8601(secs), want);
        }
    }

    #[test]
    fn calendar_arithmetic_carries_like_go() {
        use super::*;
        for days in [-800_000, -1, 0, 1, 11_016, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        // March 31 less a month is "February 31", which is March 3 (2021) or 2 (2024).
        assert_eq!(days_from_civil(2021, 2, 31), days_from_civil(2021, 3, 3));
        assert_eq!(days_from_civil(2024, 2, 31), days_from_civil(2024, 3, 2));
        assert_eq!(days_from_civil(2024, 0, 15), days_from_civil(2023, 12, 15));
        assert_eq!(days_from_civil(2024, 14, 0), days_from_civil(2025, 1, 31));
    }

    #[test]
    fn iso_weeks() {
        use super::*;
        // Edges from ISO 8601's examples and `date +%G-%V`.
        for ((y, m, d), want) in [
            ((2005, 1, 1), (2004, 53)),
            ((2007, 12, 31), (2008, 1)),
            ((2008, 12, 29), (2009, 1)),
            ((2010, 1, 3), (2009, 53)),
            ((2020, 12, 31), (2020, 53)),
            ((2026, 12, 3), (2026, 49)),
        ] {
            assert_eq!(iso_week(days_from_civil(y, m, d)), want, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn utc_times_parse_or_are_refused() {
        use super::*;
        assert_eq!(parse_utc("2023-11-14 22:13:20"), Some(1_700_000_000));
        assert_eq!(parse_utc("1970-01-01 00:00:00"), Some(0));
        for bad in [
            "2023-02-29 00:00:00",
            "2023-13-01 00:00:00",
            "2023-11-14T22:13:20",
            "2023-11-14 24:00:00",
            "2023-1-14 22:13:20",
            "+023-11-14 22:13:20",
        ] {
            assert_eq!(parse_utc(bad), None, "{bad}");
        }
    }
}
