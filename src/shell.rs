//! The one place text becomes shell syntax.

/// Quotes one word for a POSIX shell; plain words stay as they are.
///
/// Words made only of `[A-Za-z0-9_@%+=:,./-]` are never special to a POSIX
/// shell (as the Python nbkp quotes them); they stay bare so nested ssh
/// command lines remain readable. Everything else is single-quoted by
/// shell-escape.
pub fn quote(word: &str) -> String {
    quoted(word).into_owned()
}

/// [`quote`], borrowing the word when it stays as it is.
pub fn quoted(word: &str) -> std::borrow::Cow<'_, str> {
    let class = class(word);
    if let Class::Plain = class {
        return word.into();
    }
    let mut out = String::with_capacity(word.len() + 2);
    write(&mut out, word, class);
    out.into()
}

/// [`quote`], appended to `out`: the script is built from tens of thousands
/// of quoted words, and appending spares an allocation for each.
///
/// A word that is not plain is single-quoted by shell-escape (whose own
/// plain set is a subset of ours, so it always quotes what reaches it).
pub fn quote_into(out: &mut String, word: &str) {
    write(out, word, class(word));
}

/// [`quote_into`] of `head` followed by `tail`, without joining them
/// first (a path and its suffix, in the fixes of thousands of checks).
pub fn quote_pair_into(out: &mut String, head: &str, tail: &str) {
    match class_of(seen(head) | seen(tail), head.len() + tail.len()) {
        Class::Plain => {
            out.push_str(head);
            out.push_str(tail);
        }
        Class::Quoted => {
            out.reserve(head.len() + tail.len() + 2);
            out.push('\'');
            out.push_str(head);
            out.push_str(tail);
            out.push('\'');
        }
        Class::Escaped => quote_into(out, &[head, tail].concat()),
    }
}

/// Appends `word` as its class says.
fn write(out: &mut String, word: &str, class: Class) {
    match class {
        Class::Plain => out.push_str(word),
        // shell-escape changes only `'` and `!` inside its quotes; without
        // them its result is the word between two quotes, written here
        // without the copy it would make character by character (a large
        // script quotes tens of thousands of messages and paths). A test
        // holds the two equal.
        Class::Quoted => {
            out.reserve(word.len() + 2);
            out.push('\'');
            out.push_str(word);
            out.push('\'');
        }
        Class::Escaped => out.push_str(&shell_escape::unix::escape(word.into())),
    }
}

/// How [`quote_into`] writes a word.
enum Class {
    Plain,
    Quoted,
    Escaped,
}

/// One branchless pass over the bytes, through a table of their classes:
/// a large script's words are scanned once each.
fn class(word: &str) -> Class {
    class_of(seen(word), word.len())
}

/// The [`BYTE_CLASS`] bits of the bytes of `text`.
fn seen(text: &str) -> u8 {
    text.bytes()
        .fold(0u8, |seen, b| seen | BYTE_CLASS[b as usize])
}

/// The class of a word of `len` bytes whose bytes have the bits `seen`.
fn class_of(seen: u8, len: usize) -> Class {
    if seen & SPECIAL != 0 {
        Class::Escaped
    } else if seen & NOT_PLAIN != 0 || len == 0 {
        Class::Quoted
    } else {
        Class::Plain
    }
}

/// Bits of [`BYTE_CLASS`]: a byte outside the plain set (see [`is_plain`]),
/// and `'` or `!`, which shell-escape writes differently.
const NOT_PLAIN: u8 = 1;
const SPECIAL: u8 = 2;

const BYTE_CLASS: [u8; 256] = {
    let mut table = [0; 256];
    let mut b = 0;
    while b < 256 {
        if !PLAIN[b] {
            table[b] = NOT_PLAIN;
        }
        if b == b'\'' as usize || b == b'!' as usize {
            table[b] |= SPECIAL;
        }
        b += 1;
    }
    table
};

/// Made only of characters no shell (nor rsync's `-e` splitting) treats specially.
fn is_plain(word: &str) -> bool {
    !word.is_empty() && word.bytes().all(|b| PLAIN[b as usize])
}

/// Which bytes [`is_plain`] accepts, as a table: it is asked about every
/// byte of every word in the script.
const PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'_' | b'@' | b'%' | b'+' | b'=' | b':' | b',' | b'.' | b'/' | b'-'
            );
        b += 1;
    }
    table
};

/// Quotes one word of rsync's `-e` command. rsync splits that string itself,
/// honouring `'…'` and `"…"` but not backslashes, so an embedded `'` is
/// written `'"'"'` (which a POSIX shell reads the same way).
pub fn quote_rsh(word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 2);
    quote_rsh_into(&mut out, word);
    out
}

/// [`quote_rsh`], appended to `out`.
pub fn quote_rsh_into(out: &mut String, word: &str) {
    if is_plain(word) {
        out.push_str(word);
        return;
    }
    out.push('\'');
    for (i, part) in word.split('\'').enumerate() {
        if i > 0 {
            out.push_str("'\"'\"'");
        }
        out.push_str(part);
    }
    out.push('\'');
}

/// A systemd `ExecStart=` command line. systemd expands `%` specifiers on
/// the whole line, so `%` is doubled everywhere; it substitutes `$VAR` in the
/// arguments but not in the program path, so `$` is doubled in arguments
/// only. A word that is not plain is double-quoted with C-style escapes,
/// which systemd's own splitting undoes.
pub fn systemd_exec_line<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .enumerate()
        .map(|(i, w)| quote_systemd(w.as_ref(), i > 0))
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote_systemd(word: &str, expands_vars: bool) -> String {
    let mut body = String::new();
    for c in word.chars() {
        match c {
            '%' => body.push_str("%%"),
            '$' if expands_vars => body.push_str("$$"),
            '\\' => body.push_str("\\\\"),
            '"' => body.push_str("\\\""),
            '\n' => body.push_str("\\n"),
            '\t' => body.push_str("\\t"),
            c if c.is_control() => {
                let mut utf8 = [0; 4];
                for b in c.encode_utf8(&mut utf8).bytes() {
                    body.push_str(&format!("\\x{b:02x}"));
                }
            }
            c => body.push(c),
        }
    }
    if is_plain(word) {
        body
    } else {
        format!("\"{body}\"")
    }
}

/// A shell command line for a crontab: every word quoted by [`quote`], then
/// `%` escaped, since cron turns an unescaped `%` into a newline (and drops
/// the backslash before passing the line to sh).
pub fn cron_command<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
        .replace('%', "\\%")
}

#[cfg(test)]
mod tests {
    use super::{cron_command, quote, quote_pair_into, quote_rsh, systemd_exec_line};

    #[test]
    fn quoting_is_shell_escapes_for_every_word_that_is_not_plain() {
        let pieces = [
            "",
            "a",
            " ",
            "'",
            "!",
            "\"",
            "$",
            "`",
            "\\",
            "\n",
            "\t",
            "*",
            "?",
            "~",
            "#",
            "é",
            "日本",
            "--filter=- *.tmp",
            "/it's",
            "$(rm -rf ~)",
            "a!b",
            "''",
        ];
        let mut checked = 0;
        for a in pieces {
            for b in pieces {
                let word = format!("{a}{b}x{b}{a}");
                let ours = quote(&word);
                if ours != word {
                    assert_eq!(
                        ours,
                        shell_escape::unix::escape(word.as_str().into()),
                        "{word:?}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 400, "{checked}");
        for a in pieces {
            for b in pieces {
                let mut pair = String::new();
                quote_pair_into(&mut pair, a, b);
                assert_eq!(pair, quote(&format!("{a}{b}")), "{a:?} {b:?}");
            }
        }
        assert_eq!(quote(""), shell_escape::unix::escape("".into()));
    }

    #[test]
    fn systemd_and_cron_quoting() {
        assert_eq!(
            systemd_exec_line(&["/usr/bin/nbkp", "run"]),
            "/usr/bin/nbkp run"
        );
        assert_eq!(
            systemd_exec_line(&["/a $b/nbkp", "100%", "a b", "$HOME \"q\" \\", "it's\n", ""]),
            "\"/a $b/nbkp\" 100%% \"a b\" \"$$HOME \\\"q\\\" \\\\\" \"it's\\n\" \"\""
        );
        assert_eq!(
            cron_command(&["/bin/nbkp", "-c", "/a b/50%.yaml"]),
            "/bin/nbkp -c '/a b/50\\%.yaml'"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("-a"), "-a");
        assert_eq!(quote("--filter=+ *.jpg"), "'--filter=+ *.jpg'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("root@host:%h"), "root@host:%h");
        assert_eq!(quote("~/x"), "'~/x'");
        assert_eq!(quote("a'b!c"), "'a'\\''b'\\!'c'");
        assert_eq!(quote_rsh("a b"), "'a b'");
        assert_eq!(quote_rsh("it's"), "'it'\"'\"'s'");
    }
}
