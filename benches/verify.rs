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
//! - `floor: HMAC(id.ts.body)`: the floor of the schemes that sign `id.timestamp.body` (the
//!   `standard_webhooks` and `svix` rows).
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

    // The floor of the schemes that sign `id.timestamp.body` (Standard Webhooks, Svix).
    let whsec_key = base64::engine::general_purpose::STANDARD
        .decode(WHSEC_SECRET.trim_start_matches("whsec_"))
        .expect("base64 secret");
    let whsec_hmac = Hmac::<Sha256>::new_from_slice(&whsec_key).expect("any key length");
    let ts = timestamp.to_string();
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

fn verify(c: &mut Criterion) {
    for (len, label) in SIZES {
        bench_size(c, len, label);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = verify
}
criterion_main!(benches);
