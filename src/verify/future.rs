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
    HeaderValue, Request, Response,
    header::{CONTENT_LENGTH, TRANSFER_ENCODING},
    request::Parts,
};
use http_body::Body;
use http_body_util::Full;
use pin_project::pin_project;
use tower::Service;

use super::body::Collector;
use crate::{
    BoxError, Rejection, RejectionResponse, Verified,
    decode::Decode,
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
    },
    /// Refused; the response is ready.
    Rejected { response: Option<S::Response> },
}

/// The request for the inner service, or the refusal and the responder that answers it.
type Admitted<S, R> = Result<(S, Request<Full<Bytes>>), (R, Rejection)>;

/// What a request needs once its body is in.
pub(crate) struct Pending<S, Sc: Scheme, E, R> {
    pub(crate) head: Parts,
    pub(crate) signature: Sc::Signature,
    pub(crate) inner: S,
    pub(crate) scheme: Arc<Sc>,
    pub(crate) provider: Arc<str>,
    pub(crate) received_at: SystemTime,
    pub(crate) decode: Arc<dyn Decode<E>>,
    pub(crate) rejection: R,
}

impl<S, Sc, E, R> Pending<S, Sc, E, R>
where
    Sc: Scheme,
    E: Clone + Send + Sync + 'static,
{
    /// Verifies, then decodes, then builds the request for the inner service.
    fn admit(mut self, body: Bytes) -> Admitted<S, R> {
        let mut delivery = self.scheme.delivery(&self.signature);
        let (body, reserialized) = match self.scheme.verify(self.signature, &body) {
            Ok(Signed::RawBody) => (body, false),
            // The inner service sees the signed form, never the unsigned raw bytes.
            Ok(Signed::Reserialized(form)) => (form, true),
            Err(err) => return Err((self.rejection, err.into())),
        };
        self.scheme.complete_delivery(&mut delivery, &body);
        // Whichever form was signed, the inner service gets it whole, with its length.
        let headers = &mut self.head.headers;
        headers.remove(TRANSFER_ENCODING);
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        let event = match self.decode.decode(&self.head, &body) {
            Ok(event) => event,
            Err(err) => return Err((self.rejection, err.into())),
        };
        self.head.extensions.insert(Verified::from_layer(
            event,
            body.clone(),
            reserialized,
            self.provider,
            delivery,
            self.received_at,
        ));
        Ok((self.inner, Request::from_parts(self.head, Full::new(body))))
    }
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
                            let response = respond_early(
                                &pending.rejection,
                                rejection,
                                pending.head.version,
                                &*body,
                            );
                            this.state.set(State::Rejected { response: None });
                            return Poll::Ready(Ok(response));
                        }
                    };
                    match admitted {
                        Ok((mut inner, request)) => {
                            let future = inner.call(request);
                            this.state.set(State::Calling { future });
                        }
                        Err((responder, rejection)) => {
                            this.state.set(State::Rejected { response: None });
                            return Poll::Ready(Ok(respond(&responder, rejection)));
                        }
                    }
                }
                StateProj::Calling { future } => return future.poll(cx),
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
            State::Collecting { .. } => "Collecting",
            State::Calling { .. } => "Calling",
            State::Rejected { .. } => "Rejected",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
