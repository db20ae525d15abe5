//! `nbkp schedule systemd|launchd|cron`: print or install a periodic `nbkp run`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use clap::Parser;

use crate::cli::{Cli, Command as CliCommand, OutputFormat, ScheduleArgs, Scheduler};
use crate::config::{Config, Volume};
use crate::schedule::{self, Every, Job, PlugTrigger};

pub fn run(args: &ScheduleArgs) -> i32 {
    let every = match Every::parse(&args.every) {
        Ok(e) => e,
        Err(msg) => return usage(&msg),
    };
    if let Err(msg) = check_run_args(&args.run_args) {
        return usage(&msg);
    }
    let loaded = match super::load_config(args.file.config.as_deref(), OutputFormat::Human) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let config_path = match absolute_utf8(&loaded.path, "the config path") {
        Ok(p) => p,
        Err(msg) => return usage(&msg),
    };
    let nbkp = match nbkp_binary(args.nbkp.as_deref()) {
        Ok(p) => p,
        Err(msg) => return usage(&msg),
    };
    let plug = if args.on_plug {
        match plug_triggers(args.scheduler, &loaded.config, &args.volume) {
            Ok(p) => p,
            Err(msg) => return usage(&msg),
        }
    } else {
        Vec::new()
    };
    let mut argv = vec![nbkp, "run".to_string(), "-c".to_string(), config_path];
    argv.extend(args.run_args.iter().cloned());
    // The run checks its conditions itself: launchd and cron have none of
    // their own, and systemd's ConditionACPower= is only checked at start.
    if args.conditions.on_ac_power {
        argv.push("--on-ac-power".into());
    }
    if args.conditions.not_metered {
        argv.push("--not-metered".into());
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/".into());
    let job = Job {
        argv,
        every,
        drive_mounts: drive_mounts(&loaded.config),
        has_ionice: crate::programs::find("ionice").is_some(),
        log_file: format!("{}/Library/Logs/nbkp.log", home.trim_end_matches('/')),
        plug,
        on_ac_power: args.conditions.on_ac_power,
    };
    let files = match files_for(args.scheduler, &job, args.install_dir.as_deref(), &home) {
        Ok(f) => f,
        Err(msg) => return usage(&msg),
    };
    if !args.install {
        print_files(&files);
        eprint!("{}", hint(args.scheduler));
        return 0;
    }
    for f in &files {
        if let Err(e) = write_atomically(&f.path, &f.text) {
            eprintln!("Error: cannot write {}: {e}", f.path.display());
            return 1;
        }
        eprintln!("Written {}", f.path.display());
    }
    if args.enable {
        return enable(args.scheduler, &files);
    }
    eprintln!("Not enabled: {}", enable_hint(args.scheduler));
    0
}

fn usage(msg: &str) -> i32 {
    eprintln!("Error: {msg}");
    super::EXIT_USAGE
}

/// The extra words must be valid `nbkp run` options, and not choose the
/// config (the schedule passes `-c` itself).
fn check_run_args(words: &[String]) -> Result<(), String> {
    let argv = ["nbkp", "run"]
        .into_iter()
        .map(String::from)
        .chain(words.iter().cloned());
    match Cli::try_parse_from(argv) {
        Ok(Cli {
            command: CliCommand::Run(run),
        }) => match run.file.config {
            Some(_) => Err("--run-arg cannot choose the config: use -c of nbkp schedule".into()),
            None => Ok(()),
        },
        Ok(_) => Err("--run-arg: not options of nbkp run".into()),
        Err(e) => Err(format!(
            "--run-arg {:?} is not valid for nbkp run: {}",
            words.join(" "),
            e.kind()
        )),
    }
}

fn absolute_utf8(path: &Path, what: &str) -> Result<String, String> {
    let abs = std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .map_err(|e| format!("{what} {}: {e}", path.display()))?;
    abs.to_str()
        .map(String::from)
        .ok_or_else(|| format!("{what} {} is not UTF-8", abs.display()))
}

fn nbkp_binary(given: Option<&Path>) -> Result<String, String> {
    let path = match given {
        Some(p) => p.to_path_buf(),
        None => {
            std::env::current_exe().map_err(|e| format!("cannot find this nbkp binary: {e}"))?
        }
    };
    let abs = absolute_utf8(&path, "the nbkp binary")?;
    if !Path::new(&abs).is_file() {
        return Err(format!("the nbkp binary {abs} does not exist"));
    }
    Ok(abs)
}

/// Mount points of the config's removable drives.
fn drive_mounts(config: &Config) -> Vec<String> {
    config
        .volumes
        .values()
        .filter(|v| v.is_removable_drive())
        .filter_map(|v| v.path.clone())
        .collect()
}

/// `--on-plug`: the units that mean each chosen removable volume arrived.
fn plug_triggers(
    scheduler: Scheduler,
    config: &Config,
    only: &[String],
) -> Result<Vec<PlugTrigger>, String> {
    let drives: Vec<&Volume> = config
        .volumes
        .values()
        .filter(|v| v.is_removable_drive())
        .collect();
    let names = || {
        let known: Vec<&str> = drives.iter().map(|v| v.slug.as_str()).collect();
        if known.is_empty() {
            "the config has none: a removable volume is mount-managed or lives under /media, /run/media, /mnt or /Volumes".to_string()
        } else {
            format!("removable volumes: {}", known.join(", "))
        }
    };
    match scheduler {
        Scheduler::Cron => {
            return Err("--on-plug: cron cannot start a job when a drive is plugged in; use systemd or launchd".into())
        }
        Scheduler::Launchd if !only.is_empty() => {
            return Err("--volume: launchd's StartOnMount starts on any mount, not one volume's; leave --volume out (absent drives are skipped)".into())
        }
        _ => {}
    }
    for name in only {
        if !drives.iter().any(|v| &v.slug == name) {
            return Err(format!(
                "--volume {name}: not a removable volume of the config ({})",
                names()
            ));
        }
    }
    let triggers: Vec<PlugTrigger> = drives
        .iter()
        .filter(|v| only.is_empty() || only.contains(&v.slug))
        .filter_map(|v| {
            let unit = match (&v.mount, &v.path) {
                (Some(m), _) => schedule::systemd_device_unit(&m.device_uuid),
                (None, Some(p)) => schedule::systemd_mount_unit(p),
                (None, None) => return None,
            };
            Some(PlugTrigger {
                volume: v.slug.clone(),
                unit,
            })
        })
        .collect();
    if triggers.is_empty() {
        return Err(format!("--on-plug: no drive to wait for ({})", names()));
    }
    Ok(triggers)
}

struct File {
    path: PathBuf,
    text: String,
}

fn files_for(
    scheduler: Scheduler,
    job: &Job,
    install_dir: Option<&Path>,
    home: &str,
) -> Result<Vec<File>, String> {
    let dir = |default: PathBuf| install_dir.map(Path::to_path_buf).unwrap_or(default);
    Ok(match scheduler {
        Scheduler::Systemd => {
            let config_home = std::env::var_os("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .unwrap_or_else(|| Path::new(home).join(".config"));
            let d = dir(config_home.join("systemd/user"));
            let mut files = vec![
                File {
                    path: d.join(schedule::SYSTEMD_SERVICE),
                    text: schedule::systemd_service(job),
                },
                File {
                    path: d.join(schedule::SYSTEMD_TIMER),
                    text: schedule::systemd_timer(job),
                },
            ];
            if !job.plug.is_empty() {
                files.push(File {
                    path: d.join(schedule::SYSTEMD_PLUG_SERVICE),
                    text: schedule::systemd_plug_service(job),
                });
            }
            files
        }
        Scheduler::Launchd => {
            let d = dir(Path::new(home).join("Library/LaunchAgents"));
            vec![File {
                path: d.join(format!("{}.plist", schedule::LAUNCHD_LABEL)),
                text: schedule::launchd_plist(job)?,
            }]
        }
        Scheduler::Cron => {
            let config_home = std::env::var_os("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .unwrap_or_else(|| Path::new(home).join(".config"));
            let d = dir(config_home.join("nbkp"));
            vec![File {
                path: d.join("nbkp.crontab"),
                text: schedule::cron_block(job),
            }]
        }
    })
}

fn print_files(files: &[File]) {
    let mut out = std::io::stdout().lock();
    let several = files.len() > 1;
    for f in files {
        if several {
            let _ = writeln!(out, "# ---- {} ----", f.path.display());
        }
        let _ = out.write_all(f.text.as_bytes());
        if several {
            let _ = writeln!(out);
        }
    }
}

fn hint(scheduler: Scheduler) -> String {
    let common = "SSH keys must work without a prompt (no terminal, maybe no agent).\n";
    match scheduler {
        Scheduler::Systemd => format!(
            "Install with --install (writes the files above), then --enable or\n  \
             systemctl --user daemon-reload && systemctl --user enable --now nbkp.timer\n\
             (with --on-plug also: systemctl --user enable nbkp-plug.service)\n\
             To run while logged out: loginctl enable-linger \"$USER\". Logs: journalctl --user -u nbkp.\n{common}"
        ),
        Scheduler::Launchd => format!(
            "Install with --install --enable (launchctl load -w …). Logs: ~/Library/Logs/nbkp.log.\n{common}"
        ),
        Scheduler::Cron => format!(
            "Install with --install --enable (merged into `crontab -l`, replacing an earlier nbkp block).\n{common}"
        ),
    }
}

fn enable_hint(scheduler: Scheduler) -> &'static str {
    match scheduler {
        Scheduler::Systemd => {
            "systemctl --user daemon-reload && systemctl --user enable --now nbkp.timer (or --enable)"
        }
        Scheduler::Launchd => "launchctl load -w the plist (or --enable)",
        Scheduler::Cron => "add the file's lines with crontab -e (or --enable)",
    }
}

fn enable(scheduler: Scheduler, files: &[File]) -> i32 {
    let result = match scheduler {
        Scheduler::Systemd => {
            let plug = files
                .iter()
                .any(|f| f.path.ends_with(schedule::SYSTEMD_PLUG_SERVICE));
            run_tool(&["systemctl", "--user", "daemon-reload"], None)
                .and_then(|()| {
                    run_tool(
                        &[
                            "systemctl",
                            "--user",
                            "enable",
                            "--now",
                            schedule::SYSTEMD_TIMER,
                        ],
                        None,
                    )
                })
                .and_then(|()| match plug {
                    // Enabled, not started: it starts when a drive arrives.
                    true => run_tool(
                        &[
                            "systemctl",
                            "--user",
                            "enable",
                            schedule::SYSTEMD_PLUG_SERVICE,
                        ],
                        None,
                    ),
                    false => Ok(()),
                })
        }
        Scheduler::Launchd => match files[0].path.to_str() {
            Some(p) => run_tool(&["launchctl", "load", "-w", p], None),
            None => Err("the plist path is not UTF-8".into()),
        },
        Scheduler::Cron => {
            // No crontab yet is `crontab -l` failing: start from nothing.
            let existing = Command::new("crontab")
                .arg("-l")
                .stderr(Stdio::null())
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            let merged = schedule::merge_crontab(&existing, &files[0].text);
            run_tool(&["crontab", "-"], Some(&merged))
        }
    };
    match result {
        Ok(()) => {
            eprintln!("Enabled.");
            0
        }
        Err(msg) => {
            eprintln!("Error: {msg}");
            1
        }
    }
}

fn run_tool(argv: &[&str], stdin: Option<&str>) -> Result<(), String> {
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..]);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", argv[0]))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| format!("{}: {e}", argv[0]))?;
    }
    let status = child.wait().map_err(|e| format!("{}: {e}", argv[0]))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} failed ({status})", argv.join(" ")))
    }
}

/// Through a temporary file and a rename: never a half-written unit.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
