//! The in-memory store: atomic, bounded and sharded, for one process.

use std::{
    collections::{HashMap, VecDeque, hash_map::RandomState},
    fmt,
    future::{Ready, ready},
    hash::BuildHasher,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use super::{Claim, Store, StoreError, Token};

/// The default bound on the number of keys a [`MemoryStore`] keeps.
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

const SHARDS: usize = 32;

/// A [`Store`] in this process's memory: fine for one instance, not shared between replicas
/// (use `RedisStore` for that), and forgotten on restart.
///
/// It is atomic (each key's shard is locked while it is claimed), split into 32 shards so that
/// concurrent requests rarely wait for each other, and bounded: it keeps at most `max_entries`
/// keys ([`DEFAULT_MAX_ENTRIES`] unless set). When a shard is full, the oldest *done* record goes
/// first (with one retention for all it is also the first to expire; if it has not, at worst a
/// very late retry of that event runs again, and nothing is lost); without done records, expired
/// claims go. Only when every entry is an unexpired claim is a new claim refused with
/// [`StoreError::Full`].
///
/// Cloning it gives another handle on the same records.
///
/// See the [module docs](super) for an example.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    hasher: RandomState,
    max_entries: usize,
    per_shard: usize,
    shards: Box<[Mutex<Shard>]>,
}

#[derive(Default)]
struct Shard {
    entries: HashMap<Box<str>, Entry>,
    /// Done keys in the order they were completed, with their expiry, oldest first; records
    /// whose entry has changed since are skipped when read.
    done: VecDeque<(Box<str>, Instant)>,
}

struct Entry {
    state: State,
    expires: Instant,
}

enum State {
    Claimed(Token),
    Done,
}

impl MemoryStore {
    /// A store that keeps up to [`DEFAULT_MAX_ENTRIES`] keys.
    pub fn new() -> Self {
        Self::with_max_entries(DEFAULT_MAX_ENTRIES)
    }

    /// A store that keeps up to `max_entries` keys (at least one per shard).
    pub fn with_max_entries(max_entries: usize) -> Self {
        let per_shard = max_entries.div_ceil(SHARDS).max(1);
        Self {
            inner: Arc::new(Inner {
                hasher: RandomState::new(),
                max_entries: per_shard * SHARDS,
                per_shard,
                shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            }),
        }
    }

    /// How many keys the store holds now (claimed or done, expired ones not yet dropped
    /// included).
    pub fn len(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|s| lock(s).entries.len())
            .sum()
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, Shard> {
        let index = self.inner.hasher.hash_one(key) as usize % SHARDS;
        lock(&self.inner.shards[index])
    }

    fn claim_now(&self, key: &str, token: &Token, lease: Duration) -> Result<Claim, StoreError> {
        let now = Instant::now();
        let mut shard = self.shard(key);
        match shard.entries.get(key) {
            Some(entry) if entry.expires > now => {
                return Ok(match entry.state {
                    State::Claimed(_) => Claim::InFlight,
                    State::Done => Claim::Done,
                });
            }
            Some(_) => {}
            None => {
                if shard.entries.len() >= self.inner.per_shard && !shard.make_room(now) {
                    return Err(StoreError::Full {
                        max_entries: self.inner.max_entries,
                    });
                }
            }
        }
        shard.entries.insert(
            key.into(),
            Entry {
                state: State::Claimed(token.clone()),
                expires: deadline(now, lease),
            },
        );
        Ok(Claim::Acquired)
    }

    fn complete_now(&self, key: &str, token: &Token, retention: Duration) {
        let now = Instant::now();
        let mut shard = self.shard(key);
        let Some(entry) = shard.entries.get_mut(key) else {
            return;
        };
        if matches!(&entry.state, State::Claimed(held) if held == token) {
            let expires = deadline(now, retention);
            *entry = Entry {
                state: State::Done,
                expires,
            };
            shard.done.push_back((key.into(), expires));
            if shard.done.len() > 2 * self.inner.per_shard {
                shard.forget_stale_done_records();
            }
        }
    }

    fn release_now(&self, key: &str, token: &Token) {
        let mut shard = self.shard(key);
        if shard
            .entries
            .get(key)
            .is_some_and(|entry| matches!(&entry.state, State::Claimed(held) if held == token))
        {
            shard.entries.remove(key);
        }
    }
}

impl Shard {
    /// Frees one place: an expired entry, else the oldest done record. `false` when every entry
    /// is an unexpired claim.
    fn make_room(&mut self, now: Instant) -> bool {
        // The oldest done record first: with one retention for all, it is also the first to
        // expire, so this is usually an expired entry anyway.
        while let Some((key, expires)) = self.done.pop_front() {
            let current = self
                .entries
                .get(&key)
                .is_some_and(|e| matches!(e.state, State::Done) && e.expires == expires);
            if current {
                self.entries.remove(&key);
                return true;
            }
        }
        let before = self.entries.len();
        self.entries.retain(|_, entry| entry.expires > now);
        self.entries.len() < before
    }

    fn forget_stale_done_records(&mut self) {
        let entries = &self.entries;
        self.done.retain(|(key, expires)| {
            entries
                .get(key)
                .is_some_and(|e| matches!(e.state, State::Done) && e.expires == *expires)
        });
    }
}

/// `now + after`, saturating far in the future.
fn deadline(now: Instant, after: Duration) -> Instant {
    now.checked_add(after)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// Locks a shard; a panic while it was held cannot leave it inconsistent (every change is one
/// map operation), so a poisoned lock is used as it is.
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
        f.debug_struct("MemoryStore")
            .field("max_entries", &self.inner.max_entries)
            .field("len", &self.len())
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
        assert_eq!(
            store.claim_now("a", &Token::random(), LEASE).unwrap(),
            Claim::InFlight
        );
        // Another token cannot settle the claim.
        store.release_now("a", &Token::random());
        store.complete_now("a", &Token::random(), DAY);
        assert_eq!(
            store.claim_now("a", &Token::random(), LEASE).unwrap(),
            Claim::InFlight
        );
        store.release_now("a", &token);
        let token = acquire(&store, "a");
        store.complete_now("a", &token, DAY);
        assert_eq!(
            store.claim_now("a", &Token::random(), LEASE).unwrap(),
            Claim::Done
        );
        // A done key is not released by its old token.
        store.release_now("a", &token);
        assert_eq!(
            store.claim_now("a", &Token::random(), LEASE).unwrap(),
            Claim::Done
        );
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
        assert_eq!(
            store.claim_now("k", &Token::random(), LEASE).unwrap(),
            Claim::InFlight
        );
        store.complete_now("k", &new, DAY);
        assert_eq!(
            store.claim_now("k", &Token::random(), LEASE).unwrap(),
            Claim::Done
        );
    }

    #[test]
    fn expired_done_records_are_claimable_again() {
        let store = MemoryStore::new();
        let token = acquire(&store, "k");
        store.complete_now("k", &token, Duration::ZERO);
        assert!(matches!(
            store.claim_now("k", &Token::random(), LEASE).unwrap(),
            Claim::Acquired
        ));
    }

    #[test]
    fn memory_is_bounded_and_the_oldest_done_record_goes_first() {
        let store = MemoryStore::with_max_entries(SHARDS * 4);
        for i in 0..10_000 {
            let key = format!("done-{i}");
            let token = acquire(&store, &key);
            store.complete_now(&key, &token, DAY);
        }
        assert!(store.len() <= SHARDS * 4, "{}", store.len());
        for shard in store.inner.shards.iter() {
            assert!(lock(shard).done.len() <= 2 * 4 + 1);
        }
        // The newest records are still there, the oldest ones were forgotten.
        assert_eq!(
            store
                .claim_now("done-9999", &Token::random(), LEASE)
                .unwrap(),
            Claim::Done
        );
        assert!(matches!(
            store.claim_now("done-0", &Token::random(), LEASE).unwrap(),
            Claim::Acquired
        ));
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
