//! Presets for the providers this crate knows, each matching its provider's documentation.
//!
//! | preset | header | signed content | encoding | event type |
//! | --- | --- | --- | --- | --- |
//! | [`videonest`] | `X-VideoNest-Signature` | the raw body | lower-case hex HMAC-SHA256 | [`videonest::Event`] |
//! | [`videoaiditor`] | `X-Signature` | `JSON.stringify(payload)`: the raw body, or else its exact JavaScript re-serialisation | lower-case hex HMAC-SHA256 | [`videoaiditor::Event`] |
//! | [`github`] | `X-Hub-Signature-256` | the raw body | `sha256=` + lower-case hex HMAC-SHA256 | [`generic::Event`] |
//! | [`stripe`] | `Stripe-Signature` (`t=…,v1=…`) | `{t}.{body}` | lower-case hex HMAC-SHA256 | [`generic::Event`] |
//! | [`standard_webhooks`] | `webhook-signature` (`v1,… v1,…`), `webhook-id`, `webhook-timestamp` | `{id}.{timestamp}.{body}` | base64 HMAC-SHA256, `whsec_` key | [`generic::Event`] |
//! | [`svix`] | `svix-signature`, `svix-id`, `svix-timestamp` | `{id}.{timestamp}.{body}` | base64 HMAC-SHA256, `whsec_` key | [`generic::Event`] |
//! | [`shopify`] | `X-Shopify-Hmac-Sha256` | the raw body | base64 HMAC-SHA256 | [`generic::Event`] |
//! | [`slack`] | `X-Slack-Signature`, `X-Slack-Request-Timestamp` | `v0:{timestamp}:{body}` | `v0=` + lower-case hex HMAC-SHA256 | [`generic::Event`] |
//! | [`discord`] | `X-Signature-Ed25519`, `X-Signature-Timestamp` | `{timestamp}{body}` | lower-case hex Ed25519, public keys | [`generic::Event`] |
//! | [`sendgrid`] | `X-Twilio-Email-Event-Webhook-Signature`, `…-Timestamp` | `{timestamp}{body}` | base64 DER ECDSA P-256, public keys | [`generic::Event`] |
//! | [`gitlab`] | `X-Gitlab-Token` | nothing: a shared token | the token, compared in constant time | [`generic::Event`] |
//! | [`twilio`] | `X-Twilio-Signature` | the URL, then the sorted form parameters (or the URL with the body's SHA-256) | base64 HMAC-SHA1 | [`generic::Event`] |
//!
//! Stripe, Standard Webhooks, Svix, Slack, Discord and SendGrid sign a timestamp: their presets
//! refuse one further than 5 minutes from the clock, either way. Neither VideoNest nor VideoAIditor signs a
//! timestamp or sends a delivery id header, so neither preset has a replay window by default
//! ([`videonest::layer_with_window`] opts into one on the body's event time); both documents ask receivers to deduplicate (VideoNest by the event `id`, VideoAIditor
//! by the render `_id`). Both presets accept several secrets, for key rotation.
//!
//! A verified body that is JSON is always delivered: event types the crate does not know
//! (VideoNest's test ping, types a provider adds later) and known types whose fields have a shape
//! the documents do not show come as `Event::Raw` ([`RawEvent`]) with their type string, id and
//! raw data. [`VerifyWebhookLayer::strict`](crate::VerifyWebhookLayer::strict) refuses the
//! latter with 400 instead.
//!
//! # Adding a provider
//!
//! A preset is a file of declarations here: the provider's header names, its `scheme()`
//! function (an [`HmacBuilder`]: the header grammar, what is signed, the encoding, where the event
//! type and delivery id are, the replay window), and one `preset!` line naming the event type
//! and how a request is signed (the body alone; the body and a timestamp; a message id, a
//! timestamp and the body). The macro writes the same `layer`, `headers` and `signed_request`
//! functions for every preset. A provider whose events have a typed form of their own (VideoNest,
//! VideoAIditor) declares its event module beside it; the others decode into
//! [`generic::Event`]. A provider that is not signed with an HMAC needs a
//! [`Scheme`](crate::scheme::Scheme) of its own in [`scheme`](crate::scheme).
//!
//! # Example
//!
//! ```
//! use tower_webhook::provider::videonest;
//!
//! // The current secret and the one being rotated out.
//! let layer = videonest::layer(["vn_new_secret", "vn_old_secret"])?.max_body_size(1 << 20);
//! # let _ = layer;
//! # Ok::<_, tower_webhook::ConfigError>(())
//! ```

pub mod discord;
pub mod generic;
pub mod github;
pub mod gitlab;
pub(crate) mod raw;
pub mod sendgrid;
pub mod shopify;
pub mod slack;
pub mod standard_webhooks;
pub mod stripe;
pub mod svix;
pub mod twilio;
pub mod videoaiditor;
pub mod videonest;

pub use self::raw::RawEvent;

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::Full;

use crate::{
    ConfigError, Secret, VerifyWebhookLayer, WebhookEvent,
    decode::Decode,
    scheme::{Hmac, HmacBuilder, SigningKey},
};

/// An event type a preset decodes into, and how.
pub(crate) trait PresetEvent: WebhookEvent + Clone + Send + Sync + Sized + 'static {
    /// The decoder of a scheme built from `builder` (which says where the event type and id
    /// are).
    fn decoder(builder: &HmacBuilder) -> impl Decode<Self>;
}

/// The layer of a preset: `builder` built, its events decoded into `E`, their types in the
/// `tracing` span.
pub(crate) fn layer<E: PresetEvent>(
    builder: HmacBuilder,
) -> Result<VerifyWebhookLayer<Hmac, E>, ConfigError> {
    let decoder = E::decoder(&builder);
    Ok(VerifyWebhookLayer::new(builder.build()?)
        .decode_with(decoder)
        .trace_event_types())
}

/// The layer of a preset verifying each request with the secrets of its tenant: `builder`
/// built as the template of every tenant's scheme, its events decoded into `E`.
#[cfg(feature = "tenants")]
pub(crate) fn tenant_layer<E: PresetEvent>(
    builder: HmacBuilder,
    tenants: &crate::tenant::Tenants,
) -> Result<VerifyWebhookLayer<crate::tenant::Tenanted<Hmac>, E>, ConfigError> {
    // The template's own key only checks requests for unknown tenants, whose result is thrown
    // away; this one is valid in every key format (raw bytes, or base64 after `whsec_`).
    const TEMPLATE_SECRET: &str = "dGVuYW50";
    let decoder = E::decoder(&builder);
    let template = builder.secret(TEMPLATE_SECRET).build()?;
    Ok(
        VerifyWebhookLayer::new(crate::tenant::Tenanted::new(template, tenants))
            .decode_with(decoder)
            .trace_event_types(),
    )
}

/// The headers a sender with `secret` puts on `body`: the scheme of `builder`, signing at
/// `timestamp` (the clock's time when `None`) with the signed header values of `headers`.
pub(crate) fn headers(
    builder: HmacBuilder,
    secret: impl Into<Secret>,
    body: &[u8],
    timestamp: Option<i64>,
    headers: &HeaderMap,
) -> Result<HeaderMap, ConfigError> {
    Ok(builder
        .secret(secret)
        .build()?
        .sign(body, timestamp, headers))
}

/// The headers a sender with `key` (a private key) puts on `body`; see [`headers`].
pub(crate) fn headers_signed_with(
    builder: HmacBuilder,
    key: &SigningKey,
    body: &[u8],
    timestamp: Option<i64>,
    headers: &HeaderMap,
) -> Result<HeaderMap, ConfigError> {
    Ok(builder
        .signing_key(key.clone())
        .build()?
        .sign(body, timestamp, headers))
}

/// The request a sender with `key` (a private key) sends with `body`; see [`headers`].
pub(crate) fn request_signed_with(
    builder: HmacBuilder,
    key: &SigningKey,
    body: impl Into<Bytes>,
    timestamp: Option<i64>,
    headers: &HeaderMap,
) -> Result<Request<Full<Bytes>>, ConfigError> {
    Ok(builder
        .signing_key(key.clone())
        .build()?
        .signed_request(body, timestamp, headers))
}

/// The request a sender with `secret` sends with `body`; see [`headers`].
pub(crate) fn signed_request(
    builder: HmacBuilder,
    secret: impl Into<Secret>,
    body: impl Into<Bytes>,
    timestamp: Option<i64>,
    headers: &HeaderMap,
) -> Result<Request<Full<Bytes>>, ConfigError> {
    Ok(builder
        .secret(secret)
        .build()?
        .signed_request(body, timestamp, headers))
}

/// The functions every preset has, written once: `layer`, then `headers` and `signed_request`
/// in the shape of how the provider signs (`body`: the body alone; `timestamp`: the body at a
/// signed time; `message(ID_HEADER)`: a message id, a signed time and the body). The module
/// declares `scheme()` and the header constants itself.
macro_rules! preset {
    (provider: $provider:literal, event: $event:ident, public_keys, signs: timestamp) => {
        #[doc = concat!(
            "A layer that verifies ", $provider, " webhooks signed by any of `keys` (key ",
            "rotation: any one verifying is enough) and decodes them into [`", stringify!($event),
            "`].\n\n# Errors\n\n[`ConfigError::NoSecret`](crate::ConfigError::NoSecret) ",
            "when `keys` is empty."
        )]
        pub fn layer<I>(
            keys: I,
        ) -> Result<$crate::VerifyWebhookLayer<$crate::scheme::Hmac, $event>, $crate::ConfigError>
        where
            I: IntoIterator<Item = $crate::scheme::PublicKey>,
        {
            $crate::provider::layer(scheme().public_keys(keys))
        }

        #[doc = concat!(
            "The headers ", $provider, " would put on `body` at `timestamp` (Unix seconds), ",
            "signed with the private `key`, for tests.\n\n# Errors\n\nNone for a key of the ",
            "preset's algorithm; [`ConfigError::NoSecret`](crate::ConfigError::NoSecret) never."
        )]
        pub fn headers(
            key: &$crate::scheme::SigningKey,
            body: &[u8],
            timestamp: i64,
        ) -> Result<http::HeaderMap, $crate::ConfigError> {
            $crate::provider::headers_signed_with(
                scheme(),
                key,
                body,
                Some(timestamp),
                &http::HeaderMap::new(),
            )
        }

        #[doc = concat!(
            "A request signed the way ", $provider, " signs it at `timestamp` (Unix seconds) ",
            "with the private `key`, for tests: `POST /` with `body`, `Content-Type: ",
            "application/json` and the headers of [`headers`].\n\n# Errors\n\nAs [`headers`]."
        )]
        pub fn signed_request(
            key: &$crate::scheme::SigningKey,
            body: impl Into<bytes::Bytes>,
            timestamp: i64,
        ) -> Result<http::Request<http_body_util::Full<bytes::Bytes>>, $crate::ConfigError> {
            $crate::provider::request_signed_with(
                scheme(),
                key,
                body,
                Some(timestamp),
                &http::HeaderMap::new(),
            )
        }
    };
    (provider: $provider:literal, event: $event:ident, signs: $($signs:tt)+) => {
        #[doc = concat!(
            "A layer that verifies ", $provider, " webhooks signed with any of `secrets` (key ",
            "rotation: any one matching is enough) and decodes them into [`", stringify!($event),
            "`]. Every verified JSON body is delivered; add ",
            "[`strict`](crate::VerifyWebhookLayer::strict) to refuse those whose shape the ",
            "provider does not document.\n\n# Errors\n\nWhat building the scheme with ",
            "`secrets` reports: [`ConfigError::NoSecret`](crate::ConfigError::NoSecret), ",
            "[`ConfigError::EmptySecret`](crate::ConfigError::EmptySecret), or ",
            "[`ConfigError::InvalidSecret`](crate::ConfigError::InvalidSecret) for a secret of ",
            "the wrong format."
        )]
        pub fn layer<I>(
            secrets: I,
        ) -> Result<$crate::VerifyWebhookLayer<$crate::scheme::Hmac, $event>, $crate::ConfigError>
        where
            I: IntoIterator,
            I::Item: Into<$crate::Secret>,
        {
            $crate::provider::layer(scheme().secrets(secrets))
        }

        #[cfg(feature = "tenants")]
        #[cfg_attr(docsrs, doc(cfg(feature = "tenants")))]
        #[doc = concat!(
            "A layer that verifies ", $provider, " webhooks for many tenants, each with its own ",
            "secrets, as `tenants` finds them (see [`tenant`](crate::tenant)), and decodes them ",
            "into [`", stringify!($event), "`].\n\n# Errors\n\nNone for this preset; the ",
            "`Result` matches [`layer`]'s."
        )]
        pub fn tenant_layer(
            tenants: &$crate::tenant::Tenants,
        ) -> Result<
            $crate::VerifyWebhookLayer<$crate::tenant::Tenanted<$crate::scheme::Hmac>, $event>,
            $crate::ConfigError,
        > {
            $crate::provider::tenant_layer(scheme(), tenants)
        }

        $crate::provider::preset!(@sign $provider, $($signs)+);
    };
    (@sign $provider:literal, body) => {
        #[doc = concat!(
            "The headers ", $provider, " would put on `body`, signed with `secret`, for tests.",
            "\n\n# Errors\n\n[`ConfigError::EmptySecret`](crate::ConfigError::EmptySecret) ",
            "when `secret` is empty."
        )]
        pub fn headers(
            secret: impl Into<$crate::Secret>,
            body: &[u8],
        ) -> Result<http::HeaderMap, $crate::ConfigError> {
            $crate::provider::headers(scheme(), secret, body, None, &http::HeaderMap::new())
        }

        #[doc = concat!(
            "A request signed the way ", $provider, " signs it, for tests: `POST /` with `body`, ",
            "`Content-Type: application/json` and the headers of [`headers`]. Change the URI ",
            "with [`Request::uri_mut`](http::Request::uri_mut) and the body type with ",
            "[`Request::map`](http::Request::map).\n\n# Errors\n\nAs [`headers`]."
        )]
        pub fn signed_request(
            secret: impl Into<$crate::Secret>,
            body: impl Into<bytes::Bytes>,
        ) -> Result<http::Request<http_body_util::Full<bytes::Bytes>>, $crate::ConfigError> {
            $crate::provider::signed_request(scheme(), secret, body, None, &http::HeaderMap::new())
        }
    };
    (@sign $provider:literal, timestamp) => {
        #[doc = concat!(
            "The headers ", $provider, " would put on `body` at `timestamp` (Unix seconds), ",
            "signed with `secret`, for tests.\n\n# Errors\n\n",
            "[`ConfigError::EmptySecret`](crate::ConfigError::EmptySecret) when `secret` is empty."
        )]
        pub fn headers(
            secret: impl Into<$crate::Secret>,
            body: &[u8],
            timestamp: i64,
        ) -> Result<http::HeaderMap, $crate::ConfigError> {
            $crate::provider::headers(scheme(), secret, body, Some(timestamp), &http::HeaderMap::new())
        }

        #[doc = concat!(
            "A request signed the way ", $provider, " signs it at `timestamp` (Unix seconds), ",
            "for tests: `POST /` with `body`, `Content-Type: application/json` and the headers ",
            "of [`headers`].\n\n# Errors\n\nAs [`headers`]."
        )]
        pub fn signed_request(
            secret: impl Into<$crate::Secret>,
            body: impl Into<bytes::Bytes>,
            timestamp: i64,
        ) -> Result<http::Request<http_body_util::Full<bytes::Bytes>>, $crate::ConfigError> {
            $crate::provider::signed_request(
                scheme(),
                secret,
                body,
                Some(timestamp),
                &http::HeaderMap::new(),
            )
        }
    };
    (@sign $provider:literal, message($id_header:ident)) => {
        #[doc = concat!(
            "The id, timestamp and signature headers a ", $provider, " sender would put on ",
            "`body` for message `id` at `timestamp` (Unix seconds), signed with `secret`, for ",
            "tests.\n\n# Errors\n\n[`ConfigError::EmptySecret`](crate::ConfigError::EmptySecret) ",
            "or [`ConfigError::InvalidSecret`](crate::ConfigError::InvalidSecret); and ",
            "[`ConfigError::InvalidScheme`](crate::ConfigError::InvalidScheme) when `id` cannot be ",
            "a header value."
        )]
        pub fn headers(
            secret: impl Into<$crate::Secret>,
            id: &str,
            timestamp: i64,
            body: &[u8],
        ) -> Result<http::HeaderMap, $crate::ConfigError> {
            let id = $crate::provider::message_id($id_header, id)?;
            $crate::provider::headers(scheme(), secret, body, Some(timestamp), &id)
        }

        #[doc = concat!(
            "A request a ", $provider, " sender would send for message `id` at `timestamp` ",
            "(Unix seconds), for tests: `POST /` with `body`, `Content-Type: application/json` ",
            "and the headers of [`headers`].\n\n# Errors\n\nAs [`headers`]."
        )]
        pub fn signed_request(
            secret: impl Into<$crate::Secret>,
            id: &str,
            timestamp: i64,
            body: impl Into<bytes::Bytes>,
        ) -> Result<http::Request<http_body_util::Full<bytes::Bytes>>, $crate::ConfigError> {
            let id = $crate::provider::message_id($id_header, id)?;
            $crate::provider::signed_request(scheme(), secret, body, Some(timestamp), &id)
        }

        #[doc = concat!(
            "A layer that verifies ", $provider, " webhooks signed with any of `secrets` (`v1` ",
            "entries) or by any of `public_keys` (`v1a` Ed25519 entries, keys written ",
            "`whpk_…`: [`PublicKey::whpk`](crate::scheme::PublicKey::whpk)): a match of either ",
            "kind is enough. Either list may be empty, not both.\n\n# Errors\n\nAs ",
            "[`layer`]'s."
        )]
        pub fn layer_with_public_keys<I, K>(
            secrets: I,
            public_keys: K,
        ) -> Result<
            $crate::VerifyWebhookLayer<$crate::scheme::Hmac, super::generic::Event>,
            $crate::ConfigError,
        >
        where
            I: IntoIterator,
            I::Item: Into<$crate::Secret>,
            K: IntoIterator<Item = $crate::scheme::PublicKey>,
        {
            $crate::provider::layer(scheme().secrets(secrets).public_keys(public_keys))
        }

        #[doc = concat!(
            "A request a ", $provider, " sender with the Ed25519 signing `key` (`whsk_…`: ",
            "[`SigningKey::whsk`](crate::scheme::SigningKey::whsk)) would send for message `id` ",
            "at `timestamp`, with one `v1a` signature, for tests.\n\n# Errors\n\nAs ",
            "[`headers`]."
        )]
        pub fn signed_request_with_key(
            key: &$crate::scheme::SigningKey,
            id: &str,
            timestamp: i64,
            body: impl Into<bytes::Bytes>,
        ) -> Result<http::Request<http_body_util::Full<bytes::Bytes>>, $crate::ConfigError> {
            let id = $crate::provider::message_id($id_header, id)?;
            $crate::provider::request_signed_with(scheme(), key, body, Some(timestamp), &id)
        }
    };
}
pub(crate) use preset;

/// The header map `{name: id}` of the presets that sign a message id (Standard Webhooks, Svix).
pub(crate) fn message_id(name: &'static str, id: &str) -> Result<HeaderMap, ConfigError> {
    let value = http::HeaderValue::from_str(id).map_err(|_| ConfigError::InvalidScheme {
        reason: "a message id must be a valid header value",
    })?;
    let mut headers = HeaderMap::new();
    headers.insert(name, value);
    Ok(headers)
}
