//! Problems found while loading a config: where, what, and how bad.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::yaml::Pos;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem, pointing at the value that caused it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    #[serde(skip)]
    pub severity: Severity,
    /// Field path, e.g. `["syncs", "photos", "source"]`.
    pub loc: Vec<String>,
    /// Stable machine-readable code (the Python nbkp's codes where it has one).
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub message: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl Diagnostic {
    pub fn error(kind: &'static str, loc: Vec<String>, pos: Option<Pos>, message: String) -> Self {
        Self::new(Severity::Error, kind, loc, pos, message)
    }

    pub fn warning(
        kind: &'static str,
        loc: Vec<String>,
        pos: Option<Pos>,
        message: String,
    ) -> Self {
        Self::new(Severity::Warning, kind, loc, pos, message)
    }

    fn new(
        severity: Severity,
        kind: &'static str,
        loc: Vec<String>,
        pos: Option<Pos>,
        message: String,
    ) -> Self {
        Diagnostic {
            severity,
            loc,
            kind,
            message,
            line: pos.map(|p| p.line),
            column: pos.map(|p| p.column),
        }
    }

    /// `file:line:col: error: loc → path: message`, plus the source line and a caret.
    pub fn render(&self, file: &Path, source: Option<&str>) -> String {
        let mut out = String::new();
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = write!(out, "{}", file.display());
        if let (Some(line), Some(column)) = (self.line, self.column) {
            let _ = write!(out, ":{line}:{column}");
        }
        let _ = write!(out, ": {label}[{}]: ", self.kind);
        if !self.loc.is_empty() {
            let _ = write!(out, "{}: ", self.loc.join(" → "));
        }
        out.push_str(&self.message);
        if let (Some(source), Some(line), Some(column)) = (source, self.line, self.column) {
            if let Some(text) = source.lines().nth(line.saturating_sub(1)) {
                let shown: String = text.chars().take(160).collect();
                let gutter = line.to_string();
                let pad = " ".repeat(gutter.len());
                let caret_at: String = shown
                    .chars()
                    .take(column.saturating_sub(1))
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                let _ = write!(out, "\n{pad} |\n{gutter} | {shown}\n{pad} | {caret_at}^");
            }
        }
        out
    }
}

/// Why a config could not be loaded. Exit code 2 for all of them.
#[derive(Debug)]
pub struct ConfigError {
    /// `file-not-found`, `no-config-found`, `invalid-yaml`, `not-a-mapping`,
    /// `validation`, `cyclic-dependency`, `unreadable`, `too-large`.
    pub reason: &'static str,
    pub file: Option<PathBuf>,
    pub source_text: Option<String>,
    pub message: String,
    /// Every problem found (errors first, in file order), for `validation`.
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigError {
    pub fn simple(reason: &'static str, file: Option<PathBuf>, message: String) -> Self {
        ConfigError {
            reason,
            file,
            source_text: None,
            message,
            diagnostics: Vec::new(),
        }
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }

    /// The human form, for stderr.
    pub fn render(&self) -> String {
        let mut out = format!("config error [{}]: {}", self.reason, self.message);
        if let Some(file) = &self.file {
            for d in &self.diagnostics {
                out.push('\n');
                out.push_str(&d.render(file, self.source_text.as_deref()));
            }
        }
        out
    }

    /// The JSON form: `{"error": {"reason", "message", "file", "errors", "warnings"}}`.
    pub fn to_json(&self) -> serde_json::Value {
        let errors: Vec<&Diagnostic> = self.errors().collect();
        let warnings: Vec<&Diagnostic> = self
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .collect();
        serde_json::json!({
            "error": {
                "reason": self.reason,
                "message": self.message,
                "file": self.file.as_ref().map(|f| f.display().to_string()),
                "errors": errors,
                "warnings": warnings,
            }
        })
    }
}

/// Collects problems while decoding and validating.
#[derive(Debug, Default)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    pub fn error(&mut self, kind: &'static str, loc: &[&str], pos: Option<Pos>, message: String) {
        self.push(Diagnostic::error(kind, owned(loc), pos, message));
    }

    pub fn warning(&mut self, kind: &'static str, loc: &[&str], pos: Option<Pos>, message: String) {
        self.push(Diagnostic::warning(kind, owned(loc), pos, message));
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }
}

pub fn owned(loc: &[&str]) -> Vec<String> {
    loc.iter().map(|s| s.to_string()).collect()
}
