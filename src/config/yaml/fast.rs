//! A quick reader for the plain shape most configs have: block mappings
//! whose values are plain or quoted one-line scalars, nested block
//! mappings, or one-line flow mappings and sequences of the same. It gives
//! the events yaml-rust2 would give, at the same positions, to the same
//! [`super::Builder`]; anything outside that shape (block sequences, nulls,
//! anchors, tags, escapes, multi-line scalars, `:` or `#` inside a scalar,
//! tabs, non-ASCII text, a syntax error...) makes it give up, and
//! yaml-rust2 reads the text instead. yaml-rust2 scans a character at a
//! time with several allocations per scalar: a config with a thousand syncs
//! took it about 64 M instructions, this about 21 M (the tree included).
//!
//! A test holds both readers equal on every config of the repository and
//! on texts made to probe the edges of the shape.

#[cfg(test)]
mod tests;

use yaml_rust2::parser::Event;
use yaml_rust2::scanner::TScalarStyle;

use super::{Builder, Node, Pos, MAX_DEPTH, MAX_NODES};

/// The tree of `text`, or `None` when it is not of the shape read here.
pub(super) fn read(text: &str) -> Option<Node> {
    // Columns are counted in bytes here, in characters by yaml-rust2.
    if !text.is_ascii() || text.contains(['\t', '\r']) {
        return None;
    }
    // Events go to the builder as they are read, not kept.
    let mut out = Sink::default();
    // The indentation of each open block mapping, outermost first.
    let mut open: Vec<usize> = Vec::new();
    // The previous line was `key:`, so this one starts a nested mapping.
    let mut nested = false;
    for (n, line) in text.split('\n').enumerate() {
        let rest = line.trim_start_matches(' ');
        if rest.is_empty() || rest.starts_with('#') {
            continue;
        }
        let indent = line.len() - rest.len();
        let at = |col: usize| Pos {
            line: n + 1,
            column: col + 1,
        };
        if nested || open.is_empty() {
            if open.last().is_some_and(|&outer| indent <= outer) {
                return None;
            }
            out.push((Event::MappingStart(0, None), at(indent)))?;
            open.push(indent);
            nested = false;
        } else {
            while open.last().is_some_and(|&i| indent < i) {
                open.pop();
                out.push((Event::MappingEnd, at(indent)))?;
            }
            if open.last() != Some(&indent) {
                return None;
            }
        }
        let mut cur = Cursor {
            line,
            i: indent,
            at: &at,
        };
        let key = cur.take(is_key_byte);
        if key.is_empty() || !cur.eat(b':') {
            return None;
        }
        out.push((plain(key), at(indent)))?;
        cur.skip_spaces();
        if cur.at_end_or_comment() {
            nested = true;
            continue;
        }
        if cur.i == indent + key.len() + 1 {
            // `key:value` is one plain scalar to YAML.
            return None;
        }
        cur.value(&mut out, false)?;
        cur.skip_spaces();
        if !cur.at_end_or_comment() {
            return None;
        }
    }
    if nested || open.is_empty() {
        return None;
    }
    let end = Pos {
        line: text.split('\n').count(),
        column: 1,
    };
    for _ in open {
        out.push((Event::MappingEnd, end))?;
    }
    out.builder.root
}

/// Hands events to the builder, well within its limits: past them it
/// refuses a text with an error naming a position, and yaml-rust2's
/// positions are the ones to name.
#[derive(Default)]
struct Sink {
    builder: Builder,
    events: usize,
    depth: usize,
}

impl Sink {
    fn push(&mut self, (event, pos): (Event, Pos)) -> Option<()> {
        match event {
            Event::MappingStart(..) | Event::SequenceStart(..) => self.depth += 1,
            Event::MappingEnd | Event::SequenceEnd => self.depth -= 1,
            _ => {}
        }
        self.events += 1;
        if self.depth >= MAX_DEPTH / 2 || self.events >= MAX_NODES / 2 {
            return None;
        }
        self.builder.event(event, pos).ok()
    }
}

/// A plain scalar's event.
fn plain(text: &str) -> Event {
    Event::Scalar(text.to_owned(), TScalarStyle::Plain, 0, None)
}

/// Bytes of a key.
fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

/// Bytes that may start a plain scalar: none is an indicator of YAML.
fn starts_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'~')
}

/// Bytes that may follow in a plain scalar (a space too, inside).
fn in_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'_' | b'.' | b'/' | b'~' | b'@' | b'+' | b'=' | b'%' | b'-'
        )
}

struct Cursor<'l, 'a> {
    line: &'l str,
    i: usize,
    at: &'a dyn Fn(usize) -> Pos,
}

impl<'l> Cursor<'l, '_> {
    fn peek(&self) -> Option<u8> {
        self.line.as_bytes().get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.i += usize::from(hit);
        hit
    }

    fn take(&mut self, f: impl Fn(u8) -> bool) -> &'l str {
        let line = self.line;
        let start = self.i;
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
        &line[start..self.i]
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
    }

    /// Nothing left but a comment (after at least one space).
    fn at_end_or_comment(&self) -> bool {
        match self.peek() {
            None => true,
            Some(b'#') => self.i > 0 && self.line.as_bytes()[self.i - 1] == b' ',
            _ => false,
        }
    }

    /// One value: a scalar, or a flow mapping or sequence (`flow`: inside
    /// one already, where `,` `]` `}` end a plain scalar).
    fn value(&mut self, out: &mut Sink, flow: bool) -> Option<()> {
        let start = self.i;
        let pos = (self.at)(start);
        match self.peek()? {
            b'{' => {
                self.i += 1;
                out.push((Event::MappingStart(0, None), pos))?;
                self.entries(out, b'}', |cur, out| {
                    let key_at = (cur.at)(cur.i);
                    let key = cur.take(is_key_byte);
                    if key.is_empty() || !cur.eat(b':') || cur.peek() != Some(b' ') {
                        return None;
                    }
                    out.push((plain(key), key_at))?;
                    cur.skip_spaces();
                    cur.value(out, true)
                })?;
                out.push((Event::MappingEnd, (self.at)(self.i - 1)))?;
            }
            b'[' => {
                self.i += 1;
                out.push((Event::SequenceStart(0, None), pos))?;
                self.entries(out, b']', |cur, out| cur.value(out, true))?;
                out.push((Event::SequenceEnd, (self.at)(self.i - 1)))?;
            }
            q @ (b'"' | b'\'') => {
                self.i += 1;
                let text = self.take(|b| b != q && b != b'\\');
                let text = text.to_owned();
                if !self.eat(q) || self.peek() == Some(q) {
                    return None;
                }
                let style = if q == b'"' {
                    TScalarStyle::DoubleQuoted
                } else {
                    TScalarStyle::SingleQuoted
                };
                out.push((Event::Scalar(text, style, 0, None), pos))?;
            }
            b if starts_plain(b) => {
                self.take(|b| in_plain(b) || b == b' ');
                let text = self.line[start..self.i].trim_end_matches(' ');
                // What stopped it must end the scalar where it stands.
                match self.peek() {
                    None => {}
                    Some(b'#') if !flow && self.line.as_bytes()[self.i - 1] == b' ' => {}
                    Some(b',' | b']' | b'}') if flow => {}
                    _ => return None,
                }
                out.push((plain(text), pos))?;
            }
            _ => return None,
        }
        Some(())
    }

    /// Entries up to `close`, separated by `, `; at least one, no trailing comma.
    fn entries(
        &mut self,
        out: &mut Sink,
        close: u8,
        entry: impl Fn(&mut Self, &mut Sink) -> Option<()>,
    ) -> Option<()> {
        self.skip_spaces();
        loop {
            entry(self, out)?;
            self.skip_spaces();
            if self.eat(close) {
                return Some(());
            }
            if !self.eat(b',') {
                return None;
            }
            self.skip_spaces();
            if matches!(self.peek(), None | Some(b']' | b'}' | b',')) {
                return None;
            }
        }
    }
}
