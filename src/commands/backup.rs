//! What `restore`, `verify` and `snapshots diff` share: a sync's backup
//! (its destination endpoint, where it is, which snapshot), the commands
//! that read it, and rsync's itemised output read back.

use std::io::Read;
use std::process::{Command, Stdio};

use crate::cli::{MountArgs, OutputFormat, SelectArgs};
use crate::config::{Config, Sync};
use crate::exec::hosts::Hosts;
use crate::exec::values::Values;
use crate::plan::{Arg, LowerOptions, Plan, Site};

use super::snapshots::{list, Listing};

/// The config and the plan for `only` (the named syncs; all when empty);
/// on failure the exit code (the problem has been reported).
pub fn load(
    file: Option<&std::path::Path>,
    select: &SelectArgs,
    mount: &MountArgs,
    only: Vec<String>,
    output: OutputFormat,
) -> Result<(Config, Plan), i32> {
    let loaded = super::load_config(file, output)?;
    let selection = super::select_endpoints(&loaded.config, select)?;
    let options = LowerOptions {
        only,
        darwin: cfg!(target_os = "macos"),
        no_mount: mount.no_mount,
        no_umount: mount.no_umount,
        ..LowerOptions::default()
    };
    let path = loaded.path.display().to_string();
    match crate::plan::lower(&loaded.config, &path, &selection, &options) {
        Ok(plan) => Ok((loaded.config, plan)),
        Err(e) => {
            eprintln!("Error: {e}");
            Err(super::EXIT_USAGE)
        }
    }
}

/// One sync's two endpoints, resolved to hosts and paths.
pub struct Target<'a> {
    pub slug: &'a str,
    pub sync: &'a Sync,
    /// `None` when the source is an rsync daemon's module.
    pub source: Option<&'a Site>,
    pub dest: &'a Site,
}

/// The sync `slug` of the plan, or why it cannot be read back.
pub fn target<'a>(config: &'a Config, plan: &'a Plan, slug: &'a str) -> Result<Target<'a>, String> {
    let Some(sync) = config.syncs.get(slug) else {
        let known: Vec<&str> = config.syncs.keys().map(String::as_str).collect();
        return Err(format!(
            "unknown sync '{slug}'. Known syncs: {}",
            known.join(", ")
        ));
    };
    if let Some(x) = plan.excluded_syncs.iter().find(|x| x.slug == slug) {
        return Err(format!("sync '{slug}': {} ({})", x.reason, x.fix));
    }
    let site = |name: &str| plan.sites.iter().find(|s| s.slug == name);
    let Some(dest) = site(&sync.destination.slug) else {
        return Err(format!(
            "sync '{slug}': its destination '{}' is an rsync daemon's module (or the sync is \
             disabled); read it with rsync directly",
            sync.destination.slug
        ));
    };
    Ok(Target {
        slug,
        sync,
        source: site(&sync.source.slug),
        dest,
    })
}

/// Which snapshot to read: `None` for a plain mirror (the destination
/// itself), else a name `listing` holds. `wanted` is `--snapshot`
/// (`latest` or absent: the one `latest` points to).
pub fn choose(
    mode: &str,
    wanted: Option<&str>,
    listing: &Listing,
) -> Result<Option<String>, String> {
    if mode == "none" {
        return match wanted {
            None | Some("latest") => Ok(None),
            Some(n) => Err(format!(
                "the destination keeps no snapshots (a plain mirror); leave out --snapshot {n}"
            )),
        };
    }
    match listing.state {
        "ok" => {}
        "absent" => {
            return Err(
                "the destination is not there (drive not mounted, or no snapshots/ yet)".into(),
            )
        }
        "unreachable" => return Err("the destination's host is unreachable".into()),
        _ => {
            return Err(format!(
                "cannot list the snapshots: {}",
                listing.detail.as_deref().unwrap_or("")
            ))
        }
    }
    match wanted {
        None | Some("latest") => match &listing.latest {
            Some(l) => Ok(Some(l.clone())),
            None => Err("no snapshot yet (`latest` points to /dev/null)".into()),
        },
        Some(n) if listing.names.iter().any(|x| x == n) => Ok(Some(n.to_string())),
        Some(n) => Err(format!(
            "no snapshot named {n}; the newest are: {} (see `nbkp snapshots show`)",
            newest(&listing.names, 5).join(", ")
        )),
    }
}

/// The `count` newest names, newest first.
pub fn newest(names: &[String], count: usize) -> Vec<String> {
    names.iter().rev().take(count).cloned().collect()
}

/// The folder holding the backed-up files, ending in `/`: the endpoint
/// itself for a plain mirror, else `snapshots/<name>/` (hard-link and
/// btrfs snapshots alike; never `staging/` or a `.nbkp-partial-*`).
pub fn content_dir(endpoint: &Arg, snapshot: Option<&str>) -> Arg {
    match snapshot {
        None => endpoint.with_suffix("/"),
        Some(n) => endpoint.with_suffix(&format!("/snapshots/{n}/")),
    }
}

/// Whether the destination's volume and endpoint sentinels are there (a
/// drive not plugged in leaves an empty mount point). `None`: unreachable.
pub fn present(hosts: &Hosts, v: &Values, site: &Site) -> Option<bool> {
    let q = |a: &Arg, suffix: &str| {
        let mut words = crate::exec::values::expand(a, v);
        crate::shell::quote(&format!("{}{suffix}", words.pop().unwrap_or_default()))
    };
    let test = format!(
        "if [ -f {} ] && [ -f {} ]; then echo there; else echo absent; fi; \
         if [ -L {} ]; then echo locked; fi",
        q(&site.volume_path, "/.nbkp-vol"),
        q(&site.path, "/.nbkp-dst"),
        q(&site.path, "/.nbkp-lock")
    );
    let out = hosts.run(site.host, &test, v)?;
    if site.snapshots == "none" && out.output.lines().any(|l| l == "locked") {
        // A snapshot is complete once it has its name; a mirror being
        // written is not.
        eprintln!(
            "Warning: {}: a run holds this destination's lock: it may be writing the mirror now",
            site.shown
        );
    }
    Some(out.output.lines().any(|l| l == "there"))
}

/// The destination's snapshots (a plain mirror: none, but its sentinels
/// must be there), and the one chosen; `Err`: what to tell the user.
pub fn open_snapshot(
    hosts: &Hosts,
    v: &Values,
    dest: &Site,
    wanted: Option<&str>,
) -> Result<(Listing, Option<String>), String> {
    match present(hosts, v, dest) {
        None => return Err(format!("{}: host unreachable", dest.shown)),
        Some(false) => {
            return Err(format!(
                "{}: not there (.nbkp-vol or .nbkp-dst missing: drive not mounted?)",
                dest.shown
            ))
        }
        Some(true) => {}
    }
    let listing = if dest.snapshots == "none" {
        Listing {
            state: "ok",
            latest: None,
            names: Vec::new(),
            detail: None,
        }
    } else {
        list(hosts, v, dest)
    };
    let chosen =
        choose(dest.snapshots, wanted, &listing).map_err(|e| format!("{}: {e}", dest.shown))?;
    Ok((listing, chosen))
}

/// A command's exit code (-1: killed or not started), standard output
/// and standard error.
pub struct Output {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// Runs `argv` here. With `progress`, rsync's `--info=progress2` lines
/// are shown on stderr as they come (as `nbkp run -p overall` shows them)
/// and left out of `stdout`; without, `stdout` is exactly what it wrote.
pub fn run(argv: &[String], progress: bool) -> Output {
    let mut cmd = crate::credentials::scrubbed(Command::new(&argv[0]));
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Output {
                code: -1,
                stdout: Vec::new(),
                stderr: format!("cannot run {}: {e}", argv[0]),
            }
        }
    };
    let mut stderr = child.stderr.take();
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(e) = stderr.as_mut() {
            let _ = e.read_to_end(&mut s);
        }
        String::from_utf8_lossy(&s).into_owned()
    });
    let mut stdout = Vec::new();
    let out = child.stdout.take();
    if !progress {
        // Unchanged: find's NUL-separated records hold any byte.
        if let Some(mut out) = out {
            let _ = out.read_to_end(&mut stdout);
        }
    } else if let Some(mut out) = out {
        let mut shown = Shown::new(&argv[0]);
        let mut buf = [0u8; 8192];
        let mut line = Vec::new();
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            for &b in &buf[..n] {
                // rsync redraws its progress line with \r; names never hold
                // a raw \r or \n (it writes them as \#015, \#012).
                if b == b'\r' || b == b'\n' {
                    shown.line(&mut stdout, &line);
                    line.clear();
                } else {
                    line.push(b);
                }
            }
        }
        shown.line(&mut stdout, &line);
        shown.finish();
    }
    let code = child.wait().ok().and_then(|s| s.code()).unwrap_or(-1);
    Output {
        code,
        stdout,
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// Where rsync's progress goes: on a terminal, a bar as `nbkp run`'s;
/// elsewhere, its line redrawn on stderr.
enum Shown {
    Bar(indicatif::ProgressBar),
    Line(bool),
}

impl Shown {
    fn new(what: &str) -> Shown {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() {
            return Shown::Line(false);
        }
        let bar = indicatif::ProgressBar::new(100);
        let template = if std::env::var_os("NO_COLOR").is_none() {
            "{spinner:.cyan} {msg:.bold} {wide_bar:.cyan/blue} {pos:>3}%"
        } else {
            "{spinner} {msg} {wide_bar} {pos:>3}%"
        };
        if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Shown::Bar(bar)
    }

    /// A progress line is shown; any other is kept in `out`.
    fn line(&mut self, out: &mut Vec<u8>, line: &[u8]) {
        if line.is_empty() {
            return;
        }
        let text = std::str::from_utf8(line).unwrap_or("");
        match (crate::exec::parse_progress(text), self) {
            (Some(p), Shown::Bar(bar)) => bar.set_position(u64::from(p)),
            (Some(_), Shown::Line(drawn)) => {
                eprint!("\r{}", text.trim());
                *drawn = true;
            }
            (None, _) => {
                out.extend_from_slice(line);
                out.push(b'\n');
            }
        }
    }

    fn finish(self) {
        match self {
            Shown::Bar(bar) => bar.finish_and_clear(),
            Shown::Line(true) => eprintln!(),
            Shown::Line(false) => {}
        }
    }
}

/// rsync's itemised output without `%L`: `-i` is `%i %n%L`, which adds
/// ` -> target` to symlinks and ` => name` to hard links, and would make
/// those names ambiguous.
pub const OUT_FORMAT: &str = "--out-format=%i %n";

/// One line of [`OUT_FORMAT`] (`YXcstpoguax name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The 11 flag characters (`*deleting  ` for a deletion).
    pub flags: String,
    /// The name, relative to the transfer's root, unescaped.
    pub name: String,
}

impl Item {
    pub fn is_deletion(&self) -> bool {
        self.flags.starts_with("*deleting")
    }
    /// `f` file, `d` directory, `L` symlink, `D` device, `S` special.
    pub fn kind(&self) -> char {
        self.flags.as_bytes().get(1).map_or('?', |&b| b as char)
    }
    /// A new entry on the receiving side (all attribute flags `+`).
    pub fn is_new(&self) -> bool {
        self.flags[2..].bytes().all(|b| b == b'+')
    }
    /// The modification times differ (`t`, or `T`: set to the transfer time).
    pub fn time_differs(&self) -> bool {
        matches!(self.flags.as_bytes()[4], b't' | b'T')
    }
    /// Nothing is sent or made (`.`): only attributes differ.
    pub fn attributes_only(&self) -> bool {
        self.flags.as_bytes()[0] == b'.'
    }
}

/// rsync's output read back: the itemised lines, and the names
/// `--info=skip1` said exist (`NAME exists`, left alone by
/// `--ignore-existing`). Other lines (warnings, `-v` chatter) are ignored.
pub fn parse_items(out: &[u8]) -> (Vec<Item>, Vec<String>) {
    let mut items = Vec::new();
    let mut exists = Vec::new();
    for line in out.split(|&b| b == b'\n') {
        if let Some(item) = parse_item(line) {
            items.push(item);
        } else if let Some(name) = line.strip_suffix(b" exists") {
            exists.push(unescape(name));
        }
    }
    (items, exists)
}

fn parse_item(line: &[u8]) -> Option<Item> {
    if line.len() < 13 || line[11] != b' ' {
        return None;
    }
    let flags = std::str::from_utf8(&line[..11]).ok()?;
    let ok = if flags.starts_with("*deleting") {
        true
    } else {
        let b = flags.as_bytes();
        b"<>ch.".contains(&b[0])
            && b"fdLDS".contains(&b[1])
            && b[2..].iter().all(|c| b".+ ?cstpoguaxnTbC".contains(c))
    };
    ok.then(|| Item {
        flags: flags.to_string(),
        name: unescape(&line[12..]),
    })
}

/// Undoes rsync's escaping of names in its output: `\#ooo` (octal) is
/// one byte; a literal `\#` is itself written `\#134#`. Non-UTF-8 bytes
/// are shown as U+FFFD.
pub fn unescape(name: &[u8]) -> String {
    let mut out = Vec::with_capacity(name.len());
    let mut i = 0;
    while i < name.len() {
        if name[i] == b'\\'
            && name.get(i + 1) == Some(&b'#')
            && i + 5 <= name.len()
            && name[i + 2..i + 5].iter().all(|b| (b'0'..=b'7').contains(b))
        {
            let v = name[i + 2..i + 5]
                .iter()
                .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            out.push(v as u8);
            i += 5;
        } else {
            out.push(name[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Opens the hosts for `f` and closes them (unmounting what was mounted).
pub fn with_hosts(plan: &Plan, f: impl FnOnce(&Hosts, &Values) -> i32) -> i32 {
    let (hosts, v) = match super::open_hosts(plan, false) {
        Ok(h) => h,
        Err(code) => return code,
    };
    let code = f(&hosts, &v);
    super::close_hosts(hosts, &v);
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(latest: Option<&str>, names: &[&str]) -> Listing {
        Listing {
            state: "ok",
            latest: latest.map(str::to_string),
            names: names.iter().map(|s| s.to_string()).collect(),
            detail: None,
        }
    }

    const A: &str = "2026-12-01T10:00:00.000Z";
    const B: &str = "2026-12-02T10:00:00.000Z";

    #[test]
    fn choosing_a_snapshot() {
        let l = listing(Some(B), &[A, B]);
        assert_eq!(choose("hard-link", None, &l), Ok(Some(B.into())));
        assert_eq!(choose("btrfs", Some("latest"), &l), Ok(Some(B.into())));
        assert_eq!(choose("hard-link", Some(A), &l), Ok(Some(A.into())));
        let e = choose("hard-link", Some("2026-01-01T00:00:00.000Z"), &l).unwrap_err();
        assert!(e.contains(B) && e.contains(A), "{e}");
        // A partial snapshot is never listed, so never chosen.
        let e = choose("hard-link", Some(&format!(".nbkp-partial-{B}")), &l).unwrap_err();
        assert!(e.starts_with("no snapshot named"), "{e}");
        assert!(choose("hard-link", None, &listing(None, &[]))
            .unwrap_err()
            .contains("no snapshot yet"));
        let mut absent = listing(None, &[]);
        absent.state = "absent";
        assert!(choose("btrfs", None, &absent)
            .unwrap_err()
            .contains("not there"));
        // A plain mirror is its own content.
        assert_eq!(choose("none", None, &absent), Ok(None));
        assert_eq!(choose("none", Some("latest"), &l), Ok(None));
        assert!(choose("none", Some(A), &l)
            .unwrap_err()
            .contains("no snapshots"));
    }

    #[test]
    fn content_dirs() {
        let ep = Arg::lit("/mnt/usb/docs");
        assert_eq!(content_dir(&ep, None), Arg::lit("/mnt/usb/docs/"));
        assert_eq!(
            content_dir(&ep, Some(A)),
            Arg::lit(format!("/mnt/usb/docs/snapshots/{A}/"))
        );
    }

    #[test]
    fn itemised_lines_and_escaped_names() {
        let out = b"sending incremental file list\n\
            >f+++++++++ new\\#012line\n\
            >f.st...... back\\#134#012slash\n\
            *deleting   gone dir/\n\
            .d..t...... ./\n\
            cL+++++++++ link\n\
            -lead exists\n\
            rsync: [sender] link_stat \"/x\" failed: No such file or directory (2)\n";
        let (items, exists) = parse_items(out);
        let names: Vec<&str> = items.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names,
            ["new\nline", "back\\#012slash", "gone dir/", "./", "link"]
        );
        assert!(items[0].is_new() && items[0].kind() == 'f');
        assert!(!items[1].is_new() && items[1].time_differs());
        assert!(items[2].is_deletion());
        assert!(items[3].attributes_only() && items[3].kind() == 'd');
        assert_eq!(items[4].kind(), 'L');
        assert_eq!(exists, ["-lead"]);
    }
}
