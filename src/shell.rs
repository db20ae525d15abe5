//! The one place text becomes shell syntax.

/// Quotes one word for a POSIX shell; plain words stay as they are.
pub fn quote(word: &str) -> String {
    shell_escape::unix::escape(word.into()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quoting() {
        assert_eq!(quote("-a"), "-a");
        assert_eq!(quote("--filter=+ *.jpg"), "'--filter=+ *.jpg'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote(""), "''");
    }
}
