//! VideoNest: `X-VideoNest-Signature`, lower-case hex HMAC-SHA256 of the raw request body.
//!
//! From VideoNest's webhook documentation: "VideoNest signs every webhook request using
//! HMAC-SHA256. The signature is sent in the X-VideoNest-Signature header as a hex digest", computed
//! over "the raw request body using your signing secret". Re-serialised JSON is never accepted:
//! the bytes must be the ones VideoNest sent.
//!
//! VideoNest retries a delivery that gets no 2xx within 10 seconds (after 1, 5 and 30 minutes) and
//! asks receivers to store the event `id` and skip repeats.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_webhook::{Verified, provider::videonest};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let layer = videonest::layer(["vn_signing_secret"])?;
//! let body = Bytes::from_static(br#"{"event":"video.processed","timestamp":"2026-03-30T10:15:00Z","data":{"id":"vid_abc123","title":"My Video Title","status":"ready","duration":142,"channel_id":"ch_abc123"}}"#);
//! let signature = videonest::headers("vn_signing_secret", &body)?[videonest::SIGNATURE_HEADER].clone();
//!
//! let service = ServiceBuilder::new()
//!     .layer(layer)
//!     .service_fn(|request: Request<Full<Bytes>>| async move {
//!         let verified = request.extensions().get::<Verified<videonest::Event>>().unwrap();
//!         let id = match verified.event() {
//!             videonest::Event::VideoProcessed(payload) => payload.data.id.clone(),
//!             other => other.id().map(str::to_owned),
//!         };
//!         Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(id.unwrap_or_default()))))
//!     });
//!
//! let request = Request::post("/webhooks/videonest")
//!     .header(videonest::SIGNATURE_HEADER, signature)
//!     .body(Full::new(body))?;
//! let response = service.oneshot(request).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! # Ok(())
//! # }
//! ```

mod event;

pub use self::event::*;

use std::time::Duration;

use crate::{
    ConfigError, Secret, VerifyWebhookLayer,
    provider::{PresetEvent, raw::Preset},
    scheme::{Encoding, Field, Hmac, HmacBuilder, TimestampSource, TimestampUnit},
};

/// The header VideoNest sends its signature in.
pub const SIGNATURE_HEADER: &str = "X-VideoNest-Signature";

/// A builder for the VideoNest scheme: the header, lower-case hex of the raw body; add secrets
/// and [`build`](HmacBuilder::build) it.
pub fn scheme() -> HmacBuilder {
    Hmac::sha256(SIGNATURE_HEADER)
        .name("videonest")
        .encoding(Encoding::Hex)
}

impl PresetEvent for Event {
    fn decoder(_: &HmacBuilder) -> impl crate::decode::Decode<Self> {
        Preset::new()
    }
}

super::preset!(provider: "VideoNest", event: Event, signs: body);

/// How long after an event VideoNest may still deliver it: retries 1, 5 and 30 minutes after
/// the first attempt, 36 minutes in all (plus each attempt's 10-second deadline). A replay
/// window on the body's `timestamp` must be longer than this, or retries are refused.
pub const RETRY_HORIZON: Duration = Duration::from_secs(36 * 60);

/// The VideoNest scheme with an opt-in replay window on the `timestamp` field of the signed
/// body (RFC 3339), the only timestamp VideoNest sends; add secrets and build it.
///
/// VideoNest signs no delivery time: `timestamp` is when the event happened, so the window
/// must exceed [`RETRY_HORIZON`] (36 minutes) with room for VideoNest's own delays, and it
/// bounds replays only to that long. Pair it with deduplication on the event `id`
/// ([`DedupeLayer`](crate::dedupe::DedupeLayer)) to refuse replays inside the window. A signed
/// body without a valid `timestamp` (such as a test ping) is refused with 401. Event type and
/// delivery id are the body's `event` and `data.id`.
///
/// ```
/// use std::time::Duration;
/// use tower_webhook::provider::videonest;
///
/// let layer = videonest::layer_with_window(["vn_signing_secret"], Duration::from_secs(3600))?;
/// # let _ = layer;
/// // Shorter than the retry horizon: refused when configured.
/// assert!(videonest::layer_with_window(["vn_signing_secret"], Duration::from_secs(600)).is_err());
/// # Ok::<_, tower_webhook::ConfigError>(())
/// ```
pub fn windowed_scheme(tolerance: Duration) -> HmacBuilder {
    scheme()
        .timestamp(TimestampSource::BodyField {
            field: "timestamp".into(),
            unit: TimestampUnit::Rfc3339,
        })
        .tolerance(tolerance)
        .event_type([Field::json("/event")])
        .delivery_id([Field::json("/data/id")])
}

/// A layer like [`layer`] with a replay window of `tolerance` on the body's `timestamp`; see
/// [`windowed_scheme`].
///
/// # Errors
///
/// [`ConfigError::InvalidScheme`] when `tolerance` does not exceed [`RETRY_HORIZON`];
/// [`ConfigError::NoSecret`] or [`ConfigError::EmptySecret`].
pub fn layer_with_window<I>(
    secrets: I,
    tolerance: Duration,
) -> Result<VerifyWebhookLayer<Hmac, Event>, ConfigError>
where
    I: IntoIterator,
    I::Item: Into<Secret>,
{
    check_window(tolerance)?;
    super::layer(windowed_scheme(tolerance).secrets(secrets))
}

/// A layer like [`tenant_layer`] with a replay window of `tolerance` on the body's `timestamp`;
/// see [`windowed_scheme`].
///
/// # Errors
///
/// [`ConfigError::InvalidScheme`] when `tolerance` does not exceed [`RETRY_HORIZON`].
#[cfg(feature = "tenants")]
#[cfg_attr(docsrs, doc(cfg(feature = "tenants")))]
pub fn tenant_layer_with_window(
    tenants: &crate::tenant::Tenants,
    tolerance: Duration,
) -> Result<VerifyWebhookLayer<crate::tenant::Tenanted<Hmac>, Event>, ConfigError> {
    check_window(tolerance)?;
    super::tenant_layer(windowed_scheme(tolerance), tenants)
}

/// Refuses a window that does not exceed [`RETRY_HORIZON`].
fn check_window(tolerance: Duration) -> Result<(), ConfigError> {
    if tolerance <= RETRY_HORIZON {
        return Err(ConfigError::InvalidScheme {
            reason: "a VideoNest replay window must exceed its 36-minute retry horizon",
        });
    }
    Ok(())
}
