//! Turning verified bytes into an event: the [`Decode`] trait and the decoders the crate ships.
//!
//! A decoder runs only after the signature has been verified, on the bytes the signature covered.
//! Any `Fn(&Bytes) -> Result<E, DecodeError>` is one; implement [`Decode`] on a type of your own
//! when the decoder keeps state or reads the request head (an event type sent in a header, say).
//!
//! ```
//! use bytes::Bytes;
//! use http::request::Parts;
//! use tower_webhook::{DecodeError, VerifyWebhookLayer, decode::Decode, scheme::Hmac};
//!
//! /// The event type from a header, the body kept as bytes.
//! struct FromHeader;
//!
//! impl Decode<(String, Bytes)> for FromHeader {
//!     fn decode(&self, head: &Parts, body: &Bytes) -> Result<(String, Bytes), DecodeError> {
//!         let kind = head
//!             .headers
//!             .get("x-event-type")
//!             .and_then(|value| value.to_str().ok())
//!             .ok_or_else(|| DecodeError::new("missing `x-event-type` header"))?;
//!         Ok((kind.to_owned(), body.clone()))
//!     }
//! }
//!
//! let scheme = Hmac::sha256("x-signature").secret("s3cret").build()?;
//! let layer = VerifyWebhookLayer::new(scheme).decode_with(FromHeader);
//! # let _ = layer;
//! # Ok::<_, tower_webhook::ConfigError>(())
//! ```

use std::{fmt, marker::PhantomData, sync::Arc};

use bytes::Bytes;
use http::request::Parts;
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::{DecodeError, WebhookEvent, provider::RawEvent};

/// Decodes the verified body (and, if it needs to, the request head) into an event.
pub trait Decode<E>: Send + Sync + 'static {
    /// The event for this verified request.
    ///
    /// # Errors
    ///
    /// When the body is not an event of this kind; the request is refused with 400.
    fn decode(&self, head: &Parts, body: &Bytes) -> Result<E, DecodeError>;
}

impl<E, F> Decode<E> for F
where
    F: Fn(&Bytes) -> Result<E, DecodeError> + Send + Sync + 'static,
{
    fn decode(&self, _head: &Parts, body: &Bytes) -> Result<E, DecodeError> {
        self(body)
    }
}

/// Decodes nothing: the handler gets `Verified<()>` and the signed bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Nothing;

impl Decode<()> for Nothing {
    fn decode(&self, _head: &Parts, _body: &Bytes) -> Result<(), DecodeError> {
        Ok(())
    }
}

/// Parses the body as JSON into `T` with `serde_json`; a body that does not parse is refused
/// with 400. What [`VerifyWebhookLayer::event`](crate::VerifyWebhookLayer::event) uses.
pub struct Json<T>(PhantomData<fn() -> T>);

/// `new`, `Default` and `Debug` for a decoder that is only its event type.
macro_rules! typed_decoder {
    ($decoder:ident) => {
        impl<T> $decoder<T> {
            /// The decoder.
            pub fn new() -> Self {
                Self(PhantomData)
            }
        }

        impl<T> Default for $decoder<T> {
            fn default() -> Self {
                Self::new()
            }
        }

        impl<T> fmt::Debug for $decoder<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    concat!(stringify!($decoder), "<{}>"),
                    std::any::type_name::<T>()
                )
            }
        }
    };
}

typed_decoder!(Json);

impl<T: DeserializeOwned + 'static> Decode<T> for Json<T> {
    fn decode(&self, _head: &Parts, body: &Bytes) -> Result<T, DecodeError> {
        serde_json::from_slice(body).map_err(DecodeError::new)
    }
}

/// Parses the body as JSON into a preset's event type and never refuses a body that is JSON:
/// what does not fit the typed form becomes the event's raw variant (`E::from(RawEvent)`).
/// Only a body that is not JSON at all (or not UTF-8, as JSON must be) is refused with 400. What
/// the presets' layers use.
pub struct Lossless<E>(PhantomData<fn() -> E>);

typed_decoder!(Lossless);

impl<E> Decode<E> for Lossless<E>
where
    E: DeserializeOwned + From<RawEvent> + 'static,
{
    fn decode(&self, _head: &Parts, body: &Bytes) -> Result<E, DecodeError> {
        // JSON is UTF-8 (RFC 8259); serde_json checks only the strings it decodes, so a stray
        // byte would make the outcome depend on where it sits.
        if let Err(err) = std::str::from_utf8(body) {
            return Err(DecodeError::new(format!("the body is not UTF-8: {err}")));
        }
        match serde_json::from_slice(body) {
            Ok(event) => Ok(event),
            // JSON, but not an object the event type reads: delivered raw, never lost.
            Err(err) if serde_json::from_slice::<IgnoredAny>(body).is_ok() => {
                Ok(E::from(RawEvent::not_an_event(err)))
            }
            Err(err) => Err(DecodeError::new(err)),
        }
    }
}

/// Refuses, with 400, events that were decoded without their typed form
/// ([`WebhookEvent::shape_error`]); see [`VerifyWebhookLayer::strict`](crate::VerifyWebhookLayer::strict).
pub(crate) struct Strict<E>(pub(crate) Arc<dyn Decode<E>>);

impl<E: WebhookEvent + 'static> Decode<E> for Strict<E> {
    fn decode(&self, head: &Parts, body: &Bytes) -> Result<E, DecodeError> {
        let event = self.0.decode(head, body)?;
        match event.shape_error() {
            None => Ok(event),
            Some(reason) => Err(DecodeError::new(reason.to_owned())),
        }
    }
}
