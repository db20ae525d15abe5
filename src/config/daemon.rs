//! `type: rsync-daemon` volumes: a module of an rsync daemon, reached
//! directly (`host`, `port`) or through an SSH endpoint that starts a
//! single-use daemon (`ssh-endpoint`). The module is the volume's root.

use super::diagnostic::{Diagnostics, Severity};
use super::fields::{self, Fields, Loc};
use super::model::{Ref, RsyncDaemon, Volume, VolumeLocation};
use super::paths::Home;
use super::yaml::Pos;

pub const DAEMON_VOLUME_KEYS: &[&str] = &[
    "slug",
    "type",
    "host",
    "port",
    "module",
    "user",
    "password-command",
    "ssh-endpoint",
];

pub fn decode_daemon_volume(
    slug: &str,
    pos: Pos,
    mut f: Fields<'_>,
    home: &Home,
    d: &mut Diagnostics,
) -> Option<Volume> {
    let loc = Loc::of(&["volumes", slug, "rsync-daemon"]);
    let before = d.items.len();
    for key in ["path", "mount"] {
        if let Some(n) = f.get(key) {
            d.error(
                "daemon-volume-key",
                &loc.at(key).parts(),
                Some(n.at()),
                format!(
                    "an rsync-daemon volume has no `{key}`: its root is the module's path, set in the daemon's rsyncd.conf (use a sync endpoint's `subdir` for a folder inside it)"
                ),
            );
        }
    }
    let host_node = f.get("host");
    let host = host_node.and_then(|n| fields::non_empty(n, &loc.at("host"), d));
    let port_node = f.get("port");
    let port = port_node.and_then(|n| fields::int_in(n, &loc.at("port"), d, 1, 65535));
    let module = f.require("module", d, |n, l, d| {
        let m = fields::non_empty(n, l, d)?;
        if m.contains('/') || m.contains("::") || m.chars().any(char::is_whitespace) {
            d.error(
                "daemon-module",
                &l.parts(),
                Some(n.at()),
                format!("`{m}` is not a module name: write only the module (no `/`, `::` or spaces); a folder inside it is a sync endpoint's `subdir`"),
            );
            return None;
        }
        Some(m)
    });
    let user = f.read("user", d, fields::non_empty);
    let password_command = f.read("password-command", d, |n, l, d| {
        super::hooks::argv(n, l, home, d, "`password-command`")
    });
    let ssh_endpoint = f.read("ssh-endpoint", d, |n, l, d| {
        let slug = fields::non_empty(n, l, d)?;
        Some(Ref { slug, pos: n.pos })
    });
    match (&ssh_endpoint, host_node) {
        (Some(_), Some(n)) => d.error(
            "mutually-exclusive",
            &loc.at("host").parts(),
            Some(n.at()),
            "`host` and `ssh-endpoint` are mutually exclusive: through SSH the daemon runs on the endpoint's host".into(),
        ),
        (None, None) => d.error(
            "missing",
            &loc.at("host").parts(),
            Some(pos),
            "`host` is required (or `ssh-endpoint`, to reach the daemon through SSH)".into(),
        ),
        _ => {}
    }
    if let (Some(_), Some(n)) = (&ssh_endpoint, port_node) {
        d.error(
            "mutually-exclusive",
            &loc.at("port").parts(),
            Some(n.at()),
            "`port` is for a daemon reached directly; through SSH the daemon is started for the transfer and needs no port (the SSH port is the endpoint's)".into(),
        );
    }
    f.finish(DAEMON_VOLUME_KEYS, d);
    if d.items[before..]
        .iter()
        .any(|x| x.severity == Severity::Error)
    {
        return None;
    }
    Some(Volume {
        slug: slug.to_string(),
        location: VolumeLocation::RsyncDaemon(RsyncDaemon {
            host,
            port: port.map_or(RsyncDaemon::PORT, |p| p as u16),
            module: module?,
            user,
            password_command,
            ssh_endpoint,
        }),
        path: None,
        mount: None,
        pos,
    })
}

/// What a daemon module cannot do: snapshots (they need a shell on the
/// destination to make, move `latest` and prune) and transfers with another
/// host (rsync runs here, so the other side must be this machine).
pub fn validate(
    config: &super::model::Config,
    declared: &super::declared::Declared,
    d: &mut Diagnostics,
) {
    for (slug, volume) in &config.volumes {
        let Some(ep) = volume.daemon().and_then(|x| x.ssh_endpoint.as_ref()) else {
            continue;
        };
        if !declared.ssh_endpoints.contains(&ep.slug) {
            d.error(
                "unknown-reference",
                &["volumes", slug, "rsync-daemon", "ssh-endpoint"],
                Some(ep.pos),
                format!(
                    "Volume '{slug}' references unknown ssh-endpoint '{}'",
                    ep.slug
                ),
            );
        }
    }
    let daemon_of = |endpoint: &str| {
        let e = config.sync_endpoints.get(endpoint)?;
        config.volumes.get(&e.volume.slug)?.daemon().map(|_| e)
    };
    for (slug, e) in &config.sync_endpoints {
        if daemon_of(slug).is_some() && e.snapshots.is_enabled() {
            d.error(
                "daemon-snapshots",
                &["sync-endpoints", slug],
                Some(e.pos),
                format!(
                    "sync endpoint '{slug}' is on rsync-daemon volume '{}', which cannot keep {} snapshots: making them, moving `latest` and pruning need a shell on that host. Use a `remote` volume over SSH for snapshots, or keep a plain mirror on the daemon",
                    e.volume.slug,
                    e.snapshots.name()
                ),
            );
        }
    }
    for (slug, sync) in &config.syncs {
        let sides = [&sync.source, &sync.destination];
        let daemons = sides
            .iter()
            .filter(|r| daemon_of(&r.slug).is_some())
            .count();
        if daemons == 0 {
            continue;
        }
        let local = sides.iter().any(|r| {
            config
                .sync_endpoints
                .get(&r.slug)
                .and_then(|e| config.volumes.get(&e.volume.slug))
                .is_some_and(|v| v.is_local())
        });
        if daemons == 2 || !local {
            d.error(
                "daemon-sync",
                &["syncs", slug],
                Some(sync.pos),
                format!(
                    "sync '{slug}' reads or writes an rsync daemon, so its other side must be a local volume (rsync runs on this machine; a daemon cannot be copied to another host or daemon directly): copy through a local volume with two syncs"
                ),
            );
        }
    }
}
