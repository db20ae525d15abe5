//! `nbkp config show`: the config with everything resolved.

use crate::cli::{ConfigShowArgs, OutputFormat};
use crate::config::{Config, SnapshotMode, VolumeLocation};
use crate::output::{print_json, table::Table};
use crate::plan::rsync::sync_options;

pub fn run(args: &ConfigShowArgs) -> i32 {
    let loaded = match super::load_config(args.file.config.as_deref(), args.output) {
        Ok(l) => l,
        Err(code) => return code,
    };
    match args.output {
        OutputFormat::Json => print_json(&loaded.config),
        OutputFormat::Human => {
            println!("Config: {}\n", loaded.path.display());
            print!("{}", render_human(&loaded.config));
        }
    }
    0
}

fn or_dash(v: Option<&str>) -> String {
    v.unwrap_or("-").to_string()
}

pub fn render_human(config: &Config) -> String {
    let mut out = String::new();
    let provider = config.credential_provider.name();
    out.push_str(&format!("Credential provider: {provider}"));
    if let Some(cmd) = &config.credential_command {
        out.push_str(&format!(" ({})", cmd.join(" ")));
    }
    out.push_str("\n\n");

    let mut ssh = Table::new(
        "SSH endpoints",
        &[
            "name",
            "host",
            "port",
            "user",
            "key",
            "via",
            "locations",
            "options",
        ],
    );
    for ep in config.ssh_endpoints.values() {
        let o = &ep.connection_options;
        let mut options = vec![format!("connect-timeout={}", o.connect_timeout)];
        if o.compress {
            options.push("compress".into());
        }
        if let Some(n) = o.server_alive_interval {
            options.push(format!("server-alive-interval={n}"));
        }
        if !o.strict_host_key_checking {
            options.push("no-strict-host-key-checking".into());
        }
        if let Some(f) = &o.known_hosts_file {
            options.push(format!("known-hosts-file={f}"));
        }
        if o.forward_agent {
            options.push("forward-agent".into());
        }
        if let Some(parent) = &ep.extends {
            options.push(format!("extends {parent}"));
        }
        let via: Vec<&str> = ep.proxy_jumps.iter().map(|r| r.slug.as_str()).collect();
        ssh.row(vec![
            ep.slug.clone(),
            ep.host.clone(),
            ep.port.to_string(),
            or_dash(ep.user.as_deref()),
            or_dash(ep.key.as_deref()),
            if via.is_empty() {
                "-".into()
            } else {
                via.join(" → ")
            },
            if ep.locations.is_empty() {
                "-".into()
            } else {
                ep.locations.join(", ")
            },
            options.join("\n"),
        ]);
    }
    if !ssh.is_empty() {
        out.push_str(&ssh.render());
        out.push('\n');
    }

    let mut volumes = Table::new("Volumes", &["name", "where", "path", "mount"]);
    for v in config.volumes.values() {
        let place = match &v.location {
            VolumeLocation::Local => "local".to_string(),
            VolumeLocation::RsyncDaemon(d) => {
                let mut place = format!("rsync daemon {}", d.shown());
                if d.password_command.is_some() {
                    place.push_str("\npassword from a command");
                }
                place
            }
            VolumeLocation::Remote {
                ssh_endpoint,
                ssh_endpoints,
            } => {
                if ssh_endpoints.is_empty() {
                    format!("remote via {}", ssh_endpoint.slug)
                } else {
                    let c: Vec<&str> = ssh_endpoints.iter().map(|r| r.slug.as_str()).collect();
                    format!("remote via first of {}", c.join(", "))
                }
            }
        };
        let mount = match &v.mount {
            None => "-".to_string(),
            Some(m) => match &m.encryption {
                None => format!("device {}", m.device_uuid),
                Some(e) => format!("LUKS {}\npassphrase id {}", m.device_uuid, e.passphrase_id),
            },
        };
        let path = match (&v.path, v.daemon()) {
            (Some(p), _) => p.clone(),
            (None, Some(_)) => "(the module's root)".into(),
            (None, None) => "(mount point found when mounted)".into(),
        };
        volumes.row(vec![v.slug.clone(), place, path, mount]);
    }
    if !volumes.is_empty() {
        out.push_str(&volumes.render());
        out.push('\n');
    }

    let mut endpoints = Table::new("Sync endpoints", &["name", "volume", "path", "snapshots"]);
    for e in config.sync_endpoints.values() {
        let snapshots = match e.snapshots {
            SnapshotMode::None => "-".to_string(),
            mode => format!("{}, {}", mode.name(), mode.retention().describe()),
        };
        let daemon = config.volumes.get(&e.volume.slug).and_then(|v| v.daemon());
        let path = match (config.endpoint_path(e), daemon) {
            (Some(p), _) => p,
            (None, Some(d)) => crate::config::join(&d.shown(), e.subdir.as_deref()),
            (None, None) => format!("<mount point>/{}", e.subdir.as_deref().unwrap_or("")),
        };
        endpoints.row(vec![e.slug.clone(), e.volume.slug.clone(), path, snapshots]);
    }
    if !endpoints.is_empty() {
        out.push_str(&endpoints.render());
        out.push('\n');
    }

    let mut syncs = Table::new("Syncs", &["name", "source → destination", "enabled"]);
    for s in config.syncs.values() {
        syncs.row(vec![
            s.slug.clone(),
            format!("{} → {}", s.source.slug, s.destination.slug),
            if s.enabled { "yes" } else { "no" }.into(),
        ]);
    }
    if !syncs.is_empty() {
        out.push_str(&syncs.render());
        out.push_str("\nEffective rsync options (before run-time flags and paths)\n");
        for s in config.syncs.values() {
            out.push_str(&format!("  {}:\n", s.slug));
            let words: Vec<String> = sync_options(s)
                .iter()
                .map(|w| crate::shell::quote(w))
                .collect();
            for line in wrap(&words, 88) {
                out.push_str(&format!("    {line}\n"));
            }
            if let Some(p) = &s.priority {
                out.push_str(&format!("    priority: {}\n", describe_priority(p)));
            }
        }
    }
    out.push_str(&render_hooks(config));
    if config.syncs.is_empty() && config.volumes.is_empty() {
        out.push_str("(the config declares nothing yet)\n");
    }
    out
}

/// Each sync's hooks in the order they run (global ones around the sync's own).
fn render_hooks(config: &Config) -> String {
    let quoted = |argv: &Vec<String>| {
        argv.iter()
            .map(|w| crate::shell::quote(w))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut out = String::new();
    for s in config.syncs.values() {
        let g = &config.hooks;
        let h = &s.hooks;
        if g.is_empty() && h.is_empty() {
            continue;
        }
        if out.is_empty() {
            out.push_str("\nHooks (run on this machine, in this order)\n");
        }
        out.push_str(&format!("  {}:\n", s.slug));
        let lists = [
            ("before", [(&g.before, "global"), (&h.before, "sync")]),
            ("after", [(&h.after, "sync"), (&g.after, "global")]),
            (
                "on-failure",
                [(&h.on_failure, "sync"), (&g.on_failure, "global")],
            ),
        ];
        for (kind, parts) in lists {
            for (commands, scope) in parts {
                for argv in commands.iter() {
                    out.push_str(&format!("    {kind:<10}  {:<6}  {}\n", scope, quoted(argv)));
                }
            }
        }
    }
    out
}

/// `nice 19, ionice idle` / `ionice best-effort 7`.
fn describe_priority(p: &crate::config::Priority) -> String {
    let mut parts = Vec::new();
    if let Some(n) = p.nice {
        parts.push(format!("nice {n}"));
    }
    match (p.ionice_class, p.ionice_level) {
        (Some(crate::config::IoniceClass::Idle), _) => parts.push("ionice idle".into()),
        (Some(crate::config::IoniceClass::BestEffort), Some(l)) => {
            parts.push(format!("ionice best-effort {l}"))
        }
        (Some(crate::config::IoniceClass::BestEffort), None) => {
            parts.push("ionice best-effort".into())
        }
        (None, _) => {}
    }
    if parts.is_empty() {
        "unchanged".into()
    } else {
        parts.join(", ")
    }
}

/// Joins words into lines of at most `width` characters (a long word stands alone).
fn wrap(words: &[String], width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for w in words {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + w.chars().count() <= width => {
                line.push(' ');
                line.push_str(w);
            }
            _ => lines.push(w.clone()),
        }
    }
    lines
}
