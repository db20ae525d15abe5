//! Away from home: a network namespace where the home hosts are absent.
//!
//! The namespace has loopback and one veth pair, both ends inside it; the
//! peer end is down, so whatever is sent over the pair vanishes (no reply,
//! no error: as from a café). Two home-host addresses and a DNS server
//! address are on that link with permanent neighbour entries, so there is
//! no ARP failure to report them absent early. `/etc/netns/<ns>/` gives
//! the namespace a `resolv.conf` naming that silent DNS server (and slow:
//! 20 s per try, two tries, so only nbkp's own bound stops the wait), a
//! `nsswitch.conf` of `files dns` (no resolver daemon outside the
//! namespace is asked) and an empty `hosts`. There is no route anywhere
//! else, so no packet leaves the namespace.
//!
//! ```ignore
//! let away = testbed::absent::Away::start();
//! let out = away.command("nbkp").args(["run", "-c", cfg]).output();
//! ```

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{check, cmd, kill, run_timeout, unique_id, Component};

/// The namespace's own address on the swallowing link.
const OWN: Ipv4Addr = Ipv4Addr::new(10, 254, 0, 1);
/// The two home hosts reached by address.
pub const HOSTS: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 254, 0, 2), Ipv4Addr::new(10, 254, 0, 3)];
/// The DNS server that never answers.
pub const DNS: Ipv4Addr = Ipv4Addr::new(10, 254, 0, 53);
/// A home host reached by name (only the silent DNS server could say where).
pub const NAME: &str = "nas.home.nbkp-test.example";

/// A namespace where the home hosts are absent. Dropping it kills what
/// runs in it and removes it and its `/etc/netns` files.
pub struct Away {
    netns: String,
    etc: PathBuf,
}

impl Away {
    pub const COMPONENTS: &'static [Component] = &[Component::Root, Component::Netns];

    pub fn start() -> Away {
        let netns = format!("nbkp-tb-{}-away{}", std::process::id(), unique_id());
        let etc = PathBuf::from("/etc/netns").join(&netns);
        let away = Away {
            netns: netns.clone(),
            etc: etc.clone(),
        };
        // From here on `away` cleans up whatever exists if we panic.
        std::fs::create_dir_all(&etc).expect("mkdir /etc/netns/NS");
        std::fs::write(
            etc.join("resolv.conf"),
            // A slow resolver (as with several silent servers or a search
            // list): 40 s before it gives up, far past any connect timeout,
            // so only a bound of nbkp's own stops the wait.
            format!("nameserver {DNS}\noptions timeout:20 attempts:2\n"),
        )
        .unwrap();
        std::fs::write(etc.join("nsswitch.conf"), "hosts: files dns\n").unwrap();
        std::fs::write(etc.join("hosts"), "127.0.0.1 localhost\n").unwrap();
        let ip = |args: &[&str]| {
            let mut all = vec!["-n", netns.as_str()];
            all.extend_from_slice(args);
            check(&mut cmd("ip", all));
        };
        check(&mut cmd("ip", ["netns", "add", &netns]));
        ip(&["link", "set", "lo", "up"]);
        ip(&[
            "link", "add", "away0", "type", "veth", "peer", "name", "away1",
        ]);
        ip(&["addr", "add", &format!("{OWN}/24"), "dev", "away0"]);
        ip(&["link", "set", "away0", "up"]);
        // away1 stays down: away0 has no carrier and drops what it sends.
        for (i, addr) in HOSTS.iter().chain([&DNS]).enumerate() {
            let mac = format!("02:00:00:00:00:{:02x}", i + 2);
            ip(&[
                "neigh",
                "replace",
                &addr.to_string(),
                "lladdr",
                &mac,
                "dev",
                "away0",
                "nud",
                "permanent",
            ]);
        }
        away
    }

    /// The namespace's name (for `ip netns exec`).
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// `program` run inside the namespace (with its `/etc/netns` files).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.netns, program]);
        c
    }
}

impl Drop for Away {
    fn drop(&mut self) {
        let pids = run_timeout(
            &mut cmd("ip", ["netns", "pids", self.netns.as_str()]),
            Duration::from_secs(10),
        )
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
        for p in pids.split_whitespace().filter_map(|p| p.parse().ok()) {
            kill(p, libc::SIGKILL);
        }
        let _ = run_timeout(
            &mut cmd("ip", ["netns", "del", self.netns.as_str()]),
            Duration::from_secs(10),
        );
        let _ = std::fs::remove_dir_all(&self.etc);
    }
}

/// The home hosts of [`config`]: (endpoint, host), two by address and one
/// by name.
pub fn homes() -> [(&'static str, String); 3] {
    [
        ("server", HOSTS[0].to_string()),
        ("pi", HOSTS[1].to_string()),
        ("nas", NAME.to_string()),
    ]
}

/// A config under `dir` with one remote sync to each of the home hosts
/// `which` (indices into [`homes`]), then one local sync of `laptop/docs`
/// to a USB folder, default connection settings. Returns the config and
/// the file the local sync copies (absent until it has run).
pub fn config(dir: &Path, which: &[usize]) -> (PathBuf, PathBuf) {
    let put = |path: &Path, text: &str| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    let src = dir.join("laptop");
    let usb = dir.join("usb");
    put(&src.join(".nbkp-vol"), "");
    put(&src.join("docs/.nbkp-src"), "");
    put(&src.join("docs/report.txt"), "quarterly\n");
    put(&usb.join(".nbkp-vol"), "");
    put(&usb.join("docs/.nbkp-dst"), "");
    let homes = homes();
    let chosen: Vec<&(&str, String)> = which.iter().map(|&i| &homes[i]).collect();
    let mut y = String::from("ssh-endpoints:\n");
    for (name, host) in &chosen {
        let _ = writeln!(y, "  {name}: {{host: {host}, user: backup}}");
    }
    let _ = writeln!(
        y,
        "volumes:\n  laptop: {{type: local, path: {}}}",
        src.display()
    );
    let _ = writeln!(y, "  usb: {{type: local, path: {}}}", usb.display());
    for (name, _) in &chosen {
        let _ = writeln!(
            y,
            "  {name}: {{type: remote, ssh-endpoint: {name}, path: /srv/backup}}"
        );
    }
    y.push_str("sync-endpoints:\n  docs: {volume: laptop, subdir: docs}\n  usb-docs: {volume: usb, subdir: docs}\n");
    for (name, _) in &chosen {
        let _ = writeln!(y, "  {name}-docs: {{volume: {name}, subdir: docs}}");
    }
    y.push_str("syncs:\n");
    for (name, _) in &chosen {
        let _ = writeln!(
            y,
            "  docs-to-{name}: {{source: docs, destination: {name}-docs}}"
        );
    }
    y.push_str("  docs-to-usb: {source: docs, destination: usb-docs}\n");
    let cfg = dir.join("config.yaml");
    put(&cfg, &y);
    (cfg, usb.join("docs/report.txt"))
}
