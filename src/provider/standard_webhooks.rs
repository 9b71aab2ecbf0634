//! Standard Webhooks: `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64>[ v1,<base64>…]`,
//! each `v1` a standard base64 HMAC-SHA256 of `"{id}.{timestamp}.{body}"`.
//!
//! The secret is `whsec_` followed by the base64 of the key (the prefix may be left out); the
//! key is the decoded bytes. Any one `v1` signature made with any configured secret is enough.
//! `v1a` entries are Ed25519 signatures of the same content: with public keys
//! ([`layer_with_public_keys`], keys written `whpk_…`) one made by any of them is enough too;
//! without, they are ignored, as other versions are. A timestamp more than 5 minutes from the
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

use super::generic::Event;
use crate::scheme::{
    Encoding, Field, Grammar, Hmac, HmacBuilder, KeyFormat, Part, TimestampSource,
};

/// The header holding the message id.
pub const ID_HEADER: &str = "webhook-id";
/// The header holding the signed timestamp (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// The header holding the signatures.
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// A builder for the Standard Webhooks scheme (tolerance 5 minutes, system clock); add secrets
/// and build it, or pass it to [`generic::layer`](super::generic::layer).
pub fn scheme() -> HmacBuilder {
    named(
        "standardwebhooks",
        ID_HEADER,
        TIMESTAMP_HEADER,
        SIGNATURE_HEADER,
    )
}

/// The Standard Webhooks scheme under `name`, with its headers called `id`, `timestamp` and
/// `signature` (Svix uses its own names for the same scheme).
pub(crate) fn named(name: &str, id: &str, timestamp: &str, signature: &str) -> HmacBuilder {
    Hmac::sha256(signature)
        .name(name)
        .grammar(Grammar::list_with_public("v1", "v1a"))
        .encoding(Encoding::Base64)
        .key_format(KeyFormat::WhsecBase64)
        .timestamp(TimestampSource::Header(
            timestamp.parse().expect("a valid header name"),
        ))
        .signs([
            Part::header(id),
            Part::literal("."),
            Part::Timestamp,
            Part::literal("."),
            Part::Body,
        ])
        .event_type([Field::json("/type"), Field::json("/eventType")])
        .delivery_id([Field::header(id)])
}

super::preset!(provider: "Standard Webhooks", event: Event, signs: message(ID_HEADER));
