//! Output for people (tables) and programs (JSON).

pub mod table;

use std::io::Write;

/// Prints a JSON value with two-space indentation.
pub fn print_json(value: &impl serde::Serialize) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (e.g. `| head`) is not an error worth a panic.
    let _ = serde_json::to_writer_pretty(&mut out, value);
    let _ = writeln!(out);
}
