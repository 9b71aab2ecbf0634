//! Hostile and malformed headers for the public-key and token presets (Discord, SendGrid,
//! Standard Webhooks and Svix `v1a`, GitLab): every variant is refused with 401, never a panic,
//! and random header values never verify (property tests). Signatures are made with test keys.

use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, request::Parts};
use proptest::prelude::*;
use tower_webhook::{
    SignatureError,
    provider::{discord, gitlab, sendgrid, standard_webhooks, svix},
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
}
