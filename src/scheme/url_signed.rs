//! [`UrlSigned`]: an HMAC-SHA1 of the URL the provider called and its form parameters, or of the
//! URL with a hash of the body in its query (Twilio's `X-Twilio-Signature`).

use std::fmt;

use base64::Engine as _;
use bytes::Bytes;
use hmac::{KeyInit, Mac};
use http::{
    HeaderName, HeaderValue,
    header::{CONTENT_TYPE, HOST},
    request::Parts,
};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use super::{
    Delivery, Field, Scheme, SignatureError, Signed, header_name,
    headers::{self, Found},
    hex,
    hmac_metadata::Metadata,
};
use crate::{ConfigError, Secret, secret::Keys};

/// The query parameter carrying the SHA-256 of a JSON body.
const BODY_SHA256: &str = "bodySHA256";

/// A scheme signing the request's URL: base64 HMAC-SHA1 (keyed with the account's auth token) of
/// the full URL the provider called, then, for a form body, every parameter sorted by name (and
/// a repeated name's values sorted) as `name` + `value`; for another body, the URL carries
/// `bodySHA256=<hex SHA-256 of the body>` and the signature covers the URL alone, the body its
/// hash. Twilio signs this way.
///
/// **The URL.** The signature covers the URL exactly as the provider called it. Configure it with
/// [`public_url`](Self::public_url) (the scheme, host and any path prefix a proxy strips: the
/// request's own path and query follow it). Without it, the URL is `https://` + the `Host`
/// header (or the request URI's authority) + the path and query the layer sees: right for a
/// service that terminates TLS itself or behind a proxy that keeps the host and path. A `Host`
/// that is not a host and an optional port of digits (a registered name without percent escapes,
/// an IPv4 address or a bracketed IPv6 literal) is refused as malformed. Either way
/// the URL is tried as written and with the default port added or removed (`:443`, `:80`), as
/// Twilio's own libraries do.
///
/// A body that is neither form-encoded nor covered by `bodySHA256` is refused: the signature
/// would not cover it (Twilio's libraries accept it unchecked). There is no timestamp, so no
/// replay window: deduplicate on the message or call SID.
///
/// ```
/// use tower_webhook::{provider::twilio, scheme::Scheme};
///
/// // Twilio's documented example.
/// let request = twilio::signed_form_request(
///     "12345",
///     "https://mycompany.com/myapp.php?foo=1&bar=2",
///     "CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212",
/// )?;
/// assert_eq!(request.headers()[twilio::SIGNATURE_HEADER], "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
/// # Ok::<_, tower_webhook::ConfigError>(())
/// ```
/// Its `Debug` output counts the keys and never shows them.
#[derive(Clone, Debug)]
pub struct UrlSigned {
    name: Box<str>,
    header: HeaderName,
    /// What [`signature`](Scheme::signature) reads, found in one pass: the signature header,
    /// `Host`, `Content-Type`.
    reads: [HeaderName; 3],
    keys: Keys<hmac::Hmac<Sha1>>,
    public_url: Option<Box<str>>,
    metadata: Metadata,
}

/// What [`UrlSigned`] reads from a request head: the MAC, the URL (in its spellings), and the
/// body's hash when the URL carries one.
#[derive(Clone)]
pub struct UrlSignature {
    tag: [u8; 20],
    url: String,
    body_sha256: Option<[u8; 32]>,
    form: bool,
}

impl fmt::Debug for UrlSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UrlSignature")
            .field("url", &self.url.split('?').next())
            .field("form", &self.form)
            .finish_non_exhaustive()
    }
}

impl UrlSigned {
    /// A scheme reading the signature from `header`, keyed with any of `tokens`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidHeaderName`], [`ConfigError::NoSecret`] or
    /// [`ConfigError::EmptySecret`].
    pub fn new<I>(header: &str, tokens: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator,
        I::Item: Into<Secret>,
    {
        let header = header_name(header)?;
        let tokens: Vec<Secret> = tokens.into_iter().map(Into::into).collect();
        Ok(Self {
            name: "url-signed".into(),
            keys: keys(&tokens)?,
            public_url: None,
            metadata: Metadata {
                signature_header: Some(header.clone()),
                ..Metadata::default()
            },
            reads: [header.clone(), HOST, CONTENT_TYPE],
            header,
        })
    }

    /// The name recorded in [`Verified::provider`](crate::Verified::provider).
    #[must_use]
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.into();
        self
    }

    /// The URL the provider calls, up to where the request's own path begins: `scheme://host`
    /// with any port, and the path prefix a proxy strips (`https://example.com/api` when the
    /// service sees `/twilio/sms` for `https://example.com/api/twilio/sms`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidScheme`] when it is not an `http://` or `https://` URL without a
    /// query or fragment.
    pub fn public_url(mut self, url: &str) -> Result<Self, ConfigError> {
        let invalid = ConfigError::InvalidScheme {
            reason: "a public URL is http:// or https://, a host, maybe a path; no query",
        };
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or(invalid.clone())?;
        if rest.is_empty() || rest.contains(['?', '#']) || !url.is_ascii() {
            return Err(invalid);
        }
        self.public_url = Some(url.trim_end_matches('/').into());
        Ok(self)
    }

    /// Where the event type and delivery id are read (form fields of the signed body).
    #[must_use]
    pub fn metadata_fields(mut self, event_type: Vec<Field>, id: Vec<Field>) -> Self {
        self.metadata.event_type = event_type;
        self.metadata.id = id;
        self
    }

    /// The header the signature is read from.
    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    /// The same scheme keyed with `tokens` instead (each tenant's, with
    /// [`Tenanted`](crate::tenant::Tenanted)).
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoSecret`] or [`ConfigError::EmptySecret`].
    pub fn with_secrets(&self, tokens: &[Secret]) -> Result<Self, ConfigError> {
        Ok(Self {
            keys: keys(tokens)?,
            ..self.clone()
        })
    }

    /// The signature header value the first token gives a request to `url` with `body`
    /// (form-encoded, or covered by `bodySHA256` in `url`), for tests.
    pub(crate) fn sign(&self, url: &str, body: &[u8], form: bool) -> String {
        let mut mac = self.keys[0].clone();
        mac.update(url.as_bytes());
        if form && let Some(params) = signed_params(body) {
            mac.update(&params);
        }
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }

    /// What the event type and delivery id are read by.
    pub(crate) fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn malformed(&self, expected: &'static str) -> SignatureError {
        SignatureError::Malformed {
            header: self.header.clone(),
            expected: expected.into(),
        }
    }

    /// The URL the provider called, given the request's `Host`.
    fn url(&self, head: &Parts, host: Option<&HeaderValue>) -> Result<String, SignatureError> {
        let path = head
            .uri
            .path_and_query()
            .map_or("/", http::uri::PathAndQuery::as_str);
        // Joined by hand: `format!`'s machinery costs more than the copies.
        let join = |parts: &[&str]| {
            let mut url = String::with_capacity(parts.iter().map(|part| part.len()).sum());
            parts.iter().for_each(|part| url.push_str(part));
            url
        };
        let url = match &self.public_url {
            Some(base) => join(&[base, path]),
            None => {
                let host = match host {
                    Some(host) => host.to_str().ok(),
                    None => head.uri.authority().map(http::uri::Authority::as_str),
                }
                // A host and port, nothing more: `Host: example.com/twilio` must not move the
                // signed URL's path.
                .filter(|host| is_host_and_port(host.as_bytes()))
                .ok_or_else(|| SignatureError::Malformed {
                    header: HOST,
                    expected: "the host the provider called".into(),
                })?;
                join(&["https://", host, path])
            }
        };
        Ok(url)
    }
}

/// Whether `authority` is a host and an optional port, as RFC 3986 writes them (a registered
/// name without percent escapes, an IPv4 address or a bracketed IPv6 literal, then `:` and
/// digits), with no user information, path, query or fragment. Checked in one pass, without the allocation of parsing
/// it into an `http::uri::Authority`.
fn is_host_and_port(authority: &[u8]) -> bool {
    let port = match authority {
        [b'[', rest @ ..] => match memchr::memchr(b']', rest) {
            Some(end) => {
                let literal = &rest[..end];
                let literal_ok = !literal.is_empty()
                    && literal
                        .iter()
                        .all(|&b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'));
                if !literal_ok {
                    return false;
                }
                &rest[end + 1..]
            }
            None => return false,
        },
        _ => {
            let colon = memchr::memrchr(b':', authority).unwrap_or(authority.len());
            let host = &authority[..colon];
            // A registered name: unreserved characters and sub-delimiters.
            let name_ok = !host.is_empty()
                && host.iter().all(|&b| {
                    b.is_ascii_alphanumeric()
                        || matches!(
                            b,
                            b'-' | b'.'
                                | b'_'
                                | b'~'
                                | b'!'
                                | b'$'
                                | b'&'
                                | b'\''
                                | b'('
                                | b')'
                                | b'*'
                                | b'+'
                                | b','
                                | b';'
                                | b'='
                        )
                });
            if !name_ok {
                return false;
            }
            &authority[colon..]
        }
    };
    match port {
        [] => true,
        [b':', digits @ ..] => digits.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// `url` with its default port removed when it has it, added when it has no port; `None` for
/// another port.
fn alternate(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let default = if scheme == "http" { ":80" } else { ":443" };
    match authority.strip_suffix(default) {
        Some(host) => Some(format!("{scheme}://{host}{tail}")),
        // An IPv6 literal's colons are inside brackets.
        None if !authority
            .rsplit(']')
            .next()
            .unwrap_or(authority)
            .contains(':') =>
        {
            Some(format!("{scheme}://{authority}{default}{tail}"))
        }
        None => None,
    }
}

fn keys(tokens: &[Secret]) -> Result<Keys<hmac::Hmac<Sha1>>, ConfigError> {
    crate::secret::keys_of(tokens, |index, token| {
        hmac::Hmac::new_from_slice(token).map_err(|_| ConfigError::InvalidSecret { index })
    })
}

/// Whether the head says the body is `application/x-www-form-urlencoded`.
fn is_form(content_type: Option<&HeaderValue>) -> bool {
    content_type
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|kind| {
            kind.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// The value of `name` in `query`, when it appears exactly once.
fn query_param<'a>(query: &'a str, name: &str) -> Option<Option<&'a str>> {
    let mut found = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == name {
            if found.is_some() {
                return None;
            }
            found = Some(value);
        }
    }
    Some(found)
}

/// The most parameters a form body may have: more is refused before any MAC, so that the
/// parameters' offsets stay within 16 KB whatever the body.
pub const MAX_FORM_PARAMETERS: usize = 1_000;

/// What the signature covers of a form body: its parameters, decoded, sorted by name then value
/// (as bytes), each name followed by its value, in one buffer; `None` when an escape is
/// malformed or there are more than [`MAX_FORM_PARAMETERS`]. Linear in the body, then a sort of
/// its parameters; memory: twice the body, and 24 bytes a parameter.
///
/// Vectorized searches find the `&`, `=` and `%` that matter (after a parameter's first `=`,
/// only `&` and `%`); the runs between them are copied whole (their `+`s made spaces as they
/// land), and a run of `&` is skipped at once. The sort compares the first eight bytes of two
/// names as one integer, and only names that share them byte by byte.
fn signed_params(body: &[u8]) -> Option<Vec<u8>> {
    let mut form = Form {
        decoded: Vec::with_capacity(body.len()),
        pairs: Vec::new(),
        name: 0,
        value: None,
    };
    // Where the search goes on, the start of the bytes not copied yet, and of the current
    // parameter in `body`.
    let mut from = 0;
    let mut run = 0;
    let mut pair = 0;
    loop {
        // After its `=`, a parameter's value ends at `&`; any other `=` is the value's.
        let rest = &body[from..];
        let found = match form.value {
            Some(_) => memchr::memchr2(b'&', b'%', rest),
            None => memchr::memchr3(b'&', b'=', b'%', rest),
        };
        let at = found.map_or(body.len(), |found| from + found);
        match body.get(at) {
            Some(b'=') => {
                form.copy(&body[run..at]);
                form.value = Some(form.decoded.len());
                run = at + 1;
            }
            Some(b'%') => {
                form.copy(&body[run..at]);
                // Escapes in a row (`%41%42…`) are decoded without a search between them.
                let mut at = at;
                while body.get(at) == Some(&b'%') {
                    let hex = body.get(at + 1..at + 3)?;
                    let digit = |b: u8| char::from(b).to_digit(16);
                    form.decoded
                        .push(u8::try_from(digit(hex[0])? * 16 + digit(hex[1])?).ok()?);
                    at += 3;
                }
                run = at;
            }
            // `&`, or the end of the body.
            _ => {
                form.copy(&body[run..at]);
                if at > pair {
                    form.end_pair()?;
                }
                if at == body.len() {
                    break;
                }
                // Empty parameters (`&&`) are none: skipped here, a byte at a time.
                let next = body[at..]
                    .iter()
                    .position(|&byte| byte != b'&')
                    .map_or(body.len(), |skip| at + skip);
                (run, pair) = (next, next);
            }
        }
        from = run;
    }
    let Form {
        decoded, mut pairs, ..
    } = form;
    let at = |start: u32, end: u32| &decoded[start as usize..end as usize];
    let full = |&(_, [name, name_end, value, value_end]): &(u64, [u32; 4])| {
        (at(name, name_end), at(value, value_end))
    };
    let order = |a: &(u64, [u32; 4]), b: &(u64, [u32; 4])| {
        a.0.cmp(&b.0).then_with(|| full(a).cmp(&full(b)))
    };
    // Twilio usually sends its parameters in order already.
    if !pairs.is_sorted_by(|a, b| order(a, b).is_le()) {
        pairs.sort_unstable_by(order);
    }
    let mut signed = Vec::with_capacity(decoded.len());
    for pair in &pairs {
        let (name, value) = full(pair);
        signed.extend_from_slice(name);
        signed.extend_from_slice(value);
    }
    Some(signed)
}

/// A form body being decoded: the bytes so far, and per parameter the first eight bytes of its
/// name (big-endian, zero-padded: their order is the names' order, unless they are equal) and
/// its name's and value's offsets in `decoded`.
struct Form {
    decoded: Vec<u8>,
    pairs: Vec<(u64, [u32; 4])>,
    /// Where the current parameter's name begins in `decoded`, and its value once its `=` was
    /// read.
    name: usize,
    value: Option<usize>,
}

impl Form {
    /// Appends a run without escapes, a `+` as a space.
    fn copy(&mut self, run: &[u8]) {
        let start = self.decoded.len();
        self.decoded.extend_from_slice(run);
        // Without a branch on the byte, so that the loop is vectorized.
        for byte in &mut self.decoded[start..] {
            *byte = if *byte == b'+' { b' ' } else { *byte };
        }
    }

    /// Records the current parameter (a name without `=` has an empty value); `None` past
    /// [`MAX_FORM_PARAMETERS`].
    fn end_pair(&mut self) -> Option<()> {
        if self.pairs.len() == MAX_FORM_PARAMETERS {
            return None;
        }
        let end = self.decoded.len();
        let (name_end, value) = match self.value {
            Some(value) => (value, value),
            None => (end, end),
        };
        let mut prefix = [0u8; 8];
        let name = &self.decoded[self.name..name_end];
        let len = name.len().min(8);
        prefix[..len].copy_from_slice(&name[..len]);
        let prefix = u64::from_be_bytes(prefix);
        let offset = |at: usize| u32::try_from(at).ok();
        self.pairs.push((
            prefix,
            [
                offset(self.name)?,
                offset(name_end)?,
                offset(value)?,
                offset(end)?,
            ],
        ));
        self.name = end;
        self.value = None;
        Some(())
    }
}

impl Scheme for UrlSigned {
    type Signature = UrlSignature;

    fn signature(&self, head: &Parts) -> Result<UrlSignature, SignatureError> {
        let mut found = [Found::Absent; 3];
        headers::find(&head.headers, &self.reads, &mut found);
        let [signature, host, content_type] = found;
        let value = signature.one(&self.header)?;
        const EXPECTED: &str = "28 characters of padded standard base64 (an HMAC-SHA1)";
        let encoded = value.as_bytes().trim_ascii();
        let mut tag = [0u8; 21];
        if encoded.len() != 28
            || base64::engine::general_purpose::STANDARD
                .decode_slice(encoded, &mut tag)
                .ok()
                != Some(20)
        {
            return Err(self.malformed(EXPECTED));
        }
        let body_sha256 = match head
            .uri
            .query()
            .map(|query| query_param(query, BODY_SHA256))
        {
            None | Some(Some(None)) => None,
            Some(None) => return Err(self.malformed("one `bodySHA256` in the URL")),
            Some(Some(Some(hex_digest))) => {
                let mut digest = [0u8; 32];
                if !hex::decode_lower(hex_digest.as_bytes(), &mut digest) {
                    return Err(self.malformed("`bodySHA256` of 64 lower-case hex digits"));
                }
                Some(digest)
            }
        };
        Ok(UrlSignature {
            tag: tag[..20].try_into().expect("20 bytes"),
            url: self.url(head, host.first(&head.headers, &HOST))?,
            body_sha256,
            form: is_form(content_type.first(&head.headers, &CONTENT_TYPE)),
        })
    }

    fn verify(&self, signature: &UrlSignature, body: &Bytes) -> Result<Signed, SignatureError> {
        let params = match (&signature.body_sha256, signature.form) {
            (Some(_), _) => Vec::new(),
            (None, true) => signed_params(body).ok_or_else(|| {
                SignatureError::other(
                    "the form body is not one Twilio signs: a malformed escape, or more than 1000 \
                     parameters",
                )
            })?,
            (None, false) if body.is_empty() => Vec::new(),
            (None, false) => {
                return Err(SignatureError::other(
                    "the body is neither form-encoded nor covered by `bodySHA256`",
                ));
            }
        };
        // The body's SHA-256, when the URL carries one, is computed between feeding the URL to
        // the first MAC and finishing it: the two hashes are independent, and the processor
        // overlaps their ends. A forged request is hashed too, as every HMAC scheme hashes the
        // body it refuses: linear in a body already read within its limit.
        let mut digest = None;
        // Every key tried on the URL as written; on its other spelling (the default port added
        // or removed) only when none matched. Which spelling matched is no secret.
        let mut matches = |url: &str| {
            let found = self
                .keys
                .iter()
                .fold(subtle::Choice::from(0), |found, key| {
                    let mut mac = key.clone();
                    mac.update(url.as_bytes());
                    mac.update(&params);
                    if signature.body_sha256.is_some() && digest.is_none() {
                        digest = Some(Sha256::digest(body));
                    }
                    found | mac.finalize().into_bytes().as_slice().ct_eq(&signature.tag)
                });
            bool::from(found)
        };
        if !(matches(&signature.url) || alternate(&signature.url).is_some_and(|url| matches(&url)))
        {
            return Err(SignatureError::Mismatch);
        }
        if let Some(expected) = &signature.body_sha256
            && digest.is_none_or(|digest| digest.as_slice() != expected)
        {
            return Err(SignatureError::Mismatch);
        }
        Ok(Signed::RawBody)
    }

    fn name(&self) -> &str {
        &self.name
    }

    /// The event type and id from the signed form fields (or the JSON body its hash covers).
    ///
    /// Neither is taken as signed: Twilio signs its parameters joined without separators, so
    /// a captured request can be split into other parameters with the same signature
    /// (`MessageSid=SM1&SmsStatus=x` and `MessageSid=SM1SmsStatusx` sign alike). The preset
    /// deduplicates on the SHA-256 of the signed text instead.
    fn delivery(&self, head: &Parts, _signature: &UrlSignature, signed: &Bytes) -> Delivery {
        let json = serde_json::from_slice::<serde_json::Value>(signed).ok();
        let read = |fields: &[Field]| {
            self.metadata
                .read(fields, Some(&head.headers), json.as_ref(), signed)
        };
        Delivery {
            id: read(&self.metadata.id),
            event_type: read(&self.metadata.event_type),
            ..Delivery::default()
        }
    }
}

/// The SHA-256, in hex, of what a Twilio signature covers of `head` and `body` past the host:
/// the path and query, then the sorted parameters of a form body (or the body whose hash the
/// URL carries). Every split of a captured request that its signature still covers gives the
/// same digest, so a deduplication key built from it catches them all.
pub(crate) fn signed_text_sha256(head: &Parts, body: &[u8]) -> String {
    let path = head
        .uri
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str);
    let hashed = head
        .uri
        .query()
        .is_some_and(|query| matches!(query_param(query, BODY_SHA256), Some(Some(_)) | None));
    let params = (is_form(head.headers.get(CONTENT_TYPE)) && !hashed)
        .then(|| signed_params(body))
        .flatten();
    let mut digest = Sha256::new();
    digest.update(path.as_bytes());
    digest.update(params.as_deref().unwrap_or(body));
    let mut text = String::new();
    hex::encode_lower(&digest.finalize(), &mut text);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule written plainly: parameters split at `&` (empty ones dropped), each at its
    /// first `=`, `+` as a space and `%XX` decoded in both halves, sorted by name then value,
    /// each name then its value.
    fn plainly(body: &[u8]) -> Option<Vec<u8>> {
        fn decode(text: &[u8]) -> Option<Vec<u8>> {
            let mut out = Vec::new();
            let mut i = 0;
            while i < text.len() {
                match text[i] {
                    b'+' => out.push(b' '),
                    b'%' => {
                        let hex = std::str::from_utf8(text.get(i + 1..i + 3)?).ok()?;
                        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                            return None;
                        }
                        out.push(u8::from_str_radix(hex, 16).ok()?);
                        i += 2;
                    }
                    byte => out.push(byte),
                }
                i += 1;
            }
            Some(out)
        }
        let mut pairs = Vec::new();
        for pair in body.split(|&b| b == b'&').filter(|pair| !pair.is_empty()) {
            let at = pair.iter().position(|&b| b == b'=').unwrap_or(pair.len());
            let value = pair.get(at + 1..).unwrap_or_default();
            pairs.push((decode(&pair[..at])?, decode(value)?));
        }
        if pairs.len() > MAX_FORM_PARAMETERS {
            return None;
        }
        pairs.sort();
        Some(
            pairs
                .into_iter()
                .flat_map(|(name, value)| [name, value])
                .flatten()
                .collect(),
        )
    }

    #[test]
    fn forms_of_every_shape_sign_as_the_plain_rule_says() {
        // Bodies between `|`, the empty one first.
        let bodies = "|&|&&a=1&&|=|a|a=|=b|a=b=c|a=%3D&a=%26&a=+|b=2&a=1&b=1|a+b=c+d&a%2Bb=c%2Bd|\
                      Param10=x&Param1=y&Param=z&Param1=a&Param12345678=1&Param1234567=2|\
                      abcdefgh=1&abcdefgh\0=2&abcdefg=3&abcdefghi=0|%41%4a%4A=%f0%9F%8e%AC|\
                      a=%|a=%4|a=%4g|a=%%41|%=1|a==b&&&c=d=e|&&&";
        for body in bodies.split('|').map(str::as_bytes) {
            assert_eq!(
                signed_params(body),
                plainly(body),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn random_forms_sign_as_the_plain_rule_says(
            body in proptest::collection::vec(
                proptest::sample::select(&b"ab=&%+2B4fxyz\x00\xff"[..]),
                0..80,
            )
        ) {
            proptest::prop_assert_eq!(signed_params(&body), plainly(&body));
        }

        /// Whatever passes is a valid `http` authority with no character that would move the
        /// signed URL's path, query or fragment.
        #[test]
        fn what_passes_is_an_authority(
            text in proptest::collection::vec(
                proptest::sample::select(&b"a1.:[]@/?#%\\ -_~!$&'()*+,;=\x7f\xff"[..]),
                0..12,
            ),
        ) {
            if is_host_and_port(&text) {
                let text = std::str::from_utf8(&text).expect("ASCII");
                proptest::prop_assert!(text.parse::<http::uri::Authority>().is_ok(), "{text}");
                proptest::prop_assert!(!text.contains(['/', '?', '#', '@', ' ', '\\']), "{text}");
            }
        }
    }

    #[test]
    fn hosts_and_ports_are_accepted_and_nothing_else() {
        for good in [
            "hooks.example.com",
            "hooks.example.com:443",
            "hooks.example.com:",
            "127.0.0.1:8080",
            "[::1]",
            "[2001:db8::7]:8443",
            "a_b-c~d",
        ] {
            assert!(is_host_and_port(good.as_bytes()), "{good}");
        }
        for bad in [
            "",
            ":443",
            "hooks.example.com/twilio",
            "hooks.example.com?x",
            "hooks.example.com#x",
            "user@hooks.example.com",
            "hooks.example.com:44x",
            "hooks example.com",
            "hooks.example.com\\x",
            "hooks%2eexample.com",
            "[::1",
            "[]:443",
            "[::1]x",
            "[::1]:443/x",
            "h\u{e9}.example",
        ] {
            assert!(!is_host_and_port(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn more_parameters_than_the_limit_are_refused() {
        let body = vec!["a=1"; MAX_FORM_PARAMETERS].join("&");
        assert!(signed_params(body.as_bytes()).is_some());
        assert!(signed_params(format!("{body}&b").as_bytes()).is_none());
    }
}
