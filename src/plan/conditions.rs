//! Run conditions (`--on-ac-power`, `--not-metered`): where each back-end
//! looks and what the answers mean, defined once. `nbkp run` reads them
//! natively (`exec/conditions.rs`); the script's functions
//! (`templates/automatic.sh.j2`) are rendered from the same constants and
//! follow the same rules, written out here.

/// Where Linux lists power supplies: one directory each, with `type`
/// (`Mains`, `USB`, `Battery`, …), `online` (adapters) and `status`
/// (batteries: `Charging`, `Discharging`, `Full`, …).
pub const POWER_SUPPLY_DIR: &str = "/sys/class/power_supply";

/// Test hook: a directory that replaces [`POWER_SUPPLY_DIR`] (a fake sysfs
/// for tests; nothing else should set it).
pub const POWER_SUPPLY_ENV: &str = "NBKP_SYSFS_POWER_SUPPLY";

/// macOS, where there is no such directory: the first line says
/// `Now drawing from 'AC Power'` or `… 'Battery Power'`.
pub const PMSET: [&str; 3] = ["pmset", "-g", "batt"];

/// NetworkManager: one `GENERAL.METERED:<yes|no|unknown>[ (guessed)]` line
/// per device.
pub const NMCLI_METERED: [&str; 6] = ["nmcli", "-t", "-f", "GENERAL.METERED", "dev", "show"];

/// What a run skipped on battery says (exit 0).
pub const ON_BATTERY: &str = "on battery power: nothing run (--on-ac-power)";

/// Why a remote sync is skipped on a metered connection.
pub const METERED: &str = "metered connection: remote syncs are skipped (--not-metered)";

/// The fix shown for a sync skipped on a metered connection.
pub const METERED_FIX: &str =
    "Expected with --not-metered on a metered connection; run without it to sync anyway.";

/// One power supply's files, as read (trimmed; empty when absent).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Supply {
    pub kind: String,
    pub online: String,
    pub status: String,
}

/// On battery: no adapter (`Mains`, `USB`) is online, and either some
/// adapter exists (all unplugged) or some battery is discharging. A machine
/// that lists no supply at all (a desktop, a container) is on AC, as for
/// systemd's `ConditionACPower=`.
pub fn on_battery(supplies: &[Supply]) -> bool {
    let adapter = |s: &&Supply| s.kind == "Mains" || s.kind == "USB";
    if supplies.iter().filter(adapter).any(|s| s.online == "1") {
        return false;
    }
    supplies.iter().any(|s| adapter(&s))
        || supplies
            .iter()
            .any(|s| s.kind == "Battery" && s.status == "Discharging")
}

/// `pmset -g batt`'s answer: `Some(true)` on battery, `None` when it says
/// neither.
pub fn pmset_on_battery(output: &str) -> Option<bool> {
    let first = output.lines().next()?;
    if first.contains("'Battery Power'") {
        Some(true)
    } else if first.contains("'AC Power'") {
        Some(false)
    } else {
        None
    }
}

/// Metered: some device says `yes` (NetworkManager's own guess included).
pub fn nmcli_metered(output: &str) -> bool {
    output.lines().any(|l| {
        l.trim()
            .strip_prefix("GENERAL.METERED:")
            .is_some_and(|v| v == "yes" || v.starts_with("yes "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(kind: &str, online: &str, status: &str) -> Supply {
        Supply {
            kind: kind.into(),
            online: online.into(),
            status: status.into(),
        }
    }

    #[test]
    fn battery_rules() {
        assert!(!on_battery(&[]));
        assert!(!on_battery(&[
            s("Mains", "1", ""),
            s("Battery", "", "Charging")
        ]));
        assert!(on_battery(&[s("Mains", "0", ""), s("Battery", "", "Full")]));
        assert!(on_battery(&[s("Battery", "", "Discharging")]));
        assert!(!on_battery(&[s("Battery", "", "Full")]));
        assert!(!on_battery(&[s("Mains", "0", ""), s("USB", "1", "")]));
    }

    #[test]
    fn pmset_and_nmcli_answers() {
        assert_eq!(
            pmset_on_battery("Now drawing from 'Battery Power'\n -InternalBattery-0 (id=1)\t80%"),
            Some(true)
        );
        assert_eq!(
            pmset_on_battery("Now drawing from 'AC Power'\n"),
            Some(false)
        );
        assert_eq!(pmset_on_battery(""), None);
        assert!(nmcli_metered(
            "GENERAL.METERED:no\nGENERAL.METERED:yes (guessed)\n"
        ));
        assert!(!nmcli_metered(
            "GENERAL.METERED:no (guessed)\nGENERAL.METERED:unknown\n"
        ));
    }
}
