//! What the queue hand-off costs: ingest (verify → [dedupe] → `Enqueue`) and workers.
//!
//! Everything runs in process through the real stack: `videonest::layer`, optionally
//! `DedupeLayer<_, RedisStore>`, then `Enqueue` over `RedisQueue` (or `MemoryQueue` to
//! compare), or `SqliteQueue` in a file (`synchronous=FULL`: every acknowledged delivery in the
//! fsynced log; with and without `Enqueue::deduplicate`), or `PostgresQueue` (feature
//! `postgres`; `synchronous_commit=on`, `fsync=on`: every acknowledged delivery committed and
//! flushed; without deduplication, with `Enqueue::deduplicate`, and behind
//! `DedupeLayer<_, PostgresStore>`; on the default pool of 16 connections and on one of 64),
//! driven with `videonest::signed_request` (signing happens outside the timing).
//!
//! 1. Redis round trips per first delivery, with and without deduplication, and per delivery a
//!    worker processes, counted with `MONITOR` (commands that scripts run inside the server
//!    left out).
//! 2. criterion `ingest/*`: mean latency of one delivery, sequential.
//! 3. A table: sequential ingest p50/p99 (own timing, one request at a time), concurrent
//!    ingest (8, then 64 tasks on a 2-thread tokio runtime, a fixed number of deliveries) with
//!    deliveries/s and p50/p99, and worker throughput: the queue pre-filled with deliveries, a
//!    `Worker` with a no-op service (concurrency 4 and 16) timed until all are processed.
//! 4. PostgreSQL: what each delivery of the 64-in-flight ingest and of the worker runs cost,
//!    from the server's statistics (transactions committed, WAL bytes, WAL flushes: how many
//!    commits shared one), the CPU time of this process and of the server (its processes' run
//!    time, when the server is the bench's own) against the machine's, and what the bench's
//!    backends were doing (`pg_stat_activity` sampled every 25 ms: running, waiting for a WAL
//!    flush, a row lock, or the bench).
//!
//! Where Redis comes from: `TOWER_WEBHOOK_REDIS_URL` (e.g. `redis://127.0.0.1:6379`), else a
//! private `redis-server` (from `PATH` or `/usr/bin`) on a free port of 127.0.0.1, without
//! persistence, stopped at the end; without either only the `MemoryQueue` parts run. Round trips
//! are counted only on a server this bench may `MONITOR` (its own, or the URL's). With
//! `redis-server` and `redis-cli`, the Redis Cluster rows (`… on a cluster`: ingest without
//! deduplication and with `Enqueue::deduplicate`, and the worker) run on a private cluster of
//! three masters with a replica each, `redis+cluster://` through `RedisQueue::open`.
//! Each run uses streams and keys of its own, and deletes them.
//!
//! Where PostgreSQL comes from (feature `postgres`): `TOWER_WEBHOOK_POSTGRES_URL` (e.g.
//! `postgres://postgres@127.0.0.1:5432/postgres`), else a private server in a cluster of its
//! own (`tests/common/postgres.rs`: `initdb` and `postgres` from `TOWER_WEBHOOK_POSTGRES_BIN`,
//! the `PATH` or `/usr/lib/postgresql/<N>/bin`; `fsync=on`, `synchronous_commit=on`), removed
//! at the end; without either the PostgreSQL rows are left out. The bench prints the server's
//! version and durability settings. Each target works in a schema of its own, dropped at the
//! end.
//!
//! ```text
//! cargo bench --bench queue -- --warm-up-time 1 --measurement-time 3
//! TOWER_WEBHOOK_REDIS_URL=redis://127.0.0.1:6379 cargo bench --bench queue
//! TOWER_WEBHOOK_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench queue
//! ```
//!
//! It takes about three minutes (one or two without PostgreSQL). The figures depend on machine
//! load: note it with them. `TOWER_WEBHOOK_BENCH_PART=workers` runs the workers' rows alone.

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

#[cfg(all(feature = "queue", feature = "redis", feature = "postgres"))]
#[path = "../tests/common/postgres.rs"]
mod postgres_server;

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

    use super::redis_server::{
        Cluster, Monitor, Persistence, Server, URL_VAR, redis_server_binary,
    };

    /// ` on a cluster` for a Redis Cluster's URL.
    fn on_cluster(url: &str) -> &'static str {
        if url.starts_with("redis+cluster://") {
            " on a cluster"
        } else {
            ""
        }
    }

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
    /// The width of the targets' names in the tables.
    const NAME: usize = 48;

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
        /// A schema of its own on the PostgreSQL server, on a pool of `pool` connections.
        #[cfg(feature = "postgres")]
        Postgres(pg::Target),
    }

    /// How a Redis or PostgreSQL target deduplicates.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Dedupe {
        /// It does not.
        Off,
        /// `DedupeLayer<_, RedisStore>` (`PostgresStore`) in front of `Enqueue`: claim, store,
        /// complete.
        Layer,
        /// `Enqueue::deduplicate`: the queue records the key with the delivery.
        InQueue,
    }

    impl Target {
        fn name(&self) -> String {
            match self {
                Self::Memory(_) => "MemoryQueue".to_owned(),
                Self::Sqlite { dedupe: false, .. } => "SqliteQueue (FULL)".to_owned(),
                Self::Sqlite { dedupe: true, .. } => "SqliteQueue, Enqueue::deduplicate".to_owned(),
                Self::Redis {
                    dedupe: Dedupe::Off,
                    url,
                    ..
                } => format!("RedisQueue{}", on_cluster(url)),
                Self::Redis {
                    dedupe: Dedupe::Layer,
                    url,
                    ..
                } => format!("DedupeLayer(RedisStore) + RedisQueue{}", on_cluster(url)),
                Self::Redis {
                    dedupe: Dedupe::InQueue,
                    url,
                    ..
                } => format!("RedisQueue, Enqueue::deduplicate{}", on_cluster(url)),
                #[cfg(feature = "postgres")]
                Self::Postgres(target) => target.name(),
            }
        }

        /// Whether it is a queue without deduplication (the worker rows: deduplication
        /// changes only how deliveries are stored).
        fn plain(&self) -> bool {
            match self {
                Self::Memory(_) => false,
                Self::Sqlite { dedupe, .. } => !dedupe,
                Self::Redis { dedupe, .. } => *dedupe == Dedupe::Off,
                #[cfg(feature = "postgres")]
                Self::Postgres(target) => target.dedupe == Dedupe::Off,
            }
        }

        async fn redis_queue(url: &str, stream: &str) -> RedisQueue {
            RedisQueue::open(url).expect("a Redis URL").stream(stream)
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
                        let store = RedisStore::open(url.as_str())
                            .expect("a Redis URL")
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
                #[cfg(feature = "postgres")]
                Self::Postgres(target) => target.http(),
            }
        }

        /// Deletes what is stored (the stream, its group and the dedupe records; the files;
        /// the schema's rows), or makes a new memory queue.
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
                    // On a cluster, the stream's other keys start with `{<stream>}`.
                    let mut keys: Vec<String> = redis::cmd("KEYS")
                        .arg(format!("*{stream}*"))
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
                #[cfg(feature = "postgres")]
                Self::Postgres(target) => target.reset().await,
            }
        }

        /// Done with this target for now: a PostgreSQL target closes its idle connections, so
        /// that the targets' pools together never hold more than one target's.
        fn idle(&self) {
            #[cfg(feature = "postgres")]
            if let Self::Postgres(target) = self {
                target.idle();
            }
        }

        /// Runs a worker with a no-op service (pulling ahead up to its concurrency,
        /// `Worker::prefetch`) over what is queued until `count` deliveries are processed; the
        /// time that took.
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
                        .prefetch(concurrency)
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
                    .prefetch(concurrency)
                    .run(async {
                        done.await.ok();
                    })
                    .await
                }
                Self::Redis { url, stream, .. } => {
                    Worker::new(Self::redis_queue(url, stream).await, service)
                        .concurrency(concurrency)
                        .prefetch(concurrency)
                        .run(async {
                            done.await.ok();
                        })
                        .await
                }
                #[cfg(feature = "postgres")]
                Self::Postgres(target) => {
                    Worker::new(target.queue(), service)
                        .concurrency(concurrency)
                        .prefetch(concurrency)
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

    /// `DELIVERIES` signed requests, for [`concurrent`].
    fn signed(run: &str) -> Vec<Request<Full<Bytes>>> {
        (0..DELIVERIES).map(|_| fresh_request(run)).collect()
    }

    /// `in_flight` tasks send `requests` between them; the wall time and each latency.
    async fn concurrent(
        http: &Http,
        requests: Vec<Request<Full<Bytes>>>,
        in_flight: usize,
    ) -> (Duration, Vec<Duration>) {
        let count = requests.len();
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
        let mut latencies = Vec::with_capacity(count);
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
        let workers_only =
            std::env::var("TOWER_WEBHOOK_BENCH_PART").is_ok_and(|part| part == "workers");
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
            if !workers_only {
                round_trips(&runtime, url, &targets[redis_targets..], &run);
            }
        }
        // A private Redis Cluster (three masters, a replica each): a queue's keys share one
        // slot, so its traffic goes to one master, over the cluster client.
        let cluster = runtime.block_on(Cluster::require("bench", 3));
        if let Some(cluster) = &cluster {
            for dedupe in [Dedupe::Off, Dedupe::InQueue] {
                targets.push(Target::Redis {
                    url: cluster.url(),
                    stream: format!("tower-webhook-bench:{run}:cluster:{dedupe:?}"),
                    dedupe,
                });
            }
        }
        #[cfg(feature = "postgres")]
        let postgres = pg::Postgres::start(&runtime, &mut targets);

        let mut criterion = Criterion::default()
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
            .configure_from_args();
        if !workers_only {
            ingest_criterion(&mut criterion, &runtime, &mut targets, &run);
            criterion.final_summary();
            ingest_table(&runtime, &mut targets, &run);
        }
        worker_table(&runtime, &mut targets, &run);
        #[cfg(feature = "postgres")]
        if let Some(postgres) = postgres {
            postgres.finish(&runtime, targets);
        }
        drop(server);
        drop(cluster);
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
            if target.plain() {
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
            } else {
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
            target.idle();
        }
        group.finish();
    }

    fn ingest_table(runtime: &Runtime, targets: &mut [Target], run: &str) {
        println!(
            "\nIngest: {SEQUENTIAL} sequential deliveries (seq); {DELIVERIES} with 8 and with 64 in flight (2 runtime threads)"
        );
        println!(
            "  {:<NAME$} {:>8} {:>8} | {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8}",
            "", "seq p50", "seq p99", "8: p50", "p99", "/s", "64: p50", "p99", "/s"
        );
        // What each delivery of the 64-in-flight ingest cost PostgreSQL, printed after.
        let mut costs = Vec::new();
        for target in targets.iter_mut() {
            runtime.block_on(target.reset());
            let http = runtime.block_on(target.http());
            let seq = runtime.block_on(sequential(&http, run));
            let mut row = format!(
                "  {:<NAME$} {:>8} {:>8}",
                target.name(),
                micros(percentile(&seq, 0.50)),
                micros(percentile(&seq, 0.99)),
            );
            for in_flight in IN_FLIGHT {
                runtime.block_on(target.reset());
                let http = runtime.block_on(target.http());
                let requests = signed(run);
                let ingest = || runtime.block_on(concurrent(&http, requests, in_flight));
                let (elapsed, conc) = if in_flight == 64 {
                    let (elapsed, conc, cost) =
                        costed(runtime, target, target.name(), DELIVERIES, ingest);
                    costs.extend(cost);
                    (elapsed, conc)
                } else {
                    ingest()
                };
                row += &format!(
                    " | {:>8} {:>8} {:>8.0}",
                    micros(percentile(&conc, 0.50)),
                    micros(percentile(&conc, 0.99)),
                    DELIVERIES as f64 / elapsed.as_secs_f64(),
                );
            }
            println!("{row}");
            target.idle();
        }
        print_costs("per delivery of the 64-in-flight ingest above", &costs);
    }

    fn worker_table(runtime: &Runtime, targets: &mut [Target], run: &str) {
        println!(
            "\nWorker: {DELIVERIES} queued deliveries, a no-op service, timed until all are processed"
        );
        let mut costs = Vec::new();
        for target in targets.iter_mut() {
            if !target.plain() {
                continue; // the same queue as without dedupe
            }
            for concurrency in [4, 16] {
                runtime.block_on(target.reset());
                let http = runtime.block_on(target.http());
                runtime.block_on(concurrent(&http, signed(run), 64));
                let drain = || (runtime.block_on(target.drain(DELIVERIES, concurrency)), ());
                let label = format!("{}, concurrency {concurrency}", target.name());
                let (elapsed, (), cost) = costed(runtime, target, label, DELIVERIES, drain);
                costs.extend(cost);
                println!(
                    "  {:<NAME$} concurrency {concurrency:>2}: {:>8.0} deliveries/s ({:.2} s)",
                    target.name(),
                    DELIVERIES as f64 / elapsed.as_secs_f64(),
                    elapsed.as_secs_f64()
                );
            }
            runtime.block_on(target.reset());
            target.idle();
        }
        print_costs("per delivery the worker processed", &costs);
    }

    /// Runs `work`, which returns its wall time; on a PostgreSQL target, also what each of the
    /// `count` deliveries it handled cost the server and the machine, as lines to print under
    /// `label`.
    fn costed<T>(
        runtime: &Runtime,
        target: &Target,
        label: String,
        count: usize,
        work: impl FnOnce() -> (Duration, T),
    ) -> (Duration, T, Option<String>) {
        #[cfg(feature = "postgres")]
        if let Target::Postgres(postgres) = target {
            let probe = runtime.block_on(postgres.probe());
            let (elapsed, out) = work();
            let cost = runtime.block_on(probe.cost(postgres, elapsed, count));
            return (elapsed, out, Some(format!("  {label:<NAME$} {cost}")));
        }
        #[cfg(not(feature = "postgres"))]
        let _ = (runtime, target, label, count);
        let (elapsed, out) = work();
        (elapsed, out, None)
    }

    fn print_costs(what: &str, costs: &[String]) {
        #[cfg(feature = "postgres")]
        if !costs.is_empty() {
            println!("\nPostgreSQL, {what} ({})", pg::COST_LEGEND);
            for cost in costs {
                println!("{cost}");
            }
        }
        #[cfg(not(feature = "postgres"))]
        let _ = (what, costs);
    }

    /// The PostgreSQL targets (feature `postgres`).
    #[cfg(feature = "postgres")]
    mod pg {
        use std::{
            collections::{BTreeMap, HashMap},
            sync::Arc,
            time::Duration,
        };

        use tokio::runtime::Runtime;
        use tower::{ServiceBuilder, util::BoxCloneSyncService};
        use tower_webhook::{
            dedupe::{DedupeLayer, store::PostgresStore},
            postgres::{
                DEFAULT_POOL_SIZE, Postgres as Database,
                tokio_postgres::{self, NoTls, SimpleQueryMessage},
            },
            provider::videonest,
            queue::{Enqueue, PostgresQueue},
        };

        use super::{Dedupe, Http, SECRET};
        use crate::postgres_server::{Server, URL_VAR, schema_name};

        /// The targets: each way of deduplicating on the default pool (`Postgres::connect`),
        /// and the queue alone and deduplicating on a pool with a connection for each of the 64
        /// requests in flight (`Postgres::on` with a pool of the bench's own).
        const TARGETS: [(usize, Dedupe); 5] = [
            (DEFAULT_POOL_SIZE, Dedupe::Off),
            (DEFAULT_POOL_SIZE, Dedupe::InQueue),
            (DEFAULT_POOL_SIZE, Dedupe::Layer),
            (64, Dedupe::Off),
            (64, Dedupe::InQueue),
        ];

        /// How long the server is given to have its statistics reported once the pool's
        /// connections are closed (a backend reports as it exits; the WAL writer, within a
        /// second).
        const REPORTED: Duration = Duration::from_millis(1_200);

        /// How often the backends' waits are sampled during a run.
        const WAIT_SAMPLE: Duration = Duration::from_millis(25);

        /// The `application_name` of the bench's connections, whose waits are sampled.
        const APPLICATION: &str = "tower_webhook_bench";

        pub(super) const COST_LEGEND: &str = "commits of the whole database (pg_stat_database), \
            WAL bytes (LSN) and flushes (pg_stat_wal.wal_sync); CPU time of this process and of \
            the server's processes (the bench's own server only), how busy the machine was; what \
            the bench's backends were doing, sampled every 25 ms (pg_stat_activity: running, or \
            their wait event; Client:ClientRead is a connection waiting for the bench)";

        /// One target: a schema of its own, on a pool of `pool` connections.
        #[derive(Clone)]
        pub(super) struct Target {
            database: Database,
            /// The server's URL, with the bench's `application_name`.
            url: String,
            pool: usize,
            pub(super) dedupe: Dedupe,
            server: Option<Arc<Server>>,
        }

        impl Target {
            pub(super) fn name(&self) -> String {
                let queue = match self.dedupe {
                    Dedupe::Off => "PostgresQueue",
                    Dedupe::InQueue => "PostgresQueue, Enqueue::deduplicate",
                    Dedupe::Layer => "DedupeLayer(PostgresStore) + PostgresQueue",
                };
                format!("{queue} (pool {})", self.pool)
            }

            pub(super) fn queue(&self) -> PostgresQueue {
                PostgresQueue::new(&self.database)
            }

            pub(super) fn http(&self) -> Http {
                let verify = videonest::layer([SECRET]).expect("valid secret");
                let enqueue = Enqueue::<videonest::Event, _>::new(self.queue());
                match self.dedupe {
                    Dedupe::Off => BoxCloneSyncService::new(
                        ServiceBuilder::new().layer(verify).service(enqueue),
                    ),
                    Dedupe::InQueue => BoxCloneSyncService::new(
                        ServiceBuilder::new()
                            .layer(verify)
                            .service(enqueue.deduplicate()),
                    ),
                    Dedupe::Layer => BoxCloneSyncService::new(
                        ServiceBuilder::new()
                            .layer(verify)
                            .layer(DedupeLayer::<videonest::Event, _>::new(PostgresStore::new(
                                &self.database,
                            )))
                            .service(enqueue),
                    ),
                }
            }

            /// Empties the schema's tables (their counts with them), then opens the pool's
            /// connections.
            pub(super) async fn reset(&self) {
                let schema = self.database.schema();
                let client = self.database.pool().get().await.expect("a connection");
                client
                    .batch_execute(&format!(
                        "TRUNCATE \"{schema}\".queue, \"{schema}\".dedupe, \"{schema}\".dead, \
                         \"{schema}\".counts"
                    ))
                    .await
                    .expect("TRUNCATE");
                drop(client);
                self.warm().await;
            }

            /// Opens the pool's connections, so that no timed run waits for one to be made.
            async fn warm(&self) {
                let mut connecting = tokio::task::JoinSet::new();
                for _ in 0..self.pool {
                    let pool = self.database.pool().clone();
                    connecting.spawn(async move { pool.get().await.expect("a connection") });
                }
                // All held at once, then all back to the pool.
                let mut clients = Vec::with_capacity(self.pool);
                while let Some(client) = connecting.join_next().await {
                    clients.push(client.expect("connected"));
                }
            }

            /// Closes the pool's idle connections.
            pub(super) fn idle(&self) {
                self.database.pool().retain(|_, _| false);
            }

            /// The server's counters once earlier work is reported, and the CPU times now; then
            /// samples what the bench's backends wait for until [`Probe::cost`].
            pub(super) async fn probe(&self) -> Probe {
                let stats = self.stats().await;
                // The connections `stats` closed, opened again for the run.
                self.warm().await;
                let (stop, stopped) = tokio::sync::oneshot::channel();
                let waits = tokio::spawn(waits(self.url.clone(), stopped));
                Probe {
                    stats,
                    cpu: Cpu::now(self.server.as_deref()),
                    waits: (stop, waits),
                }
            }

            /// The server's counters, once every backend of the pool has reported its own: a
            /// backend reports at most once a second, and at once when it exits, so the pool's
            /// idle connections are closed first.
            async fn stats(&self) -> Stats {
                self.idle();
                tokio::time::sleep(REPORTED).await;
                let client = self.database.pool().get().await.expect("a connection");
                let row = client
                    .query_one(
                        "SELECT xact_commit, \
                         pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8 \
                         FROM pg_stat_database WHERE datname = current_database()",
                        &[],
                    )
                    .await
                    .expect("pg_stat_database");
                // PostgreSQL 14 and later.
                let wal_flushes = client
                    .query_opt("SELECT wal_sync FROM pg_stat_wal", &[])
                    .await
                    .ok()
                    .flatten()
                    .map(|row| row.get::<_, i64>(0));
                Stats {
                    commits: row.get(0),
                    wal_bytes: row.get(1),
                    wal_flushes,
                }
            }
        }

        /// Samples, every [`WAIT_SAMPLE`], what the bench's backends are waiting for
        /// (`pg_stat_activity`; `running` when they are not), on a connection of its own, until
        /// `stop`; how often each was seen.
        async fn waits(
            url: String,
            mut stop: tokio::sync::oneshot::Receiver<()>,
        ) -> BTreeMap<String, usize> {
            let mut seen = BTreeMap::new();
            let Ok((client, connection)) = tokio_postgres::connect(&url, NoTls).await else {
                return seen;
            };
            tokio::spawn(connection);
            let Ok(statement) = client
                .prepare(
                    "SELECT coalesce(wait_event_type || ':' || wait_event, 'running') \
                     FROM pg_stat_activity WHERE application_name = $1 \
                     AND pid <> pg_backend_pid() AND query NOT LIKE 'LISTEN %'",
                )
                .await
            else {
                return seen;
            };
            let mut every = tokio::time::interval(WAIT_SAMPLE);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    _ = &mut stop => return seen,
                }
                // A snapshot of the activity, taken afresh by each statement.
                if let Ok(rows) = client.query(&statement, &[&APPLICATION]).await {
                    for row in rows {
                        *seen.entry(row.get::<_, String>(0)).or_default() += 1;
                    }
                }
            }
        }

        /// What the server had done, and the CPU times, before a run, and the sampling of its
        /// waits during it.
        pub(super) struct Probe {
            stats: Stats,
            cpu: Cpu,
            waits: (
                tokio::sync::oneshot::Sender<()>,
                tokio::task::JoinHandle<BTreeMap<String, usize>>,
            ),
        }

        impl Probe {
            /// Per delivery of the run that took `elapsed` for `deliveries` since this probe.
            pub(super) async fn cost(
                self,
                target: &Target,
                elapsed: Duration,
                deliveries: usize,
            ) -> String {
                let cpu = Cpu::now(target.server.as_deref());
                let (stop, waits) = self.waits;
                let _ = stop.send(());
                let waits = waits.await.unwrap_or_default();
                let stats = target.stats().await;
                let n = deliveries as f64;
                let commits = (stats.commits - self.stats.commits) as f64;
                let mut text = format!(
                    "{:.2} commits, {:.0} B of WAL",
                    commits / n,
                    (stats.wal_bytes - self.stats.wal_bytes) / n,
                );
                if let (Some(after), Some(before)) = (stats.wal_flushes, self.stats.wal_flushes) {
                    let flushes = (after - before) as f64;
                    text += &format!(
                        ", {:.3} WAL flushes ({:.1} commits a flush)",
                        flushes / n,
                        commits / flushes.max(1.0)
                    );
                }
                let micros = |d: Duration| d.as_secs_f64() * 1e6 / n;
                let client = cpu.client.saturating_sub(self.cpu.client);
                text += &format!("\n      CPU per delivery: client {:.1} µs", micros(client));
                let mut ours = Some(client);
                match (&cpu.server, &self.cpu.server) {
                    (Some(after), Some(before)) => {
                        let server: Duration = after
                            .iter()
                            .map(|(pid, time)| {
                                time.saturating_sub(before.get(pid).copied().unwrap_or_default())
                            })
                            .sum();
                        text += &format!(", server {:.1} µs", micros(server));
                        ours = ours.map(|client| client + server);
                    }
                    _ => ours = None,
                }
                if let (Some((busy, total)), Some((busy_0, total_0))) =
                    (cpu.machine, self.cpu.machine)
                {
                    let cores = std::thread::available_parallelism().map_or(1, usize::from);
                    let busy = (busy - busy_0) as f64 / (total - total_0).max(1) as f64;
                    text += &format!(
                        "; the machine {:.0}% busy ({cores} cores, {:.2} s)",
                        100.0 * busy,
                        elapsed.as_secs_f64()
                    );
                    if let Some(ours) = ours {
                        // What the bench and its server did not use of the busy time.
                        let others =
                            busy - ours.as_secs_f64() / (elapsed.as_secs_f64() * cores as f64);
                        text += &format!(", other processes {:.0}%", 100.0 * others.max(0.0));
                    }
                }
                let samples: usize = waits.values().sum();
                if samples > 0 {
                    let mut waits: Vec<_> = waits.into_iter().collect();
                    waits.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
                    let shares: Vec<String> = waits
                        .iter()
                        .take(6)
                        .map(|(wait, count)| {
                            format!("{wait} {:.0}%", 100.0 * *count as f64 / samples as f64)
                        })
                        .collect();
                    text += &format!("\n      backends: {}", shares.join(", "));
                }
                text
            }
        }

        /// The server's counters.
        struct Stats {
            commits: i64,
            wal_bytes: f64,
            wal_flushes: Option<i64>,
        }

        /// CPU time: this process's threads, the server's processes (when it is the bench's
        /// own), and the machine's busy and total ticks.
        struct Cpu {
            client: Duration,
            server: Option<HashMap<u32, Duration>>,
            machine: Option<(u64, u64)>,
        }

        impl Cpu {
            fn now(server: Option<&Server>) -> Self {
                let client = std::fs::read_dir("/proc/self/task")
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter_map(|task| run_time(&task.path().join("schedstat")))
                    .sum();
                let server = server.map(|server| {
                    server
                        .pids()
                        .into_iter()
                        .filter_map(|pid| {
                            Some((pid, run_time(format!("/proc/{pid}/schedstat").as_ref())?))
                        })
                        .collect()
                });
                // `cpu  user nice system idle iowait irq softirq steal …`
                let machine = std::fs::read_to_string("/proc/stat").ok().and_then(|stat| {
                    let ticks: Vec<u64> = stat
                        .lines()
                        .next()?
                        .split_whitespace()
                        .skip(1)
                        .take(8)
                        .map(|n| n.parse().ok())
                        .collect::<Option<_>>()?;
                    let total: u64 = ticks.iter().sum();
                    Some((total - ticks.get(3)? - ticks.get(4)?, total))
                });
                Self {
                    client,
                    server,
                    machine,
                }
            }
        }

        /// The time a thread or process has run, from its `schedstat` (nanoseconds first).
        fn run_time(schedstat: &std::path::Path) -> Option<Duration> {
            let text = std::fs::read_to_string(schedstat).ok()?;
            Some(Duration::from_nanos(
                text.split_whitespace().next()?.parse().ok()?,
            ))
        }

        /// The server, and the schemas of the targets on it.
        pub(super) struct Postgres {
            url: String,
            schemas: Vec<String>,
            server: Option<Arc<Server>>,
        }

        impl Postgres {
            /// The server of `TOWER_WEBHOOK_POSTGRES_URL`, else a private one; its settings
            /// printed, and the [`TARGETS`] added to `targets`. `None` without a server.
            pub(super) fn start(
                runtime: &Runtime,
                targets: &mut Vec<super::Target>,
            ) -> Option<Self> {
                let (url, server) = match std::env::var(URL_VAR) {
                    Ok(url) if !url.is_empty() => (url, None),
                    _ => {
                        let server = runtime.block_on(Server::require("benches/queue.rs"))?;
                        (server.url(), Some(Arc::new(server)))
                    }
                };
                runtime.block_on(settings(&url, server.is_some()));
                // The bench's connections, told apart from others in `pg_stat_activity`.
                let separator = if url.contains('?') { '&' } else { '?' };
                let url = format!("{url}{separator}application_name={APPLICATION}");
                let mut postgres = Self {
                    url,
                    schemas: Vec::new(),
                    server,
                };
                for (pool, dedupe) in TARGETS {
                    let schema = schema_name(&format!("bench_queue_{pool}_{dedupe:?}"));
                    let database = runtime.block_on(open(&postgres.url, &schema, pool));
                    postgres.schemas.push(schema);
                    let target = Target {
                        database,
                        url: postgres.url.clone(),
                        pool,
                        dedupe,
                        server: postgres.server.clone(),
                    };
                    target.idle();
                    targets.push(super::Target::Postgres(target));
                }
                Some(postgres)
            }

            /// Closes the targets' pools, and drops their schemas (on the URL's server) or
            /// stops the private server.
            pub(super) fn finish(self, runtime: &Runtime, targets: Vec<super::Target>) {
                drop(targets);
                if self.server.is_none() {
                    runtime.block_on(async {
                        let (client, connection) = tokio_postgres::connect(&self.url, NoTls)
                            .await
                            .expect("PostgreSQL reachable");
                        tokio::spawn(connection);
                        for schema in &self.schemas {
                            let dropped = client
                                .batch_execute(&format!(
                                    "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
                                ))
                                .await;
                            if let Err(err) = dropped {
                                eprintln!("schema {schema} is left on the server: {err}");
                            }
                        }
                    });
                }
            }
        }

        /// Prints the server's version and durability settings (`SHOW`), and says when a
        /// commit is not flushed before it is acknowledged.
        async fn settings(url: &str, private: bool) {
            let (client, connection) = tokio_postgres::connect(url, NoTls)
                .await
                .expect("PostgreSQL reachable");
            tokio::spawn(connection);
            let mut values = Vec::new();
            for name in [
                "server_version",
                "synchronous_commit",
                "fsync",
                "wal_sync_method",
                "full_page_writes",
                "commit_delay",
                "shared_buffers",
                "max_connections",
            ] {
                let value = client
                    .simple_query(&format!("SHOW {name}"))
                    .await
                    .expect("SHOW")
                    .into_iter()
                    .find_map(|message| match message {
                        SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
                        _ => None,
                    })
                    .unwrap_or_default();
                values.push((name, value));
            }
            let shown: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!(
                "\nPostgreSQL ({}): {}",
                if private {
                    "a private server of the bench's own"
                } else {
                    URL_VAR
                },
                shown.join(", ")
            );
            let value = |name| {
                values
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.as_str())
            };
            if value("synchronous_commit") != Some("on") || value("fsync") != Some("on") {
                eprintln!(
                    "warning: this server acknowledges commits before they are flushed to disk: \
                     the PostgreSQL figures are not those of durable deliveries"
                );
            }
        }

        /// The schema `schema` on a pool of `pool` connections: `Postgres::builder` for the
        /// default size, else `Postgres::on` with a pool of the bench's own, with the timeouts
        /// `Postgres::builder` gives its pool.
        async fn open(url: &str, schema: &str, pool: usize) -> Database {
            Database::builder(url)
                .expect("a valid URL")
                .max_connections(pool)
                .schema(schema)
                .open()
                .await
                .expect("PostgreSQL reachable")
        }
    }
}
