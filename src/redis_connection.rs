//! What the Redis store and the Redis queue share: the connection (one server or a Redis
//! Cluster), its settings and the lazy client.

use std::{sync::Arc, time::Duration};

use redis::{
    AsyncConnectionConfig, Client, Cmd, ErrorKind, FromRedisValue, IntoConnectionInfo, Pipeline,
    RedisConnectionInfo, RedisError, RedisFuture, ServerErrorKind, ToRedisArgs, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection},
    cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig},
    cluster_async::ClusterConnection,
    cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr},
    sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType},
};

/// A connection to Redis that a [`RedisStore`](crate::dedupe::store::RedisStore) or a
/// [`RedisQueue`](crate::queue::RedisQueue) sends its commands on: one server through a
/// reconnecting [`ConnectionManager`]; a Redis Cluster through redis-rs's
/// [`ClusterConnection`], which follows `MOVED` and `ASK` redirections and topology changes; or
/// the master that Redis Sentinel names, asked again after a failover.
///
/// Made from either with `From`, or from a URL with [`RedisConnection::open`]. It is itself a
/// redis-rs [`ConnectionLike`], to run commands of your own:
///
/// ```no_run
/// # async fn example() -> Result<(), redis::RedisError> {
/// use tower_webhook::RedisConnection;
///
/// let mut connection = RedisConnection::open("redis+cluster://10.0.0.1:6379,10.0.0.2:6379")?;
/// let pong: String = redis::cmd("PING").query_async(&mut connection).await?;
/// # let _ = pong;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisConnection(Inner);

#[derive(Clone)]
enum Inner {
    Node(ConnectionManager),
    Cluster(Cluster),
    Sentinel(Sentinel),
}

/// A Redis Cluster connection, made again from its client after a command timed out: redis-rs
/// retries a timed-out command on the same node without asking the cluster where its slot
/// went, so a master that stalls (frozen, not down) would be asked for ever after its replica
/// took over. A new connection learns the slots afresh. At most once a second; a connection
/// given with `From` has no client and is kept.
#[derive(Clone)]
struct Cluster(Arc<ClusterShared>);

struct ClusterShared {
    /// The client and the timeouts of its nodes' connections.
    client: Option<(ClusterClient, Timeouts)>,
    current: std::sync::Mutex<(ClusterConnection, Option<std::time::Instant>)>,
}

impl Cluster {
    fn new(connection: ClusterConnection, client: Option<(ClusterClient, Timeouts)>) -> Self {
        Self(Arc::new(ClusterShared {
            client,
            current: std::sync::Mutex::new((connection, None)),
        }))
    }

    fn connection(&self) -> ClusterConnection {
        self.0
            .current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .0
            .clone()
    }

    /// After `err`: a new connection if a command timed out.
    fn after(&self, err: &RedisError) {
        let Some((client, timeouts)) = &self.0.client else {
            return;
        };
        if !err.is_timeout() {
            return;
        }
        let mut current = self
            .0
            .current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if current
            .1
            .is_some_and(|made| made.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        *current = (
            client.get_pending_async_connection_with_config(cluster_config(*timeouts)),
            Some(std::time::Instant::now()),
        );
    }

    /// `reply`, after [`after`](Self::after) saw its error.
    fn seen<T>(&self, reply: Result<T, RedisError>) -> Result<T, RedisError> {
        if let Err(err) = &reply {
            self.after(err);
        }
        reply
    }
}

/// The master Sentinel names, and the connection to it: made on the first command, and
/// forgotten when a command fails in a way a failover explains (the connection lost or timed
/// out, or the server answering as a read-only replica), so that the next command asks Sentinel
/// again.
#[derive(Clone)]
struct Sentinel(Arc<SentinelShared>);

struct SentinelShared {
    client: tokio::sync::Mutex<SentinelClient>,
    /// The master's connection, numbered: a late failure on a connection already replaced does
    /// not forget its successor.
    master: std::sync::Mutex<(u64, Option<MultiplexedConnection>)>,
    timeouts: Timeouts,
}

impl Sentinel {
    /// The master's connection and its number. Asking Sentinel and connecting take at most
    /// three connection timeouts in all, the wait for another command's lookup included.
    async fn master(&self) -> Result<(u64, MultiplexedConnection), RedisError> {
        if let Some(master) = self.current() {
            return Ok(master);
        }
        let timeouts = self.0.timeouts;
        let lookup = async {
            let mut client = self.0.client.lock().await;
            // Another command may have found it while this one waited.
            if let Some(master) = self.current() {
                return Ok(master);
            }
            let found = client.async_get_client().await?;
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(timeouts.connection))
                .set_response_timeout(Some(timeouts.response));
            let connection = found
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            let mut master = self.lock();
            master.0 += 1;
            master.1 = Some(connection.clone());
            Ok((master.0, connection))
        };
        tokio::time::timeout(timeouts.connection * 3, lookup)
            .await
            .map_err(|_| timed_out("asking Sentinel for the master"))?
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, Option<MultiplexedConnection>)> {
        self.0
            .master
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn current(&self) -> Option<(u64, MultiplexedConnection)> {
        let master = self.lock();
        master.1.clone().map(|connection| (master.0, connection))
    }

    /// After a reply on connection `number`: forgets it if a failover may explain the reply
    /// (an error of the connection, or a `READONLY` answer, which redis-rs hands back as a
    /// value).
    fn after<'v>(
        &self,
        number: u64,
        reply: Result<impl IntoIterator<Item = &'v Value>, &RedisError>,
    ) {
        let failover = match reply {
            Err(err) => {
                err.is_io_error()
                    || err.is_timeout()
                    || err.is_connection_dropped()
                    || err.is_connection_refusal()
                    || read_only(err)
            }
            Ok(values) => values.into_iter().any(|value| match value {
                Value::ServerError(err) => read_only(&RedisError::from(err.clone())),
                _ => false,
            }),
        };
        if failover {
            let mut master = self.lock();
            if master.0 == number {
                master.1 = None;
            }
        }
    }
}

/// The settings of a cluster's node connections: the builder's timeouts are not kept when a
/// connection is made with a `ClusterConfig`, so they are given here too.
fn cluster_config(timeouts: Timeouts) -> ClusterConfig {
    ClusterConfig::new()
        .set_connection_timeout(timeouts.connection)
        .set_response_timeout(timeouts.response)
}

/// Whether `err` says the server is a read-only replica (`READONLY`, or from inside a script on
/// Redis 6.2, `ERR … READONLY …`).
fn read_only(err: &RedisError) -> bool {
    err.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly)
        || err.code() == Some("READONLY")
        || err.to_string().contains("READONLY")
}

impl From<ConnectionManager> for RedisConnection {
    fn from(connection: ConnectionManager) -> Self {
        Self(Inner::Node(connection))
    }
}

impl From<ClusterConnection> for RedisConnection {
    fn from(connection: ClusterConnection) -> Self {
        Self(Inner::Cluster(Cluster::new(connection, None)))
    }
}

/// The timeouts of a connection made from a URL.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub(crate) connection: Duration,
    pub(crate) response: Duration,
}

impl RedisConnection {
    /// A connection for `url` that connects on its first command, with connection and response
    /// timeouts of 1 second (a cluster command, retried after a redirection or a lost node,
    /// gives up after 2 seconds in all):
    ///
    /// - one server: `redis://[user:password@]host:port[/db]`, `rediss://…` (TLS, with the
    ///   `redis-tls` feature: the server verified against the system's roots),
    ///   `redis+unix:///path/to/socket` or `unix:///path`;
    /// - a Redis Cluster: `redis+cluster://[user:password@]host:port[,host:port…]` (or
    ///   `rediss+cluster://` with `redis-tls`): any nodes of the cluster, from which the others
    ///   are found;
    /// - Redis Sentinel: `redis+sentinel://[user:password@]host:port[,host:port…]/MASTER[/DB]`:
    ///   the Sentinels, then the name they monitor the master under (the user name and password,
    ///   and the database, are the master's). Each command goes to the master they name; after
    ///   a failover (the connection lost, or the old master answering as a read-only replica)
    ///   they are asked again.
    ///
    /// # Errors
    ///
    /// An invalid URL, or a call from outside a Tokio runtime.
    pub fn open(url: &str) -> Result<Self, RedisError> {
        Self::open_with(url, DEFAULT_TIMEOUTS)
    }

    pub(crate) fn open_with(url: &str, timeouts: Timeouts) -> Result<Self, RedisError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(no_runtime());
        }
        if url
            .split_once('#')
            .is_some_and(|(_, fragment)| fragment.contains("insecure"))
        {
            return Err(invalid_url(
                "a URL cannot turn TLS verification off (`#insecure`)",
            ));
        }
        // rustls needs a crypto provider: without one installed, and with both of rustls's
        // providers built in (the application's features and ours), connecting would panic.
        // Ring's, unless the application installed one (rustls marks it deprecated only for its
        // lack of post-quantum key exchange).
        #[cfg(feature = "redis-tls")]
        if url.starts_with("rediss") && rustls::crypto::CryptoProvider::get_default().is_none() {
            #[allow(deprecated)]
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        if let Some(sentinel) = sentinel(url, timeouts)? {
            return Ok(Self(Inner::Sentinel(sentinel)));
        }
        match cluster_nodes(url)? {
            Some(nodes) => {
                let client = ClusterClientBuilder::new(nodes)
                    .connection_timeout(timeouts.connection)
                    .response_timeout(timeouts.response)
                    .overall_response_timeout(Some(timeouts.response * 2))
                    .retries(4)
                    .min_retry_wait(50)
                    .max_retry_wait(500)
                    .build()?;
                let connection =
                    client.get_pending_async_connection_with_config(cluster_config(timeouts));
                Ok(Self(Inner::Cluster(Cluster::new(
                    connection,
                    Some((client, timeouts)),
                ))))
            }
            None => {
                let client = Client::open(url)?;
                let config = config(timeouts.connection, timeouts.response);
                Ok(ConnectionManager::new_lazy_with_config(client, config)?.into())
            }
        }
    }

    /// Whether this is a Redis Cluster connection.
    pub fn is_cluster(&self) -> bool {
        matches!(self.0, Inner::Cluster(_))
    }

    /// Sends `pipeline` (a script, then `WAIT`) to the master that holds `key` (on one server,
    /// to the server), and reads the script's reply and `WAIT`'s.
    #[cfg_attr(not(feature = "queue"), allow(dead_code))]
    async fn pipeline_at<T: FromRedisValue>(
        &mut self,
        key: &[u8],
        pipeline: Pipeline,
    ) -> Result<(T, u32), RedisError> {
        let values: Vec<Value> = match &mut self.0 {
            Inner::Cluster(cluster) => {
                let route = Route::with_key(key, SlotAddr::Master);
                let reply = cluster
                    .connection()
                    .route_pipeline(pipeline, 0, 2, SingleNodeRoutingInfo::SpecificNode(route))
                    .await;
                cluster.seen(reply)?
            }
            Inner::Node(_) | Inner::Sentinel(_) => pipeline.query_async(self).await?,
        };
        let mut values = values.into_iter();
        match (values.next(), values.next()) {
            // An error answer to either (NOSCRIPT, MOVED…) is the pipeline's error.
            (Some(reply), Some(acknowledged)) => Ok((
                redis::from_redis_value(reply.extract_error()?)?,
                redis::from_redis_value(acknowledged.extract_error()?)?,
            )),
            _ => Err(RedisError::from((
                ErrorKind::UnexpectedReturnType,
                "a script and WAIT answered with fewer than two replies",
            ))),
        }
    }

    /// Sends `command` to the master that holds `key` (on one server, to the server): for a
    /// command without keys that must reach that node, such as `WAIT`.
    #[cfg_attr(not(feature = "queue"), allow(dead_code))]
    pub(crate) async fn query_at<T: redis::FromRedisValue>(
        &mut self,
        key: &str,
        command: Cmd,
    ) -> Result<T, RedisError> {
        match &mut self.0 {
            Inner::Node(connection) => command.query_async(connection).await,
            Inner::Sentinel(_) => command.query_async(self).await,
            Inner::Cluster(cluster) => {
                let route = Route::with_key(key, SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                let reply = cluster.connection().route_command(command, routing).await;
                redis::from_redis_value(cluster.seen(reply)?).map_err(RedisError::from)
            }
        }
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.0 {
            Inner::Node(connection) => connection.req_packed_command(cmd),
            Inner::Cluster(cluster) => Box::pin(async move {
                let reply = cluster.connection().req_packed_command(cmd).await;
                cluster.seen(reply)
            }),
            Inner::Sentinel(sentinel) => Box::pin(async move {
                let (number, mut master) = sentinel.master().await?;
                let reply = master.req_packed_command(cmd).await;
                sentinel.after(number, reply.as_ref().map(std::slice::from_ref));
                reply
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.0 {
            Inner::Node(connection) => connection.req_packed_commands(pipeline, offset, count),
            Inner::Cluster(cluster) => Box::pin(async move {
                let reply = cluster
                    .connection()
                    .req_packed_commands(pipeline, offset, count)
                    .await;
                cluster.seen(reply)
            }),
            Inner::Sentinel(sentinel) => Box::pin(async move {
                let (number, mut master) = sentinel.master().await?;
                let reply = master.req_packed_commands(pipeline, offset, count).await;
                sentinel.after(number, reply.as_ref());
                reply
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.0 {
            Inner::Node(connection) => connection.get_db(),
            Inner::Cluster(cluster) => cluster.connection().get_db(),
            Inner::Sentinel(sentinel) => {
                sentinel.current().map_or(0, |(_, master)| master.get_db())
            }
        }
    }
}

/// A Lua script, sent by its SHA-1 (`EVALSHA`) and, when the server it reaches does not have it
/// yet, with its text (`EVAL`) to that same server: never `SCRIPT LOAD`, which on a Redis
/// Cluster goes to every node and fails while any node is down.
pub(crate) struct Lua {
    code: String,
    hash: String,
}

impl Lua {
    pub(crate) fn new(code: &str) -> Self {
        Self {
            code: code.to_owned(),
            hash: redis::Script::new(code).get_hash().to_owned(),
        }
    }

    /// A call with `key` as its first key (the one that routes it on a cluster).
    pub(crate) fn key<T: ToRedisArgs>(&self, key: T) -> LuaCall<'_> {
        let mut call = self.prepare_invoke();
        call.key(key);
        call
    }

    /// A call with no keys or arguments yet.
    pub(crate) fn prepare_invoke(&self) -> LuaCall<'_> {
        LuaCall {
            lua: self,
            keys: Vec::new(),
            args: Vec::new(),
        }
    }
}

/// A call of a [`Lua`] script: its keys, then its arguments.
pub(crate) struct LuaCall<'a> {
    lua: &'a Lua,
    keys: Vec<Vec<u8>>,
    args: Vec<Vec<u8>>,
}

impl LuaCall<'_> {
    pub(crate) fn key<T: ToRedisArgs>(&mut self, key: T) -> &mut Self {
        self.keys.extend(key.to_redis_args());
        self
    }

    pub(crate) fn arg<T: ToRedisArgs>(&mut self, arg: T) -> &mut Self {
        self.args.extend(arg.to_redis_args());
        self
    }

    fn command(&self, with_text: bool) -> Cmd {
        let mut command = if with_text {
            let mut command = redis::cmd("EVAL");
            command.arg(&self.lua.code);
            command
        } else {
            let mut command = redis::cmd("EVALSHA");
            command.arg(&self.lua.hash);
            command
        };
        command.arg(self.keys.len()).arg(&self.keys).arg(&self.args);
        command
    }

    /// Runs the script on `connection`.
    pub(crate) async fn invoke_async<T: FromRedisValue>(
        &self,
        connection: &mut RedisConnection,
    ) -> Result<T, RedisError> {
        match self.command(false).query_async(connection).await {
            Err(err) if is_no_script(&err) => self.command(true).query_async(connection).await,
            reply => reply,
        }
    }

    /// Runs the script, then, with `wait`, `WAIT replicas timeout` right behind it in one
    /// pipeline to the one server that holds the first key: what `WAIT` counts is this write,
    /// whatever happens (a redirection, or a new connection, sends both again). Returns the
    /// script's reply, and how many replicas acknowledged it.
    #[cfg_attr(not(feature = "queue"), allow(dead_code))]
    pub(crate) async fn invoke_waiting<T: FromRedisValue>(
        &self,
        connection: &mut RedisConnection,
        wait: Option<(u32, u64)>,
    ) -> Result<(T, Option<u32>), RedisError> {
        let Some((replicas, millis)) = wait else {
            return Ok((self.invoke_async(connection).await?, None));
        };
        let pipeline = |with_text| {
            let mut pipeline = redis::pipe();
            pipeline.add_command(self.command(with_text));
            pipeline.cmd("WAIT").arg(replicas).arg(millis);
            pipeline
        };
        let first_key = self.keys.first().map_or(&[][..], Vec::as_slice);
        match connection.pipeline_at(first_key, pipeline(false)).await {
            Err(err) if is_no_script(&err) => {
                let (reply, acknowledged) =
                    connection.pipeline_at(first_key, pipeline(true)).await?;
                Ok((reply, Some(acknowledged)))
            }
            reply => reply.map(|(reply, acknowledged)| (reply, Some(acknowledged))),
        }
    }
}

fn is_no_script(err: &RedisError) -> bool {
    err.kind() == ErrorKind::Server(ServerErrorKind::NoScript)
}

/// Names the kind of connection only: no address, no credentials.
impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Inner::Node(_) => "RedisConnection::Node",
            Inner::Cluster(_) => "RedisConnection::Cluster",
            Inner::Sentinel(_) => "RedisConnection::Sentinel",
        })
    }
}

const DEFAULT_TIMEOUTS: Timeouts = Timeouts {
    connection: Duration::from_secs(1),
    response: Duration::from_secs(1),
};

/// The nodes of a `redis+cluster://` or `rediss+cluster://` URL, as single-node URLs carrying
/// its credentials and query; `None` for any other URL.
fn cluster_nodes(url: &str) -> Result<Option<Vec<String>>, RedisError> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("redis+cluster://") {
        ("redis", rest)
    } else if let Some(rest) = url.strip_prefix("rediss+cluster://") {
        ("rediss", rest)
    } else {
        return Ok(None);
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    // A cluster has one database: `SELECT` of another is refused by every node.
    let database = tail
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .trim_matches('/');
    if !matches!(database, "" | "0") {
        return Err(invalid_url("a Redis Cluster has database 0 only"));
    }
    let (credentials, hosts) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    let nodes: Vec<String> = hosts
        .split(',')
        .map(|host| format!("{scheme}://{credentials}{host}{tail}"))
        .collect();
    if hosts.split(',').any(str::is_empty) {
        return Err(invalid_url(
            "a cluster URL lists host:port pairs separated by commas",
        ));
    }
    // Each node must be a valid single-node URL.
    for node in &nodes {
        node.as_str().into_connection_info()?;
    }
    Ok(Some(nodes))
}

/// The Sentinel of a `redis+sentinel://` URL; `None` for any other URL.
fn sentinel(url: &str, timeouts: Timeouts) -> Result<Option<Sentinel>, RedisError> {
    let Some(rest) = url.strip_prefix("redis+sentinel://") else {
        return Ok(None);
    };
    if rest.contains(['?', '#']) {
        return Err(invalid_url(
            "a Sentinel URL has no query or fragment: redis+sentinel://HOSTS/MASTER[/DB]",
        ));
    }
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (credentials, hosts) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    let mut path = path.trim_start_matches('/').split('/');
    let master = path
        .next()
        .filter(|name| !name.is_empty())
        .ok_or_else(|| invalid_url("a Sentinel URL names the master after the hosts: /MASTER"))?;
    let mut redis = RedisConnectionInfo::default();
    if let Some(db) = path.next().filter(|db| !db.is_empty()) {
        let db = db
            .parse()
            .map_err(|_| invalid_url("a Sentinel URL's database is a number: /MASTER/DB"))?;
        redis = redis.set_db(db);
    }
    if path.next().is_some() {
        return Err(invalid_url(
            "a Sentinel URL's path is /MASTER or /MASTER/DB",
        ));
    }
    if let Some(credentials) = credentials {
        let (user, password) = credentials.split_once(':').unwrap_or((credentials, ""));
        let decode = |text: &str| percent_decode(text);
        if !user.is_empty() {
            redis = redis.set_username(decode(user)?);
        }
        if !password.is_empty() {
            redis = redis.set_password(decode(password)?);
        }
    }
    if hosts.split(',').any(str::is_empty) {
        return Err(invalid_url(
            "a Sentinel URL lists host:port pairs separated by commas",
        ));
    }
    let sentinels: Vec<String> = hosts
        .split(',')
        .map(|host| format!("redis://{host}"))
        .collect();
    let node = SentinelNodeConnectionInfo::default().set_redis_connection_info(redis);
    // `build` takes a `String` without redis-rs's rustls, `impl AsRef<str>` with it.
    #[allow(clippy::unnecessary_to_owned)]
    let client = SentinelClient::build(
        sentinels,
        master.to_owned(),
        Some(node),
        SentinelServerType::Master,
    )?;
    Ok(Some(Sentinel(Arc::new(SentinelShared {
        client: tokio::sync::Mutex::new(client),
        master: std::sync::Mutex::new((0, None)),
        timeouts,
    }))))
}

/// `%XX` escapes decoded, as in the user name and password of a URL.
fn percent_decode(text: &str) -> Result<String, RedisError> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = bytes
                .get(index + 1..index + 3)
                .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| invalid_url("a `%` escape is two hexadecimal digits"))?;
            decoded.push(hex);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).map_err(|_| invalid_url("an escape decodes to invalid UTF-8"))
}

#[cold]
fn timed_out(what: &'static str) -> RedisError {
    RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, what))
}

#[cold]
fn invalid_url(detail: &'static str) -> RedisError {
    RedisError::from((
        redis::ErrorKind::InvalidClientConfig,
        "invalid Redis URL",
        detail.into(),
    ))
}

#[cold]
fn no_runtime() -> RedisError {
    RedisError::from((
        redis::ErrorKind::InvalidClientConfig,
        "a lazy Redis connection must be made from within a Tokio runtime",
    ))
}

/// Connection and response timeouts of `connection_timeout` and `response_timeout`, and at most
/// one retry 100 ms after a failed connection attempt, so that while the server is down each
/// request is answered within about two connection timeouts.
pub(crate) fn config(
    connection_timeout: Duration,
    response_timeout: Duration,
) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(connection_timeout))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(100))
        .set_max_delay(Duration::from_millis(500))
}

/// Why a lazy connection could not be set up.
pub(crate) enum LazyError {
    /// `connect_lazy` was called outside a Tokio runtime (the connection manager needs one).
    NoRuntime,
    /// The URL is invalid.
    Redis(RedisError),
}

/// The client for a lazily connected manager: fails outside a Tokio runtime, or on a bad URL.
pub(crate) fn lazy_client(url: impl IntoConnectionInfo) -> Result<Client, LazyError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(LazyError::NoRuntime);
    }
    Client::open(url).map_err(LazyError::Redis)
}

/// The hash tag that keeps a family of keys in `key`'s hash slot on a Redis Cluster: the tag
/// `key` already has (the text between its first `{` and the next `}`, when not empty), or the
/// whole key in braces (`{key}` hashes as `key` does).
#[cfg_attr(not(feature = "queue"), allow(dead_code))]
pub(crate) fn hash_tag(key: &str) -> String {
    match own_hash_tag(key) {
        Some(tag) => tag.to_owned(),
        None => format!("{{{key}}}"),
    }
}

/// Whether `key` has a hash tag of its own.
#[cfg_attr(not(feature = "queue"), allow(dead_code))]
pub(crate) fn has_hash_tag(key: &str) -> bool {
    own_hash_tag(key).is_some()
}

/// `key`'s hash tag with its braces, as Redis Cluster reads it: from the first `{` to the next
/// `}`, when there is text between them.
#[cfg_attr(not(feature = "queue"), allow(dead_code))]
fn own_hash_tag(key: &str) -> Option<&str> {
    let open = key.find('{')?;
    let close = key[open + 1..].find('}')?;
    (close > 0).then(|| &key[open..=open + 1 + close])
}

#[cfg(test)]
mod tests {
    use redis::cluster_routing::Slot;

    use super::*;

    #[test]
    fn a_hash_tag_keeps_keys_in_the_slot_of_their_family() {
        for key in [
            "tower-webhook:queue",
            "{billing}:webhooks",
            "x{y",
            "q:{t}:{u}",
            "x{",
        ] {
            let tagged = format!("{}:delayed", hash_tag(key));
            assert_eq!(
                Slot::for_key(key),
                Slot::for_key(&tagged),
                "{key} → {tagged}"
            );
            let family = if has_hash_tag(key) {
                key.to_owned()
            } else {
                format!("{{{key}}}")
            };
            let dead = format!("{family}:dead");
            assert_eq!(Slot::for_key(key), Slot::for_key(&dead), "{key} → {dead}");
        }
        assert_eq!(hash_tag("{billing}:webhooks"), "{billing}");
        assert_eq!(hash_tag("webhooks"), "{webhooks}");
    }

    #[tokio::test]
    async fn sentinel_urls_name_the_master_and_refuse_what_they_cannot_mean() {
        let timeouts = DEFAULT_TIMEOUTS;
        assert!(sentinel("redis://h:1", timeouts).expect("valid").is_none());
        assert!(
            sentinel("redis+sentinel://u:p%40ss@h:1,h:2/mymaster/2", timeouts)
                .expect("valid")
                .is_some()
        );
        for invalid in [
            "redis+sentinel://h:1",
            "redis+sentinel://h:1/",
            "redis+sentinel://h:1,,h:2/m",
            "redis+sentinel://h:1/m/x",
            "redis+sentinel://h:1/m/1/extra",
            "redis+sentinel://u:%zz@h:1/m",
            "redis+sentinel://u:%+1@h:1/m",
            "redis+sentinel://h:1/m?db=2",
            "redis+sentinel://h:1/m#x",
        ] {
            assert!(sentinel(invalid, timeouts).is_err(), "{invalid}");
        }
        assert_eq!(percent_decode("p%40ss%2F").expect("valid"), "p@ss/");
        assert!(percent_decode("%4").is_err());
        assert!(percent_decode("%ff").is_err(), "not UTF-8");
    }

    #[tokio::test]
    async fn a_url_cannot_turn_tls_verification_off() {
        for url in [
            "rediss://h:1/#insecure",
            "rediss+cluster://h:1,h:2#insecure",
            "redis://h:1#insecure",
        ] {
            let err = RedisConnection::open(url).expect_err(url);
            assert!(err.to_string().contains("insecure"), "{url}: {err}");
        }
    }

    #[test]
    fn cluster_urls_name_every_node_with_the_credentials() {
        let nodes =
            cluster_nodes("redis+cluster://u:p@10.0.0.1:7000,10.0.0.2:7001/?protocol=resp3")
                .expect("valid")
                .expect("a cluster");
        assert_eq!(
            nodes,
            [
                "redis://u:p@10.0.0.1:7000/?protocol=resp3",
                "redis://u:p@10.0.0.2:7001/?protocol=resp3"
            ]
        );
        #[cfg(feature = "redis-tls")]
        assert_eq!(
            cluster_nodes("rediss+cluster://h:1").expect("valid"),
            Some(vec!["rediss://h:1".to_owned()])
        );
        assert!(cluster_nodes("redis://h:1").expect("valid").is_none());
        assert!(cluster_nodes("redis+cluster://h:1,,h:2").is_err());
        assert!(
            cluster_nodes("redis+cluster://h:1,h:2/3").is_err(),
            "database 3"
        );
        assert!(cluster_nodes("redis+cluster://h:1,h:2/0").is_ok());
        assert!(cluster_nodes("redis+cluster://h:1,h:2#frag").is_ok());
        assert!(cluster_nodes("redis+cluster://").is_err());
    }
}
