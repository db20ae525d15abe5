//! Plan arguments → the strings a process receives, with this run's values.
//! The executor's counterpart of `render::words`: the same meaning, the same
//! quoting function for command strings another program splits.

use crate::plan::{Arg, Piece, Var};
use crate::shell::{quote, quote_rsh};

/// The run-time values of the current sync.
#[derive(Debug, Clone, Default)]
pub struct Values {
    pub dry_run: bool,
    /// Progress flags, then `--dry-run` in a dry run.
    pub run_flags: Vec<String>,
    pub candidate: String,
    pub snapshot: String,
    /// `--link-dest=../<latest>` or empty.
    pub link_dest: String,
    pub control_dir: String,
    pub lock_owner: String,
    pub stale_lock: String,
    /// For hooks: which list runs, the sync's state, rsync's exit code
    /// (empty when it did not run) and the snapshot a completed sync made.
    pub hook_kind: String,
    pub hook_status: String,
    pub rsync_exit: String,
    pub hook_snapshot: String,
    /// `--log-file=…` for this sync's rsync, or empty (see `Var::RsyncLog`).
    pub rsync_log: String,
    /// Mount points found for the plan's pathless mount-managed volumes.
    pub mount_points: Vec<Option<String>>,
}

impl Values {
    pub fn get(&self, var: Var) -> String {
        match var {
            Var::DryRunMode => if self.dry_run { "1" } else { "0" }.into(),
            Var::SnapshotCandidate => self.candidate.clone(),
            Var::Snapshot => self.snapshot.clone(),
            Var::LinkDest => self.link_dest.clone(),
            Var::ControlDir => self.control_dir.clone(),
            Var::LockOwner => self.lock_owner.clone(),
            Var::StaleLock => self.stale_lock.clone(),
            // Scripts only: `nbkp run` never writes paths relative to a script.
            Var::ScriptDir => ".".into(),
            Var::HookKind => self.hook_kind.clone(),
            Var::HookStatus => self.hook_status.clone(),
            Var::RsyncExit => self.rsync_exit.clone(),
            Var::HookSnapshot => self.hook_snapshot.clone(),
            Var::RsyncLog => self.rsync_log.clone(),
            Var::MountPoint(n) => self
                .mount_points
                .get(n)
                .cloned()
                .flatten()
                .unwrap_or_else(|| crate::plan::mount::NOT_MOUNTED.into()),
        }
    }
}

impl Values {
    /// `NBKP_MP_<n>=<path>` lines for the mount points operations and
    /// probes may refer to (a volume not mounted gets a path that cannot
    /// exist). Mount points are plain (checked when found).
    pub fn mount_assignments(&self) -> String {
        (0..self.mount_points.len())
            .map(|n| {
                let var = Var::MountPoint(n);
                format!("{}={}\n", var.shell_name(), quote(&self.get(var)))
            })
            .collect()
    }
}

/// The words one argument becomes (none, one, or the run flags).
pub fn expand(arg: &Arg, v: &Values) -> Vec<String> {
    match arg {
        Arg::Lit(s) => vec![s.to_string()],
        Arg::Template(pieces) => vec![pieces
            .iter()
            .map(|p| match p {
                Piece::Lit(s) => s.clone(),
                Piece::Var(var) => v.get(*var),
            })
            .collect()],
        Arg::Optional(var) => {
            let value = v.get(*var);
            if value.is_empty() {
                Vec::new()
            } else {
                vec![value]
            }
        }
        Arg::RunFlags => v.run_flags.clone(),
        Arg::Joined(args) => vec![join(args, v, quote)],
        Arg::RshJoined(args) => vec![join(args, v, quote_rsh)],
    }
}

fn join(args: &[Arg], v: &Values, q: fn(&str) -> String) -> String {
    args.iter()
        .flat_map(|a| expand(a, v))
        .map(|w| q(&w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A whole argv.
pub fn argv(args: &[Arg], v: &Values) -> Vec<String> {
    args.iter().flat_map(|a| expand(a, v)).collect()
}
