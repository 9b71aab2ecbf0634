//! Stripe: `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]`, each `v1` a lower-case hex
//! HMAC-SHA256 of `"{t}.{body}"`.
//!
//! The key is the whole `whsec_…` endpoint secret as UTF-8 (Stripe does not base64-decode it).
//! Any one `v1` signature made with any configured secret is enough (Stripe sends one per
//! active secret while a secret is rolled); `v0` and other schemes are ignored. A timestamp more
//! than 5 minutes from the receiver's clock, in the past **or in the future**, is refused after
//! the signature matched (Stripe's libraries accept any future timestamp). Each retry is signed
//! anew, so deduplicate on the event's `id` in the body, which is the delivery id here; the
//! event type is the body's `type`.
//!
//! # Example
//!
//! ```
//! use std::time::{SystemTime, UNIX_EPOCH};
//! use tower_webhook::{provider::stripe, scheme::Scheme};
//!
//! let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
//! let body = r#"{"id":"evt_1","object":"event","type":"invoice.paid"}"#;
//! let request = stripe::signed_request("whsec_test_secret", body, now)?;
//! let layer = stripe::layer(["whsec_test_secret"])?;
//! let (head, _) = request.into_parts();
//! assert!(layer.scheme().signature(&head).is_ok());
//! # Ok::<_, tower_webhook::ConfigError>(())
//! ```

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::Full;

use super::generic::{self, Event};
use crate::{
    ConfigError, Secret, VerifyWebhookLayer,
    scheme::{Encoding, Field, Grammar, Hmac, HmacBuilder, Part, TimestampSource},
};

/// The header Stripe sends its signatures in.
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";

/// A builder for the Stripe scheme (tolerance 5 minutes, system clock); add secrets and build
/// it, or pass it to [`generic::layer`].
pub fn scheme() -> HmacBuilder {
    Hmac::sha256(SIGNATURE_HEADER)
        .name("stripe")
        .grammar(Grammar::pairs(',', "t", "v1"))
        .encoding(Encoding::Hex)
        .timestamp(TimestampSource::SignatureHeader)
        .signs([Part::Timestamp, Part::literal("."), Part::Body])
        .event_type([Field::json("/type")])
        .delivery_id([Field::json("/id")])
}

/// A layer that verifies Stripe webhooks signed with any of `secrets` and decodes them into
/// [`Event`].
///
/// # Errors
///
/// [`ConfigError::NoSecret`] or [`ConfigError::EmptySecret`].
pub fn layer<I>(secrets: I) -> Result<VerifyWebhookLayer<Hmac, Event>, ConfigError>
where
    I: IntoIterator,
    I::Item: Into<Secret>,
{
    generic::layer(scheme().secrets(secrets))
}

/// The `Stripe-Signature` header Stripe would send with `body` at `timestamp` (Unix seconds),
/// for tests.
///
/// # Errors
///
/// [`ConfigError::EmptySecret`] when `secret` is empty.
pub fn headers(
    secret: impl Into<Secret>,
    body: &[u8],
    timestamp: i64,
) -> Result<HeaderMap, ConfigError> {
    Ok(scheme()
        .secret(secret)
        .build()?
        .sign(body, Some(timestamp), &HeaderMap::new()))
}

/// A request signed the way Stripe signs it at `timestamp` (Unix seconds), for tests.
///
/// # Errors
///
/// [`ConfigError::EmptySecret`] when `secret` is empty.
pub fn signed_request(
    secret: impl Into<Secret>,
    body: impl Into<Bytes>,
    timestamp: i64,
) -> Result<Request<Full<Bytes>>, ConfigError> {
    Ok(scheme()
        .secret(secret)
        .build()?
        .signed_request(body, Some(timestamp), &HeaderMap::new()))
}
