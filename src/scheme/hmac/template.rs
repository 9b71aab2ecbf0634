//! What an HMAC scheme declares: how the MAC is encoded and hashed, how a secret becomes the
//! key, how the signature header is laid out, what is signed and where the timestamp is.

use bytes::Bytes;
use http::HeaderName;

use super::super::TimestampUnit;

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

/// What signs: the hash function of an HMAC, or a public-key algorithm
/// ([`Hmac::ed25519`](super::Hmac::ed25519), [`Hmac::ecdsa_p256`](super::Hmac::ecdsa_p256)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Digest {
    /// HMAC-SHA256 (32-byte tags): every current HMAC provider.
    #[default]
    Sha256,
    /// HMAC-SHA1 (20-byte tags): Intercom, GitHub's and Square's legacy headers.
    Sha1,
    /// Ed25519 signatures (64 bytes), verified with public keys: Discord, Standard Webhooks
    /// `v1a`.
    Ed25519,
    /// ECDSA over P-256 with SHA-256, DER-encoded, verified with public keys: SendGrid.
    EcdsaP256,
}

impl Digest {
    /// The length of a MAC; 0 for a public-key algorithm.
    pub(super) fn tag_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha1 => 20,
            Self::Ed25519 | Self::EcdsaP256 => 0,
        }
    }

    /// Whether signatures are checked with public keys rather than MACs of secrets.
    pub(super) fn is_public(self) -> bool {
        matches!(self, Self::Ed25519 | Self::EcdsaP256)
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
    /// decoded bytes. A secret that does not decode is a [`ConfigError::InvalidSecret`](crate::ConfigError::InvalidSecret).
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
pub struct Grammar(pub(super) GrammarKind);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum GrammarKind {
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
        /// The version of Ed25519 signatures beside the MACs (Standard Webhooks' `v1a`).
        public_version: Option<Box<str>>,
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
    /// entries of other versions are ignored.
    pub fn list(version: &str) -> Self {
        Self(GrammarKind::List {
            version: version.into(),
            public_version: None,
        })
    }

    /// A [`list`](Self::list) whose entries of `public_version` are Ed25519 signatures
    /// (standard base64 of 64 bytes), checked with the scheme's public keys, beside the
    /// entries of `version` checked with its secrets: Standard Webhooks' `v1` and `v1a`.
    /// Either kind matching is enough.
    pub fn list_with_public(version: &str, public_version: &str) -> Self {
        Self(GrammarKind::List {
            version: version.into(),
            public_version: Some(public_version.into()),
        })
    }
}

/// One piece of the signed content; see [`HmacBuilder::signs`](super::HmacBuilder::signs).
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
    /// [`HmacBuilder::timestamp`](super::HmacBuilder::timestamp) says.
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

/// Where the signed timestamp is read from; see [`HmacBuilder::timestamp`](super::HmacBuilder::timestamp).
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
