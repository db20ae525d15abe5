//! The README's first command works for someone who is not root: the demo
//! runs as an unprivileged user with HOME in a fresh folder, and
//! `.ci/install-deps` run by that user exits 0 when nothing is missing and
//! says what is missing (and how to install it) otherwise.
//!
//! The unprivileged user is `nobody` (uid 65534) through `setpriv` when the
//! tests run as root; otherwise the tests already run as a non-root user.

mod testbed;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NOBODY: u32 = 65534;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A command run as a non-root user, or None (with a message) when that
/// cannot be arranged here.
fn as_non_root(program: &Path) -> Option<Command> {
    if !is_root() {
        return Some(Command::new(program));
    }
    if testbed::which("setpriv").is_none() {
        let msg = "missing setpriv -- apt-get install util-linux (or run .ci/install-deps)";
        assert!(!testbed::in_ci(), "{msg}");
        eprintln!("SKIP {msg}");
        return None;
    }
    let mut cmd = Command::new("setpriv");
    cmd.args([
        format!("--reuid={NOBODY}"),
        format!("--regid={NOBODY}"),
        "--clear-groups".into(),
        "--".into(),
    ])
    .arg(program);
    Some(cmd)
}

/// A folder the non-root user owns (HOME, TMPDIR).
fn home() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    if is_root() {
        let c = std::ffi::CString::new(dir.path().to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; the result is checked.
        assert_eq!(unsafe { libc::chown(c.as_ptr(), NOBODY, NOBODY) }, 0);
    }
    dir
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn run_in(mut cmd: Command, home: &Path) -> Output {
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("TMPDIR", home)
        .current_dir(home)
        .output()
        .expect("start the command")
}

#[test]
fn the_readme_first_command_needs_no_root_and_no_install_step() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let block = readme
        .split("## Try it")
        .nth(1)
        .and_then(|s| s.split("```sh\n").nth(1))
        .expect("a ```sh block under ## Try it");
    let first = block.lines().next().unwrap();
    assert!(
        first.starts_with("cargo run --quiet -- demo "),
        "first command: {first}"
    );
    assert!(
        !first.contains("install-deps") && !first.contains("sudo"),
        "{first}"
    );
}

#[test]
fn the_demo_runs_as_a_user_who_is_not_root() {
    // The binary where any user can run it (the build folder may not be).
    let home = home();
    let bin = home.path().join("nbkp");
    std::fs::copy(env!("CARGO_BIN_EXE_nbkp"), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    if !testbed::require(&[testbed::Component::Rsync]) {
        return;
    }
    let Some(mut cmd) = as_non_root(&bin) else {
        return;
    };
    cmd.arg("demo");
    let out = run_in(cmd, home.path());
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&out.stderr)
    );
    // The demo made its folder under TMPDIR (the user's own) and backed up.
    let dir = stdout
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("nbkp demo in "))
        .map(PathBuf::from)
        .expect("the demo says where it is");
    assert!(dir.starts_with(home.path()), "{}", dir.display());
    let snaps = std::fs::read_dir(dir.join("usb-drive/documents/snapshots"))
        .unwrap()
        .count();
    assert_eq!(snaps, 2, "{stdout}");
    if is_root() {
        use std::os::unix::fs::MetadataExt;
        let owner = std::fs::metadata(dir.join("config.yaml")).unwrap().uid();
        assert_eq!(owner, NOBODY, "the demo did not run as nobody");
    }
}

/// `.ci/install-deps` as a non-root user on this machine, where everything
/// is installed (CI installs it first; locally the test says so and skips).
#[test]
fn install_deps_as_non_root_with_nothing_missing_exits_0() {
    let home = home();
    let script = home.path().join("install-deps");
    std::fs::copy(repo().join(".ci/install-deps"), &script).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let Some(cmd) = as_non_root(Path::new("bash")) else {
        return;
    };
    let mut cmd = cmd;
    cmd.arg(&script);
    let out = run_in(cmd, home.path());
    let stderr = text(&out.stderr);
    if stderr.contains("missing") && !testbed::in_ci() {
        eprintln!(
            "SKIP: this machine lacks test-bed packages ({stderr}); run .ci/install-deps as root"
        );
        return;
    }
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        text(&out.stdout).contains("packages present"),
        "{}",
        text(&out.stdout)
    );
    assert!(!stderr.contains("must run as root"), "{stderr}");
}

/// With a package missing (a stand-in `dpkg-query` that reports rsync and
/// zsh as not installed, since this machine has them), the non-root user is
/// told which ones and the command that installs them; exit 1, no apt run.
#[test]
fn install_deps_as_non_root_names_what_is_missing_with_a_stand_in_dpkg_query() {
    let home = home();
    let script = home.path().join("install-deps");
    std::fs::copy(repo().join(".ci/install-deps"), &script).unwrap();
    let fake = home.path().join("bin");
    std::fs::create_dir(&fake).unwrap();
    let stand_in = |name: &str, body: &str| {
        let p = fake.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    // Arguments: -W -f=FORMAT PACKAGE.
    stand_in(
        "dpkg-query",
        "case \"$3\" in rsync|zsh) exit 1 ;; esac\necho 'install ok installed'",
    );
    // Were apt reached, the test would see it.
    stand_in("apt-get", "echo APT-GET-RAN; exit 1");
    for dir in [home.path(), &fake] {
        if is_root() {
            let c = std::ffi::CString::new(dir.to_str().unwrap()).unwrap();
            // SAFETY: a valid NUL-terminated path.
            unsafe { libc::chown(c.as_ptr(), NOBODY, NOBODY) };
        }
    }
    let Some(mut cmd) = as_non_root(Path::new("bash")) else {
        return;
    };
    cmd.arg(&script);
    let path = format!(
        "{}:{}",
        fake.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = cmd
        .env_clear()
        .env("PATH", path)
        .env("HOME", home.path())
        .current_dir(home.path())
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("missing 2 package(s): rsync zsh"),
        "{stderr}"
    );
    assert!(
        stderr.contains("sudo apt-get install --no-install-recommends rsync zsh"),
        "{stderr}"
    );
    assert!(
        !text(&out.stdout).contains("APT-GET-RAN") && !stderr.contains("APT-GET-RAN"),
        "apt-get was run"
    );
}
