//! The deduplication semantics of `suite.rs` against `PostgresStore`, in a schema of each
//! test's own; two stores on one database as two replicas; an outage and a stall of the
//! server; exactly-once effects: the record marked done in the handler's own transaction.
//!
//! The server: `TOWER_WEBHOOK_POSTGRES_URL`, else a private one (`common/postgres.rs`); the
//! outage and stall tests always start a private one, since they stop or freeze it.

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_webhook::{
    Rejection,
    dedupe::{
        DedupeKey, DedupeLayer,
        store::{Claim, PostgresStore, Store, StoreError, Token},
    },
    postgres::{Postgres, tokio_postgres},
    provider::videonest,
};

use crate::{
    common::{
        SECRET,
        postgres::{Database, Server, database},
    },
    suite::{self, Harness, answer, until_processed, vn_event},
};

/// A store in the schema of `test`, or `None` (skipped, outside CI) without a server.
async fn store(test: &str) -> Option<(Database, PostgresStore)> {
    let database = database(test).await?;
    let store = PostgresStore::new(&database.open().await);
    Some((database, store))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_deliveries_run_the_handler_once() {
    let Some((_db, store)) = store("pg_dedupe_concurrent").await else {
        return;
    };
    suite::concurrent_deliveries_run_the_handler_once(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_replicas_run_the_handler_once() {
    let Some((db, one)) = store("pg_dedupe_two").await else {
        return;
    };
    // Two pools, as two replicas of a service.
    let two = PostgresStore::new(&db.open().await);
    suite::two_replicas_run_the_handler_once(one, two).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_failing_handler_releases_the_claim() {
    let Some((_db, store)) = store("pg_dedupe_failing").await else {
        return;
    };
    suite::failing_handler_releases_the_claim(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_in_flight_and_done_repeats() {
    let Some((_db, store)) = store("pg_dedupe_repeats").await else {
        return;
    };
    suite::in_flight_and_done_repeats(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_expired_lease_is_reclaimable() {
    let Some((_db, store)) = store("pg_dedupe_expired").await else {
        return;
    };
    suite::expired_lease_is_reclaimable(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_dropped_handler_releases_the_claim() {
    let Some((_db, store)) = store("pg_dedupe_dropped").await else {
        return;
    };
    suite::dropped_handler_releases_the_claim(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_namespaces_keep_routes_apart() {
    let Some((_db, store)) = store("pg_dedupe_namespaces").await else {
        return;
    };
    suite::namespaces_keep_routes_apart(store).await;
}

/// What was recorded is still there for a store opened afterwards (a restart); a store full of
/// unexpired records refuses a new key, and takes it once one has expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_outlive_the_store_and_a_full_store_refuses_new_keys() {
    let Some((db, store)) = store("pg_dedupe_reopen").await else {
        return;
    };
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
    let store = PostgresStore::new(&db.open().await).max_entries(3);
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
    let short = Token::random();
    assert_eq!(
        store
            .claim("short", &short, Duration::from_millis(200))
            .await
            .unwrap(),
        Claim::Acquired
    );
    assert!(matches!(
        store.claim("new", &Token::random(), lease).await,
        Err(StoreError::Full { max_entries: 3 })
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        store.claim("new", &Token::random(), lease).await.unwrap(),
        Claim::Acquired,
        "the expired record made room"
    );
}

/// The server stopped: every delivery is 503 and the handler does not run; started again: the
/// provider's retry is processed, once, and what was done before is still done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_answers_503_and_the_retry_is_processed_once() {
    let Some(mut server) = Server::require("pg_dedupe_outage").await else {
        return;
    };
    let postgres = Postgres::builder(&server.url())
        .unwrap()
        .timeout(Duration::from_secs(1))
        .open()
        .await
        .unwrap();
    let harness = Harness::new(DedupeLayer::<videonest::Event, _>::new(PostgresStore::new(
        &postgres,
    )));
    let (before, during) = (vn_event("vid_before"), vn_event("vid_during"));
    assert_eq!(harness.send(&before).await.status, StatusCode::OK);

    server.stop().await;
    for body in [&before, &during] {
        let answer = harness.send(body).await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{answer:?}");
        assert!(matches!(answer.rejection, Some(Rejection::Store(_))));
    }
    assert_eq!(harness.calls(), 1);

    server.restart().await;
    until_processed(&harness, &during, Duration::from_secs(30)).await;
    let repeat = harness.send(&during).await;
    assert_eq!((repeat.status, repeat.duplicate), (StatusCode::OK, true));
    let before = harness.send(&before).await;
    assert_eq!((before.status, before.duplicate), (StatusCode::OK, true));
    assert_eq!(harness.calls(), 2);
}

/// A stall is not an outage: the server frozen (SIGSTOP) while a delivery arrives answers 503
/// after the timeout, but the claim is in its connection and runs when the server is thawed.
/// The layer hands such a claim back, and the store releases it once it has landed: the
/// provider's next retry is processed (not refused 409 for the whole lease), once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stall_leaves_no_claim_behind() {
    let Some(server) = Server::require("pg_dedupe_stall").await else {
        return;
    };
    let postgres = Postgres::builder(&server.url())
        .unwrap()
        .timeout(Duration::from_secs(1))
        .open()
        .await
        .unwrap();
    let harness = Harness::new(DedupeLayer::<videonest::Event, _>::new(PostgresStore::new(
        &postgres,
    )));
    // Connections and statements are ready before the stall.
    assert_eq!(
        harness.send(&vn_event("vid_warm_up")).await.status,
        StatusCode::OK
    );

    let body = vn_event("vid_stalled");
    server.freeze();
    let stalled = harness.send(&body).await;
    assert_eq!(
        stalled.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{stalled:?}"
    );
    assert!(matches!(stalled.rejection, Some(Rejection::Store(_))));
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.thaw();

    // The lease is 5 minutes: a claim left behind would refuse every retry long past this.
    let refusals = until_processed(&harness, &body, Duration::from_secs(20)).await;
    assert_eq!(harness.calls(), 2, "warm-up, then the retry: {refusals:?}");
    let repeat = harness.send(&body).await;
    assert_eq!((repeat.status, repeat.duplicate), (StatusCode::OK, true));
    assert_eq!(harness.calls(), 2);
}

/// The effects table of the exactly-once tests.
async fn effects(db: &Database) -> tokio_postgres::Client {
    let client = db.client().await;
    client
        .batch_execute(&format!(
            "CREATE TABLE \"{}\".effects (video text, n serial PRIMARY KEY)",
            db.schema
        ))
        .await
        .unwrap();
    client
}

async fn effect_count(client: &tokio_postgres::Client, db: &Database) -> i64 {
    client
        .query_one(
            &format!("SELECT count(*) FROM \"{}\".effects", db.schema),
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// A handler behind the layers that writes its effect and marks its claim done in one
/// transaction; when `crash` is set it returns an error instead of committing (its connection
/// rolls the transaction back), as a process that died before its commit.
fn exactly_once_service(
    store: PostgresStore,
    schema: String,
    runs: Arc<AtomicUsize>,
    crash: Arc<std::sync::atomic::AtomicBool>,
) -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    ServiceBuilder::new()
        .layer(videonest::layer([SECRET]).unwrap())
        .layer(DedupeLayer::<videonest::Event, _>::new(store.clone()))
        .service(service_fn(move |request: Request<Full<Bytes>>| {
            let (store, schema, runs, crash) = (
                store.clone(),
                schema.clone(),
                Arc::clone(&runs),
                Arc::clone(&crash),
            );
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                let key = request.extensions().get::<DedupeKey>().unwrap().clone();
                let result: Result<(), Box<dyn std::error::Error + Send + Sync>> = async {
                    let mut client = store.database().pool().get().await?;
                    let transaction = client.transaction().await?;
                    transaction
                        .execute(
                            &format!("INSERT INTO \"{schema}\".effects (video) VALUES ($1)"),
                            &[&key.as_str()],
                        )
                        .await?;
                    store.complete_in(&transaction, &key).await?;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if crash.load(Ordering::SeqCst) {
                        return Err("crashed before the commit".into());
                    }
                    transaction.commit().await?;
                    Ok(())
                }
                .await;
                let mut response = Response::new(Full::new(Bytes::new()));
                if result.is_err() {
                    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                }
                Ok::<_, Infallible>(response)
            }
        }))
}

/// 64 concurrent deliveries of one event across two replicas (two pools): one handler run, one
/// effect row. A handler that fails after writing its effect and marking the record done, but
/// before committing, leaves neither: the retry is processed, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effects_commit_with_the_record_exactly_once() {
    let Some((db, one)) = store("pg_dedupe_exactly_once").await else {
        return;
    };
    let reader = effects(&db).await;
    let two = PostgresStore::new(&db.open().await);
    let runs = Arc::new(AtomicUsize::new(0));
    let crash = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let services = [
        exactly_once_service(
            one,
            db.schema.clone(),
            Arc::clone(&runs),
            Arc::clone(&crash),
        ),
        exactly_once_service(
            two,
            db.schema.clone(),
            Arc::clone(&runs),
            Arc::clone(&crash),
        ),
    ];
    let send = |n: usize, body: String| {
        let service = services[n % 2].clone();
        async move {
            let request = videonest::signed_request(SECRET, body).unwrap();
            answer(service.oneshot(request).await.unwrap()).await
        }
    };

    let body = vn_event("vid_once");
    let answers = futures_util::future::join_all((0..64).map(|n| send(n, body.clone()))).await;
    let processed = answers
        .iter()
        .filter(|a| a.status == StatusCode::OK && !a.duplicate)
        .count();
    assert_eq!(processed, 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|a| matches!(a.status, StatusCode::OK | StatusCode::CONFLICT))
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(effect_count(&reader, &db).await, 1);

    // Crashed before the commit: no effect, no record; the retry is processed.
    crash.store(true, Ordering::SeqCst);
    let crashed = vn_event("vid_crashed");
    assert_eq!(
        send(0, crashed.clone()).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(effect_count(&reader, &db).await, 1);
    crash.store(false, Ordering::SeqCst);
    let retry = send(1, crashed.clone()).await;
    assert_eq!((retry.status, retry.duplicate), (StatusCode::OK, false));
    let repeat = send(0, crashed).await;
    assert_eq!((repeat.status, repeat.duplicate), (StatusCode::OK, true));
    assert_eq!(effect_count(&reader, &db).await, 2);
    assert_eq!(runs.load(Ordering::SeqCst), 3);
}

/// A claim whose lease ran out and was taken by another delivery cannot be completed in the
/// late delivery's transaction: `complete_in` refuses with `ClaimLost`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_claim_is_not_completed_in_a_transaction() {
    let Some((_db, store)) = store("pg_dedupe_claim_lost").await else {
        return;
    };
    let (keys, mut key) = tokio::sync::mpsc::unbounded_channel();
    let (results, mut result) = tokio::sync::mpsc::unbounded_channel();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let service = {
        let (store, gate) = (store.clone(), Arc::clone(&gate));
        ServiceBuilder::new()
            .layer(videonest::layer([SECRET]).unwrap())
            .layer(
                DedupeLayer::<videonest::Event, _>::new(store.clone())
                    .lease(Duration::from_millis(100)),
            )
            .service(service_fn(move |request: Request<Full<Bytes>>| {
                let (store, gate, keys, results) = (
                    store.clone(),
                    Arc::clone(&gate),
                    keys.clone(),
                    results.clone(),
                );
                async move {
                    let key = request.extensions().get::<DedupeKey>().unwrap().clone();
                    keys.send(key.as_str().to_owned()).ok();
                    // A slow handler: its lease runs out meanwhile.
                    gate.acquire().await.unwrap().forget();
                    let mut client = store.database().pool().get().await.unwrap();
                    let transaction = client.transaction().await.unwrap();
                    results
                        .send(store.complete_in(&transaction, &key).await)
                        .ok();
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                }
            }))
    };
    let request = videonest::signed_request(SECRET, vn_event("vid_late")).unwrap();
    let slow = tokio::spawn(service.oneshot(request));
    let key = key.recv().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        store
            .claim(&key, &Token::random(), Duration::from_secs(60))
            .await
            .unwrap(),
        Claim::Acquired,
        "another delivery took the key after the lease"
    );
    gate.add_permits(1);
    assert!(matches!(
        result.recv().await.unwrap(),
        Err(StoreError::ClaimLost)
    ));
    slow.await.unwrap().unwrap();
}

/// Expired records are deleted as claims go on (at most every second, in the background), and
/// so are the records of deduplicated pushes: the table does not grow with every key ever seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_records_are_swept_as_claims_go_on() {
    let Some((db, store)) = store("pg_dedupe_sweep").await else {
        return;
    };
    let client = db.client().await;
    let records = || async {
        client
            .query_one(
                &format!("SELECT count(*) FROM \"{}\".dedupe", db.schema),
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    for n in 0..50 {
        let key = format!("short-{n}");
        assert_eq!(
            store
                .claim(&key, &Token::random(), Duration::from_millis(50))
                .await
                .unwrap(),
            Claim::Acquired
        );
    }
    assert_eq!(records().await, 50);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let token = Token::random();
    assert_eq!(
        store
            .claim("kept", &token, Duration::from_secs(60))
            .await
            .unwrap(),
        Claim::Acquired
    );
    crate::common::guard("the sweep", async {
        while records().await > 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(
        store
            .claim("kept", &Token::random(), Duration::from_secs(60))
            .await
            .unwrap(),
        Claim::InFlight,
        "the live record stays"
    );
}
