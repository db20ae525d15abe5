//! Waiting for a child process to exit without polling it.
//!
//! A sync of an unchanged tree takes tens of milliseconds, so a wait that
//! checks every millisecond or two both adds up to a check's worth of
//! delay per sync and wakes this process a thousand times a second while
//! rsync's own processes want the (often two) cores. On Linux a pidfd
//! becomes readable the moment the child exits: `poll` on it sleeps until
//! then, or until the caller's deadline (its progress display, its stop
//! flag). Elsewhere, or on a kernel without pidfds, short sleeps stand in.

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// A child whose exit can be waited for with a time limit.
pub struct ChildExit {
    #[cfg(target_os = "linux")]
    pidfd: Option<std::os::fd::OwnedFd>,
    /// When the fallback's waiting began (its checks are 1 ms apart at
    /// first, then 5 ms).
    since: Instant,
}

impl ChildExit {
    pub fn new(child: &Child) -> ChildExit {
        ChildExit {
            #[cfg(target_os = "linux")]
            pidfd: pidfd_open(child.id()),
            since: Instant::now(),
        }
    }

    /// The child's exit status if it has exited within `limit`; `None` if
    /// it is still running then, or a signal arrived first (the caller
    /// looks at its stop flag and asks again).
    pub fn wait(&self, child: &mut Child, limit: Duration) -> std::io::Result<Option<ExitStatus>> {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.pidfd {
            // A signal (e.g. the SIGINT that stops the run) ends the wait
            // early: the caller checks its flag and waits again.
            readable(fd, limit.as_millis().min(i32::MAX as u128) as i32);
            return child.try_wait();
        }
        let pause = if self.since.elapsed() < Duration::from_millis(250) {
            Duration::from_millis(1)
        } else {
            Duration::from_millis(5)
        };
        std::thread::sleep(pause.min(limit));
        child.try_wait()
    }
}

/// Sleeps until one of `exits`' children exits (or a signal arrives, or
/// `limit` passes); the caller then asks each with `try_wait`.
pub fn wait_any(exits: &[&ChildExit], limit: Duration) {
    #[cfg(target_os = "linux")]
    {
        let fds: Option<Vec<libc::pollfd>> = exits
            .iter()
            .map(|e| {
                use std::os::fd::AsRawFd;
                e.pidfd.as_ref().map(|fd| libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                })
            })
            .collect();
        if let Some(mut fds) = fds {
            let ms = limit.as_millis().min(i32::MAX as u128) as i32;
            // SAFETY: valid pollfds, for the length given.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
            return;
        }
    }
    let _ = exits;
    std::thread::sleep(limit.min(Duration::from_millis(5)));
}

/// Whether `from` has something to read (for a pidfd: its process has
/// exited; for a pipe: data or its end) within `ms` milliseconds; a signal
/// ends the wait early.
pub(super) fn readable(from: &impl std::os::fd::AsRawFd, ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd: from.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, for the length given.
    unsafe { libc::poll(&mut pfd, 1, ms) > 0 }
}

#[cfg(target_os = "linux")]
fn pidfd_open(pid: u32) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new
    // descriptor (close-on-exec by definition) or -1; we own what it returns.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` is the new descriptor just returned, owned by no one else.
    Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as libc::c_int) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn returns_as_soon_as_the_child_exits() {
        let mut child = Command::new("sleep").arg("0.2").spawn().unwrap();
        let exit = ChildExit::new(&child);
        let t = Instant::now();
        let mut status = None;
        while status.is_none() {
            status = exit.wait(&mut child, Duration::from_secs(5)).unwrap();
        }
        assert!(status.unwrap().success());
        // Reaped already; this only returns the status again.
        child.wait().unwrap();
        // Woken by the exit, not by the 5 s limit.
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    }

    #[test]
    fn gives_up_at_the_limit_while_the_child_runs() {
        let mut child = Command::new("sleep").arg("10").spawn().unwrap();
        let exit = ChildExit::new(&child);
        let t = Instant::now();
        let status = exit.wait(&mut child, Duration::from_millis(100)).unwrap();
        assert!(status.is_none());
        assert!(
            t.elapsed() >= Duration::from_millis(90),
            "{:?}",
            t.elapsed()
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
