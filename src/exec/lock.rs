//! Who holds a destination lock, and whether that run is gone. The lock
//! itself is taken by the runtime library (`nbkp_lock`), the same for
//! scripts and `nbkp run`; the owner format is shared with the script.

use std::process::Command;

fn clean(s: &str, extra: &[u8]) -> String {
    s.bytes()
        .filter(|b| b.is_ascii_alphanumeric() || extra.contains(b))
        .map(char::from)
        .collect()
}

fn host() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| {
            Command::new("hostname")
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        })
        .unwrap_or_default();
    let name = clean(name.trim(), b".-");
    if name.is_empty() {
        "unknown".into()
    } else {
        name
    }
}

fn boot() -> String {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let id = clean(id.trim(), b"-");
    if id.is_empty() {
        "noboot".into()
    } else {
        id
    }
}

/// `host_boot-id_pid` of this process.
pub fn owner() -> String {
    format!("{}_{}_{}", host(), boot(), std::process::id())
}

/// True when `holder` was a run on this machine that is gone: another boot,
/// or its process no longer exists. A lock from another machine is kept.
pub fn is_stale(holder: &str, me: &str) -> bool {
    let parts = |o: &str| -> Option<(String, String, String)> {
        let (h, rest) = o.split_once('_')?;
        let (b, p) = rest.rsplit_once('_')?;
        Some((h.to_string(), b.to_string(), p.to_string()))
    };
    let (Some((hh, hb, hp)), Some((mh, mb, _))) = (parts(holder), parts(me)) else {
        return false;
    };
    if hh != mh {
        return false;
    }
    if hb != mb {
        return true;
    }
    let Ok(pid) = hp.parse::<u32>() else {
        return false;
    };
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !Command::new("ps")
            .args(["-p", &pid.to_string()])
            .output()
            .is_ok_and(|o| o.status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staleness() {
        let me = owner();
        let (h, rest) = me.split_once('_').unwrap();
        let (b, _) = rest.rsplit_once('_').unwrap();
        assert!(!is_stale(&me, &me), "this very process is alive");
        assert!(is_stale(&format!("{h}_{b}_999999999"), &me), "a dead pid");
        assert!(
            is_stale(&format!("{h}_another-boot_1"), &me),
            "another boot"
        );
        assert!(
            !is_stale(&format!("elsewhere_{b}_999999999"), &me),
            "another machine"
        );
        assert!(!is_stale("garbage", &me));
    }
}
