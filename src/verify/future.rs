use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::SystemTime,
};

use bytes::Bytes;
use http::{
    HeaderMap, HeaderValue, Request, Response,
    header::{CONTENT_LENGTH, TRANSFER_ENCODING},
    request::Parts,
};
use http_body::Body;
use http_body_util::Full;
use pin_project::pin_project;
use tower::Service;

use super::{
    body::Collector,
    service::Shared,
    trace::{self, Trace},
};
use crate::{
    BoxError, Rejection, RejectionResponse, Verified,
    rejection::{respond, respond_early},
    scheme::{Scheme, Signed},
};

/// Response future of [`VerifyWebhook`](crate::VerifyWebhook).
///
/// A state machine: collect the body, verify and decode it, then drive the inner service's
/// future. No allocation of its own.
#[pin_project]
pub struct ResponseFuture<B, S, Sc, E, R>
where
    S: Service<Request<Full<Bytes>>>,
    Sc: Scheme,
{
    #[pin]
    state: State<B, S, Sc, E, R>,
}

// `Collecting` carries the request head until the body is in; boxing it would cost an allocation
// per request for no gain, since the future is moved only before it is first polled.
#[allow(clippy::large_enum_variant)]
#[pin_project(project = StateProj)]
enum State<B, S, Sc, E, R>
where
    S: Service<Request<Full<Bytes>>>,
    Sc: Scheme,
{
    /// Waiting for what the scheme looks up before the body is read (a tenant's secrets);
    /// the body, not yet polled, and the rest of the request wait in `waiting`.
    Resolving {
        lookup: Lookup<Sc>,
        waiting: Option<Waiting<B, S, Sc, E, R>>,
    },
    /// Reading the body; everything needed afterwards waits in `pending`.
    Collecting {
        #[pin]
        body: B,
        collector: Collector,
        pending: Option<Pending<S, Sc, E, R>>,
    },
    /// The request was verified and handed to the inner service.
    Calling {
        #[pin]
        future: S::Future,
        trace: Trace,
    },
    /// Refused; the response is ready.
    Rejected { response: Option<S::Response> },
}

/// The request for the inner service, or the refusal and the configuration whose responder
/// answers it.
type Admitted<S, Sc, E, R> =
    Result<(S, Request<Full<Bytes>>, Trace), (Arc<Shared<Sc, E, R>>, Rejection)>;

/// The body, not yet polled, and the rest of a request whose scheme is looking up what it needs.
type Waiting<B, S, Sc, E, R> = (B, Pending<S, Sc, E, R, ()>);

/// A scheme's lookup under way ([`Resolution::Pending`](crate::scheme::Resolution::Pending)).
type Lookup<Sc> =
    Pin<Box<dyn Future<Output = Result<<Sc as Scheme>::Signature, Rejection>> + Send>>;

/// What a request needs once its body is in (`G`: its signature; `()` while the scheme is
/// still looking up what it needs).
pub(crate) struct Pending<S, Sc: Scheme, E, R, G = <Sc as Scheme>::Signature> {
    pub(crate) head: Parts,
    pub(crate) signature: G,
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared<Sc, E, R>>,
    pub(crate) received_at: SystemTime,
}

impl<S, Sc: Scheme, E, R> Pending<S, Sc, E, R, ()> {
    /// The request with the signature its lookup resolved.
    fn with(self, signature: Sc::Signature) -> Pending<S, Sc, E, R> {
        Pending {
            head: self.head,
            signature,
            inner: self.inner,
            shared: self.shared,
            received_at: self.received_at,
        }
    }
}

impl<S, Sc, E, R> Pending<S, Sc, E, R>
where
    Sc: Scheme,
    E: Clone + Send + Sync + 'static,
{
    /// Verifies, then decodes, then builds the request for the inner service.
    fn admit(mut self, body: Bytes) -> Admitted<S, Sc, E, R> {
        let shared = &*self.shared;
        let (body, reserialized) = match shared.scheme.verify(&self.signature, &body) {
            Ok(Signed::RawBody) => (body, false),
            // The inner service sees the signed form, never the unsigned raw bytes.
            Ok(Signed::Reserialized(form)) => (form, true),
            Err(err) => {
                let rejection = err.into();
                trace::refused(&shared.provider, &shared.meter, &rejection);
                return Err((self.shared, rejection));
            }
        };
        let delivery = shared.scheme.delivery(&self.head, &self.signature, &body);
        // Whichever form was signed, the inner service gets it whole, with its length. A
        // `Content-Length` that already says so (the usual case) is left as it is.
        let headers = &mut self.head.headers;
        if headers.remove(TRANSFER_ENCODING).is_some() || !has_content_length(headers, body.len()) {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        // Only with `label_tenants`: a label per tenant multiplies time series.
        let tenant = delivery.tenant.as_deref().filter(|_| shared.label_tenants);
        let event = match shared.decode.decode(&self.head, &body) {
            Ok(event) => event,
            Err(err) => {
                let rejection = err.into();
                shared.meter.refused(&rejection);
                Trace::verified(
                    &shared.provider,
                    delivery.event_type.as_deref(),
                    delivery.id.as_deref(),
                    tenant,
                )
                .refused(&rejection);
                return Err((self.shared, rejection));
            }
        };
        let trace = Trace::verified(
            &shared.provider,
            delivery
                .event_type
                .as_deref()
                .or_else(|| shared.event_type.map(|read| read(&event))),
            delivery.id.as_deref(),
            tenant,
        );
        shared.meter.verified(self.received_at, tenant);
        self.head.extensions.insert(Verified::from_layer(
            event,
            body.clone(),
            reserialized,
            Arc::clone(&shared.provider),
            delivery,
            self.received_at,
        ));
        Ok((
            self.inner,
            Request::from_parts(self.head, Full::new(body)),
            trace,
        ))
    }
}

/// Whether `headers` hold exactly one `Content-Length`, written the way `len` is written (no
/// sign, no leading zeros, no white space).
fn has_content_length(headers: &HeaderMap, len: usize) -> bool {
    let mut values = headers.get_all(CONTENT_LENGTH).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = len;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    value.as_bytes() == &digits[start..]
}

impl<B, S, Sc, E, R> ResponseFuture<B, S, Sc, E, R>
where
    S: Service<Request<Full<Bytes>>>,
    Sc: Scheme,
{
    pub(crate) fn collecting(body: B, limit: usize, pending: Pending<S, Sc, E, R>) -> Self {
        Self {
            state: State::Collecting {
                body,
                collector: Collector::new(limit),
                pending: Some(pending),
            },
        }
    }

    pub(crate) fn resolving(
        lookup: Lookup<Sc>,
        body: B,
        waiting: Pending<S, Sc, E, R, ()>,
    ) -> Self {
        Self {
            state: State::Resolving {
                lookup,
                waiting: Some((body, waiting)),
            },
        }
    }

    pub(crate) fn rejected(response: S::Response) -> Self {
        Self {
            state: State::Rejected {
                response: Some(response),
            },
        }
    }
}

const POLLED_AFTER_COMPLETION: &str = "ResponseFuture polled after completion";

impl<B, S, Sc, E, R, ResBody> Future for ResponseFuture<B, S, Sc, E, R>
where
    B: Body,
    B::Error: Into<BoxError>,
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>>,
    Sc: Scheme,
    E: Clone + Send + Sync + 'static,
    R: RejectionResponse<ResBody>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Resolving { lookup, waiting } => {
                    let resolved = ready!(lookup.as_mut().poll(cx));
                    let (body, waiting) = waiting.take().expect(POLLED_AFTER_COMPLETION);
                    match resolved {
                        Ok(signature) => {
                            let limit = waiting.shared.max_body_size;
                            this.state.set(State::Collecting {
                                body,
                                collector: Collector::new(limit),
                                pending: Some(waiting.with(signature)),
                            });
                        }
                        Err(rejection) => {
                            let shared = &waiting.shared;
                            trace::refused(&shared.provider, &shared.meter, &rejection);
                            let response = respond_early(
                                &shared.rejection,
                                rejection,
                                waiting.head.version,
                                &body,
                            );
                            this.state.set(State::Rejected { response: None });
                            return Poll::Ready(Ok(response));
                        }
                    }
                }
                StateProj::Collecting {
                    mut body,
                    collector,
                    pending,
                } => {
                    let collected = ready!(collector.poll_collect(body.as_mut(), cx));
                    let pending = pending.take().expect(POLLED_AFTER_COMPLETION);
                    let admitted = match collected {
                        Ok(bytes) => pending.admit(bytes),
                        Err(rejection) => {
                            // Refused part-way through the body (too large, or it failed).
                            trace::refused(
                                &pending.shared.provider,
                                &pending.shared.meter,
                                &rejection,
                            );
                            let response = respond_early(
                                &pending.shared.rejection,
                                rejection,
                                pending.head.version,
                                &*body,
                            );
                            this.state.set(State::Rejected { response: None });
                            return Poll::Ready(Ok(response));
                        }
                    };
                    match admitted {
                        Ok((mut inner, request, trace)) => {
                            let future = trace.in_scope(|| inner.call(request));
                            this.state.set(State::Calling { future, trace });
                        }
                        Err((shared, rejection)) => {
                            this.state.set(State::Rejected { response: None });
                            return Poll::Ready(Ok(respond(&shared.rejection, rejection)));
                        }
                    }
                }
                StateProj::Calling { future, trace } => {
                    let output = ready!(trace.in_scope(|| future.poll(cx)));
                    match &output {
                        Ok(response) => trace.handled(response.status()),
                        Err(_) => trace.failed(),
                    }
                    return Poll::Ready(output);
                }
                StateProj::Rejected { response } => {
                    return Poll::Ready(Ok(response.take().expect(POLLED_AFTER_COMPLETION)));
                }
            }
        }
    }
}

impl<B, S, Sc, E, R> fmt::Debug for ResponseFuture<B, S, Sc, E, R>
where
    S: Service<Request<Full<Bytes>>>,
    Sc: Scheme,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Resolving { .. } => "Resolving",
            State::Collecting { .. } => "Collecting",
            State::Calling { .. } => "Calling",
            State::Rejected { .. } => "Rejected",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::{
        convert::Infallible,
        pin::pin,
        task::{Context, Waker},
    };

    use tower::{ServiceBuilder, ServiceExt};

    use super::*;
    use crate::{VerifyWebhookLayer, scheme::Hmac};

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(CONTENT_LENGTH, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn content_length_is_kept_only_when_written_as_the_length() {
        assert!(has_content_length(&headers(&["1024"]), 1024));
        assert!(has_content_length(&headers(&["0"]), 0));
        assert!(!has_content_length(&headers(&["1023"]), 1024));
        assert!(!has_content_length(&headers(&["01024"]), 1024));
        assert!(!has_content_length(&headers(&[" 1024"]), 1024));
        assert!(!has_content_length(&headers(&["+1024"]), 1024));
        assert!(!has_content_length(&headers(&["1024", "1024"]), 1024));
        assert!(!has_content_length(&headers(&[]), 0));
        let max = usize::MAX.to_string();
        let mut one = HeaderMap::new();
        one.insert(CONTENT_LENGTH, HeaderValue::from_str(&max).unwrap());
        assert!(has_content_length(&one, usize::MAX));
    }

    /// What `Content-Length` the inner service sees for a request that arrived with `sent`.
    fn seen_content_length(sent: Option<&'static str>, chunked: bool) -> Vec<HeaderValue> {
        let scheme = Hmac::sha256("x-signature")
            .secret("s3cret")
            .build()
            .unwrap();
        let mut request = scheme.signed_request("hello", None, &HeaderMap::new());
        request.headers_mut().remove(CONTENT_LENGTH);
        if let Some(sent) = sent {
            request
                .headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from_static(sent));
        }
        if chunked {
            request
                .headers_mut()
                .insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        }
        let service = ServiceBuilder::new()
            .layer(VerifyWebhookLayer::new(scheme))
            .service_fn(|request: Request<Full<Bytes>>| async move {
                let seen = request.headers().get_all(CONTENT_LENGTH);
                let seen = seen.iter().cloned().collect::<Vec<_>>();
                assert!(!request.headers().contains_key(TRANSFER_ENCODING));
                let mut response = Response::new(Full::new(Bytes::new()));
                response.extensions_mut().insert(seen);
                Ok::<_, Infallible>(response)
            });
        let future = pin!(service.oneshot(request));
        match future.poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(response)) => response
                .extensions()
                .get::<Vec<HeaderValue>>()
                .expect("the inner service ran")
                .clone(),
            _ => panic!("the service answers at once"),
        }
    }

    #[test]
    fn the_inner_service_sees_the_length_of_the_body_in_canonical_form() {
        assert_eq!(seen_content_length(Some("5"), false), ["5"]);
        assert_eq!(seen_content_length(Some("005"), false), ["5"]);
        assert_eq!(seen_content_length(None, false), ["5"]);
        assert_eq!(seen_content_length(Some("5"), true), ["5"]);
        assert_eq!(seen_content_length(None, true), ["5"]);
    }
}
