//! Acknowledge at once, process later: an [`Enqueue`] service that stores each verified
//! delivery in a [`Queue`] and answers 2xx only once the queue has it, and a [`Worker`] that
//! takes deliveries from the queue and drives any `tower::Service<Delivery<E>>` with them,
//! at least once each (feature `queue`).
//!
//! VideoNest gives a receiver 10 seconds to answer and asks it to "respond with 200 OK
//! immediately and defer heavy processing to a background queue". Spawning a task after
//! answering loses the event whenever the process stops in between: the provider saw 200 and
//! never retries. Here nothing is acknowledged that was not stored, and a stored delivery is
//! retried (with backoff) until the service succeeds or it has used its attempts, when it goes
//! to the dead letters with its last error.
//!
//! The request path reads collect → verify → decode → dedupe → **enqueue**. With
//! [`Enqueue::deduplicate`], a repeated delivery is never enqueued twice: the queue records the
//! event's key with the delivery in one atomic step ([`Queue::push_once`], one round trip on
//! Redis). A [`DedupeLayer`](crate::dedupe::DedupeLayer) in front of a plain [`Enqueue`] does
//! the same with any [`Store`](crate::dedupe::store::Store) ("done" then means "stored in the
//! queue"), in three store operations.
//!
//! | queue | shared by replicas | survives a restart |
//! | --- | --- | --- |
//! | [`MemoryQueue`] | no | no: for tests and single processes that can lose work |
//! | `RedisQueue` (feature `redis`): a Redis stream and consumer group | yes | as Redis is configured to (AOF) |
//! | `SqliteQueue` (feature `sqlite`): a SQLite file | by the processes of one host | yes: a 2xx is in the fsynced log |
//! | `PostgresQueue` (feature `postgres`): tables in PostgreSQL | yes | yes: a 2xx is committed; effects can commit with the acknowledgement |
//!
//! # Example
//!
//! ```
//! use std::{convert::Infallible, time::Duration};
//!
//! use axum::{Router, body::Body, routing::post};
//! use http::StatusCode;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_webhook::{
//!     provider::videonest,
//!     queue::{Delivery, Enqueue, MemoryQueue, Worker},
//! };
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let queue = MemoryQueue::new(1_000);
//!
//! // The HTTP side: verify, then store; 200 as soon as the queue has the delivery.
//! let app = Router::new().route(
//!     "/webhooks/videonest",
//!     axum::routing::post_service(Enqueue::<videonest::Event, _>::new(queue.clone()))
//!         .route_layer(videonest::layer(["s3cret"])?),
//! );
//! let mut request = videonest::signed_request(
//!     "s3cret",
//!     r#"{"event":"video.processed","data":{"id":"vid_1"}}"#,
//! )?
//! .map(Body::new);
//! *request.uri_mut() = "/webhooks/videonest".parse()?;
//! assert_eq!(app.oneshot(request).await?.status(), StatusCode::OK);
//!
//! // The processing side: any tower service of deliveries.
//! let (done, mut processed) = tokio::sync::mpsc::unbounded_channel();
//! let handler = service_fn(move |delivery: Delivery<videonest::Event>| {
//!     let done = done.clone();
//!     async move {
//!         done.send(delivery.event().id().map(str::to_owned)).ok();
//!         Ok::<_, Infallible>(())
//!     }
//! });
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let worker = tokio::spawn(Worker::new(queue, handler).run(async {
//!     stopped.await.ok();
//! }));
//! assert_eq!(processed.recv().await, Some(Some("vid_1".to_owned())));
//! stop.send(()).ok();
//! worker.await??;
//! # Ok(())
//! # }
//! ```

mod dead;
mod delivery;
mod enqueue;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sqlite")]
mod sqlite;
mod worker;

use std::{error::Error as StdError, fmt, future::Future, pin::Pin, sync::Arc, time::Duration};

use bytes::Bytes;

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use self::postgres::{DEFAULT_POSTGRES_MAX_LEN, DEFAULT_POSTGRES_QUEUE, PostgresQueue};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::{
    DEFAULT_CONNECTION_TIMEOUT, DEFAULT_GROUP, DEFAULT_MAX_BLOCK, DEFAULT_MAX_LEN,
    DEFAULT_RESPONSE_TIMEOUT, DEFAULT_STREAM, RedisQueue,
};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use self::sqlite::{DEFAULT_SQLITE_MAX_LEN, DEFAULT_SQLITE_QUEUE, SqliteQueue};
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub use self::worker::DEFAULT_STATS_INTERVAL;
pub use self::{
    dead::{DeadLetter, DeadLetterPage, Page, Select},
    delivery::{Delivery, PAYLOAD_FORMAT, PayloadError},
    enqueue::{Enqueue, ResponseFuture},
    memory::{DEFAULT_MAX_KEYS, KeyStats, MemoryQueue},
    worker::{Backoff, Worker},
};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use crate::sqlite::Durability;

/// A boxed future of a queue operation.
pub type QueueFuture<T> = Pin<Box<dyn Future<Output = Result<T, QueueError>> + Send + 'static>>;

/// What a consumer asks of [`Queue::pull`]: up to how many messages, how long each stays hidden
/// from other consumers, and how long to wait when none is ready.
///
/// ```
/// use std::time::Duration;
/// use tower_webhook::queue::Pull;
///
/// let pull = Pull::up_to(10)
///     .hidden_for(Duration::from_secs(60))
///     .waiting(Duration::from_secs(1));
/// assert_eq!((pull.max, pull.visibility, pull.wait.as_secs()), (10, Duration::from_secs(60), 1));
/// assert_eq!(Pull::up_to(1).visibility, Pull::DEFAULT_VISIBILITY);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pull {
    /// At most this many messages (none at all when it is 0).
    pub max: usize,
    /// The visibility timeout: a pulled message that is not settled within it is delivered
    /// again.
    pub visibility: Duration,
    /// How long to wait for a message when none is ready (`Duration::ZERO`: not at all).
    pub wait: Duration,
}

impl Pull {
    /// The visibility timeout unless [`hidden_for`](Self::hidden_for) says otherwise: 30 s, as
    /// [`Worker`]'s.
    pub const DEFAULT_VISIBILITY: Duration = Duration::from_secs(30);

    /// Up to `max` messages, hidden for [`DEFAULT_VISIBILITY`](Self::DEFAULT_VISIBILITY),
    /// without waiting.
    pub fn up_to(max: usize) -> Self {
        Self {
            max,
            visibility: Self::DEFAULT_VISIBILITY,
            wait: Duration::ZERO,
        }
    }

    /// Each message pulled stays hidden from other consumers for `visibility`.
    #[must_use]
    pub fn hidden_for(self, visibility: Duration) -> Self {
        Self { visibility, ..self }
    }

    /// Waits up to `wait` for a message when none is ready.
    #[must_use]
    pub fn waiting(self, wait: Duration) -> Self {
        Self { wait, ..self }
    }
}

/// A queue of stored deliveries, shared by the HTTP side ([`Enqueue`]) and the [`Worker`]s.
///
/// A message pulled by a worker stays invisible to other workers until it is acknowledged, sent
/// back for a retry, dead-lettered, or its visibility timeout runs out (its worker died): then it
/// is delivered again, with its attempt count raised.
///
/// [`Worker`] calls [`ack`](Queue::ack), [`retry`](Queue::retry) or
/// [`dead_letter`](Queue::dead_letter) again when one fails (within the visibility timeout), so
/// they must be idempotent: settling a message that is no longer held does nothing.
pub trait Queue: Send + Sync + 'static {
    /// Stores a payload; resolves once it is stored.
    fn push(&self, payload: Bytes) -> QueueFuture<MessageId>;

    /// Stores a payload unless one was stored under `key` in the last `retention`, and records
    /// `key` for `retention` with it, in one atomic step (of any number of concurrent pushes
    /// of one key, exactly one is stored); resolves once both are stored. This is what
    /// [`Enqueue::deduplicate`] calls: deduplication and storage in one operation (for
    /// `RedisQueue`, one round trip), where "done" means "stored in the queue".
    fn push_once(&self, key: &str, retention: Duration, payload: Bytes) -> QueueFuture<Pushed>;

    /// Takes up to [`pull.max`](Pull::max) messages for `consumer`, each hidden from other
    /// consumers for [`pull.visibility`](Pull::visibility): messages whose retry is due,
    /// messages whose visibility timeout ran out, and new ones; waits up to
    /// [`pull.wait`](Pull::wait) when there are none.
    fn pull(&self, consumer: &str, pull: Pull) -> QueueFuture<Vec<Message>>;

    /// The message was processed: it is removed.
    fn ack(&self, message: &Message) -> QueueFuture<()>;

    /// The messages were processed: each is removed as [`ack`](Queue::ack) removes it, in one
    /// round trip or transaction where the queue can. [`Worker`] acknowledges the deliveries
    /// that finish while its last acknowledgement is on its way this way. Idempotent like
    /// `ack`; an error may leave some removed and others not. By default, `ack` on each in turn.
    fn ack_many(&self, messages: &[Message]) -> QueueFuture<()> {
        let acks: Vec<QueueFuture<()>> = messages.iter().map(|message| self.ack(message)).collect();
        Box::pin(async move {
            for ack in acks {
                ack.await?;
            }
            Ok(())
        })
    }

    /// The message failed with `error`: it is delivered again after `delay`.
    fn retry(&self, message: &Message, error: &str, delay: Duration) -> QueueFuture<()>;

    /// The message failed for the last time with `error`: it moves to the dead letters.
    fn dead_letter(&self, message: &Message, error: &str) -> QueueFuture<()>;

    /// How many messages the queue holds, by state: for metrics, dashboards and alerts.
    fn stats(&self) -> QueueFuture<QueueStats>;

    /// A page of dead letters, oldest first: up to [`page.limit`](Page::limit) of them after
    /// [`page.after`](Page::after), and where the next page starts.
    fn list_dead_letters(&self, page: Page) -> QueueFuture<DeadLetterPage>;

    /// Moves dead letters back into the queue as new messages, attempt count restarting at 1,
    /// whatever their deduplication records say (the key was recorded when the delivery was
    /// first stored; a replay is not a repeat), each carrying one more
    /// [`replays`](Message::replays). Resolves to how many were replayed: a dead letter that is
    /// gone (already replayed or purged, concurrently too) is not, so concurrent replays of
    /// one dead letter enqueue it once. Stops early, with the rest left where they are, when
    /// the queue is full.
    fn replay_dead_letters(&self, which: Select) -> QueueFuture<u64>;

    /// Deletes dead letters; resolves to how many were deleted.
    fn purge_dead_letters(&self, which: Select) -> QueueFuture<u64>;
}

impl<Q: Queue + ?Sized> Queue for Arc<Q> {
    fn push(&self, payload: Bytes) -> QueueFuture<MessageId> {
        (**self).push(payload)
    }

    fn push_once(&self, key: &str, retention: Duration, payload: Bytes) -> QueueFuture<Pushed> {
        (**self).push_once(key, retention, payload)
    }

    fn pull(&self, consumer: &str, pull: Pull) -> QueueFuture<Vec<Message>> {
        (**self).pull(consumer, pull)
    }

    fn ack(&self, message: &Message) -> QueueFuture<()> {
        (**self).ack(message)
    }

    fn ack_many(&self, messages: &[Message]) -> QueueFuture<()> {
        (**self).ack_many(messages)
    }

    fn retry(&self, message: &Message, error: &str, delay: Duration) -> QueueFuture<()> {
        (**self).retry(message, error, delay)
    }

    fn dead_letter(&self, message: &Message, error: &str) -> QueueFuture<()> {
        (**self).dead_letter(message, error)
    }

    fn stats(&self) -> QueueFuture<QueueStats> {
        (**self).stats()
    }

    fn list_dead_letters(&self, page: Page) -> QueueFuture<DeadLetterPage> {
        (**self).list_dead_letters(page)
    }

    fn replay_dead_letters(&self, which: Select) -> QueueFuture<u64> {
        (**self).replay_dead_letters(which)
    }

    fn purge_dead_letters(&self, which: Select) -> QueueFuture<u64> {
        (**self).purge_dead_letters(which)
    }
}

/// How many messages a queue holds, by state, from [`Queue::stats`].
///
/// ```
/// use tower_webhook::queue::{MemoryQueue, Queue, QueueStats};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let queue = MemoryQueue::new(10);
/// queue.push("{}".into()).await?;
/// let stats = queue.stats().await?;
/// assert_eq!((stats.ready, stats.pending, stats.depth()), (1, 0, 1));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueStats {
    /// Stored and not yet handed to a worker.
    pub ready: u64,
    /// Handed to a worker and not yet settled: being processed, or left by a worker that died
    /// until they are delivered again.
    pub pending: u64,
    /// Failed, waiting for their next attempt.
    pub delayed: u64,
    /// Dead letters: failed their last attempt.
    pub dead: u64,
}

impl QueueStats {
    /// The messages not processed yet: ready, pending and delayed (dead letters aside).
    pub fn depth(&self) -> u64 {
        self.ready
            .saturating_add(self.pending)
            .saturating_add(self.delayed)
    }
}

/// A queue's id for a stored message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageId(pub String);

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What [`Queue::push_once`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// The key was new: the payload is stored, under this id.
    Stored(MessageId),
    /// A payload was stored under the key within its retention: nothing was stored.
    Duplicate,
    /// A deduplication layer sharing the queue's records holds a claim on the key (a delivery
    /// of the event is being handled): nothing was stored; the provider should retry later.
    Claimed,
}

/// A message pulled from a queue.
#[derive(Debug, Clone)]
pub struct Message {
    /// Its id in the queue.
    pub id: MessageId,
    /// What [`Queue::push`] stored.
    pub payload: Bytes,
    /// Which delivery of the message this is: 1 the first time (and the first time after a
    /// replay).
    pub attempt: u32,
    /// How many times it was replayed from the dead letters ([`Queue::replay_dead_letters`]).
    pub replays: u32,
}

/// A queue could not do what was asked. The HTTP side answers 503 (the provider retries; nothing
/// was acknowledged).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum QueueError {
    /// The queue is unreachable or failed.
    Unavailable(Arc<dyn StdError + Send + Sync>),
    /// The queue holds as many messages as it may.
    Full {
        /// Its capacity.
        capacity: usize,
    },
    /// [`Queue::push_once`] of a new key, refused before anything was stored: the queue
    /// remembers as many keys as it may, and none has expired yet.
    KeysFull {
        /// How many keys it may remember.
        max_keys: usize,
    },
    /// The delivery's deduplication record is in a format this version does not read: a later
    /// version of the crate wrote it (a rolling upgrade, or a rollback).
    UnknownFormat,
    /// The delivery no longer holds its message (its visibility timeout ran out and another
    /// worker took it, or it was settled): an acknowledgement in the handler's own transaction
    /// (`PostgresQueue::ack_in`) refuses, so that the transaction is rolled back.
    NotHeld,
}

impl QueueError {
    /// Wraps a queue's own error as [`QueueError::Unavailable`].
    pub fn unavailable(err: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::Unavailable(Arc::from(err.into()))
    }
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable(_) => f.write_str("the webhook queue is unavailable"),
            Self::Full { capacity } => write!(f, "the webhook queue is full ({capacity} messages)"),
            Self::KeysFull { max_keys } => write!(
                f,
                "the webhook queue's deduplication keys are full ({max_keys} keys that have not \
                 expired)"
            ),
            Self::UnknownFormat => f.write_str(
                "the delivery's deduplication record is in a format this version does not read \
                 (a later version wrote it)",
            ),
            Self::NotHeld => f.write_str(
                "the delivery no longer holds its message (its visibility timeout ran out, or it \
                 was settled)",
            ),
        }
    }
}

impl StdError for QueueError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Unavailable(err) => Some(&**err),
            Self::Full { .. } | Self::KeysFull { .. } | Self::UnknownFormat | Self::NotHeld => None,
        }
    }
}
