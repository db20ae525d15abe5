//! Path normalisation, as the Python nbkp does it (so the same config means
//! the same directories), plus `~` expansion for local paths.

use std::path::Path;

/// The local user's home directory and other users' homes, for `~` expansion.
/// Read once per load; injected so tests do not depend on the machine.
#[derive(Debug, Clone)]
pub struct Home {
    pub current: Option<String>,
    pub passwd: Option<String>,
}

impl Home {
    pub fn from_env() -> Home {
        Home {
            current: std::env::var("HOME").ok().filter(|h| !h.is_empty()),
            passwd: std::fs::read_to_string("/etc/passwd").ok(),
        }
    }

    fn of_user(&self, user: &str) -> Option<String> {
        self.passwd.as_deref()?.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() >= 6 && fields[0] == user).then(|| fields[5].to_string())
        })
    }

    /// Expands a leading `~` or `~user`; anything else is returned unchanged.
    /// Like Python's `expanduser`, an unknown user leaves the text as written.
    pub fn expand(&self, path: &str) -> String {
        let Some(rest) = path.strip_prefix('~') else {
            return path.to_string();
        };
        let (user, tail) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let home = if user.is_empty() {
            self.current.clone()
        } else {
            self.of_user(user)
        };
        match home {
            Some(home) => {
                let joined = format!("{}{tail}", home.trim_end_matches('/'));
                if joined.is_empty() {
                    "/".to_string()
                } else {
                    joined
                }
            }
            None => path.to_string(),
        }
    }
}

/// Lexical normalisation as Python's `pathlib` does it: repeated `/`
/// collapsed, `.` dropped, trailing `/` stripped, `..` kept, a leading `//` kept.
pub fn normalise_local(path: &str) -> String {
    let leading = if path.starts_with("//") && !path.starts_with("///") {
        "//"
    } else if path.starts_with('/') {
        "/"
    } else {
        ""
    };
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let joined = parts.join("/");
    match (leading, joined.is_empty()) {
        ("", true) => ".".to_string(),
        (lead, true) => lead.to_string(),
        (lead, false) => format!("{lead}{joined}"),
    }
}

/// Remote paths are only stripped of trailing slashes (the root stays `/`).
pub fn normalise_remote(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() && path.starts_with('/') {
        "/".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Leading and trailing `/` stripped; an empty result means the volume root.
pub fn normalise_subdir(subdir: &str) -> Option<String> {
    let trimmed = subdir.trim_matches('/');
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

pub fn is_absolute(path: &str) -> bool {
    Path::new(path).is_absolute()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home() -> Home {
        Home {
            current: Some("/home/me".into()),
            passwd: Some(
                "root:x:0:0:root:/root:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\n".into(),
            ),
        }
    }

    #[test]
    fn local_normalisation_matches_pathlib() {
        assert_eq!(normalise_local("/mnt/data/"), "/mnt/data");
        assert_eq!(normalise_local("//a//b/./c/../d/"), "//a/b/c/../d");
        assert_eq!(normalise_local("/"), "/");
        assert_eq!(normalise_local("///x"), "/x");
        assert_eq!(normalise_local("data/sub/"), "data/sub");
    }

    #[test]
    fn remote_normalisation_only_strips_trailing_slashes() {
        assert_eq!(normalise_remote("/volume1/backups/"), "/volume1/backups");
        assert_eq!(normalise_remote("///"), "/");
        assert_eq!(normalise_remote("/a//b/./"), "/a//b/.");
        assert_eq!(normalise_remote("~/backups/"), "~/backups");
    }

    #[test]
    fn subdirs() {
        assert_eq!(normalise_subdir("//x/y//").as_deref(), Some("x/y"));
        assert_eq!(normalise_subdir("/"), None);
        assert_eq!(normalise_subdir("a//b").as_deref(), Some("a//b"));
    }

    #[test]
    fn tilde_expansion() {
        let h = home();
        assert_eq!(h.expand("~"), "/home/me");
        assert_eq!(h.expand("~/x/"), "/home/me/x/");
        assert_eq!(h.expand("~bob/k"), "/home/bob/k");
        assert_eq!(h.expand("~nobody/k"), "~nobody/k");
        assert_eq!(h.expand("/abs/~"), "/abs/~");
        let root = Home {
            current: Some("/".into()),
            passwd: None,
        };
        assert_eq!(root.expand("~"), "/");
        assert_eq!(root.expand("~/x"), "/x");
    }
}
