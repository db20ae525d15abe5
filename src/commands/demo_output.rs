//! `nbkp demo output`: every human output, shown on sample data.
//!
//! The outputs are real: a `demo seed` in a temporary folder, then each
//! command run by this same binary on it (its state file in that folder too),
//! then the folder is removed. Nothing is made up, so nothing can drift from
//! what the commands really print.

use std::path::Path;
use std::process::Command;

use crate::cli::DemoSeedArgs;

/// The commands shown, in the order a new user meets them. `{c}` is the
/// sample config.
const SHOWN: &[&[&str]] = &[
    &["config", "show", "-c", "{c}"],
    &["ordering", "graph", "-c", "{c}"],
    &["ordering", "graph", "-c", "{c}", "-f", "mermaid"],
    &["init", "-c", "{c}", "-n"],
    &["preflight", "check", "-c", "{c}"],
    &["preflight", "troubleshoot", "-c", "{c}"],
    &["run", "-c", "{c}", "-n"],
    &["run", "-c", "{c}"],
    &["run", "-c", "{c}"],
    &["snapshots", "show", "-c", "{c}"],
    &["snapshots", "prune", "-c", "{c}", "-n"],
    &["status", "-c", "{c}"],
    &["disks", "status", "-c", "{c}"],
    &["disks", "setup-auth", "-c", "{c}"],
    &["credentials", "keyring-status", "-c", "{c}"],
];

pub fn run() -> i32 {
    let tmp = match tempfile::Builder::new()
        .prefix("nbkp-demo-output-")
        .tempdir()
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("Error: cannot create a folder for the sample data: {e}");
            return 1;
        }
    };
    let seed = DemoSeedArgs {
        base_dir: Some(tmp.path().join("sample")),
        big_file_size: 0,
        docker: false,
        no_docker: true,
        luks: false,
        no_luks: true,
        bandwidth_limit: None,
        credential_provider: None,
        dry_run: false,
    };
    println!(
        "$ nbkp demo seed --base-dir {}",
        tmp.path().join("sample").display()
    );
    let code = super::demo_seed::run(&seed);
    if code != 0 {
        return code;
    }
    let me = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("Error: cannot find this nbkp binary: {e}");
            return 1;
        }
    };
    let config = tmp.path().join("sample/config.yaml");
    let mut failed = false;
    for args in SHOWN {
        failed |= !show(&me, args, &config, tmp.path());
    }
    // `tmp` is removed here: the sample data was only for showing.
    i32::from(failed)
}

/// Runs one command with its output interleaved as a terminal would show it;
/// false if it could not be started.
fn show(me: &Path, args: &[&str], config: &Path, dir: &Path) -> bool {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.replace("{c}", &config.display().to_string()))
        .collect();
    println!("\n$ nbkp {}", args.join(" "));
    let out = Command::new(me)
        .args(&args)
        // The runs' history goes to the sample folder, not the user's.
        .env("XDG_STATE_HOME", dir.join("state"))
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Ok(out) => {
            // stderr first: it carries the progress that comes before a table.
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
            print!("{}", String::from_utf8_lossy(&out.stdout));
            if let Some(code) = out.status.code().filter(|c| *c != 0) {
                println!("(exit {code})");
            }
            true
        }
        Err(e) => {
            eprintln!("Error: cannot run {}: {e}", me.display());
            false
        }
    }
}
