//! Slow and endless bodies: the verifying layer reads a body until it ends or passes the limit,
//! so a client that sends its body slowly, or stops half-way, holds its request for as long as
//! it likes unless a timeout bounds it. These tests run a real server (axum over TCP) with the
//! composition the README recommends — tower-http's `TimeoutLayer` outside the verifying layer
//! (a deadline for the whole request, body included) and `RequestBodyTimeoutLayer` (a limit on
//! the silence between two pieces of the body) — and raw TCP clients that misbehave.

mod common;

use std::time::Duration;

use axum::{Router, routing::post};
use common::SECRET;
use http::StatusCode;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tower::ServiceBuilder;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tower_webhook::provider::videonest;

const BODY: &str =
    r#"{"event":"video.processed","timestamp":"2026-03-30T10:15:00Z","data":{"id":"vid_slow"}}"#;

/// The deadline for a whole request.
const DEADLINE: Duration = Duration::from_millis(400);
/// The longest silence allowed inside a body.
const IDLE: Duration = Duration::from_millis(200);

/// A server with the recommended timeouts around the VideoNest layer.
async fn start() -> String {
    let app = Router::new().route(
        "/webhook",
        post(|| async { "handled" }).route_layer(
            ServiceBuilder::new()
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    DEADLINE,
                ))
                .layer(RequestBodyTimeoutLayer::new(IDLE))
                .layer(videonest::layer([SECRET]).unwrap()),
        ),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// The head of a signed POST of [`BODY`] (its `Content-Length` is the whole body's).
fn head() -> String {
    let request = videonest::signed_request(SECRET, BODY).unwrap();
    let signature = request.headers()[videonest::SIGNATURE_HEADER]
        .to_str()
        .unwrap()
        .to_owned();
    format!(
        "POST /webhook HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         {}: {signature}\r\nContent-Length: {}\r\n\r\n",
        videonest::SIGNATURE_HEADER,
        BODY.len()
    )
}

/// Reads until the server closes the connection (bounded: 10 s); what it sent.
async fn read_all(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    assert!(
        read.is_ok(),
        "the server neither answered nor closed in 10 s"
    );
    String::from_utf8_lossy(&out).into_owned()
}

fn status(response: &str) -> Option<u16> {
    response.split(' ').nth(1)?.parse().ok()
}

/// The control: the same request sent whole is handled.
#[tokio::test]
async fn a_whole_request_is_handled() {
    let addr = start().await;
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let request =
        format!("{}{BODY}", head()).replace("HTTP/1.1\r\n", "HTTP/1.1\r\nConnection: close\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let response = read_all(&mut stream).await;
    assert_eq!(status(&response), Some(200), "{response}");
    assert!(response.ends_with("handled"), "{response}");
}

/// A client that sends its head and part of the body, then nothing: the body timeout ends the
/// read, and the request is refused instead of waiting forever.
#[tokio::test]
async fn a_body_that_stops_half_way_is_refused_when_the_client_falls_silent() {
    let addr = start().await;
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream.write_all(head().as_bytes()).await.unwrap();
    stream.write_all(&BODY.as_bytes()[..10]).await.unwrap();
    let response = read_all(&mut stream).await;
    let status = status(&response);
    // The silence is caught by the body timeout (a body error: 400) or, whichever fires
    // first on a loaded machine, by the request deadline (408).
    assert!(matches!(status, Some(400 | 408)), "{response}");
}

/// A client that trickles its body a byte at a time, never silent long enough for the body
/// timeout: the deadline for the whole request still ends it, with 408.
#[tokio::test]
async fn a_trickled_body_is_refused_at_the_request_deadline() {
    let addr = start().await;
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream.write_all(head().as_bytes()).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let trickle = tokio::spawn(async move {
        for byte in BODY.as_bytes() {
            if write.write_all(&[*byte]).await.is_err() {
                return false;
            }
            tokio::time::sleep(IDLE / 4).await;
        }
        true
    });
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), read.read_to_end(&mut out)).await;
    assert!(
        read.is_ok(),
        "the server neither answered nor closed in 10 s"
    );
    let response = String::from_utf8_lossy(&out);
    assert_eq!(status(&response), Some(408), "{response}");
    // The whole body would have taken BODY.len() * IDLE / 4 (about 4.5 s): it was cut short.
    trickle.abort();
}
