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
    // The Python nbkp's command lines complete too.
    let demo = bash_complete(&script, &["nbkp", "demo", ""]);
    for sub in ["seed", "output"] {
        assert!(demo.iter().any(|c| c == sub), "{sub} missing from {demo:?}");
    }
    assert_eq!(
        bash_complete(&script, &["nbkp", "sh", "--no-port"]),
        ["--no-portable"]
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
        "nbkp-demo-seed.1",
        "nbkp-demo-output.1",
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

// ---------------------------------------------------------------- schedule

/// A config in a folder whose name needs quoting everywhere (space, `%`,
/// `$`, a quote), with a drive under /media for the mount-unit suggestion.
fn awkward_config(dir: &Path) -> std::path::PathBuf {
    let folder = dir.join("my 100% $HOME 'conf'");
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join("config.yaml");
    write(
        &path,
        "volumes:\n  laptop:\n    type: local\n    path: /home/me\n  usb:\n    type: local\n    path: /media/my usb\n\
         sync-endpoints:\n  docs:\n    volume: laptop\n  backup:\n    volume: usb\n\
         syncs:\n  docs-to-usb:\n    source: docs\n    destination: backup\n",
    );
    path
}

/// This nbkp binary, at a path that needs quoting too. A hard link, not a
/// copy: a copy still open for writing while another test thread forks can
/// make exec fail with "text file busy".
fn awkward_binary(_dir: &Path) -> (tempfile::TempDir, std::path::PathBuf) {
    let holder = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let bin_dir = holder.path().join("bin 50% $x");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let bin = bin_dir.join("nbkp");
    std::fs::hard_link(env!("CARGO_BIN_EXE_nbkp"), &bin).unwrap();
    (holder, bin)
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    if !need(&["systemd-analyze"], "systemd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = awkward_config(dir.path());
    let (_bin_dir, bin) = awkward_binary(dir.path());
    let units = dir.path().join("units");
    let out = Command::new(&bin)
        .args(["schedule", "systemd", "--every", "15m", "--install"])
        .arg("--install-dir")
        .arg(&units)
        .arg("-c")
        .arg(&config)
        .args([
            "--run-arg=-S",
            "--run-arg=ignore-none",
            "--run-arg=--sync=docs-to-usb",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let service = std::fs::read_to_string(units.join("nbkp.service")).unwrap();
    let timer = std::fs::read_to_string(units.join("nbkp.timer")).unwrap();
    // systemd-analyze checks the syntax, every directive, the calendar
    // expression and that the ExecStart program (a path with a space, `%`
    // and `$`) is executable: a quoting mistake names a program that is not.
    let verify = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(units.join("nbkp.timer"))
        .arg(units.join("nbkp.service"))
        .output()
        .unwrap();
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}\n{service}\n{timer}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(timer.contains("OnCalendar=*-*-* *:00/15:00\n"), "{timer}");
    assert!(timer.contains("Persistent=true\n"));
    for line in [
        "Nice=19\n",
        "IOSchedulingClass=idle\n",
        "CPUSchedulingPolicy=idle\n",
    ] {
        assert!(service.contains(line), "{line} missing:\n{service}");
    }
    let exec = service
        .lines()
        .find(|l| l.starts_with("ExecStart="))
        .unwrap();
    let expected = format!(
        "ExecStart=\"{}\" run -c \"{}\" -S ignore-none --sync=docs-to-usb",
        bin.canonicalize()
            .unwrap()
            .display()
            .to_string()
            .replace('%', "%%"),
        config
            .canonicalize()
            .unwrap()
            .display()
            .to_string()
            .replace('%', "%%")
            .replace('$', "$$")
    );
    assert_eq!(exec, expected);
    assert!(
        service.contains("#   media-my\\x20usb.mount\n"),
        "no mount suggestion:\n{service}"
    );
    // The suggestion names the unit systemd itself would.
    let escaped = Command::new("systemd-escape")
        .args(["-p", "--suffix=mount", "/media/my usb"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&escaped.stdout).trim(),
        "media-my\\x20usb.mount"
    );
    // The calendar expression is one systemd accepts for every interval.
    for every in ["1m", "30m", "1h", "6h", "daily", "weekly"] {
        let out = Command::new(&bin)
            .args(["schedule", "systemd", "--every", every, "-c"])
            .arg(&config)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let cal = text
            .lines()
            .find_map(|l| l.strip_prefix("OnCalendar="))
            .unwrap();
        let check = Command::new("systemd-analyze")
            .args(["calendar", cal])
            .output()
            .unwrap();
        assert!(check.status.success(), "{every}: {cal} rejected");
    }
}

#[test]
fn systemd_install_goes_to_xdg_config_home_and_enables_only_when_asked_mock_systemctl() {
    let dir = tempfile::tempdir().unwrap();
    let config = awkward_config(dir.path());
    let xdg = dir.path().join("xdg");
    // A systemctl on PATH that records being called: it must not be.
    let fake_bin = dir.path().join("fake-bin");
    std::fs::create_dir_all(&fake_bin).unwrap();
    let called = dir.path().join("systemctl-called");
    let systemctl = fake_bin.join("systemctl");
    write(
        &systemctl,
        &format!("#!/bin/sh\necho \"$@\" >> {}\n", testbed::shq(&called)),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&systemctl, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", fake_bin.display(), std::env::var("PATH").unwrap());
    let out = Command::new(env!("CARGO_BIN_EXE_nbkp"))
        .args(["schedule", "systemd", "--install", "-c"])
        .arg(&config)
        .env("XDG_CONFIG_HOME", &xdg)
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(xdg.join("systemd/user/nbkp.service").is_file());
    assert!(xdg.join("systemd/user/nbkp.timer").is_file());
    assert!(!called.exists(), "systemctl was run without --enable");
    // With --enable it is asked to reload and enable the timer (the mock
    // stands in for a user systemd manager, which this machine cannot run).
    let out = Command::new(env!("CARGO_BIN_EXE_nbkp"))
        .args(["schedule", "systemd", "--install", "--enable", "-c"])
        .arg(&config)
        .env("XDG_CONFIG_HOME", &xdg)
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&called).unwrap(),
        "--user daemon-reload\n--user enable --now nbkp.timer\n"
    );
}

#[test]
fn launchd_plist_parses_with_the_exact_arguments() {
    if !need(&["python3"], "python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = awkward_config(dir.path());
    let (_bin_dir, bin) = awkward_binary(dir.path());
    let out = Command::new(&bin)
        .args(["schedule", "launchd", "--every", "6h", "--on-plug", "-c"])
        .arg(&config)
        .arg("--run-arg=--sync=docs-to-usb")
        .env("HOME", "/Users/a&b")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plist = dir.path().join("nbkp.plist");
    std::fs::write(&plist, &out.stdout).unwrap();
    // plistlib is a strict plist parser (plutil does not exist on Linux).
    let parsed = Command::new("python3")
        .arg("-c")
        .arg(
            "import json, plistlib, sys\n\
             with open(sys.argv[1], 'rb') as f: print(json.dumps(plistlib.load(f)))",
        )
        .arg(&plist)
        .output()
        .unwrap();
    assert!(
        parsed.status.success(),
        "plistlib: {}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&parsed.stdout).unwrap();
    let args: Vec<&str> = v["ProgramArguments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let bin = bin.canonicalize().unwrap().display().to_string();
    let config = config.canonicalize().unwrap().display().to_string();
    assert_eq!(
        args,
        [
            bin.as_str(),
            "run",
            "-c",
            config.as_str(),
            "--sync=docs-to-usb"
        ]
    );
    assert_eq!(v["StartInterval"], 6 * 3600);
    assert_eq!(v["Label"], "nbkp.run");
    assert_eq!(v["StartOnMount"], true);
    assert_eq!(v["LowPriorityIO"], true);
    assert_eq!(v["Nice"], 19);
    assert_eq!(v["StandardErrorPath"], "/Users/a&b/Library/Logs/nbkp.log");
}

#[test]
fn cron_line_is_well_formed_and_sh_reads_back_the_exact_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let config = awkward_config(dir.path());
    let (_bin_dir, bin) = awkward_binary(dir.path());
    let out = Command::new(&bin)
        .args(["schedule", "cron", "--every", "20m", "-c"])
        .arg(&config)
        .arg("--run-arg=-n")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), 1, "{text}");
    let line = lines[0];
    let fields: Vec<&str> = line.splitn(6, ' ').collect();
    assert_eq!(&fields[..5], ["*/20", "*", "*", "*", "*"]);
    let command = fields[5];
    // cron turns an unescaped % into a newline: every % must be escaped.
    let bytes = command.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%' {
            assert!(i > 0 && bytes[i - 1] == b'\\', "unescaped % in {command}");
        }
    }
    // What cron hands to sh: `\%` becomes `%`. sh must split it back into
    // exactly nbkp's argv (after nice/ionice).
    let for_sh = command.replace("\\%", "%");
    let words = Command::new("sh")
        .arg("-c")
        .arg(format!("set -- {for_sh}; printf '%s\\n' \"$@\""))
        .output()
        .unwrap();
    let words: Vec<String> = String::from_utf8(words.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let bin = bin.canonicalize().unwrap().display().to_string();
    let config = config.canonicalize().unwrap().display().to_string();
    let tail = [bin.as_str(), "run", "-c", config.as_str(), "-n"];
    assert_eq!(&words[..3], ["nice", "-n", "19"]);
    assert_eq!(&words[words.len() - 5..], tail);
}

#[test]
fn schedule_refuses_bad_intervals_and_run_args() {
    let dir = tempfile::tempdir().unwrap();
    let config = awkward_config(dir.path());
    for args in [
        vec!["--every", "7h"],
        vec!["--every", "soon"],
        vec!["--run-arg=--no-such-option"],
        vec!["--run-arg=-c", "--run-arg=/other.yaml"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_nbkp"))
            .args(["schedule", "cron", "-c"])
            .arg(&config)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("Error: "), "{args:?}: {err}");
    }
    // A broken config is refused: a schedule must not point at it.
    let bad = dir.path().join("bad.yaml");
    write(&bad, "syncs: [\n");
    let out = nbkp(&["schedule", "systemd", "-c", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

// ---------------------------------------------------------------- status

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

const STATUS_CONFIG: &str = "ssh-endpoints:\n  nas: {host: 192.0.2.5}\n\
    volumes:\n  laptop: {type: local, path: /home/me}\n  usb: {type: local, path: /media/usb}\n  server: {type: remote, ssh-endpoint: nas, path: /srv}\n\
    sync-endpoints:\n  pics: {volume: laptop, subdir: pics}\n  docs: {volume: laptop, subdir: docs}\n  tmp: {volume: laptop, subdir: tmp}\n  usb-photos: {volume: usb}\n  nas-docs: {volume: server}\n  spare: {volume: laptop, subdir: spare}\n\
    syncs:\n  usb-photos: {source: pics, destination: usb-photos}\n  docs-to-nas: {source: docs, destination: nas-docs, stale-after: 2d}\n  scratch: {source: tmp, destination: spare, stale-after: never}\n";

#[test]
fn status_shows_ages_and_flags_stale_syncs_from_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    write(&config, STATUS_CONFIG);
    let state_home = dir.path().join("state");
    std::fs::create_dir_all(state_home.join("nbkp")).unwrap();
    let now = now_unix();
    write(
        &state_home.join("nbkp/state.json"),
        &serde_json::json!({
            "version": 1,
            "syncs": {
                "usb-photos": {"last_success": "(12 days ago)", "last_success_unix": now - 12 * 86_400 - 60},
                "docs-to-nas": {"last_success": "(an hour ago)", "last_success_unix": now - 3600,
                                 "last_failure": "(a minute ago)", "last_failure_unix": now - 60,
                                 "last_failure_detail": "rsync exited with code 12"},
            }
        })
        .to_string(),
    );
    let status = |format: &str| {
        Command::new(env!("CARGO_BIN_EXE_nbkp"))
            .args(["status", "-o", format, "-c"])
            .arg(&config)
            .env("XDG_STATE_HOME", &state_home)
            .output()
            .unwrap()
    };
    let out = status("human");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "a stale sync: exit 1\n{text}");
    assert!(
        text.contains("usb-photos: last backup 12 days ago — plug in the drive usb (/media/usb)\n"),
        "{text}"
    );
    assert!(text.contains("STALE"), "{text}");
    assert!(text.contains("ok, last attempt failed"), "{text}");
    assert!(
        !text.contains("scratch:"),
        "never-stale sync flagged:\n{text}"
    );

    let out = status("json");
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["stale"], serde_json::json!(["usb-photos"]));
    assert_eq!(
        v["state_file"],
        state_home.join("nbkp/state.json").display().to_string()
    );
    let syncs = v["syncs"].as_array().unwrap();
    assert_eq!(syncs.len(), 3);
    assert_eq!(syncs[0]["sync_slug"], "usb-photos");
    assert_eq!(syncs[0]["stale_after_seconds"], 7 * 86_400);
    assert!(syncs[0]["age_seconds"].as_u64().unwrap() >= 12 * 86_400 + 60);
    assert_eq!(syncs[1]["stale"], false);
    assert_eq!(syncs[1]["last_failure_detail"], "rsync exited with code 12");
    assert_eq!(syncs[2]["stale_after_seconds"], serde_json::Value::Null);
    assert_eq!(syncs[2]["last_success"], serde_json::Value::Null);

    // A state file that is not nbkp's: an error naming it, not a panic.
    write(&state_home.join("nbkp/state.json"), "[1, 2");
    let out = status("human");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid nbkp state file"));
}

/// A local source and destination folder, with their sentinels.
fn local_pair(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let src = dir.join("src");
    let dst = dir.join("dst");
    for (p, sentinel) in [(&src, ".nbkp-src"), (&dst, ".nbkp-dst")] {
        std::fs::create_dir_all(p).unwrap();
        write(&p.join(".nbkp-vol"), "");
        write(&p.join(sentinel), "");
    }
    write(&src.join("file.txt"), "hello");
    (src, dst)
}

#[test]
fn a_real_run_records_successes_and_failures_for_status() {
    if !need(&["rsync"], "rsync") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = local_pair(dir.path());
    let broken_dst = dir.path().join("dst2");
    std::fs::create_dir_all(&broken_dst).unwrap();
    write(&broken_dst.join(".nbkp-vol"), "");
    write(&broken_dst.join(".nbkp-dst"), "");
    let config = dir.path().join("config.yaml");
    write(
        &config,
        &format!(
            "volumes:\n  s: {{type: local, path: {}}}\n  d: {{type: local, path: {}}}\n  b: {{type: local, path: {}}}\n\
             sync-endpoints:\n  es: {{volume: s}}\n  ed: {{volume: d}}\n  eb: {{volume: b}}\n\
             syncs:\n  good: {{source: es, destination: ed}}\n  bad: {{source: es, destination: eb, rsync-options: {{extra-options: [--no-such-rsync-option]}}}}\n",
            src.display(),
            dst.display(),
            broken_dst.display()
        ),
    );
    let state_home = dir.path().join("state");
    let nbkp_env = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_nbkp"))
            .args(args)
            .arg("-c")
            .arg(&config)
            .env("XDG_STATE_HOME", &state_home)
            .output()
            .unwrap()
    };
    // A dry run records nothing.
    let out = nbkp_env(&["run", "-n"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!state_home.join("nbkp/state.json").exists());

    let before = now_unix();
    let out = nbkp_env(&["run"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "bad fails: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dst.join("file.txt").is_file());
    let out = nbkp_env(&["status", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let good = &v["syncs"][0];
    assert_eq!(good["sync_slug"], "good");
    let at = good["last_success_unix"].as_u64().unwrap();
    assert!(at >= before && at <= now_unix(), "{good}");
    assert_eq!(good["stale"], false);
    let bad = &v["syncs"][1];
    assert_eq!(bad["last_success"], serde_json::Value::Null);
    assert_eq!(bad["stale"], true, "never completed");
    assert!(bad["last_failure_detail"]
        .as_str()
        .unwrap()
        .contains("rsync exited"));
    assert_eq!(out.status.code(), Some(1));
    // The file itself is the documented format.
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state_home.join("nbkp/state.json")).unwrap())
            .unwrap();
    assert_eq!(file["version"], 1);
    assert_eq!(file["syncs"]["good"]["last_success_unix"], at);
}

// ---------------------------------------------------------------- notifications

/// A real notification daemon (dunst) on a private X server (Xvfb) and a
/// private D-Bus session bus; stopped on drop.
struct NotificationDaemon {
    children: Vec<std::process::Child>,
    bus: String,
    display: String,
}

impl NotificationDaemon {
    const PROGRAMS: [&'static str; 5] = ["Xvfb", "dbus-daemon", "dunst", "dunstctl", "notify-send"];
    const PACKAGES: &'static str = "xvfb dbus-daemon dunst libnotify-bin";

    fn start() -> NotificationDaemon {
        use std::io::BufRead;
        use std::process::Stdio;
        let read_line = |child: &mut std::process::Child| {
            let mut line = String::new();
            std::io::BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            line.trim().to_string()
        };
        // -displayfd: Xvfb picks a free display and prints its number.
        let mut x = Command::new("Xvfb")
            .args(["-displayfd", "1", "-nolisten", "tcp"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let display = format!(":{}", read_line(&mut x));
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let address = read_line(&mut bus);
        let dunst = Command::new("dunst")
            .env("DISPLAY", &display)
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let daemon = NotificationDaemon {
            children: vec![dunst, bus, x],
            bus: address,
            display,
        };
        // dunst owns the notification service once dunstctl can talk to it.
        testbed::wait_until(
            "dunst on the session bus",
            std::time::Duration::from_secs(10),
            || daemon.dunstctl(&["is-paused"]).status.success(),
        )
        .unwrap();
        daemon
    }

    fn dunstctl(&self, args: &[&str]) -> Output {
        Command::new("dunstctl")
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .output()
            .unwrap()
    }

    /// (summary, body) of every notification received so far.
    fn received(&self) -> Vec<(String, String)> {
        self.dunstctl(&["close-all"]);
        std::thread::sleep(std::time::Duration::from_millis(300));
        let out = self.dunstctl(&["history"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["data"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                (
                    n["summary"]["data"].as_str().unwrap().to_string(),
                    n["body"]["data"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

impl Drop for NotificationDaemon {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A config with a working sync, a failing one and one to an absent drive.
fn notification_config(dir: &Path, switch: Option<bool>, failing: bool) -> std::path::PathBuf {
    let (src, dst) = local_pair(dir);
    let bad = dir.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    write(&bad.join(".nbkp-vol"), "");
    write(&bad.join(".nbkp-dst"), "");
    let absent = format!("/media/{}", testbed::unique_name("nbkp-absent"));
    let extra = if failing {
        "[--no-such-rsync-option]"
    } else {
        "[]"
    };
    let config = dir.join("config.yaml");
    write(
        &config,
        &format!(
            "{}volumes:\n  s: {{type: local, path: {}}}\n  d: {{type: local, path: {}}}\n  b: {{type: local, path: {}}}\n  usb: {{type: local, path: {absent}}}\n\
             sync-endpoints:\n  es: {{volume: s}}\n  ed: {{volume: d}}\n  eb: {{volume: b}}\n  eu: {{volume: usb}}\n\
             syncs:\n  good: {{source: es, destination: ed}}\n  bad: {{source: es, destination: eb, rsync-options: {{extra-options: {extra}}}}}\n  to-usb: {{source: es, destination: eu, stale-after: 1d}}\n",
            switch
                .map(|s| format!("desktop-notifications: {s}\n"))
                .unwrap_or_default(),
            src.display(),
            dst.display(),
            bad.display(),
        ),
    );
    config
}

fn run_with_daemon(daemon: &NotificationDaemon, dir: &Path, config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nbkp"))
        .args(["run", "-c"])
        .arg(config)
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("DBUS_SESSION_BUS_ADDRESS", &daemon.bus)
        .env("DISPLAY", &daemon.display)
        .output()
        .unwrap()
}

#[test]
fn a_failed_run_and_a_stale_drive_reach_a_real_notification_daemon() {
    if !need(&NotificationDaemon::PROGRAMS, NotificationDaemon::PACKAGES)
        || !need(&["rsync"], "rsync")
    {
        return;
    }
    let daemon = NotificationDaemon::start();
    let dir = tempfile::tempdir().unwrap();
    let config = notification_config(dir.path(), Some(true), true);
    let out = run_with_daemon(&daemon, dir.path(), &config);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = daemon.received();
    assert_eq!(got.len(), 1, "{got:?}");
    let (title, body) = &got[0];
    assert_eq!(title, "nbkp: a backup failed");
    assert!(
        body.contains("bad failed: rsync exited with code 1"),
        "{body}"
    );
    assert!(
        body.contains("to-usb: never backed up — plug in the drive usb"),
        "{body}"
    );
    assert!(!body.contains("good"), "{body}");
}

#[test]
fn notifications_are_off_by_default_and_quiet_when_all_is_well() {
    if !need(&NotificationDaemon::PROGRAMS, NotificationDaemon::PACKAGES)
        || !need(&["rsync"], "rsync")
    {
        return;
    }
    let daemon = NotificationDaemon::start();
    // Off unless the config says so, even with a failure.
    let dir = tempfile::tempdir().unwrap();
    let config = notification_config(dir.path(), None, true);
    assert_eq!(
        run_with_daemon(&daemon, dir.path(), &config).status.code(),
        Some(1)
    );
    assert_eq!(daemon.received(), []);
    // On, nothing failed, and the absent drive is not stale yet (backed up
    // an hour ago): no notification.
    let dir = tempfile::tempdir().unwrap();
    let config = notification_config(dir.path(), Some(true), false);
    std::fs::create_dir_all(dir.path().join("state/nbkp")).unwrap();
    write(
        &dir.path().join("state/nbkp/state.json"),
        &serde_json::json!({"version": 1, "syncs": {"to-usb": {"last_success_unix": now_unix() - 3600}}})
            .to_string(),
    );
    let out = run_with_daemon(&daemon, dir.path(), &config);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(daemon.received(), []);
}

/// A program on PATH that appends its arguments (and stdin, if any) to a
/// log: for schedulers this machine cannot run (launchctl) or whose real
/// table must not be touched by tests (the user's crontab).
fn fake_program(dir: &Path, name: &str, stdout: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.join(format!("{name}.log"));
    let script = bin.join(name);
    write(
        &script,
        &format!(
            "#!/bin/sh\necho \"$*\" >> {log}\nif [ \"$1\" = - ]; then cat >> {log}; fi\nprintf '%s' {out}\n",
            log = testbed::shq(&log),
            out = testbed::shq(stdout)
        ),
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    log
}

#[test]
fn cron_and_launchd_install_write_files_and_enable_merges_the_crontab_mock_crontab_launchctl() {
    let dir = tempfile::tempdir().unwrap();
    let config = awkward_config(dir.path());
    let existing = "MAILTO=me\n# >>> nbkp schedule >>>\n0 0 * * * old nbkp line\n# <<< nbkp schedule <<<\n5 4 * * * other job\n";
    let crontab_log = fake_program(dir.path(), "crontab", existing);
    let launchctl_log = fake_program(dir.path(), "launchctl", "");
    let path = format!(
        "{}:{}",
        dir.path().join("fake-bin").display(),
        std::env::var("PATH").unwrap()
    );
    let schedule = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_nbkp"))
            .arg("schedule")
            .args(args)
            .arg("-c")
            .arg(&config)
            .env("PATH", &path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let cron_dir = dir.path().join("cron");
    schedule(&[
        "cron",
        "--every",
        "15m",
        "--install",
        "--install-dir",
        cron_dir.to_str().unwrap(),
    ]);
    let block = std::fs::read_to_string(cron_dir.join("nbkp.crontab")).unwrap();
    assert!(block.contains("\n*/15 * * * * nice -n 19 "), "{block}");
    assert!(!crontab_log.exists(), "crontab run without --enable");
    schedule(&[
        "cron",
        "--every",
        "15m",
        "--install",
        "--install-dir",
        cron_dir.to_str().unwrap(),
        "--enable",
    ]);
    // `crontab -l` read the old table; `crontab -` got it with nbkp's block
    // replaced in place and the other lines kept.
    let log = std::fs::read_to_string(&crontab_log).unwrap();
    let (calls, table) = log.split_once("-\n").unwrap();
    assert_eq!(calls, "-l\n");
    assert_eq!(table, format!("MAILTO=me\n{block}5 4 * * * other job\n"));

    let agents = dir.path().join("agents");
    schedule(&[
        "launchd",
        "--install",
        "--install-dir",
        agents.to_str().unwrap(),
        "--enable",
    ]);
    let plist = agents.join("nbkp.run.plist");
    assert!(std::fs::read_to_string(&plist)
        .unwrap()
        .contains("<key>StartInterval</key>"));
    assert_eq!(
        std::fs::read_to_string(&launchctl_log).unwrap(),
        format!("load -w {}\n", plist.display())
    );
}

/// `nbkp sh` writes the script as it renders it: a full disk is an error
/// that says so (exit 1), and `-o` then leaves the existing file as it was.
#[test]
fn sh_reports_a_failed_write_and_keeps_an_existing_script() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = local_pair(dir.path());
    let config = dir.path().join("nbkp.yaml");
    write(
        &config,
        &format!(
            "volumes:\n  s: {{type: local, path: {}}}\n  d: {{type: local, path: {}}}\nsync-endpoints:\n  es: {{volume: s}}\n  ed: {{volume: d}}\nsyncs:\n  copy: {{source: es, destination: ed}}\n",
            src.display(),
            dst.display()
        ),
    );
    let full = std::fs::File::create("/dev/full").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nbkp"))
        .args(["sh", "-c"])
        .arg(&config)
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("No space left on device"), "{err}");

    // A script already there, on a filesystem too small for the new one:
    // the old script stays whole.
    let small = dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16k", "tmpfs"])
        .arg(&small)
        .status()
        .unwrap();
    assert!(
        mounted.success(),
        "mount a small tmpfs (the tests run as root)"
    );
    let script = small.join("backup.sh");
    write(&script, "#!/bin/sh\necho old\n");
    let out = nbkp(&[
        "sh",
        "-c",
        config.to_str().unwrap(),
        "-o",
        script.to_str().unwrap(),
    ]);
    let kept = std::fs::read_to_string(&script);
    let left = std::fs::read_dir(&small).unwrap().count();
    let _ = Command::new("umount").arg(&small).status();
    assert_eq!(left, 1, "the temporary file was left behind");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("No space left on device"), "{err}");
    assert_eq!(kept.unwrap(), "#!/bin/sh\necho old\n");
}

/// `nbkp sh | head`: a reader that stops early ends the run quietly, as
/// SIGPIPE would (exit 141), and nothing is reported as an error.
#[test]
fn sh_into_a_closed_pipe_exits_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = local_pair(dir.path());
    let mut yaml = format!(
        "volumes:\n  s: {{type: local, path: {}}}\n  d: {{type: local, path: {}}}\nsync-endpoints:\n",
        src.display(),
        dst.display()
    );
    // Enough syncs for a script larger than a pipe's buffer.
    for i in 0..200 {
        yaml.push_str(&format!(
            "  s{i}: {{volume: s, subdir: s{i}}}\n  d{i}: {{volume: d, subdir: d{i}}}\n"
        ));
    }
    yaml.push_str("syncs:\n");
    for i in 0..200 {
        yaml.push_str(&format!("  c{i}: {{source: s{i}, destination: d{i}}}\n"));
    }
    let config = dir.path().join("nbkp.yaml");
    write(&config, &yaml);
    let mut child = Command::new(env!("CARGO_BIN_EXE_nbkp"))
        .args(["sh", "-c"])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(141));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
