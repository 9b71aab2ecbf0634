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

use super::generic::Event;
use crate::scheme::{Encoding, Field, Grammar, Hmac, HmacBuilder, Part, TimestampSource};

/// The header Stripe sends its signatures in.
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";

/// A builder for the Stripe scheme (tolerance 5 minutes, system clock); add secrets and build
/// it, or pass it to [`generic::layer`](super::generic::layer).
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

super::preset!(provider: "Stripe", event: Event, signs: timestamp);
