//! Syncs at once (docs/concurrency.md), for real: three drives (tmpfs
//! mounts, so three devices, and a fourth for the source) and five syncs held to about 2 s each by
//! rsync's own `--bwlimit` — two to drive A, one to B, one to C, and one
//! chained after the first (reading A, writing B). A real rsync does the
//! work; a wrapper first in PATH only writes down when each one starts and
//! ends. Both back-ends: `nbkp run` and the generated script.

mod testbed;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use testbed::shells::Shell;
use testbed::{require, Component};

/// About 2 s at `--bwlimit=200` (KiB/s).
const SLOW: usize = 400 * 1024;

struct World {
    dir: tempfile::TempDir,
    mounts: Vec<PathBuf>,
}

impl Drop for World {
    fn drop(&mut self) {
        for m in self.mounts.iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
    }
}

/// What `backend` is: `run`, or the script under a shell.
#[derive(Clone, Copy, Debug)]
enum Backend {
    Run,
    Script(Shell),
}

/// One rsync's transfer: its destination's drive and when it ran (ns).
#[derive(Debug, Clone)]
struct Transfer {
    dest: String,
    drive: char,
    start: u128,
    end: u128,
}

impl World {
    /// Drives A, B, C (A of `a_kib` KiB), the source tree (each sync's
    /// files `bytes` long), the config (with `bwlimit` when given), the
    /// sentinels, the script and the rsync wrapper.
    fn new(a_kib: usize, sizes: [usize; 4], bwlimit: Option<u32>) -> World {
        World::with_source(None, a_kib, sizes, bwlimit)
    }

    /// [`World::new`] with the source on a loop-mounted ext4 drive whose
    /// disk says it is rotational (`Some(true)`) or not, instead of tmpfs.
    fn with_source(
        rotational: Option<bool>,
        a_kib: usize,
        sizes: [usize; 4],
        bwlimit: Option<u32>,
    ) -> World {
        let dir = testbed::temp_dir("jobs");
        let mut w = World {
            dir,
            mounts: Vec::new(),
        };
        let root = w.root();
        if let Some(rotational) = rotational {
            let image = root.join("src.img");
            testbed::check(Command::new("truncate").args(["-s", "32M"]).arg(&image));
            testbed::check(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image));
            let m = root.join("src");
            std::fs::create_dir_all(&m).unwrap();
            testbed::check(
                Command::new("mount")
                    .args(["-o", "loop"])
                    .arg(&image)
                    .arg(&m),
            );
            w.mounts.push(m.clone());
            let device =
                testbed::check(Command::new("findmnt").args(["-n", "-o", "SOURCE"]).arg(&m));
            let name = device.trim().trim_start_matches("/dev/").to_string();
            std::fs::write(
                format!("/sys/block/{name}/queue/rotational"),
                if rotational { "1" } else { "0" },
            )
            .unwrap();
        }
        // The source is a drive too: on a rotational disk (as this
        // machine's may report itself), its readers would run one at a time.
        let source = rotational.is_none().then_some(("src", 4096));
        for (d, kib) in source
            .into_iter()
            .chain([("a", a_kib), ("b", 4096), ("c", 4096)])
        {
            let m = root.join(d);
            std::fs::create_dir_all(&m).unwrap();
            testbed::check(
                Command::new("mount")
                    .args(["-t", "tmpfs", "-o"])
                    .arg(format!("size={kib}k"))
                    .arg("tmpfs")
                    .arg(&m),
            );
            w.mounts.push(m);
        }
        for (i, size) in sizes.iter().enumerate() {
            let p = root.join(format!("src/p{}", i + 1));
            std::fs::create_dir_all(&p).unwrap();
            // Incompressible, so the limit holds.
            let mut data = vec![0u8; *size];
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ i as u64;
            for b in &mut data {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            std::fs::write(p.join("f"), data).unwrap();
        }
        let opts = bwlimit
            .map(|l| format!(", rsync-options: {{extra-options: [--bwlimit={l}]}}"))
            .unwrap_or_default();
        let r = root.display();
        let config = format!(
            "volumes:\n  src: {{type: local, path: {r}/src}}\n  a: {{type: local, path: {r}/a}}\n  \
             b: {{type: local, path: {r}/b}}\n  c: {{type: local, path: {r}/c}}\n\
             sync-endpoints:\n  p1: {{volume: src, subdir: p1}}\n  p2: {{volume: src, subdir: p2}}\n  \
             p3: {{volume: src, subdir: p3}}\n  p4: {{volume: src, subdir: p4}}\n  \
             a1: {{volume: a, subdir: a1, hard-link-snapshots: {{enabled: true}}}}\n  \
             a2: {{volume: a, subdir: a2}}\n  b1: {{volume: b, subdir: b1}}\n  \
             c1: {{volume: c, subdir: c1}}\n  b2: {{volume: b, subdir: b2}}\n\
             syncs:\n  s1: {{source: p1, destination: a1{opts}}}\n  s2: {{source: p2, destination: a2{opts}}}\n  \
             s3: {{source: p3, destination: b1{opts}}}\n  s4: {{source: p4, destination: c1{opts}}}\n  \
             s5: {{source: a1, destination: b2{opts}}}\n"
        );
        std::fs::write(w.config(), config).unwrap();
        let out = w.nbkp(&["init", "-c"], &[]);
        assert!(out.status.success(), "init: {}", text(&out.stderr));
        let out = w.nbkp(&["sh", "-c"], &[]);
        assert!(out.status.success(), "sh: {}", text(&out.stderr));
        std::fs::write(root.join("script.sh"), &out.stdout).unwrap();
        // The wrapper: when each rsync into this world starts and ends.
        let bin = root.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let real = testbed::which("rsync").expect("rsync");
        let log = root.join("transfers.log");
        std::fs::write(
            bin.join("rsync"),
            format!(
                "#!/bin/sh\nfor last; do :; done\ncase $last in {r}/*) ;; *) exec {real} \"$@\" ;; esac\n\
                 echo \"start $last $(date +%s%N)\" >>{log}\n{real} \"$@\"\nrc=$?\n\
                 echo \"end $last $(date +%s%N)\" >>{log}\nexit $rc\n",
                real = real.display(),
                log = log.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join("rsync"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        w
    }

    fn root(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    fn config(&self) -> PathBuf {
        self.root().join("config.yaml")
    }

    fn path_env(&self) -> String {
        format!(
            "{}:{}",
            self.root().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// `nbkp ARGS CONFIG MORE` with the wrapper first in PATH.
    fn nbkp(&self, args: &[&str], more: &[&str]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_nbkp"));
        c.args(args).arg(self.config()).args(more);
        c.env("PATH", self.path_env());
        testbed::run_timeout(&mut c, Duration::from_secs(120)).expect("nbkp")
    }

    fn command(&self, backend: Backend, flags: &[&str]) -> Command {
        let mut c = match backend {
            Backend::Run => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_nbkp"));
                c.arg("run").arg("-c").arg(self.config());
                c
            }
            Backend::Script(shell) => {
                let mut c = shell.command();
                c.arg(self.root().join("script.sh"));
                c
            }
        };
        c.args(flags).env("PATH", self.path_env());
        c
    }

    fn run(&self, backend: Backend, flags: &[&str]) -> Output {
        testbed::run_timeout(&mut self.command(backend, flags), Duration::from_secs(120))
            .expect("run")
    }

    /// Each transfer of the world, from the wrapper's log.
    fn transfers(&self) -> Vec<Transfer> {
        let log = std::fs::read_to_string(self.root().join("transfers.log")).unwrap_or_default();
        let root = self.root().display().to_string();
        let mut starts: Vec<(String, u128)> = Vec::new();
        let mut out = Vec::new();
        for line in log.lines() {
            let mut words = line.split(' ');
            let (Some(kind), Some(dest), Some(at)) = (words.next(), words.next(), words.next())
            else {
                continue;
            };
            let at: u128 = at.parse().unwrap();
            if kind == "start" {
                starts.push((dest.to_string(), at));
            } else if let Some(i) = starts.iter().position(|(d, _)| d == dest) {
                let (dest, start) = starts.remove(i);
                let drive = dest[root.len() + 1..].chars().next().unwrap();
                out.push(Transfer {
                    dest,
                    drive,
                    start,
                    end: at,
                });
            }
        }
        out
    }

    fn clear_log(&self) {
        let _ = std::fs::remove_file(self.root().join("transfers.log"));
    }

    /// The file `sync`'s destination got (through `latest` for s1).
    fn arrived(&self, dest: &str) -> Option<Vec<u8>> {
        let r = self.root();
        let path = match dest {
            "a1" => r.join("a/a1/latest/f"),
            "a2" => r.join("a/a2/f"),
            "b1" => r.join("b/b1/f"),
            "c1" => r.join("c/c1/f"),
            _ => r.join("b/b2/f"),
        };
        std::fs::read(path).ok()
    }

    fn source(&self, n: usize) -> Vec<u8> {
        std::fs::read(self.root().join(format!("src/p{n}/f"))).unwrap()
    }

    /// Every `.nbkp-lock` left in the world.
    fn locks(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for d in ["a/a1", "a/a2", "b/b1", "b/b2", "c/c1"] {
            let l = self.root().join(d).join(".nbkp-lock");
            if l.symlink_metadata().is_ok() {
                found.push(l);
            }
        }
        found
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn backends() -> Vec<Backend> {
    let mut out = vec![Backend::Run];
    for shell in [Shell::Dash, Shell::BashPosix] {
        if shell.is_available() {
            out.push(Backend::Script(shell));
        }
    }
    out
}

fn ready() -> bool {
    require(&[Component::Root, Component::Rsync])
}

/// No two transfers wrote one drive at once; returns whether any two
/// transfers (on different drives) ran at the same time.
fn one_writer_per_drive(transfers: &[Transfer], what: &str) -> bool {
    let mut parallel = false;
    for (i, x) in transfers.iter().enumerate() {
        for y in &transfers[i + 1..] {
            let overlap = x.start < y.end && y.start < x.end;
            assert!(
                !(overlap && x.drive == y.drive),
                "{what}: {} and {} wrote drive {} at once: {transfers:#?}",
                x.dest,
                y.dest,
                x.drive
            );
            parallel |= overlap;
        }
    }
    parallel
}

fn transfer_into<'t>(transfers: &'t [Transfer], part: &str) -> &'t Transfer {
    transfers
        .iter()
        .find(|t| t.dest.contains(part))
        .unwrap_or_else(|| panic!("no transfer into {part}: {transfers:#?}"))
}

#[test]
fn independent_syncs_run_at_once_one_writer_per_drive() {
    if !ready() {
        return;
    }
    for backend in backends() {
        let w = World::new(4096, [SLOW; 4], Some(200));
        let out = w.run(backend, &[]);
        let what = format!("{backend:?}");
        assert!(out.status.success(), "{what}: {}", text(&out.stderr));
        let t = w.transfers();
        assert_eq!(t.len(), 5, "{what}: {t:#?}");
        assert!(
            one_writer_per_drive(&t, &what),
            "{what}: nothing ran at once: {t:#?}"
        );
        // The chained sync read what its upstream had finished writing.
        let (up, down) = (transfer_into(&t, "/a/a1/"), transfer_into(&t, "/b/b2"));
        assert!(down.start >= up.end, "{what}: s5 started before s1 ended");
        for (n, dest) in [(1, "a1"), (2, "a2"), (3, "b1"), (4, "c1"), (1, "b2")] {
            assert_eq!(w.arrived(dest), Some(w.source(n)), "{what}: {dest}");
        }
        assert!(w.locks().is_empty(), "{what}: {:?}", w.locks());
    }
}

#[test]
fn jobs_1_runs_one_sync_after_the_other_in_plan_order() {
    if !ready() {
        return;
    }
    for backend in backends() {
        let w = World::new(4096, [64 * 1024; 4], None);
        let what = format!("{backend:?} --jobs 1");
        let out = w.run(backend, &["--jobs", "1"]);
        assert!(out.status.success(), "{what}: {}", text(&out.stderr));
        let t = w.transfers();
        assert_eq!(t.len(), 5, "{what}: {t:#?}");
        for pair in t.windows(2) {
            assert!(pair[0].end <= pair[1].start, "{what}: overlap {t:#?}");
        }
        let lines: Vec<String> = text(&out.stderr)
            .lines()
            .filter(|l| l.contains(" sync: "))
            .map(str::to_string)
            .collect();
        let expected: Vec<String> = (1..=5)
            .flat_map(|i| {
                [
                    format!("[nbkp] Starting sync: s{i}"),
                    format!("[nbkp] Completed sync: s{i}"),
                ]
            })
            .collect();
        assert_eq!(lines, expected, "{what}");
    }
}

#[test]
fn a_failure_cancels_only_its_dependants() {
    if !ready() {
        return;
    }
    for backend in backends() {
        // Drive A holds 192 KiB: s1's 400 KiB fill it mid-transfer; s2's
        // few KiB fit once s1's unfinished snapshot is removed.
        let w = World::new(192, [SLOW, 8 * 1024, SLOW, SLOW], Some(400));
        let what = format!("{backend:?}");
        let flags: &[&str] = match backend {
            Backend::Run => &["-o", "json"],
            Backend::Script(_) => &[],
        };
        let out = w.run(backend, flags);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out.stderr));
        let log = text(&out.stderr);
        assert!(log.contains("[nbkp] FAILED s1"), "{what}: {log}");
        assert!(
            log.contains("[nbkp] CANCELLED s5: upstream sync s1 failed"),
            "{what}: {log}"
        );
        for s in ["s2", "s3", "s4"] {
            assert!(
                log.contains(&format!("[nbkp] Completed sync: {s}")),
                "{what}: {log}"
            );
        }
        assert!(log.contains("[nbkp] 2 sync(s) failed"), "{what}: {log}");
        // rsync's own words about the full drive, named: whose they are
        // is clear while others run.
        assert!(
            log.lines()
                .any(|l| l.starts_with("s1: rsync") && l.contains("No space left on device")),
            "{what}: {log}"
        );
        for line in log.lines().filter(|l| l.contains("rsync error")) {
            assert!(line.starts_with("s1: "), "{what}: unnamed: {line}\n{log}");
        }
        assert!(
            one_writer_per_drive(&w.transfers(), &what),
            "{what}: nothing ran at once"
        );
        assert_eq!(w.arrived("a2"), Some(w.source(2)), "{what}");
        assert_eq!(w.arrived("b1"), Some(w.source(3)), "{what}");
        assert_eq!(w.arrived("c1"), Some(w.source(4)), "{what}");
        assert!(w.locks().is_empty(), "{what}: {:?}", w.locks());
        if let Backend::Run = backend {
            // The report lists the syncs in plan order, whatever order they ended in.
            let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let results: Vec<(&str, &str)> = report["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r["sync_slug"].as_str().unwrap(),
                        r["outcome"].as_str().unwrap(),
                    )
                })
                .collect();
            assert_eq!(
                results,
                [
                    ("s1", "failed"),
                    ("s2", "success"),
                    ("s3", "success"),
                    ("s4", "success"),
                    ("s5", "cancelled")
                ]
            );
        }
    }
}

#[test]
fn ctrl_c_during_parallel_transfers_leaves_every_destination_valid() {
    if !ready() {
        return;
    }
    for backend in backends() {
        let w = World::new(4096, [SLOW; 4], Some(200));
        let what = format!("{backend:?}");
        let mut cmd = w.command(backend, &[]);
        use std::os::unix::process::CommandExt;
        // A terminal's Ctrl-C: SIGINT to the whole process group.
        cmd.process_group(0)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start");
        let pid = child.id() as i32;
        // Wait until three transfers are under way.
        testbed::wait_for("three transfers", Duration::from_secs(20), || {
            let log = std::fs::read_to_string(w.root().join("transfers.log")).unwrap_or_default();
            log.lines().filter(|l| l.starts_with("start")).count() >= 3
        });
        std::thread::sleep(Duration::from_millis(500));
        // SAFETY: a signal to the child's own process group.
        unsafe { libc::kill(-pid, libc::SIGINT) };
        let out = testbed::wait_child(child, Duration::from_secs(60), "interrupted run").unwrap();
        assert_eq!(
            out.status.code(),
            Some(130),
            "{what}: {}",
            text(&out.stderr)
        );
        assert!(
            w.locks().is_empty(),
            "{what}: locks left {:?}: {}",
            w.locks(),
            text(&out.stderr)
        );
        // `latest` names a complete snapshot, or none yet; nothing unfinished.
        let a1 = w.root().join("a/a1");
        let latest = std::fs::read_link(a1.join("latest")).unwrap();
        let current =
            (latest != Path::new("/dev/null")).then(|| latest.file_name().unwrap().to_owned());
        if current.is_some() {
            assert_eq!(w.arrived("a1"), Some(w.source(1)), "{what}");
        }
        for e in std::fs::read_dir(a1.join("snapshots")).unwrap() {
            let name = e.unwrap().file_name();
            assert_eq!(
                Some(&name),
                current.as_ref(),
                "{what}: an unfinished snapshot stayed"
            );
        }
        // The next run completes every sync.
        w.clear_log();
        let again = w.run(backend, &[]);
        assert!(again.status.success(), "{what}: {}", text(&again.stderr));
        for (n, dest) in [(1, "a1"), (2, "a2"), (3, "b1"), (4, "c1"), (1, "b2")] {
            assert_eq!(w.arrived(dest), Some(w.source(n)), "{what}: {dest}");
        }
    }
}

#[test]
fn every_shell_runs_the_lanes() {
    if !ready() {
        return;
    }
    let w = World::new(4096, [16 * 1024; 4], None);
    for shell in Shell::ALL {
        if !shell.is_available() {
            continue;
        }
        for d in ["a/a2", "b/b1", "c/c1", "b/b2"] {
            let _ = std::fs::remove_file(w.root().join(d).join("f"));
        }
        w.clear_log();
        let out = w.run(Backend::Script(shell), &["-j", "3"]);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let log = text(&out.stderr);
        assert!(
            log.ends_with("[nbkp] All syncs completed successfully\n"),
            "{shell}: {log}"
        );
        for (n, dest) in [(1, "a1"), (2, "a2"), (3, "b1"), (4, "c1"), (1, "b2")] {
            assert_eq!(w.arrived(dest), Some(w.source(n)), "{shell}: {dest}");
        }
        one_writer_per_drive(&w.transfers(), &shell.to_string());
    }
}

/// The plan's lanes (`nbkp sh --plan`) of a config: each lane's syncs by name.
fn plan_lanes(config: &str) -> Vec<Vec<String>> {
    let dir = testbed::temp_dir("lanes");
    let cfg = dir.path().join("config.yaml");
    std::fs::write(&cfg, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nbkp"))
        .args(["sh", "--plan", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<String> = plan["syncs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["slug"].as_str().unwrap().to_string())
        .collect();
    match plan.get("lanes") {
        None => vec![names],
        Some(lanes) => lanes
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                l["syncs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| names[i.as_u64().unwrap() as usize].clone())
                    .collect()
            })
            .collect(),
    }
}

/// Volumes `src` (local), `a`, `b` (local), `one`, `two`, `three` (on
/// `nas`, whose endpoint line is `nas`), and `syncs`.
fn lanes_config(nas: &str, syncs: &str) -> String {
    format!(
        "ssh-endpoints:\n  nas: {nas}\n  other: {{host: 10.0.0.43}}\nvolumes:\n  src: {{type: local, path: /data/src}}\n  \
         a: {{type: local, path: /data/a}}\n  b: {{type: local, path: /data/b}}\n  \
         one: {{type: remote, ssh-endpoint: nas, path: /srv/one}}\n  two: {{type: remote, ssh-endpoint: nas, path: /srv/two}}\n  \
         three: {{type: remote, ssh-endpoint: nas, path: /srv/three}}\n  far: {{type: remote, ssh-endpoint: other, path: /srv/far}}\n\
         sync-endpoints:\n  p1: {{volume: src, subdir: p1}}\n  p2: {{volume: src, subdir: p2}}\n  p3: {{volume: src, subdir: p3}}\n  \
         p4: {{volume: src, subdir: p4}}\n  a1: {{volume: a, subdir: a1}}\n  a2: {{volume: a, subdir: a2}}\n  b1: {{volume: b}}\n  \
         d1: {{volume: one}}\n  d2: {{volume: two}}\n  d3: {{volume: three}}\n  f1: {{volume: far}}\n\
         syncs:\n{syncs}"
    )
}

#[test]
fn lanes_follow_the_resource_rule() {
    let lanes = |nas: &str, syncs: &str| plan_lanes(&lanes_config(nas, syncs));
    // One writer per drive: two endpoints of volume a share a lane.
    assert_eq!(
        lanes(
            "{host: 10.0.0.42}",
            "  x1: {source: p1, destination: a1}\n  x2: {source: p2, destination: b1}\n  x3: {source: p3, destination: a2}\n"
        ),
        [vec!["x1", "x3"], vec!["x2"]]
    );
    // One sync at a time per host by default, whatever its volumes; other
    // hosts are other lanes; pulls hold the host too.
    assert_eq!(
        lanes(
            "{host: 10.0.0.42}",
            "  u1: {source: p1, destination: d1}\n  u2: {source: p2, destination: d2}\n  \
             u3: {source: p3, destination: f1}\n  back: {source: d3, destination: a1}\n"
        ),
        [vec!["u1", "u2", "back"], vec!["u3"]]
    );
    // max-parallel-syncs: 2 folds the host's lanes into two.
    assert_eq!(
        lanes(
            "{host: 10.0.0.42, max-parallel-syncs: 2}",
            "  u1: {source: p1, destination: d1}\n  u2: {source: p2, destination: d2}\n  u3: {source: p3, destination: d3}\n"
        ),
        [vec!["u1", "u3"], vec!["u2"]]
    );
    // Syncs with hooks share a lane (the user's commands may touch anything).
    assert_eq!(
        lanes(
            "{host: 10.0.0.42}",
            "  x1: {source: p1, destination: a1, hooks: {before: [[\"true\"]]}}\n  x2: {source: p2, destination: b1, hooks: {after: [[\"true\"]]}}\n  \
             x3: {source: p3, destination: d1}\n"
        ),
        [vec!["x1", "x2"], vec!["x3"]]
    );
}

#[test]
fn a_rotational_source_disk_is_read_by_one_sync_at_a_time() {
    if !require(&[
        Component::Root,
        Component::Rsync,
        Component::Loop,
        Component::Ext4,
    ]) {
        return;
    }
    let readers = |t: &[Transfer]| -> Vec<Transfer> {
        t.iter()
            .filter(|x| !x.dest.contains("/b/b2"))
            .cloned()
            .collect()
    };
    for backend in backends() {
        let what = format!("{backend:?}");
        // Not rotational: its four readers overlap (one per destination drive).
        let w = World::with_source(Some(false), 4096, [SLOW; 4], Some(200));
        let out = w.run(backend, &[]);
        assert!(out.status.success(), "{what}: {}", text(&out.stderr));
        let r = readers(&w.transfers());
        assert!(
            r.iter().enumerate().any(|(i, x)| r[i + 1..]
                .iter()
                .any(|y| x.start < y.end && y.start < x.end)),
            "{what}: nothing read the source at once: {r:#?}"
        );
        drop(w);
        // Rotational: one sync at a time reads it.
        let w = World::with_source(Some(true), 4096, [SLOW; 4], Some(200));
        let out = w.run(backend, &[]);
        assert!(out.status.success(), "{what}: {}", text(&out.stderr));
        let mut r = readers(&w.transfers());
        assert_eq!(r.len(), 4, "{what}: {r:#?}");
        r.sort_by_key(|x| x.start);
        for pair in r.windows(2) {
            assert!(
                pair[0].end <= pair[1].start,
                "{what}: two syncs read the disk at once: {r:#?}"
            );
        }
    }
}

#[test]
fn a_host_takes_one_sync_at_a_time_unless_it_allows_more() {
    let mut needs = testbed::remote::RemoteHost::COMPONENTS.to_vec();
    needs.push(Component::Root);
    if !require(&needs) {
        return;
    }
    let remote = testbed::remote::RemoteHost::start();
    let ep = remote.endpoint();
    let dir = testbed::temp_dir("jobs-host");
    let root = dir.path();
    let src = root.join("src");
    std::fs::create_dir_all(&src).unwrap();
    testbed::check(
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
            .arg(&src),
    );
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(src.clone());
    std::fs::write(src.join(".nbkp-vol"), "").unwrap();
    for i in 1..=2 {
        std::fs::create_dir_all(src.join(format!("p{i}"))).unwrap();
        std::fs::write(src.join(format!("p{i}/.nbkp-src")), "").unwrap();
        let mut x: u64 = 7 + i;
        let data: Vec<u8> = (0..SLOW)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        std::fs::write(src.join(format!("p{i}/f")), data).unwrap();
    }
    let vol = |n: &str| remote.root().join(n);
    // The wrapper: when each rsync to the host starts and ends.
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = root.join("transfers.log");
    let real = testbed::which("rsync").unwrap();
    std::fs::write(
        bin.join("rsync"),
        format!(
            "#!/bin/sh\nfor last; do :; done\ncase $last in *:*) ;; *) exec {real} \"$@\" ;; esac\n\
             echo \"start $last $(date +%s%N)\" >>{log}\n{real} \"$@\"\nrc=$?\n\
             echo \"end $last $(date +%s%N)\" >>{log}\nexit $rc\n",
            real = real.display(),
            log = log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("rsync"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for allowed in [1, 2] {
        let config = format!(
            "ssh-endpoints:\n  nas: {{host: {}, port: {}, user: root, key: {}, max-parallel-syncs: {allowed}, \
             connection-options: {{known-hosts-file: {}}}}}\n\
             volumes:\n  src: {{type: local, path: {}}}\n  one: {{type: remote, ssh-endpoint: nas, path: {}}}\n  \
             two: {{type: remote, ssh-endpoint: nas, path: {}}}\n\
             sync-endpoints:\n  p1: {{volume: src, subdir: p1}}\n  p2: {{volume: src, subdir: p2}}\n  \
             d1: {{volume: one}}\n  d2: {{volume: two}}\n\
             syncs:\n  u1: {{source: p1, destination: d1, rsync-options: {{extra-options: [--bwlimit=200]}}}}\n  \
             u2: {{source: p2, destination: d2, rsync-options: {{extra-options: [--bwlimit=200]}}}}\n",
            ep.ip(),
            ep.port(),
            remote.key_path().display(),
            remote.known_hosts().display(),
            src.display(),
            vol("one").display(),
            vol("two").display()
        );
        let cfg = root.join("config.yaml");
        std::fs::write(&cfg, config).unwrap();
        let script = root.join("script.sh");
        testbed::write_script(&cfg, &script);
        for backend in [Backend::Run, Backend::Script(Shell::Dash)] {
            let what = format!("{backend:?}, max-parallel-syncs {allowed}");
            remote.run_remote_ok(&format!(
                "rm -rf {0} {1} && mkdir -p {0} {1} && touch {0}/.nbkp-vol {0}/.nbkp-dst {1}/.nbkp-vol {1}/.nbkp-dst",
                testbed::shq(vol("one")),
                testbed::shq(vol("two"))
            ));
            let _ = std::fs::remove_file(&log);
            let before = remote.login_count();
            let mut c = match backend {
                Backend::Run => {
                    let mut c = Command::new(env!("CARGO_BIN_EXE_nbkp"));
                    c.arg("run").arg("-c").arg(&cfg);
                    c
                }
                Backend::Script(shell) => {
                    let mut c = shell.command();
                    c.arg(&script);
                    c
                }
            };
            c.env("PATH", &path);
            let out = testbed::run_timeout(&mut c, Duration::from_secs(60)).unwrap();
            assert!(out.status.success(), "{what}: {}", text(&out.stderr));
            let lines = std::fs::read_to_string(&log).unwrap_or_default();
            let at = |kind: &str, part: &str| -> u128 {
                lines
                    .lines()
                    .find(|l| l.starts_with(kind) && l.contains(part))
                    .and_then(|l| l.rsplit(' ').next())
                    .unwrap_or_else(|| {
                        panic!("{what}: no {kind} {part} in {lines}: {}", text(&out.stderr))
                    })
                    .parse()
                    .unwrap()
            };
            let (s1, e1, s2, e2) = (
                at("start", "/one"),
                at("end", "/one"),
                at("start", "/two"),
                at("end", "/two"),
            );
            let overlap = s1 < e2 && s2 < e1;
            assert_eq!(overlap, allowed > 1, "{what}: {lines}");
            // Still one SSH connection per host per run.
            std::thread::sleep(Duration::from_millis(300));
            assert_eq!(remote.login_count() - before, 1, "{what}: SSH logins");
            for (i, v) in [(1, "one"), (2, "two")] {
                let got = remote.run_remote_ok(&format!("cksum < {}/f", testbed::shq(vol(v))));
                let want = testbed::check(
                    Command::new("sh")
                        .arg("-c")
                        .arg(format!("cksum < {}/p{i}/f", testbed::shq(&src))),
                );
                assert_eq!(got, want, "{what}: {v}");
            }
        }
    }
}

/// `nbkp run -p overall` with its stderr on a terminal (a pseudo-terminal
/// 120 columns wide): everything it drew there, one entry per line drawn.
fn run_on_a_terminal(w: &World, flags: &[&str]) -> (bool, Vec<String>) {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    let (mut master, mut slave) = (0, 0);
    let size = libc::winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two fds we then own; the other pointers may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty");
    // SAFETY: both fds are open and owned here alone.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let mut c = w.command(Backend::Run, flags);
    c.env("NO_COLOR", "1").stderr(slave);
    let mut child = c.spawn().expect("nbkp run");
    // The child holds the terminal's only other end: reading ends (EIO)
    // when it exits.
    drop(c);
    let mut drawn = Vec::new();
    let _ = std::fs::File::from(master).read_to_end(&mut drawn);
    let ok = child.wait().expect("wait").success();
    // A control sequence (CSI: ESC [ parameters final-byte; cursor moves
    // between the lines) ends a line too.
    let mut plain = Vec::new();
    let mut bytes = drawn.into_iter();
    while let Some(b) = bytes.next() {
        if b == 0x1b {
            if bytes.next() == Some(b'[') {
                for b in bytes.by_ref() {
                    if (0x40..=0x7e).contains(&b) {
                        break;
                    }
                }
            }
            plain.push(b'\n');
            continue;
        }
        plain.push(b);
    }
    let lines = String::from_utf8_lossy(&plain)
        .split(['\r', '\n'])
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    (ok, lines)
}

/// The percentages sync `slug`'s lines show in `line` (a terminal line
/// may hold several of the bars, each as wide as the terminal), e.g.
/// `⠁ [2/5] s2 ===>   37%` → 37.
fn shown_percents(line: &str, slug: &str) -> Vec<u8> {
    line.split(&format!("] {slug} "))
        .skip(1)
        .filter_map(|rest| {
            let digits: String = rest
                .trim_start_matches(['=', '>', ' '])
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            rest.contains(&format!("{digits}%"))
                .then(|| digits.parse().ok())?
        })
        .collect()
}

#[test]
fn on_a_terminal_each_running_sync_shows_its_progress_above_an_overall_line() {
    if !ready() {
        return;
    }
    let w = World::new(4096, [SLOW; 4], Some(200));
    let (ok, lines) = run_on_a_terminal(&w, &["-p", "overall"]);
    assert!(ok, "{lines:#?}");
    // Several syncs at once (s2 waits for s1's drive, s5 for s1), each
    // with its own percentage under way. The overall line is checked in
    // states that last a transfer's ~2 s (drawing skips shorter ones).
    for slug in ["s1", "s3", "s4", "s5"] {
        assert!(
            lines
                .iter()
                .any(|l| shown_percents(l, slug).iter().any(|p| (1..100).contains(p))),
            "no progress shown for {slug}: {lines:#?}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("syncs: 0/5 ended, 3 running")),
        "no overall line with three syncs running: {lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("syncs: 3/5 ended, 2 running")),
        "no overall line for the two syncs after s1: {lines:#?}"
    );
}

#[test]
fn syncs_run_at_once_report_what_each_transferred_in_the_metrics() {
    if !ready() {
        return;
    }
    let w = World::new(4096, [100_000; 4], None);
    let metrics = w.root().join("nbkp.prom");
    let mut config = std::fs::read_to_string(w.config()).unwrap();
    config.push_str(&format!(
        "monitoring:\n  metrics-file: {}\n",
        metrics.display()
    ));
    std::fs::write(w.config(), config).unwrap();
    let out = w.run(Backend::Run, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = w.transfers();
    assert!(
        one_writer_per_drive(&t, "run"),
        "nothing ran at once: {t:#?}"
    );
    let prom = std::fs::read_to_string(&metrics).unwrap();
    for slug in ["s1", "s2", "s3", "s4", "s5"] {
        let sample = format!("nbkp_sync_last_run_transferred_bytes{{sync=\"{slug}\"}} ");
        let sent: f64 = prom
            .lines()
            .find_map(|l| l.strip_prefix(&sample))
            .unwrap_or_else(|| panic!("no {sample} in {prom}"))
            .trim()
            .parse()
            .unwrap();
        // rsync's own totals: the 100 kB file and a little protocol.
        assert!((100_000.0..120_000.0).contains(&sent), "{slug}: {sent}");
    }
}

#[test]
fn syncs_run_at_once_show_rsyncs_summary_named_and_no_progress_redraws_off_a_terminal() {
    if !ready() {
        return;
    }
    let w = World::new(4096, [16 * 1024; 4], None);
    // A sync with hooks runs its rsync through another function.
    let config = std::fs::read_to_string(w.config()).unwrap().replace(
        "s3: {source: p3, destination: b1}",
        "s3: {source: p3, destination: b1, hooks: {after: [[/bin/true]]}}",
    );
    std::fs::write(w.config(), config).unwrap();
    let out = w.nbkp(&["sh", "-c"], &[]);
    assert!(out.status.success(), "sh: {}", text(&out.stderr));
    std::fs::write(w.root().join("script.sh"), &out.stdout).unwrap();
    for backend in backends() {
        for d in ["a/a2", "b/b1", "c/c1", "b/b2"] {
            let _ = std::fs::remove_file(w.root().join(d).join("f"));
        }
        let what = format!("{backend:?}");
        let out = w.run(backend, &["-p", "overall"]);
        assert!(out.status.success(), "{what}: {}", text(&out.stderr));
        let log = text(&out.stderr);
        // --stats: each sync's totals, its lines named, whole.
        for s in ["s1", "s2", "s3", "s4", "s5"] {
            assert!(
                log.lines()
                    .any(|l| l.starts_with(&format!("{s}: Number of files:"))),
                "{what}: no summary for {s}: {log}"
            );
        }
        for line in log.lines() {
            assert!(
                line.starts_with("[nbkp]") || line.starts_with('s') && line.contains(": "),
                "{what}: an unnamed line: {line:?}\n{log}"
            );
            // A progress redraw (`16.38K 100% ...`) is no line of a log.
            assert!(
                !line.contains('\r') && !line.contains("to-chk="),
                "{what}: {line:?}"
            );
        }
    }
}

#[test]
fn the_script_keeps_the_same_rsync_lines_as_run() {
    if testbed::which("sh").is_none() {
        return;
    }
    // The script's nbkp_kept, from a script with lanes (`nbkp sh`).
    let dir = testbed::temp_dir("kept");
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "volumes:\n  a: {type: local, path: /a}\n  b: {type: local, path: /b}\n  c: {type: local, path: /c}\n\
         sync-endpoints:\n  a: {volume: a}\n  b: {volume: b}\n  c: {volume: c}\n\
         syncs:\n  ab: {source: a, destination: b}\n  ac: {source: a, destination: c}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nbkp"))
        .args(["sh", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let script = text(&out.stdout);
    let start = script
        .find("nbkp_kept() {")
        .expect("nbkp_kept in a script with lanes");
    let body = &script[start..];
    let function = &body[..body.find("\n}\n").unwrap() + 3];
    // Generated outputs: rsync's kinds of lines, joined by LF, CR (its
    // redraws) or CRLF, blank lines, tabs and spaces, % in other words.
    let pieces = [
        "rsync: [receiver] write failed on \"/a/f\": No space left on device (28)",
        "         16.38K 100%   15.62MB/s    0:00:00 (xfr#1, to-chk=0/2)",
        "     1,048,576  50%  100.00MB/s  0:00:01",
        "Number of files: 2 (reg: 1, dir: 1)",
        "disk 95% full",
        "x 95%",
        "\tleading tab and 12% in the second word",
        "   ",
        "",
        "a\\b $HOME `x` * ?",
        "100%",
    ];
    let seps = ["\n", "\r", "\r\n", "\n\n"];
    let mut cases = Vec::new();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..300 {
        let mut output = String::new();
        for _ in 0..(x % 6) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            output.push_str(pieces[(x % pieces.len() as u64) as usize]);
            output.push_str(seps[((x >> 8) % seps.len() as u64) as usize]);
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x % 3 == 0 {
            output.pop(); // no newline at the end
        }
        cases.push(output);
    }
    let files = dir.path().join("cases");
    std::fs::create_dir_all(&files).unwrap();
    for (i, case) in cases.iter().enumerate() {
        std::fs::write(files.join(i.to_string()), case).unwrap();
    }
    let driver = format!(
        "{function}for f in \"$1\"/*; do NBKP_OUT=$f NBKP_CUR=${{f##*/}}; nbkp_kept; done\n"
    );
    let shells: Vec<Shell> = Shell::ALL
        .iter()
        .copied()
        .filter(|s| s.is_available())
        .collect();
    for shell in shells {
        let out = shell
            .command()
            .arg("-c")
            .arg(&driver)
            .arg("kept")
            .arg(&files)
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let mut got: Vec<String> = text(&out.stderr).lines().map(String::from).collect();
        got.sort();
        let mut want: Vec<String> = Vec::new();
        for (i, case) in cases.iter().enumerate() {
            want.extend(nbkp::kept_lines(case).map(|l| format!("{i}: {l}")));
        }
        want.sort();
        assert_eq!(got, want, "{shell}");
        // Shown once: the kept output is emptied.
        assert!(
            std::fs::read(files.join("0")).unwrap().is_empty(),
            "{shell}"
        );
        for (i, case) in cases.iter().enumerate() {
            std::fs::write(files.join(i.to_string()), case).unwrap();
        }
    }
}
