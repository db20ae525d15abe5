//! Run conditions read on this machine for `nbkp run`, by the rules of
//! `plan/conditions.rs` (the script's functions follow the same).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::plan::conditions::{self, Supply};

/// How long a helper (`pmset`, `nmcli`) may take before it counts as no answer.
const HELPER_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether this machine runs on battery; `None` when it cannot tell.
pub fn on_battery() -> Option<bool> {
    let dir = std::env::var_os(conditions::POWER_SUPPLY_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(conditions::POWER_SUPPLY_DIR));
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let read = |p: PathBuf| {
            std::fs::read_to_string(p)
                .map(|t| t.trim().to_string())
                .unwrap_or_default()
        };
        let mut supplies: Vec<Supply> = entries
            .flatten()
            .map(|e| e.path())
            .map(|p| Supply {
                kind: read(p.join("type")),
                online: read(p.join("online")),
                status: read(p.join("status")),
            })
            .collect();
        supplies.sort_by(|a, b| a.kind.cmp(&b.kind));
        return Some(conditions::on_battery(&supplies));
    }
    let out = output_of(&conditions::PMSET)?;
    conditions::pmset_on_battery(&out)
}

/// Whether NetworkManager says the connection is metered; `None` without
/// NetworkManager (nothing then counts as metered).
pub fn metered() -> Option<bool> {
    let out = output_of(&conditions::NMCLI_METERED)?;
    Some(conditions::nmcli_metered(&out))
}

/// A helper's standard output, if it ran, succeeded and answered in time.
fn output_of(argv: &[&str]) -> Option<String> {
    crate::programs::find(argv[0])?;
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + HELPER_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let out = child.wait_with_output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}
