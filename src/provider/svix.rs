//! Svix: `svix-id`, `svix-timestamp` and `svix-signature: v1,<base64>[ v1,<base64>…]`,
//! each `v1` a standard base64 HMAC-SHA256 of `"{id}.{timestamp}.{body}"`.
//!
//! The secret is `whsec_` followed by the base64 of the key (the prefix may be left out); the
//! key is the decoded bytes. Any one `v1` signature made with any configured secret is enough;
//! `v1a` (ed25519) and other versions are ignored. A timestamp more than 5 minutes from the
//! receiver's clock, either way, is refused after the signature matched. The delivery id is
//! `svix-id` (the same on every retry: deduplicate on it); the event type is the body's
//! `type` (or `eventType`). White-labelled Svix sends `webhook-id`, `webhook-timestamp` and
//! `webhook-signature` instead: a request without `svix-signature` but with
//! `webhook-signature` is read by those names.
//!
//! # Example
//!
//! ```
//! use std::time::{SystemTime, UNIX_EPOCH};
//! use tower_webhook::{provider::svix, scheme::Scheme};
//!
//! let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
//! let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
//! let body = r#"{"type":"invoice.paid","data":{}}"#;
//! let request = svix::signed_request(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", now, body)?;
//! let layer = svix::layer([secret])?;
//! let (head, _) = request.into_parts();
//! assert!(layer.scheme().signature(&head).is_ok());
//! # Ok::<_, tower_webhook::ConfigError>(())
//! ```

use super::generic::Event;
use crate::scheme::HmacBuilder;

/// The header holding the message id.
pub const ID_HEADER: &str = "svix-id";
/// The header holding the signed timestamp (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "svix-timestamp";
/// The header holding the signatures.
pub const SIGNATURE_HEADER: &str = "svix-signature";

/// A builder for the Svix scheme (tolerance 5 minutes, system clock); add secrets and build
/// it, or pass it to [`generic::layer`](super::generic::layer).
pub fn scheme() -> HmacBuilder {
    super::standard_webhooks::named("svix", ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)
        .alias(ID_HEADER, super::standard_webhooks::ID_HEADER)
        .alias(TIMESTAMP_HEADER, super::standard_webhooks::TIMESTAMP_HEADER)
        .alias(SIGNATURE_HEADER, super::standard_webhooks::SIGNATURE_HEADER)
}

super::preset!(provider: "Svix", event: Event, signs: message(ID_HEADER));
