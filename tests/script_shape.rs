//! The generated script's shape, over every golden script: what it does
//! comes first (`nbkp_main`, then the syncs in run order), how after (the
//! functions they call, then the runtime library); it carries only the
//! functions it uses and every function it names; its lines fit 160
//! columns unless a single quoted word is wider.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Every golden case's script, by case name.
fn goldens() -> BTreeMap<String, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        let script = dir.join("script.sh");
        if script.is_file() {
            let name = dir.file_name().unwrap().to_string_lossy().to_string();
            out.insert(name, std::fs::read_to_string(script).unwrap());
        }
    }
    assert!(
        out.len() >= 10,
        "golden scripts not found in {}",
        root.display()
    );
    out
}

/// Names of the functions defined (`name() {` at the start of a line).
fn defined(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_suffix("() {"))
        .filter(|n| n.starts_with("nbkp_") && !n.contains(' '))
        .map(str::to_string)
        .collect()
}

/// Each `nbkp_` word of `text` outside comments, with whether a `$`
/// follows it (a call by prefix, as in `"nbkp_sync_$2"`).
fn words(text: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let b = line.as_bytes();
        let mut i = 0;
        while let Some(f) = line[i..].find("nbkp_") {
            let s = i + f;
            let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
            let mut e = s;
            while e < b.len() && ident(b[e]) {
                e += 1;
            }
            if s == 0 || !ident(b[s - 1]) {
                out.push((line[s..e].to_string(), b.get(e) == Some(&b'$')));
            }
            i = e.max(s + 5);
        }
    }
    out
}

#[test]
fn what_the_script_does_comes_before_how() {
    for (case, script) in goldens() {
        let defs = defined(&script);
        assert_eq!(
            defs.first().map(String::as_str),
            Some("nbkp_main"),
            "{case}: nbkp_main first"
        );
        assert_eq!(
            script.lines().last(),
            Some("nbkp_main ${1+\"$@\"}"),
            "{case}: called last"
        );
        let at = |name: &str| defs.iter().position(|d| d == name);
        let how = at("nbkp_log").unwrap_or_else(|| panic!("{case}: no nbkp_log"));
        for (i, d) in defs.iter().enumerate() {
            if d.starts_with("nbkp_pf_") || d.starts_with("nbkp_sync_") {
                assert!(i < how, "{case}: {d} after the functions it calls");
            }
        }
    }
}

#[test]
fn a_script_carries_the_functions_it_uses_and_only_those() {
    let runtime: BTreeSet<String> = defined(concat!(
        include_str!("../templates/lib.sh"),
        include_str!("../templates/lib-mount.sh")
    ))
    .into_iter()
    .collect();
    for (case, script) in goldens() {
        let defs: BTreeSet<String> = defined(&script).into_iter().collect();
        let used = words(&script);
        for d in &defs {
            let mentioned = used.iter().filter(|(w, _)| w == d).count();
            let by_prefix = used.iter().any(|(w, p)| *p && d.starts_with(w.as_str()));
            // Its definition is one mention; a use is another.
            assert!(
                mentioned > 1 || by_prefix || d == "nbkp_main",
                "{case}: {d} is defined but never used"
            );
        }
        for (w, prefix) in &used {
            if !prefix && runtime.contains(w) {
                assert!(defs.contains(w), "{case}: {w} is used but not defined");
            }
        }
    }
}

#[test]
fn lines_fit_160_columns_unless_one_word_is_wider() {
    for (case, script) in goldens() {
        for line in script.lines().filter(|l| l.chars().count() > 160) {
            // A quoted word with a newline in it (a path can have one)
            // spans lines: its line cannot be broken either.
            if line.replace("\\'", "").matches('\'').count() % 2 == 1 {
                continue;
            }
            // The longest quoted word: what no break can shorten.
            let longest = line
                .split(['\'', '"'])
                .skip(1)
                .step_by(2)
                .map(|q| q.chars().count())
                .max()
                .unwrap_or(0);
            assert!(
                longest >= 60,
                "{case}: a line of {} columns could be broken:\n{line}",
                line.chars().count()
            );
        }
    }
}

#[test]
fn an_empty_config_gives_a_short_script() {
    let script = &goldens()["empty"];
    assert!(
        script.lines().count() <= 150,
        "{} lines",
        script.lines().count()
    );
}
