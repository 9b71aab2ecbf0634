use std::{
    collections::{HashMap, VecDeque},
    fmt,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use bytes::Bytes;
use tokio::sync::Notify;

use super::{
    DeadLetter, DeadLetterPage, Message, MessageId, Page, Pull, Pushed, Queue, QueueError,
    QueueFuture, QueueStats, Select,
    dead::{dead_id, dead_number},
};
use crate::expiring::{ExpiringMap, Key, Lookup, SWEEP, later};

/// How many keys of [`Queue::push_once`] a [`MemoryQueue`] remembers at most unless set with
/// [`MemoryQueue::max_keys`]: 100,000.
///
/// A key is never forgotten before its retention ends, so this bounds how many deduplicated
/// deliveries the queue can take within one retention: with a day's, 100,000 keys is about
/// 1.16 new events a second on average, sustained. Past that, new events are refused (503)
/// until keys expire.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// A bounded [`Queue`] in this process's memory. Not durable: what it holds is lost when the
/// process stops, so it suits tests and single processes that can afford that. A full queue
/// refuses new deliveries ([`QueueError::Full`], answered 503: the provider retries).
///
/// [`Queue::push_once`] keys are remembered in memory too, at most
/// [`max_keys`](MemoryQueue::max_keys) of them, each for its whole retention: a key is never
/// forgotten before its retention ends. Expired keys go first: a few are forgotten as pushes go
/// on, and as many as needed when the key set is full. When it is full of keys that have not
/// expired, a push of a new key is refused with [`QueueError::KeysFull`] (answered 503) before
/// anything is stored: nothing is stored that was not recorded, nor recorded that was not
/// stored. [`key_stats`](MemoryQueue::key_stats) counts the keys forgotten once expired and the
/// pushes refused.
///
/// Cloning it gives another handle on the same queue.
#[derive(Clone)]
pub struct MemoryQueue {
    inner: Arc<Inner>,
}

struct Inner {
    capacity: usize,
    /// Keys the `push_once` records' hashes, per queue.
    hasher: std::collections::hash_map::RandomState,
    max_keys: AtomicUsize,
    state: Mutex<State>,
    arrived: Notify,
}

#[derive(Default)]
struct State {
    next_id: u64,
    ready: VecDeque<Stored>,
    delayed: Vec<(Instant, Stored)>,
    in_flight: HashMap<u64, (Instant, Stored)>,
    dead: VecDeque<DeadLetter>,
    /// The last dead letter's own id.
    last_dead_id: u64,
    /// The keys of [`Queue::push_once`], each until its retention ends.
    keys: ExpiringMap<()>,
}

/// What the [`Queue::push_once`] keys of a [`MemoryQueue`] hold and have done, from
/// [`MemoryQueue::key_stats`]: for metrics and capacity planning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyStats {
    /// How many keys it remembers (expired ones not forgotten yet included).
    pub len: usize,
    /// How many it may remember: [`MemoryQueue::max_keys`], or [`DEFAULT_MAX_KEYS`].
    pub max_keys: usize,
    /// How many keys were forgotten because their retention had ended (as pushes go on, to
    /// make room, or replaced by a new push of the key), since the queue was made.
    pub expired_removed: u64,
    /// How many pushes were refused with [`QueueError::KeysFull`] because every key remembered
    /// was unexpired, since the queue was made.
    pub refused_full: u64,
}

#[derive(Clone)]
struct Stored {
    id: u64,
    payload: Bytes,
    /// How many times it has been handed out.
    attempts: u32,
    /// How many times it was replayed from the dead letters.
    replays: u32,
    /// When its first attempt failed.
    first_failed: Option<SystemTime>,
}

impl MemoryQueue {
    /// A queue that holds up to `capacity` messages (ready, waiting for a retry, or being
    /// processed).
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                capacity,
                hasher: std::collections::hash_map::RandomState::new(),
                max_keys: AtomicUsize::new(DEFAULT_MAX_KEYS),
                state: Mutex::default(),
                arrived: Notify::new(),
            }),
        }
    }

    /// Remembers at most `max_keys` keys of [`Queue::push_once`] (at least 1) instead of
    /// [`DEFAULT_MAX_KEYS`] (for every clone of the queue). Each key is remembered for its
    /// whole retention: size this for the number of distinct events a retention sees, since a
    /// push of a new key is refused ([`QueueError::KeysFull`], 503) while `max_keys` unexpired
    /// keys are remembered. Lowering it below the keys remembered forgets none of them: new
    /// keys are refused until enough have expired.
    #[must_use]
    pub fn max_keys(self, max_keys: usize) -> Self {
        self.inner
            .max_keys
            .store(max_keys.max(1), Ordering::Relaxed);
        self
    }

    /// How many messages it holds (dead letters aside).
    pub fn len(&self) -> usize {
        let state = self.state();
        state.ready.len() + state.delayed.len() + state.in_flight.len()
    }

    /// Whether it holds no message (dead letters aside).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many [`Queue::push_once`] keys it remembers, its bound, how many expired keys it
    /// forgot and how many pushes it refused because the key set was full.
    pub fn key_stats(&self) -> KeyStats {
        let state = self.state();
        KeyStats {
            len: state.keys.len(),
            max_keys: self.inner.max_keys.load(Ordering::Relaxed),
            expired_removed: state.keys.expired(),
            refused_full: state.keys.refused(),
        }
    }

    /// The messages that used all their attempts, oldest first; at most as many as the
    /// queue's capacity (the oldest give way).
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.state().dead.iter().cloned().collect()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every change is a few collection operations that cannot panic half-way.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn push_now(&self, payload: Bytes) -> Result<MessageId, QueueError> {
        let mut state = self.state();
        self.store(&mut state, payload)
    }

    fn push_once_now(
        &self,
        key: &str,
        retention: Duration,
        payload: Bytes,
    ) -> Result<Pushed, QueueError> {
        let now = Instant::now();
        let key = Key::new(&self.inner.hasher, key);
        let mut state = self.state();
        state.keys.sweep(now, SWEEP);
        let absent = match state.keys.lookup(key, now) {
            Lookup::Live(()) => return Ok(Pushed::Duplicate),
            // An expired record of the key is replaced in place: it needs no room.
            Lookup::Expired => false,
            Lookup::Absent => true,
        };
        // Both checks before anything is stored or recorded.
        self.check_room(&state)?;
        let max_keys = self.inner.max_keys.load(Ordering::Relaxed);
        if absent && !state.keys.vacancy(now, max_keys) {
            return Err(QueueError::KeysFull { max_keys });
        }
        let id = self.store(&mut state, payload)?;
        state.keys.insert(key, (), later(now, retention), now);
        Ok(Pushed::Stored(id))
    }

    /// [`QueueError::Full`] when the queue holds as many messages as it may.
    fn check_room(&self, state: &State) -> Result<(), QueueError> {
        if state.ready.len() + state.delayed.len() + state.in_flight.len() >= self.inner.capacity {
            return Err(QueueError::Full {
                capacity: self.inner.capacity,
            });
        }
        Ok(())
    }

    /// Stores `payload` as a new message, unless the queue is full.
    fn store(
        &self,
        state: &mut MutexGuard<'_, State>,
        payload: Bytes,
    ) -> Result<MessageId, QueueError> {
        self.check_room(state)?;
        state.next_id += 1;
        let id = state.next_id;
        state.ready.push_back(Stored {
            id,
            payload,
            attempts: 0,
            replays: 0,
            first_failed: None,
        });
        self.inner.arrived.notify_one();
        Ok(MessageId(id.to_string()))
    }

    fn take(&self, max: usize, visibility: Duration) -> Vec<Message> {
        let now = Instant::now();
        let mut state = self.state();
        let State {
            ready,
            delayed,
            in_flight,
            ..
        } = &mut *state;
        // Retries that are due, and messages whose worker did not settle them in time.
        let mut i = 0;
        while i < delayed.len() {
            if delayed[i].0 <= now {
                ready.push_back(delayed.swap_remove(i).1);
            } else {
                i += 1;
            }
        }
        let expired: Vec<u64> = in_flight
            .iter()
            .filter(|(_, (deadline, _))| *deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some((_, stored)) = in_flight.remove(&id) {
                ready.push_front(stored);
            }
        }
        let mut taken = Vec::new();
        while taken.len() < max {
            let Some(mut stored) = ready.pop_front() else {
                break;
            };
            stored.attempts += 1;
            taken.push(Message {
                id: MessageId(stored.id.to_string()),
                payload: stored.payload.clone(),
                attempt: stored.attempts,
                replays: stored.replays,
            });
            in_flight.insert(stored.id, (later(now, visibility), stored));
        }
        taken
    }

    /// Removes `message` from the messages being processed, if this delivery of it still holds
    /// it (a worker whose visibility timeout ran out no longer does).
    fn settle(&self, message: &Message) -> Option<(MutexGuard<'_, State>, Stored)> {
        let id: u64 = message.id.0.parse().ok()?;
        let mut state = self.state();
        let holds = state
            .in_flight
            .get(&id)
            .is_some_and(|(_, stored)| stored.attempts == message.attempt);
        if !holds {
            return None;
        }
        let (_, stored) = state.in_flight.remove(&id)?;
        Some((state, stored))
    }
}

impl Queue for MemoryQueue {
    fn push(&self, payload: Bytes) -> QueueFuture<MessageId> {
        let pushed = self.push_now(payload);
        Box::pin(async move { pushed })
    }

    fn push_once(&self, key: &str, retention: Duration, payload: Bytes) -> QueueFuture<Pushed> {
        let pushed = self.push_once_now(key, retention, payload);
        Box::pin(async move { pushed })
    }

    fn pull(&self, _consumer: &str, pull: Pull) -> QueueFuture<Vec<Message>> {
        let queue = self.clone();
        Box::pin(async move {
            let arrived = queue.inner.arrived.notified();
            let taken = queue.take(pull.max, pull.visibility);
            if !taken.is_empty() || pull.max == 0 {
                return Ok(taken);
            }
            let _ = tokio::time::timeout(pull.wait, arrived).await;
            Ok(queue.take(pull.max, pull.visibility))
        })
    }

    fn ack(&self, message: &Message) -> QueueFuture<()> {
        drop(self.settle(message));
        Box::pin(async { Ok(()) })
    }

    fn ack_many(&self, messages: &[Message]) -> QueueFuture<()> {
        for message in messages {
            drop(self.settle(message));
        }
        Box::pin(async { Ok(()) })
    }

    fn retry(&self, message: &Message, _error: &str, delay: Duration) -> QueueFuture<()> {
        if let Some((mut state, mut stored)) = self.settle(message) {
            stored.first_failed.get_or_insert_with(SystemTime::now);
            state.delayed.push((later(Instant::now(), delay), stored));
        }
        Box::pin(async { Ok(()) })
    }

    fn dead_letter(&self, message: &Message, error: &str) -> QueueFuture<()> {
        if let Some((mut state, stored)) = self.settle(message) {
            // Bounded like the queue: the oldest dead letters give way.
            if state.dead.len() >= self.inner.capacity {
                state.dead.pop_front();
            }
            state.last_dead_id += 1;
            let now = SystemTime::now();
            let dead = DeadLetter {
                id: dead_id(state.last_dead_id),
                message_id: message.id.clone(),
                payload: stored.payload,
                attempts: stored.attempts,
                error: error.to_owned(),
                first_failed_at: Some(stored.first_failed.unwrap_or(now)),
                failed_at: Some(now),
                replays: stored.replays,
            };
            state.dead.push_back(dead);
        }
        Box::pin(async { Ok(()) })
    }

    fn stats(&self) -> QueueFuture<QueueStats> {
        let state = self.state();
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        let stats = QueueStats {
            ready: count(state.ready.len()),
            pending: count(state.in_flight.len()),
            delayed: count(state.delayed.len()),
            dead: count(state.dead.len()),
        };
        Box::pin(async move { Ok(stats) })
    }

    fn list_dead_letters(&self, page: Page) -> QueueFuture<DeadLetterPage> {
        let state = self.state();
        let after = page.after.as_ref().map_or(Some(0), dead_number);
        let listed = match after {
            // Not an id of this queue's: nothing comes after it.
            None => DeadLetterPage::new(Vec::new(), false),
            Some(after) => {
                let mut letters = state
                    .dead
                    .iter()
                    .filter(|dead| dead_number::<u64>(&dead.id).is_some_and(|n| n > after));
                let page_of: Vec<DeadLetter> = letters.by_ref().take(page.limit).cloned().collect();
                let more = letters.next().is_some();
                DeadLetterPage::new(page_of, more)
            }
        };
        Box::pin(async move { Ok(listed) })
    }

    fn replay_dead_letters(&self, which: Select) -> QueueFuture<u64> {
        let mut state = self.state();
        let mut replayed = 0;
        let mut full = None;
        let mut kept = VecDeque::with_capacity(state.dead.len());
        let dead = std::mem::take(&mut state.dead);
        for letter in dead {
            if full.is_some() || !which.selects(&letter.id) {
                kept.push_back(letter);
                continue;
            }
            if let Err(err) = self.check_room(&state) {
                full = Some(err);
                kept.push_back(letter);
                continue;
            }
            state.next_id += 1;
            let id = state.next_id;
            state.ready.push_back(Stored {
                id,
                payload: letter.payload,
                attempts: 0,
                replays: letter.replays.saturating_add(1),
                first_failed: None,
            });
            self.inner.arrived.notify_one();
            replayed += 1;
        }
        state.dead = kept;
        Box::pin(async move { Ok(replayed) })
    }

    fn purge_dead_letters(&self, which: Select) -> QueueFuture<u64> {
        let mut state = self.state();
        let before = state.dead.len();
        state.dead.retain(|letter| !which.selects(&letter.id));
        let purged = u64::try_from(before - state.dead.len()).unwrap_or(u64::MAX);
        Box::pin(async move { Ok(purged) })
    }
}

impl fmt::Debug for MemoryQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryQueue")
            .field("capacity", &self.inner.capacity)
            .field("max_keys", &self.inner.max_keys.load(Ordering::Relaxed))
            .field("len", &self.len())
            .finish()
    }
}
