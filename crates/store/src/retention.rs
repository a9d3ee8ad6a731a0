//! Retention: which backups a `--keep-*` policy keeps, with the semantics of restic's
//! `forget` (restic 0.14, `internal/restic/snapshot_policy.go`; `docs/repository.md`
//! "Retention" says what we rely on).
//!
//! The backups of one name are taken newest first. `--keep-last N` keeps the N newest;
//! `--keep-hourly N` keeps the newest backup of each of the N newest hours that hold one,
//! and so on for days, ISO weeks, months and years (UTC); `--keep-within D` keeps every
//! backup newer than the newest backup's time less D. A backup is kept when any rule
//! keeps it. Since every rule keeps the newest backup, it is never forgotten by a policy.

use crate::repo::ImageEntry;
use diskray_core::time::{civil_from_days, days_from_civil, iso8601, iso_week};
use serde::Serialize;
use std::collections::BTreeMap;

/// Microseconds per second.
const MICROS: i64 = 1_000_000;

/// A span of calendar time, as restic's `--keep-within` takes it (`1y5m7d2h`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    /// Years.
    pub years: i64,
    /// Months.
    pub months: i64,
    /// Days.
    pub days: i64,
    /// Hours.
    pub hours: i64,
}

/// Largest value of a span's field, repeats such as `1y1y` added up: 10,000 years (or
/// months, days, hours) is more than any policy needs, and keeps a time less the span
/// within `i64` microseconds whatever the fields (about 3.5 × 10^17 at most).
const MAX_SPAN_FIELD: i64 = 10_000;

impl std::str::FromStr for Span {
    type Err = String;

    /// Numbers each followed by `y`, `m`, `d` or `h`, as restic's `ParseDuration`.
    fn from_str(s: &str) -> Result<Span, String> {
        let mut span = Span::default();
        let mut num = String::new();
        for c in s.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let n: Option<i64> = num.parse().ok();
            num.clear();
            let field = match c {
                'y' => &mut span.years,
                'm' => &mut span.months,
                'd' => &mut span.days,
                'h' => &mut span.hours,
                _ => return Err(format!("{s:?}: {c:?} is not one of y, m, d, h")),
            };
            *field = n
                .and_then(|n| field.checked_add(n))
                .filter(|&v| v <= MAX_SPAN_FIELD)
                .ok_or_else(|| {
                    format!("{s:?}: expected a number before {c:?}, {c} at most {MAX_SPAN_FIELD} in all")
                })?;
        }
        if !num.is_empty() {
            return Err(format!(
                "{s:?}: the number {num} has no unit (y, m, d or h)"
            ));
        }
        if span == Span::default() {
            return Err(format!("{s:?}: expected a span such as 1y5m7d2h"));
        }
        Ok(span)
    }
}

impl Span {
    /// `t` (microseconds since 1970, UTC) less this span, as Go's
    /// `t.AddDate(-y, -m, -d).Add(-h hours)`: the calendar fields carry over (March 31
    /// less a month is March 3 or 2).
    fn before(&self, t: i64) -> i64 {
        let secs = t.div_euclid(MICROS);
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        let days = days_from_civil(y - self.years, m - self.months, d - self.days);
        let day_part = t - secs.div_euclid(86_400) * 86_400 * MICROS;
        days * 86_400 * MICROS + day_part - self.hours * 3600 * MICROS
    }
}

/// A retention policy: how many of each to keep (0: that rule keeps nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// The newest backups.
    pub last: u32,
    /// One per hour.
    pub hourly: u32,
    /// One per day.
    pub daily: u32,
    /// One per ISO week.
    pub weekly: u32,
    /// One per month.
    pub monthly: u32,
    /// One per year.
    pub yearly: u32,
    /// Every backup newer than the newest less this span.
    pub within: Option<Span>,
}

impl Policy {
    /// True when no rule keeps anything (restic then keeps everything; we refuse it).
    pub fn is_empty(&self) -> bool {
        *self == Policy::default()
    }
}

/// Why a backup is kept: the rules that keep it, in restic's words.
pub type Reasons = Vec<&'static str>;

/// The rules a time falls in, by restic's bucket functions (UTC).
fn buckets(micros: i64, nr: usize) -> [i64; 6] {
    let secs = micros.div_euclid(MICROS);
    let days = secs.div_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let h = secs.rem_euclid(86_400) / 3600;
    let (wy, w) = iso_week(days);
    [
        nr as i64,
        y * 1_000_000 + m * 10_000 + d * 100 + h,
        y * 10_000 + m * 100 + d,
        wy * 100 + w,
        y * 100 + m,
        y,
    ]
}

/// Applies `policy` to the times (microseconds since 1970) of one name's backups, in any
/// order; returns, for each in the same order, why it is kept (empty: forget it).
pub fn apply(policy: &Policy, times: &[i64]) -> Vec<Reasons> {
    let mut order: Vec<usize> = (0..times.len()).collect();
    // Newest first; equal times keep their order.
    order.sort_by(|&a, &b| times[b].cmp(&times[a]));
    let mut out = vec![Reasons::new(); times.len()];
    let Some(&newest) = order.first() else {
        return out;
    };
    let limit = policy.within.map(|s| s.before(times[newest]));
    let names = [
        "last snapshot",
        "hourly snapshot",
        "daily snapshot",
        "weekly snapshot",
        "monthly snapshot",
        "yearly snapshot",
    ];
    let mut counts = [
        policy.last,
        policy.hourly,
        policy.daily,
        policy.weekly,
        policy.monthly,
        policy.yearly,
    ];
    let mut last_seen = [None::<i64>; 6];
    for (nr, &i) in order.iter().enumerate() {
        let reasons = &mut out[i];
        if limit.is_some_and(|l| times[i] > l) {
            reasons.push("within");
        }
        let values = buckets(times[i], nr);
        for k in 0..6 {
            if counts[k] > 0 && last_seen[k] != Some(values[k]) {
                last_seen[k] = Some(values[k]);
                counts[k] -= 1;
                reasons.push(names[k]);
            }
        }
    }
    out
}

/// One backup: the image of one name, or the images of one machine's disks (the series
/// `NAME.diskI` of one start time), kept or forgotten together.
#[derive(Debug, Clone, Serialize)]
pub struct Backup {
    /// Its time, `YYYY-MM-DDTHH:MM:SSZ`.
    pub time: String,
    /// Its time in microseconds since 1970.
    pub unix_micros: u64,
    /// Its images' ids (one per disk).
    pub images: Vec<String>,
    /// Why it is kept (empty when it is forgotten).
    pub reasons: Vec<&'static str>,
}

/// What a policy does to the backups of one name.
#[derive(Debug, Clone, Serialize)]
pub struct NamePlan {
    /// The backup name (a machine backup's, without `.diskI`).
    pub name: String,
    /// Backups kept, newest first.
    pub keep: Vec<Backup>,
    /// Backups forgotten, newest first.
    pub remove: Vec<Backup>,
}

/// What `diskray forget` with a policy does (or, with `--dry-run`, would do).
#[derive(Debug, Clone, Serialize)]
pub struct ForgetPlan {
    /// Nothing was removed.
    pub dry_run: bool,
    /// Per backup name, in name order.
    pub names: Vec<NamePlan>,
}

/// The name a machine backup's disk images share: `vm1` for `vm1.disk0`.
fn machine_name(series: &str) -> &str {
    match series.rsplit_once(".disk") {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) => base,
        _ => series,
    }
}

/// The plan of `policy` over `images` (every image of the repository), for the backups of
/// `only` when given (a name, or a machine backup's name), else of every name.
pub fn plan(
    images: &[ImageEntry],
    policy: &Policy,
    only: Option<&str>,
    dry_run: bool,
) -> ForgetPlan {
    // name -> time -> image ids
    let mut by_name: BTreeMap<&str, BTreeMap<u64, Vec<String>>> = BTreeMap::new();
    for e in images {
        let name = machine_name(&e.manifest.name);
        if only.is_some_and(|o| o != name && o != e.manifest.name) {
            continue;
        }
        let at = by_name.entry(name).or_default();
        at.entry(e.manifest.unix_micros)
            .or_default()
            .push(e.manifest.image.clone());
    }
    let names = by_name
        .into_iter()
        .map(|(name, backups)| {
            let times: Vec<i64> = backups.keys().map(|&t| t as i64).collect();
            let decided = apply(policy, &times);
            let mut plan = NamePlan {
                name: name.to_string(),
                keep: Vec::new(),
                remove: Vec::new(),
            };
            for ((t, images), reasons) in backups.into_iter().zip(decided).rev() {
                let b = Backup {
                    time: iso8601((t / MICROS as u64) as i64),
                    unix_micros: t,
                    images,
                    reasons,
                };
                if b.reasons.is_empty() {
                    plan.remove.push(b);
                } else {
                    plan.keep.push(b);
                }
            }
            plan
        })
        .collect();
    ForgetPlan { dry_run, names }
}

/// Applies `policy` to the backups of the repository (of `only` when given) and, unless
/// `dry_run`, forgets every image it does not keep, under the repository's shared lock.
pub fn forget_by_policy(
    repo: &crate::Repo,
    policy: &Policy,
    only: Option<&str>,
    dry_run: bool,
    on_wait: Option<&dyn Fn()>,
) -> diskray_core::Result<(ForgetPlan, Vec<diskray_core::Warning>)> {
    let _lock = repo.lock(crate::lock::Mode::Shared, on_wait)?;
    let (all, warnings) = repo.images()?;
    let plan = plan(&all, policy, only, dry_run);
    if !dry_run {
        let gone: std::collections::HashSet<&String> = plan
            .names
            .iter()
            .flat_map(|n| &n.remove)
            .flat_map(|b| &b.images)
            .collect();
        for e in all.iter().filter(|e| gone.contains(&e.manifest.image)) {
            repo.forget(e)?;
        }
    }
    Ok((plan, warnings))
}

/// What `forget` with a policy did: the plan, and with `--prune` what gc freed.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyDone {
    /// What was kept and forgotten.
    #[serde(flatten)]
    pub plan: ForgetPlan,
    /// gc's report, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gc: Option<crate::gc::GcReport>,
}

impl std::fmt::Display for PolicyDone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.plan)?;
        self.gc.as_ref().map_or(Ok(()), |g| write!(f, "{g}"))
    }
}

/// For people: per name, each backup kept or forgotten, and why.
impl std::fmt::Display for ForgetPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verb = if self.dry_run {
            "would forget"
        } else {
            "forgot"
        };
        for n in &self.names {
            writeln!(
                f,
                "{}: keep {} backups, {verb} {}",
                n.name,
                n.keep.len(),
                n.remove.len()
            )?;
            for b in &n.keep {
                writeln!(
                    f,
                    "  keep    {}  {}  ({})",
                    b.time,
                    b.images.join(" "),
                    b.reasons.join(", ")
                )?;
            }
            for b in &n.remove {
                writeln!(f, "  forget  {}  {}", b.time, b.images.join(" "))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diskray_core::time::parse_utc;

    fn t(s: &str) -> i64 {
        parse_utc(s).unwrap() * MICROS
    }

    #[test]
    fn machine_backups_share_their_name() {
        assert_eq!(machine_name("vm1.disk0"), "vm1");
        assert_eq!(machine_name("vm1.disk12"), "vm1");
        assert_eq!(machine_name("vm1.diskette"), "vm1.diskette");
        assert_eq!(machine_name("vm1.disk"), "vm1.disk");
        assert_eq!(machine_name("web01"), "web01");
    }

    #[test]
    fn spans_parse_like_restics() {
        assert_eq!(
            "1y5m7d2h".parse::<Span>(),
            Ok(Span {
                years: 1,
                months: 5,
                days: 7,
                hours: 2
            })
        );
        for bad in [
            "",
            "5",
            "2w",
            "d",
            "-1d",
            "99999999999d",
            "10001y",
            "9000y9000y",
        ] {
            assert!(bad.parse::<Span>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_largest_span_from_the_latest_time_does_not_overflow() {
        let most: Span = "10000y10000m10000d10000h".parse().unwrap();
        let latest = t("9999-12-31 23:59:59");
        assert!(most.before(latest) < latest);
    }

    #[test]
    fn within_counts_back_from_the_newest_backup_by_the_calendar() {
        let span: Span = "1m".parse().unwrap();
        // A month before March 31 is "February 31", that is March 3 in 2021.
        assert_eq!(
            span.before(t("2021-03-31 12:00:00")),
            t("2021-03-03 12:00:00")
        );
        let span: Span = "1d2h".parse().unwrap();
        assert_eq!(
            span.before(t("2021-03-01 01:00:00")),
            t("2021-02-27 23:00:00")
        );
    }

    #[test]
    fn the_newest_is_kept_and_each_bucket_keeps_its_newest() {
        let times = [
            t("2024-01-01 10:00:00"),
            t("2024-01-01 09:00:00"),
            t("2024-01-02 08:00:00"),
            t("2024-01-02 23:00:00"),
        ];
        let p = Policy {
            daily: 2,
            ..Policy::default()
        };
        let kept: Vec<bool> = apply(&p, &times).iter().map(|r| !r.is_empty()).collect();
        assert_eq!(kept, [true, false, false, true]);
        assert!(apply(&Policy::default(), &times)
            .iter()
            .all(|r| r.is_empty()));
    }
}
