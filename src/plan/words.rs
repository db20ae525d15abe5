//! Plan arguments → shell syntax. Every literal goes through
//! [`crate::shell::quote`]; run-time values are referenced by variable name.

use crate::plan::{Arg, Check, Failure, OpCall, Piece, Probe, Var};
use crate::shell::{quote_into, quote_rsh_into};

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
            out.push_str("${");
            out.push_str(&n);
            out.push_str(":+\"${");
            out.push_str(&n);
            out.push_str("}\"}");
        }
        // The sync function receives the run flags as its arguments;
        // `${1+…}` because some shells reject "$@" under `set -u` when empty.
        Arg::RunFlags => out.push_str("${1+\"$@\"}"),
        Arg::Joined(args) => joined_into(out, args, quote_into),
        Arg::RshJoined(args) => joined_into(out, args, quote_rsh_into),
    }
}

/// A double-quoted string of words that another program splits again.
fn joined_into(out: &mut String, args: &[Arg], q: fn(&mut String, &str)) {
    // One scratch buffer for the quoted literals, escaped as they are copied.
    let mut scratch = String::new();
    out.push('"');
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        inner_word_into(out, &mut scratch, a, q);
    }
    out.push('"');
}

/// Inside a double-quoted command string that another program will split
/// (a remote shell, or rsync for `-e`): literals are quoted for that program
/// with `q` (and escaped for the double quotes); run-time values, always
/// plain tokens, are expanded here.
fn inner_word_into(out: &mut String, scratch: &mut String, arg: &Arg, q: fn(&mut String, &str)) {
    let mut literal = |out: &mut String, s: &str| {
        scratch.clear();
        q(scratch, s);
        dq_escape_into(out, scratch);
    };
    match arg {
        Arg::Lit(s) => literal(out, s),
        Arg::Template(pieces) => {
            for p in pieces {
                match p {
                    Piece::Lit(s) => literal(out, s),
                    Piece::Var(v) => {
                        out.push_str("${");
                        out.push_str(&v.shell_name());
                        out.push('}');
                    }
                }
            }
        }
        Arg::Optional(v) => {
            let n = v.shell_name();
            out.push_str("${");
            out.push_str(&n);
            out.push_str(":+${");
            out.push_str(&n);
            out.push_str("}}");
        }
        // Plain flags, one space between each.
        Arg::RunFlags => out.push_str("$*"),
        // Not produced by the plan; quoting it twice keeps it one word.
        Arg::Joined(_) | Arg::RshJoined(_) => literal(out, &arg.display()),
    }
}

/// Appends text escaped for the inside of a double-quoted shell string.
fn dq_escape_into(out: &mut String, s: &str) {
    let mut rest = s;
    while let Some(i) = rest.find(['"', '\\', '$', '`']) {
        out.push_str(&rest[..i]);
        out.push('\\');
        out.push_str(&rest[i..i + 1]);
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

/// `case` patterns matching exactly these answers, appended to `out`.
fn patterns_into(out: &mut String, answers: &[&str]) {
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
/// Appended to `line`: there is a line like this for every check of every sync.
pub fn check_into(line: &mut String, var: &str, check: &Check) {
    line.push_str("case ${NBKP_");
    line.push_str(var);
    line.push_str("-} in ");
    if !check.pass.is_empty() {
        patterns_into(line, check.pass);
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
        patterns_into(line, f.answers);
        line.push_str(") ");
        arm(line, f);
    }
    if let Some(f) = &check.otherwise {
        line.push_str("*) ");
        arm(line, f);
    }
    line.push_str("esac");
}

/// Several arguments as space-separated words.
pub fn words(args: &[Arg]) -> String {
    let mut out = String::with_capacity(32 * args.len());
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
    let args = call.op.args();
    let mut out = String::with_capacity(24 * (args.len() + 1));
    out.push_str(call.op.function());
    for a in &args {
        out.push(' ');
        word_into(&mut out, a);
    }
    out
}

/// One probe as a line of the probe script, appended to `line`.
fn probe_line_into(line: &mut String, index: usize, probe: &Probe) {
    // `nbkp_probe_KIND INDEX ARG...`: one function per kind, so a script
    // carries only the kinds it asks.
    let head = |line: &mut String, kind: &str| {
        line.push_str("nbkp_probe_");
        line.push_str(&kind.replace('-', "_"));
        line.push(' ');
        line.push_str(&index.to_string());
    };
    let word = |line: &mut String, text: &str| {
        line.push(' ');
        line.push_str(text);
    };
    let arg = |line: &mut String, a: &Arg| {
        line.push(' ');
        word_into(line, a);
    };
    let lit = |line: &mut String, s: &str| {
        line.push(' ');
        quote_into(line, s);
    };
    match probe {
        Probe::Reachable => head(line, "reachable"),
        Probe::File { path } => {
            head(line, "file");
            arg(line, path);
        }
        Probe::WritableDir { path } => {
            head(line, "writable-dir");
            arg(line, path);
        }
        Probe::SnapshotsDir { path } => {
            head(line, "snapshots-dir");
            arg(line, path);
        }
        Probe::Command { name } => {
            head(line, "command");
            lit(line, name);
        }
        Probe::RsyncVersion => head(line, "rsync-version"),
        Probe::FsType { path } => {
            head(line, "fs-type");
            arg(line, path);
        }
        Probe::MountOption { path, option } => {
            head(line, "mount-option");
            arg(line, path);
            lit(line, option);
        }
        Probe::Subvolume { path } => {
            head(line, "subvolume");
            arg(line, path);
        }
        Probe::Latest { endpoint } => {
            head(line, "latest");
            arg(line, endpoint);
        }
        Probe::NewestSnapshot { endpoint } => {
            head(line, "newest");
            arg(line, endpoint);
        }
        // TARGET RSH ('' for none) [PASSWORD-COMMAND...]
        Probe::DaemonFile {
            target,
            rsh,
            password,
        } => {
            head(line, "daemon-file");
            arg(line, target);
            match rsh {
                Some(r) => arg(line, r),
                None => lit(line, ""),
            }
            if let crate::plan::daemon::Password::Command(argv) = password {
                for w in argv {
                    lit(line, w);
                }
            }
        }
        Probe::Mount {
            uuid,
            encrypted,
            path,
        } => {
            head(line, "mount");
            lit(line, uuid);
            word(line, if *encrypted { "1" } else { "0" });
            match path {
                Some(p) => arg(line, p),
                None => word(line, "''"),
            }
        }
    }
}

/// A host's whole probe script: one line per probe.
pub fn probe_script(probes: &[Probe]) -> String {
    let mut script = String::with_capacity(64 * probes.len());
    for (i, p) in probes.iter().enumerate() {
        if i > 0 {
            script.push('\n');
        }
        probe_line_into(&mut script, i, p);
    }
    script
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(arg: &Arg) -> String {
        let mut out = String::new();
        word_into(&mut out, arg);
        out
    }

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
