//! Rules that span entries: references, overlapping endpoints, shared
//! destinations, cycles, credentials — and the orphan warnings.
//!
//! Unlike the Python nbkp, which stops at the first such problem, every
//! problem is reported.

use super::decode::Declared;
use super::diagnostic::Diagnostics;
use super::model::*;
use crate::ordering;

pub fn validate(config: &Config, declared: &Declared, d: &mut Diagnostics) {
    proxy_references(config, declared, d);
    volume_references(config, declared, d);
    endpoint_overlaps(config, d);
    sync_references(config, declared, d);
    credentials(config, d);
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

fn endpoint_overlaps(config: &Config, d: &mut Diagnostics) {
    let eps: Vec<&SyncEndpoint> = config.sync_endpoints.values().collect();
    for (i, a) in eps.iter().enumerate() {
        for b in &eps[i + 1..] {
            if a.volume.slug != b.volume.slug {
                continue;
            }
            let (sa, sb) = (
                a.subdir.as_deref().unwrap_or(""),
                b.subdir.as_deref().unwrap_or(""),
            );
            if sa == sb {
                let sub = if sa.is_empty() {
                    String::new()
                } else {
                    format!(" subdir '{sa}'")
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
            let contains = |outer: &str, inner: &str| {
                outer.is_empty() || format!("{inner}/").starts_with(&format!("{outer}/"))
            };
            let pair = if contains(sa, sb) {
                Some((b, a))
            } else if contains(sb, sa) {
                Some((a, b))
            } else {
                None
            };
            if let Some((child, parent)) = pair {
                d.error(
                    "nested-endpoint",
                    &["sync-endpoints", &child.slug],
                    Some(child.pos),
                    format!(
                        "Sync endpoint '{}' is nested inside '{}' on volume '{}': overlapping endpoint paths are not supported because sync dependencies cannot be detected between them",
                        child.slug, parent.slug, a.volume.slug
                    ),
                );
            }
        }
    }
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
    let syncs: Vec<&Sync> = config.syncs.values().collect();
    for (i, a) in syncs.iter().enumerate() {
        for b in &syncs[i + 1..] {
            if a.destination.slug == b.destination.slug {
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
    for (slug, ep) in &config.ssh_endpoints {
        let used_by_volume = config.volumes.values().any(|v| {
            v.primary_endpoint() == Some(slug) || v.candidates().iter().any(|r| r.slug == *slug)
        });
        let used_as_hop = config
            .ssh_endpoints
            .values()
            .any(|e| e.proxy_jumps.iter().any(|r| r.slug == *slug));
        if !used_by_volume && !used_as_hop {
            d.warning(
                "orphan",
                &["ssh-endpoints", slug],
                Some(ep.pos),
                format!("SSH endpoint '{slug}' is not referenced by any volume"),
            );
        }
    }
    for (slug, v) in &config.volumes {
        if !config
            .sync_endpoints
            .values()
            .any(|e| e.volume.slug == *slug)
        {
            d.warning(
                "orphan",
                &["volumes", slug],
                Some(v.pos),
                format!("Volume '{slug}' is not referenced by any sync endpoint"),
            );
        }
    }
    for (slug, e) in &config.sync_endpoints {
        if !config
            .syncs
            .values()
            .any(|s| s.source.slug == *slug || s.destination.slug == *slug)
        {
            d.warning(
                "orphan",
                &["sync-endpoints", slug],
                Some(e.pos),
                format!("Sync endpoint '{slug}' is not referenced by any sync"),
            );
        }
    }
}
