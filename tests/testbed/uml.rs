//! User-Mode Linux: a Linux kernel run as a process, with the device-mapper
//! this machine's kernel lacks, so LUKS2 and udisks2 can be tested for real.
//! The guest's root file system is the host's `/` (hostfs, read-write), so
//! host binaries — nbkp, a test binary — run inside it; scratch data lives
//! on tmpfs mounts inside the guest (`/run`, `/media`, `/mnt`). Disks are
//! image files, seen as `/dev/ubda`, `/dev/ubdb`, …
//!
//! On CPUs with a large XSAVE area (AVX-512/AMX) stock UML panics with
//! `ptrace set fp regs failed`; `uml/umlxstate.c`, compiled here and
//! LD_PRELOADed, pads its register buffer.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub const UDISKSD: &str = "/usr/libexec/udisks2/udisksd";
pub const UDEVD: &str = "/lib/systemd/systemd-udevd";

/// `/usr/lib/uml/modules/<version>`.
pub fn modules_dir() -> Result<PathBuf, String> {
    let base = Path::new("/usr/lib/uml/modules");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(base)
        .map_err(|e| format!("{}: {e}", base.display()))?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    entries
        .pop()
        .ok_or_else(|| "no UML kernel modules".to_string())
}

/// A scratch directory for a guest's files (init, logs, disk images),
/// outside `/tmp`, which the guest covers with a tmpfs.
pub fn work_dir() -> tempfile::TempDir {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/uml");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new()
        .prefix("nbkp-uml-")
        .tempdir_in(base)
        .expect("create the guest's directory")
}

/// The init line that brings back a checkout under `/tmp` (its binaries and
/// the guest's files) over the guest's `/tmp`: the host's directory mounted
/// again there.
fn checkout_in_tmp() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    if !dir.starts_with("/tmp") {
        return String::new();
    }
    let d = super::shq(dir.display().to_string());
    format!("mkdir -p {d}; mount -t hostfs -o {d} hostfs {d}\n")
}

/// What one guest boot did.
pub struct GuestRun {
    /// The guest command's exit code (`None`: the guest died).
    pub code: Option<i32>,
    /// Its standard output and error.
    pub log: String,
    pub kernel_log: String,
    pub elapsed: Duration,
}

/// Boots a guest that runs `command` (after starting udisks2 when
/// `udisks`), with `env` set, and these disk images; waits for it.
pub fn run_guest(
    work: &Path,
    command: &[String],
    env: &[(&str, String)],
    disks: &[PathBuf],
    udisks: bool,
) -> GuestRun {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testbed/uml");
    let shim = work.join("umlxstate.so");
    if !shim.exists() {
        super::check(
            Command::new("gcc")
                .args(["-O2", "-shared", "-fPIC", "-o"])
                .arg(&shim)
                .arg(src.join("umlxstate.c"))
                .arg("-ldl"),
        );
    }
    let modules = modules_dir().expect("UML modules");
    let version = modules.file_name().unwrap().to_string_lossy().into_owned();
    let modroot = work.join("modroot/lib/modules");
    std::fs::create_dir_all(&modroot).unwrap();
    let link = modroot.join(&version);
    if !link.exists() {
        std::os::unix::fs::symlink(&modules, &link).unwrap();
    }
    std::fs::create_dir_all(work.join("umldir")).unwrap();
    fn q(s: &str) -> String {
        super::shq(s)
    }
    let mut exports = String::new();
    for (k, v) in env {
        exports.push_str(&format!("export {k}={}\n", q(v)));
    }
    let mut cmd = String::new();
    if udisks {
        cmd.push_str(&format!(
            "sh {} ",
            q(&src.join("guest-udisks.sh").display().to_string())
        ));
    }
    cmd.push_str(&command.iter().map(|a| q(a)).collect::<Vec<_>>().join(" "));
    let log = work.join("guest.log");
    let rc = work.join("guest.rc");
    let _ = std::fs::remove_file(&rc);
    let init = format!(
        "#!/bin/sh\nexport PATH=/usr/sbin:/usr/bin:/sbin:/bin\nmount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev 2>/dev/null\nmount -t tmpfs run /run; mount -t tmpfs media /media; mount -t tmpfs mnt /mnt; mount -t tmpfs tmp /tmp\n{checkout}# The host root's home (shell start-up files, ssh config) stays out of the guest.\nmount -t tmpfs root-home /root\nfor m in cbc xts dm-crypt loop btrfs; do modprobe -d {modroot} $m 2>/dev/null; done\n# A bare devtmpfs has no /dev/stdin (udisksctl --key-file /dev/stdin needs it).\nmkdir -p /dev/pts; mount -t devpts -o ptmxmode=0666 devpts /dev/pts; [ -e /dev/ptmx ] || ln -s pts/ptmx /dev/ptmx\nln -sf /proc/self/fd /dev/fd; ln -sf /proc/self/fd/0 /dev/stdin; ln -sf /proc/self/fd/1 /dev/stdout; ln -sf /proc/self/fd/2 /dev/stderr\nip link set lo up 2>/dev/null\n{exports}{cmd} >{log} 2>&1 </dev/null; echo $? >{rc}\nsync; poweroff -f\n",
        checkout = checkout_in_tmp(),
        modroot = q(&work.join("modroot").display().to_string()),
        log = q(&log.display().to_string()),
        rc = q(&rc.display().to_string()),
    );
    let init_path = work.join("init");
    std::fs::write(&init_path, init).unwrap();
    super::check(Command::new("chmod").arg("755").arg(&init_path));
    let mut uml = Command::new("/usr/bin/linux.uml");
    uml.env("LD_PRELOAD", &shim)
        .arg("mem=768M")
        .arg(format!("uml_dir={}", work.join("umldir").display()))
        .args(["root=/dev/root", "rootfstype=hostfs", "rootflags=/", "rw"])
        .arg(format!("init={}", init_path.display()));
    for (i, d) in disks.iter().enumerate() {
        uml.arg(format!("ubd{i}={}", d.display()));
    }
    uml.args(["con0=null,fd:1", "con=null"]);
    let start = Instant::now();
    let kernel_log = match super::run_timeout(&mut uml, Duration::from_secs(600)) {
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
        Err(e) => format!("linux.uml: {e}"),
    };
    let elapsed = start.elapsed();
    GuestRun {
        code: std::fs::read_to_string(&rc)
            .ok()
            .and_then(|s| s.trim().parse().ok()),
        log: std::fs::read_to_string(&log).unwrap_or_default(),
        kernel_log,
        elapsed,
    }
}
