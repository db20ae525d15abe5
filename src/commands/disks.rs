//! `nbkp disks mount|umount|status|setup-auth`: mount-managed volumes by hand.

use crate::cli::{DisksArgs, DisksCommand, OutputFormat, SetupAuthArgs};
use crate::exec::{DisksAction, Executor, LogUi, RunOptions, Strictness};
use crate::output::{print_json, table::Table};
use crate::plan::LowerOptions;

pub fn run(cmd: &DisksCommand) -> i32 {
    match cmd {
        DisksCommand::Mount(a) if a.dry_run => dry_run(&a.common, DisksAction::Mount),
        DisksCommand::Umount(a) if a.dry_run => dry_run(&a.common, DisksAction::Umount),
        DisksCommand::Mount(a) => act(&a.common, DisksAction::Mount),
        DisksCommand::Umount(a) => act(&a.common, DisksAction::Umount),
        DisksCommand::Status(a) => act(a, DisksAction::Status),
        DisksCommand::SetupAuth(a) => setup_auth(a),
    }
}

/// The plan of the selected mount-managed volumes, and how to run it.
fn executor(args: &DisksArgs) -> Result<(crate::plan::Plan, RunOptions), i32> {
    let options = LowerOptions {
        mounts_only: Some(args.name.clone()),
        ..LowerOptions::default()
    };
    let plan = super::plan_for(
        args.file.config.as_deref(),
        &args.select,
        args.output,
        &options,
    )?;
    let run = RunOptions {
        dry_run: false,
        progress: "none".into(),
        strictness: Strictness::IgnoreInactive,
        stream_rsync: false,
        rsync_logs: None,
        jobs: 1,
    };
    Ok((plan, run))
}

fn act(args: &DisksArgs, action: DisksAction) -> i32 {
    let (plan, run) = match executor(args) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let executor = match Executor::new(
        &plan,
        run,
        Box::new(LogUi(|line: &str| eprintln!("{line}"))),
    ) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };
    let results = executor.disks(action);
    match args.output {
        OutputFormat::Json => print_json(&results),
        OutputFormat::Human => {
            let mut t = Table::new("Volumes", &["volume", "state", "details"]);
            for r in &results {
                t.row(vec![
                    r.volume.clone(),
                    r.state.into(),
                    r.detail.clone().unwrap_or_default(),
                ]);
            }
            print!("{}", t.render());
        }
    }
    let failed = match action {
        // An absent drive is a normal state, reported; only problems fail.
        DisksAction::Mount | DisksAction::Umount => results.iter().any(|r| r.error),
        DisksAction::Status => false,
    };
    i32::from(failed)
}

/// What `disks mount|umount` would do to a volume in `state` (as
/// `disks status` finds it); the reason when nothing.
fn planned(
    action: DisksAction,
    state: &str,
    encrypted: bool,
) -> (Vec<&'static str>, Option<&'static str>) {
    let lock: &[&str] = if encrypted { &["lock"] } else { &[] };
    match (action, state) {
        (_, "absent") => (vec![], Some("device not plugged in")),
        (_, "unknown") => (vec![], Some("could not be probed")),
        (DisksAction::Mount, "locked") => (vec!["unlock", "mount"], None),
        (DisksAction::Mount, "unmounted") => (vec!["mount"], None),
        (DisksAction::Mount, _) => (vec![], Some("already mounted")),
        (_, "mounted") => ([&["unmount"][..], lock].concat(), None),
        (_, "unmounted") => (lock.to_vec(), (!encrypted).then_some("not mounted")),
        (_, _) => (vec![], Some("not mounted")),
    }
}

/// `disks mount|umount --dry-run`: the volumes' states, probed as `disks
/// status` does, and what each would need; nothing is changed.
fn dry_run(args: &DisksArgs, action: DisksAction) -> i32 {
    let (plan, run) = match executor(args) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let encrypted: Vec<bool> = plan.mounts.iter().map(|m| m.passphrase.is_some()).collect();
    let executor = match Executor::new(
        &plan,
        run,
        Box::new(LogUi(|line: &str| eprintln!("{line}"))),
    ) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };
    let states = executor.disks(DisksAction::Status);
    let mut rows: Vec<serde_json::Value> = states
        .iter()
        .zip(&encrypted)
        .map(|(r, &enc)| {
            let (actions, detail) = planned(action, r.state, enc);
            serde_json::json!({
                "volume": r.volume,
                "actions": actions,
                "detail": detail,
                "probe_failed": r.error,
            })
        })
        .collect();
    if action == DisksAction::Umount {
        // Unmounting goes in the reverse order of mounting.
        rows.reverse();
    }
    match args.output {
        OutputFormat::Json => print_json(&serde_json::json!({"dry_run": true, "volumes": rows})),
        OutputFormat::Human => {
            let mut t = Table::new(
                "Volumes (dry run: nothing changed)",
                &["volume", "would do", "details"],
            );
            for r in &rows {
                let actions: Vec<&str> = r["actions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a.as_str())
                    .collect();
                t.row(vec![
                    r["volume"].as_str().unwrap_or_default().to_string(),
                    if actions.is_empty() {
                        "nothing".into()
                    } else {
                        actions.join(", ")
                    },
                    r["detail"].as_str().unwrap_or_default().to_string(),
                ]);
            }
            print!("{}", t.render());
        }
    }
    0
}

/// The udisks2 actions the rule grants (spec §8.4).
const ACTIONS: [&str; 10] = [
    "filesystem-mount",
    "filesystem-mount-system",
    "filesystem-mount-other-seat",
    "filesystem-fstab",
    "filesystem-unmount-others",
    "encrypted-unlock",
    "encrypted-unlock-system",
    "encrypted-unlock-other-seat",
    "encrypted-unlock-crypttab",
    "encrypted-lock-others",
];

pub const RULES_PATH: &str = "/etc/polkit-1/rules.d/50-nbkp.rules";

/// The polkit rule letting `user` unlock, mount, unmount and lock without a password.
pub fn polkit_rule(user: &str) -> String {
    let actions: Vec<String> = ACTIONS
        .iter()
        .map(|a| serde_json::to_string(&format!("org.freedesktop.udisks2.{a}")).unwrap_or_default())
        .collect();
    let user = serde_json::to_string(user).unwrap_or_default();
    format!(
        "// Generated by nbkp disks setup-auth\n// Install to: {RULES_PATH}\nvar nbkpActions = [{}];\npolkit.addRule(function(action, subject) {{\n    if (subject.user == {user} &&\n        nbkpActions.indexOf(action.id) > -1) {{\n        return polkit.Result.YES;\n    }}\n}});\n",
        actions.join(", ")
    )
}

fn setup_auth(args: &SetupAuthArgs) -> i32 {
    let loaded = match super::load_config(args.file.config.as_deref(), args.output) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let any = loaded.config.volumes.values().any(|v| v.mount.is_some());
    let user = args.user.clone().unwrap_or_else(|| {
        std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "root".into())
    });
    match args.output {
        OutputFormat::Json => {
            let rules: Vec<serde_json::Value> = if any {
                vec![
                    serde_json::json!({"name": "polkit rules", "path": RULES_PATH, "content": polkit_rule(&user)}),
                ]
            } else {
                Vec::new()
            };
            print_json(&serde_json::json!({ "rules": rules }));
        }
        OutputFormat::Human if !any => eprintln!("No volumes with mount config found."),
        OutputFormat::Human => {
            println!("# polkit rules\n# Install to: {RULES_PATH}\n");
            print!("{}", polkit_rule(&user));
        }
    }
    0
}
