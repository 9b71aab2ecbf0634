//! The layer behind a real hyper 1 server on 127.0.0.1, driven by hyper-util's legacy client and
//! by hand-written HTTP/1.1 over a raw `TcpStream` (for chunked and over-limit bodies).

mod common;

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use common::{Calls, SECRET, VN_BODY, body_bytes, calls, count, echo, guard};
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper_util::{
    client::legacy::Client,
    rt::{TokioExecutor, TokioIo},
    service::TowerToHyperService,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tower::ServiceBuilder;
use tower_webhook::provider::videonest;

const LIMIT: usize = 4096;
const PATH: &str = "/webhooks/videonest";

struct Server {
    addr: SocketAddr,
    calls: Calls,
}

/// Starts a hyper 1 server with the VideoNest layer (body limit [`LIMIT`]) over the echo handler.
async fn start() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let calls = calls();
    let handler_calls = calls.clone();
    let service = ServiceBuilder::new()
        .layer(videonest::layer([SECRET]).unwrap().max_body_size(LIMIT))
        .service_fn(move |request| echo::<videonest::Event>(handler_calls.clone(), request));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                // Connections that the client abandons end in an error; that is fine here.
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Server { addr, calls }
}

fn signature(body: &[u8]) -> String {
    videonest::headers(SECRET, body).unwrap()[videonest::SIGNATURE_HEADER]
        .to_str()
        .unwrap()
        .to_owned()
}

/// A response read off the wire by hand.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads one HTTP/1.1 response with a `Content-Length` body.
async fn read_response(stream: &mut TcpStream) -> RawResponse {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        let n = stream.read(&mut chunk).await.expect("read response head");
        assert!(
            n > 0,
            "connection closed before a response head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (name, value) = line.split_once(':').expect("header line");
            (name.trim().to_owned(), value.trim().to_owned())
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse().expect("numeric content-length"))
        .expect("responses carry a content-length");
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.expect("read response body");
        assert!(n > 0, "connection closed inside the response body");
        buf.extend_from_slice(&chunk[..n]);
    }
    RawResponse {
        status,
        headers,
        body: buf[head_end..head_end + length].to_vec(),
    }
}

/// Writes `parts` one after another (pausing briefly between them so that they arrive as
/// separate reads), then reads the response.
async fn exchange(addr: SocketAddr, parts: &[Vec<u8>]) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        stream.write_all(part).await.expect("write request part");
        stream.flush().await.unwrap();
    }
    read_response(&mut stream).await
}

fn chunk(data: &[u8]) -> Vec<u8> {
    [format!("{:x}\r\n", data.len()).as_bytes(), data, b"\r\n"].concat()
}

fn chunked_head(signature: &str) -> Vec<u8> {
    format!(
        "POST {PATH} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         X-VideoNest-Signature: {signature}\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n"
    )
    .into_bytes()
}

fn assert_plain_rejection(response: &RawResponse) {
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=utf-8"),
        "{response:?}"
    );
    let text = response.text();
    assert!(
        !text.is_empty() && text.len() <= common::MAX_REJECTION_TEXT,
        "{text:?}"
    );
    assert!(!text.contains(SECRET), "{text:?}");
}

#[tokio::test]
async fn legacy_client_valid_and_wrong_signature() {
    let server = start().await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let url = format!("http://{}{PATH}", server.addr);

    let request = Request::post(&url)
        .header(videonest::SIGNATURE_HEADER, signature(VN_BODY))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(VN_BODY)))
        .unwrap();
    let response = guard("valid", client.request(request)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_bytes(response.into_body()).await, VN_BODY);
    assert_eq!(count(&server.calls), 1);

    let request = Request::post(&url)
        .header(videonest::SIGNATURE_HEADER, "f".repeat(64))
        .body(Full::new(Bytes::from_static(VN_BODY)))
        .unwrap();
    let response = guard("wrong signature", client.request(request))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()[http::header::CONTENT_TYPE],
        "text/plain; charset=utf-8"
    );
    let text = body_bytes(response.into_body()).await;
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("signature"), "{text:?}");
    assert!(!text.contains(SECRET));

    // The pooled connection still works after a refusal.
    let request = Request::post(&url)
        .header(videonest::SIGNATURE_HEADER, signature(VN_BODY))
        .body(Full::new(Bytes::from_static(VN_BODY)))
        .unwrap();
    let response = guard("valid again", client.request(request)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(count(&server.calls), 2);
}

#[tokio::test]
async fn chunked_body_in_several_chunks_verifies() {
    let server = start().await;
    let (a, rest) = VN_BODY.split_at(40);
    let (b, c) = rest.split_at(70);
    let parts = vec![
        chunked_head(&signature(VN_BODY)),
        chunk(a),
        chunk(b),
        [chunk(c), b"0\r\n\r\n".to_vec()].concat(),
    ];
    let response = guard("chunked", exchange(server.addr, &parts)).await;
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.body, VN_BODY);
    assert_eq!(count(&server.calls), 1);
}

#[tokio::test]
async fn chunked_body_with_a_wrong_signature() {
    let server = start().await;
    let parts = vec![
        chunked_head(&"0".repeat(64)),
        chunk(&VN_BODY[..50]),
        [chunk(&VN_BODY[50..]), b"0\r\n\r\n".to_vec()].concat(),
    ];
    let response = guard("chunked, wrong signature", exchange(server.addr, &parts)).await;
    assert_eq!(response.status, 401, "{response:?}");
    assert_plain_rejection(&response);
    assert_eq!(count(&server.calls), 0);
}

#[tokio::test]
async fn chunked_body_over_the_limit() {
    let server = start().await;
    // Six 1 KiB chunks against a 4 KiB limit, sent in one write so that the server has it all
    // (an unread remainder could turn the server's close into a reset that hides the answer).
    let frame = vec![b'a'; 1024];
    let mut request = chunked_head(&signature(b"irrelevant"));
    for _ in 0..6 {
        request.extend(chunk(&frame));
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let response = guard("chunked over the limit", exchange(server.addr, &[request])).await;
    assert_eq!(response.status, 413, "{response:?}");
    assert_plain_rejection(&response);
    assert_eq!(count(&server.calls), 0);
}

#[tokio::test]
async fn content_length_over_the_limit_is_answered_without_the_body() {
    let server = start().await;
    // Only the head is sent: the answer must come without waiting for the announced body.
    let head = format!(
        "POST {PATH} HTTP/1.1\r\nHost: localhost\r\nX-VideoNest-Signature: {}\r\n\
         Content-Length: {}\r\n\r\n",
        signature(b"irrelevant"),
        LIMIT + 1
    );
    let response = guard(
        "Content-Length over the limit",
        exchange(server.addr, &[head.into_bytes()]),
    )
    .await;
    assert_eq!(response.status, 413, "{response:?}");
    assert_plain_rejection(&response);
    assert!(response.text().contains(&LIMIT.to_string()), "{response:?}");
    assert_eq!(count(&server.calls), 0);
}

#[tokio::test]
async fn expect_continue_over_the_limit_gets_no_100() {
    let server = start().await;
    let head = format!(
        "POST {PATH} HTTP/1.1\r\nHost: localhost\r\nX-VideoNest-Signature: {}\r\n\
         Expect: 100-continue\r\nContent-Length: 10000000\r\n\r\n",
        signature(b"irrelevant")
    );
    let response = guard(
        "Expect: 100-continue",
        exchange(server.addr, &[head.into_bytes()]),
    )
    .await;
    assert_eq!(
        response.status, 413,
        "the first answer is the refusal: {response:?}"
    );
    assert_eq!(count(&server.calls), 0);
}

#[tokio::test]
async fn missing_signature_is_answered_without_the_body() {
    let server = start().await;
    let head =
        format!("POST {PATH} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {LIMIT}\r\n\r\n");
    let response = guard("unsigned", exchange(server.addr, &[head.into_bytes()])).await;
    assert_eq!(response.status, 401, "{response:?}");
    assert_plain_rejection(&response);
    assert!(
        response.text().contains("x-videonest-signature"),
        "{response:?}"
    );
    assert_eq!(count(&server.calls), 0);
}
