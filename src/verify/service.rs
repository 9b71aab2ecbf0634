use std::{
    fmt, mem,
    sync::Arc,
    task::{Context, Poll},
    time::SystemTime,
};

use bytes::Bytes;
use http::{Request, Response, header::CONTENT_LENGTH};
use http_body::Body;
use http_body_util::Full;
use tower::Service;

use super::{
    future::{Pending, ResponseFuture},
    trace,
};
use crate::{
    BoxError, DefaultRejectionResponse, Rejection, RejectionResponse, VerifyWebhookLayer,
    decode::Decode,
    meter::Meter,
    rejection::respond_early,
    scheme::{Resolution, Scheme},
};

/// Middleware that verifies webhook signatures; made by [`VerifyWebhookLayer`].
///
/// It accepts `Request<B>` for any body `B` and calls the inner service with
/// `Request<Full<Bytes>>`, carrying a [`Verified`](crate::Verified) extension. Refused requests
/// are answered with `Ok(response)`, so the error type stays the inner service's.
///
/// See the [crate docs](crate) for an example.
pub struct VerifyWebhook<S, Sc, E = (), R = DefaultRejectionResponse> {
    pub(crate) inner: S,
    /// Everything but the inner service, behind one reference count: cloning the service (axum
    /// does, per request) and handing a request its configuration each cost one increment.
    pub(crate) shared: Arc<Shared<Sc, E, R>>,
}

/// The configuration a [`VerifyWebhook`] and its requests share.
pub(crate) struct Shared<Sc, E, R> {
    pub(crate) scheme: Arc<Sc>,
    pub(crate) provider: Arc<str>,
    pub(crate) max_body_size: usize,
    pub(crate) decode: Arc<dyn Decode<E>>,
    pub(crate) event_type: Option<super::layer::EventTypeFn<E>>,
    pub(crate) rejection: R,
    /// What the layer reports to `metrics` (nothing without the feature).
    pub(crate) meter: Meter,
    /// Whether the tenant of a verified request goes into its span and metrics labels.
    pub(crate) label_tenants: bool,
}

impl<Sc, E, R: Clone> Clone for Shared<Sc, E, R> {
    fn clone(&self) -> Self {
        Self {
            scheme: Arc::clone(&self.scheme),
            provider: Arc::clone(&self.provider),
            max_body_size: self.max_body_size,
            decode: Arc::clone(&self.decode),
            event_type: self.event_type,
            rejection: self.rejection.clone(),
            meter: self.meter.clone(),
            label_tenants: self.label_tenants,
        }
    }
}

impl<S, Sc, E, R> VerifyWebhook<S, Sc, E, R> {
    inner_service_accessors!();
}

impl<Sc: Scheme> VerifyWebhook<(), Sc> {
    /// Shortcut for [`VerifyWebhookLayer::new`].
    pub fn layer(scheme: Sc) -> VerifyWebhookLayer<Sc> {
        VerifyWebhookLayer::new(scheme)
    }
}

/// The body length the request announces, from `Content-Length` or the body's own size hint.
fn announced_len<B: Body>(request: &http::request::Parts, body: &B) -> u64 {
    let declared = request
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .unwrap_or(0);
    declared.max(body.size_hint().lower())
}

impl<S, Sc, E, R, B, ResBody> Service<Request<B>> for VerifyWebhook<S, Sc, E, R>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>> + Clone,
    Sc: Scheme,
    E: Clone + Send + Sync + 'static,
    R: RejectionResponse<ResBody> + Clone,
    B: Body,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<B, S, Sc, E, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let received_at = SystemTime::now();
        let (mut head, body) = request.into_parts();
        let shared = &*self.shared;

        // Refusals that need no body are answered at once (with `Connection: close` on HTTP/1.x
        // when body bytes are left unread), and leave the readied inner service in place for the
        // next request.
        let early = if announced_len(&head, &body) > shared.max_body_size as u64 {
            Err(Rejection::PayloadTooLarge {
                limit: shared.max_body_size,
            })
        } else {
            shared.scheme.signature(&head).map_err(Rejection::from)
        };
        // Whatever the scheme looks up (a tenant's secrets) before the body is read.
        let resolved = early.map(|signature| shared.scheme.resolve(&mut head, signature));
        let signature = match resolved {
            Ok(Resolution::Ready(Ok(signature))) => signature,
            Ok(Resolution::Pending(lookup)) => {
                let clone = self.inner.clone();
                let inner = mem::replace(&mut self.inner, clone);
                return ResponseFuture::resolving(
                    lookup,
                    body,
                    Pending {
                        head,
                        signature: (),
                        inner,
                        shared: Arc::clone(&self.shared),
                        received_at,
                    },
                );
            }
            Err(rejection) | Ok(Resolution::Ready(Err(rejection))) => {
                trace::refused(&shared.provider, &shared.meter, &rejection);
                return ResponseFuture::rejected(respond_early(
                    &shared.rejection,
                    rejection,
                    head.version,
                    &body,
                ));
            }
        };

        // The instance that was driven to readiness goes with the request; a fresh clone stays
        // behind for the next `poll_ready`.
        let clone = self.inner.clone();
        let inner = mem::replace(&mut self.inner, clone);
        ResponseFuture::collecting(
            body,
            shared.max_body_size,
            Pending {
                head,
                signature,
                inner,
                shared: Arc::clone(&self.shared),
                received_at,
            },
        )
    }
}

impl<S: Clone, Sc, E, R: Clone> Clone for VerifyWebhook<S, Sc, E, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug, Sc: fmt::Debug, E, R> fmt::Debug for VerifyWebhook<S, Sc, E, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyWebhook")
            .field("inner", &self.inner)
            .field("scheme", &self.shared.scheme)
            .field("max_body_size", &self.shared.max_body_size)
            .field("event", &std::any::type_name::<E>())
            .finish_non_exhaustive()
    }
}
