//! Running it automatically (docs/automatic.md): units that start a run
//! when a drive is plugged in (checked by `systemd-analyze verify` and
//! `systemd-escape`, the plist by a plist parser), run conditions and
//! monitoring in both back-ends (`nbkp run` and the script under dash).
//!
//! Real parts: rsync, curl and wget talking to an HTTP server of the test
//! on 127.0.0.1, the metrics file read by Prometheus' own Python parser.
//! What cannot exist here is faked and named so: a power-supply directory
//! (through `NBKP_SYSFS_POWER_SUPPLY`, the test hook), and `nmcli` and
//! `ssh` on PATH (NetworkManager is not running here; the fake ssh only
//! records that a remote host would have been contacted).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
        .unwrap_or(false)
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Skip locally when a program is missing, fail in CI.
fn need(programs: &[&str], package: &str) -> bool {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| which(p).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!("missing {missing:?} -- apt-get install {package} (or run .ci/install-deps)");
    assert!(!in_ci(), "{msg}");
    eprintln!("SKIP {msg}");
    false
}

fn nbkp() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nbkp"))
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn executable(path: &Path, content: &str) {
    write(path, content);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

// ------------------------------------------------------------ on-plug units

/// A config with two drives (one under /media with a space, one
/// mount-managed by UUID) and a local folder.
fn drives_config(dir: &Path) -> PathBuf {
    let config = dir.join("config.yaml");
    write(
        &config,
        "volumes:\n  laptop: {type: local, path: /home/me}\n  usb: {type: local, path: /media/my usb}\n\
         \x20 vault:\n    type: local\n    path: /mnt/vault\n    mount: {device-uuid: 0b1c2d3e-aaaa-bbbb-cccc-123456789abc}\n\
         sync-endpoints:\n  docs: {volume: laptop}\n  usb-docs: {volume: usb}\n  vault-docs: {volume: vault}\n\
         syncs:\n  docs-to-usb: {source: docs, destination: usb-docs}\n  docs-to-vault: {source: docs, destination: vault-docs}\n",
    );
    config
}

fn systemd_escape(args: &[&str]) -> String {
    let out = Command::new("systemd-escape").args(args).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn on_plug_units_are_wanted_by_each_drive_and_pass_systemd_analyze_verify() {
    if !need(&["systemd-analyze", "systemd-escape"], "systemd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = drives_config(dir.path());
    let units = dir.path().join("units");
    let out = nbkp()
        .args([
            "schedule",
            "systemd",
            "--on-plug",
            "--on-ac-power",
            "--not-metered",
        ])
        .args(["--install", "--install-dir"])
        .arg(&units)
        .arg("-c")
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let plug = std::fs::read_to_string(units.join("nbkp-plug.service")).unwrap();
    let service = std::fs::read_to_string(units.join("nbkp.service")).unwrap();
    // The names systemd itself gives the drive's mount and the
    // mount-managed drive's partition.
    let mount = systemd_escape(&["--path", "--suffix=mount", "/media/my usb"]);
    let device = systemd_escape(&[
        "--path",
        "--suffix=device",
        "/dev/disk/by-uuid/0b1c2d3e-aaaa-bbbb-cccc-123456789abc",
    ]);
    assert!(
        plug.contains(&format!("\nWantedBy={mount} {device}\n")),
        "{plug}"
    );
    assert!(
        plug.contains(&format!("\nAfter={mount} {device}\n")),
        "{plug}"
    );
    for unit in [&plug, &service] {
        assert!(unit.contains("\nConditionACPower=true\n"), "{unit}");
        let exec = unit.lines().find(|l| l.starts_with("ExecStart=")).unwrap();
        assert!(
            exec.ends_with(" --on-ac-power --not-metered"),
            "the run checks the conditions too: {exec}"
        );
    }
    let verify = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(units.join("nbkp-plug.service"))
        .arg(units.join("nbkp.service"))
        .arg(units.join("nbkp.timer"))
        .output()
        .unwrap();
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}\n{plug}",
        text(&verify)
    );

    // --volume chooses; without --on-plug there is no plug unit.
    let only = nbkp()
        .args(["schedule", "systemd", "--on-plug", "--volume", "usb", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let only_text = String::from_utf8_lossy(&only.stdout);
    assert!(only.status.success(), "{}", text(&only));
    assert!(
        only_text.contains(&format!("\nWantedBy={mount}\n")),
        "{only_text}"
    );
    let plain = nbkp()
        .args(["schedule", "systemd", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(plain.status.success());
    let plain_text = String::from_utf8_lossy(&plain.stdout);
    assert!(
        !plain_text.contains("nbkp-plug.service ----"),
        "{plain_text}"
    );
    assert!(!plain_text.contains("ConditionACPower"), "{plain_text}");
}

/// A user systemd manager cannot run here: a systemctl on PATH records
/// what it is asked (the mock the name says).
#[test]
fn on_plug_enable_also_enables_the_plug_unit_mock_systemctl() {
    let dir = tempfile::tempdir().unwrap();
    let config = drives_config(dir.path());
    let bin = dir.path().join("fake-bin");
    let called = dir.path().join("systemctl-called");
    executable(
        &bin.join("systemctl"),
        &format!("#!/bin/sh\necho \"$*\" >>'{}'\n", called.display()),
    );
    let out = nbkp()
        .args([
            "schedule",
            "systemd",
            "--on-plug",
            "--install",
            "--enable",
            "-c",
        ])
        .arg(&config)
        .env("XDG_CONFIG_HOME", dir.path().join("xdg"))
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(dir
        .path()
        .join("xdg/systemd/user/nbkp-plug.service")
        .is_file());
    assert_eq!(
        std::fs::read_to_string(&called).unwrap(),
        "--user daemon-reload\n--user enable --now nbkp.timer\n--user enable nbkp-plug.service\n"
    );
}

#[test]
fn mount_unit_names_are_the_ones_systemd_escape_gives() {
    if !need(&["systemd-escape"], "systemd") {
        return;
    }
    let paths = [
        "/media/usb",
        "/media/my usb",
        "/run/media/me/Backup-2024",
        "/mnt/a.b/ü",
        "/Volumes/.hidden/x_y:z",
        "/mnt//double/./dot/",
        "/media/a\\b'c\"d$e%f",
    ];
    let mut yaml = String::from("volumes:\n");
    for (i, p) in paths.iter().enumerate() {
        yaml.push_str(&format!(
            "  v{i}: {{type: local, path: '{}'}}\n",
            p.replace('\'', "''")
        ));
    }
    yaml.push_str("  d:\n    type: local\n    path: /mnt/d\n    mount: {device-uuid: 1234abcd-0000-4000-8000-00000000beef}\n");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    write(&config, &yaml);
    let out = nbkp()
        .args(["schedule", "systemd", "--on-plug", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let units = String::from_utf8_lossy(&out.stdout);
    // The plug unit's header names each volume's unit: `#   v0: media-usb.mount`.
    let unit_of = |volume: &str| {
        let prefix = format!("#   {volume}: ");
        units
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no unit for {volume}:\n{units}"))
            .to_string()
    };
    for (i, p) in paths.iter().enumerate() {
        assert_eq!(
            unit_of(&format!("v{i}")),
            systemd_escape(&["--path", "--suffix=mount", p]),
            "{p:?}"
        );
    }
    assert_eq!(
        unit_of("d"),
        systemd_escape(&[
            "--path",
            "--suffix=device",
            "/dev/disk/by-uuid/1234abcd-0000-4000-8000-00000000beef"
        ])
    );
}

#[test]
fn launchd_starts_on_mount_only_with_on_plug_and_cron_refuses_it() {
    if !need(&["python3"], "python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = drives_config(dir.path());
    let plist = |extra: &[&str]| -> serde_json::Value {
        let out = nbkp()
            .args(["schedule", "launchd"])
            .args(extra)
            .arg("-c")
            .arg(&config)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let file = dir.path().join("nbkp.plist");
        std::fs::write(&file, &out.stdout).unwrap();
        let parsed = Command::new("python3")
            .arg("-c")
            .arg(
                "import json, plistlib, sys\n\
                 with open(sys.argv[1], 'rb') as f: print(json.dumps(plistlib.load(f)))",
            )
            .arg(&file)
            .output()
            .unwrap();
        assert!(parsed.status.success(), "{}", text(&parsed));
        serde_json::from_slice(&parsed.stdout).unwrap()
    };
    let on_plug = plist(&["--on-plug", "--on-ac-power"]);
    assert_eq!(on_plug["StartOnMount"], true);
    let args = on_plug["ProgramArguments"].as_array().unwrap();
    assert_eq!(args.last().unwrap(), "--on-ac-power");
    assert_eq!(plist(&[]).get("StartOnMount"), None);

    let refused = |args: &[&str], says: &str| {
        let out = nbkp().args(args).arg("-c").arg(&config).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{}",
            text(&out)
        );
    };
    refused(&["schedule", "cron", "--on-plug"], "cron cannot start");
    refused(
        &["schedule", "launchd", "--on-plug", "--volume", "usb"],
        "any mount",
    );
    refused(
        &["schedule", "systemd", "--on-plug", "--volume", "laptop"],
        "removable volumes: usb, vault",
    );
}

// ----------------------------------------------------------- two back-ends

#[derive(Clone, Copy, Debug)]
enum Backend {
    Run,
    Script,
}

const BACKENDS: [Backend; 2] = [Backend::Run, Backend::Script];

/// Runs the config once with `args`, through `nbkp run` or a script
/// written by `nbkp sh` and run by dash, with `env` and PATH first `path`.
fn run(
    backend: Backend,
    config: &Path,
    args: &[&str],
    env: &[(&str, &Path)],
    path_first: Option<&Path>,
) -> Output {
    let path = match path_first {
        Some(p) => format!("{}:{}", p.display(), std::env::var("PATH").unwrap()),
        None => std::env::var("PATH").unwrap(),
    };
    let state = config.with_file_name("state");
    let mut cmd = match backend {
        Backend::Run => {
            let mut c = nbkp();
            c.arg("run").arg("-c").arg(config);
            c
        }
        Backend::Script => {
            let script = config.with_file_name("backup.sh");
            let out = nbkp()
                .arg("sh")
                .arg("-c")
                .arg(config)
                .arg("-o")
                .arg(&script)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", text(&out));
            let mut c = Command::new("dash");
            c.arg(&script);
            c
        }
    };
    cmd.args(args)
        .env("PATH", path)
        .env("XDG_STATE_HOME", &state)
        .env_remove("NBKP_SYSFS_POWER_SUPPLY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// A laptop folder and a drive, prepared; `extra` is appended to the config.
fn local_config(dir: &Path, rsync_extra: &str, extra: &str) -> PathBuf {
    let src = dir.join("laptop");
    let dst = dir.join("drive");
    write(&src.join("docs/letter.txt"), "dear drive");
    write(&src.join(".nbkp-vol"), "");
    write(&src.join("docs/.nbkp-src"), "");
    write(&dst.join(".nbkp-vol"), "");
    write(&dst.join("docs/.nbkp-dst"), "");
    let config = dir.join("config.yaml");
    write(
        &config,
        &format!(
            "volumes:\n  laptop: {{type: local, path: {src}}}\n  drive: {{type: local, path: {dst}}}\n\
             sync-endpoints:\n  docs: {{volume: laptop, subdir: docs}}\n  drive-docs: {{volume: drive, subdir: docs}}\n\
             syncs:\n  docs-to-drive:\n    source: docs\n    destination: drive-docs\n{rsync_extra}{extra}",
            src = src.display(),
            dst = dst.display(),
        ),
    );
    config
}

fn copied(dir: &Path) -> bool {
    dir.join("drive/docs/letter.txt").is_file()
}

/// A fake /sys/class/power_supply: an adapter and a battery.
fn fake_power_supply(dir: &Path, ac_online: bool) -> PathBuf {
    let ps = dir.join(if ac_online { "ps-ac" } else { "ps-battery" });
    write(&ps.join("AC/type"), "Mains\n");
    write(&ps.join("AC/online"), if ac_online { "1\n" } else { "0\n" });
    write(&ps.join("BAT0/type"), "Battery\n");
    write(
        &ps.join("BAT0/status"),
        if ac_online {
            "Charging\n"
        } else {
            "Discharging\n"
        },
    );
    ps
}

#[test]
fn on_ac_power_skips_the_run_on_battery_in_both_backends_with_a_fake_sysfs() {
    if !need(&["rsync", "dash"], "rsync dash") {
        return;
    }
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let config = local_config(dir.path(), "", "");
        let battery = fake_power_supply(dir.path(), false);
        let ac = fake_power_supply(dir.path(), true);
        let hook = "NBKP_SYSFS_POWER_SUPPLY";

        let out = run(
            backend,
            &config,
            &["--on-ac-power"],
            &[(hook, &battery)],
            None,
        );
        assert_eq!(out.status.code(), Some(0), "{backend:?} {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("on battery power: nothing run"),
            "{backend:?} {}",
            text(&out)
        );
        assert!(!copied(dir.path()), "{backend:?}: ran on battery");

        // Without the option, battery does not matter.
        let out = run(backend, &config, &[], &[(hook, &battery)], None);
        assert_eq!(out.status.code(), Some(0), "{backend:?} {}", text(&out));
        assert!(copied(dir.path()), "{backend:?} {}", text(&out));
        std::fs::remove_file(dir.path().join("drive/docs/letter.txt")).unwrap();

        // On AC, and on a machine listing no supply at all, it runs.
        let none = dir.path().join("ps-none");
        std::fs::create_dir_all(&none).unwrap();
        for supplies in [&ac, &none] {
            let out = run(
                backend,
                &config,
                &["--on-ac-power"],
                &[(hook, supplies)],
                None,
            );
            assert_eq!(out.status.code(), Some(0), "{backend:?} {}", text(&out));
            assert!(
                copied(dir.path()),
                "{backend:?} {supplies:?} {}",
                text(&out)
            );
            std::fs::remove_file(dir.path().join("drive/docs/letter.txt")).unwrap();
        }
    }
}

#[test]
fn not_metered_skips_remote_syncs_in_both_backends_with_a_fake_nmcli() {
    if !need(&["rsync", "dash"], "rsync dash") {
        return;
    }
    for backend in BACKENDS {
        for metered in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            // A remote sync to a loopback host; the fake ssh below only
            // records that it was contacted (and fails, as if unreachable).
            let config = local_config(
                dir.path(),
                "",
                "  docs-to-nas: {source: docs, destination: nas-docs}\n",
            );
            let mut yaml = std::fs::read_to_string(&config).unwrap();
            yaml = yaml.replace(
                "volumes:\n",
                "ssh-endpoints:\n  nas: {host: 127.0.0.1, port: 1}\nvolumes:\n  nas: {type: remote, ssh-endpoint: nas, path: /srv}\n",
            );
            yaml = yaml.replace(
                "sync-endpoints:\n",
                "sync-endpoints:\n  nas-docs: {volume: nas}\n",
            );
            write(&config, &yaml);
            let bin = dir.path().join("fake-bin");
            let log = dir.path().join("calls.log");
            executable(
                &bin.join("nmcli"),
                &format!(
                    "#!/bin/sh\necho \"nmcli $*\" >>'{log}'\nprintf 'GENERAL.METERED:no\\nGENERAL.METERED:{answer}\\nGENERAL.METERED:unknown\\n'\n",
                    log = log.display(),
                    answer = if metered { "yes (guessed)" } else { "no (guessed)" },
                ),
            );
            executable(
                &bin.join("ssh"),
                &format!(
                    "#!/bin/sh\necho \"ssh $*\" >>'{}'\nexit 255\n",
                    log.display()
                ),
            );
            let out = run(backend, &config, &["--not-metered"], &[], Some(&bin));
            let what = format!("{backend:?} metered={metered}\n{}", text(&out));
            assert_eq!(out.status.code(), Some(0), "{what}");
            assert!(copied(dir.path()), "local sync not done: {what}");
            let calls = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(
                calls.contains("nmcli -t -f GENERAL.METERED dev show"),
                "{what}\n{calls}"
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            let skipped = "SKIPPED docs-to-nas: metered connection";
            if metered {
                assert!(stderr.contains(skipped), "{what}");
                // `ssh -O exit` (the script's cleanup) only talks to a
                // control socket on this machine, never to the host.
                let contacted = calls
                    .lines()
                    .any(|l| l.starts_with("ssh ") && !l.contains(" -O exit "));
                assert!(!contacted, "host contacted: {what}\n{calls}");
                assert!(!stderr.contains("unreachable"), "not even tried: {what}");
            } else {
                assert!(!stderr.contains(skipped), "{what}");
                assert!(calls.contains("ssh "), "host never tried: {what}\n{calls}");
            }
        }
    }
}

// ---------------------------------------------------------------- monitoring

#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    body: String,
}

/// An HTTP server on 127.0.0.1 that answers 200 to everything and keeps
/// what it was sent.
fn http_server() -> (u16, Arc<Mutex<Vec<Request>>>) {
    http_server_slow_on_start(std::time::Duration::ZERO)
}

/// The same, answering `…/start` only after `delay`.
fn http_server_slow_on_start(delay: std::time::Duration) -> (u16, Arc<Mutex<Vec<Request>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Arc<Mutex<Vec<Request>>> = Arc::default();
    let keep = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let keep = keep.clone();
            std::thread::spawn(move || answer(stream, &keep, delay));
        }
    });
    (port, seen)
}

fn answer(mut stream: std::net::TcpStream, keep: &Mutex<Vec<Request>>, delay: std::time::Duration) {
    {
        {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            if reader.read_line(&mut first).is_err() {
                return;
            }
            let mut length = 0;
            let mut expect = false;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                expect |= lower.starts_with("expect: 100-continue");
            }
            if expect {
                let _ = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let mut words = first.split_whitespace();
            let request = Request {
                method: words.next().unwrap_or("").into(),
                path: words.next().unwrap_or("").into(),
                body: String::from_utf8_lossy(&body).into_owned(),
            };
            if request.path.ends_with("/start") {
                std::thread::sleep(delay);
            }
            keep.lock().unwrap().push(request);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK");
        }
    }
}

/// The textfile through prometheus_client's parser: each family's type,
/// and every sample as `name{sync=…}` → value.
/// (name, type) of each family, (name{sync=…}, value) of each sample.
type Parsed = (Vec<(String, String)>, Vec<(String, f64)>);

fn parse_metrics(file: &Path) -> Parsed {
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(
            "import json, sys\n\
             from prometheus_client.parser import text_string_to_metric_families\n\
             fams, samples = [], []\n\
             for f in text_string_to_metric_families(open(sys.argv[1]).read()):\n\
             \x20   fams.append((f.name, f.type))\n\
             \x20   for s in f.samples:\n\
             \x20       key = s.name + (('{sync=' + s.labels['sync'] + '}') if 'sync' in s.labels else '')\n\
             \x20       samples.append((key, s.value))\n\
             print(json.dumps([fams, samples]))",
        )
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "prometheus parser: {}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn sample(samples: &[(String, f64)], key: &str) -> f64 {
    samples
        .iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("no {key} in {samples:?}"))
        .1
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn monitoring_pings_a_local_server_and_writes_prometheus_metrics_in_both_backends() {
    if !need(&["rsync", "dash", "curl"], "rsync dash curl")
        || !need(&["python3"], "python3-prometheus-client")
    {
        return;
    }
    let have_parser = Command::new("/usr/bin/python3")
        .args(["-c", "import prometheus_client.parser"])
        .status()
        .is_ok_and(|s| s.success());
    if !have_parser
        && !need(
            &["no-prometheus-client-module"],
            "python3-prometheus-client",
        )
    {
        return;
    }
    for backend in BACKENDS {
        let (port, seen) = http_server();
        let dir = tempfile::tempdir().unwrap();
        let metrics = dir.path().join("textfile/nbkp.prom");
        std::fs::create_dir_all(metrics.parent().unwrap()).unwrap();
        let monitoring = format!(
            "monitoring:\n  ping-url: http://127.0.0.1:{port}/ping/abc-123\n  metrics-file: {}\n",
            metrics.display()
        );
        let config = local_config(dir.path(), "", &monitoring);
        // Hard-link snapshots on the drive, prepared by `nbkp init`.
        let with_snapshots = |config: &Path| {
            let yaml = std::fs::read_to_string(config).unwrap().replace(
                "drive-docs: {volume: drive, subdir: docs}",
                "drive-docs: {volume: drive, subdir: docs, hard-link-snapshots: {enabled: true}}",
            );
            write(config, &yaml);
        };
        with_snapshots(&config);
        let init = nbkp().args(["init", "-c"]).arg(&config).output().unwrap();
        assert!(init.status.success(), "{}", text(&init));

        // A dry run reports nothing.
        let out = run(backend, &config, &["-n"], &[], None);
        assert_eq!(out.status.code(), Some(0), "{backend:?} {}", text(&out));
        assert!(
            seen.lock().unwrap().is_empty(),
            "{backend:?}: pinged in a dry run"
        );
        assert!(!metrics.exists());

        write(
            &dir.path().join("laptop/docs/photo.raw"),
            &"x".repeat(100_000),
        );
        let before = now();
        let out = run(backend, &config, &[], &[], None);
        let after = now();
        assert_eq!(out.status.code(), Some(0), "{backend:?} {}", text(&out));
        let requests = seen.lock().unwrap().clone();
        let paths: Vec<(&str, &str)> = requests
            .iter()
            .map(|r| (r.method.as_str(), r.path.as_str()))
            .collect();
        assert_eq!(
            paths,
            [("POST", "/ping/abc-123/start"), ("POST", "/ping/abc-123")],
            "{backend:?} {}",
            text(&out)
        );
        assert!(requests[1].body.contains("exit 0"), "{:?}", requests[1]);
        assert!(
            requests[1].body.contains("docs-to-drive: success"),
            "{backend:?} {:?}",
            requests[1]
        );
        let (families, samples) = parse_metrics(&metrics);
        for name in [
            "nbkp_sync_last_success_timestamp_seconds",
            "nbkp_sync_last_run_timestamp_seconds",
            "nbkp_sync_last_run_duration_seconds",
            "nbkp_sync_last_exit_status",
            "nbkp_sync_snapshots",
            "nbkp_sync_last_run_transferred_bytes",
            "nbkp_last_run_timestamp_seconds",
            "nbkp_last_run_exit_status",
        ] {
            assert!(
                families.contains(&(name.to_string(), "gauge".to_string())),
                "{backend:?}: {name} not a gauge in {families:?}"
            );
        }
        let success = sample(
            &samples,
            "nbkp_sync_last_success_timestamp_seconds{sync=docs-to-drive}",
        );
        // The script's clock has whole seconds.
        assert!(
            success >= before.floor() && success <= after.ceil(),
            "{backend:?}: {before} <= {success} <= {after}"
        );
        assert_eq!(
            sample(&samples, "nbkp_sync_last_exit_status{sync=docs-to-drive}"),
            0.0
        );
        assert_eq!(sample(&samples, "nbkp_last_run_exit_status"), 0.0);
        let duration = sample(
            &samples,
            "nbkp_sync_last_run_duration_seconds{sync=docs-to-drive}",
        );
        assert!((0.0..=after - before + 1.0).contains(&duration));
        assert_eq!(
            sample(&samples, "nbkp_sync_snapshots{sync=docs-to-drive}"),
            1.0
        );
        // rsync's own totals: the 100 kB file and a little protocol.
        let sent = sample(
            &samples,
            "nbkp_sync_last_run_transferred_bytes{sync=docs-to-drive}",
        );
        assert!(
            (100_000.0..120_000.0).contains(&sent),
            "{backend:?}: {sent}"
        );

        // Now the sync fails (rsync refuses an option): /fail, the failure
        // in the metrics, the last success kept from the previous file.
        seen.lock().unwrap().clear();
        let failing = local_config(
            dir.path(),
            "    rsync-options: {extra-options: [--no-such-rsync-option]}\n",
            &monitoring,
        );
        with_snapshots(&failing);
        let out = run(backend, &failing, &[], &[], None);
        assert_eq!(out.status.code(), Some(1), "{backend:?} {}", text(&out));
        let requests = seen.lock().unwrap().clone();
        let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            paths,
            ["/ping/abc-123/start", "/ping/abc-123/fail"],
            "{backend:?}"
        );
        assert!(requests[1].body.contains("exit 1"), "{:?}", requests[1]);
        assert!(
            requests[1].body.contains("docs-to-drive: failed"),
            "{:?}",
            requests[1]
        );
        let (_, again) = parse_metrics(&metrics);
        assert_eq!(
            sample(
                &again,
                "nbkp_sync_last_success_timestamp_seconds{sync=docs-to-drive}"
            ),
            success,
            "{backend:?}: the last success is kept"
        );
        assert_eq!(
            sample(&again, "nbkp_sync_last_exit_status{sync=docs-to-drive}"),
            1.0
        );
        assert_eq!(sample(&again, "nbkp_last_run_exit_status"), 1.0);
        assert_eq!(
            sample(&again, "nbkp_sync_snapshots{sync=docs-to-drive}"),
            1.0
        );
        // rsync refused its options before sending anything.
        assert_eq!(
            sample(
                &again,
                "nbkp_sync_last_run_transferred_bytes{sync=docs-to-drive}"
            ),
            0.0
        );
        // Only the file: no temporary file left beside it.
        let left: Vec<_> = std::fs::read_dir(metrics.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, [std::ffi::OsString::from("nbkp.prom")], "{backend:?}");
    }
}

#[test]
fn a_ping_nobody_receives_does_not_fail_the_backup_in_both_backends() {
    if !need(&["rsync", "dash", "curl"], "rsync dash curl") {
        return;
    }
    // A port of loopback nothing listens on.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let config = local_config(
            dir.path(),
            "",
            &format!("monitoring:\n  ping-url: http://127.0.0.1:{port}/x\n"),
        );
        let out = run(backend, &config, &[], &[], None);
        assert_eq!(out.status.code(), Some(0), "{backend:?} {}", text(&out));
        assert!(copied(dir.path()));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("WARN: the monitoring ping (start) failed")
                && stderr.contains("WARN: the monitoring ping (success) failed"),
            "{backend:?} {}",
            text(&out)
        );
    }
}

/// The plan's second client, for machines without curl: the real wget
/// POSTs the body file to the URL.
#[test]
fn the_plans_wget_argv_posts_the_body() {
    if !need(&["wget"], "wget") {
        return;
    }
    let (port, seen) = http_server();
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body");
    std::fs::write(&body, "nbkp run: exit 0\nx: success\n").unwrap();
    // The argv as the plan has it (`nbkp sh --plan`), put together as
    // both back-ends do: program, args, body prefix + file, URL.
    let config = local_config(
        dir.path(),
        "",
        &format!("monitoring:\n  ping-url: http://127.0.0.1:{port}/p\n"),
    );
    let plan = nbkp()
        .args(["sh", "--plan", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(plan.status.success(), "{}", text(&plan));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let ping = &plan["monitoring"]["ping"];
    let wget = ping["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["program"] == "wget")
        .unwrap();
    let mut argv: Vec<String> = vec![wget["program"].as_str().unwrap().into()];
    argv.extend(
        wget["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string()),
    );
    argv.push(format!(
        "{}{}",
        wget["body"].as_str().unwrap(),
        body.display()
    ));
    argv.push(ping["fail"].as_str().unwrap().into());
    let out = Command::new(&argv[0]).args(&argv[1..]).output().unwrap();
    assert!(out.status.success(), "{argv:?} {}", text(&out));
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path, "/p/fail");
    assert_eq!(requests[0].body, "nbkp run: exit 0\nx: success\n");
}

/// The script's conditions and monitoring under every shell scripts run
/// on: skipped on battery; on AC, both pings, and the metrics file.
#[test]
fn the_scripts_conditions_and_monitoring_work_under_every_shell() {
    if !need(&["rsync", "curl"], "rsync curl") {
        return;
    }
    let shells: [&[&str]; 7] = [
        &["dash"],
        &["busybox", "sh"],
        &["bash", "--posix"],
        &["posh"],
        &["mksh"],
        &["yash", "--posix"],
        &["zsh", "--emulate", "sh"],
    ];
    let programs: Vec<&str> = shells.iter().map(|s| s[0]).collect();
    if !need(&programs, "dash busybox bash posh mksh yash zsh") {
        return;
    }
    for shell in shells {
        let (port, seen) = http_server();
        let dir = tempfile::tempdir().unwrap();
        let metrics = dir.path().join("nbkp.prom");
        let config = local_config(
            dir.path(),
            "",
            &format!(
                "monitoring:\n  ping-url: http://127.0.0.1:{port}/hc\n  metrics-file: {}\n",
                metrics.display()
            ),
        );
        let script = dir.path().join("backup.sh");
        let out = nbkp()
            .args(["sh", "-c"])
            .arg(&config)
            .arg("-o")
            .arg(&script)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let run = |supplies: &Path| {
            Command::new(shell[0])
                .args(&shell[1..])
                .arg(&script)
                .arg("--on-ac-power")
                .env("NBKP_SYSFS_POWER_SUPPLY", supplies)
                .env("XDG_STATE_HOME", dir.path().join("state"))
                .output()
                .unwrap()
        };
        let out = run(&fake_power_supply(dir.path(), false));
        assert_eq!(out.status.code(), Some(0), "{shell:?} {}", text(&out));
        assert!(!copied(dir.path()), "{shell:?}: ran on battery");
        assert!(
            seen.lock().unwrap().is_empty(),
            "{shell:?}: pinged a skipped run"
        );
        assert!(!metrics.exists(), "{shell:?}");

        let out = run(&fake_power_supply(dir.path(), true));
        assert_eq!(out.status.code(), Some(0), "{shell:?} {}", text(&out));
        assert!(copied(dir.path()), "{shell:?} {}", text(&out));
        let paths: Vec<String> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.path.clone())
            .collect();
        assert_eq!(paths, ["/hc/start", "/hc"], "{shell:?} {}", text(&out));
        let file = std::fs::read_to_string(&metrics).unwrap();
        assert!(
            file.contains("nbkp_sync_last_exit_status{sync=\"docs-to-drive\"} 0\n")
                && file.contains("nbkp_last_run_exit_status 0\n")
                && file.contains("# TYPE nbkp_sync_last_success_timestamp_seconds gauge\n"),
            "{shell:?}:\n{file}"
        );
    }
}

/// A slow monitoring server does not hold up the backup: the sync starts
/// while the start ping waits for its answer, and the end ping still
/// comes after it.
#[test]
fn a_slow_start_ping_does_not_delay_the_backup_in_both_backends() {
    if !need(&["rsync", "dash", "curl"], "rsync dash curl") {
        return;
    }
    let delay = std::time::Duration::from_secs(4);
    for backend in BACKENDS {
        let (port, seen) = http_server_slow_on_start(delay);
        let dir = tempfile::tempdir().unwrap();
        let metrics = dir.path().join("nbkp.prom");
        let config = local_config(
            dir.path(),
            "",
            &format!(
                "monitoring:\n  ping-url: http://127.0.0.1:{port}/hc\n  metrics-file: {}\n",
                metrics.display()
            ),
        );
        let before = now();
        let out = run(backend, &config, &[], &[], None);
        assert_eq!(out.status.code(), Some(0), "{backend:?} {}", text(&out));
        let file = std::fs::read_to_string(&metrics).unwrap();
        let started: f64 = file
            .lines()
            .find_map(|l| {
                l.strip_prefix("nbkp_sync_last_run_timestamp_seconds{sync=\"docs-to-drive\"} ")
            })
            .unwrap()
            .parse()
            .unwrap();
        // Whole seconds in the script: a margin of 2 s, half the delay.
        assert!(
            started - before.floor() < 2.0,
            "{backend:?}: the sync started {:.1} s after the run, behind the start ping",
            started - before
        );
        let paths: Vec<String> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.path.clone())
            .collect();
        assert_eq!(paths, ["/hc/start", "/hc"], "{backend:?}");
    }
}
