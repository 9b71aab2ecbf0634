//! A webhook receiver for local development.
//!
//! ```text
//! cargo run --release --example receiver -- --provider <videonest|videoaiditor> --secret S [--secret S2 ...] [--listen ADDR] [--max-body BYTES]
//! ```
//!
//! Serves `POST /webhook` with the provider's preset. Its first line on stdout is
//! `listening on http://ADDR`; then it prints one JSON line per event its handler receives,
//! `{"provider":"videonest","event":"video.processed","id":"vid_abc123"}` (`id` is `data.id` for
//! VideoNest and `data._id` for VideoAIditor, `null` when absent), and answers 200 once the handler
//! has run. Refused requests get the layer's 401/400/413 with a short reason and print nothing;
//! other methods on `/webhook` get 405. Every verified JSON body is printed, including events
//! kept raw (an unknown type, or fields of an undocumented shape), with their `event` and `id`.
//! `--secret` may be repeated (key rotation: any one matching is enough). `--listen` defaults to
//! 127.0.0.1:3000; port 0 picks a free port.

use std::{io::Write as _, net::SocketAddr, process::ExitCode};

use axum::{Extension, Router, routing::post};
use serde::Serialize;
use tower_webhook::{
    DEFAULT_MAX_BODY_SIZE, Verified,
    provider::{videoaiditor, videonest},
};

const USAGE: &str = "usage: receiver --provider <videonest|videoaiditor> --secret S [--secret S2 ...] [--listen ADDR] [--max-body BYTES]";

#[derive(Debug, Clone, Copy)]
enum Provider {
    VideoNest,
    VideoAIditor,
}

#[derive(Debug)]
struct Args {
    provider: Provider,
    secrets: Vec<String>,
    listen: SocketAddr,
    max_body: usize,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut provider = None;
    let mut secrets = Vec::new();
    let mut listen: SocketAddr = "127.0.0.1:3000".parse().expect("valid default address");
    let mut max_body = DEFAULT_MAX_BODY_SIZE;
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
    })
}

/// One stdout line per received event.
#[derive(Serialize)]
struct Line<'a> {
    provider: &'a str,
    event: &'a str,
    id: Option<&'a str>,
}

fn print_event(provider: &str, event: &str, id: Option<&str>) {
    let line = serde_json::to_string(&Line {
        provider,
        event,
        id,
    })
    .expect("serialisable");
    let mut stdout = std::io::stdout().lock();
    // A closed stdout must not take the receiver down; the request is still answered.
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}

async fn videonest_handler(
    Extension(verified): Extension<Verified<videonest::Event>>,
) -> &'static str {
    print_event("videonest", verified.event_type(), verified.id());
    "ok\n"
}

async fn videoaiditor_handler(
    Extension(verified): Extension<Verified<videoaiditor::Event>>,
) -> &'static str {
    print_event("videoaiditor", verified.event_type(), verified.id());
    "ok\n"
}

fn app(args: &Args) -> Result<Router, tower_webhook::ConfigError> {
    Ok(match args.provider {
        Provider::VideoNest => Router::new().route(
            "/webhook",
            post(videonest_handler)
                .route_layer(videonest::layer(&args.secrets)?.max_body_size(args.max_body)),
        ),
        Provider::VideoAIditor => Router::new().route(
            "/webhook",
            post(videoaiditor_handler)
                .route_layer(videoaiditor::layer(&args.secrets)?.max_body_size(args.max_body)),
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
