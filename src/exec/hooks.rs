//! The plan's hooks, run here around a sync as the script runs them: each
//! an argv (never a shell), stdin from /dev/null, stdout and stderr to our
//! stderr, the plan's environment added to ours. Not run in a dry run.

use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;

use super::values::{expand, Values};
use super::{Executor, SyncResult};
use crate::plan::hooks::HookCall;
use crate::plan::{SnapshotPlan, SyncPlan};

/// A hook that failed: its list and how it ended.
pub struct HookFailure {
    pub message: String,
}

impl Executor<'_> {
    /// Hooks, then the transfer, then the closing hooks. Once the `before`
    /// hooks started, exactly one of `after` (the sync completed) and
    /// `on-failure` (it did not) follows, unless the run was interrupted.
    pub(super) fn attempt(&mut self, sync: &SyncPlan, base: &Values) -> SyncResult {
        let mut v = base.clone();
        v.candidate =
            super::clock::snapshot_name(std::time::SystemTime::now(), sync.snapshot_format);
        if sync.hooks.is_empty() {
            return self.transfer(sync, &mut v);
        }
        v.hook_status = "running".into();
        v.rsync_exit = String::new();
        v.hook_snapshot = String::new();
        if let Err(e) = self.hooks(sync, "before", &sync.hooks.before, &mut v, true) {
            let mut result = super::skipped(&sync.slug, self.options.dry_run, "hook", e.message);
            result.outcome = "failed";
            self.closing(sync, "failed", &mut v);
            return result;
        }
        let mut result = self.transfer(sync, &mut v);
        if self.interrupted.load(Ordering::SeqCst) {
            return result;
        }
        self.closing_hooks(sync, &mut v, &mut result);
        result
    }

    /// After the transfer: `after` when the sync completed (a failing one
    /// fails the sync), else `on-failure`, with the sync's outcome in the
    /// hooks' environment. Both back-ends of `nbkp run` (in order and
    /// lanes at once) end a sync here.
    pub(super) fn closing_hooks(
        &mut self,
        sync: &SyncPlan,
        v: &mut Values,
        result: &mut SyncResult,
    ) {
        if result.rsync_exit_code >= 0 {
            v.rsync_exit = result.rsync_exit_code.to_string();
        }
        if result.success {
            v.hook_status = "completed".into();
            if !matches!(sync.snapshots, SnapshotPlan::None) {
                v.hook_snapshot = v.snapshot.clone();
            }
            if let Err(e) = self.hooks(sync, "after", &sync.hooks.after, v, true) {
                result.success = false;
                result.outcome = "failed";
                result.failure = Some("hook");
                result.detail = Some(e.message);
            }
        } else {
            let status = if result.failure == Some("locked") {
                "skipped"
            } else {
                "failed"
            };
            self.closing(sync, status, v);
        }
    }

    /// Every `on-failure` hook runs, whatever the others did.
    pub(super) fn closing(&mut self, sync: &SyncPlan, status: &str, v: &mut Values) {
        v.hook_status = status.into();
        let _ = self.hooks(sync, "on-failure", &sync.hooks.on_failure, v, false);
    }

    /// Runs a list of hooks; with `stop`, the first failure ends the list.
    pub(super) fn hooks(
        &mut self,
        sync: &SyncPlan,
        kind: &str,
        calls: &[HookCall],
        v: &mut Values,
        stop: bool,
    ) -> Result<(), HookFailure> {
        v.hook_kind = kind.into();
        let mut first = None;
        for call in calls {
            if self.options.dry_run {
                self.log(&format!(
                    "{}: {kind} hook not run in a dry run: {}",
                    sync.slug, call.shown
                ));
                continue;
            }
            self.log(&format!("{}: {kind} hook: {}", sync.slug, call.shown));
            let code = self.run_hook(sync, call, v);
            if code != 0 {
                let message = format!("{kind} hook exited with code {code}: {}", call.shown);
                self.log(&format!("ERROR: {}: {message}", sync.slug));
                if first.is_none() {
                    first = Some(HookFailure { message });
                }
                if stop {
                    break;
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// One hook; its exit code (126/127 when it cannot be started, as a
    /// shell reports it; 128 + n when a signal ended it).
    fn run_hook(&mut self, sync: &SyncPlan, call: &HookCall, v: &Values) -> i32 {
        let mut cmd = Command::new(&call.argv[0]);
        cmd.args(&call.argv[1..]).stdin(Stdio::null());
        for e in &sync.hooks.env {
            cmd.env(e.name, expand(&e.value, v).join(""));
        }
        cmd.stdout(std::io::stderr());
        self.flush_log();
        match cmd.status() {
            Ok(status) => {
                use std::os::unix::process::ExitStatusExt;
                status
                    .code()
                    .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
            }
            Err(e) => {
                self.log(&format!("{}: cannot run {}: {e}", sync.slug, call.argv[0]));
                if e.kind() == std::io::ErrorKind::NotFound {
                    127
                } else {
                    126
                }
            }
        }
    }
}
