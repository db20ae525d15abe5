//! The plan rendered as a POSIX shell script (`nbkp sh`).
//!
//! The templates in `templates/` hold control flow only. Every value they
//! print passes through one formatter: strings are shell-quoted, plan
//! arguments become shell words (see [`words`]), so a plain `{{ value }}` is
//! always safe and a raw insertion needs an explicit `|safe`.

mod automatic;
mod mount;
mod shake;
mod wrap;

use minijinja::value::{Object, Value};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior};
use serde::Serialize;

use crate::plan::{Arg, Plan};
use crate::shell::quoted;

const SCRIPT: &str = include_str!("../../templates/script.sh.j2");
const MOUNT: &str = include_str!("../../templates/mount.sh.j2");
const SYNC: &str = include_str!("../../templates/sync.sh.j2");
const AUTOMATIC: &str = include_str!("../../templates/automatic.sh.j2");
use crate::plan::words;
use crate::runtime::LIB;

/// Where the runtime library goes in a rendered script.
const RUNTIME_MARKER: &str = "@@NBKP_RUNTIME@@";

/// Shell syntax the formatter knows how to print.
#[derive(Debug)]
enum Shell {
    /// Space-separated words.
    Words(Vec<Arg>),
    /// Texts rendered by this environment (every value through its
    /// formatter), printed one after the other.
    Rendered(Vec<String>),
}

impl Object for Shell {}

fn shell_words(args: Vec<Arg>) -> Value {
    Value::from_object(Shell::Words(args))
}

/// Text for a `#` comment: one line, no control characters.
fn comment(value: &str) -> Value {
    // Control characters are U+0000–U+001F and U+007F–U+009F (lead byte
    // 0xC2 in UTF-8); text without them, as nearly all is, is copied as it
    // is (a large script has thousands of comments).
    if !value.bytes().any(|b| b < 0x20 || b == 0x7f || b == 0xc2) {
        // Safe: no control character, so no newline.
        return Value::from_safe_string(value.to_string());
    }
    let clean: String = value
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    // Safe: a comment line cannot run anything once it has no newline.
    Value::from_safe_string(clean)
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    env.set_auto_escape_callback(|_| AutoEscape::Custom("shell"));
    env.set_formatter(|out, _state, value| {
        if value.is_safe() {
            out.write_str(value.as_str().unwrap_or_default())?;
            return Ok(());
        }
        if let Some(obj) = value.downcast_object_ref::<Shell>() {
            match obj {
                Shell::Words(args) => out.write_str(&words::words(args))?,
                Shell::Rendered(texts) => {
                    for text in texts {
                        out.write_str(text)?;
                    }
                }
            }
            return Ok(());
        }
        if let Some(s) = value.as_str() {
            out.write_str(&quoted(s))?;
            return Ok(());
        }
        if value.is_number() {
            out.write_str(&value.to_string())?;
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("no shell form for {value:?}"),
        ))
    });
    env.add_filter("comment", comment);
    env.add_template("script.sh", SCRIPT)
        .expect("templates/script.sh.j2 parses");
    env.add_template("mount.sh.j2", MOUNT)
        .expect("templates/mount.sh.j2 parses");
    env.add_template("sync.sh", SYNC)
        .expect("templates/sync.sh.j2 parses");
    env.add_template("automatic.sh", AUTOMATIC)
        .expect("templates/automatic.sh.j2 parses");
    env
}

/// Chooses a here-document terminator that no line of `body` equals.
fn terminator(base: &str, body: &str) -> String {
    let mut t = base.to_string();
    let mut n = 0;
    while body.lines().any(|l| l == t) {
        n += 1;
        t = format!("{base}_{n}");
    }
    t
}

#[derive(Serialize)]
struct HostView {
    id: String,
    name: String,
    remote: bool,
    /// Everything between `ssh` and the destination.
    ssh_args: Option<Value>,
    destination: Option<String>,
    /// `ssh … HOST CMD` of a session opened ahead for rsync.
    waiting_session: Option<Value>,
    /// Descriptors of the long-lived shell, when the plan gives one.
    fd_in: Option<u8>,
    fd_out: Option<u8>,
    /// Seconds its probes may take (the plan's `probe_bound`).
    probe_bound: Option<u32>,
    /// Safe: built by `words::probe_script`, which quotes every value; it
    /// goes into a quoted here-document and is run by `sh -s`.
    probes: Value,
    /// Whether anything is asked of the host.
    probed: bool,
    eof: Value,
    /// Syncs of several lanes use its long-lived shell (it allows more
    /// than one sync at once): one message at a time.
    shared: bool,
}

#[derive(Serialize)]
struct StepView {
    group: Option<usize>,
    /// The layer's check lines, see [`layer_lines`] (empty for a group).
    checks: Value,
}

#[derive(Serialize)]
struct GroupView {
    id: usize,
    layers: Vec<Value>,
}

/// A layer's checks as `case` lines, each indented and ending in a newline,
/// joined here rather than looped over in the template: a large config has
/// tens of thousands of them, and one value per layer is much cheaper for
/// minijinja to print.
fn layer_lines(plan: &Plan, layer: &crate::plan::CheckLayer) -> Value {
    let mut lines = String::with_capacity(160 * layer.checks.len());
    let mut var = String::new();
    for c in &layer.checks {
        var.clear();
        var.push_str(&plan.hosts[c.probe.host].id);
        var.push('_');
        // Without a String per number.
        std::fmt::Write::write_fmt(&mut var, format_args!("{}", c.probe.index))
            .expect("writing to a String");
        lines.push_str("  ");
        words::check_into(&mut lines, &var, c);
        lines.push('\n');
    }
    // Safe: `words::check_into` quotes every value it writes.
    Value::from_safe_string(lines)
}

#[derive(Serialize)]
struct OpView<'p> {
    host: &'p str,
    text: String,
}

/// The first sync's prepare, sent with its host's probes.
#[derive(Serialize)]
struct EarlyView<'p> {
    slug: &'p str,
    ident: Value,
    snapshot_style: Value,
    /// The guarded prepare.
    prepare: OpView<'p>,
    /// What undoes it if the sync does not run.
    abort: OpView<'p>,
}

/// The next sync's prepare, sent with this sync's commit.
#[derive(Serialize)]
struct CarryView {
    ident: Value,
    snapshot_style: Value,
    /// The prepare's operation text, quoted as one word.
    text: String,
}

/// What the script's own loops over syncs print: the list in its header,
/// the preflight calls and the run lines.
#[derive(Serialize)]
struct RunView<'p> {
    slug: &'p str,
    ident: Value,
    summary: &'p str,
    upstream: Option<Value>,
    upstream_slug: Option<&'p str>,
    /// The later sync whose session opens when this one starts, and its host.
    ahead: Option<(Value, String)>,
    /// Needs no remote host: checked and run while they answer.
    early_phase: bool,
    /// A remote side: skipped on a metered connection (`--not-metered`).
    remote: bool,
    /// Its lane, when there are several (see `plan::lanes`).
    lane: usize,
    /// Its upstream is in another lane: it waits for that one's result.
    cross: bool,
}

/// One sync's functions (`templates/sync.sh.j2`).
/// Borrows what it can from the plan: minijinja copies every string it is
/// given, and a large config has thousands of these.
#[derive(Serialize)]
struct SyncView<'p> {
    slug: &'p str,
    ident: Value,
    summary: &'p str,
    /// Each step: a group id to call, or a layer's check lines.
    steps: Vec<StepView>,
    snapshot_style: Value,
    /// The destination keeps snapshots (new snapshot names are needed).
    snapshots: bool,
    prepare: Option<OpView<'p>>,
    /// The previous sync's commit carries this sync's prepare (its answer
    /// waits in a file, see `nbkp_prepared`).
    prepared_ahead: bool,
    commit: Option<OpView<'p>>,
    /// The next sync whose prepare this sync's commit carries.
    carries: Option<CarryView>,
    abort: Option<OpView<'p>>,
    hooks: Option<HooksView>,
    /// An rsync daemon's password command, run before rsync.
    password_command: Option<Value>,
    /// The rsync command: through the session opened ahead when it can
    /// use one and that session is there, else with its own ssh.
    transfer: Value,
}

/// One hook: `nbkp_hook IDENT SHOWN PROGRAM ARG...`, every word quoted.
#[derive(Serialize)]
struct HookView {
    shown: String,
    argv: Vec<String>,
}

#[derive(Serialize)]
struct HookEnvView {
    name: String,
    value: Value,
}

#[derive(Serialize)]
struct HooksView {
    before: Vec<HookView>,
    after: Vec<HookView>,
    on_failure: Vec<HookView>,
    env: Vec<HookEnvView>,
    /// The destination keeps snapshots: `after` hooks get the new one's name.
    snapshots: bool,
}

fn hooks_view(s: &crate::plan::SyncPlan) -> Option<HooksView> {
    if s.hooks.is_empty() {
        return None;
    }
    let list = |calls: &[crate::plan::hooks::HookCall]| {
        calls
            .iter()
            .map(|c| HookView {
                shown: c.shown.clone(),
                argv: c.argv.clone(),
            })
            .collect()
    };
    Some(HooksView {
        before: list(&s.hooks.before),
        after: list(&s.hooks.after),
        on_failure: list(&s.hooks.on_failure),
        env: s
            .hooks
            .env
            .iter()
            .map(|e| HookEnvView {
                name: e.name.to_string(),
                value: shell_words(vec![e.value.clone()]),
            })
            .collect(),
        snapshots: !matches!(s.snapshots, crate::plan::SnapshotPlan::None),
    })
}

#[derive(Serialize)]
struct ProgressView {
    name: String,
    /// Plain words joined by spaces (split again when the flags are used).
    flags: String,
}

fn ident(s: &str) -> Value {
    debug_assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    // Safe: identifiers are made of [a-z0-9_] by the plan.
    Value::from_safe_string(s.to_string())
}

/// `printf` arguments that put the run's values in front of an operation:
/// `NAME=value` lines for every variable operations may refer to.
fn op_preamble() -> Value {
    let format: String = words::OP_VARS
        .iter()
        .map(|v| format!("{}=%s\\n", v.shell_name()))
        .collect();
    let mut args = vec![Arg::lit(format)];
    args.extend(
        words::OP_VARS
            .iter()
            .map(|v| Arg::template(vec![crate::plan::Piece::Var(*v)])),
    );
    shell_words(args)
}

/// A sync's rsync command line (see `SyncView::transfer`).
fn transfer(s: &crate::plan::SyncPlan) -> Value {
    use crate::plan::channel::{SESSION_INPUT_FD, SESSION_OUTPUT_FD};
    let env = match &s.rsync_password {
        Some(crate::plan::daemon::Password::Command(_)) => "RSYNC_PASSWORD=$nbkp_pw ",
        Some(crate::plan::daemon::Password::Environment) => "RSYNC_PASSWORD=${RSYNC_PASSWORD-} ",
        None => "",
    };
    let direct = [env, &words::words(&s.rsync)].concat();
    let text = match &s.channel {
        None => direct,
        Some(c) => {
            let fifo = format!("\"$NBKP_CTL/ch-{}", s.ident);
            [
                "if nbkp_chan_ready ",
                &s.ident,
                "; then ",
                &words::words(&c.rsync),
                &format!(" {SESSION_INPUT_FD}>{fifo}.in\" {SESSION_OUTPUT_FD}<{fifo}.out\"; else "),
                &direct,
                "; fi",
            ]
            .concat()
        }
    };
    // Safe: `words::words` quotes every literal; the rest is constant text
    // and the sync's identifier ([a-z0-9_]).
    Value::from_safe_string(text)
}

/// Everything `templates/sync.sh.j2` prints for one sync.
fn sync_view<'p>(plan: &'p Plan, s: &'p crate::plan::SyncPlan) -> SyncView<'p> {
    let op = |call: &Option<crate::plan::OpCall>| {
        call.as_ref().map(|c| OpView {
            host: &plan.hosts[c.host].id,
            text: words::op_text(c),
        })
    };
    SyncView {
        slug: &s.slug,
        ident: ident(&s.ident),
        summary: &s.summary,
        steps: s
            .checks
            .iter()
            .map(|step| match step {
                crate::plan::CheckStep::Group(id) => StepView {
                    group: Some(*id),
                    checks: Value::from_safe_string(String::new()),
                },
                crate::plan::CheckStep::Layer(layer) => StepView {
                    group: None,
                    checks: layer_lines(plan, layer),
                },
            })
            .collect(),
        snapshot_style: Value::from_safe_string(s.snapshot_format.to_string()),
        snapshots: !matches!(s.snapshots, crate::plan::SnapshotPlan::None),
        prepare: op(&s.prepare),
        prepared_ahead: s.schedule.prepare_carried,
        transfer: transfer(s),
        commit: op(&s.commit),
        carries: s.schedule.commit_carries_prepare_of.and_then(|i| {
            let next = &plan.syncs[i];
            Some(CarryView {
                ident: ident(&next.ident),
                snapshot_style: Value::from_safe_string(next.snapshot_format.to_string()),
                text: words::op_text(next.prepare.as_ref()?),
            })
        }),
        abort: op(&s.abort),
        hooks: hooks_view(s),
        password_command: match &s.rsync_password {
            Some(crate::plan::daemon::Password::Command(argv)) => Some(shell_words(
                argv.iter().map(|w| Arg::lit(w.clone())).collect(),
            )),
            _ => None,
        },
    }
}

/// The sync (if any) whose session opens when this one starts, and its host.
fn ahead(plan: &Plan, s: &crate::plan::SyncPlan) -> Option<(Value, String)> {
    let next = &plan.syncs[s.schedule.opens_channel_of?];
    let host = next.channel.as_ref()?.host;
    Some((ident(&next.ident), plan.hosts[host].id.clone()))
}

/// The functions of these syncs, in order, as one text: each sync's is
/// copied onto the end of it (kept, a text per sync would hold a few
/// kilobytes of capacity each, most of it unused; the copy reuses one).
fn sync_functions(
    env: &Environment<'_>,
    plan: &Plan,
    syncs: &[crate::plan::SyncPlan],
) -> Result<String, Error> {
    let tmpl = env.get_template("sync.sh")?;
    // Room for a few kilobytes a sync, so the text is seldom moved: pages
    // of it that are never written are never touched.
    let mut text = String::with_capacity(4096 * syncs.len());
    // The plan has lanes only when there are several.
    let lanes = !plan.lanes.is_empty();
    for s in syncs {
        text.push_str(&tmpl.render(
            minijinja::context! { s => sync_view(plan, s), lanes, exit => crate::exit::for_script() },
        )?);
    }
    Ok(text)
}

/// The functions of every sync, without the last newline (the script
/// template adds it). A large config's are rendered in a few threads, each
/// a run of consecutive syncs, and kept in order: the text is the same,
/// and each sync's block depends on nothing but the plan. The threads'
/// texts are printed one after the other, never joined (they are most of
/// a large script).
fn sync_functions_of_all(env: &Environment<'_>, plan: &Plan) -> Result<Value, Error> {
    const SYNCS_PER_THREAD: usize = 250;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(plan.syncs.len().div_ceil(SYNCS_PER_THREAD))
        .max(1);
    let chunk = plan.syncs.len().div_ceil(threads).max(1);
    let parts: Vec<Result<String, Error>> = std::thread::scope(|scope| {
        let workers: Vec<_> = plan
            .syncs
            .chunks(chunk)
            .map(|part| scope.spawn(move || sync_functions(env, plan, part)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut texts = Vec::with_capacity(parts.len());
    for part in parts {
        texts.push(part?);
    }
    if let Some(last) = texts.last_mut() {
        if last.ends_with('\n') {
            last.pop();
        }
    }
    Ok(Value::from_object(Shell::Rendered(texts)))
}

/// [`script`], written to `out` as it is rendered (a large script is
/// never held whole in memory).
pub fn script_to(plan: &Plan, mut out: impl std::io::Write) -> Result<(), Error> {
    let lanes_of_host = |host: usize| {
        let mut lanes: Vec<usize> = plan
            .syncs
            .iter()
            .filter(|s| {
                [&s.prepare, &s.commit, &s.abort]
                    .into_iter()
                    .flatten()
                    .any(|c| c.host == host)
            })
            .filter_map(|s| s.schedule.lane)
            .collect();
        lanes.sort_unstable();
        lanes.dedup();
        lanes.len()
    };
    let hosts: Vec<HostView> = plan
        .hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let body = words::probe_script(&h.probes);
            HostView {
                id: h.id.clone(),
                name: h.name.clone(),
                remote: h.ssh.is_some(),
                ssh_args: h.ssh.as_ref().map(|s| shell_words(s.args.clone())),
                waiting_session: h.waiting_session.clone().map(shell_words),
                destination: h.ssh.as_ref().map(|s| s.destination.clone()),
                fd_in: h.session_fds.map(|f| f.0),
                fd_out: h.session_fds.map(|f| f.1),
                probe_bound: h.probe_bound,
                eof: Value::from_safe_string(terminator("NBKP_EOF", &body)),
                probed: !h.probes.is_empty(),
                probes: Value::from_safe_string(body),
                shared: h.session_fds.is_some() && lanes_of_host(i) > 1,
            }
        })
        .collect();
    let remote: std::collections::HashSet<&str> =
        plan.remote_syncs.iter().map(String::as_str).collect();
    // Each sync's lane by name, for "is its upstream in another lane".
    let lane_of: std::collections::HashMap<&str, Option<usize>> = plan
        .syncs
        .iter()
        .map(|s| (s.slug.as_str(), s.schedule.lane))
        .collect();
    let syncs: Vec<RunView> = plan
        .syncs
        .iter()
        .map(|s| RunView {
            slug: &s.slug,
            ident: ident(&s.ident),
            summary: &s.summary,
            upstream: s
                .schedule
                .upstream
                .as_ref()
                .map(|u| ident(&u.replace('-', "_"))),
            upstream_slug: s.schedule.upstream.as_deref(),
            ahead: ahead(plan, s),
            early_phase: s.early(),
            remote: remote.contains(s.slug.as_str()),
            lane: s.schedule.lane.unwrap_or(0),
            cross: s
                .schedule
                .upstream
                .as_ref()
                .and_then(|u| lane_of.get(u.as_str()))
                .is_some_and(|&l| l != s.schedule.lane),
        })
        .collect();
    // (lane, d or s, volume here) for the device check: each sync's
    // destination volume, and its source volume (a resource when rotational).
    let mut seen: std::collections::HashSet<(usize, &str, &Arg)> = std::collections::HashSet::new();
    let lane_devices: Vec<(usize, Value, Value)> = plan
        .syncs
        .iter()
        .flat_map(|s| {
            let devices = s.schedule.devices.as_ref();
            let dst = devices
                .and_then(|d| d.destination.as_ref())
                .map(|a| ("d", a));
            let src = devices.and_then(|d| d.source.as_ref()).map(|a| ("s", a));
            s.schedule.lane.into_iter().flat_map(move |lane| {
                [dst, src]
                    .into_iter()
                    .flatten()
                    .map(move |(k, a)| (lane, k, a))
            })
        })
        .filter_map(|key| {
            if !seen.insert(key) {
                return None;
            }
            // Safe: `d` or `s`.
            Some((
                key.0,
                Value::from_safe_string(key.1.to_string()),
                shell_words(vec![key.2.clone()]),
            ))
        })
        .collect();
    let env = environment();
    let sync_functions = sync_functions_of_all(&env, plan)?;
    let progress: Vec<ProgressView> = crate::plan::rsync::PROGRESS_MODES
        .iter()
        .map(|(name, flags)| ProgressView {
            name: name.to_string(),
            flags: flags.join(" "),
        })
        .collect();
    let lib_eof = terminator("NBKP_LIB", LIB);
    debug_assert_eq!(lib_eof, "NBKP_LIB");
    let (mounts, credentials) = mount::views(plan);
    // Safe: rendered by the same environment, every value through its formatter.
    let mount_block = Value::from_safe_string(
        env.get_template("mount.sh.j2")?
            .render(minijinja::context! {
                mounts => &mounts,
                credentials => &credentials,
                key_end => crate::plan::mount::KEY_END,
                locked_code => crate::plan::mount::code::LOCKED,
            })?
            .trim_end()
            .to_string()
            + "\n",
    );
    let automatic_block = automatic::block(&env, plan)?;
    let tmpl = env.get_template("script.sh")?;
    let context = minijinja::context! {
        exit => crate::exit::for_script(),
        config_path => plan.config_path.clone(),
        hosts => hosts,
        remote_hosts => plan.hosts.iter().any(|h| h.ssh.is_some()),
        snapshots => plan.syncs.iter().any(|s| !matches!(s.snapshots, crate::plan::SnapshotPlan::None)),
        channels => plan.syncs.iter().any(|s| s.channel.is_some()),
        carries => plan.syncs.iter().any(|s| s.schedule.commit_carries_prepare_of.is_some() || s.prepare_with_probes.is_some()),
        early => plan.syncs.first().and_then(|s| {
            let op = |c: &crate::plan::OpCall| OpView {
                host: &plan.hosts[c.host].id,
                text: words::op_text(c),
            };
            Some(EarlyView {
                slug: &s.slug,
                ident: ident(&s.ident),
                snapshot_style: Value::from_safe_string(s.snapshot_format.to_string()),
                prepare: op(s.prepare_with_probes.as_ref()?),
                abort: op(s.abort.as_ref()?),
            })
        }),
        // (sync, host, the host's control socket)
        first_channel => plan.first_channel.and_then(|i| {
            let sync = &plan.syncs[i];
            let host = &plan.hosts[sync.channel.as_ref()?.host];
            let socket = host.ssh.as_ref()?.control_socket.clone();
            Some((ident(&sync.ident), host.id.clone(), shell_words(vec![socket])))
        }),
        session_input_fd => crate::plan::channel::SESSION_INPUT_FD,
        session_output_fd => crate::plan::channel::SESSION_OUTPUT_FD,
        // The sessions' descriptors, closed for what runs in the background.
        // Safe: numbers and constant text.
        session_fds_closed => Value::from_safe_string(
            plan.hosts
                .iter()
                .filter_map(|h| h.session_fds)
                .map(|(i, o)| format!("{i}>&- {o}<&-"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        // Some syncs need no remote host and some do: two phases.
        phased => plan.phased(),
        syncs => syncs,
        lanes => plan.lanes.len(),
        default_jobs => plan.default_jobs,
        lane_devices => lane_devices,
        sync_functions => sync_functions,
        groups => plan
            .check_groups
            .iter()
            .map(|g| GroupView {
                id: g.id,
                layers: g.layers.iter().map(|l| layer_lines(plan, l)).collect(),
            })
            .collect::<Vec<_>>(),
        disabled => plan.disabled.clone(),
        excluded_syncs => plan.excluded_syncs.clone(),
        dry_run_flag => crate::plan::rsync::DRY_RUN_FLAG,
        link_dest_prefix => crate::plan::rsync::LINK_DEST_PREFIX,
        name_tries => crate::plan::rsync::SNAPSHOT_NAME_TRIES,
        op_preamble => op_preamble(),
        // Safe: constant names. `NAME=${NAME}` lines, for a double-quoted
        // assignment: the same text as `op_preamble` prints.
        op_values => Value::from_safe_string(
            words::OP_VARS
                .iter()
                .map(|v| format!("{n}=${{{n}}}", n = v.shell_name()))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        progress_modes => progress,
        uses_script_dir => plan.uses_script_dir,
        has_hooks => plan.syncs.iter().any(|s| !s.hooks.is_empty()),
        mounts => mounts,
        credentials => credentials,
        mount_block => mount_block,
        automatic_block => automatic_block,
        monitoring => plan.monitoring.is_some(),
        not_mounted => crate::plan::mount::NOT_MOUNTED,
        // Safe: constant text, replaced by the part of the runtime library
        // the script uses (see `shake`), inside a quoted here-document.
        lib => Value::from_safe_string(RUNTIME_MARKER.to_string()),
    };
    let whole = tmpl.render(context)?;
    out.write_all(wrap::wrap(&shake::shake(&whole, RUNTIME_MARKER), wrap::WIDTH).as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::new(ErrorKind::WriteFailure, "writing the script").with_source(e))
}

#[cfg(test)]
mod tests {
    use super::comment;

    #[test]
    fn comments_replace_every_control_character() {
        let text = |v: minijinja::Value| v.as_str().unwrap_or_default().to_string();
        assert_eq!(text(comment("a é ½ 日本 ~")), "a é ½ 日本 ~");
        assert_eq!(
            text(comment("a\nb\tc\u{7f}d\u{85}e\u{9f}f\u{a0}g")),
            "a?b?c?d?e?f\u{a0}g"
        );
    }
}
