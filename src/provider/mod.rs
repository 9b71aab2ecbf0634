//! Presets for the providers this crate knows, each matching its provider's documentation.
//!
//! | preset | header | signed content | encoding | event type |
//! | --- | --- | --- | --- | --- |
//! | [`videonest`] | `X-VideoNest-Signature` | the raw body | lower-case hex HMAC-SHA256 | [`videonest::Event`] |
//! | [`videoaiditor`] | `X-Signature` | `JSON.stringify(payload)`: the raw body, or else its exact JavaScript re-serialisation | lower-case hex HMAC-SHA256 | [`videoaiditor::Event`] |
//!
//! Neither provider signs a timestamp or sends a delivery id header, so neither preset has a replay
//! window; both documents ask receivers to deduplicate (VideoNest by the event `id`, VideoAIditor
//! by the render `_id`). Both presets accept several secrets, for key rotation.
//!
//! Event types the crate does not know (VideoNest's test ping, types a provider adds later) are
//! accepted as `Event::Unknown` with their type string and raw data, never refused.
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

mod unknown;
pub mod videoaiditor;
pub mod videonest;

pub use self::unknown::UnknownEvent;
