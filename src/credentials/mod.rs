//! LUKS passphrases for `nbkp run` and `nbkp disks`: from the OS secret
//! store (`secret-tool` for the Secret Service on Linux, `security` for the
//! Keychain on macOS), a hidden prompt, an environment variable or a
//! command. A passphrase is held as a [`Secret`]: its `Debug` shows nothing,
//! it is wiped when dropped, and no error message ever contains it.

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};

use crate::config::CredentialProvider;
use crate::plan::mount::{CredentialPlan, Passphrase};

/// A passphrase. Never printed; zeroed on drop.
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Secret {
        Secret(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // SAFETY: writing zero bytes keeps the string valid UTF-8.
        unsafe { self.0.as_bytes_mut() }
            .iter_mut()
            .for_each(|b| unsafe { std::ptr::write_volatile(b, 0) });
    }
}

/// Why a passphrase is not available (reasons of spec §8.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialError {
    /// `not-installed`, `not-found`, `env-unset`, `command-missing`, `command-failed`, `prompt-failed`.
    pub reason: &'static str,
    pub message: String,
}

fn err(reason: &'static str, message: String) -> CredentialError {
    CredentialError { reason, message }
}

/// The keyring's command-line tool on this system and its argv for `id`.
pub fn keyring_command(id: &str) -> (&'static str, Vec<String>) {
    if cfg!(target_os = "macos") {
        let argv = [
            "security",
            "find-generic-password",
            "-s",
            "nbkp",
            "-a",
            id,
            "-w",
        ];
        ("security", argv.iter().map(|s| s.to_string()).collect())
    } else {
        let argv = ["secret-tool", "lookup", "service", "nbkp", "account", id];
        ("secret-tool", argv.iter().map(|s| s.to_string()).collect())
    }
}

/// Fetches one passphrase with the plan's provider.
pub fn fetch(plan: &CredentialPlan, p: &Passphrase) -> Result<Secret, CredentialError> {
    let secret = match plan.provider() {
        CredentialProvider::Env => match std::env::var(&p.env) {
            Ok(v) => v,
            Err(_) => {
                return Err(err(
                    "env-unset",
                    format!(
                        "Environment variable '{0}' not set. Export it with: export {0}=...",
                        p.env
                    ),
                ))
            }
        },
        CredentialProvider::Command => run_command(&p.command, &p.id)?,
        CredentialProvider::Keyring => {
            let (tool, argv) = keyring_command(&p.id);
            if !on_path(tool) {
                return Err(err(
                    "not-installed",
                    format!("the keyring tool `{tool}` is not installed"),
                ));
            }
            match run_command(&argv, &p.id) {
                Ok(s) => s,
                Err(e) if e.reason == "command-failed" => {
                    return Err(err(
                        "not-found",
                        format!(
                            "passphrase '{}' not found in the keyring (service nbkp, account {}); store it with: {}",
                            p.id,
                            p.id,
                            store_hint(&p.id)
                        ),
                    ))
                }
                Err(e) => return Err(e),
            }
        }
        CredentialProvider::Prompt => prompt(&p.id)?,
    };
    let secret = Secret::new(secret);
    if let Some(why) = crate::plan::mount::unsendable(secret.expose()) {
        return Err(err(
            "unusable",
            format!("passphrase '{}' cannot be used: {why}", p.id),
        ));
    }
    Ok(secret)
}

/// A command without the `env` provider's `NBKP_PASSPHRASE_*` variables
/// in its environment: nbkp reads them itself; the shells and transfers it
/// starts never need them.
pub fn scrubbed(mut cmd: Command) -> Command {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("NBKP_PASSPHRASE_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Whether `program` is an executable file in a `PATH` directory.
pub fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// How to put a passphrase into the keyring.
pub fn store_hint(id: &str) -> String {
    if cfg!(target_os = "macos") {
        format!("security add-generic-password -s nbkp -a {id} -w")
    } else {
        format!("secret-tool store --label='nbkp {id}' service nbkp account {id}")
    }
}

/// Runs a credential command; its stdout, stripped of surrounding whitespace.
fn run_command(argv: &[String], id: &str) -> Result<String, CredentialError> {
    let Some(program) = argv.first() else {
        return Err(err(
            "command-missing",
            "no credential-command configured".into(),
        ));
    };
    let out = Command::new(program)
        .args(&argv[1..])
        .stdin(Stdio::inherit())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| {
            err(
                "command-missing",
                format!("cannot run credential command `{program}`: {e}"),
            )
        })?;
    if !out.status.success() {
        return Err(err(
            "command-failed",
            format!(
                "credential command `{program}` for '{id}' failed ({})",
                out.status
            ),
        ));
    }
    let mut bytes = out.stdout;
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    bytes.iter_mut().for_each(|b| *b = 0);
    Ok(text)
}

/// Asks on the terminal with echo off (`stty -echo`).
fn prompt(id: &str) -> Result<String, CredentialError> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|e| {
            err(
                "prompt-failed",
                format!("cannot ask for passphrase '{id}': no terminal ({e})"),
            )
        })?;
    let stty = |arg: &str| {
        let _ = Command::new("stty")
            .arg(arg)
            .stdin(tty.try_clone().map(Stdio::from).unwrap_or(Stdio::null()))
            .stderr(Stdio::null())
            .status();
    };
    let mut w = &tty;
    let _ = write!(w, "LUKS passphrase for {id}: ");
    let _ = w.flush();
    stty("-echo");
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    stty("echo");
    let _ = writeln!(w);
    read.map_err(|e| err("prompt-failed", format!("cannot read the passphrase: {e}")))?;
    let value = line.trim_end_matches(['\n', '\r']).to_string();
    line.clear();
    Ok(value)
}

/// The passphrases of one run: each fetched at most once.
#[derive(Debug, Default)]
pub struct Cache {
    got: Vec<(String, Result<Secret, CredentialError>)>,
}

impl Cache {
    /// Fetches every non-prompt passphrase now (before any device is
    /// touched); failures are kept and reported when a volume needs them.
    /// Returns the failures (warnings: a drive that is not plugged in needs
    /// no passphrase).
    pub fn prefetch(&mut self, plan: &CredentialPlan, ids: &[&str]) -> Vec<String> {
        let mut warnings = Vec::new();
        if plan.provider() == CredentialProvider::Prompt {
            return warnings;
        }
        for p in plan
            .passphrases
            .iter()
            .filter(|p| ids.contains(&p.id.as_str()))
        {
            if let Err(e) = self.get(plan, p) {
                warnings.push(format!(
                    "WARN: passphrase '{}' not available: {}",
                    p.id, e.message
                ));
            }
        }
        warnings
    }

    pub fn get(
        &mut self,
        plan: &CredentialPlan,
        p: &Passphrase,
    ) -> &Result<Secret, CredentialError> {
        if let Some(i) = self.got.iter().position(|(id, _)| *id == p.id) {
            return &self.got[i].1;
        }
        self.got.push((p.id.clone(), fetch(plan, p)));
        &self.got.last().expect("just pushed").1
    }
}
