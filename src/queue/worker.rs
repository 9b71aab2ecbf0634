use std::{
    fmt,
    future::Future,
    marker::PhantomData,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde::de::DeserializeOwned;
use tokio::task::JoinSet;
use tower::Service;

use super::{Delivery, Message, Queue, QueueError};

/// How long to wait before a failed delivery is tried again: `base · 2^(attempt − 1)`, at most
/// `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure.
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Backoff {
    /// The wait after the `attempt`-th attempt failed.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }
}

impl Default for Backoff {
    /// 1 s, doubling up to 5 minutes.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
        }
    }
}

/// Takes deliveries from a [`Queue`] and drives a `tower::Service<Delivery<E>>` with them, at
/// least once each: a success acknowledges the delivery, an error sends it back for another
/// attempt after a [`Backoff`], and after `max_attempts` it goes to the dead letters with the
/// last error. A payload that does not decode goes there at once.
///
/// Put tower's timeout, concurrency-limit or retry layers around the service as on any other.
/// Several workers, in one process or many, can share one queue.
///
/// See the [module docs](super) for an example.
pub struct Worker<E, Q, S> {
    queue: Q,
    service: S,
    consumer: String,
    concurrency: usize,
    visibility: Duration,
    max_attempts: u32,
    backoff: Backoff,
    poll_wait: Duration,
    drain: Duration,
    _event: PhantomData<fn() -> E>,
}

impl<E, Q, S> Worker<E, Q, S> {
    /// A worker that drives `service` with deliveries from `queue`: 4 at a time, a 30 s
    /// visibility timeout, 5 attempts, the default [`Backoff`].
    pub fn new(queue: Q, service: S) -> Self {
        static WORKERS: AtomicU64 = AtomicU64::new(0);
        Self {
            queue,
            service,
            consumer: format!(
                "worker-{}-{}",
                std::process::id(),
                WORKERS.fetch_add(1, Ordering::Relaxed)
            ),
            concurrency: 4,
            visibility: Duration::from_secs(30),
            max_attempts: 5,
            backoff: Backoff::default(),
            poll_wait: Duration::from_secs(1),
            drain: Duration::from_secs(30),
            _event: PhantomData,
        }
    }

    /// The name this worker pulls as (queues that track consumers use it).
    #[must_use]
    pub fn consumer(mut self, name: impl Into<String>) -> Self {
        self.consumer = name.into();
        self
    }

    /// How many deliveries are processed at once (at least 1).
    #[must_use]
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// How long a delivery may take before it is handed to another worker (this one is
    /// presumed dead): longer than the slowest processing.
    #[must_use]
    pub fn visibility_timeout(mut self, visibility: Duration) -> Self {
        self.visibility = visibility;
        self
    }

    /// How many times a delivery is tried before it goes to the dead letters (at least 1).
    #[must_use]
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts.max(1);
        self
    }

    /// The wait between attempts.
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// How long [`run`](Self::run) waits, once shut down, for the deliveries in progress (30 s
    /// unless set). Those still running then are stopped; they stay in the queue and are
    /// delivered again after the visibility timeout.
    #[must_use]
    pub fn drain_timeout(mut self, drain: Duration) -> Self {
        self.drain = drain;
        self
    }
}

impl<E, Q, S> Worker<E, Q, S>
where
    E: DeserializeOwned + Send + 'static,
    Q: Queue + Clone,
    S: Service<Delivery<E>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: fmt::Display + Send + 'static,
{
    /// Runs until `shutdown` completes, then stops pulling and waits for the deliveries in
    /// progress, up to the [`drain_timeout`](Self::drain_timeout). What it had not settled is
    /// left in the queue, and delivered again after the visibility timeout.
    ///
    /// # Errors
    ///
    /// None so far: a queue that cannot be reached is retried every second, for as long as the
    /// worker runs. The `Result` leaves room for fatal queue errors.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), QueueError> {
        let settings = Arc::new(Settings {
            queue: self.queue.clone(),
            visibility: self.visibility,
            max_attempts: self.max_attempts,
            backoff: self.backoff,
        });
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            while tasks.try_join_next().is_some() {}
            let free = self.concurrency.saturating_sub(tasks.len());
            if free == 0 {
                tokio::select! {
                    _ = tasks.join_next() => continue,
                    () = &mut shutdown => break,
                }
            }
            let pull = self
                .queue
                .pull(&self.consumer, free, self.visibility, self.poll_wait);
            let pulled = tokio::select! {
                pulled = pull => pulled,
                () = &mut shutdown => break,
            };
            let Ok(messages) = pulled else {
                // The queue is unreachable: try again in a second.
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    () = &mut shutdown => break,
                }
            };
            for message in messages {
                let settings = Arc::clone(&settings);
                let service = self.service.clone();
                tasks.spawn(async move { settings.process(service, message).await });
            }
        }
        let drained = tokio::time::timeout(self.drain, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            // Unsettled: delivered again after the visibility timeout.
            tasks.abort_all();
        }
        Ok(())
    }
}

struct Settings<Q> {
    queue: Q,
    visibility: Duration,
    max_attempts: u32,
    backoff: Backoff,
}

impl<Q: Queue> Settings<Q> {
    /// Processes one message and settles it. A queue error while settling is retried (every
    /// 50 ms, then up to every second) while the message is still this worker's, within its
    /// visibility timeout: a short outage of the queue does not make a processed delivery
    /// come back. After that, the message comes back: at least once, never lost.
    async fn process<E, S>(&self, mut service: S, message: Message)
    where
        E: DeserializeOwned,
        S: Service<Delivery<E>>,
        S::Future: Send + 'static,
        S::Response: Send + 'static,
        S::Error: fmt::Display + Send + 'static,
    {
        let pulled = Instant::now();
        // Delivered more often than allowed: its earlier attempts never settled (the service
        // panicked, or took longer than the visibility timeout each time). Not tried again.
        if message.attempt > self.max_attempts {
            let error = format!(
                "not settled in {} attempts (the service panicked or outlasted the visibility \
                 timeout)",
                self.max_attempts
            );
            let _ = self.queue.dead_letter(&message, &error).await;
            return;
        }
        let delivery = match Delivery::<E>::from_message(&message) {
            Ok(delivery) => delivery,
            Err(err) => {
                let error = format!("the stored delivery does not decode: {err}");
                let _ = self.queue.dead_letter(&message, &error).await;
                return;
            }
        };
        let outcome: Option<String> = match std::future::poll_fn(|cx| service.poll_ready(cx)).await
        {
            // The call runs in a task of its own, so that a panic in the service is an error
            // of this attempt (retried, then dead-lettered), not a lost settlement.
            Ok(()) => match tokio::spawn(service.call(delivery)).await {
                Ok(Ok(_)) => None,
                Ok(Err(err)) => Some(err.to_string()),
                Err(err) if err.is_panic() => Some("the service panicked".to_owned()),
                Err(err) => Some(err.to_string()),
            },
            Err(err) => Some(err.to_string()),
        };
        let mut pause = Duration::from_millis(50);
        loop {
            let settled = match &outcome {
                None => self.queue.ack(&message).await,
                Some(error) if message.attempt >= self.max_attempts => {
                    self.queue.dead_letter(&message, error).await
                }
                Some(error) => {
                    let delay = self.backoff.delay(message.attempt);
                    self.queue.retry(&message, error, delay).await
                }
            };
            // Settling is idempotent: a settlement that reached the queue but whose answer was
            // lost is a no-op the second time (the message is no longer held).
            if settled.is_ok() || pulled.elapsed() + pause >= self.visibility {
                return;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }
}

impl<E, Q: fmt::Debug, S> fmt::Debug for Worker<E, Q, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("queue", &self.queue)
            .field("consumer", &self.consumer)
            .field("concurrency", &self.concurrency)
            .field("visibility", &self.visibility)
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}
