//! The names: what the (no-op, without the feature) meter is called with.

/// The counter of requests the verifying layer verified or refused: `webhook_requests`.
pub const REQUESTS: &str = "webhook_requests";
/// The histogram of the time from a request reaching the verifying layer to its verdict:
/// `webhook_verify_duration_seconds`.
pub const VERIFY_SECONDS: &str = "webhook_verify_duration_seconds";
/// The histogram of the time a worker's service took on one attempt:
/// `webhook_handler_duration_seconds`.
pub const HANDLER_SECONDS: &str = "webhook_handler_duration_seconds";
/// The counter of deduplication outcomes: `webhook_dedupe`.
pub const DEDUPE: &str = "webhook_dedupe";
/// The counter of queue pushes by outcome: `webhook_enqueued`.
pub const ENQUEUED: &str = "webhook_enqueued";
/// The counter of worker attempts by outcome: `webhook_deliveries`.
pub const DELIVERIES: &str = "webhook_deliveries";
/// The histogram of the time from receipt to a worker's acknowledgement:
/// `webhook_queue_lag_seconds`.
pub const QUEUE_LAG_SECONDS: &str = "webhook_queue_lag_seconds";
/// The gauge of messages a queue holds, by state: `webhook_queue_messages`.
pub const QUEUE_MESSAGES: &str = "webhook_queue_messages";

/// The counter of tenant lookups by outcome (feature `tenants`): `webhook_tenant_lookups`.
pub const TENANT_LOOKUPS: &str = "webhook_tenant_lookups";

/// The label naming the provider (the scheme's name).
pub const PROVIDER: &str = "provider";
/// The label naming an outcome.
pub const OUTCOME: &str = "outcome";
/// The label naming why a request was refused ([`Rejection::label`](crate::Rejection::label)).
pub const REASON: &str = "reason";
/// The label naming a queue state (`ready`, `pending`, `delayed`, `dead`).
pub const STATE: &str = "state";

/// The provider label of a delivery whose provider is not known (its payload could not be
/// read).
pub const UNKNOWN_PROVIDER: &str = "unknown";

/// `outcome` of [`REQUESTS`]: the signature held and the body decoded.
pub const VERIFIED: &str = "verified";
/// `outcome` of [`REQUESTS`]: refused (with a [`REASON`]).
pub const REFUSED: &str = "refused";

/// `outcome` of [`DEDUPE`]: the first delivery of its event, claimed and handed on.
pub const FIRST: &str = "first";
/// `outcome` of [`DEDUPE`] and [`ENQUEUED`]: a repeat of an event already received (200).
pub const DUPLICATE: &str = "duplicate";
/// `outcome` of [`DEDUPE`] and [`ENQUEUED`]: a repeat while another delivery of the event is
/// being handled (409).
pub const IN_FLIGHT: &str = "in_flight";
/// `outcome` of [`DEDUPE`]: the store could not answer (503).
pub const STORE_UNAVAILABLE: &str = "store_unavailable";
/// `outcome` of [`DEDUPE`]: the store could not answer and the layer fails open (handled
/// without deduplication).
pub const FAIL_OPEN: &str = "fail_open";
/// `outcome` of [`DEDUPE`]: the delivery has no deduplication key (handled as without the
/// layer).
pub const UNKEYED: &str = "unkeyed";
/// `outcome` of [`ENQUEUED`]: stored in the queue.
pub const STORED: &str = "stored";
/// `outcome` of [`ENQUEUED`]: the queue could not store it (503, nothing acknowledged).
pub const QUEUE_UNAVAILABLE: &str = "queue_unavailable";
/// `outcome` of [`DELIVERIES`]: processed and acknowledged.
pub const PROCESSED: &str = "processed";
/// `outcome` of [`DELIVERIES`]: failed, to be tried again after a backoff.
pub const RETRIED: &str = "retried";
/// `outcome` of [`DELIVERIES`]: a delivery replayed from the dead letters, taken for its first
/// attempt since (counted besides that attempt's own outcome).
pub const REPLAYED: &str = "replayed";
/// `outcome` of [`DELIVERIES`]: failed for the last time (or unreadable): moved to the dead
/// letters.
pub const DEAD_LETTERED: &str = "dead_lettered";
/// `webhook_tenant_lookups`: the lookup found the tenant's secrets.
pub const FOUND: &str = "found";
/// `webhook_tenant_lookups`: the lookup found no such tenant.
pub const UNKNOWN: &str = "unknown";
/// `webhook_tenant_lookups`: the lookup failed, or returned a secret the scheme cannot use.
pub const FAILED: &str = "failed";
/// `webhook_tenant_lookups`: the lookup took longer than its timeout.
pub const TIMED_OUT: &str = "timed_out";
/// The label naming the tenant of a verified request, with
/// [`VerifyWebhookLayer::label_tenants`](crate::VerifyWebhookLayer::label_tenants) only.
pub const TENANT: &str = "tenant";
