//! The deduplication layer, against every store: the in-memory one always, Redis when the
//! `redis` feature is on (see `redis.rs`).

#[path = "../common/mod.rs"]
mod common;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sqlite")]
mod sqlite;
mod suite;

use std::{
    future::{Ready, ready},
    time::Duration,
};

use http::StatusCode;
use tower::Service as _;
use tower_webhook::{
    Rejection, Verified,
    dedupe::{
        DedupeLayer,
        store::{Claim, MemoryStore, Store, StoreError, Token},
    },
    provider::videonest,
};

use suite::{Harness, vn_event};

#[tokio::test]
async fn memory_concurrent_deliveries_run_the_handler_once() {
    suite::concurrent_deliveries_run_the_handler_once(MemoryStore::new()).await;
}

#[tokio::test]
async fn memory_two_replicas_share_one_store() {
    let store = MemoryStore::new();
    suite::two_replicas_run_the_handler_once(store.clone(), store).await;
}

#[tokio::test]
async fn memory_failing_handler_releases_the_claim() {
    suite::failing_handler_releases_the_claim(MemoryStore::new()).await;
}

#[tokio::test]
async fn memory_in_flight_repeat_gets_409_and_done_repeat_200() {
    suite::in_flight_and_done_repeats(MemoryStore::new()).await;
}

#[tokio::test]
async fn memory_expired_lease_is_reclaimable() {
    suite::expired_lease_is_reclaimable(MemoryStore::new()).await;
}

#[tokio::test]
async fn memory_dropped_handler_releases_the_claim() {
    suite::dropped_handler_releases_the_claim(MemoryStore::new()).await;
}

#[tokio::test]
async fn memory_namespaces_keep_routes_apart() {
    suite::namespaces_keep_routes_apart(MemoryStore::new()).await;
}

/// A store that is always down, as a user's own `Store` implementation.
#[derive(Debug, Clone, Copy)]
struct Down;

impl Store for Down {
    type ClaimFuture = Ready<Result<Claim, StoreError>>;
    type SettleFuture = Ready<Result<(), StoreError>>;

    fn claim(&self, _key: &str, _token: &Token, _lease: Duration) -> Self::ClaimFuture {
        ready(Err(StoreError::unavailable("connection refused")))
    }

    fn complete(&self, _key: &str, _token: &Token, _retention: Duration) -> Self::SettleFuture {
        ready(Err(StoreError::unavailable("connection refused")))
    }

    fn release(&self, _key: &str, _token: &Token) -> Self::SettleFuture {
        ready(Err(StoreError::unavailable("connection refused")))
    }
}

#[tokio::test]
async fn an_unavailable_store_fails_closed_by_default_and_open_when_asked() {
    let closed = Harness::new(DedupeLayer::<videonest::Event, _>::new(Down));
    let response = closed.send(&vn_event("vid_1")).await;
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(matches!(response.rejection, Some(Rejection::Store(_))));
    assert!(response.text.contains("unavailable"), "{}", response.text);
    assert_eq!(closed.calls(), 0);

    let open = Harness::new(DedupeLayer::<videonest::Event, _>::new(Down).fail_open());
    for _ in 0..2 {
        assert_eq!(open.send(&vn_event("vid_1")).await.status, StatusCode::OK);
    }
    assert_eq!(
        open.calls(),
        2,
        "fail-open runs the handler, duplicates included"
    );
}

/// The in-memory store, except that marking a key done fails.
#[derive(Debug, Clone, Default)]
struct CompleteFails(MemoryStore);

impl Store for CompleteFails {
    type ClaimFuture = <MemoryStore as Store>::ClaimFuture;
    type SettleFuture = Ready<Result<(), StoreError>>;

    fn claim(&self, key: &str, token: &Token, lease: Duration) -> Self::ClaimFuture {
        self.0.claim(key, token, lease)
    }

    fn complete(&self, _key: &str, _token: &Token, _retention: Duration) -> Self::SettleFuture {
        ready(Err(StoreError::unavailable("timed out")))
    }

    fn release(&self, key: &str, token: &Token) -> Self::SettleFuture {
        self.0.release(key, token)
    }
}

#[tokio::test]
async fn a_store_that_fails_to_mark_done_keeps_the_answer_and_says_so() {
    let harness = Harness::new(
        DedupeLayer::<videonest::Event, _>::new(CompleteFails::default())
            .lease(Duration::from_millis(100)),
    );
    let body = vn_event("vid_1");
    let response = harness.send_full(&body).await;
    assert_eq!(response.status(), StatusCode::OK, "the event was processed");
    assert!(response.extensions().get::<StoreError>().is_some());
    // The claim holds until its lease runs out, then a repeat is processed again.
    assert_eq!(harness.send(&body).await.status, StatusCode::CONFLICT);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(harness.send(&body).await.status, StatusCode::OK);
    assert_eq!(harness.calls(), 2);
}

#[tokio::test]
async fn a_future_dropped_before_it_is_polled_leaves_no_claim() {
    let store = MemoryStore::new();
    let mut service = tower::ServiceBuilder::new()
        .layer(DedupeLayer::<videonest::Event, _>::new(store.clone()))
        .service_fn(|_request: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
        });
    let body = vn_event("vid_unpolled");
    let event: videonest::Event = serde_json::from_str(&body).unwrap();
    let request = || {
        let mut request = http::Request::new(());
        request
            .extensions_mut()
            .insert(Verified::new(event.clone(), body.clone()).with_provider("videonest"));
        request
    };
    let future = tower::ServiceExt::ready(&mut service)
        .await
        .unwrap()
        .call(request());
    drop(future);
    assert!(store.is_empty(), "a claim was left behind");
    let response = tower::ServiceExt::ready(&mut service)
        .await
        .unwrap()
        .call(request())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn events_without_a_key_are_processed_every_time() {
    let harness = Harness::new(DedupeLayer::<videonest::Event, _>::new(MemoryStore::new()));
    let body = r#"{"event":"video.processed","data":{"status":"ready"}}"#;
    for _ in 0..3 {
        assert_eq!(harness.send(body).await.status, StatusCode::OK);
    }
    assert_eq!(harness.calls(), 3);
}

#[tokio::test]
async fn a_custom_key_function_decides_what_is_a_repeat() {
    // One key per video, whatever the event type.
    let layer = DedupeLayer::<videonest::Event, _>::with_key(MemoryStore::new(), |verified| {
        verified.id().map(str::to_owned)
    });
    let harness = Harness::new(layer);
    let published = r#"{"event":"video.published","timestamp":"t2","data":{"id":"vid_7"}}"#;
    assert_eq!(
        harness.send(&vn_event("vid_7")).await.status,
        StatusCode::OK
    );
    let repeat = harness.send(published).await;
    assert_eq!(repeat.status, StatusCode::OK);
    assert!(repeat.duplicate);
    assert_eq!(harness.calls(), 1);
}

#[tokio::test]
async fn without_the_verifying_layer_it_is_a_500_that_says_so() {
    let response = suite::without_verification(MemoryStore::new()).await;
    assert_eq!(response.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        response.text.contains("VerifyWebhookLayer"),
        "{}",
        response.text
    );
}

/// The in-memory store, except that a release never answers (as a release waiting for a
/// reconnection): it counts the claims handed back with `abandon`.
#[derive(Clone, Default)]
struct ReleaseNeverAnswers {
    inner: MemoryStore,
    abandoned: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Store for ReleaseNeverAnswers {
    type ClaimFuture = <MemoryStore as Store>::ClaimFuture;
    type SettleFuture =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StoreError>> + Send>>;

    fn claim(&self, key: &str, token: &Token, lease: Duration) -> Self::ClaimFuture {
        self.inner.claim(key, token, lease)
    }

    fn complete(&self, key: &str, token: &Token, retention: Duration) -> Self::SettleFuture {
        Box::pin(self.inner.complete(key, token, retention))
    }

    fn release(&self, _key: &str, _token: &Token) -> Self::SettleFuture {
        Box::pin(std::future::pending())
    }

    fn abandon(&self, key: &str, token: &Token) {
        self.abandoned
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.abandon(key, token);
    }
}

/// A failed delivery whose future is dropped while its release is under way (an outer timeout,
/// a client gone) still hands its claim back: the provider's retry is processed, not refused as
/// in flight for the lease.
#[tokio::test]
async fn a_future_dropped_while_releasing_hands_the_claim_back() {
    let store = ReleaseNeverAnswers::default();
    let harness = Harness::new(DedupeLayer::<videonest::Event, _>::new(store.clone()));
    let body = vn_event("vid_dropped");
    harness.fail(true);
    let request = videonest::signed_request(crate::common::SECRET, body.clone()).unwrap();
    let first = tokio::time::timeout(
        Duration::from_millis(100),
        tower::ServiceExt::oneshot(harness.service(), request),
    )
    .await;
    assert!(first.is_err(), "dropped while the release was pending");
    assert_eq!(store.abandoned.load(std::sync::atomic::Ordering::SeqCst), 1);
    harness.fail(false);
    let retry = harness.send(&body).await;
    assert_eq!((retry.status, retry.duplicate), (StatusCode::OK, false));
    assert_eq!(harness.calls(), 2);
}
