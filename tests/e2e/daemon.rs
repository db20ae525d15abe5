//! A real `rsync --daemon` for the scenarios: on a free loopback port here,
//! or (for SSH tunnels) a single-use daemon's `rsyncd.conf` in the test
//! user's home inside a remote host's private mount namespace.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::testbed::remote::RemoteHost;
use crate::testbed::{self, shq};

/// One module: its name, folder, and `(user, password)` when it needs a login.
pub struct Module<'a> {
    pub name: &'a str,
    pub path: &'a Path,
    pub login: Option<(&'a str, &'a str)>,
}

fn conf(dir: &Path, modules: &[Module], as_root: bool) -> String {
    // A root daemon chroots into the module (so it need not munge
    // symlinks, which `--safe-links` would then drop).
    let mut conf = String::new();
    if as_root {
        conf.push_str("uid = 0\ngid = 0\n");
    } else {
        conf.push_str("use chroot = no\nmunge symlinks = no\n");
    }
    for m in modules {
        conf.push_str(&format!(
            "[{}]\n  path = {}\n  read only = false\n",
            m.name,
            m.path.display()
        ));
        if let Some((user, password)) = m.login {
            let secrets = dir.join(format!("{}.secrets", m.name));
            std::fs::write(&secrets, format!("{user}:{password}\n")).unwrap();
            testbed::check(Command::new("chmod").arg("600").arg(&secrets));
            conf.push_str(&format!(
                "  auth users = {user}\n  secrets file = {}\n",
                secrets.display()
            ));
        }
    }
    conf
}

/// `rsync --daemon --no-detach` on 127.0.0.1; stopped on drop.
pub struct Daemon {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Daemon {
    pub fn start(modules: &[Module]) -> Daemon {
        let dir = testbed::temp_dir("rsyncd");
        let config = dir.path().join("rsyncd.conf");
        std::fs::write(&config, conf(dir.path(), modules, true)).unwrap();
        // A free port: the kernel picks one, the daemon takes it right after.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("rsync")
            .args(["--daemon", "--no-detach", "--address=127.0.0.1"])
            .arg(format!("--port={port}"))
            .arg(format!("--config={}", config.display()))
            .arg(format!("--log-file={}", dir.path().join("log").display()))
            .stdin(Stdio::null())
            .spawn()
            .expect("start rsync --daemon");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        testbed::wait_until("rsync daemon listening", Duration::from_secs(10), || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        })
        .unwrap();
        Daemon {
            child,
            port,
            _dir: dir,
        }
    }

    /// Stops the daemon (a host away from its network).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Makes `modules` the test user's single-use daemon config on `remote`:
/// its home is replaced, in the remote's own mount namespace only, by a
/// private folder holding `rsyncd.conf`. Returns that folder.
pub fn single_use_daemon(remote: &RemoteHost, modules: &[Module]) -> PathBuf {
    let home = remote.user_dir().join("home");
    let user = remote.user();
    // Not root: no chroot, so symlinks are not munged either (they would
    // be dropped by `--safe-links`).
    let text = String::from("use chroot = no\nmunge symlinks = no\n")
        + &modules
            .iter()
            .map(|m| {
                assert!(m.login.is_none(), "single-use daemons here have no logins");
                format!(
                    "[{}]\n  path = {}\n  read only = false\n",
                    m.name,
                    m.path.display()
                )
            })
            .collect::<String>();
    remote.run_remote_ok(&format!(
        "mkdir -p {h} && printf '%s' {t} > {h}/rsyncd.conf && chown -R {user} {h} && mount --bind {h} $(getent passwd {user} | cut -d: -f6)",
        h = shq(&home),
        t = shq(&text),
    ));
    home
}
