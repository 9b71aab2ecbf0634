//! VideoAIditor: `X-Signature`, lower-case hex HMAC-SHA256 of `JSON.stringify(payload)`.
//!
//! VideoAIditor's documentation verifies with
//! `crypto.createHmac("sha256", secret).update(JSON.stringify(payload)).digest("hex")`, where
//! `payload` is the parsed request body: the MAC covers the JavaScript re-serialisation of the
//! body, not necessarily the bytes received. This preset therefore checks the raw bytes first and,
//! only if they do not match, the body re-serialised with exact `JSON.stringify(JSON.parse(body))`
//! semantics (see [`Part::BodyOrJsonStringify`]). When the re-serialised form is what matched, the
//! event and the body the handler sees are that signed form.
//!
//! The documentation asks receivers to "Handle duplicate events (use the render ID as an
//! idempotency key)": [`Event::id`] is that `_id`. It documents no timestamp and no retries.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use tower_webhook::{provider::videoaiditor, scheme::{Scheme, Signed}};
//!
//! let layer = videoaiditor::layer(["your-webhook-secret"])?;
//! // The provider's docs sign the compact `JSON.stringify` form…
//! let compact = r#"{"event":"render.completed","data":{"_id":"render-id"}}"#;
//! let request = videoaiditor::signed_request("your-webhook-secret", compact)?;
//! // …which a pretty-printed delivery of the same payload also verifies against.
//! let pretty = Bytes::from_static(b"{\n  \"event\": \"render.completed\",\n  \"data\": { \"_id\": \"render-id\" }\n}");
//! let signature = layer.scheme().signature(&request.into_parts().0)?;
//! assert_eq!(
//!     layer.scheme().verify(&signature, &pretty)?,
//!     Signed::Reserialized(Bytes::from_static(compact.as_bytes())),
//! );
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```

mod event;

pub use self::event::*;

use crate::{
    provider::{PresetEvent, raw::Preset},
    scheme::{Encoding, Hmac, HmacBuilder, Part},
};

/// The header VideoAIditor sends its signature in.
pub const SIGNATURE_HEADER: &str = "X-Signature";

/// A builder for the VideoAIditor scheme: the header, lower-case hex, and the body or else its
/// `JSON.stringify` form up to [`Part::DEFAULT_JSON_STRINGIFY_MAX`]; add secrets and
/// [`build`](HmacBuilder::build) it.
pub fn scheme() -> HmacBuilder {
    Hmac::sha256(SIGNATURE_HEADER)
        .name("videoaiditor")
        .encoding(Encoding::Hex)
        .signs([Part::body_or_json_stringify()])
}

impl PresetEvent for Event {
    fn decoder(_: &HmacBuilder) -> impl crate::decode::Decode<Self> {
        Preset::new()
    }
}

super::preset!(provider: "VideoAIditor", event: Event, signs: body);
