//! The request extension the layer gives the handler: the verified event, its signed bytes and
//! what is known about the delivery.

use std::{ops::Deref, sync::Arc, time::SystemTime};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::{WebhookEvent, scheme::Delivery};

/// A verified webhook, inserted by [`VerifyWebhook`](crate::VerifyWebhook) as a request
/// extension before the inner service runs.
///
/// `E` is the event type the layer decodes into (`()` when the layer only verifies). The signed
/// bytes come along: they are exactly what the signature covered, which is also the request body
/// the inner service receives. So does what later layers need to know about the delivery: the
/// scheme's name, the delivery id and signed timestamp where the scheme has them, and when the
/// request arrived. `Verified<E>` dereferences to the event.
///
/// It serialises (with `serde`; the signed bytes as standard base64) for a durable hand-off,
/// and deserialises back to an equal value. Deserialising trusts the input: only read back what
/// your own service wrote to a store only it can write to, never a value from outside.
///
/// Read it in an axum handler with `Extension<Verified<E>>`, or with `Verified<E>` itself as an
/// extractor when the `axum` feature is on; elsewhere with
/// `request.extensions().get::<Verified<E>>()`.
///
/// ```
/// # use tower_webhook::Verified;
/// fn handle(request: &http::Request<http_body_util::Full<bytes::Bytes>>) {
///     let verified = request
///         .extensions()
///         .get::<Verified<serde_json::Value>>()
///         .expect("the layer runs before this handler");
///     println!("event {} ({} signed bytes)", verified["event"], verified.body().len());
/// }
/// ```
///
/// In a handler's own tests, build one with [`Verified::new`]:
///
/// ```
/// use tower_webhook::{Verified, provider::videonest};
///
/// let body = r#"{"event":"video.failed","data":{"id":"vid_1","error_code":"E42"}}"#;
/// let verified = Verified::new(serde_json::from_str::<videonest::Event>(body)?, body)
///     .with_provider("videonest");
/// assert_eq!(verified.id(), Some("vid_1"));
/// assert_eq!(verified.provider(), "videonest");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verified<E = ()> {
    event: E,
    #[serde(with = "base64_bytes")]
    body: Bytes,
    reserialized: bool,
    provider: Arc<str>,
    delivery_id: Option<String>,
    #[serde(default)]
    delivery_id_signed: bool,
    #[serde(default)]
    event_type: Option<String>,
    #[serde(default)]
    event_type_signed: bool,
    timestamp: Option<i64>,
    received_at: SystemTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant: Option<Arc<str>>,
}

impl<E> Verified<E> {
    /// A verified event with its signed bytes, received now, with no provider name (empty), no
    /// delivery id and no signed timestamp; the `with_*` methods set them.
    ///
    /// The layer builds these itself; this is for handler tests and for workers that take
    /// events from a queue.
    pub fn new(event: E, body: impl Into<Bytes>) -> Self {
        Self {
            event,
            body: body.into(),
            reserialized: false,
            provider: Arc::from(""),
            delivery_id: None,
            delivery_id_signed: false,
            event_type: None,
            event_type_signed: false,
            timestamp: None,
            received_at: SystemTime::now(),
            tenant: None,
        }
    }

    pub(crate) fn from_layer(
        event: E,
        body: Bytes,
        reserialized: bool,
        provider: Arc<str>,
        delivery: Delivery,
        received_at: SystemTime,
    ) -> Self {
        Self {
            event,
            body,
            reserialized,
            provider,
            delivery_id_signed: delivery.id_signed && delivery.id.is_some(),
            delivery_id: delivery.id,
            event_type_signed: delivery.event_type_signed && delivery.event_type.is_some(),
            event_type: delivery.event_type,
            timestamp: delivery.timestamp,
            received_at,
            tenant: delivery.tenant,
        }
    }

    /// The tenant whose secret verified the request, for a layer with secrets per tenant
    /// ([`tenant`](crate::tenant)); `None` for a layer with secrets of its own.
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// The provider's name, shared.
    pub(crate) fn provider_name(&self) -> &Arc<str> {
        &self.provider
    }

    setters! {
        /// Sets the provider (scheme) name.
        #[must_use]
        pub fn with_provider(provider: impl Into<Arc<str>>) { provider = provider.into() }

        /// Sets the tenant (see [`tenant`](Self::tenant)).
        #[must_use]
        pub fn with_tenant(tenant: impl Into<Arc<str>>) { tenant = Some(tenant.into()) }

        /// Sets the delivery id, as one the signature does not cover.
        #[must_use]
        pub fn with_delivery_id(id: impl Into<String>) {
            delivery_id = Some(id.into()),
            delivery_id_signed = false
        }

        /// Sets the delivery id, as one the signature covers.
        #[must_use]
        pub fn with_signed_delivery_id(id: impl Into<String>) {
            delivery_id = Some(id.into()),
            delivery_id_signed = true
        }

        /// Sets the event type, as one the signature does not cover.
        #[must_use]
        pub fn with_event_type(event_type: impl Into<String>) {
            event_type = Some(event_type.into()),
            event_type_signed = false
        }

        /// Sets the event type, as one the signature covers.
        #[must_use]
        pub fn with_signed_event_type(event_type: impl Into<String>) {
            event_type = Some(event_type.into()),
            event_type_signed = true
        }

        /// Sets the signed timestamp (Unix seconds).
        #[must_use]
        pub fn with_timestamp(unix_seconds: i64) { timestamp = Some(unix_seconds) }

        /// Sets when the request was received.
        #[must_use]
        pub fn with_received_at(at: SystemTime) { received_at = at }

        /// Marks the signed bytes as the `JSON.stringify` re-serialisation of the body.
        #[must_use]
        pub fn with_reserialized(reserialized: bool) { reserialized = reserialized }
    }

    /// The decoded event.
    pub fn event(&self) -> &E {
        &self.event
    }

    /// The decoded event, by value.
    pub fn into_event(self) -> E {
        self.event
    }

    /// The bytes the signature covered: the raw body, or its JavaScript re-serialisation when
    /// that is what matched (see [`is_reserialized`](Self::is_reserialized)).
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Whether the signature matched the body's `JSON.stringify(JSON.parse(body))` form rather
    /// than the raw bytes. Only possible for schemes that opt into that fallback.
    pub fn is_reserialized(&self) -> bool {
        self.reserialized
    }

    /// The name of the scheme that verified the request: the preset's provider (`"videonest"`,
    /// `"videoaiditor"`), or what [`Scheme::name`](crate::scheme::Scheme::name) returns.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The delivery id, where the scheme reads one: a header (`X-GitHub-Delivery`,
    /// `webhook-id`, `X-Shopify-Event-Id`) or a field of the signed body (Stripe's `id`). The
    /// VideoNest and VideoAIditor presets read none (their ids are in the typed event).
    ///
    /// Whether the signature covers it is [`is_delivery_id_signed`](Self::is_delivery_id_signed):
    /// GitHub's and Shopify's id headers are not signed, and whoever replays a captured delivery
    /// can change them.
    pub fn delivery_id(&self) -> Option<&str> {
        self.delivery_id.as_deref()
    }

    /// Whether the signature covers [`delivery_id`](Self::delivery_id): it was read from a
    /// header the MAC covers (Standard Webhooks' and Svix's `webhook-id`) or from the signed
    /// body (Stripe's `id`). `false` when there is no delivery id, and for GitHub's and
    /// Shopify's, which come from headers they do not sign.
    pub fn is_delivery_id_signed(&self) -> bool {
        self.delivery_id_signed
    }

    /// The provider's event type as the scheme read it, where it reads one: a header
    /// (`X-GitHub-Event`, `X-Shopify-Topic`) or a field of the signed body (Stripe's `type`).
    /// [`event_type`](Self::event_type) falls back to the event's own when this is `None`.
    ///
    /// Whether the signature covers it is
    /// [`is_delivery_event_type_signed`](Self::is_delivery_event_type_signed).
    pub fn delivery_event_type(&self) -> Option<&str> {
        self.event_type.as_deref()
    }

    /// Whether the signature covers [`delivery_event_type`](Self::delivery_event_type): it was
    /// read from the signed body (Stripe's `type`, Standard Webhooks' and Svix's `type`, Slack's)
    /// or from a header the MAC covers. `false` when the scheme read no event type, and for
    /// GitHub's `X-GitHub-Event` and Shopify's `X-Shopify-Topic`, which are not signed: treat
    /// those as unauthenticated metadata.
    ///
    /// ```
    /// use tower_webhook::{Verified, provider::generic::Event};
    ///
    /// let github = Verified::new(Event::new("push", None, None), "{}").with_event_type("push");
    /// assert!(!github.is_delivery_event_type_signed());
    /// let stripe = Verified::new(Event::new("invoice.paid", None, None), "{}")
    ///     .with_signed_event_type("invoice.paid");
    /// assert!(stripe.is_delivery_event_type_signed());
    /// ```
    pub fn is_delivery_event_type_signed(&self) -> bool {
        self.event_type_signed
    }

    /// The signed timestamp in Unix seconds, for schemes that sign one (Stripe, Standard
    /// Webhooks, Svix, Slack).
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }

    /// When the layer received the request (before its body was read).
    pub fn received_at(&self) -> SystemTime {
        self.received_at
    }

    /// The event and the signed bytes.
    pub fn into_parts(self) -> (E, Bytes) {
        (self.event, self.body)
    }
}

impl<E: WebhookEvent> Verified<E> {
    /// The event type, the same for every preset: the one the scheme read
    /// ([`delivery_event_type`](Self::delivery_event_type)), else the event's own
    /// ([`WebhookEvent::event_type`]).
    ///
    /// When the scheme read it, [`is_delivery_event_type_signed`](Self::is_delivery_event_type_signed)
    /// says whether the signature covers it (GitHub's and Shopify's event type headers are not
    /// signed). The VideoNest and VideoAIditor presets read none: theirs is the typed event's,
    /// parsed from the signed body.
    ///
    /// ```
    /// use tower_webhook::{Verified, provider::generic::Event};
    ///
    /// let verified = Verified::new(Event::new("push", None, None), "{}").with_event_type("ping");
    /// assert_eq!(verified.event_type(), "ping");
    /// ```
    pub fn event_type(&self) -> &str {
        self.event_type
            .as_deref()
            .unwrap_or_else(|| self.event.event_type())
    }
}

impl<E> Deref for Verified<E> {
    type Target = E;

    fn deref(&self) -> &E {
        &self.event
    }
}

/// Signed bytes as a standard base64 string.
mod base64_bytes {
    use base64::{Engine as _, engine::general_purpose::STANDARD};
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(super) fn serialize<S: Serializer>(
        bytes: &Bytes,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Bytes, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        STANDARD
            .decode(text.as_bytes())
            .map(Bytes::from)
            .map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::videoaiditor;

    #[test]
    fn round_trips_through_json_with_every_field() {
        let body = "{\"event\":\"render.completed\",\"data\":{\"_id\":\"r\",\"videoData\":{\"t\":\"\\ud83d\"}}}";
        let event: videoaiditor::Event = serde_json::from_str(body).unwrap();
        let verified = Verified::new(event, body)
            .with_provider("videoaiditor")
            .with_signed_delivery_id("msg_1")
            .with_signed_event_type("render.completed")
            .with_timestamp(1_767_225_600)
            .with_reserialized(true);
        let json = serde_json::to_string(&verified).unwrap();
        let back: Verified<videoaiditor::Event> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, verified);
        assert_eq!(back.body(), body.as_bytes());
        assert_eq!(back.id(), Some("r"));
        assert!(back.is_delivery_id_signed());
        assert!(back.is_delivery_event_type_signed());

        let unsigned = verified
            .with_delivery_id("msg_1")
            .with_event_type("render.completed");
        let json = serde_json::to_string(&unsigned).unwrap();
        let back: Verified<videoaiditor::Event> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, unsigned);
        assert!(!back.is_delivery_id_signed());
        assert!(!back.is_delivery_event_type_signed());
    }

    /// A value serialised before the signed flags existed still reads back, with both flags
    /// unset: nothing is claimed signed that was not recorded as such.
    #[test]
    fn reads_what_earlier_versions_wrote() {
        use crate::provider::generic;
        let json = r#"{"event":{"event_type":"push","id":"d-1","payload":null},"body":"e30=","reserialized":false,"provider":"github","delivery_id":"d-1","event_type":"push","timestamp":null,"received_at":{"secs_since_epoch":1767225600,"nanos_since_epoch":0}}"#;
        let back: Verified<generic::Event> = serde_json::from_str(json).unwrap();
        assert_eq!(back.delivery_id(), Some("d-1"));
        assert_eq!(back.delivery_event_type(), Some("push"));
        assert!(!back.is_delivery_id_signed());
        assert!(!back.is_delivery_event_type_signed());
        assert_eq!(back.body().as_ref(), b"{}");
        assert_eq!(
            back.received_at(),
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_767_225_600)
        );
        // The event's key is the one the earlier version computed for it.
        assert_eq!(
            crate::WebhookEvent::idempotency_key(back.event()).as_deref(),
            Some(r#"["push","d-1"]"#)
        );
    }

    #[test]
    fn the_layer_records_what_the_scheme_says_is_signed() {
        let delivery = Delivery::default()
            .signed_id("msg_1")
            .event_type("push")
            .timestamp(7);
        let verified = Verified::from_layer(
            (),
            Bytes::from_static(b"{}"),
            false,
            Arc::from("acme"),
            delivery,
            SystemTime::UNIX_EPOCH,
        );
        assert!(verified.is_delivery_id_signed());
        assert!(!verified.is_delivery_event_type_signed());
        // A flag without a value claims nothing.
        let empty = Delivery {
            id_signed: true,
            event_type_signed: true,
            ..Delivery::default()
        };
        let verified = Verified::from_layer(
            (),
            Bytes::new(),
            false,
            Arc::from("acme"),
            empty,
            SystemTime::UNIX_EPOCH,
        );
        assert!(!verified.is_delivery_id_signed());
        assert!(!verified.is_delivery_event_type_signed());
    }

    #[test]
    fn non_utf8_bytes_survive() {
        let verified = Verified::new((), vec![0xff, 0x00, 0xfe]);
        let json = serde_json::to_string(&verified).unwrap();
        let back: Verified = serde_json::from_str(&json).unwrap();
        assert_eq!(back.body().as_ref(), [0xff, 0x00, 0xfe]);
    }
}
