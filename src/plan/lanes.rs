//! Which syncs may run at once: each sync holds resources (the drive it
//! writes, the remote hosts it talks to), and syncs that share one, directly
//! or through others, form a *lane* that runs in plan order. Lanes run
//! concurrently; a sync whose upstream is in another lane waits for it to
//! end. Decided once, here; both back-ends follow it (see
//! docs/concurrency.md). What only the run can know (two volumes on one
//! device, a rotational source disk) joins lanes further at run time.

use super::{Arg, Host, Site, SyncPlan};
use crate::config::model::Config;
use serde::Serialize;

/// The most syncs that run at once by default, however many lanes there are.
pub const DEFAULT_MAX_JOBS: usize = 4;

/// Syncs that run one after the other, in plan order.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Lane {
    /// Indexes into `Plan::syncs`, in order.
    pub syncs: Vec<usize>,
    /// The resources its syncs hold (`volume:NAME`, `host:NAME`, `hooks`).
    pub resources: Vec<String>,
}

/// A sync's local paths whose device ids the run compares: its
/// destination's volume (two volumes on one drive are one resource) and its
/// source's volume (a rotational disk is read by one sync at a time).
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct LocalDevices {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<Arg>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Arg>,
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

fn union(parent: &mut [usize], a: usize, b: usize) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    // The lower index stays the root: lanes keep plan order.
    if ra != rb {
        let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
        parent[hi] = lo;
    }
}

/// The lanes of `syncs`, and each sync's lane (by index).
pub fn lanes(
    config: &Config,
    hosts: &[Host],
    sites: &[Site],
    syncs: &[SyncPlan],
) -> (Vec<Lane>, Vec<usize>) {
    let site = |slug: &str| sites.iter().find(|s| s.slug == slug);
    let limit = |host: usize| {
        config
            .ssh_endpoints
            .get(&hosts[host].name)
            .map_or(1, |e| e.max_parallel_syncs as usize)
    };
    // Each sync's resources; hosts that allow more than one sync at once
    // are shared out below instead.
    let mut keys: Vec<Vec<String>> = Vec::new();
    let mut wide: Vec<Vec<usize>> = Vec::new();
    for sync in syncs {
        let mut k = Vec::new();
        let mut w = Vec::new();
        let (src, dst) = (site(&sync.source), site(&sync.destination));
        if let Some(dst) = dst {
            k.push(format!("volume:{}", dst.volume));
        }
        for s in [src, dst].into_iter().flatten() {
            if hosts[s.host].ssh.is_some() {
                if limit(s.host) > 1 {
                    w.push(s.host);
                } else {
                    k.push(format!("host:{}", hosts[s.host].name));
                }
            }
        }
        // Hooks are commands of the user's that may touch anything.
        if !sync.hooks.is_empty() {
            k.push("hooks".into());
        }
        k.dedup();
        w.dedup();
        keys.push(k);
        wide.push(w);
    }
    let mut parent: Vec<usize> = (0..syncs.len()).collect();
    for i in 0..syncs.len() {
        for j in 0..i {
            if keys[i].iter().any(|k| keys[j].contains(k)) {
                union(&mut parent, i, j);
            }
        }
    }
    // A host allowing N syncs at once: its lanes are folded into N.
    let mut wide_hosts: Vec<usize> = wide.iter().flatten().copied().collect();
    wide_hosts.sort_unstable();
    wide_hosts.dedup();
    for h in wide_hosts {
        let mut roots: Vec<usize> = Vec::new();
        for (i, w) in wide.iter().enumerate() {
            let r = find(&mut parent, i);
            if w.contains(&h) && !roots.contains(&r) {
                roots.push(r);
            }
        }
        let n = limit(h);
        for i in n..roots.len() {
            union(&mut parent, roots[i], roots[i % n]);
        }
        for (i, w) in wide.iter().enumerate() {
            if w.contains(&h) {
                keys[i].push(format!("host:{}", hosts[h].name));
            }
        }
    }
    let mut out: Vec<Lane> = Vec::new();
    let mut root_lane: Vec<Option<usize>> = vec![None; syncs.len()];
    let mut of = Vec::with_capacity(syncs.len());
    for (i, k) in keys.iter().enumerate() {
        let r = find(&mut parent, i);
        let lane = *root_lane[r].get_or_insert_with(|| {
            out.push(Lane {
                syncs: Vec::new(),
                resources: Vec::new(),
            });
            out.len() - 1
        });
        out[lane].syncs.push(i);
        for key in k {
            if !out[lane].resources.contains(key) {
                out[lane].resources.push(key.clone());
            }
        }
        of.push(lane);
    }
    (out, of)
}

/// The local device paths of a sync (see [`LocalDevices`]).
pub fn local_devices(sites: &[Site], sync: &SyncPlan) -> LocalDevices {
    let local = |slug: &str| {
        sites
            .iter()
            .find(|s| s.slug == slug && s.host == 0)
            .map(|s| s.volume_path.clone())
    };
    LocalDevices {
        destination: local(&sync.destination),
        source: local(&sync.source),
    }
}

/// How many syncs run at once by default: one per lane, at most
/// [`DEFAULT_MAX_JOBS`].
pub fn default_jobs(lanes: &[Lane]) -> usize {
    lanes.len().clamp(1, DEFAULT_MAX_JOBS)
}
