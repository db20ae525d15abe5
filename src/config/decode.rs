//! Node tree → [`Config`] entries, field by field, collecting every problem.
//!
//! Cross-entry rules (references, overlaps, cycles) live in `validate.rs`; this
//! file only knows about one entry at a time (and `extends`, which is resolved
//! on the raw entries before anything else, as the Python nbkp does it).

use indexmap::IndexMap;

use std::collections::HashMap;

use super::diagnostic::Diagnostics;
use super::fields::{self, describe, key_text, Fields, Loc};
use super::model::*;
use super::paths::{self, Home};
use super::yaml::{Node, Pos, Value};
use crate::retention::{Count, Policy};

pub use super::declared::Declared;

pub struct Decoded {
    pub config: Config,
    pub declared: Declared,
}

const TOP_KEYS: &[&str] = &[
    "credential-provider",
    "credential-command",
    "ssh-endpoints",
    "volumes",
    "sync-endpoints",
    "syncs",
    "hooks",
    "desktop-notifications",
    "monitoring",
];

pub fn decode(root: &Node, home: &Home, d: &mut Diagnostics) -> Option<Decoded> {
    let mut top = Fields::of(root, Loc::root(), d)?;
    let mut declared = Declared::default();

    let credential_provider = top
        .read("credential-provider", d, |n, loc, d| {
            let name = fields::string(n, loc, d)?;
            let provider = CredentialProvider::from_name(&name);
            if provider.is_none() {
                d.error(
                    "enum",
                    &loc.parts(),
                    Some(n.at()),
                    format!(
                        "unknown credential provider `{name}`; expected one of: {}",
                        CredentialProvider::NAMES.join(", ")
                    ),
                );
            }
            provider
        })
        .unwrap_or_default();
    let credential_command = top.read("credential-command", d, fields::string_list);
    let credential_pos = (
        top.get_raw("credential-provider").map(|n| n.pos),
        top.get_raw("credential-command").map(|n| n.pos),
    );

    let desktop_notifications = top
        .read("desktop-notifications", d, fields::boolean)
        .unwrap_or(false);

    let ssh_nodes = section(&mut top, "ssh-endpoints", d);
    let resolved = resolve_extends(&ssh_nodes, d);
    let mut ssh_endpoints = IndexMap::default();
    for (slug, key_pos, entries) in &resolved {
        declared.ssh_endpoints.insert(slug.clone());
        if let Some(ep) = decode_ssh_endpoint(slug, *key_pos, entries, home, d) {
            ssh_endpoints.insert(slug.clone(), ep);
        }
    }

    let mut volumes = IndexMap::default();
    for (slug, pos, node) in section(&mut top, "volumes", d) {
        declared.volumes.insert(slug.clone());
        if let Some(v) = decode_volume(&slug, pos, node, home, d) {
            volumes.insert(slug, v);
        }
    }

    let mut sync_endpoints = IndexMap::default();
    for (slug, pos, node) in section(&mut top, "sync-endpoints", d) {
        declared.sync_endpoints.insert(slug.clone());
        if let Some(e) = decode_sync_endpoint(&slug, pos, node, d) {
            sync_endpoints.insert(slug, e);
        }
    }

    let mut syncs = IndexMap::default();
    for (slug, pos, node) in section(&mut top, "syncs", d) {
        declared.syncs.insert(slug.clone());
        if let Some(s) = decode_sync(&slug, pos, node, home, d) {
            syncs.insert(slug, s);
        }
    }

    let hooks = top
        .read("hooks", d, |n, l, d| {
            super::hooks::decode_hooks(n, l, home, d)
        })
        .unwrap_or_default();
    let monitoring = top.read("monitoring", d, |n, l, d| {
        super::monitoring::decode_monitoring(n, l, home, d)
    });
    top.finish(TOP_KEYS, d);
    Some(Decoded {
        config: Config {
            credential_provider,
            credential_command,
            ssh_endpoints,
            volumes,
            sync_endpoints,
            syncs,
            hooks,
            desktop_notifications,
            monitoring,
            credential_pos,
        },
        declared,
    })
}

/// The entries of a `slug → entry` section, with slugs checked and duplicates
/// rejected (the last-one-wins of YAML loaders would silently drop a sync).
fn section<'a>(
    top: &mut Fields<'a>,
    name: &str,
    d: &mut Diagnostics,
) -> Vec<(String, Pos, &'a Node)> {
    let loc = top.field_loc(name);
    let Some(node) = top.get_raw(name) else {
        return Vec::new();
    };
    let Value::Map(raw) = &node.value else {
        d.error(
            "dict_type",
            &loc.parts(),
            Some(node.at()),
            format!(
                "`{name}` must be a mapping of names to entries, found {}",
                describe(node)
            ),
        );
        return Vec::new();
    };
    let mut out: Vec<(String, Pos, &'a Node)> = Vec::new();
    let mut seen: HashMap<&str, Pos> = HashMap::default();
    for (key, value) in fields::merged_entries(raw) {
        let Some(slug) = key_text(key, &loc, d) else {
            continue;
        };
        if let Some(first) = seen.get(slug) {
            d.error(
                "duplicate-key",
                &loc.at(slug).parts(),
                Some(key.at()),
                format!(
                    "`{slug}` is defined twice in `{name}` (first at line {}); names must be unique",
                    first.line
                ),
            );
            continue;
        }
        // Kept even when invalid: later references to it are not "unknown".
        check_slug(slug, &loc.at(slug), key.pos, d);
        seen.insert(slug, key.pos);
        out.push((slug.to_owned(), key.pos, value));
    }
    out
}

pub const SLUG_PATTERN: &str = "^[a-z0-9]+(-[a-z0-9]+)*$";

pub fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

fn check_slug(slug: &str, loc: &Loc, pos: Pos, d: &mut Diagnostics) {
    if !is_slug(slug) {
        d.error(
            "string_pattern_mismatch",
            &loc.parts(),
            Some(pos),
            format!(
                "`{slug}` is not a valid name: use lowercase letters, digits and single hyphens (pattern `{SLUG_PATTERN}`)"
            ),
        );
        return;
    }
    if slug.chars().count() > 50 {
        d.error(
            "string_too_long",
            &loc.parts(),
            Some(pos),
            format!("`{slug}` is too long: names have at most 50 characters"),
        );
    }
}

/// A reference to another entry by slug.
fn reference(node: &Node, loc: &Loc, d: &mut Diagnostics) -> Option<Ref> {
    let slug = fields::non_empty(node, loc, d)?;
    Some(Ref {
        slug,
        pos: node.pos,
    })
}

fn reference_list(node: &Node, loc: &Loc, d: &mut Diagnostics) -> Option<Vec<Ref>> {
    let items = fields::list(node, loc, d)?;
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        match reference(item, &loc.at(&i.to_string()), d) {
            Some(r) => out.push(r),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

// ---------------------------------------------------------------- extends

type RawEntries<'a> = Vec<(String, Pos, &'a Node)>;

/// Resolves `extends` on the raw entries: the parent's fields overlaid by the
/// child's (a shallow merge, as the Python nbkp does it). Returns, per
/// endpoint, its position and its resolved `(key, value)` entries.
fn resolve_extends<'a>(
    section: &[(String, Pos, &'a Node)],
    d: &mut Diagnostics,
) -> Vec<(String, Pos, ResolvedEntry<'a>)> {
    let mut out = Vec::new();
    let mut cycles: Vec<Vec<String>> = Vec::new();
    for (slug, pos, node) in section {
        let mut chain = vec![slug.clone()];
        let entry = resolve_one(section, node, &mut chain, &mut cycles, d);
        out.push((slug.clone(), *pos, entry));
    }
    out
}

/// An SSH endpoint's fields after `extends`, keyed by canonical field name.
pub struct ResolvedEntry<'a> {
    pub node: &'a Node,
    pub inherited: Vec<(String, Pos, &'a Node)>,
    pub parent: Option<String>,
    pub ok: bool,
}

fn entry_fields(node: &Node) -> RawEntries<'_> {
    let Value::Map(raw) = &node.value else {
        return Vec::new();
    };
    fields::merged_entries(raw)
        .into_iter()
        .filter_map(|(k, v)| match &k.value {
            Value::Scalar(s) => Some((s.text.replace('_', "-"), k.pos, v)),
            _ => None,
        })
        .collect()
}

/// Problems are reported once, by the endpoint that owns the bad `extends`
/// (`chain.len() == 1`); a cycle once for all its members.
fn resolve_one<'a>(
    section: &[(String, Pos, &'a Node)],
    node: &'a Node,
    chain: &mut Vec<String>,
    cycles: &mut Vec<Vec<String>>,
    d: &mut Diagnostics,
) -> ResolvedEntry<'a> {
    let own = entry_fields(node);
    let parent = own.iter().find(|(k, _, _)| k == "extends");
    let Some((_, _, parent_node)) = parent else {
        return ResolvedEntry {
            node,
            inherited: Vec::new(),
            parent: None,
            ok: true,
        };
    };
    let this = chain.last().cloned().unwrap_or_default();
    let loc = Loc::of(&["ssh-endpoints", &this, "extends"]);
    let mut scratch = Diagnostics::default();
    let Some(parent_slug) = fields::string(parent_node, &loc, &mut scratch) else {
        d.items.extend(scratch.items);
        return ResolvedEntry {
            node,
            inherited: Vec::new(),
            parent: None,
            ok: false,
        };
    };
    if chain.contains(&parent_slug) {
        let mut members: Vec<String> = chain
            .iter()
            .skip_while(|s| **s != parent_slug)
            .cloned()
            .collect();
        members.sort();
        if parent_slug == chain[0] && !cycles.contains(&members) {
            cycles.push(members);
            let mut shown = chain.clone();
            shown.push(parent_slug.clone());
            d.error(
                "circular-extends",
                &loc.parts(),
                Some(parent_node.at()),
                format!("Circular extends chain: {}", shown.join(" -> ")),
            );
        }
        return ResolvedEntry {
            node,
            inherited: Vec::new(),
            parent: Some(parent_slug),
            ok: false,
        };
    }
    let Some((_, _, parent_entry)) = section.iter().find(|(s, _, _)| *s == parent_slug) else {
        if chain.len() > 1 {
            return ResolvedEntry {
                node,
                inherited: Vec::new(),
                parent: Some(parent_slug),
                ok: false,
            };
        }
        d.error(
            "unknown-reference",
            &loc.parts(),
            Some(parent_node.at()),
            format!("Endpoint '{this}' extends unknown endpoint '{parent_slug}'"),
        );
        return ResolvedEntry {
            node,
            inherited: Vec::new(),
            parent: Some(parent_slug),
            ok: false,
        };
    };
    chain.push(parent_slug.clone());
    let parent_resolved = resolve_one(section, parent_entry, chain, cycles, d);
    chain.pop();
    if !parent_resolved.ok {
        return ResolvedEntry {
            node,
            inherited: Vec::new(),
            parent: Some(parent_slug),
            ok: false,
        };
    }
    // Inherited fields: the parent's own plus what it inherited, minus what
    // the child sets (or the exclusive partner of what the child sets).
    let mut inherited: RawEntries<'a> = parent_resolved.inherited;
    for entry in entry_fields(parent_resolved.node) {
        if !inherited.iter().any(|(k, _, _)| *k == entry.0) {
            inherited.push(entry);
        }
    }
    let child_sets = |k: &str| own.iter().any(|(ok, _, _)| ok == k);
    let partner = |k: &str| match k {
        "proxy-jump" => Some("proxy-jumps"),
        "proxy-jumps" => Some("proxy-jump"),
        "location" => Some("locations"),
        "locations" => Some("location"),
        _ => None,
    };
    if child_sets("connection-options")
        && inherited.iter().any(|(k, _, _)| k == "connection-options")
    {
        let pos = own
            .iter()
            .find(|(k, _, _)| k == "connection-options")
            .map(|e| e.1);
        d.warning(
            "shallow-extends",
            &["ssh-endpoints", this.as_str(), "connection-options"],
            pos,
            format!(
                "`connection-options` replaces the one inherited from `{parent_slug}` entirely (unset options fall back to defaults, not to `{parent_slug}`'s); repeat any you want to keep"
            ),
        );
    }
    let inherited = inherited
        .into_iter()
        .filter(|(k, _, _)| k != "extends" && !child_sets(k))
        .filter(|(k, _, _)| partner(k).is_none_or(|p| !child_sets(p)))
        .collect();
    ResolvedEntry {
        node,
        inherited,
        parent: Some(parent_slug),
        ok: true,
    }
}

// ---------------------------------------------------------------- ssh-endpoints

const SSH_KEYS: &[&str] = &[
    "slug",
    "host",
    "port",
    "user",
    "key",
    "connection-options",
    "proxy-jump",
    "proxy-jumps",
    "location",
    "locations",
    "extends",
    "max-parallel-syncs",
];

/// Reads a field from the endpoint itself, else from what it inherited.
struct SshSource<'a, 'b> {
    own: Fields<'a>,
    inherited: &'b [(String, Pos, &'a Node)],
}

impl<'a> SshSource<'a, '_> {
    fn get(&mut self, name: &str) -> Option<&'a Node> {
        if self.own.has(name) {
            return self.own.get(name);
        }
        self.own.consume(name);
        self.inherited
            .iter()
            .find(|(k, _, n)| k == name && !fields::is_null(n))
            .map(|(_, _, n)| *n)
    }
}

fn decode_ssh_endpoint(
    slug: &str,
    pos: Pos,
    entry: &ResolvedEntry<'_>,
    home: &Home,
    d: &mut Diagnostics,
) -> Option<SshEndpoint> {
    let loc = Loc::of(&["ssh-endpoints", slug]);
    let own = Fields::of(entry.node, loc.clone(), d)?;
    if !entry.ok {
        own.finish(SSH_KEYS, &mut Diagnostics::default());
        return None;
    }
    let mut src = SshSource {
        own,
        inherited: &entry.inherited,
    };
    let errors_before = d.items.len();
    src.own.consume("extends");
    src.own.consume("slug");

    let host = match src.get("host") {
        Some(n) => fields::non_empty(n, &loc.at("host"), d),
        None => {
            d.error(
                "missing",
                &loc.at("host").parts(),
                Some(pos),
                "`host` is required".into(),
            );
            None
        }
    };
    let port_node = src.get("port");
    let port = port_node
        .map(|n| fields::int_in(n, &loc.at("port"), d, 1, 65535))
        .unwrap_or(Some(22));
    let user = src
        .get("user")
        .and_then(|n| fields::non_empty(n, &loc.at("user"), d));
    let key = src
        .get("key")
        .and_then(|n| fields::non_empty(n, &loc.at("key"), d))
        .map(|k| home.expand(&k));
    let connection_options = match src.get("connection-options") {
        Some(n) => decode_connection_options(n, &loc.at("connection-options"), d),
        None => Some(ConnectionOptions::default()),
    };

    let proxy_jump = src
        .get("proxy-jump")
        .map(|n| (n, reference(n, &loc.at("proxy-jump"), d)));
    let proxy_jumps = src
        .get("proxy-jumps")
        .map(|n| (n, reference_list(n, &loc.at("proxy-jumps"), d)));
    let proxy_jumps = match (proxy_jump, proxy_jumps) {
        (Some(_), Some((n, _))) => {
            d.error(
                "mutually-exclusive",
                &loc.parts(),
                Some(n.at()),
                "proxy-jump and proxy-jumps are mutually exclusive".into(),
            );
            None
        }
        (Some((_, r)), None) => r.map(|r| vec![r]),
        (None, Some((_, list))) => list,
        (None, None) => Some(Vec::new()),
    };

    let location = src
        .get("location")
        .map(|n| (n, fields::non_empty(n, &loc.at("location"), d)));
    let locations = src
        .get("locations")
        .map(|n| (n, fields::string_list(n, &loc.at("locations"), d)));
    let locations = match (location, locations) {
        (Some(_), Some((n, _))) => {
            d.error(
                "mutually-exclusive",
                &loc.parts(),
                Some(n.at()),
                "location and locations are mutually exclusive".into(),
            );
            None
        }
        (Some((_, l)), None) => l.map(|l| vec![l]),
        (None, Some((_, l))) => l,
        (None, None) => Some(Vec::new()),
    };
    // How many syncs may use the host at once (see docs/concurrency.md).
    let max_parallel_syncs = src
        .get("max-parallel-syncs")
        .map(|n| fields::int_in(n, &loc.at("max-parallel-syncs"), d, 1, 64))
        .unwrap_or(Some(1));
    src.own.finish(SSH_KEYS, d);
    if d.items[errors_before..]
        .iter()
        .any(|x| x.severity == super::diagnostic::Severity::Error)
    {
        return None;
    }
    Some(SshEndpoint {
        slug: slug.to_string(),
        host: host?,
        port: u16::try_from(port?).ok()?,
        port_explicit: port_node.is_some(),
        user,
        key,
        connection_options: connection_options?,
        proxy_jumps: proxy_jumps?,
        locations: locations?,
        max_parallel_syncs: u32::try_from(max_parallel_syncs?).ok()?,
        extends: entry.parent.clone(),
        pos,
    })
}

const CONNECTION_KEYS: &[&str] = &[
    "connect-timeout",
    "compress",
    "server-alive-interval",
    "allow-agent",
    "look-for-keys",
    "banner-timeout",
    "auth-timeout",
    "channel-timeout",
    "strict-host-key-checking",
    "known-hosts-file",
    "forward-agent",
    "disabled-algorithms",
];

fn decode_connection_options(
    node: &Node,
    loc: &Loc,
    d: &mut Diagnostics,
) -> Option<ConnectionOptions> {
    let mut f = Fields::of(node, loc.clone(), d)?;
    let defaults = ConnectionOptions::default();
    let before = d.items.len();
    let positive = |n: &Node, l: &Loc, d: &mut Diagnostics| {
        fields::int_in(n, l, d, 1, i64::from(u32::MAX)).map(|v| v as u32)
    };
    let options = ConnectionOptions {
        connect_timeout: f
            .read("connect-timeout", d, positive)
            .unwrap_or(defaults.connect_timeout),
        compress: f.read("compress", d, fields::boolean).unwrap_or(false),
        server_alive_interval: f.read("server-alive-interval", d, positive),
        allow_agent: f.read("allow-agent", d, fields::boolean).unwrap_or(true),
        look_for_keys: f.read("look-for-keys", d, fields::boolean).unwrap_or(true),
        banner_timeout: f.read("banner-timeout", d, fields::float_min0),
        auth_timeout: f.read("auth-timeout", d, fields::float_min0),
        channel_timeout: f.read("channel-timeout", d, fields::float_min0),
        strict_host_key_checking: f
            .read("strict-host-key-checking", d, fields::boolean)
            .unwrap_or(true),
        known_hosts_file: f.read("known-hosts-file", d, fields::non_empty),
        forward_agent: f.read("forward-agent", d, fields::boolean).unwrap_or(false),
        disabled_algorithms: f.read("disabled-algorithms", d, |n, l, d| {
            let Value::Map(entries) = &n.value else {
                d.error(
                    "dict_type",
                    &l.parts(),
                    Some(n.at()),
                    format!(
                        "expected a mapping of names to lists, found {}",
                        describe(n)
                    ),
                );
                return None;
            };
            let mut out = IndexMap::new();
            for (k, v) in entries {
                let name = key_text(k, l, d)?.to_owned();
                let list = fields::string_list(v, &l.at(&name), d)?;
                out.insert(name, list);
            }
            Some(out)
        }),
    };
    f.finish(CONNECTION_KEYS, d);
    let failed = d.items[before..]
        .iter()
        .any(|x| x.severity == super::diagnostic::Severity::Error);
    (!failed).then_some(options)
}

// ---------------------------------------------------------------- volumes

const LOCAL_VOLUME_KEYS: &[&str] = &["slug", "type", "path", "mount"];
const REMOTE_VOLUME_KEYS: &[&str] = &[
    "slug",
    "type",
    "ssh-endpoint",
    "ssh-endpoints",
    "path",
    "mount",
];

fn decode_volume(
    slug: &str,
    pos: Pos,
    node: &Node,
    home: &Home,
    d: &mut Diagnostics,
) -> Option<Volume> {
    let loc = Loc::of(&["volumes", slug]);
    let mut f = Fields::of(node, loc.clone(), d)?;
    let before = d.items.len();
    f.consume("slug");
    let kind = match f.get("type") {
        None => {
            d.error(
                "union_tag_not_found",
                &loc.parts(),
                Some(pos),
                "`type` is required: `local` (this machine), `remote` (reached over SSH) or `rsync-daemon` (a module of an rsync daemon)".into(),
            );
            f.finish(REMOTE_VOLUME_KEYS, &mut Diagnostics::default());
            return None;
        }
        Some(n) => {
            let t = fields::string(n, &loc.at("type"), d);
            match t.as_deref() {
                Some("local") | Some("remote") => t,
                Some("rsync-daemon") => {
                    return super::daemon::decode_daemon_volume(slug, pos, f, home, d);
                }
                Some(other) => {
                    d.error(
                        "union_tag_invalid",
                        &loc.at("type").parts(),
                        Some(n.at()),
                        format!("unknown volume type `{other}`; expected `local`, `remote` or `rsync-daemon`"),
                    );
                    None
                }
                None => None,
            }
        }
    };
    let Some(kind) = kind else {
        f.finish(REMOTE_VOLUME_KEYS, &mut Diagnostics::default());
        return None;
    };
    let loc = loc.at(&kind);
    let local = kind == "local";

    let mount = f.read("mount", d, decode_mount);
    let path_node = f.get("path");
    let path = match path_node {
        Some(n) => fields::non_empty(n, &loc.at("path"), d).and_then(|p| {
            if local {
                let expanded = paths::normalise_local(&home.expand(&p));
                if !paths::is_absolute(&expanded) {
                    d.error(
                        "relative-path",
                        &loc.at("path").parts(),
                        Some(n.at()),
                        format!(
                            "local volume path `{p}` is relative; write an absolute path (or start it with `~`) so backups do not depend on the directory nbkp runs from"
                        ),
                    );
                    return None;
                }
                Some(expanded)
            } else {
                let normalised = paths::normalise_remote(&p);
                if !normalised.starts_with('/') && !normalised.starts_with('~') {
                    d.warning(
                        "relative-path",
                        &loc.at("path").parts(),
                        Some(n.at()),
                        format!(
                            "remote path `{p}` is relative: it is taken relative to the SSH user's home; write `~/{normalised}` to say so"
                        ),
                    );
                }
                Some(normalised)
            }
        }),
        None => {
            if !f.has("mount") {
                d.error(
                    "path-required",
                    &loc.parts(),
                    Some(pos),
                    format!("volume '{slug}': 'path' is required for volumes without a 'mount' section"),
                );
            }
            None
        }
    };

    let location = if local {
        Some(VolumeLocation::Local)
    } else {
        let primary = f.require("ssh-endpoint", d, reference);
        let candidates = f
            .read("ssh-endpoints", d, reference_list)
            .unwrap_or_default();
        primary.map(|ssh_endpoint| VolumeLocation::Remote {
            ssh_endpoint,
            ssh_endpoints: candidates,
        })
    };
    f.finish(
        if local {
            LOCAL_VOLUME_KEYS
        } else {
            REMOTE_VOLUME_KEYS
        },
        d,
    );
    let failed = d.items[before..]
        .iter()
        .any(|x| x.severity == super::diagnostic::Severity::Error);
    if failed {
        return None;
    }
    Some(Volume {
        slug: slug.to_string(),
        location: location?,
        path,
        mount,
        pos,
    })
}

const MOUNT_KEYS: &[&str] = &["device-uuid", "encryption"];
const ENCRYPTION_KEYS: &[&str] = &["type", "passphrase-id"];

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn decode_mount(node: &Node, loc: &Loc, d: &mut Diagnostics) -> Option<Mount> {
    let mut f = Fields::of(node, loc.clone(), d)?;
    let uuid = f.require("device-uuid", d, |n, l, d| {
        let s = fields::string(n, l, d)?;
        if !is_uuid(&s) {
            d.error(
                "string_pattern_mismatch",
                &l.parts(),
                Some(n.at()),
                format!(
                    "`{s}` is not a UUID (8-4-4-4-12 hexadecimal digits, as `blkid` prints it)"
                ),
            );
            return None;
        }
        Some(s)
    });
    let encryption = f.read("encryption", d, |n, l, d| {
        let mut e = Fields::of(n, l.clone(), d)?;
        let kind = e.read("type", d, |n, l, d| {
            let t = fields::string(n, l, d)?;
            if t != "luks" {
                d.error(
                    "literal_error",
                    &l.parts(),
                    Some(n.at()),
                    format!("unsupported encryption type `{t}`; the only one is `luks`"),
                );
                return None;
            }
            Some(())
        });
        let id = e.require("passphrase-id", d, fields::non_empty);
        let bad_type = e.has("type") && kind.is_none();
        e.finish(ENCRYPTION_KEYS, d);
        if bad_type {
            return None;
        }
        Some(Encryption {
            kind: "luks",
            passphrase_id: id?,
        })
    });
    let bad_encryption = f.has("encryption") && encryption.is_none();
    f.finish(MOUNT_KEYS, d);
    if bad_encryption {
        return None;
    }
    Some(Mount {
        device_uuid: uuid?,
        encryption,
    })
}

// ---------------------------------------------------------------- sync-endpoints

const ENDPOINT_KEYS: &[&str] = &[
    "slug",
    "volume",
    "subdir",
    "btrfs-snapshots",
    "hard-link-snapshots",
];
const SNAPSHOT_KEYS: &[&str] = &["enabled", "max-snapshots", "retention"];
const RETENTION_KEYS: &[&str] = &[
    "keep-last",
    "keep-within",
    "keep-hourly",
    "keep-daily",
    "keep-weekly",
    "keep-monthly",
    "keep-yearly",
    "max-age",
];

fn decode_snapshot_block(node: &Node, loc: &Loc, d: &mut Diagnostics) -> Option<(bool, Policy)> {
    let mut f = Fields::of(node, loc.clone(), d)?;
    let before = d.items.len();
    let enabled = f.read("enabled", d, fields::boolean).unwrap_or(false);
    let max = f.read("max-snapshots", d, |n, l, d| {
        fields::int_in(n, l, d, 1, i64::from(u32::MAX)).map(|v| v as u32)
    });
    let calendar = f.read("retention", d, decode_retention);
    f.finish(SNAPSHOT_KEYS, d);
    let failed = d.items[before..]
        .iter()
        .any(|x| x.severity == super::diagnostic::Severity::Error);
    let policy = Policy {
        max_snapshots: max,
        ..calendar.unwrap_or_default()
    };
    (!failed).then_some((enabled, policy))
}

/// The `retention:` block: calendar rules (see `crate::retention`).
fn decode_retention(node: &Node, loc: &Loc, d: &mut Diagnostics) -> Option<Policy> {
    let mut f = Fields::of(node, loc.clone(), d)?;
    let count = |n: &Node, l: &Loc, d: &mut Diagnostics| -> Option<Count> {
        if fields::is_str(n, "all") {
            return Some(Count::All);
        }
        if fields::scalar_text(n).is_some_and(|t| t.parse::<i64>().is_err()) {
            d.error(
                "count_parsing",
                &l.parts(),
                Some(n.at()),
                format!(
                    "expected a number of periods or `all`, found {}",
                    describe(n)
                ),
            );
            return None;
        }
        fields::int_in(n, l, d, 1, i64::from(u32::MAX)).map(|v| Count::N(v as u32))
    };
    let duration = |n: &Node, l: &Loc, d: &mut Diagnostics| -> Option<u64> {
        let Some(text) = fields::scalar_text(n) else {
            d.error(
                "duration_parsing",
                &l.parts(),
                Some(n.at()),
                format!("expected a duration such as `2d`, found {}", describe(n)),
            );
            return None;
        };
        match crate::retention::calendar::parse_duration(text) {
            Ok(secs) => Some(secs),
            Err(why) => {
                d.error("duration_parsing", &l.parts(), Some(n.at()), why);
                None
            }
        }
    };
    let policy = Policy {
        max_snapshots: None,
        keep_last: f.read("keep-last", d, |n, l, d| {
            fields::int_in(n, l, d, 1, i64::from(u32::MAX)).map(|v| v as u32)
        }),
        keep_within: f.read("keep-within", d, duration),
        keep_hourly: f.read("keep-hourly", d, count),
        keep_daily: f.read("keep-daily", d, count),
        keep_weekly: f.read("keep-weekly", d, count),
        keep_monthly: f.read("keep-monthly", d, count),
        keep_yearly: f.read("keep-yearly", d, count),
        max_age: f.read("max-age", d, duration),
    };
    f.finish(RETENTION_KEYS, d);
    Some(policy)
}

fn decode_sync_endpoint(
    slug: &str,
    pos: Pos,
    node: &Node,
    d: &mut Diagnostics,
) -> Option<SyncEndpoint> {
    let loc = Loc::of(&["sync-endpoints", slug]);
    let mut f = Fields::of(node, loc.clone(), d)?;
    let before = d.items.len();
    f.consume("slug");
    let volume = f.require("volume", d, reference);
    let subdir = f.read("subdir", d, |n, l, d| {
        let s = fields::string(n, l, d)?;
        if s.split('/').any(|part| part == "..") {
            d.error(
                "subdir-escapes",
                &l.parts(),
                Some(n.at()),
                format!("subdir `{s}` contains `..`: an endpoint must stay inside its volume"),
            );
            return None;
        }
        Some(paths::normalise_subdir(&s))
    });
    let btrfs = f.read("btrfs-snapshots", d, decode_snapshot_block);
    let hard_link = f.read("hard-link-snapshots", d, decode_snapshot_block);
    let snapshots = match (btrfs, hard_link) {
        (Some((true, _)), Some((true, _))) => {
            d.error(
                "mutually-exclusive",
                &loc.parts(),
                Some(pos),
                "btrfs-snapshots and hard-link-snapshots are mutually exclusive".into(),
            );
            SnapshotMode::None
        }
        (Some((true, retention)), _) => SnapshotMode::Btrfs { retention },
        (_, Some((true, retention))) => SnapshotMode::HardLink { retention },
        _ => SnapshotMode::None,
    };
    f.finish(ENDPOINT_KEYS, d);
    let failed = d.items[before..]
        .iter()
        .any(|x| x.severity == super::diagnostic::Severity::Error);
    if failed {
        return None;
    }
    Some(SyncEndpoint {
        slug: slug.to_string(),
        volume: volume?,
        subdir: subdir.flatten(),
        snapshots,
        pos,
    })
}

// ---------------------------------------------------------------- syncs

const SYNC_KEYS: &[&str] = &[
    "slug",
    "source",
    "destination",
    "enabled",
    "rsync-options",
    "filters",
    "filter-file",
    "hooks",
    "priority",
    "stale-after",
];
const PRIORITY_KEYS: &[&str] = &["nice", "ionice-class", "ionice-level"];
const RSYNC_KEYS: &[&str] = &[
    "compress",
    "checksum",
    "default-options-override",
    "extra-options",
];

fn decode_sync(
    slug: &str,
    pos: Pos,
    node: &Node,
    home: &Home,
    d: &mut Diagnostics,
) -> Option<Sync> {
    let loc = Loc::of(&["syncs", slug]);
    let mut f = Fields::of(node, loc.clone(), d)?;
    let before = d.items.len();
    f.consume("slug");
    let source = f.require("source", d, reference);
    let destination = f.require("destination", d, reference);
    let enabled = f.read("enabled", d, fields::boolean).unwrap_or(true);
    let rsync_options = f
        .read("rsync-options", d, |n, l, d| {
            let mut r = Fields::of(n, l.clone(), d)?;
            let options = RsyncOptions {
                compress: r.read("compress", d, fields::boolean).unwrap_or(false),
                checksum: r.read("checksum", d, fields::boolean).unwrap_or(false),
                default_options_override: r.read(
                    "default-options-override",
                    d,
                    fields::string_list,
                ),
                extra_options: r
                    .read("extra-options", d, fields::string_list)
                    .unwrap_or_default(),
            };
            r.finish(RSYNC_KEYS, d);
            Some(options)
        })
        .unwrap_or_default();
    let filters = f
        .read("filters", d, |n, l, d| decode_filters(n, l, home, d))
        .unwrap_or_default();
    let filter_file = f
        .read("filter-file", d, fields::non_empty)
        .map(|p| home.expand(&p));
    let hooks = f
        .read("hooks", d, |n, l, d| {
            super::hooks::decode_hooks(n, l, home, d)
        })
        .unwrap_or_default();
    let priority = f.read("priority", d, decode_priority);
    let stale_after_seconds = f
        .read("stale-after", d, decode_stale_after)
        .unwrap_or(Some(DEFAULT_STALE_AFTER_SECONDS));
    f.finish(SYNC_KEYS, d);
    let failed = d.items[before..]
        .iter()
        .any(|x| x.severity == super::diagnostic::Severity::Error);
    if failed {
        return None;
    }
    Some(Sync {
        slug: slug.to_string(),
        source: source?,
        destination: destination?,
        enabled,
        rsync_options,
        filters,
        filter_file,
        hooks,
        priority,
        stale_after_seconds,
        pos,
    })
}

/// `priority: {nice: 10, ionice-class: idle}` (or `best-effort` with an
/// `ionice-level`). Only lowering is allowed: a raised priority needs root
/// and is never what a background backup wants.
fn decode_priority(node: &Node, loc: &Loc, d: &mut Diagnostics) -> Option<Priority> {
    let mut p = Fields::of(node, loc.clone(), d)?;
    let before = d.items.len();
    let nice = p
        .read("nice", d, |n, l, d| fields::int_in(n, l, d, 0, 19))
        .map(|n| n as u8);
    let ionice_class = p.read("ionice-class", d, |n, l, d| {
        let name = fields::string(n, l, d)?;
        let class = match name.as_str() {
            "idle" => Some(IoniceClass::Idle),
            "best-effort" => Some(IoniceClass::BestEffort),
            _ => None,
        };
        if class.is_none() {
            d.error(
                "enum",
                &l.parts(),
                Some(n.at()),
                format!(
                    "unknown ionice class `{name}`; expected one of: {}",
                    IoniceClass::NAMES.join(", ")
                ),
            );
        }
        class
    });
    let level_node = p.get_raw("ionice-level");
    let level_loc = p.field_loc("ionice-level");
    let ionice_level = p
        .read("ionice-level", d, |n, l, d| fields::int_in(n, l, d, 0, 7))
        .map(|n| n as u8);
    if let (Some(n), Some(_)) = (level_node, ionice_level) {
        if ionice_class != Some(IoniceClass::BestEffort) {
            d.error(
                "ionice-level",
                &level_loc.parts(),
                Some(n.at()),
                "`ionice-level` applies only with `ionice-class: best-effort`".into(),
            );
        }
    }
    p.finish(PRIORITY_KEYS, d);
    if d.items[before..]
        .iter()
        .any(|x| x.severity == super::diagnostic::Severity::Error)
    {
        return None;
    }
    Some(Priority {
        nice,
        ionice_class,
        ionice_level,
    })
}

/// `stale-after: 7d` (units m, h, d, w), or `never`. `Some(None)`: never.
fn decode_stale_after(node: &Node, loc: &Loc, d: &mut Diagnostics) -> Option<Option<u64>> {
    let text = match &node.value {
        Value::Scalar(s) if s.kind == super::yaml::ScalarKind::Bool(false) => {
            return Some(None);
        }
        Value::Scalar(s) => s.text.trim().to_string(),
        _ => String::new(),
    };
    if text == "never" {
        return Some(None);
    }
    match parse_duration(&text) {
        Some(seconds) if seconds > 0 => Some(Some(seconds)),
        _ => {
            d.error(
                "duration",
                &loc.parts(),
                Some(node.at()),
                format!(
                    "expected a duration such as `12h`, `7d` or `2w` (units m, h, d, w), or `never`; found {}",
                    describe(node)
                ),
            );
            None
        }
    }
}

/// `90m`, `12h`, `7d`, `2w` in seconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    let digits = text.chars().take_while(char::is_ascii_digit).count();
    let (n, unit) = text.split_at(digits);
    let n: u64 = n.parse().ok()?;
    let unit_seconds = match unit {
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    n.checked_mul(unit_seconds)
}

/// Python-style repr of a node, for messages that quote what was written.
fn repr(node: &Node) -> String {
    match &node.value {
        Value::Scalar(s) => match s.kind {
            super::yaml::ScalarKind::Str => format!("'{}'", s.text),
            super::yaml::ScalarKind::Null => "None".into(),
            super::yaml::ScalarKind::Bool(b) => if b { "True" } else { "False" }.into(),
            _ => s.text.clone(),
        },
        Value::Seq(items) => format!(
            "[{}]",
            items.iter().map(repr).collect::<Vec<_>>().join(", ")
        ),
        Value::Map(entries) => format!(
            "{{{}}}",
            entries
                .iter()
                .map(|(k, v)| format!("{}: {}", repr(k), repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Filter entries → plain rsync rules, in order (spec §1.8).
fn decode_filters(node: &Node, loc: &Loc, home: &Home, d: &mut Diagnostics) -> Option<Vec<String>> {
    let items = match &node.value {
        Value::Seq(items) => items,
        Value::Map(_) => {
            d.error(
                "filters-not-a-list",
                &loc.parts(),
                Some(node.at()),
                format!(
                    "filters must be a list, not a mapping. Add '- ' before each filter rule. Got: {}",
                    repr(node)
                ),
            );
            return None;
        }
        Value::Scalar(s) => {
            d.error(
                "filters-not-a-list",
                &loc.parts(),
                Some(node.at()),
                format!(
                    "filters must be a list, not a single string. Write it as a one-item list: filters: ['{}']",
                    s.text
                ),
            );
            return None;
        }
    };
    let mut rules = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let item_loc = loc.at(&i.to_string());
        match filter_rules(item, &item_loc, home, d) {
            Some(mut r) => rules.append(&mut r),
            None => ok = false,
        }
    }
    ok.then_some(rules)
}

fn filter_rules(item: &Node, loc: &Loc, home: &Home, d: &mut Diagnostics) -> Option<Vec<String>> {
    let invalid = |d: &mut Diagnostics| {
        d.error(
            "invalid-filter",
            &loc.parts(),
            Some(item.at()),
            format!(
                "Filter must be a string or a dict with 'include'/'exclude'/'merge'/'dir-merge' key, got: {}",
                repr(item)
            ),
        );
        None
    };
    let entries = match &item.value {
        Value::Scalar(s) if s.kind == super::yaml::ScalarKind::Str => {
            if s.text.trim().is_empty() {
                d.error(
                    "invalid-filter",
                    &loc.parts(),
                    Some(item.at()),
                    "an empty filter rule does nothing; remove it".into(),
                );
                return None;
            }
            return Some(vec![s.text.clone()]);
        }
        Value::Map(entries) => entries,
        _ => return invalid(d),
    };
    let find = |name: &str| {
        entries.iter().find_map(|(k, v)| match &k.value {
            Value::Scalar(s) if s.text == name => Some(v),
            _ => None,
        })
    };
    let text = |v: &Node| match &v.value {
        Value::Scalar(s) if s.kind == super::yaml::ScalarKind::Str => Some(s.text.clone()),
        _ => None,
    };
    if let Some(v) = find("include") {
        return text(v)
            .map(|p| vec![format!("+ {p}")])
            .or_else(|| invalid(d));
    }
    if let Some(v) = find("exclude") {
        return text(v)
            .map(|p| vec![format!("- {p}")])
            .or_else(|| invalid(d));
    }
    if let Some(v) = find("merge") {
        return text(v)
            .map(|p| vec![format!("merge {}", home.expand(&p))])
            .or_else(|| invalid(d));
    }
    if let Some(v) = find("dir-merge") {
        if let Some(name) = text(v) {
            return Some(vec![format!("dir-merge {name}")]);
        }
        let Value::Map(options) = &v.value else {
            return invalid(d);
        };
        let mut unknown: Vec<String> = options
            .iter()
            .filter_map(|(k, _)| match &k.value {
                Value::Scalar(s) if s.text != "path" && s.text != "exclude-self" => {
                    Some(s.text.clone())
                }
                _ => None,
            })
            .collect();
        if !unknown.is_empty() {
            unknown.sort();
            d.error(
                "unknown-dir-merge-option",
                &loc.parts(),
                Some(v.at()),
                format!(
                    "Unknown dir-merge option(s): {}. Allowed: exclude-self, path",
                    unknown.join(", ")
                ),
            );
            return None;
        }
        let option = |name: &str| {
            options.iter().find_map(|(k, v)| match &k.value {
                Value::Scalar(s) if s.text == name => Some(v),
                _ => None,
            })
        };
        let Some(path) = option("path").and_then(text) else {
            return invalid(d);
        };
        let exclude_self = match option("exclude-self") {
            Some(n) => fields::boolean(n, &loc.at("exclude-self"), d)?,
            None => false,
        };
        let mut rules = vec![format!("dir-merge {path}")];
        if exclude_self {
            rules.push(format!("- {path}"));
        }
        return Some(rules);
    }
    invalid(d)
}

/// Every key the decoder understands, for the docs check.
pub fn known_keys() -> Vec<&'static str> {
    let mut keys: Vec<&'static str> = [
        TOP_KEYS,
        SSH_KEYS,
        CONNECTION_KEYS,
        LOCAL_VOLUME_KEYS,
        REMOTE_VOLUME_KEYS,
        MOUNT_KEYS,
        ENCRYPTION_KEYS,
        ENDPOINT_KEYS,
        SNAPSHOT_KEYS,
        RETENTION_KEYS,
        SYNC_KEYS,
        PRIORITY_KEYS,
        RSYNC_KEYS,
        super::hooks::HOOK_KEYS,
        super::monitoring::MONITORING_KEYS,
        super::daemon::DAEMON_VOLUME_KEYS,
        &[
            "include",
            "exclude",
            "merge",
            "dir-merge",
            "path",
            "exclude-self",
        ],
    ]
    .concat();
    keys.sort_unstable();
    keys.dedup();
    keys
}
