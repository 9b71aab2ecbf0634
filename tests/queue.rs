//! The queue hand-off with the in-memory queue: acknowledged means stored, processed at least
//! once, retried with backoff, dead-lettered after its attempts, repeats enqueued once.
#![cfg(feature = "queue")]

mod common;

use std::{
    convert::Infallible,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use common::SECRET;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{ServiceBuilder, ServiceExt, service_fn, util::BoxCloneSyncService};
use tower_webhook::{
    Rejection, WebhookEvent,
    dedupe::{DUPLICATE_HEADER, DedupeLayer, store::MemoryStore, store_key},
    provider::videonest,
    queue::{
        Backoff, DeadLetterPage, Delivery, Enqueue, MemoryQueue, Message, MessageId, Page, Pull,
        Pushed, Queue, QueueError, QueueFuture, QueueStats, Select, Worker,
    },
};

type Http = BoxCloneSyncService<Request<Full<Bytes>>, Response<Full<Bytes>>, Infallible>;

/// Verify, (optionally) deduplicate, enqueue.
fn ingest(queue: &MemoryQueue, dedupe: bool) -> Http {
    let enqueue = Enqueue::<videonest::Event, _>::new(queue.clone());
    if dedupe {
        BoxCloneSyncService::new(
            ServiceBuilder::new()
                .layer(videonest::layer([SECRET]).unwrap())
                .layer(DedupeLayer::<videonest::Event, _>::new(MemoryStore::new()))
                .service(enqueue),
        )
    } else {
        BoxCloneSyncService::new(
            ServiceBuilder::new()
                .layer(videonest::layer([SECRET]).unwrap())
                .service(enqueue),
        )
    }
}

fn event(id: &str) -> String {
    format!(r#"{{"event":"video.processed","timestamp":"t","data":{{"id":"{id}"}}}}"#)
}

async fn post(http: &Http, body: &str) -> Response<Full<Bytes>> {
    let request = videonest::signed_request(SECRET, body.to_owned()).unwrap();
    http.clone().oneshot(request).await.unwrap()
}

/// Records what a worker's service saw: `(id, attempt)`.
type Seen = Arc<Mutex<Vec<(String, u32)>>>;

/// A service that records each delivery and fails the first `failures` calls for each event.
fn recorder(
    seen: &Seen,
    failures: u32,
) -> impl tower::Service<
    Delivery<videonest::Event>,
    Response = (),
    Error = String,
    Future = impl Send + use<>,
>
+ Clone
+ Send
+ 'static
+ use<> {
    let seen = Arc::clone(seen);
    service_fn(move |delivery: Delivery<videonest::Event>| {
        let seen = Arc::clone(&seen);
        async move {
            let id = delivery.event().id().unwrap_or("-").to_owned();
            seen.lock().unwrap().push((id.clone(), delivery.attempt()));
            if delivery.attempt() <= failures {
                Err(format!("{id} failed on attempt {}", delivery.attempt()))
            } else {
                Ok(())
            }
        }
    })
}

fn fast<S>(
    worker: Worker<videonest::Event, MemoryQueue, S>,
) -> Worker<videonest::Event, MemoryQueue, S> {
    worker.backoff(Backoff::exponential(
        Duration::from_millis(10),
        Duration::from_millis(40),
    ))
}

/// Waits until `check` holds (bounded).
async fn until(mut check: impl FnMut() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not reached in 5 s");
}

/// Runs `worker` until `done` holds, then stops it and waits for it to return.
async fn run_until<S>(worker: Worker<videonest::Event, MemoryQueue, S>, done: impl FnMut() -> bool)
where
    S: tower::Service<Delivery<videonest::Event>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: std::fmt::Display + Send + 'static,
{
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(worker.run(async {
        stopped.await.ok();
    }));
    until(done).await;
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn acknowledged_deliveries_are_stored_then_processed() {
    let queue = MemoryQueue::new(100);
    let http = ingest(&queue, false);
    for id in ["a", "b", "c"] {
        let response = post(&http, &event(id)).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(queue.len(), 3, "answered only once stored");

    let seen = Seen::default();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(
        fast(Worker::new(queue.clone(), recorder(&seen, 0))).run(async {
            stopped.await.ok();
        }),
    );
    until(|| queue.is_empty()).await;
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, [("a".into(), 1), ("b".into(), 1), ("c".into(), 1)]);
}

#[tokio::test]
async fn a_full_queue_answers_503_and_acknowledges_nothing() {
    let queue = MemoryQueue::new(2);
    let http = ingest(&queue, false);
    assert_eq!(post(&http, &event("a")).await.status(), StatusCode::OK);
    assert_eq!(post(&http, &event("b")).await.status(), StatusCode::OK);
    let response = post(&http, &event("c")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(matches!(
        response.extensions().get::<Rejection>(),
        Some(Rejection::Queue(_))
    ));
    assert_eq!(queue.len(), 2);
}

#[tokio::test]
async fn failures_are_retried_and_a_poison_event_is_dead_lettered_with_its_error() {
    let queue = MemoryQueue::new(100);
    let http = ingest(&queue, false);
    post(&http, &event("flaky")).await;
    post(&http, &event("poison")).await;
    let seen = Seen::default();
    let seen_by_service = Arc::clone(&seen);
    // "flaky" fails twice then succeeds; "poison" always fails.
    let service = service_fn(move |delivery: Delivery<videonest::Event>| {
        let seen = Arc::clone(&seen_by_service);
        async move {
            let id = delivery.event().id().unwrap_or("-").to_owned();
            seen.lock().unwrap().push((id.clone(), delivery.attempt()));
            if id == "poison" || delivery.attempt() <= 2 {
                Err(format!("{id} failed on attempt {}", delivery.attempt()))
            } else {
                Ok(())
            }
        }
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(
        fast(Worker::new(queue.clone(), service))
            .max_attempts(4)
            .run(async {
                stopped.await.ok();
            }),
    );
    until(|| queue.is_empty()).await;
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();

    let dead = queue.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 4);
    assert_eq!(dead[0].error, "poison failed on attempt 4");
    let seen = seen.lock().unwrap().clone();
    let attempts = |id: &str| {
        seen.iter()
            .filter(|(s, _)| s == id)
            .map(|(_, a)| *a)
            .collect::<Vec<_>>()
    };
    assert_eq!(attempts("flaky"), [1, 2, 3]);
    assert_eq!(attempts("poison"), [1, 2, 3, 4]);
}

#[tokio::test]
async fn a_worker_that_dies_mid_processing_loses_nothing() {
    let queue = MemoryQueue::new(100);
    let http = ingest(&queue, false);
    post(&http, &event("orphan")).await;
    // A worker takes the delivery and dies: it never settles it.
    let taken = queue
        .pull(
            "doomed",
            Pull::up_to(1).hidden_for(Duration::from_millis(100)),
        )
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);

    let seen = Seen::default();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(
        fast(Worker::new(queue.clone(), recorder(&seen, 0))).run(async {
            stopped.await.ok();
        }),
    );
    until(|| queue.is_empty()).await;
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();
    // Taken over after the visibility timeout, as the second attempt.
    assert_eq!(*seen.lock().unwrap(), [("orphan".into(), 2)]);
    // The dead worker's late acknowledgement changes nothing.
    queue.ack(&taken[0]).await.unwrap();
}

#[tokio::test]
async fn concurrent_repeats_are_enqueued_once() {
    let queue = MemoryQueue::new(100);
    let http = ingest(&queue, true);
    let body = event("repeated");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (http, body) = (http.clone(), body.clone());
        tasks.spawn(async move { post(&http, &body).await.status() });
    }
    let answers = tasks.join_all().await;
    let ok = answers.iter().filter(|s| **s == StatusCode::OK).count();
    assert!(
        answers
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::CONFLICT),
        "{answers:?}"
    );
    assert!(ok >= 1);
    assert_eq!(queue.len(), 1, "one delivery stored");
    // A later repeat is a duplicate: nothing more is stored.
    assert_eq!(post(&http, &body).await.status(), StatusCode::OK);
    assert_eq!(queue.len(), 1);
}

/// `Enqueue::deduplicate`: of 8 concurrent repeats one is stored, and every one is answered 200
/// (seven as duplicates); the worker sees the delivery's key.
#[tokio::test]
async fn deduplicated_enqueue_stores_concurrent_repeats_once() {
    let queue = MemoryQueue::new(100);
    let http: Http = BoxCloneSyncService::new(
        ServiceBuilder::new()
            .layer(videonest::layer([SECRET]).unwrap())
            .service(Enqueue::<videonest::Event, _>::new(queue.clone()).deduplicate()),
    );
    let body = event("repeated");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (http, body) = (http.clone(), body.clone());
        tasks.spawn(async move {
            let response = post(&http, &body).await;
            (
                response.status(),
                response.headers().contains_key(DUPLICATE_HEADER),
            )
        });
    }
    let answers = tasks.join_all().await;
    assert!(
        answers.iter().all(|(s, _)| *s == StatusCode::OK),
        "{answers:?}"
    );
    assert_eq!(
        answers.iter().filter(|(_, duplicate)| !duplicate).count(),
        1,
        "{answers:?}"
    );
    assert_eq!(queue.len(), 1, "one delivery stored");
    assert_eq!(post(&http, &event("other")).await.status(), StatusCode::OK);
    assert_eq!(queue.len(), 2);

    let taken = queue.pull("w", Pull::up_to(10)).await.unwrap();
    let delivery = Delivery::<videonest::Event>::from_message(&taken[0]).unwrap();
    let expected = store_key(
        "videonest",
        &delivery.verified().event().idempotency_key().unwrap(),
    );
    assert_eq!(delivery.key(), Some(expected.as_str()));
}

/// `push_once` on a `MemoryQueue`: a key is forgotten after its retention, never before; a
/// refused push records nothing.
#[tokio::test]
async fn memory_push_once_keys_expire_and_are_only_recorded_when_stored() {
    let day = Duration::from_secs(86_400);
    let queue = MemoryQueue::new(3).max_keys(2);
    let push = |key: &'static str, retention| queue.push_once(key, retention, Bytes::from(key));
    assert!(matches!(push("a", day).await, Ok(Pushed::Stored(_))));
    assert_eq!(push("a", day).await.unwrap(), Pushed::Duplicate);
    // Expired at once.
    assert!(matches!(
        push("b", Duration::ZERO).await,
        Ok(Pushed::Stored(_))
    ));
    assert!(matches!(push("b", day).await, Ok(Pushed::Stored(_))));
    assert_eq!(queue.len(), 3);
    // Full: refused, and "c" is not recorded.
    assert!(matches!(
        push("c", day).await,
        Err(QueueError::Full { capacity: 3 })
    ));
    let taken = queue.pull("w", Pull::up_to(3)).await.unwrap();
    for message in &taken {
        queue.ack(message).await.unwrap();
    }
    // Two keys remembered at most, and neither has expired: "c" is refused, "a" and "b" stay.
    assert!(matches!(
        push("c", day).await,
        Err(QueueError::KeysFull { max_keys: 2 })
    ));
    assert!(queue.is_empty());
    assert_eq!(push("a", day).await.unwrap(), Pushed::Duplicate);
    assert_eq!(push("b", day).await.unwrap(), Pushed::Duplicate);
}

/// A `MemoryQueue` whose keys are all unexpired refuses a new key before storing its payload,
/// and never forgets the keys it holds.
#[tokio::test]
async fn memory_push_once_never_forgets_an_unexpired_key() {
    let day = Duration::from_secs(86_400);
    let queue = MemoryQueue::new(100).max_keys(3);
    for key in ["k0", "k1", "k2"] {
        let pushed = queue.push_once(key, day, Bytes::from(key)).await;
        assert!(matches!(pushed, Ok(Pushed::Stored(_))), "{pushed:?}");
    }
    for key in ["k3", "k4", "k5"] {
        let refused = queue.push_once(key, day, Bytes::from(key)).await;
        assert!(
            matches!(refused, Err(QueueError::KeysFull { max_keys: 3 })),
            "{key}: {refused:?}"
        );
        assert_eq!(
            queue.len(),
            3,
            "{key}: nothing stored that was not recorded"
        );
    }
    // A replay of the first key is still a duplicate.
    for key in ["k0", "k1", "k2"] {
        let pushed = queue.push_once(key, day, Bytes::from(key)).await;
        assert_eq!(pushed.unwrap(), Pushed::Duplicate, "{key}");
    }
    assert_eq!(queue.len(), 3);
    // Plain pushes record no key and are not refused.
    assert!(queue.push(Bytes::from_static(b"plain")).await.is_ok());
    assert_eq!(queue.len(), 4);
    let stats = queue.key_stats();
    assert_eq!((stats.len, stats.max_keys), (3, 3));
    assert_eq!((stats.expired_removed, stats.refused_full), (0, 3));
}

/// A push refused because the queue is full records no key: the repeat is stored once there
/// is room.
#[tokio::test]
async fn memory_push_once_refused_by_a_full_queue_records_nothing() {
    let day = Duration::from_secs(86_400);
    let queue = MemoryQueue::new(1).max_keys(10);
    assert!(matches!(
        queue.push_once("a", day, Bytes::from("a")).await,
        Ok(Pushed::Stored(_))
    ));
    assert!(matches!(
        queue.push_once("b", day, Bytes::from("b")).await,
        Err(QueueError::Full { capacity: 1 })
    ));
    assert_eq!(queue.key_stats().len, 1);
    let taken = queue.pull("w", Pull::up_to(1)).await.unwrap();
    queue.ack(&taken[0]).await.unwrap();
    assert!(matches!(
        queue.push_once("b", day, Bytes::from("b")).await,
        Ok(Pushed::Stored(_))
    ));
    assert_eq!(queue.key_stats().len, 2);
}

/// Expired keys make room for new ones.
#[tokio::test]
async fn memory_push_once_expired_keys_make_room() {
    let queue = MemoryQueue::new(100).max_keys(2);
    let brief = Duration::from_millis(50);
    let day = Duration::from_secs(86_400);
    for key in ["a", "b"] {
        let pushed = queue.push_once(key, brief, Bytes::from(key)).await;
        assert!(matches!(pushed, Ok(Pushed::Stored(_))), "{pushed:?}");
    }
    assert_eq!(queue.key_stats().expired_removed, 0);
    tokio::time::sleep(3 * brief).await;
    for key in ["c", "d"] {
        let pushed = queue.push_once(key, day, Bytes::from(key)).await;
        assert!(matches!(pushed, Ok(Pushed::Stored(_))), "{key}: {pushed:?}");
    }
    assert_eq!(queue.len(), 4);
    let stats = queue.key_stats();
    assert_eq!(
        (stats.len, stats.expired_removed, stats.refused_full),
        (2, 2, 0)
    );
    // "a" expired and was forgotten: a repeat is new again, and refused, as the key set is full
    // of live keys.
    assert!(matches!(
        queue.push_once("a", day, Bytes::from("a")).await,
        Err(QueueError::KeysFull { max_keys: 2 })
    ));
    assert_eq!(queue.len(), 4);
    assert_eq!(
        queue.push_once("c", day, Bytes::new()).await.unwrap(),
        Pushed::Duplicate
    );
    assert_eq!(queue.key_stats().refused_full, 1);
}

/// Through `Enqueue::deduplicate`: a queue whose key set is full of unexpired keys answers 503
/// and stores nothing; a replay of a recorded delivery is still a duplicate.
#[tokio::test]
async fn deduplicated_enqueue_with_a_full_key_set_answers_503_and_stores_nothing() {
    let queue = MemoryQueue::new(100).max_keys(2);
    let http: Http = BoxCloneSyncService::new(
        ServiceBuilder::new()
            .layer(videonest::layer([SECRET]).unwrap())
            .service(Enqueue::<videonest::Event, _>::new(queue.clone()).deduplicate()),
    );
    for id in ["a", "b"] {
        assert_eq!(post(&http, &event(id)).await.status(), StatusCode::OK);
    }
    let refused = post(&http, &event("c")).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(matches!(
        refused.extensions().get::<Rejection>(),
        Some(Rejection::Queue(QueueError::KeysFull { max_keys: 2 }))
    ));
    assert_eq!(queue.len(), 2, "nothing acknowledged, nothing stored");
    let replay = post(&http, &event("a")).await;
    assert_eq!(replay.status(), StatusCode::OK);
    assert_eq!(
        replay.headers().get(DUPLICATE_HEADER).unwrap(),
        "true",
        "the first delivery's key was kept"
    );
    assert_eq!(queue.len(), 2);
}

/// A `MemoryQueue` whose first `failures` acknowledgements fail, as a queue that is briefly
/// unreachable, and whose first `panics` batches of acknowledgements panic (a bug in a queue).
#[derive(Clone)]
struct FlakyAck {
    queue: MemoryQueue,
    acks: Arc<AtomicUsize>,
    failures: usize,
    batches: Arc<AtomicUsize>,
    panics: usize,
}

impl Queue for FlakyAck {
    fn push(&self, payload: Bytes) -> QueueFuture<MessageId> {
        self.queue.push(payload)
    }

    fn push_once(&self, key: &str, retention: Duration, payload: Bytes) -> QueueFuture<Pushed> {
        self.queue.push_once(key, retention, payload)
    }

    fn pull(&self, consumer: &str, pull: Pull) -> QueueFuture<Vec<Message>> {
        self.queue.pull(consumer, pull)
    }

    fn ack(&self, message: &Message) -> QueueFuture<()> {
        if self.acks.fetch_add(1, Ordering::SeqCst) < self.failures {
            return Box::pin(async { Err(QueueError::unavailable("connection refused")) });
        }
        self.queue.ack(message)
    }

    fn ack_many(&self, messages: &[Message]) -> QueueFuture<()> {
        if self.batches.fetch_add(1, Ordering::SeqCst) < self.panics {
            panic!("a bug in ack_many");
        }
        // Each through `ack`, so that its failures apply to batches too.
        let acks: Vec<QueueFuture<()>> = messages.iter().map(|message| self.ack(message)).collect();
        Box::pin(async move {
            for ack in acks {
                ack.await?;
            }
            Ok(())
        })
    }

    fn retry(&self, message: &Message, error: &str, delay: Duration) -> QueueFuture<()> {
        self.queue.retry(message, error, delay)
    }

    fn dead_letter(&self, message: &Message, error: &str) -> QueueFuture<()> {
        self.queue.dead_letter(message, error)
    }

    fn stats(&self) -> QueueFuture<QueueStats> {
        self.queue.stats()
    }

    fn list_dead_letters(&self, page: Page) -> QueueFuture<DeadLetterPage> {
        self.queue.list_dead_letters(page)
    }

    fn replay_dead_letters(&self, which: Select) -> QueueFuture<u64> {
        self.queue.replay_dead_letters(which)
    }

    fn purge_dead_letters(&self, which: Select) -> QueueFuture<u64> {
        self.queue.purge_dead_letters(which)
    }
}

/// A delivery a worker's service saw: the event, its attempt, the worker and when.
type SeenBy = (String, u32, &'static str, Duration);

/// Every delivery takes less than the visibility timeout (700 ms of 1 s), as the docs ask; the
/// first is quick, so the worker pulls ahead (`prefetch(1)`), then the service slows down: the
/// delivery pulled ahead waits behind a slow one. It is not started that late in its timeout,
/// so it is processed once, by the next replica, not by both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_pulled_ahead_is_not_processed_twice() {
    let queue = MemoryQueue::new(100);
    let http = ingest(&queue, false);
    for id in ["fast-0", "slow-1", "slow-2"] {
        post(&http, &event(id)).await;
    }
    let seen: Arc<Mutex<Vec<SeenBy>>> = Arc::default();
    let start = std::time::Instant::now();
    let service = |name: &'static str| {
        let seen = Arc::clone(&seen);
        service_fn(move |delivery: Delivery<videonest::Event>| {
            let seen = Arc::clone(&seen);
            async move {
                let id = delivery.event().id().unwrap_or("-").to_owned();
                seen.lock()
                    .unwrap()
                    .push((id.clone(), delivery.attempt(), name, start.elapsed()));
                if id.starts_with("slow") {
                    tokio::time::sleep(Duration::from_millis(700)).await;
                }
                Ok::<_, Infallible>(())
            }
        })
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let shutdown = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        stopped.wait_for(|s| *s).await.ok();
    };
    let replica = |name: &'static str| {
        tokio::spawn(
            Worker::new(queue.clone(), service(name))
                .concurrency(1)
                .prefetch(1)
                .visibility_timeout(Duration::from_secs(1))
                .run(shutdown(stopped.clone())),
        )
    };
    let first = replica("first");
    // Another replica comes up a little later.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = replica("second");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.send(true).unwrap();
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();
    let seen = seen.lock().unwrap().clone();
    let slow2 = seen.iter().filter(|(id, ..)| id == "slow-2").count();
    assert_eq!(slow2, 1, "slow-2 processed {slow2} times: {seen:?}");
}

/// A graceful shutdown while a slow delivery runs: by default the worker pulls nothing ahead,
/// so the delivery behind it is not held with its attempt counted, and with one attempt allowed
/// it is still processed by the next replica (not dead-lettered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_pulled_ahead_at_shutdown_keeps_its_attempt() {
    let queue = MemoryQueue::new(100);
    let http = ingest(&queue, false);
    for id in ["fast-0", "slow-1", "m"] {
        post(&http, &event(id)).await;
    }
    let seen: Seen = Arc::default();
    let service = {
        let seen = Arc::clone(&seen);
        service_fn(move |delivery: Delivery<videonest::Event>| {
            let seen = Arc::clone(&seen);
            async move {
                let id = delivery.event().id().unwrap_or("-").to_owned();
                seen.lock().unwrap().push((id.clone(), delivery.attempt()));
                if id.starts_with("slow") {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Ok::<_, Infallible>(())
            }
        })
    };
    let worker = |stop: tokio::sync::oneshot::Receiver<()>| {
        Worker::new(queue.clone(), service.clone())
            .concurrency(1)
            .max_attempts(1)
            .visibility_timeout(Duration::from_millis(800))
            .run(async move {
                stop.await.ok();
            })
    };
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let first = tokio::spawn(worker(stopped));
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A rolling deploy: this replica stops gracefully while slow-1 runs.
    stop.send(()).unwrap();
    first.await.unwrap().unwrap();
    // The next replica.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let second = tokio::spawn(worker(stopped));
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.send(()).unwrap();
    second.await.unwrap().unwrap();
    let seen = seen.lock().unwrap().clone();
    eprintln!(
        "seen {seen:?}, dead letters {}",
        queue.stats().await.unwrap().dead
    );
    assert!(
        seen.iter().any(|(id, _)| id == "m"),
        "m was never processed: {seen:?}, dead letters {}",
        queue.stats().await.unwrap().dead
    );
}

/// One panic in `ack_many` fails that batch only (its deliveries send their own
/// acknowledgement): the later ones still go in batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_panic_in_ack_many_fails_that_batch_only() {
    let queue = FlakyAck {
        queue: MemoryQueue::new(100),
        acks: Arc::default(),
        failures: 0,
        batches: Arc::default(),
        panics: 1,
    };
    let enqueue = Enqueue::<videonest::Event, _>::new(queue.clone());
    let http: Http = BoxCloneSyncService::new(
        ServiceBuilder::new()
            .layer(videonest::layer([SECRET]).unwrap())
            .service(enqueue),
    );
    let service =
        service_fn(|_delivery: Delivery<videonest::Event>| async { Ok::<_, Infallible>(()) });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(Worker::new(queue.clone(), service).run(async {
        stopped.await.ok();
    }));
    for i in 0..10 {
        post(&http, &event(&format!("e{i}"))).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();
    // Every acknowledgement goes through `ack`: those of batches and those sent alone.
    let (batches, acks) = (
        queue.batches.load(Ordering::SeqCst),
        queue.acks.load(Ordering::SeqCst),
    );
    assert!(queue.queue.is_empty());
    assert!(
        batches > 1,
        "no batch after the panic: {batches} batch, {acks} acks"
    );
    assert_eq!(acks, 10, "each delivery acknowledged once");
}

/// An acknowledgement that fails while the queue is briefly unreachable is tried again: the
/// processed delivery does not come back after its visibility timeout to be processed twice.
#[tokio::test]
async fn a_failed_acknowledgement_is_retried_and_the_delivery_not_processed_twice() {
    let flaky = FlakyAck {
        queue: MemoryQueue::new(10),
        acks: Arc::default(),
        failures: 3,
        batches: Arc::default(),
        panics: 0,
    };
    let http: Http = BoxCloneSyncService::new(
        ServiceBuilder::new()
            .layer(videonest::layer([SECRET]).unwrap())
            .service(Enqueue::<videonest::Event, _>::new(flaky.clone())),
    );
    assert_eq!(post(&http, &event("once")).await.status(), StatusCode::OK);
    let seen = Seen::default();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = Worker::new(flaky.clone(), recorder(&seen, 0))
        // Long enough that a delivery coming back would take a minute: the wait below ends
        // only if the acknowledgement was retried.
        .visibility_timeout(Duration::from_secs(60));
    let running = tokio::spawn(worker.run(async {
        stopped.await.ok();
    }));
    until(|| flaky.queue.is_empty()).await;
    assert_eq!(
        flaky.acks.load(Ordering::SeqCst),
        4,
        "three failures, then acknowledged"
    );
    stop.send(()).ok();
    running.await.unwrap().unwrap();
    assert_eq!(*seen.lock().unwrap(), [("once".into(), 1)]);
}

/// A worker pulls ahead of its free places (`prefetch`) only as many deliveries as finish, at
/// the pace of the slowest recent one, within an eighth of the visibility timeout: with a service slower than that, no
/// delivery waits in the worker while its timeout runs (the queue's held deliveries stay at
/// the concurrency, plus one whose acknowledgement is on its way).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_service_is_not_pulled_for_ahead_of_its_places() {
    let queue = MemoryQueue::new(100);
    let http = ingest(&queue, false);
    for i in 0..6 {
        post(&http, &event(&format!("slow-{i}"))).await;
    }
    let finished = Arc::new(AtomicUsize::new(0));
    let done = Arc::clone(&finished);
    let service = service_fn(move |_delivery: Delivery<videonest::Event>| {
        let done = Arc::clone(&done);
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            done.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Infallible>(())
        }
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(
        Worker::new(queue.clone(), service)
            .concurrency(2)
            .prefetch(2)
            .visibility_timeout(Duration::from_secs(1))
            .run(async {
                stopped.await.ok();
            }),
    );
    let mut most_held = 0;
    while finished.load(Ordering::SeqCst) < 6 {
        most_held = most_held.max(queue.stats().await.unwrap().pending);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();
    assert!(
        most_held <= 3,
        "{most_held} deliveries held by a worker of concurrency 2"
    );
    assert!(queue.is_empty());
}

#[tokio::test]
async fn shutdown_finishes_the_work_in_progress() {
    let queue = MemoryQueue::new(100);
    let http = ingest(&queue, false);
    post(&http, &event("slow")).await;
    let started = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let (s, f) = (Arc::clone(&started), Arc::clone(&finished));
    let service = service_fn(move |_delivery: Delivery<videonest::Event>| {
        let (s, f) = (Arc::clone(&s), Arc::clone(&f));
        async move {
            s.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(200)).await;
            f.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Infallible>(())
        }
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(Worker::new(queue.clone(), service).run(async {
        stopped.await.ok();
    }));
    until(|| started.load(Ordering::SeqCst) == 1).await;
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();
    assert_eq!(finished.load(Ordering::SeqCst), 1);
    assert!(queue.is_empty(), "acknowledged before the worker stopped");
}

#[tokio::test]
async fn a_service_that_panics_is_retried_then_dead_lettered() {
    let queue = MemoryQueue::new(100);
    let http = ingest(&queue, false);
    post(&http, &event("panics")).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let service = service_fn(move |_delivery: Delivery<videonest::Event>| {
        counted.fetch_add(1, Ordering::SeqCst);
        async move {
            if true {
                panic!("the handler has a bug");
            }
            Ok::<_, Infallible>(())
        }
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(
        fast(Worker::new(queue.clone(), service))
            .max_attempts(3)
            .run(async {
                stopped.await.ok();
            }),
    );
    until(|| queue.is_empty()).await;
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();
    let dead = queue.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].attempts, dead[0].error.as_str()),
        (3, "the service panicked")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn huge_durations_saturate_instead_of_losing_the_delivery() {
    let queue = MemoryQueue::new(100);
    let http = ingest(&queue, false);
    post(&http, &event("patient")).await;
    let taken = queue
        .pull("w", Pull::up_to(1).hidden_for(Duration::MAX))
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    queue
        .retry(&taken[0], "later", Duration::MAX)
        .await
        .unwrap();
    assert_eq!(queue.len(), 1, "still held, waiting for its retry");
}

#[tokio::test]
async fn memory_dead_letters_are_bounded() {
    let queue = MemoryQueue::new(2);
    for round in 0..5 {
        queue.push(Bytes::from(format!("m{round}"))).await.unwrap();
        let taken = queue.pull("w", Pull::up_to(1)).await.unwrap();
        queue.dead_letter(&taken[0], "poison").await.unwrap();
    }
    let dead = queue.dead_letters();
    assert_eq!(dead.len(), 2);
    assert_eq!(
        (&dead[0].payload[..], &dead[1].payload[..]),
        (&b"m3"[..], &b"m4"[..])
    );
}

/// Counts the calls of a service that are running: up when a call starts, down when its future
/// is dropped (finished or stopped).
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `Worker::run`'s drain timeout stops what it says it stops: a handler still running when the
/// timeout ends is stopped before `run` returns, so it cannot overlap its own redelivery.
#[tokio::test]
async fn shutdown_stops_a_hung_service_and_keeps_its_delivery() {
    let queue = MemoryQueue::new(100);
    post(&ingest(&queue, false), &event("endless")).await;
    let running = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let service = {
        let (running, started) = (Arc::clone(&running), Arc::clone(&started));
        service_fn(move |_delivery: Delivery<videonest::Event>| {
            running.fetch_add(1, Ordering::SeqCst);
            started.fetch_add(1, Ordering::SeqCst);
            let guard = Running(Arc::clone(&running));
            async move {
                let _guard = guard;
                // Never finishes by itself.
                std::future::pending::<()>().await;
                Ok::<_, String>(())
            }
        })
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(
        Worker::new(queue.clone(), service)
            .drain_timeout(Duration::from_millis(100))
            .visibility_timeout(Duration::from_millis(300))
            .run(async {
                stopped.await.ok();
            }),
    );
    until(|| started.load(Ordering::SeqCst) == 1).await;
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .expect("run returns after the drain timeout")
        .unwrap()
        .unwrap();
    assert_eq!(
        running.load(Ordering::SeqCst),
        0,
        "the handler was stopped before run returned"
    );
    // Left in the queue: delivered again after the visibility timeout.
    assert_eq!(queue.len(), 1, "the unsettled delivery stays queued");
}

/// The payloads version 0.1 stored (without a format field), one per kind of event, as
/// `tests/fixtures/queue-payloads-0.1.json` keeps them: what a queue may still hold when a
/// service is upgraded.
fn payloads_of_0_1() -> serde_json::Map<String, serde_json::Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/queue-payloads-0.1.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn message(payload: &str) -> Message {
    Message {
        id: MessageId("1".into()),
        payload: Bytes::from(payload.to_owned()),
        attempt: 1,
        replays: 0,
    }
}

/// An upgrade with deliveries in flight: what version 0.1 stored is still read, field by field.
#[test]
fn payloads_stored_by_0_1_are_still_read() {
    use tower_webhook::provider::{generic, videoaiditor};
    let payloads = payloads_of_0_1();
    let text = |name: &str| payloads[name].as_str().unwrap().to_owned();

    let videonest = Delivery::<videonest::Event>::from_message(&message(&text("videonest")))
        .expect("a 0.1 VideoNest payload");
    assert_eq!(videonest.provider(), "videonest");
    assert_eq!(videonest.event_type(), "video.processed");
    assert_eq!(videonest.id(), &MessageId("1".into()));
    assert_eq!(videonest.event().id(), Some("vid_fixture"));
    assert!(videonest.key().unwrap().starts_with("videonest:"));
    assert!(
        videonest
            .body()
            .starts_with(br#"{"event":"video.processed""#)
    );

    let videoaiditor =
        Delivery::<videoaiditor::Event>::from_message(&message(&text("videoaiditor")))
            .expect("a 0.1 VideoAIditor payload");
    assert_eq!(videoaiditor.event_type(), "render.completed");
    assert_eq!(videoaiditor.event().id(), Some("render_fixture"));
    assert_eq!(videoaiditor.key(), None);

    let github = Delivery::<generic::Event>::from_message(&message(&text("github")))
        .expect("a 0.1 GitHub payload");
    assert_eq!(github.provider(), "github");
    assert_eq!(github.event_type(), "ping");
    assert_eq!(
        github.delivery_id(),
        Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
    );
    assert!(github.key().unwrap().starts_with("github:"));
}

/// What this version stores says its format, and reads back.
#[tokio::test]
async fn stored_payloads_carry_their_format() {
    let queue = MemoryQueue::new(10);
    post(&ingest(&queue, false), &event("versioned")).await;
    let taken = queue.pull("w", Pull::up_to(1)).await.unwrap();
    let stored: serde_json::Value = serde_json::from_slice(&taken[0].payload).unwrap();
    assert_eq!(stored["v"], tower_webhook::queue::PAYLOAD_FORMAT);
    let delivery = Delivery::<videonest::Event>::from_message(&taken[0]).unwrap();
    assert_eq!(delivery.event().id(), Some("versioned"));
}

/// A payload a later version stored, in a format this one does not read, is dead-lettered with
/// an error that says so: never a panic, never dropped in silence, never processed half-read.
/// Payloads of 0.1 beside it are processed.
#[tokio::test]
async fn a_payload_of_a_later_format_is_dead_lettered_with_a_clear_error() {
    let queue = MemoryQueue::new(10);
    let later = r#"{"v":2,"delivery":{"whatever":"a later version stores"}}"#;
    let later_same_shape = text_with_format(&payloads_of_0_1(), 7);
    for payload in [later.to_owned(), later_same_shape] {
        queue.push(Bytes::from(payload)).await.unwrap();
    }
    queue
        .push(Bytes::from(
            payloads_of_0_1()["videonest"].as_str().unwrap().to_owned(),
        ))
        .await
        .unwrap();
    let seen = Seen::default();
    run_until(fast(Worker::new(queue.clone(), recorder(&seen, 0))), || {
        queue.is_empty()
    })
    .await;
    assert_eq!(*seen.lock().unwrap(), [("vid_fixture".into(), 1)]);
    let dead = queue.dead_letters();
    assert_eq!(dead.len(), 2, "{dead:?}");
    for (letter, format) in dead.iter().zip([2, 7]) {
        assert!(
            letter.error.contains(&format!("format {format}"))
                && letter.error.contains("later version"),
            "{}",
            letter.error
        );
    }
}

/// The 0.1 VideoNest payload with a `v` field of `format`: the shape this version reads, from a
/// later format.
fn text_with_format(payloads: &serde_json::Map<String, serde_json::Value>, format: u64) -> String {
    let mut stored: serde_json::Value =
        serde_json::from_str(payloads["videonest"].as_str().unwrap()).unwrap();
    stored["v"] = format.into();
    stored.to_string()
}

/// A panic in the service's `call` itself (work done before its future, a layer's `call`) is
/// an error of the attempt like a panic in its future: retried with backoff, then
/// dead-lettered as "the service panicked", never a lost settlement held until the visibility
/// timeout.
#[tokio::test]
async fn a_panic_in_call_is_retried_then_dead_lettered() {
    let queue = MemoryQueue::new(10);
    post(&ingest(&queue, false), &event("panics_in_call")).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let service = service_fn(
        move |delivery: Delivery<videonest::Event>| -> std::future::Ready<Result<(), Infallible>> {
            counted.fetch_add(1, Ordering::SeqCst);
            // A bug in the work done before the future.
            assert!(delivery.event().id().is_none(), "the handler has a bug");
            std::future::ready(Ok(()))
        },
    );
    let worker = fast(Worker::new(queue.clone(), service))
        .max_attempts(2)
        .visibility_timeout(Duration::from_secs(60));
    run_until(worker, || !queue.dead_letters().is_empty()).await;
    let dead: Vec<_> = queue
        .dead_letters()
        .into_iter()
        .map(|letter| (letter.attempts, letter.error))
        .collect();
    assert_eq!(dead, [(2, "the service panicked".to_owned())]);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn memory_queue_stats_follow_the_traffic() {
    common::queue::stats_follow_the_traffic(&MemoryQueue::new(10)).await;
}

#[tokio::test]
async fn memory_dead_letters_are_listed_replayed_and_purged() {
    let queue = MemoryQueue::new(2_000);
    common::queue::dead_letters_are_listed_replayed_and_purged(&queue).await;
}

#[tokio::test]
async fn memory_concurrent_replays_enqueue_a_dead_letter_once() {
    common::queue::concurrent_replays_enqueue_a_dead_letter_once(&MemoryQueue::new(10)).await;
}

#[tokio::test]
async fn memory_a_replay_bypasses_the_dedupe_record_and_is_processed_once() {
    common::queue::a_replay_bypasses_the_dedupe_record_and_is_processed_once(MemoryQueue::new(10))
        .await;
}

#[tokio::test]
async fn memory_replays_take_each_id_once_skip_strangers_and_go_oldest_first() {
    let queue = MemoryQueue::new(400);
    common::queue::replays_take_each_id_once_skip_strangers_and_go_oldest_first(&queue).await;
}

#[tokio::test]
async fn memory_failures_are_retried_then_dead_lettered() {
    common::queue::failures_are_retried_then_dead_lettered(MemoryQueue::new(10)).await;
}
