//! The deduplication semantics, written once for any store.

use std::{
    convert::Infallible,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tokio::sync::Semaphore;
use tower::{ServiceBuilder, ServiceExt, util::BoxCloneSyncService};
use tower_webhook::{
    Rejection,
    dedupe::{
        DUPLICATE_HEADER, DedupeLayer,
        store::{Claim, Store, Token},
        store_key,
    },
    provider::videonest,
};

use crate::common::{SECRET, body_bytes};

/// A VideoNest `video.processed` event about `id`.
pub(crate) fn vn_event(id: &str) -> String {
    format!(
        r#"{{"event":"video.processed","timestamp":"2026-03-30T10:15:00Z","data":{{"id":"{id}","status":"ready"}}}}"#
    )
}

/// What the handler does: counts, optionally waits at a gate, then answers 200 or 500.
#[derive(Default)]
pub(crate) struct Behaviour {
    calls: AtomicUsize,
    fail: AtomicBool,
    gate: Mutex<Option<Arc<Semaphore>>>,
    delay: Mutex<Duration>,
}

type Service = BoxCloneSyncService<Request<Full<Bytes>>, Response<Full<Bytes>>, Infallible>;

/// A verifying layer, the deduplication layer under test, and a scripted handler.
pub(crate) struct Harness {
    service: Service,
    pub(crate) behaviour: Arc<Behaviour>,
}

/// What came back.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) duplicate: bool,
    pub(crate) rejection: Option<Rejection>,
    pub(crate) text: String,
}

impl Harness {
    pub(crate) fn new<St: Store>(layer: DedupeLayer<videonest::Event, St>) -> Self {
        Self::sharing(layer, Arc::default())
    }

    /// A harness whose handler shares `behaviour` (and its call count) with another one: two
    /// replicas of one service.
    pub(crate) fn sharing<St: Store>(
        layer: DedupeLayer<videonest::Event, St>,
        behaviour: Arc<Behaviour>,
    ) -> Self {
        let handler_behaviour = Arc::clone(&behaviour);
        let service = ServiceBuilder::new()
            .layer(videonest::layer([SECRET]).unwrap())
            .layer(layer)
            .service_fn(move |_request: Request<Full<Bytes>>| {
                let behaviour = Arc::clone(&handler_behaviour);
                async move {
                    behaviour.calls.fetch_add(1, Ordering::SeqCst);
                    let gate = behaviour.gate.lock().unwrap().clone();
                    if let Some(gate) = gate {
                        gate.acquire().await.unwrap().forget();
                    }
                    let delay = *behaviour.delay.lock().unwrap();
                    tokio::time::sleep(delay).await;
                    let mut response = Response::new(Full::new(Bytes::from_static(b"processed")));
                    if behaviour.fail.load(Ordering::SeqCst) {
                        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    Ok::<_, Infallible>(response)
                }
            });
        Self {
            service: BoxCloneSyncService::new(service),
            behaviour,
        }
    }

    pub(crate) fn calls(&self) -> usize {
        self.behaviour.calls.load(Ordering::SeqCst)
    }

    pub(crate) fn fail(&self, fail: bool) {
        self.behaviour.fail.store(fail, Ordering::SeqCst);
    }

    pub(crate) fn delay(&self, delay: Duration) {
        *self.behaviour.delay.lock().unwrap() = delay;
    }

    /// Makes the handler wait until the returned semaphore gets a permit.
    pub(crate) fn gate(&self) -> Arc<Semaphore> {
        let gate = Arc::new(Semaphore::new(0));
        *self.behaviour.gate.lock().unwrap() = Some(Arc::clone(&gate));
        gate
    }

    /// A clone of the service, to drive by hand.
    pub(crate) fn service(&self) -> Service {
        self.service.clone()
    }

    pub(crate) async fn send(&self, body: &str) -> Answer {
        answer(self.send_full(body).await).await
    }

    /// Sends `body`, signed, and returns the response as it is.
    pub(crate) async fn send_full(&self, body: &str) -> Response<Full<Bytes>> {
        let request = videonest::signed_request(SECRET, body.to_owned()).unwrap();
        tokio::time::timeout(Duration::from_secs(20), self.service().oneshot(request))
            .await
            .expect("answered in time")
            .unwrap_or_else(|err| match err {})
    }
}

pub(crate) async fn answer(response: Response<Full<Bytes>>) -> Answer {
    let status = response.status();
    let duplicate = response
        .headers()
        .get(DUPLICATE_HEADER)
        .is_some_and(|value| value == "true");
    let rejection = response.extensions().get::<Rejection>().cloned();
    let text = String::from_utf8_lossy(&body_bytes(response.into_body()).await).into_owned();
    Answer {
        status,
        duplicate,
        rejection,
        text,
    }
}

pub(crate) async fn concurrent_deliveries_run_the_handler_once<St: Store>(store: St) {
    let harness = Harness::new(DedupeLayer::new(store));
    harness.delay(Duration::from_millis(200));
    let harness = Arc::new(harness);
    let body = vn_event("vid_concurrent");
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let harness = Arc::clone(&harness);
            let body = body.clone();
            tokio::spawn(async move { harness.send(&body).await })
        })
        .collect();
    let mut processed = 0;
    for task in tasks {
        let answer = task.await.unwrap();
        match answer.status {
            StatusCode::OK if !answer.duplicate => processed += 1,
            StatusCode::OK | StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}: {answer:?}"),
        }
    }
    assert_eq!(processed, 1);
    assert_eq!(harness.calls(), 1);
    // Every later delivery is a duplicate.
    let repeat = harness.send(&body).await;
    assert_eq!((repeat.status, repeat.duplicate), (StatusCode::OK, true));
    assert_eq!(harness.calls(), 1);
}

pub(crate) async fn two_replicas_run_the_handler_once<St: Store>(one: St, two: St) {
    let behaviour = Arc::new(Behaviour::default());
    let replicas = [
        Harness::sharing(DedupeLayer::new(one), Arc::clone(&behaviour)),
        Harness::sharing(DedupeLayer::new(two), Arc::clone(&behaviour)),
    ];
    replicas[0].delay(Duration::from_millis(100));
    let body = vn_event("vid_replicas");
    let (a, b) = tokio::join!(replicas[0].send(&body), replicas[1].send(&body));
    let processed = [&a, &b]
        .iter()
        .filter(|answer| answer.status == StatusCode::OK && !answer.duplicate)
        .count();
    assert_eq!(processed, 1, "{a:?} {b:?}");
    for replica in &replicas {
        let repeat = replica.send(&body).await;
        assert_eq!((repeat.status, repeat.duplicate), (StatusCode::OK, true));
    }
    assert_eq!(
        replicas[0].calls(),
        1,
        "the handler ran once across both replicas"
    );
}

pub(crate) async fn failing_handler_releases_the_claim<St: Store>(store: St) {
    let harness = Harness::new(DedupeLayer::new(store));
    let body = vn_event("vid_failing");
    harness.fail(true);
    let first = harness.send(&body).await;
    assert_eq!(first.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(first.rejection.is_none(), "the handler's own answer");
    // The provider retries; this time the handler succeeds, and only then is the key done.
    harness.fail(false);
    let retry = harness.send(&body).await;
    assert_eq!((retry.status, retry.duplicate), (StatusCode::OK, false));
    assert_eq!(harness.calls(), 2);
    let repeat = harness.send(&body).await;
    assert_eq!((repeat.status, repeat.duplicate), (StatusCode::OK, true));
    assert_eq!(harness.calls(), 2);
}

pub(crate) async fn in_flight_and_done_repeats<St: Store>(store: St) {
    let harness = Harness::new(DedupeLayer::new(store));
    let gate = harness.gate();
    let body = vn_event("vid_in_flight");
    let first = {
        let service = harness.service();
        let request = videonest::signed_request(SECRET, body.clone()).unwrap();
        tokio::spawn(async move { service.oneshot(request).await })
    };
    // Wait until the first delivery is inside the handler.
    while harness.calls() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let repeat = harness.send(&body).await;
    assert_eq!(repeat.status, StatusCode::CONFLICT);
    assert!(matches!(repeat.rejection, Some(Rejection::InFlight)));
    assert!(!repeat.duplicate);

    gate.add_permits(1);
    let first = answer(first.await.unwrap().unwrap()).await;
    assert_eq!((first.status, first.duplicate), (StatusCode::OK, false));

    let done = harness.send(&body).await;
    assert_eq!((done.status, done.duplicate), (StatusCode::OK, true));
    assert!(matches!(done.rejection, Some(Rejection::Duplicate)));
    assert_eq!(harness.calls(), 1);
}

pub(crate) async fn expired_lease_is_reclaimable<St: Store + Clone>(store: St) {
    // A delivery claimed the key and its process died: nobody completes or releases the claim.
    let key = store_key(
        "videonest",
        r#"["video.processed","vid_dead",null,"2026-03-30T10:15:00Z"]"#,
    );
    let claim = store
        .claim(&key, &Token::random(), Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(claim, Claim::Acquired);

    let harness = Harness::new(DedupeLayer::new(store));
    let body = vn_event("vid_dead");
    assert_eq!(harness.send(&body).await.status, StatusCode::CONFLICT);
    assert_eq!(harness.calls(), 0);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let retry = harness.send(&body).await;
    assert_eq!((retry.status, retry.duplicate), (StatusCode::OK, false));
    assert_eq!(harness.calls(), 1);
}

pub(crate) async fn dropped_handler_releases_the_claim<St: Store>(store: St) {
    let harness = Harness::new(DedupeLayer::new(store));
    let gate = harness.gate();
    let body = vn_event("vid_dropped");
    // The client goes away while the handler runs: the future is dropped mid-handler.
    let request = videonest::signed_request(SECRET, body.clone()).unwrap();
    let cut = tokio::time::timeout(
        Duration::from_millis(100),
        harness.service().oneshot(request),
    )
    .await;
    assert!(cut.is_err(), "the handler was still waiting");
    assert_eq!(harness.calls(), 1);
    gate.add_permits(100);
    // The claim was handed back (at once, or as soon as the store got the release).
    let mut retry = harness.send(&body).await;
    for _ in 0..50 {
        if retry.status != StatusCode::CONFLICT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        retry = harness.send(&body).await;
    }
    assert_eq!((retry.status, retry.duplicate), (StatusCode::OK, false));
    assert_eq!(harness.calls(), 2);
}

pub(crate) async fn namespaces_keep_routes_apart<St: Store + Clone>(store: St) {
    let body = vn_event("vid_routes");
    let a = Harness::new(DedupeLayer::new(store.clone()).namespace("route-a"));
    let b = Harness::new(DedupeLayer::new(store.clone()).namespace("route-b"));
    assert!(!a.send(&body).await.duplicate);
    assert!(!b.send(&body).await.duplicate);
    assert!(a.send(&body).await.duplicate);
    assert_eq!((a.calls(), b.calls()), (1, 1));
}

/// The deduplication layer alone, without a verifying layer in front of it.
pub(crate) async fn without_verification<St: Store>(store: St) -> Answer {
    let calls = Arc::new(AtomicUsize::new(0));
    let handler_calls = Arc::clone(&calls);
    let service = ServiceBuilder::new()
        .layer(DedupeLayer::<videonest::Event, _>::new(store))
        .service_fn(move |_request: Request<Full<Bytes>>| {
            handler_calls.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))) }
        });
    let request = videonest::signed_request(SECRET, vn_event("vid_x")).unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    answer(response).await
}

/// Sends `body` until it is processed (a 2xx that is not a duplicate), accepting only 503 and
/// 409 before that; fails after `patience`. Returns the refusals seen on the way.
pub(crate) async fn until_processed(
    harness: &Harness,
    body: &str,
    patience: Duration,
) -> Vec<StatusCode> {
    let deadline = Instant::now() + patience;
    let mut refusals = Vec::new();
    loop {
        let answer = harness.send(body).await;
        if answer.status.is_success() {
            assert!(!answer.duplicate, "{answer:?} after {refusals:?}");
            return refusals;
        }
        assert!(
            matches!(
                answer.status,
                StatusCode::SERVICE_UNAVAILABLE | StatusCode::CONFLICT
            ),
            "{answer:?}"
        );
        refusals.push(answer.status);
        if Instant::now() > deadline {
            let conflicts = refusals
                .iter()
                .filter(|s| **s == StatusCode::CONFLICT)
                .count();
            panic!(
                "still refused after {patience:?}: {} times, {conflicts} of them 409",
                refusals.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
