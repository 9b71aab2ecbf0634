use std::{future::Future, path::Path, pin::Pin, sync::Arc, time::Duration};

use rusqlite::{Connection, OptionalExtension, params};

use super::{Claim, Store, StoreError, Token};
use crate::sqlite::{Database, millis_after, now_millis};

pub use crate::sqlite::{Durability, SqliteError};

/// How many records a [`SqliteStore`] keeps at most unless set with
/// [`SqliteStore::max_entries`]: 10,000,000 (a few hundred MiB of file).
pub const DEFAULT_MAX_ENTRIES: u64 = 10_000_000;

/// A record's `state`: claimed by a delivery being processed.
pub(crate) const CLAIMED: i64 = 1;
/// A record's `state`: processed, kept for the retention.
pub(crate) const DONE: i64 = 2;

/// How many expired records each transaction deletes, at most.
const SWEEP: i64 = 1024;

/// A [`Store`] in a SQLite file (feature `sqlite`): durable as the disk with nothing to
/// install (the SQLite library is built into the crate), shared by every process on the host
/// that opens the file.
///
/// Each operation is one job on a thread of the store's own (no SQLite call blocks the async
/// executor); concurrent operations share a transaction and its fsync. The file is in WAL mode
/// with `synchronous=FULL` unless [`Durability::Normal`] is asked for: a claim or a record that
/// was answered is in the fsynced log. Expired records are deleted as operations go on. The
/// schema carries a version: an older file is upgraded when opened, a newer one refused.
///
/// ```
/// use std::time::Duration;
/// use tower_webhook::dedupe::store::{Claim, SqliteStore, Store, Token};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("sqlite-store-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let store = SqliteStore::open(dir.join("webhooks.db")).await?;
/// let token = Token::random();
/// let key = "videonest:video.processed:vid_1";
/// assert_eq!(store.claim(key, &token, Duration::from_secs(300)).await?, Claim::Acquired);
/// store.complete(key, &token, Duration::from_secs(86_400)).await?;
/// assert_eq!(store.claim(key, &Token::random(), Duration::from_secs(300)).await?, Claim::Done);
/// # drop(store);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct SqliteStore {
    database: Database,
    max_entries: u64,
}

impl From<Arc<SqliteError>> for StoreError {
    fn from(err: Arc<SqliteError>) -> Self {
        Self::Unavailable(err)
    }
}

/// What a [`SqliteStore`] has committed, from [`SqliteStore::commits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteCommits {
    /// Operations (claims, completions, releases) committed.
    pub operations: u64,
    /// Transactions they were committed in.
    pub transactions: u64,
}

/// The future of a [`SqliteStore`] operation.
pub type SqliteFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'static>>;

impl SqliteStore {
    /// Opens the store in the file at `path` (created if missing), durable with
    /// [`Durability::Full`].
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the file cannot be opened, put in WAL mode or upgraded,
    /// or when its schema is newer than this version reads.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::Full).await
    }

    /// Opens the store in the file at `path` with the given durability.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub async fn open_with(
        path: impl AsRef<Path>,
        durability: Durability,
    ) -> Result<Self, StoreError> {
        let database = Database::open(path.as_ref(), durability, sweep)
            .await
            .map_err(|err| StoreError::Unavailable(Arc::new(err)))?;
        Ok(Self {
            database,
            max_entries: DEFAULT_MAX_ENTRIES,
        })
    }

    /// The thread serving its file.
    #[cfg_attr(not(feature = "queue"), allow(dead_code))]
    pub(crate) fn database(&self) -> &Database {
        &self.database
    }

    /// How many operations it has committed, and in how many transactions (each one fsync
    /// with [`Durability::Full`]): concurrent operations share transactions.
    pub fn commits(&self) -> SqliteCommits {
        let (operations, transactions) = self.database.counts();
        SqliteCommits {
            operations,
            transactions,
        }
    }

    /// Keeps at most `max_entries` records (at least 1) instead of [`DEFAULT_MAX_ENTRIES`]:
    /// a claim of a new key while as many unexpired records are kept is refused
    /// ([`StoreError::Full`], 503); no record is dropped before it expires.
    #[must_use]
    pub fn max_entries(mut self, max_entries: u64) -> Self {
        self.max_entries = max_entries.max(1);
        self
    }
}

/// Deletes a few expired records: run at the end of every transaction.
pub(crate) fn sweep(connection: &Connection, now: i64) -> rusqlite::Result<()> {
    connection
        .prepare_cached(
            "DELETE FROM tower_webhook_dedupe WHERE rowid IN (SELECT rowid FROM \
             tower_webhook_dedupe WHERE expires_at <= ?1 LIMIT ?2)",
        )?
        .execute(params![now, SWEEP])?;
    Ok(())
}

fn failed(err: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(Arc::new(SqliteError::Sqlite(err)))
}

/// How many expired records a claim that finds the store full deletes at most, to make room.
const MAKE_ROOM: i64 = 4096;

/// What the file says of a key now.
pub(crate) enum Record {
    /// Done, within its retention.
    Done,
    /// Claimed, within its lease.
    Claimed,
    /// In a state a later version wrote, unexpired: neither free nor done.
    Unknown,
    /// A record whose time ran out: free, its row to be reused.
    Expired,
    /// No record.
    Absent,
}

/// The record of `key` at `now`.
pub(crate) fn record(connection: &Connection, key: &str, now: i64) -> rusqlite::Result<Record> {
    let found: Option<(i64, i64)> = connection
        .prepare_cached("SELECT state, expires_at FROM tower_webhook_dedupe WHERE key = ?1")?
        .query_row(params![key], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    Ok(match found {
        None => Record::Absent,
        Some((_, expires)) if expires <= now => Record::Expired,
        Some((DONE, _)) => Record::Done,
        Some((CLAIMED, _)) => Record::Claimed,
        Some(_) => Record::Unknown,
    })
}

/// How many records the file keeps (the count its triggers maintain).
fn records(connection: &Connection) -> Result<u64, StoreError> {
    connection
        .prepare_cached("SELECT count FROM tower_webhook_dedupe_count WHERE id = 1")
        .and_then(|mut select| select.query_row([], |row| row.get::<_, i64>(0)))
        .map(|n| u64::try_from(n).unwrap_or(0))
        .map_err(failed)
}

/// Claims `key` in the open transaction. The outer error undoes the job; the inner one (a full
/// store) keeps what it did to make room.
fn claim(
    connection: &Connection,
    key: &str,
    token: &str,
    lease: Duration,
    max_entries: u64,
) -> Result<Result<Claim, StoreError>, StoreError> {
    let now = now_millis();
    match record(connection, key, now).map_err(failed)? {
        Record::Done => return Ok(Ok(Claim::Done)),
        Record::Claimed => return Ok(Ok(Claim::InFlight)),
        Record::Unknown => return Ok(Err(StoreError::UnknownFormat)),
        // Expired: taken over in place.
        Record::Expired => {
            connection
                .prepare_cached(
                    "UPDATE tower_webhook_dedupe SET state = ?1, token = ?2, expires_at = ?3 \
                     WHERE key = ?4",
                )
                .and_then(|mut update| {
                    update.execute(params![CLAIMED, token, millis_after(now, lease), key])
                })
                .map_err(failed)?;
            return Ok(Ok(Claim::Acquired));
        }
        Record::Absent => {}
    }
    // A new key needs room: expired records go first.
    if records(connection)? >= max_entries {
        connection
            .prepare_cached(
                "DELETE FROM tower_webhook_dedupe WHERE rowid IN (SELECT rowid FROM \
                 tower_webhook_dedupe WHERE expires_at <= ?1 LIMIT ?2)",
            )
            .and_then(|mut delete| delete.execute(params![now, MAKE_ROOM]))
            .map_err(failed)?;
        if records(connection)? >= max_entries {
            return Ok(Err(StoreError::Full {
                max_entries: usize::try_from(max_entries).unwrap_or(usize::MAX),
            }));
        }
    }
    connection
        .prepare_cached(
            "INSERT INTO tower_webhook_dedupe (key, state, token, expires_at) \
             VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut insert| {
            insert.execute(params![key, CLAIMED, token, millis_after(now, lease)])
        })
        .map_err(failed)?;
    Ok(Ok(Claim::Acquired))
}

/// Frees `key` if `token` holds its claim.
fn release(connection: &Connection, key: &str, token: &str) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "DELETE FROM tower_webhook_dedupe WHERE key = ?1 AND token = ?2 AND state = ?3",
        )
        .and_then(|mut delete| delete.execute(params![key, token, CLAIMED]))
        .map_err(failed)?;
    Ok(())
}

impl Store for SqliteStore {
    type ClaimFuture = SqliteFuture<Claim>;
    type SettleFuture = SqliteFuture<()>;

    fn claim(&self, key: &str, token: &Token, lease: Duration) -> Self::ClaimFuture {
        let (key, token, max_entries) =
            (key.to_owned(), token.as_str().to_owned(), self.max_entries);
        let claimed = self
            .database
            .call(move |connection| claim(connection, &key, &token, lease, max_entries));
        Box::pin(async move { claimed.await? })
    }

    fn complete(&self, key: &str, token: &Token, retention: Duration) -> Self::SettleFuture {
        let (key, token) = (key.to_owned(), token.as_str().to_owned());
        Box::pin(self.database.call(move |connection| {
            connection
                .prepare_cached(
                    "UPDATE tower_webhook_dedupe SET state = ?1, token = NULL, expires_at = ?2 \
                     WHERE key = ?3 AND token = ?4 AND state = ?5",
                )
                .and_then(|mut update| {
                    update.execute(params![
                        DONE,
                        millis_after(now_millis(), retention),
                        key,
                        token,
                        CLAIMED
                    ])
                })
                .map_err(failed)?;
            Ok(())
        }))
    }

    fn release(&self, key: &str, token: &Token) -> Self::SettleFuture {
        let (key, token) = (key.to_owned(), token.as_str().to_owned());
        Box::pin(
            self.database
                .call(move |connection| release(connection, &key, &token)),
        )
    }

    fn abandon(&self, key: &str, token: &Token) {
        // Jobs run in order: this one runs after the claim it hands back, whenever that ran.
        let (key, token) = (key.to_owned(), token.as_str().to_owned());
        self.database
            .spawn(move |connection| release(connection, &key, &token));
    }
}
