//! nbkp (Nomad Backup): rsync backups that run when their volumes are really there.
//!
//! The pipeline: YAML → [`config`] (parsed and validated) → plan (checks and
//! steps, pure data) → a POSIX script (`nbkp sh`) or an in-process run (`nbkp run`).

pub mod cli;
pub mod commands;
pub mod config;
pub(crate) mod credentials;
pub(crate) mod exec;
pub(crate) mod exit;
pub(crate) mod notify;
pub(crate) mod ordering;
pub(crate) mod output;
pub(crate) mod plan;
pub(crate) mod programs;
pub(crate) mod render;
pub mod retention;
pub mod runtime;
pub(crate) mod schedule;
pub(crate) mod shell;
pub(crate) mod state;
pub(crate) mod status;

/// For the test that holds the script's twin (`nbkp_kept`) equal to it.
pub use exec::kept_lines;
