//! Plan arguments → shell syntax. Every literal goes through
//! [`crate::shell::quote`]; run-time values are referenced by variable name.

use crate::plan::{Arg, Check, Failure, OpCall, Piece, Probe, Var};
use crate::shell::{quote, quote_rsh};

/// One argument as shell syntax, expanded by the shell that reads it.
pub fn word(arg: &Arg) -> String {
    match arg {
        Arg::Lit(s) => quote(s),
        Arg::Template(pieces) => pieces
            .iter()
            .map(|p| match p {
                Piece::Lit(s) => quote(s),
                Piece::Var(v) => format!("\"${{{}}}\"", v.shell_name()),
            })
            .collect(),
        Arg::Optional(v) => {
            let n = v.shell_name();
            format!("${{{n}:+\"${{{n}}}\"}}")
        }
        // The sync function receives the run flags as its arguments;
        // `${1+…}` because some shells reject "$@" under `set -u` when empty.
        Arg::RunFlags => "${1+\"$@\"}".into(),
        Arg::Joined(args) => {
            let inner: Vec<String> = args.iter().map(|a| inner_word(a, quote)).collect();
            format!("\"{}\"", inner.join(" "))
        }
        Arg::RshJoined(args) => {
            let inner: Vec<String> = args.iter().map(|a| inner_word(a, quote_rsh)).collect();
            format!("\"{}\"", inner.join(" "))
        }
    }
}

/// Inside a double-quoted command string that another program will split
/// (a remote shell, or rsync for `-e`): literals are quoted for that program
/// with `q` (and escaped for the double quotes); run-time values, always
/// plain tokens, are expanded here.
fn inner_word(arg: &Arg, q: fn(&str) -> String) -> String {
    match arg {
        Arg::Lit(s) => dq_escape(&q(s)),
        Arg::Template(pieces) => pieces
            .iter()
            .map(|p| match p {
                Piece::Lit(s) => dq_escape(&q(s)),
                Piece::Var(v) => format!("${{{}}}", v.shell_name()),
            })
            .collect(),
        Arg::Optional(v) => {
            let n = v.shell_name();
            format!("${{{n}:+${{{n}}}}}")
        }
        // Plain flags, one space between each.
        Arg::RunFlags => "$*".into(),
        // Not produced by the plan; quoting it twice keeps it one word.
        Arg::Joined(_) | Arg::RshJoined(_) => dq_escape(&q(&arg.display())),
    }
}

/// Escapes text for the inside of a double-quoted shell string.
fn dq_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `case` patterns matching exactly these answers.
pub fn patterns(answers: &[String]) -> String {
    answers
        .iter()
        .map(|a| quote(a))
        .collect::<Vec<_>>()
        .join("|")
}

/// One check as a `case` over the answer in `NBKP_<var>` (unset when the
/// host did not answer): passing answers do nothing, failing ones call
/// `nbkp_fail CODE MESSAGE` (`nbkp_fail_dry` for failures of dry runs only).
pub fn check(var: &str, check: &Check) -> String {
    let mut line = format!("case ${{NBKP_{var}-}} in ");
    if !check.pass.is_empty() {
        line.push_str(&format!("{}) ;; ", patterns(&check.pass)));
    }
    let arm = |f: &Failure| {
        let func = if f.dry_run_only {
            "nbkp_fail_dry"
        } else {
            "nbkp_fail"
        };
        format!("{func} {} {} ;; ", f.verdict.code(), quote(&f.message))
    };
    for f in &check.fail {
        line.push_str(&format!("{}) {}", patterns(&f.answers), arm(f)));
    }
    if let Some(f) = &check.otherwise {
        line.push_str(&format!("*) {}", arm(f)));
    }
    line.push_str("esac");
    line
}

/// Several arguments as space-separated words.
pub fn words(args: &[Arg]) -> String {
    args.iter().map(word).collect::<Vec<_>>().join(" ")
}

/// Run-time values an operation's text refers to. Whoever sends the text
/// puts `NAME=value` lines for these in front of it; every value is a plain
/// token (checked by the sender), so no quoting is involved.
pub const OP_VARS: &[Var] = &[
    Var::DryRunMode,
    Var::SnapshotCandidate,
    Var::Snapshot,
    Var::LockOwner,
    Var::StaleLock,
];

/// The text of an operation call, as sent to `sh -s` on its host.
pub fn op_text(call: &OpCall) -> String {
    let mut parts = vec![call.op.to_string()];
    parts.extend(call.args.iter().map(word));
    parts.join(" ")
}

/// One probe as a line of the probe script.
pub fn probe_line(index: usize, probe: &Probe) -> String {
    let args: Vec<String> = match probe {
        Probe::Reachable => vec!["reachable".into()],
        Probe::File { path } => vec!["file".into(), word(path)],
        Probe::WritableDir { path } => vec!["writable-dir".into(), word(path)],
        Probe::SnapshotsDir { path } => vec!["snapshots-dir".into(), word(path)],
        Probe::Command { name } => vec!["command".into(), quote(name)],
        Probe::RsyncVersion => vec!["rsync-version".into()],
        Probe::FsType { path } => vec!["fs-type".into(), word(path)],
        Probe::MountOption { path, option } => {
            vec!["mount-option".into(), word(path), quote(option)]
        }
        Probe::Subvolume { path } => vec!["subvolume".into(), word(path)],
        Probe::Latest { endpoint } => vec!["latest".into(), word(endpoint)],
        // TARGET RSH ('' for none) [PASSWORD-COMMAND...]
        Probe::DaemonFile {
            target,
            rsh,
            password,
        } => {
            let mut a = vec!["daemon-file".into(), word(target)];
            a.push(rsh.as_ref().map_or_else(|| quote(""), word));
            if let crate::plan::daemon::Password::Command(argv) = password {
                a.extend(argv.iter().map(|w| quote(w)));
            }
            a
        }
        Probe::Mount {
            uuid,
            encrypted,
            path,
        } => vec![
            "mount".into(),
            quote(uuid),
            if *encrypted { "1" } else { "0" }.into(),
            path.as_ref().map(word).unwrap_or_else(|| "''".into()),
        ],
    };
    format!("nbkp_probe {index} {}", args.join(" "))
}

/// A host's whole probe script: one line per probe.
pub fn probe_script(probes: &[Probe]) -> String {
    probes
        .iter()
        .enumerate()
        .map(|(i, p)| probe_line(i, p))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_quote_literals_and_reference_values() {
        assert_eq!(word(&Arg::lit("/a b/")), "'/a b/'");
        let t = Arg::template(vec![
            Piece::Lit("/d/snapshots/".into()),
            Piece::Var(Var::Snapshot),
            Piece::Lit("/".into()),
        ]);
        assert_eq!(word(&t), "/d/snapshots/\"${NBKP_SNAPSHOT}\"/");
        assert_eq!(
            word(&Arg::Optional(Var::LinkDest)),
            "${NBKP_LINK_DEST:+\"${NBKP_LINK_DEST}\"}"
        );
        assert_eq!(word(&Arg::RunFlags), "${1+\"$@\"}");
    }

    #[test]
    fn joined_strings_survive_hostile_text() {
        let j = Arg::Joined(vec![
            Arg::lit("rsync"),
            Arg::lit("/it's $(rm -rf ~) `x` \"q\"/"),
            Arg::Optional(Var::LinkDest),
            Arg::RunFlags,
        ]);
        assert_eq!(
            word(&j),
            r#""rsync '/it'\\''s \$(rm -rf ~) \`x\` \"q\"/' ${NBKP_LINK_DEST:+${NBKP_LINK_DEST}} $*""#
        );
    }
}
