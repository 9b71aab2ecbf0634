use std::{fmt, sync::Arc, time::Duration};

use http::StatusCode;
use tower::Layer;

use super::{Dedupe, store::MemoryStore};
use crate::{DefaultRejectionResponse, Verified, WebhookEvent};

/// How long a claim holds before another delivery may take it over, unless set: 5 minutes.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(5 * 60);

/// How long a done record is kept, unless set: 24 hours, longer than either provider's retries
/// (VideoNest's last retry comes 36 minutes after the first attempt).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// Builds the deduplication key of a verified event; `None` means it has none.
pub(crate) type KeyFn<E> = Arc<dyn Fn(&Verified<E>) -> Option<String> + Send + Sync>;

/// A [`Layer`] that runs the inner service once per event, however often the event is
/// delivered. It goes *inside* a [`VerifyWebhookLayer`](crate::VerifyWebhookLayer) decoding the
/// same event type `E`, and reads the [`Verified<E>`] extension that layer inserts.
///
/// Type parameters: the event type `E`, the [`Store`](super::store::Store) `St` and the
/// rejection response `R`. See the [module docs](super) for the semantics and an example.
#[must_use]
pub struct DedupeLayer<E, St = MemoryStore, R = DefaultRejectionResponse> {
    pub(crate) store: Arc<St>,
    pub(crate) key: KeyFn<E>,
    pub(crate) namespace: Option<Arc<str>>,
    pub(crate) lease: Duration,
    pub(crate) retention: Duration,
    pub(crate) fail_open: bool,
    pub(crate) in_flight_status: Option<StatusCode>,
    pub(crate) rejection: R,
}

impl<E, St> DedupeLayer<E, St>
where
    E: WebhookEvent + Send + Sync + 'static,
{
    /// Deduplicates with `store`, keyed by the event's
    /// [`idempotency_key`](WebhookEvent::idempotency_key) (each preset documents its own).
    pub fn new(store: St) -> Self {
        Self::with_key(store, |verified: &Verified<E>| {
            verified.event().idempotency_key()
        })
    }
}

impl<E, St> DedupeLayer<E, St> {
    /// Deduplicates with `store`, keyed by `key`: any function of the verified event and its
    /// signed bytes. It should only read signed data. Requests for which it returns `None` are
    /// handed to the inner service without deduplication.
    pub fn with_key<F>(store: St, key: F) -> Self
    where
        F: Fn(&Verified<E>) -> Option<String> + Send + Sync + 'static,
    {
        Self {
            store: Arc::new(store),
            key: Arc::new(key),
            namespace: None,
            lease: DEFAULT_LEASE,
            retention: DEFAULT_RETENTION,
            fail_open: false,
            in_flight_status: None,
            rejection: DefaultRejectionResponse,
        }
    }
}

impl<E, St, R> DedupeLayer<E, St, R> {
    setters! {
        /// The namespace keys are stored under, `{namespace}:{key}`: give each route (or each
        /// endpoint a provider delivers to) its own when they share a store. By default it is the
        /// verifying scheme's name ([`Verified::provider`]).
        pub fn namespace(namespace: impl Into<Arc<str>>) { namespace = Some(namespace.into()) }

        /// How long a claim holds: while the handler runs, repeats are answered 409; a claim whose
        /// holder died (the process crashed mid-handler) is taken over by the first delivery after
        /// it runs out. [`DEFAULT_LEASE`] unless set.
        ///
        /// Make it longer than the slowest handler: the lease is not renewed while the handler
        /// runs, so a repeat that arrives after it ran out claims the key again and runs the
        /// handler *concurrently* with the first (whose completion then no longer counts: the
        /// repeat's does). Bound the handler with a timeout shorter than the lease (tower's
        /// `TimeoutLayer` inside this layer), or hand slow work to a queue.
        pub fn lease(lease: Duration) { lease = lease }

        /// How long a processed event is remembered. [`DEFAULT_RETENTION`] unless set; make it
        /// longer than the provider's retry horizon.
        pub fn retention(retention: Duration) { retention = retention }

        /// The status answered to a repeat that arrives while another delivery of the event is
        /// being processed: 409 unless set, so that the provider retries later.
        ///
        /// For a provider that counts non-2xx answers against the endpoint (and may disable it) or
        /// that never retries, a 2xx such as 202 keeps it satisfied, but then trusts the first
        /// delivery: if that one fails and the provider does not retry it, the event is lost. The
        /// safer path for such providers is a queue (`queue::Enqueue::deduplicate`, feature
        /// `queue`), which acknowledges only stored deliveries and never answers "in flight".
        pub fn in_flight_status(status: StatusCode) { in_flight_status = Some(status) }
    }

    /// When the store cannot answer, runs the handler anyway (risking a duplicate) instead of
    /// answering 503 (which the provider retries). Off by default: failing closed loses nothing.
    pub fn fail_open(mut self) -> Self {
        self.fail_open = true;
        self
    }

    /// Replaces the responses the layer sends itself (duplicate, in flight, store unavailable,
    /// not verified); see [`RejectionResponse`](crate::RejectionResponse).
    pub fn rejection_response<R2>(self, rejection: R2) -> DedupeLayer<E, St, R2> {
        DedupeLayer {
            store: self.store,
            key: self.key,
            namespace: self.namespace,
            lease: self.lease,
            retention: self.retention,
            fail_open: self.fail_open,
            in_flight_status: self.in_flight_status,
            rejection,
        }
    }

    /// The store.
    pub fn store(&self) -> &St {
        &self.store
    }
}

impl<S, E, St, R: Clone> Layer<S> for DedupeLayer<E, St, R> {
    type Service = Dedupe<S, E, St, R>;

    fn layer(&self, inner: S) -> Self::Service {
        Dedupe {
            inner,
            layer: self.clone(),
        }
    }
}

impl<E, St, R: Clone> Clone for DedupeLayer<E, St, R> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            key: Arc::clone(&self.key),
            namespace: self.namespace.clone(),
            lease: self.lease,
            retention: self.retention,
            fail_open: self.fail_open,
            in_flight_status: self.in_flight_status,
            rejection: self.rejection.clone(),
        }
    }
}

impl<E, St: fmt::Debug, R> fmt::Debug for DedupeLayer<E, St, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DedupeLayer")
            .field("event", &std::any::type_name::<E>())
            .field("store", &self.store)
            .field("namespace", &self.namespace)
            .field("lease", &self.lease)
            .field("retention", &self.retention)
            .field("fail_open", &self.fail_open)
            .field("in_flight_status", &self.in_flight_status)
            .finish_non_exhaustive()
    }
}
