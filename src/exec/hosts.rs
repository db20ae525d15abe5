//! Running the runtime library on hosts. Each host gets one long-lived
//! `sh -s` (here, or over the run's shared SSH connection) that receives
//! the library once; every probe script or operation is then one message
//! and one answer, which costs one network round trip on a remote host
//! instead of a new SSH session each time.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::plan::words;
use crate::plan::{Host, OpCall, Plan};
use crate::runtime::LIB;

use super::values::{argv, Values};

/// An operation as sent to a host's shell: its run-time values as
/// `NAME=value` lines (plain tokens), then the call.
pub fn op_message(call: &OpCall, v: &Values) -> String {
    let mut text = v.mount_assignments();
    for var in words::OP_VARS {
        text.push_str(&format!("{}={}\n", var.shell_name(), v.get(*var)));
    }
    text.push_str(&words::op_text(call));
    text
}

/// What a command sent to a host's shell printed, and how it ended.
pub struct Answer {
    pub code: Option<i32>,
    /// Standard output and standard error, interleaved.
    pub output: String,
}

struct Session {
    child: Child,
    /// Taken (closed) to let the shell end.
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    /// Ends every answer; random, so no output can forge it.
    marker: String,
}

/// The run's hosts, their shared connections and their shells.
pub struct Hosts<'p> {
    plan: &'p Plan,
    /// Private directory of the control sockets (only with remote hosts).
    control: Option<tempfile::TempDir>,
    sessions: RefCell<HashMap<usize, Option<Session>>>,
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
        Ok(Hosts {
            plan,
            control,
            sessions: RefCell::new(HashMap::new()),
        })
    }

    pub fn plan(&self) -> &'p Plan {
        self.plan
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

    fn open(&self, index: usize, values: &Values) -> Option<Session> {
        let argv = self.shell_argv(&self.plan.hosts[index], values);
        let mut child = crate::credentials::scrubbed(Command::new(&argv[0]))
            .args(&argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut stdin = child.stdin.take()?;
        let stdout = BufReader::new(child.stdout.take()?);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let marker = format!("@@nbkp-end-{}-{nanos}", std::process::id());
        stdin.write_all(LIB.as_bytes()).ok()?;
        Some(Session {
            child,
            stdin: Some(stdin),
            stdout,
            marker,
        })
    }

    /// Runs `commands` (after the library) on host `index`; `None` when the
    /// host's shell cannot be reached. A shell that died since its last
    /// answer (a dropped connection) is replaced once.
    pub fn run(&self, index: usize, commands: &str, values: &Values) -> Option<Answer> {
        self.run_waiting(index, commands, values, &mut || true, None)
    }

    /// [`Hosts::run`], calling `waiting` every few milliseconds until the
    /// answer begins to arrive or `waiting` returns true (done waiting);
    /// `then`'s commands, if any, are sent right behind, their answer read
    /// into its slot (one round trip for both).
    fn run_waiting(
        &self,
        index: usize,
        commands: &str,
        values: &Values,
        waiting: &mut dyn FnMut() -> bool,
        mut then: Option<(&str, &mut Option<Answer>)>,
    ) -> Option<Answer> {
        let had_session = matches!(self.sessions.borrow().get(&index), Some(Some(_)));
        match self.run_once(index, commands, values, waiting, then.as_mut()) {
            // A replaced shell gets the first commands only.
            None if had_session => self.run_once(index, commands, values, waiting, None),
            answer => answer,
        }
    }

    fn run_once(
        &self,
        index: usize,
        commands: &str,
        values: &Values,
        waiting: &mut dyn FnMut() -> bool,
        then: Option<&mut (&str, &mut Option<Answer>)>,
    ) -> Option<Answer> {
        let mut sessions = self.sessions.borrow_mut();
        let slot = sessions
            .entry(index)
            .or_insert_with(|| self.open(index, values));
        let session = slot.as_mut()?;
        // A subshell: an operation's `exit` or variables never reach the session.
        let wrap =
            |commands: &str| format!("( {commands}\n) 2>&1\necho \"{} $?\"\n", session.marker);
        let mut message = wrap(commands);
        if let Some((next, _)) = &then {
            message.push_str(&wrap(next));
        }
        let answer = (|| {
            let stdin = session.stdin.as_mut()?;
            stdin.write_all(message.as_bytes()).ok()?;
            stdin.flush().ok()?;
            while session.stdout.buffer().is_empty()
                && !super::child_exit::readable(session.stdout.get_ref(), 10)
                && !waiting()
            {}
            let first = session.read_answer()?;
            if let Some((_, slot)) = then {
                **slot = Some(session.read_answer()?);
            }
            Some(first)
        })();
        if answer.is_none() {
            // The shell is gone (host unreachable, connection dropped).
            sessions.remove(&index);
        }
        answer
    }
}

impl Session {
    /// The lines up to the end marker, and the exit code it carries.
    fn read_answer(&mut self) -> Option<Answer> {
        let mut output = String::new();
        loop {
            let mut line = String::new();
            if self.stdout.read_line(&mut line).ok()? == 0 {
                return None;
            }
            if let Some(code) = line.trim_end().strip_prefix(&self.marker) {
                return Some(Answer {
                    code: code.trim().parse().ok(),
                    output,
                });
            }
            output.push_str(&line);
        }
    }
}

impl Hosts<'_> {
    /// Asks host `index` all its probes; answers by probe index (`None`
    /// when the host did not answer at all or gave no valid answer).
    pub fn ask(&self, index: usize, values: &Values) -> Vec<Option<String>> {
        self.ask_then(index, values, &mut || true, None)
    }

    /// [`Hosts::ask`], calling `waiting` every few milliseconds while the
    /// host has not begun to answer (until it returns true), with `then`'s
    /// commands sent right behind the probes and their answer read into
    /// its slot.
    pub fn ask_then(
        &self,
        index: usize,
        values: &Values,
        waiting: &mut dyn FnMut() -> bool,
        then: Option<(&str, &mut Option<Answer>)>,
    ) -> Vec<Option<String>> {
        let host = &self.plan.hosts[index];
        if host.ssh.is_none() {
            if let Some(answers) = super::local_probes::answer_all(&host.probes, values) {
                return answers;
            }
        }
        let mut answers = vec![None; host.probes.len()];
        let script = format!(
            "{}{}",
            values.mount_assignments(),
            words::probe_script(&host.probes)
        );
        let Some(out) = self.run_waiting(index, &script, values, waiting, then) else {
            return answers;
        };
        if out.code != Some(0) {
            return answers;
        }
        for line in out.output.lines() {
            let Some((k, v)) = line.split_once(' ') else {
                continue;
            };
            let Ok(i) = k.parse::<usize>() else {
                continue;
            };
            let token = !v.is_empty()
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-:".contains(&b));
            if token && i < answers.len() {
                answers[i] = Some(v.to_string());
            }
        }
        answers
    }

    /// Ends every shell and closes every shared connection.
    pub fn close(&self, values: &Values) {
        // Every operation has answered, so nothing is left for the shells to
        // do: each gets its end of input, and the shared connections are
        // closed before the shells are waited for. (Waiting first would
        // cost a network round trip per remote host for nothing.)
        let sessions: Vec<Session> = self
            .sessions
            .borrow_mut()
            .drain()
            .filter_map(|(_, s)| s)
            .map(|mut s| {
                drop(s.stdin.take());
                s
            })
            .collect();
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
        for mut s in sessions {
            let _ = s.child.wait();
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
