//! Why a layer answered a request itself, and the response it gets.
//!
//! Every such request is answered by the layer (verification or deduplication): the inner
//! service (your handler) never runs for it. The default response is a short `text/plain` reason with the status of
//! [`Rejection::status`]; the typed [`Rejection`] is also put into the response extensions, so
//! outer layers (logging, metrics) can inspect it. Replace the response with
//! [`VerifyWebhookLayer::rejection_response`](crate::VerifyWebhookLayer::rejection_response).
//!
//! | rejection | status |
//! | --- | --- |
//! | signature header missing, malformed, repeated, or not matching; signed timestamp outside the tolerance | 401 Unauthorized |
//! | body larger than the limit (by `Content-Length` or while reading) | 413 Payload Too Large |
//! | body failed while being read | 400 Bad Request |
//! | verified body is not a valid event | 400 Bad Request |
//! | deduplication: a repeat of a processed event | 200 OK (with `x-webhook-duplicate: true`) |
//! | deduplication: a repeat while the first delivery is processed | 409 Conflict |
//! | deduplication: the store is unavailable | 503 Service Unavailable |
//! | tenants: the tenant's secrets could not be looked up (an unknown tenant is a signature mismatch: 401) | 503 Service Unavailable |
//! | deduplication outside the verifying layer | 500 Internal Server Error |
//!
//! # Keep-alive
//!
//! A refusal made before the body was read to its end (413 by `Content-Length` or part-way
//! through, 401 for a missing or malformed signature header, 400 for a body that failed) can leave
//! body bytes unread on the connection, so the server closes it after the response. For an
//! HTTP/1.0 or HTTP/1.1 request the layer says so: such a response gets `Connection: close`
//! (replacing any `Connection` header of the rejection response), so that a pooled client does
//! not send its next request on a closed connection. A request that announces no body (the body
//! is at its end, or its size hint is exactly 0), a refusal after the whole body was read
//! (signature mismatch, invalid event), and HTTP/2 or HTTP/3 requests get no `Connection` header
//! from the layer.

use std::{borrow::Cow, error::Error as StdError, fmt, sync::Arc};

use crate::dedupe::store::StoreError;
use bytes::Bytes;
use http::{
    HeaderName, HeaderValue, Response, StatusCode, Version,
    header::{CONNECTION, CONTENT_TYPE},
};
use http_body::Body;
use http_body_util::Full;

type SharedError = Arc<dyn StdError + Send + Sync>;

/// Why a layer answered a request itself instead of running the inner service: a refusal by
/// the verifying layer, or an answer of the deduplication layer.
///
/// ```
/// use http::StatusCode;
/// use tower_webhook::{Rejection, SignatureError};
///
/// let rejection = Rejection::from(SignatureError::Mismatch);
/// assert_eq!(rejection.status(), StatusCode::UNAUTHORIZED);
/// assert_eq!(rejection.to_string(), "webhook signature does not match");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Rejection {
    /// The signature could not be checked or did not match.
    Signature(SignatureError),
    /// The body is larger than the configured limit.
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body failed while it was being read.
    Body(BodyError),
    /// The signature matched but the body is not a valid event.
    Decode(DecodeError),
    /// A repeat of an event that was already received, answered without running the handler:
    /// 200, so that the provider stops retrying. Behind a
    /// [`DedupeLayer`](crate::dedupe::DedupeLayer) the first delivery was handled; when the
    /// handler is a queue (`queue::Enqueue` behind a `DedupeLayer`, or
    /// `Enqueue::deduplicate`), it was stored, and may not have been processed yet.
    Duplicate,
    /// A repeat that arrived while another delivery of the same event is being processed: 409,
    /// so that the provider retries later (a 2xx could lose the event if the first attempt then
    /// fails).
    InFlight,
    /// The deduplication store could not answer: 503, so that the provider retries.
    Store(StoreError),
    /// The queue could not store the delivery: 503, so that the provider retries (nothing was
    /// acknowledged).
    #[cfg(feature = "queue")]
    #[cfg_attr(docsrs, doc(cfg(feature = "queue")))]
    Queue(crate::queue::QueueError),
    /// The secrets of the tenant the request names could not be looked up (the lookup failed or
    /// took too long): 503, so that the provider retries. See [`tenant`](crate::tenant).
    #[cfg(feature = "tenants")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tenants")))]
    Tenant(crate::tenant::TenantError),
    /// A layer that works on verified webhooks found no `Verified<E>` of its event type on the
    /// request: it is not inside a [`VerifyWebhookLayer`](crate::VerifyWebhookLayer) decoding
    /// that type. A configuration error: 500.
    NotVerified {
        /// The event type the layer expected, as Rust spells it.
        event: &'static str,
    },
}

impl Rejection {
    /// A short, stable name of the reason, in `snake_case`, for metrics and logs:
    /// `missing_signature`, `malformed_signature`, `repeated_signature`, `signature_mismatch`,
    /// `out_of_tolerance`, `signature_refused` (a scheme's own reason), `too_large`,
    /// `body_error`, `invalid_event`, `duplicate`, `in_flight`, `store_unavailable`,
    /// `queue_unavailable`, `tenant_unavailable`, `not_verified`. Never anything of the request.
    ///
    /// ```
    /// use tower_webhook::{Rejection, SignatureError};
    ///
    /// assert_eq!(Rejection::from(SignatureError::Mismatch).label(), "signature_mismatch");
    /// assert_eq!(Rejection::PayloadTooLarge { limit: 1 }.label(), "too_large");
    /// ```
    pub fn label(&self) -> &'static str {
        match self {
            Self::Signature(err) => match err {
                SignatureError::Missing { .. } => "missing_signature",
                SignatureError::Malformed { .. } => "malformed_signature",
                SignatureError::Repeated { .. } => "repeated_signature",
                SignatureError::Mismatch => "signature_mismatch",
                SignatureError::OutOfTolerance { .. } => "out_of_tolerance",
                SignatureError::Other(_) => "signature_refused",
            },
            Self::PayloadTooLarge { .. } => "too_large",
            Self::Body(_) => "body_error",
            Self::Decode(_) => "invalid_event",
            Self::Duplicate => "duplicate",
            Self::InFlight => "in_flight",
            Self::Store(_) => "store_unavailable",
            #[cfg(feature = "queue")]
            Self::Queue(_) => "queue_unavailable",
            #[cfg(feature = "tenants")]
            Self::Tenant(_) => "tenant_unavailable",
            Self::NotVerified { .. } => "not_verified",
        }
    }

    /// The HTTP status the default response uses.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Signature(_) => StatusCode::UNAUTHORIZED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Body(_) | Self::Decode(_) => StatusCode::BAD_REQUEST,
            Self::Duplicate => StatusCode::OK,
            Self::InFlight => StatusCode::CONFLICT,
            Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            #[cfg(feature = "queue")]
            Self::Queue(_) => StatusCode::SERVICE_UNAVAILABLE,
            #[cfg(feature = "tenants")]
            Self::Tenant(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotVerified { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Signature(err) => fmt::Display::fmt(err, f),
            Self::PayloadTooLarge { limit } => {
                write!(f, "webhook body is larger than the limit of {limit} bytes")
            }
            Self::Body(err) => fmt::Display::fmt(err, f),
            Self::Decode(err) => fmt::Display::fmt(err, f),
            Self::Duplicate => f.write_str("duplicate webhook delivery: already received"),
            Self::InFlight => {
                f.write_str("webhook delivery is already being processed; retry later")
            }
            Self::Store(err) => fmt::Display::fmt(err, f),
            #[cfg(feature = "queue")]
            Self::Queue(err) => fmt::Display::fmt(err, f),
            #[cfg(feature = "tenants")]
            Self::Tenant(err) => fmt::Display::fmt(err, f),
            Self::NotVerified { event } => write!(
                f,
                "no verified webhook of type `{event}` on the request: put this layer inside a \
                 VerifyWebhookLayer that decodes that type"
            ),
        }
    }
}

impl StdError for Rejection {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Signature(err) => Some(err),
            Self::PayloadTooLarge { .. } => None,
            Self::Body(err) => Some(err),
            Self::Decode(err) => Some(err),
            Self::Store(err) => Some(err),
            #[cfg(feature = "queue")]
            Self::Queue(err) => Some(err),
            #[cfg(feature = "tenants")]
            Self::Tenant(err) => Some(err),
            Self::Duplicate | Self::InFlight | Self::NotVerified { .. } => None,
        }
    }
}

impl From<SignatureError> for Rejection {
    fn from(err: SignatureError) -> Self {
        Self::Signature(err)
    }
}

impl From<BodyError> for Rejection {
    fn from(err: BodyError) -> Self {
        Self::Body(err)
    }
}

impl From<DecodeError> for Rejection {
    fn from(err: DecodeError) -> Self {
        Self::Decode(err)
    }
}

/// Why a signature was refused. Each is answered with 401.
///
/// The messages name the header and the format expected but never echo the value received or
/// anything secret. Schemes written outside the crate report their own reasons with
/// [`SignatureError::other`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SignatureError {
    /// The signature header is absent.
    Missing {
        /// The header the scheme reads.
        header: HeaderName,
    },
    /// The signature header is present but not in the scheme's format (wrong prefix, wrong
    /// length, upper-case or non-hex digits, bad base64, bytes that are not text, …).
    Malformed {
        /// The header the scheme reads.
        header: HeaderName,
        /// What a well-formed value looks like, e.g. "64 lower-case hex digits".
        expected: Cow<'static, str>,
    },
    /// The signature header appears more than once; a scheme that sends one signature never
    /// does that, so the request is refused rather than guessing which one counts.
    Repeated {
        /// The header the scheme reads.
        header: HeaderName,
    },
    /// The signature is well formed but no configured secret produced it.
    Mismatch,
    /// A signature matched, but its signed timestamp is further from the receiver's clock than
    /// the scheme's tolerance: a replayed (or badly delayed, or future-dated) delivery. Only
    /// reported after the signature was verified.
    OutOfTolerance {
        /// The signed timestamp minus the receiver's clock, in whole seconds (negative: in the
        /// past).
        offset_seconds: i64,
        /// The tolerance.
        tolerance: std::time::Duration,
    },
    /// A reason of the scheme's own: a timestamp outside the tolerance, a version it does not
    /// support, … Its `Display` text becomes the response's reason, so it must not echo secrets.
    Other(Arc<dyn StdError + Send + Sync>),
}

impl SignatureError {
    /// A scheme's own reason for refusing a signature (answered with 401).
    ///
    /// ```
    /// use tower_webhook::SignatureError;
    ///
    /// let err = SignatureError::other("timestamp is 612 s away from now; the tolerance is 300 s");
    /// assert_eq!(
    ///     err.to_string(),
    ///     "webhook signature refused: timestamp is 612 s away from now; the tolerance is 300 s"
    /// );
    /// ```
    pub fn other(reason: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::Other(Arc::from(reason.into()))
    }
}

impl PartialEq for SignatureError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Missing { header: a }, Self::Missing { header: b })
            | (Self::Repeated { header: a }, Self::Repeated { header: b }) => a == b,
            (
                Self::Malformed {
                    header: a,
                    expected: x,
                },
                Self::Malformed {
                    header: b,
                    expected: y,
                },
            ) => a == b && x == y,
            (Self::Mismatch, Self::Mismatch) => true,
            (
                Self::OutOfTolerance {
                    offset_seconds: a,
                    tolerance: x,
                },
                Self::OutOfTolerance {
                    offset_seconds: b,
                    tolerance: y,
                },
            ) => a == b && x == y,
            (Self::Other(a), Self::Other(b)) => a.to_string() == b.to_string(),
            _ => false,
        }
    }
}

impl Eq for SignatureError {}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { header } => write!(f, "missing webhook signature header `{header}`"),
            Self::Malformed { header, expected } => {
                write!(
                    f,
                    "malformed webhook signature in header `{header}`: expected {expected}"
                )
            }
            Self::Repeated { header } => {
                write!(
                    f,
                    "webhook signature header `{header}` appears more than once"
                )
            }
            Self::Mismatch => f.write_str("webhook signature does not match"),
            Self::OutOfTolerance {
                offset_seconds,
                tolerance,
            } => write!(
                f,
                "webhook timestamp is {} s in the {}; the tolerance is {} s",
                offset_seconds.unsigned_abs(),
                if *offset_seconds < 0 {
                    "past"
                } else {
                    "future"
                },
                tolerance.as_secs()
            ),
            Self::Other(reason) => write!(f, "webhook signature refused: {reason}"),
        }
    }
}

impl StdError for SignatureError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Other(reason) => Some(&**reason),
            _ => None,
        }
    }
}

/// The request body failed while it was being read (the client went away, a malformed chunk, …).
#[derive(Debug, Clone)]
pub struct BodyError(SharedError);

impl BodyError {
    pub(crate) fn new(err: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self(Arc::from(err.into()))
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("failed to read the webhook body")
    }
}

impl StdError for BodyError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.0)
    }
}

/// The verified body could not be turned into the configured event type.
///
/// ```
/// use tower_webhook::DecodeError;
///
/// let err = DecodeError::new("missing field `event`");
/// assert_eq!(err.to_string(), "webhook body is not a valid event: missing field `event`");
/// ```
#[derive(Debug, Clone)]
pub struct DecodeError(SharedError);

impl DecodeError {
    /// Wraps the decoder's own error.
    pub fn new(err: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self(Arc::from(err.into()))
    }
}

impl fmt::Display for DecodeError {
    /// The decoder's message, cut to 150 bytes: decoders often quote the body (serde quotes
    /// whole strings), and a rejection's reason stays short.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = crate::provider::raw::shorten(self.0.to_string());
        write!(f, "webhook body is not a valid event: {reason}")
    }
}

impl StdError for DecodeError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.0)
    }
}

/// Builds the response for a refused request.
///
/// Implemented by [`DefaultRejectionResponse`] and by every `Fn(&Rejection) -> Response<B>`
/// closure. Whatever it returns, the layer adds the [`Rejection`] to the response extensions.
///
/// ```
/// use http::{Response, StatusCode};
/// use tower_webhook::{Rejection, VerifyWebhookLayer, scheme::Hmac};
///
/// let scheme = Hmac::sha256("x-signature").secret("s3cret").build()?;
/// let layer = VerifyWebhookLayer::new(scheme).rejection_response(|rejection: &Rejection| {
///     let mut response = Response::new(String::new());
///     // Answer every refusal with a bare 400, whatever the reason.
///     *response.status_mut() = StatusCode::BAD_REQUEST;
///     response
/// });
/// # let _ = layer;
/// # Ok::<_, tower_webhook::ConfigError>(())
/// ```
pub trait RejectionResponse<B> {
    /// The response for `rejection`.
    fn response(&self, rejection: &Rejection) -> Response<B>;
}

impl<B, F> RejectionResponse<B> for F
where
    F: Fn(&Rejection) -> Response<B>,
{
    fn response(&self, rejection: &Rejection) -> Response<B> {
        self(rejection)
    }
}

/// The default rejection response: [`Rejection::status`] and its `Display` text as a
/// `text/plain; charset=utf-8` body.
///
/// Works with any response body that can be made from a `String` (axum's `Body`,
/// `http_body_util::Full<Bytes>`, `String`, …). For other body types (tonic's
/// `tonic::body::Body`, a body of your own), convert its body with
/// [`map_body`](DefaultRejectionResponse::map_body).
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultRejectionResponse;

impl DefaultRejectionResponse {
    /// The default response with its body converted by `f`, for stacks whose response body
    /// cannot be made from a `String`.
    ///
    /// The default response is built with a `Full<Bytes>` body, which `f` turns into the
    /// stack's body type; status, headers and extensions are kept. In a tonic server stack,
    /// whose body type is `tonic::body::Body`:
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::{Request, Response, StatusCode};
    /// use http_body_util::{BodyExt, Full};
    /// use tower::{ServiceBuilder, ServiceExt};
    /// use tower_webhook::{DefaultRejectionResponse, provider::videonest};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let layer = videonest::layer(["s3cret"])?
    ///     .rejection_response(DefaultRejectionResponse.map_body(tonic::body::Body::new));
    /// let service = ServiceBuilder::new()
    ///     .layer(layer)
    ///     .service_fn(|_request: Request<Full<Bytes>>| async move {
    ///         Ok::<_, std::convert::Infallible>(Response::new(tonic::body::Body::empty()))
    ///     });
    ///
    /// let request = Request::post("/webhook").body(Full::new(Bytes::from_static(b"{}")))?;
    /// let response: Response<tonic::body::Body> = service.oneshot(request).await?;
    /// assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    /// let text = response.into_body().collect().await?.to_bytes();
    /// assert_eq!(text, "missing webhook signature header `x-videonest-signature`");
    /// # Ok(())
    /// # }
    /// ```
    pub fn map_body<F, B>(self, f: F) -> MapBody<Self, F>
    where
        F: Fn(Full<Bytes>) -> B,
    {
        MapBody::new(self, f)
    }
}

impl<B> RejectionResponse<B> for DefaultRejectionResponse
where
    B: From<String>,
{
    fn response(&self, rejection: &Rejection) -> Response<B> {
        let mut response = Response::new(B::from(rejection.to_string()));
        *response.status_mut() = rejection.status();
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

/// A rejection response whose `Full<Bytes>` body is converted into another body type; made by
/// [`DefaultRejectionResponse::map_body`] or [`MapBody::new`].
///
/// Implements [`RejectionResponse<B>`] when `R` answers with a `Full<Bytes>` body and `F` turns
/// that body into `B`. Only the body changes: status, headers and extensions are those `R` set,
/// and the layer still adds the [`Rejection`] to the extensions (and `Connection: close` where it
/// would).
#[derive(Clone, Copy)]
pub struct MapBody<R, F> {
    responder: R,
    f: F,
}

impl<R, F> MapBody<R, F> {
    /// Converts the body of `responder`'s responses with `f`.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::{Response, StatusCode};
    /// use http_body_util::Full;
    /// use tower_webhook::{MapBody, Rejection, RejectionResponse, SignatureError};
    ///
    /// // An app's own responder (the status alone, no reason), answering with `Full<Bytes>`…
    /// let bare = |rejection: &Rejection| {
    ///     let mut response = Response::new(Full::new(Bytes::new()));
    ///     *response.status_mut() = rejection.status();
    ///     response
    /// };
    /// // …also used in a stack whose body type is tonic's.
    /// let responder = MapBody::new(bare, tonic::body::Body::new);
    /// let response: Response<tonic::body::Body> =
    ///     responder.response(&Rejection::from(SignatureError::Mismatch));
    /// assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    /// ```
    pub fn new(responder: R, f: F) -> Self {
        Self { responder, f }
    }
}

impl<R: fmt::Debug, F> fmt::Debug for MapBody<R, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapBody")
            .field("responder", &self.responder)
            .field("f", &format_args!("{}", std::any::type_name::<F>()))
            .finish()
    }
}

impl<R, F, B> RejectionResponse<B> for MapBody<R, F>
where
    R: RejectionResponse<Full<Bytes>>,
    F: Fn(Full<Bytes>) -> B,
{
    fn response(&self, rejection: &Rejection) -> Response<B> {
        self.responder.response(rejection).map(&self.f)
    }
}

/// The response for `rejection`, with the rejection itself in its extensions.
pub(crate) fn respond<B, R>(responder: &R, rejection: Rejection) -> Response<B>
where
    R: RejectionResponse<B>,
{
    let mut response = responder.response(&rejection);
    response.extensions_mut().insert(rejection);
    response
}

/// The response for a refusal made before `body` was read to its end: [`respond`], plus
/// `Connection: close` for an HTTP/1.x request whose body may still have bytes on the wire.
///
/// The server cannot reuse a connection with an unread request body on it; without the header it
/// closes it silently after the response, and a pooled client that sends its next request on it
/// fails. HTTP/2 and HTTP/3 forbid connection-specific headers (and a refused stream does not
/// affect the connection), so they never get it.
pub(crate) fn respond_early<B, R, ReqBody>(
    responder: &R,
    rejection: Rejection,
    version: Version,
    body: &ReqBody,
) -> Response<B>
where
    R: RejectionResponse<B>,
    ReqBody: Body,
{
    let mut response = respond(responder, rejection);
    let http1 = matches!(
        version,
        Version::HTTP_09 | Version::HTTP_10 | Version::HTTP_11
    );
    let unread = !(body.is_end_stream() || body.size_hint().exact() == Some(0));
    if http1 && unread {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duplicate_says_received_not_processed() {
        // A queue answers duplicates of deliveries it merely stored: "processed" would be false.
        let rejection = Rejection::Duplicate;
        assert_eq!(
            rejection.to_string(),
            "duplicate webhook delivery: already received"
        );
        assert_eq!(rejection.status(), StatusCode::OK);
    }
}
