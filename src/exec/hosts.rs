//! Running the runtime library on hosts. Each host gets one long-lived
//! `sh -s` (here, or over the run's shared SSH connection) that receives
//! the library once; every probe script or operation is then one message
//! and one answer, which costs one network round trip on a remote host
//! instead of a new SSH session each time.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
        let (child, mut stdin, stdout) = spawn(&self.shell_argv(&self.plan.hosts[index], values))?;
        stdin.write_all(LIB.as_bytes()).ok()?;
        Some(Session {
            child,
            stdin: Some(stdin),
            stdout,
            marker: new_marker(),
        })
    }

    /// Runs `commands` (after the library) on host `index`; `None` when the
    /// host's shell cannot be reached. A shell that died since its last
    /// answer (a dropped connection) is replaced once; a host that did not
    /// answer its probes is not tried again.
    pub fn run(&self, index: usize, commands: &str, values: &Values) -> Option<Answer> {
        let had_session = matches!(self.sessions.borrow().get(&index), Some(Some(_)));
        match self.run_once(index, commands, values) {
            None if had_session => self.run_once(index, commands, values),
            answer => answer,
        }
    }

    fn run_once(&self, index: usize, commands: &str, values: &Values) -> Option<Answer> {
        let mut sessions = self.sessions.borrow_mut();
        let slot = sessions
            .entry(index)
            .or_insert_with(|| self.open(index, values));
        let session = slot.as_mut()?;
        let message = wrap(commands, &session.marker);
        let answer = (|| {
            let stdin = session.stdin.as_mut()?;
            stdin.write_all(message.as_bytes()).ok()?;
            stdin.flush().ok()?;
            session.read_answer()
        })();
        if answer.is_none() {
            // The shell is gone (host unreachable, connection dropped).
            sessions.remove(&index);
        }
        answer
    }
}

/// Commands as sent to a host's shell: in a subshell, so an operation's
/// `exit` or variables never reach the session, then the end marker.
fn wrap(commands: &str, marker: &str) -> String {
    format!("( {commands}\n) 2>&1\necho \"{marker} $?\"\n")
}

/// Ends every answer; random, so no output can forge it.
fn new_marker() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("@@nbkp-end-{}-{nanos}", std::process::id())
}

/// Starts a host's shell (argv), its input and output piped.
fn spawn(argv: &[String]) -> Option<(Child, ChildStdin, BufReader<ChildStdout>)> {
    let mut child = crate::credentials::scrubbed(Command::new(&argv[0]))
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let stdin = child.stdin.take()?;
    let stdout = BufReader::new(child.stdout.take()?);
    Some((child, stdin, stdout))
}

impl Session {
    /// The lines up to the end marker, and the exit code it carries.
    fn read_answer(&mut self) -> Option<Answer> {
        read_answer(&mut self.stdout, &self.marker, None)
    }
}

/// The lines up to `marker`, and the exit code it carries; `None` if the
/// output ends first or, with a deadline, if that passes first.
fn read_answer(
    from: &mut BufReader<ChildStdout>,
    marker: &str,
    deadline: Option<Instant>,
) -> Option<Answer> {
    let mut output = String::new();
    loop {
        let line = match deadline {
            None => {
                let mut line = String::new();
                if from.read_line(&mut line).ok()? == 0 {
                    return None;
                }
                line
            }
            Some(deadline) => read_line_until(from, deadline)?,
        };
        if let Some(code) = line.trim_end().strip_prefix(marker) {
            return Some(Answer {
                code: code.trim().parse().ok(),
                output,
            });
        }
        output.push_str(&line);
    }
}

/// One line, read only as far as the deadline allows: no read is started
/// that could block past it.
fn read_line_until(from: &mut BufReader<ChildStdout>, deadline: Instant) -> Option<String> {
    let mut line = Vec::new();
    loop {
        let buf = from.buffer();
        if let Some(end) = buf.iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&buf[..=end]);
            from.consume(end + 1);
            return Some(String::from_utf8_lossy(&line).into_owned());
        }
        line.extend_from_slice(buf);
        let n = buf.len();
        from.consume(n);
        let left = deadline.checked_duration_since(Instant::now())?;
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
        if !super::child_exit::readable(from.get_ref(), ms) {
            if Instant::now() >= deadline {
                return None;
            }
            continue;
        }
        // Something to read (or the end): this read does not block.
        if from.fill_buf().ok()?.is_empty() {
            return None;
        }
    }
}

/// The first sync's session, to open as soon as its host's shared
/// connection is up (its control socket exists).
pub struct EarlyChannel {
    pub socket: String,
    pub argv: Vec<String>,
}

/// A remote host's probes, out in a thread of their own.
pub struct Asking {
    index: usize,
    handle: JoinHandle<Probed>,
}

/// What a host's probes came back with.
#[derive(Default)]
struct Probed {
    session: Option<Session>,
    answer: Option<Answer>,
    then: Option<Answer>,
    channel: Option<super::channels::Session>,
}

/// What [`Hosts::ask_finish`] returns: the answers by probe index, the
/// answer to the commands sent behind the probes, and the first sync's
/// session if it was opened.
pub type Asked = (
    Vec<Option<String>>,
    Option<Answer>,
    Option<super::channels::Session>,
);

/// Asks a remote host its probes (in its own thread): starts its shell,
/// sends the library, the probes and `then`, and waits for the probes'
/// answer until `bound` has passed since the start, name resolution and
/// connection included; then the shell is killed and the host counts as
/// not answering. `then`'s answer is read without a bound: it is an
/// operation that has begun, and stopping it half-way would leave it
/// half-done.
fn probe_remote(
    argv: Vec<String>,
    script: String,
    then: Option<String>,
    bound: Option<Duration>,
    early: Option<EarlyChannel>,
) -> Probed {
    let deadline = bound.map(|b| Instant::now() + b);
    let Some((mut child, mut stdin, mut stdout)) = spawn(&argv) else {
        return Probed::default();
    };
    let marker = new_marker();
    let mut message = String::from(LIB);
    message.push_str(&wrap(&script, &marker));
    if let Some(then) = &then {
        message.push_str(&wrap(then, &marker));
    }
    // Written by a thread of its own: a host that reads nothing yet (still
    // connecting) must not hold this one past its deadline once the pipe
    // is full. Killing the shell ends the write.
    let writer = std::thread::spawn(move || {
        let ok = stdin.write_all(message.as_bytes()).is_ok() && stdin.flush().is_ok();
        ok.then_some(stdin)
    });
    let mut channel = None;
    let mut early = early;
    // Until the answer begins (or the deadline): the first sync's session
    // opens once the shared connection is up.
    while stdout.buffer().is_empty() && !super::child_exit::readable(stdout.get_ref(), 10) {
        if let Some(e) = early.take_if(|e| std::path::Path::new(&e.socket).exists()) {
            channel = super::channels::Session::start(e.argv);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
    }
    let answer = read_answer(&mut stdout, &marker, deadline);
    let then_answer = match (&answer, &then) {
        (Some(_), Some(_)) => read_answer(&mut stdout, &marker, None),
        _ => None,
    };
    if answer.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        let _ = writer.join();
        return Probed::default();
    }
    let stdin = writer.join().ok().flatten();
    let session = Session {
        child,
        stdin,
        stdout,
        marker,
    };
    Probed {
        session: Some(session),
        answer,
        then: then_answer,
        channel,
    }
}

/// The probes' answers by index: only plain tokens, and only from a
/// script that ran to its end.
fn parse_answers(count: usize, out: Option<Answer>) -> Vec<Option<String>> {
    let mut answers = vec![None; count];
    let Some(out) = out.filter(|o| o.code == Some(0)) else {
        return answers;
    };
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

/// A host's probe script, after the mount points it needs.
fn probe_message(host: &Host, values: &Values) -> String {
    format!(
        "{}{}",
        values.mount_assignments(),
        words::probe_script(&host.probes)
    )
}

impl Hosts<'_> {
    /// Asks host `index` all its probes; answers by probe index (`None`
    /// when the host did not answer at all or gave no valid answer).
    pub fn ask(&self, index: usize, values: &Values) -> Vec<Option<String>> {
        let host = &self.plan.hosts[index];
        if host.ssh.is_none() {
            if let Some(answers) = super::local_probes::answer_all(&host.probes, values) {
                return answers;
            }
        }
        let script = probe_message(host, values);
        let out = self.run(index, &script, values);
        parse_answers(host.probes.len(), out)
    }

    /// Starts asking remote host `index` its probes, in a thread of its
    /// own and bounded by the host's `probe_bound`, with `then`'s commands
    /// sent right behind and the first sync's session opened once the
    /// connection is up (`early`). [`Hosts::ask_finish`] collects it.
    pub fn ask_start(
        &self,
        index: usize,
        values: &Values,
        then: Option<String>,
        early: Option<EarlyChannel>,
    ) -> Asking {
        let host = &self.plan.hosts[index];
        let argv = self.shell_argv(host, values);
        let script = probe_message(host, values);
        let bound = host.probe_bound.map(|s| Duration::from_secs(s.into()));
        let handle = std::thread::spawn(move || probe_remote(argv, script, then, bound, early));
        Asking { index, handle }
    }

    /// Waits for a host asked with [`Hosts::ask_start`]; its shell, if it
    /// answered, serves the run's operations. A host that did not answer
    /// is not tried again this run.
    pub fn ask_finish(&self, asking: Asking) -> Asked {
        let probed = asking.handle.join().unwrap_or_default();
        let count = self.plan.hosts[asking.index].probes.len();
        self.sessions
            .borrow_mut()
            .insert(asking.index, probed.session);
        (
            parse_answers(count, probed.answer),
            probed.then,
            probed.channel,
        )
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
                // No socket, no connection to close (and nothing for ssh
                // to resolve a name for, which might not answer).
                let socket = super::values::expand(&ssh.control_socket, values).concat();
                if !std::path::Path::new(&socket).exists() {
                    continue;
                }
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
