//! The Python nbkp, installed from the package index into a virtual
//! environment under the cargo target directory, for tests that run it
//! against the same drives as this nbkp.
//!
//! The interpreter: `NBKP_TEST_PYTHON` if set, else the first Python >= 3.12
//! among `python3.14 … python3` on PATH and pyenv's installed versions
//! (pyenv's shims answer only for the selected version, so its
//! `versions/*/bin/python3` are tried directly). None: the test prints
//! `SKIP` and returns, also in CI (no Debian package gives 3.12 there).
//!
//! The venv (`target/python-nbkp-venv`) is reused while the interpreter and
//! the requirement are unchanged; under CI it is always made afresh. A
//! failed install skips locally (no index reachable) and fails in CI.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::testbed::{self, run_timeout, FileLock};

/// What is installed: the newest 1.x the interpreter can take (1.3.0 needs
/// Python 3.12–3.14, 1.4 needs 3.15).
pub const REQUIREMENT: &str = "nbkp>=1.3,<2";

/// The oldest Python the tool supports.
const MIN_PYTHON: (u32, u32) = (3, 12);

/// An installed Python nbkp.
#[derive(Debug)]
pub struct PythonNbkp {
    /// `<venv>/bin/nbkp`.
    pub bin: PathBuf,
    /// `nbkp --version`, e.g. `1.3.0`.
    pub version: String,
    /// The interpreter the venv was made with, and its version.
    pub python: PathBuf,
    pub python_version: String,
}

/// The Python nbkp, installed once per test process. `None`: the calling
/// test is skipped, and a `SKIP` line naming it and the reason was printed.
pub fn python_nbkp() -> Option<&'static PythonNbkp> {
    static NBKP: OnceLock<Result<PythonNbkp, String>> = OnceLock::new();
    let got = NBKP.get_or_init(|| {
        let got = install().map_err(|Skip(why)| why);
        if let Ok(n) = &got {
            say(&format!(
                "python nbkp {} (Python {} at {}) in {}",
                n.version,
                n.python_version,
                n.python.display(),
                n.bin.parent().and_then(Path::parent).unwrap().display()
            ));
        }
        got
    });
    match got {
        Ok(n) => Some(n),
        Err(why) => {
            let test = std::thread::current().name().unwrap_or("?").to_string();
            say(&format!("SKIP {test}: {why}"));
            None
        }
    }
}

struct Skip(String);

/// Straight to fd 2: libtest captures the print macros of passing tests.
fn say(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// `target/` of this build (`CARGO_TARGET_TMPDIR` is `target/tmp`).
fn target_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).to_path_buf()
}

fn install() -> Result<PythonNbkp, Skip> {
    let (python, python_version) = find_python()?;
    let venv = target_dir().join("python-nbkp-venv");
    // Another test process may be installing into the same venv.
    let _lock = FileLock::acquire(&venv.with_extension("lock"), Duration::from_secs(600));
    let stamp = venv.join(".nbkp-test-stamp");
    let want = format!("{}\n{python_version}\n{REQUIREMENT}\n", python.display());
    let bin = venv.join("bin/nbkp");
    let cached = !testbed::in_ci()
        && std::fs::read_to_string(&stamp).is_ok_and(|s| s == want)
        && nbkp_version(&bin).is_some();
    if !cached {
        make_venv(&python, &venv)?;
        std::fs::write(&stamp, &want).expect("write the venv stamp");
    }
    let version = nbkp_version(&bin).ok_or_else(|| {
        fail(format!(
            "{} --version does not answer after the install",
            bin.display()
        ))
    })?;
    Ok(PythonNbkp {
        bin,
        version,
        python,
        python_version,
    })
}

/// A failure where a Python exists: fatal in CI, a skip elsewhere.
fn fail(why: String) -> Skip {
    if testbed::in_ci() {
        panic!("python interop: {why} (CI=true: a Python >= 3.12 is here, so the test must run)");
    }
    Skip(why)
}

fn make_venv(python: &Path, venv: &Path) -> Result<(), Skip> {
    if venv.exists() {
        std::fs::remove_dir_all(venv).expect("remove the old venv");
    }
    let step = |cmd: &mut Command, what: &str, secs: u64| -> Result<(), Skip> {
        let out = run_timeout(cmd, Duration::from_secs(secs))
            .map_err(|e| fail(format!("{what}: {e}")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(fail(format!(
                "{what} failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )))
        }
    };
    say(&format!(
        "python interop: installing {REQUIREMENT} into {}",
        venv.display()
    ));
    step(
        Command::new(python).args(["-m", "venv"]).arg(venv),
        "python -m venv",
        120,
    )?;
    step(
        Command::new(venv.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .arg(REQUIREMENT),
        &format!("pip install {REQUIREMENT}"),
        600,
    )
}

fn nbkp_version(bin: &Path) -> Option<String> {
    let out = run_timeout(
        Command::new(bin).arg("--version").env("NO_COLOR", "1"),
        Duration::from_secs(60),
    )
    .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v = text.split_whitespace().last()?.to_string();
    (out.status.success() && !v.is_empty()).then_some(v)
}

/// The first usable interpreter >= 3.12 with its version.
fn find_python() -> Result<(PathBuf, String), Skip> {
    let mut tried = Vec::new();
    for cand in candidates() {
        match python_version(&cand) {
            Some((v, full)) if v >= MIN_PYTHON => return Ok((cand, full)),
            Some((_, full)) => tried.push(format!("{} is {full}", cand.display())),
            None => tried.push(format!("{} does not run", cand.display())),
        }
    }
    if let Ok(p) = std::env::var("NBKP_TEST_PYTHON") {
        let why = format!(
            "NBKP_TEST_PYTHON={p} is not a Python >= 3.12 ({})",
            tried.join("; ")
        );
        assert!(!testbed::in_ci(), "python interop: {why}");
        return Err(Skip(why));
    }
    Err(Skip(format!(
        "no Python >= 3.12 (tried: {}); install one (e.g. with pyenv) or set NBKP_TEST_PYTHON",
        if tried.is_empty() {
            "nothing found".to_string()
        } else {
            tried.join("; ")
        }
    )))
}

fn candidates() -> Vec<PathBuf> {
    if let Ok(p) = std::env::var("NBKP_TEST_PYTHON") {
        return vec![PathBuf::from(p)];
    }
    let mut out: Vec<PathBuf> = ["python3.14", "python3.13", "python3.12", "python3"]
        .iter()
        .filter_map(|n| testbed::which(n))
        .collect();
    let pyenv = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")))
        .unwrap_or_else(|| PathBuf::from("/root/.pyenv"));
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir(pyenv.join("versions"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let key: Vec<u32> = name
                .split('.')
                .map(|p| p.parse().ok())
                .collect::<Option<_>>()?;
            let bin = e.path().join("bin/python3");
            bin.exists().then_some((key, bin))
        })
        .collect();
    versions.sort();
    out.extend(versions.into_iter().rev().map(|(_, p)| p));
    out
}

/// `((major, minor), "3.13.0")`, or `None` when it does not run (a pyenv
/// shim for a version that is not selected) or has no `venv` module.
fn python_version(python: &Path) -> Option<((u32, u32), String)> {
    let out = run_timeout(
        Command::new(python).args([
            "-c",
            "import sys, venv, ensurepip; print('%d.%d.%d' % sys.version_info[:3])",
        ]),
        Duration::from_secs(30),
    )
    .ok()?;
    if !out.status.success() {
        return None;
    }
    let full = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut parts = full.split('.').map(|p| p.parse::<u32>().ok());
    Some(((parts.next()??, parts.next()??), full))
}
