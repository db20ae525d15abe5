//! Golden scripts: every `golden/<case>/config.yaml` is compiled by the real
//! binary (`nbkp sh`, with the extra arguments in `golden/<case>/args`, one
//! per line) and compared with `golden/<case>/script.sh` — or `error.txt`
//! when generation must fail — and its plan with `plan.json`. Every script
//! must also pass `shellcheck -s sh` and `dash -n`.
//! `UPDATE_GOLDEN=1 cargo test --test golden_scripts` rewrites them.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::golden::Golden;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cases() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root().join("golden"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("config.yaml").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn args_of(case: &Path) -> Vec<String> {
    std::fs::read_to_string(case.join("args"))
        .map(|s| {
            s.lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn nbkp(case: &Path, extra: &[&str]) -> std::process::Output {
    let name = case.file_name().unwrap().to_string_lossy().into_owned();
    Command::new(env!("CARGO_BIN_EXE_nbkp"))
        .current_dir(root())
        .env("HOME", "/home/me")
        .env_remove("XDG_CONFIG_HOME")
        .args(["sh", "-c", &format!("golden/{name}/config.yaml")])
        .args(args_of(case))
        .args(extra)
        .output()
        .unwrap()
}

/// `-o FILE` among the case's arguments, if any.
fn output_file(case: &Path) -> Option<PathBuf> {
    let args = args_of(case);
    args.iter()
        .position(|a| a == "-o")
        .map(|i| PathBuf::from(&args[i + 1]))
}

fn tool(name: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").is_err(),
            "{name} is required in CI (bash .ci/install-deps)"
        );
        eprintln!("skipping {name} checks: apt-get install {name}");
    }
    found
}

#[test]
fn generated_scripts_match_their_golden_files() {
    let shellcheck = tool("shellcheck");
    let dash = tool("dash");
    let mut golden = Golden::default();
    let mut lint_failures = Vec::new();
    for case in cases() {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(out) = output_file(&case) {
            let _ = std::fs::remove_file(&out);
            std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        }
        let run = nbkp(&case, &[]);
        let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
        if !run.status.success() {
            // A case with a script must keep one: a regeneration must not
            // turn a broken build into an "expected" error.
            assert!(
                !case.join("script.sh").exists(),
                "{name}: `nbkp sh` failed, but the case expects a script:\n{stderr}"
            );
            golden.check(
                &case.join("error.txt"),
                &format!("exit: {}\n{stderr}", run.status.code().unwrap_or(-1)),
            );
            continue;
        }
        let script = match output_file(&case) {
            Some(out) => {
                let mode = std::os::unix::fs::PermissionsExt::mode(
                    &std::fs::metadata(&out).unwrap().permissions(),
                );
                assert_eq!(mode & 0o110, 0o110, "{name}: -o output is not executable");
                std::fs::read_to_string(&out).unwrap()
            }
            None => String::from_utf8(run.stdout).unwrap(),
        };
        assert!(
            !script.contains("nbkp 0."),
            "{name}: a version leaked into the script"
        );
        golden.check(&case.join("script.sh"), &script);
        let plan = nbkp(&case, &["--plan"]);
        assert!(plan.status.success(), "{name}: --plan failed");
        golden.check(
            &case.join("plan.json"),
            &String::from_utf8(plan.stdout).unwrap(),
        );

        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), &script).unwrap();
        if shellcheck {
            let out = Command::new("shellcheck")
                .args(["-s", "sh"])
                .arg(tmp.path())
                .output()
                .unwrap();
            if !out.status.success() {
                lint_failures.push(format!(
                    "{name}: shellcheck\n{}",
                    String::from_utf8_lossy(&out.stdout)
                ));
            }
        }
        if dash {
            let out = Command::new("dash")
                .arg("-n")
                .arg(tmp.path())
                .output()
                .unwrap();
            if !out.status.success() {
                lint_failures.push(format!(
                    "{name}: dash -n\n{}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    golden.finish("generated scripts");
    assert!(lint_failures.is_empty(), "{}", lint_failures.join("\n"));
}

#[test]
fn relative_flags_need_an_output_file() {
    let out = Command::new(env!("CARGO_BIN_EXE_nbkp"))
        .current_dir(root())
        .args([
            "sh",
            "-c",
            "golden/local-mirror/config.yaml",
            "--relative-src",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("--relative-src/--relative-dst require --output-file"));
}

#[test]
fn unknown_locations_are_rejected() {
    let out = Command::new(env!("CARGO_BIN_EXE_nbkp"))
        .current_dir(root())
        .args([
            "sh",
            "-c",
            "golden/location-choice/config.yaml",
            "-l",
            "moon",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "unknown location 'moon' passed to --location. Known locations: home, travel"
        ),
        "{stderr}"
    );
}
