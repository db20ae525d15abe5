//! Snapshot names from the clock: UTC with milliseconds (spec §5.2).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::retention::calendar::civil_from_days;

/// `2026-03-06T14:30:00.123Z`, or `2026-03-06T14-30-00.123Z` for `hyphens`.
pub fn snapshot_name(at: SystemTime, style: &str) -> String {
    let d = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let ms = d.subsec_millis();
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let sep = if style == "hyphens" { '-' } else { ':' };
    format!("{y:04}-{m:02}-{day:02}T{hh:02}{sep}{mm:02}{sep}{ss:02}.{ms:03}Z")
}

/// The name of the millisecond after snapshot name `name`, with its
/// separator: a new snapshot's name when the clock is behind the newest
/// (lib.sh's `nbkp_after`).
pub(crate) fn name_after(name: &str) -> Option<String> {
    let ms = crate::retention::parse_name(name)? + 1;
    let style = if name.as_bytes().get(13) == Some(&b'-') {
        "hyphens"
    } else {
        "colons"
    };
    let at = UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).ok()?);
    Some(snapshot_name(at, style))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn names() {
        let t = UNIX_EPOCH + Duration::from_millis(1_772_807_400_123);
        assert_eq!(snapshot_name(t, "colons"), "2026-03-06T14:30:00.123Z");
        assert_eq!(snapshot_name(t, "hyphens"), "2026-03-06T14-30-00.123Z");
        assert_eq!(
            snapshot_name(UNIX_EPOCH, "colons"),
            "1970-01-01T00:00:00.000Z"
        );
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(&snapshot_name(leap, "colons")[..10], "2000-02-29");
    }

    #[test]
    fn the_name_after_carries_into_every_field() {
        for (name, next) in [
            ("2026-03-06T14:30:00.123Z", "2026-03-06T14:30:00.124Z"),
            ("2026-03-06T14:30:00Z", "2026-03-06T14:30:00.001Z"),
            ("2026-12-31T23:59:59.999Z", "2027-01-01T00:00:00.000Z"),
            ("2024-02-28T23:59:59.999Z", "2024-02-29T00:00:00.000Z"),
            ("2023-02-28T23:59:59.999Z", "2023-03-01T00:00:00.000Z"),
            ("2026-03-06T14-59-59.999Z", "2026-03-06T15-00-00.000Z"),
        ] {
            assert_eq!(name_after(name).as_deref(), Some(next), "{name}");
        }
        assert_eq!(name_after("not-a-name"), None);
    }

    /// lib.sh's `nbkp_after` against `name_after` on generated names.
    #[test]
    fn the_shell_names_the_same_millisecond() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut names = Vec::new();
        for i in 0..400 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            // 1970 to about 2200, often on a boundary (…59.999).
            let mut ms = seed % 7_258_118_400_000;
            if i % 3 == 0 {
                ms = ms / 1000 * 1000 + 999;
            }
            if i % 5 == 0 {
                ms = ms / 86_400_000 * 86_400_000 + 86_399_999;
            }
            let style = if i % 2 == 0 { "colons" } else { "hyphens" };
            names.push(snapshot_name(UNIX_EPOCH + Duration::from_millis(ms), style));
        }
        let script = format!(
            "{}\nfor n in {}; do nbkp_after \"$n\"; echo \"$nbkp_after\"; done\n",
            crate::runtime::LIB,
            names.join(" ")
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        let got: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        let want: Vec<String> = names.iter().map(|n| name_after(n).unwrap()).collect();
        assert_eq!(got, want, "{}", String::from_utf8_lossy(&out.stderr));
    }
}
