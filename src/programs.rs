//! Finding programs on this machine's `PATH` (for what nbkp itself starts
//! outside a plan: schedulers' helpers, desktop notifications).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// The first executable file called `name` on `PATH`.
pub fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}
