//! Metrics (feature `metrics`): what the layers and the workers report to the [`metrics`] facade
//! crate, so that any exporter (Prometheus, StatsD, OpenTelemetry, …) publishes them. Install a
//! recorder before the first request; without one, every report is a no-op.
//!
//! ```
//! use axum::{Router, body::Body, routing::post};
//! use metrics_util::debugging::{DebugValue, DebuggingRecorder};
//! use tower::ServiceExt;
//! use tower_webhook::{metrics as names, provider::videonest};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let recorder = DebuggingRecorder::new();
//! let snapshotter = recorder.snapshotter();
//! let _local = metrics::set_default_local_recorder(&recorder);
//!
//! let app = Router::new().route(
//!     "/webhooks/videonest",
//!     post(|| async { "ok" }).route_layer(videonest::layer(["s3cret"])?),
//! );
//! let mut request = videonest::signed_request("s3cret", r#"{"event":"video.processed"}"#)?
//!     .map(Body::new);
//! *request.uri_mut() = "/webhooks/videonest".parse()?;
//! app.oneshot(request).await?;
//!
//! let verified = snapshotter.snapshot().into_vec().into_iter().find(|(key, ..)| {
//!     let key = key.key();
//!     key.name() == names::REQUESTS
//!         && key.labels().any(|label| label.value() == names::VERIFIED)
//! });
//! assert!(matches!(verified, Some((_, _, _, DebugValue::Counter(1)))));
//! # Ok(())
//! # }
//! ```
//!
//! # Names
//!
//! Labels hold low-cardinality values only: the provider (the scheme's name, such as
//! `videonest` or `github`), an outcome, a reason. Never an event id, a delivery id or a key.
//! Counters are named without a `_total` suffix; Prometheus exporters add it
//! (`webhook_requests_total`).
//!
//! | name | kind | labels | what |
//! | --- | --- | --- | --- |
//! | `webhook_requests` | counter | `provider`, `outcome` = `verified` (and `tenant`, with [`VerifyWebhookLayer::label_tenants`](crate::VerifyWebhookLayer::label_tenants)) | requests whose signature held and whose body decoded ([`VerifyWebhookLayer`](crate::VerifyWebhookLayer)) |
//! | `webhook_requests` | counter | `provider`, `outcome` = `refused`, `reason` | requests the verifying layer refused, by [`Rejection::label`](crate::Rejection::label): `missing_signature`, `malformed_signature`, `repeated_signature`, `signature_mismatch`, `out_of_tolerance`, `signature_refused`, `too_large`, `body_error`, `invalid_event`, `tenant_unavailable` |
//! | `webhook_verify_duration_seconds` | histogram | `provider` | from a request reaching the verifying layer to its verdict, for verified requests: reading the body, checking the signature, decoding the event |
//! | `webhook_dedupe` | counter | `provider`, `outcome` | what [`DedupeLayer`](crate::dedupe::DedupeLayer) did with a verified request: `first` (claimed, handed on), `duplicate` (200, not handled), `in_flight` (409), `store_unavailable` (503), `fail_open` (store unavailable, handled anyway), `unkeyed` (no key: handled as without the layer) |
//! | `webhook_enqueued` | counter | `provider`, `outcome` | what `queue::Enqueue` did: `stored`, `duplicate` (200, stored before), `in_flight` (409), `queue_unavailable` (503, nothing acknowledged) |
//! | `webhook_deliveries` | counter | `provider`, `outcome` | what a `queue::Worker` did with each attempt: `processed` (acknowledged), `retried` (failed, tried again later), `dead_lettered` (failed its last attempt, or could not be read: provider `unknown`); and `replayed` when a worker takes a delivery replayed from the dead letters for its first attempt since (besides that attempt's own outcome) |
//! | `webhook_handler_duration_seconds` | histogram | `provider` | how long a worker's service took on one attempt (the handler of a delivery taken from the queue) |
//! | `webhook_queue_lag_seconds` | histogram | `provider` | for each processed delivery, from its request reaching the verifying layer to the worker's acknowledgement |
//! | `webhook_tenant_lookups` | counter | `provider`, `outcome` | lookups of a tenant's secrets ([`tenant`](crate::tenant), feature `tenants`): `found`, `unknown`, `failed` (the lookup's error, or a secret the scheme cannot use), `timed_out` |
//! | `webhook_queue_messages` | gauge | `state` = `ready`, `pending`, `delayed`, `dead` | what the queue holds ([`Queue::stats`](crate::queue::Queue::stats)), set by each running `queue::Worker` every [`Worker::stats_interval`](crate::queue::Worker::stats_interval) |
//!
//! Durations are in seconds. The queue gauges name no queue: a process whose workers serve
//! several queues should let one of them set the gauges and give the others
//! `Worker::stats_interval(Duration::ZERO)` (or read [`Queue::stats`](crate::queue::Queue::stats)
//! itself). Verification time is measured on the system clock, the one
//! [`Verified::received_at`](crate::Verified::received_at) reads: a clock step shows as one odd
//! value (a step back as 0).

mod names;

pub use self::names::*;
