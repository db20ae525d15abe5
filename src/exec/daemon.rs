//! rsync daemon transfers: the module's password reaches rsync only
//! through `RSYNC_PASSWORD` in rsync's own environment.

use std::process::{Command, Stdio};

use super::Executor;
use crate::plan::daemon::Password;
use crate::plan::SyncPlan;

impl Executor<'_> {
    /// Sets rsync's `RSYNC_PASSWORD` as the plan says; the error says why
    /// the password command failed (never what it printed).
    pub(super) fn rsync_password(
        &mut self,
        sync: &SyncPlan,
        rsync: &mut Command,
    ) -> Result<(), String> {
        match &sync.rsync_password {
            None => Ok(()),
            Some(Password::Environment) => {
                if std::env::var_os("RSYNC_PASSWORD").is_none() {
                    // Empty rather than unset: rsync never stops at a prompt.
                    rsync.env("RSYNC_PASSWORD", "");
                }
                Ok(())
            }
            Some(Password::Command(argv)) => {
                // It may print (or ask) on stderr too: the log comes first.
                self.flush_log();
                let out = Command::new(&argv[0])
                    .args(&argv[1..])
                    .stdin(Stdio::null())
                    .stderr(Stdio::inherit())
                    .output()
                    .map_err(|e| format!("the password command cannot be run: {e}"))?;
                if !out.status.success() {
                    return Err(format!(
                        "the password command failed (exit {})",
                        out.status.code().unwrap_or(-1)
                    ));
                }
                let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
                // As the shell's $(…): trailing newlines go.
                while text.ends_with('\n') {
                    text.pop();
                }
                rsync.env("RSYNC_PASSWORD", text);
                Ok(())
            }
        }
    }
}
