//! One module per command; each returns the process exit code.

mod config_show;

use crate::cli::{Cli, Command, ConfigCommand, OutputFormat};
use crate::config::{self, ConfigError, Loaded};

/// Exit code for a bad config or command line.
pub const EXIT_USAGE: i32 = 2;

pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Config(ConfigCommand::Show(args)) => config_show::run(&args),
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
