//! The event type of the presets built on [`Hmac`]: the provider's event type and id, wherever
//! the provider puts them, and the JSON payload.
//!
//! GitHub, Stripe, Standard Webhooks, Svix, Shopify and Slack decode into [`Event`], and so can
//! any scheme built with [`Hmac`] through [`layer`]: the event type and id are read from the
//! same headers or body fields the scheme records in
//! [`Verified::event_type`](crate::Verified::event_type) and
//! [`Verified::delivery_id`](crate::Verified::delivery_id), so deduplication keys default to
//! `["type","id"]` for every preset.
//!
//! # Example
//!
//! ```
//! use tower_webhook::{
//!     WebhookEvent,
//!     provider::generic,
//!     scheme::{Field, Grammar, Hmac, Part, TimestampSource},
//! };
//!
//! // Paddle: `Paddle-Signature: ts=…;h1=…`, signed `{ts}:{body}`, a 5-second window.
//! let paddle = Hmac::sha256("Paddle-Signature")
//!     .name("paddle")
//!     .grammar(Grammar::pairs(';', "ts", "h1"))
//!     .timestamp(TimestampSource::SignatureHeader)
//!     .signs([Part::Timestamp, Part::literal(":"), Part::Body])
//!     .tolerance(std::time::Duration::from_secs(5))
//!     .event_type([Field::json("/event_type")])
//!     .delivery_id([Field::json("/event_id")])
//!     .secret("pdl_ntfset_01hv8x2acma8x8ad9y6npx2w7k_key");
//! let layer = generic::layer(paddle)?;
//! # let _ = layer;
//! # Ok::<_, tower_webhook::ConfigError>(())
//! ```

use bytes::Bytes;
use http::request::Parts;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    ConfigError, DecodeError, VerifyWebhookLayer, WebhookEvent,
    decode::Decode,
    scheme::{Hmac, HmacBuilder, hmac_metadata::Metadata},
};

/// A verified webhook of a preset built on [`Hmac`]: its type, its id and its JSON payload.
///
/// The body may be any bytes (Slack's slash commands are form-encoded, GitHub's documented test
/// payload is plain text): `payload` is `None` when it is not JSON, and the signed bytes are in
/// [`Verified::body`](crate::Verified::body) either way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Event {
    /// The provider's event type (`push`, `invoice.paid`, `orders/create`); empty when the
    /// request has none.
    pub event_type: String,
    /// The provider's id for the delivery or event, when it sends one.
    pub id: Option<String>,
    /// The body as JSON, when it is JSON.
    pub payload: Option<Value>,
}

impl Event {
    /// An event, for handler tests.
    pub fn new(event_type: impl Into<String>, id: Option<String>, payload: Option<Value>) -> Self {
        Self {
            event_type: event_type.into(),
            id,
            payload,
        }
    }
}

impl WebhookEvent for Event {
    fn event_type(&self) -> &str {
        &self.event_type
    }

    fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }
}

/// Decodes [`Event`]s with the event type and id read where a scheme's
/// [`HmacBuilder::event_type`] and [`HmacBuilder::delivery_id`] say. Never refuses a verified
/// body.
#[derive(Debug, Clone)]
pub struct Decoder {
    metadata: Metadata,
}

impl Decoder {
    /// The decoder for what `builder` reads.
    pub fn new(builder: &HmacBuilder) -> Self {
        Self {
            metadata: builder.metadata(),
        }
    }
}

impl Decode<Event> for Decoder {
    fn decode(&self, head: &Parts, body: &Bytes) -> Result<Event, DecodeError> {
        let payload = serde_json::from_slice::<Value>(body).ok();
        let read = |fields| {
            self.metadata
                .read(fields, Some(&head.headers), payload.as_ref(), body)
        };
        Ok(Event {
            event_type: read(&self.metadata.event_type).unwrap_or_default(),
            id: read(&self.metadata.id),
            payload,
        })
    }
}

/// A layer that verifies with the scheme `builder` builds and decodes into [`Event`].
///
/// # Errors
///
/// Whatever [`HmacBuilder::build`] reports.
pub fn layer(builder: HmacBuilder) -> Result<VerifyWebhookLayer<Hmac, Event>, ConfigError> {
    let decoder = Decoder::new(&builder);
    Ok(VerifyWebhookLayer::new(builder.build()?)
        .decode_with(decoder)
        .trace_event_types())
}
