use std::{
    collections::HashSet,
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use super::{
    Claim, Store, StoreError, Token,
    release::{MAX_PENDING_RELEASES, Releases},
};
use crate::{
    dedupe::DedupeKey,
    postgres::{Params, Postgres, PostgresError, millis, tokio_postgres::Transaction},
};

/// How many records a [`PostgresStore`] keeps at most unless set with
/// [`PostgresStore::max_entries`]: 10,000,000.
pub const DEFAULT_MAX_ENTRIES: u64 = 10_000_000;

/// The future of a [`PostgresStore`] operation.
pub type PostgresFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'static>>;

/// A [`Store`] in PostgreSQL (feature `postgres`): the records of every replica of a service,
/// in the database it already runs, durable as its commits; and the one store whose record can
/// commit in the handler's own transaction ([`complete_in`](Self::complete_in)), so that a
/// delivery's effects and its "done" are written together or not at all.
///
/// A claim is one statement (a function of the crate's schema); concurrent claims of one key
/// are decided by the key's primary key, so exactly one acquires it. Expired records are
/// deleted as claims go on. Every operation fails after the database's timeout: a stalled or
/// unreachable server is a 503, never a hang, and a claim whose answer never came is released
/// in the background once it has landed.
///
/// ```no_run
/// use std::time::Duration;
/// use tower_webhook::dedupe::store::{Claim, PostgresStore, Store, Token};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PostgresStore::connect("postgres://webhooks@127.0.0.1/app").await?;
/// let token = Token::random();
/// let key = "videonest:video.processed:vid_1";
/// assert_eq!(store.claim(key, &token, Duration::from_secs(300)).await?, Claim::Acquired);
/// store.complete(key, &token, Duration::from_secs(86_400)).await?;
/// assert_eq!(store.claim(key, &Token::random(), Duration::from_secs(300)).await?, Claim::Done);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct PostgresStore {
    database: Postgres,
    max_entries: u64,
    releasing: Releases,
    /// Tokens of claims that failed before they were sent (no connection): their abandonment
    /// has nothing to release.
    unsent: Arc<Mutex<HashSet<Token>>>,
}

impl From<PostgresError> for StoreError {
    fn from(err: PostgresError) -> Self {
        Self::unavailable(err)
    }
}

impl PostgresStore {
    /// Connects with a URL ([`Postgres::connect`]) and uses its database.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] with the reason [`Postgres::connect`] gives.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Ok(Self::new(&Postgres::connect(url).await?))
    }

    /// The store in `database`'s schema.
    pub fn new(database: &Postgres) -> Self {
        Self {
            database: database.clone(),
            max_entries: DEFAULT_MAX_ENTRIES,
            releasing: Releases::default(),
            unsent: Arc::default(),
        }
    }

    /// Keeps at most `max_entries` records (at least 1) instead of [`DEFAULT_MAX_ENTRIES`]:
    /// a claim of a new key while as many unexpired records are kept is refused
    /// ([`StoreError::Full`], 503); no record is dropped before it expires. Concurrent claims
    /// of new keys may pass the bound by as many as they are.
    #[must_use]
    pub fn max_entries(mut self, max_entries: u64) -> Self {
        self.max_entries = max_entries.max(1);
        self
    }

    /// Its database: for the handler's own transactions.
    pub fn database(&self) -> &Postgres {
        &self.database
    }

    /// Marks the request's claim done inside `transaction`, the handler's own: the record and
    /// the handler's writes commit together or not at all (exactly-once effects). `key` is the
    /// request's [`DedupeKey`] extension; the layer's own completion afterwards changes
    /// nothing.
    ///
    /// ```no_run
    /// use axum::Extension;
    /// use tower_webhook::{dedupe::{DedupeKey, store::PostgresStore}, Verified};
    /// # use tower_webhook::provider::videonest;
    ///
    /// async fn handler(
    ///     Extension(store): Extension<PostgresStore>,
    ///     Extension(key): Extension<DedupeKey>,
    ///     event: Verified<videonest::Event>,
    /// ) -> Result<(), http::StatusCode> {
    ///     let fail = |_| http::StatusCode::SERVICE_UNAVAILABLE;
    ///     let mut client = store.database().pool().get().await.map_err(fail)?;
    ///     let transaction = client.transaction().await.map_err(|_| http::StatusCode::SERVICE_UNAVAILABLE)?;
    ///     transaction
    ///         .execute("INSERT INTO videos (id) VALUES ($1)", &[&event.id()])
    ///         .await
    ///         .map_err(|_| http::StatusCode::SERVICE_UNAVAILABLE)?;
    ///     store.complete_in(&transaction, &key).await.map_err(|_| http::StatusCode::CONFLICT)?;
    ///     transaction.commit().await.map_err(|_| http::StatusCode::SERVICE_UNAVAILABLE)
    /// }
    /// # let _ = handler;
    /// ```
    ///
    /// # Errors
    ///
    /// [`StoreError::ClaimLost`] when the request no longer holds the claim (its lease ran out
    /// and another delivery may hold it now, or the layer failed open): roll the transaction
    /// back, its effects would repeat another delivery's. [`StoreError::Unavailable`] when
    /// the statement fails (the transaction is then aborted).
    pub async fn complete_in(
        &self,
        transaction: &Transaction<'_>,
        key: &DedupeKey,
    ) -> Result<(), StoreError> {
        let completed = transaction
            .execute(
                &self.database.sql().complete,
                &[
                    &key.as_str(),
                    &key.token().as_str(),
                    &millis(key.retention()),
                ],
            )
            .await
            .map_err(PostgresError::from)?;
        (completed == 1).then_some(()).ok_or(StoreError::ClaimLost)
    }

    /// Frees `key` if `token` holds it: whether it did, and whether the key is done (then a
    /// claim of `token` still on its way cannot take it; another delivery's claim can go away).
    async fn release_now(
        database: Postgres,
        key: String,
        token: Token,
    ) -> Result<(bool, bool), StoreError> {
        let sql = database.sql().clone();
        Ok(database
            .run(|client| {
                Box::pin(async move {
                    let statement = client.prepare_cached(&sql.release).await?;
                    let row = client
                        .query_one(&statement, &[&key, &token.as_str()])
                        .await?;
                    Ok((row.get(0), row.get(1)))
                })
            })
            .await?)
    }
}

impl Store for PostgresStore {
    type ClaimFuture = PostgresFuture<Claim>;
    type SettleFuture = PostgresFuture<()>;

    fn claim(&self, key: &str, token: &Token, lease: Duration) -> Self::ClaimFuture {
        self.database.sweep_now_and_then();
        let database = self.database.clone();
        let (key, token) = (key.to_owned(), token.clone());
        let max_entries = i64::try_from(self.max_entries).unwrap_or(i64::MAX);
        let unsent = Arc::clone(&self.unsent);
        Box::pin(async move {
            let sql = database.sql().clone();
            let sent = Arc::new(AtomicBool::new(false));
            let (sending, claiming) = (Arc::clone(&sent), token.clone());
            let claimed = database
                .run(|client| {
                    Box::pin(async move {
                        sending.store(true, Ordering::Relaxed);
                        let statement = client.prepare_cached(&sql.claim).await?;
                        let row = client
                            .query_one(
                                &statement,
                                &[&key, &claiming.as_str(), &millis(lease), &max_entries],
                            )
                            .await?;
                        Ok(row.get::<_, i16>(0))
                    })
                })
                .await;
            let verdict = match claimed {
                Ok(verdict) => verdict,
                Err(err) => {
                    // No connection, so nothing sent: nothing can land, nothing to release.
                    if !sent.load(Ordering::Relaxed) {
                        let mut unsent = unsent.lock().unwrap_or_else(|p| p.into_inner());
                        if unsent.len() < MAX_PENDING_RELEASES {
                            unsent.insert(token);
                        }
                    }
                    return Err(err.into());
                }
            };
            match verdict {
                0 => Ok(Claim::Acquired),
                1 => Ok(Claim::Done),
                2 => Ok(Claim::InFlight),
                4 => Err(StoreError::Full {
                    max_entries: usize::try_from(max_entries).unwrap_or(usize::MAX),
                }),
                _ => Err(StoreError::UnknownFormat),
            }
        })
    }

    fn complete(&self, key: &str, token: &Token, retention: Duration) -> Self::SettleFuture {
        let database = self.database.clone();
        let (key, token) = (key.to_owned(), token.clone());
        Box::pin(async move {
            let params: Params = vec![
                Box::new(key),
                Box::new(token.as_str().to_owned()),
                Box::new(millis(retention)),
            ];
            database.execute(|sql| &sql.complete, params).await?;
            Ok(())
        })
    }

    fn release(&self, key: &str, token: &Token) -> Self::SettleFuture {
        let release = Self::release_now(self.database.clone(), key.to_owned(), token.clone());
        Box::pin(async move { release.await.map(drop) })
    }

    fn abandon(&self, key: &str, token: &Token) {
        if self
            .unsent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token)
        {
            return;
        }
        // The claim may still land after a release has run (another connection; a stalled
        // server runs both when it wakes): released until it is gone, or the key done.
        let (database, key, token) = (self.database.clone(), key.to_owned(), token.clone());
        self.releasing.spawn(key.clone(), move || {
            let release = Self::release_now(database.clone(), key.clone(), token.clone());
            async move { release.await.map(|(released, done)| released || done) }
        });
    }
}
