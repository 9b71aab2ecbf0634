use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use http::{HeaderName, HeaderValue, Request, Response};
use pin_project::pin_project;
use tower::Service;

use super::{
    DedupeLayer,
    store::{Claim, Store, Token},
};
use crate::{Rejection, RejectionResponse, rejection::respond};

/// The header on a duplicate's answer: `x-webhook-duplicate: true`.
pub const DUPLICATE_HEADER: HeaderName = HeaderName::from_static("x-webhook-duplicate");

/// Response future of [`Dedupe`](super::Dedupe): claim the key, run the inner service, then mark
/// the key done or release it.
#[pin_project]
pub struct ResponseFuture<S, B, St, R>
where
    S: Service<Request<B>>,
    St: Store,
{
    #[pin]
    state: State<S, B, St, R>,
}

// `Claiming` carries the request while the store answers; boxing it would cost an allocation per
// request for no gain, since the future is moved only before it is first polled.
#[allow(clippy::large_enum_variant)]
#[pin_project(project = StateProj)]
enum State<S, B, St, R>
where
    S: Service<Request<B>>,
    St: Store,
{
    /// Not polled yet: the claim is asked for on the first poll, so that a future dropped
    /// before it is polled leaves no claim behind.
    Start {
        pending: Option<Pending<S, B, St, R>>,
    },
    /// Waiting for the store's answer; the request and the readied service wait here.
    Claiming {
        #[pin]
        claim: St::ClaimFuture,
        pending: Option<Pending<S, B, St, R>>,
    },
    /// The inner service runs; `guard` holds the claim (none without deduplication).
    Calling {
        #[pin]
        future: S::Future,
        guard: Option<Guard<St>>,
    },
    /// Marking the key done, or releasing it; then the inner service's output is returned.
    Settling {
        #[pin]
        settle: St::SettleFuture,
        output: Option<Result<S::Response, S::Error>>,
    },
    /// Answered by the layer itself.
    Answered { response: Option<S::Response> },
}

/// What a claimed request needs once the store has answered.
struct Pending<S, B, St, R> {
    inner: S,
    request: Request<B>,
    key: Arc<str>,
    store: Arc<St>,
    lease: Duration,
    retention: Duration,
    fail_open: bool,
    rejection: R,
}

/// Holds a claim while the inner service runs; if the future is dropped before it settles, the
/// claim is handed back with [`Store::abandon`].
struct Guard<St: Store> {
    store: Arc<St>,
    key: Arc<str>,
    token: Token,
    retention: Duration,
    armed: bool,
}

impl<St: Store> Guard<St> {
    /// Completes (after a 2xx) or releases (otherwise) the claim; the guard is disarmed.
    fn settle(mut self, success: bool) -> St::SettleFuture {
        self.armed = false;
        if success {
            self.store.complete(&self.key, &self.token, self.retention)
        } else {
            self.store.release(&self.key, &self.token)
        }
    }
}

impl<St: Store> Drop for Guard<St> {
    fn drop(&mut self) {
        if self.armed {
            self.store.abandon(&self.key, &self.token);
        }
    }
}

impl<S, B, St, R> ResponseFuture<S, B, St, R>
where
    S: Service<Request<B>>,
    St: Store,
{
    pub(crate) fn answered(response: S::Response) -> Self {
        Self {
            state: State::Answered {
                response: Some(response),
            },
        }
    }

    pub(crate) fn unguarded(mut inner: S, request: Request<B>) -> Self {
        Self {
            state: State::Calling {
                future: inner.call(request),
                guard: None,
            },
        }
    }

    pub(crate) fn claiming<E>(
        inner: S,
        request: Request<B>,
        key: Arc<str>,
        layer: &DedupeLayer<E, St, R>,
    ) -> Self
    where
        R: Clone,
    {
        Self {
            state: State::Start {
                pending: Some(Pending {
                    inner,
                    request,
                    key,
                    store: Arc::clone(&layer.store),
                    lease: layer.lease,
                    retention: layer.retention,
                    fail_open: layer.fail_open,
                    rejection: layer.rejection.clone(),
                }),
            },
        }
    }
}

/// The layer's own answer, with the duplicate header on a duplicate's.
fn answer<B, R: RejectionResponse<B>>(responder: &R, rejection: Rejection) -> Response<B> {
    let duplicate = matches!(rejection, Rejection::Duplicate);
    let mut response = respond(responder, rejection);
    if duplicate {
        response
            .headers_mut()
            .insert(DUPLICATE_HEADER, HeaderValue::from_static("true"));
    }
    response
}

const POLLED_AFTER_COMPLETION: &str = "ResponseFuture polled after completion";

impl<S, B, St, R, ResBody> Future for ResponseFuture<S, B, St, R>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    St: Store,
    R: RejectionResponse<ResBody>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Start { pending } => {
                    let pending = pending.take().expect(POLLED_AFTER_COMPLETION);
                    let claim = pending.store.claim(&pending.key, pending.lease);
                    this.state.set(State::Claiming {
                        claim,
                        pending: Some(pending),
                    });
                }
                StateProj::Claiming { claim, pending } => {
                    let claim = ready!(claim.poll(cx));
                    let Pending {
                        mut inner,
                        request,
                        key,
                        store,
                        lease: _,
                        retention,
                        fail_open,
                        rejection,
                    } = pending.take().expect(POLLED_AFTER_COMPLETION);
                    let guard = match claim {
                        Ok(Claim::Acquired(token)) => Some(Guard {
                            store,
                            key,
                            token,
                            retention,
                            armed: true,
                        }),
                        Err(_) if fail_open => None,
                        answered => {
                            let rejection_kind = match answered {
                                Ok(Claim::Done) => Rejection::Duplicate,
                                Ok(_) => Rejection::InFlight,
                                Err(err) => Rejection::Store(err),
                            };
                            this.state.set(State::Answered { response: None });
                            return Poll::Ready(Ok(answer(&rejection, rejection_kind)));
                        }
                    };
                    let future = inner.call(request);
                    this.state.set(State::Calling { future, guard });
                }
                StateProj::Calling { future, guard } => {
                    let output = ready!(future.poll(cx));
                    let Some(guard) = guard.take() else {
                        return Poll::Ready(output);
                    };
                    let success = matches!(&output, Ok(response) if response.status().is_success());
                    let settle = guard.settle(success);
                    this.state.set(State::Settling {
                        settle,
                        output: Some(output),
                    });
                }
                StateProj::Settling { settle, output } => {
                    // A store that fails here cannot change the answer: after a 2xx the event
                    // was processed (the claim runs out with its lease), otherwise the failure
                    // is answered as it is and the claim runs out the same way. The error goes
                    // into the response's extensions for outer layers to log.
                    let settled = ready!(settle.poll(cx));
                    let mut output = output.take().expect(POLLED_AFTER_COMPLETION);
                    if let (Err(err), Ok(response)) = (settled, &mut output) {
                        response.extensions_mut().insert(err);
                    }
                    return Poll::Ready(output);
                }
                StateProj::Answered { response } => {
                    return Poll::Ready(Ok(response.take().expect(POLLED_AFTER_COMPLETION)));
                }
            }
        }
    }
}

impl<S, B, St, R> fmt::Debug for ResponseFuture<S, B, St, R>
where
    S: Service<Request<B>>,
    St: Store,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Start { .. } => "Start",
            State::Claiming { .. } => "Claiming",
            State::Calling { .. } => "Calling",
            State::Settling { .. } => "Settling",
            State::Answered { .. } => "Answered",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
