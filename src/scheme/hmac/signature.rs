//! What an HMAC scheme reads from a request head, and the keyed MACs it computes.

use std::fmt;

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;

use super::{super::hex, Digest, Encoding, public::PublicSignature};

/// A keyed HMAC state of either digest.
#[derive(Clone)]
pub(super) enum Key {
    Sha256(hmac::Hmac<sha2::Sha256>),
    Sha1(hmac::Hmac<sha1::Sha1>),
}

impl Key {
    /// The keyed state of `digest`; `None` for a public-key algorithm, which has no MAC.
    pub(super) fn new(digest: Digest, key: &[u8]) -> Option<Self> {
        match digest {
            Digest::Sha256 => hmac::Hmac::new_from_slice(key).ok().map(Self::Sha256),
            Digest::Sha1 => hmac::Hmac::new_from_slice(key).ok().map(Self::Sha1),
            Digest::Ed25519 | Digest::EcdsaP256 => None,
        }
    }

    pub(super) fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha256(mac) => mac.update(data),
            Self::Sha1(mac) => mac.update(data),
        }
    }

    pub(super) fn finalize(self) -> Tag {
        match self {
            Self::Sha256(mac) => Tag::new(&mac.finalize().into_bytes()),
            Self::Sha1(mac) => Tag::new(&mac.finalize().into_bytes()),
        }
    }

    /// The MAC of `prefix` then `body`, fed to a copy of this keyed state that is never kept.
    pub(super) fn mac(&self, prefix: &[u8], body: &[u8]) -> Tag {
        fn mac_of<M: Mac + Clone>(key: &M, prefix: &[u8], body: &[u8]) -> Tag {
            let mut mac = key.clone();
            if !prefix.is_empty() {
                mac.update(prefix);
            }
            mac.update(body);
            Tag::new(&mac.finalize().into_bytes())
        }
        match self {
            Self::Sha256(key) => mac_of(key, prefix, body),
            Self::Sha1(key) => mac_of(key, prefix, body),
        }
    }
}

/// A decoded MAC: its bytes, then zeros to the end of the array.
#[derive(Clone, Copy)]
pub(super) struct Tag {
    pub(super) bytes: [u8; 32],
    pub(super) len: u8,
}

impl Tag {
    /// A tag of `mac`'s bytes (at most 32).
    fn new(mac: &[u8]) -> Self {
        let mut tag = Self {
            bytes: [0; 32],
            len: 0,
        };
        let len = mac.len().min(32);
        tag.bytes[..len].copy_from_slice(&mac[..len]);
        tag.len = len as u8;
        tag
    }

    pub(super) fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Whether the two MACs are equal, in constant time: the differences of all 32 bytes (zeros
    /// past a shorter MAC's end in both) or-ed together, then one constant-time test.
    pub(super) fn matches(&self, other: &Tag) -> bool {
        let diff = self
            .bytes
            .iter()
            .zip(&other.bytes)
            .fold(0u8, |diff, (x, y)| diff | (x ^ y));
        (self.len == other.len) & bool::from(diff.ct_eq(&0))
    }
}

/// What [`Hmac`](super::Hmac) reads from the request head: the decoded signatures, the signed
/// timestamp and the signed bytes before the body. Its `Debug` output shows how many signatures
/// it holds, not them.
#[derive(Clone)]
pub struct HmacSignature {
    pub(super) tags: Few<Tag, 1>,
    /// Public-key signatures (empty, and unallocated, for a MAC-only scheme).
    pub(super) public: Vec<PublicSignature>,
    /// The signed timestamp, in Unix seconds.
    pub(super) timestamp: Option<i64>,
    /// The signed bytes before the body (header values, the timestamp's text, literals), put
    /// together once from the head.
    pub(super) prefix: Prefix,
}

impl HmacSignature {
    /// Whether any signature was read.
    pub(super) fn any(&self) -> bool {
        !self.tags.is_empty() || !self.public.is_empty()
    }
}

impl fmt::Debug for HmacSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacSignature")
            .field("signatures", &(self.tags.len() + self.public.len()))
            .field("timestamp", &self.timestamp)
            .finish_non_exhaustive()
    }
}

/// Up to `N` values inline and any more on the heap: the usual one signature and signed header
/// of a request cost no allocation (a second signature, sent while a provider rotates its
/// secret, does), and the signature stays small to move.
#[derive(Clone)]
pub(super) struct Few<T, const N: usize> {
    pub(super) inline: [Option<T>; N],
    pub(super) spilled: Vec<T>,
}

impl<T, const N: usize> Few<T, N> {
    pub(super) fn new() -> Self {
        Self {
            inline: std::array::from_fn(|_| None),
            spilled: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, value: T) {
        match self.inline.iter_mut().find(|slot| slot.is_none()) {
            Some(slot) => *slot = Some(value),
            None => self.spilled.push(value),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.inline.iter().flatten().count() + self.spilled.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &T> {
        self.inline.iter().flatten().chain(&self.spilled)
    }
}

/// The signed bytes before the body: inline up to 64 bytes (a Standard Webhooks
/// `{id}.{timestamp}.` takes about 45), on the heap past that. Put together in the head, where
/// its copies cost least: the MAC then reads it in one piece, and the request's header values
/// are neither kept nor shared.
#[derive(Clone)]
pub(super) struct Prefix {
    inline: [u8; Self::INLINE],
    len: u8,
    spilled: Vec<u8>,
}

impl Prefix {
    const INLINE: usize = 64;

    pub(super) fn new() -> Self {
        Self {
            inline: [0; Self::INLINE],
            len: 0,
            spilled: Vec::new(),
        }
    }

    /// Appends `bytes`.
    pub(super) fn push(&mut self, bytes: &[u8]) {
        let len = usize::from(self.len);
        if self.spilled.is_empty() {
            if let Some(room) = self.inline.get_mut(len..len + bytes.len()) {
                room.copy_from_slice(bytes);
                // At most `INLINE`: it fits.
                self.len = (len + bytes.len()) as u8;
                return;
            }
            self.spilled.reserve(len + bytes.len());
            self.spilled.extend_from_slice(&self.inline[..len]);
        }
        self.spilled.extend_from_slice(bytes);
    }

    pub(super) fn as_slice(&self) -> &[u8] {
        if self.spilled.is_empty() {
            &self.inline[..usize::from(self.len)]
        } else {
            &self.spilled
        }
    }
}

pub(super) fn encode(encoding: Encoding, tag: &[u8]) -> String {
    match encoding {
        Encoding::Hex => {
            let mut text = String::new();
            hex::encode_lower(tag, &mut text);
            text
        }
        Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(tag),
    }
}

pub(super) fn decode(encoding: Encoding, len: usize, encoded: &[u8]) -> Option<Tag> {
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
            // The canonical padded form only (the `base64` crate's `STANDARD` engine refuses
            // missing padding and bits set past the last byte), of exactly `len` bytes: the
            // longest MAC, 32 bytes, is 44 characters, which decode to at most 33.
            if encoded.len() != len.div_ceil(3) * 4 {
                return None;
            }
            let mut decoded = [0u8; 33];
            let n = base64::engine::general_purpose::STANDARD
                .decode_slice(encoded, &mut decoded)
                .ok()?;
            if n != len {
                return None;
            }
            tag.bytes.get_mut(..len)?.copy_from_slice(&decoded[..len]);
        }
    }
    Some(tag)
}

/// A public-key signature of `digest` (Ed25519: 64 bytes; ECDSA: DER) encoded in `encoding`,
/// in its canonical form only.
pub(super) fn decode_public(
    encoding: Encoding,
    digest: Digest,
    encoded: &[u8],
) -> Option<PublicSignature> {
    // The longest: an Ed25519 signature (64 bytes) or a DER ECDSA one (at most 72).
    const MAX: usize = 72;
    let mut bytes = [0u8; MAX + 2];
    let len = match encoding {
        Encoding::Hex => {
            if !encoded.len().is_multiple_of(2) || encoded.len() > 2 * MAX {
                return None;
            }
            let len = encoded.len() / 2;
            if !hex::decode_lower(encoded, bytes.get_mut(..len)?) {
                return None;
            }
            len
        }
        Encoding::Base64 => {
            if !encoded.len().is_multiple_of(4) || encoded.len() > MAX.div_ceil(3) * 4 {
                return None;
            }
            base64::engine::general_purpose::STANDARD
                .decode_slice(encoded, &mut bytes)
                .ok()?
        }
    };
    let bytes = bytes.get(..len)?;
    match digest {
        Digest::Ed25519 => PublicSignature::ed25519(bytes),
        Digest::EcdsaP256 => PublicSignature::p256_der(bytes),
        Digest::Sha256 | Digest::Sha1 => None,
    }
}

/// Whether `needle` occurs in `haystack` (never, when it is empty).
pub(super) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    match needle {
        [] => false,
        [byte] => memchr::memchr(*byte, haystack).is_some(),
        _ => memchr::memmem::find(haystack, needle).is_some(),
    }
}

/// Whether `value`, followed by `separator`, ends with a start of the separator that the rest of
/// the separator repeats (`x:` before `::`): the signed bytes would then hold the separator one
/// byte early, and split into the value and what follows in a second way.
pub(super) fn runs_into(value: &[u8], separator: &[u8]) -> bool {
    (1..separator.len()).any(|overlap| {
        value.ends_with(&separator[..overlap])
            && separator[overlap..] == separator[..separator.len() - overlap]
    })
}

/// The pieces of `value` between `separator` bytes, as `<[u8]>::split` gives them (an empty piece
/// after a trailing separator included), each found by a vectorized search: a signature header
/// is mostly one long encoded MAC that a byte-at-a-time search would walk.
pub(super) fn split(value: &[u8], separator: u8) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(value);
    std::iter::from_fn(move || {
        let current = rest?;
        match memchr::memchr(separator, current) {
            Some(at) => {
                rest = Some(&current[at + 1..]);
                Some(&current[..at])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

/// Whether every byte of `value` is visible ASCII (`!` to `~`): no white space, control byte or
/// byte above 127. One pass with no early exit, in 16-byte blocks the compiler vectorizes.
pub(super) fn all_graphic(value: &[u8]) -> bool {
    fn bad(bytes: &[u8]) -> u8 {
        bytes.iter().fold(0, |bad, b| {
            bad | u8::from(b.wrapping_sub(b'!') > b'~' - b'!')
        })
    }
    let (blocks, tail) = value.as_chunks::<16>();
    blocks.iter().fold(bad(tail), |acc, block| acc | bad(block)) == 0
}

/// Strips the optional white space (space, tab) that HTTP allows around a field value.
pub(super) fn trim_ows(value: &[u8]) -> &[u8] {
    let start = value.iter().position(|b| !matches!(b, b' ' | b'\t'));
    let end = value.iter().rposition(|b| !matches!(b, b' ' | b'\t'));
    match (start, end) {
        (Some(start), Some(end)) => &value[start..=end],
        _ => &[],
    }
}
