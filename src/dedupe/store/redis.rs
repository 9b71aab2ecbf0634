//! The Redis store: one record per key in a Redis (6.0 or later) or Valkey server, shared by
//! every replica of a service.

use crate::{
    RedisConnection,
    redis_connection::{self, LazyError, Lua},
    redis_record::{self, UNKNOWN, claim_value, expiry_millis},
};
use std::{fmt, future::Future, pin::Pin, sync::Arc, time::Duration};

use redis::{
    Client, IntoConnectionInfo, RedisError, ToRedisArgs,
    aio::{ConnectionManager, ConnectionManagerConfig},
};

use super::{Claim, Store, StoreError, Token, release::Releases};

/// The prefix of every key a [`RedisStore`] writes, unless set with [`RedisStore::prefix`]:
/// `tower-webhook:dedupe:`, followed by the layer's `{namespace}:{key}`.
pub const DEFAULT_PREFIX: &str = "tower-webhook:dedupe:";

/// How long [`RedisStore::config`] lets one connection attempt take: 1 second.
pub const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);

/// How long [`RedisStore::config`] waits for a reply: 1 second.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Takes the key if it has no record: 1 (acquired), else 2 (done), 0 (claimed by someone
/// else) or -1 (a record of an unknown format). KEYS[1]: the key; ARGV: the claim value, the
/// lease in milliseconds.
const CLAIM: &str = r"
local current = redis.call('GET', KEYS[1])
local state = record_state(current)
if state == 'free' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if state == 'done' then return 2 end
if state == 'claim' then return 0 end
return -1
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

/// A [`Store`] in Redis, shared by every replica of a service: what one replica claims or
/// completes, the others see. Works with Redis 6.0 or later and with Valkey: one server or
/// primary, a Redis Cluster (each record is one key, on the node that holds its slot) or the
/// master Redis Sentinel names ([`RedisStore::open`]).
///
/// On one server it talks through a [`ConnectionManager`]: one multiplexed connection for all
/// requests, re-established by itself after the server went away. Each operation is one round
/// trip, one Lua script run with `EVALSHA` (sent with its text, `EVAL`, the first time a server
/// lacks it):
///
/// - *claim*: when the key has no record, `SET key v1:claim:TOKEN PX lease`; otherwise whether
///   the record is done or a claim;
/// - *complete*: the key becomes `v1:done` with the retention as its expiry, if its value is
///   still this claim's;
/// - *release*: the key is deleted, if its value is still this claim's.
///
/// So the lease and the retention are Redis expiries: Redis forgets records by itself, and a
/// claim whose process died frees itself when its lease runs out. Redis keeps the records only as
/// durably as it is configured to: a server restarted without persistence forgets which events
/// were processed, and their late repeats are processed again.
///
/// Records carry their format (`v1:`); records written by version 0.1 (`done`, `claim:TOKEN`)
/// are still read, and a record of a format this version does not know is refused with
/// [`StoreError::UnknownFormat`] (503), never taken for free.
///
/// **A stall is not an outage.** When the server stops answering but keeps its connections (it
/// is frozen, or swapping, or a long command runs), a claim times out here (503) but stays in
/// the connection and runs when the server resumes. The layer then hands the claim back
/// ([`Store::abandon`]): a release is sent on the same connection, behind the claim, and tried
/// again in the background (every 100 ms, doubling up to 30 s, for up to 10 minutes) until the
/// server has run it. So once the server answers again, the provider's next retry is processed
/// rather than refused as in flight for a whole lease. The limits: at most 10,000 releases are
/// under way per store (a long outage at a high rate reaches it: the claims past it free
/// themselves with their leases, and a `warn` event says so), leases longer than 10 minutes
/// outlive the retries, and a runtime that shuts down drops the releases it had not run.
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
    connection: RedisConnection,
    prefix: Arc<str>,
    scripts: Arc<Scripts>,
    /// Abandoned claims being released in the background.
    releasing: Releases,
}

struct Scripts {
    claim: Lua,
    complete: Lua,
    release: Lua,
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

    /// A store for any URL [`RedisConnection::open`] takes (one server, or a Redis Cluster
    /// with `redis+cluster://host:port,host:port`), that connects on its first request: a
    /// service can start while Redis is down. Fails if the URL is invalid, or if it is not
    /// called from within a Tokio runtime.
    ///
    /// On a cluster, each record is one key and may live on any node: nothing to configure.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let timeouts = redis_connection::Timeouts {
            connection: DEFAULT_CONNECTION_TIMEOUT,
            response: DEFAULT_RESPONSE_TIMEOUT,
        };
        Ok(Self::new(
            RedisConnection::open_with(url, timeouts).map_err(unavailable)?,
        ))
    }

    /// A store on a connection of your own: a [`ConnectionManager`] (with TLS, credentials,
    /// other timeouts…) or a Redis Cluster's
    /// [`ClusterConnection`](redis::cluster_async::ClusterConnection). Give it a response
    /// timeout: without one, a server that stops answering holds requests until the
    /// connection breaks.
    pub fn new(connection: impl Into<RedisConnection>) -> Self {
        Self {
            connection: connection.into(),
            prefix: Arc::from(DEFAULT_PREFIX),
            scripts: Arc::new(Scripts {
                claim: Lua::new(&format!("{}{CLAIM}", redis_record::LUA)),
                complete: Lua::new(COMPLETE),
                release: Lua::new(RELEASE),
            }),
            releasing: Releases::default(),
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

    /// The connection, to run commands of your own on it.
    pub fn connection(&self) -> &RedisConnection {
        &self.connection
    }

    fn redis_key(&self, key: &str) -> String {
        let mut redis_key = String::with_capacity(self.prefix.len() + key.len());
        redis_key.push_str(&self.prefix);
        redis_key.push_str(key);
        redis_key
    }

    /// Runs `script` on `key` (under the prefix) with the value of `token`'s claim and then
    /// `args`, as one round trip: the script's answer.
    fn run<A: ToRedisArgs + Send + 'static>(
        &self,
        script: fn(&Scripts) -> &Lua,
        key: &str,
        token: &Token,
        args: A,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send + 'static {
        let mut connection = self.connection.clone();
        let scripts = Arc::clone(&self.scripts);
        let key = self.redis_key(key);
        let value = claim_value(token.as_str());
        async move {
            script(&scripts)
                .key(key)
                .arg(value)
                .arg(args)
                .invoke_async(&mut connection)
                .await
                .map_err(unavailable)
        }
    }

    /// The release of an abandoned claim: one `EVAL` with the script's text. Not `EVALSHA`: a
    /// server that has not loaded the script answers that with `NOSCRIPT`, and the load and
    /// second try that follow would no longer come right behind the claim (a stalled server
    /// would run a repeat's claim in between, and refuse it as in flight).
    async fn release_behind(&self, key: &str, token: &Token) -> Result<(), StoreError> {
        let _: i64 = redis::cmd("EVAL")
            .arg(RELEASE)
            .arg(1)
            .arg(self.redis_key(key))
            .arg(claim_value(token.as_str()))
            .query_async(&mut self.connection.clone())
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

impl Store for RedisStore {
    type ClaimFuture = BoxFuture<Result<Claim, StoreError>>;
    type SettleFuture = BoxFuture<Result<(), StoreError>>;

    fn claim(&self, key: &str, token: &Token, lease: Duration) -> Self::ClaimFuture {
        let answer = self.run(|s| &s.claim, key, token, expiry_millis(lease));
        Box::pin(async move {
            match answer.await? {
                1 => Ok(Claim::Acquired),
                2 => Ok(Claim::Done),
                UNKNOWN => Err(StoreError::UnknownFormat),
                _ => Ok(Claim::InFlight),
            }
        })
    }

    fn complete(&self, key: &str, token: &Token, retention: Duration) -> Self::SettleFuture {
        let args = (redis_record::DONE, expiry_millis(retention));
        let answer = self.run(|s| &s.complete, key, token, args);
        Box::pin(async move { answer.await.map(drop) })
    }

    fn release(&self, key: &str, token: &Token) -> Self::SettleFuture {
        let answer = self.run(|s| &s.release, key, token, None::<u64>);
        Box::pin(async move { answer.await.map(drop) })
    }

    /// Sends the release from a task on the current Tokio runtime, on the connection the claim
    /// went out on (so it runs after the claim, whenever the server runs that), and sends it
    /// again until the server has answered it: every 100 ms, doubling up to 30 s, for up to 10
    /// minutes. Outside a Tokio runtime, or with 10,000 releases already under way, it does
    /// nothing: the claim frees itself when its lease runs out.
    fn abandon(&self, key: &str, token: &Token) {
        let (store, key, token) = (self.clone(), key.to_owned(), token.clone());
        self.releasing.spawn(self.redis_key(&key), move || {
            let (store, key, token) = (store.clone(), key.clone(), token.clone());
            async move { store.release_behind(&key, &token).await.map(|()| true) }
        });
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

fn unavailable(err: RedisError) -> StoreError {
    StoreError::unavailable(err)
}
