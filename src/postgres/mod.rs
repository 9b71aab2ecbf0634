//! A PostgreSQL database for the deduplication records and the queue (feature `postgres`): the
//! database a team already runs, where the handler's own writes can commit in the same
//! transaction as the delivery's record ([`PostgresStore::complete_in`],
//! [`PostgresQueue::ack_in`](crate::queue::PostgresQueue::ack_in)): exactly-once effects.
//!
//! A [`Postgres`] is a pool of connections (tokio-postgres on a deadpool pool, the
//! application's own or one made from a URL) and a schema of the crate's tables, created or
//! upgraded when it is opened (a schema newer than this version reads is refused). Stores and
//! queues are cheap handles on it.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use tower_webhook::{
//!     dedupe::store::{Claim, PostgresStore, Store, Token},
//!     postgres::Postgres,
//!     queue::{PostgresQueue, Queue},
//! };
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // From a URL (a pool of its own), in the schema `tower_webhook`:
//! let database = Postgres::connect("postgres://webhooks@127.0.0.1/app").await?;
//! // Or on the application's pool, in a schema of its choosing:
//! # use tower_webhook::postgres::{deadpool_postgres::{Manager, Pool}, tokio_postgres::NoTls};
//! # let config = "postgres://webhooks@127.0.0.1/app".parse()?;
//! # let pool = Pool::builder(Manager::new(config, NoTls)).max_size(16).build()?;
//! let database = Postgres::on(pool).schema("billing_webhooks").open().await?;
//!
//! let store = PostgresStore::new(&database);
//! let token = Token::random();
//! let key = "videonest:video.processed:vid_1";
//! assert_eq!(store.claim(key, &token, Duration::from_secs(300)).await?, Claim::Acquired);
//!
//! let queue = PostgresQueue::new(&database);
//! queue.push(r#"{"v":1}"#.into()).await?;
//! # Ok(())
//! # }
//! ```
//!
//! [`PostgresStore`]: crate::dedupe::store::PostgresStore
//! [`PostgresStore::complete_in`]: crate::dedupe::store::PostgresStore::complete_in

mod schema;

use std::{
    error::Error as StdError,
    fmt,
    future::Future,
    str::FromStr,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

pub use deadpool_postgres;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio::sync::Notify;
pub use tokio_postgres;
use tokio_postgres::{AsyncMessage, Config, NoTls};

pub(crate) use self::schema::Sql;

/// The schema of the crate's tables unless [`PostgresBuilder::schema`] says otherwise.
pub const DEFAULT_SCHEMA: &str = "tower_webhook";

/// How many connections the pool of [`Postgres::connect`] holds at most.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// How long an operation (a connection from the pool, then its statements) may take before it
/// fails, unless [`PostgresBuilder::timeout`] says otherwise: 5 s. A stalled server answers
/// 503, never a hang.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

#[cfg_attr(not(feature = "queue"), allow(dead_code))]
/// How long a waiting pull sleeps between looks when no notification can wake it.
const POLL_UNNOTIFIED: Duration = Duration::from_millis(250);

#[cfg_attr(not(feature = "queue"), allow(dead_code))]
/// How long a waiting pull sleeps between looks while notifications wake it: a safety net for
/// one lost while the listening connection was down.
const POLL_NOTIFIED: Duration = Duration::from_secs(1);

#[cfg_attr(not(feature = "queue"), allow(dead_code))]
/// How often expired deduplication records are deleted, at most.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// How often the background tasks look whether their database is still in use.
const TASK_CHECK: Duration = Duration::from_secs(5);

/// A PostgreSQL database holding the crate's tables: a connection pool and a schema, migrated
/// (feature `postgres`). Cheap to clone. See the [module docs](self).
#[derive(Clone)]
pub struct Postgres {
    inner: Arc<Inner>,
}

#[cfg_attr(not(feature = "queue"), allow(dead_code))]
struct Inner {
    pool: Pool,
    sql: Sql,
    timeout: Duration,
    /// Where the listening connection connects to; `None` on a pool given without it.
    config: Option<Config>,
    /// Pushes of this process and notifications from others, for waiting pulls.
    arrived: Notify,
    /// Pushes of this process, for the task that tells other processes.
    pushed: Notify,
    /// The listening and notifying tasks, once started (again when they have ended: their
    /// runtime was shut down).
    tasks: Mutex<Option<[tokio::task::JoinHandle<()>; 2]>>,
    /// When expired deduplication records were last deleted, in milliseconds since the epoch.
    swept: AtomicU64,
}

impl fmt::Debug for Postgres {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No URL: it may hold a password.
        f.debug_struct("Postgres")
            .field("schema", &self.inner.sql.schema())
            .field("pool", &self.inner.pool.status())
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}

/// Where a [`PostgresBuilder`]'s connections come from.
#[derive(Debug)]
enum Connections {
    /// The application's pool.
    Pool(Pool),
    /// A pool of the database's own, of at most `max` connections made with `config`.
    Url { config: Box<Config>, max: usize },
}

/// The parameters of a statement, owned (for [`Postgres::execute`]).
pub(crate) type Params = Vec<Box<dyn tokio_postgres::types::ToSql + Send + Sync>>;

/// The future of an operation [`Postgres::run`] runs on a connection.
pub(crate) type Operation<'c, T> =
    std::pin::Pin<Box<dyn Future<Output = Result<T, PostgresError>> + Send + 'c>>;

/// A connection an operation is using: if it is dropped before the operation ends, the
/// connection is taken out of the pool, its statement cancelled and the connection closed.
struct Busy(Option<Object>);

impl Drop for Busy {
    fn drop(&mut self) {
        let Some(object) = self.0.take() else {
            return;
        };
        let client = Object::take(object);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let cancel = client.cancel_token();
        drop(runtime.spawn(async move {
            let _ = tokio::time::timeout(DEFAULT_TIMEOUT, cancel.cancel_query(NoTls)).await;
            drop(client);
        }));
    }
}

/// How to open a [`Postgres`] on a pool: [`Postgres::on`].
#[derive(Debug)]
#[must_use = "a builder does nothing until it is opened"]
pub struct PostgresBuilder {
    pool: Connections,
    schema: String,
    timeout: Duration,
    config: Option<Config>,
    migrate: bool,
}

impl Postgres {
    /// Connects with a URL (`postgres://user:password@host:port/database`, or the key-value
    /// form), with a pool of its own of up to [`DEFAULT_POOL_SIZE`] connections, without TLS
    /// (for TLS, build a pool with a TLS connector and use [`on`](Self::on)), and opens the
    /// schema [`DEFAULT_SCHEMA`].
    ///
    /// # Errors
    ///
    /// [`PostgresError`] when the URL does not parse, the database cannot be reached within
    /// [`DEFAULT_TIMEOUT`], or its schema cannot be created, upgraded, or is newer than this
    /// version reads.
    pub async fn connect(url: &str) -> Result<Self, PostgresError> {
        Self::builder(url)?.open().await
    }

    /// A builder with a pool of its own for `url`, as [`connect`](Self::connect), to set the
    /// schema or the timeout first.
    ///
    /// # Errors
    ///
    /// [`PostgresError::Url`] when the URL does not parse.
    pub fn builder(url: &str) -> Result<PostgresBuilder, PostgresError> {
        let mut config = Config::from_str(url).map_err(PostgresError::Url)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_TIMEOUT);
        }
        // A connection to a server that went away (a failover, a cut) is noticed within a
        // minute rather than TCP's quarter of an hour.
        if config.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
            config.keepalives_idle(Duration::from_secs(30));
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(Duration::from_secs(30));
        }
        Ok(PostgresBuilder {
            pool: Connections::Url {
                config: Box::new(config.clone()),
                max: DEFAULT_POOL_SIZE,
            },
            schema: DEFAULT_SCHEMA.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            config: Some(config),
            migrate: true,
        })
    }

    /// A builder on the application's own pool: the handler's transactions and the crate's
    /// statements share its connections. Waiting pulls are woken by this process's pushes and
    /// look again every 250 ms for other processes' unless [`PostgresBuilder::listen_with`]
    /// gives a configuration to `LISTEN` with.
    pub fn on(pool: Pool) -> PostgresBuilder {
        PostgresBuilder {
            pool: Connections::Pool(pool),
            schema: DEFAULT_SCHEMA.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            config: None,
            migrate: true,
        }
    }

    /// The pool: for the handler's own transactions (see
    /// [`PostgresQueue::ack_in`](crate::queue::PostgresQueue::ack_in)).
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// The schema of the crate's tables.
    pub fn schema(&self) -> &str {
        self.inner.sql.schema()
    }

    pub(crate) fn sql(&self) -> &Sql {
        &self.inner.sql
    }

    /// Runs `operation` with a connection of the pool, within the timeout. A connection whose
    /// statement did not finish (the timeout, or this future dropped) never goes back to the
    /// pool: its statement is cancelled and the connection closed, so that the next operation
    /// does not queue behind it, and the abandoned statement does not commit later.
    pub(crate) async fn run<T>(
        &self,
        operation: impl for<'c> FnOnce(&'c Object) -> Operation<'c, T>,
    ) -> Result<T, PostgresError> {
        let timeout = self.inner.timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let client = tokio::time::timeout_at(deadline, self.inner.pool.get())
            .await
            .map_err(|_| PostgresError::TimedOut(timeout))?
            .map_err(PostgresError::Pool)?;
        let mut busy = Busy(Some(client));
        let done = match &busy.0 {
            Some(client) => tokio::time::timeout_at(deadline, operation(client)).await,
            None => unreachable!("the connection is held until the operation ends"),
        };
        let Ok(result) = done else {
            return Err(PostgresError::TimedOut(timeout));
        };
        // Finished: the connection goes back to the pool.
        drop(busy.0.take());
        result
    }

    /// Runs the statement `which` picks (prepared once per connection) with `params`, as
    /// [`run`](Self::run) runs an operation; the rows it changed.
    pub(crate) async fn execute(
        &self,
        which: fn(&Sql) -> &str,
        params: Params,
    ) -> Result<u64, PostgresError> {
        let sql = self.sql().clone();
        self.run(|client| {
            Box::pin(async move {
                let statement = client.prepare_cached(which(&sql)).await?;
                let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                    .iter()
                    .map(|param| &**param as &(dyn tokio_postgres::types::ToSql + Sync))
                    .collect();
                Ok(client.execute(&statement, &params).await?)
            })
        })
        .await
    }

    #[cfg_attr(not(feature = "queue"), allow(dead_code))]
    /// Deletes a batch of expired deduplication records, and of messages acknowledged in a
    /// handler's transaction whose worker did not delete them, in the background, at most every
    /// second: called by claims, deduplicated pushes and pulls.
    pub(crate) fn sweep_now_and_then(&self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let swept = &self.inner.swept;
        let last = swept.load(Ordering::Relaxed);
        let every = u64::try_from(SWEEP_EVERY.as_millis()).unwrap_or(1000);
        if now.saturating_sub(last) < every
            || swept
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let database = self.clone();
        drop(runtime.spawn(async move {
            let sql = database.sql().clone();
            let _ = database
                .run(|client| {
                    Box::pin(async move {
                        let statement = client.prepare_cached(&sql.sweep).await?;
                        client.execute(&statement, &[]).await?;
                        let statement = client.prepare_cached(&sql.sweep_acked).await?;
                        client.execute(&statement, &[]).await?;
                        Ok(())
                    })
                })
                .await;
        }));
    }

    /// Says that messages were stored: waiting pulls of this process wake now, those of other
    /// processes once the notifying task has told them.
    #[cfg_attr(not(feature = "queue"), allow(dead_code))]
    pub(crate) fn stored(&self) {
        self.inner.arrived.notify_waiters();
        self.inner.pushed.notify_one();
        self.start_tasks();
    }

    #[cfg_attr(not(feature = "queue"), allow(dead_code))]
    /// A wait for [`stored`](Self::stored) here or elsewhere, and how long to wait at most
    /// before looking again anyway.
    pub(crate) fn arrival(&self) -> (tokio::sync::futures::Notified<'_>, Duration) {
        self.start_tasks();
        let poll = if self.inner.config.is_some() {
            POLL_NOTIFIED
        } else {
            POLL_UNNOTIFIED
        };
        (self.inner.arrived.notified(), poll)
    }

    #[cfg_attr(not(feature = "queue"), allow(dead_code))]
    /// Starts the tasks that tell other processes of this one's pushes and listen for theirs,
    /// once, when there is a runtime and a configuration to listen with.
    fn start_tasks(&self) {
        let Some(config) = &self.inner.config else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut tasks = self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner());
        if tasks
            .as_ref()
            .is_some_and(|tasks| tasks.iter().all(|task| !task.is_finished()))
        {
            return;
        }
        if let Some(tasks) = tasks.take() {
            tasks.iter().for_each(tokio::task::JoinHandle::abort);
        }
        let channel = self.inner.sql.channel().to_owned();
        *tasks = Some([
            runtime.spawn(listen(
                Arc::downgrade(&self.inner),
                config.clone(),
                channel.clone(),
            )),
            runtime.spawn(notify(Arc::downgrade(&self.inner), channel)),
        ]);
    }
}

#[cfg_attr(not(feature = "queue"), allow(dead_code))]
/// Listens on `channel` with a connection of its own, waking waiting pulls at each
/// notification, reconnecting after a failure, until the database is dropped.
async fn listen(inner: Weak<Inner>, config: Config, channel: String) {
    loop {
        if inner.strong_count() == 0 {
            return;
        }
        if let Ok(Ok((client, mut connection))) =
            tokio::time::timeout(DEFAULT_TIMEOUT, config.connect(NoTls)).await
        {
            let statement = format!("LISTEN {channel}");
            let listening = client.batch_execute(&statement);
            let mut listening = std::pin::pin!(listening);
            // The connection is driven here: its messages are the notifications.
            let mut listened = false;
            loop {
                let message = std::future::poll_fn(|cx| {
                    if !listened && let std::task::Poll::Ready(result) = listening.as_mut().poll(cx)
                    {
                        listened = true;
                        if result.is_err() {
                            return std::task::Poll::Ready(None);
                        }
                        // Messages stored while nobody listened: look now.
                        if let Some(inner) = inner.upgrade() {
                            inner.arrived.notify_waiters();
                        }
                    }
                    connection.poll_message(cx)
                });
                match tokio::time::timeout(TASK_CHECK, message).await {
                    Ok(Some(Ok(AsyncMessage::Notification(_)))) => match inner.upgrade() {
                        Some(inner) => inner.arrived.notify_waiters(),
                        None => return,
                    },
                    Ok(Some(Ok(_))) => {}
                    Ok(Some(Err(_)) | None) => break,
                    Err(_) if inner.strong_count() == 0 => return,
                    Err(_) => {}
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg_attr(not(feature = "queue"), allow(dead_code))]
/// Notifies `channel` after pushes of this process, one notification for all the pushes that
/// arrived while the last one was sent, on a connection of the pool and outside the pushes'
/// transactions (a `NOTIFY` in them would serialize their commits).
async fn notify(inner: Weak<Inner>, channel: String) {
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let pushed = tokio::time::timeout(TASK_CHECK, strong.pushed.notified()).await;
        if pushed.is_ok() {
            let database = Postgres { inner: strong };
            let channel = channel.clone();
            let _ = database
                .run(|client| {
                    Box::pin(async move {
                        client
                            .execute("SELECT pg_notify($1, '')", &[&channel])
                            .await?;
                        Ok(())
                    })
                })
                .await;
        }
    }
}

impl PostgresBuilder {
    setters! {
        /// Keeps the crate's tables in `schema` instead of [`DEFAULT_SCHEMA`] (created if missing):
        /// lowercase ASCII letters, digits and `_`, starting with a letter or `_`, at most 48.
        pub fn schema(schema: impl Into<String>) { schema = schema.into() }

        /// Each operation (waiting for a connection included) fails after `timeout` instead of
        /// [`DEFAULT_TIMEOUT`].
        pub fn timeout(timeout: Duration) { timeout = timeout }

        /// Waiting pulls are woken by other processes' pushes through `LISTEN` on a connection of
        /// their own, made with `config` (the pool's connections cannot receive notifications).
        pub fn listen_with(config: Config) { config = Some(config) }
    }

    /// With a builder from a URL ([`Postgres::builder`]), keeps up to `max` connections
    /// (at least 1) instead of [`DEFAULT_POOL_SIZE`]. On this project's 2-core machine, 16
    /// acknowledged the most deliveries a second; more connections than the server has cores
    /// to run them mostly wait (BENCHMARKS.md). A pool given to [`Postgres::on`] keeps its own
    /// size.
    pub fn max_connections(mut self, max: usize) -> Self {
        if let Connections::Url { max: size, .. } = &mut self.pool {
            *size = max.max(1);
        }
        self
    }

    /// Opens the schema as it is, never creating or upgrading it (no DDL, no `CREATE` right
    /// needed): for tools and for roles that may only read and write the tables. A missing or
    /// older schema is refused ([`PostgresError::OlderSchema`]).
    pub fn without_migrating(mut self) -> Self {
        self.migrate = false;
        self
    }

    /// Creates the schema's tables, or upgrades them, and opens the database. A schema that is
    /// current is only read (no DDL).
    ///
    /// # Errors
    ///
    /// [`PostgresError::InvalidSchema`] for a schema name the crate does not use,
    /// [`PostgresError::NewerSchema`] when a later version wrote the schema, and the errors of
    /// the database (unreachable, refused, timed out).
    pub async fn open(self) -> Result<Postgres, PostgresError> {
        let sql = Sql::new(&self.schema)?;
        let pool = match self.pool {
            Connections::Pool(pool) => pool,
            Connections::Url { config, max } => {
                let manager = Manager::from_config(
                    *config,
                    NoTls,
                    ManagerConfig {
                        recycling_method: RecyclingMethod::Fast,
                    },
                );
                Pool::builder(manager)
                    .max_size(max)
                    .runtime(Runtime::Tokio1)
                    // The handler's own transactions (`ack_in`, `complete_in`) wait no longer
                    // for a connection either.
                    .wait_timeout(Some(self.timeout))
                    .create_timeout(Some(self.timeout))
                    .recycle_timeout(Some(self.timeout))
                    .build()
                    .map_err(PostgresError::PoolBuild)?
            }
        };
        let database = Postgres {
            inner: Arc::new(Inner {
                pool,
                sql,
                timeout: self.timeout,
                config: self.config,
                arrived: Notify::new(),
                pushed: Notify::new(),
                tasks: Mutex::new(None),
                swept: AtomicU64::new(0),
            }),
        };
        let (sql, migrate) = (database.inner.sql.clone(), self.migrate);
        let client = tokio::time::timeout(self.timeout, database.inner.pool.get())
            .await
            .map_err(|_| PostgresError::TimedOut(self.timeout))?
            .map_err(PostgresError::Pool)?;
        tokio::time::timeout(self.timeout, schema::open(client, &sql, migrate))
            .await
            .map_err(|_| PostgresError::TimedOut(self.timeout))??;
        Ok(database)
    }
}

/// The database could not be opened or used.
#[derive(Debug)]
#[non_exhaustive]
pub enum PostgresError {
    /// The database failed or refused (unreachable, a lost connection, an error reply).
    Postgres(tokio_postgres::Error),
    /// No connection could be had from the pool (it could not connect, or was closed).
    Pool(deadpool_postgres::PoolError),
    /// The pool for a URL could not be built.
    PoolBuild(deadpool_postgres::BuildError),
    /// The operation took longer than the timeout (a stalled server, an exhausted pool).
    TimedOut(Duration),
    /// The URL does not parse.
    Url(tokio_postgres::Error),
    /// A schema name the crate does not use: lowercase ASCII letters, digits and `_`,
    /// starting with a letter or `_`, at most 48.
    InvalidSchema(String),
    /// The schema is newer than this version of the crate reads: a later version wrote it
    /// (refused rather than guessed at).
    NewerSchema {
        /// The schema's version.
        found: i32,
        /// The newest this version reads.
        supported: i32,
    },
    /// The schema is missing or older than this version reads, and the database was opened
    /// [`without_migrating`](PostgresBuilder::without_migrating).
    OlderSchema {
        /// The schema's version (0: no schema).
        found: i32,
        /// The version this version reads.
        expected: i32,
    },
    /// The connections' `default_transaction_isolation` is not `read committed`, which the
    /// crate's statements are written for (a claim under `repeatable read` fails when another
    /// delivery claimed the key meanwhile, instead of seeing its claim).
    Isolation(String),
}

impl fmt::Display for PostgresError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Postgres(_) => f.write_str("PostgreSQL failed"),
            Self::Pool(_) => f.write_str("no PostgreSQL connection"),
            Self::PoolBuild(_) => f.write_str("the PostgreSQL pool could not be built"),
            Self::TimedOut(after) => write!(
                f,
                "the PostgreSQL operation did not finish within {} ms",
                after.as_millis()
            ),
            Self::Url(_) => f.write_str("the PostgreSQL URL does not parse"),
            Self::InvalidSchema(name) => write!(
                f,
                "{name:?} is not a schema name tower-webhook uses (lowercase ASCII letters, \
                 digits and _, starting with a letter or _, at most 48)"
            ),
            Self::OlderSchema { found, expected } => write!(
                f,
                "the database's tower-webhook schema is version {found}, not {expected}, and \
                 this database was opened without migrating (open it once with migrations)"
            ),
            Self::Isolation(level) => write!(
                f,
                "the connections' default_transaction_isolation is {level:?}; tower-webhook's \
                 statements need \"read committed\""
            ),
            Self::NewerSchema { found, supported } => write!(
                f,
                "the database's tower-webhook schema is version {found}, newer than this \
                 version of tower-webhook reads ({supported}): a later version wrote it"
            ),
        }
    }
}

impl StdError for PostgresError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Postgres(err) | Self::Url(err) => Some(err),
            Self::Pool(err) => Some(err),
            Self::PoolBuild(err) => Some(err),
            Self::TimedOut(_)
            | Self::InvalidSchema(_)
            | Self::NewerSchema { .. }
            | Self::OlderSchema { .. }
            | Self::Isolation(_) => None,
        }
    }
}

impl From<tokio_postgres::Error> for PostgresError {
    fn from(err: tokio_postgres::Error) -> Self {
        Self::Postgres(err)
    }
}

/// `duration` in whole milliseconds, at most a hundred years (what a timestamp can add).
pub(crate) fn millis(duration: Duration) -> i64 {
    const HUNDRED_YEARS: i64 = 100 * 366 * 24 * 3600 * 1000;
    i64::try_from(duration.as_millis()).map_or(HUNDRED_YEARS, |ms| ms.min(HUNDRED_YEARS))
}
