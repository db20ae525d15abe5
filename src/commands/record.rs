//! `nbkp run` remembers each completed sync in the state file (`state.rs`)
//! soon after it completes (within [`BATCH`]), so a run stopped later still
//! counts it.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::exec::{SyncResult, Ui};
use crate::state::{self, Record};

/// How long after one write of the state file the next may come; the
/// records of syncs completed meanwhile wait and go together. A write is
/// a lock, a read, an fsync and a rename: done after each of many short
/// syncs, it competed with the next rsync's start (on two cores about 2%
/// of a run of 20 unchanged syncs) and wears an SD card for nothing. A run
/// killed outright loses at most this much history; a stopped or finished
/// run writes everything before it reports.
const BATCH: Duration = Duration::from_secs(1);

/// A UI that passes everything on and records results.
pub struct Recording {
    pub inner: Box<dyn Ui>,
    /// Warned once already about an unwritable state file.
    warned: bool,
    /// Writes the records, in order, while the next syncs run (see
    /// [`BATCH`]). Dropping the sender and joining ends it. `None`: a dry
    /// run, or no state directory (no HOME); nothing is recorded.
    writer: Option<(Sender<Record>, JoinHandle<()>)>,
    /// What the writer could not write.
    failures: Option<Receiver<String>>,
}

impl Recording {
    pub fn new(inner: Box<dyn Ui>, path: Option<PathBuf>, dry_run: bool) -> Recording {
        Recording::batched(inner, path, dry_run, BATCH)
    }

    /// With `gap` between two writes (tests use a long one).
    fn batched(
        inner: Box<dyn Ui>,
        path: Option<PathBuf>,
        dry_run: bool,
        gap: Duration,
    ) -> Recording {
        let (writer, failures) = match path.filter(|_| !dry_run) {
            Some(path) => {
                let (tx, rx) = mpsc::channel::<Record>();
                let (fail_tx, fail_rx) = mpsc::channel();
                let handle = std::thread::spawn(move || {
                    let mut batch = Vec::new();
                    // The first record is written at once.
                    let mut next_write = Instant::now();
                    while let Ok(first) = rx.recv() {
                        batch.push(first);
                        // Until the next write may come, gather; the run's
                        // end (the sender dropped) writes at once.
                        while let Some(r) = next_write
                            .checked_duration_since(Instant::now())
                            .and_then(|wait| rx.recv_timeout(wait).ok())
                        {
                            batch.push(r);
                        }
                        batch.extend(rx.try_iter());
                        if let Err(msg) = state::record(&path, &batch) {
                            let _ = fail_tx.send(msg);
                        }
                        batch.clear();
                        next_write = Instant::now() + gap;
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

    fn reads_rsync_output(&self) -> bool {
        self.inner.reads_rsync_output()
    }

    fn flush(&mut self) {
        self.inner.flush();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::LogUi;

    fn result(slug: &str, success: bool) -> SyncResult {
        SyncResult {
            sync_slug: slug.into(),
            outcome: if success { "success" } else { "failed" },
            dry_run: false,
            rsync_exit_code: if success { 0 } else { 23 },
            output: String::new(),
            failure: (!success).then_some("rsync"),
            cancelled_by: None,
            detail: (!success).then(|| "rsync exited with code 23".into()),
            snapshot_path: success.then(|| "/d/snapshots/2026-12-07T01:00:00.000Z".into()),
            pruned_paths: None,
            warnings: Vec::new(),
            success,
        }
    }

    /// The first record is written at once; later ones wait for the batch
    /// (an hour here, so the check cannot race it) unless the run ends
    /// first, and then all are written, in order.
    #[test]
    fn records_are_batched_and_all_written_when_the_run_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nbkp/state.json");
        let ui: Box<dyn Ui> = Box::new(LogUi(|_: &str| {}));
        let hour = Duration::from_secs(3600);
        let mut rec = Recording::batched(ui, Some(path.clone()), false, hour);
        rec.sync_result(&result("a", true));
        let started = Instant::now();
        while !state::load(&path).unwrap().syncs.contains_key("a") {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "a never recorded"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        rec.sync_result(&result("b", true));
        rec.sync_result(&result("a", false));
        std::thread::sleep(Duration::from_millis(200));
        let held = state::load(&path).unwrap();
        assert!(!held.syncs.contains_key("b"), "written before its batch");
        assert_eq!(held.syncs["a"].last_failure, None);
        drop(rec);
        let s = state::load(&path).unwrap();
        assert!(s.syncs["b"].last_success.is_some());
        assert_eq!(
            s.syncs["a"].snapshot.as_deref(),
            Some("2026-12-07T01:00:00.000Z")
        );
        assert_eq!(
            s.syncs["a"].last_failure_detail.as_deref(),
            Some("rsync exited with code 23")
        );
    }
}
