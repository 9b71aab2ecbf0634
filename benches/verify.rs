//! Verification alone, side by side with the floor and with svix.
//!
//! For each body size (64 B, 1 KiB, 16 KiB, 1 MiB), one criterion group holds:
//!
//! - `floor: HMAC(body)`: a bare pre-keyed HMAC-SHA256 of the body (clone a keyed state, update,
//!   finalize): the least any verifier of these schemes can do;
//! - one row per preset: `Scheme::signature` on the request head (header lookup, decoding the
//!   MAC) then `Scheme::verify` on the body, as the layer calls them. A new preset is one more
//!   `preset(…)` line in `bench_size`;
//! - the Standard Webhooks scheme (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`
//!   over `id.timestamp.body`): svix's `Webhook::verify` against the floor of the same MAC,
//!   `floor: HMAC(id.ts.body)`, and `hand verify (id.ts.body)`, a straightforward verifier
//!   (header lookups, timestamp check, base64 into a stack buffer, pre-keyed HMAC, constant-time
//!   compare) standing in for this crate's Standard Webhooks preset until it has one.
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
use http::{HeaderMap, HeaderValue, Request, request::Parts};
use http_body_util::{BodyExt, Full};
use sha2::Sha256;
use tower_webhook::{
    VerifyWebhookLayer,
    provider::{videoaiditor, videonest},
    scheme::{Scheme, Signed},
};

use support::{SECRET, SIZES, now, videoaiditor_body, videonest_body};

/// The Standard Webhooks secret: `whsec_` and the base64 of the key.
const SVIX_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

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
        scheme.verify(signature, &body),
        Ok(Signed::RawBody)
    ));
    group.bench_function(name, |b| {
        b.iter(|| {
            let signature = scheme.signature(black_box(&head)).expect("well-formed");
            let signed = scheme.verify(signature, black_box(&body));
            black_box(signed).expect("verified")
        });
    });
}

/// The Standard Webhooks headers for `body`, signed with `key` now.
fn standard_webhooks_headers(key: &Hmac<Sha256>, id: &str, body: &[u8]) -> HeaderMap {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        .to_string();
    let mut mac = key.clone();
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", HeaderValue::from_str(id).expect("ascii"));
    headers.insert(
        "webhook-timestamp",
        HeaderValue::from_str(&timestamp).expect("ascii"),
    );
    headers.insert(
        "webhook-signature",
        HeaderValue::from_str(&format!("v1,{tag}")).expect("ascii"),
    );
    headers
}

/// A plain Standard Webhooks verifier: what a preset of this crate should cost at most.
fn hand_verify(key: &Hmac<Sha256>, headers: &HeaderMap, body: &[u8]) -> bool {
    let (Some(id), Some(timestamp), Some(signatures)) = (
        headers.get("webhook-id"),
        headers.get("webhook-timestamp"),
        headers.get("webhook-signature"),
    ) else {
        return false;
    };
    let Some(seconds) = std::str::from_utf8(timestamp.as_bytes())
        .ok()
        .and_then(|t| t.parse::<u64>().ok())
    else {
        return false;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if now.abs_diff(seconds) > 300 {
        return false;
    }
    let mut mac = key.clone();
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    signatures
        .as_bytes()
        .split(|&b| b == b' ')
        .filter_map(|s| s.strip_prefix(b"v1,"))
        .any(|encoded| {
            let mut buf = [0u8; 33];
            matches!(
                base64::engine::general_purpose::STANDARD.decode_slice(encoded, &mut buf),
                Ok(32)
            ) && subtle::ConstantTimeEq::ct_eq(&buf[..32], &tag[..]).into()
        })
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

    // Standard Webhooks: svix against the floor of the same MAC and a plain verifier.
    let svix_key = base64::engine::general_purpose::STANDARD
        .decode(SVIX_SECRET.trim_start_matches("whsec_"))
        .expect("base64 secret");
    let svix_hmac = Hmac::<Sha256>::new_from_slice(&svix_key).expect("any key length");
    let id = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";
    let headers = standard_webhooks_headers(&svix_hmac, id, &body);
    let timestamp = headers["webhook-timestamp"].clone();
    group.bench_function("floor: HMAC(id.ts.body)", |b| {
        b.iter(|| {
            let mut mac = svix_hmac.clone();
            mac.update(black_box(id).as_bytes());
            mac.update(b".");
            mac.update(black_box(&timestamp).as_bytes());
            mac.update(b".");
            mac.update(black_box(&body));
            black_box(mac.finalize().into_bytes())
        });
    });
    assert!(hand_verify(&svix_hmac, &headers, &body));
    group.bench_function("hand verify (id.ts.body)", |b| {
        b.iter(|| {
            assert!(hand_verify(
                &svix_hmac,
                black_box(&headers),
                black_box(&body)
            ))
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
