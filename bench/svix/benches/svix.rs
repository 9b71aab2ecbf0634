//! The Standard Webhooks scheme: this crate's preset against svix's `Webhook::verify`.
//!
//! For each body size (64 B, 1 KiB, 16 KiB, 1 MiB), one criterion group holds:
//!
//! - `floor: HMAC(id.ts.body)`: a bare pre-keyed HMAC-SHA256 of the signed content (clone a keyed
//!   state, update, finalize), the least any verifier of the scheme can do;
//! - `standard_webhooks`: this crate's `provider::standard_webhooks` scheme, `Scheme::signature`
//!   on the request head then `Scheme::verify` on the body, as the layer calls them (timestamp
//!   window included);
//! - `svix Webhook::verify`: svix's verifier on the same headers and body.
//!
//! ```text
//! cd bench/svix && cargo bench -- --warm-up-time 1 --measurement-time 3
//! ```

#[path = "../../../benches/support/mod.rs"]
mod support;

use std::{
    hint::black_box,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::Engine as _;
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use http::request::Parts;
use sha2::Sha256;
use tower_webhook::{
    provider::standard_webhooks,
    scheme::{Scheme, Signed},
};

use support::{SIZES, videonest_body};

/// A Standard Webhooks secret: `whsec_` and the base64 of the key.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// A message id as svix writes them.
const ID: &str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";

fn bench_size(c: &mut Criterion, len: usize, label: &str) {
    let mut group = c.benchmark_group(format!("standard webhooks/{label}"));
    group.throughput(Throughput::Bytes(len as u64));
    if len >= 1 << 20 {
        group.sample_size(20);
    }
    let body = Bytes::from(videonest_body(len, "vid_abc123"));
    let timestamp = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs(),
    )
    .expect("in range");
    let (head, _): (Parts, _) =
        standard_webhooks::signed_request(SECRET, ID, timestamp, body.clone())
            .expect("a valid secret")
            .into_parts();

    // The floor: a pre-keyed HMAC of `id.timestamp.body`.
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .expect("base64 secret");
    let key = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    let ts = timestamp.to_string();
    group.bench_function("floor: HMAC(id.ts.body)", |b| {
        b.iter(|| {
            let mut mac = key.clone();
            mac.update(black_box(ID).as_bytes());
            mac.update(b".");
            mac.update(black_box(&ts).as_bytes());
            mac.update(b".");
            mac.update(black_box(&body));
            black_box(mac.finalize().into_bytes())
        });
    });

    // This crate's preset, as the layer calls it.
    let scheme = standard_webhooks::scheme()
        .secret(SECRET)
        .build()
        .expect("a valid secret");
    let signature = scheme.signature(&head).expect("a well-formed signature");
    assert!(matches!(
        scheme.verify(signature, &body),
        Ok(Signed::RawBody)
    ));
    group.bench_function("standard_webhooks", |b| {
        b.iter(|| {
            let signature = scheme.signature(black_box(&head)).expect("well-formed");
            black_box(scheme.verify(signature, black_box(&body))).expect("verified")
        });
    });

    // svix's verifier on the same request.
    let svix = svix::webhooks::Webhook::new(SECRET).expect("a valid secret");
    svix.verify(&body, &head.headers).expect("svix verifies it");
    group.bench_function("svix Webhook::verify", |b| {
        b.iter(|| {
            svix.verify(black_box(&body), black_box(&head.headers))
                .expect("verified")
        });
    });
    group.finish();
}

fn svix(c: &mut Criterion) {
    for (len, label) in SIZES {
        bench_size(c, len, label);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = svix
}
criterion_main!(benches);
