//! A desktop notification at the end of `nbkp run` when something needs
//! attention: a sync failed, or a backup is stale (`desktop-notifications`
//! in the config; off by default). `notify-send` (freedesktop notification
//! daemons) or, on macOS, `osascript`; nothing when neither exists. Sync
//! names and messages are passed as arguments, never as script text.

use std::process::{Command, Stdio};

use crate::exec::Report;
use crate::status::SyncStatus;

/// What to say: a title and a few lines, or `None` when all is well.
pub fn message(report: &Report, statuses: &[SyncStatus]) -> Option<(String, String)> {
    if report.interrupted || report.dry_run {
        return None;
    }
    let mut lines = Vec::new();
    let mut failed = 0;
    if report.aborted {
        failed += report.fatal.max(1);
        lines.push("Nothing ran: preflight found errors (nbkp preflight troubleshoot)".to_string());
    }
    for r in &report.results {
        // As Report::counts, but an absent drive is never worth a
        // notification (staleness says it when it matters).
        let is_failure = !matches!(
            r.failure,
            None | Some("inactive" | "upstream-skipped" | "dry-run-pending" | "locked")
        );
        if is_failure {
            failed += 1;
            let detail = r.detail.as_deref().unwrap_or(r.outcome);
            lines.push(format!("{} failed: {detail}", r.sync_slug));
        }
    }
    let stale: Vec<&str> = statuses
        .iter()
        .filter_map(|s| s.message.as_deref())
        .collect();
    lines.extend(stale.iter().map(|s| s.to_string()));
    let title = match (failed, stale.len()) {
        (0, 0) => return None,
        (0, 1) => "nbkp: a backup is stale".to_string(),
        (0, n) => format!("nbkp: {n} backups are stale"),
        (1, _) => "nbkp: a backup failed".to_string(),
        (n, _) => format!("nbkp: {n} backups failed"),
    };
    // A notification is a glance, not a report.
    const MAX_LINES: usize = 6;
    if lines.len() > MAX_LINES {
        let more = lines.len() - (MAX_LINES - 1);
        lines.truncate(MAX_LINES - 1);
        lines.push(format!("… and {more} more (nbkp status)"));
    }
    Some((title, lines.join("\n")))
}

/// Shows the notification with whichever tool this machine has. Returns
/// the program used, or why none was.
pub fn send(title: &str, body: &str, urgent: bool) -> Result<&'static str, String> {
    if crate::programs::find("notify-send").is_some() {
        let mut cmd = Command::new("notify-send");
        cmd.arg("--app-name=nbkp")
            .arg(format!(
                "--urgency={}",
                if urgent { "critical" } else { "normal" }
            ))
            .arg("--")
            .arg(title)
            // The body is markup for most daemons: text stays text.
            .arg(escape_markup(body));
        return run(cmd, "notify-send");
    }
    if cfg!(target_os = "macos") && crate::programs::find("osascript").is_some() {
        let mut cmd = Command::new("osascript");
        cmd.args([
            "-e",
            "on run argv",
            "-e",
            "display notification (item 2 of argv) with title (item 1 of argv)",
            "-e",
            "end run",
            title,
            body,
        ]);
        return run(cmd, "osascript");
    }
    Err("neither notify-send nor osascript is available".into())
}

fn run(mut cmd: Command, name: &'static str) -> Result<&'static str, String> {
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {name}: {e}"))?;
    if out.status.success() {
        Ok(name)
    } else {
        Err(format!(
            "{name} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn escape_markup(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
