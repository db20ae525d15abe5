//! `nbkp sh`: the plan rendered as a standalone POSIX script.

use std::os::unix::fs::PermissionsExt;

use crate::cli::{OutputFormat, ShArgs};
use crate::plan::LowerOptions;

pub fn run(args: &ShArgs) -> i32 {
    if (args.relative_src || args.relative_dst) && args.output_file.is_none() {
        eprintln!("Error: --relative-src/--relative-dst require --output-file");
        return super::EXIT_USAGE;
    }
    let script_dir = args.output_file.as_ref().map(|f| {
        let abs = std::path::absolute(f).unwrap_or_else(|_| f.clone());
        abs.parent().map(|p| p.to_path_buf()).unwrap_or_default()
    });
    // darwin: local snapshot names use `-` instead of `:` in the time
    // (Finder-friendly). Any other name means "not darwin", as in the Python
    // nbkp; one that is neither is said, in case it is a typo.
    let darwin = match args.platform.as_deref() {
        Some("darwin") => true,
        Some("linux") => false,
        Some(other) => {
            eprintln!("Warning: unknown --platform {other:?}: writing the script as for linux (only darwin differs)");
            false
        }
        None => cfg!(target_os = "macos"),
    };
    let options = LowerOptions {
        relative_src: args.relative_src,
        relative_dst: args.relative_dst,
        script_dir,
        only: Vec::new(),
        darwin,
        no_prune: false,
        allow_unmounted: false,
        no_mount: false,
        no_umount: false,
        mounts_only: None,
    };
    let plan = match super::plan_for(
        args.file.config.as_deref(),
        &args.select,
        OutputFormat::Human,
        &options,
    ) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if args.plan {
        crate::output::print_json(&plan);
        return 0;
    }
    // Written as it is rendered: a large script is never held whole. A
    // render error is a bug of ours; the file is then left as it was (a
    // temporary file is renamed only after a complete script).
    let written = match &args.output_file {
        None => crate::render::script_to(&plan, std::io::stdout().lock()).map_err(Into::into),
        Some(path) => write_executable(path, |file| crate::render::script_to(&plan, file)),
    };
    // The process ends once the script is written: freeing a large plan
    // node by node would only add to the compile time (a tenth of it at
    // 1000 syncs), and the system takes the memory back anyway.
    std::mem::forget(plan);
    match (written, &args.output_file) {
        (Ok(()), None) => 0,
        (Ok(()), Some(path)) => {
            eprintln!("Written to {}", path.display());
            0
        }
        // The reader stopped early (`nbkp sh | head`): it has what it wanted;
        // exit as a program killed by SIGPIPE would, without a message.
        (Err(e), None) if is_broken_pipe(&*e) => 141,
        (Err(e), None) => {
            eprintln!("Error: could not write the script: {}", causes(&*e));
            1
        }
        (Err(e), Some(path)) => {
            eprintln!("Error: cannot write {}: {}", path.display(), causes(&*e));
            1
        }
    }
}

/// An error and what caused it, outermost first.
fn chain<'e>(
    e: &'e (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'e (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(e), |e| e.source())
}

fn is_broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    chain(e)
        .find_map(|c| c.downcast_ref::<std::io::Error>())
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// An error with what caused it (a failed write names the system's reason).
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    chain(e)
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

/// Writes through a temporary file and a rename, so an existing script is
/// never left half-written; the result is executable by its owner and group.
fn write_executable(
    path: &std::path::Path,
    write: impl FnOnce(&mut std::fs::File) -> Result<(), minijinja::Error>,
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    write(tmp.as_file_mut())?;
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode())
        .unwrap_or(0o644);
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode | 0o110))?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
