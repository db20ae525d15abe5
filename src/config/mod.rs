//! Finding, reading and validating the config file.
//!
//! `yaml` turns text into positioned nodes, `decode` turns nodes into entries
//! (collecting field problems), `validate` checks what spans entries. Every
//! problem carries file, line, column and field path.

mod daemon;
mod declared;
mod decode;
pub use decode::known_keys;
pub mod diagnostic;
mod fields;
mod hooks;
pub mod model;
mod monitoring;
pub mod paths;
mod validate;
pub mod yaml;

use std::path::{Path, PathBuf};

pub use diagnostic::{ConfigError, Diagnostic, Severity};
pub use model::*;

/// A config larger than this is refused before parsing; real ones are a few KiB.
pub const MAX_CONFIG_BYTES: u64 = 8 * 1024 * 1024;

/// A valid config, where it came from, and the warnings it produced.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub path: PathBuf,
    pub source: String,
    pub warnings: Vec<Diagnostic>,
}

impl Loaded {
    /// Warnings in the human form, one block each.
    pub fn render_warnings(&self) -> Vec<String> {
        self.warnings
            .iter()
            .map(|w| w.render(&self.path, Some(&self.source)))
            .collect()
    }
}

/// Where the config is looked for when `-c` is not given (spec §1.1).
pub fn search_paths() -> Vec<PathBuf> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let home = env("HOME").map(PathBuf::from).unwrap_or_default();
    let config_home = env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".config"));
    let mut paths = vec![config_home.join("nbkp/config.yaml")];
    if cfg!(target_os = "macos") {
        paths.push(home.join("Library/Application Support/nbkp/config.yaml"));
        paths.push(PathBuf::from(
            "/Library/Application Support/nbkp/config.yaml",
        ));
    } else {
        let site = env("XDG_CONFIG_DIRS")
            .and_then(|dirs| dirs.split(':').find(|d| !d.is_empty()).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/etc/xdg"));
        paths.push(site.join("nbkp/config.yaml"));
    }
    let mut unique = Vec::new();
    for p in paths {
        if !unique.contains(&p) {
            unique.push(p);
        }
    }
    unique
}

/// Loads the config named by `-c`, or the first one on the search path.
pub fn load(explicit: Option<&Path>) -> Result<Loaded, ConfigError> {
    let path = match explicit {
        // Messages name the file as the user wrote it.
        Some(p) => p.to_path_buf(),
        None => {
            let searched = search_paths();
            match searched.iter().find(|p| p.is_file()) {
                Some(p) => p.clone(),
                None => {
                    let list: Vec<String> =
                        searched.iter().map(|p| p.display().to_string()).collect();
                    return Err(ConfigError::simple(
                        "no-config-found",
                        None,
                        format!(
                            "No config file found. Searched: {}. Create one at {} or pass --config PATH (see docs/config.md for the format), or run `nbkp demo seed` for a sample setup",
                            list.join(", "),
                            list[0]
                        ),
                    ));
                }
            }
        }
    };
    let text = read(&path)?;
    load_str(&text, &path, &paths::Home::from_env())
}

fn read(path: &Path) -> Result<String, ConfigError> {
    let fail = |reason, message| {
        Err(ConfigError::simple(
            reason,
            Some(path.to_path_buf()),
            message,
        ))
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return fail(
                "file-not-found",
                format!("Config file not found: {}", path.display()),
            )
        }
        Err(e) => return fail("unreadable", format!("cannot read {}: {e}", path.display())),
    };
    if meta.is_dir() {
        return fail(
            "not-a-file",
            format!(
                "{} is a directory; pass the config file itself",
                path.display()
            ),
        );
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return fail(
            "too-large",
            format!(
                "{} is {} bytes; a config file is at most {} bytes (is this the right file?)",
                path.display(),
                meta.len(),
                MAX_CONFIG_BYTES
            ),
        );
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return fail("unreadable", format!("cannot read {}: {e}", path.display())),
    };
    match String::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(e) => {
            let offset = e.utf8_error().valid_up_to();
            let valid = &e.as_bytes()[..offset];
            let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
            let line_start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let column = offset - line_start + 1;
            let mut err = ConfigError::simple(
                "invalid-yaml",
                Some(path.to_path_buf()),
                format!(
                    "Invalid YAML in {}: not UTF-8 text (invalid byte at line {line}, byte offset {offset})",
                    path.display()
                ),
            );
            err.diagnostics.push(Diagnostic::error(
                "invalid-yaml",
                Vec::new(),
                Some(yaml::Pos { line, column }),
                format!("not UTF-8 text: the byte at offset {offset} does not start a valid character (the column counts bytes); save the config as UTF-8"),
            ));
            Err(err)
        }
    }
}

/// What a config's top level looks like, for a file that is not a mapping.
const TOP_LEVEL_HINT: &str =
    "a config is a mapping of sections: `volumes:`, `sync-endpoints:`, `syncs:` (and `ssh-endpoints:`)";

/// Parses and validates config text; `path` is used in messages only.
pub fn load_str(text: &str, path: &Path, home: &paths::Home) -> Result<Loaded, ConfigError> {
    let with_diags =
        |reason: &'static str, message: String, diagnostics: Vec<Diagnostic>| ConfigError {
            reason,
            file: Some(path.to_path_buf()),
            source_text: Some(text.to_string()),
            message,
            diagnostics,
        };
    let root = match yaml::parse(text) {
        Ok(Some(root)) => root,
        Ok(None) => {
            return Err(with_diags(
                "not-a-mapping",
                "Config file must be a YAML mapping (the file is empty)".into(),
                vec![Diagnostic::error(
                    "not-a-mapping",
                    Vec::new(),
                    Some(yaml::Pos { line: 1, column: 1 }),
                    format!("the file has no content; {TOP_LEVEL_HINT}"),
                )],
            ))
        }
        Err(e) => {
            let d = Diagnostic::error("invalid-yaml", Vec::new(), Some(e.pos), e.message.clone());
            return Err(with_diags(
                "invalid-yaml",
                format!(
                    "Invalid YAML in {}: {} at line {} column {}",
                    path.display(),
                    e.message,
                    e.pos.line,
                    e.pos.column
                ),
                vec![d],
            ));
        }
    };
    if !matches!(root.value, yaml::Value::Map(_)) {
        return Err(with_diags(
            "not-a-mapping",
            format!(
                "Config file must be a YAML mapping (found {} at line {})",
                fields::describe(&root),
                root.pos.line
            ),
            vec![Diagnostic::error(
                "not-a-mapping",
                Vec::new(),
                Some(root.pos),
                format!(
                    "the file is {}, not a mapping; {TOP_LEVEL_HINT}",
                    fields::describe(&root)
                ),
            )],
        ));
    }
    let mut d = diagnostic::Diagnostics::default();
    let decoded = decode::decode(&root, home, &mut d);
    if let Some(decoded) = &decoded {
        // Cross-entry rules run on whatever decoded; with field errors present,
        // only their errors are kept (orphan warnings could be false alarms).
        let partial = d.has_errors();
        let mut cross = diagnostic::Diagnostics::default();
        validate::validate(&decoded.config, &decoded.declared, &mut cross);
        d.items.extend(
            cross
                .items
                .into_iter()
                .filter(|x| !partial || x.severity == Severity::Error),
        );
    }
    let mut items = d.items;
    // Errors first, each group in file order.
    items.sort_by_key(|x| {
        (
            x.severity != Severity::Error,
            x.line.unwrap_or(0),
            x.column.unwrap_or(0),
        )
    });
    let errors = items
        .iter()
        .filter(|x| x.severity == Severity::Error)
        .count();
    match decoded {
        Some(decoded) if errors == 0 => Ok(Loaded {
            config: decoded.config,
            path: path.to_path_buf(),
            source: text.to_string(),
            warnings: items,
        }),
        _ => {
            let only_cycles = items
                .iter()
                .filter(|x| x.severity == Severity::Error)
                .all(|x| x.kind == "cyclic-dependency");
            let reason = if only_cycles && errors > 0 {
                "cyclic-dependency"
            } else {
                "validation"
            };
            let plural = if errors == 1 { "" } else { "s" };
            Err(with_diags(
                reason,
                format!("{errors} problem{plural} in {}", path.display()),
                items,
            ))
        }
    }
}
