//! HMAC-SHA256 over the body, hex or base64, in one header, with an optional prefix.

use std::{borrow::Cow, fmt};

use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http::{
    HeaderName, HeaderValue, Method, Request,
    header::{CONTENT_LENGTH, CONTENT_TYPE},
    request::Parts,
};
use http_body_util::Full;
use sha2::Sha256;

use super::{Scheme, SignatureError, Signed, hex, js_json};
use crate::{ConfigError, Secret};

/// Length of an HMAC-SHA256 tag.
const TAG_LEN: usize = 32;

/// How the MAC is written in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Encoding {
    /// Lower-case hexadecimal, 64 characters. Upper-case digits are refused: providers send lower
    /// case and their own verifiers compare the lower-case string.
    #[default]
    Hex,
    /// Standard base64 with padding (RFC 4648 §4), 44 characters.
    Base64,
}

/// The HMAC-SHA256 scheme: one signature, over the raw body, in one header.
///
/// Build it with [`HmacSha256::builder`]. Each secret is turned into a keyed HMAC state once, when
/// the scheme is built; a request only clones that state. Several secrets may be configured (key
/// rotation): a signature made with any one of them is accepted. `Debug` output shows the header
/// and format but never the keys.
///
/// See the [module docs](crate::scheme) for an example.
#[derive(Clone)]
pub struct HmacSha256 {
    name: Box<str>,
    header: HeaderName,
    /// What a well-formed header value looks like, for the malformed-signature message.
    expected: Box<str>,
    prefix: Box<[u8]>,
    encoding: Encoding,
    keys: Box<[Hmac<Sha256>]>,
    json_stringify_fallback: bool,
    json_stringify_fallback_max: usize,
}

/// The decoded signature read by [`HmacSha256`] from the request head.
///
/// It has no `PartialEq`: signatures are only ever compared in constant time, by the scheme. Its
/// `Debug` output is redacted: it never shows the MAC.
///
/// ```
/// use tower_webhook::scheme::{HmacSha256, Scheme};
///
/// let scheme = HmacSha256::builder("x-signature").secret("s3cret").build()?;
/// let (head, _) = scheme.signed_request("{}").into_parts();
/// let signature = scheme.signature(&head)?;
/// assert_eq!(format!("{signature:?}"), r#"Signature("[redacted]")"#);
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy)]
pub struct Signature([u8; TAG_LEN]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Signature").field(&"[redacted]").finish()
    }
}

impl HmacSha256 {
    /// Starts a scheme that reads its signature from `header` (case-insensitive). The encoding
    /// defaults to lower-case hex, with no prefix.
    pub fn builder(header: impl Into<String>) -> HmacSha256Builder {
        HmacSha256Builder {
            name: "hmac-sha256".into(),
            header: header.into(),
            prefix: String::new(),
            encoding: Encoding::Hex,
            secrets: Vec::new(),
            json_stringify_fallback: false,
            json_stringify_fallback_max: HmacSha256Builder::DEFAULT_JSON_STRINGIFY_FALLBACK_MAX,
        }
    }

    /// The header the signature is read from.
    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    /// A request a sender using the first configured secret would send: `POST /` with `body`,
    /// `Content-Type: application/json` and the signature header. Meant for tests; change the
    /// URI with [`Request::uri_mut`](http::Request::uri_mut) and the body type with
    /// [`Request::map`](http::Request::map).
    ///
    /// ```
    /// use tower_webhook::scheme::HmacSha256;
    ///
    /// let scheme = HmacSha256::builder("x-signature").secret("s3cret").build()?;
    /// let request = scheme.signed_request(r#"{"event":"ping"}"#);
    /// assert_eq!(request.headers()["x-signature"], scheme.sign(br#"{"event":"ping"}"#));
    /// # Ok::<_, tower_webhook::ConfigError>(())
    /// ```
    pub fn signed_request(&self, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
        let body = body.into();
        let mut request = Request::new(Full::new(Bytes::new()));
        *request.method_mut() = Method::POST;
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        headers.insert(self.header.clone(), self.sign(&body));
        request.map(|_| Full::new(body))
    }

    /// The header value a sender using the first configured secret would put on `content`:
    /// prefix and encoded MAC. Meant for tests and local tools that need signed requests.
    pub fn sign(&self, content: &[u8]) -> HeaderValue {
        let mut mac = self.keys[0].clone();
        mac.update(content);
        let tag = mac.finalize().into_bytes();
        let mut value = self.prefix.to_vec();
        match self.encoding {
            Encoding::Hex => {
                for byte in tag.iter() {
                    value.push(HEX[usize::from(byte >> 4)]);
                    value.push(HEX[usize::from(byte & 0x0f)]);
                }
            }
            Encoding::Base64 => {
                value.extend_from_slice(
                    base64::engine::general_purpose::STANDARD
                        .encode(tag)
                        .as_bytes(),
                );
            }
        }
        HeaderValue::from_bytes(&value).expect("prefix was checked to be a valid header value")
    }

    /// Whether any configured key produced `tag` over `content` (constant-time per key).
    fn matches(&self, tag: &Signature, content: &[u8]) -> bool {
        self.keys.iter().any(|key| {
            let mut mac = key.clone();
            mac.update(content);
            mac.verify_slice(&tag.0).is_ok()
        })
    }

    fn decode(&self, value: &[u8]) -> Option<Signature> {
        // No prefix (the common case): no comparison at all.
        let encoded = if self.prefix.is_empty() {
            value
        } else {
            value.strip_prefix(&*self.prefix)?
        };
        let mut tag = [0u8; TAG_LEN];
        match self.encoding {
            Encoding::Hex => {
                if !hex::decode_lower(encoded, &mut tag) {
                    return None;
                }
            }
            Encoding::Base64 => {
                // 44 characters decode to at most 33 bytes; anything else is not a tag.
                if encoded.len() != 44 {
                    return None;
                }
                let mut buf = [0u8; 33];
                let n = base64::engine::general_purpose::STANDARD
                    .decode_slice(encoded, &mut buf)
                    .ok()?;
                if n != TAG_LEN {
                    return None;
                }
                tag.copy_from_slice(&buf[..TAG_LEN]);
            }
        }
        Some(Signature(tag))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Strips the optional white space (space, tab) that HTTP allows around a field value.
fn trim_ows(value: &[u8]) -> &[u8] {
    let start = value.iter().position(|b| !matches!(b, b' ' | b'\t'));
    let end = value.iter().rposition(|b| !matches!(b, b' ' | b'\t'));
    match (start, end) {
        (Some(start), Some(end)) => &value[start..=end],
        _ => &[],
    }
}

impl Scheme for HmacSha256 {
    type Signature = Signature;

    fn signature(&self, head: &Parts) -> Result<Signature, SignatureError> {
        let mut values = head.headers.get_all(&self.header).iter();
        let Some(value) = values.next() else {
            return Err(SignatureError::Missing {
                header: self.header.clone(),
            });
        };
        if values.next().is_some() {
            return Err(SignatureError::Repeated {
                header: self.header.clone(),
            });
        }
        self.decode(trim_ows(value.as_bytes()))
            .ok_or_else(|| SignatureError::Malformed {
                header: self.header.clone(),
                expected: Cow::Owned(self.expected.to_string()),
            })
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn verify(&self, signature: Signature, body: &Bytes) -> Result<Signed, SignatureError> {
        if self.matches(&signature, body) {
            return Ok(Signed::RawBody);
        }
        if self.json_stringify_fallback
            && body.len() <= self.json_stringify_fallback_max
            && let Some(form) = js_json::Stringified::parse(body)
        {
            // The re-serialised form is streamed into one MAC per key, never held whole, until a
            // key matches it. (Were it equal to the body, it could not match: the body did not.)
            let mut macs = self.keys.to_vec();
            form.write(|chunk| macs.iter_mut().for_each(|mac| mac.update(chunk)));
            if macs
                .into_iter()
                .any(|mac| mac.verify_slice(&signature.0).is_ok())
            {
                return Ok(Signed::Reserialized(Bytes::from(form.to_vec())));
            }
        }
        Err(SignatureError::Mismatch)
    }
}

impl fmt::Debug for HmacSha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacSha256")
            .field("name", &self.name)
            .field("header", &self.header)
            .field("prefix", &String::from_utf8_lossy(&self.prefix))
            .field("encoding", &self.encoding)
            .field("keys", &format_args!("[{} redacted]", self.keys.len()))
            .field("json_stringify_fallback", &self.json_stringify_fallback)
            .field(
                "json_stringify_fallback_max",
                &self.json_stringify_fallback_max,
            )
            .finish()
    }
}

/// Builder for [`HmacSha256`]; see [`HmacSha256::builder`].
///
/// Mistakes (no secret, an empty secret, a bad header name) are reported by
/// [`build`](HmacSha256Builder::build) as a [`ConfigError`].
#[must_use]
#[derive(Clone)]
pub struct HmacSha256Builder {
    name: String,
    header: String,
    prefix: String,
    encoding: Encoding,
    secrets: Vec<Secret>,
    json_stringify_fallback: bool,
    json_stringify_fallback_max: usize,
}

impl HmacSha256Builder {
    /// The largest body the [`json_stringify_fallback`](Self::json_stringify_fallback)
    /// re-serialises unless [`json_stringify_fallback_max`](Self::json_stringify_fallback_max) sets
    /// another: 256 KiB.
    ///
    /// VideoAIditor's payloads are a few KiB, so this leaves them ample room, while a forged
    /// request can make the fallback read no more than an eighth of the default 2 MiB body limit:
    /// at most a few milliseconds of CPU time and about 1 MiB of memory, about what checking the
    /// raw MAC of a 2 MiB body costs anyway.
    pub const DEFAULT_JSON_STRINGIFY_FALLBACK_MAX: usize = 256 * 1024;

    /// The name recorded in [`Verified::provider`](crate::Verified::provider) for requests this
    /// scheme verifies (the presets use the provider's name); `"hmac-sha256"` unless set.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// A literal prefix that comes before the encoded MAC, such as `sha256=`. Matched exactly
    /// (case-sensitive); a value without it is malformed.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How the MAC is encoded; lower-case hex unless set.
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// Adds a secret. Add several to rotate keys: a signature made with any of them is accepted.
    pub fn secret(mut self, secret: impl Into<Secret>) -> Self {
        self.secrets.push(secret.into());
        self
    }

    /// Adds several secrets, in order.
    pub fn secrets<I>(mut self, secrets: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Secret>,
    {
        self.secrets.extend(secrets.into_iter().map(Into::into));
        self
    }

    /// Also accepts a signature over `JSON.stringify(JSON.parse(body))` with exact JavaScript
    /// semantics, for providers whose signing code re-serialises the payload (VideoAIditor).
    ///
    /// The raw bytes are always checked first. Only when they do not match is the body
    /// re-serialised (integer-like keys first in ascending order, JavaScript number formatting,
    /// JavaScript string escaping, duplicate keys keeping the first position and the last value)
    /// and checked again. When that form matches, it — not the raw body — is what the event is
    /// parsed from and what the inner service receives. Off unless asked for: a raw-body provider
    /// must never accept re-serialised JSON.
    ///
    /// The re-serialisation runs for every request whose raw MAC fails, before anything is
    /// authenticated. It is linear in time (up to a logarithmic factor for objects with many keys)
    /// and needs at most a few bytes of memory per body byte, on any input; and only bodies of up
    /// to [`json_stringify_fallback_max`](Self::json_stringify_fallback_max) bytes (256 KiB unless
    /// set) go through it.
    pub fn json_stringify_fallback(mut self) -> Self {
        self.json_stringify_fallback = true;
        self
    }

    /// The largest body, in bytes, that the
    /// [`json_stringify_fallback`](Self::json_stringify_fallback) re-serialises:
    /// [`DEFAULT_JSON_STRINGIFY_FALLBACK_MAX`](Self::DEFAULT_JSON_STRINGIFY_FALLBACK_MAX)
    /// (256 KiB) unless set.
    ///
    /// A larger body is checked as received only, so a signature over its re-serialised form is a
    /// [`SignatureError::Mismatch`] (401). This bounds what a forged request can cost before it is
    /// refused; raise it only for a provider that really sends larger payloads, up to the layer's
    /// body limit. Setting it does not turn the fallback on.
    pub fn json_stringify_fallback_max(mut self, bytes: usize) -> Self {
        self.json_stringify_fallback_max = bytes;
        self
    }

    /// Checks the configuration and prepares one keyed HMAC state per secret.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoSecret`], [`ConfigError::EmptySecret`],
    /// [`ConfigError::InvalidHeaderName`], or [`ConfigError::InvalidPrefix`] when the prefix
    /// cannot appear in a header value.
    pub fn build(self) -> Result<HmacSha256, ConfigError> {
        let header = HeaderName::from_bytes(self.header.as_bytes()).map_err(|_| {
            ConfigError::InvalidHeaderName {
                name: self.header.clone(),
            }
        })?;
        if HeaderValue::from_str(&self.prefix).is_err() {
            return Err(ConfigError::InvalidPrefix {
                prefix: self.prefix,
            });
        }
        if self.secrets.is_empty() {
            return Err(ConfigError::NoSecret);
        }
        let keys = self
            .secrets
            .iter()
            .enumerate()
            .map(|(index, secret)| {
                if secret.is_empty() {
                    return Err(ConfigError::EmptySecret { index });
                }
                Ok(Hmac::<Sha256>::new_from_slice(secret.expose())
                    .expect("HMAC accepts keys of any length"))
            })
            .collect::<Result<Box<[_]>, _>>()?;
        let digits = match self.encoding {
            Encoding::Hex => "64 lower-case hex digits",
            Encoding::Base64 => "44 characters of padded standard base64",
        };
        let expected = if self.prefix.is_empty() {
            digits.to_owned()
        } else {
            format!("`{}` followed by {digits}", self.prefix)
        };
        Ok(HmacSha256 {
            name: self.name.into_boxed_str(),
            header,
            expected: expected.into_boxed_str(),
            prefix: self.prefix.into_bytes().into_boxed_slice(),
            encoding: self.encoding,
            keys,
            json_stringify_fallback: self.json_stringify_fallback,
            json_stringify_fallback_max: self.json_stringify_fallback_max,
        })
    }
}

impl fmt::Debug for HmacSha256Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacSha256Builder")
            .field("name", &self.name)
            .field("header", &self.header)
            .field("prefix", &self.prefix)
            .field("encoding", &self.encoding)
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .field("json_stringify_fallback", &self.json_stringify_fallback)
            .field(
                "json_stringify_fallback_max",
                &self.json_stringify_fallback_max,
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use http::Request;

    use super::*;

    fn head(values: &[&[u8]]) -> Parts {
        let mut request = Request::post("/").body(()).unwrap();
        for value in values {
            request
                .headers_mut()
                .append("x-sig", HeaderValue::from_bytes(value).unwrap());
        }
        request.into_parts().0
    }

    fn scheme(encoding: Encoding, prefix: &str) -> HmacSha256 {
        HmacSha256::builder("X-Sig")
            .encoding(encoding)
            .prefix(prefix)
            .secret("key")
            .build()
            .unwrap()
    }

    #[test]
    fn sign_then_verify_round_trips_in_every_format() {
        for (encoding, prefix) in [
            (Encoding::Hex, ""),
            (Encoding::Hex, "sha256="),
            (Encoding::Base64, ""),
            (Encoding::Base64, "v1,"),
        ] {
            let scheme = scheme(encoding, prefix);
            let body = Bytes::from_static(b"{\"a\":1}");
            let value = scheme.sign(&body);
            let signature = scheme.signature(&head(&[value.as_bytes()])).unwrap();
            assert_eq!(scheme.verify(signature, &body), Ok(Signed::RawBody));
            let request = scheme.signed_request(body.clone());
            let (parts, _) = request.into_parts();
            let signature = scheme.signature(&parts).unwrap();
            assert_eq!(scheme.verify(signature, &body), Ok(Signed::RawBody));
            let other = Bytes::from_static(b"{\"a\":2}");
            assert_eq!(
                scheme.verify(signature, &other),
                Err(SignatureError::Mismatch)
            );
        }
    }

    #[test]
    fn hex_signature_matches_a_known_hmac() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let scheme = HmacSha256::builder("x-sig").secret("Jefe").build().unwrap();
        assert_eq!(
            scheme.sign(b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn malformed_values_are_refused_before_any_mac() {
        let hex = scheme(Encoding::Hex, "sha256=");
        let good = hex.sign(b"x");
        let good = good.as_bytes();
        let upper = good.to_ascii_uppercase();
        let cases: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            good[7..].to_vec(),                        // no prefix
            [b"SHA256=", &good[7..]].concat(),         // prefix in another case
            upper,                                     // upper-case hex
            good[..good.len() - 1].to_vec(),           // 63 digits
            [good, b"0"].concat(),                     // 65 digits
            [&good[..20], b" ", &good[20..]].concat(), // space inside
            [&good[..good.len() - 1], b"g"].concat(),  // not hex
        ];
        for value in cases {
            assert_eq!(
                hex.signature(&head(&[&value])).unwrap_err().to_string(),
                "malformed webhook signature in header `x-sig`: \
                 expected `sha256=` followed by 64 lower-case hex digits",
                "{:?}",
                String::from_utf8_lossy(&value)
            );
        }
    }

    #[test]
    fn surrounding_white_space_is_not_part_of_the_value() {
        let hex = scheme(Encoding::Hex, "");
        let good = hex.sign(b"x");
        let padded = [b" \t", good.as_bytes(), b"\t "].concat();
        let signature = hex.signature(&head(&[&padded])).unwrap();
        assert_eq!(
            hex.verify(signature, &Bytes::from_static(b"x")),
            Ok(Signed::RawBody)
        );
    }

    #[test]
    fn base64_must_be_canonical_padded_standard() {
        let b64 = scheme(Encoding::Base64, "");
        let good = b64.sign(b"x");
        let good = good.to_str().unwrap();
        assert!(b64.signature(&head(&[good.as_bytes()])).is_ok());
        let unpadded = good.trim_end_matches('=');
        let url_safe = good.replace('+', "-").replace('/', "_");
        for value in [unpadded, &url_safe, &format!("{good}="), &good[1..]] {
            if value == good {
                continue;
            }
            assert!(
                b64.signature(&head(&[value.as_bytes()])).is_err(),
                "{value}"
            );
        }
    }

    #[test]
    fn missing_and_repeated_headers() {
        let hex = scheme(Encoding::Hex, "");
        let good = hex.sign(b"x");
        assert!(matches!(
            hex.signature(&head(&[])),
            Err(SignatureError::Missing { .. })
        ));
        assert!(matches!(
            hex.signature(&head(&[good.as_bytes(), good.as_bytes()])),
            Err(SignatureError::Repeated { .. })
        ));
        assert!(matches!(
            hex.signature(&head(&[&[0xff, 0xfe]])),
            Err(SignatureError::Malformed { .. })
        ));
    }

    #[test]
    fn any_configured_secret_verifies() {
        let new = HmacSha256::builder("x-sig").secret("new").build().unwrap();
        let old = HmacSha256::builder("x-sig").secret("old").build().unwrap();
        let both = HmacSha256::builder("x-sig")
            .secrets(["new", "old"])
            .build()
            .unwrap();
        let body = Bytes::from_static(b"payload");
        for sender in [&new, &old] {
            let value = sender.sign(&body);
            let signature = both.signature(&head(&[value.as_bytes()])).unwrap();
            assert_eq!(both.verify(signature, &body), Ok(Signed::RawBody));
        }
        let value = old.sign(&body);
        let signature = new.signature(&head(&[value.as_bytes()])).unwrap();
        assert_eq!(new.verify(signature, &body), Err(SignatureError::Mismatch));
    }

    #[test]
    fn configuration_errors() {
        assert_eq!(
            HmacSha256::builder("x-sig").build().unwrap_err(),
            ConfigError::NoSecret
        );
        assert_eq!(
            HmacSha256::builder("x-sig")
                .secrets(["ok", ""])
                .build()
                .unwrap_err(),
            ConfigError::EmptySecret { index: 1 }
        );
        assert!(matches!(
            HmacSha256::builder("bad header").secret("k").build(),
            Err(ConfigError::InvalidHeaderName { .. })
        ));
        assert!(matches!(
            HmacSha256::builder("x-sig")
                .prefix("a\nb")
                .secret("k")
                .build(),
            Err(ConfigError::InvalidPrefix { .. })
        ));
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let builder = HmacSha256::builder("x-sig").secret("hunter2-secret");
        assert!(!format!("{builder:?}").contains("hunter2"));
        let scheme = builder.build().unwrap();
        let debug = format!("{scheme:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("x-sig"), "{debug}");
    }

    #[test]
    fn reserialised_json_only_when_asked_for() {
        let signed_form = br#"{"a":1,"b":[1,2]}"#;
        let sent = Bytes::from_static(b"{ \"a\": 1.0, \"b\": [1, 2] }");
        let plain = HmacSha256::builder("x-sig").secret("k").build().unwrap();
        let fallback = HmacSha256::builder("x-sig")
            .secret("k")
            .json_stringify_fallback()
            .build()
            .unwrap();
        let value = plain.sign(signed_form);
        let signature = plain.signature(&head(&[value.as_bytes()])).unwrap();
        assert_eq!(
            plain.verify(signature, &sent),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            fallback.verify(signature, &sent),
            Ok(Signed::Reserialized(Bytes::from_static(signed_form)))
        );
    }

    #[test]
    fn reserialised_json_only_up_to_the_fallback_cap() {
        let signed_form = br#"{"a":1}"#;
        let sent = Bytes::from_static(b"{ \"a\" : 1 }");
        let scheme = |max: Option<usize>| {
            let builder = HmacSha256::builder("x-sig")
                .secret("k")
                .json_stringify_fallback();
            match max {
                Some(max) => builder.json_stringify_fallback_max(max),
                None => builder,
            }
            .build()
            .unwrap()
        };
        let default = scheme(None);
        let value = default.sign(signed_form);
        let signature = default.signature(&head(&[value.as_bytes()])).unwrap();
        let reserialized = Ok(Signed::Reserialized(Bytes::from_static(signed_form)));
        assert_eq!(default.verify(signature, &sent), reserialized);
        assert_eq!(
            scheme(Some(sent.len())).verify(signature, &sent),
            reserialized
        );
        assert_eq!(
            scheme(Some(sent.len() - 1)).verify(signature, &sent),
            Err(SignatureError::Mismatch)
        );
        // The cap alone does not turn the fallback on.
        let capped_only = HmacSha256::builder("x-sig")
            .secret("k")
            .json_stringify_fallback_max(1 << 20)
            .build()
            .unwrap();
        assert_eq!(
            capped_only.verify(signature, &sent),
            Err(SignatureError::Mismatch)
        );
        // The default leaves room for any VideoAIditor payload, and no more than needed.
        assert_eq!(
            HmacSha256Builder::DEFAULT_JSON_STRINGIFY_FALLBACK_MAX,
            256 * 1024
        );
    }

    #[test]
    fn debug_never_shows_the_mac() {
        for encoding in [Encoding::Hex, Encoding::Base64] {
            let scheme = scheme(encoding, "");
            let value = scheme.sign(b"{}");
            let signature = scheme.signature(&head(&[value.as_bytes()])).unwrap();
            let hex: String = signature.0.iter().map(|b| format!("{b:02x}")).collect();
            for debug in [format!("{signature:?}"), format!("{signature:#?}")] {
                // No four bytes of the MAC, in hex of either case, nor the header value.
                for window in hex.as_bytes().chunks(8) {
                    let window = std::str::from_utf8(window).unwrap();
                    assert!(!debug.contains(window), "{debug}");
                    assert!(!debug.contains(&window.to_uppercase()), "{debug}");
                }
                assert!(!debug.contains(value.to_str().unwrap()), "{debug}");
            }
            assert_eq!(format!("{signature:?}"), r#"Signature("[redacted]")"#);
        }
    }
}
