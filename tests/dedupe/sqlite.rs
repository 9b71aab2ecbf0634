//! The deduplication semantics of `suite.rs` against `SqliteStore`, in a file of each test's
//! own; two stores on one file as two processes would share it; the file's mode and schema
//! version; group commit.

use std::{path::PathBuf, time::Duration};

use tower_webhook::dedupe::store::{Claim, SqliteError, SqliteStore, Store, StoreError, Token};

use crate::suite;

/// A folder of this test's own, removed when dropped.
struct Folder(PathBuf);

impl Folder {
    fn new(test: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "tower-webhook-sqlite-{test}-{}-{}",
            std::process::id(),
            Token::random().as_str()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn file(&self) -> PathBuf {
        self.0.join("webhooks.db")
    }

    async fn store(&self) -> SqliteStore {
        SqliteStore::open(self.file()).await.unwrap()
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_concurrent_deliveries_run_the_handler_once() {
    let folder = Folder::new("concurrent");
    suite::concurrent_deliveries_run_the_handler_once(folder.store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_stores_on_one_file_run_the_handler_once() {
    let folder = Folder::new("two");
    // Two connections on their own threads, as two processes on one host.
    suite::two_replicas_run_the_handler_once(folder.store().await, folder.store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_failing_handler_releases_the_claim() {
    let folder = Folder::new("failing");
    suite::failing_handler_releases_the_claim(folder.store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_in_flight_and_done_repeats() {
    let folder = Folder::new("repeats");
    suite::in_flight_and_done_repeats(folder.store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_expired_lease_is_reclaimable() {
    let folder = Folder::new("expired");
    suite::expired_lease_is_reclaimable(folder.store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_dropped_handler_releases_the_claim() {
    let folder = Folder::new("dropped");
    suite::dropped_handler_releases_the_claim(folder.store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_namespaces_keep_routes_apart() {
    let folder = Folder::new("namespaces");
    suite::namespaces_keep_routes_apart(folder.store().await).await;
}

/// What was recorded is still there when the file is opened again (a restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_outlive_the_store_that_wrote_them() {
    let folder = Folder::new("reopen");
    let store = folder.store().await;
    let (done, claimed) = (Token::random(), Token::random());
    let lease = Duration::from_secs(300);
    assert_eq!(
        store.claim("done", &done, lease).await.unwrap(),
        Claim::Acquired
    );
    store
        .complete("done", &done, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(
        store.claim("claimed", &claimed, lease).await.unwrap(),
        Claim::Acquired
    );
    drop(store);
    let store = folder.store().await;
    assert_eq!(
        store.claim("done", &Token::random(), lease).await.unwrap(),
        Claim::Done
    );
    assert_eq!(
        store
            .claim("claimed", &Token::random(), lease)
            .await
            .unwrap(),
        Claim::InFlight
    );
    store.release("claimed", &claimed).await.unwrap();
    assert_eq!(
        store
            .claim("claimed", &Token::random(), lease)
            .await
            .unwrap(),
        Claim::Acquired
    );
}

/// The file is in WAL mode with the schema version this crate writes; a file of a newer
/// version is refused with an error that says so, and left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_is_wal_with_a_schema_version_and_a_newer_one_is_refused() {
    let folder = Folder::new("schema");
    drop(folder.store().await);
    let connection = rusqlite::Connection::open(folder.file()).unwrap();
    let mode: String = connection
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, 2);
    connection.execute_batch("PRAGMA user_version = 7").unwrap();
    drop(connection);
    let refused = SqliteStore::open(folder.file()).await.unwrap_err();
    let StoreError::Unavailable(err) = &refused else {
        panic!("{refused:?}");
    };
    let err = err.downcast_ref::<SqliteError>().unwrap();
    assert!(
        matches!(
            err,
            SqliteError::NewerSchema {
                found: 7,
                supported: 2
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("version 7, newer"), "{err}");
    let connection = rusqlite::Connection::open(folder.file()).unwrap();
    let version: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, 7, "left as it was");
}

/// Claims that arrive while a transaction is under way share the next one (one commit and one
/// fsync for many), and stay exact. Another process holds the file's write lock for a moment,
/// so that all the claims arrive while the store waits for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_that_arrive_together_share_a_transaction() {
    let folder = Folder::new("group");
    let store = folder.store().await;
    let other = rusqlite::Connection::open(folder.file()).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let lease = Duration::from_secs(300);
    let claims: Vec<_> = (0..256)
        .map(|i| {
            let store = store.clone();
            let key = format!("key-{}", i % 64);
            tokio::spawn(async move { store.claim(&key, &Token::random(), lease).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    other.execute_batch("COMMIT").unwrap();
    let mut acquired = 0;
    for claim in claims {
        if claim.await.unwrap().unwrap() == Claim::Acquired {
            acquired += 1;
        }
    }
    assert_eq!(acquired, 64, "each of 64 keys acquired once");
    let commits = store.commits();
    assert_eq!(commits.operations, 256);
    assert!(commits.transactions <= 4, "{commits:?}");
}

/// A store full of live records refuses a new key (503) and keeps every record; expired ones
/// make room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_refuses_new_keys_until_records_expire() {
    let folder = Folder::new("full");
    let store = folder.store().await.max_entries(3);
    let short = Duration::from_millis(200);
    for key in ["a", "b", "c"] {
        let token = Token::random();
        assert_eq!(
            store.claim(key, &token, short).await.unwrap(),
            Claim::Acquired
        );
        store.complete(key, &token, short).await.unwrap();
    }
    let refused = store.claim("d", &Token::random(), short).await.unwrap_err();
    assert!(
        matches!(refused, StoreError::Full { max_entries: 3 }),
        "{refused:?}"
    );
    assert_eq!(
        store.claim("a", &Token::random(), short).await.unwrap(),
        Claim::Done
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        store.claim("d", &Token::random(), short).await.unwrap(),
        Claim::Acquired
    );
}

/// A claim handed back while thousands of operations wait behind another process's lock is
/// still freed once it lands: the release is never dropped for want of room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_handed_back_under_load_is_freed() {
    let folder = Folder::new("abandon");
    let store = folder.store().await;
    let other = rusqlite::Connection::open(folder.file()).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let lease = Duration::from_secs(300);
    let token = Token::random();
    // Its answer never comes (the caller gave up): it lands later, and is handed back.
    let claim = store.claim("abandoned", &token, lease);
    let _ = tokio::time::timeout(Duration::from_millis(50), claim).await;
    let waiting: Vec<_> = (0..5_000)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(
                async move { store.claim(&format!("k{i}"), &Token::random(), lease).await },
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    store.abandon("abandoned", &token);
    other.execute_batch("COMMIT").unwrap();
    for claim in waiting {
        claim.await.unwrap().unwrap();
    }
    let again = store
        .claim("abandoned", &Token::random(), lease)
        .await
        .unwrap();
    assert_eq!(again, Claim::Acquired, "the handed-back claim was freed");
}

/// Several processes opening a new file at once all open it (the switch to WAL is retried).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_opening_a_new_file_at_once_all_open_it() {
    for round in 0..10 {
        let folder = Folder::new(&format!("open-{round}"));
        let file = folder.file();
        let opens: Vec<_> = (0..6)
            .map(|_| {
                let file = file.clone();
                std::thread::spawn(move || {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap()
                        .block_on(SqliteStore::open(file))
                        .map(drop)
                })
            })
            .collect();
        for open in opens {
            open.join().unwrap().unwrap();
        }
    }
}

/// A file of the first schema version, with a record in it, is upgraded when opened: the
/// record is kept and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_of_an_older_schema_is_upgraded_and_keeps_its_records() {
    let folder = Folder::new("upgrade");
    {
        let connection = rusqlite::Connection::open(folder.file()).unwrap();
        connection
            .execute_batch(
                "CREATE TABLE tower_webhook_dedupe (
                    key TEXT PRIMARY KEY NOT NULL,
                    state INTEGER NOT NULL,
                    token TEXT,
                    expires_at INTEGER NOT NULL
                ) STRICT;
                CREATE INDEX tower_webhook_dedupe_expiry ON tower_webhook_dedupe (expires_at);
                INSERT INTO tower_webhook_dedupe VALUES ('kept', 2, NULL, 99999999999999);
                PRAGMA user_version = 1;",
            )
            .unwrap();
    }
    let store = folder.store().await.max_entries(2);
    let lease = Duration::from_secs(300);
    assert_eq!(
        store.claim("kept", &Token::random(), lease).await.unwrap(),
        Claim::Done
    );
    assert_eq!(
        store.claim("new", &Token::random(), lease).await.unwrap(),
        Claim::Acquired
    );
    let full = store
        .claim("third", &Token::random(), lease)
        .await
        .unwrap_err();
    assert!(
        matches!(full, StoreError::Full { max_entries: 2 }),
        "the old record counts: {full:?}"
    );
}
