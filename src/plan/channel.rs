//! Sessions opened ahead for rsync over SSH.
//!
//! Every rsync to or from a remote host needs a new session on the shared
//! connection, and opening one costs a few network round trips plus the
//! remote sshd's set-up: about a fifth of a second at 50 ms RTT, the
//! largest cost a run adds to a small transfer. So a sync's session is
//! opened while the previous sync runs (the first one's while the first
//! sync prepares): it waits, running nothing, until it is given rsync's
//! server command line.
//!
//! rsync reaches the session through a relay given as its `-e`: instead
//! of starting ssh, the relay sends the command line rsync would have
//! given ssh, then copies bytes both ways. The session's input and output
//! are on the relay's descriptors [`SESSION_INPUT_FD`] and
//! [`SESSION_OUTPUT_FD`], which whoever starts rsync puts there. A session
//! that is never used gets end of input and ends without running anything.

use super::args::Arg;
use super::ssh::SshCommand;

/// Where the relay writes the session's input.
pub const SESSION_INPUT_FD: i32 = 9;
/// Where the relay reads the session's output.
pub const SESSION_OUTPUT_FD: i32 = 8;

/// The line that ends the command line sent to a waiting session.
pub const GO_LINE: &str = "@@nbkp-go";

/// A session opened ahead for one sync's rsync.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct Channel {
    /// The remote host: its `waiting_session` opens the session, once
    /// its shared connection's socket exists (before, ssh would make a
    /// second connection of its own).
    pub host: usize,
    /// The sync's rsync, with the relay as `-e`.
    pub rsync: Vec<Arg>,
}

/// The waiting session's command, for the remote login shell (any shell:
/// it only starts `sh`). It collects lines up to [`GO_LINE`], so a command
/// line with newlines (the priority wrapper's `--rsync-path`) arrives whole,
/// then evaluates them as ssh's remote shell would have. `read` takes one
/// byte at a time from a pipe, so rsync's own bytes stay for rsync.
pub fn waiting_command() -> String {
    let code = format!(
        "n=$(printf \"\\n_\");n=${{n%_}};c=;while IFS= read -r l;do if [ \"$l\" = {GO_LINE} ];then eval \"$c\";exit;fi;c=$c$l$n;done;exit 1"
    );
    format!("sh -c '{code}'")
}

/// The relay, as rsync's `-e` (one word for rsync's own splitting, which
/// is why it has no single quotes). rsync appends `[-l USER] HOST COMMAND…`;
/// the relay drops the host part (the session is already there) and sends
/// the command joined by spaces, as ssh would.
pub fn relay_shell() -> Arg {
    // Written once and borrowed: every push and pull has it.
    static CODE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let code = CODE.get_or_init(|| format!(
        "[ \"$1\" = -l ] && shift 2; shift; exec 5<&0; {{ printf \"%s\\n{GO_LINE}\\n\" \"$*\"; exec cat <&5; }} >&{SESSION_INPUT_FD} & exec cat <&{SESSION_OUTPUT_FD}"
    ));
    Arg::RshJoined(vec![
        Arg::lit("sh"),
        Arg::lit("-c"),
        Arg::lit(code.as_str()),
        Arg::lit("nbkp-relay"),
    ])
}

/// The waiting session on `ssh`'s host: its command waits for the command
/// line, runs it (with the rest of its input as rsync's), and ends without
/// running anything if its input ends first.
pub fn open_argv(ssh: &SshCommand) -> Vec<Arg> {
    ssh.argv(Arg::lit(waiting_command()))
}
