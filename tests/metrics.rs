//! What the layers and the workers report to the `metrics` facade, read back through
//! `metrics-util`'s debugging recorder: counts that match the traffic sent, by provider,
//! outcome and reason, and histograms with one value per request or attempt.
#![cfg(all(feature = "metrics", feature = "queue"))]

mod common;

use std::{
    collections::HashMap,
    convert::Infallible,
    time::{Duration, Instant},
};

use bytes::Bytes;
use common::SECRET;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tower::{ServiceBuilder, ServiceExt, service_fn, util::BoxCloneSyncService};
use tower_webhook::{
    dedupe::{DedupeLayer, store::MemoryStore},
    metrics as names,
    provider::videonest,
    queue::{Backoff, Delivery, Enqueue, MemoryQueue, Worker},
};

type Http = BoxCloneSyncService<Request<Full<Bytes>>, Response<Full<Bytes>>, Infallible>;

/// Everything recorded so far, summed over snapshots (a snapshot resets what it reads).
#[derive(Default)]
struct Recorded {
    counters: HashMap<String, u64>,
    histograms: HashMap<String, Vec<f64>>,
    /// The gauges set since the last read.
    gauges: HashMap<String, f64>,
}

/// `name{label=value,…}` with the labels sorted, as the tests name a series.
fn series(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}

impl Recorded {
    fn read(&mut self, snapshotter: &Snapshotter) {
        self.gauges.clear();
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            let key = key.key();
            let labels: Vec<(&str, &str)> = key
                .labels()
                .map(|label| (label.key(), label.value()))
                .collect();
            let series = series(key.name(), &labels);
            match value {
                DebugValue::Counter(n) => *self.counters.entry(series).or_default() += n,
                DebugValue::Histogram(values) => self
                    .histograms
                    .entry(series)
                    .or_default()
                    .extend(values.into_iter().map(f64::from)),
                DebugValue::Gauge(value) => {
                    self.gauges.insert(series, value.into_inner());
                }
            }
        }
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.counters
            .get(&series(name, labels))
            .copied()
            .unwrap_or(0)
    }

    fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> &[f64] {
        self.histograms
            .get(&series(name, labels))
            .map_or(&[], Vec::as_slice)
    }

    /// The counter series named `name`, whatever their labels.
    fn series_of(&self, name: &str) -> Vec<&str> {
        let mut found: Vec<&str> = self
            .counters
            .keys()
            .filter(|series| series.starts_with(&format!("{name}{{")))
            .map(String::as_str)
            .collect();
        found.sort_unstable();
        found
    }
}

fn event(id: &str) -> String {
    format!(r#"{{"event":"video.processed","timestamp":"t","data":{{"id":"{id}"}}}}"#)
}

async fn post(http: &Http, request: Request<Full<Bytes>>) -> StatusCode {
    http.clone().oneshot(request).await.unwrap().status()
}

fn signed(secret: &str, body: &str) -> Request<Full<Bytes>> {
    videonest::signed_request(secret, body.to_owned()).unwrap()
}

const PROVIDER: (&str, &str) = (names::PROVIDER, "videonest");

#[tokio::test]
async fn the_verifying_and_deduplicating_layers_count_what_they_did() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let http: Http = BoxCloneSyncService::new(
        ServiceBuilder::new()
            .layer(videonest::layer([SECRET]).unwrap())
            .layer(DedupeLayer::<videonest::Event, _>::new(MemoryStore::new()))
            .service(service_fn(|_: Request<Full<Bytes>>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
            })),
    );
    for id in ["a", "b", "c", "a"] {
        assert_eq!(
            post(&http, signed(SECRET, &event(id))).await,
            StatusCode::OK
        );
    }
    for id in ["d", "e"] {
        let forged = signed("another secret", &event(id));
        assert_eq!(post(&http, forged).await, StatusCode::UNAUTHORIZED);
    }
    let mut unsigned = signed(SECRET, &event("f"));
    unsigned.headers_mut().clear();
    assert_eq!(post(&http, unsigned).await, StatusCode::UNAUTHORIZED);
    let not_an_event = signed(SECRET, "{\"event\":");
    assert_eq!(post(&http, not_an_event).await, StatusCode::BAD_REQUEST);

    let mut recorded = Recorded::default();
    recorded.read(&snapshotter);
    let verified = [PROVIDER, (names::OUTCOME, names::VERIFIED)];
    let refused = |reason| {
        [
            PROVIDER,
            (names::OUTCOME, names::REFUSED),
            (names::REASON, reason),
        ]
    };
    assert_eq!(recorded.counter(names::REQUESTS, &verified), 4);
    assert_eq!(
        recorded.counter(names::REQUESTS, &refused("signature_mismatch")),
        2
    );
    assert_eq!(
        recorded.counter(names::REQUESTS, &refused("missing_signature")),
        1
    );
    assert_eq!(
        recorded.counter(names::REQUESTS, &refused("invalid_event")),
        1
    );
    assert_eq!(
        recorded.series_of(names::REQUESTS).len(),
        4,
        "no other series: {:?}",
        recorded.series_of(names::REQUESTS)
    );
    let dedupe = |outcome| [PROVIDER, (names::OUTCOME, outcome)];
    assert_eq!(recorded.counter(names::DEDUPE, &dedupe(names::FIRST)), 3);
    assert_eq!(
        recorded.counter(names::DEDUPE, &dedupe(names::DUPLICATE)),
        1
    );
    assert_eq!(recorded.series_of(names::DEDUPE).len(), 2);
    let values = recorded.histogram(names::VERIFY_SECONDS, &[PROVIDER]);
    assert_eq!(values.len(), 4, "one value per verified request");
    assert!(
        values.iter().all(|&s| (0.0..10.0).contains(&s)),
        "seconds: {values:?}"
    );
    assert!(
        recorded
            .histogram(names::HANDLER_SECONDS, &[PROVIDER])
            .is_empty(),
        "handler time is a worker's"
    );
}

#[tokio::test]
async fn enqueue_and_workers_count_what_they_did_and_the_queue_gauges_follow() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let queue = MemoryQueue::new(100);
    let http: Http = BoxCloneSyncService::new(
        ServiceBuilder::new()
            .layer(videonest::layer([SECRET]).unwrap())
            .service(Enqueue::<videonest::Event, _>::new(queue.clone()).deduplicate()),
    );
    for id in ["a", "b", "poison", "a"] {
        assert_eq!(
            post(&http, signed(SECRET, &event(id))).await,
            StatusCode::OK
        );
    }
    let handler = service_fn(|delivery: Delivery<videonest::Event>| async move {
        match delivery.event().id() {
            Some("poison") => Err("poisoned".to_owned()),
            _ => Ok(()),
        }
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(
        Worker::new(queue.clone(), handler)
            .max_attempts(2)
            .backoff(Backoff::exponential(
                Duration::from_millis(1),
                Duration::from_millis(1),
            ))
            .stats_interval(Duration::from_millis(10))
            .run(async {
                stopped.await.ok();
            }),
    );

    // The gauges say the work is done: nothing left but the dead letter.
    let mut recorded = Recorded::default();
    let deadline = Instant::now() + Duration::from_secs(20);
    let state = |state| series(names::QUEUE_MESSAGES, &[(names::STATE, state)]);
    loop {
        recorded.read(&snapshotter);
        let gauges = &recorded.gauges;
        if gauges.get(&state("dead")) == Some(&1.0)
            && ["ready", "pending", "delayed"]
                .iter()
                .all(|s| gauges.get(&state(s)) == Some(&0.0))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "gauges never showed one dead letter: {gauges:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();
    recorded.read(&snapshotter);

    let outcome = |outcome| [PROVIDER, (names::OUTCOME, outcome)];
    assert_eq!(
        recorded.counter(names::ENQUEUED, &outcome(names::STORED)),
        3
    );
    assert_eq!(
        recorded.counter(names::ENQUEUED, &outcome(names::DUPLICATE)),
        1
    );
    assert_eq!(recorded.series_of(names::ENQUEUED).len(), 2);
    assert_eq!(
        recorded.counter(names::DELIVERIES, &outcome(names::PROCESSED)),
        2
    );
    assert_eq!(
        recorded.counter(names::DELIVERIES, &outcome(names::RETRIED)),
        1
    );
    assert_eq!(
        recorded.counter(names::DELIVERIES, &outcome(names::DEAD_LETTERED)),
        1
    );
    assert_eq!(recorded.series_of(names::DELIVERIES).len(), 3);
    assert_eq!(
        recorded
            .histogram(names::HANDLER_SECONDS, &[PROVIDER])
            .len(),
        4,
        "one value per attempt"
    );
    let lag = recorded.histogram(names::QUEUE_LAG_SECONDS, &[PROVIDER]);
    assert_eq!(lag.len(), 2, "one value per processed delivery");
    assert!(lag.iter().all(|&s| (0.0..20.0).contains(&s)), "{lag:?}");
}
