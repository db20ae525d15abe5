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
}
