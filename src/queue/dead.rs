//! Dead letters: what a queue keeps of a message that failed its last attempt, and how they are
//! listed a page at a time, replayed and purged ([`Queue`](super::Queue)'s administration).

use std::{collections::VecDeque, time::SystemTime};

use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::{Delivery, Message, MessageId, PayloadError};

/// What a dead letter's own id starts with in the queues that number them (`dead-1`, `dead-2`,
/// …: never a message's id).
const DEAD_ID_PREFIX: &str = "dead-";

/// The id of the dead letter numbered `number`.
pub(crate) fn dead_id(number: impl std::fmt::Display) -> MessageId {
    MessageId(format!("{DEAD_ID_PREFIX}{number}"))
}

/// The number in a dead letter's own id; `None` for another id.
pub(crate) fn dead_number<N: std::str::FromStr>(id: &MessageId) -> Option<N> {
    id.0.strip_prefix(DEAD_ID_PREFIX)?.parse().ok()
}

/// For a table of dead letters numbered in order: the number to list after and how many rows to
/// ask for (one more than the page holds, to tell whether more follow). `None` when the page is
/// empty: no room, or a cursor that names no dead letter of this queue.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn numbered_page(page: &Page) -> Option<(i64, i64)> {
    let after = match &page.after {
        None => 0,
        Some(after) => dead_number(after)?,
    };
    let limit = i64::try_from(page.limit).unwrap_or(i64::MAX - 1);
    (limit > 0).then_some((after, limit + 1))
}

/// The page of `letters`, read with [`numbered_page`]'s one extra row.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn page_of(mut letters: Vec<DeadLetter>, limit: usize) -> DeadLetterPage {
    let more = letters.len() > limit;
    letters.truncate(limit);
    DeadLetterPage::new(letters, more)
}

/// The numbers of the dead letters `ids` names, each once, oldest first, in batches of
/// `size`; ids of no dead letter are left out.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn dead_batches(ids: &[MessageId], size: usize) -> Vec<Vec<i64>> {
    let mut numbers: Vec<i64> = ids.iter().filter_map(dead_number).collect();
    numbers.sort_unstable();
    numbers.dedup();
    numbers.chunks(size.max(1)).map(<[i64]>::to_vec).collect()
}

/// How many dead letters one transaction of a replay takes.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) const REPLAY_BATCH: usize = 100;

/// The dead letters one transaction of a replay takes, in a queue that numbers them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) enum ReplayBatch {
    /// The oldest [`REPLAY_BATCH`] left, up to this number.
    UpTo(i64),
    /// These numbers.
    Numbers(Vec<i64>),
}

/// What one batch of a replay did: how many it replayed, whether it stopped because the queue
/// is full, and how many dead letters it looked at.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) struct Replayed {
    pub(crate) count: u64,
    pub(crate) full: bool,
    pub(crate) looked_at: usize,
}

/// Replays the dead letters `which` selects, oldest first, a batch a transaction, for a queue
/// that numbers them: `newest` finds the newest there is (`Select::All` means those there are
/// when the replay starts, so that letters that fail again meanwhile are not replayed again),
/// `replay` replays one batch. Stops when the queue is full.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) async fn replay_numbered<N, R, E>(
    which: &Select,
    newest: impl FnOnce() -> N,
    mut replay: impl FnMut(ReplayBatch) -> R,
) -> Result<u64, E>
where
    N: Future<Output = Result<Option<i64>, E>>,
    R: Future<Output = Result<Replayed, E>>,
{
    let mut batches: VecDeque<ReplayBatch> = match which {
        Select::All => match newest().await? {
            Some(newest) => VecDeque::from([ReplayBatch::UpTo(newest)]),
            None => return Ok(0),
        },
        Select::Ids(ids) => dead_batches(ids, REPLAY_BATCH)
            .into_iter()
            .map(ReplayBatch::Numbers)
            .collect(),
    };
    let mut replayed = 0;
    while let Some(batch) = batches.pop_front() {
        let again = matches!(batch, ReplayBatch::UpTo(_)).then(|| batch.clone());
        let done = replay(batch).await?;
        replayed += done.count;
        if done.full {
            break;
        }
        // A full batch up to the newest: more may be left.
        if let Some(again) = again
            && done.looked_at >= REPLAY_BATCH
        {
            batches.push_back(again);
        }
    }
    Ok(replayed)
}

/// A message that used all its attempts, with the last error.
///
/// ```
/// use std::time::Duration;
/// use tower_webhook::queue::{MemoryQueue, Page, Pull, Queue};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let queue = MemoryQueue::new(10);
/// queue.push(r#"{"v":1}"#.into()).await?;
/// let message = queue.pull("worker", Pull::up_to(1)).await?.remove(0);
/// queue.dead_letter(&message, "the service failed").await?;
///
/// let page = queue.list_dead_letters(Page::first(10)).await?;
/// let dead = &page.letters[0];
/// assert_eq!((dead.attempts, dead.error.as_str()), (1, "the service failed"));
/// assert_eq!(dead.message_id, message.id);
/// assert_ne!(dead.id, message.id, "its own id among the dead letters");
/// assert!(page.next.is_none(), "the last page");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeadLetter {
    /// Its own id among the dead letters: what [`Select::Ids`] and [`Page::after`] take.
    pub id: MessageId,
    /// The message's id in the queue when it failed.
    pub message_id: MessageId,
    /// What was stored: read it with [`delivery`](Self::delivery).
    pub payload: Bytes,
    /// How many times it was handed out.
    pub attempts: u32,
    /// The last error.
    pub error: String,
    /// When its first attempt failed, where the queue knows it (not for dead letters of a
    /// version that did not record it).
    pub first_failed_at: Option<SystemTime>,
    /// When it was dead-lettered: its last attempt failed.
    pub failed_at: Option<SystemTime>,
    /// How many times it had been replayed before.
    pub replays: u32,
}

impl DeadLetter {
    /// The delivery it holds, decoded as a worker would.
    ///
    /// # Errors
    ///
    /// [`PayloadError`] when the payload is not a stored delivery of `E` in a format this
    /// version reads.
    pub fn delivery<E: DeserializeOwned>(&self) -> Result<Delivery<E>, PayloadError> {
        Delivery::from_message(&Message {
            id: self.message_id.clone(),
            payload: self.payload.clone(),
            attempt: self.attempts,
            replays: self.replays,
        })
    }
}

/// Which page of dead letters [`Queue::list_dead_letters`](super::Queue::list_dead_letters)
/// answers: up to `limit` of them, oldest first, after `after`.
///
/// ```
/// use tower_webhook::queue::{MessageId, Page};
///
/// let page = Page::first(100).after(MessageId("1700000000000-0".into()));
/// assert_eq!(page.limit, 100);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Page {
    /// At most this many.
    pub limit: usize,
    /// Those after this dead letter's id ([`DeadLetterPage::next`] of the page before); from
    /// the oldest when `None`.
    pub after: Option<MessageId>,
}

impl Page {
    /// The first `limit` dead letters, oldest first.
    pub fn first(limit: usize) -> Self {
        Self { limit, after: None }
    }

    /// Those after the dead letter `id`.
    #[must_use]
    pub fn after(self, id: MessageId) -> Self {
        Self {
            after: Some(id),
            ..self
        }
    }
}

/// One page of dead letters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeadLetterPage {
    /// The dead letters, oldest first.
    pub letters: Vec<DeadLetter>,
    /// Where the next page starts ([`Page::after`]), or `None` when this was the last.
    pub next: Option<MessageId>,
}

impl DeadLetterPage {
    /// A page of `letters`, the next one starting after its last when `more` are left.
    pub(crate) fn new(letters: Vec<DeadLetter>, more: bool) -> Self {
        let next = if more {
            letters.last().map(|letter| letter.id.clone())
        } else {
            None
        };
        Self { letters, next }
    }
}

/// Which dead letters to replay or purge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Select {
    /// Every one.
    All,
    /// Those with these ids ([`DeadLetter::id`]); ids that are not dead letters are skipped.
    Ids(Vec<MessageId>),
}

impl Select {
    /// Whether the dead letter `id` is selected.
    pub(crate) fn selects(&self, id: &MessageId) -> bool {
        match self {
            Self::All => true,
            Self::Ids(ids) => ids.contains(id),
        }
    }
}
