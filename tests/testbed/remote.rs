//! A real remote host: a throwaway `sshd` in its own network namespace and its
//! own mount + UTS namespace.
//!
//! Layout (per instance, all names unique):
//! - netns `nbkp-tb-PID-N` holding the remote end of a veth pair; the host end
//!   (`nbkpSLOTh`) stays in the test's namespace. Both ends get addresses from
//!   a /30 in `10.213.0.0/16` that is checked to be unused; clients on the
//!   host reach sshd at [`RemoteHost::addr`] port 22 — an address that exists
//!   only inside the namespace created here.
//! - sshd runs under `unshare --mount --uts --propagation private`, with its
//!   own hostname and a private tmpfs mounted over [`RemoteHost::root`]: files
//!   written there over SSH are invisible on the host (where that directory
//!   stays empty). Mounts made by the remote (see
//!   [`RemoteHost::btrfs_volume`]) live only in the remote's mount namespace.
//! - Own host key, own `authorized_keys` per user, key-only auth, `root` and
//!   the non-root [`TEST_USER`] can log in. `UsePAM no`, `StrictModes no`.
//! - Client side: [`RemoteHost::ssh_config`] (Host [`HOST_ALIAS`]), the key,
//!   a `known_hosts` that pins the generated host key.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::delay::DelayProxy;
use super::volume::{BtrfsVolume, DriveBuilder, Ns};
use super::{
    check, cmd, global_lock, kill, process_alive, run_timeout, shq, temp_dir, try_check, unique_id,
    wait_for, wait_until, Component, COMMAND_TIMEOUT,
};

/// The non-root account that can log in to every remote (created on demand
/// on the machine, shared by all tests, never removed).
pub const TEST_USER: &str = "nbkptest";

/// `Host` name in [`RemoteHost::ssh_config`]; goes through the delay proxy if
/// one was requested.
pub const HOST_ALIAS: &str = "nbkp-remote";
/// `Host` name that always connects to sshd directly (no delay proxy).
pub const DIRECT_ALIAS: &str = "nbkp-remote-direct";

/// 10.213.0.0/16, cut into /30 slots.
const SUBNET_BASE: u32 = 0x0AD5_0000;
const SLOTS: u32 = 16384;

/// Options for [`RemoteHost`].
#[derive(Default, Clone)]
pub struct RemoteBuilder {
    rtt: Option<Duration>,
}

impl RemoteBuilder {
    /// Put a delay proxy in front of sshd adding this round-trip time;
    /// [`HOST_ALIAS`] then goes through it.
    pub fn rtt(mut self, rtt: Duration) -> Self {
        self.rtt = Some(rtt);
        self
    }

    pub fn start(self) -> RemoteHost {
        RemoteHost::start_with(self)
    }
}

/// The shared state; kept alive by the host and by remote volumes.
pub struct Inner {
    tmp: Option<tempfile::TempDir>,
    dir: PathBuf,
    netns: String,
    veth: String,
    host_ip: Ipv4Addr,
    remote_ip: Ipv4Addr,
    hostname: String,
    root: PathBuf,
    sshd: Option<Child>,
    pid: u32,
    proxy: Option<DelayProxy>,
}

impl Inner {
    /// PID of the listening sshd: the process whose namespaces are "the remote".
    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A command that runs `program` inside the remote's network, mount and
    /// UTS namespaces (as root).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.pid.to_string(), "-n", "-m", "-u", "--", program]);
        c
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.proxy.take();
        // Kill everything in the network namespace (sshd, sessions, nsenter'd
        // helpers); the mount namespace and its tmpfs/mounts go with them.
        for _ in 0..3 {
            let pids = netns_pids(&self.netns);
            if pids.is_empty() {
                break;
            }
            for p in pids {
                kill(p, libc::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(mut child) = self.sshd.take() {
            let _ = child.kill();
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = run_timeout(
            &mut cmd("ip", ["link", "del", self.veth.as_str()]),
            Duration::from_secs(10),
        );
        let _ = run_timeout(
            &mut cmd("ip", ["netns", "del", self.netns.as_str()]),
            Duration::from_secs(10),
        );
        if let Some(t) = self.tmp.take() {
            let _ = t.close();
        }
    }
}

/// A running remote host. Dropping it kills sshd and all sessions, deletes
/// the namespace and the veth pair, and removes its files.
pub struct RemoteHost {
    inner: Arc<Inner>,
}

impl RemoteHost {
    /// Everything [`RemoteHost::start`] needs; pass to [`super::require`].
    pub const COMPONENTS: &'static [Component] = &[
        Component::Root,
        Component::SshServer,
        Component::SshClient,
        Component::Netns,
        Component::UserAdmin,
        Component::Rsync,
    ];

    /// Start a remote host without added latency.
    pub fn start() -> RemoteHost {
        RemoteBuilder::default().start()
    }

    pub fn builder() -> RemoteBuilder {
        RemoteBuilder::default()
    }

    fn start_with(opts: RemoteBuilder) -> RemoteHost {
        ensure_test_user();
        std::fs::create_dir_all("/run/sshd").expect("mkdir /run/sshd");
        let n = unique_id();
        let pid = std::process::id();
        let tmp = temp_dir("remote");
        let dir = tmp.path().to_path_buf();
        let root = dir.join("remote-root");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(dir.join("authorized_keys")).unwrap();
        let hostname = format!("nbkp-remote-{}", super::unique_tag());
        let netns = format!("nbkp-tb-{pid}-{n}");

        let lock = global_lock();
        reap_stale();
        let slot = pick_slot();
        let net = SUBNET_BASE + slot * 4;
        let mut inner = Inner {
            tmp: Some(tmp),
            dir: dir.clone(),
            netns: netns.clone(),
            veth: format!("nbkp{slot}h"),
            host_ip: Ipv4Addr::from(net + 1),
            remote_ip: Ipv4Addr::from(net + 2),
            hostname,
            root,
            sshd: None,
            pid: 0,
            proxy: None,
        };
        // From here on `inner` cleans up whatever exists if we panic.
        let peer = format!("nbkp{slot}r");
        let host_cidr = format!("{}/30", inner.host_ip);
        let remote_cidr = format!("{}/30", inner.remote_ip);
        check(&mut cmd("ip", ["netns", "add", &netns]));
        check(&mut cmd(
            "ip",
            [
                "link",
                "add",
                &inner.veth,
                "type",
                "veth",
                "peer",
                "name",
                &peer,
                "netns",
                &netns,
            ],
        ));
        check(&mut cmd(
            "ip",
            ["addr", "add", &host_cidr, "dev", &inner.veth],
        ));
        check(&mut cmd("ip", ["link", "set", &inner.veth, "up"]));
        check(&mut cmd(
            "ip",
            ["-n", &netns, "addr", "add", &remote_cidr, "dev", &peer],
        ));
        check(&mut cmd("ip", ["-n", &netns, "link", "set", &peer, "up"]));
        check(&mut cmd("ip", ["-n", &netns, "link", "set", "lo", "up"]));
        drop(lock);

        // Keys.
        for (name, comment) in [
            ("host_key", "nbkp-testbed-host"),
            ("client_key", "nbkp-testbed-client"),
        ] {
            check(
                cmd(
                    "ssh-keygen",
                    ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"],
                )
                .arg(dir.join(name)),
            );
        }
        let client_pub = std::fs::read_to_string(dir.join("client_key.pub")).unwrap();
        for user in ["root", TEST_USER] {
            std::fs::write(dir.join("authorized_keys").join(user), &client_pub).unwrap();
        }
        let host_pub = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
        let host_pub: Vec<&str> = host_pub.split_whitespace().take(2).collect();
        let host_pub = host_pub.join(" ");

        std::fs::write(
            dir.join("sshd_config"),
            format!(
                "ListenAddress {ip}:22\n\
                 HostKey {d}/host_key\n\
                 PidFile {d}/sshd.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys/%u\n\
                 PubkeyAuthentication yes\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 UsePAM no\n\
                 PermitRootLogin prohibit-password\n\
                 StrictModes no\n\
                 UseDNS no\n\
                 PrintMotd no\n\
                 MaxStartups 100:30:200\n\
                 MaxSessions 100\n\
                 LogLevel INFO\n\
                 Subsystem sftp internal-sftp\n",
                ip = inner.remote_ip,
                d = dir.display()
            ),
        )
        .unwrap();

        // The remote side: own hostname; drop copies of the host's loop mounts
        // and netns handles (so they do not pin other tests' resources); a
        // private tmpfs over `root`; an empty root `.bashrc` (a server's root
        // has a plain shell: this machine's runs pyenv's rehash, whose lock
        // file, left by a login cut short, makes every later login wait);
        // then exec sshd (same pid all the way).
        let script = format!(
            "set -e\n\
             hostname {host}\n\
             awk '$3 == \"nsfs\" || $1 ~ /^\\/dev\\/loop/ {{ print $2 }}' /proc/self/mounts | sort -r |\n\
               while read -r m; do umount -l \"$m\" 2>/dev/null || true; done\n\
             mount -t tmpfs -o mode=0755,size=1g nbkp-remote {root}\n\
             if [ -f /root/.bashrc ]; then : >{d}/bashrc; mount --bind {d}/bashrc /root/.bashrc; fi\n\
             install -d -m 0755 -o {user} -g {user} {root}/{user}\n\
             exec /usr/sbin/sshd -D -f {cfg} -E {log}\n",
            host = shq(&inner.hostname),
            root = shq(&inner.root),
            user = TEST_USER,
            cfg = shq(dir.join("sshd_config")),
            log = shq(dir.join("sshd.log")),
            d = shq(&dir),
        );
        let launcher_log = std::fs::File::create(dir.join("launcher.log")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &netns, "unshare", "--mount", "--uts"])
            .args(["--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(launcher_log.try_clone().unwrap())
            .stderr(launcher_log)
            .spawn()
            .expect("spawn sshd launcher");
        inner.pid = child.id();
        inner.sshd = Some(child);
        let pidfile = dir.join("sshd.pid");
        let started = wait_until("sshd to listen", Duration::from_secs(15), || {
            if let Some(Ok(Some(_))) = inner.sshd.as_mut().map(|c| c.try_wait()) {
                return true; // exited: reported below
            }
            std::fs::read_to_string(&pidfile)
                .map(|s| !s.trim().is_empty())
                .unwrap_or(false)
        });
        let exited = matches!(inner.sshd.as_mut().map(|c| c.try_wait()), Some(Ok(Some(_))));
        if started.is_err() || exited {
            panic!(
                "remote sshd did not start ({:?}, exited: {exited}).\nlauncher: {}\nsshd.log: {}",
                started,
                std::fs::read_to_string(dir.join("launcher.log")).unwrap_or_default(),
                std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
            );
        }
        let file_pid: u32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(
            file_pid, inner.pid,
            "sshd pid differs from the launched process"
        );

        if let Some(rtt) = opts.rtt {
            let proxy = DelayProxy::with_rtt(SocketAddr::from((inner.remote_ip, 22)), rtt)
                .expect("start delay proxy");
            inner.proxy = Some(proxy);
        }

        // Client side files.
        let mut known = format!("{} {host_pub}\n", inner.remote_ip);
        let (via_host, via_port) = match &inner.proxy {
            Some(p) => {
                known.push_str(&format!(
                    "[{}]:{} {host_pub}\n",
                    p.addr().ip(),
                    p.addr().port()
                ));
                (p.addr().ip().to_string(), p.addr().port())
            }
            None => (inner.remote_ip.to_string(), 22),
        };
        std::fs::write(dir.join("known_hosts"), known).unwrap();
        let mut ssh_config = String::new();
        for (alias, host, port) in [
            (HOST_ALIAS, via_host, via_port),
            (DIRECT_ALIAS, inner.remote_ip.to_string(), 22),
        ] {
            ssh_config.push_str(&format!(
                "Host {alias}\n  HostName {host}\n  Port {port}\n  IdentityFile {d}/client_key\n  \
                 IdentitiesOnly yes\n  UserKnownHostsFile {d}/known_hosts\n  GlobalKnownHostsFile /dev/null\n  \
                 StrictHostKeyChecking yes\n  BatchMode yes\n  ConnectTimeout 10\n  LogLevel ERROR\n\n",
                d = dir.display()
            ));
        }
        std::fs::write(dir.join("ssh_config"), ssh_config).unwrap();

        // Captured by libtest: shown when the test fails, or with --nocapture.
        eprintln!(
            "testbed: remote {} at {} (netns {}): ssh -F {} root@{HOST_ALIAS}",
            inner.hostname,
            inner.remote_ip,
            inner.netns,
            dir.join("ssh_config").display()
        );
        RemoteHost {
            inner: Arc::new(inner),
        }
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    /// The remote's address (inside its namespace); sshd listens on port 22.
    pub fn addr(&self) -> Ipv4Addr {
        self.inner.remote_ip
    }

    /// The address of the host end of the veth pair (where the remote sees
    /// connections come from).
    pub fn host_side_addr(&self) -> Ipv4Addr {
        self.inner.host_ip
    }

    /// Where [`HOST_ALIAS`] connects: the delay proxy if any, else sshd.
    pub fn endpoint(&self) -> SocketAddr {
        match &self.inner.proxy {
            Some(p) => p.addr(),
            None => SocketAddr::from((self.inner.remote_ip, 22)),
        }
    }

    /// The hostname inside the remote's UTS namespace.
    pub fn hostname(&self) -> &str {
        &self.inner.hostname
    }

    /// A directory that, on the remote, is a private tmpfs (remote-only
    /// storage); on the host it is an empty directory. `root` owns it;
    /// [`RemoteHost::user_dir`] is a subdirectory owned by [`TEST_USER`].
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// `root()/nbkptest`, owned by [`TEST_USER`] on the remote.
    pub fn user_dir(&self) -> PathBuf {
        self.inner.root.join(TEST_USER)
    }

    /// The non-root login name.
    pub fn user(&self) -> &'static str {
        TEST_USER
    }

    /// The test bed's own directory for this remote (configs, keys, logs).
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// `ssh -F <this>` knows [`HOST_ALIAS`] and [`DIRECT_ALIAS`].
    pub fn ssh_config(&self) -> PathBuf {
        self.inner.dir.join("ssh_config")
    }

    /// The client private key (accepted for `root` and [`TEST_USER`]).
    pub fn key_path(&self) -> PathBuf {
        self.inner.dir.join("client_key")
    }

    /// `known_hosts` pinning the remote's host key for [`Self::addr`] and
    /// the delay proxy's `[127.0.0.1]:PORT`.
    pub fn known_hosts(&self) -> PathBuf {
        self.inner.dir.join("known_hosts")
    }

    /// The sshd log (LogLevel INFO).
    pub fn sshd_log(&self) -> PathBuf {
        self.inner.dir.join("sshd.log")
    }

    /// PID of the listening sshd (its namespaces are the remote's).
    pub fn sshd_pid(&self) -> u32 {
        self.inner.pid
    }

    /// The network namespace name (for `ip netns exec`).
    pub fn netns(&self) -> &str {
        &self.inner.netns
    }

    /// The host-side veth interface name.
    pub fn veth(&self) -> &str {
        &self.inner.veth
    }

    pub fn proxy(&self) -> Option<&DelayProxy> {
        self.inner.proxy.as_ref()
    }

    /// `ssh` options that reach the remote without the config file:
    /// `-i KEY -o IdentitiesOnly=yes -o UserKnownHostsFile=... -p PORT ...`
    /// (the host to use is [`Self::endpoint`]'s ip).
    pub fn ssh_options(&self) -> Vec<String> {
        vec![
            "-i".into(),
            self.key_path().display().to_string(),
            "-o".into(),
            "IdentitiesOnly=yes".into(),
            "-o".into(),
            format!("UserKnownHostsFile={}", self.known_hosts().display()),
            "-o".into(),
            "GlobalKnownHostsFile=/dev/null".into(),
            "-o".into(),
            "StrictHostKeyChecking=yes".into(),
            "-o".into(),
            "BatchMode=yes".into(),
            "-p".into(),
            self.endpoint().port().to_string(),
        ]
    }

    /// `ssh -F /path/ssh_config` — the value for `rsync -e`.
    pub fn rsync_rsh(&self) -> String {
        format!("ssh -F {}", shq(self.ssh_config()))
    }

    /// `user@nbkp-remote:path` for rsync.
    pub fn rsync_dest(&self, user: &str, path: impl AsRef<Path>) -> String {
        format!("{user}@{HOST_ALIAS}:{}", path.as_ref().display())
    }

    /// `ssh -F CONFIG USER@nbkp-remote` — append the remote command.
    pub fn ssh_command(&self, user: &str) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-F")
            .arg(self.ssh_config())
            .arg(format!("{user}@{HOST_ALIAS}"));
        c
    }

    /// Run `command` (a shell command line) over SSH as `user`, bounded by
    /// [`COMMAND_TIMEOUT`]. This is one login.
    pub fn ssh(&self, user: &str, command: &str) -> Output {
        run_timeout(
            self.ssh_command(user).arg("--").arg(command),
            COMMAND_TIMEOUT,
        )
        .expect("run ssh")
    }

    /// Like [`Self::ssh`] but panics unless it succeeds; returns stdout.
    pub fn ssh_ok(&self, user: &str, command: &str) -> String {
        check(self.ssh_command(user).arg("--").arg(command))
    }

    /// A command that runs `program` on the remote side (inside its network,
    /// mount and UTS namespaces, as root) without SSH — no login is counted.
    pub fn remote_command(&self, program: &str) -> Command {
        self.inner.command(program)
    }

    /// Run a shell command line on the remote side without SSH.
    pub fn run_remote(&self, command: &str) -> Output {
        run_timeout(
            self.remote_command("sh").arg("-c").arg(command),
            COMMAND_TIMEOUT,
        )
        .expect("run nsenter")
    }

    /// Like [`Self::run_remote`] but panics unless it succeeds; returns stdout.
    pub fn run_remote_ok(&self, command: &str) -> String {
        check(self.remote_command("sh").arg("-c").arg(command))
    }

    /// Number of successful SSH logins so far (from the sshd log).
    pub fn login_count(&self) -> usize {
        self.logins().len()
    }

    /// `(user, from)` of every successful login so far.
    pub fn logins(&self) -> Vec<(String, String)> {
        let log = std::fs::read_to_string(self.sshd_log()).unwrap_or_default();
        log.lines()
            .filter_map(|l| {
                // "Accepted publickey for USER from ADDR port N ssh2: ..."
                let rest = &l[l.find("Accepted ")?..];
                let mut w = rest.split_whitespace();
                let (_, _, _, user, _, from) = (
                    w.next()?,
                    w.next()?,
                    w.next()?,
                    w.next()?,
                    w.next()?,
                    w.next()?,
                );
                Some((user.to_string(), from.to_string()))
            })
            .collect()
    }

    /// Wait (bounded) until at least `n` logins were logged.
    pub fn wait_login_count(&self, n: usize, timeout: Duration) {
        wait_for(&format!("{n} ssh logins"), timeout, || {
            self.login_count() >= n
        });
    }

    /// Processes serving SSH sessions right now (children of the listener).
    pub fn session_pids(&self) -> Vec<u32> {
        super::descendants(self.inner.pid)
    }

    /// Cut every open SSH connection at once, as if the link died mid-transfer:
    /// kills all sshd session processes (and what they run) and cuts the
    /// delay proxy's connections. sshd itself keeps listening. Returns the
    /// number of processes killed.
    pub fn drop_connections(&self) -> usize {
        let victims = self.session_pids();
        for p in &victims {
            kill(*p, libc::SIGKILL);
        }
        if let Some(p) = &self.inner.proxy {
            p.drop_connections();
        }
        let _ = wait_until("sessions to die", Duration::from_secs(5), || {
            victims.iter().all(|p| !process_alive(*p))
        });
        victims.len()
    }

    /// A btrfs volume (`user_subvol_rm_allowed`) mounted only inside the
    /// remote's mount namespace, under [`Self::root`].
    pub fn btrfs_volume(&self) -> BtrfsVolume {
        BtrfsVolume::create(
            super::volume::DEFAULT_BTRFS_SIZE,
            Ns::Remote(self.inner.clone()),
        )
    }

    /// Like [`Self::btrfs_volume`] with a size in bytes (at least ~120 MiB).
    pub fn btrfs_volume_sized(&self, bytes: u64) -> BtrfsVolume {
        BtrfsVolume::create(bytes, Ns::Remote(self.inner.clone()))
    }

    /// Make a drive builder target this remote: `remote.drive(Drive::builder("x"))`.
    pub fn drive(&self, builder: DriveBuilder) -> super::volume::Drive {
        builder.remote_ns(Ns::Remote(self.inner.clone())).build()
    }
}

/// PIDs inside a named network namespace.
fn netns_pids(netns: &str) -> Vec<u32> {
    match run_timeout(
        &mut cmd("ip", ["netns", "pids", netns]),
        Duration::from_secs(10),
    ) {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect(),
        _ => Vec::new(),
    }
}

/// Remove namespaces left behind by test processes that died without
/// cleaning up (e.g. killed by a timeout). Called under the global lock.
fn reap_stale() {
    let Ok(list) = try_check(&mut cmd("ip", ["netns", "list"])) else {
        return;
    };
    for line in list.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix("nbkp-tb-") else {
            continue;
        };
        let Some(owner) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if process_alive(owner) {
            continue;
        }
        for p in netns_pids(name) {
            kill(p, libc::SIGKILL);
        }
        let _ = run_timeout(
            &mut cmd("ip", ["netns", "del", name]),
            Duration::from_secs(10),
        );
    }
}

/// A free /30 slot in 10.213.0.0/16: no address or route on this machine
/// overlaps it and its interface names are unused. Called under the lock.
fn pick_slot() -> u32 {
    let mut prefixes: Vec<(u32, u32)> = Vec::new();
    let addrs = check(&mut cmd("ip", ["-4", "-o", "addr", "show"]));
    for line in addrs.lines() {
        let mut w = line.split_whitespace();
        while let Some(t) = w.next() {
            if t == "inet" {
                if let Some(p) = w.next().and_then(parse_prefix) {
                    prefixes.push(p);
                }
            }
        }
    }
    let routes = check(&mut cmd("ip", ["-4", "route", "show", "table", "all"]));
    for line in routes.lines() {
        let mut w = line.split_whitespace();
        let mut first = w.next().unwrap_or("");
        if matches!(
            first,
            "local"
                | "broadcast"
                | "unicast"
                | "anycast"
                | "multicast"
                | "unreachable"
                | "blackhole"
                | "prohibit"
                | "throw"
                | "nat"
        ) {
            first = w.next().unwrap_or("");
        }
        if first == "default" {
            continue;
        }
        if let Some(p) = parse_prefix(first) {
            if p.1 > 0 {
                prefixes.push(p);
            }
        }
    }
    let start = (std::process::id()
        .wrapping_mul(64)
        .wrapping_add(unique_id() as u32))
        % SLOTS;
    for i in 0..SLOTS {
        let slot = (start + i) % SLOTS;
        let net = SUBNET_BASE + slot * 4;
        let overlaps = prefixes.iter().any(|&(a, len)| {
            let len = len.min(30);
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            (a & mask) == (net & mask)
        });
        let names_used = ["h", "r"]
            .iter()
            .any(|s| Path::new(&format!("/sys/class/net/nbkp{slot}{s}")).exists());
        if !overlaps && !names_used {
            return slot;
        }
    }
    panic!("no free /30 in 10.213.0.0/16");
}

fn parse_prefix(s: &str) -> Option<(u32, u32)> {
    let (a, len) = match s.split_once('/') {
        Some((a, l)) => (a, l.parse().ok()?),
        None => (s, 32),
    };
    let ip: Ipv4Addr = a.parse().ok()?;
    Some((u32::from(ip), len))
}

/// Create [`TEST_USER`] (with an unlocked, password-less account so key
/// logins work) unless it exists. Once per process; safe across processes.
pub fn ensure_test_user() {
    static DONE: OnceLock<()> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    if DONE.get().is_some() {
        return;
    }
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if DONE.get().is_some() {
        return;
    }
    let _lock = global_lock();
    let exists = run_timeout(&mut cmd("id", ["-u", TEST_USER]), COMMAND_TIMEOUT)
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !exists {
        check(&mut cmd("useradd", ["-m", "-s", "/bin/sh", TEST_USER]));
    }
    // A fresh account is locked ('!'): key login would be refused.
    let shadow = std::fs::read_to_string("/etc/shadow").unwrap_or_default();
    let locked = shadow
        .lines()
        .find(|l| l.split(':').next() == Some(TEST_USER))
        .map(|l| l.split(':').nth(1).unwrap_or("").starts_with('!'))
        .unwrap_or(true);
    if locked {
        check(&mut cmd("usermod", ["-p", "*", TEST_USER]));
    }
    let _ = DONE.set(());
}

/// uid and gid of [`TEST_USER`].
pub fn test_user_ids() -> (u32, u32) {
    ensure_test_user();
    let uid = check(&mut cmd("id", ["-u", TEST_USER]))
        .trim()
        .parse()
        .unwrap();
    let gid = check(&mut cmd("id", ["-g", TEST_USER]))
        .trim()
        .parse()
        .unwrap();
    (uid, gid)
}
