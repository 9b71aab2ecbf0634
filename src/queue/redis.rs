//! The Redis Streams queue: one stream and one consumer group in a Redis (6.2 or later) or
//! Valkey server, shared by every replica of a service and every worker.

use crate::{
    RedisConnection,
    redis_connection::{self, LazyError, Lua},
    redis_record::{self, UNKNOWN},
};
use std::{collections::HashMap, fmt, sync::Arc, time::Duration};

use bytes::Bytes;
use redis::{
    Client, IntoConnectionInfo, RedisError,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use tokio::sync::Mutex;

use super::{
    DeadLetter, DeadLetterPage, Message, MessageId, Page, Pull, Pushed, Queue, QueueError,
    QueueFuture, QueueStats, Select,
};

/// The stream a [`RedisQueue`] uses unless set with [`RedisQueue::stream`].
pub const DEFAULT_STREAM: &str = "tower-webhook:queue";

/// The consumer group a [`RedisQueue`] uses unless set with [`RedisQueue::group`].
pub const DEFAULT_GROUP: &str = "workers";

/// How many messages a [`RedisQueue`] holds unless set with [`RedisQueue::max_len`].
pub const DEFAULT_MAX_LEN: u64 = 1_000_000;

/// How long [`RedisQueue::config`] lets one connection attempt take: 1 second.
pub const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);

/// How long [`RedisQueue::config`] waits for a reply: 1 second.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The longest a pull blocks on the server waiting for new messages unless set with
/// [`RedisQueue::max_block`]: 1 second.
pub const DEFAULT_MAX_BLOCK: Duration = Duration::from_secs(1);

/// Lua shared by the settling scripts: whether this delivery of the message still holds it.
/// A message's attempt is the `attempts` field of its entry (deliveries before it was written)
/// plus the entry's delivery count in the group.
const HELD: &str = r"
local function fields(entry)
  local map = {}
  for i = 1, #entry, 2 do map[entry[i]] = entry[i + 1] end
  return map
end
-- The entry's payload, previous attempts, first failure time (milliseconds) and replays if
-- `attempt` is its current delivery, else nil.
local function held(stream, group, id, attempt)
  local pending = redis.pcall('XPENDING', stream, group, id, id, 1)
  if type(pending) ~= 'table' or pending.err or #pending == 0 then return nil end
  local entries = redis.call('XRANGE', stream, id, id)
  if #entries == 0 then return nil end
  local map = fields(entries[1][2])
  local before = tonumber(map['attempts']) or 0
  if before + tonumber(pending[1][4]) ~= tonumber(attempt) then return nil end
  return map['payload'] or '', before, map['failed'], map['replays']
end
-- When a message that fails on `attempt` first failed: as recorded, now on its first attempt,
-- or nil (unknown: it failed before a version that records it).
local function first_failure(failed, attempt, now)
  if failed then return failed end
  if tonumber(attempt) == 1 then return now end
  return nil
end
-- The time on the server, in milliseconds.
local function now_millis()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
-- Adds an entry to `stream` with `payload`, `attempts` and, when known, the first failure time
-- and the replays, within `max` entries when `max` is given.
local function add(stream, max, payload, attempts, failed, replays)
  local args = {stream}
  if max then
    args[#args + 1] = 'MAXLEN'
    args[#args + 1] = '~'
    args[#args + 1] = max
  end
  for _, field in ipairs({'*', 'payload', payload, 'attempts', attempts}) do
    args[#args + 1] = field
  end
  if failed then
    args[#args + 1] = 'failed'
    args[#args + 1] = failed
  end
  if replays then
    args[#args + 1] = 'replays'
    args[#args + 1] = replays
  end
  return redis.call('XADD', unpack(args))
end
";

/// Stores a payload unless the stream is full: its id, or nil when full.
/// KEYS[1]: the stream; ARGV: the maximum length, the payload.
const PUSH: &str = r"
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return false end
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'payload', ARGV[2], 'attempts', '0')
";

/// Stores a payload unless its key is recorded, and records the key: the entry's id, or
/// `0` (a deduplication layer's claim holds the key), `2` (the key is done), `3` (the stream is
/// full), `-1` (a record of an unknown format). When the key is done and ARGV[5] is `1` (the
/// answer waits for replicas), the record is written again as it is (`KEEPTTL`): a write of this
/// connection's that comes after the first delivery's, so that `WAIT` covers that one too (the
/// first copy may have come through another connection, and recent Redis versions move a
/// connection's replication offset only on its writes: without one, `WAIT` would answer at once).
/// KEYS: the stream, the key; ARGV: the maximum length, the payload, the done value, the
/// retention in milliseconds, whether a `WAIT` follows.
const PUSH_ONCE: &str = r"
local current = redis.call('GET', KEYS[2])
local state = record_state(current)
if state == 'done' then
  if ARGV[5] == '1' then redis.call('SET', KEYS[2], current, 'KEEPTTL') end
  return 2
end
if state == 'claim' then return 0 end
if state == 'unknown' then return -1 end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return 3 end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'payload', ARGV[2], 'attempts', '0')
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
return id
";

/// Creates the group if needed, moves due retries to the stream, claims entries idle longer
/// than the visibility timeout, then reads new ones, without blocking. Returns
/// `{{id, payload, attempt}, …}`.
/// KEYS: the stream, the delayed set, the delayed payloads; ARGV: the group, the consumer, the
/// maximum count, the visibility timeout in milliseconds.
const PULL: &str = r"
local stream, delayed, data = KEYS[1], KEYS[2], KEYS[3]
local group, consumer, max, visibility = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
-- From 0: nothing pushed before the first worker ran is skipped.
redis.pcall('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
for _, id in ipairs(redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, 100)) do
  local stored = redis.call('HMGET', data, 'p:' .. id, 'a:' .. id, 'f:' .. id, 'r:' .. id)
  if stored[1] then
    add(stream, nil, stored[1], stored[2] or '0', stored[3] or nil, stored[4] or nil)
  end
  redis.call('ZREM', delayed, id)
  redis.call('HDEL', data, 'p:' .. id, 'a:' .. id, 'f:' .. id, 'r:' .. id)
end
local out = {}
local function take(id, entry, count)
  local map = fields(entry)
  local before = tonumber(map['attempts']) or 0
  out[#out + 1] = {id, map['payload'] or '', before + count, tonumber(map['replays']) or 0}
end
local claimed = redis.call('XAUTOCLAIM', stream, group, consumer, visibility, '0-0', 'COUNT', max)
local deleted = false
for _, entry in ipairs(claimed[2]) do
  -- An entry deleted while pending (by hand): Redis 7 drops it from the pending list itself;
  -- Redis 6.2 claims it for this consumer and answers nil (or an entry without fields) in its
  -- place: nothing to deliver, so acknowledge it.
  if type(entry) == 'table' and type(entry[2]) ~= 'table' then
    redis.call('XACK', stream, group, entry[1])
  elseif type(entry) == 'table' then
    local pending = redis.call('XPENDING', stream, group, entry[1], entry[1], 1)
    take(entry[1], entry[2], tonumber(pending[1][4]))
  else
    deleted = true
  end
end
-- Consumers of workers that are gone: nothing pending (a dead worker's entries were just taken
-- over above) and idle longer than the visibility timeout. A live worker removed this way is
-- added again by its next read.
for _, info in ipairs(redis.call('XINFO', 'CONSUMERS', stream, group)) do
  local consumer_fields = fields(info)
  local name = consumer_fields['name']
  if name ~= consumer and tonumber(consumer_fields['pending']) == 0
      and tonumber(consumer_fields['idle']) > tonumber(visibility) then
    redis.call('XGROUP', 'DELCONSUMER', stream, group, name)
  end
end
if deleted then
  -- Redis 6.2 does not say which ids it answered nil for: acknowledge this consumer's pending
  -- entries that no longer exist.
  for _, pending in ipairs(redis.call('XPENDING', stream, group, '-', '+', 100, consumer)) do
    if #redis.call('XRANGE', stream, pending[1], pending[1]) == 0 then
      redis.call('XACK', stream, group, pending[1])
    end
  end
end
if #out < max then
  local read = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', max - #out,
    'STREAMS', stream, '>')
  if type(read) == 'table' then
    for _, entry in ipairs(read[1][2]) do take(entry[1], entry[2], 1) end
  end
end
return out
";

/// Removes the message if this delivery still holds it. KEYS[1]: the stream; ARGV: the group,
/// the id, the attempt.
const ACK: &str = r"
local stream, group, id = KEYS[1], ARGV[1], ARGV[2]
if not held(stream, group, id, ARGV[3]) then return 0 end
redis.call('XACK', stream, group, id)
redis.call('XDEL', stream, id)
return 1
";

/// Removes the messages this delivery of each still holds. KEYS[1]: the stream; ARGV: the
/// group, then an id and its attempt for each message.
const ACK_MANY: &str = r"
local stream, group = KEYS[1], ARGV[1]
local ids = {}
for i = 2, #ARGV, 2 do
  if held(stream, group, ARGV[i], ARGV[i + 1]) then ids[#ids + 1] = ARGV[i] end
end
-- A thousand ids a call: Lua's stack takes about eight thousand arguments.
for first = 1, #ids, 1000 do
  local last = math.min(first + 999, #ids)
  redis.call('XACK', stream, group, unpack(ids, first, last))
  redis.call('XDEL', stream, unpack(ids, first, last))
end
return #ids
";

/// Moves the message to the delayed set, due after the delay, if this delivery still holds it.
/// KEYS: the stream, the delayed set, the delayed payloads; ARGV: the group, the id, the
/// attempt, the delay in milliseconds.
const RETRY: &str = r"
local stream, delayed, data = KEYS[1], KEYS[2], KEYS[3]
local group, id = ARGV[1], ARGV[2]
local payload, _, failed, replays = held(stream, group, id, ARGV[3])
if not payload then return 0 end
local now = now_millis()
local due = now + tonumber(ARGV[4])
redis.call('HSET', data, 'p:' .. id, payload, 'a:' .. id, ARGV[3], 'r:' .. id, replays or '0')
local first = first_failure(failed, ARGV[3], now)
if first then redis.call('HSET', data, 'f:' .. id, first) end
redis.call('ZADD', delayed, due, id)
redis.call('XACK', stream, group, id)
redis.call('XDEL', stream, id)
return 1
";

/// Moves the message to the dead-letter stream with its error, if this delivery still holds it.
/// KEYS: the stream, the dead-letter stream; ARGV: the group, the id, the attempt, the error.
const DEAD_LETTER: &str = r"
local stream, dead = KEYS[1], KEYS[2]
local group, id = ARGV[1], ARGV[2]
local payload, _, failed, replays = held(stream, group, id, ARGV[3])
if not payload then return 0 end
local first = first_failure(failed, ARGV[3], now_millis())
if first then
  redis.call('XADD', dead, '*', 'payload', payload, 'error', ARGV[4], 'attempts', ARGV[3],
    'id', id, 'first_failed', first, 'replays', replays or '0')
else
  redis.call('XADD', dead, '*', 'payload', payload, 'error', ARGV[4], 'attempts', ARGV[3],
    'id', id, 'replays', replays or '0')
end
redis.call('XACK', stream, group, id)
redis.call('XDEL', stream, id)
return 1
";

/// How many messages each part of the queue holds. KEYS: the stream, the delayed set, the
/// dead-letter stream; ARGV: the group. Entries stay in the stream until settled, so the ready
/// ones are its length less the group's pending entries (none before the group exists).
const STATS: &str = r"
local stream, delayed, dead, group = KEYS[1], KEYS[2], KEYS[3], ARGV[1]
local len = redis.call('XLEN', stream)
local pending = 0
local summary = redis.pcall('XPENDING', stream, group)
if type(summary) == 'table' and not summary.err and summary[1] then pending = summary[1] end
return {math.max(len - pending, 0), pending, redis.call('ZCARD', delayed), redis.call('XLEN', dead)}
";

/// Moves dead letters back to the stream as new entries (attempts 0, one more replay), at most
/// 100 per call: those listed in ARGV from the third on, or (ARGV[2] `all`) the oldest up to
/// the id in ARGV[3]. Each is looked up as it is moved: one listed twice, or moved meanwhile by
/// another replay, is moved once. Returns `{replayed, full, looked at}`. KEYS: the stream, the
/// dead letters; ARGV: the maximum length, the mode, then the last id or the ids.
const REPLAY: &str = r"
local stream, dead = KEYS[1], KEYS[2]
local max = tonumber(ARGV[1])
local ids = {}
if ARGV[2] == 'all' then
  for _, entry in ipairs(redis.call('XRANGE', dead, '-', ARGV[3], 'COUNT', 100)) do
    ids[#ids + 1] = entry[1]
  end
else
  for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
end
local replayed = 0
for _, id in ipairs(ids) do
  local found = redis.call('XRANGE', dead, id, id)
  if #found == 1 then
    if redis.call('XLEN', stream) >= max then return {replayed, 1, #ids} end
    local map = fields(found[1][2])
    add(stream, max, map['payload'] or '', '0', nil, (tonumber(map['replays']) or 0) + 1)
    redis.call('XDEL', dead, id)
    replayed = replayed + 1
  end
end
return {replayed, 0, #ids}
";

/// Deletes every dead letter: how many there were. KEYS[1]: the dead letters.
const PURGE_ALL: &str = r"
local count = redis.call('XLEN', KEYS[1])
redis.call('DEL', KEYS[1])
return count
";

/// How many ids a replay script takes at most.
const REPLAY_BATCH: usize = 100;

/// A [`Queue`] on a Redis stream with a consumer group, shared by every replica of a service
/// and every worker: what one replica stores, any worker may take. Works with Redis 6.2 or
/// later and with Valkey: one server or primary, a Redis Cluster (every key of the queue in its
/// stream's hash slot; see [`open`](Self::open)) or the master Redis Sentinel names.
///
/// Each operation is one round trip, a Lua script run with `EVALSHA` (sent with its text,
/// `EVAL`, the first time a server lacks it), so each is atomic:
///
/// - *push*: `XADD <stream> MAXLEN ~ <max_len> * payload … attempts 0`, unless the stream
///   already holds `max_len` entries: then [`QueueError::Full`] (answered 503, the provider
///   retries). Refusing rather than trimming means approximate trimming never drops a
///   delivery that was acknowledged but not processed. With
///   [`wait_for_replicas`](Self::wait_for_replicas), a `WAIT` follows (a second round trip).
/// - *push once* ([`Enqueue::deduplicate`](super::Enqueue::deduplicate)): in the same script,
///   the key's record is read first (`<key_prefix><key>`, the record a
///   [`RedisStore`](crate::dedupe::store::RedisStore) with the same prefix keeps); a done
///   record is a duplicate, a claim is [`Pushed::Claimed`], a record of a format this version
///   does not know is [`QueueError::UnknownFormat`]; otherwise the `XADD` above, then
///   `SET <key> v1:done PX <retention>`. One round trip, atomic. With
///   [`wait_for_replicas`](Self::wait_for_replicas), a duplicate waits for the replicas too
///   (the first copy's own `WAIT` may have failed or its answer been lost).
/// - *pull*: creates the consumer group from id `0` if it does not exist yet (so nothing
///   pushed before the first worker ran is skipped), moves the retries that are due back to
///   the stream, takes over entries idle longer than the visibility timeout with `XAUTOCLAIM`
///   (a dead worker's), removes the consumers of workers that are gone (nothing pending, idle
///   longer than the visibility timeout: restarts do not pile them up in the group), and reads
///   new entries with `XREADGROUP … >`. When that finds nothing, it waits for new entries with a blocking `XREADGROUP … BLOCK` (at most
///   [`max_block`](Self::max_block)) on a connection of its own, so that blocking reads never
///   hold up the other commands; blocking reads of one queue (and its clones) take turns.
///   A pull dropped while it blocks (a worker shutting down) may still take entries on the
///   server: they are delivered again after the visibility timeout, as a dead worker's are.
/// - *ack*: `XACK` and `XDEL`.
/// - *retry*: the payload goes to a sorted set `<stream>:delayed` (scored by when it is due,
///   on the server's clock; the payload in the hash `<stream>:delayed:data`), and the entry is
///   acknowledged and deleted; a later pull adds it to the stream again, under a new id.
///   Retries live in Redis, so they survive a restart of every worker.
/// - *dead letter*: `XADD <stream>:dead * payload … error … attempts … id …`, and the entry is
///   acknowledged and deleted.
///
/// The attempt count is the entry's `attempts` field (deliveries before it was last written:
/// 0 when pushed, the failed attempt when retried) plus its delivery count in the group,
/// which `XREADGROUP` sets to 1 and `XAUTOCLAIM` raises. Ack, retry and dead letter act only
/// if the message's attempt is still the entry's current one: a worker whose entry was taken
/// over after its visibility timeout cannot settle it any more.
///
/// An error (the server is down, a timeout, an error reply) is [`QueueError::Unavailable`],
/// which [`Enqueue`](super::Enqueue) answers 503. The connection and response timeouts of
/// [`RedisQueue::config`] (1 second each) make an unreachable server a quick error.
///
/// Redis keeps the queue only as durably as it is configured to: without AOF (`appendonly
/// yes`, `appendfsync everysec` or `always`) a server that restarts loses what it held;
/// [`wait_for_replicas`](Self::wait_for_replicas) covers the loss of a primary.
///
/// Cloning the queue gives another handle on the same connections.
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
/// use tower_webhook::{
///     provider::videonest,
///     queue::{Enqueue, RedisQueue},
/// };
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Connects now, and fails if the server cannot be reached…
/// let queue = RedisQueue::connect("redis://127.0.0.1:6379").await?;
/// // …or on the first request, so that the service starts while Redis is down (its requests
/// // are answered 503 until Redis is back):
/// let queue = RedisQueue::connect_lazy("redis://127.0.0.1:6379")?
///     .stream("billing:webhooks")
///     .group("billing-workers")
///     .max_len(100_000)
///     .wait_for_replicas(1, Duration::from_millis(100));
///
/// let enqueue = Enqueue::<videonest::Event, _>::new(queue.clone());
/// # let _ = enqueue;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisQueue {
    connection: RedisConnection,
    blocking: Arc<Mutex<RedisConnection>>,
    keys: Arc<Keys>,
    group: Arc<str>,
    max_len: u64,
    replicas: Option<(u32, Duration)>,
    max_block: Duration,
    scripts: Arc<Scripts>,
    key_prefix: Arc<str>,
}

struct Keys {
    stream: String,
    delayed: String,
    delayed_data: String,
    dead: String,
    /// What comes before a record's key: on a Redis Cluster, the stream's hash tag, so that
    /// `push_once` touches one hash slot; on one server, nothing.
    records: String,
}

impl Keys {
    /// The keys of `stream`. On a cluster, the others carry its hash tag: its own tag, or
    /// `{<stream>}` (which hashes as the stream does).
    fn new(stream: &str, cluster: bool) -> Self {
        let family = if cluster && !redis_connection::has_hash_tag(stream) {
            format!("{{{stream}}}")
        } else {
            stream.to_owned()
        };
        Self {
            stream: stream.to_owned(),
            delayed: format!("{family}:delayed"),
            delayed_data: format!("{family}:delayed:data"),
            dead: format!("{family}:dead"),
            records: if cluster {
                redis_connection::hash_tag(stream)
            } else {
                String::new()
            },
        }
    }
}

struct Scripts {
    push: Lua,
    push_once: Lua,
    pull: Lua,
    ack: Lua,
    ack_many: Lua,
    retry: Lua,
    dead_letter: Lua,
    stats: Lua,
    replay: Lua,
    purge_all: Lua,
}

impl RedisQueue {
    /// The connection settings [`connect`](Self::connect) and
    /// [`connect_lazy`](Self::connect_lazy) use, to adjust and pass to
    /// [`connect_with_config`](Self::connect_with_config): connection and response timeouts of
    /// [`DEFAULT_CONNECTION_TIMEOUT`] and [`DEFAULT_RESPONSE_TIMEOUT`], and at most one retry
    /// 100 ms after a failed connection attempt, so that while the server is down each push is
    /// answered within about two connection timeouts.
    pub fn config() -> ConnectionManagerConfig {
        redis_connection::config(DEFAULT_CONNECTION_TIMEOUT, DEFAULT_RESPONSE_TIMEOUT)
    }

    /// Connects to the server at `url` (such as `redis://127.0.0.1:6379`,
    /// `redis://:password@host:6379/2` or `redis+unix:///run/redis.sock`) with
    /// [`RedisQueue::config`]. Fails if the URL is invalid or the server cannot be reached.
    pub async fn connect(url: impl IntoConnectionInfo) -> Result<Self, QueueError> {
        Self::connect_with_config(url, Self::config()).await
    }

    /// Connects to the server at `url` with `config`. The connection for blocking reads is
    /// made with `config` too, its response timeout raised to allow for the block.
    pub async fn connect_with_config(
        url: impl IntoConnectionInfo,
        config: ConnectionManagerConfig,
    ) -> Result<Self, QueueError> {
        let client = Client::open(url).map_err(unavailable)?;
        let connection = ConnectionManager::new_with_config(client.clone(), config.clone())
            .await
            .map_err(unavailable)?;
        let blocking = ConnectionManager::new_lazy_with_config(client, blocking_config(config))
            .map_err(unavailable)?;
        Ok(Self::new(connection, blocking))
    }

    /// A queue for the server at `url` that connects on its first request, with
    /// [`RedisQueue::config`]: a service can start while Redis is down. Fails if the URL is
    /// invalid, or if it is not called from within a Tokio runtime.
    pub fn connect_lazy(url: impl IntoConnectionInfo) -> Result<Self, QueueError> {
        Self::connect_lazy_with_config(url, Self::config())
    }

    /// A queue for the server at `url` that connects on its first request, with `config`.
    pub fn connect_lazy_with_config(
        url: impl IntoConnectionInfo,
        config: ConnectionManagerConfig,
    ) -> Result<Self, QueueError> {
        let client = redis_connection::lazy_client(url).map_err(|err| match err {
            LazyError::NoRuntime => QueueError::unavailable(
                "RedisQueue::connect_lazy must be called from within a Tokio runtime",
            ),
            LazyError::Redis(err) => unavailable(err),
        })?;
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
            .map_err(unavailable)?;
        let blocking = ConnectionManager::new_lazy_with_config(client, blocking_config(config))
            .map_err(unavailable)?;
        Ok(Self::new(connection, blocking))
    }

    /// A queue for any URL [`RedisConnection::open`] takes (one server, or a Redis Cluster
    /// with `redis+cluster://host:port,host:port`), that connects on its first request: a
    /// service can start while Redis is down. Fails if the URL is invalid, or if it is not
    /// called from within a Tokio runtime.
    ///
    /// On a cluster, every key of the queue lives in its stream's hash slot, so that each
    /// script touches one node: `<stream>:delayed` becomes `{<stream>}:delayed` (and so on),
    /// unless the stream's name has a hash tag of its own (`{billing}:webhooks`), and the
    /// records of [`push_once`](Queue::push_once) are written under the same tag, before
    /// [`key_prefix`](Self::key_prefix). A stream's whole traffic goes to the node that holds
    /// its slot: for more, use several queues (streams) with different names.
    pub fn open(url: &str) -> Result<Self, QueueError> {
        let timeouts = redis_connection::Timeouts {
            connection: DEFAULT_CONNECTION_TIMEOUT,
            response: DEFAULT_RESPONSE_TIMEOUT,
        };
        let blocking = redis_connection::Timeouts {
            response: DEFAULT_RESPONSE_TIMEOUT + DEFAULT_MAX_BLOCK,
            ..timeouts
        };
        Ok(Self::new(
            RedisConnection::open_with(url, timeouts).map_err(unavailable)?,
            RedisConnection::open_with(url, blocking).map_err(unavailable)?,
        ))
    }

    /// A queue on connections of your own: [`ConnectionManager`]s (with TLS, credentials,
    /// other timeouts…) or a Redis Cluster's
    /// [`ClusterConnection`](redis::cluster_async::ClusterConnection)s: `connection` for every
    /// command, `blocking` (another connection to the same server or cluster) for the blocking
    /// reads only. Give both a response timeout, `blocking` one longer than
    /// [`max_block`](Self::max_block).
    pub fn new(
        connection: impl Into<RedisConnection>,
        blocking: impl Into<RedisConnection>,
    ) -> Self {
        let connection = connection.into();
        let cluster = connection.is_cluster();
        Self {
            connection,
            blocking: Arc::new(Mutex::new(blocking.into())),
            keys: Arc::new(Keys::new(DEFAULT_STREAM, cluster)),
            group: Arc::from(DEFAULT_GROUP),
            max_len: DEFAULT_MAX_LEN,
            replicas: None,
            max_block: DEFAULT_MAX_BLOCK,
            key_prefix: Arc::from(crate::dedupe::store::DEFAULT_PREFIX),
            scripts: Arc::new(Scripts {
                push: Lua::new(PUSH),
                push_once: Lua::new(&format!("{}{PUSH_ONCE}", redis_record::LUA)),
                pull: Lua::new(&format!("{HELD}{PULL}")),
                ack: Lua::new(&format!("{HELD}{ACK}")),
                ack_many: Lua::new(&format!("{HELD}{ACK_MANY}")),
                retry: Lua::new(&format!("{HELD}{RETRY}")),
                dead_letter: Lua::new(&format!("{HELD}{DEAD_LETTER}")),
                stats: Lua::new(STATS),
                replay: Lua::new(&format!("{HELD}{REPLAY}")),
                purge_all: Lua::new(PURGE_ALL),
            }),
        }
    }

    /// Uses the stream `stream` instead of [`DEFAULT_STREAM`]; retries wait in
    /// `<stream>:delayed` (and `<stream>:delayed:data`), dead letters go to `<stream>:dead`.
    /// On a Redis Cluster these are `{<stream>}:delayed` and so on, unless `stream` has a hash
    /// tag of its own; a name that holds `}` outside a hash tag cannot share its slot that way:
    /// give it a tag (`{billing}:webhooks`), or the cluster refuses its scripts (`CROSSSLOT`).
    #[must_use]
    pub fn stream(mut self, stream: &str) -> Self {
        self.keys = Arc::new(Keys::new(stream, self.connection.is_cluster()));
        self
    }

    setters! {
        /// Uses the consumer group `group` instead of [`DEFAULT_GROUP`].
        #[must_use]
        pub fn group(group: impl Into<Arc<str>>) { group = group.into() }

        /// Holds at most `max_len` entries in the stream (waiting or being processed; retries
        /// waiting for their delay aside) instead of [`DEFAULT_MAX_LEN`]; a push beyond is refused
        /// with [`QueueError::Full`] (at least 1). Retries waiting for their delay and the
        /// dead-letter stream are not bounded by it: run Redis with `maxmemory-policy noeviction`,
        /// so that a full Redis refuses writes (503) rather than evicting stored deliveries.
        #[must_use]
        pub fn max_len(max_len: u64) { max_len = max_len.max(1) }
    }

    /// After each push, waits (`WAIT`) up to `timeout` for `replicas` replicas to acknowledge
    /// it; fewer is [`QueueError::Unavailable`] (answered 503: the provider retries, and the
    /// delivery may then be stored twice, which the worker's at-least-once processing allows).
    ///
    /// `WAIT` blocks the connection it is sent on, and it goes on the shared one: while a
    /// replica lags, other commands of this queue wait behind it. Keep `timeout` well below the
    /// response timeout ([`DEFAULT_RESPONSE_TIMEOUT`] unless configured), or a stored push is
    /// answered 503 by the client's timeout.
    #[must_use]
    pub fn wait_for_replicas(mut self, replicas: u32, timeout: Duration) -> Self {
        self.replicas = Some((replicas, timeout));
        self
    }

    setters! {
        /// Blocks at most `max_block` on the server in one pull waiting for new entries, instead of
        /// [`DEFAULT_MAX_BLOCK`]. The blocking connection of [`connect`](Self::connect) and
        /// [`connect_lazy`](Self::connect_lazy) allows for [`DEFAULT_MAX_BLOCK`]; raise its
        /// response timeout with [`RedisQueue::new`] for longer blocks.
        #[must_use]
        pub fn max_block(max_block: Duration) { max_block = max_block }

        /// Records the keys of [`push_once`](Queue::push_once) (the deduplication keys of
        /// [`Enqueue::deduplicate`](super::Enqueue::deduplicate)) under `prefix` instead of
        /// `tower-webhook:dedupe:`, the default prefix of
        /// [`RedisStore`](crate::dedupe::store::RedisStore). With the same prefix on the same
        /// server, the queue and a `RedisStore` share their records: a delivery stored by the one
        /// is a duplicate to the other, which helps while a service moves from a
        /// [`DedupeLayer`](crate::dedupe::DedupeLayer) in front of [`Enqueue`](super::Enqueue) to
        /// [`Enqueue::deduplicate`](super::Enqueue::deduplicate).
        ///
        /// On a Redis Cluster the records go under the stream's hash tag first
        /// (`{<stream>}tower-webhook:dedupe:…`), so that `push_once` touches one slot: to share
        /// them with a `RedisStore`, give the store that whole prefix ([`RedisStore::prefix`]); a
        /// queue on another stream keeps records of its own.
        ///
        /// [`RedisStore::prefix`]: crate::dedupe::store::RedisStore::prefix
        #[must_use]
        pub fn key_prefix(prefix: impl Into<Arc<str>>) { key_prefix = prefix.into() }
    }

    /// The stream's key.
    pub fn stream_key(&self) -> &str {
        &self.keys.stream
    }

    /// The dead-letter stream's key: `<stream>:dead` (on a Redis Cluster, `{<stream>}:dead`
    /// unless the stream has a hash tag of its own).
    pub fn dead_letter_key(&self) -> &str {
        &self.keys.dead
    }

    /// The consumer group's name.
    pub fn group_name(&self) -> &str {
        &self.group
    }

    /// The connection, to run commands of your own on it.
    pub fn connection(&self) -> &RedisConnection {
        &self.connection
    }

    /// Up to `count` dead letters, oldest first: the first page of
    /// [`list_dead_letters`](Queue::list_dead_letters).
    pub async fn dead_letters(&self, count: usize) -> Result<Vec<DeadLetter>, QueueError> {
        Ok(self.list_dead_letters(Page::first(count)).await?.letters)
    }

    fn full(&self) -> QueueError {
        QueueError::Full {
            capacity: usize::try_from(self.max_len).unwrap_or(usize::MAX),
        }
    }

    /// With [`wait_for_replicas`](Self::wait_for_replicas), the replicas and the timeout in
    /// milliseconds for `WAIT`.
    fn wait(&self) -> Option<(u32, u64)> {
        self.replicas
            .map(|(replicas, timeout)| (replicas, millis(timeout)))
    }

    /// Whether enough replicas acknowledged a write (`acknowledged`: `WAIT`'s answer).
    fn replicated(&self, acknowledged: Option<u32>) -> Result<(), QueueError> {
        match (self.replicas, acknowledged) {
            (Some((replicas, _)), Some(acknowledged)) if acknowledged < replicas => {
                Err(QueueError::unavailable(format!(
                    "stored, but acknowledged by {acknowledged} of {replicas} replicas"
                )))
            }
            _ => Ok(()),
        }
    }

    /// With [`wait_for_replicas`](Self::wait_for_replicas), waits for the replicas to
    /// acknowledge what `connection` wrote.
    async fn wait_for_replicas_of(
        &self,
        connection: &mut RedisConnection,
    ) -> Result<(), QueueError> {
        let Some((replicas, timeout)) = self.replicas else {
            return Ok(());
        };
        // On a cluster, to the master that holds the stream (and took the write), on the
        // connection the write went on.
        let mut wait = redis::cmd("WAIT");
        wait.arg(replicas).arg(millis(timeout));
        let acknowledged: u32 = connection
            .query_at(&self.keys.stream, wait)
            .await
            .map_err(unavailable)?;
        if acknowledged < replicas {
            return Err(QueueError::unavailable(format!(
                "stored, but acknowledged by {acknowledged} of {replicas} replicas"
            )));
        }
        Ok(())
    }

    /// Settles `message` with `script`: KEYS the stream then `keys`, ARGV the group, the id,
    /// the attempt then `args`.
    fn settle(
        &self,
        script: fn(&Scripts) -> &Lua,
        message: &Message,
        keys: &[&str],
        args: Vec<Vec<u8>>,
    ) -> QueueFuture<()> {
        let mut all_keys = vec![self.keys.stream.clone()];
        all_keys.extend(keys.iter().map(|key| (*key).to_owned()));
        let mut all_args = vec![
            self.group.as_bytes().to_vec(),
            message.id.0.clone().into_bytes(),
            message.attempt.to_string().into_bytes(),
        ];
        all_args.extend(args);
        self.run(script, all_keys, all_args)
    }

    /// Runs `script` with `keys` and `args`, for its effect.
    fn run(
        &self,
        script: fn(&Scripts) -> &Lua,
        keys: Vec<String>,
        args: Vec<Vec<u8>>,
    ) -> QueueFuture<()> {
        let mut connection = self.connection.clone();
        let scripts = Arc::clone(&self.scripts);
        Box::pin(async move {
            let mut invocation = script(&scripts).prepare_invoke();
            for key in &keys {
                invocation.key(key);
            }
            for arg in &args {
                invocation.arg(arg);
            }
            let _: i64 = invocation
                .invoke_async(&mut connection)
                .await
                .map_err(unavailable)?;
            Ok(())
        })
    }
}

impl Queue for RedisQueue {
    fn push_once(&self, key: &str, retention: Duration, payload: Bytes) -> QueueFuture<Pushed> {
        let mut connection = self.connection.clone();
        let queue = self.clone();
        let key = format!("{}{}{key}", self.keys.records, self.key_prefix);
        Box::pin(async move {
            // With `wait_for_replicas`, the script and `WAIT` go as one.
            let (reply, acknowledged): (redis::Value, _) = queue
                .scripts
                .push_once
                .key(&queue.keys.stream)
                .key(key)
                .arg(queue.max_len)
                .arg(payload.as_ref())
                .arg(redis_record::DONE)
                .arg(redis_record::expiry_millis(retention))
                .arg(if queue.replicas.is_some() { "1" } else { "0" })
                .invoke_waiting(&mut connection, queue.wait())
                .await
                .map_err(unavailable)?;
            let id = match reply {
                redis::Value::Int(0) => return Ok(Pushed::Claimed),
                redis::Value::Int(2) => {
                    // The first copy may not have reached the replicas yet (its answer was a
                    // 503, or was lost): a duplicate is acknowledged on the same terms.
                    queue.replicated(acknowledged)?;
                    return Ok(Pushed::Duplicate);
                }
                redis::Value::Int(3) => return Err(queue.full()),
                redis::Value::Int(UNKNOWN) => return Err(QueueError::UnknownFormat),
                redis::Value::BulkString(id) => String::from_utf8_lossy(&id).into_owned(),
                other => {
                    return Err(QueueError::unavailable(format!(
                        "unexpected reply to the push script: {other:?}"
                    )));
                }
            };
            queue.replicated(acknowledged)?;
            Ok(Pushed::Stored(MessageId(id)))
        })
    }

    fn push(&self, payload: Bytes) -> QueueFuture<MessageId> {
        let mut connection = self.connection.clone();
        let queue = self.clone();
        Box::pin(async move {
            let (id, acknowledged): (Option<String>, _) = queue
                .scripts
                .push
                .key(&queue.keys.stream)
                .arg(queue.max_len)
                .arg(payload.as_ref())
                .invoke_waiting(&mut connection, queue.wait())
                .await
                .map_err(unavailable)?;
            let Some(id) = id else {
                return Err(queue.full());
            };
            queue.replicated(acknowledged)?;
            Ok(MessageId(id))
        })
    }

    fn pull(&self, consumer: &str, pull: Pull) -> QueueFuture<Vec<Message>> {
        let Pull {
            max,
            visibility,
            wait,
        } = pull;
        let queue = self.clone();
        let consumer = consumer.to_owned();
        Box::pin(async move {
            if max == 0 {
                return Ok(Vec::new());
            }
            let mut connection = queue.connection.clone();
            let taken: Vec<(String, Vec<u8>, u32, u32)> = queue
                .scripts
                .pull
                .key(&queue.keys.stream)
                .key(&queue.keys.delayed)
                .key(&queue.keys.delayed_data)
                .arg(&*queue.group)
                .arg(&consumer)
                .arg(max)
                .arg(millis(visibility))
                .invoke_async(&mut connection)
                .await
                .map_err(unavailable)?;
            if !taken.is_empty() || wait.is_zero() {
                return Ok(messages(taken));
            }
            // Nothing now: wait for new entries on the blocking connection, taking turns with
            // the other pulls of this queue.
            let wait = wait.min(queue.max_block);
            let started = tokio::time::Instant::now();
            let Ok(mut blocking) = tokio::time::timeout(wait, queue.blocking.lock()).await else {
                return Ok(Vec::new());
            };
            let block = wait.saturating_sub(started.elapsed());
            if block.is_zero() {
                return Ok(Vec::new());
            }
            type Read = Option<Vec<(String, Vec<(String, HashMap<String, Vec<u8>>)>)>>;
            let read: Read = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(&*queue.group)
                .arg(&consumer)
                .arg("COUNT")
                .arg(max)
                .arg("BLOCK")
                .arg(millis(block))
                .arg("STREAMS")
                .arg(&queue.keys.stream)
                .arg(">")
                .query_async(&mut *blocking)
                .await
                .map_err(unavailable)?;
            let entries = read
                .into_iter()
                .flatten()
                .flat_map(|(_, entries)| entries)
                .map(|(id, mut fields)| {
                    let number = |name: &str| -> u32 {
                        fields
                            .get(name)
                            .and_then(|a| std::str::from_utf8(a).ok()?.parse().ok())
                            .unwrap_or(0)
                    };
                    let (before, replays) = (number("attempts"), number("replays"));
                    let payload = fields.remove("payload").unwrap_or_default();
                    (id, payload, before + 1, replays)
                })
                .collect();
            Ok(messages(entries))
        })
    }

    fn ack(&self, message: &Message) -> QueueFuture<()> {
        self.settle(|s| &s.ack, message, &[], Vec::new())
    }

    /// One script for all.
    fn ack_many(&self, messages: &[Message]) -> QueueFuture<()> {
        if messages.is_empty() {
            return Box::pin(async { Ok(()) });
        }
        let mut args = vec![self.group.as_bytes().to_vec()];
        for message in messages {
            args.push(message.id.0.clone().into_bytes());
            args.push(message.attempt.to_string().into_bytes());
        }
        self.run(|s| &s.ack_many, vec![self.keys.stream.clone()], args)
    }

    fn retry(&self, message: &Message, _error: &str, delay: Duration) -> QueueFuture<()> {
        let keys = [self.keys.delayed.as_str(), self.keys.delayed_data.as_str()];
        let delay = millis(delay).to_string().into_bytes();
        self.settle(|s| &s.retry, message, &keys, vec![delay])
    }

    fn dead_letter(&self, message: &Message, error: &str) -> QueueFuture<()> {
        let keys = [self.keys.dead.as_str()];
        self.settle(
            |s| &s.dead_letter,
            message,
            &keys,
            vec![error.as_bytes().to_vec()],
        )
    }

    fn list_dead_letters(&self, page: Page) -> QueueFuture<DeadLetterPage> {
        let mut connection = self.connection.clone();
        let key = self.keys.dead.clone();
        Box::pin(async move {
            let start = match &page.after {
                None => "-".to_owned(),
                // Nothing comes after the largest id there is.
                Some(after) if stream_id(&after.0) == Some((u64::MAX, u64::MAX)) => {
                    return Ok(DeadLetterPage::new(Vec::new(), false));
                }
                Some(after) if is_stream_id(&after.0) => format!("({after}"),
                // Not an id of a dead letter: nothing comes after it.
                Some(_) => return Ok(DeadLetterPage::new(Vec::new(), false)),
            };
            if page.limit == 0 {
                return Ok(DeadLetterPage::new(Vec::new(), false));
            }
            let mut entries: Vec<(String, HashMap<String, Vec<u8>>)> = redis::cmd("XRANGE")
                .arg(&key)
                .arg(start)
                .arg("+")
                .arg("COUNT")
                .arg(page.limit.saturating_add(1))
                .query_async(&mut connection)
                .await
                .map_err(unavailable)?;
            let more = entries.len() > page.limit;
            entries.truncate(page.limit);
            let letters = entries.into_iter().map(dead_letter).collect();
            Ok(DeadLetterPage::new(letters, more))
        })
    }

    fn replay_dead_letters(&self, which: Select) -> QueueFuture<u64> {
        let queue = self.clone();
        Box::pin(async move {
            let mut connection = queue.connection.clone();
            let mut replayed = 0;
            // Oldest first. `all` means the dead letters there are now, up to the newest: those
            // that fail again meanwhile are not replayed again.
            let mut batches: std::collections::VecDeque<Vec<String>> = match &which {
                Select::All => {
                    let newest: Vec<(String, HashMap<String, Vec<u8>>)> = redis::cmd("XREVRANGE")
                        .arg(&queue.keys.dead)
                        .arg("+")
                        .arg("-")
                        .arg("COUNT")
                        .arg(1)
                        .query_async(&mut connection)
                        .await
                        .map_err(unavailable)?;
                    let Some((newest, _)) = newest.into_iter().next() else {
                        return Ok(0);
                    };
                    std::collections::VecDeque::from([vec![newest]])
                }
                Select::Ids(ids) => {
                    let mut seen = std::collections::HashSet::new();
                    ids.iter()
                        .filter(|id| is_stream_id(&id.0) && seen.insert(id.0.as_str()))
                        .map(|id| id.0.clone())
                        .collect::<Vec<_>>()
                        .chunks(REPLAY_BATCH)
                        .map(<[String]>::to_vec)
                        .collect()
                }
            };
            loop {
                let (mode, args) = match &which {
                    // The same bound each time: each batch is the oldest up to it.
                    Select::All => ("all", batches[0].clone()),
                    Select::Ids(_) => match batches.pop_front() {
                        Some(ids) => ("ids", ids),
                        None => break,
                    },
                };
                let mut invocation = queue.scripts.replay.prepare_invoke();
                invocation
                    .key(&queue.keys.stream)
                    .key(&queue.keys.dead)
                    .arg(queue.max_len)
                    .arg(mode);
                for arg in &args {
                    invocation.arg(arg);
                }
                let ((count, full, looked_at), acknowledged): ((u64, u8, usize), _) = invocation
                    .invoke_waiting(&mut connection, queue.wait())
                    .await
                    .map_err(unavailable)?;
                if count > 0 {
                    queue.replicated(acknowledged)?;
                }
                replayed += count;
                if full == 1 {
                    break;
                }
                if matches!(which, Select::All) && looked_at < REPLAY_BATCH {
                    break;
                }
            }
            Ok(replayed)
        })
    }

    fn purge_dead_letters(&self, which: Select) -> QueueFuture<u64> {
        let queue = self.clone();
        Box::pin(async move {
            let mut connection = queue.connection.clone();
            let purged: u64 = match which {
                Select::All => queue
                    .scripts
                    .purge_all
                    .key(&queue.keys.dead)
                    .invoke_async(&mut connection)
                    .await
                    .map_err(unavailable)?,
                Select::Ids(ids) => {
                    let ids: Vec<&str> = ids
                        .iter()
                        .map(|id| id.0.as_str())
                        .filter(|id| is_stream_id(id))
                        .collect();
                    if ids.is_empty() {
                        return Ok(0);
                    }
                    redis::cmd("XDEL")
                        .arg(&queue.keys.dead)
                        .arg(&ids)
                        .query_async(&mut connection)
                        .await
                        .map_err(unavailable)?
                }
            };
            queue.wait_for_replicas_of(&mut connection).await?;
            Ok(purged)
        })
    }

    fn stats(&self) -> QueueFuture<QueueStats> {
        let queue = self.clone();
        Box::pin(async move {
            let mut connection = queue.connection.clone();
            let [ready, pending, delayed, dead]: [u64; 4] = queue
                .scripts
                .stats
                .key(&queue.keys.stream)
                .key(&queue.keys.delayed)
                .key(&queue.keys.dead)
                .arg(&*queue.group)
                .invoke_async(&mut connection)
                .await
                .map_err(unavailable)?;
            Ok(QueueStats {
                ready,
                pending,
                delayed,
                dead,
            })
        })
    }
}

impl fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisQueue")
            .field("connection", &self.connection)
            .field("stream", &self.keys.stream)
            .field("group", &self.group)
            .field("max_len", &self.max_len)
            .field("replicas", &self.replicas)
            .field("max_block", &self.max_block)
            .finish_non_exhaustive()
    }
}

fn messages(taken: Vec<(String, Vec<u8>, u32, u32)>) -> Vec<Message> {
    taken
        .into_iter()
        .map(|(id, payload, attempt, replays)| Message {
            id: MessageId(id),
            payload: Bytes::from(payload),
            attempt,
            replays,
        })
        .collect()
}

/// Whether `id` is a stream entry id (`<milliseconds>-<sequence>`, each a `u64`), as Redis
/// takes it.
fn is_stream_id(id: &str) -> bool {
    stream_id(id).is_some()
}

/// The two numbers of a stream entry id.
fn stream_id(id: &str) -> Option<(u64, u64)> {
    let number = |part: &str| {
        (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse::<u64>().ok())
            .flatten()
    };
    let (millis, sequence) = id.split_once('-')?;
    Some((number(millis)?, number(sequence)?))
}

/// A dead letter from its entry in the dead-letter stream.
fn dead_letter((id, mut fields): (String, HashMap<String, Vec<u8>>)) -> DeadLetter {
    let text =
        |value: Option<Vec<u8>>| String::from_utf8_lossy(&value.unwrap_or_default()).into_owned();
    let number = |value: Option<Vec<u8>>| text(value).parse::<u64>().ok();
    let at = |millis: u64| std::time::UNIX_EPOCH.checked_add(Duration::from_millis(millis));
    // The entry's id is the time it was added: when its last attempt failed.
    let failed_at = id
        .split_once('-')
        .and_then(|(millis, _)| millis.parse().ok())
        .and_then(at);
    DeadLetter {
        message_id: MessageId(text(fields.remove("id"))),
        payload: Bytes::from(fields.remove("payload").unwrap_or_default()),
        attempts: number(fields.remove("attempts"))
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        error: text(fields.remove("error")),
        first_failed_at: number(fields.remove("first_failed")).and_then(at),
        failed_at,
        replays: number(fields.remove("replays"))
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        id: MessageId(id),
    }
}

/// The blocking connection's settings: `config` with a response timeout that allows for
/// [`DEFAULT_MAX_BLOCK`].
fn blocking_config(config: ConnectionManagerConfig) -> ConnectionManagerConfig {
    config.set_response_timeout(Some(DEFAULT_RESPONSE_TIMEOUT + DEFAULT_MAX_BLOCK))
}

/// A duration in whole milliseconds, rounded up.
/// Milliseconds for Redis, at most ~100 years (Redis refuses values near `u64::MAX`).
fn millis(duration: Duration) -> u64 {
    const MAX: u64 = 100 * 365 * 24 * 3600 * 1000;
    u64::try_from(duration.as_nanos().div_ceil(1_000_000)).map_or(MAX, |ms| ms.min(MAX))
}

fn unavailable(err: RedisError) -> QueueError {
    QueueError::unavailable(err)
}
