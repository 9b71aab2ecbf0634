//! One SQLite file, served by a thread of its own (feature `sqlite`): the async side sends it
//! jobs and awaits their answers, so that no blocking SQLite call runs on the executor's
//! threads. The thread runs every job waiting when it wakes in one transaction, each job in a
//! savepoint of its own (a job that fails undoes only itself), and commits once: concurrent
//! deliveries share one commit and one fsync (group commit).
//!
//! The file is opened in WAL mode with `synchronous=FULL` unless asked otherwise (a commit is
//! in the fsynced log before any job's answer is sent), a busy timeout so that several
//! processes can share it, and a schema version (`PRAGMA user_version`): an older file is
//! upgraded, a newer one refused.

use std::{
    error::Error as StdError,
    fmt,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

/// The schema version this version of the crate writes and reads.
pub(crate) const SCHEMA_VERSION: i64 = 2;

/// The schema, version by version: `MIGRATIONS[n]` upgrades a file of version `n`.
const MIGRATIONS: &[&str] = &[
    // 0 → 1: the deduplication records.
    "CREATE TABLE tower_webhook_dedupe (
        key TEXT PRIMARY KEY NOT NULL,
        state INTEGER NOT NULL,
        token TEXT,
        expires_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX tower_webhook_dedupe_expiry ON tower_webhook_dedupe (expires_at);",
    // 1 → 2: the queues (several may share the file, by name), their lengths, dead letters.
    "CREATE TABLE tower_webhook_queue (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        payload BLOB NOT NULL,
        attempts INTEGER NOT NULL,
        pulled INTEGER NOT NULL,
        visible_at INTEGER NOT NULL,
        replays INTEGER NOT NULL,
        first_failed_at INTEGER
    ) STRICT;
    CREATE INDEX tower_webhook_queue_due ON tower_webhook_queue (queue, visible_at, id);
    CREATE INDEX tower_webhook_queue_state ON tower_webhook_queue (queue, pulled, visible_at);
    CREATE TABLE tower_webhook_queue_length (
        queue TEXT PRIMARY KEY NOT NULL,
        length INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE tower_webhook_dead (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        message_id INTEGER NOT NULL,
        payload BLOB NOT NULL,
        attempts INTEGER NOT NULL,
        error TEXT NOT NULL,
        first_failed_at INTEGER,
        failed_at INTEGER NOT NULL,
        replays INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX tower_webhook_dead_queue ON tower_webhook_dead (queue, id);
    CREATE TABLE tower_webhook_dedupe_count (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        count INTEGER NOT NULL
    ) STRICT;
    INSERT INTO tower_webhook_dedupe_count (id, count)
        VALUES (1, (SELECT COUNT(*) FROM tower_webhook_dedupe));
    CREATE TRIGGER tower_webhook_dedupe_added AFTER INSERT ON tower_webhook_dedupe BEGIN
        UPDATE tower_webhook_dedupe_count SET count = count + 1 WHERE id = 1;
    END;
    CREATE TRIGGER tower_webhook_dedupe_removed AFTER DELETE ON tower_webhook_dedupe BEGIN
        UPDATE tower_webhook_dedupe_count SET count = count - 1 WHERE id = 1;
    END;",
];

/// At most this many jobs share one transaction.
const MAX_BATCH: usize = 512;

/// How many jobs may wait for the thread before senders wait in turn.
const QUEUE_DEPTH: usize = 4096;

/// How long a write waits for another process's transaction before it fails.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How durable a commit is (SQLite's `synchronous` in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// `synchronous=FULL`: a commit is fsynced to the log before it is answered; an answer
    /// survives a crash of the process, of the operating system, or a power cut. The default.
    #[default]
    Full,
    /// `synchronous=NORMAL`: a commit is written to the log but fsynced only at checkpoints;
    /// it survives a crash of the process, but a crash of the operating system or a power cut
    /// may lose the last commits (answers already sent). Faster: no fsync per commit.
    Normal,
}

/// The file could not be opened or used.
#[derive(Debug)]
#[non_exhaustive]
pub enum SqliteError {
    /// SQLite failed (the file, a lock held too long by another process, the disk, …).
    Sqlite(rusqlite::Error),
    /// The file's schema is newer than this version of the crate reads: a later version wrote
    /// it (refused rather than guessed at).
    NewerSchema {
        /// The file's schema version.
        found: i64,
        /// The newest this version reads.
        supported: i64,
    },
    /// The thread that serves the file is gone (it panicked, or the process is shutting down).
    Stopped,
    /// The thread that serves the file could not be started.
    Spawn(std::io::Error),
    /// The operation panicked (it was undone; the others went on).
    Panicked,
    /// The file could not be put in WAL mode (an in-memory database, or a file system that does
    /// not allow it): it stays in this journal mode.
    NotWal(String),
}

impl fmt::Display for SqliteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(err) => write!(f, "SQLite: {err}"),
            Self::NewerSchema { found, supported } => write!(
                f,
                "the database's schema is version {found}, newer than this version of \
                 tower-webhook reads ({supported}): a later version wrote it"
            ),
            Self::Stopped => f.write_str("the thread serving the SQLite file has stopped"),
            Self::Panicked => f.write_str("the SQLite operation panicked (it was undone)"),
            Self::Spawn(err) => {
                write!(f, "the thread serving the SQLite file did not start: {err}")
            }
            Self::NotWal(mode) => write!(
                f,
                "the SQLite file cannot be put in WAL mode (it stays in {mode} mode)"
            ),
        }
    }
}

impl StdError for SqliteError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Sqlite(err) => Some(err),
            Self::Spawn(err) => Some(err),
            Self::NewerSchema { .. } | Self::Stopped | Self::NotWal(_) | Self::Panicked => None,
        }
    }
}

impl From<rusqlite::Error> for SqliteError {
    fn from(err: rusqlite::Error) -> Self {
        Self::Sqlite(err)
    }
}

/// What the thread does with one job: runs it in the open transaction, then, once the
/// transaction is committed (or not), answers.
trait Job: Send {
    /// Runs in the transaction; an error undoes this job's writes only.
    fn run(&mut self, connection: &Connection) -> Result<(), ()>;
    /// Answers, with whether the transaction was committed.
    fn answer(self: Box<Self>, committed: Result<(), Arc<SqliteError>>);
}

/// A job of a closure, answering on a channel.
struct Call<T, E, F> {
    work: Option<F>,
    result: Option<Result<T, E>>,
    reply: oneshot::Sender<Result<T, E>>,
    /// Whether it runs even when nobody waits for its answer any more (a claim handed back);
    /// otherwise a caller that went away before it ran (a dropped future) has it skipped.
    always: bool,
}

impl<T, E, F> Job for Call<T, E, F>
where
    T: Send,
    E: From<Arc<SqliteError>> + Send,
    F: FnOnce(&Connection) -> Result<T, E> + Send,
{
    fn run(&mut self, connection: &Connection) -> Result<(), ()> {
        if !self.always && self.reply.is_closed() {
            return Err(());
        }
        let Some(work) = self.work.take() else {
            return Err(());
        };
        let result = work(connection);
        let ok = result.is_ok();
        self.result = Some(result);
        if ok { Ok(()) } else { Err(()) }
    }

    fn answer(self: Box<Self>, committed: Result<(), Arc<SqliteError>>) {
        let answer = match (committed, self.result) {
            (Ok(()), Some(result)) => result,
            (Err(err), _) => Err(E::from(err)),
            // It panicked.
            (Ok(()), None) => Err(E::from(Arc::new(SqliteError::Panicked))),
        };
        // The caller may have gone (a dropped future): its job ran all the same.
        let _ = self.reply.send(answer);
    }
}

/// Whether a job runs when nobody awaits its answer any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Run {
    /// Always: its effect matters on its own (a completion, an acknowledgement).
    Always,
    /// Only if its caller still awaits it when its turn comes: its result is worth nothing
    /// unanswered (a pull, whose messages would be hidden for nobody).
    #[cfg_attr(not(feature = "queue"), allow(dead_code))]
    IfAwaited,
}

/// A handle on the thread serving one SQLite file. Cloning it gives another handle on the same
/// thread; the thread stops when the last handle is dropped.
#[derive(Clone)]
pub(crate) struct Database {
    /// Unbounded, so that a job that must not be lost (a claim handed back) is always queued,
    /// in order; [`call`](Self::call)s wait for room in `room` first.
    jobs: mpsc::UnboundedSender<Box<dyn Job>>,
    room: Arc<tokio::sync::Semaphore>,
    path: Arc<PathBuf>,
    counts: Arc<Counts>,
}

/// What the thread has done, for tests and capacity planning.
#[derive(Debug, Default)]
struct Counts {
    jobs: AtomicU64,
    transactions: AtomicU64,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("path", &self.path)
            .finish()
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

/// `now + after` in milliseconds, saturating.
pub(crate) fn millis_after(now: i64, after: Duration) -> i64 {
    now.saturating_add(i64::try_from(after.as_millis()).unwrap_or(i64::MAX))
}

impl Database {
    /// Opens (or creates) the file at `path` on a thread of its own, upgrades its schema, and
    /// resolves once it is ready. `tidy` runs at the end of every transaction (sweeps of
    /// expired rows).
    pub(crate) async fn open(
        path: &Path,
        durability: Durability,
        tidy: fn(&Connection, i64) -> rusqlite::Result<()>,
    ) -> Result<Self, SqliteError> {
        let (jobs, mut queue) = mpsc::unbounded_channel::<Box<dyn Job>>();
        let (opened, ready) = oneshot::channel();
        let file = path.to_owned();
        let counts = Arc::new(Counts::default());
        let counting = Arc::clone(&counts);
        std::thread::Builder::new()
            .name("tower-webhook-sqlite".to_owned())
            .spawn(move || {
                let connection = match open_file(&file, durability) {
                    Ok(connection) => {
                        let _ = opened.send(Ok(()));
                        connection
                    }
                    Err(err) => {
                        let _ = opened.send(Err(err));
                        return;
                    }
                };
                serve(&connection, &mut queue, tidy, &counting);
            })
            .map_err(SqliteError::Spawn)?;
        ready.await.map_err(|_| SqliteError::Stopped)??;
        Ok(Self {
            jobs,
            room: Arc::new(tokio::sync::Semaphore::new(QUEUE_DEPTH)),
            path: Arc::new(path.to_owned()),
            counts,
        })
    }

    /// How many jobs ran, and in how many transactions.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.counts.jobs.load(Ordering::Relaxed),
            self.counts.transactions.load(Ordering::Relaxed),
        )
    }

    /// Runs `work` in the thread's next transaction; resolves once that transaction is
    /// committed (durable as [`Durability`] says) with `work`'s result. `work` runs whether or
    /// not its answer is still awaited.
    pub(crate) fn call<T, E, F>(
        &self,
        work: F,
    ) -> impl std::future::Future<Output = Result<T, E>> + Send + 'static
    where
        T: Send + 'static,
        E: From<Arc<SqliteError>> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        self.call_when(work, Run::Always)
    }

    /// [`call`](Self::call), with `run` saying whether `work` is skipped when its caller has
    /// gone (its future dropped) before its turn.
    pub(crate) fn call_when<T, E, F>(
        &self,
        work: F,
        run: Run,
    ) -> impl std::future::Future<Output = Result<T, E>> + Send + 'static
    where
        T: Send + 'static,
        E: From<Arc<SqliteError>> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Call {
            work: Some(work),
            result: None,
            reply,
            always: run == Run::Always,
        });
        let (jobs, room) = (self.jobs.clone(), Arc::clone(&self.room));
        async move {
            let stopped = || E::from(Arc::new(SqliteError::Stopped));
            // Held until answered: at most QUEUE_DEPTH calls wait for the thread.
            let _permit = room.acquire_owned().await.map_err(|_| stopped())?;
            jobs.send(job).map_err(|_| stopped())?;
            answer.await.map_err(|_| stopped())?
        }
    }

    /// Runs `work` in the thread's next transaction without waiting for it (its result is
    /// dropped). Jobs run in the order they were sent. Returns whether it was queued.
    pub(crate) fn spawn<E, F>(&self, work: F) -> bool
    where
        E: From<Arc<SqliteError>> + Send + 'static,
        F: FnOnce(&Connection) -> Result<(), E> + Send + 'static,
    {
        let (reply, _) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Call {
            work: Some(work),
            result: None,
            reply,
            always: true,
        });
        self.jobs.send(job).is_ok()
    }
}

/// Opens the file, sets its pragmas and brings its schema to [`SCHEMA_VERSION`].
fn open_file(path: &Path, durability: Durability) -> Result<Connection, SqliteError> {
    // Only its owner may read the keys and tokens it holds (SQLite gives its -wal and -shm
    // files the same permissions).
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
    }
    // A path, never a `file:` URI.
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
        | rusqlite::OpenFlags::SQLITE_OPEN_CREATE
        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut connection = Connection::open_with_flags(path, flags)?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    // The record count's triggers see the rows `INSERT OR REPLACE` deletes.
    connection.execute_batch("PRAGMA recursive_triggers = ON")?;
    // Switching a new file to WAL takes a lock that the busy timeout does not wait for: another
    // process opening the file at the same moment makes it fail at once. Try again meanwhile.
    let started = std::time::Instant::now();
    loop {
        let mode: String = connection.query_row("PRAGMA journal_mode", [], |row| row.get(0))?;
        if mode.eq_ignore_ascii_case("wal") {
            break;
        }
        match connection.query_row("PRAGMA journal_mode = WAL", [], |row| {
            row.get::<_, String>(0)
        }) {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => break,
            Ok(mode) => return Err(SqliteError::NotWal(mode)),
            Err(err) if is_busy(&err) && started.elapsed() < BUSY_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(err) => return Err(err.into()),
        }
    }
    connection.execute_batch(match durability {
        Durability::Full => "PRAGMA synchronous = FULL;",
        Durability::Normal => "PRAGMA synchronous = NORMAL;",
    })?;
    migrate(&mut connection)?;
    Ok(connection)
}

/// Upgrades the schema to [`SCHEMA_VERSION`] in one transaction; refuses a newer one.
fn migrate(connection: &mut Connection) -> Result<(), SqliteError> {
    let transaction =
        connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let found: i64 = transaction.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if !(0..=SCHEMA_VERSION).contains(&found) {
        return Err(SqliteError::NewerSchema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for migration in &MIGRATIONS[usize::try_from(found).unwrap_or(0)..] {
        transaction.execute_batch(migration)?;
    }
    transaction.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
    transaction.commit()?;
    Ok(())
}

/// Whether SQLite answered that another connection holds the lock.
fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Serves jobs until every handle is dropped: each wake-up, every job waiting (up to
/// [`MAX_BATCH`]) in one transaction.
fn serve(
    connection: &Connection,
    queue: &mut mpsc::UnboundedReceiver<Box<dyn Job>>,
    tidy: fn(&Connection, i64) -> rusqlite::Result<()>,
    counts: &Counts,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let committed = run_batch(connection, &mut batch, tidy).map_err(Arc::new);
        if committed.is_err() {
            let _ = connection.execute_batch("ROLLBACK");
        } else {
            counts.transactions.fetch_add(1, Ordering::Relaxed);
            counts
                .jobs
                .fetch_add(u64::try_from(batch.len()).unwrap_or(0), Ordering::Relaxed);
        }
        for job in batch.drain(..) {
            job.answer(committed.clone());
        }
    }
}

/// One transaction: each job in a savepoint, then `tidy`, then the commit.
fn run_batch(
    connection: &Connection,
    batch: &mut [Box<dyn Job>],
    tidy: fn(&Connection, i64) -> rusqlite::Result<()>,
) -> Result<(), SqliteError> {
    connection.execute_batch("BEGIN IMMEDIATE")?;
    for job in batch.iter_mut() {
        connection.execute_batch("SAVEPOINT job")?;
        // A job that panics is undone and answered with an error; the others go on.
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(connection)));
        match ran {
            Ok(Ok(())) => connection.execute_batch("RELEASE job")?,
            Ok(Err(())) | Err(_) => connection.execute_batch("ROLLBACK TO job; RELEASE job")?,
        }
    }
    tidy(connection, now_millis())?;
    connection.execute_batch("COMMIT")?;
    Ok(())
}
