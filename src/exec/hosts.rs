//! Running the runtime library on hosts: `sh -s` here, or over the run's
//! shared SSH connection (one control master per host, closed at the end).

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::plan::{Host, Plan};
use crate::render::{words, LIB};

use super::values::{argv, Values};

/// The run's hosts and their shared connections.
pub struct Hosts<'p> {
    plan: &'p Plan,
    /// Private directory of the control sockets (only with remote hosts).
    control: Option<tempfile::TempDir>,
}

impl<'p> Hosts<'p> {
    pub fn new(plan: &'p Plan) -> std::io::Result<Hosts<'p>> {
        let control = if plan.hosts.iter().any(|h| h.ssh.is_some()) {
            // Under /tmp, not $TMPDIR: socket paths must stay short.
            Some(
                tempfile::Builder::new()
                    .prefix("nbkp.")
                    .tempdir_in("/tmp")?,
            )
        } else {
            None
        };
        Ok(Hosts { plan, control })
    }

    pub fn control_dir(&self) -> String {
        self.control
            .as_ref()
            .map(|d| d.path().display().to_string())
            .unwrap_or_default()
    }

    /// `sh -s` on the host (through ssh for a remote one), as argv.
    fn shell_argv(&self, host: &Host, values: &Values) -> Vec<String> {
        match &host.ssh {
            None => vec!["sh".into(), "-s".into()],
            Some(ssh) => {
                let mut a = vec!["ssh".to_string()];
                a.extend(argv(&ssh.args, values));
                a.push(ssh.destination.clone());
                a.push("sh".into());
                a.push("-s".into());
                a
            }
        }
    }

    /// Runs the library followed by `commands` with `sh -s` on host `index`.
    pub fn run_lib(
        &self,
        index: usize,
        commands: &str,
        values: &Values,
    ) -> std::io::Result<Output> {
        let host = &self.plan.hosts[index];
        let argv = self.shell_argv(host, values);
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let text = format!("{}\n{commands}\n", LIB.trim_end());
        if let Some(mut stdin) = child.stdin.take() {
            // A host that closes early (unreachable) is seen in the exit status.
            let _ = stdin.write_all(text.as_bytes());
        }
        child.wait_with_output()
    }

    /// Asks host `index` all its probes; answers by probe index (`None`
    /// when the host did not answer at all or gave no valid answer).
    pub fn ask(&self, index: usize, values: &Values) -> Vec<Option<String>> {
        let host = &self.plan.hosts[index];
        let mut answers = vec![None; host.probes.len()];
        let Ok(out) = self.run_lib(index, &words::probe_script(&host.probes), values) else {
            return answers;
        };
        if !out.status.success() {
            return answers;
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Some((k, v)) = line.split_once(' ') else {
                continue;
            };
            let Ok(i) = k.parse::<usize>() else {
                continue;
            };
            let token = !v.is_empty()
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if token && i < answers.len() {
                answers[i] = Some(v.to_string());
            }
        }
        answers
    }

    /// Closes every shared connection.
    pub fn close(&self, values: &Values) {
        for host in &self.plan.hosts {
            if let Some(ssh) = &host.ssh {
                let mut a = argv(&ssh.args, values);
                a.push("-O".into());
                a.push("exit".into());
                a.push(ssh.destination.clone());
                let _ = Command::new("ssh")
                    .args(&a)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}
