//! The providers' signed test vectors (`tests/vectors/{videonest,videoaiditor}.json`, committed
//! with the crate, or the folder named by `TOWER_WEBHOOK_VECTORS`), each case sent through the
//! provider's preset layer.
//!
//! Every case is checked and every failure collected, so one run reports them all.

mod common;

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

use base64::Engine as _;
use bytes::Bytes;
use common::{MAX_REJECTION_TEXT, SEEN_CONTENT_LENGTH, body_bytes, calls, count, echo};
use http::{
    HeaderMap, HeaderName, HeaderValue, Request, StatusCode,
    header::{CONTENT_LENGTH, CONTENT_TYPE},
};
use http_body_util::Full;
use serde_json::Value;
use tower::{ServiceBuilder, ServiceExt};
use tower_webhook::{
    ConfigError, Rejection, SignatureError, Verified, VerifyWebhookLayer,
    provider::{videoaiditor, videonest},
    scheme::Hmac,
};

fn vectors_dir() -> PathBuf {
    match std::env::var_os("TOWER_WEBHOOK_VECTORS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors"),
    }
}

/// Reads one vector file; a missing or unreadable file fails the test.
fn load(file: &str) -> Vec<Value> {
    let path = vectors_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| {
        panic!(
            "cannot read test vectors {}: {err}\n\
             (set TOWER_WEBHOOK_VECTORS to the folder that holds videonest.json and \
             videoaiditor.json)",
            path.display()
        )
    });
    let json: Value = serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("{} is not JSON: {err}", path.display()));
    let cases = json["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("{} has no `cases` array", path.display()))
        .clone();
    assert!(!cases.is_empty(), "{} holds no cases", path.display());
    cases
}

/// One case, ready to send.
struct Case {
    name: String,
    expected: String,
    failure: Option<String>,
    secrets: Vec<String>,
    headers: Vec<(String, String)>,
    body: Bytes,
    /// The bytes the provider signed, when they differ from the body (`signed_bytes`, or the
    /// `Signed form:` in the description).
    signed_form: Option<Bytes>,
}

fn parse_case(case: &Value) -> Result<Case, String> {
    let text = |key: &str| case[key].as_str().map(str::to_owned);
    let name = text("name").ok_or("case without a name")?;
    let body = match (text("body"), text("body_base64")) {
        (Some(body), _) => Bytes::from(body),
        (None, Some(encoded)) => Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|err| format!("{name}: body_base64 does not decode: {err}"))?,
        ),
        (None, None) => return Err(format!("{name}: neither body nor body_base64")),
    };
    let secrets = case["secrets"]
        .as_array()
        .ok_or_else(|| format!("{name}: no secrets"))?
        .iter()
        .map(|secret| secret.as_str().map(str::to_owned))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| format!("{name}: a secret is not a string"))?;
    let headers = case["headers"]
        .as_array()
        .ok_or_else(|| format!("{name}: no headers"))?
        .iter()
        .map(|pair| match pair.as_array().map(Vec::as_slice) {
            Some([name, value]) => Some((name.as_str()?.to_owned(), value.as_str()?.to_owned())),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| format!("{name}: headers are not [name, value] pairs"))?;
    let description = text("description").unwrap_or_default();
    let signed_form = text("signed_bytes")
        .or_else(|| {
            description
                .split_once("Signed form: ")
                .map(|(_, form)| form.trim().to_owned())
        })
        .map(Bytes::from);
    Ok(Case {
        name,
        expected: text("expected").ok_or("case without `expected`")?,
        failure: text("failure"),
        secrets,
        headers,
        body,
        signed_form,
    })
}

fn request_for(case: &Case) -> Result<Request<Full<Bytes>>, String> {
    let mut headers = HeaderMap::new();
    for (name, value) in &case.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|err| format!("header name {name:?}: {err}"))?;
        let value = HeaderValue::from_bytes(value.as_bytes())
            .map_err(|err| format!("header value {value:?}: {err}"))?;
        headers.append(name, value);
    }
    // What any HTTP client sends along with a body of known length.
    if !headers.contains_key(CONTENT_LENGTH) {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(case.body.len()));
    }
    let mut request = Request::post("/webhook")
        .body(Full::new(case.body.clone()))
        .map_err(|err| err.to_string())?;
    *request.headers_mut() = headers;
    Ok(request)
}

/// Whether `rejection` is what the vector's `failure` names.
fn matches_failure(failure: &str, rejection: &Rejection) -> bool {
    match failure {
        "signature_mismatch" => {
            matches!(rejection, Rejection::Signature(SignatureError::Mismatch))
        }
        "missing_header" => matches!(
            rejection,
            Rejection::Signature(SignatureError::Missing { .. })
        ),
        // A repeated header is a malformed header with its own, more precise, variant.
        "malformed_header" => matches!(
            rejection,
            Rejection::Signature(
                SignatureError::Malformed { .. } | SignatureError::Repeated { .. }
            )
        ),
        "unparseable_body" => matches!(rejection, Rejection::Decode(_)),
        _ => false,
    }
}

fn status_for(failure: &str) -> Option<StatusCode> {
    match failure {
        "signature_mismatch" | "missing_header" | "malformed_header" => {
            Some(StatusCode::UNAUTHORIZED)
        }
        "unparseable_body" => Some(StatusCode::BAD_REQUEST),
        _ => None,
    }
}

/// Sends one case through `layer` and checks the outcome; `check_event` checks a valid case's
/// event against the signed JSON.
async fn run_case<E>(
    case: &Case,
    layer: VerifyWebhookLayer<Hmac, E>,
    check_event: fn(&E, &Value) -> Result<(), String>,
) -> Result<(), String>
where
    E: Clone + Send + Sync + 'static,
{
    let calls = calls();
    let handler_calls = calls.clone();
    let service = ServiceBuilder::new()
        .layer(layer)
        .service_fn(move |request| echo::<E>(handler_calls.clone(), request));
    let request = request_for(case)?;
    let response = common::guard(&case.name, service.oneshot(request))
        .await
        .unwrap_or_else(|never: std::convert::Infallible| match never {});

    match case.expected.as_str() {
        "valid" => {
            if response.status() != StatusCode::OK {
                let status = response.status();
                let rejection = response.extensions().get::<Rejection>().cloned();
                return Err(format!(
                    "expected 200, got {status} ({})",
                    rejection.map_or("no Rejection".to_owned(), |r| format!("{r:?}"))
                ));
            }
            if count(&calls) != 1 {
                return Err(format!("the handler ran {} times", count(&calls)));
            }
            let verified = response
                .extensions()
                .get::<Verified<E>>()
                .cloned()
                .ok_or("the handler got no Verified<Event>")?;
            let seen_length = response.headers().get(SEEN_CONTENT_LENGTH).cloned();
            let handler_body = body_bytes(response.into_body()).await;

            let signed = match &case.signed_form {
                Some(form) if form[..] != case.body[..] => {
                    if !verified.is_reserialized() {
                        return Err("is_reserialized() is false for a re-serialised MAC".into());
                    }
                    let as_json = |bytes: &[u8], what: &str| {
                        serde_json::from_slice::<Value>(bytes)
                            .map_err(|err| format!("{what} is not JSON: {err}"))
                    };
                    if as_json(&handler_body, "the handler's body")?
                        != as_json(form, "the signed form")?
                    {
                        return Err(format!(
                            "the handler's body {:?} is not the signed form {:?}",
                            String::from_utf8_lossy(&handler_body),
                            String::from_utf8_lossy(form)
                        ));
                    }
                    if seen_length != Some(HeaderValue::from(form.len())) {
                        return Err(format!(
                            "the handler saw Content-Length {seen_length:?}, but its body is {} \
                             bytes",
                            form.len()
                        ));
                    }
                    form.clone()
                }
                _ => {
                    if verified.is_reserialized() {
                        return Err("is_reserialized() is true for a raw-body MAC".into());
                    }
                    case.body.clone()
                }
            };
            if handler_body != signed {
                return Err(format!(
                    "the handler's body is not the signed bytes: {:?}",
                    String::from_utf8_lossy(&handler_body)
                ));
            }
            if verified.body() != &signed {
                return Err("Verified::body() is not the signed bytes".into());
            }
            let json: Value = serde_json::from_slice(&signed)
                .map_err(|err| format!("signed bytes are not JSON: {err}"))?;
            check_event(verified.event(), &json)
        }
        "invalid" => {
            let failure = case
                .failure
                .as_deref()
                .ok_or("invalid case without failure")?;
            let status = status_for(failure)
                .ok_or_else(|| format!("failure kind {failure:?} does not apply to this scheme"))?;
            if count(&calls) != 0 {
                return Err(format!(
                    "the handler ran for an invalid request (status {})",
                    response.status()
                ));
            }
            if response.status() != status {
                return Err(format!(
                    "expected {status}, got {} ({:?})",
                    response.status(),
                    response.extensions().get::<Rejection>()
                ));
            }
            let rejection = response
                .extensions()
                .get::<Rejection>()
                .cloned()
                .ok_or("no Rejection in the response extensions")?;
            if !matches_failure(failure, &rejection) {
                return Err(format!("expected {failure}, got {rejection:?}"));
            }
            // Shape of the refusal: a short plain-text reason without any secret.
            let content_type = response.headers().get(CONTENT_TYPE).cloned();
            if content_type != Some(HeaderValue::from_static("text/plain; charset=utf-8")) {
                return Err(format!("rejection content-type is {content_type:?}"));
            }
            let text = body_bytes(response.into_body()).await;
            let text = String::from_utf8_lossy(&text);
            if text.is_empty() || text.len() > MAX_REJECTION_TEXT {
                return Err(format!("rejection text is {} bytes long", text.len()));
            }
            if case
                .secrets
                .iter()
                .any(|secret| text.contains(secret.as_str()))
            {
                return Err(format!("rejection text shows a secret: {text:?}"));
            }
            Ok(())
        }
        other => Err(format!("unknown expectation {other:?}")),
    }
}

fn check_videonest(event: &videonest::Event, json: &Value) -> Result<(), String> {
    let event_type = json["event"].as_str().unwrap_or_default();
    if event.event_type() != event_type {
        return Err(format!(
            "event_type() is {:?}, the body says {event_type:?}",
            event.event_type()
        ));
    }
    if event.id() != json["data"]["id"].as_str() {
        return Err(format!(
            "id() is {:?}, the body's data.id is {}",
            event.id(),
            json["data"]["id"]
        ));
    }
    let variant_ok = match event_type {
        "video.processed" => matches!(event, videonest::Event::VideoProcessed(..)),
        "video.published" => matches!(event, videonest::Event::VideoPublished(..)),
        "video.failed" => matches!(event, videonest::Event::VideoFailed(..)),
        "distribution.completed" => matches!(event, videonest::Event::DistributionCompleted(..)),
        "distribution.failed" => matches!(event, videonest::Event::DistributionFailed(..)),
        _ => matches!(event, videonest::Event::Raw(..)),
    };
    if variant_ok {
        Ok(())
    } else {
        Err(format!("{event_type:?} decoded as {event:?}"))
    }
}

fn check_videoaiditor(event: &videoaiditor::Event, json: &Value) -> Result<(), String> {
    let event_type = json["event"].as_str().unwrap_or_default();
    if event.event_type() != event_type {
        return Err(format!(
            "event_type() is {:?}, the body says {event_type:?}",
            event.event_type()
        ));
    }
    if event.id() != json["data"]["_id"].as_str() {
        return Err(format!(
            "id() is {:?}, the body's data._id is {}",
            event.id(),
            json["data"]["_id"]
        ));
    }
    let variant_ok = match event_type {
        "render.completed" => matches!(event, videoaiditor::Event::RenderCompleted(..)),
        "render.failed" => matches!(event, videoaiditor::Event::RenderFailed(..)),
        _ => matches!(event, videoaiditor::Event::Raw(..)),
    };
    if variant_ok {
        Ok(())
    } else {
        Err(format!("{event_type:?} decoded as {event:?}"))
    }
}

/// A provider's `layer` function.
type MakeLayer<E> = fn(&[String]) -> Result<VerifyWebhookLayer<Hmac, E>, ConfigError>;

/// Runs every case of `file`; returns how many ran and the failures.
async fn run_file<E>(
    file: &str,
    layer: MakeLayer<E>,
    check_event: fn(&E, &Value) -> Result<(), String>,
) -> (usize, String)
where
    E: Clone + Send + Sync + 'static,
{
    let cases = load(file);
    let mut failures = String::new();
    for (index, raw) in cases.iter().enumerate() {
        let outcome = match parse_case(raw) {
            Ok(case) => match layer(&case.secrets) {
                Ok(layer) => run_case(&case, layer, check_event)
                    .await
                    .map_err(|err| format!("{}: {err}", case.name)),
                Err(err) => Err(format!("{}: layer: {err}", case.name)),
            },
            Err(err) => Err(format!("case #{index}: {err}")),
        };
        if let Err(message) = outcome {
            let _ = writeln!(failures, "  {file}: {message}");
        }
    }
    (cases.len(), failures)
}

#[tokio::test]
async fn videonest_vectors() {
    let (count, failures) = run_file(
        "videonest.json",
        |secrets| videonest::layer(secrets),
        check_videonest,
    )
    .await;
    assert!(count > 0, "videonest.json holds no cases");
    assert!(
        failures.is_empty(),
        "VideoNest vectors that failed:\n{failures}"
    );
}

#[tokio::test]
async fn videoaiditor_vectors() {
    let (count, failures) = run_file(
        "videoaiditor.json",
        |secrets| videoaiditor::layer(secrets),
        check_videoaiditor,
    )
    .await;
    assert!(count > 0, "videoaiditor.json holds no cases");
    assert!(
        failures.is_empty(),
        "VideoAIditor vectors that failed:\n{failures}"
    );
}

#[test]
fn vectors_folder_is_required() {
    // The default location must exist unless overridden: the vectors are not optional.
    let dir = vectors_dir();
    assert!(
        dir.join("videonest.json").is_file() && dir.join("videoaiditor.json").is_file(),
        "test vectors not found in {} (set TOWER_WEBHOOK_VECTORS to their folder)",
        dir.display()
    );
}
