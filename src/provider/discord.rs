//! Discord interactions: `X-Signature-Ed25519: <128 hex digits>`, an Ed25519 signature of
//! `"{timestamp}{body}"` (no separator), with the timestamp in `X-Signature-Timestamp`.
//!
//! The receiver holds the application's "Public Key" (64 hex digits in the developer portal:
//! [`PublicKey::ed25519_hex`](crate::scheme::PublicKey::ed25519_hex)). A signed timestamp more
//! than 5 minutes from the receiver's clock, either way, is refused after the signature verified.
//! The event type is the interaction's `type` (`1` is Discord's PING), the delivery id its `id`.
//!
//! Discord saves an interactions endpoint only once it answers a signed PING with
//! `{"type":1}`, and checks that a wrongly signed request is refused: put [`PongLayer`] under
//! the verifying layer and both hold.
//!
//! # Example
//!
//! ```
//! use std::time::{SystemTime, UNIX_EPOCH};
//! use axum::{Router, body::Body, routing::post};
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_webhook::{provider::discord, scheme::SigningKey};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = SigningKey::ed25519([7; 32]); // Discord's own, in production
//! let app = Router::new().route(
//!     "/interactions",
//!     post(|| async { "handled" }).route_layer(
//!         ServiceBuilder::new()
//!             .layer(discord::layer([key.public_key()])?)
//!             .layer(discord::PongLayer),
//!     ),
//! );
//! let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
//! let mut ping = discord::signed_request(&key, r#"{"id":"1","type":1}"#, now)?.map(Body::new);
//! *ping.uri_mut() = "/interactions".parse()?;
//! let response = app.oneshot(ping).await?;
//! let body = axum::body::to_bytes(response.into_body(), 1024).await?;
//! assert_eq!(&body[..], br#"{"type":1}"#);
//! # Ok(())
//! # }
//! ```

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, header::CONTENT_TYPE};
use pin_project::pin_project;
use tower::{Layer, Service};

use super::generic::Event;
use crate::{
    Verified,
    scheme::{Encoding, Field, Hmac, HmacBuilder, Part, TimestampSource},
};

/// The header Discord sends its signature in.
pub const SIGNATURE_HEADER: &str = "X-Signature-Ed25519";
/// The header holding the signed timestamp (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "X-Signature-Timestamp";
/// What Discord's PING interaction answer is: `{"type":1}` (a PONG).
pub const PONG: &str = r#"{"type":1}"#;

/// A builder for the Discord scheme (tolerance 5 minutes, system clock); add public keys and
/// build it, or pass it to [`generic::layer`](super::generic::layer).
pub fn scheme() -> HmacBuilder {
    Hmac::ed25519(SIGNATURE_HEADER)
        .name("discord")
        .encoding(Encoding::Hex)
        .timestamp(TimestampSource::Header(
            TIMESTAMP_HEADER.parse().expect("a valid header name"),
        ))
        .signs([Part::Timestamp, Part::Body])
        .event_type([Field::json("/type")])
        .delivery_id([Field::json("/id")])
}

super::preset!(provider: "Discord", event: Event, public_keys, signs: timestamp);

/// Answers verified PING interactions (`"type": 1`) with [`PONG`] itself, so that Discord
/// saves the endpoint; hands every other request to the inner service. Put it under the
/// verifying layer ([`layer`]): it reads the `Verified<generic::Event>` that layer inserts, and
/// passes on a request without one untouched.
#[derive(Debug, Clone, Copy, Default)]
pub struct PongLayer;

impl<S> Layer<S> for PongLayer {
    type Service = Pong<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Pong { inner }
    }
}

/// The service of [`PongLayer`].
#[derive(Debug, Clone)]
pub struct Pong<S> {
    inner: S,
}

impl<S, B, ResBody> Service<Request<B>> for Pong<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = PongFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let ping = request
            .extensions()
            .get::<Verified<Event>>()
            .is_some_and(|verified| verified.event_type() == "1");
        if !ping {
            return PongFuture::Inner(self.inner.call(request));
        }
        let mut response = Response::new(ResBody::from(Bytes::from_static(PONG.as_bytes())));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        PongFuture::Pong(Some(response))
    }
}

/// The response future of [`Pong`]: the PONG, or the inner service's answer.
#[pin_project(project = PongProj)]
pub enum PongFuture<F, ResBody> {
    /// The answer to a PING.
    Pong(Option<Response<ResBody>>),
    /// Any other request.
    Inner(#[pin] F),
}

impl<F, ResBody, E> Future for PongFuture<F, ResBody>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            PongProj::Pong(response) => Poll::Ready(Ok(response
                .take()
                .expect("PongFuture polled after completion"))),
            PongProj::Inner(future) => future.poll(cx),
        }
    }
}

impl<F, ResBody> fmt::Debug for PongFuture<F, ResBody> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pong(_) => "PongFuture::Pong",
            Self::Inner(_) => "PongFuture::Inner",
        })
    }
}
