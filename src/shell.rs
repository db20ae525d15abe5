//! The one place text becomes shell syntax.

/// Quotes one word for a POSIX shell; plain words stay as they are.
///
/// Words made only of `[A-Za-z0-9_@%+=:,./-]` are never special to a POSIX
/// shell (as the Python nbkp quotes them); they stay bare so nested ssh
/// command lines remain readable. Everything else is single-quoted by
/// shell-escape.
pub fn quote(word: &str) -> String {
    if is_plain(word) {
        word.to_string()
    } else {
        shell_escape::unix::escape(word.into()).into_owned()
    }
}

/// Made only of characters no shell (nor rsync's `-e` splitting) treats specially.
fn is_plain(word: &str) -> bool {
    !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(&b))
}

/// Quotes one word of rsync's `-e` command. rsync splits that string itself,
/// honouring `'…'` and `"…"` but not backslashes, so an embedded `'` is
/// written `'"'"'` (which a POSIX shell reads the same way).
pub fn quote_rsh(word: &str) -> String {
    if is_plain(word) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\"'\"'"))
    }
}

#[cfg(test)]
mod tests {
    use super::{quote, quote_rsh};

    #[test]
    fn quoting() {
        assert_eq!(quote("-a"), "-a");
        assert_eq!(quote("--filter=+ *.jpg"), "'--filter=+ *.jpg'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("root@host:%h"), "root@host:%h");
        assert_eq!(quote("~/x"), "'~/x'");
        assert_eq!(quote_rsh("a b"), "'a b'");
        assert_eq!(quote_rsh("it's"), "'it'\"'\"'s'");
    }
}
