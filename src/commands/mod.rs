//! One module per command; each returns the process exit code.

mod backup;
mod completions;
mod config_show;
mod credentials;
mod demo;
mod demo_output;
mod demo_seed;
mod disks;
mod init;
mod monitor;
mod ordering;
mod preflight;
mod record;
mod restore;
mod run;
mod schedule;
mod sh;
mod snapshots;
mod snapshots_diff;
mod status;
mod verify;

use crate::cli::{
    Cli, Command, ConfigCommand, NetworkArg, OrderingCommand, OutputFormat, PreflightCommand,
    SelectArgs, SnapshotsCommand,
};
use crate::config::{self, Config, ConfigError, Loaded};
use crate::plan::select::{self, Network, SelectOptions, Selection, SystemWorld};

/// Exit code for a bad config or command line.
pub const EXIT_USAGE: i32 = crate::exit::Exit::Usage as i32;

pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Config(ConfigCommand::Show(args)) => config_show::run(&args),
        Command::Sh(args) => sh::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Demo(args) => match &args.command {
            None => demo::run(&args.demo),
            Some(crate::cli::DemoCommand::Output) => demo_output::run(),
            Some(crate::cli::DemoCommand::Seed(a)) => demo_seed::run(a),
        },
        Command::Preflight(PreflightCommand::Check(args)) => preflight::run(&args, false),
        Command::Preflight(PreflightCommand::Troubleshoot(args)) => preflight::run(&args, true),
        Command::Snapshots(SnapshotsCommand::Show(args)) => snapshots::show(&args),
        Command::Snapshots(SnapshotsCommand::Prune(args)) => snapshots::prune(&args),
        Command::Snapshots(SnapshotsCommand::Diff(args)) => snapshots_diff::run(&args),
        Command::Ordering(OrderingCommand::Graph(args)) => ordering::graph(&args),
        Command::Init(args) => init::run(&args),
        Command::Completions(args) => completions::completions(&args),
        Command::Man(args) => completions::man(&args),
        Command::Schedule(args) => schedule::run(&args),
        Command::Status(args) => status::run(&args),
        Command::Disks(cmd) => disks::run(&cmd),
        Command::Credentials(crate::cli::CredentialsCommand::KeyringStatus(args)) => {
            credentials::keyring_status(&args)
        }
        Command::Restore(args) => restore::run(&args),
        Command::Verify(args) => verify::run(&args),
    }
}

/// Loads the config, printing warnings to stderr, or reports why it cannot.
pub fn load_config(path: Option<&std::path::Path>, output: OutputFormat) -> Result<Loaded, i32> {
    match config::load(path) {
        Ok(loaded) => {
            for w in loaded.render_warnings() {
                eprintln!("{w}");
            }
            Ok(loaded)
        }
        Err(e) => {
            report_config_error(&e, output);
            Err(EXIT_USAGE)
        }
    }
}

fn report_config_error(e: &ConfigError, output: OutputFormat) {
    match output {
        OutputFormat::Json => crate::output::print_json(&e.to_json()),
        OutputFormat::Human => eprintln!("{}", e.render()),
    }
}

/// Chooses endpoints for remote volumes (`-l/-L/-N`); unknown locations exit 2.
pub fn select_endpoints(config: &Config, args: &SelectArgs) -> Result<Selection, i32> {
    let opts = SelectOptions {
        locations: args.location.clone(),
        exclude_locations: args.exclude_location.clone(),
        network: args.network.map(|n| match n {
            NetworkArg::Private => Network::Private,
            NetworkArg::Public => Network::Public,
        }),
    };
    if let Err(msg) = select::check_locations(config, &opts) {
        eprintln!("Error: {msg}");
        return Err(EXIT_USAGE);
    }
    Ok(select::select(config, &opts, &SystemWorld::new()))
}

/// The config, the endpoint choices, then the plan; on failure
/// the exit code (the problem has been reported).
pub fn plan_for(
    file: Option<&std::path::Path>,
    select: &SelectArgs,
    output: OutputFormat,
    options: &crate::plan::LowerOptions,
) -> Result<crate::plan::Plan, i32> {
    let loaded = load_config(file, output)?;
    let selection = select_endpoints(&loaded.config, select)?;
    let config_path = loaded.path.display().to_string();
    match crate::plan::lower(&loaded.config, &config_path, &selection, options) {
        Ok(plan) => Ok(plan),
        Err(e) => {
            eprintln!("Error: {e}");
            Err(EXIT_USAGE)
        }
    }
}

/// The hosts' shells for commands that run operations outside a run
/// (`init`, `snapshots`), with the values those operations need.
pub fn open_hosts(
    plan: &crate::plan::Plan,
    dry_run: bool,
) -> Result<(crate::exec::hosts::Hosts<'_>, crate::exec::values::Values), i32> {
    let hosts = crate::exec::hosts::Hosts::new(plan).map_err(|e| {
        eprintln!("Error: cannot prepare the connections: {e}");
        1
    })?;
    let values = crate::exec::values::Values {
        dry_run,
        control_dir: hosts.control_dir(),
        lock_owner: crate::exec::lock::owner(),
        stale_lock: "-".into(),
        ..Default::default()
    };
    let mut values = values;
    // Mount-managed drives first (as `nbkp run` does; the plan says whether
    // to mount or only look), so their mount points are known.
    crate::exec::mounts::mount_all(plan, &hosts, &mut values, &mut |l| eprintln!("[nbkp] {l}"));
    Ok((hosts, values))
}

/// Unmounts and locks the plan's drives (when it says so), then closes the
/// hosts' shells and connections.
pub fn close_hosts(hosts: crate::exec::hosts::Hosts<'_>, values: &crate::exec::values::Values) {
    let plan = hosts.plan();
    crate::exec::mounts::umount_all(plan, &hosts, values, &mut |l| eprintln!("[nbkp] {l}"));
    hosts.close(values);
}
