//! The script's view of the plan's mount-managed volumes and passphrases
//! (`templates/mount.sh.j2`).

use minijinja::value::Value;
use serde::Serialize;

use crate::plan::mount::{self, code};
use crate::plan::words;
use crate::plan::Plan;

#[derive(Serialize)]
pub struct MountView {
    n: usize,
    host: String,
    /// On this machine (the script's own host).
    local: bool,
    shown: String,
    uuid: String,
    /// Index of its passphrase in `credentials.passphrases`.
    key: Option<usize>,
    mounting: bool,
    /// Operation texts (one shell word each when printed).
    mount: String,
    mount_key: String,
    umount: Option<String>,
    /// What each exit code of `nbkp_mount` means for this volume.
    messages: Vec<Message>,
    other: String,
}

#[derive(Serialize)]
struct Message {
    code: i32,
    text: String,
}

#[derive(Serialize)]
pub struct PassphraseView {
    k: usize,
    id: String,
    env: Value,
    /// Safe: shell words, every literal quoted.
    command: Value,
    used: bool,
}

#[derive(Serialize)]
pub struct CredentialsView {
    provider: String,
    passphrases: Vec<PassphraseView>,
}

pub fn views(plan: &Plan) -> (Vec<MountView>, Option<CredentialsView>) {
    let mounts: Vec<MountView> = plan
        .mounts
        .iter()
        .enumerate()
        .map(|(n, m)| {
            let id = m.passphrase.and_then(|i| {
                plan.credentials
                    .as_ref()
                    .map(|c| c.passphrases[i].id.clone())
            });
            let mounting = matches!(m.mount.op, crate::plan::Op::Mount { mounting: true, .. });
            let mut codes = vec![code::ABSENT, code::LOCKED, code::UNMOUNTED];
            codes.extend([
                code::WRONG_PASSPHRASE,
                code::UNLOCK_FAILED,
                code::MOUNT_FAILED,
                code::NOT_AUTHORIZED,
                code::NO_UDISKS,
            ]);
            let messages = codes
                .into_iter()
                .map(|c| {
                    let text = mount::describe(Some(c), &m.shown, id.as_deref());
                    let error =
                        c >= 20 || (mounting && (c == code::LOCKED || c == code::UNMOUNTED));
                    Message {
                        code: c,
                        text: if error {
                            format!("ERROR: {text}")
                        } else {
                            text
                        },
                    }
                })
                .chain(std::iter::once(Message {
                    // nbkp_sh: the host did not answer (an expected state).
                    code: 255,
                    text: mount::describe(None, &m.shown, id.as_deref()),
                }))
                .collect();
            MountView {
                n,
                host: plan.hosts[m.host].id.clone(),
                local: plan.hosts[m.host].ssh.is_none(),
                shown: m.shown.clone(),
                uuid: m.device_uuid.clone(),
                key: m.passphrase,
                mounting,
                mount: words::op_text(&m.mount),
                mount_key: words::op_text(&mount::with_key(&m.mount)),
                umount: m.umount.as_ref().map(words::op_text),
                messages,
                other: format!("ERROR: volume '{}': mount failed", m.shown),
            }
        })
        .collect();
    let credentials = plan.credentials.as_ref().map(|c| CredentialsView {
        provider: c.provider.to_string(),
        passphrases: c
            .passphrases
            .iter()
            .enumerate()
            .map(|(k, p)| PassphraseView {
                k,
                id: p.id.clone(),
                env: Value::from_safe_string(p.env.clone()),
                command: Value::from_safe_string(words::words(
                    &p.command
                        .iter()
                        .map(|w| crate::plan::Arg::lit(w.clone()))
                        .collect::<Vec<_>>(),
                )),
                used: plan.mounts.iter().any(|m| m.passphrase == Some(k)),
            })
            .collect(),
    });
    (mounts, credentials)
}
