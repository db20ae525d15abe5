//! Typed reading of [`Node`]s: the field accessors every section decoder uses.
//!
//! Each accessor reports a problem to [`Diagnostics`] and returns `None`, so a
//! decoder keeps going and every problem in the file is reported at once.
//! Coercions follow the Python nbkp (pydantic "lax" mode): integers may be
//! numeric strings, booleans may be `yes`/`on`/`1`/`"true"`, but a string field
//! never silently accepts a number.

use super::diagnostic::Diagnostics;
use super::yaml::{parse_int, Node, Pos, Scalar, ScalarKind, Value};

/// A field path under construction, e.g. `syncs → photos → filters`.
#[derive(Debug, Clone, Default)]
pub struct Loc(Option<std::rc::Rc<(Loc, String)>>);

impl Loc {
    pub fn root() -> Self {
        Loc(None)
    }

    /// A location from its parts, outermost first.
    pub fn of(parts: &[&str]) -> Loc {
        parts.iter().fold(Loc::root(), |loc, part| loc.at(part))
    }

    /// One level deeper. The parent is shared, not copied: every field of
    /// every entry of a large config gets a location, and most are never
    /// shown.
    pub fn at(&self, part: &str) -> Loc {
        Loc(Some(std::rc::Rc::new((self.clone(), part.to_string()))))
    }

    pub fn parts(&self) -> Vec<&str> {
        let mut parts = Vec::new();
        let mut at = self;
        while let Some(node) = &at.0 {
            parts.push(node.1.as_str());
            at = &node.0;
        }
        parts.reverse();
        parts
    }
}

pub fn describe(node: &Node) -> String {
    match &node.value {
        Value::Scalar(s) => match s.kind {
            ScalarKind::Null => "nothing (null)".into(),
            ScalarKind::Bool(b) if s.text.eq_ignore_ascii_case(&b.to_string()) => {
                format!("the boolean `{b}`")
            }
            ScalarKind::Bool(b) => {
                format!("the boolean `{b}` (YAML 1.1 reads `{}` as {b})", s.text)
            }
            ScalarKind::Int(_) => format!("the number `{}`", s.text),
            ScalarKind::Float => format!("the number `{}`", s.text),
            ScalarKind::Str => format!("the string `{}`", s.text),
        },
        Value::Seq(_) => "a list".into(),
        Value::Map(_) => "a mapping".into(),
    }
}

fn scalar(node: &Node) -> Option<&Scalar> {
    match &node.value {
        Value::Scalar(s) => Some(s),
        _ => None,
    }
}

/// The text of a scalar that is not null (a number, a word, a string).
pub fn scalar_text(node: &Node) -> Option<&str> {
    scalar(node)
        .filter(|s| s.kind != ScalarKind::Null)
        .map(|s| s.text.trim())
}

/// Whether the node is the string `word` (any case).
pub fn is_str(node: &Node, word: &str) -> bool {
    matches!(scalar(node), Some(s) if s.kind == ScalarKind::Str && s.text.trim().eq_ignore_ascii_case(word))
}

pub fn is_null(node: &Node) -> bool {
    matches!(scalar(node), Some(s) if s.kind == ScalarKind::Null)
}

pub fn string(node: &Node, loc: &Loc, d: &mut Diagnostics) -> Option<String> {
    match scalar(node) {
        Some(s) if s.kind == ScalarKind::Str => Some(s.text.clone()),
        Some(s)
            if matches!(
                s.kind,
                ScalarKind::Int(_) | ScalarKind::Float | ScalarKind::Bool(_)
            ) =>
        {
            d.error(
                "string_type",
                &loc.parts(),
                Some(node.at()),
                format!(
                    "expected a string, found {}; quote it: `\"{}\"`",
                    describe(node),
                    s.text
                ),
            );
            None
        }
        _ => {
            d.error(
                "string_type",
                &loc.parts(),
                Some(node.at()),
                format!("expected a string, found {}", describe(node)),
            );
            None
        }
    }
}

/// A string that must not be empty.
pub fn non_empty(node: &Node, loc: &Loc, d: &mut Diagnostics) -> Option<String> {
    let s = string(node, loc, d)?;
    if s.is_empty() {
        d.error(
            "string_too_short",
            &loc.parts(),
            Some(node.at()),
            "must not be empty".into(),
        );
        return None;
    }
    Some(s)
}

pub fn int(node: &Node, loc: &Loc, d: &mut Diagnostics) -> Option<i64> {
    let value = match scalar(node) {
        Some(Scalar {
            kind: ScalarKind::Int(i),
            ..
        }) => Some(*i),
        Some(s) if s.kind == ScalarKind::Str => parse_int(s.text.trim()),
        _ => None,
    };
    if value.is_none() {
        d.error(
            "int_parsing",
            &loc.parts(),
            Some(node.at()),
            format!("expected a whole number, found {}", describe(node)),
        );
    }
    value
}

/// An integer within `min..=max`.
pub fn int_in(node: &Node, loc: &Loc, d: &mut Diagnostics, min: i64, max: i64) -> Option<i64> {
    let value = int(node, loc, d)?;
    if value < min {
        d.error(
            "greater_than_equal",
            &loc.parts(),
            Some(node.at()),
            format!("must be at least {min}, found {value}"),
        );
        return None;
    }
    if value > max {
        d.error(
            "less_than_equal",
            &loc.parts(),
            Some(node.at()),
            format!("must be at most {max}, found {value}"),
        );
        return None;
    }
    Some(value)
}

pub fn float_min0(node: &Node, loc: &Loc, d: &mut Diagnostics) -> Option<f64> {
    let value = scalar(node).and_then(|s| match s.kind {
        ScalarKind::Int(i) => Some(i as f64),
        ScalarKind::Float | ScalarKind::Str => s.text.trim().replace('_', "").parse::<f64>().ok(),
        _ => None,
    });
    match value {
        Some(v) if v.is_finite() && v >= 0.0 => Some(v),
        Some(v) => {
            d.error(
                "greater_than_equal",
                &loc.parts(),
                Some(node.at()),
                format!("must be a number of seconds of at least 0, found {v}"),
            );
            None
        }
        None => {
            d.error(
                "float_parsing",
                &loc.parts(),
                Some(node.at()),
                format!("expected a number, found {}", describe(node)),
            );
            None
        }
    }
}

pub fn boolean(node: &Node, loc: &Loc, d: &mut Diagnostics) -> Option<bool> {
    let value = scalar(node).and_then(|s| match s.kind {
        ScalarKind::Bool(b) => Some(b),
        ScalarKind::Int(0) => Some(false),
        ScalarKind::Int(1) => Some(true),
        ScalarKind::Str => match s.text.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "y" | "t" | "1" => Some(true),
            "false" | "no" | "off" | "n" | "f" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    });
    if value.is_none() {
        d.error(
            "bool_parsing",
            &loc.parts(),
            Some(node.at()),
            format!("expected true or false, found {}", describe(node)),
        );
    }
    value
}

pub fn list<'a>(node: &'a Node, loc: &Loc, d: &mut Diagnostics) -> Option<&'a [Node]> {
    match &node.value {
        Value::Seq(items) => Some(items),
        _ => {
            d.error(
                "list_type",
                &loc.parts(),
                Some(node.at()),
                format!("expected a list, found {}", describe(node)),
            );
            None
        }
    }
}

/// A list of strings; every bad item is reported.
pub fn string_list(node: &Node, loc: &Loc, d: &mut Diagnostics) -> Option<Vec<String>> {
    let items = list(node, loc, d)?;
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        match string(item, &loc.at(&i.to_string()), d) {
            Some(s) => out.push(s),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// The entries of a mapping whose keys are field names.
///
/// Keys are matched in kebab-case or snake_case (`max-snapshots` or
/// `max_snapshots`), as the Python nbkp accepts both. A key given twice is an
/// error; keys nobody asked for are reported by [`Fields::finish`] as warnings.
pub struct Fields<'a> {
    entries: Vec<Entry<'a>>,
    pub loc: Loc,
    pub pos: Pos,
}

/// A field, its names borrowed from the tree (a large config has tens of
/// thousands of fields, nearly all spelled in kebab-case already).
struct Entry<'a> {
    canonical: std::borrow::Cow<'a, str>,
    written: &'a str,
    key_pos: Pos,
    value: &'a Node,
    used: bool,
}

impl<'a> Fields<'a> {
    /// `None` (with an error) when `node` is not a mapping.
    pub fn of(node: &'a Node, loc: Loc, d: &mut Diagnostics) -> Option<Fields<'a>> {
        let Value::Map(raw) = &node.value else {
            d.error(
                "dict_type",
                &loc.parts(),
                Some(node.at()),
                format!("expected a mapping of fields, found {}", describe(node)),
            );
            return None;
        };
        let mut entries: Vec<Entry<'a>> = Vec::new();
        for (key, value) in merged_entries(raw) {
            let Some(written) = key_text(key, &loc, d) else {
                continue;
            };
            let canonical = if written.contains('_') {
                written.replace('_', "-").into()
            } else {
                written.into()
            };
            if let Some(first) = entries.iter().find(|e| e.canonical == canonical) {
                if first.written == written {
                    d.error(
                        "duplicate-key",
                        &loc.at(written).parts(),
                        Some(key.at()),
                        format!(
                            "`{written}` is given twice (first at line {}); remove one",
                            first.key_pos.line
                        ),
                    );
                } else {
                    d.warning(
                        "duplicate-key",
                        &loc.at(written).parts(),
                        Some(key.at()),
                        format!(
                            "`{written}` and `{}` (line {}) are the same field; using `{canonical}`",
                            first.written, first.key_pos.line
                        ),
                    );
                    if written == canonical {
                        // The kebab-case spelling wins, as in the Python nbkp.
                        let first = entries
                            .iter_mut()
                            .find(|e| e.canonical == canonical)
                            .expect("found above");
                        first.value = value;
                        first.written = written;
                        first.key_pos = key.pos;
                    }
                }
                continue;
            }
            entries.push(Entry {
                canonical,
                written,
                key_pos: key.pos,
                value,
                used: false,
            });
        }
        Some(Fields {
            entries,
            loc,
            pos: node.at(),
        })
    }

    /// The value of `name` (kebab-case), treating an explicit null as absent.
    pub fn get(&mut self, name: &str) -> Option<&'a Node> {
        let entry = self.entries.iter_mut().find(|e| e.canonical == name)?;
        entry.used = true;
        (!is_null(entry.value)).then_some(entry.value)
    }

    /// Like [`get`](Self::get) but keeps an explicit null.
    pub fn get_raw(&mut self, name: &str) -> Option<&'a Node> {
        let entry = self.entries.iter_mut().find(|e| e.canonical == name)?;
        entry.used = true;
        Some(entry.value)
    }

    pub fn has(&self, name: &str) -> bool {
        self.entries
            .iter()
            .any(|e| e.canonical == name && !is_null(e.value))
    }

    pub fn field_loc(&self, name: &str) -> Loc {
        self.loc.at(name)
    }

    /// Reads a field with `read`, or `None` when absent or invalid.
    pub fn read<T>(
        &mut self,
        name: &str,
        d: &mut Diagnostics,
        read: impl FnOnce(&'a Node, &Loc, &mut Diagnostics) -> Option<T>,
    ) -> Option<T> {
        let node = self.get(name)?;
        read(node, &self.loc.at(name), d)
    }

    /// A required field: reports `missing` when absent.
    pub fn require<T>(
        &mut self,
        name: &str,
        d: &mut Diagnostics,
        read: impl FnOnce(&'a Node, &Loc, &mut Diagnostics) -> Option<T>,
    ) -> Option<T> {
        match self.get(name) {
            Some(node) => read(node, &self.loc.at(name), d),
            None => {
                d.error(
                    "missing",
                    &self.loc.at(name).parts(),
                    Some(self.pos),
                    format!("`{name}` is required"),
                );
                None
            }
        }
    }

    /// Marks `name` as understood without reading it.
    pub fn consume(&mut self, name: &str) {
        let _ = self.get_raw(name);
    }

    /// Warns about every key that no decoder asked for.
    pub fn finish(self, known: &[&str], d: &mut Diagnostics) {
        for e in self.entries.iter().filter(|e| !e.used) {
            let hint = match e.canonical.as_ref() {
                "mapper-name" => {
                    " (no longer used: udisks names the unlocked device itself)".to_string()
                }
                _ => match closest(&e.canonical, known) {
                    Some(k) => format!(" (did you mean `{k}`?)"),
                    None if known.is_empty() => String::new(),
                    None => format!("; known keys here: {}", known.join(", ")),
                },
            };
            d.warning(
                "unknown-key",
                &self.loc.at(e.written).parts(),
                Some(e.key_pos),
                format!("unknown key `{}` is ignored{hint}", e.written),
            );
        }
    }
}

/// The text of a mapping key, which must be a string.
pub fn key_text<'n>(key: &'n Node, loc: &Loc, d: &mut Diagnostics) -> Option<&'n str> {
    match scalar(key) {
        Some(s) if s.kind == ScalarKind::Str => Some(&s.text),
        Some(s) => {
            d.error(
                "string_type",
                &loc.at(&s.text).parts(),
                Some(key.at()),
                format!(
                    "keys must be strings, found {}; quote it: `'{}'`",
                    describe(key),
                    s.text
                ),
            );
            None
        }
        None => {
            d.error(
                "string_type",
                &loc.parts(),
                Some(key.at()),
                format!("keys must be strings, found {}", describe(key)),
            );
            None
        }
    }
}

/// Entries with YAML merge keys (`<<: *defaults`) expanded; own keys win.
pub fn merged_entries(raw: &[(Node, Node)]) -> Vec<(&Node, &Node)> {
    let is_merge =
        |k: &Node| matches!(scalar(k), Some(s) if s.text == "<<" && s.kind == ScalarKind::Str);
    let mut own: Vec<(&Node, &Node)> = raw
        .iter()
        .filter(|(k, _)| !is_merge(k))
        .map(|(k, v)| (k, v))
        .collect();
    for (_, value) in raw.iter().filter(|(k, _)| is_merge(k)) {
        let sources: Vec<&Node> = match &value.value {
            Value::Map(_) => vec![value],
            Value::Seq(items) => items.iter().collect(),
            _ => Vec::new(),
        };
        for source in sources {
            if let Value::Map(inherited) = &source.value {
                for (k, v) in merged_entries(inherited) {
                    let shadowed = own.iter().any(|(ok, _)| same_key(ok, k));
                    if !shadowed {
                        own.push((k, v));
                    }
                }
            }
        }
    }
    own
}

fn same_key(a: &Node, b: &Node) -> bool {
    match (scalar(a), scalar(b)) {
        (Some(a), Some(b)) => a.text == b.text,
        _ => false,
    }
}

/// The known key closest to a typo, if it is close enough to be a typo.
fn closest<'k>(word: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(word, k), *k))
        .filter(|(dist, k)| *dist <= 2.max(k.len() / 4))
        .min_by_key(|(dist, _)| *dist)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_suggestions() {
        assert_eq!(
            closest("max-snapshot", &["enabled", "max-snapshots"]),
            Some("max-snapshots")
        );
        assert_eq!(
            closest("enable", &["enabled", "max-snapshots"]),
            Some("enabled")
        );
        assert_eq!(closest("frobnicate", &["enabled", "max-snapshots"]), None);
    }
}
