//! Receive signed webhooks safely: a tower [`Layer`](tower::Layer) that buffers the body with a
//! limit, verifies its HMAC-SHA256 signature in constant time *before* parsing the event, and
//! hands the inner service a typed [`Verified`] event as a request extension. Refused requests
//! get a clear status and reason, and the inner service never runs for them.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_webhook::{Verified, VerifyWebhookLayer, scheme::Hmac};
//!
//! #[derive(Clone, serde::Deserialize)]
//! struct Event {
//!     event: String,
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let scheme = Hmac::sha256("x-signature").secret("s3cret").build()?;
//! let signed = scheme.sign(br#"{"event":"render.completed"}"#, None, &Default::default());
//!
//! let service = ServiceBuilder::new()
//!     .layer(VerifyWebhookLayer::new(scheme).event::<Event>())
//!     .service_fn(|request: Request<Full<Bytes>>| async move {
//!         let verified = request.extensions().get::<Verified<Event>>().unwrap();
//!         let reply = format!("got {}", verified.event);
//!         Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(reply))))
//!     });
//!
//! // A correctly signed request reaches the handler…
//! let request = Request::post("/webhook")
//!     .header("x-signature", &signed["x-signature"])
//!     .body(Full::new(Bytes::from_static(br#"{"event":"render.completed"}"#)))?;
//! let response = service.clone().oneshot(request).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//!
//! // …a tampered one is refused with 401 and never does.
//! let request = Request::post("/webhook")
//!     .header("x-signature", "00".repeat(32))
//!     .body(Full::new(Bytes::from_static(br#"{"event":"render.failed"}"#)))?;
//! let response = service.oneshot(request).await?;
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! # Ok(())
//! # }
//! ```
//!
//! # What happens to a request
//!
//! 1. A `Content-Length` (or body size hint) above the limit is refused with 413 before anything
//!    is read; so is a missing or malformed signature header (401). On HTTP/1.x such early
//!    refusals carry `Connection: close`, since the unread body leaves the connection unusable.
//! 2. The body is collected up to [`VerifyWebhookLayer::max_body_size`] (2 MiB by default). A
//!    body that arrives in one frame is kept as it is, without a copy; reading stops as soon as the
//!    limit is passed (413). A body that fails mid-stream is refused with 400.
//! 3. The [`Scheme`](scheme::Scheme) checks the signature against every configured secret (in
//!    constant time) or public key (401 when none matches). A scheme with secrets per tenant
//!    ([`tenant`], feature `tenants`) looks the tenant's secrets up first, before
//!    the body is read.
//! 4. Only then is the body decoded into the event type by the layer's [`decode::Decode`]r (400
//!    when it does not decode). The presets deliver every verified JSON body: what does not fit
//!    the typed form comes as the event's `Raw` variant, unless the layer is
//!    [`strict`](VerifyWebhookLayer::strict).
//! 5. The inner service is called with `Request<Full<Bytes>>` (with the signed bytes and their
//!    `Content-Length`) and a [`Verified<E>`] extension, which also records the provider, the
//!    delivery id and signed timestamp where the scheme has them, and when the request arrived.
//!
//! # Using it with axum, hyper and tower
//!
//! The service accepts `Request<B>` for any [`http_body::Body`] and hands the inner service
//! `Request<Full<Bytes>>`, so it fits axum's `Router::layer`, `Router::route_layer` and
//! `MethodRouter::layer`, hyper 1 servers (through `hyper_util::service::TowerToHyperService`), and
//! `ServiceBuilder` stacks over `service_fn`. Rejections are `Ok(response)`, never `Err`, so axum
//! accepts the layer as it is.
//!
//! - Prefer `post(handler).route_layer(layer)` in axum: only POSTs to the webhook path are
//!   verified, so other methods get 405 and unknown paths 404. `Router::route_layer` and
//!   `MethodRouter::layer` also verify other methods (401), and `Router::layer` also wraps the
//!   fallback (unknown paths get 401 rather than 404).
//! - The readied inner service waits in the response future while the body uploads. Put
//!   concurrency limits and load shedding *outside* this layer, and pair it with a body timeout
//!   (such as tower-http's `RequestBodyTimeoutLayer`) against slow senders.
//! - axum's `middleware::from_fn` only accepts `Request<axum::body::Body>`, so it cannot sit
//!   *below* this layer in the same `ServiceBuilder`. Add it with its own `Router::layer` call
//!   instead (`.layer(from_fn(mw)).route_layer(verify_layer)`): every `Router` layer wraps a
//!   body-generic route.
//! - Calling the service directly needs the request type spelled out
//!   (`ServiceExt::<Request<Full<Bytes>>>::ready`), or use `oneshot`, which infers it.
//!
//! # Feature flags
//!
//! No feature is on by default.
//!
//! - `axum`: [`Verified<E>`] implements axum's `FromRequestParts`; a route without the layer
//!   answers 500 with `MissingVerified`, which says so. With `tenants`, the tenant can be read
//!   from the route's path parameters (axum without its default features).
//! - `redis`: `dedupe::store::RedisStore`, a deduplication store shared by every replica of a
//!   service, on one server or a Redis Cluster (redis-rs, tokio; [`RedisConnection`]); with
//!   `queue`, `queue::RedisQueue` too.
//! - `redis-tls`: `rediss://` URLs (TLS by rustls, the server verified against the system's
//!   roots).
//! - `queue`: the `queue` module, to acknowledge at once and process in workers: the `Enqueue`
//!   service, `Worker` and the in-memory `MemoryQueue` (tokio); Redis Streams with `redis`.
//! - `tracing`: a `webhook` span per verified request (provider, event type, delivery id,
//!   status, outcome) and a debug event per refusal with its reason; a `webhook_delivery` span
//!   per delivery a worker processes; `warn` and `error` events where something failed (the
//!   store or the queue unavailable, a failed attempt, a dead letter, a queue that cannot be
//!   read, a settlement that could not be stored). No secret, signature, header value or
//!   payload in any field.
//! - `admin`: the `admin` module, a mountable page of a queue's stats and dead letters with
//!   replay and purge buttons (server-rendered HTML, CSRF-protected forms); with `queue`.
//! - `sqlite`: `dedupe::store::SqliteStore`, a deduplication store in a SQLite file (rusqlite
//!   with its bundled SQLite: nothing to install), durable as the disk.
//! - `postgres`: `dedupe::store::PostgresStore` and, with `queue`, `queue::PostgresQueue`
//!   (tokio-postgres on a deadpool pool), with exactly-once effects in the handler's own
//!   transaction.
//! - `tenants`: the `tenant` module: one route for many accounts, each request verified with
//!   the secrets of the tenant it names, looked up (cached, coalesced, with a timeout) and
//!   rotated without a restart.
//! - `metrics`: counters and histograms of requests, deduplication, queueing and workers, and
//!   gauges of what a queue holds, through the `metrics` facade (any exporter); the `metrics`
//!   module lists every name.
//!
//! The items each feature adds are marked with it in these docs.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[macro_use]
mod log;
#[macro_use]
mod macros;

mod config;
mod event;
mod expiring;
mod meter;
#[cfg(feature = "redis")]
mod redis_connection;
#[cfg(feature = "redis")]
mod redis_record;
mod rejection;
mod secret;
#[cfg(feature = "sqlite")]
mod sqlite;
mod verified;

#[cfg(feature = "axum")]
mod extract;

#[cfg(feature = "admin")]
#[cfg_attr(docsrs, doc(cfg(feature = "admin")))]
pub mod admin;
pub mod decode;
pub mod dedupe;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
// Without the feature, the names are still what the (no-op) meter is called with.
#[cfg(not(feature = "metrics"))]
#[allow(unreachable_pub, dead_code)]
#[path = "metrics/names.rs"]
mod metrics;
pub mod provider;
#[cfg(feature = "queue")]
#[cfg_attr(docsrs, doc(cfg(feature = "queue")))]
pub mod queue;
pub mod scheme;
#[cfg(feature = "tenants")]
#[cfg_attr(docsrs, doc(cfg(feature = "tenants")))]
pub mod tenant;
pub mod verify;

pub use self::{
    config::ConfigError,
    event::WebhookEvent,
    rejection::{
        BodyError, DecodeError, DefaultRejectionResponse, MapBody, Rejection, RejectionResponse,
        SignatureError,
    },
    secret::Secret,
    verified::Verified,
    verify::{DEFAULT_MAX_BODY_SIZE, ResponseFuture, VerifyWebhook, VerifyWebhookLayer},
};

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use self::extract::MissingVerified;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis_connection::RedisConnection;
/// The redis-rs crate this one is built on: the types of [`RedisConnection`]'s `From`
/// conversions and of the Redis store's and queue's settings.
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use ::redis;

// The README's examples are compiled as doc tests too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The boxed error type body errors are converted into.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
