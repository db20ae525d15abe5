//! The shells generated scripts must run under, and `shellcheck -s sh`.

use std::path::Path;
use std::process::{Command, Output};

use super::{run_timeout, temp_dir, COMMAND_TIMEOUT};

/// A POSIX-ish shell, invoked the way it is strictest about POSIX.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shell {
    /// `dash`
    Dash,
    /// `busybox sh`
    BusyboxSh,
    /// `bash --posix`
    BashPosix,
    /// `posh`
    Posh,
    /// `mksh`
    Mksh,
    /// `yash --posix`
    YashPosix,
    /// `zsh --emulate sh`
    ZshSh,
}

impl Shell {
    pub const ALL: [Shell; 7] = [
        Shell::Dash,
        Shell::BusyboxSh,
        Shell::BashPosix,
        Shell::Posh,
        Shell::Mksh,
        Shell::YashPosix,
        Shell::ZshSh,
    ];

    /// The executable.
    pub fn program(self) -> &'static str {
        match self {
            Shell::Dash => "dash",
            Shell::BusyboxSh => "busybox",
            Shell::BashPosix => "bash",
            Shell::Posh => "posh",
            Shell::Mksh => "mksh",
            Shell::YashPosix => "yash",
            Shell::ZshSh => "zsh",
        }
    }

    /// Arguments before the script.
    pub fn args(self) -> &'static [&'static str] {
        match self {
            Shell::BusyboxSh => &["sh"],
            Shell::BashPosix => &["--posix"],
            Shell::YashPosix => &["--posix"],
            Shell::ZshSh => &["--emulate", "sh"],
            _ => &[],
        }
    }

    /// The apt package.
    pub fn package(self) -> &'static str {
        match self {
            Shell::Dash => "dash",
            Shell::BusyboxSh => "busybox",
            Shell::BashPosix => "bash",
            Shell::Posh => "posh",
            Shell::Mksh => "mksh",
            Shell::YashPosix => "yash",
            Shell::ZshSh => "zsh",
        }
    }

    /// e.g. `bash --posix`.
    pub fn display(self) -> String {
        std::iter::once(self.program())
            .chain(self.args().iter().copied())
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn is_available(self) -> bool {
        super::which(self.program()).is_some()
    }

    /// `SHELL ARGS...` — append the script path (or `-c CODE`).
    pub fn command(self) -> Command {
        let mut c = Command::new(self.program());
        c.args(self.args());
        c
    }
}

impl std::fmt::Display for Shell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

/// Run `script` under `shell` with `args` (bounded by
/// [`COMMAND_TIMEOUT`]; stdin is closed).
pub fn run_script<S: AsRef<std::ffi::OsStr>>(shell: Shell, script: &Path, args: &[S]) -> Output {
    run_timeout(shell.command().arg(script).args(args), COMMAND_TIMEOUT)
        .unwrap_or_else(|e| panic!("run {script:?} under {shell}: {e}"))
}

/// Write `code` to a temporary file and run it under `shell`.
pub fn run_code<S: AsRef<std::ffi::OsStr>>(shell: Shell, code: &str, args: &[S]) -> Output {
    let dir = temp_dir("script");
    let path = dir.path().join("script.sh");
    std::fs::write(&path, code).unwrap();
    run_script(shell, &path, args)
}

/// Run the script under every shell; returns `(shell, output)` for each.
pub fn run_everywhere<S: AsRef<std::ffi::OsStr>>(
    script: &Path,
    args: &[S],
) -> Vec<(Shell, Output)> {
    Shell::ALL
        .iter()
        .map(|&s| (s, run_script(s, script, args)))
        .collect()
}

/// `shellcheck -s sh SCRIPT`: `Ok(())` if clean, else its report.
pub fn shellcheck(script: &Path) -> Result<(), String> {
    let out = run_timeout(
        Command::new("shellcheck").args(["-s", "sh"]).arg(script),
        COMMAND_TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("run shellcheck: {e}"));
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "shellcheck -s sh {}:\n{}{}",
            script.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// [`shellcheck`] on code (written to a temporary file).
pub fn shellcheck_code(code: &str) -> Result<(), String> {
    let dir = temp_dir("shellcheck");
    let path = dir.path().join("script.sh");
    std::fs::write(&path, code).unwrap();
    shellcheck(&path)
}
