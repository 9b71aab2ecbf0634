//! What the Redis store and the Redis queue share: connection settings and the lazy client.

use std::time::Duration;

use redis::{Client, IntoConnectionInfo, RedisError, aio::ConnectionManagerConfig};

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
