//! Every example config loads: ours under `docs/examples/` (without a single
//! warning) and, where the folder exists, the Python nbkp's public examples in
//! `../shared/configs/` (read in place, never copied).

use std::path::{Path, PathBuf};
use std::process::Command;

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    files
}

/// `config show` in both formats; returns stderr of the human run.
fn show_ok(file: &Path) -> String {
    let human = Command::new(env!("CARGO_BIN_EXE_nbkp"))
        .env("HOME", "/home/me")
        .args(["config", "show", "-c"])
        .arg(file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&human.stderr).into_owned();
    assert!(
        human.status.success(),
        "{} did not load:\n{stderr}",
        file.display()
    );
    let stdout = String::from_utf8_lossy(&human.stdout);
    assert!(
        stdout.contains("Syncs"),
        "{}: no syncs table:\n{stdout}",
        file.display()
    );

    let json = Command::new(env!("CARGO_BIN_EXE_nbkp"))
        .env("HOME", "/home/me")
        .args(["config", "show", "-o", "json", "-c"])
        .arg(file)
        .output()
        .unwrap();
    assert!(json.status.success());
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    for key in [
        "credential_provider",
        "ssh_endpoints",
        "volumes",
        "sync_endpoints",
        "syncs",
    ] {
        assert!(
            v.get(key).is_some(),
            "{}: JSON lacks `{key}`",
            file.display()
        );
    }
    assert!(!v["syncs"].as_object().unwrap().is_empty());
    stderr
}

#[test]
fn our_examples_load_without_warnings() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples");
    let files = yaml_files(&dir);
    assert!(
        files.len() >= 4,
        "expected several examples in {}",
        dir.display()
    );
    for f in files {
        let stderr = show_ok(&f);
        assert!(stderr.is_empty(), "{} warns:\n{stderr}", f.display());
    }
}

#[test]
fn the_python_nbkp_examples_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/configs");
    if !dir.is_dir() {
        assert!(
            std::env::var("CI").is_err(),
            "CI must have ../shared/configs beside the checkout"
        );
        eprintln!("skipped: {} is not there", dir.display());
        return;
    }
    let files = yaml_files(&dir);
    assert!(!files.is_empty());
    for f in files {
        let stderr = show_ok(&f);
        assert!(!stderr.contains("error"), "{}:\n{stderr}", f.display());
    }
}

#[test]
fn examples_cover_every_config_field() {
    // Every key of the config reference appears in at least one example.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples");
    let all: String = yaml_files(&dir)
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    let keys = [
        "credential-provider:",
        "credential-command:",
        "ssh-endpoints:",
        "host:",
        "port:",
        "user:",
        "key:",
        "connection-options:",
        "connect-timeout:",
        "compress:",
        "server-alive-interval:",
        "allow-agent:",
        "look-for-keys:",
        "banner-timeout:",
        "auth-timeout:",
        "channel-timeout:",
        "strict-host-key-checking:",
        "known-hosts-file:",
        "forward-agent:",
        "disabled-algorithms:",
        "proxy-jump",
        "proxy-jumps:",
        "location:",
        "locations:",
        "extends:",
        "max-parallel-syncs:",
        "volumes:",
        "type: local",
        "type: remote",
        "ssh-endpoint:",
        "path:",
        "mount:",
        "device-uuid:",
        "encryption:",
        "passphrase-id:",
        "sync-endpoints:",
        "volume:",
        "subdir:",
        "btrfs-snapshots:",
        "hard-link-snapshots:",
        "enabled:",
        "max-snapshots:",
        "syncs:",
        "source:",
        "destination:",
        "rsync-options:",
        "checksum:",
        "default-options-override:",
        "extra-options:",
        "filters:",
        "include:",
        "exclude:",
        "merge:",
        "dir-merge:",
        "exclude-self:",
        "filter-file:",
        "hooks:",
        "before:",
        "after:",
        "on-failure:",
        "type: rsync-daemon",
        "module:",
        "password-command:",
        "monitoring:",
        "ping-url:",
        "metrics-file:",
    ];
    let missing: Vec<&str> = keys.iter().copied().filter(|k| !all.contains(k)).collect();
    assert!(missing.is_empty(), "no example shows: {missing:?}");
}

#[test]
fn the_config_reference_documents_every_key() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/config.md"))
        .unwrap();
    let missing: Vec<&str> = nbkp::config::known_keys()
        .into_iter()
        // `slug` inside an entry is tolerated for compatibility, not a feature.
        .filter(|k| {
            *k != "slug" && !doc.contains(&format!("`{k}`")) && !doc.contains(&format!("`{k}:"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "docs/config.md does not document: {missing:?}"
    );
}

#[test]
fn config_show_lists_hooks_in_the_order_they_run() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/hooks/config.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_nbkp"))
        .env("HOME", "/home/me")
        .args(["config", "show", "-c"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let section = &text[text
        .find("Hooks (run on this machine")
        .expect("a hooks section")..];
    let lines: Vec<&str> = section.lines().skip(1).take(6).map(str::trim).collect();
    assert_eq!(
        lines,
        [
            "home-to-usb:",
            "before      global  /usr/local/bin/notify start",
            "before      sync    /home/me/bin/record-packages /home/me/.packages",
            "after       global  /usr/local/bin/notify 'done: $NBKP_SYNC'",
            "on-failure  sync    logger -t nbkp 'home-to-usb failed'",
            "on-failure  global  /usr/local/bin/notify --failed 'it'\\''s `bad`'",
        ]
    );
}

/// A YAML block in the docs that starts with `# docs/examples/NAME` is that
/// example file, exactly: the guide cannot drift from what the tests load.
#[test]
fn yaml_blocks_in_the_docs_are_the_example_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("md") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut rest = text.as_str();
        while let Some(start) = rest.find("```yaml\n") {
            let body = &rest[start + 8..];
            let end = body.find("\n```").expect("closed yaml block");
            let block = &body[..end];
            rest = &body[end..];
            let Some(name) = block
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# docs/examples/"))
                .and_then(|l| l.split_whitespace().next())
            else {
                continue;
            };
            let file = std::fs::read_to_string(root.join("docs/examples").join(name))
                .unwrap_or_else(|e| panic!("{} names docs/examples/{name}: {e}", path.display()));
            assert_eq!(
                block,
                file.trim_end_matches('\n'),
                "{}: the block for {name} differs from the file",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 4, "only {checked} example blocks found in docs/");
}
