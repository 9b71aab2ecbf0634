use std::{
    collections::{HashMap, VecDeque},
    fmt,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use tokio::sync::Notify;

use super::{Message, MessageId, Pushed, Queue, QueueError, QueueFuture};

/// How many keys of [`Queue::push_once`] a [`MemoryQueue`] remembers unless set with
/// [`MemoryQueue::max_keys`]: 100 000.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// A bounded [`Queue`] in this process's memory. Not durable: what it holds is lost when the
/// process stops, so it suits tests and single processes that can afford that. A full queue
/// refuses new deliveries ([`QueueError::Full`], answered 503: the provider retries).
///
/// [`Queue::push_once`] keys are remembered in memory too, at most
/// [`max_keys`](MemoryQueue::max_keys) of them: when that many are remembered, expired keys are
/// forgotten first, then the oldest (a very late repeat of that event is stored again, and
/// processed twice; nothing is lost).
///
/// Cloning it gives another handle on the same queue.
#[derive(Clone)]
pub struct MemoryQueue {
    inner: Arc<Inner>,
}

struct Inner {
    capacity: usize,
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
    /// The keys of [`Queue::push_once`], with when each is forgotten…
    keys: HashMap<Arc<str>, Instant>,
    /// …and in the order they were recorded, to forget them.
    key_order: VecDeque<(Instant, Arc<str>)>,
}

#[derive(Clone)]
struct Stored {
    id: u64,
    payload: Bytes,
    /// How many times it has been handed out.
    attempts: u32,
}

/// A message that used all its attempts, with the last error.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Its id in the queue.
    pub id: MessageId,
    /// What was stored.
    pub payload: Bytes,
    /// How many times it was handed out.
    pub attempts: u32,
    /// The last error.
    pub error: String,
}

impl MemoryQueue {
    /// A queue that holds up to `capacity` messages (ready, waiting for a retry, or being
    /// processed).
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                capacity,
                max_keys: AtomicUsize::new(DEFAULT_MAX_KEYS),
                state: Mutex::default(),
                arrived: Notify::new(),
            }),
        }
    }

    /// Remembers at most `max_keys` keys of [`Queue::push_once`] (at least 1) instead of
    /// [`DEFAULT_MAX_KEYS`] (for every clone of the queue).
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
        let mut state = self.state();
        if state.keys.get(key).is_some_and(|until| *until > now) {
            return Ok(Pushed::Duplicate);
        }
        let id = self.store(&mut state, payload)?;
        // An expired record of the key gives way to the new one, without making room for it.
        state.keys.remove(key);
        self.record(&mut state, key, retention, now, id)
    }

    /// Records `key` for `retention`, forgetting others to make room.
    fn record(
        &self,
        state: &mut State,
        key: &str,
        retention: Duration,
        now: Instant,
        id: MessageId,
    ) -> Result<Pushed, QueueError> {
        let State {
            keys, key_order, ..
        } = state;
        // Forget expired keys, then the oldest, until there is room. (Entries of keys recorded
        // again, or forgotten early, linger in `key_order` until they reach its front: it is
        // held to twice the keys.)
        let max_keys = self.inner.max_keys.load(Ordering::Relaxed);
        while keys.len() >= max_keys
            || key_order.len() >= 2 * max_keys
            || key_order.front().is_some_and(|(until, _)| *until <= now)
        {
            let Some((until, old)) = key_order.pop_front() else {
                break;
            };
            if keys.get(&old) == Some(&until) {
                keys.remove(&old);
            }
        }
        let key: Arc<str> = Arc::from(key);
        let until = later(now, retention);
        keys.insert(Arc::clone(&key), until);
        key_order.push_back((until, key));
        Ok(Pushed::Stored(id))
    }

    /// Stores `payload` as a new message, unless the queue is full.
    fn store(
        &self,
        state: &mut MutexGuard<'_, State>,
        payload: Bytes,
    ) -> Result<MessageId, QueueError> {
        if state.ready.len() + state.delayed.len() + state.in_flight.len() >= self.inner.capacity {
            return Err(QueueError::Full {
                capacity: self.inner.capacity,
            });
        }
        state.next_id += 1;
        let id = state.next_id;
        state.ready.push_back(Stored {
            id,
            payload,
            attempts: 0,
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

/// `now + after`, saturating about a century ahead instead of overflowing.
fn later(now: Instant, after: Duration) -> Instant {
    now.checked_add(after)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
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

    fn pull(
        &self,
        _consumer: &str,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> QueueFuture<Vec<Message>> {
        let queue = self.clone();
        Box::pin(async move {
            let arrived = queue.inner.arrived.notified();
            let taken = queue.take(max, visibility);
            if !taken.is_empty() || max == 0 {
                return Ok(taken);
            }
            let _ = tokio::time::timeout(wait, arrived).await;
            Ok(queue.take(max, visibility))
        })
    }

    fn ack(&self, message: &Message) -> QueueFuture<()> {
        drop(self.settle(message));
        Box::pin(async { Ok(()) })
    }

    fn retry(&self, message: &Message, _error: &str, delay: Duration) -> QueueFuture<()> {
        if let Some((mut state, stored)) = self.settle(message) {
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
            state.dead.push_back(DeadLetter {
                id: message.id.clone(),
                payload: stored.payload,
                attempts: stored.attempts,
                error: error.to_owned(),
            });
        }
        Box::pin(async { Ok(()) })
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
