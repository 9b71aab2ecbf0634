//! Keep-alive after a refusal: a refusal that leaves request body bytes unread gets
//! `Connection: close` on HTTP/1.x (so a pooled client does not reuse a connection the server is
//! about to close), a refusal after the whole body was read keeps the connection, and HTTP/2
//! responses never carry a `connection` header.

mod common;

use std::{
    convert::Infallible,
    io,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use bytes::Bytes;
use common::{Calls, Chunks, Failing, SECRET, VN_BODY, body_bytes, calls, count, echo, guard};
use http::{HeaderValue, Request, Response, StatusCode, Version, header::CONNECTION};
use http_body::Body;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper_util::{
    client::legacy::Client,
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
    service::TowerToHyperService,
};
use tokio::net::{TcpListener, TcpStream};
use tower::{ServiceBuilder, ServiceExt};
use tower_webhook::{Rejection, provider::videonest};

/// The body limit of the test server. Large enough that a refused body does not fit in the
/// server's first read, so that bytes really are left unread.
const LIMIT: usize = 64 * 1024;
const PATH: &str = "/webhooks/videonest";

type ClientBody = BoxBody<Bytes, io::Error>;

fn full(bytes: impl Into<Bytes>) -> ClientBody {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn signature(body: &[u8]) -> String {
    videonest::headers(SECRET, body).unwrap()[videonest::SIGNATURE_HEADER]
        .to_str()
        .unwrap()
        .to_owned()
}

struct Server {
    addr: SocketAddr,
    calls: Calls,
    /// Connections accepted so far.
    connections: Arc<AtomicUsize>,
}

impl Server {
    fn url(&self) -> String {
        format!("http://{}{PATH}", self.addr)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Starts a hyper server speaking HTTP/1.1 (keep-alive on, hyper's default) and HTTP/2 (prior
/// knowledge) with the VideoNest layer (body limit [`LIMIT`]) over the echo handler.
async fn start() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let calls = calls();
    let handler_calls = calls.clone();
    let connections = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::clone(&connections);
    let service = ServiceBuilder::new()
        .layer(videonest::layer([SECRET]).unwrap().max_body_size(LIMIT))
        .service_fn(move |request| echo::<videonest::Event>(handler_calls.clone(), request));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            accepted.fetch_add(1, Ordering::SeqCst);
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                // A connection closed after a refusal may end in an error; that is fine here.
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Server {
        addr,
        calls,
        connections,
    }
}

/// A valid, signed VideoNest delivery.
fn valid(url: &str) -> Request<ClientBody> {
    Request::post(url)
        .header(videonest::SIGNATURE_HEADER, signature(VN_BODY))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(full(VN_BODY))
        .unwrap()
}

/// The refusals that come before the body was read to its end, with their status.
#[derive(Debug, Clone, Copy)]
enum Early {
    /// `Content-Length` over the limit, and a body of that size actually sent.
    ContentLengthOverLimit,
    /// No signature header, and a body within the limit.
    MissingSignature,
    /// A signature header that is not lower-case hex, and a body within the limit.
    MalformedSignature,
    /// A streamed body (no `Content-Length`) that goes over the limit.
    StreamOverLimit,
}

impl Early {
    const ALL: [Self; 4] = [
        Self::ContentLengthOverLimit,
        Self::MissingSignature,
        Self::MalformedSignature,
        Self::StreamOverLimit,
    ];

    fn status(self) -> StatusCode {
        match self {
            Self::ContentLengthOverLimit | Self::StreamOverLimit => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MissingSignature | Self::MalformedSignature => StatusCode::UNAUTHORIZED,
        }
    }

    fn request(self, url: &str) -> Request<ClientBody> {
        let request = Request::post(url).header(http::header::CONTENT_TYPE, "application/json");
        match self {
            Self::ContentLengthOverLimit => {
                let body = vec![b' '; LIMIT + LIMIT / 4];
                request
                    .header(videonest::SIGNATURE_HEADER, signature(&body))
                    .body(full(body))
            }
            Self::MissingSignature => request.body(full(vec![b' '; LIMIT * 3 / 4])),
            Self::MalformedSignature => request
                .header(
                    videonest::SIGNATURE_HEADER,
                    signature(VN_BODY).to_uppercase(),
                )
                .body(full(vec![b' '; LIMIT * 3 / 4])),
            Self::StreamOverLimit => {
                let body = vec![b' '; LIMIT + LIMIT / 4];
                request
                    .header(videonest::SIGNATURE_HEADER, signature(&body))
                    .body(Chunks::split(&body, 20).boxed())
            }
        }
        .unwrap()
    }
}

fn connection_header<B>(response: &Response<B>) -> Option<&HeaderValue> {
    response.headers().get(CONNECTION)
}

#[tokio::test]
async fn pooled_http1_client_survives_alternating_early_refusals_and_deliveries() {
    let server = start().await;
    let url = server.url();
    // One idle connection per host at most, so that every request after the first reuses the
    // pooled connection unless the server said it would close it.
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1)
        .build_http::<ClientBody>();

    for round in 0..100 {
        let early = Early::ALL[round % Early::ALL.len()];
        let response = guard("early refusal", client.request(early.request(&url)))
            .await
            .unwrap_or_else(|err| panic!("round {round}, {early:?}: request failed: {err:?}"));
        assert_eq!(
            response.status(),
            early.status(),
            "round {round}, {early:?}"
        );
        assert_eq!(response.version(), Version::HTTP_11);
        assert_eq!(
            connection_header(&response).map(HeaderValue::as_bytes),
            Some(&b"close"[..]),
            "round {round}, {early:?}: an early refusal announces the close"
        );
        guard("early refusal body", response.into_body().collect())
            .await
            .unwrap_or_else(|err| panic!("round {round}, {early:?}: body failed: {err:?}"));

        let response = guard("valid delivery", client.request(valid(&url)))
            .await
            .unwrap_or_else(|err| {
                panic!("round {round}: the delivery after {early:?} failed: {err:?}")
            });
        assert_eq!(response.status(), StatusCode::OK, "round {round}");
        assert_eq!(connection_header(&response), None, "round {round}");
        let body = guard("valid delivery body", response.into_body().collect())
            .await
            .unwrap_or_else(|err| panic!("round {round}: body failed: {err:?}"));
        assert_eq!(body.to_bytes(), VN_BODY, "round {round}");
    }
    assert_eq!(count(&server.calls), 100);
}

#[tokio::test]
async fn late_refusals_keep_the_connection() {
    let server = start().await;
    let url = server.url();
    // One HTTP/1.1 connection, no pool: every request below goes over it, and fails if the server
    // closed it.
    let stream = guard("connect", TcpStream::connect(server.addr))
        .await
        .unwrap();
    let (mut sender, connection) = guard(
        "h1 handshake",
        hyper::client::conn::http1::handshake(TokioIo::new(stream)),
    )
    .await
    .unwrap();
    tokio::spawn(connection);

    let wrong_signature = Request::post(&url)
        .header(videonest::SIGNATURE_HEADER, "f".repeat(64))
        .body(full(VN_BODY))
        .unwrap();
    let not_an_event = Request::post(&url)
        .header(videonest::SIGNATURE_HEADER, signature(b"not json"))
        .body(full(&b"not json"[..]))
        .unwrap();
    let unsigned_empty = Request::post(&url).body(full(Bytes::new())).unwrap();
    let requests = [
        ("valid delivery", valid(&url), StatusCode::OK),
        // Well formed but wrong: refused only once the whole body was read.
        ("wrong signature", wrong_signature, StatusCode::UNAUTHORIZED),
        // Signed, but not an event: refused after the whole body was read, too.
        ("not an event", not_an_event, StatusCode::BAD_REQUEST),
        // Refused before reading, but there is nothing to read.
        ("unsigned, empty", unsigned_empty, StatusCode::UNAUTHORIZED),
        ("valid delivery again", valid(&url), StatusCode::OK),
    ];
    for (what, request, status) in requests {
        guard("h1 ready", sender.ready())
            .await
            .unwrap_or_else(|err| panic!("{what}: the connection was closed: {err:?}"));
        let response = guard(what, sender.send_request(request))
            .await
            .unwrap_or_else(|err| panic!("{what}: request failed: {err:?}"));
        assert_eq!(response.status(), status, "{what}");
        assert_eq!(connection_header(&response), None, "{what}");
        body_bytes(response.into_body()).await;
    }
    assert_eq!(server.connections(), 1);
    assert_eq!(count(&server.calls), 2);
}

#[tokio::test]
async fn http2_early_refusals_carry_no_connection_header() {
    let server = start().await;
    let url = server.url();
    let stream = guard("connect", TcpStream::connect(server.addr))
        .await
        .unwrap();
    let (mut sender, connection) = guard(
        "h2 handshake",
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)),
    )
    .await
    .unwrap();
    tokio::spawn(connection);

    for early in Early::ALL {
        guard("h2 ready", sender.ready()).await.unwrap();
        let response = guard("h2 early refusal", sender.send_request(early.request(&url)))
            .await
            .unwrap_or_else(|err| panic!("{early:?}: request failed: {err:?}"));
        assert_eq!(response.version(), Version::HTTP_2);
        assert_eq!(response.status(), early.status(), "{early:?}");
        assert_eq!(connection_header(&response), None, "{early:?}");
        guard("h2 early refusal body", response.into_body().collect())
            .await
            .unwrap_or_else(|err| panic!("{early:?}: body failed: {err:?}"));

        // The same connection still carries a valid delivery.
        guard("h2 ready", sender.ready()).await.unwrap();
        let response = guard("h2 valid delivery", sender.send_request(valid(&url)))
            .await
            .unwrap_or_else(|err| panic!("the delivery after {early:?} failed: {err:?}"));
        assert_eq!(response.status(), StatusCode::OK, "after {early:?}");
        assert_eq!(body_bytes(response.into_body()).await, VN_BODY);
    }
    assert_eq!(server.connections(), 1);
    assert_eq!(count(&server.calls), Early::ALL.len());
}

/// The rule itself, without a network: which refusals get `Connection: close`, by HTTP version.
#[tokio::test]
async fn connection_close_rule() {
    async fn refuse<B>(request: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let calls = calls();
        let service = ServiceBuilder::new()
            .layer(videonest::layer([SECRET]).unwrap().max_body_size(LIMIT))
            .service_fn(move |request| echo::<videonest::Event>(calls.clone(), request));
        let response = guard("refusal", service.oneshot(request)).await.unwrap();
        assert!(response.extensions().get::<Rejection>().is_some());
        response
    }
    fn closes<B>(response: &Response<B>) -> bool {
        match connection_header(response) {
            None => false,
            Some(value) if value == "close" => true,
            Some(other) => panic!("unexpected connection header {other:?}"),
        }
    }
    let unsigned = |version: Version, body: &'static [u8]| {
        Request::post(PATH)
            .version(version)
            .body(Full::new(Bytes::from_static(body)))
            .unwrap()
    };

    // Missing signature with a body: HTTP/1.x only.
    for (version, expected) in [
        (Version::HTTP_10, true),
        (Version::HTTP_11, true),
        (Version::HTTP_2, false),
        (Version::HTTP_3, false),
    ] {
        let response = refuse(unsigned(version, VN_BODY)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(closes(&response), expected, "{version:?}");
    }

    // Missing signature without a body: nothing is unread.
    let response = refuse(unsigned(Version::HTTP_11, b"")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(!closes(&response));

    // `Content-Length` over the limit.
    let request = Request::post(PATH)
        .header(videonest::SIGNATURE_HEADER, signature(b""))
        .header(http::header::CONTENT_LENGTH, LIMIT + 1)
        .body(Chunks::new([Bytes::from_static(b"{}")]))
        .unwrap();
    let response = refuse(request).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(closes(&response));

    // Over the limit part-way through a streamed body.
    let body = vec![b' '; LIMIT + 1];
    let request = Request::post(PATH)
        .header(videonest::SIGNATURE_HEADER, signature(&body))
        .body(Chunks::split(&body, 4))
        .unwrap();
    let response = refuse(request).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(closes(&response));

    // The same on HTTP/2: no header.
    let request = Request::post(PATH)
        .version(Version::HTTP_2)
        .header(videonest::SIGNATURE_HEADER, signature(&body))
        .body(Chunks::split(&body, 4))
        .unwrap();
    let response = refuse(request).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(!closes(&response));

    // A body that failed while being read.
    let request = Request::post(PATH)
        .header(videonest::SIGNATURE_HEADER, signature(VN_BODY))
        .body(Failing::after([Bytes::from_static(&VN_BODY[..10])]))
        .unwrap();
    let response = refuse(request).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(closes(&response));

    // Refused after the whole body was read: wrong signature, then not an event.
    let request = Request::post(PATH)
        .header(videonest::SIGNATURE_HEADER, "f".repeat(64))
        .body(Chunks::split(VN_BODY, 3))
        .unwrap();
    let response = refuse(request).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(!closes(&response));
    let request = Request::post(PATH)
        .header(videonest::SIGNATURE_HEADER, signature(b"not json"))
        .body(Chunks::new([Bytes::from_static(b"not json")]))
        .unwrap();
    let response = refuse(request).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(!closes(&response));
}

/// A custom rejection response's own `Connection` header gives way to `close` when bytes are
/// left unread, and is left alone otherwise.
#[tokio::test]
async fn custom_rejection_response_connection_header() {
    let calls = calls();
    let service =
        ServiceBuilder::new()
            .layer(videonest::layer([SECRET]).unwrap().rejection_response(
                |rejection: &Rejection| {
                    let mut response = Response::new(Full::new(Bytes::new()));
                    *response.status_mut() = rejection.status();
                    response
                        .headers_mut()
                        .insert(CONNECTION, HeaderValue::from_static("keep-alive"));
                    response
                },
            ))
            .service_fn(move |request| echo::<videonest::Event>(calls.clone(), request));

    let request = Request::post(PATH)
        .body(Full::new(Bytes::from_static(VN_BODY)))
        .unwrap();
    let response = guard("unsigned", service.clone().oneshot(request))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let values: Vec<_> = response.headers().get_all(CONNECTION).iter().collect();
    assert_eq!(values, ["close"]);

    let request = Request::post(PATH)
        .header(videonest::SIGNATURE_HEADER, "f".repeat(64))
        .body(Full::new(Bytes::from_static(VN_BODY)))
        .unwrap();
    let response = guard("wrong signature", service.oneshot(request))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()[CONNECTION], "keep-alive");
}
