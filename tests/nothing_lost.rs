//! "Nothing lost", as a property: random sequences of source edits, runs
//! through both back-ends (`nbkp run` and the generated script under dash),
//! runs SIGKILLed at a random moment, a clock days behind or years ahead,
//! the destination drive unplugged and replugged or filled up, and
//! `nbkp snapshots prune`; after every step the invariants of
//! docs/guarantees.md are checked:
//!
//! - (a) `latest`, once it names a snapshot, names a complete one whose tree
//!   is a state the source had at the start of some run;
//! - (b) a complete snapshot that existed before a step still exists, with
//!   the same tree, unless the step's output says `pruned snapshot <NAME>
//!   (retention: <rule>)`;
//! - (c) a run never removes the snapshot that was `latest` when it started,
//!   and `snapshots prune` never removes `latest`;
//! - (d) nothing is written to an unplugged drive's mountpoint;
//! - (e) a run whose clock is behind the newest snapshot prunes nothing;
//! - (f) a run that makes a snapshot leaves `latest` at the newest name,
//!   whatever its clock (tools that take names after `latest` for
//!   leftovers, as the Python nbkp does, then find none).
//!
//! "Complete" is decided from the layout alone (docs/guarantees.md): a
//! directory in `snapshots/` named like a snapshot; `.nbkp-partial-*` and
//! `.nbkp-removing-*` are unfinished work.
//!
//! Seeded: `NBKP_PROPTEST_SEED` replays one sequence, `NBKP_PROPTEST_CASES`
//! sets how many (default 12 per destination, 120 with `CI=true`),
//! `NBKP_PROPTEST_STEPS=0,3,5-9` runs only those steps of the sequence (to
//! shorten a failure by hand).

mod testbed;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::hash::Hasher;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use testbed::volume::Drive;
use testbed::{require, Component, Shell};

// ---------------------------------------------------------------- random

/// splitmix64: small, seedable, good enough to draw test steps.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len + 8);
        while v.len() < len {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(len);
        v
    }
}

// ---------------------------------------------------------------- the plan

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dest {
    HardLink,
    Btrfs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    NbkpRun,
    Script,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::NbkpRun => "nbkp run",
            Backend::Script => "script under dash",
        }
    }
}

/// One step of a sequence. Every draw is made when the plan is made, so a
/// seed always gives the same steps.
#[derive(Clone, Debug)]
enum Step {
    /// A few additions, modifications and deletions in the source.
    Edit {
        seed: u64,
    },
    /// A run with the clock off by `clock` seconds; SIGKILLed (the whole
    /// process group) after `kill_ms` if that is set.
    Run {
        backend: Backend,
        clock: i64,
        kill_ms: Option<u64>,
    },
    /// `nbkp snapshots prune` (not `-n`) with the clock off by `clock`.
    Prune {
        clock: i64,
    },
    Unplug,
    Replug,
    /// A filler file takes all but a few KiB of the drive.
    Fill,
    /// The filler goes.
    Free,
}

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;
/// libfaketime's year.
const YEAR: i64 = 365 * DAY;

fn clock_text(offset: i64) -> String {
    let unit = |n: i64| match n.abs() {
        a if a >= YEAR && a % YEAR == 0 => format!("{}y", a / YEAR),
        a if a >= DAY && a % DAY == 0 => format!("{}d", a / DAY),
        a if a % HOUR == 0 => format!("{}h", a / HOUR),
        a => format!("{a}s"),
    };
    match offset {
        0 => "true clock".into(),
        o if o < 0 => format!("clock {} behind", unit(o)),
        o => format!("clock {} ahead", unit(o)),
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Edit { seed } => write!(f, "edit the source (seed {seed:#x})"),
            Step::Run {
                backend,
                clock,
                kill_ms: None,
            } => write!(f, "run {}, {}", backend.name(), clock_text(*clock)),
            Step::Run {
                backend,
                clock,
                kill_ms: Some(ms),
            } => write!(
                f,
                "run {}, {}, SIGKILL after {ms} ms",
                backend.name(),
                clock_text(*clock)
            ),
            Step::Prune { clock } => write!(f, "nbkp snapshots prune, {}", clock_text(*clock)),
            Step::Unplug => write!(f, "unplug the drive"),
            Step::Replug => write!(f, "replug the drive"),
            Step::Fill => write!(f, "fill the drive"),
            Step::Free => write!(f, "free the drive"),
        }
    }
}

/// A clock for one run: mostly right, sometimes behind (a Raspberry Pi
/// before NTP), sometimes far ahead.
fn draw_clock(rng: &mut Rng) -> i64 {
    match rng.below(100) {
        0..=54 => 0,
        55..=74 => -*rng.pick(&[3 * HOUR, DAY, 5 * DAY, 40 * DAY]),
        _ => *rng.pick(&[2 * HOUR, 3 * DAY, 45 * DAY, 10 * YEAR]),
    }
}

/// A retention policy, as the YAML inside the snapshot block.
fn draw_policy(rng: &mut Rng) -> String {
    let mut parts = Vec::new();
    if rng.percent(50) {
        parts.push(format!("max-snapshots: {}", rng.range(1, 4)));
    }
    if rng.percent(65) {
        let rules = [
            "keep-last",
            "keep-within",
            "keep-hourly",
            "keep-daily",
            "keep-weekly",
            "keep-monthly",
            "keep-yearly",
            "max-age",
        ];
        let mut chosen = BTreeMap::new();
        for _ in 0..rng.range(1, 3) {
            let rule = *rng.pick(&rules);
            let value = match rule {
                "keep-within" => rng.pick(&["1h", "2d", "30d"]).to_string(),
                "max-age" => rng.pick(&["2d", "30d", "1y"]).to_string(),
                "keep-yearly" if rng.percent(30) => "all".to_string(),
                _ => rng.range(1, 4).to_string(),
            };
            chosen.insert(rule, value);
        }
        let rules: Vec<String> = chosen.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        parts.push(format!("retention: {{{}}}", rules.join(", ")));
    }
    parts.join(", ")
}

struct Case {
    seed: u64,
    dest: Dest,
    policy: String,
    steps: Vec<Step>,
}

fn plan(seed: u64, dest: Dest) -> Case {
    let mut rng = Rng(seed);
    let policy = draw_policy(&mut rng);
    let n = rng.range(10, 18);
    let mut plugged = true;
    let mut full = false;
    let mut backend = if rng.percent(50) {
        Backend::NbkpRun
    } else {
        Backend::Script
    };
    let mut steps = Vec::new();
    while steps.len() < n as usize {
        let step = match rng.below(100) {
            0..=21 => Step::Edit { seed: rng.next() },
            22..=69 => {
                let clock = draw_clock(&mut rng);
                let kill_ms = rng.percent(30).then(|| rng.range(0, 700));
                let b = backend;
                // Both back-ends, alternately.
                backend = match b {
                    Backend::NbkpRun => Backend::Script,
                    Backend::Script => Backend::NbkpRun,
                };
                Step::Run {
                    backend: b,
                    clock,
                    kill_ms,
                }
            }
            70..=79 => Step::Prune {
                clock: draw_clock(&mut rng),
            },
            80..=89 if plugged => {
                plugged = false;
                Step::Unplug
            }
            80..=89 => {
                plugged = true;
                Step::Replug
            }
            _ if !plugged => continue,
            _ if full => {
                full = false;
                Step::Free
            }
            _ => {
                full = true;
                Step::Fill
            }
        };
        steps.push(step);
    }
    Case {
        seed,
        dest,
        policy,
        steps,
    }
}

// ---------------------------------------------------------------- the bed

/// A source folder, a destination drive, a config and the generated script.
struct Bed {
    tmp: tempfile::TempDir,
    src: PathBuf,
    drive: Drive,
    config: PathBuf,
    script: PathBuf,
    /// The digest cache: file content by inode and change time.
    cache: HashMap<(u64, u64, i64, i64, u64), u64>,
}

/// The endpoint directory on the drive.
const ENDPOINT: &str = "backup";
const FILLER: &str = "filler";

impl Bed {
    fn new(case: &Case) -> Bed {
        let tmp = testbed::temp_dir("nothing-lost");
        let src = tmp.path().join("src");
        fs::create_dir(&src).unwrap();
        fs::write(src.join(".nbkp-vol"), "").unwrap();
        fs::write(src.join(".nbkp-src"), "").unwrap();
        let drive = match case.dest {
            Dest::HardLink => Drive::new("nblost"),
            Dest::Btrfs => Drive::builder("nblost").btrfs().build(),
        };
        let mnt = drive.mountpoint().to_path_buf();
        fs::write(mnt.join(".nbkp-vol"), "").unwrap();
        let ep = mnt.join(ENDPOINT);
        fs::create_dir_all(ep.join("snapshots")).unwrap();
        fs::write(ep.join(".nbkp-dst"), "").unwrap();
        std::os::unix::fs::symlink("/dev/null", ep.join("latest")).unwrap();
        let block = match case.dest {
            Dest::HardLink => "hard-link-snapshots",
            Dest::Btrfs => {
                testbed::check(
                    Command::new("btrfs")
                        .args(["-q", "subvolume", "create"])
                        .arg(ep.join("staging")),
                );
                "btrfs-snapshots"
            }
        };
        let policy = if case.policy.is_empty() {
            String::new()
        } else {
            format!(", {}", case.policy)
        };
        let yaml = format!(
            "volumes:\n  s: {{type: local, path: \"{}\"}}\n  d: {{type: local, path: \"{}\"}}\n\
             sync-endpoints:\n  es: {{volume: s}}\n  ed: {{volume: d, subdir: {ENDPOINT}, {block}: {{enabled: true{policy}}}}}\n\
             syncs:\n  copy: {{source: es, destination: ed, rsync-options: {{extra-options: [--bwlimit=8M]}}}}\n",
            src.display(),
            mnt.display()
        );
        let config = tmp.path().join("config.yaml");
        fs::write(&config, yaml).unwrap();
        let script = tmp.path().join("backup.sh");
        testbed::check(
            Command::new(env!("CARGO_BIN_EXE_nbkp"))
                .args(["sh", "-c"])
                .arg(&config)
                .arg("-o")
                .arg(&script),
        );
        let mut bed = Bed {
            tmp,
            src,
            drive,
            config,
            script,
            cache: HashMap::new(),
        };
        bed.initial_source(case.seed);
        bed
    }

    fn endpoint(&self) -> PathBuf {
        self.drive.mountpoint().join(ENDPOINT)
    }

    fn initial_source(&mut self, seed: u64) {
        let mut rng = Rng(seed ^ 0x5eed);
        for d in ["d0", "d1/deep", "d2"] {
            fs::create_dir_all(self.src.join(d)).unwrap();
        }
        for i in 0..8 {
            let dir = rng.pick(&["d0", "d1", "d1/deep", "d2", "."]).to_string();
            let len = rng.range(0, 16 * 1024) as usize;
            fs::write(self.src.join(dir).join(format!("f{i}.txt")), rng.bytes(len)).unwrap();
        }
        std::os::unix::fs::symlink("d0", self.src.join("link")).unwrap();
        fs::write(self.src.join("big.bin"), rng.bytes(1024 * 1024)).unwrap();
    }

    /// The source's regular files, sorted (what an edit may change).
    fn source_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(&self.src, &mut |p, m| {
            if m.is_file() && !is_nbkp_name(p) {
                out.push(p.to_path_buf());
            }
        });
        out.sort();
        out
    }

    /// One to four changes: a new file, a file rewritten (another size, so
    /// rsync's quick check sees it), a file deleted, the big file rewritten.
    fn edit(&mut self, seed: u64) -> String {
        let mut rng = Rng(seed);
        let mut done = Vec::new();
        for _ in 0..rng.range(1, 4) {
            let files = self.source_files();
            match rng.below(4) {
                0 => {
                    let dir = rng.pick(&["d0", "d1", "d1/deep", "d2", "."]).to_string();
                    let p = self
                        .src
                        .join(dir)
                        .join(format!("n{:x}.txt", rng.below(1 << 20)));
                    let len = rng.range(0, 16 * 1024) as usize;
                    fs::write(&p, rng.bytes(len)).unwrap();
                    done.push(format!("+{}", self.rel(&p)));
                }
                1 if !files.is_empty() => {
                    let p = rng.pick(&files).clone();
                    let old = fs::metadata(&p).unwrap().len() as usize;
                    let len = (old + 1 + rng.below(8 * 1024) as usize) % (20 * 1024);
                    let len = if len == old { len + 1 } else { len };
                    fs::write(&p, rng.bytes(len)).unwrap();
                    done.push(format!("~{}", self.rel(&p)));
                }
                2 if !files.is_empty() => {
                    let p = rng.pick(&files).clone();
                    fs::remove_file(&p).unwrap();
                    done.push(format!("-{}", self.rel(&p)));
                }
                _ => {
                    let len = rng.range(1024 * 1024, 3 * 1024 * 1024) as usize;
                    fs::write(self.src.join("big.bin"), rng.bytes(len)).unwrap();
                    done.push("~big.bin".into());
                }
            }
        }
        done.join(" ")
    }

    fn rel(&self, p: &Path) -> String {
        p.strip_prefix(&self.src).unwrap().display().to_string()
    }

    /// Starts a run in its own process group, its output (stdout and stderr
    /// together) going to `out`.
    fn spawn(&self, what: &Step, out: &Path) -> Child {
        let (args, clock): (Vec<String>, i64) = match what {
            Step::Run {
                backend: Backend::NbkpRun,
                clock,
                ..
            } => (
                vec![
                    env!("CARGO_BIN_EXE_nbkp").into(),
                    "run".into(),
                    "-c".into(),
                    self.config.display().to_string(),
                ],
                *clock,
            ),
            Step::Run {
                backend: Backend::Script,
                clock,
                ..
            } => (
                vec![
                    Shell::Dash.program().into(),
                    self.script.display().to_string(),
                ],
                *clock,
            ),
            Step::Prune { clock } => (
                vec![
                    env!("CARGO_BIN_EXE_nbkp").into(),
                    "snapshots".into(),
                    "prune".into(),
                    "-c".into(),
                    self.config.display().to_string(),
                ],
                *clock,
            ),
            other => panic!("not a run: {other}"),
        };
        let mut cmd = if clock == 0 {
            Command::new(&args[0])
        } else {
            // libfaketime: this process and everything it starts (dash,
            // rsync, date) see the wrong wall clock; intervals stay true.
            let mut c = Command::new("faketime");
            c.arg("-f")
                .arg(format!("{clock:+}"))
                .arg(&args[0])
                .env("DONT_FAKE_MONOTONIC", "1")
                .env("NO_FAKE_STAT", "1");
            c
        };
        let file = fs::File::create(out).unwrap();
        cmd.args(&args[1..])
            .env("XDG_STATE_HOME", self.tmp.path().join("state"))
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .process_group(0);
        cmd.spawn().expect("start a run")
    }

    /// Fills the drive but for a few KiB: filler files in `filler/`,
    /// allocated until the filesystem (after a sync: btrfs reports its
    /// free space late) has almost nothing left.
    fn fill(&self) {
        use std::os::fd::AsRawFd;
        let dir = self.drive.mountpoint().join(FILLER);
        fs::create_dir_all(&dir).unwrap();
        for k in 0..8 {
            let Ok(f) = fs::File::create(dir.join(k.to_string())) else {
                return; // not even room for a new file
            };
            // SAFETY: syncfs and fstatvfs on an open file descriptor.
            let free = unsafe {
                libc::syncfs(f.as_raw_fd());
                let mut s: libc::statvfs = std::mem::zeroed();
                assert_eq!(libc::fstatvfs(f.as_raw_fd(), &mut s), 0);
                s.f_bavail * s.f_frsize
            };
            if free < 256 * 1024 {
                return;
            }
            let mut want = (free - 64 * 1024) as i64;
            // SAFETY: fallocate on an open file descriptor.
            while want > 4096 && unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, want) } != 0 {
                want = want * 9 / 10;
            }
        }
    }

    fn free(&self) {
        let _ = fs::remove_dir_all(self.drive.mountpoint().join(FILLER));
    }

    fn unplug(&self) {
        // A process just killed may still hold the drive for a moment.
        let mut last = String::new();
        for _ in 0..50 {
            match self.drive.try_unplug() {
                Ok(()) => return,
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("could not unplug the drive: {last}");
    }
}

/// Names nbkp keeps for itself (sentinels, locks): not part of a tree's content.
fn is_nbkp_name(p: &Path) -> bool {
    p.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with(".nbkp-"))
}

/// Every entry under `root` (not following symlinks), `root` excluded.
fn walk(root: &Path, f: &mut dyn FnMut(&Path, &fs::Metadata)) {
    let Ok(rd) = fs::read_dir(root) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(m) = fs::symlink_metadata(&p) else {
            continue;
        };
        f(&p, &m);
        if m.is_dir() {
            walk(&p, f);
        }
    }
}

// ---------------------------------------------------------------- observing

/// `YYYY-MM-DDTHH:MM:SS…Z` (or with `-` between the time's fields): the
/// name of a complete snapshot. Anything else in `snapshots/` (notably
/// `.nbkp-partial-*`, `.nbkp-removing-*`) is not one.
fn is_snapshot_name(s: &str) -> bool {
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

/// Seconds since the epoch of a snapshot name (its date and time to the second).
fn name_time(name: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| name[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * DAY + n(11..13) * HOUR + n(14..16) * 60 + n(17..19)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// What `latest` is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Latest {
    /// `/dev/null`: no snapshot yet.
    Nothing,
    /// `snapshots/<NAME>`.
    Snapshot(String),
    /// Anything else, or missing.
    Other(String),
}

/// The destination as the invariants see it.
#[derive(Clone, Debug)]
struct View {
    latest: Latest,
    /// Complete snapshots and their trees' digests.
    snapshots: BTreeMap<String, String>,
    /// Everything else in `snapshots/` (unfinished work).
    other: BTreeSet<String>,
}

impl View {
    fn newest(&self) -> Option<&String> {
        self.snapshots
            .keys()
            .max_by_key(|n| (name_time(n), n.to_string()))
    }
}

impl Bed {
    fn view(&mut self) -> View {
        let ep = self.endpoint();
        let latest = match fs::read_link(ep.join("latest")) {
            Ok(t) if t == Path::new("/dev/null") => Latest::Nothing,
            Ok(t) => match t.to_str().and_then(|t| t.strip_prefix("snapshots/")) {
                Some(n) if !n.contains('/') => Latest::Snapshot(n.to_string()),
                _ => Latest::Other(t.display().to_string()),
            },
            Err(e) => Latest::Other(format!("unreadable: {e}")),
        };
        let mut snapshots = BTreeMap::new();
        let mut other = BTreeSet::new();
        for e in fs::read_dir(ep.join("snapshots")).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            if is_dir && is_snapshot_name(&name) {
                let digest = self.digest(&e.path());
                snapshots.insert(name, digest);
            } else {
                other.insert(name);
            }
        }
        View {
            latest,
            snapshots,
            other,
        }
    }

    /// A listing of a tree's content: paths, types, content hashes, link
    /// targets; nbkp's own `.nbkp-*` files left out.
    fn digest(&mut self, root: &Path) -> String {
        let mut entries = Vec::new();
        walk(root, &mut |p, m| {
            if p.ancestors().take_while(|a| *a != root).any(is_nbkp_name) {
                return;
            }
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            entries.push((rel, p.to_path_buf(), m.clone()));
        });
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = String::new();
        for (rel, p, m) in entries {
            if m.file_type().is_symlink() {
                let t = fs::read_link(&p).unwrap();
                let _ = writeln!(out, "L {rel} -> {}", t.display());
            } else if m.is_dir() {
                let _ = writeln!(out, "D {rel}");
            } else {
                let key = (m.dev(), m.ino(), m.ctime(), m.ctime_nsec(), m.len());
                let h = match self.cache.get(&key) {
                    Some(h) => *h,
                    None => {
                        let mut hasher = std::collections::hash_map::DefaultHasher::new();
                        hasher.write(&fs::read(&p).unwrap());
                        let h = hasher.finish();
                        self.cache.insert(key, h);
                        h
                    }
                };
                let _ = writeln!(out, "F {rel} {} {h:016x}", m.len());
            }
        }
        out
    }

    /// The state of the unplugged drive's mountpoint: an empty directory on
    /// the parent filesystem.
    fn mountpoint_state(&self) -> String {
        let mnt = self.drive.mountpoint();
        let parent = fs::metadata(mnt.parent().unwrap()).unwrap();
        match fs::symlink_metadata(mnt) {
            Ok(m) if m.is_dir() => {
                let entries: Vec<String> = fs::read_dir(mnt)
                    .unwrap()
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                format!(
                    "dir mode {:o}, {}, entries {entries:?}",
                    m.permissions().mode() & 0o7777,
                    if m.dev() == parent.dev() {
                        "on the parent filesystem"
                    } else {
                        "a mount"
                    }
                )
            }
            Ok(_) => "not a directory".into(),
            Err(e) => format!("missing: {e}"),
        }
    }
}

/// Names the output says retention pruned: `pruned snapshot <NAME> (retention: …`.
fn pruned_by_retention(output: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in output.lines() {
        if let Some(i) = line.find("pruned snapshot ") {
            let rest = &line[i + "pruned snapshot ".len()..];
            if let Some((name, _)) = rest.split_once(" (retention: ") {
                names.insert(name.trim().to_string());
            }
        }
    }
    names
}

// ---------------------------------------------------------------- checking

/// What a step did, as far as the invariants care.
struct Done {
    /// Exit code, or `None` when killed.
    code: Option<i32>,
    output: String,
    /// The fake wall clock when the run started.
    clock_at_start: Option<i64>,
    is_run: bool,
}

struct Violation {
    invariant: &'static str,
    detail: String,
}

/// What the checks remember between steps.
struct Record {
    /// The source's digest at the start of every run.
    sources: Vec<String>,
    /// The destination at the last check with the drive plugged.
    view: View,
    /// The mountpoint as it was when the drive was unplugged.
    unplugged: Option<String>,
    /// Every snapshot `latest` has named, and the step that made it so.
    was_latest: BTreeMap<String, usize>,
}

impl Record {
    /// How a snapshot that went was known, for the report.
    fn history(&self, name: &str) -> String {
        match self.was_latest.get(name) {
            Some(step) => format!(" (it was latest after step {step})"),
            None => " (it was never latest)".into(),
        }
    }
}

fn check_step(
    bed: &mut Bed,
    rec: &mut Record,
    step: usize,
    done: &Done,
    case: &Case,
) -> Vec<Violation> {
    let mut v = Vec::new();
    // (d) nothing written to an unplugged drive's mountpoint.
    if let Some(before) = &rec.unplugged {
        let now = bed.mountpoint_state();
        if &now != before {
            v.push(Violation {
                invariant: "(d) nothing is written to an unplugged drive's mountpoint",
                detail: format!("was: {before}\nnow: {now}"),
            });
        }
        return v;
    }
    let before = rec.view.clone();
    let after = bed.view();

    // (a) latest names a complete snapshot of a source state.
    match &after.latest {
        Latest::Nothing if !rec.was_latest.is_empty() => v.push(Violation {
            invariant: "(a) latest names a complete snapshot",
            detail: "latest fell back to /dev/null".into(),
        }),
        Latest::Nothing => {}
        Latest::Other(t) => v.push(Violation {
            invariant: "(a) latest names a complete snapshot",
            detail: format!("latest -> {t}"),
        }),
        Latest::Snapshot(n) => match after.snapshots.get(n) {
            None => v.push(Violation {
                invariant: "(a) latest names a complete snapshot",
                detail: format!(
                    "latest -> snapshots/{n}, which is not a complete snapshot (in snapshots/: {:?} {:?})",
                    after.snapshots.keys().collect::<Vec<_>>(),
                    after.other
                ),
            }),
            Some(tree) if !rec.sources.contains(tree) => v.push(Violation {
                invariant: "(a) latest is a state the source had at the start of a run",
                detail: format!(
                    "latest -> {n}:\n{tree}\nclosest state of the source:\n{}",
                    rec.sources.last().cloned().unwrap_or_default()
                ),
            }),
            Some(_) => {}
        },
    }
    if let Latest::Snapshot(n) = &after.latest {
        rec.was_latest.entry(n.clone()).or_insert(step);
    }

    // (b) complete snapshots stay, unchanged, unless retention says it pruned them.
    let named = pruned_by_retention(&done.output);
    let killed = done.code.is_none();
    let latest_at_start = match &before.latest {
        Latest::Snapshot(n) => Some(n.clone()),
        _ => None,
    };
    let newest_at_start = before.newest().cloned();
    let clock_behind = match (done.clock_at_start, &newest_at_start) {
        (Some(c), Some(n)) => c + 60 < name_time(n),
        _ => false,
    };
    let policy_prunes = !case.policy.is_empty();
    for (name, tree) in &before.snapshots {
        match after.snapshots.get(name) {
            Some(t) if t != tree => v.push(Violation {
                invariant: "(b) a complete snapshot never changes",
                detail: format!("{name} was:\n{tree}\nis now:\n{t}"),
            }),
            Some(_) => {}
            None => {
                // (c) the pair rule.
                if latest_at_start.as_deref() == Some(name.as_str()) {
                    v.push(Violation {
                        invariant: if done.is_run {
                            "(c) a run never removes the snapshot that was latest when it started"
                        } else {
                            "(c) snapshots prune never removes latest"
                        },
                        detail: format!(
                            "{name} was latest and is gone{}{}",
                            rec.history(name),
                            if named.contains(name) {
                                " (the output names a retention rule)"
                            } else {
                                ""
                            }
                        ),
                    });
                } else if done.is_run && clock_behind {
                    // (e) a clock behind the newest snapshot prunes nothing.
                    v.push(Violation {
                        invariant: "(e) a run whose clock is behind the newest snapshot prunes nothing",
                        detail: format!(
                            "{name} is gone{}; the run's clock started at {} s, the newest snapshot is {}",
                            rec.history(name),
                            done.clock_at_start.unwrap(),
                            newest_at_start.clone().unwrap()
                        ),
                    });
                } else if named.contains(name) {
                } else if killed && policy_prunes {
                    // A run killed between a removal by retention and the
                    // line that reports it cannot have said so; the pair
                    // rule and (e) above still hold for it.
                } else {
                    v.push(Violation {
                        invariant: "(b) a complete snapshot stays unless a retention rule named in the output removed it",
                        detail: format!(
                            "{name} is gone{}; the output has no `pruned snapshot {name} (retention: …)` line",
                            rec.history(name)
                        ),
                    });
                }
            }
        }
    }
    // (f) a new snapshot is the newest name, and latest names it.
    let made = after
        .snapshots
        .keys()
        .any(|n| !before.snapshots.contains_key(n));
    if done.is_run && done.code == Some(0) && made {
        if let Latest::Snapshot(n) = &after.latest {
            if after.newest() != Some(n) {
                v.push(Violation {
                    invariant: "(f) a run that makes a snapshot leaves latest at the newest name",
                    detail: format!("latest -> {n}, newest {:?}", after.newest()),
                });
            }
        }
    }
    rec.view = after;
    v
}

// ---------------------------------------------------------------- running

struct Failure {
    report: String,
    summary: String,
}

/// The steps to perform: all, or those `NBKP_PROPTEST_STEPS` lists
/// (`0,3,5-9`).
fn selected_steps(n: usize) -> Vec<usize> {
    let spec = std::env::var("NBKP_PROPTEST_STEPS").unwrap_or_default();
    if spec.trim().is_empty() {
        return (0..n).collect();
    }
    let mut out = BTreeSet::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
        out.extend((a..=b).filter(|i| *i < n));
    }
    out.into_iter().collect()
}

fn test_name(dest: Dest) -> &'static str {
    match dest {
        Dest::HardLink => "hard_link",
        Dest::Btrfs => "btrfs",
    }
}

/// Waits for a run (bounded), then for its whole process group to be gone.
fn wait_run(child: &mut Child, kill_ms: Option<u64>) -> Option<i32> {
    let pgid = child.id() as i32;
    let start = Instant::now();
    let mut code = None;
    let limit = Duration::from_secs(120);
    loop {
        if let Some(ms) = kill_ms {
            if start.elapsed() >= Duration::from_millis(ms) {
                // SAFETY: kill(2) on the run's own process group.
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
                let _ = child.wait();
                break;
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            code = Some(status.code().unwrap_or(-1));
            break;
        }
        assert!(start.elapsed() < limit, "a run took over {limit:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
    // Whatever the run started (rsync) dies with it; zombies waiting to
    // be reaped by init hold nothing open.
    while group_has_live_process(pgid) {
        // SAFETY: kill(2) on the run's own process group.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        assert!(start.elapsed() < limit, "a run's processes would not die");
        std::thread::sleep(Duration::from_millis(5));
    }
    code
}

/// Whether a process of group `pgid` is alive (not a zombie), from /proc.
fn group_has_live_process(pgid: i32) -> bool {
    let Ok(rd) = fs::read_dir("/proc") else {
        return false;
    };
    rd.flatten().any(|e| {
        let Ok(stat) = fs::read_to_string(e.path().join("stat")) else {
            return false;
        };
        // `pid (comm) state ppid pgrp …`; comm may contain anything but
        // ends at the last `)`.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        f.len() > 2 && f[2] == pgid.to_string() && f[0] != "Z" && f[0] != "X"
    })
}

impl Record {
    fn new(bed: &mut Bed) -> Record {
        Record {
            sources: Vec::new(),
            view: bed.view(),
            unplugged: None,
            was_latest: BTreeMap::new(),
        }
    }
}

/// Performs one step; what it did.
fn perform(bed: &mut Bed, rec: &mut Record, i: usize, step: &Step) -> Done {
    let out_path = bed.tmp.path().join(format!("step-{i}.out"));
    match step {
        Step::Edit { seed } => {
            let what = bed.edit(*seed);
            Done {
                code: Some(0),
                output: what,
                clock_at_start: None,
                is_run: false,
            }
        }
        Step::Run { clock, .. } | Step::Prune { clock } => {
            let kill_ms = if let Step::Run { kill_ms, .. } = step {
                *kill_ms
            } else {
                None
            };
            let is_run = matches!(step, Step::Run { .. });
            if is_run {
                let src = bed.src.clone();
                let d = bed.digest(&src);
                rec.sources.push(d);
            }
            let clock_at_start = now() + clock;
            let mut child = bed.spawn(step, &out_path);
            let code = wait_run(&mut child, kill_ms);
            Done {
                code,
                output: fs::read_to_string(&out_path).unwrap_or_default(),
                clock_at_start: Some(clock_at_start),
                is_run,
            }
        }
        Step::Unplug | Step::Replug | Step::Fill | Step::Free => {
            // Steps of a shortened replay may no longer fit the drive's state.
            let plugged = rec.unplugged.is_none();
            let full = bed.drive.mountpoint().join(FILLER).exists();
            match step {
                Step::Unplug if plugged => {
                    bed.unplug();
                    rec.unplugged = Some(bed.mountpoint_state());
                }
                Step::Replug if !plugged => {
                    bed.drive.plug();
                    rec.unplugged = None;
                }
                Step::Fill if plugged && !full => bed.fill(),
                Step::Free if plugged && full => bed.free(),
                _ => {}
            }
            Done {
                code: Some(0),
                output: String::new(),
                clock_at_start: None,
                is_run: false,
            }
        }
    }
}

fn run_case(case: &Case) -> Result<(), Failure> {
    let mut bed = Bed::new(case);
    let mut rec = Record::new(&mut bed);
    let mut log = String::new();
    for i in selected_steps(case.steps.len()) {
        let step = &case.steps[i];
        let started = Instant::now();
        let done = perform(&mut bed, &mut rec, i, step);
        let result = match done.code {
            None => "killed".to_string(),
            Some(c) if matches!(step, Step::Run { .. } | Step::Prune { .. }) => {
                format!("exit {c}")
            }
            Some(_) if !done.output.is_empty() => done.output.clone(),
            Some(_) => "done".to_string(),
        };
        let _ = writeln!(
            log,
            "  {i:>2}. {step} -> {result} ({} ms)",
            started.elapsed().as_millis()
        );
        check_fault_took_effect(&mut bed, &rec, step, &done);
        let violations = check_step(&mut bed, &mut rec, i, &done, case);
        if !violations.is_empty() {
            let mut report = String::new();
            let _ = writeln!(
                report,
                "nothing lost: {} destination, seed {:#018x}\n  replay: NBKP_PROPTEST_SEED={:#018x}{} cargo test --test nothing_lost {} -- --nocapture\n  policy: {}\n  steps:\n{log}  broke at step {i}:",
                test_name(case.dest),
                case.seed,
                case.seed,
                std::env::var("NBKP_PROPTEST_STEPS")
                    .ok()
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| format!(" NBKP_PROPTEST_STEPS={s}"))
                    .unwrap_or_default(),
                test_name(case.dest),
                if case.policy.is_empty() { "(none: keep everything)" } else { &case.policy },
            );
            for v in &violations {
                let _ = writeln!(
                    report,
                    "  {}\n    {}",
                    v.invariant,
                    v.detail.replace('\n', "\n    ")
                );
            }
            if matches!(step, Step::Run { .. } | Step::Prune { .. }) {
                let _ = writeln!(
                    report,
                    "  output of step {i}:\n    {}",
                    done.output.trim_end().replace('\n', "\n    ")
                );
            }
            let _ = writeln!(report, "  the plan ({} steps):", case.steps.len());
            for (j, s) in case.steps.iter().enumerate() {
                let _ = writeln!(report, "  {j:>2}. {s}");
            }
            return Err(Failure {
                summary: format!(
                    "seed {:#018x}: step {i} ({step}): {}",
                    case.seed, violations[0].invariant
                ),
                report,
            });
        }
    }
    Ok(())
}

/// The test's own faults must be real: a run ten years ahead that made a
/// snapshot gave it a name ten years ahead (else libfaketime did nothing
/// and the clock cases test nothing).
fn check_fault_took_effect(bed: &mut Bed, rec: &Record, step: &Step, done: &Done) {
    let Step::Run { clock, .. } = step else {
        return;
    };
    if *clock < YEAR || done.code != Some(0) || rec.unplugged.is_some() {
        return;
    }
    let after = bed.view();
    let new: Vec<&String> = after
        .snapshots
        .keys()
        .filter(|n| !rec.view.snapshots.contains_key(*n))
        .collect();
    for n in new {
        assert!(
            name_time(n) > now() + clock - 2 * DAY,
            "the run ran {} yet made snapshot {n}: libfaketime had no effect\n{}",
            clock_text(*clock),
            done.output
        );
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    Some(match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("{name}={v}")),
        None => v.parse().unwrap_or_else(|_| panic!("{name}={v}")),
    })
}

fn nothing_lost(dest: Dest) {
    let mut needs = vec![
        Component::Root,
        Component::Rsync,
        Component::Shell(Shell::Dash),
        Component::Faketime,
    ];
    needs.extend_from_slice(Drive::COMPONENTS);
    if dest == Dest::Btrfs {
        needs.push(Component::Btrfs);
    }
    if !require(&needs) {
        return;
    }
    let replay = env_u64("NBKP_PROPTEST_SEED");
    let cases = env_u64("NBKP_PROPTEST_CASES").unwrap_or(match (replay, testbed::in_ci()) {
        (Some(_), _) => 1,
        (None, true) => 120,
        (None, false) => 12,
    });
    // One seed replays one sequence; without one, a fresh base each time.
    let base = replay.unwrap_or_else(|| {
        let mut r = Rng(SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            ^ u64::from(std::process::id()) << 32);
        r.next()
    });
    let max_failures = env_u64("NBKP_PROPTEST_MAX_FAILURES").unwrap_or(5) as usize;
    let start = Instant::now();
    let mut failures = Vec::new();
    for i in 0..cases {
        let seed = if i == 0 {
            base
        } else {
            Rng(base.wrapping_add(i)).next()
        };
        let case = plan(seed, dest);
        if let Err(f) = run_case(&case) {
            eprintln!("{}", f.report);
            failures.push(f);
            if failures.len() >= max_failures {
                break;
            }
        }
    }
    eprintln!(
        "nothing lost ({}): {} sequences in {:.1} s, {} failed",
        test_name(dest),
        cases,
        start.elapsed().as_secs_f64(),
        failures.len()
    );
    if !failures.is_empty() {
        let list: Vec<&str> = failures.iter().map(|f| f.summary.as_str()).collect();
        panic!(
            "{} sequence(s) lost something:\n  {}\n\nthe first:\n{}",
            failures.len(),
            list.join("\n  "),
            failures[0].report
        );
    }
}

/// The checks themselves: each invariant, broken by hand on a real
/// destination, is reported; a removal the output names is not.
#[test]
fn the_checks_see_every_kind_of_loss() {
    let mut needs = vec![Component::Root, Component::Rsync];
    needs.extend_from_slice(Drive::COMPONENTS);
    if !require(&needs) {
        return;
    }
    let case = Case {
        seed: 1,
        dest: Dest::HardLink,
        policy: String::new(),
        steps: Vec::new(),
    };
    let mut bed = Bed::new(&case);
    let mut rec = Record::new(&mut bed);
    let run = Step::Run {
        backend: Backend::NbkpRun,
        clock: 0,
        kill_ms: None,
    };
    let nothing = |is_run: bool| Done {
        code: Some(0),
        output: String::new(),
        clock_at_start: is_run.then(now),
        is_run,
    };
    let broken =
        |v: Vec<Violation>| -> Vec<&'static str> { v.iter().map(|v| &v.invariant[..3]).collect() };
    for i in 0..3 {
        bed.edit(i);
        let done = perform(&mut bed, &mut rec, i as usize, &run);
        assert_eq!(done.code, Some(0), "{}", done.output);
        assert!(broken(check_step(&mut bed, &mut rec, 0, &done, &case)).is_empty());
    }
    let snaps = bed.endpoint().join("snapshots");
    let names: Vec<String> = rec.view.snapshots.keys().cloned().collect();
    assert_eq!(names.len(), 3, "{names:?}");
    let Latest::Snapshot(latest) = rec.view.latest.clone() else {
        panic!("no latest")
    };

    // (b): a snapshot gone silently; then one gone with a retention line.
    fs::remove_dir_all(snaps.join(&names[0])).unwrap();
    assert_eq!(
        broken(check_step(&mut bed, &mut rec, 0, &nothing(false), &case)),
        ["(b)"]
    );
    fs::remove_dir_all(snaps.join(&names[1])).unwrap();
    let named = Done {
        output: format!(
            "x: pruned snapshot {} (retention: over max-snapshots 1)\n",
            names[1]
        ),
        ..nothing(true)
    };
    assert!(broken(check_step(&mut bed, &mut rec, 0, &named, &case)).is_empty());
    // (b): a complete snapshot changed.
    fs::write(snaps.join(&latest).join("big.bin"), "changed").unwrap();
    let v = broken(check_step(&mut bed, &mut rec, 0, &nothing(false), &case));
    assert!(v.contains(&"(b)"), "{v:?}");
    // (a): latest on something that is no source state.
    assert!(v.contains(&"(a)"), "{v:?}");
    // (a): latest on unfinished work.
    fs::create_dir(snaps.join(format!(".nbkp-partial-{latest}"))).unwrap();
    let link = bed.endpoint().join("latest");
    fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(format!("snapshots/.nbkp-partial-{latest}"), &link).unwrap();
    assert_eq!(
        broken(check_step(&mut bed, &mut rec, 0, &nothing(false), &case)),
        ["(a)"]
    );
    fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(format!("snapshots/{latest}"), &link).unwrap();
    check_step(&mut bed, &mut rec, 0, &nothing(false), &case);

    // (c): latest removed, even with a retention line; (e): a run behind
    // the newest snapshot removes one, even with a line.
    let done = perform(&mut bed, &mut rec, 9, &run);
    assert_eq!(done.code, Some(0), "{}", done.output);
    check_step(&mut bed, &mut rec, 0, &done, &case);
    let Latest::Snapshot(now_latest) = rec.view.latest.clone() else {
        panic!("no latest")
    };
    fs::remove_dir_all(snaps.join(&now_latest)).unwrap();
    fs::remove_dir_all(snaps.join(&latest)).unwrap();
    let lines = Done {
        output: format!(
            "pruned snapshot {now_latest} (retention: x)\npruned snapshot {latest} (retention: x)\n"
        ),
        clock_at_start: Some(now() - 30 * DAY),
        ..nothing(true)
    };
    let mut v = broken(check_step(&mut bed, &mut rec, 0, &lines, &case));
    v.sort();
    assert_eq!(v, ["(a)", "(c)", "(e)"]);

    // (d): a file on the unplugged drive's mountpoint.
    perform(&mut bed, &mut rec, 10, &Step::Unplug);
    assert!(broken(check_step(&mut bed, &mut rec, 0, &nothing(true), &case)).is_empty());
    fs::write(bed.drive.mountpoint().join("oops"), "").unwrap();
    assert_eq!(
        broken(check_step(&mut bed, &mut rec, 0, &nothing(true), &case)),
        ["(d)"]
    );
    fs::remove_file(bed.drive.mountpoint().join("oops")).unwrap();
    perform(&mut bed, &mut rec, 11, &Step::Replug);
}

/// The test's "full drive" really is full, on both filesystems.
#[test]
fn a_filled_drive_takes_no_more() {
    let mut needs = vec![Component::Root];
    needs.extend_from_slice(Drive::COMPONENTS);
    needs.push(Component::Btrfs);
    if !require(&needs) {
        return;
    }
    for dest in [Dest::HardLink, Dest::Btrfs] {
        let case = Case {
            seed: 2,
            dest,
            policy: String::new(),
            steps: Vec::new(),
        };
        let bed = Bed::new(&case);
        bed.fill();
        let probe = bed.drive.mountpoint().join("probe");
        let wrote = fs::write(&probe, vec![7u8; 1024 * 1024])
            .and_then(|_| fs::File::open(&probe)?.sync_all());
        assert!(wrote.is_err(), "{dest:?}: 1 MiB still fits on a full drive");
        let _ = fs::remove_file(&probe);
        bed.free();
        fs::write(&probe, vec![7u8; 1024 * 1024]).unwrap();
    }
}

#[test]
fn hard_link() {
    nothing_lost(Dest::HardLink);
}

#[test]
fn btrfs() {
    nothing_lost(Dest::Btrfs);
}
