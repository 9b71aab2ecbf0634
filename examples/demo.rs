//! The main demo: an axum app with both provider presets on 127.0.0.1, fed real signed requests
//! (valid events of every type, and every kind of bad request), with a table of what happened.
//!
//! ```text
//! cargo run --example demo
//! ```
//!
//! The secrets below are demo values embedded here; use your providers' real secrets in an app.
//! Exits 0 when every request was answered as expected, 1 otherwise.

use std::{net::SocketAddr, process::ExitCode};

use axum::{Extension, Router, routing::post};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use tower::ServiceBuilder;
use tower_webhook::{
    Verified,
    dedupe::{DUPLICATE_HEADER, DedupeLayer, store::MemoryStore},
    provider::{videoaiditor, videonest},
    scheme::Hmac,
};

const VIDEONEST_SECRET: &str = "demo_videonest_signing_secret";
const VIDEOAIDITOR_SECRET: &str = "demo_videoaiditor_secret";
const VIDEOAIDITOR_OLD_SECRET: &str = "demo_videoaiditor_previous_secret";
const WRONG_SECRET: &str = "not_the_secret";
/// The demo's body limit for VideoNest, kept small so the oversized request stays quick.
const VIDEONEST_MAX_BODY: usize = 64 * 1024;

async fn videonest_handler(Extension(verified): Extension<Verified<videonest::Event>>) -> String {
    let detail = match verified.event() {
        videonest::Event::VideoFailed(payload) => {
            format!(
                " error_code={}",
                payload.data.error_code.as_deref().unwrap_or("-")
            )
        }
        videonest::Event::DistributionCompleted(payload)
        | videonest::Event::DistributionFailed(payload) => format!(
            " partner={}",
            payload.data.partner_name.as_deref().unwrap_or("-")
        ),
        videonest::Event::Raw(raw) => match raw.shape_error() {
            None => " (unknown type, kept raw)".to_owned(),
            Some(reason) => format!(" (kept raw: {reason})"),
        },
        videonest::Event::VideoProcessed(_) | videonest::Event::VideoPublished(_) => String::new(),
    };
    format!(
        "handler got {} id={}{detail}",
        verified.event_type(),
        verified.id().unwrap_or("-")
    )
}

async fn videoaiditor_handler(
    Extension(verified): Extension<Verified<videoaiditor::Event>>,
) -> String {
    let form = if verified.is_reserialized() {
        " (signed as JSON.stringify)"
    } else {
        ""
    };
    format!(
        "handler got {} _id={}{form}",
        verified.event_type(),
        verified.id().unwrap_or("-")
    )
}

/// One request of the demo.
struct Case {
    route: &'static str,
    name: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Bytes,
    expected: StatusCode,
}

fn sign(scheme: &Hmac, body: &[u8]) -> String {
    scheme.sign(body, None, &http::HeaderMap::new())[scheme.header()]
        .to_str()
        .expect("hex is ASCII")
        .to_owned()
}

/// A request signed by `scheme` over exactly the bytes it sends.
fn signed(
    route: &'static str,
    name: &'static str,
    scheme: &Hmac,
    header: &'static str,
    body: &str,
    expected: StatusCode,
) -> Case {
    Case {
        route,
        name,
        headers: vec![(header, sign(scheme, body.as_bytes()))],
        body: Bytes::from(body.to_owned()),
        expected,
    }
}

fn cases() -> Result<Vec<Case>, tower_webhook::ConfigError> {
    let vn = videonest::scheme().secret(VIDEONEST_SECRET).build()?;
    let vn_wrong = videonest::scheme().secret(WRONG_SECRET).build()?;
    let vai = videoaiditor::scheme().secret(VIDEOAIDITOR_SECRET).build()?;
    let vai_old = videoaiditor::scheme()
        .secret(VIDEOAIDITOR_OLD_SECRET)
        .build()?;

    let vn_header = videonest::SIGNATURE_HEADER;
    let vai_header = videoaiditor::SIGNATURE_HEADER;
    let mut cases = Vec::new();

    let processed = r#"{"event":"video.processed","timestamp":"2026-03-30T10:15:00Z","data":{"id":"vid_abc123","title":"My Video Title","status":"ready","duration":142,"channel_id":"ch_abc123"}}"#;
    cases.push(signed(
        "/videonest",
        "video.processed",
        &vn,
        vn_header,
        processed,
        StatusCode::OK,
    ));
    cases.push(signed(
        "/videonest",
        "the same video.processed again (a retry)",
        &vn,
        vn_header,
        processed,
        StatusCode::OK,
    ));
    cases.push(signed(
        "/videonest",
        "video.published",
        &vn,
        vn_header,
        r#"{"event":"video.published","timestamp":"2026-03-30T10:16:00Z","data":{"id":"vid_abc123","title":"My Video Title","status":"published","duration":142,"channel_id":"ch_abc123"}}"#,
        StatusCode::OK,
    ));
    cases.push(signed(
        "/videonest",
        "video.failed",
        &vn,
        vn_header,
        r#"{"event":"video.failed","timestamp":"2026-03-30T10:17:00Z","data":{"id":"vid_def456","title":"Broken upload","status":"failed","channel_id":"ch_abc123","error_code":"TRANSCODE_FAILED"}}"#,
        StatusCode::OK,
    ));
    cases.push(signed(
        "/videonest",
        "distribution.completed",
        &vn,
        vn_header,
        r#"{"event":"distribution.completed","timestamp":"2026-03-30T10:18:00Z","data":{"id":"vid_abc123","feed_id":"feed_9","partner_name":"Roku"}}"#,
        StatusCode::OK,
    ));
    cases.push(signed(
        "/videonest",
        "distribution.failed",
        &vn,
        vn_header,
        r#"{"event":"distribution.failed","timestamp":"2026-03-30T10:20:00Z","data":{"id":"vid_abc123","feed_id":"feed_9","partner_name":"Roku","error_code":"PARTNER_TIMEOUT","error_message":"Partner did not respond"}}"#,
        StatusCode::OK,
    ));
    cases.push(signed(
        "/videonest",
        "unknown event (test ping)",
        &vn,
        vn_header,
        r#"{"event":"webhook.test","timestamp":"2026-03-30T10:00:00Z","data":{}}"#,
        StatusCode::OK,
    ));
    cases.push(signed(
        "/videonest",
        "undocumented shape (numeric timestamp)",
        &vn,
        vn_header,
        r#"{"event":"video.processed","timestamp":1774865700,"data":{"id":"vid_ghi789","status":"ready"}}"#,
        StatusCode::OK,
    ));
    cases.push(signed(
        "/videonest",
        "signed, but not JSON",
        &vn,
        vn_header,
        "hello, not json",
        StatusCode::BAD_REQUEST,
    ));

    cases.push(Case {
        route: "/videonest",
        name: "tampered body",
        headers: vec![(vn_header, sign(&vn, processed.as_bytes()))],
        body: Bytes::from(processed.replace("vid_abc123", "vid_evil99")),
        expected: StatusCode::UNAUTHORIZED,
    });
    cases.push(signed(
        "/videonest",
        "wrong secret",
        &vn_wrong,
        vn_header,
        processed,
        StatusCode::UNAUTHORIZED,
    ));
    cases.push(Case {
        route: "/videonest",
        name: "missing signature header",
        headers: vec![],
        body: Bytes::from_static(processed.as_bytes()),
        expected: StatusCode::UNAUTHORIZED,
    });
    cases.push(Case {
        route: "/videonest",
        name: "malformed signature (upper-case hex)",
        headers: vec![(vn_header, sign(&vn, processed.as_bytes()).to_uppercase())],
        body: Bytes::from_static(processed.as_bytes()),
        expected: StatusCode::UNAUTHORIZED,
    });
    let pretty_processed = serde_json::to_string_pretty(
        &serde_json::from_str::<serde_json::Value>(processed).expect("valid JSON"),
    )
    .expect("serialisable");
    cases.push(Case {
        route: "/videonest",
        name: "pretty-printed body, MAC of compact form",
        headers: vec![(vn_header, sign(&vn, processed.as_bytes()))],
        body: Bytes::from(pretty_processed),
        expected: StatusCode::UNAUTHORIZED,
    });
    let oversized = vec![b' '; VIDEONEST_MAX_BODY + 1];
    cases.push(Case {
        route: "/videonest",
        name: "oversized body",
        headers: vec![(vn_header, sign(&vn, &oversized))],
        body: Bytes::from(oversized),
        expected: StatusCode::PAYLOAD_TOO_LARGE,
    });

    let completed = r#"{"event":"render.completed","data":{"_id":"render-id","status":"completed","outputUrl":"https://cdn.example.com/video.mp4","error":"","videoId":"video-id","videoVersion":1,"videoData":{"title":"Demo","scenes":3},"createdAt":"2024-03-20T10:30:00Z","updatedAt":"2024-03-20T10:31:00Z"}}"#;
    cases.push(signed(
        "/videoaiditor",
        "render.completed",
        &vai,
        vai_header,
        completed,
        StatusCode::OK,
    ));
    cases.push(signed(
        "/videoaiditor",
        "render.failed",
        &vai,
        vai_header,
        r#"{"event":"render.failed","data":{"_id":"render-id-2","status":"failed","outputUrl":"","error":"Out of credits","videoId":"video-id","videoVersion":2,"createdAt":"2024-03-20T10:30:00Z","updatedAt":"2024-03-20T10:32:00Z"}}"#,
        StatusCode::OK,
    ));
    // The provider signs JSON.stringify(payload); the body on the wire is pretty-printed.
    let pretty_completed = "{\n  \"event\": \"render.completed\",\n  \"data\": {\n    \"_id\": \"render-id\",\n    \"status\": \"completed\",\n    \"outputUrl\": \"https://cdn.example.com/video.mp4\",\n    \"error\": \"\",\n    \"videoId\": \"video-id\",\n    \"videoVersion\": 1.0,\n    \"videoData\": {\n      \"title\": \"Demo\",\n      \"scenes\": 3\n    },\n    \"createdAt\": \"2024-03-20T10:30:00Z\",\n    \"updatedAt\": \"2024-03-20T10:31:00Z\"\n  }\n}\n";
    cases.push(Case {
        route: "/videoaiditor",
        name: "pretty-printed body (JSON.stringify MAC)",
        headers: vec![(vai_header, sign(&vai, completed.as_bytes()))],
        body: Bytes::from_static(pretty_completed.as_bytes()),
        expected: StatusCode::OK,
    });
    cases.push(signed(
        "/videoaiditor",
        "signed with the previous secret",
        &vai_old,
        vai_header,
        completed,
        StatusCode::OK,
    ));
    cases.push(signed(
        "/videoaiditor",
        "unknown event",
        &vai,
        vai_header,
        r#"{"event":"render.queued","data":{"_id":"render-id-3"}}"#,
        StatusCode::OK,
    ));
    cases.push(Case {
        route: "/videoaiditor",
        name: "tampered body",
        headers: vec![(vai_header, sign(&vai, completed.as_bytes()))],
        body: Bytes::from(completed.replace("completed", "failed")),
        expected: StatusCode::UNAUTHORIZED,
    });
    Ok(cases)
}

fn app() -> Result<Router, tower_webhook::ConfigError> {
    // `post(handler).route_layer(..)`: only POSTs are verified; other methods get axum's 405
    // and unknown paths its 404.
    // VideoNest deliveries are deduplicated too: a provider retry of a processed event is
    // answered 200 without running the handler again.
    let videonest = ServiceBuilder::new()
        .layer(videonest::layer([VIDEONEST_SECRET])?.max_body_size(VIDEONEST_MAX_BODY))
        .layer(DedupeLayer::<videonest::Event>::new(MemoryStore::new()));
    let videoaiditor = videoaiditor::layer([VIDEOAIDITOR_SECRET, VIDEOAIDITOR_OLD_SECRET])?;
    Ok(Router::new()
        .route("/videonest", post(videonest_handler).route_layer(videonest))
        .route(
            "/videoaiditor",
            post(videoaiditor_handler).route_layer(videoaiditor),
        ))
}

#[tokio::main]
async fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(axum::serve(listener, app()?).into_future());
    println!(
        "tower-webhook demo: axum app on http://{addr} (POST /videonest, POST /videoaiditor)\n"
    );

    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let cases = cases()?;
    println!(
        " #  {:<13} {:<42} {:>6}  {:<3}  what happened",
        "route", "request", "status", "ok"
    );
    println!("{}", "-".repeat(130));
    let mut failures = 0;
    for (i, case) in cases.iter().enumerate() {
        let mut request = Request::post(format!("http://{addr}{}", case.route))
            .header("content-type", "application/json");
        for (name, value) in &case.headers {
            request = request.header(*name, value);
        }
        let response = client
            .request(request.body(Full::new(case.body.clone()))?)
            .await?;
        let status = response.status();
        let duplicate = response.headers().contains_key(DUPLICATE_HEADER);
        let text = response.into_body().collect().await?.to_bytes();
        let text = String::from_utf8_lossy(&text);
        let text = if duplicate {
            format!("{} (handler not run again)", text.trim())
        } else {
            text.into_owned()
        };
        let ok = status == case.expected;
        failures += usize::from(!ok);
        println!(
            "{:>2}  {:<13} {:<42} {:>6}  {:<3}  {}",
            i + 1,
            case.route,
            case.name,
            status.as_u16(),
            if ok { "yes" } else { "NO" },
            text.trim()
        );
    }
    server.abort();
    println!();
    if failures == 0 {
        println!("all {} requests answered as expected", cases.len());
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "{failures} of {} requests were not answered as expected",
            cases.len()
        );
        Ok(ExitCode::FAILURE)
    }
}
