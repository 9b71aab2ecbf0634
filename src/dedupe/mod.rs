//! Exactly-once handling of repeated deliveries: a layer that claims each event's key in a
//! [`store`] before the handler runs.
//!
//! Both VideoNest and VideoAIditor may deliver an event more than once (VideoNest retries after
//! 1, 5 and 30 minutes) and ask receivers to deduplicate. [`DedupeLayer`] does it for every
//! event type that implements [`WebhookEvent`](crate::WebhookEvent), with keys built from signed
//! data only. It goes inside the verifying layer, so that it never runs for a request that was
//! not verified: collect → verify → decode → **dedupe** → handle.
//!
//! | delivery | what happens | answer |
//! | --- | --- | --- |
//! | the first | the key is claimed, the handler runs; a 2xx marks the key done for the retention | the handler's |
//! | the first, and the handler fails (non-2xx, an error, or its future is dropped) | the claim is released | the handler's |
//! | a repeat of a done key | the handler does not run | 200, `x-webhook-duplicate: true` |
//! | a repeat while the first is processed | the handler does not run | 409 (the provider retries later) |
//! | a repeat after the first's lease ran out (its process died) | the key is claimed again, the handler runs | the handler's |
//! | the first, the handler succeeds, but the store fails to mark the key done | the claim runs out with its lease; a later repeat runs the handler again | the handler's, with the [`StoreError`](store::StoreError) in its extensions |
//! | the store is unavailable, or full of records that have not expired | the handler does not run | 503 (or, with [`DedupeLayer::fail_open`], the handler runs) |
//! | the store answers too late, or its answer is lost | the handler does not run; the claim, which may still land, is handed back ([`Store::abandon`](store::Store::abandon)) | 503; the provider's next retry is processed |
//! | an event without a key | the handler runs, without deduplication | the handler's |
//! | no `Verified<E>` on the request | a configuration error | 500 |
//!
//! Records are stored under `{namespace}:{SHA-256 of the key}` ([`store_key`]): the namespace is
//! the provider ([`Verified::provider`](crate::Verified::provider)) unless set with
//! [`DedupeLayer::namespace`], and the key is the event's
//! [`idempotency_key`](crate::WebhookEvent::idempotency_key) unless set with
//! [`DedupeLayer::with_key`]: VideoAIditor `event` + `data._id`; VideoNest `event` + `data.id` +
//! `data.feed_id` + `timestamp`, since VideoNest sends no event id and the same video can
//! legitimately be processed twice; the [`generic`](crate::provider::generic#deduplication-keys)
//! presets, only the parts the signature covers.
//!
//! # Example
//!
//! ```
//! use axum::{Router, body::Body, routing::post};
//! use http::StatusCode;
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_webhook::{
//!     dedupe::{DUPLICATE_HEADER, DedupeLayer, store::MemoryStore},
//!     provider::videonest,
//! };
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let app = Router::new().route(
//!     "/webhooks/videonest",
//!     post(|| async { "processed" }).route_layer(
//!         ServiceBuilder::new()
//!             .layer(videonest::layer(["s3cret"])?)
//!             .layer(DedupeLayer::<videonest::Event>::new(MemoryStore::new())),
//!     ),
//! );
//! let body = r#"{"event":"video.processed","timestamp":"2026-03-30T10:15:00Z","data":{"id":"vid_1"}}"#;
//! let send = |app: Router| async move {
//!     let mut request = videonest::signed_request("s3cret", body)?.map(Body::new);
//!     *request.uri_mut() = "/webhooks/videonest".parse()?;
//!     Ok::<_, Box<dyn std::error::Error>>(app.oneshot(request).await?)
//! };
//!
//! let first = send(app.clone()).await?;
//! assert_eq!(first.status(), StatusCode::OK);
//! assert!(first.headers().get(DUPLICATE_HEADER).is_none());
//!
//! // The provider retries: answered 200 again, but the handler does not run twice.
//! let repeat = send(app).await?;
//! assert_eq!(repeat.status(), StatusCode::OK);
//! assert_eq!(repeat.headers()[DUPLICATE_HEADER], "true");
//! # Ok(())
//! # }
//! ```

mod future;
mod layer;
mod service;
pub mod store;

/// The key a request was deduplicated by, as stored ([`store_key`]), inserted as a request
/// extension for the handler (to log it, or to hand it on to a queue).
///
/// ```
/// use axum::Extension;
/// use tower_webhook::dedupe::DedupeKey;
///
/// async fn handler(Extension(key): Extension<DedupeKey>) -> String {
///     format!("processing {}", key.as_str())
/// }
/// # let _ = handler;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DedupeKey {
    key: std::sync::Arc<str>,
    /// The layer's retention, for what is stored under the key further in (`Enqueue`).
    retention: std::time::Duration,
    /// The token of the layer's claim on the key, for a completion in the handler's own
    /// transaction.
    token: store::Token,
}

impl DedupeKey {
    pub(crate) fn new(
        key: std::sync::Arc<str>,
        retention: std::time::Duration,
        token: store::Token,
    ) -> Self {
        Self {
            key,
            retention,
            token,
        }
    }

    /// The key as stored: `{namespace}:{SHA-256 of the event's key, in hex}`.
    pub fn as_str(&self) -> &str {
        &self.key
    }

    /// How long the layer remembers a processed event.
    #[cfg_attr(not(any(feature = "queue", feature = "postgres")), allow(dead_code))]
    pub(crate) fn retention(&self) -> std::time::Duration {
        self.retention
    }

    /// The token of the layer's claim.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn token(&self) -> &store::Token {
        &self.token
    }
}

/// The key the layer stores for an event key under a namespace:
/// `{namespace}:{64 hex digits of SHA-256(key)}`. Hashing gives every record the same small size
/// whatever the signed fields hold, and the fixed-length hex tail keeps namespaces apart even
/// when they contain `:`.
///
/// ```
/// use tower_webhook::dedupe::store_key;
///
/// let key = store_key("videonest", r#"["video.processed","vid_1",null,"2026-03-30T10:15:00Z"]"#);
/// assert!(key.starts_with("videonest:"));
/// assert_eq!(key.len(), "videonest:".len() + 64);
/// ```
pub fn store_key(namespace: &str, key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(key.as_bytes());
    let mut stored = String::with_capacity(namespace.len() + 1 + 64);
    stored.push_str(namespace);
    stored.push(':');
    crate::scheme::hex::encode_lower(&digest, &mut stored);
    stored
}

/// The key the layer stores for an event key of a verified request: [`store_key`] for a
/// request without a tenant, and for one with a tenant
/// ([`Verified::tenant`](crate::Verified::tenant)) the same with the tenant hashed in front of
/// the event key, so that the same provider event id under two tenants is two events.
///
/// ```
/// use tower_webhook::dedupe::{store_key, tenant_key};
///
/// let key = r#"["video.processed","vid_1",null,"2026-03-30T10:15:00Z"]"#;
/// assert_eq!(tenant_key("videonest", None, key), store_key("videonest", key));
/// assert_ne!(tenant_key("videonest", Some("acme"), key), tenant_key("videonest", Some("globex"), key));
/// assert_ne!(tenant_key("videonest", Some("acme"), key), store_key("videonest", key));
/// ```
///
/// A tenant id holds no control character (see [`tenant`](crate::tenant)), so the hashed
/// input, `\0{tenant}\0{key}`, tells tenants apart; it never equals an event key of a request
/// without a tenant unless that key itself starts with a NUL byte.
pub fn tenant_key(namespace: &str, tenant: Option<&str>, key: &str) -> String {
    match tenant {
        None => store_key(namespace, key),
        Some(tenant) => store_key(namespace, &format!("\0{tenant}\0{key}")),
    }
}

pub use self::{
    future::{DUPLICATE_HEADER, ResponseFuture},
    layer::{DEFAULT_LEASE, DEFAULT_RETENTION, DedupeLayer},
    service::Dedupe,
};
