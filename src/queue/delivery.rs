use std::{fmt, ops::Deref};

use bytes::Bytes;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::{Message, MessageId};
use crate::Verified;

/// A verified delivery taken from the queue, as a [`Worker`](super::Worker) hands it to its
/// service: the [`Verified`] event as the HTTP side stored it, its deduplication key, and which
/// attempt this is. Dereferences to the `Verified<E>`.
#[derive(Debug, Clone)]
pub struct Delivery<E> {
    verified: Verified<E>,
    key: Option<String>,
    id: MessageId,
    attempt: u32,
    replays: u32,
}

/// The format of the payloads this version stores, in their `v` field. Version 0.1 stored
/// payloads without one (format 0, still read: the same fields).
pub const PAYLOAD_FORMAT: u32 = 1;

/// What the queue stores for a delivery: JSON, `{"v":1,"verified":…,"key":…}`.
#[derive(Deserialize)]
struct Stored<E> {
    #[serde(default)]
    v: u64,
    verified: Verified<E>,
    key: Option<String>,
}

/// [`Stored`], borrowed, for writing.
#[derive(Serialize)]
pub(crate) struct StoredRef<'a, E> {
    v: u32,
    verified: &'a Verified<E>,
    key: Option<&'a str>,
}

impl<'a, E: Serialize> StoredRef<'a, E> {
    pub(crate) fn new(verified: &'a Verified<E>, key: Option<&'a str>) -> Self {
        Self {
            v: PAYLOAD_FORMAT,
            verified,
            key,
        }
    }

    /// The payload; an error when the event does not serialise (a custom `Serialize` that
    /// fails).
    pub(crate) fn to_bytes(&self) -> Result<Bytes, serde_json::Error> {
        serde_json::to_vec(self).map(Bytes::from)
    }
}

/// A stored payload that is not a delivery this version can read.
#[derive(Debug)]
#[non_exhaustive]
pub enum PayloadError {
    /// A later version of the crate stored it, in a format this one does not read. Replay it
    /// once every worker runs that version.
    UnknownFormat {
        /// The payload's format.
        found: u64,
        /// The latest format this version reads, [`PAYLOAD_FORMAT`].
        supported: u32,
    },
    /// It is not a delivery of this event type: something else stored it, or the event type
    /// changed in a way its stored form does not follow. The message says where and what kind
    /// of error, never what the payload holds (serde's own message, which may quote the
    /// payload's values, is the [`source`](std::error::Error::source)).
    Decode(serde_json::Error),
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownFormat { found, supported } => write!(
                f,
                "the stored delivery is in format {found}, which this version does not read \
                 (it reads formats up to {supported}): a later version stored it"
            ),
            Self::Decode(err) => {
                let kind = match err.classify() {
                    serde_json::error::Category::Io => "a read error",
                    serde_json::error::Category::Syntax => "not JSON",
                    serde_json::error::Category::Data => "not a delivery of this event type",
                    serde_json::error::Category::Eof => "cut short",
                };
                write!(
                    f,
                    "the stored delivery does not decode: {kind}, at line {} column {}",
                    err.line(),
                    err.column()
                )
            }
        }
    }
}

impl std::error::Error for PayloadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::UnknownFormat { .. } => None,
            Self::Decode(err) => Some(err),
        }
    }
}

impl<E: DeserializeOwned> Delivery<E> {
    /// The delivery a message pulled from a [`Queue`](super::Queue) holds, for a worker loop of
    /// your own ([`Worker`](super::Worker) calls it for each message).
    ///
    /// # Errors
    ///
    /// [`PayloadError::UnknownFormat`] when a later version of the crate stored it, and
    /// [`PayloadError::Decode`] when the payload is not a delivery of `E` (it was stored by
    /// something else than [`Enqueue`](super::Enqueue), or for another event type).
    pub fn from_message(message: &Message) -> Result<Self, PayloadError> {
        let stored: Stored<E> = match serde_json::from_slice(&message.payload) {
            Ok(stored) => stored,
            // A later format may not have the fields this one reads: say which it is.
            Err(err) => {
                return Err(match format_of(&message.payload) {
                    Some(found) if found > u64::from(PAYLOAD_FORMAT) => {
                        PayloadError::UnknownFormat {
                            found,
                            supported: PAYLOAD_FORMAT,
                        }
                    }
                    _ => PayloadError::Decode(err),
                });
            }
        };
        if stored.v > u64::from(PAYLOAD_FORMAT) {
            return Err(PayloadError::UnknownFormat {
                found: stored.v,
                supported: PAYLOAD_FORMAT,
            });
        }
        Ok(Self {
            verified: stored.verified,
            key: stored.key,
            id: message.id.clone(),
            attempt: message.attempt,
            replays: message.replays,
        })
    }
}

/// The `v` field of a JSON object, if it has a numeric one.
fn format_of(payload: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct Format {
        v: u64,
    }
    serde_json::from_slice::<Format>(payload)
        .ok()
        .map(|format| format.v)
}

impl<E> Delivery<E> {
    /// A delivery, for tests of a worker's service.
    pub fn new(verified: Verified<E>, attempt: u32) -> Self {
        Self {
            verified,
            key: None,
            id: MessageId(String::new()),
            attempt,
            replays: 0,
        }
    }

    /// The verified event, with its signed bytes and metadata.
    pub fn verified(&self) -> &Verified<E> {
        &self.verified
    }

    /// The verified event, by value.
    pub fn into_verified(self) -> Verified<E> {
        self.verified
    }

    /// The deduplication key the HTTP side stored it under, if it deduplicated it: with a
    /// [`DedupeLayer`](crate::dedupe::DedupeLayer) in front of the [`Enqueue`](super::Enqueue),
    /// or with [`Enqueue::deduplicate`](super::Enqueue::deduplicate).
    ///
    /// The key was recorded when the delivery was stored, not when it is processed: from then
    /// on, repeats of the event are answered as duplicates ("already received"), while this
    /// delivery may still be waiting, or be retried, here.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The message's id in the queue.
    pub fn id(&self) -> &MessageId {
        &self.id
    }

    /// Which attempt this is: 1 the first time the event is processed, more after failures or
    /// after a worker died while processing it. Processing is at least once: make the service
    /// idempotent, or check the attempt.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// How many times it was replayed from the dead letters
    /// ([`Queue::replay_dead_letters`](super::Queue::replay_dead_letters)): 0 unless an
    /// operator sent it back. [`attempt`](Self::attempt) starts again at 1 after a replay.
    pub fn replays(&self) -> u32 {
        self.replays
    }
}

impl<E> Deref for Delivery<E> {
    type Target = Verified<E>;

    fn deref(&self) -> &Verified<E> {
        &self.verified
    }
}
