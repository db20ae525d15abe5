//! Crashes, full disks and dropped connections never cost a backup: after
//! any of them `latest` still points at a complete snapshot, and the next
//! run recovers (also breaking the dead run's lock and removing what a
//! killed run left marked unfinished, and nothing else).
//! Both back-ends, with the scenario harness of `e2e_scenarios.rs`.

#[macro_use]
mod e2e;
mod testbed;

use std::path::Path;
use std::time::Duration;

use e2e::{Backend, Mode, Side, World};
use testbed::volume::Drive;

/// `latest` is a snapshot whose content is exactly one of the source's
/// versions (never a mix, never part of one).
fn assert_latest_is_a_version(w: &World, dst: &Path, versions: &[String], when: &str) {
    let target = w.latest(Side::Local, dst);
    assert!(
        target.starts_with("snapshots/"),
        "{when}: latest → {target}"
    );
    let got = w.manifest(Side::Local, &dst.join("latest"));
    assert!(
        versions.contains(&got),
        "{when}: latest → {target} is not a complete snapshot of any version of the source"
    );
}

/// `latest` is `/dev/null` or a snapshot whose content equals the source.
fn assert_latest_complete(w: &World, src: &Path, dst: &Path, when: &str) {
    let target = w.latest(Side::Local, dst);
    if target == "/dev/null" {
        return;
    }
    assert!(
        target.starts_with("snapshots/"),
        "{when}: latest → {target}"
    );
    assert_eq!(
        w.manifest(Side::Local, src),
        w.manifest(Side::Local, &dst.join("latest")),
        "{when}: latest → {target} is not a complete snapshot"
    );
}

/// Snapshots left marked unfinished (`.nbkp-partial-<name>`).
fn unfinished(dst: &Path) -> Vec<String> {
    std::fs::read_dir(dst.join("snapshots"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".nbkp-partial-"))
        .collect()
}

/// SIGKILL (the whole process group, as a power cut would) at 24 moments
/// spread over a run — cleanup, transfer, `latest`, pruning — each
/// followed by a clean run.
fn killed_at_any_moment(be: &dyn Backend) {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    w.sample_tree(Side::Local, &src);
    for i in 0..150 {
        std::fs::write(
            src.join(format!("f{i:03}.txt")),
            format!("file {i}\n").repeat(50),
        )
        .unwrap();
    }
    let dst = w.volume(Side::Local, "dst", false);
    w.endpoint(Side::Local, &dst, Mode::HardLink, false, true);
    let mut config = String::from("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "s", &src));
    config.push_str(&World::volume_yaml(Side::Local, "d", &dst));
    config.push_str(
        "sync-endpoints:\n  es: {volume: s}\n  ed: {volume: d, hard-link-snapshots: {enabled: true, max-snapshots: 3}}\n\
         syncs:\n  copy: {source: es, destination: ed, rsync-options: {extra-options: [--bwlimit=6M]}}\n",
    );
    // Each version of the source differs in a large file, so every run
    // transfers for a while.
    let mut versions = Vec::new();
    let mut new_version = |w: &World, i: u64| {
        testbed::fixtures::large_file_at(&src.join("big.bin"), 2 * 1024 * 1024 + i * 4096);
        // A different size each time: rsync's quick check compares size and mtime.
        std::fs::write(src.join("version.txt"), "v".repeat(i as usize + 1)).unwrap();
        versions.push(w.manifest(Side::Local, &src));
        versions.clone()
    };
    new_version(&w, 0);
    be.run(&w, &config, &[]).assert_ok();
    let mut mid_run = 0;
    for i in 0..24u64 {
        let known = new_version(&w, i + 1);
        // An unfinished snapshot from an earlier crash, for the cleanup.
        let orphan = dst.join(format!(
            "snapshots/.nbkp-partial-2999-01-01T00:00:{i:02}.000Z"
        ));
        std::fs::create_dir_all(orphan.join("deep")).unwrap();
        for f in 0..40 {
            std::fs::write(orphan.join(format!("deep/o{f}")), "x").unwrap();
        }
        let mut child = be.spawn(&w, &config);
        std::thread::sleep(Duration::from_millis(20 + i * 25));
        testbed::kill(child.id(), 9);
        // The process group: rsync and the operations die with it.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .status();
        let _ = child.wait();
        std::thread::sleep(Duration::from_millis(50));
        let when = format!("{} killed after {} ms", be.name(), 20 + i * 25);
        // A lock left behind means the kill hit the middle of the sync.
        if dst.join(".nbkp-lock").is_symlink() {
            mid_run += 1;
        }
        assert_latest_is_a_version(&w, &dst, &known, &when);

        let out = be.run(&w, &config, &[]);
        assert_eq!(
            out.code, 0,
            "{when}, then the next run failed:\n{}",
            out.stderr
        );
        assert_latest_complete(&w, &src, &dst, &format!("{when}, after recovery"));
        assert!(
            unfinished(&dst).is_empty(),
            "{when}: unfinished snapshots left: {:?}",
            unfinished(&dst)
        );
        assert!(
            !dst.join(".nbkp-lock").is_symlink(),
            "{when}: the lock stayed"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dst.join("snapshots"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".nbkp-removing")
            })
            .collect();
        assert!(leftovers.is_empty(), "{when}: unfinished removals left");
        let count = w
            .snapshots(Side::Local, &dst)
            .iter()
            .filter(|n| n.starts_with("20"))
            .count();
        assert!(count <= 3, "{when}: pruning left {count} snapshots");
    }
    assert!(
        mid_run >= 12,
        "only {mid_run} of 24 kills hit a sync in progress"
    );
}

/// A destination that fills up: the sync fails, nothing is half-kept,
/// `latest` stays on the previous snapshot, and the next run recovers.
fn a_full_destination_keeps_the_previous_latest(be: &dyn Backend) {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    if !testbed::require(Drive::COMPONENTS) {
        return;
    }
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    w.sample_tree(Side::Local, &src);
    let drive = Drive::tiny("nbkp-full");
    let dst = drive.mountpoint().to_path_buf();
    std::fs::write(dst.join(".nbkp-vol"), "").unwrap();
    w.endpoint(Side::Local, &dst, Mode::HardLink, false, true);
    let mut config = String::from("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "s", &src));
    config.push_str(&World::volume_yaml(Side::Local, "d", &dst));
    config.push_str("sync-endpoints:\n  es: {volume: s}\n  ed: {volume: d, hard-link-snapshots: {enabled: true}}\nsyncs:\n  copy: {source: es, destination: ed}\n");
    be.run(&w, &config, &[]).assert_ok();
    let first = w.latest(Side::Local, &dst);

    testbed::fixtures::large_file_at(&src.join("too-big.bin"), 8 * 1024 * 1024);
    let out = be.run(&w, &config, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("rsync exited with code"),
        "{}",
        out.stderr
    );
    assert_eq!(
        w.latest(Side::Local, &dst),
        first,
        "latest moved after a failed run"
    );
    assert_eq!(
        w.snapshots(Side::Local, &dst).len(),
        1,
        "the unfinished snapshot was kept"
    );
    assert!(!dst.join(".nbkp-lock").is_symlink());

    std::fs::remove_file(src.join("too-big.bin")).unwrap();
    std::fs::write(src.join("after.txt"), "fits").unwrap();
    be.run(&w, &config, &[]).assert_ok();
    assert_ne!(w.latest(Side::Local, &dst), first);
    assert_latest_complete(&w, &src, &dst, "after recovery");
}

/// The SSH connection dropped mid-transfer: the sync fails, the remote
/// `latest` stays, and the next run completes.
fn a_dropped_connection_keeps_the_previous_latest(be: &dyn Backend) {
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
    let slow = "sync-endpoints:\n  es: {volume: s}\n  er: {volume: r, hard-link-snapshots: {enabled: true}}\nsyncs:\n  push: {source: es, destination: er, rsync-options: {extra-options: [--bwlimit=1M]}}\n";
    config.push_str(slow);
    be.run(&w, &config, &[]).assert_ok();
    let first = w.latest(Side::Remote, &vol);

    testbed::fixtures::large_file_at(&src.join("big.bin"), 6 * 1024 * 1024);
    let outcome = std::thread::scope(|scope| {
        let run = scope.spawn(|| be.run(&w, &config, &[]));
        let remote = w.remote();
        testbed::wait_for("the transfer", Duration::from_secs(30), || {
            remote
                .run_remote(&format!("ls -A {}/snapshots", testbed::shq(&vol)))
                .stdout
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .count()
                >= 2
        });
        std::thread::sleep(Duration::from_millis(500));
        assert!(remote.drop_connections() > 0);
        run.join().unwrap()
    });
    assert_ne!(outcome.code, 0, "{}", outcome.stderr);
    assert_eq!(
        w.latest(Side::Remote, &vol),
        first,
        "latest moved after a dropped connection"
    );

    let out = be.run(&w, &config, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        w.manifest(Side::Local, &src),
        w.manifest(Side::Remote, &vol.join("latest"))
    );
    assert!(!w.exists(Side::Remote, &vol.join(".nbkp-lock")));
}

both_backends!(
    killed_at_any_moment,
    a_full_destination_keeps_the_previous_latest,
    a_dropped_connection_keeps_the_previous_latest,
);
