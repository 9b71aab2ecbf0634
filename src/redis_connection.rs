//! What the Redis store and the Redis queue share: the connection (one server or a Redis
//! Cluster), its settings and the lazy client.

use std::time::Duration;

use redis::{
    Client, Cmd, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::{ClusterClientBuilder, ClusterConfig},
    cluster_async::ClusterConnection,
    cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr},
};

/// A connection to Redis that a [`RedisStore`](crate::dedupe::store::RedisStore) or a
/// [`RedisQueue`](crate::queue::RedisQueue) sends its commands on: one server through a
/// reconnecting [`ConnectionManager`], or a Redis Cluster through redis-rs's
/// [`ClusterConnection`], which follows `MOVED` and `ASK` redirections and topology changes.
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
    Cluster(ClusterConnection),
}

impl From<ConnectionManager> for RedisConnection {
    fn from(connection: ConnectionManager) -> Self {
        Self(Inner::Node(connection))
    }
}

impl From<ClusterConnection> for RedisConnection {
    fn from(connection: ClusterConnection) -> Self {
        Self(Inner::Cluster(connection))
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
    /// - one server: `redis://[user:password@]host:port[/db]`, `rediss://…` (TLS, when redis-rs
    ///   is built with a TLS feature), `redis+unix:///path/to/socket` or `unix:///path`;
    /// - a Redis Cluster: `redis+cluster://[user:password@]host:port[,host:port…]` (or
    ///   `rediss+cluster://`): any nodes of the cluster, from which the others are found.
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
                Ok(client
                    .get_pending_async_connection_with_config(ClusterConfig::new())
                    .into())
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

    /// Sends `command` to the master that holds `key` (on one server, to the server): for a
    /// command without keys that must reach that node, such as `WAIT`.
    pub(crate) async fn query_at<T: redis::FromRedisValue>(
        &mut self,
        key: &str,
        command: Cmd,
    ) -> Result<T, RedisError> {
        match &mut self.0 {
            Inner::Node(connection) => command.query_async(connection).await,
            Inner::Cluster(connection) => {
                let route = Route::with_key(key, SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                let value = connection.route_command(command, routing).await?;
                redis::from_redis_value(value).map_err(RedisError::from)
            }
        }
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.0 {
            Inner::Node(connection) => connection.req_packed_command(cmd),
            Inner::Cluster(connection) => connection.req_packed_command(cmd),
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
            Inner::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.0 {
            Inner::Node(connection) => connection.get_db(),
            Inner::Cluster(connection) => connection.get_db(),
        }
    }
}

/// Names the kind of connection only: no address, no credentials.
impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Inner::Node(_) => "RedisConnection::Node",
            Inner::Cluster(_) => "RedisConnection::Cluster",
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
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
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
pub(crate) fn hash_tag(key: &str) -> String {
    match own_hash_tag(key) {
        Some(tag) => tag.to_owned(),
        None => format!("{{{key}}}"),
    }
}

/// Whether `key` has a hash tag of its own.
pub(crate) fn has_hash_tag(key: &str) -> bool {
    own_hash_tag(key).is_some()
}

/// `key`'s hash tag with its braces, as Redis Cluster reads it: from the first `{` to the next
/// `}`, when there is text between them.
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
        assert!(cluster_nodes("redis://h:1").expect("valid").is_none());
        assert!(cluster_nodes("redis+cluster://h:1,,h:2").is_err());
        assert!(cluster_nodes("redis+cluster://").is_err());
    }
}
