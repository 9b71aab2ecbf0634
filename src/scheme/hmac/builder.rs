//! [`HmacBuilder`]: a scheme's declaration, checked and keyed by [`build`](HmacBuilder::build).

use std::{sync::Arc, time::Duration};

use base64::Engine as _;
use http::{HeaderName, HeaderValue};
use zeroize::Zeroizing;

use super::{
    Digest, Encoding, Field, Grammar, GrammarKind, Hmac, Key, KeyFormat, Metadata, Part, PublicKey,
    SigningKey, TimestampSource, metadata::signed_headers,
};
use crate::{
    ConfigError, Secret,
    scheme::{Clock, SystemClock, timestamp::SharedClock},
    secret::Keys,
};

/// Builder for [`Hmac`]; see [`Hmac::sha256`].
#[must_use]
#[derive(Clone, Debug)]
pub struct HmacBuilder {
    pub(super) name: String,
    pub(super) header: String,
    pub(super) digest: Digest,
    pub(super) encoding: Encoding,
    pub(super) grammar: Grammar,
    pub(super) parts: Vec<Part>,
    pub(super) timestamp: TimestampSource,
    pub(super) tolerance: Option<Duration>,
    pub(super) clock: SharedClock,
    pub(super) metadata: Metadata,
    pub(super) key_format: KeyFormat,
    pub(super) secrets: Vec<Secret>,
    pub(super) public_keys: Vec<PublicKey>,
    pub(super) signing: Option<SigningKey>,
}

impl HmacBuilder {
    /// The default replay window: 5 minutes either way.
    pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

    pub(super) fn new(header: impl Into<String>, digest: Digest) -> Self {
        Self {
            name: "hmac".into(),
            header: header.into(),
            digest,
            encoding: Encoding::Hex,
            grammar: Grammar::value(),
            parts: vec![Part::Body],
            timestamp: TimestampSource::None,
            tolerance: None,
            clock: SharedClock(Arc::new(SystemClock)),
            metadata: Metadata::default(),
            key_format: KeyFormat::Raw,
            secrets: Vec::new(),
            public_keys: Vec::new(),
            signing: None,
        }
    }

    setters! {
        /// The name recorded in [`Verified::provider`](crate::Verified::provider); `"hmac"` unless
        /// set.
        pub fn name(name: impl Into<String>) { name = name.into() }

        /// How each MAC is encoded; lower-case hex unless set.
        pub fn encoding(encoding: Encoding) { encoding = encoding }

        /// How the signature header is laid out; [`Grammar::value`] unless set.
        pub fn grammar(grammar: Grammar) { grammar = grammar }

        /// What is signed, in order: the MAC is fed each part in turn (the body is never copied
        /// into a concatenation). `[Part::Body]` unless set; the body part must come last, once.
        pub fn signs(parts: impl IntoIterator<Item = Part>) { parts = parts.into_iter().collect() }

        /// Where the signed timestamp is; none unless set. Setting one turns on the replay window
        /// with [`DEFAULT_TOLERANCE`](Self::DEFAULT_TOLERANCE) unless
        /// [`tolerance`](Self::tolerance) says otherwise.
        pub fn timestamp(source: TimestampSource) { timestamp = source }

        /// The replay window: a signed timestamp further than this from the clock, in the past or
        /// in the future, is refused with
        /// [`SignatureError::OutOfTolerance`](crate::SignatureError::OutOfTolerance) (after the
        /// signature matched).
        pub fn tolerance(tolerance: Duration) { tolerance = Some(tolerance) }

        /// The clock the replay window reads: the system clock unless set. Any `Fn() -> SystemTime`
        /// is one, so tests pass a fixed time and never sleep.
        pub fn clock(clock: impl Clock) { clock = SharedClock(Arc::new(clock)) }

        /// Where the event type is read from, the first found of `fields`; recorded in
        /// [`Verified::event_type`](crate::Verified::event_type).
        pub fn event_type(fields: impl IntoIterator<Item = Field>) {
            metadata.event_type = fields.into_iter().collect()
        }

        /// Where the delivery id is read from, the first found of `fields`; recorded in
        /// [`Verified::delivery_id`](crate::Verified::delivery_id).
        pub fn delivery_id(fields: impl IntoIterator<Item = Field>) {
            metadata.id = fields.into_iter().collect()
        }
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

    setters! {
        /// How each secret becomes the key; [`KeyFormat::Raw`] unless set.
        pub fn key_format(format: KeyFormat) { key_format = format }
    }

    /// Adds a secret. Add several to rotate keys: a signature made with any of them is accepted.
    pub fn secret(mut self, secret: impl Into<Secret>) -> Self {
        self.secrets.push(secret.into());
        self
    }

    /// Adds a public key, for a public-key scheme ([`Hmac::ed25519`], [`Hmac::ecdsa_p256`]) or
    /// the public entries of a [`Grammar::list_with_public`] list. Add several to rotate keys: a
    /// signature made with any of them is accepted.
    pub fn public_key(mut self, key: PublicKey) -> Self {
        self.public_keys.push(key);
        self
    }

    /// Adds several public keys, in order.
    pub fn public_keys(mut self, keys: impl IntoIterator<Item = PublicKey>) -> Self {
        self.public_keys.extend(keys);
        self
    }

    setters! {
        /// The private key [`Hmac::sign`] signs with instead of a secret, for tests and local
        /// tools; its public key is accepted too.
        pub fn signing_key(key: SigningKey) { signing = Some(key) }
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
                if HeaderValue::from_str(prefix).is_err() || prefix.starts_with([' ', '\t']) {
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
            GrammarKind::List {
                version,
                public_version,
            } => {
                let version_ok = |version: &str| {
                    !version.is_empty()
                        && version.bytes().all(|b| b.is_ascii_graphic() && b != b',')
                };
                if !version_ok(version) || !public_version.as_deref().is_none_or(version_ok) {
                    return invalid(
                        "a list grammar needs a version of visible ASCII without commas",
                    );
                }
                if public_version.as_deref() == Some(&**version) {
                    return invalid("a list grammar needs two different versions");
                }
                if public_version.is_some()
                    && (self.digest.is_public() || self.encoding != Encoding::Base64)
                {
                    return invalid(
                        "public entries beside MACs need an HMAC scheme with base64 encoding",
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
        let mut public_keys = self.public_keys;
        public_keys.extend(self.signing.as_ref().map(SigningKey::public_key));
        let keys = if self.digest.is_public() {
            if !self.secrets.is_empty() {
                return invalid("a public-key scheme verifies with public keys, not secrets");
            }
            Keys::default()
        } else if self.secrets.is_empty() && !public_keys.is_empty() {
            Keys::default()
        } else {
            keys(self.digest, self.key_format, &self.secrets)?
        };
        let takes_public = self.digest.is_public()
            || matches!(
                &grammar,
                GrammarKind::List {
                    public_version: Some(_),
                    ..
                }
            );
        if !takes_public && !public_keys.is_empty() {
            return invalid(
                "public keys need a public-key scheme or a list grammar with public entries",
            );
        }
        if keys.is_empty() && public_keys.is_empty() {
            return Err(ConfigError::NoSecret);
        }
        let tolerance = match self.timestamp {
            TimestampSource::None => None,
            _ => Some(self.tolerance.unwrap_or(Self::DEFAULT_TOLERANCE)),
        };
        let digits = match (self.encoding, self.digest) {
            (Encoding::Hex, Digest::Sha256) => "64 lower-case hex digits",
            (Encoding::Hex, Digest::Sha1) => "40 lower-case hex digits",
            (Encoding::Base64, Digest::Sha256) => "44 characters of padded standard base64",
            (Encoding::Base64, Digest::Sha1) => "28 characters of padded standard base64",
            (Encoding::Hex, Digest::Ed25519) => "128 lower-case hex digits",
            (Encoding::Base64, Digest::Ed25519) => "88 characters of padded standard base64",
            (Encoding::Hex, Digest::EcdsaP256) => "the lower-case hex of a DER ECDSA signature",
            (Encoding::Base64, Digest::EcdsaP256) => {
                "the padded standard base64 of a DER ECDSA signature"
            }
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
            GrammarKind::List {
                version,
                public_version: None,
            } => format!("space-separated `{version},<MAC>` entries, each MAC {digits}"),
            GrammarKind::List {
                version,
                public_version: Some(public),
            } => format!(
                "space-separated `{version},<MAC>` or `{public},<signature>` entries, each MAC \
                 {digits}, each signature 88 characters of padded standard base64"
            ),
        };
        let covered = signed_headers(&self.parts);
        // What `signature` reads, in the order it reads them.
        let reads = std::iter::once(header.clone())
            .chain(match &self.timestamp {
                TimestampSource::Header(name) => Some(name.clone()),
                _ => None,
            })
            .chain(self.parts.iter().filter_map(|part| match part {
                Part::Header(name) => Some(name.clone()),
                _ => None,
            }))
            .collect();
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
            reads,
            key_format: self.key_format,
            keys,
            public_keys: public_keys.into_boxed_slice(),
            signing: self.signing,
        })
    }
}

/// One keyed HMAC state per secret, in order.
///
/// # Errors
///
/// [`ConfigError::NoSecret`], [`ConfigError::EmptySecret`] or [`ConfigError::InvalidSecret`].
pub(super) fn keys(
    digest: Digest,
    format: KeyFormat,
    secrets: &[Secret],
) -> Result<Keys<Key>, ConfigError> {
    if digest.is_public() {
        return Err(ConfigError::InvalidScheme {
            reason: "a public-key scheme verifies with public keys, not secrets",
        });
    }
    crate::secret::keys_of(secrets, |index, secret| {
        let key = derive_key(format, secret).ok_or(ConfigError::InvalidSecret { index })?;
        if key.is_empty() {
            return Err(ConfigError::EmptySecret { index });
        }
        Key::new(digest, &key).ok_or(ConfigError::InvalidSecret { index })
    })
}

pub(super) fn derive_key(format: KeyFormat, secret: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
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
