//! The plan: every decision about what a run does, made once, as pure data.

pub mod rsync;
