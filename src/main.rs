//! `nbkp`: parse the command line, run the command, exit with its code.

use clap::Parser;

fn main() {
    let cli = nbkp::cli::Cli::parse();
    std::process::exit(nbkp::commands::run(cli));
}
