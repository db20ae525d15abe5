//! How old each sync's last completed run is, and which are stale: from the
//! config (`stale-after`) and the state file (`state.rs`), at a given time.

use serde::Serialize;

use crate::config::{Config, Sync};
use crate::state::{human_age, State};

/// One sync's status, as `nbkp status -o json` prints it (docs/json.md).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SyncStatus {
    pub sync_slug: String,
    pub enabled: bool,
    pub last_success: Option<String>,
    pub last_success_unix: Option<u64>,
    /// Seconds since the last success (`None`: never).
    pub age_seconds: Option<u64>,
    /// `None`: never stale (`stale-after: never`).
    pub stale_after_seconds: Option<u64>,
    /// Enabled, with a threshold, and not completed within it (or never).
    pub stale: bool,
    pub snapshot: Option<String>,
    pub last_failure: Option<String>,
    pub last_failure_detail: Option<String>,
    /// For a stale sync: one sentence, e.g.
    /// `usb-photos: last backup 12 days ago — plug in the drive usb (/media/usb)`.
    pub message: Option<String>,
}

/// Every sync of the config, in config order, at `now` (seconds since 1970).
pub fn evaluate(config: &Config, state: &State, now: u64) -> Vec<SyncStatus> {
    config
        .syncs
        .values()
        .map(|sync| {
            let entry = state.syncs.get(&sync.slug).cloned().unwrap_or_default();
            let age = entry.last_success_unix.map(|t| now.saturating_sub(t));
            let stale = sync.enabled
                && match (sync.stale_after_seconds, age) {
                    (None, _) => false,
                    (Some(_), None) => true,
                    (Some(limit), Some(age)) => age > limit,
                };
            let message = stale.then(|| {
                let when = match age {
                    Some(a) => format!("last backup {} ago", human_age(a)),
                    None => "never backed up".to_string(),
                };
                let mut text = format!("{}: {when} — {}", sync.slug, hint(config, sync));
                if let Some(detail) = &entry.last_failure_detail {
                    text.push_str(&format!(" (last attempt failed: {detail})"));
                }
                text
            });
            SyncStatus {
                sync_slug: sync.slug.clone(),
                enabled: sync.enabled,
                last_success: entry.last_success,
                last_success_unix: entry.last_success_unix,
                age_seconds: age,
                stale_after_seconds: sync.stale_after_seconds,
                stale,
                snapshot: entry.snapshot,
                last_failure: entry.last_failure,
                last_failure_detail: entry.last_failure_detail,
                message,
            }
        })
        .collect()
}

/// What would make the sync run: a drive to plug in, a host to reach, or
/// simply a run.
fn hint(config: &Config, sync: &Sync) -> String {
    let volume_of = |endpoint: &str| {
        config
            .sync_endpoints
            .get(endpoint)
            .and_then(|e| config.volumes.get(&e.volume.slug))
    };
    let sides = [
        volume_of(&sync.destination.slug),
        volume_of(&sync.source.slug),
    ];
    for v in sides.into_iter().flatten() {
        if v.is_removable_drive() {
            let at = v
                .path
                .as_deref()
                .map(|p| format!(" ({p})"))
                .unwrap_or_default();
            return format!("plug in the drive {}{at}", v.slug);
        }
    }
    for v in sides.into_iter().flatten() {
        if let Some(ep) = v.primary_endpoint() {
            let host = config
                .ssh_endpoints
                .get(ep)
                .map(|e| e.host.clone())
                .unwrap_or_else(|| ep.to_string());
            return format!("connect to a network that reaches {host}, then run nbkp run");
        }
    }
    "run nbkp run (or check why it is not running: nbkp preflight troubleshoot)".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::SyncState;

    fn config(yaml: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, yaml).unwrap();
        crate::config::load(Some(&path)).expect("valid").config
    }

    const YAML: &str = "ssh-endpoints:\n  nas: {host: 192.0.2.5}\n\
        volumes:\n  laptop: {type: local, path: /home/me}\n  usb: {type: local, path: /media/usb}\n  server: {type: remote, ssh-endpoint: nas, path: /srv}\n\
        sync-endpoints:\n  docs: {volume: laptop, subdir: docs}\n  pics: {volume: laptop, subdir: pics}\n  tmp: {volume: laptop, subdir: tmp}\n  usb-photos: {volume: usb}\n  nas-docs: {volume: server}\n  spare: {volume: laptop, subdir: spare}\n\
        syncs:\n  usb-photos: {source: pics, destination: usb-photos}\n  docs-to-nas: {source: docs, destination: nas-docs, stale-after: 1d}\n  scratch: {source: tmp, destination: spare, stale-after: never}\n";

    #[test]
    fn staleness_with_a_fixed_clock() {
        let config = config(YAML);
        let now = 2_000_000_000;
        let mut state = State::default();
        state.syncs.insert(
            "usb-photos".into(),
            SyncState {
                last_success_unix: Some(now - 12 * 86_400),
                last_success: Some("old".into()),
                ..SyncState::default()
            },
        );
        state.syncs.insert(
            "docs-to-nas".into(),
            SyncState {
                last_success_unix: Some(now - 3600),
                ..SyncState::default()
            },
        );
        let s = evaluate(&config, &state, now);
        assert_eq!(s.len(), 3);
        assert!(s[0].stale);
        assert_eq!(s[0].age_seconds, Some(12 * 86_400));
        assert_eq!(
            s[0].message.as_deref(),
            Some("usb-photos: last backup 12 days ago — plug in the drive usb (/media/usb)")
        );
        assert!(!s[1].stale, "an hour is within 1d");
        assert!(!s[2].stale, "never stale, although never run");
        // A day and a second later the NAS sync is stale too.
        let s = evaluate(&config, &state, now + 86_400);
        assert!(s[1].stale);
        assert_eq!(
            s[1].message.as_deref(),
            Some("docs-to-nas: last backup 1 day ago — connect to a network that reaches 192.0.2.5, then run nbkp run")
        );
        // Never run at all: stale, says so.
        let s = evaluate(&config, &State::default(), now);
        assert_eq!(
            s[0].message.as_deref(),
            Some("usb-photos: never backed up — plug in the drive usb (/media/usb)")
        );
    }
}
