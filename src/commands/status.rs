//! `nbkp status`: when each sync last completed, and which are stale.

use std::time::SystemTime;

use serde::Serialize;

use crate::cli::{OutputFormat, StatusArgs};
use crate::output::{print_json, table::Table};
use crate::state;
use crate::status::{self, SyncStatus};

/// `nbkp status -o json` (docs/json.md).
#[derive(Debug, Serialize)]
struct StatusReport {
    state_file: Option<String>,
    now: String,
    now_unix: u64,
    syncs: Vec<SyncStatus>,
    /// The stale syncs' names.
    stale: Vec<String>,
}

pub fn run(args: &StatusArgs) -> i32 {
    let loaded = match super::load_config(args.file.config.as_deref(), args.output) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let path = state::default_path();
    let st = match path.as_deref().map(state::load) {
        Some(Ok(s)) => s,
        Some(Err(msg)) => {
            eprintln!("Error: {msg}");
            return 1;
        }
        None => {
            eprintln!("Warning: neither XDG_STATE_HOME nor HOME is set: no history");
            state::State::default()
        }
    };
    let (now_unix, now) = state::stamp(SystemTime::now());
    let syncs = status::evaluate(&loaded.config, &st, now_unix);
    let stale: Vec<String> = syncs
        .iter()
        .filter(|s| s.stale)
        .map(|s| s.sync_slug.clone())
        .collect();
    let code = if stale.is_empty() { 0 } else { 1 };
    match args.output {
        OutputFormat::Json => print_json(&StatusReport {
            state_file: path.map(|p| p.display().to_string()),
            now,
            now_unix,
            syncs,
            stale,
        }),
        OutputFormat::Human => print!("{}", human(&syncs)),
    }
    code
}

fn human(syncs: &[SyncStatus]) -> String {
    let mut t = Table::new(
        "Sync status",
        &["sync", "last success", "age", "stale after", "status"],
    );
    for s in syncs {
        let last = s
            .last_success
            .as_deref()
            .map(|t| t.replacen('T', " ", 1))
            .unwrap_or_else(|| "never".into());
        let age = s
            .age_seconds
            .map(state::human_age)
            .unwrap_or_else(|| "-".into());
        let limit = s
            .stale_after_seconds
            .map(state::human_age)
            .unwrap_or_else(|| "never".into());
        let status = if !s.enabled {
            "disabled"
        } else if s.stale {
            "STALE"
        } else if s.last_failure.is_some() {
            "ok, last attempt failed"
        } else {
            "ok"
        };
        t.row(vec![s.sync_slug.clone(), last, age, limit, status.into()]);
    }
    let mut out = t.render();
    let messages: Vec<&str> = syncs.iter().filter_map(|s| s.message.as_deref()).collect();
    if !messages.is_empty() {
        out.push('\n');
        for m in messages {
            out.push_str(m);
            out.push('\n');
        }
    }
    out
}
