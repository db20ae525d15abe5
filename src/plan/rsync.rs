//! rsync command lines (spec §3), decided once.

use std::borrow::Cow;

use super::args::{lits, Arg, Var};
use super::ssh::SshCommand;
use crate::config::{Priority, Sync};

/// The defaults every sync gets unless `default-options-override` replaces them.
pub const DEFAULT_OPTIONS: &[&str] = &[
    "-a",
    "--delete",
    "--delete-excluded",
    "--partial-dir=.rsync-partial",
    "--safe-links",
];

/// Hide sentinels from the sender, protect them on the receiver. Always
/// present, also with `default-options-override`: without them `--delete`
/// removes the destination's `.nbkp-dst` and copies the source's sentinels.
pub const SENTINEL_FILTERS: &[&str] = &["--filter=H .nbkp-*", "--filter=P .nbkp-*"];

/// `-p/--progress` modes and the rsync flags each adds (spec §3.4).
pub const PROGRESS_MODES: &[(&str, &[&str])] = &[
    ("none", &[]),
    (
        "overall",
        &["--info=progress2", "--stats", "--human-readable"],
    ),
    ("per-file", &["-v", "--progress", "--human-readable"]),
    (
        "full",
        &[
            "-v",
            "--progress",
            "--info=progress2",
            "--stats",
            "--human-readable",
        ],
    ),
];

/// `--link-dest` for a hard-link snapshot: relative to the new snapshot's
/// directory, so `../<name>` is the snapshot `latest` points at.
pub const LINK_DEST_PREFIX: &str = "--link-dest=../";

/// How often an operation is tried with a new snapshot name when the name
/// is taken (exit 75).
pub const SNAPSHOT_NAME_TRIES: u32 = 5;

/// Added after the progress flags in a dry run.
pub const DRY_RUN_FLAG: &str = "--dry-run";

/// The flags of a progress mode, or `None` for an unknown mode.
pub fn progress_flags(mode: &str) -> Option<&'static [&'static str]> {
    PROGRESS_MODES
        .iter()
        .find(|(m, _)| *m == mode)
        .map(|(_, f)| *f)
}

/// Base options, sentinel filters, checksum, compress and extra options.
pub fn base_options(sync: &Sync) -> Vec<String> {
    base_words(sync).map(Cow::into_owned).collect()
}

/// [`base_options`], the fixed ones borrowed (every sync's command has them).
fn base_words(sync: &Sync) -> impl Iterator<Item = Cow<'static, str>> + '_ {
    let opts = &sync.rsync_options;
    let defaults = match &opts.default_options_override {
        Some(_) => &[][..],
        None => DEFAULT_OPTIONS,
    };
    let custom = opts.default_options_override.iter().flatten();
    let flag = |on: bool, flag: &'static str| on.then_some(Cow::Borrowed(flag));
    defaults
        .iter()
        .map(|&s| Cow::Borrowed(s))
        .chain(custom.map(|s| Cow::Owned(s.clone())))
        .chain(SENTINEL_FILTERS.iter().map(|&s| Cow::Borrowed(s)))
        .chain(flag(opts.checksum, "--checksum"))
        .chain(flag(opts.compress, "--compress"))
        .chain(opts.extra_options.iter().map(|s| Cow::Owned(s.clone())))
}

/// The sync's filter rules, then its filter file (always last).
pub fn filter_options(sync: &Sync) -> Vec<String> {
    let mut args: Vec<String> = sync
        .filters
        .iter()
        .map(|rule| format!("--filter={rule}"))
        .collect();
    if let Some(file) = &sync.filter_file {
        args.push(format!("--filter=merge {file}"));
    }
    args
}

/// Options that do not depend on the run: what `config show` displays.
pub fn sync_options(sync: &Sync) -> Vec<String> {
    let mut args = base_options(sync);
    args.extend(filter_options(sync));
    args
}

/// Which side of the transfer is remote.
#[derive(Clone)]
pub enum Direction<'a> {
    /// Both paths on this machine.
    Local,
    /// This machine → a remote host.
    Push(&'a SshCommand),
    /// A remote host → this machine.
    Pull(&'a SshCommand),
    /// Both paths on one remote host: rsync runs there.
    OnRemote(&'a SshCommand),
    /// This machine ↔ an rsync daemon (`rsync://…`, or `host::module`
    /// through SSH with this `-e`); the paths name the daemon side.
    Daemon(Option<Arg>),
}

/// The full command (spec §3.2–3.3). `source` and `target` are paths ending
/// in `/`, already joined with `latest`, `staging` or the snapshot name.
/// With `through_channel`, a push or pull reaches the remote host through
/// a session opened ahead (see `channel`) instead of a new ssh.
pub fn command(
    sync: &Sync,
    direction: Direction,
    source: Arg,
    target: Arg,
    link_dest: bool,
    through_channel: bool,
) -> Vec<Arg> {
    let shell = |ssh: &SshCommand| {
        if through_channel {
            super::channel::relay_shell()
        } else {
            ssh.rsync_shell()
        }
    };
    let mut words = priority_prefix(sync.priority.as_ref());
    // Room for every word, so the list is not grown word by word; what is
    // left over is given back at the end (the plan keeps thousands).
    words.reserve(24 + sync.filters.len() + sync.rsync_options.extra_options.len());
    words.push(Arg::lit("rsync"));
    words.extend(base_words(sync).map(Arg::Lit));
    words.push(Arg::RunFlags);
    if link_dest {
        words.push(Arg::Optional(Var::LinkDest));
    }
    words.extend(lits(filter_options(sync)));
    let mut words = match direction {
        Direction::Local => {
            words.push(source);
            words.push(target);
            words
        }
        Direction::Push(ssh) => {
            words.extend(remote_priority(sync.priority.as_ref()));
            // Remote paths travel inside rsync's protocol, not through the
            // remote shell, so spaces and quotes arrive intact even with
            // rsync older than 3.2.4.
            words.push(Arg::lit("--protect-args"));
            words.push(Arg::lit("-e"));
            words.push(shell(ssh));
            words.push(source);
            words.push(target.with_prefix(&[&ssh.destination, ":"].concat()));
            words
        }
        Direction::Pull(ssh) => {
            words.extend(remote_priority(sync.priority.as_ref()));
            words.push(Arg::lit("--protect-args"));
            words.push(Arg::lit("-e"));
            words.push(shell(ssh));
            words.push(source.with_prefix(&[&ssh.destination, ":"].concat()));
            words.push(target);
            words
        }
        Direction::OnRemote(ssh) => {
            words.push(source);
            words.push(target);
            ssh.argv(Arg::Joined(words))
        }
        Direction::Daemon(rsh) => {
            if let Some(rsh) = rsh {
                words.push(Arg::lit("-e"));
                words.push(rsh);
            }
            words.push(source);
            words.push(target);
            words
        }
    };
    words.shrink_to_fit();
    words
}

/// A sync's `priority` as the runtime library's token `NICE:IOCLASS:IOLEVEL`
/// (`-` for unset), for `nbkp_prio` and the commit operation's pruning.
pub fn priority_token(p: &Priority) -> String {
    let part = |v: Option<u8>| v.map_or("-".to_string(), |n| n.to_string());
    format!(
        "{}:{}:{}",
        part(p.nice),
        part(p.ionice_class.map(|c| c.number())),
        part(p.ionice_level)
    )
}

/// What rsync runs under. `nice` is POSIX and always there: `nice -n N`.
/// ionice exists only on Linux, so whether to use it is asked where rsync
/// starts, by the runtime library's `nbkp_prio` (the same text the script
/// and `nbkp run` use for pruning), which then execs rsync.
fn priority_prefix(priority: Option<&Priority>) -> Vec<Arg> {
    match priority {
        None => Vec::new(),
        Some(p) if p.ionice_class.is_none() => match p.nice {
            Some(n) => lits(["nice".to_string(), "-n".into(), n.to_string()]),
            None => Vec::new(),
        },
        Some(p) => lits([
            "sh".to_string(),
            "-c".into(),
            priority_wrapper(),
            "nbkp-prio".into(),
            "exec".into(),
            priority_token(p),
        ]),
    }
}

/// The other end of a push or pull runs on the remote host, started by the
/// remote shell from `--rsync-path`: the same priority there, through the
/// same words as here, quoted for that shell.
fn remote_priority(priority: Option<&Priority>) -> Option<Arg> {
    let words = priority_prefix(priority);
    if words.is_empty() {
        return None;
    }
    let text: Vec<String> = words
        .iter()
        .filter_map(|w| match w {
            Arg::Lit(s) => Some(crate::shell::quote(s)),
            _ => None,
        })
        .chain(std::iter::once("rsync".to_string()))
        .collect();
    Some(Arg::lit(format!("--rsync-path={}", text.join(" "))))
}

/// `nbkp_prio`'s definition, taken from the runtime library, then a call.
pub fn priority_wrapper() -> String {
    let prio = crate::runtime::function("nbkp_prio").expect("templates/lib.sh defines nbkp_prio");
    format!("{prio}nbkp_prio \"$@\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IoniceClass;

    #[test]
    fn priority_words() {
        let idle = Priority {
            nice: Some(10),
            ionice_class: Some(IoniceClass::Idle),
            ionice_level: None,
        };
        assert_eq!(priority_token(&idle), "10:3:-");
        let words = priority_prefix(Some(&idle));
        assert_eq!(words[0], Arg::lit("sh"));
        assert_eq!(words[4], Arg::lit("exec"));
        let wrapper = priority_wrapper();
        assert!(wrapper.starts_with("nbkp_prio() {\n"));
        assert!(wrapper.ends_with("\n}\nnbkp_prio \"$@\""));
        let nice_only = Priority {
            nice: Some(5),
            ..Priority::default()
        };
        assert_eq!(priority_prefix(Some(&nice_only)), lits(["nice", "-n", "5"]));
        assert!(priority_prefix(Some(&Priority::default())).is_empty());
    }
}
