//! Rules that span entries: references, overlapping endpoints, shared
//! destinations, cycles, credentials — and the orphan warnings.
//!
//! Unlike the Python nbkp, which stops at the first such problem, every
//! problem is reported.

use std::collections::{HashMap, HashSet};

use super::declared::Declared;
use super::diagnostic::Diagnostics;
use super::model::*;
use crate::ordering;

pub fn validate(config: &Config, declared: &Declared, d: &mut Diagnostics) {
    proxy_references(config, declared, d);
    volume_references(config, declared, d);
    endpoint_overlaps(config, d);
    sync_references(config, declared, d);
    credentials(config, d);
    super::daemon::validate(config, declared, d);
    if !d.has_errors() {
        cycles(config, d);
    }
    orphans(config, d);
}

fn proxy_references(config: &Config, declared: &Declared, d: &mut Diagnostics) {
    for (slug, ep) in &config.ssh_endpoints {
        for (i, hop) in ep.proxy_jumps.iter().enumerate() {
            if !declared.ssh_endpoints.contains(&hop.slug) {
                let field = if ep.proxy_jumps.len() == 1 {
                    "proxy-jump"
                } else {
                    "proxy-jumps"
                };
                let index = i.to_string();
                let mut loc = vec!["ssh-endpoints", slug.as_str(), field];
                if field == "proxy-jumps" {
                    loc.push(&index);
                }
                d.error(
                    "unknown-reference",
                    &loc,
                    Some(hop.pos),
                    format!(
                        "Server '{slug}' references unknown proxy-jump server '{}'",
                        hop.slug
                    ),
                );
            }
        }
    }
    // A chain that revisits an endpoint would make ssh loop forever. Each
    // cycle is reported once, at the first endpoint (file order) on it.
    let mut reported: Vec<String> = Vec::new();
    for (slug, ep) in &config.ssh_endpoints {
        if reported.contains(slug) {
            continue;
        }
        let mut seen = vec![slug.as_str()];
        let mut frontier: Vec<&str> = ep.proxy_jumps.iter().map(|r| r.slug.as_str()).collect();
        let mut cyclic = false;
        while let Some(hop) = frontier.pop() {
            if seen.contains(&hop) {
                cyclic = true;
                reported.extend(seen.iter().map(|s| s.to_string()));
                break;
            }
            seen.push(hop);
            if let Some(next) = config.ssh_endpoints.get(hop) {
                frontier.extend(next.proxy_jumps.iter().map(|r| r.slug.as_str()));
            }
        }
        if cyclic {
            d.error(
                "circular-proxy-jump",
                &["ssh-endpoints", slug],
                Some(ep.proxy_jumps.first().map_or(ep.pos, |r| r.pos)),
                format!("Circular proxy-jump chain detected starting from server '{slug}'"),
            );
        }
    }
}

fn volume_references(config: &Config, declared: &Declared, d: &mut Diagnostics) {
    for (slug, volume) in &config.volumes {
        if let VolumeLocation::Remote {
            ssh_endpoint,
            ssh_endpoints,
        } = &volume.location
        {
            let all = std::iter::once(("ssh-endpoint".to_string(), ssh_endpoint)).chain(
                ssh_endpoints
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (format!("ssh-endpoints → {i}"), r)),
            );
            for (field, r) in all {
                if !declared.ssh_endpoints.contains(&r.slug) {
                    d.error(
                        "unknown-reference",
                        &["volumes", slug, "remote", &field],
                        Some(r.pos),
                        format!(
                            "Volume '{slug}' references unknown ssh-endpoint '{}'",
                            r.slug
                        ),
                    );
                }
            }
        }
    }
    for (slug, ep) in &config.sync_endpoints {
        if !declared.volumes.contains(&ep.volume.slug) {
            d.error(
                "unknown-reference",
                &["sync-endpoints", slug, "volume"],
                Some(ep.volume.pos),
                format!(
                    "Sync endpoint '{slug}' references unknown volume '{}'",
                    ep.volume.slug
                ),
            );
        }
    }
}

/// Subdir (`""` for the root) → the endpoint that first claimed it.
type SubdirIndex<'c> = HashMap<&'c str, &'c SyncEndpoint>;

fn endpoint_overlaps(config: &Config, d: &mut Diagnostics) {
    // Per volume, each endpoint's subdir ("" for the root) → the first
    // endpoint declaring it. An endpoint overlaps another when its own subdir
    // or one of its ancestors (the root included) is taken, or when it is
    // itself an ancestor of one seen before.
    let mut by_volume: HashMap<&str, (SubdirIndex, SubdirIndex)> = HashMap::default();
    for b in config.sync_endpoints.values() {
        let (exact, descendants) = by_volume.entry(b.volume.slug.as_str()).or_default();
        let sb = b.subdir.as_deref().unwrap_or("");
        if let Some(a) = exact.get(sb) {
            let sub = if sb.is_empty() {
                String::new()
            } else {
                format!(" subdir '{sb}'")
            };
            d.error(
                "duplicate-endpoint-location",
                &["sync-endpoints", &b.slug],
                Some(b.pos),
                format!(
                    "Sync endpoints '{}' and '{}' both target volume '{}'{sub}",
                    a.slug, b.slug, a.volume.slug
                ),
            );
            continue;
        }
        let ancestors = ancestors(sb);
        let nested = |child: &SyncEndpoint, parent: &SyncEndpoint| {
            format!(
                "Sync endpoint '{}' is nested inside '{}' on volume '{}': overlapping endpoint paths are not supported because sync dependencies cannot be detected between them",
                child.slug, parent.slug, child.volume.slug
            )
        };
        if let Some(parent) = ancestors.iter().find_map(|a| exact.get(a)) {
            d.error(
                "nested-endpoint",
                &["sync-endpoints", &b.slug],
                Some(b.pos),
                nested(b, parent),
            );
        } else if let Some(child) = descendants.get(sb) {
            d.error(
                "nested-endpoint",
                &["sync-endpoints", &child.slug],
                Some(child.pos),
                nested(child, b),
            );
        }
        exact.insert(sb, b);
        for a in ancestors {
            descendants.entry(a).or_insert(b);
        }
    }
}

/// Proper ancestors of a subdir, the volume root (`""`) first.
fn ancestors(subdir: &str) -> Vec<&str> {
    if subdir.is_empty() {
        return Vec::new();
    }
    let mut out = vec![""];
    out.extend(subdir.match_indices('/').map(|(i, _)| &subdir[..i]));
    out
}

fn sync_references(config: &Config, declared: &Declared, d: &mut Diagnostics) {
    for (slug, sync) in &config.syncs {
        for (field, r) in [("source", &sync.source), ("destination", &sync.destination)] {
            if !declared.sync_endpoints.contains(&r.slug) {
                d.error(
                    "unknown-reference",
                    &["syncs", slug, field],
                    Some(r.pos),
                    format!(
                        "Sync '{slug}' references unknown {field} endpoint '{}'",
                        r.slug
                    ),
                );
            }
        }
        if sync.source.slug == sync.destination.slug {
            d.error(
                "self-sync",
                &["syncs", slug, "destination"],
                Some(sync.destination.pos),
                format!(
                    "Sync '{slug}' has the same source and destination endpoint '{}'; a sync must copy somewhere else",
                    sync.source.slug
                ),
            );
        }
    }
    let mut writers: HashMap<&str, &Sync> = HashMap::default();
    for b in config.syncs.values() {
        if let Some(a) = writers.get(b.destination.slug.as_str()) {
            {
                d.error(
                    "shared-destination",
                    &["syncs", &b.slug, "destination"],
                    Some(b.destination.pos),
                    format!(
                        "Syncs '{}' and '{}' share destination endpoint '{}'",
                        a.slug, b.slug, a.destination.slug
                    ),
                );
            }
        } else {
            writers.insert(b.destination.slug.as_str(), b);
        }
    }
    for (slug, sync) in &config.syncs {
        let host = |r: &Ref| {
            let ep = config.sync_endpoints.get(&r.slug)?;
            config.volumes.get(&ep.volume.slug)?.primary_endpoint()
        };
        if let (Some(a), Some(b)) = (host(&sync.source), host(&sync.destination)) {
            if a != b {
                d.error(
                    "cross-server-sync",
                    &["syncs", slug, "destination"],
                    Some(sync.destination.pos),
                    format!(
                        "Sync '{slug}' has source on '{a}' and destination on '{b}'. Cross-server remote-to-remote syncs are not supported. Use two separate syncs through the local machine instead."
                    ),
                );
            }
        }
    }
}

fn credentials(config: &Config, d: &mut Diagnostics) {
    match &config.credential_command {
        None if config.credential_provider == CredentialProvider::Command => d.error(
            "credential-command-required",
            &["credential-provider"],
            config.credential_pos.0,
            "credential-command is required when credential-provider is 'command'".into(),
        ),
        Some(cmd) if !cmd.iter().any(|w| w.contains("{id}")) => d.error(
            "credential-command-placeholder",
            &["credential-command"],
            config.credential_pos.1,
            "credential-command must contain the '{id}' placeholder".into(),
        ),
        _ => {}
    }
}

fn cycles(config: &Config, d: &mut Diagnostics) {
    let all: Vec<&str> = config.syncs.keys().map(String::as_str).collect();
    if let Err(cycle) = ordering::topological(config, &all) {
        let first = &cycle[0];
        d.error(
            "cyclic-dependency",
            &["syncs", first],
            config.syncs.get(first.as_str()).map(|s| s.pos),
            format!("Cyclic sync dependency detected: {}", cycle.join(" -> ")),
        );
    }
}

fn orphans(config: &Config, d: &mut Diagnostics) {
    let mut used_endpoints: HashSet<&str> = HashSet::default();
    for v in config.volumes.values() {
        used_endpoints.extend(v.primary_endpoint());
        used_endpoints.extend(v.candidates().iter().map(|r| r.slug.as_str()));
    }
    for e in config.ssh_endpoints.values() {
        used_endpoints.extend(e.proxy_jumps.iter().map(|r| r.slug.as_str()));
    }
    let used_volumes: HashSet<&str> = config
        .sync_endpoints
        .values()
        .map(|e| e.volume.slug.as_str())
        .collect();
    let used_sync_endpoints: HashSet<&str> = config
        .syncs
        .values()
        .flat_map(|s| [s.source.slug.as_str(), s.destination.slug.as_str()])
        .collect();
    for (slug, ep) in &config.ssh_endpoints {
        if !used_endpoints.contains(slug.as_str()) {
            d.warning(
                "orphan",
                &["ssh-endpoints", slug],
                Some(ep.pos),
                format!("SSH endpoint '{slug}' is not referenced by any volume"),
            );
        }
    }
    for (slug, v) in &config.volumes {
        if !used_volumes.contains(slug.as_str()) {
            d.warning(
                "orphan",
                &["volumes", slug],
                Some(v.pos),
                format!("Volume '{slug}' is not referenced by any sync endpoint"),
            );
        }
    }
    for (slug, e) in &config.sync_endpoints {
        if !used_sync_endpoints.contains(slug.as_str()) {
            d.warning(
                "orphan",
                &["sync-endpoints", slug],
                Some(e.pos),
                format!("Sync endpoint '{slug}' is not referenced by any sync"),
            );
        }
    }
}
