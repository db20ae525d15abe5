//! `nbkp run`: the plan performed here. The executor decides nothing: it
//! asks the plan's probes, evaluates the plan's checks, and runs the plan's
//! commands and operations (the same runtime library text the generated
//! script embeds), in the plan's order, with the same rules as the script.

mod channels;
mod child_exit;
pub mod clock;
mod concurrent;
pub mod conditions;
mod daemon;
mod hooks;
pub mod hosts;
pub mod local_ops;
pub mod local_probes;
pub mod lock;
pub mod mounts;
pub mod values;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

use crate::plan::{CheckLayer, CheckStep, OpCall, Plan, SnapshotPlan, SyncPlan, Verdict};
use hosts::Hosts;
use values::{argv, expand, Values};

/// How strict preflight is (spec §6.4): the Python nbkp's names.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strictness {
    IgnoreInactive,
    IgnoreNone,
    IgnoreAll,
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub dry_run: bool,
    /// A mode of `plan::rsync::PROGRESS_MODES`.
    pub progress: String,
    pub strictness: Strictness,
    /// Let rsync write to this terminal instead of capturing its output.
    pub stream_rsync: bool,
    /// A directory where each sync's rsync logs its totals (`<ident>`),
    /// for the metrics file; `None`: no log.
    pub rsync_logs: Option<std::path::PathBuf>,
    /// How many syncs may run at once (1: in order, one at a time).
    pub jobs: usize,
}

/// One failed check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckFailure {
    pub verdict: Verdict,
    pub message: String,
    /// What to do about it.
    pub fix: Option<String>,
}

/// A sync's preflight: `status` is `active`, `inactive`, `pending` or `broken`.
#[derive(Debug, Clone, Serialize)]
pub struct Preflight {
    pub sync_slug: String,
    pub status: &'static str,
    pub errors: Vec<CheckFailure>,
    /// Problems that keep no sync from running (a clock behind the newest
    /// snapshot).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Warning {
    pub kind: &'static str,
    pub message: String,
}

/// What happened to one sync (the keys of the Python nbkp's results).
#[derive(Debug, Clone, Serialize)]
pub struct SyncResult {
    pub sync_slug: String,
    /// `success`, `failed`, `cancelled` or `skipped`.
    pub outcome: &'static str,
    pub dry_run: bool,
    /// -1 when rsync did not run or did not finish.
    pub rsync_exit_code: i32,
    pub output: String,
    /// `rsync`, `mkdir`, `snapshot`, `symlink`, `inactive`, `dry-run-pending`,
    /// `preflight`, `upstream-failed` or `upstream-skipped`.
    pub failure: Option<&'static str>,
    pub cancelled_by: Option<String>,
    pub detail: Option<String>,
    pub snapshot_path: Option<String>,
    pub pruned_paths: Option<Vec<String>>,
    pub warnings: Vec<Warning>,
    pub success: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub dry_run: bool,
    pub strictness: Strictness,
    pub preflight: Vec<Preflight>,
    /// Preflight found errors the strictness does not allow: nothing ran.
    pub aborted: bool,
    /// How many syncs have such errors.
    pub fatal: usize,
    /// SIGINT or SIGTERM stopped the run (exit code 130).
    pub interrupted: bool,
    pub results: Vec<SyncResult>,
    /// Mount-managed volumes after the mount phase, and after unmounting.
    pub mounts: Vec<mounts::MountResult>,
    pub umounts: Vec<mounts::MountResult>,
}

impl Report {
    /// Failed and skipped syncs, counted as the script counts them: an
    /// inactive or upstream-skipped sync is a failure only under ignore-none.
    pub fn counts(&self) -> (usize, usize) {
        let (mut failures, mut skipped) = (0, 0);
        for r in &self.results {
            match r.failure {
                None => {}
                Some("inactive") | Some("upstream-skipped") => {
                    skipped += 1;
                    if self.strictness == Strictness::IgnoreNone {
                        failures += 1;
                    }
                }
                Some("dry-run-pending") | Some("locked") => skipped += 1,
                Some(_) => failures += 1,
            }
        }
        (failures, skipped)
    }

    /// 0 when every attempted sync succeeded, 1 when one failed or preflight
    /// stopped the run, 3 when nothing failed but a destination was locked by
    /// another run (spec §10.6, plus the lock).
    pub fn exit_code(&self) -> i32 {
        use crate::exit::Exit;
        let exit = if self.interrupted {
            Exit::Interrupted
        } else if self.aborted || self.counts().0 > 0 {
            Exit::Failed
        } else if self.results.iter().any(|r| r.failure == Some("locked")) {
            Exit::Locked
        } else {
            Exit::Ok
        };
        exit.code()
    }
}

/// What `nbkp disks` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisksAction {
    Mount,
    Umount,
    Status,
}

/// How a sync ended, as the script's `NBKP_ST_*` records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Failed,
    CancelledByFailure,
    Skipped,
    Cancelled,
    Pending,
}

/// Where a run reports as it goes: log lines, and (on a terminal) which
/// sync is running and how far its transfer is.
pub trait Ui {
    fn log(&mut self, line: &str);
    /// Sync `index` (1-based) of `total` starts.
    fn sync_started(&mut self, _slug: &str, _index: usize, _total: usize) {}
    /// Sync `slug`'s whole-transfer progress (`--info=progress2`): percent
    /// done, and rsync's line.
    fn transfer_progress(&mut self, _slug: &str, _percent: u8, _line: &str) {}
    /// Other text rsync printed, when the UI reads rsync's output.
    fn rsync_output(&mut self, line: &str) {
        self.log(line);
    }
    fn sync_finished(&mut self) {}
    /// Sync `slug` has ended, when several run at once (`sync_finished`
    /// ends the one sync running otherwise).
    fn sync_ended(&mut self, _slug: &str) {
        self.sync_finished()
    }
    /// A sync's result is final (attempted or not); `nbkp run` records
    /// completed syncs for `nbkp status` here.
    fn sync_result(&mut self, _result: &SyncResult) {}
    /// Read rsync's output (to show progress) instead of passing it through.
    fn reads_rsync_output(&self) -> bool {
        false
    }
    /// nbkp is about to wait (for rsync, a host, a hook, a drive): a UI
    /// that holds lines back writes them now.
    fn flush(&mut self) {}
}

/// Log lines through a function; nothing else.
pub struct LogUi<F: FnMut(&str)>(pub F);

impl<F: FnMut(&str)> Ui for LogUi<F> {
    fn log(&mut self, line: &str) {
        (self.0)(line)
    }
}

/// `--info=progress2` lines: `   1,048,576  50%  100.00MB/s  0:00:01 (xfr#1, to-chk=1/3)`
/// (sizes may be human-readable: `32.77K`).
pub fn parse_progress(line: &str) -> Option<u8> {
    let mut words = line.split_whitespace();
    let bytes = words.next()?;
    let number = bytes.trim_end_matches(['K', 'M', 'G', 'T', 'P']);
    if number.is_empty()
        || !number
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b',' || b == b'.')
    {
        return None;
    }
    let percent = words.next()?.strip_suffix('%')?.parse::<u8>().ok()?;
    Some(percent.min(100))
}

/// The lines rsync printed that a sync run alongside others shows when it
/// ends, each named `SYNC: line`: every line (split on CR and LF) except
/// empty ones and progress redraws (the second word ends with `%`). The
/// script's `nbkp_kept` keeps the same lines (a test holds them equal).
pub fn kept_lines(output: &str) -> impl Iterator<Item = &str> {
    output.split(['\r', '\n']).filter(|line| {
        let second = line.split([' ', '\t']).filter(|w| !w.is_empty()).nth(1);
        !line.is_empty() && !second.is_some_and(|w| w.ends_with('%'))
    })
}

pub struct Executor<'p> {
    plan: &'p Plan,
    options: RunOptions,
    hosts: Hosts<'p>,
    ui: Box<dyn Ui + 'p>,
    /// Set by SIGINT or SIGTERM: stop after cleaning up the current sync.
    interrupted: Arc<AtomicBool>,
    /// Sessions opened ahead for rsync.
    channels: channels::Channels,
    /// The next sync to prepare as soon as the current rsync has started
    /// (the plan's `overlaps_next`, when that sync will run), with the
    /// run's values.
    prepare_next: Option<(usize, Values)>,
    /// A sync prepared ahead, until its turn.
    prepared: Option<Prepared>,
    /// Whether the current sync's commit waits for the next sync's rsync
    /// to start (the plan's `overlaps_next`, when that sync will run).
    commit_later: bool,
    /// A sync whose rsync succeeded and whose commit has not run yet.
    deferred: Option<Deferred>,
    /// That sync once its commit ran, until its result is reported.
    committed: Option<(usize, Status, SyncResult)>,
    /// Whether the checks open the first sync's channel (a run, not a
    /// preflight).
    opens_first_channel: bool,
}

/// The probes of a run: answers by host and probe index, the remote hosts
/// still out, and the values of the first sync's prepare sent with them.
struct Probing {
    answers: Vec<Vec<Option<String>>>,
    asking: Vec<(usize, hosts::Asking)>,
    early_values: Option<Values>,
}

/// Syncs checked so far: their preflight entries and codes, and how many
/// are broken and inactive.
#[derive(Default)]
struct Checks {
    preflight: Vec<Preflight>,
    codes: HashMap<String, u8>,
    broken: usize,
    inactive: usize,
}

/// A sync whose commit runs during the next sync's rsync.
struct Deferred {
    index: usize,
    values: Values,
    result: SyncResult,
}

/// A sync whose prepare ran during the previous sync's rsync.
struct Prepared {
    index: usize,
    values: Values,
    result: SyncResult,
    outcome: Result<(), OpError>,
}

impl<'p> Executor<'p> {
    pub fn new(plan: &'p Plan, options: RunOptions, ui: Box<dyn Ui + 'p>) -> std::io::Result<Self> {
        let interrupted = Arc::new(AtomicBool::new(false));
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(signal, Arc::clone(&interrupted))?;
        }
        Ok(Executor {
            plan,
            options,
            hosts: Hosts::new(plan)?,
            ui,
            interrupted,
            channels: channels::Channels::default(),
            prepare_next: None,
            prepared: None,
            commit_later: false,
            deferred: None,
            committed: None,
            opens_first_channel: false,
        })
    }

    /// Before nbkp waits for something (rsync, a host's answer, a hook, a
    /// drive): the log lines held back go out, so the log is never behind
    /// by more than nbkp's own work since the last wait.
    fn flush_log(&mut self) {
        self.ui.flush();
    }

    fn log(&mut self, msg: &str) {
        let line = if self.options.dry_run {
            format!("[nbkp] [dry-run] {msg}")
        } else {
            format!("[nbkp] {msg}")
        };
        self.ui.log(&line);
    }

    fn base_values(&self) -> Values {
        let mut run_flags: Vec<String> = crate::plan::rsync::progress_flags(&self.options.progress)
            .unwrap_or_default()
            .iter()
            .map(|s| s.to_string())
            .collect();
        if self.options.dry_run {
            run_flags.push(crate::plan::rsync::DRY_RUN_FLAG.into());
        }
        Values {
            dry_run: self.options.dry_run,
            run_flags,
            control_dir: self.hosts.control_dir(),
            lock_owner: lock::owner(),
            stale_lock: "-".into(),
            ..Values::default()
        }
    }

    /// Preflight, then the syncs; shared connections are closed either way.
    /// Mount-managed volumes are mounted first and unmounted last, also
    /// after failures and interruptions.
    pub fn run(mut self) -> Report {
        let mut base = self.base_values();
        let mounts = self.mount_all(&mut base);
        let mut report = self.run_inner(&base);
        report.mounts = mounts;
        report.umounts = self.umount_all(&base);
        self.channels.close_all();
        self.hosts.close(&base);
        self.flush_log();
        report
    }

    /// Only the checks: what `nbkp preflight` reports.
    pub fn preflight(mut self) -> Report {
        let mut base = self.base_values();
        let mounts = self.mount_all(&mut base);
        let (mut report, _) = self.check_all(&base);
        report.mounts = mounts;
        report.umounts = self.umount_all(&base);
        self.hosts.close(&base);
        self.flush_log();
        report
    }

    /// `nbkp disks mount|umount|status`: only the mount phase, only the
    /// unmount phase, or only the states.
    pub fn disks(mut self, action: DisksAction) -> Vec<mounts::MountResult> {
        let mut base = self.base_values();
        let out = match action {
            DisksAction::Mount => self.mount_all(&mut base),
            DisksAction::Umount => self.umount_all(&base),
            DisksAction::Status => self
                .mount_states(&base)
                .into_iter()
                .map(|(volume, state)| mounts::MountResult {
                    volume,
                    state: match state.as_deref() {
                        Some("absent") => "absent",
                        Some("locked") => "locked",
                        Some("unmounted") => "unmounted",
                        Some("mounted") | Some("elsewhere") => "mounted",
                        _ => "unknown",
                    },
                    mount_point: None,
                    detail: None,
                    error: state.is_none(),
                })
                .collect(),
        };
        self.hosts.close(&base);
        self.flush_log();
        out
    }

    /// The run: every host asked at once; where some syncs need no remote
    /// host (the plan's `SyncPlan::early`), those are checked first and,
    /// unless the strictness is `ignore-none`, run while the remote hosts'
    /// probes are still out; then the others, once every host has answered
    /// or reached its bound. Each phase keeps the plan's order, and the
    /// report lists the syncs in the plan's order.
    fn run_inner(&mut self, base: &Values) -> Report {
        self.opens_first_channel = true;
        let mut probing = self.start_probes(base);
        let all: Vec<usize> = (0..self.plan.syncs.len()).collect();
        let early: Vec<usize> = all
            .iter()
            .copied()
            .filter(|&i| self.plan.syncs[i].early())
            .collect();
        // The early syncs are checked first whenever there are both kinds
        // (the script's order too); they run first unless the strictness
        // wants every answer first or one of them has an error that stops
        // the run.
        // Lanes at once (docs/concurrency.md) when the plan has several and
        // this machine's devices keep them apart; then the syncs start as
        // their lanes allow, after every answer.
        // With lanes at once, the early syncs still run first (in order),
        // then every other sync as its lane allows.
        let lanes = self.concurrent_lanes(base);
        let phased = self.plan.phased();
        let mut checks = Checks::default();
        let mut status: HashMap<String, Status> = HashMap::new();
        let mut results: Vec<SyncResult> = Vec::new();
        let mut done: Vec<usize> = Vec::new();
        if phased {
            self.check(&early, &probing.answers, &mut checks);
            let go = match self.options.strictness {
                Strictness::IgnoreInactive => checks.broken == 0,
                Strictness::IgnoreAll => true,
                Strictness::IgnoreNone => false,
            };
            if go {
                let mut partial = self.empty_report();
                partial.preflight = checks.preflight.clone();
                self.sync_all(&early, &mut partial, &checks.codes, &mut status, base);
                results = partial.results;
                done = early.clone();
                // Nothing made ahead for an early sync outlives its phase.
                self.abort_unused_prepared(|i| done.contains(&i));
            }
        }
        self.finish_probes(&mut probing, base);
        let rest: Vec<usize> = if phased {
            all.iter().copied().filter(|i| !early.contains(i)).collect()
        } else {
            all.clone()
        };
        self.check(&rest, &probing.answers, &mut checks);
        let codes = checks.codes.clone();
        let mut report = self.report_of(checks);
        report.results = results;
        if report.aborted {
            // The first sync's prepare, if it went with the probes, is undone.
            self.abort_unused_prepared(|_| true);
            self.log(&format!(
                "Aborting: preflight checks found errors in {} sync(s)",
                report.fatal
            ));
            self.in_plan_order(&mut report);
            return report;
        }
        let to_run: Vec<usize> = all.into_iter().filter(|i| !done.contains(i)).collect();
        match lanes {
            Some(lanes) => self.sync_lanes(&mut report, &codes, base, &lanes, &done, &mut status),
            None => self.sync_all(&to_run, &mut report, &codes, &mut status, base),
        }
        self.finish_syncs(&mut report);
        self.in_plan_order(&mut report);
        report
    }

    /// Every host's probes, then every sync's checks (in the plan's order).
    fn check_all(&mut self, base: &Values) -> (Report, HashMap<String, u8>) {
        let mut probing = self.start_probes(base);
        self.finish_probes(&mut probing, base);
        let all: Vec<usize> = (0..self.plan.syncs.len()).collect();
        let mut checks = Checks::default();
        self.check(&all, &probing.answers, &mut checks);
        let codes = checks.codes.clone();
        (self.report_of(checks), codes)
    }

    /// The first sync whose channel opens during the probes, and its host.
    fn first_channel(&self) -> Option<(usize, usize)> {
        self.plan
            .first_channel
            .filter(|_| self.opens_first_channel)
            .and_then(|i| Some((i, self.plan.syncs[i].channel.as_ref()?.host)))
    }

    /// The first sync's prepare, when it goes with its host's probes (where
    /// the plan says so): it acts only where the destination's sentinels
    /// are, and is undone if the checks keep the sync from running.
    fn early_prepare(&self) -> Option<(&'p SyncPlan, &'p OpCall)> {
        let plan = self.plan;
        plan.syncs
            .first()
            .and_then(|s| Some(s).zip(s.prepare_with_probes.as_ref()))
            .filter(|_| self.opens_first_channel)
    }

    /// Starts every remote host's probes at once (each in its own thread,
    /// bounded by its `probe_bound`), then answers this machine's.
    fn start_probes(&mut self, base: &Values) -> Probing {
        self.flush_log();
        let plan = self.plan;
        let first = self.first_channel();
        let early_prepare = self.early_prepare();
        let mut probing = Probing {
            answers: plan
                .hosts
                .iter()
                .map(|h| vec![None; h.probes.len()])
                .collect(),
            asking: Vec::new(),
            early_values: None,
        };
        for (i, host) in plan.hosts.iter().enumerate() {
            let Some(ssh) = &host.ssh else {
                continue;
            };
            let then = early_prepare
                .filter(|(_, call)| call.host == i)
                .map(|(sync, call)| {
                    let mut v = base.clone();
                    v.candidate = clock::snapshot_name(SystemTime::now(), sync.snapshot_format);
                    let message = hosts::op_message(call, &v);
                    probing.early_values = Some(v);
                    message
                });
            // The first sync's session opens as soon as its host's shared
            // connection is up (its control socket exists), while the
            // host's shell starts and answers the probes; it runs nothing
            // unless that sync runs. (Before the socket exists, ssh would
            // make a second connection of its own.)
            let early = first.filter(|&(_, h)| h == i).and_then(|_| {
                Some(hosts::EarlyChannel {
                    socket: expand(&ssh.control_socket, base).concat(),
                    argv: argv(host.waiting_session.as_ref()?, base),
                })
            });
            probing
                .asking
                .push((i, self.hosts.ask_start(i, base, then, early)));
        }
        for (i, host) in plan.hosts.iter().enumerate() {
            if host.ssh.is_none() {
                probing.answers[i] = self.hosts.ask(i, base);
            }
        }
        probing
    }

    /// Waits for the remote hosts' probes (each answers or reaches its
    /// bound), keeping the first sync's session and prepare if they came.
    fn finish_probes(&mut self, probing: &mut Probing, base: &Values) {
        self.flush_log();
        let plan = self.plan;
        let first = self.first_channel();
        let early_prepare = self.early_prepare();
        for (i, asking) in std::mem::take(&mut probing.asking) {
            let (answers, then, channel) = self.hosts.ask_finish(asking);
            let first_here = first.filter(|&(_, h)| h == i);
            if let (Some((sync, _)), Some(session)) = (first_here, channel) {
                self.channels.insert(sync, session);
            }
            if let (Some((sync, call)), Some(answer)) = (early_prepare, then) {
                if call.host == i && answer.code == Some(0) {
                    let mut values = probing.early_values.take().unwrap_or_else(|| base.clone());
                    let mut result =
                        skipped(&sync.slug, self.options.dry_run, "rsync", String::new());
                    self.report(sync, &answer.output, &mut values, &mut result);
                    self.prepared = Some(Prepared {
                        index: 0,
                        values,
                        result,
                        outcome: Ok(()),
                    });
                }
            }
            let reachable = answers.first().is_some_and(|a| a.as_deref() == Some("1"));
            // Not opened yet (the answer came first): now, if the host answered.
            if let Some((sync, _)) = first_here.filter(|_| reachable) {
                self.channels.open_ahead(sync, &plan.hosts[i], base);
            }
            probing.answers[i] = answers;
        }
    }

    /// The checks of syncs `indices`, in that order, added to `checks`.
    fn check(&mut self, indices: &[usize], answers: &[Vec<Option<String>>], checks: &mut Checks) {
        let plan = self.plan;
        for &i in indices {
            let sync = &plan.syncs[i];
            let (code, errors) = self.evaluate(sync, answers);
            match code {
                1 => checks.broken += 1,
                2 | 3 => checks.inactive += 1,
                _ => {}
            }
            checks.codes.insert(sync.slug.clone(), code);
            let status = match code {
                0 => "active",
                1 => "broken",
                2 => "inactive",
                _ => "pending",
            };
            let warnings = clock_warning(sync, answers).into_iter().collect();
            checks.preflight.push(Preflight {
                sync_slug: sync.slug.clone(),
                status,
                errors,
                warnings,
            });
        }
    }

    /// The preflight's report once every sync is checked: the excluded
    /// syncs added, and whether the strictness lets the run go on.
    fn report_of(&mut self, checks: Checks) -> Report {
        let Checks {
            mut preflight,
            broken,
            mut inactive,
            ..
        } = checks;
        for ex in &self.plan.excluded_syncs {
            self.log(&format!("SKIPPED {}: {}", ex.slug, ex.reason));
            inactive += 1;
            preflight.push(Preflight {
                sync_slug: ex.slug.clone(),
                status: "inactive",
                errors: vec![CheckFailure {
                    verdict: Verdict::Inactive,
                    message: ex.reason.clone(),
                    fix: Some(ex.fix.clone()),
                }],
                warnings: Vec::new(),
            });
        }
        let fatal = match self.options.strictness {
            Strictness::IgnoreNone => broken + inactive,
            Strictness::IgnoreInactive => broken,
            Strictness::IgnoreAll => 0,
        };
        let mut report = Report {
            preflight,
            aborted: fatal > 0,
            fatal,
            ..self.empty_report()
        };
        self.in_plan_order(&mut report);
        report
    }

    fn empty_report(&self) -> Report {
        Report {
            dry_run: self.options.dry_run,
            strictness: self.options.strictness,
            preflight: Vec::new(),
            aborted: false,
            fatal: 0,
            interrupted: false,
            results: Vec::new(),
            mounts: Vec::new(),
            umounts: Vec::new(),
        }
    }

    /// The report's syncs in the plan's order (excluded syncs last), however
    /// the phases ran them.
    fn in_plan_order(&self, report: &mut Report) {
        let plan = self.plan;
        let position = |slug: &str| {
            plan.syncs
                .iter()
                .position(|s| s.slug == slug)
                .unwrap_or(usize::MAX)
        };
        report.preflight.sort_by_key(|p| position(&p.sync_slug));
        report.results.sort_by_key(|r| position(&r.sync_slug));
    }

    /// A sync not started because the run was interrupted (logged).
    fn not_run_interrupted(&mut self, slug: &str) -> SyncResult {
        self.log(&format!("SKIPPED {slug}: the run was interrupted"));
        skipped(
            slug,
            self.options.dry_run,
            "interrupted",
            "Not run: the run was interrupted".into(),
        )
    }

    /// The lanes syncs run in at once, if more than one remains once this
    /// machine's devices have joined those on one drive (else `None`: the
    /// sequential run, with its overlaps).
    fn concurrent_lanes(&self, base: &Values) -> Option<Vec<usize>> {
        if self.options.jobs <= 1 || self.plan.lanes.len() <= 1 {
            return None;
        }
        let lanes = self.runtime_lanes(base);
        lanes.iter().any(|&l| l != lanes[0]).then_some(lanes)
    }

    /// Syncs `indices`, in that order, after a preflight that allows them;
    /// `status` records how each ended, for the syncs downstream.
    fn sync_all(
        &mut self,
        indices: &[usize],
        report: &mut Report,
        codes: &HashMap<String, u8>,
        status: &mut HashMap<String, Status>,
        base: &Values,
    ) {
        let plan = self.plan;
        for &index in indices {
            let sync = &plan.syncs[index];
            if let Some(next) = sync.schedule.opens_channel_of {
                self.open_channel(next, codes, status, base);
            }
            if self.interrupted.load(Ordering::SeqCst) {
                self.conclude_deferred(report, status);
                report.interrupted = true;
                let result = self.not_run_interrupted(&sync.slug);
                report.results.push(result);
                continue;
            }
            let errors = preflight_errors(report, &sync.slug);
            let overlapped = sync
                .schedule
                .overlaps_next
                .filter(|&next| self.will_run(next, codes, status));
            self.prepare_next = overlapped.map(|next| (next, base.clone()));
            self.commit_later = overlapped.is_some();
            let ran = self.run_sync(sync, codes[&sync.slug], status, &errors, base);
            self.prepare_next = None;
            self.commit_later = false;
            // The previous sync's commit ran during this rsync (or runs now):
            // its result comes first.
            self.conclude_deferred(report, status);
            if let Some((st, result)) = ran {
                status.insert(sync.slug.clone(), st);
                self.ui.sync_result(&result);
                report.results.push(result);
            }
            self.abort_unused_prepared(|i| i == index);
        }
        self.conclude_deferred(report, status);
    }

    /// After the last sync: what was prepared and not used is undone, the
    /// excluded syncs are reported, and the run's outcome is logged.
    fn finish_syncs(&mut self, report: &mut Report) {
        self.abort_unused_prepared(|_| true);
        self.channels.close_all();
        for ex in &self.plan.excluded_syncs {
            report.results.push(skipped(
                &ex.slug,
                self.options.dry_run,
                "inactive",
                format!("Sync not active: {}", ex.reason),
            ));
        }
        report.interrupted |= self.interrupted.load(Ordering::SeqCst);
        let (failures, skipped) = report.counts();
        if report.interrupted {
            self.log("Interrupted: the current sync was stopped and cleaned up, the rest not run");
        } else if failures > 0 {
            self.log(&format!("{failures} sync(s) failed"));
        } else if let locked @ 1.. = report
            .results
            .iter()
            .filter(|r| r.failure == Some("locked"))
            .count()
        {
            self.log(&format!(
                "{locked} sync(s) not run: another run is writing their destination; try again later"
            ));
        } else if skipped > 0 {
            self.log(&format!(
                "All active syncs completed successfully ({skipped} skipped)"
            ));
        } else {
            self.log("All syncs completed successfully");
        }
    }

    /// Whether sync `index` may run, as far as is known now: its checks
    /// let it, and its upstream (when it has one) has not failed or been
    /// skipped.
    fn will_run(
        &self,
        index: usize,
        codes: &HashMap<String, u8>,
        status: &HashMap<String, Status>,
    ) -> bool {
        let sync = &self.plan.syncs[index];
        let checks = match codes.get(&sync.slug) {
            Some(0) => true,
            Some(1) => self.options.strictness == Strictness::IgnoreAll,
            _ => false,
        };
        // An upstream that has not run yet may still succeed.
        let upstream = sync.schedule.upstream.as_ref().is_none_or(|up| {
            matches!(
                status.get(up),
                None | Some(Status::Ok) | Some(Status::Pending)
            )
        });
        let handled = status.contains_key(&sync.slug);
        checks && upstream && !handled && !self.interrupted.load(Ordering::SeqCst)
    }

    /// Runs the commit of the sync whose rsync finished before this one's
    /// started (during the current rsync).
    fn commit_deferred(&mut self) {
        let Some(Deferred {
            index,
            mut values,
            result,
        }) = self.deferred.take()
        else {
            return;
        };
        let sync = &self.plan.syncs[index];
        let result = self.commit(sync, &mut values, result);
        let (status, result) = self.conclude(&sync.slug, result);
        self.committed = Some((index, status, result));
    }

    /// Reports the sync whose commit was deferred, running that commit
    /// first if no rsync came to run it.
    fn conclude_deferred(&mut self, report: &mut Report, status: &mut HashMap<String, Status>) {
        self.commit_deferred();
        let Some((index, st, result)) = self.committed.take() else {
            return;
        };
        status.insert(self.plan.syncs[index].slug.clone(), st);
        self.ui.sync_result(&result);
        report.results.push(result);
    }

    /// Runs the prepare of the sync `prepare_next` names (during the
    /// current rsync); its turn then continues from there.
    fn prepare_ahead(&mut self) {
        let Some((index, mut v)) = self.prepare_next.take() else {
            return;
        };
        if self.interrupted.load(Ordering::SeqCst) {
            return;
        }
        let sync = &self.plan.syncs[index];
        let Some(prepare) = &sync.prepare else {
            return;
        };
        v.candidate = clock::snapshot_name(SystemTime::now(), sync.snapshot_format);
        let mut result = skipped(&sync.slug, self.options.dry_run, "rsync", String::new());
        let outcome = self.op(sync, prepare, &mut v, &mut result);
        self.prepared = Some(Prepared {
            index,
            values: v,
            result,
            outcome,
        });
    }

    /// A sync prepared ahead that did not get to run (interrupted, or its
    /// upstream failed after all): what its prepare made is undone.
    fn abort_unused_prepared(&mut self, passed: impl Fn(usize) -> bool) {
        let Some(p) = self.prepared.take_if(|p| passed(p.index)) else {
            return;
        };
        let sync = &self.plan.syncs[p.index];
        if let (Ok(()), Some(abort)) = (&p.outcome, &sync.abort) {
            let (mut v, mut result) = (p.values, p.result);
            let _ = self.op(sync, abort, &mut v, &mut result);
        }
    }

    /// Opens sync `index`'s channel ahead, if it will run.
    fn open_channel(
        &mut self,
        index: usize,
        codes: &HashMap<String, u8>,
        status: &HashMap<String, Status>,
        base: &Values,
    ) {
        let plan = self.plan;
        if let Some(channel) = &plan.syncs[index].channel {
            if self.will_run(index, codes, status) {
                self.channels
                    .open_ahead(index, &plan.hosts[channel.host], base);
            }
        }
    }

    /// The sync's preflight code (0 ok, 1 broken, 2 inactive, 3 pending) and
    /// its failed checks, layer by layer as the script evaluates them.
    fn evaluate(
        &mut self,
        sync: &SyncPlan,
        answers: &[Vec<Option<String>>],
    ) -> (u8, Vec<CheckFailure>) {
        let mut code = 0u8;
        let mut errors = Vec::new();
        let layers: Vec<&CheckLayer> = sync
            .checks
            .iter()
            .flat_map(|step| match step {
                CheckStep::Group(id) => self.plan.check_groups[*id]
                    .layers
                    .iter()
                    .collect::<Vec<_>>(),
                CheckStep::Layer(l) => vec![l],
            })
            .collect();
        for layer in layers {
            for check in &layer.checks {
                let answer = answers[check.probe.host][check.probe.index].as_deref();
                if let Some(f) = check.evaluate(answer, self.options.dry_run) {
                    let c = f.verdict.code();
                    let label = if c == 1 { "ERROR" } else { "INACTIVE" };
                    self.log(&format!("{label}: {}: {}", sync.slug, f.message));
                    if code == 0 || c == 1 || (code == 3 && c == 2) {
                        code = c;
                    }
                    errors.push(CheckFailure {
                        verdict: f.verdict,
                        message: f.message.clone(),
                        fix: f.fix.clone(),
                    });
                }
            }
            if code != 0 {
                break;
            }
        }
        (code, errors)
    }

    /// Whether a sync is attempted: its upstream's outcome and its
    /// preflight decide; when not, its status and result.
    fn gate(
        &mut self,
        sync: &SyncPlan,
        code: u8,
        status: &HashMap<String, Status>,
        errors: &str,
    ) -> Option<(Status, SyncResult)> {
        let dry = self.options.dry_run;
        let slug = sync.slug.as_str();
        if let Some(up) = &sync.schedule.upstream {
            let up_status = status.get(up).copied().unwrap_or(Status::Skipped);
            match up_status {
                Status::Failed | Status::CancelledByFailure => {
                    self.log(&format!("CANCELLED {slug}: upstream sync {up} failed"));
                    let mut r = skipped(
                        slug,
                        dry,
                        "upstream-failed",
                        format!("Cancelled: upstream sync '{up}' failed"),
                    );
                    r.outcome = "cancelled";
                    r.cancelled_by = Some(up.clone());
                    return Some((Status::CancelledByFailure, r));
                }
                Status::Skipped | Status::Cancelled => {
                    self.log(&format!("CANCELLED {slug}: upstream sync {up} was skipped"));
                    let mut r = skipped(
                        slug,
                        dry,
                        "upstream-skipped",
                        format!("Cancelled: upstream sync '{up}' skipped"),
                    );
                    r.outcome = "cancelled";
                    r.cancelled_by = Some(up.clone());
                    return Some((Status::Cancelled, r));
                }
                Status::Ok | Status::Pending => {}
            }
        }
        match code {
            0 => {}
            2 => {
                self.log(&format!("SKIPPED {slug}: inactive"));
                return Some((
                    Status::Skipped,
                    skipped(slug, dry, "inactive", format!("Sync not active: {errors}")),
                ));
            }
            3 => {
                self.log(&format!(
                    "SKIPPED {slug}: source snapshot pending (dry-run)"
                ));
                return Some((
                    Status::Pending,
                    skipped(
                        slug,
                        dry,
                        "dry-run-pending",
                        format!("Sync not active: {errors}"),
                    ),
                ));
            }
            _ if self.options.strictness == Strictness::IgnoreAll => {
                self.log(&format!(
                    "WARN {slug}: preflight errors ignored (ignore-all), attempting"
                ));
            }
            _ => {
                self.log(&format!("SKIPPED {slug}: preflight errors"));
                return Some((
                    Status::Skipped,
                    skipped(slug, dry, "preflight", format!("Sync not active: {errors}")),
                ));
            }
        }
        None
    }

    fn run_sync(
        &mut self,
        sync: &SyncPlan,
        code: u8,
        status: &HashMap<String, Status>,
        errors: &str,
        base: &Values,
    ) -> Option<(Status, SyncResult)> {
        if let Some(done) = self.gate(sync, code, status, errors) {
            return Some(done);
        }
        let slug = sync.slug.as_str();
        self.log(&format!("Starting sync: {slug}"));
        let index = self
            .plan
            .syncs
            .iter()
            .position(|s| s.slug == sync.slug)
            .unwrap_or(0)
            + 1;
        self.ui.sync_started(slug, index, self.plan.syncs.len());
        let result = self.attempt(sync, base);
        self.ui.sync_finished();
        if self.deferred.as_ref().is_some_and(|d| d.index + 1 == index) {
            // Concluded once its commit has run, during the next rsync.
            return None;
        }
        Some(self.conclude(slug, result))
    }

    /// A finished sync's status, logged.
    fn conclude(&mut self, slug: &str, result: SyncResult) -> (Status, SyncResult) {
        if result.success {
            self.log(&format!("Completed sync: {slug}"));
            (Status::Ok, result)
        } else if result.failure == Some("locked") {
            self.log(&format!(
                "SKIPPED {slug}: destination locked by another run"
            ));
            (Status::Skipped, result)
        } else {
            self.log(&format!("FAILED {slug}"));
            (Status::Failed, result)
        }
    }

    /// The sync function: prepare, rsync, commit (or abort); `attempt`
    /// (in `hooks.rs`) runs it between the sync's hooks.
    fn transfer(&mut self, sync: &SyncPlan, v: &mut Values) -> SyncResult {
        let index = self.plan.syncs.iter().position(|s| std::ptr::eq(s, sync));
        let ahead = self.prepared.take_if(|p| Some(p.index) == index);
        let mut result = match &ahead {
            Some(p) => p.result.clone(),
            None => skipped(&sync.slug, self.options.dry_run, "rsync", String::new()),
        };
        result.outcome = "failed";
        result.failure = None;
        result.detail = None;
        if let Some(prepare) = &sync.prepare {
            let outcome = match ahead {
                Some(p) => {
                    *v = p.values;
                    p.outcome
                }
                None => self.op(sync, prepare, v, &mut result),
            };
            if let Err(e) = outcome {
                result.failure = Some(if e.locked {
                    "locked"
                } else {
                    prepare.failure()
                });
                result.detail = Some(e.message);
                return result;
            }
        }
        // Through the session opened ahead when there is one; a session
        // that cannot start leaves rsync its own ssh.
        let mut session = match (&sync.channel, index) {
            (Some(channel), Some(i)) => self.channels.take(i, &self.plan.hosts[channel.host], v),
            _ => None,
        };
        let (cmd, program) = match self.rsync_command(sync, v, session.as_ref()) {
            Ok(c) => c,
            Err(message) => {
                result.failure = Some("password");
                result.detail = Some(message);
                return result;
            }
        };
        let (code, mut output) = self.run_rsync(&sync.slug, cmd, &program, session.as_mut());
        if let Some(s) = session {
            output.push_str(&s.finish());
        }
        result.rsync_exit_code = code;
        result.output = output;
        if code != 0 {
            self.log(&format!(
                "ERROR: {}: rsync exited with code {code}",
                sync.slug
            ));
            if !self.options.stream_rsync && !result.output.is_empty() {
                for line in result.output.clone().lines() {
                    self.ui.log(line);
                }
            }
            if let Some(abort) = &sync.abort {
                let _ = self.op(sync, abort, v, &mut result);
            }
            result.failure = Some("rsync");
            result.detail = Some(format!("rsync exited with code {code}"));
            return result;
        }
        if sync.commit.is_some() && self.commit_later {
            if let Some(index) = index {
                // Run during the next sync's rsync (see `commit_deferred`).
                self.deferred = Some(Deferred {
                    index,
                    values: v.clone(),
                    result: result.clone(),
                });
                return result;
            }
        }
        self.commit(sync, v, result)
    }

    /// After a successful rsync: the commit (snapshot, `latest`, pruning),
    /// or the abort when it fails.
    fn commit(&mut self, sync: &SyncPlan, v: &mut Values, mut result: SyncResult) -> SyncResult {
        if let Some(commit) = &sync.commit {
            if let Err(e) = self.op(sync, commit, v, &mut result) {
                if let Some(abort) = &sync.abort {
                    let _ = self.op(sync, abort, v, &mut result);
                }
                result.failure = Some(commit.failure());
                result.detail = Some(e.message);
                return result;
            }
            let endpoint = match &sync.snapshots {
                SnapshotPlan::Btrfs { endpoint, .. } | SnapshotPlan::HardLink { endpoint, .. } => {
                    Some(expand(endpoint, v).join(""))
                }
                SnapshotPlan::None => None,
            };
            if let (Some(endpoint), false) = (endpoint, self.options.dry_run) {
                result.snapshot_path = Some(format!("{endpoint}/snapshots/{}", v.snapshot));
                let pruned = result.pruned_paths.take().unwrap_or_default();
                result.pruned_paths = Some(
                    pruned
                        .into_iter()
                        .map(|n| format!("{endpoint}/snapshots/{n}"))
                        .collect(),
                );
            }
        }
        result.outcome = "success";
        result.success = true;
        result
    }

    /// Runs one operation of the library. A taken snapshot name (75) is
    /// retried with a new one; a lock held by a run that is gone (73) is
    /// broken, once; a live lock is an error marked `locked`.
    fn op(
        &mut self,
        sync: &SyncPlan,
        call: &OpCall,
        v: &mut Values,
        result: &mut SyncResult,
    ) -> Result<(), OpError> {
        v.stale_lock = "-".into();
        let mut renames = 0;
        loop {
            self.flush_log();
            let native = if self.plan.hosts[call.host].ssh.is_none() {
                local_ops::perform(&call.op, v).map(|d| hosts::Answer {
                    code: Some(d.code),
                    output: d.output,
                })
            } else {
                None
            };
            let answer =
                native.or_else(|| self.hosts.run(call.host, &hosts::op_message(call, v), v));
            let Some(out) = answer else {
                let host = &self.plan.hosts[call.host].name;
                return Err(OpError::new(format!(
                    "{}: {host} did not answer",
                    call.op.function()
                )));
            };
            let stdout = out.output;
            self.report(sync, &stdout, v, result);
            match out.code {
                Some(0) => return Ok(()),
                Some(crate::exit::op::LOCKED) => {
                    let holder = stdout
                        .lines()
                        .find_map(|l| l.strip_prefix("locked "))
                        .unwrap_or("")
                        .to_string();
                    // Only a plain token ever goes back into an operation's values.
                    let holder = if !holder.is_empty()
                        && holder
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
                    {
                        holder
                    } else {
                        "unknown".to_string()
                    };
                    if v.stale_lock == "-" && lock::is_stale(&holder, &v.lock_owner) {
                        v.stale_lock = holder;
                        continue;
                    }
                    let message =
                        format!("another run is writing the destination (lock held by {holder}; if no nbkp run is using it, remove the destination's .nbkp-lock)");
                    self.log(&format!("ERROR: {}: {message}", sync.slug));
                    return Err(OpError {
                        message,
                        locked: true,
                    });
                }
                Some(crate::exit::op::NAME_TAKEN)
                    if renames + 1 < crate::plan::rsync::SNAPSHOT_NAME_TRIES =>
                {
                    renames += 1;
                    std::thread::sleep(std::time::Duration::from_millis(2));
                    v.candidate = clock::snapshot_name(SystemTime::now(), sync.snapshot_format);
                }
                Some(crate::exit::op::NAME_TAKEN) => {
                    let msg = format!("snapshot name {} is already taken", v.candidate);
                    self.log(&format!("ERROR: {}: {msg}", sync.slug));
                    return Err(OpError::new(msg));
                }
                code => {
                    let said: Vec<&str> = stdout
                        .lines()
                        .filter(|l| !l.starts_with("snapshot ") && !l.starts_with("latest "))
                        .collect();
                    return Err(OpError::new(format!(
                        "{} failed (exit {}): {}",
                        call.op.function(),
                        code.unwrap_or(-1),
                        said.join("; ")
                    )));
                }
            }
        }
    }

    /// Sync `sync`'s rsync, through `session` when there is one (a session
    /// that could not start leaves rsync its own ssh), and its program's
    /// name; or why it cannot run (the password), logged.
    fn rsync_command(
        &mut self,
        sync: &SyncPlan,
        v: &mut Values,
        session: Option<&channels::Session>,
    ) -> Result<(Command, String), String> {
        if let Some(dir) = &self.options.rsync_logs {
            v.rsync_log = format!("--log-file={}/{}", dir.display(), sync.ident);
        }
        let args = match (session, &sync.channel) {
            (Some(_), Some(channel)) => argv(&channel.rsync, v),
            _ => argv(&sync.rsync, v),
        };
        let mut cmd = crate::credentials::scrubbed(Command::new(&args[0]));
        cmd.args(&args[1..]).stdin(Stdio::null());
        if let Some(s) = session {
            s.attach(&mut cmd);
        }
        if let Err(message) = self.rsync_password(sync, &mut cmd) {
            self.log(&format!("ERROR: {}: {message}", sync.slug));
            return Err(message);
        }
        Ok((cmd, args[0].clone()))
    }

    /// Runs rsync: its output to the terminal, to the UI (which shows its
    /// progress), or captured (through a file, so waiting can be interrupted
    /// without a full pipe blocking it). SIGINT or SIGTERM stops it.
    fn run_rsync(
        &mut self,
        slug: &str,
        mut cmd: Command,
        program: &str,
        session: Option<&mut channels::Session>,
    ) -> (i32, String) {
        let to_ui = self.options.stream_rsync && self.ui.reads_rsync_output();
        let capture = if self.options.stream_rsync {
            None
        } else {
            tempfile::tempfile().ok()
        };
        if let Some(file) = &capture {
            if let (Ok(out), Ok(err)) = (file.try_clone(), file.try_clone()) {
                cmd.stdout(out).stderr(err);
            }
        }
        if to_ui {
            cmd.stdout(Stdio::piped());
        }
        self.flush_log();
        let spawned = cmd.spawn();
        if let Some(s) = session {
            s.started();
        }
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => return (-1, format!("cannot run {program}: {e}")),
        };
        // The previous sync's commit and the next sync's prepare are round
        // trips that rsync's run hides.
        self.commit_deferred();
        self.prepare_ahead();
        // rsync redraws its progress line with \r: split on both.
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let mut reader = None;
        if let Some(mut stdout) = child.stdout.take() {
            reader = Some(std::thread::spawn(move || {
                use std::io::Read;
                let mut buf = [0u8; 4096];
                let mut line = Vec::new();
                while let Ok(n) = stdout.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    for &b in &buf[..n] {
                        if b == b'\r' || b == b'\n' {
                            if !line.is_empty()
                                && tx
                                    .send(String::from_utf8_lossy(&line).into_owned())
                                    .is_err()
                            {
                                return;
                            }
                            line.clear();
                        } else {
                            line.push(b);
                        }
                    }
                }
                if !line.is_empty() {
                    let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
                }
            }));
        }
        let forward = |ui: &mut Box<dyn Ui + 'p>| {
            for line in rx.try_iter() {
                match parse_progress(&line) {
                    Some(p) => ui.transfer_progress(slug, p, line.trim()),
                    None => ui.rsync_output(&line),
                }
            }
        };
        // Woken by rsync's exit (see child_exit), or at the latest after
        // the time the progress display or a stop request can wait.
        let exit = child_exit::ChildExit::new(&child);
        let wake = std::time::Duration::from_millis(if to_ui { 50 } else { 100 });
        let status = loop {
            forward(&mut self.ui);
            self.flush_log();
            match exit.wait(&mut child, wake) {
                Ok(Some(status)) => break Some(status),
                Ok(None) if self.interrupted.load(Ordering::SeqCst) => {
                    let _ = child.kill();
                    break child.wait().ok();
                }
                Ok(None) => {}
                Err(_) => break None,
            }
        };
        // rsync has exited: its output ends, and the reader with it.
        if let Some(reader) = reader {
            let _ = reader.join();
        }
        forward(&mut self.ui);
        let mut output = String::new();
        if let Some(mut file) = capture {
            use std::io::{Read, Seek};
            let _ = file.rewind();
            let mut bytes = Vec::new();
            let _ = file.read_to_end(&mut bytes);
            output = String::from_utf8_lossy(&bytes).into_owned();
        }
        (status.and_then(|s| s.code()).unwrap_or(-1), output)
    }

    /// Reads an operation's report lines, as the script's `nbkp_report`.
    fn report(&mut self, sync: &SyncPlan, out: &str, v: &mut Values, result: &mut SyncResult) {
        for line in out.lines() {
            let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
            match word {
                "snapshot" if local_ops::is_name(rest) => v.snapshot = rest.to_string(),
                "latest" => {
                    v.link_dest = if local_ops::is_name(rest) {
                        format!("{}{rest}", crate::plan::rsync::LINK_DEST_PREFIX)
                    } else {
                        String::new()
                    };
                }
                "unfinished" => self.log(&format!(
                    "{}: removed unfinished snapshot {rest}",
                    sync.slug
                )),
                "pruned" => {
                    let (name, rule) = rest.split_once(' ').unwrap_or((rest, ""));
                    self.log(&format!(
                        "{}: pruned snapshot {name} (retention: {rule})",
                        sync.slug
                    ));
                    result
                        .pruned_paths
                        .get_or_insert_with(Vec::new)
                        .push(name.to_string());
                }
                "clock" => {
                    let (now, newest) = rest.split_once(' ').unwrap_or((rest, ""));
                    let message = format!(
                        "the clock ({now}) is behind the newest snapshot {newest}; \
                         the backup runs, nothing is pruned this run"
                    );
                    self.log(&format!("WARN: {}: {message}", sync.slug));
                    result.warnings.push(Warning {
                        kind: "clock",
                        message,
                    });
                }
                "warning" => {
                    self.log(&format!("WARN: {}: {rest}", sync.slug));
                    result.warnings.push(Warning {
                        kind: "operation",
                        message: rest.to_string(),
                    });
                }
                _ => {}
            }
        }
    }
}

/// A clock behind the sync's newest destination snapshot, which a run would
/// back up with but prune nothing: what to say, where the plan asked.
fn clock_warning(sync: &SyncPlan, answers: &[Vec<Option<String>>]) -> Option<String> {
    let p = sync.newest_snapshot?;
    let newest = answers.get(p.host)?.get(p.index)?.as_deref()?;
    let at = crate::retention::parse_name(newest)?;
    let now = SystemTime::now();
    let now_ms = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    (at >= now_ms).then(|| {
        format!(
            "the clock ({}) is behind the newest snapshot {newest} of {}; \
             a run backs up, but prunes nothing",
            clock::snapshot_name(now, "colons"),
            sync.destination
        )
    })
}

/// Why an operation failed.
struct OpError {
    message: String,
    /// Another run holds the destination's lock.
    locked: bool,
}

impl OpError {
    fn new(message: String) -> OpError {
        OpError {
            message,
            locked: false,
        }
    }
}

fn skipped(slug: &str, dry_run: bool, failure: &'static str, detail: String) -> SyncResult {
    SyncResult {
        sync_slug: slug.to_string(),
        outcome: "skipped",
        dry_run,
        rsync_exit_code: -1,
        output: String::new(),
        failure: Some(failure),
        cancelled_by: None,
        detail: Some(detail),
        snapshot_path: None,
        pruned_paths: None,
        warnings: Vec::new(),
        success: false,
    }
}

/// Sync `slug`'s preflight errors, joined, for its failure detail.
fn preflight_errors(report: &Report, slug: &str) -> String {
    report
        .preflight
        .iter()
        .find(|p| p.sync_slug == slug)
        .map(|p| {
            p.errors
                .iter()
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::parse_progress;

    #[test]
    fn progress_lines() {
        assert_eq!(
            parse_progress("      1,048,576  50%  100.00MB/s    0:00:01 (xfr#1, to-chk=1/3)"),
            Some(50)
        );
        assert_eq!(parse_progress("  32.77K 100%   31.25MB/s"), Some(100));
        assert_eq!(
            parse_progress("         20.00M  45%    4.77MB/s    0:00:02"),
            Some(45)
        );
        assert_eq!(
            parse_progress("         32,768 100%   31.25MB/s    0:00:00 (xfr#1, to-chk=0/2)"),
            Some(100)
        );
        assert_eq!(parse_progress("sending incremental file list"), None);
        assert_eq!(parse_progress("sub/a.txt"), None);
    }
}
