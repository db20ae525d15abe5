//! What a config declared, whether or not it decoded.

use std::collections::HashSet;

/// Entries that were declared but failed to decode: references to them are
/// not reported again as "unknown".
#[derive(Debug, Default)]
pub struct Declared {
    pub ssh_endpoints: HashSet<String>,
    pub volumes: HashSet<String>,
    pub sync_endpoints: HashSet<String>,
    pub syncs: HashSet<String>,
}
