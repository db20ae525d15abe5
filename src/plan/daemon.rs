//! rsync daemon volumes in the plan: how rsync names the module, how its
//! sentinels are asked for (a daemon has no shell: `rsync --list-only`, run
//! here by the `daemon-file` probe), and where the module's password comes
//! from. Transfers run on this machine; the other side is always local.

use serde::Serialize;

use super::args::Arg;
use super::ssh::{core_args, Endpoint};
use super::{Check, Failure, ProbeRef, Verdict};
use crate::config::RsyncDaemon;

/// Where rsync gets the module's password: never from an argument.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Password {
    /// The command's output (trailing newlines removed) becomes
    /// `RSYNC_PASSWORD` of rsync alone.
    Command(Vec<String>),
    /// `RSYNC_PASSWORD` of nbkp's environment, empty when unset (rsync
    /// then never stops to prompt for one).
    Environment,
}

/// One daemon side of a sync, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonSide {
    /// `rsync://[user@]host[:port]/module` or `[user@]host::module`.
    pub base: String,
    /// `-e` for a single-use daemon through SSH.
    pub rsh: Option<Arg>,
    pub password: Password,
}

impl DaemonSide {
    /// Direct, or through `tunnel` (the SSH endpoint chosen for this run).
    pub fn new(d: &RsyncDaemon, tunnel: Option<&Endpoint>) -> DaemonSide {
        let user = d.user.as_ref().map(|u| format!("{u}@")).unwrap_or_default();
        let (base, rsh) = match tunnel {
            Some(ep) => {
                let mut words = vec![Arg::lit("ssh")];
                words.extend(core_args(ep).into_iter().map(Arg::lit));
                // The login user, given to ssh itself, so `user@` before the
                // host is only the module's rsync user.
                if let Some(login) = &ep.user {
                    words.push(Arg::lit("-l"));
                    words.push(Arg::lit(login.clone()));
                }
                (
                    format!("{user}{}::{}", ep.host, d.module),
                    Some(Arg::RshJoined(words)),
                )
            }
            None => {
                let host = d.host.clone().unwrap_or_default();
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host
                };
                (
                    format!("rsync://{user}{host}:{}/{}", d.port, d.module),
                    None,
                )
            }
        };
        DaemonSide {
            base,
            rsh,
            password: match &d.password_command {
                Some(argv) => Password::Command(argv.clone()),
                None => Password::Environment,
            },
        }
    }

    /// The probe asking whether `target` (inside the module) is a file.
    pub fn file_probe(&self, target: Arg) -> super::Probe {
        super::Probe::DaemonFile {
            target,
            rsh: self.rsh.clone(),
            password: self.password.clone(),
        }
    }
}

fn failure(
    answers: &'static [&'static str],
    verdict: Verdict,
    message: String,
    fix: String,
) -> Failure {
    Failure {
        answers,
        verdict,
        message,
        dry_run_only: false,
        fix: Some(fix),
    }
}

/// The check of a `daemon-file` probe for a sentinel: present passes; an
/// absent file (`0`) or a daemon that does not answer is an expected state
/// (`absent`: what to say); a refusal or a failed password command needs
/// fixing.
pub fn sentinel_check(probe: ProbeRef, shown: &str, absent: String, absent_fix: String) -> Check {
    Check {
        probe,
        pass: &["1"],
        fail: vec![
            failure(&["0"], Verdict::Inactive, absent, absent_fix),
            failure(
                &["unreachable"],
                Verdict::Inactive,
                format!("rsync daemon {shown} does not answer"),
                format!("Expected when away from that network. Otherwise check that the daemon runs: `rsync --list-only {shown}/`"),
            ),
            failure(
                &["denied"],
                Verdict::Broken,
                format!("rsync daemon {shown} refused: unknown module, or wrong user or password"),
                "Check the module's name, `auth users` and `secrets file` in the daemon's rsyncd.conf, and the volume's `user` and `password-command`.".into(),
            ),
            failure(
                &["nopassword"],
                Verdict::Broken,
                format!("the password command of rsync daemon {shown} failed"),
                "Run the volume's `password-command` by hand and fix what it reports.".into(),
            ),
        ],
        otherwise: Some(failure(
            &[],
            Verdict::Broken,
            format!("could not ask rsync daemon {shown}"),
            format!("Try `rsync --list-only {shown}/` and fix what it reports."),
        )),
    }
}
