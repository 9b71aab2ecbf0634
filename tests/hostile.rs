//! Hostile and malformed requests: each is refused with a 4xx (never a 5xx), promptly, without
//! panicking and without the handler running; the refusal is a short plain-text reason that never
//! contains the secret. Plus the few odd inputs that must be accepted.

mod common;

use std::fmt::Debug;

use bytes::Bytes;
use common::{
    Chunks, Failing, SECRET, VAI_BODY, VN_BODY, body_bytes, calls, count, echo, expect_rejection,
    guard, hex,
};
use http::{HeaderValue, Request, Response, StatusCode, header::CONTENT_LENGTH};
use http_body::Body;
use http_body_util::Full;
use tower::{ServiceBuilder, ServiceExt};
use tower_webhook::{
    BoxError, ConfigError, Rejection, SignatureError, Verified, VerifyWebhookLayer,
    provider::{videoaiditor, videonest},
    scheme::{Encoding, Grammar, Hmac, Scheme},
};

/// Sends `request` through `layer` over the echo handler, under the hang guard. Returns the
/// response and how many times the handler ran.
async fn send<Sc, E, B>(
    what: &str,
    layer: VerifyWebhookLayer<Sc, E>,
    request: Request<B>,
) -> (Response<Full<Bytes>>, usize)
where
    Sc: Scheme,
    E: Clone + Send + Sync + 'static,
    B: Body,
    B::Error: Into<BoxError>,
{
    let calls = calls();
    let handler_calls = calls.clone();
    let service = ServiceBuilder::new()
        .layer(layer)
        .service_fn(move |request| echo::<E>(handler_calls.clone(), request));
    let response = guard(what, service.oneshot(request))
        .await
        .unwrap_or_else(|err: std::convert::Infallible| match err {});
    (response, count(&calls))
}

/// Sends `request` and checks it is refused with `status` by the layer itself.
async fn refused<Sc, E, B>(
    what: &str,
    layer: VerifyWebhookLayer<Sc, E>,
    request: Request<B>,
    status: StatusCode,
) -> Rejection
where
    Sc: Scheme,
    E: Clone + Send + Sync + 'static,
    B: Body,
    B::Error: Into<BoxError>,
{
    let (response, calls) = send(what, layer, request).await;
    assert!(
        response.status().is_client_error(),
        "{what}: status {} is not a 4xx",
        response.status()
    );
    assert_eq!(response.status(), status, "{what}: status");
    assert_eq!(calls, 0, "{what}: the handler ran for a refused request");
    expect_rejection(response, status, SECRET).await.0
}

/// Sends `request` and checks the handler got it with a `Verified<E>`; returns that.
async fn accepted<Sc, E, B>(
    what: &str,
    layer: VerifyWebhookLayer<Sc, E>,
    request: Request<B>,
) -> Verified<E>
where
    Sc: Scheme,
    E: Clone + Send + Sync + 'static,
    B: Body,
    B::Error: Into<BoxError>,
{
    let (response, calls) = send(what, layer, request).await;
    assert_eq!(response.status(), StatusCode::OK, "{what}: status");
    assert_eq!(calls, 1, "{what}: handler calls");
    response
        .extensions()
        .get::<Verified<E>>()
        .cloned()
        .expect("the handler saw a Verified extension")
}

fn vn() -> VerifyWebhookLayer<Hmac, videonest::Event> {
    videonest::layer([SECRET]).expect("valid secret")
}

fn vai() -> VerifyWebhookLayer<Hmac, videoaiditor::Event> {
    videoaiditor::layer([SECRET]).expect("valid secret")
}

fn vn_signature(body: &[u8]) -> HeaderValue {
    common::signature_of(vn().scheme(), body)
}

fn vn_request<B>(signature: Option<HeaderValue>, body: B) -> Request<B> {
    let mut request = Request::post("/webhooks/videonest").body(body).unwrap();
    if let Some(signature) = signature {
        request
            .headers_mut()
            .append(videonest::SIGNATURE_HEADER, signature);
    }
    request
}

fn is_malformed(rejection: &Rejection) -> bool {
    matches!(
        rejection,
        Rejection::Signature(SignatureError::Malformed { .. })
    )
}

#[tokio::test]
async fn empty_body_with_the_signature_of_the_empty_body_is_not_an_event() {
    let request = vn_request(Some(vn_signature(b"")), Full::new(Bytes::new()));
    let rejection = refused("empty signed body", vn(), request, StatusCode::BAD_REQUEST).await;
    assert!(matches!(rejection, Rejection::Decode(_)), "{rejection:?}");
}

#[tokio::test]
async fn empty_body_without_signature() {
    let request = vn_request(None, Full::new(Bytes::new()));
    let rejection = refused("empty unsigned", vn(), request, StatusCode::UNAUTHORIZED).await;
    assert!(
        matches!(
            rejection,
            Rejection::Signature(SignatureError::Missing { ref header })
                if header.as_str() == "x-videonest-signature"
        ),
        "{rejection:?}"
    );
}

#[tokio::test]
async fn huge_header_value() {
    let value = HeaderValue::from_bytes(&vec![b'a'; 64 * 1024]).unwrap();
    let request = vn_request(Some(value), Full::new(Bytes::from_static(VN_BODY)));
    let rejection = refused("64 KiB header", vn(), request, StatusCode::UNAUTHORIZED).await;
    assert!(is_malformed(&rejection), "{rejection:?}");
}

#[tokio::test]
async fn non_utf8_header_value() {
    let mut bytes = vec![0xff, 0xfe, 0x80, 0xc3, 0x28];
    bytes.extend(std::iter::repeat_n(b'a', 59));
    let value = HeaderValue::from_bytes(&bytes).unwrap();
    let request = vn_request(Some(value), Full::new(Bytes::from_static(VN_BODY)));
    let rejection = refused("non-UTF-8 header", vn(), request, StatusCode::UNAUTHORIZED).await;
    assert!(is_malformed(&rejection), "{rejection:?}");
}

#[tokio::test]
async fn repeated_signature_headers_even_if_both_valid() {
    let mut request = vn_request(
        Some(vn_signature(VN_BODY)),
        Full::new(Bytes::from_static(VN_BODY)),
    );
    request
        .headers_mut()
        .append(videonest::SIGNATURE_HEADER, vn_signature(VN_BODY));
    let rejection = refused("repeated", vn(), request, StatusCode::UNAUTHORIZED).await;
    assert!(
        matches!(
            rejection,
            Rejection::Signature(SignatureError::Repeated { .. })
        ),
        "{rejection:?}"
    );
}

#[tokio::test]
async fn empty_header_value() {
    let request = vn_request(
        Some(HeaderValue::from_static("")),
        Full::new(Bytes::from_static(VN_BODY)),
    );
    let rejection = refused("empty header", vn(), request, StatusCode::UNAUTHORIZED).await;
    assert!(
        matches!(
            rejection,
            Rejection::Signature(SignatureError::Malformed { .. } | SignatureError::Missing { .. })
        ),
        "{rejection:?}"
    );
}

#[tokio::test]
async fn hex_signature_variants() {
    let signature = vn_signature(VN_BODY).to_str().unwrap().to_owned();
    assert_eq!(signature.len(), 64);

    let malformed = [
        ("non-hex", "zz".repeat(32)),
        ("63 hex digits", signature[..63].to_owned()),
        ("65 hex digits", format!("{signature}0")),
        ("upper-case hex", signature.to_uppercase()),
        ("sha256= prefix", format!("sha256={signature}")),
        (
            "tab inside",
            format!("{}\t{}", &signature[..32], &signature[32..]),
        ),
        (
            "space inside",
            format!("{} {}", &signature[..32], &signature[32..]),
        ),
        ("0x prefix", format!("0x{}", &signature[2..])),
        ("128 hex digits", signature.repeat(2)),
    ];
    for (what, value) in malformed {
        let request = vn_request(
            Some(HeaderValue::from_str(&value).unwrap()),
            Full::new(Bytes::from_static(VN_BODY)),
        );
        let rejection = refused(what, vn(), request, StatusCode::UNAUTHORIZED).await;
        assert!(is_malformed(&rejection), "{what}: {rejection:?}");
    }

    let mismatched = [
        ("zero MAC", "0".repeat(64)),
        ("last digit changed", {
            let mut s = signature.clone();
            let last = if s.ends_with('0') { "1" } else { "0" };
            s.replace_range(63.., last);
            s
        }),
    ];
    for (what, value) in mismatched {
        let request = vn_request(
            Some(HeaderValue::from_str(&value).unwrap()),
            Full::new(Bytes::from_static(VN_BODY)),
        );
        let rejection = refused(what, vn(), request, StatusCode::UNAUTHORIZED).await;
        assert!(
            matches!(rejection, Rejection::Signature(SignatureError::Mismatch)),
            "{what}: {rejection:?}"
        );
    }

    // Optional white space around the value is not part of it (HTTP strips it).
    for (what, value) in [
        ("leading and trailing spaces", format!("  {signature} ")),
        ("leading and trailing tabs", format!("\t{signature}\t")),
        ("leading space", format!(" {signature}")),
    ] {
        let request = vn_request(
            Some(HeaderValue::from_str(&value).unwrap()),
            Full::new(Bytes::from_static(VN_BODY)),
        );
        let verified = accepted(what, vn(), request).await;
        assert_eq!(verified.event_type(), "video.processed", "{what}");
    }
}

#[tokio::test]
async fn base64_signature_variants() {
    let scheme = || {
        Hmac::sha256("x-sig")
            .encoding(Encoding::Base64)
            .secret(SECRET)
            .build()
            .unwrap()
    };
    // A body whose standard base64 MAC uses `+` or `/`, so the URL-safe spelling differs.
    let (body, signature) = (0..)
        .map(|i| format!("{{\"n\":{i}}}"))
        .map(|body| {
            let signature = common::signature_of(&scheme(), body.as_bytes())
                .to_str()
                .unwrap()
                .to_owned();
            (body, signature)
        })
        .find(|(_, signature)| signature.contains(['+', '/']))
        .unwrap();
    assert_eq!(signature.len(), 44);
    assert!(signature.ends_with('=') && !signature.ends_with("=="));

    let request_with = |value: &str| {
        Request::post("/hook")
            .header("x-sig", HeaderValue::from_str(value).unwrap())
            .body(Full::new(Bytes::from(body.clone())))
            .unwrap()
    };

    let verified = accepted(
        "padded standard base64",
        VerifyWebhookLayer::new(scheme()),
        request_with(&signature),
    )
    .await;
    assert_eq!(verified.body(), body.as_bytes());

    // The last symbol before the padding carries two unused bits; setting one gives another
    // spelling of the same MAC, which is not canonical base64.
    let non_canonical = {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut bytes = signature.clone().into_bytes();
        let index = ALPHABET.iter().position(|&c| c == bytes[42]).unwrap();
        bytes[42] = ALPHABET[index ^ 1];
        String::from_utf8(bytes).unwrap()
    };
    let malformed = [
        (
            "unpadded (43 chars)",
            signature.trim_end_matches('=').to_owned(),
        ),
        (
            "URL-safe alphabet",
            signature.replace('+', "-").replace('/', "_"),
        ),
        ("junk character", format!("*{}", &signature[1..])),
        ("45 chars", format!("{signature}=")),
        ("45 chars, data", format!("A{signature}")),
        ("non-canonical trailing bits", non_canonical),
        ("hex instead of base64", hex(&[0xab; 32])),
        ("empty", String::new()),
    ];
    for (what, value) in malformed {
        let rejection = refused(
            what,
            VerifyWebhookLayer::new(scheme()),
            request_with(&value),
            StatusCode::UNAUTHORIZED,
        )
        .await;
        assert!(is_malformed(&rejection), "{what}: {rejection:?}");
    }
}

#[tokio::test]
async fn body_failing_mid_stream() {
    let request = vn_request(
        Some(vn_signature(VN_BODY)),
        Failing::after([&VN_BODY[..20]]),
    );
    let rejection = refused("mid-stream error", vn(), request, StatusCode::BAD_REQUEST).await;
    assert!(matches!(rejection, Rejection::Body(_)), "{rejection:?}");
}

#[tokio::test]
async fn body_failing_on_first_poll() {
    let request = vn_request(
        Some(vn_signature(VN_BODY)),
        Failing::after(Vec::<Bytes>::new()),
    );
    let rejection = refused("first-poll error", vn(), request, StatusCode::BAD_REQUEST).await;
    assert!(matches!(rejection, Rejection::Body(_)), "{rejection:?}");
}

#[tokio::test]
async fn non_utf8_body_correctly_signed() {
    let body: &[u8] = &[0xff, 0xfe, b'{', 0x00, 0x80, b'}', 0xc3];

    let request = vn_request(
        Some(vn_signature(body)),
        Full::new(Bytes::from_static(body)),
    );
    let rejection = refused("VideoNest, binary", vn(), request, StatusCode::BAD_REQUEST).await;
    assert!(matches!(rejection, Rejection::Decode(_)), "{rejection:?}");

    // A layer that does not decode accepts any signed bytes.
    let scheme = videonest::scheme().secret(SECRET).build().unwrap();
    let request = vn_request(
        Some(common::signature_of(&scheme, body)),
        Full::new(Bytes::from_static(body)),
    );
    let verified = accepted("generic, binary", VerifyWebhookLayer::new(scheme), request).await;
    assert_eq!(verified.body(), body);
}

#[tokio::test]
async fn body_at_the_limit_and_one_byte_over() {
    const LIMIT: usize = 1000;
    let scheme = || Hmac::sha256("x-sig").secret(SECRET).build().unwrap();
    let layer = || VerifyWebhookLayer::new(scheme()).max_body_size(LIMIT);
    let at_limit = vec![b'a'; LIMIT];
    let over = vec![b'a'; LIMIT + 1];
    let request = |body: &[u8], framed: bool| {
        let builder = Request::post("/hook").header("x-sig", common::signature_of(&scheme(), body));
        if framed {
            builder.body(http_body_util::Either::Left(Chunks::split(body, 3)))
        } else {
            builder.body(http_body_util::Either::Right(Full::new(
                Bytes::copy_from_slice(body),
            )))
        }
        .unwrap()
    };

    for framed in [false, true] {
        let verified = accepted("at the limit", layer(), request(&at_limit, framed)).await;
        assert_eq!(verified.body().len(), LIMIT, "framed: {framed}");
        let rejection = refused(
            "one byte over",
            layer(),
            request(&over, framed),
            StatusCode::PAYLOAD_TOO_LARGE,
        )
        .await;
        assert!(
            matches!(rejection, Rejection::PayloadTooLarge { limit: LIMIT }),
            "framed: {framed}: {rejection:?}"
        );
    }

    // Content-Length exactly at the limit is fine; one above is refused.
    let mut ok = request(&at_limit, false);
    ok.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(LIMIT));
    accepted("Content-Length at the limit", layer(), ok).await;
    let mut too_big = request(&at_limit, true);
    too_big
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(LIMIT + 1));
    refused(
        "Content-Length one over",
        layer(),
        too_big,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;

    // A Content-Length that lies low does not lift the limit while reading.
    let mut lying = request(&vec![b'a'; 5 * LIMIT], true);
    lying
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(10));
    refused(
        "lying Content-Length",
        layer(),
        lying,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
}

#[tokio::test]
async fn many_tiny_frames() {
    // One byte per frame: the collector must keep going (and yield) without hanging.
    let request = vn_request(
        Some(vn_signature(VN_BODY)),
        Chunks::split(VN_BODY, VN_BODY.len()),
    );
    let verified = accepted("one byte per frame", vn(), request).await;
    assert_eq!(verified.body(), VN_BODY);

    let body = vec![b' '; 20_000];
    let scheme = Hmac::sha256("x-sig").secret(SECRET).build().unwrap();
    let request = Request::post("/hook")
        .header("x-sig", common::signature_of(&scheme, &body))
        .body(Chunks::split(&body, body.len()))
        .unwrap();
    let verified = accepted("20000 frames", VerifyWebhookLayer::new(scheme), request).await;
    assert_eq!(verified.body().len(), 20_000);
}

fn vai_request(signature: HeaderValue, body: Vec<u8>) -> Request<Full<Bytes>> {
    Request::post("/webhooks/videoaiditor")
        .header(videoaiditor::SIGNATURE_HEADER, signature)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

#[tokio::test]
async fn videoaiditor_deeply_nested_json() {
    let wrong = HeaderValue::from_str(&"ab".repeat(32)).unwrap();
    let unclosed = vec![b'['; 100_000];
    let balanced = [vec![b'['; 100_000], vec![b']'; 100_000]].concat();
    let objects = [
        "{\"a\":".repeat(50_000).into_bytes(),
        b"1".to_vec(),
        vec![b'}'; 50_000],
    ]
    .concat();
    for (what, body) in [
        ("100000 unclosed [", unclosed.clone()),
        ("100000 balanced []", balanced.clone()),
        ("50000 nested objects", objects.clone()),
    ] {
        let rejection = refused(
            what,
            vai(),
            vai_request(wrong.clone(), body),
            StatusCode::UNAUTHORIZED,
        )
        .await;
        assert!(
            matches!(rejection, Rejection::Signature(SignatureError::Mismatch)),
            "{what}: {rejection:?}"
        );
    }

    // Correctly signed (over the raw bytes): not JSON is a 400, deep but valid JSON is
    // delivered raw (a strict layer refuses it); never a crash.
    let signature = common::signature_of(vai().scheme(), &unclosed);
    let rejection = refused(
        "signed unclosed",
        vai(),
        vai_request(signature, unclosed),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(matches!(rejection, Rejection::Decode(_)), "{rejection:?}");
    for (what, body) in [
        ("signed balanced", balanced),
        ("signed nested objects", objects),
    ] {
        let signature = common::signature_of(vai().scheme(), &body);
        let verified = accepted(what, vai(), vai_request(signature.clone(), body.clone())).await;
        assert!(
            matches!(verified.event(), videoaiditor::Event::Raw(raw) if raw.shape_error().is_some()),
            "{what}"
        );
        let rejection = refused(
            what,
            vai().strict(),
            vai_request(signature, body),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(
            matches!(rejection, Rejection::Decode(_)),
            "{what}: {rejection:?}"
        );
    }
}

#[tokio::test]
async fn videoaiditor_garbage_with_wrong_signature() {
    let wrong = HeaderValue::from_str(&"cd".repeat(32)).unwrap();
    let bodies: [&[u8]; 8] = [
        b"",
        b"null",
        b"\"\\ud800\"",
        b"{\"a\":1,\"a\":2}",
        b"[1e400, -1e-400, 123456789012345678901234567890]",
        b"{\"event\":\"render.completed\"",
        &[0xff, 0xfe, 0xfd],
        b"\xef\xbb\xbf{\"event\":\"render.completed\",\"data\":{}}",
    ];
    for body in bodies {
        let what = format!("garbage {:?}", String::from_utf8_lossy(body));
        let rejection = refused(
            &what,
            vai(),
            vai_request(wrong.clone(), body.to_vec()),
            StatusCode::UNAUTHORIZED,
        )
        .await;
        assert!(
            matches!(rejection, Rejection::Signature(SignatureError::Mismatch)),
            "{what}: {rejection:?}"
        );
    }
    // A sanity check that the same layer does accept its own compact body.
    let signature = common::signature_of(vai().scheme(), VAI_BODY);
    let verified = accepted(
        "VideoAIditor compact",
        vai(),
        vai_request(signature, VAI_BODY.to_vec()),
    )
    .await;
    assert_eq!(verified.event_type(), "render.completed");
}

#[test]
fn config_errors() {
    assert_eq!(
        videonest::layer(Vec::<String>::new()).unwrap_err(),
        ConfigError::NoSecret
    );
    assert_eq!(
        videoaiditor::layer(Vec::<&str>::new()).unwrap_err(),
        ConfigError::NoSecret
    );
    assert_eq!(
        videonest::layer([""]).unwrap_err(),
        ConfigError::EmptySecret { index: 0 }
    );
    assert_eq!(
        videoaiditor::layer([SECRET, ""]).unwrap_err(),
        ConfigError::EmptySecret { index: 1 }
    );
    assert_eq!(
        Hmac::sha256("x-sig").build().unwrap_err(),
        ConfigError::NoSecret
    );
    assert_eq!(
        Hmac::sha256("x-sig")
            .secret(Vec::<u8>::new())
            .build()
            .unwrap_err(),
        ConfigError::EmptySecret { index: 0 }
    );
    assert!(matches!(
        Hmac::sha256("bad header").secret(SECRET).build(),
        Err(ConfigError::InvalidHeaderName { .. })
    ));
    assert!(matches!(
        Hmac::sha256("x-sig")
            .grammar(Grammar::prefixed("a\nb"))
            .secret(SECRET)
            .build(),
        Err(ConfigError::InvalidPrefix { .. })
    ));
    // The error messages do not carry secrets either.
    let err = videoaiditor::layer([SECRET, ""]).unwrap_err();
    assert!(!err.to_string().contains(SECRET));
}

fn assert_no_secret(what: &str, value: &impl Debug) {
    let text = format!("{value:?}");
    let pretty = format!("{value:#?}");
    for text in [text, pretty] {
        assert!(
            !text.contains(SECRET),
            "{what} Debug shows the secret: {text}"
        );
        assert!(
            !text.contains(&hex(SECRET.as_bytes())),
            "{what} Debug shows the secret in hex: {text}"
        );
    }
}

#[test]
fn debug_output_never_shows_the_secret() {
    let builder = videonest::scheme().secret(SECRET);
    assert_no_secret("builder", &builder);
    let scheme = builder.build().unwrap();
    assert_no_secret("scheme", &scheme);
    assert_no_secret("videonest layer", &vn());
    assert_no_secret("videoaiditor layer", &vai());
    assert_no_secret("videoaiditor scheme", vai().scheme());
    assert_no_secret("generic layer", &VerifyWebhookLayer::new(scheme.clone()));
    assert_no_secret("secret", &tower_webhook::Secret::from(SECRET));
    let service = ServiceBuilder::new()
        .layer(vn())
        .service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
        });
    assert_no_secret("service", &service);
    let (head, ()) = Request::post("/")
        .header(
            videonest::SIGNATURE_HEADER,
            common::signature_of(&scheme, VN_BODY),
        )
        .body(())
        .unwrap()
        .into_parts();
    assert_no_secret("signature", &scheme.signature(&head).unwrap());
}

#[tokio::test]
async fn rejection_texts_name_the_problem_without_echoing_input() {
    // A header value full of text that must not come back in the answer.
    let echo_bait = format!("<script>{SECRET}</script>");
    let request = vn_request(
        Some(HeaderValue::from_str(&echo_bait).unwrap()),
        Full::new(Bytes::from_static(VN_BODY)),
    );
    let (response, calls) = send("bait", vn(), request).await;
    assert_eq!(calls, 0);
    let (_, text) = expect_rejection(response, StatusCode::UNAUTHORIZED, SECRET).await;
    assert!(!text.contains("script"), "{text}");
    assert!(text.to_lowercase().contains("signature"), "{text}");

    let request = vn_request(None, Full::new(Bytes::from_static(VN_BODY)));
    let (response, _) = send("missing", vn(), request).await;
    let body = body_bytes(response.into_body()).await;
    let text = String::from_utf8_lossy(&body).to_lowercase();
    assert!(text.contains("x-videonest-signature"), "{text}");
}

#[tokio::test]
async fn odd_but_signed_videonest_events() {
    // An event type the crate does not know (such as the test ping) is accepted, raw.
    let ping: &[u8] = br#"{"event":"endpoint.ping","data":{"id":"ping_1"}}"#;
    let request = vn_request(
        Some(vn_signature(ping)),
        Full::new(Bytes::from_static(ping)),
    );
    let verified = accepted("unknown event type", vn(), request).await;
    assert_eq!(verified.event_type(), "endpoint.ping");
    assert_eq!(verified.id(), Some("ping_1"));
    match verified.event() {
        videonest::Event::Raw(raw) => {
            assert_eq!(raw.event_type(), "endpoint.ping");
            assert_eq!(raw.data().unwrap().get(), r#"{"id":"ping_1"}"#);
            assert_eq!(raw.shape_error(), None);
        }
        other => panic!("decoded as {other:?}"),
    }

    // Signed JSON that is not a VideoNest event is delivered raw, with the reason; a strict
    // layer refuses it with 400.
    let not_events: [&'static [u8]; 5] = [
        b"{}",
        b"[]",
        b"null",
        br#"{"event":42,"data":{}}"#,
        br#"{"data":{"id":"vid_abc123"}}"#,
    ];
    for body in not_events {
        let what = String::from_utf8_lossy(body).into_owned();
        let request = || {
            vn_request(
                Some(vn_signature(body)),
                Full::new(Bytes::from_static(body)),
            )
        };
        let verified = accepted(&what, vn(), request()).await;
        assert!(
            matches!(verified.event(), videonest::Event::Raw(raw) if raw.shape_error().is_some()),
            "{what}: {verified:?}"
        );
        assert_eq!(verified.body().as_ref(), body);
        let rejection = refused(&what, vn().strict(), request(), StatusCode::BAD_REQUEST).await;
        assert!(
            matches!(rejection, Rejection::Decode(_)),
            "{what}: {rejection:?}"
        );
    }
}
