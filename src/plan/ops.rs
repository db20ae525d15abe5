//! The runtime library's operations as the plan names them: one variant per
//! lib.sh function, with named fields. [`Op::args`] is the one place the
//! fields become the function's positional arguments; the script renders
//! them (`words::op_text`), `nbkp run` sends them to a host's shell or
//! performs them natively (`exec::local_ops`) from the fields.

use serde::Serialize;

use super::Arg;

/// How a destination keeps its history, in the runtime's words.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// A plain mirror.
    None,
    Btrfs,
    HardLink,
}

impl Mode {
    pub fn word(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Btrfs => "btrfs",
            Mode::HardLink => "hard-link",
        }
    }
}

/// What `nbkp init` may write into a volume's root: `0` no drive is
/// expected, `1` a drive must be mounted there, `2` warn only.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RootRule {
    Anywhere,
    MountPointOnly,
    WarnIfNotMounted,
}

impl RootRule {
    fn word(self) -> &'static str {
        match self {
            RootRule::Anywhere => "0",
            RootRule::MountPointOnly => "1",
            RootRule::WarnIfNotMounted => "2",
        }
    }
}

/// One operation of the runtime library, with its arguments.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Op {
    /// Before rsync: the lock, unfinished snapshots removed, the new
    /// snapshot's directory (`nbkp_begin`).
    Begin {
        mode: Mode,
        dry_run: Arg,
        endpoint: Arg,
        candidate: Arg,
        owner: Arg,
        stale_lock: Arg,
    },
    /// After a successful rsync: the snapshot complete, `latest` moved,
    /// pruning by `rules` (`nbkp_commit`).
    Commit {
        mode: Mode,
        dry_run: Arg,
        endpoint: Arg,
        snapshot: Arg,
        /// The clock's time (the candidate name): the snapshot's name
        /// differs when the clock was behind the newest snapshot.
        now: Arg,
        owner: Arg,
        /// `nbkp_retain`'s rules, and `prio=` for pruning at a priority.
        rules: Vec<String>,
    },
    /// After a failed rsync: the unfinished snapshot removed, the lock
    /// released (`nbkp_abort`).
    Abort {
        mode: Mode,
        dry_run: Arg,
        endpoint: Arg,
        snapshot: Arg,
        owner: Arg,
    },
    /// A mirror's prepare: only the lock (`nbkp_lock_for`).
    Lock {
        dry_run: Arg,
        endpoint: Arg,
        owner: Arg,
        stale_lock: Arg,
    },
    /// A mirror's end, whether rsync succeeded or not: the lock released
    /// (`nbkp_unlock_for`).
    Unlock {
        dry_run: Arg,
        endpoint: Arg,
        owner: Arg,
    },
    /// `then`, only where every sentinel is (`nbkp_if_there`).
    IfThere { sentinels: Vec<Arg>, then: Box<Op> },
    /// Unlock and mount a drive (`nbkp_mount`); `key` is `-` (none) or
    /// `stdin` (the passphrase follows as a here-document).
    Mount {
        uuid: String,
        encrypted: bool,
        key: &'static str,
        mounting: bool,
    },
    /// Unmount and lock it again (`nbkp_umount`).
    Umount { uuid: String, encrypted: bool },
    /// An endpoint's snapshots and `latest` (`nbkp_list`).
    List { volume: Arg, endpoint: Arg },
    /// Remove the snapshots `nbkp snapshots prune` decided on, if `latest`
    /// is still `latest` (`nbkp_prune_named`).
    PruneNamed {
        mode: &'static str,
        volume: Arg,
        endpoint: Arg,
        owner: Arg,
        stale_lock: Arg,
        latest: String,
        names: Vec<String>,
    },
    /// `nbkp init` of a volume's sentinel (`nbkp_init_volume`).
    InitVolume {
        dry_run: Arg,
        volume: Arg,
        root: RootRule,
    },
    /// `nbkp init` of an endpoint (`nbkp_init_endpoint`).
    InitEndpoint {
        dry_run: Arg,
        volume: Arg,
        endpoint: Arg,
        root: RootRule,
        source: bool,
        destination: bool,
        mode: &'static str,
    },
}

fn flag(b: bool) -> Arg {
    Arg::lit(if b { "1" } else { "0" })
}

impl Op {
    /// The lib.sh function.
    pub fn function(&self) -> &'static str {
        match self {
            Op::Begin { .. } => "nbkp_begin",
            Op::Commit { .. } => "nbkp_commit",
            Op::Abort { .. } => "nbkp_abort",
            Op::Lock { .. } => "nbkp_lock_for",
            Op::Unlock { .. } => "nbkp_unlock_for",
            Op::IfThere { .. } => "nbkp_if_there",
            Op::Mount { .. } => "nbkp_mount",
            Op::Umount { .. } => "nbkp_umount",
            Op::List { .. } => "nbkp_list",
            Op::PruneNamed { .. } => "nbkp_prune_named",
            Op::InitVolume { .. } => "nbkp_init_volume",
            Op::InitEndpoint { .. } => "nbkp_init_endpoint",
        }
    }

    /// The failure kind reported when the operation fails (the Python
    /// nbkp's names: `mkdir`, `snapshot`, `symlink`, …).
    pub fn failure(&self) -> &'static str {
        match self {
            Op::Begin { .. } | Op::Lock { .. } => "mkdir",
            Op::Unlock { .. } => "symlink",
            Op::Commit {
                mode: Mode::Btrfs, ..
            } => "snapshot",
            Op::Commit { .. } => "symlink",
            Op::Abort { .. } => "snapshot-dir-cleanup",
            Op::IfThere { then, .. } => then.failure(),
            Op::Mount { .. } => "mount",
            Op::Umount { .. } => "umount",
            Op::List { .. } => "list",
            Op::PruneNamed { .. } => "prune",
            Op::InitVolume { .. } | Op::InitEndpoint { .. } => "init",
        }
    }

    /// The function's arguments, in lib.sh's order: the one place the
    /// fields become positions.
    pub fn args(&self) -> Vec<Arg> {
        match self {
            Op::Begin {
                mode,
                dry_run,
                endpoint,
                candidate,
                owner,
                stale_lock,
            } => vec![
                Arg::lit(mode.word()),
                dry_run.clone(),
                endpoint.clone(),
                candidate.clone(),
                owner.clone(),
                stale_lock.clone(),
            ],
            Op::Commit {
                mode,
                dry_run,
                endpoint,
                snapshot,
                now,
                owner,
                rules,
            } => {
                let mut a = vec![
                    Arg::lit(mode.word()),
                    dry_run.clone(),
                    endpoint.clone(),
                    snapshot.clone(),
                    now.clone(),
                    owner.clone(),
                ];
                a.extend(rules.iter().map(|r| Arg::lit(r.clone())));
                a
            }
            Op::Abort {
                mode,
                dry_run,
                endpoint,
                snapshot,
                owner,
            } => vec![
                Arg::lit(mode.word()),
                dry_run.clone(),
                endpoint.clone(),
                snapshot.clone(),
                owner.clone(),
            ],
            Op::Lock {
                dry_run,
                endpoint,
                owner,
                stale_lock,
            } => vec![
                dry_run.clone(),
                endpoint.clone(),
                owner.clone(),
                stale_lock.clone(),
            ],
            Op::Unlock {
                dry_run,
                endpoint,
                owner,
            } => vec![dry_run.clone(), endpoint.clone(), owner.clone()],
            Op::IfThere { sentinels, then } => {
                let mut a = sentinels.clone();
                a.push(Arg::lit("--"));
                a.push(Arg::lit(then.function()));
                a.extend(then.args());
                a
            }
            Op::Mount {
                uuid,
                encrypted,
                key,
                mounting,
            } => vec![
                Arg::lit(uuid.clone()),
                flag(*encrypted),
                Arg::lit(*key),
                flag(*mounting),
            ],
            Op::Umount { uuid, encrypted } => vec![Arg::lit(uuid.clone()), flag(*encrypted)],
            Op::List { volume, endpoint } => vec![volume.clone(), endpoint.clone()],
            Op::PruneNamed {
                mode,
                volume,
                endpoint,
                owner,
                stale_lock,
                latest,
                names,
            } => {
                let mut a = vec![
                    Arg::lit(*mode),
                    volume.clone(),
                    endpoint.clone(),
                    owner.clone(),
                    stale_lock.clone(),
                    Arg::lit(latest.clone()),
                ];
                a.extend(names.iter().map(|n| Arg::lit(n.clone())));
                a
            }
            Op::InitVolume {
                dry_run,
                volume,
                root,
            } => vec![dry_run.clone(), volume.clone(), Arg::lit(root.word())],
            Op::InitEndpoint {
                dry_run,
                volume,
                endpoint,
                root,
                source,
                destination,
                mode,
            } => vec![
                dry_run.clone(),
                volume.clone(),
                endpoint.clone(),
                Arg::lit(root.word()),
                flag(*source),
                flag(*destination),
                Arg::lit(*mode),
            ],
        }
    }
}

/// A call to one of the runtime library's operations (`templates/lib.sh`),
/// made on `host`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OpCall {
    pub host: usize,
    #[serde(flatten)]
    pub op: Op,
}

impl OpCall {
    pub fn failure(&self) -> &'static str {
        self.op.failure()
    }
}
