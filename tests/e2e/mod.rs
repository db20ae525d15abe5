//! End-to-end scenarios on the test bed: a world of local folders, a real
//! remote host and real btrfs volumes, a config describing it, and a
//! back-end that runs the config (the generated script today; `nbkp run`
//! runs the same scenarios so the two can be compared).
#![allow(dead_code)]

pub mod argv_watch;
pub mod daemon;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::testbed::remote::RemoteHost;
use crate::testbed::shells::Shell;
use crate::testbed::volume::BtrfsVolume;
use crate::testbed::{self, require, run_timeout, shq, Component};

/// Runs every named scenario under both back-ends, as `script::NAME` (the
/// generated script under dash) and `run::NAME` (`nbkp run`).
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod script {
            $( #[test] fn $name() { super::$name(&$crate::e2e::Script($crate::testbed::shells::Shell::Dash)); } )*
        }
        mod run {
            $( #[test] fn $name() { super::$name(&$crate::e2e::Run); } )*
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Local,
    Remote,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    None,
    HardLink,
    Btrfs,
}

impl Mode {
    /// The sync-endpoint YAML fragment for this mode.
    pub fn yaml(self, max: Option<u32>) -> String {
        let max = max
            .map(|m| format!(", max-snapshots: {m}"))
            .unwrap_or_default();
        match self {
            Mode::None => String::new(),
            Mode::HardLink => format!(", hard-link-snapshots: {{enabled: true{max}}}"),
            Mode::Btrfs => format!(", btrfs-snapshots: {{enabled: true{max}}}"),
        }
    }
}

/// What a back-end reports for one run.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn assert_ok(&self) -> &Self {
        assert_eq!(self.code, 0, "run failed:\n{}", self.stderr);
        self
    }
}

/// A way to run a config: `nbkp sh` + a shell, or `nbkp run`.
pub trait Backend: Sync {
    fn name(&self) -> String;
    fn run(&self, world: &World, config: &str, args: &[&str]) -> Outcome;
    /// The same run, started in its own process group (so a test can kill
    /// it and everything it started at once, as a crash would).
    fn spawn(&self, world: &World, config: &str) -> std::process::Child;
}

/// The generated script, run by one of the test bed's shells.
pub struct Script(pub Shell);

static RUNS: AtomicUsize = AtomicUsize::new(0);

impl Backend for Script {
    fn name(&self) -> String {
        format!("script under {}", self.0)
    }

    fn run(&self, world: &World, config: &str, args: &[&str]) -> Outcome {
        let script = self.generate(world, config);
        let mut cmd = self.0.command();
        cmd.arg(&script).args(args);
        world.apply_clock(&mut cmd);
        let out = run_timeout(&mut cmd, Duration::from_secs(180)).expect("run the script");
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn spawn(&self, world: &World, config: &str) -> std::process::Child {
        self.spawn_impl(world, config)
    }
}

impl Script {
    fn spawn_impl(&self, world: &World, config: &str) -> std::process::Child {
        use std::os::unix::process::CommandExt;
        let script = self.generate(world, config);
        self.0
            .command()
            .arg(&script)
            .process_group(0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    }

    /// `nbkp sh -o` for the config; the script's path.
    pub fn generate(&self, world: &World, config: &str) -> PathBuf {
        let n = RUNS.fetch_add(1, Ordering::SeqCst);
        let cfg = world.root().join(format!("config-{n}.yaml"));
        std::fs::write(&cfg, config).unwrap();
        let script = world.root().join(format!("backup-{n}.sh"));
        let gen = Command::new(env!("CARGO_BIN_EXE_nbkp"))
            .args(["sh", "-c"])
            .arg(&cfg)
            .arg("-o")
            .arg(&script)
            .output()
            .unwrap();
        assert!(
            gen.status.success(),
            "nbkp sh failed:\n{}",
            String::from_utf8_lossy(&gen.stderr)
        );
        script
    }
}

/// `nbkp run` with the same flags as the script.
pub struct Run;

impl Backend for Run {
    fn name(&self) -> String {
        "nbkp run".into()
    }

    fn run(&self, world: &World, config: &str, args: &[&str]) -> Outcome {
        let n = RUNS.fetch_add(1, Ordering::SeqCst);
        let cfg = world.root().join(format!("config-{n}.yaml"));
        std::fs::write(&cfg, config).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nbkp"));
        cmd.args(["run", "-c"]).arg(&cfg).args(args);
        // The run records completed syncs: in this world, not the machine's.
        cmd.env("XDG_STATE_HOME", world.state_home());
        world.apply_clock(&mut cmd);
        let out = run_timeout(&mut cmd, Duration::from_secs(180)).expect("run nbkp run");
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn spawn(&self, world: &World, config: &str) -> std::process::Child {
        use std::os::unix::process::CommandExt;
        let n = RUNS.fetch_add(1, Ordering::SeqCst);
        let cfg = world.root().join(format!("config-{n}.yaml"));
        std::fs::write(&cfg, config).unwrap();
        Command::new(env!("CARGO_BIN_EXE_nbkp"))
            .args(["run", "-c"])
            .arg(&cfg)
            .env("XDG_STATE_HOME", world.state_home())
            .process_group(0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    }
}

/// Local folders, maybe a remote host, maybe btrfs volumes.
pub struct World {
    /// The clock the next runs see, as libfaketime's offset (`-5d`, `+10y`).
    clock: std::sync::Mutex<Option<String>>,
    tmp: tempfile::TempDir,
    pub remote: Option<RemoteHost>,
    local_btrfs: Vec<BtrfsVolume>,
    remote_btrfs: Vec<BtrfsVolume>,
}

impl World {
    /// `None` (test skipped, outside CI only) when a component is missing.
    pub fn new(remote: bool, btrfs: bool) -> Option<World> {
        let mut needs = vec![
            Component::Root,
            Component::Rsync,
            Component::Shell(Shell::Dash),
        ];
        if remote {
            needs.extend_from_slice(RemoteHost::COMPONENTS);
        }
        if btrfs {
            needs.extend_from_slice(BtrfsVolume::COMPONENTS);
        }
        if !require(&needs) {
            return None;
        }
        Some(World {
            clock: std::sync::Mutex::new(None),
            tmp: testbed::temp_dir("e2e"),
            remote: remote.then(RemoteHost::start),
            local_btrfs: Vec::new(),
            remote_btrfs: Vec::new(),
        })
    }

    /// Runs from now on see the clock moved by `offset` (libfaketime's
    /// syntax: `-5d`, `+10y`; `None`: the true time), as a machine without
    /// a real-time clock does before NTP answers. Only the wall clock moves.
    pub fn set_clock(&self, offset: Option<&str>) {
        *self.clock.lock().unwrap() = offset.map(str::to_string);
    }

    fn apply_clock(&self, cmd: &mut Command) {
        if let Some(offset) = self.clock.lock().unwrap().as_deref() {
            cmd.env("LD_PRELOAD", testbed::faketime_library())
                .env("FAKETIME", offset)
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
                .env("FAKETIME_DONT_RESET", "1");
        }
    }

    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    /// `XDG_STATE_HOME` of the runs in this world (`nbkp status` history).
    pub fn state_home(&self) -> PathBuf {
        self.root().join("state")
    }

    pub fn remote(&self) -> &RemoteHost {
        self.remote.as_ref().expect("this world has no remote host")
    }

    /// A fresh directory for a volume: on btrfs when `btrfs`, on `side`.
    pub fn volume_dir(&mut self, side: Side, name: &str, btrfs: bool) -> PathBuf {
        let path = match (side, btrfs) {
            (Side::Local, false) => self.root().join(name),
            (Side::Remote, false) => self.remote().root().join(name),
            (Side::Local, true) => {
                let v = BtrfsVolume::new();
                let p = v.path().join(name);
                self.local_btrfs.push(v);
                p
            }
            (Side::Remote, true) => {
                let v = self.remote().btrfs_volume();
                let p = v.path().join(name);
                self.remote_btrfs.push(v);
                p
            }
        };
        self.sh(side, &format!("mkdir -p {}", shq(&path)));
        path
    }

    /// Runs a shell command on a side (as root), failing the test on error.
    pub fn sh(&self, side: Side, command: &str) -> String {
        match side {
            Side::Local => testbed::check(Command::new("sh").args(["-c", command])),
            Side::Remote => self.remote().run_remote_ok(command),
        }
    }

    /// Runs a shell command on a side; its exit status and stdout.
    pub fn try_sh(&self, side: Side, command: &str) -> (bool, String) {
        let out = match side {
            Side::Local => Command::new("sh").args(["-c", command]).output().unwrap(),
            Side::Remote => self.remote().run_remote(command),
        };
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// A volume root with its `.nbkp-vol`.
    pub fn volume(&mut self, side: Side, name: &str, btrfs: bool) -> PathBuf {
        let p = self.volume_dir(side, name, btrfs);
        self.sh(side, &format!("touch {}/.nbkp-vol", shq(&p)));
        p
    }

    /// Sentinels and snapshot structure for an endpoint at `path`.
    pub fn endpoint(&self, side: Side, path: &Path, mode: Mode, src: bool, dst: bool) {
        let p = shq(path);
        let mut cmd = format!("mkdir -p {p}");
        if src {
            cmd.push_str(&format!(" && touch {p}/.nbkp-src"));
        }
        if dst {
            cmd.push_str(&format!(" && touch {p}/.nbkp-dst"));
        }
        match mode {
            Mode::None => {}
            Mode::HardLink => cmd.push_str(&format!(" && mkdir {p}/snapshots && ln -s /dev/null {p}/latest")),
            Mode::Btrfs => cmd.push_str(&format!(
                " && mkdir {p}/snapshots && ln -s /dev/null {p}/latest && btrfs -q subvolume create {p}/staging"
            )),
        }
        self.sh(side, &cmd);
    }

    /// A small tree: nested files, an empty directory, a symlink, a file with
    /// a space in its name.
    pub fn sample_tree(&self, side: Side, path: &Path) {
        let p = shq(path);
        self.sh(
            side,
            &format!(
                "mkdir -p {p}/sub/deeper {p}/empty && echo alpha > {p}/a.txt && echo beta > {p}/sub/b.txt \
                 && head -c 65536 /dev/urandom > {p}/sub/deeper/c.bin && echo gamma > '{}/with space.txt' \
                 && ln -s a.txt {p}/link-to-a",
                path.display()
            ),
        );
    }

    /// A listing of a tree's content (paths, types, checksums, link targets),
    /// without sentinels and snapshot structure, comparable across sides.
    pub fn manifest(&self, side: Side, path: &Path) -> String {
        let cmd = format!(
            "cd {} && find . -mindepth 1 \\( -name '.nbkp-*' -o -path ./snapshots -o -path ./latest -o -path ./staging \\) -prune -o -print | LC_ALL=C sort | while IFS= read -r f; do \
             if [ -L \"$f\" ]; then echo \"L $f -> $(readlink \"$f\")\"; elif [ -d \"$f\" ]; then echo \"D $f\"; else echo \"F $f $(sha256sum < \"$f\" | cut -c1-16)\"; fi; done",
            shq(path)
        );
        self.sh(side, &cmd)
    }

    /// Names in `<endpoint>/snapshots`, sorted.
    pub fn snapshots(&self, side: Side, endpoint: &Path) -> Vec<String> {
        let out = self.sh(side, &format!("ls -1 {}/snapshots", shq(endpoint)));
        let mut v: Vec<String> = out.lines().map(str::to_string).collect();
        v.sort();
        v
    }

    /// The target of `<endpoint>/latest`.
    pub fn latest(&self, side: Side, endpoint: &Path) -> String {
        self.sh(side, &format!("readlink {}/latest", shq(endpoint)))
            .trim()
            .to_string()
    }

    pub fn inode(&self, side: Side, path: &Path) -> String {
        self.sh(side, &format!("stat -c %i {}", shq(path)))
            .trim()
            .to_string()
    }

    /// The path exists (a symlink counts, wherever it points).
    pub fn exists(&self, side: Side, path: &Path) -> bool {
        let p = shq(path);
        self.try_sh(side, &format!("test -e {p} || test -L {p}")).0
    }

    /// The `ssh-endpoints` section naming the remote host `server`.
    pub fn ssh_yaml(&self) -> String {
        format!(
            "ssh-endpoints:\n{}",
            self.endpoint_yaml("server", "root", "")
        )
    }

    /// One SSH endpoint entry reaching the remote host as `user`.
    pub fn endpoint_yaml(&self, name: &str, user: &str, extra: &str) -> String {
        let r = self.remote();
        let ep = r.endpoint();
        format!(
            "  {name}:\n    host: {}\n    port: {}\n    user: {user}\n    key: {}\n{extra}    connection-options:\n      known-hosts-file: {}\n",
            ep.ip(),
            ep.port(),
            r.key_path().display(),
            r.known_hosts().display()
        )
    }

    /// A volume entry for `path` on `side`.
    pub fn volume_yaml(side: Side, name: &str, path: &Path) -> String {
        let p = yaml_str(&path.display().to_string());
        match side {
            Side::Local => format!("  {name}: {{type: local, path: {p}}}\n"),
            Side::Remote => {
                format!("  {name}: {{type: remote, ssh-endpoint: server, path: {p}}}\n")
            }
        }
    }
}

/// A YAML double-quoted string.
pub fn yaml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The content folder of a destination endpoint.
pub fn content(endpoint: &Path, mode: Mode) -> PathBuf {
    match mode {
        Mode::None => endpoint.to_path_buf(),
        Mode::HardLink | Mode::Btrfs => endpoint.join("latest"),
    }
}
