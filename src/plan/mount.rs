//! Mount-managed volumes (`mount:`) in the plan: which drives a run unlocks
//! and mounts (udisks2, on the volume's host), where their mount points come
//! from, the checks their state answers, and where passphrases come from.
//!
//! The operations themselves are `nbkp_mount`, `nbkp_umount` and
//! `nbkp_mount_state` of the runtime library; a passphrase reaches them only
//! as the body of a here-document on the host shell's standard input (see
//! [`key_message`]), never as an argument or a variable of a command line.

use serde::Serialize;

use super::args::Var;
use super::{Check, Failure, Op, OpCall, ProbeRef, Verdict};
use crate::config::{Config, CredentialProvider};

/// What a pathless volume's mount point is while it is not mounted: a path
/// that can never exist (nothing can be below `/dev/null`), so no probe can
/// pass and no write can land anywhere.
pub const NOT_MOUNTED: &str = "/dev/null/nbkp-not-mounted";

/// Ends the here-document that carries a passphrase; a passphrase equal to
/// it (or with a line break) is refused, so the document always ends where
/// it should.
pub const KEY_END: &str = "NBKP_KEY_END";

/// Exit codes of `nbkp_mount` (templates/lib.sh).
pub mod code {
    pub const ABSENT: i32 = 10;
    pub const LOCKED: i32 = 11;
    pub const UNMOUNTED: i32 = 12;
    pub const WRONG_PASSPHRASE: i32 = 20;
    pub const UNLOCK_FAILED: i32 = 21;
    pub const MOUNT_FAILED: i32 = 22;
    pub const NOT_AUTHORIZED: i32 = 23;
    pub const NO_UDISKS: i32 = 24;
}

/// One mount-managed volume of the plan.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MountPlan {
    pub volume: String,
    /// `<slug>` for a local volume, `<ssh-endpoint>:<slug>` for a remote one.
    pub shown: String,
    pub host: usize,
    pub device_uuid: String,
    /// Index into [`CredentialPlan::passphrases`] (encrypted volumes).
    pub passphrase: Option<usize>,
    /// The run-time value holding the mount point, for volumes without `path`.
    pub mount_point: Option<Var>,
    /// The declared path, if any.
    pub path: Option<String>,
    /// Unlock (passphrase on stdin) and mount; with `--no-mount` it only
    /// looks (and finds the mount point). Args: uuid, encrypted, key, mount.
    pub mount: OpCall,
    /// After the run (also after failures and interruptions); `None` with
    /// `--no-umount`.
    pub umount: Option<OpCall>,
}

/// Where passphrases come from, decided from the config.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CredentialPlan {
    pub provider: &'static str,
    pub passphrases: Vec<Passphrase>,
}

/// One `passphrase-id`, shared by every volume naming it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Passphrase {
    pub id: String,
    /// The `env` provider's variable: `NBKP_PASSPHRASE_<ID>`.
    pub env: String,
    /// The `command` provider's argv, `{id}` replaced.
    pub command: Vec<String>,
    /// Volumes using it, in config order.
    pub volumes: Vec<String>,
}

/// `NBKP_PASSPHRASE_<ID>`: upper case, `-` → `_`.
pub fn env_name(id: &str) -> String {
    format!("NBKP_PASSPHRASE_{}", id.to_uppercase().replace('-', "_"))
}

impl CredentialPlan {
    /// Every passphrase-id of the config (sorted), with its volumes.
    pub fn from_config(config: &Config) -> CredentialPlan {
        let mut passphrases: Vec<Passphrase> = Vec::new();
        for v in config.volumes.values() {
            let Some(enc) = v.mount.as_ref().and_then(|m| m.encryption.as_ref()) else {
                continue;
            };
            match passphrases.iter_mut().find(|p| p.id == enc.passphrase_id) {
                Some(p) => p.volumes.push(v.slug.clone()),
                None => passphrases.push(Passphrase {
                    id: enc.passphrase_id.clone(),
                    env: env_name(&enc.passphrase_id),
                    command: config
                        .credential_command
                        .iter()
                        .flatten()
                        .map(|w| w.replace("{id}", &enc.passphrase_id))
                        .collect(),
                    volumes: vec![v.slug.clone()],
                }),
            }
        }
        passphrases.sort_by(|a, b| a.id.cmp(&b.id));
        CredentialPlan {
            provider: config.credential_provider.name(),
            passphrases,
        }
    }

    pub fn provider(&self) -> CredentialProvider {
        CredentialProvider::from_name(self.provider).unwrap_or_default()
    }

    pub fn index(&self, id: &str) -> Option<usize> {
        self.passphrases.iter().position(|p| p.id == id)
    }
}

/// Whether a discovered mount point can be used as a run-time value: it is
/// put in single quotes and, in command strings for a remote shell, left
/// bare, so only characters that are plain in both are accepted.
pub fn plain_mount_point(path: &str) -> bool {
    path.starts_with('/')
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./:+@,%=-".contains(&b))
}

/// Why a passphrase cannot be sent as a here-document, if it cannot.
pub fn unsendable(passphrase: &str) -> Option<&'static str> {
    if passphrase.is_empty() {
        Some("it is empty")
    } else if passphrase.contains('\n') || passphrase.contains('\r') || passphrase.contains('\0') {
        Some("it contains a line break or NUL")
    } else if passphrase == KEY_END {
        Some("it equals the marker that ends it")
    } else {
        None
    }
}

/// The text sent to the host's shell for an unlock: the operation, then the
/// passphrase as the body of a quoted here-document (nothing in it is
/// expanded), read by `nbkp_mount` from its standard input.
pub fn key_message(op_text: &str, passphrase: &str) -> String {
    format!("{op_text} <<'{KEY_END}'\n{passphrase}\n{KEY_END}")
}

/// The mount check of a volume: its drive is there, unlocked and mounted.
pub fn check(m: &MountPlan, probe: ProbeRef, mounting: bool) -> Check {
    let vol = &m.shown;
    let fail = |answers: &'static [&'static str], verdict, message: String, fix: String| Failure {
        answers,
        verdict,
        message,
        dry_run_only: false,
        fix: Some(fix),
    };
    let mut fails = vec![fail(
        &["absent"],
        Verdict::Inactive,
        format!(
            "volume '{vol}': device not plugged in (UUID: {})",
            m.device_uuid
        ),
        "Plug in the drive (expected when it is elsewhere).".into(),
    )];
    let disks_mount = format!("nbkp disks mount -n {}", m.volume);
    if mounting {
        fails.push(fail(
            &["locked"],
            Verdict::Broken,
            format!("volume '{vol}': the encrypted device is still locked (unlocking failed, see above)"),
            format!("Check the passphrase in the credential provider, then `{disks_mount}`."),
        ));
        fails.push(fail(
            &["unmounted"],
            Verdict::Broken,
            format!("volume '{vol}': failed to mount volume"),
            format!("See the error above; `{disks_mount}` tries again."),
        ));
    } else {
        fails.push(fail(
            &["locked", "unmounted"],
            Verdict::Inactive,
            format!("volume '{vol}': volume not mounted (--no-mount)"),
            format!("Run without --no-mount, or `{disks_mount}` first."),
        ));
    }
    let elsewhere = match &m.path {
        Some(p) => format!("volume '{vol}': mounted, but not at its path {p} (no fstab entry maps the device to the configured path)"),
        None => format!("volume '{vol}': mounted, but not where it was found"),
    };
    fails.push(fail(
        &["elsewhere"],
        Verdict::Broken,
        elsewhere,
        "Add an /etc/fstab line mounting the device at the volume's path, or remove `path` so the mount point is discovered.".into(),
    ));
    Check {
        probe,
        pass: &["mounted"],
        fail: fails,
        otherwise: Some(Failure {
            answers: &[],
            verdict: Verdict::Broken,
            message: format!("volume '{vol}': device state unknown"),
            dry_run_only: false,
            fix: Some("Check that lsblk and findmnt work on the volume's host.".into()),
        }),
    }
}

/// The operation calls of one volume.
pub fn ops(
    host: usize,
    uuid: &str,
    encrypted: bool,
    mounting: bool,
    unmounting: bool,
) -> (OpCall, Option<OpCall>) {
    let mount = OpCall {
        host,
        op: Op::Mount {
            uuid: uuid.to_owned(),
            encrypted,
            key: "-",
            mounting,
        },
    };
    let umount = unmounting.then(|| OpCall {
        host,
        op: Op::Umount {
            uuid: uuid.to_owned(),
            encrypted,
        },
    });
    (mount, umount)
}

/// The same mount call, with the passphrase coming on standard input.
pub fn with_key(call: &OpCall) -> OpCall {
    let mut c = call.clone();
    if let Op::Mount { key, .. } = &mut c.op {
        *key = "stdin";
    }
    c
}

/// What `nbkp_mount` exiting with `code` means, for a person.
pub fn describe(code: Option<i32>, volume: &str, passphrase_id: Option<&str>) -> String {
    let id = passphrase_id.unwrap_or("?");
    match code {
        Some(0) => format!("volume '{volume}' mounted"),
        Some(code::ABSENT) => format!("volume '{volume}': device not plugged in"),
        Some(code::LOCKED) => format!("volume '{volume}': locked"),
        Some(code::UNMOUNTED) => format!("volume '{volume}': not mounted"),
        Some(code::WRONG_PASSPHRASE) => {
            format!("volume '{volume}': wrong passphrase (passphrase-id '{id}'): failed to unlock luks encrypted device")
        }
        Some(code::UNLOCK_FAILED) => {
            format!("volume '{volume}': failed to unlock luks encrypted device")
        }
        Some(code::MOUNT_FAILED) => format!("volume '{volume}': failed to mount volume"),
        Some(code::NOT_AUTHORIZED) => format!(
            "volume '{volume}': not authorized — polkit rules not configured (see `nbkp disks setup-auth`)"
        ),
        Some(code::NO_UDISKS) => {
            format!("volume '{volume}': udisks2 is not available (udisksctl not found or udisksd not running)")
        }
        Some(c) => format!("volume '{volume}': mount failed (exit {c})"),
        None => format!("volume '{volume}': its host did not answer"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names() {
        assert_eq!(env_name("seagate-8tb"), "NBKP_PASSPHRASE_SEAGATE_8TB");
        assert_eq!(env_name("vault"), "NBKP_PASSPHRASE_VAULT");
    }

    #[test]
    fn only_plain_mount_points_are_used() {
        assert!(plain_mount_point("/media/backup/SEAGATE_8TB"));
        assert!(plain_mount_point("/run/media/me/disk-1.2"));
        for bad in [
            "/media/me/My Book",
            "/media/it's",
            "/a/$(x)",
            "relative",
            "/a\nb",
            "/ü",
        ] {
            assert!(!plain_mount_point(bad), "{bad:?}");
        }
    }

    #[test]
    fn passphrases_that_cannot_end_their_here_document_are_refused() {
        assert_eq!(unsendable("fine one with spaces 'and' $(stuff)"), None);
        assert!(unsendable("").is_some());
        assert!(unsendable("two\nlines").is_some());
        assert!(unsendable("cr\r").is_some());
        assert!(unsendable(KEY_END).is_some());
    }

    #[test]
    fn the_key_travels_as_a_quoted_here_document() {
        let m = key_message("nbkp_mount U 1 stdin 1", "p $(w) 'q'");
        assert_eq!(
            m,
            "nbkp_mount U 1 stdin 1 <<'NBKP_KEY_END'\np $(w) 'q'\nNBKP_KEY_END"
        );
    }
}
