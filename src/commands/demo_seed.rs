//! `nbkp demo seed`: a sample setup as the Python nbkp's makes, with local volumes only.
//!
//! What it writes is first listed as data ([`Entry`]), so `-n` shows exactly
//! what a real seed creates. It never writes into a folder that already holds
//! a `config.yaml`: a seed must not overwrite anybody's config.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::cli::{CredentialProviderArg, DemoSeedArgs};

enum Entry {
    Dir(PathBuf),
    File(PathBuf, String),
    Symlink(PathBuf, &'static str),
    /// `size` MiB of pseudo-random bytes (they do not compress, so a transfer
    /// takes as long as the bytes say).
    Big(PathBuf, u64),
}

impl Entry {
    fn path(&self) -> &Path {
        match self {
            Entry::Dir(p) | Entry::File(p, _) | Entry::Symlink(p, _) | Entry::Big(p, _) => p,
        }
    }

    fn describe(&self) -> String {
        let p = self.path().display();
        match self {
            Entry::Dir(_) => format!("{p}/"),
            Entry::File(_, text) => format!("{p} ({} bytes)", text.len()),
            Entry::Symlink(_, target) => format!("{p} -> {target}"),
            Entry::Big(_, mib) => format!("{p} ({mib} MiB of random data)"),
        }
    }

    fn create(&self) -> std::io::Result<()> {
        if let Some(parent) = self.path().parent() {
            std::fs::create_dir_all(parent)?;
        }
        match self {
            Entry::Dir(p) => std::fs::create_dir_all(p),
            Entry::File(p, text) => std::fs::write(p, text),
            Entry::Symlink(p, target) => std::os::unix::fs::symlink(target, p),
            Entry::Big(p, mib) => write_random(p, *mib),
        }
    }
}

fn write_random(path: &Path, mib: u64) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    // xorshift64*: fast, and random enough that rsync cannot compress it.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for word in chunk.chunks_exact_mut(8) {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            word.copy_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        f.write_all(&chunk)?;
    }
    f.flush()
}

/// YAML double-quoted string (paths may hold anything).
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn config_text(dir: &Path, args: &DemoSeedArgs) -> String {
    let d = dir.display().to_string();
    let mut c = String::from(
        "# nbkp demo seed: a laptop, a USB drive with dated snapshots, a backup\n\
         # drive that copies the USB drive's latest snapshot, and a spare drive\n\
         # that is not plugged in (its syncs are skipped, never written to).\n",
    );
    if let Some(p) = args.credential_provider {
        let name = match p {
            CredentialProviderArg::Keyring => "keyring",
            CredentialProviderArg::Prompt => "prompt",
            CredentialProviderArg::Env => "env",
            CredentialProviderArg::Command => "command",
        };
        c.push_str(&format!("credential-provider: {name}\n"));
        if p == CredentialProviderArg::Command {
            c.push_str("credential-command: [pass, show, \"nbkp/{id}\"]\n");
        }
    }
    c.push_str("volumes:\n");
    for v in ["laptop", "usb-drive", "backup-drive", "spare-drive"] {
        c.push_str(&format!(
            "  {v}:\n    type: local\n    path: {}\n",
            q(&format!("{d}/{v}"))
        ));
    }
    c.push_str(
        "sync-endpoints:\n\
         \x20 documents: {volume: laptop, subdir: documents}\n\
         \x20 photos: {volume: laptop, subdir: photos}\n\
         \x20 usb-documents:\n    volume: usb-drive\n    subdir: documents\n    hard-link-snapshots: {enabled: true, max-snapshots: 10}\n\
         \x20 usb-photos: {volume: usb-drive, subdir: photos}\n\
         \x20 backup-documents: {volume: backup-drive, subdir: documents}\n\
         \x20 spare-photos: {volume: spare-drive, subdir: photos}\n\
         syncs:\n",
    );
    let extra = match &args.bandwidth_limit {
        Some(rate) => format!(
            "\n    rsync-options: {{extra-options: [{}]}}",
            q(&format!("--bwlimit={rate}"))
        ),
        None => String::new(),
    };
    for (name, src, dst, filters) in [
        (
            "documents-to-usb",
            "documents",
            "usb-documents",
            "\n    filters: [{exclude: \"*.tmp\"}]",
        ),
        ("photos-to-usb", "photos", "usb-photos", ""),
        ("usb-to-backup", "usb-documents", "backup-documents", ""),
        ("photos-to-spare", "photos", "spare-photos", ""),
    ] {
        c.push_str(&format!(
            "  {name}:\n    source: {src}\n    destination: {dst}{filters}{extra}\n"
        ));
    }
    c
}

fn entries(dir: &Path, args: &DemoSeedArgs) -> Vec<Entry> {
    let f = |p: &str, t: &str| Entry::File(dir.join(p), t.to_string());
    let mut e = vec![
        f("config.yaml", &config_text(dir, args)),
        f("laptop/.nbkp-vol", ""),
        f("laptop/documents/.nbkp-src", ""),
        f(
            "laptop/documents/letter.txt",
            "Dear nbkp,\nthank you for the backups.\n",
        ),
        f(
            "laptop/documents/notes/ideas.md",
            "# Ideas\n- back up before travelling\n",
        ),
        f(
            "laptop/documents/draft.tmp",
            "scratch: excluded by the sync's filter\n",
        ),
        f("laptop/photos/.nbkp-src", ""),
    ];
    for i in 1..=3 {
        e.push(f(
            &format!("laptop/photos/2026/img-{i:03}.jpg"),
            &format!("(pretend this is photo {i})\n").repeat(200),
        ));
    }
    if args.big_file_size > 0 {
        e.push(Entry::Big(
            dir.join("laptop/photos/big-video.bin"),
            args.big_file_size,
        ));
    }
    e.extend([
        f("usb-drive/.nbkp-vol", ""),
        f("usb-drive/documents/.nbkp-dst", ""),
        // The next sync reads this endpoint's `latest` as its source.
        f("usb-drive/documents/.nbkp-src", ""),
        Entry::Dir(dir.join("usb-drive/documents/snapshots")),
        Entry::Symlink(dir.join("usb-drive/documents/latest"), "/dev/null"),
        f("usb-drive/photos/.nbkp-dst", ""),
        f("backup-drive/.nbkp-vol", ""),
        f("backup-drive/documents/.nbkp-dst", ""),
        // Not plugged in: its mount point is an empty folder.
        Entry::Dir(dir.join("spare-drive")),
    ]);
    e
}

pub fn run(args: &DemoSeedArgs) -> i32 {
    let dir = match &args.base_dir {
        Some(d) => d.clone(),
        None if args.dry_run => std::env::temp_dir().join("nbkp-seed-XXXXXX"),
        None => match tempfile::Builder::new().prefix("nbkp-seed-").tempdir() {
            Ok(t) => t.keep(),
            Err(e) => {
                eprintln!("Error: cannot create a folder for the seed: {e}");
                return 1;
            }
        },
    };
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    let config = dir.join("config.yaml");
    if std::fs::symlink_metadata(&config).is_ok() {
        eprintln!(
            "Error: {} exists; the seed never overwrites a config (choose another --base-dir)",
            config.display()
        );
        return 1;
    }
    if args.docker {
        eprintln!(
            "Note: --docker: the Python nbkp's remote part runs an SSH server in a container. \
             Here a remote volume needs a host you can reach over SSH; add one to the config as \
             docs/getting-started.md shows (`ssh-endpoints:` and a `type: remote` volume). \
             Seeding the local part; `nbkp demo` shows a complete run with nothing to set up."
        );
    }
    if args.luks {
        eprintln!(
            "Note: --luks: an encrypted drive needs a real LUKS device and udisks2 (and rights \
             to unlock it), which a seed cannot make for you. Seeding the unencrypted drives; \
             docs/getting-started.md (\"An encrypted drive\") shows the `mount:` section to add."
        );
    }
    let all = entries(&dir, args);
    if args.dry_run {
        println!("Would create in {}:", dir.display());
        for e in &all {
            println!("  {}", e.describe());
        }
        return 0;
    }
    for e in &all {
        if let Err(err) = e.create() {
            eprintln!("Error: cannot create {}: {err}", e.path().display());
            return 1;
        }
    }
    // What was written must load: a broken sample would be our bug.
    if let Err(e) = crate::config::load(Some(&config)) {
        eprintln!("{}", e.render());
        return 1;
    }
    let c = config.display();
    println!(
        "Sample setup in {}\n\n\
         \x20 nbkp config show -c {c}          the config, explained\n\
         \x20 nbkp ordering graph -c {c}       which sync feeds which\n\
         \x20 nbkp preflight check -c {c}      what would run\n\
         \x20 nbkp run -c {c}                  back it up (run it twice: unchanged files are hard links)\n\
         \x20 nbkp snapshots show -c {c}       the dated snapshots on the USB drive",
        dir.display()
    );
    0
}
