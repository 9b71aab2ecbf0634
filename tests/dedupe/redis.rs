//! The deduplication layer against a real Redis server: every semantic of `suite.rs`, an outage
//! (the server stopped mid-test and started again), and the round trips per request.
//!
//! Where the server comes from:
//! - `TOWER_WEBHOOK_REDIS_URL` (such as `redis://127.0.0.1:6379`), which `.ci/run` sets. Each test
//!   writes under a key prefix of its own, so tests running in parallel, and earlier runs, do not
//!   meet.
//! - Without it (or when it cannot be reached), a private `redis-server` started by the test on a
//!   free port of 127.0.0.1, without persistence, stopped when the test ends; when there is no
//!   `redis-server` either, the test says so and passes without running.
//! - With `CI=true`, a missing or unreachable server fails the tests: CI must not skip them.
//!
//! The outage and round-trip tests always start a private server, since they stop it or count
//! everything it is sent.

use std::time::{Duration, Instant};

use http::StatusCode;
use tower::ServiceExt;
use tower_webhook::{
    Rejection,
    dedupe::{
        DedupeLayer,
        store::{Claim, RedisStore, Store, StoreError, Token},
    },
    provider::videonest,
};

use crate::{
    common::{
        SECRET,
        redis::{Monitor, Server, URL_VAR, describe, free_port, in_ci},
    },
    suite::{self, Harness, answer, until_processed, vn_event},
};

/// A Redis server for one test, and a key prefix no other test uses.
struct Redis {
    url: String,
    prefix: String,
    _server: Option<Server>,
}

impl Redis {
    /// The server of `TOWER_WEBHOOK_REDIS_URL`, else a private one; `None`, after saying why,
    /// when there is neither (never with `CI=true`: then it fails).
    async fn get(test: &str) -> Option<Self> {
        let prefix = format!("tower-webhook-test:{test}:{}:", Token::random().as_str());
        match std::env::var(URL_VAR) {
            Ok(url) if !url.is_empty() => match RedisStore::connect(url.as_str()).await {
                Ok(_) => {
                    return Some(Self {
                        url,
                        prefix,
                        _server: None,
                    });
                }
                Err(err) if in_ci() => {
                    panic!(
                        "{test}: {URL_VAR}={url} cannot be reached, and CI=true: {}",
                        describe(&err)
                    )
                }
                Err(err) => eprintln!(
                    "{test}: {URL_VAR}={url} cannot be reached ({}); starting a private redis-server",
                    describe(&err)
                ),
            },
            _ if in_ci() => panic!(
                "{test}: CI=true but {URL_VAR} is not set: the Redis tests must not be skipped \
                 in CI (.ci/run starts Redis and sets it)"
            ),
            _ => {}
        }
        let server = Server::start(test).await?;
        Some(Self {
            url: server.url(),
            prefix,
            _server: Some(server),
        })
    }

    /// A new store (its own connection) on the server, under this test's prefix.
    async fn store(&self) -> RedisStore {
        RedisStore::connect(self.url.as_str())
            .await
            .unwrap_or_else(|err| panic!("connecting to {}: {}", self.url, describe(&err)))
            .prefix(self.prefix.as_str())
    }

    /// Deletes this test's keys.
    async fn clean_up(&self) {
        let mut connection = self.store().await.connection().clone();
        let pattern = format!("{}*", self.prefix);
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut connection)
                .await
                .unwrap();
            if !keys.is_empty() {
                redis::cmd("DEL")
                    .arg(&keys)
                    .query_async::<()>(&mut connection)
                    .await
                    .unwrap();
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
}

// The semantics of suite.rs, against Redis.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_concurrent_deliveries_run_the_handler_once() {
    let Some(redis) = Redis::get("concurrent").await else {
        return;
    };
    suite::concurrent_deliveries_run_the_handler_once(redis.store().await).await;
    redis.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_two_replicas_share_one_server() {
    let Some(redis) = Redis::get("replicas").await else {
        return;
    };
    // Two stores, two connections: two instances of a service.
    suite::two_replicas_run_the_handler_once(redis.store().await, redis.store().await).await;
    redis.clean_up().await;
}

#[tokio::test]
async fn redis_failing_handler_releases_the_claim() {
    let Some(redis) = Redis::get("failing").await else {
        return;
    };
    suite::failing_handler_releases_the_claim(redis.store().await).await;
    redis.clean_up().await;
}

#[tokio::test]
async fn redis_in_flight_repeat_gets_409_and_done_repeat_200() {
    let Some(redis) = Redis::get("in-flight").await else {
        return;
    };
    suite::in_flight_and_done_repeats(redis.store().await).await;
    redis.clean_up().await;
}

#[tokio::test]
async fn redis_expired_lease_is_reclaimable() {
    let Some(redis) = Redis::get("lease").await else {
        return;
    };
    suite::expired_lease_is_reclaimable(redis.store().await).await;
    redis.clean_up().await;
}

#[tokio::test]
async fn redis_dropped_handler_releases_the_claim() {
    let Some(redis) = Redis::get("dropped").await else {
        return;
    };
    suite::dropped_handler_releases_the_claim(redis.store().await).await;
    redis.clean_up().await;
}

#[tokio::test]
async fn redis_namespaces_keep_routes_apart() {
    let Some(redis) = Redis::get("namespaces").await else {
        return;
    };
    suite::namespaces_keep_routes_apart(redis.store().await).await;
    redis.clean_up().await;
}

// What is stored.

#[tokio::test]
async fn redis_records_are_prefixed_and_expire_by_themselves() {
    let Some(redis) = Redis::get("records").await else {
        return;
    };
    let store = redis.store().await;
    let mut connection = store.connection().clone();
    let key = "route:event";
    let redis_key = format!("{}{key}", redis.prefix);
    let value = |connection: &mut tower_webhook::RedisConnection| {
        let mut connection = connection.clone();
        let redis_key = redis_key.clone();
        async move {
            let value: Option<String> = redis::cmd("GET")
                .arg(&redis_key)
                .query_async(&mut connection)
                .await
                .unwrap();
            let ttl: i64 = redis::cmd("PTTL")
                .arg(&redis_key)
                .query_async(&mut connection)
                .await
                .unwrap();
            (value, ttl)
        }
    };

    let token = Token::random();
    assert_eq!(
        store
            .claim(key, &token, Duration::from_secs(300))
            .await
            .unwrap(),
        Claim::Acquired
    );
    let (claimed, lease) = value(&mut connection).await;
    assert_eq!(claimed, Some(format!("v1:claim:{}", token.as_str())));
    assert!(0 < lease && lease <= 300_000, "{lease}");

    // Only the claim's own token settles it.
    store.release(key, &Token::random()).await.unwrap();
    store
        .complete(key, &Token::from_string("done"), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(value(&mut connection).await.0, claimed);

    store
        .complete(key, &token, Duration::from_secs(86_400))
        .await
        .unwrap();
    let (done, retention) = value(&mut connection).await;
    assert_eq!(done.as_deref(), Some("v1:done"));
    assert!(
        300_000 < retention && retention <= 86_400_000,
        "{retention}"
    );
    assert_eq!(
        store
            .claim(key, &Token::random(), Duration::from_secs(300))
            .await
            .unwrap(),
        Claim::Done
    );
    // A done record is not released, even by the token that completed it.
    store.release(key, &token).await.unwrap();
    assert_eq!(value(&mut connection).await.0.as_deref(), Some("v1:done"));

    // A zero lease or retention is the shortest Redis accepts (1 ms), not an error.
    let token = Token::random();
    let claim = store.claim("route:zero", &token, Duration::ZERO).await;
    assert_eq!(claim.unwrap(), Claim::Acquired, "a new key is free");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let token_again = Token::random();
    let claim = store
        .claim("route:zero", &token_again, Duration::ZERO)
        .await;
    assert_eq!(claim.unwrap(), Claim::Acquired, "the zero lease ran out");
    store
        .complete("route:zero", &token_again, Duration::ZERO)
        .await
        .unwrap();
    redis.clean_up().await;
}

// When Redis is not there.

#[tokio::test]
async fn redis_unreachable_is_a_quick_503() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    let err = RedisStore::connect(url.as_str()).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");

    // A lazy store starts without the server, and answers 503 until it is there.
    let store = RedisStore::connect_lazy(url.as_str()).unwrap();
    let harness = Harness::new(DedupeLayer::new(store));
    for _ in 0..3 {
        let answer = harness.send(&vn_event("vid_nowhere")).await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(matches!(answer.rejection, Some(Rejection::Store(_))));
    }
    assert_eq!(harness.calls(), 0);
}

#[test]
fn redis_connect_lazy_outside_a_runtime_is_an_error() {
    let err = RedisStore::connect_lazy("redis://127.0.0.1:6379").unwrap_err();
    assert!(describe(&err).contains("Tokio runtime"), "{err:?}");
}

#[tokio::test]
async fn redis_an_invalid_url_is_an_error() {
    let err = RedisStore::connect("not a url").await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let err = RedisStore::connect_lazy("not a url").unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

/// Redis stops while an event's handler runs, and that handler then fails: nothing answers 2xx
/// for that event until it is processed; every delivery meanwhile is 503 (the handler does not
/// run); once Redis is back, the provider's retry is processed exactly once, and what was done
/// before the outage is still done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_answers_503_and_the_retry_is_processed_once() {
    let Some(mut server) = Server::require("outage").await else {
        return;
    };
    let store = RedisStore::connect(server.url()).await.unwrap();
    let layer =
        || DedupeLayer::<videonest::Event, _>::new(store.clone()).lease(Duration::from_secs(1));
    let working = Harness::new(layer());
    let failing = Harness::new(layer());
    failing.fail(true);
    let gate = failing.gate();

    let before = vn_event("vid_before");
    let doomed = vn_event("vid_doomed");
    let during = vn_event("vid_during");
    let answer_of = |a: &suite::Answer| (a.status, a.duplicate);
    assert_eq!(
        answer_of(&working.send(&before).await),
        (StatusCode::OK, false)
    );

    // The doomed event's handler is running when Redis stops; then it fails.
    let first = {
        let request = videonest::signed_request(SECRET, doomed.clone()).unwrap();
        let service = failing.service();
        tokio::spawn(async move { service.oneshot(request).await })
    };
    while failing.calls() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.stop().await;
    gate.add_permits(1);
    let first = tokio::time::timeout(Duration::from_secs(20), first)
        .await
        .expect("answered in time")
        .unwrap()
        .unwrap();
    let first = answer(first).await;
    assert_eq!(
        first.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "the handler's own failure"
    );

    // While Redis is down, every delivery is refused with 503, without running the handler.
    for body in [&doomed, &before, &during, &doomed] {
        let answer = working.send(body).await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{answer:?}");
        assert!(matches!(answer.rejection, Some(Rejection::Store(_))));
    }
    assert_eq!((working.calls(), failing.calls()), (1, 1));

    server.restart().await;

    // The provider retries the doomed event: refused (503 while the store reconnects, 409 until
    // the failed attempt's release, which failed during the outage and is retried in the
    // background, lands) until it is processed, once.
    until_processed(&working, &doomed, Duration::from_secs(30)).await;
    assert_eq!(working.calls(), 2, "the retry ran the handler");
    assert_eq!(
        answer_of(&working.send(&doomed).await),
        (StatusCode::OK, true)
    );

    // What was done before the outage is still done; what was refused during it is processed.
    assert_eq!(
        answer_of(&working.send(&before).await),
        (StatusCode::OK, true)
    );
    assert_eq!(
        answer_of(&working.send(&during).await),
        (StatusCode::OK, false)
    );
    assert_eq!(
        answer_of(&working.send(&during).await),
        (StatusCode::OK, true)
    );
    assert_eq!((working.calls(), failing.calls()), (3, 1));
}

/// The target: two commands per first delivery (claim, complete), one per duplicate.
#[tokio::test]
async fn redis_round_trips_two_per_first_delivery_one_per_duplicate() {
    let Some(server) = Server::require("round-trips").await else {
        return;
    };
    let store = RedisStore::connect(server.url()).await.unwrap();
    let harness = Harness::new(DedupeLayer::new(store));
    let mut monitor = Monitor::start(&server.url()).await.unwrap();

    // The first requests load the scripts: a NOSCRIPT answer, then EVAL with the script's text
    // (which the server keeps), never SCRIPT LOAD.
    assert!(!harness.send(&vn_event("vid_warm_up")).await.duplicate);
    harness.fail(true);
    harness.send(&vn_event("vid_warm_up_failing")).await;
    harness.fail(false);
    let warm_up = monitor.commands().await;
    assert!(warm_up.contains(&"eval".to_owned()), "{warm_up:?}");
    assert!(!warm_up.contains(&"script".to_owned()), "{warm_up:?}");

    let first = harness.send(&vn_event("vid_counted")).await;
    assert_eq!((first.status, first.duplicate), (StatusCode::OK, false));
    assert_eq!(
        monitor.commands().await,
        ["evalsha", "evalsha"],
        "claim, complete"
    );

    let repeat = harness.send(&vn_event("vid_counted")).await;
    assert_eq!((repeat.status, repeat.duplicate), (StatusCode::OK, true));
    assert_eq!(monitor.commands().await, ["evalsha"], "claim");

    harness.fail(true);
    let failed = harness.send(&vn_event("vid_failing")).await;
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        monitor.commands().await,
        ["evalsha", "evalsha"],
        "claim, release"
    );
    assert_eq!(harness.calls(), 4);
}

/// A stall is not an outage: Redis frozen (SIGSTOP) while a delivery arrives answers 503 after
/// the response timeout, but the claim stays in the connection and Redis runs it when it is
/// thawed. The layer releases a claim whose call failed, so that claim is freed right after it
/// runs, and the provider's next retry is processed (not refused 409 for the whole lease), once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stall_leaves_no_claim_behind() {
    let Some(server) = Server::require("stall").await else {
        return;
    };
    let store = RedisStore::connect(server.url()).await.unwrap();
    let harness = Harness::new(DedupeLayer::<videonest::Event, _>::new(store));
    // The scripts are loaded before the stall.
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

/// Records written by version 0.1 (`tests/fixtures/redis-0.1.json`) are still read: a done
/// record is a duplicate, a claim is in flight; a record of a format this version does not know
/// is refused (503), never taken for free.
#[tokio::test]
async fn redis_records_of_0_1_are_read_and_unknown_formats_refused() {
    let Some(redis) = Redis::get("formats").await else {
        return;
    };
    let store = redis.store().await;
    let fixture = crate::common::fixture("redis-0.1.json");
    let mut connection = store.connection().clone();
    let mut write = async |key: &str, value: &str| {
        let key = format!("{}{key}", store.key_prefix());
        crate::common::redis::set_for_a_minute(&mut connection, &key, value).await;
    };
    write("old:done", fixture["records"]["done"].as_str().unwrap()).await;
    write("old:claim", fixture["records"]["claim"].as_str().unwrap()).await;
    write("later:record", "v9:whatever a later version keeps").await;

    let claim = |key: &'static str| {
        let store = store.clone();
        async move {
            store
                .claim(key, &Token::random(), Duration::from_secs(60))
                .await
        }
    };
    assert_eq!(claim("old:done").await.unwrap(), Claim::Done);
    assert_eq!(claim("old:claim").await.unwrap(), Claim::InFlight);
    let later = claim("later:record").await;
    assert!(matches!(later, Err(StoreError::UnknownFormat)), "{later:?}");
    assert!(later.unwrap_err().to_string().contains("later version"));

    // Through the layer: a 503 that says why, and the handler does not run.
    let harness = Harness::new(
        DedupeLayer::<videonest::Event, _>::with_key(store.clone(), |_| Some("x".into()))
            .namespace("later:record-ns"),
    );
    let key = tower_webhook::dedupe::store_key("later:record-ns", "x");
    write(&key, "v2:done").await;
    let answer = harness.send(&vn_event("vid_later")).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{answer:?}");
    assert!(answer.text.contains("format"), "{}", answer.text);
    assert_eq!(harness.calls(), 0);
    redis.clean_up().await;
}

/// With `fail_open`, a record of an unknown format is still never taken for free (it may say
/// "done", after a rollback): 503, and the handler does not run.
#[tokio::test]
async fn redis_fail_open_does_not_take_an_unknown_record_for_free() {
    let Some(redis) = Redis::get("unknown-fail-open").await else {
        return;
    };
    let store = redis.store().await;
    let harness = Harness::new(
        DedupeLayer::<videonest::Event, _>::with_key(store.clone(), |_| Some("x".into()))
            .namespace("later")
            .fail_open(),
    );
    let key = format!(
        "{}{}",
        store.key_prefix(),
        tower_webhook::dedupe::store_key("later", "x")
    );
    crate::common::redis::set_for_a_minute(&mut store.connection().clone(), &key, "v2:done").await;
    for _ in 0..2 {
        let answer = harness.send(&vn_event("vid_later")).await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{answer:?}");
    }
    assert_eq!(harness.calls(), 0);
    redis.clean_up().await;
}

/// Releases counted as under way are given back even when their task never runs (its runtime
/// shut down before polling it): the cap on releases under way does not fill up for good.
#[test]
fn redis_release_tasks_dropped_unpolled_do_not_use_up_the_cap() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let Some(server) = runtime.block_on(Server::require("release-cap")) else {
        return;
    };
    let store = runtime
        .block_on(RedisStore::connect(server.url()))
        .unwrap()
        .prefix("release-cap:");
    {
        // A runtime that shuts down with 10,000 releases spawned, none run.
        let dying = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _entered = dying.enter();
        for i in 0..10_000 {
            store.abandon(&format!("gone:{i}"), &Token::random());
        }
    }
    let claim = runtime.block_on(async {
        let token = Token::random();
        let lease = Duration::from_secs(300);
        assert_eq!(
            store.claim("k", &token, lease).await.unwrap(),
            Claim::Acquired
        );
        // A claim whose answer never came, handed back: released in the background.
        store.abandon("k", &token);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let claim = store.claim("k", &Token::random(), lease).await.unwrap();
            if claim != Claim::InFlight || Instant::now() > deadline {
                break claim;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    assert_eq!(
        claim,
        Claim::Acquired,
        "the release was refused: the cap leaked"
    );
}

/// The semantics of suite.rs on a private Redis Cluster (three masters, a replica each): each
/// record is one key, on whichever node holds its slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_passes_the_suite() {
    let Some(cluster) = crate::common::redis::Cluster::require("dedupe-cluster", 3).await else {
        return;
    };
    assert!(
        RedisStore::open(&cluster.url())
            .unwrap()
            .connection()
            .is_cluster()
    );
    the_suite_at(&cluster.url()).await;
}

/// Every semantic of suite.rs, each on stores opened from `url` under a prefix of its own.
async fn the_suite_at(url: &str) {
    let store_under = |prefix: &str| {
        RedisStore::open(url)
            .unwrap_or_else(|err| panic!("{url}: {}", describe(&err)))
            .prefix(prefix)
    };
    let store = || store_under(&format!("tower-webhook-test:{}:", Token::random().as_str()));
    suite::concurrent_deliveries_run_the_handler_once(store()).await;
    // Two replicas of a service: two connections, one prefix.
    let prefix = format!("tower-webhook-test:{}:", Token::random().as_str());
    suite::two_replicas_run_the_handler_once(store_under(&prefix), store_under(&prefix)).await;
    suite::failing_handler_releases_the_claim(store()).await;
    suite::in_flight_and_done_repeats(store()).await;
    suite::expired_lease_is_reclaimable(store()).await;
    suite::dropped_handler_releases_the_claim(store()).await;
    suite::namespaces_keep_routes_apart(store()).await;
}

/// The semantics of suite.rs through Redis Sentinel (a master, its replica, three Sentinels).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sentinel_passes_the_suite() {
    let Some(sentinels) = crate::common::redis::Sentinels::require("dedupe-sentinel").await else {
        return;
    };
    the_suite_at(&sentinels.url()).await;
}

/// `rediss://`: the server's certificate is verified. By the URL alone (the system's roots,
/// which do not hold the test CA) the server is refused: 503, the handler not run. Through a
/// `ConnectionManager` that trusts the test CA, the suite's semantics hold over TLS.
#[cfg(feature = "redis-tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_over_tls_verifies_the_server_and_keeps_the_semantics() {
    let Some(server) = crate::common::redis::TlsServer::require("tls").await else {
        return;
    };
    let untrusted = RedisStore::open(&server.url()).expect("a rediss:// URL");
    let harness = Harness::new(DedupeLayer::new(untrusted));
    let answer = harness.send(&vn_event("vid_untrusted")).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(matches!(answer.rejection, Some(Rejection::Store(_))));
    assert_eq!(harness.calls(), 0);

    let certificates = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(crate::common::redis::TlsServer::ca()),
    };
    let client = redis::Client::build_with_tls(server.url(), certificates).expect("the test CA");
    let store = || async {
        let connection =
            redis::aio::ConnectionManager::new_with_config(client.clone(), RedisStore::config())
                .await
                .expect("a TLS connection verified by the test CA");
        RedisStore::new(connection)
            .prefix(format!("tower-webhook-test:{}:", Token::random().as_str()))
    };
    suite::concurrent_deliveries_run_the_handler_once(store().await).await;
    suite::in_flight_and_done_repeats(store().await).await;
    suite::failing_handler_releases_the_claim(store().await).await;
}

/// `redis+unix://`: a server on a Unix socket, reached by the URL alone, passes the suite.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_over_a_unix_socket_keeps_the_semantics() {
    let socket = std::env::temp_dir().join(format!("tw-{}.sock", Token::random().as_str()));
    let socket_arg = socket.display().to_string();
    let Some(_server) =
        Server::require_with_args("unix-socket", &["--unixsocket", &socket_arg]).await
    else {
        return;
    };
    the_suite_at(&format!("redis+unix://{socket_arg}")).await;
    let _ = std::fs::remove_file(&socket);
}
