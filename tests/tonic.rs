//! The layer beside a gRPC service in a tonic 0.14 server: the stack of `examples/tonic.rs`
//! (tonic-health's `Health` service and a verified webhook route merged into one router, HTTP/1.1
//! accepted) on a real socket; `DefaultRejectionResponse::map_body` with tonic's body type; and
//! what the README warns against, the layer around the whole gRPC server.

mod common;

#[path = "../examples/tonic.rs"]
#[allow(dead_code)] // the example's `main` and handler are not used here
mod example;

use std::{convert::Infallible, net::SocketAddr, sync::atomic::Ordering};

use axum::Extension;
use bytes::Bytes;
use common::{Calls, SECRET, VN_BODY, body_bytes, calls, count, expect_rejection, guard};
use http::{
    Request, Response, StatusCode, Version,
    header::{CONNECTION, CONTENT_TYPE},
    uri::PathAndQuery,
};
use http_body_util::Full;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{
    Code,
    transport::{Channel, server::TcpIncoming},
};
use tonic_health::pb::{
    HealthCheckRequest, HealthCheckResponse, health_check_response::ServingStatus,
    health_client::HealthClient,
};
use tower::{ServiceBuilder, ServiceExt};
use tower_webhook::{
    DefaultRejectionResponse, Rejection, SignatureError, Verified, provider::videonest,
};

/// The example's stack on 127.0.0.1:0, with a handler that counts its calls.
struct Stack {
    addr: SocketAddr,
    calls: Calls,
    shutdown: oneshot::Sender<()>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Stack {
    async fn start() -> Self {
        let calls = calls();
        let handler_calls = calls.clone();
        let handler = move |Extension(hook): Extension<Verified<videonest::Event>>| {
            handler_calls.fetch_add(1, Ordering::SeqCst);
            std::future::ready(format!(
                "{} {}",
                hook.event_type(),
                hook.id().unwrap_or("-")
            ))
        };
        let routes = example::routes(SECRET, handler).expect("valid secret");
        let listener = guard("bind", TcpListener::bind("127.0.0.1:0"))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (shutdown, signal) = oneshot::channel::<()>();
        let server = tokio::spawn(example::serve(listener, routes, async {
            let _ = signal.await;
        }));
        Self {
            addr,
            calls,
            shutdown,
            server,
        }
    }

    fn webhook_url(&self) -> String {
        format!("http://{}{}", self.addr, example::WEBHOOK_PATH)
    }

    async fn grpc_channel(&self) -> Channel {
        guard(
            "gRPC connect",
            Channel::from_shared(format!("http://{}", self.addr))
                .unwrap()
                .connect(),
        )
        .await
        .expect("the gRPC client connects")
    }

    /// Stops the server and checks it shut down cleanly.
    async fn stop(self) {
        let _ = self.shutdown.send(());
        guard("server shutdown", self.server)
            .await
            .expect("the server task did not panic")
            .expect("the server stopped without error");
    }
}

/// Sends `request` to `url` with a hyper client speaking HTTP/1.1 (or HTTP/2 with prior
/// knowledge when `http2`) and returns the response with its body collected.
async fn send(url: &str, mut request: Request<Full<Bytes>>, http2: bool) -> Response<Bytes> {
    *request.uri_mut() = url.parse().unwrap();
    let client = Client::builder(TokioExecutor::new())
        .http2_only(http2)
        .build_http::<Full<Bytes>>();
    let response = guard("webhook request", client.request(request))
        .await
        .expect("the server answers");
    let (parts, body) = response.into_parts();
    let body = guard("webhook response body", body_bytes(body)).await;
    Response::from_parts(parts, body)
}

fn signed(body: &'static [u8]) -> Request<Full<Bytes>> {
    videonest::signed_request(SECRET, body).expect("valid secret")
}

fn text(response: &Response<Bytes>) -> &str {
    std::str::from_utf8(response.body()).expect("UTF-8 body")
}

#[tokio::test]
async fn signed_http1_post_reaches_the_handler() {
    let stack = Stack::start().await;

    let response = send(&stack.webhook_url(), signed(VN_BODY), false).await;
    assert_eq!(response.version(), Version::HTTP_11);
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(text(&response), "video.processed vid_abc123");
    assert_eq!(count(&stack.calls), 1);

    // The port speaks HTTP/2 too (with prior knowledge, as gRPC does); webhooks work there as well.
    let response = send(&stack.webhook_url(), signed(VN_BODY), true).await;
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(count(&stack.calls), 2);

    stack.stop().await;
}

#[tokio::test]
async fn unsigned_and_tampered_posts_are_refused() {
    let stack = Stack::start().await;

    let mut unsigned = signed(VN_BODY);
    unsigned.headers_mut().remove(videonest::SIGNATURE_HEADER);
    let response = send(&stack.webhook_url(), unsigned, false).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()[CONTENT_TYPE],
        "text/plain; charset=utf-8"
    );
    assert_eq!(
        text(&response),
        "missing webhook signature header `x-videonest-signature`"
    );

    // The signature of one body on another.
    let mut tampered = signed(VN_BODY);
    *tampered.body_mut() = Full::new(Bytes::from(
        String::from_utf8(VN_BODY.to_vec())
            .unwrap()
            .replace("vid_abc123", "vid_evil99"),
    ));
    let response = send(&stack.webhook_url(), tampered, false).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(text(&response), "webhook signature does not match");

    // Signed with another secret.
    let other = videonest::signed_request("another secret", VN_BODY).unwrap();
    let response = send(&stack.webhook_url(), other, false).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    assert_eq!(count(&stack.calls), 0, "the handler never ran");
    stack.stop().await;
}

#[tokio::test]
async fn grpc_calls_are_untouched_by_the_layer() {
    let stack = Stack::start().await;
    let mut client = HealthClient::new(stack.grpc_channel().await);

    let response = guard(
        "Health/Check",
        client.check(HealthCheckRequest {
            service: String::new(),
        }),
    )
    .await
    .expect("Health/Check answers");
    assert_eq!(response.into_inner().status(), ServingStatus::Serving);

    // The Health service's own answer for a service it does not know.
    let status = guard(
        "Health/Check of an unknown service",
        client.check(HealthCheckRequest {
            service: "no.such.Service".to_owned(),
        }),
    )
    .await
    .expect_err("no status for an unknown service");
    assert_eq!(status.code(), Code::NotFound);

    assert_eq!(count(&stack.calls), 0);
    stack.stop().await;
}

#[tokio::test]
async fn unknown_grpc_paths_get_unimplemented() {
    let stack = Stack::start().await;
    let mut grpc = tonic::client::Grpc::new(stack.grpc_channel().await);

    for path in [
        "/no.such.Service/Check",
        "/grpc.health.v1.Health/NoSuchMethod",
    ] {
        guard("gRPC client ready", grpc.ready())
            .await
            .expect("the channel is ready");
        let status = guard(
            path,
            grpc.unary(
                tonic::Request::new(HealthCheckRequest::default()),
                PathAndQuery::from_static(path),
                tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default(),
            ),
        )
        .await
        .expect_err("no such method");
        assert_eq!(status.code(), Code::Unimplemented, "{path}: {status:?}");
    }

    assert_eq!(count(&stack.calls), 0);
    stack.stop().await;
}

#[tokio::test]
async fn map_body_answers_with_tonic_body() {
    let handler_calls = calls();
    let inner_calls = handler_calls.clone();
    let service = ServiceBuilder::new()
        .layer(
            videonest::layer([SECRET])
                .unwrap()
                .rejection_response(DefaultRejectionResponse.map_body(tonic::body::Body::new)),
        )
        .service_fn(move |request: Request<Full<Bytes>>| {
            inner_calls.fetch_add(1, Ordering::SeqCst);
            async move {
                Ok::<_, Infallible>(Response::new(tonic::body::Body::new(request.into_body())))
            }
        });

    // Refused: 401 with the text reason, the Rejection in the extensions, and the layer's
    // `Connection: close` (an HTTP/1.1 request whose body was left unread).
    let mut unsigned = signed(VN_BODY);
    unsigned.headers_mut().remove(videonest::SIGNATURE_HEADER);
    let response: Response<tonic::body::Body> =
        guard("unsigned", service.clone().oneshot(unsigned))
            .await
            .unwrap();
    assert_eq!(response.headers()[CONNECTION], "close");
    let (rejection, text) = expect_rejection(response, StatusCode::UNAUTHORIZED, SECRET).await;
    assert!(matches!(
        rejection,
        Rejection::Signature(SignatureError::Missing { .. })
    ));
    assert_eq!(
        text,
        "missing webhook signature header `x-videonest-signature`"
    );

    // Read in full, then refused: no `Connection` header.
    let mut tampered = signed(VN_BODY);
    *tampered.body_mut() = Full::new(Bytes::from_static(b"{}"));
    let response = guard("tampered", service.clone().oneshot(tampered))
        .await
        .unwrap();
    assert!(response.headers().get(CONNECTION).is_none());
    let (rejection, _) = expect_rejection(response, StatusCode::UNAUTHORIZED, SECRET).await;
    assert!(matches!(
        rejection,
        Rejection::Signature(SignatureError::Mismatch)
    ));
    assert_eq!(count(&handler_calls), 0);

    // Signed: the inner service's own response.
    let response = guard("signed", service.oneshot(signed(VN_BODY)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_bytes(response.into_body()).await, VN_BODY);
    assert_eq!(count(&handler_calls), 1);
}

/// What the README warns against: the layer around the whole gRPC server (which compiles with
/// `map_body`) refuses every gRPC call, since gRPC calls carry no webhook signature.
#[tokio::test]
async fn the_layer_around_the_whole_grpc_server_refuses_grpc_calls() {
    let (_reporter, health) = tonic_health::server::health_reporter();
    let layer = videonest::layer([SECRET])
        .unwrap()
        .rejection_response(DefaultRejectionResponse.map_body(tonic::body::Body::new));
    let listener = guard("bind", TcpListener::bind("127.0.0.1:0"))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (shutdown, signal) = oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .layer(layer)
            .add_service(health)
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                let _ = signal.await;
            }),
    );
    let channel = guard(
        "gRPC connect",
        Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect(),
    )
    .await
    .unwrap();
    let status = guard(
        "Health/Check",
        HealthClient::new(channel).check(HealthCheckRequest::default()),
    )
    .await
    .expect_err("the layer refuses the unsigned gRPC call");
    // tonic 0.14 reads the 401's text body as a gRPC frame and reports an `Internal` error
    // that names the HTTP status.
    assert!(
        status.code() == Code::Unauthenticated || status.message().contains("401"),
        "the refusal reaches the client: {status:?}"
    );

    let _ = shutdown.send(());
    guard("server shutdown", server).await.unwrap().unwrap();
}
