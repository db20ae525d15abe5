//! `nbkp run`'s monitoring, performed as `plan/monitoring.rs` decided: the
//! pings (the plan's curl or wget argv) and the metrics textfile. Nothing
//! here fails the run: a problem is a warning.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::exec::{Report, SyncResult, Ui};
use crate::plan::monitoring::{self, Kept, Metric, MetricsPlan, MonitoringPlan, PingPlan};

/// One sync's attempt, as the run saw it.
#[derive(Debug, Clone)]
struct Attempt {
    started: SystemTime,
    duration: Duration,
    succeeded: bool,
    locked: bool,
    /// Complete snapshots in its destination right after (see `SNAPSHOTS`).
    snapshots: Option<usize>,
    /// What rsync logged it sent and received (see `TRANSFERRED`).
    transferred: Option<u64>,
}

#[derive(Default)]
struct Attempts {
    started: HashMap<String, (SystemTime, Instant)>,
    done: HashMap<String, Attempt>,
}

/// Times the syncs that are attempted (from `sync_started` to their
/// result), passing everything on.
pub struct Timing {
    inner: Box<dyn Ui>,
    attempts: Arc<Mutex<Attempts>>,
    /// Sync → its snapshots directory on this machine.
    snapshot_dirs: HashMap<String, String>,
    /// Sync → its rsync's log file (in `Monitor::logs`).
    transfer_logs: HashMap<String, std::path::PathBuf>,
}

/// What `nbkp_mon_count` counts: directories named like snapshots.
fn count_snapshots(dir: &str) -> Option<usize> {
    let entries = std::fs::read_dir(dir).ok()?;
    Some(
        entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(crate::exec::local_ops::is_name)
            })
            .count(),
    )
}

impl Ui for Timing {
    fn log(&mut self, line: &str) {
        self.inner.log(line);
    }
    fn sync_started(&mut self, slug: &str, index: usize, total: usize) {
        if let Ok(mut a) = self.attempts.lock() {
            a.started
                .insert(slug.to_string(), (SystemTime::now(), Instant::now()));
        }
        self.inner.sync_started(slug, index, total);
    }
    fn transfer_progress(&mut self, slug: &str, percent: u8, line: &str) {
        self.inner.transfer_progress(slug, percent, line);
    }
    fn rsync_output(&mut self, line: &str) {
        self.inner.rsync_output(line);
    }
    fn sync_finished(&mut self) {
        self.inner.sync_finished();
    }
    fn sync_ended(&mut self, slug: &str) {
        self.inner.sync_ended(slug);
    }
    fn sync_result(&mut self, result: &SyncResult) {
        if let Ok(mut a) = self.attempts.lock() {
            if let Some((started, at)) = a.started.remove(&result.sync_slug) {
                let attempt = Attempt {
                    started,
                    duration: at.elapsed(),
                    succeeded: result.outcome == "success",
                    locked: result.failure == Some("locked"),
                    snapshots: self
                        .snapshot_dirs
                        .get(&result.sync_slug)
                        .and_then(|d| count_snapshots(d)),
                    // Read and removed; no totals (rsync stopped early) is 0.
                    transferred: self.transfer_logs.get(&result.sync_slug).map(|f| {
                        let log = std::fs::read_to_string(f).unwrap_or_default();
                        let _ = std::fs::remove_file(f);
                        monitoring::transferred_bytes(&log).unwrap_or(0)
                    }),
                };
                a.done.insert(result.sync_slug.clone(), attempt);
            }
        }
        self.inner.sync_result(result);
    }
    fn reads_rsync_output(&self) -> bool {
        self.inner.reads_rsync_output()
    }
    fn flush(&mut self) {
        self.inner.flush();
    }
}

/// A run's monitoring: started before preflight, finished after the report.
pub struct Monitor {
    plan: MonitoringPlan,
    attempts: Arc<Mutex<Attempts>>,
    /// The start ping, sent while the run goes on (an unreachable server
    /// must not delay the backup); the end ping waits for it.
    start: Option<std::thread::JoinHandle<()>>,
    /// Where the syncs' rsync logs go (removed with the monitor).
    logs: Option<tempfile::TempDir>,
}

impl Monitor {
    /// `None` without monitoring, and in a dry run (nothing happened to report).
    pub fn new(plan: Option<&MonitoringPlan>, dry_run: bool) -> Option<Monitor> {
        let plan = plan.filter(|_| !dry_run)?.clone();
        let logs = plan
            .metrics
            .as_ref()
            .filter(|m| !m.transfer_logs.is_empty())
            .and_then(|_| {
                tempfile::Builder::new()
                    .prefix("nbkp-rsync.")
                    .tempdir()
                    .ok()
            });
        Some(Monitor {
            plan,
            attempts: Arc::default(),
            start: None,
            logs,
        })
    }

    /// The directory rsync logs to (`RunOptions::rsync_logs`).
    pub fn rsync_logs(&self) -> Option<std::path::PathBuf> {
        self.logs.as_ref().map(|d| d.path().to_path_buf())
    }

    /// The run begins: `<url>/start`, in the background.
    pub fn begin(&mut self) {
        if let Some(ping) = self.plan.ping.clone() {
            self.start = Some(std::thread::spawn(move || {
                send(&ping, &ping.start, "start", "")
            }));
        }
    }

    /// The run could not start at all: `<url>/fail`, with why.
    pub fn could_not_start(self, why: &str) {
        if let Some(ping) = &self.plan.ping {
            send(ping, &ping.fail, "fail", &format!("nbkp run: {why}\n"));
        }
    }

    /// The UI, timed for the metrics.
    pub fn wrap(&self, inner: Box<dyn Ui>) -> Box<dyn Ui> {
        Box::new(Timing {
            inner,
            attempts: self.attempts.clone(),
            snapshot_dirs: self
                .plan
                .metrics
                .iter()
                .flat_map(|m| &m.snapshot_dirs)
                .map(|d| (d.sync.clone(), d.dir.clone()))
                .collect(),
            transfer_logs: match (&self.logs, &self.plan.metrics) {
                (Some(dir), Some(m)) => m
                    .transfer_logs
                    .iter()
                    .map(|t| (t.sync.clone(), dir.path().join(&t.file)))
                    .collect(),
                _ => HashMap::new(),
            },
        })
    }

    pub fn finish(mut self, report: &Report) {
        let exit = report.exit_code();
        if let Some(start) = self.start.take() {
            let _ = start.join();
        }
        if let Some(metrics) = &self.plan.metrics {
            let done = self
                .attempts
                .lock()
                .map(|a| a.done.clone())
                .unwrap_or_default();
            if let Err(e) = write_metrics(metrics, &done, exit) {
                eprintln!(
                    "[nbkp] WARN: cannot write the metrics file {}: {e}",
                    metrics.path
                );
            }
        }
        if let Some(ping) = &self.plan.ping {
            let (url, what) = if monitoring::ping_succeeded(exit) {
                (&ping.success, "success")
            } else {
                (&ping.fail, "fail")
            };
            send(ping, url, what, &summary(report, exit));
        }
    }
}

/// The body of the end ping: the exit code, then each sync's outcome.
fn summary(report: &Report, exit: i32) -> String {
    let mut s = format!("nbkp run: exit {exit}\n");
    for r in &report.results {
        let detail = r.detail.as_deref().unwrap_or("");
        s.push_str(&format!("{}: {} {detail}\n", r.sync_slug, r.outcome));
    }
    s
}

/// POSTs `body` to `url` with the first client on PATH; a warning when
/// none is there or it fails. Bounded by the client's timeout, and killed
/// a little after it should have given up.
fn send(ping: &PingPlan, url: &str, what: &str, body: &str) {
    let Some(client) = ping
        .clients
        .iter()
        .find(|c| crate::programs::find(c.program).is_some())
    else {
        let names: Vec<&str> = ping.clients.iter().map(|c| c.program).collect();
        eprintln!(
            "[nbkp] WARN: no monitoring ping ({what}): neither {} is installed",
            names.join(" nor ")
        );
        return;
    };
    let result = (|| -> Result<(), String> {
        let mut file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
        file.write_all(body.as_bytes()).map_err(|e| e.to_string())?;
        let path = file
            .path()
            .to_str()
            .ok_or("temp path not UTF-8")?
            .to_string();
        let argv = client.argv(&path, url);
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", argv[0]))?;
        let deadline =
            Instant::now() + Duration::from_secs(u64::from(monitoring::PING_TIMEOUT_SECONDS) + 5);
        loop {
            match child.try_wait().map_err(|e| e.to_string())? {
                Some(status) if status.success() => return Ok(()),
                Some(status) => return Err(format!("{} failed ({status})", argv[0])),
                None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                None => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("{} did not finish in time", argv[0]));
                }
            }
        }
    })();
    if let Err(e) = result {
        eprintln!("[nbkp] WARN: the monitoring ping ({what}) failed: {e}");
    }
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The textfile, through a temporary file in its directory and a rename:
/// a collector never reads half of it.
fn write_metrics(
    plan: &MetricsPlan,
    done: &HashMap<String, Attempt>,
    exit: i32,
) -> std::io::Result<()> {
    let path = std::path::Path::new(&plan.path);
    let previous = std::fs::read_to_string(path).unwrap_or_default();
    let now = unix(SystemTime::now());
    let text = monitoring::textfile(plan, &previous, |m: &Metric, sync| {
        let Some(slug) = sync else {
            return Some(match m.name {
                n if n == monitoring::RUN_STATUS.name => exit.to_string(),
                _ => format!("{now:.3}"),
            });
        };
        let a = done.get(slug)?;
        if m.kept == Kept::UnlessSucceeded && !a.succeeded {
            return None;
        }
        Some(match m.name {
            n if n == monitoring::LAST_SUCCESS.name => {
                format!("{:.3}", unix(a.started + a.duration))
            }
            n if n == monitoring::LAST_RUN.name => format!("{:.3}", unix(a.started)),
            n if n == monitoring::LAST_DURATION.name => {
                format!("{:.3}", a.duration.as_secs_f64())
            }
            n if n == monitoring::SNAPSHOTS.name => a.snapshots?.to_string(),
            n if n == monitoring::TRANSFERRED.name => a.transferred?.to_string(),
            _ => monitoring::status_value(a.succeeded, a.locked).to_string(),
        })
    });
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".nbkp-metrics-")
        .tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
