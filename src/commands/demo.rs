//! `nbkp demo`: sample data, a config, and two real runs.

use std::path::{Path, PathBuf};

use crate::cli::{
    ConfigFileArg, DemoArgs, OutputFormat, ProgressArg, RunArgs, SelectArgs, StrictnessArg,
};

fn write(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text)
}

/// Lays out the demo world and its config; returns the config's path.
fn seed(dir: &Path) -> std::io::Result<PathBuf> {
    let laptop = dir.join("laptop");
    let usb = dir.join("usb-drive");
    let unplugged = dir.join("unplugged-drive");
    write(&laptop.join(".nbkp-vol"), "")?;
    write(&laptop.join("documents/.nbkp-src"), "")?;
    write(
        &laptop.join("documents/letter.txt"),
        "Dear nbkp,\nthank you for the backups.\n",
    )?;
    write(
        &laptop.join("documents/notes/ideas.md"),
        "# Ideas\n- back up before travelling\n",
    )?;
    write(
        &laptop.join("documents/draft.tmp"),
        "scratch: not worth a backup\n",
    )?;
    write(&laptop.join("photos/.nbkp-src"), "")?;
    for i in 1..=3 {
        write(
            &laptop.join(format!("photos/2026/img-{i:03}.jpg")),
            &format!("(pretend this is photo {i})\n").repeat(200),
        )?;
    }
    write(&usb.join(".nbkp-vol"), "")?;
    write(&usb.join("documents/.nbkp-dst"), "")?;
    std::fs::create_dir_all(usb.join("documents/snapshots"))?;
    let latest = usb.join("documents/latest");
    if std::fs::symlink_metadata(&latest).is_err() {
        std::os::unix::fs::symlink("/dev/null", &latest)?;
    }
    write(&usb.join("photos/.nbkp-dst"), "")?;
    // A drive that is not plugged in: its mount point is an empty folder.
    std::fs::create_dir_all(&unplugged)?;
    let config = dir.join("config.yaml");
    let d = dir.display();
    write(
        &config,
        &format!(
            "# The nbkp demo: a laptop, a USB drive, and a drive that is not plugged in.\n\
             volumes:\n  laptop: {{type: local, path: \"{d}/laptop\"}}\n  usb-drive: {{type: local, path: \"{d}/usb-drive\"}}\n  unplugged-drive: {{type: local, path: \"{d}/unplugged-drive\"}}\n\
             sync-endpoints:\n  documents: {{volume: laptop, subdir: documents}}\n  photos: {{volume: laptop, subdir: photos}}\n\
             \x20 usb-documents:\n    volume: usb-drive\n    subdir: documents\n    hard-link-snapshots: {{enabled: true, max-snapshots: 5}}\n\
             \x20 usb-photos: {{volume: usb-drive, subdir: photos}}\n  spare-documents: {{volume: unplugged-drive}}\n\
             syncs:\n  documents-to-usb:\n    source: documents\n    destination: usb-documents\n    filters: [{{exclude: \"*.tmp\"}}]\n\
             \x20 photos-to-usb: {{source: photos, destination: usb-photos}}\n  documents-to-spare: {{source: documents, destination: spare-documents}}\n"
        ),
    )?;
    Ok(config)
}

fn run_args(config: &Path) -> RunArgs {
    RunArgs {
        file: ConfigFileArg {
            config: Some(config.to_path_buf()),
        },
        select: SelectArgs::default(),
        dry_run: false,
        sync: Vec::new(),
        progress: ProgressArg::None,
        strictness: StrictnessArg::IgnoreInactive,
        jobs: None,
        prune: false,
        no_prune: false,
        mount: Default::default(),
        conditions: Default::default(),
        output: OutputFormat::Human,
    }
}

pub fn run(args: &DemoArgs) -> i32 {
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => match tempfile::Builder::new().prefix("nbkp-demo-").tempdir() {
            Ok(t) => t.keep(),
            Err(e) => {
                eprintln!("Error: cannot create a folder for the demo: {e}");
                return 1;
            }
        },
    };
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    let config = match seed(&dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error: cannot create the demo in {}: {e}", dir.display());
            return 1;
        }
    };
    println!("nbkp demo in {}\n\nFirst backup:", dir.display());
    // The demo's history stays in its folder, not in the user's state file.
    let state = Some(dir.join("state/nbkp/state.json"));
    let first = super::run::run_recording_to(&run_args(&config), state.clone());
    if first != 0 {
        return first;
    }
    let _ = write(
        &dir.join("laptop/documents/letter.txt"),
        "Dear nbkp,\nthank you for the backups.\nP.S. An edit, for the second snapshot.\n",
    );
    println!("\nA document changed; second backup:");
    let second = super::run::run_recording_to(&run_args(&config), state);
    let d = dir.display();
    println!(
        "\nWhere to look:\n\
         \x20 {d}/usb-drive/documents/snapshots/   two dated snapshots; `latest` points at the newer one\n\
         \x20 ls -li {d}/usb-drive/documents/snapshots/*/notes/ideas.md   the same inode: unchanged files are hard links\n\
         \x20 {d}/usb-drive/photos/                a plain mirror\n\
         \x20 {d}/unplugged-drive/                 still empty: no .nbkp-vol, so the sync was skipped, never written to\n\
         \x20 nbkp config show -c {d}/config.yaml    the config, explained\n\
         \x20 nbkp sh -c {d}/config.yaml            the same backup as a standalone shell script"
    );
    second
}
