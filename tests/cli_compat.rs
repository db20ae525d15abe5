//! Every command line of the Python nbkp 1.4 is accepted here.
//!
//! `PYTHON_CLI` is its CLI reference (shared/spec/nbkp-behaviour.md §9, the
//! table and the common options) written as data. Each command and each of
//! its options, in every spelling (short and long), is
//! 1. parsed by the real parser (`Cli::try_parse_from`), and
//! 2. run by the real binary on a config of local volumes in a temporary
//!    folder (HOME, XDG dirs and TMPDIR in it too), where the clap usage
//!    errors must not appear: no network is involved anywhere.
//!
//! Then a few options whose meaning here is "the nearest right thing" are
//! checked for that meaning.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use clap::Parser;
use nbkp::cli::Cli;

/// One option: its spellings and, when it takes one, a value (`{c}` is the
/// config, `{d}` a fresh folder).
struct Opt(&'static [&'static str], Option<&'static str>);

const C: Opt = Opt(&["-c", "--config"], Some("{c}"));
const O: Opt = Opt(&["-o", "--output"], Some("json"));
const O_HUMAN: Opt = Opt(&["-o", "--output"], Some("human"));
const LOCATION: Opt = Opt(&["-l", "--location"], Some("home"));
const EXCLUDE: Opt = Opt(&["-L", "--exclude-location"], Some("travel"));
const NETWORK: Opt = Opt(&["-N", "--network"], Some("private"));
const NETWORK_PUB: Opt = Opt(&["-N", "--network"], Some("public"));
const MOUNT: Opt = Opt(&["--mount"], None);
const NO_MOUNT: Opt = Opt(&["--no-mount"], None);
const UMOUNT: Opt = Opt(&["--umount"], None);
const NO_UMOUNT: Opt = Opt(&["--no-umount"], None);
const STRICT_NONE: Opt = Opt(&["-S", "--strictness"], Some("ignore-none"));
const STRICT_INACTIVE: Opt = Opt(&["-S", "--strictness"], Some("ignore-inactive"));
const STRICT_ALL: Opt = Opt(&["-S", "--strictness"], Some("ignore-all"));
const SYNC: Opt = Opt(&["-s", "--sync"], Some("documents-to-usb"));
const DRY: Opt = Opt(&["-n", "--dry-run"], None);

/// The Python nbkp's commands with their options (spec §9).
const PYTHON_CLI: &[(&[&str], &[Opt])] = &[
    (
        &["run"],
        &[
            C,
            O,
            O_HUMAN,
            DRY,
            SYNC,
            Opt(&["-p", "--progress"], Some("none")),
            Opt(&["-p", "--progress"], Some("overall")),
            Opt(&["-p", "--progress"], Some("per-file")),
            Opt(&["-p", "--progress"], Some("full")),
            Opt(&["--prune"], None),
            Opt(&["--no-prune"], None),
            STRICT_NONE,
            STRICT_INACTIVE,
            STRICT_ALL,
            LOCATION,
            EXCLUDE,
            NETWORK,
            NETWORK_PUB,
            MOUNT,
            NO_MOUNT,
            UMOUNT,
            NO_UMOUNT,
        ],
    ),
    (
        &["sh"],
        &[
            C,
            Opt(&["-o", "--output-file"], Some("{d}/backup.sh")),
            Opt(&["--relative-src"], None),
            Opt(&["--relative-dst"], None),
            Opt(&["--portable"], None),
            Opt(&["--no-portable"], None),
            Opt(&["--platform"], Some("linux")),
            Opt(&["--platform"], Some("darwin")),
            LOCATION,
            EXCLUDE,
            NETWORK,
            NETWORK_PUB,
        ],
    ),
    (&["config", "show"], &[C, O, O_HUMAN]),
    (&["credentials", "keyring-status"], &[C, O, O_HUMAN]),
    (
        &["disks", "mount"],
        &[
            C,
            O,
            O_HUMAN,
            Opt(&["-n", "--name"], Some("laptop")),
            Opt(&["--dry-run"], None),
            LOCATION,
            EXCLUDE,
            NETWORK,
        ],
    ),
    (
        &["disks", "umount"],
        &[
            C,
            O,
            O_HUMAN,
            Opt(&["-n", "--name"], Some("laptop")),
            Opt(&["--dry-run"], None),
            LOCATION,
            EXCLUDE,
            NETWORK,
        ],
    ),
    (
        &["disks", "status"],
        &[
            C,
            O,
            O_HUMAN,
            Opt(&["-n", "--name"], Some("laptop")),
            LOCATION,
            EXCLUDE,
            NETWORK,
        ],
    ),
    (
        &["disks", "setup-auth"],
        &[C, O, O_HUMAN, Opt(&["-u", "--user"], Some("backup"))],
    ),
    (
        &["ordering", "graph"],
        &[
            C,
            O,
            O_HUMAN,
            Opt(&["-f", "--format"], Some("rich-tree")),
            Opt(&["-f", "--format"], Some("mermaid-ascii")),
            Opt(&["-f", "--format"], Some("mermaid")),
        ],
    ),
    (
        &["preflight", "check"],
        &[
            C,
            O,
            O_HUMAN,
            STRICT_NONE,
            STRICT_INACTIVE,
            STRICT_ALL,
            LOCATION,
            EXCLUDE,
            NETWORK,
            MOUNT,
            NO_MOUNT,
            UMOUNT,
            NO_UMOUNT,
        ],
    ),
    (
        &["preflight", "troubleshoot"],
        &[
            C,
            O,
            O_HUMAN,
            STRICT_NONE,
            STRICT_INACTIVE,
            STRICT_ALL,
            LOCATION,
            EXCLUDE,
            NETWORK,
            MOUNT,
            NO_MOUNT,
            UMOUNT,
            NO_UMOUNT,
        ],
    ),
    (
        &["snapshots", "show"],
        &[
            C,
            O,
            O_HUMAN,
            SYNC,
            STRICT_NONE,
            STRICT_INACTIVE,
            STRICT_ALL,
            LOCATION,
            EXCLUDE,
            NETWORK,
            MOUNT,
            NO_MOUNT,
            UMOUNT,
            NO_UMOUNT,
        ],
    ),
    (
        &["snapshots", "prune"],
        &[
            C,
            O,
            O_HUMAN,
            SYNC,
            DRY,
            STRICT_NONE,
            STRICT_INACTIVE,
            STRICT_ALL,
            LOCATION,
            EXCLUDE,
            NETWORK,
            MOUNT,
            NO_MOUNT,
            UMOUNT,
            NO_UMOUNT,
        ],
    ),
    (&["demo", "output"], &[]),
    (
        &["demo", "seed"],
        &[
            Opt(&["--base-dir"], Some("{d}/seed")),
            Opt(&["--big-file-size"], Some("1")),
            Opt(&["--docker"], None),
            Opt(&["--no-docker"], None),
            Opt(&["--luks"], None),
            Opt(&["--no-luks"], None),
            Opt(&["--bandwidth-limit"], Some("1M")),
            Opt(&["--credential-provider"], Some("keyring")),
            Opt(&["--credential-provider"], Some("prompt")),
            Opt(&["--credential-provider"], Some("env")),
            Opt(&["--credential-provider"], Some("command")),
            DRY,
        ],
    ),
];

/// What clap prints for a command line it does not accept.
const USAGE_ERRORS: &[&str] = &[
    "error: unexpected argument",
    "error: unrecognized subcommand",
    "error: invalid value",
    "error: a value is required",
    "error: the argument",
    "error: unexpected value",
];

struct World {
    tmp: tempfile::TempDir,
    config: PathBuf,
}

impl World {
    /// A sample setup of local volumes only (`demo seed` itself), with
    /// `home` and `travel` known as locations: an SSH endpoint no volume
    /// uses, so nothing ever connects to it.
    fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        let seed = tmp.path().join("sample");
        let out = nbkp_in(tmp.path(), &["demo", "seed", "--base-dir", path(&seed)]);
        assert!(out.status.success(), "seed: {}", text(&out.stderr));
        let config = seed.join("config.yaml");
        let yaml = std::fs::read_to_string(&config).unwrap();
        std::fs::write(
            &config,
            format!(
                "ssh-endpoints:\n  unused-nas: {{host: 127.0.0.1, locations: [home, travel]}}\n{yaml}"
            ),
        )
        .unwrap();
        World { tmp, config }
    }

    fn run(&self, args: &[String]) -> Output {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        nbkp_in(self.tmp.path(), &args)
    }

    /// A command line: `{c}` is the config, `{d}` a new folder.
    fn line(&self, words: &[&str]) -> Vec<String> {
        let fresh = tempfile::tempdir_in(self.tmp.path()).unwrap().keep();
        words
            .iter()
            .map(|w| {
                w.replace("{c}", path(&self.config))
                    .replace("{d}", path(&fresh))
            })
            .collect()
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The binary with everything it could touch inside `dir`.
fn nbkp_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nbkp"))
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("TMPDIR", dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("XDG_CONFIG_DIRS", dir.join("site"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run nbkp")
}

/// Every spelling of every option, each on the command's own line (plus
/// `-c` and, for `--relative-*`, the `-o` they need).
fn lines() -> Vec<Vec<&'static str>> {
    let mut out = Vec::new();
    for (path, opts) in PYTHON_CLI {
        let takes_config = opts.iter().any(|o| o.0 == C.0);
        let base = |extra: &[&'static str]| {
            let mut l: Vec<&str> = path.to_vec();
            if takes_config && !C.0.contains(&extra[0]) {
                l.extend(["-c", "{c}"]);
            }
            l.extend(extra);
            l
        };
        out.push(base(&[""]).into_iter().filter(|w| !w.is_empty()).collect());
        for Opt(spellings, value) in opts.iter() {
            for s in spellings.iter() {
                let mut extra = vec![*s];
                extra.extend(value);
                if s.starts_with("--relative") {
                    extra.extend(["-o", "{d}/backup.sh"]);
                }
                out.push(base(&extra));
            }
        }
    }
    out
}

#[test]
fn every_python_command_line_parses() {
    let w = World::new();
    let mut rejected = Vec::new();
    let all = lines();
    assert!(all.len() > 150, "the table has only {} lines", all.len());
    for words in &all {
        let argv: Vec<String> = std::iter::once("nbkp".to_string())
            .chain(w.line(words))
            .collect();
        if let Err(e) = Cli::try_parse_from(&argv) {
            rejected.push(format!("{}: {}", words.join(" "), e.kind()));
        }
    }
    for v in [&["nbkp", "-V"][..], &["nbkp", "--version"][..]] {
        let e = Cli::try_parse_from(v).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayVersion, "{v:?}");
    }
    assert!(
        rejected.is_empty(),
        "command lines of the Python nbkp rejected:\n{}",
        rejected.join("\n")
    );
}

#[test]
fn every_python_command_line_runs_without_a_usage_error() {
    let w = World::new();
    let mut bad = Vec::new();
    for words in lines() {
        let line = w.line(&words);
        let out = w.run(&line);
        let stderr = text(&out.stderr);
        let crashed = stderr.contains("panicked");
        let usage = USAGE_ERRORS.iter().find(|m| stderr.contains(*m));
        if crashed || usage.is_some() {
            bad.push(format!("nbkp {}:\n{stderr}", line.join(" ")));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// `--portable` and `--no-portable` both give the same POSIX script.
#[test]
fn sh_portable_or_not_is_the_same_posix_script() {
    let w = World::new();
    let script = |extra: &[&str]| {
        let mut l = w.line(&["sh", "-c", "{c}"]);
        l.extend(extra.iter().map(|s| s.to_string()));
        let out = w.run(&l);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let plain = script(&[]);
    assert!(plain.starts_with("#!/bin/sh\n"), "{}", &plain[..40]);
    assert_eq!(script(&["--portable"]), plain);
    assert_eq!(script(&["--no-portable"]), plain);
    assert_eq!(script(&["--platform", "linux"]), plain);
}

/// `ordering graph -f rich-tree` and `-f mermaid-ascii` draw the tree.
#[test]
fn python_graph_formats_draw_the_tree() {
    let w = World::new();
    let graph = |f: &str| {
        text(
            &w.run(&w.line(&["ordering", "graph", "-c", "{c}", "-f", f]))
                .stdout,
        )
    };
    let tree = graph("tree");
    assert!(tree.contains("└─ usb-to-backup"), "{tree}");
    assert_eq!(graph("rich-tree"), tree);
    assert_eq!(graph("mermaid-ascii"), tree);
}

/// `snapshots show|prune -S ignore-none` fail on an endpoint whose drive is
/// absent; by default it is reported and the exit code stays 0.
#[test]
fn snapshots_strictness_ignore_none_fails_on_an_absent_drive() {
    let w = World::new();
    let usb = w.config.parent().unwrap().join("usb-drive");
    std::fs::rename(&usb, usb.with_extension("unplugged")).unwrap();
    for cmd in [
        &["snapshots", "show"][..],
        &["snapshots", "prune", "-n"][..],
    ] {
        let code = |extra: &[&str]| {
            let mut words = cmd.to_vec();
            words.extend(["-c", "{c}"]);
            words.extend(extra);
            w.run(&w.line(&words)).status.code()
        };
        assert_eq!(code(&[]), Some(0), "{cmd:?}");
        assert_eq!(code(&["-S", "ignore-inactive"]), Some(0), "{cmd:?}");
        assert_eq!(code(&["-S", "ignore-all"]), Some(0), "{cmd:?}");
        assert_eq!(code(&["--strictness", "ignore-none"]), Some(1), "{cmd:?}");
    }
}

/// `disks mount|umount --dry-run` answer in the Python nbkp's JSON shape.
#[test]
fn disks_dry_run_reports_in_the_python_shape() {
    let w = World::new();
    for cmd in ["mount", "umount"] {
        let out = w.run(&w.line(&["disks", cmd, "-c", "{c}", "--dry-run", "-o", "json"]));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["dry_run"], true, "{v}");
        assert!(v["volumes"].is_array(), "{v}");
    }
}

/// `demo seed` makes a setup that runs; `-n` only lists it; an existing
/// config is never overwritten.
#[test]
fn demo_seed_makes_a_setup_that_runs_and_never_overwrites() {
    let w = World::new();
    let dir = w.tmp.path().join("dry");
    let out = w.run(&w.line(&["demo", "seed", "-n", "--base-dir", path(&dir)]));
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("config.yaml"));
    assert!(!dir.exists(), "a dry run created {}", dir.display());

    let dir = w.tmp.path().join("big");
    let out = w.run(&w.line(&[
        "demo",
        "seed",
        "--base-dir",
        path(&dir),
        "--big-file-size",
        "2",
    ]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let big = dir.join("laptop/photos/big-video.bin");
    assert_eq!(std::fs::metadata(&big).unwrap().len(), 2 << 20);
    let config = dir.join("config.yaml");
    let run = w.run(&w.line(&["run", "-c", path(&config)]));
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert_eq!(
        std::fs::read(dir.join("usb-drive/photos/big-video.bin")).unwrap(),
        std::fs::read(&big).unwrap()
    );
    assert!(dir.join("usb-drive/documents/latest/letter.txt").is_file());
    assert!(dir.join("backup-drive/documents/letter.txt").is_file());
    // The drive that is not plugged in was skipped, not written to.
    assert_eq!(
        std::fs::read_dir(dir.join("spare-drive")).unwrap().count(),
        0
    );

    let before = std::fs::read(&config).unwrap();
    let again = w.run(&w.line(&["demo", "seed", "--base-dir", path(&dir)]));
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("never overwrites"));
    assert_eq!(std::fs::read(&config).unwrap(), before);
}

/// `demo output` shows the human output of every command, and leaves
/// nothing behind.
#[test]
fn demo_output_shows_every_command_and_cleans_up() {
    let w = World::new();
    let out = w.run(&w.line(&["demo", "output"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    for cmd in [
        "config show",
        "ordering graph",
        "init",
        "preflight check",
        "preflight troubleshoot",
        "run",
        "snapshots show",
        "snapshots prune",
        "status",
        "disks status",
        "credentials keyring-status",
    ] {
        assert!(
            shown.contains(&format!("$ nbkp {cmd} ")),
            "{cmd} not shown:\n{shown}"
        );
    }
    assert!(shown.contains("completed"), "no run results:\n{shown}");
    let left: Vec<_> = std::fs::read_dir(w.tmp.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("nbkp-demo-output-")
        })
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
