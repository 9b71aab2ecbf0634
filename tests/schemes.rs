//! Every case of the signed vectors for the presets built on `Hmac` (GitHub, Stripe, Standard
//! Webhooks, Svix, Shopify, Slack) and for providers expressed with the generic model (Paddle,
//! Linear, Zoom, Square, Intercom), sent through the layer with the clock fixed at the case's
//! `now`. Every failure is collected, so one run reports them all.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, UNIX_EPOCH},
};

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, header::CONTENT_LENGTH};
use http_body_util::Full;
use serde_json::Value;
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_webhook::{
    Rejection, SignatureError, Verified, WebhookEvent,
    provider::{
        discord, generic, github, gitlab, sendgrid, shopify, slack, standard_webhooks, stripe,
        svix, twilio,
    },
    scheme::{
        Encoding, Field, Grammar, Hmac, HmacBuilder, Part, PublicKey, TimestampSource,
        TimestampUnit,
    },
};

/// Vector files this repository makes itself (`scripts/vectors/ed25519.mjs`).
const OWN_FILES: &[&str] = &["discord.json", "standardwebhooks-v1a.json"];

fn vectors_dir() -> PathBuf {
    match std::env::var_os("TOWER_WEBHOOK_VECTORS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors"),
    }
}

fn load(file: &str) -> Vec<Value> {
    let mut path = vectors_dir().join(file);
    // The crate's own files (made by scripts/vectors/), when the folder named does not hold
    // them: the providers' folder has no Discord or `v1a` file.
    let own = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(file);
    if OWN_FILES.contains(&file) && !path.exists() {
        path = own;
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read test vectors {}: {err}", path.display()));
    let json: Value = serde_json::from_str(&text).expect("vector file is JSON");
    let cases = json["cases"].as_array().expect("a `cases` array").clone();
    assert!(!cases.is_empty(), "{} holds no cases", path.display());
    cases
}

fn text(case: &Value, key: &str) -> Option<String> {
    case[key].as_str().map(str::to_owned)
}

fn body_of(case: &Value) -> Bytes {
    match (text(case, "body"), text(case, "body_base64")) {
        (Some(body), _) => Bytes::from(body),
        (None, Some(encoded)) => Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .expect("body_base64 decodes"),
        ),
        (None, None) => panic!("case without a body"),
    }
}

fn request_for(case: &Value, body: &Bytes) -> Request<Full<Bytes>> {
    let mut request = Request::post("/webhook")
        .body(Full::new(body.clone()))
        .unwrap();
    for pair in case["headers"].as_array().expect("headers") {
        let name = HeaderName::from_bytes(pair[0].as_str().unwrap().as_bytes()).unwrap();
        let value = HeaderValue::from_bytes(pair[1].as_str().unwrap().as_bytes()).unwrap();
        request.headers_mut().append(name, value);
    }
    request
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    request
}

fn matches_failure(failure: &str, rejection: &Rejection) -> bool {
    match failure {
        "signature_mismatch" => {
            matches!(rejection, Rejection::Signature(SignatureError::Mismatch))
        }
        "missing_header" => matches!(
            rejection,
            Rejection::Signature(SignatureError::Missing { .. })
        ),
        "malformed_header" => matches!(
            rejection,
            Rejection::Signature(
                SignatureError::Malformed { .. } | SignatureError::Repeated { .. }
            )
        ),
        "timestamp_out_of_tolerance" => matches!(
            rejection,
            Rejection::Signature(SignatureError::OutOfTolerance { .. })
        ),
        "unparseable_body" => matches!(rejection, Rejection::Decode(_)),
        _ => false,
    }
}

/// What a valid case's handler saw.
type Seen = Arc<Mutex<Option<Verified<generic::Event>>>>;

/// How a case's `secrets` are given to a scheme: as secrets, or as public keys.
type Keys = fn(HmacBuilder, Vec<String>) -> HmacBuilder;

/// The case's secrets, as secrets.
fn secrets(scheme: HmacBuilder, secrets: Vec<String>) -> HmacBuilder {
    scheme.secrets(secrets)
}

/// Sends one case through a layer built from `scheme` (with the case's secrets and clock).
async fn run_case(
    case: &Value,
    scheme: HmacBuilder,
    keys: Keys,
    typed: &Mutex<usize>,
) -> Result<(), String> {
    let now = case["now"].as_u64().ok_or("no `now`")?;
    let secrets: Vec<String> = case["secrets"]
        .as_array()
        .ok_or("no secrets")?
        .iter()
        .map(|secret| secret.as_str().unwrap().to_owned())
        .collect();
    let scheme = keys(scheme, secrets).clock(move || UNIX_EPOCH + Duration::from_secs(now));
    let layer = generic::layer(scheme).map_err(|err| err.to_string())?;
    let seen: Seen = Arc::default();
    let handler_seen = seen.clone();
    let service = ServiceBuilder::new().layer(layer).service(service_fn(
        move |request: Request<Full<Bytes>>| {
            let seen = handler_seen.clone();
            async move {
                let verified = request
                    .extensions()
                    .get::<Verified<generic::Event>>()
                    .cloned();
                *seen.lock().unwrap() = verified;
                Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
            }
        },
    ));
    let body = body_of(case);
    let response = service
        .oneshot(request_for(case, &body))
        .await
        .unwrap_or_else(|never| match never {});
    let rejection = response.extensions().get::<Rejection>().cloned();
    match case["expected"].as_str() {
        Some("valid") => {
            if response.status() != StatusCode::OK {
                return Err(format!(
                    "expected 200, got {} ({rejection:?})",
                    response.status()
                ));
            }
            let verified = seen
                .lock()
                .unwrap()
                .take()
                .ok_or("handler saw no Verified")?;
            if verified.body() != &body {
                return Err("the handler's signed bytes are not the body".into());
            }
            // What the scheme read is what the event says, for every preset.
            if verified.delivery_event_type().unwrap_or_default() != verified.event().event_type() {
                return Err("the scheme's event type differs from the event's".into());
            }
            if verified.delivery_id() != verified.event().id() {
                return Err("the delivery id differs from the event's id".into());
            }
            if verified.delivery_event_type().is_some() {
                *typed.lock().unwrap() += 1;
            }
            Ok(())
        }
        Some("invalid") => {
            let failure = case["failure"]
                .as_str()
                .ok_or("invalid case without failure")?;
            if response.status() != StatusCode::UNAUTHORIZED {
                return Err(format!(
                    "expected 401 ({failure}), got {}",
                    response.status()
                ));
            }
            let rejection = rejection.ok_or("no Rejection in the response")?;
            if !matches_failure(failure, &rejection) {
                return Err(format!("expected {failure}, got {rejection:?}"));
            }
            if seen.lock().unwrap().is_some() {
                return Err("the handler ran for a refused request".into());
            }
            Ok(())
        }
        other => Err(format!("unknown expectation {other:?}")),
    }
}

/// Runs every case of `file`, with the scheme `scheme` makes for the case and the case's secrets.
async fn run_file(file: &str, scheme: impl Fn(&Value) -> HmacBuilder, require_event_type: bool) {
    run_file_with(file, scheme, secrets, require_event_type).await;
}

/// [`run_file`], the case's secrets given to the scheme by `keys`.
async fn run_file_with(
    file: &str,
    scheme: impl Fn(&Value) -> HmacBuilder,
    keys: Keys,
    require_event_type: bool,
) {
    let mut failures = Vec::new();
    let typed = Mutex::new(0);
    let cases = load(file);
    for case in &cases {
        let name = text(case, "name").unwrap_or_default();
        if let Err(err) = run_case(case, scheme(case), keys, &typed).await {
            failures.push(format!("{file} {name}: {err}"));
        }
    }
    if require_event_type && *typed.lock().unwrap() == 0 {
        failures.push(format!("{file}: no valid case had an event type"));
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// SendGrid: the cases' "secrets" are the public verification keys.
#[tokio::test]
async fn sendgrid_vectors() {
    run_file_with(
        "sendgrid.json",
        |_| sendgrid::scheme(),
        |scheme, keys| {
            scheme.public_keys(keys.iter().map(|key| PublicKey::p256_base64(key).unwrap()))
        },
        false,
    )
    .await;
}

/// Discord: the cases' "secrets" are the application's public keys, in hex.
#[tokio::test]
async fn discord_vectors() {
    run_file_with(
        "discord.json",
        |_| discord::scheme(),
        |scheme, keys| {
            scheme.public_keys(keys.iter().map(|key| PublicKey::ed25519_hex(key).unwrap()))
        },
        true,
    )
    .await;
}

/// Standard Webhooks `v1a`: `whpk_` public keys and `whsec_` secrets, mixed.
#[tokio::test]
async fn standard_webhooks_v1a_vectors() {
    run_file_with(
        "standardwebhooks-v1a.json",
        |_| standard_webhooks::scheme(),
        |mut scheme, keys| {
            for key in keys {
                scheme = match PublicKey::whpk(&key) {
                    Ok(public) => scheme.public_key(public),
                    Err(_) => scheme.secret(key),
                };
            }
            scheme
        },
        true,
    )
    .await;
}

/// Whether `response` is what `case` expects: 200, or 401 with the case's failure (a case
/// without one says only that the request is refused).
fn judged<B>(case: &Value, response: &Response<B>) -> Result<(), String> {
    let rejection = response.extensions().get::<Rejection>();
    match (case["expected"].as_str(), response.status()) {
        (Some("valid"), StatusCode::OK) => Ok(()),
        (Some("invalid"), StatusCode::UNAUTHORIZED) => {
            match (case["failure"].as_str(), rejection) {
                (None, Some(_)) => Ok(()),
                (Some(failure), Some(rejection)) if matches_failure(failure, rejection) => Ok(()),
                (failure, other) => Err(format!("expected {failure:?}, got {other:?}")),
            }
        }
        (expected, status) => Err(format!(
            "expected {expected:?}, got {status} ({rejection:?})"
        )),
    }
}

/// Twilio: every case, with the URL taken from the request (`Host`, path and query) and with
/// the public URL configured.
#[tokio::test]
async fn twilio_vectors() {
    let cases = load("twilio.json");
    let mut failures = Vec::new();
    for configured in [false, true] {
        for case in &cases {
            let name = text(case, "name").unwrap_or_default();
            let tokens: Vec<String> = case["secrets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|token| token.as_str().unwrap().to_owned())
                .collect();
            let url: http::Uri = case["url"].as_str().unwrap().parse().unwrap();
            let host = url.authority().unwrap().as_str().to_owned();
            let layer = if configured {
                twilio::layer_at(tokens, &format!("https://{host}")).unwrap()
            } else {
                twilio::layer(tokens).unwrap()
            };
            let body = body_of(case);
            let mut request = request_for(case, &body);
            *request.uri_mut() = url.path_and_query().unwrap().as_str().parse().unwrap();
            request
                .headers_mut()
                .insert(http::header::HOST, HeaderValue::from_str(&host).unwrap());
            let service = ServiceBuilder::new().layer(layer).service(service_fn(
                |request: Request<Full<Bytes>>| async move {
                    assert!(
                        request
                            .extensions()
                            .get::<Verified<generic::Event>>()
                            .is_some()
                    );
                    Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
                },
            ));
            let response = service
                .oneshot(request)
                .await
                .unwrap_or_else(|never| match never {});
            if let Err(err) = judged(case, &response) {
                failures.push(format!(
                    "twilio.json {name} (configured URL: {configured}): {err}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// GitLab: a shared token, the cases' secrets the tokens the receiver accepts.
#[tokio::test]
async fn gitlab_vectors() {
    let cases = load("gitlab.json");
    let mut failures = Vec::new();
    for case in &cases {
        let name = text(case, "name").unwrap_or_default();
        let tokens: Vec<String> = case["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|token| token.as_str().unwrap().to_owned())
            .collect();
        let layer = gitlab::layer(tokens).unwrap();
        let body = body_of(case);
        let service = ServiceBuilder::new().layer(layer).service(service_fn(
            |request: Request<Full<Bytes>>| async move {
                let verified = request.extensions().get::<Verified<generic::Event>>();
                let event = verified
                    .map(|v| v.event_type().to_owned())
                    .unwrap_or_default();
                Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(event))))
            },
        ));
        let response = service
            .oneshot(request_for(case, &body))
            .await
            .unwrap_or_else(|never| match never {});
        if let Err(err) = judged(case, &response) {
            failures.push(format!("gitlab.json {name}: {err}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(cases.len() >= 9, "{} cases", cases.len());
}

#[tokio::test]
async fn github_vectors() {
    run_file("github.json", |_| github::scheme(), true).await;
}

#[tokio::test]
async fn stripe_vectors() {
    run_file("stripe.json", |_| stripe::scheme(), true).await;
}

#[tokio::test]
async fn standard_webhooks_vectors() {
    run_file(
        "standardwebhooks.json",
        |_| standard_webhooks::scheme(),
        true,
    )
    .await;
}

#[tokio::test]
async fn svix_vectors() {
    run_file("svix.json", |_| svix::scheme(), true).await;
}

#[tokio::test]
async fn shopify_vectors() {
    run_file("shopify.json", |_| shopify::scheme(), true).await;
}

#[tokio::test]
async fn slack_vectors() {
    run_file("slack.json", |_| slack::scheme(), true).await;
}

/// Paddle: `Paddle-Signature: ts=…;h1=…[;h1=…]`, signed `{ts}:{body}`, 5 s either way.
fn paddle() -> HmacBuilder {
    Hmac::sha256("Paddle-Signature")
        .name("paddle")
        .grammar(Grammar::pairs(';', "ts", "h1"))
        .timestamp(TimestampSource::SignatureHeader)
        .signs([Part::Timestamp, Part::literal(":"), Part::Body])
        .tolerance(Duration::from_secs(5))
        .event_type([Field::json("/event_type")])
        .delivery_id([Field::json("/event_id")])
}

/// Linear: hex of the raw body; `webhookTimestamp` (ms) in the signed body, 60 s either way.
fn linear() -> HmacBuilder {
    Hmac::sha256("Linear-Signature")
        .name("linear")
        .timestamp(TimestampSource::BodyField {
            field: "webhookTimestamp".into(),
            unit: TimestampUnit::Millis,
        })
        .tolerance(Duration::from_secs(60))
        .event_type([Field::header("Linear-Event")])
        .delivery_id([Field::header("Linear-Delivery")])
}

/// Zoom: `x-zm-signature: v0=<hex of "v0:{ts}:{body}">`.
fn zoom() -> HmacBuilder {
    Hmac::sha256("x-zm-signature")
        .name("zoom")
        .grammar(Grammar::prefixed("v0="))
        .timestamp(TimestampSource::Header(
            "x-zm-request-timestamp".parse().unwrap(),
        ))
        .signs([
            Part::literal("v0:"),
            Part::Timestamp,
            Part::literal(":"),
            Part::Body,
        ])
        .event_type([Field::json("/event")])
}

/// Square: base64 of the notification URL followed by the body.
fn square(url: &str) -> HmacBuilder {
    Hmac::sha256("x-square-hmacsha256-signature")
        .name("square")
        .encoding(Encoding::Base64)
        .signs([Part::literal(url.to_owned()), Part::Body])
        .event_type([Field::json("/type")])
        .delivery_id([Field::json("/event_id")])
}

/// Intercom: `X-Hub-Signature: sha1=<hex HMAC-SHA1 of the body>`.
fn intercom() -> HmacBuilder {
    Hmac::sha1("X-Hub-Signature")
        .name("intercom")
        .grammar(Grammar::prefixed("sha1="))
        .event_type([Field::json("/topic")])
        .delivery_id([Field::json("/id")])
}

#[tokio::test]
async fn paddle_vectors() {
    run_file("paddle.json", |_| paddle(), true).await;
}

#[tokio::test]
async fn linear_vectors() {
    run_file("linear.json", |_| linear(), true).await;
}

#[tokio::test]
async fn zoom_vectors() {
    run_file("zoom.json", |_| zoom(), true).await;
}

#[tokio::test]
async fn square_vectors() {
    run_file(
        "square.json",
        |case| square(case["url"].as_str().expect("square cases have a url")),
        true,
    )
    .await;
}

#[tokio::test]
async fn intercom_vectors() {
    run_file("intercom.json", |_| intercom(), true).await;
}

/// The value of header `name` in a case, if any.
fn header(case: &Value, name: &str) -> Option<String> {
    case["headers"].as_array()?.iter().find_map(|pair| {
        pair[0]
            .as_str()?
            .eq_ignore_ascii_case(name)
            .then(|| pair[1].as_str().unwrap().to_owned())
    })
}

/// The signing helpers make exactly the signature of each preset's `valid` and
/// `valid_unicode_body` cases, which the providers' own signers made.
#[test]
fn signing_helpers_agree_with_the_vectors() {
    let mut checked = 0;
    for file in [
        "github.json",
        "stripe.json",
        "standardwebhooks.json",
        "svix.json",
        "shopify.json",
        "slack.json",
    ] {
        for case in load(file) {
            let name = text(&case, "name").unwrap();
            if !name.starts_with("valid") {
                continue;
            }
            let secret = case["secrets"][0].as_str().unwrap().to_owned();
            let body = body_of(&case);
            let (signature_header, made) = match file {
                "github.json" => (
                    github::SIGNATURE_HEADER,
                    github::headers(secret, &body).unwrap(),
                ),
                "shopify.json" => (
                    shopify::SIGNATURE_HEADER,
                    shopify::headers(secret, &body).unwrap(),
                ),
                "slack.json" => {
                    let ts = header(&case, slack::TIMESTAMP_HEADER).unwrap();
                    (
                        slack::SIGNATURE_HEADER,
                        slack::headers(secret, &body, ts.parse().unwrap()).unwrap(),
                    )
                }
                "stripe.json" => {
                    let value = header(&case, stripe::SIGNATURE_HEADER).unwrap();
                    let ts = value
                        .split(',')
                        .find_map(|pair| pair.strip_prefix("t="))
                        .unwrap();
                    (
                        stripe::SIGNATURE_HEADER,
                        stripe::headers(secret, &body, ts.parse().unwrap()).unwrap(),
                    )
                }
                "standardwebhooks.json" => {
                    let id = header(&case, standard_webhooks::ID_HEADER).unwrap();
                    let ts = header(&case, standard_webhooks::TIMESTAMP_HEADER).unwrap();
                    (
                        standard_webhooks::SIGNATURE_HEADER,
                        standard_webhooks::headers(secret, &id, ts.parse().unwrap(), &body)
                            .unwrap(),
                    )
                }
                _ => {
                    let id = header(&case, svix::ID_HEADER).unwrap();
                    let ts = header(&case, svix::TIMESTAMP_HEADER).unwrap();
                    (
                        svix::SIGNATURE_HEADER,
                        svix::headers(secret, &id, ts.parse().unwrap(), &body).unwrap(),
                    )
                }
            };
            let expected = header(&case, signature_header).unwrap();
            for (name, value) in &made {
                assert_eq!(
                    Some(value.to_str().unwrap().to_owned()),
                    header(&case, name.as_str()),
                    "{file} {name}: header {name}"
                );
            }
            assert_eq!(made[signature_header], expected.as_str(), "{file} {name}");
            checked += 1;
        }
    }
    assert_eq!(checked, 12, "two valid cases per preset");
}
