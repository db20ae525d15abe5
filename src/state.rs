//! What nbkp remembers between runs: when each sync last completed.
//!
//! One small JSON file, `$XDG_STATE_HOME/nbkp/state.json` (default
//! `~/.local/state/nbkp/state.json`), rewritten through a temporary file and
//! a rename after every completed sync, so a crash leaves the old or the new
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

/// Records that `slug` completed at `at` (re-reading the file first, so
/// other syncs' entries written meanwhile are kept).
pub fn record_success(
    path: &Path,
    slug: &str,
    at: SystemTime,
    snapshot: Option<&str>,
) -> Result<(), String> {
    let mut state = load(path)?;
    state.version = VERSION;
    let (unix, text) = stamp(at);
    let entry = state.syncs.entry(slug.to_string()).or_default();
    entry.last_success = Some(text);
    entry.last_success_unix = Some(unix);
    entry.snapshot = snapshot.map(String::from);
    entry.last_failure = None;
    entry.last_failure_unix = None;
    entry.last_failure_detail = None;
    save(path, &state)
}

/// Records a failed attempt of `slug` (its last success stays).
pub fn record_failure(path: &Path, slug: &str, at: SystemTime, detail: &str) -> Result<(), String> {
    let mut state = load(path)?;
    state.version = VERSION;
    let (unix, text) = stamp(at);
    let entry = state.syncs.entry(slug.to_string()).or_default();
    entry.last_failure = Some(text);
    entry.last_failure_unix = Some(unix);
    entry.last_failure_detail = Some(detail.to_string());
    save(path, &state)
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
