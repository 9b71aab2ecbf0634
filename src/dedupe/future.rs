use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use pin_project::pin_project;
use tower::Service;

use super::{
    DedupeLayer,
    store::{Claim, Store, StoreError, Token},
};
use crate::{Rejection, RejectionResponse, meter::Label, metrics as names, rejection::respond};

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
        pending: Option<Pending<S, B, R>>,
        guard: Option<Guard<St>>,
    },
    /// Waiting for the store's answer; the request and the readied service wait here. The
    /// guard is armed: if this future is dropped now, the claim (which may still land) is
    /// handed back.
    Claiming {
        #[pin]
        claim: St::ClaimFuture,
        pending: Option<Pending<S, B, R>>,
        guard: Option<Guard<St>>,
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
        /// The claim being settled, and whether the handler succeeded: a release that fails,
        /// or whose future is dropped, is handed to [`Store::abandon`].
        settled: Option<(Guard<St>, bool)>,
    },
    /// Answered by the layer itself.
    Answered { response: Option<S::Response> },
}

/// What a claimed request needs once the store has answered.
struct Pending<S, B, R> {
    inner: S,
    request: Request<B>,
    lease: Duration,
    fail_open: bool,
    in_flight: Option<StatusCode>,
    rejection: R,
    /// The provider, for `metrics`.
    label: Label,
}

/// A claim of the layer's: its key and token. While armed, dropping it hands the claim back
/// with [`Store::abandon`] (the request's future was dropped, or the claim's answer never
/// came).
struct Guard<St: Store> {
    store: Arc<St>,
    key: Arc<str>,
    token: Token,
    retention: Duration,
    armed: bool,
}

impl<St: Store> Guard<St> {
    /// Completes (after a 2xx) or releases (otherwise) the claim. A completion disarms the
    /// guard (the event was processed: if it never lands, the claim runs out with its lease);
    /// a release keeps it armed until the store has answered, so that a future dropped
    /// meanwhile still hands the claim back.
    fn settle(&mut self, success: bool) -> St::SettleFuture {
        if success {
            self.armed = false;
            self.store.complete(&self.key, &self.token, self.retention)
        } else {
            self.store.release(&self.key, &self.token)
        }
    }

    /// Hands the claim back now, whether or not it landed.
    fn abandon(mut self) {
        self.armed = false;
        self.store.abandon(&self.key, &self.token);
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

    pub(crate) fn unguarded(mut inner: S, request: Request<B>, label: &Label) -> Self {
        label.count(names::DEDUPE, names::UNKEYED);
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
        token: Token,
        layer: &DedupeLayer<E, St, R>,
        label: Label,
    ) -> Self
    where
        R: Clone,
    {
        Self {
            state: State::Start {
                pending: Some(Pending {
                    inner,
                    request,
                    lease: layer.lease,
                    fail_open: layer.fail_open,
                    in_flight: layer.in_flight_status,
                    rejection: layer.rejection.clone(),
                    label,
                }),
                guard: Some(Guard {
                    store: Arc::clone(&layer.store),
                    key,
                    token,
                    retention: layer.retention,
                    armed: false,
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

/// Logs a store that could not answer a claim.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
fn claim_failed(key: &str, err: &StoreError, fail_open: bool) {
    let outcome = if fail_open {
        "handled without deduplication (fail open)"
    } else {
        "answered 503"
    };
    if matches!(err, StoreError::UnknownFormat) {
        log_error!(key, error = %crate::log::ErrorChain(err), outcome, "deduplication record of an unknown format");
    } else {
        log_warn!(key, error = %crate::log::ErrorChain(err), outcome, "deduplication store unavailable");
    }
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
                StateProj::Start { pending, guard } => {
                    let pending = pending.take().expect(POLLED_AFTER_COMPLETION);
                    let mut guard = guard.take().expect(POLLED_AFTER_COMPLETION);
                    let claim = guard.store.claim(&guard.key, &guard.token, pending.lease);
                    // From here on the claim may land, whatever becomes of this future.
                    guard.armed = true;
                    this.state.set(State::Claiming {
                        claim,
                        pending: Some(pending),
                        guard: Some(guard),
                    });
                }
                StateProj::Claiming {
                    claim,
                    pending,
                    guard,
                } => {
                    let claim = ready!(claim.poll(cx));
                    let Pending {
                        mut inner,
                        request,
                        lease: _,
                        fail_open,
                        in_flight,
                        rejection,
                        label,
                    } = pending.take().expect(POLLED_AFTER_COMPLETION);
                    let mut guard = guard.take().expect(POLLED_AFTER_COMPLETION);
                    let outcome = match &claim {
                        Ok(Claim::Acquired) => names::FIRST,
                        Ok(Claim::Done) => names::DUPLICATE,
                        Ok(_) => names::IN_FLIGHT,
                        Err(err) if fail_open && !matches!(err, StoreError::UnknownFormat) => {
                            names::FAIL_OPEN
                        }
                        Err(_) => names::STORE_UNAVAILABLE,
                    };
                    label.count(names::DEDUPE, outcome);
                    let guard = match claim {
                        Ok(Claim::Acquired) => Some(guard),
                        Err(err) => {
                            // The claim may still land (a stalled store runs it later): hand
                            // it back, so that the provider's next retry finds the key free. A
                            // record of an unknown format is never taken for free, even failing
                            // open: it may say "done".
                            let fail_open = fail_open && !matches!(err, StoreError::UnknownFormat);
                            claim_failed(&guard.key, &err, fail_open);
                            guard.abandon();
                            if !fail_open {
                                this.state.set(State::Answered { response: None });
                                return Poll::Ready(Ok(answer(&rejection, Rejection::Store(err))));
                            }
                            None
                        }
                        Ok(answered) => {
                            // Nothing of this delivery's is held.
                            guard.armed = false;
                            let mut response = match answered {
                                Claim::Done => answer(&rejection, Rejection::Duplicate),
                                _ => answer(&rejection, Rejection::InFlight),
                            };
                            if let (Claim::InFlight, Some(status)) = (answered, in_flight) {
                                *response.status_mut() = status;
                            }
                            this.state.set(State::Answered { response: None });
                            return Poll::Ready(Ok(response));
                        }
                    };
                    let future = inner.call(request);
                    this.state.set(State::Calling { future, guard });
                }
                StateProj::Calling { future, guard } => {
                    let output = ready!(future.poll(cx));
                    let Some(mut guard) = guard.take() else {
                        return Poll::Ready(output);
                    };
                    let success = matches!(&output, Ok(response) if response.status().is_success());
                    let settle = guard.settle(success);
                    this.state.set(State::Settling {
                        settle,
                        output: Some(output),
                        settled: Some((guard, success)),
                    });
                }
                StateProj::Settling {
                    settle,
                    output,
                    settled,
                } => {
                    // A store that fails here cannot change the answer. After a 2xx the event
                    // was processed: the claim runs out with its lease (a later repeat is
                    // processed again). After a failure the release is handed to
                    // `Store::abandon`, which keeps trying, so that the provider's retry is not
                    // refused for the lease. The error goes into the response's extensions for
                    // outer layers to log.
                    let result = ready!(settle.poll(cx));
                    let mut output = output.take().expect(POLLED_AFTER_COMPLETION);
                    let (mut guard, success) = settled.take().expect(POLLED_AFTER_COMPLETION);
                    if result.is_ok() {
                        guard.armed = false;
                    }
                    if let Err(err) = result {
                        if success {
                            log_warn!(
                                key = &*guard.key,
                                error = %crate::log::ErrorChain(&err),
                                "deduplication store could not mark a processed event done; a \
                                 repeat after the lease runs out is processed again"
                            );
                        } else {
                            log_warn!(
                                key = &*guard.key,
                                error = %crate::log::ErrorChain(&err),
                                "deduplication store could not release a failed delivery's \
                                 claim; releasing it in the background"
                            );
                            guard.abandon();
                        }
                        if let Ok(response) = &mut output {
                            response.extensions_mut().insert(err);
                        }
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
