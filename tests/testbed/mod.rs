//! The nbkp integration-test bed: real components for every test.
//!
//! Use it from an integration test file in `tests/` with
//!
//! ```ignore
//! mod testbed;
//! use testbed::{require, Component};
//!
//! #[test]
//! fn backs_up_over_ssh() {
//!     if !require(testbed::remote::RemoteHost::COMPONENTS) {
//!         return;
//!     }
//!     let remote = testbed::remote::RemoteHost::start();
//!     // ... run `nbkp` / rsync / ssh with `remote.ssh_config()` ...
//! }
//! ```
//!
//! Pieces:
//! - [`remote`]: an `sshd` in its own network, mount and UTS namespace (a real
//!   "other host"), optional delay proxy, login counting, connection dropping.
//! - [`delay`]: a TCP proxy that adds latency (the kernel has no netem).
//! - [`volume`]: btrfs loop volumes and ext4/btrfs loop "drives" that tests plug
//!   and unplug, on the host or inside the remote host.
//! - [`shells`]: the seven POSIX-ish shells and `shellcheck -s sh`.
//! - [`fixtures`]: source trees with awkward names, links, sparse/large files.
//! - [`tree`]: compare two trees and get a readable diff.
//!
//! Every resource is released on `Drop` (so also when a test panics), names are
//! unique per process and instance so tests run in parallel, and every wait is
//! bounded. See `docs/testing.md`.
#![allow(dead_code)]

pub mod absent;
pub mod delay;
pub mod fixtures;
pub mod remote;
pub mod shells;
pub mod tree;
pub mod uml;
pub mod volume;

use std::ffi::OsStr;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

pub use shells::Shell;

/// Default bound for one external command run by the test bed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Something a test needs from the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    /// Running as root (loop mounts, namespaces, sshd).
    Root,
    Rsync,
    /// `sshd` (openssh-server).
    SshServer,
    /// `ssh`, `ssh-keygen` (openssh-client).
    SshClient,
    /// `mkfs.btrfs`, `btrfs` and kernel btrfs support.
    Btrfs,
    /// `mkfs.ext4`.
    Ext4,
    /// Loop devices, `mount`, `losetup`.
    Loop,
    /// `ip netns`, veth, `unshare`, `nsenter`.
    Netns,
    /// `useradd` / `usermod` to create the non-root test user.
    UserAdmin,
    Shell(Shell),
    Shellcheck,
    /// User-Mode Linux (`linux.uml` and its modules) plus `gcc` for the shim.
    Uml,
    /// A real Secret Service: a session D-Bus, gnome-keyring-daemon and
    /// secret-tool.
    Keyring,
    /// LUKS and udisks2 inside the guest: cryptsetup, udisksd with its
    /// crypto module, dbus, udevd.
    Udisks,
    /// libfaketime: runs whose wall clock is behind or ahead.
    Faketime,
}

impl Component {
    /// The apt package that provides this component.
    pub fn package(&self) -> &'static str {
        match self {
            Component::Root => "(none: run the tests as root)",
            Component::Rsync => "rsync",
            Component::SshServer => "openssh-server",
            Component::SshClient => "openssh-client",
            Component::Btrfs => "btrfs-progs",
            Component::Ext4 => "e2fsprogs",
            Component::Loop => "mount",
            Component::Netns => "iproute2 util-linux",
            Component::UserAdmin => "passwd",
            Component::Shell(s) => s.package(),
            Component::Shellcheck => "shellcheck",
            Component::Uml => "user-mode-linux kmod gcc",
            Component::Keyring => "dbus gnome-keyring libsecret-tools",
            Component::Faketime => "faketime",
            Component::Udisks => {
                "cryptsetup-bin udisks2 libblockdev-crypto2 polkitd dbus udev strace"
            }
        }
    }

    /// `Ok` if present, else what is missing.
    pub fn check(&self) -> Result<(), String> {
        let progs: &[&str] = match self {
            Component::Root => {
                // SAFETY: geteuid has no preconditions.
                return if unsafe { libc::geteuid() } == 0 {
                    Ok(())
                } else {
                    Err("the test bed must run as root".into())
                };
            }
            Component::Rsync => &["rsync"],
            Component::SshServer => &["sshd"],
            Component::SshClient => &["ssh", "ssh-keygen"],
            Component::Btrfs => {
                need_programs(&["mkfs.btrfs", "btrfs"])?;
                return kernel_fs("btrfs");
            }
            Component::Ext4 => {
                need_programs(&["mkfs.ext4"])?;
                return kernel_fs("ext4");
            }
            Component::Loop => {
                need_programs(&["mount", "umount", "losetup", "findmnt", "blkid"])?;
                return if Path::new("/dev/loop-control").exists() {
                    Ok(())
                } else {
                    Err("no /dev/loop-control (loop module)".into())
                };
            }
            Component::Netns => &["ip", "unshare", "nsenter", "awk"],
            Component::UserAdmin => &["useradd", "usermod"],
            Component::Shell(s) => &[s.program()],
            Component::Shellcheck => &["shellcheck"],
            Component::Keyring => &["dbus-daemon", "gnome-keyring-daemon", "secret-tool"],
            Component::Faketime => {
                need_programs(&["faketime"])?;
                return if Path::new(&faketime_library()).exists() {
                    Ok(())
                } else {
                    Err("libfaketime missing".into())
                };
            }
            Component::Uml => {
                need_programs(&["linux.uml", "gcc", "modprobe"])?;
                return uml::modules_dir().map(|_| ());
            }
            Component::Udisks => {
                need_programs(&[
                    "cryptsetup",
                    "udisksctl",
                    "dbus-daemon",
                    "udevadm",
                    "strace",
                ])?;
                for f in [uml::UDISKSD, uml::UDEVD] {
                    if !Path::new(f).exists() {
                        return Err(format!("missing {f}"));
                    }
                }
                return if Path::new("/usr/lib/x86_64-linux-gnu/udisks2/modules").exists()
                    || std::fs::read_dir("/usr/lib/x86_64-linux-gnu")
                        .map(|d| {
                            d.flatten().any(|e| {
                                e.file_name().to_string_lossy().starts_with("libbd_crypto")
                            })
                        })
                        .unwrap_or(false)
                {
                    Ok(())
                } else {
                    Err("libblockdev-crypto2 missing".into())
                };
            }
        };
        need_programs(progs)
    }
}

fn need_programs(progs: &[&str]) -> Result<(), String> {
    let missing: Vec<&str> = progs
        .iter()
        .copied()
        .filter(|p| which(p).is_none())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("missing program(s): {}", missing.join(", ")))
    }
}

fn kernel_fs(fs: &str) -> Result<(), String> {
    let known = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if known
        .lines()
        .any(|l| l.split_whitespace().last() == Some(fs))
    {
        return Ok(());
    }
    // Maybe a module that is not loaded yet.
    let _ = Command::new("modprobe")
        .arg("-q")
        .arg(fs)
        .stderr(Stdio::null())
        .status();
    let known = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if known
        .lines()
        .any(|l| l.split_whitespace().last() == Some(fs))
    {
        Ok(())
    } else {
        Err(format!("the kernel has no {fs} support"))
    }
}

/// True when running under CI (`CI=true`, also `1`/`yes`).
pub fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
        .unwrap_or(false)
}

/// Check that every component is present. Returns `true` if the test can go
/// on. If something is missing: under CI (`CI=true`) this panics (the test
/// fails); otherwise it prints a skip message naming what to install and
/// returns `false` (the caller returns early).
///
/// The skip message goes to stderr, e.g.
/// `SKIP backs_up_over_ssh: missing program(s): sshd -- apt-get install openssh-server`.
pub fn require(components: &[Component]) -> bool {
    require_in(in_ci(), components)
}

/// [`require`] with an explicit CI flag (for self-tests).
pub fn require_in(ci: bool, components: &[Component]) -> bool {
    let mut problems = Vec::new();
    for c in components {
        if let Err(e) = c.check() {
            let hint = match c {
                Component::Root => "run the tests as root".to_string(),
                _ => format!("apt-get install {} (or run .ci/install-deps)", c.package()),
            };
            problems.push(format!("{c:?}: {e} -- {hint}"));
        }
    }
    if problems.is_empty() {
        return true;
    }
    let test = thread::current().name().unwrap_or("?").to_string();
    let msg = format!(
        "test bed component missing for {test}: {}",
        problems.join("; ")
    );
    if ci {
        panic!("{msg} (CI=true: missing components fail the test)");
    }
    // Straight to fd 2, not eprintln!: libtest captures the print macros of
    // passing tests, and a skip must be visible.
    use std::io::Write;
    let _ = writeln!(io::stderr(), "SKIP {msg}");
    false
}

/// Return early from a test (skip) unless all components are present.
#[macro_export]
macro_rules! require {
    ($($c:expr),+ $(,)?) => {
        if !$crate::testbed::require(&[$($c),+]) {
            return;
        }
    };
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A number unique within this process.
pub fn unique_id() -> u64 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// `prefix-PID-N`: unique across processes and threads.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), unique_id())
}

/// Short unique tag (base 36 of pid and counter), at most 8 characters for
/// pids below 4M and counters below 1000 per process.
pub fn unique_tag() -> String {
    let mut n = u64::from(std::process::id()) * 1000 + unique_id() % 1000;
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(digits[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap()
}

/// Poll `cond` until it returns true, for at most `timeout`.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> bool,
) -> Result<Duration, String> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        if cond() {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= timeout {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// [`wait_until`] that panics on timeout.
pub fn wait_for(what: &str, timeout: Duration, cond: impl FnMut() -> bool) {
    if let Err(e) = wait_until(what, timeout, cond) {
        panic!("{e}");
    }
}

/// Find a program in `PATH` (plus the sbin directories).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// A shell-quoted word (single quotes).
pub fn shq(s: impl AsRef<OsStr>) -> String {
    use std::os::unix::ffi::OsStrExt;
    let s = String::from_utf8_lossy(s.as_ref().as_bytes()).into_owned();
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `program arg arg` for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Run a command with stdin closed, capture its output, and kill it if it
/// runs longer than `timeout` (then the result is an `ErrorKind::TimedOut`).
pub fn run_timeout(cmd: &mut Command, timeout: Duration) -> io::Result<Output> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run {}: {e}", describe(cmd))))?;
    wait_child(child, timeout, &describe(cmd))
}

/// Wait (bounded) for a child whose stdout/stderr are piped; kill on timeout.
pub fn wait_child(mut child: Child, timeout: Duration, what: &str) -> io::Result<Output> {
    let out_reader = child.stdout.take().map(|mut s| {
        thread::spawn(move || {
            let mut v = Vec::new();
            let _ = s.read_to_end(&mut v);
            v
        })
    });
    let err_reader = child.stderr.take().map(|mut s| {
        thread::spawn(move || {
            let mut v = Vec::new();
            let _ = s.read_to_end(&mut v);
            v
        })
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{what}: killed after {timeout:?}"),
            ));
        }
        thread::sleep(Duration::from_millis(5));
    };
    // A grandchild may keep the pipes open (e.g. a daemon); do not block on it.
    let join = |h: Option<thread::JoinHandle<Vec<u8>>>| -> Vec<u8> {
        let Some(h) = h else { return Vec::new() };
        let until = Instant::now() + Duration::from_secs(5);
        while !h.is_finished() && Instant::now() < until {
            thread::sleep(Duration::from_millis(5));
        }
        if h.is_finished() {
            h.join().unwrap_or_default()
        } else {
            Vec::new()
        }
    };
    Ok(Output {
        status,
        stdout: join(out_reader),
        stderr: join(err_reader),
    })
}

/// Run a command (bounded by [`COMMAND_TIMEOUT`]); panic with its stderr if it
/// fails. Returns stdout.
pub fn check(cmd: &mut Command) -> String {
    match try_check(cmd) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

/// Like [`check`] but returns the failure as a message.
pub fn try_check(cmd: &mut Command) -> Result<String, String> {
    let out = run_timeout(cmd, COMMAND_TIMEOUT).map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{}` failed ({}): {}{}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        ))
    }
}

/// Shorthand: `cmd("ip", ["link", "show"])`.
pub fn cmd<I, S>(program: &str, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = Command::new(program);
    c.args(args);
    c
}

/// Send a signal; ignores "no such process".
pub fn kill(pid: u32, signal: i32) {
    if pid == 0 {
        return;
    }
    // SAFETY: plain syscall on a positive pid.
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}

/// Whether a process exists (and is not a zombie).
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => proc_stat_fields(&s)
            .map(|(state, _)| state != 'Z')
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// (state, ppid) from a `/proc/PID/stat` line.
fn proc_stat_fields(stat: &str) -> Option<(char, u32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut it = rest.split_whitespace();
    let state = it.next()?.chars().next()?;
    let ppid = it.next()?.parse().ok()?;
    Some((state, ppid))
}

/// All descendants of `pid` (not `pid` itself), from `/proc`.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut children: std::collections::HashMap<u32, Vec<u32>> = Default::default();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if let Ok(s) = std::fs::read_to_string(format!("/proc/{p}/stat")) {
                if let Some((_, ppid)) = proc_stat_fields(&s) {
                    children.entry(ppid).or_default().push(p);
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        if let Some(c) = children.get(&p) {
            out.extend(c);
            todo.extend(c);
        }
    }
    out
}

/// An exclusive `flock` on a file, released on drop. Serialises allocation of
/// machine-wide resources (subnets, users) across threads and processes.
pub struct FileLock {
    file: std::fs::File,
}

impl FileLock {
    pub fn acquire(path: &Path, timeout: Duration) -> FileLock {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .unwrap_or_else(|e| panic!("cannot open lock file {}: {e}", path.display()));
        use std::os::fd::AsRawFd;
        let fd = file.as_raw_fd();
        wait_for(&format!("lock {}", path.display()), timeout, || {
            // SAFETY: valid fd owned by `file`.
            unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) == 0 }
        });
        FileLock { file }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: valid fd.
        unsafe {
            libc::flock(self.file.as_raw_fd(), libc::LOCK_UN);
        }
    }
}

/// The machine-wide lock file of the test bed.
pub fn global_lock() -> FileLock {
    FileLock::acquire(
        Path::new("/run/lock/nbkp-testbed.lock"),
        Duration::from_secs(30),
    )
}

/// A fresh temporary directory (mode 0755 so the non-root test user and
/// `sshd` acting as that user can traverse it).
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix(&format!("nbkp-tb-{prefix}-"))
        .tempdir()
        .expect("create temp dir");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// libfaketime's preload library (Debian's `faketime` package).
pub fn faketime_library() -> String {
    for dir in [
        "/usr/lib/x86_64-linux-gnu/faketime",
        "/usr/lib/aarch64-linux-gnu/faketime",
        "/usr/lib/faketime",
    ] {
        let lib = format!("{dir}/libfaketime.so.1");
        if Path::new(&lib).exists() {
            return lib;
        }
    }
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1".into()
}

/// `nbkp sh -c CONFIG -o SCRIPT` with this build's nbkp; panics with its
/// stderr when it fails.
pub fn write_script(config: &Path, script: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_nbkp"))
        .args(["sh", "-c"])
        .arg(config)
        .arg("-o")
        .arg(script)
        .output()
        .expect("nbkp sh");
    assert!(
        out.status.success(),
        "nbkp sh -c {}: {}",
        config.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
