//! What nbkp remembers between runs: when each sync last completed.
//!
//! One small JSON file, `$XDG_STATE_HOME/nbkp/state.json` (default
//! `~/.local/state/nbkp/state.json`), rewritten through a temporary file and
//! a rename as syncs complete, so a crash leaves the old or the new
//! file, never half of one. `nbkp status` reads it to say how old each
//! backup is. Losing the file loses only that history: backups themselves
//! never depend on it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The file's format version.
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct State {
    pub version: u32,
    /// By sync name.
    pub syncs: BTreeMap<String, SyncState>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SyncState {
    /// UTC, `2026-12-01T19:00:00.123Z`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<String>,
    /// The same moment in seconds since 1970 (what ages are computed from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_unix: Option<u64>,
    /// The snapshot that run made, if the destination keeps snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// The last failed attempt, if it came after the last success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_unix: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_detail: Option<String>,
}

/// `$XDG_STATE_HOME/nbkp/state.json`, or `~/.local/state/nbkp/state.json`
/// (a relative `XDG_STATE_HOME` is ignored, as the XDG spec says).
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|h| h.join(".local/state"))
        })?;
    Some(base.join("nbkp/state.json"))
}

/// Reads the state; a missing file is an empty state.
pub fn load(path: &Path) -> Result<State, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| format!("{} is not a valid nbkp state file: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State {
            version: VERSION,
            ..State::default()
        }),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Writes through a temporary file in the same directory and a rename.
pub fn save(path: &Path, state: &State) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    std::fs::create_dir_all(dir).map_err(fail)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    let mut text = serde_json::to_string_pretty(state).map_err(|e| e.to_string())?;
    text.push('\n');
    tmp.write_all(text.as_bytes()).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// Seconds since 1970 and the UTC text of a moment.
pub fn stamp(at: SystemTime) -> (u64, String) {
    let secs = at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    (secs, crate::exec::clock::snapshot_name(at, "colons"))
}

/// Runs `update` on the state while holding `<file>.lock` (created with
/// O_EXCL), so two runs finishing syncs at once both keep their entries. A
/// lock older than [`LOCK_STALE`] is a crashed writer's and is broken; if
/// the lock cannot be had within [`LOCK_WAIT`], the update goes ahead
/// anyway (history is not worth blocking a backup for).
fn update(path: &Path, change: impl FnOnce(&mut State)) -> Result<(), String> {
    let lock = path.with_extension("json.lock");
    if let Some(dir) = lock.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let held = acquire(&lock);
    let result = (|| {
        let mut state = load(path)?;
        state.version = VERSION;
        change(&mut state);
        save(path, &state)
    })();
    if held {
        let _ = std::fs::remove_file(&lock);
    }
    result
}

const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
const LOCK_STALE: std::time::Duration = std::time::Duration::from_secs(30);

fn acquire(lock: &Path) -> bool {
    let start = std::time::Instant::now();
    loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(lock)
        {
            Ok(_) => return true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let stale = std::fs::metadata(lock)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > LOCK_STALE);
                if stale {
                    let _ = std::fs::remove_file(lock);
                    continue;
                }
                if start.elapsed() > LOCK_WAIT {
                    return false;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(_) => return false,
        }
    }
}

/// One attempt of a sync, to remember.
#[derive(Debug, Clone)]
pub struct Record {
    pub slug: String,
    pub at: SystemTime,
    /// `Ok(snapshot name)` for a success, `Err(detail)` for a failure.
    pub outcome: Result<Option<String>, String>,
}

/// Records attempts, in order, in one update (re-reading the file first,
/// so other syncs' entries written meanwhile are kept). A success clears
/// the failure before it; a failure keeps the last success.
pub fn record(path: &Path, records: &[Record]) -> Result<(), String> {
    update(path, |state| {
        for r in records {
            let (unix, text) = stamp(r.at);
            let entry = state.syncs.entry(r.slug.clone()).or_default();
            match &r.outcome {
                Ok(snapshot) => {
                    entry.last_success = Some(text);
                    entry.last_success_unix = Some(unix);
                    entry.snapshot = snapshot.clone();
                    entry.last_failure = None;
                    entry.last_failure_unix = None;
                    entry.last_failure_detail = None;
                }
                Err(detail) => {
                    entry.last_failure = Some(text);
                    entry.last_failure_unix = Some(unix);
                    entry.last_failure_detail = Some(detail.clone());
                }
            }
        }
    })
}

/// `12 days`, `3 hours`, `5 minutes`, `40 seconds`: the largest whole unit.
pub fn human_age(seconds: u64) -> String {
    let (n, unit) = match seconds {
        s if s >= 2 * 86_400 => (s / 86_400, "days"),
        s if s >= 86_400 => (1, "day"),
        s if s >= 7200 => (s / 3600, "hours"),
        s if s >= 3600 => (1, "hour"),
        s if s >= 120 => (s / 60, "minutes"),
        s if s >= 60 => (1, "minute"),
        s => (s, if s == 1 { "second" } else { "seconds" }),
    };
    format!("{n} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn record_success(
        path: &Path,
        slug: &str,
        at: SystemTime,
        snapshot: Option<&str>,
    ) -> Result<(), String> {
        let outcome = Ok(snapshot.map(String::from));
        record(
            path,
            &[Record {
                slug: slug.into(),
                at,
                outcome,
            }],
        )
    }

    fn record_failure(path: &Path, slug: &str, at: SystemTime, detail: &str) -> Result<(), String> {
        let outcome = Err(detail.to_string());
        record(
            path,
            &[Record {
                slug: slug.into(),
                at,
                outcome,
            }],
        )
    }

    #[test]
    fn records_survive_each_other_and_failures_keep_the_success() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nbkp/state.json");
        let t = UNIX_EPOCH + Duration::from_secs(1_772_807_400);
        record_success(&path, "a", t, Some("2026-03-06T14:30:00.000Z")).unwrap();
        record_success(&path, "b", t + Duration::from_secs(60), None).unwrap();
        record_failure(
            &path,
            "a",
            t + Duration::from_secs(120),
            "rsync exited with code 23",
        )
        .unwrap();
        let s = load(&path).unwrap();
        assert_eq!(s.version, VERSION);
        assert_eq!(s.syncs["a"].last_success_unix, Some(1_772_807_400));
        assert_eq!(
            s.syncs["a"].last_success.as_deref(),
            Some("2026-03-06T14:30:00.000Z")
        );
        assert_eq!(s.syncs["a"].last_failure_unix, Some(1_772_807_520));
        assert_eq!(s.syncs["b"].last_success_unix, Some(1_772_807_460));
        record_success(&path, "a", t + Duration::from_secs(180), None).unwrap();
        assert_eq!(load(&path).unwrap().syncs["a"].last_failure, None);
        // No temporary files left beside it.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn concurrent_writers_keep_every_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nbkp/state.json");
        let t = UNIX_EPOCH + Duration::from_secs(1_772_807_400);
        std::thread::scope(|s| {
            for w in 0..8 {
                let path = &path;
                s.spawn(move || {
                    for i in 0..10 {
                        record_success(path, &format!("w{w}-s{i}"), t, None).unwrap();
                    }
                });
            }
        });
        assert_eq!(load(&path).unwrap().syncs.len(), 80);
        assert!(!path.with_extension("json.lock").exists());
    }

    #[test]
    fn a_crashed_writers_lock_is_broken() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let lock = path.with_extension("json.lock");
        std::fs::write(&lock, "").unwrap();
        let old = std::fs::File::options().write(true).open(&lock).unwrap();
        old.set_modified(SystemTime::now() - Duration::from_secs(60))
            .unwrap();
        let t = UNIX_EPOCH + Duration::from_secs(1_772_807_400);
        let started = std::time::Instant::now();
        record_success(&path, "a", t, None).unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(load(&path).unwrap().syncs.contains_key("a"));
    }

    #[test]
    fn missing_is_empty_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(&dir.path().join("none.json"))
            .unwrap()
            .syncs
            .is_empty());
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{not json").unwrap();
        assert!(load(&bad)
            .unwrap_err()
            .contains("not a valid nbkp state file"));
    }

    #[test]
    fn ages() {
        assert_eq!(human_age(12 * 86_400 + 5), "12 days");
        assert_eq!(human_age(86_400), "1 day");
        assert_eq!(human_age(3 * 3600), "3 hours");
        assert_eq!(human_age(59), "59 seconds");
        assert_eq!(human_age(90), "1 minute");
    }
}
