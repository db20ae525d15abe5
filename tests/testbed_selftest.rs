//! Self-tests of the test bed (tests/testbed/): each piece really does what
//! later tests rely on.

mod testbed;

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testbed::delay::DelayProxy;
use testbed::fixtures::{self, TreeOptions};
use testbed::remote::{RemoteHost, TEST_USER};
use testbed::shells::{self, Shell};
use testbed::tree::{self, Compare};
use testbed::volume::{self, BtrfsVolume, Drive};
use testbed::{check, cmd, require, Component};

fn netns_exists(name: &str) -> bool {
    check(&mut cmd("ip", ["netns", "list"]))
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name))
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

// ---------------------------------------------------------------- remote --

#[test]
fn remote_is_another_host() {
    if !require(RemoteHost::COMPONENTS) {
        return;
    }
    let remote = RemoteHost::start();
    let file = remote.root().join("written-on-remote");
    remote.ssh_ok("root", &format!("echo hello > {}", testbed::shq(&file)));
    // The remote sees it, over SSH and through its namespaces...
    assert_eq!(
        remote.ssh_ok("root", &format!("cat {}", testbed::shq(&file))),
        "hello\n"
    );
    assert_eq!(
        remote.run_remote_ok(&format!("cat {}", testbed::shq(&file))),
        "hello\n"
    );
    // ...the host does not: its own mount namespace.
    assert!(!file.exists(), "remote file leaked to the host");
    assert!(remote.root().is_dir());
    assert_eq!(fs::read_dir(remote.root()).unwrap().count(), 0);
    // A file written on the host at the same path is invisible to the remote.
    fs::write(remote.root().join("host-only"), "x").unwrap();
    let ls = remote.ssh_ok("root", &format!("ls -A {}", testbed::shq(remote.root())));
    assert!(!ls.contains("host-only"), "{ls}");
    // Own hostname (UTS namespace).
    let hostname = remote.ssh_ok("root", "hostname");
    assert_eq!(hostname.trim(), remote.hostname());
    assert_ne!(
        hostname.trim(),
        check(&mut cmd("hostname", [] as [&str; 0])).trim()
    );
    // Own network: the remote's address is not on the host, and the remote
    // has no route to the host's networks other than the veth /30.
    let host_addrs = check(&mut cmd("ip", ["-4", "-o", "addr"]));
    assert!(!host_addrs.contains(&format!(" {}/", remote.addr())));
    let remote_routes = remote.run_remote_ok("ip -4 route");
    assert_eq!(remote_routes.lines().count(), 1, "{remote_routes}");
    assert!(!remote_routes.contains("default"));
    // The non-root user logs in too, and owns user_dir().
    assert_eq!(remote.ssh_ok(TEST_USER, "id -un").trim(), TEST_USER);
    remote.ssh_ok(
        TEST_USER,
        &format!("touch {}/mine", testbed::shq(remote.user_dir())),
    );
    // Key-only: another key is refused.
    let other = testbed::temp_dir("otherkey");
    let other_key = other.path().join("key");
    check(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&other_key),
    );
    let out = Command::new("ssh")
        .args([
            "-F",
            "/dev/null",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
        ])
        .arg("-i")
        .arg(&other_key)
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            remote.known_hosts().display()
        ))
        .arg(format!("root@{}", remote.addr()))
        .arg("true")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied (publickey)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The options form (no ssh_config) works as well.
    let out = Command::new("ssh")
        .args(remote.ssh_options())
        .arg(format!("root@{}", remote.addr()))
        .arg("echo via-options")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "via-options\n");
}

#[test]
fn remote_counts_logins() {
    if !require(RemoteHost::COMPONENTS) {
        return;
    }
    let remote = RemoteHost::start();
    assert_eq!(remote.login_count(), 0);
    // run_remote does not log in.
    remote.run_remote_ok("true");
    for _ in 0..3 {
        remote.ssh_ok("root", "true");
    }
    assert_eq!(remote.login_count(), 3);
    remote.ssh_ok(TEST_USER, "true");
    let logins = remote.logins();
    assert_eq!(logins.len(), 4);
    assert_eq!(logins[3].0, TEST_USER);
    assert_eq!(logins[0].1, remote.host_side_addr().to_string());
    // Multiplexed: three commands, one login.
    let control = remote.dir().join("cm-%C");
    let mux = |c: &str| {
        check(
            remote
                .ssh_command("root")
                .arg("-o")
                .arg("ControlMaster=auto")
                .arg("-o")
                .arg(format!("ControlPath={}", control.display()))
                .arg("-o")
                .arg("ControlPersist=30")
                .arg(c),
        )
    };
    for _ in 0..3 {
        mux("true");
    }
    assert_eq!(remote.login_count(), 5);
    check(
        remote
            .ssh_command("root")
            .arg("-o")
            .arg(format!("ControlPath={}", control.display()))
            .args(["-O", "exit"]),
    );
}

#[test]
fn delay_proxy_adds_latency_to_rsync_over_ssh() {
    if !require(RemoteHost::COMPONENTS) {
        return;
    }
    let rtt = Duration::from_millis(100);
    let remote = RemoteHost::builder().rtt(rtt).start();
    let src = testbed::temp_dir("src");
    fixtures::write_file(&src.path().join("a/file"), b"data\n");
    let rsync = |alias: &str| {
        let dest = format!("root@{alias}:{}/", remote.root().join(alias).display());
        let t = Instant::now();
        check(
            Command::new("rsync")
                .args(["-a", "-e", &remote.rsync_rsh()])
                .arg(format!("{}/", src.path().display()))
                .arg(dest),
        );
        t.elapsed()
    };
    // The fastest of three each: a loaded machine slows single runs, never
    // all of them, while the proxy delays every one.
    let fastest = |alias: &str| (0..3).map(|_| rsync(alias)).min().unwrap();
    let direct = fastest(testbed::remote::DIRECT_ALIAS);
    let delayed = fastest(testbed::remote::HOST_ALIAS);
    eprintln!("rsync direct {direct:?}, at {rtt:?} RTT {delayed:?}");
    // An SSH login plus an rsync exchange is many round trips; at least 5.
    assert!(delayed >= rtt * 5, "delayed rsync took only {delayed:?}");
    assert!(
        delayed > direct + rtt * 3,
        "direct {direct:?}, delayed {delayed:?}"
    );
    assert_eq!(
        remote.run_remote_ok(&format!(
            "cat {}/a/file",
            testbed::shq(remote.root().join(testbed::remote::HOST_ALIAS))
        )),
        "data\n"
    );
    let proxy = remote.proxy().unwrap();
    assert_eq!(
        proxy.accepted(),
        3,
        "the three delayed runs went through the proxy"
    );
    assert_eq!(remote.login_count(), 6);
}

#[test]
fn delay_proxy_round_trip_time() {
    // Pure loopback: an echo server behind the proxy.
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = server.local_addr().unwrap();
    let echo = std::thread::spawn(move || {
        let (mut s, _) = server.accept().unwrap();
        let mut buf = [0u8; 64];
        loop {
            use std::io::Read;
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                return;
            }
            s.write_all(&buf[..n]).unwrap();
        }
    });
    let proxy = DelayProxy::with_rtt(target, Duration::from_millis(80)).unwrap();
    assert!(proxy.addr().ip().is_loopback());
    let mut c = std::net::TcpStream::connect(proxy.addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for _ in 0..3 {
        let t = Instant::now();
        c.write_all(b"ping").unwrap();
        let mut got = [0u8; 4];
        use std::io::Read;
        c.read_exact(&mut got).unwrap();
        let took = t.elapsed();
        assert_eq!(&got, b"ping");
        assert!(took >= Duration::from_millis(80), "round trip {took:?}");
        assert!(took < Duration::from_millis(1000), "round trip {took:?}");
    }
    assert_eq!(proxy.open_connections(), 1);
    assert_eq!(proxy.drop_connections(), 1);
    let mut buf = [0u8; 4];
    use std::io::Read;
    let n = c.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "connection should be closed after drop_connections");
    drop(proxy);
    echo.join().unwrap();
}

#[test]
fn remote_drop_connections_mid_transfer() {
    if !require(RemoteHost::COMPONENTS) {
        return;
    }
    let remote = RemoteHost::start();
    let src = testbed::temp_dir("src");
    fixtures::large_file_at(&src.path().join("big.bin"), 4 * 1024 * 1024);
    let dest = remote.root().join("dest");
    // 256 KiB/s: ~16 s for the whole file, so we cut it well before the end.
    let rsync = Command::new("rsync")
        .args([
            "-a",
            "--partial",
            "--bwlimit=256",
            "-e",
            &remote.rsync_rsh(),
        ])
        .arg(src.path().join("big.bin"))
        .arg(remote.rsync_dest("root", format!("{}/", dest.display())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    remote.wait_login_count(1, Duration::from_secs(10));
    // Wait until data really flows (the remote rsync has a temp file growing).
    testbed::wait_for("transfer to start", Duration::from_secs(10), || {
        let out = remote.run_remote(&format!(
            "find {} -type f -size +100k 2>/dev/null | head -n 1",
            testbed::shq(&dest)
        ));
        !out.stdout.is_empty()
    });
    let killed = remote.drop_connections();
    assert!(
        killed >= 2,
        "expected sshd session processes, killed {killed}"
    );
    let t = Instant::now();
    let out = testbed::wait_child(rsync, Duration::from_secs(20), "rsync")
        .expect("rsync exits after the drop");
    assert!(
        !out.status.success(),
        "rsync should fail when the connection drops"
    );
    assert!(t.elapsed() < Duration::from_secs(10));
    // The file did not arrive complete; sshd still serves new logins.
    let size = remote.ssh_ok(
        "root",
        &format!("cat {}/big.bin 2>/dev/null | wc -c", testbed::shq(&dest)),
    );
    assert_ne!(size.trim(), (4 * 1024 * 1024).to_string());
    assert_eq!(remote.login_count(), 2);
}

#[test]
fn remote_cleans_up_also_on_panic() {
    if !require(RemoteHost::COMPONENTS) {
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::panic::catch_unwind(move || {
        let remote = RemoteHost::builder().rtt(Duration::from_millis(10)).start();
        remote.ssh_ok("root", "true");
        tx.send((
            remote.netns().to_string(),
            remote.veth().to_string(),
            remote.sshd_pid(),
            remote.dir().to_path_buf(),
            remote.proxy().unwrap().addr(),
        ))
        .unwrap();
        panic!("deliberate panic inside a test using a RemoteHost");
    });
    assert!(result.is_err());
    let (netns, veth, pid, dir, proxy) = rx.recv().unwrap();
    assert!(!netns_exists(&netns), "netns {netns} left behind");
    assert!(!link_exists(&veth), "veth {veth} left behind");
    assert!(!testbed::process_alive(pid), "sshd {pid} still running");
    assert!(!dir.exists(), "{dir:?} left behind");
    assert!(
        std::net::TcpStream::connect_timeout(&proxy, Duration::from_secs(1)).is_err(),
        "delay proxy still listening"
    );
}

#[test]
fn parallel_remotes_get_distinct_networks() {
    if !require(RemoteHost::COMPONENTS) {
        return;
    }
    let hosts: Vec<RemoteHost> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..3).map(|_| s.spawn(RemoteHost::start)).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut addrs: Vec<_> = hosts.iter().map(|h| h.addr()).collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 3);
    for h in &hosts {
        let [a, b, ..] = h.addr().octets();
        assert_eq!((a, b), (10, 213), "outside the dedicated range");
        assert_eq!(h.ssh_ok("root", "hostname").trim(), h.hostname());
    }
}

#[test]
fn remote_btrfs_volume_lives_only_on_the_remote() {
    let mut needs = RemoteHost::COMPONENTS.to_vec();
    needs.extend_from_slice(BtrfsVolume::COMPONENTS);
    if !require(&needs) {
        return;
    }
    let remote = RemoteHost::start();
    let vol = remote.btrfs_volume();
    assert!(vol.is_remote());
    let path = testbed::shq(vol.path());
    assert_eq!(
        remote
            .run_remote_ok(&format!("stat -f -c %T {path}"))
            .trim(),
        "btrfs"
    );
    let opts = remote.ssh_ok("root", &format!("findmnt -n -o OPTIONS -T {path}"));
    assert!(opts.contains("user_subvol_rm_allowed"), "{opts}");
    // The host has no such mount (nor even the directory).
    assert!(!vol.path().exists());
    // Non-root subvolume handling over SSH.
    vol.chown(TEST_USER);
    remote.ssh_ok(
        TEST_USER,
        &format!(
            "btrfs subvolume create {path}/sv >/dev/null 2>&1 && echo x > {path}/sv/f && \
             btrfs subvolume snapshot -r {path}/sv {path}/snap >/dev/null 2>&1 && \
             btrfs subvolume delete {path}/sv >/dev/null 2>&1; test ! -e {path}/sv"
        ),
    );
    assert_eq!(
        remote
            .run_remote_ok(&format!("stat -c %i {path}/snap"))
            .trim(),
        "256"
    );
    let image = vol.image().to_path_buf();
    drop(vol);
    assert!(!image.exists());
    assert!(volume::loop_devices_for(&image).is_empty());
}

#[test]
fn remote_drive_plug_unplug() {
    let mut needs = RemoteHost::COMPONENTS.to_vec();
    needs.extend_from_slice(Drive::COMPONENTS);
    if !require(&needs) {
        return;
    }
    let remote = RemoteHost::start();
    let drive = remote.drive(Drive::builder("rdrive"));
    let mnt = testbed::shq(drive.mountpoint());
    remote.ssh_ok("root", &format!("echo on-drive > {mnt}/f"));
    assert!(drive.is_mounted());
    drive.unplug();
    assert!(!drive.is_mounted());
    assert_eq!(remote.run_remote_ok(&format!("ls -A {mnt}")), "");
    drive.plug();
    assert_eq!(remote.ssh_ok("root", &format!("cat {mnt}/f")), "on-drive\n");
}

// --------------------------------------------------------------- volumes --

#[test]
fn btrfs_volume_on_host() {
    if !require(BtrfsVolume::COMPONENTS) {
        return;
    }
    let vol = BtrfsVolume::new();
    let p = vol.path().to_path_buf();
    assert_eq!(
        check(Command::new("stat").args(["-f", "-c", "%T"]).arg(&p)).trim(),
        "btrfs"
    );
    let opts = check(
        Command::new("findmnt")
            .args(["-n", "-o", "OPTIONS", "-T"])
            .arg(&p),
    );
    assert!(opts.contains("user_subvol_rm_allowed"), "{opts}");
    // Subvolume + read-only snapshot; a subvolume root has inode 256.
    check(
        Command::new("btrfs")
            .args(["-q", "subvolume", "create"])
            .arg(p.join("sv")),
    );
    fs::write(p.join("sv/file"), "x").unwrap();
    check(
        Command::new("btrfs")
            .args(["-q", "subvolume", "snapshot", "-r"])
            .arg(p.join("sv"))
            .arg(p.join("snap")),
    );
    assert_eq!(
        check(Command::new("stat").args(["-c", "%i"]).arg(p.join("snap"))).trim(),
        "256"
    );
    let err = fs::write(p.join("snap/file"), "y").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    // A non-root user may delete writable subvolumes (user_subvol_rm_allowed).
    testbed::remote::ensure_test_user();
    vol.chown(TEST_USER);
    let as_user = |args: &[&str]| {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid",
            TEST_USER,
            "--regid",
            TEST_USER,
            "--clear-groups",
            "btrfs",
        ]);
        c.args(args);
        c
    };
    let usv = p.join("user-sv");
    check(as_user(&["subvolume", "create"]).arg(&usv));
    check(as_user(&["subvolume", "delete"]).arg(&usv));
    assert!(!usv.exists());
    let image = vol.image().to_path_buf();
    let dev = check(
        Command::new("findmnt")
            .args(["-n", "-o", "SOURCE", "-M"])
            .arg(&p),
    );
    assert!(dev.starts_with("/dev/loop"), "{dev}");
    drop(vol);
    assert!(!p.exists());
    assert!(!image.exists());
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!mounts.contains(&p.display().to_string()));
}

#[test]
fn unplugged_drive_leaves_empty_mountpoint() {
    if !require(Drive::COMPONENTS) {
        return;
    }
    let drive = Drive::new("backup");
    let mnt = drive.mountpoint().to_path_buf();
    assert!(drive.is_plugged() && drive.is_mounted());
    assert_eq!(drive.fs(), volume::Fs::Ext4);
    fs::write(mnt.join("on-drive"), "data").unwrap();
    // Findable by label and UUID (no udev: blkid).
    let dev = drive.device().unwrap();
    assert!(dev.to_string_lossy().starts_with("/dev/loop"));
    assert_eq!(volume::device_by_label(drive.label()), Some(dev.clone()));
    assert_eq!(volume::device_by_uuid(&drive.uuid()), Some(dev.clone()));
    // Busy: unplug fails and the drive stays plugged.
    let busy = fs::File::open(mnt.join("on-drive")).unwrap();
    assert!(drive.try_unplug().is_err());
    assert!(drive.is_mounted());
    drop(busy);
    drive.unplug();
    // The classic trap: an empty directory on the parent filesystem.
    assert!(mnt.is_dir());
    assert!(!drive.is_mounted());
    assert_eq!(fs::read_dir(&mnt).unwrap().count(), 0);
    assert!(drive.device().is_none());
    assert_eq!(volume::device_by_label(drive.label()), None);
    assert!(volume::loop_devices_for(drive.image()).is_empty());
    drive.plug();
    assert_eq!(fs::read_to_string(mnt.join("on-drive")).unwrap(), "data");
    let image = drive.image().to_path_buf();
    drop(drive);
    assert!(!image.exists() && !mnt.exists());
}

#[test]
fn tiny_drive_runs_out_of_space() {
    if !require(Drive::COMPONENTS) {
        return;
    }
    let drive = Drive::tiny("tiny");
    let mut f = fs::File::create(drive.mountpoint().join("fill")).unwrap();
    let chunk = vec![7u8; 64 * 1024];
    let mut written = 0u64;
    let err = loop {
        match f.write_all(&chunk).and_then(|_| f.sync_all()) {
            Ok(()) => written += chunk.len() as u64,
            Err(e) => break e,
        }
        assert!(written < volume::TINY_DRIVE_SIZE, "never ran out of space");
    };
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
    assert!(written > 0);
}

#[test]
fn read_only_drive_refuses_writes() {
    if !require(Drive::COMPONENTS) {
        return;
    }
    let drive = Drive::read_only("ro", |root| {
        fs::write(root.join("existing"), "old").unwrap();
    });
    let mnt = drive.mountpoint();
    assert_eq!(fs::read_to_string(mnt.join("existing")).unwrap(), "old");
    let err = fs::write(mnt.join("new"), "x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    drive.set_read_only(false);
    fs::write(mnt.join("new"), "x").unwrap();
    drive.set_read_only(true);
    assert_eq!(
        fs::write(mnt.join("new2"), "x").unwrap_err().raw_os_error(),
        Some(libc::EROFS)
    );
}

#[test]
fn btrfs_drive_and_unplugged_builder() {
    require!(
        Component::Root,
        Component::Loop,
        Component::Ext4,
        Component::Btrfs
    );
    let drive = Drive::builder("bdrive").btrfs().unplugged().build();
    assert!(!drive.is_plugged() && !drive.is_mounted());
    drive.plug();
    let opts = check(
        Command::new("findmnt")
            .args(["-n", "-o", "FSTYPE,OPTIONS", "-M"])
            .arg(drive.mountpoint()),
    );
    assert!(
        opts.starts_with("btrfs") && opts.contains("user_subvol_rm_allowed"),
        "{opts}"
    );
    assert!(drive.try_plug().is_err());
}

// ---------------------------------------------------------------- shells --

#[test]
fn shells_run_scripts() {
    let mut needs: Vec<Component> = Shell::ALL.iter().map(|&s| Component::Shell(s)).collect();
    needs.push(Component::Shellcheck);
    if !require(&needs) {
        return;
    }
    let code = "#!/bin/sh\nset -eu\nprintf '%s|' \"$#\" \"$@\"\n";
    let args = ["a b", "$(echo no)", "-n", ""];
    let dir = testbed::temp_dir("sh");
    let script = dir.path().join("args.sh");
    fs::write(&script, code).unwrap();
    for (shell, out) in shells::run_everywhere(&script, &args) {
        assert!(
            out.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "4|a b|$(echo no)|-n||",
            "{shell}"
        );
    }
    // Plain POSIX shells reject the bash-only `[[`.
    let bashism = "#!/bin/sh\nif [[ a == a ]]; then echo yes; fi\n";
    let dash = shells::run_code(Shell::Dash, bashism, &[] as &[&str]);
    assert_ne!(String::from_utf8_lossy(&dash.stdout), "yes\n");
    // shellcheck catches what dash lets through (`local`, `echo -n`).
    assert!(shells::shellcheck_code(code).is_ok());
    let bad = "#!/bin/sh\nf() { local x=1; echo -n \"$x\"; }\nf\n";
    assert!(shells::run_code(Shell::Dash, bad, &[] as &[&str])
        .status
        .success());
    let report = shells::shellcheck_code(bad).unwrap_err();
    assert!(
        report.contains("SC3043") || report.contains("local"),
        "{report}"
    );
    let report = shells::shellcheck_code(bashism).unwrap_err();
    assert!(
        report.contains("SC3010") || report.contains("[["),
        "{report}"
    );
    assert_eq!(Shell::ZshSh.display(), "zsh --emulate sh");
}

// ------------------------------------------------------ fixtures and tree --

#[test]
fn fixtures_and_tree_compare() {
    if !require(&[Component::Rsync]) {
        return;
    }
    let base = testbed::temp_dir("fixtures");
    let src = base.path().join("src");
    let t = fixtures::awkward_tree_with(
        &src,
        TreeOptions {
            large_bytes: 3 * 1024 * 1024,
            sparse_bytes: 32 * 1024 * 1024,
        },
    );
    // The awkward names are really there.
    for n in &t.names {
        assert!(src.join(n).is_file(), "{n:?}");
        assert!(src.join("dirs").join(n).join("inside").is_file());
    }
    assert!(t.names.iter().any(|n| n.len() == 255));
    assert!(t.names.iter().any(|n| n.to_str().is_none()));
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::metadata(src.join(&t.hard_links[0])).unwrap().nlink(),
        t.hard_links.len() as u64
    );
    assert!(fs::read_link(src.join("symlinks/dangling")).is_ok());
    assert!(!src.join("symlinks/dangling").exists());
    assert!(fixtures::allocated_bytes(&src.join(&t.sparse_file)) < 4 * 1024 * 1024);
    assert_eq!(
        fs::metadata(src.join(&t.large_file)).unwrap().len(),
        3 * 1024 * 1024
    );

    // A faithful copy compares equal.
    let dst = base.path().join("dst");
    check(
        Command::new("rsync")
            .args(["-aHS", "--numeric-ids"])
            .arg(format!("{}/", src.display()))
            .arg(&dst),
    );
    tree::assert_same_tree(&src, &dst);
    Compare::new()
        .mtime(true)
        .owner(true)
        .run(&src, &dst)
        .unwrap();

    // A copy without -H loses the hard-link structure: detected.
    let nolinks = base.path().join("nolinks");
    check(
        Command::new("rsync")
            .args(["-a"])
            .arg(format!("{}/", src.display()))
            .arg(&nolinks),
    );
    let d = tree::compare(&src, &nolinks).unwrap_err();
    assert!(
        d.differences
            .iter()
            .all(|l| l.starts_with("hard links differ")),
        "{d}"
    );
    assert_eq!(d.differences.len(), t.hard_links.len() + 2);
    Compare::new()
        .hard_links(false)
        .run(&src, &nolinks)
        .unwrap();

    // Each kind of damage is reported.
    fs::write(dst.join("plain.txt"), "plaiN\n").unwrap();
    fs::set_permissions(
        dst.join("modes/executable"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    fs::remove_file(dst.join("symlinks/relative")).unwrap();
    std::os::unix::fs::symlink("elsewhere", dst.join("symlinks/relative")).unwrap();
    fs::remove_dir(dst.join("empty-dir")).unwrap();
    fs::write(dst.join("extra"), "").unwrap();
    fs::write(dst.join("new\nline"), "changed size").unwrap();
    let d = tree::compare(&src, &dst).unwrap_err();
    let text = d.to_string();
    eprintln!("{text}");
    for want in [
        "content differs: \"plain.txt\" (first at byte 4)",
        "mode differs: \"modes/executable\": 755 vs 644",
        "symlink target differs: \"symlinks/relative\"",
        "only in a: \"empty-dir\" (directory)",
        "only in b: \"extra\" (file)",
        "size differs: \"new\\nline\"",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert_eq!(d.differences.len(), 6, "{text}");
    // Excludes.
    Compare::new()
        .exclude("plain.txt")
        .exclude("modes")
        .exclude("symlinks")
        .exclude("empty-dir")
        .exclude("extra")
        .exclude("new\nline")
        .run(&src, &dst)
        .unwrap();
}

#[test]
fn awkward_tree_survives_rsync_over_ssh_round_trip() {
    if !require(RemoteHost::COMPONENTS) {
        return;
    }
    let remote = RemoteHost::start();
    let base = testbed::temp_dir("roundtrip");
    let src = base.path().join("src");
    fixtures::awkward_tree_with(
        &src,
        TreeOptions {
            large_bytes: 1024 * 1024,
            sparse_bytes: 8 * 1024 * 1024,
        },
    );
    let there = remote.root().join("copy of src");
    let rsync = |from: String, to: String| {
        check(
            Command::new("rsync")
                .args(["-aHS", "-s", "--numeric-ids", "-e", &remote.rsync_rsh()])
                .arg(from)
                .arg(to),
        )
    };
    rsync(
        format!("{}/", src.display()),
        remote.rsync_dest("root", &there),
    );
    assert!(!there.exists());
    let back = base.path().join("back");
    rsync(
        format!("{}/", remote.rsync_dest("root", &there)),
        back.display().to_string(),
    );
    tree::assert_same_tree(&src, &back);
    assert!(!Path::new("INJECTED").exists());
}

// -------------------------------------------------------- require / waits --

#[test]
fn require_skips_outside_ci_and_fails_in_ci() {
    // A component that exists passes either way.
    assert!(testbed::require_in(false, &[]));
    // Find one that is missing on purpose: a shell we pretend to need under
    // a nonexistent name is not expressible, so use the non-root check when
    // not root, else an absent program via the Shell list if any is absent.
    let missing = Shell::ALL
        .iter()
        .map(|&s| Component::Shell(s))
        .chain([Component::Root])
        .find(|c| c.check().is_err());
    match missing {
        Some(c) => {
            assert!(!testbed::require_in(false, &[c]));
            let r = std::panic::catch_unwind(|| testbed::require_in(true, &[c]));
            assert!(r.is_err(), "CI=true must fail the test");
        }
        None => {
            // Everything present: require passes in both modes.
            assert!(testbed::require_in(
                true,
                &[Component::Root, Component::Rsync]
            ));
            assert!(testbed::require_in(false, &[Component::Shell(Shell::Posh)]));
        }
    }
    assert_eq!(Component::Shell(Shell::YashPosix).package(), "yash");
    assert_eq!(Component::SshServer.package(), "openssh-server");
}

#[test]
fn waits_are_bounded() {
    let t = Instant::now();
    let r = testbed::wait_until("never", Duration::from_millis(200), || false);
    assert!(r.is_err());
    assert!(t.elapsed() < Duration::from_secs(2));
    let mut n = 0;
    testbed::wait_until("third poll", Duration::from_secs(5), || {
        n += 1;
        n == 3
    })
    .unwrap();
    let err =
        testbed::run_timeout(&mut cmd("sleep", ["30"]), Duration::from_millis(300)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(t.elapsed() < Duration::from_secs(5));
    let a = testbed::unique_name("x");
    let b = testbed::unique_name("x");
    assert_ne!(a, b);
    assert!(a.starts_with(&format!("x-{}-", std::process::id())));
}

// ---------------------------------------------------------------- absent --

/// Inside `testbed::absent::Away`: a connection to a home host neither
/// succeeds nor fails (its packets vanish), the host name's DNS server does
/// not answer, and any other address has no route (nothing leaves).
#[test]
fn away_swallows_packets_to_home_hosts_and_dns_and_routes_nothing_else() {
    use testbed::absent::{Away, HOSTS, NAME};
    if !require(Away::COMPONENTS) || !require(&[Component::Shell(Shell::BashPosix)]) {
        return;
    }
    let away = Away::start();
    // bash's /dev/tcp: connect(2) with no timeout of its own; `timeout`
    // ends it. 124 = still waiting after 2 s (neither refused nor unreachable).
    let connect = |addr: &str| {
        let mut c = away.command("timeout");
        c.args(["2", "bash", "-c", &format!("exec 3<>/dev/tcp/{addr}/22")]);
        testbed::run_timeout(&mut c, Duration::from_secs(20)).unwrap()
    };
    for h in HOSTS {
        let out = connect(&h.to_string());
        assert_eq!(out.status.code(), Some(124), "{h}: {out:?}");
    }
    let t = Instant::now();
    let mut c = away.command("timeout");
    c.args(["2", "getent", "hosts", NAME]);
    let out = testbed::run_timeout(&mut c, Duration::from_secs(20)).unwrap();
    assert_eq!(out.status.code(), Some(124), "getent: {out:?}");
    assert!(t.elapsed() >= Duration::from_secs(2));
    // No route: fails at once, nothing is sent (192.0.2.1 is TEST-NET-1).
    let t = Instant::now();
    let out = connect("192.0.2.1");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(t.elapsed() < Duration::from_secs(1));
    let netns = away.netns().to_string();
    drop(away);
    assert!(!netns_exists(&netns));
    assert!(!Path::new("/etc/netns").join(&netns).exists());
}
