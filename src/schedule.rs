//! Periodic runs: the files systemd, launchd and cron need to run
//! `nbkp run` every so often, at low priority, catching up after sleep.
//!
//! Pure text generation (the command in `commands/schedule.rs` reads the
//! config, writes the files and, when asked, enables them). Every word that
//! becomes part of a command line is quoted by `shell.rs`.

use std::fmt::Write as _;

use crate::shell;

/// How often to run. Only periods that divide an hour, a day or a week
/// evenly, so that systemd's calendar, cron and launchd's interval agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Every {
    /// A divisor of 60.
    Minutes(u32),
    /// A divisor of 24.
    Hours(u32),
    Daily,
    Weekly,
}

const MINUTE_STEPS: [u32; 11] = [1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30];
const HOUR_STEPS: [u32; 7] = [1, 2, 3, 4, 6, 8, 12];

impl Every {
    /// `15m`, `30min`, `1h`, `6h`, `1d`, `daily`, `7d`, `1w`, `weekly`, `hourly`.
    pub fn parse(text: &str) -> Result<Every, String> {
        let t = text.trim().to_ascii_lowercase();
        let named = match t.as_str() {
            "hourly" => Some(Every::Hours(1)),
            "daily" => Some(Every::Daily),
            "weekly" => Some(Every::Weekly),
            _ => None,
        };
        if let Some(e) = named {
            return Ok(e);
        }
        let digits = t.chars().take_while(char::is_ascii_digit).count();
        let (n, unit) = t.split_at(digits);
        let bad = || {
            format!(
                "--every {text:?}: expected minutes ({}), hours ({}), 1d/daily or 7d/1w/weekly",
                join_steps(&MINUTE_STEPS, "m"),
                join_steps(&HOUR_STEPS, "h"),
            )
        };
        let n: u32 = n.parse().map_err(|_| bad())?;
        let every = match unit {
            "m" | "min" | "mins" | "minute" | "minutes" => match n {
                60 => Every::Hours(1),
                1440 => Every::Daily,
                n if MINUTE_STEPS.contains(&n) => Every::Minutes(n),
                _ => return Err(bad()),
            },
            "h" | "hour" | "hours" => match n {
                24 => Every::Daily,
                168 => Every::Weekly,
                n if HOUR_STEPS.contains(&n) => Every::Hours(n),
                _ => return Err(bad()),
            },
            "d" | "day" | "days" => match n {
                1 => Every::Daily,
                7 => Every::Weekly,
                _ => return Err(bad()),
            },
            "w" | "week" | "weeks" if n == 1 => Every::Weekly,
            _ => return Err(bad()),
        };
        Ok(every)
    }

    pub fn seconds(self) -> u64 {
        match self {
            Every::Minutes(m) => u64::from(m) * 60,
            Every::Hours(h) => u64::from(h) * 3600,
            Every::Daily => 86_400,
            Every::Weekly => 7 * 86_400,
        }
    }

    /// Human words: "every 15 minutes", "hourly", "daily".
    pub fn describe(self) -> String {
        match self {
            Every::Minutes(1) => "every minute".into(),
            Every::Minutes(m) => format!("every {m} minutes"),
            Every::Hours(1) => "hourly".into(),
            Every::Hours(h) => format!("every {h} hours"),
            Every::Daily => "daily".into(),
            Every::Weekly => "weekly".into(),
        }
    }

    /// A systemd `OnCalendar=` expression.
    fn on_calendar(self) -> String {
        match self {
            Every::Minutes(1) => "minutely".into(),
            Every::Minutes(m) => format!("*-*-* *:00/{m}:00"),
            Every::Hours(1) => "hourly".into(),
            Every::Hours(h) => format!("*-*-* 00/{h}:00:00"),
            Every::Daily => "daily".into(),
            Every::Weekly => "weekly".into(),
        }
    }

    /// The five time fields of a crontab line (the same moments as systemd's).
    fn cron_fields(self) -> String {
        match self {
            Every::Minutes(1) => "* * * * *".into(),
            Every::Minutes(m) => format!("*/{m} * * * *"),
            Every::Hours(1) => "0 * * * *".into(),
            Every::Hours(h) => format!("0 */{h} * * *"),
            Every::Daily => "0 0 * * *".into(),
            Every::Weekly => "0 0 * * 1".into(),
        }
    }
}

fn join_steps(steps: &[u32], unit: &str) -> String {
    steps
        .iter()
        .map(|s| format!("{s}{unit}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What to run, and when.
#[derive(Debug, Clone)]
pub struct Job {
    /// `nbkp` and its arguments, all absolute paths: `[nbkp, run, -c, config, ...]`.
    pub argv: Vec<String>,
    pub every: Every,
    /// Local mount points of removable drives in the config, for the
    /// "run when plugged in" suggestion.
    pub drive_mounts: Vec<String>,
    /// Whether this machine has `ionice` (cron lines use it then).
    pub has_ionice: bool,
    /// Where launchd writes the job's output (absolute).
    pub log_file: String,
    /// `--on-plug`: the systemd units whose start means a backup drive
    /// arrived (see [`PlugTrigger`]); launchd uses `StartOnMount` when
    /// this is not empty.
    pub plug: Vec<PlugTrigger>,
    /// `--on-ac-power`: systemd's `ConditionACPower=true` (the run checks
    /// it itself too: launchd and cron have no such condition).
    pub on_ac_power: bool,
}

/// A removable volume and the systemd unit that starts when it arrives:
/// its mount point's `.mount` unit, or for a mount-managed volume (which
/// nbkp mounts itself, so its mount would start a second run) the
/// `.device` unit of its partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlugTrigger {
    pub volume: String,
    pub unit: String,
}

/// The systemd unit names.
pub const SYSTEMD_SERVICE: &str = "nbkp.service";
pub const SYSTEMD_TIMER: &str = "nbkp.timer";
/// The service a drive's arrival starts (`--on-plug`). Not `nbkp.service`:
/// systemd merges a start into a running one, so a drive plugged in during
/// a timer's run would wait for the next tick; a second unit runs at once,
/// and destination locks keep the two runs off each other's destinations.
pub const SYSTEMD_PLUG_SERVICE: &str = "nbkp-plug.service";
/// The LaunchAgent's label (its file is `<label>.plist`).
pub const LAUNCHD_LABEL: &str = "nbkp.run";
/// Lines around nbkp's part of a crontab, so it can be replaced in place.
pub const CRON_BEGIN: &str = "# >>> nbkp schedule >>>";
pub const CRON_END: &str = "# <<< nbkp schedule <<<";

/// `nbkp.service`: a oneshot at idle CPU and IO priority.
pub fn systemd_service(job: &Job) -> String {
    let mut s = String::new();
    s.push_str("# Written by `nbkp schedule systemd`; run by nbkp.timer.\n");
    s.push_str("[Unit]\n");
    s.push_str("Description=nbkp backups (nbkp run)\n");
    s.push_str("Documentation=man:nbkp-run(1)\n");
    service_body(&mut s, job);
    if !job.drive_mounts.is_empty() && job.plug.is_empty() {
        s.push_str(
            "\n# To back up as soon as a drive is mounted: nbkp schedule systemd --on-plug\n",
        );
        s.push_str("# (a second unit, nbkp-plug.service, wanted by these):\n");
        for m in &job.drive_mounts {
            let _ = writeln!(s, "#   {}", systemd_mount_unit(m));
        }
    }
    s
}

/// `nbkp-plug.service` (`--on-plug`): the same run, started when one of
/// the drives arrives (wanted by, and ordered after, its unit).
pub fn systemd_plug_service(job: &Job) -> String {
    let units: Vec<&str> = job.plug.iter().map(|p| p.unit.as_str()).collect();
    let mut s = String::new();
    s.push_str(
        "# Written by `nbkp schedule systemd --on-plug`: runs when a backup drive arrives.\n",
    );
    for p in &job.plug {
        let _ = writeln!(s, "#   {}: {}", p.volume, p.unit);
    }
    s.push_str("# A drive plugged in during a run starts this second run at once; each\n");
    s.push_str("# destination's lock keeps the two runs apart (a locked one is skipped).\n");
    s.push_str("[Unit]\n");
    s.push_str("Description=nbkp backups when a backup drive is plugged in\n");
    s.push_str("Documentation=man:nbkp-schedule(1)\n");
    let _ = writeln!(s, "After={}", units.join(" "));
    service_body(&mut s, job);
    s.push_str("\n[Install]\n");
    let _ = writeln!(s, "WantedBy={}", units.join(" "));
    s
}

/// `[Service]` of both services, and the conditions of `[Unit]` before it.
fn service_body(s: &mut String, job: &Job) {
    if job.on_ac_power {
        s.push_str("# Not on battery (nbkp run --on-ac-power checks it too).\n");
        s.push_str("ConditionACPower=true\n");
    }
    s.push_str("\n[Service]\n");
    s.push_str("Type=oneshot\n");
    let _ = writeln!(s, "ExecStart={}", shell::systemd_exec_line(&job.argv));
    s.push_str("# Stay out of the way: lowest CPU and IO priority, for rsync and ssh too.\n");
    s.push_str("Nice=19\n");
    s.push_str("CPUSchedulingPolicy=idle\n");
    s.push_str("IOSchedulingClass=idle\n");
    // A sync that failed or a locked destination is reported by nbkp itself;
    // exit 3 (locked: another run is busy) is not a unit failure.
    s.push_str("SuccessExitStatus=3\n");
}

/// `nbkp.timer`: calendar-based so that `Persistent=true` catches up a run
/// missed while the machine was off or asleep.
pub fn systemd_timer(job: &Job) -> String {
    let mut s = String::new();
    s.push_str("# Written by `nbkp schedule systemd`.\n");
    s.push_str("[Unit]\n");
    let _ = writeln!(s, "Description=Run nbkp backups {}", job.every.describe());
    s.push_str("Documentation=man:nbkp-schedule(1)\n\n");
    s.push_str("[Timer]\n");
    let _ = writeln!(s, "OnCalendar={}", job.every.on_calendar());
    s.push_str("# A run missed while off or asleep happens at the next boot or wake-up.\n");
    s.push_str("Persistent=true\n");
    // Spread the start a little so many machines do not wake a server at once.
    let spread = (job.every.seconds() / 10).min(300);
    let _ = writeln!(s, "RandomizedDelaySec={spread}");
    let _ = writeln!(s, "Unit={SYSTEMD_SERVICE}\n");
    s.push_str("[Install]\n");
    s.push_str("WantedBy=timers.target\n");
    s
}

/// A LaunchAgent: `StartInterval` (launchd runs a missed interval once on
/// wake), background priority and low-priority IO, and `StartOnMount` so
/// plugging in a drive starts a run.
pub fn launchd_plist(job: &Job) -> Result<String, String> {
    let mut s = String::new();
    s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    s.push_str("<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n");
    s.push_str("<!-- Written by `nbkp schedule launchd`. -->\n");
    s.push_str("<plist version=\"1.0\">\n<dict>\n");
    let _ = writeln!(s, "  <key>Label</key>\n  <string>{LAUNCHD_LABEL}</string>");
    s.push_str("  <key>ProgramArguments</key>\n  <array>\n");
    for w in &job.argv {
        let _ = writeln!(s, "    <string>{}</string>", xml_text(w)?);
    }
    s.push_str("  </array>\n");
    let _ = writeln!(
        s,
        "  <key>StartInterval</key>\n  <integer>{}</integer>",
        job.every.seconds()
    );
    if !job.plug.is_empty() {
        s.push_str(
            "  <!-- Plugging in a drive (any mount) starts a run; absent drives are skipped. -->\n",
        );
        s.push_str("  <key>StartOnMount</key>\n  <true/>\n");
    }
    s.push_str("  <key>ProcessType</key>\n  <string>Background</string>\n");
    s.push_str("  <key>Nice</key>\n  <integer>19</integer>\n");
    s.push_str("  <key>LowPriorityIO</key>\n  <true/>\n");
    s.push_str("  <key>LowPriorityBackgroundIO</key>\n  <true/>\n");
    let log = xml_text(&job.log_file)?;
    let _ = writeln!(s, "  <key>StandardOutPath</key>\n  <string>{log}</string>");
    let _ = writeln!(
        s,
        "  <key>StandardErrorPath</key>\n  <string>{log}</string>"
    );
    s.push_str("</dict>\n</plist>\n");
    Ok(s)
}

/// nbkp's block of a crontab: one line under `nice` (and `ionice -c3` where
/// the machine has it).
pub fn cron_block(job: &Job) -> String {
    let mut words: Vec<String> = vec!["nice".into(), "-n".into(), "19".into()];
    if job.has_ionice {
        words.extend(["ionice".into(), "-c3".into()]);
    }
    words.extend(job.argv.iter().cloned());
    let mut s = String::new();
    let _ = writeln!(s, "{CRON_BEGIN}");
    s.push_str("# cron does not catch up runs missed while the machine was off or asleep;\n");
    s.push_str("# systemd timers (nbkp schedule systemd) and launchd do.\n");
    let _ = writeln!(
        s,
        "{} {}",
        job.every.cron_fields(),
        shell::cron_command(&words)
    );
    let _ = writeln!(s, "{CRON_END}");
    s
}

/// `existing` crontab with nbkp's block replaced (or appended).
pub fn merge_crontab(existing: &str, block: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    let mut placed = false;
    for line in existing.lines() {
        if line == CRON_BEGIN {
            inside = true;
            if !placed {
                out.push_str(block);
                placed = true;
            }
            continue;
        }
        if inside {
            if line == CRON_END {
                inside = false;
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if !placed {
        out.push_str(block);
    }
    out
}

/// The systemd mount unit of a path (as `systemd-escape -p --suffix=mount`).
pub fn systemd_mount_unit(path: &str) -> String {
    systemd_path_unit(path, "mount")
}

/// The device unit of a partition by its UUID (as `systemd-escape -p
/// --suffix=device /dev/disk/by-uuid/UUID`).
pub fn systemd_device_unit(uuid: &str) -> String {
    systemd_path_unit(&format!("/dev/disk/by-uuid/{uuid}"), "device")
}

/// `systemd-escape --path --suffix=SUFFIX PATH`: `/` between components
/// becomes `-`, a leading `.` and every byte but ASCII letters, digits,
/// `:`, `_` and `.` become `\xNN`; the root is `-`.
fn systemd_path_unit(path: &str, suffix: &str) -> String {
    // systemd-escape --path also drops empty and `.` components.
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let trimmed = parts.join("/");
    if trimmed.is_empty() {
        return format!("-.{suffix}");
    }
    let mut out = String::new();
    for (i, b) in trimmed.bytes().enumerate() {
        match b {
            b'/' => out.push('-'),
            b'.' if i == 0 => out.push_str("\\x2e"),
            b if b.is_ascii_alphanumeric() || b":_.".contains(&b) => out.push(b as char),
            b => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('.');
    out.push_str(suffix);
    out
}

/// Text for an XML element; control characters XML cannot carry are refused.
fn xml_text(text: &str) -> Result<String, String> {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() => {
                return Err(format!(
                    "{text:?} contains a control character a plist cannot hold"
                ))
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(Every::parse("30m"), Ok(Every::Minutes(30)));
        assert_eq!(Every::parse("60m"), Ok(Every::Hours(1)));
        assert_eq!(Every::parse("1h"), Ok(Every::Hours(1)));
        assert_eq!(Every::parse("6h"), Ok(Every::Hours(6)));
        assert_eq!(Every::parse("24h"), Ok(Every::Daily));
        assert_eq!(Every::parse("daily"), Ok(Every::Daily));
        assert_eq!(Every::parse("1w"), Ok(Every::Weekly));
        assert_eq!(Every::parse("7d"), Ok(Every::Weekly));
        for bad in ["", "7m", "5h", "3d", "h", "-1h", "1.5h", "1y", "2w"] {
            assert!(Every::parse(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(Every::Minutes(15).on_calendar(), "*-*-* *:00/15:00");
        assert_eq!(Every::Hours(6).cron_fields(), "0 */6 * * *");
        assert_eq!(Every::Weekly.seconds(), 604_800);
    }

    #[test]
    fn crontab_block_is_replaced_in_place() {
        let job = Job {
            argv: vec!["/bin/nbkp".into(), "run".into()],
            every: Every::Hours(1),
            drive_mounts: vec![],
            has_ionice: true,
            log_file: "/tmp/x".into(),
            plug: vec![],
            on_ac_power: false,
        };
        let block = cron_block(&job);
        let first = merge_crontab("MAILTO=me\n0 1 * * * other\n", &block);
        assert!(first.starts_with("MAILTO=me\n0 1 * * * other\n# >>> nbkp"));
        let again = merge_crontab(&first, &block);
        assert_eq!(first, again);
        assert!(block.contains("0 * * * * nice -n 19 ionice -c3 /bin/nbkp run\n"));
    }

    #[test]
    fn mount_unit_names() {
        assert_eq!(systemd_mount_unit("/"), "-.mount");
        assert_eq!(systemd_mount_unit("/media/usb"), "media-usb.mount");
        assert_eq!(
            systemd_mount_unit("/run/media/me/My Drive"),
            "run-media-me-My\\x20Drive.mount"
        );
        assert_eq!(systemd_mount_unit("/.x/a-b"), "\\x2ex-a\\x2db.mount");
    }
}
