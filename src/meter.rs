//! What the crate tells the `metrics` facade (feature `metrics`). Without the feature every
//! call here compiles to nothing and [`Label`] holds nothing.
//!
//! The public side (the names, their table) is [`crate::metrics`]. The hot path, a verified
//! request, uses keys built once per layer ([`Meter`]): a no-op recorder then costs a
//! thread-local read per metric, and a real one a lookup by a precomputed hash.

#[cfg(feature = "metrics")]
use std::sync::Arc;
use std::time::SystemTime;

#[cfg(feature = "metrics")]
use metrics::{Key, Label as MetricLabel, Level, Metadata};

use crate::Rejection;
#[cfg(feature = "metrics")]
use crate::metrics as names;

#[cfg(feature = "metrics")]
static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// A provider's name as a metric label: an `Arc<str>` with the feature, nothing without it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Label {
    #[cfg(feature = "metrics")]
    provider: Option<Arc<str>>,
}

impl Label {
    /// The label of `provider`.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn new(provider: &std::sync::Arc<str>) -> Self {
        Self {
            #[cfg(feature = "metrics")]
            provider: Some(Arc::clone(provider)),
        }
    }

    #[cfg(feature = "metrics")]
    fn labels(&self, outcome: &'static str) -> Vec<MetricLabel> {
        vec![
            MetricLabel::new(names::PROVIDER, self.value()),
            MetricLabel::from_static_parts(names::OUTCOME, outcome),
        ]
    }

    #[cfg(feature = "metrics")]
    fn value(&self) -> metrics::SharedString {
        match &self.provider {
            Some(provider) => metrics::SharedString::from(Arc::clone(provider)),
            None => metrics::SharedString::const_str(names::UNKNOWN_PROVIDER),
        }
    }

    /// Counts one `outcome` of `counter`.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn count(&self, counter: &'static str, outcome: &'static str) {
        #[cfg(feature = "metrics")]
        metrics::with_recorder(|recorder| {
            let key = Key::from_parts(counter, self.labels(outcome));
            recorder.register_counter(&key, &METADATA).increment(1);
        });
    }

    /// Records `seconds` in `histogram`.
    #[cfg_attr(not(feature = "queue"), allow(dead_code))]
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn record(&self, histogram: &'static str, seconds: f64) {
        #[cfg(feature = "metrics")]
        metrics::with_recorder(|recorder| {
            let key = Key::from_parts(
                histogram,
                vec![MetricLabel::new(names::PROVIDER, self.value())],
            );
            recorder.register_histogram(&key, &METADATA).record(seconds);
        });
    }
}

/// The keys of a verifying layer's hot path, built once per layer.
#[derive(Clone, Debug)]
pub(crate) struct Meter {
    #[cfg(feature = "metrics")]
    keys: Arc<Keys>,
}

#[cfg(feature = "metrics")]
#[derive(Debug)]
struct Keys {
    label: Label,
    verified: Key,
    verify_seconds: Key,
}

impl Meter {
    /// The keys of a layer verifying `provider`'s requests.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn new(provider: &std::sync::Arc<str>) -> Self {
        Self {
            #[cfg(feature = "metrics")]
            keys: {
                let label = Label::new(provider);
                Arc::new(Keys {
                    verified: Key::from_parts(names::REQUESTS, label.labels(names::VERIFIED)),
                    verify_seconds: Key::from_parts(
                        names::VERIFY_SECONDS,
                        vec![MetricLabel::new(names::PROVIDER, label.value())],
                    ),
                    label,
                })
            },
        }
    }

    /// A request received at `received_at` was verified and decoded just now: counts it and
    /// records how long that took (one clock read). With a `tenant` (the layer labels tenants),
    /// the keys are built for it.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn verified(&self, received_at: SystemTime, tenant: Option<&str>) {
        #[cfg(feature = "metrics")]
        {
            let seconds = seconds_since(received_at);
            let tenant_keys = tenant.map(|tenant| {
                let tenant = MetricLabel::new(names::TENANT, tenant.to_owned());
                let mut verified = self.keys.label.labels(names::VERIFIED);
                verified.push(tenant.clone());
                (
                    Key::from_parts(names::REQUESTS, verified),
                    Key::from_parts(
                        names::VERIFY_SECONDS,
                        vec![
                            MetricLabel::new(names::PROVIDER, self.keys.label.value()),
                            tenant,
                        ],
                    ),
                )
            });
            let (verified, verify_seconds) = match &tenant_keys {
                Some((verified, seconds)) => (verified, seconds),
                None => (&self.keys.verified, &self.keys.verify_seconds),
            };
            metrics::with_recorder(|recorder| {
                recorder.register_counter(verified, &METADATA).increment(1);
                recorder
                    .register_histogram(verify_seconds, &METADATA)
                    .record(seconds);
            });
        }
    }

    /// A request was refused, before or after its signature was verified.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn refused(&self, rejection: &Rejection) {
        #[cfg(feature = "metrics")]
        metrics::with_recorder(|recorder| {
            let mut labels = self.keys.label.labels(names::REFUSED);
            labels.push(MetricLabel::from_static_parts(
                names::REASON,
                rejection.label(),
            ));
            let key = Key::from_parts(names::REQUESTS, labels);
            recorder.register_counter(&key, &METADATA).increment(1);
        });
    }
}

/// Sets the gauges of what a queue holds.
#[cfg(all(feature = "metrics", feature = "queue"))]
pub(crate) fn queue_stats(stats: &crate::queue::QueueStats) {
    for (state, count) in [
        ("ready", stats.ready),
        ("pending", stats.pending),
        ("delayed", stats.delayed),
        ("dead", stats.dead),
    ] {
        // Gauges hold f64: exact up to 2^53 messages.
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!(names::QUEUE_MESSAGES, names::STATE => state).set(count as f64);
    }
}

/// Seconds from `earlier` to now (0 when the clock went back).
#[cfg_attr(not(any(feature = "queue", feature = "metrics")), allow(dead_code))]
pub(crate) fn seconds_since(earlier: SystemTime) -> f64 {
    earlier.elapsed().map_or(0.0, |took| took.as_secs_f64())
}
