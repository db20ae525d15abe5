//! `nbkp preflight check|troubleshoot`: the run's checks, nothing else.

use crate::cli::{OutputFormat, PreflightArgs};
use crate::exec::{Executor, LogUi, RunOptions};
use crate::output::{print_json, table::Table};
use crate::plan::LowerOptions;

pub fn run(args: &PreflightArgs, troubleshoot: bool) -> i32 {
    let options = LowerOptions {
        only: args.sync.clone(),
        darwin: cfg!(target_os = "macos"),
        no_mount: args.mount.no_mount,
        no_umount: args.mount.no_umount,
        clock_check: true,
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
    let run = RunOptions {
        dry_run: false,
        progress: "none".into(),
        strictness: super::run::strictness(args.strictness),
        stream_rsync: false,
        rsync_logs: None,
        jobs: 1,
    };
    // The checks' own log lines would repeat what the report shows.
    let executor = match Executor::new(&plan, run, Box::new(LogUi(|_: &str| {}))) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("Error: cannot prepare the checks: {e}");
            return 1;
        }
    };
    let report = executor.preflight();
    match args.output {
        OutputFormat::Json => print_json(&serde_json::json!({
            "fatal": report.aborted,
            "strictness": report.strictness,
            "syncs": report.preflight,
        })),
        OutputFormat::Human if troubleshoot => print!("{}", advice(&report)),
        OutputFormat::Human => {
            let mut t = Table::new("Preflight", &["sync", "status", "problems"]);
            for p in &report.preflight {
                let problems: Vec<&str> = p.errors.iter().map(|e| e.message.as_str()).collect();
                t.row(vec![
                    p.sync_slug.clone(),
                    p.status.into(),
                    problems.join("\n"),
                ]);
            }
            print!("{}", t.render());
            for p in &report.preflight {
                for w in &p.warnings {
                    println!("WARN: {}: {w}", p.sync_slug);
                }
            }
            if report.preflight.iter().any(|p| p.status != "active") {
                println!("\nRun nbkp preflight troubleshoot for what to do about each problem.");
            }
        }
    }
    i32::from(report.aborted)
}

/// Every problem with what to do about it.
fn advice(report: &crate::exec::Report) -> String {
    let mut out = String::new();
    for p in report.preflight.iter().filter(|p| p.status != "active") {
        out.push_str(&format!("{} ({}):\n", p.sync_slug, p.status));
        for e in &p.errors {
            out.push_str(&format!("  problem: {}\n", e.message));
            if let Some(fix) = &e.fix {
                out.push_str(&format!("  fix:     {fix}\n"));
            }
        }
        out.push('\n');
    }
    if out.is_empty() {
        out.push_str("No problems: every sync can run.\n");
    }
    out
}
