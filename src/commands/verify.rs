//! `nbkp verify`: a snapshot (or plain mirror) compared with its source,
//! file by file, through the sync's own rsync command turned into a dry
//! run that itemises: `--checksum` reads every file once on each side
//! (each side on its own host), `--quick` compares size and mtime only.

use serde::Serialize;

use super::backup::{self, Item, Target};
use crate::cli::{OutputFormat, VerifyArgs};
use crate::exec::values::{argv as expand_argv, Values};
use crate::output::print_json;
use crate::plan::rsync::{self, Direction};
use crate::plan::{Arg, Host, Site};

#[derive(Serialize, Default, Debug, PartialEq)]
pub struct Findings {
    /// In the source, not in the snapshot.
    pub missing: Vec<String>,
    /// In the snapshot, not in the source (respecting the sync's filters).
    pub extra: Vec<String>,
    /// Other content with the same modification time: the copy changed
    /// after it was written (a damaged drive), or the source was changed
    /// and its time put back.
    pub different: Vec<String>,
    /// Other content and another modification time: the source changed
    /// since the snapshot was taken.
    pub changed_since: Vec<String>,
    /// Only permissions, owner or times differ (not counted as unequal).
    pub attributes: Vec<String>,
}

impl Findings {
    pub fn equal(&self) -> bool {
        self.missing.is_empty()
            && self.extra.is_empty()
            && self.different.is_empty()
            && self.changed_since.is_empty()
    }
}

#[derive(Serialize)]
struct Report {
    sync: String,
    /// `null` for a plain mirror.
    snapshot: Option<String>,
    source: String,
    destination: String,
    /// `checksum` or `quick` (size and mtime).
    method: &'static str,
    /// `equal`, `different`, or `failed` (then `error` says why).
    result: &'static str,
    #[serde(flatten)]
    findings: Findings,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The document: a struct, so the keys keep their order.
#[derive(Serialize)]
struct Doc<'a> {
    syncs: &'a [Report],
}

pub fn run(args: &VerifyArgs) -> i32 {
    let (config, plan) = match backup::load(
        args.file.config.as_deref(),
        &args.select,
        &args.mount,
        args.sync.clone(),
        args.output,
    ) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let slugs: Vec<&str> = if args.sync.is_empty() {
        plan.syncs.iter().map(|s| s.slug.as_str()).collect()
    } else {
        args.sync.iter().map(String::as_str).collect()
    };
    if args.snapshot.as_deref().is_some_and(|s| s != "latest") && slugs.len() != 1 {
        eprintln!("Error: --snapshot NAME needs exactly one -s SYNC");
        return super::EXIT_USAGE;
    }
    let mut targets = Vec::new();
    for slug in &slugs {
        match backup::target(&config, &plan, slug) {
            Ok(t) if t.source.is_none() && args.sync.is_empty() => {
                eprintln!("Note: {slug}: skipped (its source is an rsync daemon's module)");
            }
            Ok(t) => targets.push(t),
            // Every sync, not one named: one that cannot be read back
            // (a daemon's module) is left out, and said so.
            Err(e) if args.sync.is_empty() => eprintln!("Note: skipped: {e}"),
            Err(e) => {
                eprintln!("Error: {e}");
                return super::EXIT_USAGE;
            }
        }
    }
    backup::with_hosts(&plan, |hosts, v| {
        let reports: Vec<Report> = targets
            .iter()
            .map(|t| verify_one(args, t, &plan.hosts, hosts, v))
            .collect();
        match args.output {
            OutputFormat::Json => print_json(&Doc { syncs: &reports }),
            OutputFormat::Human => print!("{}", human(&reports)),
        }
        i32::from(reports.iter().any(|r| r.result != "equal"))
    })
}

fn verify_one(
    args: &VerifyArgs,
    t: &Target,
    plan_hosts: &[Host],
    hosts: &crate::exec::hosts::Hosts,
    v: &Values,
) -> Report {
    let mut r = Report {
        sync: t.slug.to_string(),
        snapshot: None,
        source: t
            .source
            .map_or_else(|| t.sync.source.slug.clone(), |s| s.shown.clone()),
        destination: t.dest.shown.clone(),
        method: if args.quick { "quick" } else { "checksum" },
        result: "failed",
        findings: Findings::default(),
        error: None,
    };
    let Some(source) = t.source else {
        r.error = Some("the source is an rsync daemon's module: not verified".into());
        return r;
    };
    let snapshot = match backup::open_snapshot(hosts, v, t.dest, args.snapshot.as_deref()) {
        Ok((_, s)) => s,
        Err(e) => {
            r.error = Some(e);
            return r;
        }
    };
    r.snapshot = snapshot.clone();
    let content = backup::content_dir(&t.dest.path, snapshot.as_deref());
    let words = match rsync_argv(t.sync, plan_hosts, source, t.dest, content) {
        Ok(w) => w,
        Err(e) => {
            r.error = Some(e);
            return r;
        }
    };
    let mut values = v.clone();
    values.run_flags = run_flags(args.quick);
    let argv = expand_argv(&words, &values);
    // The sync's command deletes (--delete): only ever as a dry run.
    if !is_dry_run(&argv) {
        r.error = Some("internal error: the comparison is not a dry run; not run".into());
        return r;
    }
    let out = backup::run(&argv, false);
    if out.code != 0 {
        r.error = Some(format!(
            "rsync exited with code {}: {}",
            out.code,
            out.stderr.trim()
        ));
        return r;
    }
    let (items, _) = backup::parse_items(&out.stdout);
    r.findings = classify(&items);
    r.result = if r.findings.equal() {
        "equal"
    } else {
        "different"
    };
    r
}

/// The flags that make the sync's transfer a comparison: nothing is
/// written (`--dry-run`), every difference is itemised, files only in
/// the snapshot show as deletions, and content is compared by checksum
/// unless `quick`.
pub fn run_flags(quick: bool) -> Vec<String> {
    let mut f: Vec<String> = ["--dry-run", backup::OUT_FORMAT, "--delete"]
        .map(String::from)
        .to_vec();
    if !quick {
        f.push("--checksum".into());
    }
    f
}

/// Whether rsync's argv (or, run on a remote host, its command line) has
/// `--dry-run` as a word.
pub fn is_dry_run(argv: &[String]) -> bool {
    argv.iter()
        .any(|a| a == "--dry-run" || a.split(' ').any(|w| w == "--dry-run"))
}

/// The sync's own rsync command (its options, filters, priority and
/// ssh), from the source as the sync reads it to the snapshot's folder,
/// without `--link-dest`. Push and pull compute each side's checksums on
/// that side's host; a source and destination on one remote host are
/// compared there.
pub fn rsync_argv(
    sync: &crate::config::Sync,
    hosts: &[Host],
    source: &Site,
    dest: &Site,
    content: Arg,
) -> Result<Vec<Arg>, String> {
    let ssh = |h: usize| {
        hosts[h]
            .ssh
            .as_ref()
            .ok_or("no ssh command for a remote host")
    };
    let direction = match (source.host, dest.host) {
        (0, 0) => Direction::Local,
        (0, d) => Direction::Push(ssh(d)?),
        (s, 0) => Direction::Pull(ssh(s)?),
        (s, d) if s == d => Direction::OnRemote(ssh(d)?),
        _ => {
            return Err(
                "source and destination are on two other hosts: verify on one of them".into(),
            )
        }
    };
    let from = if source.snapshots == "none" {
        source.path.with_suffix("/")
    } else {
        source.path.with_suffix("/latest/")
    };
    Ok(rsync::command(sync, direction, from, content, false, false))
}

/// Sorts rsync's itemised lines into what `verify` reports.
pub fn classify(items: &[Item]) -> Findings {
    let mut f = Findings::default();
    for i in items {
        if i.is_deletion() {
            f.extra.push(i.name.clone());
        } else if i.is_new() {
            f.missing.push(i.name.clone());
        } else if i.kind() == 'd' {
            // A folder's own attributes (its mtime follows its content).
        } else if i.attributes_only() {
            f.attributes.push(i.name.clone());
        } else if i.time_differs() {
            f.changed_since.push(i.name.clone());
        } else {
            f.different.push(i.name.clone());
        }
    }
    f
}

fn human(reports: &[Report]) -> String {
    let mut out = String::new();
    if reports.is_empty() {
        out.push_str("No syncs selected.\n");
    }
    for r in reports {
        let what = match &r.snapshot {
            Some(s) => format!("snapshot {s} of {}", r.destination),
            None => r.destination.clone(),
        };
        let how = if r.method == "quick" {
            "size and time"
        } else {
            "content"
        };
        let verdict = match r.result {
            "equal" => "EQUAL".to_string(),
            "different" => "NOT EQUAL".to_string(),
            _ => format!("NOT VERIFIED: {}", r.error.as_deref().unwrap_or("")),
        };
        out.push_str(&format!(
            "{}: {what} vs {} (by {how}): {verdict}\n",
            r.sync, r.source
        ));
        let f = &r.findings;
        for (title, names) in [
            (
                "different content, same size and time (damaged copy?)",
                &f.different,
            ),
            ("changed in the source since the snapshot", &f.changed_since),
            ("missing from the snapshot", &f.missing),
            ("only in the snapshot", &f.extra),
            ("attributes differ (not counted)", &f.attributes),
        ] {
            if !names.is_empty() {
                out.push_str(&format!("  {title} ({}):\n", names.len()));
                for n in names {
                    out.push_str(&format!("    {}\n", n.escape_debug()));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConnectionOptions;
    use crate::plan::ssh::{Endpoint, SshCommand};
    use crate::retention::Policy;

    #[test]
    fn sorting_differences() {
        let (items, _) = backup::parse_items(
            b">fc........ rot\n>fcst...... edited\n>f+++++++++ new\n*deleting   old\n\
              .f...p..... chmod\n.d..t...... dir/\ncd+++++++++ newdir/\n",
        );
        let f = classify(&items);
        assert_eq!(f.different, ["rot"]);
        assert_eq!(f.changed_since, ["edited"]);
        assert_eq!(f.missing, ["new", "newdir/"]);
        assert_eq!(f.extra, ["old"]);
        assert_eq!(f.attributes, ["chmod"]);
        assert!(!f.equal());
        assert!(classify(&backup::parse_items(b".f...p..... x\n").0).equal());
    }

    #[test]
    fn the_comparison_never_writes() {
        for quick in [false, true] {
            let f = run_flags(quick);
            assert_eq!(f[0], "--dry-run");
            assert_eq!(f[1], "--out-format=%i %n");
            assert_eq!(f.contains(&"--checksum".to_string()), !quick);
        }
    }

    fn site(host: usize, path: &str, mode: &'static str) -> Site {
        Site {
            slug: "s".into(),
            host,
            volume: "v".into(),
            volume_path: Arg::lit("/v"),
            path: Arg::lit(path.to_string()),
            shown: path.into(),
            source: true,
            destination: true,
            snapshots: mode,
            retention: Policy::default(),
            expect_mount: false,
        }
    }

    fn sync() -> crate::config::Sync {
        let yaml = "volumes:\n  a: {type: local, path: /a}\n  b: {type: local, path: /b}\nsync-endpoints:\n  src: {volume: a}\n  dst: {volume: b}\nsyncs:\n  s1: {source: src, destination: dst, filters: ['- *.tmp']}\n";
        let home = crate::config::paths::Home {
            current: Some("/home/me".into()),
            passwd: None,
        };
        let loaded = crate::config::load_str(yaml, std::path::Path::new("t.yaml"), &home)
            .unwrap_or_else(|e| panic!("{}", e.render()));
        loaded.config.syncs["s1"].clone()
    }

    #[test]
    fn the_syncs_own_command_pointed_at_the_snapshot() {
        let hosts = vec![Host {
            name: "localhost".into(),
            id: "h0".into(),
            ssh: None,
            probes: vec![],
            session_fds: None,
            waiting_session: None,
            probe_bound: None,
        }];
        let w: Vec<String> = rsync_argv(
            &sync(),
            &hosts,
            &site(0, "/a/up", "hard-link"),
            &site(0, "/b", "hard-link"),
            Arg::lit("/b/snapshots/S/"),
        )
        .unwrap()
        .iter()
        .map(Arg::display)
        .collect();
        assert!(w.contains(&"--filter=- *.tmp".to_string()), "{w:?}");
        assert!(w.contains(&"[run flags]".to_string()));
        assert!(!w.iter().any(|x| x.contains("link-dest")));
        assert_eq!(&w[w.len() - 2..], ["/a/up/latest/", "/b/snapshots/S/"]);
    }

    #[test]
    fn remote_sides_are_compared_where_they_are() {
        let ep = Endpoint {
            slug: "nas".into(),
            host: "10.0.0.2".into(),
            port: 22,
            user: None,
            key: None,
            options: ConnectionOptions::default(),
            hops: Vec::new(),
        };
        let mut hosts = vec![Host {
            name: "localhost".into(),
            id: "h0".into(),
            ssh: None,
            probes: vec![],
            session_fds: None,
            waiting_session: None,
            probe_bound: None,
        }];
        let mut remote = hosts[0].clone();
        remote.ssh = Some(SshCommand::new(&ep, "h1"));
        hosts.push(remote.clone());
        hosts.push(remote);
        let argv = |s: usize, d: usize| {
            rsync_argv(
                &sync(),
                &hosts,
                &site(s, "/a", "none"),
                &site(d, "/b", "none"),
                Arg::lit("/b/"),
            )
            .map(|w| w.iter().map(Arg::display).collect::<Vec<_>>())
        };
        let push = argv(0, 1).unwrap();
        assert_eq!(push.last().unwrap(), "10.0.0.2:/b/");
        let pull = argv(1, 0).unwrap();
        assert_eq!(pull[pull.len() - 2], "10.0.0.2:/a/");
        let there = argv(1, 1).unwrap();
        assert_eq!(there[0], "ssh");
        let values = Values {
            run_flags: run_flags(false),
            ..Values::default()
        };
        for (s, d) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            let words = rsync_argv(
                &sync(),
                &hosts,
                &site(s, "/a", "none"),
                &site(d, "/b", "none"),
                Arg::lit("/b/"),
            )
            .unwrap();
            assert!(is_dry_run(&expand_argv(&words, &values)), "{s} {d}");
            assert!(!is_dry_run(&expand_argv(&words, &Values::default())));
        }
        assert!(there.last().unwrap().starts_with("rsync "), "{there:?}");
        assert!(argv(1, 2).is_err());
    }
}
