//! `nbkp run` remembers each completed sync in the state file (`state.rs`)
//! as soon as it completes, so a run stopped later still counts it.

use std::path::PathBuf;
use std::time::SystemTime;

use crate::exec::{SyncResult, Ui};
use crate::state;

/// A UI that passes everything on and records results.
pub struct Recording {
    pub inner: Box<dyn Ui>,
    /// `None`: no state directory (no HOME); nothing is recorded.
    pub path: Option<PathBuf>,
    pub dry_run: bool,
    /// Warned once already about an unwritable state file.
    warned: bool,
}

impl Recording {
    pub fn new(inner: Box<dyn Ui>, path: Option<PathBuf>, dry_run: bool) -> Recording {
        Recording {
            inner,
            path,
            dry_run,
            warned: false,
        }
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
        let Some(path) = &self.path else { return };
        if self.dry_run {
            return;
        }
        let now = SystemTime::now();
        let written = match result.outcome {
            "success" => {
                let snapshot = result
                    .snapshot_path
                    .as_deref()
                    .and_then(|p| p.rsplit('/').next());
                state::record_success(path, &result.sync_slug, now, snapshot)
            }
            "failed" => {
                let detail = result.detail.as_deref().unwrap_or("failed");
                state::record_failure(path, &result.sync_slug, now, detail)
            }
            _ => Ok(()),
        };
        // The backup itself went fine or not regardless: only warn.
        if let Err(msg) = written {
            if !self.warned {
                self.inner.log(&format!(
                    "WARNING: cannot record the run for nbkp status: {msg}"
                ));
                self.warned = true;
            }
        }
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
