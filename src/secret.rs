//! Signing secrets whose bytes never reach `Debug` output or logs.

use std::fmt;

use zeroize::Zeroizing;

use crate::ConfigError;

/// A webhook signing secret.
///
/// The secret is used as the raw HMAC key (its UTF-8 bytes when made from a string), which is how
/// both VideoNest and VideoAIditor document their secrets. Its `Debug` output is redacted, so a
/// `Secret` can sit inside configuration structs that are printed or logged, and its bytes are
/// zeroed when it is dropped. It has no `PartialEq`: compare keys in constant time, never with
/// `==`. (The keyed HMAC states a scheme builds from it are zeroed on drop too.)
///
/// ```
/// use tower_webhook::Secret;
///
/// let secret = Secret::from("vn_signing_secret");
/// assert_eq!(format!("{secret:?}"), "Secret(\"[redacted]\")");
/// assert_eq!(secret.len(), 17);
/// ```
#[derive(Clone)]
pub struct Secret(Zeroizing<Box<[u8]>>);

impl Secret {
    /// Makes a secret from raw key bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        // Copied into an exact-size box; the original vector, spare capacity included, is
        // zeroed when it drops here.
        let bytes = Zeroizing::new(bytes.into());
        Self(Zeroizing::new(Box::from(bytes.as_slice())))
    }

    /// The number of bytes in the key.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the key is empty (an empty key is refused when a scheme is built).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

/// The keys a scheme made from its secrets, in order. `Debug` counts them and never shows one,
/// so a scheme holding them can derive its own `Debug`.
#[derive(Clone)]
pub(crate) struct Keys<T>(Box<[T]>);

impl<T> std::ops::Deref for Keys<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T> Default for Keys<T> {
    fn default() -> Self {
        Self(Box::default())
    }
}

impl<T> FromIterator<T> for Keys<T> {
    fn from_iter<I: IntoIterator<Item = T>>(keys: I) -> Self {
        Self(keys.into_iter().collect())
    }
}

impl<T> fmt::Debug for Keys<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{} redacted]", self.0.len())
    }
}

/// One key per secret, in order, made by `key` from each secret's bytes (with its position, for
/// the errors it reports).
///
/// # Errors
///
/// [`ConfigError::NoSecret`] for no secret, [`ConfigError::EmptySecret`] for an empty one, and
/// whatever `key` reports.
pub(crate) fn keys_of<T>(
    secrets: &[Secret],
    key: impl Fn(usize, &[u8]) -> Result<T, ConfigError>,
) -> Result<Keys<T>, ConfigError> {
    if secrets.is_empty() {
        return Err(ConfigError::NoSecret);
    }
    secrets
        .iter()
        .enumerate()
        .map(|(index, secret)| {
            if secret.is_empty() {
                return Err(ConfigError::EmptySecret { index });
            }
            key(index, secret.expose())
        })
        .collect()
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Secret").field(&"[redacted]").finish()
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value.as_bytes())
    }
}

impl From<&String> for Secret {
    fn from(value: &String) -> Self {
        Self::new(value.as_bytes())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value.into_bytes())
    }
}

impl From<&[u8]> for Secret {
    fn from(value: &[u8]) -> Self {
        Self::new(value)
    }
}

impl From<Vec<u8>> for Secret {
    fn from(value: Vec<u8>) -> Self {
        Self::new(value)
    }
}
