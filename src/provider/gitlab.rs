//! GitLab: the endpoint's secret token, sent verbatim in `X-Gitlab-Token`, compared in constant
//! time ([`Token`]).
//!
//! **Nothing is signed**: not the body, not the event type (`X-Gitlab-Event`, such as
//! `Push Hook`), not the delivery id (`X-Gitlab-Event-UUID`). The token proves the sender knows
//! it; whoever sees one request (a proxy's log, a TLS terminator) can send any other. So the
//! deduplication key is the SHA-256 of the body, not the unsigned id, and there is no replay
//! window. GitLab's newer signing token sends Standard Webhooks headers: verify those with
//! [`standard_webhooks`](super::standard_webhooks) where the project can turn it on. Several
//! tokens rotate. A repeated `X-Gitlab-Token` is refused rather than guessed at.
//!
//! # Example
//!
//! ```
//! use tower_webhook::{provider::gitlab, scheme::Scheme};
//!
//! let request = gitlab::signed_request("gl-secret-token", r#"{"object_kind":"push"}"#)?;
//! let layer = gitlab::layer(["gl-secret-token"])?;
//! let (head, _) = request.into_parts();
//! assert!(layer.scheme().signature(&head).is_ok());
//! # Ok::<_, tower_webhook::ConfigError>(())
//! ```

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, header::CONTENT_TYPE};
use http_body_util::Full;

use super::generic::{Decoder, Event};
use crate::{ConfigError, Secret, VerifyWebhookLayer, scheme::Token};

/// The header GitLab sends the secret token in.
pub const TOKEN_HEADER: &str = "X-Gitlab-Token";
/// The header naming the event type (`Push Hook`, `Merge Request Hook`, …).
pub const EVENT_HEADER: &str = "X-Gitlab-Event";
/// The header holding the event's UUID.
pub const DELIVERY_HEADER: &str = "X-Gitlab-Event-UUID";

/// The GitLab scheme accepting any of `tokens`.
///
/// # Errors
///
/// [`ConfigError::NoSecret`] or [`ConfigError::EmptySecret`].
pub fn scheme<I>(tokens: I) -> Result<Token, ConfigError>
where
    I: IntoIterator,
    I::Item: Into<Secret>,
{
    Token::new(TOKEN_HEADER, tokens)?
        .name("gitlab")
        .event_type_header(EVENT_HEADER)?
        .delivery_id_header(DELIVERY_HEADER)
}

/// A layer that accepts GitLab webhooks carrying any of `tokens` (rotation: any one is
/// enough) and decodes them into [`Event`].
///
/// # Errors
///
/// As [`scheme`].
pub fn layer<I>(tokens: I) -> Result<VerifyWebhookLayer<Token, Event>, ConfigError>
where
    I: IntoIterator,
    I::Item: Into<Secret>,
{
    let scheme = scheme(tokens)?;
    let decoder = Decoder::from_metadata(scheme.metadata().clone());
    Ok(VerifyWebhookLayer::new(scheme)
        .decode_with(decoder)
        .trace_event_types())
}

/// A layer for many tenants, each with its own tokens, as `tenants` finds them (see
/// [`tenant`](crate::tenant)).
///
/// # Errors
///
/// None in practice; the `Result` matches [`layer`]'s.
#[cfg(feature = "tenants")]
#[cfg_attr(docsrs, doc(cfg(feature = "tenants")))]
pub fn tenant_layer(
    tenants: &crate::tenant::Tenants,
) -> Result<VerifyWebhookLayer<crate::tenant::Tenanted<Token>, Event>, ConfigError> {
    // The template's token only checks requests for unknown tenants, whose result is thrown
    // away.
    let template = scheme(["unknown tenant"])?;
    let decoder = Decoder::from_metadata(template.metadata().clone());
    Ok(
        VerifyWebhookLayer::new(crate::tenant::Tenanted::new(template, tenants))
            .decode_with(decoder)
            .trace_event_types(),
    )
}

/// The headers GitLab puts on a request with `token`, for tests: the token.
///
/// # Errors
///
/// [`ConfigError::InvalidScheme`] when `token` cannot be a header value.
pub fn headers(token: &str) -> Result<HeaderMap, ConfigError> {
    let value = HeaderValue::from_str(token).map_err(|_| ConfigError::InvalidScheme {
        reason: "a GitLab token must be a valid header value",
    })?;
    let mut headers = HeaderMap::new();
    headers.insert(TOKEN_HEADER, value);
    Ok(headers)
}

/// A request GitLab would send with `token`, for tests: `POST /` with `body`,
/// `Content-Type: application/json` and the token.
///
/// # Errors
///
/// As [`headers`].
pub fn signed_request(
    token: &str,
    body: impl Into<Bytes>,
) -> Result<Request<Full<Bytes>>, ConfigError> {
    let mut request = Request::new(Full::new(body.into()));
    *request.method_mut() = http::Method::POST;
    request
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    request.headers_mut().extend(headers(token)?);
    Ok(request)
}
