//! Only the functions a script uses. The templates and the runtime library
//! define every function any config may need; a config needs far fewer.
//! After rendering, the script keeps the functions reachable from its
//! top-level code (what runs), following every name a kept function
//! mentions, and the runtime library keeps the same way only what the
//! script or the library itself names: the operations sent to hosts are
//! text in the script, so they are found like any call.
//!
//! A function is `name() {` at the start of a line up to the next line that
//! is `}`; the comment lines directly above it go with it. A name followed
//! by `$` (`"nbkp_sync_$2"`) calls functions by prefix: all of them count.

use std::collections::{BTreeSet, HashSet};

use crate::runtime;

/// One top-level function of a text: its name and its byte range,
/// comments above included.
struct Definition<'t> {
    name: &'t str,
    range: std::ops::Range<usize>,
}

/// The function definitions of `text`, in order.
fn definitions(text: &str) -> Vec<Definition<'_>> {
    let mut defs = Vec::new();
    // Byte offset where each line starts, and its text.
    let mut lines: Vec<(usize, &str)> = Vec::new();
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        lines.push((at, line.strip_suffix('\n').unwrap_or(line)));
        at += line.len();
    }
    let mut i = 0;
    while i < lines.len() {
        let (start, line) = lines[i];
        let Some(name) = line.strip_suffix("() {").filter(|n| is_name(n)) else {
            i += 1;
            continue;
        };
        let Some(end) = (i + 1..lines.len()).find(|&j| lines[j].1 == "}") else {
            break;
        };
        let mut first = i;
        while first > 0 && lines[first - 1].1.starts_with('#') {
            first -= 1;
        }
        let stop = lines.get(end + 1).map_or(text.len(), |l| l.0);
        defs.push(Definition {
            name,
            range: lines[first].0.min(start)..stop,
        });
        i = end + 1;
    }
    defs
}

fn is_name(s: &str) -> bool {
    s.starts_with("nbkp_")
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The names `text` mentions: whole names, and prefixes (a name followed by `$`).
/// Comment lines name nothing.
fn mentions<'t>(text: &'t str, names: &mut HashSet<&'t str>, prefixes: &mut BTreeSet<&'t str>) {
    for line in text.lines() {
        if !line.trim_start().starts_with('#') {
            mentions_in_line(line, names, prefixes);
        }
    }
}

fn mentions_in_line<'t>(
    text: &'t str,
    names: &mut HashSet<&'t str>,
    prefixes: &mut BTreeSet<&'t str>,
) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(found) = text[i..].find("nbkp_") {
        let start = i + found;
        let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        if start > 0 && ident(bytes[start - 1]) {
            i = start + 5;
            continue;
        }
        let mut end = start + 5;
        while end < bytes.len() && ident(bytes[end]) {
            end += 1;
        }
        let word = &text[start..end];
        if bytes.get(end) == Some(&b'$') {
            prefixes.insert(word);
        } else {
            names.insert(word);
        }
        i = end;
    }
}

/// Which of `defs` (texts in `text`) are reachable from `roots`.
fn reachable<'t>(
    defs: &[(&'t str, &'t str)],
    names: &mut HashSet<&'t str>,
    prefixes: &mut BTreeSet<&'t str>,
) -> HashSet<&'t str> {
    let mut kept = HashSet::new();
    loop {
        let before = kept.len();
        for (name, body) in defs {
            if kept.contains(name) {
                continue;
            }
            if names.contains(name) || prefixes.iter().any(|p| name.starts_with(p)) {
                kept.insert(*name);
                mentions(body, names, prefixes);
            }
        }
        if kept.len() == before {
            return kept;
        }
    }
}

/// `script` without the functions nothing in it reaches, and with the
/// line `marker` replaced by the part of the runtime library it uses.
pub(super) fn shake(script: &str, marker: &str) -> String {
    let script_defs = definitions(script);
    let mut names = HashSet::new();
    let mut prefixes = BTreeSet::new();
    // The roots: everything outside the script's functions.
    let mut from = 0;
    for d in &script_defs {
        mentions(&script[from..d.range.start], &mut names, &mut prefixes);
        from = d.range.end;
    }
    mentions(&script[from..], &mut names, &mut prefixes);
    let lib_defs = definitions(runtime::LIB);
    let all: Vec<(&str, &str)> = script_defs
        .iter()
        .map(|d| (d.name, &script[d.range.clone()]))
        .chain(
            lib_defs
                .iter()
                .map(|d| (d.name, &runtime::LIB[d.range.clone()])),
        )
        .collect();
    let kept = reachable(&all, &mut names, &mut prefixes);

    let mut out = String::with_capacity(script.len());
    let mut from = 0;
    for d in &script_defs {
        out.push_str(&script[from..d.range.start]);
        if kept.contains(d.name) {
            out.push_str(&script[d.range.clone()]);
        } else if out.ends_with("\n\n") {
            // The blank line before a function goes with it.
            out.pop();
        }
        from = d.range.end;
    }
    out.push_str(&script[from..]);
    let out = compact_how(&out);
    let lib = library(&lib_defs, &kept);
    out.replacen(marker, lib.trim_end(), 1)
}

/// The line that starts the script's "how": the functions the steps call,
/// then the runtime library. Their comments live in the templates (the
/// script's header says where); the script shows their code only.
pub(super) const HOW: &str =
    "# How: the functions the steps call (documented in nbkp's templates/).\n";

/// `script` with its "how" section (after [`HOW`]) without comments and
/// blank lines.
fn compact_how(script: &str) -> String {
    let Some(at) = script.find(HOW) else {
        return script.to_string();
    };
    let mut out = String::with_capacity(script.len());
    out.push_str(&script[..at + HOW.len()]);
    push_code(&mut out, &script[at + HOW.len()..]);
    out
}

/// The runtime library's kept functions, in its order, without their
/// comments (templates/lib.sh documents them), after the statements
/// outside any function.
fn library(defs: &[Definition<'_>], kept: &HashSet<&str>) -> String {
    let lib = runtime::LIB;
    let mut out = String::new();
    let mut from = 0;
    for d in defs {
        push_code(&mut out, &lib[from..d.range.start]);
        if kept.contains(d.name) {
            push_code(&mut out, &lib[d.range.clone()]);
        }
        from = d.range.end;
    }
    push_code(&mut out, &lib[from..]);
    out
}

/// `text`'s lines but comments and blank lines (shellcheck directives stay).
fn push_code(out: &mut String, text: &str) {
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if t.trim_end().is_empty() || (t.starts_with('#') && !t.starts_with("# shellcheck")) {
            continue;
        }
        out.push_str(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unused_functions_go_and_used_ones_stay() {
        let script = "\
nbkp_main() {
  nbkp_a
  \"nbkp_sync_$1\"
}

# Says a.
nbkp_a() {
  nbkp_log a
}

# Never called.
nbkp_b() {
  nbkp_a
}

nbkp_sync_x() {
  :
}
@@LIB@@
nbkp_main \"$@\"
";
        let out = shake(script, "@@LIB@@");
        assert!(out.contains("# Says a.\nnbkp_a() {"), "{out}");
        assert!(out.contains("nbkp_sync_x() {"), "{out}");
        assert!(!out.contains("nbkp_b"), "{out}");
        assert!(!out.contains("Never called"), "{out}");
        // From the library: nbkp_log? Not a library function; nothing of
        // the library is named, so only its statements remain.
        assert!(out.contains("LC_ALL=C\n"), "{out}");
        assert!(!out.contains("nbkp_lock() {"), "{out}");
    }

    #[test]
    fn library_functions_come_with_what_they_call() {
        let out = shake("nbkp_lock x y z\n@@LIB@@\n", "@@LIB@@");
        assert!(out.contains("nbkp_lock() {"), "{out}");
        assert!(!out.contains("nbkp_retain() {"), "{out}");
        for called in runtime::function("nbkp_lock")
            .unwrap()
            .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        {
            if called.starts_with("nbkp_") && runtime::function(called).is_some() {
                assert!(
                    out.contains(&format!("\n{called}() {{\n")),
                    "{called} missing: {out}"
                );
            }
        }
    }
}
