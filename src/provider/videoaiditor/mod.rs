//! VideoAIditor: `X-Signature`, lower-case hex HMAC-SHA256 of `JSON.stringify(payload)`.
//!
//! VideoAIditor's documentation verifies with
//! `crypto.createHmac("sha256", secret).update(JSON.stringify(payload)).digest("hex")`, where
//! `payload` is the parsed request body: the MAC covers the JavaScript re-serialisation of the
//! body, not necessarily the bytes received. This preset therefore checks the raw bytes first and,
//! only if they do not match, the body re-serialised with exact `JSON.stringify(JSON.parse(body))`
//! semantics (see [`HmacSha256Builder::json_stringify_fallback`]). When the re-serialised form is
//! what matched, the event and the body the handler sees are that signed form.
//!
//! The documentation asks receivers to "Handle duplicate events (use the render ID as an
//! idempotency key)": [`Event::id`] is that `_id`. It documents no timestamp and no retries.
//!
//! # Example
//!
//! ```
//! use tower_webhook::provider::videoaiditor;
//!
//! let layer = videoaiditor::layer(["your-webhook-secret"])?;
//! // The provider's docs sign the compact `JSON.stringify` form…
//! let signature = layer.scheme().sign(br#"{"event":"render.completed","data":{"_id":"render-id"}}"#);
//! // …which a pretty-printed delivery of the same payload also verifies against.
//! # let _ = signature;
//! # Ok::<_, tower_webhook::ConfigError>(())
//! ```

mod event;

pub use self::event::*;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;

use crate::{
    ConfigError, Secret, VerifyWebhookLayer,
    provider::raw::Preset,
    scheme::{Encoding, HmacSha256, HmacSha256Builder},
};

/// The header VideoAIditor sends its signature in.
pub const SIGNATURE_HEADER: &str = "X-Signature";

/// A builder for the VideoAIditor scheme, with header, encoding and the `JSON.stringify`
/// fallback set; add secrets and [`build`](HmacSha256Builder::build) it.
pub fn scheme() -> HmacSha256Builder {
    HmacSha256::builder(SIGNATURE_HEADER)
        .name("videoaiditor")
        .encoding(Encoding::Hex)
        .json_stringify_fallback()
}

/// A layer that verifies VideoAIditor webhooks signed with any of `secrets` and decodes them into
/// [`Event`]. Every verified JSON body is delivered, as [`Event::Raw`] when it does not fit a
/// typed variant (decoded as [`Lossless`](crate::decode::Lossless) decodes); add [`strict`](VerifyWebhookLayer::strict) to refuse those with
/// 400 instead.
///
/// # Errors
///
/// [`ConfigError::NoSecret`] or [`ConfigError::EmptySecret`].
pub fn layer<I>(secrets: I) -> Result<VerifyWebhookLayer<HmacSha256, Event>, ConfigError>
where
    I: IntoIterator,
    I::Item: Into<Secret>,
{
    Ok(VerifyWebhookLayer::new(scheme().secrets(secrets).build()?)
        .decode_with(Preset::new())
        .trace_event_types())
}

/// A request signed the way the provider signs it, for tests: `POST /` with `body`,
/// `Content-Type: application/json` and the signature header made with `secret`. Change the URI
/// with [`Request::uri_mut`] and the body type with [`Request::map`].
///
/// # Errors
///
/// [`ConfigError::EmptySecret`] when `secret` is empty.
pub fn signed_request(
    secret: impl Into<Secret>,
    body: impl Into<Bytes>,
) -> Result<Request<Full<Bytes>>, ConfigError> {
    Ok(scheme().secret(secret).build()?.signed_request(body))
}
