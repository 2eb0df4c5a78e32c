//! The client's cache of branches, for routing accounts without asking the registry
//! every time. Keyed by branch code (every account of a branch has the same route),
//! so it holds at most 10,000 entries, one per code. Time is passed in, so that the
//! tests choose it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use corebank_account_number::{BankPrefix, BranchCode};

use crate::view::BranchView;

#[derive(Debug)]
struct Entry {
    branch: BranchView,
    fetched_at: Instant,
}

/// Branches as last fetched, each valid for a time to live.
#[derive(Debug)]
pub(crate) struct RouteCache {
    ttl: Duration,
    entries: HashMap<u16, Entry>,
    /// The bank prefix of the account numbers the registry answered with: a number
    /// of another prefix is never answered from the cache (the registry refuses it).
    prefix: Option<BankPrefix>,
}

impl RouteCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: HashMap::new(),
            prefix: None,
        }
    }

    /// The bank prefix learned from the registry, if any.
    pub(crate) fn prefix(&self) -> Option<BankPrefix> {
        self.prefix
    }

    /// The cached branch, if it is younger than the time to live (an expired entry
    /// is dropped).
    pub(crate) fn get(&mut self, code: BranchCode, now: Instant) -> Option<BranchView> {
        let fresh = self
            .entries
            .get(&code.get())
            .map(|entry| now.saturating_duration_since(entry.fetched_at) < self.ttl)?;
        if fresh {
            self.entries
                .get(&code.get())
                .map(|entry| entry.branch.clone())
        } else {
            self.entries.remove(&code.get());
            None
        }
    }

    /// Stores a branch fetched at `now` (a zero time to live stores nothing).
    pub(crate) fn put(&mut self, branch: BranchView, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        self.entries.insert(
            branch.code.get(),
            Entry {
                branch,
                fetched_at: now,
            },
        );
        debug_assert!(self.entries.len() <= crate::BRANCHES_MAX);
    }

    pub(crate) fn learn_prefix(&mut self, prefix: BankPrefix) {
        if self.prefix != Some(prefix) {
            // Another bank's registry: nothing cached so far can be trusted.
            self.entries.clear();
            self.prefix = Some(prefix);
        }
    }

    pub(crate) fn invalidate(&mut self, code: BranchCode) {
        self.entries.remove(&code.get());
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    /// Records that `address` leads `code` (a replica said so in a `not_leader`
    /// answer). When it is not a replica the cache knows, the entry is dropped, so
    /// that the next lookup asks the registry.
    pub(crate) fn note_leader(&mut self, code: BranchCode, address: &str) -> bool {
        let known = self
            .entries
            .get_mut(&code.get())
            .is_some_and(|entry| entry.branch.set_leader_address(address));
        if !known {
            self.entries.remove(&code.get());
        }
        known
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::directory::Health;
    use crate::view::ReplicaView;

    fn branch(code: u16) -> BranchView {
        let replica = |node_id: u64, leader: bool| ReplicaView {
            node_id,
            address: format!("10.0.{code}.{node_id}:8080"),
            health: Health::Healthy,
            last_heartbeat_unix_ms: Some(1),
            applied_index: 0,
            term: 2,
            leader,
        };
        BranchView {
            code: BranchCode::new(code).unwrap(),
            name: "x".into(),
            region: "r".into(),
            replicas: vec![replica(1, true), replica(2, false)],
            leader: Some((1, 2)),
            registered_at_unix_ms: 0,
            as_of_unix_ms: 0,
        }
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let start = Instant::now();
        let mut cache = RouteCache::new(Duration::from_secs(30));
        let code = BranchCode::new(2).unwrap();
        cache.put(branch(2), start);
        assert!(cache.get(code, start).is_some());
        assert!(
            cache
                .get(code, start + Duration::from_millis(29_999))
                .is_some()
        );
        assert!(cache.get(code, start + Duration::from_secs(30)).is_none());
        assert_eq!(cache.len(), 0, "the expired entry is dropped");
    }

    #[test]
    fn invalidation_and_a_zero_ttl() {
        let now = Instant::now();
        let mut cache = RouteCache::new(Duration::from_secs(30));
        cache.put(branch(2), now);
        cache.put(branch(3), now);
        cache.invalidate(BranchCode::new(2).unwrap());
        assert!(cache.get(BranchCode::new(2).unwrap(), now).is_none());
        assert!(cache.get(BranchCode::new(3).unwrap(), now).is_some());
        cache.clear();
        assert_eq!(cache.len(), 0);

        let mut off = RouteCache::new(Duration::ZERO);
        off.put(branch(2), now);
        assert_eq!(off.len(), 0);
    }

    #[test]
    fn a_leader_hint_updates_or_drops_the_entry() {
        let now = Instant::now();
        let mut cache = RouteCache::new(Duration::from_secs(30));
        let code = BranchCode::new(7).unwrap();
        cache.put(branch(7), now);
        assert!(cache.note_leader(code, "10.0.7.2:8080"));
        let updated = cache.get(code, now).unwrap();
        assert_eq!(updated.leader_address(), Some("10.0.7.2:8080"));
        assert_eq!(updated.leader, Some((2, 2)));
        assert_eq!(updated.replicas.iter().filter(|r| r.leader).count(), 1);

        assert!(!cache.note_leader(code, "10.9.9.9:8080"));
        assert!(
            cache.get(code, now).is_none(),
            "an unknown leader drops the entry"
        );
    }

    #[test]
    fn learning_another_prefix_clears_the_cache() {
        let now = Instant::now();
        let mut cache = RouteCache::new(Duration::from_secs(30));
        cache.learn_prefix(BankPrefix::COREBANK);
        cache.put(branch(2), now);
        cache.learn_prefix(BankPrefix::COREBANK);
        assert_eq!(cache.len(), 1);
        cache.learn_prefix(BankPrefix::new("XD", "TEST").unwrap());
        assert_eq!(cache.len(), 0);
    }
}
