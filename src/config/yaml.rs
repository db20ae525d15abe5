//! YAML text → a position-carrying [`Node`] tree.
//!
//! This file is the only one that names the YAML crate. We read events (not a
//! typed deserialiser) because a backup config needs what serde-based loaders
//! cannot give: the line and column of every value for error messages, every
//! problem collected instead of the first one, duplicate keys detected, and
//! YAML 1.1 scalars (`yes`/`no`/`on`/`off`) resolved the way the Python nbkp's
//! PyYAML resolves them.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A 1-based line and column in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// One YAML node with the position where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
    /// Where the key of this value stands, when the value is in a mapping.
    pub key_pos: Option<Pos>,
}

impl Node {
    /// The best place to point at for this node: a scalar's own position; for
    /// a mapping, a list or a null, the key that introduces it.
    pub fn at(&self) -> Pos {
        match &self.value {
            Value::Scalar(s) if s.kind != ScalarKind::Null => self.pos,
            _ => self.key_pos.unwrap_or(self.pos),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar, already resolved with YAML 1.1 rules.
    Scalar(Scalar),
    Seq(Vec<Node>),
    /// Entries in file order; duplicates are kept so the decoder can report them.
    Map(Vec<(Node, Node)>),
}

/// A resolved scalar: `text` is what was written (after quote processing).
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub text: String,
    pub kind: ScalarKind,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScalarKind {
    Null,
    Bool(bool),
    Int(i64),
    Float,
    Str,
}

/// Why the text is not a YAML document we can read.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub message: String,
    pub pos: Pos,
}

/// Alias expansion beyond this many nodes is refused ("billion laughs").
const MAX_NODES: usize = 1_000_000;
/// Nesting beyond this depth is refused; a config needs about six levels.
const MAX_DEPTH: usize = 200;

/// Parses one YAML document. An empty document yields `None`.
pub fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let mut parser = Parser::new_from_str(text);
    let mut builder = Builder::default();
    let mut documents = 0usize;
    loop {
        let (event, mark) = parser.next_token().map_err(|e| SyntaxError {
            message: e.info().to_string(),
            pos: pos_of(e.marker()),
        })?;
        match event {
            Event::StreamEnd => break,
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Err(SyntaxError {
                        message:
                            "expected a single document in the stream, but found another document"
                                .into(),
                        pos: pos_of(&mark),
                    });
                }
            }
            other => builder.event(other, pos_of(&mark))?,
        }
    }
    Ok(builder.root)
}

fn pos_of(mark: &Marker) -> Pos {
    // yaml-rust2 markers: 1-based lines, 0-based columns.
    Pos {
        line: mark.line(),
        column: mark.col() + 1,
    }
}

enum Open {
    Seq(Node, usize),
    Map(Node, usize, Option<Node>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    nodes: usize,
}

impl Builder {
    fn event(&mut self, event: Event, pos: Pos) -> Result<(), SyntaxError> {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let kind = resolve(&text, style, tag.as_ref());
                let node = Node {
                    value: Value::Scalar(Scalar { text, kind }),
                    pos,
                    key_pos: None,
                };
                self.finish(node, anchor, pos)
            }
            Event::SequenceStart(anchor, _) => self.open(
                Open::Seq(
                    Node {
                        value: Value::Seq(Vec::new()),
                        pos,
                        key_pos: None,
                    },
                    anchor,
                ),
                pos,
            ),
            Event::MappingStart(anchor, _) => self.open(
                Open::Map(
                    Node {
                        value: Value::Map(Vec::new()),
                        pos,
                        key_pos: None,
                    },
                    anchor,
                    None,
                ),
                pos,
            ),
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Open::Seq(node, anchor)) => self.finish(node, anchor, pos),
                Some(Open::Map(mut node, anchor, None)) => {
                    // A block mapping's start marker is not where a reader
                    // looks; its first key is.
                    if let Value::Map(entries) = &node.value {
                        if let Some((first, _)) = entries.first() {
                            node.pos = first.pos;
                        }
                    }
                    self.finish(node, anchor, pos)
                }
                _ => Err(SyntaxError {
                    message: "unbalanced collection".into(),
                    pos,
                }),
            },
            Event::Alias(id) => {
                let Some(target) = self.anchors.get(&id).cloned() else {
                    return Err(SyntaxError {
                        message: "alias refers to an unknown anchor".into(),
                        pos,
                    });
                };
                self.nodes += count(&target);
                let mut node = target;
                node.pos = pos;
                node.key_pos = None;
                self.finish(node, 0, pos)
            }
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => Ok(()),
            Event::StreamEnd | Event::DocumentStart => Ok(()),
        }
    }

    fn open(&mut self, open: Open, pos: Pos) -> Result<(), SyntaxError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(SyntaxError {
                message: format!("nesting deeper than {MAX_DEPTH} levels"),
                pos,
            });
        }
        self.stack.push(open);
        Ok(())
    }

    /// Attaches a completed node to its parent (or makes it the root).
    fn finish(&mut self, node: Node, anchor: usize, pos: Pos) -> Result<(), SyntaxError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(SyntaxError {
                message: format!(
                    "document has more than {MAX_NODES} nodes (after alias expansion)"
                ),
                pos,
            });
        }
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Open::Seq(seq, _)) => {
                if let Value::Seq(items) = &mut seq.value {
                    items.push(node);
                }
            }
            Some(Open::Map(map, _, pending)) => match pending.take() {
                None => *pending = Some(node),
                Some(key) => {
                    if let Value::Map(entries) = &mut map.value {
                        let mut node = node;
                        node.key_pos = Some(key.pos);
                        entries.push((key, node));
                    }
                }
            },
        }
        Ok(())
    }
}

fn count(node: &Node) -> usize {
    match &node.value {
        Value::Scalar(_) => 1,
        Value::Seq(items) => 1 + items.iter().map(count).sum::<usize>(),
        Value::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| count(k) + count(v))
                .sum::<usize>()
        }
    }
}

/// YAML 1.1 resolution of a scalar, as PyYAML's `safe_load` does it.
fn resolve(text: &str, style: TScalarStyle, tag: Option<&Tag>) -> ScalarKind {
    if let Some(tag) = tag {
        if tag.handle == "!!" || tag.handle == "tag:yaml.org,2002:" {
            match tag.suffix.as_str() {
                "str" => return ScalarKind::Str,
                "null" => return ScalarKind::Null,
                _ => {}
            }
        }
    }
    if style != TScalarStyle::Plain {
        return ScalarKind::Str;
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => ScalarKind::Null,
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            ScalarKind::Bool(true)
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            ScalarKind::Bool(false)
        }
        _ => {
            if let Some(i) = parse_int(text) {
                ScalarKind::Int(i)
            } else if is_float(text) {
                ScalarKind::Float
            } else {
                ScalarKind::Str
            }
        }
    }
}

/// YAML 1.1 integers: decimal, `0x…`, `0b…`, `0…` octal, `_` separators.
pub fn parse_int(text: &str) -> Option<i64> {
    let (negative, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    // Every form starts with a digit; most scalars of a config are not
    // numbers, and this says so before any copying.
    if !body.as_bytes().first()?.is_ascii_digit() {
        return None;
    }
    let cleaned: std::borrow::Cow<str> = if body.contains('_') {
        body.chars()
            .filter(|c| *c != '_')
            .collect::<String>()
            .into()
    } else {
        body.into()
    };
    let value = if let Some(hex) = cleaned.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(bin) = cleaned.strip_prefix("0b") {
        i64::from_str_radix(bin, 2).ok()?
    } else if cleaned.len() > 1 && cleaned.starts_with('0') {
        i64::from_str_radix(&cleaned[1..], 8).ok()?
    } else if cleaned.bytes().all(|b| b.is_ascii_digit()) {
        cleaned.parse().ok()?
    } else {
        return None;
    };
    Some(if negative { -value } else { value })
}

fn is_float(text: &str) -> bool {
    let body = text.trim_start_matches(['-', '+']);
    if matches!(body, ".inf" | ".Inf" | ".INF" | ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    let mut digits = false;
    let mut dot = false;
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '0'..='9' => digits = true,
            '_' if digits => {}
            '.' if !dot => dot = true,
            'e' | 'E' if digits && dot => {
                if matches!(chars.peek(), Some('+' | '-')) {
                    chars.next();
                }
                let rest: String = chars.collect();
                return !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit());
            }
            _ => return false,
        }
    }
    digits && dot
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(text: &str) -> ScalarKind {
        match parse(&format!("k: {text}\n")).unwrap().unwrap().value {
            Value::Map(entries) => match &entries[0].1.value {
                Value::Scalar(s) => s.kind,
                other => panic!("not a scalar: {other:?}"),
            },
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn yaml_1_1_booleans_and_nulls() {
        assert_eq!(scalar("yes"), ScalarKind::Bool(true));
        assert_eq!(scalar("Off"), ScalarKind::Bool(false));
        assert_eq!(scalar("'no'"), ScalarKind::Str);
        assert_eq!(scalar("~"), ScalarKind::Null);
        assert_eq!(scalar(""), ScalarKind::Null);
        assert_eq!(scalar("!!str 12"), ScalarKind::Str);
    }

    #[test]
    fn numbers() {
        assert_eq!(scalar("2024"), ScalarKind::Int(2024));
        assert_eq!(scalar("0x1f"), ScalarKind::Int(31));
        assert_eq!(scalar("010"), ScalarKind::Int(8));
        assert_eq!(scalar("1_000"), ScalarKind::Int(1000));
        assert_eq!(scalar("1.5"), ScalarKind::Float);
        assert_eq!(scalar("1.0e5"), ScalarKind::Float);
        assert_eq!(scalar("\"2024\""), ScalarKind::Str);
        assert_eq!(scalar("1.2.3"), ScalarKind::Str);
        assert_eq!(scalar("/mnt/x"), ScalarKind::Str);
    }

    #[test]
    fn positions_are_one_based() {
        let root = parse("a:\n  b: c\n").unwrap().unwrap();
        let Value::Map(entries) = root.value else {
            panic!()
        };
        assert_eq!(entries[0].0.pos, Pos { line: 1, column: 1 });
        let Value::Map(inner) = &entries[0].1.value else {
            panic!()
        };
        assert_eq!(inner[0].1.pos, Pos { line: 2, column: 6 });
    }

    #[test]
    fn aliases_expand_and_laughs_are_refused() {
        let root = parse("a: &x [1, 2]\nb: *x\n").unwrap().unwrap();
        let Value::Map(entries) = root.value else {
            panic!()
        };
        assert_eq!(entries[1].1.pos.line, 2);
        assert!(matches!(&entries[1].1.value, Value::Seq(v) if v.len() == 2));

        let mut laughs = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            laughs.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(parse(&laughs).unwrap_err().message.contains("nodes"));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        assert!(parse(&deep).is_err());
    }

    #[test]
    fn second_document_is_refused() {
        assert!(parse("a: 1\n---\nb: 2\n").is_err());
    }
}
