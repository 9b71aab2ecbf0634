//! The server the end-to-end benchmark (`bench/e2e.sh`) loads: one axum route, `POST /webhook`,
//! with the same handler in every mode.
//!
//! ```text
//! cargo run --release --example bench_server -- --mode <bare|verify|typed> [--listen ADDR] [--max-body BYTES]
//! cargo run --release --example bench_server -- --write-request FILE
//! ```
//!
//! - `bare`: the handler alone; it collects the body (axum's `Bytes` extractor) and answers
//!   `200 ok`;
//! - `verify`: the same route behind `VerifyWebhookLayer` with the VideoNest scheme, verifying
//!   only (`Verified<()>`);
//! - `typed`: behind the VideoNest preset's layer, which also decodes `videonest::Event`.
//!
//! The secret is the benches' own. `--write-request FILE` writes a realistic 1 KiB VideoNest
//! `video.processed` body to FILE and prints the `X-VideoNest-Signature` value for it, for the
//! load generator. `--listen` defaults to 127.0.0.1:3000; the first line on stdout is
//! `listening on http://ADDR`. It runs until killed.

#[path = "../benches/support/mod.rs"]
mod support;

use std::{hint::black_box, net::SocketAddr, process::ExitCode};

use axum::{Router, body::Bytes, routing::post};
use tower_webhook::{DEFAULT_MAX_BODY_SIZE, VerifyWebhookLayer, provider::videonest};

use support::{SECRET, videonest_body};

const USAGE: &str = "usage: bench_server --mode <bare|verify|typed> [--listen ADDR] [--max-body BYTES]\n       bench_server --write-request FILE";

/// The one handler: take the (collected) body, answer 200.
async fn handler(body: Bytes) -> &'static str {
    black_box(body.len());
    "ok\n"
}

fn router(mode: &str, max_body: usize) -> Result<Router, String> {
    let route = post(handler);
    let route = match mode {
        "bare" => route,
        "verify" => route.route_layer(
            VerifyWebhookLayer::new(
                videonest::scheme()
                    .secret(SECRET)
                    .build()
                    .map_err(|e| e.to_string())?,
            )
            .max_body_size(max_body),
        ),
        "typed" => route.route_layer(
            videonest::layer([SECRET])
                .map_err(|e| e.to_string())?
                .max_body_size(max_body),
        ),
        other => return Err(format!("unknown mode {other:?}")),
    };
    Ok(Router::new().route("/webhook", route))
}

fn write_request(path: &str) -> Result<(), String> {
    let body = videonest_body(1024, "vid_abc123");
    let scheme = videonest::scheme()
        .secret(SECRET)
        .build()
        .map_err(|e| e.to_string())?;
    std::fs::write(path, &body).map_err(|e| format!("{path}: {e}"))?;
    let signed = scheme.sign(body.as_bytes(), None, &http::HeaderMap::new());
    println!(
        "{}",
        signed[scheme.header()]
            .to_str()
            .expect("hex is a valid header string")
    );
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut mode = None;
    let mut listen: SocketAddr = "127.0.0.1:3000".parse().expect("valid default address");
    let mut max_body = DEFAULT_MAX_BODY_SIZE;
    while let Some(flag) = args.next() {
        let value = args.next();
        let parsed = match (flag.as_str(), value) {
            ("--mode", Some(value)) => {
                mode = Some(value);
                Ok(())
            }
            ("--listen", Some(value)) => value
                .parse()
                .map(|addr| listen = addr)
                .map_err(|_| format!("--listen: {value:?} is not an address")),
            ("--max-body", Some(value)) => value
                .parse()
                .map(|bytes| max_body = bytes)
                .map_err(|_| format!("--max-body: {value:?} is not a number of bytes")),
            ("--write-request", Some(path)) => {
                return match write_request(&path) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(err) => {
                        eprintln!("bench_server: {err}");
                        ExitCode::FAILURE
                    }
                };
            }
            _ => Err(format!("unexpected argument {flag:?}")),
        };
        if let Err(err) = parsed {
            eprintln!("bench_server: {err}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    let router = match router(mode.as_deref().unwrap_or(""), max_body) {
        Ok(router) => router,
        Err(err) => {
            eprintln!("bench_server: {err}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("bench_server: cannot listen on {listen}: {err}");
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().expect("bound socket has an address");
    println!("listening on http://{addr}");
    if let Err(err) = axum::serve(listener, router).await {
        eprintln!("bench_server: {err}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
