//! Where deduplication records live: the [`Store`] trait, and the stores the crate ships.
//!
//! A store keeps, per key, one of two records: *claimed* by a delivery being processed (with a
//! token only that delivery knows, and a lease after which anyone may claim it again), or *done*
//! (kept for the retention). [`Store::claim`] must be atomic: of any number of concurrent claims
//! of a free key, exactly one gets [`Claim::Acquired`].
//!
//! The caller makes the claim's [`Token`] before it asks, so that a claim whose answer never
//! arrives (a timeout, a lost reply, a dropped future) can still be released:
//! [`DedupeLayer`](super::DedupeLayer) hands such a claim back with [`Store::abandon`]. A store
//! that stalls and then runs the claim anyway does not leave the event refused for a whole
//! lease.
//!
//! - [`MemoryStore`]: in this process, bounded, sharded. The default.
//! - `RedisStore` (with the `redis` feature): in Redis 6+ or Valkey, shared by every replica of
//!   a service; one round trip per claim, completion or release.
//! - `SqliteStore` (with the `sqlite` feature): in a SQLite file, durable as the disk, shared by
//!   the processes of one host; nothing to install.
//! - `PostgresStore` (with the `postgres` feature): in PostgreSQL, shared by every replica;
//!   its record can commit in the handler's own transaction.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use tower_webhook::dedupe::store::{Claim, MemoryStore, Store, Token};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = MemoryStore::new();
//! let lease = Duration::from_secs(300);
//! let key = "videonest:video.processed:vid_1";
//! let token = Token::random();
//! assert_eq!(store.claim(key, &token, lease).await?, Claim::Acquired);
//! // A second delivery while the first is processed:
//! assert_eq!(store.claim(key, &Token::random(), lease).await?, Claim::InFlight);
//! store.complete(key, &token, Duration::from_secs(86_400)).await?;
//! assert_eq!(store.claim(key, &Token::random(), lease).await?, Claim::Done);
//! # Ok(())
//! # }
//! ```

mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;
#[cfg(any(feature = "redis", feature = "postgres"))]
mod release;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

use std::{
    collections::hash_map::RandomState,
    error::Error as StdError,
    fmt,
    future::Future,
    hash::{BuildHasher, Hasher},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

pub use self::memory::{DEFAULT_MAX_ENTRIES, MemoryStore, MemoryStoreStats};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use self::postgres::{
    DEFAULT_MAX_ENTRIES as POSTGRES_DEFAULT_MAX_ENTRIES, PostgresFuture, PostgresStore,
};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::{
    DEFAULT_CONNECTION_TIMEOUT, DEFAULT_PREFIX, DEFAULT_RESPONSE_TIMEOUT, RedisStore,
};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use self::sqlite::{
    DEFAULT_MAX_ENTRIES as SQLITE_DEFAULT_MAX_ENTRIES, Durability, SqliteCommits, SqliteError,
    SqliteFuture, SqliteStore,
};

/// A deduplication store, shared by every request of a [`DedupeLayer`](super::DedupeLayer).
///
/// The futures are `'static` (they own what they need, like `tower::Service` futures), so a
/// store is usually a cheap handle: an `Arc` around state, or a connection manager.
pub trait Store: Send + Sync + 'static {
    /// The future of [`claim`](Self::claim).
    type ClaimFuture: Future<Output = Result<Claim, StoreError>> + Send + 'static;
    /// The future of [`complete`](Self::complete) and [`release`](Self::release).
    type SettleFuture: Future<Output = Result<(), StoreError>> + Send + 'static;

    /// Atomically claims `key` for `lease` with `token`, unless it is claimed (and the lease
    /// has not run out) or done.
    ///
    /// The claim may take effect even when the future fails or is dropped (a remote store that
    /// stalls runs the command later; a reply can be lost): the caller then hands it back with
    /// [`abandon`](Self::abandon), which must free the key if `token` holds it, whenever the
    /// claim lands.
    fn claim(&self, key: &str, token: &Token, lease: Duration) -> Self::ClaimFuture;

    /// Marks `key` done for `retention`, if `token` still holds its claim.
    fn complete(&self, key: &str, token: &Token, retention: Duration) -> Self::SettleFuture;

    /// Frees `key`, if `token` still holds its claim, so that the next delivery is processed.
    fn release(&self, key: &str, token: &Token) -> Self::SettleFuture;

    /// Frees `key` if `token` holds it, without being awaited: called when a claim's answer
    /// never arrived (the call failed, timed out or was dropped: the claim may still land), when
    /// a release failed or its future was dropped, and when a request's future is dropped while
    /// its handler runs (the client went away, an outer timeout). It must not block.
    ///
    /// A remote store should keep trying in the background until the release has run *after*
    /// the claim (on the same connection, commands run in order), for as long as a claim can
    /// live. It cannot do that when the runtime itself is shutting down (a server stopped
    /// without draining its requests): such claims free themselves when their leases run out,
    /// which a graceful shutdown (one that lets requests finish) avoids.
    /// By default it does nothing, and the claim frees itself when its lease runs out: every
    /// repeat meanwhile is refused as in flight.
    fn abandon(&self, key: &str, token: &Token) {
        let _ = (key, token);
    }
}

/// The answer to [`Store::claim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The key was free: this delivery is processed, and holds the claim with its token.
    Acquired,
    /// Another delivery holds the claim and its lease has not run out.
    InFlight,
    /// The key is done: a delivery of this event was processed.
    Done,
}

/// Proof of a claim: a random value only the claiming delivery knows, so that a delivery whose
/// lease ran out cannot complete or release the claim another delivery took since.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Token(Box<str>);

impl Token {
    /// A new random token: 128 bits from the process's random hasher keys, the time and a
    /// counter, written as 32 hex digits. Unique across processes and replicas in practice; it
    /// guards against stale claims, not attackers (the keys come from verified events only).
    pub fn random() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        // The process id is a system call each time it is read: once per process. (A forked
        // child keeps its parent's; its clock and counter still part their tokens.)
        static PROCESS: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
        let process = *PROCESS.get_or_init(std::process::id);
        let mut bytes = [0u8; 16];
        for (i, word) in bytes.chunks_exact_mut(8).enumerate() {
            let mut hasher = RandomState::new().build_hasher();
            hasher.write_u64(count);
            hasher.write_u128(nanos);
            hasher.write_usize(i);
            hasher.write_u32(process);
            word.copy_from_slice(&hasher.finish().to_be_bytes());
        }
        let mut text = String::with_capacity(32);
        crate::scheme::hex::encode_lower(&bytes, &mut text);
        Self(text.into_boxed_str())
    }

    /// A token from a store's own representation (for stores that keep tokens themselves).
    pub fn from_string(token: impl Into<String>) -> Self {
        Self(token.into().into_boxed_str())
    }

    /// The token as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Token").field(&&*self.0).finish()
    }
}

/// A store could not answer. The deduplication layer answers 503 (the provider retries, nothing
/// is lost) unless it was built to fail open.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum StoreError {
    /// The store is unreachable or failed (connection refused, timeout, an error reply, …).
    Unavailable(Arc<dyn StdError + Send + Sync>),
    /// The store is full of claims and records that have not expired yet.
    Full {
        /// The configured maximum number of entries.
        max_entries: usize,
    },
    /// The key's record is in a format this version does not read: a later version of the
    /// crate wrote it (a rolling upgrade, or a rollback). Neither taken for free nor for done.
    UnknownFormat,
    /// The delivery no longer holds its claim (its lease ran out, and another delivery may
    /// hold the key now): a completion in the handler's own transaction
    /// (`PostgresStore::complete_in`) refuses, so that the transaction is rolled back.
    ClaimLost,
}

impl StoreError {
    /// Wraps a store's own error as [`StoreError::Unavailable`].
    pub fn unavailable(err: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::Unavailable(Arc::from(err.into()))
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable(_) => f.write_str("the deduplication store is unavailable"),
            Self::Full { max_entries } => write!(
                f,
                "the deduplication store is full ({max_entries} entries that have not expired)"
            ),
            Self::UnknownFormat => f.write_str(
                "the deduplication record is in a format this version does not read (a later \
                 version wrote it)",
            ),
            Self::ClaimLost => f.write_str(
                "the delivery no longer holds its deduplication claim (its lease ran out)",
            ),
        }
    }
}

impl StdError for StoreError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Unavailable(err) => Some(&**err),
            Self::Full { .. } | Self::UnknownFormat | Self::ClaimLost => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_differ() {
        let tokens: std::collections::HashSet<Token> =
            (0..10_000).map(|_| Token::random()).collect();
        assert_eq!(tokens.len(), 10_000);
        assert!(tokens.iter().all(|t| t.as_str().len() == 32));
        assert!(
            tokens.iter().all(|t| t
                .as_str()
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))),
            "lower-case hex digits"
        );
    }
}
