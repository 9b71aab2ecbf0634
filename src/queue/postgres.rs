use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use bytes::Bytes;

use super::{
    DeadLetter, DeadLetterPage, Delivery, Message, MessageId, Page, Pull, Pushed, Queue,
    QueueError, QueueFuture, QueueStats, Select,
    dead::{
        REPLAY_BATCH, ReplayBatch, Replayed, dead_id, dead_number, numbered_page, page_of,
        replay_numbered,
    },
};
use crate::{
    expiring::later,
    postgres::{Params, Postgres, PostgresError, Sql, millis, tokio_postgres::Transaction},
};

/// How many messages a [`PostgresQueue`] holds unless set with [`PostgresQueue::max_len`]:
/// 1,000,000.
pub const DEFAULT_POSTGRES_MAX_LEN: u64 = 1_000_000;

/// The queue name a [`PostgresQueue`] uses unless set with [`PostgresQueue::name`].
pub const DEFAULT_POSTGRES_QUEUE: &str = "webhooks";

/// A [`Queue`] in PostgreSQL (feature `postgres` with `queue`): shared by every replica,
/// durable as the database's commits, and settled in the handler's own transaction when it
/// asks ([`ack_in`](Self::ack_in)): the delivery's effects and its acknowledgement commit
/// together or not at all.
///
/// Each push is one statement and one transaction (a 2xx means committed, `fsync`ed with
/// `synchronous_commit=on`); [`Queue::push_once`] records the key in the same statement. A
/// pull takes due messages with `FOR UPDATE SKIP LOCKED`, so that workers never wait for each
/// other, and hides them for their visibility timeout: a worker that dies leaves its messages
/// to be taken again, their attempt raised, and settling checks the attempt, so that a worker
/// that outlived its lease changes nothing. Waiting workers are woken by `LISTEN/NOTIFY` when
/// the database was opened with a URL or [`listen_with`](crate::postgres::PostgresBuilder::listen_with).
/// Several queues share a schema by [`name`](Self::name); the keys of
/// [`Queue::push_once`] are the schema's deduplication records, shared with a
/// [`PostgresStore`](crate::dedupe::store::PostgresStore) on it.
///
/// ```no_run
/// use tower_webhook::queue::{PostgresQueue, Pull, Queue};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let queue = PostgresQueue::connect("postgres://webhooks@127.0.0.1/app").await?;
/// queue.push(r#"{"v":1}"#.into()).await?;
/// let message = queue.pull("worker-1", Pull::up_to(1)).await?.remove(0);
/// queue.ack(&message).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct PostgresQueue {
    database: Postgres,
    name: Arc<str>,
    max_len: u64,
}

impl From<PostgresError> for QueueError {
    fn from(err: PostgresError) -> Self {
        Self::unavailable(err)
    }
}

/// Its number, of a message id this queue gave.
fn number(id: &MessageId) -> Option<i64> {
    id.0.parse().ok()
}

fn attempt(attempt: u32) -> i32 {
    i32::try_from(attempt).unwrap_or(i32::MAX)
}

impl PostgresQueue {
    /// Connects with a URL ([`Postgres::connect`]) and uses the queue
    /// [`DEFAULT_POSTGRES_QUEUE`] of its database.
    ///
    /// # Errors
    ///
    /// [`QueueError::Unavailable`] with the reason [`Postgres::connect`] gives.
    pub async fn connect(url: &str) -> Result<Self, QueueError> {
        Ok(Self::new(&Postgres::connect(url).await?))
    }

    /// The queue [`DEFAULT_POSTGRES_QUEUE`] in `database`'s schema.
    pub fn new(database: &Postgres) -> Self {
        Self {
            database: database.clone(),
            name: Arc::from(DEFAULT_POSTGRES_QUEUE),
            max_len: DEFAULT_POSTGRES_MAX_LEN,
        }
    }

    setters! {
        /// Uses the queue `name` of the schema instead of [`DEFAULT_POSTGRES_QUEUE`].
        #[must_use]
        pub fn name(name: impl Into<Arc<str>>) { name = name.into() }

        /// Holds at most `max_len` messages (ready, delayed or being processed; at least 1) instead
        /// of [`DEFAULT_POSTGRES_MAX_LEN`]: a push beyond is refused ([`QueueError::Full`], 503).
        /// Concurrent pushes may pass the bound by as many as they are.
        #[must_use]
        pub fn max_len(max_len: u64) { max_len = max_len.max(1) }
    }

    /// Its database: for the handler's own transactions.
    pub fn database(&self) -> &Postgres {
        &self.database
    }

    /// Acknowledges `delivery` inside `transaction`, the handler's own: the handler's writes
    /// and the acknowledgement commit together or not at all (exactly-once effects). If the
    /// worker dies before the commit, neither is there and the delivery comes back; after it,
    /// both are, and it never comes back. The worker's own acknowledgement afterwards changes
    /// nothing.
    ///
    /// ```no_run
    /// use std::convert::Infallible;
    /// use tower::service_fn;
    /// use tower_webhook::queue::{Delivery, PostgresQueue, QueueError, Worker};
    /// # use tower_webhook::provider::videonest;
    ///
    /// # async fn run(queue: PostgresQueue) {
    /// let handler = {
    ///     let queue = queue.clone();
    ///     service_fn(move |delivery: Delivery<videonest::Event>| {
    ///         let queue = queue.clone();
    ///         async move {
    ///             let mut client = queue.database().pool().get().await?;
    ///             let transaction = client.transaction().await?;
    ///             transaction
    ///                 .execute("INSERT INTO videos (id) VALUES ($1)", &[&delivery.event().id()])
    ///                 .await?;
    ///             queue.ack_in(&transaction, &delivery).await?;
    ///             transaction.commit().await?;
    ///             Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    ///         }
    ///     })
    /// };
    /// Worker::new(queue, handler).run(std::future::pending::<()>()).await.ok();
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`QueueError::NotHeld`] when this delivery no longer holds the message (its visibility
    /// timeout ran out and another worker took it, or it was settled): roll the transaction
    /// back, its effects would repeat another delivery's. [`QueueError::Unavailable`] when the
    /// statement fails (the transaction is then aborted).
    pub async fn ack_in<E>(
        &self,
        transaction: &Transaction<'_>,
        delivery: &Delivery<E>,
    ) -> Result<(), QueueError> {
        let Some(id) = number(delivery.id()) else {
            return Err(QueueError::NotHeld);
        };
        let acked = transaction
            .execute(
                &self.database.sql().ack_in,
                &[&id, &&*self.name, &attempt(delivery.attempt())],
            )
            .await
            .map_err(PostgresError::from)?;
        (acked == 1).then_some(()).ok_or(QueueError::NotHeld)
    }

    fn full(&self) -> QueueError {
        QueueError::Full {
            capacity: usize::try_from(self.max_len).unwrap_or(usize::MAX),
        }
    }

    fn max(&self) -> i64 {
        i64::try_from(self.max_len).unwrap_or(i64::MAX)
    }

    /// Runs the settling statement `which` picks on `message`, with `extra` after the three
    /// parameters that say which message and attempt: a message this delivery no longer holds
    /// is left as it is (settling is idempotent).
    fn settle(&self, message: &Message, which: fn(&Sql) -> &str, extra: Extra) -> QueueFuture<()> {
        let (database, name) = (self.database.clone(), Arc::clone(&self.name));
        let (id, attempt) = (number(&message.id), attempt(message.attempt));
        Box::pin(async move {
            let Some(id) = id else {
                return Ok(());
            };
            let sql = database.sql().clone();
            database
                .run(|client| {
                    Box::pin(async move {
                        let statement = client.prepare_cached(which(&sql)).await?;
                        let name: &str = &name;
                        match &extra {
                            Extra::None => {
                                client.execute(&statement, &[&id, &name, &attempt]).await
                            }
                            Extra::Millis(delay) => {
                                client
                                    .execute(&statement, &[&id, &name, &attempt, delay])
                                    .await
                            }
                            Extra::Text(error) => {
                                client
                                    .execute(&statement, &[&id, &name, &attempt, error])
                                    .await
                            }
                        }?;
                        Ok(())
                    })
                })
                .await?;
            Ok(())
        })
    }
}

/// The parameter a settling statement takes after the message and attempt.
enum Extra {
    None,
    Millis(i64),
    Text(String),
}

impl Queue for PostgresQueue {
    fn push(&self, payload: Bytes) -> QueueFuture<MessageId> {
        let (database, name, max, full) = (
            self.database.clone(),
            Arc::clone(&self.name),
            self.max(),
            self.full(),
        );
        Box::pin(async move {
            let sql = database.sql().clone();
            let id: Option<i64> = database
                .run(|client| {
                    Box::pin(async move {
                        let statement = client.prepare_cached(&sql.push).await?;
                        let row = client
                            .query_one(&statement, &[&&*name, &&*payload, &max])
                            .await?;
                        Ok(row.get(0))
                    })
                })
                .await?;
            let id = id.ok_or(full)?;
            database.stored();
            Ok(MessageId(id.to_string()))
        })
    }

    fn push_once(&self, key: &str, retention: Duration, payload: Bytes) -> QueueFuture<Pushed> {
        let (database, name, max, full) = (
            self.database.clone(),
            Arc::clone(&self.name),
            self.max(),
            self.full(),
        );
        let key = key.to_owned();
        self.database.sweep_now_and_then();
        Box::pin(async move {
            let sql = database.sql().clone();
            let (outcome, id): (i16, Option<i64>) = database
                .run(|client| {
                    Box::pin(async move {
                        let statement = client.prepare_cached(&sql.push_once).await?;
                        let row = client
                            .query_one(
                                &statement,
                                &[&&*name, &key, &millis(retention), &&*payload, &max],
                            )
                            .await?;
                        Ok((row.get(0), row.get(1)))
                    })
                })
                .await?;
            match (outcome, id) {
                (0, Some(id)) => {
                    database.stored();
                    Ok(Pushed::Stored(MessageId(id.to_string())))
                }
                (1, _) => Ok(Pushed::Duplicate),
                (2, _) => Ok(Pushed::Claimed),
                (4, _) => Err(full),
                _ => Err(QueueError::UnknownFormat),
            }
        })
    }

    fn pull(&self, _consumer: &str, pull: Pull) -> QueueFuture<Vec<Message>> {
        self.database.sweep_now_and_then();
        let (database, name) = (self.database.clone(), Arc::clone(&self.name));
        Box::pin(async move {
            if pull.max == 0 {
                return Ok(Vec::new());
            }
            let now = tokio::time::Instant::now();
            let deadline = tokio::time::Instant::from(later(now.into_std(), pull.wait));
            let max = i64::try_from(pull.max).unwrap_or(i64::MAX);
            let visibility = millis(pull.visibility);
            loop {
                let (arrived, poll) = database.arrival();
                let sql = database.sql().clone();
                let name = Arc::clone(&name);
                let mut taken: Vec<Message> = database
                    .run(|client| {
                        Box::pin(async move {
                            let statement = client.prepare_cached(&sql.pull).await?;
                            let rows = client
                                .query(&statement, &[&&*name, &max, &visibility])
                                .await?;
                            Ok(rows
                                .iter()
                                .map(|row| Message {
                                    id: MessageId(row.get::<_, i64>(0).to_string()),
                                    payload: Bytes::from(row.get::<_, Vec<u8>>(1)),
                                    attempt: u32::try_from(row.get::<_, i32>(2)).unwrap_or(0),
                                    replays: u32::try_from(row.get::<_, i32>(3)).unwrap_or(0),
                                })
                                .collect())
                        })
                    })
                    .await?;
                let now = tokio::time::Instant::now();
                if !taken.is_empty() || now >= deadline {
                    taken.sort_by_key(|m| number(&m.id).unwrap_or(0));
                    return Ok(taken);
                }
                // Woken by a push here or a notification from elsewhere, or looking again.
                let _ = tokio::time::timeout(poll.min(deadline - now), arrived).await;
            }
        })
    }

    fn ack(&self, message: &Message) -> QueueFuture<()> {
        self.settle(message, |sql| &sql.ack, Extra::None)
    }

    /// One statement for all.
    fn ack_many(&self, messages: &[Message]) -> QueueFuture<()> {
        let (database, name) = (self.database.clone(), Arc::clone(&self.name));
        let (ids, attempts): (Vec<i64>, Vec<i32>) = messages
            .iter()
            .filter_map(|message| Some((number(&message.id)?, attempt(message.attempt))))
            .unzip();
        Box::pin(async move {
            if !ids.is_empty() {
                let params: Params = vec![
                    Box::new(ids),
                    Box::new(name.to_string()),
                    Box::new(attempts),
                ];
                database.execute(|sql| &sql.ack_many, params).await?;
            }
            Ok(())
        })
    }

    fn retry(&self, message: &Message, _error: &str, delay: Duration) -> QueueFuture<()> {
        self.settle(message, |sql| &sql.retry, Extra::Millis(millis(delay)))
    }

    fn dead_letter(&self, message: &Message, error: &str) -> QueueFuture<()> {
        self.settle(
            message,
            |sql| &sql.dead_letter,
            // PostgreSQL's text has no NUL.
            Extra::Text(error.replace('\0', "\u{fffd}")),
        )
    }

    fn stats(&self) -> QueueFuture<QueueStats> {
        let (database, name) = (self.database.clone(), Arc::clone(&self.name));
        Box::pin(async move {
            let sql = database.sql().clone();
            let counts: [i64; 4] = database
                .run(|client| {
                    Box::pin(async move {
                        let statement = client.prepare_cached(&sql.stats).await?;
                        let row = client.query_one(&statement, &[&&*name]).await?;
                        Ok([row.get(0), row.get(1), row.get(2), row.get(3)])
                    })
                })
                .await?;
            let [ready, pending, delayed, dead] = counts.map(|n| u64::try_from(n).unwrap_or(0));
            Ok(QueueStats {
                ready,
                pending,
                delayed,
                dead,
            })
        })
    }

    fn list_dead_letters(&self, page: Page) -> QueueFuture<DeadLetterPage> {
        let (database, name) = (self.database.clone(), Arc::clone(&self.name));
        Box::pin(async move {
            let Some((after, asked)) = numbered_page(&page) else {
                return Ok(DeadLetterPage::new(Vec::new(), false));
            };
            let sql = database.sql().clone();
            let letters: Vec<DeadLetter> = database
                .run(|client| {
                    Box::pin(async move {
                        let statement = client.prepare_cached(&sql.list_dead).await?;
                        let rows = client.query(&statement, &[&&*name, &after, &asked]).await?;
                        Ok(rows
                            .iter()
                            .map(|row| DeadLetter {
                                id: dead_id(row.get::<_, i64>(0)),
                                message_id: MessageId(row.get::<_, i64>(1).to_string()),
                                payload: Bytes::from(row.get::<_, Vec<u8>>(2)),
                                attempts: u32::try_from(row.get::<_, i32>(3)).unwrap_or(0),
                                error: row.get(4),
                                first_failed_at: row.get::<_, Option<SystemTime>>(5),
                                failed_at: Some(row.get::<_, SystemTime>(6)),
                                replays: u32::try_from(row.get::<_, i32>(7)).unwrap_or(0),
                            })
                            .collect())
                    })
                })
                .await?;
            Ok(page_of(letters, page.limit))
        })
    }

    fn replay_dead_letters(&self, which: Select) -> QueueFuture<u64> {
        let queue = self.clone();
        Box::pin(async move {
            let (database, max) = (&queue.database, queue.max());
            let sql = database.sql();
            let newest = || {
                let (sql, name) = (sql.clone(), Arc::clone(&queue.name));
                database.run(|client| {
                    Box::pin(async move {
                        let row = client.query_one(&sql.newest_dead, &[&&*name]).await?;
                        Ok(row.get(0))
                    })
                })
            };
            let replay = |batch: ReplayBatch| {
                let (sql, name) = (sql.clone(), Arc::clone(&queue.name));
                let limit = i64::try_from(REPLAY_BATCH).unwrap_or(i64::MAX);
                async move {
                    let done = database
                        .run(move |client| {
                            Box::pin(async move {
                                let ids: Vec<i64> = match batch {
                                    ReplayBatch::UpTo(newest) => client
                                        .query(&sql.oldest_dead, &[&&*name, &newest, &limit])
                                        .await?
                                        .iter()
                                        .map(|row| row.get(0))
                                        .collect(),
                                    ReplayBatch::Numbers(numbers) => numbers,
                                };
                                let statement = client.prepare_cached(&sql.replay).await?;
                                let row =
                                    client.query_one(&statement, &[&&*name, &ids, &max]).await?;
                                Ok(Replayed {
                                    count: u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
                                    full: row.get(1),
                                    looked_at: ids.len(),
                                })
                            })
                        })
                        .await?;
                    if done.count > 0 {
                        database.stored();
                    }
                    Ok(done)
                }
            };
            Ok(replay_numbered(&which, newest, replay).await?)
        })
    }

    fn purge_dead_letters(&self, which: Select) -> QueueFuture<u64> {
        let queue = self.clone();
        Box::pin(async move {
            let database = &queue.database;
            let sql = database.sql().clone();
            let mut purged = 0u64;
            match which {
                // A thousand a transaction.
                Select::All => loop {
                    let (sql, name) = (sql.clone(), Arc::clone(&queue.name));
                    let deleted = database
                        .run(|client| {
                            Box::pin(async move {
                                Ok(client.execute(&sql.purge_some, &[&&*name]).await?)
                            })
                        })
                        .await?;
                    purged += deleted;
                    if deleted == 0 {
                        break;
                    }
                },
                Select::Ids(ids) => {
                    let ids: Vec<i64> = ids.iter().filter_map(dead_number::<i64>).collect();
                    let name = Arc::clone(&queue.name);
                    purged = database
                        .run(|client| {
                            Box::pin(async move {
                                Ok(client.execute(&sql.purge_ids, &[&&*name, &ids]).await?)
                            })
                        })
                        .await?;
                }
            }
            Ok(purged)
        })
    }
}
