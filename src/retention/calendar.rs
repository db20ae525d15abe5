//! Calendar arithmetic on snapshot names, which are UTC times
//! (`2026-03-06T14:30:00.123Z`, or with `-` in the time on macOS).
//!
//! Retention periods are UTC periods: a destination is pruned by whatever
//! machine runs the sync (the laptop with `nbkp run`, the server with a
//! generated script), and they must agree whatever their time zones are.
//! The same arithmetic exists in `templates/lib.sh` (`nbkp_epoch`).

/// Milliseconds since 1970-01-01T00:00:00Z of a snapshot name; `None` for
/// anything not named like a snapshot.
pub fn parse_name(name: &str) -> Option<i64> {
    let b = name.as_bytes();
    // YYYY-MM-DDTHH:MM:SS[.fff]Z
    if b.len() < 20 || *b.last()? != b'Z' || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let sep = b[13];
    if !(sep == b':' || sep == b'-') || b[16] != sep {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = name.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let ms = match &name[19..name.len() - 1] {
        "" => 0,
        f if f.len() > 1 && f.starts_with('.') && f[1..].bytes().all(|c| c.is_ascii_digit()) => {
            let digits: String = f[1..].chars().chain("000".chars()).take(3).collect();
            digits.parse().ok()?
        }
        _ => return None,
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some(((days * 24 + h) * 60 + mi) * 60_000 + s * 1000 + ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm, in the integer arithmetic a POSIX shell has).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 → (year, month, day).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The calendar periods retention rules count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Period {
    pub const ALL: [Period; 5] = [
        Period::Hour,
        Period::Day,
        Period::Week,
        Period::Month,
        Period::Year,
    ];

    /// `hourly`, `daily`, …: the rule's name is `keep-<this>`.
    pub fn adjective(self) -> &'static str {
        match self {
            Period::Hour => "hourly",
            Period::Day => "daily",
            Period::Week => "weekly",
            Period::Month => "monthly",
            Period::Year => "yearly",
        }
    }

    /// A number identifying the period that contains `ms`; equal numbers,
    /// same period. Weeks start on Monday (ISO 8601).
    pub fn key(self, ms: i64) -> i64 {
        let days = ms.div_euclid(86_400_000);
        match self {
            Period::Hour => ms.div_euclid(3_600_000),
            Period::Day => days,
            // 1970-01-01 was a Thursday: day -3 is a Monday.
            Period::Week => (days + 3).div_euclid(7),
            Period::Month => {
                let (y, m, _) = civil_from_days(days);
                y * 12 + i64::from(m)
            }
            Period::Year => civil_from_days(days).0,
        }
    }

    /// The period of `ms` as people write it: `2026-03-06 14h`, `2026-03-06`,
    /// `2026-W10`, `2026-03`, `2026`.
    pub fn label(self, ms: i64) -> String {
        let days = ms.div_euclid(86_400_000);
        let (y, m, d) = civil_from_days(days);
        match self {
            Period::Hour => format!(
                "{y:04}-{m:02}-{d:02} {:02}h",
                ms.div_euclid(3_600_000).rem_euclid(24)
            ),
            Period::Day => format!("{y:04}-{m:02}-{d:02}"),
            Period::Week => {
                // The ISO year is the year of the week's Thursday.
                let thursday = (days + 3).div_euclid(7) * 7 - 3 + 3;
                let (iy, _, _) = civil_from_days(thursday);
                let jan4 = days_from_civil(iy, 1, 4);
                let week1_monday = jan4 - (jan4 + 3).rem_euclid(7);
                format!("{iy:04}-W{:02}", (thursday - 3 - week1_monday) / 7 + 1)
            }
            Period::Month => format!("{y:04}-{m:02}"),
            Period::Year => format!("{y:04}"),
        }
    }
}

/// `2026-03-06 14:30:00` (UTC) for people.
pub fn display_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A duration as written in the config: one or more `<number><unit>` with
/// units `min`, `h`, `d`, `w`, `y` (365 days), e.g. `2d`, `36h`, `1y`,
/// `1w3d`. `m` is refused: minutes or months would be a guess.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    let mut total: u64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("`{t}` is not a duration (e.g. 2d, 36h, 4w, 1y)"));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{t}`: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let secs = match unit {
            "s" => 1,
            "min" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            "y" => 365 * 86_400,
            "m" => {
                return Err(format!(
                    "`{t}`: `m` could mean minutes or months; write `min` for minutes, or days/weeks (`30d`, `4w`)"
                ))
            }
            "" => return Err(format!("`{t}`: a number needs a unit (min, h, d, w, y)")),
            other => {
                return Err(format!(
                    "`{t}`: unknown unit `{other}` (use min, h, d, w or y)"
                ))
            }
        };
        total = n
            .checked_mul(secs)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("`{t}`: duration too large"))?;
    }
    if total == 0 {
        return Err(format!("`{t}`: a duration must be longer than zero"));
    }
    Ok(total)
}

/// Seconds as people write them: `2d`, `4w`, `1y`, `1d12h`, `90min` → `1h30min`.
pub fn format_duration(secs: u64) -> String {
    const DAY: u64 = 86_400;
    let days = secs / DAY;
    let mut out = if secs % DAY == 0 && days % 365 == 0 {
        return format!("{}y", days / 365);
    } else if secs % DAY == 0 && days % 7 == 0 {
        return format!("{}w", days / 7);
    } else if days > 0 {
        format!("{days}d")
    } else {
        String::new()
    };
    let mut rest = secs % DAY;
    for (unit, size) in [("h", 3600), ("min", 60), ("s", 1)] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_in_both_styles() {
        let a = parse_name("2026-03-06T14:30:00.123Z").unwrap();
        assert_eq!(a, 1_772_807_400_123);
        assert_eq!(parse_name("2026-03-06T14-30-00.123Z"), Some(a));
        assert_eq!(parse_name("2026-03-06T14:30:00Z"), Some(1_772_807_400_000));
        for bad in [
            "latest",
            "2026-03-06",
            "2026-13-06T14:30:00.123Z",
            "2026-03-06T14:30:00.123",
            "2026-03-06T14:30-00.123Z",
            ".nbkp-removing-2026-03-06T14:30:00.123Z",
            "2026-03-06T14:30:00.12xZ",
        ] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn periods_and_labels() {
        let t = |s: &str| parse_name(s).unwrap();
        // 2026-03-06 is a Friday; its week starts on Monday 03-02.
        let w = Period::Week;
        assert_eq!(
            w.key(t("2026-03-02T00:00:00Z")),
            w.key(t("2026-03-08T23:59:59Z"))
        );
        assert_ne!(
            w.key(t("2026-03-08T23:59:59Z")),
            w.key(t("2026-03-09T00:00:00Z"))
        );
        assert_eq!(w.label(t("2026-03-06T12:00:00Z")), "2026-W10");
        // ISO weeks across the year boundary: 2026-12-31 is in 2026-W53,
        // 2027-01-01 too; 2024-12-30 is in 2025-W01.
        assert_eq!(w.label(t("2026-12-31T12:00:00Z")), "2026-W53");
        assert_eq!(w.label(t("2027-01-01T12:00:00Z")), "2026-W53");
        assert_eq!(w.label(t("2024-12-30T12:00:00Z")), "2025-W01");
        assert_eq!(Period::Month.label(t("2026-03-06T12:00:00Z")), "2026-03");
        assert_eq!(
            Period::Hour.label(t("2026-03-06T14:30:00Z")),
            "2026-03-06 14h"
        );
        assert_ne!(
            Period::Year.key(t("2026-12-31T23:59:59.999Z")),
            Period::Year.key(t("2027-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2d"), Ok(172_800));
        assert_eq!(parse_duration("1w3d"), Ok(10 * 86_400));
        assert_eq!(parse_duration("90min"), Ok(5400));
        assert_eq!(parse_duration("1y"), Ok(365 * 86_400));
        assert!(parse_duration("6m")
            .unwrap_err()
            .contains("minutes or months"));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("0d").is_err());
        assert!(parse_duration("2 days").is_err());
        assert_eq!(format_duration(172_800), "2d");
        assert_eq!(format_duration(10 * 86_400), "10d");
        assert_eq!(format_duration(28 * 86_400), "4w");
        assert_eq!(format_duration(36 * 3600), "1d12h");
        assert_eq!(format_duration(5400), "1h30min");
    }

    #[test]
    fn civil_round_trip() {
        for days in [-1000, 0, 59, 60, 10_957, 20_000, 40_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, i64::from(m), i64::from(d)), days);
        }
    }
}
