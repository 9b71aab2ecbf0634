//! Helpers shared by the integration tests.
//!
//! Every test file uses a different subset of these, hence the `dead_code` allowance.
#![allow(dead_code)]

#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "queue")]
pub(crate) mod queue;
pub(crate) mod redis;

use std::{
    collections::VecDeque,
    convert::Infallible,
    fmt::Debug,
    future::Future,
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header::CONTENT_TYPE};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use tower_webhook::{Rejection, Verified};

/// The secret most tests sign with. Distinctive, so a leak into a response or `Debug` output is
/// easy to spot.
pub(crate) const SECRET: &str = "whsec_TOPSECRET_must_never_leak_8c1f";

/// A VideoNest `video.processed` event, compact.
pub(crate) const VN_BODY: &[u8] = br#"{"event":"video.processed","timestamp":"2026-03-30T10:15:00Z","data":{"id":"vid_abc123","title":"My Video Title","status":"ready","duration":142,"channel_id":"ch_abc123"}}"#;

/// A VideoAIditor `render.completed` event, compact.
pub(crate) const VAI_BODY: &[u8] = br#"{"event":"render.completed","data":{"_id":"render-id","status":"completed","outputUrl":"https://cdn.example.com/video.mp4","error":"","videoId":"video-id","videoVersion":1,"videoData":{"title":"Demo","scenes":3},"createdAt":"2024-03-20T10:30:00Z","updatedAt":"2024-03-20T10:31:00Z"}}"#;

/// The longest rejection body text the tests accept as "short".
pub(crate) const MAX_REJECTION_TEXT: usize = 200;

/// Counts how many times a handler ran.
pub(crate) type Calls = Arc<AtomicUsize>;

pub(crate) fn calls() -> Calls {
    Arc::new(AtomicUsize::new(0))
}

pub(crate) fn count(calls: &Calls) -> usize {
    calls.load(Ordering::SeqCst)
}

/// Header the echo handler uses to report the `Content-Length` it saw (`none` when absent).
pub(crate) const SEEN_CONTENT_LENGTH: &str = "x-seen-content-length";

/// The echo handler: counts the call, copies the `Verified<E>` extension into the response
/// extensions, and answers 200 with the body it received. Without a `Verified<E>` extension it
/// answers 500, so a test that expects 200 also proves the extension was there.
pub(crate) async fn echo<E>(
    calls: Calls,
    request: Request<Full<Bytes>>,
) -> Result<Response<Full<Bytes>>, Infallible>
where
    E: Clone + Send + Sync + 'static,
{
    calls.fetch_add(1, Ordering::SeqCst);
    let verified = request.extensions().get::<Verified<E>>().cloned();
    let seen_length = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("none"));
    let body = request.into_body().collect().await?.to_bytes();
    let mut response = Response::new(Full::new(body));
    response
        .headers_mut()
        .insert(SEEN_CONTENT_LENGTH, seen_length);
    match verified {
        Some(verified) => {
            response.extensions_mut().insert(verified);
        }
        None => *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR,
    }
    Ok(response)
}

/// Collects a response (or request) body.
pub(crate) async fn body_bytes<B>(body: B) -> Bytes
where
    B: Body,
    B::Error: Debug,
{
    body.collect()
        .await
        .expect("body collects without error")
        .to_bytes()
}

/// Checks that `response` is one of the layer's default rejections with `status`: a short
/// `text/plain; charset=utf-8` reason that does not contain `secret`, with the typed
/// [`Rejection`] (of that status) in the extensions. Returns the rejection and the text.
pub(crate) async fn expect_rejection<B>(
    response: Response<B>,
    status: StatusCode,
    secret: &str,
) -> (Rejection, String)
where
    B: Body,
    B::Error: Debug,
{
    assert_eq!(response.status(), status, "unexpected status");
    assert_eq!(
        response
            .headers()
            .get(CONTENT_TYPE)
            .map(HeaderValue::as_bytes),
        Some(&b"text/plain; charset=utf-8"[..]),
        "rejection content-type"
    );
    let rejection = response
        .extensions()
        .get::<Rejection>()
        .cloned()
        .expect("the response extensions hold the Rejection");
    assert_eq!(
        rejection.status(),
        status,
        "Rejection::status of {rejection:?}"
    );
    let text = body_bytes(response.into_body()).await;
    let text = String::from_utf8(text.to_vec()).expect("rejection text is UTF-8");
    assert!(!text.is_empty(), "rejection text is empty");
    assert!(
        text.len() <= MAX_REJECTION_TEXT,
        "rejection text is {} bytes long: {text:?}",
        text.len()
    );
    assert!(
        !text.contains(secret),
        "rejection text contains the secret: {text:?}"
    );
    assert_eq!(
        text,
        rejection.to_string(),
        "text is the rejection's Display"
    );
    (rejection, text)
}

/// Fails the test if `future` takes longer than 5 seconds (a hang guard, not a timing check).
pub(crate) async fn guard<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(Duration::from_secs(5), future).await {
        Ok(output) => output,
        Err(_) => panic!("{what}: no answer within 5 seconds"),
    }
}

/// The value of an `x-signature`-style header in lower-case hex, for any bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A body that yields the given chunks, one frame per poll, then ends. It has no size hint (like
/// a chunked upload).
#[derive(Debug)]
pub(crate) struct Chunks {
    chunks: VecDeque<Bytes>,
    polls: Arc<AtomicUsize>,
}

impl Chunks {
    pub(crate) fn new<I, C>(chunks: I) -> Self
    where
        I: IntoIterator<Item = C>,
        C: Into<Bytes>,
    {
        Self {
            chunks: chunks.into_iter().map(Into::into).collect(),
            polls: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The body split into `parts` frames of (nearly) equal size.
    pub(crate) fn split(body: &[u8], parts: usize) -> Self {
        let size = body.len().div_ceil(parts).max(1);
        Self::new(body.chunks(size).map(Bytes::copy_from_slice))
    }

    pub(crate) fn polls(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.polls)
    }
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        Poll::Ready(self.chunks.pop_front().map(|chunk| Ok(Frame::data(chunk))))
    }
}

/// A body that yields `frame_size` bytes per frame forever and counts its polls.
#[derive(Debug)]
pub(crate) struct Endless {
    frame: Bytes,
    polls: Arc<AtomicUsize>,
}

impl Endless {
    pub(crate) fn new(frame_size: usize) -> Self {
        Self {
            frame: Bytes::from(vec![b'x'; frame_size]),
            polls: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub(crate) fn polls(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.polls)
    }
}

impl Body for Endless {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        Poll::Ready(Some(Ok(Frame::data(self.frame.clone()))))
    }
}

/// A body that yields its frames and then fails.
#[derive(Debug)]
pub(crate) struct Failing {
    frames: VecDeque<Bytes>,
}

impl Failing {
    pub(crate) fn after<I, C>(frames: I) -> Self
    where
        I: IntoIterator<Item = C>,
        C: Into<Bytes>,
    {
        Self {
            frames: frames.into_iter().map(Into::into).collect(),
        }
    }
}

impl Body for Failing {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        Poll::Ready(Some(match self.frames.pop_front() {
            Some(frame) => Ok(Frame::data(frame)),
            None => Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "client went away",
            )),
        }))
    }
}

/// Wraps a body, forwarding its frames and size hint, and counts the polls.
#[derive(Debug)]
pub(crate) struct Counted<B> {
    inner: Pin<Box<B>>,
    polls: Arc<AtomicUsize>,
}

impl<B> Counted<B> {
    pub(crate) fn new(inner: B) -> Self {
        Self {
            inner: Box::pin(inner),
            polls: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub(crate) fn polls(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.polls)
    }
}

impl<B: Body> Body for Counted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        self.inner.as_mut().poll_frame(cx)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

/// `tests/fixtures/<name>`, parsed as JSON: data the tests need, committed with them.
pub(crate) fn fixture(name: &str) -> serde_json::Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// The signature header's value `scheme` puts on `body`, signed now with no signed header
/// values: what a sender of a scheme that signs the body alone sends.
pub(crate) fn signature_of(scheme: &tower_webhook::scheme::Hmac, body: &[u8]) -> HeaderValue {
    scheme.sign(body, None, &http::HeaderMap::new())[scheme.header()].clone()
}
