//! `nbkp run`: the plan performed in-process.

use std::io::IsTerminal;

use crate::cli::{OutputFormat, RunArgs, StrictnessArg};
use crate::exec::{conditions, Executor, Report, RunOptions, Strictness, Ui};
use crate::output::{print_json, table::Table};
use crate::plan::conditions as plan_conditions;
use crate::plan::LowerOptions;

pub fn run(args: &RunArgs) -> i32 {
    run_recording_to(args, crate::state::default_path())
}

/// `nbkp run`, recording completed syncs in `state_file` (`nbkp status`).
pub fn run_recording_to(args: &RunArgs, state_file: Option<std::path::PathBuf>) -> i32 {
    // Conditions first: a run skipped on battery contacts nothing.
    if args.conditions.on_ac_power && conditions::on_battery() == Some(true) {
        eprintln!("[nbkp] SKIPPED: {}", plan_conditions::ON_BATTERY);
        return 0;
    }
    let metered = args.conditions.not_metered && conditions::metered() == Some(true);
    if metered {
        eprintln!("[nbkp] {}", plan_conditions::METERED);
    }
    let options = LowerOptions {
        only: args.sync.clone(),
        darwin: cfg!(target_os = "macos"),
        no_mount: args.mount.no_mount,
        no_umount: args.mount.no_umount,
        no_prune: args.no_prune,
        skip_remote: metered,
        ..LowerOptions::default()
    };
    let plan = match super::plan_for(
        args.file.config.as_deref(),
        &args.select,
        args.output,
        &options,
    ) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut monitor = super::monitor::Monitor::new(plan.monitoring.as_ref(), args.dry_run);
    let run = RunOptions {
        dry_run: args.dry_run,
        progress: args.progress.mode().to_string(),
        strictness: strictness(args.strictness),
        stream_rsync: args.output == OutputFormat::Human && args.progress.mode() != "none",
        rsync_logs: monitor.as_ref().and_then(|m| m.rsync_logs()),
        jobs: args.jobs.map_or(plan.default_jobs, |j| j as usize),
    };
    let ui: Box<dyn Ui> = if args.output == OutputFormat::Human && std::io::stderr().is_terminal() {
        Box::new(TerminalUi::default())
    } else {
        Box::new(HeldLog::default())
    };
    let ui: Box<dyn Ui> = Box::new(super::record::Recording::new(
        ui,
        state_file.clone(),
        args.dry_run,
    ));
    let ui = match &monitor {
        Some(m) => m.wrap(ui),
        None => ui,
    };
    let executor = match Executor::new(&plan, run, ui) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("Error: cannot prepare the run: {e}");
            if let Some(m) = monitor {
                m.could_not_start(&format!("cannot prepare the run: {e}"));
            }
            return 1;
        }
    };
    if let Some(m) = &mut monitor {
        m.begin();
    }
    let report = executor.run();
    if let Some(m) = monitor {
        m.finish(&report);
    }
    super::record::notify_after_run(args.file.config.as_deref(), &report, state_file.as_deref());
    match args.output {
        OutputFormat::Json => print_json(&report),
        OutputFormat::Human => print!("{}", summary(&report)),
    }
    report.exit_code()
}

pub fn strictness(arg: StrictnessArg) -> Strictness {
    match arg {
        StrictnessArg::IgnoreInactive => Strictness::IgnoreInactive,
        StrictnessArg::IgnoreNone => Strictness::IgnoreNone,
        StrictnessArg::IgnoreAll => Strictness::IgnoreAll,
    }
}

/// The final table: one row per sync.
fn summary(report: &Report) -> String {
    if report.aborted {
        // Syncs that needed no remote host may have run before the remote
        // hosts answered (see docs/running.md).
        let mut out = String::from(if report.results.is_empty() {
            "Nothing ran: preflight found errors (see above). Fix them, or see -S/--strictness.\n"
        } else {
            "Only the syncs that need no remote host ran: preflight found errors (see above). Fix them, or see -S/--strictness.\n"
        });
        for p in report.preflight.iter().filter(|p| p.status != "active") {
            let errors: Vec<&str> = p.errors.iter().map(|e| e.message.as_str()).collect();
            out.push_str(&format!("  {}: {}\n", p.sync_slug, errors.join("; ")));
        }
        return out;
    }
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let paint = |text: &str, code: &str| {
        if colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    };
    let mut t = Table::new(
        if report.dry_run {
            "Sync results (dry run)"
        } else {
            "Sync results"
        },
        &["sync", "status", "details"],
    );
    for r in &report.results {
        let status = match (r.outcome, r.failure) {
            ("success", _) => paint("completed", "32"),
            ("failed", _) => paint("failed", "31"),
            ("cancelled", Some("upstream-failed")) => paint("cancelled", "31"),
            ("cancelled", _) => paint("cancelled", "33"),
            (_, Some("dry-run-pending")) => "pending".into(),
            (_, Some("preflight")) => paint("skipped", "31"),
            _ => paint("skipped", "33"),
        };
        let detail = match (&r.snapshot_path, &r.detail) {
            (Some(s), _) => format!("snapshot {s}"),
            (None, Some(d)) => d.clone(),
            (None, None) => String::new(),
        };
        t.row(vec![r.sync_slug.clone(), status, detail]);
    }
    t.render()
}

/// Log lines for a stderr that is not a terminal (a log file, the journal,
/// a pipe): the lines logged between two waits go out in one write when
/// nbkp is about to wait (see `Ui::flush`), e.g. a sync's "Completed" line
/// with the next one's "Starting". Whoever reads the log then wakes once
/// per sync instead of four times (`eprintln!` writes a line and its
/// newline apart); on a two-core machine those wake-ups competed with the
/// next rsync's start (about 4% of a run of 20 unchanged local syncs). The
/// log is behind by at most nbkp's own work between two waits.
#[derive(Default)]
struct HeldLog {
    held: String,
}

impl Ui for HeldLog {
    fn log(&mut self, line: &str) {
        self.held.push_str(line);
        self.held.push('\n');
    }

    fn flush(&mut self) {
        use std::io::Write;
        if !self.held.is_empty() {
            let _ = std::io::stderr().lock().write_all(self.held.as_bytes());
            self.held.clear();
        }
    }
}

impl Drop for HeldLog {
    fn drop(&mut self) {
        self.flush();
    }
}

/// On a terminal: a line per running sync (several when syncs run at
/// once), each with its percentage when `-p overall` or `-p full` feeds it
/// rsync's whole-transfer progress, and, when the run has several syncs, an
/// overall line under them (how many have ended, how many run); log lines
/// print above them.
#[derive(Default)]
struct TerminalUi {
    multi: indicatif::MultiProgress,
    /// The running syncs' lines, the latest last.
    bars: Vec<(String, indicatif::ProgressBar)>,
    /// The overall line, from the first sync started until every sync has
    /// a result; only when the run has more than one sync.
    overall: Option<indicatif::ProgressBar>,
    /// Syncs in the run, and how many have a result.
    total: usize,
    ended: usize,
}

impl TerminalUi {
    fn style(template_colour: &str, template_plain: &str) -> Option<indicatif::ProgressStyle> {
        let colour = std::env::var_os("NO_COLOR").is_none();
        let template = if colour {
            template_colour
        } else {
            template_plain
        };
        indicatif::ProgressStyle::with_template(template)
            .ok()
            .map(|s| s.progress_chars("=> "))
    }

    /// The overall line's text, e.g. "syncs: 2/5 ended, 2 running".
    fn overall_message(&self) -> String {
        format!(
            "syncs: {}/{} ended, {} running",
            self.ended,
            self.total,
            self.bars.len()
        )
    }

    fn update_overall(&mut self) {
        if self.total > 1 && self.overall.is_none() && self.ended < self.total {
            let bar = self
                .multi
                .add(indicatif::ProgressBar::new(self.total as u64));
            if let Some(style) =
                Self::style("{msg:.bold} {wide_bar:.green/white}", "{msg} {wide_bar}")
            {
                bar.set_style(style);
            }
            self.overall = Some(bar);
        }
        let message = self.overall_message();
        if let Some(bar) = &self.overall {
            bar.set_position(self.ended as u64);
            bar.set_message(message);
            if self.ended >= self.total {
                bar.finish_and_clear();
                self.multi.remove(bar);
                self.overall = None;
            }
        }
    }

    fn end_bar(&mut self, i: usize) {
        let (_, bar) = self.bars.remove(i);
        bar.finish_and_clear();
        self.multi.remove(&bar);
        self.update_overall();
    }
}

impl Ui for TerminalUi {
    fn log(&mut self, line: &str) {
        if self.bars.is_empty() && self.overall.is_none() {
            eprintln!("{line}");
        } else {
            let _ = self.multi.println(line);
        }
    }

    fn sync_started(&mut self, slug: &str, index: usize, total: usize) {
        self.total = total;
        // Above the overall line, which stays last.
        let bar = match &self.overall {
            Some(overall) => self
                .multi
                .insert_before(overall, indicatif::ProgressBar::new(100)),
            None => self.multi.add(indicatif::ProgressBar::new(100)),
        };
        if let Some(style) = Self::style(
            "{spinner:.cyan} [{prefix}] {msg:.bold} {wide_bar:.cyan/blue} {pos:>3}%",
            "{spinner} [{prefix}] {msg} {wide_bar} {pos:>3}%",
        ) {
            bar.set_style(style);
        }
        bar.set_prefix(format!("{index}/{total}"));
        bar.set_message(slug.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        self.bars.push((slug.to_string(), bar));
        self.update_overall();
    }

    fn transfer_progress(&mut self, slug: &str, percent: u8, _line: &str) {
        if let Some((_, bar)) = self.bars.iter().find(|(s, _)| s == slug) {
            bar.set_position(u64::from(percent));
        }
    }

    fn sync_finished(&mut self) {
        if !self.bars.is_empty() {
            self.end_bar(self.bars.len() - 1);
        }
    }

    fn sync_ended(&mut self, slug: &str) {
        if let Some(i) = self.bars.iter().position(|(s, _)| s == slug) {
            self.end_bar(i);
        }
    }

    fn sync_result(&mut self, _result: &crate::exec::SyncResult) {
        self.ended += 1;
        self.update_overall();
    }

    fn reads_rsync_output(&self) -> bool {
        true
    }
}

impl Drop for TerminalUi {
    /// A run that stops early (preflight, Ctrl-C) leaves no line drawn.
    fn drop(&mut self) {
        for (_, bar) in self.bars.drain(..) {
            bar.finish_and_clear();
        }
        if let Some(bar) = self.overall.take() {
            bar.finish_and_clear();
        }
    }
}
