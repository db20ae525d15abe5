//! The shell runtime: `templates/lib.sh` (and `lib-mount.sh`), the
//! operations a run performs on a host, written once in POSIX sh. Generated
//! scripts embed it, `nbkp run` sends it to every remote host's shell, and
//! the plan takes single functions from it (rsync's priority wrapper). It
//! depends on nothing of nbkp: every layer above may use it.

/// The whole runtime library.
pub const LIB: &str = concat!(
    include_str!("../templates/lib.sh"),
    include_str!("../templates/lib-mount.sh")
);

/// The definition of function `name` in the library, from its `name() {`
/// line to its closing `}` line, with the newline after it.
pub fn function(name: &str) -> Option<&'static str> {
    let start = LIB.find(&format!("\n{name}() {{\n"))? + 1;
    let len = LIB[start..].find("\n}\n")? + 3;
    Some(&LIB[start..start + len])
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_function_is_its_whole_definition() {
        let f = super::function("nbkp_unlock").unwrap();
        assert!(
            f.starts_with("nbkp_unlock() {\n") && f.ends_with("\n}\n"),
            "{f}"
        );
        assert!(super::function("nbkp_no_such_function").is_none());
    }
}
