//! Many accounts on one route: each request verified with the secrets of the tenant it names,
//! looked up when needed and rotated without a restart (feature `tenants`).
//!
//! A platform receiving webhooks for many customer accounts has one signing secret per account
//! (VideoNest and VideoAIditor show one per registered endpoint), kept in its own database. A
//! [`Tenants`] says where a request names its tenant (a path segment, a header, a query
//! parameter, an axum path parameter) and how to look that tenant's current secrets up; a
//! preset's `tenant_layer` verifies with them:
//!
//! ```
//! use std::{collections::HashMap, sync::Arc, time::Duration};
//!
//! use axum::{Router, body::Body, http::StatusCode, routing::post};
//! use tower::ServiceExt;
//! use tower_webhook::{Verified, provider::videonest, tenant::Tenants};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Where the secrets live: a database in a real service (see the README).
//! let accounts = Arc::new(HashMap::from([("acme", vec!["whsec_acme_new", "whsec_acme_old"])]));
//! let tenants = Tenants::new(move |tenant: String| {
//!     let accounts = Arc::clone(&accounts);
//!     async move { Ok::<_, std::io::Error>(accounts.get(tenant.as_str()).cloned()) }
//! })
//! .from_path_param("tenant")
//! .ttl(Duration::from_secs(60));
//!
//! let app = Router::new().route(
//!     "/webhooks/videonest/{tenant}",
//!     post(|verified: Verified<videonest::Event>| async move {
//!         format!("{} for {}", verified.event_type(), verified.tenant().unwrap_or_default())
//!     })
//!     .route_layer(videonest::tenant_layer(&tenants)?),
//! );
//!
//! let body = r#"{"event":"video.processed","data":{"id":"vid_1"}}"#;
//! let mut request = videonest::signed_request("whsec_acme_old", body)?.map(Body::new);
//! *request.uri_mut() = "/webhooks/videonest/acme".parse()?;
//! let response = app.clone().oneshot(request).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//!
//! // Another account's route: its secrets do not include acme's.
//! let mut request = videonest::signed_request("whsec_acme_old", body)?.map(Body::new);
//! *request.uri_mut() = "/webhooks/videonest/globex".parse()?;
//! assert_eq!(app.oneshot(request).await?.status(), StatusCode::UNAUTHORIZED);
//!
//! // A secret rotated in the database: forget the cached one now rather than at the TTL.
//! tenants.invalidate("acme");
//! # Ok(())
//! # }
//! ```
//!
//! # What happens to a request
//!
//! 1. The signature header is read as for any request: a missing or malformed one is refused
//!    (401) before anything is looked up.
//! 2. The tenant id is read where [`Tenants`] says. A cached tenant costs a read lock, a hash
//!    and a clock read. A tenant not cached (or whose entry expired) is looked up once: the
//!    requests that arrive for it meanwhile wait for that same lookup.
//! 3. The body is read and verified with the tenant's secrets; any one matching is enough.
//!
//! A lookup that fails, or takes longer than [`Tenants::lookup_timeout`], refuses the request
//! with 503 ([`Rejection::Tenant`](crate::Rejection::Tenant)) so that the provider retries:
//! never a verify against no key. A failure is not cached; the next request looks again.
//!
//! **Unknown tenants** — the lookup found nothing, the request names no tenant, or an id that
//! cannot be one (empty, over [`MAX_TENANT_ID_LEN`] bytes, not UTF-8, a control character) —
//! are refused exactly like a wrong signature: 401 with the same reason, after the body was
//! read and a MAC computed over it. Neither the status, the body nor the time of the answer
//! tells whether a tenant exists. An unknown tenant is remembered for
//! [`Tenants::unknown_ttl`] so that repeats do not reach the lookup again.
//!
//! What the answer's time can still tell, and what it cannot: a cached tenant is answered
//! without a lookup, so a probe can tell a tenant that was used in the last [`Tenants::ttl`]
//! from an id that needs a lookup (which is what a cache saves); a tenant with two secrets
//! (during a rotation) computes two MACs where an unknown tenant computes one, one more pass
//! over the body. Neither gives anything of a secret. A tenant whose lookup returns a secret
//! the scheme cannot use is answered 503, not 401: fix its secrets.
//!
//! # Ids
//!
//! The id is used as the request spells it: for the cache, for
//! [`Verified::tenant`](crate::Verified::tenant) and in the deduplication key. The lookup must
//! match it exactly. One that matches loosely (a case-insensitive collation, `citext`, `ILIKE`)
//! makes `ACME` and `acme` two tenants with one secret: a captured delivery could then be
//! replayed once per spelling past deduplication, and [`Tenants::invalidate`]`("acme")` would
//! not reach `ACME`. Compare exactly, or refuse other spellings with [`Tenants::accept_ids`].
//!
//! # Floods
//!
//! Each new id costs one lookup before any of the body is read. A cache keeps at most
//! [`Tenants::max_tenants`] tenants, unknown ones evicted first, so made-up ids do not push
//! real tenants out; at most [`Tenants::max_lookups`] lookups run at once (more is 503); and
//! [`Tenants::accept_ids`] refuses ids of the wrong shape without a lookup. Put a rate limit in
//! front of a public endpoint all the same.
//!
//! # Rotation
//!
//! A lookup returns all of a tenant's current secrets; during a rotation, return the new and
//! the old one and both are accepted. A change takes effect at the next lookup: when the
//! cached entry is older than [`Tenants::ttl`], or at once after [`Tenants::invalidate`] (one
//! tenant) or [`Tenants::invalidate_all`]. Nothing restarts.
//!
//! # What the tenant reaches
//!
//! [`Verified::tenant`](crate::Verified::tenant) names it, so does a queued delivery; the
//! deduplication key includes it, so the same provider event id under two tenants is two
//! events ([`dedupe::tenant_key`](crate::dedupe::tenant_key)). Tracing spans and metrics
//! labels get it only with
//! [`VerifyWebhookLayer::label_tenants`](crate::VerifyWebhookLayer::label_tenants): a label
//! per tenant multiplies time series. Only a verified request's tenant is ever recorded, never
//! the id an unverified request claims.
//!
//! The cache runs its lookups as tokio tasks, so the layer must be called inside a tokio
//! runtime with its time driver (any axum or hyper server); elsewhere a request that misses
//! the cache is refused with 503 ([`TenantError::NoRuntime`]). A lookup must not block its
//! thread (use the database's async client): the requests waiting for it wait as long.

mod cache;
mod scheme;
mod source;

use std::{
    error::Error as StdError,
    fmt,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use http::HeaderName;

pub use self::{
    scheme::{Rekey, TenantSignature, Tenanted},
    source::{MAX_TENANT_ID_LEN, TenantSource},
};
use crate::{BoxError, ConfigError, Secret};

/// What a [`Lookup`] returns: the tenant's secrets (`None`, or no secret: no such tenant), or
/// why it could not say.
pub type LookupFuture = Pin<Box<dyn Future<Output = Result<Option<Vec<Secret>>, BoxError>> + Send>>;

/// How a tenant's current secrets are found: a database query, a secret store, a map.
///
/// Any `Fn(String) -> impl Future<Output = Result<Option<I>, E>>` is one, where `I` iterates
/// over secrets (`Vec<String>`, `Vec<Secret>`, …) and `E` is any error: return `Ok(None)` for
/// a tenant that does not exist, and an error when the store could not answer (the request is
/// then refused with 503 and retried by the provider).
pub trait Lookup: Send + Sync + 'static {
    /// Looks `tenant` up.
    fn lookup(&self, tenant: &str) -> LookupFuture;
}

impl<F, Fut, I, E> Lookup for F
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<I>, E>> + Send + 'static,
    I: IntoIterator,
    I::Item: Into<Secret>,
    E: Into<BoxError>,
{
    fn lookup(&self, tenant: &str) -> LookupFuture {
        let found = self(tenant.to_owned());
        Box::pin(async move {
            match found.await {
                Ok(Some(secrets)) => Ok(Some(secrets.into_iter().map(Into::into).collect())),
                Ok(None) => Ok(None),
                Err(err) => Err(err.into()),
            }
        })
    }
}

/// The tenants of one or more verifying layers: where a request names its tenant, how that
/// tenant's secrets are looked up, and how long they are kept. See the [module docs](self).
///
/// Configure it first, then build layers with it (a preset's `tenant_layer`,
/// [`generic::tenant_layer`](crate::provider::generic::tenant_layer) or [`Tenanted::new`]):
/// each layer keeps a cache of its own, with the settings of that moment. Clones share the
/// caches, so [`invalidate`](Self::invalidate) on any clone reaches every layer built from it.
#[derive(Clone)]
pub struct Tenants {
    settings: Settings,
    caches: Arc<Mutex<Vec<Weak<dyn Invalidate>>>>,
}

/// What a layer's cache copies from [`Tenants`].
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) lookup: Arc<dyn Lookup>,
    pub(crate) source: TenantSource,
    pub(crate) ttl: Duration,
    pub(crate) unknown_ttl: Duration,
    pub(crate) lookup_timeout: Duration,
    pub(crate) max_tenants: usize,
    pub(crate) max_lookups: usize,
    /// Which ids may be tenants at all ([`Tenants::accept_ids`]).
    pub(crate) accept: Option<AcceptIds>,
}

/// The check of [`Tenants::accept_ids`].
#[derive(Clone)]
pub(crate) struct AcceptIds(Arc<dyn Fn(&str) -> bool + Send + Sync>);

impl AcceptIds {
    /// Whether `id` may be a tenant.
    pub(crate) fn accepts(&self, id: &str) -> bool {
        (self.0)(id)
    }
}

impl fmt::Debug for AcceptIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AcceptIds")
    }
}

/// A lookup is named, not shown (it may hold a client with credentials).
impl fmt::Debug for dyn Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Lookup")
    }
}

/// A cache that can be told to forget.
trait Invalidate: Send + Sync {
    fn invalidate(&self, tenant: &str);
    fn clear(&self);
}

impl<Sc: Rekey> Invalidate for cache::Cache<Sc> {
    fn invalidate(&self, tenant: &str) {
        cache::Cache::invalidate(self, tenant);
    }

    fn clear(&self) {
        cache::Cache::clear(self);
    }
}

impl Tenants {
    /// How long a found tenant's secrets are kept by default: one minute.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(60);
    /// How long an unknown tenant is remembered by default: ten seconds.
    pub const DEFAULT_UNKNOWN_TTL: Duration = Duration::from_secs(10);
    /// How long a lookup may take by default: two seconds.
    pub const DEFAULT_LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);
    /// How many tenants a layer keeps by default.
    pub const DEFAULT_MAX_TENANTS: usize = 100_000;
    /// How many lookups a layer runs at once by default.
    pub const DEFAULT_MAX_LOOKUPS: usize = 64;
    /// The longest time to live: ten years, "until invalidated".
    pub const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

    /// Tenants whose secrets `lookup` finds, named by the last segment of the request's path
    /// (`/webhooks/videonest/{tenant}`) unless a `from_*` method says otherwise.
    pub fn new(lookup: impl Lookup) -> Self {
        Self {
            settings: Settings {
                lookup: Arc::new(lookup),
                source: TenantSource::LastPathSegment,
                ttl: Self::DEFAULT_TTL,
                unknown_ttl: Self::DEFAULT_UNKNOWN_TTL,
                lookup_timeout: Self::DEFAULT_LOOKUP_TIMEOUT,
                max_tenants: Self::DEFAULT_MAX_TENANTS,
                max_lookups: Self::DEFAULT_MAX_LOOKUPS,
                accept: None,
            },
            caches: Arc::default(),
        }
    }

    /// Reads the tenant from `source`.
    #[must_use]
    pub fn from_source(mut self, source: TenantSource) -> Self {
        self.settings.source = source;
        self
    }

    /// Reads the tenant from the segment at `index` of the path (from 0, after the leading
    /// `/`).
    #[must_use]
    pub fn from_path_segment(self, index: usize) -> Self {
        self.from_source(TenantSource::PathSegment(index))
    }

    /// Reads the tenant from the last segment of the path (the default).
    #[must_use]
    pub fn from_last_path_segment(self) -> Self {
        self.from_source(TenantSource::LastPathSegment)
    }

    /// Reads the tenant from the request header `name`.
    #[must_use]
    pub fn from_header(self, name: HeaderName) -> Self {
        self.from_source(TenantSource::Header(name))
    }

    /// Reads the tenant from the query parameter `name`.
    #[must_use]
    pub fn from_query(self, name: &str) -> Self {
        self.from_source(TenantSource::Query(name.into()))
    }

    /// Reads the tenant from the axum route's path parameter `name` (`"tenant"` for
    /// `/webhooks/{tenant}`).
    #[cfg(feature = "axum")]
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    #[must_use]
    pub fn from_path_param(self, name: &str) -> Self {
        self.from_source(TenantSource::PathParam(name.into()))
    }

    /// How long a found tenant's secrets are used before they are looked up again
    /// ([`DEFAULT_TTL`](Self::DEFAULT_TTL)): the longest a rotation takes to be seen without
    /// [`invalidate`](Self::invalidate).
    #[must_use]
    ///
    /// At most [`MAX_TTL`](Self::MAX_TTL): a longer one is taken as that.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.settings.ttl = ttl.min(Self::MAX_TTL);
        self
    }

    /// How long a tenant the lookup did not find is refused without asking again
    /// ([`DEFAULT_UNKNOWN_TTL`](Self::DEFAULT_UNKNOWN_TTL)): the longest a new tenant waits to be
    /// seen without [`invalidate`](Self::invalidate).
    #[must_use]
    ///
    /// At most [`MAX_TTL`](Self::MAX_TTL).
    pub fn unknown_ttl(mut self, ttl: Duration) -> Self {
        self.settings.unknown_ttl = ttl.min(Self::MAX_TTL);
        self
    }

    /// How long a lookup may take before the requests waiting for it are refused with 503
    /// ([`DEFAULT_LOOKUP_TIMEOUT`](Self::DEFAULT_LOOKUP_TIMEOUT)). Keep it well under the
    /// provider's delivery timeout.
    #[must_use]
    pub fn lookup_timeout(mut self, timeout: Duration) -> Self {
        self.settings.lookup_timeout = timeout;
        self
    }

    /// How many tenants each layer keeps at most ([`DEFAULT_MAX_TENANTS`](Self::DEFAULT_MAX_TENANTS),
    /// at least 1): past it, expired entries go first, then those that expire soonest (unknown
    /// tenants, with their shorter time to live, before found ones).
    #[must_use]
    pub fn max_tenants(mut self, max: usize) -> Self {
        self.settings.max_tenants = max.max(1);
        self
    }

    /// How many lookups each layer runs at once, at most
    /// ([`DEFAULT_MAX_LOOKUPS`](Self::DEFAULT_MAX_LOOKUPS), at least 1). A request that would
    /// start one more is refused with 503 ([`TenantError::Busy`]) and retried by its provider:
    /// a flood of made-up tenant ids costs the lookup's backend this many queries at a time,
    /// not one per request.
    #[must_use]
    pub fn max_lookups(mut self, max: usize) -> Self {
        self.settings.max_lookups = max.max(1);
        self
    }

    /// Takes only ids for which `accept` is true as tenants; any other is an unknown tenant,
    /// refused without a lookup. Cheap checks of the shape your ids have (a UUID, a prefix,
    /// lower case) keep made-up ids away from the lookup, and refuse the spellings a lookup
    /// that matches loosely would find too (see "Ids" in the [module docs](self)).
    ///
    /// ```
    /// use tower_webhook::tenant::Tenants;
    ///
    /// let tenants = Tenants::new(|_: String| async { Ok::<_, std::io::Error>(None::<Vec<String>>) })
    ///     .accept_ids(|id| id.starts_with("acct_") && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
    /// # let _ = tenants;
    /// ```
    #[must_use]
    pub fn accept_ids(mut self, accept: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.settings.accept = Some(AcceptIds(Arc::new(accept)));
        self
    }

    /// Where requests name their tenant.
    pub fn source(&self) -> &TenantSource {
        &self.settings.source
    }

    /// Forgets `tenant` in every layer built from these tenants: its next request looks its
    /// secrets up again. Call it when a tenant's secrets change.
    pub fn invalidate(&self, tenant: &str) {
        self.each_cache(|cache| cache.invalidate(tenant));
    }

    /// Forgets every tenant in every layer built from these tenants.
    pub fn invalidate_all(&self) {
        self.each_cache(|cache| cache.clear());
    }

    fn each_cache(&self, mut f: impl FnMut(&dyn Invalidate)) {
        let mut caches = self
            .caches
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        caches.retain(|cache| match cache.upgrade() {
            Some(cache) => {
                f(&*cache);
                true
            }
            None => false,
        });
    }

    fn register<Sc: Rekey>(&self, cache: &Arc<cache::Cache<Sc>>) {
        let cache: Arc<dyn Invalidate> = Arc::clone(cache) as Arc<dyn Invalidate>;
        let mut caches = self
            .caches
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        caches.retain(|cache| cache.strong_count() > 0);
        caches.push(Arc::downgrade(&cache));
    }
}

impl fmt::Debug for Tenants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Tenants").field(&self.settings).finish()
    }
}

/// Why a tenant's secrets could not be looked up; the request is refused with 503.
///
/// Its `Display` text is the response's reason: it says what went wrong in general terms and
/// never quotes the lookup's own error, which is its [`source`](StdError::source) (logged with
/// the `tracing` feature).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TenantError {
    /// The lookup returned an error.
    Lookup(Arc<dyn StdError + Send + Sync>),
    /// The lookup took longer than [`Tenants::lookup_timeout`].
    TimedOut {
        /// The timeout.
        after: Duration,
    },
    /// The lookup returned a secret the scheme cannot use (empty, or not in its key format).
    InvalidSecret(ConfigError),
    /// The layer was called outside a tokio runtime, where no lookup can run.
    NoRuntime,
    /// [`Tenants::max_lookups`] lookups were already under way.
    Busy {
        /// The bound.
        lookups: usize,
    },
}

impl fmt::Display for TenantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Lookup(_) => f.write_str("webhook secrets could not be looked up; retry later"),
            Self::TimedOut { after } => write!(
                f,
                "webhook secrets were not found within {} ms; retry later",
                after.as_millis()
            ),
            Self::InvalidSecret(_) => {
                f.write_str("webhook secrets are misconfigured for this endpoint; retry later")
            }
            Self::NoRuntime => f.write_str("webhook secrets cannot be looked up here"),
            Self::Busy { .. } => {
                f.write_str("too many webhook secrets are being looked up; retry later")
            }
        }
    }
}

impl StdError for TenantError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Lookup(err) => Some(&**err),
            Self::InvalidSecret(err) => Some(err),
            Self::TimedOut { .. } | Self::NoRuntime | Self::Busy { .. } => None,
        }
    }
}
