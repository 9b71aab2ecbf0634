//! A map whose entries expire, bounded without ever dropping an entry that has not expired:
//! the records of [`MemoryStore`](crate::dedupe::store::MemoryStore)'s shards, and the
//! `push_once` keys of `MemoryQueue` (feature `queue`).
//!
//! Beside the map, a min-heap of items, soonest first, says when to look at an entry again.
//! Every entry has exactly one *current* item (same sequence number), due at or before the
//! entry's expiry; an entry removed, replaced, or given a sooner expiry leaves its old item
//! *stale*, skipped when it is popped (lazy deletion). So the heap's top is never later than
//! the soonest expiry of any entry: when the top is not due, nothing has expired (an O(1)
//! answer).
//!
//! - Looking a key up is one hash lookup. Inserting an entry, or giving it a sooner expiry,
//!   pushes an item, O(log n). Giving it a later expiry (a claim marked done for a retention
//!   longer than its lease, the usual case) pushes nothing: when its current item comes due,
//!   the entry is found live and the item is pushed again at the entry's expiry.
//! - Expired entries are removed from the top of the heap, a few per operation as traffic goes
//!   on ([`sweep`](ExpiringMap::sweep)), and as many as needed when the map is full
//!   ([`vacancy`](ExpiringMap::vacancy)): each item is popped once, O(log n) amortised.
//! - Stale items are dropped all at once when they outnumber the entries by more than
//!   [`SLACK`]: after an operation that adds an item, the heap holds at most twice the
//!   entries plus `SLACK` items (entries removed by a sweep leave it as large as it was, never
//!   larger, until the next addition), and the rebuild, O(n), happens after at least n/2
//!   changes, so it is O(1) amortised per change.
//! - When far fewer entries are left than the map and heap have room for, their allocations
//!   shrink, so that memory returns to what the live entries need.
//!
//! Insertion order is not expiry order (two layers sharing a store may keep records for
//! different retentions), which is why the heap is ordered by expiry and not a FIFO.

use std::{
    cmp::Ordering,
    collections::{BinaryHeap, binary_heap::PeekMut},
    hash::BuildHasher,
    time::{Duration, Instant},
};

use hashbrown::{HashTable, hash_table::Entry};

/// `now + after`, saturating about a century ahead instead of overflowing: a wait or a lifetime
/// too long to add is as good as forever.
pub(crate) fn later(now: Instant, after: Duration) -> Instant {
    now.checked_add(after)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// How many expired entries a mutating operation removes, at most, besides those it removes to
/// make room: more than the one heap item an operation adds, so that the sweep keeps up.
pub(crate) const SWEEP: usize = 2;

/// How many stale heap items beyond the entries are tolerated before the heap is rebuilt.
pub(crate) const SLACK: usize = 32;

/// Allocations are not shrunk below room for this many entries.
const MIN_ROOM: usize = 64;

/// A key with its hash, computed once by the map's owner (with its own keyed hasher) for every
/// operation on it: the map, its heap and the owner's choice of shard all use that one hash.
#[derive(Clone, Copy)]
pub(crate) struct Key<'a> {
    pub(crate) hash: u64,
    pub(crate) text: &'a str,
}

impl<'a> Key<'a> {
    pub(crate) fn new(hasher: &impl BuildHasher, text: &'a str) -> Self {
        Self {
            hash: hasher.hash_one(text),
            text,
        }
    }
}

/// Keys mapped to values that each expire at an instant.
pub(crate) struct ExpiringMap<V> {
    entries: HashTable<Slot<V>>,
    due: BinaryHeap<Due>,
    next_seq: u64,
    expired: u64,
    refused: u64,
}

struct Slot<V> {
    key: Box<str>,
    hash: u64,
    value: V,
    expires: Instant,
    /// Which heap item is current for this entry: a number no other item or entry ever has.
    seq: u64,
}

/// A heap item: look at the entry whose sequence number is still `seq` (it expires at `at` or
/// later), found under its key's `hash`. The sequence number tells the entry without its key,
/// so an item is small (32 bytes) and costs no key comparison nor shared key.
struct Due {
    at: Instant,
    seq: u64,
    hash: u64,
}

// Reversed, so that `BinaryHeap` (a max-heap) pops the soonest expiry first.
impl Ord for Due {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Due {}

/// What [`ExpiringMap::lookup`] found.
pub(crate) enum Lookup<'a, V> {
    /// An entry that has not expired.
    Live(&'a V),
    /// An entry that has expired but is not removed yet: inserting the key replaces it in place.
    Expired,
    /// No entry.
    Absent,
}

impl<V> Default for ExpiringMap<V> {
    fn default() -> Self {
        Self {
            entries: HashTable::new(),
            due: BinaryHeap::new(),
            next_seq: 0,
            expired: 0,
            refused: 0,
        }
    }
}

/// Whether `slot` is `key`'s.
fn is<V>(key: Key<'_>) -> impl Fn(&Slot<V>) -> bool + '_ {
    move |slot| slot.hash == key.hash && *slot.key == *key.text
}

/// Whether `slot` is the entry whose current heap item is `seq`.
fn current<V>(seq: u64) -> impl Fn(&Slot<V>) -> bool {
    move |slot| slot.seq == seq
}

fn hash_of<V>(slot: &Slot<V>) -> u64 {
    slot.hash
}

impl<V> ExpiringMap<V> {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// How many entries it holds, expired ones not removed yet included.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// How many expired entries were removed (or replaced by a new entry of their key).
    pub(crate) fn expired(&self) -> u64 {
        self.expired
    }

    /// How many times [`vacancy`](Self::vacancy) found the map full of live entries.
    pub(crate) fn refused(&self) -> u64 {
        self.refused
    }

    /// `key`'s entry, and whether it has expired at `now` (an entry expires at its instant).
    pub(crate) fn lookup(&self, key: Key<'_>, now: Instant) -> Lookup<'_, V> {
        match self.entries.find(key.hash, is(key)) {
            Some(slot) if slot.expires > now => Lookup::Live(&slot.value),
            Some(_) => Lookup::Expired,
            None => Lookup::Absent,
        }
    }

    /// Whether one more entry fits in `capacity`, removing expired entries (soonest first) until
    /// it does. `false`, counted as a refusal, when every entry is live; O(1) when the soonest
    /// expiry is still ahead.
    pub(crate) fn vacancy(&mut self, now: Instant, capacity: usize) -> bool {
        while self.entries.len() >= capacity {
            if self.pop_due(now).is_none() {
                self.refused += 1;
                return false;
            }
        }
        true
    }

    /// Sets `key` to `value` until `expires`, inserting it (the caller made room with
    /// [`vacancy`](Self::vacancy)) or replacing its entry (an expired one counts as expired).
    pub(crate) fn insert(&mut self, key: Key<'_>, value: V, expires: Instant, now: Instant) {
        let seq = self.next_seq;
        self.next_seq += 1;
        match self.entries.entry(key.hash, is(key), hash_of) {
            Entry::Occupied(mut entry) => {
                let slot = entry.get_mut();
                if slot.expires <= now {
                    self.expired += 1;
                }
                (slot.value, slot.expires, slot.seq) = (value, expires, seq);
            }
            Entry::Vacant(entry) => {
                entry.insert(Slot {
                    key: Box::from(key.text),
                    hash: key.hash,
                    value,
                    expires,
                    seq,
                });
            }
        }
        self.due.push(Due {
            at: expires,
            seq,
            hash: key.hash,
        });
        self.compact();
    }

    /// Gives `key`'s entry (expired or not) a new value and expiry, when `change` returns one
    /// for its value. Whether it did.
    pub(crate) fn update(
        &mut self,
        key: Key<'_>,
        expires: Instant,
        change: impl FnOnce(&V) -> Option<V>,
    ) -> bool {
        let Some(slot) = self.entries.find_mut(key.hash, is(key)) else {
            return false;
        };
        let Some(value) = change(&slot.value) else {
            return false;
        };
        let sooner = expires < slot.expires;
        slot.value = value;
        slot.expires = expires;
        if !sooner {
            // Its current item is due before its expiry still.
            return true;
        }
        // A sooner expiry needs an item of its own; the one it had becomes stale.
        let seq = self.next_seq;
        self.next_seq += 1;
        slot.seq = seq;
        self.due.push(Due {
            at: expires,
            seq,
            hash: key.hash,
        });
        self.compact();
        true
    }

    /// Removes `key`'s entry (expired or not) when `remove` says so for its value.
    pub(crate) fn remove_if(&mut self, key: Key<'_>, remove: impl FnOnce(&V) -> bool) {
        if let Ok(entry) = self.entries.find_entry(key.hash, is(key))
            && remove(&entry.get().value)
        {
            entry.remove();
            self.compact();
        }
    }

    /// Removes up to `budget` expired entries, soonest first (stale heap items popped on the way
    /// count against the budget), then shrinks allocations that are far larger than needed.
    pub(crate) fn sweep(&mut self, now: Instant, budget: usize) {
        for _ in 0..budget {
            if self.pop_due(now).is_none() {
                break;
            }
        }
        self.shrink();
    }

    /// Pops the heap's top if it is due at `now`: removes its entry if the item is current and
    /// the entry has expired (`Some(true)`), pushes the item again at the entry's expiry if it
    /// is current and the entry has not (`Some(false)`), and skips it if it is stale
    /// (`Some(false)`). `None` when nothing is due, hence nothing has expired.
    fn pop_due(&mut self, now: Instant) -> Option<bool> {
        let mut top = self.due.peek_mut()?;
        if top.at > now {
            return None;
        }
        let Ok(current) = self.entries.find_entry(top.hash, current(top.seq)) else {
            PeekMut::pop(top);
            return Some(false);
        };
        let expires = current.get().expires;
        if expires <= now {
            current.remove();
            PeekMut::pop(top);
            self.expired += 1;
            Some(true)
        } else {
            // Due again at its entry's expiry: moved down the heap in place.
            top.at = expires;
            Some(false)
        }
    }

    /// Drops the stale heap items once they outnumber the entries by more than `SLACK`.
    fn compact(&mut self) {
        if self.due.len() <= 2 * self.entries.len() + SLACK {
            return;
        }
        let entries = &self.entries;
        self.due
            .retain(|item| entries.find(item.hash, current(item.seq)).is_some());
        self.shrink();
    }

    /// Gives back memory when the map or the heap has room for more than four times what it
    /// holds (keeping twice, so that this happens again only after they halve).
    fn shrink(&mut self) {
        let entries = self.entries.len();
        if self.entries.capacity() > 4 * entries.max(MIN_ROOM) {
            self.entries.shrink_to(2 * entries.max(MIN_ROOM), hash_of);
        }
        let items = self.due.len();
        if self.due.capacity() > 4 * items.max(MIN_ROOM) {
            self.due.shrink_to(2 * items.max(MIN_ROOM));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    /// `text` hashed as every test hashes it.
    fn k(text: &str) -> Key<'_> {
        Key::new(
            &std::hash::BuildHasherDefault::<std::hash::DefaultHasher>::default(),
            text,
        )
    }

    impl<V> ExpiringMap<V> {
        /// Every entry has exactly one current heap item, due at or before its expiry, and the
        /// heap holds no more than twice the entries plus `SLACK`.
        fn check(&self) {
            let current = self
                .due
                .iter()
                .filter(|item| {
                    self.entries
                        .find(item.hash, current(item.seq))
                        .is_some_and(|slot| item.at <= slot.expires)
                })
                .count();
            assert_eq!(current, self.entries.len());
            assert!(
                self.due.len() <= 2 * self.entries.len() + SLACK,
                "{} heap items for {} entries",
                self.due.len(),
                self.entries.len()
            );
        }
    }

    fn insert_new(map: &mut ExpiringMap<u32>, key: &str, value: u32, ttl: Duration, now: Instant) {
        assert!(matches!(map.lookup(k(key), now), Lookup::Absent));
        assert!(map.vacancy(now, usize::MAX));
        map.insert(k(key), value, now + ttl, now);
    }

    /// A map of `n` entries `k0`, `k1`, … (valued 0, 1, …) that expire a second after `now`.
    fn expiring_in_a_second(n: u32, now: Instant) -> ExpiringMap<u32> {
        let mut map = ExpiringMap::new();
        for i in 0..n {
            insert_new(&mut map, &format!("k{i}"), i, Duration::from_secs(1), now);
        }
        map
    }

    #[test]
    fn entries_expire_at_their_instant() {
        let now = Instant::now();
        let mut map = ExpiringMap::new();
        insert_new(&mut map, "a", 1, Duration::from_secs(10), now);
        assert!(matches!(map.lookup(k("a"), now), Lookup::Live(1)));
        let later = now + Duration::from_secs(10);
        assert!(matches!(map.lookup(k("a"), later), Lookup::Expired));
        assert_eq!(
            map.entries
                .find(k("a").hash, is(k("a")))
                .map(|slot| slot.value),
            Some(1)
        );
        // Replaced in place: counted as expired.
        map.insert(k("a"), 2, later + DAY, later);
        assert_eq!((map.len(), map.expired()), (1, 1));
        assert!(matches!(map.lookup(k("a"), later), Lookup::Live(2)));
        map.check();
    }

    #[test]
    fn a_full_map_removes_expired_entries_soonest_first_and_refuses_otherwise() {
        let now = Instant::now();
        let mut map = ExpiringMap::new();
        // Inserted in an order that is not their expiry order.
        for (key, secs) in [("c", 30), ("a", 10), ("d", 40), ("b", 20)] {
            insert_new(&mut map, key, 0, Duration::from_secs(secs), now);
        }
        assert!(!map.vacancy(now, 4), "nothing has expired");
        assert_eq!((map.len(), map.refused(), map.expired()), (4, 1, 0));
        let at = now + Duration::from_secs(25);
        assert!(map.vacancy(at, 4));
        // One place was needed: "a", the soonest, went; "b" has expired too but is still there.
        assert_eq!((map.len(), map.expired()), (3, 1));
        assert!(matches!(map.lookup(k("a"), at), Lookup::Absent));
        assert!(matches!(map.lookup(k("b"), at), Lookup::Expired));
        assert!(map.vacancy(at, 3));
        assert!(matches!(map.lookup(k("b"), at), Lookup::Absent));
        assert!(!map.vacancy(at, 2), "c and d have not expired");
        assert_eq!((map.len(), map.refused(), map.expired()), (2, 2, 2));
        map.check();
    }

    #[test]
    fn an_updated_entry_expires_at_its_new_instant() {
        let now = Instant::now();
        let mut map = ExpiringMap::new();
        insert_new(&mut map, "k", 1, Duration::from_secs(1), now);
        assert!(map.update(k("k"), now + DAY, |value| Some(value + 1)));
        assert!(!map.update(k("k"), now, |_| None));
        assert!(!map.update(k("missing"), now, |_| Some(0)));
        // Its old expiry has passed: the stale item is popped, the entry stays.
        map.sweep(now + Duration::from_secs(2), 10);
        assert!(matches!(
            map.lookup(k("k"), now + Duration::from_secs(2)),
            Lookup::Live(2)
        ));
        assert_eq!(map.expired(), 0);
        map.check();
        map.remove_if(k("k"), |value| *value == 1);
        assert_eq!(map.len(), 1);
        map.remove_if(k("k"), |value| *value == 2);
        assert_eq!(map.len(), 0);
        map.check();
    }

    #[test]
    fn the_sweep_removes_a_bounded_number_of_expired_entries() {
        let now = Instant::now();
        let mut map = expiring_in_a_second(10, now);
        let later = now + Duration::from_secs(1);
        map.sweep(later, SWEEP);
        assert_eq!(map.len(), 10 - SWEEP);
        map.sweep(later, usize::MAX);
        assert_eq!((map.len(), map.expired()), (0, 10));
        map.check();
    }

    #[test]
    fn stale_items_stay_within_a_constant_factor_of_the_entries() {
        let now = Instant::now();
        let mut map = ExpiringMap::new();
        // The same 100 keys given ever sooner expiries, all far ahead: nothing expires, and
        // every change leaves a stale item behind.
        for round in 0..1_000u32 {
            let expires = now + DAY - Duration::from_secs(round.into());
            for i in 0..100 {
                let key = format!("k{i}");
                if round == 0 {
                    insert_new(&mut map, &key, 0, DAY, now);
                } else {
                    assert!(map.update(k(&key), expires, |_| Some(round)));
                }
            }
            map.check();
        }
        assert_eq!((map.len(), map.expired()), (100, 0));
        // Removed and inserted again, as claims released and claimed again.
        for round in 0..100 {
            for i in 0..100 {
                let key = format!("k{i}");
                map.remove_if(k(&key), |_| true);
                insert_new(&mut map, &key, round, DAY, now);
            }
            map.check();
        }
        assert!(map.due.len() <= 2 * 100 + SLACK, "{}", map.due.len());
        assert!(
            map.due.capacity() <= 4 * (2 * 100 + SLACK),
            "{}",
            map.due.capacity()
        );
    }

    #[test]
    fn a_later_expiry_pushes_nothing_and_is_honoured() {
        let now = Instant::now();
        let mut map = ExpiringMap::new();
        // A claim for a minute, then marked done for a day.
        insert_new(&mut map, "k", 0, Duration::from_secs(60), now);
        assert!(map.update(k("k"), now + DAY, |_| Some(1)));
        assert_eq!(map.due.len(), 1);
        map.check();
        // Its item comes due after a minute: the entry is live, so it is looked at again when
        // it expires.
        let minute = now + Duration::from_secs(60);
        map.sweep(minute, usize::MAX);
        assert!(matches!(map.lookup(k("k"), minute), Lookup::Live(1)));
        assert!(!map.vacancy(minute, 1), "nothing has expired");
        assert_eq!((map.due.len(), map.expired(), map.refused()), (1, 0, 1));
        map.check();
        let day = now + DAY;
        assert!(map.vacancy(day, 1));
        assert_eq!((map.len(), map.expired()), (0, 1));
    }

    #[test]
    fn memory_returns_once_entries_expire() {
        let now = Instant::now();
        let mut map = expiring_in_a_second(10_000, now);
        let (entries, items) = (map.entries.capacity(), map.due.capacity());
        // Traffic goes on after they expired: new short-lived keys, each operation sweeping.
        let later = now + Duration::from_secs(1);
        for i in 0..10_000 {
            map.sweep(later, SWEEP);
            map.insert(k(&format!("n{i}")), i, later, later);
        }
        map.sweep(later, SWEEP);
        map.check();
        assert!(map.len() <= 2, "{}", map.len());
        assert_eq!(map.expired(), 10_000 + 10_000 - map.len() as u64);
        assert!(
            map.entries.capacity() < entries / 8,
            "{entries} → {}",
            map.entries.capacity()
        );
        assert!(
            map.due.capacity() < items / 8,
            "{items} → {}",
            map.due.capacity()
        );
    }
}
