//! Exit codes, one definition for both back-ends: `nbkp` itself and the
//! generated script (the template gets them from [`for_script`]), and the
//! runtime library's operation codes that both read.

use serde::Serialize;

/// How a run (or any command) ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every attempted sync succeeded (absent drives and hosts are skipped).
    Ok = 0,
    /// A sync failed, or preflight stopped the run.
    Failed = 1,
    /// Bad config or command line.
    Usage = 2,
    /// Nothing failed, but a destination was locked by another run.
    Locked = 3,
    /// Ctrl-C (SIGINT).
    Interrupted = 130,
    /// SIGTERM.
    Terminated = 143,
}

impl Exit {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// The runtime library's (`templates/lib.sh`) operation exit codes.
pub mod op {
    /// Another run holds the destination's lock.
    pub const LOCKED: i32 = 73;
    /// The snapshot name is taken: retry with another.
    pub const NAME_TAKEN: i32 = 75;
}

/// The codes as the script template names them.
#[derive(Serialize)]
pub struct ScriptCodes {
    ok: i32,
    failed: i32,
    locked: i32,
    interrupted: i32,
    terminated: i32,
    op_locked: i32,
    op_name_taken: i32,
}

pub fn for_script() -> ScriptCodes {
    ScriptCodes {
        ok: Exit::Ok.code(),
        failed: Exit::Failed.code(),
        locked: Exit::Locked.code(),
        interrupted: Exit::Interrupted.code(),
        terminated: Exit::Terminated.code(),
        op_locked: op::LOCKED,
        op_name_taken: op::NAME_TAKEN,
    }
}
