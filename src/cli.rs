//! Command-line interface: clap types only. Behaviour lives in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const ABOUT: &str =
    "Nomad Backup: rsync backups that run whenever their drives and hosts are really there";

const LONG_ABOUT: &str = "\
Nomad Backup: rsync backups that run whenever their drives and hosts are really there.

nbkp reads one YAML config describing SSH endpoints, volumes (local folders, removable
drives, remote hosts), sync endpoints (places inside volumes) and syncs (one-way rsync
transfers between them). A sync runs only when sentinel files prove both sides are the
intended ones (.nbkp-vol on each volume, .nbkp-src on the source, .nbkp-dst on the
destination), so an unplugged drive is skipped, never written to.

The config is searched at $XDG_CONFIG_HOME/nbkp/config.yaml (default ~/.config/nbkp/config.yaml),
then /etc/xdg/nbkp/config.yaml, unless -c/--config names one.

Exit codes: 0 success, 1 a sync or check failed, 2 bad config or bad command line,
3 a destination was locked by another run (try later).";

#[derive(Debug, Parser)]
#[command(
    name = "nbkp",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    arg_required_else_help = true,
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect the configuration file
    #[command(subcommand, arg_required_else_help = true)]
    Config(ConfigCommand),
    /// Compile the config into a standalone POSIX shell script
    ///
    /// The script does what `nbkp run` does, with no nbkp installed: it checks
    /// every sentinel, host and snapshot structure first (one SSH round trip per
    /// host), runs the syncs in dependency order over one shared SSH connection
    /// per host, makes btrfs or hard-link snapshots, moves `latest` atomically and
    /// prunes old snapshots. It runs under dash, busybox sh, bash, zsh (sh mode)
    /// and macOS /bin/sh, and takes -n/--dry-run, -p/--progress and
    /// -S/--strictness when it runs (see its header).
    ///
    /// Endpoint choices (-l/-L/-N) are made now, when the script is written.
    Sh(ShArgs),
    /// Run the backups: check everything first, then sync in dependency order
    ///
    /// The same plan as `nbkp sh`, performed here: every host answers all its
    /// checks in one SSH round trip, every sync whose volumes, sentinels and
    /// snapshot structure are in place runs (over one shared SSH connection per
    /// host), snapshots are made and `latest` moves only after a successful
    /// transfer, and old snapshots are pruned. A drive that is not plugged in or a
    /// host that is not reachable is skipped, not an error (see -S).
    ///
    /// Exit codes: 0 every attempted sync succeeded, 1 a sync failed or preflight
    /// found errors the strictness does not allow, 2 bad config or command line.
    Run(RunArgs),
    /// See nbkp work on sample data, with nothing of yours touched
    ///
    /// Creates a folder with a config, a "laptop" with documents and photos, a
    /// "USB drive" and an unplugged drive, then backs up twice: the second run
    /// makes a second snapshot whose unchanged files are hard links to the
    /// first, and the unplugged drive is skipped, not written to. Prints where to
    /// look. Everything stays in that folder.
    ///
    /// `demo seed` and `demo output` are the Python nbkp's demo commands.
    #[command(args_conflicts_with_subcommands = true)]
    Demo(DemoCommandArgs),
    /// Check that every sync could run, without running anything
    #[command(subcommand, arg_required_else_help = true)]
    Preflight(PreflightCommand),
    /// List or prune the snapshots of snapshot-enabled endpoints
    #[command(subcommand, arg_required_else_help = true)]
    Snapshots(SnapshotsCommand),
    /// Show the order syncs run in and which feed which
    #[command(subcommand, arg_required_else_help = true)]
    Ordering(OrderingCommand),
    /// Prepare the sentinels, snapshots/, latest and staging/ syncs need
    ///
    /// Writes `.nbkp-vol` in each volume, `.nbkp-src` / `.nbkp-dst` in each
    /// endpoint (creating the endpoint folder inside its volume), and for
    /// snapshot-enabled endpoints `snapshots/`, `latest -> /dev/null` and, for
    /// btrfs destinations, the `staging` subvolume — here and over SSH. What
    /// exists is left alone, so running it again is harmless.
    ///
    /// It never creates a volume's root folder: a missing root is a drive that
    /// is not plugged in, and creating it would send backups to the system disk.
    /// For the same reason it writes nothing into a volume under /mnt, /media,
    /// /run/media or /Volumes that is not a mount point, unless --allow-unmounted.
    ///
    /// Exit codes: 0 everything is prepared (or would be, with -n), 1 something
    /// could not be (missing root, unmounted drive, unreachable host, failure).
    Init(InitArgs),
    // --- Everyday use (args at the end of this file) ---
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    ///
    /// bash: `nbkp completions bash > ~/.local/share/bash-completion/completions/nbkp`;
    /// zsh: into a directory on $fpath as `_nbkp`; fish: `~/.config/fish/completions/nbkp.fish`.
    Completions(CompletionsArgs),
    /// Print the manual page (roff), or write one page per command into a directory
    ///
    /// `nbkp man | man -l -` reads it now; `nbkp man --dir ~/.local/share/man/man1`
    /// installs nbkp.1 and nbkp-<command>.1 for every command.
    Man(ManArgs),
    /// Print (or install) a timer that runs `nbkp run` periodically
    ///
    /// systemd: a user service and timer (Persistent=true: a run missed while
    /// asleep or off happens at the next boot or wake-up), at idle CPU and IO
    /// priority. launchd: a LaunchAgent plist (missed intervals run on wake).
    /// cron: one crontab line under nice/ionice. Paths are absolute: this nbkp
    /// binary and the config file. Nothing is enabled unless --enable is given.
    Schedule(ScheduleArgs),
    /// Show when each sync last succeeded, and which are stale
    ///
    /// `nbkp run` records every completed sync in $XDG_STATE_HOME/nbkp/state.json
    /// (default ~/.local/state/nbkp/). A sync not completed for longer than its
    /// `stale-after` (default 7d) is flagged. Exit 0, or 1 when a sync is stale.
    Status(StatusArgs),
    /// Unlock, mount, unmount and lock the config's drives (udisks2)
    #[command(subcommand, arg_required_else_help = true)]
    Disks(DisksCommand),
    /// Check where LUKS passphrases come from
    #[command(subcommand, arg_required_else_help = true)]
    Credentials(CredentialsCommand),
    // --- Getting files back (args at the end of this file) ---
    /// Copy files back from a snapshot (or a plain mirror) into a folder
    ///
    /// Paths are relative to the sync's source (default: everything). Files
    /// already in DIR are left alone unless --overwrite (then each replaced
    /// one is listed); nothing is ever deleted. --to is required, and may not
    /// be the backup itself or inside it; to put files back where they were,
    /// pass the source folder and --overwrite on purpose. Names beginning
    /// with `-` go after `--`. See docs/restore.md.
    ///
    /// Exit codes: 0 restored (or, with -n, listed), 1 a copy failed or the
    /// backup is not there or has no such snapshot, 2 bad command line (no --to,
    /// --to inside the backup).
    Restore(RestoreArgs),
    /// Compare a snapshot with its source, file by file
    ///
    /// By content (rsync --checksum, computed on each side's own host), or by
    /// size and modification time with --quick. Reports files missing from
    /// the snapshot, only in it, changed in the source since, and different
    /// with the same size and time (a damaged copy), with the sync's filters.
    ///
    /// Exit codes: 0 equal, 1 not equal or not verified, 2 bad command line.
    Verify(VerifyArgs),
}

#[derive(Debug, Subcommand)]
pub enum DisksCommand {
    /// Unlock (LUKS) and mount mount-managed volumes; exit 1 if one could not be (absent is reported, exit 0)
    Mount(DisksActArgs),
    /// Unmount and lock them; exit 1 if one could not be unmounted
    Umount(DisksActArgs),
    /// Show whether each is plugged in, unlocked and mounted
    Status(DisksArgs),
    /// Print the polkit rule that lets a user do this without a password
    SetupAuth(SetupAuthArgs),
}

#[derive(Debug, Args)]
pub struct DisksArgs {
    #[command(flatten)]
    pub file: ConfigFileArg,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Only these volumes (repeatable); an unknown name is an error
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    pub name: Vec<String>,
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct DisksActArgs {
    #[command(flatten)]
    pub common: DisksArgs,
    /// Only look: print what would be done for each volume (unlock, mount /
    /// unmount, lock) and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct SetupAuthArgs {
    #[command(flatten)]
    pub file: ConfigFileArg,
    /// The user allowed [default: the current user]
    #[arg(short = 'u', long = "user", value_name = "USER")]
    pub user: Option<String>,
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// Is every passphrase available from the configured provider? (never shows one)
    KeyringStatus(CredentialsArgs),
}

#[derive(Debug, Args)]
pub struct CredentialsArgs {
    #[command(flatten)]
    pub file: ConfigFileArg,
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum SnapshotsCommand {
    /// Every snapshot with its time, `latest`, and the rule that keeps it
    ///
    /// For each snapshot-enabled endpoint the selected syncs read or write,
    /// here or over SSH: its snapshots, newest first, which one `latest` points
    /// to, and what the retention policy decides for each (which rule keeps it,
    /// or why the next prune removes it). Read-only.
    Show(SnapshotsArgs),
    /// Remove the snapshots the retention policy does not keep
    ///
    /// Decides exactly as `show` does, then removes, under each destination's
    /// lock, what the policy does not keep. Never `latest`, anything newer, or
    /// anything not named like a snapshot. With -n it lists what would be kept
    /// and removed, and changes nothing. Exit 1 when an endpoint could not be
    /// pruned (unreachable, locked by a run, or a removal failed).
    Prune(SnapshotsPruneArgs),
    /// What was added, removed and changed between two snapshots
    ///
    /// Default: the two newest; with one name, that one and the newest. Hard
    /// links: an unchanged file is the same inode (nothing is read); btrfs:
    /// the same size and modification time. Listed on the destination's host.
    Diff(SnapshotsDiffArgs),
}

#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    pub file: ConfigFileArg,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Only the endpoints of these syncs (repeatable)
    #[arg(short = 's', long = "sync", value_name = "SYNC")]
    pub sync: Vec<String>,
    /// What counts as a failure: with ignore-none an endpoint whose drive or
    /// host is absent makes the exit code 1; ignore-inactive and ignore-all
    /// only report it (these commands run no other preflight checks)
    #[arg(short = 'S', long, value_enum, default_value_t = StrictnessArg::IgnoreInactive)]
    pub strictness: StrictnessArg,
    #[command(flatten)]
    pub mount: MountArgs,
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct SnapshotsPruneArgs {
    #[command(flatten)]
    pub common: SnapshotsArgs,
    /// Show what would be removed; remove nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum OrderingCommand {
    /// The sync dependency graph: a sync runs after the sync that writes its source
    Graph(OrderingArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Indented trees, roots first (also accepted as `rich-tree` and
    /// `mermaid-ascii`, the Python nbkp's names for its drawings)
    #[value(aliases = ["rich-tree", "mermaid-ascii"])]
    Tree,
    /// A Mermaid flowchart (paste into Markdown)
    Mermaid,
}

#[derive(Debug, Args)]
pub struct OrderingArgs {
    #[command(flatten)]
    pub file: ConfigFileArg,
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
    /// Human output style
    #[arg(short = 'f', long = "format", value_enum, default_value_t = GraphFormat::Tree)]
    pub format: GraphFormat,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub file: ConfigFileArg,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Only the endpoints of these syncs (repeatable)
    #[arg(short = 's', long = "sync", value_name = "SYNC")]
    pub sync: Vec<String>,
    /// List what would be created; create nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Also write into volumes under /mnt, /media, /run/media or /Volumes that
    /// are not mount points (only if that folder really is the volume)
    #[arg(long)]
    pub allow_unmounted: bool,
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum PreflightCommand {
    /// Ask every host the questions a run would ask, and report each sync
    ///
    /// One SSH round trip per host. Exit 1 when the strictness would stop a run,
    /// else 0 (an absent drive or host is fine by default).
    Check(PreflightArgs),
    /// Like `check`, and say for every problem what to do about it
    Troubleshoot(PreflightArgs),
}

#[derive(Debug, Args)]
pub struct PreflightArgs {
    #[command(flatten)]
    pub file: ConfigFileArg,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Only these syncs (repeatable); an unknown name is an error
    #[arg(short = 's', long = "sync", value_name = "SYNC")]
    pub sync: Vec<String>,
    /// What counts as a problem
    #[arg(short = 'S', long, value_enum, default_value_t = StrictnessArg::IgnoreInactive)]
    pub strictness: StrictnessArg,
    #[command(flatten)]
    pub mount: MountArgs,
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and validate the config, then print it with everything resolved
    ///
    /// Shows every SSH endpoint (after `extends`), volume (normalised paths), sync
    /// endpoint (full path, snapshot mode) and sync (effective rsync options and
    /// filters). Problems are reported with file, line, column and field; the exit
    /// code is 2 when the config is invalid. Warnings (unknown keys, unused
    /// entries) go to stderr and do not change the exit code.
    Show(ConfigShowArgs),
}

/// Which config file to read.
#[derive(Debug, Args)]
pub struct ConfigFileArg {
    /// Config file [default: $XDG_CONFIG_HOME/nbkp/config.yaml, then /etc/xdg/nbkp/config.yaml]
    #[arg(short = 'c', long = "config", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    /// Tables for people
    #[default]
    Human,
    /// One JSON document on stdout (snake_case keys; see docs/json.md)
    Json,
}

#[derive(Debug, Args)]
pub struct ConfigShowArgs {
    #[command(flatten)]
    pub file: ConfigFileArg,
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetworkArg {
    /// Endpoints whose addresses are all private (LAN, loopback, VPN ranges)
    Private,
    /// Endpoints with at least one public address
    Public,
}

/// Mount handling for volumes with a `mount:` section (udisks2: unlock the
/// LUKS container with the passphrase from the credential provider, mount).
#[derive(Debug, Args, Default)]
pub struct MountArgs {
    /// Unlock and mount mount-managed volumes before the run [default]
    #[arg(long, overrides_with = "no_mount")]
    pub mount: bool,
    /// Leave mount-managed volumes as they are (only look where they are mounted)
    #[arg(long, overrides_with = "mount")]
    pub no_mount: bool,
    /// Unmount and lock them after the run, also after a failure or an interruption [default]
    #[arg(long, overrides_with = "no_umount")]
    pub umount: bool,
    /// Leave them mounted (and unlocked) after the run
    #[arg(long, overrides_with = "umount")]
    pub no_umount: bool,
}

/// How to choose among a remote volume's `ssh-endpoints`.
#[derive(Debug, Args, Default)]
pub struct SelectArgs {
    /// Prefer endpoints tagged with this location (repeatable)
    #[arg(short = 'l', long = "location", value_name = "LOCATION")]
    pub location: Vec<String>,
    /// Avoid endpoints tagged with this location; a volume whose every endpoint is excluded is skipped (repeatable)
    #[arg(short = 'L', long = "exclude-location", value_name = "LOCATION")]
    pub exclude_location: Vec<String>,
    /// Prefer endpoints on this kind of network
    #[arg(short = 'N', long = "network", value_enum)]
    pub network: Option<NetworkArg>,
}

#[derive(Debug, Args)]
pub struct ShArgs {
    #[command(flatten)]
    pub file: ConfigFileArg,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Write the script to FILE (made executable) instead of stdout
    #[arg(short = 'o', long = "output-file", value_name = "FILE")]
    pub output_file: Option<PathBuf>,
    /// Write local source paths relative to the script's directory (needs -o)
    #[arg(long)]
    pub relative_src: bool,
    /// Write local destination paths relative to the script's directory (needs -o)
    #[arg(long)]
    pub relative_dst: bool,
    /// The system the script will run on: linux or darwin [default: this
    /// one]; like the Python nbkp, any other name is taken as not darwin
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Accepted for the Python nbkp's command lines: the script is always POSIX sh
    #[arg(long, overrides_with = "no_portable")]
    pub portable: bool,
    /// Accepted for the Python nbkp's command lines: the script is POSIX sh
    /// here too (there it meant bash 4 arrays)
    #[arg(long, overrides_with = "portable")]
    pub no_portable: bool,
    /// Print the plan the script is made from, as JSON, instead of the script
    #[arg(long)]
    pub plan: bool,
    /// Does the deployed script FILE still match this config? Exit 0 when it
    /// does, 1 with a unified diff when it differs (regenerate it), 2 when
    /// FILE is not a script nbkp wrote. Give the options it was made with.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["output_file", "plan"])]
    pub check: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum StrictnessArg {
    /// Skip syncs whose drives or hosts are absent; other preflight errors stop the run
    #[default]
    IgnoreInactive,
    /// Any sync that cannot run stops the run, absent drives included
    IgnoreNone,
    /// Never stop: attempt syncs whose sentinels are present even with preflight errors
    IgnoreAll,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ProgressArg {
    /// No progress output
    #[default]
    None,
    /// One line for the whole transfer (--info=progress2 --stats)
    Overall,
    /// Every file as it is sent (-v --progress)
    PerFile,
    /// Both
    Full,
}

impl ProgressArg {
    pub fn mode(self) -> &'static str {
        match self {
            ProgressArg::None => "none",
            ProgressArg::Overall => "overall",
            ProgressArg::PerFile => "per-file",
            ProgressArg::Full => "full",
        }
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub file: ConfigFileArg,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Show what would be transferred; change nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Only these syncs (repeatable); an unknown name is an error
    #[arg(short = 's', long = "sync", value_name = "SYNC")]
    pub sync: Vec<String>,
    /// rsync progress output
    #[arg(short = 'p', long, value_enum, default_value_t = ProgressArg::None)]
    pub progress: ProgressArg,
    /// What stops a run
    #[arg(short = 'S', long, value_enum, default_value_t = StrictnessArg::IgnoreInactive)]
    pub strictness: StrictnessArg,
    /// How many syncs run at once (1: one after the other) [default: one
    /// per group of syncs sharing no drive or host, at most 4]
    #[arg(short = 'j', long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: Option<u32>,
    /// Prune snapshots beyond max-snapshots after each successful sync [default]
    #[arg(long, overrides_with = "no_prune")]
    pub prune: bool,
    /// Keep every snapshot this time
    #[arg(long, overrides_with = "prune")]
    pub no_prune: bool,
    #[command(flatten)]
    pub mount: MountArgs,
    #[command(flatten)]
    pub conditions: ConditionArgs,
    /// Output format (logs always go to stderr)
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct DemoCommandArgs {
    #[command(subcommand)]
    pub command: Option<DemoCommand>,
    #[command(flatten)]
    pub demo: DemoArgs,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to create the demo [default: a new folder under the temp dir]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Show every human output (config, graph, preflight, troubleshoot, init,
    /// run, snapshots, status, disks, credentials) on sample data
    ///
    /// The sample data lives in a temporary folder that is removed afterwards;
    /// nothing of yours is read or written.
    Output,
    /// Create a sample setup, as the Python nbkp's `demo seed` does: a config,
    /// a "laptop" with data, a "USB drive", a "backup drive" and one not
    /// plugged in (local folders), ready for `nbkp preflight check` and `nbkp run`
    Seed(DemoSeedArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CredentialProviderArg {
    Keyring,
    Prompt,
    Env,
    Command,
}

#[derive(Debug, Args)]
pub struct DemoSeedArgs {
    /// Where to create it [default: a new folder under the temp dir]
    #[arg(long, value_name = "DIR")]
    pub base_dir: Option<PathBuf>,
    /// Also write a file of this many MiB of random data, to watch a long transfer
    #[arg(long, value_name = "MIB", default_value_t = 0)]
    pub big_file_size: u64,
    /// The Python nbkp's remote (docker) part: it needs an SSH host, so only
    /// the local part is made and the message says how to add a host
    #[arg(long, overrides_with = "no_docker")]
    pub docker: bool,
    /// Local volumes only [default]
    #[arg(long, overrides_with = "docker")]
    pub no_docker: bool,
    /// An encrypted drive: needs a real LUKS device and udisks2, so the
    /// message says how to add one (docs/getting-started.md)
    #[arg(long, overrides_with = "no_luks")]
    pub luks: bool,
    /// No encrypted drive [default]
    #[arg(long, overrides_with = "luks")]
    pub no_luks: bool,
    /// rsync --bwlimit for the sample syncs, e.g. 1M (as rsync reads it)
    #[arg(long, value_name = "RATE")]
    pub bandwidth_limit: Option<String>,
    /// The config's credential-provider
    #[arg(long, value_enum)]
    pub credential_provider: Option<CredentialProviderArg>,
    /// List what would be created; create nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}

// --- Everyday use: completions, man, schedule, status ---

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write nbkp.1 and nbkp-<command>.1 into DIR instead of printing nbkp.1
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scheduler {
    /// A systemd user service and timer
    Systemd,
    /// A macOS LaunchAgent plist
    Launchd,
    /// A crontab line
    Cron,
}

#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// The scheduler to write for
    #[arg(value_enum)]
    pub scheduler: Scheduler,
    #[command(flatten)]
    pub file: ConfigFileArg,
    /// How often: 15m, 1h, 6h, daily, weekly, … (minutes m, hours h, days d)
    #[arg(long, value_name = "INTERVAL", default_value = "1h")]
    pub every: String,
    /// Extra options for `nbkp run` (repeatable), e.g. --run-arg=-S --run-arg=ignore-none
    #[arg(long = "run-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub run_args: Vec<String>,
    /// Write the files instead of printing them [systemd: $XDG_CONFIG_HOME/systemd/user, launchd: ~/Library/LaunchAgents]
    #[arg(long)]
    pub install: bool,
    /// Where --install writes (instead of the scheduler's own directory); for cron, the file to write the crontab line to
    #[arg(long, value_name = "DIR", requires = "install")]
    pub install_dir: Option<PathBuf>,
    /// After --install, enable it (systemctl --user enable --now, launchctl load; cron: crontab -)
    #[arg(long, requires = "install")]
    pub enable: bool,
    /// The nbkp binary the timer runs [default: this one]
    #[arg(long, value_name = "FILE")]
    pub nbkp: Option<PathBuf>,
    /// Also run when a backup drive is plugged in: systemd, a second service
    /// wanted by the drive's mount (or, mount-managed, device) unit; launchd,
    /// StartOnMount (any mount). Not for cron
    #[arg(long)]
    pub on_plug: bool,
    /// With --on-plug (systemd): only these removable volumes start a run
    /// (repeatable) [default: all of the config's removable volumes]
    #[arg(long = "volume", value_name = "NAME", requires = "on_plug")]
    pub volume: Vec<String>,
    #[command(flatten)]
    pub conditions: ConditionArgs,
}

/// When a run should not happen at all, or not for some syncs.
#[derive(Debug, Args, Clone, Copy, Default)]
pub struct ConditionArgs {
    /// Skip the run when on battery (it says so and exits 0)
    #[arg(long)]
    pub on_ac_power: bool,
    /// Skip syncs with a remote side on a metered connection
    /// (NetworkManager's GENERAL.METERED); local syncs run
    #[arg(long)]
    pub not_metered: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub file: ConfigFileArg,
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

// --- Getting files back: restore, verify, snapshots diff ---

#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub file: ConfigFileArg,
    #[command(flatten)]
    pub select: SelectArgs,
    /// The sync whose backup to restore from
    #[arg(short = 's', long = "sync", value_name = "SYNC")]
    pub sync: String,
    /// The snapshot to restore from [default: latest]
    #[arg(long, value_name = "NAME|latest")]
    pub snapshot: Option<String>,
    /// Paths relative to the sync's source [default: everything]
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,
    /// The folder to restore into (created if missing)
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
    /// List what would be copied; copy nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Replace files that already exist in DIR (each is listed)
    #[arg(long)]
    pub overwrite: bool,
    /// rsync progress output
    #[arg(short = 'p', long, value_enum, default_value_t = ProgressArg::None)]
    pub progress: ProgressArg,
    #[command(flatten)]
    pub mount: MountArgs,
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub file: ConfigFileArg,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Only these syncs (repeatable) [default: every sync]
    #[arg(short = 's', long = "sync", value_name = "SYNC")]
    pub sync: Vec<String>,
    /// The snapshot to verify [default: latest]
    #[arg(long, value_name = "NAME|latest")]
    pub snapshot: Option<String>,
    /// Compare size and modification time only (reads no file content)
    #[arg(long)]
    pub quick: bool,
    #[command(flatten)]
    pub mount: MountArgs,
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct SnapshotsDiffArgs {
    #[command(flatten)]
    pub file: ConfigFileArg,
    #[command(flatten)]
    pub select: SelectArgs,
    /// The sync whose destination's snapshots to compare
    #[arg(short = 's', long = "sync", value_name = "SYNC")]
    pub sync: String,
    /// The older snapshot (or `latest`) [default: the second newest]
    #[arg(value_name = "A")]
    pub from: Option<String>,
    /// The newer snapshot (or `latest`) [default: the newest]
    #[arg(value_name = "B")]
    pub to: Option<String>,
    #[command(flatten)]
    pub mount: MountArgs,
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}
