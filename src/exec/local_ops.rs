//! The runtime library's per-sync operations (`nbkp_begin`, `nbkp_commit`,
//! `nbkp_abort` of `templates/lib.sh`) performed natively for destinations
//! on this machine.
//!
//! Why a second implementation: under `nbkp run` each operation sent to a
//! local `sh` costs a round trip and about seven programs (`ln`, `readlink`,
//! `mv`, `mkdir`, …), some 20 ms per sync — more than rsync itself takes
//! for a small unchanged tree. Here they are a few system calls. The
//! contract is lib.sh's, line for line: the same arguments (the plan's
//! `OpCall`s), the same output lines (`snapshot`, `latest`, `orphan`,
//! `pruned`, `warning`, `locked`) and exit codes (73 locked, 75 name
//! taken); pruning uses `retention::decide`, of which `nbkp_retain` is the
//! port. Every end-to-end scenario runs through both back-ends (the
//! script uses lib.sh), which keeps the two equal.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::values::{expand, Values};
use crate::exit::op;
use crate::plan::{Arg, Op};
use crate::retention::{decide, parse_name, Policy};

/// What an operation printed and its exit code, as the shell would give.
pub struct Done {
    pub code: i32,
    pub output: String,
}

/// Performs `op` with the run's values, if it is one this module knows;
/// `None` for any other operation.
pub fn perform(op: &Op, v: &Values) -> Option<Done> {
    let mut out = String::new();
    let x = |a: &Arg| expand(a, v).concat();
    let code = match op {
        Op::Begin {
            mode,
            dry_run,
            endpoint,
            candidate,
            owner,
            stale_lock,
        } => begin(
            mode.word(),
            x(dry_run) == "1",
            Path::new(&x(endpoint)),
            &x(candidate),
            &x(owner),
            &x(stale_lock),
            &mut out,
        ),
        Op::Commit {
            mode,
            dry_run,
            endpoint,
            snapshot,
            now,
            owner,
            rules,
        } => commit(
            mode.word(),
            x(dry_run) == "1",
            Path::new(&x(endpoint)),
            &x(snapshot),
            &x(now),
            &x(owner),
            rules,
            &mut out,
        ),
        Op::Abort {
            mode,
            dry_run,
            endpoint,
            snapshot,
            owner,
        } => abort(
            mode.word(),
            x(dry_run) == "1",
            Path::new(&x(endpoint)),
            &x(snapshot),
            &x(owner),
            &mut out,
        ),
        Op::Lock {
            dry_run,
            endpoint,
            owner,
            stale_lock,
        } => match x(dry_run) == "1" {
            true => 0,
            false => lock(Path::new(&x(endpoint)), &x(owner), &x(stale_lock), &mut out),
        },
        Op::Unlock {
            dry_run,
            endpoint,
            owner,
        } => {
            if x(dry_run) != "1" {
                unlock(Path::new(&x(endpoint)), &x(owner));
            }
            0
        }
        _ => return None,
    };
    Some(Done { code, output: out })
}

/// lib.sh's `nbkp_is_name`: `YYYY-MM-DDTHH[:-]MM[:-]SS…Z`, only the
/// characters a snapshot name has.
pub(crate) fn is_name(s: &str) -> bool {
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

fn is_dir(p: &Path) -> bool {
    p.is_dir()
}

/// `[ -e ] || [ -L ]`.
fn present(p: &Path) -> bool {
    p.symlink_metadata().is_ok()
}

/// A directory entry that `[ -d ]` accepts. The type the directory
/// listing gives costs no stat (a destination keeps hundreds of
/// snapshots); only a symlink is followed, as `[ -d ]` does.
fn entry_is_dir(e: &fs::DirEntry) -> bool {
    e.file_type()
        .is_ok_and(|t| t.is_dir() || (t.is_symlink() && e.path().is_dir()))
}

/// Snapshot names in `<ep>/snapshots`, in the glob's (byte) order.
pub(crate) fn snapshot_names(ep: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(ep.join("snapshots"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(entry_is_dir)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_name(n))
        .collect();
    names.sort();
    names
}

/// The snapshot `latest` points to, if it points to one that exists.
pub(crate) fn find_latest(ep: &Path) -> Option<String> {
    let target = fs::read_link(ep.join("latest")).ok()?;
    let name = target.to_str()?.strip_prefix("snapshots/")?;
    (is_name(name) && is_dir(&ep.join("snapshots").join(name))).then(|| name.to_string())
}

/// Keeps only characters that can never be shell syntax (`nbkp_token`).
fn token(s: &str) -> String {
    let t: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "_.-".contains(*c))
        .collect();
    if t.is_empty() {
        "unknown".into()
    } else {
        t
    }
}

fn lock_path(ep: &Path) -> PathBuf {
    ep.join(".nbkp-lock")
}

fn holder(ep: &Path) -> Option<String> {
    fs::read_link(lock_path(ep))
        .ok()
        .and_then(|t| t.to_str().map(str::to_string))
}

/// `nbkp_lock`: 0 held by us, 73 held by another run, 1 could not tell.
fn lock(ep: &Path, owner: &str, stale: &str, out: &mut String) -> i32 {
    let path = lock_path(ep);
    if stale != "-" && holder(ep).as_deref() == Some(stale) {
        let _ = fs::remove_file(&path);
        out.push_str(&format!(
            "warning removed the lock of a run that is gone ({stale})\n"
        ));
    }
    if !present(&path) && symlink(owner, &path).is_ok() {
        return 0;
    }
    let h = holder(ep);
    if h.as_deref() == Some(owner) {
        return 0;
    }
    if !present(&path) {
        return 1;
    }
    out.push_str(&format!("locked {}\n", token(h.as_deref().unwrap_or(""))));
    op::LOCKED
}

fn unlock(ep: &Path, owner: &str) {
    if holder(ep).as_deref() == Some(owner) {
        let _ = fs::remove_file(lock_path(ep));
    }
}

fn quiet(program: &str, args: &[&std::ffi::OsStr]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// lib.sh's `nbkp_prio` as a command prefix, for a `prio=NICE:CLASS:LEVEL`
/// among the rules (the sync's `priority`): `nice -n N` and, where this
/// machine has ionice, `ionice -t -c C [-n L]`. Empty without one.
fn priority_prefix(rules: &[String]) -> Vec<String> {
    let Some(token) = rules.iter().rev().find_map(|r| r.strip_prefix("prio=")) else {
        return Vec::new();
    };
    let mut parts = token.splitn(3, ':');
    let (n, c, l) = (parts.next(), parts.next(), parts.next());
    fn set(v: Option<&str>) -> Option<&str> {
        v.filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
    }
    let mut words = Vec::new();
    if let Some(n) = set(n).filter(|_| crate::programs::find("nice").is_some()) {
        words.extend(["nice".to_string(), "-n".into(), n.to_string()]);
    }
    if let Some(c) = set(c).filter(|_| crate::programs::find("ionice").is_some()) {
        words.extend([
            "ionice".to_string(),
            "-t".into(),
            "-c".into(),
            c.to_string(),
        ]);
        if let Some(l) = set(l) {
            words.extend(["-n".to_string(), l.to_string()]);
        }
    }
    words
}

/// Removes a directory tree: in-process, or through `rm -rf` under the
/// sync's priority (a lowered priority is a property of a process).
fn remove_tree(path: &Path, prio: &[String]) -> bool {
    if prio.is_empty() {
        return fs::remove_dir_all(path).is_ok();
    }
    let mut args: Vec<&std::ffi::OsStr> = prio[1..].iter().map(|w| w.as_ref()).collect();
    args.extend(["rm".as_ref(), "-rf".as_ref(), path.as_os_str()]);
    quiet(&prio[0], &args) && !path.exists()
}

/// `nbkp_remove_snapshot`: hard-link snapshots leave the name space first,
/// so an interrupted removal never leaves a half snapshot that looks whole.
fn remove_snapshot(mode: &str, ep: &Path, name: &str, prio: &[String]) -> bool {
    let path = ep.join("snapshots").join(name);
    if mode == "btrfs" {
        let _ = quiet(
            "btrfs",
            &[
                "property".as_ref(),
                "set".as_ref(),
                path.as_os_str(),
                "ro".as_ref(),
                "false".as_ref(),
            ],
        );
        let delete: [&std::ffi::OsStr; 3] =
            ["subvolume".as_ref(), "delete".as_ref(), path.as_os_str()];
        if prio.is_empty() {
            return quiet("btrfs", &delete);
        }
        let mut args: Vec<&std::ffi::OsStr> = prio[1..].iter().map(|w| w.as_ref()).collect();
        args.push("btrfs".as_ref());
        args.extend(delete);
        return quiet(&prio[0], &args);
    }
    let removing = ep.join("snapshots").join(format!(".nbkp-removing-{name}"));
    fs::rename(&path, &removing).is_ok() && remove_tree(&removing, prio)
}

fn finish_removals(ep: &Path, prio: &[String]) {
    for e in fs::read_dir(ep.join("snapshots"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if e.file_name()
            .to_string_lossy()
            .starts_with(".nbkp-removing-")
            && entry_is_dir(&e)
        {
            let _ = remove_tree(&e.path(), prio);
        }
    }
}

/// `nbkp_set_latest`: one rename over the old link.
fn set_latest(ep: &Path, name: &str) -> bool {
    let tmp = ep.join(".latest.nbkp-tmp");
    if present(&tmp) {
        let _ = fs::remove_file(&tmp);
    }
    symlink(format!("snapshots/{name}"), &tmp).is_ok()
        && fs::rename(&tmp, ep.join("latest")).is_ok()
}

/// A hard-link snapshot being written: marked unfinished by its name until
/// `commit` renames it (lib.sh's `.nbkp-partial-<name>`).
pub(crate) const PARTIAL_PREFIX: &str = ".nbkp-partial-";

fn partial(ep: &Path, name: &str) -> PathBuf {
    ep.join("snapshots").join(format!("{PARTIAL_PREFIX}{name}"))
}

/// `nbkp_newest`: the new snapshot's name, NOW (the clock's time) or,
/// when NOW is not after the newest name, 1 ms after the newest, which
/// "clock NOW NEWEST" reports.
fn new_name(names: &[String], now: &str, out: Option<&mut String>) -> String {
    let Some(newest) = names.last() else {
        return now.to_string();
    };
    let (n, t) = (parse_name(newest), parse_name(now));
    if t.unwrap_or(0) > n.unwrap_or(0) {
        return now.to_string();
    }
    if let Some(out) = out {
        out.push_str(&format!("clock {now} {newest}\n"));
    }
    crate::exec::clock::name_after(newest).unwrap_or_else(|| now.to_string())
}

fn begin(
    mode: &str,
    dry: bool,
    ep: &Path,
    candidate: &str,
    owner: &str,
    stale: &str,
    out: &mut String,
) -> i32 {
    if !dry {
        let code = lock(ep, owner, stale, out);
        if code != 0 {
            return code;
        }
    }
    if mode == "none" {
        return 0;
    }
    let name = new_name(&snapshot_names(ep), candidate, Some(out));
    if mode != "hard-link" {
        return 0;
    }
    let latest = find_latest(ep);
    if !dry {
        remove_unfinished(ep, candidate, out);
    }
    if present(&ep.join("snapshots").join(&name)) || present(&partial(ep, &name)) {
        return op::NAME_TAKEN;
    }
    let dir = partial(ep, &name);
    if !dry && fs::create_dir(&dir).is_err() {
        return if present(&dir) { op::NAME_TAKEN } else { 1 };
    }
    out.push_str(&format!("snapshot {name}\n"));
    out.push_str(&format!("latest {}\n", latest.as_deref().unwrap_or("-")));
    0
}

/// Removes what an interrupted run left marked unfinished, and only that
/// (not `candidate`'s: a name already taken is retried with another).
fn remove_unfinished(ep: &Path, candidate: &str, out: &mut String) {
    let mut names: Vec<String> = fs::read_dir(ep.join("snapshots"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(entry_is_dir)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| n.strip_prefix(PARTIAL_PREFIX).map(str::to_string))
        .filter(|n| is_name(n) && n != candidate)
        .collect();
    names.sort();
    for n in names {
        if fs::remove_dir_all(partial(ep, &n)).is_ok() {
            out.push_str(&format!("unfinished {n}\n"));
        } else {
            out.push_str(&format!(
                "warning could not remove unfinished snapshot {n}\n"
            ));
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn commit(
    mode: &str,
    dry: bool,
    ep: &Path,
    snapshot: &str,
    now: &str,
    owner: &str,
    rules: &[String],
    out: &mut String,
) -> i32 {
    if dry {
        return 0;
    }
    // btrfs names its snapshot here, as begin names a hard-link one.
    let named;
    let snapshot = if mode == "btrfs" {
        named = new_name(&snapshot_names(ep), now, None);
        named.as_str()
    } else {
        snapshot
    };
    let dest = ep.join("snapshots").join(snapshot);
    match mode {
        "btrfs" => {
            if dest.exists() {
                return op::NAME_TAKEN;
            }
            let staging = ep.join("staging");
            let ok = Command::new("btrfs")
                .args(["subvolume", "snapshot", "-r"])
                .arg(&staging)
                .arg(&dest)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return 1;
            }
            out.push_str(&format!("snapshot {snapshot}\n"));
        }
        "hard-link" => {
            let unfinished = partial(ep, snapshot);
            if is_dir(&unfinished) {
                if present(&dest) {
                    out.push_str(&format!(
                        "warning snapshot {snapshot} exists already; the new one stays unfinished\n"
                    ));
                    return 1;
                }
                if fs::rename(&unfinished, &dest).is_err() {
                    return 1;
                }
            }
            if !is_dir(&dest) {
                return 1;
            }
        }
        _ => {}
    }
    if mode != "none" {
        let previous = find_latest(ep);
        if !set_latest(ep, snapshot) {
            return 1;
        }
        if !prune(mode, ep, now, snapshot, previous.as_deref(), rules, out) {
            out.push_str("warning pruning failed; snapshots kept\n");
        }
    }
    unlock(ep, owner);
    0
}

/// `nbkp_prune` right after a commit: `latest` is the new snapshot, `now`
/// the clock's time (its name, unless the clock was behind: then nothing
/// is pruned); `keep` is what `latest` named before (the pair rule).
fn prune(
    mode: &str,
    ep: &Path,
    now: &str,
    latest: &str,
    keep: Option<&str>,
    rules: &[String],
    out: &mut String,
) -> bool {
    let prio = priority_prefix(rules);
    finish_removals(ep, &prio);
    if rules.is_empty() {
        return true;
    }
    let names = snapshot_names(ep);
    if let Some(newest) = names.last().filter(|n| *n != now) {
        out.push_str(&format!(
            "warning nothing is pruned: the clock ({now}) is behind the newest snapshot {newest}\n"
        ));
        return true;
    }
    let policy = Policy::from_tokens(rules);
    let now = parse_name(now).unwrap_or(i64::MAX);
    let mut drops: Vec<(String, &'static str)> = decide(&policy, &names, Some(latest), now)
        .into_iter()
        .filter(|d| !d.keep)
        .map(|d| {
            let rule = d.drop_rule();
            (d.name, rule)
        })
        .collect();
    drops.reverse(); // oldest first
    for (n, rule) in drops {
        if Some(n.as_str()) == keep {
            continue;
        }
        if !remove_snapshot(mode, ep, &n, &prio) {
            return false;
        }
        out.push_str(&format!("pruned {n} {rule}\n"));
    }
    true
}

fn abort(mode: &str, dry: bool, ep: &Path, snapshot: &str, owner: &str, out: &mut String) -> i32 {
    if dry {
        return 0;
    }
    let unfinished = partial(ep, snapshot);
    if mode == "hard-link"
        && is_name(snapshot)
        && is_dir(&unfinished)
        && fs::remove_dir_all(&unfinished).is_err()
    {
        out.push_str(&format!(
            "warning could not remove unfinished snapshot {snapshot}\n"
        ));
    }
    unlock(ep, owner);
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Mode;

    #[test]
    fn pruning_at_the_syncs_priority() {
        let rules = ["max=1".to_string(), "prio=19:3:-".to_string()];
        let prefix = priority_prefix(&rules);
        assert_eq!(&prefix[..3], ["nice", "-n", "19"]);
        if crate::programs::find("ionice").is_some() {
            assert_eq!(&prefix[3..], ["ionice", "-t", "-c", "3"]);
        }
        assert!(priority_prefix(&rules[..1]).is_empty());
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("t");
        fs::create_dir_all(tree.join("a/b")).unwrap();
        fs::write(tree.join("a/b/f"), "x").unwrap();
        assert!(remove_tree(&tree, &prefix));
        assert!(!tree.exists());
    }

    #[test]
    fn names_as_the_shell_sees_them() {
        assert!(is_name("2026-03-06T14:30:00.123Z"));
        assert!(is_name("2026-03-06T14-30-00.123Z"));
        assert!(!is_name("2026-03-06T14:30:00.123"));
        assert!(!is_name(".nbkp-removing-2026-03-06T14:30:00.123Z"));
        assert!(!is_name("2026-03-06T14:30:00.1/3Z"));
    }

    #[test]
    fn lock_begin_commit_abort_on_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let ep = dir.path();
        fs::create_dir(ep.join("snapshots")).unwrap();
        symlink("/dev/null", ep.join("latest")).unwrap();
        let mut out = String::new();
        let a = "2026-01-01T00:00:00.000Z";
        assert_eq!(begin("hard-link", false, ep, a, "me_b_1", "-", &mut out), 0);
        assert_eq!(out, format!("snapshot {a}\nlatest -\n"));
        assert_eq!(holder(ep).as_deref(), Some("me_b_1"));
        // Another run meets the lock.
        let mut other = String::new();
        assert_eq!(lock(ep, "you_b_2", "-", &mut other), 73);
        assert_eq!(other, "locked you_b_2\n".replace("you_b_2", "me_b_1"));
        // The name is taken now.
        assert_eq!(
            begin("hard-link", false, ep, a, "me_b_1", "-", &mut String::new()),
            75
        );
        let mut out = String::new();
        assert_eq!(
            commit(
                "hard-link",
                false,
                ep,
                a,
                a,
                "me_b_1",
                &["max=1".into()],
                &mut out
            ),
            0
        );
        assert_eq!(find_latest(ep).as_deref(), Some(a));
        assert!(holder(ep).is_none(), "released");
        // A second snapshot does not prune the first, though max is 1: it
        // was `latest` when the run started (the pair rule).
        let b = "2026-01-02T00:00:00.000Z";
        let mut out = String::new();
        begin("hard-link", false, ep, b, "me_b_1", "-", &mut out);
        assert_eq!(out, format!("snapshot {b}\nlatest {a}\n"));
        assert!(is_dir(&partial(ep, b)), "written marked unfinished");
        assert!(!present(&ep.join("snapshots").join(b)));
        let max1 = ["max=1".to_string()];
        let mut out = String::new();
        commit("hard-link", false, ep, b, b, "me_b_1", &max1, &mut out);
        assert_eq!(out, "");
        assert_eq!(snapshot_names(ep), [a, b]);
        // The third does, naming the rule; an abort removes only its own.
        let c = "2026-01-03T00:00:00.000Z";
        begin("hard-link", false, ep, c, "me_b_1", "-", &mut String::new());
        let mut out = String::new();
        commit("hard-link", false, ep, c, c, "me_b_1", &max1, &mut out);
        assert_eq!(out, format!("pruned {a} max-snapshots\n"));
        let d = "2026-01-04T00:00:00.000Z";
        begin("hard-link", false, ep, d, "me_b_1", "-", &mut String::new());
        assert_eq!(
            abort("hard-link", false, ep, d, "me_b_1", &mut String::new()),
            0
        );
        assert_eq!(snapshot_names(ep), [b, c]);
        assert!(!present(&partial(ep, d)));
        assert!(holder(ep).is_none());
        // A complete snapshot newer than `latest` (the clock was behind) is
        // kept; what a killed run left marked unfinished goes.
        let future = "2999-01-01T00:00:00.000Z";
        fs::create_dir(ep.join("snapshots").join(future)).unwrap();
        fs::create_dir(partial(ep, "2998-01-01T00:00:00.000Z")).unwrap();
        // The new snapshot is named 1 ms after the newest, so `latest`
        // stays the newest name; nothing is pruned.
        let after = "2999-01-01T00:00:00.001Z";
        let mut out = String::new();
        begin("hard-link", false, ep, d, "me_b_1", "-", &mut out);
        assert_eq!(
            out,
            format!(
                "clock {d} {future}\nunfinished 2998-01-01T00:00:00.000Z\nsnapshot {after}\nlatest {c}\n"
            )
        );
        let mut out = String::new();
        commit("hard-link", false, ep, after, d, "me_b_1", &max1, &mut out);
        assert_eq!(
            out,
            format!("warning nothing is pruned: the clock ({d}) is behind the newest snapshot {after}\n")
        );
        assert_eq!(snapshot_names(ep), [b, c, future, after]);
        assert_eq!(find_latest(ep).as_deref(), Some(after));
    }

    /// splitmix64: the same generated cases on every run.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) % n
        }
    }

    /// A snapshot name `days` days and `ms` milliseconds after 2026-01-01.
    fn gen_name(days: u64, ms: u64) -> String {
        let t = std::time::UNIX_EPOCH
            + std::time::Duration::from_millis(1_767_225_600_000 + days * 86_400_000 + ms);
        crate::exec::clock::snapshot_name(t, "colons")
    }

    /// An endpoint as a run may find it: complete snapshots, some left
    /// unfinished or half removed by a killed run, something that is not a
    /// snapshot, `latest` anywhere (or /dev/null, or missing), and maybe a
    /// lock. The same on both sides of the comparison.
    fn gen_endpoint(r: &mut Rng, ep: &Path, names: &[String]) {
        fs::create_dir_all(ep.join("snapshots/not-a-snapshot")).unwrap();
        for n in names {
            let d = match r.below(8) {
                0 => ep.join("snapshots").join(format!("{PARTIAL_PREFIX}{n}")),
                1 => ep.join("snapshots").join(format!(".nbkp-removing-{n}")),
                _ => ep.join("snapshots").join(n),
            };
            fs::create_dir_all(d.join("sub")).unwrap();
            fs::write(d.join("sub/f"), n).unwrap();
        }
        let complete: Vec<&String> = names
            .iter()
            .filter(|n| ep.join("snapshots").join(n).is_dir())
            .collect();
        match r.below(5) {
            0 => {}
            1 => symlink("/dev/null", ep.join("latest")).unwrap(),
            _ if !complete.is_empty() => {
                let n = complete[r.below(complete.len() as u64) as usize];
                symlink(format!("snapshots/{n}"), ep.join("latest")).unwrap();
            }
            _ => {}
        }
        match r.below(6) {
            0 => symlink("someone_b_9", ep.join(".nbkp-lock")).unwrap(),
            1 => symlink("me_b_1", ep.join(".nbkp-lock")).unwrap(),
            _ => {}
        }
    }

    /// Every entry under `ep`, with a symlink's target: what both sides
    /// must leave the same.
    fn tree(ep: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![ep.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                let rel = p.strip_prefix(ep).unwrap().display().to_string();
                match fs::read_link(&p) {
                    Ok(t) => out.push(format!("{rel} -> {}", t.display())),
                    Err(_) if p.is_dir() => {
                        out.push(format!("{rel}/"));
                        stack.push(p);
                    }
                    Err(_) => out.push(rel),
                }
            }
        }
        out.sort();
        out
    }

    /// The same operation through lib.sh, as the script renders it.
    fn shell_op(op: &Op) -> (i32, String) {
        let call = crate::plan::OpCall {
            host: 0,
            op: op.clone(),
        };
        let script = format!(
            "{}\n{}\n",
            crate::runtime::LIB,
            crate::plan::words::op_text(&call)
        );
        let out = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stderr(Stdio::null())
            .output()
            .expect("sh");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    #[test]
    fn the_native_operations_do_what_lib_sh_does_on_generated_endpoints() {
        let mut r = Rng(0x6c6f_6361_6c6f_7073);
        let (mut committed, mut pruned, mut clocks, mut unfinished) = (0, 0, 0, 0);
        for case in 0..400 {
            let dir = tempfile::tempdir().unwrap();
            let (native, shell) = (dir.path().join("native"), dir.path().join("shell"));
            let mut names: Vec<String> = (0..r.below(12))
                .map(|_| gen_name(r.below(400), r.below(3) * 500))
                .collect();
            names.sort();
            names.dedup();
            let seed = r.0;
            for ep in [&native, &shell] {
                r.0 = seed;
                gen_endpoint(&mut r, ep, &names);
            }
            // The clock: usually after every snapshot, sometimes behind
            // them or on a name already used.
            let candidate = match r.below(6) {
                0 if !names.is_empty() => names[r.below(names.len() as u64) as usize].clone(),
                1 => gen_name(r.below(400), 250),
                _ => gen_name(400 + r.below(4000), 750),
            };
            let mode = [
                Mode::HardLink,
                Mode::HardLink,
                Mode::HardLink,
                Mode::None,
                Mode::Btrfs,
            ][r.below(5) as usize];
            let dry = Arg::lit(if r.below(8) == 0 { "1" } else { "0" });
            let mut rules = Policy {
                max_snapshots: (r.below(2) == 0).then(|| r.below(5) as u32 + 1),
                keep_last: (r.below(3) == 0).then(|| r.below(3) as u32),
                keep_within: (r.below(3) == 0).then(|| r.below(200) * 86_400),
                max_age: (r.below(4) == 0).then(|| r.below(300) * 86_400),
                ..Default::default()
            }
            .tokens();
            if r.below(4) == 0 {
                rules.push("prio=-:-:-".into());
            }
            let aborts = r.below(4) == 0;
            let (name, owner) = (Arg::lit(candidate.clone()), Arg::lit("me_b_1"));
            // The operations for an endpoint: begin, then commit or abort.
            // `written`: the snapshot begin said it writes (the run's
            // NBKP_SNAPSHOT), which commit and abort are given.
            let ops_at = |ep: &Path, written: &Arg| -> Vec<Op> {
                let endpoint = Arg::lit(ep.display().to_string());
                if mode == Mode::None {
                    // A mirror: only the lock (as lowering gives it).
                    return vec![
                        Op::Lock {
                            dry_run: dry.clone(),
                            endpoint: endpoint.clone(),
                            owner: owner.clone(),
                            stale_lock: Arg::lit("-"),
                        },
                        Op::Unlock {
                            dry_run: dry.clone(),
                            endpoint,
                            owner: owner.clone(),
                        },
                    ];
                }
                let end = if aborts {
                    Op::Abort {
                        mode,
                        dry_run: dry.clone(),
                        endpoint: endpoint.clone(),
                        snapshot: written.clone(),
                        owner: owner.clone(),
                    }
                } else {
                    Op::Commit {
                        mode,
                        dry_run: dry.clone(),
                        endpoint: endpoint.clone(),
                        snapshot: if mode == Mode::Btrfs {
                            name.clone()
                        } else {
                            written.clone()
                        },
                        now: name.clone(),
                        owner: owner.clone(),
                        rules: rules.clone(),
                    }
                };
                let begin = Op::Begin {
                    mode,
                    dry_run: dry.clone(),
                    endpoint,
                    candidate: name.clone(),
                    owner: owner.clone(),
                    stale_lock: Arg::lit("-"),
                };
                vec![begin, end]
            };
            if mode == Mode::Btrfs && !aborts && dry == Arg::lit("0") {
                continue; // a btrfs snapshot needs btrfs: the e2e tests do that
            }
            let mut transcript = Vec::new();
            let mut written = name.clone();
            for step in 0..2 {
                let mine = &ops_at(&native, &written)[step];
                let theirs = ops_at(&shell, &written)[step].clone();
                let op = mine.function();
                let got = perform(mine, &Values::default()).unwrap();
                let want = shell_op(&theirs);
                let got_out = got.output.replace(&native.display().to_string(), "EP");
                let want_out = want.1.replace(&shell.display().to_string(), "EP");
                transcript.push(format!("{op} {candidate} -> {} {got_out:?}", got.code));
                assert_eq!(
                    (got.code, &got_out),
                    (want.0, &want_out),
                    "case {case}: {op} differs from lib.sh\nnames {names:?}\n{}",
                    transcript.join("\n")
                );
                assert_eq!(
                    tree(&native),
                    tree(&shell),
                    "case {case}: {op} left another tree than lib.sh\n{}",
                    transcript.join("\n")
                );
                if let Some(w) = got.output.lines().find_map(|l| l.strip_prefix("snapshot ")) {
                    written = Arg::lit(w.to_string());
                }
                committed += usize::from(op == "nbkp_commit" && got.code == 0);
                pruned += got_out.matches("pruned ").count();
                clocks += got_out.matches("clock ").count();
                unfinished += got_out.matches("unfinished ").count();
                if got.code != 0 {
                    break;
                }
            }
        }
        // The cases must exercise what they claim to.
        assert!(committed > 100, "commits: {committed}");
        assert!(pruned > 50, "prunes: {pruned}");
        assert!(clocks > 30, "clock warnings: {clocks}");
        assert!(unfinished > 30, "unfinished removed: {unfinished}");
    }
}
