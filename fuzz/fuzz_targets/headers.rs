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
    provider::{github, shopify, slack, standard_webhooks, stripe, svix, videoaiditor, videonest},
    scheme::{Hmac, Scheme},
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
    let schemes = SCHEMES.get_or_init(|| Schemes {
        presets: [
            github::scheme().secret(SECRET).build().unwrap(),
            stripe::scheme().secret(SECRET).build().unwrap(),
            standard_webhooks::scheme().secret(SECRET).build().unwrap(),
            svix::scheme().secret(SECRET).build().unwrap(),
            shopify::scheme().secret(SECRET).build().unwrap(),
            slack::scheme().secret(SECRET).build().unwrap(),
            videonest::scheme().secret(SECRET).build().unwrap(),
            videoaiditor::scheme().secret(SECRET).build().unwrap(),
        ],
    });
    for scheme in &schemes.presets {
        check(scheme, &head, &body);
    }
});

/// The presets' schemes, built once.
struct Schemes {
    presets: [Hmac; 8],
}

static SCHEMES: OnceLock<Schemes> = OnceLock::new();
