//! Nothing verified is lost: a signed body that is JSON reaches the handler, typed when it fits
//! the documented shape and raw otherwise; a strict layer refuses the shapes that do not fit.

mod common;

use axum::{Extension, Router, body::Body, routing::post};
use bytes::Bytes;
use common::{SECRET, VAI_BODY, VN_BODY, body_bytes, calls, count, expect_rejection};
use http::{Request, StatusCode};
use tower::ServiceExt;
use tower_webhook::{
    Rejection, Verified, VerifyWebhookLayer, WebhookEvent,
    provider::{videoaiditor, videonest},
    scheme::Hmac,
};

/// A handler that answers `type|id|typed-or-raw|shape error` for the event it got.
fn describe<E: WebhookEvent>(verified: &Verified<E>) -> String {
    format!(
        "{}|{}|{}",
        verified.event_type(),
        verified.id().unwrap_or("-"),
        verified.shape_error().unwrap_or("typed"),
    )
}

fn app<E>(layer: VerifyWebhookLayer<Hmac, E>, calls: &common::Calls) -> Router
where
    E: WebhookEvent + Clone + Send + Sync + 'static,
{
    let calls = calls.clone();
    Router::new()
        .route(
            "/webhook",
            post(move |Extension(verified): Extension<Verified<E>>| {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move { describe(&verified) }
            }),
        )
        .route_layer(layer)
}

async fn send(app: &Router, request: Request<http_body_util::Full<Bytes>>) -> (StatusCode, String) {
    let mut request = request.map(Body::new);
    *request.uri_mut() = "/webhook".parse().unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let text = body_bytes(response.into_body()).await;
    (status, String::from_utf8_lossy(&text).into_owned())
}

/// Sends `body`, signed, to the lossless and the strict layer; returns the handler's answer.
async fn lossless_and_strict<E>(
    layer: VerifyWebhookLayer<Hmac, E>,
    request: impl Fn() -> Request<http_body_util::Full<Bytes>>,
) -> String
where
    E: WebhookEvent + Clone + Send + Sync + 'static,
{
    let calls = calls();
    let (status, text) = send(&app(layer.clone(), &calls), request()).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(count(&calls), 1);

    let strict = calls_and_strict(layer, request()).await;
    if text.ends_with("|typed") {
        assert!(
            strict.is_none(),
            "a strict layer refused a typed event: {strict:?}"
        );
    } else {
        let rejection = strict.expect("a strict layer refuses what did not fit");
        assert!(matches!(rejection, Rejection::Decode(_)), "{rejection:?}");
    }
    text
}

/// `None` when a strict layer delivered the request, else its rejection.
async fn calls_and_strict<E>(
    layer: VerifyWebhookLayer<Hmac, E>,
    request: Request<http_body_util::Full<Bytes>>,
) -> Option<Rejection>
where
    E: WebhookEvent + Clone + Send + Sync + 'static,
{
    let calls = calls();
    let app = app(layer.strict(), &calls);
    let mut request = request.map(Body::new);
    *request.uri_mut() = "/webhook".parse().unwrap();
    let response = app.oneshot(request).await.unwrap();
    if response.status() == StatusCode::OK {
        assert_eq!(count(&calls), 1);
        return None;
    }
    assert_eq!(count(&calls), 0, "the handler ran for a refused request");
    Some(
        expect_rejection(response, StatusCode::BAD_REQUEST, SECRET)
            .await
            .0,
    )
}

fn vn() -> VerifyWebhookLayer<Hmac, videonest::Event> {
    videonest::layer([SECRET]).unwrap()
}

fn vai() -> VerifyWebhookLayer<Hmac, videoaiditor::Event> {
    videoaiditor::layer([SECRET]).unwrap()
}

#[tokio::test]
async fn documented_shapes_are_typed_in_both_modes() {
    let text =
        lossless_and_strict(vn(), || videonest::signed_request(SECRET, VN_BODY).unwrap()).await;
    assert_eq!(text, "video.processed|vid_abc123|typed");
    let text = lossless_and_strict(vai(), || {
        videoaiditor::signed_request(SECRET, VAI_BODY).unwrap()
    })
    .await;
    assert_eq!(text, "render.completed|render-id|typed");
}

#[tokio::test]
async fn videoaiditor_lone_surrogates_are_delivered() {
    // `JSON.stringify` writes a lone surrogate (a title cut inside an emoji) as `\ud83d`. Inside
    // `videoData`, which is kept as raw JSON, the event is still typed.
    let compact = r#"{"event":"render.completed","data":{"_id":"r1","status":"completed","videoData":{"title":"Clip \ud83d"}}}"#;
    let text = lossless_and_strict(vai(), || {
        videoaiditor::signed_request(SECRET, compact).unwrap()
    })
    .await;
    assert_eq!(text, "render.completed|r1|typed");

    // In a typed string field, serde_json cannot hold it in a `String`: delivered raw.
    let compact = r#"{"event":"render.completed","data":{"_id":"r1","status":"completed","error":"Clip \ud83d"}}"#;
    let text = lossless_and_strict(vai(), || {
        videoaiditor::signed_request(SECRET, compact).unwrap()
    })
    .await;
    assert!(
        text.starts_with("render.completed|r1|invalid `data`"),
        "{text}"
    );

    // The same payload sent pretty-printed verifies through the `JSON.stringify` fallback, and
    // is delivered raw too, in its signed form.
    let pretty = "{\n  \"event\": \"render.completed\",\n  \"data\": {\"_id\": \"r1\", \"status\": \"completed\", \"error\": \"Clip \\ud83d\"}\n}";
    let request = || {
        let mut request = videoaiditor::signed_request(SECRET, compact).unwrap();
        *request.body_mut() = http_body_util::Full::new(Bytes::from_static(pretty.as_bytes()));
        request.headers_mut().remove(http::header::CONTENT_LENGTH);
        request
    };
    let text = lossless_and_strict(vai(), request).await;
    assert!(
        text.starts_with("render.completed|r1|invalid `data`"),
        "{text}"
    );
}

#[tokio::test]
async fn undocumented_field_shapes_are_delivered_raw() {
    let cases: [(&str, &str); 3] = [
        (
            r#"{"event":"video.processed","timestamp":1767225600,"data":{"id":"vid_1","status":"ready"}}"#,
            "video.processed|vid_1|invalid type for `timestamp`",
        ),
        (
            r#"{"event":"video.failed","timestamp":"2026-03-30T10:15:00Z","data":{"id":"vid_2","error_code":4001}}"#,
            "video.failed|vid_2|invalid `data` for `video.failed` event",
        ),
        (
            r#"{"event":"distribution.failed","data":{"id":"vid_3","feed_id":"f","error_code":{"n":1}}}"#,
            "distribution.failed|vid_3|invalid `data` for `distribution.failed` event",
        ),
    ];
    for (body, want) in cases {
        let text =
            lossless_and_strict(vn(), || videonest::signed_request(SECRET, body).unwrap()).await;
        assert!(text.starts_with(want), "{body}: {text}");
    }

    let body = r#"{"event":"render.failed","data":{"_id":"r2","status":"failed","error":{"code":"E_GPU","message":"out of memory"}}}"#;
    let text = lossless_and_strict(vai(), || {
        videoaiditor::signed_request(SECRET, body).unwrap()
    })
    .await;
    assert!(
        text.starts_with("render.failed|r2|invalid `data` for `render.failed` event"),
        "{text}"
    );
}

#[tokio::test]
async fn raw_events_keep_type_id_and_data() {
    let body = r#"{"event":"video.failed","timestamp":7,"data":{"id":"vid_9","error_code":42}}"#;
    let app = Router::new()
        .route(
            "/webhook",
            post(
                |Extension(verified): Extension<Verified<videonest::Event>>| async move {
                    let videonest::Event::Raw(raw) = verified.event() else {
                        return format!("typed: {:?}", verified.event());
                    };
                    format!(
                        "{} {:?} {} {}",
                        raw.event_type(),
                        raw.id(),
                        raw.raw_timestamp().map_or("-", |t| t.get()),
                        raw.data().map_or("-", |d| d.get()),
                    )
                },
            ),
        )
        .route_layer(vn());
    let (status, text) = send(&app, videonest::signed_request(SECRET, body).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        text,
        r#"video.failed Some("vid_9") 7 {"id":"vid_9","error_code":42}"#
    );
}

#[tokio::test]
async fn json_that_is_not_an_event_is_delivered_raw_and_non_json_is_refused() {
    for body in [
        &b"[1,2]"[..],
        b"\"just a string\"",
        b"{}",
        br#"{"event":"a","event":"b"}"#,
    ] {
        let text = lossless_and_strict(vn(), || {
            videonest::signed_request(SECRET, Bytes::from_static(body)).unwrap()
        })
        .await;
        assert!(!text.ends_with("|typed"), "{text}");
    }
    let calls = calls();
    let (status, _) = send(
        &app(vn(), &calls),
        videonest::signed_request(SECRET, "{\"event\":").unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(count(&calls), 0);
}

#[tokio::test]
async fn reasons_stay_short_whatever_the_body_quotes() {
    let long = "x".repeat(1 << 20);
    for body in [
        format!(r#"{{"event":"video.processed","data":{{"id":"v","duration":"{long}"}}}}"#),
        format!(r#"{{"event":["{long}"],"data":{{}}}}"#),
        format!(r#"{{"event":"video.processed","timestamp":["{long}"],"data":{{}}}}"#),
    ] {
        let calls = calls();
        let app = app(vn(), &calls);
        let (status, text) = send(
            &app,
            videonest::signed_request(SECRET, body.clone()).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(text.len() < 300, "the shape error is {} bytes", text.len());
        // A strict layer refuses it with a short reason (`expect_rejection` checks the length).
        let rejection = calls_and_strict(vn(), videonest::signed_request(SECRET, body).unwrap())
            .await
            .expect("refused");
        assert!(matches!(rejection, Rejection::Decode(_)));
    }
}
