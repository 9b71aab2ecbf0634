//! Releasing abandoned claims in the background, for the remote stores (Redis, PostgreSQL):
//! a claim whose answer never came may still land, so its release is sent until the store says
//! it is done with it.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use super::StoreError;

/// How long an abandoned claim's release is tried again, at most: 10 minutes (twice the default
/// lease). A claim whose release could not run by then frees itself when its lease runs out.
pub(crate) const RELEASE_HORIZON: Duration = Duration::from_secs(600);

/// At most this many abandoned claims of one store are being released in the background at
/// once; past it, a claim frees itself when its lease runs out.
pub(crate) const MAX_PENDING_RELEASES: usize = 10_000;

/// The releases of one store under way.
#[derive(Debug, Clone, Default)]
pub(crate) struct Releases(Arc<AtomicUsize>);

/// Counts a release under way; dropped when the task ends (or the runtime drops it).
struct Releasing(Arc<AtomicUsize>);

impl Drop for Releasing {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Releases {
    /// Runs `release` from a task on the current Tokio runtime until it answers `Ok(true)`
    /// (released, or nothing left that could land): every 100 ms, doubling up to 30 s, for up
    /// to [`RELEASE_HORIZON`]. Outside a Tokio runtime, or with [`MAX_PENDING_RELEASES`]
    /// releases under way, it does nothing: the claim frees itself when its lease runs out.
    /// `key` is what the logs name.
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub(crate) fn spawn<F, Fut>(&self, key: String, mut release: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<bool, StoreError>> + Send,
    {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            log_warn!(
                key,
                "a claim could not be released outside a Tokio runtime; it frees itself when \
                 its lease runs out"
            );
            return;
        };
        // Counted now and given back when the task ends, or is dropped unpolled (its runtime
        // shut down): the count cannot leak.
        self.0.fetch_add(1, Ordering::Relaxed);
        let releasing = Releasing(Arc::clone(&self.0));
        if releasing.0.load(Ordering::Relaxed) > MAX_PENDING_RELEASES {
            log_warn!(
                key,
                "too many claims are being released; this one frees itself when its lease runs \
                 out"
            );
            return;
        }
        drop(runtime.spawn(async move {
            let _releasing = releasing;
            let started = tokio::time::Instant::now();
            let mut pause = Duration::from_millis(100);
            loop {
                match release().await {
                    Ok(true) => break,
                    Ok(false) | Err(_) if started.elapsed() + pause >= RELEASE_HORIZON => {
                        log_error!(
                            key,
                            "gave up releasing an abandoned claim; it frees itself when its \
                             lease runs out"
                        );
                        break;
                    }
                    Ok(false) => {}
                    Err(_err) => {
                        log_debug!(
                            key,
                            error = %crate::log::ErrorChain(&_err),
                            "releasing an abandoned claim failed; trying again"
                        );
                    }
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(30));
            }
        }));
    }
}
