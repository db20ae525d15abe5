//! `nbkp restore`: files back from a snapshot (or a plain mirror) with
//! rsync, into a folder named by `--to`, never overwriting what is there
//! unless asked, never deleting.

use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use super::backup::{self, Item, Target, OUT_FORMAT};
use crate::cli::{OutputFormat, RestoreArgs};
use crate::exec::values::{argv as expand_argv, expand, Values};
use crate::output::print_json;
use crate::plan::rsync::{progress_flags, SENTINEL_FILTERS};
use crate::plan::ssh::SshCommand;
use crate::plan::Arg;

#[derive(Serialize)]
struct Report {
    sync: String,
    /// The snapshot read; `null` for a plain mirror.
    snapshot: Option<String>,
    /// Where the files came from: `/mnt/usb/docs/snapshots/<name>/` or
    /// `server:/srv/docs/snapshots/<name>/`.
    from: String,
    to: String,
    dry_run: bool,
    overwrite: bool,
    /// New here (files, symlinks; directories are made as needed).
    copied: Vec<String>,
    /// Existing files replaced (only with --overwrite).
    replaced: Vec<String>,
    /// Existing files left as they were (without --overwrite).
    kept: Vec<String>,
    rsync_exit_code: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub fn run(args: &RestoreArgs) -> i32 {
    let Some(to) = &args.to else {
        eprintln!(
            "Error: say where the files go with --to DIR. A new folder is safest \
             (e.g. --to ~/restored; nothing there is replaced). To put them back in \
             their place, pass the sync's source folder and --overwrite on purpose: \
             --to <source path> --overwrite. See `nbkp config show` for the source path."
        );
        return super::EXIT_USAGE;
    };
    let (config, plan) = match backup::load(
        args.file.config.as_deref(),
        &args.select,
        &args.mount,
        vec![args.sync.clone()],
        args.output,
    ) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let target = match backup::target(&config, &plan, &args.sync) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("Error: {e}");
            return super::EXIT_USAGE;
        }
    };
    let to = resolve(to);
    backup::with_hosts(&plan, |hosts, v| {
        let fail = |msg: String| {
            eprintln!("Error: {msg}");
            1
        };
        // A full path as the source has it (here, or on its host) is
        // taken relative to the source.
        let source_root = target.source.map(|s| expand(&s.path, v).concat());
        let mut paths = Vec::new();
        for p in &args.paths {
            match relative_path(p, source_root.as_deref()) {
                Ok(r) => paths.push(r),
                Err(e) => {
                    eprintln!("Error: {e}");
                    return super::EXIT_USAGE;
                }
            }
        }
        let (_, snapshot) =
            match backup::open_snapshot(hosts, v, target.dest, args.snapshot.as_deref()) {
                Ok(x) => x,
                Err(e) => return fail(e),
            };
        if target.dest.host == 0 {
            let backup_dir = PathBuf::from(expand(&target.dest.path, v).concat());
            let backup_dir = backup_dir.canonicalize().unwrap_or(backup_dir);
            if let Err(e) = check_target(&to, &backup_dir) {
                eprintln!("Error: {e}");
                return super::EXIT_USAGE;
            }
        }
        if !args.dry_run {
            if let Err(e) = std::fs::create_dir_all(&to) {
                return fail(format!("cannot create {}: {e}", to.display()));
            }
        }
        restore(
            args,
            &target,
            &plan.hosts[target.dest.host].ssh,
            snapshot,
            &paths,
            &to,
            v,
        )
    })
}

fn restore(
    args: &RestoreArgs,
    target: &Target,
    ssh: &Option<SshCommand>,
    snapshot: Option<String>,
    paths: &[String],
    to: &Path,
    v: &Values,
) -> i32 {
    let from = backup::content_dir(&target.dest.path, snapshot.as_deref());
    // The names travel in a file, NUL-separated: any byte but NUL is a name.
    let list = if paths.is_empty() {
        None
    } else {
        let mut bytes = Vec::new();
        for p in paths {
            bytes.extend_from_slice(p.as_bytes());
            bytes.push(0);
        }
        let file = tempfile::NamedTempFile::new().and_then(|f| {
            std::fs::write(f.path(), &bytes)?;
            Ok(f)
        });
        match file {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("Error: cannot write the list of paths: {e}");
                return 1;
            }
        }
    };
    let progress = progress_flags(args.progress.mode()).unwrap_or(&[]);
    let words = rsync_argv(&Request {
        ssh: ssh.as_ref(),
        from: from.clone(),
        to: &format!("{}/", to.display()),
        files_from: list
            .as_ref()
            .map(|f| f.path().display().to_string())
            .as_deref(),
        overwrite: args.overwrite,
        dry_run: args.dry_run,
        progress,
    });
    let show_progress = args.output == OutputFormat::Human && !progress.is_empty();
    let out = backup::run(&expand_argv(&words, v), show_progress);
    let (items, exists) = backup::parse_items(&out.stdout);
    let (copied, replaced, kept) = classify(&items, exists);
    let from_shown = match ssh {
        Some(s) => format!("{}:{}", s.destination, expand(&from, v).concat()),
        None => expand(&from, v).concat(),
    };
    let error = (out.code != 0).then(|| {
        let why = match out.code {
            23 => "some files could not be copied (a path not in this snapshot?)",
            24 => "some files vanished during the copy",
            _ => "rsync failed",
        };
        format!(
            "{why}: rsync exited with code {}: {}",
            out.code,
            out.stderr.trim()
        )
    });
    let report = Report {
        sync: target.slug.to_string(),
        snapshot,
        from: from_shown,
        to: to.display().to_string(),
        dry_run: args.dry_run,
        overwrite: args.overwrite,
        copied,
        replaced,
        kept,
        rsync_exit_code: out.code,
        error,
    };
    match args.output {
        OutputFormat::Json => print_json(&report),
        OutputFormat::Human => print!("{}", human(&report)),
    }
    i32::from(out.code != 0)
}

/// What the rsync command needs to know.
pub struct Request<'a> {
    /// The destination's host, when remote.
    pub ssh: Option<&'a SshCommand>,
    /// The snapshot's folder (ending in `/`).
    pub from: Arg,
    /// The folder to restore into (ending in `/`).
    pub to: &'a str,
    /// A file of NUL-separated paths; `None`: everything.
    pub files_from: Option<&'a str>,
    pub overwrite: bool,
    pub dry_run: bool,
    pub progress: &'a [&'a str],
}

/// The restore's rsync: `-a -H` (what the snapshot holds, hard links
/// included), itemised (`%i %n`) so the report can say what was copied, never
/// `--delete`; without `overwrite`, `--ignore-existing` (rsync itself
/// leaves every existing file alone) and `--info=skip1` to name them.
/// Named paths are read from a NUL-separated file (`--from0`, with `-r`,
/// which `--files-from` does not imply from `-a`), so no name is ever an
/// option or split. Remote: the paths inside rsync's protocol
/// (`--protect-args`), the run's ssh with its shared connection.
pub fn rsync_argv(r: &Request) -> Vec<Arg> {
    let mut w = vec![
        Arg::lit("rsync"),
        Arg::lit("-a"),
        Arg::lit("-H"),
        Arg::lit(OUT_FORMAT),
    ];
    if !r.overwrite {
        w.push(Arg::lit("--ignore-existing"));
        w.push(Arg::lit("--info=skip1"));
    }
    if r.dry_run {
        w.push(Arg::lit("--dry-run"));
    }
    w.extend(r.progress.iter().map(|&f| Arg::lit(f.to_string())));
    w.extend(SENTINEL_FILTERS.iter().map(|&f| Arg::lit(f)));
    if let Some(list) = r.files_from {
        w.push(Arg::lit("-r"));
        w.push(Arg::lit("--from0"));
        w.push(Arg::lit(format!("--files-from={list}")));
    }
    match r.ssh {
        None => w.push(r.from.clone()),
        Some(ssh) => {
            w.push(Arg::lit("--protect-args"));
            w.push(Arg::lit("-e"));
            w.push(ssh.rsync_shell());
            w.push(r.from.with_prefix(&format!("{}:", ssh.destination)));
        }
    }
    w.push(Arg::lit(r.to.to_string()));
    w
}

/// A path as the user gave it → relative to the sync's source. An
/// absolute path under the source is taken relative to it; any
/// other leading `/` is dropped (paths are always inside the backup).
/// `..` is refused: nothing outside the snapshot is read.
pub fn relative_path(path: &str, source_root: Option<&str>) -> Result<String, String> {
    let mut p = Path::new(path);
    if let Some(root) = source_root {
        if let Ok(rest) = p.strip_prefix(root) {
            p = rest;
        }
    }
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::ParentDir => {
                return Err(format!(
                    "{path:?}: `..` is not allowed; paths are relative to the sync's source"
                ))
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    if parts.is_empty() {
        return Ok(".".into());
    }
    let mut rel = parts.join("/");
    if path.ends_with('/') {
        rel.push('/');
    }
    Ok(rel)
}

/// `--to` made absolute, with symlinks of its existing part resolved.
pub fn resolve(to: &Path) -> PathBuf {
    let abs = std::env::current_dir()
        .map(|d| d.join(to))
        .unwrap_or_else(|_| to.to_path_buf());
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = existing.canonicalize() {
            let mut out = c;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return abs,
        }
    }
}

/// Refuses a `--to` that is the backup (the destination endpoint) or
/// inside it: restoring there would write into the snapshots themselves.
pub fn check_target(to: &Path, backup: &Path) -> Result<(), String> {
    if to.starts_with(backup) {
        return Err(format!(
            "--to {} is inside the backup itself ({}); restore somewhere else",
            to.display(),
            backup.display()
        ));
    }
    Ok(())
}

/// Copied, replaced, and kept names, from rsync's itemised lines and
/// its `exists` notes. Directories are not listed (made as needed).
pub fn classify(items: &[Item], exists: Vec<String>) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut copied = Vec::new();
    let mut replaced = Vec::new();
    for i in items.iter().filter(|i| !i.is_deletion() && i.kind() != 'd') {
        if i.is_new() {
            copied.push(i.name.clone());
        } else {
            replaced.push(i.name.clone());
        }
    }
    (copied, replaced, exists)
}

fn human(r: &Report) -> String {
    let would = if r.dry_run { "would be " } else { "" };
    let mut out = format!(
        "Restoring {} from {} into {}{}\n",
        r.sync,
        r.from,
        r.to,
        if r.dry_run {
            " (dry run: nothing copied)"
        } else {
            ""
        }
    );
    let mut section = |title: &str, names: &[String]| {
        if !names.is_empty() {
            out.push_str(&format!("{title} ({}):\n", names.len()));
            for n in names {
                out.push_str(&format!("  {}\n", n.escape_debug()));
            }
        }
    };
    section(&format!("{would}copied"), &r.copied);
    section(&format!("{would}replaced"), &r.replaced);
    section(
        "already there, left as they are (--overwrite replaces them)",
        &r.kept,
    );
    match &r.error {
        Some(e) => out.push_str(&format!("FAILED: {e}\n")),
        None => out.push_str(&format!(
            "{} file(s) {would}copied, {} {would}replaced, {} left as they were\n",
            r.copied.len(),
            r.replaced.len(),
            r.kept.len()
        )),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConnectionOptions;
    use crate::plan::ssh::Endpoint;

    fn words(r: &Request) -> Vec<String> {
        rsync_argv(r).iter().map(Arg::display).collect()
    }

    fn local(overwrite: bool, dry_run: bool, list: Option<&str>) -> Vec<String> {
        words(&Request {
            ssh: None,
            from: Arg::lit("/usb/docs/snapshots/S/"),
            to: "/tmp/r/",
            files_from: list,
            overwrite,
            dry_run,
            progress: &[],
        })
    }

    #[test]
    fn never_deletes_and_keeps_existing_files_unless_told() {
        let w = local(false, false, None);
        assert!(w.contains(&"--ignore-existing".to_string()), "{w:?}");
        assert!(w.contains(&"--out-format=%i %n".to_string()), "{w:?}");
        assert!(!w.iter().any(|x| x.starts_with("--del")), "{w:?}");
        assert_eq!(&w[w.len() - 2..], ["/usb/docs/snapshots/S/", "/tmp/r/"]);
        let w = local(true, true, None);
        assert!(!w.contains(&"--ignore-existing".to_string()), "{w:?}");
        assert!(w.contains(&"--dry-run".to_string()));
        assert!(!w.iter().any(|x| x.starts_with("--del")), "{w:?}");
    }

    #[test]
    fn named_paths_go_through_a_nul_separated_list() {
        let w = local(false, false, Some("/tmp/list"));
        let i = w.iter().position(|x| x == "--from0").unwrap();
        assert_eq!(w[i - 1], "-r");
        assert_eq!(w[i + 1], "--files-from=/tmp/list");
    }

    #[test]
    fn remote_snapshots_are_read_through_the_runs_ssh() {
        let ep = Endpoint {
            slug: "nas".into(),
            host: "10.0.0.2".into(),
            port: 22,
            user: Some("root".into()),
            key: None,
            options: ConnectionOptions::default(),
            hops: Vec::new(),
        };
        let ssh = SshCommand::new(&ep, "h1");
        let w = words(&Request {
            ssh: Some(&ssh),
            from: Arg::lit("/srv/d/snapshots/S/"),
            to: "/tmp/r/",
            files_from: None,
            overwrite: false,
            dry_run: false,
            progress: &["--info=progress2"],
        });
        let e = w.iter().position(|x| x == "-e").unwrap();
        assert_eq!(w[e - 1], "--protect-args");
        assert!(
            w[e + 1].starts_with("ssh -o ControlPath=${NBKP_CTL}/h1"),
            "{}",
            w[e + 1]
        );
        assert_eq!(w[e + 2], "root@10.0.0.2:/srv/d/snapshots/S/");
        assert!(w.contains(&"--info=progress2".to_string()));
    }

    #[test]
    fn paths_are_relative_to_the_source() {
        assert_eq!(relative_path("docs/a.txt", None).unwrap(), "docs/a.txt");
        assert_eq!(relative_path("/docs/a.txt", None).unwrap(), "docs/a.txt");
        assert_eq!(relative_path("./docs/", None).unwrap(), "docs/");
        assert_eq!(
            relative_path("/home/me/docs/a.txt", Some("/home/me")).unwrap(),
            "docs/a.txt"
        );
        assert_eq!(relative_path("/home/me", Some("/home/me")).unwrap(), ".");
        assert_eq!(relative_path("-lead", None).unwrap(), "-lead");
        assert_eq!(relative_path("a b/it's\nx", None).unwrap(), "a b/it's\nx");
        assert!(relative_path("docs/../../etc", None).is_err());
    }

    #[test]
    fn the_backup_itself_is_refused() {
        let b = Path::new("/mnt/usb/docs");
        assert!(check_target(Path::new("/mnt/usb/docs"), b).is_err());
        assert!(check_target(Path::new("/mnt/usb/docs/snapshots/x"), b).is_err());
        assert!(check_target(Path::new("/mnt/usb/docs-restored"), b).is_ok());
        assert!(check_target(Path::new("/home/me"), b).is_ok());
    }

    #[test]
    fn resolving_a_folder_that_does_not_exist_yet() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().canonicalize().unwrap();
        std::os::unix::fs::symlink(&real, d.path().join("ln")).unwrap();
        assert_eq!(
            resolve(&d.path().join("ln/new/deeper")),
            real.join("new/deeper")
        );
    }

    #[test]
    fn what_was_copied_replaced_and_kept() {
        let (items, exists) = backup::parse_items(
            b"cd+++++++++ sub/\n>f+++++++++ sub/a\n>f.st...... b\ncL+++++++++ l\nc exists\n",
        );
        let (copied, replaced, kept) = classify(&items, exists);
        assert_eq!(copied, ["sub/a", "l"]);
        assert_eq!(replaced, ["b"]);
        assert_eq!(kept, ["c"]);
    }
}
