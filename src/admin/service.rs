use std::{
    convert::Infallible,
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{
    HeaderValue, Method, Request, Response, StatusCode,
    header::{
        CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, REFERRER_POLICY,
        X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
    },
};
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};
use subtle::ConstantTimeEq;
use tower::Service;

use super::page::{Notice, render};
use crate::{
    BoxError,
    queue::{MessageId, Page, Queue, Select},
};

/// How many dead letters a page shows unless [`QueueAdmin::page_size`] says otherwise: 50.
pub const DEFAULT_PAGE_SIZE: usize = 50;

/// The largest form body [`QueueAdmin`] reads: 64 KiB (about a thousand ids).
const MAX_FORM: usize = 64 * 1024;

/// The admin page of a queue: a `tower::Service` of HTTP requests. See the
/// [module docs](crate::admin).
pub struct QueueAdmin<Q> {
    inner: Arc<Inner<Q>>,
}

struct Inner<Q> {
    queue: Q,
    /// Where it is mounted, ending with `/`: the forms post below it.
    base: String,
    page_size: usize,
    /// The CSRF token its forms carry: random, hex.
    csrf: String,
}

impl<Q> QueueAdmin<Q> {
    /// The page of `queue`, mounted at `/` (see [`mounted_at`](Self::mounted_at)).
    ///
    /// # Panics
    ///
    /// If the operating system gives no random bytes for the CSRF token.
    pub fn new(queue: Q) -> Self {
        let mut token = [0u8; 32];
        getrandom::fill(&mut token).expect("random bytes from the operating system");
        let mut csrf = String::with_capacity(64);
        crate::scheme::hex::encode_lower(&token, &mut csrf);
        Self {
            inner: Arc::new(Inner {
                queue,
                base: "/".to_owned(),
                page_size: DEFAULT_PAGE_SIZE,
                csrf,
            }),
        }
    }

    /// The path it is mounted at, as the browser sees it (`/admin/`): its forms post to
    /// `<path>replay` and `<path>purge`, and it sends the browser back to `<path>`. A missing
    /// trailing `/` is added.
    #[must_use]
    pub fn mounted_at(self, path: &str) -> Self {
        let mut base = path.to_owned();
        if !base.ends_with('/') {
            base.push('/');
        }
        self.with(|inner| inner.base = base)
    }

    /// How many dead letters a page shows (at least 1) instead of [`DEFAULT_PAGE_SIZE`].
    #[must_use]
    pub fn page_size(self, page_size: usize) -> Self {
        self.with(|inner| inner.page_size = page_size.max(1))
    }

    fn with(self, change: impl FnOnce(&mut Inner<Q>)) -> Self {
        let mut inner = Arc::into_inner(self.inner).expect("configured before it is cloned");
        change(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }
}

impl<Q> Clone for QueueAdmin<Q> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<Q: fmt::Debug> fmt::Debug for QueueAdmin<Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueAdmin")
            .field("queue", &self.inner.queue)
            .field("base", &self.inner.base)
            .field("page_size", &self.inner.page_size)
            .finish_non_exhaustive()
    }
}

/// Response future of [`QueueAdmin`] (boxed: an admin page is no hot path).
pub type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static>>;

impl<Q, B> Service<Request<B>> for QueueAdmin<Q>
where
    Q: Queue,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move { Ok(secured(inner.answer(request).await)) })
    }
}

/// What a form asks.
enum Action {
    Replay,
    Purge,
}

impl<Q: Queue> Inner<Q> {
    async fn answer<B>(&self, request: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let path = request.uri().path();
        let action = if path.ends_with("/replay") || path == "replay" {
            Some(Action::Replay)
        } else if path.ends_with("/purge") || path == "purge" {
            Some(Action::Purge)
        } else {
            None
        };
        match (request.method(), action) {
            (&Method::GET | &Method::HEAD, None) => self.page(request.uri().query()).await,
            (&Method::POST, Some(action)) => self.act(action, request).await,
            (_, None) => text(StatusCode::METHOD_NOT_ALLOWED, "GET the page\n"),
            (_, Some(_)) => text(StatusCode::METHOD_NOT_ALLOWED, "POST the form\n"),
        }
    }

    async fn page(&self, query: Option<&str>) -> Response<Full<Bytes>> {
        let mut after = None;
        let mut notice = None;
        for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match &*name {
                "after" => after = Some(MessageId(value.into_owned())),
                "replayed" => notice = value.parse().ok().map(Notice::Replayed),
                "purged" => notice = value.parse().ok().map(Notice::Purged),
                _ => {}
            }
        }
        let mut page = Page::first(self.page_size);
        if let Some(after) = after.clone() {
            page = page.after(after);
        }
        let (stats, listed) = match (
            self.queue.stats().await,
            self.queue.list_dead_letters(page).await,
        ) {
            (Ok(stats), Ok(listed)) => (stats, listed),
            (Err(err), _) | (_, Err(err)) => {
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("the queue cannot be read: {err}\n"),
                );
            }
        };
        let html = render(&super::page::View {
            base: &self.base,
            csrf: &self.csrf,
            stats,
            listed: &listed,
            after: after.as_ref(),
            notice,
        });
        let mut response = Response::new(Full::new(Bytes::from(html)));
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        response
    }

    async fn act<B>(&self, action: Action, request: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        // Another site's page cannot post here in an operator's browser.
        if let Some(site) = request.headers().get("sec-fetch-site")
            && !matches!(site.as_bytes(), b"same-origin" | b"none")
        {
            return text(StatusCode::FORBIDDEN, "cross-site form refused\n");
        }
        let form = match Limited::new(request.into_body(), MAX_FORM).collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => return text(StatusCode::PAYLOAD_TOO_LARGE, "form too large\n"),
        };
        let mut csrf_ok = false;
        let mut all = false;
        let mut ids = Vec::new();
        for (name, value) in form_urlencoded::parse(&form) {
            match &*name {
                "csrf" => {
                    csrf_ok = value.as_bytes().ct_eq(self.csrf.as_bytes()).into();
                }
                "all" => all = value == "1",
                "id" => ids.push(MessageId(value.into_owned())),
                _ => {}
            }
        }
        if !csrf_ok {
            return text(
                StatusCode::FORBIDDEN,
                "the form's CSRF token is missing or wrong: reload the page\n",
            );
        }
        let which = match (all, ids.is_empty()) {
            (true, true) => Select::All,
            (false, false) => Select::Ids(ids),
            _ => {
                return text(
                    StatusCode::BAD_REQUEST,
                    "the form names either all dead letters or some ids\n",
                );
            }
        };
        let (done, name) = match action {
            Action::Replay => (self.queue.replay_dead_letters(which).await, "replayed"),
            Action::Purge => (self.queue.purge_dead_letters(which).await, "purged"),
        };
        match done {
            Ok(count) => {
                let mut response = Response::new(Full::new(Bytes::new()));
                *response.status_mut() = StatusCode::SEE_OTHER;
                let location = format!("{}?{name}={count}", self.base);
                if let Ok(location) = HeaderValue::from_str(&location) {
                    response.headers_mut().insert(LOCATION, location);
                }
                response
            }
            Err(err) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("the queue did not answer: {err}\n"),
            ),
        }
    }
}

fn text(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(message.to_owned())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// No script, no framing, no caching, no sniffing, no referrer: on every answer.
fn secured(mut response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
