//! `nbkp restore`, `nbkp verify` and `nbkp snapshots diff` on the test
//! bed: real backups made by `nbkp run` to local folders, a real remote
//! host over SSH (in its own network namespace) and real btrfs, then read
//! back, damaged in place, and compared.

#[allow(unused_macros)] // both_backends: not used here
mod e2e;
mod testbed;

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use e2e::{Mode, Side, World};
use testbed::fixtures::{self, TreeOptions};
use testbed::{shq, tree};

fn nbkp(w: &World, config: &str, args: &[&str]) -> (i32, String, String) {
    let cfg = w.root().join(format!("cfg-{}.yaml", testbed::unique_id()));
    std::fs::write(&cfg, config).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nbkp"));
    // `-c FILE` before a `--`, after which every word is a path.
    let end = args.iter().position(|a| *a == "--").unwrap_or(args.len());
    cmd.args(&args[..end])
        .arg("-c")
        .arg(&cfg)
        .args(&args[end..]);
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

fn strings(v: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

/// A local source `docs` backed up by sync `s` to an endpoint on `side`
/// with `mode`; the source folder, the destination endpoint and the config.
struct Backup {
    src: PathBuf,
    dst: PathBuf,
    side: Side,
    config: String,
}

fn backup(w: &mut World, side: Side, mode: Mode, filters: &str) -> Backup {
    let tag = testbed::unique_tag();
    let laptop = w.volume(Side::Local, &format!("laptop-{tag}"), false);
    let disk = w.volume(side, &format!("disk-{tag}"), mode == Mode::Btrfs);
    let src = laptop.join("docs");
    let dst = disk.join("backup");
    w.endpoint(Side::Local, &src, Mode::None, true, false);
    w.endpoint(side, &dst, mode, false, true);
    let mut config = if side == Side::Remote {
        w.ssh_yaml()
    } else {
        String::new()
    };
    config.push_str("volumes:\n");
    config.push_str(&World::volume_yaml(Side::Local, "laptop", &laptop));
    config.push_str(&World::volume_yaml(side, "disk", &disk));
    config.push_str(&format!(
        "sync-endpoints:\n  docs: {{volume: laptop, subdir: docs}}\n  bk: {{volume: disk, subdir: backup{}}}\nsyncs:\n  s: {{source: docs, destination: bk{filters}}}\n",
        mode.yaml(None)
    ));
    Backup {
        src,
        dst,
        side,
        config,
    }
}

impl Backup {
    fn run(&self, w: &World) {
        let (code, _, err) = nbkp(w, &self.config, &["run"]);
        assert_eq!(code, 0, "{err}");
    }

    /// Snapshot names, oldest first.
    fn snapshots(&self, w: &World) -> Vec<String> {
        w.snapshots(self.side, &self.dst)
    }

    fn snapshot_dir(&self, name: &str) -> PathBuf {
        self.dst.join("snapshots").join(name)
    }
}

/// A second snapshot after: `a.txt` rewritten, `sub/b.txt` removed,
/// `new.txt` added.
fn change_source(b: &Backup) {
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(b.src.join("a.txt"), "alpha, rewritten and longer\n").unwrap();
    std::fs::remove_file(b.src.join("sub/b.txt")).unwrap();
    std::fs::write(b.src.join("new.txt"), "new\n").unwrap();
}

fn restore_checks(w: &mut World, side: Side, mode: Mode) {
    let b = backup(w, side, mode, "");
    w.sample_tree(Side::Local, &b.src);
    b.run(w);
    change_source(&b);
    b.run(w);
    let snaps = b.snapshots(w);
    assert_eq!(snaps.len(), 2, "{snaps:?}");
    let old = &snaps[0];

    // One file from the older snapshot.
    let one = w.root().join(format!("one-{}", testbed::unique_tag()));
    let one_s = one.display().to_string();
    let (code, out, err) = nbkp(
        w,
        &b.config,
        &[
            "restore",
            "-s",
            "s",
            "--snapshot",
            old,
            "--to",
            &one_s,
            "a.txt",
            "-o",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let doc = json(&out);
    assert_eq!(strings(&doc["copied"]), ["a.txt"]);
    assert_eq!(doc["snapshot"], old.as_str());
    assert_eq!(
        std::fs::read_to_string(one.join("a.txt")).unwrap(),
        "alpha\n"
    );
    let names: Vec<_> = std::fs::read_dir(&one).unwrap().collect();
    assert_eq!(names.len(), 1, "only a.txt is restored");

    // The whole tree of the older snapshot, removed file included.
    let all = w.root().join(format!("all-{}", testbed::unique_tag()));
    let (code, _, err) = nbkp(
        w,
        &b.config,
        &[
            "restore",
            "-s",
            "s",
            "--snapshot",
            old,
            "--to",
            &all.display().to_string(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        w.manifest(Side::Local, &all),
        w.manifest(side, &b.snapshot_dir(old))
    );
    assert!(all.join("sub/b.txt").exists() && !all.join("new.txt").exists());

    // The newest by default; a dry run lists and copies nothing.
    let dry = w.root().join(format!("dry-{}", testbed::unique_tag()));
    let (code, out, err) = nbkp(
        w,
        &b.config,
        &[
            "restore",
            "-s",
            "s",
            "-n",
            "--to",
            &dry.display().to_string(),
            "-o",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let doc = json(&out);
    let copied = strings(&doc["copied"]);
    assert!(copied.contains(&"new.txt".to_string()), "{doc}");
    assert!(copied.contains(&"link-to-a".to_string()), "{doc}");
    assert_eq!(doc["snapshot"], snaps[1].as_str());
    assert!(!dry.exists());

    // Never over an existing file without --overwrite; then it says so.
    std::fs::write(one.join("a.txt"), "my own edit\n").unwrap();
    let (code, out, err) = nbkp(
        w,
        &b.config,
        &[
            "restore", "-s", "s", "--to", &one_s, "a.txt", "new.txt", "-o", "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let doc = json(&out);
    assert_eq!(strings(&doc["kept"]), ["a.txt"]);
    assert_eq!(strings(&doc["copied"]), ["new.txt"]);
    assert_eq!(
        std::fs::read_to_string(one.join("a.txt")).unwrap(),
        "my own edit\n"
    );
    let (code, out, err) = nbkp(
        w,
        &b.config,
        &[
            "restore",
            "-s",
            "s",
            "--to",
            &one_s,
            "a.txt",
            "--overwrite",
            "-o",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(strings(&json(&out)["replaced"]), ["a.txt"]);
    assert_eq!(
        std::fs::read_to_string(one.join("a.txt")).unwrap(),
        "alpha, rewritten and longer\n"
    );
}

#[test]
fn restore_from_an_older_local_snapshot_one_file_a_tree_and_no_overwrite() {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    restore_checks(&mut w, Side::Local, Mode::HardLink);
}

/// Back over the live source, on purpose: only the named file changes.
#[test]
fn restore_over_the_source_with_overwrite_puts_back_only_what_was_named() {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let b = backup(&mut w, Side::Local, Mode::HardLink, "");
    w.sample_tree(Side::Local, &b.src);
    b.run(&w);
    let old = b.snapshots(&w)[0].clone();
    change_source(&b);
    let src = b.src.display().to_string();
    let (code, out, err) = nbkp(
        &w,
        &b.config,
        &[
            "restore",
            "-s",
            "s",
            "--snapshot",
            &old,
            "--to",
            &src,
            "--overwrite",
            "a.txt",
            "-o",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(strings(&json(&out)["replaced"]), ["a.txt"]);
    assert_eq!(
        std::fs::read_to_string(b.src.join("a.txt")).unwrap(),
        "alpha\n"
    );
    assert!(b.src.join("new.txt").exists() && !b.src.join("sub/b.txt").exists());
    assert!(b.src.join(".nbkp-src").exists());
}

/// `-p overall` shows rsync's progress on stderr, and still reports what
/// was copied.
#[test]
fn restore_with_progress_still_lists_what_it_copied() {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let b = backup(&mut w, Side::Local, Mode::HardLink, "");
    w.sample_tree(Side::Local, &b.src);
    b.run(&w);
    let to = w.root().join("progress");
    let (code, out, err) = nbkp(
        &w,
        &b.config,
        &[
            "restore",
            "-s",
            "s",
            "-p",
            "overall",
            "--to",
            &to.display().to_string(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("(xfr#"), "{err}");
    assert!(
        out.contains("copied (5):") && out.contains("  sub/deeper/c.bin\n"),
        "{out}"
    );
    assert!(!out.contains("(xfr#"), "{out}");
}

#[test]
fn restore_from_the_ssh_test_host_over_one_connection() {
    let Some(mut w) = World::new(true, false) else {
        return;
    };
    restore_checks(&mut w, Side::Remote, Mode::HardLink);
    let b = backup(&mut w, Side::Remote, Mode::HardLink, "");
    w.sample_tree(Side::Local, &b.src);
    b.run(&w);
    let before = w.remote().login_count();
    let to = w.root().join("once");
    let (code, _, err) = nbkp(
        &w,
        &b.config,
        &["restore", "-s", "s", "--to", &to.display().to_string()],
    );
    assert_eq!(code, 0, "{err}");
    w.remote()
        .wait_login_count(before + 1, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        w.remote().login_count(),
        before + 1,
        "the listing and rsync share one SSH connection"
    );
    assert_eq!(
        w.manifest(Side::Local, &to),
        w.manifest(Side::Local, &b.src)
    );
}

#[test]
fn restore_from_btrfs_snapshots_local_and_on_the_ssh_host() {
    let Some(mut w) = World::new(true, true) else {
        return;
    };
    restore_checks(&mut w, Side::Local, Mode::Btrfs);
    restore_checks(&mut w, Side::Remote, Mode::Btrfs);
}

#[test]
fn restore_refuses_without_to_and_into_the_backup() {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let b = backup(&mut w, Side::Local, Mode::HardLink, "");
    w.sample_tree(Side::Local, &b.src);
    b.run(&w);
    let (code, _, err) = nbkp(&w, &b.config, &["restore", "-s", "s"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--to DIR") && err.contains("--overwrite"),
        "{err}"
    );
    let before = w.manifest(Side::Local, &b.dst);
    for inside in [
        b.dst.clone(),
        b.dst.join("snapshots/x"),
        b.dst.join("latest"),
    ] {
        let (code, _, err) = nbkp(
            &w,
            &b.config,
            &["restore", "-s", "s", "--to", &inside.display().to_string()],
        );
        assert_eq!(code, 2, "{inside:?}: {err}");
        assert!(err.contains("inside the backup"), "{err}");
    }
    assert!(!b.dst.join("snapshots/x").exists());
    // An unfinished snapshot is never a snapshot to restore from.
    let partial = ".nbkp-partial-2099-01-01T00:00:00.000Z";
    std::fs::create_dir(b.dst.join("snapshots").join(partial)).unwrap();
    let (code, _, err) = nbkp(
        &w,
        &b.config,
        &[
            "restore",
            "-s",
            "s",
            "--snapshot",
            partial,
            "--to",
            "/tmp/x",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no snapshot named"), "{err}");
    assert_eq!(w.manifest(Side::Local, &b.dst), before);
    let (code, _, err) = nbkp(
        &w,
        &b.config,
        &[
            "restore",
            "-s",
            "s",
            "--snapshot",
            "2001-01-01T00:00:00.000Z",
            "--to",
            "/tmp/x",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no snapshot named"), "{err}");
}

#[test]
fn a_plain_mirror_is_restored_and_verified_as_it_is() {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let b = backup(&mut w, Side::Local, Mode::None, "");
    w.sample_tree(Side::Local, &b.src);
    b.run(&w);
    let to = w.root().join("back");
    let (code, out, err) = nbkp(
        &w,
        &b.config,
        &[
            "restore",
            "-s",
            "s",
            "--to",
            &to.display().to_string(),
            "sub",
            "-o",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(json(&out)["snapshot"].is_null());
    assert_eq!(
        w.manifest(Side::Local, &to.join("sub")),
        w.manifest(Side::Local, &b.src.join("sub"))
    );
    assert!(!to.join(".nbkp-dst").exists() && !to.join("a.txt").exists());
    let (code, _, err) = nbkp(
        &w,
        &b.config,
        &[
            "restore",
            "-s",
            "s",
            "--snapshot",
            "2026-01-01T00:00:00.000Z",
            "--to",
            "/tmp/x",
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("no snapshots"), "{err}");
    let (code, _, err) = nbkp(&w, &b.config, &["verify", "-s", "s"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = nbkp(&w, &b.config, &["snapshots", "diff", "-s", "s"]);
    assert_eq!(code, 2, "{err}");
}

/// Overwrites a file's first bytes with others, keeping its size and
/// modification time (what a flipped bit on a drive looks like).
fn corrupt_in_place(w: &World, side: Side, file: &Path) {
    let f = shq(file);
    w.sh(
        side,
        &format!(
            "cp -p {f} {f}.ref && printf 'XXXX' | dd of={f} bs=1 seek=0 conv=notrunc 2>/dev/null \
             && touch -r {f}.ref {f} && ! cmp -s {f} {f}.ref && rm {f}.ref"
        ),
    );
}

fn verify_checks(w: &mut World, side: Side, mode: Mode) {
    let b = backup(w, side, mode, ", filters: ['- *.tmp']");
    w.sample_tree(Side::Local, &b.src);
    std::fs::write(b.src.join("skip.tmp"), "filtered out\n").unwrap();
    b.run(w);
    let (code, out, err) = nbkp(w, &b.config, &["verify", "-o", "json"]);
    assert_eq!(code, 0, "{err}\n{out}");
    assert_eq!(json(&out)["syncs"][0]["result"], "equal");

    let latest = b.snapshot_dir(&b.snapshots(w)[0]);
    let victim = latest.join("sub/deeper/c.bin");
    if mode == Mode::Btrfs {
        w.sh(
            side,
            &format!("btrfs property set -ts {} ro false", shq(&latest)),
        );
    }
    corrupt_in_place(w, side, &victim);
    if mode == Mode::Btrfs {
        w.sh(
            side,
            &format!("btrfs property set -ts {} ro true", shq(&latest)),
        );
    }

    let logins = (side == Side::Remote).then(|| w.remote().login_count());
    let (code, out, err) = nbkp(w, &b.config, &["verify", "-s", "s", "-o", "json"]);
    assert_eq!(code, 1, "{err}\n{out}");
    if let Some(before) = logins {
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(w.remote().login_count(), before + 1, "one SSH connection");
    }
    let r = &json(&out)["syncs"][0];
    assert_eq!(r["result"], "different");
    assert_eq!(r["method"], "checksum");
    assert_eq!(strings(&r["different"]), ["sub/deeper/c.bin"]);
    for k in ["missing", "extra", "changed_since"] {
        assert_eq!(strings(&r[k]), Vec::<String>::new(), "{k}: {r}");
    }
    let (code, out, err) = nbkp(w, &b.config, &["verify", "--quick", "-o", "json"]);
    assert_eq!(code, 0, "--quick compares size and time only: {err}\n{out}");

    // The source moves on: edits are "changed since", not damage.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(b.src.join("a.txt"), "edited after the snapshot\n").unwrap();
    std::fs::remove_file(b.src.join("link-to-a")).unwrap();
    std::os::unix::fs::symlink("sub", b.src.join("link-to-a")).unwrap();
    std::fs::write(b.src.join("later.txt"), "new\n").unwrap();
    std::fs::remove_file(b.src.join("with space.txt")).unwrap();
    let (code, out, _) = nbkp(w, &b.config, &["verify", "-o", "json"]);
    assert_eq!(code, 1);
    let r = &json(&out)["syncs"][0];
    assert_eq!(strings(&r["changed_since"]), ["a.txt", "link-to-a"]);
    assert_eq!(strings(&r["different"]), ["sub/deeper/c.bin"]);
    assert_eq!(strings(&r["missing"]), ["later.txt"]);
    assert_eq!(strings(&r["extra"]), ["with space.txt"]);
    let (_, human, _) = nbkp(w, &b.config, &["verify"]);
    assert!(
        human.contains("NOT EQUAL") && human.contains("damaged"),
        "{human}"
    );
}

#[test]
fn verify_finds_a_copy_damaged_in_place_that_quick_misses_local_hard_link() {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    verify_checks(&mut w, Side::Local, Mode::HardLink);
}

#[test]
fn verify_over_ssh_on_a_remote_btrfs_snapshot() {
    let Some(mut w) = World::new(true, true) else {
        return;
    };
    verify_checks(&mut w, Side::Remote, Mode::Btrfs);
}

fn diff_checks(w: &mut World, side: Side, mode: Mode) {
    let b = backup(w, side, mode, "");
    w.sample_tree(Side::Local, &b.src);
    b.run(w);
    let (code, _, err) = nbkp(w, &b.config, &["snapshots", "diff", "-s", "s"]);
    assert_eq!(code, 2, "one snapshot: nothing to compare: {err}");
    change_source(&b);
    b.run(w);
    let snaps = b.snapshots(w);
    // An unfinished snapshot (issue 18's layout) is never one of the two.
    let partial = b
        .dst
        .join("snapshots/.nbkp-partial-2099-01-01T00:00:00.000Z");
    w.sh(side, &format!("mkdir {}", shq(&partial)));
    let (code, out, err) = nbkp(
        w,
        &b.config,
        &["snapshots", "diff", "-s", "s", "-o", "json"],
    );
    assert_eq!(code, 0, "{err}");
    let d = json(&out);
    let paths = |k: &str| -> Vec<String> {
        let mut v: Vec<String> = d[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(d["from"], snaps[0].as_str());
    assert_eq!(d["to"], snaps[1].as_str());
    assert_eq!(paths("added"), ["new.txt"]);
    assert_eq!(paths("removed"), ["sub/b.txt"]);
    assert_eq!(paths("changed"), ["a.txt"], "{d}");
    assert_eq!(d["changed"][0]["size_before"], 6);
    assert_eq!(d["changed"][0]["size_after"], 28);
    assert_eq!(d["removed"][0]["size"], 5);
    let method = if mode == Mode::HardLink {
        "inode"
    } else {
        "size-mtime"
    };
    assert_eq!(d["method"], method);
    // Named in either order, and `latest`.
    let (code, out2, err) = nbkp(
        w,
        &b.config,
        &[
            "snapshots",
            "diff",
            "-s",
            "s",
            "latest",
            &snaps[0],
            "-o",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out2)["added"], d["added"]);
    let (_, human, _) = nbkp(w, &b.config, &["snapshots", "diff", "-s", "s"]);
    assert!(
        human.contains("+ new.txt") && human.contains("- sub/b.txt"),
        "{human}"
    );
}

#[test]
fn snapshots_diff_on_a_local_hard_link_destination() {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    diff_checks(&mut w, Side::Local, Mode::HardLink);
}

/// Same size and time, but rsync made a new copy (here: its mode changed,
/// which `--link-dest` does not link across): the inode says changed.
#[test]
fn snapshots_diff_hard_link_unchanged_means_same_inode() {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    let b = backup(&mut w, Side::Local, Mode::HardLink, "");
    w.sample_tree(Side::Local, &b.src);
    b.run(&w);
    std::thread::sleep(Duration::from_millis(20));
    w.sh(
        Side::Local,
        &format!("chmod 0600 {}", shq(b.src.join("a.txt"))),
    );
    b.run(&w);
    let (code, out, err) = nbkp(
        &w,
        &b.config,
        &["snapshots", "diff", "-s", "s", "-o", "json"],
    );
    assert_eq!(code, 0, "{err}");
    let d = json(&out);
    let changed: Vec<&str> = d["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["a.txt"], "{d}");
}

#[test]
fn snapshots_diff_on_a_local_btrfs_destination() {
    let Some(mut w) = World::new(false, true) else {
        return;
    };
    diff_checks(&mut w, Side::Local, Mode::Btrfs);
}

#[test]
fn snapshots_diff_on_the_ssh_test_host_btrfs() {
    let Some(mut w) = World::new(true, true) else {
        return;
    };
    diff_checks(&mut w, Side::Remote, Mode::Btrfs);
}

/// Names with spaces, quotes, a newline, leading dashes (and the rest of
/// the awkward tree) come back byte for byte, named one by one or as a
/// whole tree, locally and from the SSH host.
fn hostile_checks(w: &mut World, side: Side) {
    let b = backup(w, side, Mode::HardLink, "");
    fixtures::awkward_tree_with(
        &b.src,
        TreeOptions {
            large_bytes: 256 * 1024,
            sparse_bytes: 4 * 1024 * 1024,
        },
    );
    b.run(w);
    let whole = w.root().join("whole");
    let (code, _, err) = nbkp(
        w,
        &b.config,
        &["restore", "-s", "s", "--to", &whole.display().to_string()],
    );
    assert_eq!(code, 0, "{err}");
    // The backup itself keeps no hard links (no -H) and no absolute
    // symlink (--safe-links), so neither can its restore; everything else
    // is exact.
    tree::Compare::new()
        .hard_links(false)
        .exclude(".nbkp-src")
        .exclude("symlinks/absolute")
        .run(&b.src, &whole)
        .unwrap_or_else(|d| panic!("{d}"));

    let named = w.root().join("named");
    let picks = [
        "new\nline",
        "-leading-dash",
        "--rsync-looking-option",
        "single'quote",
        "double\"quote",
        "with space",
        "$(touch INJECTED)",
    ];
    let mut args: Vec<String> = [
        "restore",
        "-s",
        "s",
        "--to",
        &named.display().to_string(),
        "-o",
        "json",
        "--",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(picks.iter().map(|p| p.to_string()));
    args.push("dirs/new\nline".into());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = nbkp(w, &b.config, &argv);
    assert_eq!(code, 0, "{err}");
    let copied = strings(&json(&out)["copied"]);
    for p in picks {
        let got = std::fs::read(named.join(p)).unwrap_or_else(|e| panic!("{p:?}: {e}"));
        assert_eq!(got, p.as_bytes(), "{p:?}");
        assert!(copied.contains(&p.to_string()), "{p:?} not in {copied:?}");
    }
    assert!(named.join("dirs/new\nline/inside").is_file());
    let mut entries: Vec<Vec<u8>> = std::fs::read_dir(&named)
        .unwrap()
        .map(|e| e.unwrap().file_name().as_bytes().to_vec())
        .collect();
    entries.sort();
    assert_eq!(entries.len(), picks.len() + 1, "only what was named");
    assert!(!named.join("INJECTED").exists() && !w.root().join("INJECTED").exists());

    // verify and diff read the same names back exactly.
    let (code, out, err) = nbkp(w, &b.config, &["verify", "-o", "json"]);
    assert_eq!(code, 0, "{err}\n{out}");
    let odd = "added\nname -x 'q'";
    std::fs::write(b.src.join(odd), "odd\n").unwrap();
    std::fs::remove_file(b.src.join("-leading-dash")).unwrap();
    let (code, out, _) = nbkp(w, &b.config, &["verify", "-o", "json"]);
    assert_eq!(code, 1);
    let r = &json(&out)["syncs"][0];
    assert_eq!(strings(&r["missing"]), [odd]);
    assert_eq!(strings(&r["extra"]), ["-leading-dash"]);
    b.run(w);
    let (code, out, err) = nbkp(
        w,
        &b.config,
        &["snapshots", "diff", "-s", "s", "-o", "json"],
    );
    assert_eq!(code, 0, "{err}");
    let d = json(&out);
    assert_eq!(d["added"][0]["path"], odd, "{d}");
    assert_eq!(d["removed"][0]["path"], "-leading-dash", "{d}");
    assert_eq!(d["changed"], serde_json::json!([]), "{d}");
}

#[test]
fn hostile_names_are_restored_exactly_local() {
    let Some(mut w) = World::new(false, false) else {
        return;
    };
    hostile_checks(&mut w, Side::Local);
}

#[test]
fn hostile_names_are_restored_exactly_from_the_ssh_host() {
    let Some(mut w) = World::new(true, false) else {
        return;
    };
    hostile_checks(&mut w, Side::Remote);
}
