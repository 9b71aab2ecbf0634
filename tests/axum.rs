//! The layer in axum 0.8: `Router::layer`, `Router::route_layer` and `MethodRouter::layer`, read
//! with `Extension<Verified<E>>` or (feature `axum`) the `Verified<E>` extractor.

mod common;

use std::sync::atomic::Ordering;

use axum::{
    Extension, Router,
    body::{Body, Bytes},
    routing::{get, post},
};
use common::{Calls, SECRET, VN_BODY, body_bytes, calls, count, expect_rejection, guard};
use http::{Request, Response, StatusCode};
use tower::ServiceExt;
use tower_webhook::{
    Rejection, SignatureError, Verified, VerifyWebhookLayer, provider::videonest, scheme::Hmac,
};

fn layer() -> VerifyWebhookLayer<Hmac, videonest::Event> {
    videonest::layer([SECRET]).expect("valid secret")
}

fn signed(path: &str, body: &[u8]) -> Request<Body> {
    Request::post(path)
        .header(
            videonest::SIGNATURE_HEADER,
            common::signature_of(layer().scheme(), body),
        )
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_vec()))
        .unwrap()
}

fn wrongly_signed(path: &str) -> Request<Body> {
    Request::post(path)
        .header(videonest::SIGNATURE_HEADER, "0".repeat(64))
        .body(Body::from(VN_BODY))
        .unwrap()
}

fn unsigned(path: &str) -> Request<Body> {
    Request::post(path).body(Body::from(VN_BODY)).unwrap()
}

async fn send(app: &Router, request: Request<Body>) -> Response<Body> {
    guard("router", app.clone().oneshot(request))
        .await
        .unwrap_or_else(|never| match never {})
}

async fn text(response: Response<Body>) -> String {
    String::from_utf8(body_bytes(response.into_body()).await.to_vec()).unwrap()
}

/// A handler reading `Extension<Verified<videonest::Event>>` and the body; answers
/// `"<event type> <id>"` and checks the body is the signed bytes.
fn extension_handler(
    calls: Calls,
) -> impl Fn(Extension<Verified<videonest::Event>>, Bytes) -> std::future::Ready<String>
+ Clone
+ Send
+ Sync
+ 'static {
    move |Extension(verified): Extension<Verified<videonest::Event>>, body: Bytes| {
        calls.fetch_add(1, Ordering::SeqCst);
        assert_eq!(
            &body,
            verified.body(),
            "the handler's body is the signed bytes"
        );
        std::future::ready(format!(
            "{} {}",
            verified.event_type(),
            verified.id().unwrap_or("-")
        ))
    }
}

#[tokio::test]
async fn router_layer() {
    let calls = calls();
    let app = Router::new()
        .route("/webhook", post(extension_handler(calls.clone())))
        .layer(layer());

    let response = send(&app, signed("/webhook", VN_BODY)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(text(response).await, "video.processed vid_abc123");
    assert_eq!(count(&calls), 1);

    let response = send(&app, wrongly_signed("/webhook")).await;
    let (rejection, _) = expect_rejection(response, StatusCode::UNAUTHORIZED, SECRET).await;
    assert!(matches!(
        rejection,
        Rejection::Signature(SignatureError::Mismatch)
    ));

    // `Router::layer` also wraps the fallback: an unknown path without a signature is refused.
    let response = send(&app, unsigned("/no-such-path")).await;
    let (rejection, _) = expect_rejection(response, StatusCode::UNAUTHORIZED, SECRET).await;
    assert!(matches!(
        rejection,
        Rejection::Signature(SignatureError::Missing { .. })
    ));
    // …while a signed request to an unknown path passes the layer and gets the 404.
    let response = send(&app, signed("/no-such-path", VN_BODY)).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(count(&calls), 1);
}

#[tokio::test]
async fn router_route_layer() {
    let calls = calls();
    let app = Router::new()
        .route("/webhook", post(extension_handler(calls.clone())))
        .route_layer(layer());

    let response = send(&app, signed("/webhook", VN_BODY)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(text(response).await, "video.processed vid_abc123");

    let response = send(&app, unsigned("/webhook")).await;
    expect_rejection(response, StatusCode::UNAUTHORIZED, SECRET).await;

    let response = send(&app, wrongly_signed("/webhook")).await;
    expect_rejection(response, StatusCode::UNAUTHORIZED, SECRET).await;

    // Unknown paths are not wrapped by `route_layer`.
    let response = send(&app, unsigned("/no-such-path")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(count(&calls), 1);
}

#[tokio::test]
async fn method_router_layer() {
    let calls = calls();
    let app = Router::new()
        .route(
            "/webhook",
            post(extension_handler(calls.clone())).layer(layer()),
        )
        .route("/health", get(|| async { "ok" }));

    let response = send(&app, signed("/webhook", VN_BODY)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(text(response).await, "video.processed vid_abc123");

    let response = send(&app, wrongly_signed("/webhook")).await;
    expect_rejection(response, StatusCode::UNAUTHORIZED, SECRET).await;

    // Other routes are untouched.
    let response = send(&app, Request::get("/health").body(Body::empty()).unwrap()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = send(&app, unsigned("/no-such-path")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(count(&calls), 1);
}

#[tokio::test]
async fn decode_error_and_body_limit_under_axum() {
    let calls = calls();
    let app = Router::new()
        .route("/webhook", post(extension_handler(calls.clone())))
        .route_layer(layer().max_body_size(VN_BODY.len()));

    // Signed, but not JSON (signed JSON of any shape is delivered).
    let response = send(&app, signed("/webhook", b"[1, 2, 3")).await;
    let (rejection, _) = expect_rejection(response, StatusCode::BAD_REQUEST, SECRET).await;
    assert!(matches!(rejection, Rejection::Decode(_)));

    // At the limit, then one byte over.
    let response = send(&app, signed("/webhook", VN_BODY)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let over = [VN_BODY, b" "].concat();
    let response = send(&app, signed("/webhook", &over)).await;
    expect_rejection(response, StatusCode::PAYLOAD_TOO_LARGE, SECRET).await;
    assert_eq!(count(&calls), 1);
}

#[cfg(feature = "axum")]
mod extractor {
    use super::*;

    async fn handler(verified: Verified<videonest::Event>) -> String {
        format!(
            "{} {} {}",
            verified.event_type(),
            verified.id().unwrap_or("-"),
            verified.body().len()
        )
    }

    #[tokio::test]
    async fn verified_extractor() {
        let app = Router::new()
            .route("/webhook", post(handler))
            .route_layer(layer());
        let response = send(&app, signed("/webhook", VN_BODY)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            text(response).await,
            format!("video.processed vid_abc123 {}", VN_BODY.len())
        );
        let response = send(&app, wrongly_signed("/webhook")).await;
        expect_rejection(response, StatusCode::UNAUTHORIZED, SECRET).await;
    }

    #[tokio::test]
    async fn extractor_without_the_layer_is_a_500() {
        let app = Router::new().route("/webhook", post(handler));
        let response = send(&app, signed("/webhook", VN_BODY)).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let text = text(response).await;
        assert!(text.contains("Missing verified webhook"), "{text}");
    }

    #[tokio::test]
    async fn extractor_for_another_event_type_is_a_500() {
        // The layer only verifies (`Verified<()>`); the handler asks for a VideoNest event.
        let scheme = videonest::scheme().secret(SECRET).build().unwrap();
        let app = Router::new()
            .route("/webhook", post(handler))
            .route_layer(VerifyWebhookLayer::new(scheme));
        let response = send(&app, signed("/webhook", VN_BODY)).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let text = text(response).await;
        assert!(text.contains("Missing verified webhook"), "{text}");
        assert!(!text.contains(SECRET));
    }

    #[tokio::test]
    async fn extractor_with_verified_unit() {
        let scheme = videonest::scheme().secret(SECRET).build().unwrap();
        let app = Router::new()
            .route(
                "/webhook",
                post(|verified: Verified<()>| async move { verified.body().clone() }),
            )
            .route_layer(VerifyWebhookLayer::new(scheme));
        let response = send(&app, signed("/webhook", b"any signed bytes")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(text(response).await, "any signed bytes");
    }
}

/// Which status a GET to the webhook path gets: `MethodRouter::route_layer` leaves axum's 405
/// alone; `Router::route_layer` and `MethodRouter::layer` put the layer in front of it, so a GET
/// without a signature is answered 401.
#[tokio::test]
async fn other_methods_get_405_with_method_router_route_layer() {
    let get = || Request::get("/webhook").body(Body::empty()).unwrap();
    let calls = calls();
    let app = Router::new().route(
        "/webhook",
        post(extension_handler(calls.clone())).route_layer(layer()),
    );
    let response = send(&app, get()).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let response = send(&app, signed("/webhook", VN_BODY)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = send(&app, unsigned("/webhook")).await;
    expect_rejection(response, StatusCode::UNAUTHORIZED, SECRET).await;
    assert_eq!(count(&calls), 1);

    let router_route_layer = Router::new()
        .route("/webhook", post(extension_handler(calls.clone())))
        .route_layer(layer());
    let method_layer = Router::new().route(
        "/webhook",
        post(extension_handler(calls.clone())).layer(layer()),
    );
    for app in [router_route_layer, method_layer] {
        let response = send(&app, get()).await;
        expect_rejection(response, StatusCode::UNAUTHORIZED, SECRET).await;
    }
    assert_eq!(count(&calls), 1);
}
