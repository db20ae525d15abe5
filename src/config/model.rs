//! The validated configuration: every value normalised, every reference
//! checked. Serialises (snake_case) for `nbkp config show -o json`.

use indexmap::IndexMap;
use serde::Serialize;

use super::yaml::Pos;
use crate::retention::Policy;

/// A loaded, valid config.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Config {
    pub credential_provider: CredentialProvider,
    pub credential_command: Option<Vec<String>>,
    pub ssh_endpoints: IndexMap<String, SshEndpoint>,
    pub volumes: IndexMap<String, Volume>,
    pub sync_endpoints: IndexMap<String, SyncEndpoint>,
    pub syncs: IndexMap<String, Sync>,
    /// Hooks around every sync (see `Hooks`).
    #[serde(skip_serializing_if = "Hooks::is_empty")]
    pub hooks: Hooks,
    /// Desktop notification at the end of `nbkp run` when a sync failed or
    /// is stale (`desktop-notifications`, off by default).
    pub desktop_notifications: bool,
    /// `monitoring:` (a ping URL, a metrics file); absent: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<Monitoring>,
    /// Where `credential-provider` and `credential-command` were written.
    #[serde(skip)]
    pub credential_pos: (Option<Pos>, Option<Pos>),
}

/// How a run tells the outside world it happened (see `plan/monitoring.rs`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct Monitoring {
    /// A healthchecks-style URL: `/start`, itself, `/fail`.
    pub ping_url: Option<String>,
    /// A Prometheus textfile-collector file, rewritten after each run.
    pub metrics_file: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum CredentialProvider {
    #[default]
    Keyring,
    Prompt,
    Env,
    Command,
}

impl CredentialProvider {
    pub const NAMES: [&'static str; 4] = ["keyring", "prompt", "env", "command"];

    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "keyring" => Self::Keyring,
            "prompt" => Self::Prompt,
            "env" => Self::Env,
            "command" => Self::Command,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// How to reach one host over SSH (after `extends` is resolved).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SshEndpoint {
    pub slug: String,
    pub host: String,
    pub port: u16,
    /// True when `port` was written in the config (it then beats `~/.ssh/config`).
    #[serde(skip)]
    pub port_explicit: bool,
    pub user: Option<String>,
    /// Local path of the private key, `~` expanded.
    pub key: Option<String>,
    pub connection_options: ConnectionOptions,
    /// First hop contacted first; from `proxy-jumps` or `[proxy-jump]`.
    pub proxy_jumps: Vec<Ref>,
    pub locations: Vec<String>,
    /// How many syncs may use this host at once (`max-parallel-syncs`, 1).
    #[serde(skip_serializing_if = "is_one")]
    pub max_parallel_syncs: u32,
    /// The parent this endpoint was resolved from, if any.
    pub extends: Option<String>,
    #[serde(skip)]
    pub pos: Pos,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConnectionOptions {
    pub connect_timeout: u32,
    pub compress: bool,
    pub server_alive_interval: Option<u32>,
    /// Accepted for compatibility; OpenSSH has no per-connection equivalent.
    pub allow_agent: bool,
    /// Accepted for compatibility; OpenSSH has no per-connection equivalent.
    pub look_for_keys: bool,
    /// Accepted for compatibility; no ssh(1) equivalent.
    pub banner_timeout: Option<f64>,
    /// Accepted for compatibility; no ssh(1) equivalent.
    pub auth_timeout: Option<f64>,
    /// Accepted for compatibility; no ssh(1) equivalent.
    pub channel_timeout: Option<f64>,
    pub strict_host_key_checking: bool,
    pub known_hosts_file: Option<String>,
    pub forward_agent: bool,
    /// Accepted for compatibility; no ssh(1) equivalent.
    pub disabled_algorithms: Option<IndexMap<String, Vec<String>>>,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            connect_timeout: 10,
            compress: false,
            server_alive_interval: None,
            allow_agent: true,
            look_for_keys: true,
            banner_timeout: None,
            auth_timeout: None,
            channel_timeout: None,
            strict_host_key_checking: true,
            known_hosts_file: None,
            forward_agent: false,
            disabled_algorithms: None,
        }
    }
}

/// A slug that refers to another entry, with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    pub slug: String,
    pub pos: Pos,
}

impl Serialize for Ref {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.slug)
    }
}

/// A filesystem root, here or on a remote host.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Volume {
    pub slug: String,
    #[serde(flatten)]
    pub location: VolumeLocation,
    /// Normalised; `None` only for mount-managed volumes whose mount point is
    /// discovered at run time.
    pub path: Option<String>,
    pub mount: Option<Mount>,
    #[serde(skip)]
    pub pos: Pos,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum VolumeLocation {
    Local,
    Remote {
        ssh_endpoint: Ref,
        /// Candidates for location-aware selection; empty means `[ssh_endpoint]`.
        ssh_endpoints: Vec<Ref>,
    },
    /// A module of an rsync daemon (see `RsyncDaemon`): no shell, no path.
    #[serde(rename = "rsync-daemon")]
    RsyncDaemon(RsyncDaemon),
}

/// An rsync daemon's module, reached directly (`rsync://host:port/module`)
/// or through SSH, where a single-use daemon is started for the transfer
/// (`rsync -e ssh host::module`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RsyncDaemon {
    /// The daemon's host (direct), `None` with `ssh_endpoint`.
    pub host: Option<String>,
    /// 873 unless given; direct only.
    pub port: u16,
    pub module: String,
    /// The rsync user the module's `auth users` knows.
    pub user: Option<String>,
    /// Prints the module's password (never an argument of anything).
    pub password_command: Option<Vec<String>>,
    /// Tunnel: the SSH endpoint whose login starts the daemon.
    pub ssh_endpoint: Option<Ref>,
}

impl RsyncDaemon {
    /// The default port of rsync daemons.
    pub const PORT: u16 = 873;

    /// How a person names the module: `rsync://[user@]host[:port]/module`,
    /// or `[user@]<ssh endpoint>::module` through SSH.
    pub fn shown(&self) -> String {
        let user = self
            .user
            .as_ref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        match (&self.ssh_endpoint, &self.host) {
            (Some(ep), _) => format!("{user}{}::{}", ep.slug, self.module),
            (None, Some(host)) => {
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.clone()
                };
                let port = if self.port == Self::PORT {
                    String::new()
                } else {
                    format!(":{}", self.port)
                };
                format!("rsync://{user}{host}{port}/{}", self.module)
            }
            (None, None) => format!("{user}?::{}", self.module),
        }
    }
}

impl Volume {
    pub fn is_local(&self) -> bool {
        matches!(self.location, VolumeLocation::Local)
    }

    pub fn daemon(&self) -> Option<&RsyncDaemon> {
        match &self.location {
            VolumeLocation::RsyncDaemon(d) => Some(d),
            _ => None,
        }
    }

    /// A local volume that is a removable drive: mount-managed, or where
    /// desktops mount drives. (Schedules suggest running when it is
    /// mounted; `nbkp status` says to plug it in.)
    pub fn is_removable_drive(&self) -> bool {
        const DRIVE_ROOTS: [&str; 4] = ["/media/", "/run/media/", "/mnt/", "/Volumes/"];
        self.is_local()
            && (self.mount.is_some()
                || self
                    .path
                    .as_deref()
                    .is_some_and(|p| DRIVE_ROOTS.iter().any(|r| p.starts_with(r))))
    }

    /// The remote host's primary endpoint slug, if remote.
    pub fn primary_endpoint(&self) -> Option<&str> {
        match &self.location {
            VolumeLocation::Local => None,
            VolumeLocation::RsyncDaemon(d) => d.ssh_endpoint.as_ref().map(|r| r.slug.as_str()),
            VolumeLocation::Remote { ssh_endpoint, .. } => Some(&ssh_endpoint.slug),
        }
    }

    /// Endpoints to choose from: the list when given, else the primary.
    pub fn candidates(&self) -> Vec<&Ref> {
        match &self.location {
            VolumeLocation::Local => Vec::new(),
            VolumeLocation::RsyncDaemon(d) => d.ssh_endpoint.iter().collect(),
            VolumeLocation::Remote {
                ssh_endpoint,
                ssh_endpoints,
            } => {
                if ssh_endpoints.is_empty() {
                    vec![ssh_endpoint]
                } else {
                    ssh_endpoints.iter().collect()
                }
            }
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Mount {
    pub device_uuid: String,
    pub encryption: Option<Encryption>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Encryption {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub passphrase_id: String,
}

/// A place inside a volume that syncs read from or write to.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SyncEndpoint {
    pub slug: String,
    pub volume: Ref,
    /// Without leading or trailing `/`; `None` for the volume root.
    pub subdir: Option<String>,
    /// Serialised as the config's two blocks, `btrfs_snapshots` and `hard_link_snapshots`.
    #[serde(flatten)]
    pub snapshots: SnapshotMode,
    #[serde(skip)]
    pub pos: Pos,
}

/// How a destination keeps history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotMode {
    None,
    Btrfs { retention: Policy },
    HardLink { retention: Policy },
}

impl Serialize for SnapshotMode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let block = |on: bool| {
            serde_json::json!({
                "enabled": on,
                "max_snapshots": if on { self.retention().max_snapshots } else { None },
                "retention": if on { self.retention_block() } else { serde_json::Value::Null },
            })
        };
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry(
            "btrfs_snapshots",
            &block(matches!(self, SnapshotMode::Btrfs { .. })),
        )?;
        map.serialize_entry(
            "hard_link_snapshots",
            &block(matches!(self, SnapshotMode::HardLink { .. })),
        )?;
        map.end()
    }
}

impl SnapshotMode {
    pub fn name(self) -> &'static str {
        match self {
            SnapshotMode::None => "none",
            SnapshotMode::Btrfs { .. } => "btrfs",
            SnapshotMode::HardLink { .. } => "hard-link",
        }
    }

    /// The retention policy (keep everything for `None`).
    pub fn retention(self) -> Policy {
        match self {
            SnapshotMode::None => Policy::default(),
            SnapshotMode::Btrfs { retention } | SnapshotMode::HardLink { retention } => retention,
        }
    }

    /// The `retention:` block as JSON (durations as written, e.g. `2d`), or
    /// null when there is none.
    fn retention_block(self) -> serde_json::Value {
        let p = self.retention();
        if !p.has_keep_rules() && p.max_age.is_none() {
            return serde_json::Value::Null;
        }
        let dur = |d: Option<u64>| d.map(crate::retention::calendar::format_duration);
        serde_json::json!({
            "keep_last": p.keep_last,
            "keep_within": dur(p.keep_within),
            "keep_hourly": p.keep_hourly,
            "keep_daily": p.keep_daily,
            "keep_weekly": p.keep_weekly,
            "keep_monthly": p.keep_monthly,
            "keep_yearly": p.keep_yearly,
            "max_age": dur(p.max_age),
        })
    }

    pub fn is_enabled(self) -> bool {
        self != SnapshotMode::None
    }
}

/// One one-way transfer.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Sync {
    pub slug: String,
    pub source: Ref,
    pub destination: Ref,
    pub enabled: bool,
    pub rsync_options: RsyncOptions,
    /// Normalised rsync filter rules, in order.
    pub filters: Vec<String>,
    /// `~` expanded.
    pub filter_file: Option<String>,
    /// This sync's own hooks, run inside the global ones.
    #[serde(skip_serializing_if = "Hooks::is_empty")]
    pub hooks: Hooks,
    /// Lower CPU/IO priority for the transfer and pruning (`priority`).
    pub priority: Option<Priority>,
    /// Seconds without a completed run after which `nbkp status` flags the
    /// sync (`stale-after`, default 7 days); `None`: never.
    pub stale_after_seconds: Option<u64>,
    #[serde(skip)]
    pub pos: Pos,
}

/// Commands run on this machine around a sync, each an argv (never
/// through a shell); `~` in a program is expanded.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Hooks {
    pub before: Vec<Vec<String>>,
    pub after: Vec<Vec<String>>,
    pub on_failure: Vec<Vec<String>>,
}

impl Hooks {
    pub fn is_empty(&self) -> bool {
        self.before.is_empty() && self.after.is_empty() && self.on_failure.is_empty()
    }
}

/// The default `stale-after`: a week.
pub const DEFAULT_STALE_AFTER_SECONDS: u64 = 7 * 86_400;

/// `priority:` of a sync: `nice` (0–19) and an IO class for `ionice`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Default)]
pub struct Priority {
    pub nice: Option<u8>,
    pub ionice_class: Option<IoniceClass>,
    /// 0 (highest) to 7, for `best-effort` only.
    pub ionice_level: Option<u8>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum IoniceClass {
    /// Only when no other process wants the disk (`ionice -c 3`).
    Idle,
    /// The normal class, at a level (`ionice -c 2 -n LEVEL`).
    BestEffort,
}

impl IoniceClass {
    pub const NAMES: [&'static str; 2] = ["idle", "best-effort"];

    /// `ionice -c` number.
    pub fn number(self) -> u8 {
        match self {
            IoniceClass::Idle => 3,
            IoniceClass::BestEffort => 2,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct RsyncOptions {
    pub compress: bool,
    pub checksum: bool,
    /// Replaces the default options (never the sentinel filters).
    pub default_options_override: Option<Vec<String>>,
    pub extra_options: Vec<String>,
}

impl Config {
    /// The full path of an endpoint, when its volume has a known path.
    pub fn endpoint_path(&self, endpoint: &SyncEndpoint) -> Option<String> {
        let volume = self.volumes.get(&endpoint.volume.slug)?;
        let base = volume.path.as_deref()?;
        Some(join(base, endpoint.subdir.as_deref()))
    }
}

/// `base` + `/` + `sub`, without doubling the slash at the root.
pub fn join(base: &str, sub: Option<&str>) -> String {
    let mut path = String::with_capacity(base.len() + 1 + sub.map_or(0, str::len));
    path.push_str(base);
    if let Some(sub) = sub {
        if !base.ends_with('/') {
            path.push('/');
        }
        path.push_str(sub);
    }
    path
}

fn is_one(n: &u32) -> bool {
    *n == 1
}
