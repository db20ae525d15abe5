//! `nbkp snapshots show|prune`: every snapshot-enabled endpoint's history
//! and what its retention policy decides, from `retention::decide`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::cli::{OutputFormat, SnapshotsArgs, SnapshotsPruneArgs, StrictnessArg};
use crate::exec::hosts::{op_message, Hosts};
use crate::exec::values::Values;
use crate::output::{print_json, table::Table};
use crate::plan::{LowerOptions, Plan, Site};
use crate::retention::{calendar, decide, Decision};

#[derive(Serialize)]
struct EndpointReport {
    endpoint: String,
    location: String,
    mode: &'static str,
    policy: String,
    /// `ok`, `absent` (volume or snapshots/ not there), `unreachable`,
    /// `locked` (a run holds it), `failed`.
    state: &'static str,
    latest: Option<String>,
    snapshots: Vec<SnapshotReport>,
    /// Prune only: what was removed (or, with --dry-run, would be).
    #[serde(skip_serializing_if = "Option::is_none")]
    removed: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

#[derive(Serialize)]
struct SnapshotReport {
    name: String,
    /// UTC, `2026-03-06 14:30:00`.
    time: String,
    latest: bool,
    keep: bool,
    reasons: Vec<String>,
}

pub fn show(args: &SnapshotsArgs) -> i32 {
    let Some((plan, now)) = plan(args) else {
        return super::EXIT_USAGE;
    };
    with_endpoints(&plan, |hosts, v| {
        let reports: Vec<EndpointReport> = sites(&plan)
            .map(|site| inspect(hosts, v, site, now))
            .collect();
        match args.output {
            OutputFormat::Json => print_json(&serde_json::json!({ "endpoints": reports })),
            OutputFormat::Human => print!("{}", human(&reports, now, None)),
        }
        i32::from(strict_failure(args, &reports))
    })
}

pub fn prune(args: &SnapshotsPruneArgs) -> i32 {
    let common = &args.common;
    let Some((plan, now)) = plan(common) else {
        return super::EXIT_USAGE;
    };
    with_endpoints(&plan, |hosts, v| {
        let mut failed = false;
        let mut reports = Vec::new();
        for site in sites(&plan) {
            let mut r = inspect(hosts, v, site, now);
            // A clock behind the newest snapshot would judge every age
            // wrong: nothing is removed until it is right again.
            let newest = r
                .snapshots
                .first()
                .filter(|s| crate::retention::parse_name(&s.name).is_some_and(|at| at > now));
            if let (Some(s), "ok") = (newest, r.state) {
                r.detail = Some(format!(
                    "nothing is pruned: the clock ({}) is behind the newest snapshot {}",
                    calendar::display_time(now),
                    s.name
                ));
                r.state = "clock-behind";
                r.removed = Some(Vec::new());
                for s in r.snapshots.iter_mut().filter(|s| !s.keep) {
                    s.keep = true;
                    s.reasons = vec!["the clock is behind the newest snapshot".into()];
                }
            }
            if r.state == "ok" {
                let drops: Vec<String> = r
                    .snapshots
                    .iter()
                    .rev() // oldest first
                    .filter(|s| !s.keep)
                    .map(|s| s.name.clone())
                    .collect();
                if args.dry_run || drops.is_empty() {
                    r.removed = Some(drops);
                } else {
                    let latest = r.latest.clone().unwrap_or_else(|| "-".into());
                    remove(hosts, v, site, &latest, &drops, &mut r);
                    failed |= r.state != "ok";
                }
            }
            reports.push(r);
        }
        failed |= strict_failure(common, &reports);
        match common.output {
            OutputFormat::Json => print_json(&serde_json::json!({
                "dry_run": args.dry_run,
                "endpoints": reports,
            })),
            OutputFormat::Human => print!("{}", human(&reports, now, Some(args.dry_run))),
        }
        i32::from(failed)
    })
}

/// `-S ignore-none`: an endpoint that is not there (drive absent, host
/// unreachable) is a failure, as an inactive sync is for a run. The other
/// strictness levels report it only: listing and pruning have no further
/// preflight checks for them to relax.
fn strict_failure(args: &SnapshotsArgs, reports: &[EndpointReport]) -> bool {
    args.strictness == StrictnessArg::IgnoreNone
        && reports
            .iter()
            .any(|r| matches!(r.state, "absent" | "unreachable"))
}

fn plan(args: &SnapshotsArgs) -> Option<(Plan, i64)> {
    let options = LowerOptions {
        only: args.sync.clone(),
        darwin: cfg!(target_os = "macos"),
        no_mount: args.mount.no_mount,
        no_umount: args.mount.no_umount,
        ..LowerOptions::default()
    };
    let plan = super::plan_for(
        args.file.config.as_deref(),
        &args.select,
        args.output,
        &options,
    )
    .ok()?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    Some((plan, now))
}

fn sites(plan: &Plan) -> impl Iterator<Item = &Site> {
    plan.sites.iter().filter(|s| s.snapshots != "none")
}

/// Opens the hosts' shells for `f`, and closes them (and their shared SSH
/// connections) afterwards.
fn with_endpoints(plan: &Plan, f: impl FnOnce(&Hosts, &Values) -> i32) -> i32 {
    let (hosts, v) = match super::open_hosts(plan, false) {
        Ok(h) => h,
        Err(code) => return code,
    };
    let code = f(&hosts, &v);
    super::close_hosts(hosts, &v);
    code
}

/// Lists an endpoint's snapshots and decides each.
fn inspect(hosts: &Hosts, v: &Values, site: &Site, now: i64) -> EndpointReport {
    let mut r = EndpointReport {
        endpoint: site.slug.clone(),
        location: site.shown.clone(),
        mode: site.snapshots,
        policy: site.retention.describe(),
        state: "ok",
        latest: None,
        snapshots: Vec::new(),
        removed: None,
        detail: None,
    };
    let listing = list(hosts, v, site);
    r.state = listing.state;
    r.latest = listing.latest;
    r.detail = listing.detail;
    if matches!(r.state, "unreachable" | "failed") {
        return r;
    }
    let names = listing.names;
    let decisions = decide(&site.retention, &names, r.latest.as_deref(), now);
    r.snapshots = decisions
        .into_iter()
        .map(|d: Decision| SnapshotReport {
            latest: r.latest.as_deref() == Some(d.name.as_str()),
            time: calendar::display_time(d.at),
            name: d.name,
            keep: d.keep,
            reasons: d.reasons,
        })
        .collect();
    r
}

/// An endpoint's snapshots as lib.sh's `nbkp_list` reports them.
pub(super) struct Listing {
    /// `ok`, `absent`, `unreachable` or `failed` (then `detail` says why).
    pub state: &'static str,
    pub latest: Option<String>,
    /// Valid snapshot names only, oldest first.
    pub names: Vec<String>,
    pub detail: Option<String>,
}

/// Lists an endpoint's snapshots and `latest` on its host.
pub(super) fn list(hosts: &Hosts, v: &Values, site: &Site) -> Listing {
    let mut l = Listing {
        state: "ok",
        latest: None,
        names: Vec::new(),
        detail: None,
    };
    let Some(out) = hosts.run(site.host, &op_message(&site.list_call(), v), v) else {
        l.state = "unreachable";
        return l;
    };
    for line in out.output.lines() {
        match line.split_once(' ') {
            Some(("latest", n)) if n != "-" => l.latest = Some(n.to_string()),
            Some(("snapshot", n)) => l.names.push(n.to_string()),
            _ if line == "absent" => l.state = "absent",
            _ => {}
        }
    }
    if out.code != Some(0) {
        l.state = "failed";
        l.detail = Some(out.output.trim().to_string());
    }
    l
}

/// Removes `drops` under the destination's lock.
fn remove(
    hosts: &Hosts,
    v: &Values,
    site: &Site,
    latest: &str,
    drops: &[String],
    r: &mut EndpointReport,
) {
    let call = site.prune_call(latest, drops);
    let Some(out) = hosts.run(site.host, &op_message(&call, v), v) else {
        r.state = "unreachable";
        r.removed = Some(Vec::new());
        return;
    };
    let mut removed = Vec::new();
    let mut notes = Vec::new();
    for line in out.output.lines() {
        if let Some(n) = line.strip_prefix("pruned ") {
            removed.push(n.to_string());
        } else if let Some(holder) = line.strip_prefix("locked ") {
            notes.push(format!(
                "a run holds the lock ({holder}); try again when it ends"
            ));
        } else if let Some(w) = line.strip_prefix("warning ") {
            notes.push(w.to_string());
        }
    }
    match out.code {
        Some(0) => {}
        Some(crate::exit::op::LOCKED) => r.state = "locked",
        _ => r.state = "failed",
    }
    for s in &mut r.snapshots {
        if !s.keep && !removed.contains(&s.name) {
            // Decided, but not removed (the prune stopped or was refused).
            s.reasons.push("not removed".into());
        }
    }
    r.removed = Some(removed);
    if !notes.is_empty() {
        r.detail = Some(notes.join("; "));
    }
}

fn age(now: i64, at: i64) -> String {
    let s = (now - at).max(0) / 1000;
    match s {
        s if s < 3600 => format!("{}min", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s if s < 60 * 86_400 => format!("{}d", s / 86_400),
        s => format!("{}mo", s / (30 * 86_400)),
    }
}

fn human(reports: &[EndpointReport], now: i64, prune: Option<bool>) -> String {
    let mut out = String::new();
    if reports.is_empty() {
        out.push_str("No snapshot-enabled endpoints in the selected syncs.\n");
    }
    for r in reports {
        out.push_str(&format!(
            "{} — {} ({} snapshots; {})\n",
            r.endpoint, r.location, r.mode, r.policy
        ));
        match r.state {
            "absent" => out.push_str("  not there (volume not mounted, or no snapshots/ yet)\n\n"),
            "unreachable" => out.push_str("  host unreachable\n\n"),
            _ => {}
        }
        if matches!(r.state, "absent" | "unreachable") {
            continue;
        }
        if r.snapshots.is_empty() {
            out.push_str("  no snapshots yet\n");
        } else {
            let mut t = Table::new("", &["snapshot", "time (UTC)", "age", "", "decision"]);
            for s in &r.snapshots {
                let verdict = if s.keep {
                    "keep"
                } else if prune == Some(false) {
                    "removed"
                } else {
                    "remove"
                };
                t.row(vec![
                    s.name.clone(),
                    s.time.clone(),
                    age(now, crate::retention::parse_name(&s.name).unwrap_or(now)),
                    if s.latest {
                        "latest".into()
                    } else {
                        String::new()
                    },
                    format!("{verdict}: {}", s.reasons.join(", ")),
                ]);
            }
            out.push_str(&t.render());
        }
        if let (Some(dry), Some(removed)) = (prune, &r.removed) {
            let kept = r.snapshots.iter().filter(|s| s.keep).count();
            if dry {
                out.push_str(&format!(
                    "  would keep {kept}, would remove {}\n",
                    removed.len()
                ));
            } else {
                out.push_str(&format!("  kept {kept}, removed {}\n", removed.len()));
            }
        }
        if prune == Some(false) {
            for s in r.snapshots.iter().rev().filter(|s| !s.keep) {
                if r.removed.as_ref().is_some_and(|x| x.contains(&s.name)) {
                    out.push_str(&format!(
                        "  pruned snapshot {} (retention: {})\n",
                        s.name,
                        crate::retention::drop_rule(&s.reasons)
                    ));
                }
            }
        }
        if let Some(d) = &r.detail {
            out.push_str(&format!("  {}: {d}\n", r.state));
        }
        out.push('\n');
    }
    out
}
