//! Drives stay shared with the Python nbkp: both tools take turns on the
//! same destinations — a hard-link one, a btrfs one and a hard-link one on
//! a remote host — with the same config. After every run `latest` holds
//! the source as it is now, every complete snapshot made before by either
//! tool is still there with the content it had, and both tools list the
//! same snapshots (so neither takes the other's for something else).
//!
//! A complete snapshot is a directory under `snapshots/` with a valid name;
//! anything else there is ignored. Before each Python run the hard-link
//! destinations hold what an interrupted run of this nbkp leaves
//! (`.nbkp-partial-<NAME>`, `.nbkp-removing-<NAME>`): the Python tool must
//! run and leave them alone.
//!
//! The Python nbkp comes from the package index (see `interop/mod.rs`); no
//! retention is configured, so nothing may disappear.

#[allow(unused_macros)] // both_backends! is for e2e_scenarios.rs
mod e2e;
mod interop;
mod testbed;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use e2e::{Mode, Side, World};
use interop::PythonNbkp;
use testbed::{run_timeout, shq};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tool {
    Ours,
    Python,
}

/// The runs, in order.
const TURNS: [Tool; 6] = [
    Tool::Ours,
    Tool::Python,
    Tool::Ours,
    Tool::Python,
    Tool::Python,
    Tool::Ours,
];

/// One shared destination and what is known about its snapshots.
struct Bed {
    w: World,
    py: &'static PythonNbkp,
    config: PathBuf,
    src: PathBuf,
    side: Side,
    dst: PathBuf,
    mode: Mode,
    /// Every complete snapshot seen: its maker and its content.
    made: BTreeMap<String, (Tool, String)>,
    /// A libfaketime offset for this nbkp's runs (a clock that lies).
    clock: Option<&'static str>,
}

impl Bed {
    fn new(py: &'static PythonNbkp, side: Side, mode: Mode) -> Option<Bed> {
        let mut w = World::new(side == Side::Remote, mode == Mode::Btrfs)?;
        let src_vol = w.volume(Side::Local, "src-vol", false);
        let src = src_vol.join("data");
        w.endpoint(Side::Local, &src, Mode::None, true, false);
        w.sample_tree(Side::Local, &src);
        let dst_vol = w.volume(side, "dst-vol", mode == Mode::Btrfs);
        let dst = dst_vol.join("backup");
        w.endpoint(side, &dst, mode, false, true);

        // Only the test bed's own remote host is ever named.
        let mut yaml = String::new();
        if side == Side::Remote {
            yaml.push_str(&w.ssh_yaml());
        }
        yaml.push_str("volumes:\n");
        yaml.push_str(&World::volume_yaml(Side::Local, "src-vol", &src_vol));
        yaml.push_str(&World::volume_yaml(side, "dst-vol", &dst_vol));
        yaml.push_str(&format!(
            "sync-endpoints:\n  src: {{volume: src-vol, subdir: data}}\n  dst: {{volume: dst-vol, subdir: backup{}}}\nsyncs:\n  shared: {{source: src, destination: dst}}\n",
            mode.yaml(None)
        ));
        let config = w.root().join("config.yaml");
        std::fs::write(&config, yaml).unwrap();
        std::fs::create_dir_all(w.root().join("home")).unwrap();
        Some(Bed {
            w,
            py,
            config,
            src,
            side,
            dst,
            mode,
            made: BTreeMap::new(),
            clock: None,
        })
    }

    /// A command of `tool` with this bed's config, in this bed's world: its
    /// own HOME and XDG folders (no user's ssh config or agent, no state
    /// outside the world).
    fn command(&self, tool: Tool, args: &[&str]) -> Command {
        let mut cmd = match tool {
            Tool::Ours => Command::new(env!("CARGO_BIN_EXE_nbkp")),
            Tool::Python => Command::new(&self.py.bin),
        };
        let root = self.w.root();
        cmd.args(args)
            .arg("-c")
            .arg(&self.config)
            .env("HOME", root.join("home"))
            .env("XDG_STATE_HOME", root.join("state"))
            .env("XDG_CONFIG_HOME", root.join("config"))
            .env("XDG_CACHE_HOME", root.join("cache"))
            .env("NO_COLOR", "1")
            .env("COLUMNS", "200")
            .env_remove("SSH_AUTH_SOCK");
        if let (Tool::Ours, Some(offset)) = (tool, self.clock) {
            cmd.env("LD_PRELOAD", testbed::faketime_library())
                .env("FAKETIME", offset)
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
                .env("FAKETIME_DONT_RESET", "1");
        }
        cmd
    }

    fn output(&self, tool: Tool, args: &[&str]) -> String {
        let out = run_timeout(&mut self.command(tool, args), Duration::from_secs(180))
            .unwrap_or_else(|e| panic!("{tool:?} {args:?}: {e}"));
        assert!(
            out.status.success(),
            "{tool:?} nbkp {args:?} failed ({}) on {}:\n{}\n{}",
            out.status,
            self.dst.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Entries of `snapshots/` with a valid name, sorted (= oldest first).
    fn complete(&self) -> Vec<String> {
        let out = self
            .w
            .sh(self.side, &format!("ls -1A {}/snapshots", shq(&self.dst)));
        let mut v: Vec<String> = out
            .lines()
            .filter(|n| is_name(n))
            .map(str::to_string)
            .collect();
        v.sort();
        v
    }

    fn snapshot(&self, name: &str) -> PathBuf {
        self.dst.join("snapshots").join(name)
    }

    /// What an interrupted run of this nbkp leaves in a hard-link
    /// destination: a half-written new snapshot and a half-removed old one,
    /// named with the time now, so newer than `latest` (what a tool that
    /// took them for snapshots would count, or delete as orphans).
    fn leave_leftovers(&self) -> Vec<PathBuf> {
        let stamp = testbed::check(Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%S.%3NZ"]));
        let stamp = stamp.trim();
        assert!(is_name(stamp), "{stamp}");
        let paths = vec![
            self.dst
                .join("snapshots")
                .join(format!(".nbkp-partial-{stamp}")),
            self.dst
                .join("snapshots")
                .join(format!(".nbkp-removing-{stamp}")),
        ];
        for p in &paths {
            let p = shq(p);
            self.w.sh(
                self.side,
                &format!("mkdir -p {p}/sub && echo unfinished > {p}/sub/half.txt"),
            );
        }
        paths
    }

    /// One run of `tool`, then every check.
    fn turn(&mut self, n: usize, tool: Tool) {
        let before = self.complete();
        let leftovers = if tool == Tool::Python && self.mode == Mode::HardLink {
            self.leave_leftovers()
        } else {
            Vec::new()
        };
        let started = Instant::now();
        self.output(tool, &["run"]);
        let took = started.elapsed();

        let after = self.complete();
        let lost: Vec<String> = before
            .iter()
            .filter(|s| !after.contains(s))
            .map(|s| format!("{s} (made by {:?})", self.made[s].0))
            .collect();
        assert!(
            lost.is_empty(),
            "run {n} ({tool:?}) lost complete snapshots: {lost:?}"
        );
        let new: Vec<&String> = after.iter().filter(|s| !before.contains(s)).collect();
        assert_eq!(
            new.len(),
            1,
            "run {n} ({tool:?}): one new snapshot expected, before {before:?}, after {after:?}"
        );
        let new = new[0].clone();
        assert_eq!(
            after.last(),
            Some(&new),
            "run {n} ({tool:?}): the new snapshot is the newest"
        );
        assert_eq!(
            self.w.latest(self.side, &self.dst),
            format!("snapshots/{new}"),
            "run {n} ({tool:?}): latest names the new snapshot"
        );
        let source = self.w.manifest(Side::Local, &self.src);
        assert_eq!(
            self.w.manifest(self.side, &self.dst.join("latest")),
            source,
            "run {n} ({tool:?}): latest holds the source"
        );
        self.made.insert(new.clone(), (tool, source));

        // Every snapshot still holds what it held when it was made.
        for (name, (maker, content)) in &self.made {
            assert_eq!(
                &self.w.manifest(self.side, &self.snapshot(name)),
                content,
                "run {n} ({tool:?}) changed snapshot {name} (made by {maker:?})"
            );
        }
        self.check_links(n, tool, &after);

        // The leftovers are not the Python tool's: untouched.
        for p in &leftovers {
            let (ok, half) = self
                .w
                .try_sh(self.side, &format!("cat {}/sub/half.txt", shq(p)));
            assert!(
                ok && half.trim() == "unfinished",
                "run {n}: the Python nbkp removed or changed {}",
                p.display()
            );
        }

        // Both tools see exactly these snapshots.
        assert_eq!(
            listed_by_ours(&self.output(Tool::Ours, &["snapshots", "show", "-o", "json"])),
            after,
            "run {n} ({tool:?}): this nbkp's `snapshots show` differs from the disk"
        );
        assert_eq!(
            listed_by_python(&self.output(Tool::Python, &["snapshots", "show", "-o", "json"])),
            after,
            "run {n} ({tool:?}): the Python nbkp's `snapshots show` differs from the disk"
        );
        let _ = writeln_stderr(&format!(
            "run {n}: {tool:?} made {new} in {:.1} s ({} snapshots)",
            took.as_secs_f64(),
            after.len()
        ));
    }

    /// Hard links: the never-changing file is one inode in every snapshot
    /// (each tool linked against the other's). btrfs: every snapshot is
    /// read-only.
    fn check_links(&self, n: usize, tool: Tool, snaps: &[String]) {
        match self.mode {
            Mode::HardLink => {
                let inodes: Vec<String> = snaps
                    .iter()
                    .map(|s| {
                        self.w
                            .inode(self.side, &self.snapshot(s).join("sub/deeper/c.bin"))
                    })
                    .collect();
                assert!(
                    inodes.iter().all(|i| i == &inodes[0]),
                    "run {n} ({tool:?}): unchanged file not hard-linked across snapshots {snaps:?}: {inodes:?}"
                );
            }
            Mode::Btrfs => {
                for s in snaps {
                    let ro = self.w.sh(
                        self.side,
                        &format!("btrfs property get {} ro", shq(self.snapshot(s))),
                    );
                    assert_eq!(ro.trim(), "ro=true", "run {n}: snapshot {s} is writable");
                }
            }
            Mode::None => {}
        }
    }

    /// Changes the source so each run has something new to carry: an
    /// edit, a new file, a removed one, a new directory. The edit changes
    /// the file's size too: two edits within one second of the same size
    /// look unchanged to rsync's quick check (size and whole-second mtime),
    /// in both tools alike.
    fn change_source(&self, n: usize) {
        let p = shq(&self.src);
        let mut cmd = format!(
            "echo 'edit {n}{}' > {p}/a.txt && echo {n} > {p}/new-{n}.txt && rm -f {p}/new-{}.txt && mkdir -p {p}/dir-{n}/inner && echo x > {p}/dir-{n}/inner/f",
            ".".repeat(n),
            n.wrapping_sub(1)
        );
        if n == 2 {
            cmd.push_str(&format!(" && rm {p}/sub/b.txt && rm -r {p}/empty"));
        }
        self.w.sh(Side::Local, &cmd);
    }
}

fn writeln_stderr(msg: &str) -> std::io::Result<()> {
    use std::io::Write;
    writeln!(std::io::stderr(), "{msg}")
}

/// A snapshot name as LAYOUT and both tools define it:
/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (or with `-` for `:`).
fn is_name(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    b.len() >= 20
        && s.bytes()
            .all(|c| c.is_ascii_digit() || b"TZ:.-".contains(&c))
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && matches!(b[13], b':' | b'-')
        && digits(14..16)
        && matches!(b[16], b':' | b'-')
        && digits(17..19)
        && s.ends_with('Z')
}

/// Names in this nbkp's `snapshots show -o json`.
fn listed_by_ours(json: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(json).expect("our snapshots JSON");
    let mut names: Vec<String> = v["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .flat_map(|e| e["snapshots"].as_array().cloned().unwrap_or_default())
        .map(|s| s["name"].as_str().expect("name").to_string())
        .collect();
    names.sort();
    names
}

/// Names in the Python nbkp's `snapshots show -o json` (a list of syncs).
fn listed_by_python(json: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(json).expect("Python snapshots JSON");
    let mut names: Vec<String> = v
        .as_array()
        .expect("a list of syncs")
        .iter()
        .flat_map(|e| e["snapshots"].as_array().cloned().unwrap_or_default())
        .map(|s| s["name"].as_str().expect("name").to_string())
        .collect();
    names.sort();
    names
}

fn alternate(side: Side, mode: Mode) {
    let Some(py) = interop::python_nbkp() else {
        return;
    };
    let Some(mut bed) = Bed::new(py, side, mode) else {
        return;
    };
    for (n, tool) in TURNS.iter().enumerate() {
        if n > 0 {
            bed.change_source(n);
        }
        bed.turn(n, *tool);
    }
    let makers: Vec<Tool> = bed.made.values().map(|(t, _)| *t).collect();
    assert_eq!(makers, TURNS, "every run made its snapshot, in order");
}

#[test]
fn hard_link_destination_shared() {
    alternate(Side::Local, Mode::HardLink);
}

#[test]
fn btrfs_destination_shared() {
    alternate(Side::Local, Mode::Btrfs);
}

#[test]
fn remote_hard_link_destination_shared() {
    alternate(Side::Remote, Mode::HardLink);
}

/// A run of this nbkp with the clock days behind (a Raspberry Pi before
/// NTP answers) between runs of the Python nbkp, which takes names after
/// `latest` for leftovers and removes them: this nbkp names its snapshot
/// after the newest, so the Python run that follows loses nothing.
#[test]
fn a_clock_behind_between_python_runs_loses_nothing() {
    let Some(py) = interop::python_nbkp() else {
        return;
    };
    if !testbed::require(&[testbed::Component::Faketime]) {
        return;
    }
    for mode in [Mode::HardLink, Mode::Btrfs] {
        let Some(mut bed) = Bed::new(py, Side::Local, mode) else {
            return;
        };
        bed.turn(0, Tool::Python);
        bed.change_source(1);
        bed.clock = Some("-3d");
        bed.turn(1, Tool::Ours);
        bed.clock = None;
        bed.change_source(2);
        bed.turn(2, Tool::Python);
    }
}

#[test]
fn snapshot_names_and_leftover_names() {
    assert!(is_name("2026-12-07T12:30:00.123Z"));
    assert!(is_name("2026-12-07T12-30-00.123Z"));
    assert!(!is_name(".nbkp-partial-2026-12-07T12:30:00.123Z"));
    assert!(!is_name("lost+found"));
}
