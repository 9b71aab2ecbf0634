//! Header parsing of every scheme grammar: each preset's `Scheme::signature` reads arbitrary
//! values of the headers the presets use (names drawn from that set, so the fuzzer reaches
//! every grammar), then `Scheme::verify` checks them against an arbitrary body. It must never
//! panic, and never accept: a signature the fuzzer wrote cannot match a key it does not know,
//! so an `Ok` from `verify` would be a bypass (an empty list of signatures accepted, a version
//! confused for another, …).
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request};
use libfuzzer_sys::fuzz_target;
use tower_webhook::{
    provider::{
        discord, github, gitlab, sendgrid, shopify, slack, standard_webhooks, stripe, svix, twilio,
        videoaiditor, videonest,
    },
    scheme::{Hmac, Scheme, SigningKey, Token, UrlSigned},
};

const NAMES: &[&str] = &[
    "x-hub-signature-256",
    "x-hub-signature",
    "x-github-event",
    "x-github-delivery",
    "stripe-signature",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "x-shopify-hmac-sha256",
    "shopify-hmac-sha256",
    "x-shopify-topic",
    "x-shopify-webhook-id",
    "x-slack-signature",
    "x-slack-request-timestamp",
    "x-videonest-signature",
    "x-signature",
    "content-type",
    "x-signature-ed25519",
    "x-signature-timestamp",
    "x-twilio-email-event-webhook-signature",
    "x-twilio-email-event-webhook-timestamp",
    "x-gitlab-token",
    "x-gitlab-event",
    "x-twilio-signature",
    "host",
];

/// A Standard Webhooks secret (`whsec_` and base64), also a valid raw secret for the others.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[derive(Debug, Arbitrary)]
struct Input {
    headers: Vec<(u8, Vec<u8>)>,
    body: Vec<u8>,
}

fn check<Sc: Scheme>(scheme: &Sc, head: &http::request::Parts, body: &Bytes) {
    if let Ok(signature) = scheme.signature(head) {
        // Never called before a signature matched; fuzzed all the same: it must not panic.
        let _ = scheme.delivery(head, &signature, body);
        assert!(
            scheme.verify(&signature, body).is_err(),
            "{}: a signature the fuzzer wrote was accepted",
            scheme.name()
        );
    }
}

fuzz_target!(|input: Input| {
    let mut builder = Request::post("/webhook");
    for (name, value) in &input.headers {
        let name = HeaderName::from_static(NAMES[usize::from(*name) % NAMES.len()]);
        let Ok(value) = HeaderValue::from_bytes(value) else {
            continue;
        };
        builder = builder.header(name, value);
    }
    let Ok(request) = builder.body(()) else {
        return;
    };
    let (head, ()) = request.into_parts();
    let body = Bytes::from(input.body);
    let schemes = SCHEMES.get_or_init(|| {
        // Public keys whose private halves the fuzzer does not have.
        let ed25519 = SigningKey::ed25519([3; 32]).public_key();
        Schemes {
            presets: vec![
                github::scheme().secret(SECRET).build().unwrap(),
                stripe::scheme().secret(SECRET).build().unwrap(),
                standard_webhooks::scheme().secret(SECRET).build().unwrap(),
                // `v1` and `v1a` both read: a secret and a public key.
                standard_webhooks::scheme()
                    .secret(SECRET)
                    .public_key(ed25519.clone())
                    .build()
                    .unwrap(),
                svix::scheme().secret(SECRET).public_key(ed25519.clone()).build().unwrap(),
                shopify::scheme().secret(SECRET).build().unwrap(),
                slack::scheme().secret(SECRET).build().unwrap(),
                videonest::scheme().secret(SECRET).build().unwrap(),
                videoaiditor::scheme().secret(SECRET).build().unwrap(),
                discord::scheme().public_key(ed25519).build().unwrap(),
                sendgrid::scheme()
                    .public_key(
                        tower_webhook::scheme::PublicKey::p256_base64(P256_PUBLIC).unwrap(),
                    )
                    .build()
                    .unwrap(),
            ],
            gitlab: gitlab::scheme([SECRET]).unwrap(),
            twilio: twilio::scheme([SECRET]).unwrap(),
        }
    });
    for scheme in &schemes.presets {
        check(scheme, &head, &body);
    }
    check(&schemes.gitlab, &head, &body);
    check(&schemes.twilio, &head, &body);
});

/// SendGrid's public test key (the vectors').
const P256_PUBLIC: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEUOcVlMifuEFPw2FXp3rBOxY+0VbXQA80i5Of1gMusSuSjEa16zI1GhFIhyKU2b4EXTMKZsc6aYCZgQCr16D7Og==";

/// The presets' schemes, built once.
struct Schemes {
    presets: Vec<Hmac>,
    gitlab: Token,
    twilio: UrlSigned,
}

static SCHEMES: OnceLock<Schemes> = OnceLock::new();
