//! Twilio: `X-Twilio-Signature`, the base64 HMAC-SHA1 (keyed with the account's auth token) of
//! the URL Twilio called followed by the POST parameters sorted by name, or, for a JSON body, of
//! the URL carrying `bodySHA256=<hex SHA-256 of the body>` ([`UrlSigned`]).
//!
//! The URL must be the one Twilio called: configure it with [`layer_at`] behind a proxy that
//! changes the scheme, host or path ([`UrlSigned::public_url`] says the rule otherwise). Several
//! auth tokens rotate. There is no timestamp: deduplicate on the SID. The event type is the
//! status field of the form (`MessageStatus`, `SmsStatus`, `CallStatus`), the delivery id its
//! SID (`MessageSid`, `SmsSid`, `CallSid`). Neither counts as signed: Twilio joins the
//! parameters it signs without separators, so a captured request can be re-split into other
//! parameters (another SID, a status gone) under the same signature. Deduplication therefore
//! keys on the SHA-256 of the signed text (path, query and sorted parameters), which every such
//! split shares; handlers should treat each parameter as the sender's word, not Twilio's.
//!
//! Twilio's libraries accept a body that the signature does not cover (neither form-encoded nor
//! hashed in the URL) without checking it; this preset refuses it.
//!
//! # Example
//!
//! ```
//! use tower_webhook::{provider::twilio, scheme::Scheme};
//!
//! let request = twilio::signed_form_request(
//!     "auth-token",
//!     "https://hooks.example.com/twilio/sms",
//!     "MessageSid=SM1&SmsStatus=received&Body=Hi",
//! )?;
//! let layer = twilio::layer_at(["auth-token"], "https://hooks.example.com")?;
//! let (head, _) = request.into_parts();
//! assert!(layer.scheme().signature(&head).is_ok());
//! # Ok::<_, tower_webhook::ConfigError>(())
//! ```

use bytes::Bytes;
use http::{HeaderValue, Request, header::CONTENT_TYPE};
use http_body_util::Full;
use sha2::{Digest as _, Sha256};

use http::request::Parts;

use super::generic::{Decoder, Event};
use crate::{
    ConfigError, DecodeError, Secret, VerifyWebhookLayer,
    decode::Decode,
    scheme::{Field, Scheme, UrlSigned, hex, hmac_metadata::Metadata, signed_text_sha256},
};

/// The header Twilio sends its signature in.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";

/// The Twilio scheme keyed with any of `tokens` (auth tokens), the URL taken from the request.
///
/// # Errors
///
/// [`ConfigError::NoSecret`] or [`ConfigError::EmptySecret`].
pub fn scheme<I>(tokens: I) -> Result<UrlSigned, ConfigError>
where
    I: IntoIterator,
    I::Item: Into<Secret>,
{
    Ok(UrlSigned::new(SIGNATURE_HEADER, tokens)?
        .name("twilio")
        .metadata_fields(
            vec![
                Field::form("MessageStatus"),
                Field::form("SmsStatus"),
                Field::form("CallStatus"),
            ],
            vec![
                Field::form("MessageSid"),
                Field::form("SmsSid"),
                Field::form("CallSid"),
            ],
        ))
}

/// [`generic::Event`](Event)s whose deduplication key is the digest of the signed text: Twilio
/// signs its parameters without separators, so neither the SID nor the body identifies a
/// signed request (a captured one can be split into other parameters, or moved between the
/// query and the body, under the same signature), but the text it signs does.
struct SignedText(Decoder);

impl Decode<Event> for SignedText {
    fn decode(&self, head: &Parts, body: &Bytes) -> Result<Event, DecodeError> {
        let mut event = self.0.decode(head, body)?;
        event.event_type_signed = false;
        event.body_sha256 = Some(signed_text_sha256(head, body));
        Ok(event)
    }
}

fn layer_of<Sc: Scheme>(scheme: Sc, metadata: Metadata) -> VerifyWebhookLayer<Sc, Event> {
    VerifyWebhookLayer::new(scheme)
        .decode_with(SignedText(Decoder::from_metadata(metadata)))
        .trace_event_types()
}

/// A layer that verifies Twilio webhooks signed with any of `tokens`, the URL taken from the
/// request (`https://` + `Host` + path and query; see [`UrlSigned`]).
///
/// # Errors
///
/// As [`scheme`].
pub fn layer<I>(tokens: I) -> Result<VerifyWebhookLayer<UrlSigned, Event>, ConfigError>
where
    I: IntoIterator,
    I::Item: Into<Secret>,
{
    let scheme = scheme(tokens)?;
    let metadata = scheme.metadata().clone();
    Ok(layer_of(scheme, metadata))
}

/// A layer like [`layer`] for a service Twilio reaches at `public_url` (the scheme, host and
/// any path prefix: the request's own path and query follow it).
///
/// # Errors
///
/// As [`scheme`], and [`ConfigError::InvalidScheme`] for a URL that is not `http(s)://host…`.
pub fn layer_at<I>(
    tokens: I,
    public_url: &str,
) -> Result<VerifyWebhookLayer<UrlSigned, Event>, ConfigError>
where
    I: IntoIterator,
    I::Item: Into<Secret>,
{
    let scheme = scheme(tokens)?.public_url(public_url)?;
    let metadata = scheme.metadata().clone();
    Ok(layer_of(scheme, metadata))
}

/// A layer for many tenants (sub-accounts), each with its own auth tokens, as `tenants` finds
/// them (see [`tenant`](crate::tenant)); the URL as [`layer`] takes it.
///
/// # Errors
///
/// None in practice; the `Result` matches [`layer`]'s.
#[cfg(feature = "tenants")]
#[cfg_attr(docsrs, doc(cfg(feature = "tenants")))]
pub fn tenant_layer(
    tenants: &crate::tenant::Tenants,
) -> Result<VerifyWebhookLayer<crate::tenant::Tenanted<UrlSigned>, Event>, ConfigError> {
    tenant_layer_of(tenants, scheme(["unknown tenant"])?)
}

/// A layer like [`tenant_layer`] for a service Twilio reaches at `public_url`; see
/// [`layer_at`].
///
/// # Errors
///
/// [`ConfigError::InvalidScheme`] for a URL that is not `http(s)://host…`.
#[cfg(feature = "tenants")]
#[cfg_attr(docsrs, doc(cfg(feature = "tenants")))]
pub fn tenant_layer_at(
    tenants: &crate::tenant::Tenants,
    public_url: &str,
) -> Result<VerifyWebhookLayer<crate::tenant::Tenanted<UrlSigned>, Event>, ConfigError> {
    tenant_layer_of(tenants, scheme(["unknown tenant"])?.public_url(public_url)?)
}

/// The tenant layer of `template`, whose token only checks requests for unknown tenants (the
/// result thrown away).
#[cfg(feature = "tenants")]
fn tenant_layer_of(
    tenants: &crate::tenant::Tenants,
    template: UrlSigned,
) -> Result<VerifyWebhookLayer<crate::tenant::Tenanted<UrlSigned>, Event>, ConfigError> {
    let metadata = template.metadata().clone();
    Ok(layer_of(
        crate::tenant::Tenanted::new(template, tenants),
        metadata,
    ))
}

/// The request Twilio sends to `url` with the form `body`, signed with `token`, for tests:
/// `POST` to `url`'s path and query with its host as `Host`.
///
/// # Errors
///
/// [`ConfigError::InvalidScheme`] when `url` is not an absolute `http(s)` URL;
/// [`ConfigError::EmptySecret`] for an empty token.
pub fn signed_form_request(
    token: &str,
    url: &str,
    body: &str,
) -> Result<Request<Full<Bytes>>, ConfigError> {
    request(token, url, Bytes::copy_from_slice(body.as_bytes()), true)
}

/// The request Twilio sends to `url` with the JSON `body`, signed with `token`, for tests: the
/// URL gains `bodySHA256`, as Twilio adds it.
///
/// # Errors
///
/// As [`signed_form_request`].
pub fn signed_json_request(
    token: &str,
    url: &str,
    body: impl Into<Bytes>,
) -> Result<Request<Full<Bytes>>, ConfigError> {
    let body = body.into();
    let mut digest = String::new();
    hex::encode_lower(&Sha256::digest(&body), &mut digest);
    let separator = if url.contains('?') { '&' } else { '?' };
    request(
        token,
        &format!("{url}{separator}bodySHA256={digest}"),
        body,
        false,
    )
}

fn request(
    token: &str,
    url: &str,
    body: Bytes,
    form: bool,
) -> Result<Request<Full<Bytes>>, ConfigError> {
    let invalid = ConfigError::InvalidScheme {
        reason: "a Twilio URL is absolute: http(s)://host/path",
    };
    let uri: http::Uri = url.parse().map_err(|_| invalid.clone())?;
    let host = uri.authority().ok_or(invalid.clone())?.as_str().to_owned();
    let signature = scheme([token])?.sign(url, &body, form);
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = uri
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str)
        .parse()
        .map_err(|_| invalid)?;
    let headers = request.headers_mut();
    headers.insert(
        http::header::HOST,
        HeaderValue::from_str(&host).map_err(|_| ConfigError::InvalidScheme {
            reason: "a Twilio URL's host must be a valid header value",
        })?,
    );
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(if form {
            "application/x-www-form-urlencoded"
        } else {
            "application/json"
        }),
    );
    headers.insert(
        SIGNATURE_HEADER,
        HeaderValue::from_str(&signature).expect("base64 is a valid header value"),
    );
    Ok(request)
}
