//! The whole layer in process, and typed event parsing.
//!
//! - `layer/1 KiB`: a signed 1 KiB VideoNest request through `oneshot` on a clone of the stack
//!   (as axum clones a route's service per request), against the same inner service without the
//!   layer: `bare service`, `verify only` (the VideoNest scheme, no decoding), `verify + typed`
//!   (the preset's layer: `videonest::Event`), `verify + typed + dedupe (memory)` (with
//!   `DedupeLayer` and `MemoryStore` under it; every request a first delivery). The same for the
//!   VideoAIditor preset (`verify + typed (videoaiditor)`), and the VideoNest tenant layer
//!   (`verify + typed, tenant cached (of 10,000)`: the tenant read from the path and found in
//!   a cache of 10,000).
//! - `tenant/resolve`: what the tenant layer adds before the body is read, alone (reading the
//!   signature header, then the tenant from the path and the cache), against reading the
//!   signature header with static secrets. Requests are built and signed
//!   outside the measurement; every future is ready at once, so it is polled once with a no-op
//!   waker and no runtime is involved.
//! - `decode/<provider>`: the typed event of each preset parsed from 1 KiB bodies, against
//!   `serde_json::Value`, `IgnoredAny` (scanning the JSON and nothing else) and a flat derived
//!   struct holding the same typed `data` (what the envelope costs).
//!
//! ```text
//! cargo bench --bench layer -- --warm-up-time 1 --measurement-time 3
//! python3 bench/criterion-table.py layer decode
//! ```

mod support;

use std::{
    convert::Infallible,
    hint::black_box,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use bytes::Bytes;
use criterion::{
    BatchSize, BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use serde::{Deserialize, de::IgnoredAny};
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_webhook::{
    VerifyWebhookLayer,
    decode::{Decode, Lossless},
    dedupe::{DedupeLayer, store::MemoryStore},
    provider::{videoaiditor, videonest},
    scheme::{Hmac, Resolution, Scheme},
    tenant::{Tenanted, Tenants},
};

use support::{SECRET, now, videoaiditor_body, videonest_body};

const LEN: usize = 1024;

async fn handler(_request: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

/// A body id no earlier request used.
fn fresh_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("vid_{:08}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// One row: a request from `request` (made outside the measurement) through a clone of `service`.
fn row<S>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    service: S,
    request: impl Fn() -> Request<Full<Bytes>>,
) where
    S: Service<Request<Full<Bytes>>, Response = Response<Full<Bytes>>, Error = Infallible> + Clone,
{
    let response = now(service.clone().oneshot(request())).unwrap_or_else(|e| match e {});
    assert_eq!(response.status(), StatusCode::OK, "{name}");
    group.bench_function(name, |b| {
        b.iter_batched(
            &request,
            |request| now(service.clone().oneshot(request)).unwrap_or_else(|e| match e {}),
            BatchSize::SmallInput,
        );
    });
}

/// Copies of one signed request, cheap to make (the body is shared, the head is cloned).
fn copies(request: Request<Full<Bytes>>) -> impl Fn() -> Request<Full<Bytes>> {
    let (head, body) = request.into_parts();
    let body = support::now(http_body_util::BodyExt::collect(body))
        .expect("a full body")
        .to_bytes();
    move || {
        let mut request = Request::new(Full::new(body.clone()));
        *request.method_mut() = head.method.clone();
        *request.uri_mut() = head.uri.clone();
        *request.headers_mut() = head.headers.clone();
        request
    }
}

fn layer(c: &mut Criterion) {
    let mut group = c.benchmark_group("layer/1 KiB");
    let vn = copies(
        videonest::signed_request(SECRET, videonest_body(LEN, "vid_abc123")).expect("valid secret"),
    );
    let vn = &vn;
    let vn_fresh = || {
        videonest::signed_request(SECRET, videonest_body(LEN, &fresh_id())).expect("valid secret")
    };

    row(
        &mut group,
        "bare service",
        ServiceBuilder::new().service_fn(handler),
        vn,
    );
    let verify_only = VerifyWebhookLayer::new(
        videonest::scheme()
            .secret(SECRET)
            .build()
            .expect("valid secret"),
    );
    row(
        &mut group,
        "verify only",
        ServiceBuilder::new().layer(verify_only).service_fn(handler),
        vn,
    );
    row(
        &mut group,
        "verify + typed",
        ServiceBuilder::new()
            .layer(videonest::layer([SECRET]).expect("valid secret"))
            .service_fn(handler),
        vn,
    );
    tenant_row(&mut group);
    row(
        &mut group,
        "verify + typed + dedupe (memory)",
        ServiceBuilder::new()
            .layer(videonest::layer([SECRET]).expect("valid secret"))
            // Records kept 100 ms: a day's would fill the store's 100,000 keys within the
            // measurement, and a full store refuses first deliveries (503).
            .layer(
                DedupeLayer::<videonest::Event, _>::new(MemoryStore::new())
                    .retention(Duration::from_millis(100)),
            )
            .service_fn(handler),
        vn_fresh,
    );
    row(
        &mut group,
        "verify + typed (videoaiditor)",
        ServiceBuilder::new()
            .layer(videoaiditor::layer([SECRET]).expect("valid secret"))
            .service_fn(handler),
        copies(
            videoaiditor::signed_request(SECRET, videoaiditor_body(LEN, "render-id"))
                .expect("valid secret"),
        ),
    );
    group.finish();
}

/// `verify + typed, tenant cached (of 10,000)`: the preset's tenant layer, the tenant read from
/// the last path segment and found in a cache holding 10,000 tenants (filled beforehand, on a
/// runtime: a miss runs its lookup as a task), each with its own secret.
fn tenant_row(group: &mut BenchmarkGroup<'_, WallTime>) {
    const TENANTS: usize = 10_000;
    let secret_of = |tenant: &str| format!("{SECRET}-{tenant}");
    let tenants = Tenants::new(move |tenant: String| async move {
        Ok::<_, Infallible>(Some(vec![format!("{SECRET}-{tenant}")]))
    });
    let layer = videonest::tenant_layer(&tenants).expect("a valid declaration");
    let service = ServiceBuilder::new()
        .layer(layer.clone())
        .service_fn(handler);
    let signed = |tenant: &str| {
        let mut request =
            videonest::signed_request(secret_of(tenant), videonest_body(LEN, "vid_abc123"))
                .expect("valid secret");
        *request.uri_mut() = format!("/webhooks/{tenant}").parse().expect("a path");
        request
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        for i in 0..TENANTS {
            let response = service.clone().oneshot(signed(&format!("t{i}"))).await;
            assert_eq!(
                response.unwrap_or_else(|e| match e {}).status(),
                StatusCode::OK
            );
        }
    });
    assert_eq!(layer.scheme().cached(), TENANTS);
    resolve_rows(layer.scheme(), &signed("t4242"));
    row(
        group,
        "verify + typed, tenant cached (of 10,000)",
        service,
        copies(signed("t4242")),
    );
}

/// `tenant/resolve`: what the tenant layer adds before the body is read, alone: reading the
/// signature header (the static scheme's whole step), against reading it, then the tenant from
/// the path, then finding the tenant in a cache of 10,000.
fn resolve_rows(tenanted: &Tenanted<Hmac>, request: &Request<Full<Bytes>>) {
    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("tenant/resolve");
    let head = || {
        let mut copy = Request::new(());
        *copy.uri_mut() = request.uri().clone();
        *copy.headers_mut() = request.headers().clone();
        copy.into_parts().0
    };
    let fixed = videonest::scheme()
        .secret(SECRET)
        .build()
        .expect("valid secret");
    group.bench_function("static: signature", |b| {
        b.iter_batched_ref(
            head,
            |head| fixed.signature(head).expect("well formed"),
            BatchSize::SmallInput,
        );
    });
    group.bench_function("tenant: signature + resolve (cached of 10,000)", |b| {
        b.iter_batched_ref(
            head,
            |head| {
                let signature = tenanted.signature(head).expect("well formed");
                match tenanted.resolve(head, signature) {
                    Resolution::Ready(Ok(signature)) => signature,
                    _ => panic!("the tenant is cached"),
                }
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

/// A flat derived struct with the preset's typed `data`: the envelope's floor.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Flat<D> {
    event: String,
    #[serde(default)]
    timestamp: Option<String>,
    data: D,
}

fn decode_rows<E, D>(c: &mut Criterion, provider: &str, bodies: &[(&str, String)])
where
    E: serde::de::DeserializeOwned + From<tower_webhook::provider::RawEvent> + 'static,
    D: serde::de::DeserializeOwned,
{
    let mut group = c.benchmark_group(format!("decode/{provider}"));
    let (head, ()) = Request::new(()).into_parts();
    let lossless = Lossless::<E>::new();
    for (what, body) in bodies {
        let body = Bytes::from(body.clone());
        group.bench_function(format!("{what}: serde_json::Value"), |b| {
            b.iter(|| {
                black_box(serde_json::from_slice::<serde_json::Value>(black_box(
                    &body,
                )))
            })
        });
        group.bench_function(format!("{what}: IgnoredAny"), |b| {
            b.iter(|| black_box(serde_json::from_slice::<IgnoredAny>(black_box(&body))))
        });
        group.bench_function(format!("{what}: flat struct"), |b| {
            b.iter(|| black_box(serde_json::from_slice::<Flat<D>>(black_box(&body))))
        });
        group.bench_function(format!("{what}: Event"), |b| {
            b.iter(|| black_box(serde_json::from_slice::<E>(black_box(&body))))
        });
        group.bench_function(format!("{what}: Lossless decoder"), |b| {
            b.iter(|| black_box(lossless.decode(&head, black_box(&body))))
        });
    }
    group.finish();
}

fn decode(c: &mut Criterion) {
    decode_rows::<videonest::Event, videonest::VideoData>(
        c,
        "videonest",
        &[
            ("video.processed", videonest_body(LEN, "vid_abc123")),
            (
                "unknown type (raw)",
                videonest_body(LEN, "vid_abc123").replace("video.processed", "video.archived"),
            ),
        ],
    );
    decode_rows::<videoaiditor::Event, videoaiditor::RenderData>(
        c,
        "videoaiditor",
        &[("render.completed", videoaiditor_body(LEN, "render-id"))],
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = layer, decode
}
criterion_main!(benches);
