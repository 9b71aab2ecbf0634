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
//!
//! Stripe, Standard Webhooks, Svix and Slack sign a timestamp: their presets refuse one further
//! than 5 minutes from the clock, either way. Neither VideoNest nor VideoAIditor signs a
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

pub mod generic;
pub mod github;
pub(crate) mod raw;
pub mod shopify;
pub mod slack;
pub mod standard_webhooks;
pub mod stripe;
pub mod svix;
pub mod videoaiditor;
pub mod videonest;

pub use self::raw::RawEvent;
