//! `nbkp init`: the plan's init operations (`Plan::init`), on each host.

use serde::Serialize;

use crate::cli::{InitArgs, OutputFormat};
use crate::exec::hosts::{op_message, Hosts};
use crate::exec::values::{expand, Values};
use crate::output::print_json;
use crate::plan::{LowerOptions, Op, OpCall, Plan};

#[derive(Serialize)]
struct Action {
    /// The volume or endpoint.
    target: String,
    /// `vol-sentinel`, `endpoint`, `src-sentinel`, `dst-sentinel`,
    /// `snapshots`, `latest`, `staging`, or `volume` for the volume itself.
    item: String,
    path: String,
    /// `created`, `would-create`, `exists`, `failed`, `missing-root`,
    /// `not-mounted`, `skipped`, `unreachable`.
    result: &'static str,
}

pub fn run(args: &InitArgs) -> i32 {
    let options = LowerOptions {
        only: args.sync.clone(),
        darwin: cfg!(target_os = "macos"),
        allow_unmounted: args.allow_unmounted,
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
    let (hosts, v) = match super::open_hosts(&plan, args.dry_run) {
        Ok(h) => h,
        Err(code) => return code,
    };
    let mut actions = Vec::new();
    for call in &plan.init {
        perform(&plan, &hosts, &v, call, &mut actions);
    }
    super::close_hosts(hosts, &v);
    let bad = actions.iter().any(|a| {
        matches!(a.result, "failed" | "missing-root" | "unreachable")
            || (a.result == "not-mounted" && !args.allow_unmounted)
    });
    match args.output {
        OutputFormat::Json => print_json(&serde_json::json!({
            "dry_run": args.dry_run,
            "ok": !bad,
            "actions": actions,
        })),
        OutputFormat::Human => print!("{}", human(&actions, args.dry_run)),
    }
    i32::from(bad)
}

/// Where each item lives, for messages.
fn item_path(base: &str, item: &str) -> String {
    match item {
        "vol-sentinel" => format!("{base}/.nbkp-vol"),
        "src-sentinel" => format!("{base}/.nbkp-src"),
        "dst-sentinel" => format!("{base}/.nbkp-dst"),
        "snapshots" | "latest" | "staging" => format!("{base}/{item}"),
        _ => base.to_string(),
    }
}

fn perform(plan: &Plan, hosts: &Hosts, v: &Values, call: &OpCall, out: &mut Vec<Action>) {
    let (is_volume, base) = match &call.op {
        Op::InitVolume { volume, .. } => (true, expand(volume, v).join("")),
        Op::InitEndpoint { endpoint, .. } => (false, expand(endpoint, v).join("")),
        _ => return,
    };
    let host = &plan.hosts[call.host];
    let shown = match &host.ssh {
        None => base.clone(),
        Some(_) => format!("{}:{base}", host.name),
    };
    let target = if is_volume {
        plan.sites
            .iter()
            .find(|s| s.host == call.host && expand(&s.volume_path, v).join("") == base)
            .map(|s| format!("volume {}", s.volume))
    } else {
        plan.sites
            .iter()
            .find(|s| s.host == call.host && expand(&s.path, v).join("") == base)
            .map(|s| format!("endpoint {}", s.slug))
    }
    .unwrap_or_default();
    let mut push = |item: &str, result: &'static str| {
        out.push(Action {
            target: target.clone(),
            item: item.to_string(),
            path: item_path(&shown, item),
            result,
        })
    };
    let Some(answer) = hosts.run(call.host, &op_message(call, v), v) else {
        push(if is_volume { "volume" } else { "endpoint" }, "unreachable");
        return;
    };
    for line in answer.output.lines() {
        let (word, item) = line.split_once(' ').unwrap_or((line, ""));
        let result = match word {
            "done" => "created",
            "would" => "would-create",
            "exists" => "exists",
            "failed" => "failed",
            "missing-root" => "missing-root",
            "not-mounted" => "not-mounted",
            "skipped" => "skipped",
            _ => continue,
        };
        let item = if item.is_empty() {
            if is_volume {
                "volume"
            } else {
                "endpoint"
            }
        } else {
            item
        };
        push(item, result);
    }
    if answer.code != Some(0) && !answer.output.lines().any(|l| l.starts_with("failed ")) {
        push(if is_volume { "volume" } else { "endpoint" }, "failed");
    }
}

fn human(actions: &[Action], dry_run: bool) -> String {
    let mut out = String::new();
    for a in actions {
        let text = match a.result {
            "created" => format!("created      {}", a.path),
            "would-create" => format!("would create {}", a.path),
            "exists" => format!("exists       {}", a.path),
            "failed" => format!("FAILED       {} (see the error above; permissions?)", a.path),
            "missing-root" => format!(
                "MISSING      {} — {}: its root folder does not exist. Plug in and mount the drive; init never creates a volume's root",
                a.path, a.target
            ),
            "not-mounted" => format!(
                "NOT MOUNTED  {} — {}: a drive should be mounted here. Mount it and run init again (or --allow-unmounted if this folder is the volume)",
                a.path, a.target
            ),
            "skipped" => format!("skipped      {} ({} is not ready)", a.path, a.target),
            "unreachable" => format!("UNREACHABLE  {} ({})", a.path, a.target),
            _ => continue,
        };
        out.push_str(&text);
        out.push('\n');
    }
    if dry_run {
        out.push_str("Dry run: nothing was changed.\n");
    }
    out
}
