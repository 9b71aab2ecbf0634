//! Verification alone, side by side with the floor (the comparison with svix's verifier is the
//! separate crate in `bench/svix`, so that this crate never builds svix's TLS stack).
//!
//! For each body size (64 B, 1 KiB, 16 KiB, 1 MiB), one criterion group holds:
//!
//! - `floor: HMAC(body)`: a bare pre-keyed HMAC-SHA256 of the body (clone a keyed state, update,
//!   finalize): the least any verifier of these schemes can do;
//! - one row per preset: `Scheme::signature` on the request head (header lookup, decoding the
//!   MAC) then `Scheme::verify` on the body, as the layer calls them. A new preset is one more
//!   `preset(…)` line in `bench_size`;
//! - `floor: HMAC(ts.body)`, `floor: HMAC(v0:ts:body)` and `floor: HMAC(id.ts.body)`: the
//!   floors of the schemes that sign a prefix before the body (the `stripe`, `slack`, and
//!   `standard_webhooks` and `svix` rows), the bare HMAC of the same bytes fed the same way.
//!
//! `verify-public/1 KiB` holds the public-key presets (Discord, Standard Webhooks `v1a`,
//! SendGrid) beside their bare primitive over the same signed bytes, and GitLab's token.
//!
//! ```text
//! cargo bench --bench verify -- --warm-up-time 1 --measurement-time 3
//! python3 bench/criterion-table.py verify
//! ```

mod support;

use std::{
    hint::black_box,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::Engine as _;
use bytes::Bytes;
use criterion::{
    BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main, measurement::WallTime,
};
use hmac::{Hmac, KeyInit, Mac};
use http::{Request, request::Parts};
use http_body_util::{BodyExt, Full};
use sha2::Sha256;
use tower_webhook::{
    VerifyWebhookLayer,
    provider::{github, shopify, slack, standard_webhooks, stripe, svix, videoaiditor, videonest},
    scheme::{Scheme, Signed},
};

use support::{SECRET, SIZES, now, videoaiditor_body, videonest_body};

/// The Standard Webhooks and Svix secret: `whsec_` and the base64 of the key.
const WHSEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The SendGrid vectors' P-256 test key.
const P256_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgNTSAH1w9Hy0qI5Sx
9KJrRY3FkZ62ZtY6IAhIHx8E/RGhRANCAARQ5xWUyJ+4QU/DYVenesE7Fj7RVtdA
DzSLk5/WAy6xK5KMRrXrMjUaEUiHIpTZvgRdMwpmxzppgJmBAKvXoPs6
-----END PRIVATE KEY-----";
/// A message id as Standard Webhooks senders write them.
const ID: &str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";

/// A preset's row: `signature` then `verify` on a request the provider would send.
fn preset<Sc: Scheme, E>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    layer: VerifyWebhookLayer<Sc, E>,
    request: Request<Full<Bytes>>,
) {
    let scheme = layer.scheme();
    let (head, body): (Parts, _) = request.into_parts();
    let body = now(body.collect()).expect("a full body").to_bytes();
    let signature = scheme.signature(&head).expect("a well-formed signature");
    assert!(matches!(
        scheme.verify(&signature, &body),
        Ok(Signed::RawBody)
    ));
    group.bench_function(name, |b| {
        b.iter(|| {
            let signature = scheme.signature(black_box(&head)).expect("well-formed");
            let signed = scheme.verify(&signature, black_box(&body));
            black_box(signed).expect("verified")
        });
    });
}

/// Seconds since the Unix epoch, for the presets with a replay window.
fn unix_now() -> i64 {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    i64::try_from(seconds).expect("in range")
}

fn bench_size(c: &mut Criterion, len: usize, label: &str) {
    let mut group = c.benchmark_group(format!("verify/{label}"));
    group.throughput(Throughput::Bytes(len as u64));
    if len >= 1 << 20 {
        group.sample_size(20);
    }

    // The floor: a pre-keyed HMAC of the same bytes.
    let key = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    let body = Bytes::from(videonest_body(len, "vid_abc123"));
    group.bench_function("floor: HMAC(body)", |b| {
        b.iter(|| {
            let mut mac = key.clone();
            mac.update(black_box(&body));
            black_box(mac.finalize().into_bytes())
        });
    });

    // One line per preset.
    preset(
        &mut group,
        "videonest",
        videonest::layer([SECRET]).expect("valid secret"),
        videonest::signed_request(SECRET, body.clone()).expect("valid secret"),
    );
    preset(
        &mut group,
        "videoaiditor",
        videoaiditor::layer([SECRET]).expect("valid secret"),
        videoaiditor::signed_request(SECRET, videoaiditor_body(len, "render-id"))
            .expect("valid secret"),
    );

    // The `scheme::Hmac` presets, each on the same body. Those with a replay window are signed
    // now: a group runs for well under their 5-minute tolerance.
    let timestamp = unix_now();
    preset(
        &mut group,
        "github",
        github::layer([SECRET]).expect("valid secret"),
        github::signed_request(SECRET, body.clone()).expect("valid secret"),
    );
    preset(
        &mut group,
        "stripe",
        stripe::layer([SECRET]).expect("valid secret"),
        stripe::signed_request(SECRET, body.clone(), timestamp).expect("valid secret"),
    );
    preset(
        &mut group,
        "standard_webhooks",
        standard_webhooks::layer([WHSEC_SECRET]).expect("valid secret"),
        standard_webhooks::signed_request(WHSEC_SECRET, ID, timestamp, body.clone())
            .expect("valid secret"),
    );
    preset(
        &mut group,
        "svix",
        svix::layer([WHSEC_SECRET]).expect("valid secret"),
        svix::signed_request(WHSEC_SECRET, ID, timestamp, body.clone()).expect("valid secret"),
    );
    preset(
        &mut group,
        "shopify",
        shopify::layer([SECRET]).expect("valid secret"),
        shopify::signed_request(SECRET, body.clone()).expect("valid secret"),
    );
    preset(
        &mut group,
        "slack",
        slack::layer([SECRET]).expect("valid secret"),
        slack::signed_request(SECRET, body.clone(), timestamp).expect("valid secret"),
    );

    // The floors of the schemes that sign a prefix before the body, fed as the schemes feed
    // them (the prefix's parts, then the body): Stripe's `timestamp.body`, Slack's
    // `v0:timestamp:body`. SHA-256 is slower after a prefix that leaves the body off a block
    // boundary (the block assembled from small copies is read at once), not by its length.
    let ts = timestamp.to_string();
    group.bench_function("floor: HMAC(ts.body)", |b| {
        b.iter(|| {
            let mut mac = key.clone();
            mac.update(black_box(&ts).as_bytes());
            mac.update(b".");
            mac.update(black_box(&body));
            black_box(mac.finalize().into_bytes())
        });
    });
    group.bench_function("floor: HMAC(v0:ts:body)", |b| {
        b.iter(|| {
            let mut mac = key.clone();
            mac.update(b"v0:");
            mac.update(black_box(&ts).as_bytes());
            mac.update(b":");
            mac.update(black_box(&body));
            black_box(mac.finalize().into_bytes())
        });
    });

    // The floor of the schemes that sign `id.timestamp.body` (Standard Webhooks, Svix).
    let whsec_key = base64::engine::general_purpose::STANDARD
        .decode(WHSEC_SECRET.trim_start_matches("whsec_"))
        .expect("base64 secret");
    let whsec_hmac = Hmac::<Sha256>::new_from_slice(&whsec_key).expect("any key length");
    group.bench_function("floor: HMAC(id.ts.body)", |b| {
        b.iter(|| {
            let mut mac = whsec_hmac.clone();
            mac.update(black_box(ID).as_bytes());
            mac.update(b".");
            mac.update(black_box(&ts).as_bytes());
            mac.update(b".");
            mac.update(black_box(&body));
            black_box(mac.finalize().into_bytes())
        });
    });
    group.finish();
}

/// `verify-public/1 KiB`: the public-key presets and the token against their bare primitive
/// over the same signed bytes (already assembled, a key already parsed): Ed25519's strict
/// verification for Discord and Standard Webhooks `v1a`, ECDSA P-256 verification for SendGrid.
fn public_keys(c: &mut Criterion) {
    use tower_webhook::{
        provider::{discord, gitlab, sendgrid},
        scheme::SigningKey,
    };

    let mut group = c.benchmark_group("verify-public/1 KiB");
    group.throughput(Throughput::Bytes(1024));
    let body = Bytes::from(videonest_body(1024, "vid_abc123"));
    let timestamp = unix_now();
    let ts = timestamp.to_string();

    let seed = [7u8; 32];
    let ed25519 = SigningKey::ed25519(seed);
    let dalek = ed25519_dalek::SigningKey::from_bytes(&seed);
    let message = [ts.as_bytes(), &body].concat();
    let signature = ed25519_dalek::Signer::sign(&dalek, &message);
    let verifying = dalek.verifying_key();
    group.bench_function("floor: Ed25519 verify(ts body)", |b| {
        b.iter(|| {
            verifying
                .verify_strict(black_box(&message), black_box(&signature))
                .expect("verified");
        });
    });
    preset(
        &mut group,
        "discord",
        discord::layer([ed25519.public_key()]).expect("a key"),
        discord::signed_request(&ed25519, body.clone(), timestamp).expect("signed"),
    );
    let v1a_message = [ID.as_bytes(), b".", ts.as_bytes(), b".", &body].concat();
    let v1a_signature = ed25519_dalek::Signer::sign(&dalek, &v1a_message);
    group.bench_function("floor: Ed25519 verify(id.ts.body)", |b| {
        b.iter(|| {
            verifying
                .verify_strict(black_box(&v1a_message), black_box(&v1a_signature))
                .expect("verified");
        });
    });
    preset(
        &mut group,
        "standard_webhooks v1a",
        standard_webhooks::layer_with_public_keys([WHSEC_SECRET], [ed25519.public_key()])
            .expect("a key"),
        standard_webhooks::signed_request_with_key(&ed25519, ID, timestamp, body.clone())
            .expect("signed"),
    );

    // The SendGrid vectors' test key, for the preset and the floor alike.
    let sendgrid_key = SigningKey::p256_pkcs8_pem(P256_PEM).expect("a key");
    let der: String = P256_PEM
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(der)
        .expect("base64");
    let p256 = {
        use p256::pkcs8::DecodePrivateKey as _;
        p256::ecdsa::SigningKey::from_pkcs8_der(&der).expect("PKCS#8")
    };
    let p256_signature: p256::ecdsa::Signature =
        p256::ecdsa::signature::Signer::sign(&p256, &message);
    let p256_verifying = *p256.verifying_key();
    group.bench_function("floor: P-256 verify(ts body)", |b| {
        b.iter(|| {
            p256::ecdsa::signature::Verifier::verify(
                &p256_verifying,
                black_box(&message),
                black_box(&p256_signature),
            )
            .expect("verified");
        });
    });
    preset(
        &mut group,
        "sendgrid",
        sendgrid::layer([sendgrid_key.public_key()]).expect("a key"),
        sendgrid::signed_request(&sendgrid_key, body.clone(), timestamp).expect("signed"),
    );
    // Twilio: a 1 KiB form of 32 parameters (a third of them escaped), and a 1 KiB JSON body
    // hashed in the URL; the floors are HMAC-SHA1 of the same signed bytes (the URL, then the
    // sorted names and values), and of the URL plus SHA-256 of the body.
    let url = "https://hooks.example.com/twilio/sms";
    let form: String = (0..32)
        .map(|i| {
            format!(
                "Param{i:02}={}",
                if i % 3 == 0 {
                    "%2B1555%20"
                } else {
                    "value_ok_"
                }
                .repeat(2)
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    let form = format!(
        "{form}&Body={}",
        "x".repeat(1024usize.saturating_sub(form.len() + 6))
    );
    let sha1_key = Hmac::<sha1::Sha1>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    let mut pairs: Vec<(String, String)> = form
        .split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=').expect("name=value");
            let value = value.replace("%2B", "+").replace("%20", " ");
            (name.to_owned(), value)
        })
        .collect();
    pairs.sort();
    let signed: Vec<u8> =
        pairs
            .iter()
            .fold(url.as_bytes().to_vec(), |mut signed, (name, value)| {
                signed.extend_from_slice(name.as_bytes());
                signed.extend_from_slice(value.as_bytes());
                signed
            });
    group.bench_function("floor: HMAC-SHA1(url params)", |b| {
        b.iter(|| {
            let mut mac = sha1_key.clone();
            mac.update(black_box(&signed));
            black_box(mac.finalize().into_bytes())
        });
    });
    preset(
        &mut group,
        "twilio (form)",
        tower_webhook::provider::twilio::layer([SECRET]).expect("a token"),
        tower_webhook::provider::twilio::signed_form_request(SECRET, url, &form).expect("signed"),
    );
    let hashed_url = format!(
        "{url}?bodySHA256=0000000000000000000000000000000000000000000000000000000000000000"
    );
    group.bench_function("floor: HMAC-SHA1(url) + SHA-256(body)", |b| {
        b.iter(|| {
            let mut mac = sha1_key.clone();
            mac.update(black_box(hashed_url.as_bytes()));
            let digest = <Sha256 as sha2::Digest>::digest(black_box(&body));
            black_box((mac.finalize().into_bytes(), digest))
        });
    });
    preset(
        &mut group,
        "twilio (JSON)",
        tower_webhook::provider::twilio::layer([SECRET]).expect("a token"),
        tower_webhook::provider::twilio::signed_json_request(SECRET, url, body.clone())
            .expect("signed"),
    );
    preset(
        &mut group,
        "gitlab (token)",
        gitlab::layer([SECRET]).expect("a token"),
        gitlab::signed_request(SECRET, body).expect("a token"),
    );
    group.finish();
}

fn verify(c: &mut Criterion) {
    for (len, label) in SIZES {
        bench_size(c, len, label);
    }
    public_keys(c);
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = verify
}
criterion_main!(benches);
