//! The generic HMAC scheme: any header grammar, any signed-content template, SHA-256 or SHA-1,
//! hex or base64, raw or `whsec_` keys, with an optional replay window.

use std::{fmt, sync::Arc, time::Duration};

use base64::Engine as _;
use bytes::Bytes;
use hmac::{KeyInit, Mac};
use http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request,
    header::{CONTENT_LENGTH, CONTENT_TYPE},
    request::Parts,
};
use http_body_util::Full;
use serde_json::Value;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{
    Clock, Delivery, Scheme, SignatureError, Signed, SystemClock, b64, hex, js_json,
    timestamp::{self, TimestampUnit},
};
use crate::{ConfigError, Secret};

/// The most signatures one request may carry; more is refused as malformed, so that a request
/// cannot make the scheme compute or compare without bound.
pub const MAX_SIGNATURES: usize = 16;

/// The most elements (`key=value` pairs or `version,signature` entries) a signature header may
/// hold, known or not.
pub const MAX_ELEMENTS: usize = 32;

/// The longest header value read for an event type or a delivery id; longer ones are ignored.
const MAX_METADATA_LEN: usize = 1024;

/// How each MAC is written in the signature header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Encoding {
    /// Lower-case hexadecimal (64 characters for SHA-256). Upper-case digits are refused:
    /// providers send lower case and their own verifiers compare the lower-case string.
    #[default]
    Hex,
    /// Standard base64 with padding (RFC 4648 §4), 44 characters for SHA-256.
    Base64,
}

/// The hash function of the HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Digest {
    /// SHA-256 (32-byte tags): every current provider.
    #[default]
    Sha256,
    /// SHA-1 (20-byte tags): Intercom, GitHub's and Square's legacy headers.
    Sha1,
}

impl Digest {
    fn tag_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha1 => 20,
        }
    }
}

/// How a configured secret becomes the HMAC key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KeyFormat {
    /// The secret's bytes as they are (GitHub, Stripe — whose `whsec_…` string is used whole —,
    /// Shopify, Slack, Paddle, …).
    #[default]
    Raw,
    /// Standard Webhooks: standard base64 after an optional `whsec_` prefix; the key is the
    /// decoded bytes. A secret that does not decode is a [`ConfigError::InvalidSecret`].
    WhsecBase64,
}

/// How the signature header's value is laid out.
///
/// ```
/// use tower_webhook::scheme::Grammar;
///
/// let github = Grammar::prefixed("sha256=");        // `sha256=<hex>`
/// let stripe = Grammar::pairs(',', "t", "v1");      // `t=…,v1=…[,v1=…]`
/// let paddle = Grammar::pairs(';', "ts", "h1");     // `ts=…;h1=…[;h1=…]`
/// let standard = Grammar::list("v1");               // `v1,<b64>[ v1,<b64>…]`
/// # let _ = (github, stripe, paddle, standard);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grammar(GrammarKind);

#[derive(Debug, Clone, PartialEq, Eq)]
enum GrammarKind {
    Value {
        prefix: Box<str>,
    },
    Pairs {
        separator: u8,
        timestamp_key: Box<str>,
        signature_key: Box<str>,
    },
    List {
        version: Box<str>,
    },
}

impl Grammar {
    /// One encoded MAC, with nothing before it.
    pub fn value() -> Self {
        Self::prefixed("")
    }

    /// One encoded MAC after a literal prefix, matched case-sensitively (`sha256=`, `v0=`).
    pub fn prefixed(prefix: impl Into<String>) -> Self {
        Self(GrammarKind::Value {
            prefix: prefix.into().into_boxed_str(),
        })
    }

    /// `key=value` elements joined by `separator`, with exactly one `timestamp_key` element (the
    /// signed timestamp) and one or more `signature_key` elements; elements with other keys
    /// (other versions) are ignored. No white space is allowed inside the value.
    pub fn pairs(separator: char, timestamp_key: &str, signature_key: &str) -> Self {
        let separator = u8::try_from(u32::from(separator)).unwrap_or(0);
        Self(GrammarKind::Pairs {
            separator,
            timestamp_key: timestamp_key.into(),
            signature_key: signature_key.into(),
        })
    }

    /// A list of `version,signature` entries separated by single spaces (Standard Webhooks);
    /// entries of other versions (`v1a` ed25519 signatures, later versions) are ignored. (An
    /// ed25519 scheme would read the same list for `v1a` and sign the same template of parts with
    /// a public key instead of a MAC: another [`Scheme`] beside this one.)
    pub fn list(version: &str) -> Self {
        Self(GrammarKind::List {
            version: version.into(),
        })
    }
}

/// One piece of the signed content; see [`HmacBuilder::signs`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Part {
    /// Fixed bytes: a separator (`.`, `:`), a version (`v0:`), or the notification URL that
    /// Square signs before the body.
    Literal(Bytes),
    /// The value of a request header, exactly as sent (`webhook-id`). It must appear once, and
    /// may not contain the literal that follows it in the template (an id with a `.` before
    /// `.`): otherwise the request is refused as malformed.
    Header(HeaderName),
    /// The signed timestamp's text exactly as sent, from where
    /// [`HmacBuilder::timestamp`] says.
    Timestamp,
    /// The raw body. Must be the last part.
    Body,
    /// The raw body, or else its `JSON.stringify(JSON.parse(body))` re-serialisation with exact
    /// JavaScript semantics, for bodies of up to `max` bytes (VideoAIditor). The raw bytes are
    /// always tried first; when the re-serialised form matches, it is what the event is parsed
    /// from. Must be the last part.
    ///
    /// A body whose raw bytes do not match is parsed and re-serialised *before* anything is
    /// authenticated: whoever can reach the endpoint can make the scheme do that work, up to
    /// `max` bytes a request (in time linear in the body, nesting refused past 128 levels):
    /// choose a `max` near the provider's largest payload.
    /// [`Part::body_or_json_stringify`] takes [`Part::DEFAULT_JSON_STRINGIFY_MAX`], 256 KiB, as the
    /// VideoAIditor preset does; the layer's body limit bounds it anyway.
    BodyOrJsonStringify {
        /// The largest body re-serialised.
        max: usize,
    },
}

impl Part {
    /// The largest body [`Part::body_or_json_stringify`] re-serialises: 256 KiB.
    ///
    /// VideoAIditor's payloads are a few KiB, so this leaves them ample room, while a forged
    /// request can make the fallback read no more than an eighth of the default 2 MiB body
    /// limit: at most a few milliseconds of CPU time and about 1 MiB of memory, about what
    /// checking the raw MAC of a 2 MiB body costs anyway.
    pub const DEFAULT_JSON_STRINGIFY_MAX: usize = 256 * 1024;

    /// A [`Part::BodyOrJsonStringify`] up to [`DEFAULT_JSON_STRINGIFY_MAX`](Self::DEFAULT_JSON_STRINGIFY_MAX).
    pub fn body_or_json_stringify() -> Self {
        Self::BodyOrJsonStringify {
            max: Self::DEFAULT_JSON_STRINGIFY_MAX,
        }
    }

    /// A [`Part::Literal`].
    pub fn literal(bytes: impl Into<Bytes>) -> Self {
        Self::Literal(bytes.into())
    }

    /// A [`Part::Header`].
    ///
    /// # Panics
    ///
    /// When `name` is not a valid header name (a programming error in a constant).
    pub fn header(name: &str) -> Self {
        Self::Header(HeaderName::from_bytes(name.as_bytes()).expect("a valid header name"))
    }
}

/// Where the signed timestamp is read from; see [`HmacBuilder::timestamp`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimestampSource {
    /// The scheme signs no timestamp: no replay window.
    None,
    /// A header of its own holding Unix seconds (`webhook-timestamp`,
    /// `X-Slack-Request-Timestamp`).
    Header(HeaderName),
    /// The timestamp element of a [`Grammar::pairs`] signature header (`t=`, `ts=`).
    SignatureHeader,
    /// A top-level field of the signed JSON body (Linear's `webhookTimestamp` in milliseconds,
    /// VideoNest's `timestamp` as RFC 3339). Read only after the signature matched; a signed
    /// body without it is refused.
    BodyField {
        /// The field name.
        field: String,
        /// How it is written.
        unit: TimestampUnit,
    },
}

/// Where an event type or a delivery id is read from; see [`HmacBuilder::event_type`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Field {
    /// A request header (`X-GitHub-Event`).
    Header(HeaderName),
    /// A string (or number) in the signed JSON body, by JSON pointer (`/type`, `/event/type`).
    Json(String),
    /// A field of a signed `application/x-www-form-urlencoded` body (Slack's `command`).
    Form(String),
}

impl Field {
    /// A [`Field::Header`].
    ///
    /// # Panics
    ///
    /// When `name` is not a valid header name (a programming error in a constant).
    pub fn header(name: &str) -> Self {
        Self::Header(HeaderName::from_bytes(name.as_bytes()).expect("a valid header name"))
    }

    /// A [`Field::Json`] for a JSON pointer such as `/type`.
    pub fn json(pointer: &str) -> Self {
        Self::Json(pointer.to_owned())
    }

    /// A [`Field::Form`].
    pub fn form(name: &str) -> Self {
        Self::Form(name.to_owned())
    }
}

/// Reads event types and delivery ids from the head and the signed body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Metadata {
    pub(crate) event_type: Vec<Field>,
    pub(crate) id: Vec<Field>,
    /// Other names of headers: `(name, alias)`.
    pub(crate) aliases: Vec<(HeaderName, HeaderName)>,
    /// The signature header: a request without it but with its alias is read by the aliases,
    /// every header of it (the signed ones and the metadata alike).
    pub(crate) signature_header: Option<HeaderName>,
    /// The headers the MAC covers (`Part::Header`): an id read from one of them is signed.
    pub(crate) signed_headers: Vec<HeaderName>,
}

impl Metadata {
    fn needs_body(&self) -> bool {
        self.event_type
            .iter()
            .chain(&self.id)
            .any(|field| !matches!(field, Field::Header(_)))
    }

    /// The alias of header `name`, if it has one.
    fn alias(&self, name: &HeaderName) -> Option<&HeaderName> {
        self.aliases
            .iter()
            .find_map(|(primary, alias)| (primary == name).then_some(alias))
    }

    /// Whether `head` is read by the aliases: it lacks the signature header and has its alias.
    fn aliased(&self, head: &HeaderMap) -> bool {
        // A scheme without aliases (every preset but two) looks nothing up.
        self.signature_header.as_ref().is_some_and(|signature| {
            self.alias(signature)
                .is_some_and(|alias| !head.contains_key(signature) && head.contains_key(alias))
        })
    }

    /// The name header `name` goes by in a request read by the aliases (`aliased`) or not.
    fn named<'a>(&'a self, name: &'a HeaderName, aliased: bool) -> &'a HeaderName {
        match self.alias(name) {
            Some(alias) if aliased => alias,
            _ => name,
        }
    }

    /// A header's text, under the one name the request's header set gives it: never the other
    /// set's, which the signature did not cover (a white-labelled Svix request signs
    /// `webhook-id`; an added `svix-id` must not replace it).
    fn header(&self, head: &HeaderMap, name: &HeaderName) -> Option<String> {
        header_text(head, self.named(name, self.aliased(head)))
    }

    /// Whether a value read from `field` is covered by the signature: a field of the signed body
    /// is, a header is when the MAC covers it (a [`Part::Header`] of the template). GitHub's and
    /// Shopify's event type and id headers are not.
    pub(crate) fn is_signed(&self, field: &Field) -> bool {
        match field {
            Field::Header(name) => self.signed_headers.contains(name),
            Field::Json(_) | Field::Form(_) => true,
        }
    }

    /// The first of `fields` found, as [`read`](Self::read) finds it, and whether what was read
    /// is decided by signed data alone: the field it came from is signed, and so is every field
    /// before it in the list (or every field, when none is found).
    ///
    /// A signed field after an unsigned header is not enough: whoever replays a captured
    /// request can add that header, or take it away, and so choose between the two values.
    pub(crate) fn read_signed(
        &self,
        fields: &[Field],
        head: &HeaderMap,
        json: Option<&Value>,
        body: &[u8],
    ) -> (Option<String>, bool) {
        let mut signed = true;
        for field in fields {
            signed &= self.is_signed(field);
            if let Some(value) = self.read(std::slice::from_ref(field), Some(head), json, body) {
                return (Some(value), signed);
            }
        }
        (None, signed)
    }

    /// The first of `fields` found, in the head or in the body.
    pub(crate) fn read(
        &self,
        fields: &[Field],
        head: Option<&HeaderMap>,
        json: Option<&Value>,
        body: &[u8],
    ) -> Option<String> {
        fields.iter().find_map(|field| match field {
            Field::Header(name) => head.and_then(|head| self.header(head, name)),
            Field::Json(pointer) => match json?.pointer(pointer)? {
                Value::String(text) => Some(text.clone()),
                Value::Number(number) => Some(number.to_string()),
                _ => None,
            },
            Field::Form(name) => form_field(body, name),
        })
    }
}

/// The headers a signed-content template covers.
fn signed_headers(parts: &[Part]) -> Vec<HeaderName> {
    parts
        .iter()
        .filter_map(|part| match part {
            Part::Header(name) => Some(name.clone()),
            _ => None,
        })
        .collect()
}

fn header_text(head: &HeaderMap, name: &HeaderName) -> Option<String> {
    value_text(head.get(name)?)
}

/// A metadata header's text: UTF-8 and at most [`MAX_METADATA_LEN`] bytes, or nothing.
fn value_text(value: &HeaderValue) -> Option<String> {
    if value.len() > MAX_METADATA_LEN {
        return None;
    }
    value.to_str().ok().map(str::to_owned)
}

/// The first value of `name` in a form-encoded body, percent-decoded.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    body.split(|b| *b == b'&').find_map(|pair| {
        let (key, value) = match pair.iter().position(|b| *b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &[][..]),
        };
        (percent_decode(key)? == name.as_bytes())
            .then(|| percent_decode(value))
            .flatten()
            .and_then(|value| String::from_utf8(value).ok())
    })
}

fn percent_decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = (*bytes.next()? as char).to_digit(16)?;
                let lo = (*bytes.next()? as char).to_digit(16)?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
            }
            other => out.push(other),
        }
    }
    Some(out)
}

/// A keyed HMAC state of either digest.
#[derive(Clone)]
enum Key {
    Sha256(hmac::Hmac<sha2::Sha256>),
    Sha1(hmac::Hmac<sha1::Sha1>),
}

impl Key {
    fn new(digest: Digest, key: &[u8]) -> Self {
        match digest {
            Digest::Sha256 => Self::Sha256(
                hmac::Hmac::new_from_slice(key).expect("HMAC accepts keys of any length"),
            ),
            Digest::Sha1 => Self::Sha1(
                hmac::Hmac::new_from_slice(key).expect("HMAC accepts keys of any length"),
            ),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha256(mac) => mac.update(data),
            Self::Sha1(mac) => mac.update(data),
        }
    }

    fn finalize(self) -> Tag {
        let mut tag = Tag {
            bytes: [0; 32],
            len: 0,
        };
        match self {
            Self::Sha256(mac) => {
                tag.bytes.copy_from_slice(&mac.finalize().into_bytes());
                tag.len = 32;
            }
            Self::Sha1(mac) => {
                tag.bytes[..20].copy_from_slice(&mac.finalize().into_bytes());
                tag.len = 20;
            }
        }
        tag
    }
}

/// A decoded MAC.
#[derive(Clone, Copy)]
struct Tag {
    bytes: [u8; 32],
    len: u8,
}

impl Tag {
    fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// What [`Hmac`] reads from the request head: the decoded signatures, the signed timestamp and
/// the signed header values. Its `Debug` output shows how many signatures it holds, not them.
#[derive(Clone)]
pub struct HmacSignature {
    tags: Few<Tag, 1>,
    timestamp: Option<Timestamp>,
    headers: Few<HeaderValue, 1>,
}

impl fmt::Debug for HmacSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacSignature")
            .field("signatures", &self.tags.len())
            .field("timestamp", &self.timestamp.as_ref().map(|t| t.seconds))
            .finish_non_exhaustive()
    }
}

/// Up to `N` values inline and any more on the heap: the usual one signature and signed header
/// of a request cost no allocation (a second signature, sent while a provider rotates its
/// secret, does), and the signature stays small to move.
#[derive(Clone)]
struct Few<T, const N: usize> {
    inline: [Option<T>; N],
    spilled: Vec<T>,
}

impl<T, const N: usize> Few<T, N> {
    fn new() -> Self {
        Self {
            inline: std::array::from_fn(|_| None),
            spilled: Vec::new(),
        }
    }

    fn push(&mut self, value: T) {
        match self.inline.iter_mut().find(|slot| slot.is_none()) {
            Some(slot) => *slot = Some(value),
            None => self.spilled.push(value),
        }
    }

    fn len(&self) -> usize {
        self.inline.iter().flatten().count() + self.spilled.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.inline.iter().flatten().chain(&self.spilled)
    }
}

/// A signed timestamp: its exact text (at most 18 digits, or it does not parse) and its value.
#[derive(Clone, Copy)]
struct Timestamp {
    text: [u8; timestamp::MAX_DIGITS],
    len: u8,
    seconds: i64,
}

impl Timestamp {
    /// Parses `text` as Unix seconds.
    fn parse(text: &[u8]) -> Option<Self> {
        let seconds = timestamp::parse_seconds(text)?;
        let mut stamp = Self {
            text: [0; timestamp::MAX_DIGITS],
            len: u8::try_from(text.len()).ok()?,
            seconds,
        };
        stamp.text.get_mut(..text.len())?.copy_from_slice(text);
        Some(stamp)
    }

    fn text(&self) -> &[u8] {
        &self.text[..usize::from(self.len)]
    }
}

/// A generic HMAC signature scheme: every provider that signs a template of header values and
/// the body with HMAC-SHA256 or HMAC-SHA1. The presets in [`provider`](crate::provider) are
/// thin constructors over it.
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
#[derive(Clone)]
pub struct Hmac {
    name: Box<str>,
    header: HeaderName,
    expected: Box<str>,
    digest: Digest,
    encoding: Encoding,
    grammar: GrammarKind,
    parts: Box<[Part]>,
    timestamp: TimestampSource,
    tolerance: Option<Duration>,
    clock: Arc<dyn Clock>,
    metadata: Metadata,
    keys: Box<[Key]>,
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

    /// The header the signature is read from.
    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    /// The replay window, when the scheme signs a timestamp and checks one.
    pub fn tolerance(&self) -> Option<Duration> {
        self.tolerance
    }

    /// The headers a sender using the first configured secret puts on `body`: the signature
    /// header, and the timestamp header when the scheme has one. `timestamp` (Unix seconds)
    /// is what is signed, the clock's time when `None`; values for the [`Part::Header`] parts
    /// are taken from `headers` (an absent one signs as empty) and copied into the result.
    /// Meant for tests and local tools.
    pub fn sign(&self, body: &[u8], timestamp: Option<i64>, headers: &HeaderMap) -> HeaderMap {
        let timestamp = timestamp.unwrap_or_else(|| timestamp::unix_seconds(self.clock.now()));
        let timestamp_text = timestamp.to_string();
        let mut out = HeaderMap::new();
        let mut mac = self.keys[0].clone();
        for part in self.parts.iter() {
            match part {
                Part::Literal(bytes) => mac.update(bytes),
                Part::Header(name) => {
                    if let Some(value) = headers.get(name) {
                        mac.update(value.as_bytes());
                        out.insert(name.clone(), value.clone());
                    }
                }
                Part::Timestamp => mac.update(timestamp_text.as_bytes()),
                Part::Body | Part::BodyOrJsonStringify { .. } => mac.update(body),
            }
        }
        let encoded = encode(self.encoding, mac.finalize().as_slice());
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
            GrammarKind::List { version } => format!("{version},{encoded}"),
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

    /// The one value of `name`, or why not.
    fn single<'a>(
        head: &'a HeaderMap,
        name: &HeaderName,
    ) -> Result<&'a HeaderValue, SignatureError> {
        let mut values = head.get_all(name).iter();
        let value = values.next().ok_or_else(|| SignatureError::Missing {
            header: name.clone(),
        })?;
        if values.next().is_some() {
            return Err(SignatureError::Repeated {
                header: name.clone(),
            });
        }
        Ok(value)
    }

    /// The signature header's one value, the name it was read under, and whether the request
    /// is read by the aliases (it lacks the signature header and has its alias).
    fn signature_value<'a>(
        &'a self,
        head: &'a HeaderMap,
    ) -> Result<(bool, &'a HeaderName, &'a HeaderValue), SignatureError> {
        if let Some(value) = Self::at_most_one(head, &self.header)? {
            return Ok((false, &self.header, value));
        }
        if let Some(alias) = self.metadata.alias(&self.header)
            && let Some(value) = Self::at_most_one(head, alias)?
        {
            return Ok((true, alias, value));
        }
        Err(SignatureError::Missing {
            header: self.header.clone(),
        })
    }

    /// The one value of `name`, nothing when it is absent, or an error when it is repeated.
    fn at_most_one<'a>(
        head: &'a HeaderMap,
        name: &HeaderName,
    ) -> Result<Option<&'a HeaderValue>, SignatureError> {
        let mut values = head.get_all(name).iter();
        match (values.next(), values.next()) {
            (Some(_), Some(_)) => Err(SignatureError::Repeated {
                header: name.clone(),
            }),
            (value, _) => Ok(value),
        }
    }

    fn decode(&self, encoded: &[u8]) -> Option<Tag> {
        decode(self.encoding, self.digest.tag_len(), encoded)
    }

    /// Parses the signature header's value into tags and, for pairs, the timestamp text.
    fn parse<'v>(&self, value: &'v [u8]) -> Option<(Few<Tag, 1>, Option<&'v [u8]>)> {
        let value = trim_ows(value);
        match &self.grammar {
            GrammarKind::Value { prefix } => {
                let encoded = if prefix.is_empty() {
                    value
                } else {
                    value.strip_prefix(prefix.as_bytes())?
                };
                let mut tags = Few::new();
                tags.push(self.decode(encoded)?);
                Some((tags, None))
            }
            GrammarKind::Pairs {
                separator,
                timestamp_key,
                signature_key,
            } => {
                // No white space or control byte anywhere (the separator is punctuation): one
                // pass over the value, with no early exit to slow it down.
                if !value.iter().fold(true, |ok, b| ok & b.is_ascii_graphic()) {
                    return None;
                }
                let mut tags = Few::new();
                let mut timestamp = None;
                for (index, element) in value.split(|b| b == separator).enumerate() {
                    if index >= MAX_ELEMENTS {
                        return None;
                    }
                    let at = element.iter().position(|b| *b == b'=')?;
                    let (key, value) = (&element[..at], &element[at + 1..]);
                    if key.is_empty() {
                        return None;
                    }
                    if key == timestamp_key.as_bytes() {
                        if timestamp.replace(value).is_some() {
                            return None;
                        }
                    } else if key == signature_key.as_bytes() {
                        if tags.len() == MAX_SIGNATURES {
                            return None;
                        }
                        tags.push(self.decode(value)?);
                    }
                }
                (!tags.is_empty() && timestamp.is_some()).then_some((tags, timestamp))
            }
            GrammarKind::List { version } => {
                let mut tags = Few::new();
                for (index, entry) in value.split(|b| *b == b' ').enumerate() {
                    if index >= MAX_ELEMENTS {
                        return None;
                    }
                    let at = entry.iter().position(|b| *b == b',')?;
                    let (name, signature) = (&entry[..at], &entry[at + 1..]);
                    if name.is_empty() || signature.is_empty() {
                        return None;
                    }
                    if name == version.as_bytes() {
                        if tags.len() == MAX_SIGNATURES {
                            return None;
                        }
                        tags.push(self.decode(signature)?);
                    }
                }
                (!tags.is_empty()).then_some((tags, None))
            }
        }
    }

    /// Whether `tag` is one of `tags`, in constant time for each: every tag is compared whole
    /// (the differences of all its bytes or-ed together, then one constant-time test), whether or
    /// not an earlier one matched.
    fn any_matches(tag: &Tag, tags: &Few<Tag, 1>) -> bool {
        tags.iter().fold(false, |found, candidate| {
            let (a, b) = (candidate.as_slice(), tag.as_slice());
            let diff = a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y));
            found | (a.len() == b.len() && bool::from(diff.ct_eq(&0)))
        })
    }

    /// A copy of the keyed state `key` with every part before the body fed in.
    fn prefixed(&self, key: &Key, signature: &HmacSignature) -> Key {
        let mut key = key.clone();
        let mut headers = signature.headers.iter();
        for part in self.parts.iter() {
            let bytes: &[u8] = match part {
                Part::Literal(bytes) => bytes,
                Part::Header(_) => headers.next().map_or(&[][..], HeaderValue::as_bytes),
                Part::Timestamp => signature
                    .timestamp
                    .as_ref()
                    .map_or(&[][..], Timestamp::text),
                Part::Body | Part::BodyOrJsonStringify { .. } => break,
            };
            key.update(bytes);
        }
        key
    }

    /// Checks the replay window on a matched signature.
    fn check_window(&self, signature: &HmacSignature, signed: &[u8]) -> Result<(), SignatureError> {
        let Some(tolerance) = self.tolerance else {
            return Ok(());
        };
        let millis = match &self.timestamp {
            TimestampSource::None => return Ok(()),
            TimestampSource::Header(_) | TimestampSource::SignatureHeader => {
                match &signature.timestamp {
                    Some(timestamp) => i128::from(timestamp.seconds) * 1000,
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
        timestamp::check(millis, self.clock.now(), tolerance)
    }
}

impl Scheme for Hmac {
    type Signature = HmacSignature;

    fn signature(&self, head: &Parts) -> Result<HmacSignature, SignatureError> {
        let (aliased, signature_header, value) = self.signature_value(&head.headers)?;
        let (tags, pair_timestamp) = self
            .parse(value.as_bytes())
            .ok_or_else(|| self.malformed(signature_header))?;
        let (timestamp_text, timestamp_header) = match &self.timestamp {
            TimestampSource::Header(name) => {
                let name = self.named(name, aliased);
                let value = Self::single(&head.headers, name)?;
                (Some(trim_ows(value.as_bytes())), name)
            }
            TimestampSource::SignatureHeader => (pair_timestamp, signature_header),
            TimestampSource::None | TimestampSource::BodyField { .. } => (None, signature_header),
        };
        let timestamp = match timestamp_text {
            Some(text) => {
                Some(
                    Timestamp::parse(text).ok_or_else(|| SignatureError::Malformed {
                        header: timestamp_header.clone(),
                        expected: "a timestamp in Unix seconds (1 to 18 ASCII digits)".into(),
                    })?,
                )
            }
            None => None,
        };
        let mut headers = Few::new();
        for (index, part) in self.parts.iter().enumerate() {
            if let Part::Header(name) = part {
                let name = self.named(name, aliased);
                let value = Self::single(&head.headers, name)?;
                // A signed header value may not contain the separator that follows it (Standard
                // Webhooks: "the id must not contain `.`"), so that no two requests sign the same
                // bytes with a different split between the parts.
                if let Some(Part::Literal(separator)) = self.parts.get(index + 1)
                    && contains(value.as_bytes(), separator)
                {
                    return Err(SignatureError::Malformed {
                        header: name.clone(),
                        expected: format!(
                            "a value without `{}`",
                            String::from_utf8_lossy(separator)
                        )
                        .into(),
                    });
                }
                headers.push(value.clone());
            }
        }
        Ok(HmacSignature {
            tags,
            timestamp,
            headers,
        })
    }

    fn verify(&self, signature: &HmacSignature, body: &Bytes) -> Result<Signed, SignatureError> {
        // One keyed state at a time, copied once and never kept: no allocation.
        let raw = self.keys.iter().fold(false, |found, key| {
            let mut key = self.prefixed(key, signature);
            key.update(body);
            found | Self::any_matches(&key.finalize(), &signature.tags)
        });
        if raw {
            self.check_window(signature, body)?;
            return Ok(Signed::RawBody);
        }
        if let Some(Part::BodyOrJsonStringify { max }) = self.parts.last()
            && body.len() <= *max
            && let Some(form) = js_json::Stringified::parse(body)
        {
            let mut keys: Vec<Key> = self
                .keys
                .iter()
                .map(|key| self.prefixed(key, signature))
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
            timestamp: signature
                .timestamp
                .as_ref()
                .map(|timestamp| timestamp.seconds),
        }
    }
}

/// The scheme's name, header, the signature's format (digest, encoding and grammar, in words),
/// what is signed and the replay window, and how many keys it holds, never what they are.
impl fmt::Debug for Hmac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hmac")
            .field("name", &self.name)
            .field("header", &self.header)
            .field("expected", &self.expected)
            .field("parts", &self.parts)
            .field("tolerance", &self.tolerance)
            .field("keys", &format_args!("[{} redacted]", self.keys.len()))
            .finish_non_exhaustive()
    }
}

/// Builder for [`Hmac`]; see [`Hmac::sha256`].
#[must_use]
#[derive(Clone)]
pub struct HmacBuilder {
    name: String,
    header: String,
    digest: Digest,
    encoding: Encoding,
    grammar: Grammar,
    parts: Vec<Part>,
    timestamp: TimestampSource,
    tolerance: Option<Duration>,
    clock: Arc<dyn Clock>,
    metadata: Metadata,
    key_format: KeyFormat,
    secrets: Vec<Secret>,
}

impl HmacBuilder {
    /// The default replay window: 5 minutes either way.
    pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

    fn new(header: impl Into<String>, digest: Digest) -> Self {
        Self {
            name: "hmac".into(),
            header: header.into(),
            digest,
            encoding: Encoding::Hex,
            grammar: Grammar::value(),
            parts: vec![Part::Body],
            timestamp: TimestampSource::None,
            tolerance: None,
            clock: Arc::new(SystemClock),
            metadata: Metadata::default(),
            key_format: KeyFormat::Raw,
            secrets: Vec::new(),
        }
    }

    /// The name recorded in [`Verified::provider`](crate::Verified::provider); `"hmac"` unless
    /// set.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// How each MAC is encoded; lower-case hex unless set.
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// How the signature header is laid out; [`Grammar::value`] unless set.
    pub fn grammar(mut self, grammar: Grammar) -> Self {
        self.grammar = grammar;
        self
    }

    /// What is signed, in order: the MAC is fed each part in turn (the body is never copied into
    /// a concatenation). `[Part::Body]` unless set; the body part must come last, once.
    pub fn signs(mut self, parts: impl IntoIterator<Item = Part>) -> Self {
        self.parts = parts.into_iter().collect();
        self
    }

    /// Where the signed timestamp is; none unless set. Setting one turns on the replay window
    /// with [`DEFAULT_TOLERANCE`](Self::DEFAULT_TOLERANCE) unless [`tolerance`](Self::tolerance)
    /// says otherwise.
    pub fn timestamp(mut self, source: TimestampSource) -> Self {
        self.timestamp = source;
        self
    }

    /// The replay window: a signed timestamp further than this from the clock, in the past or
    /// in the future, is refused with [`SignatureError::OutOfTolerance`] (after the signature
    /// matched).
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = Some(tolerance);
        self
    }

    /// The clock the replay window reads: the system clock unless set. Any
    /// `Fn() -> SystemTime` is one, so tests pass a fixed time and never sleep.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Where the event type is read from, the first found of `fields`; recorded in
    /// [`Verified::event_type`](crate::Verified::event_type).
    pub fn event_type(mut self, fields: impl IntoIterator<Item = Field>) -> Self {
        self.metadata.event_type = fields.into_iter().collect();
        self
    }

    /// Where the delivery id is read from, the first found of `fields`; recorded in
    /// [`Verified::delivery_id`](crate::Verified::delivery_id).
    pub fn delivery_id(mut self, fields: impl IntoIterator<Item = Field>) -> Self {
        self.metadata.id = fields.into_iter().collect();
        self
    }

    /// Another name for `header` (the signature header, a timestamp header, a signed header or
    /// one an event type or id is read from). When the signature header is absent and its alias
    /// is present, every header is read by its alias: Svix's white-labelled `webhook-*` names,
    /// Shopify's Events webhooks without `X-`.
    ///
    /// # Panics
    ///
    /// When either is not a valid header name (a programming error in a constant).
    pub fn alias(mut self, header: &str, alias: &str) -> Self {
        let parse =
            |name: &str| HeaderName::from_bytes(name.as_bytes()).expect("a valid header name");
        self.metadata.aliases.push((parse(header), parse(alias)));
        self
    }

    /// How each secret becomes the key; [`KeyFormat::Raw`] unless set.
    pub fn key_format(mut self, format: KeyFormat) -> Self {
        self.key_format = format;
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

    /// What the scheme reads besides the signature, with the signature header it will have
    /// (`None` when the name is invalid: `build` refuses it).
    pub(crate) fn metadata(&self) -> Metadata {
        Metadata {
            signature_header: HeaderName::from_bytes(self.header.as_bytes()).ok(),
            signed_headers: signed_headers(&self.parts),
            ..self.metadata.clone()
        }
    }

    /// Checks the configuration and prepares one keyed HMAC state per secret.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoSecret`], [`ConfigError::EmptySecret`], [`ConfigError::InvalidSecret`]
    /// (a `whsec_` secret that is not base64), [`ConfigError::InvalidHeaderName`],
    /// [`ConfigError::InvalidPrefix`], or [`ConfigError::InvalidScheme`] (no body part, or one
    /// that is not last; a timestamp part with no timestamp header, or a timestamp header that
    /// is not signed; a pairs grammar without its timestamp source; grammar keys that cannot be
    /// written in a header).
    pub fn build(self) -> Result<Hmac, ConfigError> {
        let header = HeaderName::from_bytes(self.header.as_bytes()).map_err(|_| {
            ConfigError::InvalidHeaderName {
                name: self.header.clone(),
            }
        })?;
        let grammar = self.grammar.0;
        let invalid = |reason: &'static str| Err(ConfigError::InvalidScheme { reason });
        match &grammar {
            GrammarKind::Value { prefix } => {
                if HeaderValue::from_str(prefix).is_err() {
                    return Err(ConfigError::InvalidPrefix {
                        prefix: prefix.to_string(),
                    });
                }
            }
            GrammarKind::Pairs {
                separator,
                timestamp_key,
                signature_key,
            } => {
                let key_ok = |key: &str| {
                    !key.is_empty()
                        && key
                            .bytes()
                            .all(|b| b.is_ascii_graphic() && b != b'=' && b != *separator)
                };
                if !separator.is_ascii_punctuation()
                    || *separator == b'='
                    || !key_ok(timestamp_key)
                    || !key_ok(signature_key)
                    || timestamp_key == signature_key
                {
                    return invalid(
                        "a pairs grammar needs an ASCII punctuation separator and two distinct \
                         keys of visible ASCII without `=` or the separator",
                    );
                }
                if self.timestamp != TimestampSource::SignatureHeader {
                    return invalid(
                        "a pairs grammar carries the timestamp: use TimestampSource::SignatureHeader",
                    );
                }
            }
            GrammarKind::List { version } => {
                if version.is_empty() || !version.bytes().all(|b| b.is_ascii_graphic() && b != b',')
                {
                    return invalid(
                        "a list grammar needs a version of visible ASCII without commas",
                    );
                }
            }
        }
        if self.timestamp == TimestampSource::SignatureHeader
            && !matches!(grammar, GrammarKind::Pairs { .. })
        {
            return invalid("TimestampSource::SignatureHeader needs a pairs grammar");
        }
        let bodies = self
            .parts
            .iter()
            .filter(|part| matches!(part, Part::Body | Part::BodyOrJsonStringify { .. }))
            .count();
        if bodies != 1
            || !matches!(
                self.parts.last(),
                Some(Part::Body | Part::BodyOrJsonStringify { .. })
            )
        {
            return invalid("the signed content needs exactly one body part, last");
        }
        let signs_timestamp = self.parts.contains(&Part::Timestamp);
        let header_timestamp = matches!(
            self.timestamp,
            TimestampSource::Header(_) | TimestampSource::SignatureHeader
        );
        if signs_timestamp && !header_timestamp {
            return invalid("Part::Timestamp needs a timestamp header or a pairs grammar");
        }
        if header_timestamp && !signs_timestamp {
            // An unsigned timestamp proves nothing: a replay would just carry a fresh one.
            return invalid("a timestamp header must be signed: add Part::Timestamp");
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
                let key = derive_key(self.key_format, secret.expose())
                    .ok_or(ConfigError::InvalidSecret { index })?;
                if key.is_empty() {
                    return Err(ConfigError::EmptySecret { index });
                }
                Ok(Key::new(self.digest, &key))
            })
            .collect::<Result<Box<[_]>, _>>()?;
        let tolerance = match self.timestamp {
            TimestampSource::None => None,
            _ => Some(self.tolerance.unwrap_or(Self::DEFAULT_TOLERANCE)),
        };
        let digits = match (self.encoding, self.digest) {
            (Encoding::Hex, Digest::Sha256) => "64 lower-case hex digits",
            (Encoding::Hex, Digest::Sha1) => "40 lower-case hex digits",
            (Encoding::Base64, Digest::Sha256) => "44 characters of padded standard base64",
            (Encoding::Base64, Digest::Sha1) => "28 characters of padded standard base64",
        };
        let expected = match &grammar {
            GrammarKind::Value { prefix } if prefix.is_empty() => digits.to_owned(),
            GrammarKind::Value { prefix } => format!("`{prefix}` followed by {digits}"),
            GrammarKind::Pairs {
                separator,
                timestamp_key,
                signature_key,
            } => format!(
                "`{timestamp_key}=<unix seconds>{sep}{signature_key}=<MAC>[{sep}{signature_key}=<MAC>…]` \
                 with no white space, each MAC {digits}",
                sep = char::from(*separator)
            ),
            GrammarKind::List { version } => {
                format!("space-separated `{version},<MAC>` entries, each MAC {digits}")
            }
        };
        let covered = signed_headers(&self.parts);
        Ok(Hmac {
            name: self.name.into_boxed_str(),
            expected: expected.into_boxed_str(),
            digest: self.digest,
            encoding: self.encoding,
            grammar,
            parts: self.parts.into_boxed_slice(),
            timestamp: self.timestamp,
            tolerance,
            clock: self.clock,
            metadata: Metadata {
                signature_header: Some(header.clone()),
                signed_headers: covered,
                ..self.metadata
            },
            header,
            keys,
        })
    }
}

impl fmt::Debug for HmacBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacBuilder")
            .field("name", &self.name)
            .field("header", &self.header)
            .field("digest", &self.digest)
            .field("encoding", &self.encoding)
            .field("grammar", &self.grammar)
            .field("parts", &self.parts)
            .field("timestamp", &self.timestamp)
            .field("tolerance", &self.tolerance)
            .field("key_format", &self.key_format)
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .finish_non_exhaustive()
    }
}

fn derive_key(format: KeyFormat, secret: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    match format {
        KeyFormat::Raw => Some(Zeroizing::new(secret.to_vec())),
        KeyFormat::WhsecBase64 => {
            let encoded = secret.strip_prefix(b"whsec_").unwrap_or(secret);
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
                .map(Zeroizing::new)
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn encode(encoding: Encoding, tag: &[u8]) -> String {
    match encoding {
        Encoding::Hex => tag
            .iter()
            .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0x0f)]])
            .map(char::from)
            .collect(),
        Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(tag),
    }
}

fn decode(encoding: Encoding, len: usize, encoded: &[u8]) -> Option<Tag> {
    let mut tag = Tag {
        bytes: [0; 32],
        len: u8::try_from(len).ok()?,
    };
    match encoding {
        Encoding::Hex => {
            if !hex::decode_lower(encoded, tag.bytes.get_mut(..len)?) {
                return None;
            }
        }
        Encoding::Base64 => {
            if !b64::decode_canonical(encoded, tag.bytes.get_mut(..len)?) {
                return None;
            }
        }
    }
    Some(tag)
}

/// Whether `needle` occurs in `haystack` (never, when it is empty).
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    match needle {
        [] => false,
        [byte] => haystack.contains(byte),
        _ => haystack
            .windows(needle.len())
            .any(|window| window == needle),
    }
}

/// Strips the optional white space (space, tab) that HTTP allows around a field value.
fn trim_ows(value: &[u8]) -> &[u8] {
    let start = value.iter().position(|b| !matches!(b, b' ' | b'\t'));
    let end = value.iter().rposition(|b| !matches!(b, b' ' | b'\t'));
    match (start, end) {
        (Some(start), Some(end)) => &value[start..=end],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use http::Request;

    use super::*;

    /// The signature header's value `scheme` puts on `body`.
    fn sign(scheme: &Hmac, body: &[u8]) -> HeaderValue {
        scheme.sign(body, None, &HeaderMap::new())[scheme.header()].clone()
    }

    fn head(values: &[&[u8]]) -> Parts {
        let mut request = Request::post("/").body(()).unwrap();
        for value in values {
            request
                .headers_mut()
                .append("x-sig", HeaderValue::from_bytes(value).unwrap());
        }
        request.into_parts().0
    }

    fn scheme(encoding: Encoding, prefix: &str) -> Hmac {
        Hmac::sha256("X-Sig")
            .encoding(encoding)
            .grammar(Grammar::prefixed(prefix))
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
            let value = sign(&scheme, &body);
            let signature = scheme.signature(&head(&[value.as_bytes()])).unwrap();
            assert_eq!(scheme.verify(&signature, &body), Ok(Signed::RawBody));
            let request = scheme.signed_request(body.clone(), None, &HeaderMap::new());
            let (parts, _) = request.into_parts();
            let signature = scheme.signature(&parts).unwrap();
            assert_eq!(scheme.verify(&signature, &body), Ok(Signed::RawBody));
            let other = Bytes::from_static(b"{\"a\":2}");
            assert_eq!(
                scheme.verify(&signature, &other),
                Err(SignatureError::Mismatch)
            );
        }
    }

    #[test]
    fn hex_signature_matches_a_known_hmac() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let scheme = Hmac::sha256("x-sig").secret("Jefe").build().unwrap();
        assert_eq!(
            sign(&scheme, b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn malformed_values_are_refused_before_any_mac() {
        let hex = scheme(Encoding::Hex, "sha256=");
        let good = sign(&hex, b"x");
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
        let good = sign(&hex, b"x");
        let padded = [b" \t", good.as_bytes(), b"\t "].concat();
        let signature = hex.signature(&head(&[&padded])).unwrap();
        assert_eq!(
            hex.verify(&signature, &Bytes::from_static(b"x")),
            Ok(Signed::RawBody)
        );
    }

    #[test]
    fn base64_must_be_canonical_padded_standard() {
        let b64 = scheme(Encoding::Base64, "");
        let good = sign(&b64, b"x");
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
        let good = sign(&hex, b"x");
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
        let new = Hmac::sha256("x-sig").secret("new").build().unwrap();
        let old = Hmac::sha256("x-sig").secret("old").build().unwrap();
        let both = Hmac::sha256("x-sig")
            .secrets(["new", "old"])
            .build()
            .unwrap();
        let body = Bytes::from_static(b"payload");
        for sender in [&new, &old] {
            let value = sign(sender, &body);
            let signature = both.signature(&head(&[value.as_bytes()])).unwrap();
            assert_eq!(both.verify(&signature, &body), Ok(Signed::RawBody));
        }
        let value = sign(&old, &body);
        let signature = new.signature(&head(&[value.as_bytes()])).unwrap();
        assert_eq!(new.verify(&signature, &body), Err(SignatureError::Mismatch));
    }

    #[test]
    fn configuration_errors() {
        assert_eq!(
            Hmac::sha256("x-sig").build().unwrap_err(),
            ConfigError::NoSecret
        );
        assert_eq!(
            Hmac::sha256("x-sig")
                .secrets(["ok", ""])
                .build()
                .unwrap_err(),
            ConfigError::EmptySecret { index: 1 }
        );
        assert!(matches!(
            Hmac::sha256("bad header").secret("k").build(),
            Err(ConfigError::InvalidHeaderName { .. })
        ));
        assert!(matches!(
            Hmac::sha256("x-sig")
                .grammar(Grammar::prefixed("a\nb"))
                .secret("k")
                .build(),
            Err(ConfigError::InvalidPrefix { .. })
        ));
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let builder = Hmac::sha256("x-sig").secret("hunter2-secret");
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
        let plain = Hmac::sha256("x-sig").secret("k").build().unwrap();
        let fallback = Hmac::sha256("x-sig")
            .secret("k")
            .signs([Part::body_or_json_stringify()])
            .build()
            .unwrap();
        let value = sign(&plain, signed_form);
        let signature = plain.signature(&head(&[value.as_bytes()])).unwrap();
        assert_eq!(
            plain.verify(&signature, &sent),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            fallback.verify(&signature, &sent),
            Ok(Signed::Reserialized(Bytes::from_static(signed_form)))
        );
    }

    #[test]
    fn reserialised_json_only_up_to_the_fallback_cap() {
        let signed_form = br#"{"a":1}"#;
        let sent = Bytes::from_static(b"{ \"a\" : 1 }");
        let scheme = |max: Option<usize>| {
            let part = match max {
                Some(max) => Part::BodyOrJsonStringify { max },
                None => Part::body_or_json_stringify(),
            };
            Hmac::sha256("x-sig")
                .secret("k")
                .signs([part])
                .build()
                .unwrap()
        };
        let default = scheme(None);
        let value = sign(&default, signed_form);
        let signature = default.signature(&head(&[value.as_bytes()])).unwrap();
        let reserialized = Ok(Signed::Reserialized(Bytes::from_static(signed_form)));
        assert_eq!(default.verify(&signature, &sent), reserialized);
        assert_eq!(
            scheme(Some(sent.len())).verify(&signature, &sent),
            reserialized
        );
        assert_eq!(
            scheme(Some(sent.len() - 1)).verify(&signature, &sent),
            Err(SignatureError::Mismatch)
        );
        // The default leaves room for any VideoAIditor payload, and no more than needed.
        assert_eq!(Part::DEFAULT_JSON_STRINGIFY_MAX, 256 * 1024);
    }

    #[test]
    fn debug_never_shows_the_mac() {
        for encoding in [Encoding::Hex, Encoding::Base64] {
            let scheme = scheme(encoding, "");
            let value = sign(&scheme, b"{}");
            let signature = scheme.signature(&head(&[value.as_bytes()])).unwrap();
            let hex: String = signature
                .tags
                .iter()
                .flat_map(|tag| tag.as_slice().to_vec())
                .map(|b| format!("{b:02x}"))
                .collect();
            for debug in [format!("{signature:?}"), format!("{signature:#?}")] {
                // No four bytes of the MAC, in hex of either case, nor the header value.
                for window in hex.as_bytes().chunks(8) {
                    let window = std::str::from_utf8(window).unwrap();
                    assert!(!debug.contains(window), "{debug}");
                    assert!(!debug.contains(&window.to_uppercase()), "{debug}");
                }
                assert!(!debug.contains(value.to_str().unwrap()), "{debug}");
            }
            assert_eq!(
                format!("{signature:?}"),
                "HmacSignature { signatures: 1, timestamp: None, .. }"
            );
        }
    }
}
