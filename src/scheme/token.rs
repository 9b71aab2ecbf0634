//! [`Token`]: a shared secret sent verbatim in a header (GitLab's `X-Gitlab-Token`), compared in
//! constant time. Nothing of the request is signed.

use std::fmt;

use bytes::Bytes;
use http::{HeaderName, request::Parts};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use super::{
    Delivery, Field, Scheme, SignatureError, Signed, header_name, hmac_metadata::Metadata,
    one_value,
};
use crate::{ConfigError, Secret, secret::Keys};

/// A scheme whose "signature" is a shared token in a header: GitLab's `X-Gitlab-Token`. The
/// request is accepted when the header holds exactly one of the configured tokens (several:
/// rotation), compared in constant time whatever its length (as SHA-256 digests).
///
/// **It authenticates the sender, not the delivery**: the body, the event type and every other
/// header are unsigned, and whoever sees one request can send any other with its token, at any
/// time. Prefer a signing scheme where the provider offers one (GitLab's signing token is
/// Standard Webhooks: [`standard_webhooks`](crate::provider::standard_webhooks)), and serve this
/// one over TLS only.
///
/// ```
/// use http::Request;
/// use tower_webhook::scheme::{Scheme, Token};
///
/// let scheme = Token::new("X-Gitlab-Token", ["gl-token"])?;
/// let (head, ()) = Request::post("/").header("x-gitlab-token", "gl-token").body(())?.into_parts();
/// let token = scheme.signature(&head)?;
/// assert!(scheme.verify(&token, &bytes::Bytes::new()).is_ok());
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
/// Its `Debug` output shows the name, the header and how many tokens, never them.
#[derive(Clone, Debug)]
pub struct Token {
    name: Box<str>,
    header: HeaderName,
    /// SHA-256 of each configured token.
    digests: Keys<[u8; 32]>,
    metadata: Metadata,
}

/// The SHA-256 of a presented token (what [`Token`] reads from a request head).
#[derive(Clone)]
pub struct TokenSignature([u8; 32]);

impl fmt::Debug for TokenSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSignature([redacted])")
    }
}

impl Token {
    /// A scheme accepting any one of `tokens` in `header`, named `"token"`.
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
            name: "token".into(),
            digests: digests(&tokens)?,
            metadata: Metadata {
                signature_header: Some(header.clone()),
                ..Metadata::default()
            },
            header,
        })
    }

    /// The name recorded in [`Verified::provider`](crate::Verified::provider).
    #[must_use]
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.into();
        self
    }

    /// Reads the event type from the header `name` (unsigned: nothing is).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidHeaderName`].
    pub fn event_type_header(mut self, name: &str) -> Result<Self, ConfigError> {
        self.metadata.event_type = vec![header_field(name)?];
        Ok(self)
    }

    /// Reads the delivery id from the header `name` (unsigned: nothing is).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidHeaderName`].
    pub fn delivery_id_header(mut self, name: &str) -> Result<Self, ConfigError> {
        self.metadata.id = vec![header_field(name)?];
        Ok(self)
    }

    /// The header the token is read from.
    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    /// The same scheme accepting `tokens` instead (each tenant's, with
    /// [`Tenanted`](crate::tenant::Tenanted)).
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoSecret`] or [`ConfigError::EmptySecret`].
    pub fn with_secrets(&self, tokens: &[Secret]) -> Result<Self, ConfigError> {
        Ok(Self {
            digests: digests(tokens)?,
            ..self.clone()
        })
    }

    /// What the event type and delivery id are read by.
    pub(crate) fn metadata(&self) -> &Metadata {
        &self.metadata
    }
}

fn header_field(name: &str) -> Result<Field, ConfigError> {
    header_name(name).map(Field::Header)
}

fn digests(tokens: &[Secret]) -> Result<Keys<[u8; 32]>, ConfigError> {
    crate::secret::keys_of(tokens, |_, token| Ok(Sha256::digest(token).into()))
}

impl Scheme for Token {
    type Signature = TokenSignature;

    /// The header's one value, hashed; missing, repeated or empty is refused.
    fn signature(&self, head: &Parts) -> Result<TokenSignature, SignatureError> {
        let value = one_value(&head.headers, &self.header)?;
        if value.is_empty() {
            return Err(SignatureError::Malformed {
                header: self.header.clone(),
                expected: "the shared token".into(),
            });
        }
        Ok(TokenSignature(Sha256::digest(value.as_bytes()).into()))
    }

    /// Every configured token compared, whether or not one matched.
    fn verify(&self, token: &TokenSignature, _body: &Bytes) -> Result<Signed, SignatureError> {
        let matched = self
            .digests
            .iter()
            .fold(subtle::Choice::from(0), |found, digest| {
                found | digest.ct_eq(&token.0)
            });
        if bool::from(matched) {
            Ok(Signed::RawBody)
        } else {
            Err(SignatureError::Mismatch)
        }
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn delivery(&self, head: &Parts, _token: &TokenSignature, signed: &Bytes) -> Delivery {
        let read = |fields: &[Field]| {
            self.metadata
                .read_signed(fields, &head.headers, None, signed)
                .0
        };
        Delivery {
            id: read(&self.metadata.id),
            event_type: read(&self.metadata.event_type),
            ..Delivery::default()
        }
    }
}
