//! Away from home (issue 20): three home hosts that do not answer (two by
//! address, one by a name whose DNS server does not answer) and a local
//! sync, default settings, inside a network namespace of the test bed
//! (`testbed::absent`) where packets to them vanish. `nbkp run`, the
//! script (under dash and bash) and `nbkp preflight check` must all exit 0
//! with the local sync done, having waited for the absent hosts about one
//! connect timeout (10 s) rather than one each.
//!
//! Wall times are printed; the bound asserted (25 s) is only a sanity
//! check that the hosts were not waited for one after another (that took
//! 30 to 40 s). The figures against a sequential baseline come from
//! `NBKP_BENCH=absent cargo bench --bench figures`.

mod testbed;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use testbed::absent::Away;
use testbed::{require, Component, Shell};

/// Far below three timeouts one after another (30 s and more).
const SANITY: Duration = Duration::from_secs(25);

/// Three remote syncs to the home hosts, then the local one.
fn setup(dir: &Path) -> (PathBuf, PathBuf) {
    testbed::absent::config(dir, &[0, 1, 2])
}

/// Runs `cmd` to its end (bounded), noting when `done` first exists.
fn timed(mut cmd: Command, done: &Path) -> (Output, Duration, Option<Duration>) {
    let start = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let pid = child.id();
    let watch = {
        let done = done.to_path_buf();
        std::thread::spawn(move || {
            while start.elapsed() < Duration::from_secs(90) {
                if done.exists() {
                    return Some(start.elapsed());
                }
                if !testbed::process_alive(pid) {
                    return done.exists().then(|| start.elapsed());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            None
        })
    };
    let out = testbed::wait_child(child, Duration::from_secs(90), "the run").expect("wait");
    let wall = start.elapsed();
    (out, wall, watch.join().unwrap())
}

fn check(what: &str, out: &Output, wall: Duration, local_done: Option<Duration>) {
    let log = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "{what}: {:.2} s, local sync done after {}\n{log}",
        wall.as_secs_f64(),
        local_done.map_or("never".into(), |d| format!("{:.2} s", d.as_secs_f64()))
    );
    assert_eq!(out.status.code(), Some(0), "{what}: exit status\n{log}");
    assert!(
        wall < SANITY,
        "{what} took {wall:?}: the absent hosts were waited for one after another\n{log}"
    );
}

fn nbkp(away: &Away) -> Command {
    away.command(env!("CARGO_BIN_EXE_nbkp"))
}

#[test]
fn run_waits_one_timeout_for_three_absent_hosts_and_does_the_local_sync() {
    if !require(&[
        Component::Root,
        Component::Netns,
        Component::Rsync,
        Component::SshClient,
    ]) {
        return;
    }
    let away = Away::start();
    let dir = tempfile::tempdir().unwrap();
    let (cfg, copied) = setup(dir.path());
    let mut cmd = nbkp(&away);
    cmd.arg("run").arg("-c").arg(&cfg);
    let (out, wall, local) = timed(cmd, &copied);
    check("nbkp run", &out, wall, local);
    assert_eq!(std::fs::read_to_string(&copied).unwrap(), "quarterly\n");
    let log = String::from_utf8_lossy(&out.stderr);
    for sync in ["docs-to-server", "docs-to-pi", "docs-to-nas"] {
        assert!(log.contains(&format!("SKIPPED {sync}: inactive")), "{log}");
    }
    assert!(log.contains("Completed sync: docs-to-usb"), "{log}");
    // The local sync did not wait for the remote probes (each bounded at
    // 11 s): it was done long before any of them could have given up.
    let local = local.expect("the local sync's file appeared");
    assert!(
        local < Duration::from_secs(10),
        "the local sync waited for the remote hosts: done after {local:?}"
    );
}

/// `-S ignore-none` wants every answer before anything runs: an absent
/// host is an error there, so nothing runs, the local sync included.
#[test]
fn under_ignore_none_the_local_sync_waits_and_nothing_runs() {
    if !require(&[
        Component::Root,
        Component::Netns,
        Component::Rsync,
        Component::SshClient,
    ]) {
        return;
    }
    let away = Away::start();
    let dir = tempfile::tempdir().unwrap();
    let (cfg, copied) = setup(dir.path());
    let mut cmd = nbkp(&away);
    cmd.args(["run", "-S", "ignore-none", "-c"]).arg(&cfg);
    let (out, _, local) = timed(cmd, &copied);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        local.is_none(),
        "the local sync ran under ignore-none\n{log}"
    );
    assert!(
        log.contains("Aborting: preflight checks found errors in 3 sync(s)"),
        "{log}"
    );
}

#[test]
fn preflight_check_waits_one_timeout_for_three_absent_hosts() {
    if !require(&[
        Component::Root,
        Component::Netns,
        Component::Rsync,
        Component::SshClient,
    ]) {
        return;
    }
    let away = Away::start();
    let dir = tempfile::tempdir().unwrap();
    let (cfg, copied) = setup(dir.path());
    let mut cmd = nbkp(&away);
    cmd.args(["preflight", "check", "-c"]).arg(&cfg);
    let (out, wall, _) = timed(cmd, &copied);
    check("nbkp preflight check", &out, wall, None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("docs-to-usb"), "{text}");
    assert!(text.contains("inactive"), "{text}");
}

#[test]
fn the_script_waits_one_timeout_for_three_absent_hosts_under_dash_and_bash() {
    if !require(&[
        Component::Root,
        Component::Netns,
        Component::Rsync,
        Component::SshClient,
        Component::Shell(Shell::Dash),
        Component::Shell(Shell::BashPosix),
    ]) {
        return;
    }
    let away = Away::start();
    for shell in [Shell::Dash, Shell::BashPosix] {
        let dir = tempfile::tempdir().unwrap();
        let (cfg, copied) = setup(dir.path());
        let script = dir.path().join("backup.sh");
        testbed::write_script(&cfg, &script);
        let mut cmd = away.command(shell.program());
        cmd.args(shell.args()).arg(&script);
        let (out, wall, local) = timed(cmd, &copied);
        check(
            &format!("the script under {}", shell.display()),
            &out,
            wall,
            local,
        );
        assert_eq!(std::fs::read_to_string(&copied).unwrap(), "quarterly\n");
        let local = local.expect("the local sync's file appeared");
        assert!(
            local < Duration::from_secs(10),
            "the local sync waited for the remote hosts: done after {local:?}"
        );
    }
}
