//! Plan arguments → shell syntax. Every literal goes through
//! [`crate::shell::quote`]; run-time values are referenced by variable name.

use crate::plan::{Arg, Check, Failure, OpCall, Piece, Probe, Var};
use crate::shell::{quote, quote_into, quote_rsh};

/// One argument as shell syntax, expanded by the shell that reads it.
pub fn word(arg: &Arg) -> String {
    let mut out = String::new();
    word_into(&mut out, arg);
    out
}

/// [`word`], appended to `out` (spares an allocation per word of the script).
pub fn word_into(out: &mut String, arg: &Arg) {
    match arg {
        Arg::Lit(s) => quote_into(out, s),
        Arg::Template(pieces) => {
            for p in pieces {
                match p {
                    Piece::Lit(s) => quote_into(out, s),
                    Piece::Var(v) => {
                        out.push_str("\"${");
                        out.push_str(&v.shell_name());
                        out.push_str("}\"");
                    }
                }
            }
        }
        Arg::Optional(v) => {
            let n = v.shell_name();
            out.push_str(&format!("${{{n}:+\"${{{n}}}\"}}"));
        }
        // The sync function receives the run flags as its arguments;
        // `${1+…}` because some shells reject "$@" under `set -u` when empty.
        Arg::RunFlags => out.push_str("${1+\"$@\"}"),
        Arg::Joined(args) => {
            let inner: Vec<String> = args.iter().map(|a| inner_word(a, quote)).collect();
            out.push('"');
            out.push_str(&inner.join(" "));
            out.push('"');
        }
        Arg::RshJoined(args) => {
            let inner: Vec<String> = args.iter().map(|a| inner_word(a, quote_rsh)).collect();
            out.push('"');
            out.push_str(&inner.join(" "));
            out.push('"');
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
    let mut out = String::new();
    patterns_into(&mut out, answers);
    out
}

/// [`patterns`], appended to `out`.
fn patterns_into(out: &mut String, answers: &[String]) {
    for (i, a) in answers.iter().enumerate() {
        if i > 0 {
            out.push('|');
        }
        quote_into(out, a);
    }
}

/// One check as a `case` over the answer in `NBKP_<var>` (unset when the
/// host did not answer): passing answers do nothing, failing ones call
/// `nbkp_fail CODE MESSAGE` (`nbkp_fail_dry` for failures of dry runs only).
pub fn check(var: &str, check: &Check) -> String {
    // Written straight into one string: there is a line like this for every
    // check of every sync.
    let mut line = String::with_capacity(128);
    line.push_str("case ${NBKP_");
    line.push_str(var);
    line.push_str("-} in ");
    if !check.pass.is_empty() {
        patterns_into(&mut line, &check.pass);
        line.push_str(") ;; ");
    }
    let arm = |line: &mut String, f: &Failure| {
        line.push_str(if f.dry_run_only {
            "nbkp_fail_dry "
        } else {
            "nbkp_fail "
        });
        // A one-digit code.
        line.push(char::from(b'0' + f.verdict.code()));
        line.push(' ');
        quote_into(line, &f.message);
        line.push_str(" ;; ");
    };
    for f in &check.fail {
        patterns_into(&mut line, &f.answers);
        line.push_str(") ");
        arm(&mut line, f);
    }
    if let Some(f) = &check.otherwise {
        line.push_str("*) ");
        arm(&mut line, f);
    }
    line.push_str("esac");
    line
}

/// Several arguments as space-separated words.
pub fn words(args: &[Arg]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        word_into(&mut out, a);
    }
    out
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
    let mut out = call.op.to_string();
    for a in &call.args {
        out.push(' ');
        word_into(&mut out, a);
    }
    out
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
    let mut line = String::with_capacity(64);
    line.push_str("nbkp_probe ");
    line.push_str(&index.to_string());
    for a in &args {
        line.push(' ');
        line.push_str(a);
    }
    line
}

/// A host's whole probe script: one line per probe.
pub fn probe_script(probes: &[Probe]) -> String {
    let mut script = String::new();
    for (i, p) in probes.iter().enumerate() {
        if i > 0 {
            script.push('\n');
        }
        script.push_str(&probe_line(i, p));
    }
    script
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
