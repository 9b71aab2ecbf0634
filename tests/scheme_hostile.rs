//! Hostile and malformed headers for every grammar of the `Hmac` presets: each is refused with
//! 401, never a panic, including random header values (property tests). Also: the replay window
//! is checked only after a signature matched, in both directions, and the signing helpers agree
//! with the providers' published values.

use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, request::Parts};
use http_body_util::Full;
use proptest::prelude::*;
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_webhook::{
    ConfigError, Rejection, SignatureError,
    provider::{generic, github, shopify, slack, standard_webhooks, stripe, svix},
    scheme::{
        Field, Grammar, Hmac, HmacBuilder, MAX_SIGNATURES, Part, Scheme, Signed, TimestampSource,
        TimestampUnit,
    },
};

const NOW: u64 = 1_767_225_600;
const BODY: &[u8] = br#"{"id":"evt_1","type":"invoice.paid","data":{}}"#;
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn at(now: u64, builder: HmacBuilder) -> Hmac {
    builder
        .secret(SECRET)
        .clock(move || UNIX_EPOCH + Duration::from_secs(now))
        .build()
        .unwrap()
}

/// Every preset, with the headers of a correctly signed request at `NOW`.
fn presets() -> Vec<(&'static str, HmacBuilder, HeaderMap)> {
    let ts = NOW as i64;
    vec![
        (
            "github",
            github::scheme(),
            github::headers(SECRET, BODY).unwrap(),
        ),
        (
            "shopify",
            shopify::scheme(),
            shopify::headers(SECRET, BODY).unwrap(),
        ),
        (
            "slack",
            slack::scheme(),
            slack::headers(SECRET, BODY, ts).unwrap(),
        ),
        (
            "stripe",
            stripe::scheme(),
            stripe::headers(SECRET, BODY, ts).unwrap(),
        ),
        (
            "standardwebhooks",
            standard_webhooks::scheme(),
            standard_webhooks::headers(SECRET, "msg_1", ts, BODY).unwrap(),
        ),
        (
            "svix",
            svix::scheme(),
            svix::headers(SECRET, "msg_1", ts, BODY).unwrap(),
        ),
    ]
}

fn head(headers: &HeaderMap) -> Parts {
    let mut request = Request::post("/").body(()).unwrap();
    *request.headers_mut() = headers.clone();
    request.into_parts().0
}

fn decide(scheme: &Hmac, headers: &HeaderMap, body: &[u8]) -> Result<Signed, SignatureError> {
    let signature = scheme.signature(&head(headers))?;
    scheme.verify(&signature, &Bytes::copy_from_slice(body))
}

#[test]
fn correctly_signed_requests_verify() {
    for (name, builder, headers) in presets() {
        let scheme = at(NOW, builder);
        assert_eq!(
            decide(&scheme, &headers, BODY),
            Ok(Signed::RawBody),
            "{name}"
        );
        assert_eq!(
            decide(&scheme, &headers, b"{}"),
            Err(SignatureError::Mismatch),
            "{name}"
        );
    }
}

/// Variants of a good header value that must each be refused as malformed.
fn malformed_variants(good: &[u8]) -> Vec<Vec<u8>> {
    let mut variants = vec![
        Vec::new(),
        good[..good.len() / 2].to_vec(), // truncated
        good[..good.len() - 1].to_vec(), // one character short
        [good, b"0"].concat(),           // one too many
        [good, b"=="].concat(),          // trailing junk
        good.repeat(1000),               // huge
        [good, "é".as_bytes()].concat(), // non-ASCII
        [&good[..3], &[0x80, 0xff][..], &good[3..]].concat(),
        good.to_ascii_uppercase(),
    ];
    // Every separator doubled.
    for sep in [b',', b';', b' ', b'='] {
        if let Some(at) = good.iter().position(|b| *b == sep) {
            variants.push([&good[..=at], &good[at..]].concat());
        }
    }
    variants
}

#[test]
fn malformed_signature_headers_are_refused_in_every_grammar() {
    for (name, builder, headers) in presets() {
        let scheme = at(NOW, builder);
        let header = scheme.header().clone();
        let good = headers[&header].as_bytes().to_vec();
        for value in malformed_variants(&good) {
            let Ok(value) = HeaderValue::from_bytes(&value) else {
                continue;
            };
            if value.as_bytes() == good.as_slice() {
                continue;
            }
            let mut headers = headers.clone();
            headers.insert(header.clone(), value.clone());
            let result = decide(&scheme, &headers, BODY);
            assert!(
                matches!(
                    result,
                    Err(SignatureError::Malformed { .. } | SignatureError::Mismatch)
                ),
                "{name}: {:?} gave {result:?}",
                String::from_utf8_lossy(value.as_bytes())
            );
        }
    }
}

#[test]
fn repeated_header_lines_are_refused_without_reading_them_all() {
    for (name, builder, headers) in presets() {
        let scheme = at(NOW, builder);
        for (header, value) in headers.iter() {
            let mut repeated = headers.clone();
            for _ in 0..10_000 {
                repeated.append(header.clone(), value.clone());
            }
            assert!(
                matches!(
                    decide(&scheme, &repeated, BODY),
                    Err(SignatureError::Repeated { .. })
                ),
                "{name}: {header}"
            );
        }
    }
}

#[test]
fn many_signatures_in_one_header_are_bounded() {
    let scheme = at(NOW, standard_webhooks::scheme());
    let headers = standard_webhooks::headers(SECRET, "msg_1", NOW as i64, BODY).unwrap();
    let good = headers[standard_webhooks::SIGNATURE_HEADER]
        .to_str()
        .unwrap()
        .to_owned();
    let other = "v1,AcAHu72OfHuaODBDHnpel8wpgZJX/qjncXQC88pzcak=";
    // Up to the bound: any valid one suffices, wherever it is (the first ones are kept inline,
    // the rest on the heap).
    for at in [0, 1, 2, MAX_SIGNATURES - 1] {
        let mut within = vec![other; MAX_SIGNATURES - 1];
        within.insert(at, &good);
        let mut headers_within = headers.clone();
        headers_within.insert(
            standard_webhooks::SIGNATURE_HEADER,
            HeaderValue::from_str(&within.join(" ")).unwrap(),
        );
        assert_eq!(
            decide(&scheme, &headers_within, BODY),
            Ok(Signed::RawBody),
            "the valid signature at {at}"
        );
        within.remove(at);
        headers_within.insert(
            standard_webhooks::SIGNATURE_HEADER,
            HeaderValue::from_str(&within.join(" ")).unwrap(),
        );
        assert_eq!(
            decide(&scheme, &headers_within, BODY),
            Err(SignatureError::Mismatch)
        );
    }
    // Unknown versions are ignored.
    let mixed = format!("v1a,bm90IGFuIGVkMjU1MTkgc2lnbmF0dXJl v2,xyz {good}");
    let mut headers_mixed = headers.clone();
    headers_mixed.insert(
        standard_webhooks::SIGNATURE_HEADER,
        HeaderValue::from_str(&mixed).unwrap(),
    );
    assert_eq!(decide(&scheme, &headers_mixed, BODY), Ok(Signed::RawBody));
    // One more is refused before any MAC is computed.
    let mut beyond = vec![other; MAX_SIGNATURES];
    beyond.push(&good);
    let mut headers_beyond = headers;
    headers_beyond.insert(
        standard_webhooks::SIGNATURE_HEADER,
        HeaderValue::from_str(&beyond.join(" ")).unwrap(),
    );
    assert!(matches!(
        decide(&scheme, &headers_beyond, BODY),
        Err(SignatureError::Malformed { .. })
    ));
}

#[test]
fn a_signed_id_may_not_contain_its_separator() {
    let scheme = at(NOW, standard_webhooks::scheme());
    let headers = standard_webhooks::headers(SECRET, "msg.1", NOW as i64, BODY).unwrap();
    assert_eq!(
        decide(&scheme, &headers, BODY).unwrap_err().to_string(),
        "malformed webhook signature in header `webhook-id`: expected a value without `.`"
    );
}

#[test]
fn a_signed_header_may_not_run_into_a_longer_separator() {
    // `x:` then `::` signs `x:::`, as `x` then `::` then `:y` does: one split only is accepted.
    let scheme = at(
        NOW,
        Hmac::sha256("x-signature").signs([
            Part::header("x-a"),
            Part::literal("::"),
            Part::header("x-b"),
            Part::literal("."),
            Part::Body,
        ]),
    );
    let signed = |a: &'static str, b: &'static str| {
        let mut values = HeaderMap::new();
        values.insert("x-a", HeaderValue::from_static(a));
        values.insert("x-b", HeaderValue::from_static(b));
        let mut headers = scheme.sign(BODY, None, &values);
        headers.extend(values);
        headers
    };
    assert_eq!(
        decide(&scheme, &signed("x", ":y"), BODY),
        Ok(Signed::RawBody)
    );
    assert_eq!(
        decide(&scheme, &signed("x:", "y"), BODY)
            .unwrap_err()
            .to_string(),
        "malformed webhook signature in header `x-a`: expected a value that does not end with \
         the start of `::`"
    );
    // A separator whose end does not repeat its start cannot be run into: `a-` before `-.`.
    let other = at(
        NOW,
        Hmac::sha256("x-signature").signs([Part::header("x-a"), Part::literal("-."), Part::Body]),
    );
    let mut values = HeaderMap::new();
    values.insert("x-a", HeaderValue::from_static("a-"));
    let mut headers = other.sign(BODY, None, &values);
    headers.extend(values);
    assert_eq!(decide(&other, &headers, BODY), Ok(Signed::RawBody));
}

#[test]
fn timestamps_that_are_not_plain_seconds_are_malformed() {
    for value in [
        "",
        "-1",
        "+1767225600",
        "1767225600.5",
        "1.7e9",
        "1767225600abc",
        "0x1",
        "١٧٦٧٢٢٥٦٠٠",
        "99999999999999999999999999999999",
        " 1767 225600",
    ] {
        let scheme = at(NOW, slack::scheme());
        let mut headers = slack::headers(SECRET, BODY, NOW as i64).unwrap();
        let Ok(header_value) = HeaderValue::from_bytes(value.as_bytes()) else {
            continue;
        };
        headers.insert(slack::TIMESTAMP_HEADER, header_value);
        assert!(
            matches!(
                decide(&scheme, &headers, BODY),
                Err(SignatureError::Malformed { .. })
            ),
            "{value:?}"
        );
    }
}

#[test]
fn the_window_is_checked_only_after_a_signature_matched_and_both_ways() {
    let scheme = |now| at(now, stripe::scheme());
    let headers = stripe::headers(SECRET, BODY, NOW as i64).unwrap();
    // Within 300 s either way: accepted.
    for now in [NOW - 300, NOW, NOW + 300] {
        assert_eq!(decide(&scheme(now), &headers, BODY), Ok(Signed::RawBody));
    }
    // Beyond, in the past or in the future: refused, with how far.
    let late = decide(&scheme(NOW + 301), &headers, BODY).unwrap_err();
    assert_eq!(
        late.to_string(),
        "webhook timestamp is 301 s in the past; the tolerance is 300 s"
    );
    let early = decide(&scheme(NOW - 3600), &headers, BODY).unwrap_err();
    assert_eq!(
        early.to_string(),
        "webhook timestamp is 3600 s in the future; the tolerance is 300 s"
    );
    // A forged request with a stale timestamp learns nothing about the clock: a mismatch.
    assert_eq!(
        decide(&scheme(NOW + 10_000), &headers, b"forged"),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn a_body_timestamp_window_needs_the_field_once_signed() {
    // VideoNest-style: the only timestamp is an RFC 3339 field inside the signed body.
    let builder = || {
        Hmac::sha256("x-videonest-signature")
            .timestamp(TimestampSource::BodyField {
                field: "timestamp".into(),
                unit: TimestampUnit::Rfc3339,
            })
            .tolerance(Duration::from_secs(3 * 3600))
    };
    let scheme = at(NOW, builder());
    let sign = |body: &[u8]| scheme.sign(body, None, &HeaderMap::new());
    let fresh = br#"{"event":"video.processed","timestamp":"2026-01-01T00:00:00Z"}"#;
    let old = br#"{"event":"video.processed","timestamp":"2025-12-31T20:00:00Z"}"#;
    let none = br#"{"event":"video.processed"}"#;
    assert_eq!(decide(&scheme, &sign(fresh), fresh), Ok(Signed::RawBody));
    assert!(matches!(
        decide(&scheme, &sign(old), old),
        Err(SignatureError::OutOfTolerance { .. })
    ));
    assert!(matches!(
        decide(&scheme, &sign(none), none),
        Err(SignatureError::Other(_))
    ));
}

#[test]
fn signing_helpers_agree_with_published_values() {
    // GitHub's documented example.
    let headers = github::headers("It's a Secret to Everybody", b"Hello, World!").unwrap();
    assert_eq!(
        headers[github::SIGNATURE_HEADER],
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    );
    // The Standard Webhooks / Svix reference vector.
    let headers = standard_webhooks::headers(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1_614_265_330,
        br#"{"test": 2432232314}"#,
    )
    .unwrap();
    assert_eq!(
        headers[standard_webhooks::SIGNATURE_HEADER],
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
    assert_eq!(headers[standard_webhooks::TIMESTAMP_HEADER], "1614265330");
    assert_eq!(
        headers[standard_webhooks::ID_HEADER],
        "msg_p5jXN8AQM9LWM0D4loKWxJek"
    );
    let svix = svix::headers(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1_614_265_330,
        br#"{"test": 2432232314}"#,
    )
    .unwrap();
    assert_eq!(
        svix[svix::SIGNATURE_HEADER],
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
    // Slack's documented example.
    let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    let headers = slack::headers("8f742231b10e8888abcd99yyyzzz85a5", body, 1_531_420_618).unwrap();
    assert_eq!(
        headers[slack::SIGNATURE_HEADER],
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    );
    // Stripe's header layout.
    let headers = stripe::headers("whsec_x", b"{}", 1_767_225_600).unwrap();
    assert!(
        headers[stripe::SIGNATURE_HEADER]
            .to_str()
            .unwrap()
            .starts_with("t=1767225600,v1=")
    );
}

#[test]
fn configuration_mistakes_are_reported() {
    assert_eq!(
        standard_webhooks::layer(["whsec_!!!"]).unwrap_err(),
        ConfigError::InvalidSecret { index: 0 }
    );
    assert_eq!(
        github::layer([""]).unwrap_err(),
        ConfigError::EmptySecret { index: 0 }
    );
    assert!(matches!(
        Hmac::sha256("x-sig")
            .signs([Part::Body, Part::literal(".")])
            .secret("k")
            .build(),
        Err(ConfigError::InvalidScheme { .. })
    ));
    assert!(matches!(
        Hmac::sha256("x-sig")
            .grammar(Grammar::pairs(',', "t", "v1"))
            .secret("k")
            .build(),
        Err(ConfigError::InvalidScheme { .. })
    ));
    assert!(matches!(
        Hmac::sha256("x-sig")
            .timestamp(TimestampSource::Header("x-ts".parse().unwrap()))
            .secret("k")
            .build(),
        Err(ConfigError::InvalidScheme { .. })
    ));
    for grammar in [
        Grammar::pairs(',', "t\n", "v1"),
        Grammar::pairs(',', "t", "v=1"),
        Grammar::pairs('é', "t", "v1"),
    ] {
        assert!(matches!(
            Hmac::sha256("x-sig")
                .grammar(grammar)
                .timestamp(TimestampSource::SignatureHeader)
                .signs([Part::Timestamp, Part::Body])
                .secret("k")
                .build(),
            Err(ConfigError::InvalidScheme { .. })
        ));
    }
    assert!(matches!(
        Hmac::sha256("x-sig")
            .grammar(Grammar::list("v 1"))
            .secret("k")
            .build(),
        Err(ConfigError::InvalidScheme { .. })
    ));
    let debug = format!("{:?}", github::scheme().secret("hunter2-secret"));
    assert!(!debug.contains("hunter2"), "{debug}");
    let debug = format!(
        "{:?}",
        github::scheme().secret("hunter2-secret").build().unwrap()
    );
    assert!(!debug.contains("hunter2"), "{debug}");
}

#[test]
fn json_stringify_is_a_strategy_of_what_is_signed() {
    let scheme = at(
        NOW,
        Hmac::sha256("x-signature").signs([Part::BodyOrJsonStringify { max: 1 << 16 }]),
    );
    let signed_form = br#"{"a":1,"b":[1,2]}"#;
    let sent = b"{ \"a\": 1.0, \"b\": [1, 2] }";
    let headers = scheme.sign(signed_form, None, &HeaderMap::new());
    assert_eq!(
        decide(&scheme, &headers, sent),
        Ok(Signed::Reserialized(Bytes::from_static(signed_form)))
    );
    let raw_only = at(NOW, Hmac::sha256("x-signature"));
    assert_eq!(
        decide(&raw_only, &headers, sent),
        Err(SignatureError::Mismatch)
    );
}

#[tokio::test]
async fn the_layer_answers_401_for_hostile_headers() {
    for (name, builder, headers) in presets() {
        let layer = generic::layer(
            builder
                .secret(SECRET)
                .clock(|| UNIX_EPOCH + Duration::from_secs(NOW)),
        )
        .unwrap();
        let service = ServiceBuilder::new().layer(layer).service(service_fn(
            |_request: Request<Full<Bytes>>| async {
                Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
            },
        ));
        let header = HeaderName::from_bytes(
            headers
                .keys()
                .find(|name| name.as_str().contains("sig") || name.as_str().contains("hmac"))
                .unwrap()
                .as_str()
                .as_bytes(),
        )
        .unwrap();
        for value in [&b"\x80\xff"[..], b"", &b"a,".repeat(50_000)] {
            let mut request = Request::post("/")
                .body(Full::new(Bytes::from_static(BODY)))
                .unwrap();
            *request.headers_mut() = headers.clone();
            request
                .headers_mut()
                .insert(header.clone(), HeaderValue::from_bytes(value).unwrap());
            let response = service.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{name}");
            assert!(response.extensions().get::<Rejection>().is_some());
        }
        let mut request = Request::post("/")
            .body(Full::new(Bytes::from_static(BODY)))
            .unwrap();
        *request.headers_mut() = headers.clone();
        let response = service.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{name}");
    }
}

/// Header-value bytes: anything a server can hand over (visible ASCII, space, tab, obs-text).
fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            Just(b' '),
            Just(b'\t'),
            Just(b','),
            Just(b';'),
            Just(b'='),
            0x21u8..0x7f,
            0x80u8..=0xff,
        ],
        0..200,
    )
}

/// A random value around the grammar's own tokens, to reach deeper into each parser.
fn grammar_like() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            Just(b"t=".to_vec()),
            Just(b"ts=".to_vec()),
            Just(b"v1=".to_vec()),
            Just(b"h1=".to_vec()),
            Just(b"v1,".to_vec()),
            Just(b"sha256=".to_vec()),
            Just(b"v0=".to_vec()),
            Just(b"1767225600".to_vec()),
            Just(b"99999999999999999999".to_vec()),
            Just(b"deadbeef".repeat(8)),
            Just(b"AcAHu72OfHuaODBDHnpel8wpgZJX/qjncXQC88pzcak=".to_vec()),
            Just(b",".to_vec()),
            Just(b";".to_vec()),
            Just(b" ".to_vec()),
            header_bytes(),
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_header_values_never_verify_nor_panic(
        value in prop_oneof![header_bytes(), grammar_like()],
        which in 0usize..3,
    ) {
        for (name, builder, headers) in presets() {
            let scheme = at(NOW, builder);
            let names: Vec<HeaderName> = headers.keys().cloned().collect();
            let target = names[which % names.len()].clone();
            let Ok(value) = HeaderValue::from_bytes(&value) else { continue };
            // HTTP strips white space around a value: the same value padded is the same value.
            let trimmed = value.as_bytes().trim_ascii_start().trim_ascii_end();
            if headers.get(&target).map(HeaderValue::as_bytes) == Some(trimmed) {
                continue;
            }
            let mut headers = headers.clone();
            headers.insert(target.clone(), value);
            let result = decide(&scheme, &headers, BODY);
            // Only a value equal to the real one in what is signed could verify; random bytes
            // that parse must still fail the MAC, in the signature or any signed header.
            prop_assert!(result.is_err(), "{}: {} verified", name, target);
        }
    }

    #[test]
    fn random_timestamps_are_parsed_without_overflow(value in header_bytes()) {
        let scheme = at(NOW, slack::scheme());
        let mut headers = slack::headers(SECRET, BODY, NOW as i64).unwrap();
        let Ok(value) = HeaderValue::from_bytes(&value) else { return Ok(()) };
        headers.insert(slack::TIMESTAMP_HEADER, value);
        prop_assert!(decide(&scheme, &headers, BODY).is_err());
    }

    #[test]
    fn random_metadata_fields_never_panic(body in prop::collection::vec(any::<u8>(), 0..300)) {
        let scheme = at(NOW, Hmac::sha256("x-sig")
            .event_type([Field::json("/type"), Field::form("command")])
            .delivery_id([Field::json("/id"), Field::form("trigger_id")]));
        let headers = scheme.sign(&body, None, &HeaderMap::new());
        prop_assert_eq!(decide(&scheme, &headers, &body), Ok(Signed::RawBody));
        let head = head(&headers);
        let _ = scheme.delivery(&head, &scheme.signature(&head).unwrap(), &Bytes::from(body));
    }
}

#[test]
fn videonest_opt_in_window_on_the_body_timestamp() {
    use tower_webhook::provider::videonest;
    // 2026-03-30T10:15:00Z, the documented example's event time.
    let event_time = 1_774_865_700;
    let body = br#"{"event":"video.processed","timestamp":"2026-03-30T10:15:00Z","data":{"id":"vid_abc123"}}"#;
    let scheme = |now: u64| {
        videonest::windowed_scheme(Duration::from_secs(3600))
            .secret("vn_signing_secret")
            .clock(move || UNIX_EPOCH + Duration::from_secs(now))
            .build()
            .unwrap()
    };
    let headers = scheme(event_time).sign(body, None, &HeaderMap::new());
    // The last retry, 36 minutes later, is inside the window.
    assert_eq!(
        decide(&scheme(event_time + 36 * 60 + 10), &headers, body),
        Ok(Signed::RawBody)
    );
    // A replay two hours later is not.
    assert!(matches!(
        decide(&scheme(event_time + 7200), &headers, body),
        Err(SignatureError::OutOfTolerance { .. })
    ));
    // The metadata is the event's type and id.
    let head = head(&headers);
    let s = scheme(event_time);
    let signature = s.signature(&head).unwrap();
    let delivery = s.delivery(&head, &signature, &Bytes::from_static(body));
    assert_eq!(delivery.event_type.as_deref(), Some("video.processed"));
    assert_eq!(delivery.id.as_deref(), Some("vid_abc123"));
    assert!(
        videonest::layer_with_window(["k"], videonest::RETRY_HORIZON).is_err(),
        "a window no longer than the retry horizon is refused"
    );
}

#[test]
fn aliases_read_white_labelled_and_unprefixed_headers() {
    // White-labelled Svix sends the Standard Webhooks names.
    let svix_scheme = at(NOW, svix::scheme());
    let headers = standard_webhooks::headers(SECRET, "msg_9", NOW as i64, BODY).unwrap();
    let svix_head = head(&headers);
    let signature = svix_scheme.signature(&svix_head).unwrap();
    assert_eq!(
        svix_scheme
            .delivery(&svix_head, &signature, &Bytes::from_static(BODY))
            .id
            .as_deref(),
        Some("msg_9")
    );
    assert_eq!(
        svix_scheme.verify(&signature, &Bytes::from_static(BODY)),
        Ok(Signed::RawBody)
    );
    // Shopify's Events webhooks drop the `X-`.
    let shopify_scheme = at(NOW, shopify::scheme());
    let mut headers = HeaderMap::new();
    for (name, value) in shopify::headers(SECRET, BODY).unwrap() {
        let name = name.unwrap().as_str().trim_start_matches("x-").to_owned();
        headers.insert(HeaderName::from_bytes(name.as_bytes()).unwrap(), value);
    }
    headers.insert("shopify-topic", HeaderValue::from_static("orders/create"));
    let shopify_head = head(&headers);
    let signature = shopify_scheme.signature(&shopify_head).unwrap();
    assert_eq!(
        shopify_scheme
            .delivery(&shopify_head, &signature, &Bytes::from_static(BODY))
            .event_type
            .as_deref(),
        Some("orders/create")
    );
    assert_eq!(
        shopify_scheme.verify(&signature, &Bytes::from_static(BODY)),
        Ok(Signed::RawBody)
    );
    // Neither name: the error names the primary one.
    assert_eq!(
        shopify_scheme
            .signature(&head(&HeaderMap::new()))
            .unwrap_err(),
        SignatureError::Missing {
            header: HeaderName::from_static("x-shopify-hmac-sha256")
        }
    );
}

/// The event id and type come from the header set the signature was read from: a white-labelled
/// Svix request signs `webhook-id`, and an added `svix-id` (which nothing signed) is not read,
/// by the scheme or by the decoder, so it cannot change the deduplication key; the other way
/// round too.
#[tokio::test]
async fn metadata_comes_only_from_the_signed_header_set() {
    let cases = [
        (
            standard_webhooks::headers(SECRET, "msg_signed", NOW as i64, BODY).unwrap(),
            "svix-id",
        ),
        (
            svix::headers(SECRET, "msg_signed", NOW as i64, BODY).unwrap(),
            "webhook-id",
        ),
    ];
    for (signed, added) in cases {
        let mut headers = signed;
        headers.insert(added, HeaderValue::from_static("attacker-chosen"));
        let scheme = at(NOW, svix::scheme());
        let head = head(&headers);
        let signature = scheme.signature(&head).unwrap();
        assert_eq!(
            scheme
                .delivery(&head, &signature, &Bytes::from_static(BODY))
                .id
                .as_deref(),
            Some("msg_signed"),
            "{added}"
        );

        let layer = generic::layer(
            svix::scheme()
                .secret(SECRET)
                .clock(|| UNIX_EPOCH + Duration::from_secs(NOW)),
        )
        .unwrap();
        let service = ServiceBuilder::new().layer(layer).service(service_fn(
            |request: Request<Full<Bytes>>| async move {
                let verified = request
                    .extensions()
                    .get::<tower_webhook::Verified<generic::Event>>()
                    .unwrap();
                let seen = format!(
                    "{:?} {:?}",
                    verified.delivery_id(),
                    tower_webhook::WebhookEvent::id(verified.event())
                );
                Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(seen))))
            },
        ));
        let mut request = Request::post("/webhook")
            .body(Full::new(Bytes::from_static(BODY)))
            .unwrap();
        *request.headers_mut() = headers;
        let response = service.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{added}");
        let seen = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(
            &seen[..],
            br#"Some("msg_signed") Some("msg_signed")"#,
            "{added}"
        );
    }
}

/// GitHub signs neither `X-GitHub-Delivery` nor `X-GitHub-Event`: a captured delivery replayed
/// under another id or event type is still a duplicate, because the key of an event whose id is
/// not signed is the digest of the signed body. Stripe's id is in the signed body: its key stays
/// `["type","id"]`.
#[tokio::test]
async fn a_replay_under_another_unsigned_id_is_still_a_duplicate() {
    use tower_webhook::{
        WebhookEvent,
        dedupe::{DUPLICATE_HEADER, DedupeLayer, store::MemoryStore},
    };
    let service = ServiceBuilder::new()
        .layer(github::layer([SECRET]).unwrap())
        .layer(DedupeLayer::<generic::Event, _>::new(MemoryStore::new()))
        .service(service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
        }));
    let send = |event: &'static str, delivery: &'static str| {
        let mut request = github::signed_request(SECRET, BODY).unwrap();
        let headers = request.headers_mut();
        headers.insert("x-github-event", HeaderValue::from_static(event));
        headers.insert("x-github-delivery", HeaderValue::from_static(delivery));
        service.clone().oneshot(request)
    };
    let first = send("issues", "d-1").await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert!(!first.headers().contains_key(DUPLICATE_HEADER));
    for (event, delivery) in [("issues", "d-1"), ("issues", "d-2"), ("release", "d-3")] {
        let replay = send(event, delivery).await.unwrap();
        assert_eq!(replay.status(), StatusCode::OK);
        assert_eq!(
            replay.headers()[DUPLICATE_HEADER],
            "true",
            "{event} {delivery}"
        );
    }

    let stripe_body = br#"{"id":"evt_1","type":"invoice.paid"}"#;
    let (parts, ()) = Request::post("/webhook").body(()).unwrap().into_parts();
    let decoded = tower_webhook::decode::Decode::decode(
        &generic::Decoder::new(&stripe::scheme().secret(SECRET)),
        &parts,
        &Bytes::from_static(stripe_body),
    )
    .unwrap();
    assert_eq!(
        decoded.idempotency_key().as_deref(),
        Some(r#"["invoice.paid","evt_1"]"#)
    );
}

/// A custom scheme whose delivery id is a header the MAC covers but whose event type is a header
/// it does not: a captured delivery replayed with another `x-event-type` is still a duplicate,
/// since the unsigned event type is left out of the key, and the handler runs once.
#[tokio::test]
async fn a_replay_under_another_unsigned_event_type_is_still_a_duplicate() {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };
    use tower_webhook::dedupe::{DUPLICATE_HEADER, DedupeLayer, store::MemoryStore};
    let builder = || {
        Hmac::sha256("x-signature")
            .name("acme")
            .signs([
                Part::header("x-delivery-id"),
                Part::literal("."),
                Part::Body,
            ])
            .event_type([Field::header("x-event-type")])
            .delivery_id([Field::header("x-delivery-id")])
            .secret(SECRET)
    };
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&runs);
    let service = ServiceBuilder::new()
        .layer(generic::layer(builder()).unwrap())
        .layer(DedupeLayer::<generic::Event, _>::new(MemoryStore::new()))
        .service(service_fn(move |request: Request<Full<Bytes>>| {
            counted.fetch_add(1, Ordering::SeqCst);
            let verified = request
                .extensions()
                .get::<tower_webhook::Verified<generic::Event>>()
                .unwrap();
            // What the handler is told about the parts: the id is signed, the type is not.
            let seen = format!(
                "{:?} {} {:?} {}",
                verified.delivery_id(),
                verified.is_delivery_id_signed(),
                verified.delivery_event_type(),
                verified.is_delivery_event_type_signed()
            );
            async { Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(seen)))) }
        }));
    let scheme = builder().build().unwrap();
    let mut signed = HeaderMap::new();
    signed.insert("x-delivery-id", HeaderValue::from_static("dlv_1"));
    // The captured delivery, then the same bytes with another event type.
    let send = |event_type: &'static str| {
        let mut request = scheme.signed_request(Bytes::from_static(BODY), None, &signed);
        request
            .headers_mut()
            .insert("x-event-type", HeaderValue::from_static(event_type));
        service.clone().oneshot(request)
    };
    let first = send("invoice.paid").await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert!(!first.headers().contains_key(DUPLICATE_HEADER));
    let seen = http_body_util::BodyExt::collect(first.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(
        &seen[..],
        br#"Some("dlv_1") true Some("invoice.paid") false"#
    );
    let replay = send("invoice.voided").await.unwrap();
    assert_eq!(replay.status(), StatusCode::OK);
    assert_eq!(
        replay
            .headers()
            .get(DUPLICATE_HEADER)
            .map(HeaderValue::as_bytes),
        Some(&b"true"[..]),
        "a replay under another unsigned event type was handled again"
    );
    let said = http_body_util::BodyExt::collect(replay.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(&said[..], b"duplicate webhook delivery: already received");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

/// What `Verified` says of an id's signature agrees with the key the decoder builds: an id
/// read from the signed body after an unsigned header in the list is not signed (a replay that
/// adds the header changes it), whether or not the header is there.
#[tokio::test]
async fn verified_and_the_key_agree_on_whether_the_id_is_signed() {
    // The unsigned header first: the body's id after it is not signed.
    let header_first: fn() -> tower_webhook::scheme::HmacBuilder = || {
        Hmac::sha256("x-signature")
            .delivery_id([Field::header("x-id"), Field::json("/id")])
            .secret(SECRET)
    };
    for (header, expected) in [
        (None, r#"Some("evt_1") false ["sha256""#),
        (Some("forged"), r#"Some("forged") false ["sha256""#),
    ] {
        let seen = ids_seen(header_first, header).await;
        assert!(seen.starts_with(expected), "{header:?}: {seen}");
    }
    // The body's field first: the signed id, whatever header a replay adds after it.
    let body_first: fn() -> tower_webhook::scheme::HmacBuilder = || {
        Hmac::sha256("x-signature")
            .delivery_id([Field::json("/id"), Field::header("x-id")])
            .secret(SECRET)
    };
    for header in [None, Some("forged")] {
        let seen = ids_seen(body_first, header).await;
        assert_eq!(seen, r#"Some("evt_1") true ["","evt_1"]"#, "{header:?}");
    }
}

/// What a handler behind `generic::layer(builder())` sees of a request for `{"id":"evt_1"}`,
/// with `x-id` added when given: the delivery id, whether it is signed, and the key.
async fn ids_seen(
    builder: fn() -> tower_webhook::scheme::HmacBuilder,
    header: Option<&'static str>,
) -> String {
    let scheme = builder().build().unwrap();
    let service = ServiceBuilder::new()
        .layer(generic::layer(builder()).unwrap())
        .service(service_fn(|request: Request<Full<Bytes>>| {
            let verified = request
                .extensions()
                .get::<tower_webhook::Verified<generic::Event>>()
                .unwrap();
            let seen = format!(
                "{:?} {} {}",
                verified.delivery_id(),
                verified.is_delivery_id_signed(),
                tower_webhook::WebhookEvent::idempotency_key(verified.event()).unwrap()
            );
            async { Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(seen)))) }
        }));
    let body = Bytes::from_static(br#"{"id":"evt_1"}"#);
    let mut request = scheme.signed_request(body, None, &HeaderMap::new());
    if let Some(value) = header {
        request
            .headers_mut()
            .insert("x-id", HeaderValue::from_static(value));
    }
    let response = service.oneshot(request).await.unwrap();
    let seen = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    String::from_utf8_lossy(&seen).into_owned()
}
