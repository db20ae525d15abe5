//! The invalid-config corpus: every file in `tests/config-errors/` is loaded by
//! the real binary and its exit code and messages are compared with
//! `<case>.expected` (regenerate with `UPDATE_GOLDEN=1`).

mod common;

use std::path::Path;
use std::process::Command;

use common::golden::{files_with_suffix, Golden};

fn corpus() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/config-errors")
}

/// Runs `nbkp config show` in the corpus folder with a fixed HOME.
fn show(dir: &Path, config: &str, json: bool) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nbkp"));
    cmd.current_dir(dir)
        .env("HOME", "/home/me")
        .env_remove("XDG_CONFIG_HOME")
        .args(["config", "show", "-c", config]);
    if json {
        cmd.args(["-o", "json"]);
    }
    let out = cmd.output().expect("run nbkp");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_invalid_config_gets_its_expected_message() {
    let dir = corpus();
    let cases = files_with_suffix(&dir, ".yaml");
    assert!(
        cases.len() >= 30,
        "the corpus has only {} cases",
        cases.len()
    );
    let mut golden = Golden::default();
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let (code, stdout, stderr) = show(&dir, &name, false);
        assert_eq!(code, 2, "{name}: exit code {code}, stderr:\n{stderr}");
        assert!(
            stdout.is_empty(),
            "{name}: a failed load printed to stdout:\n{stdout}"
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
            "{name}: crashed:\n{stderr}"
        );
        golden.check(
            &case.with_extension("expected"),
            &format!("exit: {code}\n{stderr}"),
        );
    }
    golden.finish("the invalid-config corpus");
}

/// Whatever is wrong with the file (an empty file, a list, a scalar,
/// YAML that does not parse, bytes that are not text, a bad field), the
/// message points into it as `FILE:LINE:COL:`, the form editors jump to.
#[test]
fn every_invalid_config_is_reported_at_file_line_column() {
    let dir = corpus();
    let mut missing = Vec::new();
    for case in files_with_suffix(&dir, ".yaml") {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let (_, _, stderr) = show(&dir, &name, false);
        let located = stderr.lines().any(|l| {
            l.strip_prefix(&format!("{name}:"))
                .and_then(|rest| rest.split_once(": error["))
                .and_then(|(pos, _)| pos.split_once(':'))
                .is_some_and(|(line, col)| {
                    line.parse::<u32>().is_ok() && col.parse::<u32>().is_ok()
                })
        });
        if !located {
            missing.push(format!("{name}:\n{stderr}"));
        }
        // The JSON form carries the same position.
        let (_, stdout, _) = show(&dir, &name, true);
        let v: serde_json::Value = serde_json::from_str(&stdout).expect("JSON error");
        let first = &v["error"]["errors"][0];
        if first["line"].as_u64().is_none() || first["column"].as_u64().is_none() {
            missing.push(format!("{name} (JSON): {stdout}"));
        }
        assert_eq!(v["error"]["file"], name.as_str(), "{stdout}");
    }
    assert!(
        missing.is_empty(),
        "errors without FILE:LINE:COL:\n{}",
        missing.join("\n")
    );
}

#[test]
fn json_errors_carry_type_loc_line_and_column() {
    let (code, stdout, _) = show(&corpus(), "several-problems-at-once.yaml", true);
    assert_eq!(code, 2);
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("valid JSON on stdout");
    let err = &v["error"];
    assert_eq!(err["reason"], "validation");
    let errors = err["errors"].as_array().expect("errors list");
    assert_eq!(errors.len(), 4, "{errors:#?}");
    for e in errors {
        assert!(e["line"].as_u64().is_some(), "no line in {e}");
        assert!(e["column"].as_u64().is_some(), "no column in {e}");
        assert!(
            e["loc"].as_array().is_some_and(|l| !l.is_empty()),
            "no loc in {e}"
        );
    }
    let types: Vec<&str> = errors.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "string_too_short",
            "greater_than_equal",
            "path-required",
            "string_pattern_mismatch"
        ]
    );
}

#[test]
fn a_directory_or_a_missing_file_is_a_clean_error() {
    let dir = corpus();
    let (code, _, stderr) = show(&dir, ".", false);
    assert_eq!(code, 2);
    assert!(stderr.contains("is a directory"), "{stderr}");
    let (code, _, stderr) = show(&dir, "no-such-file.yaml", false);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("Config file not found: no-such-file.yaml"),
        "{stderr}"
    );
}

#[test]
fn a_huge_file_is_refused_without_reading_it_all() {
    let tmp = tempfile::tempdir().unwrap();
    let big = tmp.path().join("big.yaml");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(50 * 1024 * 1024).unwrap();
    let (code, _, stderr) = show(tmp.path(), "big.yaml", false);
    assert_eq!(code, 2);
    assert!(stderr.contains("too-large"), "{stderr}");
}

#[test]
fn no_config_anywhere_names_the_places_searched() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nbkp"))
        .env("HOME", tmp.path())
        .env("XDG_CONFIG_HOME", tmp.path().join("cfg"))
        .env("XDG_CONFIG_DIRS", tmp.path().join("site"))
        .args(["config", "show"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-config-found"), "{stderr}");
    assert!(
        stderr.contains(&format!("{}/cfg/nbkp/config.yaml", tmp.path().display())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{}/site/nbkp/config.yaml", tmp.path().display())),
        "{stderr}"
    );
}
