//! Lines a reader can see whole: a script line longer than the width is
//! continued on the next (`\` and a newline, which the shell removes before
//! it reads words), broken only at a blank between words that no quote,
//! `${…}` or backquote is open across (`$(…)` holds words too), so the
//! words are the same.
//! Comments are wrapped as comments; here-documents are left as they are
//! (their lines are data, or code another shell reads).

/// The longest line a generated script has, where a line can be broken.
pub(crate) const WIDTH: usize = 160;

/// `script` with every line wider than `width` broken where it can be.
pub(super) fn wrap(script: &str, width: usize) -> String {
    let mut out = String::with_capacity(script.len() + script.len() / 32);
    let mut heredoc: Option<String> = None;
    for line in script.split_inclusive('\n') {
        let text = line.strip_suffix('\n').unwrap_or(line);
        if let Some(end) = &heredoc {
            if text == end {
                heredoc = None;
            }
            out.push_str(line);
            continue;
        }
        heredoc = heredoc_end(text);
        if text.len() <= width || text.chars().count() <= width {
            out.push_str(line);
            continue;
        }
        if text.trim_start().starts_with('#') {
            wrap_comment(&mut out, text, width);
        } else {
            wrap_code(&mut out, text, width);
        }
        if line.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// The terminator of a here-document that `line` starts, if any.
fn heredoc_end(line: &str) -> Option<String> {
    let at = line.find("<<")?;
    let rest = line[at + 2..].trim_start_matches('-');
    let word: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != ';' && *c != ')')
        .collect();
    let word = word.trim_matches(|c| c == '\'' || c == '"').to_string();
    (!word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then_some(word)
}

fn wrap_comment(out: &mut String, text: &str, width: usize) {
    let indent = &text[..text.len() - text.trim_start().len()];
    let body = text.trim_start().trim_start_matches('#').trim_start();
    let mut line = String::new();
    for word in body.split(' ') {
        if !line.is_empty()
            && indent.len() + 2 + line.chars().count() + 1 + word.chars().count() > width
        {
            out.push_str(&format!("{indent}# {line}\n"));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&format!("{indent}# {line}"));
}

/// Byte offsets of the blanks in `text` where a break keeps the words.
fn break_points(text: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    let mut points = Vec::new();
    // Open constructs, innermost last: b'\'', b'"', b'{' (`${`), b'(' (`$(`), b'`'.
    let mut open: Vec<u8> = Vec::new();
    let mut i = 0;
    let mut word_start = true;
    while i < bytes.len() {
        let b = bytes[i];
        match open.last() {
            Some(b'\'') => {
                if b == b'\'' {
                    open.pop();
                }
            }
            top => {
                let in_double = top == Some(&b'"');
                match b {
                    b'\\' => i += 1,
                    b'\'' if !in_double => open.push(b'\''),
                    b'"' if in_double => {
                        open.pop();
                    }
                    b'"' => open.push(b'"'),
                    b'$' if bytes.get(i + 1) == Some(&b'{') => {
                        open.push(b'{');
                        i += 1;
                    }
                    b'$' if bytes.get(i + 1) == Some(&b'(') => {
                        open.push(b'(');
                        i += 1;
                    }
                    b'(' if top == Some(&b'(') => open.push(b'('),
                    b'}' if top == Some(&b'{') => {
                        open.pop();
                    }
                    b')' if top == Some(&b'(') => {
                        open.pop();
                    }
                    b'`' if top == Some(&b'`') => {
                        open.pop();
                    }
                    b'`' => open.push(b'`'),
                    // A comment runs to the end of the line: no break after it.
                    // Inside `$(…)` words are words too.
                    b'#' if word_start && open.iter().all(|&o| o == b'(') => return points,
                    b' ' if open.iter().all(|&o| o == b'(') => points.push(i),
                    _ => {}
                }
            }
        }
        word_start = b == b' ' || b == b';' || b == b'|' || b == b'&';
        i += 1;
    }
    // A line that ends inside a construct continues on the next line of
    // the file: the blanks were not between words after all.
    if open.is_empty() {
        points
    } else {
        Vec::new()
    }
}

fn wrap_code(out: &mut String, text: &str, width: usize) {
    let indent = text.len() - text.trim_start().len();
    let cont = " ".repeat(indent + 4);
    let mut pieces = Vec::new();
    let mut from = 0;
    for p in break_points(text) {
        pieces.push(&text[from..p]);
        from = p + 1;
    }
    pieces.push(&text[from..]);
    // Greedy: as many words on a line as fit with the ` \` after them.
    let mut line = String::from(pieces[0]);
    for piece in &pieces[1..] {
        let wide = line.chars().count() + 1 + piece.chars().count() + 2 > width;
        if wide && !piece.is_empty() && !line.trim().is_empty() {
            out.push_str(line.trim_end());
            out.push_str(" \\\n");
            line = cont.clone();
            line.push_str(piece);
        } else {
            line.push(' ');
            line.push_str(piece);
        }
    }
    out.push_str(&line);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line the shell reads: continuations joined, blanks collapsed.
    fn joined(text: &str) -> String {
        text.replace(" \\\n", " ")
            .split(' ')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn long_lines_break_between_words_only() {
        let words: Vec<String> = (0..60).map(|i| format!("'w {i}'")).collect();
        let line = format!(
            "  rsync -a {} \"${{X:+a b}}\" \"$(echo a  b)\" end",
            words.join(" ")
        );
        let out = wrap(&format!("{line}\n"), 80);
        for l in out.lines() {
            assert!(l.chars().count() <= 80, "{l}");
        }
        assert!(out.lines().count() > 5, "{out}");
        assert_eq!(joined(&out).trim(), joined(&line).trim());
        // Never inside quotes or parameter expansions.
        assert!(out.contains("\"${X:+a b}\""), "{out}");
        assert!(out.contains("\"$(echo a  b)\""), "{out}");
        // The shell reads the same words.
        let sh = |text: &str| {
            let o = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "set -- {}\nprintf '%s|' \"$@\"",
                    text.trim_start().trim_start_matches("rsync")
                ))
                .output()
                .unwrap();
            String::from_utf8(o.stdout).unwrap()
        };
        assert_eq!(sh(&out), sh(&line));
    }

    #[test]
    fn comments_and_heredocs() {
        let long = "x ".repeat(100);
        let text = format!("# {long}\ncat <<'EOF'\n{long}\nEOF\n");
        let out = wrap(&text, 60);
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines.iter().take_while(|l| l.starts_with('#')).count() > 2,
            "{out}"
        );
        assert!(out.contains(&format!("\n{long}\nEOF\n")), "{out}");
    }

    #[test]
    fn an_unbreakable_line_stays() {
        let line = format!("x='{}'\n", "a ".repeat(100));
        assert_eq!(wrap(&line, 60), line);
    }
}
