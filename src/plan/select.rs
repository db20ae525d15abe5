//! Choosing how to reach each remote volume for this run (spec §4.5), and
//! filling endpoints from `~/.ssh/config` (spec §4.4).
//!
//! This is the only planning step that looks at the world (DNS, the user's
//! ssh config); it runs before lowering, whose input it becomes, so lowering
//! itself stays a pure function.

use std::net::{IpAddr, ToSocketAddrs};

use indexmap::IndexMap;

use super::ssh::Endpoint;
use crate::config::{Config, SshEndpoint};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    Private,
    Public,
}

/// `-l/--location`, `-L/--exclude-location`, `-N/--network`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectOptions {
    pub locations: Vec<String>,
    pub exclude_locations: Vec<String>,
    pub network: Option<Network>,
}

impl SelectOptions {
    fn any(&self) -> bool {
        !self.locations.is_empty() || !self.exclude_locations.is_empty() || self.network.is_some()
    }
}

/// What the world looks like to this run: DNS and `~/.ssh/config`.
pub trait World {
    /// The addresses `host` resolves to (after `~/.ssh/config` `HostName`), or none.
    fn resolve(&self, host: &str) -> Vec<IpAddr>;
    /// `~/.ssh/config` values for `host`.
    fn ssh_config(&self, host: &str) -> SshConfigEntry;
}

/// The values of `~/.ssh/config` nbkp uses (first obtained value wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshConfigEntry {
    pub host_name: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub identity_file: Option<String>,
}

/// How each remote volume is reached in this run.
#[derive(Debug, Clone, PartialEq)]
pub enum VolumeRoute {
    Via(Box<Endpoint>),
    /// Every candidate endpoint has an excluded location.
    Excluded,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    /// Remote volumes only, keyed by volume slug.
    pub routes: IndexMap<String, VolumeRoute>,
}

/// Rejects location names the config never declares (exit 2 in the CLI).
pub fn check_locations(config: &Config, opts: &SelectOptions) -> Result<(), String> {
    let mut known: Vec<&str> = config
        .ssh_endpoints
        .values()
        .flat_map(|e| e.locations.iter().map(String::as_str))
        .collect();
    known.sort_unstable();
    known.dedup();
    let given = opts.locations.iter().map(|l| (l, "--location")).chain(
        opts.exclude_locations
            .iter()
            .map(|l| (l, "--exclude-location")),
    );
    for (loc, flag) in given {
        if known.is_empty() {
            return Err("no locations are defined in the configuration. --location and --exclude-location cannot be used.".into());
        }
        if !known.contains(&loc.as_str()) {
            return Err(format!(
                "unknown location '{loc}' passed to {flag}. Known locations: {}",
                known.join(", ")
            ));
        }
    }
    Ok(())
}

/// Picks an endpoint for every remote volume.
pub fn select(config: &Config, opts: &SelectOptions, world: &dyn World) -> Selection {
    let mut routes = IndexMap::new();
    for (slug, volume) in &config.volumes {
        let candidates: Vec<&SshEndpoint> = volume
            .candidates()
            .iter()
            .filter_map(|r| config.ssh_endpoints.get(&r.slug))
            .collect();
        if candidates.is_empty() {
            continue;
        }
        let route = match choose(&candidates, opts, world) {
            Some(ep) => VolumeRoute::Via(Box::new(enrich(config, ep, world, &mut Vec::new()))),
            None => VolumeRoute::Excluded,
        };
        routes.insert(slug.clone(), route);
    }
    Selection { routes }
}

fn has_location(ep: &SshEndpoint, set: &[String]) -> bool {
    ep.locations.iter().any(|l| set.contains(l))
}

fn choose<'c>(
    candidates: &[&'c SshEndpoint],
    opts: &SelectOptions,
    world: &dyn World,
) -> Option<&'c SshEndpoint> {
    if !opts.any() {
        return candidates.first().copied();
    }
    if !opts.exclude_locations.is_empty()
        && candidates
            .iter()
            .all(|c| has_location(c, &opts.exclude_locations))
    {
        return None;
    }
    // Each soft filter keeps the previous list if it would remove everything.
    let soft = |list: Vec<&'c SshEndpoint>, keep: &dyn Fn(&SshEndpoint) -> bool| {
        let kept: Vec<&SshEndpoint> = list.iter().copied().filter(|c| keep(c)).collect();
        if kept.is_empty() {
            list
        } else {
            kept
        }
    };
    // Each candidate is looked up once, however many filters ask.
    let resolved: Vec<(String, Vec<IpAddr>)> = candidates
        .iter()
        .map(|c| {
            let name = world
                .ssh_config(&c.host)
                .host_name
                .unwrap_or_else(|| c.host.clone());
            (c.slug.clone(), world.resolve(&name))
        })
        .collect();
    let addresses = |c: &SshEndpoint| {
        resolved
            .iter()
            .find(|(slug, _)| *slug == c.slug)
            .map(|(_, a)| a.clone())
            .unwrap_or_default()
    };
    let mut list: Vec<&SshEndpoint> = candidates.to_vec();
    list = soft(list, &|c| !addresses(c).is_empty());
    if !opts.exclude_locations.is_empty() {
        list = soft(list, &|c| !has_location(c, &opts.exclude_locations));
    }
    if !opts.locations.is_empty() {
        list = soft(list, &|c| has_location(c, &opts.locations));
    }
    if let Some(net) = opts.network {
        list = soft(list, &|c| {
            let addrs = addresses(c);
            match net {
                Network::Private => !addrs.is_empty() && addrs.iter().all(is_private),
                Network::Public => addrs.iter().any(|a| !is_private(a)),
            }
        });
    }
    list.first().copied()
}

/// Fills port, user and key from `~/.ssh/config` where the nbkp config did
/// not set them, for the endpoint and each of its hops.
fn enrich(
    config: &Config,
    ep: &SshEndpoint,
    world: &dyn World,
    seen: &mut Vec<String>,
) -> Endpoint {
    seen.push(ep.slug.clone());
    let hops = ep
        .proxy_jumps
        .iter()
        .filter(|r| !seen.contains(&r.slug))
        .filter_map(|r| config.ssh_endpoints.get(&r.slug))
        .map(|hop| enrich(config, hop, world, &mut seen.clone()))
        .collect();
    let mut out = Endpoint::from_config(ep, hops);
    let entry = world.ssh_config(&ep.host);
    if !ep.port_explicit {
        if let Some(p) = entry.port {
            out.port = p;
        }
    }
    if out.user.is_none() {
        out.user = entry.user;
    }
    if out.key.is_none() {
        out.key = entry.identity_file;
    }
    out
}

/// Python's `ipaddress.is_private` for the ranges that matter here.
pub fn is_private(addr: &IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => {
            let o = a.octets();
            a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || o[0] == 0
                || (o[0] == 192 && o[1] == 0 && (o[2] == 0 || o[2] == 2))
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
                || (o[0] == 198 && o[1] == 51 && o[2] == 100)
                || (o[0] == 203 && o[1] == 0 && o[2] == 113)
                || o[0] >= 240
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            a.is_loopback()
                || a.is_unspecified()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || a.to_ipv4_mapped()
                    .is_some_and(|v4| is_private(&IpAddr::V4(v4)))
        }
    }
}

/// The real world: getaddrinfo and `~/.ssh/config`.
pub struct SystemWorld {
    ssh_config: Option<String>,
    home: Option<String>,
}

impl SystemWorld {
    pub fn new() -> SystemWorld {
        let home = std::env::var("HOME").ok();
        let ssh_config = home
            .as_ref()
            .and_then(|h| std::fs::read_to_string(format!("{h}/.ssh/config")).ok());
        SystemWorld { ssh_config, home }
    }
}

impl Default for SystemWorld {
    fn default() -> Self {
        Self::new()
    }
}

impl World for SystemWorld {
    fn resolve(&self, host: &str) -> Vec<IpAddr> {
        (host, 22)
            .to_socket_addrs()
            .map(|it| it.map(|a| a.ip()).collect())
            .unwrap_or_default()
    }

    fn ssh_config(&self, host: &str) -> SshConfigEntry {
        match &self.ssh_config {
            Some(text) => parse_ssh_config(text, host, self.home.as_deref()),
            None => SshConfigEntry::default(),
        }
    }
}

/// `Host` blocks of an OpenSSH client config that apply to `host`; the first
/// value obtained for each key wins, as ssh(1) does it. `Match` blocks and
/// `Include` are not followed (ssh itself still honours them).
pub fn parse_ssh_config(text: &str, host: &str, home: Option<&str>) -> SshConfigEntry {
    let mut entry = SshConfigEntry::default();
    let mut active = true;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once(|c: char| c.is_whitespace() || c == '=') {
            Some((k, v)) => (
                k.to_ascii_lowercase(),
                v.trim_start_matches(|c: char| c.is_whitespace() || c == '=')
                    .trim(),
            ),
            None => continue,
        };
        let value = value.trim_matches('"');
        match key.as_str() {
            "host" => active = host_matches(value, host),
            "match" => active = false,
            _ if !active => {}
            "hostname" if entry.host_name.is_none() => {
                entry.host_name = Some(value.replace("%h", host))
            }
            "port" if entry.port.is_none() => entry.port = value.parse().ok(),
            "user" if entry.user.is_none() => entry.user = Some(value.to_string()),
            "identityfile" if entry.identity_file.is_none() => {
                let path = match (value.strip_prefix("~/"), home) {
                    (Some(rest), Some(h)) => format!("{}/{rest}", h.trim_end_matches('/')),
                    _ => value.to_string(),
                };
                entry.identity_file = Some(path);
            }
            _ => {}
        }
    }
    entry
}

fn host_matches(patterns: &str, host: &str) -> bool {
    let mut matched = false;
    for p in patterns.split_whitespace() {
        if let Some(neg) = p.strip_prefix('!') {
            if glob(neg, host) {
                return false;
            }
        } else if glob(p, host) {
            matched = true;
        }
    }
    matched
}

fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_config_first_value_wins_and_wildcards_apply() {
        let text = "Host nasalias\n  HostName 10.0.0.5\n  Port 2200\n  User alice\n  IdentityFile ~/.ssh/id_alias\n  IdentityFile ~/.ssh/id_other\nHost *\n  User fallbackuser\n";
        let e = parse_ssh_config(text, "nasalias", Some("/home/me"));
        assert_eq!(e.host_name.as_deref(), Some("10.0.0.5"));
        assert_eq!(e.port, Some(2200));
        assert_eq!(e.user.as_deref(), Some("alice"));
        assert_eq!(e.identity_file.as_deref(), Some("/home/me/.ssh/id_alias"));
        let other = parse_ssh_config(text, "other.example", Some("/home/me"));
        assert_eq!(other.user.as_deref(), Some("fallbackuser"));
        assert_eq!(other.port, None);
    }

    #[test]
    fn private_addresses() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "169.254.1.1",
            "::1",
            "fd00::1",
            "fe80::1",
        ] {
            assert!(is_private(&a.parse().unwrap()), "{a}");
        }
        for a in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(!is_private(&a.parse().unwrap()), "{a}");
        }
    }
}
