//! The sessions the plan opens ahead for rsync (see `plan::channel`):
//! started early, handed to the sync's rsync on the relay's descriptors,
//! closed (end of input: the remote side runs nothing) when not used.

use std::collections::HashMap;
use std::io::{Read, Seek};
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::plan::channel::{SESSION_INPUT_FD, SESSION_OUTPUT_FD};
use crate::plan::Host;

use super::values::{argv, Values};

/// One waiting session.
pub struct Session {
    child: Child,
    /// Ours; rsync gets copies. Dropped once rsync has them.
    input: Option<ChildStdin>,
    output: Option<ChildStdout>,
    /// ssh's and the remote side's error output, shown with rsync's.
    errors: std::fs::File,
}

impl Session {
    /// Starts a waiting session on `host`; `None` if ssh cannot start.
    pub fn open(host: &Host, values: &Values) -> Option<Session> {
        Session::start(argv(host.waiting_session.as_ref()?, values))
    }

    pub(super) fn start(args: Vec<String>) -> Option<Session> {
        let errors = tempfile::tempfile().ok()?;
        let mut child = crate::credentials::scrubbed(Command::new(&args[0]))
            .args(&args[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(errors.try_clone().ok()?)
            .spawn()
            .ok()?;
        let input = Some(child.stdin.take()?);
        let output = Some(child.stdout.take()?);
        Some(Session {
            child,
            input,
            output,
            errors,
        })
    }

    /// Whether the session is still there to be used.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Gives `cmd` (rsync) the session on the relay's descriptors. The
    /// descriptors are copied at exec; [`Session::started`] drops ours.
    pub fn attach(&self, cmd: &mut Command) {
        let (Some(input), Some(output)) = (&self.input, &self.output) else {
            return;
        };
        let (input, output) = (input.as_raw_fd(), output.as_raw_fd());
        // SAFETY: only async-signal-safe calls (fcntl, dup2, close) between
        // fork and exec. Copies above 9 first, so neither target can
        // overwrite the other's source; dup2 clears close-on-exec.
        unsafe {
            cmd.pre_exec(move || {
                let i = libc::fcntl(input, libc::F_DUPFD, 10);
                let o = libc::fcntl(output, libc::F_DUPFD, 10);
                if i < 0 || o < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::dup2(i, SESSION_INPUT_FD) < 0 || libc::dup2(o, SESSION_OUTPUT_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(i);
                libc::close(o);
                Ok(())
            });
        }
    }

    /// After rsync has ended: waits briefly for the session to end (it
    /// ends with rsync's remote side), stops it otherwise, and returns
    /// what it printed on standard error.
    pub fn finish(mut self) -> String {
        self.started();
        let deadline = Instant::now() + Duration::from_secs(2);
        let exit = super::child_exit::ChildExit::new(&self.child);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if !matches!(exit.wait(&mut self.child, left), Ok(None)) {
                break;
            }
        }
        let _ = self.errors.rewind();
        let mut bytes = Vec::new();
        let _ = self.errors.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// rsync has started with its copies: ours go, so that the session
    /// sees its input end when rsync's does.
    pub fn started(&mut self) {
        self.input = None;
        self.output = None;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Unused: end of input makes the remote side end without running
        // anything; a session that does not end soon is stopped.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The run's sessions opened ahead, by sync index.
#[derive(Default)]
pub struct Channels {
    open: HashMap<usize, Session>,
}

impl Channels {
    /// Opens sync `index`'s session now, unless it is open.
    pub fn open_ahead(&mut self, index: usize, host: &Host, values: &Values) {
        if self.open.contains_key(&index) {
            return;
        }
        if let Some(s) = Session::open(host, values) {
            self.open.insert(index, s);
        }
    }

    /// Keeps `session` as sync `index`'s (opened elsewhere).
    pub fn insert(&mut self, index: usize, session: Session) {
        self.open.entry(index).or_insert(session);
    }

    /// Sync `index`'s session if it is still there, else a new one.
    pub fn take(&mut self, index: usize, host: &Host, values: &Values) -> Option<Session> {
        let kept = self
            .open
            .remove(&index)
            .and_then(|mut s| s.alive().then_some(s));
        kept.or_else(|| Session::open(host, values))
    }

    /// Closes every session not used.
    pub fn close_all(&mut self) {
        self.open.clear();
    }
}
