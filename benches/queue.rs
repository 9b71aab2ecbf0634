//! What the queue hand-off costs: ingest (verify → [dedupe] → `Enqueue`) and workers.
//!
//! Everything runs in process through the real stack: `videonest::layer`, optionally
//! `DedupeLayer<_, RedisStore>`, then `Enqueue` over `RedisQueue` (or `MemoryQueue` to
//! compare), or `SqliteQueue` in a file (`synchronous=FULL`: every acknowledged delivery in the
//! fsynced log; with and without `Enqueue::deduplicate`), driven with
//! `videonest::signed_request` (signing happens outside the timing).
//!
//! 1. Redis round trips per first delivery, with and without deduplication, and per delivery a
//!    worker processes, counted with `MONITOR` (commands that scripts run inside the server
//!    left out).
//! 2. criterion `ingest/*`: mean latency of one delivery, sequential.
//! 3. A table: sequential ingest p50/p99 (own timing, one request at a time), concurrent
//!    ingest (8, then 64 tasks on a 2-thread tokio runtime, a fixed number of deliveries) with
//!    deliveries/s and p50/p99, and worker throughput: the queue pre-filled with deliveries, a
//!    `Worker` with a no-op service (concurrency 4 and 16) timed until all are processed.
//!
//! Where Redis comes from: `TOWER_WEBHOOK_REDIS_URL` (e.g. `redis://127.0.0.1:6379`), else a
//! private `redis-server` (from `PATH` or `/usr/bin`) on a free port of 127.0.0.1, without
//! persistence, stopped at the end; without either only the `MemoryQueue` parts run. Round trips
//! are counted only on a server this bench may `MONITOR` (its own, or the URL's).
//! Each run uses streams and keys of its own, and deletes them.
//!
//! ```text
//! cargo bench --bench queue -- --warm-up-time 1 --measurement-time 3
//! TOWER_WEBHOOK_REDIS_URL=redis://127.0.0.1:6379 cargo bench --bench queue
//! ```
//!
//! It takes about a minute or two. The figures depend on machine load: note it with them.

#[cfg(not(all(feature = "queue", feature = "redis")))]
fn main() {
    eprintln!("benches/queue.rs needs the `queue` and `redis` features");
}

#[cfg(all(feature = "queue", feature = "redis"))]
fn main() {
    bench::main();
}

#[cfg(all(feature = "queue", feature = "redis"))]
#[path = "../tests/common/redis.rs"]
mod redis_server;

#[cfg(all(feature = "queue", feature = "redis"))]
mod bench {
    use std::{
        convert::Infallible,
        sync::{
            Arc,
            atomic::{AtomicU64, AtomicUsize, Ordering},
        },
        time::{Duration, Instant},
    };

    use bytes::Bytes;
    use criterion::Criterion;
    use http::{Request, Response, StatusCode};
    use http_body_util::Full;
    use tokio::runtime::Runtime;
    use tower::{ServiceBuilder, ServiceExt, service_fn, util::BoxCloneSyncService};
    use tower_webhook::{
        dedupe::{
            DedupeLayer,
            store::{RedisStore, Token},
        },
        provider::videonest,
        queue::{Delivery, Enqueue, MemoryQueue, RedisQueue, SqliteQueue, Worker},
    };

    use super::redis_server::{Monitor, Persistence, Server, URL_VAR, redis_server_binary};

    const SECRET: &str = "whsec_bench";
    /// Sequential deliveries timed one by one for the percentiles.
    const SEQUENTIAL: usize = 5_000;
    /// Deliveries sent by the concurrent ingest, and processed by each worker run.
    const DELIVERIES: usize = 20_000;
    /// Deliveries drained while `MONITOR` counts a worker's commands.
    const WORKER_SAMPLE: usize = 1_000;
    /// Requests in flight in the concurrent ingest: a moderate load, and a heavy one.
    const IN_FLIGHT: [usize; 2] = [8, 64];
    /// Past this many stored deliveries, criterion's loop empties the queue (outside the timing).
    const RESET_EVERY: u64 = 100_000;

    type Http = BoxCloneSyncService<Request<Full<Bytes>>, Response<Full<Bytes>>, Infallible>;

    /// A signed request for an event no earlier request (of this run) sent.
    fn fresh_request(run: &str) -> Request<Full<Bytes>> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let body = format!(
            r#"{{"event":"video.processed","timestamp":"2026-03-30T10:15:00Z","data":{{"id":"vid_{run}_{n}","status":"ready"}}}}"#
        );
        videonest::signed_request(SECRET, body).expect("valid secret")
    }

    async fn send(service: &Http, request: Request<Full<Bytes>>) {
        let response = service
            .clone()
            .oneshot(request)
            .await
            .unwrap_or_else(|e| match e {});
        assert_eq!(response.status(), StatusCode::OK);
    }

    /// One queue under test: how to build the HTTP side, a worker, and empty it.
    #[derive(Clone)]
    enum Target {
        Memory(MemoryQueue),
        /// A SQLite file (`synchronous=FULL`), with `Enqueue::deduplicate` or not.
        Sqlite {
            path: std::path::PathBuf,
            dedupe: bool,
        },
        Redis {
            url: String,
            stream: String,
            dedupe: Dedupe,
        },
    }

    /// How a Redis target deduplicates.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Dedupe {
        /// It does not.
        Off,
        /// `DedupeLayer<_, RedisStore>` in front of `Enqueue`: claim, store, complete.
        Layer,
        /// `Enqueue::deduplicate`: the queue records the key with the delivery.
        InQueue,
    }

    impl Target {
        fn name(&self) -> &'static str {
            match self {
                Self::Memory(_) => "MemoryQueue",
                Self::Sqlite { dedupe: false, .. } => "SqliteQueue (FULL)",
                Self::Sqlite { dedupe: true, .. } => "SqliteQueue, Enqueue::deduplicate",
                Self::Redis {
                    dedupe: Dedupe::Off,
                    ..
                } => "RedisQueue",
                Self::Redis {
                    dedupe: Dedupe::Layer,
                    ..
                } => "DedupeLayer(RedisStore) + RedisQueue",
                Self::Redis {
                    dedupe: Dedupe::InQueue,
                    ..
                } => "RedisQueue, Enqueue::deduplicate",
            }
        }

        async fn redis_queue(url: &str, stream: &str) -> RedisQueue {
            RedisQueue::connect(url)
                .await
                .expect("Redis reachable")
                .stream(stream)
        }

        async fn http(&self) -> Http {
            let verify = videonest::layer([SECRET]).expect("valid secret");
            match self {
                Self::Memory(queue) => BoxCloneSyncService::new(
                    ServiceBuilder::new()
                        .layer(verify)
                        .service(Enqueue::<videonest::Event, _>::new(queue.clone())),
                ),
                Self::Sqlite { path, dedupe } => {
                    let queue = SqliteQueue::open(path).await.expect("the file opens");
                    let enqueue = Enqueue::<videonest::Event, _>::new(queue);
                    if *dedupe {
                        BoxCloneSyncService::new(
                            ServiceBuilder::new()
                                .layer(verify)
                                .service(enqueue.deduplicate()),
                        )
                    } else {
                        BoxCloneSyncService::new(
                            ServiceBuilder::new().layer(verify).service(enqueue),
                        )
                    }
                }
                Self::Redis {
                    url,
                    stream,
                    dedupe,
                } => {
                    let queue = Self::redis_queue(url, stream)
                        .await
                        .key_prefix(format!("{stream}:dedupe:"));
                    let enqueue = Enqueue::<videonest::Event, _>::new(queue);
                    if *dedupe == Dedupe::InQueue {
                        BoxCloneSyncService::new(
                            ServiceBuilder::new()
                                .layer(verify)
                                .service(enqueue.deduplicate()),
                        )
                    } else if *dedupe == Dedupe::Layer {
                        let store = RedisStore::connect(url.as_str())
                            .await
                            .expect("Redis reachable")
                            .prefix(format!("{stream}:dedupe:"));
                        BoxCloneSyncService::new(
                            ServiceBuilder::new()
                                .layer(verify)
                                .layer(DedupeLayer::<videonest::Event, _>::new(store))
                                .service(enqueue),
                        )
                    } else {
                        BoxCloneSyncService::new(
                            ServiceBuilder::new().layer(verify).service(enqueue),
                        )
                    }
                }
            }
        }

        /// Deletes what is stored (the stream, its group and the dedupe records), or makes a
        /// new memory queue.
        async fn reset(&mut self) {
            match self {
                Self::Memory(queue) => *queue = MemoryQueue::new(DELIVERIES.max(1_000_000)),
                Self::Sqlite { path, .. } => {
                    for suffix in ["", "-wal", "-shm"] {
                        let mut file = path.clone().into_os_string();
                        file.push(suffix);
                        let _ = std::fs::remove_file(file);
                    }
                }
                Self::Redis { url, stream, .. } => {
                    let queue = Self::redis_queue(url, stream).await;
                    let mut connection = queue.connection().clone();
                    let mut keys: Vec<String> = redis::cmd("KEYS")
                        .arg(format!("{stream}*"))
                        .query_async(&mut connection)
                        .await
                        .expect("KEYS");
                    keys.push(stream.clone());
                    redis::cmd("DEL")
                        .arg(&keys)
                        .query_async::<()>(&mut connection)
                        .await
                        .expect("DEL");
                }
            }
        }

        /// Runs a worker with a no-op service over what is queued until `count` deliveries are
        /// processed; the time that took.
        async fn drain(&self, count: usize, concurrency: usize) -> Duration {
            let processed = Arc::new(AtomicUsize::new(0));
            let (all_done, done) = tokio::sync::oneshot::channel::<()>();
            let all_done = Arc::new(std::sync::Mutex::new(Some(all_done)));
            let service = {
                let processed = Arc::clone(&processed);
                service_fn(move |_delivery: Delivery<videonest::Event>| {
                    if processed.fetch_add(1, Ordering::Relaxed) + 1 == count
                        && let Some(all_done) = all_done.lock().unwrap().take()
                    {
                        all_done.send(()).ok();
                    }
                    async { Ok::<_, Infallible>(()) }
                })
            };
            let started = Instant::now();
            let result = match self {
                Self::Memory(queue) => {
                    Worker::new(queue.clone(), service)
                        .concurrency(concurrency)
                        .run(async {
                            done.await.ok();
                        })
                        .await
                }
                Self::Sqlite { path, .. } => {
                    Worker::new(
                        SqliteQueue::open(path).await.expect("the file opens"),
                        service,
                    )
                    .concurrency(concurrency)
                    .run(async {
                        done.await.ok();
                    })
                    .await
                }
                Self::Redis { url, stream, .. } => {
                    Worker::new(Self::redis_queue(url, stream).await, service)
                        .concurrency(concurrency)
                        .run(async {
                            done.await.ok();
                        })
                        .await
                }
            };
            let elapsed = started.elapsed();
            result.expect("worker ran");
            assert_eq!(processed.load(Ordering::Relaxed), count);
            elapsed
        }
    }

    fn percentile(sorted: &[Duration], p: f64) -> Duration {
        let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    fn micros(d: Duration) -> String {
        format!("{:.0} µs", d.as_secs_f64() * 1e6)
    }

    /// Sequential ingest: each delivery timed alone.
    async fn sequential(http: &Http, run: &str) -> Vec<Duration> {
        let mut latencies = Vec::with_capacity(SEQUENTIAL);
        for _ in 0..SEQUENTIAL {
            let request = fresh_request(run);
            let started = Instant::now();
            send(http, request).await;
            latencies.push(started.elapsed());
        }
        latencies.sort();
        latencies
    }

    /// `in_flight` tasks send `DELIVERIES` between them; the wall time and each latency.
    async fn concurrent(http: &Http, run: &str, in_flight: usize) -> (Duration, Vec<Duration>) {
        let requests: Vec<_> = (0..DELIVERIES).map(|_| fresh_request(run)).collect();
        let requests = Arc::new(std::sync::Mutex::new(requests));
        let started = Instant::now();
        let tasks: Vec<_> = (0..in_flight)
            .map(|_| {
                let http = http.clone();
                let requests = Arc::clone(&requests);
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    loop {
                        let Some(request) = requests.lock().unwrap().pop() else {
                            return latencies;
                        };
                        let sent = Instant::now();
                        send(&http, request).await;
                        latencies.push(sent.elapsed());
                    }
                })
            })
            .collect();
        let mut latencies = Vec::with_capacity(DELIVERIES);
        for task in tasks {
            latencies.extend(task.await.expect("task"));
        }
        let elapsed = started.elapsed();
        latencies.sort();
        (elapsed, latencies)
    }

    pub(super) fn main() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let run = Token::random().as_str()[..12].to_owned();
        let mut server = None;
        let url = match std::env::var(URL_VAR) {
            Ok(url) if !url.is_empty() => Some(url),
            _ => {
                server = redis_server_binary().and_then(|binary| {
                    runtime
                        .block_on(Server::launch_new(binary, Persistence::Snapshot))
                        .map_err(|err| eprintln!("{err}"))
                        .ok()
                });
                if server.is_none() {
                    eprintln!("no {URL_VAR} and no redis-server: only MemoryQueue is measured");
                }
                server.as_ref().map(Server::url)
            }
        };

        let sqlite_dir = std::env::temp_dir().join(format!("tower-webhook-bench-{run}"));
        std::fs::create_dir_all(&sqlite_dir).expect("a folder for the SQLite files");
        let mut targets = vec![
            Target::Memory(MemoryQueue::new(1_000_000)),
            Target::Sqlite {
                path: sqlite_dir.join("queue.db"),
                dedupe: false,
            },
            Target::Sqlite {
                path: sqlite_dir.join("queue-dedupe.db"),
                dedupe: true,
            },
        ];
        let redis_targets = targets.len();
        if let Some(url) = &url {
            for dedupe in [Dedupe::Off, Dedupe::Layer, Dedupe::InQueue] {
                targets.push(Target::Redis {
                    url: url.clone(),
                    stream: format!("tower-webhook-bench:{run}:{dedupe:?}"),
                    dedupe,
                });
            }
            round_trips(&runtime, url, &targets[redis_targets..], &run);
        }

        let mut criterion = Criterion::default()
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
            .configure_from_args();
        ingest_criterion(&mut criterion, &runtime, &mut targets, &run);
        criterion.final_summary();

        table(&runtime, &mut targets, &run);
        drop(server);
        let _ = std::fs::remove_dir_all(&sqlite_dir);
    }

    /// Round trips of one first delivery, and of a repeat (with dedupe).
    fn round_trips(runtime: &Runtime, url: &str, targets: &[Target], run: &str) {
        let mut monitor = match runtime.block_on(Monitor::start(url)) {
            Ok(monitor) => monitor,
            Err(err) => {
                eprintln!("cannot MONITOR the server: {err}; round trips not counted");
                return;
            }
        };
        println!("\nRedis round trips per delivery (MONITOR; commands inside scripts left out)");
        for target in targets {
            let http = runtime.block_on(target.http());
            // Loads the scripts (a first EVALSHA answers NOSCRIPT, then EVAL).
            runtime.block_on(send(&http, fresh_request(run)));
            runtime.block_on(monitor.commands());
            let request = fresh_request(run);
            let repeat = request.clone();
            runtime.block_on(send(&http, request));
            let first = runtime.block_on(monitor.commands());
            println!(
                "  {:<36} first delivery: {} {:?}",
                target.name(),
                first.len(),
                first
            );
            if matches!(
                target,
                Target::Redis {
                    dedupe: Dedupe::Off,
                    ..
                }
            ) {
                // What a worker sends per delivery: WORKER_SAMPLE queued, then drained.
                let mut target = target.clone();
                runtime.block_on(target.reset());
                let http = runtime.block_on(target.http());
                for _ in 0..WORKER_SAMPLE {
                    runtime.block_on(send(&http, fresh_request(run)));
                }
                for concurrency in [4, 16] {
                    runtime.block_on(monitor.commands());
                    runtime.block_on(target.drain(WORKER_SAMPLE, concurrency));
                    let sent = runtime.block_on(monitor.commands());
                    let mut counts = std::collections::BTreeMap::<_, usize>::new();
                    for name in &sent {
                        *counts.entry(name.as_str()).or_default() += 1;
                    }
                    println!(
                        "  {:<36} worker, concurrency {concurrency:>2}: {:.2} per delivery {counts:?} for {WORKER_SAMPLE}",
                        target.name(),
                        sent.len() as f64 / WORKER_SAMPLE as f64,
                    );
                    for _ in 0..WORKER_SAMPLE {
                        runtime.block_on(send(&http, fresh_request(run)));
                    }
                }
                runtime.block_on(target.reset());
            }
            if !matches!(
                target,
                Target::Redis {
                    dedupe: Dedupe::Off,
                    ..
                }
            ) {
                runtime.block_on(send(&http, repeat));
                let again = runtime.block_on(monitor.commands());
                println!(
                    "  {:<36} repeat:         {} {:?}",
                    target.name(),
                    again.len(),
                    again
                );
            }
        }
    }

    fn ingest_criterion(
        criterion: &mut Criterion,
        runtime: &Runtime,
        targets: &mut [Target],
        run: &str,
    ) {
        let mut group = criterion.benchmark_group("ingest");
        for target in targets.iter_mut() {
            runtime.block_on(target.reset());
            let mut http = runtime.block_on(target.http());
            let mut stored = 0;
            group.bench_function(target.name(), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        if stored >= RESET_EVERY {
                            runtime.block_on(target.reset());
                            http = runtime.block_on(target.http());
                            stored = 0;
                        }
                        let request = fresh_request(run);
                        let started = Instant::now();
                        runtime.block_on(send(&http, request));
                        total += started.elapsed();
                        stored += 1;
                    }
                    total
                });
            });
            runtime.block_on(target.reset());
        }
        group.finish();
    }

    fn table(runtime: &Runtime, targets: &mut [Target], run: &str) {
        println!(
            "\nIngest: {SEQUENTIAL} sequential deliveries (seq); {DELIVERIES} with 8 and with 64 in flight (2 runtime threads)"
        );
        println!(
            "  {:<36} {:>8} {:>8} | {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8}",
            "", "seq p50", "seq p99", "8: p50", "p99", "/s", "64: p50", "p99", "/s"
        );
        for target in targets.iter_mut() {
            runtime.block_on(target.reset());
            let http = runtime.block_on(target.http());
            let seq = runtime.block_on(sequential(&http, run));
            let mut row = format!(
                "  {:<36} {:>8} {:>8}",
                target.name(),
                micros(percentile(&seq, 0.50)),
                micros(percentile(&seq, 0.99)),
            );
            for in_flight in IN_FLIGHT {
                runtime.block_on(target.reset());
                let http = runtime.block_on(target.http());
                let (elapsed, conc) = runtime.block_on(concurrent(&http, run, in_flight));
                row += &format!(
                    " | {:>8} {:>8} {:>8.0}",
                    micros(percentile(&conc, 0.50)),
                    micros(percentile(&conc, 0.99)),
                    DELIVERIES as f64 / elapsed.as_secs_f64(),
                );
            }
            println!("{row}");
        }

        println!(
            "\nWorker: {DELIVERIES} queued deliveries, a no-op service, timed until all are processed"
        );
        for target in targets.iter_mut() {
            if !matches!(
                target,
                Target::Redis {
                    dedupe: Dedupe::Off,
                    ..
                } | Target::Sqlite { dedupe: false, .. }
            ) {
                continue; // the same queue as without dedupe
            }
            for concurrency in [4, 16] {
                runtime.block_on(target.reset());
                let http = runtime.block_on(target.http());
                runtime.block_on(concurrent(&http, run, 64));
                let elapsed = runtime.block_on(target.drain(DELIVERIES, concurrency));
                println!(
                    "  {:<36} concurrency {concurrency:>2}: {:>8.0} deliveries/s ({:.2} s)",
                    target.name(),
                    DELIVERIES as f64 / elapsed.as_secs_f64(),
                    elapsed.as_secs_f64()
                );
            }
            runtime.block_on(target.reset());
        }
    }
}
