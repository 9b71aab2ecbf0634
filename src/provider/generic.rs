//! The event type of the presets built on [`Hmac`]: the provider's event type and id, wherever
//! the provider puts them, and the JSON payload.
//!
//! GitHub, Stripe, Standard Webhooks, Svix, Shopify and Slack decode into [`Event`], and so can
//! any scheme built with [`Hmac`] through [`layer`]: the event type and id are read from the
//! same headers or body fields the scheme records in
//! [`Verified::event_type`](crate::Verified::event_type) and
//! [`Verified::delivery_id`](crate::Verified::delivery_id). Deduplication keys default to
//! `["type","id"]` when the id is signed (read from the signed body, or from a header the MAC
//! covers), and to the SHA-256 of the signed body otherwise ([`Event::body_sha256`]), since an
//! unsigned id can be changed by whoever replays a captured request.
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
    event::KeyParts,
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
    /// The SHA-256 of the signed body, in hex, when the provider's id is not signed (GitHub's
    /// `X-GitHub-Delivery` and Shopify's `X-Shopify-Webhook-Id` are plain headers) or absent:
    /// the deduplication key is built from it, so that a replay of a captured delivery under
    /// another id header is still a duplicate. A provider's retries send the same body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_sha256: Option<String>,
}

impl Event {
    /// An event, for handler tests.
    pub fn new(event_type: impl Into<String>, id: Option<String>, payload: Option<Value>) -> Self {
        Self {
            event_type: event_type.into(),
            id,
            payload,
            body_sha256: None,
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

    /// `["type","id"]` when the id is signed; else `["sha256","<hex of the signed body>"]`,
    /// since an unsigned id (and event type) can be changed by whoever replays the request.
    fn idempotency_key(&self) -> Option<String> {
        match &self.body_sha256 {
            Some(digest) => Some(
                KeyParts::new()
                    .text(Some("sha256"))
                    .text(Some(digest))
                    .finish(),
            ),
            None => Some(
                KeyParts::new()
                    .text(Some(&self.event_type))
                    .text(Some(self.id.as_deref()?))
                    .finish(),
            ),
        }
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
        let (id, signed) = match self.metadata.read_id(&head.headers, payload.as_ref(), body) {
            Some((id, signed)) => (Some(id), signed),
            None => (None, false),
        };
        let body_sha256 = (!signed).then(|| {
            use sha2::{Digest, Sha256};
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let mut hex = String::with_capacity(64);
            for byte in Sha256::digest(body) {
                hex.push(char::from(HEX[usize::from(byte >> 4)]));
                hex.push(char::from(HEX[usize::from(byte & 0xf)]));
            }
            hex
        });
        Ok(Event {
            event_type: read(&self.metadata.event_type).unwrap_or_default(),
            id,
            payload,
            body_sha256,
        })
    }
}

/// The header map `{name: id}` that the signing helpers of the schemes signing a message id
/// (Standard Webhooks, Svix) pass on.
pub(crate) fn message_id(name: &'static str, id: &str) -> Result<http::HeaderMap, ConfigError> {
    let value = http::HeaderValue::from_str(id).map_err(|_| ConfigError::InvalidScheme {
        reason: "a message id must be a valid header value",
    })?;
    let mut headers = http::HeaderMap::new();
    headers.insert(name, value);
    Ok(headers)
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
