//! Monitoring, decided once for both back-ends: which URL each moment of a
//! run pings and with which program's argv, and the Prometheus textfile's
//! metric names, help texts and what each value means. `nbkp run`
//! (`commands/monitor.rs`) and the script (`templates/automatic.sh.j2`)
//! only perform it.
//!
//! The pings go through `curl` or `wget`, for `nbkp run` too: one argv in
//! the plan for both back-ends, and no HTTP and TLS stack in nbkp for three
//! small requests a run (a client crate with TLS would be most of the
//! binary).

use serde::Serialize;

use crate::config::Monitoring;

/// Seconds one ping may take (the program's own limit; `nbkp run` also
/// stops it a little after). A ping never fails or holds up the backup.
pub const PING_TIMEOUT_SECONDS: u32 = 10;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MonitoringPlan {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping: Option<PingPlan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsPlan>,
}

/// A healthchecks-style check: `<url>/start` when a run begins, `<url>`
/// when it ends well, `<url>/fail` otherwise; the run's summary is the body.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PingPlan {
    pub start: String,
    pub success: String,
    pub fail: String,
    /// The programs that can send it, in order of preference: the first
    /// one on PATH is used; with none, a warning.
    pub clients: Vec<HttpClient>,
}

/// How one program POSTs a file: `program args… <body><FILE> URL`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HttpClient {
    pub program: &'static str,
    pub args: Vec<String>,
    /// Put in front of the body file's path, in one word.
    pub body: &'static str,
}

impl HttpClient {
    pub fn argv(&self, body_file: &str, url: &str) -> Vec<String> {
        let mut argv = vec![self.program.to_string()];
        argv.extend(self.args.iter().cloned());
        argv.push(format!("{}{body_file}", self.body));
        argv.push(url.to_string());
        argv
    }
}

pub fn clients() -> Vec<HttpClient> {
    let t = PING_TIMEOUT_SECONDS.to_string();
    vec![
        HttpClient {
            program: "curl",
            args: ["-fsS", "-m", &t, "-o", "/dev/null", "--data-binary"]
                .map(String::from)
                .to_vec(),
            body: "@",
        },
        HttpClient {
            program: "wget",
            args: ["-q", "-T", &t, "-t", "1", "-O", "/dev/null"]
                .map(String::from)
                .to_vec(),
            body: "--post-file=",
        },
    ]
}

/// Which URL a run's exit code pings: a run that failed nothing (exit 0,
/// or 3: a destination was busy, try later) is a success.
pub fn ping_succeeded(exit_code: i32) -> bool {
    exit_code == crate::exit::Exit::Ok.code() || exit_code == crate::exit::Exit::Locked.code()
}

/// The textfile: rewritten after each run (not a dry run) through a
/// temporary file in the same directory and a rename.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MetricsPlan {
    pub path: String,
    /// The syncs it has lines for, in config order.
    pub syncs: Vec<String>,
    /// Where the complete snapshots of each sync with a snapshot
    /// destination on this machine are (`<endpoint>/snapshots`): counted
    /// right after the sync's attempt, while its drive is surely there.
    /// A remote destination's are not counted (no round trip for it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub snapshot_dirs: Vec<SnapshotDir>,
    /// The syncs whose rsync (run on this machine) logs its totals to
    /// `--log-file=<a run's private directory>/<file>` (see [`log_transfers`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transfer_logs: Vec<TransferLog>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TransferLog {
    pub sync: String,
    pub file: String,
}

/// With a metrics file: rsync logs only its totals (`--log-file-format=`
/// empty: no line per file) to [`Var::RsyncLog`], right after the
/// program's name, when it runs on this machine (not inside `ssh HOST …`).
/// Returns whether it does.
pub fn log_transfers(sync: &mut super::SyncPlan) -> Option<TransferLog> {
    fn insert(argv: &mut Vec<super::Arg>) -> bool {
        if matches!(argv.first(), Some(super::Arg::Lit(p)) if p == "ssh") {
            return false;
        }
        let Some(at) = argv
            .iter()
            .position(|a| matches!(a, super::Arg::Lit(p) if p == "rsync"))
        else {
            return false;
        };
        argv.insert(at + 1, super::Arg::Optional(super::Var::RsyncLog));
        argv.insert(at + 2, super::Arg::lit("--log-file-format="));
        true
    }
    if !insert(&mut sync.rsync) {
        return None;
    }
    if let Some(channel) = &mut sync.channel {
        insert(&mut channel.rsync);
    }
    Some(TransferLog {
        sync: sync.slug.clone(),
        file: sync.ident.clone(),
    })
}

/// What rsync's log says it sent and received (its last totals line:
/// `… sent N bytes  received M bytes  total size T`).
pub fn transferred_bytes(log: &str) -> Option<u64> {
    let number = |t: &str| -> Option<u64> {
        let digits: String = t.chars().filter(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    log.lines().rev().find_map(|l| {
        let (_, rest) = l.split_once(" sent ")?;
        let (sent, rest) = rest.split_once(" bytes  received ")?;
        let (received, _) = rest.split_once(" bytes")?;
        Some(number(sent)? + number(received)?)
    })
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SnapshotDir {
    pub sync: String,
    pub dir: String,
}

/// One metric family: all gauges, one line per sync (`{sync="…"}`) or,
/// for the run's own, one line.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub help: &'static str,
    /// Per sync (a `sync` label) or for the whole run.
    pub per_sync: bool,
    /// A sync not attempted this run keeps its previous value (read back
    /// from the file); the others are this run's.
    pub kept: Kept,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Kept {
    /// Kept unless the sync was attempted this run.
    UnlessAttempted,
    /// Kept unless the sync completed this run.
    UnlessSucceeded,
    /// The run's own: always this run's.
    Never,
}

pub const LAST_SUCCESS: Metric = Metric {
    name: "nbkp_sync_last_success_timestamp_seconds",
    help: "Unix time the sync last completed successfully.",
    per_sync: true,
    kept: Kept::UnlessSucceeded,
};
pub const LAST_RUN: Metric = Metric {
    name: "nbkp_sync_last_run_timestamp_seconds",
    help: "Unix time the sync was last attempted.",
    per_sync: true,
    kept: Kept::UnlessAttempted,
};
pub const LAST_DURATION: Metric = Metric {
    name: "nbkp_sync_last_run_duration_seconds",
    help: "How long the sync's last attempt took.",
    per_sync: true,
    kept: Kept::UnlessAttempted,
};
pub const LAST_STATUS: Metric = Metric {
    name: "nbkp_sync_last_exit_status",
    help: "Outcome of the sync's last attempt: 0 completed, 1 failed, 3 destination locked by another run.",
    per_sync: true,
    kept: Kept::UnlessAttempted,
};
pub const TRANSFERRED: Metric = Metric {
    name: "nbkp_sync_last_run_transferred_bytes",
    help: "Bytes rsync sent and received in the sync's last attempt (rsync run on this machine; 0 when it stopped before its totals).",
    per_sync: true,
    kept: Kept::UnlessAttempted,
};
pub const SNAPSHOTS: Metric = Metric {
    name: "nbkp_sync_snapshots",
    help: "Complete snapshots in the sync's destination after its last attempt (destinations on this machine).",
    per_sync: true,
    kept: Kept::UnlessAttempted,
};
pub const RUN_TIMESTAMP: Metric = Metric {
    name: "nbkp_last_run_timestamp_seconds",
    help: "Unix time the last nbkp run ended.",
    per_sync: false,
    kept: Kept::Never,
};
pub const RUN_STATUS: Metric = Metric {
    name: "nbkp_last_run_exit_status",
    help: "Exit status of the last nbkp run (0 ok, 1 a sync failed, 3 a destination was locked).",
    per_sync: false,
    kept: Kept::Never,
};

/// Every metric, in the file's order.
pub const METRICS: [Metric; 8] = [
    LAST_SUCCESS,
    LAST_RUN,
    LAST_DURATION,
    LAST_STATUS,
    TRANSFERRED,
    SNAPSHOTS,
    RUN_TIMESTAMP,
    RUN_STATUS,
];

/// A sync attempt's status value (see [`LAST_STATUS`]).
pub fn status_value(succeeded: bool, locked: bool) -> i32 {
    match (succeeded, locked) {
        (true, _) => crate::exit::Exit::Ok.code(),
        (false, true) => crate::exit::Exit::Locked.code(),
        (false, false) => crate::exit::Exit::Failed.code(),
    }
}

/// The start of a sync's line: `name{sync="slug"} ` (slugs are plain
/// names, nothing to escape; the text format's escapes are applied anyway).
pub fn line_prefix(metric: &Metric, sync: Option<&str>) -> String {
    match sync {
        Some(slug) if metric.per_sync => format!(
            "{}{{sync=\"{}\"}} ",
            metric.name,
            slug.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        ),
        _ => format!("{} ", metric.name),
    }
}

/// The directory whose snapshot names [`SNAPSHOTS`] counts, for a sync
/// whose snapshot destination is on this machine at a path known now.
pub fn snapshot_dir(sync: &super::SyncPlan) -> Option<SnapshotDir> {
    let endpoint = match &sync.snapshots {
        super::SnapshotPlan::HardLink { endpoint, .. }
        | super::SnapshotPlan::Btrfs { endpoint, .. } => endpoint,
        super::SnapshotPlan::None => return None,
    };
    match (endpoint, &sync.commit) {
        (super::Arg::Lit(path), Some(commit)) if commit.host == 0 => Some(SnapshotDir {
            sync: sync.slug.clone(),
            dir: format!("{path}/snapshots"),
        }),
        _ => None,
    }
}

pub fn lower(
    monitoring: Option<&Monitoring>,
    syncs: Vec<String>,
    snapshot_dirs: Vec<SnapshotDir>,
    transfer_logs: Vec<TransferLog>,
) -> Option<MonitoringPlan> {
    let m = monitoring?;
    let ping = m.ping_url.as_ref().map(|url| PingPlan {
        start: format!("{url}/start"),
        success: url.clone(),
        fail: format!("{url}/fail"),
        clients: clients(),
    });
    let metrics = m.metrics_file.as_ref().map(|path| MetricsPlan {
        path: path.clone(),
        syncs,
        snapshot_dirs,
        transfer_logs,
    });
    (ping.is_some() || metrics.is_some()).then_some(MonitoringPlan { ping, metrics })
}

/// The text of the file: for each metric its HELP and TYPE lines, then its
/// values. `value(metric, sync)` gives this run's value or `None`, and
/// `previous` the last file's text, from which kept values come.
pub fn textfile(
    plan: &MetricsPlan,
    previous: &str,
    mut value: impl FnMut(&Metric, Option<&str>) -> Option<String>,
) -> String {
    let mut out = String::new();
    for metric in METRICS {
        out.push_str(&format!(
            "# HELP {} {}\n# TYPE {} gauge\n",
            metric.name, metric.help, metric.name
        ));
        let syncs: Vec<Option<&str>> = if metric.per_sync {
            plan.syncs.iter().map(|s| Some(s.as_str())).collect()
        } else {
            vec![None]
        };
        for sync in syncs {
            let prefix = line_prefix(&metric, sync);
            let v = value(&metric, sync).or_else(|| {
                previous
                    .lines()
                    .find_map(|l| l.strip_prefix(&prefix))
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
            });
            if let Some(v) = v {
                out.push_str(&prefix);
                out.push_str(&v);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_values_come_from_the_previous_file() {
        let plan = MetricsPlan {
            path: "/x.prom".into(),
            syncs: vec!["a".into(), "b".into()],
            snapshot_dirs: vec![],
            transfer_logs: vec![],
        };
        let previous = "nbkp_sync_last_success_timestamp_seconds{sync=\"b\"} 100\nnbkp_sync_last_exit_status{sync=\"b\"} 0\n";
        let text = textfile(&plan, previous, |m, s| match (m.name, s) {
            ("nbkp_sync_last_success_timestamp_seconds", Some("a")) => Some("200".into()),
            ("nbkp_last_run_exit_status", None) => Some("0".into()),
            _ => None,
        });
        assert!(text.contains("nbkp_sync_last_success_timestamp_seconds{sync=\"a\"} 200\n"));
        assert!(text.contains("nbkp_sync_last_success_timestamp_seconds{sync=\"b\"} 100\n"));
        assert!(text.contains("nbkp_sync_last_exit_status{sync=\"b\"} 0\n"));
        assert!(
            text.contains("# TYPE nbkp_last_run_exit_status gauge\nnbkp_last_run_exit_status 0\n")
        );
        assert!(!text.contains("sync=\"a\"} \n"));
    }

    #[test]
    fn rsync_log_totals() {
        let log = "2026/12/07 16:49:52 [31389] building file list\n\
                   2026/12/07 16:49:52 [31389] sent 123,595 bytes  received 40 bytes  total size 123456\n";
        assert_eq!(transferred_bytes(log), Some(123_635));
        assert_eq!(transferred_bytes("nothing\n"), None);
    }

    #[test]
    fn client_argv() {
        let c = clients();
        assert_eq!(
            c[0].argv("/t/b", "https://h/x"),
            [
                "curl",
                "-fsS",
                "-m",
                "10",
                "-o",
                "/dev/null",
                "--data-binary",
                "@/t/b",
                "https://h/x"
            ]
        );
        assert_eq!(c[1].argv("/t/b", "u").last().unwrap(), "u");
        assert!(ping_succeeded(3) && ping_succeeded(0) && !ping_succeeded(1));
    }
}
