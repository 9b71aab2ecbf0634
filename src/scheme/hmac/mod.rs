//! The template scheme every signing preset builds: any header grammar, any signed-content
//! template, HMAC-SHA256 or HMAC-SHA1 with raw or `whsec_` secrets, or Ed25519 or ECDSA P-256
//! with public keys, hex or base64, with an optional replay window.
//!
//! - [`template`]: what a scheme declares: the [`Encoding`], [`Digest`], [`KeyFormat`],
//!   [`Grammar`] of the signature header, the signed [`Part`]s and the [`TimestampSource`];
//! - [`metadata`]: where the event type and delivery id are read ([`Field`]);
//! - [`signature`]: what is read from a request head ([`HmacSignature`]) and the keyed MACs;
//! - [`public`]: public and signing keys ([`PublicKey`], [`SigningKey`]) and their signatures;
//! - [`builder`]: [`HmacBuilder`], which checks a declaration and keys it;
//! - here: [`Hmac`] itself, which reads, verifies and signs.

use std::time::Duration;

use bytes::Bytes;
use http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request,
    header::{CONTENT_LENGTH, CONTENT_TYPE},
    request::Parts,
};
use http_body_util::Full;
use serde_json::Value;

use super::{
    Delivery, Scheme, SignatureError, Signed,
    headers::{self, Found},
    js_json, missing, one_value,
    timestamp::{self, SharedClock},
};
use crate::{ConfigError, Secret, secret::Keys};

mod builder;
mod metadata;
mod public;
mod signature;
mod template;
#[cfg(test)]
mod tests;

pub(crate) use self::metadata::Metadata;
pub use self::{
    builder::HmacBuilder,
    metadata::Field,
    public::{PublicKey, SigningKey},
    signature::HmacSignature,
    template::{Digest, Encoding, Grammar, KeyFormat, Part, TimestampSource},
};
use self::{
    signature::{
        Few, Key, Prefix, Tag, all_graphic, contains, decode, decode_public, encode, runs_into,
        split, trim_ows,
    },
    template::GrammarKind,
};

/// The most signatures one request may carry; more is refused as malformed, so that a request
/// cannot make the scheme compute or compare without bound.
pub const MAX_SIGNATURES: usize = 16;

/// The most public-key signatures one request may carry (Ed25519, ECDSA): each is checked
/// against every public key over the whole body, so an unsigned request may not make the scheme
/// do that many times over.
pub const MAX_PUBLIC_SIGNATURES: usize = 4;

/// The most elements (`key=value` pairs or `version,signature` entries) a signature header may
/// hold, known or not.
pub const MAX_ELEMENTS: usize = 32;

/// How many headers a scheme may read (the signature header, the timestamp header and the
/// signed headers) for [`Hmac::signature`] to keep what it finds on the stack.
const READ_INLINE: usize = 8;

/// A generic signature scheme: every provider that signs a template of header values and the
/// body with HMAC-SHA256 or HMAC-SHA1, or with Ed25519 or ECDSA P-256 ([`Hmac::ed25519`],
/// [`Hmac::ecdsa_p256`]; the name stays from the HMAC schemes it began with). The presets in
/// [`provider`](crate::provider) are thin constructors over it.
///
/// A request is refused, with 401, when the signature header is missing, repeated, or not in
/// its [`Grammar`] (including more than [`MAX_SIGNATURES`] signatures or [`MAX_ELEMENTS`]
/// elements); when a signed header is missing or repeated; when the timestamp is not a plain
/// number of seconds; when no configured secret produced any of the signatures; and — checked only
/// after a signature matched, so that an unsigned request learns nothing about the clock — when
/// the signed timestamp is further than the tolerance from the clock, in the past or in the
/// future ([`SignatureError::OutOfTolerance`]).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use bytes::Bytes;
/// use tower_webhook::scheme::{Grammar, Hmac, Part, Scheme, Signed, TimestampSource};
///
/// // Slack: `X-Slack-Signature: v0=<hex of HMAC-SHA256("v0:{ts}:{body}")>`.
/// let scheme = Hmac::sha256("X-Slack-Signature")
///     .grammar(Grammar::prefixed("v0="))
///     .timestamp(TimestampSource::Header("x-slack-request-timestamp".parse()?))
///     .signs([Part::literal("v0:"), Part::Timestamp, Part::literal(":"), Part::Body])
///     .tolerance(Duration::from_secs(300))
///     .clock(|| UNIX_EPOCH + Duration::from_secs(1_531_420_618))
///     .secret("8f742231b10e8888abcd99yyyzzz85a5")
///     .build()?;
///
/// let body = Bytes::from_static(b"token=xyzz0WbapA4vBCDEFasx0q6G&command=%2Fweather");
/// let request = scheme.signed_request(body.clone(), Some(1_531_420_618), &Default::default());
/// let (head, _) = request.into_parts();
/// let signature = scheme.signature(&head)?;
/// assert_eq!(scheme.verify(&signature, &body), Ok(Signed::RawBody));
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
/// Its `Debug` output counts the keys and never shows them.
#[derive(Clone, Debug)]
pub struct Hmac {
    name: Box<str>,
    header: HeaderName,
    /// The headers [`signature`](Scheme::signature) reads, found in one pass: the signature
    /// header, the timestamp header when there is one, then the signed headers in order.
    reads: Box<[HeaderName]>,
    expected: Box<str>,
    digest: Digest,
    encoding: Encoding,
    grammar: GrammarKind,
    parts: Box<[Part]>,
    timestamp: TimestampSource,
    tolerance: Option<Duration>,
    clock: SharedClock,
    metadata: Metadata,
    key_format: KeyFormat,
    keys: Keys<Key>,
    /// The public keys of a public-key scheme, or of the public entries of a list.
    public_keys: Box<[PublicKey]>,
    /// What [`sign`](Self::sign) signs with instead of the first secret.
    signing: Option<SigningKey>,
}

impl Hmac {
    /// Starts an HMAC-SHA256 scheme reading its signature from `header`: by default one
    /// lower-case hex MAC of the raw body, no timestamp.
    pub fn sha256(header: impl Into<String>) -> HmacBuilder {
        HmacBuilder::new(header, Digest::Sha256)
    }

    /// Starts an HMAC-SHA1 scheme reading its signature from `header` (Intercom, legacy
    /// headers).
    pub fn sha1(header: impl Into<String>) -> HmacBuilder {
        HmacBuilder::new(header, Digest::Sha1)
    }

    /// Starts an Ed25519 scheme reading its signature from `header` (Discord): the same
    /// template of signed parts, header grammar, replay window and metadata as an HMAC scheme,
    /// checked with [`public_key`](HmacBuilder::public_key)s instead of secrets. By default one
    /// lower-case hex signature (128 digits) of the raw body.
    ///
    /// The type keeps the name of the HMAC schemes it began with: it is the crate's one
    /// template scheme, whatever signs.
    pub fn ed25519(header: impl Into<String>) -> HmacBuilder {
        HmacBuilder::new(header, Digest::Ed25519)
    }

    /// Starts an ECDSA P-256 / SHA-256 scheme reading its DER signature from `header`
    /// (SendGrid), checked with [`public_key`](HmacBuilder::public_key)s; see
    /// [`ed25519`](Self::ed25519).
    pub fn ecdsa_p256(header: impl Into<String>) -> HmacBuilder {
        HmacBuilder::new(header, Digest::EcdsaP256)
    }

    /// The same scheme keyed with `secrets` instead of its own: what a
    /// [`Tenanted`](crate::tenant::Tenanted) scheme builds for each tenant. Several secrets
    /// rotate as in [`HmacBuilder::secrets`]: any one matching is enough.
    ///
    /// ```
    /// use http::HeaderMap;
    /// use tower_webhook::{Secret, provider::github};
    ///
    /// let scheme = github::scheme().secret("first").build()?;
    /// let other = scheme.with_secrets(&[Secret::from("second")])?;
    /// assert_ne!(
    ///     scheme.sign(b"{}", None, &HeaderMap::new()),
    ///     other.sign(b"{}", None, &HeaderMap::new())
    /// );
    /// # Ok::<_, tower_webhook::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoSecret`], [`ConfigError::EmptySecret`] or
    /// [`ConfigError::InvalidSecret`] (a secret not in the scheme's [`KeyFormat`]).
    /// The scheme's own public keys and signing key are not carried over: the secrets are all
    /// the new scheme checks.
    pub fn with_secrets(&self, secrets: &[Secret]) -> Result<Self, ConfigError> {
        Ok(Self {
            keys: builder::keys(self.digest, self.key_format, secrets)?,
            public_keys: Box::default(),
            signing: None,
            ..self.clone()
        })
    }

    /// The header the signature is read from.
    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    /// The replay window, when the scheme signs a timestamp and checks one.
    pub fn tolerance(&self) -> Option<Duration> {
        self.tolerance
    }

    /// The headers a sender using the signing key ([`HmacBuilder::signing_key`]), or else the
    /// first configured secret, puts on `body`: the signature header (none with neither), and
    /// the timestamp header when the scheme has one. `timestamp` (Unix seconds)
    /// is what is signed, the clock's time when `None`; values for the [`Part::Header`] parts
    /// are taken from `headers` (an absent one signs as empty) and copied into the result.
    /// Meant for tests and local tools.
    pub fn sign(&self, body: &[u8], timestamp: Option<i64>, headers: &HeaderMap) -> HeaderMap {
        let timestamp = timestamp.unwrap_or_else(|| timestamp::unix_seconds(self.clock.0.now()));
        let timestamp_text = timestamp.to_string();
        let mut out = HeaderMap::new();
        let mut message = Vec::new();
        for part in self.parts.iter() {
            match part {
                Part::Literal(bytes) => message.extend_from_slice(bytes),
                Part::Header(name) => {
                    if let Some(value) = headers.get(name) {
                        message.extend_from_slice(value.as_bytes());
                        out.insert(name.clone(), value.clone());
                    }
                }
                Part::Timestamp => message.extend_from_slice(timestamp_text.as_bytes()),
                Part::Body | Part::BodyOrJsonStringify { .. } => message.extend_from_slice(body),
            }
        }
        // The signing key when there is one (its signature is a public entry of a list), else
        // the first secret; with neither, no signature.
        let (encoded, public) = match (&self.signing, self.keys.first()) {
            (Some(signing), _) => {
                let encoding = match &self.grammar {
                    GrammarKind::List {
                        public_version: Some(_),
                        ..
                    } => Encoding::Base64,
                    _ => self.encoding,
                };
                (encode(encoding, &signing.sign(&message)), true)
            }
            (None, Some(key)) => {
                let mut mac = key.clone();
                mac.update(&message);
                (encode(self.encoding, mac.finalize().as_slice()), false)
            }
            (None, None) => return out,
        };
        let value = match &self.grammar {
            GrammarKind::Value { prefix } => format!("{prefix}{encoded}"),
            GrammarKind::Pairs {
                separator,
                timestamp_key,
                signature_key,
            } => format!(
                "{timestamp_key}={timestamp_text}{}{signature_key}={encoded}",
                char::from(*separator)
            ),
            GrammarKind::List {
                version,
                public_version,
            } => match public_version {
                Some(public_version) if public => format!("{public_version},{encoded}"),
                _ => format!("{version},{encoded}"),
            },
        };
        if let TimestampSource::Header(name) = &self.timestamp {
            out.insert(name.clone(), HeaderValue::from(timestamp));
        }
        out.insert(
            self.header.clone(),
            HeaderValue::from_str(&value).expect("checked to be a valid header value"),
        );
        out
    }

    /// A request a sender using the first configured secret would send: `POST /` with `body`,
    /// `Content-Type: application/json`, the given `headers` and those of [`sign`](Self::sign).
    pub fn signed_request(
        &self,
        body: impl Into<Bytes>,
        timestamp: Option<i64>,
        headers: &HeaderMap,
    ) -> Request<Full<Bytes>> {
        let body = body.into();
        let mut request = Request::new(Full::new(Bytes::new()));
        *request.method_mut() = Method::POST;
        let out = request.headers_mut();
        out.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in headers {
            out.append(name.clone(), value.clone());
        }
        out.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        for (name, value) in self.sign(&body, timestamp, headers) {
            if let Some(name) = name {
                out.insert(name, value);
            }
        }
        request.map(|_| Full::new(body))
    }

    #[cold]
    fn malformed(&self, header: &HeaderName) -> SignatureError {
        SignatureError::Malformed {
            header: header.clone(),
            expected: self.expected.to_string().into(),
        }
    }

    /// The name `name` is read under: its alias when the request uses the aliases.
    fn named<'a>(&'a self, name: &'a HeaderName, aliased: bool) -> &'a HeaderName {
        self.metadata.named(name, aliased)
    }

    /// The signature read under the signature header's alias, in a request without the
    /// signature header (a white-labelled Svix one): the alias and its one value.
    fn aliased_signature<'a>(
        &'a self,
        head: &'a HeaderMap,
    ) -> Result<(&'a HeaderName, &'a HeaderValue), SignatureError> {
        if let Some(alias) = self.metadata.alias(&self.header)
            && let Some(value) = headers::lookup(head, alias).at_most_one(alias)?
        {
            return Ok((alias, value));
        }
        Err(missing(&self.header))
    }

    /// The one value of `name`, the `index`th of [`reads`](Self::reads): what the pass over the
    /// head found, or, in a request read by the aliases, the value under its alias (looked up).
    fn read<'a>(
        &'a self,
        head: &'a HeaderMap,
        found: &[Found<'a>],
        index: usize,
        name: &'a HeaderName,
        aliased: bool,
    ) -> Result<(&'a HeaderName, &'a HeaderValue), SignatureError> {
        if aliased {
            let name = self.named(name, true);
            return Ok((name, one_value(head, name)?));
        }
        let found = found.get(index).copied().unwrap_or_default();
        Ok((name, found.one(name)?))
    }

    fn decode(&self, encoded: &[u8]) -> Option<Tag> {
        decode(self.encoding, self.digest.tag_len(), encoded)
    }

    /// Decodes one signature of the scheme's own kind into `signature`: a MAC, or a public-key
    /// signature. `None` when it is malformed, or one too many.
    fn push(&self, encoded: &[u8], signature: &mut HmacSignature) -> Option<()> {
        if signature.tags.len() + signature.public.len() >= MAX_SIGNATURES {
            return None;
        }
        if self.digest.is_public() {
            if signature.public.len() >= MAX_PUBLIC_SIGNATURES {
                return None;
            }
            let public = decode_public(self.encoding, self.digest, encoded)?;
            signature.public.push(public);
        } else {
            signature.tags.push(self.decode(encoded)?);
        }
        Some(())
    }

    /// Parses the signature header's value into `signature`, returning, for pairs, the timestamp
    /// text.
    fn parse<'v>(
        &self,
        value: &'v [u8],
        signature: &mut HmacSignature,
    ) -> Option<Option<&'v [u8]>> {
        let value = trim_ows(value);
        match &self.grammar {
            GrammarKind::Value { prefix } => {
                let encoded = if prefix.is_empty() {
                    value
                } else {
                    value.strip_prefix(prefix.as_bytes())?
                };
                self.push(encoded, signature)?;
                Some(None)
            }
            GrammarKind::Pairs {
                separator,
                timestamp_key,
                signature_key,
            } => {
                // No white space or control byte anywhere (the separator is punctuation).
                if !all_graphic(value) {
                    return None;
                }
                let mut timestamp = None;
                for (index, element) in split(value, *separator).enumerate() {
                    if index >= MAX_ELEMENTS {
                        return None;
                    }
                    let at = memchr::memchr(b'=', element)?;
                    let (key, value) = (&element[..at], &element[at + 1..]);
                    if key.is_empty() {
                        return None;
                    }
                    if key == timestamp_key.as_bytes() {
                        if timestamp.replace(value).is_some() {
                            return None;
                        }
                    } else if key == signature_key.as_bytes() {
                        self.push(value, signature)?;
                    }
                }
                (signature.any() && timestamp.is_some()).then_some(timestamp)
            }
            GrammarKind::List {
                version,
                public_version,
            } => {
                for (index, entry) in split(value, b' ').enumerate() {
                    if index >= MAX_ELEMENTS {
                        return None;
                    }
                    let at = memchr::memchr(b',', entry)?;
                    let (name, encoded) = (&entry[..at], &entry[at + 1..]);
                    if name.is_empty() || encoded.is_empty() {
                        return None;
                    }
                    if name == version.as_bytes() {
                        self.push(encoded, signature)?;
                    } else if public_version.as_deref().map(str::as_bytes) == Some(name)
                        && !self.public_keys.is_empty()
                    {
                        if signature.tags.len() + signature.public.len() >= MAX_SIGNATURES
                            || signature.public.len() >= MAX_PUBLIC_SIGNATURES
                        {
                            return None;
                        }
                        let public = decode_public(Encoding::Base64, Digest::Ed25519, encoded)?;
                        signature.public.push(public);
                    }
                }
                signature.any().then_some(None)
            }
        }
    }

    /// Whether a public key verifies one of the request's public-key signatures over the signed
    /// parts and `body`. Every pair is tried (a public key is no secret: nothing to hide in the
    /// time it takes), at most [`MAX_SIGNATURES`] signatures by the keys configured.
    fn public_matches(&self, signature: &HmacSignature, body: &[u8]) -> bool {
        if signature.public.is_empty() || self.public_keys.is_empty() {
            return false;
        }
        let prefix = signature.prefix.as_slice();
        let mut message = Vec::with_capacity(prefix.len() + body.len());
        message.extend_from_slice(prefix);
        message.extend_from_slice(body);
        self.public_keys.iter().any(|key| {
            signature
                .public
                .iter()
                .any(|public| key.verifies(&message, public))
        })
    }

    /// Whether `tag` is one of `tags`, in constant time for each: every tag is compared whole
    /// (the differences of all its bytes or-ed together, then one constant-time test), whether or
    /// not an earlier one matched.
    fn any_matches(tag: &Tag, tags: &Few<Tag, 1>) -> bool {
        tags.iter()
            .fold(false, |found, candidate| found | candidate.matches(tag))
    }

    /// Checks the replay window on a matched signature.
    fn check_window(&self, signature: &HmacSignature, signed: &[u8]) -> Result<(), SignatureError> {
        let Some(tolerance) = self.tolerance else {
            return Ok(());
        };
        let millis = match &self.timestamp {
            TimestampSource::None => return Ok(()),
            TimestampSource::Header(_) | TimestampSource::SignatureHeader => {
                match signature.timestamp {
                    Some(seconds) => i128::from(seconds) * 1000,
                    None => return Ok(()),
                }
            }
            TimestampSource::BodyField { field, unit } => {
                timestamp::body_field_millis(signed, field, *unit).ok_or_else(|| {
                    SignatureError::other(format!(
                        "the signed body has no valid `{field}` timestamp ({})",
                        unit.describe()
                    ))
                })?
            }
        };
        timestamp::check(millis, self.clock.0.now(), tolerance)
    }
}

impl Scheme for Hmac {
    type Signature = HmacSignature;

    fn signature(&self, head: &Parts) -> Result<HmacSignature, SignatureError> {
        // Every header the scheme reads, found in one pass over the head (see `reads`).
        let mut inline = [Found::Absent; READ_INLINE];
        let mut spilled = Vec::new();
        let found: &mut [Found<'_>] = if self.reads.len() <= READ_INLINE {
            &mut inline
        } else {
            spilled.resize(self.reads.len(), Found::Absent);
            &mut spilled
        };
        headers::find(&head.headers, &self.reads, found);
        let found = &*found;
        let first = found.first().copied().unwrap_or_default();
        let (aliased, signature_header, value) = match first.at_most_one(&self.header)? {
            Some(value) => (false, &self.header, value),
            None => {
                let (alias, value) = self.aliased_signature(&head.headers)?;
                (true, alias, value)
            }
        };
        // Built in place: the signature is a few hundred bytes, not worth moving around.
        let mut signature = HmacSignature {
            tags: Few::new(),
            public: Vec::new(),
            timestamp: None,
            prefix: Prefix::new(),
        };
        let pair_timestamp = self
            .parse(value.as_bytes(), &mut signature)
            .ok_or_else(|| self.malformed(signature_header))?;
        let mut index = 1;
        let (timestamp_text, timestamp_header) = match &self.timestamp {
            TimestampSource::Header(name) => {
                let (name, value) = self.read(&head.headers, found, index, name, aliased)?;
                index += 1;
                (Some(trim_ows(value.as_bytes())), name)
            }
            TimestampSource::SignatureHeader => (pair_timestamp, signature_header),
            TimestampSource::None | TimestampSource::BodyField { .. } => (None, signature_header),
        };
        if let Some(text) = timestamp_text {
            signature.timestamp =
                Some(
                    timestamp::parse_seconds(text).ok_or_else(|| SignatureError::Malformed {
                        header: timestamp_header.clone(),
                        expected: "a timestamp in Unix seconds (1 to 18 ASCII digits)".into(),
                    })?,
                );
        }
        // The signed bytes before the body (which the builder puts last), part by part.
        for (position, part) in self.parts.iter().enumerate() {
            match part {
                Part::Literal(bytes) => signature.prefix.push(bytes),
                Part::Timestamp => signature.prefix.push(timestamp_text.unwrap_or_default()),
                Part::Header(name) => {
                    let (name, value) = self.read(&head.headers, found, index, name, aliased)?;
                    index += 1;
                    // A signed header value may not contain the separator that follows it
                    // (Standard Webhooks: "the id must not contain `.`"), nor run into it (`x:`
                    // before `::`), so that no two requests sign the same bytes with a different
                    // split between the parts.
                    if let Some(Part::Literal(separator)) = self.parts.get(position + 1) {
                        let problem = if contains(value.as_bytes(), separator) {
                            Some("a value without")
                        } else if runs_into(value.as_bytes(), separator) {
                            Some("a value that does not end with the start of")
                        } else {
                            None
                        };
                        if let Some(problem) = problem {
                            let separator = String::from_utf8_lossy(separator);
                            return Err(SignatureError::Malformed {
                                header: name.clone(),
                                expected: format!("{problem} `{separator}`").into(),
                            });
                        }
                    }
                    signature.prefix.push(value.as_bytes());
                }
                Part::Body | Part::BodyOrJsonStringify { .. } => {}
            }
        }
        Ok(signature)
    }

    fn verify(&self, signature: &HmacSignature, body: &Bytes) -> Result<Signed, SignatureError> {
        // One keyed state at a time, copied once and never kept: no allocation. The prefix was
        // put together from the head (empty for a scheme that signs the body alone), so the MAC
        // reads it in one piece. A scheme with no replay window (VideoNest, GitHub, …) skips the
        // window check. A request with no MAC (only public-key signatures) computes none.
        let prefix = signature.prefix.as_slice();
        let raw = !signature.tags.is_empty()
            && self.keys.iter().fold(false, |found, key| {
                found | Self::any_matches(&key.mac(prefix, body), &signature.tags)
            });
        if raw || self.public_matches(signature, body) {
            if self.tolerance.is_some() {
                self.check_window(signature, body)?;
            }
            return Ok(Signed::RawBody);
        }
        if let Some(Part::BodyOrJsonStringify { max }) = self.parts.last()
            && body.len() <= *max
            && let Some(form) = js_json::Stringified::parse(body)
        {
            let mut keys: Vec<Key> = self
                .keys
                .iter()
                .map(|key| {
                    let mut key = key.clone();
                    key.update(prefix);
                    key
                })
                .collect();
            form.write(|chunk| keys.iter_mut().for_each(|key| key.update(chunk)));
            if keys.into_iter().fold(false, |found, key| {
                found | Self::any_matches(&key.finalize(), &signature.tags)
            }) {
                let form = Bytes::from(form.to_vec());
                self.check_window(signature, &form)?;
                return Ok(Signed::Reserialized(form));
            }
        }
        Err(SignatureError::Mismatch)
    }

    fn name(&self) -> &str {
        &self.name
    }

    /// The event type and delivery id are read where [`HmacBuilder::event_type`] and
    /// [`HmacBuilder::delivery_id`] say, in the order they list: from the head under the names
    /// the signature was read by (never the other set of a scheme with aliases), and from the
    /// signed bytes. A value is signed when the signature covers it (a field of the signed
    /// body, a header of the signed template) and every field listed before it, as the
    /// deduplication key of [`generic::Event`](crate::provider::generic::Event) judges.
    fn delivery(&self, head: &Parts, signature: &HmacSignature, signed: &Bytes) -> Delivery {
        let json = if self.metadata.needs_body() {
            serde_json::from_slice::<Value>(signed).ok()
        } else {
            None
        };
        let read = |fields: &[Field]| {
            let (value, all_signed) =
                self.metadata
                    .read_signed(fields, &head.headers, json.as_ref(), signed);
            let signed = value.is_some() && all_signed;
            (value, signed)
        };
        let (id, id_signed) = read(&self.metadata.id);
        let (event_type, event_type_signed) = read(&self.metadata.event_type);
        Delivery {
            id,
            id_signed,
            event_type,
            event_type_signed,
            timestamp: signature.timestamp,
            tenant: None,
        }
    }
}
