//! The script's view of run conditions and monitoring
//! (`templates/automatic.sh.j2`): the plan's constants and decisions, with
//! each shell variable a sync's values live in.

use minijinja::value::Value;
use serde::Serialize;

use crate::exit::Exit;
use crate::plan::conditions;
use crate::plan::monitoring::{self, Kept, Metric};
use crate::plan::Plan;
use crate::shell::quote;

#[derive(Serialize)]
struct SyncRef {
    slug: String,
    ident: Value,
    /// Safe: `"${NBKP_ST_<ident>-not-run}"`.
    status: Value,
}

#[derive(Serialize)]
struct ClientView {
    /// Safe: `if` for the first, then `elif`.
    keyword: Value,
    program: &'static str,
    /// Safe: quoted words.
    words: Value,
    body: &'static str,
}

#[derive(Serialize)]
struct PingView {
    start: String,
    success: String,
    fail: String,
    clients: Vec<ClientView>,
    names: String,
}

#[derive(Serialize)]
struct ValueView {
    prefix: String,
    /// Safe: a double-quoted expansion.
    value: Value,
}

#[derive(Serialize)]
struct FamilyView {
    help: String,
    #[serde(rename = "type")]
    kind: String,
    values: Vec<ValueView>,
}

#[derive(Serialize)]
struct MetricsView {
    path: String,
    families: Vec<FamilyView>,
    /// Where each sync's snapshots are counted.
    snapshot_dirs: Vec<SnapshotDirView>,
    /// Some sync's rsync logs its totals (`Var::RsyncLog`).
    logs: bool,
}

#[derive(Serialize)]
struct SnapshotDirView {
    ident: Value,
    dir: String,
}

fn words(argv: &[&str]) -> Value {
    // Safe: each word quoted.
    Value::from_safe_string(argv.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" "))
}

/// The shell variable holding a sync's value of `metric` (set by
/// `nbkp_mon_sync_end`), or the run's own value.
fn expansion(metric: &Metric, ident: Option<&str>) -> Value {
    let text = match (metric.name, ident) {
        (_, None) if metric.name == monitoring::RUN_STATUS.name => "\"$1\"".to_string(),
        (_, None) => "\"$nbkp_now\"".to_string(),
        (n, Some(i)) => {
            let var = match n {
                n if n == monitoring::LAST_SUCCESS.name => "MS",
                n if n == monitoring::LAST_RUN.name => "MT",
                n if n == monitoring::LAST_DURATION.name => "MD",
                n if n == monitoring::SNAPSHOTS.name => "MN",
                n if n == monitoring::TRANSFERRED.name => "MB",
                _ => "MC",
            };
            debug_assert!(metric.kept != Kept::Never);
            format!("\"${{NBKP_{var}_{i}-}}\"")
        }
    };
    // Safe: constant names and an identifier.
    Value::from_safe_string(text)
}

pub fn block(env: &minijinja::Environment<'_>, plan: &Plan) -> Result<Value, minijinja::Error> {
    let ident_of = |slug: &str| {
        plan.syncs
            .iter()
            .find(|s| s.slug == slug)
            .map(|s| s.ident.clone())
    };
    let sync_ref = |slug: &str, ident: String| SyncRef {
        slug: slug.to_string(),
        status: Value::from_safe_string(format!("\"${{NBKP_ST_{ident}-not-run}}\"")),
        ident: super::ident(&ident),
    };
    let mon = plan.monitoring.as_ref();
    let ping = mon.and_then(|m| m.ping.as_ref()).map(|p| PingView {
        start: p.start.clone(),
        success: p.success.clone(),
        fail: p.fail.clone(),
        clients: p
            .clients
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut argv = vec![c.program];
                argv.extend(c.args.iter().map(String::as_str));
                ClientView {
                    keyword: Value::from_safe_string(if i == 0 { "if" } else { "elif" }.into()),
                    program: c.program,
                    words: words(&argv),
                    body: c.body,
                }
            })
            .collect(),
        names: p
            .clients
            .iter()
            .map(|c| c.program)
            .collect::<Vec<_>>()
            .join(" nor "),
    });
    let metrics = mon.and_then(|m| m.metrics.as_ref()).map(|m| MetricsView {
        path: m.path.clone(),
        logs: !m.transfer_logs.is_empty(),
        snapshot_dirs: m
            .snapshot_dirs
            .iter()
            .filter_map(|d| {
                Some(SnapshotDirView {
                    ident: super::ident(&ident_of(&d.sync)?),
                    dir: d.dir.clone(),
                })
            })
            .collect(),
        families: monitoring::METRICS
            .iter()
            .map(|metric| FamilyView {
                help: format!("# HELP {} {}", metric.name, metric.help),
                kind: format!("# TYPE {} gauge", metric.name),
                values: if metric.per_sync {
                    // A sync not in this plan (left out) only keeps its lines.
                    m.syncs
                        .iter()
                        .map(|slug| ValueView {
                            prefix: monitoring::line_prefix(metric, Some(slug)),
                            value: match ident_of(slug) {
                                Some(i) => expansion(metric, Some(&i)),
                                None => Value::from_safe_string("''".into()),
                            },
                        })
                        .collect()
                } else {
                    vec![ValueView {
                        prefix: monitoring::line_prefix(metric, None),
                        value: expansion(metric, None),
                    }]
                },
            })
            .collect(),
    });
    let syncs: Vec<SyncRef> = plan
        .syncs
        .iter()
        .map(|s| sync_ref(&s.slug, s.ident.clone()))
        .collect();
    let status = minijinja::context! {
        ok => monitoring::status_value(true, false),
        locked => monitoring::status_value(false, true),
        failed => monitoring::status_value(false, false),
    };
    let text = env
        .get_template("automatic.sh")?
        .render(minijinja::context! {
            exit => minijinja::context! { ok => Exit::Ok.code(), locked => Exit::Locked.code() },
            status => status,
            // Safe: constant names and paths.
            power_env => Value::from_safe_string(conditions::POWER_SUPPLY_ENV.into()),
            power_expr => Value::from_safe_string(format!(
                "\"${{{}:-{}}}\"",
                conditions::POWER_SUPPLY_ENV,
                conditions::POWER_SUPPLY_DIR
            )),
            pmset => conditions::PMSET,
            pmset_words => words(&conditions::PMSET),
            nmcli => conditions::NMCLI_METERED,
            nmcli_words => words(&conditions::NMCLI_METERED),
            on_battery => conditions::ON_BATTERY,
            metered => conditions::METERED,
            ping => ping,
            metrics => metrics,
            syncs => syncs,
            any_remote => !plan.remote_syncs.is_empty(),
        })?;
    // Safe: rendered by the same environment, every value through its formatter.
    Ok(Value::from_safe_string(text.trim_end().to_string() + "\n"))
}
