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

    /// The script's `nbkp_lock_is_stale` (templates/script.sh.j2), as text.
    fn script_function() -> &'static str {
        let t = include_str!("../../templates/script.sh.j2");
        let start = t
            .find("nbkp_lock_is_stale() {")
            .expect("the script defines it");
        let len = t[start..].find("\n}\n").expect("it ends") + 3;
        &t[start..start + len]
    }

    /// The twin of the script's function: both decide alike on holders of
    /// every shape (this machine or another, this boot or another, a live,
    /// a dead or no pid, and malformed ones).
    #[test]
    fn staleness_is_decided_as_the_script_decides_it() {
        let me = owner();
        let (h, rest) = me.split_once('_').unwrap();
        let (b, _) = rest.rsplit_once('_').unwrap();
        let live = std::process::id().to_string();
        let mut holders = Vec::new();
        for host in [h, "elsewhere", "", "a-b.c"] {
            for boot in [b, "another-boot", "", "x_y"] {
                for pid in [live.as_str(), "999999999", "", "12a", "1"] {
                    holders.push(format!("{host}_{boot}_{pid}"));
                }
                holders.push(format!("{host}_{boot}"));
            }
            holders.push(host.to_string());
        }
        let mut script = format!("NBKP_HOST='{h}'\nNBKP_BOOT='{b}'\n{}\n", script_function());
        for (i, holder) in holders.iter().enumerate() {
            script.push_str(&format!(
                "if nbkp_lock_is_stale '{holder}'; then echo '{i} 1'; else echo '{i} 0'; fi\n"
            ));
        }
        let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let answers: Vec<bool> = text.lines().map(|l| l.ends_with(" 1")).collect();
        assert_eq!(answers.len(), holders.len(), "{text}");
        for (holder, shell) in holders.iter().zip(answers) {
            assert_eq!(is_stale(holder, &me), shell, "holder {holder:?}");
        }
    }
}
