//! Golden files: compare text against a file, collect every difference, and
//! rewrite the files instead when `UPDATE_GOLDEN=1`.

use std::path::{Path, PathBuf};

use similar::TextDiff;

/// Set this to rewrite expected files from the current output.
pub const UPDATE_VAR: &str = "UPDATE_GOLDEN";

#[derive(Default)]
pub struct Golden {
    failures: Vec<String>,
    checked: usize,
}

impl Golden {
    pub fn updating() -> bool {
        std::env::var(UPDATE_VAR).is_ok_and(|v| v == "1")
    }

    /// Compares `actual` with the file at `expected`, or rewrites it when updating.
    pub fn check(&mut self, expected: &Path, actual: &str) {
        self.checked += 1;
        if Self::updating() {
            std::fs::write(expected, actual)
                .unwrap_or_else(|e| panic!("write {}: {e}", expected.display()));
            return;
        }
        let want = std::fs::read_to_string(expected).unwrap_or_default();
        if want != actual {
            let diff = TextDiff::from_lines(want.as_str(), actual)
                .unified_diff()
                .header(&format!("{} (expected)", expected.display()), "actual")
                .to_string();
            self.failures.push(diff);
        }
    }

    /// Fails once, showing every difference and how to accept them.
    pub fn finish(self, what: &str) {
        assert!(self.checked > 0, "no golden files were checked for {what}");
        if !self.failures.is_empty() {
            panic!(
                "{} of {} golden files for {what} differ:\n\n{}\nIf the new output is right, run `{UPDATE_VAR}=1 cargo test` and review `git diff`.",
                self.failures.len(),
                self.checked,
                self.failures.join("\n")
            );
        }
    }
}

/// Files in `dir` whose name ends with `suffix`, sorted.
pub fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    out.sort();
    out
}
