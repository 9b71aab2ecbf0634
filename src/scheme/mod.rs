//! Signature schemes: where a signature is read from, what it covers, and how it is checked.
//!
//! A [`Scheme`] works in steps, so that the layer can refuse a request before reading its body
//! and trusts nothing before the signature checked out:
//!
//! 1. [`Scheme::signature`] reads the request head (method, URI, headers) and returns what it
//!    needs later: the decoded signature(s), and, for schemes that sign them, header values or a
//!    timestamp. A missing or malformed signature is refused here, with no body read.
//! 2. [`Scheme::verify`] gets that value and the complete body, and checks the MAC in constant
//!    time. It says which bytes the signature covered ([`Signed`]); the event is parsed from those
//!    bytes and nothing else.
//! 3. Only then, [`Scheme::delivery`] reads what is known about the delivery (its id, event type
//!    and signed timestamp) from the head and the signed bytes.
//!
//! [`Hmac`] is the one template model every signing preset builds: any header [`Grammar`] (`<hex>`,
//! `sha256=<hex>`, `t=…,v1=…`, `ts=…;h1=…`, space-separated `v1,<base64>` lists), signed content
//! as a template of [`Part`]s (literals, header values, the timestamp, the body or its
//! `JSON.stringify` form), HMAC-SHA256 or HMAC-SHA1 with secrets or Ed25519 or ECDSA P-256
//! with [`PublicKey`]s, hex or base64, raw or `whsec_` keys, where the event
//! type and delivery id are read ([`Field`]), and a replay window read from an injectable
//! [`Clock`]. A new signing provider is a new [`HmacBuilder`] declaration (see
//! [`provider`](crate::provider) for where presets live); a scheme of another kind (a shared
//! token: [`Token`]; a signed URL and form: [`UrlSigned`]) is another implementation of
//! [`Scheme`].
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http::{HeaderMap, Request};
//! use tower_webhook::scheme::{Encoding, Grammar, Hmac, Scheme, Signed};
//!
//! // GitHub-style: `X-Hub-Signature-256: sha256=<lower-case hex>`.
//! let scheme = Hmac::sha256("X-Hub-Signature-256")
//!     .grammar(Grammar::prefixed("sha256="))
//!     .encoding(Encoding::Hex)
//!     .secret("new secret")
//!     .secret("previous secret") // key rotation: either one is accepted
//!     .build()?;
//!
//! let body = Bytes::from_static(br#"{"zen":"Keep it logically awesome."}"#);
//! let signed = scheme.sign(&body, None, &HeaderMap::new());
//! let (head, ()) = Request::post("/hook")
//!     .header("x-hub-signature-256", &signed["x-hub-signature-256"])
//!     .body(())
//!     .unwrap()
//!     .into_parts();
//!
//! let signature = scheme.signature(&head).expect("well-formed header");
//! assert!(matches!(scheme.verify(&signature, &body), Ok(Signed::RawBody)));
//! # Ok::<_, tower_webhook::ConfigError>(())
//! ```

mod hmac;
pub(crate) mod hmac_metadata {
    pub(crate) use super::hmac::Metadata;
}
mod headers;
pub(crate) mod hex;
mod js_json;
mod timestamp;
mod token;
mod url_signed;

use std::{fmt, future::Future, pin::Pin};

use bytes::Bytes;
use http::request::Parts;

use crate::Rejection;

pub(crate) use self::url_signed::signed_text_sha256;
pub use self::{
    hmac::{
        Digest, Encoding, Field, Grammar, Hmac, HmacBuilder, HmacSignature, KeyFormat,
        MAX_ELEMENTS, MAX_PUBLIC_SIGNATURES, MAX_SIGNATURES, Part, PublicKey, SigningKey,
        TimestampSource,
    },
    timestamp::{Clock, SystemClock, TimestampUnit},
    token::{Token, TokenSignature},
    url_signed::{MAX_FORM_PARAMETERS, UrlSignature, UrlSigned},
};
pub use crate::rejection::SignatureError;

/// For the fuzz targets only (built with `--cfg fuzzing`): what
/// `JSON.stringify(JSON.parse(body))` gives, as the VideoAIditor fallback computes it.
#[cfg(fuzzing)]
#[doc(hidden)]
pub fn __fuzz_js_stringify(body: &[u8]) -> Option<Vec<u8>> {
    js_json::stringify_parsed(body)
}

/// `name` as a header name.
///
/// # Errors
///
/// [`ConfigError::InvalidHeaderName`](crate::ConfigError::InvalidHeaderName).
pub(crate) fn header_name(name: &str) -> Result<http::HeaderName, crate::ConfigError> {
    http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        crate::ConfigError::InvalidHeaderName {
            name: name.to_owned(),
        }
    })
}

/// The one value of `name` in `headers`: refused when it is missing or repeated (a scheme that
/// sends one value never repeats it; which would count is not guessed at).
pub(crate) fn one_value<'a>(
    headers: &'a http::HeaderMap,
    name: &http::HeaderName,
) -> Result<&'a http::HeaderValue, SignatureError> {
    headers::lookup(headers, name).one(name)
}

/// A refusal of a request without `header` (kept out of the hot path).
#[cold]
pub(crate) fn missing(header: &http::HeaderName) -> SignatureError {
    SignatureError::Missing {
        header: header.clone(),
    }
}

/// A refusal of a request with `header` more than once (kept out of the hot path).
#[cold]
pub(crate) fn repeated(header: &http::HeaderName) -> SignatureError {
    SignatureError::Repeated {
        header: header.clone(),
    }
}

/// A webhook signature scheme.
///
/// Implementations are built once, with their secrets already turned into keys; the layer shares
/// one instance between all requests.
pub trait Scheme: Send + Sync + 'static {
    /// What [`signature`](Scheme::signature) reads from the request head for
    /// [`verify`](Scheme::verify): the decoded signature, plus any signed header values or
    /// timestamp.
    type Signature: Send + 'static;

    /// Reads the signature from the request head, before any of the body is read.
    ///
    /// # Errors
    ///
    /// When the signature is missing or not in the scheme's format.
    fn signature(&self, head: &Parts) -> Result<Self::Signature, SignatureError>;

    /// Checks the signature against the complete body, in constant time.
    ///
    /// # Errors
    ///
    /// [`SignatureError::Mismatch`] when no configured key produced the signature; a scheme
    /// with a replay window also refuses a signed timestamp out of it, once a signature matched.
    fn verify(&self, signature: &Self::Signature, body: &Bytes) -> Result<Signed, SignatureError>;

    /// A short name for what this scheme verifies, such as the provider (`"videonest"`); it is
    /// recorded in [`Verified::provider`](crate::Verified::provider). `"webhook"` unless the
    /// scheme says otherwise.
    fn name(&self) -> &str {
        "webhook"
    }

    /// Looks up what verifying needs besides the scheme's own configuration, such as the
    /// secrets of the tenant a request is for ([`Tenanted`](crate::tenant::Tenanted)). Called
    /// once per request, after [`signature`](Scheme::signature) accepted the head and before any
    /// of the body is read; `head` may be read (or have extensions taken from it).
    ///
    /// The default has nothing to look up: the signature is ready, and a layer whose scheme
    /// keeps its keys in itself pays nothing for this step.
    fn resolve(&self, head: &mut Parts, signature: Self::Signature) -> Resolution<Self::Signature> {
        let _ = head;
        Resolution::Ready(Ok(signature))
    }

    /// What is known about a verified delivery: its id, event type and signed timestamp, for
    /// schemes that have them, and whether the signature covers the id and the event type
    /// ([`Delivery::id_signed`], [`Delivery::event_type_signed`]), read from the request head
    /// and from `signed`, the bytes the signature covered. Called only after
    /// [`verify`](Scheme::verify) succeeded, and recorded in [`Verified`](crate::Verified).
    /// Nothing by default.
    fn delivery(&self, head: &Parts, signature: &Self::Signature, signed: &Bytes) -> Delivery {
        let _ = (head, signature, signed);
        Delivery::default()
    }
}

/// What [`Scheme::resolve`] gives: the signature, ready to verify, now or once a lookup
/// finished, or the refusal of the request.
pub enum Resolution<S> {
    /// Known now: the signature to verify, or the refusal.
    Ready(Result<S, Rejection>),
    /// Known once this future finishes (a lookup that missed the cache). The layer waits for it
    /// before reading the body.
    Pending(Pin<Box<dyn Future<Output = Result<S, Rejection>> + Send>>),
}

impl<S> fmt::Debug for Resolution<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ready(Ok(_)) => "Resolution::Ready(Ok(..))",
            Self::Ready(Err(_)) => "Resolution::Ready(Err(..))",
            Self::Pending(_) => "Resolution::Pending(..)",
        })
    }
}

/// What a scheme knows about a delivery besides its signed bytes; see [`Scheme::delivery`].
///
/// The id and the event type each say whether the signature covers them: a value read from a
/// header the MAC covers or from the signed body is signed; one read from a header the MAC does
/// not cover (GitHub's `X-GitHub-Event` and `X-GitHub-Delivery`, Shopify's `X-Shopify-Topic`)
/// is not, and whoever replays a captured request can change it.
///
/// ```
/// use tower_webhook::scheme::Delivery;
///
/// let delivery = Delivery::default()
///     .signed_id("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W")
///     .event_type("user.created")
///     .timestamp(1_674_087_231);
/// assert_eq!(delivery.id.as_deref(), Some("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"));
/// assert!(delivery.id_signed);
/// assert!(!delivery.event_type_signed);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// The provider's id for this delivery (or message), when the scheme reads one.
    pub id: Option<String>,
    /// Whether the signature covers [`id`](Self::id); `false` when there is none.
    pub id_signed: bool,
    /// The signed timestamp, in Unix seconds, when the scheme signs one.
    pub timestamp: Option<i64>,
    /// The provider's event type, when the scheme reads one (`X-GitHub-Event`, Stripe's
    /// `type`).
    pub event_type: Option<String>,
    /// Whether the signature covers [`event_type`](Self::event_type); `false` when there is
    /// none.
    pub event_type_signed: bool,
    /// The tenant whose secret verified the delivery, for a scheme with secrets per tenant
    /// ([`Tenanted`](crate::tenant::Tenanted)).
    pub tenant: Option<std::sync::Arc<str>>,
}

impl Delivery {
    setters! {
        /// Sets the delivery id, read from where the signature does not cover it.
        #[must_use]
        pub fn id(id: impl Into<String>) { id = Some(id.into()), id_signed = false }

        /// Sets the delivery id, read from a signed header or the signed body.
        #[must_use]
        pub fn signed_id(id: impl Into<String>) { id = Some(id.into()), id_signed = true }

        /// Sets the signed timestamp (Unix seconds).
        #[must_use]
        pub fn timestamp(unix_seconds: i64) { timestamp = Some(unix_seconds) }

        /// Sets the event type, read from where the signature does not cover it.
        #[must_use]
        pub fn event_type(event_type: impl Into<String>) {
            event_type = Some(event_type.into()),
            event_type_signed = false
        }

        /// Sets the event type, read from a signed header or the signed body.
        #[must_use]
        pub fn signed_event_type(event_type: impl Into<String>) {
            event_type = Some(event_type.into()),
            event_type_signed = true
        }
    }
}

/// Which bytes a verified signature covered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Signed {
    /// The body exactly as it was received.
    RawBody,
    /// Not the received bytes but the body re-serialised the way JavaScript's
    /// `JSON.stringify(JSON.parse(body))` does (see
    /// [`Part::BodyOrJsonStringify`]). The event must be parsed from these
    /// bytes, never from the unsigned raw body.
    Reserialized(Bytes),
}
