//! A worker's deliveries pulled ahead (`Worker::prefetch`) and its batched acknowledgements:
//! a delivery held up in the worker by a slowdown is not run twice, a graceful shutdown keeps
//! the attempts of what it pulled, and a queue whose `ack_many` panics once does not turn the
//! batches off.
#![cfg(feature = "queue")]

mod common;

use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use common::SECRET;
use http::{Request, Response};
use http_body_util::Full;
use tower::{ServiceBuilder, ServiceExt, service_fn, util::BoxCloneSyncService};
use tower_webhook::{
    provider::videonest,
    queue::{Delivery, Enqueue, MemoryQueue, Queue as _, Worker},
};

/// A delivery a worker's service saw: the event, its attempt, the worker and when.
type Seen = (String, u32, &'static str, Duration);

type Http = BoxCloneSyncService<Request<Full<Bytes>>, Response<Full<Bytes>>, Infallible>;

fn ingest(queue: &MemoryQueue) -> Http {
    let enqueue = Enqueue::<videonest::Event, _>::new(queue.clone());
    BoxCloneSyncService::new(
        ServiceBuilder::new()
            .layer(videonest::layer([SECRET]).unwrap())
            .service(enqueue),
    )
}

fn event(id: &str) -> String {
    format!(r#"{{"event":"video.processed","timestamp":"t","data":{{"id":"{id}"}}}}"#)
}

async fn post(http: &Http, body: &str) {
    let request = videonest::signed_request(SECRET, body.to_owned()).unwrap();
    http.clone().oneshot(request).await.unwrap();
}

/// Every delivery takes less than the visibility timeout (700 ms of 1 s), as the docs ask; the
/// first is quick, so the worker pulls ahead (`prefetch(1)`), then the service slows down: the
/// delivery pulled ahead waits behind a slow one. It is not started that late in its timeout,
/// so it is processed once, by the next replica, not by both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_pulled_ahead_is_not_processed_twice() {
    let queue = MemoryQueue::new(100);
    let http = ingest(&queue);
    for id in ["fast-0", "slow-1", "slow-2"] {
        post(&http, &event(id)).await;
    }
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let start = Instant::now();
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
    let first = tokio::spawn(
        Worker::new(queue.clone(), service("first"))
            .concurrency(1)
            .prefetch(1)
            .visibility_timeout(Duration::from_secs(1))
            .run(shutdown(stopped.clone())),
    );
    // Another replica comes up a little later.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = tokio::spawn(
        Worker::new(queue.clone(), service("second"))
            .concurrency(1)
            .prefetch(1)
            .visibility_timeout(Duration::from_secs(1))
            .run(shutdown(stopped.clone())),
    );
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
    let http = ingest(&queue);
    for id in ["fast-0", "slow-1", "m"] {
        post(&http, &event(id)).await;
    }
    let seen: Arc<Mutex<Vec<(String, u32)>>> = Arc::default();
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

mod panicky {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower_webhook::queue::{
        DeadLetterPage, Message, MessageId, Page, Pull, Pushed, Queue, QueueFuture, QueueStats,
        Select,
    };

    /// A `MemoryQueue` whose first `ack_many` panics (a bug in a custom queue, say).
    #[derive(Clone)]
    struct Panicky {
        queue: MemoryQueue,
        many: Arc<AtomicUsize>,
        single: Arc<AtomicUsize>,
    }

    impl Queue for Panicky {
        fn push(&self, payload: Bytes) -> QueueFuture<MessageId> {
            self.queue.push(payload)
        }
        fn push_once(&self, key: &str, r: Duration, payload: Bytes) -> QueueFuture<Pushed> {
            self.queue.push_once(key, r, payload)
        }
        fn pull(&self, consumer: &str, pull: Pull) -> QueueFuture<Vec<Message>> {
            self.queue.pull(consumer, pull)
        }
        fn ack(&self, message: &Message) -> QueueFuture<()> {
            self.single.fetch_add(1, Ordering::SeqCst);
            self.queue.ack(message)
        }
        fn ack_many(&self, messages: &[Message]) -> QueueFuture<()> {
            if self.many.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("a bug in ack_many");
            }
            self.queue.ack_many(messages)
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

    /// One panic in `ack_many` fails that batch only (its deliveries send their own
    /// acknowledgement): the later ones still go in batches.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_panic_in_ack_many_disables_batching_for_good() {
        let queue = Panicky {
            queue: MemoryQueue::new(100),
            many: Arc::default(),
            single: Arc::default(),
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
        let (many, single) = (
            queue.many.load(Ordering::SeqCst),
            queue.single.load(Ordering::SeqCst),
        );
        assert!(queue.queue.is_empty());
        assert!(
            single <= 1,
            "{single} acks sent alone after a failure; ack_many {many}"
        );
    }
}
