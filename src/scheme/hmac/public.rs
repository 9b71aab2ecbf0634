//! Public-key signatures in the template model: the keys a receiver holds ([`PublicKey`]), the
//! keys a sender (or a test) signs with ([`SigningKey`]), and the signatures read from a header.
//!
//! Ed25519 (Discord, Standard Webhooks `v1a`) and ECDSA over P-256 with SHA-256 (SendGrid), by
//! RustCrypto's and dalek's implementations. A signature covers the same template of parts as a
//! MAC would (the timestamp, signed headers, the body), in the same order.

use std::fmt;

use base64::Engine as _;
use ed25519_dalek::Verifier as _;
use p256::{
    ecdsa::signature::Signer as _,
    pkcs8::{DecodePrivateKey as _, DecodePublicKey as _},
};

use zeroize::Zeroizing;

use super::super::hex;
use crate::ConfigError;

/// A public key that verifies signatures: add it with
/// [`HmacBuilder::public_key`](super::HmacBuilder::public_key). Several keys rotate as secrets
/// do: a signature made with any one is accepted.
///
/// Each constructor reads the form its provider shows users.
///
/// ```
/// use tower_webhook::scheme::PublicKey;
///
/// // Discord: the application's public key, 64 hex digits.
/// let discord = PublicKey::ed25519_hex(
///     "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c",
/// )?;
/// # let _ = discord;
/// // SendGrid: the verification key, base64 of its DER SubjectPublicKeyInfo.
/// let sendgrid = PublicKey::p256_base64(
///     "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEUOcVlMifuEFPw2FXp3rBOxY+0VbXQA80i5Of1gMusSuSjEa16zI1GhFIhyKU2b4EXTMKZsc6aYCZgQCr16D7Og==",
/// )?;
/// # let _ = sendgrid;
/// # Ok::<_, tower_webhook::ConfigError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(pub(super) Verifying);

#[derive(Clone, PartialEq, Eq)]
pub(super) enum Verifying {
    Ed25519(ed25519_dalek::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
}

/// Why a key was refused.
fn invalid(what: &'static str) -> ConfigError {
    ConfigError::InvalidKey { reason: what }
}

impl PublicKey {
    /// An Ed25519 public key from its 32 bytes.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidKey`] when the bytes are not a point of the curve.
    pub fn ed25519(bytes: [u8; 32]) -> Result<Self, ConfigError> {
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(|key| Self(Verifying::Ed25519(key)))
            .map_err(|_| invalid("not an Ed25519 public key"))
    }

    /// An Ed25519 public key written as 64 hex digits (Discord's "Public Key").
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidKey`] when it is not 64 hex digits of a valid key.
    pub fn ed25519_hex(text: &str) -> Result<Self, ConfigError> {
        let mut bytes = [0; 32];
        let text = text.trim().to_ascii_lowercase();
        if !hex::decode_lower(text.as_bytes(), &mut bytes) {
            return Err(invalid("an Ed25519 public key in hex is 64 hex digits"));
        }
        Self::ed25519(bytes)
    }

    /// A Standard Webhooks (and Svix) public key: `whpk_` then the standard base64 of its 32
    /// bytes.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidKey`] when it is not `whpk_` and the base64 of a valid key.
    pub fn whpk(text: &str) -> Result<Self, ConfigError> {
        let encoded = text.trim().strip_prefix("whpk_").ok_or(invalid(
            "a Standard Webhooks public key starts with `whpk_`",
        ))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or(invalid("a `whpk_` key is the base64 of 32 bytes"))?;
        Self::ed25519(bytes)
    }

    /// An ECDSA P-256 public key written as the standard base64 of its DER
    /// SubjectPublicKeyInfo (SendGrid's "Verification Key").
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidKey`] when it is not the base64 of a P-256 SubjectPublicKeyInfo.
    pub fn p256_base64(text: &str) -> Result<Self, ConfigError> {
        let der = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| invalid("a P-256 public key is standard base64"))?;
        p256::ecdsa::VerifyingKey::from_public_key_der(&der)
            .map(|key| Self(Verifying::P256(key)))
            .map_err(|_| invalid("not the DER SubjectPublicKeyInfo of a P-256 key"))
    }

    /// Whether this key verifies `signature` over `message`: Ed25519 in its strict form
    /// (no small-order keys or non-canonical signatures), ECDSA in low- or high-S form as
    /// SendGrid's own verifiers accept. A signature of the other algorithm never verifies.
    pub(super) fn verifies(&self, message: &[u8], signature: &PublicSignature) -> bool {
        match (&self.0, signature) {
            (Verifying::Ed25519(key), PublicSignature::Ed25519(signature)) => {
                key.verify_strict(message, signature).is_ok()
            }
            (Verifying::P256(key), PublicSignature::P256(signature)) => {
                key.verify(message, signature).is_ok()
            }
            _ => false,
        }
    }

    /// The algorithm's name, for `Debug`.
    fn algorithm(&self) -> &'static str {
        match self.0 {
            Verifying::Ed25519(_) => "Ed25519",
            Verifying::P256(_) => "ECDSA P-256",
        }
    }
}

/// The algorithm and the key itself: a public key is no secret.
impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = match &self.0 {
            Verifying::Ed25519(key) => key.to_bytes().to_vec(),
            Verifying::P256(key) => key.to_sec1_point(true).as_bytes().to_vec(),
        };
        let mut text = String::new();
        hex::encode_lower(&bytes, &mut text);
        write!(f, "PublicKey({} {text})", self.algorithm())
    }
}

/// A private key that signs as a provider does, for tests and local tools: give it to
/// [`HmacBuilder::signing_key`](super::HmacBuilder::signing_key) (its public key is then
/// accepted too). Its `Debug` output is redacted.
#[derive(Clone)]
pub struct SigningKey(Signing);

#[derive(Clone)]
enum Signing {
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::ecdsa::SigningKey),
}

impl SigningKey {
    /// An Ed25519 signing key from its 32-byte seed.
    pub fn ed25519(seed: [u8; 32]) -> Self {
        Self(Signing::Ed25519(ed25519_dalek::SigningKey::from_bytes(
            &seed,
        )))
    }

    /// A Standard Webhooks signing key: `whsk_` then the standard base64 of its 32-byte seed.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidKey`] when it is not `whsk_` and the base64 of 32 bytes.
    pub fn whsk(text: &str) -> Result<Self, ConfigError> {
        let seed = text
            .trim()
            .strip_prefix("whsk_")
            .and_then(|encoded| {
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .ok()
            })
            .map(Zeroizing::new)
            .and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
            .map(Zeroizing::new)
            .ok_or(invalid(
                "a Standard Webhooks signing key is `whsk_` and the base64 of 32 bytes",
            ))?;
        Ok(Self::ed25519(*seed))
    }

    /// An ECDSA P-256 signing key from its PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidKey`] when it is not the PKCS#8 PEM of a P-256 key.
    pub fn p256_pkcs8_pem(pem: &str) -> Result<Self, ConfigError> {
        // The key's text and bytes are zeroed when dropped, as a `Secret`'s are.
        let body: Zeroizing<String> = Zeroizing::new(
            pem.lines()
                .map(str::trim)
                .filter(|line| !line.is_empty() && !line.starts_with("-----"))
                .collect(),
        );
        let der = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(body.as_bytes())
                .map_err(|_| invalid("a PKCS#8 PEM holds standard base64"))?,
        );
        p256::ecdsa::SigningKey::from_pkcs8_der(&der)
            .map(|key| Self(Signing::P256(key)))
            .map_err(|_| invalid("not the PKCS#8 of a P-256 key"))
    }

    /// The public key that verifies this key's signatures.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(match &self.0 {
            Signing::Ed25519(key) => Verifying::Ed25519(key.verifying_key()),
            Signing::P256(key) => Verifying::P256(*key.verifying_key()),
        })
    }

    /// The encoded signature of `message`: Ed25519's 64 bytes, or ECDSA's DER.
    pub(super) fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &self.0 {
            Signing::Ed25519(key) => {
                use ed25519_dalek::Signer as _;
                key.sign(message).to_bytes().to_vec()
            }
            Signing::P256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_der().as_bytes().to_vec()
            }
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SigningKey").field(&"[redacted]").finish()
    }
}

/// A public-key signature read from a header.
#[derive(Clone)]
pub(super) enum PublicSignature {
    Ed25519(ed25519_dalek::Signature),
    P256(p256::ecdsa::Signature),
}

impl PublicSignature {
    /// An Ed25519 signature from its 64 bytes.
    pub(super) fn ed25519(bytes: &[u8]) -> Option<Self> {
        let bytes = <[u8; 64]>::try_from(bytes).ok()?;
        Some(Self::Ed25519(ed25519_dalek::Signature::from_bytes(&bytes)))
    }

    /// An ECDSA P-256 signature from its DER (at most 72 bytes).
    pub(super) fn p256_der(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > 72 {
            return None;
        }
        p256::ecdsa::Signature::from_der(bytes).ok().map(Self::P256)
    }
}
