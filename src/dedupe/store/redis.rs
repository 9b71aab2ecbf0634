//! The Redis store: one record per key in a Redis (6.0 or later) or Valkey server, shared by
//! every replica of a service.

use crate::redis_connection::{self, LazyError};
use std::{fmt, future::Future, pin::Pin, sync::Arc, time::Duration};

use redis::{
    Client, IntoConnectionInfo, RedisError, Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
};

use super::{Claim, Store, StoreError, Token};

/// The prefix of every key a [`RedisStore`] writes, unless set with [`RedisStore::prefix`]:
/// `tower-webhook:dedupe:`, followed by the layer's `{namespace}:{key}`.
pub const DEFAULT_PREFIX: &str = "tower-webhook:dedupe:";

/// How long [`RedisStore::config`] lets one connection attempt take: 1 second.
pub const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);

/// How long [`RedisStore::config`] waits for a reply: 1 second.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The value of a done record. Claims are stored as `claim:` followed by their token, so no
/// token can ever be mistaken for it.
const DONE: &str = "done";
const CLAIM_PREFIX: &str = "claim:";

/// Takes the key if it is free: 1 (acquired), else 2 (done) or 0 (claimed by someone else).
/// KEYS[1]: the key; ARGV: the claim value, the lease in milliseconds, the done value.
const CLAIM: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
if redis.call('GET', KEYS[1]) == ARGV[3] then
  return 2
end
return 0
";

/// Marks the key done for the retention if this claim still holds it.
/// KEYS[1]: the key; ARGV: the claim value, the done value, the retention in milliseconds.
const COMPLETE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
";

/// Deletes the key if this claim still holds it. KEYS[1]: the key; ARGV[1]: the claim value.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// The longest expiry sent to Redis (about 100 years): longer ones are shortened to it.
const MAX_EXPIRY_MS: u128 = 100 * 365 * 24 * 3600 * 1000;

/// A [`Store`] in Redis, shared by every replica of a service: what one replica claims or
/// completes, the others see. Works with Redis 6.0 or later and with Valkey, on one server or
/// primary (not Redis Cluster).
///
/// It talks to the server through a [`ConnectionManager`]: one multiplexed connection for all
/// requests, re-established by itself after the server went away. Each operation is one round
/// trip, one Lua script run with `EVALSHA` (the script is loaded by itself the first time a
/// server lacks it):
///
/// - *claim*: `SET key claim:TOKEN NX PX lease`, or when the key exists, whether it is done;
/// - *complete*: the key becomes `done` with the retention as its expiry, if its value is still
///   this claim's;
/// - *release*: the key is deleted, if its value is still this claim's.
///
/// So the lease and the retention are Redis expiries: Redis forgets records by itself, and a
/// claim whose process died frees itself when its lease runs out. Redis keeps the records only as
/// durably as it is configured to: a server restarted without persistence forgets which events
/// were processed, and their late repeats are processed again.
///
/// An error (the server is down, a timeout, an error reply) is [`StoreError::Unavailable`], which
/// the layer answers 503 unless it fails open. The connection and response timeouts of
/// [`RedisStore::config`] (1 second each) make an unreachable server a quick error rather than a
/// request that hangs.
///
/// Keys are the layer's `{namespace}:{key}` after a prefix, [`DEFAULT_PREFIX`] unless set with
/// [`RedisStore::prefix`]. Cloning the store gives another handle on the same connection.
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
/// use tower_webhook::{
///     dedupe::{DedupeLayer, store::RedisStore},
///     provider::videonest,
/// };
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Connects now, and fails if the server cannot be reached…
/// let store = RedisStore::connect("redis://127.0.0.1:6379").await?;
/// // …or on the first request, so that the service starts while Redis is down (its requests
/// // are answered 503 until Redis is back):
/// let store = RedisStore::connect_lazy("redis://127.0.0.1:6379")?.prefix("billing:dedupe:");
///
/// // With timeouts of its own:
/// let config = RedisStore::config()
///     .set_connection_timeout(Some(Duration::from_millis(500)))
///     .set_response_timeout(Some(Duration::from_millis(250)));
/// let store = RedisStore::connect_with_config("redis://127.0.0.1:6379", config).await?;
///
/// let layer = DedupeLayer::<videonest::Event, _>::new(store);
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: Arc<str>,
    scripts: Arc<Scripts>,
}

struct Scripts {
    claim: Script,
    complete: Script,
    release: Script,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl RedisStore {
    /// The connection settings [`connect`](Self::connect) and
    /// [`connect_lazy`](Self::connect_lazy) use, to adjust and pass to
    /// [`connect_with_config`](Self::connect_with_config): connection and response timeouts of
    /// [`DEFAULT_CONNECTION_TIMEOUT`] and [`DEFAULT_RESPONSE_TIMEOUT`], and at most one retry
    /// 100 ms after a failed connection attempt, so that while the server is down each request
    /// is answered within about two connection timeouts.
    pub fn config() -> ConnectionManagerConfig {
        redis_connection::config(DEFAULT_CONNECTION_TIMEOUT, DEFAULT_RESPONSE_TIMEOUT)
    }

    /// Connects to the server at `url` (such as `redis://127.0.0.1:6379`,
    /// `redis://:password@host:6379/2` or `redis+unix:///run/redis.sock`) with
    /// [`RedisStore::config`]. Fails if the URL is invalid or the server cannot be reached.
    pub async fn connect(url: impl IntoConnectionInfo) -> Result<Self, StoreError> {
        Self::connect_with_config(url, Self::config()).await
    }

    /// Connects to the server at `url` with `config`.
    pub async fn connect_with_config(
        url: impl IntoConnectionInfo,
        config: ConnectionManagerConfig,
    ) -> Result<Self, StoreError> {
        let client = Client::open(url).map_err(unavailable)?;
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(unavailable)?;
        Ok(Self::new(connection))
    }

    /// A store for the server at `url` that connects on its first request, with
    /// [`RedisStore::config`]: a service can start while Redis is down. Fails if the URL is
    /// invalid, or if it is not called from within a Tokio runtime.
    pub fn connect_lazy(url: impl IntoConnectionInfo) -> Result<Self, StoreError> {
        Self::connect_lazy_with_config(url, Self::config())
    }

    /// A store for the server at `url` that connects on its first request, with `config`.
    pub fn connect_lazy_with_config(
        url: impl IntoConnectionInfo,
        config: ConnectionManagerConfig,
    ) -> Result<Self, StoreError> {
        let client = redis_connection::lazy_client(url).map_err(|err| match err {
            LazyError::NoRuntime => StoreError::unavailable(
                "RedisStore::connect_lazy must be called from within a Tokio runtime",
            ),
            LazyError::Redis(err) => unavailable(err),
        })?;
        let connection =
            ConnectionManager::new_lazy_with_config(client, config).map_err(unavailable)?;
        Ok(Self::new(connection))
    }

    /// A store on a connection manager of your own (with TLS, credentials, other timeouts…).
    /// Give it a response timeout: without one, a server that stops answering holds requests
    /// until the connection breaks.
    pub fn new(connection: ConnectionManager) -> Self {
        Self {
            connection,
            prefix: Arc::from(DEFAULT_PREFIX),
            scripts: Arc::new(Scripts {
                claim: Script::new(CLAIM),
                complete: Script::new(COMPLETE),
                release: Script::new(RELEASE),
            }),
        }
    }

    /// Writes keys under `prefix` instead of [`DEFAULT_PREFIX`]: for several services (or test
    /// runs) sharing one Redis database.
    pub fn prefix(mut self, prefix: impl Into<Arc<str>>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The prefix keys are written under.
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    /// The connection manager, to run commands of your own on the same connection.
    pub fn connection(&self) -> &ConnectionManager {
        &self.connection
    }

    fn redis_key(&self, key: &str) -> String {
        let mut redis_key = String::with_capacity(self.prefix.len() + key.len());
        redis_key.push_str(&self.prefix);
        redis_key.push_str(key);
        redis_key
    }

    fn release_future(&self, key: &str, token: &Token) -> BoxFuture<Result<(), StoreError>> {
        let mut connection = self.connection.clone();
        let scripts = Arc::clone(&self.scripts);
        let key = self.redis_key(key);
        let value = claim_value(token);
        Box::pin(async move {
            let _: i64 = scripts
                .release
                .key(key)
                .arg(value)
                .invoke_async(&mut connection)
                .await
                .map_err(unavailable)?;
            Ok(())
        })
    }
}

impl Store for RedisStore {
    type ClaimFuture = BoxFuture<Result<Claim, StoreError>>;
    type SettleFuture = BoxFuture<Result<(), StoreError>>;

    fn claim(&self, key: &str, lease: Duration) -> Self::ClaimFuture {
        let mut connection = self.connection.clone();
        let scripts = Arc::clone(&self.scripts);
        let key = self.redis_key(key);
        let token = Token::random();
        let value = claim_value(&token);
        let lease = millis(lease);
        Box::pin(async move {
            let answer: i64 = scripts
                .claim
                .key(key)
                .arg(value)
                .arg(lease)
                .arg(DONE)
                .invoke_async(&mut connection)
                .await
                .map_err(unavailable)?;
            Ok(match answer {
                1 => Claim::Acquired(token),
                2 => Claim::Done,
                _ => Claim::InFlight,
            })
        })
    }

    fn complete(&self, key: &str, token: &Token, retention: Duration) -> Self::SettleFuture {
        let mut connection = self.connection.clone();
        let scripts = Arc::clone(&self.scripts);
        let key = self.redis_key(key);
        let value = claim_value(token);
        let retention = millis(retention);
        Box::pin(async move {
            let _: i64 = scripts
                .complete
                .key(key)
                .arg(value)
                .arg(DONE)
                .arg(retention)
                .invoke_async(&mut connection)
                .await
                .map_err(unavailable)?;
            Ok(())
        })
    }

    fn release(&self, key: &str, token: &Token) -> Self::SettleFuture {
        self.release_future(key, token)
    }

    /// Sends the release from a task on the current Tokio runtime; outside of one, does nothing
    /// (the claim frees itself when its lease runs out).
    fn abandon(&self, key: &str, token: &Token) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let release = self.release_future(key, token);
            drop(runtime.spawn(release));
        }
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("connection", &self.connection)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn claim_value(token: &Token) -> String {
    let mut value = String::with_capacity(CLAIM_PREFIX.len() + token.as_str().len());
    value.push_str(CLAIM_PREFIX);
    value.push_str(token.as_str());
    value
}

/// A duration in whole milliseconds for `PX`: at least 1 (Redis refuses 0), at most
/// [`MAX_EXPIRY_MS`], rounded up.
fn millis(duration: Duration) -> u64 {
    let nanos = duration.as_nanos();
    let ms = nanos.div_ceil(1_000_000).clamp(1, MAX_EXPIRY_MS);
    u64::try_from(ms).unwrap_or(u64::MAX)
}

fn unavailable(err: RedisError) -> StoreError {
    StoreError::unavailable(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_are_whole_positive_milliseconds() {
        assert_eq!(millis(Duration::ZERO), 1);
        assert_eq!(millis(Duration::from_nanos(1)), 1);
        assert_eq!(millis(Duration::from_micros(1500)), 2);
        assert_eq!(millis(Duration::from_secs(300)), 300_000);
        assert_eq!(millis(Duration::MAX), 100 * 365 * 24 * 3600 * 1000);
    }

    #[test]
    fn a_claim_is_never_the_done_marker() {
        let token = Token::random();
        assert_eq!(claim_value(&token), format!("claim:{}", token.as_str()));
        assert_ne!(claim_value(&Token::from_string(DONE)), DONE);
        assert_ne!(claim_value(&Token::from_string("")), DONE);
    }
}
