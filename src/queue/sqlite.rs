use std::{
    path::Path,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::Notify;

use super::{
    DeadLetter, DeadLetterPage, Message, MessageId, Page, Pull, Pushed, Queue, QueueError,
    QueueFuture, QueueStats, Select,
    dead::{
        REPLAY_BATCH, ReplayBatch, Replayed, dead_batches, dead_id, numbered_page, page_of,
        replay_numbered,
    },
};
use crate::{
    dedupe::store::{
        SqliteStore, StoreError,
        sqlite::{DONE, Record, record},
    },
    expiring::later,
    sqlite::{Database, Run, SqliteError, millis_after, now_millis},
};

/// How many messages a [`SqliteQueue`] holds unless set with [`SqliteQueue::max_len`]:
/// 1,000,000.
pub const DEFAULT_SQLITE_MAX_LEN: u64 = 1_000_000;

/// The queue name a [`SqliteQueue`] uses unless set with [`SqliteQueue::name`].
pub const DEFAULT_SQLITE_QUEUE: &str = "webhooks";

/// How often a waiting pull looks again for messages another process stored.
const POLL: Duration = Duration::from_millis(50);

/// A [`Queue`] in a SQLite file (feature `sqlite` with `queue`): durable as the disk with
/// nothing to install, shared by the processes of one host that open the file, and by the
/// [`SqliteStore`](crate::dedupe::store::SqliteStore) records in the same file
/// ([`Queue::push_once`] claims, stores and records in one transaction).
///
/// As [`SqliteStore`](crate::dedupe::store::SqliteStore), each operation runs on a thread of
/// its own and operations that arrive together share one transaction and one fsync (WAL,
/// `synchronous=FULL` unless [`Durability::Normal`](crate::queue::Durability::Normal)): a push answered `Ok` is in the fsynced
/// log. A pulled message is hidden for its visibility timeout, then delivered again with its
/// attempt raised; settling checks the attempt, so a worker that outlived its lease changes
/// nothing. Several queues may share one file by [`name`](SqliteQueue::name).
///
/// The keys of [`Queue::push_once`] are the file's deduplication records, as a
/// [`SqliteStore`]'s: every queue of the file shares them, and they count toward a store's
/// [`max_entries`](SqliteStore::max_entries) on that file (the queue itself refuses no key:
/// the records expire with their retention).
///
/// ```
/// use tower_webhook::queue::{Pull, Queue, SqliteQueue};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("sqlite-queue-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let queue = SqliteQueue::open(dir.join("webhooks.db")).await?;
/// queue.push(r#"{"v":1}"#.into()).await?;
/// let message = queue.pull("worker-1", Pull::up_to(1)).await?.remove(0);
/// queue.ack(&message).await?;
/// assert_eq!(queue.stats().await?.depth(), 0);
/// # drop(queue);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct SqliteQueue {
    database: Database,
    name: Arc<str>,
    max_len: u64,
    /// Pushes of this process, for pulls waiting in it.
    arrived: Arc<Notify>,
}

impl From<Arc<SqliteError>> for QueueError {
    fn from(err: Arc<SqliteError>) -> Self {
        Self::Unavailable(err)
    }
}

fn failed(err: rusqlite::Error) -> QueueError {
    QueueError::Unavailable(Arc::new(SqliteError::Sqlite(err)))
}

impl SqliteQueue {
    /// The queue in the file at `path`, created if missing, upgraded if older, durable with
    /// [`Durability::Full`](crate::queue::Durability::Full) ([`sharing`](Self::sharing) a [`SqliteStore`] opened with
    /// [`SqliteStore::open_with`] takes another durability).
    ///
    /// # Errors
    ///
    /// [`QueueError::Unavailable`] with the reason [`SqliteStore::open`] gives: the file cannot
    /// be opened or upgraded, or its schema is newer than this version reads.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, QueueError> {
        match SqliteStore::open(path).await {
            Ok(store) => Ok(Self::sharing(&store)),
            Err(StoreError::Unavailable(err)) => Err(QueueError::Unavailable(err)),
            Err(other) => Err(QueueError::unavailable(other)),
        }
    }

    /// The queue in `store`'s file, on its thread: the deduplication records and the queue
    /// share transactions.
    pub fn sharing(store: &SqliteStore) -> Self {
        Self {
            database: store.database().clone(),
            name: Arc::from(DEFAULT_SQLITE_QUEUE),
            max_len: DEFAULT_SQLITE_MAX_LEN,
            arrived: Arc::new(Notify::new()),
        }
    }

    setters! {
        /// Uses the queue `name` in the file instead of [`DEFAULT_SQLITE_QUEUE`].
        #[must_use]
        pub fn name(name: impl Into<Arc<str>>) { name = name.into() }

        /// Holds at most `max_len` messages (ready, delayed or being processed; at least 1) instead
        /// of [`DEFAULT_SQLITE_MAX_LEN`]: a push beyond is refused ([`QueueError::Full`], 503).
        #[must_use]
        pub fn max_len(max_len: u64) { max_len = max_len.max(1) }
    }

    /// Runs `change` on `message`'s row if this delivery of it still holds it (a worker whose
    /// lease ran out no longer does): settling is idempotent.
    fn settle(
        &self,
        message: &Message,
        change: impl FnOnce(&Connection, &str, i64) -> Result<(), QueueError> + Send + 'static,
    ) -> QueueFuture<()> {
        let (name, message) = (Arc::clone(&self.name), message.clone());
        Box::pin(
            self.database
                .call(move |connection| match held(connection, &name, &message)? {
                    Some(id) => change(connection, &name, id),
                    None => Ok(()),
                }),
        )
    }

    fn full(&self) -> QueueError {
        QueueError::Full {
            capacity: usize::try_from(self.max_len).unwrap_or(usize::MAX),
        }
    }
}

/// How many messages `queue` holds.
fn length(connection: &Connection, queue: &str) -> Result<u64, QueueError> {
    connection
        .prepare_cached("SELECT length FROM tower_webhook_queue_length WHERE queue = ?1")
        .and_then(|mut select| {
            select
                .query_row(params![queue], |row| row.get::<_, i64>(0))
                .optional()
        })
        .map(|length| length.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
        .map_err(failed)
}

/// Adds `by` to the length of `queue`.
fn add_length(connection: &Connection, queue: &str, by: i64) -> Result<(), QueueError> {
    connection
        .prepare_cached(
            "INSERT INTO tower_webhook_queue_length (queue, length) VALUES (?1, MAX(?2, 0)) \
             ON CONFLICT (queue) DO UPDATE SET length = MAX(length + ?2, 0)",
        )
        .and_then(|mut upsert| upsert.execute(params![queue, by]))
        .map_err(failed)?;
    Ok(())
}

/// Stores `payload` as a new message of `queue` (attempts 0, `replays`), if there is room.
fn store(
    connection: &Connection,
    queue: &str,
    max_len: u64,
    payload: &[u8],
    replays: i64,
) -> Result<Option<i64>, QueueError> {
    if length(connection, queue)? >= max_len {
        return Ok(None);
    }
    let id = connection
        .prepare_cached(
            "INSERT INTO tower_webhook_queue \
             (queue, payload, attempts, pulled, visible_at, replays, first_failed_at) \
             VALUES (?1, ?2, 0, 0, ?3, ?4, NULL) RETURNING id",
        )
        .and_then(|mut insert| {
            insert.query_row(params![queue, payload, now_millis(), replays], |row| {
                row.get(0)
            })
        })
        .map_err(failed)?;
    add_length(connection, queue, 1)?;
    Ok(Some(id))
}

/// Deletes the message `id` of `queue`.
fn remove(connection: &Connection, queue: &str, id: i64) -> Result<(), QueueError> {
    delete(connection, id)?;
    add_length(connection, queue, -1)
}

/// Deletes the row `id` (its length is the caller's to count).
fn delete(connection: &Connection, id: i64) -> Result<(), QueueError> {
    connection
        .prepare_cached("DELETE FROM tower_webhook_queue WHERE id = ?1")
        .and_then(|mut delete| delete.execute(params![id]))
        .map_err(failed)?;
    Ok(())
}

/// The message `message` of `queue`, if this delivery of it still holds it: its row id.
fn held(
    connection: &Connection,
    queue: &str,
    message: &Message,
) -> Result<Option<i64>, QueueError> {
    let Ok(id) = message.id.0.parse::<i64>() else {
        return Ok(None);
    };
    connection
        .prepare_cached(
            "SELECT id FROM tower_webhook_queue \
             WHERE id = ?1 AND queue = ?2 AND pulled = 1 AND attempts = ?3",
        )
        .and_then(|mut select| {
            select
                .query_row(params![id, queue, message.attempt], |row| row.get(0))
                .optional()
        })
        .map_err(failed)
}

fn at(millis: Option<i64>) -> Option<SystemTime> {
    let millis = u64::try_from(millis?).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_millis(millis))
}

/// Moves the dead letter `id` back to `queue` as a new message: whether it was there and moved,
/// or `None` when the queue is full.
fn replay_one(
    connection: &Connection,
    queue: &str,
    max_len: u64,
    id: i64,
) -> Result<Option<bool>, QueueError> {
    let found: Option<(Vec<u8>, i64)> = connection
        .prepare_cached(
            "SELECT payload, replays FROM tower_webhook_dead WHERE id = ?1 AND queue = ?2",
        )
        .and_then(|mut select| {
            select
                .query_row(params![id, queue], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })
        .map_err(failed)?;
    let Some((payload, replays)) = found else {
        return Ok(Some(false));
    };
    if store(
        connection,
        queue,
        max_len,
        &payload,
        replays.saturating_add(1),
    )?
    .is_none()
    {
        return Ok(None);
    }
    connection
        .prepare_cached("DELETE FROM tower_webhook_dead WHERE id = ?1")
        .and_then(|mut delete| delete.execute(params![id]))
        .map_err(failed)?;
    Ok(Some(true))
}

impl Queue for SqliteQueue {
    fn push(&self, payload: Bytes) -> QueueFuture<MessageId> {
        let (name, max_len, full, arrived) = (
            Arc::clone(&self.name),
            self.max_len,
            self.full(),
            Arc::clone(&self.arrived),
        );
        let stored = self
            .database
            .call(move |connection| store(connection, &name, max_len, &payload, 0)?.ok_or(full));
        Box::pin(async move {
            let id = stored.await?;
            arrived.notify_waiters();
            Ok(MessageId(id.to_string()))
        })
    }

    fn push_once(&self, key: &str, retention: Duration, payload: Bytes) -> QueueFuture<Pushed> {
        let (name, max_len, full, arrived) = (
            Arc::clone(&self.name),
            self.max_len,
            self.full(),
            Arc::clone(&self.arrived),
        );
        let key = key.to_owned();
        let pushed = self.database.call(move |connection| {
            let now = now_millis();
            match record(connection, &key, now).map_err(failed)? {
                Record::Done => return Ok(Pushed::Duplicate),
                Record::Claimed => return Ok(Pushed::Claimed),
                Record::Unknown => return Err(QueueError::UnknownFormat),
                Record::Expired | Record::Absent => {}
            }
            let id = store(connection, &name, max_len, &payload, 0)?.ok_or(full)?;
            connection
                .prepare_cached(
                    "INSERT OR REPLACE INTO tower_webhook_dedupe (key, state, token, expires_at) \
                     VALUES (?1, ?2, NULL, ?3)",
                )
                .and_then(|mut insert| {
                    insert.execute(params![key, DONE, millis_after(now, retention)])
                })
                .map_err(failed)?;
            Ok(Pushed::Stored(MessageId(id.to_string())))
        });
        Box::pin(async move {
            let pushed = pushed.await?;
            if matches!(pushed, Pushed::Stored(_)) {
                arrived.notify_waiters();
            }
            Ok(pushed)
        })
    }

    fn pull(&self, _consumer: &str, pull: Pull) -> QueueFuture<Vec<Message>> {
        let queue = self.clone();
        Box::pin(async move {
            if pull.max == 0 {
                return Ok(Vec::new());
            }
            let now = tokio::time::Instant::now();
            let deadline = tokio::time::Instant::from(later(now.into_std(), pull.wait));
            loop {
                let arrived = queue.arrived.notified();
                let (name, max) = (Arc::clone(&queue.name), pull.max);
                let visibility = pull.visibility;
                let taken = queue
                    .database
                    .call_when(
                        move |connection| {
                            let now = now_millis();
                            let mut take = connection
                                .prepare_cached(
                                    "UPDATE tower_webhook_queue \
                                 SET attempts = attempts + 1, pulled = 1, visible_at = ?1 \
                                 WHERE id IN (SELECT id FROM tower_webhook_queue \
                                   WHERE queue = ?2 AND visible_at <= ?3 \
                                   ORDER BY visible_at, id LIMIT ?4) \
                                 RETURNING id, payload, attempts, replays",
                                )
                                .map_err(failed)?;
                            let rows = take
                                .query_map(
                                    params![
                                        millis_after(now, visibility),
                                        name,
                                        now,
                                        i64::try_from(max).unwrap_or(i64::MAX)
                                    ],
                                    |row| {
                                        Ok(Message {
                                            id: MessageId(row.get::<_, i64>(0)?.to_string()),
                                            payload: Bytes::from(row.get::<_, Vec<u8>>(1)?),
                                            attempt: row.get(2)?,
                                            replays: row.get(3)?,
                                        })
                                    },
                                )
                                .map_err(failed)?;
                            let mut messages =
                                rows.collect::<Result<Vec<_>, _>>().map_err(failed)?;
                            messages.sort_by_key(|m| m.id.0.parse::<i64>().unwrap_or(0));
                            Ok::<_, QueueError>(messages)
                        },
                        Run::IfAwaited,
                    )
                    .await?;
                let now = tokio::time::Instant::now();
                if !taken.is_empty() || now >= deadline {
                    return Ok(taken);
                }
                // Woken by a push of this process, or looking again for another's.
                let _ = tokio::time::timeout(POLL.min(deadline - now), arrived).await;
            }
        })
    }

    fn ack(&self, message: &Message) -> QueueFuture<()> {
        self.settle(message, remove)
    }

    /// One transaction for all.
    fn ack_many(&self, messages: &[Message]) -> QueueFuture<()> {
        let (name, messages) = (Arc::clone(&self.name), messages.to_vec());
        Box::pin(self.database.call(move |connection| {
            let mut removed = 0;
            for message in &messages {
                if let Some(id) = held(connection, &name, message)? {
                    delete(connection, id)?;
                    removed += 1;
                }
            }
            add_length(connection, &name, -removed)
        }))
    }

    fn retry(&self, message: &Message, _error: &str, delay: Duration) -> QueueFuture<()> {
        self.settle(message, move |connection, _, id| {
            let now = now_millis();
            connection
                .prepare_cached(
                    "UPDATE tower_webhook_queue SET pulled = 0, visible_at = ?1, \
                     first_failed_at = COALESCE(first_failed_at, \
                       CASE WHEN attempts = 1 THEN ?2 END) \
                     WHERE id = ?3",
                )
                .and_then(|mut update| update.execute(params![millis_after(now, delay), now, id]))
                .map_err(failed)?;
            Ok(())
        })
    }

    fn dead_letter(&self, message: &Message, error: &str) -> QueueFuture<()> {
        let error = error.to_owned();
        self.settle(message, move |connection, name, id| {
            let now = now_millis();
            connection
                .prepare_cached(
                    "INSERT INTO tower_webhook_dead (queue, message_id, payload, attempts, \
                     error, first_failed_at, failed_at, replays) \
                     SELECT queue, id, payload, attempts, ?1, \
                       COALESCE(first_failed_at, CASE WHEN attempts = 1 THEN ?2 END), ?2, \
                       replays \
                     FROM tower_webhook_queue WHERE id = ?3",
                )
                .and_then(|mut insert| insert.execute(params![error, now, id]))
                .map_err(failed)?;
            remove(connection, name, id)
        })
    }

    fn stats(&self) -> QueueFuture<QueueStats> {
        let name = Arc::clone(&self.name);
        Box::pin(self.database.call(move |connection| {
            let now = now_millis();
            let count = |sql: &str| -> Result<u64, QueueError> {
                connection
                    .query_row(sql, params![name, now], |row| row.get::<_, i64>(0))
                    .map(|n| u64::try_from(n).unwrap_or(0))
                    .map_err(failed)
            };
            Ok(QueueStats {
                ready: count(
                    "SELECT COUNT(*) FROM tower_webhook_queue \
                     WHERE queue = ?1 AND pulled = 0 AND visible_at <= ?2",
                )?,
                pending: count(
                    "SELECT COUNT(*) FROM tower_webhook_queue \
                     WHERE queue = ?1 AND pulled = 1 AND ?2 = ?2",
                )?,
                delayed: count(
                    "SELECT COUNT(*) FROM tower_webhook_queue \
                     WHERE queue = ?1 AND pulled = 0 AND visible_at > ?2",
                )?,
                dead: count(
                    "SELECT COUNT(*) FROM tower_webhook_dead WHERE queue = ?1 AND ?2 = ?2",
                )?,
            })
        }))
    }

    fn list_dead_letters(&self, page: Page) -> QueueFuture<DeadLetterPage> {
        let name = Arc::clone(&self.name);
        Box::pin(self.database.call(move |connection| {
            let Some((after, asked)) = numbered_page(&page) else {
                return Ok(DeadLetterPage::new(Vec::new(), false));
            };
            let mut select = connection
                .prepare_cached(
                    "SELECT id, message_id, payload, attempts, error, first_failed_at, \
                     failed_at, replays FROM tower_webhook_dead \
                     WHERE queue = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                )
                .map_err(failed)?;
            let rows = select
                .query_map(params![name, after, asked], |row| {
                    Ok(DeadLetter {
                        id: dead_id(row.get::<_, i64>(0)?),
                        message_id: MessageId(row.get::<_, i64>(1)?.to_string()),
                        payload: Bytes::from(row.get::<_, Vec<u8>>(2)?),
                        attempts: row.get(3)?,
                        error: row.get(4)?,
                        first_failed_at: at(row.get(5)?),
                        failed_at: at(Some(row.get(6)?)),
                        replays: row.get(7)?,
                    })
                })
                .map_err(failed)?;
            let letters = rows.collect::<Result<Vec<_>, _>>().map_err(failed)?;
            Ok(page_of(letters, page.limit))
        }))
    }

    fn replay_dead_letters(&self, which: Select) -> QueueFuture<u64> {
        let queue = self.clone();
        Box::pin(async move {
            let newest = || {
                let name = Arc::clone(&queue.name);
                queue.database.call(move |connection| {
                    connection
                        .query_row(
                            "SELECT MAX(id) FROM tower_webhook_dead WHERE queue = ?1",
                            params![name],
                            |row| row.get(0),
                        )
                        .map_err(failed)
                })
            };
            let replay = |batch: ReplayBatch| {
                let (name, max_len) = (Arc::clone(&queue.name), queue.max_len);
                let call = queue.database.call(move |connection| {
                    let ids = match batch {
                        // The oldest left, up to the newest there was.
                        ReplayBatch::UpTo(newest) => {
                            let mut select = connection
                                .prepare_cached(
                                    "SELECT id FROM tower_webhook_dead \
                                     WHERE queue = ?1 AND id <= ?2 ORDER BY id LIMIT ?3",
                                )
                                .map_err(failed)?;
                            let limit = i64::try_from(REPLAY_BATCH).unwrap_or(i64::MAX);
                            select
                                .query_map(params![name, newest, limit], |row| row.get(0))
                                .map_err(failed)?
                                .collect::<Result<Vec<i64>, _>>()
                                .map_err(failed)?
                        }
                        ReplayBatch::Numbers(numbers) => numbers,
                    };
                    let mut count = 0u64;
                    for &id in &ids {
                        match replay_one(connection, &name, max_len, id)? {
                            Some(true) => count += 1,
                            Some(false) => {}
                            None => {
                                return Ok::<_, QueueError>(Replayed {
                                    count,
                                    full: true,
                                    looked_at: ids.len(),
                                });
                            }
                        }
                    }
                    Ok(Replayed {
                        count,
                        full: false,
                        looked_at: ids.len(),
                    })
                });
                async {
                    let done = call.await?;
                    if done.count > 0 {
                        queue.arrived.notify_waiters();
                    }
                    Ok(done)
                }
            };
            replay_numbered(&which, newest, replay).await
        })
    }

    fn purge_dead_letters(&self, which: Select) -> QueueFuture<u64> {
        let queue = self.clone();
        Box::pin(async move {
            let mut purged = 0u64;
            match which {
                // A thousand a transaction, so that the file is not held while all go.
                Select::All => loop {
                    let name = Arc::clone(&queue.name);
                    let deleted = queue
                        .database
                        .call(move |connection| {
                            connection
                                .prepare_cached(
                                    "DELETE FROM tower_webhook_dead WHERE id IN \
                                     (SELECT id FROM tower_webhook_dead WHERE queue = ?1 \
                                     LIMIT 1000)",
                                )
                                .and_then(|mut delete| delete.execute(params![name]))
                                .map_err(failed)
                        })
                        .await?;
                    purged += u64::try_from(deleted).unwrap_or(0);
                    if deleted == 0 {
                        break;
                    }
                },
                Select::Ids(ids) => {
                    let name = Arc::clone(&queue.name);
                    purged = queue
                        .database
                        .call(move |connection| {
                            let mut delete = connection
                                .prepare_cached(
                                    "DELETE FROM tower_webhook_dead WHERE id = ?1 AND queue = ?2",
                                )
                                .map_err(failed)?;
                            let mut purged = 0u64;
                            for id in dead_batches(&ids, usize::MAX).concat() {
                                let deleted = delete.execute(params![id, name]).map_err(failed)?;
                                purged += u64::try_from(deleted).unwrap_or(0);
                            }
                            Ok::<_, QueueError>(purged)
                        })
                        .await?;
                }
            }
            Ok(purged)
        })
    }
}
