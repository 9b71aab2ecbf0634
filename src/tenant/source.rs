//! Where a request names its tenant: [`TenantSource`], read from the request head.

use std::borrow::Cow;

use http::{HeaderName, request::Parts};

/// The longest tenant id read from a request, in bytes. A longer one is an unknown tenant,
/// refused without a lookup.
pub const MAX_TENANT_ID_LEN: usize = 256;

/// Where a request names its tenant; see [`Tenants::from_path_segment`](super::Tenants) and
/// the other `from_*` methods.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TenantSource {
    /// The last segment of the request's path (`/webhooks/videonest/{tenant}`), percent-decoded.
    LastPathSegment,
    /// The segment at this index of the request's path, counted from 0 after the leading `/`
    /// (`/webhooks/{tenant}/videonest` is index 1), percent-decoded.
    PathSegment(usize),
    /// A request header (one value, which must be visible ASCII).
    Header(HeaderName),
    /// A query parameter (one occurrence), form-decoded (`+` is a space).
    Query(Box<str>),
    /// A path parameter of the axum route (`/webhooks/{tenant}`: `"tenant"`), as axum decoded
    /// it. Requires the layer to run inside the route (`route_layer`, or `Router::layer`).
    #[cfg(feature = "axum")]
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    PathParam(Box<str>),
}

impl TenantSource {
    /// The tenant id the request names, when it names exactly one that can be an id: not empty,
    /// at most [`MAX_TENANT_ID_LEN`] bytes, UTF-8 without control characters. Linear in the
    /// path, query or header read.
    pub(crate) fn read<'a>(&self, head: &'a mut Parts) -> Option<Cow<'a, str>> {
        let id = match self {
            Self::LastPathSegment => percent_decode(head.uri.path().rsplit('/').next()?, false)?,
            Self::PathSegment(index) => {
                let path = head.uri.path();
                let path = path.strip_prefix('/').unwrap_or(path);
                percent_decode(path.split('/').nth(*index)?, false)?
            }
            Self::Header(name) => {
                let mut values = head.headers.get_all(name).iter();
                let (Some(value), None) = (values.next(), values.next()) else {
                    return None;
                };
                Cow::Borrowed(value.to_str().ok()?.trim())
            }
            Self::Query(name) => {
                let mut found = None;
                for pair in head.uri.query()?.split('&') {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    if percent_decode(key, true).is_some_and(|key| key == **name) {
                        if found.is_some() {
                            return None;
                        }
                        found = Some(percent_decode(value, true)?);
                    }
                }
                found?
            }
            #[cfg(feature = "axum")]
            Self::PathParam(name) => Cow::Owned(path_param(head, name)?),
        };
        valid(&id).then_some(id)
    }
}

/// Whether `id` can be a tenant id.
fn valid(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_TENANT_ID_LEN && !id.chars().any(char::is_control)
}

/// `text` with its `%XX` escapes decoded (and, in a form, `+` as a space); `None` when an escape
/// is malformed or the result is not UTF-8. Gives up past [`MAX_TENANT_ID_LEN`] escapes' worth
/// of output, which cannot be an id anyway.
fn percent_decode(text: &str, form: bool) -> Option<Cow<'_, str>> {
    if !text.bytes().any(|b| b == b'%' || (form && b == b'+')) {
        return Some(Cow::Borrowed(text));
    }
    if text.len() > 3 * MAX_TENANT_ID_LEN {
        return None;
    }
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        bytes.push(match byte {
            b'%' => {
                let hex = rest.get(..2)?;
                rest = &rest[2..];
                let digit = |b: u8| char::from(b).to_digit(16);
                u8::try_from(digit(hex[0])? * 16 + digit(hex[1])?).ok()?
            }
            b'+' if form => b' ',
            other => other,
        });
    }
    String::from_utf8(bytes).ok().map(Cow::Owned)
}

/// The axum route's path parameter `name`. axum's extractor is `async` in form only: it reads
/// the parameters the router put in the extensions, and is ready at its first poll.
#[cfg(feature = "axum")]
fn path_param(head: &mut Parts, name: &str) -> Option<String> {
    use std::{
        future::Future,
        pin::pin,
        task::{Context, Poll, Waker},
    };

    use axum::extract::{FromRequestParts, RawPathParams};

    let future = pin!(RawPathParams::from_request_parts(head, &()));
    let Poll::Ready(Ok(params)) = future.poll(&mut Context::from_waker(Waker::noop())) else {
        return None;
    };
    let mut values = params.iter().filter(|(key, _)| *key == name);
    let (Some((_, value)), None) = (values.next(), values.next()) else {
        return None;
    };
    Some(value.to_owned())
}

#[cfg(test)]
mod tests {
    use http::Request;

    use super::*;

    fn read(source: &TenantSource, uri: &str, headers: &[(&str, &str)]) -> Option<String> {
        let mut request = Request::post(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let (mut head, ()) = request.body(()).unwrap().into_parts();
        source.read(&mut head).map(Cow::into_owned)
    }

    /// The source, the request's URI and headers, the tenant it names (if any).
    type Case<'a> = (
        &'a TenantSource,
        &'a str,
        &'a [(&'a str, &'a str)],
        Option<&'a str>,
    );

    fn check(cases: &[Case<'_>]) {
        for &(source, uri, headers, tenant) in cases {
            assert_eq!(
                read(source, uri, headers).as_deref(),
                tenant,
                "{source:?} {uri} {headers:?}"
            );
        }
    }

    #[test]
    fn path_segments_are_read_and_decoded() {
        let last = &TenantSource::LastPathSegment;
        let second = &TenantSource::PathSegment(1);
        let long = format!("/webhook/{}", "a".repeat(MAX_TENANT_ID_LEN + 1));
        let long_encoded = format!("/webhook/{}", "%41".repeat(MAX_TENANT_ID_LEN + 1));
        check(&[
            (last, "/webhook/acme", &[], Some("acme")),
            (last, "/webhook/ac%20me?x=1", &[], Some("ac me")),
            (last, "/webhook/a+b", &[], Some("a+b")),
            (last, "/webhook/", &[], None),
            (last, "/webhook/%zz", &[], None),
            (last, "/webhook/%ff", &[], None),   // not UTF-8
            (last, "/webhook/a%0Ab", &[], None), // a control character
            (last, "/webhook/a%", &[], None),
            (second, "/t/acme/videonest", &[], Some("acme")),
            (second, "/t", &[], None),
            (last, &long, &[], None),
            (last, &long_encoded, &[], None),
        ]);
    }

    #[test]
    fn headers_and_query_parameters_name_one_tenant() {
        let header = &TenantSource::Header(HeaderName::from_static("x-tenant"));
        let query = &TenantSource::Query("tenant".into());
        check(&[
            (header, "/", &[("x-tenant", " acme ")], Some("acme")),
            (header, "/", &[], None),
            (header, "/", &[("x-tenant", "a"), ("x-tenant", "b")], None),
            (header, "/", &[("x-tenant", "")], None),
            (query, "/?a=1&tenant=ac+me", &[], Some("ac me")),
            (query, "/?ten%61nt=x", &[], Some("x")),
            (query, "/?tenant=a&tenant=b", &[], None),
            (query, "/?other=a", &[], None),
            (query, "/", &[], None),
            (query, "/?tenant", &[], None),
        ]);
    }
}
