//! The queue hand-off on Redis Streams, against a real Redis server: enqueued over HTTP and
//! processed by workers, a dead worker's message taken over, a poison event dead-lettered, an
//! outage answered 503, and repeats enqueued once.
//!
//! Where the server comes from: `TOWER_WEBHOOK_REDIS_URL` (which `.ci/run` sets), else a
//! private `redis-server` on a free port of 127.0.0.1; without either the tests say so and
//! pass, unless `CI=true`: then they fail. Each test uses a stream of its own. The outage test
//! always starts a private server, since it stops it.
#![cfg(all(feature = "queue", feature = "redis"))]

mod common;

use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use common::{
    SECRET,
    redis::{Monitor, Server, URL_VAR, free_port, in_ci},
};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{ServiceBuilder, ServiceExt, service_fn, util::BoxCloneSyncService};
use tower_webhook::{
    dedupe::{
        DUPLICATE_HEADER, DedupeLayer,
        store::{Claim, RedisStore, Store, Token},
    },
    provider::videonest,
    queue::{Backoff, Delivery, Enqueue, Pull, Pushed, Queue, QueueError, RedisQueue, Worker},
};

type Http = BoxCloneSyncService<Request<Full<Bytes>>, Response<Full<Bytes>>, Infallible>;

/// A Redis server for one test, and a stream name no other test uses.
struct Redis {
    url: String,
    stream: String,
    _server: Option<Server>,
}

impl Redis {
    async fn get(test: &str) -> Option<Self> {
        let stream = format!(
            "tower-webhook-test:queue:{test}:{}",
            Token::random().as_str()
        );
        match std::env::var(URL_VAR) {
            Ok(url) if !url.is_empty() => match RedisQueue::connect(url.as_str()).await {
                Ok(_) => {
                    return Some(Self {
                        url,
                        stream,
                        _server: None,
                    });
                }
                Err(err) if in_ci() => {
                    panic!("{test}: {URL_VAR}={url} cannot be reached, and CI=true: {err:?}")
                }
                Err(err) => eprintln!(
                    "{test}: {URL_VAR}={url} cannot be reached ({err:?}); starting a private redis-server"
                ),
            },
            _ if in_ci() => panic!(
                "{test}: CI=true but {URL_VAR} is not set: the Redis tests must not be skipped in CI"
            ),
            _ => {}
        }
        let server = Server::require(test).await?;
        Some(Self {
            url: server.url(),
            stream,
            _server: Some(server),
        })
    }

    async fn queue(&self) -> RedisQueue {
        RedisQueue::connect(self.url.as_str())
            .await
            .unwrap()
            .stream(&self.stream)
    }

    /// Deletes this test's keys.
    async fn clean_up(&self) {
        let queue = self.queue().await;
        let mut connection = queue.connection().clone();
        let keys = [
            self.stream.clone(),
            format!("{}:delayed", self.stream),
            format!("{}:delayed:data", self.stream),
            format!("{}:dead", self.stream),
        ];
        redis::cmd("DEL")
            .arg(&keys)
            .query_async::<()>(&mut connection)
            .await
            .unwrap();
    }
}

/// Verify, then enqueue.
fn ingest(queue: &RedisQueue) -> Http {
    BoxCloneSyncService::new(
        ServiceBuilder::new()
            .layer(videonest::layer([SECRET]).unwrap())
            .service(Enqueue::<videonest::Event, _>::new(queue.clone())),
    )
}

/// Verify, then store each event once ([`Enqueue::deduplicate`]), its keys under the stream's
/// name.
fn ingest_once(queue: &RedisQueue) -> Http {
    let queue = queue
        .clone()
        .key_prefix(format!("{}:dedupe:", queue.stream_key()));
    BoxCloneSyncService::new(
        ServiceBuilder::new()
            .layer(videonest::layer([SECRET]).unwrap())
            .service(Enqueue::<videonest::Event, _>::new(queue).deduplicate()),
    )
}

fn event(id: &str) -> String {
    format!(r#"{{"event":"video.processed","timestamp":"t","data":{{"id":"{id}"}}}}"#)
}

async fn post(http: &Http, body: &str) -> StatusCode {
    let request = videonest::signed_request(SECRET, body.to_owned()).unwrap();
    http.clone().oneshot(request).await.unwrap().status()
}

/// What a worker's service saw: `(id, attempt)`.
type Seen = Arc<Mutex<Vec<(String, u32)>>>;

/// A service that records each delivery and fails for the events named `poison`.
fn recorder(
    seen: &Seen,
) -> impl tower::Service<Delivery<videonest::Event>, Response = (), Error = String, Future = impl Send>
+ Clone
+ Send
+ 'static {
    let seen = Arc::clone(seen);
    service_fn(move |delivery: Delivery<videonest::Event>| {
        let seen = Arc::clone(&seen);
        async move {
            let id = delivery.event().id().unwrap_or("-").to_owned();
            seen.lock().unwrap().push((id.clone(), delivery.attempt()));
            if id == "poison" {
                Err(format!("{id} failed on attempt {}", delivery.attempt()))
            } else {
                Ok(())
            }
        }
    })
}

/// A running worker, stopped and awaited by [`Running::stop`].
struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), QueueError>>,
}

impl Running {
    fn start<S>(worker: Worker<videonest::Event, RedisQueue, S>) -> Self
    where
        S: tower::Service<Delivery<videonest::Event>, Response = (), Error = String>
            + Clone
            + Send
            + 'static,
        S::Future: Send,
    {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(
            worker
                .backoff(Backoff::exponential(
                    Duration::from_millis(10),
                    Duration::from_millis(40),
                ))
                .run(async {
                    stopped.await.ok();
                }),
        );
        Self { stop, task }
    }

    async fn stop(self) {
        self.stop.send(()).ok();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the worker stops")
            .unwrap()
            .unwrap();
    }
}

/// Waits until `check` holds (bounded: 20 s).
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not reached in 20 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn xlen(queue: &RedisQueue, key: &str) -> u64 {
    redis::cmd("XLEN")
        .arg(key)
        .query_async(&mut queue.connection().clone())
        .await
        .unwrap()
}

fn sorted(seen: &Seen) -> Vec<(String, u32)> {
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueued_over_http_then_processed_by_workers() {
    let Some(redis) = Redis::get("processed").await else {
        return;
    };
    let queue = redis.queue().await;
    let http = ingest(&queue);
    // Stored before any worker ran: the group starts from the beginning of the stream.
    for id in ["a", "b", "c"] {
        assert_eq!(post(&http, &event(id)).await, StatusCode::OK);
    }
    assert_eq!(
        xlen(&queue, queue.stream_key()).await,
        3,
        "answered once stored"
    );

    let seen = Seen::default();
    let workers = [
        Running::start(Worker::new(queue.clone(), recorder(&seen))),
        Running::start(Worker::new(redis.queue().await, recorder(&seen))),
    ];
    until("the first three", || seen.lock().unwrap().len() == 3).await;
    // Stored while the workers wait on a blocking read.
    assert_eq!(post(&http, &event("d")).await, StatusCode::OK);
    until("the fourth", || seen.lock().unwrap().len() == 4).await;
    for worker in workers {
        worker.stop().await;
    }
    assert_eq!(
        sorted(&seen),
        [
            ("a".into(), 1),
            ("b".into(), 1),
            ("c".into(), 1),
            ("d".into(), 1)
        ]
    );
    assert_eq!(
        xlen(&queue, queue.stream_key()).await,
        0,
        "acknowledged and deleted"
    );
    redis.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_workers_message_is_processed_by_another_as_attempt_2() {
    let Some(redis) = Redis::get("dead-worker").await else {
        return;
    };
    let queue = redis.queue().await;
    assert_eq!(
        post(&ingest(&queue), &event("orphan")).await,
        StatusCode::OK
    );
    // A worker takes the delivery and dies: it never settles it.
    let taken = queue
        .pull(
            "doomed",
            Pull::up_to(1).hidden_for(Duration::from_millis(200)),
        )
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].attempt, 1);

    let seen = Seen::default();
    let worker = Running::start(
        Worker::new(redis.queue().await, recorder(&seen))
            .consumer("survivor")
            .visibility_timeout(Duration::from_millis(200)),
    );
    until("taken over", || !seen.lock().unwrap().is_empty()).await;
    worker.stop().await;
    assert_eq!(sorted(&seen), [("orphan".into(), 2)]);
    // The dead worker's late acknowledgement changes nothing, and nothing is left.
    queue.ack(&taken[0]).await.unwrap();
    assert_eq!(xlen(&queue, queue.stream_key()).await, 0);
    redis.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_is_dead_lettered_with_its_error_after_its_attempts() {
    let Some(redis) = Redis::get("poison").await else {
        return;
    };
    let queue = redis.queue().await;
    let http = ingest(&queue);
    assert_eq!(post(&http, &event("poison")).await, StatusCode::OK);
    assert_eq!(post(&http, &event("fine")).await, StatusCode::OK);
    let seen = Seen::default();
    let worker = Running::start(Worker::new(queue.clone(), recorder(&seen)).max_attempts(3));
    let deadline = Instant::now() + Duration::from_secs(20);
    let dead = loop {
        let dead = queue.dead_letters(10).await.unwrap();
        if !dead.is_empty() {
            break dead;
        }
        assert!(Instant::now() < deadline, "no dead letter in 20 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    worker.stop().await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(dead[0].error, "poison failed on attempt 3");
    assert!(
        String::from_utf8_lossy(&dead[0].payload).contains("poison"),
        "the payload is kept"
    );
    let seen = sorted(&seen);
    assert_eq!(
        seen,
        [
            ("fine".into(), 1),
            ("poison".into(), 1),
            ("poison".into(), 2),
            ("poison".into(), 3)
        ]
    );
    assert_eq!(xlen(&queue, queue.stream_key()).await, 0);
    redis.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_answers_503_and_redis_back_stores_and_processes() {
    let Some(mut server) = Server::require("outage").await else {
        return;
    };
    let queue = RedisQueue::connect_lazy(server.url())
        .unwrap()
        .stream("outage");
    let http = ingest(&queue);
    let once = ingest_once(&queue);
    assert_eq!(post(&http, &event("before")).await, StatusCode::OK);
    let seen = Seen::default();
    let worker = Running::start(Worker::new(queue.clone(), recorder(&seen)));
    until("processed before the outage", || {
        seen.lock().unwrap().len() == 1
    })
    .await;

    server.stop().await;
    for id in ["during-1", "during-2", "during-3"] {
        let status = tokio::time::timeout(Duration::from_secs(10), post(&http, &event(id)))
            .await
            .expect("answered while Redis is down");
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{id}");
        let status = tokio::time::timeout(Duration::from_secs(10), post(&once, &event(id)))
            .await
            .expect("answered while Redis is down");
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{id}, deduplicated"
        );
    }
    server.restart().await;

    // The provider retries: refused (503) while the queue reconnects, then stored.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = post(&http, &event("after")).await;
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(Instant::now() < deadline, "still refused after 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nothing was recorded for the refused deliveries: their retries are stored.
    assert_eq!(post(&once, &event("during-1")).await, StatusCode::OK);
    until("processed after the outage", || {
        seen.lock().unwrap().len() == 3
    })
    .await;
    worker.stop().await;
    assert_eq!(
        sorted(&seen),
        [
            ("after".into(), 1),
            ("before".into(), 1),
            ("during-1".into(), 1)
        ],
        "nothing refused was processed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_repeats_with_redis_dedupe_are_enqueued_once() {
    let Some(redis) = Redis::get("repeats").await else {
        return;
    };
    let queue = redis.queue().await;
    let store = RedisStore::connect(redis.url.as_str())
        .await
        .unwrap()
        .prefix(format!("{}:dedupe:", redis.stream));
    let http: Http = BoxCloneSyncService::new(
        ServiceBuilder::new()
            .layer(videonest::layer([SECRET]).unwrap())
            .layer(DedupeLayer::<videonest::Event, _>::new(store.clone()))
            .service(Enqueue::<videonest::Event, _>::new(queue.clone())),
    );
    let body = event("repeated");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (http, body) = (http.clone(), body.clone());
        tasks.spawn(async move { post(&http, &body).await });
    }
    let answers = tasks.join_all().await;
    assert!(
        answers
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::CONFLICT),
        "{answers:?}"
    );
    assert!(answers.contains(&StatusCode::OK), "{answers:?}");
    assert_eq!(
        xlen(&queue, queue.stream_key()).await,
        1,
        "one delivery stored"
    );
    assert_eq!(post(&http, &body).await, StatusCode::OK, "a later repeat");
    assert_eq!(xlen(&queue, queue.stream_key()).await, 1);

    let mut connection = store.connection().clone();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:dedupe:*", redis.stream))
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
    redis.clean_up().await;
}

/// With `Enqueue::deduplicate`, the first delivery of an event costs one round trip (claim and
/// store in one script), every repeat is answered 200 as a duplicate (never 409: there is no
/// in-flight state), and the event is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deduplicated_enqueue_stores_concurrent_repeats_once_in_one_round_trip() {
    let Some(server) = Server::require("push-once").await else {
        return;
    };
    let queue = RedisQueue::connect(server.url())
        .await
        .unwrap()
        .stream("push-once");
    let http = ingest_once(&queue);
    // Load the script.
    assert_eq!(post(&http, &event("warm")).await, StatusCode::OK);
    let mut monitor = Monitor::start(&server.url()).await.unwrap();
    assert_eq!(post(&http, &event("first")).await, StatusCode::OK);
    assert_eq!(monitor.commands().await, ["evalsha"], "a first delivery");

    let body = event("repeated");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (http, body) = (http.clone(), body.clone());
        tasks.spawn(async move {
            let request = videonest::signed_request(SECRET, body).unwrap();
            let response = http.oneshot(request).await.unwrap();
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
        "one stored, seven duplicates: {answers:?}"
    );
    assert_eq!(
        monitor.commands().await,
        ["evalsha"; 8],
        "one round trip each"
    );
    assert_eq!(xlen(&queue, queue.stream_key()).await, 3);

    // The stored delivery carries its key, as the records have it.
    let taken = queue.pull("w", Pull::up_to(10)).await.unwrap();
    let keys: Vec<String> = taken
        .iter()
        .map(|message| {
            let delivery = Delivery::<videonest::Event>::from_message(message).unwrap();
            delivery.key().unwrap().to_owned()
        })
        .collect();
    let mut connection = queue.connection().clone();
    for key in &keys {
        let record: Option<String> = redis::cmd("GET")
            .arg(format!("push-once:dedupe:{key}"))
            .query_async(&mut connection)
            .await
            .unwrap();
        assert_eq!(record.as_deref(), Some("v1:done"), "{key}");
    }
    assert_eq!(keys.len(), 3);
}

/// A key that a `DedupeLayer` with a `RedisStore` sharing the records has claimed is answered
/// 409 (its delivery is being handled); once the store marks it done, a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_claimed_by_a_redis_store_sharing_the_records_is_in_flight() {
    let Some(redis) = Redis::get("shared-records").await else {
        return;
    };
    let queue = redis.queue().await;
    let store = RedisStore::connect(redis.url.as_str())
        .await
        .unwrap()
        .prefix(format!("{}:dedupe:", redis.stream));
    let http = ingest_once(&queue);
    let body = event("shared");
    let key = tower_webhook::dedupe::store_key(
        "videonest",
        &tower_webhook::WebhookEvent::idempotency_key(
            &serde_json::from_str::<videonest::Event>(&body).unwrap(),
        )
        .unwrap(),
    );
    let token = Token::random();
    let claim = store.claim(&key, &token, Duration::from_secs(60)).await;
    assert_eq!(claim.unwrap(), Claim::Acquired, "a new key is free");
    assert_eq!(post(&http, &body).await, StatusCode::CONFLICT);
    store
        .complete(&key, &token, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(post(&http, &body).await, StatusCode::OK);
    assert_eq!(xlen(&queue, queue.stream_key()).await, 0, "never stored");
    // And what the queue stored, the store sees as done.
    assert_eq!(post(&http, &event("queued")).await, StatusCode::OK);
    let queued = tower_webhook::dedupe::store_key(
        "videonest",
        &tower_webhook::WebhookEvent::idempotency_key(
            &serde_json::from_str::<videonest::Event>(&event("queued")).unwrap(),
        )
        .unwrap(),
    );
    assert_eq!(
        store
            .claim(&queued, &Token::random(), Duration::from_secs(60))
            .await
            .unwrap(),
        Claim::Done
    );
    let mut connection = queue.connection().clone();
    redis::cmd("DEL")
        .arg(format!("{}:dedupe:{key}", redis.stream))
        .arg(format!("{}:dedupe:{queued}", redis.stream))
        .query_async::<()>(&mut connection)
        .await
        .unwrap();
    redis.clean_up().await;
}

/// A `DedupeLayer` with a `RedisStore` in front of `Enqueue::deduplicate` on the same records:
/// the layer deduplicates, and `Enqueue` stores what it lets through (it does not find the
/// layer's own claim and refuse every delivery).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dedupe_layer_in_front_of_a_deduplicating_enqueue_still_stores() {
    let Some(redis) = Redis::get("layered-once").await else {
        return;
    };
    let prefix = format!("{}:dedupe:", redis.stream);
    let queue = redis.queue().await.key_prefix(prefix.clone());
    let store = RedisStore::connect(redis.url.as_str())
        .await
        .unwrap()
        .prefix(prefix.clone());
    let http: Http = BoxCloneSyncService::new(
        ServiceBuilder::new()
            .layer(videonest::layer([SECRET]).unwrap())
            .layer(DedupeLayer::<videonest::Event, _>::new(store.clone()))
            .service(Enqueue::<videonest::Event, _>::new(queue.clone()).deduplicate()),
    );
    assert_eq!(post(&http, &event("layered")).await, StatusCode::OK);
    assert_eq!(post(&http, &event("layered")).await, StatusCode::OK);
    assert_eq!(xlen(&queue, queue.stream_key()).await, 1, "stored once");
    let mut connection = store.connection().clone();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
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
    redis.clean_up().await;
}

#[tokio::test]
async fn an_unreachable_redis_is_a_quick_error() {
    let port = free_port();
    let queue = RedisQueue::connect_lazy(format!("redis://127.0.0.1:{port}")).unwrap();
    let pushed = tokio::time::timeout(Duration::from_secs(10), queue.push(Bytes::from("x")))
        .await
        .expect("a quick answer");
    assert!(
        matches!(pushed, Err(QueueError::Unavailable(_))),
        "{pushed:?}"
    );
    let err = RedisQueue::connect_lazy("not a url").unwrap_err();
    assert!(matches!(err, QueueError::Unavailable(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_stream_answers_503_and_stores_nothing_more() {
    let Some(redis) = Redis::get("full").await else {
        return;
    };
    let queue = redis.queue().await.max_len(2);
    let http = ingest(&queue);
    assert_eq!(post(&http, &event("a")).await, StatusCode::OK);
    assert_eq!(post(&http, &event("b")).await, StatusCode::OK);
    assert_eq!(
        post(&http, &event("c")).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let pushed = queue.push(Bytes::from("x")).await;
    assert!(
        matches!(pushed, Err(QueueError::Full { capacity: 2 })),
        "{pushed:?}"
    );
    assert_eq!(xlen(&queue, queue.stream_key()).await, 2, "nothing trimmed");
    redis.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_few_replicas_answer_503() {
    let Some(redis) = Redis::get("replicas").await else {
        return;
    };
    // A server without replicas cannot acknowledge a write on one.
    let queue = redis
        .queue()
        .await
        .wait_for_replicas(1, Duration::from_millis(50));
    assert_eq!(
        post(&ingest(&queue), &event("a")).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let replicated = redis
        .queue()
        .await
        .wait_for_replicas(0, Duration::from_millis(50));
    assert_eq!(
        post(&ingest(&replicated), &event("b")).await,
        StatusCode::OK
    );
    redis.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_comes_back_after_its_delay_with_its_payload_and_the_next_attempt() {
    let Some(redis) = Redis::get("retry").await else {
        return;
    };
    let queue = redis.queue().await;
    queue
        .push(Bytes::from_static(b"\x00binary\xff"))
        .await
        .unwrap();
    let visibility = Duration::from_secs(30);
    let first = queue
        .pull("w", Pull::up_to(10).hidden_for(visibility))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].attempt, 1);
    queue
        .retry(&first[0], "boom", Duration::from_millis(100))
        .await
        .unwrap();
    // A stale settlement of the same delivery does nothing.
    queue.ack(&first[0]).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let second = loop {
        let pulled = queue
            .pull(
                "w",
                Pull::up_to(10)
                    .hidden_for(visibility)
                    .waiting(Duration::from_millis(50)),
            )
            .await
            .unwrap();
        if !pulled.is_empty() {
            break pulled;
        }
        assert!(
            Instant::now() < deadline,
            "the retry did not come back in 20 s"
        );
    };
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].attempt, 2);
    assert_eq!(&second[0].payload[..], b"\x00binary\xff");
    queue.ack(&second[0]).await.unwrap();
    assert!(
        queue
            .pull("w", Pull::up_to(10).hidden_for(visibility))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(xlen(&queue, queue.stream_key()).await, 0);
    redis.clean_up().await;
}

/// One round trip per push, pull, ack, retry and dead letter; an empty pull that waits adds
/// one blocking read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_round_trip_per_operation() {
    let Some(server) = Server::require("round-trips").await else {
        return;
    };
    let queue = RedisQueue::connect(server.url()).await.unwrap();
    let visibility = Duration::from_secs(30);
    let pull = |wait| queue.pull("w", Pull::up_to(10).hidden_for(visibility).waiting(wait));
    // Load the scripts and open the blocking connection.
    queue.push(Bytes::from("warm")).await.unwrap();
    let warm = pull(Duration::ZERO).await.unwrap();
    queue
        .retry(&warm[0], "e", Duration::from_secs(3600))
        .await
        .unwrap();
    queue.push(Bytes::from("warm")).await.unwrap();
    let warm = pull(Duration::ZERO).await.unwrap();
    queue.dead_letter(&warm[0], "e").await.unwrap();
    queue.push(Bytes::from("warm")).await.unwrap();
    let warm = pull(Duration::ZERO).await.unwrap();
    queue.ack(&warm[0]).await.unwrap();
    assert!(pull(Duration::from_millis(10)).await.unwrap().is_empty());
    let mut monitor = Monitor::start(&server.url()).await.unwrap();

    queue.push(Bytes::from("counted")).await.unwrap();
    assert_eq!(monitor.commands().await, ["evalsha"], "push");
    let taken = pull(Duration::from_secs(1)).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(monitor.commands().await, ["evalsha"], "pull");
    queue.ack(&taken[0]).await.unwrap();
    assert_eq!(monitor.commands().await, ["evalsha"], "ack");
    assert!(pull(Duration::from_millis(10)).await.unwrap().is_empty());
    assert_eq!(
        monitor.commands().await,
        ["evalsha", "xreadgroup"],
        "an empty pull"
    );
}

/// An entry deleted by hand while a worker held it is not delivered again, and leaves the
/// pending list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_deleted_while_pending_is_dropped_from_the_pending_list() {
    let Some(redis) = Redis::get("deleted").await else {
        return;
    };
    let queue = redis.queue().await;
    queue.push(Bytes::from("gone")).await.unwrap();
    let taken = queue
        .pull(
            "doomed",
            Pull::up_to(1).hidden_for(Duration::from_millis(1)),
        )
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    let mut connection = queue.connection().clone();
    redis::cmd("XDEL")
        .arg(queue.stream_key())
        .arg(&taken[0].id.0)
        .query_async::<()>(&mut connection)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let again = queue
        .pull(
            "survivor",
            Pull::up_to(1).hidden_for(Duration::from_millis(1)),
        )
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    let pending: (u64, redis::Value, redis::Value, redis::Value) = redis::cmd("XPENDING")
        .arg(queue.stream_key())
        .arg(queue.group_name())
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(pending.0, 0);
    redis.clean_up().await;
}

/// Two workers on two connections, four at a time each, share 200 deliveries: each is
/// processed, and nothing is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_a_backlog() {
    let Some(redis) = Redis::get("backlog").await else {
        return;
    };
    let queue = redis.queue().await;
    let http = ingest(&queue);
    let seen = Seen::default();
    let workers = [
        Running::start(Worker::new(queue.clone(), recorder(&seen))),
        Running::start(Worker::new(redis.queue().await, recorder(&seen))),
    ];
    for i in 0..200 {
        assert_eq!(
            post(&http, &event(&format!("e{i:03}"))).await,
            StatusCode::OK
        );
    }
    until("all processed", || seen.lock().unwrap().len() >= 200).await;
    for worker in workers {
        worker.stop().await;
    }
    let mut ids: Vec<String> = sorted(&seen).into_iter().map(|(id, _)| id).collect();
    ids.dedup();
    assert_eq!(ids.len(), 200);
    assert_eq!(xlen(&queue, queue.stream_key()).await, 0);
    redis.clean_up().await;
}

/// A push whose reply is lost: Redis paused for writes (`CLIENT PAUSE … WRITE`) while a delivery
/// passes a `DedupeLayer` (its records in this process) in front of a plain `Enqueue`. The push
/// waits in the connection, the client times out (503), the layer releases its claim, and the
/// push runs once the pause ends: the delivery is stored. The provider's retry is claimed again
/// and must not be stored a second time: it is answered as a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_push_reply_behind_a_dedupe_layer_stores_the_delivery_once() {
    let Some(server) = Server::require("lost-push-reply").await else {
        return;
    };
    let queue = RedisQueue::connect(server.url())
        .await
        .unwrap()
        .stream("lost-reply");
    let http: Http = BoxCloneSyncService::new(
        ServiceBuilder::new()
            .layer(videonest::layer([SECRET]).unwrap())
            .layer(DedupeLayer::<videonest::Event, _>::new(
                tower_webhook::dedupe::store::MemoryStore::new(),
            ))
            .service(Enqueue::<videonest::Event, _>::new(queue.clone())),
    );
    // The scripts are loaded before the pause.
    assert_eq!(post(&http, &event("warm")).await, StatusCode::OK);

    let body = event("lost");
    let paused = common::redis::command(server.port, "CLIENT PAUSE 2500 WRITE").unwrap();
    assert_eq!(paused, "+OK");
    assert_eq!(
        post(&http, &body).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "the push's reply did not come in time"
    );
    // The pause ends and the push runs: the delivery is stored. (Asked on a connection of
    // its own: the queue's waits behind the paused push.)
    let stored = || common::redis::command(server.port, "XLEN lost-reply").unwrap();
    until("the paused push is stored", || stored() == ":2").await;

    // The provider retries: a duplicate, not a second copy.
    let request = videonest::signed_request(SECRET, body.clone()).unwrap();
    let retry = http.clone().oneshot(request).await.unwrap();
    assert_eq!(retry.status(), StatusCode::OK);
    assert!(retry.headers().contains_key(DUPLICATE_HEADER), "{retry:?}");
    assert_eq!(stored(), ":2", "stored once");
    // And later repeats are duplicates of the layer's own record.
    assert_eq!(post(&http, &body).await, StatusCode::OK);
    assert_eq!(stored(), ":2");
}

/// With `wait_for_replicas`, a duplicate is acknowledged on the same terms as a first copy. The
/// first copy is stored but its replica is frozen (SIGSTOP): `WAIT` fails, 503. The provider's
/// retry finds the record done; answering it 200 without waiting would acknowledge a delivery
/// that a failover could lose. It waits, and is 503 too, until the replica acknowledges: then
/// it is a duplicate (the first copy is on the replica).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_waits_for_replicas_like_a_first_copy() {
    let Some(primary) = Server::require("replicated-duplicate").await else {
        return;
    };
    let Some(replica) = Server::require_replica_of("replicated-duplicate", &primary).await else {
        return;
    };
    let queue = RedisQueue::connect(primary.url())
        .await
        .unwrap()
        .stream("replicated")
        .wait_for_replicas(1, Duration::from_millis(200));
    let http = ingest_once(&queue);
    // The provider's retries reach another replica of the service: its own connection, which
    // wrote nothing of the first copy.
    let other = RedisQueue::connect(primary.url())
        .await
        .unwrap()
        .stream("replicated")
        .wait_for_replicas(1, Duration::from_millis(200));
    let http = [http, ingest_once(&other)];
    for http in &http {
        assert_eq!(post(http, &event("warm")).await, StatusCode::OK);
    }

    // The replica has acknowledged everything so far (the warm-up's writes on both
    // connections): only what comes next can be missing from it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = common::redis::info(primary.port, "replication");
        let offset = |prefix: &str| {
            info.lines()
                .find_map(|line| line.strip_prefix(prefix))
                .map(|rest| rest.trim().to_owned())
        };
        let primary_offset = offset("master_repl_offset:");
        let acknowledged = info
            .lines()
            .find_map(|line| line.strip_prefix("slave0:"))
            .and_then(|fields| {
                fields
                    .split(',')
                    .find_map(|field| field.strip_prefix("offset="))
                    .map(str::to_owned)
            });
        if primary_offset.is_some() && primary_offset == acknowledged {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replica does not catch up: {info}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let body = event("replicated");
    replica.freeze();
    assert_eq!(
        post(&http[0], &body).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "stored, but on no replica"
    );
    let [_, http] = http;
    assert_eq!(
        post(&http, &body).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "the retry is not acknowledged before a replica has the first copy"
    );
    replica.thaw();
    let request = videonest::signed_request(SECRET, body.clone()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let retry = loop {
        let retry = http.clone().oneshot(request.clone()).await.unwrap();
        if retry.status() == StatusCode::OK || Instant::now() > deadline {
            break retry;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(retry.status(), StatusCode::OK);
    assert!(retry.headers().contains_key(DUPLICATE_HEADER), "{retry:?}");
    assert_eq!(xlen(&queue, queue.stream_key()).await, 2, "stored once");
    let on_replica = common::redis::command(replica.port, "XLEN replicated").unwrap();
    assert_eq!(on_replica, ":2", "the first copy reached the replica");
}

/// What version 0.1 kept in Redis (`tests/fixtures/redis-0.1.json`) is still read after an
/// upgrade: a stream entry is processed, a dead letter listed, a done record is a duplicate to
/// `push_once`, a claim in flight; a record of a later format is refused (503), not overwritten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_0_1_kept_in_redis_is_still_read() {
    let Some(redis) = Redis::get("formats").await else {
        return;
    };
    let fixture = common::fixture("redis-0.1.json");
    let text = |value: &serde_json::Value| value.as_str().unwrap().to_owned();
    let queue = redis.queue().await;
    let mut connection = queue.connection().clone();
    let entry = &fixture["stream_entry"];
    let _: String = redis::cmd("XADD")
        .arg(queue.stream_key())
        .arg("*")
        .arg("payload")
        .arg(text(&entry["payload"]))
        .arg("attempts")
        .arg(text(&entry["attempts"]))
        .query_async(&mut connection)
        .await
        .unwrap();
    let dead = &fixture["dead_letter"];
    let _: String = redis::cmd("XADD")
        .arg(queue.dead_letter_key())
        .arg("*")
        .arg("payload")
        .arg(text(&dead["payload"]))
        .arg("error")
        .arg(text(&dead["error"]))
        .arg("attempts")
        .arg(text(&dead["attempts"]))
        .arg("id")
        .arg(text(&dead["id"]))
        .query_async(&mut connection)
        .await
        .unwrap();

    let letters = queue.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].error, text(&dead["error"]));
    assert_eq!(letters[0].attempts, 5);
    assert_eq!(letters[0].message_id.0, text(&dead["id"]));
    assert_eq!(letters[0].first_failed_at, None, "0.1 did not record it");
    assert_eq!(letters[0].replays, 0);

    let seen = Seen::default();
    let worker = Running::start(Worker::new(queue.clone(), recorder(&seen)));
    until("the 0.1 entry is processed", || {
        !seen.lock().unwrap().is_empty()
    })
    .await;
    worker.stop().await;
    assert_eq!(sorted(&seen), [("vid_fixture".to_owned(), 1)]);

    // Records, under the prefix `push_once` reads.
    let prefix = format!("{}:dedupe:", queue.stream_key());
    let once = queue.clone().key_prefix(prefix.as_str());
    for (key, value) in [
        ("old-done", text(&fixture["records"]["done"])),
        ("old-claim", text(&fixture["records"]["claim"])),
        ("later", "v9:whatever a later version keeps".to_owned()),
    ] {
        common::redis::set_for_a_minute(&mut connection, &format!("{prefix}{key}"), &value).await;
    }
    let push = |key: &'static str| {
        let once = once.clone();
        async move {
            once.push_once(key, Duration::from_secs(60), Bytes::from_static(b"{}"))
                .await
        }
    };
    assert_eq!(push("old-done").await.unwrap(), Pushed::Duplicate);
    assert_eq!(push("old-claim").await.unwrap(), Pushed::Claimed);
    let later = push("later").await;
    assert!(matches!(later, Err(QueueError::UnknownFormat)), "{later:?}");
    assert_eq!(xlen(&queue, queue.stream_key()).await, 0, "nothing stored");
    redis::cmd("DEL")
        .arg(format!("{prefix}old-done"))
        .arg(format!("{prefix}old-claim"))
        .arg(format!("{prefix}later"))
        .query_async::<()>(&mut connection)
        .await
        .unwrap();
    redis.clean_up().await;
}

/// The consumers of workers that are gone do not pile up in the group: once a dead worker's
/// entries are taken over, its consumer is removed. A live worker's consumer is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_consumers_are_removed_once_their_entries_are_claimed() {
    let Some(redis) = Redis::get("consumers").await else {
        return;
    };
    let queue = redis.queue().await;
    let http = ingest(&queue);
    for id in ["orphan", "held"] {
        assert_eq!(post(&http, &event(id)).await, StatusCode::OK);
    }
    let visibility = Duration::from_millis(200);
    // A worker takes an entry and dies.
    let dead = queue
        .pull("dead", Pull::up_to(1).hidden_for(visibility))
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    tokio::time::sleep(visibility * 2).await;
    // A live worker takes the other entry (a long call; it takes nothing over).
    let alive = queue
        .pull("alive", Pull::up_to(1).hidden_for(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(alive.len(), 1);
    let consumers = |queue: RedisQueue| async move {
        let infos: Vec<Vec<redis::Value>> = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(queue.stream_key())
            .arg(queue.group_name())
            .query_async(&mut queue.connection().clone())
            .await
            .unwrap();
        let mut names: Vec<String> = infos
            .iter()
            .map(|info| match &info[1] {
                redis::Value::BulkString(name) => String::from_utf8_lossy(name).into_owned(),
                other => panic!("{other:?}"),
            })
            .collect();
        names.sort();
        names
    };
    assert_eq!(consumers(queue.clone()).await, ["alive", "dead"]);

    // A third worker takes over the dead one's entry; the dead consumer goes, the live one
    // stays.
    let taken = queue
        .pull("successor", Pull::up_to(10).hidden_for(visibility))
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].attempt, 2);
    assert_eq!(consumers(queue.clone()).await, ["alive", "successor"]);
    for message in taken.iter().chain(&alive) {
        queue.ack(message).await.unwrap();
    }
    redis.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_queue_stats_follow_the_traffic() {
    let Some(redis) = Redis::get("stats").await else {
        return;
    };
    let queue = redis.queue().await;
    common::queue::stats_follow_the_traffic(&queue).await;
    redis.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_dead_letters_are_listed_replayed_and_purged() {
    let Some(redis) = Redis::get("dead-letters").await else {
        return;
    };
    let queue = redis.queue().await;
    common::queue::dead_letters_are_listed_replayed_and_purged(&queue).await;
    redis.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_concurrent_replays_enqueue_a_dead_letter_once() {
    let Some(redis) = Redis::get("replays").await else {
        return;
    };
    let queue = redis.queue().await;
    common::queue::concurrent_replays_enqueue_a_dead_letter_once(&queue).await;
    redis.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_a_replay_bypasses_the_dedupe_record_and_is_processed_once() {
    let Some(redis) = Redis::get("replay-dedupe").await else {
        return;
    };
    let queue = redis.queue().await;
    common::queue::a_replay_bypasses_the_dedupe_record_and_is_processed_once(queue).await;
    redis.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_replays_take_each_id_once_skip_strangers_and_go_oldest_first() {
    let Some(redis) = Redis::get("replay-ids").await else {
        return;
    };
    let queue = redis.queue().await.max_len(400);
    common::queue::replays_take_each_id_once_skip_strangers_and_go_oldest_first(&queue).await;
    redis.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_failures_are_retried_then_dead_lettered() {
    let Some(redis) = Redis::get("retried").await else {
        return;
    };
    common::queue::failures_are_retried_then_dead_lettered(redis.queue().await).await;
    redis.clean_up().await;
}

// Redis Cluster: the shared backend suite and a failover, on a private cluster of three masters
// with a replica each (redis-server and redis-cli; with CI=true their absence fails).

/// A queue on `cluster`, on a stream of its own.
fn cluster_queue(cluster: &common::redis::Cluster, name: &str) -> RedisQueue {
    RedisQueue::open(&cluster.url())
        .expect("a cluster URL")
        .stream(&format!(
            "tower-webhook-test:{name}:{}",
            Token::random().as_str()
        ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_passes_the_shared_queue_suite() {
    let Some(mut cluster) = common::redis::Cluster::require("cluster-suite", 3).await else {
        return;
    };
    let queue = cluster_queue(&cluster, "stats");
    assert!(queue.connection().is_cluster());
    common::queue::stats_follow_the_traffic(&queue).await;
    let queue = cluster_queue(&cluster, "dead-letters");
    common::queue::dead_letters_are_listed_replayed_and_purged(&queue).await;
    let queue = cluster_queue(&cluster, "replays");
    common::queue::concurrent_replays_enqueue_a_dead_letter_once(&queue).await;
    let queue = cluster_queue(&cluster, "replay-dedupe");
    common::queue::a_replay_bypasses_the_dedupe_record_and_is_processed_once(queue).await;
    let queue = cluster_queue(&cluster, "replay-ids").max_len(400);
    common::queue::replays_take_each_id_once_skip_strangers_and_go_oldest_first(&queue).await;
    let queue = cluster_queue(&cluster, "retried");
    common::queue::failures_are_retried_then_dead_lettered(queue).await;

    // Every key of a queue is in its stream's slot: a stream with a tag of its own keeps it.
    let queue = RedisQueue::open(&cluster.url())
        .unwrap()
        .stream("{billing}:webhooks");
    assert_eq!(queue.dead_letter_key(), "{billing}:webhooks:dead");
    let queue = cluster_queue(&cluster, "untagged");
    assert_eq!(
        queue.dead_letter_key(),
        format!("{{{}}}:dead", queue.stream_key())
    );

    // A master that lost its scripts (SCRIPT FLUSH, a restart) is sent them again with their
    // text, alone: a node down elsewhere in the cluster does not stop the queue.
    let queue = cluster_queue(&cluster, "no-script");
    let master = cluster.master_of(queue.stream_key(), 0).unwrap();
    let elsewhere = (0..cluster.nodes.len())
        .find(|&index| !cluster.is_master(index) && index != cluster.replica_of(master))
        .expect("a replica of another master");
    cluster.nodes[elsewhere].kill();
    let port = cluster.nodes[master].port;
    assert_eq!(common::redis::command(port, "SCRIPT FLUSH").unwrap(), "+OK");
    queue
        .push(Bytes::from_static(b"after the flush"))
        .await
        .unwrap();
    let queue = queue.wait_for_replicas(1, Duration::from_secs(1));
    assert_eq!(common::redis::command(port, "SCRIPT FLUSH").unwrap(), "+OK");
    queue.push(Bytes::from_static(b"waited")).await.unwrap();
}

/// Numbered deliveries sent to a queue in the background ([`deliver_until`]).
struct Delivering {
    stop: Arc<tokio::sync::Notify>,
    sender: tokio::task::JoinHandle<(Vec<u64>, u64)>,
}

impl Delivering {
    /// Starts sending, and lets it run half a second.
    async fn start(queue: &RedisQueue) -> Self {
        let stop = Arc::new(tokio::sync::Notify::new());
        let sender = tokio::spawn(deliver_until(queue.clone(), Arc::clone(&stop)));
        tokio::time::sleep(Duration::from_millis(500)).await;
        Self { stop, sender }
    }

    /// Stops sending: the numbers answered 200, and how many were refused.
    async fn stop(self) -> (Vec<u64>, u64) {
        self.stop.notify_one();
        self.sender.await.unwrap()
    }
}

/// Sends numbered VideoNest deliveries (`vid_0`, `vid_1`, …) through the verifying layer and
/// `Enqueue` one after another until `stop`; returns the numbers answered 200 (stored, and with
/// `wait_for_replicas` acknowledged by a replica) and how many were refused.
async fn deliver_until(queue: RedisQueue, stop: Arc<tokio::sync::Notify>) -> (Vec<u64>, u64) {
    let http = ingest(&queue);
    let (mut stored, mut failed) = (Vec::new(), 0);
    let stopped = stop.notified();
    tokio::pin!(stopped);
    for n in 0u64.. {
        let body = event(&format!("vid_{n}"));
        tokio::select! {
            () = &mut stopped => break,
            status = post(&http, &body) => {
                if status == StatusCode::OK {
                    stored.push(n);
                } else {
                    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "refused with a 503");
                    failed += 1;
                }
            }
        }
    }
    (stored, failed)
}

/// The deliveries a worker on `queue` processes: once every number of `expected` is among them,
/// or after 60 s, the numbers it saw.
async fn processed(queue: &RedisQueue, expected: &[u64]) -> std::collections::HashSet<u64> {
    let seen = Seen::default();
    let worker = Running::start(Worker::new(queue.clone(), recorder(&seen)).concurrency(16));
    let numbers = || -> std::collections::HashSet<u64> {
        seen.lock()
            .unwrap()
            .iter()
            .filter_map(|(id, _)| id.strip_prefix("vid_")?.parse().ok())
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let seen = numbers();
        if expected.iter().all(|n| seen.contains(n)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Time for a late delivery to show.
    tokio::time::sleep(Duration::from_millis(300)).await;
    worker.stop().await;
    numbers()
}

/// SIGKILL of the master that holds the queue's slot while deliveries arrive one after another
/// (verified, then `Enqueue`): its replica takes over, deliveries are answered 503 during the
/// switch (the provider retries) and 200 again after it, and with `wait_for_replicas(1, …)`
/// every delivery answered 200 is on the new master and a worker processes it. Without it, what
/// was stored but had not reached the replica when the master died is lost: the test prints how
/// many (none is usual on loopback, where replication trails by well under a millisecond).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_failover_keeps_every_push_acknowledged_by_a_replica() {
    let Some(mut cluster) = common::redis::Cluster::require("cluster-failover", 3).await else {
        return;
    };
    for wait in [true, false] {
        let mut queue = cluster_queue(&cluster, "failover");
        if wait {
            queue = queue.wait_for_replicas(1, Duration::from_millis(500));
        }
        let master = cluster
            .master_of(queue.stream_key(), 0)
            .expect("a master holds the stream");
        let replica = cluster.replica_of(master);
        let delivering = Delivering::start(&queue).await;
        cluster.nodes[master].kill();
        // Until the replica serves the slot, then more deliveries on the new master.
        cluster.until_promoted(queue.stream_key(), replica).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (stored, failed) = delivering.stop().await;
        let pulled = processed(&queue, &stored).await;
        let lost: Vec<&u64> = stored.iter().filter(|n| !pulled.contains(n)).collect();
        eprintln!(
            "wait_for_replicas: {wait}: {} deliveries stored, {failed} refused during the failover, \
             {} stored and lost",
            stored.len(),
            lost.len()
        );
        assert!(
            stored.iter().any(|&n| n > 0) && failed > 0,
            "pushes before, during and after the failover"
        );
        if wait {
            assert!(lost.is_empty(), "acknowledged pushes lost: {lost:?}");
        }
        // The old master comes back as a replica of the new one, for the next round.
        cluster.nodes[master].restart().await;
        cluster.wait_until_ok("cluster-failover", &[]).await;
    }
}

// Redis Sentinel: the shared backend suite and a failover, on a private master, its replica and
// three Sentinels.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_passes_the_shared_queue_suite() {
    let Some(sentinels) = common::redis::Sentinels::require("sentinel-suite").await else {
        return;
    };
    let queue = |name: &str| {
        RedisQueue::open(&sentinels.url())
            .expect("a Sentinel URL")
            .stream(&format!(
                "tower-webhook-test:{name}:{}",
                Token::random().as_str()
            ))
    };
    common::queue::stats_follow_the_traffic(&queue("stats")).await;
    common::queue::dead_letters_are_listed_replayed_and_purged(&queue("dead-letters")).await;
    common::queue::concurrent_replays_enqueue_a_dead_letter_once(&queue("replays")).await;
    common::queue::a_replay_bypasses_the_dedupe_record_and_is_processed_once(queue(
        "replay-dedupe",
    ))
    .await;
    common::queue::replays_take_each_id_once_skip_strangers_and_go_oldest_first(
        &queue("replay-ids").max_len(400),
    )
    .await;
    common::queue::failures_are_retried_then_dead_lettered(queue("retried")).await;
}

/// SIGKILL of the master while deliveries arrive one after another, with
/// `wait_for_replicas(1, …)`: the Sentinels promote the replica; deliveries are answered 503
/// during the switch, never 200 for one the new master lacks; once the old master is back as
/// the new one's replica, they are answered 200 again, stored on the new master, and a worker
/// processes every delivery answered 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_answers_errors_during_the_switch_and_resumes_on_the_new_master() {
    let Some(mut sentinels) = common::redis::Sentinels::require("sentinel-failover").await else {
        return;
    };
    let queue = RedisQueue::open(&sentinels.url())
        .expect("a Sentinel URL")
        .stream(&format!(
            "tower-webhook-test:failover:{}",
            Token::random().as_str()
        ))
        .wait_for_replicas(1, Duration::from_millis(500));
    let (old, new) = (sentinels.master.port, sentinels.replica.port);
    assert_eq!(sentinels.master_port(), Some(old));
    let delivering = Delivering::start(&queue).await;
    sentinels.master.kill();
    let deadline = Instant::now() + Duration::from_secs(60);
    while sentinels.master_port() != Some(new) {
        assert!(Instant::now() < deadline, "no failover in 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The old master comes back; the Sentinels make it the new master's replica.
    sentinels.master.restart().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !common::redis::info(new, "replication").contains("state=online") {
        assert!(
            Instant::now() < deadline,
            "the old master never became a replica: the Sentinels name port {:?} (old {old}, \
             new {new}); the new master's replication:\n{}",
            sentinels.master_port(),
            common::redis::info(new, "replication")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (stored, failed) = delivering.stop().await;
    let pulled = processed(&queue, &stored).await;
    let lost: Vec<&u64> = stored.iter().filter(|n| !pulled.contains(n)).collect();
    eprintln!(
        "sentinel failover: {} deliveries stored, {failed} refused during the switch, {} lost",
        stored.len(),
        lost.len()
    );
    assert!(failed > 0, "the switch is answered with errors");
    assert!(lost.is_empty(), "acknowledged pushes lost: {lost:?}");
    let last = *stored.last().expect("pushes stored");
    assert!(
        stored.iter().filter(|&&n| n > 0).count() > 1 && last > failed,
        "pushes stored after the switch"
    );
    // Every stored push is on the new master.
    assert_eq!(sentinels.master_port(), Some(new));
}

/// A stall is not an outage: the master that holds the queue's slot frozen (SIGSTOP) while
/// deliveries arrive. They are answered 503 while it is frozen and its replica not yet
/// promoted; once the replica takes over, they are stored on it and answered 200 while the old
/// master is still frozen (the client does not wait for it to wake). The test prints how many
/// of those answered 200 a worker then processes (no `wait_for_replicas` here: the frozen
/// master can take writes its replica never sees).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_stalled_master_is_routed_around_after_the_failover() {
    let Some(cluster) = common::redis::Cluster::require("cluster-stall", 3).await else {
        return;
    };
    let queue = cluster_queue(&cluster, "stall");
    let master = cluster.master_of(queue.stream_key(), 0).unwrap();
    let replica = cluster.replica_of(master);
    let delivering = Delivering::start(&queue).await;
    cluster.nodes[master].freeze();
    cluster.until_promoted(queue.stream_key(), replica).await;
    // Still frozen: what is stored now is stored on the promoted replica.
    let http = ingest(&queue);
    let promoted_at = Instant::now();
    let mut stored_after = 0;
    while stored_after < 20 {
        assert!(
            promoted_at.elapsed() < Duration::from_secs(20),
            "no delivery stored on the new master in 20 s while the old one is frozen"
        );
        if post(&http, &event("vid_while_frozen")).await == StatusCode::OK {
            stored_after += 1;
        }
    }
    cluster.nodes[master].thaw();
    let (stored, failed) = delivering.stop().await;
    eprintln!(
        "stalled master: {} deliveries stored, {failed} refused, {stored_after} stored after the failover",
        stored.len()
    );
    cluster.wait_until_ok("cluster-stall", &[]).await;
    let pulled = processed(&queue, &stored).await;
    let lost: Vec<&u64> = stored.iter().filter(|n| !pulled.contains(n)).collect();
    eprintln!("{} lost", lost.len());
}

/// A master demoted to a replica while it stays reachable (an operator's `REPLICAOF`, with no
/// Sentinel closing its clients): writes on the queue's connection to it are answered
/// `READONLY`. The connection is then forgotten and the Sentinels asked again, so the next
/// pushes go to the master they name, rather than failing until the connection breaks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_a_demoted_master_still_reachable_is_left_for_the_one_named() {
    let Some(sentinels) = common::redis::Sentinels::require("sentinel-readonly").await else {
        return;
    };
    let queue = RedisQueue::open(&sentinels.url())
        .expect("a Sentinel URL")
        .stream(&format!(
            "tower-webhook-test:readonly:{}",
            Token::random().as_str()
        ));
    queue.push(Bytes::from_static(b"before")).await.unwrap();

    let (old, new) = (sentinels.master.port, sentinels.replica.port);
    assert_eq!(
        common::redis::command(new, "REPLICAOF NO ONE").unwrap(),
        "+OK"
    );
    assert_eq!(
        common::redis::command(old, &format!("REPLICAOF 127.0.0.1 {new}")).unwrap(),
        "+OK"
    );
    sentinels.watch(new);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut refused = 0;
    loop {
        match queue.push(Bytes::from_static(b"after")).await {
            Ok(_) => break,
            Err(err) => {
                refused += 1;
                assert!(
                    Instant::now() < deadline,
                    "still refused after {refused} pushes: {err}"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused <= 2, "{refused} pushes refused");
    let len: u64 = redis::cmd("XLEN")
        .arg(queue.stream_key())
        .query_async(
            &mut redis::Client::open(format!("redis://127.0.0.1:{new}"))
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(len >= 1, "the push went to the new master");
}

/// Run by `a_lost_acknowledgement_batch_only_repeats_work` in a process of its own: a worker
/// of concurrency 8 whose service says which delivery it processes, then waits for a gate (a
/// file): the first four for `a`, the next for `b`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a child process of a_lost_acknowledgement_batch_only_repeats_work"]
async fn child_worker_waits_at_gates() {
    let (Ok(url), Ok(stream), Ok(gates)) = (
        std::env::var("TOWER_WEBHOOK_CHILD_URL"),
        std::env::var("TOWER_WEBHOOK_CHILD_STREAM"),
        std::env::var("TOWER_WEBHOOK_CHILD_GATES"),
    ) else {
        panic!("run by its parent test, with the server, stream and gates in the environment");
    };
    let queue = RedisQueue::connect(url.as_str())
        .await
        .unwrap()
        .stream(&stream);
    let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let handler = service_fn(move |delivery: Delivery<videonest::Event>| {
        let order = started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let gate = if order < 4 { "a" } else { "b" };
        let path = std::path::Path::new(&gates).join(gate);
        async move {
            let id = delivery.event().id().unwrap_or("-");
            println!("processed {id} {gate}");
            while !path.exists() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok::<_, String>(())
        }
    });
    Worker::new(queue, handler)
        .concurrency(8)
        .visibility_timeout(Duration::from_secs(2))
        .run(std::future::pending::<()>())
        .await
        .unwrap();
}

/// A worker process killed (SIGKILL) with one batch of acknowledgements sent to a stalled
/// server (SIGSTOP) and the next batch still waiting behind it: the sent batch runs when the
/// server wakes (its answer lost), the unsent one is lost. Its deliveries are processed again,
/// as attempt 2, by the next worker; nothing is lost, and nothing else is processed twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_acknowledgement_batch_only_repeats_work() {
    use std::{
        io::{BufRead, BufReader},
        process::{Command, Stdio},
    };

    let Some(server) = Server::require("lost-ack-batch").await else {
        return;
    };
    let url = server.url();
    let run = Token::random();
    let stream = format!("tower-webhook-test:queue:lost-ack-batch:{}", run.as_str());
    let queue = RedisQueue::connect(url.as_str())
        .await
        .unwrap()
        .stream(&stream);
    let http = ingest(&queue);
    // One delivery processed first, so that the server knows the scripts: a script it lacks
    // would take a second round trip, which the child does not live to send.
    let warm: Seen = Arc::default();
    let worker = Running::start(Worker::new(queue.clone(), recorder(&warm)));
    assert_eq!(post(&http, &event("warm")).await, StatusCode::OK);
    until("the warm-up delivery", || warm.lock().unwrap().len() == 1).await;
    worker.stop().await;
    let ids: Vec<String> = (0..20).map(|i| format!("vid_{i}")).collect();
    for id in &ids {
        assert_eq!(post(&http, &event(id)).await, StatusCode::OK);
    }
    let gates = std::env::temp_dir().join(format!("tower-webhook-gates-{}", run.as_str()));
    std::fs::create_dir_all(&gates).unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_worker_waits_at_gates",
            "--nocapture",
        ])
        .env("TOWER_WEBHOOK_CHILD_URL", &url)
        .env("TOWER_WEBHOOK_CHILD_STREAM", &stream)
        .env("TOWER_WEBHOOK_CHILD_GATES", &gates)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, mut processed) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("processed ")
                && let Some((id, gate)) = rest.split_once(' ')
            {
                lines.send((id.to_owned(), gate.to_owned())).ok();
            }
        }
    });
    // The child holds eight deliveries, four at each gate.
    let mut held = Vec::new();
    while held.len() < 8 {
        let line = common::guard("the child's deliveries", processed.recv()).await;
        held.push(line.expect("the child runs"));
    }
    let behind = |gate: &str| -> Vec<String> {
        let mut ids: Vec<String> = held
            .iter()
            .filter(|(_, at)| at == gate)
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    };
    let (first, second) = (behind("a"), behind("b"));
    assert_eq!((first.len(), second.len()), (4, 4), "{held:?}");

    // The server stalls; the first four finish, and their acknowledgements go out (into the
    // stalled server's socket). Then the other four finish: their acknowledgements wait for
    // the first batch's answer, in the child. The child dies there.
    server.freeze();
    std::fs::write(gates.join("a"), "").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::write(gates.join("b"), "").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    server.thaw();
    std::fs::remove_dir_all(&gates).ok();

    // The next worker processes what is left, the held deliveries once their visibility
    // timeout has run out.
    let seen: Seen = Arc::default();
    let worker = Running::start(
        Worker::new(queue.clone(), recorder(&seen)).visibility_timeout(Duration::from_secs(2)),
    );
    let empty = async {
        loop {
            let stats = queue.stats().await.unwrap();
            if stats.ready + stats.pending + stats.delayed == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), empty)
        .await
        .expect("the queue empties");
    worker.stop().await;
    let seen = sorted(&seen);

    // Nothing lost: each event is processed by the child or by the next worker.
    for id in &ids {
        let again = seen.iter().filter(|(seen, _)| seen == id).count();
        let before = usize::from(held.iter().any(|(held, _)| held == id));
        assert!(before + again >= 1, "{id} was never processed: {seen:?}");
        assert!(
            again <= 1,
            "{id} processed twice by the next worker: {seen:?}"
        );
    }
    // The unsent batch's deliveries come back, as attempt 2: their work is repeated.
    for id in &second {
        assert!(
            seen.contains(&(id.clone(), 2)),
            "{id}'s acknowledgement was never sent, yet it did not come back: {seen:?}"
        );
    }
    // The batch the server received is kept: none of it comes back (its answer was lost).
    let repeated: Vec<&String> = first
        .iter()
        .filter(|id| seen.iter().any(|(seen, _)| seen == *id))
        .collect();
    println!(
        "repeated: the unsent batch's {} deliveries, and {} of the sent one's",
        second.len(),
        repeated.len()
    );
    assert!(
        repeated.len() < first.len(),
        "{first:?} all came back: {seen:?}"
    );
    assert_eq!(xlen(&queue, &stream).await, 0);
}
