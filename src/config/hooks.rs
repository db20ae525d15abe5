//! `hooks:` blocks (top level and per sync): lists of commands, each an
//! argv list of strings. Hooks never go through a shell, so a command
//! written as one string is refused with the list form to use instead.

use super::diagnostic::Diagnostics;
use super::fields::{self, describe, Fields, Loc};
use super::model::Hooks;
use super::paths::Home;
use super::yaml::{Node, Value};

pub const HOOK_KEYS: &[&str] = &["before", "after", "on-failure"];

pub fn decode_hooks(node: &Node, loc: &Loc, home: &Home, d: &mut Diagnostics) -> Option<Hooks> {
    let mut f = Fields::of(node, loc.clone(), d)?;
    let before = d.items.len();
    let mut list = |name: &str, d: &mut Diagnostics| {
        f.read(name, d, |n, l, d| commands(n, l, home, d))
            .unwrap_or_default()
    };
    let hooks = Hooks {
        before: list("before", d),
        after: list("after", d),
        on_failure: list("on-failure", d),
    };
    f.finish(HOOK_KEYS, d);
    let failed = d.items[before..]
        .iter()
        .any(|x| x.severity == super::diagnostic::Severity::Error);
    (!failed).then_some(hooks)
}

/// A list of commands; every bad one is reported.
fn commands(node: &Node, loc: &Loc, home: &Home, d: &mut Diagnostics) -> Option<Vec<Vec<String>>> {
    let Value::Seq(items) = &node.value else {
        let example = match &node.value {
            Value::Scalar(s) if !s.text.trim().is_empty() => {
                format!(
                    "[[{}]]",
                    s.text.split_whitespace().collect::<Vec<_>>().join(", ")
                )
            }
            _ => "[[/usr/local/bin/notify, --done]]".into(),
        };
        d.error(
            "list_type",
            &loc.parts(),
            Some(node.at()),
            format!(
                "expected a list of commands, found {}; write each command as a list of words (hooks never run through a shell): `{example}`",
                describe(node)
            ),
        );
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        match argv(item, &loc.at(&i.to_string()), home, d, "a hook") {
            Some(a) => out.push(a),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// One command (`what`: "a hook", …): a non-empty list of strings whose
/// program is not empty; `~` in the program is expanded.
pub fn argv(
    node: &Node,
    loc: &Loc,
    home: &Home,
    d: &mut Diagnostics,
    what: &str,
) -> Option<Vec<String>> {
    if let Value::Scalar(s) = &node.value {
        let words: Vec<&str> = s.text.split_whitespace().collect();
        let hint = if words.is_empty() {
            "`- [/path/to/program, arg]`".to_string()
        } else {
            format!("`- [{}]`", words.join(", "))
        };
        d.error(
            "hook-not-argv",
            &loc.parts(),
            Some(node.at()),
            format!(
                "{what} is a command as a list of words (it never runs through a shell), found {}; write it as {hint}",
                describe(node)
            ),
        );
        return None;
    }
    let mut words = fields::string_list(node, loc, d)?;
    match words.first() {
        None => {
            d.error(
                "hook-empty",
                &loc.parts(),
                Some(node.at()),
                format!("{what} must not be an empty command: give at least the program"),
            );
            None
        }
        Some(p) if p.is_empty() => {
            d.error(
                "hook-empty",
                &loc.at("0").parts(),
                Some(node.at()),
                format!("{what}'s program must not be an empty string"),
            );
            None
        }
        Some(p) => {
            words[0] = home.expand(p);
            Some(words)
        }
    }
}
