use std::ops::Deref;

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
}

/// What the queue stores for a delivery.
#[derive(Deserialize)]
struct Stored<E> {
    verified: Verified<E>,
    key: Option<String>,
}

/// [`Stored`], borrowed, for writing.
#[derive(Serialize)]
pub(crate) struct StoredRef<'a, E> {
    pub(crate) verified: &'a Verified<E>,
    pub(crate) key: Option<&'a str>,
}

impl<E: Serialize> StoredRef<'_, E> {
    /// The payload; `None` when the event does not serialise (a custom `Serialize` that fails).
    pub(crate) fn to_bytes(&self) -> Result<Bytes, serde_json::Error> {
        serde_json::to_vec(self).map(Bytes::from)
    }
}

impl<E: DeserializeOwned> Delivery<E> {
    /// The delivery a message pulled from a [`Queue`](super::Queue) holds, for a worker loop of
    /// your own ([`Worker`](super::Worker) calls it for each message).
    ///
    /// # Errors
    ///
    /// When the payload is not a delivery of `E` (it was stored by another version of the
    /// event type, or by something else than [`Enqueue`](super::Enqueue)).
    pub fn from_message(message: &Message) -> Result<Self, serde_json::Error> {
        let stored: Stored<E> = serde_json::from_slice(&message.payload)?;
        Ok(Self {
            verified: stored.verified,
            key: stored.key,
            id: message.id.clone(),
            attempt: message.attempt,
        })
    }
}

impl<E> Delivery<E> {
    /// A delivery, for tests of a worker's service.
    pub fn new(verified: Verified<E>, attempt: u32) -> Self {
        Self {
            verified,
            key: None,
            id: MessageId(String::new()),
            attempt,
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
}

impl<E> Deref for Delivery<E> {
    type Target = Verified<E>;

    fn deref(&self) -> &Verified<E> {
        &self.verified
    }
}
