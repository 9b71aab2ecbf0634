//! The in-memory store: atomic, bounded and sharded, for one process.

use std::{
    collections::hash_map::RandomState,
    fmt,
    future::{Ready, ready},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use super::{Claim, Store, StoreError, Token};
use crate::expiring::{ExpiringMap, Key, Lookup, SWEEP, later};

/// The default bound on the number of keys a [`MemoryStore`] keeps: 100,000, claimed or done.
///
/// A record is never dropped before it expires, so this bounds how many deliveries a store can
/// remember at once: with a day's retention, 100,000 keys is about 1.16 new events a second on
/// average, sustained. Past that, new events are refused (503) until records expire; size the
/// store with [`MemoryStore::with_max_entries`] for the traffic and retention you expect.
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

const SHARDS: usize = 32;

/// A [`Store`] in this process's memory: fine for one instance, not shared between replicas
/// (use `RedisStore` for that), and forgotten on restart.
///
/// It is atomic (each key's shard is locked while it is claimed), split into 32 shards so that
/// concurrent requests rarely wait for each other, and bounded: it keeps at most `max_entries`
/// keys ([`DEFAULT_MAX_ENTRIES`] unless set), claimed or done, each shard a 32nd of them.
///
/// It keeps its promise for the whole retention: a record (a claim within its lease, a done
/// record within its retention) is never dropped before it expires. Expired records go first:
/// a few are removed as traffic goes on, so memory returns to what the live records need, and
/// as many as needed when a shard is full. When a shard is full of records that have not
/// expired, a claim of a new key is refused with [`StoreError::Full`] (the deduplication layer
/// answers 503: the provider retries, and nothing is acknowledged that was not recorded; a
/// layer built with [`fail_open`](crate::dedupe::DedupeLayer::fail_open) runs the handler
/// without deduplication instead, as on any store error). As
/// the bound is per shard, a store may refuse a key while it holds somewhat fewer than
/// `max_entries` live records (its shard is full while others are not). [`stats`](Self::stats)
/// counts the records removed once expired and the claims refused.
///
/// Records are ordered by expiry in a min-heap per shard, so layers sharing one store may use
/// different leases and retentions: a claim costs O(log n) amortised, and a refusal by a full
/// shard in which nothing has expired O(1) amortised, without scanning the shard.
///
/// Cloning it gives another handle on the same records.
///
/// See the [module docs](super) for an example.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

/// What a [`MemoryStore`] holds and has done, from [`MemoryStore::stats`]: for metrics and
/// capacity planning.
///
/// The shards are read one after the other, so with concurrent requests the figures may be a
/// few operations apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryStoreStats {
    /// How many keys it holds, claimed or done (expired ones not removed yet included).
    pub len: usize,
    /// Its bound on keys: `max_entries` as set, rounded up to a multiple of the 32 shards.
    pub max_entries: usize,
    /// How many records were removed because they had expired (by the sweep as traffic goes
    /// on, to make room, or replaced by a new claim of their key), since the store was made.
    pub expired_removed: u64,
    /// How many claims were refused with [`StoreError::Full`] because the key's shard was full
    /// of records that had not expired, since the store was made.
    pub refused_full: u64,
}

struct Inner {
    hasher: RandomState,
    max_entries: usize,
    per_shard: usize,
    shards: Box<[Mutex<Shard>]>,
}

type Shard = ExpiringMap<State>;

enum State {
    Claimed(Token),
    Done,
}

impl MemoryStore {
    /// A store that keeps up to [`DEFAULT_MAX_ENTRIES`] keys.
    pub fn new() -> Self {
        Self::with_max_entries(DEFAULT_MAX_ENTRIES)
    }

    /// A store that keeps up to `max_entries` keys, claimed or done (at least one per shard:
    /// the bound is rounded up to a multiple of 32, and each shard holds a 32nd of it).
    pub fn with_max_entries(max_entries: usize) -> Self {
        let per_shard = max_entries.div_ceil(SHARDS).max(1);
        Self {
            inner: Arc::new(Inner {
                hasher: RandomState::new(),
                max_entries: per_shard.saturating_mul(SHARDS),
                per_shard,
                shards: (0..SHARDS)
                    .map(|_| Mutex::new(ExpiringMap::new()))
                    .collect(),
            }),
        }
    }

    /// How many keys the store holds now (claimed or done, expired ones not yet removed
    /// included).
    pub fn len(&self) -> usize {
        self.inner.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many keys it holds, its bound, how many expired records it removed and how many
    /// claims it refused because it was full.
    pub fn stats(&self) -> MemoryStoreStats {
        let mut stats = MemoryStoreStats {
            len: 0,
            max_entries: self.inner.max_entries,
            expired_removed: 0,
            refused_full: 0,
        };
        for shard in self.inner.shards.iter() {
            let shard = lock(shard);
            stats.len += shard.len();
            stats.expired_removed += shard.expired();
            stats.refused_full += shard.refused();
        }
        stats
    }

    /// `text` with its hash, and its shard, locked. The shard is taken from bits of the hash
    /// that a shard's table does not use to place its keys.
    fn shard<'k>(&self, text: &'k str) -> (Key<'k>, MutexGuard<'_, Shard>) {
        let key = Key::new(&self.inner.hasher, text);
        let index = (key.hash >> 32) as usize % SHARDS;
        (key, lock(&self.inner.shards[index]))
    }

    fn claim_now(&self, key: &str, token: &Token, lease: Duration) -> Result<Claim, StoreError> {
        let now = Instant::now();
        let (key, mut shard) = self.shard(key);
        shard.sweep(now, SWEEP);
        match shard.lookup(key, now) {
            Lookup::Live(State::Claimed(_)) => return Ok(Claim::InFlight),
            Lookup::Live(State::Done) => return Ok(Claim::Done),
            // Replaced in place.
            Lookup::Expired => {}
            Lookup::Absent => {
                if !shard.vacancy(now, self.inner.per_shard) {
                    return Err(StoreError::Full {
                        max_entries: self.inner.max_entries,
                    });
                }
            }
        }
        shard.insert(key, State::Claimed(token.clone()), later(now, lease), now);
        Ok(Claim::Acquired)
    }

    fn complete_now(&self, key: &str, token: &Token, retention: Duration) {
        let now = Instant::now();
        let (key, mut shard) = self.shard(key);
        shard.update(key, later(now, retention), |state| {
            matches!(state, State::Claimed(held) if held == token).then_some(State::Done)
        });
        shard.sweep(now, SWEEP);
    }

    fn release_now(&self, key: &str, token: &Token) {
        let (key, mut shard) = self.shard(key);
        shard.remove_if(
            key,
            |state| matches!(state, State::Claimed(held) if held == token),
        );
    }
}

/// Locks a shard. Nothing in a change can panic half-way (an allocation failure aborts), and
/// were it to, the shard would be left with a stale heap item at worst, which is skipped: a
/// poisoned lock is used as it is.
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stats = self.stats();
        f.debug_struct("MemoryStore")
            .field("max_entries", &stats.max_entries)
            .field("len", &stats.len)
            .field("expired_removed", &stats.expired_removed)
            .field("refused_full", &stats.refused_full)
            .finish()
    }
}

impl Store for MemoryStore {
    type ClaimFuture = Ready<Result<Claim, StoreError>>;
    type SettleFuture = Ready<Result<(), StoreError>>;

    fn claim(&self, key: &str, token: &Token, lease: Duration) -> Self::ClaimFuture {
        ready(self.claim_now(key, token, lease))
    }

    fn complete(&self, key: &str, token: &Token, retention: Duration) -> Self::SettleFuture {
        self.complete_now(key, token, retention);
        ready(Ok(()))
    }

    fn release(&self, key: &str, token: &Token) -> Self::SettleFuture {
        self.release_now(key, token);
        ready(Ok(()))
    }

    fn abandon(&self, key: &str, token: &Token) {
        self.release_now(key, token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(300);
    const DAY: Duration = Duration::from_secs(86_400);

    /// A claim of `key` by a new delivery.
    fn claim(store: &MemoryStore, key: &str) -> Claim {
        store.claim_now(key, &Token::random(), LEASE).unwrap()
    }

    fn acquire(store: &MemoryStore, key: &str) -> Token {
        let token = Token::random();
        match store.claim_now(key, &token, LEASE).unwrap() {
            Claim::Acquired => token,
            other => panic!("{key}: {other:?}"),
        }
    }

    #[test]
    fn claim_complete_release() {
        let store = MemoryStore::new();
        let token = acquire(&store, "a");
        assert_eq!(claim(&store, "a"), Claim::InFlight);
        // Another token cannot settle the claim.
        store.release_now("a", &Token::random());
        store.complete_now("a", &Token::random(), DAY);
        assert_eq!(claim(&store, "a"), Claim::InFlight);
        store.release_now("a", &token);
        let token = acquire(&store, "a");
        store.complete_now("a", &token, DAY);
        assert_eq!(claim(&store, "a"), Claim::Done);
        // A done key is not released by its old token.
        store.release_now("a", &token);
        assert_eq!(claim(&store, "a"), Claim::Done);
    }

    #[test]
    fn an_expired_lease_is_reclaimable_and_the_old_holder_cannot_settle() {
        let store = MemoryStore::new();
        let old = Token::random();
        assert_eq!(
            store.claim_now("k", &old, Duration::ZERO).unwrap(),
            Claim::Acquired
        );
        let new = acquire(&store, "k");
        assert_ne!(old, new);
        store.complete_now("k", &old, DAY);
        assert_eq!(claim(&store, "k"), Claim::InFlight);
        store.complete_now("k", &new, DAY);
        assert_eq!(claim(&store, "k"), Claim::Done);
    }

    #[test]
    fn expired_done_records_are_claimable_again() {
        let store = MemoryStore::new();
        let token = acquire(&store, "k");
        store.complete_now("k", &token, Duration::ZERO);
        assert!(matches!(claim(&store, "k"), Claim::Acquired));
    }

    #[test]
    fn memory_is_bounded_and_no_unexpired_record_is_dropped() {
        let store = MemoryStore::with_max_entries(SHARDS * 4);
        let mut recorded = Vec::new();
        for i in 0..10_000 {
            let key = format!("done-{i}");
            let token = Token::random();
            match store.claim_now(&key, &token, LEASE) {
                Ok(Claim::Acquired) => {
                    store.complete_now(&key, &token, DAY);
                    recorded.push(key);
                }
                Err(StoreError::Full { .. }) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(recorded.len(), SHARDS * 4);
        for key in &recorded {
            assert_eq!(claim(&store, key), Claim::Done);
        }
        let stats = store.stats();
        assert_eq!(
            (stats.len, stats.max_entries, stats.expired_removed),
            (SHARDS * 4, SHARDS * 4, 0)
        );
        assert_eq!(stats.refused_full, 10_000 - SHARDS as u64 * 4);
    }

    #[test]
    fn expired_records_are_swept_as_traffic_goes_on() {
        let store = MemoryStore::with_max_entries(SHARDS * 1_000);
        for i in 0..5_000 {
            let key = format!("brief-{i}");
            let token = acquire(&store, &key);
            store.complete_now(&key, &token, Duration::ZERO);
        }
        // Each operation removes a few expired records: the store holds about none of them.
        assert!(store.len() < 100, "{}", store.len());
        let stats = store.stats();
        assert_eq!(stats.expired_removed, 5_000 - stats.len as u64);
        assert_eq!(stats.refused_full, 0);
    }

    #[test]
    fn a_store_full_of_live_claims_refuses_new_ones() {
        let store = MemoryStore::with_max_entries(SHARDS);
        let mut refused = 0;
        for i in 0..SHARDS * 8 {
            match store.claim_now(&format!("claim-{i}"), &Token::random(), LEASE) {
                Ok(Claim::Acquired) => {}
                Err(StoreError::Full { max_entries }) => {
                    assert_eq!(max_entries, SHARDS);
                    refused += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(refused > 0);
        assert!(store.len() <= SHARDS);
        // Expired claims make room.
        let store = MemoryStore::with_max_entries(SHARDS);
        for i in 0..SHARDS * 8 {
            assert!(matches!(
                store.claim_now(&format!("claim-{i}"), &Token::random(), Duration::ZERO),
                Ok(Claim::Acquired)
            ));
        }
    }
}
