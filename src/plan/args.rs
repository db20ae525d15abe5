//! Command arguments as data: literal text plus run-time values.
//!
//! An [`Arg`] is one shell word (or, for [`Arg::Optional`], zero or one). The
//! script renders it as shell syntax and the executor as a plain string; both
//! quote through [`crate::shell::quote`], the one place text becomes shell.

use serde::Serialize;
use std::borrow::Cow;

/// A value known only when the plan runs.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Var {
    /// `1` in a dry run, else `0` (for the runtime library's operations).
    DryRunMode,
    /// The candidate name for this sync's new snapshot (UTC, milliseconds).
    SnapshotCandidate,
    /// The name `prepare` settled on for the new snapshot.
    Snapshot,
    /// `--link-dest=../<latest snapshot>`, or empty when there is none yet.
    LinkDest,
    /// The private directory holding this run's SSH control sockets.
    ControlDir,
    /// This run's identity in destination locks: `host:boot-id:pid`.
    LockOwner,
    /// A lock owner this run proved gone (its lock may be broken), or `-`.
    StaleLock,
    /// The directory of the generated script (`--relative-src/-dst`).
    ScriptDir,
    /// Hooks: which list runs (`before`, `after`, `on-failure`).
    HookKind,
    /// Hooks: the sync's state (`running`, `completed`, `failed`, `skipped`).
    HookStatus,
    /// Hooks: rsync's exit code, or empty when rsync did not run.
    RsyncExit,
    /// Hooks: the snapshot a completed sync made (`after` only), or empty.
    HookSnapshot,
    /// `--log-file=<a private directory>/<sync ident>`, where rsync logs
    /// what it sent and received (the metrics file's transferred bytes),
    /// or empty (no metrics, a dry run).
    RsyncLog,
    /// Where mount-managed volume `n` of [`crate::plan::Plan::mounts`] is
    /// mounted, found when it is mounted (volumes without a `path`).
    MountPoint(usize),
}

impl Var {
    /// The shell variable the script keeps this value in.
    pub fn shell_name(self) -> Cow<'static, str> {
        match self {
            Var::DryRunMode => "NBKP_DRY_RUN".into(),
            Var::SnapshotCandidate => "NBKP_CANDIDATE".into(),
            Var::Snapshot => "NBKP_SNAPSHOT".into(),
            Var::LinkDest => "NBKP_LINK_DEST".into(),
            Var::ControlDir => "NBKP_CTL".into(),
            Var::LockOwner => "NBKP_LOCK_OWNER".into(),
            Var::StaleLock => "NBKP_STALE_LOCK".into(),
            Var::ScriptDir => "NBKP_SCRIPT_DIR".into(),
            Var::HookKind => "NBKP_HOOK_KIND".into(),
            Var::HookStatus => "NBKP_HOOK_STATUS".into(),
            Var::RsyncExit => "NBKP_RSYNC_RC".into(),
            Var::HookSnapshot => "NBKP_HOOK_SNAPSHOT".into(),
            Var::RsyncLog => "NBKP_RSYNC_LOG".into(),
            Var::MountPoint(n) => format!("NBKP_MP_{n}").into(),
        }
    }
}

/// A piece of one word.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Piece {
    Lit(String),
    Var(Var),
}

/// One argument of a command.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Arg {
    /// Literal text, passed as it is. Fixed words (`rsync`, `-e`, the
    /// default options) are borrowed: every sync's commands repeat them.
    Lit(Cow<'static, str>),
    /// One word made of literal text and run-time values.
    Template(Vec<Piece>),
    /// The value, as one word, when it is non-empty; nothing otherwise.
    Optional(Var),
    /// rsync's run-time flags, zero or more plain words: the chosen
    /// progress mode's flags (spec §3.4), then `--dry-run` in a dry run.
    RunFlags,
    /// One word: the arguments quoted for a shell and joined by spaces
    /// (the command string of `ssh host CMD`).
    Joined(Vec<Arg>),
    /// One word: the arguments quoted for rsync's own splitting of `-e`,
    /// which knows quotes but not backslashes.
    RshJoined(Vec<Arg>),
}

impl Arg {
    pub fn lit(s: impl Into<Cow<'static, str>>) -> Arg {
        Arg::Lit(s.into())
    }

    /// Literal text followed by a run-time value and more literal text.
    pub fn template(pieces: Vec<Piece>) -> Arg {
        // Adjacent literals merge and empty ones vanish, so equal words
        // always have equal representations.
        let normal = pieces
            .windows(2)
            .all(|w| !matches!(w, [Piece::Lit(_), Piece::Lit(_)]))
            && !pieces
                .iter()
                .any(|p| matches!(p, Piece::Lit(s) if s.is_empty()));
        if normal && pieces.iter().any(|p| matches!(p, Piece::Var(_))) {
            // Already in that form (the usual case): kept without a copy.
            return Arg::Template(pieces);
        }
        let mut out: Vec<Piece> = Vec::new();
        for p in pieces {
            match (out.last_mut(), p) {
                (_, Piece::Lit(s)) if s.is_empty() => {}
                (Some(Piece::Lit(prev)), Piece::Lit(s)) => prev.push_str(&s),
                (_, p) => out.push(p),
            }
        }
        match out.as_slice() {
            [] => Arg::Lit(Cow::Borrowed("")),
            [Piece::Lit(s)] => Arg::Lit(Cow::Owned(s.clone())),
            _ => Arg::Template(out),
        }
    }

    /// This argument with `suffix` appended to its text.
    pub fn with_suffix(&self, suffix: &str) -> Arg {
        match self {
            Arg::Lit(s) => {
                let mut joined = String::with_capacity(s.len() + suffix.len());
                joined.push_str(s);
                joined.push_str(suffix);
                Arg::Lit(Cow::Owned(joined))
            }
            Arg::Template(p) => {
                let mut p = with_room(p);
                p.push(Piece::Lit(suffix.into()));
                Arg::template(p)
            }
            other => other.clone(),
        }
    }

    /// This argument followed by a run-time value, as one word.
    pub fn then_var(&self, var: Var) -> Arg {
        let mut pieces = match self {
            Arg::Lit(s) => {
                let mut v = Vec::with_capacity(2);
                v.push(Piece::Lit(s.to_string()));
                v
            }
            Arg::Template(p) => with_room(p),
            other => return other.clone(),
        };
        pieces.push(Piece::Var(var));
        Arg::template(pieces)
    }

    /// This argument with `prefix` put in front of its text.
    pub fn with_prefix(&self, prefix: &str) -> Arg {
        match self {
            Arg::Lit(s) => Arg::Lit(Cow::Owned([prefix, s].concat())),
            Arg::Template(p) => {
                let mut v = vec![Piece::Lit(prefix.into())];
                v.extend(p.iter().cloned());
                Arg::template(v)
            }
            other => other.clone(),
        }
    }

    /// Renders the argument for a human: run-time values as `${NAME}`.
    pub fn display(&self) -> String {
        match self {
            Arg::Lit(s) => s.to_string(),
            Arg::Template(pieces) => pieces
                .iter()
                .map(|p| match p {
                    Piece::Lit(s) => s.clone(),
                    Piece::Var(v) => format!("${{{}}}", v.shell_name()),
                })
                .collect(),
            Arg::Optional(v) => format!("${{{}}}", v.shell_name()),
            Arg::RunFlags => "[run flags]".into(),
            Arg::Joined(args) | Arg::RshJoined(args) => {
                args.iter().map(Arg::display).collect::<Vec<_>>().join(" ")
            }
        }
    }
}

/// A copy of `pieces` with room for one more (no second allocation when it
/// is pushed).
fn with_room(pieces: &[Piece]) -> Vec<Piece> {
    let mut v = Vec::with_capacity(pieces.len() + 1);
    v.extend_from_slice(pieces);
    v
}

/// Literal arguments from strings.
pub fn lits<I, S>(items: I) -> Vec<Arg>
where
    I: IntoIterator<Item = S>,
    S: Into<Cow<'static, str>>,
{
    items.into_iter().map(|s| Arg::Lit(s.into())).collect()
}
