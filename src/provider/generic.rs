//! The event type of the presets built on [`Hmac`]: the provider's event type and id, wherever
//! the provider puts them, and the JSON payload.
//!
//! GitHub, Stripe, Standard Webhooks, Svix, Shopify and Slack decode into [`Event`], and so can
//! any scheme built with [`Hmac`] through [`layer`]: the event type and id are read from the
//! same headers or body fields the scheme records in
//! [`Verified::event_type`](crate::Verified::event_type) and
//! [`Verified::delivery_id`](crate::Verified::delivery_id).
//!
//! # Deduplication keys
//!
//! A key is built from signed parts only, since whoever replays a captured request can change
//! anything the signature does not cover. Each part is judged on its own: a field of the signed
//! body is signed, a header is signed when the MAC covers it (a [`Part::Header`] of
//! [`HmacBuilder::signs`]), and any other header is not. A part read from a signed field listed
//! after an unsigned header does not count as signed either, since adding or removing that
//! header chooses between the two.
//!
//! | delivery id | event type | key |
//! | --- | --- | --- |
//! | signed | signed | `["<type>","<id>"]` (Stripe, Standard Webhooks, Svix, Slack) |
//! | signed | not signed | `[null,"<id>"]`: the type is left out (so the id must be unique per event, as providers' message ids are) |
//! | not signed, or absent | any | `["sha256","<hex>"]`, the SHA-256 of the signed body ([`Event::body_sha256`]): GitHub, Shopify |
//!
//! GitHub signs neither `X-GitHub-Event` nor `X-GitHub-Delivery`, Shopify neither
//! `X-Shopify-Topic` nor its id headers: their keys are body digests, and their event type is
//! unauthenticated metadata ([`Verified::is_delivery_event_type_signed`](crate::Verified::is_delivery_event_type_signed)
//! is `false`). A provider's retries send the same body, so they share the key.
//!
//! [`Part::Header`]: crate::scheme::Part::Header
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
    /// Whether the event type is decided by signed data alone: read from the signed body or a
    /// header the MAC covers (or, when absent, looked for in nothing else), with no unsigned
    /// header listed before where it was found. When it is not, the deduplication key leaves
    /// it out. `true` in events written before this field existed.
    #[serde(default = "signed", skip_serializing_if = "is_signed")]
    pub event_type_signed: bool,
}

/// What `event_type_signed` reads as when absent.
fn signed() -> bool {
    true
}

fn is_signed(signed: &bool) -> bool {
    *signed
}

impl Event {
    /// An event, for handler tests, as if its event type and id were signed.
    pub fn new(event_type: impl Into<String>, id: Option<String>, payload: Option<Value>) -> Self {
        Self {
            event_type: event_type.into(),
            id,
            payload,
            body_sha256: None,
            event_type_signed: true,
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

    /// Built from signed parts only (see [the module docs](self#deduplication-keys)):
    /// `["type","id"]` when both are signed; `[null,"id"]` when the id is signed and the event
    /// type is not; `["sha256","<hex of the signed body>"]` when the id is not signed or absent.
    fn idempotency_key(&self) -> Option<String> {
        match &self.body_sha256 {
            Some(digest) => Some(
                KeyParts::new()
                    .text(Some("sha256"))
                    .text(Some(digest))
                    .finish(),
            ),
            None => {
                let event_type = self.event_type_signed.then_some(self.event_type.as_str());
                Some(
                    KeyParts::new()
                        .text(event_type)
                        .text(Some(self.id.as_deref()?))
                        .finish(),
                )
            }
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

    /// The decoder reading what `metadata` says.
    pub(crate) fn from_metadata(metadata: Metadata) -> Self {
        Self { metadata }
    }
}

impl Decode<Event> for Decoder {
    fn decode(&self, head: &Parts, body: &Bytes) -> Result<Event, DecodeError> {
        let payload = serde_json::from_slice::<Value>(body).ok();
        let read = |fields: &[_]| {
            self.metadata
                .read_signed(fields, &head.headers, payload.as_ref(), body)
        };
        let (id, id_signed) = read(&self.metadata.id);
        let (event_type, event_type_signed) = read(&self.metadata.event_type);
        let body_sha256 = (id.is_none() || !id_signed).then(|| {
            use sha2::{Digest, Sha256};
            let mut hex = String::new();
            crate::scheme::hex::encode_lower(&Sha256::digest(body), &mut hex);
            hex
        });
        Ok(Event {
            event_type: event_type.unwrap_or_default(),
            id,
            payload,
            body_sha256,
            event_type_signed,
        })
    }
}

/// A layer that verifies with the scheme `builder` builds and decodes into [`Event`].
///
/// # Errors
///
/// Whatever [`HmacBuilder::build`] reports.
pub fn layer(builder: HmacBuilder) -> Result<VerifyWebhookLayer<Hmac, Event>, ConfigError> {
    super::layer(builder)
}

/// A layer verifying with `builder`'s scheme keyed with each tenant's secrets, as `tenants`
/// finds them (see [`tenant`](crate::tenant)), decoding into [`Event`]. Secrets given to
/// `builder` are not used for any tenant.
///
/// ```
/// use tower_webhook::{provider::{generic, github}, tenant::Tenants};
///
/// let tenants = Tenants::new(|_tenant: String| async { Ok::<_, std::io::Error>(None::<Vec<String>>) });
/// let layer = generic::tenant_layer(github::scheme(), &tenants)?;
/// # let _ = layer;
/// # Ok::<_, tower_webhook::ConfigError>(())
/// ```
///
/// # Errors
///
/// Whatever [`HmacBuilder::build`] reports of the declaration.
#[cfg(feature = "tenants")]
#[cfg_attr(docsrs, doc(cfg(feature = "tenants")))]
pub fn tenant_layer(
    builder: HmacBuilder,
    tenants: &crate::tenant::Tenants,
) -> Result<VerifyWebhookLayer<crate::tenant::Tenanted<crate::scheme::Hmac>, Event>, ConfigError> {
    super::tenant_layer(builder, tenants)
}

impl super::PresetEvent for Event {
    fn decoder(builder: &HmacBuilder) -> impl Decode<Self> {
        Decoder::new(builder)
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, HeaderValue, Request};

    use super::*;
    use crate::{
        provider::{github, shopify, slack, standard_webhooks, stripe},
        scheme::{Field, Part, Scheme},
    };

    const BODY: &[u8] = br#"{"id":"evt_1","type":"invoice.paid","data":{}}"#;
    /// The SHA-256 of `BODY`, as `sha256sum` prints it.
    const BODY_SHA256: &str = "e721f26a3fb19bdb6a8492c63ea5e3d30c49edf59d681db9bc7b7be83afd45eb";

    fn decode(builder: &HmacBuilder, headers: &[(&'static str, &'static str)]) -> Event {
        let mut request = Request::post("/").body(()).unwrap();
        for (name, value) in headers {
            request
                .headers_mut()
                .insert(*name, HeaderValue::from_static(value));
        }
        let (head, ()) = request.into_parts();
        Decoder::new(builder)
            .decode(&head, &Bytes::from_static(BODY))
            .unwrap()
    }

    /// What the scheme itself reports for a request signed with `headers` (whatever is in
    /// `extra` is added after signing).
    fn delivery(
        builder: HmacBuilder,
        signed: &[(&'static str, &'static str)],
        extra: &[(&'static str, &'static str)],
    ) -> crate::scheme::Delivery {
        let scheme = builder.secret("s").build().unwrap();
        let mut headers = HeaderMap::new();
        for (name, value) in signed {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        let mut request = scheme.signed_request(Bytes::from_static(BODY), None, &headers);
        for (name, value) in extra {
            request
                .headers_mut()
                .insert(*name, HeaderValue::from_static(value));
        }
        let (head, _) = request.into_parts();
        let signature = scheme.signature(&head).unwrap();
        let body = Bytes::from_static(BODY);
        assert!(scheme.verify(&signature, &body).is_ok());
        scheme.delivery(&head, &signature, &body)
    }

    fn digest_key() -> Option<String> {
        Some(format!(r#"["sha256","{BODY_SHA256}"]"#))
    }

    /// A custom scheme: the id a signed header, the event type a header the MAC does not cover.
    fn signed_id_unsigned_type() -> HmacBuilder {
        Hmac::sha256("x-signature")
            .signs([
                Part::header("x-delivery-id"),
                Part::literal("."),
                Part::Body,
            ])
            .event_type([Field::header("x-event-type")])
            .delivery_id([Field::header("x-delivery-id")])
    }

    #[test]
    fn github_and_shopify_keys_are_the_body_digest_as_before() {
        let event = decode(
            &github::scheme(),
            &[("x-github-event", "push"), ("x-github-delivery", "d-1")],
        );
        assert_eq!(event.idempotency_key(), digest_key());
        assert!(!event.event_type_signed);
        assert_eq!(event.event_type, "push");
        let event = decode(
            &shopify::scheme(),
            &[
                ("x-shopify-topic", "orders/create"),
                ("x-shopify-event-id", "e-1"),
            ],
        );
        assert_eq!(event.idempotency_key(), digest_key());
        // Without any header, the same key: nothing unsigned goes into it.
        assert_eq!(
            decode(&github::scheme(), &[]).idempotency_key(),
            digest_key()
        );
    }

    #[test]
    fn signed_type_and_id_keep_the_type_id_key() {
        let event = decode(&stripe::scheme(), &[]);
        assert_eq!(
            event.idempotency_key().as_deref(),
            Some(r#"["invoice.paid","evt_1"]"#)
        );
        assert!(event.event_type_signed);
        // The id a signed header, the type from the signed body.
        let event = decode(&standard_webhooks::scheme(), &[("webhook-id", "msg_1")]);
        assert_eq!(
            event.idempotency_key().as_deref(),
            Some(r#"["invoice.paid","msg_1"]"#)
        );
        // Slack reads only the signed body: this body has no `event_id`, so the digest.
        assert_eq!(
            decode(&slack::scheme(), &[]).idempotency_key(),
            digest_key()
        );
    }

    #[test]
    fn an_unsigned_event_type_is_left_out_of_the_key() {
        let builder = signed_id_unsigned_type();
        let keys: Vec<_> = [
            &[("x-delivery-id", "dlv_1"), ("x-event-type", "invoice.paid")][..],
            &[
                ("x-delivery-id", "dlv_1"),
                ("x-event-type", "invoice.voided"),
            ],
            &[("x-delivery-id", "dlv_1")],
        ]
        .into_iter()
        .map(|headers| decode(&builder, headers).idempotency_key())
        .collect();
        assert_eq!(keys, vec![Some(r#"[null,"dlv_1"]"#.to_owned()); 3]);
        let event = decode(
            &builder,
            &[("x-delivery-id", "dlv_1"), ("x-event-type", "a")],
        );
        assert!(!event.event_type_signed);
        // The event type is still read, as metadata.
        assert_eq!(event.event_type, "a");
    }

    #[test]
    fn a_signed_event_type_header_counts_as_signed() {
        let builder = Hmac::sha256("x-signature")
            .signs([
                Part::header("x-delivery-id"),
                Part::literal("."),
                Part::header("x-event-type"),
                Part::literal("."),
                Part::Body,
            ])
            .event_type([Field::header("x-event-type")])
            .delivery_id([Field::header("x-delivery-id")]);
        let event = decode(&builder, &[("x-delivery-id", "d"), ("x-event-type", "t")]);
        assert!(event.event_type_signed);
        assert_eq!(event.idempotency_key().as_deref(), Some(r#"["t","d"]"#));
        // An unsigned id with a signed type header: the body digest, as before.
        let builder = Hmac::sha256("x-signature")
            .signs([Part::header("x-event-type"), Part::literal("."), Part::Body])
            .event_type([Field::header("x-event-type")])
            .delivery_id([Field::header("x-delivery-id")]);
        let event = decode(&builder, &[("x-delivery-id", "d"), ("x-event-type", "t")]);
        assert_eq!(event.idempotency_key(), digest_key());
    }

    #[test]
    fn a_signed_field_after_an_unsigned_header_is_not_signed() {
        // `x-id` first, unsigned; the body's `/id` next: adding or removing `x-id` would choose
        // between two keys, so neither is used.
        let builder = Hmac::sha256("x-signature")
            .event_type([Field::header("x-type"), Field::json("/type")])
            .delivery_id([Field::header("x-id"), Field::json("/id")]);
        for headers in [&[("x-id", "forged"), ("x-type", "t")][..], &[]] {
            let event = decode(&builder, headers);
            assert_eq!(event.idempotency_key(), digest_key(), "{headers:?}");
            assert!(!event.event_type_signed, "{headers:?}");
        }
        // The body's fields first: an unsigned header after them is never read while they are
        // there, and the key is the signed one whatever the headers say.
        let builder = Hmac::sha256("x-signature")
            .event_type([Field::json("/type"), Field::header("x-type")])
            .delivery_id([Field::json("/id"), Field::header("x-id")]);
        for headers in [&[("x-id", "forged"), ("x-type", "t")][..], &[]] {
            let event = decode(&builder, headers);
            assert_eq!(
                event.idempotency_key().as_deref(),
                Some(r#"["invoice.paid","evt_1"]"#),
                "{headers:?}"
            );
        }
        // Neither found in the body and an unsigned header listed: not signed, present or not.
        let builder = Hmac::sha256("x-signature")
            .event_type([Field::json("/kind"), Field::header("x-type")])
            .delivery_id([Field::json("/id")]);
        for headers in [&[("x-type", "t")][..], &[]] {
            let event = decode(&builder, headers);
            assert_eq!(
                event.idempotency_key().as_deref(),
                Some(r#"[null,"evt_1"]"#),
                "{headers:?}"
            );
        }
    }

    #[test]
    fn a_type_absent_from_the_signed_body_is_still_signed() {
        // Standard Webhooks without a `type`: `["","msg_1"]`, as before.
        let builder = Hmac::sha256("x-signature")
            .signs([Part::header("webhook-id"), Part::literal("."), Part::Body])
            .event_type([Field::json("/kind")])
            .delivery_id([Field::header("webhook-id")]);
        let event = decode(&builder, &[("webhook-id", "msg_1")]);
        assert!(event.event_type_signed);
        assert_eq!(event.idempotency_key().as_deref(), Some(r#"["","msg_1"]"#));
    }

    #[test]
    fn new_keys_never_equal_earlier_ones() {
        let signed = Event::new("", Some("x".into()), None);
        let mut unsigned = signed.clone();
        unsigned.event_type_signed = false;
        let mut null_type = Event::new("null", Some("x".into()), None);
        null_type.event_type_signed = true;
        let keys = [
            signed.idempotency_key(),
            unsigned.idempotency_key(),
            null_type.idempotency_key(),
        ];
        assert_eq!(keys[1].as_deref(), Some(r#"[null,"x"]"#));
        assert_ne!(keys[0], keys[1]);
        assert_ne!(keys[1], keys[2]);
    }

    #[test]
    fn the_scheme_reports_which_parts_are_signed() {
        let github = delivery(
            github::scheme(),
            &[],
            &[("x-github-event", "push"), ("x-github-delivery", "d-1")],
        );
        assert_eq!(github.event_type.as_deref(), Some("push"));
        assert!(!github.event_type_signed);
        assert_eq!(github.id.as_deref(), Some("d-1"));
        assert!(!github.id_signed);

        let stripe = delivery(
            Hmac::sha256("x-signature")
                .event_type([Field::json("/type")])
                .delivery_id([Field::json("/id")]),
            &[],
            &[],
        );
        assert!(stripe.event_type_signed && stripe.id_signed);
        assert_eq!(stripe.id.as_deref(), Some("evt_1"));

        let custom = delivery(
            signed_id_unsigned_type(),
            &[("x-delivery-id", "dlv_1")],
            &[("x-event-type", "invoice.paid")],
        );
        assert_eq!(custom.id.as_deref(), Some("dlv_1"));
        assert!(custom.id_signed);
        assert_eq!(custom.event_type.as_deref(), Some("invoice.paid"));
        assert!(!custom.event_type_signed);

        // Nothing read, nothing claimed.
        let none = delivery(signed_id_unsigned_type(), &[("x-delivery-id", "d")], &[]);
        assert_eq!(none.event_type, None);
        assert!(!none.event_type_signed);
    }

    #[test]
    fn the_signed_flag_survives_serde_and_defaults_to_signed() {
        let mut event = Event::new("t", Some("d".into()), None);
        event.event_type_signed = false;
        let json = serde_json::to_string(&event).unwrap();
        assert!(json.contains(r#""event_type_signed":false"#), "{json}");
        let back: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(back, event);
        assert_eq!(back.idempotency_key().as_deref(), Some(r#"[null,"d"]"#));
        // Written before the field existed (or signed): the key those versions gave.
        let signed = Event::new("t", Some("d".into()), None);
        let json = serde_json::to_string(&signed).unwrap();
        assert!(!json.contains("event_type_signed"), "{json}");
        let old: Event =
            serde_json::from_str(r#"{"event_type":"t","id":"d","payload":null}"#).unwrap();
        assert_eq!(old, signed);
        assert_eq!(old.idempotency_key().as_deref(), Some(r#"["t","d"]"#));
    }
}
