//! Config + endpoint choices → [`Plan`]. A pure function: no clock, no
//! environment, no file system; the same inputs give the same plan.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use super::args::{Arg, Piece, Var};
use super::ops::RootRule;
use super::rsync::{self, Direction};
use super::select::{Selection, VolumeRoute};
use super::ssh::SshCommand;
use super::*;
use crate::config::{join, Config, SnapshotMode, SyncEndpoint, Volume};
use crate::ordering;
use crate::retention::Policy;
use crate::shell::{quote, quote_into, quote_pair_into};

/// Choices that shape the plan beyond the config itself.
/// Where a hard-link snapshot is written until it is complete (lib.sh's
/// `.nbkp-partial-<name>`, renamed by `nbkp_commit`).
pub const UNFINISHED_DIR: &str = "/snapshots/.nbkp-partial-";

#[derive(Debug, Clone, Default)]
pub struct LowerOptions {
    /// Write local source paths relative to the script (`--relative-src`).
    pub relative_src: bool,
    /// Write local destination paths relative to the script (`--relative-dst`).
    pub relative_dst: bool,
    /// Absolute directory the script will live in (for the two options above).
    pub script_dir: Option<PathBuf>,
    /// Only these syncs (`-s`); all enabled syncs when empty.
    pub only: Vec<String>,
    /// The plan runs on macOS: local snapshot names use `-` in the time.
    pub darwin: bool,
    /// Keep every snapshot (`--no-prune`): operations get no limit.
    pub no_prune: bool,
    /// Leave mount-managed volumes as they are (`--no-mount`): only look.
    pub no_mount: bool,
    /// Leave them mounted after the run (`--no-umount`).
    pub no_umount: bool,
    /// `nbkp disks`: no syncs, only these mount-managed volumes (all when
    /// empty).
    pub mounts_only: Option<Vec<String>>,
    /// `nbkp init --allow-unmounted`: write into a volume under /mnt (etc.)
    /// even when it is not a mount point.
    pub allow_unmounted: bool,
    /// `nbkp preflight`: probe each snapshot destination's newest snapshot,
    /// to warn about a clock behind it.
    pub clock_check: bool,
    /// `nbkp run --not-metered` on a metered connection: syncs with a
    /// remote side (an SSH host or an rsync daemon) are left out, as
    /// inactive (see `Plan::remote_syncs`).
    pub skip_remote: bool,
}

/// Why a config cannot become a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct LowerError {
    pub message: String,
}

impl std::fmt::Display for LowerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Why a sync's volume is left out of the plan.
struct Exclusion {
    volume: String,
    reason: String,
    fix: String,
}

/// One side of a sync, resolved.
struct Side {
    host: usize,
    /// The host's SSH command, when remote.
    remote: bool,
    volume_path: Arg,
    endpoint_path: Arg,
    /// Shown in messages: `/mnt/usb/photos` or `nas:/srv/photos`.
    shown: String,
    /// For hooks: the endpoint's SSH endpoint name (empty here) and path as written.
    place: (String, Arg),
    /// An rsync daemon's module (then `host` is this machine, which runs rsync).
    daemon: Option<daemon::DaemonSide>,
    /// Index into the plan's mounts, for a mount-managed volume.
    mount: Option<usize>,
}

/// What a sync's shared checks depend on: each volume with the host it is
/// reached on, and whether the destination takes btrfs snapshots. It
/// borrows the config's names (it is made for every sync).
#[derive(PartialEq, Eq, Hash)]
struct SharedKey<'c> {
    source: (&'c str, usize),
    destination: (&'c str, usize),
    btrfs: bool,
}

struct Lowering<'c> {
    config: &'c Config,
    selection: &'c Selection,
    options: &'c LowerOptions,
    hosts: Vec<Host>,
    /// Each host's probes by their hash → the index of the first probe
    /// with that hash, so a shared probe is asked once. Keyed by the hash,
    /// not a copy of the probe: most of a large config's probes are asked
    /// once, and the plan holds them already.
    probe_index: Vec<HashMap<Probe, usize>>,
    groups: Vec<CheckGroup>,
    group_index: HashMap<Vec<CheckLayer>, usize>,
    /// Shared checks already built, by the pair of volumes (see `SharedKey`).
    shared_index: HashMap<SharedKey<'c>, usize>,
    sites: Vec<Site>,
    /// Endpoint slug → its index in `sites`.
    site_index: HashMap<&'c str, usize>,
    mounts: Vec<mount::MountPlan>,
    credentials: mount::CredentialPlan,
    /// No sync lowered yet: the next one is the first (see
    /// `SyncPlan::prepare_with_probes`).
    first_pending: bool,
}

pub fn lower(
    config: &Config,
    config_path: &str,
    selection: &Selection,
    options: &LowerOptions,
) -> Result<Plan, LowerError> {
    for slug in &options.only {
        if !config.syncs.contains_key(slug) {
            let known: Vec<&str> = config.syncs.keys().map(String::as_str).collect();
            return Err(LowerError {
                message: format!("unknown sync '{slug}'. Known syncs: {}", known.join(", ")),
            });
        }
    }
    let wanted = |slug: &str| options.only.is_empty() || options.only.iter().any(|s| s == slug);
    let enabled: Vec<&str> = config
        .syncs
        .values()
        .filter(|s| s.enabled && wanted(&s.slug))
        .map(|s| s.slug.as_str())
        .collect();
    let disabled = config
        .syncs
        .values()
        .filter(|s| !s.enabled && wanted(&s.slug))
        .map(|s| s.slug.clone())
        .collect();
    let order = ordering::topological(config, &enabled).map_err(|cycle| LowerError {
        message: format!("Cyclic sync dependency detected: {}", cycle.join(" -> ")),
    })?;
    let upstreams = ordering::predecessors(config, &enabled);

    let mut lw = Lowering {
        config,
        selection,
        options,
        hosts: vec![Host {
            name: "localhost".into(),
            id: "h0".into(),
            ssh: None,
            probes: Vec::new(),
            session_fds: None,
            waiting_session: None,
            probe_bound: None,
        }],
        probe_index: vec![HashMap::default()],
        groups: Vec::new(),
        group_index: HashMap::default(),
        shared_index: HashMap::default(),
        sites: Vec::new(),
        site_index: HashMap::default(),
        mounts: Vec::new(),
        credentials: mount::CredentialPlan::from_config(config),
        first_pending: true,
    };
    let mut syncs = Vec::with_capacity(order.len());
    let mut excluded_volumes = Vec::new();
    let mut excluded_syncs = Vec::new();
    let order = if options.mounts_only.is_some() {
        Vec::new()
    } else {
        order
    };
    for slug in order {
        let upstream = upstreams.get(slug).copied().flatten().map(str::to_string);
        match lw.sync(slug, upstream)? {
            Ok(plan) => syncs.push(plan),
            Err(why) => {
                excluded_syncs.push(ExcludedSync {
                    slug: slug.to_string(),
                    reason: why.reason,
                    fix: why.fix,
                });
                if !excluded_volumes.contains(&why.volume) {
                    excluded_volumes.push(why.volume);
                }
            }
        }
    }
    if let Some(names) = &options.mounts_only {
        lw.all_mounts(names)?;
    }
    waits_for(&lw.hosts, &lw.groups, &mut syncs);
    // Each channel opens one sync ahead: while the previous sync runs (the
    // first once its host's connection is up, during the probes). One at a time stays well under
    // sshd's default of 10 sessions per connection.
    let first_channel = syncs.first().and_then(|s| s.channel.as_ref()).map(|_| 0);
    for i in 1..syncs.len() {
        if syncs[i].channel.is_some() {
            syncs[i - 1].schedule.opens_channel_of = Some(i);
        }
        // Early syncs run in a phase of their own (see `SyncPlan::early`):
        // only syncs of one phase overlap.
        if may_overlap(&syncs[i - 1], &syncs[i]) && syncs[i - 1].early() == syncs[i].early() {
            syncs[i - 1].schedule.overlaps_next = Some(i);
            if may_carry_prepare(&lw.hosts, &syncs[i - 1], &syncs[i]) {
                syncs[i - 1].schedule.commit_carries_prepare_of = Some(i);
                syncs[i].schedule.prepare_carried = true;
            }
        }
    }
    // The early prepare needs the host's long-lived shell, and no drive to
    // mount first.
    if let Some(first) = syncs.first_mut() {
        let keeps_shell = |call: &OpCall| lw.hosts[call.host].session_fds.is_some();
        if !lw.mounts.is_empty() || !first.prepare_with_probes.as_ref().is_some_and(keeps_shell) {
            first.prepare_with_probes = None;
        }
        first.schedule.prepare_carried |= first.prepare_with_probes.is_some();
    }
    let remote_syncs = syncs
        .iter()
        .filter(|s| {
            let sync = &config.syncs[&s.slug];
            [&sync.source.slug, &sync.destination.slug]
                .iter()
                .any(|ep| !config.volumes[&config.sync_endpoints[*ep].volume.slug].is_local())
        })
        .map(|s| s.slug.clone())
        .collect();
    // Every sync the run could have run, in config order: one left out
    // (-L, --not-metered) keeps its lines in the metrics file.
    let metrics = config
        .monitoring
        .as_ref()
        .is_some_and(|m| m.metrics_file.is_some());
    let transfer_logs = match metrics {
        true => syncs
            .iter_mut()
            .filter_map(monitoring::log_transfers)
            .collect(),
        false => Vec::new(),
    };
    let monitoring = monitoring::lower(
        config.monitoring.as_ref(),
        enabled.iter().map(|s| s.to_string()).collect(),
        syncs.iter().filter_map(monitoring::snapshot_dir).collect(),
        transfer_logs,
    );
    let (lanes, lane_of) = lanes::lanes(config, &lw.hosts, &lw.sites, &syncs);
    let default_jobs = lanes::default_jobs(&lanes);
    let lanes = if lanes.len() > 1 {
        for (i, sync) in syncs.iter_mut().enumerate() {
            sync.schedule.lane = Some(lane_of[i]);
            sync.schedule.devices = Some(lanes::local_devices(&lw.sites, sync));
        }
        lanes
    } else {
        Vec::new()
    };
    let uses_script_dir = options.relative_src || options.relative_dst;
    let init = init_ops(&lw.sites, options.allow_unmounted);
    let any_encrypted = lw.mounts.iter().any(|m| m.passphrase.is_some());
    Ok(Plan {
        config_path: config_path.to_string(),
        hosts: lw.hosts,
        check_groups: lw.groups,
        syncs,
        disabled,
        excluded_volumes,
        excluded_syncs,
        remote_syncs,
        monitoring,
        uses_script_dir,
        sites: lw.sites,
        init,
        first_channel,
        mounts: lw.mounts,
        credentials: any_encrypted.then_some(lw.credentials),
        lanes,
        default_jobs,
    })
}

/// Each sync's `waits_for`: the remote hosts its checks ask, its
/// operations run on, and its upstream waits for (an upstream comes first
/// in the order).
fn waits_for(hosts: &[Host], groups: &[CheckGroup], syncs: &mut [SyncPlan]) {
    let mut by_slug: HashMap<String, Vec<usize>> = HashMap::new();
    for sync in syncs.iter_mut() {
        let mut wanted: Vec<usize> = Vec::new();
        for step in &sync.checks {
            let layers = match step {
                CheckStep::Group(id) => groups[*id].layers.as_slice(),
                CheckStep::Layer(l) => std::slice::from_ref(l),
            };
            wanted.extend(
                layers
                    .iter()
                    .flat_map(|l| l.checks.iter().map(|c| c.probe.host)),
            );
        }
        let ops = [
            &sync.prepare,
            &sync.commit,
            &sync.abort,
            &sync.prepare_with_probes,
        ];
        wanted.extend(ops.into_iter().flatten().map(|c| c.host));
        wanted.extend(sync.channel.as_ref().map(|c| c.host));
        if let Some(up) = &sync.schedule.upstream {
            wanted.extend(by_slug.get(up).into_iter().flatten().copied());
        }
        wanted.retain(|&h| hosts[h].ssh.is_some());
        wanted.sort_unstable();
        wanted.dedup();
        by_slug.insert(sync.slug.clone(), wanted.clone());
        sync.waits_for = wanted;
    }
}

/// Whether `next`'s prepare may go to its host with `current`'s commit
/// (the two already may overlap): both on one remote host that keeps a
/// long-lived shell, and `next` has no upstream whose outcome could still
/// cancel it once `current` commits.
fn may_carry_prepare(hosts: &[Host], current: &SyncPlan, next: &SyncPlan) -> bool {
    let (Some(commit), Some(prepare)) = (&current.commit, &next.prepare) else {
        return false;
    };
    commit.host == prepare.host
        && hosts[prepare.host].ssh.is_some()
        && hosts[prepare.host].session_fds.is_some()
        && next.schedule.upstream.is_none()
}

/// Whether `next`'s prepare (lock, orphan cleanup, new snapshot directory)
/// may run during `current`'s rsync, and `current`'s commit (snapshot,
/// `latest`, pruning) during `next`'s rsync: the order of their effects
/// cannot matter. A remote prepare is a network round trip that then costs
/// nothing; a local one is not worth the care.
fn may_overlap(current: &SyncPlan, next: &SyncPlan) -> bool {
    let Some(prepare) = &next.prepare else {
        return false;
    };
    current.hooks.is_empty()
        && next.hooks.is_empty()
        && next.schedule.upstream.as_deref() != Some(current.slug.as_str())
        && prepare.host != 0
        && next.destination != current.destination
        && next.destination != current.source
        && prepared_endpoint(next) != prepared_endpoint(current)
}

/// The host and the destination endpoint a sync's prepare locks.
fn prepared_endpoint(sync: &SyncPlan) -> Option<(usize, Option<&Arg>)> {
    sync.prepare.as_ref().map(|p| match &p.op {
        Op::Begin { endpoint, .. } | Op::Lock { endpoint, .. } => (p.host, Some(endpoint)),
        _ => (p.host, None),
    })
}

/// Where removable drives are mounted: a volume there that is not a mount
/// point is an unplugged drive's empty folder on the system disk.
const DRIVE_PARENTS: &[&str] = &["/mnt/", "/media/", "/run/media/", "/Volumes/"];

/// `nbkp init`: each volume once (its `.nbkp-vol`), then each endpoint.
/// The mount-point rule: 1 refuse to write where a drive should be mounted
/// but is not, 2 only warn (`--allow-unmounted`), 0 no drive expected.
fn init_ops(sites: &[Site], allow_unmounted: bool) -> Vec<OpCall> {
    let var = |v: Var| Arg::template(vec![Piece::Var(v)]);
    let rule = |s: &Site| match (s.expect_mount, allow_unmounted) {
        (false, _) => RootRule::Anywhere,
        (true, false) => RootRule::MountPointOnly,
        (true, true) => RootRule::WarnIfNotMounted,
    };
    let mut ops = Vec::new();
    let mut seen: Vec<(usize, &Arg)> = Vec::new();
    for s in sites {
        if seen.contains(&(s.host, &s.volume_path)) {
            continue;
        }
        seen.push((s.host, &s.volume_path));
        ops.push(OpCall {
            host: s.host,
            op: Op::InitVolume {
                dry_run: var(Var::DryRunMode),
                volume: s.volume_path.clone(),
                root: rule(s),
            },
        });
    }
    for s in sites {
        ops.push(OpCall {
            host: s.host,
            op: Op::InitEndpoint {
                dry_run: var(Var::DryRunMode),
                volume: s.volume_path.clone(),
                endpoint: s.path.clone(),
                root: rule(s),
                source: s.source,
                destination: s.destination,
                mode: s.snapshots,
            },
        });
    }
    ops
}

/// `~` and `~/x` on a remote host: relative to the login's home, where every
/// ssh command starts. `./` keeps a leading `-` from reading as an option.
fn remote_path(path: &str) -> String {
    if path == "~" {
        ".".into()
    } else if let Some(rest) = path.strip_prefix("~/") {
        format!("./{rest}")
    } else {
        path.to_string()
    }
}

/// `target` relative to `base`, both absolute and normalised.
fn relative_to(target: &str, base: &Path) -> String {
    let t: Vec<Component> = Path::new(target).components().collect();
    let b: Vec<Component> = base.components().collect();
    let common = t.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = std::iter::repeat_n("..".to_string(), b.len() - common).collect();
    parts.extend(
        t[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// A path argument as a person would type it (run-time parts by name).
fn quote_arg(arg: &Arg) -> String {
    quote(&arg.display())
}

/// `program`, then [`quote_arg`] of `path` with `suffix`, appended to
/// `out` without the copies of the path that would take: a large config
/// has a fix like this for most checks of every sync.
fn path_command_into(out: &mut String, program: &str, path: &Arg, suffix: &str) {
    out.push_str(program);
    match path {
        Arg::Lit(s) => quote_pair_into(out, s, suffix),
        Arg::Template(_) => quote_pair_into(out, &path.display(), suffix),
        // `with_suffix` leaves these as they are.
        other => quote_into(out, &other.display()),
    }
}

/// `ssh DESTINATION COMMAND`, appended to `out`.
fn ssh_into(out: &mut String, ssh: &SshCommand, command: &str) {
    out.push_str("ssh ");
    quote_into(out, &ssh.destination);
    out.push(' ');
    quote_into(out, command);
}

fn ident(slug: &str) -> String {
    slug.replace('-', "_")
}

fn fail(answers: &'static [&'static str], verdict: Verdict, message: String) -> Failure {
    Failure {
        answers,
        verdict,
        message,
        dry_run_only: false,
        fix: None,
    }
}

impl Failure {
    /// What to do about it, for `nbkp preflight troubleshoot`.
    fn fix(mut self, text: String) -> Failure {
        self.fix = Some(text);
        self
    }
}

fn check(
    probe: ProbeRef,
    pass: &'static [&'static str],
    fails: Vec<Failure>,
    otherwise: Option<Failure>,
) -> Check {
    Check {
        probe,
        pass,
        fail: fails,
        otherwise,
    }
}

impl<'c> Lowering<'c> {
    /// The host index for an SSH endpoint, adding the host on first use.
    fn host_for(&mut self, ep: &ssh::Endpoint) -> usize {
        if let Some(i) = self.hosts.iter().position(|h| h.name == ep.slug) {
            return i;
        }
        let id = format!("h{}", self.hosts.len());
        let ssh = SshCommand::new(ep, &id);
        // POSIX shells promise only descriptors 0–9: 3/4, 5/6 and 7/8 for
        // the first three remote hosts; any others use one ssh per operation.
        let n = self.hosts.len() as u8;
        let session_fds = (n <= 3).then(|| (2 * n + 1, 2 * n + 2));
        self.hosts.push(Host {
            name: ep.slug.clone(),
            id,
            waiting_session: Some(channel::open_argv(&ssh)),
            ssh: Some(ssh),
            probes: vec![Probe::Reachable],
            session_fds,
            probe_bound: Some(ssh::probe_bound(ep)),
        });
        self.probe_index
            .push(HashMap::from_iter([(Probe::Reachable, 0)]));
        self.hosts.len() - 1
    }

    /// The retention policy as the operations' arguments (none: keep all).
    fn prune_tokens(&self, policy: &Policy) -> Vec<String> {
        if self.options.no_prune {
            Vec::new()
        } else {
            policy.tokens()
        }
    }

    /// The group for these layers, shared with every sync that needs the same.
    fn group(&mut self, layers: Vec<CheckLayer>) -> usize {
        if let Some(id) = self.group_index.get(&layers) {
            return *id;
        }
        let id = self.groups.len();
        self.groups.push(CheckGroup {
            id,
            layers: layers.clone(),
        });
        self.group_index.insert(layers, id);
        id
    }

    fn probe(&mut self, host: usize, probe: Probe) -> ProbeRef {
        let probes = &mut self.hosts[host].probes;
        let index = *self.probe_index[host]
            .entry(probe.clone())
            .or_insert_with(|| {
                probes.push(probe);
                probes.len() - 1
            });
        ProbeRef { host, index }
    }

    fn local_path(&self, path: &str, relative: bool) -> Arg {
        match (&self.options.script_dir, relative) {
            (Some(dir), true) => Arg::template(vec![
                Piece::Var(Var::ScriptDir),
                Piece::Lit(format!("/{}", relative_to(path, dir))),
            ]),
            _ => Arg::lit(path.to_owned()),
        }
    }

    /// Resolves one endpoint; `Ok(Err(_))` when its volume is left out.
    fn side(
        &mut self,
        ep: &SyncEndpoint,
        role_relative: bool,
    ) -> Result<Result<Side, Exclusion>, LowerError> {
        let volume: &Volume = &self.config.volumes[&ep.volume.slug];
        if self.options.skip_remote && !volume.is_local() {
            return Ok(Err(Exclusion {
                volume: volume.slug.clone(),
                reason: conditions::METERED.into(),
                fix: conditions::METERED_FIX.into(),
            }));
        }
        if let Some(d) = volume.daemon() {
            return Ok(self.daemon_side(volume, d, ep));
        }
        if volume.path.is_none() && volume.mount.is_none() {
            return Err(LowerError {
                message: format!("volume '{}' has neither a path nor a mount", volume.slug),
            });
        }
        if volume.path.is_none() {
            return self.mounted_side(ep, volume);
        }
        let path = volume.path.as_deref().unwrap_or_default();
        if volume.is_local() {
            let volume_path = self.local_path(path, role_relative);
            let ep_full = join(path, ep.subdir.as_deref());
            let endpoint_path = self.local_path(&ep_full, role_relative);
            return Ok(Ok(Side {
                host: 0,
                remote: false,
                volume_path,
                endpoint_path: endpoint_path.clone(),
                shown: ep_full,
                place: (String::new(), endpoint_path),
                daemon: None,
                mount: self.mount_for(volume, 0),
            }));
        }
        // The route is borrowed (a copy of its endpoint for every side of
        // a large config adds up).
        let selection = self.selection;
        let primary;
        let endpoint = match selection.routes.get(&volume.slug) {
            Some(VolumeRoute::Via(endpoint)) => &**endpoint,
            Some(VolumeRoute::Excluded) => return Ok(Err(Exclusion {
                volume: volume.slug.clone(),
                reason: "excluded by location filter".into(),
                fix: "Expected with -L/--exclude-location; run without it to include this volume."
                    .into(),
            })),
            None => {
                // Not selected (no candidates resolved): use the primary as written.
                let slug = volume.primary_endpoint().unwrap_or_default();
                let cfg = &self.config.ssh_endpoints[slug];
                primary = ssh::Endpoint::from_config(cfg, Vec::new());
                &primary
            }
        };
        let host = self.host_for(endpoint);
        let rpath = remote_path(path);
        let ep_full = join(&rpath, ep.subdir.as_deref());
        let mount = self.mount_for(volume, host);
        let written = join(path, ep.subdir.as_deref());
        Ok(Ok(Side {
            host,
            remote: true,
            volume_path: Arg::lit(rpath),
            endpoint_path: Arg::lit(ep_full),
            shown: [&endpoint.slug, ":", &written].concat(),
            place: (endpoint.slug.clone(), Arg::lit(written)),
            daemon: None,
            mount,
        }))
    }

    /// The host of a volume (`Err` when excluded by `-L`).
    fn volume_host(&mut self, volume: &Volume) -> Result<usize, Exclusion> {
        if volume.is_local() {
            return Ok(0);
        }
        let endpoint = match self.selection.routes.get(&volume.slug).cloned() {
            Some(VolumeRoute::Via(endpoint)) => *endpoint,
            Some(VolumeRoute::Excluded) => return Err(Exclusion {
                volume: volume.slug.clone(),
                reason: "excluded by location filter".into(),
                fix: "Expected with -L/--exclude-location; run without it to include this volume."
                    .into(),
            }),
            None => {
                let slug = volume.primary_endpoint().unwrap_or_default();
                ssh::Endpoint::from_config(&self.config.ssh_endpoints[slug], Vec::new())
            }
        };
        Ok(self.host_for(&endpoint))
    }

    /// A side on a mount-managed volume without `path`: its paths start
    /// with the mount point found when the run mounts it.
    fn mounted_side(
        &mut self,
        ep: &SyncEndpoint,
        volume: &Volume,
    ) -> Result<Result<Side, Exclusion>, LowerError> {
        let host = match self.volume_host(volume) {
            Ok(h) => h,
            Err(why) => return Ok(Err(why)),
        };
        let mount = self.mount_for(volume, host);
        let var = mount
            .and_then(|m| self.mounts[m].mount_point)
            .expect("a pathless volume has a mount point");
        let volume_path = Arg::template(vec![Piece::Var(var)]);
        let endpoint_path = match ep.subdir.as_deref() {
            Some(sub) => volume_path.with_suffix(&format!("/{sub}")),
            None => volume_path.clone(),
        };
        let shown = match ep.subdir.as_deref() {
            Some(sub) => format!("<{}>/{sub}", self.mounts[mount.unwrap_or(0)].shown),
            None => format!("<{}>", self.mounts[mount.unwrap_or(0)].shown),
        };
        Ok(Ok(Side {
            host,
            remote: host != 0,
            volume_path,
            place: (
                self.hosts[host]
                    .ssh
                    .as_ref()
                    .map(|_| self.hosts[host].name.clone())
                    .unwrap_or_default(),
                endpoint_path.clone(),
            ),
            endpoint_path,
            shown,
            daemon: None,
            mount,
        }))
    }

    /// The plan's mount entry for a mount-managed volume (added on first use).
    fn mount_for(&mut self, volume: &Volume, host: usize) -> Option<usize> {
        let m = volume.mount.as_ref()?;
        if let Some(i) = self.mounts.iter().position(|x| x.volume == volume.slug) {
            return Some(i);
        }
        let n = self.mounts.len();
        let encrypted = m.encryption.is_some();
        let (mount, umount) = mount::ops(
            host,
            &m.device_uuid,
            encrypted,
            !self.options.no_mount,
            !self.options.no_umount,
        );
        let shown = match &self.hosts[host].ssh {
            None => volume.slug.clone(),
            Some(_) => format!("{}:{}", self.hosts[host].name, volume.slug),
        };
        self.mounts.push(mount::MountPlan {
            volume: volume.slug.clone(),
            shown,
            host,
            device_uuid: m.device_uuid.clone(),
            passphrase: m
                .encryption
                .as_ref()
                .and_then(|e| self.credentials.index(&e.passphrase_id)),
            mount_point: volume.path.is_none().then_some(Var::MountPoint(n)),
            path: volume.path.clone(),
            mount,
            umount,
        });
        Some(n)
    }

    /// `nbkp disks`: the named mount-managed volumes (all when none named),
    /// in config order; an unknown name is an error.
    fn all_mounts(&mut self, names: &[String]) -> Result<(), LowerError> {
        let config = self.config;
        let unknown: Vec<&str> = names
            .iter()
            .filter(|n| !config.volumes.contains_key(*n))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            let mut known: Vec<&str> = config.volumes.keys().map(String::as_str).collect();
            known.sort();
            return Err(LowerError {
                message: format!(
                    "unknown volume name(s): {}. Known volumes: {}",
                    unknown.join(", "),
                    known.join(", ")
                ),
            });
        }
        for volume in config.volumes.values() {
            if volume.mount.is_none() || !(names.is_empty() || names.contains(&volume.slug)) {
                continue;
            }
            if let Ok(host) = self.volume_host(volume) {
                self.mount_for(volume, host);
            }
        }
        Ok(())
    }

    /// Records where an endpoint is, once, with the roles syncs give it.
    fn site(&mut self, ep: &'c SyncEndpoint, side: &Side, source: bool) {
        if let Some(&i) = self.site_index.get(ep.slug.as_str()) {
            let s = &mut self.sites[i];
            s.source |= source;
            s.destination |= !source;
            return;
        }
        self.site_index.insert(&ep.slug, self.sites.len());
        let volume = &self.config.volumes[&ep.volume.slug];
        let root = volume.path.as_deref().unwrap_or("");
        let expect_mount = DRIVE_PARENTS.iter().any(|p| root.starts_with(p));
        self.sites.push(Site {
            slug: ep.slug.clone(),
            host: side.host,
            volume: volume.slug.clone(),
            volume_path: side.volume_path.clone(),
            path: side.endpoint_path.clone(),
            shown: side.shown.clone(),
            source,
            destination: !source,
            snapshots: ep.snapshots.name(),
            retention: ep.snapshots.retention(),
            expect_mount,
        });
    }

    /// An endpoint on an rsync daemon's module: rsync runs here (host 0).
    fn daemon_side(
        &self,
        volume: &Volume,
        d: &crate::config::RsyncDaemon,
        ep: &SyncEndpoint,
    ) -> Result<Side, Exclusion> {
        let tunnel = match self.selection.routes.get(&volume.slug).cloned() {
            Some(VolumeRoute::Via(endpoint)) => Some(*endpoint),
            Some(VolumeRoute::Excluded) => return Err(Exclusion {
                volume: volume.slug.clone(),
                reason: "excluded by location filter".into(),
                fix: "Expected with -L/--exclude-location; run without it to include this volume."
                    .into(),
            }),
            None => d.ssh_endpoint.as_ref().map(|r| {
                ssh::Endpoint::from_config(&self.config.ssh_endpoints[&r.slug], Vec::new())
            }),
        };
        let side = daemon::DaemonSide::new(d, tunnel.as_ref());
        let full = join(&side.base, ep.subdir.as_deref());
        Ok(Side {
            host: 0,
            remote: false,
            volume_path: Arg::lit(side.base.clone()),
            endpoint_path: Arg::lit(full.clone()),
            shown: full.clone(),
            place: (side.base.clone(), Arg::lit(full)),
            daemon: Some(side),
            mount: None,
        })
    }

    /// A sentinel's probe: a file test on the side's host, or `rsync
    /// --list-only` of a daemon's module.
    fn file_probe(&mut self, side: &Side, path: Arg) -> ProbeRef {
        match &side.daemon {
            Some(d) => {
                let probe = d.file_probe(path);
                self.probe(side.host, probe)
            }
            None => self.probe(side.host, Probe::File { path }),
        }
    }

    /// For a daemon side, a sentinel check with the daemon's own answers
    /// (and a fix that works without a shell there).
    fn for_daemon(&self, side: &Side, c: Check) -> Check {
        let (Some(d), Some(absent)) = (&side.daemon, &c.otherwise) else {
            return c;
        };
        let target = match &self.hosts[c.probe.host].probes[c.probe.index] {
            Probe::DaemonFile { target, .. } => target.display(),
            _ => return c,
        };
        let (dir, name) = target.rsplit_once('/').unwrap_or(("", &target));
        let rsh = d
            .rsh
            .as_ref()
            .map(|r| format!("-e {} ", quote_arg(r)))
            .unwrap_or_default();
        let fix = format!(
            "If this is the right place, create {name} in that folder of the module on the daemon's host, or from here: touch /tmp/{name} && rsync --mkpath {rsh}/tmp/{name} {}",
            quote(&format!("{dir}/"))
        );
        daemon::sentinel_check(c.probe, &d.base, absent.message.clone(), fix)
    }

    /// `<role> <where>: snapshots/ directory not found`, with its fix.
    fn snapshots_missing(&self, role: &str, side: &Side) -> Failure {
        fail(
            &[],
            Verdict::Broken,
            [role, " ", &side.shown, ": snapshots/ directory not found"].concat(),
        )
        .fix(self.fix_on(
            side.host,
            "",
            "mkdir -p ",
            &side.endpoint_path,
            "/snapshots",
        ))
    }

    /// `<role> <where>: latest symlink not found`, with its fix.
    fn latest_missing(&self, role: &str, side: &Side) -> Failure {
        fail(
            &["missing"],
            Verdict::Broken,
            [role, " ", &side.shown, ": latest symlink not found"].concat(),
        )
        .fix(self.fix_on(
            side.host,
            "",
            "ln -s /dev/null ",
            &side.endpoint_path,
            "/latest",
        ))
    }

    /// `<role> <where>: latest symlink target is invalid`, with its fix.
    fn latest_invalid(&self, role: &str, side: &Side) -> Failure {
        fail(
            &[],
            Verdict::Broken,
            [role, " ", &side.shown, ": latest symlink target is invalid"].concat(),
        )
        .fix(self.fix_on(
            side.host,
            "Point it at a complete snapshot, or reset it: ",
            "ln -sfn /dev/null ",
            &side.endpoint_path,
            "/latest",
        ))
    }

    /// A command to run on a host, as a person would type it here.
    fn on(&self, host: usize, command: &str) -> String {
        match &self.hosts[host].ssh {
            None => command.to_string(),
            Some(ssh) => {
                let mut out = String::with_capacity(command.len() + ssh.destination.len() + 9);
                ssh_into(&mut out, ssh, command);
                out
            }
        }
    }

    /// `lead`, then [`Lowering::on`] of `program` followed by the quoted
    /// path with `suffix` (see [`path_command_into`]), built in place.
    fn fix_on(&self, host: usize, lead: &str, program: &str, path: &Arg, suffix: &str) -> String {
        // Sized for the usual case (no quote to escape): the plan keeps
        // thousands of these.
        let path_len = match path {
            Arg::Lit(s) => s.len(),
            _ => 0,
        };
        let command_len = program.len() + path_len + suffix.len() + 2;
        match &self.hosts[host].ssh {
            None => {
                let mut out = String::with_capacity(lead.len() + command_len);
                out.push_str(lead);
                path_command_into(&mut out, program, path, suffix);
                out
            }
            Some(ssh) => {
                let mut command = String::with_capacity(command_len);
                path_command_into(&mut command, program, path, suffix);
                let mut out =
                    String::with_capacity(lead.len() + ssh.destination.len() + command.len() + 9);
                out.push_str(lead);
                ssh_into(&mut out, ssh, &command);
                out
            }
        }
    }

    /// `ssh [user@]host true`, to see why a host does not answer.
    fn ssh_hint(&self, host: usize) -> String {
        match &self.hosts[host].ssh {
            None => "true".into(),
            Some(ssh) => format!("ssh {} true", quote(&ssh.destination)),
        }
    }

    fn host_name(&self, host: usize) -> String {
        let h = &self.hosts[host];
        match &h.ssh {
            None => "this machine".into(),
            Some(ssh) => format!("{} ({})", h.name, ssh.destination),
        }
    }

    /// Hosts answer, tools are there, drives are mounted, volumes are
    /// there: the checks a sync shares with every sync between the same
    /// two volumes.
    fn shared_layers(
        &mut self,
        src: &Side,
        dst: &Side,
        src_ep: &SyncEndpoint,
        dst_ep: &SyncEndpoint,
    ) -> Vec<CheckLayer> {
        let config = self.config;
        let mut shared = Vec::new();

        // 1. Hosts answer at all (an unreachable host is an expected state).
        let mut reach = Vec::new();
        let mut hosts = vec![src.host];
        if dst.host != src.host {
            hosts.push(dst.host);
        }
        for &h in &hosts {
            if self.hosts[h].ssh.is_some() {
                let p = self.probe(h, Probe::Reachable);
                let name = self.host_name(h);
                reach.push(check(
                    p,
                    &["1"],
                    vec![],
                    Some(fail(
                        &[],
                        Verdict::Inactive,
                        format!("host {name} is unreachable"),
                    )
                    .fix(format!(
                        "Expected when away from that network. Otherwise try `{}` and fix what it reports.",
                        self.ssh_hint(h)
                    ))),
                ));
            }
        }
        if !reach.is_empty() {
            shared.push(CheckLayer {
                layer: "host",
                checks: reach,
            });
        }

        // 2. Tools: rsync where it runs, btrfs where snapshots are made.
        let mut tools = Vec::new();
        let rsync_hosts: Vec<usize> = if src.remote && dst.remote {
            vec![dst.host]
        } else {
            hosts.clone()
        };
        for h in rsync_hosts {
            let p = self.probe(h, Probe::RsyncVersion);
            let name = self.host_name(h);
            tools.push(check(
                p,
                &["ok"],
                vec![
                    fail(&["missing"], Verdict::Broken, format!("rsync not found on {name}"))
                        .fix(format!("Install rsync on {name} (Debian/Ubuntu: `apt-get install rsync`; macOS: `brew install rsync`).")),
                    fail(
                        &["openrsync"],
                        Verdict::Broken,
                        format!("rsync on {name} is openrsync, which lacks options nbkp uses: install rsync 3 (e.g. `brew install rsync`)"),
                    ),
                    fail(&["old"], Verdict::Broken, format!("rsync on {name} is too old (3.0+ required)"))
                        .fix(format!("Install rsync 3 or newer on {name}.")),
                ],
                Some(fail(&[], Verdict::Broken, format!("could not run `rsync --version` on {name}"))),
            ));
        }
        if let SnapshotMode::Btrfs { .. } = dst_ep.snapshots {
            for tool in ["btrfs", "stat", "findmnt"] {
                let p = self.probe(dst.host, Probe::Command { name: tool.into() });
                let name = self.host_name(dst.host);
                tools.push(check(
                    p,
                    &["1"],
                    vec![],
                    Some(
                        fail(&[], Verdict::Broken, format!("{tool} not found on {name}")).fix(
                            format!(
                                "Install {} on {name}.",
                                if tool == "btrfs" {
                                    "btrfs-progs"
                                } else {
                                    "coreutils/util-linux"
                                }
                            ),
                        ),
                    ),
                ));
            }
        }
        for side in [&src, &dst] {
            if side.mount.is_some() {
                for tool in ["udisksctl", "lsblk", "findmnt"] {
                    let p = self.probe(side.host, Probe::Command { name: tool.into() });
                    let name = self.host_name(side.host);
                    let fix = format!(
                        "Install {} on {name}.",
                        if tool == "udisksctl" {
                            "udisks2"
                        } else {
                            "util-linux"
                        }
                    );
                    let check = check(
                        p,
                        &["1"],
                        vec![],
                        Some(
                            fail(&[], Verdict::Broken, format!("{tool} not found on {name}"))
                                .fix(fix),
                        ),
                    );
                    if !tools.contains(&check) {
                        tools.push(check);
                    }
                }
            }
        }
        shared.push(CheckLayer {
            layer: "tools",
            checks: tools,
        });

        // 2b. Mount-managed drives are there, unlocked and mounted.
        let mut mounted = Vec::new();
        for side in [&src, &dst] {
            let Some(m) = side.mount else { continue };
            let mp = self.mounts[m].clone();
            let p = self.probe(
                mp.host,
                Probe::Mount {
                    uuid: mp.device_uuid.clone(),
                    encrypted: mp.passphrase.is_some(),
                    path: mp.path.as_ref().map(|_| side.volume_path.clone()),
                },
            );
            let c = mount::check(&mp, p, !self.options.no_mount);
            if !mounted.contains(&c) {
                mounted.push(c);
            }
        }
        if !mounted.is_empty() {
            shared.push(CheckLayer {
                layer: "mount",
                checks: mounted,
            });
        }

        // 3. Both volumes are really there.
        let mut volumes = Vec::new();
        let same_volume = src.host == dst.host && src_ep.volume.slug == dst_ep.volume.slug;
        for (role, side, ep) in [("source", &src, src_ep), ("destination", &dst, dst_ep)] {
            if same_volume && role == "destination" {
                continue;
            }
            let p = self.file_probe(side, side.volume_path.with_suffix("/.nbkp-vol"));
            let vol = &ep.volume.slug;
            let shown = match &config.volumes[vol].path {
                Some(path) if side.remote => format!("{}:{path}", self.hosts[side.host].name),
                Some(path) => path.clone(),
                None => match side.mount {
                    Some(m) => format!("<{}>", self.mounts[m].shown),
                    None => side.volume_path.display(),
                },
            };
            let hint = if side.daemon.is_some() {
                ""
            } else {
                " (drive not plugged in or not mounted?)"
            };
            let c = check(
                p,
                &["1"],
                vec![],
                Some(
                    fail(
                        &[],
                        Verdict::Inactive,
                        format!("{role} volume '{vol}' is not there: {shown}/.nbkp-vol not found{hint}"),
                    )
                    .fix(format!(
                        "Plug in and mount the drive. If the volume is there and this is its first use, mark it: {}",
                        self.on(side.host, &format!("touch {}", quote_arg(&side.volume_path.with_suffix("/.nbkp-vol"))))
                    )),
                ),
            );
            volumes.push(self.for_daemon(side, c));
        }
        shared.push(CheckLayer {
            layer: "volume",
            checks: volumes,
        });
        shared
    }

    #[allow(clippy::type_complexity)]
    fn sync(
        &mut self,
        slug: &str,
        upstream: Option<String>,
    ) -> Result<Result<SyncPlan, Exclusion>, LowerError> {
        let config = self.config;
        let sync = &config.syncs[slug];
        let src_ep = &config.sync_endpoints[&sync.source.slug];
        let dst_ep = &config.sync_endpoints[&sync.destination.slug];
        let src = match self.side(src_ep, self.options.relative_src)? {
            Ok(s) => s,
            Err(why) => return Ok(Err(why)),
        };
        let dst = match self.side(dst_ep, self.options.relative_dst)? {
            Ok(s) => s,
            Err(why) => return Ok(Err(why)),
        };

        // A daemon's module has no shell: `init` and `snapshots` leave it alone.
        if src.daemon.is_none() {
            self.site(src_ep, &src, true);
        }
        if dst.daemon.is_none() {
            self.site(dst_ep, &dst, false);
        }
        // The layers every sync between these two volumes shares: built
        // once per pair (a large config has thousands of syncs and a
        // handful of pairs), and in debug builds checked against a fresh
        // build, so the key cannot silently miss an input.
        let key = SharedKey {
            source: (&src_ep.volume.slug, src.host),
            destination: (&dst_ep.volume.slug, dst.host),
            btrfs: matches!(dst_ep.snapshots, SnapshotMode::Btrfs { .. }),
        };
        let group = match self.shared_index.get(&key) {
            Some(&id) => {
                if cfg!(debug_assertions) {
                    let fresh = self.shared_layers(&src, &dst, src_ep, dst_ep);
                    assert_eq!(
                        self.groups[id].layers, fresh,
                        "shared checks of sync {slug}"
                    );
                }
                id
            }
            None => {
                let layers = self.shared_layers(&src, &dst, src_ep, dst_ep);
                let id = self.group(layers);
                self.shared_index.insert(key, id);
                id
            }
        };
        // The plan keeps these lists for every sync: each is made the size
        // it ends up, not grown by doubling.
        let mut layers = Vec::with_capacity(3);
        layers.push(CheckStep::Group(group));

        // 4. The endpoints are the intended ones.
        let p = self.file_probe(&src, src.endpoint_path.with_suffix("/.nbkp-src"));
        let c = check(
            p,
            &["1"],
            vec![],
            Some(
                fail(
                    &[],
                    Verdict::Inactive,
                    ["source sentinel ", &src.shown, "/.nbkp-src not found"].concat(),
                )
                .fix(self.fix_on(
                    src.host,
                    "If this is the right folder to back up: ",
                    "touch ",
                    &src.endpoint_path,
                    "/.nbkp-src",
                )),
            ),
        );
        let mut sentinels = Vec::with_capacity(2);
        sentinels.push(self.for_daemon(&src, c));
        let p = self.file_probe(&dst, dst.endpoint_path.with_suffix("/.nbkp-dst"));
        let c = check(
            p,
            &["1"],
            vec![],
            Some(
                fail(
                    &[],
                    Verdict::Inactive,
                    ["destination sentinel ", &dst.shown, "/.nbkp-dst not found"].concat(),
                )
                .fix(self.fix_on(
                    dst.host,
                    "If this is the right place for the backup: ",
                    "touch ",
                    &dst.endpoint_path,
                    "/.nbkp-dst",
                )),
            ),
        );
        sentinels.push(self.for_daemon(&dst, c));
        layers.push(CheckStep::Layer(CheckLayer {
            layer: "sentinel",
            checks: sentinels,
        }));

        // 5. The endpoints' structure.
        let mut structure = Vec::new();
        if src_ep.snapshots.is_enabled() {
            let p = self.probe(
                src.host,
                Probe::SnapshotsDir {
                    path: src.endpoint_path.with_suffix("/snapshots"),
                },
            );
            structure.push(check(
                p,
                &["1", "ro"],
                vec![],
                Some(self.snapshots_missing("source", &src)),
            ));
            let p = self.probe(
                src.host,
                Probe::Latest {
                    endpoint: src.endpoint_path.clone(),
                },
            );
            let devnull = match &upstream {
                Some(up) => Failure {
                    answers: &["devnull"],
                    verdict: Verdict::Pending,
                    message: format!("source snapshot not yet available (dry-run; upstream sync '{up}' has not run)"),
                    dry_run_only: true,
                    fix: Some(format!("Nothing to do: a real run fills it through '{up}' first.")),
                },
                None => fail(
                    &["devnull"],
                    Verdict::Broken,
                    ["source ", &src.shown, ": latest → /dev/null with no upstream sync (nothing to read yet)"].concat(),
                )
                .fix("The source keeps snapshots but nothing writes them in this config: add the sync that fills it, or run that backup first.".into()),
            };
            structure.push(check(
                p,
                &["snapshot"],
                vec![devnull, self.latest_missing("source", &src)],
                Some(self.latest_invalid("source", &src)),
            ));
        }
        // A daemon has no shell to ask; its module's `read only` decides.
        if dst.daemon.is_none() {
            let p = self.probe(
                dst.host,
                Probe::WritableDir {
                    path: dst.endpoint_path.clone(),
                },
            );
            structure.push(check(
                p,
                &["1"],
                vec![],
                Some(
                    fail(
                        &[],
                        Verdict::Broken,
                        [
                            "destination ",
                            &dst.shown,
                            ": endpoint directory not writable",
                        ]
                        .concat(),
                    )
                    .fix(self.fix_on(
                        dst.host,
                        "Give the backup user write access, e.g. ",
                        "chown -R \"$USER\" ",
                        &dst.endpoint_path,
                        "",
                    )),
                ),
            ));
        }
        let snapshots = match dst_ep.snapshots {
            SnapshotMode::None => SnapshotPlan::None,
            SnapshotMode::Btrfs { retention } => {
                let p = self.probe(
                    dst.host,
                    Probe::FsType {
                        path: dst.endpoint_path.clone(),
                    },
                );
                structure.push(check(
                    p,
                    &["btrfs"],
                    vec![fail(
                        &["unknown"],
                        Verdict::Broken,
                        [
                            "destination ",
                            &dst.shown,
                            ": could not determine the volume filesystem type",
                        ]
                        .concat(),
                    )],
                    Some(fail(
                        &[],
                        Verdict::Broken,
                        [
                            "destination ",
                            &dst.shown,
                            ": volume not on btrfs filesystem",
                        ]
                        .concat(),
                    )),
                ));
                let p = self.probe(
                    dst.host,
                    Probe::MountOption {
                        path: dst.endpoint_path.clone(),
                        option: "user_subvol_rm_allowed".into(),
                    },
                );
                structure.push(check(
                    p,
                    &["1"],
                    vec![],
                    Some(fail(
                        &[],
                        Verdict::Broken,
                        ["destination ", &dst.shown, ": volume not mounted with user_subvol_rm_allowed (old snapshots could not be pruned)"].concat(),
                    ).fix(["Mount the volume with the option, e.g. in /etc/fstab: `... btrfs defaults,user_subvol_rm_allowed 0 0`, then ", &self.on(dst.host, "mount -o remount,user_subvol_rm_allowed <mount point>")].concat())),
                ));
                let staging = dst.endpoint_path.with_suffix("/staging");
                let p = self.probe(
                    dst.host,
                    Probe::Subvolume {
                        path: staging.clone(),
                    },
                );
                structure.push(check(
                    p,
                    &["1"],
                    vec![fail(
                        &["missing"],
                        Verdict::Broken,
                        ["destination ", &dst.shown, ": staging/ directory not found"].concat(),
                    )
                    .fix(self.fix_on(
                        dst.host,
                        "",
                        "btrfs subvolume create ",
                        &dst.endpoint_path,
                        "/staging",
                    ))],
                    Some(fail(
                        &[],
                        Verdict::Broken,
                        [
                            "destination ",
                            &dst.shown,
                            ": staging/ is not a btrfs subvolume",
                        ]
                        .concat(),
                    )),
                ));
                let p = self.probe(dst.host, Probe::WritableDir { path: staging });
                structure.push(check(
                    p,
                    &["1"],
                    vec![],
                    Some(fail(
                        &[],
                        Verdict::Broken,
                        [
                            "destination ",
                            &dst.shown,
                            ": staging/ subvolume not writable",
                        ]
                        .concat(),
                    )),
                ));
                SnapshotPlan::Btrfs {
                    endpoint: dst.endpoint_path.clone(),
                    retention,
                }
            }
            SnapshotMode::HardLink { retention } => {
                let p = self.probe(
                    dst.host,
                    Probe::FsType {
                        path: dst.endpoint_path.clone(),
                    },
                );
                structure.push(check(
                    p,
                    &[],
                    vec![fail(
                        &["vfat", "msdos", "exfat"],
                        Verdict::Broken,
                        [
                            "destination ",
                            &dst.shown,
                            ": volume filesystem does not support hard links",
                        ]
                        .concat(),
                    )],
                    None,
                ));
                SnapshotPlan::HardLink {
                    endpoint: dst.endpoint_path.clone(),
                    retention,
                }
            }
        };
        if dst_ep.snapshots.is_enabled() {
            let p = self.probe(
                dst.host,
                Probe::SnapshotsDir {
                    path: dst.endpoint_path.with_suffix("/snapshots"),
                },
            );
            structure.push(check(
                p,
                &["1"],
                vec![fail(
                    &["ro"],
                    Verdict::Broken,
                    [
                        "destination ",
                        &dst.shown,
                        ": snapshots/ directory not writable",
                    ]
                    .concat(),
                )],
                Some(self.snapshots_missing("destination", &dst)),
            ));
            let p = self.probe(
                dst.host,
                Probe::Latest {
                    endpoint: dst.endpoint_path.clone(),
                },
            );
            structure.push(check(
                p,
                &["snapshot", "devnull"],
                vec![self.latest_missing("destination", &dst)],
                Some(self.latest_invalid("destination", &dst)),
            ));
        }
        structure.shrink_to_fit();
        layers.push(CheckStep::Layer(CheckLayer {
            layer: "endpoint",
            checks: structure,
        }));

        // The transfer and what surrounds it.
        let source = if src_ep.snapshots.is_enabled() {
            src.endpoint_path.with_suffix("/latest/")
        } else {
            src.endpoint_path.with_suffix("/")
        };
        let var = |v: Var| Arg::template(vec![Piece::Var(v)]);
        let (mode, policy, target, link_dest) = match &snapshots {
            SnapshotPlan::None => (
                Mode::None,
                Policy::default(),
                dst.endpoint_path.with_suffix("/"),
                false,
            ),
            SnapshotPlan::Btrfs {
                endpoint,
                retention,
            } => (
                Mode::Btrfs,
                *retention,
                endpoint.with_suffix("/staging/"),
                false,
            ),
            SnapshotPlan::HardLink {
                endpoint,
                retention,
            } => (
                Mode::HardLink,
                *retention,
                // Written marked unfinished; nbkp_commit gives it its name.
                endpoint
                    .with_suffix(UNFINISHED_DIR)
                    .then_var(Var::Snapshot)
                    .with_suffix("/"),
                true,
            ),
        };
        let endpoint = dst.endpoint_path.clone();
        let call = |op: Op| OpCall { host: dst.host, op };
        let (prepare, commit, abort) = if mode == Mode::None {
            // A mirror keeps no history: only the lock, around rsync.
            let unlock = call(Op::Unlock {
                dry_run: var(Var::DryRunMode),
                endpoint: endpoint.clone(),
                owner: var(Var::LockOwner),
            });
            let lock = call(Op::Lock {
                dry_run: var(Var::DryRunMode),
                endpoint,
                owner: var(Var::LockOwner),
                stale_lock: var(Var::StaleLock),
            });
            (Some(lock), Some(unlock.clone()), Some(unlock))
        } else {
            let rules = self.prune_tokens(&policy);
            // Pruning at the sync's priority (absent: unchanged).
            let prio = sync
                .priority
                .as_ref()
                .filter(|_| !rules.is_empty())
                .map(|p| format!("prio={}", rsync::priority_token(p)));
            let begin = call(Op::Begin {
                mode,
                dry_run: var(Var::DryRunMode),
                endpoint: endpoint.clone(),
                candidate: var(Var::SnapshotCandidate),
                owner: var(Var::LockOwner),
                stale_lock: var(Var::StaleLock),
            });
            let commit = call(Op::Commit {
                mode,
                dry_run: var(Var::DryRunMode),
                endpoint: endpoint.clone(),
                // btrfs names its snapshot at commit time, hard-link at begin time.
                snapshot: if mode == Mode::Btrfs {
                    var(Var::SnapshotCandidate)
                } else {
                    var(Var::Snapshot)
                },
                now: var(Var::SnapshotCandidate),
                owner: var(Var::LockOwner),
                rules: rules.into_iter().chain(prio).collect(),
            });
            let abort = call(Op::Abort {
                mode,
                dry_run: var(Var::DryRunMode),
                endpoint,
                snapshot: var(Var::Snapshot),
                owner: var(Var::LockOwner),
            });
            (Some(begin), Some(commit), Some(abort))
        };
        let daemon = src.daemon.as_ref().or(dst.daemon.as_ref());
        // The first sync's prepare may go with its host's probes, where it
        // runs only if the destination's sentinels are there: it writes
        // (a lock, an empty snapshot directory) only where the drive is,
        // and is undone if the checks then keep the sync from running.
        let first = std::mem::take(&mut self.first_pending);
        let prepare_with_probes = prepare
            .as_ref()
            .filter(|_| {
                first
                    && dst.remote
                    && dst.mount.is_none()
                    && daemon.is_none()
                    && upstream.is_none()
                    && sync.hooks.is_empty()
                    && config.hooks.is_empty()
            })
            .map(|p| OpCall {
                host: p.host,
                op: Op::IfThere {
                    sentinels: vec![
                        dst.volume_path.with_suffix("/.nbkp-vol"),
                        dst.endpoint_path.with_suffix("/.nbkp-dst"),
                    ],
                    then: Box::new(p.op.clone()),
                },
            });
        let (prepare, commit, abort) = if daemon.is_some() {
            // Snapshots are refused on daemons (validation); a lock needs a shell.
            (None, None, None)
        } else {
            (prepare, commit, abort)
        };
        let direction = match (src.remote, dst.remote) {
            _ if daemon.is_some() => Direction::Daemon(daemon.and_then(|d| d.rsh.clone())),
            (false, false) => Direction::Local,
            (false, true) => {
                Direction::Push(self.hosts[dst.host].ssh.as_ref().expect("remote host"))
            }
            (true, false) => {
                Direction::Pull(self.hosts[src.host].ssh.as_ref().expect("remote host"))
            }
            (true, true) => {
                Direction::OnRemote(self.hosts[dst.host].ssh.as_ref().expect("remote host"))
            }
        };
        let channel = match &direction {
            Direction::Push(_) => Some(dst.host),
            Direction::Pull(_) => Some(src.host),
            _ => None,
        }
        .map(|host| channel::Channel {
            host,
            rsync: rsync::command(
                sync,
                direction.clone(),
                source.clone(),
                target.clone(),
                link_dest,
                true,
            ),
        });
        let rsync = rsync::command(sync, direction, source, target, link_dest, false);
        let place = |side: &Side| hooks::Place {
            host: side.place.0.clone(),
            path: side.place.1.clone(),
        };
        let hooks = hooks::sync_hooks(&config.hooks, &sync.hooks, slug, place(&src), place(&dst));
        let mode = match dst_ep.snapshots {
            SnapshotMode::None => String::new(),
            m => format!(" ({} snapshots)", m.name()),
        };
        let newest_snapshot =
            (self.options.clock_check && dst_ep.snapshots.is_enabled()).then(|| {
                self.probe(
                    dst.host,
                    Probe::NewestSnapshot {
                        endpoint: dst.endpoint_path.clone(),
                    },
                )
            });
        Ok(Ok(SyncPlan {
            slug: slug.to_string(),
            ident: ident(slug),
            source: sync.source.slug.clone(),
            destination: sync.destination.slug.clone(),
            schedule: Schedule {
                upstream,
                ..Schedule::default()
            },
            waits_for: Vec::new(),
            checks: layers,
            snapshots,
            prepare,
            rsync,
            channel,
            prepare_with_probes,
            commit,
            abort,
            summary: [&src.shown, " → ", &dst.shown, &mode].concat(),
            snapshot_format: if self.options.darwin && !dst.remote {
                "hyphens"
            } else {
                "colons"
            },
            newest_snapshot,
            hooks,
            rsync_password: daemon.map(|d| d.password.clone()),
        }))
    }
}
