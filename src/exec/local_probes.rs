//! This machine's probes answered in-process: the same tokens as
//! `nbkp_probe_KIND` in `templates/lib.sh`, without starting a shell and a
//! `stat`, `tr` and `readlink` per destination (most of `nbkp run`'s own
//! cost on a rerun with nothing to copy). A probe whose answer could differ
//! from the shell's (a file system type GNU `stat` names in a way not
//! listed here, a mount option, a drive) is not answered, and the caller
//! then asks the shell for all of them.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::plan::Probe;

use super::local_ops::find_latest;
use super::values::{expand, Values};

/// Every probe's answer, or `None` when one of them needs the shell.
pub fn answer_all(probes: &[Probe], v: &Values) -> Option<Vec<Option<String>>> {
    probes
        .iter()
        .map(|p| answer(p, v).map(Some))
        .collect::<Option<Vec<_>>>()
}

fn path_of(arg: &crate::plan::Arg, v: &Values) -> String {
    expand(arg, v).join("")
}

fn flag(b: bool) -> String {
    if b { "1" } else { "0" }.to_string()
}

/// One probe's token, as `nbkp_probe_KIND` prints it.
pub fn answer(probe: &Probe, v: &Values) -> Option<String> {
    Some(match probe {
        Probe::Reachable => "1".into(),
        Probe::File { path } => flag(Path::new(&path_of(path, v)).is_file()),
        Probe::WritableDir { path } => {
            let p = path_of(path, v);
            flag(Path::new(&p).is_dir() && writable(&p))
        }
        Probe::SnapshotsDir { path } => {
            let p = path_of(path, v);
            if !Path::new(&p).is_dir() {
                "0".into()
            } else if writable(&p) {
                "1".into()
            } else {
                "ro".into()
            }
        }
        // The probes only ask for programs, never for shell builtins.
        Probe::Command { name } => flag(crate::programs::find(name).is_some()),
        Probe::RsyncVersion => rsync_state(),
        Probe::FsType { path } => fs_type(&path_of(path, v))?,
        Probe::Subvolume { path } => {
            let p = path_of(path, v);
            if !Path::new(&p).is_dir() {
                "missing".into()
            } else {
                // `stat -c %i` does not follow a symbolic link.
                flag(std::fs::symlink_metadata(&p).is_ok_and(|m| m.ino() == 256))
            }
        }
        Probe::Latest { endpoint } => latest_state(&path_of(endpoint, v)).into(),
        Probe::NewestSnapshot { endpoint } => {
            super::local_ops::snapshot_names(Path::new(&path_of(endpoint, v)))
                .pop()
                .unwrap_or_else(|| "-".into())
        }
        Probe::MountOption { .. } | Probe::DaemonFile { .. } | Probe::Mount { .. } => return None,
    })
}

/// `test -w`: access(2), which also answers "no" on a read-only mount.
fn writable(path: &str) -> bool {
    let Ok(c) = CString::new(Path::new(path).as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string for the call's duration.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// `nbkp_rsync_state`: rsync's first `--version` line, classified.
fn rsync_state() -> String {
    if crate::programs::find("rsync").is_none() {
        return "missing".into();
    }
    let out = std::process::Command::new("rsync")
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    let text = out.map(|o| o.stdout).unwrap_or_default();
    let first = String::from_utf8_lossy(&text);
    let first = first.lines().next().unwrap_or("");
    rsync_class(first).into()
}

/// The shell's `case` on the version line, in the same order.
fn rsync_class(line: &str) -> &'static str {
    if line.contains("openrsync") {
        return "openrsync";
    }
    let major = line.match_indices("version ").find_map(|(i, _)| {
        let rest = &line[i + "version ".len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let dot = rest[digits.len()..].starts_with('.');
        (dot && !digits.is_empty()).then_some(digits)
    });
    match major {
        Some(d) if d.len() == 2 && !d.starts_with('0') => "ok",
        Some(d) if d.len() == 1 && d.as_bytes()[0] >= b'3' => "ok",
        Some(d) if d.len() == 1 => "old",
        _ => "unknown",
    }
}

/// `stat -f -c %T` as a token, for the file systems whose GNU name is
/// listed; any other is left to the shell (`None`).
fn fs_type(path: &str) -> Option<String> {
    let Ok(c) = CString::new(path.as_bytes()) else {
        return Some("unknown".into());
    };
    // SAFETY: `buf` is a plain C struct, written by statfs before it is read.
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated and `buf` a valid statfs for the call.
    if unsafe { libc::statfs(c.as_ptr(), &mut buf) } != 0 {
        return Some("unknown".into());
    }
    // Names as GNU coreutils prints them, already reduced to a token
    // (`ext2/ext3` becomes `ext2ext3`, as nbkp_token makes it).
    let name = match buf.f_type as u32 {
        0x9123_683E => "btrfs",
        0xEF53 => "ext2ext3",
        0x0102_1994 => "tmpfs",
        0x5846_5342 => "xfs",
        0x4d44 => "msdos",
        0x2011_BAB0 => "exfat",
        0x794C_7630 => "overlayfs",
        0x2FC1_2FC1 => "zfs",
        0x6969 => "nfs",
        0x6573_5546 => "fuseblk",
        0x5346_544e => "ntfs",
        0x8584_58f6 => "ramfs",
        0x7371_7368 => "squashfs",
        0xF2F5_2010 => "f2fs",
        _ => return None,
    };
    Some(name.into())
}

/// `nbkp_latest_state`.
fn latest_state(endpoint: &str) -> &'static str {
    let ep = Path::new(endpoint);
    let link = ep.join("latest");
    if !std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()) {
        return "missing";
    }
    match std::fs::read_link(&link) {
        Err(_) => "invalid",
        Ok(t) if t.as_os_str() == "/dev/null" => "devnull",
        Ok(_) if find_latest(ep).is_some() => "snapshot",
        Ok(_) => "invalid",
    }
}

#[cfg(test)]
mod tests {
    use super::{answer, rsync_class};
    use crate::exec::values::Values;
    use crate::plan::{Arg, Probe};
    use std::os::unix::fs::symlink;

    /// The shell's answers to the same probes, from the real library.
    fn shell_answers(probes: &[Probe]) -> Vec<String> {
        let script = format!(
            "{}\n{}\n",
            crate::runtime::LIB,
            crate::plan::words::probe_script(probes)
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .expect("sh");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut answers = vec![String::new(); probes.len()];
        for line in text.lines() {
            let (i, v) = line.split_once(' ').expect("INDEX TOKEN");
            answers[i.parse::<usize>().unwrap()] = v.to_string();
        }
        answers
    }

    #[test]
    fn native_answers_match_the_shell_library_on_real_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mk = |p: &str| std::fs::create_dir_all(d.join(p)).unwrap();
        mk("ep-snap/snapshots/2026-03-06T14:30:00.123Z");
        symlink(
            "snapshots/2026-03-06T14:30:00.123Z",
            d.join("ep-snap/latest"),
        )
        .unwrap();
        mk("ep-null/snapshots");
        symlink("/dev/null", d.join("ep-null/latest")).unwrap();
        mk("ep-gone/snapshots");
        symlink(
            "snapshots/2026-03-06T14:30:00.999Z",
            d.join("ep-gone/latest"),
        )
        .unwrap();
        mk("ep-bad/snapshots/not-a-name");
        symlink("snapshots/not-a-name", d.join("ep-bad/latest")).unwrap();
        mk("ep-other");
        symlink("/etc", d.join("ep-other/latest")).unwrap();
        mk("ep-plain/latest");
        // Newest: by name; unfinished and half-removed ones are not snapshots.
        mk("ep-snap/snapshots/2026-03-05T10:00:00.000Z");
        mk("ep-snap/snapshots/.nbkp-partial-2027-01-01T00:00:00.000Z");
        mk("ep-snap/snapshots/.nbkp-removing-2028-01-01T00:00:00.000Z");
        mk("ep-none");
        std::fs::write(d.join("sentinel"), "").unwrap();
        symlink(d.join("sentinel"), d.join("sentinel-link")).unwrap();
        symlink(d.join("nothing"), d.join("dangling")).unwrap();
        let lit = |p: &str| Arg::lit(d.join(p).display().to_string());
        let mut probes = vec![Probe::Reachable, Probe::RsyncVersion];
        for p in [
            "sentinel",
            "sentinel-link",
            "dangling",
            "ep-none",
            "nothing",
        ] {
            probes.push(Probe::File { path: lit(p) });
            probes.push(Probe::WritableDir { path: lit(p) });
            probes.push(Probe::SnapshotsDir { path: lit(p) });
            probes.push(Probe::Subvolume { path: lit(p) });
        }
        for ep in [
            "ep-snap", "ep-null", "ep-gone", "ep-bad", "ep-other", "ep-plain", "ep-none", "nothing",
        ] {
            probes.push(Probe::Latest { endpoint: lit(ep) });
            probes.push(Probe::NewestSnapshot { endpoint: lit(ep) });
        }
        for name in ["sh", "rsync", "no-such-program-nbkp"] {
            probes.push(Probe::Command { name: name.into() });
        }
        // File system types this machine has (/ and /tmp); unlisted types
        // are not answered natively, which the caller handles.
        for p in ["/", "/tmp", "/proc", "/no/such/place"] {
            probes.push(Probe::FsType {
                path: Arg::Lit(p.into()),
            });
        }
        let v = Values::default();
        let shell = shell_answers(&probes);
        for (probe, want) in probes.iter().zip(&shell) {
            if let Some(got) = answer(probe, &v) {
                assert_eq!(&got, want, "{probe:?}");
            } else {
                assert!(
                    matches!(probe, Probe::FsType { .. }),
                    "{probe:?} unanswered"
                );
            }
        }
        // The sentinels and latest states really were told apart.
        let native: Vec<_> = probes.iter().map(|p| answer(p, &v)).collect();
        assert!(native.contains(&Some("snapshot".into())));
        assert!(native.contains(&Some("invalid".into())));
        assert!(native.contains(&Some("devnull".into())));
        assert!(native.contains(&Some("missing".into())));
    }

    #[test]
    fn rsync_versions_are_classified_like_the_shell() {
        let cases = [
            ("rsync  version 3.2.7  protocol version 31", "ok"),
            ("rsync  version 10.0.1  protocol version 40", "ok"),
            ("rsync  version 100.0.1  protocol version 40", "unknown"),
            ("rsync  version 2.6.9  protocol version 29", "old"),
            ("openrsync: protocol version 29", "openrsync"),
            ("something else", "unknown"),
            ("", "unknown"),
        ];
        for (line, want) in cases {
            assert_eq!(rsync_class(line), want, "{line}");
        }
    }
}
