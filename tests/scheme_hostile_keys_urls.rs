//! Hostile and malformed input for the presets outside the HMAC header grammars: public keys
//! (Discord, SendGrid, Standard Webhooks and Svix `v1a`), a shared token (GitLab) and a signed
//! URL and form (Twilio). Every variant is refused with 401, never a panic, and random header
//! values never verify (property tests). Signatures are made with test keys.

use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, request::Parts};
use proptest::prelude::*;
use tower_webhook::{
    SignatureError,
    provider::{discord, gitlab, sendgrid, standard_webhooks, svix, twilio},
    scheme::{Hmac, HmacBuilder, Scheme, Signed, SigningKey},
};

const NOW: u64 = 1_767_225_600;
const BODY: &[u8] = br#"{"id":"1234","type":2,"data":{"name":"ping"}}"#;
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The test key of the SendGrid vectors.
const P256_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgNTSAH1w9Hy0qI5Sx
9KJrRY3FkZ62ZtY6IAhIHx8E/RGhRANCAARQ5xWUyJ+4QU/DYVenesE7Fj7RVtdA
DzSLk5/WAy6xK5KMRrXrMjUaEUiHIpTZvgRdMwpmxzppgJmBAKvXoPs6
-----END PRIVATE KEY-----";

fn ed25519() -> SigningKey {
    SigningKey::ed25519([5; 32])
}

fn p256() -> SigningKey {
    SigningKey::p256_pkcs8_pem(P256_PEM).unwrap()
}

fn clocked(builder: HmacBuilder) -> Hmac {
    builder
        .clock(|| UNIX_EPOCH + Duration::from_secs(NOW))
        .build()
        .unwrap()
}

/// Every public-key preset (and the `v1a` lists), built, with the headers of a correctly
/// signed request at `NOW`.
fn presets() -> Vec<(&'static str, Hmac, HeaderMap)> {
    let ts = NOW as i64;
    let v1a = |scheme: HmacBuilder, id_header: &str| {
        let signed = clocked(scheme.clone().signing_key(ed25519()));
        let mut id = HeaderMap::new();
        id.insert(
            HeaderName::from_bytes(id_header.as_bytes()).unwrap(),
            HeaderValue::from_static("msg_1"),
        );
        let headers = signed.sign(BODY, Some(ts), &id);
        // The receiver: a secret for `v1` and the public key for `v1a`.
        (
            clocked(scheme.secret(SECRET).public_key(ed25519().public_key())),
            headers,
        )
    };
    let (standard, standard_headers) =
        v1a(standard_webhooks::scheme(), standard_webhooks::ID_HEADER);
    let (svix_scheme, svix_headers) = v1a(svix::scheme(), svix::ID_HEADER);
    vec![
        (
            "discord",
            clocked(discord::scheme().public_key(ed25519().public_key())),
            discord::headers(&ed25519(), BODY, ts).unwrap(),
        ),
        (
            "sendgrid",
            clocked(sendgrid::scheme().public_key(p256().public_key())),
            sendgrid::headers(&p256(), BODY, ts).unwrap(),
        ),
        ("standardwebhooks v1a", standard, standard_headers),
        ("svix v1a", svix_scheme, svix_headers),
    ]
}

fn head(headers: &HeaderMap) -> Parts {
    let mut request = Request::post("/").body(()).unwrap();
    *request.headers_mut() = headers.clone();
    request.into_parts().0
}

fn decide<Sc: Scheme>(
    scheme: &Sc,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Signed, SignatureError> {
    let signature = scheme.signature(&head(headers))?;
    scheme.verify(&signature, &Bytes::copy_from_slice(body))
}

#[test]
fn correctly_signed_requests_verify_and_altered_ones_do_not() {
    for (name, scheme, headers) in presets() {
        assert_eq!(
            decide(&scheme, &headers, BODY),
            Ok(Signed::RawBody),
            "{name}"
        );
        let mut body = BODY.to_vec();
        body[5] ^= 1;
        assert_eq!(
            decide(&scheme, &headers, &body),
            Err(SignatureError::Mismatch),
            "{name}"
        );
    }
}

/// Variants of a good header value that must each be refused (malformed, or not matching).
fn variants(good: &[u8]) -> Vec<Vec<u8>> {
    let mut variants = vec![
        Vec::new(),
        good[..good.len() / 2].to_vec(),
        good[..good.len() - 1].to_vec(),
        [good, b"0"].concat(),
        [good, b"=="].concat(),
        good.repeat(1000),
        [good, "é".as_bytes()].concat(),
        good.to_ascii_uppercase(),
        good.to_ascii_lowercase(),
    ];
    // One character flipped at every position of the first 100.
    for at in 0..good.len().min(100) {
        let mut flipped = good.to_vec();
        flipped[at] = if flipped[at] == b'A' { b'B' } else { b'A' };
        variants.push(flipped);
    }
    variants
}

#[test]
fn altered_signature_headers_are_refused() {
    for (name, scheme, headers) in presets() {
        let header = scheme.header().clone();
        let good = headers[&header].as_bytes().to_vec();
        for value in variants(&good) {
            let Ok(value) = HeaderValue::from_bytes(&value) else {
                continue;
            };
            if value.as_bytes() == good.as_slice() {
                continue;
            }
            let mut altered = headers.clone();
            altered.insert(header.clone(), value.clone());
            let result = decide(&scheme, &altered, BODY);
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
fn repeated_header_lines_are_refused() {
    for (name, scheme, headers) in presets() {
        for (header, value) in headers.iter() {
            let mut repeated = headers.clone();
            for _ in 0..1_000 {
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
fn a_signature_of_one_algorithm_never_verifies_under_another() {
    // Discord's Ed25519 signature given to a scheme holding a P-256 key, and the reverse.
    let ts = NOW as i64;
    let discord_headers = discord::headers(&ed25519(), BODY, ts).unwrap();
    let wrong = clocked(discord::scheme().public_key(SigningKey::ed25519([6; 32]).public_key()));
    assert_eq!(
        decide(&wrong, &discord_headers, BODY),
        Err(SignatureError::Mismatch)
    );
    let sendgrid_scheme = clocked(sendgrid::scheme().public_key(p256().public_key()));
    let mut moved = HeaderMap::new();
    moved.insert(
        sendgrid::TIMESTAMP_HEADER,
        discord_headers[discord::TIMESTAMP_HEADER].clone(),
    );
    let hex_as_base64 = discord_headers[discord::SIGNATURE_HEADER].clone();
    moved.insert(sendgrid::SIGNATURE_HEADER, hex_as_base64);
    assert!(decide(&sendgrid_scheme, &moved, BODY).is_err());
}

#[test]
fn a_gitlab_token_is_compared_whole() {
    let scheme = gitlab::scheme(["gl-secret-token"]).unwrap();
    let headers = |value: &[u8]| {
        let mut headers = HeaderMap::new();
        headers.insert(
            gitlab::TOKEN_HEADER,
            HeaderValue::from_bytes(value).unwrap(),
        );
        headers
    };
    assert_eq!(
        decide(&scheme, &headers(b"gl-secret-token"), b""),
        Ok(Signed::RawBody)
    );
    for value in variants(b"gl-secret-token") {
        let Ok(value) = HeaderValue::from_bytes(&value) else {
            continue;
        };
        let trimmed = value.as_bytes().trim_ascii();
        if trimmed == b"gl-secret-token" {
            continue;
        }
        assert!(
            decide(&scheme, &headers(value.as_bytes()), b"").is_err(),
            "{value:?}"
        );
    }
    assert!(format!("{scheme:?}").contains("[1 redacted]"));
    assert!(!format!("{scheme:?}").contains("gl-secret-token"));
}

/// A Twilio request to `url` with the form `body`, signed with `token`, as the scheme sees it.
fn twilio_decide(
    token: &str,
    url: &str,
    body: &str,
    edit: impl FnOnce(&mut Parts),
) -> Result<Signed, SignatureError> {
    let scheme = twilio::scheme(["auth-token"]).unwrap();
    let request = twilio::signed_form_request(token, url, body).unwrap();
    let (mut head, _) = request.into_parts();
    edit(&mut head);
    let signature = scheme.signature(&head)?;
    scheme.verify(&signature, &Bytes::copy_from_slice(body.as_bytes()))
}

#[test]
fn twilio_refuses_what_its_signature_does_not_cover() {
    let url = "https://hooks.example.com/sms";
    let form = "MessageSid=SM1&Body=Hi";
    assert_eq!(
        twilio_decide("auth-token", url, form, |_| {}),
        Ok(Signed::RawBody)
    );
    assert_eq!(
        twilio_decide("other-token", url, form, |_| {}),
        Err(SignatureError::Mismatch)
    );
    // Another host, or path, than the one signed.
    let host = |head: &mut Parts| {
        head.headers
            .insert(http::header::HOST, HeaderValue::from_static("evil.example"));
    };
    assert_eq!(
        twilio_decide("auth-token", url, form, host),
        Err(SignatureError::Mismatch)
    );
    let path = |head: &mut Parts| head.uri = "/voice".parse().unwrap();
    assert_eq!(
        twilio_decide("auth-token", url, form, path),
        Err(SignatureError::Mismatch)
    );
    // No host to build the URL from.
    let no_host = |head: &mut Parts| {
        head.headers.remove(http::header::HOST);
    };
    assert!(matches!(
        twilio_decide("auth-token", url, form, no_host),
        Err(SignatureError::Malformed { .. })
    ));
    // A body neither form-encoded nor hashed in the URL is not covered: refused.
    let as_json = |head: &mut Parts| {
        head.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    };
    assert!(matches!(
        twilio_decide("auth-token", url, form, as_json),
        Err(SignatureError::Other(_))
    ));
    // A JSON body against its hash; the hash repeated, or upper case.
    let scheme = twilio::scheme(["auth-token"]).unwrap();
    let json = twilio::signed_json_request("auth-token", url, r#"{"a":1}"#).unwrap();
    let (head, _) = json.into_parts();
    let signature = scheme.signature(&head).unwrap();
    assert_eq!(
        scheme.verify(&signature, &Bytes::from_static(br#"{"a":1}"#)),
        Ok(Signed::RawBody)
    );
    assert_eq!(
        scheme.verify(&signature, &Bytes::from_static(br#"{"a":2}"#)),
        Err(SignatureError::Mismatch)
    );
    for query in [
        "bodySHA256=ab&bodySHA256=ab",
        &format!("bodySHA256={}", "AB".repeat(32)),
    ] {
        let mut bad = head.clone();
        bad.uri = format!("/sms?{query}").parse().unwrap();
        assert!(
            matches!(
                scheme.signature(&bad),
                Err(SignatureError::Malformed { .. })
            ),
            "{query}"
        );
    }
}

#[test]
fn twilio_form_bodies_of_hostile_shapes_are_refused() {
    let url = "https://hooks.example.com/sms";
    let scheme = twilio::scheme(["auth-token"]).unwrap();
    let (head, _) = twilio::signed_form_request("auth-token", url, "a=1")
        .unwrap()
        .into_parts();
    let signature = scheme.signature(&head).unwrap();
    for body in [
        "&".repeat(1 << 20),
        "%".repeat(1 << 20),
        "a=1&".repeat(1 << 18),
        "%41".repeat(1 << 18),
        "=".repeat(1 << 20),
        "+".repeat(1 << 20),
    ] {
        assert!(scheme.verify(&signature, &Bytes::from(body)).is_err());
    }
}

fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            Just(b' '),
            Just(b','),
            Just(b'='),
            0x21u8..0x7f,
            0x80u8..=0xff,
        ],
        0..300,
    )
}

/// Values around the grammars' own tokens: hex and base64 runs of the right lengths, `v1a,`.
fn grammar_like() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            Just(b"v1a,".to_vec()),
            Just(b"v1,".to_vec()),
            Just(b" ".to_vec()),
            Just(b"ab".repeat(64)),
            Just(b"A".repeat(86)),
            Just(b"==".to_vec()),
            Just(b"MEUCIQ".to_vec()),
            Just(b"1767225600".to_vec()),
            header_bytes(),
        ],
        0..8,
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
        for (name, scheme, headers) in presets() {
            let names: Vec<HeaderName> = headers.keys().cloned().collect();
            let target = names[which % names.len()].clone();
            let Ok(value) = HeaderValue::from_bytes(&value) else { continue };
            let trimmed = value.as_bytes().trim_ascii();
            if headers.get(&target).map(HeaderValue::as_bytes) == Some(trimmed) {
                continue;
            }
            let mut headers = headers.clone();
            headers.insert(target.clone(), value);
            prop_assert!(decide(&scheme, &headers, BODY).is_err(), "{}: {} verified", name, target);
        }
    }

    #[test]
    fn random_twilio_signatures_and_bodies_never_verify_nor_panic(
        value in prop_oneof![header_bytes(), grammar_like()],
        body in header_bytes(),
    ) {
        let scheme = twilio::scheme(["auth-token"]).unwrap();
        let mut request = Request::post("/sms?x=1").header("host", "hooks.example.com");
        if let Ok(value) = HeaderValue::from_bytes(&value) {
            request = request.header(twilio::SIGNATURE_HEADER, value);
        }
        let (head, ()) = request
            .header("content-type", "application/x-www-form-urlencoded")
            .body(())
            .unwrap()
            .into_parts();
        if let Ok(signature) = scheme.signature(&head) {
            prop_assert!(scheme.verify(&signature, &Bytes::from(body)).is_err());
        }
    }
}

/// Twilio signs its parameters joined without separators: a captured request split otherwise
/// still verifies, but is the same delivery to deduplication, and none of its fields counts as
/// signed.
#[tokio::test]
async fn a_twilio_request_split_otherwise_is_a_duplicate() {
    use tower::{ServiceBuilder, ServiceExt, service_fn};
    use tower_webhook::{
        Verified,
        dedupe::{DUPLICATE_HEADER, DedupeLayer, store::MemoryStore},
        provider::generic,
    };

    let service = ServiceBuilder::new()
        .layer(twilio::layer(["auth-token"]).unwrap())
        .layer(DedupeLayer::<generic::Event, _>::new(MemoryStore::new()))
        .service(service_fn(
            |request: Request<http_body_util::Full<Bytes>>| async move {
                let verified = request
                    .extensions()
                    .get::<Verified<generic::Event>>()
                    .unwrap();
                assert!(
                    !verified.is_delivery_id_signed() && !verified.is_delivery_event_type_signed()
                );
                Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
                    Bytes::new(),
                )))
            },
        ));
    let url = "https://hooks.example.com/sms?x=1";
    let signed = twilio::signed_form_request(
        "auth-token",
        url,
        "MessageSid=SM1&SmsStatus=received&Body=Hi",
    )
    .unwrap();
    let (head, body) = signed.into_parts();
    let first = service
        .clone()
        .oneshot(Request::from_parts(head.clone(), body))
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    assert!(first.headers().get(DUPLICATE_HEADER).is_none());
    // The same signature over other splits of the same signed text.
    for (path, form) in [
        ("/sms?x=1", "Body=Hi&MessageSid=SM1SmsStatusreceived"),
        ("/sms?x=1BodyHi", "MessageSid=SM1&SmsStatus=received"),
    ] {
        let mut head = head.clone();
        head.uri = path.parse().unwrap();
        let request = Request::from_parts(head, http_body_util::Full::new(Bytes::from(form)));
        let response = service.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200, "{path} {form}");
        assert_eq!(
            response.headers()[DUPLICATE_HEADER],
            "true",
            "{path} {form}"
        );
    }
}

#[test]
fn a_host_header_is_a_host_and_nothing_more() {
    let url = "https://hooks.example.com/twilio/sms";
    for host in [
        "hooks.example.com/twilio",
        "hooks.example.com?x",
        "user@hooks.example.com",
        "hooks.example.com#x",
    ] {
        let result = twilio_decide("auth-token", url, "a=1", |head| {
            head.uri = "/sms".parse().unwrap();
            head.headers
                .insert(http::header::HOST, HeaderValue::from_str(host).unwrap());
        });
        assert!(
            matches!(result, Err(SignatureError::Malformed { .. })),
            "{host}: {result:?}"
        );
    }
}

#[test]
fn a_twilio_form_of_too_many_parameters_is_refused() {
    let scheme = twilio::scheme(["auth-token"]).unwrap();
    let url = "https://hooks.example.com/sms";
    let (head, _) = twilio::signed_form_request("auth-token", url, "a=1")
        .unwrap()
        .into_parts();
    let signature = scheme.signature(&head).unwrap();
    let many = vec!["a=1"; tower_webhook::scheme::MAX_FORM_PARAMETERS + 1].join("&");
    assert!(matches!(
        scheme.verify(&signature, &Bytes::from(many)),
        Err(SignatureError::Other(_))
    ));
}

#[test]
fn public_signatures_are_bounded_and_not_carried_by_rekeying() {
    let (_, scheme, headers) = presets()
        .into_iter()
        .find(|(name, ..)| *name == "standardwebhooks v1a")
        .unwrap();
    let entry = headers[standard_webhooks::SIGNATURE_HEADER]
        .to_str()
        .unwrap()
        .to_owned();
    let mut five = headers.clone();
    five.insert(
        standard_webhooks::SIGNATURE_HEADER,
        HeaderValue::from_str(&[entry.as_str(); 5].join(" ")).unwrap(),
    );
    assert!(matches!(
        decide(&scheme, &five, BODY),
        Err(SignatureError::Malformed { .. })
    ));
    let mut four = headers.clone();
    four.insert(
        standard_webhooks::SIGNATURE_HEADER,
        HeaderValue::from_str(&[entry.as_str(); 4].join(" ")).unwrap(),
    );
    assert_eq!(decide(&scheme, &four, BODY), Ok(Signed::RawBody));
    // Keyed with other secrets (as for a tenant), the scheme no longer takes the public key.
    let rekeyed = scheme
        .with_secrets(&["whsec_b3RoZXIgc2VjcmV0IGZvciBhIHRlbmFudA==".into()])
        .unwrap();
    assert!(decide(&rekeyed, &headers, BODY).is_err());
}
