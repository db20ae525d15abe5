//! LUKS2 drives through udisks2, for real, inside User-Mode Linux (this
//! kernel has no device-mapper). One guest boot runs every scenario: the
//! host test boots the guest, which runs this same test binary's
//! `guest_scenarios` (ignored on the host) with real assertions; the host
//! test passes when that guest test passed.
//!
//! Scenarios: `nbkp run` unlocks, mounts (mount points discovered), syncs
//! (hard-link snapshots on ext4-on-LUKS, btrfs snapshots on btrfs-on-LUKS),
//! unmounts and locks; the same with a generated script under dash; a drive
//! left unlocked and mounted by a crash; a wrong passphrase; an absent
//! drive; a run interrupted with SIGTERM still unmounts and locks. In each,
//! the passphrase is looked for in the argv of every process (strace -f of
//! execve), in nbkp's logs and JSON, and in the script.

mod testbed;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use testbed::{require, Component};

const PASS: &str = "c0rrect h0rse 'battery' $(staple) \"x\"";
const WRONG: &str = "wr0ng-passphrase-9137";

#[test]
fn luks_udisks_scenarios_in_uml() {
    let needs = [
        Component::Root,
        Component::Uml,
        Component::Udisks,
        Component::Rsync,
        Component::Btrfs,
        Component::Ext4,
    ];
    if !require(&needs) {
        return;
    }
    // Not under /tmp: the guest puts a tmpfs there (unix sockets, such as
    // ssh's control sockets, cannot live on hostfs).
    let work = testbed::uml::work_dir();
    let mut disks = Vec::new();
    for name in ["plain.img", "btrfs.img"] {
        let d = work.path().join(name);
        testbed::check(Command::new("truncate").args(["-s", "320M"]).arg(&d));
        disks.push(d);
    }
    let me = std::env::current_exe().unwrap().display().to_string();
    let run = testbed::uml::run_guest(
        work.path(),
        &[
            me,
            "--ignored".into(),
            "--exact".into(),
            "guest_scenarios".into(),
            "--nocapture".into(),
            "--test-threads=1".into(),
        ],
        &[
            ("NBKP_UML_GUEST", "1".into()),
            ("NBKP_BIN", env!("CARGO_BIN_EXE_nbkp").into()),
            ("RUST_BACKTRACE", "1".into()),
            (
                "NBKP_UML_DEBUG",
                std::env::var("NBKP_UML_DEBUG").unwrap_or_default(),
            ),
            (
                "NBKP_UML_ONLY",
                std::env::var("NBKP_UML_ONLY").unwrap_or_default(),
            ),
        ],
        &disks,
        true,
    );
    eprintln!("guest boot + scenarios: {:.1} s", run.elapsed.as_secs_f64());
    assert_eq!(
        run.code,
        Some(0),
        "guest scenarios failed:\n{}\n--- kernel (tail) ---\n{}",
        run.log,
        run.kernel_log
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        run.log.contains("guest: all LUKS scenarios passed"),
        "{}",
        run.log
    );
    eprintln!("{}", run.log);
}

// ---- inside the guest ----

fn sh(cmd: &str) -> Output {
    Command::new("sh")
        .args(["-c", cmd])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(cmd: &str) -> String {
    let o = sh(cmd);
    assert!(
        o.status.success(),
        "`{cmd}` failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A LUKS2 container (cheap KDF) with a file system, prepared with
/// cryptsetup directly; returns the container's UUID.
fn format(dev: &str, fs: &str, label: &str, keyfile: &str, populate: &str) -> String {
    ok(&format!("cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file {keyfile} {dev}"));
    ok(&format!("cryptsetup open --key-file {keyfile} {dev} prep"));
    let mkfs = if fs == "btrfs" {
        "mkfs.btrfs -q"
    } else {
        "mkfs.ext4 -q"
    };
    ok(&format!("{mkfs} -L {label} /dev/mapper/prep"));
    ok("mkdir -p /mnt/prep && mount /dev/mapper/prep /mnt/prep");
    ok(&format!("cd /mnt/prep && {populate}"));
    ok("umount /mnt/prep && cryptsetup close prep");
    ok(&format!(
        "udevadm trigger --action=change {dev}; udevadm settle"
    ));
    ok(&format!("cryptsetup luksUUID {dev}"))
}

/// Whether the container has an unlocked (crypt) child.
fn unlocked(dev: &str) -> bool {
    ok(&format!("lsblk -rno TYPE {dev}"))
        .lines()
        .any(|l| l == "crypt")
}

fn mounted_at(dev: &str) -> Option<String> {
    let name = ok(&format!(
        "lsblk -rno NAME,TYPE {dev} | awk '$2==\"crypt\"{{print $1}}'"
    ));
    if name.is_empty() {
        return None;
    }
    let mp = ok(&format!(
        "findmnt -n -o TARGET --source /dev/mapper/{name} | head -n 1"
    ));
    (!mp.is_empty()).then_some(mp)
}

struct Traced {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    trace: String,
}

/// Runs `argv` under `strace -f` (every execve with its full argv;
/// `--seccomp-bpf` stops the tracees only at execve, much quicker in UML).
fn traced(argv: &[&str], envs: &[(&str, &str)]) -> Traced {
    let trace = "/run/trace";
    let _ = std::fs::remove_file(trace);
    let mut c = Command::new("strace");
    c.args([
        "-f",
        "--seccomp-bpf",
        "-tt",
        "-qq",
        "-e",
        "trace=execve",
        "-s",
        "65536",
        "-o",
        trace,
    ]);
    c.args(argv).stdin(Stdio::null());
    for (k, v) in envs {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    Traced {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        trace: std::fs::read_to_string(trace).unwrap_or_default(),
    }
}

/// The secret appears nowhere: not in any process's argv, not in output.
fn assert_no_leak(t: &Traced, secret: &str, what: &str) {
    // (Remote volumes are unlocked on the server side, traced separately.)
    assert!(
        what.contains("(client)") || t.trace.contains("udisksctl"),
        "{what}: strace saw no udisksctl:\n{}",
        t.trace
    );
    for needle in [secret, "c0rrect h0rse", WRONG] {
        assert!(
            !t.trace.contains(needle),
            "{what}: a passphrase in some process's argv:\n{}",
            t.trace
        );
        assert!(!t.stdout.contains(needle), "{what}: passphrase on stdout");
        assert!(
            !t.stderr.contains(needle),
            "{what}: passphrase in the log:\n{}",
            t.stderr
        );
    }
}

fn snapshots(root: &str, sub: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(format!("{root}/{sub}/snapshots"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Opens both containers read-only with cryptsetup (quicker than
/// udisks), mounts them under /mnt, runs `check` on the two roots, closes.
fn inspect(check: impl FnOnce(&str, &str)) {
    let key = "/run/inspect-key";
    std::fs::write(key, PASS).unwrap();
    for (dev, name) in [("/dev/ubda", "look-a"), ("/dev/ubdb", "look-b")] {
        ok(&format!("cryptsetup open --readonly --key-file {key} {dev} {name} && mkdir -p /mnt/{name} && mount -o ro /dev/mapper/{name} /mnt/{name}"));
    }
    std::fs::remove_file(key).unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check("/mnt/look-a", "/mnt/look-b")
    }));
    for name in ["look-a", "look-b"] {
        ok(&format!("umount /mnt/{name} && cryptsetup close {name}"));
    }
    ok("udevadm settle");
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

fn config(src: &str, uuid_a: &str, uuid_b: &str, extra: &str) -> String {
    format!(
        "credential-provider: env
volumes:
  laptop: {{type: local, path: {src}}}
  plain:
    type: local
    mount: {{device-uuid: {uuid_a}, encryption: {{passphrase-id: drives}}}}
  btr:
    type: local
    mount: {{device-uuid: {uuid_b}, encryption: {{passphrase-id: drives}}}}
{extra}sync-endpoints:
  docs: {{volume: laptop}}
  plain-docs:
    volume: plain
    subdir: docs
    hard-link-snapshots: {{enabled: true, max-snapshots: 5}}
  btr-docs:
    volume: btr
    subdir: docs
    btrfs-snapshots: {{enabled: true, max-snapshots: 5}}
syncs:
  to-plain: {{source: docs, destination: plain-docs}}
  to-btr: {{source: docs, destination: btr-docs}}
"
    )
}

#[test]
#[ignore = "runs inside the UML guest started by luks_udisks_scenarios_in_uml"]
fn guest_scenarios() {
    assert_eq!(
        std::env::var("NBKP_UML_GUEST").as_deref(),
        Ok("1"),
        "run by the UML test only"
    );
    let t0 = Instant::now();
    let nbkp = std::env::var("NBKP_BIN").unwrap();
    let nbkp = nbkp.as_str();
    let key = "/run/key";
    std::fs::write(key, PASS).unwrap();
    let uuid_a = format(
        "/dev/ubda",
        "ext4",
        "NBKPPLAIN",
        key,
        "touch .nbkp-vol && mkdir -p docs/snapshots && touch docs/.nbkp-dst docs/.nbkp-src && ln -s /dev/null docs/latest",
    );
    let uuid_b = format(
        "/dev/ubdb",
        "btrfs",
        "NBKPBTR",
        key,
        "touch .nbkp-vol && mkdir -p docs/snapshots && touch docs/.nbkp-dst && ln -s /dev/null docs/latest && btrfs -q subvolume create docs/staging",
    );
    std::fs::remove_file(key).unwrap();
    eprintln!(
        "guest: drives formatted at {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    let src = "/run/src";
    ok(&format!("mkdir -p {src}/sub && touch {src}/.nbkp-vol {src}/.nbkp-src && echo hello > {src}/a.txt && echo world > {src}/sub/b.txt"));
    let cfg = "/run/nbkp.yaml";
    std::fs::write(cfg, config(src, &uuid_a, &uuid_b, "")).unwrap();
    let env = [("NBKP_PASSPHRASE_DRIVES", PASS)];

    if std::env::var("NBKP_UML_ONLY").as_deref() == Ok("remote") {
        remote_scenarios(nbkp, src, &uuid_a, &uuid_b);
        println!("guest: all LUKS scenarios passed");
        return;
    }

    // 1. nbkp run: unlock, mount, sync, snapshot, unmount, lock.
    let t = traced(&[nbkp, "run", "-c", cfg, "-o", "json"], &env);
    assert_eq!(t.code, Some(0), "run: {}\n{}", t.stdout, t.stderr);
    assert_no_leak(&t, PASS, "run");
    let json: serde_json::Value = serde_json::from_str(&t.stdout).unwrap();
    for r in json["results"].as_array().unwrap() {
        assert_eq!(r["outcome"], "success", "{r}");
    }
    assert_eq!(json["mounts"].as_array().unwrap().len(), 2, "{json}");
    assert!(t.stderr.contains("mounted at /media/"), "{}", t.stderr);
    assert!(
        !unlocked("/dev/ubda") && !unlocked("/dev/ubdb"),
        "locked after run:\n{}",
        t.stderr
    );
    inspect(|a, b| {
        let sa = snapshots(a, "docs");
        assert_eq!(sa.len(), 1, "{sa:?}");
        assert_eq!(
            std::fs::read_to_string(format!("{a}/docs/latest/sub/b.txt")).unwrap(),
            "world\n"
        );
        let sb = snapshots(b, "docs");
        assert_eq!(sb.len(), 1, "{sb:?}");
        assert_eq!(
            std::fs::read_to_string(format!("{b}/docs/snapshots/{}/a.txt", sb[0])).unwrap(),
            "hello\n"
        );
    });
    eprintln!(
        "guest: run scenario done at {:.1}s",
        t0.elapsed().as_secs_f64()
    );

    // 1b. nbkp disks: mount one volume by name, its status, unmount. The
    // btrfs drive, mounted by udisks, has user_subvol_rm_allowed (from
    // /etc/udisks2/mount_options.conf, see guest-udisks.sh).
    let t = traced(&[nbkp, "disks", "mount", "-c", cfg, "-n", "plain"], &env);
    assert_eq!(t.code, Some(0), "disks mount: {}{}", t.stdout, t.stderr);
    assert_no_leak(&t, PASS, "disks mount");
    let mp = mounted_at("/dev/ubda").expect("plain mounted by disks mount");
    assert!(std::path::Path::new(&format!("{mp}/.nbkp-vol")).exists());
    assert!(!unlocked("/dev/ubdb"), "only the named volume");
    let o = sh(&format!("{nbkp} disks status -c {cfg} -o json"));
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(status[0]["volume"], "plain");
    assert_eq!(status[0]["state"], "mounted", "{status}");
    assert_eq!(status[1]["state"], "locked", "{status}");
    let t = traced(&[nbkp, "disks", "mount", "-c", cfg, "-n", "btr"], &env);
    assert_eq!(t.code, Some(0), "disks mount btr: {}", t.stderr);
    let mp = mounted_at("/dev/ubdb").expect("btr mounted by disks mount");
    let opts = ok(&format!("findmnt -n -o OPTIONS -T {mp}"));
    assert!(opts.contains("user_subvol_rm_allowed"), "{opts}");
    ok(&format!("{nbkp} disks umount -c {cfg}"));
    assert!(
        !unlocked("/dev/ubda") && !unlocked("/dev/ubdb"),
        "locked after disks umount"
    );

    // 2. The generated script, under dash: the same lifecycle.
    let script = "/run/backup.sh";
    ok(&format!("{nbkp} sh -c {cfg} -o {script}"));
    let text = std::fs::read_to_string(script).unwrap();
    assert!(!text.contains("c0rrect"), "passphrase in the script");
    ok(&format!("echo again > {src}/c.txt"));
    let t = traced(&["dash", script], &env);
    assert_eq!(t.code, Some(0), "script: {}\n{}", t.stdout, t.stderr);
    assert_no_leak(&t, PASS, "script");
    assert!(t.stderr.contains("unmounted and locked"), "{}", t.stderr);
    assert!(
        !unlocked("/dev/ubda") && !unlocked("/dev/ubdb"),
        "locked after the script"
    );
    inspect(|a, b| {
        assert_eq!(snapshots(a, "docs").len(), 2);
        assert_eq!(snapshots(b, "docs").len(), 2);
        assert_eq!(
            std::fs::read_to_string(format!("{a}/docs/latest/c.txt")).unwrap(),
            "again\n"
        );
        assert_eq!(
            std::fs::read_to_string(format!("{b}/docs/latest/c.txt")).unwrap(),
            "again\n"
        );
    });
    // 2b. nbkp snapshots show mounts the drives too (and unmounts them).
    let t = traced(&[nbkp, "snapshots", "show", "-c", cfg, "-o", "json"], &env);
    assert_eq!(t.code, Some(0), "snapshots show: {}", t.stderr);
    assert_no_leak(&t, PASS, "snapshots show");
    let doc: serde_json::Value = serde_json::from_str(&t.stdout).unwrap();
    let eps = doc["endpoints"].as_array().unwrap();
    assert_eq!(eps.len(), 2, "{doc}");
    for ep in eps {
        assert_eq!(ep["state"], "ok", "{doc}");
        assert_eq!(ep["snapshots"].as_array().unwrap().len(), 2, "{doc}");
    }
    assert!(
        !unlocked("/dev/ubda") && !unlocked("/dev/ubdb"),
        "locked after snapshots show"
    );
    eprintln!(
        "guest: script scenario done at {:.1}s",
        t0.elapsed().as_secs_f64()
    );

    // 3. A drive left unlocked and mounted by a crash: used, then locked.
    std::fs::write("/run/k2", PASS).unwrap();
    ok("udisksctl unlock --no-user-interaction -b /dev/ubda --key-file /run/k2 >/dev/null");
    std::fs::remove_file("/run/k2").unwrap();
    let name = ok("lsblk -rno NAME,TYPE /dev/ubda | awk '$2==\"crypt\"{print $1}'");
    ok(&format!(
        "udisksctl mount --no-user-interaction -b /dev/mapper/{name} >/dev/null"
    ));
    let t = traced(&[nbkp, "run", "-c", cfg], &env);
    assert_eq!(t.code, Some(0), "run after crash: {}", t.stderr);
    assert!(
        !unlocked("/dev/ubda"),
        "locked after the run:\n{}",
        t.stderr
    );
    eprintln!(
        "guest: left-unlocked scenario done at {:.1}s",
        t0.elapsed().as_secs_f64()
    );

    // 3a. --no-mount leaves locked drives alone (their syncs are inactive);
    // --no-umount leaves them mounted after the run.
    let o = Command::new(nbkp)
        .args(["run", "--no-mount", "-c", cfg])
        .env("NBKP_PASSPHRASE_DRIVES", PASS)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "--no-mount: {err}");
    assert!(
        err.contains("volume 'plain': volume not mounted (--no-mount)"),
        "{err}"
    );
    assert!(!unlocked("/dev/ubda") && !unlocked("/dev/ubdb"));
    let o = Command::new(nbkp)
        .args(["run", "--no-umount", "-c", cfg])
        .env("NBKP_PASSPHRASE_DRIVES", PASS)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "--no-umount: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        mounted_at("/dev/ubda").is_some() && mounted_at("/dev/ubdb").is_some(),
        "still mounted"
    );
    ok(&format!("{nbkp} disks umount -c {cfg}"));
    assert!(!unlocked("/dev/ubda") && !unlocked("/dev/ubdb"));

    // 3c. The prompt provider, on a terminal (util-linux `script` gives a
    // pty): asked once for the two drives sharing the passphrase-id, not
    // echoed; by nbkp run and by the script.
    let pcfg = "/run/prompt.yaml";
    std::fs::write(
        pcfg,
        std::fs::read_to_string(cfg)
            .unwrap()
            .replace("credential-provider: env", "credential-provider: prompt"),
    )
    .unwrap();
    ok(&format!("{nbkp} sh -c {pcfg} -o /run/prompt.sh"));
    for (what, cmd) in [
        ("run", format!("{nbkp} run -c {pcfg}")),
        ("script", "dash /run/prompt.sh".to_string()),
    ] {
        let (code, out) = prompted(&cmd);
        assert_eq!(code, Some(0), "prompt ({what}): {out}");
        assert_eq!(
            out.matches("LUKS passphrase for drives:").count(),
            1,
            "prompt ({what}): {out}"
        );
        assert!(
            !out.contains("c0rrect"),
            "the passphrase was echoed ({what}): {out}"
        );
        assert!(
            out.contains("unmounted and locked"),
            "prompt ({what}): {out}"
        );
        assert!(!unlocked("/dev/ubda") && !unlocked("/dev/ubdb"));
    }

    // 3b. The same drives as volumes of a remote host (sshd on the guest's
    // loopback): unlocked over the run's SSH connection, a push and a relay
    // between the two drives on the host, by nbkp run and by the script.
    remote_scenarios(nbkp, src, &uuid_a, &uuid_b);
    eprintln!(
        "guest: remote scenarios done at {:.1}s",
        t0.elapsed().as_secs_f64()
    );

    // 4. A wrong passphrase: a clear error naming the volume, exit 1.
    let t = traced(
        &[nbkp, "run", "-c", cfg],
        &[("NBKP_PASSPHRASE_DRIVES", WRONG)],
    );
    assert_eq!(t.code, Some(1), "wrong passphrase: {}", t.stderr);
    assert!(
        t.stderr.contains("volume 'plain': wrong passphrase"),
        "{}",
        t.stderr
    );
    assert_no_leak(&t, WRONG, "wrong passphrase");
    assert!(!unlocked("/dev/ubda"));
    // ... and through the script.
    let t = traced(&["dash", script], &[("NBKP_PASSPHRASE_DRIVES", WRONG)]);
    assert_eq!(t.code, Some(1), "script, wrong passphrase: {}", t.stderr);
    assert!(
        t.stderr.contains("volume 'plain': wrong passphrase"),
        "{}",
        t.stderr
    );
    assert_no_leak(&t, WRONG, "script, wrong passphrase");

    // 5. An absent drive is a normal state: reported, exit 0.
    let absent = "0f3c6a52-3d41-4b2e-9d0c-5a6b7c8d9e0f";
    let cfg2 = "/run/absent.yaml";
    let extra = format!("  gone:\n    type: local\n    mount: {{device-uuid: {absent}, encryption: {{passphrase-id: drives}}}}\n");
    let text = config(src, &uuid_a, &uuid_b, &extra).replace(
        "syncs:\n",
        "  gone-docs: {volume: gone, subdir: docs}\nsyncs:\n  to-gone: {source: docs, destination: gone-docs}\n",
    );
    std::fs::write(cfg2, text).unwrap();
    let o = Command::new(nbkp)
        .args(["run", "-c", cfg2])
        .env("NBKP_PASSPHRASE_DRIVES", PASS)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "absent drive: {err}");
    assert!(
        err.contains("volume 'gone': device not plugged in"),
        "{err}"
    );
    let o = Command::new(nbkp)
        .args(["disks", "status", "-c", cfg2, "-o", "json"])
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        status
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["volume"] == "gone" && v["state"] == "absent"),
        "{status}"
    );
    assert!(
        status
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["volume"] == "plain" && v["state"] == "locked"),
        "{status}"
    );

    // 6. Interrupted (SIGTERM) during the transfer: still unmounted and locked.
    ok(&format!("head -c 40000000 /dev/urandom > {src}/big.bin"));
    let slow = config(src, &uuid_a, &uuid_b, "").replace(
        "  to-plain: {source: docs, destination: plain-docs}",
        "  to-plain: {source: docs, destination: plain-docs, rsync-options: {extra-options: [--bwlimit=2000]}}",
    );
    let cfg3 = "/run/slow.yaml";
    std::fs::write(cfg3, slow).unwrap();
    let log = "/run/slow.log";
    let mut child = Command::new(nbkp)
        .args(["run", "-c", cfg3])
        .env("NBKP_PASSPHRASE_DRIVES", PASS)
        .stderr(std::fs::File::create(log).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains("Starting sync")
    {
        assert!(Instant::now() < deadline, "the slow run never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(unlocked("/dev/ubda"), "mounted during the run");
    ok(&format!("kill -TERM {}", child.id()));
    let status = child.wait().unwrap();
    let text = std::fs::read_to_string(log).unwrap_or_default();
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(
        !unlocked("/dev/ubda") && !unlocked("/dev/ubdb"),
        "locked after SIGTERM:\n{text}"
    );
    eprintln!(
        "guest: interrupt scenario done at {:.1}s",
        t0.elapsed().as_secs_f64()
    );

    println!(
        "guest: all LUKS scenarios passed in {:.1}s",
        t0.elapsed().as_secs_f64()
    );
}

/// sshd on 127.0.0.1:2222 in the guest, traced (every execve) into
/// `/run/sshd-trace`; returns it (killed on drop by the caller).
fn start_sshd() -> std::process::Child {
    ok("mkdir -p /run/sshd /run/ssh && chmod 700 /run/ssh");
    ok("ssh-keygen -q -t ed25519 -N '' -f /run/ssh/host_key");
    ok("ssh-keygen -q -t ed25519 -N '' -f /run/ssh/id");
    ok("cp /run/ssh/id.pub /run/ssh/authorized_keys");
    std::fs::write(
        "/run/ssh/sshd_config",
        "Port 2222\nListenAddress 127.0.0.1\nHostKey /run/ssh/host_key\nAuthorizedKeysFile /run/ssh/authorized_keys\nUsePAM no\nStrictModes no\nPermitRootLogin yes\nPasswordAuthentication no\nPidFile /run/sshd.pid\n",
    )
    .unwrap();
    let child = Command::new("strace")
        .args([
            "-f",
            "--seccomp-bpf",
            "-tt",
            "-qq",
            "-e",
            "trace=execve",
            "-s",
            "65536",
            "-o",
            "/run/sshd-trace",
        ])
        .args(["/usr/sbin/sshd", "-D", "-e", "-f", "/run/ssh/sshd_config"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create("/run/sshd.log").unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sh("ssh -p 2222 -i /run/ssh/id -o StrictHostKeyChecking=no -o UserKnownHostsFile=/run/ssh/known_hosts -o BatchMode=yes root@127.0.0.1 true").status.success() {
        assert!(Instant::now() < deadline, "sshd in the guest did not answer: {}", std::fs::read_to_string("/run/sshd.log").unwrap_or_default());
        std::thread::sleep(Duration::from_millis(200));
    }
    child
}

fn remote_scenarios(nbkp: &str, src: &str, uuid_a: &str, uuid_b: &str) {
    let t1 = Instant::now();
    let step = |w: &str| eprintln!("guest:   {w} at +{:.1}s", t1.elapsed().as_secs_f64());
    let mut sshd = start_sshd();
    step("sshd");
    let cfg = "/run/remote.yaml";
    std::fs::write(
        cfg,
        format!(
            "credential-provider: env
ssh-endpoints:
  hub:
    host: 127.0.0.1
    port: 2222
    user: root
    key: /run/ssh/id
    connection-options: {{strict-host-key-checking: false, known-hosts-file: /run/ssh/known_hosts}}
volumes:
  laptop: {{type: local, path: {src}}}
  rplain:
    type: remote
    ssh-endpoint: hub
    mount: {{device-uuid: {uuid_a}, encryption: {{passphrase-id: drives}}}}
  rbtr:
    type: remote
    ssh-endpoint: hub
    mount: {{device-uuid: {uuid_b}, encryption: {{passphrase-id: drives}}}}
sync-endpoints:
  docs: {{volume: laptop}}
  rplain-docs:
    volume: rplain
    subdir: docs
    hard-link-snapshots: {{enabled: true, max-snapshots: 50}}
  rbtr-docs:
    volume: rbtr
    subdir: docs
    btrfs-snapshots: {{enabled: true, max-snapshots: 50}}
syncs:
  push: {{source: docs, destination: rplain-docs}}
  relay: {{source: rplain-docs, destination: rbtr-docs}}
"
        ),
    )
    .unwrap();
    let env = [("NBKP_PASSPHRASE_DRIVES", PASS)];
    let count = || -> ((usize, usize), (String, String)) {
        let mut out = ((0, 0), (String::new(), String::new()));
        inspect(|a, b| {
            let read = |root: &str| {
                std::fs::read_to_string(format!("{root}/docs/latest/remote.txt"))
                    .unwrap_or_default()
            };
            out = (
                (snapshots(a, "docs").len(), snapshots(b, "docs").len()),
                (read(a), read(b)),
            );
        });
        out
    };
    let ((before_a, before_b), _) = count();
    step("count");

    ok(&format!("echo one > {src}/remote.txt"));
    let _ = std::fs::remove_file("/run/sshd-trace.keep");
    let t = traced(&[nbkp, "run", "-c", cfg], &env);
    step("run");
    if std::env::var("NBKP_UML_DEBUG").is_ok_and(|v| !v.is_empty()) {
        std::fs::write("/run/client-trace", &t.trace).unwrap();
        ok(&format!(
            "cp /run/client-trace /run/sshd-trace {}/target/uml/",
            env!("CARGO_MANIFEST_DIR")
        ));
    }
    assert_eq!(t.code, Some(0), "remote run: {}", t.stderr);
    assert_no_leak(&t, PASS, "remote run (client)");
    assert!(
        t.stderr.contains("volume 'hub:rplain' mounted at /media/"),
        "{}",
        t.stderr
    );
    assert!(
        !unlocked("/dev/ubda") && !unlocked("/dev/ubdb"),
        "locked after the remote run:\n{}",
        t.stderr
    );
    let ((a, b), (ca, cb)) = count();
    assert_eq!((a, b), (before_a + 1, before_b + 1), "{}", t.stderr);
    assert_eq!((ca.as_str(), cb.as_str()), ("one\n", "one\n"));

    let script = "/run/remote.sh";
    ok(&format!("{nbkp} sh -c {cfg} -o {script}"));
    assert!(!std::fs::read_to_string(script).unwrap().contains("c0rrect"));
    ok(&format!("echo two > {src}/remote.txt"));
    step("sh");
    let t = traced(&["dash", script], &env);
    step("script");
    assert_eq!(t.code, Some(0), "remote script: {}", t.stderr);
    assert_no_leak(&t, PASS, "remote script (client)");
    assert!(
        !unlocked("/dev/ubda") && !unlocked("/dev/ubdb"),
        "locked after the remote script:\n{}",
        t.stderr
    );
    let ((a, b), (ca, cb)) = count();
    assert_eq!((a, b), (before_a + 2, before_b + 2), "{}", t.stderr);
    assert_eq!((ca.as_str(), cb.as_str()), ("two\n", "two\n"));

    let _ = sshd.kill();
    let _ = sshd.wait();
    let server = std::fs::read_to_string("/run/sshd-trace").unwrap_or_default();
    assert!(
        server.contains("udisksctl"),
        "the server side ran no udisksctl:\n{server}"
    );
    assert!(
        !server.contains("c0rrect h0rse"),
        "a passphrase in an argv on the server side:\n{server}"
    );
}

/// Runs `cmd` on a pseudo-terminal (`script`), types the passphrase once
/// the prompt is shown; returns the exit code and everything the terminal
/// showed.
fn prompted(cmd: &str) -> (Option<i32>, String) {
    use std::io::Write;
    let typescript = "/run/typescript";
    let _ = std::fs::remove_file(typescript);
    let mut child = Command::new("script")
        .args(["-q", "-e", "-f", "-c", cmd, typescript])
        .env("NBKP_PASSPHRASE_DRIVES", "not-this-one")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stdin = child.stdin.take().unwrap();
    while !std::fs::read_to_string(typescript)
        .unwrap_or_default()
        .contains("LUKS passphrase for")
    {
        assert!(
            Instant::now() < deadline,
            "no prompt: {}",
            std::fs::read_to_string(typescript).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Echo goes off right after the prompt.
    std::thread::sleep(Duration::from_millis(500));
    stdin.write_all(format!("{PASS}\n").as_bytes()).unwrap();
    let status = child.wait().unwrap();
    drop(stdin);
    (
        status.code(),
        std::fs::read_to_string(typescript).unwrap_or_default(),
    )
}
