//! nbkp (Nomad Backup): rsync backups that run when their volumes are really there.
//!
//! The pipeline: YAML → [`config`] (parsed and validated) → plan (checks and
//! steps, pure data) → a POSIX script (`nbkp sh`) or an in-process run (`nbkp run`).

pub mod cli;
pub mod commands;
pub mod config;
pub mod credentials;
pub mod exec;
pub mod exit;
pub mod notify;
pub mod ordering;
pub mod output;
pub mod plan;
pub mod programs;
pub mod render;
pub mod retention;
pub mod runtime;
pub mod schedule;
pub mod shell;
pub mod state;
pub mod status;
