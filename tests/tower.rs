//! The layer in plain tower stacks: `ServiceBuilder`, concurrency limits and buffers inside and
//! outside it, zero-copy bodies, and body limits enforced without over-reading.

mod common;

use std::{
    collections::VecDeque,
    convert::Infallible,
    pin::Pin,
    sync::{Arc, Mutex, atomic::Ordering},
    task::{Context, Poll},
};

use bytes::Bytes;
use common::{
    Calls, Chunks, Counted, Endless, Failing, SECRET, body_bytes, calls, count, echo,
    expect_rejection, guard,
};
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use tower::{Service, ServiceBuilder, ServiceExt, buffer::Buffer, service_fn};
use tower_webhook::{
    Rejection, SignatureError, Verified, VerifyWebhook, VerifyWebhookLayer,
    scheme::{Hmac, Scheme},
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const HEADER: &str = "x-test-signature";

fn scheme() -> Hmac {
    Hmac::sha256(HEADER)
        .secret(SECRET)
        .build()
        .expect("valid scheme")
}

fn layer() -> VerifyWebhookLayer<Hmac> {
    VerifyWebhookLayer::new(scheme())
}

fn signed(body: &'static [u8]) -> Request<Full<Bytes>> {
    Request::post("/hook")
        .header(HEADER, common::signature_of(&scheme(), body))
        .body(Full::new(Bytes::from_static(body)))
        .unwrap()
}

fn wrongly_signed(body: &'static [u8]) -> Request<Full<Bytes>> {
    Request::post("/hook")
        .header(HEADER, "00".repeat(32))
        .body(Full::new(Bytes::from_static(body)))
        .unwrap()
}

fn unsigned(body: &'static [u8]) -> Request<Full<Bytes>> {
    Request::post("/hook")
        .body(Full::new(Bytes::from_static(body)))
        .unwrap()
}

#[tokio::test]
async fn service_builder_over_service_fn() {
    let calls = calls();
    let handler_calls = calls.clone();
    let service = ServiceBuilder::new()
        .layer(layer())
        .service_fn(move |request| echo::<()>(handler_calls.clone(), request));

    let response = guard("valid", service.clone().oneshot(signed(b"hello")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let verified = response
        .extensions()
        .get::<Verified<()>>()
        .cloned()
        .unwrap();
    assert_eq!(verified.body(), &b"hello"[..]);
    assert!(!verified.is_reserialized());
    assert_eq!(body_bytes(response.into_body()).await, &b"hello"[..]);
    assert_eq!(count(&calls), 1);

    let response = guard(
        "mismatch",
        service.clone().oneshot(wrongly_signed(b"hello")),
    )
    .await
    .unwrap();
    let (rejection, _) = expect_rejection(response, StatusCode::UNAUTHORIZED, SECRET).await;
    assert!(matches!(
        rejection,
        Rejection::Signature(SignatureError::Mismatch)
    ));

    let response = guard("unsigned", service.oneshot(unsigned(b"hello")))
        .await
        .unwrap();
    let (rejection, _) = expect_rejection(response, StatusCode::UNAUTHORIZED, SECRET).await;
    assert!(matches!(
        rejection,
        Rejection::Signature(SignatureError::Missing { .. })
    ));
    assert_eq!(
        count(&calls),
        1,
        "rejected requests never reach the handler"
    );
}

#[tokio::test]
async fn verify_webhook_layer_shortcut_and_accessors() {
    let calls = calls();
    let handler_calls = calls.clone();
    let layer = VerifyWebhook::layer(scheme()).max_body_size(64);
    assert_eq!(layer.scheme().header().as_str(), HEADER);
    let service = ServiceBuilder::new()
        .layer(layer)
        .service_fn(move |request| echo::<()>(handler_calls.clone(), request));
    let _inner_ref = service.get_ref();
    let response = service.oneshot(signed(b"short")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(count(&calls), 1);
}

/// Drives `requests` one after another through one service instance with `ready().call()`, and
/// returns the statuses.
async fn drive_sequentially<S>(service: &mut S) -> Result<Vec<StatusCode>, BoxError>
where
    S: Service<Request<Full<Bytes>>, Response = Response<Full<Bytes>>>,
    S::Error: Into<BoxError>,
{
    let requests = [
        signed(b"one"),
        unsigned(b"refused before the body is read"),
        signed(b"two"),
        wrongly_signed(b"refused after the body is read"),
        wrongly_signed(b"refused again"),
        signed(b"three"),
        signed(b"four"),
    ];
    let mut statuses = Vec::new();
    for request in requests {
        let ready = guard(
            "poll_ready",
            ServiceExt::<Request<Full<Bytes>>>::ready(&mut *service),
        )
        .await
        .map_err(Into::into)?;
        let response = guard("call", ready.call(request))
            .await
            .map_err(Into::into)?;
        statuses.push(response.status());
    }
    Ok(statuses)
}

const EXPECTED_SEQUENCE: [StatusCode; 7] = [
    StatusCode::OK,
    StatusCode::UNAUTHORIZED,
    StatusCode::OK,
    StatusCode::UNAUTHORIZED,
    StatusCode::UNAUTHORIZED,
    StatusCode::OK,
    StatusCode::OK,
];

#[tokio::test]
async fn concurrency_limit_inside_the_layer_gets_its_readied_instance() -> Result<(), BoxError> {
    let calls = calls();
    let handler_calls = calls.clone();
    let mut service = ServiceBuilder::new()
        .layer(layer())
        .concurrency_limit(1)
        .service_fn(move |request| echo::<()>(handler_calls.clone(), request));
    let statuses = drive_sequentially(&mut service).await?;
    assert_eq!(statuses, EXPECTED_SEQUENCE);
    assert_eq!(count(&calls), 4);
    Ok(())
}

#[tokio::test]
async fn buffer_inside_the_layer_gets_its_readied_instance() -> Result<(), BoxError> {
    let calls = calls();
    let handler_calls = calls.clone();
    let mut service = ServiceBuilder::new()
        .layer(layer())
        .buffer(1)
        .service_fn(move |request| echo::<()>(handler_calls.clone(), request));
    let statuses = drive_sequentially(&mut service).await?;
    assert_eq!(statuses, EXPECTED_SEQUENCE);
    assert_eq!(count(&calls), 4);
    Ok(())
}

#[tokio::test]
async fn buffer_outside_the_layer() -> Result<(), BoxError> {
    let calls = calls();
    let handler_calls = calls.clone();
    let inner = ServiceBuilder::new()
        .layer(layer())
        .service_fn(move |request| echo::<()>(handler_calls.clone(), request));
    let mut service = Buffer::new(inner, 4);
    let statuses = drive_sequentially(&mut service).await?;
    assert_eq!(statuses, EXPECTED_SEQUENCE);

    // Concurrent callers sharing the buffer.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let service = service.clone();
        tasks.push(tokio::spawn(async move {
            let request = if i % 2 == 0 {
                signed(b"concurrent")
            } else {
                wrongly_signed(b"concurrent")
            };
            service
                .oneshot(request)
                .await
                .map(|response| response.status())
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        let status = guard("buffered call", task).await??;
        let expected = if i % 2 == 0 {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(status, expected, "request {i}");
    }
    assert_eq!(count(&calls), 4 + 4);
    Ok(())
}

#[tokio::test]
async fn concurrency_limit_outside_the_layer() -> Result<(), BoxError> {
    let calls = calls();
    let handler_calls = calls.clone();
    let mut service = ServiceBuilder::new()
        .concurrency_limit(1)
        .layer(layer())
        .service_fn(move |request| echo::<()>(handler_calls.clone(), request));
    let statuses = drive_sequentially(&mut service).await?;
    assert_eq!(statuses, EXPECTED_SEQUENCE);
    assert_eq!(count(&calls), 4);
    Ok(())
}

/// Pointers (as addresses) seen by the zero-copy handler: `Verified::body()` and the request body.
type Seen = Arc<Mutex<Option<(usize, usize, Bytes)>>>;

fn pointer_recorder(
    seen: Seen,
) -> impl tower::Service<Request<Full<Bytes>>, Response = Response<Full<Bytes>>, Error = Infallible>
+ Clone {
    service_fn(move |request: Request<Full<Bytes>>| {
        let seen = seen.clone();
        async move {
            let verified = request
                .extensions()
                .get::<Verified<()>>()
                .cloned()
                .expect("Verified<()> extension");
            let body = request.into_body().collect().await?.to_bytes();
            *seen.lock().unwrap() = Some((
                verified.body().as_ptr() as usize,
                body.as_ptr() as usize,
                body,
            ));
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        }
    })
}

#[tokio::test]
async fn single_frame_body_is_not_copied() {
    let seen: Seen = Arc::default();
    let service = ServiceBuilder::new()
        .layer(layer())
        .service(pointer_recorder(seen.clone()));

    // A heap allocation of our own, so its address is unambiguous.
    let original = Bytes::from(br#"{"event":"zero.copy","data":{"n":1}}"#.to_vec());
    let request = Request::post("/hook")
        .header(HEADER, common::signature_of(&scheme(), &original))
        .body(Full::new(original.clone()))
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let (verified_ptr, body_ptr, body) = seen.lock().unwrap().take().expect("handler ran");
    assert_eq!(body, original);
    assert_eq!(
        verified_ptr,
        original.as_ptr() as usize,
        "Verified::body() points into the original allocation"
    );
    assert_eq!(
        body_ptr,
        original.as_ptr() as usize,
        "the handler's body points into the original allocation"
    );
}

#[tokio::test]
async fn multi_frame_body_reaches_the_handler_whole() {
    let seen: Seen = Arc::default();
    let service = ServiceBuilder::new()
        .layer(layer())
        .service(pointer_recorder(seen.clone()));

    let whole: &[u8] = br#"{"event":"two.frames","data":{"text":"split somewhere in the middle"}}"#;
    let (first, second) = whole.split_at(17);
    let request = Request::post("/hook")
        .header(HEADER, common::signature_of(&scheme(), whole))
        .body(Chunks::new([
            Bytes::copy_from_slice(first),
            Bytes::new(),
            Bytes::copy_from_slice(second),
        ]))
        .unwrap();
    let response = guard("two frames", service.clone().oneshot(request))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (_, _, body) = seen.lock().unwrap().take().expect("handler ran");
    assert_eq!(body, whole);

    // Many small frames.
    let request = Request::post("/hook")
        .header(HEADER, common::signature_of(&scheme(), whole))
        .body(Chunks::split(whole, whole.len()))
        .unwrap();
    let response = guard("one byte per frame", service.oneshot(request))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (_, _, body) = seen.lock().unwrap().take().expect("handler ran");
    assert_eq!(body, whole);
}

#[tokio::test]
async fn trailers_are_ignored_and_data_is_kept() {
    let calls = calls();
    let handler_calls = calls.clone();
    let service = ServiceBuilder::new()
        .layer(layer())
        .service_fn(move |request| echo::<()>(handler_calls.clone(), request));

    let mut trailers = http::HeaderMap::new();
    trailers.insert("x-trailer", http::HeaderValue::from_static("t"));
    let body = Frames(
        vec![
            Frame::data(Bytes::from_static(b"data ")),
            Frame::data(Bytes::from_static(b"then trailers")),
            Frame::trailers(trailers),
        ]
        .into(),
    );
    let request = Request::post("/hook")
        .header(
            HEADER,
            common::signature_of(&scheme(), b"data then trailers"),
        )
        .body(body)
        .unwrap();
    let response = guard("trailers", service.oneshot(request)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        body_bytes(response.into_body()).await,
        &b"data then trailers"[..]
    );
    assert_eq!(count(&calls), 1);
}

/// A body made of the given frames, data or trailers.
struct Frames(VecDeque<Frame<Bytes>>);

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(Ok))
    }
}

#[tokio::test]
async fn endless_body_is_not_read_past_the_limit() {
    let calls = calls();
    let handler_calls = calls.clone();
    let service = ServiceBuilder::new()
        .layer(layer().max_body_size(4096))
        .service_fn(move |request| echo::<()>(handler_calls.clone(), request));

    let body = Endless::new(1024);
    let polls = body.polls();
    let request = Request::post("/hook")
        .header(HEADER, common::signature_of(&scheme(), b"whatever"))
        .body(body)
        .unwrap();
    let response = guard("endless body", service.oneshot(request))
        .await
        .unwrap();
    let (rejection, _) = expect_rejection(response, StatusCode::PAYLOAD_TOO_LARGE, SECRET).await;
    assert!(matches!(
        rejection,
        Rejection::PayloadTooLarge { limit: 4096 }
    ));
    let polls = polls.load(Ordering::SeqCst);
    assert!(
        polls <= 5,
        "1 KiB frames against a 4 KiB limit: the body was polled {polls} times (at most 5 needed)"
    );
    assert_eq!(count(&calls), 0);
}

#[tokio::test]
async fn content_length_above_the_limit_is_refused_before_reading() {
    let calls = calls();
    let handler_calls = calls.clone();
    let service = ServiceBuilder::new()
        .layer(layer().max_body_size(4096))
        .service_fn(move |request| echo::<()>(handler_calls.clone(), request));

    let body = Endless::new(1024);
    let polls = body.polls();
    let request = Request::post("/hook")
        .header(HEADER, common::signature_of(&scheme(), b"whatever"))
        .header(http::header::CONTENT_LENGTH, "4097")
        .body(body)
        .unwrap();
    let response = guard("content-length", service.clone().oneshot(request))
        .await
        .unwrap();
    let (rejection, _) = expect_rejection(response, StatusCode::PAYLOAD_TOO_LARGE, SECRET).await;
    assert!(matches!(
        rejection,
        Rejection::PayloadTooLarge { limit: 4096 }
    ));
    assert_eq!(polls.load(Ordering::SeqCst), 0, "the body was never polled");

    // Even without a signature: the size is checked first and nothing is read.
    let body = Endless::new(1024);
    let polls = body.polls();
    let request = Request::post("/hook")
        .header(http::header::CONTENT_LENGTH, "1000000000000")
        .body(body)
        .unwrap();
    let response = guard("huge content-length", service.clone().oneshot(request))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(polls.load(Ordering::SeqCst), 0);

    // A body whose exact size hint is above the limit, without Content-Length.
    let body = Counted::new(Full::new(Bytes::from(vec![b'x'; 4097])));
    let polls = body.polls();
    let request = Request::post("/hook")
        .header(HEADER, common::signature_of(&scheme(), &[b'x'; 4097]))
        .body(body)
        .unwrap();
    let response = guard("size hint", service.oneshot(request)).await.unwrap();
    expect_rejection(response, StatusCode::PAYLOAD_TOO_LARGE, SECRET).await;
    assert_eq!(polls.load(Ordering::SeqCst), 0);
    assert_eq!(count(&calls), 0);
}

#[tokio::test]
async fn missing_signature_is_refused_before_reading() {
    let calls = calls();
    let handler_calls = calls.clone();
    let service = ServiceBuilder::new()
        .layer(layer())
        .service_fn(move |request| echo::<()>(handler_calls.clone(), request));
    let body = Endless::new(1024);
    let polls = body.polls();
    let request = Request::post("/hook").body(body).unwrap();
    let response = guard("unsigned endless", service.oneshot(request))
        .await
        .unwrap();
    expect_rejection(response, StatusCode::UNAUTHORIZED, SECRET).await;
    assert_eq!(polls.load(Ordering::SeqCst), 0);
    assert_eq!(count(&calls), 0);
}

#[tokio::test]
async fn failing_body_is_a_bad_request() {
    let calls = calls();
    let handler_calls = calls.clone();
    let service = ServiceBuilder::new()
        .layer(layer())
        .service_fn(move |request| echo::<()>(handler_calls.clone(), request));
    let request = Request::post("/hook")
        .header(HEADER, common::signature_of(&scheme(), b"partial"))
        .body(Failing::after([&b"partial"[..]]))
        .unwrap();
    let response = guard("failing body", service.oneshot(request))
        .await
        .unwrap();
    let (rejection, _) = expect_rejection(response, StatusCode::BAD_REQUEST, SECRET).await;
    assert!(matches!(rejection, Rejection::Body(_)));
    assert_eq!(count(&calls), 0);
}

#[tokio::test]
async fn inner_service_errors_pass_through() {
    let service =
        ServiceBuilder::new()
            .layer(layer())
            .service_fn(|_request: Request<Full<Bytes>>| async {
                Err::<Response<Full<Bytes>>, _>(std::io::Error::other("inner failed"))
            });
    let err = service.oneshot(signed(b"body")).await.unwrap_err();
    assert_eq!(err.to_string(), "inner failed");
}

#[tokio::test]
async fn custom_rejection_response_keeps_the_rejection_extension() {
    let calls: Calls = calls();
    let handler_calls = calls.clone();
    let service = ServiceBuilder::new()
        .layer(layer().rejection_response(|rejection: &Rejection| {
            let mut response = Response::new(Full::new(Bytes::from_static(b"nope")));
            *response.status_mut() = if rejection.status() == StatusCode::UNAUTHORIZED {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::IM_A_TEAPOT
            };
            response
        }))
        .service_fn(move |request| echo::<()>(handler_calls.clone(), request));
    let response = service.clone().oneshot(unsigned(b"x")).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(matches!(
        response.extensions().get::<Rejection>(),
        Some(Rejection::Signature(SignatureError::Missing { .. }))
    ));
    assert_eq!(body_bytes(response.into_body()).await, &b"nope"[..]);

    let response = service.oneshot(signed(b"x")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(count(&calls), 1);
}

#[tokio::test]
async fn scheme_two_steps_agree_with_sign() {
    let scheme = scheme();
    let (head, ()) = Request::post("/hook")
        .header(HEADER, common::signature_of(&scheme, b"payload"))
        .body(())
        .unwrap()
        .into_parts();
    let signature = scheme.signature(&head).expect("well-formed");
    assert!(
        scheme
            .verify(&signature, &Bytes::from_static(b"payload"))
            .is_ok()
    );
    assert_eq!(
        scheme.verify(&signature, &Bytes::from_static(b"payloaD")),
        Err(SignatureError::Mismatch)
    );
}
