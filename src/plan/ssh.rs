//! ssh command lines (spec §4.1–4.2), plus the connection sharing that makes
//! one login per host per run: every ssh of a run goes through one OpenSSH
//! control master whose socket lives in the run's private directory.

use serde::Serialize;

use super::args::{Arg, Piece, Var};
use crate::config::{ConnectionOptions, SshEndpoint};
use crate::shell::quote;

/// How long the shared connection outlives its last user. Long enough to
/// bridge the gap between a sync's steps; the run closes it explicitly.
pub const CONTROL_PERSIST_SECONDS: u32 = 60;

/// Seconds added to a host's connect timeouts to bound its probes: the
/// login, starting `sh` and answering take well under a second once
/// connected.
pub const PROBE_MARGIN_SECONDS: u32 = 1;

/// How long a host's probes may take: its own `connect-timeout`, each
/// proxy hop's (they connect one after another), and the margin.
pub fn probe_bound(ep: &Endpoint) -> u32 {
    ep.options.connect_timeout
        + ep.hops
            .iter()
            .map(|h| h.options.connect_timeout)
            .sum::<u32>()
        + PROBE_MARGIN_SECONDS
}

/// An endpoint with `~/.ssh/config` values filled in where the config left
/// them unset (spec §4.4), and its proxy hops, first hop first.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub slug: String,
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub key: Option<String>,
    pub options: ConnectionOptions,
    pub hops: Vec<Endpoint>,
}

impl Endpoint {
    /// From the config alone, without `~/.ssh/config` (used by tests and as
    /// the starting point of enrichment).
    pub fn from_config(ep: &SshEndpoint, hops: Vec<Endpoint>) -> Endpoint {
        Endpoint {
            slug: ep.slug.clone(),
            host: ep.host.clone(),
            port: ep.port,
            user: ep.user.clone(),
            key: ep.key.clone(),
            options: ep.connection_options.clone(),
            hops,
        }
    }

    /// `[user@]host`.
    pub fn destination(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}", self.host),
            None => self.host.clone(),
        }
    }
}

/// The `-o` options of §4.1, in their order.
fn option_args(o: &ConnectionOptions) -> Vec<String> {
    let mut args = vec![
        format!("ConnectTimeout={}", o.connect_timeout),
        "BatchMode=yes".into(),
    ];
    if o.compress {
        args.push("Compression=yes".into());
    }
    if let Some(n) = o.server_alive_interval {
        args.push(format!("ServerAliveInterval={n}"));
    }
    if !o.strict_host_key_checking {
        args.push("StrictHostKeyChecking=no".into());
    }
    if let Some(f) = &o.known_hosts_file {
        args.push(format!("UserKnownHostsFile={f}"));
    }
    if !o.strict_host_key_checking && o.known_hosts_file.is_some() {
        args.push("LogLevel=ERROR".into());
    }
    if o.forward_agent {
        args.push("ForwardAgent=yes".into());
    }
    args.into_iter()
        .flat_map(|a| ["-o".to_string(), a])
        .collect()
}

/// Core arguments of an endpoint, without the host (spec §4.1).
pub fn core_args(ep: &Endpoint) -> Vec<String> {
    let mut args = option_args(&ep.options);
    if ep.port != 22 {
        args.push("-p".into());
        args.push(ep.port.to_string());
    }
    if let Some(k) = &ep.key {
        args.push("-i".into());
        args.push(k.clone());
    }
    if let Some(proxy) = proxy_command(&ep.hops) {
        args.push("-o".into());
        args.push(format!("ProxyCommand={proxy}"));
    }
    args
}

/// Nested `ProxyCommand`s, so every hop keeps its own options (spec §4.2).
fn proxy_command(hops: &[Endpoint]) -> Option<String> {
    let mut inner: Option<String> = None;
    for hop in hops {
        let mut words = option_args(&hop.options);
        if let Some(prev) = &inner {
            words.push("-o".into());
            words.push(format!("ProxyCommand={}", prev.replace('%', "%%")));
        }
        if hop.port != 22 {
            words.push("-p".into());
            words.push(hop.port.to_string());
        }
        if let Some(k) = &hop.key {
            words.push("-i".into());
            words.push(k.clone());
        }
        words.push("-W".into());
        words.push("%h:%p".into());
        words.push(hop.destination());
        let line: Vec<String> = std::iter::once("ssh".to_string())
            .chain(words)
            .map(|w| quote(&w))
            .collect();
        inner = Some(line.join(" "));
    }
    inner
}

/// `ssh` with connection sharing, the endpoint's options and its destination.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SshCommand {
    /// Everything between `ssh` and the destination.
    pub args: Vec<Arg>,
    /// `[user@]host`.
    pub destination: String,
    /// The shared connection's control socket: it exists once the
    /// connection is up, so a session opened after that shares it.
    pub control_socket: Arg,
}

impl SshCommand {
    /// For host `id` (used for the control socket's name).
    pub fn new(ep: &Endpoint, id: &str) -> SshCommand {
        let control_socket = Arg::template(vec![
            Piece::Var(Var::ControlDir),
            Piece::Lit(format!("/{id}")),
        ]);
        let mut args = vec![
            Arg::lit("-o"),
            control_socket.with_prefix("ControlPath="),
            Arg::lit("-o"),
            Arg::lit("ControlMaster=auto"),
            Arg::lit("-o"),
            Arg::lit(format!("ControlPersist={CONTROL_PERSIST_SECONDS}")),
        ];
        args.extend(core_args(ep).into_iter().map(Arg::lit));
        SshCommand {
            args,
            destination: ep.destination(),
            control_socket,
        }
    }

    /// `ssh <args>` as one word, for rsync's `-e`.
    pub fn rsync_shell(&self) -> Arg {
        let mut words = vec![Arg::lit("ssh")];
        words.extend(self.args.iter().cloned());
        Arg::RshJoined(words)
    }

    /// `ssh <args> <destination> <command>`: the full argv.
    pub fn argv(&self, command: Arg) -> Vec<Arg> {
        let mut argv = vec![Arg::lit("ssh")];
        argv.extend(self.args.iter().cloned());
        argv.push(Arg::lit(self.destination.clone()));
        argv.push(command);
        argv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(slug: &str, host: &str) -> Endpoint {
        Endpoint {
            slug: slug.into(),
            host: host.into(),
            port: 22,
            user: None,
            key: None,
            options: ConnectionOptions::default(),
            hops: Vec::new(),
        }
    }

    #[test]
    fn core_args_follow_the_python_order() {
        let mut e = ep("t", "127.0.0.1");
        e.port = 2299;
        e.key = Some("/home/me/.ssh/k".into());
        e.user = Some("root".into());
        e.options.strict_host_key_checking = false;
        e.options.known_hosts_file = Some("/dev/null".into());
        assert_eq!(
            core_args(&e).join(" "),
            "-o ConnectTimeout=10 -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -p 2299 -i /home/me/.ssh/k"
        );
        assert_eq!(e.destination(), "root@127.0.0.1");
    }

    #[test]
    fn two_hop_proxy_chain_nests_and_doubles_percent_signs() {
        let mut b1 = ep("b1", "127.0.0.1");
        b1.user = Some("root".into());
        b1.port = 2299;
        b1.key = Some("KEY".into());
        b1.options.strict_host_key_checking = false;
        b1.options.known_hosts_file = Some("/dev/null".into());
        let mut b2 = b1.clone();
        b2.slug = "b2".into();
        b2.options.connect_timeout = 5;
        let mut t = b1.clone();
        t.options.compress = true;
        t.options.forward_agent = true;
        t.hops = vec![b1, b2];
        let expected = "-o ConnectTimeout=10 -o BatchMode=yes -o Compression=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ForwardAgent=yes -p 2299 -i KEY -o ProxyCommand=ssh -o ConnectTimeout=5 -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o 'ProxyCommand=ssh -o ConnectTimeout=10 -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -p 2299 -i KEY -W %%h:%%p root@127.0.0.1' -p 2299 -i KEY -W %h:%p root@127.0.0.1";
        assert_eq!(core_args(&t).join(" "), expected);
    }

    #[test]
    fn keepalive_and_compression() {
        let mut e = ep("t", "h");
        e.options.server_alive_interval = Some(60);
        e.options.compress = true;
        e.options.connect_timeout = 3;
        assert_eq!(
            core_args(&e).join(" "),
            "-o ConnectTimeout=3 -o BatchMode=yes -o Compression=yes -o ServerAliveInterval=60"
        );
    }

    #[test]
    fn a_probe_is_bounded_by_every_hop_s_connect_timeout_plus_the_margin() {
        let mut t = ep("t", "nas");
        assert_eq!(probe_bound(&t), 10 + PROBE_MARGIN_SECONDS);
        let mut hop = ep("b", "bastion");
        hop.options.connect_timeout = 5;
        t.options.connect_timeout = 3;
        t.hops = vec![hop.clone(), hop];
        assert_eq!(probe_bound(&t), 3 + 5 + 5 + PROBE_MARGIN_SECONDS);
    }
}
