//! What deduplication costs per request.
//!
//! - `memory_store`: `MemoryStore` through the `Store` API: claim + complete for a first delivery
//!   (a new key each time, into a store that has been running for a while: records kept for
//!   10 ms, so that it holds some tens of thousands of them and the expired ones make room),
//!   claim for a duplicate, and a claim refused because the store is full of live claims.
//! - `layer`: a signed VideoNest request through `oneshot` on the whole stack, the verifying layer
//!   alone against the verifying layer with the deduplication layer under it (first deliveries
//!   and duplicates). Signing happens outside the measurement.
//! - `redis_store` (with the `redis` feature): the same through `RedisStore`, round trips
//!   included, on the server of `TOWER_WEBHOOK_REDIS_URL`, else on a private `redis-server` (from
//!   the `PATH`) on a free port of 127.0.0.1, without persistence, stopped at the end; skipped
//!   without either.
//!
//! ```text
//! cargo bench --bench dedupe -- --warm-up-time 1 --measurement-time 3
//! TOWER_WEBHOOK_REDIS_URL=redis://127.0.0.1:6379 \
//!     cargo bench --features redis --bench dedupe -- --warm-up-time 1 --measurement-time 3
//! ```

use std::{
    convert::Infallible,
    future::Future,
    hint::black_box,
    pin::pin,
    sync::atomic::{AtomicU64, Ordering},
    task::{Context, Poll, Waker},
    time::Duration,
};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tokio::runtime::Runtime;
use tower::{ServiceBuilder, ServiceExt, util::BoxCloneSyncService};
use tower_webhook::{
    dedupe::{
        DedupeLayer,
        store::{Claim, DEFAULT_MAX_ENTRIES, MemoryStore, Store, StoreError, Token},
    },
    provider::videonest,
};

const SECRET: &str = "whsec_bench";
const LEASE: Duration = Duration::from_secs(300);
const RETENTION: Duration = Duration::from_secs(86_400);
/// The retention of the first-delivery rows: a store of 100,000 keys would be full of live
/// records after 100,000 iterations with a day's retention. At a few million claims a second at
/// most, 10 ms keeps some tens of thousands of records, well below the bound. Being shorter than
/// the lease, it is the store's less favourable case: each completion gives a record a sooner
/// expiry, which leaves a stale item in the shard's heap of expiries.
const STEADY_RETENTION: Duration = Duration::from_millis(10);

/// A key no earlier iteration used.
fn fresh_key() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("videonest:video.processed\u{1f}vid_{n}\u{1f}\u{1f}2026-03-30T10:15:00Z")
}

fn vn_event(id: &str) -> String {
    format!(
        r#"{{"event":"video.processed","timestamp":"2026-03-30T10:15:00Z","data":{{"id":"{id}","status":"ready"}}}}"#
    )
}

/// A signed request for an event no earlier iteration sent.
fn fresh_request() -> Request<Full<Bytes>> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    videonest::signed_request(SECRET, vn_event(&format!("vid_{n}"))).expect("valid secret")
}

fn duplicate_request() -> Request<Full<Bytes>> {
    videonest::signed_request(SECRET, vn_event("vid_duplicate")).expect("valid secret")
}

/// The output of a future that is ready at once, as `MemoryStore`'s are.
fn now<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("MemoryStore's futures are ready at once"),
    }
}

fn memory_store(c: &mut Criterion) {
    let mut group = c.benchmark_group("memory_store");
    let store = MemoryStore::new();
    group.bench_function("claim+complete (first delivery)", |b| {
        b.iter_batched(
            fresh_key,
            |key| {
                let token = Token::random();
                let Ok(Claim::Acquired) = now(store.claim(&key, &token, LEASE)) else {
                    unreachable!("a new key is free");
                };
                now(store.complete(&key, &token, STEADY_RETENTION)).expect("completed");
            },
            BatchSize::SmallInput,
        );
    });

    let key = fresh_key();
    let token = Token::random();
    let Ok(Claim::Acquired) = now(store.claim(&key, &token, LEASE)) else {
        unreachable!("a new key is free");
    };
    now(store.complete(&key, &token, RETENTION)).expect("completed");
    group.bench_function("claim (duplicate)", |b| {
        b.iter(|| {
            let claim = now(store.claim(black_box(&key), &token, LEASE));
            assert!(matches!(claim, Ok(Claim::Done)));
        });
    });

    // Every shard full of claims whose lease has not run out: each new claim is refused.
    let full = MemoryStore::with_max_entries(DEFAULT_MAX_ENTRIES);
    for _ in 0..2 * DEFAULT_MAX_ENTRIES {
        let _ = now(full.claim(&fresh_key(), &Token::random(), LEASE));
    }
    let refused = Token::random();
    group.bench_function("claim refused (full of live claims)", |b| {
        b.iter_batched(
            fresh_key,
            |key| {
                let claim = now(full.claim(&key, &refused, LEASE));
                assert!(matches!(claim, Err(StoreError::Full { .. })));
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

type Service = BoxCloneSyncService<Request<Full<Bytes>>, Response<Full<Bytes>>, Infallible>;

async fn handler(_request: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"processed"))))
}

fn verify_only() -> Service {
    BoxCloneSyncService::new(
        ServiceBuilder::new()
            .layer(videonest::layer([SECRET]).expect("valid secret"))
            .service_fn(handler),
    )
}

fn verify_and_dedupe<St: Store>(layer: DedupeLayer<videonest::Event, St>) -> Service {
    BoxCloneSyncService::new(
        ServiceBuilder::new()
            .layer(videonest::layer([SECRET]).expect("valid secret"))
            .layer(layer)
            .service_fn(handler),
    )
}

/// Sends `request` through `service` and checks the answer.
async fn send(service: &Service, request: Request<Full<Bytes>>) {
    let response = service
        .clone()
        .oneshot(request)
        .await
        .unwrap_or_else(|e| match e {});
    assert_eq!(response.status(), StatusCode::OK);
}

/// First deliveries through `first`, duplicates through `duplicate` (the same service, or one
/// whose records are kept longer).
fn bench_layer(
    c: &mut Criterion,
    group: &str,
    runtime: &Runtime,
    first: &Service,
    duplicate: &Service,
) {
    let mut group = c.benchmark_group(group);
    group.bench_function("first delivery", |b| {
        b.iter_batched(
            fresh_request,
            |request| runtime.block_on(send(first, request)),
            BatchSize::SmallInput,
        );
    });
    runtime.block_on(send(duplicate, duplicate_request()));
    group.bench_function("duplicate", |b| {
        b.iter_batched(
            duplicate_request,
            |request| runtime.block_on(send(duplicate, request)),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn layer(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let service = verify_only();
    c.benchmark_group("layer/verify only")
        .bench_function("any delivery", |b| {
            b.iter_batched(
                fresh_request,
                |request| runtime.block_on(send(&service, request)),
                BatchSize::SmallInput,
            );
        });
    // Two layers on one store: first deliveries kept briefly (as the store-level row), the
    // duplicate kept for the default day.
    let store = MemoryStore::new();
    let first = verify_and_dedupe(DedupeLayer::new(store.clone()).retention(STEADY_RETENTION));
    let duplicate = verify_and_dedupe(DedupeLayer::new(store));
    bench_layer(
        c,
        "layer/verify+dedupe (memory)",
        &runtime,
        &first,
        &duplicate,
    );
}

#[cfg(feature = "redis")]
#[path = "../tests/common/redis.rs"]
mod redis_server;

#[cfg(feature = "redis")]
fn redis_store(c: &mut Criterion) {
    use redis_server::{Persistence, Server, URL_VAR, redis_server_binary};
    use tower_webhook::dedupe::store::RedisStore;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut server = None;
    let url = match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ => {
            let Some(binary) = redis_server_binary() else {
                eprintln!(
                    "redis_store: skipped, {URL_VAR} is not set and there is no redis-server"
                );
                return;
            };
            let private = runtime
                .block_on(Server::launch_new(binary, Persistence::Snapshot))
                .unwrap_or_else(|err| panic!("redis_store: {err}"));
            server.insert(private).url()
        }
    };
    // A prefix of this run's own, and records that expire within a minute.
    let prefix = format!("tower-webhook-bench:{}:", Token::random().as_str());
    let retention = Duration::from_secs(60);
    let store = runtime
        .block_on(RedisStore::connect(url.as_str()))
        .unwrap_or_else(|err| panic!("{url}: {err:?}"))
        .prefix(prefix);

    let mut group = c.benchmark_group("redis_store");
    group.bench_function("claim+complete (first delivery)", |b| {
        b.iter_batched(
            fresh_key,
            |key| {
                runtime.block_on(async {
                    let token = Token::random();
                    let Ok(Claim::Acquired) = store.claim(&key, &token, LEASE).await else {
                        unreachable!("a new key is free");
                    };
                    store
                        .complete(&key, &token, retention)
                        .await
                        .expect("completed");
                });
            },
            BatchSize::SmallInput,
        );
    });
    let key = fresh_key();
    let token = Token::random();
    runtime.block_on(async {
        let Ok(Claim::Acquired) = store.claim(&key, &token, LEASE).await else {
            unreachable!("a new key is free");
        };
        store
            .complete(&key, &token, retention)
            .await
            .expect("completed");
    });
    group.bench_function("claim (duplicate)", |b| {
        b.iter(|| {
            let claim = runtime.block_on(store.claim(&key, &token, LEASE));
            assert!(matches!(claim, Ok(Claim::Done)));
        });
    });
    group.finish();

    let service = verify_and_dedupe(DedupeLayer::new(store).retention(retention));
    bench_layer(
        c,
        "layer/verify+dedupe (redis)",
        &runtime,
        &service,
        &service,
    );
    drop(server);
}

#[cfg(not(feature = "redis"))]
fn redis_store(_c: &mut Criterion) {
    if std::env::var_os("TOWER_WEBHOOK_REDIS_URL").is_some() {
        eprintln!("redis_store: skipped, the benchmark was built without the `redis` feature");
    }
}

criterion_group!(benches, memory_store, layer, redis_store);
criterion_main!(benches);
