//! Throughput of the VideoAIditor `JSON.stringify(JSON.parse(body))` signature fallback on bodies
//! shaped to be expensive, through the public API: `Hmac::verify` with a well-formed but
//! wrong signature, so every body is re-serialised before it is refused.
//!
//! ```text
//! cargo bench --bench js_json -- --warm-up-time 1 --measurement-time 3
//! ```

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::Request;
use tower_webhook::scheme::{Hmac, Part, Scheme, SignatureError};

#[path = "../tests/shapes/mod.rs"]
mod shapes;

/// About 1.9 MiB: just under the layer's default 2 MiB body limit.
const SIZE: usize = 1_990_000;

fn fallback(c: &mut Criterion) {
    let scheme = Hmac::sha256("x-signature")
        .secret("s")
        // Past the 256 KiB default, so that the whole body is re-serialised.
        .signs([Part::BodyOrJsonStringify { max: 2 << 20 }])
        .build()
        .expect("valid configuration");
    let (head, ()) = Request::post("/")
        .header("x-signature", "0".repeat(64))
        .body(())
        .expect("valid request")
        .into_parts();
    let signature = scheme.signature(&head).expect("well-formed signature");

    let mut group = c.benchmark_group("js_json_fallback");
    group.sample_size(10);
    let provider = ("provider_2k_pretty", shapes::provider_body());
    let bodies = shapes::SHAPES
        .iter()
        .map(|&(name, make)| (name, make(SIZE)))
        .chain([provider]);
    for (name, body) in bodies {
        let body = Bytes::from(body);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let result = scheme.verify(&signature, black_box(&body));
                assert_eq!(result, Err(SignatureError::Mismatch));
            });
        });
    }
    group.finish();
}

criterion_group!(benches, fallback);
criterion_main!(benches);
