//! Retention with a fixed clock: the exact snapshots each policy keeps on
//! an irregular history (80 snapshots over 18 months, a 16-day gap, bursts
//! of hourly runs), year boundaries and time-zone independence; and the
//! shell port (`nbkp_retain` in templates/lib.sh, which scripts and
//! `nbkp run` prune with) deciding exactly what `retention::decide` does,
//! under every shell of the test bed.

mod testbed;

use nbkp::retention::calendar::{civil_from_days, parse_name};
use nbkp::retention::{decide, Count, Policy};
use testbed::shells::Shell;

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;

fn name(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

fn at(text: &str) -> i64 {
    parse_name(text).unwrap()
}

/// 80 snapshots over 17 months: every 9 days at 10:00:00.250 from
/// 2025-01-05 to 2026-04-27 (54), a 16-day gap (the laptop away), a burst
/// of 8 hourly runs on 2026-05-13 (10:00–17:00), then one a day at 21:30
/// from 05-14 to 05-31 (18). The clock: 2026-06-01T09:30Z.
fn history() -> Vec<String> {
    let mut out = Vec::new();
    let mut t = at("2025-01-05T10:00:00.250Z");
    let end_regular = at("2026-05-01T00:00:00Z");
    while t < end_regular {
        out.push(name(t));
        t += 9 * DAY;
    }
    let last_regular = at(out.last().unwrap());
    let burst = last_regular + 16 * DAY;
    for h in 0..8 {
        out.push(name(burst + h * HOUR));
    }
    let mut t = at(&name(burst)).div_euclid(DAY) * DAY + DAY + 21 * HOUR + 30 * 60_000;
    while out.len() < 80 {
        out.push(name(t));
        t += DAY;
    }
    out
}

fn now() -> i64 {
    let h = history();
    at(h.last().unwrap()) + 12 * HOUR
}

fn kept(policy: &Policy, names: &[String], latest: &str, now: i64) -> Vec<String> {
    decide(policy, names, Some(latest), now)
        .into_iter()
        .filter(|d| d.keep)
        .map(|d| d.name)
        .collect()
}

#[test]
fn the_history_is_what_it_claims() {
    let h = history();
    assert_eq!(h.len(), 80);
    let first = at(&h[0]);
    let last = at(h.last().unwrap());
    assert!(last - first > 500 * DAY, "about 18 months");
    let gap = h.windows(2).map(|w| at(&w[1]) - at(&w[0])).max().unwrap();
    assert_eq!(gap, 16 * DAY, "the longest gap is the 16 days away");
    assert_eq!(h.first().unwrap(), "2025-01-05T10:00:00.250Z");
    assert_eq!(h[53], "2026-04-27T10:00:00.250Z");
    assert_eq!(h[54], "2026-05-13T10:00:00.250Z");
    assert_eq!(h.last().unwrap(), "2026-05-31T21:30:00.000Z");
    assert_eq!(name(now()), "2026-06-01T09:30:00.000Z");
}

#[test]
fn daily_weekly_monthly_on_the_irregular_history() {
    let h = history();
    let latest = h.last().unwrap().clone();
    let p = Policy {
        keep_daily: Some(Count::N(7)),
        keep_weekly: Some(Count::N(4)),
        keep_monthly: Some(Count::N(6)),
        ..Policy::default()
    };
    assert_eq!(
        kept(&p, &h, &latest, now()),
        [
            // daily 7: the newest seven days that have a snapshot.
            "2026-05-31T21:30:00.000Z",
            "2026-05-30T21:30:00.000Z",
            "2026-05-29T21:30:00.000Z",
            "2026-05-28T21:30:00.000Z",
            "2026-05-27T21:30:00.000Z",
            "2026-05-26T21:30:00.000Z",
            "2026-05-25T21:30:00.000Z",
            // weekly 4: W22 (05-31, above), W21, W20, and — W19 had no
            // snapshot, so it uses up nothing — W18's 04-27.
            "2026-05-24T21:30:00.000Z",
            "2026-05-17T21:30:00.000Z",
            // monthly 6: May (above), April (04-27, which weekly also
            // keeps), March, February, January, December.
            "2026-04-27T10:00:00.250Z",
            "2026-03-31T10:00:00.250Z",
            "2026-02-23T10:00:00.250Z",
            "2026-01-27T10:00:00.250Z",
            "2025-12-31T10:00:00.250Z",
        ]
    );
    let d = decide(&p, &h, Some(&latest), now());
    let april = d
        .iter()
        .find(|d| d.name == "2026-04-27T10:00:00.250Z")
        .unwrap();
    assert_eq!(
        april.reasons,
        ["keep-weekly 2026-W18", "keep-monthly 2026-04"]
    );
    let burst = d
        .iter()
        .find(|d| d.name == "2026-05-13T17:00:00.250Z")
        .unwrap();
    assert!(!burst.keep, "W20's newest is 05-17");
}

#[test]
fn last_within_and_yearly() {
    let h = history();
    let latest = h.last().unwrap().clone();
    let p = Policy {
        keep_last: Some(2),
        keep_within: Some(2 * 86_400),
        keep_yearly: Some(Count::All),
        ..Policy::default()
    };
    // last 2 and within 2d (after 05-30T09:30) both keep the two newest;
    // yearly keeps 2026's newest (the same) and 2025's newest.
    assert_eq!(
        kept(&p, &h, &latest, now()),
        [
            "2026-05-31T21:30:00.000Z",
            "2026-05-30T21:30:00.000Z",
            "2025-12-31T10:00:00.250Z",
        ]
    );
    let d = decide(&p, &h, Some(&latest), now());
    assert_eq!(d[1].reasons, ["keep-last 2", "keep-within 2d"]);
    assert_eq!(d[79].reasons, ["kept by no rule"]);
}

#[test]
fn hourly_burst_and_max_snapshots_cap() {
    let h = history();
    let latest = h.last().unwrap().clone();
    let hourly = Policy {
        keep_hourly: Some(Count::N(24)),
        max_snapshots: Some(20),
        ..Policy::default()
    };
    let k = kept(&hourly, &h, &latest, now());
    // 24 hour-periods: the 18 dailies and the burst's newest 6 hours; the
    // cap then keeps the newest 20, so the burst keeps 17:00 and 16:00.
    assert_eq!(k.len(), 20, "capped: {k:?}");
    assert_eq!(k[0], latest);
    assert_eq!(k[17], "2026-05-14T21:30:00.000Z");
    assert_eq!(k[18], "2026-05-13T17:00:00.250Z");
    assert_eq!(k[19], "2026-05-13T16:00:00.250Z");
    let d = decide(&hourly, &h, Some(&latest), now());
    let capped = d
        .iter()
        .find(|d| d.name == "2026-05-13T15:00:00.250Z")
        .unwrap();
    assert_eq!(capped.reasons, ["over max-snapshots 20"]);
    let beyond = d
        .iter()
        .find(|d| d.name == "2026-05-13T11:00:00.250Z")
        .unwrap();
    assert_eq!(beyond.reasons, ["kept by no rule"]);
}

#[test]
fn max_age_removes_old_ones_whatever_keeps_them() {
    let h = history();
    let latest = h.last().unwrap().clone();
    let p = Policy {
        keep_monthly: Some(Count::All),
        max_age: Some(180 * 86_400),
        ..Policy::default()
    };
    // 180 days before the clock is 2025-12-03T09:30: November and older go.
    assert_eq!(
        kept(&p, &h, &latest, now()),
        [
            "2026-05-31T21:30:00.000Z",
            "2026-04-27T10:00:00.250Z",
            "2026-03-31T10:00:00.250Z",
            "2026-02-23T10:00:00.250Z",
            "2026-01-27T10:00:00.250Z",
            "2025-12-31T10:00:00.250Z",
        ]
    );
    let d = decide(&p, &h, Some(&latest), now());
    assert_eq!(d[79].reasons, ["older than max-age 180d"]);
}

#[test]
fn max_snapshots_alone_keeps_the_newest() {
    let h = history();
    let latest = h.last().unwrap().clone();
    let p = Policy {
        max_snapshots: Some(5),
        ..Policy::default()
    };
    assert_eq!(
        kept(&p, &h, &latest, now()),
        h[75..].iter().rev().cloned().collect::<Vec<_>>()
    );
}

#[test]
fn year_boundaries_and_iso_weeks() {
    let names: Vec<String> = [
        "2025-12-29T12:00:00.000Z", // Monday of 2026-W01
        "2025-12-31T23:59:59.999Z",
        "2026-01-01T00:00:00.001Z",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let latest = "2026-01-01T00:00:00.001Z";
    let now = at("2026-01-02T00:00:00Z");
    let yearly = Policy {
        keep_yearly: Some(Count::N(2)),
        ..Policy::default()
    };
    assert_eq!(
        kept(&yearly, &names, latest, now),
        ["2026-01-01T00:00:00.001Z", "2025-12-31T23:59:59.999Z"]
    );
    let weekly = Policy {
        keep_weekly: Some(Count::N(2)),
        ..Policy::default()
    };
    // All three are in ISO week 2026-W01: one survives.
    assert_eq!(kept(&weekly, &names, latest, now), [latest]);
    let d = decide(&weekly, &names, Some(latest), now);
    assert_eq!(d[0].reasons, ["latest", "keep-weekly 2026-W01"]);
}

/// Periods are UTC periods, so the time zone of the machine that prunes
/// (laptop or server) never changes the answer — also around a DST change
/// (Europe switched at 2026-03-29T01:00Z).
#[test]
fn dst_changes_and_time_zones_do_not_matter() {
    let names: Vec<String> = [
        "2026-03-28T23:30:00.000Z",
        "2026-03-29T00:30:00.000Z",
        "2026-03-29T01:30:00.000Z",
        "2026-03-29T02:30:00.000Z",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let latest = "2026-03-29T02:30:00.000Z";
    let now = at("2026-03-29T03:00:00Z");
    let p = Policy {
        keep_daily: Some(Count::N(2)),
        keep_hourly: Some(Count::N(2)),
        ..Policy::default()
    };
    let expect = [
        "2026-03-29T02:30:00.000Z",
        "2026-03-29T01:30:00.000Z",
        "2026-03-28T23:30:00.000Z",
    ];
    assert_eq!(kept(&p, &names, latest, now), expect);
    for tz in [
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe",
    ] {
        let drops = shell_drops(
            Shell::Dash,
            &[Case::new(&p, &names, latest, now)],
            &[("TZ", tz)],
        );
        assert_eq!(
            drops,
            [vec!["2026-03-29T00:30:00.000Z/keep-rules".to_string()]],
            "TZ={tz}"
        );
    }
}

struct Case {
    names: Vec<String>,
    latest: String,
    now: String,
    tokens: Vec<String>,
}

impl Case {
    fn new(p: &Policy, names: &[String], latest: &str, now: i64) -> Case {
        Case {
            names: names.to_vec(),
            latest: latest.to_string(),
            now: name(now),
            tokens: p.tokens(),
        }
    }
}

/// Runs `nbkp_retain` for every case in one shell; the drops of each.
fn shell_drops(shell: Shell, cases: &[Case], env: &[(&str, &str)]) -> Vec<Vec<String>> {
    let lib = include_str!("../templates/lib.sh");
    let mut code = format!("{lib}\n");
    for (i, c) in cases.iter().enumerate() {
        let mut sorted = c.names.clone();
        sorted.sort();
        code.push_str(&format!(
            "nbkp_names='{}'\nnbkp_retain {} {} {}\necho \"case {i}:$nbkp_drops\"\n",
            sorted.join(" "),
            c.now,
            c.latest,
            c.tokens.join(" ")
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("retain.sh");
    std::fs::write(&path, &code).unwrap();
    let mut cmd = shell.command();
    cmd.arg(&path);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = testbed::run_timeout(&mut cmd, testbed::COMMAND_TIMEOUT).unwrap();
    assert!(
        out.status.success(),
        "{shell}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("case ")).collect();
    assert_eq!(lines.len(), cases.len(), "{shell}: {text}");
    lines
        .iter()
        .map(|l| {
            l.split_once(':')
                .unwrap()
                .1
                .split_whitespace()
                .map(str::to_string)
                .collect()
        })
        .collect()
}

/// What `decide` removes, as `nbkp_retain` lists it: `NAME/RULE`.
fn rust_drops(c: &Case, p: &Policy) -> Vec<String> {
    let mut d: Vec<String> = decide(p, &c.names, Some(&c.latest), at(&c.now))
        .into_iter()
        .filter(|d| !d.keep)
        .map(|d| format!("{}/{}", d.name, d.drop_rule()))
        .collect();
    d.reverse(); // oldest first, as the shell removes them
    d
}

fn policies() -> Vec<Policy> {
    let n = |v| Some(Count::N(v));
    vec![
        Policy::default(),
        Policy {
            max_snapshots: Some(1),
            ..Policy::default()
        },
        Policy {
            max_snapshots: Some(10),
            ..Policy::default()
        },
        Policy {
            keep_last: Some(3),
            ..Policy::default()
        },
        Policy {
            keep_within: Some(3 * 86_400),
            ..Policy::default()
        },
        Policy {
            keep_hourly: n(24),
            ..Policy::default()
        },
        Policy {
            keep_daily: n(7),
            keep_weekly: n(4),
            keep_monthly: n(6),
            ..Policy::default()
        },
        Policy {
            keep_daily: n(7),
            keep_weekly: n(4),
            keep_monthly: n(12),
            keep_yearly: Some(Count::All),
            max_snapshots: Some(15),
            ..Policy::default()
        },
        Policy {
            keep_weekly: Some(Count::All),
            max_age: Some(200 * 86_400),
            ..Policy::default()
        },
        Policy {
            max_age: Some(30 * 86_400),
            ..Policy::default()
        },
        Policy {
            keep_last: Some(1),
            keep_within: Some(36 * 3600),
            keep_hourly: n(6),
            keep_yearly: n(1),
            max_age: Some(400 * 86_400),
            max_snapshots: Some(12),
            ..Policy::default()
        },
    ]
}

/// Every policy, on the history with `latest` at the newest, at an older
/// snapshot (what is newer must survive) and at none.
fn parity_cases() -> Vec<(Case, Policy)> {
    let h = history();
    let mut out = Vec::new();
    for p in policies() {
        for latest in [h[79].clone(), h[60].clone(), "-".to_string()] {
            let mut c = Case::new(&p, &h, &latest, now());
            if latest == "-" {
                c.latest = "-".into();
            }
            out.push((c, p));
        }
        // A later clock: more is old.
        out.push((Case::new(&p, &h, &h[79], now() + 300 * DAY), p));
    }
    out
}

#[test]
fn the_shell_port_decides_like_the_rust_function_in_every_shell() {
    let cases = parity_cases();
    let expected: Vec<Vec<String>> = cases
        .iter()
        .map(|(c, p)| {
            if c.latest == "-" {
                Vec::new() // no valid latest: nothing goes
            } else {
                rust_drops(c, p)
            }
        })
        .collect();
    assert!(
        expected.iter().filter(|d| !d.is_empty()).count() > 20,
        "the cases must remove things"
    );
    let only: Vec<Case> = cases.into_iter().map(|(c, _)| c).collect();
    let mut ran = 0;
    for shell in Shell::ALL {
        if !shell.is_available() {
            assert!(!testbed::in_ci(), "{shell} missing in CI");
            continue;
        }
        let got = shell_drops(shell, &only, &[]);
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(g, e, "{shell}, case {i} ({:?})", only[i].tokens);
        }
        ran += 1;
    }
    assert!(ran >= 1);
}

/// A small seeded generator (splitmix64): the same cases on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn maybe<T>(&mut self, v: impl FnOnce(&mut Rng) -> T) -> Option<T> {
        (self.below(2) == 0).then(|| v(self))
    }
}

/// A random policy: each rule present or not, small counts so that they
/// bite on short histories.
fn random_policy(r: &mut Rng) -> Policy {
    let count = |r: &mut Rng| {
        if r.below(5) == 0 {
            Count::All
        } else {
            Count::N(r.below(6) as u32 + 1)
        }
    };
    Policy {
        max_snapshots: r.maybe(|r| r.below(8) as u32 + 1),
        keep_last: r.maybe(|r| r.below(5) as u32),
        keep_within: r.maybe(|r| r.below(10 * 86_400) + 1),
        keep_hourly: r.maybe(count),
        keep_daily: r.maybe(count),
        keep_weekly: r.maybe(count),
        keep_monthly: r.maybe(count),
        keep_yearly: r.maybe(count),
        max_age: r.maybe(|r| r.below(60 * 86_400) + 1),
    }
}

/// A random history: up to 30 snapshots at irregular gaps (seconds to
/// months, some in one second), `latest` anywhere (or at none), and a clock
/// anywhere from before the first to years after the last.
fn random_case(r: &mut Rng) -> (Case, Policy) {
    let mut t = at("2024-12-30T23:59:59.999Z") + r.below(400) as i64 * DAY;
    let mut names = Vec::new();
    for _ in 0..r.below(31) {
        let gap = match r.below(4) {
            0 => r.below(3000) as i64,
            1 => r.below(6) as i64 * HOUR + r.below(3_600_000) as i64,
            2 => r.below(3) as i64 * DAY + r.below(DAY as u64) as i64,
            _ => r.below(90) as i64 * DAY,
        };
        t += gap + 1;
        names.push(name(t));
    }
    names.dedup();
    let latest = match names.len() {
        0 => "-".to_string(),
        n if r.below(4) == 0 => names[r.below(n as u64) as usize].clone(),
        n => names[n - 1].clone(),
    };
    let now = t + r.below(4 * 365) as i64 * DAY - r.below(30) as i64 * DAY;
    let p = random_policy(r);
    let c = Case::new(&p, &names, &latest, now);
    (c, p)
}

#[test]
fn the_shell_port_decides_like_the_rust_function_on_thousands_of_generated_histories() {
    let mut r = Rng(0x6e62_6b70);
    let cases: Vec<(Case, Policy)> = (0..3000).map(|_| random_case(&mut r)).collect();
    let expected: Vec<Vec<String>> = cases
        .iter()
        .map(|(c, p)| {
            if c.latest == "-" {
                Vec::new()
            } else {
                rust_drops(c, p)
            }
        })
        .collect();
    let removing = expected.iter().filter(|d| !d.is_empty()).count();
    assert!(removing > 1000, "the cases must remove things: {removing}");
    for rule in ["/max-snapshots", "/max-age", "/keep-rules"] {
        assert!(
            expected.iter().flatten().any(|d| d.ends_with(rule)),
            "no case removes by {rule}"
        );
    }
    let only: Vec<Case> = cases.into_iter().map(|(c, _)| c).collect();
    let mut ran = 0;
    for shell in [Shell::Dash, Shell::BashPosix, Shell::BusyboxSh] {
        if !shell.is_available() {
            assert!(!testbed::in_ci(), "{shell} missing in CI");
            continue;
        }
        let got = shell_drops(shell, &only, &[]);
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(
                g, e,
                "{shell}, case {i}: names {:?}, latest {}, now {}, rules {:?}",
                only[i].names, only[i].latest, only[i].now, only[i].tokens
            );
        }
        ran += 1;
    }
    assert!(ran >= 1);
}
