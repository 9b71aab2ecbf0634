//! The keyed schemes of one layer's tenants: looked up once, kept for a while, dropped when
//! the cache is full or told to forget them.
//!
//! A hit is a read lock, one hash of the tenant id and one clock read. A miss starts one lookup
//! task per tenant (requests that miss meanwhile wait for the same one); the task answers within
//! the lookup timeout, or its end (a panic included) answers for it, so no request waits for a
//! lookup that will never finish.

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Instant,
};

use tokio::sync::watch;

use super::{Rekey, Settings, TenantError};
use crate::{meter::Label, metrics as names};

/// A tenant found by the lookup: its id and the scheme keyed with its secrets.
pub(crate) struct Keyed<Sc> {
    pub(crate) id: Arc<str>,
    pub(crate) scheme: Sc,
}

/// What a lookup decided: the tenant (`None`: no such tenant), or why it could not say.
pub(crate) type Outcome<Sc> = Result<Option<Arc<Keyed<Sc>>>, TenantError>;

/// Where a tenant stands in the cache, or what to wait for.
pub(crate) enum Step<Sc> {
    /// Known and current (`None`: known not to exist).
    Known(Option<Arc<Keyed<Sc>>>),
    /// Being looked up: the outcome comes through this.
    Wait(watch::Receiver<Option<Outcome<Sc>>>),
    /// No lookup can start.
    Failed(TenantError),
}

enum Entry<Sc> {
    Found {
        tenant: Arc<Keyed<Sc>>,
        expires: Instant,
    },
    Unknown {
        expires: Instant,
    },
    Loading {
        outcome: watch::Receiver<Option<Outcome<Sc>>>,
        generation: u64,
    },
}

impl<Sc> Entry<Sc> {
    /// When a settled entry expires; `None` while it is loading (never evicted).
    fn expires(&self) -> Option<Instant> {
        match self {
            Self::Found { expires, .. } | Self::Unknown { expires } => Some(*expires),
            Self::Loading { .. } => None,
        }
    }
}

/// One layer's cache; see the module docs.
pub(crate) struct Cache<Sc> {
    entries: RwLock<HashMap<Arc<str>, Entry<Sc>>>,
    /// Tells a lookup's own entry from one started after an invalidation.
    generation: AtomicU64,
    /// Lookups under way, at most [`Settings::max_lookups`].
    lookups: AtomicUsize,
    /// The scheme every tenant's keyed one is made from.
    pub(crate) template: Sc,
    pub(crate) settings: Settings,
    label: Label,
}

impl<Sc: Rekey> Cache<Sc> {
    pub(crate) fn new(template: Sc, settings: Settings) -> Self {
        let label = Label::new(&Arc::from(template.name()));
        Self {
            entries: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
            lookups: AtomicUsize::new(0),
            template,
            settings,
            label,
        }
    }

    /// The tenant `id` as cached, or the lookup to wait for (started here when none is).
    pub(crate) fn step(self: &Arc<Self>, id: &str) -> Step<Sc> {
        let now = Instant::now();
        {
            let entries = self
                .entries
                .read()
                .unwrap_or_else(|poison| poison.into_inner());
            if let Some(step) = current(&entries, id, now) {
                return step;
            }
        }
        self.start(id, now)
    }

    /// Under the write lock: the entry another request settled or started meanwhile, or a new
    /// lookup.
    fn start(self: &Arc<Self>, id: &str, now: Instant) -> Step<Sc> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Step::Failed(TenantError::NoRuntime);
        };
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(step) = current(&entries, id, now) {
            return step;
        }
        // A bound on the lookups a flood of made-up tenant ids can start at once.
        let under_way = self.lookups.fetch_add(1, Ordering::Relaxed);
        if under_way >= self.settings.max_lookups {
            self.lookups.fetch_sub(1, Ordering::Relaxed);
            return Step::Failed(TenantError::Busy {
                lookups: self.settings.max_lookups,
            });
        }
        let id: Arc<str> = Arc::from(id);
        let (sender, outcome) = watch::channel(None);
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        entries.insert(
            Arc::clone(&id),
            Entry::Loading {
                outcome: outcome.clone(),
                generation,
            },
        );
        drop(entries);
        let settle = Settle {
            cache: Arc::clone(self),
            id,
            generation,
            sender: Some(sender),
        };
        runtime.spawn(settle.run());
        Step::Wait(outcome)
    }

    /// Looks `id` up, within the timeout, and keys its secrets.
    async fn look_up(&self, id: &Arc<str>) -> Outcome<Sc> {
        let timeout = self.settings.lookup_timeout;
        let found = tokio::time::timeout(timeout, self.settings.lookup.lookup(id)).await;
        let (outcome, label) = match found {
            Err(_) => (
                Err(TenantError::TimedOut { after: timeout }),
                names::TIMED_OUT,
            ),
            Ok(Err(err)) => (Err(TenantError::Lookup(Arc::from(err))), names::FAILED),
            Ok(Ok(secrets)) if secrets.as_ref().is_none_or(Vec::is_empty) => {
                (Ok(None), names::UNKNOWN)
            }
            Ok(Ok(secrets)) => match self.template.rekey(secrets.as_deref().unwrap_or_default()) {
                Ok(scheme) => (
                    Ok(Some(Arc::new(Keyed {
                        id: Arc::clone(id),
                        scheme,
                    }))),
                    names::FOUND,
                ),
                Err(err) => (Err(TenantError::InvalidSecret(err)), names::FAILED),
            },
        };
        self.label.count(names::TENANT_LOOKUPS, label);
        // The id of a tenant that exists (its secrets were found) is logged; not the id of an
        // unverified request whose lookup failed, which could be anything.
        #[cfg(feature = "tracing")]
        match &outcome {
            Err(err @ TenantError::InvalidSecret(_)) => log_warn!(
                provider = self.template.name(),
                tenant = ?id,
                error = %crate::log::ErrorChain(err),
                "webhook tenant has a secret the scheme cannot use"
            ),
            Err(err) => log_warn!(
                provider = self.template.name(),
                error = %crate::log::ErrorChain(err),
                "webhook tenant lookup failed"
            ),
            Ok(_) => {}
        }
        outcome
    }

    /// Keeps what lookup `generation` of `id` decided, unless its entry was invalidated meanwhile:
    /// a found or unknown tenant until its time to live is up; a failure not at all.
    fn settle(&self, id: &Arc<str>, generation: u64, outcome: &Outcome<Sc>) {
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        let ours = matches!(
            entries.get(id),
            Some(Entry::Loading { generation: current, .. }) if *current == generation
        );
        if !ours {
            return;
        }
        let now = Instant::now();
        // The setters bound both times to live; a clock this close to its end keeps nothing.
        let until = |ttl| now.checked_add(ttl).unwrap_or(now);
        match outcome {
            Ok(Some(tenant)) => {
                entries.insert(
                    Arc::clone(id),
                    Entry::Found {
                        tenant: Arc::clone(tenant),
                        expires: until(self.settings.ttl),
                    },
                );
            }
            Ok(None) => {
                entries.insert(
                    Arc::clone(id),
                    Entry::Unknown {
                        expires: until(self.settings.unknown_ttl),
                    },
                );
            }
            Err(_) => {
                entries.remove(id);
            }
        }
        evict(&mut entries, self.settings.max_tenants, now);
    }

    /// Forgets `id`: the next request for it looks it up again. A lookup under way is still
    /// answered to the requests waiting for it, but not kept.
    pub(crate) fn invalidate(&self, id: &str) {
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        entries.remove(id);
    }

    /// Forgets every tenant.
    pub(crate) fn clear(&self) {
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        entries.clear();
    }

    /// How many tenants are cached or being looked up.
    pub(crate) fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .len()
    }
}

/// What `entries` say of `id` at `now`: a current tenant, a current unknown one, a lookup under
/// way, or nothing (absent or expired).
fn current<Sc>(entries: &HashMap<Arc<str>, Entry<Sc>>, id: &str, now: Instant) -> Option<Step<Sc>> {
    match entries.get(id)? {
        Entry::Found { tenant, expires } if *expires > now => {
            Some(Step::Known(Some(Arc::clone(tenant))))
        }
        Entry::Unknown { expires } if *expires > now => Some(Step::Known(None)),
        Entry::Loading { outcome, .. } => Some(Step::Wait(outcome.clone())),
        _ => None,
    }
}

/// Keeps `entries` within `max`: expired entries go first, then unknown tenants, then found
/// ones, each by how soon they expire (an eighth of the cache at a time, so that a full cache
/// does not scan on every insert). Made-up ids never push a found tenant out while an unknown
/// one is left. Entries being looked up stay (the lookups under way are bounded apart).
fn evict<Sc>(entries: &mut HashMap<Arc<str>, Entry<Sc>>, max: usize, now: Instant) {
    if entries.len() <= max {
        return;
    }
    entries.retain(|_, entry| entry.expires().is_none_or(|expires| expires > now));
    if entries.len() <= max {
        return;
    }
    let keep = max - max / 8;
    // Unknown before found (`false` < `true`), then the soonest to expire.
    let rank = |entry: &Entry<Sc>| {
        let found = matches!(entry, Entry::Found { .. });
        entry.expires().map(|expires| (found, expires))
    };
    let mut ranks: Vec<(bool, Instant)> = entries.values().filter_map(rank).collect();
    let remove = entries.len().saturating_sub(keep).min(ranks.len());
    if remove == 0 {
        return;
    }
    let (_, cutoff, _) = ranks.select_nth_unstable(remove - 1);
    let cutoff = *cutoff;
    let mut removed = 0;
    entries.retain(|_, entry| {
        let goes = removed < remove && rank(entry).is_some_and(|rank| rank <= cutoff);
        removed += usize::from(goes);
        !goes
    });
}

/// A lookup task: it settles its entry and answers the waiting requests when it finishes, and,
/// should it end without finishing (a panic in the lookup), when it is dropped.
struct Settle<Sc: Rekey> {
    cache: Arc<Cache<Sc>>,
    id: Arc<str>,
    generation: u64,
    sender: Option<watch::Sender<Option<Outcome<Sc>>>>,
}

impl<Sc: Rekey> Settle<Sc> {
    async fn run(mut self) {
        let outcome = self.cache.look_up(&self.id).await;
        self.finish(outcome);
    }

    fn finish(&mut self, outcome: Outcome<Sc>) {
        if let Some(sender) = self.sender.take() {
            self.cache.lookups.fetch_sub(1, Ordering::Relaxed);
            self.cache.settle(&self.id, self.generation, &outcome);
            sender.send_replace(Some(outcome));
        }
    }
}

impl<Sc: Rekey> Drop for Settle<Sc> {
    fn drop(&mut self) {
        self.finish(Err(ended()));
    }
}

/// The outcome a waiting request gets from `outcome`.
pub(crate) async fn wait<Sc: Send + Sync + 'static>(
    mut outcome: watch::Receiver<Option<Outcome<Sc>>>,
) -> Outcome<Sc> {
    match outcome.wait_for(Option::is_some).await {
        Ok(settled) => settled.clone().unwrap_or_else(|| Err(ended())),
        Err(_) => Err(ended()),
    }
}

/// The answer of a lookup that ended without one: it panicked, or its runtime shut down.
fn ended() -> TenantError {
    let err: crate::BoxError = "the lookup ended without an answer".into();
    TenantError::Lookup(Arc::from(err))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn entries(found: usize, unknown: usize, now: Instant) -> HashMap<Arc<str>, Entry<()>> {
        let mut entries = HashMap::new();
        for i in 0..found {
            let id: Arc<str> = Arc::from(format!("f{i}"));
            let tenant = Arc::new(Keyed {
                id: Arc::clone(&id),
                scheme: (),
            });
            let expires = now + Duration::from_secs(100 + i as u64);
            entries.insert(id, Entry::Found { tenant, expires });
        }
        for i in 0..unknown {
            let expires = now + Duration::from_secs(10);
            entries.insert(Arc::from(format!("u{i}")), Entry::Unknown { expires });
        }
        entries
    }

    #[test]
    fn a_full_cache_drops_the_expired_then_the_soonest_to_expire() {
        let now = Instant::now();
        let mut full = entries(100, 0, now);
        evict(&mut full, 100, now);
        assert_eq!(full.len(), 100, "within the bound: nothing goes");
        let mut over = entries(101, 0, now);
        evict(&mut over, 100, now);
        assert_eq!(over.len(), 88, "an eighth of the bound goes at once");
        assert!(!over.contains_key("f0") && over.contains_key("f100"));
        let mut unknown_first = entries(100, 20, now);
        evict(&mut unknown_first, 100, now);
        assert!(unknown_first.keys().all(|id| id.starts_with('f')));
        // Unknown tenants go before found ones, even found ones that expire sooner.
        let mut flooded = entries(100, 0, now);
        for i in 0..20 {
            let expires = now + Duration::from_secs(1_000);
            flooded.insert(
                Arc::from(format!("made-up-{i}")),
                Entry::Unknown { expires },
            );
        }
        evict(&mut flooded, 100, now);
        assert_eq!(flooded.len(), 88);
        assert_eq!(flooded.keys().filter(|id| id.starts_with('f')).count(), 88);
        let mut expired = entries(100, 20, now);
        evict(&mut expired, 100, now + Duration::from_secs(11));
        assert_eq!(expired.len(), 100, "the expired were enough");
    }
}
