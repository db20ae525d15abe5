//! `cargo bench --bench figures` (as root): speed and size figures.
//!
//! 1. `nbkp sh`: compile time for a 1000-sync config (target ≤ 100 ms) and
//!    the script's shape: lines for an empty config (≤ 150), one local sync
//!    (≤ 250), each further sync (≤ 30), the widest line (≤ 160).
//! 2. 20 local hard-link syncs of 200 files: `nbkp run` and the script
//!    against bare rsync doing the same (target ≤ 1.05×).
//! 3. Three local → remote hard-link syncs of 200 files at 50 ms round-trip
//!    time: the script and `nbkp run` against bare rsync over one
//!    multiplexed SSH connection (target ≤ 1.10×, 1 SSH login).
//! 4. `nbkp` start-up time and peak memory (targets ≤ 5 ms, ≤ 15 MiB).
//! 5. Away from home (`absent`): three home hosts that do not answer (two
//!    by address, one by a name whose DNS server does not answer, inside
//!    `testbed::absent`'s namespace) and a local sync, default settings:
//!    `nbkp run`, the script under dash and `nbkp preflight check` (target
//!    ≤ 12 s), against the cost of asking the hosts one after another,
//!    measured as the sum of the same run with each host alone.
//!
//! 6. Syncs at once (`jobs`, as root): five local syncs held to about 2 s
//!    each by `--bwlimit`, two to one drive, two to two others, one chained
//!    after the first (tmpfs drives), then three local → remote syncs to
//!    three hosts: `--jobs 1` against the default, for `nbkp run` and the
//!    script (target default ≤ 0.55× `--jobs 1`).
//!
//! Prints figures; asserts nothing about speed.
//! `NBKP_BENCH=compile,local,remote,absent,jobs` picks some of them (default: all).

#[path = "../tests/testbed/mod.rs"]
mod testbed;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use testbed::remote::RemoteHost;
use testbed::{check, require, shq, Component};

fn nbkp() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nbkp"))
}

/// Runs a command to completion with no polling of our own (the figures
/// must not include a harness's wake-up delays); panics if it fails.
fn quiet(cmd: &mut Command) {
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{:?} failed:\n{}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn compile_1000(dir: &Path) {
    let mut y = String::from("ssh-endpoints:\n  nas: {host: nas.lan, user: backup}\nvolumes:\n  laptop: {type: local, path: /home/me}\n  usb: {type: local, path: /media/usb}\n  nas: {type: remote, ssh-endpoint: nas, path: /srv/backups}\nsync-endpoints:\n");
    for i in 0..1000 {
        let _ = writeln!(y, "  src-{i}: {{volume: laptop, subdir: data/{i}}}");
        let (vol, mode) = match i % 3 {
            0 => (
                "usb",
                ", hard-link-snapshots: {enabled: true, max-snapshots: 10}",
            ),
            1 => (
                "nas",
                ", btrfs-snapshots: {enabled: true, max-snapshots: 30}",
            ),
            _ => ("nas", ""),
        };
        let _ = writeln!(y, "  dst-{i}: {{volume: {vol}, subdir: backup/{i}{mode}}}");
    }
    y.push_str("syncs:\n");
    for i in 0..1000 {
        let _ = writeln!(
            y,
            "  sync-{i}: {{source: src-{i}, destination: dst-{i}, filters: [\"- *.tmp\"]}}"
        );
    }
    let cfg = dir.join("big.yaml");
    std::fs::write(&cfg, y).unwrap();
    let mut times = Vec::new();
    let mut lines = 0;
    for _ in 0..7 {
        let t = Instant::now();
        let out = nbkp().args(["sh", "-c"]).arg(&cfg).output().unwrap();
        times.push(t.elapsed());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        lines = out.stdout.iter().filter(|b| **b == b'\n').count();
    }
    let script_of = |name: &str, yaml: &str| {
        let path = dir.join(name);
        std::fs::write(&path, yaml).unwrap();
        let out = nbkp().args(["sh", "-c"]).arg(&path).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let count = |text: &str| text.lines().count();
    let widest = |text: &str| text.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    let empty = script_of("empty.yaml", "{}\n");
    let one = script_of("one.yaml", "volumes:\n  a: {type: local, path: /a}\n  b: {type: local, path: /b}\nsync-endpoints:\n  ea: {volume: a}\n  eb: {volume: b}\nsyncs:\n  s: {source: ea, destination: eb}\n");
    let two = script_of("two.yaml", "volumes:\n  a: {type: local, path: /a}\n  b: {type: local, path: /b}\nsync-endpoints:\n  ea: {volume: a, subdir: x}\n  eb: {volume: b, subdir: x}\n  ec: {volume: a, subdir: c}\n  ed: {volume: b, subdir: d}\nsyncs:\n  s: {source: ea, destination: eb}\n  t: {source: ec, destination: ed}\n");
    let snap = script_of("snap.yaml", "volumes:\n  a: {type: local, path: /a}\n  b: {type: local, path: /b}\nsync-endpoints:\n  ea: {volume: a}\n  eb: {volume: b, hard-link-snapshots: {enabled: true, max-snapshots: 10}}\nsyncs:\n  s: {source: ea, destination: eb}\n");
    let fixed = count(&one);
    println!(
        "compile 1000 syncs: median {:.1} ms (target ≤ 100 ms)",
        median(times).as_secs_f64() * 1000.0
    );
    println!(
        "script, empty config: {} lines (target ≤ 150), widest line {}",
        count(&empty),
        widest(&empty)
    );
    println!(
        "script, one local mirror sync: {} lines (target ≤ 250), widest line {}; one local hard-link sync with retention: {} lines",
        count(&one),
        widest(&one),
        count(&snap)
    );
    println!(
        "script, a second local sync: +{} lines; 1000 mixed syncs: {lines} lines, {:.1} lines per sync beyond a one-sync script (target ≤ 30)",
        count(&two) - fixed,
        (lines - fixed) as f64 / 999.0,
    );
}

fn remote_runs(dir: &Path) {
    let remote = RemoteHost::builder().rtt(Duration::from_millis(50)).start();
    let ep = remote.endpoint();
    // Three sources of 200 files each.
    for s in 0..3 {
        let src = dir.join(format!("src{s}"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join(".nbkp-vol"), "").unwrap();
        std::fs::write(src.join(".nbkp-src"), "").unwrap();
        for f in 0..200 {
            std::fs::write(
                src.join(format!("file-{f}.txt")),
                format!("content {s} {f}\n").repeat(20),
            )
            .unwrap();
        }
    }
    let root = remote.root().to_path_buf();
    let prepare = |base: &str| {
        let mut cmd = String::new();
        for s in 0..3 {
            let d = root.join(base).join(format!("d{s}"));
            let _ = write!(
                cmd,
                "mkdir -p {0}/snapshots && touch {0}/.nbkp-dst && ln -sfn /dev/null {0}/latest && ",
                shq(&d)
            );
        }
        let _ = write!(cmd, "touch {}/.nbkp-vol", shq(root.join(base)));
        remote.run_remote_ok(&cmd);
    };
    prepare("nbkp");
    prepare("bare");

    let mut y = format!(
        "ssh-endpoints:\n  nas:\n    host: {}\n    port: {}\n    user: root\n    key: {}\n    connection-options: {{known-hosts-file: {}}}\nvolumes:\n",
        ep.ip(),
        ep.port(),
        remote.key_path().display(),
        remote.known_hosts().display()
    );
    for s in 0..3 {
        let _ = writeln!(
            y,
            "  src{s}: {{type: local, path: {}}}",
            dir.join(format!("src{s}")).display()
        );
    }
    let _ = writeln!(
        y,
        "  nas: {{type: remote, ssh-endpoint: nas, path: {}}}",
        root.join("nbkp").display()
    );
    y.push_str("sync-endpoints:\n");
    for s in 0..3 {
        // Room for every round's snapshot: bare rsync prunes nothing, so
        // neither does nbkp here (pruning is measured by the tests, not timed).
        let _ = writeln!(y, "  s{s}: {{volume: src{s}}}\n  d{s}: {{volume: nas, subdir: d{s}, hard-link-snapshots: {{enabled: true, max-snapshots: 50}}}}");
    }
    y.push_str("syncs:\n");
    for s in 0..3 {
        let _ = writeln!(y, "  sync{s}: {{source: s{s}, destination: d{s}}}");
    }
    let cfg = dir.join("remote.yaml");
    std::fs::write(&cfg, y).unwrap();
    let script = dir.join("backup.sh");
    check(nbkp().args(["sh", "-c"]).arg(&cfg).arg("-o").arg(&script));

    let ssh_opts = format!(
        "-o ControlPath={ctl} -o ControlMaster=auto -o ControlPersist=60 -o BatchMode=yes -o UserKnownHostsFile={kh} -i {key} -p {port}",
        ctl = dir.join("ctl").display(),
        kh = remote.known_hosts().display(),
        key = remote.key_path().display(),
        port = ep.port()
    );
    let bare = |round: usize| {
        let t = Instant::now();
        for s in 0..3 {
            let snap = format!("2026-01-01T00:00:{round:02}.000Z");
            let link = if round > 0 {
                format!("--link-dest=../2026-01-01T00:00:{:02}.000Z", round - 1)
            } else {
                String::new()
            };
            let dest = format!(
                "root@{}:{}/d{s}/snapshots/{snap}/",
                ep.ip(),
                root.join("bare").display()
            );
            let mut c = Command::new("rsync");
            c.args([
                "-a",
                "--delete",
                "--delete-excluded",
                "--partial-dir=.rsync-partial",
                "--safe-links",
                "--filter=H .nbkp-*",
                "--filter=P .nbkp-*",
                "--protect-args",
            ]);
            if !link.is_empty() {
                c.arg(&link);
            }
            c.arg("-e")
                .arg(format!("ssh {ssh_opts}"))
                .arg(format!("{}/", dir.join(format!("src{s}")).display()))
                .arg(dest);
            quiet(&mut c);
        }
        let _ = Command::new("ssh")
            .args(ssh_opts.split(' '))
            .args(["-O", "exit", &format!("root@{}", ep.ip())])
            .output();
        t.elapsed()
    };
    let scripted = || {
        let before = remote.login_count();
        let t = Instant::now();
        quiet(Command::new("sh").arg(&script));
        let took = t.elapsed();
        std::thread::sleep(Duration::from_millis(300));
        (took, remote.login_count() - before)
    };
    let in_process = || {
        let before = remote.login_count();
        let t = Instant::now();
        quiet(nbkp().args(["run", "-c"]).arg(&cfg));
        let took = t.elapsed();
        std::thread::sleep(Duration::from_millis(300));
        (took, remote.login_count() - before)
    };
    let (mut run_ratios, mut sh_ratios) = (Vec::new(), Vec::new());
    for round in 0..REMOTE_ROUNDS {
        // Each round starts with another of the three (see local_runs).
        let (mut b, mut n, mut r) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        let (mut logins, mut run_logins) = (0, 0);
        for k in 0..3 {
            match (round + k) % 3 {
                0 => b = bare(round),
                1 => (n, logins) = scripted(),
                _ => (r, run_logins) = in_process(),
            }
        }
        let what = if round == 0 {
            "first run (copies everything)"
        } else {
            run_ratios.push(r.as_secs_f64() / b.as_secs_f64());
            sh_ratios.push(n.as_secs_f64() / b.as_secs_f64());
            "unchanged rerun"
        };
        println!(
            "3 local→remote hard-link syncs × 200 files at 50 ms RTT, {what}: bare rsync {:.2} s; script {:.2} s ({:.2}×, {logins} SSH login); nbkp run {:.2} s ({:.2}×, {run_logins} SSH login) (targets ≤ 1.10×, 1 login)",
            b.as_secs_f64(),
            n.as_secs_f64(),
            n.as_secs_f64() / b.as_secs_f64(),
            r.as_secs_f64(),
            r.as_secs_f64() / b.as_secs_f64()
        );
    }
    println!(
        "3 local→remote hard-link syncs at 50 ms RTT, median of {} unchanged reruns: script {:.2}×, nbkp run {:.2}× (target ≤ 1.10×)",
        run_ratios.len(),
        median_f(sh_ratios),
        median_f(run_ratios)
    );
}

/// 20 local hard-link syncs of 200 files each, three rounds.
fn local_runs(dir: &Path) {
    let base = dir.join("local");
    let mut y = String::from("volumes:\n");
    let mut ep = String::from("sync-endpoints:\n");
    let mut syncs = String::from("syncs:\n");
    for s in 0..20 {
        let src = base.join(format!("src{s}"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join(".nbkp-vol"), "").unwrap();
        std::fs::write(src.join(".nbkp-src"), "").unwrap();
        for f in 0..200 {
            std::fs::write(
                src.join(format!("file-{f}.txt")),
                format!("{s} {f}\n").repeat(30),
            )
            .unwrap();
        }
        for kind in ["nbkp", "script", "bare"] {
            let d = base.join(format!("{kind}{s}"));
            std::fs::create_dir_all(d.join("snapshots")).unwrap();
            std::fs::write(d.join(".nbkp-vol"), "").unwrap();
            std::fs::write(d.join(".nbkp-dst"), "").unwrap();
            let _ = std::os::unix::fs::symlink("/dev/null", d.join("latest"));
        }
        let _ = writeln!(y, "  src{s}: {{type: local, path: {}}}", src.display());
        // As in remote_runs: no pruning, which bare rsync does not do either.
        let _ = writeln!(ep, "  s{s}: {{volume: src{s}}}\n  d{s}: {{volume: dst{s}, hard-link-snapshots: {{enabled: true, max-snapshots: 50}}}}");
        let _ = writeln!(syncs, "  sync{s}: {{source: s{s}, destination: d{s}}}");
    }
    let config = |kind: &str| {
        let mut c = y.clone();
        for s in 0..20 {
            let _ = writeln!(
                c,
                "  dst{s}: {{type: local, path: {}}}",
                base.join(format!("{kind}{s}")).display()
            );
        }
        let path = dir.join(format!("local-{kind}.yaml"));
        std::fs::write(&path, format!("{c}{ep}{syncs}")).unwrap();
        path
    };
    let run_cfg = config("nbkp");
    let script = dir.join("local.sh");
    check(
        nbkp()
            .args(["sh", "-c"])
            .arg(config("script"))
            .arg("-o")
            .arg(&script),
    );
    let bare_round = |round: usize| {
        let t = Instant::now();
        for s in 0..20 {
            let d = base.join(format!("bare{s}"));
            let snap = format!("2026-01-01T00:00:{round:02}.000Z");
            let mut c = Command::new("rsync");
            c.args([
                "-a",
                "--delete",
                "--delete-excluded",
                "--partial-dir=.rsync-partial",
                "--safe-links",
                "--filter=H .nbkp-*",
                "--filter=P .nbkp-*",
            ]);
            if round > 0 {
                c.arg(format!(
                    "--link-dest=../2026-01-01T00:00:{:02}.000Z",
                    round - 1
                ));
            }
            c.arg(format!("{}/", base.join(format!("src{s}")).display()))
                .arg(format!("{}/snapshots/{snap}/", d.display()));
            quiet(&mut c);
            quiet(
                Command::new("ln")
                    .arg("-sfn")
                    .arg(format!("snapshots/{snap}"))
                    .arg(d.join("latest")),
            );
        }
        t.elapsed()
    };
    let timed = |cmd: &mut Command| {
        let t = Instant::now();
        quiet(cmd);
        t.elapsed()
    };
    let (mut run_ratios, mut sh_ratios) = (Vec::new(), Vec::new());
    // Sums over the reruns: bare, nbkp run, script.
    let mut sums = [Duration::ZERO; 3];
    for round in 0..LOCAL_ROUNDS {
        // Each round starts with another of the three, so that a machine
        // getting slower or faster during a round favours none of them.
        let mut took = [Duration::ZERO; 3];
        for k in 0..3 {
            let which = (round + k) % 3;
            took[which] = match which {
                0 => bare_round(round),
                1 => timed(nbkp().args(["run", "-c"]).arg(&run_cfg)),
                _ => timed(Command::new("sh").arg(&script)),
            };
        }
        let [bare, run, sh] = took;
        let what = if round == 0 {
            "first run"
        } else {
            run_ratios.push(run.as_secs_f64() / bare.as_secs_f64());
            sh_ratios.push(sh.as_secs_f64() / bare.as_secs_f64());
            for (sum, t) in sums.iter_mut().zip(took) {
                *sum += t;
            }
            "unchanged rerun"
        };
        println!(
            "20 local hard-link syncs × 200 files, {what}: bare rsync {:.2} s; nbkp run {:.2} s ({:.2}×); script {:.2} s ({:.2}×) (target ≤ 1.05×)",
            bare.as_secs_f64(),
            run.as_secs_f64(),
            run.as_secs_f64() / bare.as_secs_f64(),
            sh.as_secs_f64(),
            sh.as_secs_f64() / bare.as_secs_f64()
        );
    }
    println!(
        "20 local hard-link syncs, median of {} unchanged reruns: nbkp run {:.2}×, script {:.2}× (target ≤ 1.05×); their total times: nbkp run {:.2}×, script {:.2}×",
        run_ratios.len(),
        median_f(run_ratios),
        median_f(sh_ratios),
        sums[1].as_secs_f64() / sums[0].as_secs_f64(),
        sums[2].as_secs_f64() / sums[0].as_secs_f64()
    );
}

/// Rounds of each comparison: a first run, then unchanged reruns. This
/// machine's timings vary by tens of percent from one run to the next, so
/// the figure to read is the median of the reruns.
const LOCAL_ROUNDS: usize = 31;
const REMOTE_ROUNDS: usize = 10;

fn median_f(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Start-up time (`nbkp --version`, and a one-sync `config show`) and peak
/// memory of `nbkp sh` on the 1000-sync config.
fn startup_and_memory(dir: &Path) {
    let mut times = Vec::new();
    for _ in 0..21 {
        let mut cmd = nbkp();
        cmd.arg("--version").stdout(std::process::Stdio::null());
        let t = Instant::now();
        let status = cmd.status().unwrap();
        times.push(t.elapsed());
        assert!(status.success());
    }
    println!(
        "start-up (nbkp --version): median {:.2} ms (target ≤ 5 ms)",
        median(times).as_secs_f64() * 1000.0
    );
    let rss = |args: &[&str]| -> String {
        let out = Command::new("/usr/bin/time")
            .args(["-f", "%M"])
            .arg(env!("CARGO_BIN_EXE_nbkp"))
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        err.lines().last().unwrap_or("?").trim().to_string()
    };
    let big = dir.join("big.yaml").display().to_string();
    let local = dir.join("local-nbkp.yaml").display().to_string();
    println!(
        "peak RSS: nbkp sh (1000 syncs) {} KiB, nbkp run (20 local syncs) {} KiB (target ≤ 15 MiB = 15360 KiB)",
        rss(&["sh", "-c", &big]),
        rss(&["run", "-c", &local])
    );
}

/// One run inside the namespace: its wall time, and when the local sync's
/// file appeared (polled every 10 ms by a thread, not the command's waiter).
fn away_run(
    away: &testbed::absent::Away,
    how: &str,
    cfg: &Path,
    copied: &Path,
) -> (Duration, Option<Duration>) {
    let _ = std::fs::remove_file(copied);
    let mut cmd = match how {
        "run" => {
            let mut c = away.command(env!("CARGO_BIN_EXE_nbkp"));
            c.arg("run").arg("-c").arg(cfg);
            c
        }
        "preflight" => {
            let mut c = away.command(env!("CARGO_BIN_EXE_nbkp"));
            c.args(["preflight", "check", "-c"]).arg(cfg);
            c
        }
        _ => {
            let script = cfg.with_extension("sh");
            quiet(nbkp().args(["sh", "-c"]).arg(cfg).arg("-o").arg(&script));
            let mut c = away.command("dash");
            c.arg(script);
            c
        }
    };
    let t = Instant::now();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watch = {
        let (done, copied) = (done.clone(), copied.to_path_buf());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                if copied.exists() {
                    return Some(t.elapsed());
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            copied.exists().then(|| t.elapsed())
        })
    };
    quiet(cmd.stdout(std::process::Stdio::null()));
    let wall = t.elapsed();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    (wall, watch.join().unwrap())
}

fn absent_runs(dir: &Path) {
    let away = testbed::absent::Away::start();
    println!("\n5. Away from home: 3 absent hosts (2 by address, 1 by name, silent DNS) + 1 local sync, default connect-timeout 10 s");
    println!("   one host at a time = the sum of the same run with each host alone (what asking them in turn costs)");
    for how in ["run", "script", "preflight"] {
        let case = dir.join(format!("away-{how}"));
        let (cfg, copied) = testbed::absent::config(&case.join("all"), &[0, 1, 2]);
        let (all, local) = away_run(&away, how, &cfg, &copied);
        let mut alone = Vec::new();
        for i in 0..3 {
            let (cfg, copied) = testbed::absent::config(&case.join(format!("h{i}")), &[i]);
            alone.push(away_run(&away, how, &cfg, &copied).0);
        }
        let sum: Duration = alone.iter().sum();
        let each: Vec<String> = alone
            .iter()
            .map(|d| format!("{:.1}", d.as_secs_f64()))
            .collect();
        let local = match (how, local) {
            ("preflight", _) => String::new(),
            (_, Some(d)) => format!(", local sync done after {:.2} s", d.as_secs_f64()),
            (_, None) => ", local sync not done".into(),
        };
        println!(
            "   {how:<9}  all at once {:5.1} s (target <= 12 s){local}; one host at a time {:5.1} s ({} s alone); {:.2}x",
            all.as_secs_f64(),
            sum.as_secs_f64(),
            each.join(" + "),
            all.as_secs_f64() / sum.as_secs_f64()
        );
    }
}

/// Incompressible bytes, so that `--bwlimit` holds.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15 ^ seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Wall time of `nbkp run` and of the script, `--jobs 1` and the default,
/// on `cfg` (after `reset`), in the same run; each the median of `rounds`.
fn jobs_figures(what: &str, cfg: &Path, rounds: usize, reset: &dyn Fn()) {
    let script = cfg.with_extension("sh");
    check(nbkp().args(["sh", "-c"]).arg(cfg).arg("-o").arg(&script));
    let time = |cmd: &mut Command| {
        reset();
        let t = Instant::now();
        quiet(cmd);
        t.elapsed()
    };
    let mut fig: [Vec<Duration>; 4] = Default::default();
    for _ in 0..rounds {
        fig[0].push(time(nbkp().args(["run", "--jobs", "1", "-c"]).arg(cfg)));
        fig[1].push(time(nbkp().args(["run", "-c"]).arg(cfg)));
        fig[2].push(time(Command::new("sh").arg(&script).args(["--jobs", "1"])));
        fig[3].push(time(Command::new("sh").arg(&script)));
    }
    let [r1, rd, s1, sd] = fig.map(median);
    println!(
        "{what}: nbkp run --jobs 1 {:.2} s, default {:.2} s ({:.2}×); script --jobs 1 {:.2} s, default {:.2} s ({:.2}×) (target ≤ 0.55×)",
        r1.as_secs_f64(),
        rd.as_secs_f64(),
        rd.as_secs_f64() / r1.as_secs_f64(),
        s1.as_secs_f64(),
        sd.as_secs_f64(),
        sd.as_secs_f64() / s1.as_secs_f64()
    );
}

fn jobs_runs(dir: &Path) {
    let base = dir.join("jobs");
    let mut mounts = Vec::new();
    for d in ["src", "a", "b", "c"] {
        let m = base.join(d);
        std::fs::create_dir_all(&m).unwrap();
        check(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
                .arg(&m),
        );
        mounts.push(m);
    }
    for i in 1..=4 {
        let p = base.join(format!("src/p{i}"));
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("f"), noise(400 * 1024, i)).unwrap();
    }
    let b = base.display();
    let slow = "rsync-options: {extra-options: [--bwlimit=200]}";
    let cfg = base.join("five.yaml");
    let mut y = format!("volumes:\n  src: {{type: local, path: {b}/src}}\n");
    for v in ["a", "b", "c"] {
        let _ = writeln!(y, "  {v}: {{type: local, path: {b}/{v}}}");
    }
    y.push_str("sync-endpoints:\n");
    for (e, v) in [
        ("p1", "src"),
        ("p2", "src"),
        ("p3", "src"),
        ("p4", "src"),
        ("a1", "a"),
        ("a2", "a"),
        ("b1", "b"),
        ("c1", "c"),
        ("b2", "b"),
    ] {
        let _ = writeln!(y, "  {e}: {{volume: {v}, subdir: {e}}}");
    }
    y.push_str("syncs:\n");
    for (s, from, to) in [
        ("s1", "p1", "a1"),
        ("s2", "p2", "a2"),
        ("s3", "p3", "b1"),
        ("s4", "p4", "c1"),
        ("s5", "a1", "b2"),
    ] {
        let _ = writeln!(y, "  {s}: {{source: {from}, destination: {to}, {slow}}}");
    }
    std::fs::write(&cfg, y).unwrap();
    check(nbkp().args(["init", "-c"]).arg(&cfg));
    let reset = || {
        for d in ["a/a1", "a/a2", "b/b1", "c/c1", "b/b2"] {
            let _ = std::fs::remove_file(base.join(d).join("f"));
        }
    };
    jobs_figures(
        "5 local syncs of ~2 s (2 to drive A, 1 to B, 1 to C, 1 chained A → B)",
        &cfg,
        3,
        &reset,
    );

    // Three hosts, one sync each.
    let hosts: Vec<RemoteHost> = (0..3).map(|_| RemoteHost::builder().start()).collect();
    let mut y = String::from("ssh-endpoints:\n");
    for (i, h) in hosts.iter().enumerate() {
        let ep = h.endpoint();
        let _ = writeln!(
            y,
            "  h{i}: {{host: {}, port: {}, user: root, key: {}, connection-options: {{known-hosts-file: {}}}}}",
            ep.ip(),
            ep.port(),
            h.key_path().display(),
            h.known_hosts().display()
        );
    }
    let _ = writeln!(y, "volumes:\n  src: {{type: local, path: {b}/src}}");
    for (i, h) in hosts.iter().enumerate() {
        let _ = writeln!(
            y,
            "  r{i}: {{type: remote, ssh-endpoint: h{i}, path: {}}}",
            h.root().join("vol").display()
        );
        h.run_remote_ok(&format!(
            "mkdir -p {0}/d && touch {0}/.nbkp-vol {0}/d/.nbkp-dst",
            shq(h.root().join("vol"))
        ));
    }
    y.push_str("sync-endpoints:\n");
    for i in 0..3 {
        let _ = writeln!(
            y,
            "  p{}: {{volume: src, subdir: p{}}}\n  d{i}: {{volume: r{i}, subdir: d}}",
            i + 1,
            i + 1
        );
    }
    y.push_str("syncs:\n");
    for i in 0..3 {
        let _ = writeln!(
            y,
            "  up{i}: {{source: p{}, destination: d{i}, {slow}}}",
            i + 1
        );
    }
    let cfg = base.join("three-hosts.yaml");
    std::fs::write(&cfg, y).unwrap();
    let reset = || {
        for h in &hosts {
            h.run_remote_ok(&format!("rm -f {}/d/f", shq(h.root().join("vol"))));
        }
    };
    jobs_figures("3 local → remote syncs of ~2 s to 3 hosts", &cfg, 3, &reset);
    drop(hosts);
    for m in mounts.iter().rev() {
        let _ = Command::new("umount").arg("-l").arg(m).status();
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = testbed::temp_dir("bench");
    // `nbkp run` records completed syncs: here, not in the machine's state.
    std::env::set_var("XDG_STATE_HOME", dir.path().join("state"));
    // NBKP_BENCH=compile,local,remote picks figures (default: all of them).
    let only = std::env::var("NBKP_BENCH").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only.split(',').any(|w| w == name);
    if wanted("compile") {
        compile_1000(dir.path());
    }
    if wanted("local") && require(&[Component::Rsync]) {
        local_runs(dir.path());
        if wanted("compile") {
            startup_and_memory(dir.path());
        }
    }
    let mut needs = RemoteHost::COMPONENTS.to_vec();
    needs.push(Component::Rsync);
    if wanted("remote") && require(&needs) {
        remote_runs(dir.path());
    }
    if wanted("jobs") && require(&needs) {
        jobs_runs(dir.path());
    }
    let mut needs = testbed::absent::Away::COMPONENTS.to_vec();
    needs.extend([
        Component::Rsync,
        Component::SshClient,
        Component::Shell(testbed::Shell::Dash),
    ]);
    if wanted("absent") && require(&needs) {
        absent_runs(dir.path());
    }
}
