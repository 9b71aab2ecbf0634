//! A webhook receiver for local development.
//!
//! ```text
//! cargo run --release --example receiver -- --provider <videonest|videoaiditor> --secret S [--secret S2 ...] [--listen ADDR] [--max-body BYTES] [--dedupe memory|redis://HOST:PORT] [--fail-rate P] [--handler-delay-ms MS]
//! ```
//!
//! Serves `POST /webhook` with the provider's preset. Its first line on stdout is
//! `listening on http://ADDR`; then it prints one JSON line per event its handler processes,
//! `{"provider":"videonest","event":"video.processed","id":"vid_abc123","key":"videonest:…"}`
//! (`id` is `data.id` for VideoNest and `data._id` for VideoAIditor, `null` when absent; `key` is
//! the deduplication key, `null` when the event has none), and answers 200 once the handler has
//! run. Refused requests get the layer's 401/400/413 with a short reason and print nothing;
//! other methods on `/webhook` get 405. Every verified JSON body is printed, including events
//! kept raw (an unknown type, or fields of an undocumented shape), with their `event` and `id`.
//! `--secret` may be repeated (key rotation: any one matching is enough). `--listen` defaults to
//! 127.0.0.1:3000; port 0 picks a free port.
//!
//! - `--dedupe memory` deduplicates deliveries in this process, `--dedupe redis://HOST:PORT` in
//!   Redis (shared by every receiver pointed at it; needs `--features redis`): a repeat of a
//!   processed event gets 200 with `x-webhook-duplicate: true` and prints nothing, a repeat while
//!   the first is processed gets 409, an unreachable Redis 503.
//! - `--fail-rate P` (0 to 1) makes the handler answer 500 with probability P, printing nothing,
//!   and `--handler-delay-ms MS` makes it sleep first: to watch retries and in-flight repeats.

use std::{
    io::Write as _,
    net::SocketAddr,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{Extension, Router, http::StatusCode, routing::post};
use serde::Serialize;
use tower::ServiceBuilder;
use tower_webhook::{
    DEFAULT_MAX_BODY_SIZE, Verified, WebhookEvent,
    dedupe::{
        DedupeKey, DedupeLayer,
        store::{MemoryStore, Store},
        store_key,
    },
    provider::{videoaiditor, videonest},
};

const USAGE: &str = "usage: receiver --provider <videonest|videoaiditor> --secret S [--secret S2 ...] [--listen ADDR] [--max-body BYTES] [--dedupe memory|redis://HOST:PORT] [--fail-rate P] [--handler-delay-ms MS]";

#[derive(Debug, Clone, Copy)]
enum Provider {
    VideoNest,
    VideoAIditor,
}

#[derive(Debug)]
enum Dedupe {
    Memory,
    Redis(String),
}

/// The parsed command line; no `Debug`, since it holds the secrets.
struct Args {
    provider: Provider,
    secrets: Vec<String>,
    listen: SocketAddr,
    max_body: usize,
    dedupe: Option<Dedupe>,
    fail_rate: f64,
    handler_delay: Duration,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut provider = None;
    let mut secrets = Vec::new();
    let mut listen: SocketAddr = "127.0.0.1:3000".parse().expect("valid default address");
    let mut max_body = DEFAULT_MAX_BODY_SIZE;
    let mut dedupe = None;
    let mut fail_rate = 0.0;
    let mut handler_delay = Duration::ZERO;
    while let Some(flag) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "--provider" => {
                provider = Some(match value("--provider")?.as_str() {
                    "videonest" => Provider::VideoNest,
                    "videoaiditor" => Provider::VideoAIditor,
                    other => return Err(format!("unknown provider {other:?}")),
                });
            }
            "--secret" => secrets.push(value("--secret")?),
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
            "--dedupe" => {
                let store = value("--dedupe")?;
                dedupe = Some(match store.as_str() {
                    "memory" => Dedupe::Memory,
                    url if url.starts_with("redis://") || url.starts_with("rediss://") => {
                        Dedupe::Redis(url.to_owned())
                    }
                    other => {
                        return Err(format!(
                            "--dedupe: {other:?} is neither `memory` nor a redis:// URL"
                        ));
                    }
                });
            }
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
        listen,
        max_body,
        dedupe,
        fail_rate,
        handler_delay,
    })
}

/// One stdout line per processed event.
#[derive(Serialize)]
struct Line<'a> {
    provider: &'a str,
    event: &'a str,
    id: Option<&'a str>,
    key: Option<&'a str>,
}

fn print_line(line: &Line<'_>) {
    let line = serde_json::to_string(line).expect("serialisable");
    let mut stdout = std::io::stdout().lock();
    // A closed stdout must not take the receiver down; the request is still answered.
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
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
    key: Option<&DedupeKey>,
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
    let key = key.map(DedupeKey::as_str);
    // Without `--dedupe`, the key the deduplication layer would use.
    let default_key = key.is_none().then(|| {
        verified
            .idempotency_key()
            .map(|k| store_key(verified.provider(), &k))
    });
    print_line(&Line {
        provider: behaviour.provider,
        event: verified.event_type(),
        id: verified.id(),
        key: key.or(default_key.as_ref().and_then(Option::as_deref)),
    });
    (StatusCode::OK, "ok\n")
}

/// The route for one provider: verify, then (optionally) deduplicate, then handle.
fn route<E, St>(
    verify: tower_webhook::VerifyWebhookLayer<tower_webhook::scheme::HmacSha256, E>,
    dedupe: Option<DedupeLayer<E, St>>,
    behaviour: Arc<Behaviour>,
) -> Router
where
    E: WebhookEvent + Clone + Send + Sync + 'static,
    St: Store,
{
    let handler = move |Extension(verified): Extension<Verified<E>>,
                        key: Option<Extension<DedupeKey>>| {
        let behaviour = Arc::clone(&behaviour);
        async move { handle(&behaviour, &verified, key.as_ref().map(|k| &k.0)).await }
    };
    Router::new().route(
        "/webhook",
        post(handler).route_layer(ServiceBuilder::new().layer(verify).option_layer(dedupe)),
    )
}

fn app(args: &Args) -> Result<Router, String> {
    match &args.dedupe {
        None => app_with(args, None::<MemoryStore>),
        Some(Dedupe::Memory) => app_with(args, Some(MemoryStore::new())),
        #[cfg(feature = "redis")]
        Some(Dedupe::Redis(url)) => {
            // Lazily: the receiver starts while Redis is down, and answers 503 until it is back.
            let store = tower_webhook::dedupe::store::RedisStore::connect_lazy(url.as_str())
                .map_err(|err| format!("--dedupe {url}: {err}"))?;
            app_with(args, Some(store))
        }
        #[cfg(not(feature = "redis"))]
        Some(Dedupe::Redis(url)) => Err(format!(
            "--dedupe {url}: this receiver was built without the `redis` feature \
             (cargo run --features redis --example receiver -- …)"
        )),
    }
}

fn app_with<St: Store + Clone>(args: &Args, store: Option<St>) -> Result<Router, String> {
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
    Ok(match args.provider {
        Provider::VideoNest => route(
            videonest::layer(&args.secrets)
                .map_err(config)?
                .max_body_size(args.max_body),
            store.map(DedupeLayer::new),
            behaviour("videonest"),
        ),
        Provider::VideoAIditor => route(
            videoaiditor::layer(&args.secrets)
                .map_err(config)?
                .max_body_size(args.max_body),
            store.map(DedupeLayer::new),
            behaviour("videoaiditor"),
        ),
    })
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
    let app = match app(&args) {
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
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if let Err(err) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        eprintln!("receiver: {err}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
