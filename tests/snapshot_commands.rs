//! `nbkp init`, `nbkp snapshots show|prune` and retention during runs, on
//! the test bed: local folders, a real remote host over SSH, real btrfs, a
//! real loop drive that is plugged and unplugged, real SIGKILLs.

#[macro_use]
mod e2e;
mod testbed;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use e2e::{Backend, Mode, Side, World};
use nbkp::retention::{decide, Count, Policy};
use testbed::shq;
use testbed::volume::Drive;

fn nbkp(w: &World, config: &str, args: &[&str]) -> (i32, String, String) {
    let cfg = w.root().join(format!("cfg-{}.yaml", testbed::unique_id()));
    std::fs::write(&cfg, config).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nbkp"));
    cmd.args(args).arg("-c").arg(&cfg);
    // `nbkp run` records completed syncs: in this world, not the machine's.
    cmd.env("XDG_STATE_HOME", w.state_home());
    let out = testbed::run_timeout(&mut cmd, Duration::from_secs(120)).unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn results(doc: &serde_json::Value) -> Vec<(String, String)> {
    doc["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["path"].as_str().unwrap().to_string(),
                a["result"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// From bare folders to a working backup: a local source, a local
/// hard-link destination and a remote btrfs destination. A dry run lists
/// every action and changes nothing; init creates them; a second init finds
/// them all; then the syncs run.
#[test]
fn init_prepares_local_and_remote_endpoints_idempotently() {
    let Some(mut w) = World::new(true, true) else {
        return;
    };
    let src = w.volume_dir(Side::Local, "src", false);
    w.sample_tree(Side::Local, &src.join("docs"));
    let usb = w.volume_dir(Side::Local, "usb", false);
    let nas = w.volume_dir(Side::Remote, "nas", true);
    let mut config = w.ssh_yaml();
    config.push_str("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "laptop", &src));
    config.push_str(&World::volume_yaml(Side::Local, "usb", &usb));
    config.push_str(&World::volume_yaml(Side::Remote, "nas", &nas));
    config.push_str(
        "sync-endpoints:\n  docs: {volume: laptop, subdir: docs}\n  usb-docs: {volume: usb, subdir: backups/docs, hard-link-snapshots: {enabled: true}}\n  nas-docs: {volume: nas, subdir: docs, btrfs-snapshots: {enabled: true}}\nsyncs:\n  to-usb: {source: docs, destination: usb-docs}\n  to-nas: {source: docs, destination: nas-docs}\n",
    );

    let (code, out, err) = nbkp(&w, &config, &["init", "-n", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let dry = results(&json(&out));
    let docs = src.join("docs").display().to_string();
    assert!(dry.contains(&(docs.clone(), "exists".into())), "{dry:?}");
    assert!(
        dry.iter()
            .filter(|(p, _)| *p != docs)
            .all(|(_, r)| r == "would-create"),
        "{dry:?}"
    );
    let paths: Vec<&str> = dry.iter().map(|(p, _)| p.as_str()).collect();
    for want in [
        format!("{}/.nbkp-vol", src.display()),
        format!("{}/docs/.nbkp-src", src.display()),
        format!("{}/backups/docs/.nbkp-dst", usb.display()),
        format!("{}/backups/docs/latest", usb.display()),
        format!("server:{}/docs/staging", nas.display()),
    ] {
        assert!(paths.contains(&want.as_str()), "{want} not in {paths:?}");
    }
    assert!(!src.join(".nbkp-vol").exists() && !usb.join("backups").exists());
    assert!(!w.exists(Side::Remote, &nas.join(".nbkp-vol")));

    let (code, out, err) = nbkp(&w, &config, &["init", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let done = results(&json(&out));
    assert!(
        done.iter()
            .filter(|(p, _)| *p != docs)
            .all(|(_, r)| r == "created"),
        "{done:?}"
    );
    assert_eq!(done.len(), dry.len());
    assert_eq!(
        w.latest(Side::Local, &usb.join("backups/docs")),
        "/dev/null"
    );
    assert_eq!(w.inode(Side::Remote, &nas.join("docs/staging")), "256");
    assert!(w.exists(Side::Remote, &nas.join("docs/.nbkp-dst")));

    let (code, out, _) = nbkp(&w, &config, &["init", "-o", "json"]);
    assert_eq!(code, 0);
    let again = results(&json(&out));
    assert!(again.iter().all(|(_, r)| r == "exists"), "{again:?}");

    let (code, _, err) = nbkp(&w, &config, &["run"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        w.manifest(Side::Local, &src.join("docs")),
        w.manifest(Side::Remote, &nas.join("docs/latest"))
    );
    assert_eq!(
        w.manifest(Side::Local, &src.join("docs")),
        w.manifest(Side::Local, &usb.join("backups/docs/latest"))
    );
}

/// The two ways backups end up on the system disk: init never creates a
/// volume's missing root, and writes nothing into a drive's mount point
/// while the drive is unplugged; once it is plugged in, init prepares it.
#[test]
fn init_never_creates_a_missing_root_nor_writes_into_an_unplugged_drive() {
    if !testbed::require(Drive::COMPONENTS) {
        return;
    }
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let src = w.volume_dir(Side::Local, "src", false);
    let mountpoint = Path::new("/mnt").join(testbed::unique_name("nbkp-init"));
    let drive = Drive::builder("init")
        .mountpoint(&mountpoint)
        .unplugged()
        .build();
    std::fs::create_dir_all(&mountpoint).unwrap();
    let missing = w.root().join("not-there");
    let mut config = String::from("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "laptop", &src));
    config.push_str(&World::volume_yaml(Side::Local, "usb", &mountpoint));
    config.push_str(&World::volume_yaml(Side::Local, "gone", &missing));
    config.push_str("sync-endpoints:\n  docs: {volume: laptop}\n  usb-docs: {volume: usb, subdir: docs, hard-link-snapshots: {enabled: true}}\n  gone-docs: {volume: gone, subdir: docs}\nsyncs:\n  to-usb: {source: docs, destination: usb-docs}\n  to-gone: {source: docs, destination: gone-docs}\n");

    let (code, out, _) = nbkp(&w, &config, &["init", "-o", "json"]);
    assert_eq!(code, 1, "something could not be prepared");
    let r = results(&json(&out));
    assert!(
        r.contains(&(mountpoint.display().to_string(), "not-mounted".into())),
        "{r:?}"
    );
    assert!(
        r.contains(&(missing.display().to_string(), "missing-root".into())),
        "{r:?}"
    );
    assert!(
        r.contains(&(format!("{}/docs", missing.display()), "skipped".into())),
        "{r:?}"
    );
    assert!(!missing.exists(), "a missing root is never created");
    assert_eq!(
        std::fs::read_dir(&mountpoint).unwrap().count(),
        0,
        "nothing is written into an unplugged drive's mount point"
    );
    assert!(
        src.join(".nbkp-vol").is_file(),
        "the ready volume is prepared"
    );

    let (_, human, _) = nbkp(&w, &config, &["init"]);
    assert!(human.contains("a drive should be mounted here"), "{human}");
    assert!(
        human.contains("init never creates a volume's root"),
        "{human}"
    );

    drive.plug();
    let (_, out, _) = nbkp(&w, &config, &["init", "-o", "json", "-s", "to-usb"]);
    let r = results(&json(&out));
    assert!(
        r.contains(&(
            format!("{}/.nbkp-vol", mountpoint.display()),
            "created".into()
        )),
        "{r:?}"
    );
    assert!(mountpoint.join("docs/.nbkp-dst").is_file());
    assert_eq!(w.latest(Side::Local, &mountpoint.join("docs")), "/dev/null");
    drive.unplug();
    assert!(
        !mountpoint.join(".nbkp-vol").exists(),
        "it was on the drive"
    );
    let _ = std::fs::remove_dir(&mountpoint);
}

fn seed(w: &World, side: Side, ep: &Path, names: &[&str], latest: &str) {
    let p = shq(ep);
    let mut cmd = String::new();
    for n in names {
        cmd.push_str(&format!(
            "mkdir -p {p}/snapshots/{n} && echo {n} > {p}/snapshots/{n}/file && "
        ));
    }
    cmd.push_str(&format!("ln -sfn snapshots/{latest} {p}/latest"));
    w.sh(side, &cmd);
}

const SEEDED: [&str; 6] = [
    "2026-01-01T10:00:00.000Z",
    "2026-01-02T10:00:00.000Z",
    "2026-01-02T18:00:00.000Z",
    "2026-01-03T10:00:00.000Z",
    "2026-01-04T10:00:00.000Z",
    "2026-01-04T12:00:00.000Z",
];

fn show_and_prune(side: Side) {
    let Some(mut w) = World::new(side == Side::Remote, false) else {
        return;
    };
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    let dst = w.volume(side, "dst", false);
    w.endpoint(side, &dst, Mode::HardLink, false, true);
    seed(&w, side, &dst, &SEEDED, "2026-01-04T10:00:00.000Z");
    w.sh(side, &format!("mkdir {}/snapshots/notes", shq(&dst)));
    let mut config = if side == Side::Remote {
        w.ssh_yaml()
    } else {
        String::new()
    };
    config.push_str("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "s", &src));
    config.push_str(&World::volume_yaml(side, "d", &dst));
    config.push_str("sync-endpoints:\n  es: {volume: s}\n  ed: {volume: d, hard-link-snapshots: {enabled: true, retention: {keep-daily: 2, keep-last: 1}}}\nsyncs:\n  copy: {source: es, destination: ed}\n");

    // What the command reports is what the policy function decides.
    let (code, out, err) = nbkp(&w, &config, &["snapshots", "show", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let doc = json(&out);
    let ep = &doc["endpoints"][0];
    assert_eq!(ep["state"], "ok", "{doc}");
    assert_eq!(ep["latest"], "2026-01-04T10:00:00.000Z");
    let policy = Policy {
        keep_daily: Some(Count::N(2)),
        keep_last: Some(1),
        ..Policy::default()
    };
    let names: Vec<String> = SEEDED.iter().map(|s| s.to_string()).collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let expected = decide(&policy, &names, Some("2026-01-04T10:00:00.000Z"), now);
    let shown: Vec<(String, bool)> = ep["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["keep"].as_bool().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, bool)> = expected.iter().map(|d| (d.name.clone(), d.keep)).collect();
    assert_eq!(shown, want);
    // 01-04T12 is newer than latest (a run in progress): never removed;
    // latest 01-04T10 stays; daily keeps 01-04's newest and 01-03's.
    let kept: Vec<&str> = want
        .iter()
        .filter(|(_, k)| *k)
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(
        kept,
        [
            "2026-01-04T12:00:00.000Z",
            "2026-01-04T10:00:00.000Z",
            "2026-01-03T10:00:00.000Z"
        ]
    );
    assert_eq!(
        ep["snapshots"][0]["reasons"][0],
        "newer than latest (a run in progress, or a clock that was behind)"
    );

    // A dry run reports exactly what would go, and removes nothing.
    let (code, out, _) = nbkp(&w, &config, &["snapshots", "prune", "-n", "-o", "json"]);
    assert_eq!(code, 0);
    let removed = json(&out)["endpoints"][0]["removed"].clone();
    assert_eq!(
        removed,
        serde_json::json!([
            "2026-01-01T10:00:00.000Z",
            "2026-01-02T10:00:00.000Z",
            "2026-01-02T18:00:00.000Z"
        ])
    );
    assert_eq!(w.snapshots(side, &dst).len(), 7);

    // Another run holds the destination: nothing is removed, exit 1.
    w.sh(
        side,
        &format!("ln -s otherhost_boot_1 {}/.nbkp-lock", shq(&dst)),
    );
    let (code, out, _) = nbkp(&w, &config, &["snapshots", "prune", "-o", "json"]);
    assert_eq!(code, 1);
    assert_eq!(json(&out)["endpoints"][0]["state"], "locked");
    assert_eq!(w.snapshots(side, &dst).len(), 7);
    w.sh(side, &format!("rm {}/.nbkp-lock", shq(&dst)));

    let (code, out, err) = nbkp(&w, &config, &["snapshots", "prune", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["endpoints"][0]["removed"], removed);
    let mut left = w.snapshots(side, &dst);
    left.sort();
    assert_eq!(
        left,
        [
            "2026-01-03T10:00:00.000Z",
            "2026-01-04T10:00:00.000Z",
            "2026-01-04T12:00:00.000Z",
            "notes"
        ]
    );
    assert_eq!(w.latest(side, &dst), "snapshots/2026-01-04T10:00:00.000Z");
    assert!(
        !w.exists(side, &dst.join(".nbkp-lock")),
        "the lock is released"
    );

    // A volume that is not there (its sentinel gone) is reported, untouched.
    w.sh(
        side,
        &format!("mv {0}/.nbkp-vol {0}/.nbkp-vol.off", shq(&dst)),
    );
    let (code, out, _) = nbkp(&w, &config, &["snapshots", "prune", "-o", "json"]);
    assert_eq!(code, 0);
    assert_eq!(json(&out)["endpoints"][0]["state"], "absent");
    assert_eq!(w.snapshots(side, &dst).len(), 4);
}

/// `snapshots prune` names the rule of each removal; with the clock behind
/// the newest snapshot it removes nothing and says why.
#[test]
fn snapshots_prune_names_its_rules_and_waits_for_a_clock_behind() {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    let dst = w.volume(Side::Local, "dst", false);
    w.endpoint(Side::Local, &dst, Mode::HardLink, false, true);
    seed(&w, Side::Local, &dst, &SEEDED, "2026-01-04T12:00:00.000Z");
    let mut config = String::from("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "s", &src));
    config.push_str(&World::volume_yaml(Side::Local, "d", &dst));
    config.push_str("sync-endpoints:\n  es: {volume: s}\n  ed: {volume: d, hard-link-snapshots: {enabled: true, max-snapshots: 4}}\nsyncs:\n  copy: {source: es, destination: ed}\n");

    // A snapshot from a clock far ahead: now is behind it.
    let ahead = "2999-01-01T00:00:00.000Z";
    w.sh(
        Side::Local,
        &format!("mkdir {}/snapshots/{ahead}", shq(&dst)),
    );
    let (code, out, err) = nbkp(&w, &config, &["snapshots", "prune"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("is behind the newest snapshot {ahead}")),
        "{out}"
    );
    assert_eq!(w.snapshots(Side::Local, &dst).len(), 7, "nothing removed");

    w.sh(
        Side::Local,
        &format!("rmdir {}/snapshots/{ahead}", shq(&dst)),
    );
    let (code, out, err) = nbkp(&w, &config, &["snapshots", "prune"]);
    assert_eq!(code, 0, "{err}");
    for n in &SEEDED[..2] {
        assert!(
            out.contains(&format!("pruned snapshot {n} (retention: max-snapshots)")),
            "{out}"
        );
    }
    assert_eq!(w.snapshots(Side::Local, &dst).len(), 4);
}

#[test]
fn snapshots_show_and_prune_locally() {
    show_and_prune(Side::Local);
}

#[test]
fn snapshots_show_and_prune_over_ssh() {
    show_and_prune(Side::Remote);
}

/// After a successful sync, the calendar policy prunes on the destination's
/// host with the new snapshot's time as now: exactly what `decide` says.
/// Both back-ends, local and remote destinations.
fn run_prunes_by_the_calendar_policy(be: &dyn Backend, side: Side) {
    let Some(mut w) = World::new(side == Side::Remote, false) else {
        return;
    };
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    w.sample_tree(Side::Local, &src);
    let dst = w.volume(side, "dst", false);
    w.endpoint(side, &dst, Mode::HardLink, false, true);
    let old: Vec<&str> = vec![
        "2025-06-01T10:00:00.000Z",
        "2025-11-15T10:00:00.000Z",
        "2025-11-20T10:00:00.000Z",
        "2025-12-01T10:00:00.000Z",
        "2025-12-24T10:00:00.000Z",
        "2025-12-24T11:00:00.000Z",
    ];
    seed(&w, side, &dst, &old, "2025-12-24T11:00:00.000Z");
    let mut config = if side == Side::Remote {
        w.ssh_yaml()
    } else {
        String::new()
    };
    config.push_str("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "s", &src));
    config.push_str(&World::volume_yaml(side, "d", &dst));
    config.push_str("sync-endpoints:\n  es: {volume: s}\n  ed: {volume: d, hard-link-snapshots: {enabled: true, retention: {keep-monthly: 3, keep-last: 2}}}\nsyncs:\n  copy: {source: es, destination: ed}\n");
    be.run(&w, &config, &[]).assert_ok();
    let after = w.snapshots(side, &dst);
    let new = after
        .iter()
        .find(|n| !old.contains(&n.as_str()))
        .expect("a new snapshot")
        .clone();
    let mut all: Vec<String> = old.iter().map(|s| s.to_string()).collect();
    all.push(new.clone());
    let policy = Policy {
        keep_monthly: Some(Count::N(3)),
        keep_last: Some(2),
        ..Policy::default()
    };
    let now = nbkp::retention::parse_name(&new).unwrap();
    let mut want: Vec<String> = decide(&policy, &all, Some(&new), now)
        .into_iter()
        .filter(|d| d.keep)
        .map(|d| d.name)
        .collect();
    want.sort();
    assert_eq!(after, want, "{}", be.name());
    // The new month, December's newest (also last-2) and November's newest.
    assert!(want.contains(&"2025-12-24T11:00:00.000Z".to_string()));
    assert!(want.contains(&"2025-11-20T10:00:00.000Z".to_string()));
    assert_eq!(want.len(), 3);
    assert_eq!(w.latest(side, &dst), format!("snapshots/{new}"));
}

/// A failed sync prunes nothing, even with a policy that would remove
/// almost everything.
fn a_failed_sync_prunes_nothing(be: &dyn Backend) {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    w.sample_tree(Side::Local, &src);
    let dst = w.volume(Side::Local, "dst", false);
    w.endpoint(Side::Local, &dst, Mode::HardLink, false, true);
    seed(
        &w,
        Side::Local,
        &dst,
        &SEEDED[..5],
        "2026-01-04T10:00:00.000Z",
    );
    let mut config = String::from("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "s", &src));
    config.push_str(&World::volume_yaml(Side::Local, "d", &dst));
    // rsync refuses the option: the transfer fails before writing anything.
    config.push_str("sync-endpoints:\n  es: {volume: s}\n  ed: {volume: d, hard-link-snapshots: {enabled: true, max-snapshots: 1}}\nsyncs:\n  copy: {source: es, destination: ed, rsync-options: {extra-options: [--max-size=bogus]}}\n");
    let out = be.run(&w, &config, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let mut left = w.snapshots(Side::Local, &dst);
    left.sort();
    assert_eq!(left, SEEDED[..5], "{}", be.name());
    assert_eq!(
        w.latest(Side::Local, &dst),
        "snapshots/2026-01-04T10:00:00.000Z"
    );
}

/// `snapshots prune` killed (SIGKILL) while it removes a big snapshot: the
/// half-removed one is out of the snapshot name space, `latest` is
/// intact, and the next run finishes the removal.
fn a_pruning_killed_midway_completes_on_the_next_run(be: &dyn Backend) {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let src = w.volume(Side::Local, "src", false);
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    w.sample_tree(Side::Local, &src);
    let dst = w.volume(Side::Local, "dst", false);
    w.endpoint(Side::Local, &dst, Mode::HardLink, false, true);
    seed(
        &w,
        Side::Local,
        &dst,
        &SEEDED[..4],
        "2026-01-03T10:00:00.000Z",
    );
    // The oldest is big, so its removal takes a while.
    let big = dst.join("snapshots").join(SEEDED[0]);
    for d in 0..40 {
        let dir = big.join(format!("d{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..500 {
            std::fs::write(dir.join(format!("f{f}")), "x").unwrap();
        }
    }
    let mut config = String::from("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "s", &src));
    config.push_str(&World::volume_yaml(Side::Local, "d", &dst));
    config.push_str("sync-endpoints:\n  es: {volume: s}\n  ed: {volume: d, hard-link-snapshots: {enabled: true, max-snapshots: 2}}\nsyncs:\n  copy: {source: es, destination: ed}\n");
    let cfg = w.root().join("prune.yaml");
    std::fs::write(&cfg, &config).unwrap();
    let mut child = {
        use std::os::unix::process::CommandExt;
        Command::new(env!("CARGO_BIN_EXE_nbkp"))
            .args(["snapshots", "prune", "-c"])
            .arg(&cfg)
            .process_group(0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let removing = dst
        .join("snapshots")
        .join(format!(".nbkp-removing-{}", SEEDED[0]));
    testbed::wait_for("the removal to start", Duration::from_secs(30), || {
        removing.exists()
    });
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.wait();
    assert!(removing.exists(), "killed midway through the removal");
    assert!(
        !big.exists(),
        "the half-removed snapshot no longer looks like one"
    );
    assert_eq!(
        w.latest(Side::Local, &dst),
        "snapshots/2026-01-03T10:00:00.000Z"
    );

    be.run(&w, &config, &[]).assert_ok();
    assert!(
        !removing.exists(),
        "{}: the next run finished the removal",
        be.name()
    );
    let left = w.snapshots(Side::Local, &dst);
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&"2026-01-03T10:00:00.000Z".to_string()));
    assert_eq!(
        w.manifest(Side::Local, &src),
        w.manifest(Side::Local, &dst.join("latest"))
    );
}

fn local_run_prunes_by_the_calendar_policy(be: &dyn Backend) {
    run_prunes_by_the_calendar_policy(be, Side::Local);
}

fn remote_run_prunes_by_the_calendar_policy(be: &dyn Backend) {
    run_prunes_by_the_calendar_policy(be, Side::Remote);
}

both_backends!(
    local_run_prunes_by_the_calendar_policy,
    remote_run_prunes_by_the_calendar_policy,
    a_failed_sync_prunes_nothing,
    a_pruning_killed_midway_completes_on_the_next_run,
);
