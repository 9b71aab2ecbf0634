//! Feature `tracing`: a `webhook` span per verified request with the provider, event type,
//! delivery id, status and outcome; a debug event per refusal with its reason; and never a
//! secret, a signature value or any of the payload in a field or message.
#![cfg(feature = "tracing")]

mod common;

use std::{
    fmt::Debug,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use bytes::Bytes;
use common::SECRET;
use http::{Request, Response};
use http_body_util::Full;
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_webhook::provider::{github, videonest};
use tracing::{
    Event, Metadata, Subscriber,
    field::{Field, Visit},
    span::{Attributes, Id, Record},
};

/// What the subscriber saw: spans (name and fields, as recorded over time) and events.
#[derive(Default, Debug)]
struct Seen {
    spans: Vec<(String, Vec<(String, String)>)>,
    events: Vec<Vec<(String, String)>>,
}

impl Seen {
    /// Everything that was written, as one text: what a log would contain.
    fn text(&self) -> String {
        format!("{self:?}")
    }
}

#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Seen>>,
    next: Arc<AtomicU64>,
}

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = Vec::new();
        span.record(&mut Fields(&mut fields));
        let mut seen = self.seen.lock().unwrap();
        seen.spans.push((span.metadata().name().to_owned(), fields));
        self.next.fetch_add(1, Ordering::SeqCst);
        Id::from_u64(seen.spans.len() as u64)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut seen = self.seen.lock().unwrap();
        let index = usize::try_from(span.into_u64()).unwrap() - 1;
        values.record(&mut Fields(&mut seen.spans[index].1));
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = vec![("level".to_owned(), event.metadata().level().to_string())];
        // The span the event happened in, if any: `span` is its index in `Seen::spans`.
        if let Some(span) = ENTERED.with_borrow(|entered| entered.last().copied()) {
            fields.push(("span".to_owned(), (span - 1).to_string()));
        }
        event.record(&mut Fields(&mut fields));
        self.seen.lock().unwrap().events.push(fields);
    }

    fn enter(&self, span: &Id) {
        ENTERED.with_borrow_mut(|entered| entered.push(span.into_u64()));
    }

    fn exit(&self, span: &Id) {
        ENTERED.with_borrow_mut(|entered| {
            if let Some(at) = entered.iter().rposition(|id| *id == span.into_u64()) {
                entered.remove(at);
            }
        });
    }
}

thread_local! {
    /// The spans entered on this thread, innermost last.
    static ENTERED: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One recorder at a time: `tracing` caches, per call site, whether any subscriber wants it,
/// and scoped subscribers made and dropped on parallel test threads can race that cache.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs `test` on a current-thread runtime (timers and I/O on, so everything it spawns runs
/// under the recorder too) with the recorder as the default subscriber, one recorder at a time.
/// `test` gets what the recorder has seen so far, to wait on; returns `test`'s output and
/// everything the recorder saw.
#[cfg(feature = "queue")]
fn recorded<T, F: std::future::Future<Output = T>>(
    test: impl FnOnce(Arc<Mutex<Seen>>) -> F,
) -> (T, Seen) {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let recorder = Recorder::default();
    let seen = Arc::clone(&recorder.seen);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let output = tracing::subscriber::with_default(recorder, || {
        tracing::callsite::rebuild_interest_cache();
        runtime.block_on(test(Arc::clone(&seen)))
    });
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    (output, seen)
}

/// The handler: 200 `ok`.
type Handler = fn(
    Request<Full<Bytes>>,
) -> std::future::Ready<Result<Response<Full<Bytes>>, std::convert::Infallible>>;

/// Sends each request through `layer` over a handler answering 200, with the recorder as the
/// default subscriber; what it saw.
fn traced<L>(layer: L, requests: Vec<Request<Full<Bytes>>>) -> Seen
where
    L: tower::Layer<tower::util::ServiceFn<Handler>>,
    L::Service: tower::Service<
            Request<Full<Bytes>>,
            Response = Response<Full<Bytes>>,
            Error = std::convert::Infallible,
        > + Clone,
{
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let recorder = Recorder::default();
    let seen = Arc::clone(&recorder.seen);
    let handler: Handler =
        |_| std::future::ready(Ok(Response::new(Full::new(Bytes::from_static(b"ok")))));
    let service = ServiceBuilder::new()
        .layer(layer)
        .service(service_fn(handler));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    tracing::subscriber::with_default(recorder, || {
        tracing::callsite::rebuild_interest_cache();
        for request in requests {
            runtime.block_on(service.clone().oneshot(request)).unwrap();
        }
    });
    // Taken out rather than unwrapped: `tracing` may still hold a clone of the recorder for a
    // moment (its call-site registry upgrades its references while it rebuilds its cache).
    std::mem::take(&mut *seen.lock().unwrap())
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn a_verified_request_has_a_span_with_its_metadata_and_outcome() {
    let body = r#"{"action":"opened","number":7}"#;
    let mut request = github::signed_request(SECRET, body).unwrap();
    let headers = request.headers_mut();
    headers.insert("x-github-event", "pull_request".parse().unwrap());
    headers.insert(
        "x-github-delivery",
        "72d3162e-cc78-11e3-81ab-4c9367dc0958".parse().unwrap(),
    );
    let seen = traced(github::layer([SECRET]).unwrap(), vec![request]);
    assert_eq!(seen.spans.len(), 1, "{seen:?}");
    let (name, fields) = &seen.spans[0];
    assert_eq!(name, "webhook");
    assert_eq!(field(fields, "provider"), Some("github"));
    assert_eq!(field(fields, "event_type"), Some("pull_request"));
    assert_eq!(
        field(fields, "delivery_id"),
        Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
    );
    assert_eq!(field(fields, "status"), Some("200"));
    assert_eq!(field(fields, "outcome"), Some("handled"));
}

#[test]
fn the_event_type_comes_from_the_event_when_the_scheme_has_none() {
    let body =
        r#"{"event":"video.processed","timestamp":"2026-03-30T10:15:00Z","data":{"id":"vid_1"}}"#;
    let request = videonest::signed_request(SECRET, body).unwrap();
    let seen = traced(videonest::layer([SECRET]).unwrap(), vec![request]);
    let (_, fields) = &seen.spans[0];
    assert_eq!(field(fields, "provider"), Some("videonest"));
    assert_eq!(field(fields, "event_type"), Some("video.processed"));
    assert_eq!(field(fields, "delivery_id"), None, "VideoNest sends none");
    assert_eq!(field(fields, "outcome"), Some("handled"));
}

#[test]
fn refusals_are_debug_events_with_a_reason_and_no_span() {
    let body = r#"{"event":"video.processed","data":{}}"#;
    let mut forged = videonest::signed_request("another secret", body).unwrap();
    *forged.uri_mut() = "/webhook".parse().unwrap();
    let missing = Request::post("/webhook")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let seen = traced(videonest::layer([SECRET]).unwrap(), vec![forged, missing]);
    assert!(
        seen.spans.is_empty(),
        "no span for unverified requests: {seen:?}"
    );
    assert_eq!(seen.events.len(), 2, "{seen:?}");
    for event in &seen.events {
        assert_eq!(field(event, "level"), Some("DEBUG"));
        assert_eq!(field(event, "provider"), Some("videonest"));
        assert_eq!(field(event, "status"), Some("401"));
        assert_eq!(field(event, "message"), Some("webhook refused"));
    }
    assert!(
        field(&seen.events[0], "reason")
            .unwrap()
            .contains("signature")
    );
    assert!(
        field(&seen.events[1], "reason")
            .unwrap()
            .contains("missing webhook signature header")
    );
}

/// Every kind of request, with secret-looking and payload-looking values everywhere an attacker
/// or the provider can put them: none of them reaches a field or message.
#[test]
fn no_secret_signature_or_payload_reaches_the_logs() {
    const MARKER: &str = "PAYLOAD-MARKER-5f1c";
    let event = format!(
        r#"{{"event":"video.processed","timestamp":"t","data":{{"id":"vid_1","title":"{MARKER}"}}}}"#
    );
    let valid = videonest::signed_request(SECRET, event.clone()).unwrap();
    let signature = valid.headers()[videonest::SIGNATURE_HEADER]
        .to_str()
        .unwrap()
        .to_owned();
    let mut tampered = videonest::signed_request(SECRET, event.clone()).unwrap();
    *tampered.body_mut() = Full::new(Bytes::from(event.replace("vid_1", "vid_2")));
    // Verified, but not JSON: the decoder's message quotes the body.
    let not_json = videonest::signed_request(SECRET, format!("{MARKER} not json")).unwrap();
    let mut malformed = videonest::signed_request(SECRET, event).unwrap();
    malformed.headers_mut().insert(
        videonest::SIGNATURE_HEADER,
        http::HeaderValue::from_str(&format!("{MARKER}{SECRET}")).unwrap(),
    );
    let seen = traced(
        videonest::layer([SECRET]).unwrap().max_body_size(4096),
        vec![valid, tampered, not_json, malformed],
    );
    assert_eq!(
        seen.spans.len(),
        2,
        "the valid request and the one that does not decode"
    );
    assert_eq!(field(&seen.spans[1].1, "outcome"), Some("refused"));
    assert_eq!(field(&seen.spans[1].1, "status"), Some("400"));
    let text = seen.text();
    for secret in [
        SECRET,
        signature.as_str(),
        MARKER,
        "vid_1",
        "vid_2",
        "not json",
    ] {
        assert!(
            !text.contains(secret),
            "{secret:?} reached the logs: {text}"
        );
    }
    assert!(!seen.events.is_empty());

    // A typed decoder whose error quotes the body (serde quotes the strings it refuses).
    #[derive(Clone, serde::Deserialize)]
    #[allow(dead_code)]
    struct Count {
        n: u32,
    }
    let quoted = format!(r#"{{"n":"{MARKER}"}}"#);
    let request = videonest::signed_request(SECRET, quoted).unwrap();
    let seen = traced(
        videonest::layer([SECRET]).unwrap().event::<Count>(),
        vec![request],
    );
    assert_eq!(field(&seen.spans[0].1, "status"), Some("400"));
    let text = seen.text();
    assert!(text.contains("not a valid event"), "{text}");
    assert!(
        !text.contains(MARKER),
        "the payload reached the logs: {text}"
    );
}

/// The fields of the span `event` happened in.
fn span_of<'a>(seen: &'a Seen, event: &[(String, String)]) -> Option<&'a [(String, String)]> {
    let index: usize = field(event, "span")?.parse().ok()?;
    Some(&seen.spans[index].1)
}

/// The events whose message is `message`.
fn events_saying<'a>(seen: &'a Seen, message: &str) -> Vec<&'a Vec<(String, String)>> {
    seen.events
        .iter()
        .filter(|event| field(event, "message") == Some(message))
        .collect()
}

/// The events of an outage (Redis stopped, then started again) with a deduplication layer on
/// Redis in front of a Redis queue, and a worker: the store's and the queue's failures at `warn`
/// inside the request's span (provider, event type), the worker's failed reads once at `warn` and
/// its recovery at `info`; no secret or payload anywhere.
#[cfg(all(feature = "redis", feature = "queue"))]
#[test]
fn an_outage_is_logged() {
    use tower_webhook::{
        dedupe::{DedupeLayer, store::RedisStore},
        queue::{Delivery, Enqueue, RedisQueue, Worker},
    };

    const MARKER: &str = "PAYLOAD-MARKER-0a7e";
    let event = |id: &str| {
        format!(
            r#"{{"event":"video.processed","timestamp":"t","data":{{"id":"{id}","title":"{MARKER}"}}}}"#
        )
    };
    let (ran, seen) = recorded(|seen| async move {
        let Some(mut server) = common::redis::Server::require("an-outage-is-logged").await else {
            return false;
        };
        let store = RedisStore::connect(server.url()).await.unwrap();
        let queue = RedisQueue::connect(server.url())
            .await
            .unwrap()
            .stream("logged");
        type Http = tower::util::BoxCloneSyncService<
            Request<Full<Bytes>>,
            Response<Full<Bytes>>,
            std::convert::Infallible,
        >;
        let deduplicated = Http::new(
            ServiceBuilder::new()
                .layer(videonest::layer([SECRET]).unwrap())
                .layer(DedupeLayer::<videonest::Event, _>::new(store))
                .service(Enqueue::<videonest::Event, _>::new(queue.clone())),
        );
        let enqueued = Http::new(
            ServiceBuilder::new()
                .layer(videonest::layer([SECRET]).unwrap())
                .service(Enqueue::<videonest::Event, _>::new(queue.clone())),
        );
        let processed = Arc::new(AtomicU64::new(0));
        let handler = {
            let processed = Arc::clone(&processed);
            service_fn(move |_: Delivery<videonest::Event>| {
                processed.fetch_add(1, Ordering::SeqCst);
                std::future::ready(Ok::<_, String>(()))
            })
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let worker = tokio::spawn(Worker::new(queue.clone(), handler).run(async {
            stopped.await.ok();
        }));
        let post = |service: &Http, body: String| {
            let request = videonest::signed_request(SECRET, body).unwrap();
            service.clone().oneshot(request)
        };

        assert_eq!(
            post(&deduplicated, event("vid_before"))
                .await
                .unwrap()
                .status(),
            200
        );
        until(|| processed.load(Ordering::SeqCst) == 1).await;

        server.stop().await;
        for body in [event("vid_during"), event("vid_before")] {
            let answer = post(&deduplicated, body).await.unwrap();
            assert_eq!(answer.status(), 503);
        }
        let answer = post(&enqueued, event("vid_queued")).await.unwrap();
        assert_eq!(answer.status(), 503);
        let failed_reads = || {
            events_saying(
                &seen.lock().unwrap(),
                "cannot read the webhook queue; trying again every second",
            )
            .len()
        };
        until(|| failed_reads() == 1).await;

        server.restart().await;
        let recovered =
            || !events_saying(&seen.lock().unwrap(), "the webhook queue answers again").is_empty();
        until(recovered).await;
        assert_eq!(
            post(&deduplicated, event("vid_during"))
                .await
                .unwrap()
                .status(),
            200
        );
        until(|| processed.load(Ordering::SeqCst) == 2).await;
        stop.send(()).unwrap();
        worker.await.unwrap().unwrap();
        true
    });
    if !ran {
        return;
    }

    let store_down = events_saying(&seen, "deduplication store unavailable");
    assert_eq!(store_down.len(), 2, "one per refused delivery: {seen:?}");
    for event in &store_down {
        assert_eq!(field(event, "level"), Some("WARN"));
        assert_eq!(field(event, "outcome"), Some("answered 503"));
        assert!(field(event, "key").unwrap().starts_with("videonest:"));
        assert!(!field(event, "error").unwrap().is_empty());
        let span = span_of(&seen, event).expect("inside the request's span");
        assert_eq!(field(span, "provider"), Some("videonest"));
        assert_eq!(field(span, "event_type"), Some("video.processed"));
    }
    let queue_down = events_saying(
        &seen,
        "the webhook queue could not store a delivery; answered 503",
    );
    assert_eq!(queue_down.len(), 1, "{seen:?}");
    assert_eq!(field(queue_down[0], "level"), Some("WARN"));
    let span = span_of(&seen, queue_down[0]).expect("inside the request's span");
    assert_eq!(field(span, "provider"), Some("videonest"));

    let reads = events_saying(
        &seen,
        "cannot read the webhook queue; trying again every second",
    );
    assert_eq!(reads.len(), 1, "said once, not every second");
    assert_eq!(field(reads[0], "level"), Some("WARN"));
    let back = events_saying(&seen, "the webhook queue answers again");
    assert_eq!(field(back[0], "level"), Some("INFO"));

    // Each delivery the worker processed had its span.
    let deliveries: Vec<_> = seen
        .spans
        .iter()
        .filter(|(name, _)| name == "webhook_delivery")
        .map(|(_, fields)| fields)
        .collect();
    assert_eq!(deliveries.len(), 2, "{seen:?}");
    for fields in deliveries {
        assert_eq!(field(fields, "provider"), Some("videonest"));
        assert_eq!(field(fields, "event_type"), Some("video.processed"));
        assert_eq!(field(fields, "attempt"), Some("1"));
        assert!(field(fields, "key").unwrap().starts_with("videonest:"));
        assert!(!field(fields, "message_id").unwrap().is_empty());
    }

    let text = seen.text();
    for secret in [SECRET, MARKER] {
        assert!(
            !text.contains(secret),
            "{secret:?} reached the logs: {text}"
        );
    }
}

/// Waits until `check` holds (bounded: 30 s).
#[cfg(all(feature = "redis", feature = "queue"))]
async fn until(mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !check() {
        assert!(std::time::Instant::now() < deadline, "not reached in 30 s");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A stored delivery that does not decode (its event type changed shape between deploys) is
/// logged and dead-lettered with where and what kind of error, never with serde's message,
/// which quotes the payload's values.
#[cfg(feature = "queue")]
#[test]
fn a_stored_delivery_that_does_not_decode_is_not_quoted_in_the_log() {
    use std::time::Duration;
    use tower_webhook::{
        Verified, WebhookEvent,
        queue::{Delivery, MemoryQueue, Queue, Worker},
    };

    /// The event type of this deploy; the previous one stored `amount` as a string.
    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
    struct Order {
        amount: u64,
    }

    impl WebhookEvent for Order {
        fn event_type(&self) -> &str {
            "order"
        }

        fn id(&self) -> Option<&str> {
            None
        }
    }

    const MARKER: &str = "PAYLOAD-MARKER-77d1";
    let queue = MemoryQueue::new(10);
    let ((), seen) = recorded(|_| async {
        let stored = Verified::new(serde_json::json!({ "amount": MARKER }), "{}");
        let payload = serde_json::json!({ "v": 1, "verified": stored, "key": null });
        queue
            .push(Bytes::from(serde_json::to_vec(&payload).unwrap()))
            .await
            .unwrap();
        let service = service_fn(|_: Delivery<Order>| async { Ok::<_, String>(()) });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let worker = tokio::spawn(Worker::new(queue.clone(), service).run(async {
            stopped.await.ok();
        }));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while queue.dead_letters().is_empty() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.send(()).unwrap();
        worker.await.unwrap().unwrap();
    });
    let dead = queue.dead_letters();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].error.contains("not a delivery of this event type"),
        "{}",
        dead[0].error
    );
    assert!(!dead[0].error.contains(MARKER), "{}", dead[0].error);
    let unreadable = events_saying(
        &seen,
        "a stored webhook delivery cannot be read; dead-lettering it",
    );
    assert_eq!(unreadable.len(), 1, "{seen:?}");
    assert_eq!(field(unreadable[0], "level"), Some("ERROR"));
    let text = seen.text();
    assert!(
        !text.contains(MARKER),
        "the payload reached the logs: {text}"
    );
}

/// A tenant layer: the span names the tenant only with `label_tenants`, and a refusal never
/// names the tenant an unverified request claims (nor does a failed lookup).
#[cfg(feature = "tenants")]
#[test]
fn the_tenant_is_in_the_span_only_when_the_layer_labels_tenants() {
    use tower_webhook::tenant::Tenants;

    let request = |tenant: &str| {
        let mut request =
            videonest::signed_request(SECRET, r#"{"event":"video.processed"}"#).unwrap();
        *request.uri_mut() = format!("/webhooks/{tenant}").parse().unwrap();
        request
    };
    for labelled in [false, true] {
        let ((), seen) = recorded(|_| async move {
            let tenants = Tenants::new(|tenant: String| async move {
                match tenant.as_str() {
                    "acme" => Ok(Some(vec![SECRET])),
                    "broken" => Err("the secrets table is unreachable"),
                    _ => Ok(None),
                }
            });
            let mut layer = videonest::tenant_layer(&tenants).unwrap();
            if labelled {
                layer = layer.label_tenants();
            }
            let handler: Handler =
                |_| std::future::ready(Ok(Response::new(Full::new(Bytes::from_static(b"ok")))));
            let service = ServiceBuilder::new()
                .layer(layer)
                .service(service_fn(handler));
            for tenant in ["acme", "mallory-unknown", "broken"] {
                service.clone().oneshot(request(tenant)).await.unwrap();
            }
        });
        assert_eq!(seen.spans.len(), 1, "{seen:?}");
        let (_, fields) = &seen.spans[0];
        assert_eq!(
            field(fields, "tenant"),
            labelled.then_some("acme"),
            "{fields:?}"
        );
        let text = seen.text();
        assert!(!text.contains("mallory"), "{text}");
        assert!(text.contains("webhook tenant lookup failed"), "{text}");
        assert!(!text.contains("\"broken\""), "{text}");
    }
}
