//! The plan: every decision about what a run does, made once, as pure data.
//!
//! `lower` turns a config (plus the endpoint choices made for this run) into a
//! [`Plan`]; `nbkp sh` renders it into a POSIX script and `nbkp run` performs
//! it. Neither back-end decides anything: which hosts, which probes, which
//! checks and what they mean, which rsync arguments in which order, what
//! happens to snapshots — all of it is here.
//!
//! Values that only exist at run time (the new snapshot's name, whether this
//! is a dry run, the directory of the SSH control sockets) appear as [`Var`]s
//! inside [`Arg`]s; each back-end fills them in the same way.

pub mod args;
pub mod channel;
pub mod conditions;
pub mod daemon;
pub mod hooks;
pub mod lanes;
pub mod lower;
pub mod monitoring;
pub mod mount;
pub mod ops;
pub mod rsync;
pub mod select;
pub mod ssh;
pub mod words;

use crate::retention::Policy;
use serde::Serialize;

pub use args::{Arg, Piece, Var};
pub use lower::{lower, LowerOptions};
pub use ops::{Mode, Op, OpCall};

/// Everything a run does, in order.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Plan {
    /// The config file the plan was made from, as given.
    pub config_path: String,
    /// Hosts that run commands; index 0 is always this machine.
    pub hosts: Vec<Host>,
    /// Check layers shared by several syncs.
    pub check_groups: Vec<CheckGroup>,
    /// Syncs in execution order (disabled syncs are not here).
    pub syncs: Vec<SyncPlan>,
    /// Disabled syncs, for information: they never run and never block others.
    pub disabled: Vec<String>,
    /// Volumes excluded by `--exclude-location`.
    pub excluded_volumes: Vec<String>,
    /// Syncs that cannot run in this plan: skipped as inactive.
    pub excluded_syncs: Vec<ExcludedSync>,
    /// Syncs with a remote side (an SSH host or an rsync daemon): what
    /// `--not-metered` skips on a metered connection (the script decides
    /// when it runs; `nbkp run` leaves them out while lowering).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remote_syncs: Vec<String>,
    /// Pings and the metrics file (`monitoring:` in the config).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<monitoring::MonitoringPlan>,
    /// Whether the script must compute `NBKP_SCRIPT_DIR` (relative paths).
    pub uses_script_dir: bool,
    /// Every endpoint the syncs read or write, where it is: what
    /// `nbkp snapshots` lists and prunes and `nbkp init` prepares.
    pub sites: Vec<Site>,
    /// `nbkp init`'s operations, in order: each volume, then each endpoint.
    pub init: Vec<OpCall>,
    /// The sync whose channel opens before the first sync starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_channel: Option<usize>,
    /// Mount-managed volumes the run mounts first and unmounts last, in
    /// config order (unmounted in reverse).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<mount::MountPlan>,
    /// Where their passphrases come from (when any is encrypted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<mount::CredentialPlan>,
    /// Syncs that may run at the same time as other lanes' (see `lanes`);
    /// empty when there is at most one lane.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lanes: Vec<lanes::Lane>,
    /// How many syncs run at once unless `--jobs` says otherwise.
    #[serde(skip_serializing_if = "is_one")]
    pub default_jobs: usize,
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

/// A sync left out of the plan, and why.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ExcludedSync {
    pub slug: String,
    pub reason: String,
    pub fix: String,
}

/// Where commands run: this machine, or a host reached over SSH.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Host {
    /// `localhost` or the SSH endpoint's slug.
    pub name: String,
    /// Short identifier used in variable names and socket names (`h0`, `h1`, …).
    pub id: String,
    /// How to reach it; `None` for this machine.
    pub ssh: Option<ssh::SshCommand>,
    /// Probes whose answers decide which syncs may run, in one round trip.
    pub probes: Vec<Probe>,
    /// A remote host the run keeps one `sh` open on, so each operation is
    /// one round trip: the file descriptors (to it, from it) the script
    /// uses. `nbkp run` keeps such a shell for every host.
    pub session_fds: Option<(u8, u8)>,
    /// For a remote host: `ssh … HOST CMD`, a session opened ahead for a
    /// sync's rsync (see `channel`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_session: Option<Vec<Arg>>,
    /// For a remote host: how many seconds its probes may take, name
    /// resolution and connection included, before both back-ends give up
    /// on it (its `connect-timeout`, its proxy hops' and a margin; see
    /// [`ssh::probe_bound`]). ssh's own `ConnectTimeout` does not cover
    /// name resolution, so the back-ends enforce this themselves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_bound: Option<u32>,
}

impl Plan {
    /// Syncs needing no remote host are checked and run first, while the
    /// remote hosts answer: when the plan has both kinds (both back-ends
    /// follow this).
    pub fn phased(&self) -> bool {
        self.syncs.iter().any(SyncPlan::early) && self.syncs.iter().any(|s| !s.early())
    }
}

impl SyncPlan {
    /// Checked and run before the remote hosts answer (unless the
    /// strictness is `ignore-none`, which wants every answer first).
    pub fn early(&self) -> bool {
        self.waits_for.is_empty()
    }
}

/// One question asked of a host during preflight. Each answer is a short
/// token (`1`, `0`, `missing`, …) printed as `<index> <token>` by the probe
/// script, so answers can never inject anything into the caller.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Hash)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Probe {
    /// Always `1`: proves the host answered at all.
    Reachable,
    /// `1` when the path is a regular file (sentinels).
    File { path: Arg },
    /// `1` when the path is a writable directory.
    WritableDir { path: Arg },
    /// `1` directory and writable, `ro` directory but not writable, `0` absent.
    SnapshotsDir { path: Arg },
    /// `1` when the command is on the host's PATH.
    Command { name: String },
    /// `ok`, `missing`, `openrsync`, `old` (< 3.0.0) or `unknown`.
    RsyncVersion,
    /// `btrfs`, another file system type, or `unknown` when `stat` fails.
    FsType { path: Arg },
    /// `1` when the mount holding the path has the option.
    MountOption { path: Arg, option: String },
    /// `1` when the path is the root of a btrfs subvolume (inode 256).
    Subvolume { path: Arg },
    /// The `latest` symlink of an endpoint: `snapshot` (points at
    /// `snapshots/<valid name>` that exists), `devnull`, `missing` (absent or
    /// not a symlink) or `invalid`.
    Latest { endpoint: Arg },
    /// The newest snapshot name of an endpoint (names sort in time order),
    /// or `-` when it has none: `preflight` compares it with the clock.
    NewestSnapshot { endpoint: Arg },
    /// Asked here of an rsync daemon with `rsync --list-only`: `1` a regular
    /// file, `0` absent, `unreachable`, `denied` (unknown module, refused
    /// login), `nopassword` (the password command failed) or `unknown`.
    DaemonFile {
        target: Arg,
        rsh: Option<Arg>,
        password: daemon::Password,
    },
    /// A mount-managed volume's drive: `absent`, `locked`, `unmounted`,
    /// `mounted`, or `elsewhere` (mounted, but not at `path`).
    Mount {
        uuid: String,
        encrypted: bool,
        path: Option<Arg>,
    },
}

/// A reference to the answer of probe `index` on host `host` (indexes into
/// [`Plan::hosts`]).
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Hash)]
pub struct ProbeRef {
    pub host: usize,
    pub index: usize,
}

/// What failing a check means for the sync.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// An expected condition (a drive not plugged in): skipped quietly.
    Inactive,
    /// Only in a dry run: the upstream sync would have filled the source.
    Pending,
    /// Something needs fixing (a missing tool, a broken `latest`).
    Broken,
}

impl Verdict {
    /// The script's preflight return code for this verdict.
    pub fn code(self) -> u8 {
        match self {
            Verdict::Broken => 1,
            Verdict::Inactive => 2,
            Verdict::Pending => 3,
        }
    }
}

/// One check of a sync's preflight: an answer in `pass` passes; otherwise
/// the first `fail` listing the answer says what it means, and any other
/// answer (including none, when the host did not answer) means `otherwise`
/// (`None`: it passes).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Hash)]
pub struct Check {
    pub probe: ProbeRef,
    /// Answers are the probes' fixed tokens, so they are never copied.
    pub pass: &'static [&'static str],
    pub fail: Vec<Failure>,
    pub otherwise: Option<Failure>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, Hash)]
pub struct Failure {
    /// Answers this failure applies to (empty for `otherwise`).
    pub answers: &'static [&'static str],
    pub verdict: Verdict,
    pub message: String,
    /// Applies only in a dry run; in a real run the answer passes (a source
    /// whose `latest → /dev/null` is filled by its upstream earlier in the run).
    pub dry_run_only: bool,
    /// How to fix it: shown by `nbkp preflight troubleshoot`.
    pub fix: Option<String>,
}

impl Check {
    /// What `answer` (None: no answer) means, for this kind of run.
    pub fn evaluate(&self, answer: Option<&str>, dry_run: bool) -> Option<&Failure> {
        if let Some(a) = answer {
            if self.pass.contains(&a) {
                return None;
            }
            if let Some(f) = self.fail.iter().find(|f| f.answers.contains(&a)) {
                return (dry_run || !f.dry_run_only).then_some(f);
            }
        }
        self.otherwise.as_ref()
    }
}

/// Checks in layers: a layer is evaluated only when every earlier layer
/// passed, so a missing drive is reported once, not as ten consequences.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Hash)]
pub struct CheckLayer {
    /// `host`, `tools`, `volume`, `sentinel` or `endpoint`.
    pub layer: &'static str,
    pub checks: Vec<Check>,
}

/// Layers several syncs share (their hosts' reachability and tools),
/// written once; each sync that lists the group evaluates it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CheckGroup {
    pub id: usize,
    pub layers: Vec<CheckLayer>,
}

/// One step of a sync's preflight, in order.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub enum CheckStep {
    /// The layers of [`Plan::check_groups`]`[id]`.
    Group(usize),
    Layer(CheckLayer),
}

/// A sync endpoint of the plan, resolved to a host and a path.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Site {
    pub slug: String,
    pub host: usize,
    pub volume: String,
    pub volume_path: Arg,
    pub path: Arg,
    /// `/mnt/usb/photos` or `nas:/srv/photos`.
    pub shown: String,
    /// Some sync reads it / writes it.
    pub source: bool,
    pub destination: bool,
    /// `none`, `btrfs` or `hard-link`.
    pub snapshots: &'static str,
    pub retention: Policy,
    /// Its volume lives where drives are mounted (`/mnt`, `/media`,
    /// `/run/media`, `/Volumes`): `init` writes there only on a mount point.
    pub expect_mount: bool,
}

impl Site {
    /// Lists the endpoint's snapshots and `latest` (`nbkp_list`).
    pub fn list_call(&self) -> OpCall {
        OpCall {
            host: self.host,
            op: Op::List {
                volume: self.volume_path.clone(),
                endpoint: self.path.clone(),
            },
        }
    }

    /// Removes `names` under the endpoint's lock, if `latest` still names
    /// `latest` (`-`: none) — what `nbkp snapshots prune` decided.
    pub fn prune_call(&self, latest: &str, names: &[String]) -> OpCall {
        let var = |v: Var| Arg::template(vec![Piece::Var(v)]);
        OpCall {
            host: self.host,
            op: Op::PruneNamed {
                mode: self.snapshots,
                volume: self.volume_path.clone(),
                endpoint: self.path.clone(),
                owner: var(Var::LockOwner),
                stale_lock: var(Var::StaleLock),
                latest: latest.to_owned(),
                names: names.to_vec(),
            },
        }
    }
}

/// How the destination keeps history.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum SnapshotPlan {
    None,
    /// rsync into `staging/`, then a read-only snapshot in `snapshots/`.
    Btrfs {
        endpoint: Arg,
        retention: Policy,
    },
    /// rsync into a new `snapshots/<name>/` with `--link-dest` to the latest.
    HardLink {
        endpoint: Arg,
        retention: Policy,
    },
}

/// A sync's place in the run, decided once while lowering: what it waits
/// for, and what may overlap or travel with it. Both back-ends follow it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Schedule {
    /// The sync that writes this sync's source in this run, if any.
    pub upstream: Option<String>,
    /// A later sync whose channel opens when this sync starts, so that it
    /// is ready when that sync's rsync starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opens_channel_of: Option<usize>,
    /// The next sync, when the two may overlap: its `prepare` may run
    /// while this sync's rsync runs, and this sync's `commit` while its
    /// rsync runs (instead of each waiting for the other). It does not read
    /// what this sync writes, writes neither of this sync's endpoints, and
    /// neither sync has hooks that would have to run in between.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlaps_next: Option<usize>,
    /// The next sync, when its `prepare` may travel with this sync's
    /// `commit`: one message pair and one round trip on their host's
    /// long-lived shell instead of two. For the script, whose syncs run one
    /// after the other (`nbkp run` overlaps both with rsync instead, see
    /// `overlaps_next`). The two may overlap, share that remote host, and
    /// the next sync has no upstream, so whether it runs is known before
    /// this sync commits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_carries_prepare_of: Option<usize>,
    /// The previous sync's commit carries this sync's prepare.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub prepare_carried: bool,
    /// Its lane (an index into `Plan::lanes`), when there are several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lane: Option<usize>,
    /// Its local volumes, whose devices may join lanes at run time (when
    /// there are several lanes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub devices: Option<lanes::LocalDevices>,
}

/// What one sync does, in order.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SyncPlan {
    pub slug: String,
    /// Identifier-safe form of the slug, for shell function names.
    pub ident: String,
    pub source: String,
    pub destination: String,
    /// What may run before what, and what shares a round trip.
    #[serde(flatten)]
    pub schedule: Schedule,
    /// The remote hosts whose answers this sync's checks (or its
    /// upstream's) need. A sync that needs none is checked and run while
    /// the remote hosts' probes are still out (see [`SyncPlan::early`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waits_for: Vec<usize>,
    pub checks: Vec<CheckStep>,
    pub snapshots: SnapshotPlan,
    /// Before rsync: prepare the destination (orphan cleanup, the new
    /// snapshot directory). Prints `snapshot <name>` and `latest <name>`.
    pub prepare: Option<OpCall>,
    /// The transfer itself.
    pub rsync: Vec<Arg>,
    /// For a push or pull: the session opened ahead that rsync can use
    /// instead of a new one (then with `channel.rsync` as its command).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<channel::Channel>,
    /// For the first sync only: its prepare, run by the library's
    /// `nbkp_if_there` only where the destination's sentinels are, sent
    /// with its host's probes (one round trip fewer before the first
    /// rsync). If the checks then keep the sync from running, `abort`
    /// undoes it. Only for a remote destination on a host with a
    /// long-lived shell, with no hooks, upstream or drive to mount.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prepare_with_probes: Option<OpCall>,
    /// After a successful rsync: snapshot, move `latest`, prune.
    pub commit: Option<OpCall>,
    /// After a failed rsync: remove what `prepare` created.
    pub abort: Option<OpCall>,
    /// One line for logs: `laptop-photos → nas-photos (hard-link)`.
    pub summary: String,
    /// Snapshot names: `colons` (`…T14:30:00.123Z`), or `hyphens`
    /// (`…T14-30-00.123Z`) for local destinations on macOS.
    pub snapshot_format: &'static str,
    /// `preflight` only: the destination's newest snapshot, which a clock
    /// behind it is warned about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest_snapshot: Option<ProbeRef>,
    /// Commands run on this machine around the sync (see `hooks`).
    #[serde(skip_serializing_if = "hooks::SyncHooks::is_empty")]
    pub hooks: hooks::SyncHooks,
    /// Where rsync gets an rsync daemon's password, when one side is a daemon.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rsync_password: Option<daemon::Password>,
}
