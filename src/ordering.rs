//! The order syncs run in: a sync reading an endpoint runs after the sync that
//! writes it. Kahn's algorithm, generation by generation, exactly as the Python
//! nbkp orders them (the order is visible in logs and generated scripts).

use crate::config::model::Config;
use indexmap::IndexMap;
use std::collections::{HashMap, HashSet};

/// Direct predecessor of each sync: the sync whose destination is its source.
/// Destinations are unique, so there is at most one.
pub fn predecessors<'c>(
    config: &'c Config,
    selected: &[&'c str],
) -> IndexMap<&'c str, Option<&'c str>> {
    let mut writer_of: IndexMap<&str, &str> = IndexMap::default();
    for slug in selected {
        let sync = &config.syncs[*slug];
        writer_of.insert(sync.destination.slug.as_str(), slug);
    }
    selected
        .iter()
        .map(|slug| {
            let sync = &config.syncs[*slug];
            let pred = writer_of
                .get(sync.source.slug.as_str())
                .copied()
                .filter(|p| p != slug);
            (*slug, pred)
        })
        .collect()
}

/// Syncs in execution order, or the slugs of a cycle (`a -> b -> a`).
pub fn topological<'c>(
    config: &'c Config,
    selected: &[&'c str],
) -> Result<Vec<&'c str>, Vec<String>> {
    let pred = predecessors(config, selected);
    let mut nodes: Vec<&str> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::default();
    for slug in selected {
        if seen.insert(slug) {
            nodes.push(slug);
        }
        if let Some(p) = pred[slug] {
            if seen.insert(p) {
                nodes.push(p);
            }
        }
    }
    // Dependents of each sync, in file order.
    let mut successors: HashMap<&str, Vec<&'c str>> = HashMap::default();
    for s in selected {
        if let Some(p) = pred[s] {
            successors.entry(p).or_default().push(s);
        }
    }
    let mut ready: Vec<&str> = nodes
        .iter()
        .copied()
        .filter(|n| pred[n].is_none())
        .collect();
    let mut out = Vec::new();
    while !ready.is_empty() {
        let group = std::mem::take(&mut ready);
        for n in &group {
            ready.extend(successors.get(n).into_iter().flatten().copied());
        }
        out.extend(group);
    }
    if out.len() < selected.len() {
        return Err(find_cycle(&pred, &out, selected));
    }
    Ok(out)
}

fn find_cycle(
    pred: &IndexMap<&str, Option<&str>>,
    done: &[&str],
    selected: &[&str],
) -> Vec<String> {
    // Every sync left over is on a cycle or downstream of one; walking
    // predecessors from the first leftover in file order must revisit a node.
    let start = selected
        .iter()
        .find(|s| !done.contains(*s))
        .copied()
        .unwrap_or_default();
    let mut path = vec![start];
    let mut cur = start;
    while let Some(Some(p)) = pred.get(cur) {
        if let Some(i) = path.iter().position(|x| x == p) {
            // The cycle in data-flow order: writer before reader.
            let mut cycle: Vec<String> = path[i..].iter().rev().map(|s| s.to_string()).collect();
            cycle.push(cycle[0].clone());
            return cycle;
        }
        path.push(p);
        cur = p;
    }
    vec![start.to_string()]
}
