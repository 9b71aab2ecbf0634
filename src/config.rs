//! Errors found while a scheme or layer is being configured.

use std::fmt;

/// A configuration mistake, reported when a scheme is built (never per request).
///
/// ```
/// use tower_webhook::{ConfigError, scheme::Hmac};
///
/// let err = Hmac::sha256("x-signature").secret("").build().unwrap_err();
/// assert_eq!(err, ConfigError::EmptySecret { index: 0 });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// No secret (or, for a public-key scheme, no public key) was configured: every request
    /// would be refused.
    NoSecret,
    /// The secret at this position (in the order given) is empty; an empty HMAC key would let
    /// anyone sign.
    EmptySecret {
        /// Zero-based position of the empty secret.
        index: usize,
    },
    /// The signature header name is not a valid HTTP header name.
    InvalidHeaderName {
        /// The name as given.
        name: String,
    },
    /// The signature prefix contains characters that cannot appear in a header value, or starts
    /// with white space (trimmed from every header value before the prefix is looked for).
    InvalidPrefix {
        /// The prefix as given.
        prefix: String,
    },
    /// The secret at this position is not in the scheme's key format (a Standard Webhooks
    /// `whsec_` secret that is not base64).
    InvalidSecret {
        /// Zero-based position of the secret.
        index: usize,
    },
    /// A public or signing key is not in the form expected (see
    /// [`PublicKey`](crate::scheme::PublicKey)).
    InvalidKey {
        /// What was expected.
        reason: &'static str,
    },
    /// The scheme's parts do not fit together (see [`HmacBuilder::build`](crate::scheme::HmacBuilder::build)).
    InvalidScheme {
        /// What is wrong.
        reason: &'static str,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSecret => f.write_str("no webhook secret or public key configured"),
            Self::EmptySecret { index } => {
                write!(f, "webhook secret #{} is empty", index + 1)
            }
            Self::InvalidHeaderName { name } => {
                write!(f, "`{name}` is not a valid HTTP header name")
            }
            Self::InvalidPrefix { prefix } => {
                write!(f, "signature prefix {prefix:?} cannot start a header value")
            }
            Self::InvalidSecret { index } => write!(
                f,
                "webhook secret #{} is not in the scheme's key format (`whsec_` + base64)",
                index + 1
            ),
            Self::InvalidScheme { reason } => write!(f, "invalid signature scheme: {reason}"),
            Self::InvalidKey { reason } => write!(f, "invalid key: {reason}"),
        }
    }
}

impl std::error::Error for ConfigError {}
