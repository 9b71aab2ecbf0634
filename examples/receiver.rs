//! A webhook receiver for local development.
//!
//! ```text
//! cargo run --release --example receiver -- --provider <videonest|videoaiditor|github|stripe|standardwebhooks|svix|shopify|slack|discord|sendgrid|gitlab|twilio> --secret S [--secret S2 ...] [--tolerance SECS] [--listen ADDR] [--max-body BYTES] [--dedupe memory|sqlite:PATH|redis://HOST:PORT|redis+cluster://HOST:PORT,…|redis+sentinel://HOST:PORT,…/MASTER|postgres://URL] [--fail-rate P] [--handler-delay-ms MS] [--queue memory|sqlite:PATH|redis://HOST:PORT|redis+cluster://HOST:PORT,…|redis+sentinel://HOST:PORT,…/MASTER|postgres://URL] [--workers N] [--visibility-ms MS] [--max-attempts N] [--metrics] [--tenants FILE] [--public-key KEY] [--public-url URL]
//! cargo run --release --example receiver -- (stats | dlq list | dlq replay | dlq purge) --queue redis://HOST:PORT …
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
//! - `--provider discord` and `--provider sendgrid` verify with public keys: `--public-key KEY`
//!   (repeatable), in the form each shows its users (Discord: the application's public key, 64
//!   hex digits; SendGrid: the verification key, base64 of its SubjectPublicKeyInfo), instead of
//!   `--secret`. Discord's PING (`"type": 1`) is answered with `{"type":1}` and prints nothing,
//!   so that Discord saves the endpoint. `--provider standardwebhooks|svix` also take
//!   `--public-key whpk_…`: a `v1a` signature by one of them is then accepted beside a `v1` MAC.
//!   `--provider gitlab` takes the secret token as `--secret`; it signs nothing (the token
//!   authenticates the sender only). `--provider twilio` takes the auth token as `--secret`
//!   and checks the URL Twilio called: `--public-url URL` (scheme, host and any path prefix a
//!   proxy strips), or by default `https://` + the `Host` header + the path and query.
//!
//! - `--tolerance SECS` sets the replay window of the providers that sign a timestamp (Stripe,
//!   Standard Webhooks, Svix, Slack: 300 unless set; a signed timestamp further than that from
//!   the clock, either way, gets 401; Discord and SendGrid too). For VideoNest it opts into a window on the body's
//!   `timestamp`, which must exceed VideoNest's 36-minute retry horizon (2160 s). GitHub,
//!   Shopify and VideoAIditor sign no timestamp and refuse the flag.
//!
//! - `--dedupe sqlite:PATH` keeps the deduplication records in a SQLite file (created if
//!   missing; they survive a restart or a SIGKILL), and `--queue sqlite:PATH` the queue; the
//!   administration commands take `--queue sqlite:PATH` too.
//! - `--dedupe postgres://USER:PASSWORD@HOST:PORT/DB` keeps them in PostgreSQL (the schema
//!   `tower_webhook`, created or upgraded at start), and `--queue postgres://…` the queue,
//!   shared by every receiver pointed at the database; with the same URL for both, a first
//!   delivery is recorded and stored in one transaction. An unreachable database answers 503.
//!   The administration commands take `--queue postgres://…` too.
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
//! - `--tenants FILE` (instead of `--secret`) serves `POST /webhook/{tenant}`, each tenant
//!   verified with its own secrets, read from FILE, a JSON object
//!   `{"tenant-id": ["secret", …], …}` (several secrets: key rotation). A request for a tenant
//!   not in the file, or signed with another tenant's secret, gets 401. Each JSON line gains
//!   `"tenant"`, and deduplication keys are per tenant (the same event id under two tenants is
//!   two events). On SIGHUP the file is read again: tenants added, removed or given new secrets
//!   take effect for the next request, and requests in flight are answered as before; a file
//!   that cannot be read is reported on stderr and the tenants read before stay in use.
//! - `--admin-token TOKEN` (with `--queue`, at least 16 characters) serves the admin page
//!   (`tower_webhook::admin`) at `/admin/`: the queue's stats and dead letters, with replay and
//!   purge buttons. Requests need `Authorization: Bearer TOKEN`, or Basic authentication with
//!   the token as the password, which a browser asks for.
//! - `--metrics` (built with the `metrics` feature) serves the crate's metrics as Prometheus
//!   text at `GET /metrics` on the listening address (counters named `…_total`, durations as
//!   histograms with buckets from 0.5 ms to 5 min).
//!
//! Administration of a Redis queue (the receivers serving it may run meanwhile):
//!
//! - `receiver stats --queue URL [--json]`: `ready N`, `pending N`, `delayed N`, `dead N`, one
//!   per line, or one JSON object.
//! - `receiver dlq list --queue URL [--json]`: one line per dead letter, oldest first
//!   (`ID attempts=N provider=… event=… id=… error="…"`), or a JSON array of objects (`id`,
//!   `message_id`, `attempts`, `error`, `first_failed_at_ms`, `failed_at_ms`, `replays`,
//!   `provider`, `event`, `delivery_id`, `body`, and `unreadable` with the reason when the
//!   payload cannot be read).
//! - `receiver dlq replay --queue URL (--all | ID...)`: back into the queue, processed again
//!   (attempt 1, whatever the deduplication record says): prints `replayed N`.
//! - `receiver dlq purge --queue URL (--all | ID...)`: deleted: prints `purged N`.

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
        tenant_key,
    },
    provider::{
        discord, generic, github, gitlab, sendgrid, shopify, slack, standard_webhooks, stripe,
        svix, twilio, videoaiditor, videonest,
    },
};

const USAGE: &str = "usage: receiver --provider <videonest|videoaiditor|github|stripe|standardwebhooks|svix|shopify|slack|discord|sendgrid|gitlab|twilio> --secret S [--secret S2 ...] [--tolerance SECS] [--listen ADDR] [--max-body BYTES] [--dedupe memory|sqlite:PATH|redis://HOST:PORT|redis+cluster://HOST:PORT,…|redis+sentinel://HOST:PORT,…/MASTER|postgres://URL] [--fail-rate P] [--handler-delay-ms MS] [--queue memory|sqlite:PATH|redis://HOST:PORT|redis+cluster://HOST:PORT,…|redis+sentinel://HOST:PORT,…/MASTER|postgres://URL] [--workers N] [--visibility-ms MS] [--max-attempts N] [--metrics] [--admin-token TOKEN] [--tenants FILE] [--public-key KEY] [--public-url URL]
       receiver stats --queue redis://HOST:PORT [--json]
       receiver dlq list --queue redis://HOST:PORT [--json]
       receiver dlq replay --queue redis://HOST:PORT (--all | ID...)
       receiver dlq purge --queue redis://HOST:PORT (--all | ID...)";

/// What `--help` prints (anywhere on the command line): the usage, then each flag with its
/// default.
const HELP: &str = "
Serves POST /webhook with a provider's preset and prints one JSON line per processed event.

Serving:
  --provider NAME          videonest, videoaiditor, github, stripe, standardwebhooks, svix,
                           shopify, slack, discord, sendgrid, gitlab or twilio (required)
  --secret S               a signing secret; repeat it for several (any one matching is enough)
  --public-key KEY         a public key (Discord: 64 hex digits; SendGrid: base64 of the
                           SubjectPublicKeyInfo; Standard Webhooks, Svix: whpk_...); repeat
                           it for several; Discord and SendGrid take these, not --secret
  --public-url URL         with twilio: the URL Twilio calls, up to the request's own path
                           (https://example.com, or with the prefix a proxy strips)
                           [default: https:// + the Host header]
  --secret-file PATH       secrets from a file, one per line (not shown by ps)
                           (or the RECEIVER_SECRETS environment variable, white-space separated)
  --tolerance SECS         the replay window of providers that sign a timestamp [default: 300;
                           VideoNest: none unless set, above 2160]
  --listen ADDR            [default: 127.0.0.1:3000; port 0 picks a free port]
  --max-body BYTES         [default: 2097152]
  --dedupe BACKEND         memory, sqlite:PATH (a file: survives restarts, shared by the
                           processes of one host), a Redis URL, or a PostgreSQL URL
                           (postgres://USER:PASSWORD@HOST:PORT/DB) [default: no deduplication]
  --fail-rate P            the handler answers 500 with probability P [default: 0]
  --handler-delay-ms MS    the handler sleeps first [default: 0]
  --queue BACKEND          memory, sqlite:PATH, a Redis or a PostgreSQL URL: answer once
                           stored, process in workers (with --dedupe on the same file or
                           URL: one step) [default: no queue, the handler runs before the answer]
  --workers N              with --queue: deliveries processed at a time [default: 4]
  --visibility-ms MS       with --queue: how long a worker holds a delivery [default: 30000]
  --max-attempts N         with --queue: attempts before a dead letter [default: 5]
  --stream NAME            with a Redis --queue: the stream [default: tower-webhook:queue]
  --group NAME             with a Redis --queue: the consumer group [default: workers]
  --consumer NAME          with a Redis --queue: this receiver's consumer name
                           [default: worker-PID-N]
  --metrics                Prometheus text at GET /metrics (the `metrics` feature), without
                           authentication: listen on a private address, or put a proxy in front
  --tenants FILE           serve POST /webhook/{tenant}, each tenant with its own secrets from
                           FILE: {\"tenant-id\": [\"secret\", ...], ...} (instead of --secret);
                           re-read on SIGHUP
  --admin-token TOKEN      with --queue: the admin page at /admin/ (stats, dead letters,
                           replay, purge) for `Authorization: Bearer TOKEN`, or Basic
                           authentication with TOKEN as the password (a browser asks for it)

Administering a Redis queue (--stream and --group as above):
  stats --queue URL [--json]                 messages ready, pending, delayed and dead
  dlq list --queue URL [--json]              the dead letters, oldest first
  dlq replay --queue URL (--all | ID...)     back into the queue: prints `replayed N`
  dlq purge --queue URL (--all | ID...)      deleted: prints `purged N`

A Redis URL is redis://HOST:PORT[/DB], rediss://… (TLS), redis+unix:///PATH or unix:///PATH;
a Redis Cluster's is redis+cluster://HOST:PORT[,HOST:PORT…] (any of its nodes), and through
Redis Sentinel redis+sentinel://HOST:PORT[,HOST:PORT…]/MASTER (the Sentinels, then the master's
name).
A PostgreSQL URL is postgres://USER:PASSWORD@HOST:PORT/DB (or postgresql://…; no TLS).";

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
    Discord,
    SendGrid,
    GitLab,
    Twilio,
}

impl Provider {
    /// Whether it verifies with public keys (`--public-key`) rather than secrets.
    fn takes_public_keys(self) -> bool {
        matches!(self, Self::Discord | Self::SendGrid)
    }
}

/// Where `--dedupe` keeps its records, or `--queue` its deliveries.
#[derive(Debug)]
enum Backend {
    Memory,
    Redis(String),
    /// A SQLite file (`sqlite:PATH`).
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL database (`postgres://…` or `postgresql://…`).
    Postgres(String),
}

impl Backend {
    fn parse(flag: &str, value: &str) -> Result<Self, String> {
        match value {
            "memory" => Ok(Self::Memory),
            path if path.starts_with("sqlite:") => {
                let path = &path["sqlite:".len()..];
                if path.is_empty() {
                    return Err(format!("{flag}: sqlite:PATH needs a path"));
                }
                if path.starts_with("//") {
                    return Err(format!(
                        "{flag}: sqlite:PATH takes a path (sqlite:webhooks.db, \
                         sqlite:/var/lib/webhooks.db), not a sqlite:// URL"
                    ));
                }
                Ok(Self::Sqlite(path.into()))
            }
            url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(Self::Postgres(url.to_owned()))
            }
            url if [
                "redis://",
                "rediss://",
                "redis+unix://",
                "unix://",
                "redis+cluster://",
                "rediss+cluster://",
                "redis+sentinel://",
            ]
            .iter()
            .any(|scheme| url.starts_with(scheme)) =>
            {
                Ok(Self::Redis(url.to_owned()))
            }
            other => Err(format!(
                "{flag}: {other:?} is neither `memory`, sqlite:PATH nor a redis://, rediss://, \
                 redis+unix://, unix://, redis+cluster://, redis+sentinel://, postgres:// or \
                 postgresql:// URL"
            )),
        }
    }
}

/// The parsed command line; no `Debug`, since it holds the secrets.
struct Args {
    provider: Provider,
    secrets: Vec<String>,
    /// `--public-url`: the URL Twilio calls, up to the request's own path.
    public_url: Option<String>,
    /// `--public-key`: Discord's, SendGrid's, or Standard Webhooks' and Svix's `whpk_` keys.
    public_keys: Vec<tower_webhook::scheme::PublicKey>,
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
    /// `--metrics`: Prometheus text at `GET /metrics`.
    metrics: bool,
    /// `--admin-token`: the admin page at `/admin/`, for requests that carry this token.
    #[cfg_attr(not(feature = "queue"), allow(dead_code))]
    admin_token: Option<String>,
    /// With `--queue sqlite:PATH`: the queue, opened.
    sqlite_queue: Option<tower_webhook::queue::SqliteQueue>,
    /// The databases of `--dedupe postgres://…` and `--queue postgres://…`, opened, by URL.
    #[cfg(feature = "postgres")]
    databases: Vec<(String, tower_webhook::postgres::Postgres)>,
    /// `--stream`, `--group`, `--consumer`: the Redis queue's names.
    #[cfg_attr(not(feature = "queue"), allow(dead_code))]
    redis_names: RedisNames,
    /// `--tenants FILE`: every tenant's secrets, re-read on SIGHUP.
    tenants: Option<tenants::Directory>,
}

/// The names a Redis queue uses, where the command line sets them.
#[derive(Default)]
struct RedisNames {
    stream: Option<String>,
    group: Option<String>,
    consumer: Option<String>,
}

impl RedisNames {
    /// Takes `flag` if it is one of these names' flags.
    fn take(
        &mut self,
        flag: &str,
        value: &mut dyn FnMut(&str) -> Result<String, String>,
    ) -> Result<bool, String> {
        let slot = match flag {
            "--stream" => &mut self.stream,
            "--group" => &mut self.group,
            "--consumer" => &mut self.consumer,
            _ => return Ok(false),
        };
        *slot = Some(value(flag)?);
        Ok(true)
    }

    fn any(&self) -> bool {
        self.stream.is_some() || self.group.is_some() || self.consumer.is_some()
    }

    /// `queue` with these names.
    #[cfg(all(feature = "queue", feature = "redis"))]
    fn apply(
        &self,
        mut queue: tower_webhook::queue::RedisQueue,
    ) -> tower_webhook::queue::RedisQueue {
        if let Some(stream) = &self.stream {
            queue = queue.stream(stream);
        }
        if let Some(group) = &self.group {
            queue = queue.group(group.as_str());
        }
        queue
    }
}

/// `--public-key KEY` in the form `provider` shows its users: 64 hex digits for Discord, base64
/// of the SubjectPublicKeyInfo for SendGrid, `whpk_…` for Standard Webhooks and Svix.
fn public_key(provider: Provider, key: &str) -> Result<tower_webhook::scheme::PublicKey, String> {
    use tower_webhook::scheme::PublicKey;
    let parsed = match provider {
        Provider::Discord => PublicKey::ed25519_hex(key),
        Provider::SendGrid => PublicKey::p256_base64(key),
        Provider::StandardWebhooks | Provider::Svix => PublicKey::whpk(key),
        _ => return Err("--public-key: this provider verifies with secrets (--secret)".to_owned()),
    };
    parsed.map_err(|err| format!("--public-key: {err}"))
}

/// The secrets in `text`: one per line (or separated by white space), blank lines ignored.
fn secrets_in(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split_whitespace().map(str::to_owned)
}

/// The environment variable the secrets may come from instead of the command line (where
/// `ps` shows them): one or more, separated by white space.
const SECRETS_VAR: &str = "RECEIVER_SECRETS";

impl Args {
    /// The opened database of a `postgres://` URL of `--dedupe` or `--queue`.
    #[cfg(feature = "postgres")]
    fn database(&self, url: &str) -> Result<&tower_webhook::postgres::Postgres, String> {
        self.databases
            .iter()
            .find(|(opened, _)| opened == url)
            .map(|(_, database)| database)
            .ok_or_else(|| format!("{}: not opened", admin::redacted(url)))
    }

    /// Whether `--dedupe` and `--queue` name one backend: then the queue keeps the records,
    /// and deduplicates and stores each delivery in one step.
    /// The webhook route: `/webhook`, or with `--tenants` `/webhook/{tenant}`.
    fn path(&self) -> &'static str {
        if self.tenants.is_some() {
            "/webhook/{tenant}"
        } else {
            "/webhook"
        }
    }

    fn dedupe_in_queue(&self) -> bool {
        match (&self.dedupe, &self.queue) {
            (Some(Backend::Memory), Some(Backend::Memory)) => true,
            (Some(Backend::Redis(dedupe)), Some(Backend::Redis(queue))) => dedupe == queue,
            (Some(Backend::Sqlite(dedupe)), Some(Backend::Sqlite(queue))) => dedupe == queue,
            (Some(Backend::Postgres(dedupe)), Some(Backend::Postgres(queue))) => dedupe == queue,
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
    let mut metrics = false;
    let mut admin_token = None;
    let mut redis_names = RedisNames::default();
    let mut tenants = None;
    let mut public_keys = Vec::new();
    let mut public_url = None;
    // Flags that only mean something with `--queue`, where they were given.
    let mut queue_only = Vec::new();
    while let Some(flag) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        if redis_names.take(&flag, &mut value)? {
            continue;
        }
        if matches!(
            flag.as_str(),
            "--workers" | "--visibility-ms" | "--max-attempts" | "--admin-token"
        ) {
            queue_only.push(flag.clone());
        }
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
                    "discord" => Provider::Discord,
                    "sendgrid" => Provider::SendGrid,
                    "gitlab" => Provider::GitLab,
                    "twilio" => Provider::Twilio,
                    other => return Err(format!("unknown provider {other:?}")),
                });
            }
            "--secret" => secrets.push(value("--secret")?),
            "--public-key" => public_keys.push(value("--public-key")?),
            "--public-url" => public_url = Some(value("--public-url")?),
            "--secret-file" => {
                let path = value("--secret-file")?;
                let text = std::fs::read_to_string(&path)
                    .map_err(|err| format!("--secret-file {path}: {err}"))?;
                let before = secrets.len();
                secrets.extend(secrets_in(&text));
                if secrets.len() == before {
                    return Err(format!("--secret-file {path}: no secret in it"));
                }
            }
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
            "--metrics" => metrics = true,
            "--tenants" => tenants = Some(tenants::Directory::open(value("--tenants")?.into())?),
            "--admin-token" => {
                let token = value("--admin-token")?;
                if token.len() < 16 {
                    return Err("--admin-token: use at least 16 characters".to_owned());
                }
                admin_token = Some(token);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let provider = provider.ok_or("--provider is required")?;
    let public_keys = public_keys
        .iter()
        .map(|key| public_key(provider, key))
        .collect::<Result<Vec<_>, _>>()?;
    if public_url.is_some() && !matches!(provider, Provider::Twilio) {
        return Err("--public-url is the URL Twilio calls: it needs --provider twilio".to_owned());
    }
    if provider.takes_public_keys() {
        if !secrets.is_empty() {
            return Err(
                "this provider verifies with public keys: use --public-key, not --secret"
                    .to_owned(),
            );
        }
        if public_keys.is_empty() {
            return Err("at least one public key is required: --public-key KEY".to_owned());
        }
        if tenants.is_some() {
            return Err(
                "--tenants gives secrets; this provider verifies with public keys".to_owned(),
            );
        }
    }
    if tenants.is_some() && !secrets.is_empty() {
        return Err(
            "--tenants gives every tenant its secrets: --secret and --secret-file do not apply"
                .to_owned(),
        );
    }
    let secret_optional =
        tenants.is_some() || provider.takes_public_keys() || !public_keys.is_empty();
    if secrets.is_empty()
        && !secret_optional
        && let Ok(text) = std::env::var(SECRETS_VAR)
    {
        secrets.extend(secrets_in(&text));
    }
    if secrets.is_empty() && !secret_optional {
        return Err(format!(
            "at least one secret is required: --secret S, --secret-file PATH or {SECRETS_VAR}"
        ));
    }
    if queue.is_none()
        && let Some(flag) = queue_only.first()
    {
        return Err(format!("{flag} sets the queue's workers: it needs --queue"));
    }
    if redis_names.any() && !matches!(queue, Some(Backend::Redis(_))) {
        return Err(
            "--stream, --group and --consumer name a Redis queue: they need \
                    --queue redis://…"
                .to_owned(),
        );
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
        metrics,
        admin_token,
        redis_names,
        sqlite_queue: None,
        #[cfg(feature = "postgres")]
        databases: Vec::new(),
        tenants,
        public_keys,
        public_url,
    })
}

/// One stdout line per processed event.
#[derive(Serialize)]
struct Line<'a> {
    provider: &'a str,
    /// With `--tenants`: the tenant whose secret verified the event.
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<&'a str>,
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
            .map(|k| tenant_key(verified.provider(), verified.tenant(), &k))
    });
    print_line(&Line {
        provider: behaviour.provider,
        tenant: verified.tenant(),
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
    pong: Option<discord::PongLayer>,
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
    let layers = ServiceBuilder::new()
        .layer(verify)
        .option_layer(pong)
        .option_layer(dedupe);
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
                router: Router::new().route(args.path(), post(handler).route_layer(layers)),
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
                args.redis_names.apply(
                    tower_webhook::queue::RedisQueue::open(url.as_str())
                        .map_err(|err| format!("--queue {}: {err}", crate::admin::redacted(url)))?,
                ),
            ),
            #[cfg(not(feature = "redis"))]
            Backend::Redis(url) => {
                return Err(format!(
                    "--queue {url}: this receiver was built without the `redis` feature \
                     (cargo run --features queue,redis --example receiver -- …)"
                ));
            }
            Backend::Sqlite(path) => match &args.sqlite_queue {
                Some(queue) => Arc::new(queue.clone()),
                None => {
                    return Err(format!("--queue sqlite:{}: not opened", path.display()));
                }
            },
            #[cfg(feature = "postgres")]
            Backend::Postgres(url) => Arc::new(tower_webhook::queue::PostgresQueue::new(
                args.database(url)?,
            )),
            #[cfg(not(feature = "postgres"))]
            Backend::Postgres(_) => {
                return Err("--queue postgres://…: this receiver was built without the \
                     `postgres` feature"
                    .into());
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
        let mut worker = Worker::new(Arc::clone(&queue), service)
            .concurrency(args.workers)
            .visibility_timeout(args.visibility)
            .max_attempts(args.max_attempts);
        if let Some(consumer) = &args.redis_names.consumer {
            worker = worker.consumer(consumer.as_str());
        }
        let workers = tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.wait_for(|stop| *stop).await;
            };
            if let Err(err) = worker.run(stopped).await {
                eprintln!("receiver: worker: {err}");
            }
        });
        let mut enqueue = Enqueue::<E, _>::new(Arc::clone(&queue));
        if args.dedupe_in_queue() {
            enqueue = enqueue.deduplicate();
        }
        let enqueue = layers.layer(enqueue);
        let mut router = Router::new().route(args.path(), post_service(enqueue));
        if let Some(token) = &args.admin_token {
            router = router.merge(admin(Arc::clone(&queue), token));
        }
        Ok(App {
            router,
            workers: Some(workers),
        })
    }

    /// The admin page of `queue` at `/admin/`, for requests with `Authorization: Bearer
    /// <token>` (or, so that a browser can ask for it, `Basic` with the token as the password).
    fn admin(queue: Arc<dyn Queue>, token: &str) -> Router {
        use axum::{
            extract::Request,
            http::{HeaderValue, StatusCode, header},
            middleware::{Next, from_fn},
            response::Response,
        };
        use base64::Engine as _;
        use subtle::ConstantTimeEq as _;

        let token: Arc<str> = Arc::from(token);
        let check = move |request: Request, next: Next| {
            let token = Arc::clone(&token);
            async move {
                let presented = request
                    .headers()
                    .get(header::AUTHORIZATION)
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| {
                        if let Some(bearer) = value.strip_prefix("Bearer ") {
                            return Some(bearer.as_bytes().to_vec());
                        }
                        let basic = value.strip_prefix("Basic ")?;
                        let decoded = base64::engine::general_purpose::STANDARD
                            .decode(basic.trim())
                            .ok()?;
                        let colon = decoded.iter().position(|&b| b == b':')?;
                        Some(decoded[colon + 1..].to_vec())
                    });
                let allowed = presented
                    .is_some_and(|presented| bool::from(presented.ct_eq(token.as_bytes())));
                if allowed {
                    return next.run(request).await;
                }
                let mut refused = Response::new(axum::body::Body::from("admin token required\n"));
                *refused.status_mut() = StatusCode::UNAUTHORIZED;
                refused.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"receiver admin\", charset=\"UTF-8\""),
                );
                refused
            }
        };
        Router::new()
            .nest_service(
                "/admin",
                tower_webhook::admin::QueueAdmin::new(queue).mounted_at("/admin/"),
            )
            .layer(from_fn(check))
    }
}

/// With `--metrics`: a Prometheus recorder for the crate's metrics, rendered at `GET /metrics`.
fn metrics_route(args: &Args) -> Result<Option<Router>, String> {
    if !args.metrics {
        return Ok(None);
    }
    #[cfg(feature = "metrics")]
    {
        use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
        // Seconds, from half a millisecond to five minutes: histograms with buckets, for
        // `histogram_quantile`.
        const BUCKETS: &[f64] = &[
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            30.0, 60.0, 300.0,
        ];
        // Counters as `…_total`, as the crate's docs name them.
        let handle = PrometheusBuilder::new()
            .with_recommended_naming(true)
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), BUCKETS)
            .and_then(PrometheusBuilder::install_recorder)
            .map_err(|err| format!("--metrics: {err}"))?;
        let upkeep = handle.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                upkeep.run_upkeep();
            }
        });
        Ok(Some(Router::new().route(
            "/metrics",
            axum::routing::get(move || std::future::ready(handle.render())),
        )))
    }
    #[cfg(not(feature = "metrics"))]
    Err(
        "--metrics: this receiver was built without the `metrics` feature \
         (cargo run --features metrics --example receiver -- …)"
            .to_owned(),
    )
}

async fn app(args: &Args, stop: &tokio::sync::watch::Receiver<bool>) -> Result<App, String> {
    match &args.dedupe {
        None => app_with(args, None::<MemoryStore>, stop),
        // The queue deduplicates.
        Some(_) if args.dedupe_in_queue() => app_with(args, None::<MemoryStore>, stop),
        Some(Backend::Memory) => app_with(args, Some(MemoryStore::new()), stop),
        #[cfg(feature = "redis")]
        Some(Backend::Redis(url)) => {
            // Lazily: the receiver starts while Redis is down, and answers 503 until it is back.
            let store = tower_webhook::dedupe::store::RedisStore::open(url.as_str())
                .map_err(|err| format!("--dedupe {}: {err}", crate::admin::redacted(url)))?;
            app_with(args, Some(store), stop)
        }
        #[cfg(not(feature = "redis"))]
        Some(Backend::Redis(url)) => Err(format!(
            "--dedupe {url}: this receiver was built without the `redis` feature \
             (cargo run --features redis --example receiver -- …)"
        )),
        Some(Backend::Sqlite(path)) => {
            let store = tower_webhook::dedupe::store::SqliteStore::open(path)
                .await
                .map_err(|err| format!("--dedupe sqlite:{}: {}", path.display(), chain(&err)))?;
            app_with(args, Some(store), stop)
        }
        #[cfg(feature = "postgres")]
        Some(Backend::Postgres(url)) => {
            let store = tower_webhook::dedupe::store::PostgresStore::new(args.database(url)?);
            app_with(args, Some(store), stop)
        }
        #[cfg(not(feature = "postgres"))]
        Some(Backend::Postgres(_)) => Err(
            "--dedupe postgres://…: this receiver was built without the `postgres` feature".into(),
        ),
    }
}

/// An error and its sources, `a: b: c`.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(err) = source {
        text.push_str(": ");
        text.push_str(&err.to_string());
        source = err.source();
    }
    text
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
    // With `--tenants`, re-read on SIGHUP.
    let tenants = args.tenants.as_ref().map(tenants::Directory::tenants);
    // The route of provider `$name`: `$layer` with the secrets of `--secret`, or with
    // `--tenants` `$tenant_layer` applied to the tenants.
    macro_rules! serve {
        ($name:literal, $layer:expr, $tenant_layer:expr) => {
            match &tenants {
                None => route(
                    args,
                    $layer.map_err(config)?.max_body_size(args.max_body),
                    None,
                    store.map(DedupeLayer::new),
                    behaviour($name),
                    stop,
                ),
                Some(tenants) => route(
                    args,
                    ($tenant_layer)(tenants)
                        .map_err(config)?
                        .max_body_size(args.max_body),
                    None,
                    store.map(DedupeLayer::new),
                    behaviour($name),
                    stop,
                ),
            }
        };
    }
    // A preset on `scheme::Hmac` decoding into `generic::Event`.
    macro_rules! hmac {
        ($name:literal, $scheme:expr) => {{
            let scheme = $scheme;
            serve!(
                $name,
                generic::layer(
                    scheme
                        .clone()
                        .secrets(&args.secrets)
                        .public_keys(args.public_keys.iter().cloned())
                ),
                |tenants| generic::tenant_layer(scheme, tenants)
            )
        }};
    }
    match args.provider {
        Provider::VideoNest => match args.tolerance {
            None => serve!(
                "videonest",
                videonest::layer(&args.secrets),
                videonest::tenant_layer
            ),
            Some(tolerance) => serve!(
                "videonest",
                videonest::layer_with_window(&args.secrets, tolerance),
                |tenants| videonest::tenant_layer_with_window(tenants, tolerance)
            ),
        },
        Provider::GitHub => untimed("github").and_then(|()| hmac!("github", github::scheme())),
        Provider::Shopify => untimed("shopify").and_then(|()| hmac!("shopify", shopify::scheme())),
        Provider::Stripe => hmac!("stripe", timed(stripe::scheme())),
        Provider::StandardWebhooks => {
            hmac!("standardwebhooks", timed(standard_webhooks::scheme()))
        }
        Provider::Svix => hmac!("svix", timed(svix::scheme())),
        Provider::Slack => hmac!("slack", timed(slack::scheme())),
        // Verified with public keys (no tenants: they give secrets); Discord's PING is answered
        // with a PONG, so that Discord saves the endpoint.
        Provider::Discord => route(
            args,
            generic::layer(timed(discord::scheme()).public_keys(args.public_keys.iter().cloned()))
                .map_err(config)?
                .max_body_size(args.max_body),
            Some(discord::PongLayer),
            store.map(DedupeLayer::new),
            behaviour("discord"),
            stop,
        ),
        Provider::SendGrid => hmac!("sendgrid", timed(sendgrid::scheme())),
        Provider::Twilio => untimed("twilio").and_then(|()| {
            serve!(
                "twilio",
                match &args.public_url {
                    Some(url) => twilio::layer_at(&args.secrets, url),
                    None => twilio::layer(&args.secrets),
                },
                |tenants| match &args.public_url {
                    Some(url) => twilio::tenant_layer_at(tenants, url),
                    None => twilio::tenant_layer(tenants),
                }
            )
        }),
        Provider::GitLab => untimed("gitlab")
            .and_then(|()| serve!("gitlab", gitlab::layer(&args.secrets), gitlab::tenant_layer)),
        Provider::VideoAIditor => untimed("videoaiditor").and_then(|()| {
            serve!(
                "videoaiditor",
                videoaiditor::layer(&args.secrets),
                videoaiditor::tenant_layer
            )
        }),
    }
}

/// Whether `--help` or `-h` is on the command line as a flag (not as the value of a flag that
/// takes one, such as a secret).
fn asks_for_help(args: impl Iterator<Item = String>) -> bool {
    const TAKE_A_VALUE: &[&str] = &[
        "--provider",
        "--secret",
        "--public-key",
        "--public-url",
        "--secret-file",
        "--tolerance",
        "--listen",
        "--max-body",
        "--dedupe",
        "--fail-rate",
        "--handler-delay-ms",
        "--queue",
        "--workers",
        "--visibility-ms",
        "--max-attempts",
        "--stream",
        "--group",
        "--consumer",
        "--admin-token",
        "--tenants",
    ];
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            return true;
        }
        if TAKE_A_VALUE.contains(&arg.as_str()) {
            args.next();
        }
    }
    false
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1).peekable();
    if asks_for_help(std::env::args().skip(1)) {
        println!("{USAGE}\n{HELP}");
        return ExitCode::SUCCESS;
    }
    if matches!(argv.peek().map(String::as_str), Some("stats" | "dlq")) {
        return admin::run(argv.collect()).await;
    }
    let mut args = match parse_args(argv) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("receiver: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // A SQLite queue is opened (its thread started, its schema upgraded) before serving.
    if let Some(Backend::Sqlite(path)) = &args.queue {
        match tower_webhook::queue::SqliteQueue::open(path).await {
            Ok(queue) => args.sqlite_queue = Some(queue),
            Err(err) => {
                eprintln!(
                    "receiver: --queue sqlite:{}: {}",
                    path.display(),
                    chain(&err)
                );
                return ExitCode::FAILURE;
            }
        }
    }
    // A PostgreSQL database is opened (its schema created or upgraded) before serving.
    #[cfg(feature = "postgres")]
    for (flag, backend) in [("--dedupe", &args.dedupe), ("--queue", &args.queue)] {
        let Some(Backend::Postgres(url)) = backend else {
            continue;
        };
        if args.databases.iter().any(|(opened, _)| opened == url) {
            continue;
        }
        match tower_webhook::postgres::Postgres::connect(url).await {
            Ok(database) => args.databases.push((url.clone(), database)),
            Err(err) => {
                eprintln!("receiver: {flag} {}: {}", admin::redacted(url), chain(&err));
                return ExitCode::FAILURE;
            }
        }
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let app = match app(&args, &stopped).await {
        Ok(app) => app,
        Err(err) => {
            eprintln!("receiver: {err}");
            return ExitCode::from(2);
        }
    };
    let router = match metrics_route(&args) {
        Ok(Some(metrics)) => app.router.merge(metrics),
        Ok(None) => app.router,
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
    let served = axum::serve(listener, router)
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

/// `--tenants FILE`: each tenant's secrets, from a JSON object `{"tenant-id": ["secret", …]}`,
/// re-read on SIGHUP.
mod tenants {
    use std::{
        collections::HashMap,
        convert::Infallible,
        path::PathBuf,
        sync::{Arc, RwLock},
    };

    use tower_webhook::tenant::{MAX_TENANT_ID_LEN, Tenants};

    type Table = Arc<HashMap<String, Vec<String>>>;

    /// The file and what was last read from it.
    pub(super) struct Directory {
        path: PathBuf,
        table: Arc<RwLock<Table>>,
    }

    impl Directory {
        /// Reads `path`; the receiver does not start with a file it cannot read.
        pub(super) fn open(path: PathBuf) -> Result<Self, String> {
            let table = read(&path)?;
            Ok(Self {
                path,
                table: Arc::new(RwLock::new(Arc::new(table))),
            })
        }

        /// The tenants of the file, named by the route's `{tenant}`: a lookup reads the table,
        /// and a SIGHUP re-reads the file into it and forgets every cached tenant. A file that
        /// cannot be read then leaves the table as it was.
        pub(super) fn tenants(&self) -> Tenants {
            let table = Arc::clone(&self.table);
            let tenants = Tenants::new(move |tenant: String| {
                let found = table
                    .read()
                    .unwrap_or_else(|poison| poison.into_inner())
                    .get(&tenant)
                    .cloned();
                async move { Ok::<_, Infallible>(found) }
            })
            .from_path_param("tenant");
            #[cfg(unix)]
            {
                use tokio::signal::unix::{SignalKind, signal};
                // Registered before the receiver says it listens: a SIGHUP never finds the
                // default action (which would end the process).
                let mut hangups = signal(SignalKind::hangup()).expect("a SIGHUP handler");
                let (path, table, reloaded) =
                    (self.path.clone(), Arc::clone(&self.table), tenants.clone());
                tokio::spawn(async move {
                    while hangups.recv().await.is_some() {
                        match read(&path) {
                            Ok(read) => {
                                let count = read.len();
                                *table.write().unwrap_or_else(|poison| poison.into_inner()) =
                                    Arc::new(read);
                                reloaded.invalidate_all();
                                eprintln!(
                                    "receiver: --tenants {}: {count} tenants",
                                    path.display()
                                );
                            }
                            Err(err) => {
                                eprintln!("receiver: {err}; the tenants read before stay in use")
                            }
                        }
                    }
                });
            }
            tenants
        }
    }

    /// The tenants in the file at `path`: a JSON object of tenant ids and arrays of secrets.
    fn read(path: &std::path::Path) -> Result<HashMap<String, Vec<String>>, String> {
        let fail = |what: String| format!("--tenants {}: {what}", path.display());
        let text = std::fs::read_to_string(path).map_err(|err| fail(err.to_string()))?;
        let table: HashMap<String, Vec<String>> = serde_json::from_str(&text).map_err(|err| {
            fail(format!(
                "{err} (expected {{\"tenant-id\": [\"secret\", …], …}})"
            ))
        })?;
        for (tenant, secrets) in &table {
            if tenant.is_empty()
                || tenant.len() > MAX_TENANT_ID_LEN
                || tenant.chars().any(char::is_control)
            {
                return Err(fail(format!(
                    "{tenant:?} cannot be a tenant id (1 to {MAX_TENANT_ID_LEN} bytes, no \
                     control character)"
                )));
            }
            if secrets.is_empty() || secrets.iter().any(String::is_empty) {
                return Err(fail(format!("tenant {tenant:?} needs non-empty secrets")));
            }
        }
        Ok(table)
    }
}

/// `receiver stats …` and `receiver dlq …`: what an operator asks of a queue from another
/// process than the receivers serving it.
mod admin {
    use std::process::ExitCode;

    /// Runs the subcommand in `args` (its name first); prints its answer on stdout.
    pub(super) async fn run(args: Vec<String>) -> ExitCode {
        match command(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(Failure::Usage(message)) => {
                eprintln!("receiver: {message}\n{}", super::USAGE);
                ExitCode::from(2)
            }
            Err(Failure::Runtime(message)) => {
                eprintln!("receiver: {message}");
                ExitCode::FAILURE
            }
        }
    }

    /// Why a command did not do all it was asked.
    enum Failure {
        /// The command line is wrong (exit 2, with the usage).
        Usage(String),
        /// The queue failed, or part of the work was not done (exit 1).
        Runtime(String),
    }

    impl From<String> for Failure {
        fn from(message: String) -> Self {
            Self::Usage(message)
        }
    }

    impl From<&str> for Failure {
        fn from(message: &str) -> Self {
            Self::Usage(message.to_owned())
        }
    }

    /// `url` with its password, if any, replaced by `***`: in the user information (all that
    /// comes before the last `@` ahead of the query, `/` included, as PostgreSQL's parser reads
    /// it) and in a `password=` query parameter.
    #[cfg_attr(not(all(feature = "queue", feature = "redis")), allow(dead_code))]
    pub(super) fn redacted(url: &str) -> String {
        let Some((scheme, rest)) = url.split_once("://") else {
            return url.to_owned();
        };
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        let mut shown = format!("{scheme}://");
        match rest.rfind('@') {
            Some(at) => match rest[..at].find(':') {
                Some(colon) => {
                    shown.push_str(&rest[..colon]);
                    shown.push_str(":***");
                    shown.push_str(&rest[at..]);
                }
                None => shown.push_str(rest),
            },
            None => shown.push_str(rest),
        }
        if let Some(query) = query {
            shown.push('?');
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    // `password` (PostgreSQL), `pass` (redis+unix).
                    Some((key, _))
                        if key.eq_ignore_ascii_case("password")
                            || key.eq_ignore_ascii_case("pass") =>
                    {
                        format!("{key}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            shown.push_str(&pairs.join("&"));
        }
        shown
    }

    #[cfg(not(all(feature = "queue", feature = "redis")))]
    async fn command(_args: Vec<String>) -> Result<(), Failure> {
        Err(
            "this receiver was built without the `queue` and `redis` features \
             (cargo run --features queue,redis --example receiver -- …)"
                .into(),
        )
    }

    /// What the command line asks.
    #[cfg(all(feature = "queue", feature = "redis"))]
    struct Command {
        /// `stats`, `dlq list`, `dlq replay` or `dlq purge`.
        name: String,
        queue: Option<String>,
        names: super::RedisNames,
        json: bool,
        all: bool,
        ids: Vec<tower_webhook::queue::MessageId>,
    }

    #[cfg(all(feature = "queue", feature = "redis"))]
    fn parse(args: Vec<String>) -> Result<Command, String> {
        let mut args = args.into_iter();
        let mut name = args.next().unwrap_or_default();
        if name == "dlq" {
            match args.next().as_deref() {
                Some(action @ ("list" | "replay" | "purge")) => name = format!("dlq {action}"),
                Some(other) => return Err(format!("dlq: unknown action {other:?}")),
                None => return Err("dlq: list, replay or purge?".to_owned()),
            }
        }
        let mut command = Command {
            name,
            queue: None,
            names: super::RedisNames::default(),
            json: false,
            all: false,
            ids: Vec::new(),
        };
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
            if matches!(arg.as_str(), "--stream" | "--group") {
                command.names.take(&arg, &mut value)?;
                continue;
            }
            match arg.as_str() {
                "--queue" => command.queue = Some(value("--queue")?),
                "--json" if matches!(command.name.as_str(), "stats" | "dlq list") => {
                    command.json = true;
                }
                "--all" if matches!(command.name.as_str(), "dlq replay" | "dlq purge") => {
                    command.all = true;
                }
                id if !id.starts_with('-')
                    && matches!(command.name.as_str(), "dlq replay" | "dlq purge") =>
                {
                    command
                        .ids
                        .push(tower_webhook::queue::MessageId(id.to_owned()));
                }
                other => return Err(format!("{}: unknown argument {other:?}", command.name)),
            }
        }
        if matches!(command.name.as_str(), "dlq replay" | "dlq purge")
            && command.all != command.ids.is_empty()
        {
            return Err(format!(
                "{}: either --all or the ids of dead letters",
                command.name
            ));
        }
        Ok(command)
    }

    #[cfg(all(feature = "queue", feature = "redis"))]
    async fn command(args: Vec<String>) -> Result<(), Failure> {
        use std::io::Write as _;
        use tower_webhook::queue::{Page, Queue, RedisQueue, Select};

        let command = parse(args)?;
        let url = command
            .queue
            .clone()
            .ok_or_else(|| format!("{}: --queue redis://HOST:PORT is required", command.name))?;
        let backend = super::Backend::parse("--queue", &url)?;
        if command.names.any() && !matches!(backend, super::Backend::Redis(_)) {
            return Err("--stream and --group name a Redis queue's parts".into());
        }
        let shown = redacted(&url);
        let failed = |err: tower_webhook::queue::QueueError| {
            Failure::Runtime(format!("--queue {shown}: {}", super::chain(&err)))
        };
        let printing = |err: std::io::Error| Failure::Runtime(format!("stdout: {err}"));
        let queue: std::sync::Arc<dyn Queue> = match backend {
            super::Backend::Memory => {
                return Err(
                    "--queue memory: a memory queue lives inside the receiver serving \
                     it; another process cannot reach it"
                        .into(),
                );
            }
            super::Backend::Redis(_) => std::sync::Arc::new(
                command
                    .names
                    .apply(RedisQueue::open(url.as_str()).map_err(failed)?),
            ),
            super::Backend::Sqlite(path) => std::sync::Arc::new(
                tower_webhook::queue::SqliteQueue::open(path)
                    .await
                    .map_err(failed)?,
            ),
            #[cfg(feature = "postgres")]
            super::Backend::Postgres(url) => std::sync::Arc::new(
                tower_webhook::queue::PostgresQueue::connect(&url)
                    .await
                    .map_err(failed)?,
            ),
            #[cfg(not(feature = "postgres"))]
            super::Backend::Postgres(_) => {
                return Err("this receiver was built without the `postgres` feature".into());
            }
        };
        let which = || {
            if command.all {
                Select::All
            } else {
                Select::Ids(command.ids.clone())
            }
        };
        match command.name.as_str() {
            "stats" => {
                let stats = queue.stats().await.map_err(failed)?;
                if command.json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "ready": stats.ready,
                            "pending": stats.pending,
                            "delayed": stats.delayed,
                            "dead": stats.dead,
                        })
                    );
                } else {
                    println!(
                        "ready {}\npending {}\ndelayed {}\ndead {}",
                        stats.ready, stats.pending, stats.delayed, stats.dead
                    );
                }
            }
            "dlq list" => {
                // A page at a time, printed as it comes: memory stays bounded however many
                // dead letters there are. JSON: one array, written element by element.
                let mut out = std::io::stdout().lock();
                let mut page = Page::first(500);
                let mut first = true;
                if command.json {
                    write!(out, "[").map_err(printing)?;
                }
                loop {
                    let listed = queue.list_dead_letters(page).await.map_err(failed)?;
                    for letter in &listed.letters {
                        let shown = describe(letter);
                        if command.json {
                            let comma = if first { "" } else { "," };
                            write!(out, "{comma}{shown}").map_err(printing)?;
                        } else {
                            writeln!(
                                out,
                                "{} attempts={} provider={} event={} id={} error={}",
                                letter.id,
                                letter.attempts,
                                shown["provider"],
                                shown["event"],
                                shown["delivery_id"],
                                serde_json::Value::from(letter.error.as_str()),
                            )
                            .map_err(printing)?;
                        }
                        first = false;
                    }
                    let Some(next) = listed.next else { break };
                    page = Page::first(500).after(next);
                }
                if command.json {
                    writeln!(out, "]").map_err(printing)?;
                }
            }
            "dlq replay" | "dlq purge" => {
                let replay = command.name == "dlq replay";
                let done = if replay {
                    queue.replay_dead_letters(which()).await
                } else {
                    queue.purge_dead_letters(which()).await
                }
                .map_err(failed)?;
                println!("{} {done}", if replay { "replayed" } else { "purged" });
                let asked: std::collections::HashSet<_> = command.ids.iter().collect();
                let left = u64::try_from(asked.len())
                    .unwrap_or(u64::MAX)
                    .saturating_sub(done);
                if left > 0 {
                    return Err(Failure::Runtime(format!(
                        "{left} of the ids given {}",
                        if replay {
                            "were not replayed: not dead letters, or the queue is full"
                        } else {
                            "were not dead letters"
                        }
                    )));
                }
            }
            other => return Err(format!("unknown command {other:?}").into()),
        }
        Ok(())
    }

    /// A dead letter as JSON: its ids, attempts, error, times (Unix milliseconds), and what
    /// its delivery holds (the provider, the event type, the delivery id and the signed body,
    /// as text).
    #[cfg(all(feature = "queue", feature = "redis"))]
    fn describe(letter: &tower_webhook::queue::DeadLetter) -> serde_json::Value {
        let millis = |at: Option<std::time::SystemTime>| {
            at.and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
        };
        let delivery = letter.delivery::<serde_json::Value>();
        let (provider, event, delivery_id, body) = match &delivery {
            Ok(delivery) => (
                Some(delivery.provider()),
                delivery.delivery_event_type(),
                delivery.delivery_id(),
                Some(String::from_utf8_lossy(delivery.body()).into_owned()),
            ),
            Err(_) => (None, None, None, None),
        };
        serde_json::json!({
            "id": letter.id.0,
            "message_id": letter.message_id.0,
            "attempts": letter.attempts,
            "error": letter.error,
            "first_failed_at_ms": millis(letter.first_failed_at),
            "failed_at_ms": millis(letter.failed_at),
            "replays": letter.replays,
            "provider": provider,
            "event": event,
            "delivery_id": delivery_id,
            "body": body,
            "unreadable": delivery.err().map(|err| err.to_string()),
        })
    }
}
