use std::{
    borrow::Cow,
    convert::Infallible,
    fmt,
    future::Future,
    marker::PhantomData,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header::CONTENT_TYPE};
use http_body_util::Full;
use pin_project::pin_project;
use serde::Serialize;
use tower::Service;

use super::{Pushed, Queue, QueueError, QueueFuture, delivery::StoredRef};
use crate::{
    DefaultRejectionResponse, Rejection, RejectionResponse, Verified, WebhookEvent,
    dedupe::{DEFAULT_RETENTION, DUPLICATE_HEADER, DedupeKey, tenant_key},
    meter::Label,
    metrics as names,
    rejection::respond,
};

/// What a delivery let through by a `DedupeLayer` is stored once under: the layer's key and
/// this suffix (the key's tail is 64 hex digits, so no layer's key can end so).
const QUEUED_SUFFIX: &str = ":queued";

/// Builds the deduplication key of a verified event; `None` means it has none.
type KeyFn<E> = Arc<dyn Fn(&Verified<E>) -> Option<String> + Send + Sync>;

/// How [`Enqueue::deduplicate`] keys deliveries.
struct Once<E> {
    /// `None` until [`Enqueue::deduplicate`]: every delivery is stored.
    key: Option<KeyFn<E>>,
    namespace: Option<Arc<str>>,
    retention: Duration,
}

impl<E> Clone for Once<E> {
    fn clone(&self) -> Self {
        Self {
            key: self.key.clone(),
            namespace: self.namespace.clone(),
            retention: self.retention,
        }
    }
}

/// A service that stores each verified delivery in a [`Queue`] and answers as soon as the queue
/// has it: 200 `queued` by default; 503 when the queue is unavailable, full, or full of
/// deduplication keys ([`QueueError::KeysFull`]), so that the provider retries; 500 when the
/// request carries no `Verified<E>`.
///
/// Use it in place of the handler, inside the verifying layer. See the [module docs](super)
/// for an example.
///
/// # Deduplication
///
/// With [`deduplicate`](Self::deduplicate), each event is stored once: the event's key is
/// recorded with the delivery in one atomic step of the queue ([`Queue::push_once`]; for
/// `RedisQueue`, one Lua script, one round trip), and a repeat is answered 200 with
/// `x-webhook-duplicate: true` without being stored. There is no "in flight" state to wait
/// for: a repeat, however soon after the first, is a duplicate once the first is stored, and
/// if the store failed (503), nothing was recorded and the provider's retry is stored.
///
/// A [`DedupeLayer`](crate::dedupe::DedupeLayer) in front of a plain `Enqueue` gives the same
/// answers with any [`Store`](crate::dedupe::store::Store), at the cost of two more store
/// operations per delivery (claim, then store in the queue, then mark done); use it when the
/// records live elsewhere than the queue. With both, the layer deduplicates and `Enqueue`
/// stores what it lets through, once: it pushes with [`Queue::push_once`] under the layer's
/// key and `:queued`, kept for the layer's retention, so that a push whose reply was lost
/// (stored, but answered 503 and the claim released) makes the provider's retry a duplicate
/// rather than a second copy.
pub struct Enqueue<E, Q, R = DefaultRejectionResponse> {
    queue: Q,
    status: StatusCode,
    rejection: R,
    once: Once<E>,
    _event: PhantomData<fn() -> E>,
}

impl<E, Q> Enqueue<E, Q> {
    /// Stores deliveries of `E` in `queue`.
    pub fn new(queue: Q) -> Self {
        Self {
            queue,
            status: StatusCode::OK,
            rejection: DefaultRejectionResponse,
            once: Once {
                key: None,
                namespace: None,
                retention: DEFAULT_RETENTION,
            },
            _event: PhantomData,
        }
    }
}

impl<E: WebhookEvent + Send + Sync + 'static, Q, R> Enqueue<E, Q, R> {
    /// Stores each event once, keyed by its
    /// [`idempotency_key`](WebhookEvent::idempotency_key) (each preset documents its own), as a
    /// [`DedupeLayer`](crate::dedupe::DedupeLayer) would: see [Deduplication](#deduplication).
    /// Keys are remembered for [`DEFAULT_RETENTION`] unless set with
    /// [`retention`](Self::retention). Events without a key are stored every time.
    ///
    /// Behind a [`DedupeLayer`](crate::dedupe::DedupeLayer), the layer's key and retention
    /// decide instead (see [Deduplication](#deduplication)): this key function, namespace and
    /// retention are not used.
    ///
    /// ```
    /// use axum::{Router, body::Body, routing::post_service};
    /// use http::StatusCode;
    /// use tower::ServiceExt;
    /// use tower_webhook::{
    ///     dedupe::DUPLICATE_HEADER,
    ///     provider::videonest,
    ///     queue::{Enqueue, MemoryQueue},
    /// };
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let queue = MemoryQueue::new(1_000);
    /// let app = Router::new().route(
    ///     "/webhooks/videonest",
    ///     post_service(Enqueue::<videonest::Event, _>::new(queue.clone()).deduplicate())
    ///         .route_layer(videonest::layer(["s3cret"])?),
    /// );
    /// let body = r#"{"event":"video.processed","timestamp":"2026-03-30T10:15:00Z","data":{"id":"vid_1"}}"#;
    /// for _ in 0..2 {
    ///     let mut request = videonest::signed_request("s3cret", body)?.map(Body::new);
    ///     *request.uri_mut() = "/webhooks/videonest".parse()?;
    ///     assert_eq!(app.clone().oneshot(request).await?.status(), StatusCode::OK);
    /// }
    /// // The provider's retry was answered 200 too, but stored once.
    /// assert_eq!(queue.len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn deduplicate(self) -> Self {
        self.deduplicate_by(|verified: &Verified<E>| verified.event().idempotency_key())
    }
}

impl<E, Q, R> Enqueue<E, Q, R> {
    /// Stores each event once, keyed by `key`: any function of the verified event and its
    /// signed bytes (it should only read signed data); deliveries for which it returns `None`
    /// are stored every time. See [`deduplicate`](Self::deduplicate).
    pub fn deduplicate_by<F>(mut self, key: F) -> Self
    where
        F: Fn(&Verified<E>) -> Option<String> + Send + Sync + 'static,
    {
        self.once.key = Some(Arc::new(key));
        self
    }

    /// With [`deduplicate`](Self::deduplicate): the namespace keys are recorded under,
    /// `{namespace}:{SHA-256 of the key}` ([`tenant_key`]), instead of the verifying scheme's
    /// name ([`Verified::provider`]).
    pub fn namespace(mut self, namespace: impl Into<Arc<str>>) -> Self {
        self.once.namespace = Some(namespace.into());
        self
    }

    /// With [`deduplicate`](Self::deduplicate): how long a stored event's key is remembered,
    /// instead of [`DEFAULT_RETENTION`]. Make it longer than the provider's retry horizon.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.once.retention = retention;
        self
    }

    /// The status of the answer once a delivery is stored (200 unless set; 202 is another
    /// common choice).
    #[must_use]
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Replaces the responses for a queue that cannot store the delivery and for a request
    /// without `Verified<E>`; see [`RejectionResponse`].
    pub fn rejection_response<R2>(self, rejection: R2) -> Enqueue<E, Q, R2> {
        Enqueue {
            queue: self.queue,
            status: self.status,
            rejection,
            once: self.once,
            _event: PhantomData,
        }
    }
}

impl<E, Q, R, B> Service<Request<B>> for Enqueue<E, Q, R>
where
    E: Serialize + Send + Sync + 'static,
    Q: Queue,
    R: RejectionResponse<Full<Bytes>> + Clone,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = ResponseFuture<R>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let Some(verified) = request.extensions().get::<Verified<E>>() else {
            let rejection = Rejection::NotVerified {
                event: std::any::type_name::<E>(),
            };
            return ResponseFuture {
                state: State::Answered {
                    response: Some(respond(&self.rejection, rejection)),
                },
            };
        };
        let label = Label::new(verified.provider_name());
        // What the delivery is stored once under, if anything, and the key it carries.
        let (once, key) = match request.extensions().get::<DedupeKey>() {
            // A `DedupeLayer` in front has claimed the key (its `DedupeKey` is on the request).
            // The delivery is stored once under a marker of its own, next to that layer's
            // record: a push whose reply was lost (stored, answered 503, the claim released)
            // makes the provider's retry a duplicate instead of a second copy. (Recording the
            // layer's key itself would find the layer's own claim and refuse every delivery.)
            Some(claimed) => (
                Some((
                    format!("{}{QUEUED_SUFFIX}", claimed.as_str()),
                    claimed.retention(),
                )),
                Some(Cow::Borrowed(claimed.as_str())),
            ),
            None => match self.once.key.as_ref().and_then(|key| key(verified)) {
                Some(key) => {
                    let namespace = self
                        .once
                        .namespace
                        .as_deref()
                        .unwrap_or(verified.provider());
                    let key = tenant_key(namespace, verified.tenant(), &key);
                    (
                        Some((key.clone(), self.once.retention)),
                        Some(Cow::Owned(key)),
                    )
                }
                None => (None, None),
            },
        };
        let payload = match StoredRef::new(verified, key.as_deref()).to_bytes() {
            Ok(payload) => payload,
            Err(err) => {
                log_error!(
                    error = %err,
                    "a verified delivery does not serialise; answered 503"
                );
                label.count(names::ENQUEUED, names::QUEUE_UNAVAILABLE);
                let rejection = Rejection::Queue(QueueError::unavailable(err));
                return ResponseFuture {
                    state: State::Answered {
                        response: Some(respond(&self.rejection, rejection)),
                    },
                };
            }
        };
        let push = match once {
            Some((key, retention)) => self.queue.push_once(&key, retention, payload),
            None => {
                let push = self.queue.push(payload);
                Box::pin(async move { push.await.map(Pushed::Stored) })
            }
        };
        ResponseFuture {
            state: State::Pushing {
                push,
                status: self.status,
                rejection: self.rejection.clone(),
                label,
            },
        }
    }
}

impl<E, Q: Clone, R: Clone> Clone for Enqueue<E, Q, R> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
            status: self.status,
            rejection: self.rejection.clone(),
            once: self.once.clone(),
            _event: PhantomData,
        }
    }
}

impl<E, Q: fmt::Debug, R> fmt::Debug for Enqueue<E, Q, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enqueue")
            .field("event", &std::any::type_name::<E>())
            .field("queue", &self.queue)
            .field("status", &self.status)
            .field("deduplicate", &self.once.key.is_some())
            .finish_non_exhaustive()
    }
}

/// Response future of [`Enqueue`]: waits for the queue to confirm the write.
#[pin_project]
pub struct ResponseFuture<R> {
    #[pin]
    state: State<R>,
}

#[pin_project(project = StateProj)]
enum State<R> {
    Pushing {
        #[pin]
        push: QueueFuture<Pushed>,
        status: StatusCode,
        rejection: R,
        label: Label,
    },
    Answered {
        response: Option<Response<Full<Bytes>>>,
    },
}

impl<R: RejectionResponse<Full<Bytes>>> Future for ResponseFuture<R> {
    type Output = Result<Response<Full<Bytes>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Pushing {
                push,
                status,
                rejection,
                label,
            } => Poll::Ready(Ok(match ready!(push.poll(cx)) {
                Ok(Pushed::Duplicate) => {
                    label.count(names::ENQUEUED, names::DUPLICATE);
                    let mut response = respond(&*rejection, Rejection::Duplicate);
                    response
                        .headers_mut()
                        .insert(DUPLICATE_HEADER, HeaderValue::from_static("true"));
                    response
                }
                Ok(Pushed::Claimed) => {
                    label.count(names::ENQUEUED, names::IN_FLIGHT);
                    respond(&*rejection, Rejection::InFlight)
                }
                Ok(Pushed::Stored(_)) => {
                    label.count(names::ENQUEUED, names::STORED);
                    let mut response = Response::new(Full::new(Bytes::from_static(b"queued\n")));
                    *response.status_mut() = *status;
                    response.headers_mut().insert(
                        CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; charset=utf-8"),
                    );
                    response
                }
                Err(err) => {
                    label.count(names::ENQUEUED, names::QUEUE_UNAVAILABLE);
                    queue_failed(&err);
                    respond(&*rejection, Rejection::Queue(err))
                }
            })),
            StateProj::Answered { response } => Poll::Ready(Ok(response
                .take()
                .expect("ResponseFuture polled after completion"))),
        }
    }
}

/// Logs a queue that could not store a delivery (inside the verifying layer's span, which
/// names the provider, the event type and the delivery id).
#[cfg_attr(
    not(feature = "tracing"),
    allow(unused_variables, clippy::single_match)
)]
fn queue_failed(err: &QueueError) {
    match err {
        QueueError::UnknownFormat => log_error!(
            error = %crate::log::ErrorChain(err),
            "deduplication record of an unknown format; answered 503"
        ),
        _ => log_warn!(
            error = %crate::log::ErrorChain(err),
            "the webhook queue could not store a delivery; answered 503"
        ),
    }
}

impl<R> fmt::Debug for ResponseFuture<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
