//! rsync options for a sync, decided once (spec §3.2).

use crate::config::Sync;

/// The defaults every sync gets unless `default-options-override` replaces them.
pub const DEFAULT_OPTIONS: &[&str] = &[
    "-a",
    "--delete",
    "--delete-excluded",
    "--partial-dir=.rsync-partial",
    "--safe-links",
];

/// Hide sentinels from the sender, protect them on the receiver. Always
/// present, also with `default-options-override`: without them `--delete`
/// removes the destination's `.nbkp-dst` and copies the source's sentinels.
pub const SENTINEL_FILTERS: &[&str] = &["--filter=H .nbkp-*", "--filter=P .nbkp-*"];

/// Options that do not depend on the run: base, sentinel filters, checksum,
/// compress, extra options, then the sync's filter rules and filter file.
pub fn sync_options(sync: &Sync) -> Vec<String> {
    let opts = &sync.rsync_options;
    let mut args: Vec<String> = match &opts.default_options_override {
        Some(custom) => custom.clone(),
        None => DEFAULT_OPTIONS.iter().map(|s| s.to_string()).collect(),
    };
    args.extend(SENTINEL_FILTERS.iter().map(|s| s.to_string()));
    if opts.checksum {
        args.push("--checksum".into());
    }
    if opts.compress {
        args.push("--compress".into());
    }
    args.extend(opts.extra_options.iter().cloned());
    args.extend(sync.filters.iter().map(|rule| format!("--filter={rule}")));
    if let Some(file) = &sync.filter_file {
        args.push(format!("--filter=merge {file}"));
    }
    args
}
