//! The whole verifying layer, driven with arbitrary secrets, headers and body chunks, for each
//! preset. It must never panic, answer only with the statuses it documents, and run the handler
//! only for a request whose signature the fuzzer made with the layer's own secret.
#![no_main]

use std::{
    collections::VecDeque,
    convert::Infallible,
    pin::Pin,
    task::{Context, Poll},
};

use arbitrary::Arbitrary;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_webhook::{
    Verified, VerifyWebhookLayer,
    provider::{videoaiditor, videonest},
    scheme::Hmac,
};

#[derive(Debug, Arbitrary)]
enum Preset {
    VideoNest,
    VideoAIditor,
}

#[derive(Debug, Arbitrary)]
struct Input {
    preset: Preset,
    secret: String,
    /// Sign the body with the layer's secret, then apply `headers` on top.
    sign: bool,
    headers: Vec<(String, Vec<u8>)>,
    chunks: Vec<Vec<u8>>,
    max_body: u16,
    /// Declare a `Content-Length` (maybe a wrong one).
    content_length: Option<u32>,
}

/// A body made of the fuzzer's chunks, with no size hint.
struct Chunks(VecDeque<Bytes>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        Poll::Ready(
            self.0
                .pop_front()
                .map(|chunk| Ok(http_body::Frame::data(chunk))),
        )
    }
}

fn scheme(preset: &Preset, secret: &str) -> Option<Hmac> {
    let builder = match preset {
        Preset::VideoNest => videonest::scheme(),
        Preset::VideoAIditor => videoaiditor::scheme(),
    };
    builder.secret(secret).build().ok()
}

fuzz_target!(|input: Input| {
    let Some(layer_scheme) = scheme(&input.preset, &input.secret) else {
        return; // an empty secret is a configuration error, refused at build time
    };
    let body: Vec<u8> = input.chunks.concat();
    let mut builder = Request::post("/webhook");
    if input.sign {
        let signer = scheme(&input.preset, &input.secret).unwrap();
        let signed = signer.signed_request(body.clone(), None, &http::HeaderMap::new());
        for (name, value) in signed.headers() {
            builder = builder.header(name, value);
        }
    }
    for (name, value) in &input.headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) else {
            continue;
        };
        builder = builder.header(name, value);
    }
    if let Some(length) = input.content_length {
        builder = builder.header(http::header::CONTENT_LENGTH, length);
    }
    let Ok(request) = builder.body(Chunks(input.chunks.into_iter().map(Bytes::from).collect()))
    else {
        return;
    };
    let layer = VerifyWebhookLayer::new(layer_scheme).max_body_size(usize::from(input.max_body));
    let service = ServiceBuilder::new().layer(layer).service(service_fn(
        |request: Request<Full<Bytes>>| async move {
            let verified = request.extensions().get::<Verified>().cloned();
            let verified = verified.expect("the handler runs only for verified requests");
            Ok::<_, Infallible>(Response::new(Full::new(verified.body().clone())))
        },
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let response = runtime.block_on(service.oneshot(request)).unwrap();
    let status = response.status();
    assert!(
        matches!(
            status,
            StatusCode::OK
                | StatusCode::BAD_REQUEST
                | StatusCode::UNAUTHORIZED
                | StatusCode::PAYLOAD_TOO_LARGE
        ),
        "unexpected status {status}"
    );
    if status == StatusCode::OK {
        // Only a request signed with the secret gets through: the fuzzer cannot guess a MAC.
        assert!(input.sign, "an unsigned request was accepted");
        assert!(
            body.len() <= usize::from(input.max_body),
            "a body over the limit was accepted"
        );
    }
});
