//! Standard Webhooks: `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64>[ v1,<base64>…]`,
//! each `v1` a standard base64 HMAC-SHA256 of `"{id}.{timestamp}.{body}"`.
//!
//! The secret is `whsec_` followed by the base64 of the key (the prefix may be left out); the
//! key is the decoded bytes. Any one `v1` signature made with any configured secret is enough;
//! `v1a` (ed25519) and other versions are ignored. A timestamp more than 5 minutes from the
//! receiver's clock, either way, is refused after the signature matched. The delivery id is
//! `webhook-id` (the same on every retry: deduplicate on it); the event type is the body's
//! `type` (or `eventType`).
//!
//! # Example
//!
//! ```
//! use std::time::{SystemTime, UNIX_EPOCH};
//! use tower_webhook::{provider::standard_webhooks, scheme::Scheme};
//!
//! let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
//! let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
//! let body = r#"{"type":"invoice.paid","data":{}}"#;
//! let request = standard_webhooks::signed_request(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", now, body)?;
//! let layer = standard_webhooks::layer([secret])?;
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
    scheme::{Encoding, Field, Grammar, Hmac, HmacBuilder, KeyFormat, Part, TimestampSource},
};

/// The header holding the message id.
pub const ID_HEADER: &str = "webhook-id";
/// The header holding the signed timestamp (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// The header holding the signatures.
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// A builder for the Standard Webhooks scheme (tolerance 5 minutes, system clock); add secrets and build
/// it, or pass it to [`generic::layer`].
pub fn scheme() -> HmacBuilder {
    Hmac::sha256(SIGNATURE_HEADER)
        .name("standardwebhooks")
        .grammar(Grammar::list("v1"))
        .encoding(Encoding::Base64)
        .key_format(KeyFormat::WhsecBase64)
        .timestamp(TimestampSource::Header(
            TIMESTAMP_HEADER.parse().expect("a valid header name"),
        ))
        .signs([
            Part::header(ID_HEADER),
            Part::literal("."),
            Part::Timestamp,
            Part::literal("."),
            Part::Body,
        ])
        .event_type([Field::json("/type"), Field::json("/eventType")])
        .delivery_id([Field::header(ID_HEADER)])
}

/// A layer that verifies Standard Webhooks webhooks signed with any of `secrets` and decodes them
/// into [`Event`].
///
/// # Errors
///
/// [`ConfigError::NoSecret`], [`ConfigError::EmptySecret`] or [`ConfigError::InvalidSecret`]
/// (not base64 after `whsec_`).
pub fn layer<I>(secrets: I) -> Result<VerifyWebhookLayer<Hmac, Event>, ConfigError>
where
    I: IntoIterator,
    I::Item: Into<Secret>,
{
    generic::layer(scheme().secrets(secrets))
}

/// The id, timestamp and signature headers a Standard Webhooks sender would put on `body` for
/// message `id` at `timestamp` (Unix seconds), for tests.
///
/// # Errors
///
/// [`ConfigError::EmptySecret`] or [`ConfigError::InvalidSecret`]; and
/// [`ConfigError::InvalidScheme`] when `id` cannot be a header value.
pub fn headers(
    secret: impl Into<Secret>,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<HeaderMap, ConfigError> {
    let scheme = scheme().secret(secret).build()?;
    Ok(scheme.sign(body, Some(timestamp), &generic::message_id(ID_HEADER, id)?))
}

/// A request a Standard Webhooks sender would send for message `id` at `timestamp` (Unix seconds),
/// for tests.
///
/// # Errors
///
/// As [`headers`].
pub fn signed_request(
    secret: impl Into<Secret>,
    id: &str,
    timestamp: i64,
    body: impl Into<Bytes>,
) -> Result<Request<Full<Bytes>>, ConfigError> {
    let scheme = scheme().secret(secret).build()?;
    Ok(scheme.signed_request(body, Some(timestamp), &generic::message_id(ID_HEADER, id)?))
}
