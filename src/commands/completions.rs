//! `nbkp completions SHELL` and `nbkp man`: both generated from the clap
//! definitions in `cli.rs`, so they can never disagree with the parser.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};

pub fn completions(args: &CompletionsArgs) -> i32 {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "nbkp", &mut out);
    write_stdout(&out)
}

pub fn man(args: &ManArgs) -> i32 {
    let cmd = Cli::command();
    match &args.dir {
        Some(dir) => {
            if let Err(e) =
                std::fs::create_dir_all(dir).and_then(|()| clap_mangen::generate_to(cmd, dir))
            {
                eprintln!("Error: cannot write manual pages to {}: {e}", dir.display());
                return 1;
            }
            eprintln!("Manual pages written to {}", dir.display());
            0
        }
        None => {
            let mut out = Vec::new();
            if let Err(e) = clap_mangen::Man::new(cmd).render(&mut out) {
                eprintln!("Error: cannot render the manual page: {e}");
                return 1;
            }
            write_stdout(&out)
        }
    }
}

fn write_stdout(bytes: &[u8]) -> i32 {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => 0,
        // A closed pipe (`nbkp man | head`) is not worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("Error: {e}");
            1
        }
    }
}
