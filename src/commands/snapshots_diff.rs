//! `nbkp snapshots diff`: what was added, removed and changed between two
//! snapshots of a sync's destination.
//!
//! Both snapshots are listed on the destination's host by GNU find
//! (`-printf`: type, device, inode, size, mtime, name, link target;
//! NUL-separated, so any name survives), one process per snapshot, and
//! compared here. Nothing is read but the directory entries' metadata:
//! - hard-link snapshots: a file is unchanged exactly when it is the same
//!   inode in both (rsync's `--link-dest` links a file only when it found
//!   it unchanged; a file it copied again is a new inode);
//! - btrfs snapshots: each snapshot is its own subvolume, whose inode
//!   numbers say nothing about sharing, so a file is unchanged when its
//!   size and modification time are (rsync's own quick check).

use std::collections::BTreeMap;

use serde::Serialize;

use super::backup;
use crate::cli::{OutputFormat, SnapshotsDiffArgs};
use crate::exec::values::{argv as expand_argv, Values};
use crate::output::print_json;
use crate::plan::args::lits;
use crate::plan::{Arg, Host};

/// One entry of a snapshot, as find described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// find's `%y`: `f`, `d`, `l`, …
    pub kind: char,
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    /// `%T@` as printed (seconds with the fraction): compared as text.
    pub mtime: String,
    pub link: Vec<u8>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Added {
    pub path: String,
    pub kind: &'static str,
    pub size: u64,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Changed {
    pub path: String,
    pub kind: &'static str,
    pub size_before: u64,
    pub size_after: u64,
}

#[derive(Debug, Serialize, Default, PartialEq)]
pub struct Diff {
    pub added: Vec<Added>,
    pub removed: Vec<Added>,
    pub changed: Vec<Changed>,
}

#[derive(Serialize)]
struct Report {
    sync: String,
    endpoint: String,
    location: String,
    mode: &'static str,
    /// `inode` (hard-link) or `size-mtime` (btrfs).
    method: &'static str,
    from: String,
    to: String,
    #[serde(flatten)]
    diff: Diff,
    totals: Totals,
}

#[derive(Serialize)]
struct Totals {
    added: usize,
    added_bytes: u64,
    removed: usize,
    removed_bytes: u64,
    changed: usize,
    changed_bytes_before: u64,
    changed_bytes_after: u64,
}

pub fn run(args: &SnapshotsDiffArgs) -> i32 {
    let (config, plan) = match backup::load(
        args.file.config.as_deref(),
        &args.select,
        &args.mount,
        vec![args.sync.clone()],
        args.output,
    ) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let target = match backup::target(&config, &plan, &args.sync) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("Error: {e}");
            return super::EXIT_USAGE;
        }
    };
    let dest = target.dest;
    if dest.snapshots == "none" {
        eprintln!(
            "Error: {}: the destination keeps no snapshots (a plain mirror); nothing to compare",
            dest.shown
        );
        return super::EXIT_USAGE;
    }
    backup::with_hosts(&plan, |hosts, v| {
        let (listing, _) = match backup::open_snapshot(hosts, v, dest, None) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("Error: {e}");
                return 1;
            }
        };
        let (a, b) = match pick(
            &listing.names,
            listing.latest.as_deref(),
            args.from.as_deref(),
            args.to.as_deref(),
        ) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("Error: {}: {e}", dest.shown);
                return super::EXIT_USAGE;
            }
        };
        let host = &plan.hosts[dest.host];
        let mut sides = Vec::new();
        for name in [&a, &b] {
            let dir = backup::content_dir(&dest.path, Some(name));
            match list_snapshot(host, dir, v) {
                Ok(l) => sides.push(l),
                Err(e) => {
                    eprintln!("Error: {}: snapshot {name}: {e}", dest.shown);
                    return 1;
                }
            }
        }
        let by_inode = dest.snapshots == "hard-link";
        let diff = compare(&sides[0], &sides[1], by_inode);
        let report = Report {
            sync: target.slug.to_string(),
            endpoint: dest.slug.clone(),
            location: dest.shown.clone(),
            mode: dest.snapshots,
            method: if by_inode { "inode" } else { "size-mtime" },
            totals: totals(&diff),
            from: a,
            to: b,
            diff,
        };
        match args.output {
            OutputFormat::Json => print_json(&report),
            OutputFormat::Human => print!("{}", human(&report)),
        }
        0
    })
}

/// The two snapshots to compare, older first: both named, the one named
/// and the newest, or (none named) the two newest. `latest` names the
/// snapshot `latest` points to.
pub fn pick(
    names: &[String],
    latest: Option<&str>,
    a: Option<&str>,
    b: Option<&str>,
) -> Result<(String, String), String> {
    let resolve = |n: &str| -> Result<String, String> {
        let n = if n == "latest" {
            latest.ok_or("no snapshot is `latest` yet")?
        } else {
            n
        };
        if names.iter().any(|x| x == n) {
            Ok(n.to_string())
        } else {
            Err(format!(
                "no snapshot named {n}; the newest are: {}",
                backup::newest(names, 5).join(", ")
            ))
        }
    };
    let newest = |skip: usize| names.iter().rev().nth(skip).cloned();
    let (a, b) = match (a, b) {
        (Some(a), Some(b)) => (resolve(a)?, resolve(b)?),
        (Some(a), None) => (
            resolve(a)?,
            newest(0).ok_or_else(|| "no snapshots".to_string())?,
        ),
        (None, _) => match (newest(1), newest(0)) {
            (Some(a), Some(b)) => (a, b),
            _ => {
                return Err(format!(
                    "{} snapshot(s): two are needed to compare",
                    names.len()
                ))
            }
        },
    };
    if a == b {
        return Err(format!("{a} is compared with itself; name two snapshots"));
    }
    Ok(if a <= b { (a, b) } else { (b, a) })
}

/// The find command that describes a snapshot, on its host (through the
/// run's ssh and shared connection when remote).
pub fn find_argv(host: &Host, dir: Arg) -> Vec<Arg> {
    let mut words = vec![Arg::lit("find"), dir];
    words.extend(lits(["-mindepth", "1", "-printf", FIND_FORMAT]));
    match &host.ssh {
        None => words,
        Some(ssh) => ssh.argv(Arg::Joined(words)),
    }
}

/// Two NUL-terminated fields per entry: the metadata and the name, then
/// the symlink target (empty for others).
const FIND_FORMAT: &str = "%y %D %i %s %T@ %P\\0%l\\0";

fn list_snapshot(host: &Host, dir: Arg, v: &Values) -> Result<BTreeMap<Vec<u8>, Entry>, String> {
    let out = backup::run(&expand_argv(&find_argv(host, dir), v), false);
    if out.code != 0 {
        let hint = if out.stderr.contains("printf") {
            " (snapshots diff needs GNU find, with -printf, on that host)"
        } else {
            ""
        };
        return Err(format!(
            "find exited with code {}: {}{hint}",
            out.code,
            out.stderr.trim()
        ));
    }
    parse_listing(&out.stdout)
}

/// find's output → entries by name.
pub fn parse_listing(out: &[u8]) -> Result<BTreeMap<Vec<u8>, Entry>, String> {
    let mut map = BTreeMap::new();
    let mut fields = out.split(|&b| b == 0);
    while let Some(head) = fields.next() {
        if head.is_empty() {
            break;
        }
        let link = fields.next().ok_or("find's output ends in an entry")?;
        let bad = || format!("unexpected find output: {}", String::from_utf8_lossy(head));
        let mut parts = head.splitn(6, |&b| b == b' ');
        let mut next = || parts.next().ok_or_else(bad);
        let kind = next()?.first().map_or('?', |&b| b as char);
        let num = |b: &[u8]| {
            std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
        };
        let dev = num(next()?).ok_or_else(bad)?;
        let ino = num(next()?).ok_or_else(bad)?;
        let size = num(next()?).ok_or_else(bad)?;
        let mtime = String::from_utf8_lossy(next()?).into_owned();
        let name = next()?.to_vec();
        map.insert(
            name,
            Entry {
                kind,
                dev,
                ino,
                size,
                mtime,
                link: link.to_vec(),
            },
        );
    }
    Ok(map)
}

fn kind_name(k: char) -> &'static str {
    match k {
        'f' => "file",
        'd' => "dir",
        'l' => "symlink",
        _ => "other",
    }
}

/// Whether an entry present in both snapshots is unchanged.
fn unchanged(a: &Entry, b: &Entry, by_inode: bool) -> bool {
    if a.kind != b.kind {
        return false;
    }
    match a.kind {
        // A folder's own entry: its content is compared entry by entry.
        'd' => true,
        'l' => a.link == b.link,
        _ if by_inode => (a.dev, a.ino) == (b.dev, b.ino),
        _ => a.size == b.size && a.mtime == b.mtime,
    }
}

/// Added, removed and changed entries from `a` (older) to `b` (newer).
pub fn compare(a: &BTreeMap<Vec<u8>, Entry>, b: &BTreeMap<Vec<u8>, Entry>, by_inode: bool) -> Diff {
    let name = |n: &[u8]| String::from_utf8_lossy(n).into_owned();
    let mut d = Diff::default();
    for (n, e) in b {
        match a.get(n) {
            None => d.added.push(Added {
                path: name(n),
                kind: kind_name(e.kind),
                size: e.size,
            }),
            Some(old) if !unchanged(old, e, by_inode) => d.changed.push(Changed {
                path: name(n),
                kind: kind_name(e.kind),
                size_before: old.size,
                size_after: e.size,
            }),
            Some(_) => {}
        }
    }
    for (n, e) in a {
        if !b.contains_key(n) {
            d.removed.push(Added {
                path: name(n),
                kind: kind_name(e.kind),
                size: e.size,
            });
        }
    }
    d
}

fn totals(d: &Diff) -> Totals {
    let files = |v: &[Added]| v.iter().filter(|e| e.kind != "dir").map(|e| e.size).sum();
    Totals {
        added: d.added.len(),
        added_bytes: files(&d.added),
        removed: d.removed.len(),
        removed_bytes: files(&d.removed),
        changed: d.changed.len(),
        changed_bytes_before: d.changed.iter().map(|c| c.size_before).sum(),
        changed_bytes_after: d.changed.iter().map(|c| c.size_after).sum(),
    }
}

/// `1.5 MiB`.
pub fn size(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

fn human(r: &Report) -> String {
    let t = &r.totals;
    let how = if r.method == "inode" {
        "unchanged = the same inode"
    } else {
        "unchanged = same size and time"
    };
    let mut out = format!(
        "{} — {} ({} snapshots; {how})\n{} → {}\n  added {} ({}), removed {} ({}), changed {} ({} → {})\n",
        r.sync,
        r.location,
        r.mode,
        r.from,
        r.to,
        t.added,
        size(t.added_bytes),
        t.removed,
        size(t.removed_bytes),
        t.changed,
        size(t.changed_bytes_before),
        size(t.changed_bytes_after),
    );
    let slash = |kind: &str| if kind == "dir" { "/" } else { "" };
    for e in &r.diff.added {
        out.push_str(&format!(
            "+ {}{}  {}\n",
            e.path.escape_debug(),
            slash(e.kind),
            size(e.size)
        ));
    }
    for e in &r.diff.removed {
        out.push_str(&format!(
            "- {}{}  {}\n",
            e.path.escape_debug(),
            slash(e.kind),
            size(e.size)
        ));
    }
    for c in &r.diff.changed {
        out.push_str(&format!(
            "~ {}  {} → {}\n",
            c.path.escape_debug(),
            size(c.size_before),
            size(c.size_after)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn picking_two_snapshots() {
        let n = names(&[
            "2026-01-01T00:00:00.000Z",
            "2026-01-02T00:00:00.000Z",
            "2026-01-03T00:00:00.000Z",
        ]);
        let latest = Some("2026-01-03T00:00:00.000Z");
        assert_eq!(
            pick(&n, latest, None, None).unwrap(),
            (n[1].clone(), n[2].clone())
        );
        assert_eq!(
            pick(&n, latest, Some(&n[0]), None).unwrap(),
            (n[0].clone(), n[2].clone())
        );
        // Given newer first: still older → newer.
        assert_eq!(
            pick(&n, latest, Some("latest"), Some(&n[0])).unwrap(),
            (n[0].clone(), n[2].clone())
        );
        assert!(pick(&n, latest, Some(&n[2]), None).is_err());
        assert!(pick(&n, latest, Some("nope"), None)
            .unwrap_err()
            .contains("no snapshot named"));
        assert!(pick(&n[..1], latest, None, None).is_err());
    }

    fn listing(text: &[u8]) -> BTreeMap<Vec<u8>, Entry> {
        parse_listing(text).unwrap()
    }

    #[test]
    fn hard_link_snapshots_compare_inodes() {
        let a = listing(
            b"f 5 10 3 1.5 same\0\0f 5 11 3 1.5 touched back\0\0f 5 12 4 1.5 gone\0\0d 5 13 0 1.0 dir\0\0l 5 14 1 1.0 ln\0a\0",
        );
        let b = listing(
            b"f 5 10 3 1.5 same\0\0f 5 21 3 1.5 touched back\0\0f 5 22 9 2.5 new\nline\0\0d 5 23 0 2.0 dir\0\0l 5 24 1 1.0 ln\0b\0",
        );
        let d = compare(&a, &b, true);
        let paths = |v: &[Added]| v.iter().map(|e| e.path.clone()).collect::<Vec<_>>();
        assert_eq!(paths(&d.added), ["new\nline"]);
        assert_eq!(paths(&d.removed), ["gone"]);
        let changed: Vec<&str> = d.changed.iter().map(|c| c.path.as_str()).collect();
        // Same size and time but another inode: rsync copied it again.
        assert_eq!(changed, ["ln", "touched back"]);
        // By size and time (btrfs), that file is unchanged.
        let d = compare(&a, &b, false);
        let changed: Vec<&str> = d.changed.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(changed, ["ln"]);
        assert_eq!(totals(&d).removed_bytes, 4);
    }

    #[test]
    fn find_runs_where_the_snapshots_are() {
        let local = Host {
            name: "localhost".into(),
            id: "h0".into(),
            ssh: None,
            probes: vec![],
            session_fds: None,
            waiting_session: None,
            probe_bound: None,
        };
        let w: Vec<String> = find_argv(&local, Arg::lit("/b/snapshots/S/"))
            .iter()
            .map(Arg::display)
            .collect();
        assert_eq!(w[..3], ["find", "/b/snapshots/S/", "-mindepth"]);
        assert!(parse_listing(b"f 1 2 x 1.0 a\0\0").is_err());
        assert_eq!(size(1536), "1.5 KiB");
    }
}
