//! The mount phase of `nbkp run` (and `nbkp disks`): the plan's
//! mount-managed volumes unlocked and mounted before the checks, unmounted
//! and locked at the end. The operations are the runtime library's; a
//! passphrase travels only inside the message to the host's shell (a
//! here-document on its standard input: over the run's SSH connection for a
//! remote volume), never in an argument, a log line or a report.

use serde::Serialize;

use crate::credentials::Cache;
use crate::plan::mount::{self, code, MountPlan};
use crate::plan::words;
use crate::plan::OpCall;

use super::hosts::Hosts;
use super::values::Values;
use super::Executor;
use crate::plan::Plan;

/// What happened to one mount-managed volume.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MountResult {
    pub volume: String,
    /// `mounted`, `absent`, `locked`, `unmounted` or `failed` after the
    /// mount phase; `unmounted`, `locked`, `absent` or `failed` after umount.
    pub state: &'static str,
    pub mount_point: Option<String>,
    /// Why, for people (never a passphrase).
    pub detail: Option<String>,
    /// A failure that is not an expected state (wrong passphrase, …).
    pub error: bool,
}

impl<'p> Executor<'p> {
    /// The mount phase of a run (see [`mount_all`]), logged.
    pub fn mount_all(&mut self, v: &mut Values) -> Vec<MountResult> {
        self.flush_log();
        let mut lines = Vec::new();
        let r = mount_all(self.plan, &self.hosts, v, &mut |l| {
            lines.push(l.to_string())
        });
        lines.iter().for_each(|l| self.log(l));
        r
    }

    /// The unmount phase of a run (see [`umount_all`]), logged.
    pub fn umount_all(&mut self, v: &Values) -> Vec<MountResult> {
        self.flush_log();
        let mut lines = Vec::new();
        let r = umount_all(self.plan, &self.hosts, v, &mut |l| {
            lines.push(l.to_string())
        });
        lines.iter().for_each(|l| self.log(l));
        r
    }

    pub fn mount_states(&mut self, v: &Values) -> Vec<(String, Option<String>)> {
        self.flush_log();
        mount_states(self.plan, &self.hosts, v)
    }
}

fn mount_text(call: &OpCall, v: &Values) -> String {
    format!("{}{}", v.mount_assignments(), words::op_text(call))
}

/// Unlocks and mounts every mount-managed volume of the plan, in order;
/// records pathless volumes' mount points in `v`.
pub fn mount_all(
    plan: &Plan,
    hosts: &Hosts,
    v: &mut Values,
    log: &mut dyn FnMut(&str),
) -> Vec<MountResult> {
    {
        v.mount_points = vec![None; plan.mounts.len()];
        let mut cache = Cache::default();
        if let Some(creds) = &plan.credentials {
            let ids: Vec<&str> = plan
                .mounts
                .iter()
                .filter_map(|m| m.passphrase.map(|i| creds.passphrases[i].id.as_str()))
                .collect();
            for w in cache.prefetch(creds, &ids) {
                log(&w);
            }
        }
        let mut results = Vec::new();
        for (n, m) in plan.mounts.iter().enumerate() {
            let r = mount_one(plan, hosts, m, v, &mut cache);
            if let (Some(mp), Some(_)) = (&r.mount_point, m.mount_point) {
                v.mount_points[n] = Some(mp.clone());
            }
            match (&r.detail, r.error) {
                (Some(d), true) => log(&format!("ERROR: {d}")),
                (Some(d), false) => log(d),
                _ => {}
            }
            results.push(r);
        }
        results
    }
}

fn mount_one(
    plan: &Plan,
    hosts: &Hosts,
    m: &MountPlan,
    v: &Values,
    cache: &mut Cache,
) -> MountResult {
    {
        let mut result = MountResult {
            volume: m.shown.clone(),
            state: "failed",
            mount_point: None,
            detail: None,
            error: true,
        };
        let text = mount_text(&m.mount, v);
        let mut answer = hosts.run(m.host, &text, v);
        let mounting = matches!(m.mount.op, crate::plan::Op::Mount { mounting: true, .. });
        if mounting && answer.as_ref().and_then(|a| a.code) == Some(code::LOCKED) {
            let (Some(creds), Some(i)) = (&plan.credentials, m.passphrase) else {
                result.detail = Some(format!("volume '{}': no passphrase-id", m.shown));
                return result;
            };
            let p = &creds.passphrases[i];
            match cache.get(creds, p) {
                Err(e) => {
                    result.detail = Some(format!(
                        "volume '{}': passphrase not available: passphrase '{}' not available: {}",
                        m.shown, p.id, e.message
                    ));
                    result.state = "locked";
                    return result;
                }
                Ok(secret) => {
                    let call = mount::with_key(&m.mount);
                    let text = mount::key_message(&mount_text(&call, v), secret.expose());
                    answer = hosts.run(m.host, &text, v);
                }
            }
        }
        let Some(answer) = answer else {
            result.detail = Some(mount::describe(None, &m.shown, None));
            result.error = false;
            return result;
        };
        let said = |prefix: &str| {
            answer
                .output
                .lines()
                .find_map(|l| l.strip_prefix(prefix))
                .map(str::to_string)
        };
        let id = m.passphrase.and_then(|i| {
            plan.credentials
                .as_ref()
                .map(|c| c.passphrases[i].id.clone())
        });
        let mut detail = mount::describe(answer.code, &m.shown, id.as_deref());
        if let Some(d) = said("detail ") {
            if answer.code != Some(0) {
                detail.push_str(&format!(": {d}"));
            }
        }
        match answer.code {
            Some(0) => match said("mountpoint ") {
                Some(mp) if m.mount_point.is_none() || mount::plain_mount_point(&mp) => {
                    result.state = "mounted";
                    result.error = false;
                    result.detail = Some(format!("volume '{}' mounted at {mp}", m.shown));
                    result.mount_point = Some(mp);
                }
                Some(mp) => {
                    result.detail = Some(format!(
                        "volume '{}' is mounted at {mp:?}, whose characters nbkp does not use in commands; give the volume a `path` (an fstab mount point)",
                        m.shown
                    ));
                }
                None => result.detail = Some(detail),
            },
            Some(code::ABSENT) => {
                result.state = "absent";
                result.error = false;
                result.detail = Some(detail);
            }
            Some(code::LOCKED) | Some(code::UNMOUNTED) => {
                result.state = if answer.code == Some(code::LOCKED) {
                    "locked"
                } else {
                    "unmounted"
                };
                result.error = mounting;
                result.detail = Some(detail);
            }
            _ => result.detail = Some(detail),
        }
        result
    }
}

/// Unmounts and locks every mount-managed volume, in reverse order.
pub fn umount_all(
    plan: &Plan,
    hosts: &Hosts,
    v: &Values,
    log: &mut dyn FnMut(&str),
) -> Vec<MountResult> {
    {
        let mut results = Vec::new();
        for m in plan.mounts.iter().rev() {
            let Some(call) = &m.umount else { continue };
            let text = mount_text(call, v);
            let answer = hosts.run(m.host, &text, v);
            let mut r = MountResult {
                volume: m.shown.clone(),
                state: "failed",
                mount_point: None,
                detail: None,
                error: true,
            };
            match answer {
                None => {
                    r.detail = Some(format!(
                        "volume '{}': its host did not answer; it may still be mounted",
                        m.shown
                    ))
                }
                Some(a) => {
                    for w in a.output.lines().filter_map(|l| l.strip_prefix("warning ")) {
                        log(&format!("WARN: volume '{}': {w}", m.shown));
                    }
                    let has = |w: &str| a.output.lines().any(|l| l == w);
                    if a.code == Some(0) {
                        r.error = false;
                        r.state = if has("state absent") {
                            "absent"
                        } else if has("locked") || has("state locked") {
                            "locked"
                        } else {
                            "unmounted"
                        };
                        let what = match (has("unmounted"), has("locked")) {
                            (true, true) => Some("unmounted and locked"),
                            (true, false) => Some("unmounted"),
                            (false, true) => Some("locked"),
                            _ => None,
                        };
                        if let Some(what) = what {
                            r.detail = Some(format!("volume '{}' {what}", m.shown));
                        }
                    } else {
                        r.detail = Some(format!(
                            "volume '{}': unmount failed; the device may still be mounted",
                            m.shown
                        ));
                    }
                }
            }
            match (&r.detail, r.error) {
                (Some(d), true) => log(&format!("ERROR: {d}")),
                (Some(d), false) => log(d),
                _ => {}
            }
            results.push(r);
        }
        results
    }
}

/// Each mount-managed volume's state, changing nothing (`disks status`).
pub fn mount_states(plan: &Plan, hosts: &Hosts, v: &Values) -> Vec<(String, Option<String>)> {
    {
        let mut out = Vec::new();
        for m in &plan.mounts {
            let text = format!(
                "nbkp_mount_state {} {} ''",
                crate::shell::quote(&m.device_uuid),
                if m.passphrase.is_some() { "1" } else { "0" }
            );
            let state = hosts
                .run(m.host, &text, v)
                .and_then(|a| a.output.lines().next().map(str::to_string));
            out.push((m.shown.clone(), state));
        }
        out
    }
}
