//! A webhook receiver for local development.
//!
//! ```text
//! cargo run --release --example receiver -- --provider <videonest|videoaiditor|github|stripe|standardwebhooks|svix|shopify|slack> --secret S [--secret S2 ...] [--tolerance SECS] [--listen ADDR] [--max-body BYTES] [--dedupe memory|redis://HOST:PORT] [--fail-rate P] [--handler-delay-ms MS] [--queue memory|redis://HOST:PORT] [--workers N] [--visibility-ms MS] [--max-attempts N]
//! ```
//!
//! Serves `POST /webhook` with the provider's preset. Its first line on stdout is
//! `listening on http://ADDR`; then it prints one JSON line per event its handler processes,
//! `{"provider":"videonest","event":"video.processed","id":"vid_abc123","key":"videonest:…"}`
//! (`event` and `id` are the provider's event type and delivery id wherever it puts them: `id` is
//! `data.id` for VideoNest, `data._id` for VideoAIditor, `X-GitHub-Delivery`, Stripe's event
//! `id`, `webhook-id`/`svix-id`, `X-Shopify-Event-Id`, Slack's `event_id`; `null` when absent;
//! `key` is the deduplication key, `null` when the event has none), and answers 200 once the
//! handler has run. Refused requests get the layer's 401/400/413 with a short reason and print nothing;
//! other methods on `/webhook` get 405. Every verified JSON body is printed, including events
//! kept raw (an unknown type, or fields of an undocumented shape), with their `event` and `id`.
//! `--secret` may be repeated (key rotation: any one matching is enough). `--listen` defaults to
//! 127.0.0.1:3000; port 0 picks a free port.
//!
//! - `--tolerance SECS` sets the replay window of the providers that sign a timestamp (Stripe,
//!   Standard Webhooks, Svix, Slack: 300 unless set; a signed timestamp further than that from
//!   the clock, either way, gets 401). For VideoNest it opts into a window on the body's
//!   `timestamp`, which must exceed VideoNest's 36-minute retry horizon (2160 s). GitHub,
//!   Shopify and VideoAIditor sign no timestamp and refuse the flag.
//!
//! - `--dedupe memory` deduplicates deliveries in this process, `--dedupe redis://HOST:PORT` in
//!   Redis (shared by every receiver pointed at it): a repeat of a
//!   processed event gets 200 with `x-webhook-duplicate: true` and prints nothing, a repeat while
//!   the first is processed gets 409, an unreachable Redis 503.
//! - `--fail-rate P` (0 to 1) makes the handler answer 500 with probability P, printing nothing,
//!   and `--handler-delay-ms MS` makes it sleep first: to watch retries and in-flight repeats.
//! - `--queue memory` answers 200 as soon as the delivery is stored
//!   in a queue, and `--workers N` workers (4 unless set) process it: they print the JSON line,
//!   which gains `"attempt"`, once the event is processed; `--handler-delay-ms` and
//!   `--fail-rate` then apply to them. A failed attempt is retried with backoff, up to
//!   `--max-attempts` (5) times; a delivery a worker holds longer than `--visibility-ms` (30000)
//!   goes to another. On ctrl-c the workers finish what they are processing. With `--dedupe`
//!   on the same backend as `--queue` (both `memory`, or the same Redis URL), a delivery is
//!   deduplicated and stored in one step (one Redis round trip), and every repeat gets 200 with
//!   `x-webhook-duplicate: true`.

use std::{
    cell::RefCell,
    io::Write as _,
    net::SocketAddr,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{Router, http::StatusCode, routing::post};
use serde::Serialize;
use tower::ServiceBuilder;
use tower_webhook::{
    DEFAULT_MAX_BODY_SIZE, Verified, WebhookEvent,
    dedupe::{
        DedupeKey, DedupeLayer,
        store::{MemoryStore, Store},
        store_key,
    },
    provider::{
        generic, github, shopify, slack, standard_webhooks, stripe, svix, videoaiditor, videonest,
    },
};

const USAGE: &str = "usage: receiver --provider <videonest|videoaiditor|github|stripe|standardwebhooks|svix|shopify|slack> --secret S [--secret S2 ...] [--tolerance SECS] [--listen ADDR] [--max-body BYTES] [--dedupe memory|redis://HOST:PORT] [--fail-rate P] [--handler-delay-ms MS] [--queue memory|redis://HOST:PORT] [--workers N] [--visibility-ms MS] [--max-attempts N]";

#[derive(Debug, Clone, Copy)]
enum Provider {
    VideoNest,
    VideoAIditor,
    GitHub,
    Stripe,
    StandardWebhooks,
    Svix,
    Shopify,
    Slack,
}

/// Where `--dedupe` keeps its records, or `--queue` its deliveries.
#[derive(Debug)]
enum Backend {
    Memory,
    Redis(String),
}

impl Backend {
    fn parse(flag: &str, value: &str) -> Result<Self, String> {
        match value {
            "memory" => Ok(Self::Memory),
            url if url.starts_with("redis://") || url.starts_with("rediss://") => {
                Ok(Self::Redis(url.to_owned()))
            }
            other => Err(format!(
                "{flag}: {other:?} is neither `memory` nor a redis:// URL"
            )),
        }
    }
}

/// The parsed command line; no `Debug`, since it holds the secrets.
struct Args {
    provider: Provider,
    secrets: Vec<String>,
    tolerance: Option<Duration>,
    listen: SocketAddr,
    max_body: usize,
    dedupe: Option<Backend>,
    fail_rate: f64,
    handler_delay: Duration,
    queue: Option<Backend>,
    #[cfg_attr(not(feature = "queue"), allow(dead_code))]
    workers: usize,
    #[cfg_attr(not(feature = "queue"), allow(dead_code))]
    visibility: Duration,
    #[cfg_attr(not(feature = "queue"), allow(dead_code))]
    max_attempts: u32,
}

impl Args {
    /// Whether `--dedupe` and `--queue` name one backend: then the queue keeps the records,
    /// and deduplicates and stores each delivery in one step.
    fn dedupe_in_queue(&self) -> bool {
        match (&self.dedupe, &self.queue) {
            (Some(Backend::Memory), Some(Backend::Memory)) => true,
            (Some(Backend::Redis(dedupe)), Some(Backend::Redis(queue))) => dedupe == queue,
            _ => false,
        }
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut provider = None;
    let mut secrets = Vec::new();
    let mut tolerance = None;
    let mut listen: SocketAddr = "127.0.0.1:3000".parse().expect("valid default address");
    let mut max_body = DEFAULT_MAX_BODY_SIZE;
    let mut dedupe = None;
    let mut fail_rate = 0.0;
    let mut handler_delay = Duration::ZERO;
    let mut queue = None;
    let mut workers = 4;
    let mut visibility = Duration::from_millis(30_000);
    let mut max_attempts = 5;
    while let Some(flag) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "--provider" => {
                provider = Some(match value("--provider")?.as_str() {
                    "videonest" => Provider::VideoNest,
                    "videoaiditor" => Provider::VideoAIditor,
                    "github" => Provider::GitHub,
                    "stripe" => Provider::Stripe,
                    "standardwebhooks" => Provider::StandardWebhooks,
                    "svix" => Provider::Svix,
                    "shopify" => Provider::Shopify,
                    "slack" => Provider::Slack,
                    other => return Err(format!("unknown provider {other:?}")),
                });
            }
            "--secret" => secrets.push(value("--secret")?),
            "--tolerance" => {
                let secs = value("--tolerance")?;
                tolerance = Some(Duration::from_secs(secs.parse().map_err(|_| {
                    format!("--tolerance: {secs:?} is not a number of seconds")
                })?));
            }
            "--listen" => {
                let addr = value("--listen")?;
                listen = addr.parse().map_err(|_| {
                    format!("--listen: {addr:?} is not an address such as 127.0.0.1:3000")
                })?;
            }
            "--max-body" => {
                let bytes = value("--max-body")?;
                max_body = bytes
                    .parse()
                    .map_err(|_| format!("--max-body: {bytes:?} is not a number of bytes"))?;
            }
            "--dedupe" => dedupe = Some(Backend::parse("--dedupe", &value("--dedupe")?)?),
            "--fail-rate" => {
                let rate = value("--fail-rate")?;
                fail_rate = rate
                    .parse::<f64>()
                    .ok()
                    .filter(|p| (0.0..=1.0).contains(p))
                    .ok_or_else(|| format!("--fail-rate: {rate:?} is not a number from 0 to 1"))?;
            }
            "--handler-delay-ms" => {
                let ms = value("--handler-delay-ms")?;
                handler_delay = Duration::from_millis(ms.parse().map_err(|_| {
                    format!("--handler-delay-ms: {ms:?} is not a number of milliseconds")
                })?);
            }
            "--queue" => queue = Some(Backend::parse("--queue", &value("--queue")?)?),
            "--workers" => {
                let n = value("--workers")?;
                workers = n
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("--workers: {n:?} is not a positive number"))?;
            }
            "--visibility-ms" => {
                let ms = value("--visibility-ms")?;
                visibility = Duration::from_millis(ms.parse().map_err(|_| {
                    format!("--visibility-ms: {ms:?} is not a number of milliseconds")
                })?);
            }
            "--max-attempts" => {
                let n = value("--max-attempts")?;
                max_attempts = n
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("--max-attempts: {n:?} is not a positive number"))?;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let provider = provider.ok_or("--provider is required")?;
    if secrets.is_empty() {
        return Err("at least one --secret is required".into());
    }
    Ok(Args {
        provider,
        secrets,
        tolerance,
        listen,
        max_body,
        dedupe,
        fail_rate,
        handler_delay,
        queue,
        workers,
        visibility,
        max_attempts,
    })
}

/// One stdout line per processed event.
#[derive(Serialize)]
struct Line<'a> {
    provider: &'a str,
    event: &'a str,
    id: Option<&'a str>,
    key: Option<&'a str>,
    /// With `--queue`: which attempt of the worker this was.
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt: Option<u32>,
}

thread_local! {
    /// The text of the line being printed, kept between lines so that printing allocates
    /// nothing once the buffer has grown to the longest line.
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Prints one line on stdout with one `write`, before it returns: a request is answered (or a
/// queued delivery acknowledged) only once its line is out. Printing in place costs one system
/// call per line and no task wake-up; a closed stdout must not take the receiver down (the
/// request is still answered).
fn print_line(line: &Line<'_>) {
    LINE.with_borrow_mut(|text| {
        text.clear();
        serde_json::to_writer(&mut *text, line).expect("serialisable");
        text.push(b'\n');
        let _ = std::io::stdout().lock().write_all(text);
    });
}

/// What the handler does besides printing: fail sometimes, take its time.
struct Behaviour {
    provider: &'static str,
    fail_rate: f64,
    delay: Duration,
    /// xorshift state for the failure draws.
    random: AtomicU64,
}

impl Behaviour {
    /// Whether this call fails: true with probability `fail_rate`.
    fn draw_failure(&self) -> bool {
        if self.fail_rate <= 0.0 {
            return false;
        }
        let mut x = self.random.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random.store(x, Ordering::Relaxed);
        ((x >> 11) as f64 / (1u64 << 53) as f64) < self.fail_rate
    }
}

async fn handle<E: WebhookEvent>(
    behaviour: &Behaviour,
    verified: &Verified<E>,
    key: Option<&str>,
    attempt: Option<u32>,
) -> (StatusCode, &'static str) {
    if !behaviour.delay.is_zero() {
        tokio::time::sleep(behaviour.delay).await;
    }
    if behaviour.draw_failure() {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "handler failed (--fail-rate)\n",
        );
    }
    // Without `--dedupe`, the key the deduplication layer would use.
    let default_key = key.is_none().then(|| {
        verified
            .idempotency_key()
            .map(|k| store_key(verified.provider(), &k))
    });
    print_line(&Line {
        provider: behaviour.provider,
        event: verified.event_type(),
        id: verified.delivery_id().or_else(|| verified.id()),
        key: key.or(default_key.as_ref().and_then(Option::as_deref)),
        attempt,
    });
    (StatusCode::OK, "ok\n")
}

/// What the receiver runs: the HTTP routes, and (with `--queue`) the workers.
struct App {
    router: Router,
    workers: Option<tokio::task::JoinHandle<()>>,
}

/// The route for one provider: verify, then (optionally) deduplicate, then handle, or with
/// `--queue` store the delivery for the workers.
fn route<Sc, E, St>(
    args: &Args,
    verify: tower_webhook::VerifyWebhookLayer<Sc, E>,
    dedupe: Option<DedupeLayer<E, St>>,
    behaviour: Arc<Behaviour>,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Result<App, String>
where
    E: WebhookEvent
        + Clone
        + Send
        + Sync
        + serde::Serialize
        + serde::de::DeserializeOwned
        + 'static,
    Sc: tower_webhook::scheme::Scheme,
    St: Store,
{
    let layers = ServiceBuilder::new().layer(verify).option_layer(dedupe);
    match &args.queue {
        None => {
            // The extensions are read in place: `Extension<Verified<E>>` would clone the event.
            let handler = move |request: axum::extract::Request| {
                let behaviour = Arc::clone(&behaviour);
                async move {
                    let extensions = request.extensions();
                    let Some(verified) = extensions.get::<Verified<E>>() else {
                        return (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "the verifying layer did not run\n",
                        );
                    };
                    let key = extensions.get::<DedupeKey>().map(DedupeKey::as_str);
                    handle(&behaviour, verified, key, None).await
                }
            };
            Ok(App {
                router: Router::new().route("/webhook", post(handler).route_layer(layers)),
                workers: None,
            })
        }
        #[cfg(feature = "queue")]
        Some(target) => queued::route::<E, _>(args, target, layers, behaviour, stop.clone()),
        #[cfg(not(feature = "queue"))]
        Some(_) => {
            let _ = stop;
            Err(
                "--queue: this receiver was built without the `queue` feature \
                 (cargo run --features queue --example receiver -- …)"
                    .to_owned(),
            )
        }
    }
}

#[cfg(feature = "queue")]
mod queued {
    use std::{convert::Infallible, sync::Arc};

    use axum::{Router, extract::Request, response::IntoResponse, routing::post_service};
    use tower::{Layer, Service, service_fn};
    use tower_webhook::{
        WebhookEvent,
        queue::{Delivery, Enqueue, MemoryQueue, Queue, Worker},
    };

    use super::{App, Args, Backend, Behaviour, handle};

    /// `POST /webhook` stores each delivery; `--workers` deliveries are processed at a time.
    pub(super) fn route<E, L>(
        args: &Args,
        target: &Backend,
        layers: L,
        behaviour: Arc<Behaviour>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<App, String>
    where
        E: WebhookEvent
            + Clone
            + Send
            + Sync
            + serde::Serialize
            + serde::de::DeserializeOwned
            + 'static,
        L: Layer<Enqueue<E, Arc<dyn Queue>>>,
        L::Service: Service<Request, Error = Infallible> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request>>::Response: IntoResponse + 'static,
        <L::Service as Service<Request>>::Future: Send + 'static,
    {
        let queue: Arc<dyn Queue> = match target {
            Backend::Memory => Arc::new(MemoryQueue::new(100_000)),
            #[cfg(feature = "redis")]
            Backend::Redis(url) => Arc::new(
                tower_webhook::queue::RedisQueue::connect_lazy(url.as_str())
                    .map_err(|err| format!("--queue {url}: {err}"))?,
            ),
            #[cfg(not(feature = "redis"))]
            Backend::Redis(url) => {
                return Err(format!(
                    "--queue {url}: this receiver was built without the `redis` feature \
                     (cargo run --features queue,redis --example receiver -- …)"
                ));
            }
        };
        let service = service_fn(move |delivery: Delivery<E>| {
            let behaviour = Arc::clone(&behaviour);
            async move {
                let (status, reason) = handle(
                    &behaviour,
                    delivery.verified(),
                    delivery.key(),
                    Some(delivery.attempt()),
                )
                .await;
                if status.is_success() {
                    Ok(())
                } else {
                    Err(reason.trim_end().to_owned())
                }
            }
        });
        let worker = Worker::new(Arc::clone(&queue), service)
            .concurrency(args.workers)
            .visibility_timeout(args.visibility)
            .max_attempts(args.max_attempts);
        let workers = tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.wait_for(|stop| *stop).await;
            };
            if let Err(err) = worker.run(stopped).await {
                eprintln!("receiver: worker: {err}");
            }
        });
        let mut enqueue = Enqueue::<E, _>::new(queue);
        if args.dedupe_in_queue() {
            enqueue = enqueue.deduplicate();
        }
        let enqueue = layers.layer(enqueue);
        Ok(App {
            router: Router::new().route("/webhook", post_service(enqueue)),
            workers: Some(workers),
        })
    }
}

fn app(args: &Args, stop: &tokio::sync::watch::Receiver<bool>) -> Result<App, String> {
    match &args.dedupe {
        None => app_with(args, None::<MemoryStore>, stop),
        // The queue deduplicates.
        Some(_) if args.dedupe_in_queue() => app_with(args, None::<MemoryStore>, stop),
        Some(Backend::Memory) => app_with(args, Some(MemoryStore::new()), stop),
        #[cfg(feature = "redis")]
        Some(Backend::Redis(url)) => {
            // Lazily: the receiver starts while Redis is down, and answers 503 until it is back.
            let store = tower_webhook::dedupe::store::RedisStore::connect_lazy(url.as_str())
                .map_err(|err| format!("--dedupe {url}: {err}"))?;
            app_with(args, Some(store), stop)
        }
        #[cfg(not(feature = "redis"))]
        Some(Backend::Redis(url)) => Err(format!(
            "--dedupe {url}: this receiver was built without the `redis` feature \
             (cargo run --features redis --example receiver -- …)"
        )),
    }
}

fn app_with<St: Store + Clone>(
    args: &Args,
    store: Option<St>,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Result<App, String> {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0x9e37_79b9_7f4a_7c15, |d| d.as_nanos() as u64)
        | 1;
    let behaviour = |provider| {
        Arc::new(Behaviour {
            provider,
            fail_rate: args.fail_rate,
            delay: args.handler_delay,
            random: AtomicU64::new(seed),
        })
    };
    let config = |err: tower_webhook::ConfigError| err.to_string();
    // The presets with a signed timestamp take `--tolerance`; the others refuse it.
    let timed = |scheme: tower_webhook::scheme::HmacBuilder| match args.tolerance {
        Some(tolerance) => scheme.tolerance(tolerance),
        None => scheme,
    };
    let untimed = |name: &str| match args.tolerance {
        Some(_) => Err(format!("--tolerance: {name} signs no timestamp")),
        None => Ok(()),
    };
    // A preset on `scheme::Hmac`: `signs_time` when it signs a timestamp (and so takes
    // `--tolerance`). Called once, for the chosen provider.
    let hmac = |name: &'static str,
                scheme: tower_webhook::scheme::HmacBuilder,
                signs_time: bool|
     -> Result<App, String> {
        let scheme = if signs_time {
            timed(scheme)
        } else {
            untimed(name)?;
            scheme
        };
        let layer = generic::layer(scheme.secrets(&args.secrets))
            .map_err(config)?
            .max_body_size(args.max_body);
        route(
            args,
            layer,
            store.clone().map(DedupeLayer::new),
            behaviour(name),
            stop,
        )
    };
    match args.provider {
        Provider::VideoNest => match args.tolerance {
            None => route(
                args,
                videonest::layer(&args.secrets)
                    .map_err(config)?
                    .max_body_size(args.max_body),
                store.map(DedupeLayer::new),
                behaviour("videonest"),
                stop,
            ),
            Some(tolerance) => route(
                args,
                videonest::layer_with_window(&args.secrets, tolerance)
                    .map_err(config)?
                    .max_body_size(args.max_body),
                store.map(DedupeLayer::new),
                behaviour("videonest"),
                stop,
            ),
        },
        Provider::GitHub => hmac("github", github::scheme(), false),
        Provider::Shopify => hmac("shopify", shopify::scheme(), false),
        Provider::Stripe => hmac("stripe", stripe::scheme(), true),
        Provider::StandardWebhooks => hmac("standardwebhooks", standard_webhooks::scheme(), true),
        Provider::Svix => hmac("svix", svix::scheme(), true),
        Provider::Slack => hmac("slack", slack::scheme(), true),
        Provider::VideoAIditor => untimed("videoaiditor").and_then(|()| {
            route(
                args,
                videoaiditor::layer(&args.secrets)
                    .map_err(config)?
                    .max_body_size(args.max_body),
                store.map(DedupeLayer::new),
                behaviour("videoaiditor"),
                stop,
            )
        }),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1).peekable();
    if matches!(argv.peek().map(String::as_str), Some("--help" | "-h")) {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let args = match parse_args(argv) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("receiver: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let app = match app(&args, &stopped) {
        Ok(app) => app,
        Err(err) => {
            eprintln!("receiver: {err}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("receiver: cannot listen on {}: {err}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().expect("bound socket has an address");
    println!("listening on http://{addr}");
    // Ctrl-C, or SIGTERM as a container runtime sends it.
    let shutdown = async {
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("a SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    };
    let served = axum::serve(listener, app.router)
        .with_graceful_shutdown(shutdown)
        .await;
    // The workers finish what they are processing; the rest stays queued.
    let _ = stop.send(true);
    if let Some(workers) = app.workers
        && let Err(err) = workers.await
    {
        eprintln!("receiver: the workers stopped abnormally: {err}");
    }
    if let Err(err) = served {
        eprintln!("receiver: {err}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
