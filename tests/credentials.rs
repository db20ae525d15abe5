//! Passphrase providers and the commands around them: the keyring against
//! a real Secret Service (a private session D-Bus and gnome-keyring-daemon,
//! used through secret-tool by both nbkp and the generated script), env and
//! command providers, `credentials keyring-status`, `disks setup-auth`, and
//! a generated script that fetches passphrases without ever holding them
//! in its text. (Unlocking itself is tested in `luks_uml.rs`.)

mod testbed;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testbed::{require, Component};

const SECRET: &str = "s3cret 'with' $(quotes)";

/// A session bus and an unlocked keyring, private to the test.
struct Keyring {
    _dir: tempfile::TempDir,
    home: PathBuf,
    bus: String,
    children: Vec<Child>,
}

impl Keyring {
    fn start() -> Keyring {
        let dir = testbed::temp_dir("keyring");
        let home = dir.path().join("home");
        let runtime = dir.path().join("run");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&runtime).unwrap();
        // gnome-keyring wants a private runtime directory.
        testbed::check(Command::new("chmod").arg("700").arg(&runtime));
        let socket = dir.path().join("bus");
        let bus = format!("unix:path={}", socket.display());
        // A session bus that activates nothing: with the standard service
        // directories, the first secret-tool call can start a second,
        // locked gnome-keyring-daemon by D-Bus activation, and the one
        // started here then gives up ("another secret service is running").
        let conf = dir.path().join("bus.conf");
        std::fs::write(
            &conf,
            format!(
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\" \
                 \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n\
                 <busconfig><type>session</type><listen>{bus}</listen><auth>EXTERNAL</auth>\
                 <policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>\
                 <allow eavesdrop=\"true\"/><allow own=\"*\"/></policy></busconfig>\n"
            ),
        )
        .unwrap();
        let dbus = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", conf.display()))
            .args(["--nofork", "--nopidfile"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        testbed::wait_until("the session bus", Duration::from_secs(10), || {
            socket.exists()
        })
        .expect("dbus-daemon started");
        let mut keyring = Keyring {
            _dir: dir,
            home,
            bus,
            children: vec![dbus],
        };
        let mut daemon = keyring
            .command("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("XDG_RUNTIME_DIR", &runtime)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(keyring.home.join("keyring.log")).unwrap())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut stdin = daemon.stdin.take().unwrap();
            stdin.write_all(b"keyring-password").unwrap();
        }
        keyring.children.push(daemon);
        // Ready once the Secret Service answers.
        // Generous: on a loaded machine its first start has been seen to
        // take more than 15 s.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !keyring.lookup("probe-nothing").status.success() {
            if keyring.store("ready-check", "x") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "gnome-keyring-daemon did not start: {}",
                std::fs::read_to_string(keyring.home.join("keyring.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        keyring
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("HOME", &self.home)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .env_remove("XDG_CONFIG_HOME");
        c
    }

    fn store(&self, id: &str, secret: &str) -> bool {
        use std::io::Write;
        let mut c = self
            .command("secret-tool")
            .args([
                "store",
                "--label=nbkp test",
                "service",
                "nbkp",
                "account",
                id,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        c.stdin
            .take()
            .unwrap()
            .write_all(secret.as_bytes())
            .unwrap();
        c.wait().unwrap().success()
    }

    fn lookup(&self, id: &str) -> std::process::Output {
        self.command("secret-tool")
            .args(["lookup", "service", "nbkp", "account", id])
            .output()
            .unwrap()
    }
}

impl Drop for Keyring {
    fn drop(&mut self) {
        for c in self.children.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A config with one encrypted, absent drive per passphrase-id.
fn config(dir: &Path, provider: &str, ids: &[&str], extra: &str) -> PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let mut volumes = format!("  laptop: {{type: local, path: {}}}\n", src.display());
    let mut endpoints = "  docs: {volume: laptop}\n".to_string();
    let mut syncs = String::new();
    for (i, id) in ids.iter().enumerate() {
        volumes.push_str(&format!(
            "  drive{i}:\n    type: local\n    mount: {{device-uuid: 0f3c6a52-3d41-4b2e-9d0c-5a6b7c8d9e{i:02}, encryption: {{passphrase-id: {id}}}}}\n"
        ));
        endpoints.push_str(&format!("  d{i}: {{volume: drive{i}}}\n"));
        syncs.push_str(&format!("  to-d{i}: {{source: docs, destination: d{i}}}\n"));
    }
    let text = format!(
        "credential-provider: {provider}\n{extra}volumes:\n{volumes}sync-endpoints:\n{endpoints}syncs:\n{syncs}"
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn nbkp(k: Option<&Keyring>) -> Command {
    match k {
        Some(k) => k.command(env!("CARGO_BIN_EXE_nbkp")),
        None => Command::new(env!("CARGO_BIN_EXE_nbkp")),
    }
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn keyring_provider_with_a_real_secret_service() {
    if !require(&[
        Component::Keyring,
        Component::Shell(testbed::shells::Shell::Dash),
    ]) {
        return;
    }
    let k = Keyring::start();
    assert!(k.store("vault", SECRET));
    let dir = testbed::temp_dir("kr-cfg");
    let cfg = config(dir.path(), "keyring", &["vault", "missing-one"], "");
    let out = nbkp(Some(&k))
        .args(["credentials", "keyring-status", "-o", "json", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success());
    let j = json(&out);
    assert_eq!(j["provider"], "keyring");
    assert_eq!(j["checked"], true);
    assert_eq!(j["passphrases"]["vault"]["available"], true, "{j}");
    assert_eq!(j["passphrases"]["vault"]["volumes"][0], "drive0");
    assert_eq!(j["passphrases"]["missing-one"]["available"], false);
    assert_eq!(j["passphrases"]["missing-one"]["reason"], "not-found");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("s3cret"), "the passphrase was shown: {text}");

    // The generated script fetches through secret-tool when it runs (both
    // drives are absent, so nothing is unlocked; the fetch still happens first).
    let script = dir.path().join("backup.sh");
    let out = nbkp(None)
        .args(["sh", "-o"])
        .arg(&script)
        .arg("-c")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!std::fs::read_to_string(&script).unwrap().contains("s3cret"));
    let out = k.command("dash").arg(&script).output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(!log.contains("'vault' not available"), "{log}");
    assert!(
        log.contains("passphrase 'missing-one' not available: not found in the keyring"),
        "{log}"
    );
    assert!(
        log.contains("volume 'drive0': device not plugged in"),
        "{log}"
    );
    assert!(!log.contains("s3cret"));
}

#[test]
fn env_and_command_providers() {
    let dir = testbed::temp_dir("cred-env");
    let cfg = config(dir.path(), "env", &["seagate-8tb"], "");
    let out = nbkp(None)
        .args(["credentials", "keyring-status", "-o", "json", "-c"])
        .arg(&cfg)
        .env_remove("NBKP_PASSPHRASE_SEAGATE_8TB")
        .output()
        .unwrap();
    let j = json(&out);
    assert_eq!(j["passphrases"]["seagate-8tb"]["reason"], "env-unset");
    assert_eq!(
        j["passphrases"]["seagate-8tb"]["error"],
        "Environment variable 'NBKP_PASSPHRASE_SEAGATE_8TB' not set. Export it with: export NBKP_PASSPHRASE_SEAGATE_8TB=..."
    );
    let out = nbkp(None)
        .args(["credentials", "keyring-status", "-o", "json", "-c"])
        .arg(&cfg)
        .env("NBKP_PASSPHRASE_SEAGATE_8TB", SECRET)
        .output()
        .unwrap();
    assert_eq!(json(&out)["passphrases"]["seagate-8tb"]["available"], true);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("s3cret"));

    // command: {id} replaced, stdout trimmed, a failing command reported.
    let helper = dir.path().join("secret.sh");
    std::fs::write(
        &helper,
        "#!/bin/sh\ncase $1 in good) printf '  %s\\n' 'pw' ;; *) exit 3 ;; esac\n",
    )
    .unwrap();
    testbed::check(Command::new("chmod").arg("755").arg(&helper));
    let extra = format!("credential-command: [{}, \"{{id}}\"]\n", helper.display());
    let cfg = config(dir.path(), "command", &["good", "bad"], &extra);
    let out = nbkp(None)
        .args(["credentials", "keyring-status", "-o", "json", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    let j = json(&out);
    assert_eq!(j["passphrases"]["good"]["available"], true, "{j}");
    assert_eq!(j["passphrases"]["bad"]["reason"], "command-failed", "{j}");

    // The prompt provider is never checked ahead.
    let cfg = config(dir.path(), "prompt", &["p"], "");
    let out = nbkp(None)
        .args(["credentials", "keyring-status", "-o", "json", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(json(&out)["checked"], false);
}

#[test]
fn setup_auth_prints_the_polkit_rule() {
    let dir = testbed::temp_dir("polkit");
    let cfg = config(dir.path(), "env", &["a"], "");
    let out = nbkp(None)
        .args(["disks", "setup-auth", "-u", "we\"ird", "-o", "json", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    let j = json(&out);
    let rule = j["rules"][0]["content"].as_str().unwrap();
    assert_eq!(j["rules"][0]["path"], "/etc/polkit-1/rules.d/50-nbkp.rules");
    assert!(rule.contains("subject.user == \"we\\\"ird\""), "{rule}");
    for action in [
        "filesystem-mount",
        "encrypted-unlock",
        "encrypted-lock-others",
        "filesystem-unmount-others",
    ] {
        assert!(
            rule.contains(&format!("\"org.freedesktop.udisks2.{action}\"")),
            "{rule}"
        );
    }
    // No mount-managed volume: nothing to print.
    let plain = dir.path().join("plain.yaml");
    std::fs::write(&plain, format!("volumes:\n  a: {{type: local, path: {}}}\nsync-endpoints:\n  e: {{volume: a}}\nsyncs: {{}}\n", dir.path().display())).unwrap();
    let out = nbkp(None)
        .args(["disks", "setup-auth", "-c"])
        .arg(&plain)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .trim()
        .ends_with("No volumes with mount config found."));
    assert!(out.stdout.is_empty());
}

#[test]
fn disks_refuse_unknown_volume_names() {
    let dir = testbed::temp_dir("disks-names");
    let cfg = config(dir.path(), "env", &["a"], "");
    let out = nbkp(None)
        .args(["disks", "status", "-n", "nosuch", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    // A bad command line, as `run -s nosuch`.
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown volume name(s): nosuch. Known volumes: drive0, laptop"),
        "{err}"
    );
}
