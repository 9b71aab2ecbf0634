use std::{
    collections::VecDeque,
    fmt,
    future::Future,
    marker::PhantomData,
    panic::{self, AssertUnwindSafe},
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use pin_project::pin_project;
use serde::de::DeserializeOwned;
use tokio::{
    sync::{Notify, mpsc, oneshot},
    task::JoinSet,
};
use tower::Service;

use super::{Delivery, Message, Pull, Queue, QueueError, QueueFuture};
use crate::{
    WebhookEvent,
    meter::{Label, seconds_since},
    metrics as names,
};

/// How long to wait before a failed delivery is tried again: `base · 2^(attempt − 1)`, at most
/// `max`, less a random part of up to `jitter` of it, so that deliveries that failed together
/// (an outage of what the service calls) are not all tried again at the same instant.
///
/// ```
/// use std::time::Duration;
/// use tower_webhook::queue::Backoff;
///
/// let backoff = Backoff::exponential(Duration::from_secs(1), Duration::from_secs(60));
/// // The third attempt failed: wait between 2 and 4 seconds (half of it is random by default).
/// let delay = backoff.delay(3);
/// assert!(Duration::from_secs(2) <= delay && delay <= Duration::from_secs(4));
/// assert_eq!(backoff.max_delay(3), Duration::from_secs(4));
/// // Without jitter, exactly the exponential wait.
/// assert_eq!(backoff.jitter(0.0).delay(3), Duration::from_secs(4));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    jitter: f64,
}

impl Backoff {
    /// The default share of each wait that is random: half ([`Backoff::jitter`]).
    pub const DEFAULT_JITTER: f64 = 0.5;

    /// `base` after the first failure, doubling after each one up to `max`, with
    /// [`DEFAULT_JITTER`](Self::DEFAULT_JITTER).
    pub fn exponential(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            jitter: Self::DEFAULT_JITTER,
        }
    }

    /// How much of each wait is random, from 0 (none: every wait is exactly the exponential
    /// one) to 1 (anything from zero to it); clamped to that range. A wait is drawn uniformly
    /// between `(1 − jitter) · d` and `d`, `d` being [`max_delay`](Self::max_delay).
    #[must_use]
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        self
    }

    /// The longest wait after the `attempt`-th attempt failed: `base · 2^(attempt − 1)`, at
    /// most `max`.
    pub fn max_delay(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The wait after the `attempt`-th attempt failed: [`max_delay`](Self::max_delay) less a
    /// random part of up to [`jitter`](Self::jitter) of it.
    pub fn delay(&self, attempt: u32) -> Duration {
        let delay = self.max_delay(attempt);
        if self.jitter == 0.0 {
            return delay;
        }
        delay.mul_f64(1.0 - self.jitter * unit_random())
    }
}

impl Default for Backoff {
    /// 1 s, doubling up to 5 minutes, half of each wait random.
    fn default() -> Self {
        Self::exponential(Duration::from_secs(1), Duration::from_secs(300))
    }
}

/// A number in `[0, 1)`, from the process's random hasher keys, the time and a counter: good
/// enough to spread retries, not for anything secret.
fn unit_random() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    // The top 53 bits, as a fraction.
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
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
    prefetch: usize,
    #[cfg(feature = "metrics")]
    stats_interval: Duration,
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
            visibility: Pull::DEFAULT_VISIBILITY,
            max_attempts: 5,
            backoff: Backoff::default(),
            poll_wait: Duration::from_secs(1),
            drain: Duration::from_secs(30),
            prefetch: 0,
            #[cfg(feature = "metrics")]
            stats_interval: DEFAULT_STATS_INTERVAL,
            _event: PhantomData,
        }
    }

    setters! {
        /// The name this worker pulls as (queues that track consumers use it).
        #[must_use]
        pub fn consumer(name: impl Into<String>) { consumer = name.into() }

        /// How many deliveries are processed at once (at least 1).
        ///
        /// The worker holds more: those whose acknowledgement is on its way (sent in batches,
        /// [`Queue::ack_many`]), up to as many again, and those it pulled ahead
        /// ([`prefetch`](Self::prefetch), off unless set).
        #[must_use]
        pub fn concurrency(concurrency: usize) { concurrency = concurrency.max(1) }

        /// How long a delivery may take before it is handed to another worker (this one is presumed
        /// dead): longer than the slowest processing.
        #[must_use]
        pub fn visibility_timeout(visibility: Duration) { visibility = visibility }

        /// Pulls up to `max` deliveries ahead of the free places, below a low-water mark, while
        /// the last ones run: for a fast service, a pull's round trip no longer bounds the
        /// worker to its concurrency per round trip. Off (0) unless set.
        ///
        /// It takes only as many as finish, at the pace of the slowest recent delivery, within
        /// an eighth of the [visibility timeout](Self::visibility_timeout): none before the
        /// first delivery was timed, nor for a service slower than that. A delivery pulled
        /// ahead is started only within the first quarter of its visibility timeout (also
        /// while [`run`](Self::run) drains); one held up longer by a sudden slowdown is not
        /// started, and comes back after its timeout with one more attempt counted, so use it
        /// with [`max_attempts`](Self::max_attempts) of 2 or more.
        #[must_use]
        pub fn prefetch(max: usize) { prefetch = max }

        /// How many times a delivery is tried before it goes to the dead letters (at least 1).
        #[must_use]
        pub fn max_attempts(max_attempts: u32) { max_attempts = max_attempts.max(1) }

        /// The wait between attempts.
        #[must_use]
        pub fn backoff(backoff: Backoff) { backoff = backoff }

        /// How long [`run`](Self::run) waits, once shut down, for the deliveries in progress (30 s
        /// unless set). Those still running then are stopped (their futures dropped) before `run`
        /// returns; they stay in the queue and are delivered again after the visibility timeout.
        #[must_use]
        pub fn drain_timeout(drain: Duration) { drain = drain }

        /// How often [`run`](Self::run) asks the queue for its [`stats`](Queue::stats) and sets the
        /// `webhook_queue_messages` gauges ([`crate::metrics`]): every [`DEFAULT_STATS_INTERVAL`]
        /// unless set; `Duration::ZERO` never does.
        #[cfg(feature = "metrics")]
        #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
        #[must_use]
        pub fn stats_interval(interval: Duration) { stats_interval = interval }
    }
}

/// How often a [`Worker`] sets the queue's gauges unless [`Worker::stats_interval`] says
/// otherwise: 10 s.
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub const DEFAULT_STATS_INTERVAL: Duration = Duration::from_secs(10);

impl<E, Q, S> Worker<E, Q, S>
where
    E: WebhookEvent + DeserializeOwned + Send + 'static,
    Q: Queue + Clone,
    S: Service<Delivery<E>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: fmt::Display + Send + 'static,
{
    /// Runs until `shutdown` completes, then stops pulling and waits for the deliveries in
    /// progress, up to the [`drain_timeout`](Self::drain_timeout); those still running then
    /// are stopped, and `run` returns once they are. What it had not settled is left in the
    /// queue, and delivered again after the visibility timeout.
    ///
    /// With the `tracing` feature, each delivery is processed inside a `webhook_delivery` span
    /// (`provider`, `event_type`, `delivery_id`, `key`, `message_id`, `attempt`), so the service's
    /// own events carry them; failures are events in it: a failed attempt and a dead letter at
    /// `warn`, a delivery that does not decode and a settlement that could not be stored at
    /// `error`. A queue that cannot be read is a `warn` event when it starts failing and an
    /// `info` one when it answers again.
    ///
    /// # Errors
    ///
    /// None so far: a queue that cannot be reached is retried every second, for as long as the
    /// worker runs. The `Result` leaves room for fatal queue errors.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), QueueError> {
        let (acks, unsent) = mpsc::unbounded_channel();
        let busy = Arc::new(BusyCount::default());
        let acknowledging =
            tokio::spawn(acknowledge(self.queue.clone(), unsent, Arc::clone(&busy)));
        let settings = Arc::new(Settings {
            queue: self.queue.clone(),
            visibility: self.visibility,
            max_attempts: self.max_attempts,
            backoff: self.backoff,
            acks,
            slowest: AtomicU64::new(0),
            prefetch: self.prefetch,
        });
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        // Whether the last pull failed: said once when it starts failing, once when it stops.
        let mut unreachable = false;
        // Deliveries pulled and not started yet (with when their pull answered: their
        // visibility timeout runs from about then, a pull that waited for them included), the
        // pull on its way, and the pause after a failed pull.
        let mut pulled: VecDeque<(Instant, Message)> = VecDeque::new();
        let mut pulling: Option<QueueFuture<Vec<Message>>> = None;
        let mut pause: Option<Pin<Box<tokio::time::Sleep>>> = None;
        #[cfg(feature = "metrics")]
        let mut stats_due = Instant::now();
        loop {
            while tasks.try_join_next().is_some() {}
            #[cfg(feature = "metrics")]
            if !self.stats_interval.is_zero() && Instant::now() >= stats_due {
                stats_due = Instant::now() + self.stats_interval;
                tokio::select! {
                    stats = self.queue.stats() => {
                        // An unreachable queue is said by the pull below.
                        if let Ok(stats) = stats {
                            crate::meter::queue_stats(&stats);
                        }
                    }
                    () = &mut shutdown => break,
                }
            }
            // Deliveries whose processing is over do not hold a place while their
            // acknowledgement is on its way, up to as many again as the concurrency.
            while busy.count.load(Ordering::Acquire) < self.concurrency
                && tasks.len() < self.concurrency.saturating_mul(2)
                && let Some((at, message)) = pulled.pop_front()
            {
                // Pulled ahead and held up by a slowdown since: not started this late in its
                // visibility timeout (it comes back after it, to this worker or another),
                // rather than run while another worker may take it.
                if at.elapsed() > self.visibility / 4 {
                    log_debug!(
                        message_id = %message.id,
                        "a delivery pulled ahead waited too long to start; it will come back"
                    );
                    continue;
                }
                let settings = Arc::clone(&settings);
                let service = self.service.clone();
                let busy = Busy::start(&busy);
                tasks.spawn(async move { settings.process(service, message, at, busy).await });
            }
            // The next pull goes out while the last one's deliveries run, once fewer than half
            // the prefetch wait: it asks for what the free places and the prefetch leave.
            let prefetch = settings.prefetch(self.concurrency);
            let held = busy.count.load(Ordering::Acquire) + pulled.len();
            let most = self.concurrency.saturating_add(prefetch);
            if pulling.is_none()
                && pause.is_none()
                && pulled.len() <= prefetch / 2
                && held < most
                && tasks.len() < self.concurrency.saturating_mul(2)
            {
                let pull = Pull::up_to(most - held)
                    .hidden_for(self.visibility)
                    .waiting(self.poll_wait);
                pulling = Some(self.queue.pull(&self.consumer, pull));
            }
            tokio::select! {
                taken = async { pulling.as_mut().expect("a pull").await }, if pulling.is_some() => {
                    let at = Instant::now();
                    pulling = None;
                    match taken {
                        Ok(messages) => {
                            if unreachable {
                                unreachable = false;
                                log_info!(
                                    consumer = %self.consumer,
                                    "the webhook queue answers again"
                                );
                            }
                            pulled.extend(messages.into_iter().map(|message| (at, message)));
                        }
                        Err(_err) => {
                            if !unreachable {
                                unreachable = true;
                                log_warn!(
                                    consumer = %self.consumer,
                                    error = %crate::log::ErrorChain(&_err),
                                    "cannot read the webhook queue; trying again every second"
                                );
                            }
                            pause = Some(Box::pin(tokio::time::sleep(Duration::from_secs(1))));
                        }
                    }
                }
                () = async { pause.as_mut().expect("a pause").await }, if pause.is_some() => {
                    pause = None;
                }
                _ = tasks.join_next(), if !tasks.is_empty() => {}
                () = busy.freed.notified() => {}
                () = &mut shutdown => break,
            }
        }
        // A pull on its way is dropped. Those pulled ahead are started as places free up,
        // within the drain timeout and the first quarter of their visibility timeout, rather
        // than left to come back with one more attempt counted.
        drop(pulling);
        let (concurrency, late) = (self.concurrency, self.visibility / 4);
        let (starting, service, running) =
            (Arc::clone(&settings), self.service.clone(), &mut tasks);
        let drained = tokio::time::timeout(self.drain, async move {
            loop {
                while busy.count.load(Ordering::Acquire) < concurrency
                    && let Some((at, message)) = pulled.pop_front()
                {
                    if at.elapsed() <= late {
                        let settings = Arc::clone(&starting);
                        let service = service.clone();
                        let busy = Busy::start(&busy);
                        running.spawn(
                            async move { settings.process(service, message, at, busy).await },
                        );
                    }
                }
                tokio::select! {
                    joined = running.join_next() => {
                        if joined.is_none() && pulled.is_empty() {
                            break;
                        }
                    }
                    () = busy.freed.notified() => {}
                }
            }
        })
        .await;
        if drained.is_err() {
            // Unsettled: delivered again after the visibility timeout. Stopped before `run`
            // returns, so that none runs beside its own redelivery.
            log_warn!(
                consumer = %self.consumer,
                stopped = tasks.len(),
                "the drain timeout ran out: stopping the deliveries still in progress"
            );
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        // Every delivery that finished was answered its acknowledgement: the task ends once
        // every sender is gone. Those stopped may have left one on its way: not waited for.
        drop(settings);
        if drained.is_err() {
            acknowledging.abort();
        }
        acknowledging.await.ok();
        Ok(())
    }
}

/// An acknowledgement for [`acknowledge`] to send, and where to say how it went.
type Ack = (Message, oneshot::Sender<Result<(), QueueError>>);

/// How many acknowledgements go in one [`Queue::ack_many`] at most.
const ACK_BATCH: usize = 256;

/// How many times [`acknowledge`] yields for deliveries still being processed.
const ACK_YIELDS: usize = 4;

/// How many deliveries are being processed (their settlement not started), and a wake-up for
/// the worker's loop each time one is over.
#[derive(Default)]
struct BusyCount {
    count: AtomicUsize,
    freed: Notify,
}

/// Counts a delivery being processed, until its settlement starts (or its task ends).
struct Busy(Arc<BusyCount>);

impl Busy {
    fn start(busy: &Arc<BusyCount>) -> Self {
        busy.count.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(busy))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
        self.0.freed.notify_one();
    }
}

/// Sends the acknowledgements of finished deliveries in batches, one batch at a time: those
/// that come while a batch is on its way go together in the next ([`Queue::ack_many`]). At a
/// low rate each goes alone and at once; at a high rate one round trip acknowledges many. A
/// delivery's task waits for its batch, so a batch holds at most twice the worker's
/// concurrency. A batch lost in a crash only repeats work: its messages are still held, and are
/// delivered again after their visibility timeout.
///
/// Before it sends a batch, it lets the deliveries still being processed run a few times
/// (`yield_now`), so that those that finish together (a pulled batch of quick ones) share it.
async fn acknowledge<Q: Queue>(
    queue: Q,
    mut unsent: mpsc::UnboundedReceiver<Ack>,
    busy: Arc<BusyCount>,
) {
    let mut batch = Vec::with_capacity(ACK_BATCH);
    while unsent.recv_many(&mut batch, ACK_BATCH).await > 0 {
        for _ in 0..ACK_YIELDS {
            if busy.count.load(Ordering::Acquire) == 0 || batch.len() >= ACK_BATCH {
                break;
            }
            tokio::task::yield_now().await;
            while batch.len() < ACK_BATCH
                && let Ok(ack) = unsent.try_recv()
            {
                batch.push(ack);
            }
        }
        let (messages, replies): (Vec<Message>, Vec<_>) = batch.drain(..).unzip();
        // A queue that panics answers this batch with an error (each delivery then sends its
        // own acknowledgement): the task goes on for the next ones.
        let panicked = || Err(QueueError::unavailable("the queue's ack_many panicked"));
        let acked = match panic::catch_unwind(AssertUnwindSafe(|| queue.ack_many(&messages))) {
            Ok(acking) => CatchUnwind(acking)
                .await
                .unwrap_or_else(|Panicked| panicked()),
            Err(_payload) => panicked(),
        };
        for reply in replies {
            reply.send(acked.clone()).ok();
        }
    }
}

struct Settings<Q> {
    queue: Q,
    visibility: Duration,
    max_attempts: u32,
    backoff: Backoff,
    /// To [`acknowledge`].
    acks: mpsc::UnboundedSender<Ack>,
    /// [`Worker::prefetch`].
    prefetch: usize,
    /// How long the slowest recent delivery took (nanoseconds, a maximum that decays by an
    /// eighth with each faster one; 0 before the first).
    slowest: AtomicU64,
}

impl<Q: Queue> Settings<Q> {
    /// Processes one message and settles it ([`settle`](Self::settle)).
    async fn process<E, S>(&self, mut service: S, message: Message, pulled: Instant, busy: Busy)
    where
        E: WebhookEvent + DeserializeOwned,
        S: Service<Delivery<E>>,
        S::Future: Send + 'static,
        S::Response: Send + 'static,
        S::Error: fmt::Display + Send + 'static,
    {
        let started = Instant::now();
        // Delivered more often than allowed: its earlier attempts never settled (the service
        // panicked, or took longer than the visibility timeout each time). Not tried again.
        if message.attempt > self.max_attempts {
            let error = format!(
                "not settled in {} attempts (the service panicked or outlasted the visibility \
                 timeout)",
                self.max_attempts
            );
            Label::default().count(names::DELIVERIES, names::DEAD_LETTERED);
            self.settle(&message, pulled, &Outcome::DeadLetter(error), busy)
                .await;
            return;
        }
        let delivery = match Delivery::<E>::from_message(&message) {
            Ok(delivery) => delivery,
            Err(err) => {
                // The error's message says where, never what the payload holds.
                let error = err.to_string();
                log_error!(
                    message_id = %message.id,
                    attempt = message.attempt,
                    error = %error,
                    "a stored webhook delivery cannot be read; dead-lettering it"
                );
                Label::default().count(names::DELIVERIES, names::DEAD_LETTERED);
                self.settle(&message, pulled, &Outcome::DeadLetter(error), busy)
                    .await;
                return;
            }
        };
        let label = Label::new(delivery.verified().provider_name());
        if delivery.replays() > 0 && delivery.attempt() == 1 {
            label.count(names::DELIVERIES, names::REPLAYED);
        }
        let received_at = delivery.verified().received_at();
        let span = DeliverySpan::new(&delivery);
        let outcome = span
            .instrument(async {
                let attempt = async {
                    std::future::poll_fn(|cx| service.poll_ready(cx))
                        .await
                        .map_err(|err| err.to_string())?;
                    service.call(delivery).await.map_err(|err| err.to_string())
                };
                // A panic in the service (in `poll_ready`, `call` or its future) is an error of
                // this attempt (retried, then dead-lettered), not a lost settlement. The call
                // stays in this task: when the drain timeout stops the task, it stops with it.
                let failure: Option<String> = match CatchUnwind(attempt).await {
                    Ok(Ok(_)) => None,
                    Ok(Err(error)) => Some(error),
                    Err(Panicked) => Some("the service panicked".to_owned()),
                };
                match failure {
                    None => Outcome::Ack,
                    Some(error) if message.attempt >= self.max_attempts => {
                        Outcome::DeadLetter(error)
                    }
                    Some(error) => {
                        let delay = self.backoff.delay(message.attempt);
                        log_warn!(
                            error = %error,
                            retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                            "webhook delivery failed; it will be tried again"
                        );
                        Outcome::Retry(error, delay)
                    }
                }
            })
            .await;
        let took = started.elapsed();
        self.timed(took);
        label.record(names::HANDLER_SECONDS, took.as_secs_f64());
        match &outcome {
            Outcome::Ack => {
                label.count(names::DELIVERIES, names::PROCESSED);
                label.record(names::QUEUE_LAG_SECONDS, seconds_since(received_at));
            }
            Outcome::Retry(..) => label.count(names::DELIVERIES, names::RETRIED),
            Outcome::DeadLetter(_) => label.count(names::DELIVERIES, names::DEAD_LETTERED),
        }
        span.instrument(self.settle(&message, pulled, &outcome, busy))
            .await;
    }

    /// Settles `message` as `outcome` says. A queue error is retried (every 50 ms, then up to
    /// every second) while the message is still this worker's, within its visibility timeout:
    /// a short outage of the queue does not make a processed delivery come back. After that,
    /// the message comes back: at least once, never lost.
    async fn settle(&self, message: &Message, pulled: Instant, outcome: &Outcome, busy: Busy) {
        // Processed: what is left is the queue's.
        drop(busy);
        if let Outcome::DeadLetter(_error) = outcome {
            log_warn!(
                message_id = %message.id,
                attempts = message.attempt,
                error = %_error,
                "webhook delivery dead-lettered"
            );
        }
        let mut pause = Duration::from_millis(50);
        let mut failures = 0u32;
        loop {
            let settled = match outcome {
                // With the others that finish meanwhile; alone when tried again.
                Outcome::Ack if failures == 0 => self.ack_in_batch(message, pulled).await,
                Outcome::Ack => self.queue.ack(message).await,
                Outcome::Retry(error, delay) => self.queue.retry(message, error, *delay).await,
                Outcome::DeadLetter(error) => self.queue.dead_letter(message, error).await,
            };
            // Settling is idempotent: a settlement that reached the queue but whose answer was
            // lost is a no-op the second time (the message is no longer held).
            let Err(_err) = settled else {
                return;
            };
            failures += 1;
            if pulled.elapsed() + pause >= self.visibility {
                log_error!(
                    message_id = %message.id,
                    settlement = outcome.name(),
                    tries = failures,
                    error = %crate::log::ErrorChain(&_err),
                    "could not settle a webhook delivery within its visibility timeout; it will \
                     be delivered again"
                );
                return;
            }
            if failures == 1 {
                log_warn!(
                    message_id = %message.id,
                    settlement = outcome.name(),
                    error = %crate::log::ErrorChain(&_err),
                    "could not settle a webhook delivery; trying again"
                );
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }
}

impl<Q> Settings<Q> {
    /// How many deliveries to pull beyond the free places: as many as finish, at the pace of
    /// the slowest recent delivery, within an eighth of the visibility timeout (at most
    /// [`Worker::prefetch`]), so that a delivery waiting in the worker starts well before its timeout
    /// runs out; none before the first delivery was timed, nor for a service slower than that.
    fn prefetch(&self, concurrency: usize) -> usize {
        let slowest = self.slowest.load(Ordering::Relaxed);
        if slowest == 0 || self.prefetch == 0 {
            return 0;
        }
        let window = u64::try_from(self.visibility.as_nanos() / 8).unwrap_or(u64::MAX);
        let finish = (window / slowest).saturating_mul(concurrency as u64);
        usize::try_from(finish).map_or(self.prefetch, |finish| finish.min(self.prefetch))
    }

    /// Counts a delivery that took `took`.
    fn timed(&self, took: Duration) {
        let took = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX).max(1);
        let slowest = self.slowest.load(Ordering::Relaxed);
        self.slowest
            .store(took.max(slowest - slowest / 8), Ordering::Relaxed);
    }

    /// Acknowledges `message` in [`acknowledge`]'s next batch.
    /// Waits for the batch at most until `message`'s visibility timeout (from `pulled`) runs
    /// out: a batch that hangs does not hold up the deliveries' own settlement.
    async fn ack_in_batch(&self, message: &Message, pulled: Instant) -> Result<(), QueueError> {
        let (reply, acked) = oneshot::channel();
        // Unsent, the reply is dropped with it.
        self.acks.send((message.clone(), reply)).ok();
        let left = self.visibility.saturating_sub(pulled.elapsed());
        match tokio::time::timeout(left, acked).await {
            Ok(Ok(acked)) => acked,
            Ok(Err(_gone)) => Err(QueueError::unavailable("the acknowledging task is gone")),
            Err(_late) => Err(QueueError::unavailable(
                "the acknowledgement's batch took longer than the visibility timeout",
            )),
        }
    }
}

/// How an attempt ends for the queue.
enum Outcome {
    Ack,
    /// The error, and the wait before the next attempt.
    Retry(String, Duration),
    /// The last error.
    DeadLetter(String),
}

impl Outcome {
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    fn name(&self) -> &'static str {
        match self {
            Self::Ack => "ack",
            Self::Retry(..) => "retry",
            Self::DeadLetter(_) => "dead letter",
        }
    }
}

/// The service's future panicked.
struct Panicked;

/// Runs a future, turning a panic into [`Panicked`]; it is not polled again after one.
#[pin_project]
struct CatchUnwind<F>(#[pin] F);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Panicked>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut future = self.project().0;
        match panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_payload) => Poll::Ready(Err(Panicked)),
        }
    }
}

/// The `webhook_delivery` span of one delivery (feature `tracing`); nothing without it.
struct DeliverySpan {
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

impl DeliverySpan {
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    fn new<E: WebhookEvent>(delivery: &Delivery<E>) -> Self {
        Self {
            #[cfg(feature = "tracing")]
            span: tracing::info_span!(
                "webhook_delivery",
                provider = delivery.provider(),
                event_type = delivery.event_type(),
                delivery_id = delivery.delivery_id().or_else(|| delivery.event().id()),
                key = delivery.key(),
                message_id = %delivery.id(),
                attempt = delivery.attempt(),
            ),
        }
    }

    /// `future`, run inside the span.
    fn instrument<F: Future>(&self, future: F) -> impl Future<Output = F::Output> {
        #[cfg(feature = "tracing")]
        {
            tracing::Instrument::instrument(future, self.span.clone())
        }
        #[cfg(not(feature = "tracing"))]
        {
            future
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_jitter_the_wait_doubles_up_to_the_maximum() {
        let backoff =
            Backoff::exponential(Duration::from_millis(100), Duration::from_secs(1)).jitter(0.0);
        let waits: Vec<u128> = (1..=6).map(|n| backoff.delay(n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn jitter_spreads_waits_below_the_exponential_one() {
        let backoff = Backoff::default();
        assert_eq!(backoff.max_delay(3), Duration::from_secs(4));
        let waits: std::collections::HashSet<Duration> =
            (0..200).map(|_| backoff.delay(3)).collect();
        assert!(
            waits
                .iter()
                .all(|wait| Duration::from_secs(2) <= *wait && *wait <= Duration::from_secs(4)),
            "{waits:?}"
        );
        // Deliveries that failed together are not all tried again at one instant.
        assert!(waits.len() > 150, "{} distinct waits of 200", waits.len());
        let (low, high) = waits.iter().fold((0, 0), |(low, high), wait| {
            if *wait < Duration::from_secs(3) {
                (low + 1, high)
            } else {
                (low, high + 1)
            }
        });
        assert!(low > 40 && high > 40, "{low} below 3 s, {high} above");
    }

    #[test]
    fn jitter_is_clamped() {
        let base = Backoff::exponential(Duration::from_secs(1), Duration::from_secs(1));
        for jitter in [f64::NAN, -1.0, 0.0] {
            assert_eq!(base.jitter(jitter).delay(1), Duration::from_secs(1));
        }
        for _ in 0..100 {
            assert!(base.jitter(7.0).delay(1) <= Duration::from_secs(1));
        }
    }
}
