//! The request extension the layer gives the handler: the verified event and its signed bytes.

use std::ops::Deref;

use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::DecodeError;

/// A verified webhook, inserted by [`VerifyWebhook`](crate::VerifyWebhook) as a request
/// extension before the inner service runs.
///
/// `E` is the event type the layer decodes into (`()` when the layer only verifies). The signed
/// bytes come along: they are exactly what the signature covered, which is also the request body
/// the inner service receives. `Verified<E>` dereferences to the event.
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
#[derive(Debug, Clone)]
pub struct Verified<E = ()> {
    event: E,
    body: Bytes,
    reserialized: bool,
}

impl<E> Verified<E> {
    pub(crate) fn new(event: E, body: Bytes, reserialized: bool) -> Self {
        Self {
            event,
            body,
            reserialized,
        }
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

    /// The event and the signed bytes.
    pub fn into_parts(self) -> (E, Bytes) {
        (self.event, self.body)
    }
}

impl<E> Deref for Verified<E> {
    type Target = E;

    fn deref(&self) -> &E {
        &self.event
    }
}

/// Turns the signed bytes into an event. Runs only after the signature has been verified.
pub type DecodeFn<E> = fn(&Bytes) -> Result<E, DecodeError>;

pub(crate) fn decode_nothing(_: &Bytes) -> Result<(), DecodeError> {
    Ok(())
}

pub(crate) fn decode_json<T: DeserializeOwned>(body: &Bytes) -> Result<T, DecodeError> {
    serde_json::from_slice(body).map_err(DecodeError::new)
}
