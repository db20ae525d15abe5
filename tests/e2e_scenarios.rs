//! End to end: the generated script and `nbkp run`, against real rsync, a
//! real sshd in its own namespaces and real btrfs volumes.

#[macro_use]
mod e2e;
mod testbed;

use std::path::{Path, PathBuf};

use e2e::{content, Backend, Mode, Script, Side, World};
use testbed::shells::Shell;

fn dash() -> Script {
    Script(Shell::Dash)
}

/// One sync from `src` to `dst` with `mode`, run twice with a change in
/// between: both runs succeed, the destination mirrors the source, snapshots
/// and `latest` are right, sentinels stay where they belong, and a remote
/// host sees one SSH login per run.
fn transfer(src_side: Side, dst_side: Side, mode: Mode, backend: &dyn Backend) {
    let remote = src_side == Side::Remote || dst_side == Side::Remote;
    let Some(mut w) = World::new(remote, mode == Mode::Btrfs) else {
        return;
    };
    let src_vol = w.volume(src_side, "src-vol", false);
    let src = src_vol.join("data");
    w.endpoint(src_side, &src, Mode::None, true, false);
    w.sample_tree(src_side, &src);
    let dst_vol = w.volume(dst_side, "dst-vol", mode == Mode::Btrfs);
    let dst = dst_vol.join("backup");
    w.endpoint(dst_side, &dst, mode, false, true);

    let mut config = String::new();
    if remote {
        config.push_str(&w.ssh_yaml());
    }
    config.push_str("volumes:\n");
    config.push_str(&World::volume_yaml(src_side, "src-vol", &src_vol));
    config.push_str(&World::volume_yaml(dst_side, "dst-vol", &dst_vol));
    config.push_str(&format!(
        "sync-endpoints:\n  src: {{volume: src-vol, subdir: data}}\n  dst: {{volume: dst-vol, subdir: backup{}}}\nsyncs:\n  copy: {{source: src, destination: dst}}\n",
        mode.yaml(Some(5))
    ));

    let logins = w.remote.as_ref().map(|r| r.login_count());
    backend.run(&w, &config, &[]).assert_ok();
    if let (Some(r), Some(before)) = (w.remote.as_ref(), logins) {
        assert_eq!(
            r.login_count() - before,
            1,
            "{}: one SSH login per run",
            backend.name()
        );
    }
    assert_eq!(
        w.manifest(src_side, &src),
        w.manifest(dst_side, &content(&dst, mode))
    );

    // Change the source: a new file, a deleted one, an edited one.
    w.sh(
        src_side,
        &format!(
            "echo delta > {0}/d.txt && rm {0}/sub/b.txt && echo alpha-edited > {0}/a.txt",
            testbed::shq(&src)
        ),
    );
    backend.run(&w, &config, &[]).assert_ok();
    assert_eq!(
        w.manifest(src_side, &src),
        w.manifest(dst_side, &content(&dst, mode))
    );

    // Sentinels: the destination keeps its own; none of the source's arrive.
    assert!(w.exists(dst_side, &dst.join(".nbkp-dst")));
    let inner = content(&dst, mode);
    assert!(!w.exists(dst_side, &inner.join(".nbkp-src")));
    assert!(!w.exists(dst_side, &inner.join(".nbkp-vol")));

    match mode {
        Mode::None => {}
        Mode::HardLink | Mode::Btrfs => {
            let snaps = w.snapshots(dst_side, &dst);
            assert_eq!(snaps.len(), 2, "{snaps:?}");
            assert_eq!(w.latest(dst_side, &dst), format!("snapshots/{}", snaps[1]));
            for s in &snaps {
                assert!(s.ends_with('Z') && s.len() == 24, "snapshot name {s}");
            }
            // Real milliseconds: both ending in .000 would be a one-in-a-million chance.
            assert!(
                snaps.iter().any(|s| &s[20..23] != "000"),
                "real milliseconds expected in {snaps:?}"
            );
            // The first snapshot still holds the old content.
            let old = dst.join("snapshots").join(&snaps[0]);
            assert!(w.exists(dst_side, &old.join("sub/b.txt")));
            if mode == Mode::HardLink {
                // Unchanged files share their inode between snapshots.
                let new = dst.join("snapshots").join(&snaps[1]);
                assert_eq!(
                    w.inode(dst_side, &old.join("sub/deeper/c.bin")),
                    w.inode(dst_side, &new.join("sub/deeper/c.bin"))
                );
            } else {
                let ro = w.sh(
                    dst_side,
                    &format!(
                        "btrfs property get {}/snapshots/{} ro",
                        testbed::shq(&dst),
                        snaps[1]
                    ),
                );
                assert_eq!(ro.trim(), "ro=true");
            }
        }
    }
}

macro_rules! transfer_tests {
    ($($name:ident: $src:ident -> $dst:ident, $mode:ident;)*) => {
        $(
            fn $name(be: &dyn Backend) {
                transfer(Side::$src, Side::$dst, Mode::$mode, be);
            }
        )*
    };
}

transfer_tests! {
    local_to_local_mirror: Local -> Local, None;
    local_to_local_hard_link: Local -> Local, HardLink;
    local_to_local_btrfs: Local -> Local, Btrfs;
    local_to_remote_mirror: Local -> Remote, None;
    local_to_remote_hard_link: Local -> Remote, HardLink;
    local_to_remote_btrfs: Local -> Remote, Btrfs;
    remote_to_local_mirror: Remote -> Local, None;
    remote_to_local_hard_link: Remote -> Local, HardLink;
    remote_to_local_btrfs: Remote -> Local, Btrfs;
    remote_to_remote_mirror: Remote -> Remote, None;
    remote_to_remote_hard_link: Remote -> Remote, HardLink;
    remote_to_remote_btrfs: Remote -> Remote, Btrfs;
}

/// Three steps: local → hard-link (local) → btrfs (remote) → mirror (local),
/// each reading the previous step's `latest/`, in one run.
fn three_step_chain_reads_latest(be: &dyn Backend) {
    let Some(mut w) = World::new(true, true) else {
        return;
    };
    let a = w.volume(Side::Local, "a", false);
    w.endpoint(Side::Local, &a, Mode::None, true, false);
    w.sample_tree(Side::Local, &a);
    let b = w.volume(Side::Local, "b", false);
    w.endpoint(Side::Local, &b, Mode::HardLink, true, true);
    let c = w.volume(Side::Remote, "c", true);
    w.endpoint(Side::Remote, &c, Mode::Btrfs, true, true);
    let d = w.volume(Side::Local, "d", false);
    w.endpoint(Side::Local, &d, Mode::None, false, true);
    let mut config = w.ssh_yaml();
    config.push_str("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "a", &a));
    config.push_str(&World::volume_yaml(Side::Local, "b", &b));
    config.push_str(&World::volume_yaml(Side::Remote, "c", &c));
    config.push_str(&World::volume_yaml(Side::Local, "d", &d));
    // File order differs from run order on purpose.
    config.push_str(
        "sync-endpoints:\n  ea: {volume: a}\n  eb: {volume: b, hard-link-snapshots: {enabled: true}}\n  ec: {volume: c, btrfs-snapshots: {enabled: true}}\n  ed: {volume: d}\n\
         syncs:\n  third: {source: ec, destination: ed}\n  second: {source: eb, destination: ec}\n  first: {source: ea, destination: eb}\n",
    );
    let out = be.run(&w, &config, &[]);
    out.assert_ok();
    let order: Vec<&str> = out
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("[nbkp] Starting sync: "))
        .collect();
    assert_eq!(order, ["first", "second", "third"]);
    assert_eq!(w.manifest(Side::Local, &a), w.manifest(Side::Local, &d));
    assert_eq!(
        w.manifest(Side::Local, &a),
        w.manifest(Side::Remote, &c.join("latest"))
    );
}

fn two_volume_config(w: &World, src: &Path, dst: &Path) -> String {
    let mut config = String::from("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "s", src));
    config.push_str(&World::volume_yaml(Side::Local, "d", dst));
    config.push_str("sync-endpoints:\n  es: {volume: s}\n  ed: {volume: d}\nsyncs:\n  copy: {source: es, destination: ed}\n");
    let _ = w;
    config
}

/// An unplugged destination (no `.nbkp-vol`) is skipped under the default
/// strictness, an error under ignore-none, and never attempted under
/// ignore-all; the empty mountpoint is never written to.
fn inactive_syncs_under_each_strictness(be: &dyn Backend) {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    w.sample_tree(Side::Local, &src);
    // The drive's mountpoint, with nothing mounted on it.
    let dst = w.volume_dir(Side::Local, "media-usb", false);
    let config = two_volume_config(&w, &src, &dst);
    for (args, code) in [
        (&[][..], 0),
        (&["-S", "ignore-inactive"][..], 0),
        (&["-S", "ignore-none"][..], 1),
        (&["--strictness=ignore-all"][..], 0),
    ] {
        let out = be.run(&w, &config, args);
        assert_eq!(out.code, code, "{args:?}:\n{}", out.stderr);
        assert!(out.stderr.contains(".nbkp-vol not found"), "{}", out.stderr);
        assert!(
            !out.stderr.contains("Starting sync"),
            "{args:?} attempted the sync:\n{}",
            out.stderr
        );
        assert_eq!(
            std::fs::read_dir(&dst).unwrap().count(),
            0,
            "the empty mountpoint was written to"
        );
    }
}

/// A failing sync cancels the sync reading its destination (transitively),
/// an independent sync still runs, and the exit status is 1.
fn a_failing_sync_cancels_its_downstream(be: &dyn Backend) {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let mut config = String::from("volumes:\n");
    let mut make = |w: &mut World, name: &str, mode: Mode, src: bool, dst: bool| {
        let p = w.volume(Side::Local, name, false);
        w.endpoint(Side::Local, &p, mode, src, dst);
        config.push_str(&World::volume_yaml(Side::Local, name, &p));
        p
    };
    let a = make(&mut w, "a", Mode::None, true, false);
    w.sample_tree(Side::Local, &a);
    make(&mut w, "b", Mode::HardLink, true, true);
    make(&mut w, "c", Mode::None, true, true);
    let d = make(&mut w, "d", Mode::None, false, true);
    let e = make(&mut w, "e", Mode::None, false, true);
    config.push_str(
        "sync-endpoints:\n  ea: {volume: a}\n  eb: {volume: b, hard-link-snapshots: {enabled: true}}\n  ec: {volume: c}\n  ed: {volume: d}\n  ee: {volume: e}\n\
         syncs:\n  broken: {source: ea, destination: eb, rsync-options: {extra-options: [--no-such-option]}}\n  \
         next: {source: eb, destination: ec}\n  after-next: {source: ec, destination: ed}\n  independent: {source: ea, destination: ee}\n",
    );
    let out = be.run(&w, &config, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("ERROR: broken: rsync exited with code 1"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("CANCELLED next: upstream sync broken failed"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("CANCELLED after-next: upstream sync next failed"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("Completed sync: independent"),
        "{}",
        out.stderr
    );
    assert_eq!(w.manifest(Side::Local, &a), w.manifest(Side::Local, &e));
    assert!(!d.join("a.txt").exists());
    // The failed hard-link sync left no snapshot behind and `latest` alone.
    assert!(w.snapshots(Side::Local, &w.root().join("b")).is_empty());
    assert_eq!(w.latest(Side::Local, &w.root().join("b")), "/dev/null");
}

/// A dry run changes nothing anywhere, also with snapshots and orphans.
fn dry_run_changes_nothing(be: &dyn Backend) {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    w.sample_tree(Side::Local, &src);
    let dst = w.volume(Side::Local, "dst", false);
    w.endpoint(Side::Local, &dst, Mode::HardLink, false, true);
    let mut config = String::from("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "s", &src));
    config.push_str(&World::volume_yaml(Side::Local, "d", &dst));
    config.push_str("sync-endpoints:\n  es: {volume: s}\n  ed: {volume: d, hard-link-snapshots: {enabled: true, max-snapshots: 1}}\nsyncs:\n  copy: {source: es, destination: ed}\n");
    be.run(&w, &config, &[]).assert_ok();
    // An orphan (newer than latest) and a change in the source.
    std::fs::create_dir(dst.join("snapshots/2999-01-01T00:00:00.000Z")).unwrap();
    std::fs::write(src.join("new.txt"), "new").unwrap();
    let before = testbed::tree::scan(&dst);
    let out = be.run(&w, &config, &["-n"]);
    out.assert_ok();
    assert!(out.stderr.contains("[dry-run]"), "{}", out.stderr);
    let after = testbed::tree::scan(&dst);
    assert_eq!(
        format!("{before:#?}"),
        format!("{after:#?}"),
        "the dry run changed the destination"
    );
}

/// Names with spaces, quotes, `$(…)`, backticks, newlines, leading dashes,
/// unicode and long names, hard links, symlinks and sparse files arrive
/// byte-identical (with `--hard-links`), under every shell.
#[test]
fn awkward_trees_arrive_identical_under_every_shell() {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    let tree = src.join("tree");
    std::fs::create_dir(&tree).unwrap();
    testbed::fixtures::awkward_tree(&tree);
    let mut config = String::from("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "s", &src));
    let mut dsts = Vec::new();
    for shell in Shell::ALL {
        if !testbed::require(&[testbed::Component::Shell(shell)]) {
            continue;
        }
        let dst = w.volume(Side::Local, &format!("dst-{}", shell.program()), false);
        w.endpoint(Side::Local, &dst, Mode::None, false, true);
        dsts.push((shell, dst));
    }
    for (shell, dst) in &dsts {
        let mut c = config.clone();
        c.push_str(&World::volume_yaml(Side::Local, "d", dst));
        c.push_str("sync-endpoints:\n  es: {volume: s}\n  ed: {volume: d}\nsyncs:\n  copy: {source: es, destination: ed, rsync-options: {extra-options: [--hard-links]}}\n");
        Script(*shell).run(&w, &c, &[]).assert_ok();
        // --safe-links (a default) drops symlinks that point out of the tree.
        let diff = testbed::tree::Compare::new()
            .exclude("symlinks/absolute")
            .run(&tree, &dst.join("tree"));
        assert!(diff.is_ok(), "under {shell}: {}", diff.unwrap_err());
        assert!(!dst.join("tree/symlinks/absolute").exists());
    }
}

/// Paths with quotes, `$(…)`, backticks and newlines in the config run
/// nothing: the canary file the payloads would create never appears.
fn hostile_paths_execute_nothing(be: &dyn Backend) {
    let Some(w) = World::new(false, false) else {
        return;
    };
    let canary = w.root().join("canary");
    let c = canary.display();
    let nasty = format!("it's $(touch {c}) `touch {c}` ;touch {c}\n\"x\"");
    let src = w.root().join(format!("src {nasty}"));
    let dst = w.root().join(format!("dst {nasty}"));
    for (p, sentinel) in [(&src, ".nbkp-src"), (&dst, ".nbkp-dst")] {
        std::fs::create_dir_all(p).unwrap();
        std::fs::write(p.join(".nbkp-vol"), "").unwrap();
        std::fs::write(p.join(sentinel), "").unwrap();
    }
    std::fs::write(src.join("file $(touch x)"), "payload").unwrap();
    let mut config = String::from("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "s", &src));
    config.push_str(&World::volume_yaml(Side::Local, "d", &dst));
    config.push_str(&format!(
        "sync-endpoints:\n  es: {{volume: s}}\n  ed: {{volume: d}}\nsyncs:\n  copy: {{source: es, destination: ed, filters: [{}]}}\n",
        e2e::yaml_str(&format!("- *$(touch {c})*"))
    ));
    be.run(&w, &config, &[]).assert_ok();
    assert!(!canary.exists(), "a payload ran under {}", be.name());
    assert_eq!(
        std::fs::read_to_string(dst.join("file $(touch x)")).unwrap(),
        "payload"
    );
}

/// Three syncs to one remote host: one SSH login for the whole run.
/// A local source with the sample tree and three push syncs `s0..s2` to
/// hard-link endpoints `e0..e2` on one remote volume; `has_dst(i)` says
/// whether `e{i}` gets its destination sentinel. Returns the source, the
/// remote volume and the config.
fn three_pushes(w: &mut World, has_dst: impl Fn(usize) -> bool) -> (PathBuf, PathBuf, String) {
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    w.sample_tree(Side::Local, &src);
    let vol = w.volume(Side::Remote, "vol", false);
    let mut config = w.ssh_yaml();
    config.push_str("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "s", &src));
    config.push_str(&World::volume_yaml(Side::Remote, "r", &vol));
    config.push_str("sync-endpoints:\n  es: {volume: s}\n");
    let mut syncs = String::from("syncs:\n");
    for i in 0..3 {
        let e = vol.join(format!("e{i}"));
        w.endpoint(Side::Remote, &e, Mode::HardLink, false, has_dst(i));
        config.push_str(&format!("  e{i}: {{volume: r, subdir: e{i}, hard-link-snapshots: {{enabled: true, max-snapshots: 3}}}}\n"));
        syncs.push_str(&format!("  s{i}: {{source: es, destination: e{i}}}\n"));
    }
    config.push_str(&syncs);
    (src, vol, config)
}

fn one_ssh_login_per_host_per_run(be: &dyn Backend) {
    let Some(mut w) = World::new(true, false) else {
        return;
    };
    let (_, _, config) = three_pushes(&mut w, |_| true);
    let before = w.remote().login_count();
    be.run(&w, &config, &[]).assert_ok();
    assert_eq!(
        w.remote().login_count() - before,
        1,
        "logins: {:?}",
        w.remote().logins()
    );
}

/// rsync reaches the remote host through a session opened ahead (a relay
/// is its -e), and a session whose sync does not run runs nothing: here
/// the first sync's, opened while the host answered its probes, for a
/// destination that turns out not to be there. None is left after the run.
fn sessions_opened_ahead_run_nothing_unless_used(be: &dyn Backend) {
    let Some(mut w) = World::new(true, false) else {
        return;
    };
    // e0 has no destination sentinel: its sync is inactive.
    let (src, vol, config) = three_pushes(&mut w, |i| i > 0);
    let before = w.remote().login_count();
    let watch = e2e::argv_watch::ArgvWatch::start();
    let out = be.run(&w, &config, &[]);
    let argvs = watch.stop();
    out.assert_ok();
    assert!(
        argvs
            .iter()
            .any(|a| a.contains("rsync") && a.contains("nbkp-relay")),
        "no rsync went through a session opened ahead: {argvs:?}"
    );
    assert_eq!(w.remote().login_count() - before, 1);
    assert!(w.snapshots(Side::Remote, &vol.join("e0")).is_empty());
    for i in 1..3 {
        let e = vol.join(format!("e{i}"));
        assert_eq!(w.snapshots(Side::Remote, &e).len(), 1);
        assert_eq!(
            w.manifest(Side::Local, &src),
            w.manifest(Side::Remote, &content(&e, Mode::HardLink))
        );
    }
    // Nothing is left on this test's sshd once the run is over: no session
    // waits there, used or not.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !w.remote().session_pids().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "sessions left after the run: {:?}",
            w.remote().session_pids()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The first sync's prepare goes with its host's probes, acting only where
/// the destination's sentinels are; when the checks then keep that sync
/// from running (its source is not there), what it made is undone: no
/// lock, no snapshot directory, `latest` as it was. Under ignore-none the
/// run stops before any sync, with the same result.
fn an_early_prepare_is_undone_when_the_first_sync_does_not_run(be: &dyn Backend) {
    let Some(mut w) = World::new(true, false) else {
        return;
    };
    // Two sources: the first without its `.nbkp-src` (inactive).
    let gone = w.volume(Side::Local, "gone", false);
    w.endpoint(Side::Local, &gone, Mode::None, false, false);
    w.sample_tree(Side::Local, &gone);
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    w.sample_tree(Side::Local, &src);
    let vol = w.volume(Side::Remote, "vol", false);
    let mut config = w.ssh_yaml();
    config.push_str("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "g", &gone));
    config.push_str(&World::volume_yaml(Side::Local, "s", &src));
    config.push_str(&World::volume_yaml(Side::Remote, "r", &vol));
    config.push_str("sync-endpoints:\n  eg: {volume: g}\n  es: {volume: s}\n");
    for i in 0..2 {
        w.endpoint(
            Side::Remote,
            &vol.join(format!("e{i}")),
            Mode::HardLink,
            false,
            true,
        );
        config.push_str(&format!(
            "  e{i}: {{volume: r, subdir: e{i}, hard-link-snapshots: {{enabled: true}}}}\n"
        ));
    }
    config.push_str(
        "syncs:\n  s0: {source: eg, destination: e0}\n  s1: {source: es, destination: e1}\n",
    );
    let e0 = vol.join("e0");
    let latest_before = w.sh(
        Side::Remote,
        &format!("readlink {}/latest", testbed::shq(&e0)),
    );
    for (args, code, s1_runs) in [(&[][..], 0, true), (&["-S", "ignore-none"][..], 1, false)] {
        let e1_before = w.snapshots(Side::Remote, &vol.join("e1")).len();
        let out = be.run(&w, &config, args);
        assert_eq!(out.code, code, "{args:?}:\n{}", out.stderr);
        assert!(
            !w.exists(Side::Remote, &e0.join(".nbkp-lock")),
            "{args:?}: lock left:\n{}",
            out.stderr
        );
        assert!(
            w.snapshots(Side::Remote, &e0).is_empty(),
            "{args:?}: {:?}",
            w.snapshots(Side::Remote, &e0)
        );
        assert_eq!(
            w.sh(
                Side::Remote,
                &format!("readlink {}/latest", testbed::shq(&e0))
            ),
            latest_before
        );
        assert_eq!(
            w.snapshots(Side::Remote, &vol.join("e1")).len() - e1_before,
            usize::from(s1_runs),
            "{args:?}:\n{}",
            out.stderr
        );
    }
}

/// Syncs that overlap (the next one's prepare during this rsync, this
/// commit during the next rsync) keep their own outcomes, reported in
/// order: here the middle destination is locked by another machine's run,
/// so no rsync follows the first sync's; its commit still runs, and the
/// third sync completes.
fn overlapping_syncs_keep_their_own_outcomes(be: &dyn Backend) {
    let Some(mut w) = World::new(true, false) else {
        return;
    };
    let (src, vol, config) = three_pushes(&mut w, |_| true);
    let lock = vol.join("e1/.nbkp-lock");
    w.sh(
        Side::Remote,
        &format!("ln -s another-machine_some-boot_1 '{}'", lock.display()),
    );
    let out = be.run(&w, &config, &[]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("another run is writing the destination"),
        "{}",
        out.stderr
    );
    for i in [0, 2] {
        let e = vol.join(format!("e{i}"));
        assert_eq!(w.snapshots(Side::Remote, &e).len(), 1, "e{i}");
        assert_eq!(
            w.manifest(Side::Local, &src),
            w.manifest(Side::Remote, &content(&e, Mode::HardLink))
        );
        assert!(
            !w.exists(Side::Remote, &e.join(".nbkp-lock")),
            "e{i} lock left"
        );
    }
    assert!(w.snapshots(Side::Remote, &vol.join("e1")).is_empty());
    assert!(
        w.exists(Side::Remote, &lock),
        "another run's lock was removed"
    );
    let done = |slug: &str| {
        out.stderr
            .find(&format!("Completed sync: {slug}"))
            .unwrap_or_else(|| panic!("{slug} not completed:\n{}", out.stderr))
    };
    assert!(done("s0") < done("s2"), "{}", out.stderr);
}

/// An unreachable host is an expected state: skipped, exit 0.
fn unreachable_host_is_skipped(be: &dyn Backend) {
    let Some(mut w) = World::new(true, false) else {
        return;
    };
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    let vol = w.volume(Side::Remote, "vol", false);
    w.endpoint(Side::Remote, &vol, Mode::None, false, true);
    let mut config = w.ssh_yaml().replace(
        &format!("port: {}", w.remote().endpoint().port()),
        "port: 1",
    );
    config = config.replace(
        "    connection-options:\n",
        "    connection-options:\n      connect-timeout: 2\n",
    );
    config.push_str("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "s", &src));
    config.push_str(&World::volume_yaml(Side::Remote, "r", &vol));
    config.push_str("sync-endpoints:\n  es: {volume: s}\n  er: {volume: r}\nsyncs:\n  push: {source: es, destination: er}\n");
    let out = be.run(&w, &config, &[]);
    out.assert_ok();
    assert!(out.stderr.contains("unreachable"), "{}", out.stderr);
    assert!(out.stderr.contains("1 skipped"), "{}", out.stderr);
}

/// Through a proxy hop (the remote host itself as bastion): the transfer
/// works, and the run logs in twice — once at the hop, once at the target.
fn proxy_jump_chain_reaches_the_host(be: &dyn Backend) {
    let Some(mut w) = World::new(true, false) else {
        return;
    };
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    w.sample_tree(Side::Local, &src);
    let vol = w.volume(Side::Remote, "vol", false);
    w.endpoint(Side::Remote, &vol, Mode::HardLink, false, true);
    let mut config = String::from("ssh-endpoints:\n");
    config.push_str(&w.endpoint_yaml("hop", "root", ""));
    config.push_str(&w.endpoint_yaml("server", "root", "    proxy-jump: hop\n"));
    config.push_str("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "s", &src));
    config.push_str(&World::volume_yaml(Side::Remote, "r", &vol));
    config.push_str("sync-endpoints:\n  es: {volume: s}\n  er: {volume: r, hard-link-snapshots: {enabled: true}}\nsyncs:\n  push: {source: es, destination: er}\n");
    let before = w.remote().login_count();
    be.run(&w, &config, &[]).assert_ok();
    assert_eq!(
        w.manifest(Side::Local, &src),
        w.manifest(Side::Remote, &vol.join("latest"))
    );
    assert_eq!(
        w.remote().login_count() - before,
        2,
        "{:?}",
        w.remote().logins()
    );
}

/// A remote path written `~/…` is the SSH user's home there (the Python
/// nbkp quoted the tilde and never found the sentinel).
fn remote_tilde_paths_are_the_login_home(be: &dyn Backend) {
    let Some(mut w) = World::new(true, false) else {
        return;
    };
    let user = testbed::remote::TEST_USER;
    let home = w.sh(Side::Remote, &format!("getent passwd {user} | cut -d: -f6"));
    let name = format!("nbkp-e2e-{}", testbed::unique_tag());
    let dir = Path::new(home.trim()).join(&name);
    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(dir.clone());
    w.sh(Side::Remote, &format!("mkdir -p {0}/backup && touch {0}/.nbkp-vol {0}/backup/.nbkp-dst && chown -R {user} {0}", testbed::shq(&dir)));
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    w.sample_tree(Side::Local, &src);
    let mut config = String::from("ssh-endpoints:\n");
    config.push_str(&w.endpoint_yaml("server", user, ""));
    config.push_str("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "s", &src));
    config.push_str(&format!(
        "  r: {{type: remote, ssh-endpoint: server, path: \"~/{name}\"}}\n"
    ));
    config.push_str("sync-endpoints:\n  es: {volume: s}\n  er: {volume: r, subdir: backup}\nsyncs:\n  push: {source: es, destination: er}\n");
    be.run(&w, &config, &[]).assert_ok();
    assert_eq!(
        w.manifest(Side::Local, &src),
        w.manifest(Side::Remote, &dir.join("backup"))
    );
}

/// In a dry run, a sync whose source snapshot its upstream would create is
/// skipped as pending, does not block anything, and the run succeeds.
fn dry_run_of_a_fresh_chain_is_pending_not_failed(be: &dyn Backend) {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let a = w.volume(Side::Local, "a", false);
    w.endpoint(Side::Local, &a, Mode::None, true, false);
    w.sample_tree(Side::Local, &a);
    let b = w.volume(Side::Local, "b", false);
    w.endpoint(Side::Local, &b, Mode::HardLink, true, true);
    let c = w.volume(Side::Local, "c", false);
    w.endpoint(Side::Local, &c, Mode::None, false, true);
    let mut config = String::from("volumes:\n");
    for (n, p) in [("a", &a), ("b", &b), ("c", &c)] {
        config.push_str(&World::volume_yaml(Side::Local, n, p));
    }
    config.push_str("sync-endpoints:\n  ea: {volume: a}\n  eb: {volume: b, hard-link-snapshots: {enabled: true}}\n  ec: {volume: c}\nsyncs:\n  first: {source: ea, destination: eb}\n  second: {source: eb, destination: ec}\n");
    let out = be.run(&w, &config, &["--dry-run"]);
    out.assert_ok();
    assert!(
        out.stderr
            .contains("SKIPPED second: source snapshot pending (dry-run)"),
        "{}",
        out.stderr
    );
    assert!(w.snapshots(Side::Local, &b).is_empty());
    assert!(!c.join("a.txt").exists());
    // For real, both run and the chain delivers.
    be.run(&w, &config, &[]).assert_ok();
    assert_eq!(w.manifest(Side::Local, &a), w.manifest(Side::Local, &c));
}

/// A preflight error aborts the run by default; `-S ignore-all` attempts
/// the sync anyway (here it can succeed: `latest` is simply missing).
fn ignore_all_attempts_syncs_with_preflight_errors(be: &dyn Backend) {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let a = w.volume(Side::Local, "a", false);
    w.endpoint(Side::Local, &a, Mode::None, true, false);
    w.sample_tree(Side::Local, &a);
    let b = w.volume(Side::Local, "b", false);
    w.endpoint(Side::Local, &b, Mode::HardLink, false, true);
    std::fs::remove_file(b.join("latest")).unwrap();
    let mut config = String::from("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "a", &a));
    config.push_str(&World::volume_yaml(Side::Local, "b", &b));
    config.push_str("sync-endpoints:\n  ea: {volume: a}\n  eb: {volume: b, hard-link-snapshots: {enabled: true}}\nsyncs:\n  copy: {source: ea, destination: eb}\n");
    let out = be.run(&w, &config, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("latest symlink not found"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("Aborting: preflight checks found errors in 1 sync(s)"),
        "{}",
        out.stderr
    );
    assert!(w.snapshots(Side::Local, &b).is_empty());
    let out = be.run(&w, &config, &["-S", "ignore-all"]);
    out.assert_ok();
    assert!(
        out.stderr
            .contains("preflight errors ignored (ignore-all), attempting"),
        "{}",
        out.stderr
    );
    assert_eq!(
        w.manifest(Side::Local, &a),
        w.manifest(Side::Local, &b.join("latest"))
    );
}

/// Niceness and IO class of every running rsync whose command line names
/// every one of `needles` (`cwd:PATH`: whose working directory is inside
/// PATH), read from /proc (the remote host shares this pid namespace).
fn rsync_priorities(needles: &[&str]) -> Vec<(i64, String)> {
    let mut found = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let words: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect();
        if words.first().map(|w| w.rsplit('/').next() == Some("rsync")) != Some(true)
            || !needles.iter().all(|n| match n.strip_prefix("cwd:") {
                Some(dir) => std::fs::read_link(format!("/proc/{pid}/cwd"))
                    .is_ok_and(|cwd| cwd.starts_with(dir)),
                None => words.iter().any(|w| w.contains(n)),
            })
        {
            continue;
        }
        // Field 19 of /proc/PID/stat is the nice value (after the `(comm)`).
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(after) = stat.rsplit_once(") ").map(|(_, r)| r) else {
            continue;
        };
        let Some(nice) = after.split(' ').nth(16).and_then(|n| n.parse().ok()) else {
            continue;
        };
        let io = std::process::Command::new("ionice")
            .args(["-p", &pid.to_string()])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        // A process that was exiting has dropped its IO context ("none"):
        // keep the sample only if it is still alive and not a zombie after.
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|st| {
                st.rsplit_once(") ")
                    .map(|(_, r)| !r.starts_with('Z') && !r.starts_with('X'))
            })
            .unwrap_or(false);
        if !io.is_empty() && alive {
            found.push((nice, io));
        }
    }
    found
}

/// `priority:` makes rsync really run under nice and ionice: seen in /proc
/// during slow transfers (local, and remote → remote where rsync runs on
/// the server), and pruning still works under it.
fn priority_runs_rsync_under_nice_and_ionice(be: &dyn Backend) {
    let Some(mut w) = World::new(true, false) else {
        return;
    };
    let src = w.volume(Side::Local, "prio-src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    w.sh(
        Side::Local,
        &format!(
            "head -c 3000000 /dev/urandom > {}/big.bin",
            testbed::shq(&src)
        ),
    );
    let dst = w.volume(Side::Local, "prio-dst", false);
    w.endpoint(Side::Local, &dst, Mode::HardLink, false, true);
    let ra = w.volume(Side::Remote, "prio-ra", false);
    w.endpoint(Side::Remote, &ra, Mode::None, true, false);
    w.sh(
        Side::Remote,
        &format!(
            "head -c 3000000 /dev/urandom > {}/big.bin",
            testbed::shq(&ra)
        ),
    );
    let rb = w.volume(Side::Remote, "prio-rb", false);
    w.endpoint(Side::Remote, &rb, Mode::None, false, true);
    let rc = w.volume(Side::Remote, "prio-rc", false);
    w.endpoint(Side::Remote, &rc, Mode::None, false, true);
    let mut config = w.ssh_yaml();
    config.push_str("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "prio-src", &src));
    config.push_str(&World::volume_yaml(Side::Local, "prio-dst", &dst));
    config.push_str(&World::volume_yaml(Side::Remote, "prio-ra", &ra));
    config.push_str(&World::volume_yaml(Side::Remote, "prio-rb", &rb));
    config.push_str(&World::volume_yaml(Side::Remote, "prio-rc", &rc));
    config.push_str(
        "sync-endpoints:\n  s: {volume: prio-src}\n  d: {volume: prio-dst, hard-link-snapshots: {enabled: true, max-snapshots: 1}}\n  ra: {volume: prio-ra}\n  rb: {volume: prio-rb}\n  rc: {volume: prio-rc}\n\
         syncs:\n  local:\n    source: s\n    destination: d\n    priority: {nice: 13, ionice-class: idle}\n    rsync-options: {extra-options: [--bwlimit=1000]}\n\
         \x20 remote:\n    source: ra\n    destination: rb\n    priority: {nice: 7, ionice-class: best-effort, ionice-level: 6}\n    rsync-options: {extra-options: [--bwlimit=1000]}\n\
         \x20 push:\n    source: s\n    destination: rc\n    priority: {nice: 5, ionice-class: idle}\n    rsync-options: {extra-options: [--bwlimit=1000]}\n",
    );
    let mut child = be.spawn(&w, &config);
    let local_needle = dst.join("snapshots").display().to_string();
    let remote_needle = rb.display().to_string();
    let mut local_seen = Vec::new();
    let mut remote_seen = Vec::new();
    // The server side of the push: rsync started by the remote shell. Its
    // command line names no path (--protect-args); it works inside rc.
    let mut server_seen = Vec::new();
    let server_needle = format!("cwd:{}", rc.display());
    let status = loop {
        local_seen.extend(rsync_priorities(&[&local_needle]));
        remote_seen.extend(rsync_priorities(&[&remote_needle]));
        server_seen.extend(rsync_priorities(&["--server", &server_needle]));
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(status.success(), "{}: run failed ({status})", be.name());
    assert!(!local_seen.is_empty(), "{}: no local rsync seen", be.name());
    for (nice, io) in &local_seen {
        assert_eq!((*nice, io.as_str()), (13, "idle"), "{}", be.name());
    }
    assert!(
        !remote_seen.is_empty(),
        "{}: no remote rsync seen",
        be.name()
    );
    for (nice, io) in &remote_seen {
        assert_eq!(
            (*nice, io.as_str()),
            (7, "best-effort: prio 6"),
            "{}",
            be.name()
        );
    }
    assert!(
        !server_seen.is_empty(),
        "{}: no server rsync seen",
        be.name()
    );
    for (nice, io) in &server_seen {
        assert_eq!(
            (*nice, io.as_str()),
            (5, "idle"),
            "{}: the push's server side",
            be.name()
        );
    }
    assert_eq!(w.manifest(Side::Local, &src), w.manifest(Side::Remote, &rc));
    // The third run prunes the first snapshot (max 1; the second run keeps
    // it, as it was `latest` when that run started) at that priority.
    let first = w.snapshots(Side::Local, &dst);
    assert_eq!(first.len(), 1);
    std::fs::write(src.join("more.txt"), "more").unwrap();
    be.run(&w, &config, &[]).assert_ok();
    assert_eq!(w.snapshots(Side::Local, &dst).len(), 2, "the pair rule");
    std::fs::write(src.join("even-more.txt"), "more").unwrap();
    let out = be.run(&w, &config, &[]);
    out.assert_ok();
    let third = w.snapshots(Side::Local, &dst);
    assert_eq!(third.len(), 2, "{third:?}");
    assert!(!third.contains(&first[0]), "{third:?}");
    assert!(
        out.stderr.contains(&format!(
            "pruned snapshot {} (retention: max-snapshots)",
            first[0]
        )),
        "{}",
        out.stderr
    );
    assert!(dst.join("latest/even-more.txt").is_file());
}

/// `-p overall` shows rsync's whole-transfer progress, `-p per-file` each file.
fn progress_modes(be: &dyn Backend) {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let a = w.volume(Side::Local, "a", false);
    w.endpoint(Side::Local, &a, Mode::None, true, false);
    w.sample_tree(Side::Local, &a);
    let b = w.volume(Side::Local, "b", false);
    w.endpoint(Side::Local, &b, Mode::None, false, true);
    let config = two_volume_config(&w, &a, &b);
    let out = be.run(&w, &config, &["-p", "overall"]);
    out.assert_ok();
    assert!(
        out.stdout.contains("Number of files"),
        "--stats missing:\n{}",
        out.stdout
    );
    std::fs::write(a.join("fresh.txt"), "new").unwrap();
    let out = be.run(&w, &config, &["--progress=per-file"]);
    out.assert_ok();
    assert!(
        out.stdout.contains("fresh.txt"),
        "-v --progress missing:\n{}",
        out.stdout
    );
}

/// The script refuses unknown options and modes with exit 1 (the Python
/// nbkp's scripts do the same); `nbkp run` leaves that to clap (exit 2).
#[test]
fn bad_options_are_refused() {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let a = w.volume(Side::Local, "a", false);
    w.endpoint(Side::Local, &a, Mode::None, true, false);
    let b = w.volume(Side::Local, "b", false);
    w.endpoint(Side::Local, &b, Mode::None, false, true);
    let config = two_volume_config(&w, &a, &b);
    let out = dash().run(&w, &config, &["-p", "weird"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("Unknown progress mode: weird"),
        "{}",
        out.stderr
    );
    let out = dash().run(&w, &config, &["--bogus"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("Unknown option: --bogus"),
        "{}",
        out.stderr
    );
    for args in [&["-p", "weird"][..], &["--bogus"][..]] {
        let out = e2e::Run.run(&w, &config, args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
    }
}

/// macOS ships openrsync as `rsync`, which lacks options nbkp uses. It
/// cannot be installed here, so a stand-in prints openrsync's version line
/// (a mock, hence the name): the script refuses clearly before any transfer.
#[test]
fn openrsync_is_refused_clearly_mock_binary() {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let a = w.volume(Side::Local, "a", false);
    w.endpoint(Side::Local, &a, Mode::None, true, false);
    let b = w.volume(Side::Local, "b", false);
    w.endpoint(Side::Local, &b, Mode::None, false, true);
    let bin = w.root().join("fake-bin");
    std::fs::create_dir(&bin).unwrap();
    let fake = bin.join("rsync");
    std::fs::write(&fake, "#!/bin/sh\necho 'openrsync: protocol version 29'\necho 'rsync version 2.6.9 compatible'\nexit 0\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let script = dash().generate(&w, &two_volume_config(&w, &a, &b));
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("dash")
        .arg(&script)
        .env("PATH", path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is openrsync, which lacks options nbkp uses: install rsync 3"),
        "{stderr}"
    );
    assert!(!stderr.contains("Starting sync"), "{stderr}");
}

/// Snapshots beyond `max-snapshots` are pruned oldest first, `latest` is
/// never pruned, an unfinished snapshot (`.nbkp-partial-<name>`, left by an
/// interrupted run) is removed by the next real run, a complete one newer
/// than `latest` is not (the clock was behind), and entries that are not
/// snapshots are never touched.
fn pruning_orphans_and_foreign_entries(be: &dyn Backend) {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    w.sample_tree(Side::Local, &src);
    let dst = w.volume(Side::Local, "dst", false);
    w.endpoint(Side::Local, &dst, Mode::HardLink, false, true);
    let snaps = dst.join("snapshots");
    std::fs::create_dir(snaps.join("lost+found")).unwrap();
    std::fs::write(snaps.join("notes.txt"), "keep me").unwrap();
    let mut config = String::from("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "s", &src));
    config.push_str(&World::volume_yaml(Side::Local, "d", &dst));
    config.push_str("sync-endpoints:\n  es: {volume: s}\n  ed: {volume: d, hard-link-snapshots: {enabled: true, max-snapshots: 2}}\nsyncs:\n  copy: {source: es, destination: ed}\n");
    for _ in 0..4 {
        be.run(&w, &config, &[]).assert_ok();
    }
    let names: Vec<String> = w
        .snapshots(Side::Local, &dst)
        .into_iter()
        .filter(|n| n.starts_with("20"))
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(
        w.latest(Side::Local, &dst),
        format!("snapshots/{}", names[1])
    );
    assert!(snaps.join("lost+found").is_dir() && snaps.join("notes.txt").is_file());

    // An interrupted run left an unfinished snapshot; a run whose clock was
    // ahead left a complete one newer than what follows.
    let orphan = snaps.join(".nbkp-partial-2998-01-01T00:00:00.000Z");
    std::fs::create_dir(&orphan).unwrap();
    let ahead = snaps.join("2999-01-01T00:00:00.000Z");
    std::fs::create_dir(&ahead).unwrap();
    let out = be.run(&w, &config, &[]);
    out.assert_ok();
    assert!(
        out.stderr
            .contains("removed unfinished snapshot 2998-01-01T00:00:00.000Z"),
        "{}",
        out.stderr
    );
    assert!(!orphan.exists());
    assert!(ahead.is_dir(), "a complete snapshot is not unfinished");
    assert!(
        out.stderr
            .contains("is behind the newest snapshot 2999-01-01T00:00:00.000Z"),
        "{}",
        out.stderr
    );
    assert_eq!(
        w.manifest(Side::Local, &src),
        w.manifest(Side::Local, &dst.join("latest"))
    );
}

/// A snapshot name that is already taken is never reused: a clock on an
/// existing name (not after the newest) names the snapshot 1 ms after the
/// newest; a name whose unfinished directory exists is refused (exit 75)
/// and the script retries with a new name.
#[test]
fn a_taken_snapshot_name_is_never_reused() {
    let Some(w) = World::new(false, false) else {
        return;
    };
    let ep = w.root().join("ep");
    let taken = "2026-01-01T00:00:00.000Z";
    std::fs::create_dir_all(ep.join("snapshots").join(taken)).unwrap();
    std::os::unix::fs::symlink(format!("snapshots/{taken}"), ep.join("latest")).unwrap();
    let lib =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/lib.sh")).unwrap();
    let begin = |candidate: &str| {
        std::process::Command::new("dash")
            .args([
                "-c",
                &format!("{lib}\nnbkp_begin hard-link 0 \"$1\" {candidate} me_boot_1 -"),
                "nbkp",
            ])
            .arg(&ep)
            .output()
            .unwrap()
    };
    let out = begin(taken);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("snapshot 2026-01-01T00:00:00.001Z\n"),
        "{text}"
    );
    assert!(ep
        .join("snapshots/.nbkp-partial-2026-01-01T00:00:00.001Z")
        .is_dir());
    std::fs::remove_file(ep.join(".nbkp-lock")).unwrap();
    // A later clock whose unfinished directory exists: refused.
    let later = "2026-01-02T00:00:00.000Z";
    std::fs::create_dir(ep.join("snapshots").join(format!(".nbkp-partial-{later}"))).unwrap();
    assert_eq!(begin(later).status.code(), Some(75));
    assert!(
        ep.join("snapshots").join(taken).is_dir(),
        "the taken one is untouched"
    );
}

/// `--relative-src --relative-dst`: the script and the data move together
/// to another place and the script still finds them.
#[test]
fn relative_scripts_move_with_their_data() {
    let Some(w) = World::new(false, false) else {
        return;
    };
    let base = w.root().join("kit");
    for (p, s) in [("data", ".nbkp-src"), ("usb", ".nbkp-dst")] {
        std::fs::create_dir_all(base.join(p)).unwrap();
        std::fs::write(base.join(p).join(".nbkp-vol"), "").unwrap();
        std::fs::write(base.join(p).join(s), "").unwrap();
    }
    std::fs::write(base.join("data/file.txt"), "moved").unwrap();
    let cfg = w.root().join("rel.yaml");
    std::fs::write(
        &cfg,
        format!(
            "volumes:\n  d: {{type: local, path: {0}/data}}\n  u: {{type: local, path: {0}/usb}}\nsync-endpoints:\n  ed: {{volume: d}}\n  eu: {{volume: u}}\nsyncs:\n  copy: {{source: ed, destination: eu}}\n",
            base.display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(base.join("scripts")).unwrap();
    let script = base.join("scripts/backup.sh");
    let gen = std::process::Command::new(env!("CARGO_BIN_EXE_nbkp"))
        .args(["sh", "--relative-src", "--relative-dst", "-c"])
        .arg(&cfg)
        .arg("-o")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        gen.status.success(),
        "{}",
        String::from_utf8_lossy(&gen.stderr)
    );
    let moved = w.root().join("elsewhere");
    std::fs::rename(&base, &moved).unwrap();
    let out = std::process::Command::new("dash")
        .arg(moved.join("scripts/backup.sh"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(moved.join("usb/file.txt")).unwrap(),
        "moved"
    );
}

/// Interrupted with SIGTERM during a transfer, the script closes the shared
/// SSH connection and removes its private directory.
#[test]
fn an_interrupted_script_closes_its_connection() {
    let Some(mut w) = World::new(true, false) else {
        return;
    };
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    // Big enough to still be transferring when the signal arrives.
    testbed::fixtures::large_file_at(&src.join("big.bin"), 64 * 1024 * 1024);
    let vol = w.volume(Side::Remote, "vol", false);
    w.endpoint(Side::Remote, &vol, Mode::None, false, true);
    let mut config = w.ssh_yaml();
    config.push_str("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "s", &src));
    config.push_str(&World::volume_yaml(Side::Remote, "r", &vol));
    config.push_str("sync-endpoints:\n  es: {volume: s}\n  er: {volume: r}\nsyncs:\n  push: {source: es, destination: er, rsync-options: {extra-options: [--bwlimit=2M]}}\n");
    let script = dash().generate(&w, &config);
    let mut child = std::process::Command::new("dash")
        .arg(&script)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The script's control directory, from its ssh processes' arguments.
    let mut ctl = None;
    testbed::wait_for(
        "the transfer to start",
        std::time::Duration::from_secs(20),
        || {
            ctl = control_dir_of(child.id());
            ctl.is_some() && w.remote().session_pids().len() >= 2
        },
    );
    let ctl = ctl.unwrap();
    assert!(ctl.is_dir());
    testbed::kill(child.id(), libc_sigterm());
    let status = child.wait().unwrap();
    assert!(!status.success());
    testbed::wait_for(
        "the control directory to go",
        std::time::Duration::from_secs(10),
        || !ctl.exists(),
    );
    testbed::wait_for(
        "the master connection to close",
        std::time::Duration::from_secs(10),
        || w.remote().session_pids().is_empty(),
    );
}

/// `/tmp/nbkp.XXXXXX` named by a `ControlPath=` argument of a descendant.
fn control_dir_of(pid: u32) -> Option<PathBuf> {
    testbed::descendants(pid).into_iter().find_map(|p| {
        let cmdline = std::fs::read(format!("/proc/{p}/cmdline")).ok()?;
        cmdline.split(|b| *b == 0).find_map(|arg| {
            let arg = String::from_utf8_lossy(arg);
            let path = arg.strip_prefix("ControlPath=")?;
            Path::new(path).parent().map(|d| d.to_path_buf())
        })
    })
}

fn libc_sigterm() -> i32 {
    15
}

/// The owner string a run on this machine with process `pid` writes.
fn lock_owner(pid: u32) -> String {
    let clean = |s: &str, extra: &[u8]| -> String {
        s.bytes()
            .filter(|b| b.is_ascii_alphanumeric() || extra.contains(b))
            .map(char::from)
            .collect()
    };
    let host = clean(
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap()
            .trim(),
        b".-",
    );
    let boot = clean(
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .unwrap()
            .trim(),
        b"-",
    );
    format!("{host}_{boot}_{pid}")
}

/// A destination another live run is writing is left alone (exit 3, the
/// lock kept); a lock whose run is gone is broken; a lock from another
/// machine is kept; a finished run leaves no lock behind.
fn destination_locks(be: &dyn Backend) {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    w.sample_tree(Side::Local, &src);
    let dst = w.volume(Side::Local, "dst", false);
    w.endpoint(Side::Local, &dst, Mode::HardLink, false, true);
    let mut config = String::from("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "s", &src));
    config.push_str(&World::volume_yaml(Side::Local, "d", &dst));
    config.push_str("sync-endpoints:\n  es: {volume: s}\n  ed: {volume: d, hard-link-snapshots: {enabled: true}}\nsyncs:\n  copy: {source: es, destination: ed}\n");
    let lock = dst.join(".nbkp-lock");
    let mut sleeper = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    std::os::unix::fs::symlink(lock_owner(sleeper.id()), &lock).unwrap();

    let out = be.run(&w, &config, &[]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("another run is writing the destination"),
        "{}",
        out.stderr
    );
    assert!(lock.is_symlink(), "a live run's lock was broken");
    assert!(w.snapshots(Side::Local, &dst).is_empty());

    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    let out = be.run(&w, &config, &[]);
    out.assert_ok();
    assert!(
        out.stderr
            .contains("removed the lock of a run that is gone"),
        "{}",
        out.stderr
    );
    assert!(!lock.is_symlink(), "the run left its lock");
    assert_eq!(w.snapshots(Side::Local, &dst).len(), 1);

    // Something that is not our lock in its place: never taken over.
    std::fs::create_dir(&lock).unwrap();
    let out = be.run(&w, &config, &[]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(lock.is_dir() && std::fs::read_dir(&lock).unwrap().next().is_none());
    std::fs::remove_dir(&lock).unwrap();
    std::os::unix::fs::symlink("another-machine_some-boot_1", &lock).unwrap();
    let out = be.run(&w, &config, &[]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(lock.is_symlink());
}

/// Two runs at once on one destination: the second finds it locked and
/// stops with exit 3 while the first completes.
fn concurrent_runs_never_share_a_destination(be: &dyn Backend) {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    testbed::fixtures::large_file_at(&src.join("big.bin"), 8 * 1024 * 1024);
    let dst = w.volume(Side::Local, "dst", false);
    w.endpoint(Side::Local, &dst, Mode::None, false, true);
    let mut config = String::from("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "s", &src));
    config.push_str(&World::volume_yaml(Side::Local, "d", &dst));
    config.push_str("sync-endpoints:\n  es: {volume: s}\n  ed: {volume: d}\nsyncs:\n  copy: {source: es, destination: ed, rsync-options: {extra-options: [--bwlimit=4M]}}\n");
    let first = std::thread::scope(|scope| {
        let first = scope.spawn(|| be.run(&w, &config, &[]));
        testbed::wait_for(
            "the first run to lock",
            std::time::Duration::from_secs(20),
            || dst.join(".nbkp-lock").is_symlink(),
        );
        let second = be.run(&w, &config, &[]);
        assert_eq!(second.code, 3, "{}", second.stderr);
        assert!(
            second
                .stderr
                .contains("another run is writing the destination"),
            "{}",
            second.stderr
        );
        first.join().unwrap()
    });
    first.assert_ok();
    assert!(!dst.join(".nbkp-lock").is_symlink());
    assert_eq!(
        std::fs::metadata(dst.join("big.bin")).unwrap().len(),
        8 * 1024 * 1024
    );
}

// Every scenario above runs through both back-ends, with the same
// assertions: the generated script under dash, and `nbkp run`.

both_backends!(
    four_remote_hosts,
    destination_locks,
    concurrent_runs_never_share_a_destination,
    local_to_local_mirror,
    local_to_local_hard_link,
    local_to_local_btrfs,
    local_to_remote_mirror,
    local_to_remote_hard_link,
    local_to_remote_btrfs,
    remote_to_local_mirror,
    remote_to_local_hard_link,
    remote_to_local_btrfs,
    remote_to_remote_mirror,
    remote_to_remote_hard_link,
    remote_to_remote_btrfs,
    three_step_chain_reads_latest,
    inactive_syncs_under_each_strictness,
    a_failing_sync_cancels_its_downstream,
    dry_run_changes_nothing,
    hostile_paths_execute_nothing,
    one_ssh_login_per_host_per_run,
    sessions_opened_ahead_run_nothing_unless_used,
    overlapping_syncs_keep_their_own_outcomes,
    an_early_prepare_is_undone_when_the_first_sync_does_not_run,
    unreachable_host_is_skipped,
    proxy_jump_chain_reaches_the_host,
    remote_tilde_paths_are_the_login_home,
    dry_run_of_a_fresh_chain_is_pending_not_failed,
    ignore_all_attempts_syncs_with_preflight_errors,
    progress_modes,
    pruning_orphans_and_foreign_entries,
    hooks_run_in_order_with_the_outcome,
    a_failing_before_hook_cancels_downstream,
    on_failure_hooks_follow_a_failing_rsync,
    hooks_of_a_locked_sync_and_a_missing_program,
    the_log_is_in_the_order_things_happen,
    rsync_daemon_push_and_pull,
    rsync_daemon_through_ssh,
    priority_runs_rsync_under_nice_and_ionice,
    a_wrong_clock_loses_nothing_hard_link,
    a_wrong_clock_loses_nothing_btrfs,
    a_wrong_clock_loses_nothing_remote_hard_link,
);

/// A clock that lies loses no complete snapshot. Behind (a Raspberry Pi
/// before NTP answers): two runs at the true time, one 5 days behind, one
/// at the true time again keep all four snapshots, with a warning naming the
/// newest snapshot, and the run behind prunes nothing. Ahead (10 years, with
/// `keep-within: 30d`): the run keeps the snapshot that was `latest` when it
/// started (the pair rule), and removes the others only naming the rule;
/// back at the true time the clock is behind that snapshot: nothing goes.
fn a_wrong_clock_loses_nothing(be: &dyn Backend, side: Side, mode: Mode) {
    if !testbed::require(&[testbed::Component::Faketime]) {
        return;
    }
    let Some(mut w) = World::new(side == Side::Remote, mode == Mode::Btrfs) else {
        return;
    };
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    w.sample_tree(Side::Local, &src);
    let dst = w.volume(side, "dst", mode == Mode::Btrfs);
    w.endpoint(side, &dst, mode, false, true);
    let key = if mode == Mode::Btrfs {
        "btrfs-snapshots"
    } else {
        "hard-link-snapshots"
    };
    let mut head = String::new();
    if side == Side::Remote {
        head.push_str(&w.ssh_yaml());
    }
    head.push_str("volumes:\n");
    head.push_str(&World::volume_yaml(Side::Local, "s", &src));
    head.push_str(&World::volume_yaml(side, "d", &dst));
    let config = |retention: &str| {
        format!("{head}sync-endpoints:\n  es: {{volume: s}}\n  ed: {{volume: d, {key}: {{enabled: true{retention}}}}}\nsyncs:\n  copy: {{source: es, destination: ed}}\n")
    };
    let names = |w: &World| -> Vec<String> {
        w.snapshots(side, &dst)
            .into_iter()
            .filter(|n| n.starts_with("20"))
            .collect()
    };
    let edit = |n: usize| std::fs::write(src.join("a.txt"), format!("edit {n}\n")).unwrap();

    // Behind.
    let plain = config("");
    be.run(&w, &plain, &[]).assert_ok();
    edit(1);
    be.run(&w, &plain, &[]).assert_ok();
    let first_two = names(&w);
    assert_eq!(first_two.len(), 2, "{first_two:?}");
    w.set_clock(Some("-5d"));
    edit(2);
    let behind = be.run(&w, &plain, &[]);
    behind.assert_ok();
    assert!(
        behind
            .stderr
            .contains(&format!("is behind the newest snapshot {}", first_two[1])),
        "{}: the clock behind is reported\n{}",
        be.name(),
        behind.stderr
    );
    w.set_clock(None);
    edit(3);
    let after = be.run(&w, &plain, &[]);
    after.assert_ok();
    let all = names(&w);
    assert_eq!(
        all.len(),
        4,
        "{}: nothing lost: {all:?}\n{}",
        be.name(),
        after.stderr
    );
    for n in &first_two {
        assert!(all.contains(n), "{}: {n} lost: {all:?}", be.name());
    }
    assert!(
        !after.stderr.contains("removed unfinished"),
        "{}",
        after.stderr
    );
    assert_eq!(
        w.manifest(Side::Local, &src),
        w.manifest(side, &content(&dst, mode)),
        "{}: latest is the last run",
        be.name()
    );

    // Ahead, with a retention that only keeps the last 30 days.
    let within = config(", retention: {keep-within: 30d}");
    let before_ahead = w.latest(side, &dst);
    w.set_clock(Some("+10y"));
    edit(4);
    let ahead = be.run(&w, &within, &[]);
    ahead.assert_ok();
    let kept = names(&w);
    assert!(
        kept.iter().any(|n| before_ahead.ends_with(n.as_str())),
        "{}: the snapshot latest named when the run started ({before_ahead}) is kept: {kept:?}\n{}",
        be.name(),
        ahead.stderr
    );
    assert_eq!(kept.len(), 2, "{}: {kept:?}\n{}", be.name(), ahead.stderr);
    for n in all.iter().filter(|n| !kept.contains(n)) {
        assert!(
            ahead
                .stderr
                .contains(&format!("pruned snapshot {n} (retention: keep-rules)")),
            "{}: {n} went without naming its rule\n{}",
            be.name(),
            ahead.stderr
        );
    }
    w.set_clock(None);
    edit(5);
    let back = be.run(&w, &within, &[]);
    back.assert_ok();
    assert!(back.stderr.contains("nothing is pruned"), "{}", back.stderr);
    let last = names(&w);
    assert_eq!(last.len(), 3, "{}: {last:?}\n{}", be.name(), back.stderr);
}

fn a_wrong_clock_loses_nothing_hard_link(be: &dyn Backend) {
    a_wrong_clock_loses_nothing(be, Side::Local, Mode::HardLink);
}

fn a_wrong_clock_loses_nothing_btrfs(be: &dyn Backend) {
    a_wrong_clock_loses_nothing(be, Side::Local, Mode::Btrfs);
}

fn a_wrong_clock_loses_nothing_remote_hard_link(be: &dyn Backend) {
    a_wrong_clock_loses_nothing(be, Side::Remote, Mode::HardLink);
}

/// `nbkp preflight check` reports each sync without running it, with the
/// strictness's exit code; `troubleshoot` says what to do, with the paths.
#[test]
fn preflight_check_and_troubleshoot() {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    let dst = w.volume(Side::Local, "dst", false);
    // The destination sentinel is missing; snapshots/ and latest too.
    std::fs::create_dir_all(&dst).unwrap();
    let mut config = String::from("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "s", &src));
    config.push_str(&World::volume_yaml(Side::Local, "d", &dst));
    config.push_str("sync-endpoints:\n  es: {volume: s}\n  ed: {volume: d, hard-link-snapshots: {enabled: true}}\nsyncs:\n  copy: {source: es, destination: ed}\n");
    let cfg = w.root().join("pf.yaml");
    std::fs::write(&cfg, &config).unwrap();
    let nbkp = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_nbkp"))
            .args(args)
            .arg("-c")
            .arg(&cfg)
            .output()
            .unwrap()
    };
    let out = nbkp(&["preflight", "check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("copy") && stdout.contains("inactive"),
        "{stdout}"
    );
    assert!(stdout.contains(".nbkp-dst not found"), "{stdout}");
    let out = nbkp(&["preflight", "check", "-S", "ignore-none"]);
    assert_eq!(out.status.code(), Some(1));
    let out = nbkp(&["preflight", "troubleshoot"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("touch {}/.nbkp-dst", dst.display())),
        "{stdout}"
    );
    // Fixed as advised, the next layer's problems show, with their fixes.
    std::fs::write(dst.join(".nbkp-dst"), "").unwrap();
    let out = nbkp(&["preflight", "troubleshoot"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("mkdir -p {}/snapshots", dst.display())),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("ln -s /dev/null {}/latest", dst.display())),
        "{stdout}"
    );
    std::fs::create_dir(dst.join("snapshots")).unwrap();
    std::os::unix::fs::symlink("/dev/null", dst.join("latest")).unwrap();
    let out = nbkp(&["preflight", "check", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["syncs"][0]["status"], "active", "{v}");
    assert_eq!(v["fatal"], false);
    // Nothing was written by any of it.
    assert!(std::fs::read_dir(dst.join("snapshots"))
        .unwrap()
        .next()
        .is_none());
    assert!(v["syncs"][0].get("warnings").is_none(), "{v}");

    // A snapshot newer than the clock: the clock is behind, and said to be.
    let ahead = "2999-01-01T00:00:00.000Z";
    std::fs::create_dir(dst.join("snapshots").join(ahead)).unwrap();
    std::fs::remove_file(dst.join("latest")).unwrap();
    std::os::unix::fs::symlink(format!("snapshots/{ahead}"), dst.join("latest")).unwrap();
    let out = nbkp(&["preflight", "check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("WARN: copy: the clock (20")
            && stdout.contains(&format!("is behind the newest snapshot {ahead} of ed")),
        "{stdout}"
    );
    let out = nbkp(&["preflight", "check", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["syncs"][0]["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains(ahead)),
        "{v}"
    );
}

/// `nbkp run -o json`: one document on stdout with each sync's outcome,
/// snapshot path and pruned paths; logs stay on stderr.
#[test]
fn run_json_report() {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    w.sample_tree(Side::Local, &src);
    let snap = w.volume(Side::Local, "snap", false);
    w.endpoint(Side::Local, &snap, Mode::HardLink, false, true);
    let mirror = w.volume(Side::Local, "mirror", false);
    w.endpoint(Side::Local, &mirror, Mode::None, false, true);
    let absent = w.volume_dir(Side::Local, "absent", false);
    let mut config = String::from("volumes:\n");
    for (n, p) in [("s", &src), ("h", &snap), ("m", &mirror), ("a", &absent)] {
        config.push_str(&World::volume_yaml(Side::Local, n, p));
    }
    config.push_str("sync-endpoints:\n  es: {volume: s}\n  eh: {volume: h, hard-link-snapshots: {enabled: true, max-snapshots: 1}}\n  em: {volume: m}\n  ea: {volume: a}\nsyncs:\n  to-snap: {source: es, destination: eh}\n  to-mirror: {source: es, destination: em}\n  to-absent: {source: es, destination: ea}\n");
    let cfg = w.root().join("json.yaml");
    std::fs::write(&cfg, &config).unwrap();
    let run = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_nbkp"))
            .args(["run", "-o", "json", "-c"])
            .arg(&cfg)
            .env("XDG_STATE_HOME", w.state_home())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("[nbkp] Starting sync"));
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .expect("stdout is one JSON document")
    };
    // The second run keeps the first (it was `latest` when the run
    // started: the pair rule); the third prunes it.
    run();
    run();
    let v = run();
    let results = v["results"].as_array().unwrap();
    let by = |slug: &str| {
        results
            .iter()
            .find(|r| r["sync_slug"] == slug)
            .unwrap()
            .clone()
    };
    let snap_r = by("to-snap");
    assert_eq!(snap_r["outcome"], "success");
    assert_eq!(snap_r["rsync_exit_code"], 0);
    let path = snap_r["snapshot_path"].as_str().unwrap();
    assert!(
        path.starts_with(&format!("{}/snapshots/20", snap.display())),
        "{path}"
    );
    assert_eq!(
        snap_r["pruned_paths"].as_array().unwrap().len(),
        1,
        "max-snapshots 1 prunes the first, on the third run"
    );
    let mirror_r = by("to-mirror");
    assert_eq!(mirror_r["outcome"], "success");
    assert!(
        mirror_r["snapshot_path"].is_null() && mirror_r["pruned_paths"].is_null(),
        "{mirror_r}"
    );
    let absent_r = by("to-absent");
    assert_eq!(absent_r["outcome"], "skipped");
    assert_eq!(absent_r["failure"], "inactive");
    assert_eq!(absent_r["rsync_exit_code"], -1);
    assert!(absent_r["detail"]
        .as_str()
        .unwrap()
        .contains(".nbkp-vol not found"));
    for key in ["dry_run", "output", "cancelled_by", "warnings", "success"] {
        assert!(absent_r.get(key).is_some(), "result lacks `{key}`");
    }
    assert_eq!(v["aborted"], false);
    assert_eq!(v["preflight"].as_array().unwrap().len(), 3);
}

/// `nbkp demo` backs up its sample data twice, hard-links unchanged files
/// between the snapshots and leaves the unplugged drive untouched.
#[test]
fn demo_runs_end_to_end() {
    let Some(w) = World::new(false, false) else {
        return;
    };
    let dir = w.root().join("demo");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nbkp"))
        .args(["demo", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snaps = dir.join("usb-drive/documents/snapshots");
    let names = w.snapshots(Side::Local, &dir.join("usb-drive/documents"));
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(
        w.inode(Side::Local, &snaps.join(&names[0]).join("notes/ideas.md")),
        w.inode(Side::Local, &snaps.join(&names[1]).join("notes/ideas.md"))
    );
    assert!(
        !snaps.join(&names[1]).join("draft.tmp").exists(),
        "the *.tmp filter"
    );
    assert_eq!(
        std::fs::read_dir(dir.join("unplugged-drive"))
            .unwrap()
            .count(),
        0
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Where to look"));
}

/// `nbkp run` stopped with SIGTERM mid-transfer: the transfer is stopped,
/// the unfinished snapshot and the lock are cleaned up, the shared
/// connection is closed, later syncs do not start, and it exits 130.
#[test]
fn an_interrupted_run_cleans_up() {
    let Some(mut w) = World::new(true, false) else {
        return;
    };
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    testbed::fixtures::large_file_at(&src.join("big.bin"), 32 * 1024 * 1024);
    let vol = w.volume(Side::Remote, "vol", false);
    w.endpoint(Side::Remote, &vol.join("a"), Mode::HardLink, false, true);
    w.endpoint(Side::Remote, &vol.join("b"), Mode::None, false, true);
    let mut config = w.ssh_yaml();
    config.push_str("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "s", &src));
    config.push_str(&World::volume_yaml(Side::Remote, "r", &vol));
    config.push_str("sync-endpoints:\n  es: {volume: s}\n  ea: {volume: r, subdir: a, hard-link-snapshots: {enabled: true}}\n  eb: {volume: r, subdir: b}\nsyncs:\n  first: {source: es, destination: ea, rsync-options: {extra-options: [--bwlimit=2M]}}\n  second: {source: es, destination: eb}\n");
    let cfg = w.root().join("int.yaml");
    std::fs::write(&cfg, &config).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_nbkp"))
        .args(["run", "-c"])
        .arg(&cfg)
        .env("XDG_STATE_HOME", w.state_home())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let remote = w.remote();
    testbed::wait_for(
        "the transfer to start",
        std::time::Duration::from_secs(20),
        || {
            remote
                .run_remote_ok(&format!("ls -A {}/a/snapshots", testbed::shq(&vol)))
                .lines()
                .count()
                == 1
        },
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    testbed::kill(child.id(), 15);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("SKIPPED second: the run was interrupted"),
        "{stderr}"
    );
    assert!(
        !w.exists(Side::Remote, &vol.join("a/.nbkp-lock")),
        "the lock stayed"
    );
    assert!(
        w.snapshots(Side::Remote, &vol.join("a")).is_empty(),
        "the unfinished snapshot stayed"
    );
    assert_eq!(w.latest(Side::Remote, &vol.join("a")), "/dev/null");
    assert!(!w.exists(Side::Remote, &vol.join("b/big.bin")));
    testbed::wait_for(
        "the shared connection to close",
        std::time::Duration::from_secs(10),
        || remote.session_pids().is_empty(),
    );
}

/// A mount-managed drive that is not plugged in is a normal state: its
/// syncs are skipped as inactive with the reason, the others run, exit 0 —
/// in `nbkp run` and in the script. (Unlocking and mounting for real:
/// tests/luks_uml.rs.)
#[test]
fn absent_mount_managed_drives_are_skipped() {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    w.sample_tree(Side::Local, &src);
    let dst = w.volume(Side::Local, "dst", false);
    w.endpoint(Side::Local, &dst, Mode::None, false, true);
    let mut config = String::from("credential-provider: env\nvolumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "s", &src));
    config.push_str(&World::volume_yaml(Side::Local, "d", &dst));
    config.push_str("  vault:\n    type: local\n    mount:\n      device-uuid: 0f3c6a52-3d41-4b2e-9d0c-5a6b7c8d9e0f\n      encryption: {passphrase-id: vault}\n");
    config.push_str("sync-endpoints:\n  es: {volume: s}\n  ed: {volume: d}\n  ev: {volume: vault}\nsyncs:\n  plain: {source: es, destination: ed}\n  to-vault: {source: es, destination: ev}\n");
    let backends: [&dyn Backend; 2] = [&e2e::Run, &Script(Shell::Dash)];
    for be in backends {
        let out = be.run(&w, &config, &[]);
        out.assert_ok();
        assert!(
            out.stderr.contains("volume 'vault': device not plugged in"),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("SKIPPED to-vault: inactive"),
            "{}",
            out.stderr
        );
        assert_eq!(w.manifest(Side::Local, &src), w.manifest(Side::Local, &dst));
    }
}

/// A remote hard-link sync (long-lived remote shell, FIFOs, file descriptors
/// 3 and 4) works the same under every shell, with one SSH login each time.
#[test]
fn remote_script_under_every_shell() {
    let Some(mut w) = World::new(true, false) else {
        return;
    };
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    w.sample_tree(Side::Local, &src);
    let vol = w.volume(Side::Remote, "vol", false);
    w.endpoint(Side::Remote, &vol, Mode::HardLink, false, true);
    let mut config = w.ssh_yaml();
    config.push_str("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "s", &src));
    config.push_str(&World::volume_yaml(Side::Remote, "r", &vol));
    config.push_str("sync-endpoints:\n  es: {volume: s}\n  er: {volume: r, hard-link-snapshots: {enabled: true, max-snapshots: 3}}\nsyncs:\n  push: {source: es, destination: er}\n");
    for shell in Shell::ALL {
        if !testbed::require(&[testbed::Component::Shell(shell)]) {
            continue;
        }
        let before = w.remote().login_count();
        let out = Script(shell).run(&w, &config, &[]);
        assert_eq!(out.code, 0, "under {shell}:\n{}", out.stderr);
        assert_eq!(
            w.remote().login_count() - before,
            1,
            "under {shell}: logins"
        );
        assert_eq!(
            w.manifest(Side::Local, &src),
            w.manifest(Side::Remote, &vol.join("latest")),
            "under {shell}"
        );
    }
}

/// Four remote hosts (four endpoints of the test host): the script keeps a
/// long-lived shell for the first three and uses one ssh per operation for
/// the fourth; all four syncs complete, one login per host.
fn four_remote_hosts(be: &dyn Backend) {
    let Some(mut w) = World::new(true, false) else {
        return;
    };
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    w.sample_tree(Side::Local, &src);
    let mut config = String::from("ssh-endpoints:\n");
    let mut vols = String::new();
    let mut eps = String::from("sync-endpoints:\n  es: {volume: s}\n");
    let mut syncs = String::from("syncs:\n");
    let mut dirs = Vec::new();
    for i in 0..4 {
        config.push_str(&w.endpoint_yaml(&format!("host{i}"), "root", ""));
        let v = w.volume(Side::Remote, &format!("v{i}"), false);
        w.endpoint(Side::Remote, &v, Mode::HardLink, false, true);
        vols.push_str(&format!(
            "  r{i}: {{type: remote, ssh-endpoint: host{i}, path: {}}}\n",
            e2e::yaml_str(&v.display().to_string())
        ));
        eps.push_str(&format!(
            "  e{i}: {{volume: r{i}, hard-link-snapshots: {{enabled: true}}}}\n"
        ));
        syncs.push_str(&format!("  to{i}: {{source: es, destination: e{i}}}\n"));
        dirs.push(v);
    }
    config.push_str("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "s", &src));
    config.push_str(&vols);
    config.push_str(&eps);
    config.push_str(&syncs);
    let before = w.remote().login_count();
    be.run(&w, &config, &[]).assert_ok();
    assert_eq!(
        w.remote().login_count() - before,
        4,
        "{:?}",
        w.remote().logins()
    );
    for d in &dirs {
        assert_eq!(
            w.manifest(Side::Local, &src),
            w.manifest(Side::Remote, &d.join("latest"))
        );
        assert!(!w.exists(Side::Remote, &d.join(".nbkp-lock")));
    }
}

// ---------------------------------------------------------------- hooks

/// A hook program that appends `hook <its arguments>`, then every `NBKP_*`
/// variable and `LC_ALL` of its environment, to the log named first.
fn hook_recorder(w: &World) -> (PathBuf, PathBuf) {
    let rec = w.root().join("record-hook");
    std::fs::write(
        &rec,
        "#!/bin/sh\nlog=$1\nshift\n{ echo \"hook $*\"; env | grep '^NBKP_' | LC_ALL=C sort; echo \"LC_ALL=${LC_ALL-<unset>}\"; echo; } >>\"$log\"\n",
    )
    .unwrap();
    testbed::check(std::process::Command::new("chmod").arg("+x").arg(&rec));
    (rec, w.root().join("hooks.log"))
}

/// What `hook_recorder` writes for one hook.
fn hook_entry(tag: &str, vars: &[(&str, &str)]) -> String {
    let mut v: Vec<(&str, &str)> = vars.to_vec();
    v.sort();
    let mut s = format!("hook {tag}\n");
    for (k, val) in v {
        s.push_str(&format!("{k}={val}\n"));
    }
    let lc = std::env::var("LC_ALL").unwrap_or_else(|_| "<unset>".into());
    s.push_str(&format!("LC_ALL={lc}\n\n"));
    s
}

fn hook_argv(rec: &Path, log: &Path, tag: &str) -> String {
    format!(
        "[{}, {}, {tag}]",
        e2e::yaml_str(&rec.display().to_string()),
        e2e::yaml_str(&log.display().to_string())
    )
}

/// Global hooks wrap the sync's own, in order, each with the sync's outcome
/// in its environment; the example hook records package lists into the
/// source before the transfer, so they are in the snapshot; a dry run runs
/// no hook.
fn hooks_run_in_order_with_the_outcome(be: &dyn Backend) {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let (rec, log) = hook_recorder(&w);
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    w.sample_tree(Side::Local, &src);
    let dst = w.volume(Side::Local, "dst", false);
    w.endpoint(Side::Local, &dst, Mode::HardLink, false, true);
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/hooks/record-packages.sh");
    let h = |tag: &str| hook_argv(&rec, &log, tag);
    let mut config = format!(
        "hooks:\n  before: [{}]\n  after: [{}]\n  on-failure: [{}]\nvolumes:\n",
        h("global-before"),
        h("global-after"),
        h("global-on-failure")
    );
    config.push_str(&World::volume_yaml(Side::Local, "s", &src));
    config.push_str(&World::volume_yaml(Side::Local, "d", &dst));
    config.push_str(&format!(
        "sync-endpoints:\n  es: {{volume: s}}\n  ed: {{volume: d, hard-link-snapshots: {{enabled: true}}}}\n\
         syncs:\n  copy:\n    source: es\n    destination: ed\n    hooks:\n      before: [{}, [{}]]\n      after: [{}]\n      on-failure: [{}]\n",
        h("sync-before"),
        e2e::yaml_str(&example.display().to_string()),
        h("sync-after"),
        h("sync-on-failure"),
    ));
    let out = be.run(&w, &config, &[]);
    out.assert_ok();
    let snaps = w.snapshots(Side::Local, &dst);
    assert_eq!(snaps.len(), 1);
    let (s, d) = (src.display().to_string(), dst.display().to_string());
    let base = |kind: &str, status: &str, rc: &str, snap: &str| {
        vec![
            ("NBKP_HOOK", kind.to_string()),
            ("NBKP_SYNC", "copy".into()),
            ("NBKP_STATUS", status.into()),
            ("NBKP_RSYNC_EXIT", rc.into()),
            ("NBKP_SOURCE", s.clone()),
            ("NBKP_SOURCE_HOST", String::new()),
            ("NBKP_DESTINATION", d.clone()),
            ("NBKP_DESTINATION_HOST", String::new()),
            ("NBKP_SNAPSHOT", snap.into()),
        ]
    };
    let entry = |tag: &str, vars: Vec<(&str, String)>| {
        let v: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        hook_entry(tag, &v)
    };
    let expected = [
        entry("global-before", base("before", "running", "", "")),
        entry("sync-before", base("before", "running", "", "")),
        entry("sync-after", base("after", "completed", "0", &snaps[0])),
        entry("global-after", base("after", "completed", "0", &snaps[0])),
    ]
    .concat();
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        expected,
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("[nbkp] copy: before hook: "),
        "{}",
        out.stderr
    );
    // The package lists were written before the transfer: they are in the snapshot.
    if testbed::try_check(std::process::Command::new("sh").args(["-c", "command -v dpkg"])).is_ok()
    {
        let list = dst.join("latest/.packages/dpkg-selections.txt");
        let text =
            std::fs::read_to_string(&list).unwrap_or_else(|e| panic!("{}: {e}", list.display()));
        assert!(text.contains("install"), "{text}");
    }
    // A dry run runs none of them, and says so.
    let out = be.run(&w, &config, &["-n"]);
    out.assert_ok();
    assert_eq!(std::fs::read_to_string(&log).unwrap(), expected);
    assert!(
        out.stderr
            .contains("copy: before hook not run in a dry run: "),
        "{}",
        out.stderr
    );
}

/// A failing `before` hook fails its sync before anything is written (no
/// snapshot, no lock, `latest` untouched), runs its `on-failure` hooks,
/// cancels the downstream sync (whose hooks never run) and leaves
/// independent syncs alone.
fn a_failing_before_hook_cancels_downstream(be: &dyn Backend) {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let (rec, log) = hook_recorder(&w);
    let h = |tag: &str| hook_argv(&rec, &log, tag);
    let a = w.volume(Side::Local, "a", false);
    w.endpoint(Side::Local, &a, Mode::None, true, false);
    w.sample_tree(Side::Local, &a);
    let b = w.volume(Side::Local, "b", false);
    w.endpoint(Side::Local, &b, Mode::HardLink, true, true);
    let c = w.volume(Side::Local, "c", false);
    w.endpoint(Side::Local, &c, Mode::None, false, true);
    let e = w.volume(Side::Local, "e", false);
    w.endpoint(Side::Local, &e, Mode::None, false, true);
    let mut config = String::from("volumes:\n");
    for (n, p) in [("a", &a), ("b", &b), ("c", &c), ("e", &e)] {
        config.push_str(&World::volume_yaml(Side::Local, n, p));
    }
    config.push_str(&format!(
        "sync-endpoints:\n  ea: {{volume: a}}\n  eb: {{volume: b, hard-link-snapshots: {{enabled: true}}}}\n  ec: {{volume: c}}\n  ee: {{volume: e}}\n\
         syncs:\n  first:\n    source: ea\n    destination: eb\n    hooks:\n      before: [[sh, -c, 'exit 7'], {}]\n      after: [{}]\n      on-failure: [{}, {}]\n\
         \x20 second:\n    source: eb\n    destination: ec\n    hooks: {{before: [{}], on-failure: [{}]}}\n\
         \x20 other: {{source: ea, destination: ee}}\n",
        h("first-before"),
        h("first-after"),
        h("first-on-failure"),
        h("first-on-failure-2"),
        h("second-before"),
        h("second-on-failure"),
    ));
    let out = be.run(&w, &config, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("ERROR: first: before hook exited with code 7: sh -c 'exit 7'"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("CANCELLED second: upstream sync first failed"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("Completed sync: other"),
        "{}",
        out.stderr
    );
    let (sa, sb) = (a.display().to_string(), b.display().to_string());
    let vars = |tag: &str| {
        hook_entry(
            tag,
            &[
                ("NBKP_HOOK", "on-failure"),
                ("NBKP_SYNC", "first"),
                ("NBKP_STATUS", "failed"),
                ("NBKP_RSYNC_EXIT", ""),
                ("NBKP_SOURCE", &sa),
                ("NBKP_SOURCE_HOST", ""),
                ("NBKP_DESTINATION", &sb),
                ("NBKP_DESTINATION_HOST", ""),
                ("NBKP_SNAPSHOT", ""),
            ],
        )
    };
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        [vars("first-on-failure"), vars("first-on-failure-2")].concat()
    );
    // Nothing was written: no snapshot, no lock, latest untouched, c empty.
    assert!(w.snapshots(Side::Local, &b).is_empty());
    assert_eq!(w.latest(Side::Local, &b), "/dev/null");
    assert!(!w.exists(Side::Local, &b.join(".nbkp-lock")));
    assert!(!c.join("a.txt").exists());
    assert_eq!(w.manifest(Side::Local, &a), w.manifest(Side::Local, &e));
}

/// A failing rsync runs the `on-failure` hooks with its exit code, not the
/// `after` ones; an `after` hook that fails fails its sync (exit 1) but
/// keeps the snapshot it completed.
fn on_failure_hooks_follow_a_failing_rsync(be: &dyn Backend) {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let (rec, log) = hook_recorder(&w);
    let h = |tag: &str| hook_argv(&rec, &log, tag);
    let a = w.volume(Side::Local, "a", false);
    w.endpoint(Side::Local, &a, Mode::None, true, false);
    w.sample_tree(Side::Local, &a);
    let b = w.volume(Side::Local, "b", false);
    w.endpoint(Side::Local, &b, Mode::None, false, true);
    let c = w.volume(Side::Local, "c", false);
    w.endpoint(Side::Local, &c, Mode::HardLink, false, true);
    let mut config = String::from("volumes:\n");
    for (n, p) in [("a", &a), ("b", &b), ("c", &c)] {
        config.push_str(&World::volume_yaml(Side::Local, n, p));
    }
    config.push_str(&format!(
        "sync-endpoints:\n  ea: {{volume: a}}\n  eb: {{volume: b}}\n  ec: {{volume: c, hard-link-snapshots: {{enabled: true}}}}\n\
         syncs:\n  broken:\n    source: ea\n    destination: eb\n    rsync-options: {{extra-options: [--no-such-option]}}\n    hooks: {{after: [{}], on-failure: [{}]}}\n\
         \x20 after-fails:\n    source: ea\n    destination: ec\n    hooks: {{after: [[sh, -c, 'exit 3'], {}], on-failure: [{}]}}\n",
        h("broken-after"),
        h("broken-on-failure"),
        h("after-fails-after-2"),
        h("after-fails-on-failure"),
    ));
    let out = be.run(&w, &config, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let (sa, sb) = (a.display().to_string(), b.display().to_string());
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        hook_entry(
            "broken-on-failure",
            &[
                ("NBKP_HOOK", "on-failure"),
                ("NBKP_SYNC", "broken"),
                ("NBKP_STATUS", "failed"),
                ("NBKP_RSYNC_EXIT", "1"),
                ("NBKP_SOURCE", &sa),
                ("NBKP_SOURCE_HOST", ""),
                ("NBKP_DESTINATION", &sb),
                ("NBKP_DESTINATION_HOST", ""),
                ("NBKP_SNAPSHOT", ""),
            ],
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("ERROR: after-fails: after hook exited with code 3: sh -c 'exit 3'"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("FAILED after-fails"), "{}", out.stderr);
    // The completed snapshot stays, and latest names it.
    let snaps = w.snapshots(Side::Local, &c);
    assert_eq!(snaps.len(), 1);
    assert_eq!(w.latest(Side::Local, &c), format!("snapshots/{}", snaps[0]));
    assert_eq!(
        w.manifest(Side::Local, &a),
        w.manifest(Side::Local, &c.join("latest"))
    );
}

/// Scripts run their hooks (`exec`, the restored locale, failures that stop
/// the list) and ask rsync daemons the same way under every shell.
#[test]
fn script_hooks_and_daemons_under_every_shell() {
    for shell in Shell::ALL {
        if !testbed::require(&[testbed::Component::Shell(shell)]) {
            continue;
        }
        hooks_run_in_order_with_the_outcome(&Script(shell));
        a_failing_before_hook_cancels_downstream(&Script(shell));
        rsync_daemon_push_and_pull(&Script(shell));
    }
}

/// The log (here a pipe, not a terminal) reads in the order things
/// happened, although `nbkp run` holds its lines back until it next waits:
/// a sync's "Starting" line, its hooks' output, its "Completed" line, then
/// the next sync.
fn the_log_is_in_the_order_things_happen(be: &dyn Backend) {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    w.sample_tree(Side::Local, &src);
    let one = w.volume(Side::Local, "one", false);
    w.endpoint(Side::Local, &one, Mode::HardLink, false, true);
    let two = w.volume(Side::Local, "two", false);
    w.endpoint(Side::Local, &two, Mode::None, false, true);
    let mut config = String::from("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "s", &src));
    config.push_str(&World::volume_yaml(Side::Local, "d1", &one));
    config.push_str(&World::volume_yaml(Side::Local, "d2", &two));
    config.push_str(
        "sync-endpoints:\n  es: {volume: s}\n  e1: {volume: d1, hard-link-snapshots: {enabled: true}}\n  e2: {volume: d2}\n\
         syncs:\n  first:\n    source: es\n    destination: e1\n    hooks: {before: [[echo, first-before-hook]], after: [[echo, first-after-hook]]}\n\
         \x20 second:\n    source: es\n    destination: e2\n    hooks: {before: [[echo, second-before-hook]]}\n",
    );
    let out = be.run(&w, &config, &[]);
    out.assert_ok();
    // Whole lines: the hook's own output, not the log line naming it.
    let order = [
        "[nbkp] Starting sync: first",
        "first-before-hook",
        "first-after-hook",
        "[nbkp] Completed sync: first",
        "[nbkp] Starting sync: second",
        "second-before-hook",
        "[nbkp] Completed sync: second",
    ];
    let mut lines = out.stderr.lines();
    for expected in order {
        assert!(
            lines.any(|l| l == expected),
            "{expected:?} missing or out of order in the log:\n{}",
            out.stderr
        );
    }
}

/// A destination locked by another machine's run: the sync is skipped
/// (exit 3) after its `before` hooks, so its `on-failure` hooks run with
/// `NBKP_STATUS=skipped`; a hook program that does not exist fails the sync
/// with 127, as a shell reports it.
fn hooks_of_a_locked_sync_and_a_missing_program(be: &dyn Backend) {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let (rec, log) = hook_recorder(&w);
    let h = |tag: &str| hook_argv(&rec, &log, tag);
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    w.sample_tree(Side::Local, &src);
    let dst = w.volume(Side::Local, "dst", false);
    w.endpoint(Side::Local, &dst, Mode::None, false, true);
    // Another machine's lock is never broken.
    std::os::unix::fs::symlink("elsewhere_boot_1", dst.join(".nbkp-lock")).unwrap();
    let mut config = String::from("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "s", &src));
    config.push_str(&World::volume_yaml(Side::Local, "d", &dst));
    config.push_str(&format!(
        "sync-endpoints:\n  es: {{volume: s}}\n  ed: {{volume: d}}\n\
         syncs:\n  copy: {{source: es, destination: ed, hooks: {{before: [{}], after: [{}], on-failure: [{}]}}}}\n",
        h("before"),
        h("after"),
        h("on-failure"),
    ));
    let out = be.run(&w, &config, &[]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    let (s, d) = (src.display().to_string(), dst.display().to_string());
    let entry = |tag: &str, kind: &str, status: &str| {
        hook_entry(
            tag,
            &[
                ("NBKP_HOOK", kind),
                ("NBKP_SYNC", "copy"),
                ("NBKP_STATUS", status),
                ("NBKP_RSYNC_EXIT", ""),
                ("NBKP_SOURCE", &s),
                ("NBKP_SOURCE_HOST", ""),
                ("NBKP_DESTINATION", &d),
                ("NBKP_DESTINATION_HOST", ""),
                ("NBKP_SNAPSHOT", ""),
            ],
        )
    };
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        [
            entry("before", "before", "running"),
            entry("on-failure", "on-failure", "skipped")
        ]
        .concat(),
        "{}",
        out.stderr
    );
    assert!(!dst.join("a.txt").exists());

    std::fs::remove_file(dst.join(".nbkp-lock")).unwrap();
    let missing = w.root().join("no-such-hook");
    let config = config.replacen(
        &h("before"),
        &format!("[{}]", e2e::yaml_str(&missing.display().to_string())),
        1,
    );
    let out = be.run(&w, &config, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "ERROR: copy: before hook exited with code 127: {}",
            missing.display()
        )),
        "{}",
        out.stderr
    );
    assert!(
        !dst.join("a.txt").exists(),
        "a failed before hook let rsync run"
    );
}

// ---------------------------------------------------------------- rsync daemons

/// A local folder pushed into a real rsync daemon's module (with a login,
/// the password from a command) and pulled back out of another; the
/// sentinels are asked with `rsync --list-only`; a stopped daemon is an
/// absent host (skipped), a wrong password an error.
fn rsync_daemon_push_and_pull(be: &dyn Backend) {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    w.sample_tree(Side::Local, &src);
    let back = w.volume(Side::Local, "back", false);
    w.endpoint(Side::Local, &back, Mode::None, false, true);
    // The modules' folders: volume markers at their roots, a destination
    // inside the first, a source at the second's root.
    let m1 = w.volume(Side::Local, "module-one", false);
    w.endpoint(Side::Local, &m1.join("laptop"), Mode::None, false, true);
    let m2 = w.volume(Side::Local, "module-two", false);
    w.endpoint(Side::Local, &m2, Mode::None, true, false);
    w.sample_tree(Side::Local, &m2);
    let password = "s3cret-never-in-argv";
    let mut daemon = e2e::daemon::Daemon::start(&[
        e2e::daemon::Module {
            name: "one",
            path: &m1,
            login: Some(("laptop", password)),
        },
        e2e::daemon::Module {
            name: "two",
            path: &m2,
            login: None,
        },
    ]);
    let pw_file = w.root().join("password");
    std::fs::write(&pw_file, format!("{password}\n")).unwrap();
    let mut config = String::from("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "src", &src));
    config.push_str(&World::volume_yaml(Side::Local, "back", &back));
    let daemons = |pw: &Path| {
        format!(
            "  one: {{type: rsync-daemon, host: 127.0.0.1, port: {p}, module: one, user: laptop, password-command: [cat, {}]}}\n  \
             two: {{type: rsync-daemon, host: 127.0.0.1, port: {p}, module: two}}\n\
             sync-endpoints:\n  es: {{volume: src}}\n  in-one: {{volume: one, subdir: laptop}}\n  two-root: {{volume: two}}\n  eback: {{volume: back}}\n\
             syncs:\n  push: {{source: es, destination: in-one}}\n  pull: {{source: two-root, destination: eback}}\n",
            e2e::yaml_str(&pw.display().to_string()),
            p = daemon.port
        )
    };
    let good = config.clone() + &daemons(&pw_file);
    let watch = e2e::argv_watch::ArgvWatch::start();
    let out = be.run(&w, &good, &[]);
    let argvs = watch.stop();
    out.assert_ok();
    // Every process's argv while the password was in use: rsync's among
    // them (the watch saw the transfers), the password in none.
    assert!(
        argvs
            .iter()
            .any(|a| a.contains("rsync") && a.contains("127.0.0.1")),
        "the watch saw no rsync: {argvs:?}"
    );
    let leaked: Vec<&String> = argvs.iter().filter(|a| a.contains(password)).collect();
    assert!(leaked.is_empty(), "password in argv: {leaked:?}");
    assert_eq!(
        w.manifest(Side::Local, &src),
        w.manifest(Side::Local, &m1.join("laptop"))
    );
    assert_eq!(w.manifest(Side::Local, &m2), w.manifest(Side::Local, &back));
    // Sentinels: each side keeps its own, none travels.
    assert!(m1.join("laptop/.nbkp-dst").exists());
    assert!(!m1.join("laptop/.nbkp-src").exists());
    assert!(back.join(".nbkp-dst").exists() && !back.join(".nbkp-src").exists());
    assert!(!out.stderr.contains(password) && !out.stdout.contains(password));
    // A change arrives; a second run is as good as the first.
    std::fs::write(src.join("new.txt"), "new").unwrap();
    be.run(&w, &good, &[]).assert_ok();
    assert_eq!(
        std::fs::read_to_string(m1.join("laptop/new.txt")).unwrap(),
        "new"
    );

    // A dry run sends nothing.
    std::fs::write(src.join("dry.txt"), "dry").unwrap();
    let out = be.run(&w, &good, &["-n"]);
    out.assert_ok();
    assert!(!m1.join("laptop/dry.txt").exists(), "{}", out.stderr);

    // A wrong password: an error, nothing written.
    let bad_pw = w.root().join("bad-password");
    std::fs::write(&bad_pw, "wrong\n").unwrap();
    std::fs::write(src.join("newer.txt"), "newer").unwrap();
    let out = be.run(&w, &(config.clone() + &daemons(&bad_pw)), &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("refused"), "{}", out.stderr);
    assert!(!m1.join("laptop/newer.txt").exists());

    // The daemon stopped: both syncs skipped as inactive, exit 0.
    daemon.stop();
    let out = be.run(&w, &good, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("does not answer"), "{}", out.stderr);
    assert!(
        out.stderr.contains("SKIPPED push: inactive"),
        "{}",
        out.stderr
    );
    assert!(!m1.join("laptop/newer.txt").exists());
}

/// A module of a single-use daemon started through SSH (`rsync -e ssh
/// user@host::module`) on the remote host: pushed to and pulled from.
fn rsync_daemon_through_ssh(be: &dyn Backend) {
    let Some(mut w) = World::new(true, false) else {
        return;
    };
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    w.sample_tree(Side::Local, &src);
    let back = w.volume(Side::Local, "back", false);
    w.endpoint(Side::Local, &back, Mode::None, false, true);
    let module = w.remote().user_dir().join("module");
    w.sh(
        Side::Remote,
        &format!(
            "mkdir -p {m}/in && touch {m}/.nbkp-vol {m}/in/.nbkp-dst {m}/in/.nbkp-src && chown -R {u} {m}",
            m = testbed::shq(&module),
            u = w.remote().user()
        ),
    );
    e2e::daemon::single_use_daemon(
        w.remote(),
        &[e2e::daemon::Module {
            name: "mod",
            path: &module,
            login: None,
        }],
    );
    let mut config = format!(
        "ssh-endpoints:\n{}",
        w.endpoint_yaml("server", w.remote().user(), "")
    );
    config.push_str("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "src", &src));
    config.push_str(&World::volume_yaml(Side::Local, "back", &back));
    config.push_str(
        "  tunnel: {type: rsync-daemon, ssh-endpoint: server, module: mod}\n\
         sync-endpoints:\n  es: {volume: src}\n  in: {volume: tunnel, subdir: in}\n  eback: {volume: back}\n\
         syncs:\n  push: {source: es, destination: in}\n  pull: {source: in, destination: eback}\n",
    );
    let out = be.run(&w, &config, &[]);
    out.assert_ok();
    assert_eq!(
        w.manifest(Side::Local, &src),
        w.manifest(Side::Remote, &module.join("in"))
    );
    assert_eq!(
        w.manifest(Side::Local, &src),
        w.manifest(Side::Local, &back)
    );
    // The daemon ran as the SSH user: the files are theirs.
    let owner = w.sh(
        Side::Remote,
        &format!("stat -c %U {}/in/a.txt", testbed::shq(&module)),
    );
    assert_eq!(owner.trim(), w.remote().user());

    // SSH cannot log in (nothing listens on that port): an absent host,
    // skipped, not an error.
    let port = format!("port: {}\n", w.remote().endpoint().port());
    assert!(config.contains(&port));
    let out = be.run(&w, &config.replacen(&port, "port: 1\n", 1), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("does not answer"), "{}", out.stderr);
    assert!(
        out.stderr.contains("SKIPPED push: inactive"),
        "{}",
        out.stderr
    );
}
