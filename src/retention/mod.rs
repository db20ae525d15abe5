//! Which snapshots a destination keeps: one pure function, [`decide`], with
//! the clock passed in.
//!
//! A snapshot survives when any rule keeps it (`keep-last`, `keep-within`,
//! one per calendar period); `max-age` then removes what is older than it,
//! and `max-snapshots` caps the total by removing the oldest. Whatever the
//! policy, these are never removed: the snapshot `latest` points to (which
//! the next `--link-dest` uses), anything newer than it (a run in progress,
//! or a complete snapshot a run with its clock behind left), everything when
//! `latest` does not name a snapshot (nothing to trust), and anything not
//! named like a snapshot (never listed here at all).
//!
//! Generated scripts and `nbkp run` prune with `nbkp_retain` in
//! `templates/lib.sh`, a port of this function to POSIX sh fed by
//! [`Policy::tokens`]; `tests/retention_parity.rs` checks both agree.

pub mod calendar;

use serde::Serialize;

pub use calendar::{parse_name, Period};

/// How many periods a calendar rule keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Count {
    N(u32),
    #[serde(serialize_with = "all")]
    All,
}

fn all<S: serde::Serializer>(s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("all")
}

impl Count {
    fn allows(self, used: u32) -> bool {
        match self {
            Count::N(n) => used < n,
            Count::All => true,
        }
    }

    fn token(self) -> String {
        match self {
            Count::N(n) => n.to_string(),
            Count::All => "all".into(),
        }
    }
}

/// A destination's retention policy: `max-snapshots` and the optional
/// `retention:` block. Durations in seconds. All `None`: keep everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Policy {
    pub max_snapshots: Option<u32>,
    pub keep_last: Option<u32>,
    pub keep_within: Option<u64>,
    pub keep_hourly: Option<Count>,
    pub keep_daily: Option<Count>,
    pub keep_weekly: Option<Count>,
    pub keep_monthly: Option<Count>,
    pub keep_yearly: Option<Count>,
    pub max_age: Option<u64>,
}

impl Policy {
    pub fn period(&self, p: Period) -> Option<Count> {
        match p {
            Period::Hour => self.keep_hourly,
            Period::Day => self.keep_daily,
            Period::Week => self.keep_weekly,
            Period::Month => self.keep_monthly,
            Period::Year => self.keep_yearly,
        }
    }

    /// Whether any `keep-*` rule is set (without one, everything is kept
    /// before `max-age` and `max-snapshots`).
    pub fn has_keep_rules(&self) -> bool {
        self.keep_last.is_some()
            || self.keep_within.is_some()
            || Period::ALL.iter().any(|p| self.period(*p).is_some())
    }

    /// Whether the policy can remove anything at all.
    pub fn prunes(&self) -> bool {
        self.has_keep_rules() || self.max_age.is_some() || self.max_snapshots.is_some()
    }

    /// For people: `keep all`, `keep 5`, `keep last 2, within 2d, daily 7; at most 30`.
    pub fn describe(&self) -> String {
        let mut rules = Vec::new();
        if let Some(n) = self.keep_last {
            rules.push(format!("last {n}"));
        }
        if let Some(s) = self.keep_within {
            rules.push(format!("within {}", calendar::format_duration(s)));
        }
        for p in Period::ALL {
            if let Some(c) = self.period(p) {
                rules.push(format!("{} {}", p.adjective(), c.token()));
            }
        }
        let mut text = if rules.is_empty() {
            match self.max_snapshots {
                Some(n) => return self.with_age(format!("keep {n}")),
                None => "keep all".to_string(),
            }
        } else {
            format!("keep {}", rules.join(", "))
        };
        if let Some(n) = self.max_snapshots {
            text.push_str(&format!("; at most {n}"));
        }
        self.with_age(text)
    }

    fn with_age(&self, text: String) -> String {
        match self.max_age {
            Some(s) => format!("{text}; none older than {}", calendar::format_duration(s)),
            None => text,
        }
    }

    /// The policy from its tokens (the inverse of [`Policy::tokens`]);
    /// unknown or malformed tokens are ignored, as `nbkp_retain` does.
    pub fn from_tokens(tokens: &[String]) -> Policy {
        let mut p = Policy::default();
        for t in tokens {
            let Some((k, v)) = t.split_once('=') else {
                continue;
            };
            let count = || match v {
                "all" => Some(Count::All),
                n => n.parse().ok().map(Count::N),
            };
            match k {
                "last" => p.keep_last = v.parse().ok(),
                "within" => p.keep_within = v.parse().ok(),
                "hourly" => p.keep_hourly = count(),
                "daily" => p.keep_daily = count(),
                "weekly" => p.keep_weekly = count(),
                "monthly" => p.keep_monthly = count(),
                "yearly" => p.keep_yearly = count(),
                "maxage" => p.max_age = v.parse().ok(),
                "max" => p.max_snapshots = v.parse().ok(),
                _ => {}
            }
        }
        p
    }

    /// The policy as `nbkp_retain` arguments: `last=3 daily=7 maxage=31536000 max=20`.
    pub fn tokens(&self) -> Vec<String> {
        let mut t = Vec::new();
        if let Some(n) = self.keep_last {
            t.push(format!("last={n}"));
        }
        if let Some(s) = self.keep_within {
            t.push(format!("within={s}"));
        }
        for p in Period::ALL {
            if let Some(c) = self.period(p) {
                t.push(format!("{}={}", p.adjective(), c.token()));
            }
        }
        if let Some(s) = self.max_age {
            t.push(format!("maxage={s}"));
        }
        if let Some(n) = self.max_snapshots {
            t.push(format!("max={n}"));
        }
        t
    }
}

/// What happens to one snapshot, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub name: String,
    /// Milliseconds since the epoch (UTC), from the name.
    #[serde(skip)]
    pub at: i64,
    pub keep: bool,
    /// For a kept snapshot every rule that keeps it; for a removed one why.
    pub reasons: Vec<String>,
}

impl Decision {
    /// For a removed snapshot, the rule that removes it, as lib.sh's
    /// `nbkp_retain` names it: `max-snapshots`, `max-age`, or `keep-rules`
    /// (no keep rule keeps it).
    pub fn drop_rule(&self) -> &'static str {
        drop_rule(&self.reasons)
    }
}

/// [`Decision::drop_rule`] from a removed snapshot's reasons.
pub fn drop_rule(reasons: &[String]) -> &'static str {
    match reasons.first() {
        Some(r) if r.starts_with("over max-snapshots") => "max-snapshots",
        Some(r) if r.starts_with("older than max-age") => "max-age",
        _ => "keep-rules",
    }
}

/// Decides every snapshot in `names` (those named like snapshots; others
/// are ignored), newest first. `latest` is the snapshot `latest` points to,
/// if it points to one; `now` is milliseconds since the epoch.
pub fn decide(policy: &Policy, names: &[String], latest: Option<&str>, now: i64) -> Vec<Decision> {
    // Newest first, by name: the same order `nbkp_retain` uses (the glob's).
    let mut snaps: Vec<(&str, i64)> = names
        .iter()
        .filter_map(|n| parse_name(n).map(|at| (n.as_str(), at)))
        .collect();
    snaps.sort_by(|a, b| b.0.cmp(a.0));
    snaps.dedup_by(|a, b| a.0 == b.0);

    let latest = latest.filter(|l| snaps.iter().any(|(n, _)| n == l));
    let mut seen_latest = false;
    let mut used = [0u32; 5];
    let mut last_key: [Option<i64>; 5] = [None; 5];
    let mut out: Vec<(Decision, bool)> = Vec::with_capacity(snaps.len());
    for (i, &(name, at)) in snaps.iter().enumerate() {
        let mut reasons = Vec::new();
        let protected = match latest {
            None => {
                reasons.push("latest does not name a snapshot: nothing is pruned".into());
                true
            }
            Some(l) if l == name => {
                seen_latest = true;
                reasons.push("latest".into());
                true
            }
            Some(_) if !seen_latest => {
                reasons.push(
                    "newer than latest (a run in progress, or a clock that was behind)".into(),
                );
                true
            }
            Some(_) => false,
        };
        // Whole seconds, as the shell port counts (its clock has no milliseconds).
        let age = now.div_euclid(1000) - at.div_euclid(1000);
        if !policy.has_keep_rules() {
            reasons.push("no keep rules".into());
        }
        if let Some(n) = policy.keep_last {
            if (i as u64) < u64::from(n) {
                reasons.push(format!("keep-last {n}"));
            }
        }
        if let Some(w) = policy.keep_within {
            if age <= w as i64 {
                reasons.push(format!("keep-within {}", calendar::format_duration(w)));
            }
        }
        for (k, p) in Period::ALL.into_iter().enumerate() {
            let Some(count) = policy.period(p) else {
                continue;
            };
            let key = p.key(at);
            if last_key[k] != Some(key) {
                last_key[k] = Some(key);
                if count.allows(used[k]) {
                    used[k] += 1;
                    reasons.push(format!("keep-{} {}", p.adjective(), p.label(at)));
                }
            }
        }
        let mut keep = protected || !reasons.is_empty();
        if let Some(max_age) = policy.max_age {
            if !protected && age > max_age as i64 {
                keep = false;
                reasons = vec![format!(
                    "older than max-age {}",
                    calendar::format_duration(max_age)
                )];
            }
        }
        if !keep && reasons.is_empty() {
            reasons.push("kept by no rule".into());
        }
        out.push((
            Decision {
                name: name.to_string(),
                at,
                keep,
                reasons,
            },
            protected,
        ));
    }
    if let Some(max) = policy.max_snapshots {
        let mut kept = out.iter().filter(|(d, _)| d.keep).count();
        for (d, protected) in out.iter_mut().rev() {
            if kept <= max as usize {
                break;
            }
            if d.keep && !*protected {
                d.keep = false;
                d.reasons = vec![format!("over max-snapshots {max}")];
                kept -= 1;
            }
        }
    }
    out.into_iter().map(|(d, _)| d).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn kept(d: &[Decision]) -> Vec<&str> {
        d.iter()
            .filter(|d| d.keep)
            .map(|d| d.name.as_str())
            .collect()
    }

    const NOW: &str = "2026-03-10T12:00:00Z";

    #[test]
    fn max_snapshots_alone_keeps_the_newest_and_latest() {
        let n = names(&[
            "2026-03-01T00:00:00.000Z",
            "2026-03-02T00:00:00.000Z",
            "2026-03-03T00:00:00.000Z",
            "2026-03-04T00:00:00.000Z",
        ]);
        let p = Policy {
            max_snapshots: Some(2),
            ..Policy::default()
        };
        let now = parse_name(NOW).unwrap();
        let d = decide(&p, &n, Some("2026-03-04T00:00:00.000Z"), now);
        assert_eq!(
            kept(&d),
            ["2026-03-04T00:00:00.000Z", "2026-03-03T00:00:00.000Z"]
        );
        assert_eq!(d[3].reasons, ["over max-snapshots 2"]);
        // latest older than the newest: it and everything newer survive.
        let d = decide(&p, &n, Some("2026-03-02T00:00:00.000Z"), now);
        assert_eq!(
            kept(&d),
            [
                "2026-03-04T00:00:00.000Z",
                "2026-03-03T00:00:00.000Z",
                "2026-03-02T00:00:00.000Z"
            ]
        );
    }

    #[test]
    fn without_a_valid_latest_nothing_goes() {
        let n = names(&["2026-03-01T00:00:00.000Z", "2026-03-02T00:00:00.000Z"]);
        let p = Policy {
            max_snapshots: Some(1),
            ..Policy::default()
        };
        let now = parse_name(NOW).unwrap();
        assert_eq!(kept(&decide(&p, &n, None, now)).len(), 2);
        assert_eq!(
            kept(&decide(&p, &n, Some("2026-01-01T00:00:00.000Z"), now)).len(),
            2
        );
    }

    #[test]
    fn empty_periods_do_not_use_up_the_count() {
        // Dailies on the 1st, 2nd, then away until the 9th, 10th.
        let n = names(&[
            "2026-03-01T08:00:00.000Z",
            "2026-03-02T08:00:00.000Z",
            "2026-03-09T08:00:00.000Z",
            "2026-03-10T08:00:00.000Z",
            "2026-03-10T09:00:00.000Z",
        ]);
        let p = Policy {
            keep_daily: Some(Count::N(3)),
            ..Policy::default()
        };
        let d = decide(
            &p,
            &n,
            Some("2026-03-10T09:00:00.000Z"),
            parse_name(NOW).unwrap(),
        );
        assert_eq!(
            kept(&d),
            [
                "2026-03-10T09:00:00.000Z",
                "2026-03-09T08:00:00.000Z",
                "2026-03-02T08:00:00.000Z"
            ]
        );
        assert_eq!(d[0].reasons, ["latest", "keep-daily 2026-03-10"]);
        assert_eq!(d[1].reasons, ["kept by no rule"]);
    }

    #[test]
    fn max_age_overrides_keep_rules_but_not_latest() {
        let n = names(&["2024-01-01T00:00:00.000Z", "2026-03-01T00:00:00.000Z"]);
        let p = Policy {
            keep_yearly: Some(Count::All),
            max_age: Some(365 * 86_400),
            ..Policy::default()
        };
        let now = parse_name(NOW).unwrap();
        let d = decide(&p, &n, Some("2026-03-01T00:00:00.000Z"), now);
        assert_eq!(kept(&d), ["2026-03-01T00:00:00.000Z"]);
        assert_eq!(d[1].reasons, ["older than max-age 1y"]);
        let d = decide(&p, &n, Some("2024-01-01T00:00:00.000Z"), now);
        assert_eq!(kept(&d).len(), 2, "latest and what is newer stay");
    }

    #[test]
    fn tokens_for_the_shell() {
        let p = Policy {
            keep_last: Some(2),
            keep_within: Some(172_800),
            keep_daily: Some(Count::N(7)),
            keep_yearly: Some(Count::All),
            max_snapshots: Some(30),
            ..Policy::default()
        };
        assert_eq!(
            p.tokens(),
            ["last=2", "within=172800", "daily=7", "yearly=all", "max=30"]
        );
        assert!(Policy::default().tokens().is_empty());
        assert_eq!(Policy::from_tokens(&p.tokens()), p);
        assert!(!Policy::default().prunes());
    }
}
