//! Hooks: commands run on this machine around a sync, decided once.
//!
//! The config's global hooks wrap each sync's own: global `before`, the
//! sync's `before`, the transfer, then the sync's `after` and the global
//! `after` when it completed, or the sync's `on-failure` and the global
//! `on-failure` when it did not. Both back-ends run every hook as an argv
//! (never through a shell) with the environment listed here.

use serde::Serialize;

use super::args::{Arg, Piece, Var};
use crate::config::Hooks;
use crate::shell::quote;

/// One hook command.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HookCall {
    /// `global` or `sync`: where the config defines it.
    pub scope: &'static str,
    pub argv: Vec<String>,
    /// The command as a person would type it, for logs.
    pub shown: String,
}

/// One variable of a hook's environment.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HookEnv {
    pub name: &'static str,
    pub value: Arg,
}

/// What runs around one sync, in order, and the environment of each hook.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct SyncHooks {
    pub before: Vec<HookCall>,
    pub after: Vec<HookCall>,
    pub on_failure: Vec<HookCall>,
    pub env: Vec<HookEnv>,
}

impl SyncHooks {
    pub fn is_empty(&self) -> bool {
        self.before.is_empty() && self.after.is_empty() && self.on_failure.is_empty()
    }
}

/// Where one side of a sync is, for a hook: the SSH endpoint's name (empty
/// for this machine) and the endpoint's path on that host.
pub struct Place {
    pub host: String,
    pub path: Arg,
}

fn calls(scope: &'static str, commands: &[Vec<String>]) -> Vec<HookCall> {
    commands
        .iter()
        .map(|argv| HookCall {
            scope,
            argv: argv.clone(),
            shown: argv.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" "),
        })
        .collect()
}

/// The hooks of sync `slug`: the global ones around its own.
pub fn sync_hooks(
    global: &Hooks,
    own: &Hooks,
    slug: &str,
    source: Place,
    destination: Place,
) -> SyncHooks {
    if global.is_empty() && own.is_empty() {
        return SyncHooks::default();
    }
    let mut before = calls("global", &global.before);
    before.extend(calls("sync", &own.before));
    let mut after = calls("sync", &own.after);
    after.extend(calls("global", &global.after));
    let mut on_failure = calls("sync", &own.on_failure);
    on_failure.extend(calls("global", &global.on_failure));
    let var = |v: Var| Arg::template(vec![Piece::Var(v)]);
    let env = vec![
        HookEnv {
            name: "NBKP_HOOK",
            value: var(Var::HookKind),
        },
        HookEnv {
            name: "NBKP_SYNC",
            value: Arg::lit(slug.to_owned()),
        },
        HookEnv {
            name: "NBKP_STATUS",
            value: var(Var::HookStatus),
        },
        HookEnv {
            name: "NBKP_RSYNC_EXIT",
            value: var(Var::RsyncExit),
        },
        HookEnv {
            name: "NBKP_SOURCE",
            value: source.path,
        },
        HookEnv {
            name: "NBKP_SOURCE_HOST",
            value: Arg::lit(source.host),
        },
        HookEnv {
            name: "NBKP_DESTINATION",
            value: destination.path,
        },
        HookEnv {
            name: "NBKP_DESTINATION_HOST",
            value: Arg::lit(destination.host),
        },
        HookEnv {
            name: "NBKP_SNAPSHOT",
            value: var(Var::HookSnapshot),
        },
    ];
    SyncHooks {
        before,
        after,
        on_failure,
        env,
    }
}
