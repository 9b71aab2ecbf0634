//! Shopify: `X-Shopify-Hmac-Sha256: <standard base64 HMAC-SHA256 of the raw body>`.
//!
//! The key is the app's client secret (or the secret shown on the admin's notifications page).
//! Shopify signs no timestamp (`X-Shopify-Triggered-At` is not covered by the MAC), so there is
//! no replay window. The delivery id (`X-Shopify-Event-Id`, else `X-Shopify-Webhook-Id`) and the
//! event type (`X-Shopify-Topic`) are not signed either: they are recorded, but whoever replays
//! a captured delivery can change them, so the deduplication key is the SHA-256 of the signed
//! body (Shopify's retries send the same body). While
//! rotating the client secret, configure the old and the new one. Shopify's newer Events
//! webhooks send the same headers without `X-` (`shopify-hmac-sha256`, `shopify-topic`, …):
//! they are read too.
//!
//! # Example
//!
//! ```
//! use tower_webhook::{provider::shopify, scheme::Scheme};
//!
//! let request = shopify::signed_request("shpss_secret", r#"{"id":820982911946154508}"#)?;
//! let layer = shopify::layer(["shpss_secret", "shpss_previous"])?;
//! let (head, _) = request.into_parts();
//! assert!(layer.scheme().signature(&head).is_ok());
//! # Ok::<_, tower_webhook::ConfigError>(())
//! ```

use super::generic::Event;
use crate::scheme::{Encoding, Field, Grammar, Hmac, HmacBuilder};

/// The header Shopify sends its signature in.
pub const SIGNATURE_HEADER: &str = "X-Shopify-Hmac-Sha256";
/// The header naming the topic (`orders/create`, …).
pub const TOPIC_HEADER: &str = "X-Shopify-Topic";
/// The header identifying the event, the same on every delivery of it.
pub const EVENT_ID_HEADER: &str = "X-Shopify-Event-Id";
/// The header identifying the webhook delivery.
pub const WEBHOOK_ID_HEADER: &str = "X-Shopify-Webhook-Id";

/// A builder for the Shopify scheme; add secrets and build it, or pass it to
/// [`generic::layer`](super::generic::layer).
pub fn scheme() -> HmacBuilder {
    Hmac::sha256(SIGNATURE_HEADER)
        .name("shopify")
        .grammar(Grammar::value())
        .encoding(Encoding::Base64)
        .event_type([Field::header(TOPIC_HEADER)])
        .delivery_id([
            Field::header(EVENT_ID_HEADER),
            Field::header(WEBHOOK_ID_HEADER),
        ])
        .alias(SIGNATURE_HEADER, "shopify-hmac-sha256")
        .alias(TOPIC_HEADER, "shopify-topic")
        .alias(EVENT_ID_HEADER, "shopify-event-id")
        .alias(WEBHOOK_ID_HEADER, "shopify-webhook-id")
}

super::preset!(provider: "Shopify", event: Event, signs: body);
