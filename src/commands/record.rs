//! `nbkp run` remembers each completed sync in the state file (`state.rs`)
//! as soon as it completes, so a run stopped later still counts it.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::SystemTime;

use crate::exec::{SyncResult, Ui};
use crate::state;

/// A UI that passes everything on and records results.
pub struct Recording {
    pub inner: Box<dyn Ui>,
    /// Warned once already about an unwritable state file.
    warned: bool,
    /// Writes the records, in order, while the next sync runs: a write
    /// takes a lock, a read, an fsync and a rename, time the next rsync
    /// need not wait for. Dropping the sender and joining ends it. `None`:
    /// a dry run, or no state directory (no HOME); nothing is recorded.
    writer: Option<(Sender<Record>, JoinHandle<()>)>,
    /// What the writer could not write.
    failures: Option<Receiver<String>>,
}

/// One completed or failed sync, for the state file.
struct Record {
    slug: String,
    at: SystemTime,
    /// `Ok(snapshot name)` for a success, `Err(detail)` for a failure.
    outcome: Result<Option<String>, String>,
}

impl Recording {
    pub fn new(inner: Box<dyn Ui>, path: Option<PathBuf>, dry_run: bool) -> Recording {
        let (writer, failures) = match path.filter(|_| !dry_run) {
            Some(path) => {
                let (tx, rx) = mpsc::channel::<Record>();
                let (fail_tx, fail_rx) = mpsc::channel();
                let handle = std::thread::spawn(move || {
                    for r in rx {
                        let written = match &r.outcome {
                            Ok(snapshot) => {
                                state::record_success(&path, &r.slug, r.at, snapshot.as_deref())
                            }
                            Err(detail) => state::record_failure(&path, &r.slug, r.at, detail),
                        };
                        if let Err(msg) = written {
                            let _ = fail_tx.send(msg);
                        }
                    }
                });
                (Some((tx, handle)), Some(fail_rx))
            }
            None => (None, None),
        };
        Recording {
            inner,
            warned: false,
            writer,
            failures,
        }
    }

    /// Warns (once) about records the writer could not write.
    fn warn_failures(&mut self) {
        let Some(failures) = &self.failures else {
            return;
        };
        // The backup itself went fine or not regardless: only warn.
        if let Some(msg) = failures.try_iter().next() {
            if !self.warned {
                self.inner.log(&format!(
                    "WARNING: cannot record the run for nbkp status: {msg}"
                ));
                self.warned = true;
            }
        }
    }
}

impl Drop for Recording {
    /// Every record is written before the run's report (and `notify_after_run`,
    /// which reads them) goes on.
    fn drop(&mut self) {
        if let Some((tx, handle)) = self.writer.take() {
            drop(tx);
            let _ = handle.join();
        }
        self.warn_failures();
    }
}

impl Ui for Recording {
    fn log(&mut self, line: &str) {
        self.inner.log(line);
    }

    fn sync_started(&mut self, slug: &str, index: usize, total: usize) {
        self.inner.sync_started(slug, index, total);
    }

    fn transfer_progress(&mut self, percent: u8, line: &str) {
        self.inner.transfer_progress(percent, line);
    }

    fn rsync_output(&mut self, line: &str) {
        self.inner.rsync_output(line);
    }

    fn sync_finished(&mut self) {
        self.inner.sync_finished();
    }

    fn reads_rsync_output(&self) -> bool {
        self.inner.reads_rsync_output()
    }

    fn sync_result(&mut self, result: &SyncResult) {
        self.inner.sync_result(result);
        self.warn_failures();
        let Some((writer, _)) = &self.writer else {
            return;
        };
        let outcome = match result.outcome {
            "success" => Ok(result
                .snapshot_path
                .as_deref()
                .and_then(|p| p.rsplit('/').next())
                .map(str::to_string)),
            "failed" => Err(result.detail.as_deref().unwrap_or("failed").to_string()),
            _ => return,
        };
        let _ = writer.send(Record {
            slug: result.sync_slug.clone(),
            at: SystemTime::now(),
            outcome,
        });
    }
}

/// After a run: the desktop notification, when the config asks for one and
/// a sync failed or is stale. A notification that cannot be shown is a
/// warning on stderr.
pub fn notify_after_run(
    config_file: Option<&std::path::Path>,
    report: &crate::exec::Report,
    state_file: Option<&std::path::Path>,
) {
    // Loaded a moment ago for the plan; its warnings were shown then.
    let Ok(loaded) = crate::config::load(config_file) else {
        return;
    };
    if !loaded.config.desktop_notifications {
        return;
    }
    let state = state_file
        .and_then(|p| state::load(p).ok())
        .unwrap_or_default();
    let (now, _) = state::stamp(SystemTime::now());
    let statuses = crate::status::evaluate(&loaded.config, &state, now);
    let Some((title, body)) = crate::notify::message(report, &statuses) else {
        return;
    };
    let urgent = report.exit_code() == 1;
    if let Err(msg) = crate::notify::send(&title, &body, urgent) {
        eprintln!("Warning: no desktop notification: {msg}");
    }
}
