//! A load and fault run against the `receiver` example: many connections send a mix of valid,
//! tampered, oversized, slow-body and duplicate deliveries for a bounded time, while Redis (which
//! holds the deduplication records and the queue) is killed midway and started again.
//!
//! ```text
//! scripts/soak.sh [SECONDS]      # builds both in release mode, then runs this
//! cargo run --release --example soak -- --receiver target/release/examples/receiver \
//!     [--duration-secs 60] [--connections 32] [--outage-secs 3] [--redis-server redis-server]
//! ```
//!
//! It starts a private `redis-server` on a free port of 127.0.0.1 (AOF with `appendfsync always`,
//! so that killing it with SIGKILL loses no acknowledged write, as a production Redis holding a
//! queue should be configured), and the receiver with `--dedupe` and `--queue` on it. Like a
//! provider, it sends every valid delivery again until it is answered 2xx. At the end it waits
//! for the workers, stops the receiver and prints requests by kind and outcome, the 5xx answers
//! (expected only while Redis was down or reconnecting), handler runs against unique valid
//! events, and the receiver's peak RSS. It exits non-zero if an acknowledged event was never
//! handled, an event was handled twice, a tampered or oversized delivery was accepted, or a 5xx
//! came outside the outage.

use std::{
    collections::{BTreeMap, HashMap},
    convert::Infallible,
    future::Future as _,
    io::{BufRead, BufReader},
    pin::Pin,
    process::{Child, Command, ExitCode, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Body, Frame};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use tower_webhook::provider::videonest;

#[path = "../tests/common/redis.rs"]
mod redis_server;

use redis_server::{Persistence, Server};

const SECRET: &str = "soak-secret";
const MAX_BODY: usize = 16 * 1024;

type ClientBody = BoxBody<Bytes, Infallible>;
type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, ClientBody>;

struct Args {
    receiver: String,
    redis_server: String,
    duration: Duration,
    connections: usize,
    outage: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        receiver: "target/release/examples/receiver".to_owned(),
        redis_server: "redis-server".to_owned(),
        duration: Duration::from_secs(60),
        connections: 32,
        outage: Duration::from_secs(3),
    };
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        let mut value = || argv.next().ok_or(format!("{flag} needs a value"));
        let secs = |v: String| {
            v.parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|e| format!("{v}: {e}"))
        };
        match flag.as_str() {
            "--receiver" => args.receiver = value()?,
            "--redis-server" => args.redis_server = value()?,
            "--duration-secs" => args.duration = secs(value()?)?,
            "--outage-secs" => args.outage = secs(value()?)?,
            "--connections" => {
                let v = value()?;
                args.connections = v.parse().map_err(|e| format!("{v}: {e}"))?;
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.connections == 0 || args.duration < args.outage * 3 {
        return Err("need at least one connection, and a duration of 3 outages or more".into());
    }
    Ok(args)
}

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A body sent in small chunks with pauses, as a slow client does.
struct Slow {
    chunks: Vec<Bytes>,
    pause: Pin<Box<tokio::time::Sleep>>,
}

impl Body for Slow {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.chunks.is_empty() {
            return Poll::Ready(None);
        }
        if self.pause.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(20);
        self.pause.as_mut().reset(deadline);
        let chunk = self.chunks.remove(0);
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Valid,
    SlowValid,
    Duplicate,
    Tampered,
    Oversized,
    Retry,
}

fn body_of(id: &str) -> String {
    format!(
        r#"{{"event":"video.processed","timestamp":"2026-03-30T10:15:00Z","data":{{"id":"{id}","title":"{}"}}}}"#,
        "x".repeat(700)
    )
}

fn request(id: &str, kind: Kind, url: &str) -> Request<ClientBody> {
    let signed = videonest::signed_request(SECRET, body_of(id)).expect("a valid secret");
    let (mut parts, body) = signed.into_parts();
    parts.uri = url.parse().expect("a valid URL");
    let body: ClientBody = match kind {
        Kind::Tampered => {
            let mut bytes = body_of(id).into_bytes();
            bytes[20] ^= 1;
            Full::new(Bytes::from(bytes)).boxed()
        }
        Kind::Oversized => {
            parts.headers.remove(http::header::CONTENT_LENGTH);
            Full::new(Bytes::from(vec![b' '; MAX_BODY * 10])).boxed()
        }
        Kind::SlowValid => {
            let bytes = Bytes::from(body_of(id));
            let chunks = bytes.chunks(128).map(Bytes::copy_from_slice).collect();
            parts.headers.remove(http::header::CONTENT_LENGTH);
            Slow {
                chunks,
                pause: Box::pin(tokio::time::sleep(Duration::ZERO)),
            }
            .boxed()
        }
        _ => body.boxed(),
    };
    Request::from_parts(parts, body)
}

/// What the load saw.
#[derive(Default)]
struct Tally {
    /// (kind, status or 0 for a transport error) → count.
    outcomes: BTreeMap<(Kind, u16), u64>,
    /// 5xx answers outside the outage window.
    unexpected_5xx: u64,
    /// Tampered or oversized deliveries answered 2xx.
    accepted_bad: u64,
    /// Valid events acknowledged (2xx).
    acknowledged: HashMap<String, ()>,
    /// Valid events not acknowledged yet: sent again, as a provider would.
    pending: Vec<String>,
}

struct Outage {
    /// Set while Redis is down or the receiver may still be reconnecting.
    active: AtomicBool,
}

async fn send(
    client: &HttpClient,
    url: &str,
    id: &str,
    kind: Kind,
    tally: &Mutex<Tally>,
    outage: &Outage,
) {
    let during = outage.active.load(Ordering::SeqCst);
    let status = match tokio::time::timeout(
        Duration::from_secs(15),
        client.request(request(id, kind, url)),
    )
    .await
    {
        Ok(Ok(response)) => {
            let status = response.status();
            let _ = response.into_body().collect().await;
            status.as_u16()
        }
        Ok(Err(_)) | Err(_) => 0,
    };
    let during = during || outage.active.load(Ordering::SeqCst);
    let mut tally = tally.lock().unwrap();
    *tally.outcomes.entry((kind, status)).or_default() += 1;
    if status >= 500 && !during {
        tally.unexpected_5xx += 1;
    }
    let ok = StatusCode::from_u16(status).is_ok_and(|s| s.is_success());
    match kind {
        Kind::Tampered | Kind::Oversized if ok => tally.accepted_bad += 1,
        Kind::Valid | Kind::SlowValid | Kind::Retry | Kind::Duplicate => {
            if ok {
                tally.acknowledged.insert(id.to_owned(), ());
            } else if !tally.acknowledged.contains_key(id) {
                tally.pending.push(id.to_owned());
            }
        }
        _ => {}
    }
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("soak: {message}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("soak: {message}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<bool, String> {
    let mut redis =
        Server::launch_new(args.redis_server.clone().into(), Persistence::AppendAlways).await?;
    let redis_url = redis.url();

    let mut receiver = Command::new(&args.receiver)
        .args(["--provider", "videonest", "--secret", SECRET])
        .args([
            "--listen",
            "127.0.0.1:0",
            "--max-body",
            &MAX_BODY.to_string(),
        ])
        .args([
            "--dedupe",
            &redis_url,
            "--queue",
            &redis_url,
            "--workers",
            "8",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", args.receiver))?;
    let pid = receiver.id();
    let stdout = receiver.stdout.take().expect("piped");
    let receiver = Process(receiver);
    let mut lines = BufReader::new(stdout).lines();
    let first = lines
        .next()
        .and_then(Result::ok)
        .ok_or("the receiver printed nothing")?;
    let addr = first
        .strip_prefix("listening on ")
        .ok_or(format!("unexpected first line {first:?}"))?
        .to_owned();
    let url = format!("{addr}/webhook");
    // Handler runs per event id, read from the receiver's JSON lines.
    let runs: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let reader = {
        let runs = Arc::clone(&runs);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line)
                    && let Some(id) = value["id"].as_str()
                {
                    *runs.lock().unwrap().entry(id.to_owned()).or_default() += 1;
                }
            }
        })
    };

    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let tally = Arc::new(Mutex::new(Tally::default()));
    let outage = Arc::new(Outage {
        active: AtomicBool::new(false),
    });
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let stop_at = started + args.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..args.connections {
        let (client, url, tally, outage, next) = (
            client.clone(),
            url.clone(),
            Arc::clone(&tally),
            Arc::clone(&outage),
            Arc::clone(&next),
        );
        tasks.spawn(async move {
            let mut i = task as u64;
            while Instant::now() < stop_at {
                i = i
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let roll = (i >> 33) % 100;
                let kind = match roll {
                    0..=49 => Kind::Valid,
                    50..=54 => Kind::SlowValid,
                    55..=74 => Kind::Duplicate,
                    75..=89 => Kind::Tampered,
                    _ => Kind::Oversized,
                };
                let retry = {
                    let mut tally = tally.lock().unwrap();
                    if roll.is_multiple_of(4) {
                        tally.pending.pop()
                    } else {
                        None
                    }
                };
                let (id, kind) = match (retry, kind) {
                    (Some(id), _) => (id, Kind::Retry),
                    (None, Kind::Duplicate) => {
                        let seen = next.load(Ordering::Relaxed);
                        (format!("evt-{}", (i >> 20) % seen.max(1)), Kind::Duplicate)
                    }
                    (None, kind) => (
                        format!("evt-{}", next.fetch_add(1, Ordering::Relaxed)),
                        kind,
                    ),
                };
                send(&client, &url, &id, kind, &tally, &outage).await;
            }
        });
    }

    // Midway: Redis dies (SIGKILL) and comes back after the outage.
    tokio::time::sleep(args.duration / 2 - args.outage / 2).await;
    outage.active.store(true, Ordering::SeqCst);
    let killed_at = started.elapsed();
    redis.kill();
    tokio::time::sleep(args.outage).await;
    redis.launch().await?;
    let restarted_at = started.elapsed();
    // The receiver reconnects on its next request: allow a few seconds.
    tokio::time::sleep(Duration::from_secs(3)).await;
    outage.active.store(false, Ordering::SeqCst);
    while tasks.join_next().await.is_some() {}

    // Like a provider, send every valid delivery that was not acknowledged until it is.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pending: Vec<String> = {
            let mut tally = tally.lock().unwrap();
            let pending = std::mem::take(&mut tally.pending);
            pending
                .into_iter()
                .filter(|id| !tally.acknowledged.contains_key(id))
                .collect()
        };
        if pending.is_empty() || Instant::now() > deadline {
            break;
        }
        for id in pending {
            send(&client, &url, &id, Kind::Retry, &tally, &outage).await;
        }
    }
    // Wait for the workers to handle every acknowledged event.
    let acknowledged: Vec<String> = tally.lock().unwrap().acknowledged.keys().cloned().collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let all = {
            let runs = runs.lock().unwrap();
            acknowledged.iter().all(|id| runs.contains_key(id))
        };
        if all {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A late second run would show up here.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let peak = peak_rss_kib(pid);
    // SIGTERM: the workers finish what they hold (the drop below kills it if it has not
    // stopped after 10 s).
    let _ = Command::new("kill").arg(pid.to_string()).status();
    let mut receiver = receiver;
    for _ in 0..100 {
        if !matches!(receiver.0.try_wait(), Ok(None)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(receiver);
    let _ = reader.join();
    drop(redis);

    let tally = tally.lock().unwrap();
    let runs = runs.lock().unwrap();
    let lost = acknowledged
        .iter()
        .filter(|id| !runs.contains_key(*id))
        .count();
    let twice = runs.values().filter(|n| **n > 1).count();
    let unacknowledged_runs = runs
        .keys()
        .filter(|id| !tally.acknowledged.contains_key(*id))
        .count();
    let never_acknowledged = tally.pending.len();
    println!(
        "soak: {} s, {} connections, Redis killed at {:.1} s and back at {:.1} s",
        args.duration.as_secs(),
        args.connections,
        killed_at.as_secs_f64(),
        restarted_at.as_secs_f64()
    );
    println!("requests by kind and outcome (0 = transport error):");
    for ((kind, status), count) in &tally.outcomes {
        println!("  {:<10} {status:>3}  {count:>8}", format!("{kind:?}"));
    }
    let fives: u64 = tally
        .outcomes
        .iter()
        .filter(|((_, s), _)| *s >= 500)
        .map(|(_, n)| n)
        .sum();
    println!(
        "5xx answers: {fives} ({} outside the outage)",
        tally.unexpected_5xx
    );
    println!(
        "unique valid events acknowledged: {}; handled: {}; lost: {lost}; handled twice: {twice}",
        acknowledged.len(),
        runs.len()
    );
    println!("valid events never acknowledged after the retries: {never_acknowledged}");
    println!(
        "tampered or oversized deliveries accepted: {}",
        tally.accepted_bad
    );
    match peak {
        Some(kib) => println!("receiver peak RSS: {:.1} MiB", kib as f64 / 1024.0),
        None => println!("receiver peak RSS: unknown"),
    }
    let ok = lost == 0
        && twice == 0
        && tally.unexpected_5xx == 0
        && tally.accepted_bad == 0
        && never_acknowledged == 0
        && unacknowledged_runs == 0;
    println!("{}", if ok { "PASS" } else { "FAIL" });
    Ok(ok)
}
