//! `Verified<E>` as an axum extractor.

use std::fmt;

use axum_core::{
    extract::FromRequestParts,
    response::{IntoResponse, Response},
};
use http::{StatusCode, request::Parts};

use crate::Verified;

/// Rejection of the [`Verified`] extractor when the request carries no verified webhook of the
/// requested type: the route is not wrapped in [`VerifyWebhookLayer`](crate::VerifyWebhookLayer),
/// or the handler asks for another event type than the layer decodes. Answered with 500, since it
/// is a bug in the application, not in the request.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub struct MissingVerified;

impl fmt::Display for MissingVerified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "Missing verified webhook: is `VerifyWebhookLayer` applied to this route, \
             with the same event type as the handler asks for?",
        )
    }
}

impl std::error::Error for MissingVerified {}

impl IntoResponse for MissingVerified {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}

/// Extracts the [`Verified`] event the layer inserted (`axum` feature).
///
/// ```
/// use axum::{Router, routing::post};
/// use tower_webhook::{Verified, VerifyWebhookLayer, scheme::Hmac};
///
/// async fn handler(verified: Verified<serde_json::Value>) -> &'static str {
///     println!("{}", verified["event"]);
///     "ok"
/// }
///
/// let scheme = Hmac::sha256("x-signature").secret("s3cret").build()?;
/// let layer = VerifyWebhookLayer::new(scheme).event::<serde_json::Value>();
/// let app: Router = Router::new().route("/webhook", post(handler).route_layer(layer));
/// # Ok::<_, tower_webhook::ConfigError>(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl<S, E> FromRequestParts<S> for Verified<E>
where
    S: Send + Sync,
    E: Clone + Send + Sync + 'static,
{
    type Rejection = MissingVerified;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Self>()
            .cloned()
            .ok_or(MissingVerified)
    }
}
