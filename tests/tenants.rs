//! Many tenants on one route (feature `tenants`): each request verified with the secrets of the
//! tenant it names, looked up once per tenant, cached, rotated without a restart.

mod common;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    http::{Request, Response, StatusCode},
    routing::post,
};
use common::{body_bytes, guard};
use http_body_util::Full;
use tower::{ServiceBuilder, ServiceExt};
use tower_webhook::{
    Verified, VerifyWebhookLayer,
    dedupe::{DUPLICATE_HEADER, DedupeLayer, store::MemoryStore},
    provider::{generic, standard_webhooks, videonest},
    scheme::Hmac,
    tenant::{Tenanted, Tenants},
};

/// How a lookup behaves besides reading the directory.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Answer,
    Hang,
    Fail,
    Panic,
}

/// The secrets of every tenant, as a database table would hold them, with a count of lookups.
#[derive(Clone)]
struct Directory {
    secrets: Arc<Mutex<HashMap<String, Vec<String>>>>,
    lookups: Arc<AtomicUsize>,
    delay: Arc<Mutex<Duration>>,
    mode: Arc<Mutex<Mode>>,
}

impl Directory {
    fn new(tenants: impl IntoIterator<Item = (String, Vec<String>)>) -> Self {
        Self {
            secrets: Arc::new(Mutex::new(tenants.into_iter().collect())),
            lookups: Arc::default(),
            delay: Arc::default(),
            mode: Arc::new(Mutex::new(Mode::Answer)),
        }
    }

    fn set(&self, tenant: &str, secrets: &[&str]) {
        let secrets = secrets.iter().map(|s| (*s).to_owned()).collect();
        self.secrets
            .lock()
            .unwrap()
            .insert(tenant.to_owned(), secrets);
    }

    fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }

    fn tenants(&self) -> Tenants {
        let directory = self.clone();
        Tenants::new(move |tenant: String| {
            let directory = directory.clone();
            async move {
                directory.lookups.fetch_add(1, Ordering::SeqCst);
                let delay = *directory.delay.lock().unwrap();
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                let mode = *directory.mode.lock().unwrap();
                match mode {
                    Mode::Answer => {}
                    Mode::Hang => std::future::pending::<()>().await,
                    Mode::Fail => return Err("the secrets table is unreachable".into()),
                    Mode::Panic => panic!("the lookup panicked"),
                }
                let found = directory.secrets.lock().unwrap().get(&tenant).cloned();
                Ok::<_, tower_webhook::BoxError>(found)
            }
        })
    }
}

fn tenant_secret(i: usize) -> String {
    format!("vn_secret_of_tenant_{i}")
}

fn event(id: &str) -> String {
    format!(r#"{{"event":"video.processed","data":{{"id":"{id}"}}}}"#)
}

/// A VideoNest request for `/webhooks/{tenant}`, signed with `secret`.
fn request(tenant: &str, secret: &str, body: &str) -> Request<Body> {
    let mut request = videonest::signed_request(secret, body.to_owned())
        .unwrap()
        .map(Body::new);
    *request.uri_mut() = format!("/webhooks/{tenant}").parse().unwrap();
    request
}

/// A route answering `"{tenant} {event id}"` for each verified request, counting them.
fn app(
    layer: VerifyWebhookLayer<Tenanted<Hmac>, videonest::Event>,
    handled: &Arc<AtomicUsize>,
) -> Router {
    let handled = Arc::clone(handled);
    Router::new().route(
        "/webhooks/{tenant}",
        post(move |verified: Verified<videonest::Event>| {
            handled.fetch_add(1, Ordering::SeqCst);
            async move {
                format!(
                    "{} {}",
                    verified.tenant().unwrap_or("-"),
                    verified.id().unwrap_or("-")
                )
            }
        })
        .route_layer(layer),
    )
}

async fn send(app: &Router, request: Request<Body>) -> Response<Body> {
    guard("router", app.clone().oneshot(request))
        .await
        .unwrap_or_else(|never| match never {})
}

async fn answer(app: &Router, request: Request<Body>) -> (StatusCode, String) {
    let response = send(app, request).await;
    let status = response.status();
    let body = body_bytes(response.into_body()).await;
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn ten_thousand_tenants_each_verified_with_its_own_secret_only() {
    const TENANTS: usize = 10_000;
    let directory = Directory::new((0..TENANTS).map(|i| (format!("t{i}"), vec![tenant_secret(i)])));
    let tenants = directory.tenants().from_path_param("tenant");
    let layer = videonest::tenant_layer(&tenants).unwrap();
    let handled = Arc::new(AtomicUsize::new(0));
    let app = app(layer, &handled);
    for i in 0..TENANTS {
        let body = event(&format!("vid_{i}"));
        let (status, text) =
            answer(&app, request(&format!("t{i}"), &tenant_secret(i), &body)).await;
        assert_eq!(status, StatusCode::OK, "tenant t{i}");
        assert_eq!(text, format!("t{i} vid_{i}"));
        // Signed with this tenant's secret, sent to the next tenant's route.
        let next = (i + 1) % TENANTS;
        let (status, _) =
            answer(&app, request(&format!("t{next}"), &tenant_secret(i), &body)).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "t{i}'s secret on t{next}'s route"
        );
    }
    assert_eq!(handled.load(Ordering::SeqCst), TENANTS);
    assert_eq!(
        directory.lookups(),
        TENANTS,
        "each tenant looked up once, then cached"
    );
}

#[tokio::test]
async fn an_unknown_tenant_is_refused_as_a_wrong_signature_is() {
    let directory = Directory::new([("acme".to_owned(), vec!["acme_secret".to_owned()])]);
    let tenants = directory.tenants();
    let handled = Arc::new(AtomicUsize::new(0));
    let app = app(videonest::tenant_layer(&tenants).unwrap(), &handled);
    let body = event("vid_1");

    let wrong = send(&app, request("acme", "not_acme_secret", &body)).await;
    let unknown = send(&app, request("nobody", "acme_secret", &body)).await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.status(), unknown.status());
    let headers = |response: &Response<Body>| {
        let mut headers = response.headers().clone();
        headers.remove(http::header::DATE);
        headers
    };
    assert_eq!(headers(&wrong), headers(&unknown));
    let (wrong, unknown) = (
        body_bytes(wrong.into_body()).await,
        body_bytes(unknown.into_body()).await,
    );
    assert_eq!(wrong, unknown);
    assert_eq!(unknown, Bytes::from("webhook signature does not match"));

    // Remembered: a repeat is refused without asking the directory again.
    let lookups = directory.lookups();
    let (status, _) = answer(&app, request("nobody", "acme_secret", &body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(directory.lookups(), lookups);
    // A malformed signature is refused before any lookup.
    let mut malformed = request("fresh", "acme_secret", &body);
    malformed
        .headers_mut()
        .insert(videonest::SIGNATURE_HEADER, "zz".parse().unwrap());
    let (status, text) = answer(&app, malformed).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(text.starts_with("malformed webhook signature"), "{text}");
    assert_eq!(directory.lookups(), lookups);
    // An id that cannot be a tenant's is refused as unknown, without a lookup.
    let (status, _) = answer(&app, request("a%00b", "acme_secret", &body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(directory.lookups(), lookups);
    assert_eq!(handled.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_new_tenant_appears_after_its_unknown_entry_expires_or_is_invalidated() {
    let directory = Directory::new([]);
    let tenants = directory
        .tenants()
        .unknown_ttl(Duration::from_millis(50))
        .ttl(Duration::from_secs(3600));
    let handled = Arc::new(AtomicUsize::new(0));
    let app = app(videonest::tenant_layer(&tenants).unwrap(), &handled);
    let body = event("vid_1");
    let status = |tenant: &'static str, secret: &'static str| {
        let app = app.clone();
        let body = body.clone();
        async move { answer(&app, request(tenant, secret, &body)).await.0 }
    };
    assert_eq!(status("new", "new_secret").await, StatusCode::UNAUTHORIZED);
    directory.set("new", &["new_secret"]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        status("new", "new_secret").await,
        StatusCode::OK,
        "after the unknown TTL"
    );

    assert_eq!(
        status("other", "other_secret").await,
        StatusCode::UNAUTHORIZED
    );
    directory.set("other", &["other_secret"]);
    tenants.invalidate("other");
    assert_eq!(
        status("other", "other_secret").await,
        StatusCode::OK,
        "after invalidate"
    );
}

#[tokio::test]
async fn a_rotation_accepts_both_secrets_during_the_overlap_and_the_old_one_no_longer_after() {
    let directory = Directory::new([("acme".to_owned(), vec!["old".to_owned()])]);
    let tenants = directory.tenants().ttl(Duration::from_secs(3600));
    let handled = Arc::new(AtomicUsize::new(0));
    let app = app(videonest::tenant_layer(&tenants).unwrap(), &handled);
    let body = event("vid_1");
    let status = |secret: &'static str| {
        let app = app.clone();
        let body = body.clone();
        async move { answer(&app, request("acme", secret, &body)).await.0 }
    };
    assert_eq!(status("old").await, StatusCode::OK);
    assert_eq!(status("new").await, StatusCode::UNAUTHORIZED);

    // The overlap: the new secret added, the old one kept.
    directory.set("acme", &["new", "old"]);
    assert_eq!(
        status("new").await,
        StatusCode::UNAUTHORIZED,
        "cached until invalidated"
    );
    tenants.invalidate("acme");
    assert_eq!(status("new").await, StatusCode::OK);
    assert_eq!(status("old").await, StatusCode::OK);

    // The old secret removed: refused once the cache forgets it, by invalidation...
    directory.set("acme", &["new"]);
    tenants.invalidate_all();
    assert_eq!(status("new").await, StatusCode::OK);
    assert_eq!(status("old").await, StatusCode::UNAUTHORIZED);

    // ... or by the time to live, with nothing told.
    let tenants = directory.tenants().ttl(Duration::from_millis(50));
    let app = Arc::new(app_for(&tenants));
    directory.set("acme", &["newer", "new"]);
    assert_eq!(app_status(&app, "new").await, StatusCode::OK);
    directory.set("acme", &["newer"]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(app_status(&app, "new").await, StatusCode::UNAUTHORIZED);
    assert_eq!(app_status(&app, "newer").await, StatusCode::OK);
}

fn app_for(tenants: &Tenants) -> Router {
    app(videonest::tenant_layer(tenants).unwrap(), &Arc::default())
}

async fn app_status(app: &Router, secret: &str) -> StatusCode {
    answer(app, request("acme", secret, &event("vid_1")))
        .await
        .0
}

#[tokio::test]
async fn a_hundred_concurrent_first_requests_for_one_tenant_make_one_lookup() {
    let directory = Directory::new([("acme".to_owned(), vec!["acme_secret".to_owned()])]);
    *directory.delay.lock().unwrap() = Duration::from_millis(200);
    let tenants = directory.tenants();
    let handled = Arc::new(AtomicUsize::new(0));
    let app = app(videonest::tenant_layer(&tenants).unwrap(), &handled);
    let requests: Vec<_> = (0..100)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                answer(
                    &app,
                    request("acme", "acme_secret", &event(&format!("vid_{i}"))),
                )
                .await
            })
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.unwrap().0, StatusCode::OK);
    }
    assert_eq!(directory.lookups(), 1);
    assert_eq!(handled.load(Ordering::SeqCst), 100);
}

#[tokio::test(start_paused = true)]
async fn a_lookup_that_hangs_is_answered_503_at_the_timeout() {
    let directory = Directory::new([("acme".to_owned(), vec!["acme_secret".to_owned()])]);
    *directory.mode.lock().unwrap() = Mode::Hang;
    let timeout = Duration::from_millis(750);
    let tenants = directory.tenants().lookup_timeout(timeout);
    let handled = Arc::new(AtomicUsize::new(0));
    let app = app(videonest::tenant_layer(&tenants).unwrap(), &handled);
    let started = tokio::time::Instant::now();
    let requests: Vec<_> = (0..3)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(
                async move { answer(&app, request("acme", "acme_secret", &event("v"))).await },
            )
        })
        .collect();
    for request in requests {
        let (status, text) = request.await.unwrap();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            text,
            "webhook secrets were not found within 750 ms; retry later"
        );
    }
    // On the paused clock: exactly at the timeout, not before and not later.
    assert_eq!(started.elapsed(), timeout);
    assert_eq!(directory.lookups(), 1, "the three waited for one lookup");

    // A failure is not remembered: the next request looks again, and gets through.
    *directory.mode.lock().unwrap() = Mode::Answer;
    let (status, _) = answer(&app, request("acme", "acme_secret", &event("v"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(directory.lookups(), 2);
    assert_eq!(handled.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failing_or_panicking_lookup_or_an_unusable_secret_is_a_503_never_a_verify() {
    let directory = Directory::new([("acme".to_owned(), vec!["acme_secret".to_owned()])]);
    let tenants = directory.tenants();
    let handled = Arc::new(AtomicUsize::new(0));
    let app = app(videonest::tenant_layer(&tenants).unwrap(), &handled);
    for (mode, reason) in [
        (
            Mode::Fail,
            "webhook secrets could not be looked up; retry later",
        ),
        (
            Mode::Panic,
            "webhook secrets could not be looked up; retry later",
        ),
    ] {
        *directory.mode.lock().unwrap() = mode;
        let (status, text) = answer(&app, request("acme", "acme_secret", &event("v"))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(text, reason);
    }
    *directory.mode.lock().unwrap() = Mode::Answer;
    directory.set("acme", &["acme_secret", ""]);
    let (status, text) = answer(&app, request("acme", "acme_secret", &event("v"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        text,
        "webhook secrets are misconfigured for this endpoint; retry later"
    );
    assert_eq!(handled.load(Ordering::SeqCst), 0);
    directory.set("acme", &["acme_secret"]);
    let (status, _) = answer(&app, request("acme", "acme_secret", &event("v"))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_same_event_id_is_two_events_under_two_tenants_and_one_under_one() {
    let directory = Directory::new([
        ("acme".to_owned(), vec!["acme_secret".to_owned()]),
        ("globex".to_owned(), vec!["globex_secret".to_owned()]),
    ]);
    let tenants = directory.tenants();
    let handled = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&handled);
    let app = Router::new().route(
        "/webhooks/{tenant}",
        post(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { "ok" }
        })
        .route_layer(
            ServiceBuilder::new()
                .layer(videonest::tenant_layer(&tenants).unwrap())
                .layer(DedupeLayer::<videonest::Event, _>::new(MemoryStore::new())),
        ),
    );
    let body = event("vid_same");
    for (tenant, secret) in [("acme", "acme_secret"), ("globex", "globex_secret")] {
        let response = send(&app, request(tenant, secret, &body)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers().get(DUPLICATE_HEADER).is_none(),
            "{tenant}"
        );
    }
    assert_eq!(
        handled.load(Ordering::SeqCst),
        2,
        "processed once per tenant"
    );
    let repeat = send(&app, request("acme", "acme_secret", &body)).await;
    assert_eq!(repeat.status(), StatusCode::OK);
    assert_eq!(repeat.headers()[DUPLICATE_HEADER], "true");
    assert_eq!(
        handled.load(Ordering::SeqCst),
        2,
        "a repeat under one tenant is not"
    );
}

#[tokio::test]
async fn the_tenant_can_be_named_by_a_header_or_a_query_parameter_in_any_tower_stack() {
    let directory =
        Directory::new([("acme".to_owned(), vec!["whsec_YWNtZV9zZWNyZXQ=".to_owned()])]);
    let seen = |tenants: Tenants| {
        ServiceBuilder::new()
            .layer(generic::tenant_layer(standard_webhooks::scheme(), &tenants).unwrap())
            .service_fn(|request: Request<Full<Bytes>>| async move {
                let verified = request
                    .extensions()
                    .get::<Verified<generic::Event>>()
                    .expect("verified");
                let tenant = verified.tenant().unwrap().to_owned();
                Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(tenant))))
            })
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let signed = |uri: &str, tenant_header: Option<&str>| {
        let mut request =
            standard_webhooks::signed_request("whsec_YWNtZV9zZWNyZXQ=", "msg_1", now, "{}")
                .unwrap();
        *request.uri_mut() = uri.parse().unwrap();
        if let Some(tenant) = tenant_header {
            request
                .headers_mut()
                .insert("x-tenant", tenant.parse().unwrap());
        }
        request
    };
    let by_header = seen(
        directory
            .tenants()
            .from_header(http::HeaderName::from_static("x-tenant")),
    );
    let response = by_header
        .clone()
        .oneshot(signed("/hooks", Some("acme")))
        .await
        .unwrap();
    assert_eq!(body_bytes(response.into_body()).await, "acme");
    let response = by_header
        .oneshot(signed("/hooks/acme", None))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let by_query = seen(directory.tenants().from_query("account"));
    let response = by_query
        .oneshot(signed("/hooks?x=1&account=acme", None))
        .await
        .unwrap();
    assert_eq!(body_bytes(response.into_body()).await, "acme");
}

#[tokio::test]
async fn a_queued_delivery_keeps_its_tenant() {
    use tower_webhook::queue::{Enqueue, MemoryQueue, Pull, Queue};

    let directory = Directory::new([("acme".to_owned(), vec!["acme_secret".to_owned()])]);
    let tenants = directory.tenants();
    let queue = Arc::new(MemoryQueue::new(16));
    let app = Router::new().route(
        "/webhooks/{tenant}",
        axum::routing::post_service(
            ServiceBuilder::new()
                .layer(videonest::tenant_layer(&tenants).unwrap())
                .service(Enqueue::<videonest::Event, _>::new(Arc::clone(&queue)).deduplicate()),
        ),
    );
    let response = send(&app, request("acme", "acme_secret", &event("vid_1"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let pulled = queue.pull("test", Pull::up_to(1)).await.unwrap();
    let delivery =
        tower_webhook::queue::Delivery::<videonest::Event>::from_message(&pulled[0]).unwrap();
    assert_eq!(delivery.verified().tenant(), Some("acme"));
}

#[tokio::test]
async fn tenants_reach_metrics_labels_only_when_the_layer_labels_them() {
    use metrics_util::debugging::DebuggingRecorder;

    let directory = Directory::new([("acme".to_owned(), vec!["acme_secret".to_owned()])]);
    for labelled in [false, true] {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let _local = metrics::set_default_local_recorder(&recorder);
        let tenants = directory.tenants();
        let mut layer = videonest::tenant_layer(&tenants).unwrap();
        if labelled {
            layer = layer.label_tenants();
        }
        let app = app(layer, &Arc::default());
        let (status, _) = answer(&app, request("acme", "acme_secret", &event("v"))).await;
        assert_eq!(status, StatusCode::OK);
        // Refused: an unverified request's tenant is never a label.
        let (status, _) = answer(&app, request("mallory", "acme_secret", &event("v"))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let tenants: Vec<String> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .flat_map(|(key, ..)| {
                key.key()
                    .labels()
                    .filter(|label| label.key() == "tenant")
                    .map(|label| label.value().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        if labelled {
            assert!(
                !tenants.is_empty() && tenants.iter().all(|t| t == "acme"),
                "{tenants:?}"
            );
        } else {
            assert!(tenants.is_empty(), "{tenants:?}");
        }
    }
}

#[tokio::test]
async fn a_time_to_live_of_forever_keeps_a_tenant_until_it_is_invalidated() {
    let directory = Directory::new([("acme".to_owned(), vec!["acme_secret".to_owned()])]);
    let tenants = directory
        .tenants()
        .ttl(Duration::MAX)
        .unknown_ttl(Duration::MAX);
    let app = app_for(&tenants);
    for _ in 0..3 {
        assert_eq!(app_status(&app, "acme_secret").await, StatusCode::OK);
        let (status, _) = answer(&app, request("nobody", "acme_secret", &event("v"))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(directory.lookups(), 2, "one lookup each, kept");
    directory.set("acme", &["rotated"]);
    tenants.invalidate("acme");
    assert_eq!(
        app_status(&app, "acme_secret").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app_status(&app, "rotated").await, StatusCode::OK);
}

#[tokio::test]
async fn a_flood_of_made_up_ids_is_bounded_in_lookups_and_does_not_evict_a_real_tenant() {
    let directory = Directory::new([("acme".to_owned(), vec!["acme_secret".to_owned()])]);
    let tenants = directory.tenants().max_tenants(50).max_lookups(4);
    let app = app_for(&tenants);
    assert_eq!(app_status(&app, "acme_secret").await, StatusCode::OK);
    assert_eq!(directory.lookups(), 1);

    // 200 made-up ids at once, each lookup slow: at most 4 run, the rest are 503 at once.
    *directory.delay.lock().unwrap() = Duration::from_millis(200);
    let flood: Vec<_> = (0..200)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                answer(&app, request(&format!("made-up-{i}"), "x", &event("v"))).await
            })
        })
        .collect();
    let mut statuses = HashMap::new();
    for answered in flood {
        let (status, text) = answered.await.unwrap();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(
                text,
                "too many webhook secrets are being looked up; retry later"
            );
        }
        *statuses.entry(status).or_insert(0) += 1;
    }
    assert_eq!(directory.lookups(), 1 + 4, "{statuses:?}");
    assert_eq!(statuses[&StatusCode::UNAUTHORIZED], 4);
    assert_eq!(statuses[&StatusCode::SERVICE_UNAVAILABLE], 196);

    // More made-up ids than the cache holds, one after another: acme stays cached.
    *directory.delay.lock().unwrap() = Duration::ZERO;
    for i in 0..120 {
        let (status, _) = answer(&app, request(&format!("other-{i}"), "x", &event("v"))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let lookups = directory.lookups();
    assert_eq!(app_status(&app, "acme_secret").await, StatusCode::OK);
    assert_eq!(directory.lookups(), lookups, "acme was not evicted");
}

#[tokio::test]
async fn ids_refused_by_accept_ids_are_unknown_without_a_lookup() {
    let directory = Directory::new([
        ("acme".to_owned(), vec!["acme_secret".to_owned()]),
        ("ACME".to_owned(), vec!["acme_secret".to_owned()]),
    ]);
    let tenants = directory
        .tenants()
        .accept_ids(|id| id.bytes().all(|b| b.is_ascii_lowercase()));
    let app = app_for(&tenants);
    let (status, _) = answer(&app, request("ACME", "acme_secret", &event("v"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(directory.lookups(), 0);
    assert_eq!(app_status(&app, "acme_secret").await, StatusCode::OK);
    assert_eq!(directory.lookups(), 1);
}
