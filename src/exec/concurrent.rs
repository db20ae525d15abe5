//! `nbkp run` with several syncs at once: the plan's lanes (see
//! `plan::lanes`), joined further where this machine's devices say so
//! (two volumes on one device, a rotational source disk), each running in
//! plan order; a sync whose upstream is in another lane waits for it; at
//! most `--jobs` rsyncs at once.
//!
//! One thread does everything but the transfers: it starts each sync
//! (hooks, prepare) up to its rsync, waits for whichever rsync ends first,
//! and finishes that sync (commit or abort, hooks) before starting more.
//! So the operations, the hosts' long-lived shells and the log stay as
//! single-threaded as in a sequential run, log lines are written whole,
//! and a stop request reaches every rsync from one place.

use std::collections::HashMap;
use std::fs::File;
use std::process::Child;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use super::channels::Session;
use super::child_exit::ChildExit;
use super::values::{expand, Values};
use super::{preflight_errors, skipped, Executor, Report, Status, SyncResult};

/// A sync whose rsync is running.
struct Running {
    index: usize,
    values: Values,
    result: SyncResult,
    child: Child,
    exit: ChildExit,
    capture: Option<File>,
    /// How much of `capture` the UI has seen, and the unfinished line.
    shown: u64,
    partial: Vec<u8>,
    session: Option<Session>,
}

/// How starting a sync went.
enum Start {
    Running(Box<Running>),
    Done(Status, Box<SyncResult>),
}

impl Executor<'_> {
    /// The syncs, lanes at once, after a preflight that allows them;
    /// results in plan order.
    pub(super) fn sync_lanes(
        &mut self,
        report: &mut Report,
        codes: &HashMap<String, u8>,
        base: &Values,
        lane: &[usize],
        ran: &[usize],
        status: &mut HashMap<String, Status>,
    ) {
        let plan = self.plan;
        let n = plan.syncs.len();
        let position: HashMap<&str, usize> = plan
            .syncs
            .iter()
            .enumerate()
            .map(|(i, s)| (s.slug.as_str(), i))
            .collect();
        // `ran`: syncs already run (the early phase, while the remote hosts
        // answered): ended, with their status in `status` and their
        // results in the report.
        let mut done: Vec<Option<SyncResult>> = vec![None; n];
        let mut started = vec![false; n];
        for &i in ran {
            started[i] = true;
            done[i] = Some(skipped(
                &plan.syncs[i].slug,
                self.options.dry_run,
                "ran",
                String::new(),
            ));
        }
        let mut running: Vec<Box<Running>> = Vec::new();
        loop {
            // Start, in plan order, every sync whose lane is free up to it
            // and whose upstream has ended, while there are free jobs.
            for i in 0..n {
                if started[i] || running.len() >= self.options.jobs {
                    continue;
                }
                if (0..i).any(|j| lane[j] == lane[i] && done[j].is_none()) {
                    continue;
                }
                let sync = &plan.syncs[i];
                let upstream = sync.schedule.upstream.as_deref();
                if upstream
                    .and_then(|u| position.get(u))
                    .is_some_and(|&j| done[j].is_none())
                {
                    continue;
                }
                started[i] = true;
                if self.interrupted.load(Ordering::SeqCst) {
                    done[i] = Some(self.not_run_interrupted(&sync.slug));
                    continue;
                }
                let errors = preflight_errors(report, &sync.slug);
                match self.start(i, codes[&sync.slug], status, &errors, base) {
                    Start::Running(r) => running.push(r),
                    Start::Done(st, result) => {
                        let result = *result;
                        status.insert(sync.slug.clone(), st);
                        self.ui.sync_result(&result);
                        done[i] = Some(result);
                    }
                }
            }
            if running.is_empty() {
                // Nothing runs, so nothing blocks the first sync not started.
                if started.iter().all(|&s| s) {
                    break;
                }
                continue;
            }
            self.flush_log();
            let to_ui = self.options.stream_rsync && self.ui.reads_rsync_output();
            wait_any(
                &running,
                Duration::from_millis(if to_ui { 50 } else { 100 }),
            );
            if to_ui {
                for r in &mut running {
                    self.show_progress(r);
                }
            }
            if self.interrupted.load(Ordering::SeqCst) {
                for r in &mut running {
                    let _ = r.child.kill();
                }
            }
            let mut k = 0;
            while k < running.len() {
                let exited = match running[k].child.try_wait() {
                    Ok(Some(s)) => Some(s.code().unwrap_or(-1)),
                    Ok(None) => None,
                    Err(_) => Some(-1),
                };
                let Some(code) = exited else {
                    k += 1;
                    continue;
                };
                let r = running.swap_remove(k);
                let index = r.index;
                let (st, result) = self.ended(*r, code);
                status.insert(plan.syncs[index].slug.clone(), st);
                self.ui.sync_result(&result);
                done[index] = Some(result);
            }
        }
        report.results.extend(
            done.into_iter()
                .enumerate()
                .filter(|(i, _)| !ran.contains(i))
                .filter_map(|(_, r)| r),
        );
    }

    /// Each sync's lane for this run: the plan's, joined where two of them
    /// write one device or one reads a rotational disk another uses.
    pub(super) fn runtime_lanes(&self, base: &Values) -> Vec<usize> {
        let syncs = &self.plan.syncs;
        let mut parent: Vec<usize> = (0..self.plan.lanes.len().max(1)).collect();
        fn find(p: &mut [usize], mut i: usize) -> usize {
            while p[i] != i {
                i = p[i];
            }
            i
        }
        let mut holder: HashMap<u64, usize> = HashMap::new();
        for sync in syncs {
            let lane = sync.schedule.lane.unwrap_or(0);
            let Some(devices) = &sync.schedule.devices else {
                continue;
            };
            let dev = |arg: &crate::plan::Arg| {
                use std::os::unix::fs::MetadataExt;
                std::fs::metadata(expand(arg, base).concat())
                    .ok()
                    .map(|m| m.dev())
            };
            let mut held: Vec<u64> = devices
                .destination
                .as_ref()
                .and_then(dev)
                .into_iter()
                .collect();
            if let Some(d) = devices.source.as_ref().and_then(dev) {
                if rotational(d) {
                    held.push(d);
                }
            }
            for d in held {
                let other = *holder.entry(d).or_insert(lane);
                let (a, b) = (find(&mut parent, lane), find(&mut parent, other));
                if a != b {
                    parent[a.max(b)] = a.min(b);
                }
            }
        }
        syncs
            .iter()
            .map(|s| find(&mut parent, s.schedule.lane.unwrap_or(0)))
            .collect()
    }

    /// A sync up to its rsync: gate, hooks before, prepare, rsync started.
    fn start(
        &mut self,
        index: usize,
        code: u8,
        status: &HashMap<String, Status>,
        errors: &str,
        base: &Values,
    ) -> Start {
        let sync = &self.plan.syncs[index];
        if let Some((st, result)) = self.gate(sync, code, status, errors) {
            return Start::Done(st, Box::new(result));
        }
        let slug = sync.slug.as_str();
        self.log(&format!("Starting sync: {slug}"));
        self.ui.sync_started(slug, index + 1, self.plan.syncs.len());
        let mut v = base.clone();
        v.candidate = super::clock::snapshot_name(SystemTime::now(), sync.snapshot_format);
        if !sync.hooks.is_empty() {
            v.hook_status = "running".into();
            v.rsync_exit = String::new();
            v.hook_snapshot = String::new();
            if let Err(e) = self.hooks(sync, "before", &sync.hooks.before, &mut v, true) {
                let mut result = skipped(slug, self.options.dry_run, "hook", e.message);
                result.outcome = "failed";
                self.closing(sync, "failed", &mut v);
                return self.concluded(slug, result);
            }
        }
        let ahead = self.prepared.take_if(|p| p.index == index);
        let mut result = match &ahead {
            Some(p) => p.result.clone(),
            None => skipped(slug, self.options.dry_run, "rsync", String::new()),
        };
        result.outcome = "failed";
        result.failure = None;
        result.detail = None;
        if let Some(prepare) = &sync.prepare {
            let outcome = match ahead {
                Some(p) => {
                    v = p.values;
                    p.outcome
                }
                None => self.op(sync, prepare, &mut v, &mut result),
            };
            if let Err(e) = outcome {
                result.failure = Some(if e.locked {
                    "locked"
                } else {
                    prepare.failure()
                });
                result.detail = Some(e.message);
                return self.after(index, v, result);
            }
        }
        let mut session = sync
            .channel
            .as_ref()
            .and_then(|c| self.channels.take(index, &self.plan.hosts[c.host], &v));
        let (mut cmd, program) = match self.rsync_command(sync, &mut v, session.as_ref()) {
            Ok(c) => c,
            Err(message) => {
                result.failure = Some("password");
                result.detail = Some(message);
                if let Some(abort) = &sync.abort {
                    let _ = self.op(sync, abort, &mut v, &mut result);
                }
                return self.after(index, v, result);
            }
        };
        // Several rsyncs at once: their output is kept, never interleaved.
        let capture = tempfile::tempfile().ok();
        if let Some(file) = &capture {
            if let (Ok(out), Ok(err)) = (file.try_clone(), file.try_clone()) {
                cmd.stdout(out).stderr(err);
            }
        }
        self.flush_log();
        let spawned = cmd.spawn();
        if let Some(s) = session.as_mut() {
            s.started();
        }
        match spawned {
            Ok(child) => Start::Running(Box::new(Running {
                index,
                values: v,
                result,
                exit: ChildExit::new(&child),
                child,
                capture,
                shown: 0,
                partial: Vec::new(),
                session,
            })),
            Err(e) => {
                result.output = format!("cannot run {program}: {e}");
                let (st, result) = self.finish(index, v, result, -1);
                Start::Done(st, Box::new(result))
            }
        }
    }

    /// The progress lines rsync has added to its kept output since the
    /// last look, to the UI (rsync redraws its line with \r: split on
    /// both). Read at an offset, so the output stays whole for `ended`.
    fn show_progress(&mut self, r: &mut Running) {
        use std::os::unix::fs::FileExt;
        let Some(file) = &r.capture else {
            return;
        };
        let slug = &self.plan.syncs[r.index].slug;
        let mut buf = [0u8; 8192];
        while let Ok(n) = file.read_at(&mut buf, r.shown) {
            if n == 0 {
                break;
            }
            r.shown += n as u64;
            for &b in &buf[..n] {
                if b != b'\r' && b != b'\n' {
                    r.partial.push(b);
                    continue;
                }
                let line = String::from_utf8_lossy(&r.partial);
                if let Some(p) = super::parse_progress(&line) {
                    self.ui.transfer_progress(slug, p, line.trim());
                }
                r.partial.clear();
            }
        }
    }

    /// A running sync whose rsync exited with `code`: its output collected.
    fn ended(&mut self, r: Running, code: i32) -> (Status, SyncResult) {
        let Running {
            index,
            values,
            mut result,
            capture,
            session,
            ..
        } = r;
        if let Some(mut file) = capture {
            use std::io::{Read, Seek};
            let _ = file.rewind();
            let mut bytes = Vec::new();
            let _ = file.read_to_end(&mut bytes);
            result.output.push_str(&String::from_utf8_lossy(&bytes));
        }
        if let Some(s) = session {
            result.output.push_str(&s.finish());
        }
        self.finish(index, values, result, code)
    }

    /// A sync whose rsync ended with `code`: commit or abort, then hooks.
    fn finish(
        &mut self,
        index: usize,
        mut values: Values,
        mut result: SyncResult,
        code: i32,
    ) -> (Status, SyncResult) {
        let sync = &self.plan.syncs[index];
        result.rsync_exit_code = code;
        if code != 0 {
            self.log(&format!(
                "ERROR: {}: rsync exited with code {code}",
                sync.slug
            ));
        }
        for line in super::kept_lines(&result.output) {
            self.ui.log(&format!("{}: {line}", sync.slug));
        }
        if code == 0 {
            result = self.commit(sync, &mut values, result);
        } else {
            if let Some(abort) = &sync.abort {
                let _ = self.op(sync, abort, &mut values, &mut result);
            }
            result.failure = Some("rsync");
            result.detail = Some(format!("rsync exited with code {code}"));
        }
        match self.after(index, values, result) {
            Start::Done(st, result) => (st, *result),
            Start::Running(_) => unreachable!("after never starts a sync"),
        }
    }

    /// The closing hooks (as `attempt` runs them), then the sync's status.
    fn after(&mut self, index: usize, mut v: Values, mut result: SyncResult) -> Start {
        let sync = &self.plan.syncs[index];
        self.ui.sync_ended(&sync.slug);
        if !sync.hooks.is_empty() && !self.interrupted.load(Ordering::SeqCst) {
            self.closing_hooks(sync, &mut v, &mut result);
        }
        self.concluded(&sync.slug, result)
    }

    fn concluded(&mut self, slug: &str, result: SyncResult) -> Start {
        let (st, result) = self.conclude(slug, result);
        Start::Done(st, Box::new(result))
    }
}

/// Sleeps until one of the running rsyncs exits, a signal arrives, or
/// `limit` passes.
fn wait_any(running: &[Box<Running>], limit: Duration) {
    let exits: Vec<&ChildExit> = running.iter().map(|r| &r.exit).collect();
    super::child_exit::wait_any(&exits, limit);
}

/// Whether the block device `dev` (a `st_dev`) is a rotational disk:
/// Linux's `/sys/dev/block/MAJ:MIN/queue/rotational`, or its parent's for a
/// partition. Anything else (no such device, another system) is not.
fn rotational(dev: u64) -> bool {
    let (major, minor) = (
        libc::major(dev as libc::dev_t),
        libc::minor(dev as libc::dev_t),
    );
    let base = format!("/sys/dev/block/{major}:{minor}");
    for path in [
        format!("{base}/queue/rotational"),
        format!("{base}/../queue/rotational"),
    ] {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text.trim() == "1";
        }
    }
    false
}
