use std::{
    convert::Infallible,
    fmt,
    future::Future,
    marker::PhantomData,
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header::CONTENT_TYPE};
use http_body_util::Full;
use pin_project::pin_project;
use serde::Serialize;
use tower::Service;

use super::{MessageId, Queue, QueueError, QueueFuture, delivery::StoredRef};
use crate::{
    DefaultRejectionResponse, Rejection, RejectionResponse, Verified, dedupe::DedupeKey,
    rejection::respond,
};

/// A service that stores each verified delivery in a [`Queue`] and answers as soon as the queue
/// has it: 200 `queued` by default, 503 when the queue is unavailable or full (the provider
/// retries), 500 when the request carries no `Verified<E>`.
///
/// Use it in place of the handler, inside the verifying layer (and the deduplication layer,
/// if any). See the [module docs](super) for an example.
pub struct Enqueue<E, Q, R = DefaultRejectionResponse> {
    queue: Q,
    status: StatusCode,
    rejection: R,
    _event: PhantomData<fn() -> E>,
}

impl<E, Q> Enqueue<E, Q> {
    /// Stores deliveries of `E` in `queue`.
    pub fn new(queue: Q) -> Self {
        Self {
            queue,
            status: StatusCode::OK,
            rejection: DefaultRejectionResponse,
            _event: PhantomData,
        }
    }
}

impl<E, Q, R> Enqueue<E, Q, R> {
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
        let key = request
            .extensions()
            .get::<DedupeKey>()
            .map(DedupeKey::as_str);
        let payload = match (StoredRef { verified, key }).to_bytes() {
            Ok(payload) => payload,
            Err(err) => {
                let rejection = Rejection::Queue(QueueError::unavailable(err));
                return ResponseFuture {
                    state: State::Answered {
                        response: Some(respond(&self.rejection, rejection)),
                    },
                };
            }
        };
        ResponseFuture {
            state: State::Pushing {
                push: self.queue.push(payload),
                status: self.status,
                rejection: self.rejection.clone(),
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
        push: QueueFuture<MessageId>,
        status: StatusCode,
        rejection: R,
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
            } => Poll::Ready(Ok(match ready!(push.poll(cx)) {
                Ok(_) => {
                    let mut response = Response::new(Full::new(Bytes::from_static(b"queued\n")));
                    *response.status_mut() = *status;
                    response.headers_mut().insert(
                        CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; charset=utf-8"),
                    );
                    response
                }
                Err(err) => respond(&*rejection, Rejection::Queue(err)),
            })),
            StateProj::Answered { response } => Poll::Ready(Ok(response
                .take()
                .expect("ResponseFuture polled after completion"))),
        }
    }
}

impl<R> fmt::Debug for ResponseFuture<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
