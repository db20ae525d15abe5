//! Everyday use: shell completions, manual pages, schedules, status.
//! Each output is checked by the real program that consumes it (bash, zsh,
//! fish, groff/man, systemd-analyze, a plist parser, cron's own syntax rules).

mod testbed;

use std::path::Path;
use std::process::{Command, Output};

fn nbkp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nbkp"))
        .args(args)
        .output()
        .expect("run nbkp")
}

fn stdout_ok(args: &[&str]) -> String {
    let out = nbkp(args);
    assert!(
        out.status.success(),
        "nbkp {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Like `testbed::require` for plain programs: skip locally, fail in CI.
fn need(programs: &[&str], package: &str) -> bool {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| testbed::which(p).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!("missing {missing:?} -- apt-get install {package} (or run .ci/install-deps)");
    if testbed::in_ci() {
        panic!("{msg}");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIP {msg}");
    false
}

/// Rendered man text as plain words: overstrikes (`X\bX`) removed, runs of
/// justification spaces and line breaks collapsed to one space.
fn plain_text(rendered: &[u8]) -> String {
    let text = String::from_utf8_lossy(rendered);
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if chars.peek() == Some(&'\u{8}') {
            chars.next();
            continue;
        }
        out.push(c);
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write file");
}

// ---------------------------------------------------------------- completions

/// Sources the bash completion and asks it, as bash's programmable completion
/// would, for the candidates at the last word of `words`.
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let cword = words.len() - 1;
    let array: Vec<String> = words.iter().map(testbed::shq).collect();
    let line = words.join(" ");
    let code = format!(
        "source {script}\n\
         COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE={line}; COMP_POINT=${{#COMP_LINE}}\n\
         _nbkp nbkp {cur} {prev}\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script = testbed::shq(script),
        words = array.join(" "),
        line = testbed::shq(&line),
        cur = testbed::shq(words[cword]),
        prev = testbed::shq(words[cword - 1]),
    );
    let out = Command::new("bash")
        .arg("--norc")
        .arg("-c")
        .arg(code)
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "bash completion failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn bash_completion_parses_and_completes_commands_and_values() {
    if !need(&["bash"], "bash") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("nbkp.bash");
    write(&script, &stdout_ok(&["completions", "bash"]));
    let check = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    assert_eq!(bash_complete(&script, &["nbkp", "pre"]), ["preflight"]);
    let all = bash_complete(&script, &["nbkp", ""]);
    for cmd in [
        "run",
        "sh",
        "preflight",
        "config",
        "completions",
        "man",
        "demo",
    ] {
        assert!(all.iter().any(|c| c == cmd), "{cmd} missing from {all:?}");
    }
    assert_eq!(
        bash_complete(&script, &["nbkp", "preflight", "tr"]),
        ["troubleshoot"]
    );
    assert_eq!(
        bash_complete(&script, &["nbkp", "run", "-S", ""]),
        ["ignore-inactive", "ignore-none", "ignore-all"]
    );
    assert_eq!(
        bash_complete(&script, &["nbkp", "run", "--dry"]),
        ["--dry-run"]
    );
}

#[test]
fn zsh_and_fish_completions_parse() {
    if !need(&["zsh", "fish"], "zsh fish") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (shell, program, file) in [("zsh", "zsh", "_nbkp"), ("fish", "fish", "nbkp.fish")] {
        let text = stdout_ok(&["completions", shell]);
        assert!(text.contains("preflight"), "{shell}: no subcommands");
        let path = dir.path().join(file);
        write(&path, &text);
        let check = Command::new(program).arg("-n").arg(&path).output().unwrap();
        assert!(
            check.status.success(),
            "{program} -n: {}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
    // fish can answer a completion without a terminal.
    let fish = Command::new("fish")
        .arg("--no-config")
        .arg("-c")
        .arg(format!(
            "source {}; complete -C 'nbkp preflight tr'",
            testbed::shq(dir.path().join("nbkp.fish"))
        ))
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&fish.stdout);
    assert!(
        answer.starts_with("troubleshoot"),
        "fish completed {answer:?}"
    );
}

#[test]
fn unknown_completion_shell_is_a_usage_error() {
    let out = nbkp(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

// ---------------------------------------------------------------- man pages

#[test]
fn man_page_renders_without_warnings() {
    if !need(&["groff", "man"], "groff-base man-db") {
        return;
    }
    let page = stdout_ok(&["man"]);
    assert!(
        page.starts_with(".ie") || page.contains(".TH nbkp 1"),
        "not roff: {page:.80}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nbkp.1");
    write(&path, &page);
    // groff -ww: all warnings; a malformed page warns.
    let groff = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(groff.status.success());
    assert_eq!(String::from_utf8_lossy(&groff.stderr), "", "groff warnings");
    let man = Command::new("man")
        .arg("-l")
        .arg(&path)
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .output()
        .unwrap();
    let text = plain_text(&man.stdout);
    assert!(
        man.status.success(),
        "man -l: {}",
        String::from_utf8_lossy(&man.stderr)
    );
    for expected in [
        "NAME",
        "SYNOPSIS",
        "nbkp-run(1)",
        "preflight",
        "Exit codes: 0 success",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
}

#[test]
fn man_dir_writes_a_page_per_command() {
    if !need(&["groff"], "groff-base") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = nbkp(&[
        "man",
        "--dir",
        &dir.path().join("man1").display().to_string(),
    ]);
    assert!(out.status.success());
    let man1 = dir.path().join("man1");
    for page in [
        "nbkp.1",
        "nbkp-run.1",
        "nbkp-preflight-troubleshoot.1",
        "nbkp-config-show.1",
    ] {
        let path = man1.join(page);
        assert!(path.is_file(), "{page} not written");
        let groff = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&groff.stderr),
            "",
            "{page}: groff warnings"
        );
        let text = plain_text(&groff.stdout);
        assert!(text.contains("SYNOPSIS"), "{page}: {text}");
    }
    let run = std::fs::read_to_string(man1.join("nbkp-run.1")).unwrap();
    assert!(run.contains("dry\\-run"), "nbkp-run.1 lacks --dry-run");
}
