//! `nbkp sh --check FILE`: does a deployed script still match its config?
//! 0 the same, 1 differs (a unified diff on stdout), 2 not an nbkp script.

use std::path::Path;
use std::process::{Command, Output};

fn nbkp(args: &[&str], cfg: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nbkp"))
        .args(args)
        .arg("-c")
        .arg(cfg)
        .output()
        .unwrap()
}

fn config(dst: &str) -> String {
    format!(
        "volumes:\n  a: {{type: local, path: /srv/a}}\n  b: {{type: local, path: {dst}}}\n\
         sync-endpoints:\n  ea: {{volume: a}}\n  eb: {{volume: b}}\nsyncs:\n  s: {{source: ea, destination: eb}}\n"
    )
}

#[test]
fn a_deployed_script_is_checked_against_its_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.yaml");
    std::fs::write(&cfg, config("/srv/b")).unwrap();
    let script = dir.path().join("backup.sh");
    let s = script.to_str().unwrap();
    assert!(nbkp(&["sh", "-o", s], &cfg).status.success());

    let same = nbkp(&["sh", "--check", s], &cfg);
    assert_eq!(same.status.code(), Some(0), "{same:?}");
    assert!(same.stdout.is_empty());

    // The config changed: the script is stale, and the diff says where.
    std::fs::write(&cfg, config("/srv/elsewhere")).unwrap();
    let stale = nbkp(&["sh", "--check", s], &cfg);
    assert_eq!(stale.status.code(), Some(1), "{stale:?}");
    let diff = String::from_utf8_lossy(&stale.stdout);
    assert!(diff.starts_with(&format!("--- {s}\n+++ ")), "{diff}");
    assert!(
        diff.lines()
            .any(|l| l.starts_with('-') && l.contains("/srv/b"))
            && diff
                .lines()
                .any(|l| l.starts_with('+') && l.contains("/srv/elsewhere")),
        "{diff}"
    );
    assert!(String::from_utf8_lossy(&stale.stderr).contains("regenerate"));

    // Relative paths are relative to the checked script, as to -o's.
    let rel = ["sh", "--relative-dst", "-o", s];
    assert!(nbkp(&rel, &cfg).status.success());
    let ok = nbkp(&["sh", "--relative-dst", "--check", s], &cfg);
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");

    // Not a script of ours, or not there at all.
    let other = dir.path().join("other.sh");
    std::fs::write(&other, "#!/bin/sh\necho hello\n").unwrap();
    let not = nbkp(&["sh", "--check", other.to_str().unwrap()], &cfg);
    assert_eq!(not.status.code(), Some(2), "{not:?}");
    assert!(String::from_utf8_lossy(&not.stderr).contains("not a script written by nbkp sh"));
    let gone = dir.path().join("gone.sh");
    let missing = nbkp(&["sh", "--check", gone.to_str().unwrap()], &cfg);
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");
}
